//! `teleinfo device add|list|revoke`: uplink device tokens (crates/server/src/devices.rs).
//! Works while the server runs: it re-reads the devices file on change.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `device`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML configuration file (env TELEINFO_CONFIG), for its data_dir.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (env TELEINFO_DATA).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Action,
}

/// What to do.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Register a device and print its new token (shown once; only its hash is kept).
    Add {
        /// Device id, as the device sends it (1-32 of A-Z a-z 0-9 . _ -).
        name: String,
    },
    /// List devices.
    List,
    /// Revoke a device's token.
    Revoke {
        /// Device id.
        name: String,
    },
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = super::serve::load_config(args.config.as_ref(), args.data.as_ref())?;
    let devices = server::devices::Devices::open(&cfg.data_dir);
    match args.action {
        Action::Add { name } => {
            let token = devices.add(&name)?;
            println!("{token}");
            eprintln!("device {name} added; configure it with this token (it is not shown again)");
        }
        Action::List => {
            for (name, d) in devices.list()? {
                let state = match d.revoked_ms {
                    Some(ms) => format!("revoked at {ms}"),
                    None => "active".to_string(),
                };
                println!("{name}\t{state}\tcreated {}", d.created_ms);
            }
        }
        Action::Revoke { name } => {
            devices.revoke(&name)?;
            eprintln!("device {name} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
