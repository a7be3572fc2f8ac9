//! `teleinfo`: the thin binary that wires the workspace's crates together.
//!
//! Each subcommand lives in its own module under `cmd/`, with its own
//! argument struct; this file only dispatches.

mod cmd;
mod forward;
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
    /// Run the whole product with no hardware: the server and its dashboard, fed by two virtual
    /// meters with a year of history and live frames.
    Demo(cmd::demo::Args),
    /// Decode a TIC capture (file or stdin) and print its frames.
    Decode(cmd::decode::Args),
    /// Read a TIC dongle or UART live (7E1, 1200/9600 Bd, mode detected),
    /// print its frames as `decode` does, optionally keep a timed raw capture.
    Read(cmd::read::Args),
    /// A virtual Linky: write realistic TIC frames (both modes, every meter
    /// variant and contract, faults) to stdout, a file, TCP or a pseudo-terminal.
    Simulate(cmd::simulate::Args),
    /// Forward a TIC dongle or UART to a teleinfo server over HTTP, as the ESP32 firmware does,
    /// with an on-disk queue that survives restarts and server outages.
    Forward(cmd::forward::Args),
    /// Run the server: uplink, OpenTSDB and serial ingest into the embedded store, JSON and
    /// OpenTSDB query APIs, live stream, metrics.
    Serve(cmd::serve::Args),
    /// Manage uplink device tokens (add, list, revoke).
    Device(cmd::device::Args),
    /// Import raw TIC captures (`read --raw` files with their .times sidecar, or plain raw
    /// files) into the store.
    Import(cmd::import::Args),
    /// Export a meter's series from the store as CSV or JSON.
    Export(cmd::export::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Decode(args) => cmd::decode::run(args),
        Command::Read(args) => cmd::read::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Forward(args) => cmd::forward::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Device(args) => cmd::device::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Export(args) => cmd::export::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("teleinfo: {err:#}");
            ExitCode::from(1)
        }
    }
}
