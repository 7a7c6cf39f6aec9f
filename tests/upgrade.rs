//! Upgrades (issue 18 item 3): a consortium of four validators made and started by the
//! previous release's `gmchain` (release/previous, built by scripts/build-previous-release.sh)
//! is upgraded to this build one validator at a time while a load of attestations runs through
//! this build's SDK, following docs/ops/upgrade.md step by step (the test mirrors the drill's
//! commands: `kill -TERM`, `cp -a` of the stopped data directory, `gmchain node migrate`,
//! `gmchain node start`, `gmchain query status`). The chain never stops deciding, every
//! acknowledged transaction has its receipt on every node, the four agree on every header (state
//! roots included) and report this build's version. A store of the previous release is refused
//! by this build until migrated, and the drill's rollback (the backup, the previous binary)
//! brings it back.
//!
//! The previous release's binary is never built here: building it in this target directory
//! replaces the `gmchain` the other tests are running (`debug/gmchain`), and building it in
//! another would rebuild RocksDB's C++ for 12-20 minutes inside a test. Without it the test
//! fails, naming the script to run first (scripts/test.sh runs it before building the tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gmchain_sdk::{SdkError, Sender};
use types::TxId;

use crate::consortium::{Consortium, rt};
use crate::dev_node::{gm_with, identity, ok_with};

/// The previous release, as release/previous names it.
struct Previous {
    tag: String,
    commit: String,
    version: String,
}

fn previous() -> Previous {
    let text = include_str!("../release/previous");
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("release/previous has no {k}= line"))
            .trim()
            .to_string()
    };
    Previous {
        tag: field("tag"),
        commit: field("commit"),
        version: field("version"),
    }
}

/// This build's `gmchain`.
fn current() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gmchain"))
}

/// The previous release's `gmchain`, as scripts/build-previous-release.sh stores it beside
/// this build's target directory (`<target>/releases/gmchain-<version>`, built from the
/// recorded commit). Its absence fails the test: it is never skipped, nor built here.
fn previous_binary(p: &Previous) -> PathBuf {
    let target = current()
        .parent()
        .and_then(Path::parent)
        .expect("the gmchain binary lies in <target>/<profile>/")
        .to_path_buf();
    let bin = target
        .join("releases")
        .join(format!("gmchain-{}", p.version));
    let recorded =
        std::fs::read_to_string(bin.with_file_name(format!("gmchain-{}.commit", p.version)))
            .unwrap_or_default();
    assert!(
        bin.is_file() && recorded.trim() == p.commit,
        "the previous release's gmchain ({} at {}) is not built in {}: run \
         `CARGO_TARGET_DIR={} scripts/build-previous-release.sh` before building the tests \
         (scripts/test.sh does); the test never builds it, since that would replace the \
         gmchain binary running tests use",
        p.tag,
        p.commit,
        bin.display(),
        target.display()
    );
    bin
}

