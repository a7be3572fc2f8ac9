//! The on-disk frame queue of `teleinfo forward`: an [`uplink::FrameStore`]
//! on append-only segment files, so that the same [`uplink::Uplink`] logic as
//! the ESP32 firmware (sequence numbers, batching, acks, backoff, eviction)
//! runs over a queue that survives restarts, crashes and power cuts.
//!
//! Layout of the queue directory (docs/forward.md says the same for users):
//!
//! * `lock`: held with `flock` while a forwarder runs, so that two processes
//!   never append to the same files.
//! * `device`: the device id the frames were received for (a queue is never
//!   sent under another id).
//! * `NNNNNNNNNNNNNNNN.seg` (16 hex digits, increasing): an 8-byte header
//!   (`TICQ`, version 1, 3 zero bytes) then records, each
//!   `length u32 LE | CRC-32 u32 LE | record`, where the record is the one
//!   the firmware's stores use (`uplink::store::encode_record`: boot id,
//!   sequence number, device time, losslessly compacted frame).
//! * `head`: where the oldest frame not yet acknowledged (nor evicted)
//!   starts: `TICH`, version 1, 3 zero bytes, segment u64, offset u64,
//!   CRC-32 of the 24 bytes before it. Replaced atomically (write, fsync,
//!   rename).
//!
//! Durability: [`DiskQueue::push`] only stages a frame in memory;
//! [`DiskQueue::commit`] writes every staged frame and fsyncs once (group
//! commit). Only committed frames are visible to the sender (`visit_oldest`,
//! `frames`), so nothing is sent before it is on disk. A crash can leave a
//! torn record at the end of the last segment: its CRC fails at the next
//! start and the segment is cut there (that frame was never committed).
//!
//! Freeing: acknowledged and evicted frames are popped in memory and the
//! `head` file moves past them ([`DiskQueue::sync_head`]); whole segments
//! behind the head are then deleted. A crash before `head` is replaced only
//! means the last acknowledged batch is sent again, which the server
//! recognises by its (device, boot, sequence) key and skips.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use uplink::store::{decode_record, encode_record, MAX_RECORD_BYTES};
use uplink::{FrameStore, QueuedFrame, StoreError, MAX_FRAME_BYTES};

const SEGMENT_MAGIC: &[u8; 4] = b"TICQ";
const HEAD_MAGIC: &[u8; 4] = b"TICH";
const VERSION: u8 = 1;
/// Segment file header.
pub const SEGMENT_HEADER_BYTES: u64 = 8;
/// Per-record framing: length and CRC.
pub const RECORD_FRAMING_BYTES: usize = 8;
const HEAD_BYTES: usize = 28;

/// CRC-32 (IEEE, reflected, as in zip and Ethernet), table built at compile
/// time: catches torn and bit-rotted records.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// A position in the queue: segment id and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    seg: u64,
    offset: u64,
}

/// A committed record.
#[derive(Debug, Clone, Copy)]
struct Entry {
    pos: Pos,
    /// Record length (without the framing).
    len: u32,
}

impl Entry {
    fn cost(&self) -> usize {
        self.len as usize + RECORD_FRAMING_BYTES
    }
}

struct Segment {
    id: u64,
    file: File,
    len: u64,
}

/// What [`DiskQueue::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Frames still to send.
    pub frames: usize,
    /// Distinct boots among them.
    pub boots: usize,
    /// Bytes of torn or corrupt records cut off.
    pub cut_bytes: u64,
    /// The `head` file was missing or unreadable (everything on disk is
    /// sent again; the server skips what it already has).
    pub head_reset: bool,
}

/// The queue. Not `Sync`; one task owns it (inside the [`uplink::Uplink`]).
pub struct DiskQueue {
    dir: PathBuf,
    _lock: Flock<File>,
    capacity: usize,
    segment_max: u64,
    segments: VecDeque<Segment>,
    entries: VecDeque<Entry>,
    /// Committed bytes of live records, framing included.
    live_bytes: usize,
    /// Staged records (framing included), oldest first, not yet on disk.
    staged: VecDeque<Vec<u8>>,
    staged_bytes: usize,
    head_dirty: bool,
    read_buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for DiskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskQueue")
            .field("dir", &self.dir)
            .field("frames", &self.entries.len())
            .field("live_bytes", &self.live_bytes)
            .field("staged", &self.staged.len())
            .finish()
    }
}

fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

