//! `gmchain bench backup` (issue 18): on one development chain and node, in one run, (a) the
//! time of an online backup (`gmchain node backup` through the node's admin socket) and of a
//! restore of it (`gmchain node restore` into a fresh data directory: every file's SM3 and
//! the full store verification) of the bench chain, and (b) the node's submit-and-commit
//! throughput with and without backups running, as the ratio of the medians (target ≥ 0.8).
//! Rounds interleave the two loads (the order alternating) and one timed backup and restore;
//! figures are medians.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use types::Height;

use crate::Failure;
use crate::bench_node::{client_and_status, closed_loop, presign, stop_node};

/// Settings.
#[derive(Debug, clap::Args)]
pub(crate) struct BackupBenchArgs {
    /// Transactions committed before the rounds (the chain backed up).
    #[arg(long, default_value_t = 20_000)]
    pub chain_txs: usize,
    /// Transactions per load phase (each round has one with backups running, one without).
    /// Make a phase last several backups: on a chain of 10⁶ transactions a backup takes about
    /// 14 s here, so a 3 000-transaction phase (3 s) measures only the start of one.
    #[arg(long, default_value_t = 3000)]
    pub txs: usize,
    /// Rounds.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Submissions in flight.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Distinct client keys.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Most transactions per block.
    #[arg(long, default_value_t = 2000)]
    pub block_max_txs: u32,
    /// Block interval in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Where the backups are written (an existing directory). By default beside the node, on
    /// its filesystem (the store's files are hard-linked); give a directory on another
    /// filesystem to measure the case where every file is copied.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench backup: {what}: {e}"))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Runs `gmchain node ARGS…` (this executable); its duration, or the failure with its stderr.
fn gmchain(args: &[&std::ffi::OsStr]) -> Result<Duration, Failure> {
    let exe = std::env::current_exe().map_err(|e| fail("exe", e))?;
    let t0 = Instant::now();
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail("run gmchain", e))?;
    if !out.status.success() {
        return Err(fail(
            &format!("gmchain {args:?}"),
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    Ok(t0.elapsed())
}

fn backup(config: &Path, out: &Path) -> Result<Duration, Failure> {
    gmchain(&[
        "node".as_ref(),
        "backup".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

pub(crate) fn run(args: &BackupBenchArgs) -> Result<(), Failure> {
    let dir = crate::bench_node::tempdir()?;
    eprintln!(
        "preparing a development chain with {} client keys in {} …",
        args.clients,
        dir.display()
    );
    let chain = crate::devchain::prepare(
        &dir,
        args.clients.max(1),
        args.block_max_txs,
        args.interval_ms,
        1,
    )?;
    let out_root = match &args.out_dir {
        Some(d) => std::path::absolute(d).map_err(|e| fail("--out-dir", e))?,
        None => dir.clone(),
    };
    // The restore's configuration: the node's, with a data directory of its own per round.
    let config_text = std::fs::read_to_string(&chain.config).map_err(|e| fail("config", e))?;
    let (mut node_proc, url, _metrics) = crate::bench_node::start_node(&chain.config, &dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| fail("runtime", e))?;
    let result = rt.block_on(async {
        let (client, status, chain_id) = client_and_status(&url, &dir).await?;
        let clients =
            crate::bench_node::connections(&url, &dir, args.concurrency.div_ceil(64))
                .await?;
        let rounds = args.rounds.max(1);
        // Transactions expire `expiry_window` heights after the one they were signed at: a
        // long chain outlives any batch signed at its start, so each batch is signed just
        // before it is sent (outside the timed phases), against the height then. The salt's
        // index runs on across batches, so no two transactions are alike.
        let window = status.expiry_window;
        let mut next_salt = 0u64;
        let mut sign_batch = |n: usize, at: u64| -> Result<Vec<Vec<u8>>, Failure> {
            let expiry = Height(at + window.saturating_sub(10).max(1));
            let txs = presign(&chain_id, expiry, &chain.clients, next_salt, n)?;
            next_salt += n as u64;
            Ok(txs)
        };
        let mut tip = status.height;
        let mut client_tip = client.clone();
        let mut height_now = async || {
            client_tip
                .get_status(api::v1::GetStatusRequest {})
                .await
                .map(|s| s.into_inner().height)
                .map_err(|e| fail("status", e))
        };
        // The chain, in batches of at most 50 000 (each signed at the height it starts from).
        eprintln!("committing the bench chain ({} transactions) …", args.chain_txs);
        let mut committed = 0usize;
        let mut failures = 0usize;
        while committed < args.chain_txs {
            let n = (args.chain_txs - committed).min(50_000);
            let batch = sign_batch(n, tip)?;
            let built = closed_loop(&clients, batch, args.concurrency, None).await?;
            failures += built.failed;
            committed += n;
            tip = height_now().await?;
            eprintln!("  {committed} of {} (height {tip})", args.chain_txs);
        }
        if failures > 0 {
            return Err(fail(
                "bench chain",
                format!("{failures} of {} submissions were not committed", args.chain_txs),
            ));
        }
        let (mut plain, mut during, mut backup_s, mut restore_s) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut backups_during = 0usize;
        let mut lines = Vec::new();
        let mut backup_bytes = 0u64;
        for r in 0..rounds {
            let mut order = ["plain", "backup"];
            if r % 2 == 1 {
                order.reverse();
            }
            for phase in order {
                let load_txs = sign_batch(args.txs, height_now().await?)?;
                if phase == "plain" {
                    let load = closed_loop(&clients, load_txs, args.concurrency, None).await?;
                    failures += load.failed;
                    let rate = load.latencies.len() as f64 / load.elapsed.as_secs_f64();
                    eprintln!("round {r}: {rate:.0} tx/s without a backup");
                    plain.push(rate);
                } else {
                    // Backups one after the other for as long as the load runs.
                    let running = Arc::new(AtomicBool::new(true));
                    let made = Arc::new(AtomicUsize::new(0));
                    let worker = {
                        let (running, made) = (running.clone(), made.clone());
                        let (config, dir) = (chain.config.clone(), out_root.clone());
                        std::thread::spawn(move || -> Result<(), Failure> {
                            let mut k = 0;
                            while running.load(Ordering::Relaxed) {
                                let out = dir.join(format!("during-{r}-{k}"));
                                backup(&config, &out)?;
                                let _ = std::fs::remove_dir_all(&out);
                                made.fetch_add(1, Ordering::Relaxed);
                                k += 1;
                            }
                            Ok(())
                        })
                    };
                    let load = closed_loop(&clients, load_txs, args.concurrency, None).await;
                    running.store(false, Ordering::Relaxed);
                    let backed = tokio::task::spawn_blocking(move || worker.join())
                        .await
                        .map_err(|e| fail("backup thread", e))?
                        .map_err(|_| fail("backup thread", "panicked"))?;
                    backed?;
                    let load = load?;
                    failures += load.failed;
                    let rate = load.latencies.len() as f64 / load.elapsed.as_secs_f64();
                    let n = made.load(Ordering::Relaxed);
                    backups_during += n;
                    eprintln!("round {r}: {rate:.0} tx/s with backups running ({n} made)");
                    if n < 2 {
                        eprintln!(
                            "round {r}: warning: the phase lasted less than two backups; raise --txs so that backups run through it"
                        );
                    }
                    during.push(rate);
                }
            }
        }
        // Then the timed backups and restores, with no load: a restore writes the whole store
        // again, and its write-back would otherwise fall into the next round's load phases.
        for r in 0..rounds {
            let first = if r % 2 == 1 { "backup" } else { "plain" };
            let out = out_root.join(format!("backup-{r}"));
            let b = backup(&chain.config, &out)?;
            backup_bytes = dir_bytes(&out);
            let data: PathBuf = dir.join(format!("restored-{r}"));
            let cfg = dir.join(format!("restore-{r}.toml"));
            let text = config_text.replacen(
                "data_dir = \"data\"",
                &format!("data_dir = \"{}\"", data.display()),
                1,
            );
            std::fs::write(&cfg, text).map_err(|e| fail("config", e))?;
            let re = gmchain(&[
                "node".as_ref(),
                "restore".as_ref(),
                "--from".as_ref(),
                out.as_os_str(),
                "--config".as_ref(),
                cfg.as_os_str(),
            ])?;
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_dir_all(&data);
            eprintln!(
                "round {r}: backup {:.2} s, restore (checked and verified) {:.2} s",
                b.as_secs_f64(),
                re.as_secs_f64()
            );
            backup_s.push(b.as_secs_f64());
            restore_s.push(re.as_secs_f64());
            lines.push(format!(
                "    {{\"round\": {r}, \"first\": \"{}\", \"plain_tx_per_s\": {:.0}, \"during_backup_tx_per_s\": {:.0}, \"backup_s\": {:.3}, \"restore_s\": {:.3}}}",
                first, plain[r], during[r], backup_s[r], restore_s[r]
            ));
        }
        let height = client
            .clone()
            .get_status(api::v1::GetStatusRequest {})
            .await
            .map(|s| s.into_inner().height)
            .unwrap_or(0);
        let (p, d) = (median(&plain), median(&during));
        Ok::<_, Failure>(format!(
            "{{\n  \"chain_txs\": {},\n  \"out_dir\": {:?},\n  \"height\": {height},\n  \"backup_bytes\": {backup_bytes},\n  \"txs_per_phase\": {},\n  \"in_flight\": {},\n  \"rounds\": [\n{}\n  ],\n  \"failed\": {failures},\n  \"backups_during_load\": {backups_during},\n  \"backup_median_s\": {:.3},\n  \"restore_median_s\": {:.3},\n  \"plain_median_tx_per_s\": {p:.0},\n  \"during_backup_median_tx_per_s\": {d:.0},\n  \"ratio_during_to_plain\": {:.3},\n  \"target_ratio\": 0.8\n}}\n",
            args.chain_txs,
            out_root.display().to_string(),
            args.txs,
            args.concurrency,
            lines.join(",\n"),
            median(&backup_s),
            median(&restore_s),
            if p > 0.0 { d / p } else { 0.0 },
        ))
    });
    stop_node(&mut node_proc);
    let _ = std::fs::remove_dir_all(&dir);
    print!("{}", result?);
    Ok(())
}