/// `gmchain --version` of `bin`.
fn version_of(bin: &Path) -> String {
    let o = Command::new(bin).arg("--version").output().unwrap();
    assert!(o.status.success(), "{} --version", bin.display());
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The data directory of the node configuration `config` (relative to the chain's
/// directory, as `gmchain node dev-chain` writes it).
fn data_dir(net: &Consortium, i: usize) -> PathBuf {
    let text = net.config(i);
    let d = text
        .lines()
        .find_map(|l| l.strip_prefix("data_dir = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("node{i}: no data_dir"));
    net.dir.join(d)
}

/// The drill's "stop": SIGTERM, and the node exits by itself (cleanly, exit 0) within 30 s.
fn stop_cleanly(net: &mut Consortium, i: usize) {
    let mut c = net.nodes[i].child.take().expect("node running");
    let st = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            panic!(
                "node{i} did not stop within 30 s of SIGTERM\n{}",
                net.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "node{i} stopped with {status}\n{}",
        net.logs()
    );
}

/// Fails, with its exit status and the logs, if node `i`'s process has exited.
fn assert_running(net: &mut Consortium, i: usize) {
    let exited = net.nodes[i]
        .child
        .as_mut()
        .map(|c| c.try_wait().unwrap())
        .unwrap_or_else(|| panic!("node{i} is not started"));
    if let Some(status) = exited {
        panic!("node{i} exited on its own: {status}\n{}", net.logs());
    }
}

/// The drill's backup of a stopped node: a copy of its whole data directory (a stopped
/// store's files are consistent; a running store is never copied so).
fn backup(net: &Consortium, i: usize) -> PathBuf {
    let from = data_dir(net, i);
    let to = net.dir.join(format!("backup-node{i}"));
    let st = Command::new("cp")
        .arg("-a")
        .arg(&from)
        .arg(&to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
    to
}

/// The drill's "migrate": this build's `gmchain node migrate --config FILE` on the stopped
/// node; its output.
fn migrate(net: &Consortium, i: usize) -> String {
    let o = gm_with(
        &current(),
        &net.dir,
        &["node", "migrate", "--config", &net.nodes[i].config],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "node{i}: gmchain node migrate: {text}"
    );
    text
}

/// The drill's "check": `gmchain query status` through node `i`, run with this build, as JSON.
fn query_status(net: &Consortium, i: usize) -> serde_json::Value {
    let out = ok_with(
        &current(),
        &net.dir,
        &[
            "query",
            "status",
            "--node",
            &net.nodes[i].grpc,
            "--node-name",
            &format!("node{i}"),
        ],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("node{i}: {e}: {out}"))
}

/// The height node `i` reports, if it answers.
fn height(rt: &tokio::runtime::Runtime, c: &mut gmchain_sdk::Client) -> Option<u64> {
    rt.block_on(c.status()).ok().map(|s| s.height)
}

/// The highest height any of `nodes` reports.
fn top_of(
    rt: &tokio::runtime::Runtime,
    probes: &mut [gmchain_sdk::Client],
    nodes: &[usize],
) -> u64 {
    nodes
        .iter()
        .filter_map(|&j| height(rt, &mut probes[j]))
        .max()
        .unwrap_or(0)
}

/// The validator id (SM3 of its certificate) of node `i` of a dev chain.
fn validator_id(net: &Consortium, i: usize) -> crypto::Digest {
    let name = if i == 0 {
        "node.crt.pem".to_string()
    } else {
        format!("node{i}.crt.pem")
    };
    pki::Certificate::from_pem(&std::fs::read(net.dir.join(name)).unwrap())
        .unwrap()
        .fingerprint()
}

/// Waits until some node of `nodes` reports a height above `above`: the chain decides.
fn wait_decides(
    rt: &tokio::runtime::Runtime,
    net: &Consortium,
    probes: &mut [gmchain_sdk::Client],
    nodes: &[usize],
    above: u64,
    what: &str,
) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = top_of(rt, probes, nodes);
        if h > above {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "the chain stopped deciding {what}: still at {h} (above {above} expected)\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until a block above `above`, read from node `i`, carries node `i`'s precommit in its
/// certificate: the chain decides with it again. Returns that block's height.
fn wait_decides_with(
    rt: &tokio::runtime::Runtime,
    net: &Consortium,
    c: &mut gmchain_sdk::Client,
    i: usize,
    above: u64,
) -> u64 {
    let me = validator_id(net, i);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut h = above + 1;
    loop {
        assert!(
            Instant::now() < deadline,
            "node{i}: no block from {} to {h} decided with its precommit\n{}",
            above + 1,
            net.logs()
        );
        match rt.block_on(c.block(Some(h))) {
            Ok(b) => {
                let signed = b
                    .certificate
                    .as_ref()
                    .is_some_and(|cert| cert.signatures.iter().any(|(id, _)| *id == me));
                if signed {
                    return h;
                }
                h += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn validators_upgrade_one_at_a_time_under_load_without_a_halt_or_a_lost_transaction() {
    let began = Instant::now();
    let p = previous();
    let old = previous_binary(&p);
    let new = current();
    let new_version = env!("CARGO_PKG_VERSION");
    // `gmchain X.Y.Z` (0.1.0), or with the commit it was built from (from 0.2.0 on).
    let said = version_of(&old);
    assert!(
        said == format!("gmchain {}", p.version)
            || said == format!("gmchain {} (commit {})", p.version, p.commit),
        "{}: {said}",
        old.display()
    );
    assert_eq!(
        version_of(&new),
        format!(
            "gmchain {new_version} (commit {})",
            env!("GMCHAIN_GIT_COMMIT")
        )
    );
    assert_ne!(
        p.version, new_version,
        "release/previous names this build's own version"
    );

    // A consortium of the previous release: its own `node dev-chain`, its nodes.
    let mut net = Consortium::made_by(&old, 4, "upgrade");
    let rt = rt();
    for i in 0..4 {
        net.start_with(i, &old);
    }
    for i in 0..4 {
        net.wait_up(&rt, i);
    }
    let mut probes: Vec<gmchain_sdk::Client> = (0..4)
        .map(|i| gmchain_sdk::Client::from_grpc(net.client(&rt, i)))
        .collect();
    for (i, c) in probes.iter_mut().enumerate() {
        assert_eq!(
            rt.block_on(c.status()).unwrap().version,
            p.version,
            "node{i}"
        );
    }

    // Load through this build's SDK: 8 senders, each submitting to the nodes in turn and
    // waiting for the commit; a submission that fails (its node stopped, restarting) counts
    // for nothing and the next goes to the next node. Only what the SDK reports committed is
    // acknowledged.
    let senders: Vec<Sender> = (0..8)
        .map(|i| {
            let (key, cert) = identity(&net.dir, &format!("clients/{i}"));
            Sender::new(Arc::new(key), cert).unwrap()
        })
        .collect();
    let acked: Arc<Mutex<Vec<(TxId, u64)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let clients: Vec<gmchain_sdk::Client> = probes.clone();
        let (acked, failures, stop) = (acked.clone(), failures.clone(), stop.clone());
        rt.spawn(async move {
            let mut tasks = Vec::new();
            for (w, sender) in senders.into_iter().enumerate() {
                let mut cs = clients.clone();
                let (acked, failures, stop) = (acked.clone(), failures.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let doc = format!("upgrade load {w} {n}");
                        let call = gmchain_sdk::anchor_call(
                            &crypto_sm::sm3::sm3(doc.as_bytes()),
                            "document",
                            "",
                            Vec::new(),
                        );
                        let c = &mut cs[(w + n) % 4];
                        match c.send(&sender, call).await {
                            Ok(s) => {
                                let s = s.into_committed();
                                assert_eq!(s.receipt.status, types::Status::Success, "{doc}");
                                acked.lock().unwrap().push((s.id, s.height));
                            }
                            Err(e) => {
                                failures.lock().unwrap().push(e.to_string());
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                        n += 1;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    let wait_acked = |net: &Consortium, count: usize, what: &str| {
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
    wait_acked(&net, 40, "four validators of the previous release");

    // The drill, one validator at a time.
    let mut swaps = Vec::new();
    for i in [3, 2, 1, 0] {
        let others: Vec<usize> = (0..4).filter(|&j| j != i).collect();
        let at_stop = top_of(&rt, &mut probes, &others);
        stop_cleanly(&mut net, i);
        // The chain decides without it (three of four are a quorum).
        let down = wait_decides(
            &rt,
            &net,
            &mut probes,
            &others,
            at_stop,
            "with a validator stopped",
        );
        backup(&net, i);
        migrate(&net, i);
        let migrated = wait_decides(&rt, &net, &mut probes, &others, down, "while it migrated");
        net.start_with(i, &new);
        net.wait_up(&rt, i);
        // Caught up: its status (through the drill's command) says this build's version, and
        // its height reaches the one the others had when it started.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = query_status(&net, i);
            assert_eq!(s["version"], new_version, "node{i}: {s}");
            if s["height"].as_u64().unwrap() >= migrated {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node{i} did not catch up to {migrated}: {s}\n{}",
                net.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // And the chain decides new blocks with its precommit.
        let with_it = wait_decides_with(&rt, &net, &mut probes[i], i, migrated);
        swaps.push((i, at_stop, down, migrated, with_it));
        eprintln!("upgrade: node{i} upgraded: {:?}", swaps.last());
        let count = acked.lock().unwrap().len();
        wait_acked(&net, count + 20, &format!("after node{i} was upgraded"));
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(load).unwrap();
    for i in 0..4 {
        assert_running(&mut net, i);
    }
    let acknowledged = acked.lock().unwrap().clone();
    let top = acknowledged.iter().map(|(_, h)| *h).max().unwrap();

    // Every node reaches the highest acknowledged height and reports this build's version.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, c) in probes.iter_mut().enumerate() {
        loop {
            let s = rt.block_on(c.status()).unwrap();
            assert_eq!(s.version, new_version, "node{i}");
            if s.height >= top {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node{i} did not reach {top}\n{}",
                net.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // No lost transaction: every acknowledged one has its receipt on every node, at the
    // height it was acknowledged at, whichever release committed it.
    for (i, c) in probes.iter_mut().enumerate() {
        for (id, h) in &acknowledged {
            let r = rt.block_on(c.receipt(id)).unwrap_or_else(|e: SdkError| {
                panic!("node{i}: acknowledged {id} has no receipt: {e}")
            });
            assert_eq!(r.height, *h, "node{i}: {id}");
        }
    }
    for i in 0..4 {
        assert_running(&mut net, i);
    }
    // The same headers (state roots, certificate links) on every node, block 1 to the top:
    // blocks of both releases.
    for h in 1..=top {
        let first = rt.block_on(probes[0].block(Some(h))).unwrap().block.header;
        for (i, c) in probes.iter_mut().enumerate().skip(1) {
            let other = rt.block_on(c.block(Some(h))).unwrap().block.header;
            assert_eq!(other, first, "node{i} differs at height {h}");
        }
    }
    // Each upgraded store verifies on its own, with this build.
    for i in 0..4 {
        stop_cleanly(&mut net, i);
    }
    for n in &net.nodes {
        ok_with(
            &new,
            &net.dir,
            &["node", "verify-store", "--config", &n.config],
        );
    }
    eprintln!(
        "upgrade: {} ({}) -> {new_version}: {} transactions acknowledged to height {top}, {} \
         submissions failed during restarts; swaps (node, height at stop, while down, after \
         migrate, first block with its precommit): {swaps:?}; {:.0} s",
        p.version,
        p.tag,
        acknowledged.len(),
        failures.lock().unwrap().len(),
        began.elapsed().as_secs_f64()
    );
}

/// Runs `gmchain node start` of `bin` on node `i`, expecting a refusal: the process exits by
/// itself (within 30 s) with a failure; its stderr.
fn start_refused(net: &Consortium, i: usize, bin: &Path) -> String {
    let log = net.dir.join(format!("refused{i}.log"));
    let mut child = Command::new(bin)
        .current_dir(&net.dir)
        .args(["node", "start", "--config", &net.nodes[i].config])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} started on node{i}'s store instead of refusing it: {}",
                bin.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{}: {status}: {err}", bin.display());
    err
}

/// The previous release's store: refused by this build until `gmchain node migrate` (which
/// changes nothing the second time); once migrated, refused by the previous release naming
/// both versions; the drill's rollback (the backup, the previous binary) restores it.
#[test]
fn a_previous_release_store_is_refused_until_migrated_and_rolls_back_from_its_backup() {
    let p = previous();
    let old = previous_binary(&p);
    let new = current();
    let mut net = Consortium::made_by(&old, 1, "upgrade-refusal");
    let rt = rt();
    net.start_with(0, &old);
    net.wait_up(&rt, 0);
    let (key, cert) = identity(&net.dir, "clients/0");
    let sender = Sender::new(Arc::new(key), cert).unwrap();
    let call = gmchain_sdk::anchor_call(
        &crypto_sm::sm3::sm3(b"before the upgrade"),
        "document",
        "",
        Vec::new(),
    );
    let mut c = gmchain_sdk::Client::from_grpc(net.client(&rt, 0));
    let committed = rt.block_on(c.send(&sender, call)).unwrap().into_committed();
    stop_cleanly(&mut net, 0);
    let saved = backup(&net, 0);

    // This build refuses the previous release's store, saying what to run, and leaves it as
    // it was (the previous release still verifies it).
    let err = start_refused(&net, 0, &new);
    assert!(err.contains("gmchain node migrate"), "{err}");
    ok_with(
        &old,
        &net.dir,
        &["node", "verify-store", "--config", &net.nodes[0].config],
    );

    // Migrated once; the second run has nothing to do.
    migrate(&net, 0);
    let again = migrate(&net, 0);
    assert!(again.contains("nothing to do"), "{again}");

    // The previous release refuses the migrated store, naming its version.
    let err = start_refused(&net, 0, &old);
    assert!(
        err.contains(&format!(
            "the store is format version {}",
            storage::STORE_VERSION
        )),
        "{err}"
    );

    // This build starts on it and serves what the previous release committed.
    net.start_with(0, &new);
    net.wait_up(&rt, 0);
    let mut c = gmchain_sdk::Client::from_grpc(net.client(&rt, 0));
    let s = rt.block_on(c.status()).unwrap();
    assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
    let r = rt.block_on(c.receipt(&committed.id)).unwrap();
    assert_eq!(r.height, committed.height);
    stop_cleanly(&mut net, 0);
    ok_with(
        &new,
        &net.dir,
        &["node", "verify-store", "--config", &net.nodes[0].config],
    );

    // Rollback: the backup in place of the data directory, the previous binary.
    let data = data_dir(&net, 0);
    std::fs::rename(&data, net.dir.join("data.migrated")).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(&saved)
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    net.start_with(0, &old);
    net.wait_up(&rt, 0);
    let mut c = gmchain_sdk::Client::from_grpc(net.client(&rt, 0));
    assert_eq!(rt.block_on(c.status()).unwrap().version, p.version);
    let r = rt.block_on(c.receipt(&committed.id)).unwrap();
    assert_eq!(r.height, committed.height);
    stop_cleanly(&mut net, 0);
}
