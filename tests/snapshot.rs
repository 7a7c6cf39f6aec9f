//! Issue 18 item 2 and the store half of item 3, with real node processes: a snapshot exported
//! from a briefly stopped validator, a new follower initialised from it that syncs to the tip
//! under load with the validators' state roots, refusals of a tampered certificate, a tampered
//! state node and another chain's snapshot, queries below the base and on a pruned follower
//! answering NODE_PRUNED, a replayed old transaction refused as a duplicate on the snapshot
//! node as on the archive node, `verify-store` on both, and `gmchain node migrate` on a
//! version-3 store. The commands are those of docs/ops/snapshot.md, mirrored here.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::v1 as pb;
use types::{Decode, Encode, Limits};

use crate::consortium::{Client, Consortium, anchor, rt, status};
use crate::dev_node::{fails, gm, identity, ok, scrape};

/// The header of block `h` on a node, or the refusal.
async fn header(c: &mut Client, h: u64) -> Result<types::BlockHeader, tonic::Status> {
    let b = c
        .get_block(pb::GetBlockRequest { height: Some(h) })
        .await?
        .into_inner();
    Ok(types::Block::from_bytes(&b.block, &Limits::default())
        .unwrap()
        .header)
}

fn code_of(s: &tonic::Status) -> String {
    s.metadata()
        .get(api::CODE_METADATA_KEY)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next()?.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Reads the snapshot file's parts (docs/formats.md §11) up to the certified header: returns
/// the offset and length of the certified header's JSON.
fn certified_span(bytes: &[u8]) -> (usize, usize) {
    assert_eq!(&bytes[..16], b"gmchain-snapshot");
    let mut at = 17;
    let chain_len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    at += 4 + chain_len + 32 + 8;
    let json_len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    (at + 4, json_len)
}

/// Rewrites the trailer (SM3 of everything before it), so that only the edited part is wrong.
fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len() - 32;
    let d = crypto_sm::sm3::sm3(&bytes[..n]);
    bytes[n..].copy_from_slice(d.as_bytes());
    bytes
}

