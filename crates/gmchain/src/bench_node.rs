//! `gmchain bench node`: the load generator. Makes a development chain, starts a node process,
//! pre-signs transactions with many distinct client keys, submits them over gRPC with many in
//! flight and reports committed tx/s, submit-to-commit latency, WAL syncs per block, and the
//! bound B = cores × SM2 verifications per second measured in the same run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::v1 as pb;
use crypto::{Signer, UserId};
use crypto_sm::rng::SystemRandom;
use types::{Call, ChainId, Encode, Height, Sender, SignedTx, Transaction};

use crate::Failure;
use crate::cli_tx::{NodeArgs, connect, status_failure};

/// Load generator settings.
#[derive(Debug, clap::Args)]
pub(crate) struct NodeBenchArgs {
    /// Transactions to submit.
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Distinct client keys (each with its own certificate).
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Submissions in flight.
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
    /// Most transactions per block.
    #[arg(long, default_value_t = 2000)]
    pub block_max_txs: u32,
    /// Block interval in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Keep the chain here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// A node process, killed when dropped.
pub(crate) struct NodeProcess(pub(crate) Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench node: {what}: {e}"))
}

/// SM2 verifications per second on one core.
fn verify_rate() -> Result<f64, Failure> {
    let key = crypto_sm::sm2::PrivateKey::generate(&SystemRandom).map_err(|e| fail("key", e))?;
    let id = UserId::default();
    let msg = [7u8; 32];
    let sig = key
        .sign(&id, &msg, &SystemRandom)
        .map_err(|e| fail("sign", e))?;
    let pk = key.public_key();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(1500) {
        for _ in 0..50 {
            crypto_sm::sm2::verify(&pk, &id, &msg, &sig).map_err(|e| fail("verify", e))?;
        }
        n += 50;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn scrape(addr: &str) -> Result<String, Failure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| Failure::Unreachable(format!("metrics {addr}: {e}")))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .map_err(|e| fail("metrics", e))?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .await
        .map_err(|e| fail("metrics", e))?;
    Ok(body)
}

/// Reads one un-labelled sample from a metrics page.
pub(crate) fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn run(args: &NodeBenchArgs) -> Result<(), Failure> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempdir()?;
            tmp.clone()
        }
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    eprintln!("measuring SM2 verify on one core …");
    let per_core = verify_rate()?;
    let bound = per_core * cores as f64;
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
    let (mut node_proc, url, metrics_addr) = start_node(&chain.config, &dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| fail("runtime", e))?;
    let report = rt.block_on(async {
        let mut client = wait_for_node(&url, &dir).await?;
        let status = client
            .get_status(pb::GetStatusRequest {})
            .await
            .map_err(|s| status_failure("status", s))?
            .into_inner();
        let chain_id = ChainId::new(&status.chain_id).map_err(|e| fail("chain id", e))?;
        eprintln!("pre-signing {} transactions …", args.txs);
        let clients = Arc::new(chain.clients);
        let mut txs = Vec::with_capacity(args.txs);
        for i in 0..args.txs {
            let (key, cert) = &clients[i % clients.len()];
            let mut salt = [0u8; 16];
            salt[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let digest = crypto_sm::sm3::sm3(&salt);
            let tx = Transaction {
                chain_id: chain_id.clone(),
                salt,
                expiry: Height(status.height + 900),
                sender: Sender::Certificate(cert.der().to_vec()),
                call: Call {
                    contract: "attestation".into(),
                    method: "anchor".into(),
                    args: vec![digest.as_bytes().to_vec(), b"bench".to_vec(), Vec::new(), Vec::new()],
                },
            };
            let signed = SignedTx::sign(tx, key as &dyn Signer, &UserId::default())
                .map_err(|e| fail("sign", e))?;
            txs.push(signed.to_bytes());
        }
        let before = scrape(&metrics_addr).await?;
        eprintln!("submitting with {} in flight …", args.concurrency);
        let started = Instant::now();
        let queue = Arc::new(std::sync::Mutex::new(txs));
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency.max(1) {
            let queue = queue.clone();
            let mut c = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut failed = 0usize;
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some(tx) = next else { break };
                    let t0 = Instant::now();
                    let r = c
                        .submit_transaction(pb::SubmitTransactionRequest {
                            signed_tx: tx,
                            wait_for_commit: true,
                        })
                        .await;
                    match r {
                        Ok(resp) if resp.get_ref().committed => lat.push(t0.elapsed()),
                        _ => failed += 1,
                    }
                }
                (lat, failed)
            }));
        }
        let mut lat = Vec::new();
        let mut failed = 0;
        for t in tasks {
            let (l, f) = t.await.map_err(|e| fail("task", e))?;
            lat.extend(l);
            failed += f;
        }
        let elapsed = started.elapsed();
        let after = scrape(&metrics_addr).await?;
        let delta = |name: &str| metric(&after, name).unwrap_or(0.0) - metric(&before, name).unwrap_or(0.0);
        let blocks = delta("gmchain_blocks_committed_total");
        let syncs = delta("gmchain_rocksdb_wal_syncs_total");
        let per = |name: &str| {
            let sum = delta(&format!("{name}_sum"));
            let count = delta(&format!("{name}_count"));
            if count > 0.0 { sum / count * 1000.0 } else { 0.0 }
        };
        let verify_ms = per("gmchain_tx_verify_seconds");
        let execute_ms = per("gmchain_block_execute_seconds");
        let commit_ms = per("gmchain_block_commit_seconds");
        lat.sort();
        let committed = lat.len();
        let tps = committed as f64 / elapsed.as_secs_f64();
        Ok::<_, Failure>(format!(
            "{{\n  \"committed\": {committed},\n  \"failed\": {failed},\n  \"seconds\": {:.2},\n  \"committed_tx_per_s\": {tps:.0},\n  \"latency_p50_ms\": {:.1},\n  \"latency_p99_ms\": {:.1},\n  \"blocks\": {blocks},\n  \"wal_syncs\": {syncs},\n  \"wal_syncs_per_block\": {:.3},\n  \"node_admission_ms_per_tx\": {verify_ms:.3},\n  \"node_execute_ms_per_block\": {execute_ms:.1},\n  \"node_commit_ms_per_block\": {commit_ms:.1},\n  \"cores\": {cores},\n  \"sm2_verify_per_s_one_core\": {per_core:.0},\n  \"bound_B\": {bound:.0},\n  \"ratio_to_B\": {:.3},\n  \"target_ratio\": 0.5\n}}\n",
            elapsed.as_secs_f64(),
            percentile(&lat, 0.5).as_secs_f64() * 1000.0,
            percentile(&lat, 0.99).as_secs_f64() * 1000.0,
            if blocks > 0.0 { syncs / blocks } else { 0.0 },
            tps / bound,
        ))
    })?;
    stop_node(&mut node_proc);
    print!("{report}");
    Ok(())
}

