//! `gmchain bench`: our SM2, SM3 and SM4 throughput on one thread, each set beside
//! `openssl speed` measured in the same run, as a ratio, with the median of several
//! interleaved rounds.
//!
//! Each round measures, operation by operation, ours and then OpenSSL's (the order flips every
//! round so that neither side always runs on a warmer or quieter machine):
//!
//! | row            | ours                                      | OpenSSL 3.0 baseline                           |
//! |----------------|-------------------------------------------|------------------------------------------------|
//! | SM2 sign       | ZA + SM3 + sign of 20 bytes, DER-encode   | `openssl speed -seconds N -elapsed -mr sm2`    |
//! | SM2 verify     | DER-decode + ZA + SM3 + verify            | (same invocation: it does sign, then verify)   |
//! | SM3 (size)     | one-shot `sm3` over the buffer            | `... -mr -bytes SIZE -evp sm3`                 |
//! | SM3 ×64 (size) | `sm3_many` of 64 messages of that size    | (same invocation as the one-message row)       |
//! | SM4-CTR (size) | `ctr_apply` in place                      | `... -mr -bytes SIZE -evp sm4-ctr`             |
//! | SM4-GCM (size) | `encrypt(Gcm)`, 12-byte nonce, no AAD     | none in OpenSSL 3.0: its SM4-CTR at that size  |
//!
//! Rows marked "(previous)" run the implementation before issue 19 in the same rounds: SM2
//! verification on RustCrypto's arithmetic (`sm2::verify_reference`), SM4 on the table S-box
//! (the `table` backend forced on the measuring thread). The SM4 rows without it run the backend
//! this CPU selects, named in the header with the backends it cannot run (not measured).
//!
//! The "SM3 ×64" rows are the multi-message path (issue 19 item 3: transaction IDs, Merkle
//! nodes), eight messages in SIMD lanes where the CPU has them; OpenSSL has no such path, so
//! they sit beside its one-message figure, and the gain is their ratio against the SM3 row of
//! the same size. They have no target.
//!
//! `openssl speed sm2` re-initialises `EVP_DigestSign` with SM3 and the ID
//! "TLSv1.3+GM+Cipher+Suite" for each 20-byte message, so ZA is part of every operation; ours
//! uses the same ID and length. `-elapsed` makes OpenSSL count wall-clock time as we do (its
//! default, user CPU time, would leave out time the scheduler gives to other processes and
//! flatter it on a busy machine). `-mr` gives the machine-readable lines parsed here.

use anyhow::{Context, Result, anyhow, bail};
use crypto::{CryptoError, Signature, Sm4Mode, TLS13_USER_ID, UserId};
use crypto_sm::rng::SystemRandom;
use crypto_sm::sm2::{PrivateKey, verify, verify_reference};
use crypto_sm::sm3::{Sm3Backend, sm3, sm3_many};
use crypto_sm::sm4::{Backend, Sm4Secret, ctr_apply, encrypt};
use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// What `gmchain bench` takes.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Interleaved rounds; the medians over them are compared.
    pub runs: usize,
    /// Seconds per measurement (OpenSSL takes whole seconds: this is rounded, at least 1).
    pub seconds: f64,
    /// The `openssl` command to compare with.
    pub openssl: String,
}

impl Default for BenchArgs {
    fn default() -> Self {
        Self {
            runs: 5,
            seconds: 1.0,
            openssl: "openssl".to_string(),
        }
    }
}

/// The result of a run: one row per operation and size.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub rows: Vec<BenchRow>,
}

/// One operation: our median, the baseline's median, their ratio and the target it must meet.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// E.g. "SM2 verify", "SM3 1 KiB".
    pub name: String,
    /// "ops/s" or "MB/s" (10^6 bytes per second).
    pub unit: String,
    /// Our median over the rounds.
    pub ours: f64,
    /// OpenSSL's median; for SM4-GCM, our SM4-CTR median at the same size.
    pub baseline: Option<f64>,
    /// ours / baseline.
    pub ratio: Option<f64>,
    /// The least acceptable ratio, where the issue sets one.
    pub target: Option<f64>,
    /// Whether ratio ≥ target.
    pub met: Option<bool>,
}

