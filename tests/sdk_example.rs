//! The Rust SDK's example program (`crates/sdk/examples/attest.rs`) against a real node: the
//! example's source is compiled into this test binary (`tests/main.rs` mounts it as
//! `sdk_attest_example`) and its `run` is called with the arguments a user would give, so the
//! test exercises exactly the example's code, with no binary to find in the target directory.
//! Then what it returned is checked against the SDK's refusals: a tampered receipt, another
//! document, a resubmitted transaction (its committed outcome, not an error).

use std::path::Path;

use codes::Coded;
use gmchain_sdk::{SdkError, Submission};

use crate::dev_node::{Chain, Node, dev_chain};
use crate::sdk_attest_example::{Args, connect, run};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The example's arguments for the dev chain's client 0 with its encrypted key file.
fn args(chain: &Chain, file: &Path) -> Args {
    let d = |p: &str| chain.dir.join(p);
    Args::parse(
        [
            file.to_str().unwrap(),
            "--node",
            &chain.grpc,
            "--node-name",
            "node0",
            "--key",
            d("clients/0.key.pem").to_str().unwrap(),
            "--pass-file",
            d("pass").to_str().unwrap(),
            "--cert",
            d("clients/0.crt.pem").to_str().unwrap(),
            "--ca",
            d("ca.crt.pem").to_str().unwrap(),
            "--crl",
            d("ca.crl.pem").to_str().unwrap(),
            "--genesis",
            d("data/genesis.json").to_str().unwrap(),
        ]
        .map(String::from),
    )
    .unwrap()
}

