//! Decoding throughput of `tic::Decoder` against the `teleinfo-nom` crate and
//! against loops summing the buffer's bytes (what reading it costs).
//!
//! The stream repeats every complete frame of the real captures in
//! `shared/testdata/real` (or `$TIC_TESTDATA`) that both parsers accept in
//! full, up to 64 MiB (`$TIC_BENCH_MB`). Without the captures (a fresh clone)
//! it repeats one standard and one historic frame built with `tic::encode`.
//!
//! Each contender does its complete job on every frame:
//! * `tic`: every group through [`Decoder`] (framing, checksum, syntax, label
//!   lookup, format check, horodate), then the typed value of each group is
//!   read (`number()`, `Stge::parse`, `DayProfile::parse`, the horodate).
//! * `teleinfo-nom`: its frame splitter, its group parser (label tables,
//!   horodates) and its checksum validation, through its public `parser`
//!   module. That skips the `String` copies and `HashMap` its `get_message`
//!   adds, so it is the peer's best case.
//! * `byte-sum`: the reference the throughput target is set against (issue
//!   #2): a plain loop summing the buffer's bytes into a `u64`
//!   (`for &b in bytes { sum += b as u64 }`).
//! * `byte-sum-u16`: the same sum in 16-bit lanes, which the compiler
//!   vectorises several times better: where memory is slow it runs at the
//!   memory-read limit; on a machine with fast memory, at the vector units'
//!   rate. Shown so that the ratio to either loop can be read.
//!
//! After criterion's measurements, the contenders run again interleaved,
//! `$TIC_BENCH_ROUNDS` rounds (default 5), and a table of the median
//! throughputs (from thread CPU time) and ratios is printed: interleaving and
//! CPU time keep the comparison fair on a busy machine.
//! `TIC_BENCH_TABLE_ONLY=1` skips criterion.

use cpu_time::ThreadTime;
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tic::labels::DataFormat;
use tic::{encode, Decoder, Event, Group, Horodate, Mode};

/// The benchmark stream and what it holds.
struct Stream {
    bytes: Vec<u8>,
    frames: u64,
    groups: u64,
    source: String,
}

fn testdata_dir() -> PathBuf {
    std::env::var_os("TIC_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/real"),
        PathBuf::from,
    )
}

/// Every `STX … ETX` span of a capture.
fn frames_of(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = bytes[at..].iter().position(|&b| b == tic::STX) {
        let start = at + start;
        let Some(len) = bytes[start..].iter().position(|&b| b == tic::ETX) else {
            break;
        };
        let frame = &bytes[start..start + len + 1];
        // A frame cut by a later STX is not complete: keep only the last part.
        let inner_stx = frame.iter().rposition(|&b| b == tic::STX).unwrap_or(0);
        out.push(&frame[inner_stx..]);
        at = start + len + 1;
    }
    out
}

/// Groups of a frame if `tic` accepts all of them, else `None`.
fn tic_groups(frame: &[u8]) -> Option<u64> {
    let mut decoder = Decoder::new();
    let mut input = frame;
    let (mut groups, mut complete) = (0, false);
    while !input.is_empty() {
        let (used, event) = decoder.feed(input);
        match event {
            Some(Event::Group(_)) => groups += 1,
            Some(Event::Rejected(_)) => return None,
            Some(Event::FrameEnd(end)) => complete = end.complete,
            _ => {}
        }
        input = &input[used..];
    }
    (complete && groups > 0).then_some(groups)
}

/// Groups of a frame if teleinfo-nom parses and validates all of them.
fn nom_groups(frame: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(frame).ok()?;
    let (rest, body) = teleinfo_nom::parser::get_message(text).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let (left, (lines, mode)) = teleinfo_nom::parser::parser_message(body).ok()?;
    let n = lines.len() as u64;
    (left.is_empty() && teleinfo_nom::parser::validate_message(mode, lines)).then_some(n)
}

/// Real frames accepted in full by both parsers, with their group counts.
fn real_frames() -> Vec<(Vec<u8>, u64)> {
    let Ok(dir) = std::fs::read_dir(testdata_dir()) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut frames = Vec::new();
    for path in paths {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for frame in frames_of(&bytes) {
            if let (Some(ours), Some(theirs)) = (tic_groups(frame), nom_groups(frame)) {
                assert_eq!(ours, theirs, "group count differs in {}", path.display());
                frames.push((frame.to_vec(), ours));
            }
        }
    }
    frames
}

