//! `gmchain bench snapshot` (issue 18): how long a new node takes to reach the tip from a state
//! snapshot against replaying the same chain from genesis through sync. A development chain of
//! one validator and two followers is loaded with attestations, signed chunk by chunk just
//! before each chunk is sent (each with the largest expiry the tip allows, so none expires
//! however long the load, and the chain may be many expiry windows long); follower 2 syncs to
//! the tip and stops (the export source). Then, in interleaved rounds (which goes first
//! alternates), follower 1 joins (a) from genesis, syncing every block, and (b) from a snapshot
//! exported from follower 2's store at a height `--behind` blocks below the tip: init with the
//! snapshot, start, and sync those blocks forward from the validator. Reports, as medians: the
//! export time and the snapshot's size, the import time, the catch-up (blocks and time), the
//! join (import + catch-up), the replay, and the ratio of the join to the replay.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use api::v1 as pb;
use types::Height;

use crate::Failure;
use crate::bench_node::{
    Client, NodeProcess, closed_loop, connections, presign, start_node_logged, stop_node, tempdir,
    wait_for_named_node, wait_for_node,
};

/// Settings.
#[derive(Debug, clap::Args)]
pub(crate) struct SnapshotBenchArgs {
    /// Transactions in the chain before the rounds.
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Interleaved rounds (each: one replay, one snapshot join); 1 for a single measurement
    /// of a large chain.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,
    /// Most transactions per block.
    #[arg(long, default_value_t = 2000)]
    pub block_max_txs: u32,
    /// Block interval in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Submissions in flight while loading, over one connection per 64 (at most 16): each
    /// waits for its commit, so blocks hold about this many transactions, at most
    /// --block-max-txs.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// The development chain's expiry window (its genesis `expiry_window`): a snapshot
    /// carries the blocks of the last window, so a chain of many windows shows what a
    /// snapshot saves.
    #[arg(long, default_value_t = crate::devchain::DEV_EXPIRY_WINDOW, value_parser = clap::value_parser!(u64).range(2..))]
    pub expiry_window: u64,
    /// Export the snapshot this many blocks below the tip, so that the join syncs them
    /// forward (default: a tenth of the chain's blocks, at least one).
    #[arg(long)]
    pub behind: Option<u64>,
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
    let deadline = Instant::now() + Duration::from_secs(3 * 3600);
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

/// Loads `n` attestations through `c0`, signed in chunks just before each is sent: each
/// chunk's expiry is the tip at its signing plus the window (the largest admission takes),
/// and a chunk is small enough to be committed in a quarter of the window even at half the
/// expected rate of transactions a block. Returns the transactions committed and those that
/// failed.
async fn load(
    conns: &[Client],
    chain_id: &types::ChainId,
    clients: &[(crypto_sm::SoftSigner, pki::Certificate)],
    n: usize,
    args: &SnapshotBenchArgs,
) -> Result<(usize, usize), Failure> {
    let mut c0 = conns
        .first()
        .cloned()
        .ok_or_else(|| fail("load", "no connection"))?;
    let c0 = &mut c0;
    // In flight at most: the node serves STREAMS_PER_CONNECTION a connection.
    let per_block = args
        .concurrency
        .min(conns.len() * STREAMS_PER_CONNECTION)
        .min(usize::try_from(args.block_max_txs).unwrap_or(usize::MAX))
        .max(1);
    let window = usize::try_from(args.expiry_window).unwrap_or(usize::MAX);
    let chunk = (per_block / 2).max(1).saturating_mul(window / 4).max(1);
    let (mut committed, mut failed, mut first) = (0usize, 0usize, 0usize);
    while first < n {
        let size = chunk.min(n - first);
        let tip = height(c0).await;
        let txs = presign(
            chain_id,
            Height(tip + args.expiry_window),
            clients,
            first as u64,
            size,
        )?;
        let l = closed_loop(conns, txs, args.concurrency, None).await?;
        committed += l.latencies.len();
        failed += l.failed;
        first += size;
        eprintln!(
            "  {committed} of {n} committed ({failed} failed), height {}",
            height(c0).await
        );
    }
    Ok((committed, failed))
}

/// Concurrent streams the node serves on one connection (its `[api]` default).
const STREAMS_PER_CONNECTION: usize = 64;
/// Connections the load opens at most (the node takes 32 from one address).
const MAX_CONNECTIONS: usize = 16;

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
        "preparing a chain of one validator and two followers (expiry window {}) in {} …",
        args.expiry_window,
        dir.display()
    );
    let chain = crate::devchain::prepare_network_with_window(
        &dir,
        16,
        args.block_max_txs,
        args.interval_ms,
        1,
        1,
        2,
        false,
        args.expiry_window,
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
        let n_conns = args
            .concurrency
            .div_ceil(STREAMS_PER_CONNECTION)
            .clamp(1, MAX_CONNECTIONS);
        let conns = connections(&grpc0, &dir, n_conns).await?;
        eprintln!(
            "loading {} transactions (signed chunk by chunk), {} in flight over {n_conns} connection(s) …",
            args.txs,
            args.concurrency.min(n_conns * STREAMS_PER_CONNECTION)
        );
        let started = Instant::now();
        let (committed, failed) = load(&conns, &chain_id, &chain.clients, args.txs, args).await?;
        if failed > 0 {
            return Err(fail(
                "load",
                format!("{failed} of {} submissions were not committed", args.txs),
            ));
        }
        let target = height(&mut c0).await;
        eprintln!(
            "  {committed} committed in {:.1} s, target height {target}",
            started.elapsed().as_secs_f64()
        );
        let behind = args
            .behind
            .unwrap_or(target / 10)
            .max(1)
            .min(target.saturating_sub(1));
        let at = target - behind;
        if at == 0 {
            return Err(fail("chain", "too short to export a height below its tip"));
        }
        let mut c2 = wait_for_named_node(&grpc2, &dir, Some("node2")).await?;
        while height(&mut c2).await < target {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_node(&mut source);
        let mut export = Vec::new();
        let mut import = Vec::new();
        let mut catch = Vec::new();
        let mut join = Vec::new();
        let mut replay = Vec::new();
        let (mut size, mut carried_from) = (0u64, 0u64);
        let snap = dir.join("bench.snap");
        let snap_s = snap.to_str().unwrap_or("bench.snap").to_string();
        let at_s = at.to_string();
        for r in 0..args.rounds {
            for snapshot_first in [r % 2 == 0, r % 2 != 0] {
                wipe(&dir)?;
                if snapshot_first {
                    let t = Instant::now();
                    let out = gmchain(
                        &dir,
                        &[
                            "node", "snapshot", "export", "--config", "node2.toml", "--height",
                            &at_s, "--out", &snap_s,
                        ],
                    )?;
                    export.push(t.elapsed());
                    size = std::fs::metadata(&snap).map(|m| m.len()).unwrap_or(0);
                    carried_from = out
                        .split("blocks from ")
                        .nth(1)
                        .and_then(|s| s.split(' ').next())
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let t = Instant::now();
                    gmchain(
                        &dir,
                        &[
                            "node", "init", "--config", "node1.toml", "--genesis",
                            "data/genesis.json", "--snapshot", &snap_s,
                        ],
                    )?;
                    let i = t.elapsed();
                    let c = catch_up(&dir, target, &format!("snapshot{r}")).await?;
                    import.push(i);
                    catch.push(c);
                    join.push(i + c);
                    eprintln!(
                        "round {r}: export {:.2} s ({size} bytes); import {:.2} s; catch-up of {behind} blocks {:.2} s; join {:.2} s",
                        export.last().map_or(0.0, Duration::as_secs_f64),
                        i.as_secs_f64(),
                        c.as_secs_f64(),
                        (i + c).as_secs_f64(),
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
                    eprintln!(
                        "round {r}: replay of {target} blocks from genesis {:.2} s",
                        (init + caught).as_secs_f64()
                    );
                }
            }
        }
        let (e, i, c, j, p) = (
            median(&mut export),
            median(&mut import),
            median(&mut catch),
            median(&mut join),
            median(&mut replay),
        );
        let ratio = j.as_secs_f64() / p.as_secs_f64().max(f64::MIN_POSITIVE);
        println!(
            "snapshot join: chain of {committed} transactions in {target} blocks, expiry window {} ({}); snapshot at height {at}, {behind} blocks below the tip, carrying the blocks from {carried_from}, {size} bytes",
            args.expiry_window,
            if target > args.expiry_window {
                "the chain is longer than the window"
            } else {
                "the chain is shorter than the window: the snapshot carries every block"
            }
        );
        println!(
            "medians of {} round(s): export {:.3} s; import {:.3} s; catch-up of {behind} blocks {:.3} s; join (import + catch-up) {:.3} s; replay of {target} blocks from genesis through sync {:.3} s; ratio join/replay {:.3} (target ≤ 0.1 on a large chain)",
            args.rounds,
            e.as_secs_f64(),
            i.as_secs_f64(),
            c.as_secs_f64(),
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
