//! The device core end to end on the host: a simulated meter on a simulated
//! UART, the line receiver and mode detector, the uplink with its queue, and
//! a mock server behind a transport that can be cut.

mod common;

use std::collections::VecDeque;

use common::{MeterMode, MockFlash, MockServer, MockTransport, SimLine};
use embassy_futures::block_on;
use uplink::{
    Clock, Counter, DetectorConfig, FlashBuffers, FlashStore, FrameSink, FrameStore, Identity,
    LineMode, LineReceiver, LineSpeed, LineState, PlatformStatus, RamStore, ReceivedFrame, TicUart,
    Tiered, UartError, Uplink, UplinkConfig,
};

const STEP_MS: u64 = 50;
const IDENTITY: Identity<'static> = Identity {
    device_id: "linky-test",
    firmware_version: "0.1.0-test",
};

struct SimClock(u64);

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
    fn unix_ms(&self) -> Option<u64> {
        None
    }
}

/// The UART: bytes the simulated line produced, delivered in reads of the
/// caller's buffer size; errors as `Err` reads.
struct MockUart {
    speed: LineSpeed,
    fifo: VecDeque<Result<Vec<u8>, UartError>>,
    speed_changes: u32,
}

impl TicUart for MockUart {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        match self.fifo.pop_front() {
            None => Ok(0),
            Some(Err(e)) => Err(e),
            Some(Ok(mut bytes)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                if n < bytes.len() {
                    self.fifo.push_front(Ok(bytes.split_off(n)));
                }
                Ok(n)
            }
        }
    }

    fn set_speed(&mut self, speed: LineSpeed) {
        // Whatever was received at the old speed is garbage: flush it.
        self.speed = speed;
        self.fifo.clear();
        self.speed_changes += 1;
    }
}

/// Queues frames into the uplink and remembers them, to compare with what
/// the server stored.
struct RecordingSink<'a, S> {
    uplink: &'a mut Uplink<S>,
    queued: &'a mut Vec<(u64, u32, Vec<u8>)>,
}

impl<S: FrameStore> FrameSink for RecordingSink<'_, S> {
    async fn frame(&mut self, frame: &ReceivedFrame<'_>, time: Option<u64>, now_ms: u64) {
        if let Ok(seq) = self.uplink.enqueue(frame.bytes, time, now_ms).await {
            self.queued
                .push((self.uplink.boot_id(), seq, frame.bytes.to_vec()));
        }
    }
}

/// The firmware's main loop, minus the hardware.
struct Device<S> {
    line: LineReceiver,
    uart: MockUart,
    uplink: Uplink<S>,
    /// (boot, seq, bytes) of every frame the device queued.
    queued: Vec<(u64, u32, Vec<u8>)>,
    buf: Vec<u8>,
}

impl<S: FrameStore> Device<S>
where
    S::Error: core::fmt::Debug,
{
    fn boot(store: S, boot_id: u64, now_ms: u64) -> Self {
        let line = LineReceiver::new(DetectorConfig::default(), now_ms);
        Device {
            uart: MockUart {
                speed: line.speed(),
                fifo: VecDeque::new(),
                speed_changes: 0,
            },
            line,
            uplink: Uplink::new(store, UplinkConfig::default(), boot_id, now_ms),
            queued: Vec::new(),
            buf: vec![0; UplinkConfig::default().max_batch_bytes],
        }
    }

    fn step(&mut self, now_ms: u64, line: &mut SimLine, transport: &mut MockTransport<'_>) {
        let chunk = line.step(STEP_MS, self.uart.speed);
        for _ in 0..chunk.errors {
            self.uart.fifo.push_back(Err(UartError));
        }
        if !chunk.bytes.is_empty() {
            self.uart.fifo.push_back(Ok(chunk.bytes));
        }
        let clock = SimClock(now_ms);
        let mut sink = RecordingSink {
            uplink: &mut self.uplink,
            queued: &mut self.queued,
        };
        // Read until the FIFO is empty, as the line task does, 64 bytes at
        // a time (the firmware's read buffer).
        let mut read_buf = [0u8; 64];
        loop {
            let drained = self.uart.fifo.is_empty();
            block_on(
                self.line
                    .poll(&mut self.uart, &mut read_buf, &clock, &mut sink),
            );
            if drained {
                break;
            }
        }
        self.send(now_ms, transport);
    }

    fn send(&mut self, now_ms: u64, transport: &mut MockTransport<'_>) {
        let platform = PlatformStatus {
            line_mode: self.line.line_mode(),
            counters: *self.line.counters(),
            ..PlatformStatus::default()
        };
        let _ = block_on(self.uplink.send_due(
            transport,
            &SimClock(now_ms),
            &mut self.buf,
            &IDENTITY,
            &platform,
        ));
    }

    /// Line silent, network up: let the queue drain.
    fn drain(&mut self, mut now_ms: u64, transport: &mut MockTransport<'_>) -> u64 {
        let deadline = now_ms + 30 * 60_000;
        while self.uplink.store().frames() > 0 {
            assert!(now_ms < deadline, "queue never drained");
            now_ms += STEP_MS;
            self.send(now_ms, transport);
        }
        now_ms
    }
}

