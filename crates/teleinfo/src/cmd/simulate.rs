//! `teleinfo simulate`: a virtual Linky writing TIC frames (crate `meter-sim`).

use anyhow::{bail, Context, Result};
use meter_sim::output::{self, Limit};
use meter_sim::{clock, tariff, Config, Contract, FaultSpec, Interval, Mode, Simulator};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    /// 1200 Bd, SP separators, no horodates (the factory default of a Linky).
    Historic,
    /// 9600 Bd, HT separators, horodates (Linky only).
    Standard,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ContractArg {
    /// One index, all hours.
    Base,
    /// Off-peak / peak hours (windows: --offpeak).
    Hchp,
    /// Blue/white/red days, six indexes.
    Tempo,
    /// 22 mobile-peak days a winter.
    Ejp,
}

const AFTER_HELP: &str = "\
Fault SPEC: comma-separated items, e.g. `bit=1e-4,drop=1e-5,eot=0.01,8n1`:
  bit=RATE       each transmitted bit (7 data + parity) flips with this probability
  drop=RATE      each byte is lost with this probability
  eot=P          a frame is interrupted by EOT after one of its groups
  truncate=P     a frame is cut at a random byte, with no terminator
  noise=P        a burst of 1-16 random bytes lands in a frame or its gap
  switch=N       the meter switches mode (historic <-> standard) at frame N
  degraded=N     the meter's clock is degraded from frame N (e/h season letters, STGE bit 16)
  drift=S        the meter's clock gains S seconds per day (negative: loses)
  8n1            an 8N1 capture: the parity bit arrives as bit 7
RATE and P are numbers in [0, 1]. --fault-log FILE writes the ground truth,
one JSON object per fault: offset, frame, label, group_index, kind, expect.

Dates (--start): YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] in French local time,
the same ending in Z for UTC, or @UNIX_SECONDS. Durations: 90s, 15m, 12h, 30d, 2w, 1y.

Examples:
  teleinfo simulate --frames 10 | teleinfo decode
  teleinfo simulate --phases 3 --kva 12 --contract tempo --interval 60 --duration 1y --out year.tic
  teleinfo simulate --realtime --pty        # then: teleinfo read /dev/pts/N";

/// Arguments of `teleinfo simulate`.
#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// TIC mode.
    #[arg(long, value_enum, default_value = "standard")]
    pub mode: ModeArg,
    /// Single- or three-phase meter.
    #[arg(long, default_value_t = 1, value_parser = parse_phases)]
    pub phases: u8,
    /// Producer meter (solar injection; standard mode only).
    #[arg(long)]
    pub producer: bool,
    /// Solar peak power in kWp (producers; default 3).
    #[arg(long)]
    pub solar_kwp: Option<f64>,
    /// Contract (option tarifaire).
    #[arg(long, value_enum, default_value = "base")]
    pub contract: ContractArg,
    /// Off-peak windows of the hchp contract, e.g. 22:00-06:00 or 01:30-07:30,12:30-14:30.
    #[arg(long)]
    pub offpeak: Option<String>,
    /// Subscribed power in kVA: 3, 6, 9, 12 (single-phase), 15, 18, 24, 30, 36 (three-phase).
    /// Default 9 single-phase, 12 three-phase.
    #[arg(long)]
    pub kva: Option<u8>,
    /// No electric heating in the household.
    #[arg(long)]
    pub no_heating: bool,
    /// Start date of the simulated clock (default: now with --realtime, else 2026-01-01 00:00 French time).
    #[arg(long)]
    pub start: Option<String>,
    /// Stop after N frames.
    #[arg(long, conflicts_with = "duration")]
    pub frames: Option<u64>,
    /// Stop after this much simulated time (90s, 15m, 12h, 30d, 2w, 1y).
    #[arg(long)]
    pub duration: Option<String>,
    /// Seconds of simulated time between frames (default: back to back, like the wire).
    #[arg(long)]
    pub interval: Option<f64>,
    /// Pace the output like a real meter (line speed, frame gaps, wall clock).
    #[arg(long)]
    pub realtime: bool,
    /// Seed of every random choice: same seed and options, same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Faults to inject (see below).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Write the faults' ground truth here (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub fault_log: Option<PathBuf>,
    /// Serve the stream on a pseudo-terminal and print its path (read it like a USB dongle).
    #[arg(long, conflicts_with_all = ["tcp", "out"])]
    pub pty: bool,
    /// Serve the stream to every client of a TCP listener, e.g. 127.0.0.1:3000.
    #[arg(long, value_name = "ADDR", conflicts_with = "out")]
    pub tcp: Option<String>,
    /// Write the stream to a file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn parse_phases(text: &str) -> Result<u8, String> {
    match text {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err("accepted values are 1 and 3".to_string()),
    }
}

