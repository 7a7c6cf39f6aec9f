//! A dev chain of several validator (and follower) processes on 127.0.0.1 (`gmchain node
//! dev-chain --validators n --followers f`), each started, stopped and restarted by the test,
//! optionally inside a network namespace, its log kept when a test fails. Shared by the
//! `bft` and `governance` suites.
#![allow(dead_code)] // each suite uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use crypto::{Signer, UserId};
use crypto_sm::rng::SystemRandom;
use pki::Certificate;
use types::{Call, ChainId, Height, Sender, SignedTx, Transaction};

use crate::dev_node::{client_at, ok_with};

pub type Client = ChainClient<tonic::transport::Channel>;

/// A dev chain of validator processes, killed on drop.
pub struct Consortium {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub nodes: Vec<NodeInfo>,
    /// The prefix of the directory that keeps the logs of a failed run.
    label: &'static str,
}

/// One node: its configuration file (in the chain's directory), addresses and process.
pub struct NodeInfo {
    pub config: String,
    pub grpc: String,
    pub metrics: String,
    /// The network namespace the node runs in (`ip netns exec`), if not the test's own.
    pub netns: Option<String>,
    pub child: Option<Child>,
}

/// The `ip` command (iproute2), for tests that run nodes in network namespaces.
pub const IP: &str = "ip";

impl Consortium {
    /// `n` validators of one organisation ("Dev Bureau", whose admin is `admin`).
    pub fn new(n: usize, label: &'static str) -> Consortium {
        Consortium::with_followers(n, 0, label)
    }

    /// `validators` validators, then `followers` followers (`node{validators}`…).
    pub fn with_followers(validators: usize, followers: usize, label: &'static str) -> Consortium {
        Consortium::build(validators, followers, 1, label)
    }

    /// `n` validators made by the `gmchain` at `bin` (another release's `dev-chain`: the
    /// rolling-upgrade test's previous release).
    pub fn made_by(bin: &Path, n: usize, label: &'static str) -> Consortium {
        Consortium::build_by(bin, n, 0, 1, label)
    }

    /// `validators` validators of a chain of `orgs` founding organisations: organisation
    /// i ≥ 2 has an admin, `orgs/{i}.admin.key.pem` (as `dev_chain_orgs`).
    pub fn with_orgs(validators: usize, orgs: usize, label: &'static str) -> Consortium {
        Consortium::build(validators, 0, orgs, label)
    }

    fn build(validators: usize, followers: usize, orgs: usize, label: &'static str) -> Consortium {
        Consortium::build_by(
            Path::new(env!("CARGO_BIN_EXE_gmchain")),
            validators,
            followers,
            orgs,
            label,
        )
    }

    fn build_by(
        bin: &Path,
        validators: usize,
        followers: usize,
        orgs: usize,
        label: &'static str,
    ) -> Consortium {
        let n = validators + followers;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (v, f, o) = (
            validators.to_string(),
            followers.to_string(),
            orgs.to_string(),
        );
        let mut args = vec![
            "node",
            "dev-chain",
            "--dir",
            dir.to_str().unwrap(),
            "--clients",
            "8",
            "--interval-ms",
            "50",
            "--validators",
            &v,
            "--followers",
            &f,
        ];
        if orgs != 1 {
            args.extend(["--orgs", &o]);
        }
        ok_with(bin, &dir, &args);
        let nodes = (0..n)
            .map(|i| {
                let config = if i == 0 {
                    "node.toml".to_string()
                } else {
                    format!("node{i}.toml")
                };
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
                    netns: None,
                    child: None,
                }
            })
            .collect();
        Consortium {
            _tmp: tmp,
            dir,
            nodes,
            label,
        }
    }

    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}.log"))
    }

    /// The last lines of every node's log.
    pub fn logs(&self) -> String {
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

    pub fn start(&mut self, i: usize) {
        self.start_with(i, Path::new(env!("CARGO_BIN_EXE_gmchain")));
    }

    /// Starts node `i` with the `gmchain` at `bin` (this build's, or another release's).
    pub fn start_with(&mut self, i: usize, bin: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))
            .unwrap();
        // `ip netns exec` enters the namespace and execs the node: the child is the node.
        let mut cmd = match &self.nodes[i].netns {
            Some(ns) => {
                let mut c = Command::new(IP);
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .current_dir(&self.dir)
            .args(["node", "start", "--config", &self.nodes[i].config])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i].child = Some(child);
    }

    /// Waits until node `i` answers over TLS.
    pub fn wait_up(&self, rt: &tokio::runtime::Runtime, i: usize) {
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

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops node `i` as an operator does (SIGTERM, then waits up to 20 s; SIGKILL after).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.wait();
        }
    }

    pub fn client(&self, rt: &tokio::runtime::Runtime, i: usize) -> Client {
        rt.block_on(client_at(&self.dir, &self.nodes[i].grpc, "admin"))
            .unwrap_or_else(|e| panic!("node{i}: {e}\n{}", self.logs()))
    }

    /// The text of node `i`'s configuration.
    pub fn config(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(&self.nodes[i].config)).unwrap()
    }

    /// Replaces each `(from, to)` in every node's configuration (listen and peer addresses
    /// alike).
    pub fn replace_in_configs(&self, pairs: &[(String, String)]) {
        for i in 0..self.nodes.len() {
            let text = pairs
                .iter()
                .fold(self.config(i), |t, (from, to)| t.replace(from, to));
            std::fs::write(self.dir.join(&self.nodes[i].config), text).unwrap();
        }
    }
}

impl Drop for Consortium {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        // A failed run keeps the nodes' logs (the directory itself goes).
        if std::thread::panicking() {
            let keep =
                std::env::temp_dir().join(format!("gmchain-{}-{}", self.label, std::process::id()));
            let _ = std::fs::create_dir_all(&keep);
            for i in 0..self.nodes.len() {
                let _ = std::fs::copy(self.log(i), keep.join(format!("node{i}.log")));
            }
            eprintln!("node logs kept in {}", keep.display());
        }
    }
}

/// A runtime for the tests' gRPC clients.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An `attestation.anchor` of `doc`'s SM3 on the dev chain, signed by `key`.
pub fn anchor(key: &dyn Signer, cert: &Certificate, doc: &str) -> SignedTx {
    let mut salt = [0u8; 16];
    crypto::RandomSource::fill(&SystemRandom, &mut salt).unwrap();
    let tx = Transaction {
        fuel_limit: None,
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

/// The node's status.
pub async fn status(c: &mut Client) -> pb::StatusResponse {
    c.get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}
