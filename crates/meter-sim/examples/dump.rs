//! Prints a few frames of a configuration, human-readable (`cargo run --example dump`).
use meter_sim::{Config, Contract, Interval, Mode, Simulator};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut config = Config::default();
    for a in &args[1..] {
        match a.as_str() {
            "historic" => config.mode = Mode::Historic,
            "3p" => {
                config.phases = 3;
                config.subscribed_kva = 12;
            }
            "prod" => {
                config.producer = true;
                config.solar_kwp = 3.0;
            }
            "tempo" => config.contract = Contract::Tempo,
            "ejp" => config.contract = Contract::Ejp,
            "hchp" => config.contract = Contract::default_hchp(),
            _ => {}
        }
    }
    config.interval = Interval::FixedMs(60_000);
    for frame in Simulator::new(config).unwrap().take(2) {
        let text: String = frame
            .bytes
            .iter()
            .map(|&b| match b {
                0x02 => "<STX>\n".to_string(),
                0x03 => "<ETX>\n".to_string(),
                0x04 => "<EOT>\n".to_string(),
                0x0A => String::new(),
                0x0D => "\n".to_string(),
                0x09 => "\t".to_string(),
                b => (b as char).to_string(),
            })
            .collect();
        println!("{text}({} bytes)", frame.bytes.len());
    }
}
