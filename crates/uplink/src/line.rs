//! UART bytes → checked raw frames.
//!
//! The protocol core `tic` checks every group; this module keeps the raw
//! bytes of the frame around it (the server re-decodes raw frames, so
//! decoding can improve without reflashing), counts what went wrong, and
//! feeds the [`ModeDetector`] with each group's verdict.

use tic::{Decoder, EndReason, Event, FrameEnd, Mode};

use crate::detect::{DetectorConfig, LineSpeed, ModeDetector};
use crate::device::Clock;
use crate::telemetry::Counters;
use crate::wire::{Counter, LineMode, MAX_FRAME_BYTES};

/// A complete frame worth queueing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedFrame<'a> {
    /// Raw bytes, STX..ETX.
    pub bytes: &'a [u8],
    /// Mode told by the frame's groups.
    pub mode: LineMode,
    /// Groups that passed.
    pub valid_groups: u16,
    /// Groups rejected (the frame is still kept raw; the server sees them).
    pub rejected_groups: u16,
}

/// The UART reported an error for a read: parity, framing, glitch or
/// overrun. The byte is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UartError;

/// The TIC UART as the device core needs it (7 data bits, even parity,
/// 1 stop bit; the speed is the detector's).
#[allow(async_fn_in_trait)]
pub trait TicUart {
    /// Waits for bytes, but not much longer than a few hundred ms, so the
    /// detector's clock advances on a silent line; `Ok(0)` = nothing came.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError>;
    /// Switches the line speed.
    fn set_speed(&mut self, speed: LineSpeed);
}

/// Where complete frames go (the uplink queue).
#[allow(async_fn_in_trait)]
pub trait FrameSink {
    /// Takes one frame received at `now_ms` (device wall-clock time
    /// `device_time_unix_ms` if synchronised).
    async fn frame(
        &mut self,
        frame: &ReceivedFrame<'_>,
        device_time_unix_ms: Option<u64>,
        now_ms: u64,
    );
}

/// What the line looks like, for a status LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    /// No byte for [`NO_SIGNAL_AFTER_MS`]: not wired, or the meter is silent.
    NoSignal,
    /// Bytes arrive but the detector has not locked: detecting, wrong
    /// speed, noise.
    Garbled,
    /// Locked on a mode.
    Locked,
}

/// A silence longer than this is "no signal": frames are at most 33.4 ms
/// apart and a meter may pause ~10 s after an EOT (tic-protocol.md §1.6, §2.2).
pub const NO_SIGNAL_AFTER_MS: u64 = 15_000;

/// What one decoder step found, detached from the decoder's borrow.
enum Step {
    Start,
    Valid,
    Rejected,
    End(FrameEnd),
    Nothing,
}

/// The line side of the device core.
#[derive(Debug, Clone)]
pub struct LineReceiver {
    decoder: Decoder,
    detector: ModeDetector,
    raw: [u8; MAX_FRAME_BYTES],
    raw_len: usize,
    in_frame: bool,
    oversize: bool,
    counters: Counters,
    last_byte_ms: Option<u64>,
}

impl LineReceiver {
    /// Starts detecting at 9600 Bd.
    pub fn new(config: DetectorConfig, now_ms: u64) -> Self {
        LineReceiver {
            decoder: Decoder::new(),
            detector: ModeDetector::new(config, now_ms),
            raw: [0; MAX_FRAME_BYTES],
            raw_len: 0,
            in_frame: false,
            oversize: false,
            counters: Counters::new(),
            last_byte_ms: None,
        }
    }

    /// One round of the line task: one UART read, its bytes decoded,
    /// complete frames handed to `sink`, and the UART's speed changed when
    /// the detector says so.
    pub async fn poll<U: TicUart, K: FrameSink, C: Clock>(
        &mut self,
        uart: &mut U,
        buf: &mut [u8],
        clock: &C,
        sink: &mut K,
    ) {
        let now_ms = clock.now_ms();
        match uart.read(buf).await {
            Ok(n) => {
                let mut rest = &buf[..n.min(buf.len())];
                if !rest.is_empty() {
                    self.last_byte_ms = Some(now_ms);
                }
                while !rest.is_empty() {
                    let (used, frame) = self.feed_until_frame(rest, now_ms);
                    if let Some(frame) = frame {
                        sink.frame(&frame, clock.unix_ms(), now_ms).await;
                    }
                    rest = &rest[used..];
                }
            }
            Err(UartError) => self.on_uart_error(),
        }
        if let Some(speed) = self.tick(clock.now_ms()) {
            uart.set_speed(speed);
        }
    }

    /// The line's state at `now_ms`.
    pub fn line_state(&self, now_ms: u64) -> LineState {
        let silent = self
            .last_byte_ms
            .is_none_or(|t| now_ms.saturating_sub(t) > NO_SIGNAL_AFTER_MS);
        if silent {
            LineState::NoSignal
        } else if self.line_mode() == LineMode::Unknown {
            LineState::Garbled
        } else {
            LineState::Locked
        }
    }

