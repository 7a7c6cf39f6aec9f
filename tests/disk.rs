//! A full disk (issue 18 item 4, docs/ops/disk.md): a node whose data directory is a small
//! loop-mounted filesystem (made by the test as root, unmounted and removed by a guard even when
//! the test fails) fills it under load. Below `[storage] min_free_mib` it refuses transactions
//! with `NODE_STORAGE_LOW` (gRPC, REST, the CLI's exit 3), reports storage down on `/v1/health`
//! and `gmchain_storage_low 1` on `/metrics`, keeps running, commits nothing and loses nothing it
//! acknowledged; when the ballast is deleted it resumes by itself and commits again, and
//! `gmchain node verify-store` passes once it is stopped. With four validators, the one whose
//! disk filled stops voting while the other three keep deciding, and it catches up through sync
//! once space returns.
//!
//! The drill's commands (docs/ops/disk.md) are mirrored here, not read from the file: `df -B1
//! --output=avail`, the metrics page, `GET /v1/health`, deleting the ballast, `gmchain node
//! verify-store`.
//!
//! The filesystem is ext4 without extents (`-O ^extent,^64bit`): it has no `fallocate`, so
//! RocksDB cannot preallocate its WAL (about 70 MiB at a time on ext4 and xfs) and the free space
//! falls block by block under load, which lets the test put the threshold a few MiB away and
//! have the load cross it. The node's behaviour does not depend on it (on a filesystem with
//! preallocation the free space falls in steps; docs/ops/disk.md sizes the threshold for them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::v1 as pb;
use base64::Engine as _;
use serde_json::Value;

use crate::consortium::{Consortium, anchor, rt};
use crate::dev_node::{
    Chain, Node, client_as, dev_chain, fails, identity, log_of, ok, rest_listen_of, scrape,
};
use crate::rest::{get_json, post_json};

/// The threshold and margin the tests configure, in MiB.
const MIN_FREE_MIB: u64 = 16;
const MARGIN_MIB: u64 = 8;
/// How far above the threshold the ballast leaves the free space: the load crosses it.
const HEADROOM: u64 = 2 << 20;

/// Fails, saying why, unless the test runs as root (CI does): it mounts a filesystem.
fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    assert_eq!(
        uid, "0",
        "tests/disk.rs needs root: it makes, loop-mounts and removes a small filesystem (truncate, mkfs.ext4, mount -o loop); CI runs as root. Run it as root: cargo test -p gmchain --test gmchain disk::"
    );
}

fn run(program: &str, args: &[&str]) -> String {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small ext4 filesystem in an image file, loop-mounted; unmounted (and its image removed)
/// on drop, whatever the test's outcome.
struct LoopFs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl LoopFs {
    fn new(mib: u64) -> LoopFs {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let img_s = img.to_str().unwrap();
        run("truncate", &["-s", &format!("{mib}M"), img_s]);
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", "-O", "^extent,^64bit", img_s],
        );
        run("mount", &["-o", "loop", img_s, mnt.to_str().unwrap()]);
        LoopFs { _dir: dir, mnt }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let m = self.mnt.to_str().unwrap().to_string();
        // The node is killed before (declared after the filesystem); a straggler makes the
        // mount busy for a moment: retry, then detach it lazily.
        for _ in 0..20 {
            if Command::new("umount")
                .arg(&m)
                .status()
                .is_ok_and(|s| s.success())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = Command::new("umount").args(["-l", &m]).status();
    }
}

/// The drill's `df -B1 --output=avail PATH`: bytes free for an unprivileged user.
fn df_avail(path: &Path) -> u64 {
    let out = run("df", &["-B1", "--output=avail", path.to_str().unwrap()]);
    out.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Fills `path`'s filesystem with a ballast file until `leave` bytes are free (`df`).
fn ballast(path: &Path, leave: u64) -> PathBuf {
    use std::io::Write as _;
    let file = path.join("ballast");
    let mut f = std::fs::File::create(&file).unwrap();
    let chunk = vec![0u8; 256 << 10];
    loop {
        let free = df_avail(path);
        if free <= leave {
            break;
        }
        let n = (free - leave).min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n.max(4096)]).unwrap();
        f.sync_all().unwrap();
    }
    file
}

