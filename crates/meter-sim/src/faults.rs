//! Faults real TIC lines produce, injected reproducibly, with a ground-truth log.
//!
//! Grammar of a fault SPEC (comma-separated, any order, each at most once):
//!
//! | item | meaning |
//! |---|---|
//! | `bit=RATE` | probability that each transmitted bit flips (7 data bits + the parity bit of each 7E1 character) |
//! | `drop=RATE` | probability that each byte is lost |
//! | `eot=P` | probability that a frame is interrupted by EOT after one of its groups (§2.2) |
//! | `truncate=P` | probability that a frame is cut at a random byte, with no terminator |
//! | `noise=P` | probability of a burst of 1–16 random bytes inserted in a frame or its gap |
//! | `switch=N` | the meter switches mode (historic ↔ standard) from frame N |
//! | `degraded=N` | the meter's clock is degraded from frame N: lower-case season letters, STGE bit 16 |
//! | `drift=S` | the meter's clock gains S seconds per day (negative: loses) |
//! | `8n1` | captured at 8N1: the parity bit arrives as bit 7 |
//!
//! RATE and P are numbers in [0, 1] (`1e-4`, `0.01`); N is a frame number
//! (0-based); S a number of seconds.
//!
//! Every fault is logged with its byte offset in the output stream, its frame
//! number, the group it hit (label and index in the frame) and what a
//! spec-exact receiver must do with it ([`Expect`]). The expectation is worked
//! out by a reference framing of the damaged bytes (§2.2, §2.6: STX opens a
//! frame, ETX/EOT close it, LF opens a group, CR ends it) and the per-group
//! checks of `tic::parse_group` (checksum §2.5 and data format): a damaged
//! group that still passes is `undetectable` (the 6-bit checksum's blind spot,
//! e.g. two compensating bit errors), one that fails or is never completed is
//! `rejected`, and a fault that leaves every group it touched intact (a flipped
//! parity bit in a 7-bit capture) is `harmless`.

use crate::meter::GroupSpan;
use crate::rng::Rng;
use std::fmt;
use tic::{Mode, CR, EOT, ETX, LF, STX};

/// The fault configuration (see the module docs for the grammar).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    /// Per-bit flip probability.
    pub bit_rate: f64,
    /// Per-byte drop probability.
    pub drop_rate: f64,
    /// Per-frame probability of an EOT interruption.
    pub eot_prob: f64,
    /// Per-frame probability of a truncation.
    pub truncate_prob: f64,
    /// Per-frame probability of a noise burst.
    pub noise_prob: f64,
    /// Frame from which the meter has switched mode.
    pub switch_frame: Option<u64>,
    /// Frame from which the clock is degraded.
    pub degraded_frame: Option<u64>,
    /// Clock drift, seconds per day.
    pub drift_s_per_day: f64,
    /// Parity in bit 7 (8N1 capture).
    pub capture_8n1: bool,
}

/// A bad fault SPEC: the message names the item and the accepted values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError(pub String);

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultSpecError {}

/// The accepted items, for error messages and `--help`.
pub const FAULT_SPEC_HELP: &str = "bit=RATE, drop=RATE, eot=P, truncate=P, noise=P (RATE, P in [0,1]), switch=FRAME, degraded=FRAME, drift=SECONDS_PER_DAY, 8n1";