fn context(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl DiskQueue {
    /// Opens (creating) the queue in `dir` for `device_id`, bounded to
    /// `capacity` bytes of records, and recovers what an earlier run left.
    pub fn open(dir: &Path, device_id: &str, capacity: usize) -> io::Result<(DiskQueue, Recovery)> {
        fs::create_dir_all(dir)
            .map_err(|e| context(e, format!("cannot create {}", dir.display())))?;
        let lock_path = dir.join("lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| context(e, format!("cannot open {}", lock_path.display())))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "the queue {} is in use by another teleinfo forward (one queue directory per forwarder)",
                    dir.display()
                ),
            )
        })?;
        check_device(dir, device_id)?;
        // Segments: at most 1/16 of the capacity each, so that deleting
        // whole acknowledged segments keeps the disk use near the bound.
        let segment_max = (capacity as u64 / 16).clamp(16 * 1024, 4 * 1024 * 1024);
        let mut queue = DiskQueue {
            dir: dir.to_owned(),
            _lock: lock,
            capacity,
            segment_max,
            segments: VecDeque::new(),
            entries: VecDeque::new(),
            live_bytes: 0,
            staged: VecDeque::new(),
            staged_bytes: 0,
            head_dirty: false,
            read_buf: vec![0; MAX_RECORD_BYTES],
            scratch: vec![0; MAX_FRAME_BYTES],
        };
        let recovery = queue.recover()?;
        Ok((queue, recovery))
    }

    fn recover(&mut self) -> io::Result<Recovery> {
        let mut recovery = Recovery::default();
        let head = match read_head(&self.dir.join("head")) {
            Ok(Some(h)) => h,
            Ok(None) => Pos { seg: 0, offset: 0 },
            Err(_) => {
                recovery.head_reset = true;
                Pos { seg: 0, offset: 0 }
            }
        };
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(hex) = name.strip_suffix(".seg") {
                if let Ok(id) = u64::from_str_radix(hex, 16) {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        let mut boots = Vec::new();
        for id in ids {
            let path = self.dir.join(segment_name(id));
            if id < head.seg {
                // Entirely behind the head: acknowledged or evicted.
                fs::remove_file(&path)?;
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| context(e, format!("cannot open {}", path.display())))?;
            let file_len = file.metadata()?.len();
            let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
            if file_len < SEGMENT_HEADER_BYTES
                || file.read_exact_at(&mut header, 0).is_err()
                || &header[..4] != SEGMENT_MAGIC
                || header[4] != VERSION
            {
                // Created but never completed (crash right after creation),
                // or not ours: nothing committed can be in it.
                recovery.cut_bytes += file_len;
                drop(file);
                fs::remove_file(&path)?;
                continue;
            }
            let mut offset = SEGMENT_HEADER_BYTES;
            let mut frame = [0u8; RECORD_FRAMING_BYTES];
            while offset < file_len {
                let ok = file.read_exact_at(&mut frame, offset).is_ok() && {
                    let len = u32::from_le_bytes(frame[..4].try_into().unwrap_or_default());
                    let crc = u32::from_le_bytes(frame[4..].try_into().unwrap_or_default());
                    let len_ok = len as usize > 0
                        && len as usize <= MAX_RECORD_BYTES
                        && offset + (RECORD_FRAMING_BYTES as u64) + u64::from(len) <= file_len;
                    len_ok && {
                        let record = &mut self.read_buf[..len as usize];
                        file.read_exact_at(record, offset + RECORD_FRAMING_BYTES as u64)
                            .is_ok()
                            && crc32(record) == crc
                            && match decode_record(record, &mut self.scratch) {
                                Some(f) => {
                                    let pos = Pos { seg: id, offset };
                                    if pos >= head {
                                        if !boots.contains(&f.boot_id) {
                                            boots.push(f.boot_id);
                                        }
                                        let e = Entry { pos, len };
                                        self.live_bytes += e.cost();
                                        self.entries.push_back(e);
                                    }
                                    offset += (RECORD_FRAMING_BYTES as u64) + u64::from(len);
                                    true
                                }
                                None => false,
                            }
                    }
                };
                if !ok {
                    // A torn write (power cut during an append that was
                    // never acknowledged as committed) or corruption: the
                    // segment ends here.
                    recovery.cut_bytes += file_len - offset;
                    file.set_len(offset)?;
                    file.sync_all()?;
                    break;
                }
            }
            self.segments.push_back(Segment {
                id,
                file,
                len: offset,
            });
        }
        recovery.frames = self.entries.len();
        recovery.boots = boots.len();
        // The head on disk may point before frames that were cut or into
        // deleted segments: rewrite it so it matches what is live.
        self.head_dirty = true;
        self.sync_head()?;
        Ok(recovery)
    }

    /// Frames staged by `push` but not yet committed.
    pub fn staged_frames(&self) -> usize {
        self.staged.len()
    }

    /// Writes every staged frame and makes it durable with one fsync per
    /// touched segment (group commit); returns how many were committed. On
    /// error the staged frames are dropped (the caller counts them lost)
    /// and the segments are cut back to their committed length.
    pub fn commit(&mut self) -> io::Result<usize> {
        if self.staged.is_empty() {
            return Ok(0);
        }
        let before: Vec<(u64, u64)> = self.segments.iter().map(|s| (s.id, s.len)).collect();
        let created_from = self.segments.len();
        let result = self.write_staged();
        let n = self.staged.len();
        self.staged.clear();
        self.staged_bytes = 0;
        match result {
            Ok(new_entries) => {
                for e in new_entries {
                    self.live_bytes += e.cost();
                    self.entries.push_back(e);
                }
                Ok(n)
            }
            Err(e) => {
                for seg in self.segments.iter_mut() {
                    if let Some(&(_, len)) = before.iter().find(|(id, _)| *id == seg.id) {
                        seg.len = len;
                        let _ = seg.file.set_len(len);
                    }
                }
                for seg in self.segments.drain(created_from..) {
                    let _ = fs::remove_file(self.dir.join(segment_name(seg.id)));
                }
                Err(e)
            }
        }
    }

    fn write_staged(&mut self) -> io::Result<Vec<Entry>> {
        let mut touched: Vec<usize> = Vec::new();
        let mut new_segment = false;
        let mut out = Vec::with_capacity(self.staged.len());
        for i in 0..self.staged.len() {
            let cost = self.staged[i].len() as u64;
            let roll = match self.segments.back() {
                None => true,
                Some(s) => s.len > SEGMENT_HEADER_BYTES && s.len + cost > self.segment_max,
            };
            if roll {
                let id = self.segments.back().map_or(0, |s| s.id + 1);
                self.create_segment(id)?;
                new_segment = true;
            }
            let at = self.segments.len() - 1;
            let seg = &mut self.segments[at];
            seg.file
                .write_all_at(&self.staged[i], seg.len)
                .map_err(|e| context(e, format!("cannot write {}", segment_name(seg.id))))?;
            out.push(Entry {
                pos: Pos {
                    seg: seg.id,
                    offset: seg.len,
                },
                len: (cost as usize - RECORD_FRAMING_BYTES) as u32,
            });
            seg.len += cost;
            if !touched.contains(&at) {
                touched.push(at);
            }
        }
        for at in touched {
            let seg = &self.segments[at];
            seg.file
                .sync_data()
                .map_err(|e| context(e, format!("cannot sync {}", segment_name(seg.id))))?;
        }
        if new_segment {
            // The new file's directory entry must be durable too.
            sync_dir(&self.dir)?;
        }
        Ok(out)
    }

    fn create_segment(&mut self, id: u64) -> io::Result<()> {
        let path = self.dir.join(segment_name(id));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| context(e, format!("cannot create {}", path.display())))?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        header[..4].copy_from_slice(SEGMENT_MAGIC);
        header[4] = VERSION;
        file.write_all(&header)?;
        self.segments.push_back(Segment {
            id,
            file,
            len: SEGMENT_HEADER_BYTES,
        });
        Ok(())
    }

    /// Persists where the oldest live frame starts if frames were freed
    /// since the last call, then deletes the segments wholly behind it.
    pub fn sync_head(&mut self) -> io::Result<()> {
        if !self.head_dirty {
            return Ok(());
        }
        let head = match (self.entries.front(), self.segments.back()) {
            (Some(e), _) => e.pos,
            (None, Some(s)) => Pos {
                seg: s.id,
                offset: s.len,
            },
            (None, None) => Pos { seg: 0, offset: 0 },
        };
        let mut bytes = [0u8; HEAD_BYTES];
        bytes[..4].copy_from_slice(HEAD_MAGIC);
        bytes[4] = VERSION;
        bytes[8..16].copy_from_slice(&head.seg.to_le_bytes());
        bytes[16..24].copy_from_slice(&head.offset.to_le_bytes());
        let crc = crc32(&bytes[..24]);
        bytes[24..].copy_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("head.tmp");
        {
            let mut f = File::create(&tmp)
                .map_err(|e| context(e, format!("cannot write {}", tmp.display())))?;
            f.write_all(&bytes)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, self.dir.join("head"))?;
        self.head_dirty = false;
        // Segments wholly behind the head hold only freed frames. Deleting
        // one before the rename above is durable can only make a stale head
        // point into a missing segment, which recovery treats as freed.
        while self.segments.len() > 1 && self.segments[0].id < head.seg {
            if let Some(seg) = self.segments.pop_front() {
                fs::remove_file(self.dir.join(segment_name(seg.id)))?;
            }
        }
        Ok(())
    }

    /// Makes the last `head` rename durable (at shutdown).
    pub fn close(&mut self) -> io::Result<()> {
        self.commit()?;
        self.sync_head()?;
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_head(path: &Path) -> io::Result<Option<Pos>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad head file");
    if bytes.len() != HEAD_BYTES || &bytes[..4] != HEAD_MAGIC || bytes[4] != VERSION {
        return Err(bad());
    }
    let crc = u32::from_le_bytes(bytes[24..28].try_into().map_err(|_| bad())?);
    if crc != crc32(&bytes[..24]) {
        return Err(bad());
    }
    let seg = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| bad())?);
    let offset = u64::from_le_bytes(bytes[16..24].try_into().map_err(|_| bad())?);
    Ok(Some(Pos { seg, offset }))
}

