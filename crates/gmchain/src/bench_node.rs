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
use crate::cli_tx::{NodeArgs, status_failure};

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
    /// gRPC connections the submissions share. A node serves at most
    /// `api.max_streams_per_connection` (default 64) streams on one connection, so with one
    /// connection at most 64 submissions are in flight whatever `--concurrency` says.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// What the measured transactions call: `attest` (attestation anchors), `workflow` (the
    /// workflow example contract's `approve` steps, `bench_contract`) or `both` (attest then
    /// workflow, each on a fresh chain, `--rounds` times, with their ratio).
    #[arg(long, value_enum, default_value_t = Workload::Attest)]
    pub workload: Workload,
    /// Transactions per submission: 1 sends each with `Chain.SubmitTransaction`; more sends
    /// them in batches (`Batch.SubmitTransactions`), `--concurrency` batches in flight.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
    /// How the measured transactions name their sender: `certificate` (the whole
    /// certificate, as a client's first transaction must) or `registered` (its SM3 id, as a
    /// client sends once the chain holds its certificate: each client's certificate is first
    /// registered by one committed transaction, outside the measurement).
    #[arg(long, value_enum, default_value_t = SenderForm::Certificate)]
    pub sender: SenderForm,
    /// How the one validator decides blocks: `producer` (the single-validator producer) or
    /// `bft` (the consortium engine with a validator set of one).
    #[arg(long, value_enum, default_value_t = Engine::Producer)]
    pub engine: Engine,
    #[command(flatten)]
    pub contract: crate::bench_contract::ContractBenchArgs,
}

/// How the benchmark's transactions name their sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SenderForm {
    Certificate,
    Registered,
}

/// The engine the benchmark's one validator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    Producer,
    Bft,
}

/// What `gmchain bench node` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    Attest,
    Workflow,
    Both,
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

/// Distinct signatures [`verify_rate`] checks in turn.
const VERIFY_SAMPLES: usize = 2000;

