//! The ledger with real node processes on 127.0.0.1: anchoring a document and verifying its
//! receipt offline (and failing on every alteration), the bad-input table over gRPC, SIGKILL
//! during commits with every acknowledged transaction surviving the restart, WAL syncs
//! matching blocks, graceful SIGTERM and `node verify-store`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::v1 as pb;
use api::v1::chain_client::ChainClient;
use crypto::{Signer, UserId};
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SystemRandom;
use pki::{Certificate, Crl, RevocationReason, RevokedEntry, UnixTime};
use types::{Call, ChainId, Decode, Encode, Height, Limits, Sender, SignedTx, Transaction};

#[path = "support/dev_node.rs"]
mod dev_node;
use dev_node::{Node, dev_chain, fails, gm, log_of, ok};

const PASS: &[u8] = b"dev-chain-passphrase";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn identity(dir: &Path, name: &str) -> (crypto_sm::SoftSigner, Certificate) {
    let pem = std::fs::read(dir.join(format!("{name}.key.pem"))).unwrap();
    let key = crypto_sm::keys::decode_private_key(&pem, Some(PASS)).unwrap();
    let signer = SoftwareProvider::new(Arc::new(SystemRandom)).signer(key);
    let cert = Certificate::from_pem(&std::fs::read(dir.join(format!("{name}.crt.pem"))).unwrap())
        .unwrap();
    (signer, cert)
}

fn signed(
    signer: &dyn Signer,
    cert: &Certificate,
    expiry: u64,
    contract: &str,
    method: &str,
    args: Vec<Vec<u8>>,
) -> SignedTx {
    let mut salt = [0u8; 16];
    crypto::RandomSource::fill(&SystemRandom, &mut salt).unwrap();
    let tx = Transaction {
        chain_id: ChainId::new("dev-chain").unwrap(),
        salt,
        expiry: Height(expiry),
        sender: Sender::Certificate(cert.der().to_vec()),
        call: Call {
            contract: contract.into(),
            method: method.into(),
            args,
        },
    };
    SignedTx::sign(tx, signer, &UserId::default()).unwrap()
}

fn anchor_args(doc: &[u8]) -> Vec<Vec<u8>> {
    vec![
        crypto_sm::sm3::sm3(doc).as_bytes().to_vec(),
        b"document".to_vec(),
        Vec::new(),
        Vec::new(),
    ]
}

async fn submit(
    c: &mut ChainClient<tonic::transport::Channel>,
    bytes: Vec<u8>,
) -> Result<pb::SubmitTransactionResponse, tonic::Status> {
    c.submit_transaction(pb::SubmitTransactionRequest {
        signed_tx: bytes,
        wait_for_commit: true,
    })
    .await
    .map(|r| r.into_inner())
}

async fn height(c: &mut ChainClient<tonic::transport::Channel>) -> u64 {
    c.get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .height
}

fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} missing from {page}")) as u64
}

