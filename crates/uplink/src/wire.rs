//! The device→server batch: a versioned, bounded, little-endian binary body
//! sent as `POST` with `Content-Type: application/vnd.teleinfo.batch`.
//!
//! The layout is documented byte by byte in `docs/uplink.md`; the constants
//! below are the protocol limits both sides enforce. Every multi-byte integer
//! is little-endian because both ends (RISC-V ESP32s, x86/ARM servers) are.
//!
//! Frames of one batch carry consecutive sequence numbers starting at
//! [`BatchHeader::first_seq`], so the numbers are implicit: frame `i` has
//! `first_seq + i`. The device always sends from the oldest frame it holds,
//! so a batch is a contiguous run of its queue and the server can tell
//! "retransmission" (first_seq ≤ acked) from "frames evicted on the device"
//! (first_seq > acked + 1) without per-frame numbers.

/// `"TICB"`: lets the server reject a body that is not a batch at all.
pub const BATCH_MAGIC: [u8; 4] = *b"TICB";
/// The only version this crate writes and reads.
pub const BATCH_VERSION: u8 = 1;
/// Largest body the server accepts (and the decoder checks first).
pub const MAX_BATCH_BYTES: usize = 32 * 1024;
/// Most frames in one batch.
pub const MAX_BATCH_FRAMES: usize = 64;
/// Largest raw frame (STX..ETX). A full standard frame stays under 2 KiB
/// (tic-protocol.md §1.6).
pub const MAX_FRAME_BYTES: usize = 2048;
/// Longest device id, in bytes.
pub const MAX_DEVICE_ID_BYTES: usize = 32;
/// Longest firmware version string, in bytes.
pub const MAX_FIRMWARE_VERSION_BYTES: usize = 32;
/// Most telemetry counters a batch may carry. Decoders keep the first
/// [`Counter::COUNT`] they know and skip the rest, so a newer firmware with
/// more counters still talks to an older server.
pub const MAX_COUNTERS: usize = 32;
/// `rssi_dbm` value meaning "not connected / unknown".
pub const RSSI_UNKNOWN: i8 = i8::MIN;

/// Fixed part of a batch before the variable-length device id.
const PREAMBLE_BYTES: usize = 4 + 1 + 1;
/// Bytes of one frame's header (time + length).
pub const FRAME_HEADER_BYTES: usize = 8 + 2;

/// The line state the device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineMode {
    /// Still detecting the baud rate, or no signal.
    #[default]
    Unknown,
    /// Locked on historic mode (1200 Bd).
    Historic,
    /// Locked on standard mode (9600 Bd).
    Standard,
}

impl LineMode {
    fn to_byte(self) -> u8 {
        match self {
            LineMode::Unknown => 0,
            LineMode::Historic => 1,
            LineMode::Standard => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(LineMode::Unknown),
            1 => Some(LineMode::Historic),
            2 => Some(LineMode::Standard),
            _ => None,
        }
    }
}

/// The per-error counters, in their wire order. Never reorder: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Counter {
    /// UART bytes received with a parity, framing or overrun error.
    UartErrors = 0,
    /// Groups rejected by the protocol core (checksum, syntax).
    RejectedGroups = 1,
    /// Frames that ended without ETX (EOT, cut, new STX inside a frame).
    IncompleteFrames = 2,
    /// Frames longer than [`MAX_FRAME_BYTES`], dropped.
    OversizeFrames = 3,
    /// Frames evicted unsent because the queue was full (oldest first).
    EvictedFrames = 4,
    /// Baud-rate changes made by the mode detector.
    ModeChanges = 5,
    /// Posts that failed (network, HTTP status, bad ack).
    PostFailures = 6,
    /// WiFi (re)connections.
    WifiConnects = 7,
    /// Errors of the persistent queue store.
    StoreErrors = 8,
    /// Frames accepted into the queue since boot.
    QueuedFrames = 9,
}