/// SM2 verifications per second on one core (this thread): [`VERIFY_SAMPLES`] signatures by
/// as many keys over distinct 32-byte messages, verified in turn for at least 1.5 s.
pub(crate) fn verify_rate() -> Result<f64, Failure> {
    let id = UserId::default();
    let mut samples = Vec::with_capacity(VERIFY_SAMPLES);
    for i in 0..VERIFY_SAMPLES {
        let key =
            crypto_sm::sm2::PrivateKey::generate(&SystemRandom).map_err(|e| fail("key", e))?;
        let msg = *crypto_sm::sm3::sm3(&(i as u64).to_be_bytes()).as_bytes();
        let sig = key
            .sign(&id, &msg, &SystemRandom)
            .map_err(|e| fail("sign", e))?;
        samples.push((key.public_key(), msg, sig));
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(1500) {
        for (pk, msg, sig) in &samples {
            crypto_sm::sm2::verify(pk, &id, msg, sig).map_err(|e| fail("verify", e))?;
        }
        n += samples.len() as u64;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

pub(crate) async fn scrape(addr: &str) -> Result<String, Failure> {
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

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A gRPC client of one node: its Chain service (what it dereferences to) and the channel,
/// for the Batch service.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    chain: api::v1::chain_client::ChainClient<tonic::transport::Channel>,
    channel: tonic::transport::Channel,
}

impl Client {
    fn new(channel: tonic::transport::Channel) -> Self {
        Client {
            chain: api::v1::chain_client::ChainClient::new(channel.clone())
                .max_decoding_message_size(gmchain_sdk::MAX_MESSAGE),
            channel,
        }
    }

    /// The node's Batch service on the same connection.
    fn batch(&self) -> api::v1::batch_client::BatchClient<tonic::transport::Channel> {
        api::v1::batch_client::BatchClient::new(self.channel.clone())
            .max_encoding_message_size(usize::MAX)
            .max_decoding_message_size(gmchain_sdk::MAX_MESSAGE)
    }
}

impl std::ops::Deref for Client {
    type Target = api::v1::chain_client::ChainClient<tonic::transport::Channel>;
    fn deref(&self) -> &Self::Target {
        &self.chain
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.chain
    }
}

/// Signs `n` attestation anchors (`anchor(SM3(salt), "bench")`), round-robin over the client
/// keys, on every core; transaction `i` has the salt `first + i`, so batches with disjoint
/// ranges never repeat a transaction. Returns their encodings in order.
pub(crate) fn presign(
    chain_id: &ChainId,
    expiry: Height,
    clients: &[(crypto_sm::SoftSigner, pki::Certificate)],
    first: u64,
    n: usize,
) -> Result<Vec<Vec<u8>>, Failure> {
    presign_anchors(chain_id, expiry, clients, first, n, false)
}

/// [`presign`], the sender as [`presign_as`] says.
pub(crate) fn presign_anchors(
    chain_id: &ChainId,
    expiry: Height,
    clients: &[(crypto_sm::SoftSigner, pki::Certificate)],
    first: u64,
    n: usize,
    registered: bool,
) -> Result<Vec<Vec<u8>>, Failure> {
    presign_as(
        chain_id,
        expiry,
        clients,
        first,
        n,
        None,
        &|i| {
            let mut salt = [0u8; 16];
            salt[..8].copy_from_slice(&(first + i as u64).to_be_bytes());
            let digest = crypto_sm::sm3::sm3(&salt);
            gmchain_sdk::anchor_call(&digest, "bench", "", Vec::new())
        },
        registered,
    )
}

/// Signs `n` transactions, transaction `i` making `call(i)` with the fuel limit `fuel`
/// (`Some`: a version 2 transaction) and the salt `first + i`, round-robin over the client
/// keys, on every core. Returns their encodings in order.
pub(crate) fn presign_calls(
    chain_id: &ChainId,
    expiry: Height,
    clients: &[(crypto_sm::SoftSigner, pki::Certificate)],
    first: u64,
    n: usize,
    fuel: Option<u64>,
    call: &(dyn Fn(usize) -> Call + Sync),
) -> Result<Vec<Vec<u8>>, Failure> {
    presign_as(chain_id, expiry, clients, first, n, fuel, call, false)
}

/// [`presign_calls`], the sender named by its certificate's SM3 id (`Sender::Registered`)
/// when `registered`: what a client sends once a transaction of its own has been committed
/// (the chain then holds its certificate), about 600 bytes less per transaction.
#[allow(
    clippy::too_many_arguments,
    reason = "presign_calls' arguments and the sender form"
)]
pub(crate) fn presign_as(
    chain_id: &ChainId,
    expiry: Height,
    clients: &[(crypto_sm::SoftSigner, pki::Certificate)],
    first: u64,
    n: usize,
    fuel: Option<u64>,
    call: &(dyn Fn(usize) -> Call + Sync),
    registered: bool,
) -> Result<Vec<Vec<u8>>, Failure> {
    if clients.is_empty() {
        return Err(fail("pre-sign", "no client keys"));
    }
    let sign = |i: usize| -> Result<Vec<u8>, Failure> {
        let (key, cert) = &clients[i % clients.len()];
        let mut salt = [0u8; 16];
        salt[..8].copy_from_slice(&(first + i as u64).to_be_bytes());
        let tx = Transaction {
            fuel_limit: fuel,
            chain_id: chain_id.clone(),
            salt,
            expiry,
            sender: if registered {
                Sender::Registered(cert.fingerprint())
            } else {
                Sender::Certificate(cert.der().to_vec())
            },
            call: call(i),
        };
        let signed = SignedTx::sign(tx, key as &dyn Signer, &UserId::default())
            .map_err(|e| fail("sign", e))?;
        Ok(signed.to_bytes())
    };
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1)
        .min(n.max(1));
    let chunk = n.div_ceil(threads);
    let parts: Vec<Result<Vec<Vec<u8>>, Failure>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let sign = &sign;
                s.spawn(move || (t * chunk..((t + 1) * chunk).min(n)).map(sign).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(fail("pre-sign", "a thread panicked")))
            })
            .collect()
    });
    let mut txs = Vec::with_capacity(n);
    for p in parts {
        txs.extend(p?);
    }
    Ok(txs)
}

