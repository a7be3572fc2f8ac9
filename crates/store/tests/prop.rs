//! Property tests: whatever is written is read back exactly (last write wins per timestamp),
//! and aggregation over arbitrary buckets equals a naive computation over the raw points,
//! with or without checkpoints and reopenings in between.

mod common;

use std::collections::BTreeMap;

use common::TempDir;
use proptest::prelude::*;
use store::{Agg, SeriesKey, Store, StoreConfig, WriteBatch};

const T0: i64 = 1_767_225_600_000;
const SPAN: i64 = 30 * 3_600_000;

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<(usize, i64, i32)>),
    Checkpoint,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0usize..3, 0..SPAN, -1000i32..1000), 1..300).prop_map(Op::Write),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

fn naive(model: &BTreeMap<i64, f64>, from: i64, to: i64) -> Option<Agg> {
    let mut acc: Option<Agg> = None;
    for (&t, &v) in model.range(from..to) {
        let p = Agg::of_point(t, v);
        match &mut acc {
            Some(a) => a.merge(&p),
            None => acc = Some(p),
        }
    }
    acc
}

/// Runs `ops` on a fresh store of three series; returns the store, its ids and the model.
fn run(
    dir: &TempDir,
    cfg: &StoreConfig,
    ops: Vec<Op>,
) -> (Store, Vec<store::SeriesId>, Vec<BTreeMap<i64, f64>>) {
    let mut store = Some(Store::open(dir.db(), cfg.clone()).unwrap());
    let keys: Vec<SeriesKey> = (0..3)
        .map(|i| SeriesKey::new(&format!("S{i}"), [("meter", "1")]).unwrap())
        .collect();
    let ids = store.as_ref().unwrap().series_ids(&keys).unwrap();
    let mut model: Vec<BTreeMap<i64, f64>> = vec![BTreeMap::new(); 3];
    for op in ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Write(points) => {
                let mut b = WriteBatch::new();
                for (k, t, v) in points {
                    b.add_point(ids[k], T0 + t, v as f64).unwrap();
                    model[k].insert(T0 + t, v as f64);
                }
                s.write(b).unwrap();
            }
            Op::Checkpoint => s.checkpoint().unwrap(),
            Op::Reopen => {
                drop(store.take());
                store = Some(Store::open(dir.db(), cfg.clone()).unwrap());
            }
        }
    }
    (store.unwrap(), ids, model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Retention turns retired raw points into minute rollups: buckets made of whole minutes
    /// still equal the naive computation over every point ever written.
    #[test]
    fn whole_minutes_survive_raw_retention(
        ops in prop::collection::vec(op(), 1..12),
        cuts in prop::collection::vec(0..SPAN / 60_000, 1..20),
        retire in prop::collection::vec(20 * 3_600_000..SPAN + 3_600_000, 1..3),
    ) {
        let dir = TempDir::new("prop-ret");
        let mut cfg = StoreConfig { head_max_points: 500, ..StoreConfig::default() };
        let keep = 86_400_000;
        cfg.retention.raw_points_ms = Some(keep);
        let (s, ids, model) = run(&dir, &cfg, ops);
        let mut retire = retire;
        retire.sort_unstable();
        for r in retire {
            s.apply_retention(T0 + r + keep).unwrap();
        }
        let mut bounds: Vec<i64> = cuts.iter().map(|c| T0 + c * 60_000).collect();
        bounds.push(T0);
        bounds.push(T0 + SPAN);
        bounds.sort_unstable();
        bounds.dedup();
        for k in 0..3 {
            let got = s.aggregate_boundaries(ids[k], &bounds).unwrap();
            for (i, bk) in got.iter().enumerate() {
                prop_assert_eq!(bk.agg, naive(&model[k], bounds[i], bounds[i + 1]));
            }
        }
    }

    #[test]
    fn roundtrip_and_aggregates(
        ops in prop::collection::vec(op(), 1..12),
        cuts in prop::collection::vec(0..SPAN, 1..20),
    ) {
        let dir = TempDir::new("prop");
        let cfg = StoreConfig { head_max_points: 500, ..StoreConfig::default() };
        let (store, ids, model) = run(&dir, &cfg, ops);
        let s = &store;
        let mut bounds: Vec<i64> = cuts.iter().map(|c| T0 + c).collect();
        bounds.push(T0);
        bounds.push(T0 + SPAN);
        bounds.sort_unstable();
        bounds.dedup();
        for k in 0..3 {
            let p = s.read_range(ids[k], T0, T0 + SPAN).unwrap();
            let want_ts: Vec<i64> = model[k].keys().copied().collect();
            let want_v: Vec<f64> = model[k].values().copied().collect();
            prop_assert_eq!(&p.ts_ms, &want_ts);
            prop_assert_eq!(&p.values, &want_v);
            if bounds.len() >= 2 {
                let got = s.aggregate_boundaries(ids[k], &bounds).unwrap();
                for (i, bk) in got.iter().enumerate() {
                    // Integer values: sums are exact, so equality is exact too.
                    prop_assert_eq!(bk.agg, naive(&model[k], bounds[i], bounds[i + 1]));
                }
            }
        }
    }
}