/// A queue is bound to one device id: its frames must never be sent under
/// another one (they would land in another device's history).
fn check_device(dir: &Path, device_id: &str) -> io::Result<()> {
    let path = dir.join("device");
    match fs::read_to_string(&path) {
        Ok(stored) if stored.trim() == device_id => Ok(()),
        Ok(stored) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the queue {} holds frames of device {:?}, not {device_id:?}: use --device-id {} or another --queue",
                dir.display(),
                stored.trim(),
                stored.trim()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let tmp = dir.join("device.tmp");
            {
                let mut f = File::create(&tmp)?;
                writeln!(f, "{device_id}")?;
                f.sync_all()?;
            }
            fs::rename(&tmp, &path)?;
            sync_dir(dir)
        }
        Err(e) => Err(context(e, format!("cannot read {}", path.display()))),
    }
}

impl FrameStore for DiskQueue {
    type Error = io::Error;

    /// Stages the frame; [`DiskQueue::commit`] makes it durable and visible.
    async fn push(&mut self, frame: &QueuedFrame<'_>) -> Result<(), StoreError<io::Error>> {
        let mut buf = vec![0u8; RECORD_FRAMING_BYTES + MAX_RECORD_BYTES];
        let len =
            encode_record(frame, &mut buf[RECORD_FRAMING_BYTES..]).ok_or(StoreError::TooBig)?;
        let cost = RECORD_FRAMING_BYTES + len;
        if cost > self.capacity {
            return Err(StoreError::TooBig);
        }
        if self.live_bytes + self.staged_bytes + cost > self.capacity {
            return Err(StoreError::Full);
        }
        let crc = crc32(&buf[RECORD_FRAMING_BYTES..cost]);
        buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        buf.truncate(cost);
        self.staged_bytes += cost;
        self.staged.push_back(buf);
        Ok(())
    }

