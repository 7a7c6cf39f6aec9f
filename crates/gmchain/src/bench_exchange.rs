//! `gmchain bench exchange` (issue 15, Performance): fetch throughput of a 1 MiB and a 64 MiB
//! version over the node API against the SM4-GCM decryption speed of the same machine, and the
//! peak resident memory of publishing 64 MiB.
//!
//! Everything runs as a user would: a development chain with two organisations, its node as a
//! child process, and `gmchain data …` commands as child processes (publish by the owner's
//! admin; request and fetch by the other organisation's user, whose fetch checks both digests
//! and decrypts). A fetch's time therefore includes the command's start, its key files, two
//! TLS handshakes, the custodian's unwrap and wrap in its key store, the fetch record's block
//! and the client's SM3 and SM4-GCM over the payload; the report also gives the time of a
//! 1-byte fetch (those fixed costs) and the streaming rate of the 64 MiB fetch without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crypto::RandomSource;
use crypto_sm::rng::SystemRandom;
use crypto_sm::sm4::{Sm4Aead, Sm4Secret};

use crate::Failure;
use crate::bench_node::{start_node, stop_node, tempdir};

/// `gmchain bench exchange`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExchangeBenchArgs {
    /// Fetches of each size (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Keep the chain in DIR (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench exchange: {what}: {e}"))
}

const MIB: usize = 1 << 20;