/// One standard and one historic frame, for a clone without the captures.
fn built_frames() -> Vec<(Vec<u8>, u64)> {
    let h = Horodate::parse(b"H200214230804").ok();
    let standard: &[(&str, Option<Horodate>, &str)] = &[
        ("ADSC", None, "041776199277"),
        ("VTIC", None, "02"),
        ("DATE", h, ""),
        ("NGTF", None, "     TEMPO      "),
        ("LTARF", None, "   HC  BLANC    "),
        ("EAST", None, "021849106"),
        ("EASF01", None, "004855593"),
        ("EASF02", None, "014090959"),
        ("EASD01", None, "021849106"),
        ("IRMS1", None, "003"),
        ("URMS1", None, "237"),
        ("PREF", None, "30"),
        ("PCOUP", None, "30"),
        ("SINSTS", None, "02700"),
        ("SMAXSN", h, "10802"),
        ("SMAXSN-1", h, "09562"),
        ("CCASN", h, "01650"),
        ("UMOY1", h, "237"),
        ("STGE", None, "463A0800"),
        ("MSG1", None, "PAS DE          MESSAGE         "),
        ("PRM", None, "07361794479930"),
        ("RELAIS", None, "001"),
        ("NTARF", None, "03"),
        ("NJOURF", None, "00"),
        ("NJOURF+1", None, "00"),
        (
            "PJOURF+1",
            None,
            "00004001 06004002 22004001 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE",
        ),
    ];
    let historic: &[(&str, Option<Horodate>, &str)] = &[
        ("ADCO", None, "021861348497"),
        ("OPTARIF", None, "BBR("),
        ("ISOUSC", None, "45"),
        ("BBRHCJB", None, "001478389"),
        ("BBRHPJB", None, "001012295"),
        ("PTEC", None, "HPJB"),
        ("DEMAIN", None, "----"),
        ("IINST", None, "004"),
        ("IMAX", None, "090"),
        ("PAPP", None, "00950"),
        ("HHPHC", None, "A"),
        ("MOTDETAT", None, "000000"),
    ];
    [(Mode::Standard, standard), (Mode::Historic, historic)]
        .into_iter()
        .map(|(mode, groups)| {
            let mut out = Vec::new();
            encode::write_frame(mode, groups.iter().copied(), &mut |b| {
                out.extend_from_slice(b)
            })
            .expect("valid groups");
            (out, groups.len() as u64)
        })
        .collect()
}

fn build_stream(mib: usize) -> Stream {
    let target = mib << 20;
    let mut frames = real_frames();
    let source = if frames.is_empty() {
        frames = built_frames();
        "frames built with tic::encode (no captures found)".to_owned()
    } else {
        format!(
            "{} real frames from {}",
            frames.len(),
            testdata_dir().display()
        )
    };
    let mut stream = Stream {
        bytes: Vec::with_capacity(target + 4096),
        frames: 0,
        groups: 0,
        source,
    };
    'fill: loop {
        for (frame, groups) in &frames {
            if stream.bytes.len() >= target {
                break 'fill;
            }
            stream.bytes.extend_from_slice(frame);
            stream.frames += 1;
            stream.groups += groups;
        }
    }
    stream
}

// ---------------------------------------------------------------------------
// The contenders. Each returns a value derived from everything it decoded, so
// that nothing can be optimised away, plus the count of frames it accepted.

/// Reads the typed value of a group, as a consumer would.
#[inline]
fn touch(group: &Group<'_>) -> u64 {
    let typed = match group.info.map(|i| i.format) {
        Some(DataFormat::Digits) => group.number().unwrap_or(0),
        Some(DataFormat::Hex) if group.label == "STGE" => {
            tic::stge::Stge::parse(group.value_bytes()).map_or(0, |s| s.0 as u64)
        }
        Some(DataFormat::DayProfile) => tic::profile::DayProfile::parse(group.value_bytes())
            .map_or(0, |p| p.slots().count() as u64),
        _ => group.value_bytes().len() as u64,
    };
    let when = group.horodate.map_or(0, |h| h.second as u64 + h.day as u64);
    typed ^ when ^ group.checksum as u64
}

fn run_tic(bytes: &[u8]) -> (u64, u64) {
    let mut decoder = Decoder::new();
    let mut input = bytes;
    let (mut acc, mut frames) = (0u64, 0u64);
    while !input.is_empty() {
        let (used, event) = decoder.feed(input);
        match event {
            Some(Event::Group(group)) => acc = acc.wrapping_add(touch(&group)),
            Some(Event::FrameEnd(end)) => frames += end.complete as u64,
            Some(Event::Rejected(_)) => acc = acc.wrapping_add(1 << 40),
            _ => {}
        }
        input = &input[used..];
    }
    (acc, frames)
}

fn run_nom(text: &str) -> (u64, u64) {
    use teleinfo_nom::parser;
    let mut input = text;
    let (mut acc, mut frames) = (0u64, 0u64);
    while let Ok((rest, body)) = parser::get_message(input) {
        if let Ok((_, (lines, mode))) = parser::parser_message(body) {
            acc = acc.wrapping_add(lines.len() as u64);
            frames += parser::validate_message(mode, lines) as u64;
        }
        input = rest;
    }
    (acc, frames)
}

