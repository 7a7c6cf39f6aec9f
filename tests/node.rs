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

use crate::dev_node;
use dev_node::{Node, dev_chain, fails, gm, identity, log_of, now_secs, ok, scrape, write_key};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
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
        fuel_limit: None,
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
        let mut c = dev_node::client(&chain).await;
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
        // Over the chain's max_tx_size (128 KiB) by a few bytes, within the transport's decode
        // limit (max_tx_size + 64): refused by admission with its code.
        let with_pointer = |n: usize| {
            signed(
                &u0,
                &c0,
                500,
                "attestation",
                "anchor",
                vec![
                    vec![0u8; 32],
                    b"document".to_vec(),
                    Vec::new(),
                    vec![7u8; n],
                ],
            )
            .to_bytes()
        };
        let base = with_pointer(0).len();
        // (The DER signature's length varies by a few bytes, so the size is a range.)
        let oversized = with_pointer(128 * 1024 + 8 - base);
        assert!(
            (128 * 1024 + 1..=128 * 1024 + 64).contains(&oversized.len()),
            "{}",
            oversized.len()
        );
        // Far over it: the transport refuses to decode it at all (issue 9: the decode limit is
        // the transaction limit plus framing, not 4 MiB).
        let huge = with_pointer(200 * 1024);
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
        let e = submit(&mut c, huge).await.expect_err("huge");
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{}", e.message());
        assert!(
            e.message().contains("decoded message length too large"),
            "{}",
            e.message()
        );
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

        // One peer holds at most api.max_subscriptions_per_peer (8) block subscriptions; the
        // ninth is refused with its code, and a slot is freed when a subscriber goes away.
        let mut streams = Vec::new();
        for _ in 0..8 {
            let s = c
                .subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 0 })
                .await
                .expect("a subscription within the limit");
            streams.push(s.into_inner());
        }
        let e = c
            .subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 0 })
            .await
            .expect_err("the ninth subscription");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{}", e.message());
        assert_eq!(
            e.metadata()
                .get(api::CODE_METADATA_KEY)
                .map(|v| v.to_str().unwrap()),
            Some("NODE_SUBSCRIPTIONS_FULL")
        );
        drop(streams.pop());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match c
                .subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 0 })
                .await
            {
                Ok(s) => {
                    streams.push(s.into_inner());
                    break;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "no slot freed: {}", e.message());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
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
        let c = rt.block_on(dev_node::client(&chain));
        rt.spawn(async move {
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
        let mut c = dev_node::client(&chain).await;
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
    // A plain-HTTP listener (metrics, public reads) on a non-loopback address, or a key file
    // in production mode: refused, naming the field. (The API itself is mutual GM TLS and may
    // listen on any address.)
    let text = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    for (file, from, to, field) in [
        (
            "open.toml",
            "metrics_listen = \"127.0.0.1:",
            "metrics_listen = \"0.0.0.0:",
            "api.metrics_listen",
        ),
        (
            "public.toml",
            "[api]\n",
            "[api]\npublic_listen = \"0.0.0.0:1\"\n",
            "api.public_listen",
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

/// An organisation CA issued by the development root (Dev Bureau), with its CRL written to
/// `{file}.crt.pem` and `{file}.crl.pem` in the chain's directory.
struct OrgCa {
    name: String,
    file: String,
    key: crypto_sm::SoftSigner,
    cert: Certificate,
}

impl OrgCa {
    fn issue(dir: &Path, name: &str, file: &str) -> OrgCa {
        let (root_key, root) = identity(dir, "ca");
        let key = SoftwareProvider::new(Arc::new(SystemRandom))
            .generate()
            .unwrap();
        let cert = issue_cert(
            &root,
            &root_key,
            pki::Role::AgencyCa,
            name,
            &format!("{name} CA"),
            &key,
        );
        let ca = OrgCa {
            name: name.into(),
            file: file.into(),
            key,
            cert,
        };
        std::fs::write(dir.join(format!("{file}.crt.pem")), ca.cert.to_pem()).unwrap();
        ca.write_crl(dir, &format!("{file}.crl.pem"), 1, &[]);
        ca
    }

    /// Issues a member of `role` named `cn` and writes its key and certificate as `cn`.
    fn member(&self, dir: &Path, role: pki::Role, cn: &str) -> Certificate {
        let key = SoftwareProvider::new(Arc::new(SystemRandom))
            .generate()
            .unwrap();
        let cert = issue_cert(&self.cert, &self.key, role, &self.name, cn, &key);
        write_key(dir, cn, &key, &cert);
        cert
    }

    fn write_crl(&self, dir: &Path, file: &str, number: u64, revoked: &[RevokedEntry]) -> Crl {
        let now = now_secs();
        let crl = pki::issue_crl(
            &self.cert,
            &self.key,
            number,
            UnixTime(now - 60 + number),
            UnixTime(now + 86400),
            revoked,
        )
        .unwrap();
        std::fs::write(dir.join(file), crl.to_pem()).unwrap();
        crl
    }
}

fn issue_cert(
    issuer: &Certificate,
    issuer_key: &dyn Signer,
    role: pki::Role,
    org: &str,
    cn: &str,
    key: &dyn Signer,
) -> Certificate {
    let now = now_secs();
    pki::issue(
        issuer,
        issuer_key,
        &pki::IssueRequest {
            role,
            common_name: cn,
            organisation: org,
            public_key: &key.public_key(),
            serial: pki::Serial::random(&SystemRandom).unwrap(),
            // Within the issuer's own validity, as pki requires.
            validity: pki::Validity {
                not_before: UnixTime(now - 600).max(issuer.validity().not_before),
                not_after: UnixTime(now + 86400 * 30).min(issuer.validity().not_after),
            },
        },
    )
    .unwrap()
}

/// "Second Bureau": its CA (files `agency.*`) from the development root, which sponsors it,
/// an admin `second-admin` and a user `second-user`; returns the CA and the user's certificate.
fn second_bureau(dir: &Path) -> (OrgCa, Certificate) {
    let agency = OrgCa::issue(dir, "Second Bureau", "agency");
    agency.member(dir, pki::Role::Admin, "second-admin");
    let user = agency.member(dir, pki::Role::User, "second-user");
    (agency, user)
}

/// `gmchain tx identity METHOD ARGS… --key WHO … --node`.
fn identity_tx(chain: &dev_node::Chain, method: &str, args: &[&str], who: &str) -> Vec<String> {
    let mut v: Vec<String> = ["tx", "identity", method].map(String::from).to_vec();
    v.extend(args.iter().map(|a| a.to_string()));
    v.extend(
        [
            "--key",
            &format!("{who}.key.pem"),
            "--pass-file",
            "pass",
            "--cert",
            &format!("{who}.crt.pem"),
            "--node",
            &chain.grpc,
        ]
        .map(String::from),
    );
    v
}

/// `gmchain tx attest FILE` by `who` (writing FILE first), with `--out OUT` when given.
fn attest(chain: &dev_node::Chain, who: &str, file: &str, out: Option<&str>) -> Vec<String> {
    std::fs::write(chain.dir.join(file), format!("{file} by {who}")).unwrap();
    let mut v: Vec<String> = [
        "tx",
        "attest",
        file,
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
    .to_vec();
    if let Some(o) = out {
        v.extend(["--out".to_string(), o.to_string()]);
    }
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Registers `ca` by its admin `admin` (already issued); returns the transaction id.
fn register(chain: &dev_node::Chain, ca: &OrgCa, admin: &str) -> String {
    let args = identity_tx(
        chain,
        "register-org",
        &[
            "--ca-cert",
            &format!("{}.crt.pem", ca.file),
            "--crl",
            &format!("{}.crl.pem", ca.file),
        ],
        admin,
    );
    let out = ok(&chain.dir, &strs(&args));
    out.split_once(": tx ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("the command names the transaction")
        .to_string()
}

fn verify_receipt(dir: &Path, receipt: &str, file: &str) -> String {
    ok(
        dir,
        &[
            "receipt",
            "verify",
            receipt,
            file,
            "--genesis",
            "data/genesis.json",
        ],
    )
}

#[test]
fn a_new_organisation_registers_by_its_admin_and_its_users_get_offline_receipts() {
    let chain = dev_chain(1);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    // The consortium root (registered at genesis, sponsoring "Second Bureau") issues the new
    // organisation's CA.
    let (agency, user) = second_bureau(dir);

    // Before registration the new organisation's users are strangers.
    let memo = attest(&chain, "second-user", "memo.txt", Some("memo.receipt.json"));
    fails(dir, &strs(&memo), 2, "TX_CERT_INVALID");
    // A user of the founding organisation cannot register it; its own admin can.
    let args = ["--ca-cert", "agency.crt.pem", "--crl", "agency.crl.pem"];
    fails(
        dir,
        &strs(&identity_tx(&chain, "register-org", &args, "clients/0")),
        2,
        "TX_PERMISSION_DENIED",
    );
    let reg = register(&chain, &agency, "second-admin");
    // The registration's own receipt verifies offline: its new CA and CRL come from the
    // transaction (found in review: the node built a chain without them).
    let json = ok(dir, &["query", "receipt", &reg, "--node", &chain.grpc]);
    std::fs::write(dir.join("register.receipt.json"), json).unwrap();
    let out = ok(
        dir,
        &[
            "receipt",
            "verify",
            "register.receipt.json",
            "--genesis",
            "data/genesis.json",
        ],
    );
    assert!(out.contains("identity.register_org"), "{out}");
    ok(dir, &strs(&memo));
    // The receipt carries the new CA as an intermediate and both CRLs; the genesis file
    // (which knows only the founding organisation) suffices to verify it offline.
    let out = verify_receipt(dir, "memo.receipt.json", "memo.txt");
    assert!(
        out.contains("second-user") && out.contains("Second Bureau"),
        "{out}"
    );

    // Its admin revokes the user with a new CRL: the user is refused from then on.
    agency.write_crl(
        dir,
        "agency2.crl.pem",
        2,
        &[RevokedEntry {
            serial: user.serial(),
            revoked_at: UnixTime(now_secs() - 30),
            reason: RevocationReason::KeyCompromise,
        }],
    );
    ok(
        dir,
        &strs(&identity_tx(
            &chain,
            "revoke",
            &["--crl", "agency2.crl.pem"],
            "second-admin",
        )),
    );
    fails(
        dir,
        &strs(&attest(&chain, "second-user", "memo2.txt", None)),
        2,
        "TX_SIGNER_REVOKED",
    );
}

#[test]
fn revoking_a_registered_agency_ca_takes_effect_on_the_chain() {
    // Issue 9, defect 2, as the review reproduced it: the root revokes the agency's CA and the
    // root organisation's admin records that CRL. Before the fix the agency's users (and one
    // newly issued with the revoked CA's key) kept committing, and their offline receipts then
    // failed as revoked.
    let chain = dev_chain(1);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    let (agency, _) = second_bureau(dir);
    register(&chain, &agency, "second-admin");
    ok(
        dir,
        &strs(&attest(
            &chain,
            "second-user",
            "before.txt",
            Some("before.receipt.json"),
        )),
    );

    let (root_key, root) = identity(dir, "ca");
    let now = now_secs();
    let root_crl = pki::issue_crl(
        &root,
        &root_key,
        2,
        UnixTime(now - 10),
        UnixTime(now + 86400),
        &[RevokedEntry {
            serial: agency.cert.serial(),
            revoked_at: UnixTime(now - 10),
            reason: RevocationReason::CaCompromise,
        }],
    )
    .unwrap();
    std::fs::write(dir.join("root2.crl.pem"), root_crl.to_pem()).unwrap();
    ok(
        dir,
        &strs(&identity_tx(
            &chain,
            "revoke",
            &["--crl", "root2.crl.pem"],
            "admin",
        )),
    );

    let err = fails(
        dir,
        &strs(&attest(&chain, "second-user", "after.txt", None)),
        2,
        "TX_SIGNER_REVOKED",
    );
    assert!(err.contains("Second Bureau CA"), "{err}");
    agency.member(dir, pki::Role::User, "newcomer");
    fails(
        dir,
        &strs(&attest(&chain, "newcomer", "new.txt", None)),
        2,
        "TX_SIGNER_REVOKED",
    );
    // The founding organisation is unaffected, and the receipt of the earlier transaction
    // still verifies as of its block.
    ok(
        dir,
        &strs(&attest(&chain, "clients/0", "founding.txt", None)),
    );
    verify_receipt(dir, "before.receipt.json", "before.txt");
}

#[test]
fn the_sponsor_deregisters_and_replaces_an_organisation() {
    let chain = dev_chain(1);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    let (agency, _) = second_bureau(dir);
    register(&chain, &agency, "second-admin");
    let o = gm(
        dir,
        &strs(&attest(
            &chain,
            "second-user",
            "old.txt",
            Some("old.receipt.json"),
        )),
    );
    let said = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{said}");
    let old_tx = said
        .split_once(" in tx ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("the attest output names the transaction id")
        .to_string();

    // Only the sponsor's admin: not the organisation's own, not a founding one.
    let dereg = |who: &str, org: &str| identity_tx(&chain, "deregister-org", &["--org", org], who);
    fails(
        dir,
        &strs(&dereg("second-admin", "Second Bureau")),
        2,
        "TX_PERMISSION_DENIED",
    );
    fails(dir, &strs(&dereg("admin", "Dev Bureau")), 2, "founding");
    ok(dir, &strs(&dereg("admin", "Second Bureau")));
    fails(
        dir,
        &strs(&attest(&chain, "second-user", "gone.txt", None)),
        2,
        "TX_ORG_REMOVED",
    );
    // Earlier transactions still verify offline, as of their block, and so does a receipt
    // the node builds for them now.
    verify_receipt(dir, "old.receipt.json", "old.txt");
    let again = ok(dir, &["query", "receipt", &old_tx, "--node", &chain.grpc]);
    std::fs::write(dir.join("again.receipt.json"), again).unwrap();
    verify_receipt(dir, "again.receipt.json", "old.txt");
    // The organisation's own admin cannot re-register the name (committed, then failed).
    let rereg = identity_tx(
        &chain,
        "register-org",
        &["--ca-cert", "agency.crt.pem", "--crl", "agency.crl.pem"],
        "second-admin",
    );
    fails(dir, &strs(&rereg), 1, "IDENTITY_ORG_REMOVED");

    // The sponsor re-admits it with a new CA: no overlap with the old one.
    let new_ca = OrgCa::issue(dir, "Second Bureau", "agency-new");
    new_ca.member(dir, pki::Role::User, "second-user-new");
    let replace = identity_tx(
        &chain,
        "replace-ca",
        &[
            "--ca-cert",
            "agency-new.crt.pem",
            "--crl",
            "agency-new.crl.pem",
        ],
        "admin",
    );
    ok(dir, &strs(&replace));
    fails(
        dir,
        &strs(&attest(&chain, "second-user", "stale.txt", None)),
        2,
        "TX_CA_REPLACED",
    );
    ok(
        dir,
        &strs(&attest(
            &chain,
            "second-user-new",
            "new.txt",
            Some("new.receipt.json"),
        )),
    );
    let out = verify_receipt(dir, "new.receipt.json", "new.txt");
    assert!(out.contains("Second Bureau"), "{out}");
}

#[test]
fn a_root_registers_only_the_organisations_it_sponsors() {
    // Issue 9, defect 5: the dev root sponsors "Second Bureau" and "Third Bureau" only.
    let chain = dev_chain(1);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    let squatter = OrgCa::issue(dir, "Squatter Agency", "squatter");
    squatter.member(dir, pki::Role::Admin, "squatter-admin");
    let args = ["--ca-cert", "squatter.crt.pem", "--crl", "squatter.crl.pem"];
    let err = fails(
        dir,
        &strs(&identity_tx(
            &chain,
            "register-org",
            &args,
            "squatter-admin",
        )),
        2,
        "TX_CERT_INVALID",
    );
    assert!(err.contains("CERT_NOT_SPONSORED"), "{err}");
    let third = OrgCa::issue(dir, "Third Bureau", "third");
    third.member(dir, pki::Role::Admin, "third-admin");
    register(&chain, &third, "third-admin");
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
    let channel = rt.block_on(dev_node::client(&chain));
    let client = move || channel.clone();
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
    // genesis, naming the field and both numbers; so is one above the largest transaction the
    // build decodes (it would never be applied); the largest the build decodes is accepted.
    let fits = limits.largest_tx_in_block(&genesis.chain_id);
    let ceiling = Limits::default().max_tx_size;
    let cases = [
        (
            fits + 1,
            "too-big",
            Some(vec![fits.to_string(), limits.max_block_size.to_string()]),
        ),
        (fits, "over-ceiling", Some(vec![ceiling.to_string()])),
        (ceiling, "ceiling", None),
    ];
    for (size, data, refused) in cases {
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
        match refused {
            None => {
                ok(dir, &["node", "init", "--config", &file]);
            }
            Some(needles) => {
                let err = fails(
                    dir,
                    &["node", "init", "--config", &file],
                    2,
                    "params.max_tx_size",
                );
                assert!(err.contains(&size.to_string()), "{err}");
                for n in needles {
                    assert!(err.contains(&n), "{err}");
                }
            }
        }
    }
}

/// Issue 19: `Batch.SubmitTransactions` admits each transaction of a batch on its own (a bad
/// one refuses only itself, with the code a single submission gets), answers one result per
/// transaction in the request's order, waits for the admitted ones' commits, and refuses an
/// empty or over-long batch whole; its message limit is its own (a batch far over Chain's
/// one-transaction limit is decoded; a transaction over max_tx_size inside it is still
/// refused by admission); an over-limit message is refused by the transport.
#[test]
fn a_batch_admits_each_transaction_on_its_own_and_answers_in_order() {
    let chain = dev_chain(2);
    let dir = &chain.dir;
    let _node = Node::start(&chain);
    let (u0, c0) = identity(dir, "clients/0");
    let (u1, c1) = identity(dir, "clients/1");
    let rt = rt();
    rt.block_on(async {
        let channel = dev_node::channel_at(dir, &chain.grpc, "clients/0")
            .await
            .unwrap();
        let mut chain_client = ChainClient::new(channel.clone());
        let mut batch = pb::batch_client::BatchClient::new(channel)
            .max_encoding_message_size(64 << 20)
            .max_decoding_message_size(64 << 20);
        let h0 = height(&mut chain_client).await;
        let before = scrape(&chain.metrics);

        // 60 good anchors from two signers, with bad ones among them.
        let good: Vec<SignedTx> = (0..60)
            .map(|i| {
                let (k, c) = if i % 2 == 0 { (&u0, &c0) } else { (&u1, &c1) };
                let doc = format!("batch document {i}");
                signed(
                    k,
                    c,
                    500,
                    "attestation",
                    "anchor",
                    anchor_args(doc.as_bytes()),
                )
            })
            .collect();
        let wrong_signature = {
            let mut s = signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(b"ws"));
            s.signature = good[0].signature;
            s
        };
        let wrong_chain = {
            let mut t = signed(&u0, &c0, 500, "attestation", "anchor", anchor_args(b"wc")).tx;
            t.chain_id = ChainId::new("other-chain").unwrap();
            SignedTx::sign(t, &u0, &UserId::default()).unwrap()
        };
        // Over max_tx_size (128 KiB), far over Chain's decode limit, well within the batch's.
        let oversized = signed(
            &u1,
            &c1,
            500,
            "attestation",
            "anchor",
            vec![
                vec![0u8; 32],
                b"document".to_vec(),
                Vec::new(),
                vec![7u8; 200 * 1024],
            ],
        );
        let mut expected: Vec<(Vec<u8>, Option<&str>, Option<types::TxId>)> = Vec::new();
        for (i, g) in good.iter().enumerate() {
            expected.push((g.to_bytes(), None, Some(g.tx_id())));
            match i {
                5 => expected.push((
                    wrong_signature.to_bytes(),
                    Some("TX_SIGNATURE_INVALID"),
                    Some(wrong_signature.tx_id()),
                )),
                17 => expected.push((b"not a transaction".to_vec(), Some("TX_MALFORMED"), None)),
                // The same transaction twice in one batch: the second is a duplicate.
                29 => expected.push((g.to_bytes(), Some("TX_DUPLICATE"), Some(g.tx_id()))),
                41 => expected.push((
                    wrong_chain.to_bytes(),
                    Some("TX_WRONG_CHAIN"),
                    Some(wrong_chain.tx_id()),
                )),
                // Refused before it is decoded: no id.
                53 => expected.push((oversized.to_bytes(), Some("TX_TOO_LARGE"), None)),
                _ => {}
            }
        }
        assert!(oversized.to_bytes().len() > 128 * 1024 + 64);
        let resp = batch
            .submit_transactions(pb::SubmitTransactionsRequest {
                signed_txs: expected.iter().map(|(b, _, _)| b.clone()).collect(),
                wait_for_commit: true,
            })
            .await
            .expect("the batch")
            .into_inner();
        assert_eq!(resp.results.len(), expected.len());
        for (i, (r, (_, code, id))) in resp.results.iter().zip(&expected).enumerate() {
            assert_eq!(
                r.tx_id,
                id.map(|t| t.as_bytes().to_vec()).unwrap_or_default(),
                "result {i}: the id"
            );
            match code {
                None => {
                    assert!(r.admitted && r.committed, "result {i}: {r:?}");
                    assert!(r.code.is_empty(), "result {i}: {r:?}");
                    assert!(r.height > h0, "result {i}: {r:?}");
                    let receipt = types::Receipt::from_bytes(&r.receipt, &Limits::default())
                        .unwrap_or_else(|e| panic!("result {i}: receipt: {e}"));
                    assert_eq!(receipt.status, types::Status::Success, "result {i}");
                }
                Some(code) => {
                    assert!(!r.admitted && !r.committed, "result {i}: {r:?}");
                    assert_eq!(r.code, *code, "result {i}: {}", r.message);
                    assert!(r.message.starts_with(code), "result {i}: {}", r.message);
                }
            }
        }
        // Each committed one is where its result says.
        for (i, g) in good.iter().enumerate().step_by(7) {
            let t = chain_client
                .get_transaction(pb::TxIdRequest {
                    tx_id: g.tx_id().as_bytes().to_vec(),
                })
                .await
                .unwrap_or_else(|e| panic!("good {i}: {e}"))
                .into_inner();
            assert_eq!(t.signed_tx, g.to_bytes(), "good {i}");
        }
        let after = scrape(&chain.metrics);
        assert_eq!(
            metric(&after, "gmchain_batches_total") - metric(&before, "gmchain_batches_total"),
            1
        );
        assert_eq!(
            metric(&after, "gmchain_batch_txs_total") - metric(&before, "gmchain_batch_txs_total"),
            expected.len() as u64
        );
        assert_eq!(
            metric(&after, "gmchain_txs_admitted_total")
                - metric(&before, "gmchain_txs_admitted_total"),
            60
        );

        // Empty, and one over api.max_batch_txs (1000): refused whole, nothing admitted.
        let fresh: Vec<Vec<u8>> = (0..1001)
            .map(|i| {
                signed(
                    &u0,
                    &c0,
                    500,
                    "attestation",
                    "anchor",
                    anchor_args(format!("late {i}").as_bytes()),
                )
                .to_bytes()
            })
            .collect();
        for txs in [Vec::new(), fresh.clone()] {
            let n = txs.len();
            let e = batch
                .submit_transactions(pb::SubmitTransactionsRequest {
                    signed_txs: txs,
                    wait_for_commit: false,
                })
                .await
                .expect_err("a batch out of bounds");
            assert_eq!(
                e.code(),
                tonic::Code::InvalidArgument,
                "{n}: {}",
                e.message()
            );
            assert_eq!(
                e.metadata()
                    .get(api::CODE_METADATA_KEY)
                    .map(|v| v.to_str().unwrap()),
                Some("TX_BATCH_INVALID"),
                "{n}"
            );
            assert!(
                e.message().contains(&format!("holds {n} transactions")),
                "{}",
                e.message()
            );
        }
        let later = scrape(&chain.metrics);
        assert_eq!(
            metric(&later, "gmchain_txs_admitted_total"),
            metric(&after, "gmchain_txs_admitted_total")
        );
        // Over the batch's message limit (16 MiB): the transport refuses to decode it.
        let e = batch
            .submit_transactions(pb::SubmitTransactionsRequest {
                signed_txs: vec![vec![0u8; 100 * 1024]; 170],
                wait_for_commit: false,
            })
            .await
            .expect_err("over the batch message limit");
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{}", e.message());
        // And Chain's own limit did not grow: one transaction over it is still refused whole.
        let e = chain_client
            .submit_transaction(pb::SubmitTransactionRequest {
                signed_tx: oversized.to_bytes(),
                wait_for_commit: false,
            })
            .await
            .expect_err("over Chain's message limit");
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{}", e.message());
        // Without waiting: the answer comes at admission; the transactions commit after.
        let resp = batch
            .submit_transactions(pb::SubmitTransactionsRequest {
                signed_txs: fresh[..200].to_vec(),
                wait_for_commit: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(resp.results.iter().all(|r| r.admitted && !r.committed));

        // Review i19-node H1: 16 batches of 1000 (about 1.2 MB each) at once on one connection
        // are each answered: read and admitted, or refused at once with TX_BATCH_BUSY (at most
        // 2 per address are read at a time); none is left waiting unread. When a batch waited
        // for a slot unread, the waiting streams held the connection's HTTP/2 window that the
        // reading ones needed, and this deadlocked (checked: every call timed out at 60 s).
        let many: Vec<Vec<Vec<u8>>> = (0..16)
            .map(|b| {
                (0..1000)
                    .map(|i| {
                        let doc = format!("concurrent {b} {i}");
                        signed(
                            &u1,
                            &c1,
                            500,
                            "attestation",
                            "anchor",
                            anchor_args(doc.as_bytes()),
                        )
                        .to_bytes()
                    })
                    .collect()
            })
            .collect();
        let calls: Vec<_> = many
            .into_iter()
            .map(|txs| {
                let mut b = batch.clone();
                tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_secs(60),
                        b.submit_transactions(pb::SubmitTransactionsRequest {
                            signed_txs: txs,
                            wait_for_commit: false,
                        }),
                    )
                    .await
                })
            })
            .collect();
        let (mut read, mut busy) = (0, 0);
        for c in calls {
            match c.await.unwrap().expect("a batch left unanswered") {
                Ok(r) => {
                    assert!(r.into_inner().results.iter().all(|r| r.admitted));
                    read += 1;
                }
                Err(e) => {
                    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{}", e.message());
                    assert_eq!(
                        e.metadata()
                            .get(api::CODE_METADATA_KEY)
                            .map(|v| v.to_str().unwrap()),
                        Some("TX_BATCH_BUSY")
                    );
                    busy += 1;
                }
            }
        }
        assert!(read >= 1 && read + busy == 16, "read {read}, busy {busy}");
    });
}
