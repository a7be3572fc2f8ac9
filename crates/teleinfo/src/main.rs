//! `teleinfo`: the thin binary that wires the workspace's crates together.
//!
//! Each subcommand lives in its own module under `cmd/`, with its own
//! argument struct; this file only dispatches.

mod cmd;
mod frames;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "teleinfo", version, about = "Linky TIC: decode, read, simulate, store and graph")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode a TIC capture (file or stdin) and print its frames.
    Decode(cmd::decode::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => cmd::decode::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("teleinfo: {err:#}");
            ExitCode::from(1)
        }
    }
}
