//! `teleinfo`: the thin binary that wires the workspace's crates together.
//!
//! Each subcommand lives in its own module under `cmd/`, with its own
//! argument struct; this file only dispatches.

mod cmd;
mod frames;
mod serial;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "teleinfo",
    version,
    about = "Linky TIC: decode, read, simulate, store and graph"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline with no hardware: virtual meters, decoded live.
    Demo(cmd::demo::Args),
    /// Decode a TIC capture (file or stdin) and print its frames.
    Decode(cmd::decode::Args),
    /// Read a TIC dongle or UART live (7E1, 1200/9600 Bd, mode detected),
    /// print its frames as `decode` does, optionally keep a timed raw capture.
    Read(cmd::read::Args),
    /// A virtual Linky: write realistic TIC frames (both modes, every meter
    /// variant and contract, faults) to stdout, a file, TCP or a pseudo-terminal.
    Simulate(cmd::simulate::Args),
    /// Run the server: uplink, OpenTSDB and serial ingest into the embedded store, JSON and
    /// OpenTSDB query APIs, live stream, metrics.
    Serve(cmd::serve::Args),
    /// Manage uplink device tokens (add, list, revoke).
    Device(cmd::device::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Decode(args) => cmd::decode::run(args),
        Command::Read(args) => cmd::read::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Device(args) => cmd::device::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("teleinfo: {err:#}");
            ExitCode::from(1)
        }
    }
}