/// Every queued frame is stored exactly once under its key, in order.
fn assert_exactly_once_in_order(server: &MockServer, queued: &[(u64, u32, Vec<u8>)]) {
    let mut expected: std::collections::BTreeMap<u64, Vec<(u32, Vec<u8>)>> = Default::default();
    for (boot, seq, bytes) in queued {
        expected
            .entry(*boot)
            .or_default()
            .push((*seq, bytes.clone()));
    }
    for (boot, frames) in &expected {
        let stored: Vec<(u32, Vec<u8>)> = server.stored[boot]
            .iter()
            .map(|(s, b)| (*s, b.clone()))
            .collect();
        assert_eq!(stored.len(), frames.len(), "boot {boot:#x}: frame count");
        assert_eq!(&stored, frames, "boot {boot:#x}: frames differ");
        let seqs: Vec<u32> = frames.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (0..frames.len() as u32).collect::<Vec<_>>());
    }
}

/// Queued frames are the meter's frames, consecutive, unaltered.
fn assert_frames_from_meter(line: &SimLine, queued: &[(u64, u32, Vec<u8>)]) {
    let first = line
        .frames_sent
        .iter()
        .position(|f| *f == queued[0].2)
        .expect("first queued frame was sent by the meter");
    for (i, (_, _, bytes)) in queued.iter().enumerate() {
        assert_eq!(&line.frames_sent[first + i], bytes, "queued frame {i}");
    }
}

/// Fixed-size RAM stores live by value (as on the device); half a
/// megabyte of them needs more than a test thread's default stack.
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn server_outage_then_every_frame_exactly_once_in_order() {
    with_big_stack(server_outage_scenario);
}

fn server_outage_scenario() {
    let mut server = MockServer::default();
    let mut line = SimLine::new(MeterMode::Standard, 7);
    let mut device = Device::boot(RamStore::<{ 512 * 1024 }>::new(), 0xB007_0001, 0);
    let mut now = 0;
    // 10 minutes, with the server unreachable from minute 2 to minute 7.
    while now < 10 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: (2 * 60_000..7 * 60_000).contains(&now),
        };
        device.step(now, &mut line, &mut transport);
    }
    let mut transport = MockTransport {
        server: &mut server,
        down: false,
    };
    device.drain(now, &mut transport);

    assert_eq!(device.line.line_mode(), LineMode::Standard);
    // A standard frame every ~0.6 s here (shorter than a real one): 10 min.
    assert!(device.queued.len() > 500, "{}", device.queued.len());
    assert_frames_from_meter(&line, &device.queued);
    assert_exactly_once_in_order(&server, &device.queued);
    assert_eq!(server.duplicates, 0);
    assert!(server.refused > 0, "the outage was exercised");
    assert_eq!(device.uplink.counters().get(Counter::EvictedFrames), 0);
    // Backoff kept the number of refused posts small: at most one a second.
    assert!(server.refused < 300, "{} refused posts", server.refused);
    assert!(server.gaps.is_empty());
}

