//! Test doubles for the device core: a simulated Linky line (both modes,
//! wrong-speed garbage, noise), a mock HTTP server with outages and lost
//! replies, and a RAM-backed NOR flash.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use uplink::{decode_batch, Ack, LineSpeed, PostError, Transport};

// ---------------------------------------------------------------- TIC bytes

/// Checksum per tic-protocol.md §2.5: (sum & 0x3F) + 0x20.
fn checksum(span: &[u8]) -> u8 {
    let sum: u32 = span.iter().map(|&b| u32::from(b)).sum();
    (sum & 0x3F) as u8 + 0x20
}

/// Historic group: LF label SP value SP ck CR (checksum excludes the last SP).
pub fn historic_group(label: &str, value: &str) -> Vec<u8> {
    let span = format!("{label} {value}");
    let mut g = vec![0x0A];
    g.extend_from_slice(span.as_bytes());
    g.push(b' ');
    g.push(checksum(span.as_bytes()));
    g.push(0x0D);
    g
}

/// Standard group: LF label HT value HT ck CR (checksum includes the last HT).
pub fn standard_group(label: &str, value: &str) -> Vec<u8> {
    let span = format!("{label}\t{value}\t");
    let mut g = vec![0x0A];
    g.extend_from_slice(span.as_bytes());
    g.push(checksum(span.as_bytes()));
    g.push(0x0D);
    g
}

/// The two modes the simulated meter can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterMode {
    Historic,
    Standard,
}

impl MeterMode {
    pub fn speed(self) -> LineSpeed {
        match self {
            MeterMode::Historic => LineSpeed::Baud1200,
            MeterMode::Standard => LineSpeed::Baud9600,
        }
    }
}

/// One frame of the simulated meter; `n` makes every frame distinct.
pub fn meter_frame(mode: MeterMode, n: u64) -> Vec<u8> {
    let mut f = vec![0x02];
    let groups: Vec<Vec<u8>> = match mode {
        MeterMode::Historic => vec![
            historic_group("ADCO", "021861348497"),
            historic_group("OPTARIF", "BASE"),
            historic_group("ISOUSC", "30"),
            historic_group("BASE", &format!("{:09}", 10_151_175 + n)),
            historic_group("PTEC", "TH.."),
            historic_group("IINST", &format!("{:03}", n % 30)),
            historic_group("IMAX", "090"),
            historic_group("PAPP", &format!("{:05}", (n * 37) % 7000)),
            historic_group("MOTDETAT", "000000"),
        ],
        MeterMode::Standard => vec![
            standard_group("ADSC", "041776199277"),
            standard_group("VTIC", "02"),
            standard_group("NGTF", "      TEMPO     "),
            standard_group("LTARF", "    HP  BLEU    "),
            standard_group("EAST", &format!("{:09}", 24_371_112 + n)),
            standard_group("EASF01", &format!("{:09}", 14_000_000 + n / 2)),
            standard_group("EASF02", &format!("{:09}", 10_371_112 + n / 2)),
            standard_group("IRMS1", &format!("{:03}", n % 45)),
            standard_group("URMS1", &format!("{:03}", 228 + n % 7)),
            standard_group("PREF", "12"),
            standard_group("PCOUP", "12"),
            standard_group("SINSTS", &format!("{:05}", (n * 91) % 9000)),
            standard_group("STGE", "003A4401"),
            standard_group("MSG1", "PAS DE          MESSAGE         "),
            standard_group("PRM", "30001610071855"),
            standard_group("RELAIS", "000"),
            standard_group("NTARF", "02"),
            standard_group("NJOURF", "00"),
            standard_group("NJOURF+1", "00"),
        ],
    };
    for g in groups {
        f.extend_from_slice(&g);
    }
    f.push(0x03);
    f
}

