//! The streaming decoder: bytes in, frames and groups out (tic-protocol.md §2).
//!
//! The decoder is a byte-level state machine `Idle → InFrame ⇄ InGroup`, plus a
//! `Skip` state after an overlong group. It holds one group buffer of
//! [`MAX_GROUP_LEN`] bytes and never allocates. When a whole group lies in the
//! chunk being fed, it is checked in place without copying (the fast path);
//! otherwise bytes are copied into the buffer one by one. Both paths give the
//! same events, whatever the chunking (a property test checks it).

use crate::error::ErrorCounts;
use crate::scan::scan;
use crate::syntax::{parse_clean, Group};
use crate::{GroupError, Mode, CR, EOT, ETX, HT, LF, MAX_GROUP_LEN, STX};

/// Bytes between LF and CR a group may hold.
const MAX_CONTENT: usize = MAX_GROUP_LEN - 2;

/// Decoder settings. The defaults follow the Linky spec exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also accept historic groups whose checksum includes the final separator
    /// ("mode 2", §2.5), for old non-Linky meters designed after 2013.
    pub historic_mode2: bool,
}

/// What the decoder found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// An STX opened a frame.
    FrameStart,
    /// A group that passed every check.
    Group(Group<'a>),
    /// A group that failed a check; it is counted in the frame's stats.
    Rejected(Rejection),
    /// The frame ended (ETX, EOT, a new STX, or [`Decoder::finish`]); the
    /// decoder lends how.
    FrameEnd(&'a FrameEnd),
}

/// A rejected group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub error: GroupError,
    /// The mode its separator suggested, when it got that far.
    pub mode: Option<Mode>,
}

/// How a frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// ETX: the frame is complete.
    Etx,
    /// EOT: the meter interrupted the frame (§2.2).
    Eot,
    /// A new STX arrived before ETX.
    NewStx,
    /// The input ended ([`Decoder::finish`]).
    EndOfInput,
}

/// The end of a frame and what it contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEnd {
    /// Ended by ETX.
    pub complete: bool,
    /// What ended it.
    pub reason: EndReason,
    /// What the frame held.
    pub stats: FrameStats,
}

/// Counters of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// The mode of the frame's valid groups; failing those, the mode the
    /// separators of its rejected groups suggested.
    pub mode: Option<Mode>,
    /// Groups that passed every check.
    pub valid_groups: u16,
    /// Groups rejected, all kinds together.
    pub rejected: u16,
    /// Groups rejected, by kind.
    pub errors: ErrorCounts,
    /// Mode suggested by rejected groups, used when no group was valid.
    hinted_mode: Option<Mode>,
}