#[test]
fn lost_replies_cause_retransmissions_that_are_stored_once() {
    let mut server = MockServer {
        lose_reply_every: Some(3),
        ..MockServer::default()
    };
    let mut line = SimLine::new(MeterMode::Standard, 11);
    let mut device = Device::boot(RamStore::<{ 256 * 1024 }>::new(), 0xB007_0002, 0);
    let mut now = 0;
    while now < 3 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: false,
        };
        device.step(now, &mut line, &mut transport);
    }
    server.lose_reply_every = None;
    let mut transport = MockTransport {
        server: &mut server,
        down: false,
    };
    device.drain(now, &mut transport);
    assert!(server.duplicates > 0, "replies were lost, frames resent");
    assert_exactly_once_in_order(&server, &device.queued);
}

#[test]
fn full_queue_evicts_oldest_first_counts_and_reports_it() {
    let mut server = MockServer::default();
    let mut line = SimLine::new(MeterMode::Standard, 13);
    // ~16 KiB: about 30 packed standard frames of this simulator.
    let mut device = Device::boot(RamStore::<{ 16 * 1024 }>::new(), 0xB007_0003, 0);
    let mut now = 0;
    while now < 4 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: (60_000..3 * 60_000).contains(&now),
        };
        device.step(now, &mut line, &mut transport);
    }
    let mut transport = MockTransport {
        server: &mut server,
        down: false,
    };
    device.drain(now, &mut transport);

    let evicted = device.uplink.counters().get(Counter::EvictedFrames);
    assert!(evicted > 100, "{evicted}");
    // The server saw one gap, exactly the evicted frames.
    let boot = 0xB007_0003;
    let gaps = &server.gaps[&boot];
    let lost: u32 = gaps.iter().map(|(from, to)| to - from).sum();
    assert_eq!(lost, evicted);
    // The evicted frames are the oldest unsent: every stored frame is one
    // the device queued, in order, and the newest ones all arrived.
    let stored: Vec<u32> = server.stored[&boot].keys().copied().collect();
    assert_eq!(stored.len() as u32 + evicted, device.queued.len() as u32);
    assert_eq!(*stored.last().unwrap(), device.queued.len() as u32 - 1);
    assert!(stored.windows(2).all(|w| w[0] < w[1]));
    for seq in &stored {
        assert_eq!(
            server.stored[&boot][seq], device.queued[*seq as usize].2,
            "frame {seq}"
        );
    }
    // The telemetry told the server.
    assert_eq!(server.last_evicted_counter, evicted);
}

const FLASH_BYTES: usize = 512 * 1024;

fn mount(flash: MockFlash) -> FlashStore<'static, MockFlash> {
    // Leaked like the firmware's static buffers; a few KiB per test.
    let buffers = Box::leak(Box::new(FlashBuffers::new()));
    block_on(FlashStore::mount(flash, 0..FLASH_BYTES as u32, buffers)).unwrap()
}

type DeviceStore = Tiered<RamStore<{ 32 * 1024 }>, FlashStore<'static, MockFlash>>;

fn reboot_keeps_everything(ram_keep_bytes: usize, graceful: bool) {
    let mut server = MockServer::default();
    let mut line = SimLine::new(MeterMode::Standard, 17);
    let store: DeviceStore = Tiered::new(
        RamStore::new(),
        mount(MockFlash::new(FLASH_BYTES)),
        ram_keep_bytes,
    );
    let mut device = Device::boot(store, 0xB007_0004, 0);
    let mut now = 0;
    // Server down from 30 s; the device resets at 2 min, mid-outage.
    while now < 2 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: now >= 30_000,
        };
        device.step(now, &mut line, &mut transport);
    }
    let unacked_at_reset = device.uplink.store().frames();
    assert!(unacked_at_reset > 100, "{unacked_at_reset}");
    let mut queued = device.queued;
    let mut store = device.uplink.into_store();
    if graceful {
        block_on(store.flush()).unwrap();
    }
    // RAM is gone; only the flash survives the reset.
    let (_ram, flash) = store.into_parts();
    let flash = mount(flash.into_flash());
    assert_eq!(
        flash.frames(),
        unacked_at_reset,
        "everything unacked was on flash"
    );

    let store: DeviceStore = Tiered::new(RamStore::new(), flash, ram_keep_bytes);
    let mut device = Device::boot(store, 0xB007_0005, now);
    while now < 5 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: now < 3 * 60_000,
        };
        device.step(now, &mut line, &mut transport);
    }
    let mut transport = MockTransport {
        server: &mut server,
        down: false,
    };
    device.drain(now, &mut transport);
    queued.extend(device.queued);
    assert_exactly_once_in_order(&server, &queued);
    assert!(server.gaps.is_empty());
}