#[test]
fn attest_then_verify_the_receipt_offline() {
    let chain = dev_chain(2);
    let dir = &chain.dir;
    let mut node = Node::start(&chain);
    std::fs::write(dir.join("contract.pdf"), b"the signed contract, version 1").unwrap();
    let sender = [
        "--key",
        "clients/0.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "clients/0.crt.pem",
        "--node",
        &chain.grpc,
    ];
    let mut args = vec![
        "tx",
        "attest",
        "contract.pdf",
        "--metadata",
        "contract 2026-17",
        "--out",
        "receipt.json",
    ];
    args.extend(sender);
    ok(dir, &args);
    let verified = ok(
        dir,
        &[
            "receipt",
            "verify",
            "receipt.json",
            "contract.pdf",
            "--genesis",
            "data/genesis.json",
        ],
    );
    assert!(verified.contains("receipt verified"), "{verified}");
    assert!(verified.contains("client0"), "{verified}");

    // The same document again: committed, but the first anchor wins (exit 1, failure code).
    let mut again = vec!["tx", "attest", "contract.pdf", "--out", "again.json"];
    again.extend(sender);
    fails(dir, &again, 1, "failed");

    // Query by document, then by owner.
    let q = ok(
        dir,
        &[
            "query",
            "attestation",
            "--file",
            "contract.pdf",
            "--node",
            &chain.grpc,
        ],
    );
    assert!(
        q.contains("Dev Bureau/client0") && q.contains("contract 2026-17"),
        "{q}"
    );
    let l = ok(
        dir,
        &[
            "query",
            "attestations",
            "--owner",
            "Dev Bureau/client0",
            "--node",
            &chain.grpc,
        ],
    );
    assert_eq!(l.matches("\"digest\"").count(), 1, "{l}");

    // Alterations fail offline, each naming the part.
    std::fs::write(dir.join("forged.pdf"), b"the signed contract, version 2").unwrap();
    fails(
        dir,
        &[
            "receipt",
            "verify",
            "receipt.json",
            "forged.pdf",
            "--genesis",
            "data/genesis.json",
        ],
        1,
        "RECEIPT_DOCUMENT_MISMATCH",
    );
    let text = std::fs::read_to_string(dir.join("receipt.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let header = v["header"]
        .as_str()
        .expect("header is a hex string")
        .to_string();
    // Flip one hex digit near the end of the header (the proposer field).
    let mut h = header.clone().into_bytes();
    let i = h.len() - 3;
    h[i] = if h[i] == b'0' { b'1' } else { b'0' };
    let altered = text.replace(&header, std::str::from_utf8(&h).unwrap());
    std::fs::write(dir.join("altered.json"), altered).unwrap();
    let o = gm(
        dir,
        &[
            "receipt",
            "verify",
            "altered.json",
            "contract.pdf",
            "--genesis",
            "data/genesis.json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Another chain's genesis does not vouch for this receipt.
    let other = dev_chain(1);
    let o = gm(
        dir,
        &[
            "receipt",
            "verify",
            "receipt.json",
            "--genesis",
            other.dir.join("data/genesis.json").to_str().unwrap(),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Graceful stop, then the whole store verifies.
    let st = node.signal("-TERM");
    assert!(
        st.success(),
        "SIGTERM exit: {st:?}; log: {}",
        log_of(&chain)
    );
    let out = ok(dir, &["node", "verify-store", "--config", "node.toml"]);
    assert!(out.contains("store verified"), "{out}");
}

#[test]
fn bad_transactions_get_their_code_and_change_nothing() {
    let chain = dev_chain(3);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    let (u0, c0) = identity(dir, "clients/0");
    let (u1, c1) = identity(dir, "clients/1");
    let (admin, admin_cert) = identity(dir, "admin");
    let (ca_key, ca_cert) = identity(dir, "ca");
    let rt = rt();
    rt.block_on(async {
        let mut c = ChainClient::connect(chain.grpc.clone()).await.unwrap();
        // A good one first, so the chain has a height and u1 a committed anchor.
        let good = signed(&u1, &c1, 500, "attestation", "anchor", anchor_args(b"good"));
        let good_bytes = good.to_bytes();
        assert!(submit(&mut c, good_bytes.clone()).await.unwrap().committed);
        let h0 = height(&mut c).await;

        let doc = b"never anchored";
        let wrong_chain = {
            let mut t = signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(doc)).tx;
            t.chain_id = ChainId::new("other-chain").unwrap();
            SignedTx::sign(t, &u0, &UserId::default())
                .unwrap()
                .to_bytes()
        };
        let wrong_signature = {
            let mut s = signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(doc));
            let other = signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(b"x"));
            s.signature = other.signature;
            s.to_bytes()
        };
        let other_key = {
            // Signed by u1's key but carrying u0's certificate.
            let t = signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(doc)).tx;
            SignedTx::sign(t, &u1, &UserId::default())
                .unwrap()
                .to_bytes()
        };
        let mut truncated =
            signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(doc)).to_bytes();
        truncated.truncate(truncated.len() - 5);
        let mut trailing =
            signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(doc)).to_bytes();
        trailing.push(0);
        let oversized = signed(
            &u0,
            &c0,
            500,
            "attestation",
            "anchor",
            vec![
                vec![0u8; 32],
                b"document".to_vec(),
                Vec::new(),
                vec![7u8; 200 * 1024],
            ],
        )
        .to_bytes();
        let expired = signed(&u0, &c0, h0, "attestation", "anchor", anchor_args(doc)).to_bytes();
        let too_far = signed(
            &u0,
            &c0,
            h0 + 5000,
            "attestation",
            "anchor",
            anchor_args(doc),
        )
        .to_bytes();
        let bad_args =
            signed(&u0, &c0, 500, "attestation", "anchor", vec![vec![1u8; 31]]).to_bytes();
        let unknown = signed(&u0, &c0, 500, "payments", "transfer", vec![]).to_bytes();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let crl = pki::issue_crl(
            &ca_cert,
            &ca_key,
            2,
            UnixTime(now - 30),
            UnixTime(now + 86400),
            &[RevokedEntry {
                serial: c0.serial(),
                revoked_at: UnixTime(now - 30),
                reason: RevocationReason::KeyCompromise,
            }],
        )
        .unwrap();
        let unauthorised = signed(
            &u1,
            &c1,
            500,
            "identity",
            "update_crl",
            vec![crl.der().to_vec()],
        )
        .to_bytes();

        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", Vec::new(), "TX_MALFORMED"),
            ("garbage", b"not a transaction".to_vec(), "TX_MALFORMED"),
            ("truncated", truncated, "TX_MALFORMED"),
            ("trailing byte", trailing, "TX_MALFORMED"),
            ("oversized", oversized, "TX_TOO_LARGE"),
            ("wrong chain", wrong_chain, "TX_WRONG_CHAIN"),
            ("wrong signature", wrong_signature, "TX_SIGNATURE_INVALID"),
            ("signed by another key", other_key, "TX_SIGNATURE_INVALID"),
            ("expired", expired, "TX_EXPIRED"),
            ("expiry too far", too_far, "TX_EXPIRY_TOO_FAR"),
            ("replayed", good_bytes.clone(), "TX_DUPLICATE"),
            ("bad arguments", bad_args, "TX_BAD_ARGUMENTS"),
            ("unknown call", unknown, "TX_UNKNOWN_CALL"),
            (
                "user changes identity data",
                unauthorised,
                "TX_PERMISSION_DENIED",
            ),
        ];
        for (name, bytes, code) in cases {
            let e = submit(&mut c, bytes).await.expect_err(name);
            assert!(
                e.message().starts_with(code),
                "{name}: expected {code}, got {}",
                e.message()
            );
            let meta = e
                .metadata()
                .get(api::CODE_METADATA_KEY)
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(meta.as_deref(), Some(code), "{name}: metadata");
        }
        // Nothing changed: same height, the document is not anchored.
        assert_eq!(height(&mut c).await, h0);
        let q = c
            .get_attestation(pb::GetAttestationRequest {
                key: Some(pb::get_attestation_request::Key::Digest(
                    crypto_sm::sm3::sm3(doc).as_bytes().to_vec(),
                )),
            })
            .await;
        assert_eq!(q.unwrap_err().code(), tonic::Code::NotFound);

        // The admin records the CRL: from the next block on, u0 is refused.
        let revoke = signed(
            &admin,
            &admin_cert,
            500,
            "identity",
            "update_crl",
            vec![crl.der().to_vec()],
        );
        let r = submit(&mut c, revoke.to_bytes()).await.unwrap();
        let receipt = types::Receipt::from_bytes(&r.receipt, &Limits::default()).unwrap();
        assert_eq!(receipt.status, types::Status::Success, "{receipt:?}");
        let revoked = signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(doc)).to_bytes();
        let e = submit(&mut c, revoked).await.unwrap_err();
        assert!(
            e.message().starts_with("TX_SIGNER_REVOKED"),
            "{}",
            e.message()
        );
        // u1 still can.
        let fine = signed(&u1, &c1, 500, "attestation", "anchor", anchor_args(doc)).to_bytes();
        assert!(submit(&mut c, fine).await.unwrap().committed);
        let _ = Crl::from_der(crl.der()).unwrap();
    });
}