impl std::str::FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(text: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut spec = FaultSpec::default();
        let mut seen: Vec<String> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            if seen.iter().any(|s| s == key) {
                return Err(FaultSpecError(format!(
                    "--faults: `{key}` given twice (accepted: {FAULT_SPEC_HELP})"
                )));
            }
            seen.push(key.to_string());
            let need = || {
                value.ok_or_else(|| {
                    FaultSpecError(format!("--faults: `{key}` needs a value, e.g. `{key}=0.01` (accepted: {FAULT_SPEC_HELP})"))
                })
            };
            let prob = |v: &str| -> Result<f64, FaultSpecError> {
                match v.parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                    _ => Err(FaultSpecError(format!(
                        "--faults: `{key}={v}`: expected a probability between 0 and 1, e.g. 1e-4"
                    ))),
                }
            };
            let frame = |v: &str| -> Result<u64, FaultSpecError> {
                v.parse::<u64>().map_err(|_| {
                    FaultSpecError(format!(
                        "--faults: `{key}={v}`: expected a frame number (0, 1, 2...)"
                    ))
                })
            };
            match key {
                "bit" => spec.bit_rate = prob(need()?)?,
                "drop" => spec.drop_rate = prob(need()?)?,
                "eot" => spec.eot_prob = prob(need()?)?,
                "truncate" => spec.truncate_prob = prob(need()?)?,
                "noise" => spec.noise_prob = prob(need()?)?,
                "switch" => spec.switch_frame = Some(frame(need()?)?),
                "degraded" => spec.degraded_frame = Some(frame(need()?)?),
                "drift" => {
                    let v = need()?;
                    spec.drift_s_per_day = v
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && d.abs() <= 86_400.0)
                        .ok_or_else(|| {
                            FaultSpecError(format!(
                                "--faults: `drift={v}`: expected seconds per day, e.g. drift=2.5 or drift=-10"
                            ))
                        })?;
                }
                "8n1" if value.is_none() => spec.capture_8n1 = true,
                "8n1" => return Err(FaultSpecError("--faults: `8n1` takes no value".to_string())),
                _ => {
                    return Err(FaultSpecError(format!(
                        "--faults: unknown item `{key}` (accepted: {FAULT_SPEC_HELP})"
                    )))
                }
            }
        }
        Ok(spec)
    }
}

impl FaultSpec {
    /// Whether any byte-level fault is configured.
    pub fn touches_bytes(&self) -> bool {
        self.bit_rate > 0.0
            || self.drop_rate > 0.0
            || self.eot_prob > 0.0
            || self.truncate_prob > 0.0
            || self.noise_prob > 0.0
            || self.capture_8n1
    }
}

/// What was injected.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// One bit flipped: bit 0–6 data, 7 the parity bit.
    BitError {
        /// Which bit.
        bit: u8,
        /// The byte as sent.
        before: u8,
        /// The byte as received.
        after: u8,
    },
    /// A byte lost.
    DroppedByte {
        /// The lost byte.
        byte: u8,
    },
    /// The frame interrupted by EOT after a group.
    Eot,
    /// The frame cut at this offset with no terminator.
    Truncated,
    /// Random bytes inserted.
    Noise {
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The meter switched mode from this frame on.
    ModeSwitch {
        /// The new mode.
        to: Mode,
    },
    /// The meter's clock is degraded from this frame on.
    DegradedClock,
    /// The meter's clock drifts from the start.
    ClockDrift {
        /// Seconds per day.
        s_per_day: f64,
    },
    /// The stream is an 8N1 capture: parity in bit 7.
    Capture8n1,
}

impl FaultKind {
    /// A short name: `bit`, `drop`, `eot`, `truncate`, `noise`, `switch`, `degraded`, `drift`, `8n1`.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::BitError { .. } => "bit",
            FaultKind::DroppedByte { .. } => "drop",
            FaultKind::Eot => "eot",
            FaultKind::Truncated => "truncate",
            FaultKind::Noise { .. } => "noise",
            FaultKind::ModeSwitch { .. } => "switch",
            FaultKind::DegradedClock => "degraded",
            FaultKind::ClockDrift { .. } => "drift",
            FaultKind::Capture8n1 => "8n1",
        }
    }
}

/// What a spec-exact receiver must do with a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No group it touched changed (or it touched none and the frame's groups all decode).
    Harmless,
    /// The group it hit (or groups after it) must not be published: rejected or lost.
    Rejected,
    /// The frame ends incomplete (EOT or cut between groups); its groups so far are valid.
    Incomplete,
    /// The damaged group still passes checksum and format: the protocol cannot see it.
    Undetectable,
    /// Not a transmission error: the data changes meaning (mode, clock) but decodes.
    Decodes,
}

impl Expect {
    /// `harmless`, `rejected`, `incomplete`, `undetectable` or `decodes`.
    pub fn name(self) -> &'static str {
        match self {
            Expect::Harmless => "harmless",
            Expect::Rejected => "rejected",
            Expect::Incomplete => "incomplete",
            Expect::Undetectable => "undetectable",
            Expect::Decodes => "decodes",
        }
    }
}

/// One line of the ground-truth log.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRecord {
    /// Byte offset in the output stream (for a dropped byte: a surviving byte
    /// of the same group next to the gap; for a truncation: where the next frame starts).
    pub offset: u64,
    /// Frame number (0-based).
    pub frame: u64,
    /// Label of the group hit, if inside a group.
    pub label: Option<&'static str>,
    /// Index of that group in the frame.
    pub group_index: Option<usize>,
    /// What was injected.
    pub kind: FaultKind,
    /// What a receiver must do.
    pub expect: Expect,
}