/// Starts `gmchain node start --config CONFIG` (this executable), logging to DIR/node.log;
/// returns the process, its gRPC URL and its metrics address.
pub(crate) fn start_node(
    config: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(NodeProcess, String, String), Failure> {
    let cfg = node::NodeConfig::load(config).map_err(|e| fail("config", e))?;
    let exe = std::env::current_exe().map_err(|e| fail("exe", e))?;
    let log = std::fs::File::create(dir.join("node.log")).map_err(|e| fail("log", e))?;
    let child = Command::new(exe)
        .args(["node", "start", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| fail("start node", e))?;
    Ok((
        NodeProcess(child),
        cfg.listen.to_string(),
        cfg.metrics_listen.to_string(),
    ))
}

/// Connects to the node at `url`, retrying for up to 10 s while it starts.
pub(crate) async fn wait_for_node(
    url: &str,
    dir: &std::path::Path,
) -> Result<api::v1::chain_client::ChainClient<tonic::transport::Channel>, Failure> {
    let node = NodeArgs::at(
        url,
        crate::client::TlsArgs {
            client_profile: Some(dir.join("client.toml")),
            ..Default::default()
        },
    );
    for _ in 0..100 {
        if let Ok(c) = connect(&node).await {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Failure::Unreachable(format!(
        "node {url} did not start; see {}/node.log",
        dir.display()
    )))
}

/// Stops the node with SIGTERM, so the store is closed cleanly, and waits for it.
pub(crate) fn stop_node(node: &mut NodeProcess) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &node.0.id().to_string()])
            .status();
        let _ = node.0.wait();
    }
}

pub(crate) fn tempdir() -> Result<PathBuf, Failure> {
    let base = std::env::temp_dir().join(format!("gmchain-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(|e| fail("tempdir", e))?;
    Ok(base)
}