/// A full standard-mode frame of a Linky (the 38 groups of a single-phase
/// consumer, 865 bytes; with `three_phase`, the per-phase groups and two
/// mobile peaks, 1252 bytes — the sizes of tic-protocol.md §1.6 give 865
/// and 1264). `n` varies the values.
pub fn full_standard_frame(n: u64, three_phase: bool) -> Vec<u8> {
    let index = format!("{:09}", 11_887_649 + n / 3);
    let time = format!("H2303010918{:02}", n % 60);
    let mut groups = vec![
        standard_group("ADSC", "064468368739"),
        standard_group("VTIC", "02"),
        standard_group_h("DATE", &time, ""),
        standard_group("NGTF", "      BASE      "),
        standard_group("LTARF", "      BASE      "),
        standard_group("EAST", &index),
        standard_group("EASF01", &index),
    ];
    for label in [
        "EASF02", "EASF03", "EASF04", "EASF05", "EASF06", "EASF07", "EASF08", "EASF09", "EASF10",
    ] {
        groups.push(standard_group(label, "000000000"));
    }
    groups.push(standard_group("EASD01", &index));
    for label in ["EASD02", "EASD03", "EASD04"] {
        groups.push(standard_group(label, "000000000"));
    }
    let phases: &[u8] = if three_phase { b"123" } else { b"1" };
    for p in phases {
        let p = *p as char;
        groups.push(standard_group(
            &format!("IRMS{p}"),
            &format!("{:03}", n % 40),
        ));
    }
    for p in phases {
        let p = *p as char;
        groups.push(standard_group(
            &format!("URMS{p}"),
            &format!("{:03}", 228 + n % 5),
        ));
    }
    groups.push(standard_group(
        "PREF",
        if three_phase { "12" } else { "04" },
    ));
    groups.push(standard_group(
        "PCOUP",
        if three_phase { "12" } else { "04" },
    ));
    groups.push(standard_group("SINSTS", &format!("{:05}", 240 + n % 900)));
    if three_phase {
        for p in 1..=3 {
            groups.push(standard_group(
                &format!("SINSTS{p}"),
                &format!("{:05}", 80 + n % 300),
            ));
        }
        for p in 1..=3 {
            groups.push(standard_group_h(
                &format!("SMAXSN{p}"),
                "H230301065253",
                "01024",
            ));
        }
        for p in 1..=3 {
            groups.push(standard_group_h(
                &format!("SMAXSN{p}-1"),
                "H230228111814",
                "00795",
            ));
        }
    } else {
        groups.push(standard_group_h("SMAXSN", "H230301065253", "01024"));
        groups.push(standard_group_h("SMAXSN-1", "H230228111814", "00795"));
    }
    groups.push(standard_group_h("CCASN", "H230301090000", "00170"));
    groups.push(standard_group_h("CCASN-1", "H230301083000", "00162"));
    for p in phases {
        let p = *p as char;
        groups.push(standard_group_h(
            &format!("UMOY{p}"),
            "H230301091000",
            "229",
        ));
    }
    groups.push(standard_group("STGE", "003A0001"));
    if three_phase {
        for p in 1..=2 {
            groups.push(standard_group_h(&format!("DPM{p}"), " 230302060000", "00"));
            groups.push(standard_group_h(&format!("FPM{p}"), " 230302220000", "00"));
        }
    }
    groups.push(standard_group("MSG1", "PAS DE          MESSAGE         "));
    groups.push(standard_group("PRM", "31051967533895"));
    groups.push(standard_group("RELAIS", "000"));
    groups.push(standard_group("NTARF", "01"));
    groups.push(standard_group("NJOURF", "00"));
    groups.push(standard_group("NJOURF+1", "00"));
    groups.push(standard_group(
        "PJOURF+1",
        "00008001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE",
    ));
    let mut f = vec![0x02];
    for g in groups {
        f.extend_from_slice(&g);
    }
    f.push(0x03);
    f
}

/// Standard group with a horodate: LF label HT horodate HT value HT ck CR.
pub fn standard_group_h(label: &str, horodate: &str, value: &str) -> Vec<u8> {
    standard_group(label, &format!("{horodate}\t{value}"))
}

