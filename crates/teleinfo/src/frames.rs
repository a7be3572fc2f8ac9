//! From bytes to owned frames, and how frames are printed (`decode`, `read`).
//!
//! [`FrameCollector`] drives a [`tic::Decoder`] and gathers each frame's
//! groups into a [`DecodedFrame`]; [`FrameWriter`] prints frames in the
//! readable text form or as the JSON-lines contract of `teleinfo decode`, and
//! [`CaptureStats`] sums a capture up for `--format stats`.

use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{self, Write};
use tic::{Decoder, EndReason, ErrorCounts, Event, GroupError, Horodate, Mode, Options, Season};

/// Groups kept per frame. A real frame has at most ~70; a stream that never
/// sends ETX or STX would otherwise grow a frame without bound. Groups beyond
/// this are counted in [`DecodedFrame::dropped_groups`], not kept.
pub const MAX_GROUPS_PER_FRAME: usize = 1024;

/// One checked group, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedGroup {
    pub label: String,
    pub value: String,
    pub horodate: Option<Horodate>,
}

/// One frame as found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    pub mode: Option<Mode>,
    pub complete: bool,
    pub end: EndReason,
    pub groups: Vec<OwnedGroup>,
    pub invalid_groups: u16,
    pub errors: ErrorCounts,
    /// Valid groups beyond [`MAX_GROUPS_PER_FRAME`], not kept.
    pub dropped_groups: u32,
}

/// Turns a byte stream into [`DecodedFrame`]s.
#[derive(Default)]
pub struct FrameCollector {
    decoder: Decoder,
    groups: Vec<OwnedGroup>,
    dropped_groups: u32,
    /// Rejections in the current frame, for the readable output.
    pub rejections: Vec<GroupError>,
}

impl FrameCollector {
    pub fn new(options: Options) -> Self {
        FrameCollector {
            decoder: Decoder::with_options(options),
            ..Default::default()
        }
    }

    /// Whether a frame has started and not ended (`read` marks a broken
    /// stream with EOT only then).
    pub fn in_frame(&self) -> bool {
        self.decoder.in_frame()
    }

    /// Feeds a chunk; calls `on_frame` for every frame that ends in it.
    pub fn push(
        &mut self,
        mut input: &[u8],
        on_frame: &mut dyn FnMut(DecodedFrame, &[GroupError]),
    ) {
        while !input.is_empty() {
            let (used, event) = self.decoder.feed(input);
            input = &input[used..];
            if let Some(event) = event {
                Self::handle(
                    event,
                    &mut self.groups,
                    &mut self.dropped_groups,
                    &mut self.rejections,
                    on_frame,
                );
            }
        }
    }

    /// Ends the input: a frame in progress is emitted as incomplete.
    pub fn finish(&mut self, on_frame: &mut dyn FnMut(DecodedFrame, &[GroupError])) {
        while let Some(event) = self.decoder.finish() {
            Self::handle(
                event,
                &mut self.groups,
                &mut self.dropped_groups,
                &mut self.rejections,
                on_frame,
            );
        }
    }

    fn handle(
        event: Event<'_>,
        groups: &mut Vec<OwnedGroup>,
        dropped: &mut u32,
        rejections: &mut Vec<GroupError>,
        on_frame: &mut dyn FnMut(DecodedFrame, &[GroupError]),
    ) {
        match event {
            Event::FrameStart => {
                groups.clear();
                rejections.clear();
                *dropped = 0;
            }
            Event::Group(g) => {
                if groups.len() < MAX_GROUPS_PER_FRAME {
                    groups.push(OwnedGroup {
                        label: g.label.to_owned(),
                        value: g.value().to_owned(),
                        horodate: g.horodate,
                    });
                } else {
                    *dropped = dropped.saturating_add(1);
                }
            }
            Event::Rejected(r) => {
                if rejections.len() < MAX_GROUPS_PER_FRAME {
                    rejections.push(r.error);
                }
            }
            Event::FrameEnd(end) => {
                let frame = DecodedFrame {
                    mode: end.stats.mode,
                    complete: end.complete,
                    end: end.reason,
                    groups: std::mem::take(groups),
                    invalid_groups: end.stats.rejected,
                    errors: end.stats.errors,
                    dropped_groups: std::mem::take(dropped),
                };
                on_frame(frame, rejections);
                rejections.clear();
            }
        }
    }
}

