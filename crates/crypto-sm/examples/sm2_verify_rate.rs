//! SM2 verifications per second: this crate's path, the previous implementation and
//! `openssl speed sm2`, in interleaved rounds, with medians.
//!
//! Each of ours does what `openssl speed sm2` does per verification (ZA with the ID
//! "TLSv1.3+GM+Cipher+Suite", SM3 over ZA ‖ a 20-byte message, DER decoding, the public key
//! check, the curve arithmetic). Rates are given against wall time (as `openssl speed -elapsed`)
//! and against the thread's CPU time (from /proc/thread-self/schedstat; OpenSSL's own figure
//! without `-elapsed` is per CPU second too), because on a shared machine wall time also counts
//! the time other processes held the core.
//!
//! Run: `cargo run --release -p crypto-sm --example sm2_verify_rate -- [seconds] [rounds]`
//! (default 3 s per measurement, 5 rounds; needs `openssl` 3 on PATH for its rows).

use crypto::{Signature, TLS13_USER_ID, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::{PrivateKey, verify, verify_reference};
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

/// CPU time of this thread, if the kernel reports it.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `op` for about `secs` seconds of wall time; returns (ops per wall second, ops per CPU
/// second).
fn rate(secs: f64, mut op: impl FnMut()) -> (f64, Option<f64>) {
    let start = Instant::now();
    let cpu0 = thread_cpu();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..64 {
            op();
        }
        n += 64;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, thread_cpu()) {
        (Some(a), Some(b)) if b > a => Some(n as f64 / (b - a).as_secs_f64()),
        _ => None,
    };
    (n as f64 / wall, cpu)
}

/// `openssl speed -seconds N -mr sm2`'s verifications per second (elapsed or CPU).
fn openssl(secs: u32, elapsed: bool) -> Option<f64> {
    let mut cmd = Command::new("openssl");
    cmd.args(["speed", "-seconds", &secs.to_string(), "-mr"]);
    if elapsed {
        cmd.arg("-elapsed");
    }
    let out = cmd.arg("sm2").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // +F7:0:256:CurveSM2:<sign/s>:<verify/s>
    let line = text.lines().find(|l| l.starts_with("+F7:"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let rng = SeededRandom::new(0x5eed);
    let key = PrivateKey::generate(&rng).expect("key");
    let public = key.public_key();
    let id = UserId::new(TLS13_USER_ID).expect("ID");
    let msg = [0x5au8; 20];
    let der = key.sign(&id, &msg, &rng).expect("sign").to_der();
    // Warm up (and build the base point's table outside the timed rounds).
    for _ in 0..100 {
        let sig = Signature::from_der(&der).expect("DER");
        verify(&public, &id, &msg, &sig).expect("verifies");
    }
    let names = [
        "ours (wall)",
        "ours (CPU)",
        "previous (wall)",
        "previous (CPU)",
        "openssl -elapsed",
        "openssl (CPU)",
    ];
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        let (w, c) = rate(f64::from(secs), || {
            let sig = Signature::from_der(black_box(&der)).expect("DER");
            verify(&public, &id, black_box(&msg), &sig).expect("verifies");
        });
        rows[0].push(w);
        rows[1].extend(c);
        let (w, c) = rate(f64::from(secs), || {
            let sig = Signature::from_der(black_box(&der)).expect("DER");
            verify_reference(&public, &id, black_box(&msg), &sig).expect("verifies");
        });
        rows[2].push(w);
        rows[3].extend(c);
        rows[4].extend(openssl(secs, true));
        rows[5].extend(openssl(secs, false));
        let last: Vec<String> = rows
            .iter()
            .map(|r| r.last().map_or("-".into(), |v| format!("{v:.0}")))
            .collect();
        eprintln!("round {round}: {}", last.join(" "));
    }
    println!("SM2 verify/s, medians of {rounds} interleaved rounds of {secs} s:");
    let med: Vec<Option<f64>> = rows
        .iter_mut()
        .map(|r| (!r.is_empty()).then(|| median(r)))
        .collect();
    for (name, m) in names.iter().zip(&med) {
        match m {
            Some(v) => println!("  {name:<18} {v:>9.0}"),
            None => println!("  {name:<18} {:>9}", "n/a"),
        }
    }
    let ratio = |a: usize, b: usize| match (med[a], med[b]) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
        _ => "n/a".into(),
    };
    println!(
        "  ours / openssl: {} (wall), {} (CPU)",
        ratio(0, 4),
        ratio(1, 5)
    );
    println!(
        "  ours / previous: {} (wall), {} (CPU)",
        ratio(0, 2),
        ratio(1, 3)
    );
}