/// A tiny deterministic PRNG for the simulations.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A simulated meter on a simulated UART. Bytes leave at the line rate
/// (10 bits per character) with the inter-frame gap of §1.6. When the UART
/// runs at the other speed, the receiver sees what a real one does:
/// garbage bytes and framing errors, never a valid group.
pub struct SimLine {
    pub mode: MeterMode,
    pub frames_sent: Vec<Vec<u8>>,
    frame_no: u64,
    pending: VecDeque<u8>,
    gap_chars: f64,
    credit: f64,
    rng: Rng,
    /// Probability (per group, in 1/1000) that one byte of a group is corrupted.
    pub noise_per_mille: u64,
    pub corrupted_groups: u64,
}

/// What the UART delivered in one step.
pub struct UartChunk {
    pub bytes: Vec<u8>,
    pub errors: u32,
}

impl SimLine {
    pub fn new(mode: MeterMode, seed: u64) -> Self {
        SimLine {
            mode,
            frames_sent: Vec::new(),
            frame_no: 0,
            pending: VecDeque::new(),
            gap_chars: 0.0,
            credit: 0.0,
            rng: Rng(seed | 1),
            noise_per_mille: 0,
            corrupted_groups: 0,
        }
    }

    fn next_frame(&mut self) {
        let clean = meter_frame(self.mode, self.frame_no);
        self.frame_no += 1;
        let mut sent = clean.clone();
        if self.noise_per_mille > 0 {
            // Corrupt one byte inside some groups: value digit → another
            // printable byte, as the real captures show (tic-protocol §2.6).
            let lfs: Vec<usize> = sent
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == 0x0A)
                .map(|(i, _)| i)
                .collect();
            for lf in lfs {
                if self.rng.below(1000) < self.noise_per_mille {
                    let at = lf + 2;
                    sent[at] = if sent[at] == b'@' { b'A' } else { b'@' };
                    self.corrupted_groups += 1;
                }
            }
        }
        self.frames_sent.push(sent.clone());
        self.pending.extend(sent);
        // 16.7–33.4 ms of silence between frames, in character times.
        let cps = f64::from(self.mode.speed().baud()) / 10.0;
        self.gap_chars = cps * 0.025;
    }

    /// The meter changes mode (remote reprogramming): the frame in progress
    /// is abandoned and the next one starts at the new speed.
    pub fn switch_mode(&mut self, mode: MeterMode) {
        self.mode = mode;
        self.pending.clear();
        self.gap_chars = 0.0;
    }

    /// Advances `dt_ms` with the UART at `uart_speed`.
    pub fn step(&mut self, dt_ms: u64, uart_speed: LineSpeed) -> UartChunk {
        let cps = f64::from(self.mode.speed().baud()) / 10.0;
        self.credit += cps * dt_ms as f64 / 1000.0;
        let mut out = Vec::new();
        while self.credit >= 1.0 {
            if self.gap_chars >= 1.0 {
                self.gap_chars -= 1.0;
                self.credit -= 1.0;
                continue;
            }
            if self.pending.is_empty() {
                self.next_frame();
                continue;
            }
            out.push(self.pending.pop_front().unwrap());
            self.credit -= 1.0;
        }
        if uart_speed == self.mode.speed() {
            return UartChunk {
                bytes: out,
                errors: 0,
            };
        }
        // Wrong speed: 8x more or fewer characters, all mangled; about one
        // in three raises a framing/parity error and is dropped.
        let n = match uart_speed {
            LineSpeed::Baud9600 => out.len() * 8,
            LineSpeed::Baud1200 => out.len() / 8,
        };
        let mut bytes = Vec::new();
        let mut errors = 0;
        for _ in 0..n {
            if self.rng.below(3) == 0 {
                errors += 1;
            } else {
                bytes.push((self.rng.next() & 0x7F) as u8);
            }
        }
        UartChunk { bytes, errors }
    }
}

// ---------------------------------------------------------------- server

/// A mock teleinfo server: decodes every batch, stores frames durably by
/// (device, boot, seq) exactly once, acks the highest contiguous sequence.
#[derive(Default)]
pub struct MockServer {
    /// Stored frames per boot id, by sequence number.
    pub stored: BTreeMap<u64, BTreeMap<u32, Vec<u8>>>,
    /// Per boot: highest durable sequence (contiguous from the device's floor).
    pub acked: BTreeMap<u64, u32>,
    /// Sequence numbers the device declared gone (evicted), per boot.
    pub gaps: BTreeMap<u64, Vec<(u32, u32)>>,
    /// Frames received again after being stored (retransmissions).
    pub duplicates: u64,
    pub posts: u64,
    pub refused: u64,
    /// Store the batch but lose the reply when `posts % n == 0`.
    pub lose_reply_every: Option<u64>,
    pub last_evicted_counter: u32,
}