    async fn visit_oldest(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), StoreError<io::Error>> {
        for e in &self.entries {
            let Ok(at) = self.segments.binary_search_by_key(&e.pos.seg, |s| s.id) else {
                return Err(StoreError::Corrupt);
            };
            let record = &mut self.read_buf[..e.len as usize];
            self.segments[at]
                .file
                .read_exact_at(record, e.pos.offset + RECORD_FRAMING_BYTES as u64)
                .map_err(StoreError::Backend)?;
            let Some(frame) = decode_record(record, &mut self.scratch) else {
                return Err(StoreError::Corrupt);
            };
            if !visit(&frame) {
                break;
            }
        }
        Ok(())
    }

    async fn pop_oldest(&mut self) -> Result<bool, StoreError<io::Error>> {
        if let Some(e) = self.entries.pop_front() {
            self.live_bytes -= e.cost();
            self.head_dirty = true;
            return Ok(true);
        }
        // Nothing committed: the oldest is staged (only when the capacity
        // is smaller than one group commit).
        match self.staged.pop_front() {
            Some(b) => {
                self.staged_bytes -= b.len();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn frames(&self) -> usize {
        self.entries.len()
    }

    fn used_bytes(&self) -> usize {
        self.live_bytes
    }

    fn capacity_bytes(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// The queue never suspends: one poll completes it.
    fn now<F: Future>(f: F) -> F::Output {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(f).poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the disk queue suspended"),
        }
    }

    fn frame(n: u32) -> Vec<u8> {
        format!("\x02\nADSC\t0{n:011}\t?\r\nSINSTS\t{n:05}\t?\r\x03").into_bytes()
    }

    fn push(q: &mut DiskQueue, boot: u64, seq: u32) {
        let bytes = frame(seq);
        now(q.push(&QueuedFrame {
            boot_id: boot,
            seq,
            device_time_unix_ms: Some(1_700_000_000_000 + u64::from(seq)),
            bytes: &bytes,
        }))
        .unwrap();
    }

    fn seqs(q: &mut DiskQueue) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        now(q.visit_oldest(&mut |f| {
            assert_eq!(f.bytes, frame(f.seq).as_slice());
            out.push((f.boot_id, f.seq));
            true
        }))
        .unwrap();
        out
    }

    #[test]
    fn crc_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn staged_frames_are_invisible_until_committed_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, rec) = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap();
        assert_eq!(rec.frames, 0);
        for s in 0..5 {
            push(&mut q, 7, s);
        }
        assert_eq!(q.frames(), 0);
        assert_eq!(seqs(&mut q), vec![]);
        assert_eq!(q.commit().unwrap(), 5);
        assert_eq!(seqs(&mut q).len(), 5);
        // Two acknowledged.
        assert!(now(q.pop_oldest()).unwrap());
        assert!(now(q.pop_oldest()).unwrap());
        q.sync_head().unwrap();
        // A crash: the process goes away without closing.
        drop(q);
        let (mut q, rec) = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap();
        assert_eq!((rec.frames, rec.boots, rec.cut_bytes), (3, 1, 0));
        assert_eq!(seqs(&mut q), vec![(7, 2), (7, 3), (7, 4)]);
        push(&mut q, 8, 0);
        q.commit().unwrap();
        drop(q);
        let (mut q, rec) = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap();
        assert_eq!((rec.frames, rec.boots), (4, 2));
        assert_eq!(seqs(&mut q), vec![(7, 2), (7, 3), (7, 4), (8, 0)]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_earlier_frames_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap();
        for s in 0..3 {
            push(&mut q, 1, s);
        }
        q.commit().unwrap();
        drop(q);
        let seg = dir.path().join(segment_name(0));
        let len = fs::metadata(&seg).unwrap().len();
        // Half of a fourth record, as a power cut during its write leaves.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 5, 6]).unwrap();
        drop(f);
        let (mut q, rec) = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap();
        assert_eq!((rec.frames, rec.cut_bytes), (3, 10));
        assert_eq!(fs::metadata(&seg).unwrap().len(), len);
        assert_eq!(seqs(&mut q).len(), 3);
        // A flipped bit in the last record: cut from there.
        drop(q);
        let mut bytes = fs::read(&seg).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x10;
        fs::write(&seg, &bytes).unwrap();
        let (mut q, rec) = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap();
        assert_eq!(rec.frames, 2);
        assert_eq!(seqs(&mut q), vec![(1, 0), (1, 1)]);
    }

    #[test]
    fn bounded_with_segments_deleted_behind_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = 64 * 1024;
        let (mut q, _) = DiskQueue::open(dir.path(), "pi", capacity).unwrap();
        let mut seq = 0;
        let mut evicted = 0;
        // Far more than fits: the oldest are evicted as the uplink does.
        for _ in 0..5000 {
            let bytes = frame(seq);
            let f = QueuedFrame {
                boot_id: 3,
                seq,
                device_time_unix_ms: None,
                bytes: &bytes,
            };
            loop {
                match now(q.push(&f)) {
                    Ok(()) => break,
                    Err(StoreError::Full) => {
                        assert!(now(q.pop_oldest()).unwrap());
                        evicted += 1;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            seq += 1;
            if seq % 7 == 0 {
                q.commit().unwrap();
                q.sync_head().unwrap();
            }
        }
        q.commit().unwrap();
        q.sync_head().unwrap();
        assert!(evicted > 0);
        assert!(q.used_bytes() <= capacity);
        let on_disk: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(
            on_disk <= (capacity as u64) + q.segment_max + 1024,
            "{on_disk} bytes on disk"
        );
        let kept = seqs(&mut q);
        assert_eq!(kept.len() + evicted, 5000);
        assert_eq!(kept.last(), Some(&(3, 4999)));
        drop(q);
        let (mut q, rec) = DiskQueue::open(dir.path(), "pi", capacity).unwrap();
        assert_eq!(rec.frames, kept.len());
        assert_eq!(seqs(&mut q), kept);
    }

    #[test]
    fn one_forwarder_per_queue_and_one_device_per_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (_q, _) = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap();
        let busy = DiskQueue::open(dir.path(), "pi", 1 << 20).unwrap_err();
        assert!(busy.to_string().contains("in use"), "{busy}");
        drop(_q);
        let other = DiskQueue::open(dir.path(), "garage", 1 << 20).unwrap_err();
        assert!(other.to_string().contains("--device-id pi"), "{other}");
    }
}