/// The message length `openssl speed sm2` signs.
const SM2_MSG_LEN: usize = 20;
/// Messages per `sm3_many` call in the "SM3 ×64" rows.
const MANY: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Sm2Sign,
    Sm2Verify,
    /// Verification before issue 19 (RustCrypto's arithmetic).
    Sm2VerifyPrevious,
    Sm3(usize),
    /// `sm3_many` of [`MANY`] messages of this size.
    Sm3Many(usize),
    Sm4Ctr(usize),
    Sm4Gcm(usize),
    /// SM4 before issue 19: the table backend.
    Sm4CtrPrevious(usize),
    Sm4GcmPrevious(usize),
}

impl Op {
    const ALL: [Op; 14] = [
        Op::Sm2Sign,
        Op::Sm2Verify,
        Op::Sm2VerifyPrevious,
        Op::Sm3(64),
        Op::Sm3Many(64),
        Op::Sm3(1024),
        Op::Sm3Many(1024),
        Op::Sm3(16 * 1024),
        Op::Sm4Ctr(1024),
        Op::Sm4Ctr(16 * 1024),
        Op::Sm4CtrPrevious(16 * 1024),
        Op::Sm4Gcm(1024),
        Op::Sm4Gcm(16 * 1024),
        Op::Sm4GcmPrevious(16 * 1024),
    ];

    fn name(self) -> String {
        match self {
            Op::Sm2Sign => "SM2 sign".to_string(),
            Op::Sm2Verify => "SM2 verify".to_string(),
            Op::Sm2VerifyPrevious => "SM2 verify (previous)".to_string(),
            Op::Sm3(n) => format!("SM3 {}", size_label(n)),
            Op::Sm3Many(n) => format!("SM3 x{MANY} {}", size_label(n)),
            Op::Sm4Ctr(n) => format!("SM4-CTR {}", size_label(n)),
            Op::Sm4Gcm(n) => format!("SM4-GCM {}", size_label(n)),
            Op::Sm4CtrPrevious(n) => format!("SM4-CTR {} (previous)", size_label(n)),
            Op::Sm4GcmPrevious(n) => format!("SM4-GCM {} (previous)", size_label(n)),
        }
    }

    /// Bytes per operation, for the throughput rows.
    fn bytes(self) -> Option<usize> {
        match self {
            Op::Sm2Sign | Op::Sm2Verify | Op::Sm2VerifyPrevious => None,
            Op::Sm3Many(n) => Some(n * MANY),
            Op::Sm3(n)
            | Op::Sm4Ctr(n)
            | Op::Sm4Gcm(n)
            | Op::Sm4CtrPrevious(n)
            | Op::Sm4GcmPrevious(n) => Some(n),
        }
    }

    /// The SM4 backend the row forces, if any.
    fn backend(self) -> Option<Backend> {
        matches!(self, Op::Sm4CtrPrevious(_) | Op::Sm4GcmPrevious(_)).then_some(Backend::Table)
    }

    fn unit(self) -> &'static str {
        if self.bytes().is_some() {
            "MB/s"
        } else {
            "ops/s"
        }
    }

    /// The ratio to OpenSSL the issues ask for (issue 19: SM2 verification 3×, SM4-CTR and
    /// SM4-GCM 3× OpenSSL's SM4-CTR, SM3 1.2× from 1 KiB; signing 2× from issue 2). The
    /// previous implementation's rows have none: they show what the new code gained.
    fn target(self) -> Option<f64> {
        match self {
            Op::Sm2Verify => Some(3.0),
            Op::Sm2Sign => Some(2.0),
            Op::Sm3(n) if n >= 1024 => Some(1.2),
            Op::Sm3(_) => Some(1.0),
            Op::Sm4Ctr(_) | Op::Sm4Gcm(_) => Some(3.0),
            Op::Sm2VerifyPrevious
            | Op::Sm3Many(_)
            | Op::Sm4CtrPrevious(_)
            | Op::Sm4GcmPrevious(_) => None,
        }
    }

    /// The row whose OpenSSL figure is this row's baseline (OpenSSL 3.0 has no SM4-GCM: its
    /// SM4-CTR at the same size, as issue 19 states the target).
    fn baseline_of(self) -> Op {
        match self {
            Op::Sm2VerifyPrevious => Op::Sm2Verify,
            Op::Sm3Many(n) => Op::Sm3(n),
            Op::Sm4Gcm(n) | Op::Sm4CtrPrevious(n) | Op::Sm4GcmPrevious(n) => Op::Sm4Ctr(n),
            op => op,
        }
    }
}