/// Builds the simulator configuration, with messages naming the option at fault.
pub fn config(args: &Args) -> Result<Config> {
    let mut config = Config {
        mode: match args.mode {
            ModeArg::Historic => Mode::Historic,
            ModeArg::Standard => Mode::Standard,
        },
        phases: args.phases,
        producer: args.producer,
        seed: args.seed,
        electric_heating: !args.no_heating,
        ..Config::default()
    };
    config.contract = match args.contract {
        ContractArg::Base => Contract::Base,
        ContractArg::Hchp => match &args.offpeak {
            Some(text) => Contract::HcHp(tariff::parse_offpeak(text).map_err(anyhow::Error::msg)?),
            None => Contract::default_hchp(),
        },
        ContractArg::Tempo => Contract::Tempo,
        ContractArg::Ejp => Contract::Ejp,
    };
    if args.offpeak.is_some() && !matches!(args.contract, ContractArg::Hchp) {
        bail!("--offpeak needs --contract hchp");
    }
    config.subscribed_kva = args.kva.unwrap_or(if args.phases == 3 { 12 } else { 9 });
    config.solar_kwp = match (args.producer, args.solar_kwp) {
        (true, kwp) => kwp.unwrap_or(3.0),
        (false, Some(_)) => bail!("--solar-kwp needs --producer"),
        (false, None) => 0.0,
    };
    config.start_unix_s = match &args.start {
        Some(text) => clock::parse_datetime(text).map_err(|e| anyhow::anyhow!("--start: {e}"))?,
        None if args.realtime => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("system clock before 1970")?
            .as_secs() as i64,
        None => config.start_unix_s,
    };
    if let Some(s) = args.interval {
        if !(s.is_finite() && (0.001..=86_400.0).contains(&s)) {
            bail!("--interval {s}: accepted values are 0.001 to 86400 seconds");
        }
        config.interval = Interval::FixedMs((s * 1000.0).round() as i64);
    }
    if let Some(spec) = &args.faults {
        config.faults = spec.parse::<FaultSpec>()?;
    }
    config.validate()?;
    Ok(config)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = config(&args)?;
    let limit = match (args.frames, &args.duration) {
        (Some(n), _) => Limit::Frames(n),
        (None, Some(d)) => {
            Limit::DurationMs(output::parse_duration_ms(d).map_err(anyhow::Error::msg)?)
        }
        (None, None) => Limit::Endless,
    };
    let mut sim = Simulator::new(config)?;
    let mut log: Option<BufWriter<File>> = match &args.fault_log {
        Some(p) => Some(BufWriter::new(File::create(p).with_context(|| {
            format!("--fault-log: cannot create {}", p.display())
        })?)),
        None => None,
    };
    let log_ref = log.as_mut().map(|w| w as &mut dyn Write);
    let result = if args.pty {
        #[cfg(unix)]
        {
            let mut pty =
                output::Pty::open(args.realtime).context("--pty: cannot open a pseudo-terminal")?;
            // The path goes to stdout (the stream does not) so scripts can read it.
            println!("{}", pty.path().display());
            io::stdout().flush()?;
            output::run(&mut sim, limit, args.realtime, &mut pty, log_ref)
        }
        #[cfg(not(unix))]
        {
            bail!("--pty needs a Unix system")
        }
    } else if let Some(addr) = &args.tcp {
        let mut tcp = output::TcpBroadcast::bind(addr.as_str(), !args.realtime)
            .with_context(|| format!("--tcp: cannot listen on {addr}"))?;
        eprintln!("teleinfo simulate: listening on {}", tcp.local_addr());
        output::run(&mut sim, limit, args.realtime, &mut tcp, log_ref)
    } else if let Some(path) = &args.out {
        let file = File::create(path)
            .with_context(|| format!("--out: cannot create {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        output::run(&mut sim, limit, args.realtime, &mut out, log_ref)
    } else {
        let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
        output::run(&mut sim, limit, args.realtime, &mut out, log_ref)
    };
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // A closed pipe (`| head`) is a normal end for a stream.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("simulate: writing the stream"),
    }
}
