//! The web console in a browser (issue 17): `tests/console/run.mjs` drives Debian's chromium
//! (headless, through playwright-core) against the console's files alone, then against a live
//! dev-chain node's plain REST listener after a document was anchored with `gmchain tx attest`:
//! the bundled SM3/SM2 against the Rust vectors, the genesis file against its hash, a block
//! and a transaction explored, the attested document found (its height, its signer, its
//! receipt verified in the browser) and an altered one not found, the language switch, no
//! overflow at 360 px, no JavaScript error, no request carrying the file's bytes. Screenshots
//! and `report.json` stay in `$CARGO_TARGET_DIR/console-artifacts/` (the path is printed).
//! `scripts/setup.sh` installs chromium, a CJK font and the pinned playwright-core.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::dev_node::{Node, dev_chain, ok};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn artifacts(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("console-artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the browser test with `args`; fails with its output unless it exits 0.
fn run_browser_test(args: &[&str]) {
    let script = repo().join("tests/console/run.mjs");
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && repo()
                .join("tests/console/node_modules/playwright-core")
                .exists(),
        "the console test needs /usr/bin/chromium and tests/console/node_modules: run scripts/setup.sh"
    );
    let out = Command::new("node")
        .arg(&script)
        .args(args)
        .output()
        .expect("run node (scripts/setup.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "the console's browser test failed:\n{text}"
    );
}

/// A dev chain with a node (its plain REST listener, serving the console, at `rest`) on which
/// `clients/0` anchored `notice.txt` with `gmchain tx attest` (its receipt in `receipt.json`).
struct Attested {
    chain: crate::dev_node::Chain,
    _node: Node,
    rest: String,
    tx: String,
    genesis_hash: String,
    signer: String,
}

fn attested() -> Attested {
    let chain = dev_chain(1);
    let dir = &chain.dir;
    let rest = crate::dev_node::rest_listen_of(&dir.join("node.toml"));
    let node = Node::start(&chain);
    std::fs::write(
        dir.join("notice.txt"),
        "关于档案室开放时间的通知 2026-118: opening hours of the records office.\n",
    )
    .unwrap();
    ok(
        dir,
        &[
            "tx",
            "attest",
            "notice.txt",
            "--metadata",
            "notice 2026-118",
            "--key",
            "clients/0.key.pem",
            "--pass-file",
            "pass",
            "--cert",
            "clients/0.crt.pem",
            "--node",
            &chain.grpc,
            "--out",
            "receipt.json",
        ],
    );
    let receipt = receipt::ReceiptBundle::from_json(
        &std::fs::read(dir.join("receipt.json")).unwrap(),
        &types::Limits::default(),
    )
    .unwrap();
    let genesis =
        execution::Genesis::from_json(&std::fs::read(dir.join("data/genesis.json")).unwrap())
            .unwrap();
    let signer = pki::Certificate::from_pem(&std::fs::read(dir.join("clients/0.crt.pem")).unwrap())
        .unwrap()
        .subject();
    Attested {
        rest,
        tx: hex::encode(receipt.tx.tx_id().as_bytes()),
        genesis_hash: genesis.hash().to_hex(),
        signer,
        _node: node,
        chain,
    }
}

/// The console's own checks with its files alone (no REST gateway): the vectors, a receipt the
/// CLI wrote verified in the browser against the genesis file (and its tamperings refused),
/// the genesis hash, the language switch, the layout at 360 px.
#[test]
fn console_crypto_and_receipt_check_match_rust_in_chromium() {
    let a = attested();
    let dir = &a.chain.dir;
    let out = artifacts("static");
    let console = repo().join("crates/node/console");
    run_browser_test(&[
        "--static",
        console.to_str().unwrap(),
        "--receipt",
        dir.join("receipt.json").to_str().unwrap(),
        "--genesis",
        dir.join("data/genesis.json").to_str().unwrap(),
        "--doc",
        dir.join("notice.txt").to_str().unwrap(),
        "--genesis-hash",
        &a.genesis_hash,
        "--signer",
        &a.signer,
        "--out",
        out.to_str().unwrap(),
    ]);
    println!("console artifacts: {}", out.display());
}

/// Against a live node's plain REST listener, which serves the console.
#[test]
fn console_explores_and_verifies_a_document_against_a_live_node() {
    let a = attested();
    let rest = a.rest.clone();
    let dir = &a.chain.dir;
    let out = artifacts("live");
    run_browser_test(&[
        "--url",
        &format!("http://{rest}"),
        "--receipt",
        dir.join("receipt.json").to_str().unwrap(),
        "--genesis",
        dir.join("data/genesis.json").to_str().unwrap(),
        "--doc",
        dir.join("notice.txt").to_str().unwrap(),
        "--genesis-hash",
        &a.genesis_hash,
        "--tx",
        &a.tx,
        "--signer",
        &a.signer,
        "--out",
        out.to_str().unwrap(),
    ]);
    println!("console artifacts: {}", out.display());
}