    /// The speed the UART must run at.
    pub fn speed(&self) -> LineSpeed {
        self.detector.speed()
    }

    /// Locked mode, or unknown while detecting.
    pub fn line_mode(&self) -> LineMode {
        self.detector.line_mode()
    }

    /// The detector.
    pub fn detector(&self) -> &ModeDetector {
        &self.detector
    }

    /// Line-side counters (UART errors, rejected groups, incomplete and
    /// oversize frames, mode changes).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The UART reported a parity, framing or overrun error. The byte is
    /// lost, so the group around it fails its checksum and is counted there
    /// too; this counter tells the electrical cause apart.
    pub fn on_uart_error(&mut self) {
        self.counters.bump(Counter::UartErrors);
    }

    /// Advances time. Returns the new speed when the UART must be
    /// reconfigured; the partial frame is dropped since its bytes were read
    /// at the old speed.
    pub fn tick(&mut self, now_ms: u64) -> Option<LineSpeed> {
        let speed = self.detector.tick(now_ms)?;
        self.counters.bump(Counter::ModeChanges);
        self.decoder = Decoder::new();
        self.in_frame = false;
        self.raw_len = 0;
        Some(speed)
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.oversize {
            return;
        }
        match self.raw.get_mut(self.raw_len..self.raw_len + bytes.len()) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.raw_len += bytes.len();
            }
            None => self.oversize = true,
        }
    }

    /// Feeds bytes read from the UART; calls `on_frame` for every complete
    /// frame with at least one valid group.
    pub fn feed(&mut self, input: &[u8], now_ms: u64, on_frame: &mut dyn FnMut(ReceivedFrame<'_>)) {
        let mut rest = input;
        while !rest.is_empty() {
            let (used, frame) = self.feed_until_frame(rest, now_ms);
            if let Some(frame) = frame {
                on_frame(frame);
            }
            rest = &rest[used..];
        }
    }

    /// Feeds bytes until a frame completes; returns how many bytes were
    /// consumed and the frame, if one completed. For async callers that
    /// must `await` between frames (call again with the rest of the input).
    pub fn feed_until_frame(
        &mut self,
        input: &[u8],
        now_ms: u64,
    ) -> (usize, Option<ReceivedFrame<'_>>) {
        let mut consumed_total = 0;
        while consumed_total < input.len() {
            let rest = &input[consumed_total..];
            let (used, event) = self.decoder.feed(rest);
            let step = match event {
                Some(Event::FrameStart) => Step::Start,
                Some(Event::Group(_)) => Step::Valid,
                Some(Event::Rejected(_)) => Step::Rejected,
                Some(Event::FrameEnd(end)) => Step::End(*end),
                None => Step::Nothing,
            };
            consumed_total += used;
            if let Step::Start = step {
                // Everything before the STX is noise between frames.
                self.in_frame = true;
                self.oversize = false;
                self.raw_len = 0;
                self.append(&[tic::STX]);
                continue;
            }
            if self.in_frame {
                self.append(&rest[..used]);
            }
            match step {
                Step::Valid => self.detector.on_valid_group(now_ms),
                Step::Rejected => {
                    self.counters.bump(Counter::RejectedGroups);
                    self.detector.on_rejected_group(now_ms);
                }
                Step::End(end) => {
                    if let Some(meta) = self.end_frame(end) {
                        return (consumed_total, Some(self.frame_view(meta)));
                    }
                }
                Step::Start | Step::Nothing => {}
            }
            if used == 0 && matches!(step, Step::Nothing) {
                // Defensive: a decoder that neither consumes nor reports
                // would spin forever.
                return (input.len(), None);
            }
        }
        (consumed_total, None)
    }

    fn frame_view(&self, meta: FrameMeta) -> ReceivedFrame<'_> {
        ReceivedFrame {
            bytes: &self.raw[..self.raw_len],
            mode: meta.mode,
            valid_groups: meta.valid_groups,
            rejected_groups: meta.rejected_groups,
        }
    }

    /// Closes the frame; returns its summary when it is worth queueing.
    fn end_frame(&mut self, end: FrameEnd) -> Option<FrameMeta> {
        self.in_frame = false;
        if self.oversize {
            self.counters.bump(Counter::OversizeFrames);
            return None;
        }
        if !end.complete || end.reason != EndReason::Etx {
            self.counters.bump(Counter::IncompleteFrames);
            return None;
        }
        if end.stats.valid_groups == 0 {
            return None;
        }
        let mode = match end.stats.mode {
            Some(Mode::Historic) => LineMode::Historic,
            Some(Mode::Standard) => LineMode::Standard,
            None => LineMode::Unknown,
        };
        Some(FrameMeta {
            mode,
            valid_groups: end.stats.valid_groups,
            rejected_groups: end.stats.rejected,
        })
    }
}

/// Summary of a finished frame, kept apart from the raw bytes' borrow.
#[derive(Debug, Clone, Copy)]
struct FrameMeta {
    mode: LineMode,
    valid_groups: u16,
    rejected_groups: u16,
}