impl FrameStats {
    const fn new() -> FrameStats {
        FrameStats {
            mode: None,
            valid_groups: 0,
            rejected: 0,
            errors: ErrorCounts::new(),
            hinted_mode: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for STX; everything else is ignored.
    Idle,
    /// Inside a frame, between groups.
    InFrame,
    /// Inside a group (bytes go to the buffer).
    InGroup,
    /// After an overlong group: waiting for LF (or a framing byte).
    Skip,
}

/// The streaming TIC decoder. Its size is fixed: `size_of::<Decoder>()` is
/// at most 200 bytes on 64-bit targets (the 126-byte group buffer plus the
/// frame's counters; a test checks the bound).
///
/// Feed it bytes in chunks of any size with [`Decoder::feed`]; call
/// [`Decoder::finish`] at the end of the input. Bit 7 of every byte is
/// ignored, so a stream captured at 8N1 decodes like the 7E1 stream.
#[derive(Debug, Clone)]
pub struct Decoder {
    options: Options,
    state: State,
    buf: [u8; MAX_CONTENT],
    len: usize,
    /// A bad byte was seen in the current group; it is rejected at its end.
    bad_byte: bool,
    /// The frame in progress (its `stats`), or once it ended, how it ended:
    /// [`Event::FrameEnd`] lends it (a reference keeps the events small, so
    /// that a caller's loop holds a group's event in registers).
    frame: FrameEnd,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the default (spec-exact) options.
    pub const fn new() -> Decoder {
        Self::with_options(Options {
            historic_mode2: false,
        })
    }

    /// A decoder with the given options.
    pub const fn with_options(options: Options) -> Decoder {
        Decoder {
            options,
            state: State::Idle,
            buf: [0; MAX_CONTENT],
            len: 0,
            bad_byte: false,
            frame: FrameEnd {
                complete: false,
                reason: EndReason::EndOfInput,
                stats: FrameStats::new(),
            },
        }
    }

    /// Whether the decoder is inside a frame.
    pub fn in_frame(&self) -> bool {
        self.state != State::Idle
    }

    /// The counters of the frame in progress.
    pub fn current_frame(&self) -> &FrameStats {
        static NONE: FrameStats = FrameStats::new();
        match self.state {
            State::Idle => &NONE,
            _ => &self.frame.stats,
        }
    }

    /// Consumes bytes from `input` until an event is found or the input is
    /// exhausted. Returns how many bytes were consumed and the event, if any.
    ///
    /// Call it again with the rest of the input (`&input[used..]`) until the
    /// input is empty; events borrow the decoder or the input, so use each
    /// before the next call.
    ///
    /// Always inlined: the common case (a whole group at the start of
    /// `input`) is decoded here, so that in the caller's loop the event stays
    /// in registers instead of being copied through memory, which profiles
    /// showed to be a large share of the time per group. Everything else goes
    /// to the byte-level state machine.
    #[inline(always)]
    pub fn feed<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<Event<'a>>) {
        if self.state == State::InFrame && input.first() == Some(&LF) {
            let rest = &input[1..];
            let scanned = scan(rest, MAX_CONTENT + 1);
            let end = scanned.end;
            if end <= MAX_CONTENT && rest.get(end) == Some(&CR) {
                let content = &rest[..end];
                // The valid group is built straight into the returned event
                // (the general `account` goes through a temporary that the
                // compiler copies with mismatched widths, a store-forwarding
                // stall on every group).
                return match parse_clean(content, &scanned, self.options.historic_mode2) {
                    Ok(group) if self.frame.stats.mode.is_none_or(|m| m == group.mode) => {
                        self.frame.stats.mode = Some(group.mode);
                        self.frame.stats.valid_groups =
                            self.frame.stats.valid_groups.saturating_add(1);
                        (end + 2, Some(Event::Group(group)))
                    }
                    result => (
                        end + 2,
                        Some(account(&mut self.frame.stats, result, content)),
                    ),
                };
            }
        }
        // The slow path's group is taken apart and rebuilt here, so that its
        // event lands in a temporary of its own rather than the one the fast
        // path would then fill through memory too (callgrind: 413 -> 407
        // instructions per group).
        match self.feed_bytes(input) {
            (used, Some(Event::Group(group))) => (used, Some(Event::Group(group))),
            other => other,
        }
    }

    /// The fast path: `rest` follows an LF (bit 7 clear) met in `InFrame`; if
    /// the whole group is there (at most `MAX_CONTENT` clean bytes, then CR),
    /// checks it in place and returns the bytes used after the LF and its event.
    #[inline(always)]
    fn whole_group<'a>(&mut self, rest: &'a [u8]) -> Option<(usize, Event<'a>)> {
        let scanned = scan(rest, MAX_CONTENT + 1);
        let end = scanned.end;
        if end > MAX_CONTENT || rest.get(end) != Some(&CR) {
            return None;
        }
        let content = &rest[..end];
        let result = parse_clean(content, &scanned, self.options.historic_mode2);
        Some((end + 1, account(&mut self.frame.stats, result, content)))
    }