/// Moves a node's data directory onto `fs` and configures the threshold (and the disk guard's
/// log lines at info) in its configuration file.
fn put_data_dir_on(dir: &Path, config: &str, data: &str, fs: &LoopFs) -> PathBuf {
    let target = fs.mnt.join(data);
    run(
        "cp",
        &[
            "-a",
            dir.join(data).to_str().unwrap(),
            target.to_str().unwrap(),
        ],
    );
    std::fs::remove_dir_all(dir.join(data)).unwrap();
    let path = dir.join(config);
    let text = std::fs::read_to_string(&path).unwrap();
    let line = format!("data_dir = \"{data}\"");
    assert!(text.contains(&line), "{text}");
    let text = text
        .replace(&line, &format!("data_dir = \"{}\"", target.display()))
        .replace(
            "level = \"warn",
            "level = \"warn,node::disk=info,node::bft=info",
        );
    std::fs::write(
        &path,
        format!(
            "{text}\n[storage]\nmin_free_mib = {MIN_FREE_MIB}\nresume_margin_mib = {MARGIN_MIB}\n"
        ),
    )
    .unwrap();
    target
}

/// A metric's value on a `/metrics` page.
fn metric(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    logs: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}\n{}", logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a submission under load came to.
#[derive(Debug)]
enum Outcome {
    /// Acknowledged as committed (submit-and-wait).
    Committed(Vec<u8>),
    /// Admitted into the pool (submitted without waiting).
    Admitted(Vec<u8>),
    Refused(String),
    Failed(String),
}