impl FaultRecord {
    /// The record as one JSON object (one line of `--fault-log`).
    pub fn to_json(&self) -> String {
        let mut s = format!(
            "{{\"offset\":{},\"frame\":{},\"kind\":\"{}\",\"expect\":\"{}\"",
            self.offset,
            self.frame,
            self.kind.name(),
            self.expect.name()
        );
        match (self.label, self.group_index) {
            (Some(l), Some(i)) => s.push_str(&format!(",\"label\":\"{l}\",\"group_index\":{i}")),
            _ => s.push_str(",\"label\":null,\"group_index\":null"),
        }
        match &self.kind {
            FaultKind::BitError { bit, before, after } => s.push_str(&format!(
                ",\"bit\":{bit},\"before\":{before},\"after\":{after}"
            )),
            FaultKind::DroppedByte { byte } => s.push_str(&format!(",\"byte\":{byte}")),
            FaultKind::Noise { bytes } => s.push_str(&format!(",\"bytes\":{bytes:?}")),
            FaultKind::ModeSwitch { to } => s.push_str(&format!(",\"to\":\"{}\"", to.as_str())),
            FaultKind::ClockDrift { s_per_day } => {
                s.push_str(&format!(",\"s_per_day\":{s_per_day}"))
            }
            _ => {}
        }
        s.push('}');
        s
    }
}

/// Where a byte of a damaged frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Clean(u32),
    Noise,
    Eot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// At the byte of this origin (or, if it was lost, next to where it was).
    Clean(u32),
    /// At this index of the final frame.
    Index(usize),
    /// At the first surviving noise byte (else at this index).
    Noise(usize),
    /// At the EOT byte (else the end).
    Eot,
    /// At the end of the frame.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefState {
    Idle,
    InFrame,
    InGroup,
    Skip,
}

/// Applies byte-level faults frame by frame and predicts their effect.
#[derive(Debug, Clone)]
pub struct Injector {
    spec: FaultSpec,
    rng: Rng,
    /// Bits until the next bit error / bytes until the next drop (geometric gaps).
    bits_to_flip: u64,
    bytes_to_drop: u64,
    state: RefState,
}

struct Pending {
    kind: FaultKind,
    anchor: Anchor,
    clean_index: Option<u32>,
}

impl Injector {
    /// An injector for a spec and a seed (its own random stream, so that the
    /// meter's data is the same with and without faults).
    pub fn new(spec: FaultSpec, seed: u64) -> Injector {
        let mut rng = Rng::new(seed, 0xFA_0175);
        let bits_to_flip = rng.geometric(spec.bit_rate);
        let bytes_to_drop = rng.geometric(spec.drop_rate);
        Injector {
            spec,
            rng,
            bits_to_flip,
            bytes_to_drop,
            state: RefState::Idle,
        }
    }