/// What a load phase measured.
pub(crate) struct Load {
    /// Submit-to-commit latency of every acknowledged transaction, sorted.
    pub latencies: Vec<Duration>,
    /// Submissions refused, failed or not acknowledged as committed.
    pub failed: usize,
    /// From the first submission to the last answer.
    pub elapsed: Duration,
    /// Pre-signed transactions not submitted (the deadline came first).
    pub unsent: usize,
    /// Batches the node refused unread (`TX_BATCH_BUSY`) and this client sent again.
    pub busy_retries: usize,
}

/// Submits `tx` to `client`, waiting for its commit; its receipt's encoding when
/// acknowledged as committed (a committed transaction may have a `Failed` receipt).
pub(crate) async fn submit(client: &mut Client, tx: Vec<u8>) -> Option<Vec<u8>> {
    match client
        .submit_transaction(pb::SubmitTransactionRequest {
            signed_tx: tx,
            wait_for_commit: true,
        })
        .await
    {
        Ok(resp) if resp.get_ref().committed => Some(resp.into_inner().receipt),
        _ => None,
    }
}

/// Submits `txs` in one batch (`Batch.SubmitTransactions`) to `client`, waiting for their
/// commits; each one's receipt when acknowledged as committed, in order (all `None` if the
/// call failed).
pub(crate) async fn submit_batch(
    client: &mut Client,
    txs: Vec<Vec<u8>>,
    busy_retries: &mut usize,
) -> Vec<Option<Vec<u8>>> {
    let n = txs.len();
    // A node reads a few batches at once (8, 2 per client address) and refuses the others at
    // once (TX_BATCH_BUSY) without reading them: a client retries, as this one does.
    let answer = loop {
        let a = client
            .batch()
            .submit_transactions(pb::SubmitTransactionsRequest {
                signed_txs: txs.clone(),
                wait_for_commit: true,
            })
            .await;
        match &a {
            Err(s)
                if s.metadata()
                    .get(api::CODE_METADATA_KEY)
                    .is_some_and(|v| v.as_bytes() == b"TX_BATCH_BUSY") =>
            {
                *busy_retries += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            _ => break a,
        }
    };
    match answer {
        Ok(resp) => {
            let results = resp.into_inner().results;
            if results.len() != n {
                return vec![None; n];
            }
            results
                .into_iter()
                .map(|r| r.committed.then_some(r.receipt))
                .collect()
        }
        Err(_) => vec![None; n],
    }
}

/// Whether a committed transaction's receipt (as [`submit`] returns it) says it failed; a
/// receipt that does not decode counts as failed.
pub(crate) fn receipt_failed(receipt: &[u8]) -> bool {
    use types::Decode;
    !matches!(
        types::Receipt::from_bytes(receipt, &types::Limits::default()),
        Ok(r) if r.status == types::Status::Success
    )
}

/// Closed loop: `concurrency` submitters, submitter `k` sending to `clients[k % len]`, each
/// taking the next transaction, submitting it and waiting for its commit, until the
/// transactions run out or (if given) `deadline` passes.
pub(crate) async fn closed_loop(
    clients: &[Client],
    txs: Vec<Vec<u8>>,
    concurrency: usize,
    deadline: Option<Instant>,
) -> Result<Load, Failure> {
    Ok(closed_loop_checked(clients, txs, concurrency, deadline)
        .await?
        .0)
}

/// [`closed_loop`], also counting the committed transactions whose receipt is `Failed`
/// (they are in `latencies` too: committed, whatever their outcome).
pub(crate) async fn closed_loop_checked(
    clients: &[Client],
    txs: Vec<Vec<u8>>,
    concurrency: usize,
    deadline: Option<Instant>,
) -> Result<(Load, usize), Failure> {
    closed_loop_batched(clients, txs, concurrency, 1, deadline).await
}

/// [`closed_loop_checked`] with each submitter sending `batch` transactions at a time (one
/// `Batch.SubmitTransactions` call when `batch` > 1); every transaction of a batch counts
/// the batch's latency.
pub(crate) async fn closed_loop_batched(
    clients: &[Client],
    txs: Vec<Vec<u8>>,
    concurrency: usize,
    batch: usize,
    deadline: Option<Instant>,
) -> Result<(Load, usize), Failure> {
    if clients.is_empty() {
        return Err(fail("load", "no node to submit to"));
    }
    let started = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(txs));
    let mut tasks = Vec::new();
    for k in 0..concurrency.max(1) {
        let queue = queue.clone();
        let mut c = clients[k % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            let mut receipts_failed = 0usize;
            let mut busy = 0usize;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let next: Vec<Vec<u8>> = queue
                    .lock()
                    .map(|mut q| {
                        let from = q.len().saturating_sub(batch.max(1));
                        q.split_off(from)
                    })
                    .unwrap_or_default();
                if next.is_empty() {
                    break;
                }
                let t0 = Instant::now();
                let answers = if batch <= 1 {
                    let mut one = Vec::with_capacity(1);
                    for tx in next {
                        one.push(submit(&mut c, tx).await);
                    }
                    one
                } else {
                    submit_batch(&mut c, next, &mut busy).await
                };
                for a in answers {
                    match a {
                        Some(receipt) => {
                            lat.push(t0.elapsed());
                            receipts_failed += usize::from(receipt_failed(&receipt));
                        }
                        None => failed += 1,
                    }
                }
            }
            (lat, failed, receipts_failed, busy)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    let mut receipts_failed = 0;
    let mut busy_retries = 0;
    for t in tasks {
        let (l, f, r, b) = t.await.map_err(|e| fail("task", e))?;
        latencies.extend(l);
        failed += f;
        receipts_failed += r;
        busy_retries += b;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let unsent = queue.lock().map(|q| q.len()).unwrap_or(0);
    Ok((
        Load {
            latencies,
            failed,
            elapsed,
            unsent,
            busy_retries,
        },
        receipts_failed,
    ))
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
    match args.workload {
        Workload::Attest => {
            let report = attest_phase(args, &dir, per_core, cores)?;
            print!("{report}");
            Ok(())
        }
        Workload::Workflow | Workload::Both => {
            crate::bench_contract::run(args, &dir, per_core, cores)
        }
    }
}

/// Measures attestation anchors on a fresh development chain in `dir`; returns the JSON
/// report (`committed_tx_per_s` is the figure).
pub(crate) fn attest_phase(
    args: &NodeBenchArgs,
    dir: &std::path::Path,
    per_core: f64,
    cores: usize,
) -> Result<String, Failure> {
    let bound = per_core * cores as f64;
    let (chain, mut node_proc, url, metrics_addr, rt) = start_bench_chain(args, dir)?;
    let node_pid = node_proc.0.id();
    let report = rt.block_on(async {
        let (_, status, chain_id) = client_and_status(&url, dir).await?;
        eprintln!("pre-signing {} transactions …", args.txs);
        let expiry = Height(status.height + 900);
        let registered = args.sender == SenderForm::Registered;
        if registered {
            // One committed transaction per client, so that the chain holds its certificate.
            eprintln!("registering {} client certificates …", chain.clients.len());
            let first = presign(&chain_id, expiry, &chain.clients, 1 << 48, chain.clients.len())?;
            let conns = connections(&url, dir, 1).await?;
            let warm = closed_loop(&conns, first, 64, None).await?;
            if warm.failed > 0 {
                return Err(fail(
                    "registering the clients",
                    format!("{} transactions not committed", warm.failed),
                ));
            }
        }
        let txs = presign_anchors(&chain_id, expiry, &chain.clients, 0, args.txs, registered)?;
        let before = scrape(&metrics_addr).await?;
        let cpu_before = cpu_seconds(node_pid);
        eprintln!("submitting with {} in flight …", args.concurrency);
        let conns = connections(&url, dir, args.connections).await?;
        let batch = usize::try_from(args.batch).unwrap_or(1);
        let (load, receipts_failed) =
            closed_loop_batched(&conns, txs, args.concurrency, batch, None).await?;
        let busy_retries = load.busy_retries;
        let (lat, failed, elapsed) = (load.latencies, load.failed, load.elapsed);
        let cpu_ms = cpu_per_tx(cpu_before, cpu_seconds(node_pid), lat.len());
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
        let committed = lat.len();
        let tps = committed as f64 / elapsed.as_secs_f64();
        let engine = match args.engine {
            Engine::Producer => "producer",
            Engine::Bft => "bft",
        };
        // One verification's time: measured again now that the load is over, the higher
        // rate kept (the machine at its least busy), so the figure is not flattered by a
        // reading taken while something else ran.
        let verify_after = verify_rate()?;
        let verify_best = per_core.max(verify_after);
        let equivalents = verify_equivalents(cpu_ms, verify_best);
        Ok::<_, Failure>(format!(
            "{{\n  \"engine\": \"{engine}\",\n  \"batch\": {batch},\n  \"sender\": \"{}\",\n  \"committed\": {committed},\n  \"committed_with_failed_receipt\": {receipts_failed},\n  \"batches_refused_busy_and_resent\": {busy_retries},\n  \"failed\": {failed},\n  \"seconds\": {:.2},\n  \"committed_tx_per_s\": {tps:.0},\n  \"latency_p50_ms\": {:.1},\n  \"latency_p99_ms\": {:.1},\n  \"blocks\": {blocks},\n  \"wal_syncs\": {syncs},\n  \"wal_syncs_per_block\": {:.3},\n  \"node_admission_ms_per_tx\": {verify_ms:.3},\n  \"node_execute_ms_per_block\": {execute_ms:.1},\n  \"node_commit_ms_per_block\": {commit_ms:.1},\n  \"node_cpu_ms_per_tx\": {cpu_ms:.3},\n  \"node_cpu_per_tx_in_sm2_verifies\": {equivalents:.2},\n  \"target_node_cpu_per_tx_in_sm2_verifies\": 1.5,\n  \"sm2_verify_per_s_before_after\": [{per_core:.0}, {verify_after:.0}],\n  \"cores\": {cores},\n  \"sm2_verify_per_s_one_core\": {per_core:.0},\n  \"bound_B\": {bound:.0},\n  \"ratio_to_B\": {:.3},\n  \"target_ratio\": 0.5\n}}\n",
            if registered { "registered" } else { "certificate" },
            elapsed.as_secs_f64(),
            percentile(&lat, 0.5).as_secs_f64() * 1000.0,
            percentile(&lat, 0.99).as_secs_f64() * 1000.0,
            if blocks > 0.0 { syncs / blocks } else { 0.0 },
            tps / bound,
        ))
    })?;
    stop_node(&mut node_proc);
    Ok(report)
}

/// Prepares the development chain of a benchmark in `dir` (one organisation, `args.clients`
/// client keys), starts its node and a one-thread runtime for the load.
#[allow(
    clippy::type_complexity,
    reason = "the parts a benchmark phase takes apart at once"
)]
pub(crate) fn start_bench_chain(
    args: &NodeBenchArgs,
    dir: &std::path::Path,
) -> Result<
    (
        crate::devchain::DevChain,
        NodeProcess,
        String,
        String,
        tokio::runtime::Runtime,
    ),
    Failure,