fn size_label(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

/// The fixed inputs of our side: one key, one signature, buffers.
struct Ours {
    rng: SystemRandom,
    key: PrivateKey,
    id: UserId,
    msg: [u8; SM2_MSG_LEN],
    der: Vec<u8>,
    sm4: Sm4Secret,
    iv: [u8; 16],
    nonce: [u8; 12],
    buf: Vec<u8>,
}

impl Ours {
    fn new() -> Result<Self> {
        let rng = SystemRandom;
        let key = PrivateKey::generate(&rng).context("generating the SM2 bench key")?;
        let id = UserId::new(TLS13_USER_ID)?;
        let msg = [0x5au8; SM2_MSG_LEN];
        let der = key.sign(&id, &msg, &rng)?.to_der();
        Ok(Self {
            rng,
            key,
            id,
            msg,
            der,
            sm4: Sm4Secret::from_slice(&[0x12u8; 16])?,
            iv: [0x34u8; 16],
            nonce: [0x56u8; 12],
            buf: vec![0xa5u8; 16 * 1024],
        })
    }

    /// Runs `op` once.
    fn once(&mut self, op: Op) -> Result<(), CryptoError> {
        match op {
            Op::Sm2Sign => {
                let sig = self.key.sign(&self.id, black_box(&self.msg), &self.rng)?;
                black_box(sig.to_der());
            }
            Op::Sm2Verify => {
                let sig = Signature::from_der(black_box(&self.der))?;
                verify(&self.key.public_key(), &self.id, black_box(&self.msg), &sig)?;
            }
            Op::Sm2VerifyPrevious => {
                let sig = Signature::from_der(black_box(&self.der))?;
                verify_reference(&self.key.public_key(), &self.id, black_box(&self.msg), &sig)?;
            }
            Op::Sm3(n) => {
                black_box(sm3(black_box(&self.buf[..n])));
            }
            Op::Sm3Many(n) => {
                let items: [&[u8]; MANY] = std::array::from_fn(|i| &self.buf[i..i + n]);
                black_box(sm3_many(black_box(&items)));
            }
            Op::Sm4Ctr(n) | Op::Sm4CtrPrevious(n) => {
                ctr_apply(
                    &self.sm4,
                    black_box(&self.iv),
                    black_box(&mut self.buf[..n]),
                )?;
            }
            Op::Sm4Gcm(n) | Op::Sm4GcmPrevious(n) => {
                black_box(encrypt(
                    &self.sm4,
                    Sm4Mode::Gcm,
                    black_box(&self.nonce),
                    &[],
                    black_box(&self.buf[..n]),
                )?);
            }
        }
        Ok(())
    }

    /// Operations per second of `op` over about `seconds`, after a warm-up that also picks a
    /// batch size long enough (≥ 1 ms) that reading the clock costs nothing measurable.
    fn rate(&mut self, op: Op, seconds: f64) -> Result<f64> {
        let fail = |e: CryptoError| anyhow!("{} failed during the benchmark: {e}", op.name());
        let warm_up = Duration::from_secs_f64((seconds / 5.0).clamp(0.05, 0.5));
        let warm_start = Instant::now();
        let mut batch: u64 = 1;
        loop {
            let t = Instant::now();
            for _ in 0..batch {
                self.once(op).map_err(fail)?;
            }
            if t.elapsed() < Duration::from_millis(1) {
                batch = batch.saturating_mul(2);
            } else if warm_start.elapsed() >= warm_up {
                break;
            }
        }
        let target = Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut count: u64 = 0;
        loop {
            for _ in 0..batch {
                self.once(op).map_err(fail)?;
            }
            count += batch;
            let elapsed = start.elapsed();
            if elapsed >= target {
                return Ok(count as f64 / elapsed.as_secs_f64());
            }
        }
    }

    /// `op` in its row's unit: ops/s for SM2, MB/s for the rest.
    fn measure(&mut self, op: Op, seconds: f64) -> Result<f64> {
        // The row's backend on this thread for the measurement only (the guard restores it).
        let _forced = op
            .backend()
            .map(Backend::force)
            .transpose()
            .map_err(|e| anyhow!("{}: {e}", op.name()))?;
        let rate = self.rate(op, seconds)?;
        Ok(match op.bytes() {
            Some(n) => rate * n as f64 / 1e6,
            None => rate,
        })
    }
}

/// One `openssl speed` invocation of a round.
#[derive(Clone, Copy, Debug)]
enum Baseline {
    /// `sm2`: sign/s and verify/s.
    Sm2,
    /// `-bytes N -evp ALG`: bytes/s.
    Evp(&'static str, usize),
}

/// Runs `openssl ARGS` and returns its standard output.
fn run_openssl(openssl: &str, args: &[String]) -> Result<String> {
    let shown = format!("{openssl} {}", args.join(" "));
    let out = Command::new(openssl)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{shown}`: is OpenSSL installed and on PATH?"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        bail!("`{shown}` failed ({}): {first}", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{shown}` printed non-UTF-8 output"))
}

fn speed_args(seconds: u64, tail: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["speed", "-seconds", &seconds.to_string(), "-elapsed", "-mr"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(tail.iter().map(|s| s.to_string()));
    args
}

/// Parses `openssl speed -mr sm2` output: the line `+F7:<k>:<bits>:CurveSM2:<sign/s>:<verify/s>`
/// (OpenSSL 3.0 prints it on standard output; the `+DTP`/`+R10`/`+R11` progress lines go to
/// standard error). Returns (sign/s, verify/s).
pub fn parse_sm2_mr(output: &str) -> Result<(f64, f64)> {
    for line in output.lines() {
        let fields: Vec<&str> = line.trim().split(':').collect();
        if fields.len() == 6
            && fields[0].starts_with("+F")
            && fields[3].to_ascii_uppercase().contains("SM2")
        {
            let sign = parse_positive(fields[4], "SM2 sign/s")?;
            let verify = parse_positive(fields[5], "SM2 verify/s")?;
            return Ok((sign, verify));
        }
    }
    bail!(
        "no `+F7:…:CurveSM2:<sign/s>:<verify/s>` line in the output of `openssl speed -mr sm2`: {:?}",
        output.trim()
    )
}

/// Parses `openssl speed -mr -bytes N -evp ALG` output: the sizes line `+H:<n>[:<n>…]` and the
/// result line `+F:<k>:<ALG>:<bytes/s>[:<bytes/s>…]`. Returns the bytes/s for `bytes`.
pub fn parse_evp_mr(output: &str, alg: &str, bytes: usize) -> Result<f64> {
    let mut sizes: Option<Vec<usize>> = None;
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("+H:") {
            let parsed: Result<Vec<usize>, _> = rest.split(':').map(str::parse).collect();
            sizes = Some(parsed.with_context(|| format!("bad sizes line {line:?}"))?);
        } else if let Some(rest) = line.strip_prefix("+F:") {
            let fields: Vec<&str> = rest.split(':').collect();
            if fields.len() < 3 || !fields[1].eq_ignore_ascii_case(alg) {
                continue;
            }
            let sizes = sizes
                .as_ref()
                .ok_or_else(|| anyhow!("`+F` line before the `+H` sizes line for {alg}"))?;
            let values = &fields[2..];
            if values.len() != sizes.len() {
                bail!("{alg}: {} sizes but {} results", sizes.len(), values.len());
            }
            let i = sizes
                .iter()
                .position(|&s| s == bytes)
                .ok_or_else(|| anyhow!("{alg}: no result for {bytes}-byte blocks"))?;
            return parse_positive(values[i], alg);
        }
    }
    bail!(
        "no `+H`/`+F:…:{alg}:…` lines in the output of `openssl speed -mr -evp {alg}`: {:?}",
        output.trim()
    )
}

fn parse_positive(s: &str, what: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .with_context(|| format!("{what}: {s:?} is not a number"))?;
    if !(v.is_finite() && v > 0.0) {
        bail!("{what}: {v} is not a positive rate");
    }
    Ok(v)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Samples of one operation, one per round.
#[derive(Debug, Default, Clone)]
struct Samples {
    ours: Vec<f64>,
    baseline: Vec<f64>,
}

fn index(op: Op) -> usize {
    Op::ALL.iter().position(|&o| o == op).unwrap_or(0)
}

/// Runs the benchmark: `runs` interleaved rounds of ours and `openssl speed`, then the table.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<BenchReport> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds must be a positive number, got {}", args.seconds);
    }
    // `openssl speed -seconds` takes a whole number.
    let ossl_seconds = args.seconds.round().max(1.0) as u64;
    let version = run_openssl(&args.openssl, &["version".to_string()])?;
    let version = version.trim().to_string();

    writeln!(
        out,
        "gmchain bench: {} interleaved rounds, ~{} s per measurement (openssl: {} s), one thread",
        args.runs, args.seconds, ossl_seconds
    )?;
    writeln!(out, "baseline: {version}, `openssl speed -elapsed -mr`")?;
    let unavailable: Vec<String> = Backend::unavailable()
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    writeln!(
        out,
        "SM4 backend: {} (selected for this CPU: {}); previous: table; not measured here (this CPU cannot run them): {}",
        Backend::current(),
        crypto_sm::arch::cpu_features(),
        if unavailable.is_empty() {
            "none".to_string()
        } else {
            unavailable.join(", ")
        }
    )?;
    let sm3_unavailable: Vec<&str> = Sm3Backend::unavailable().iter().map(|b| b.name()).collect();
    writeln!(
        out,
        "SM3 x{MANY} backend: {}; not measured here (this CPU cannot run them): {}",
        Sm3Backend::detected().name(),
        if sm3_unavailable.is_empty() {
            "none".to_string()
        } else {
            sm3_unavailable.join(", ")
        }
    )?;
    if !version.starts_with("OpenSSL 3.") {
        writeln!(
            out,
            "warning: the targets are stated against OpenSSL 3; this is {version:?}"
        )?;
    }

    let mut ours = Ours::new()?;
    let mut samples = vec![Samples::default(); Op::ALL.len()];
    // Each group: our operations, then the OpenSSL invocation that gives their baselines.
    let groups: [(&[Op], Option<Baseline>); 8] = [
        (
            &[Op::Sm2Sign, Op::Sm2Verify, Op::Sm2VerifyPrevious],
            Some(Baseline::Sm2),
        ),
        (
            &[Op::Sm3(64), Op::Sm3Many(64)],
            Some(Baseline::Evp("sm3", 64)),
        ),
        (
            &[Op::Sm3(1024), Op::Sm3Many(1024)],
            Some(Baseline::Evp("sm3", 1024)),
        ),
        (&[Op::Sm3(16 * 1024)], Some(Baseline::Evp("sm3", 16 * 1024))),
        (&[Op::Sm4Ctr(1024)], Some(Baseline::Evp("sm4-ctr", 1024))),
        (
            &[Op::Sm4Ctr(16 * 1024), Op::Sm4CtrPrevious(16 * 1024)],
            Some(Baseline::Evp("sm4-ctr", 16 * 1024)),
        ),
        (&[Op::Sm4Gcm(1024), Op::Sm4Gcm(16 * 1024)], None),
        (&[Op::Sm4GcmPrevious(16 * 1024)], None),
    ];

    for round in 0..args.runs {
        write!(out, "round {}/{}:", round + 1, args.runs)?;
        out.flush()?;
        let openssl_first = round % 2 == 1;
        for (ops, baseline) in &groups {
            if openssl_first && let Some(b) = baseline {
                run_baseline(args, ossl_seconds, *b, ops, &mut samples)?;
            }
            for &op in *ops {
                let v = ours.measure(op, args.seconds)?;
                samples[index(op)].ours.push(v);
            }
            if !openssl_first && let Some(b) = baseline {
                run_baseline(args, ossl_seconds, *b, ops, &mut samples)?;
            }
            for &op in *ops {
                let sep = if op == Op::ALL[0] { " " } else { ", " };
                write!(out, "{sep}{}", op.name())?;
            }
            out.flush()?;
        }
        writeln!(out)?;
    }

    let report = build_report(&samples);
    print_table(args, &report, &samples, out)?;
    Ok(report)
}

fn run_baseline(
    args: &BenchArgs,
    seconds: u64,
    baseline: Baseline,
    ops: &[Op],
    samples: &mut [Samples],
) -> Result<()> {
    match baseline {
        Baseline::Sm2 => {
            let text = run_openssl(&args.openssl, &speed_args(seconds, &["sm2"]))?;
            let (sign, verify) = parse_sm2_mr(&text)?;
            samples[index(Op::Sm2Sign)].baseline.push(sign);
            samples[index(Op::Sm2Verify)].baseline.push(verify);
        }
        Baseline::Evp(alg, bytes) => {
            let size = bytes.to_string();
            let text = run_openssl(
                &args.openssl,
                &speed_args(seconds, &["-bytes", &size, "-evp", alg]),
            )?;
            let rate = parse_evp_mr(&text, alg, bytes)? / 1e6;
            for &op in ops {
                samples[index(op)].baseline.push(rate);
            }
        }
    }
    Ok(())
}

fn build_report(samples: &[Samples]) -> BenchReport {
    let mut rows = Vec::with_capacity(Op::ALL.len());
    for op in Op::ALL {
        let s = &samples[index(op)];
        let ours = median(&s.ours);
        let b = &samples[index(op.baseline_of())].baseline;
        let baseline = (!b.is_empty()).then(|| median(b));
        let ratio = baseline.map(|b| ours / b);
        let target = op.target();
        let met = match (ratio, target) {
            (Some(r), Some(t)) => Some(r >= t),
            _ => None,
        };
        rows.push(BenchRow {
            name: op.name(),
            unit: op.unit().to_string(),
            ours,
            baseline,
            ratio,
            target,
            met,
        });
    }
    BenchReport { rows }
}

/// The smallest and largest per-round ratio, to show how noisy the machine was.
fn ratio_spread(op: Op, samples: &[Samples]) -> Option<(f64, f64)> {
    let s = &samples[index(op)];
    let base = &samples[index(op.baseline_of())].baseline;
    let ratios: Vec<f64> = s.ours.iter().zip(base).map(|(o, b)| o / b).collect();
    let lo = ratios.iter().copied().reduce(f64::min)?;
    let hi = ratios.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

fn print_table(
    args: &BenchArgs,
    report: &BenchReport,
    samples: &[Samples],
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{:<27} {:>6} {:>11} {:>11} {:>7} {:>7} {:>6}  ratio per round",
        "operation", "unit", "ours", "baseline", "ratio", "target", "met"
    )?;
    for (op, row) in Op::ALL.iter().zip(&report.rows) {
        let baseline = row.baseline.map_or("-".to_string(), |b| format!("{b:.1}"));
        let ratio = row.ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
        let target = row.target.map_or("-".to_string(), |t| format!("{t:.1}x"));
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let spread = ratio_spread(*op, samples)
            .map_or("-".to_string(), |(lo, hi)| format!("{lo:.2}..{hi:.2}"));
        writeln!(
            out,
            "{:<27} {:>6} {:>11.1} {:>11} {:>7} {:>7} {:>6}  {}",
            row.name, row.unit, row.ours, baseline, ratio, target, met, spread
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "ours and baseline are medians over {} interleaved rounds; ratio = ours / baseline.",
        args.runs
    )?;
    writeln!(
        out,
        "baseline is `openssl speed` from the same run; for SM4-GCM (OpenSSL 3.0 has none) its \
         SM4-CTR at the same size; \"(previous)\" rows are the code before issue 19, no target."
    )?;
    writeln!(
        out,
        "caveat: measured on a shared, possibly noisy machine; only the ratios within this one \
         run mean anything, not the absolute numbers."
    )?;
    let judged: Vec<&BenchRow> = report.rows.iter().filter(|r| r.met.is_some()).collect();
    let missed: Vec<String> = judged
        .iter()
        .filter(|r| r.met == Some(false))
        .map(|r| {
            format!(
                "{} ({:.2}x < {:.1}x)",
                r.name,
                r.ratio.unwrap_or(f64::NAN),
                r.target.unwrap_or(f64::NAN)
            )
        })
        .collect();
    writeln!(
        out,
        "targets met: {} of {}{}",
        judged.len() - missed.len(),
        judged.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!("; missed: {}", missed.join(", "))
        }
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from `openssl speed -seconds 1 -elapsed -mr sm2` (OpenSSL 3.0.19), standard
    // output and standard error together, in the order a terminal shows them.
    const SM2_MR: &str = "+DTP:256:sign:CurveSM2:1
+R10:2971:256:CurveSM2:1.00
+DTP:256:verify:CurveSM2:1
+R11:3280:256:CurveSM2:1.00
+F7:0:256:CurveSM2:2971.000000:3280.000000
";

    // Its standard output alone, which is what `run` reads.
    const SM2_MR_STDOUT: &str = "+F7:0:256:CurveSM2:3064.000000:3499.000000\n";

    // `openssl speed -seconds 1 -elapsed -mr -bytes 64 -evp sm3`, standard output.
    const SM3_64_MR: &str = "+H:64\n+F:25:sm3:129948928.00\n";

    // `openssl speed -seconds 1 -elapsed -mr -bytes 16384 -evp sm4-ctr`, standard output.
    const SM4_CTR_16K_MR: &str = "+H:16384\n+F:25:SM4-CTR:117915648.00\n";

    // `openssl speed -seconds 1 -elapsed -mr -evp sm3` (all standard sizes), both streams.
    const SM3_ALL_MR: &str = "+DT:sm3:1:16384
+R:21136:sm3:1.000000
+H:16:64:256:1024:8192:16384
+F:25:sm3:54704000.00:131768064.00:224586240.00:324554752.00:374489088.00:346292224.00
";

    // `openssl speed -seconds 1 -elapsed -bytes 1024 -evp sm4-ctr` without -mr: human table.
    const SM4_CTR_HUMAN: &str = "version: 3.0.19
built on: Fri Apr  3 12:29:32 2026 UTC
options: bn(64,64)
The 'numbers' are in 1000s of bytes per second processed.
type           1024 bytes
SM4-CTR         118189.06k
";

    #[test]
    fn sm2_mr_line() {
        assert_eq!(parse_sm2_mr(SM2_MR).unwrap(), (2971.0, 3280.0));
        assert_eq!(parse_sm2_mr(SM2_MR_STDOUT).unwrap(), (3064.0, 3499.0));
    }

    #[test]
    fn sm2_without_result_line_is_an_error() {
        let err = parse_sm2_mr("+DTP:256:sign:CurveSM2:1\n").unwrap_err();
        assert!(err.to_string().contains("CurveSM2"), "{err}");
        assert!(parse_sm2_mr("").is_err());
        assert!(parse_sm2_mr("+F7:0:256:CurveSM2:abc:3280.0\n").is_err());
        assert!(parse_sm2_mr("+F7:0:256:CurveSM2:0.000000:3280.0\n").is_err());
    }

    #[test]
    fn evp_single_size() {
        assert_eq!(parse_evp_mr(SM3_64_MR, "sm3", 64).unwrap(), 129948928.0);
        // OpenSSL prints the cipher name upper-case.
        assert_eq!(
            parse_evp_mr(SM4_CTR_16K_MR, "sm4-ctr", 16384).unwrap(),
            117915648.0
        );
    }

    #[test]
    fn evp_all_sizes_picks_the_column() {
        assert_eq!(parse_evp_mr(SM3_ALL_MR, "sm3", 64).unwrap(), 131768064.0);
        assert_eq!(parse_evp_mr(SM3_ALL_MR, "sm3", 1024).unwrap(), 324554752.0);
        assert_eq!(parse_evp_mr(SM3_ALL_MR, "sm3", 16384).unwrap(), 346292224.0);
        assert!(parse_evp_mr(SM3_ALL_MR, "sm3", 32).is_err());
    }

    #[test]
    fn evp_errors_name_what_failed() {
        // Wrong algorithm, size absent, human (non -mr) output, missing sizes line.
        let e = parse_evp_mr(SM3_64_MR, "sm4-ctr", 64).unwrap_err();
        assert!(e.to_string().contains("sm4-ctr"), "{e}");
        assert!(parse_evp_mr(SM3_64_MR, "sm3", 1024).is_err());
        assert!(parse_evp_mr(SM4_CTR_HUMAN, "sm4-ctr", 1024).is_err());
        assert!(parse_evp_mr("+F:25:sm3:129948928.00\n", "sm3", 64).is_err());
        assert!(parse_evp_mr("+H:64:1024\n+F:25:sm3:1.0\n", "sm3", 64).is_err());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0, 0.5]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn report_ratios_targets_and_gcm_baseline() {
        let mut samples = vec![Samples::default(); Op::ALL.len()];
        for op in Op::ALL {
            let s = &mut samples[index(op)];
            s.ours = vec![100.0, 90.0, 110.0];
            // As `run_baseline` fills them: OpenSSL gives SM2 and the EVP rows only.
            if matches!(op, Op::Sm2Sign | Op::Sm2Verify | Op::Sm3(_) | Op::Sm4Ctr(_)) {
                s.baseline = vec![50.0, 100.0, 60.0];
            }
        }
        samples[index(Op::Sm2Verify)].ours = vec![200.0, 180.0, 220.0];
        samples[index(Op::Sm4Gcm(1024))].ours = vec![300.0, 190.0, 310.0];
        let report = build_report(&samples);
        let row = |name: &str| report.rows.iter().find(|r| r.name == name).unwrap();
        let sign = row("SM2 sign");
        assert_eq!(sign.unit, "ops/s");
        assert_eq!(sign.ratio, Some(100.0 / 60.0));
        assert_eq!(sign.met, Some(false)); // 1.67 < 2.0
        // Issue 19: verification 3× (200 / 60 = 3.33).
        assert_eq!(row("SM2 verify").target, Some(3.0));
        assert_eq!(row("SM2 verify").met, Some(true));
        // The previous implementation is set beside the same OpenSSL figure, with no target.
        let prev = row("SM2 verify (previous)");
        assert_eq!(
            (prev.baseline, prev.target, prev.met),
            (Some(60.0), None, None)
        );
        assert_eq!(row("SM3 64 B").unit, "MB/s");
        assert_eq!(row("SM3 64 B").target, Some(1.0));
        assert_eq!(row("SM3 1 KiB").target, Some(1.2));
        // The multi-message rows: beside OpenSSL's one-message figure of the same size, bytes
        // counted over all 64 messages, no target.
        let many = row("SM3 x64 64 B");
        assert_eq!(
            (many.baseline, many.target, many.met),
            (Some(60.0), None, None)
        );
        assert_eq!(Op::Sm3Many(1024).bytes(), Some(64 * 1024));
        assert_eq!(row("SM4-CTR 16 KiB").target, Some(3.0));
        // SM4-GCM against OpenSSL's SM4-CTR at the same size (OpenSSL 3.0 has no SM4-GCM).
        let gcm = row("SM4-GCM 1 KiB");
        assert_eq!(gcm.baseline, Some(60.0));
        assert_eq!(gcm.ratio, Some(300.0 / 60.0));
        assert_eq!((gcm.target, gcm.met), (Some(3.0), Some(true)));
        let old = row("SM4-GCM 16 KiB (previous)");
        assert_eq!((old.baseline, old.target), (Some(60.0), None));
        assert_eq!(
            Op::Sm4GcmPrevious(16 * 1024).backend(),
            Some(Backend::Table)
        );
        assert_eq!(Op::Sm4Gcm(16 * 1024).backend(), None);
    }
}
