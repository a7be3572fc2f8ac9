//! Monthly energy of a simulated year, to eyeball the model's realism.
//!
//! `cargo run --release -p meter-sim --example year_summary [heating|noheat] [solar]`

use meter_sim::{clock, Config, Contract, Interval, Simulator, WMS_PER_WH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let solar = args.iter().any(|a| a == "solar");
    let config = Config {
        contract: Contract::default_hchp(),
        electric_heating: !args.iter().any(|a| a == "noheat"),
        producer: solar,
        solar_kwp: if solar { 3.0 } else { 0.0 },
        interval: Interval::FixedMs(60_000),
        ..Config::default()
    };
    let mut sim = Simulator::new(config).expect("valid configuration");
    let mut month = 1;
    let (mut imp0, mut exp0) = (sim.state().import_wms, sim.state().export_wms);
    let mut max_va = 0;
    let mut overload_frames = 0;
    for _ in 0..525_600 {
        let f = sim.next_frame();
        let s = sim.state();
        max_va = max_va.max(s.apparent_power_drawn_va);
        overload_frames += u32::from(s.overload);
        let m = clock::local(f.true_time_unix_ms / 1000).month;
        if m != month {
            println!(
                "month {month:2}: drawn {:6} kWh, injected {:5} kWh, max {max_va} VA, {overload_frames} overload minutes",
                (s.import_wms - imp0) / WMS_PER_WH / 1000,
                (s.export_wms - exp0) / WMS_PER_WH / 1000
            );
            month = m;
            imp0 = s.import_wms;
            exp0 = s.export_wms;
            max_va = 0;
            overload_frames = 0;
        }
    }
}