impl Counter {
    /// Number of counters this version knows.
    pub const COUNT: usize = 10;
    /// Every counter in wire order.
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::UartErrors,
        Counter::RejectedGroups,
        Counter::IncompleteFrames,
        Counter::OversizeFrames,
        Counter::EvictedFrames,
        Counter::ModeChanges,
        Counter::PostFailures,
        Counter::WifiConnects,
        Counter::StoreErrors,
        Counter::QueuedFrames,
    ];

    /// Stable snake_case name (for server metrics).
    pub fn name(self) -> &'static str {
        match self {
            Counter::UartErrors => "uart_errors",
            Counter::RejectedGroups => "rejected_groups",
            Counter::IncompleteFrames => "incomplete_frames",
            Counter::OversizeFrames => "oversize_frames",
            Counter::EvictedFrames => "evicted_frames",
            Counter::ModeChanges => "mode_changes",
            Counter::PostFailures => "post_failures",
            Counter::WifiConnects => "wifi_connects",
            Counter::StoreErrors => "store_errors",
            Counter::QueuedFrames => "queued_frames",
        }
    }
}

/// Device health sent with every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Telemetry {
    /// Line state.
    pub line_mode: LineMode,
    /// WiFi signal, dBm; [`RSSI_UNKNOWN`] when unknown.
    pub rssi_dbm: i8,
    /// Seconds since boot.
    pub uptime_s: u32,
    /// Free heap, bytes.
    pub free_heap_bytes: u32,
    /// Frames waiting in the device queue (this batch's included).
    pub queued_frames: u32,
    /// Bytes those frames occupy in the queue store.
    pub queued_bytes: u32,
    /// Capacity of the queue store, bytes.
    pub queue_capacity_bytes: u32,
    /// Cumulative counters since boot, indexed by [`Counter`].
    pub counters: [u32; Counter::COUNT],
}

impl Telemetry {
    /// One counter's value.
    pub fn counter(&self, counter: Counter) -> u32 {
        self.counters[counter as usize]
    }
}

/// Everything in a batch except the frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader<'a> {
    /// Device id, 1–32 bytes of `[0-9A-Za-z._-]`.
    pub device_id: &'a str,
    /// Random per boot; with the device id and the sequence number it makes
    /// every frame's idempotency key.
    pub boot_id: u64,
    /// Firmware version, 0–32 printable ASCII bytes.
    pub firmware_version: &'a str,
    /// Device health.
    pub telemetry: Telemetry,
    /// Sequence number of the first frame (the next one to assign when the
    /// batch has no frame).
    pub first_seq: u32,
}

/// One frame as read back from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameView<'a> {
    /// Sequence number within (device id, boot id).
    pub seq: u32,
    /// Device wall-clock time at reception (Unix ms), if the device clock
    /// was synchronised (SNTP) then.
    pub device_time_unix_ms: Option<u64>,
    /// Raw frame bytes, STX..ETX as received.
    pub bytes: &'a [u8],
}

/// The part of the body a decode error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Magic, version, flags.
    Preamble,
    /// Device id length or bytes.
    DeviceId,
    /// Boot id.
    BootId,
    /// Firmware version length or bytes.
    FirmwareVersion,
    /// The fixed telemetry block.
    Telemetry,
    /// The counter count or values.
    Counters,
    /// First sequence number and frame count.
    FrameCount,
    /// A frame's time and length.
    FrameHeader,
    /// A frame's bytes.
    FrameBytes,
}

