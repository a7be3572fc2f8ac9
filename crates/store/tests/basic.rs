//! Behaviour of the public API against a real SQLite file.

mod common;

use common::{open, TempDir};
use store::{
    Aggregator, Bucketing, Period, SeriesKey, Source, Store, StoreConfig, StoreError, WriteBatch,
};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn key(metric: &str) -> SeriesKey {
    SeriesKey::new(metric, [("meter", "041776199277")]).unwrap()
}

#[test]
fn write_read_reopen_checkpoint() {
    let dir = TempDir::new("basic");
    let ids;
    {
        let s = open(&dir);
        ids = s.series_ids(&[key("SINSTS"), key("EAST")]).unwrap();
        let mut b = WriteBatch::new();
        for i in 0..1000 {
            b.add_point(ids[0], T0 + i * 1000, (i % 7) as f64 * 100.0)
                .unwrap();
            b.add_point(ids[1], T0 + i * 1000, 1_000_000.0 + i as f64)
                .unwrap();
        }
        let r = s.write(b).unwrap();
        assert_eq!(r.points_written, 2000);
        let p = s.read_range(ids[1], T0, T0 + 10_000).unwrap();
        assert_eq!(p.ts_ms.len(), 10);
    }
    // Reopen: the head log is replayed.
    let s = open(&dir);
    assert_eq!(s.find_series(&key("EAST")), Some(ids[1]));
    let p = s.read_range(ids[1], T0, T0 + 1_000_000).unwrap();
    assert_eq!(p.ts_ms.len(), 1000);
    assert_eq!(p.values[999], 1_000_999.0);
    s.checkpoint().unwrap();
    let st = s.stats().unwrap();
    assert_eq!(st.chunk_points, 2000);
    assert_eq!(st.head_points, 0);
    let q = s.read_range(ids[1], T0, T0 + 1_000_000).unwrap();
    assert_eq!(p, q);
    drop(s);
    let s = open(&dir);
    assert_eq!(s.read_range(ids[1], T0, T0 + 1_000_000).unwrap(), p);
    assert_eq!(s.list_series().len(), 2);
    assert_eq!(s.tag_values("meter"), vec!["041776199277".to_string()]);
}

#[test]
fn overwrite_and_out_of_order() {
    let dir = TempDir::new("ooo");
    let s = open(&dir);
    let id = s.series_id(&key("URMS1")).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..100 {
        b.add_point(id, T0 + i * 1000, 230.0).unwrap();
    }
    s.write(b).unwrap();
    s.checkpoint().unwrap();
    let mut b = WriteBatch::new();
    b.add_point(id, T0 + 50_000, 999.0).unwrap(); // overwrite a chunked point
    b.add_point(id, T0 - 1000, 1.0).unwrap(); // older than everything
    b.add_point(id, T0 + 500_000, 2.0).unwrap();
    s.write(b).unwrap();
    let p = s.read_range(id, 0, T0 + 1_000_000).unwrap();
    assert_eq!(p.ts_ms.len(), 102);
    assert_eq!(s.last_point(id).unwrap(), Some((T0 + 500_000, 2.0)));
    assert_eq!(p.values[0], 1.0);
    assert_eq!(p.values[51], 999.0);
    s.checkpoint().unwrap();
    assert_eq!(s.last_point(id).unwrap(), Some((T0 + 500_000, 2.0)));
    // Aggregates see the overwrite exactly once (the dirty series is checkpointed first).
    let agg = s
        .aggregate(
            id,
            T0,
            T0 + 100_000,
            &Bucketing::Width {
                width_ms: 3_600_000,
            },
        )
        .unwrap();
    let a = agg[0].agg.unwrap();
    assert_eq!(a.count, 100);
    assert_eq!(a.max, 999.0);
    assert_eq!(a.sum, 230.0 * 99.0 + 999.0);
}