#[test]
fn reboot_with_write_through_flash_loses_nothing() {
    reboot_keeps_everything(0, false);
}

#[test]
fn planned_reboot_flushes_the_ram_tier_and_loses_nothing() {
    // RAM keeps up to 32 KiB; the flush before the reset saves it.
    reboot_keeps_everything(32 * 1024, true);
}

#[test]
fn mode_change_on_the_line_is_detected() {
    let mut server = MockServer::default();
    let mut line = SimLine::new(MeterMode::Historic, 19);
    let mut device = Device::boot(RamStore::<{ 256 * 1024 }>::new(), 0xB007_0006, 0);
    let mut now = 0;
    let mut locked_historic_at = None;
    while now < 2 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: false,
        };
        device.step(now, &mut line, &mut transport);
        if locked_historic_at.is_none() && device.line.line_mode() == LineMode::Historic {
            locked_historic_at = Some(now);
        }
    }
    // 9600 tried first (5 s), then 1200 locks within a few historic frames.
    let locked = locked_historic_at.expect("locked on historic");
    assert!((5_000..15_000).contains(&locked), "{locked}");
    let historic_frames = device.queued.len();
    assert!(historic_frames > 40);

    // Enedis switches the meter to standard mode.
    line.switch_mode(MeterMode::Standard);
    let switched_at = now;
    let mut locked_standard_at = None;
    while now < switched_at + 2 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: false,
        };
        device.step(now, &mut line, &mut transport);
        if locked_standard_at.is_none() && device.line.line_mode() == LineMode::Standard {
            locked_standard_at = Some(now);
        }
    }
    let delay = locked_standard_at.expect("locked on standard") - switched_at;
    // 30 s of bad line before re-detecting, then 9600 is tried first.
    assert!((30_000..40_000).contains(&delay), "{delay}");
    assert_eq!(device.line.speed(), LineSpeed::Baud9600);
    assert_eq!(device.uart.speed, LineSpeed::Baud9600, "the UART followed");
    assert_eq!(device.uart.speed_changes, 2);
    assert_eq!(device.line.counters().get(Counter::ModeChanges), 2);
    assert_eq!(device.line.line_state(now), LineState::Locked);
    assert!(device.queued.len() > historic_frames + 100);
    let mut transport = MockTransport {
        server: &mut server,
        down: false,
    };
    device.drain(now, &mut transport);
    assert_exactly_once_in_order(&server, &device.queued);
    // Frames of both modes went up.
    let boot = 0xB007_0006;
    let modes: std::collections::BTreeSet<bool> = server.stored[&boot]
        .values()
        .map(|f| f.contains(&b'\t'))
        .collect();
    assert_eq!(modes.len(), 2);
}

#[test]
fn noisy_line_is_counted_never_flips() {
    let mut server = MockServer::default();
    let mut line = SimLine::new(MeterMode::Standard, 23);
    // One group in twenty damaged.
    line.noise_per_mille = 50;
    let mut device = Device::boot(RamStore::<{ 256 * 1024 }>::new(), 0xB007_0007, 0);
    let mut now = 0;
    while now < 5 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: false,
        };
        device.step(now, &mut line, &mut transport);
    }
    assert_eq!(device.line.detector().speed_changes(), 0);
    assert_eq!(device.line.line_mode(), LineMode::Standard);
    assert!(line.corrupted_groups > 200, "{}", line.corrupted_groups);
    // Every damaged group counted (the frame being sent at the end may not
    // be complete yet).
    let rejected = u64::from(device.line.counters().get(Counter::RejectedGroups));
    assert!(
        rejected <= line.corrupted_groups && rejected + 5 >= line.corrupted_groups,
        "{rejected} vs {}",
        line.corrupted_groups
    );
    // Frames with a bad group are still kept raw for the server.
    assert!(device.queued.len() + 2 >= line.frames_sent.len());
}

