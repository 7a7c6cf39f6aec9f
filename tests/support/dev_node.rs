//! Shared by the multi-process tests: the `gmchain` binary, a throwaway development chain
//! (`gmchain node dev-chain`) and a node process on 127.0.0.1 that is killed on drop.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use api::v1::chain_client::ChainClient;

pub fn gm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run gmchain")
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = gm(dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "gmchain {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn fails(dir: &Path, args: &[&str], code: i32, needle: &str) -> String {
    let o = gm(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "gmchain {args:?}: {err}");
    assert!(
        err.contains(needle),
        "gmchain {args:?}: expected {needle:?} in {err}"
    );
    err
}

pub struct Chain {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub grpc: String,
    pub metrics: String,
}

pub fn dev_chain(clients: usize) -> Chain {
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
            &clients.to_string(),
            "--interval-ms",
            "50",
        ],
    );
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    let find = |key: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap()
    };
    Chain {
        grpc: format!("http://{}", find("listen = ")),
        metrics: find("metrics_listen = "),
        dir,
        _tmp: tmp,
    }
}

pub struct Node(pub Child);

impl Node {
    pub fn start(chain: &Chain) -> Node {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(chain.dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gmchain"))
            .current_dir(&chain.dir)
            .args(["node", "start", "--config", "node.toml"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let node = Node(child);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = rt.block_on(async {
                let mut c = ChainClient::connect(chain.grpc.clone()).await.ok()?;
                c.get_status(api::v1::GetStatusRequest {}).await.ok()
            });
            if up.is_some() {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "node did not start: {}",
                log_of(chain)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let st = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        self.0.wait().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn log_of(chain: &Chain) -> String {
    std::fs::read_to_string(chain.dir.join("node.log")).unwrap_or_default()
}