/// How frames are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable: one header line per frame, one line per group.
    Text,
    /// One JSON object per frame (the documented contract).
    Jsonl,
    /// Decode everything, print only a summary of the capture's health.
    Stats,
}

#[derive(Serialize)]
struct JsonHorodate {
    season: String,
    local: String,
    utc: Option<String>,
    degraded: bool,
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    label: &'a str,
    value: &'a str,
    horodate: Option<JsonHorodate>,
}

#[derive(Serialize)]
struct JsonFrame<'a> {
    mode: Option<&'static str>,
    complete: bool,
    groups: Vec<JsonGroup<'a>>,
    invalid_groups: u16,
    end: &'static str,
    rejected: std::collections::BTreeMap<&'static str, u32>,
}

fn iso(h: &Horodate) -> String {
    let mut s = String::with_capacity(19);
    // Writing to a String cannot fail.
    let _ = h.write_iso(&mut s);
    s
}

fn json_horodate(h: &Horodate) -> JsonHorodate {
    JsonHorodate {
        season: h.season_char().to_string(),
        local: iso(h),
        utc: h.utc().map(|u| iso(&u) + "Z"),
        degraded: h.degraded,
    }
}

pub fn end_name(end: EndReason) -> &'static str {
    match end {
        EndReason::Etx => "etx",
        EndReason::Eot => "eot",
        EndReason::NewStx => "new_stx",
        EndReason::EndOfInput => "end_of_input",
    }
}

