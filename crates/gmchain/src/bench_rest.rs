//! `gmchain bench rest` (issue 17): submit-and-wait throughput of the REST gateway against gRPC
//! on the same node in the same run. One development chain and node; pre-signed attestation
//! transactions from many client keys; rounds that alternate which API goes first, each API
//! driven closed-loop with the same number of submissions in flight (gRPC as streams of one
//! HTTP/2 connection, REST as that many HTTP/1.1 keep-alive connections to the plain listener,
//! `POST /v1/tx` with `wait_for_commit`). The figure is the median REST rate over the median
//! gRPC rate (target ≥ 0.8).

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use types::Height;

use crate::Failure;
use crate::bench_node::{client_and_status, closed_loop, presign, receipt_failed, stop_node};

/// Settings.
#[derive(Debug, clap::Args)]
pub(crate) struct RestBenchArgs {
    /// Transactions per API per round.
    #[arg(long, default_value_t = 3000)]
    pub txs: usize,
    /// Rounds (each API once per round, the order alternating); the ratio is of the medians.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Submissions in flight for each API (REST: one HTTP/1.1 connection each, the benchmark's
    /// node admitting that many from one address; gRPC: streams of one connection per 64).
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
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("bench rest: {what}: {e}"))
}

/// The plain REST listener of the configuration at `config`.
fn rest_listen(config: &std::path::Path) -> Result<String, Failure> {
    let cfg = node::NodeConfig::load(config).map_err(|e| fail("config", e))?;
    cfg.rest
        .listen
        .map(|a| a.to_string())
        .ok_or_else(|| fail("config", "the development chain has no [rest] listen"))
}

/// One REST submitter's connection.
struct RestConn {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>,
    host: String,
}

