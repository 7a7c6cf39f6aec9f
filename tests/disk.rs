//! A full disk (issue 18 item 4, docs/ops/disk.md): a node whose data directory is a small
//! loop-mounted filesystem (made by the test as root, unmounted and removed by a guard even when
//! the test fails; one left mounted by a killed run is swept at the next run's start) fills it
//! under load. Below `[storage] min_free_mib` it refuses transactions with `NODE_STORAGE_LOW`
//! (gRPC, REST, the CLI's exit 3) and an online backup onto that filesystem, reports storage
//! down on `/v1/health` and `gmchain_storage_low 1` on `/metrics`, keeps running, commits
//! nothing and loses nothing it acknowledged as committed. Stopped while low, it names the
//! admitted transactions it drops (they must be submitted again); restarted while low, it says
//! so before opening its store and starts low; between the threshold and the resume point it
//! stays low and says since when. When the ballast is deleted it resumes by itself and commits
//! again, and `gmchain node verify-store` passes once it is stopped. With four validators, the
//! one whose disk filled stops voting while the other three keep deciding, and it catches up
//! through sync once space returns. A custodian whose blob store is on a filesystem of its own
//! refuses, before its first byte, an upload that would take that filesystem below the
//! threshold (the filesystem never goes below it), accepts one that fits, and goes low, naming
//! the blob store, when that filesystem fills.
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

/// The image files' names start with this, followed by the id of the test process that made
/// them: a sweep tells a filesystem left by a killed run from one a running test uses.
const IMAGE_PREFIX: &str = "gmchain-disk-test-";