/// Submitters at `addr` until `stop`, each with its own client and key: all but two submit
/// and wait for the commit in a loop; two submit without waiting, every 20 ms (they meet the
/// refusal while the others wait for the commits the low node holds back). Refused ones back
/// off a little and go on.
fn load(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    addr: &str,
    tasks: usize,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|t| {
            let (dir, addr) = (dir.to_path_buf(), addr.to_string());
            let (stop, outcomes) = (stop.clone(), outcomes.clone());
            let who = format!("clients/{}", t % 4);
            let (key, cert) = identity(&dir, &who);
            rt.spawn(async move {
                let mut c = crate::dev_node::client_at(&dir, &addr, &who).await.unwrap();
                let mut n = 0u64;
                let wait = t >= 2;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let tx = anchor(&key, &cert, &format!("disk load {t} {n}"));
                    let r = c
                        .submit_transaction(pb::SubmitTransactionRequest {
                            signed_tx: types::Encode::to_bytes(&tx),
                            wait_for_commit: wait,
                        })
                        .await;
                    let o = match r {
                        Ok(r) if r.get_ref().committed => Outcome::Committed(r.into_inner().tx_id),
                        Ok(r) if !wait => Outcome::Admitted(r.into_inner().tx_id),
                        Ok(_) => Outcome::Failed("answered without a commit".into()),
                        Err(s) => match s.metadata().get(api::CODE_METADATA_KEY) {
                            Some(code) => Outcome::Refused(code.to_str().unwrap().to_string()),
                            None => Outcome::Failed(s.to_string()),
                        },
                    };
                    let refused = matches!(o, Outcome::Refused(_));
                    outcomes.lock().unwrap().push(o);
                    if refused {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    } else if !wait {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

fn committed(outcomes: &Mutex<Vec<Outcome>>) -> Vec<Vec<u8>> {
    outcomes
        .lock()
        .unwrap()
        .iter()
        .filter_map(|o| match o {
            Outcome::Committed(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

fn admitted(outcomes: &Mutex<Vec<Outcome>>) -> Vec<Vec<u8>> {
    outcomes
        .lock()
        .unwrap()
        .iter()
        .filter_map(|o| match o {
            Outcome::Admitted(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// Waits until every id in `ids` has its receipt on the node at `addr` (admitted transactions
/// are committed in time: none is lost).
fn all_get_receipts(rt: &tokio::runtime::Runtime, dir: &Path, addr: &str, ids: &[Vec<u8>]) {
    rt.block_on(async {
        let mut c = crate::dev_node::client_at(dir, addr, "admin")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        for id in ids {
            while c
                .get_receipt(pb::TxIdRequest { tx_id: id.clone() })
                .await
                .is_err()
            {
                assert!(
                    Instant::now() < deadline,
                    "admitted transaction {} never committed",
                    hex::encode(id)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
}

/// Every id has its receipt on the node at `addr`.
fn all_have_receipts(rt: &tokio::runtime::Runtime, dir: &Path, addr: &str, ids: &[Vec<u8>]) {
    rt.block_on(async {
        let mut c = crate::dev_node::client_at(dir, addr, "admin")
            .await
            .unwrap();
        for id in ids {
            let r = c
                .get_receipt(pb::TxIdRequest { tx_id: id.clone() })
                .await
                .unwrap_or_else(|e| panic!("acknowledged transaction {}: {e}", hex::encode(id)));
            assert!(!r.get_ref().receipt.is_empty(), "{}", hex::encode(id));
        }
    });
}

fn height_at(rt: &tokio::runtime::Runtime, dir: &Path, addr: &str) -> u64 {
    rt.block_on(async {
        let mut c = crate::dev_node::client_at(dir, addr, "admin")
            .await
            .unwrap();
        crate::consortium::status(&mut c).await.height
    })
}

/// The storage check of `/v1/health` while low: 503, down, the code, the path and the figures.
fn assert_health_down(rest: &str, data: &Path) {
    let (st, h) = get_json(rest, "/v1/health");
    assert_eq!(st, 503, "{h}");
    assert_eq!(h["status"], "down", "{h}");
    let s = &h["storage"];
    assert_eq!(s["ok"], false, "{h}");
    assert_eq!(s["low"], true, "{h}");
    assert_eq!(s["min_free_bytes"], MIN_FREE_MIB << 20, "{h}");
    let why = s["error"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("NODE_STORAGE_LOW: ") && why.contains(&data.display().to_string()),
        "{h}"
    );
    assert!(
        s["free_bytes"].as_u64().unwrap() < MIN_FREE_MIB << 20,
        "{h}"
    );
}

#[test]
fn a_full_disk_stops_the_node_cleanly_and_it_resumes_when_space_is_freed() {
    require_root();
    let fs = LoopFs::new(96);
    let chain: Chain = dev_chain(4);
    let data = put_data_dir_on(&chain.dir, "node.toml", "data", &fs);
    let mut node = Node::start(&chain);
    let rest = rest_listen_of(&chain.dir.join("node.toml"));
    let rt = rt();
    let logs = || log_of(&chain);
    // Free space just above the threshold: not low yet.
    let ballast = ballast(&fs.mnt, (MIN_FREE_MIB << 20) + HEADROOM);
    wait_until(
        "the node reads the space after the ballast",
        Duration::from_secs(10),
        || {
            let p = scrape(&chain.metrics);
            metric(&p, "gmchain_storage_free_bytes")
                < Some((MIN_FREE_MIB << 20) + HEADROOM + (1 << 20))
        },
        logs,
    );
    assert_eq!(
        metric(&scrape(&chain.metrics), "gmchain_storage_low"),
        Some(0)
    );
    let (st, h) = get_json(&rest, "/v1/health");
    assert_eq!((st, &h["storage"]["ok"]), (200, &Value::Bool(true)), "{h}");
    // The load crosses it.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let tasks = load(
        &rt,
        &chain.dir,
        &chain.grpc,
        16,
        stop.clone(),
        outcomes.clone(),
    );
    wait_until(
        "the load never brought the node below the threshold",
        Duration::from_secs(300),
        || metric(&scrape(&chain.metrics), "gmchain_storage_low") == Some(1),
        logs,
    );
    // Low: still running, refusing with the code, storage down on health, nothing committed.
    assert!(
        node.0.try_wait().unwrap().is_none(),
        "the node exited: {}",
        logs()
    );
    let page = scrape(&chain.metrics);
    assert!(metric(&page, "gmchain_storage_free_bytes").unwrap() < MIN_FREE_MIB << 20);
    assert_eq!(
        metric(&page, "gmchain_storage_min_free_bytes"),
        Some(MIN_FREE_MIB << 20)
    );
    assert_health_down(&rest, &data);
    let acknowledged = committed(&outcomes);
    assert!(
        !acknowledged.is_empty(),
        "nothing committed before the disk filled"
    );
    all_have_receipts(&rt, &chain.dir, &chain.grpc, &acknowledged);
    let (key, cert) = identity(&chain.dir, "clients/0");
    let tx = anchor(&key, &cert, "refused while low");
    let refused = rt.block_on(async {
        let mut c = client_as(&chain, "admin").await.unwrap();
        c.submit_transaction(pb::SubmitTransactionRequest {
            signed_tx: types::Encode::to_bytes(&tx),
            wait_for_commit: true,
        })
        .await
        .unwrap_err()
    });
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(
        refused.metadata().get(api::CODE_METADATA_KEY).unwrap(),
        "NODE_STORAGE_LOW"
    );
    assert!(
        refused.message().contains(&data.display().to_string()),
        "{refused:?}"
    );
    let body = serde_json::json!({
        "signed_tx": base64::engine::general_purpose::STANDARD.encode(types::Encode::to_bytes(&tx))
    });
    let (st, _, p) = post_json(&rest, "/v1/tx", &body);
    assert_eq!(
        (st, &p["code"]),
        (503, &Value::from("NODE_STORAGE_LOW")),
        "{p}"
    );
    std::fs::write(chain.dir.join("doc.txt"), b"refused while low").unwrap();
    let attest = [
        "tx",
        "attest",
        "--key",
        "clients/1.key.pem",
        "--cert",
        "clients/1.crt.pem",
        "--pass-file",
        "pass",
        "doc.txt",
    ];
    fails(&chain.dir, &attest, 3, "NODE_STORAGE_LOW");
    let h1 = height_at(&rt, &chain.dir, &chain.grpc);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        height_at(&rt, &chain.dir, &chain.grpc),
        h1,
        "a block was committed while low"
    );
    assert!(
        outcomes
            .lock()
            .unwrap()
            .iter()
            .any(|o| matches!(o, Outcome::Refused(c) if c == "NODE_STORAGE_LOW")),
        "the load was refused"
    );
    // Space returns: the node resumes by itself.
    stop.store(true, Ordering::Relaxed);
    std::fs::remove_file(&ballast).unwrap();
    wait_until(
        "the node did not resume after the ballast was deleted",
        Duration::from_secs(30),
        || metric(&scrape(&chain.metrics), "gmchain_storage_low") == Some(0),
        logs,
    );
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let (st, h) = get_json(&rest, "/v1/health");
    assert_eq!((st, &h["storage"]["ok"]), (200, &Value::Bool(true)), "{h}");
    ok(&chain.dir, &attest);
    // Under load every outcome is a commit or the storage refusal; every commit has its
    // receipt, those acknowledged before the disk filled included.
    let failed: Vec<String> = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(e) => Some(e.clone()),
            Outcome::Refused(c) if c != "NODE_STORAGE_LOW" => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let all = committed(&outcomes);
    all_have_receipts(&rt, &chain.dir, &chain.grpc, &all);
    all_get_receipts(&rt, &chain.dir, &chain.grpc, &admitted(&outcomes));
    eprintln!(
        "disk: {} acknowledged before the disk filled; under load {} committed, {} admitted without waiting, {} refused with NODE_STORAGE_LOW",
        acknowledged.len(),
        all.len(),
        admitted(&outcomes).len(),
        outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| matches!(o, Outcome::Refused(_)))
            .count()
    );
    // One line on entering, one on leaving: no flapping.
    let log = logs();
    assert_eq!(log.matches("storage low: ").count(), 1, "{log}");
    assert_eq!(log.matches("storage resumed: ").count(), 1, "{log}");
    assert!(log.contains(&data.display().to_string()), "{log}");
    let audit = std::fs::read_to_string(data.join("audit.log")).unwrap();
    assert!(audit.contains("storage-low") && audit.contains("storage-resumed"));
    // Stopped, the store verifies.
    assert!(node.signal("-TERM").success(), "{}", logs());
    let out = ok(
        &chain.dir,
        &["node", "verify-store", "--config", "node.toml"],
    );
    assert!(out.starts_with("store verified"), "{out}");
    drop(node);
    drop(fs);
}

/// Four validators; node3's data directory fills: it stops voting and committing (the other
/// three are a quorum and keep deciding), refuses transactions, and once space returns it
/// syncs the blocks it missed and its store verifies.
#[test]
fn a_validator_whose_disk_fills_pauses_while_the_others_decide_and_catches_up() {
    require_root();
    let fs = LoopFs::new(96);
    let mut c = Consortium::new(4, "disk");
    let data = put_data_dir_on(&c.dir, "node3.toml", "data3", &fs);
    let rt = rt();
    for i in 0..4 {
        c.start(i);
    }
    for i in 0..4 {
        c.wait_up(&rt, i);
    }
    let rest3 = rest_listen_of(&c.dir.join("node3.toml"));
    let ballast = ballast(&fs.mnt, (MIN_FREE_MIB << 20) + HEADROOM);
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let tasks = load(
        &rt,
        &c.dir,
        &c.nodes[0].grpc,
        16,
        stop.clone(),
        outcomes.clone(),
    );
    wait_until(
        "node3 never went below the threshold",
        Duration::from_secs(300),
        || metric(&scrape(&c.nodes[3].metrics), "gmchain_storage_low") == Some(1),
        || c.logs(),
    );
    assert!(
        c.nodes[3]
            .child
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none(),
        "node3 exited: {}",
        c.logs()
    );
    assert_health_down(&rest3, &data);
    // The others keep deciding while node3 stays where it is.
    let h3 = height_at(&rt, &c.dir, &c.nodes[3].grpc);
    let h0 = height_at(&rt, &c.dir, &c.nodes[0].grpc);
    wait_until(
        "the other three validators stopped deciding",
        Duration::from_secs(60),
        || height_at(&rt, &c.dir, &c.nodes[0].grpc) >= h0 + 5,
        || c.logs(),
    );
    assert_eq!(
        height_at(&rt, &c.dir, &c.nodes[3].grpc),
        h3,
        "node3 committed while low"
    );
    let refused = rt.block_on(async {
        let mut client = crate::dev_node::client_at(&c.dir, &c.nodes[3].grpc, "admin")
            .await
            .unwrap();
        let (key, cert) = identity(&c.dir, "clients/2");
        let tx = anchor(&key, &cert, "to node3 while low");
        client
            .submit_transaction(pb::SubmitTransactionRequest {
                signed_tx: types::Encode::to_bytes(&tx),
                wait_for_commit: false,
            })
            .await
            .unwrap_err()
    });
    assert_eq!(
        refused.metadata().get(api::CODE_METADATA_KEY).unwrap(),
        "NODE_STORAGE_LOW"
    );
    // Space returns: node3 resumes and syncs up to the others.
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    std::fs::remove_file(&ballast).unwrap();
    let target = height_at(&rt, &c.dir, &c.nodes[0].grpc);
    wait_until(
        "node3 did not catch up after the ballast was deleted",
        Duration::from_secs(180),
        || height_at(&rt, &c.dir, &c.nodes[3].grpc) >= target,
        || c.logs(),
    );
    assert_eq!(
        metric(&scrape(&c.nodes[3].metrics), "gmchain_storage_low"),
        Some(0)
    );
    let all = committed(&outcomes);
    assert!(!all.is_empty());
    all_have_receipts(&rt, &c.dir, &c.nodes[3].grpc, &all);
    all_get_receipts(&rt, &c.dir, &c.nodes[3].grpc, &admitted(&outcomes));
    // It paused and resumed once, and took the blocks it missed through sync.
    let log3 = std::fs::read_to_string(c.log(3)).unwrap();
    assert_eq!(
        log3.matches("consensus paused: storage low").count(),
        1,
        "{log3}"
    );
    assert_eq!(log3.matches("consensus resumed").count(), 1, "{log3}");
    assert!(
        log3.contains("sync: committed a block decided by the validators"),
        "{log3}"
    );
    eprintln!("disk: node3 paused at height {h3}; the others went on to {target}; node3 caught up");
    for i in 0..4 {
        c.stop(i);
    }
    let out = ok(&c.dir, &["node", "verify-store", "--config", "node3.toml"]);
    assert!(out.starts_with("store verified"), "{out}");
    drop(c);
    drop(fs);
}