#[test]
fn sigkill_during_commits_loses_no_acknowledged_transaction() {
    let chain = dev_chain(8);
    let dir = chain.dir.clone();
    let mut node = Node::start(&chain);
    let ids: Vec<_> = (0..8)
        .map(|i| identity(&dir, &format!("clients/{i}")))
        .collect();
    let ids = Arc::new(ids);
    let acked: Arc<Mutex<Vec<(types::TxId, u64)>>> = Arc::default();
    let rt = rt();
    // Load: 32 submitters, each waiting for its commit, until the node dies.
    let load = {
        let acked = acked.clone();
        let ids = ids.clone();
        let url = chain.grpc.clone();
        rt.spawn(async move {
            let c = ChainClient::connect(url).await.unwrap();
            let mut tasks = Vec::new();
            for w in 0..32usize {
                let mut c = c.clone();
                let acked = acked.clone();
                let ids = ids.clone();
                tasks.push(tokio::spawn(async move {
                    for n in 0.. {
                        let (k, cert) = &ids[(w + n) % ids.len()];
                        let doc = format!("load {w} {n}");
                        let tx = signed(
                            k,
                            cert,
                            900,
                            "attestation",
                            "anchor",
                            anchor_args(doc.as_bytes()),
                        );
                        match submit(&mut c, tx.to_bytes()).await {
                            Ok(r) if r.committed => {
                                acked.lock().unwrap().push((tx.tx_id(), r.height))
                            }
                            Ok(_) => panic!("no commit"),
                            Err(_) => return,
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 {
        assert!(
            Instant::now() < deadline,
            "load too slow: {}",
            log_of(&chain)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kill while blocks are being committed.
    let st = node.signal("-KILL");
    assert!(!st.success());
    rt.block_on(load).unwrap();
    let acknowledged = acked.lock().unwrap().clone();
    assert!(acknowledged.len() >= 300);

    // Restart: the tip check passes, every acknowledged transaction is there.
    let mut node = Node::start(&chain);
    rt.block_on(async {
        let mut c = ChainClient::connect(chain.grpc.clone()).await.unwrap();
        for (id, h) in &acknowledged {
            let t = c
                .get_transaction(pb::TxIdRequest {
                    tx_id: id.as_bytes().to_vec(),
                })
                .await
                .unwrap_or_else(|e| panic!("acknowledged {id} lost: {e}"))
                .into_inner();
            assert_eq!(t.height, *h);
        }
        // The chain goes on; then, quiescent, WAL syncs equal blocks committed since start.
        let (k, cert) = &ids[0];
        for n in 0..20 {
            let tx = signed(
                k,
                cert,
                900,
                "attestation",
                "anchor",
                anchor_args(format!("after {n}").as_bytes()),
            );
            assert!(submit(&mut c, tx.to_bytes()).await.unwrap().committed);
        }
    });
    let page = scrape(&chain.metrics);
    let blocks = metric(&page, "gmchain_blocks_committed_total");
    let syncs = metric(&page, "gmchain_rocksdb_wal_syncs_total");
    assert!(blocks >= 1);
    assert_eq!(
        syncs, blocks,
        "one WAL sync per block, never per transaction: {page}"
    );
    let txs = metric(&page, "gmchain_txs_committed_total");
    assert_eq!(txs, 20);
    assert!(node.signal("-TERM").success());
    let out = ok(&dir, &["node", "verify-store", "--config", "node.toml"]);
    assert!(out.contains("store verified"), "{out}");
}

#[test]
fn node_refuses_bad_configs_and_stores() {
    let chain = dev_chain(1);
    let dir = &chain.dir;
    // A second init on the same store is refused.
    fails(
        dir,
        &["node", "init", "--config", "node.toml"],
        2,
        "already holds a store",
    );
    // A non-loopback address, or a key file in production mode: refused, naming the field.
    let text = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    for (file, from, to, field) in [
        (
            "open.toml",
            "listen = \"127.0.0.1:",
            "listen = \"0.0.0.0:",
            "api.listen",
        ),
        (
            "prod.toml",
            "mode = \"development\"",
            "mode = \"production\"",
            "key.key",
        ),
    ] {
        std::fs::write(dir.join(file), text.replace(from, to)).unwrap();
        fails(dir, &["node", "start", "--config", file], 2, field);
    }
    // A replaced genesis file is refused at start.
    let g = std::fs::read_to_string(dir.join("data/genesis.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&g).unwrap();
    let ts = v["timestamp_ms"].as_u64().expect("timestamp_ms");
    std::fs::write(
        dir.join("data/genesis.json"),
        g.replace(&ts.to_string(), &(ts + 1).to_string()),
    )
    .unwrap();
    fails(
        dir,
        &["node", "start", "--config", "node.toml"],
        1,
        "genesis",
    );
    fails(
        dir,
        &["node", "verify-store", "--config", "node.toml"],
        1,
        "genesis",
    );
}

fn write_key(dir: &Path, name: &str, key: &crypto_sm::SoftSigner, cert: &Certificate) {
    let pem = crypto_sm::keys::encode_encrypted_pkcs8_pem(
        key.private_key(),
        PASS,
        crypto_sm::keys::MIN_ITERATIONS,
        &SystemRandom,
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.key.pem")), pem).unwrap();
    std::fs::write(dir.join(format!("{name}.crt.pem")), cert.to_pem()).unwrap();
}

#[test]
fn a_new_organisation_registers_by_its_admin_and_its_users_get_offline_receipts() {
    let chain = dev_chain(1);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    let (root_key, root) = identity(dir, "ca");
    let provider = SoftwareProvider::new(Arc::new(SystemRandom));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let validity = pki::Validity {
        not_before: UnixTime(now - 600),
        not_after: UnixTime(now + 86400 * 30),
    };
    let issue = |issuer: &Certificate,
                 issuer_key: &dyn Signer,
                 role: pki::Role,
                 cn: &str,
                 key: &dyn Signer| {
        pki::issue(
            issuer,
            issuer_key,
            &pki::IssueRequest {
                role,
                common_name: cn,
                organisation: "Second Bureau",
                public_key: &key.public_key(),
                serial: pki::Serial::random(&SystemRandom).unwrap(),
                validity,
            },
        )
        .unwrap()
    };
    // The consortium root (registered at genesis) issues the new organisation's CA.
    let agency_key = provider.generate().unwrap();
    let agency = issue(
        &root,
        &root_key,
        pki::Role::AgencyCa,
        "Second Bureau CA",
        &agency_key,
    );
    let agency_crl = pki::issue_crl(
        &agency,
        &agency_key,
        1,
        UnixTime(now - 60),
        UnixTime(now + 86400),
        &[],
    )
    .unwrap();
    std::fs::write(dir.join("agency.crt.pem"), agency.to_pem()).unwrap();
    std::fs::write(dir.join("agency.crl.pem"), agency_crl.to_pem()).unwrap();
    let admin_key = provider.generate().unwrap();
    let admin = issue(
        &agency,
        &agency_key,
        pki::Role::Admin,
        "second-admin",
        &admin_key,
    );
    write_key(dir, "second-admin", &admin_key, &admin);
    let user_key = provider.generate().unwrap();
    let user = issue(
        &agency,
        &agency_key,
        pki::Role::User,
        "second-user",
        &user_key,
    );
    write_key(dir, "second-user", &user_key, &user);

    // Before registration the new organisation's users are strangers.
    std::fs::write(dir.join("memo.txt"), b"inter-agency memo").unwrap();
    let attest = [
        "tx",
        "attest",
        "memo.txt",
        "--key",
        "second-user.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "second-user.crt.pem",
        "--node",
        &chain.grpc,
        "--out",
        "memo.receipt.json",
    ];
    fails(dir, &attest, 2, "TX_CERT_INVALID");
    // A user of the founding organisation cannot register it; its own admin can.
    let register = |who: &str| -> Vec<String> {
        [
            "tx",
            "identity",
            "register-org",
            "--ca-cert",
            "agency.crt.pem",
            "--crl",
            "agency.crl.pem",
            "--key",
            &format!("{who}.key.pem"),
            "--pass-file",
            "pass",
            "--cert",
            &format!("{who}.crt.pem"),
            "--node",
            &chain.grpc,
        ]
        .map(String::from)
        .to_vec()
    };
    let stranger = register("clients/0");
    fails(
        dir,
        &stranger.iter().map(String::as_str).collect::<Vec<_>>(),
        2,
        "TX_",
    );
    let admin = register("second-admin");
    ok(dir, &admin.iter().map(String::as_str).collect::<Vec<_>>());
    ok(dir, &attest);
    // The receipt carries the new CA as an intermediate and both CRLs; the genesis file
    // (which knows only the founding organisation) suffices to verify it offline.
    let out = ok(
        dir,
        &[
            "receipt",
            "verify",
            "memo.receipt.json",
            "memo.txt",
            "--genesis",
            "data/genesis.json",
        ],
    );
    assert!(
        out.contains("second-user") && out.contains("Second Bureau"),
        "{out}"
    );

    // Its admin revokes the user with a new CRL: the user is refused from then on.
    let crl2 = pki::issue_crl(
        &agency,
        &agency_key,
        2,
        UnixTime(now - 30),
        UnixTime(now + 86400),
        &[RevokedEntry {
            serial: user.serial(),
            revoked_at: UnixTime(now - 30),
            reason: RevocationReason::KeyCompromise,
        }],
    )
    .unwrap();
    std::fs::write(dir.join("agency2.crl.pem"), crl2.to_pem()).unwrap();
    ok(
        dir,
        &[
            "tx",
            "identity",
            "revoke",
            "--crl",
            "agency2.crl.pem",
            "--key",
            "second-admin.key.pem",
            "--pass-file",
            "pass",
            "--cert",
            "second-admin.crt.pem",
            "--node",
            &chain.grpc,
        ],
    );
    std::fs::write(dir.join("memo2.txt"), b"second memo").unwrap();
    fails(
        dir,
        &[
            "tx",
            "attest",
            "memo2.txt",
            "--key",
            "second-user.key.pem",
            "--pass-file",
            "pass",
            "--cert",
            "second-user.crt.pem",
            "--node",
            &chain.grpc,
        ],
        2,
        "TX_SIGNER_REVOKED",
    );
}

/// Arguments of an attestation with the largest metadata and pointer the contract accepts
/// (about 8 KiB), for document `n`.
fn maximal_anchor_args(n: usize) -> Vec<Vec<u8>> {
    vec![
        crypto_sm::sm3::sm3(format!("backlog document {n}").as_bytes())
            .as_bytes()
            .to_vec(),
        vec![b'k'; execution::MAX_KIND_LEN],
        vec![b'm'; execution::MAX_METADATA_LEN],
        vec![0x5a; execution::MAX_POINTER_LEN],
    ]
}

/// Reads every block above genesis through the API and decodes it under the chain's limits;
/// returns the encoded size and transaction count of each.
async fn read_blocks(
    c: &mut ChainClient<tonic::transport::Channel>,
    limits: &Limits,
    tip: u64,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for h in 1..=tip {
        let b = c
            .get_block(pb::GetBlockRequest { height: Some(h) })
            .await
            .unwrap_or_else(|e| panic!("block {h} unreadable: {e}"))
            .into_inner();
        let block = types::Block::from_bytes(&b.block, limits)
            .unwrap_or_else(|e| panic!("block {h} ({} bytes): {e}", b.block.len()));
        assert!(
            b.block.len() <= limits.max_block_size,
            "block {h} is {} bytes, over max_block_size = {}",
            b.block.len(),
            limits.max_block_size
        );
        out.push((b.block.len(), block.txs.len()));
    }
    out
}

/// Issue 9, defect 1: a pool backlog past one block's byte budget. One user's 2,000 maximal
/// attestations (about 9.4 KB each, over 18 MB together, the chain's `max_txs_per_block`) are
/// all admitted while the producer waits for a full block; the block it seals stays within
/// the `max_block_size` its readers enforce, the rest waits in the pool for the next block,
/// every block reads back, the node restarts, nothing admitted is lost, and `verify-store`
/// passes. The chain's limits are the defaults; only the node's block interval is lengthened
/// so that the whole backlog is in the pool when the producer seals.
#[test]
fn a_pool_backlog_past_the_block_byte_budget_commits_in_readable_blocks() {
    let chain = dev_chain(1);
    let dir = &chain.dir;
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    assert!(config.contains("interval_ms = 50"), "{config}");
    std::fs::write(
        dir.join("node.toml"),
        config.replace("interval_ms = 50", "interval_ms = 60000"),
    )
    .unwrap();
    let genesis =
        execution::Genesis::from_json(&std::fs::read(dir.join("data/genesis.json")).unwrap())
            .unwrap();
    let limits = genesis.params.limits();

    let count = usize::try_from(genesis.params.max_txs_per_block).unwrap();
    let (key, cert) = identity(dir, "clients/0");
    let txs: Vec<SignedTx> = (0..count)
        .map(|n| {
            signed(
                &key,
                &cert,
                900,
                "attestation",
                "anchor",
                maximal_anchor_args(n),
            )
        })
        .collect();
    // Each transaction costs its encoding and its 4-byte length prefix in a block.
    let total: usize = txs.iter().map(|t| t.to_bytes().len() + 4).sum();
    assert!(
        total > limits.max_block_size,
        "{count} transactions take {total} bytes, not more than one block's {}",
        limits.max_block_size
    );

    let mut node = Node::start(&chain);
    let rt = rt();
    let channel = rt.block_on(async {
        tonic::transport::Endpoint::from_shared(chain.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    });
    let client = move || ChainClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    // Submit them all (admission only; commits are checked by id afterwards).
    let ids: Vec<types::TxId> = txs.iter().map(SignedTx::tx_id).collect();
    let encoded: Arc<Vec<Vec<u8>>> = Arc::new(txs.iter().map(Encode::to_bytes).collect());
    rt.block_on(async {
        let workers = 8;
        let mut tasks = Vec::new();
        for w in 0..workers {
            let mut c = client();
            let encoded = encoded.clone();
            tasks.push(tokio::spawn(async move {
                for bytes in encoded.iter().skip(w).step_by(workers) {
                    c.submit_transaction(pb::SubmitTransactionRequest {
                        signed_tx: bytes.clone(),
                        wait_for_commit: false,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("refused at admission: {e}"));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });

    // The producer seals the backlog; every block it wrote reads back within the limit.
    let mut c = client();
    let deadline = Instant::now() + Duration::from_secs(120);
    let tip = loop {
        let h = rt.block_on(height(&mut c));
        if h >= 1 {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "no block sealed: {}",
            log_of(&chain)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let blocks = rt.block_on(read_blocks(&mut c, &limits, tip));
    let (first_size, first_txs) = blocks[0];
    assert!(
        first_txs < count,
        "block 1 holds all {count} transactions ({first_size} bytes)"
    );
    // Filled to its byte budget: not one more maximal transaction would have fitted.
    let entry = total / count;
    assert!(
        first_size + 2 * entry > limits.max_block_size,
        "block 1 is {first_size} bytes with {first_txs} transactions: sealed well under the budget"
    );

    // SIGTERM commits what waits in the pool (the rest of the backlog) and stops cleanly.
    let st = node.signal("-TERM");
    assert!(
        st.success(),
        "SIGTERM exit: {st:?}; log: {}",
        log_of(&chain)
    );
    // The node restarts on its store; every admitted transaction is committed.
    let mut node = Node::start(&chain);
    let mut c = client();
    rt.block_on(async {
        let tip = height(&mut c).await;
        let blocks = read_blocks(&mut c, &limits, tip).await;
        assert!(
            blocks.len() >= 2,
            "the backlog went into one block: {blocks:?}"
        );
        assert_eq!(
            blocks.iter().map(|b| b.1).sum::<usize>(),
            count,
            "{blocks:?}"
        );
        let mut per_height = vec![0usize; blocks.len() + 1];
        for id in &ids {
            let r = c
                .get_receipt(pb::TxIdRequest {
                    tx_id: id.as_bytes().to_vec(),
                })
                .await
                .unwrap_or_else(|e| panic!("admitted {id} lost: {e}"))
                .into_inner();
            let receipt = types::Receipt::from_bytes(&r.receipt, &limits).unwrap();
            assert_eq!(receipt.status, types::Status::Success, "{receipt:?}");
            per_height[usize::try_from(r.height).unwrap()] += 1;
        }
        assert_eq!(
            &per_height[1..],
            blocks.iter().map(|b| b.1).collect::<Vec<_>>().as_slice()
        );
        // Transaction queries read the block: the first and the last admitted.
        for id in [ids[0], ids[count - 1]] {
            let t = c
                .get_transaction(pb::TxIdRequest {
                    tx_id: id.as_bytes().to_vec(),
                })
                .await
                .unwrap_or_else(|e| panic!("transaction {id} unreadable: {e}"))
                .into_inner();
            assert_eq!(
                SignedTx::from_bytes(&t.signed_tx, &limits).unwrap().tx_id(),
                id
            );
        }
    });
    assert!(node.signal("-TERM").success());
    let out = ok(dir, &["node", "verify-store", "--config", "node.toml"]);
    assert!(out.contains("store verified"), "{out}");

    // A chain whose max_tx_size cannot fit in one block with its header is refused at
    // genesis, naming the field and both numbers; the largest that fits is accepted.
    let fits = limits.largest_tx_in_block(&genesis.chain_id);
    for (size, data, accepted) in [(fits + 1, "too-big", false), (fits, "just-fits", true)] {
        let file = format!("{data}.toml");
        std::fs::write(
            dir.join(&file),
            config
                .replace("data_dir = \"data\"", &format!("data_dir = \"{data}\""))
                .replace(
                    "expiry_window = 1000",
                    &format!("expiry_window = 1000\nmax_tx_size = {size}"),
                ),
        )
        .unwrap();
        if accepted {
            ok(dir, &["node", "init", "--config", &file]);
        } else {
            let err = fails(
                dir,
                &["node", "init", "--config", &file],
                2,
                "params.max_tx_size",
            );
            assert!(
                err.contains(&size.to_string())
                    && err.contains(&limits.max_block_size.to_string())
                    && err.contains(&fits.to_string()),
                "{err}"
            );
        }
    }
}
