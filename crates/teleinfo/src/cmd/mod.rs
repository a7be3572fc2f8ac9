//! One module per subcommand.

pub mod decode;
pub mod demo;
pub mod device;
pub mod export;
pub mod forward;
pub mod import;
pub mod read;
pub mod serve;
pub mod simulate;
