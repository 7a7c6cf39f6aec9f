//! A dudect-style timing test of SM4 (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant
//! time?", 2017): for each SM4 backend this CPU can run, it times single-block encryptions of
//! two classes of inputs, interleaved at random, and computes Welch's t statistic between the
//! classes' timings:
//!
//! - `key`:  `sm4::encrypt_block(key, B)` with B fixed; class 0 a fixed key, class 1 random keys
//!   (the key schedule runs in every call, so its S-box is measured too);
//! - `data`: `Sm4BlockKey::encrypt_block(block)` with K expanded once before timing; class 0 a
//!   fixed block, class 1 random blocks.
//!
//! Positive controls (review i19 L2): a harness that finds "no dependence" in everything
//! proves nothing, so two runs must come out DEPENDS:
//! - `table-evict` / `data`: the table backend with its S-box lines evicted before each timed
//!   call (a 64 KiB sweep, outside the timed region), the case where the table leaks;
//! - `toy-leak` / `data`: a deliberately leaky comparison of the block with the fixed block
//!   that stops at the first differing byte (the class changes how far it runs).
//!
//! If neither control reaches |t| > 4.5 the report says HARNESS HAS NO POWER; if only the toy
//! does, it says that the table's cache leak is invisible to this harness, so "no dependence
//! found" for the SIMD backends is no evidence about cache timing. The first batch of every run
//! is a discarded warm-up (first use of the engine, page faults); the crop thresholds come from
//! the second.
//!
//! |t| above 4.5 is dudect's threshold for "the timing depends on the class" (a leak, if the
//! measurement is sound); below it, no dependence was found with this many measurements —
//! which is evidence, not proof. The table backend is expected to leak only where its S-box
//! table is not all in L1 cache; in this tight loop it usually is, so a low |t| for the table
//! does not make it constant time. Besides the raw t, t is computed on measurements cropped at
//! the 50th and 90th percentile (as dudect does), which removes the interrupts and migrations a
//! shared machine adds.
//!
//! Not a gate: timing on a shared machine is noisy. The report names the machine's load.
//!
//! Run: `cargo run -p crypto-sm --release --example sm4_dudect -- [--seconds N] [--out PATH]`
//! (`GMCHAIN_SM4_DUDECT_OUT` also names the report file; the default budget is 48 s in all,
//! capped at 60).

use crypto::RandomSource;
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm4::{Backend, Sm4BlockKey, Sm4Secret, encrypt_block};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Welford's running mean and variance.
#[derive(Clone, Copy, Default)]
struct Stats {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Stats {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    fn var(&self) -> f64 {
        if self.n > 1.0 {
            self.m2 / (self.n - 1.0)
        } else {
            0.0
        }
    }
}

/// Welch's t between two classes.
fn welch_t(a: &Stats, b: &Stats) -> f64 {
    let se = (a.var() / a.n + b.var() / b.n).sqrt();
    if se == 0.0 {
        0.0
    } else {
        (a.mean - b.mean) / se
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Key,
    Data,
}

/// What is timed: a backend's SM4, or one of the positive controls.
#[derive(Clone, Copy, PartialEq)]
enum Subject {
    Sm4(Backend),
    /// The table backend with its S-box lines evicted before each call.
    TableEvict,
    /// A comparison that returns at the first differing byte.
    ToyLeak,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Sm4(b) => b.name(),
            Subject::TableEvict => "table-evict",
            Subject::ToyLeak => "toy-leak",
        }
    }
}

/// A deliberately leaky comparison: its running time grows with the common prefix.
#[inline(never)]
fn leaky_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return false;
        }
        // Make each matching byte cost a little, as a real early-exit loop would.
        black_box(x);
    }
    true
}

/// Touches every line of `buf` (larger than L1) so that the SM4 table's lines leave L1.
fn evict(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(64) {
        buf[i] = buf[i].wrapping_add(1);
    }
    black_box(&buf);
}