#[test]
fn uplink_idempotent_and_raw_frames() {
    let dir = TempDir::new("uplink");
    let s = open(&dir);
    let id = s.series_id(&key("SINSTS")).unwrap();
    let src = Source {
        device_id: "esp32-abc".into(),
        boot_id: 42,
    };
    let batch = |from: u64, to: u64| {
        let mut b = WriteBatch::from_source(src.clone());
        for seq in from..=to {
            b.add_frame(
                seq,
                T0 + seq as i64 * 1300,
                format!("frame {seq}").as_bytes(),
            )
            .unwrap();
            b.add_point(id, T0 + seq as i64 * 1300, seq as f64).unwrap();
        }
        b
    };
    let r = s.write(batch(1, 10)).unwrap();
    assert_eq!((r.frames_written, r.highest_durable_seq), (10, Some(10)));
    let r = s.write(batch(5, 15)).unwrap(); // retry overlapping
    assert_eq!(
        (r.frames_written, r.frames_duplicate, r.points_skipped),
        (5, 6, 6)
    );
    assert_eq!(r.highest_durable_seq, Some(15));
    let r = s.write(batch(1, 15)).unwrap();
    assert_eq!((r.frames_written, r.highest_durable_seq), (0, Some(15)));
    assert_eq!(s.uplink_high_water("esp32-abc", 42), Some(15));
    assert_eq!(s.uplink_high_water("esp32-abc", 43), None);
    // A new boot restarts sequence numbers.
    let mut b = WriteBatch::from_source(Source {
        device_id: "esp32-abc".into(),
        boot_id: 43,
    });
    b.add_frame(1, T0 + 100_000, b"after reboot").unwrap();
    assert_eq!(s.write(b).unwrap().frames_written, 1);
    let frames = s.raw_frames("esp32-abc", 0, T0 + 1_000_000, 100).unwrap();
    assert_eq!(frames.len(), 16);
    // The newest frame by time, whatever its boot: here still in the head.
    let last = |s: &Store| s.last_raw_frame("esp32-abc").unwrap().unwrap();
    assert_eq!(
        (last(&s).bytes, last(&s).boot_id, last(&s).ts_ms),
        (b"after reboot".to_vec(), 43, T0 + 100_000)
    );
    assert!(s.last_raw_frame("nobody").unwrap().is_none());
    s.close().unwrap();
    let s = open(&dir);
    // Now from the archived blocks.
    assert_eq!(last(&s).bytes, b"after reboot");
    assert_eq!(s.stats().unwrap().head_points, 0);
    assert_eq!(s.uplink_high_water("esp32-abc", 42), Some(15));
    let r = s.write(batch(14, 16)).unwrap();
    assert_eq!((r.frames_written, r.frames_duplicate), (1, 2));
    let frames = s.raw_frames("esp32-abc", 0, T0 + 1_000_000, 100).unwrap();
    assert_eq!(frames.len(), 17);
    assert_eq!(frames[0].bytes, b"frame 1");
    assert_eq!(frames.iter().filter(|f| f.boot_id == 42).count(), 16);
    // A frame in the head newer than every archived one wins over the blocks.
    let mut b = WriteBatch::from_source(Source {
        device_id: "esp32-abc".into(),
        boot_id: 43,
    });
    b.add_frame(2, T0 + 200_000, b"newest").unwrap();
    s.write(b).unwrap();
    assert_eq!((last(&s).bytes, last(&s).seq), (b"newest".to_vec(), 2));
    assert!(matches!(
        s.raw_frames("esp32-abc", 0, T0 + 1_000_000, 5),
        Err(StoreError::LimitExceeded { .. })
    ));
    let p = s.read_range(id, 0, T0 + 1_000_000).unwrap();
    assert_eq!(p.ts_ms.len(), 16);
    assert_eq!(s.sources(), vec!["esp32-abc".to_string()]);
    // Local serial ports are sources too.
    let mut b = WriteBatch::from_source(Source {
        device_id: "serial:/dev/ttyUSB0".into(),
        boot_id: 1,
    });
    b.add_frame(1, T0, b"local").unwrap();
    assert_eq!(s.write(b).unwrap().frames_written, 1);
    let mut b = WriteBatch::from_source(Source {
        device_id: "bad\nid".into(),
        boot_id: 1,
    });
    b.add_frame(1, T0, b"x").unwrap();
    assert!(matches!(s.write(b), Err(StoreError::InvalidName { .. })));
}