/// Why a body is not a valid batch. Each variant names exactly what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The body is longer than [`MAX_BATCH_BYTES`].
    Oversize {
        /// Body length.
        len: usize,
    },
    /// The body ended inside `field`.
    Truncated {
        /// Field being read.
        field: Field,
        /// Offset where the read started.
        offset: usize,
    },
    /// The first four bytes are not [`BATCH_MAGIC`].
    BadMagic,
    /// A version this decoder does not know.
    UnsupportedVersion(u8),
    /// Reserved flag bits set.
    UnknownFlags(u8),
    /// Device id length outside 1..=32.
    DeviceIdLength(u8),
    /// Device id byte outside `[0-9A-Za-z._-]`.
    DeviceIdByte(u8),
    /// Firmware version longer than 32 bytes.
    FirmwareVersionLength(u8),
    /// Firmware version byte outside printable ASCII.
    FirmwareVersionByte(u8),
    /// Line mode byte not 0, 1 or 2.
    BadLineMode(u8),
    /// More than [`MAX_COUNTERS`] counters.
    TooManyCounters(u8),
    /// More than [`MAX_BATCH_FRAMES`] frames.
    TooManyFrames(u16),
    /// `first_seq + frame_count - 1` does not fit in u32.
    SequenceOverflow,
    /// A frame of length 0 or over [`MAX_FRAME_BYTES`].
    FrameLength {
        /// Index of the frame in the batch.
        index: u16,
        /// Its declared length.
        len: u16,
    },
    /// Bytes after the last frame.
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            DecodeError::Oversize { len } => {
                write!(f, "batch of {len} bytes exceeds {MAX_BATCH_BYTES}")
            }
            DecodeError::Truncated { field, offset } => {
                write!(f, "batch truncated in {field:?} at offset {offset}")
            }
            DecodeError::BadMagic => write!(f, "not a teleinfo batch (bad magic)"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported batch version {v}"),
            DecodeError::UnknownFlags(v) => write!(f, "unknown flags {v:#04x}"),
            DecodeError::DeviceIdLength(n) => write!(f, "device id length {n} not in 1..=32"),
            DecodeError::DeviceIdByte(b) => write!(f, "device id byte {b:#04x} not allowed"),
            DecodeError::FirmwareVersionLength(n) => {
                write!(f, "firmware version length {n} over 32")
            }
            DecodeError::FirmwareVersionByte(b) => {
                write!(f, "firmware version byte {b:#04x} not printable")
            }
            DecodeError::BadLineMode(b) => write!(f, "line mode {b} unknown"),
            DecodeError::TooManyCounters(n) => write!(f, "{n} counters, over {MAX_COUNTERS}"),
            DecodeError::TooManyFrames(n) => write!(f, "{n} frames, over {MAX_BATCH_FRAMES}"),
            DecodeError::SequenceOverflow => write!(f, "sequence numbers overflow u32"),
            DecodeError::FrameLength { index, len } => {
                write!(f, "frame {index} length {len} not in 1..={MAX_FRAME_BYTES}")
            }
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} bytes after the last frame")
            }
        }
    }
}

/// Why a batch could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer cannot hold even the header.
    BufferTooSmall,
    /// Device id empty, too long or with a byte outside `[0-9A-Za-z._-]`.
    InvalidDeviceId,
    /// Firmware version too long or not printable ASCII.
    InvalidFirmwareVersion,
    /// Frame empty or over [`MAX_FRAME_BYTES`].
    InvalidFrameLength(usize),
    /// The frame does not fit in the remaining buffer / [`MAX_BATCH_BYTES`].
    BatchFull,
    /// The batch already holds [`MAX_BATCH_FRAMES`] frames (or the writer's
    /// own lower limit).
    TooManyFrames,
    /// The next sequence number would overflow u32.
    SequenceOverflow,
}

fn is_device_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

fn is_printable(byte: u8) -> bool {
    (0x20..=0x7E).contains(&byte)
}

/// Checks a device id against the wire rules (also used by the server to
/// validate configuration).
pub fn valid_device_id(id: &str) -> bool {
    (1..=MAX_DEVICE_ID_BYTES).contains(&id.len()) && id.bytes().all(is_device_id_byte)
}

fn valid_firmware_version(version: &str) -> bool {
    version.len() <= MAX_FIRMWARE_VERSION_BYTES && version.bytes().all(is_printable)
}

/// Size of the encoded header for these strings.
pub fn header_len(device_id: &str, firmware_version: &str) -> usize {
    PREAMBLE_BYTES
        + 1
        + device_id.len()
        + 8
        + 1
        + firmware_version.len()
        + TELEMETRY_FIXED_BYTES
        + 1
        + 4 * Counter::COUNT
        + 4
        + 2
}

/// line mode, rssi, uptime, heap, queued frames, queued bytes, capacity.
const TELEMETRY_FIXED_BYTES: usize = 1 + 1 + 4 + 4 + 4 + 4 + 4;