impl MockServer {
    pub fn receive(&mut self, body: &[u8]) -> Option<Ack> {
        self.posts += 1;
        let batch = decode_batch(body).expect("device sent an invalid batch");
        let boot = batch.header.boot_id;
        self.last_evicted_counter = batch
            .header
            .telemetry
            .counter(uplink::Counter::EvictedFrames);
        let frames = self.stored.entry(boot).or_default();
        let acked = self.acked.get(&boot).copied();
        let plan = uplink::plan_batch(acked, batch.header.first_seq, batch.frame_count());
        if let Some(lost) = plan.lost.clone() {
            self.gaps
                .entry(boot)
                .or_default()
                .push((lost.start, lost.end));
        }
        self.duplicates += plan.skip_frames as u64;
        for (i, f) in batch.frames().enumerate() {
            match frames.entry(f.seq) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    assert!(i < plan.skip_frames, "stored frame {} not skipped", f.seq);
                    assert_eq!(e.get(), f.bytes, "same key, different frame");
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    assert!(i >= plan.skip_frames, "frame {} skipped but new", f.seq);
                    e.insert(f.bytes.to_vec());
                }
            }
        }
        let durable = plan.durable_through_after;
        if let Some(d) = durable {
            self.acked.insert(boot, d);
        }
        if let Some(n) = self.lose_reply_every {
            if self.posts.is_multiple_of(n) {
                return None;
            }
        }
        Some(Ack {
            boot_id: boot,
            durable_through_seq: durable,
            server_time_unix_ms: None,
        })
    }
}

/// The device's transport to the mock server, with an outage switch.
pub struct MockTransport<'s> {
    pub server: &'s mut MockServer,
    pub down: bool,
}

impl Transport for MockTransport<'_> {
    async fn post(&mut self, body: &[u8]) -> Result<Ack, PostError> {
        if self.down {
            self.server.refused += 1;
            return Err(PostError::Connection);
        }
        self.server.receive(body).ok_or(PostError::Connection)
    }
}

// ---------------------------------------------------------------- flash

/// RAM-backed NOR flash: 4 KiB sectors, 4-byte words, writes can only
/// clear bits (like real NOR), erase sets a sector to 0xFF.
#[derive(Debug, Clone)]
pub struct MockFlash {
    pub data: Vec<u8>,
    pub erases: u64,
}

impl MockFlash {
    pub fn new(bytes: usize) -> Self {
        MockFlash {
            data: vec![0xFF; bytes],
            erases: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockFlashError(NorFlashErrorKind);

impl NorFlashError for MockFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl ErrorType for MockFlash {
    type Error = MockFlashError;
}

impl ReadNorFlash for MockFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let at = offset as usize;
        let src = self
            .data
            .get(at..at + bytes.len())
            .ok_or(MockFlashError(NorFlashErrorKind::OutOfBounds))?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for MockFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if !(from as usize).is_multiple_of(Self::ERASE_SIZE)
            || !(to as usize).is_multiple_of(Self::ERASE_SIZE)
        {
            return Err(MockFlashError(NorFlashErrorKind::NotAligned));
        }
        let range = self
            .data
            .get_mut(from as usize..to as usize)
            .ok_or(MockFlashError(NorFlashErrorKind::OutOfBounds))?;
        range.fill(0xFF);
        self.erases += 1;
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if !(offset as usize).is_multiple_of(Self::WRITE_SIZE)
            || !bytes.len().is_multiple_of(Self::WRITE_SIZE)
        {
            return Err(MockFlashError(NorFlashErrorKind::NotAligned));
        }
        let at = offset as usize;
        let dst = self
            .data
            .get_mut(at..at + bytes.len())
            .ok_or(MockFlashError(NorFlashErrorKind::OutOfBounds))?;
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d &= *s;
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for MockFlash {}