struct Outcome {
    subject: Subject,
    which: &'static str,
    measurements: usize,
    /// [raw, cropped at p50, cropped at p90] per class
    stats: [[Stats; 2]; 3],
}

impl Outcome {
    fn t(&self, i: usize) -> f64 {
        welch_t(&self.stats[i][0], &self.stats[i][1])
    }

    fn max_abs_t(&self) -> f64 {
        (0..3).map(|i| self.t(i).abs()).fold(0.0, f64::max)
    }
}

const BATCH: usize = 4096;

fn run(subject: Subject, which: Which, budget: Duration, rng: &SeededRandom) -> Outcome {
    let backend = match subject {
        Subject::Sm4(b) => b,
        Subject::TableEvict | Subject::ToyLeak => Backend::Table,
    };
    let _forced = backend.force().expect("an available backend");
    let fixed_key = Sm4Secret::from_slice(&[0x2b; 16]).expect("16-byte key");
    // The `data` test times the block function alone: the schedule is expanded here.
    let block_key = Sm4BlockKey::new(&fixed_key);
    let fixed_block = [0u8; 16];
    let mut sweep = vec![0u8; 64 * 1024];
    let mut stats = [[Stats::default(); 2]; 3];
    let mut cutoffs: Option<(f64, f64)> = None;
    let mut measurements = 0usize;
    let mut warm_up = true;
    let start = Instant::now();
    let mut random = vec![0u8; BATCH * 17];
    let mut times = vec![0f64; BATCH];
    while start.elapsed() < budget {
        rng.fill(&mut random).expect("seeded source");
        // Inputs prepared before timing: the class bit, and a random key or block for class 1.
        let inputs: Vec<(usize, Sm4Secret, [u8; 16])> = random
            .chunks_exact(17)
            .map(|r| {
                let class = usize::from(r[0] & 1);
                let mut v = [0u8; 16];
                v.copy_from_slice(&r[1..]);
                match (which, class) {
                    (Which::Key, 1) => (1, Sm4Secret::from_slice(&v).expect("key"), fixed_block),
                    (Which::Key, _) => (0, fixed_key.clone(), fixed_block),
                    (Which::Data, 1) => (1, fixed_key.clone(), v),
                    (Which::Data, _) => (0, fixed_key.clone(), fixed_block),
                }
            })
            .collect();
        for (t, (_, key, block)) in times.iter_mut().zip(&inputs) {
            if subject == Subject::TableEvict {
                evict(&mut sweep);
            }
            let t0 = Instant::now();
            match (subject, which) {
                (Subject::ToyLeak, _) => {
                    black_box(leaky_eq(black_box(block), black_box(&fixed_block)));
                }
                (_, Which::Key) => {
                    black_box(encrypt_block(black_box(key), black_box(block)));
                }
                (_, Which::Data) => {
                    black_box(block_key.encrypt_block(black_box(block)));
                }
            }
            *t = t0.elapsed().as_nanos() as f64;
        }
        if warm_up {
            // The first batch (first use of the engine, page faults) is discarded.
            warm_up = false;
            continue;
        }
        let (p50, p90) = *cutoffs.get_or_insert_with(|| {
            let mut s = times.clone();
            s.sort_by(f64::total_cmp);
            (s[s.len() / 2], s[s.len() * 9 / 10])
        });
        for (&t, &(class, _, _)) in times.iter().zip(&inputs) {
            stats[0][class].push(t);
            if t <= p50 {
                stats[1][class].push(t);
            }
            if t <= p90 {
                stats[2][class].push(t);
            }
        }
        measurements += BATCH;
    }
    Outcome {
        subject,
        which: if which == Which::Key { "key" } else { "data" },
        measurements,
        stats,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut seconds = 48.0f64;
    let mut out = std::env::var("GMCHAIN_SM4_DUDECT_OUT").ok();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds takes a number")
            }
            "--out" => out = Some(args.next().expect("--out takes a path")),
            other => panic!("unknown argument {other:?} (use --seconds N, --out PATH)"),
        }
    }
    let seconds = seconds.clamp(1.0, 60.0);
    let backends = Backend::available();
    // Two runs per backend, plus the two controls.
    let per_run = Duration::from_secs_f64(seconds / (2 * backends.len() + 2) as f64);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let rng = SeededRandom::new(seed);

    let mut report = String::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_else(|_| "unknown".into());
    let _ = writeln!(report, "SM4 dudect-style timing report (not a gate)");
    let _ = writeln!(report, "cpu features: {}", crypto_sm::arch::cpu_features());
    let _ = writeln!(report, "load average at start: {}", load.trim());
    let _ = writeln!(
        report,
        "budget: {seconds:.0} s, {:.1} s per backend and test; seed {seed}",
        per_run.as_secs_f64()
    );
    for b in Backend::unavailable() {
        let _ = writeln!(report, "backend {b}: UNTESTED on this CPU");
    }
    let _ = writeln!(
        report,
        "{:<12} {:<5} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8}  verdict (|t| > 4.5: timing depends on the class)",
        "backend", "test", "n", "mean0 ns", "mean1 ns", "t raw", "t p50", "t p90"
    );
    print!("{report}");
    let mut runs: Vec<(Subject, Which)> = Vec::new();
    for &b in &backends {
        runs.push((Subject::Sm4(b), Which::Key));
        runs.push((Subject::Sm4(b), Which::Data));
    }
    runs.push((Subject::TableEvict, Which::Data));
    runs.push((Subject::ToyLeak, Which::Data));
    let (mut table_evict_t, mut toy_t) = (0.0f64, 0.0f64);
    for (subject, which) in runs {
        let o = run(subject, which, per_run, &rng);
        let verdict = if o.max_abs_t() > 4.5 {
            "DEPENDS on the class"
        } else {
            "no dependence found"
        };
        let note = match subject {
            Subject::Sm4(b) if !b.is_constant_time() => {
                " (table S-box: not constant time by construction)"
            }
            Subject::Sm4(_) => "",
            Subject::TableEvict => " (positive control: must depend)",
            Subject::ToyLeak => " (positive control: must depend)",
        };
        match subject {
            Subject::TableEvict => table_evict_t = o.max_abs_t(),
            Subject::ToyLeak => toy_t = o.max_abs_t(),
            Subject::Sm4(_) => {}
        }
        let line = format!(
            "{:<12} {:<5} {:>10} {:>9.1} {:>9.1} {:>8.2} {:>8.2} {:>8.2}  {verdict}{note}\n",
            o.subject.name(),
            o.which,
            o.measurements,
            o.stats[0][0].mean,
            o.stats[0][1].mean,
            o.t(0),
            o.t(1),
            o.t(2),
        );
        print!("{line}");
        report += &line;
    }
    // The verdict is the largest |t| of three statistics per run (raw, p50, p90): three
    // looks at the same data, so 4.5 is a little easier to cross than dudect's single test.
    let power = match (table_evict_t > 4.5, toy_t > 4.5) {
        (true, _) => "controls: the harness sees the table backend's leak when its lines are \
                      evicted (table-evict |t| > 4.5)"
            .to_string(),
        (false, true) => format!(
            "controls: WEAK HARNESS: it sees a branch leak (toy-leak |t| {toy_t:.1}) but not the \
             table backend's cache leak even with eviction (table-evict |t| {table_evict_t:.1}); \
             'no dependence found' is no evidence about cache timing"
        ),
        (false, false) => format!(
            "controls: HARNESS HAS NO POWER: neither control reached |t| > 4.5 (table-evict \
             {table_evict_t:.1}, toy-leak {toy_t:.1}); no verdict above means anything"
        ),
    };
    println!("{power}");
    report += &power;
    report.push('\n');
    if let Some(path) = out {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(&path, &report).expect("writing the report");
        println!("report written to {path}");
    }
}
