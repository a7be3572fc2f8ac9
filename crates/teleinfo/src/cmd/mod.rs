//! One module per subcommand.

pub mod decode;
pub mod demo;
pub mod read;
pub mod simulate;