fn wait_height(rt: &tokio::runtime::Runtime, c: &mut Client, h: u64, net: &Consortium) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while rt.block_on(status(c)).height < h {
        assert!(
            Instant::now() < deadline,
            "height {h} not reached\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `gmchain node start --config CONFIG` expecting it to refuse at once with exit status
/// `code` and `needle` in its error; a node that starts instead is stopped (not waited for).
fn start_refused(dir: &Path, config: &str, code: i32, needle: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(dir)
        .args(["node", "start", "--config", config])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node start --config {config} started instead of refusing ({needle})");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
}

#[test]
fn a_follower_joins_from_a_snapshot_and_a_pruned_follower_answers_the_code() {
    // node0 validates; node1 is a pruned follower; node2 joins from a snapshot.
    let mut net = Consortium::with_followers(1, 2, "snapshot");
    let dir = net.dir.clone();
    let d: &Path = &dir;
    let cfg1 = format!("{}\n[storage]\nkeep_blocks = 4\n", net.config(1));
    std::fs::write(d.join(&net.nodes[1].config), cfg1).unwrap();
    // A validator of the current set does not prune (review r3 H2: pruned nodes do not answer
    // sync below their mark, so pruning validators strand a validator that falls behind).
    let cfg0 = net.config(0);
    std::fs::write(
        d.join("pruned-validator.toml"),
        format!("{cfg0}\n[storage]\nkeep_blocks = 100\n"),
    )
    .unwrap();
    start_refused(
        d,
        "pruned-validator.toml",
        2,
        "is a validator of the current set, and [storage] keep_blocks = 100",
    );
    let rt = rt();
    net.start(0);
    net.start(1);
    net.wait_up(&rt, 0);
    net.wait_up(&rt, 1);
    let (k, cert) = identity(d, "clients/0");
    let mut c0 = net.client(&rt, 0);
    let submit = |c: &mut Client, tx: &types::SignedTx, wait: bool| {
        rt.block_on(c.submit_transaction(pb::SubmitTransactionRequest {
            signed_tx: tx.to_bytes(),
            wait_for_commit: wait,
        }))
    };
    // Load before the snapshot: the first transaction is the one replayed later.
    let old = anchor(&k, &cert, "committed before the snapshot");
    let r = submit(&mut c0, &old, true).unwrap().into_inner();
    assert!(r.committed);
    let old_height = r.height;
    for n in 0..30 {
        let tx = anchor(&k, &cert, &format!("before the snapshot {n}"));
        submit(&mut c0, &tx, n % 10 == 9).unwrap();
    }

    // A height the store does not hold.
    net.stop(1);
    fails(
        d,
        &[
            "node",
            "snapshot",
            "export",
            "--config",
            "node1.toml",
            "--height",
            "100000",
            "--out",
            "x.bin",
        ],
        2,
        "NODE_SNAPSHOT_SOURCE",
    );
    net.start(1);
    net.wait_up(&rt, 1);
    // A running node's store is not exported (docs/ops/snapshot.md step 1).
    let snap = d.join("snap.bin");
    let snap_s = snap.to_str().unwrap();
    fails(
        d,
        &[
            "node",
            "snapshot",
            "export",
            "--config",
            "node1.toml",
            "--out",
            snap_s,
        ],
        2,
        "NODE_SNAPSHOT_SOURCE",
    );
    // Step 1: stop the source briefly, export, start it again.
    net.stop(0);
    let out = ok(
        d,
        &[
            "node",
            "snapshot",
            "export",
            "--config",
            "node.toml",
            "--out",
            snap_s,
        ],
    );
    let height: u64 = out
        .split("height ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(height > old_height, "{out}");
    assert!(out.contains("blocks from 1 carried"), "{out}");
    // The hash to check on an archive node and give to `init --expect-hash`.
    let hash = out
        .split("block hash ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .unwrap()
        .to_string();
    assert_eq!(hash.len(), 64, "{out}");
    // From a backup's DIR/store (a RocksDB checkpoint, made by `gmchain node backup`): the
    // same snapshot, byte for byte, and the backup still restores afterwards (review r3 H1:
    // the export wrote RocksDB's files into the checkpoint, which then failed its manifest).
    ok(
        d,
        &["node", "backup", "--config", "node.toml", "--out", "b0"],
    );
    ok(
        d,
        &[
            "node",
            "snapshot",
            "export",
            "--store",
            "b0/store",
            "--genesis",
            "data/genesis.json",
            "--out",
            "snap-from-store.bin",
        ],
    );
    assert_eq!(
        std::fs::read(d.join("snap-from-store.bin")).unwrap(),
        std::fs::read(&snap).unwrap()
    );
    let check = net
        .config(0)
        .replace("data_dir = \"data\"", "data_dir = \"check0\"");
    assert!(check.contains("check0"), "{check}");
    std::fs::write(d.join("check0.toml"), check).unwrap();
    std::fs::create_dir(d.join("check0")).unwrap();
    let restored = ok(
        d,
        &["node", "restore", "--from", "b0", "--config", "check0.toml"],
    );
    assert!(restored.contains("store verified"), "{restored}");
    net.start(0);
    net.wait_up(&rt, 0);
    let mut c0 = net.client(&rt, 0);

    // Load during the join and the pruning.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, sent, dir, grpc) = (
            stop.clone(),
            sent.clone(),
            dir.clone(),
            net.nodes[0].grpc.clone(),
        );
        let (k, cert) = identity(d, "clients/1");
        std::thread::spawn(move || {
            let rt = crate::consortium::rt();
            let mut c = rt
                .block_on(crate::dev_node::client_at(&dir, &grpc, "admin"))
                .unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let tx = anchor(&k, &cert, &format!("during the join {n}"));
                let _ = rt.block_on(c.submit_transaction(pb::SubmitTransactionRequest {
                    signed_tx: tx.to_bytes(),
                    wait_for_commit: n % 8 == 7,
                }));
                n += 1;
                sent.store(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // Step 2: the new follower's data directory is empty but for its configuration.
    std::fs::remove_dir_all(d.join("data2/db")).unwrap();
    std::fs::remove_file(d.join("data2/genesis.json")).unwrap();
    let init = |file: &str, genesis: &str| {
        gm(
            d,
            &[
                "node",
                "init",
                "--config",
                "node2.toml",
                "--genesis",
                genesis,
                "--snapshot",
                file,
            ],
        )
    };
    let refused = |file: &str, genesis: &str, needle: &str, what: &str| {
        let o = init(file, genesis);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(needle), "{what}: expected {needle:?} in {err}");
        assert!(!d.join("data2/db").exists(), "{what}: a store was left");
        assert!(
            !d.join("data2/db.importing").exists(),
            "{what}: a partial store was left"
        );
    };
    // A file that is not a snapshot: bad input, nothing written.
    fails(
        d,
        &[
            "node",
            "init",
            "--config",
            "node2.toml",
            "--genesis",
            "data/genesis.json",
            "--snapshot",
            "data/genesis.json",
        ],
        2,
        "NODE_SNAPSHOT_FORMAT",
    );
    assert!(!d.join("data2/db").exists());
    let bytes = std::fs::read(&snap).unwrap();
    // A certificate that does not verify: its round changed (the precommits signed another).
    {
        let (at, len) = certified_span(&bytes);
        let mut v: serde_json::Value = serde_json::from_slice(&bytes[at..at + len]).unwrap();
        let c = hex::decode(v["certificate"].as_str().unwrap()).unwrap();
        let mut c = types::CommitCertificate::from_bytes(&c, &Limits::default()).unwrap();
        c.round += 1;
        v["certificate"] = serde_json::Value::String(hex::encode(c.to_bytes()));
        let json = v.to_string();
        let mut out = bytes[..at - 4].to_vec();
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(json.as_bytes());
        out.extend_from_slice(&bytes[at + len..]);
        std::fs::write(d.join("bad-cert.bin"), reseal(out)).unwrap();
        refused(
            "bad-cert.bin",
            "data/genesis.json",
            "NODE_SNAPSHOT_INVALID: snapshot bad-cert.bin: the commit certificate of height",
            "tampered certificate",
        );
    }
    // A state node changed: the last byte of the last node (before the end mark and trailer).
    {
        let mut out = bytes.clone();
        let i = out.len() - 32 - 4 - 1;
        out[i] ^= 0x01;
        std::fs::write(d.join("bad-state.bin"), reseal(out)).unwrap();
        refused(
            "bad-state.bin",
            "data/genesis.json",
            "the state does not hash to the header's state root",
            "tampered state node",
        );
    }
    // The trailer changed: the file's SM3.
    {
        let mut out = bytes.clone();
        let j = out.len() - 1;
        out[j] ^= 0x01;
        std::fs::write(d.join("bad-trailer.bin"), out).unwrap();
        refused(
            "bad-trailer.bin",
            "data/genesis.json",
            "the file's SM3",
            "tampered trailer",
        );
    }
    // Another chain's genesis: the snapshot is not of that chain.
    ok(
        d,
        &["node", "dev-chain", "--dir", "other", "--clients", "1"],
    );
    {
        let o = init(snap_s, "other/data/genesis.json");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("NODE_SNAPSHOT_WRONG_CHAIN"), "{err}");
        assert!(!d.join("data2/db").exists());
    }
    // A hash that is not the snapshot's block (another height's, as a careless check would
    // give): refused, nothing written.
    {
        let mut c = net.client(&rt, 0);
        let other = hex::encode(
            rt.block_on(header(&mut c, height - 1))
                .unwrap()
                .hash()
                .as_bytes(),
        );
        let o = gm(
            d,
            &[
                "node",
                "init",
                "--config",
                "node2.toml",
                "--genesis",
                "data/genesis.json",
                "--snapshot",
                snap_s,
                "--expect-hash",
                &other,
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("--expect-hash"), "{err}");
        assert!(!d.join("data2/db").exists());
    }
    // The snapshot itself verifies and makes the store (docs/ops/snapshot.md step 2).
    let o = gm(
        d,
        &[
            "node",
            "init",
            "--config",
            "node2.toml",
            "--genesis",
            "data/genesis.json",
            "--snapshot",
            snap_s,
            "--expect-hash",
            &hash,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("base {height} ")), "{out}");
    assert!(out.contains("snapshot verified"), "{out}");
    assert!(out.contains("matches --expect-hash"), "{out}");

    // Step 3: start it; it syncs forward from its base to the validators' tip.
    net.start(2);
    net.wait_up(&rt, 2);
    let mut c2 = net.client(&rt, 2);
    let target = rt.block_on(status(&mut c0)).height + 3;
    wait_height(&rt, &mut c2, target, &net);
    let common = rt.block_on(status(&mut c2)).height;
    wait_height(&rt, &mut c0, common, &net);
    for h in [height, height + 1, common] {
        let a = rt.block_on(header(&mut c0, h)).unwrap();
        let b = rt.block_on(header(&mut c2, h)).unwrap();
        assert_eq!(a, b, "height {h}");
        assert_eq!(a.state_root, b.state_root, "state root at {h}");
    }
    let page = scrape(&net.nodes[2].metrics);
    assert_eq!(metric(&page, "gmchain_lowest_held_height"), height);
    assert_eq!(
        metric(&page, "gmchain_snapshot_unconfirmed"),
        0,
        "synced past its base"
    );
    assert!(metric(&page, "gmchain_sync_target_height") >= target - 3);
    let log = std::fs::read_to_string(net.log(2)).unwrap();
    assert!(
        log.contains("sync: committed a block decided by the validators ("),
        "{log}"
    );

    // Below the base: the code, not "not found".
    let e = rt.block_on(header(&mut c2, 1)).unwrap_err();
    assert_eq!(code_of(&e), "NODE_PRUNED", "{e:?}");
    assert!(
        e.message()
            .contains(&format!("holds heights from {height}")),
        "{e:?}"
    );
    let e = rt
        .block_on(c2.get_receipt(pb::TxIdRequest {
            tx_id: old.tx_id().as_bytes().to_vec(),
        }))
        .unwrap_err();
    assert_eq!(code_of(&e), "NODE_PRUNED", "{e:?}");
    // The archive node answers.
    rt.block_on(c0.get_receipt(pb::TxIdRequest {
        tx_id: old.tx_id().as_bytes().to_vec(),
    }))
    .unwrap();

    // A transaction committed before the snapshot, replayed: a duplicate on both nodes.
    for (name, c) in [("archive", &mut c0), ("snapshot", &mut c2)] {
        let e = submit(c, &old, false).unwrap_err();
        assert_eq!(code_of(&e), "TX_DUPLICATE", "{name}: {e:?}");
    }

    // The pruned follower keeps up and answers the code below its mark.
    let mut c1 = net.client(&rt, 1);
    // A follower may lag the validator by a few blocks on a loaded machine: wait for it.
    wait_height(&rt, &mut c1, 21, &net);
    let tip1 = rt.block_on(status(&mut c1)).height;
    assert!(tip1 > 20, "node1 at {tip1}");
    let page = scrape(&net.nodes[1].metrics);
    let mark = metric(&page, "gmchain_lowest_held_height");
    assert!(
        mark > 1 && mark + 12 >= tip1,
        "pruned below {mark} at tip {tip1}"
    );
    let e = rt.block_on(header(&mut c1, 1)).unwrap_err();
    assert_eq!(code_of(&e), "NODE_PRUNED", "{e:?}");
    rt.block_on(header(&mut c1, tip1)).unwrap();
    let e = submit(&mut c1, &old, false).unwrap_err();
    assert_eq!(code_of(&e), "TX_DUPLICATE", "pruned: {e:?}");
    // The same through REST, whose resubmission looks for the receipt (pruned here): the
    // duplicate's refusal as gRPC gives it, not 500 REST_INTERNAL (review r3 M3).
    assert!(
        old_height < mark,
        "the old receipt is pruned ({old_height} < {mark})"
    );
    {
        use base64::Engine as _;
        let addr = crate::dev_node::rest_listen_of(&d.join(&net.nodes[1].config));
        let body = serde_json::json!({
            "signed_tx": base64::engine::general_purpose::STANDARD.encode(old.to_bytes()),
            "wait_for_commit": false
        });
        let (st, _, out) = crate::rest::post_json(&addr, "/v1/tx", &body);
        assert_eq!(out["code"], "TX_DUPLICATE", "HTTP {st} {out}");
        assert_ne!(st, 500, "{out}");
    }
    // A pruned store cannot give the blocks a snapshot carries.
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(sent.load(Ordering::Relaxed) > 0);
    net.stop(1);
    fails(
        d,
        &[
            "node",
            "snapshot",
            "export",
            "--config",
            "node1.toml",
            "--out",
            "p.bin",
        ],
        2,
        "export from an archive node",
    );

    // Step 4: the stores verify from their base.
    net.stop(2);
    let v = ok(d, &["node", "verify-store", "--config", "node2.toml"]);
    assert!(v.contains(&format!("heights {height}..=")), "{v}");
    assert!(v.contains(&format!("base {height}")), "{v}");
    let v = ok(d, &["node", "verify-store", "--config", "node1.toml"]);
    assert!(v.contains("pruned below"), "{v}");
    // The snapshot node restarts on its store (the genesis check from the recorded hash).
    net.start(2);
    net.wait_up(&rt, 2);
    net.stop(2);
    net.stop(0);
    ok(d, &["node", "verify-store", "--config", "node.toml"]);
}

/// `gmchain node migrate` (docs/ops/snapshot.md, "Upgrading the store"): a version-3 store is
/// refused by `node start` with the code and what to do, migrated in one batch, and then runs;
/// a second migrate has nothing to do.
///
/// The version-3 store: this build's store with the version byte set to 3 and the `base` key
/// removed, which is what 0.1.0 wrote (version 4 adds only that key; tests/upgrade.rs
/// migrates a store the 0.1.0 binary itself wrote).
#[test]
fn a_version_3_store_is_refused_and_migrate_moves_it_to_4() {
    let mut net = Consortium::new(1, "migrate");
    let d = net.dir.clone();
    let rt = rt();
    net.start(0);
    net.wait_up(&rt, 0);
    let (k, cert) = identity(&d, "clients/0");
    let mut c = net.client(&rt, 0);
    let tx = anchor(&k, &cert, "before the migration");
    rt.block_on(c.submit_transaction(pb::SubmitTransactionRequest {
        signed_tx: tx.to_bytes(),
        wait_for_commit: true,
    }))
    .unwrap();
    net.stop(0);
    {
        let b = storage_rocksdb::RocksBackend::open(&d.join("data/db"), false).unwrap();
        let mut w = storage::WriteBatch::new();
        w.put(
            storage::Table::Meta,
            storage::STORE_VERSION_KEY.to_vec(),
            vec![3],
        );
        w.delete(storage::Table::Meta, storage::BASE_KEY.to_vec());
        storage::KvBackend::write(&b, w).unwrap();
    }
    fails(
        &d,
        &["node", "start", "--config", "node.toml"],
        2,
        "run `gmchain node migrate --config FILE`",
    );
    // A copy whose tip does not check (its block deleted) is not migrated, and not a byte of
    // it changes: the tip is checked on a read-only open (review r3 L6: the read-write open
    // rewrote RocksDB's MANIFEST and OPTIONS before the refusal).
    {
        let copied = std::process::Command::new("cp")
            .args(["-a", "data", "damaged"])
            .current_dir(&d)
            .status()
            .unwrap();
        assert!(copied.success());
        let b = storage_rocksdb::RocksBackend::open_for_migration(&d.join("damaged/db")).unwrap();
        let store = storage::ChainStore::new(b, Limits::default());
        let tip = store.tip().unwrap().unwrap();
        let mut w = storage::WriteBatch::new();
        w.delete(storage::Table::Blocks, tip.height.0.to_be_bytes().to_vec());
        storage::KvBackend::write(store.backend(), w).unwrap();
        drop(store);
        let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let before = files(&d.join("damaged/db"));
        let cfg = net
            .config(0)
            .replace("data_dir = \"data\"", "data_dir = \"damaged\"");
        assert!(cfg.contains("damaged"));
        std::fs::write(d.join("damaged.toml"), cfg).unwrap();
        fails(
            &d,
            &["node", "migrate", "--config", "damaged.toml"],
            1,
            "nothing was changed",
        );
        let after = files(&d.join("damaged/db"));
        assert_eq!(
            before.iter().map(|f| &f.0).collect::<Vec<_>>(),
            after.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "the refused migration added or removed store files"
        );
        assert!(before == after, "the refused migration changed store files");
    }
    let out = ok(&d, &["node", "migrate", "--config", "node.toml"]);
    assert!(out.contains("migrated from version 3 to 4"), "{out}");
    let out = ok(&d, &["node", "migrate", "--config", "node.toml"]);
    assert_eq!(out.trim(), "store is version 4, nothing to do");
    ok(&d, &["node", "verify-store", "--config", "node.toml"]);
    net.start(0);
    net.wait_up(&rt, 0);
    let mut c = net.client(&rt, 0);
    let r = rt
        .block_on(c.get_receipt(pb::TxIdRequest {
            tx_id: tx.tx_id().as_bytes().to_vec(),
        }))
        .unwrap();
    assert!(r.into_inner().height > 0);
}