/// A small ext4 filesystem in an image file, loop-mounted; unmounted (and its image removed)
/// on drop, whatever the test's outcome. `<temp dir>/<dir>/gmchain-disk-test-<pid>.img`
/// mounted at `<temp dir>/<dir>/mnt`.
struct LoopFs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl LoopFs {
    fn new(mib: u64) -> LoopFs {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(sweep_stale_mounts);
        let dir = tempfile::tempdir().unwrap();
        let img = dir
            .path()
            .join(format!("{IMAGE_PREFIX}{}.img", std::process::id()));
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

/// Unmounts the loop filesystems an earlier run of these tests left mounted (a test killed by
/// SIGKILL never runs its guard's drop), and removes their directories: exactly the mounts at
/// `<temp dir>/<dir>/mnt` whose loop device's backing file is
/// `<temp dir>/<dir>/gmchain-disk-test-<pid>.img` for a `<pid>` no running process has any
/// more (gone, or a zombie).
/// Anything else, a mount of a test running now included, is left alone.
fn sweep_stale_mounts() {
    let Ok(tmp) = std::env::temp_dir().canonicalize() else {
        return;
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        // "id parent major:minor root mount-point options [optional...] - type source super"
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(point), Some(source)) = (before.split(' ').nth(4), after.split(' ').nth(1))
        else {
            continue;
        };
        // Escaped characters (\040 for a space) never occur in the names this test makes.
        let mnt = Path::new(point);
        let Some(dir) = mnt.parent() else { continue };
        if point.contains('\\')
            || mnt.file_name() != Some("mnt".as_ref())
            || dir.parent() != Some(tmp.as_path())
        {
            continue;
        }
        let Some(device) = source.strip_prefix("/dev/") else {
            continue;
        };
        if !device.starts_with("loop") || device.contains('/') {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(format!("/sys/block/{device}/loop/backing_file"))
        else {
            continue;
        };
        let backing = Path::new(backing.trim_end());
        if backing.parent() != Some(dir) {
            continue;
        }
        let Some(pid) = backing
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(IMAGE_PREFIX))
            .and_then(|n| n.strip_suffix(".img"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if runs(pid) {
            continue; // its test process still runs
        }
        eprintln!(
            "disk: unmounting {} left by an earlier run (process {pid} is gone)",
            mnt.display()
        );
        unmount(mnt);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Whether process `pid` exists and is not a zombie (a killed test binary whose parent is gone
/// can stay a zombie for a while).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "pid (comm) state …": the state follows the last ')'.
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

/// Unmounts `mnt`; a straggler makes the mount busy for a moment: retry, then detach it
/// lazily.
fn unmount(mnt: &Path) {
    for _ in 0..20 {
        if Command::new("umount")
            .arg(mnt)
            .status()
            .is_ok_and(|s| s.success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = Command::new("umount").arg("-l").arg(mnt).status();
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // The node is killed before (declared after the filesystem).
        unmount(&self.mnt);
    }
}

/// The drill's `df -B1 --output=avail PATH`: bytes free for an unprivileged user.
fn df_avail(path: &Path) -> u64 {
    let out = run("df", &["-B1", "--output=avail", path.to_str().unwrap()]);
    out.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Fills `path`'s filesystem with the ballast file `name` (made, or added to) until `leave`
/// bytes are free (`df`).
fn ballast(path: &Path, name: &str, leave: u64) -> PathBuf {
    use std::io::Write as _;
    let file = path.join(name);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .unwrap();
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

/// Shortens the ballast `file` on `path`'s filesystem until about `leave` bytes are free: the
/// space comes back at once, without passing through more.
fn cut_ballast(file: &Path, path: &Path, leave: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    let free = df_avail(path);
    assert!(
        free < leave,
        "premise: {free} bytes free, not below {leave}"
    );
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(leave - free)).unwrap();
    f.sync_all().unwrap();
}

/// Adds the `[storage]` thresholds of these tests to the configuration file `path` (and the
/// disk guard's and the engines' log lines at info).
fn configure_storage(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap().replace(
        "level = \"warn",
        "level = \"warn,node::disk=info,node::bft=info",
    );
    std::fs::write(
        path,
        format!(
            "{text}\n[storage]\nmin_free_mib = {MIN_FREE_MIB}\nresume_margin_mib = {MARGIN_MIB}\n"
        ),
    )
    .unwrap();
}

/// Moves a node's data directory onto `fs` and configures the threshold in its configuration
/// file.
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
    std::fs::write(
        &path,
        text.replace(&line, &format!("data_dir = \"{}\"", target.display())),
    )
    .unwrap();
    configure_storage(&path);
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

/// What a submission under load came to, with the transaction's id.
#[derive(Debug)]
enum Outcome {
    /// Acknowledged as committed (submit-and-wait).
    Committed(Vec<u8>),
    /// Admitted into the pool (submitted without waiting).
    Admitted(Vec<u8>),
    /// Refused with a registry code.
    Refused(Vec<u8>, String),
    /// Any other failure (the node stopped under a waiting client, say).
    Failed(Vec<u8>, String),
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
                    let id = tx.tx_id().0.0.to_vec();
                    let r = c
                        .submit_transaction(pb::SubmitTransactionRequest {
                            signed_tx: types::Encode::to_bytes(&tx),
                            wait_for_commit: wait,
                        })
                        .await;
                    let o = match r {
                        Ok(r) if r.get_ref().committed => Outcome::Committed(r.into_inner().tx_id),
                        Ok(r) if !wait => Outcome::Admitted(r.into_inner().tx_id),
                        Ok(_) => Outcome::Failed(id, "answered without a commit".into()),
                        Err(s) => match s.metadata().get(api::CODE_METADATA_KEY) {
                            Some(code) => Outcome::Refused(id, code.to_str().unwrap().to_string()),
                            None => Outcome::Failed(id, s.to_string()),
                        },
                    };
                    let refused = matches!(o, Outcome::Refused(..));
                    let failed = matches!(o, Outcome::Failed(..));
                    outcomes.lock().unwrap().push(o);
                    if failed {
                        // The node went away (stopped under this client): this one is done.
                        return;
                    }
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

/// The outcomes that are neither a commit, an admission nor the storage refusal: id and why.
fn unexpected(outcomes: &Mutex<Vec<Outcome>>) -> Vec<(Vec<u8>, String)> {
    outcomes
        .lock()
        .unwrap()
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(id, e) => Some((id.clone(), e.clone())),
            Outcome::Refused(id, c) if c != "NODE_STORAGE_LOW" => Some((id.clone(), c.clone())),
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

/// The storage check of `/v1/health` while low: 503, down, the code, the path and the figures
/// (low: below the resume point, whether below the threshold or in the band above it).
fn assert_health_down(rest: &str, path: &Path) -> Value {
    let (st, h) = get_json(rest, "/v1/health");
    assert_eq!(st, 503, "{h}");
    assert_eq!(h["status"], "down", "{h}");
    let s = &h["storage"];
    assert_eq!(s["ok"], false, "{h}");
    assert_eq!(s["low"], true, "{h}");
    assert_eq!(s["min_free_bytes"], MIN_FREE_MIB << 20, "{h}");
    assert_eq!(s["resume_bytes"], (MIN_FREE_MIB + MARGIN_MIB) << 20, "{h}");
    assert_eq!(s["path"], path.display().to_string(), "{h}");
    let why = s["error"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("NODE_STORAGE_LOW: ") && why.contains(&path.display().to_string()),
        "{h}"
    );
    assert!(
        s["free_bytes"].as_u64().unwrap() < (MIN_FREE_MIB + MARGIN_MIB) << 20,
        "{h}"
    );
    h
}

/// The ids a stop while low named as dropped (`gmchain node start`'s warning), hex.
fn named_at_stop(log: &str) -> Vec<String> {
    let line = log
        .lines()
        .find(|l| l.contains("stopping while low on space with "))
        .unwrap_or_else(|| panic!("no stop-while-low line in {log}"));
    let list = line
        .split("must be submitted again: ")
        .nth(1)
        .unwrap_or_default();
    list.split_whitespace()
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| s.len() == 64)
        .collect()
}

/// The disk guard's "storage low: " and "storage resumed: " lines in `log` alternate, starting
/// low: no two entries without a leave between them, whatever the number of dips. Returns
/// how many of each.
fn assert_alternates(log: &str) -> (usize, usize) {
    let mut low = false;
    let (mut lows, mut resumes) = (0, 0);
    for l in log.lines() {
        // Not "consensus paused: storage low: …", which quotes the guard's reason.
        if l.contains("node::disk: storage low: ") {
            assert!(!low, "two entries without a leave: {log}");
            low = true;
            lows += 1;
        } else if l.contains("node::disk: storage resumed: ") {
            assert!(low, "a leave without an entry: {log}");
            low = false;
            resumes += 1;
        }
    }
    (lows, resumes)
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
    // A threshold this small is taken, with advice.
    assert!(
        logs().contains("[storage] min_free_mib = 16 is below 256"),
        "{}",
        logs()
    );
    // Free space just above the threshold: not low yet.
    let ballast = ballast(&fs.mnt, "ballast", (MIN_FREE_MIB << 20) + HEADROOM);
    wait_until(
        "the node reads the space after the ballast",
        Duration::from_secs(10),
        || {
            metric(&scrape(&chain.metrics), "gmchain_storage_free_bytes")
                .is_some_and(|f| f < (MIN_FREE_MIB << 20) + HEADROOM + (1 << 20))
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
    assert_eq!(metric(&page, "gmchain_storage_low"), Some(1));
    assert_eq!(
        metric(&page, "gmchain_storage_min_free_bytes"),
        Some(MIN_FREE_MIB << 20)
    );
    assert_eq!(metric(&page, "gmchain_storage_stat_errors_total"), Some(0));
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
            .any(|o| matches!(o, Outcome::Refused(_, c) if c == "NODE_STORAGE_LOW")),
        "the load was refused"
    );
    // An online backup onto the full filesystem is refused; nothing is written there.
    let out = fs.mnt.join("backup");
    fails(
        &chain.dir,
        &[
            "node",
            "backup",
            "--config",
            "node.toml",
            "--out",
            out.to_str().unwrap(),
        ],
        3,
        "NODE_STORAGE_LOW",
    );
    assert!(!out.exists());
    // Stopped while low: the transactions it admitted and did not commit are named, to be
    // submitted again, and the clients still waiting for theirs are answered
    // NODE_STORAGE_LOW (their requests no longer hold the node's shutdown). The submitters
    // that do not wait end first: no request is on its way in when the node stops.
    stop.store(true, Ordering::Relaxed);
    let mut tasks = tasks.into_iter();
    for t in tasks.by_ref().take(2) {
        rt.block_on(t).unwrap();
    }
    assert!(node.signal("-TERM").success(), "{}", logs());
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let run1 = logs();
    let lost = named_at_stop(&run1);
    for (id, why) in unexpected(&outcomes) {
        assert!(
            lost.contains(&hex::encode(&id)),
            "{} ended with {why} and is not named as dropped: {lost:?}",
            hex::encode(&id)
        );
    }
    let (lows, resumes) = assert_alternates(&run1);
    assert_eq!(lows, resumes + 1, "the first run ended low: {run1}");
    // Restarted while low (the filesystem topped up well below the threshold, whatever
    // RocksDB's recovery gives back): said before the store is opened, low at once.
    ballast_top_up(&fs, &ballast);
    node = Node::start(&chain);
    let run2 = || logs()[run1.len()..].to_string();
    assert!(run2().contains("storage low at start: "), "{}", run2());
    assert_eq!(
        metric(&scrape(&chain.metrics), "gmchain_storage_low"),
        Some(1)
    );
    fails(&chain.dir, &attest, 3, "NODE_STORAGE_LOW");
    // The band between the threshold and the resume point: above the threshold, still low,
    // and the reason says since when.
    cut_ballast(&ballast, &fs.mnt, (MIN_FREE_MIB << 20) + (MARGIN_MIB << 19));
    let band = df_avail(&fs.mnt);
    assert!(
        ((MIN_FREE_MIB + 1) << 20..(MIN_FREE_MIB + MARGIN_MIB - 1) << 20).contains(&band),
        "premise: {band} bytes free, in the band"
    );
    let mut page = String::new();
    wait_until(
        "the node never read the band",
        Duration::from_secs(10),
        || {
            page = scrape(&chain.metrics);
            metric(&page, "gmchain_storage_free_bytes").is_some_and(|f| f >= MIN_FREE_MIB << 20)
        },
        logs,
    );
    assert_eq!(
        metric(&page, "gmchain_storage_low"),
        Some(1),
        "resumed in the band: {page}"
    );
    let h = assert_health_down(&rest, &data);
    assert!(
        h["storage"]["error"]
            .as_str()
            .unwrap()
            .contains(": low since the free space fell below [storage] min_free_mib = 16"),
        "{h}"
    );
    // Space returns: the node resumes by itself.
    std::fs::remove_file(&ballast).unwrap();
    wait_until(
        "the node did not resume after the ballast was deleted",
        Duration::from_secs(30),
        || metric(&scrape(&chain.metrics), "gmchain_storage_low") == Some(0),
        logs,
    );
    let (st, h) = get_json(&rest, "/v1/health");
    assert_eq!((st, &h["storage"]["ok"]), (200, &Value::Bool(true)), "{h}");
    ok(&chain.dir, &attest);
    // Every commit has its receipt, those acknowledged before the disk filled included; every
    // transaction admitted without waiting is committed, unless the stop named it.
    let all = committed(&outcomes);
    all_have_receipts(&rt, &chain.dir, &chain.grpc, &all);
    let kept: Vec<Vec<u8>> = admitted(&outcomes)
        .into_iter()
        .filter(|id| !lost.contains(&hex::encode(id)))
        .collect();
    all_get_receipts(&rt, &chain.dir, &chain.grpc, &kept);
    eprintln!(
        "disk: {} acknowledged before the disk filled; under load {} committed, {} admitted without waiting ({} dropped by the stop while low), {} refused with NODE_STORAGE_LOW",
        acknowledged.len(),
        all.len(),
        admitted(&outcomes).len(),
        lost.len(),
        outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| matches!(o, Outcome::Refused(..)))
            .count()
    );
    // The second run: low once at start, resumed once (it stayed low through the band).
    assert_eq!(assert_alternates(&run2()), (1, 1), "{}", run2());
    let log = logs();
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

/// Adds to the ballast until the filesystem is 12 MiB below the threshold (more than what
/// RocksDB's recovery may give back when the node opens its store again).
fn ballast_top_up(fs: &LoopFs, file: &Path) {
    let name = file.file_name().unwrap().to_str().unwrap();
    ballast(&fs.mnt, name, (MIN_FREE_MIB - 12) << 20);
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
    let ballast = ballast(&fs.mnt, "ballast", (MIN_FREE_MIB << 20) + HEADROOM);
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
    assert!(
        unexpected(&outcomes).is_empty(),
        "{:?}",
        unexpected(&outcomes)
    );
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
    // It paused and resumed as often as it went low and came back, and took the blocks it
    // missed through sync.
    let log3 = std::fs::read_to_string(c.log(3)).unwrap();
    let (lows, resumes) = assert_alternates(&log3);
    assert!(lows >= 1 && lows == resumes, "{log3}");
    assert_eq!(
        log3.matches("consensus paused: storage low").count(),
        lows,
        "{log3}"
    );
    assert_eq!(log3.matches("consensus resumed").count(), lows, "{log3}");
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

/// Review r1 H1 and M2: a custodian whose blob store is on a filesystem of its own (a loop
/// filesystem; the data directory stays on the test's disk). The guard watches that
/// filesystem too. With 8 MiB free above the threshold there, a 40 MiB payload is refused
/// before its first byte (NODE_STORAGE_LOW, exit 3) and the filesystem never goes below the
/// threshold (before the fix the upload wrote on to 0 bytes free); a 2 MiB payload is taken.
/// When that filesystem falls below the threshold the node is low, naming the blob store,
/// though its data directory has room; it resumes when the space returns.
#[test]
fn an_upload_that_would_cross_the_threshold_is_refused_and_the_blob_filesystem_is_watched() {
    use crate::governance::{run_fails, run_ok, strings};
    require_root();
    let fs = LoopFs::new(96);
    let chain = crate::dev_node::dev_chain_orgs(4, 2);
    let blobs = fs.mnt.join("blobs");
    let config = chain.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\n[exchange.key]\n"), "{text}");
    std::fs::write(
        &config,
        text.replace(
            "\n[exchange.key]\n",
            &format!(
                "\n[exchange]\nblobs = \"{}\"\n\n[exchange.key]\n",
                blobs.display()
            ),
        ),
    )
    .unwrap();
    configure_storage(&config);
    let node = Node::start(&chain);
    let rest = rest_listen_of(&config);
    let logs = || log_of(&chain);
    let sender = strings(&[
        "--key",
        "admin.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "admin.crt.pem",
        "--node",
        &chain.grpc,
    ]);
    let mut a = strings(&[
        "data",
        "endpoint",
        "--address",
        &chain.grpc,
        "--enc-cert",
        "node.enc.crt.pem",
    ]);
    a.extend(sender.clone());
    run_ok(&chain.dir, &a);
    // 8 MiB free above the threshold on the blob store's filesystem: not low, and that is
    // the least free figure the node reports (its data directory has gigabytes).
    let room = ballast(&fs.mnt, "ballast", (MIN_FREE_MIB + 8) << 20);
    wait_until(
        "the node does not watch the blob store's filesystem",
        Duration::from_secs(10),
        || {
            metric(&scrape(&chain.metrics), "gmchain_storage_free_bytes")
                .is_some_and(|f| f < (MIN_FREE_MIB + 9) << 20)
        },
        logs,
    );
    assert_eq!(
        metric(&scrape(&chain.metrics), "gmchain_storage_low"),
        Some(0)
    );
    let publish = |file: &str, name: &str, mib: usize| {
        let path = chain.dir.join(file);
        let mut bytes = vec![0u8; mib << 20];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i.wrapping_mul(2654435761) >> 13) as u8;
        }
        std::fs::write(&path, bytes).unwrap();
        let mut args = strings(&[
            "data",
            "publish",
            path.to_str().unwrap(),
            "--name",
            name,
            "--class",
            "unconditional",
        ]);
        args.extend(sender.clone());
        args
    };
    let entries = || {
        let mut e: Vec<String> = std::fs::read_dir(&blobs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        e.sort();
        e
    };
    let before = entries();
    // The least free space on that filesystem while the upload is tried.
    let sampling = Arc::new(AtomicBool::new(true));
    let least = Arc::new(Mutex::new(u64::MAX));
    let sampler = {
        let (sampling, least, mnt) = (sampling.clone(), least.clone(), fs.mnt.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                let f = node::disk::free_bytes(&mnt).unwrap();
                let mut m = least.lock().unwrap();
                *m = (*m).min(f);
                drop(m);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let err = run_fails(
        &chain.dir,
        &publish("big.bin", "big", 40),
        3,
        "NODE_STORAGE_LOW",
    );
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    assert!(err.contains("would leave"), "{err}");
    assert!(err.contains(&blobs.display().to_string()), "{err}");
    let least = *least.lock().unwrap();
    assert!(
        least >= MIN_FREE_MIB << 20,
        "the refused upload took the blob store's filesystem to {least} bytes free"
    );
    assert_eq!(entries(), before, "the refused upload left a file");
    assert_eq!(
        metric(&scrape(&chain.metrics), "gmchain_storage_low"),
        Some(0)
    );
    // One that fits is taken.
    run_ok(&chain.dir, &publish("small.bin", "small", 2));
    // The blob store's filesystem falls below the threshold: the node is low and says where.
    let full = ballast(&fs.mnt, "ballast2", (MIN_FREE_MIB - 4) << 20);
    wait_until(
        "the node did not go low when the blob store's filesystem filled",
        Duration::from_secs(10),
        || metric(&scrape(&chain.metrics), "gmchain_storage_low") == Some(1),
        logs,
    );
    let h = assert_health_down(&rest, &blobs);
    assert!(
        h["storage"]["error"]
            .as_str()
            .unwrap()
            .contains("(blob store), below [storage] min_free_mib = 16"),
        "{h}"
    );
    std::fs::write(
        chain.dir.join("doc.txt"),
        b"refused while the blobs are full",
    )
    .unwrap();
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
    std::fs::remove_file(&full).unwrap();
    std::fs::remove_file(&room).unwrap();
    wait_until(
        "the node did not resume",
        Duration::from_secs(30),
        || metric(&scrape(&chain.metrics), "gmchain_storage_low") == Some(0),
        logs,
    );
    ok(&chain.dir, &attest);
    drop(node);
    drop(fs);
}
