//! Several validators as real processes on 127.0.0.1, deciding by BFT consensus over GM TLS
//! links (issue 13): a consortium of four under load loses a validator to SIGKILL and then
//! its leader mid-round, keeps deciding with the three left, and afterwards every
//! acknowledged transaction is on every node at the same height, with the same state roots
//! and certificate chains; no node saw a validator equivocate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use crypto::{Signer, UserId};
use crypto_sm::rng::SystemRandom;
use pki::Certificate;
use types::{Call, ChainId, Decode, Encode, Height, Limits, Sender, SignedTx, Transaction};

use crate::dev_node;
use dev_node::{client_at, identity, ok, scrape};

type Client = ChainClient<tonic::transport::Channel>;

/// A dev chain of `n` validators (`gmchain node dev-chain --validators n`).
struct Consortium {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    nodes: Vec<NodeInfo>,
}

struct NodeInfo {
    config: String,
    grpc: String,
    metrics: String,
    child: Option<Child>,
}

impl Consortium {
    fn new(n: usize) -> Consortium {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        ok(
            &dir,
            &[
                "node",
                "dev-chain",
                "--dir",
                dir.to_str().unwrap(),
                "--clients",
                "8",
                "--interval-ms",
                "50",
                "--validators",
                &n.to_string(),
            ],
        );
        let nodes = (0..n)
            .map(|i| {
                let config = if i == 0 {
                    "node.toml".to_string()
                } else {
                    format!("node{i}.toml")
                };
                // The engine's decisions and sync steps in the logs a failure prints.
                let text = std::fs::read_to_string(dir.join(&config)).unwrap().replace(
                    "level = \"warn\"",
                    "level = \"warn,node::bft=info,arc_malachitebft_core_consensus=info\"",
                );
                std::fs::write(dir.join(&config), &text).unwrap();
                let find = |key: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(key))
                        .map(|v| v.trim().trim_matches('"').to_string())
                        .unwrap()
                };
                NodeInfo {
                    grpc: find("listen = "),
                    metrics: find("metrics_listen = "),
                    config,
                    child: None,
                }
            })
            .collect();
        Consortium {
            _tmp: tmp,
            dir,
            nodes,
        }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}.log"))
    }

    fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let text = std::fs::read_to_string(self.log(i)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                format!(
                    "--- node{i}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gmchain"))
            .current_dir(&self.dir)
            .args(["node", "start", "--config", &self.nodes[i].config])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i].child = Some(child);
    }

    /// Waits until node `i` answers over TLS.
    fn wait_up(&self, rt: &tokio::runtime::Runtime, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while rt
            .block_on(async { client_at(&self.dir, &self.nodes[i].grpc, "admin").await })
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "node{i} did not start: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self, rt: &tokio::runtime::Runtime, i: usize) -> Client {
        rt.block_on(client_at(&self.dir, &self.nodes[i].grpc, "admin"))
            .unwrap_or_else(|e| panic!("node{i}: {e}\n{}", self.logs()))
    }
}