> {
    eprintln!(
        "preparing a development chain with {} client keys in {} …",
        args.clients,
        dir.display()
    );
    let chain = crate::devchain::prepare(
        dir,
        args.clients.max(1),
        args.block_max_txs,
        args.interval_ms,
        1,
    )?;
    if args.engine == Engine::Bft {
        let text = std::fs::read_to_string(&chain.config).map_err(|e| fail("config", e))?;
        let port = crate::devchain::free_port()?;
        std::fs::write(
            &chain.config,
            crate::bench_consortium::with_lone_consensus(&text, port),
        )
        .map_err(|e| fail("config", e))?;
    }
    let (node_proc, url, metrics_addr) = start_node(&chain.config, dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| fail("runtime", e))?;
    Ok((chain, node_proc, url, metrics_addr, rt))
}

/// Waits for the benchmark's node at `url`; returns a client, the node's status and its
/// chain id.
pub(crate) async fn client_and_status(
    url: &str,
    dir: &std::path::Path,
) -> Result<(Client, pb::StatusResponse, ChainId), Failure> {
    let mut client = wait_for_node(url, dir).await?;
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(|s| status_failure("status", s))?
        .into_inner();
    let chain_id = ChainId::new(&status.chain_id).map_err(|e| fail("chain id", e))?;
    Ok((client, status, chain_id))
}