    /// [`Decoder::feed`] byte by byte, the fast path aside.
    fn feed_bytes<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<Event<'a>>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Idle => match input[i..].iter().position(|&b| b & 0x7F == STX) {
                    None => return (input.len(), None),
                    Some(p) => {
                        self.frame.stats = FrameStats::default();
                        self.state = State::InFrame;
                        return (i + p + 1, Some(Event::FrameStart));
                    }
                },
                State::InFrame => match input[i] & 0x7F {
                    LF => {
                        // Fast path, as in `feed`, for an LF after other bytes.
                        if input[i] == LF {
                            if let Some((used, event)) = self.whole_group(&input[i + 1..]) {
                                return (i + 1 + used, Some(event));
                            }
                        }
                        self.state = State::InGroup;
                        self.len = 0;
                        self.bad_byte = false;
                        i += 1;
                    }
                    STX => {
                        // Not consumed: it opens the next frame once this one is closed.
                        return (i, Some(self.end_frame(EndReason::NewStx)));
                    }
                    ETX => return (i + 1, Some(self.end_frame(EndReason::Etx))),
                    EOT => return (i + 1, Some(self.end_frame(EndReason::Eot))),
                    // Bytes inside a frame but outside any group are ignored
                    // (e.g. the CR LF pairs some capture paths add).
                    _ => i += 1,
                },
                State::InGroup => {
                    let b = input[i] & 0x7F;
                    match b {
                        CR => {
                            self.state = State::InFrame;
                            let content = &self.buf[..self.len];
                            let result = if self.bad_byte {
                                Err(GroupError::InvalidByte)
                            } else {
                                parse_clean(
                                    content,
                                    &scan(content, usize::MAX),
                                    self.options.historic_mode2,
                                )
                            };
                            return (i + 1, Some(account(&mut self.frame.stats, result, content)));
                        }
                        LF | STX | ETX | EOT => {
                            // Not consumed: it is handled again in `InFrame`.
                            self.state = State::InFrame;
                            return (i, Some(self.reject(GroupError::Truncated)));
                        }
                        _ => {
                            if self.len == MAX_CONTENT {
                                self.state = State::Skip;
                                return (i + 1, Some(self.reject(GroupError::TooLong)));
                            }
                            if !((0x20..=0x7E).contains(&b) || b == HT) {
                                self.bad_byte = true;
                            }
                            self.buf[self.len] = b;
                            self.len += 1;
                            i += 1;
                        }
                    }
                }
                State::Skip => match input[i] & 0x7F {
                    LF | STX | ETX | EOT => self.state = State::InFrame,
                    _ => i += 1,
                },
            }
        }
        (i, None)
    }

    /// Signals the end of the input. Call it until it returns `None`: it
    /// rejects a group in progress, then ends the frame in progress
    /// (incomplete). The decoder is then ready for a new stream.
    pub fn finish(&mut self) -> Option<Event<'_>> {
        match self.state {
            State::Idle => None,
            State::InGroup => {
                self.state = State::InFrame;
                Some(self.reject(GroupError::Truncated))
            }
            State::Skip | State::InFrame => Some(self.end_frame(EndReason::EndOfInput)),
        }
    }

    fn reject(&mut self, error: GroupError) -> Event<'static> {
        count_rejection(&mut self.frame.stats, error, None)
    }

    fn end_frame(&mut self, reason: EndReason) -> Event<'_> {
        self.state = State::Idle;
        // The counters stay until the next frame starts (STX resets them).
        let stats = &mut self.frame.stats;
        if stats.mode.is_none() {
            stats.mode = stats.hinted_mode;
        }
        self.frame.complete = reason == EndReason::Etx;
        self.frame.reason = reason;
        Event::FrameEnd(&self.frame)
    }
}

/// Updates the frame's counters with one group's outcome.
// Inlined so that the group's `Result` goes to the event in registers
// rather than through the stack (a store-forwarding stall in profiles).
#[inline(always)]
/// `content` is the group's, for the mode its separator suggests when it fails.
fn account<'a>(
    frame: &mut FrameStats,
    result: Result<Group<'a>, GroupError>,
    content: &[u8],
) -> Event<'a> {
    match result {
        Ok(group) => match frame.mode {
            Some(mode) if mode != group.mode => {
                count_rejection(frame, GroupError::MixedModes, Some(group.mode))
            }
            _ => {
                frame.mode = Some(group.mode);
                frame.valid_groups = frame.valid_groups.saturating_add(1);
                Event::Group(group)
            }
        },
        Err(error) => count_rejection(frame, error, separator_mode(content)),
    }
}

#[cold]
fn count_rejection<'a>(frame: &mut FrameStats, error: GroupError, mode: Option<Mode>) -> Event<'a> {
    frame.rejected = frame.rejected.saturating_add(1);
    frame.errors.add(&error);
    if frame.hinted_mode.is_none() {
        frame.hinted_mode = mode;
    }
    Event::Rejected(Rejection { error, mode })
}

/// The mode a group's separator before its checksum suggests.
fn separator_mode(content: &[u8]) -> Option<Mode> {
    match content.len().checked_sub(2).map(|i| content[i]) {
        Some(crate::SP) => Some(Mode::Historic),
        Some(HT) => Some(Mode::Standard),
        _ => None,
    }
}