#[test]
fn single_bad_group_right_after_locking_changes_nothing() {
    let mut line = SimLine::new(MeterMode::Historic, 29);
    let mut receiver = LineReceiver::new(DetectorConfig::default(), 0);
    let mut now = 0;
    while receiver.line_mode() != LineMode::Historic {
        now += STEP_MS;
        let chunk = line.step(STEP_MS, receiver.speed());
        receiver.feed(&chunk.bytes, now, &mut |_| {});
        receiver.tick(now);
        assert!(now < 30_000);
    }
    line.noise_per_mille = 1000;
    // One frame where every group is bad, then clean again.
    let mut bad_frames = 0;
    let mut frames = 0;
    for _ in 0..(60_000 / STEP_MS) {
        now += STEP_MS;
        if line.frames_sent.len() > 1 + frames && line.noise_per_mille > 0 {
            bad_frames += 1;
            frames = line.frames_sent.len();
            if bad_frames == 2 {
                line.noise_per_mille = 0;
            }
        }
        let chunk = line.step(STEP_MS, receiver.speed());
        receiver.feed(&chunk.bytes, now, &mut |_| {});
        assert_eq!(receiver.tick(now), None);
    }
    assert_eq!(receiver.line_mode(), LineMode::Historic);
    assert!(receiver.counters().get(Counter::RejectedGroups) > 0);
}