/// Starts `gmchain node start --config CONFIG` (this executable), logging to DIR/node.log;
/// returns the process, its gRPC URL and its metrics address.
pub(crate) fn start_node(
    config: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(NodeProcess, String, String), Failure> {
    start_node_logged(config, &dir.join("node.log"))
}

/// [`start_node`] with its standard error in `log`.
pub(crate) fn start_node_logged(
    config: &std::path::Path,
    log: &std::path::Path,
) -> Result<(NodeProcess, String, String), Failure> {
    let cfg = node::NodeConfig::load(config).map_err(|e| fail("config", e))?;
    let exe = std::env::current_exe().map_err(|e| fail("exe", e))?;
    let log = std::fs::File::create(log).map_err(|e| fail("log", e))?;
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

/// `n` (at least 1) clients of the node at `url`, each on its own connection, authenticated
/// as the development chain's users in turn (`clients/<k>.profile.toml`), as an application's
/// connections are: an admin's submissions are each written to the node's audit log (synced),
/// which is not what application load costs a node.
pub(crate) async fn connections(
    url: &str,
    dir: &std::path::Path,
    n: usize,
) -> Result<Vec<Client>, Failure> {
    let mut out = Vec::with_capacity(n.max(1));
    for k in 0..n.max(1) {
        out.push(wait_for_node_as(url, dir, None, Some(&user_profile(dir, k))).await?);
    }
    Ok(out)
}

/// The client profile of the development chain's `k`-th user (modulo the users there are);
/// the admin's `client.toml` if the chain has none.
pub(crate) fn user_profile(dir: &std::path::Path, k: usize) -> PathBuf {
    let users = (0..)
        .take_while(|i| dir.join(format!("clients/{i}.profile.toml")).exists())
        .count();
    if users == 0 {
        dir.join("client.toml")
    } else {
        dir.join(format!("clients/{}.profile.toml", k % users))
    }
}

/// Connects to the node at `url`, retrying for up to 10 s while it starts.
pub(crate) async fn wait_for_node(url: &str, dir: &std::path::Path) -> Result<Client, Failure> {
    wait_for_named_node(url, dir, None).await
}

/// [`wait_for_node`], checking that the node's certificate names `name` (default: the
/// client profile's `node_name`).
pub(crate) async fn wait_for_named_node(
    url: &str,
    dir: &std::path::Path,
    name: Option<&str>,
) -> Result<Client, Failure> {
    wait_for_node_as(url, dir, name, None).await
}

/// [`wait_for_named_node`] with the client profile `profile` (default: the admin's,
/// `client.toml`).
pub(crate) async fn wait_for_node_as(
    url: &str,
    dir: &std::path::Path,
    name: Option<&str>,
    profile: Option<&std::path::Path>,
) -> Result<Client, Failure> {
    let node = NodeArgs::at(
        url,
        crate::client::TlsArgs {
            client_profile: Some(
                profile.map_or_else(|| dir.join("client.toml"), |p| p.to_path_buf()),
            ),
            node_name: name.map(str::to_string),
            ..Default::default()
        },
    );
    for _ in 0..100 {
        if let Ok((channel, _)) = crate::client::channel_with_info(&node).await {
            return Ok(Client::new(channel));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Failure::Unreachable(format!(
        "node {url} did not start; see its log in {}",
        dir.display()
    )))
}

/// CPU time (user and system) the process `pid` has used, in seconds, from
/// `/proc/<pid>/stat` (clock ticks of 100 Hz, Linux's `USER_HZ`); `None` elsewhere.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) in parentheses; utime and
    // stime are fields 14 and 15 of the line, 12th and 13th after the name.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The node's CPU milliseconds per committed transaction between two [`cpu_seconds`]
/// readings (0 when either is missing or nothing committed).
pub(crate) fn cpu_per_tx(before: Option<f64>, after: Option<f64>, committed: usize) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) if committed > 0 => (a - b) * 1000.0 / committed as f64,
        _ => 0.0,
    }
}