#[test]
fn the_example_anchors_a_file_and_verifies_its_receipt_offline() {
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let doc = chain.dir.join("notice.txt");
    std::fs::write(&doc, b"Notice 2026-17: the SDK's example document.\n").unwrap();
    let genesis = chain.dir.join("data/genesis.json");
    let a = args(&chain, &doc);
    let rt = rt();

    let report = rt.block_on(run(&a)).expect("the example runs");
    assert!(report.height >= 1, "{report:?}");
    assert!(report.signer.contains("client0"), "{report:?}");
    assert_eq!(report.certified_by.len(), 1, "{report:?}");

    // The receipt it verified verifies again, and the height is the block's.
    let v = gmchain_sdk::verify_receipt_offline(
        report.receipt_json.as_bytes(),
        &genesis,
        Some(&std::fs::read(&doc).unwrap()),
    )
    .unwrap();
    assert_eq!(v.verified.height.0, report.height);

    // Another document: refused, not verified (exit class 1), naming the mismatch.
    let e = gmchain_sdk::verify_receipt_offline(
        report.receipt_json.as_bytes(),
        &genesis,
        Some(b"another document"),
    )
    .unwrap_err();
    assert!(matches!(e, SdkError::Receipt(_)), "{e}");
    assert_eq!(e.class(), codes::Class::NotVerified, "{e}");
    assert_eq!(e.code(), &codes::RECEIPT_DOCUMENT_MISMATCH, "{e}");

    // A tampered receipt: each field changed is refused as not verified.
    let json: serde_json::Value = serde_json::from_str(&report.receipt_json).unwrap();
    let mut tampered = 0;
    for path in tamper_targets(&json) {
        let mut t = json.clone();
        let Some(s) = t.pointer_mut(&path) else {
            continue;
        };
        *s = flip(s);
        let bytes = serde_json::to_vec(&t).unwrap();
        match gmchain_sdk::verify_receipt_offline(&bytes, &genesis, None) {
            Ok(_) => panic!("a receipt with {path} changed verified"),
            Err(e) => assert_eq!(e.class(), codes::Class::NotVerified, "{path}: {e}"),
        }
        tampered += 1;
    }
    assert!(tampered >= 3, "too few fields tampered with: {json}");

    // Another chain's genesis file (a second dev chain) does not vouch for this receipt.
    let other = dev_chain(1);
    let e = gmchain_sdk::verify_receipt_offline(
        report.receipt_json.as_bytes(),
        &other.dir.join("data/genesis.json"),
        None,
    )
    .unwrap_err();
    assert_eq!(e.class(), codes::Class::NotVerified, "{e}");

    // The same signed transaction twice: the second submission reports the committed outcome.
    rt.block_on(async {
        let (mut client, sender) = connect(&a).await.unwrap();
        let builder = client.builder().await.unwrap();
        let call = gmchain_sdk::contract_call(
            "attestation",
            "anchor",
            vec![
                crypto_sm::sm3::sm3(b"twice").as_bytes().to_vec(),
                b"document".to_vec(),
                Vec::new(),
                Vec::new(),
            ],
        );
        let tx = builder
            .sign(&sender, call, &crypto_sm::rng::SystemRandom)
            .unwrap();
        let wait = std::time::Duration::from_secs(60);
        let first = client.submit_and_wait(&tx, wait).await.unwrap();
        assert!(matches!(first, Submission::Committed(_)), "{first:?}");
        let again = client.submit_and_wait(&tx, wait).await.unwrap();
        let Submission::AlreadyCommitted(c) = &again else {
            panic!("a resubmission is its committed outcome: {again:?}");
        };
        assert_eq!(c.id, tx.tx_id());
        assert_eq!(c.height, first.committed().height);
        assert_eq!(c.position, first.committed().position);
        assert_eq!(c.receipt, first.committed().receipt);

        // Sent without waiting, then submitted and waited for: the copy is refused while the
        // first waits in the pool (or is committed already), and the client waits for the
        // first's outcome.
        let call = gmchain_sdk::contract_call(
            "attestation",
            "anchor",
            vec![
                crypto_sm::sm3::sm3(b"pending").as_bytes().to_vec(),
                b"document".to_vec(),
                Vec::new(),
                Vec::new(),
            ],
        );
        let pending = builder
            .sign(&sender, call, &crypto_sm::rng::SystemRandom)
            .unwrap();
        client
            .grpc()
            .submit_transaction(api::v1::SubmitTransactionRequest {
                signed_tx: types::Encode::to_bytes(&pending),
                wait_for_commit: false,
            })
            .await
            .unwrap();
        let again = client.submit_and_wait(&pending, wait).await.unwrap();
        assert!(
            matches!(&again, Submission::AlreadyCommitted(c) if c.id == pending.tx_id()),
            "{again:?}"
        );

        // The queries agree with the submission.
        let stored = client.transaction(&tx.tx_id()).await.unwrap();
        assert_eq!(stored.tx, tx);
        let block = client.block(Some(c.height)).await.unwrap();
        assert!(block.block.txs.iter().any(|t| t.tx_id() == tx.tx_id()));
        assert!(block.certificate.is_some());
        let att = client
            .attestation(gmchain_sdk::AttestationKey::Digest(crypto_sm::sm3::sm3(
                b"twice",
            )))
            .await
            .unwrap();
        assert_eq!(att.height, c.height);
        // A transaction that is not committed: the node's NOT_FOUND, no registry code.
        let e = client
            .receipt(&types::TxId(crypto_sm::sm3::sm3(b"never sent")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                SdkError::Node {
                    what: "receipt",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.class(), codes::Class::BadInput, "{e}");
    });
}

/// JSON pointers of the string fields of a receipt to tamper with: hex and base64 values of
/// the header, the transaction, the receipt and the proofs.
fn tamper_targets(json: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(json, String::new(), &mut out);
    out
}

fn walk(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                // The format's name and version are not covered by a signature but are
                // checked first: changing them is refused as unsupported, also not verified.
                walk(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(v, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::String(s) if s.len() >= 16 => out.push(at),
        _ => {}
    }
}

/// The same string with one character changed, keeping its alphabet (hex or base64).
fn flip(v: &serde_json::Value) -> serde_json::Value {
    let s = v.as_str().unwrap_or_default();
    let mut c: Vec<char> = s.chars().collect();
    let i = c.len() / 2;
    c[i] = match c[i] {
        '0' => '1',
        'a' => 'b',
        'A' => 'B',
        _ => '0',
    };
    serde_json::Value::String(c.into_iter().collect())
}

/// The environment variable that makes [`token_child`] run: the devnet's directory.
const TOKEN_CHILD_DIR: &str = "GMCHAIN_SDK_EXAMPLE_DEVNET";

/// The example as the README runs it: alice's key in her soft-token slot of a one-validator
/// devnet. The soft token reads its directory from the environment when it is loaded, which a
/// test cannot set in its own (threaded) process, so the example runs in a child: this test
/// binary again, running only [`token_child`] with the devnet's environment.
#[test]
fn the_example_signs_in_the_soft_token_of_a_devnet() {
    let net = crate::devnet::Devnet::new();
    let port = crate::devnet::free_base_port(1).to_string();
    let o = net.run("up", &["--nodes", "1", "--base-port", &port]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "devnet up: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "sdk_example::token_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(TOKEN_CHILD_DIR, &net.dir)
        .env("GMCHAIN_SDK_EXAMPLE_PORT", &port)
        .env("GMCHAIN_SOFTTOKEN_DIR", net.dir.join("tokens"))
        .env("GMCHAIN_SOFTTOKEN_SLOTS", "1")
        .env(hsm::MODULE_ENV, crate::demo_pki::softtoken_module())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run: {stdout}{stderr}"
    );
}

/// Run by [`the_example_signs_in_the_soft_token_of_a_devnet`] only (it sets the devnet's
/// environment); on its own, it has nothing to do.
#[test]
#[ignore = "run in a child process by the_example_signs_in_the_soft_token_of_a_devnet"]
fn token_child() {
    let Some(dir) = std::env::var_os(TOKEN_CHILD_DIR).map(std::path::PathBuf::from) else {
        return;
    };
    let port = std::env::var("GMCHAIN_SDK_EXAMPLE_PORT").unwrap();
    let d = |p: &str| dir.join(p).to_str().unwrap().to_string();
    let doc = dir.join("notice-2.txt");
    std::fs::write(&doc, b"Notice 2026-119: the records office moves.\n").unwrap();
    let alice = std::fs::read_to_string(dir.join("alice.uri")).unwrap();
    let a = Args::parse(
        [
            doc.to_str().unwrap(),
            "--node",
            &format!("127.0.0.2:{port}"),
            "--node-name",
            "node-1",
            "--key",
            alice.trim(),
            "--hsm-profile",
            &d("softtoken.toml"),
            "--pass-file",
            &d("agency-1/user.pin"),
            "--cert",
            &d("alice.pem"),
            "--ca",
            &d("agency-1/ca.pem"),
            "--crl",
            &d("agency-1/crl.pem"),
            "--genesis",
            &d("node-1/data/genesis.json"),
        ]
        .map(String::from),
    )
    .unwrap();
    let report = rt()
        .block_on(run(&a))
        .expect("the example runs with a token key");
    assert!(report.height >= 1, "{report:?}");
    assert!(report.signer.contains("CN=alice"), "{report:?}");
    assert_eq!(report.certified_by.len(), 1, "{report:?}");
    // A PIN is never an argument.
    let e = Args::parse(["f", "--pin", "1234"].map(String::from)).unwrap_err();
    assert!(e.contains("never a command-line value"), "{e}");
}