fn run_sum(bytes: &[u8]) -> (u64, u64) {
    let mut total = 0u64;
    for &b in bytes {
        total += b as u64;
    }
    (total, 0)
}

fn run_sum_u16(bytes: &[u8]) -> (u64, u64) {
    // 256 bytes fit a u16 sum (256 × 255 < 65536), and u16 lanes are the
    // widest the compiler vectorises well here.
    let total = bytes.chunks(256).fold(0u64, |total, chunk| {
        total + chunk.iter().fold(0u16, |a, &b| a.wrapping_add(b as u16)) as u64
    });
    (total, 0)
}

// ---------------------------------------------------------------------------

const CONTENDERS: [&str; 4] = ["tic", "teleinfo-nom", "byte-sum", "byte-sum-u16"];

fn run(name: &str, stream: &Stream, text: &str) -> (u64, u64) {
    match name {
        "tic" => run_tic(black_box(&stream.bytes)),
        "teleinfo-nom" => run_nom(black_box(text)),
        "byte-sum" => run_sum(black_box(&stream.bytes)),
        _ => run_sum_u16(black_box(&stream.bytes)),
    }
}

fn criterion_benches(c: &mut Criterion, stream: &Stream, text: &str) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(stream.bytes.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for name in CONTENDERS {
        group.bench_with_input(BenchmarkId::from_parameter(name), &name, |b, name| {
            b.iter(|| black_box(run(name, stream, text)))
        });
    }
    group.finish();
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Interleaved rounds and the summary table.
///
/// Throughputs are computed from the thread's CPU time, which leaves out the
/// time the thread spent descheduled (the machines this runs on are shared);
/// the wall-clock figure is shown alongside.
fn table(stream: &Stream, text: &str) {
    let rounds = std::env::var("TIC_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(5)
        .max(1);
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); CONTENDERS.len()];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); CONTENDERS.len()];
    for _ in 0..rounds {
        for (i, name) in CONTENDERS.iter().enumerate() {
            let (start_cpu, start_wall) = (ThreadTime::now(), Instant::now());
            let (_, frames) = black_box(run(name, stream, text));
            cpu[i].push(start_cpu.elapsed().as_secs_f64());
            wall[i].push(start_wall.elapsed().as_secs_f64());
            if !name.starts_with("byte-sum") {
                assert_eq!(frames, stream.frames, "{name} did not accept every frame");
            }
        }
    }
    let mb = stream.bytes.len() as f64 / 1e6;
    // (median, slowest, fastest) in MB/s, and the wall-clock median.
    let rates: Vec<(f64, f64, f64, f64)> = cpu
        .iter_mut()
        .zip(wall.iter_mut())
        .map(|(c, w)| {
            let med = median(c);
            (mb / med, mb / c[c.len() - 1], mb / c[0], mb / median(w))
        })
        .collect();
    let frame_bytes = stream.bytes.len() as f64 / stream.frames as f64;
    println!();
    println!(
        "TIC decode throughput: {:.1} MB, {} frames ({:.0} B/frame), {} groups; {}",
        mb, stream.frames, frame_bytes, stream.groups, stream.source
    );
    println!("median of {rounds} interleaved rounds, thread CPU time (min..max in brackets)");
    println!(
        "{:<14} {:>10} {:>21} {:>13} {:>10} {:>12} {:>12} {:>11}",
        "contender",
        "MB/s",
        "(range)",
        "frames/s",
        "vs nom",
        "vs byte-sum",
        "vs sum-u16",
        "wall MB/s"
    );
    for (name, (rate, lo, hi, wall)) in CONTENDERS.iter().zip(&rates) {
        println!(
            "{:<14} {:>10.1} {:>21} {:>13.0} {:>9.2}x {:>11.1}% {:>11.1}% {:>11.1}",
            name,
            rate,
            format!("({lo:.1}..{hi:.1})"),
            rate * 1e6 / frame_bytes,
            rate / rates[1].0,
            100.0 * rate / rates[2].0,
            100.0 * rate / rates[3].0,
            wall,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then a 1 MiB stream keeps the smoke run short.
    let benching = std::env::args().any(|a| a == "--bench");
    let mib = match std::env::var("TIC_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(mib) if benching => mib,
        _ if benching => 64,
        _ => 1,
    };
    let stream = build_stream(mib);
    let text = std::str::from_utf8(&stream.bytes).expect("the frames are ASCII");
    // Both parsers must accept every frame, or the comparison is meaningless.
    assert_eq!(run_tic(&stream.bytes).1, stream.frames);
    assert_eq!(run_nom(text).1, stream.frames);

    if std::env::var_os("TIC_BENCH_TABLE_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        criterion_benches(&mut c, &stream, text);
        c.final_summary();
    }
    if benching {
        table(&stream, text);
    }
}