    /// Damages one frame. `offset` is the stream offset of its first byte.
    pub fn apply(
        &mut self,
        frame: u64,
        offset: u64,
        clean: &[u8],
        spans: &[GroupSpan],
    ) -> (Vec<u8>, Vec<FaultRecord>) {
        let mut bytes: Vec<u8> = clean.to_vec();
        let mut origin: Vec<Origin> = (0..clean.len() as u32).map(Origin::Clean).collect();
        let mut pending: Vec<Pending> = Vec::new();
        // Spans are in byte order: binary search.
        let group_of = |j: u32| {
            let g = spans
                .partition_point(|s| s.start as u32 <= j)
                .checked_sub(1)?;
            (j < spans[g].end as u32).then_some(g)
        };

        // 1. EOT interruption after a group, or a truncation anywhere.
        if spans.len() >= 2 && self.rng.chance(self.spec.eot_prob) {
            let k = 1 + self.rng.below(spans.len() as u64 - 1) as usize;
            let end = spans[k - 1].end;
            bytes.truncate(end);
            origin.truncate(end);
            bytes.push(EOT);
            origin.push(Origin::Eot);
            pending.push(Pending {
                kind: FaultKind::Eot,
                anchor: Anchor::Eot,
                clean_index: None,
            });
        } else if clean.len() > 2 && self.rng.chance(self.spec.truncate_prob) {
            let cut = 1 + self.rng.below(clean.len() as u64 - 2) as usize;
            bytes.truncate(cut);
            origin.truncate(cut);
            pending.push(Pending {
                kind: FaultKind::Truncated,
                anchor: Anchor::End,
                clean_index: Some(cut as u32),
            });
        }
        // 2. A noise burst, inside the frame or in the gap after it.
        if self.rng.chance(self.spec.noise_prob) {
            let at = self.rng.below(bytes.len() as u64 + 1) as usize;
            let len = 1 + self.rng.below(16) as usize;
            // Inside a group when both neighbours belong to the same one.
            let inside = match (at.checked_sub(1).map(|p| origin[p]), origin.get(at)) {
                (Some(Origin::Clean(a)), Some(&Origin::Clean(b)))
                    if group_of(a).is_some() && group_of(a) == group_of(b) =>
                {
                    Some(b)
                }
                _ => None,
            };
            let burst: Vec<u8> = (0..len).map(|_| self.rng.below(128) as u8).collect();
            bytes.splice(at..at, burst.iter().copied());
            origin.splice(at..at, std::iter::repeat_n(Origin::Noise, len));
            pending.push(Pending {
                kind: FaultKind::Noise { bytes: burst },
                anchor: Anchor::Noise(at),
                clean_index: inside,
            });
        }
        // 3. Dropped bytes (geometric gaps between losses across the stream).
        if self.spec.drop_rate > 0.0 {
            let mut kept_bytes = Vec::with_capacity(bytes.len());
            let mut kept_origin = Vec::with_capacity(bytes.len());
            for (&b, &o) in bytes.iter().zip(origin.iter()) {
                if self.bytes_to_drop == 0 {
                    self.bytes_to_drop = self.rng.geometric(self.spec.drop_rate);
                    let clean_index = match o {
                        Origin::Clean(j) => Some(j),
                        _ => None,
                    };
                    pending.push(Pending {
                        kind: FaultKind::DroppedByte { byte: b },
                        anchor: match clean_index {
                            Some(j) => Anchor::Clean(j),
                            None => Anchor::Index(kept_bytes.len()),
                        },
                        clean_index,
                    });
                    continue;
                }
                self.bytes_to_drop -= 1;
                kept_bytes.push(b);
                kept_origin.push(o);
            }
            bytes = kept_bytes;
            origin = kept_origin;
        }
        // 4. Parity in bit 7 for an 8N1 capture (even parity over the 7 data bits).
        if self.spec.capture_8n1 {
            for b in &mut bytes {
                if (*b & 0x7F).count_ones() % 2 == 1 {
                    *b |= 0x80;
                }
            }
        }
        // 5. Bit errors over the 8 bits (7 data + parity) of each character.
        if self.spec.bit_rate > 0.0 {
            let total_bits = bytes.len() as u64 * 8;
            let mut at = 0u64;
            loop {
                let Some(next) = at.checked_add(self.bits_to_flip) else {
                    self.bits_to_flip -= total_bits - at;
                    break;
                };
                if next >= total_bits {
                    self.bits_to_flip -= total_bits - at;
                    break;
                }
                let (i, bit) = ((next / 8) as usize, (next % 8) as u8);
                let before = bytes[i];
                let after = if bit == 7 && !self.spec.capture_8n1 {
                    before // a 7-bit capture never shows the parity bit
                } else {
                    before ^ (1 << bit)
                };
                bytes[i] = after;
                let (anchor, clean_index) = match origin[i] {
                    Origin::Clean(j) => (Anchor::Clean(j), Some(j)),
                    _ => (Anchor::Index(i), None),
                };
                pending.push(Pending {
                    kind: FaultKind::BitError { bit, before, after },
                    anchor,
                    clean_index,
                });
                at = next + 1;
                self.bits_to_flip = self.rng.geometric(self.spec.bit_rate);
            }
        }

        if pending.is_empty() {
            // An untouched frame ends with ETX (or the meter's own EOT).
            self.state = RefState::Idle;
            return (bytes, Vec::new());
        }
        // Reference framing of the damaged bytes: which clean groups are
        // published intact, and which byte ranges form groups that pass the
        // checks while damaged.
        let mut intact = vec![false; spans.len()];
        let mut undetectable: Vec<(usize, usize)> = Vec::new();
        let mut group_start = 0usize;
        for (i, &raw) in bytes.iter().enumerate() {
            let c = raw & 0x7F;
            self.state = match (self.state, c) {
                (_, STX) => RefState::InFrame,
                (RefState::Idle, _) => RefState::Idle,
                (_, ETX) | (_, EOT) => RefState::Idle,
                (_, LF) => {
                    group_start = i;
                    RefState::InGroup
                }
                (RefState::InGroup, CR) => {
                    let content: Vec<u8> =
                        bytes[group_start + 1..i].iter().map(|b| b & 0x7F).collect();
                    if tic::parse_group(&content, false).is_ok() {
                        // Published: intact if it ends on a clean group's CR with
                        // exactly that group's content (noise before an LF is
                        // cut off by the LF and does not matter).
                        // (or a burst starting with CR right before the group's own CR).
                        let by_cr = match origin[i] {
                            Origin::Clean(j) => spans.iter().position(|s| s.end as u32 == j + 1),
                            _ => None,
                        };
                        let by_lf = match origin[group_start] {
                            Origin::Clean(j) => spans.iter().position(|s| s.start as u32 == j),
                            _ => None,
                        };
                        let same = [by_cr, by_lf]
                            .into_iter()
                            .flatten()
                            .find(|&g| clean[spans[g].start + 1..spans[g].end - 1] == content[..]);
                        match same {
                            Some(g) => intact[g] = true,
                            None => undetectable.push((group_start, i)),
                        }
                    }
                    RefState::InFrame
                }
                (RefState::InGroup, _) if i - group_start > tic::MAX_GROUP_LEN - 2 => {
                    RefState::Skip
                }
                (s, _) => s,
            };
        }
        if self.state == RefState::InGroup || self.state == RefState::Skip {
            // A group cut at the end of the frame is never completed (the next
            // STX or LF ends it): treat the receiver as back between groups.
            self.state = RefState::InFrame;
        }

        // Final positions and expectations.
        let position = |anchor: Anchor| -> usize {
            match anchor {
                Anchor::Index(i) => i.min(bytes.len()),
                Anchor::End => bytes.len(),
                Anchor::Noise(i) => origin
                    .iter()
                    .position(|&o| o == Origin::Noise)
                    .unwrap_or(i.min(bytes.len())),
                Anchor::Eot => origin
                    .iter()
                    .position(|&o| o == Origin::Eot)
                    .unwrap_or(bytes.len()),
                Anchor::Clean(j) => {
                    if let Some(p) = origin.iter().position(|&o| o == Origin::Clean(j)) {
                        return p;
                    }
                    // Lost: the next surviving byte of the same group, else the previous one.
                    let g = group_of(j);
                    let next = origin
                        .iter()
                        .position(|&o| matches!(o, Origin::Clean(k) if k > j));
                    let prev = origin
                        .iter()
                        .rposition(|&o| matches!(o, Origin::Clean(k) if k < j));
                    let same = |p: Option<usize>| {
                        p.filter(|&p| match origin[p] {
                            Origin::Clean(k) => g.is_some() && group_of(k) == g,
                            _ => false,
                        })
                    };
                    same(next).or(same(prev)).or(next).unwrap_or(bytes.len())
                }
            }
        };
        let mut present = vec![false; spans.len()];
        for &o in &origin {
            if let Origin::Clean(j) = o {
                if let Some(g) = group_of(j) {
                    present[g] = true;
                }
            }
        }
        let all_intact = (0..spans.len()).all(|g| intact[g] || !present[g]);
        let records = pending
            .into_iter()
            .map(|p| {
                let pos = position(p.anchor);
                let group = match p.kind {
                    FaultKind::Eot => None,
                    // A cut right before a group's LF leaves no part of it.
                    FaultKind::Truncated => p
                        .clean_index
                        .and_then(|j| group_of(j).filter(|&g| (spans[g].start as u32) < j)),
                    _ => p.clean_index.and_then(group_of),
                };
                let in_undetectable = undetectable.iter().any(|&(a, b)| (a..=b).contains(&pos));
                let expect = match (&p.kind, group) {
                    (_, _) if in_undetectable => Expect::Undetectable,
                    (FaultKind::Eot, _) => Expect::Incomplete,
                    (FaultKind::Truncated, None) => Expect::Incomplete,
                    (_, Some(g)) if intact[g] => Expect::Harmless,
                    (_, Some(_)) => Expect::Rejected,
                    (_, None) if all_intact => Expect::Harmless,
                    (_, None) => Expect::Rejected,
                };
                FaultRecord {
                    offset: offset + pos as u64,
                    frame,
                    label: group.map(|g| spans[g].label),
                    group_index: group,
                    kind: p.kind,
                    expect,
                }
            })
            .collect();
        (bytes, records)
    }
}