/// Writes a batch into a caller buffer, frame by frame.
///
/// The header is written at construction; [`push_frame`](Self::push_frame)
/// appends frames with consecutive sequence numbers; [`finish`](Self::finish)
/// patches the frame count and returns the body. No allocation.
#[derive(Debug)]
pub struct BatchWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    frame_count_at: usize,
    first_seq: u32,
    frames: u16,
    limit_bytes: usize,
    limit_frames: usize,
}

impl<'b> BatchWriter<'b> {
    /// Starts a batch. The body will never exceed `buf.len()` nor
    /// [`MAX_BATCH_BYTES`].
    pub fn new(buf: &'b mut [u8], header: &BatchHeader<'_>) -> Result<Self, EncodeError> {
        if !valid_device_id(header.device_id) {
            return Err(EncodeError::InvalidDeviceId);
        }
        if !valid_firmware_version(header.firmware_version) {
            return Err(EncodeError::InvalidFirmwareVersion);
        }
        let limit_bytes = buf.len().min(MAX_BATCH_BYTES);
        if header_len(header.device_id, header.firmware_version) > limit_bytes {
            return Err(EncodeError::BufferTooSmall);
        }
        let mut writer = BatchWriter {
            buf,
            len: 0,
            frame_count_at: 0,
            first_seq: header.first_seq,
            frames: 0,
            limit_bytes,
            limit_frames: MAX_BATCH_FRAMES,
        };
        writer.put(&BATCH_MAGIC);
        writer.put(&[BATCH_VERSION, 0]);
        // Lengths fit in u8: checked by the validators above.
        writer.put(&[header.device_id.len() as u8]);
        writer.put(header.device_id.as_bytes());
        writer.put(&header.boot_id.to_le_bytes());
        writer.put(&[header.firmware_version.len() as u8]);
        writer.put(header.firmware_version.as_bytes());
        let t = &header.telemetry;
        writer.put(&[t.line_mode.to_byte(), t.rssi_dbm as u8]);
        for value in [
            t.uptime_s,
            t.free_heap_bytes,
            t.queued_frames,
            t.queued_bytes,
            t.queue_capacity_bytes,
        ] {
            writer.put(&value.to_le_bytes());
        }
        writer.put(&[Counter::COUNT as u8]);
        for value in t.counters {
            writer.put(&value.to_le_bytes());
        }
        writer.put(&header.first_seq.to_le_bytes());
        writer.frame_count_at = writer.len;
        writer.put(&[0, 0]);
        Ok(writer)
    }

    /// Lowers the frame limit below [`MAX_BATCH_FRAMES`] (device policy).
    pub fn with_frame_limit(mut self, frames: usize) -> Self {
        self.limit_frames = frames.clamp(1, MAX_BATCH_FRAMES);
        self
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Would a frame of `frame_len` bytes still fit?
    pub fn fits(&self, frame_len: usize) -> bool {
        usize::from(self.frames) < self.limit_frames
            && self.len + FRAME_HEADER_BYTES + frame_len <= self.limit_bytes
    }

    /// Sequence number the next pushed frame gets.
    pub fn next_seq(&self) -> Option<u32> {
        self.first_seq.checked_add(u32::from(self.frames))
    }

    /// Frames written so far.
    pub fn frame_count(&self) -> usize {
        usize::from(self.frames)
    }

    /// Body bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no frame was written.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Appends one frame; it gets sequence number [`next_seq`](Self::next_seq).
    pub fn push_frame(
        &mut self,
        device_time_unix_ms: Option<u64>,
        bytes: &[u8],
    ) -> Result<u32, EncodeError> {
        if bytes.is_empty() || bytes.len() > MAX_FRAME_BYTES {
            return Err(EncodeError::InvalidFrameLength(bytes.len()));
        }
        if usize::from(self.frames) >= self.limit_frames {
            return Err(EncodeError::TooManyFrames);
        }
        let seq = self.next_seq().ok_or(EncodeError::SequenceOverflow)?;
        if !self.fits(bytes.len()) {
            return Err(EncodeError::BatchFull);
        }
        // 0 is "not synchronised": a real clock never reads 1970-01-01T00:00Z.
        self.put(&device_time_unix_ms.unwrap_or(0).to_le_bytes());
        self.put(&(bytes.len() as u16).to_le_bytes());
        self.put(bytes);
        self.frames += 1;
        Ok(seq)
    }

    /// Writes the frame count and returns the finished body.
    pub fn finish(self) -> &'b [u8] {
        let at = self.frame_count_at;
        self.buf[at..at + 2].copy_from_slice(&self.frames.to_le_bytes());
        &self.buf[..self.len]
    }
}