#[test]
fn energy_per_local_day_across_dst() {
    let dir = TempDir::new("energy");
    let s = open(&dir);
    let id = s.series_id(&key("EASF01")).unwrap();
    // 2026-03-27 00:00 Paris (UTC+1) = 2026-03-26T23:00Z; one reading per minute, +1 Wh/min,
    // over 4 local days including the 23 h day 2026-03-29.
    let start: i64 = 1_774_566_000_000;
    assert_eq!(
        start,
        "2026-03-26T23:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    let mut b = WriteBatch::new();
    let minutes = (24 + 24 + 23 + 24) * 60;
    for m in 0..=minutes {
        b.add_point(id, start + m * 60_000, 5_000_000.0 + m as f64)
            .unwrap();
    }
    s.write(b).unwrap();
    s.checkpoint().unwrap();
    let e = s
        .energy_per_period(
            id,
            start,
            start + minutes * 60_000,
            Period::Day,
            "Europe/Paris",
        )
        .unwrap();
    let deltas: Vec<f64> = e.iter().map(|x| x.delta.unwrap_or(-1.0)).collect();
    // The first day starts at the first reading (no earlier one), hence 1439; the reading at
    // exactly `to` is outside the half-open range.
    assert_eq!(deltas, vec![1439.0, 1440.0, 1380.0, 1440.0]);
    assert_eq!(e[2].end_ms - e[2].start_ms, 23 * 3_600_000);
    let months = s
        .energy_per_period(id, start, start + 1, Period::Month, "Europe/Paris")
        .unwrap();
    assert_eq!(months.len(), 1);
    assert_eq!(months[0].delta, Some(minutes as f64));
}

#[test]
fn downsample_uses_rollups_and_matches_raw() {
    let dir = TempDir::new("down");
    let s = open(&dir);
    let id = s.series_id(&key("SINSTS")).unwrap();
    let mut b = WriteBatch::new();
    let mut raw = Vec::new();
    for i in 0..20_000i64 {
        let t = T0 + 17 + i * 1_300;
        let v = ((i * 7919) % 3000) as f64;
        b.add_point(id, t, v).unwrap();
        raw.push((t, v));
    }
    s.write(b).unwrap();
    for checkpointed in [false, true] {
        if checkpointed {
            s.checkpoint().unwrap();
        }
        for (from, to, w) in [
            (T0, T0 + 30_000_000, 3_600_000),
            (T0 + 123_457, T0 + 25_000_001, 600_000),
            (T0 + 5, T0 + 26_000_000, 7_000),
        ] {
            let got = s
                .downsample(
                    id,
                    from,
                    to,
                    &Bucketing::Width { width_ms: w },
                    Aggregator::Max,
                )
                .unwrap();
            let mut want: Vec<(i64, f64)> = Vec::new();
            for &(t, v) in raw.iter().filter(|p| p.0 >= from && p.0 < to) {
                let bs = (t.div_euclid(w) * w).max(from);
                match want.last_mut() {
                    Some(x) if x.0 == bs => x.1 = x.1.max(v),
                    _ => want.push((bs, v)),
                }
            }
            let got: Vec<(i64, f64)> = got.ts_ms.into_iter().zip(got.values).collect();
            assert_eq!(
                got, want,
                "from={from} to={to} w={w} checkpointed={checkpointed}"
            );
        }
    }
}

#[test]
fn retention_drops_old_chunks() {
    let dir = TempDir::new("ret");
    let mut cfg = StoreConfig::default();
    cfg.retention.raw_points_ms = Some(86_400_000);
    cfg.retention.minute_rollups_ms = Some(2 * 86_400_000);
    let s = Store::open(dir.db(), cfg).unwrap();
    let id = s.series_id(&key("SINSTS")).unwrap();
    for day in 0..5 {
        let mut b = WriteBatch::new();
        for i in 0..10_000 {
            b.add_point(id, T0 + day * 86_400_000 + i * 8_000, 1.0)
                .unwrap();
        }
        s.write(b).unwrap();
        s.checkpoint().unwrap();
    }
    let rep = s.apply_retention(T0 + 5 * 86_400_000).unwrap();
    assert!(rep.chunks_deleted[0] >= 1);
    assert_eq!(rep.chunks_deleted[2], 0);
    let p = s.read_range(id, 0, T0 + 10 * 86_400_000).unwrap();
    assert!(p.ts_ms.len() < 50_000 && !p.ts_ms.is_empty());
    // Hourly rollups still answer for the whole period.
    let d = s
        .downsample(
            id,
            T0,
            T0 + 5 * 86_400_000,
            &Bucketing::Width {
                width_ms: 86_400_000,
            },
            Aggregator::Count,
        )
        .unwrap();
    assert_eq!(d.values, vec![10_000.0; 5]);
}

#[test]
fn retention_keeps_minute_summaries_of_retired_raw_points() {
    let dir = TempDir::new("ret-min");
    let day = 86_400_000;
    let mut cfg = StoreConfig::default();
    cfg.retention.raw_points_ms = Some(day);
    let s = Store::open(dir.db(), cfg).unwrap();
    let id = s.series_id(&key("SINSTS")).unwrap();
    // Two days at one point per second: each day is split into chunks of at most
    // CHUNK_MAX_ROWS points, so the first chunk of day 0 ends in the middle of a minute.
    for d in 0..2 {
        let mut b = WriteBatch::new();
        for i in 0..86_400 {
            let t = T0 + d * day + i * 1000;
            b.add_point(id, t, ((i * 7919) % 1000) as f64).unwrap();
        }
        s.write(b).unwrap();
        s.checkpoint().unwrap();
    }
    let (from, to) = (T0, T0 + 2 * day);
    let widths = [60_000, 300_000, 3_600_000, day];
    let before: Vec<_> = widths
        .iter()
        .map(|&w| {
            s.aggregate(id, from, to, &Bucketing::Width { width_ms: w })
                .unwrap()
        })
        .collect();
    // Retire the first chunk only (its last point is 65,535 s into day 0), then everything
    // of day 0.
    for retired_until in [T0 + 70_000_000, T0 + day + 1] {
        let rep = s.apply_retention(retired_until + day).unwrap();
        assert!(rep.chunks_deleted[0] >= 1);
        let p = s.read_range(id, from, to).unwrap();
        assert!(p.ts_ms.len() < 2 * 86_400);
        for (k, &w) in widths.iter().enumerate() {
            let after = s
                .aggregate(id, from, to, &Bucketing::Width { width_ms: w })
                .unwrap();
            assert_eq!(
                after, before[k],
                "width {w} ms after retiring up to {retired_until}"
            );
        }
    }
    // Late points written where raw points were retired are not lost from the raw level.
    let mut b = WriteBatch::new();
    b.add_point(id, T0 + 30 * 60_000 + 500, 5.0).unwrap();
    s.write(b).unwrap();
    s.checkpoint().unwrap();
    assert_eq!(s.read_range(id, T0, T0 + 3_600_000).unwrap().ts_ms.len(), 1);
}

#[test]
fn schema_1_files_are_upgraded_and_newer_ones_refused() {
    let dir = TempDir::new("schema");
    let id = {
        let s = open(&dir);
        let id = s.series_id(&key("SINSTS")).unwrap();
        let mut b = WriteBatch::new();
        b.add_point(id, T0, 1.0).unwrap();
        s.write(b).unwrap();
        s.close().unwrap();
        id
    };
    let set = |v: i64| {
        let c = rusqlite::Connection::open(dir.db()).unwrap();
        c.execute("UPDATE meta SET value = ?1 WHERE key = 'schema'", [v])
            .unwrap();
    };
    let get = || -> i64 {
        let c = rusqlite::Connection::open(dir.db()).unwrap();
        c.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    set(1);
    {
        let s = open(&dir);
        assert_eq!(s.read_range(id, T0, T0 + 1).unwrap().values, vec![1.0]);
    }
    assert_eq!(get(), 2);
    set(3);
    assert!(Store::open(dir.db(), StoreConfig::default()).is_err());
}

#[test]
fn errors_are_explicit() {
    let dir = TempDir::new("err");
    let s = open(&dir);
    let id = s.series_id(&key("X")).unwrap();
    let mut b = WriteBatch::new();
    b.add_point(store::SeriesId(9999), T0, 1.0).unwrap();
    assert!(matches!(s.write(b), Err(StoreError::UnknownSeries(9999))));
    assert!(matches!(
        s.read_range(id, 10, 5),
        Err(StoreError::InvalidRange { .. })
    ));
    assert!(matches!(
        s.aggregate(id, 0, T0, &Bucketing::Width { width_ms: 1000 }),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert!(matches!(
        s.aggregate_boundaries(id, &[5, 5, 6]),
        Err(StoreError::InvalidBuckets(_))
    ));
    assert!(matches!(
        s.energy_per_period(id, 0, T0, Period::Day, "Nowhere/Town"),
        Err(StoreError::UnknownTimeZone { .. })
    ));
    // A second open of the same store is refused.
    assert!(matches!(
        Store::open(dir.db(), StoreConfig::default()),
        Err(StoreError::Io(_))
    ));
    let msg = StoreError::LimitExceeded {
        what: "buckets",
        got: 2,
        max: 1,
        hint: "use wider buckets",
    }
    .to_string();
    assert!(msg.contains("use wider buckets"));
}

#[test]
fn concurrent_writers_group_commit() {
    let dir = TempDir::new("group");
    let s = std::sync::Arc::new(open(&dir));
    let ids = s
        .series_ids(&(0..8).map(|i| key(&format!("M{i}"))).collect::<Vec<_>>())
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            let id = ids[t];
            std::thread::spawn(move || {
                for k in 0..50 {
                    let mut b = WriteBatch::new();
                    for i in 0..20 {
                        b.add_point(id, T0 + (k * 20 + i) * 1000, i as f64).unwrap();
                    }
                    s.write(b).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for id in ids {
        assert_eq!(
            s.read_range(id, 0, T0 + 10_000_000).unwrap().ts_ms.len(),
            1000
        );
    }
}

#[test]
fn local_day_buckets_and_maintenance() {
    let dir = TempDir::new("local");
    let cfg = StoreConfig {
        head_max_age: std::time::Duration::ZERO,
        ..StoreConfig::default()
    };
    let s = Store::open(dir.db(), cfg).unwrap();
    let id = s.series_id(&key("SINSTS")).unwrap();
    // 2026-10-24T22:00Z = 2026-10-25 00:00 Paris (summer time); that local day lasts 25 h.
    let start = "2026-10-24T22:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let mut b = WriteBatch::new();
    for m in 0..(49 * 60) {
        b.add_point(id, start + m * 60_000, 1.0).unwrap();
    }
    s.write(b).unwrap(); // head_max_age = 0: checkpointed right away
    assert_eq!(s.stats().unwrap().head_points, 0);
    s.maintenance().unwrap();
    let local = Bucketing::Local {
        period: Period::Day,
        tz: "Europe/Paris".into(),
    };
    let days = s
        .aggregate(id, start, start + 49 * 3_600_000, &local)
        .unwrap();
    let counts: Vec<u64> = days.iter().map(|d| d.agg.map_or(0, |a| a.count)).collect();
    assert_eq!(counts, vec![25 * 60, 24 * 60]);
    assert_eq!(days[0].end_ms - days[0].start_ms, 25 * 3_600_000);
}

#[test]
fn readers_see_consistent_snapshots_during_checkpoints() {
    let dir = TempDir::new("snap");
    let cfg = StoreConfig {
        head_max_points: 3_000,
        ..StoreConfig::default()
    };
    let s = std::sync::Arc::new(Store::open(dir.db(), cfg).unwrap());
    let id = s.series_id(&key("SINSTS")).unwrap();
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            for k in 0..200i64 {
                let mut b = WriteBatch::new();
                for i in 0..250 {
                    b.add_point(id, T0 + (k * 250 + i) * 1000, i as f64)
                        .unwrap();
                }
                s.write(b).unwrap();
            }
        })
    };
    let mut seen = 0;
    loop {
        // Checked before reading, so the last read sees everything the writer wrote.
        let finished = writer.is_finished();
        let p = s.read_range(id, 0, T0 + 100_000_000).unwrap();
        // Always a prefix 0..n of what was written: nothing missing, nothing twice.
        for (i, t) in p.ts_ms.iter().enumerate() {
            assert_eq!(*t, T0 + i as i64 * 1000);
        }
        assert!(p.ts_ms.len() >= seen);
        seen = p.ts_ms.len();
        let a = s.aggregate(
            id,
            T0,
            T0 + 100_000_000,
            &Bucketing::Width {
                width_ms: 100_000_000,
            },
        );
        let count = a.unwrap()[0].agg.map_or(0, |a| a.count);
        assert!(
            count as usize >= seen && count.is_multiple_of(250),
            "count {count} after {seen}"
        );
        if finished {
            break;
        }
    }
    writer.join().unwrap();
    assert_eq!(seen, 50_000);
}

#[test]
fn compact_leaves_only_the_data_on_disk() {
    let dir = TempDir::new("compact");
    let s = open(&dir);
    let id = s.series_id(&key("SINSTS")).unwrap();
    // Enough batches that the head log spans many pages, all freed by the checkpoint.
    for round in 0..50 {
        let mut b = WriteBatch::new();
        for i in 0..2000 {
            let t = T0 + (round * 2000 + i) * 1000;
            b.add_point(id, t, ((i * 37) % 900) as f64).unwrap();
        }
        s.write(b).unwrap();
    }
    let before = dir_bytes(&dir);
    s.compact().unwrap();
    let after = dir_bytes(&dir);
    assert!(
        after < before,
        "compact did not shrink the directory: {before} -> {after}"
    );
    // The WAL is truncated and no free page is left in the main file.
    let wal: u64 = std::fs::read_dir(dir.db().parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("-wal"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(wal, 0);
    let c =
        rusqlite::Connection::open_with_flags(dir.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let free: i64 = c
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "free pages left in the file");
    // New files: small pages (less slack per blob) and incremental auto-vacuum.
    let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let vacuum: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
    assert_eq!((page, vacuum), (1024, 2));
    drop(c);
    let p = s.read_range(id, T0, T0 + 200_000_000).unwrap();
    assert_eq!(p.ts_ms.len(), 100_000);
}

fn dir_bytes(dir: &TempDir) -> u64 {
    std::fs::read_dir(dir.db().parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}