/// The firmware's 4 MB partition table gives the queue 0x330000 bytes: how
/// many full standard frames fit, and for how long.
#[test]
fn queue_partition_holds_an_hour_of_standard_frames() {
    const PARTITION: usize = 0x33_0000;
    for (three_phase, frame_bytes, min_minutes) in [(false, 865, 80.0), (true, 1252, 60.0)] {
        let buffers = Box::leak(Box::new(FlashBuffers::new()));
        let mut store = block_on(FlashStore::mount(
            MockFlash::new(PARTITION),
            0..PARTITION as u32,
            buffers,
        ))
        .unwrap();
        assert_eq!(
            common::full_standard_frame(0, three_phase).len(),
            frame_bytes
        );
        // One frame every bytes × 10 bits / 9600 Bd, plus the ~25 ms gap.
        let period_s = frame_bytes as f64 * 10.0 / 9600.0 + 0.025;
        let mut seq = 0;
        let mut raw_bytes = 0;
        loop {
            let frame = common::full_standard_frame(u64::from(seq), three_phase);
            let f = uplink::QueuedFrame {
                boot_id: 1,
                seq,
                device_time_unix_ms: Some(1),
                bytes: &frame,
            };
            match block_on(store.push(&f)) {
                Ok(()) => {
                    seq += 1;
                    raw_bytes += frame.len();
                }
                Err(uplink::StoreError::Full) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        let minutes = f64::from(seq) * period_s / 60.0;
        println!(
            "{frame_bytes}-byte frames: {seq} fit, {:.2}x the partition in raw bytes, {minutes:.1} minutes",
            raw_bytes as f64 / PARTITION as f64
        );
        assert!(minutes >= min_minutes, "{frame_bytes}: {minutes:.1} min");
        // And they read back intact.
        let mut back = 0;
        block_on(store.visit_oldest(&mut |f| {
            assert_eq!(
                f.bytes,
                common::full_standard_frame(u64::from(f.seq), three_phase)
            );
            back += 1;
            back < 50
        }))
        .unwrap();
    }
}

#[test]
fn full_flash_evicts_oldest_first_through_both_tiers() {
    let mut server = MockServer::default();
    let mut line = SimLine::new(MeterMode::Standard, 31);
    // 64 KiB of flash (16 pages) behind a 32 KiB RAM tier that spills
    // everything beyond 4 KiB: the outage overflows both.
    let flash = {
        let buffers = Box::leak(Box::new(FlashBuffers::new()));
        block_on(FlashStore::mount(
            MockFlash::new(64 * 1024),
            0..64 * 1024,
            buffers,
        ))
        .unwrap()
    };
    let store: DeviceStore = Tiered::new(RamStore::new(), flash, 4 * 1024);
    let mut device = Device::boot(store, 0xB007_0008, 0);
    let mut now = 0;
    while now < 5 * 60_000 {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: (30_000..4 * 60_000).contains(&now),
        };
        device.step(now, &mut line, &mut transport);
    }
    let mut transport = MockTransport {
        server: &mut server,
        down: false,
    };
    device.drain(now, &mut transport);
    let boot = 0xB007_0008;
    let evicted = device.uplink.counters().get(Counter::EvictedFrames);
    assert!(evicted > 100, "{evicted}");
    let stored: Vec<u32> = server.stored[&boot].keys().copied().collect();
    assert_eq!(stored.len() as u32 + evicted, device.queued.len() as u32);
    // What survived is the newest frames plus those sent before the outage,
    // each exactly as queued, in order.
    assert!(stored.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(*stored.last().unwrap() + 1, device.queued.len() as u32);
    for seq in &stored {
        assert_eq!(server.stored[&boot][seq], device.queued[*seq as usize].2);
    }
    let lost: u32 = server.gaps[&boot].iter().map(|(a, b)| b - a).sum();
    assert_eq!(lost, evicted);
}

#[test]
fn idle_device_sends_telemetry_heartbeats() {
    let mut server = MockServer::default();
    let mut device = Device::boot(RamStore::<4096>::new(), 0xB007_0009, 0);
    let mut now = 0;
    // No meter connected: only heartbeats, one a minute.
    while now < 5 * 60_000 + STEP_MS {
        now += STEP_MS;
        let mut transport = MockTransport {
            server: &mut server,
            down: false,
        };
        device.send(now, &mut transport);
    }
    assert_eq!(server.posts, 5);
    assert!(server.stored.values().all(|frames| frames.is_empty()));
}

#[test]
fn uart_frames_reach_the_uplink_queue_and_line_states_follow() {
    let mut line = SimLine::new(MeterMode::Historic, 37);
    let mut receiver = LineReceiver::new(DetectorConfig::default(), 0);
    let mut uart = MockUart {
        speed: receiver.speed(),
        fifo: VecDeque::new(),
        speed_changes: 0,
    };
    let mut uplink = Uplink::new(
        RamStore::<{ 64 * 1024 }>::new(),
        UplinkConfig::default(),
        1,
        0,
    );
    let mut buf = [0u8; 64];
    assert_eq!(receiver.line_state(0), LineState::NoSignal);
    let mut saw_garbled = false;
    let mut now = 0;
    while now < 60_000 {
        now += STEP_MS;
        let chunk = line.step(STEP_MS, uart.speed);
        uart.fifo.push_back(Ok(chunk.bytes));
        while !uart.fifo.is_empty() {
            // The uplink itself is the frame sink.
            block_on(receiver.poll(&mut uart, &mut buf, &SimClock(now), &mut uplink));
        }
        saw_garbled |= receiver.line_state(now) == LineState::Garbled;
    }
    assert!(saw_garbled, "9600 Bd was tried first");
    assert_eq!(receiver.line_state(now), LineState::Locked);
    assert!(uplink.store().frames() > 20);
    assert_eq!(
        uplink.counters().get(Counter::QueuedFrames) as usize,
        uplink.store().frames()
    );
    // The meter goes silent.
    assert_eq!(receiver.line_state(now + 16_000), LineState::NoSignal);
}

#[test]
fn a_buffer_too_small_for_the_oldest_frame_is_an_error_not_an_empty_batch() {
    let mut uplink = Uplink::new(RamStore::<8192>::new(), UplinkConfig::default(), 1, 0);
    block_on(uplink.enqueue(&[b'x'; 1500], None, 0)).unwrap();
    let mut buf = [0u8; 1024];
    let result = block_on(uplink.prepare(&mut buf, &IDENTITY, &PlatformStatus::default(), 0));
    assert_eq!(
        result,
        Err(uplink::PrepareError::Encode(uplink::EncodeError::BatchFull))
    );
    assert_eq!(uplink.store().frames(), 1);
}