impl RestConn {
    async fn open(addr: &str) -> Result<Self, Failure> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::Unreachable(format!("REST listener {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| fail("HTTP handshake", e))?;
        tokio::spawn(conn);
        Ok(RestConn {
            sender,
            host: addr.to_string(),
        })
    }

    /// `POST /v1/tx` with `wait_for_commit`: the committed receipt, or `None`.
    async fn submit(&mut self, body: Bytes) -> Option<Vec<u8>> {
        self.sender.ready().await.ok()?;
        let req = http::Request::post("/v1/tx")
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(body))
            .ok()?;
        let resp = self.sender.send_request(req).await.ok()?;
        let ok = resp.status() == http::StatusCode::OK;
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        if !ok {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if v["committed"] != true {
            return None;
        }
        base64::engine::general_purpose::STANDARD
            .decode(v["receipt"].as_str()?)
            .ok()
    }
}

/// One REST round: `concurrency` connections, each submitting the next transaction and
/// waiting for its commit. Committed transactions per second, failed submissions and failed
/// receipts.
async fn rest_round(
    addr: &str,
    txs: Vec<Vec<u8>>,
    concurrency: usize,
) -> Result<(f64, usize, usize, usize), Failure> {
    let bodies: Vec<Bytes> = txs
        .iter()
        .map(|t| {
            Bytes::from(format!(
                "{{\"signed_tx\":\"{}\",\"wait_for_commit\":true}}",
                base64::engine::general_purpose::STANDARD.encode(t)
            ))
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let mut conns = Vec::new();
    for _ in 0..concurrency.max(1) {
        conns.push(RestConn::open(addr).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut c in conns {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let (mut done, mut failed, mut receipts_failed) = (0usize, 0usize, 0usize);
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(body) = next else { break };
                match c.submit(body).await {
                    Some(r) => {
                        done += 1;
                        receipts_failed += usize::from(receipt_failed(&r));
                    }
                    None => failed += 1,
                }
            }
            (done, failed, receipts_failed)
        }));
    }
    let (mut done, mut failed, mut receipts_failed) = (0, 0, 0);
    for t in tasks {
        let (d, f, r) = t.await.map_err(|e| fail("task", e))?;
        done += d;
        failed += f;
        receipts_failed += r;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((done as f64 / secs, done, failed, receipts_failed))
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

pub(crate) fn run(args: &RestBenchArgs) -> Result<(), Failure> {
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
    // Both APIs with the same submissions in flight: REST takes one connection each, so the
    // node admits that many from this address.
    let text = std::fs::read_to_string(&chain.config).map_err(|e| fail("config", e))?;
    let conns = args.concurrency.max(1);
    let text = text.replacen(
        "[api]\n",
        &format!(
            "[api]\nmax_connections = {}\nmax_connections_per_peer = {}\n",
            conns + 64,
            conns + 32
        ),
        1,
    );
    std::fs::write(&chain.config, text).map_err(|e| fail("config", e))?;
    let (mut node_proc, url, _metrics) = crate::bench_node::start_node(&chain.config, &dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| fail("runtime", e))?;
    let rest = rest_listen(&chain.config)?;
    let result = rt.block_on(async {
        let (_, status, chain_id) = client_and_status(&url, &dir).await?;
        // gRPC: a node serves at most 64 streams on one connection.
        let grpc = crate::bench_node::connections(&url, &dir, conns.div_ceil(64)).await?;
        let rounds = args.rounds.max(1);
        let total = rounds * 2 * args.txs;
        eprintln!("pre-signing {total} transactions …");
        // Expiry: the chain's window from now covers every round.
        let expiry = Height(status.height + status.expiry_window.saturating_sub(10).max(1));
        let mut txs = presign(&chain_id, expiry, &chain.clients, 0, total)?;
        // Warm-up: the first block and connections.
        let warm: Vec<_> = txs.split_off(txs.len().saturating_sub(200.min(txs.len() / 10)));
        let _ = closed_loop(&grpc, warm, args.concurrency, None).await?;
        let (mut grpc_rates, mut rest_rates) = (Vec::new(), Vec::new());
        let mut lines = Vec::new();
        let mut failures = 0usize;
        for r in 0..rounds {
            let g_txs: Vec<_> = txs.split_off(txs.len().saturating_sub(args.txs));
            let r_txs: Vec<_> = txs.split_off(txs.len().saturating_sub(args.txs));
            let mut order = ["grpc", "rest"];
            if r % 2 == 1 {
                order.reverse();
            }
            for api in order {
                if api == "grpc" {
                    let load = closed_loop(
                        &grpc,
                        g_txs.clone(),
                        args.concurrency,
                        None,
                    )
                    .await?;
                    let rate = load.latencies.len() as f64 / load.elapsed.as_secs_f64();
                    failures += load.failed;
                    eprintln!("round {r}: gRPC {rate:.0} tx/s ({} failed)", load.failed);
                    grpc_rates.push(rate);
                } else {
                    let (rate, _, failed, bad) =
                        rest_round(&rest, r_txs.clone(), args.concurrency).await?;
                    failures += failed + bad;
                    eprintln!("round {r}: REST {rate:.0} tx/s ({failed} failed)");
                    rest_rates.push(rate);
                }
            }
            lines.push(format!(
                "    {{\"round\": {r}, \"first\": \"{}\", \"grpc_tx_per_s\": {:.0}, \"rest_tx_per_s\": {:.0}}}",
                order[0],
                grpc_rates[r],
                rest_rates[r]
            ));
        }
        let (g, re) = (median(&grpc_rates), median(&rest_rates));
        Ok::<_, Failure>(format!(
            "{{\n  \"txs_per_api_per_round\": {},\n  \"in_flight\": {},\n  \"rounds\": [\n{}\n  ],\n  \"failed\": {failures},\n  \"grpc_median_tx_per_s\": {g:.0},\n  \"rest_median_tx_per_s\": {re:.0},\n  \"ratio_rest_to_grpc\": {:.3},\n  \"target_ratio\": 0.8\n}}\n",
            args.txs,
            args.concurrency,
            lines.join(",\n"),
            if g > 0.0 { re / g } else { 0.0 },
        ))
    });
    stop_node(&mut node_proc);
    let _ = std::fs::remove_dir_all(&dir);
    print!("{}", result?);
    Ok(())
}