/// SM4-GCM decryption of `len` bytes in 1 MiB chunks (the payload's chunking), MiB/s.
fn sm4_gcm_decrypt_rate(len: usize) -> Result<f64, Failure> {
    let key = Sm4Secret::from_slice(&[7; 16]).map_err(|e| fail("key", e))?;
    let aead = Sm4Aead::new(&key, crypto::Sm4Mode::Gcm).map_err(|e| fail("aead", e))?;
    let mut data = vec![0u8; len];
    let mut tags = Vec::new();
    for (i, c) in data.chunks_mut(MIB).enumerate() {
        let mut n = [0u8; 12];
        n[8..].copy_from_slice(&(i as u32).to_be_bytes());
        tags.push(
            aead.seal_in_place(&n, b"aad", c)
                .map_err(|e| fail("seal", e))?,
        );
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut copy = data.clone();
        let t = Instant::now();
        for (i, c) in copy.chunks_mut(MIB).enumerate() {
            let mut n = [0u8; 12];
            n[8..].copy_from_slice(&(i as u32).to_be_bytes());
            aead.open_in_place(&n, b"aad", c, &tags[i])
                .map_err(|e| fail("open", e))?;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(len as f64 / MIB as f64 / best)
}

/// Runs `gmchain args…` in `dir` with the client profile `profile`; returns its wall time and
/// the highest VmHWM seen (KiB, polled every 5 ms: a lower bound of the peak).
fn gm(dir: &Path, profile: &str, args: &[String]) -> Result<(Duration, u64), Failure> {
    let exe = std::env::current_exe().map_err(|e| fail("exe", e))?;
    let t = Instant::now();
    let mut child = Command::new(exe)
        .current_dir(dir)
        .env("GMCHAIN_CLIENT_PROFILE", dir.join(profile))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail("spawn gmchain", e))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if child.try_wait().map_err(|e| fail("wait", e))?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = t.elapsed();
    let out = child.wait_with_output().map_err(|e| fail("wait", e))?;
    if !out.status.success() {
        return Err(fail(
            &format!("gmchain {}", args.join(" ")),
            String::from_utf8_lossy(&out.stderr),
        ));
    }
    Ok((elapsed, peak))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn run(args: &ExchangeBenchArgs) -> Result<(), Failure> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => tempdir()?,
    };
    let rounds = args.rounds.max(1);
    eprintln!("measuring SM4-GCM decryption …");
    let decrypt = sm4_gcm_decrypt_rate(64 * MIB)?;
    eprintln!(
        "preparing a development chain with two organisations in {} …",
        dir.display()
    );
    let chain = crate::devchain::prepare_network(&dir, 0, 500, 20, 2, 1, 0, false)?;
    let (mut node, grpc, _) = start_node(&chain.config, &dir)?;
    let admin = "client.toml";
    let user = "orgs/2.user.profile.toml";
    let admin_key = [
        "--key",
        "admin.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "admin.crt.pem",
    ];
    let user_key = [
        "--key",
        "orgs/2.user.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "orgs/2.user.crt.pem",
    ];
    let with = |a: &[&str], b: &[&str]| -> Vec<String> {
        a.iter().chain(b).map(|s| s.to_string()).collect()
    };
    // The first command waits for the node to listen.
    let endpoint = with(
        &[
            "data",
            "endpoint",
            "--address",
            &grpc,
            "--enc-cert",
            "node.enc.crt.pem",
        ],
        &admin_key,
    );
    let started = Instant::now();
    while let Err(e) = gm(&dir, admin, &endpoint) {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut report = serde_json::Map::new();
    let mut fixed = 0.0;
    for (name, len) in [("one-byte", 1usize), ("1mib", MIB), ("64mib", 64 * MIB)] {
        let file = dir.join(format!("{name}.bin"));
        let mut bytes = vec![0u8; len];
        SystemRandom
            .fill(&mut bytes)
            .map_err(|e| fail("random", e))?;
        std::fs::write(&file, &bytes).map_err(|e| fail("write", e))?;
        drop(bytes);
        eprintln!("publishing {name} …");
        let (publish_time, publish_peak) = gm(
            &dir,
            admin,
            &with(
                &[
                    "data",
                    "publish",
                    file.to_str().unwrap_or_default(),
                    "--name",
                    name,
                    "--class",
                    "unconditional",
                ],
                &admin_key,
            ),
        )?;
        let dataset = format!("{}/{name}", crate::devchain::ORG);
        gm(
            &dir,
            user,
            &with(
                &[
                    "data",
                    "request",
                    &dataset,
                    "--purpose",
                    "benchmark",
                    "--enc-cert",
                    "orgs/2.user.enc.crt.pem",
                ],
                &user_key,
            ),
        )?;
        let out = dir.join(format!("{name}.out"));
        let mut times = Vec::new();
        for _ in 0..rounds {
            let _ = std::fs::remove_file(&out);
            let (t, _) = gm(
                &dir,
                user,
                &with(
                    &[
                        "data",
                        "fetch",
                        &dataset,
                        "--enc-key",
                        "orgs/2.user.enc.key.pem",
                        "--enc-pass-file",
                        "pass",
                        "--out",
                        out.to_str().unwrap_or_default(),
                    ],
                    &[],
                ),
            )?;
            times.push(t.as_secs_f64());
        }
        if std::fs::read(&out).map_err(|e| fail("read", e))?
            != std::fs::read(&file).map_err(|e| fail("read", e))?
        {
            return Err(Failure::NotVerified(format!(
                "bench exchange: the fetched {name} differs from the published file"
            )));
        }
        let t = median(times);
        let mib = len as f64 / MIB as f64;
        let mut entry = serde_json::json!({
            "fetch_seconds_median": t,
            "fetch_mib_per_s": mib / t,
            "ratio_to_sm4_gcm_decrypt": mib / t / decrypt,
            "publish_seconds": publish_time.as_secs_f64(),
            "publish_peak_rss_kib": publish_peak,
        });
        if name == "one-byte" {
            fixed = t;
        } else {
            let streaming = mib / (t - fixed).max(1e-6);
            entry["streaming_mib_per_s_without_fixed_costs"] = streaming.into();
            entry["streaming_ratio_to_sm4_gcm_decrypt"] = (streaming / decrypt).into();
        }
        report.insert(name.to_string(), entry);
    }
    stop_node(&mut node);
    report.insert("sm4_gcm_decrypt_mib_per_s".into(), decrypt.into());
    report.insert("rounds".into(), rounds.into());
    report.insert("target_ratio".into(), 0.5.into());
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(report))
            .map_err(|e| fail("json", e))?
    );
    Ok(())
}