impl Drop for Consortium {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        // A failed run keeps the nodes' logs (the directory itself goes).
        if std::thread::panicking() {
            let keep = std::env::temp_dir().join(format!("gmchain-bft-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&keep);
            for i in 0..self.nodes.len() {
                let _ = std::fs::copy(self.log(i), keep.join(format!("node{i}.log")));
            }
            eprintln!("node logs kept in {}", keep.display());
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn anchor(key: &dyn Signer, cert: &Certificate, doc: &str) -> SignedTx {
    let mut salt = [0u8; 16];
    crypto::RandomSource::fill(&SystemRandom, &mut salt).unwrap();
    let tx = Transaction {
        chain_id: ChainId::new("dev-chain").unwrap(),
        salt,
        expiry: Height(900),
        sender: Sender::Certificate(cert.der().to_vec()),
        call: Call {
            contract: "attestation".into(),
            method: "anchor".into(),
            args: vec![
                crypto_sm::sm3::sm3(doc.as_bytes()).as_bytes().to_vec(),
                b"document".to_vec(),
                Vec::new(),
                Vec::new(),
            ],
        },
    };
    SignedTx::sign(tx, key, &UserId::default()).unwrap()
}

async fn status(c: &mut Client) -> pb::StatusResponse {
    c.get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn metric_total(page: &str, name: &str) -> u64 {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The header of block `h` on a node.
async fn header(c: &mut Client, h: u64) -> types::BlockHeader {
    let b = c
        .get_block(pb::GetBlockRequest { height: Some(h) })
        .await
        .unwrap()
        .into_inner();
    types::Block::from_bytes(&b.block, &Limits::default())
        .unwrap()
        .header
}

#[test]
fn four_validators_keep_deciding_through_a_killed_validator_and_a_killed_leader() {
    let mut net = Consortium::new(4);
    let rt = rt();
    for i in 0..4 {
        net.start(i);
    }
    for i in 0..4 {
        net.wait_up(&rt, i);
    }
    let dir: &Path = &net.dir;
    let ids: Arc<Vec<_>> = Arc::new(
        (0..8)
            .map(|i| identity(dir, &format!("clients/{i}")))
            .collect(),
    );
    let acked: Arc<Mutex<Vec<(types::TxId, u64)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Load: 8 submitters, each waiting for its commit, spread over nodes 1 and 2 (which stay
    // up); a submission that fails (its node restarting) is retried on the other.
    let clients: Vec<Client> = [1, 2].iter().map(|&i| net.client(&rt, i)).collect();
    let load = {
        let (acked, ids, stop) = (acked.clone(), ids.clone(), stop.clone());
        rt.spawn(async move {
            let mut tasks = Vec::new();
            for w in 0..8usize {
                let mut cs = clients.clone();
                let (acked, ids, stop) = (acked.clone(), ids.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut n = 0usize;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (k, cert) = &ids[w];
                        let tx = anchor(k, cert, &format!("load {w} {n}"));
                        let c = &mut cs[(w + n) % 2];
                        let r = c
                            .submit_transaction(pb::SubmitTransactionRequest {
                                signed_tx: tx.to_bytes(),
                                wait_for_commit: true,
                            })
                            .await;
                        if let Ok(r) = r {
                            let r = r.into_inner();
                            if r.committed {
                                acked.lock().unwrap().push((tx.tx_id(), r.height));
                            }
                        }
                        n += 1;
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    let wait_for = |net: &Consortium, count: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while acked.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "{what}: only {} acknowledged\n{}",
                acked.lock().unwrap().len(),
                net.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&net, 40, "four validators");
    // A validator killed under load: three of four are a quorum.
    net.kill(3);
    let at_kill = acked.lock().unwrap().len();
    wait_for(
        &net,
        at_kill + 40,
        "three validators after SIGKILL of node3",
    );
    net.start(3);
    net.wait_up(&rt, 3);
    // The leader of the coming rounds killed mid-round (the proposer rotates; node 0 is the
    // proposer of every fourth round, and killing it while blocks flow hits rounds in
    // progress).
    net.kill(0);
    let at_kill = acked.lock().unwrap().len();
    wait_for(&net, at_kill + 40, "after SIGKILL of node0 with node3 back");
    net.start(0);
    net.wait_up(&rt, 0);
    let at_restart = acked.lock().unwrap().len();
    wait_for(&net, at_restart + 20, "all four again");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.block_on(load).unwrap();
    let acknowledged = acked.lock().unwrap().clone();
    let top = acknowledged.iter().map(|(_, h)| *h).max().unwrap();

    // Every node reaches the highest acknowledged height (the restarted ones by sync).
    let mut cs: Vec<Client> = (0..4).map(|i| net.client(&rt, i)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, c) in cs.iter_mut().enumerate() {
        while rt.block_on(status(c)).height < top {
            assert!(
                Instant::now() < deadline,
                "node{i} did not catch up to {top}\n{}",
                net.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Every acknowledged transaction is on every node, at the height it was acknowledged at.
    for (i, c) in cs.iter_mut().enumerate() {
        rt.block_on(async {
            for (id, h) in &acknowledged {
                let t = c
                    .get_transaction(pb::TxIdRequest {
                        tx_id: id.as_bytes().to_vec(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("node{i}: acknowledged {id} missing: {e}"))
                    .into_inner();
                assert_eq!(t.height, *h, "node{i}: {id}");
            }
        });
    }
    // The same headers (hence state roots and certificate links) on every node, to the top.
    for h in 1..=top {
        let first = rt.block_on(header(&mut cs[0], h));
        for (i, c) in cs.iter_mut().enumerate().skip(1) {
            let other = rt.block_on(header(c, h));
            assert_eq!(other, first, "node{i} differs at height {h}");
        }
    }
    // No node saw any validator sign two different votes for one height, round and kind.
    for (i, n) in net.nodes.iter().enumerate() {
        let page = scrape(&n.metrics);
        assert_eq!(
            metric_total(
                &page,
                "gmchain_txs_rejected_total{code=\"CONSENSUS_EQUIVOCATION\"}"
            ),
            0,
            "node{i}"
        );
        // The token signed votes and proposals, never anything per transaction.
        let sigs = metric_total(&page, "gmchain_consensus_signatures_total");
        assert!(sigs > 0, "node{i} signed no vote");
    }
    // Each store verifies on its own (hash links, roots, certificate chain).
    for i in 0..4 {
        net.kill(i);
    }
    for n in &net.nodes {
        ok(&net.dir, &["node", "verify-store", "--config", &n.config]);
    }
    eprintln!(
        "bft: {} transactions acknowledged up to height {top} through two SIGKILLs",
        acknowledged.len()
    );
}
