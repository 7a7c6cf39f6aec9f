//! `gmchain bench snapshot` (issue 18): how long a new node takes to reach the tip from a state
//! snapshot against replaying the same chain from genesis through sync. A development chain of
//! one validator and two followers is loaded with pre-signed attestations; follower 2 syncs to
//! the tip and stops (the export source); then, in interleaved rounds (which goes first
//! alternates), follower 1 joins (a) from genesis, syncing every block, and (b) from a snapshot
//! exported from follower 2's store: init with the snapshot, start, sync the rest. Reports the
//! medians of the export time, of the snapshot join (import and catch-up) and of the replay,
//! and the ratio of the join to the replay, in one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use api::v1 as pb;
use types::Height;

use crate::Failure;
use crate::bench_node::{
    Client, NodeProcess, closed_loop, presign, start_node_logged, stop_node, tempdir,
    wait_for_named_node, wait_for_node,
};

/// Settings.
#[derive(Debug, clap::Args)]
pub(crate) struct SnapshotBenchArgs {
    /// Transactions in the chain before the rounds.
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Interleaved rounds (each: one replay, one snapshot join).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Most transactions per block.
    #[arg(long, default_value_t = 2000)]
    pub block_max_txs: u32,
    /// Block interval in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Submissions in flight while loading.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Keep the chain here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench snapshot: {what}: {e}"))
}

fn gmchain(dir: &Path, args: &[&str]) -> Result<String, Failure> {
    let exe = std::env::current_exe().map_err(|e| fail("exe", e))?;
    let o = Command::new(exe)
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| fail("run gmchain", e))?;
    if !o.status.success() {
        return Err(fail(
            &args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim(),
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

async fn height(c: &mut Client) -> u64 {
    c.get_status(pb::GetStatusRequest {})
        .await
        .map(|s| s.into_inner().height)
        .unwrap_or(0)
}

/// Starts follower 1 and waits until it holds height `target`; returns the time from the
/// start and stops it.
async fn catch_up(dir: &Path, target: u64, round: &str) -> Result<Duration, Failure> {
    let t = Instant::now();
    let (mut p, grpc, _) = start_node_logged(
        &dir.join("node1.toml"),
        &dir.join(format!("node1-{round}.log")),
    )?;
    let mut c = wait_for_named_node(&grpc, dir, Some("node1")).await?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    while height(&mut c).await < target {
        if Instant::now() > deadline {
            stop_node(&mut p);
            return Err(fail(round, format!("did not reach height {target}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t.elapsed();
    stop_node(&mut p);
    Ok(took)
}

fn wipe(dir: &Path) -> Result<(), Failure> {
    let data = dir.join("data1");
    let _ = std::fs::remove_dir_all(data.join("db"));
    let _ = std::fs::remove_file(data.join("genesis.json"));
    Ok(())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn run(args: &SnapshotBenchArgs) -> Result<(), Failure> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => tempdir()?.join("snapshot"),
    };
    eprintln!(
        "preparing a chain of one validator and two followers in {} …",
        dir.display()
    );
    let chain = crate::devchain::prepare_network(
        &dir,
        16,
        args.block_max_txs,
        args.interval_ms,
        1,
        1,
        2,
        false,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail("runtime", e))?;
    let (mut validator, grpc0, _) = start_node_logged(&chain.config, &dir.join("node0.log"))?;
    let (mut source, grpc2, _) =
        start_node_logged(&dir.join("node2.toml"), &dir.join("node2.log"))?;
    let result = rt.block_on(async {
        let mut c0 = wait_for_node(&grpc0, &dir).await?;
        let status = c0
            .get_status(pb::GetStatusRequest {})
            .await
            .map_err(|e| fail("status", e))?
            .into_inner();
        let chain_id = types::ChainId::new(&status.chain_id).map_err(|e| fail("chain id", e))?;
        eprintln!("pre-signing {} transactions …", args.txs);
        let txs = presign(
            &chain_id,
            Height(status.height + 900),
            &chain.clients,
            0,
            args.txs,
        )?;
        eprintln!("loading the chain …");
        let load = closed_loop(&[c0.clone()], txs, args.concurrency, None).await?;
        let target = height(&mut c0).await;
        eprintln!(
            "  {} committed, target height {target}",
            load.latencies.len()
        );
        let mut c2 = wait_for_named_node(&grpc2, &dir, Some("node2")).await?;
        while height(&mut c2).await < target {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_node(&mut source);
        let (mut export, mut join, mut replay) = (Vec::new(), Vec::new(), Vec::new());
        let snap = dir.join("bench.snap");
        let snap_s = snap.to_str().unwrap_or("bench.snap").to_string();
        for r in 0..args.rounds {
            for snapshot_first in [r % 2 == 0, r % 2 != 0] {
                wipe(&dir)?;
                if snapshot_first {
                    let t = Instant::now();
                    gmchain(
                        &dir,
                        &["node", "snapshot", "export", "--config", "node2.toml", "--out", &snap_s],
                    )?;
                    export.push(t.elapsed());
                    let t = Instant::now();
                    gmchain(
                        &dir,
                        &[
                            "node", "init", "--config", "node1.toml", "--genesis",
                            "data/genesis.json", "--snapshot", &snap_s,
                        ],
                    )?;
                    let import = t.elapsed();
                    let caught = catch_up(&dir, target, &format!("snapshot{r}")).await?;
                    join.push(import + caught);
                    eprintln!(
                        "round {r}: export {:.2} s, snapshot join {:.2} s (import {:.2} s)",
                        export.last().map_or(0.0, Duration::as_secs_f64),
                        (import + caught).as_secs_f64(),
                        import.as_secs_f64()
                    );
                } else {
                    let t = Instant::now();
                    gmchain(
                        &dir,
                        &[
                            "node", "init", "--config", "node1.toml", "--genesis",
                            "data/genesis.json",
                        ],
                    )?;
                    let init = t.elapsed();
                    let caught = catch_up(&dir, target, &format!("replay{r}")).await?;
                    replay.push(init + caught);
                    eprintln!("round {r}: replay from genesis {:.2} s", (init + caught).as_secs_f64());
                }
            }
        }
        let (e, j, p) = (median(&mut export), median(&mut join), median(&mut replay));
        let ratio = j.as_secs_f64() / p.as_secs_f64().max(f64::MIN_POSITIVE);
        println!(
            "snapshot join: chain of {} transactions, {target} blocks; medians of {} rounds: export {:.3} s, join from the snapshot (import + catch-up) {:.3} s, replay from genesis through sync {:.3} s; ratio {:.3} (target ≤ 0.1 on a large chain)",
            load.latencies.len(),
            args.rounds,
            e.as_secs_f64(),
            j.as_secs_f64(),
            p.as_secs_f64(),
            ratio
        );
        Ok::<(), Failure>(())
    });
    stop_node(&mut validator);
    drop::<NodeProcess>(source);
    result
}