/// Writes frames in one of the formats.
pub struct FrameWriter<W: Write> {
    out: W,
    format: Format,
    frames: u64,
    pub stats: CaptureStats,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W, format: Format) -> Self {
        FrameWriter {
            out,
            format,
            frames: 0,
            stats: CaptureStats::default(),
        }
    }

    pub fn write_frame(
        &mut self,
        frame: &DecodedFrame,
        rejections: &[GroupError],
    ) -> io::Result<()> {
        self.frames += 1;
        self.stats.add(frame);
        match self.format {
            Format::Stats => Ok(()),
            Format::Jsonl => {
                let json = JsonFrame {
                    mode: frame.mode.map(Mode::as_str),
                    complete: frame.complete,
                    groups: frame
                        .groups
                        .iter()
                        .map(|g| JsonGroup {
                            label: &g.label,
                            value: &g.value,
                            horodate: g.horodate.as_ref().map(json_horodate),
                        })
                        .collect(),
                    invalid_groups: frame.invalid_groups,
                    end: end_name(frame.end),
                    rejected: frame.errors.iter().filter(|(_, n)| *n > 0).collect(),
                };
                serde_json::to_writer(&mut self.out, &json)?;
                self.out.write_all(b"\n")
            }
            Format::Text => self.write_text(frame, rejections),
        }
    }

    fn write_text(&mut self, frame: &DecodedFrame, rejections: &[GroupError]) -> io::Result<()> {
        let out = &mut self.out;
        writeln!(
            out,
            "frame {}: {}, {}, {} groups, {} rejected",
            self.frames,
            frame.mode.map_or("unknown mode", Mode::as_str),
            match frame.end {
                EndReason::Etx => "complete",
                EndReason::Eot => "interrupted by EOT",
                EndReason::NewStx => "interrupted by a new STX",
                EndReason::EndOfInput => "cut by the end of input",
            },
            frame.groups.len(),
            frame.invalid_groups
        )?;
        for g in &frame.groups {
            let mode = frame.mode.unwrap_or(Mode::Standard);
            let unit = tic::labels::lookup(mode, g.label.as_bytes())
                .map(|i| i.unit.symbol())
                .unwrap_or("");
            write!(out, "  {:<9} {:?}", g.label, g.value)?;
            if !unit.is_empty() {
                write!(out, " {unit}")?;
            }
            if let Some(h) = &g.horodate {
                write!(out, "  at {} {}", iso(h), h.season_char())?;
                if let Some(u) = h.utc() {
                    write!(out, " ({}Z)", iso(&u))?;
                }
                if h.degraded {
                    write!(out, " [meter clock degraded]")?;
                }
            }
            writeln!(out)?;
        }
        for r in rejections {
            writeln!(out, "  rejected: {r}")?;
        }
        if frame.dropped_groups > 0 {
            writeln!(
                out,
                "  ({} more groups not shown: over {MAX_GROUPS_PER_FRAME} in one frame)",
                frame.dropped_groups
            )?;
        }
        Ok(())
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A capture's health, for `--format stats`.
#[derive(Debug, Default)]
pub struct CaptureStats {
    pub frames_complete: u64,
    pub frames_interrupted: u64,
    pub valid_groups: u64,
    pub rejected: ErrorCounts,
    pub modes: BTreeSet<&'static str>,
    pub meters: BTreeSet<String>,
    /// Earliest and latest meter time (Unix seconds) of DATE groups.
    pub span_unix_s: Option<(i64, i64)>,
    /// DATE groups whose season letter is a space (no UTC offset).
    pub dates_without_season: u64,
}

impl CaptureStats {
    pub fn add(&mut self, frame: &DecodedFrame) {
        if frame.complete {
            self.frames_complete += 1;
        } else {
            self.frames_interrupted += 1;
        }
        self.valid_groups += frame.groups.len() as u64 + frame.dropped_groups as u64;
        self.rejected.merge(&frame.errors);
        if let Some(m) = frame.mode {
            self.modes.insert(m.as_str());
        }
        for g in &frame.groups {
            match g.label.as_str() {
                "ADCO" | "ADSC" if self.meters.len() < 1000 => {
                    self.meters.insert(g.value.clone());
                }
                "DATE" => match g.horodate.and_then(|h| h.unix_s()) {
                    Some(t) => {
                        let (lo, hi) = self.span_unix_s.unwrap_or((t, t));
                        self.span_unix_s = Some((lo.min(t), hi.max(t)));
                    }
                    None => self.dates_without_season += 1,
                },
                _ => {}
            }
        }
    }

    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let frames = self.frames_complete + self.frames_interrupted;
        writeln!(out, "frames:            {frames}")?;
        writeln!(out, "  complete:        {}", self.frames_complete)?;
        writeln!(out, "  interrupted:     {}", self.frames_interrupted)?;
        writeln!(out, "valid groups:      {}", self.valid_groups)?;
        writeln!(out, "rejected groups:   {}", self.rejected.total())?;
        for (kind, n) in self.rejected.iter().filter(|(_, n)| *n > 0) {
            writeln!(out, "  {kind:<16} {n}")?;
        }
        let total = self.valid_groups + self.rejected.total() as u64;
        if total > 0 {
            writeln!(
                out,
                "group error rate:  {:.3} %",
                100.0 * self.rejected.total() as f64 / total as f64
            )?;
        }
        let modes: Vec<_> = self.modes.iter().copied().collect();
        writeln!(
            out,
            "modes:             {}",
            if modes.is_empty() {
                "none".into()
            } else {
                modes.join(", ")
            }
        )?;
        let meters: Vec<_> = self.meters.iter().map(String::as_str).collect();
        writeln!(
            out,
            "meters:            {}",
            if meters.is_empty() {
                "none".into()
            } else {
                meters.join(", ")
            }
        )?;
        match self.span_unix_s {
            Some((lo, hi)) => {
                let fmt = |t: i64| iso(&Horodate::from_unix_s(t, Season::None, false)) + "Z";
                writeln!(
                    out,
                    "meter time span:   {} .. {} ({} s)",
                    fmt(lo),
                    fmt(hi),
                    hi - lo
                )?;
            }
            None => writeln!(
                out,
                "meter time span:   none (no DATE group; historic mode has none)"
            )?,
        }
        Ok(())
    }
}