/// A decoded batch, borrowing the body. Built by [`decode_batch`], which has
/// already validated every frame, so iterating cannot fail.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    /// The header.
    pub header: BatchHeader<'a>,
    frame_count: u16,
    frames_at: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Number of frames.
    pub fn frame_count(&self) -> usize {
        usize::from(self.frame_count)
    }

    /// Sequence number of the last frame, if any.
    pub fn last_seq(&self) -> Option<u32> {
        if self.frame_count == 0 {
            None
        } else {
            Some(self.header.first_seq + u32::from(self.frame_count) - 1)
        }
    }

    /// The frames, in order.
    pub fn frames(&self) -> Frames<'a> {
        Frames {
            rest: self.frames_at,
            next_seq: self.header.first_seq,
            remaining: self.frame_count,
        }
    }
}

/// Iterator over a validated batch's frames.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
    next_seq: u32,
    remaining: u16,
}

impl<'a> Iterator for Frames<'a> {
    type Item = FrameView<'a>;

    fn next(&mut self) -> Option<FrameView<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // Validated by decode_batch; `get` keeps this panic-free regardless.
        let time = u64::from_le_bytes(self.rest.get(..8)?.try_into().ok()?);
        let len = usize::from(u16::from_le_bytes(self.rest.get(8..10)?.try_into().ok()?));
        let bytes = self.rest.get(10..10 + len)?;
        self.rest = &self.rest[10 + len..];
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.remaining -= 1;
        Some(FrameView {
            seq,
            device_time_unix_ms: (time != 0).then_some(time),
            bytes,
        })
    }
}

/// Bounds-checked reader: every read names the field it is in, so a short
/// body reports exactly where it ended.
struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.body.len());
        match end {
            Some(end) => {
                let bytes = &self.body[self.at..end];
                self.at = end;
                Ok(bytes)
            }
            None => Err(DecodeError::Truncated {
                field,
                offset: self.at,
            }),
        }
    }

    fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: Field) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: Field) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: Field) -> Result<u64, DecodeError> {
        let b = self.take(8, field)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(b);
        Ok(u64::from_le_bytes(le))
    }
}

