//! Shared helpers: decode bytes with `tic` into owned frames.
#![allow(dead_code)]

use meter_sim::{Config, Contract, Interval, Mode, Simulator};
use tic::{Decoder, EndReason, Event, Horodate};

#[derive(Debug, Clone)]
pub struct Group {
    pub label: String,
    pub value: String,
    pub horodate: Option<Horodate>,
    /// Stream offsets of the group's LF and CR (inclusive).
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub groups: Vec<Group>,
    pub rejected: u32,
    pub complete: bool,
    pub reason: Option<EndReason>,
}

impl Decoded {
    pub fn get(&self, label: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.label == label)
    }
    pub fn value(&self, label: &str) -> &str {
        self.get(label)
            .map(|g| g.value.as_str())
            .unwrap_or_else(|| panic!("no {label}"))
    }
    pub fn number(&self, label: &str) -> u64 {
        self.value(label).parse().unwrap()
    }
}

/// Decodes a whole stream; also returns the rejections' stream offsets.
pub fn decode(bytes: &[u8]) -> (Vec<Decoded>, Vec<u64>) {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut current = Decoded::default();
    let mut rejections = Vec::new();
    let mut at = 0usize;
    let mut handle = |event: Event<'_>,
                      end: u64,
                      current: &mut Decoded,
                      frames: &mut Vec<Decoded>| match event {
        Event::FrameStart => *current = Decoded::default(),
        Event::Group(g) => {
            let mut len = g.label.len() + g.value_bytes().len() + 5;
            if g.horodate.is_some() {
                len += 14;
            }
            current.groups.push(Group {
                label: g.label.to_string(),
                value: g.value().to_string(),
                horodate: g.horodate,
                start: end + 1 - len as u64,
                end,
            })
        }
        Event::Rejected(_) => {
            current.rejected += 1;
            rejections.push(end);
        }
        Event::FrameEnd(e) => {
            current.complete = e.complete;
            current.reason = Some(e.reason);
            frames.push(std::mem::take(current));
        }
    };
    while at < bytes.len() {
        let (used, event) = decoder.feed(&bytes[at..]);
        let end = (at + used) as u64;
        if let Some(event) = event {
            handle(event, end.saturating_sub(1), &mut current, &mut frames);
        }
        at += used;
    }
    while let Some(event) = decoder.finish() {
        handle(event, bytes.len() as u64, &mut current, &mut frames);
    }
    (frames, rejections)
}

/// Every valid combination of mode, phases, producer and contract.
pub fn variants() -> Vec<Config> {
    let mut out = Vec::new();
    for mode in [Mode::Standard, Mode::Historic] {
        for phases in [1u8, 3] {
            for producer in [false, true] {
                if producer && mode == Mode::Historic {
                    continue;
                }
                for contract in [
                    Contract::Base,
                    Contract::default_hchp(),
                    Contract::Tempo,
                    Contract::Ejp,
                ] {
                    out.push(Config {
                        mode,
                        phases,
                        producer,
                        solar_kwp: if producer { 4.0 } else { 0.0 },
                        subscribed_kva: if phases == 3 { 12 } else { 9 },
                        contract,
                        interval: Interval::Wire,
                        ..Config::default()
                    });
                }
            }
        }
    }
    out
}

/// Concatenated bytes of `n` frames.
pub fn stream(config: Config, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for f in Simulator::new(config).unwrap().take(n) {
        out.extend_from_slice(&f.bytes);
    }
    out
}