/// The node's CPU per committed transaction in SM2 verifications: `cpu_ms_per_tx` divided by
/// one verification's time at `verify_per_s` on one core (0 when either is not positive).
pub(crate) fn verify_equivalents(cpu_ms_per_tx: f64, verify_per_s: f64) -> f64 {
    if cpu_ms_per_tx > 0.0 && verify_per_s > 0.0 {
        cpu_ms_per_tx * verify_per_s / 1000.0
    } else {
        0.0
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use types::Decode;

    fn clients(n: usize) -> Vec<(crypto_sm::SoftSigner, pki::Certificate)> {
        let provider = crypto_sm::SoftwareProvider::new(Arc::new(SystemRandom));
        let validity = pki::Validity {
            not_before: pki::UnixTime(1_700_000_000),
            not_after: pki::UnixTime(1_900_000_000),
        };
        (0..n)
            .map(|i| {
                let key = provider.generate().unwrap_or_else(|e| panic!("{e}"));
                let serial = pki::Serial::random(&SystemRandom).unwrap_or_else(|e| panic!("{e}"));
                let cert = pki::issue_root(&format!("client{i}"), "Bureau", serial, validity, &key)
                    .unwrap_or_else(|e| panic!("{e}"));
                (key, cert)
            })
            .collect()
    }

    #[test]
    fn presign_signs_in_order_round_robin_with_the_salts_asked_for() {
        let keys = clients(3);
        let chain = ChainId::new("bench-test").unwrap_or_else(|e| panic!("{e}"));
        let txs = presign(&chain, Height(42), &keys, 1000, 7).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(txs.len(), 7);
        for (i, bytes) in txs.iter().enumerate() {
            let tx = SignedTx::from_bytes(bytes, &types::Limits::default())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(tx.tx.salt[..8], (1000 + i as u64).to_be_bytes());
            assert_eq!(tx.tx.expiry, Height(42));
            let (_, cert) = &keys[i % 3];
            assert_eq!(tx.tx.sender, Sender::Certificate(cert.der().to_vec()));
            tx.verify_signature(&cert.public_key())
                .unwrap_or_else(|e| panic!("tx {i}: {e}"));
            // Signed by that client and no other.
            assert!(
                tx.verify_signature(&keys[(i + 1) % 3].1.public_key())
                    .is_err()
            );
        }
    }

    #[test]
    fn presign_refuses_without_keys_and_handles_zero() {
        let chain = ChainId::new("bench-test").unwrap_or_else(|e| panic!("{e}"));
        assert!(presign(&chain, Height(1), &[], 0, 3).is_err());
        let keys = clients(1);
        let none = presign(&chain, Height(1), &keys, 0, 0).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(none.is_empty());
    }

    #[test]
    fn this_process_has_used_some_cpu_and_the_rate_is_per_transaction() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let cpu = cpu_seconds(std::process::id()).unwrap_or_else(|| panic!("no /proc"));
        assert!(cpu >= 0.0);
        assert!(cpu_seconds(u32::MAX).is_none());
        assert_eq!(cpu_per_tx(Some(1.0), Some(3.0), 1000), 2.0);
        assert_eq!(cpu_per_tx(None, Some(3.0), 1000), 0.0);
        assert_eq!(cpu_per_tx(Some(1.0), Some(3.0), 0), 0.0);
    }

    #[test]
    fn percentile_picks_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }
}