/// Parses and fully validates a batch body. Never panics, whatever the input.
pub fn decode_batch(body: &[u8]) -> Result<Batch<'_>, DecodeError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(DecodeError::Oversize { len: body.len() });
    }
    let mut r = Reader { body, at: 0 };
    if r.take(4, Field::Preamble)? != BATCH_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u8(Field::Preamble)?;
    if version != BATCH_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let flags = r.u8(Field::Preamble)?;
    if flags != 0 {
        return Err(DecodeError::UnknownFlags(flags));
    }

    let id_len = r.u8(Field::DeviceId)?;
    if id_len == 0 || usize::from(id_len) > MAX_DEVICE_ID_BYTES {
        return Err(DecodeError::DeviceIdLength(id_len));
    }
    let id = r.take(usize::from(id_len), Field::DeviceId)?;
    if let Some(&bad) = id.iter().find(|&&b| !is_device_id_byte(b)) {
        return Err(DecodeError::DeviceIdByte(bad));
    }
    let boot_id = r.u64(Field::BootId)?;

    let fw_len = r.u8(Field::FirmwareVersion)?;
    if usize::from(fw_len) > MAX_FIRMWARE_VERSION_BYTES {
        return Err(DecodeError::FirmwareVersionLength(fw_len));
    }
    let fw = r.take(usize::from(fw_len), Field::FirmwareVersion)?;
    if let Some(&bad) = fw.iter().find(|&&b| !is_printable(b)) {
        return Err(DecodeError::FirmwareVersionByte(bad));
    }

    let mode_byte = r.u8(Field::Telemetry)?;
    let line_mode = LineMode::from_byte(mode_byte).ok_or(DecodeError::BadLineMode(mode_byte))?;
    let rssi_dbm = r.u8(Field::Telemetry)? as i8;
    let uptime_s = r.u32(Field::Telemetry)?;
    let free_heap_bytes = r.u32(Field::Telemetry)?;
    let queued_frames = r.u32(Field::Telemetry)?;
    let queued_bytes = r.u32(Field::Telemetry)?;
    let queue_capacity_bytes = r.u32(Field::Telemetry)?;
    let counter_count = r.u8(Field::Counters)?;
    if usize::from(counter_count) > MAX_COUNTERS {
        return Err(DecodeError::TooManyCounters(counter_count));
    }
    let mut counters = [0u32; Counter::COUNT];
    for i in 0..usize::from(counter_count) {
        let value = r.u32(Field::Counters)?;
        // Counters from a newer firmware that this version does not know are skipped.
        if let Some(slot) = counters.get_mut(i) {
            *slot = value;
        }
    }

    let first_seq = r.u32(Field::FrameCount)?;
    let frame_count = r.u16(Field::FrameCount)?;
    if usize::from(frame_count) > MAX_BATCH_FRAMES {
        return Err(DecodeError::TooManyFrames(frame_count));
    }
    if frame_count > 0 && first_seq.checked_add(u32::from(frame_count) - 1).is_none() {
        return Err(DecodeError::SequenceOverflow);
    }
    let frames_start = r.at;
    for index in 0..frame_count {
        r.u64(Field::FrameHeader)?;
        let len = r.u16(Field::FrameHeader)?;
        if len == 0 || usize::from(len) > MAX_FRAME_BYTES {
            return Err(DecodeError::FrameLength { index, len });
        }
        r.take(usize::from(len), Field::FrameBytes)?;
    }
    if r.at != body.len() {
        return Err(DecodeError::TrailingBytes {
            count: body.len() - r.at,
        });
    }

    // Both strings were checked to be ASCII above, so they are valid UTF-8.
    let device_id = core::str::from_utf8(id).map_err(|_| DecodeError::DeviceIdByte(0))?;
    let firmware_version =
        core::str::from_utf8(fw).map_err(|_| DecodeError::FirmwareVersionByte(0))?;
    Ok(Batch {
        header: BatchHeader {
            device_id,
            boot_id,
            firmware_version,
            telemetry: Telemetry {
                line_mode,
                rssi_dbm,
                uptime_s,
                free_heap_bytes,
                queued_frames,
                queued_bytes,
                queue_capacity_bytes,
                counters,
            },
            first_seq,
        },
        frame_count,
        frames_at: &body[frames_start..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BatchHeader<'static> {
        let mut telemetry = Telemetry {
            line_mode: LineMode::Standard,
            rssi_dbm: -67,
            uptime_s: 3600,
            free_heap_bytes: 40_000,
            queued_frames: 3,
            queued_bytes: 2600,
            queue_capacity_bytes: 1 << 20,
            counters: [0; Counter::COUNT],
        };
        telemetry.counters[Counter::RejectedGroups as usize] = 7;
        BatchHeader {
            device_id: "linky-01",
            boot_id: 0xDEAD_BEEF_0123_4567,
            firmware_version: "0.1.0",
            telemetry,
            first_seq: 41,
        }
    }

    #[test]
    fn round_trip_with_frames() {
        let mut buf = [0u8; 1024];
        let mut w = BatchWriter::new(&mut buf, &header()).unwrap();
        assert_eq!(
            w.push_frame(Some(1_700_000_000_000), b"\x02\nA B C\r\x03"),
            Ok(41)
        );
        assert_eq!(w.push_frame(None, b"\x02\x03"), Ok(42));
        let body = w.finish();
        let batch = decode_batch(body).unwrap();
        assert_eq!(batch.header, header());
        assert_eq!(batch.last_seq(), Some(42));
        let frames: Vec<_> = batch.frames().collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].seq, 41);
        assert_eq!(frames[0].device_time_unix_ms, Some(1_700_000_000_000));
        assert_eq!(frames[1].bytes, b"\x02\x03");
        assert_eq!(frames[1].device_time_unix_ms, None);
    }

    #[test]
    fn every_truncation_is_reported_as_truncated() {
        let mut buf = [0u8; 1024];
        let mut w = BatchWriter::new(&mut buf, &header()).unwrap();
        w.push_frame(None, b"\x02\nX Y Z\r\x03").unwrap();
        let body = w.finish().to_vec();
        for cut in 0..body.len() {
            assert!(
                matches!(
                    decode_batch(&body[..cut]),
                    Err(DecodeError::Truncated { .. })
                ),
                "cut at {cut}: {:?}",
                decode_batch(&body[..cut])
            );
        }
    }

    #[test]
    fn precise_errors() {
        let mut buf = [0u8; 512];
        let body = BatchWriter::new(&mut buf, &header())
            .unwrap()
            .finish()
            .to_vec();
        let mut bad = body.clone();
        bad[0] = b'X';
        assert_eq!(decode_batch(&bad).unwrap_err(), DecodeError::BadMagic);
        let mut bad = body.clone();
        bad[4] = 2;
        assert_eq!(
            decode_batch(&bad).unwrap_err(),
            DecodeError::UnsupportedVersion(2)
        );
        let mut bad = body.clone();
        bad[5] = 1;
        assert_eq!(
            decode_batch(&bad).unwrap_err(),
            DecodeError::UnknownFlags(1)
        );
        let mut bad = body.clone();
        bad[6] = 0;
        assert_eq!(
            decode_batch(&bad).unwrap_err(),
            DecodeError::DeviceIdLength(0)
        );
        let mut bad = body.clone();
        bad[7] = b' ';
        assert_eq!(
            decode_batch(&bad).unwrap_err(),
            DecodeError::DeviceIdByte(b' ')
        );
        let mut bad = body.clone();
        bad.push(0);
        assert_eq!(
            decode_batch(&bad).unwrap_err(),
            DecodeError::TrailingBytes { count: 1 }
        );
        let big = vec![0u8; MAX_BATCH_BYTES + 1];
        assert_eq!(
            decode_batch(&big).unwrap_err(),
            DecodeError::Oversize {
                len: MAX_BATCH_BYTES + 1
            }
        );
        // Frame count over the limit.
        let mut bad = body.clone();
        let at = bad.len() - 2;
        bad[at..].copy_from_slice(&(MAX_BATCH_FRAMES as u16 + 1).to_le_bytes());
        assert_eq!(
            decode_batch(&bad).unwrap_err(),
            DecodeError::TooManyFrames(65)
        );
    }

    #[test]
    fn writer_enforces_limits() {
        let mut buf = [0u8; 200];
        assert_eq!(
            BatchWriter::new(
                &mut buf,
                &BatchHeader {
                    device_id: "",
                    ..header()
                }
            )
            .unwrap_err(),
            EncodeError::InvalidDeviceId
        );
        let mut w = BatchWriter::new(&mut buf, &header()).unwrap();
        assert_eq!(
            w.push_frame(None, &[]),
            Err(EncodeError::InvalidFrameLength(0))
        );
        assert_eq!(
            w.push_frame(None, &[b'x'; 150]),
            Err(EncodeError::BatchFull)
        );
        let mut small = [0u8; 10];
        assert_eq!(
            BatchWriter::new(&mut small, &header()).unwrap_err(),
            EncodeError::BufferTooSmall
        );
        let mut buf = [0u8; 4096];
        let mut w = BatchWriter::new(&mut buf, &header())
            .unwrap()
            .with_frame_limit(2);
        w.push_frame(None, b"a").unwrap();
        w.push_frame(None, b"b").unwrap();
        assert_eq!(w.push_frame(None, b"c"), Err(EncodeError::TooManyFrames));
    }

    #[test]
    fn sequence_overflow_is_refused() {
        let mut buf = [0u8; 512];
        let h = BatchHeader {
            first_seq: u32::MAX,
            ..header()
        };
        let mut w = BatchWriter::new(&mut buf, &h).unwrap();
        assert_eq!(w.push_frame(None, b"a"), Ok(u32::MAX));
        assert_eq!(w.push_frame(None, b"b"), Err(EncodeError::SequenceOverflow));
    }
}
