//! Validator-set changes decided on the chain, with real validator processes (issue 13 point
//! 6): a validator's key rotated by a governance proposal while attestations keep committing
//! (the restarted validator follows until the effective height, then votes with its new key;
//! offline receipts carry the certified change), and a validator whose certificate its
//! organisation revokes excluded from the next height while the three others keep deciding.
//!
//! The dev chain has one organisation ("Dev Bureau", admin `admin`), so a proposal executes
//! in its own block (an electorate of one).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::v1 as pb;
use crypto::Signer;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SystemRandom;
use pki::{Certificate, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime};
use types::{Decode, Encode, Limits};

use crate::consortium::{Client, Consortium, anchor, rt, status};
use crate::dev_node::{client_at, fails, gm, identity, now_secs, ok, write_key};

/// The longest a load submission may take to commit: more means the chain stopped deciding.
const COMMIT_BOUND: Duration = Duration::from_secs(10);
/// The pause between load submissions (the chain decides a height per submission, so this
/// paces the heights: a few per second).
const PACE: Duration = Duration::from_millis(250);

/// One load submission's outcome: its height and how long its commit took, or the error.
type Outcome = Result<(u64, Duration), String>;

/// Attestations submitted one after another (each waiting for its commit) through the nodes
/// `via`, in turn, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    top: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<Vec<Outcome>>>,
}

impl Load {
    fn start(net: &Consortium, via: &[usize]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let top = Arc::new(AtomicU64::new(0));
        let dir = net.dir.clone();
        let addrs: Vec<String> = via.iter().map(|&i| net.nodes[i].grpc.clone()).collect();
        let (s, c, t) = (stop.clone(), committed.clone(), top.clone());
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (key, cert) = identity(&dir, "clients/0");
            let mut clients: Vec<Client> = addrs
                .iter()
                .map(|a| rt.block_on(client_at(&dir, a, "admin")).unwrap())
                .collect();
            let mut out = Vec::new();
            let mut n = 0usize;
            while !s.load(Ordering::SeqCst) {
                let tx = anchor(&key, &cert, &format!("governance load {n}"));
                let client = &mut clients[n % addrs.len()];
                let began = Instant::now();
                let r = rt.block_on(async {
                    tokio::time::timeout(
                        COMMIT_BOUND,
                        client.submit_transaction(pb::SubmitTransactionRequest {
                            signed_tx: tx.to_bytes(),
                            wait_for_commit: true,
                        }),
                    )
                    .await
                });
                let outcome = match r {
                    Err(_) => Err(format!(
                        "submission {n} not committed within {COMMIT_BOUND:?}"
                    )),
                    Ok(Err(e)) => Err(format!("submission {n}: {e}")),
                    Ok(Ok(resp)) if !resp.get_ref().committed => {
                        Err(format!("submission {n}: not committed"))
                    }
                    Ok(Ok(resp)) => {
                        let h = resp.into_inner().height;
                        t.fetch_max(h, Ordering::SeqCst);
                        c.fetch_add(1, Ordering::SeqCst);
                        Ok((h, began.elapsed()))
                    }
                };
                let failed = outcome.is_err();
                out.push(outcome);
                if failed {
                    break;
                }
                n += 1;
                std::thread::sleep(PACE);
            }
            out
        });
        Load {
            stop,
            committed,
            top,
            handle: Some(handle),
        }
    }

    /// Waits until the load committed at height `h` or above.
    fn wait_height(&self, net: &Consortium, h: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.top.load(Ordering::SeqCst) < h {
            assert!(
                self.handle.as_ref().is_some_and(|h| !h.is_finished()),
                "{what}: the load stopped (a submission failed) below height {h}\n{}",
                net.logs()
            );
            assert!(
                Instant::now() < deadline,
                "{what}: the load reached only height {} of {h}\n{}",
                self.top.load(Ordering::SeqCst),
                net.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the load and asserts that the chain never stopped deciding: every submission
    /// committed within the bound, at a height above the previous one. Returns how many
    /// committed and the slowest commit.
    fn finish(mut self) -> (usize, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        let outcomes = self.handle.take().unwrap().join().unwrap();
        let mut last = 0;
        let mut slowest = Duration::ZERO;
        for (i, o) in outcomes.iter().enumerate() {
            let (h, took) = o.as_ref().unwrap_or_else(|e| panic!("load: {e}"));
            assert!(*h > last, "load submission {i} at height {h}, after {last}");
            assert!(*took <= COMMIT_BOUND, "load submission {i} took {took:?}");
            last = *h;
            slowest = slowest.max(*took);
        }
        assert_eq!(outcomes.len() as u64, self.committed.load(Ordering::SeqCst));
        (outcomes.len(), slowest)
    }
}

/// The precommitting validators' ids in the certificate of block `h`. The load's heights are
/// those of the nodes it submits to: the node asked may commit `h` a moment later.
fn signers(rt: &tokio::runtime::Runtime, c: &mut Client, h: u64) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let b = loop {
        match rt.block_on(c.get_block(pb::GetBlockRequest { height: Some(h) })) {
            Ok(b) => break b.into_inner(),
            Err(e) if e.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("block {h}: {e}"),
        }
    };
    let cert = types::CommitCertificate::from_bytes(&b.certificate, &Limits::default())
        .unwrap_or_else(|e| panic!("certificate of block {h}: {e}"));
    cert.signatures
        .iter()
        .map(|(id, _)| id.to_string())
        .collect()
}

/// The signing options of the dev chain's admin, against node `i`.
fn admin_args(net: &Consortium, i: usize) -> Vec<String> {
    [
        "--key",
        "admin.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "admin.crt.pem",
        "--node",
        &net.nodes[i].grpc,
        "--node-name",
        &format!("node{i}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(crate) fn run_ok(dir: &Path, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(dir, &args)
}

pub(crate) fn run_fails(dir: &Path, args: &[String], code: i32, needle: &str) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(dir, &args, code, needle)
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The number after `label` in `text`.
fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    text[at + label.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in {text}"))
}

/// The 64-hex-digit word after `label` in `text`.
pub(crate) fn hex_after(text: &str, label: &str) -> String {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    let id: String = text[at + label.len()..].chars().take(64).collect();
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id} in {text}");
    id
}

/// `gmchain query validators` through node `i`, as JSON.
fn validators(net: &Consortium, i: usize, height: Option<u64>) -> serde_json::Value {
    let mut args = strings(&["query", "validators"]);
    if let Some(h) = height {
        args.extend(strings(&["--height", &h.to_string()]));
    }
    args.extend(strings(&[
        "--node",
        &net.nodes[i].grpc,
        "--node-name",
        &format!("node{i}"),
    ]));
    serde_json::from_str(&run_ok(&net.dir, &args)).unwrap()
}

fn validator_ids(v: &serde_json::Value) -> BTreeSet<String> {
    v["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

fn cert(dir: &Path, name: &str) -> Certificate {
    Certificate::from_pem(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

/// Issue 13 point 6: "a validator rotates key and certificate by proposal (a test rotates one
/// without a halt)".
#[test]
fn a_validator_key_rotates_by_proposal_without_a_halt() {
    let began = Instant::now();
    let mut net = Consortium::new(4, "governance-rotate");
    let rt = rt();
    for i in 0..4 {
        net.start(i);
    }
    for i in 0..4 {
        net.wait_up(&rt, i);
    }
    let dir = net.dir.clone();
    // Validator 3's new key and node-sign certificate, from the dev root CA.
    let (ca_key, ca) = identity(&dir, "ca");
    let new_key = SoftwareProvider::new(Arc::new(SystemRandom))
        .generate()
        .unwrap();
    let now = now_secs();
    let new_cert = pki::issue(
        &ca,
        &ca_key,
        &IssueRequest {
            role: Role::NodeSign,
            common_name: "node3",
            organisation: "Dev Bureau",
            public_key: &new_key.public_key(),
            serial: Serial::random(&SystemRandom).unwrap(),
            validity: pki::Validity {
                not_before: UnixTime(now - 60),
                not_after: UnixTime(now + 365 * 86400),
            },
        },
    )
    .unwrap();
    write_key(&dir, "node3-rotated", &new_key, &new_cert);
    let old_id = cert(&dir, "node3.crt.pem").fingerprint().to_string();
    let new_id = new_cert.fingerprint().to_string();

    // Attestations through nodes 1 and 2 for the whole test.
    let load = Load::start(&net, &[1, 2]);
    load.wait_height(&net, 3, "before the proposal");

    // A bad schedule is refused before anything is sent.
    let mut bad = strings(&[
        "governance",
        "propose",
        "validator-rotate",
        "--current-cert",
        "node3.crt.pem",
        "--new-cert",
        "node3-rotated.crt.pem",
        "--deadline-in",
        "5",
        "--effective-in",
        "5",
    ]);
    bad.extend(admin_args(&net, 0));
    run_fails(&dir, &bad, 2, "must be after the deadline");
    let mut not_node = strings(&[
        "governance",
        "propose",
        "validator-rotate",
        "--validator",
        &old_id,
        "--new-cert",
        "admin.crt.pem",
        "--deadline-in",
        "2",
        "--effective-in",
        "10",
    ]);
    not_node.extend(admin_args(&net, 0));
    run_fails(&dir, &not_node, 2, "--new-cert admin.crt.pem: role admin");
    let mut short_id = strings(&[
        "governance",
        "propose",
        "validator-remove",
        "--validator",
        "abcd",
        "--deadline-in",
        "2",
        "--effective-in",
        "10",
    ]);
    short_id.extend(admin_args(&net, 0));
    run_fails(&dir, &short_id, 2, "--validator: 2 bytes, expected 32");

    let mut propose = strings(&[
        "governance",
        "propose",
        "validator-rotate",
        "--current-cert",
        "node3.crt.pem",
        "--new-cert",
        "node3-rotated.crt.pem",
        // The chain is under load: the proposal must reach a block before its deadline.
        "--deadline-in",
        "6",
        "--effective-in",
        "16",
    ]);
    propose.extend(admin_args(&net, 0));
    let out = run_ok(&dir, &propose);
    eprintln!("{out}");
    let effective = number_after(&out, "effective height ");
    let proposal = hex_after(&out, "committed: proposal ");
    assert!(
        out.contains(&format!("the validator set changes at height {effective}")),
        "{out}"
    );

    // Give validator 3 its new key as `[next_key]`: it keeps deciding with the old key until
    // the effective height and switches there without a restart. The restart that loads the
    // configuration is a SIGKILL: the node recovers from its write-ahead log (a decided
    // block's parent certificate included) and goes on.
    let config = dir.join(&net.nodes[3].config);
    let text = std::fs::read_to_string(&config).unwrap();
    let key_section: String = text
        .split("\n[")
        .find(|s| s.starts_with("key]"))
        .map(|s| format!("[{s}"))
        .unwrap_or_else(|| panic!("no [key] section in {text}"));
    let next_section = key_section
        .replacen("[key]", "[next_key]", 1)
        .replace("node3.key.pem", "node3-rotated.key.pem")
        .replace("node3.crt.pem", "node3-rotated.crt.pem");
    assert_ne!(next_section, key_section.replacen("[key]", "[next_key]", 1));
    std::fs::write(
        &config,
        format!("{}\n{}\n", text.trim_end(), next_section.trim_end()),
    )
    .unwrap();
    net.kill(3);
    net.start(3);
    net.wait_up(&rt, 3);
    let mut c1 = net.client(&rt, 1);
    let restarted_at = rt.block_on(status(&mut c1)).height;
    assert!(
        restarted_at + 1 < effective,
        "node3 was back only at height {restarted_at}, the rotation is effective at {effective}: raise --effective-in"
    );

    // While the rotation is pending a second change fails in its block (exit 1, its code).
    let mut second = strings(&[
        "governance",
        "propose",
        "validator-remove",
        "--validator-cert",
        "node2.crt.pem",
        "--deadline-in",
        "30",
        "--effective-in",
        "400",
    ]);
    second.extend(admin_args(&net, 0));
    let err = run_fails(&dir, &second, 1, "GOVERNANCE_CHANGE_PENDING");
    assert!(err.contains(&proposal), "{err}");

    load.wait_height(&net, effective + 6, "after the effective height");
    // With node 0 stopped, a quorum of the new set needs validator 3's new key.
    net.stop(0);
    let quorum_from = load.top.load(Ordering::SeqCst) + 1;
    load.wait_height(&net, quorum_from + 4, "with node0 stopped");
    let top = load.top.load(Ordering::SeqCst);
    let mut new_signed = 0;
    for h in effective..=top {
        let s = signers(&rt, &mut c1, h);
        assert!(!s.contains(&old_id), "the old key precommitted at {h}");
        if h >= quorum_from {
            assert!(
                s.contains(&new_id),
                "block {h} certified without node3: {s:?}"
            );
        }
        if s.contains(&new_id) {
            new_signed += 1;
        }
    }
    // Before the change the old key counted, also after the restart with `[next_key]`
    // loaded: the node kept deciding with its `[key]` until the effective height.
    assert!(
        (restarted_at + 1..effective).any(|h| signers(&rt, &mut c1, h).contains(&old_id)),
        "the restarted node never precommitted with its old key before the change"
    );
    net.start(0);
    net.wait_up(&rt, 0);

    // The API and the CLI show the new set and the epoch.
    let v = validators(&net, 1, None);
    let ids = validator_ids(&v);
    assert!(ids.contains(&new_id) && !ids.contains(&old_id), "{v}");
    assert_eq!(ids.len(), 4, "{v}");
    let node3 = v["validators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == new_id.as_str())
        .unwrap();
    assert_eq!(node3["pem"].as_str().unwrap(), new_cert.to_pem(), "{v}");
    let epoch = v["epochs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(epoch["from_height"], effective, "{v}");
    assert_eq!(epoch["causes"][0], proposal.as_str(), "{v}");
    let before = validators(&net, 1, Some(effective - 1));
    assert!(validator_ids(&before).contains(&old_id), "{before}");
    let shown: serde_json::Value = serde_json::from_str(&run_ok(
        &dir,
        &strings(&[
            "governance",
            "show",
            &proposal,
            "--node",
            &net.nodes[1].grpc,
            "--node-name",
            "node1",
        ]),
    ))
    .unwrap();
    assert_eq!(shown["status"], "executed", "{shown}");
    assert_eq!(shown["kind"], "validator-rotate", "{shown}");
    assert_eq!(shown["change"]["validator"], old_id.as_str(), "{shown}");
    assert_eq!(shown["votes"]["Dev Bureau"], "yes", "{shown}");

    // Closed, unknown and out-of-range requests: exit 2, naming what was wrong.
    let mut again = strings(&["governance", "vote", &proposal, "yes"]);
    again.extend(admin_args(&net, 1));
    run_fails(&dir, &again, 2, "is Executed");
    run_fails(
        &dir,
        &strings(&[
            "governance",
            "show",
            &"ab".repeat(32),
            "--node",
            &net.nodes[1].grpc,
            "--node-name",
            "node1",
        ]),
        2,
        "no proposal",
    );
    run_fails(
        &dir,
        &strings(&[
            "query",
            "validators",
            "--height",
            "0",
            "--node",
            &net.nodes[1].grpc,
            "--node-name",
            "node1",
        ]),
        2,
        "height 0",
    );

    // An offline receipt of a transaction after the change carries the certified change and
    // verifies from the genesis file alone; one byte changed in it does not.
    std::fs::write(dir.join("after.txt"), b"after the rotation").unwrap();
    run_ok(
        &dir,
        &strings(&[
            "tx",
            "attest",
            "after.txt",
            "--key",
            "clients/1.key.pem",
            "--pass-file",
            "pass",
            "--cert",
            "clients/1.crt.pem",
            "--node",
            &net.nodes[1].grpc,
            "--node-name",
            "node1",
            "--out",
            "after.receipt.json",
        ]),
    );
    ok(
        &dir,
        &[
            "receipt",
            "verify",
            "after.receipt.json",
            "after.txt",
            "--genesis",
            "data/genesis.json",
        ],
    );
    let mut receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("after.receipt.json")).unwrap()).unwrap();
    let changes = receipt["validator_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{receipt}");
    assert_eq!(
        changes[0]["causes"].as_array().unwrap().len(),
        1,
        "{receipt}"
    );
    let header = changes[0]["header"].as_str().unwrap().to_string();
    let mut tampered = header.into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    receipt["validator_changes"][0]["header"] =
        serde_json::Value::String(String::from_utf8(tampered).unwrap());
    std::fs::write(
        dir.join("tampered.receipt.json"),
        serde_json::to_vec_pretty(&receipt).unwrap(),
    )
    .unwrap();
    let o = gm(
        &dir,
        &[
            "receipt",
            "verify",
            "tampered.receipt.json",
            "after.txt",
            "--genesis",
            "data/genesis.json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "a tampered set change verified: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let (count, slowest) = load.finish();
    eprintln!(
        "governance rotate: {count} attestations committed without a stop (slowest {slowest:?}); rotation effective at {effective}, node3 back at {restarted_at}, new key in {new_signed} certificates; {:?}",
        began.elapsed()
    );
}

/// Issue 13 point 6: "A validator whose certificate is revoked stops counting from the next
/// height, and that change enters the receipts' chain of set changes with its CRL
/// transaction".
#[test]
fn a_revoked_validator_is_excluded_from_the_next_height() {
    let began = Instant::now();
    let mut net = Consortium::new(4, "governance-revoke");
    let rt = rt();
    for i in 0..4 {
        net.start(i);
    }
    for i in 0..4 {
        net.wait_up(&rt, i);
    }
    let dir = net.dir.clone();
    let revoked = cert(&dir, "node2.crt.pem");
    let revoked_id = revoked.fingerprint().to_string();
    let load = Load::start(&net, &[0, 1]);
    load.wait_height(&net, 3, "before the revocation");

    // The organisation's CA revokes validator 2 (CRL number 2; the dev chain's first is 1),
    // and its admin records the CRL on the chain. The dev CA is not a `gmchain ca`
    // directory, so the CRL is signed here with its key.
    let (ca_key, ca) = identity(&dir, "ca");
    let now = now_secs();
    let crl = pki::issue_crl(
        &ca,
        &ca_key,
        2,
        UnixTime(now - 5),
        UnixTime(now + 86400),
        &[RevokedEntry {
            serial: revoked.serial(),
            revoked_at: UnixTime(now - 5),
            reason: RevocationReason::KeyCompromise,
        }],
    )
    .unwrap();
    std::fs::write(dir.join("root2.crl.pem"), crl.to_pem()).unwrap();
    let mut revoke = strings(&["tx", "identity", "revoke", "--crl", "root2.crl.pem"]);
    revoke.extend(admin_args(&net, 0));
    let out = run_ok(&dir, &revoke);
    let at = number_after(&out, "at height ");
    let tx = hex_after(&out, "committed: tx ");

    load.wait_height(&net, at + 8, "after the revocation");
    let top = load.top.load(Ordering::SeqCst);
    let mut c0 = net.client(&rt, 0);
    // The set of the CRL's height still had validator 2; from the next one it is gone, and
    // the three others (a set of three: all of them are the quorum) certify every block.
    let old = validators(&net, 0, Some(at));
    assert!(validator_ids(&old).contains(&revoked_id), "{old}");
    let new = validators(&net, 0, None);
    let remaining = validator_ids(&new);
    assert_eq!(remaining.len(), 3, "{new}");
    assert!(!remaining.contains(&revoked_id), "{new}");
    for h in at + 1..=top {
        let s = signers(&rt, &mut c0, h);
        assert!(
            !s.contains(&revoked_id),
            "the revoked validator precommitted at {h}"
        );
        assert_eq!(s, remaining, "block {h}");
    }
    let epoch = new["epochs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(epoch["from_height"], at + 1, "{new}");
    assert_eq!(epoch["causes"][0], tx.as_str(), "{new}");
    assert!(
        epoch["reason"].as_str().unwrap().contains("revoked"),
        "{new}"
    );

    // A receipt of a later transaction carries the exclusion with the CRL transaction, and
    // verifies against the genesis file alone.
    std::fs::write(dir.join("later.txt"), b"after the revocation").unwrap();
    let mut attest = strings(&[
        "tx",
        "attest",
        "later.txt",
        "--key",
        "clients/1.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "clients/1.crt.pem",
        "--out",
        "later.receipt.json",
    ]);
    attest.extend(admin_args(&net, 0).split_off(6));
    run_ok(&dir, &attest);
    ok(
        &dir,
        &[
            "receipt",
            "verify",
            "later.receipt.json",
            "later.txt",
            "--genesis",
            "data/genesis.json",
        ],
    );
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("later.receipt.json")).unwrap()).unwrap();
    let changes = receipt["validator_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{receipt}");
    assert_eq!(
        changes[0]["validators"].as_array().unwrap().len(),
        3,
        "{receipt}"
    );
    assert_eq!(
        changes[0]["causes"].as_array().unwrap().len(),
        1,
        "{receipt}"
    );

    // The conformance suite's whole-chain walk, against node 1: every certificate verifies
    // under its height's set, the change followed through the header that announced it.
    let mut conformance = strings(&[
        "conformance",
        "run",
        "--genesis",
        "data/genesis.json",
        "--key",
        "clients/1.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "clients/1.crt.pem",
        "--out-dir",
        "conformance",
    ]);
    conformance.extend(admin_args(&net, 1).split_off(6));
    let args: Vec<&str> = conformance.iter().map(String::as_str).collect();
    let o = gm(&dir, &args);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("conformance/report.json")).unwrap_or_else(|e| {
            panic!(
                "no report ({e}): stderr {}",
                String::from_utf8_lossy(&o.stderr)
            )
        }),
    )
    .unwrap();
    let walk = report["standards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["clauses"].as_array().unwrap())
        .flat_map(|c| c["checks"].as_array().unwrap())
        .find(|c| c["id"] == "node-ledger-chain")
        .unwrap_or_else(|| panic!("no node-ledger-chain in the report"))
        .clone();
    assert_eq!(walk["pass"], true, "{walk:#}");
    let followed = format!(
        "1 validator-set change(s) followed, from height(s) {}",
        at + 1
    );
    assert!(
        walk.to_string().contains(&followed),
        "{followed} not in {walk:#}"
    );

    let (count, slowest) = load.finish();
    eprintln!(
        "governance revoke: {count} attestations committed without a stop (slowest {slowest:?}); revoked at {at}, {} heights decided by the three after; {:?}",
        top - at,
        began.elapsed()
    );
}

/// Issues an organisation member (`role`, `cn`) under `issuer` and writes its key and
/// certificate as `cn` in `dir`.
fn member(
    dir: &Path,
    issuer: &Certificate,
    issuer_key: &dyn Signer,
    role: Role,
    org: &str,
    cn: &str,
) -> (crypto_sm::SoftSigner, Certificate) {
    let key = SoftwareProvider::new(Arc::new(SystemRandom))
        .generate()
        .unwrap();
    let now = now_secs();
    let cert = pki::issue(
        issuer,
        issuer_key,
        &IssueRequest {
            role,
            common_name: cn,
            organisation: org,
            public_key: &key.public_key(),
            serial: Serial::random(&SystemRandom).unwrap(),
            validity: pki::Validity {
                not_before: UnixTime(now - 600).max(issuer.validity().not_before),
                not_after: UnixTime(now + 86400 * 30).min(issuer.validity().not_after),
            },
        },
    )
    .unwrap();
    write_key(dir, cn, &key, &cert);
    (key, cert)
}

/// The signing options of `who` (`admin`, `second-admin`) against the dev chain's node.
pub(crate) fn sender(chain: &crate::dev_node::Chain, who: &str) -> Vec<String> {
    strings(&[
        "--key",
        &format!("{who}.key.pem"),
        "--pass-file",
        "pass",
        "--cert",
        &format!("{who}.crt.pem"),
        "--node",
        &chain.grpc,
    ])
}

fn show(chain: &crate::dev_node::Chain, id: &str) -> serde_json::Value {
    let out = ok(
        &chain.dir,
        &["governance", "show", id, "--node", &chain.grpc],
    );
    serde_json::from_str(&out).unwrap()
}

/// Registers "Second Bureau" (sponsored by the dev root) with its own CA and its admin
/// `second-admin` on the running dev chain: two organisations vote from then on.
pub(crate) fn register_second_bureau(chain: &crate::dev_node::Chain) {
    register_bureau(chain, "Second Bureau", "second", &[]);
}

/// Registers the organisation `name` (one the dev root sponsors: "Second Bureau" or "Third
/// Bureau") with its own CA (`<prefix>-ca`), its admin `<prefix>-admin` (who sends the
/// registration) and users named `users`, on the running dev chain.
pub(crate) fn register_bureau(
    chain: &crate::dev_node::Chain,
    name: &str,
    prefix: &str,
    users: &[&str],
) {
    let dir = chain.dir.clone();
    let (root_key, root) = identity(&dir, "ca");
    let (agency_key, agency) = member(
        &dir,
        &root,
        &root_key,
        Role::AgencyCa,
        name,
        &format!("{prefix}-ca"),
    );
    let now = now_secs();
    let crl = pki::issue_crl(
        &agency,
        &agency_key,
        1,
        UnixTime(now - 60),
        UnixTime(now + 86400),
        &[],
    )
    .unwrap();
    std::fs::write(dir.join(format!("{prefix}-ca.crl.pem")), crl.to_pem()).unwrap();
    let admin = format!("{prefix}-admin");
    member(&dir, &agency, &agency_key, Role::Admin, name, &admin);
    for u in users {
        member(&dir, &agency, &agency_key, Role::User, name, u);
    }
    let mut register = strings(&[
        "tx",
        "identity",
        "register-org",
        "--ca-cert",
        &format!("{prefix}-ca.crt.pem"),
        "--crl",
        &format!("{prefix}-ca.crl.pem"),
    ]);
    register.extend(sender(chain, &admin));
    run_ok(&dir, &register);
}

/// With two organisations a proposal waits for the other's vote: `gmchain governance vote`
/// executes it with a yes, or rejects it with a no (a policy is decided by all
/// organisations); a second vote of one organisation is refused.
#[test]
fn a_proposal_of_two_organisations_executes_or_is_rejected_by_the_second_vote() {
    let chain = crate::dev_node::dev_chain(1);
    let dir = chain.dir.clone();
    let _node = crate::dev_node::Node::start(&chain);
    register_second_bureau(&chain);

    // A policy proposal: open, with the proposer's yes, until the other organisation votes.
    let mut propose = strings(&[
        "governance",
        "propose",
        "policy",
        "--policy",
        "at-least:2",
        "--deadline-in",
        "50",
    ]);
    propose.extend(sender(&chain, "admin"));
    let out = run_ok(&dir, &propose);
    let id = hex_after(&out, "committed: proposal ");
    assert!(out.contains("open until height"), "{out}");
    let p = show(&chain, &id);
    assert_eq!(p["status"], "open", "{p}");
    assert_eq!(p["kind"], "policy", "{p}");
    assert_eq!(p["change"]["policy"], "at-least:2", "{p}");
    assert_eq!(p["electorate"].as_array().unwrap().len(), 2, "{p}");
    assert_eq!(p["votes"]["Dev Bureau"], "yes", "{p}");
    assert_eq!(p["required"], 2, "{p}");
    // The proposer's organisation has voted.
    let mut twice = strings(&["governance", "vote", &id, "yes"]);
    twice.extend(sender(&chain, "admin"));
    run_fails(&dir, &twice, 2, "already voted");
    // The other organisation's yes executes it.
    let mut vote = strings(&["governance", "vote", &id, "yes"]);
    vote.extend(sender(&chain, "second-admin"));
    let out = run_ok(&dir, &vote);
    assert!(out.contains("executed at height"), "{out}");
    let p = show(&chain, &id);
    assert_eq!(p["status"], "executed", "{p}");
    assert_eq!(p["votes"]["Second Bureau"], "yes", "{p}");

    // Another one, and a no: all organisations can no longer agree, so it is rejected.
    let mut propose = strings(&[
        "governance",
        "propose",
        "policy",
        "--policy",
        "majority",
        "--deadline-in",
        "50",
    ]);
    propose.extend(sender(&chain, "admin"));
    let id = hex_after(&run_ok(&dir, &propose), "committed: proposal ");
    let mut no = strings(&["governance", "vote", &id, "no"]);
    no.extend(sender(&chain, "second-admin"));
    let out = run_ok(&dir, &no);
    assert!(out.contains("rejected at height"), "{out}");
    let p = show(&chain, &id);
    assert_eq!(p["status"], "rejected", "{p}");
    assert_eq!(p["votes"]["Second Bureau"], "no", "{p}");
    // A bad policy is refused before anything is sent.
    let mut bad = strings(&[
        "governance",
        "propose",
        "policy",
        "--policy",
        "most",
        "--deadline-in",
        "5",
    ]);
    bad.extend(sender(&chain, "admin"));
    run_fails(&dir, &bad, 2, "--policy: policy \"most\"");
}

/// A chain-parameter change on a running node (one organisation, so the proposer's yes
/// executes it): out-of-bounds values exit 2 before anything is sent; the change is shown by
/// `governance show`; from its effective height `gmchain query status` shows the new
/// `max_tx_size` (the others kept) and an attestation that fitted before is refused (exit 2,
/// naming the limit and since when), with no restart.
#[test]
fn a_parameter_change_takes_effect_at_its_height_on_a_running_node() {
    let chain = crate::dev_node::dev_chain(1);
    let dir = chain.dir.clone();
    let _node = crate::dev_node::Node::start(&chain);
    let status = || -> serde_json::Value {
        serde_json::from_str(&ok(&dir, &["query", "status", "--node", &chain.grpc])).unwrap()
    };
    let before = status();
    assert_eq!(before["params"]["since"], 0, "{before}");
    assert_eq!(before["params"]["max_tx_size"], 131_072, "{before}");
    for (flags, needle) in [
        (
            &["--max-tx-size", "100"][..],
            "--max-tx-size 100 is outside 8192..=131072",
        ),
        (
            &["--expiry-window", "0"][..],
            "--expiry-window 0 is outside",
        ),
        (
            &["--max-txs-per-block", "10001"][..],
            "--max-txs-per-block 10001 is outside 1..=10000",
        ),
        (&[][..], "names at least one of"),
    ] {
        let mut bad = strings(&["governance", "propose", "params"]);
        bad.extend(strings(flags));
        bad.extend(strings(&["--deadline-in", "2", "--effective-in", "4"]));
        bad.extend(sender(&chain, "admin"));
        run_fails(&dir, &bad, 2, needle);
    }
    assert_eq!(status()["height"], before["height"], "nothing was sent");

    // A 9 KiB attestation (4 KiB metadata and pointer) fits the genesis limit.
    std::fs::write(dir.join("doc-1"), b"one").unwrap();
    std::fs::write(dir.join("doc-2"), b"two").unwrap();
    std::fs::write(dir.join("pointer"), vec![7u8; 4096]).unwrap();
    let metadata = "m".repeat(4096);
    let big = |doc: &str| {
        let mut a = strings(&[
            "tx",
            "attest",
            doc,
            "--metadata",
            &metadata,
            "--pointer-file",
            "pointer",
            "--out",
            &format!("{doc}.receipt.json"),
        ]);
        a.extend(sender(&chain, "admin"));
        a
    };
    run_ok(&dir, &big("doc-1"));

    let mut propose = strings(&[
        "governance",
        "propose",
        "params",
        "--max-tx-size",
        "8192",
        "--deadline-in",
        "2",
        "--effective-in",
        "4",
    ]);
    propose.extend(sender(&chain, "admin"));
    let out = run_ok(&dir, &propose);
    let id = hex_after(&out, "committed: proposal ");
    assert!(
        out.contains("the chain parameters change at height"),
        "{out}"
    );
    let p = show(&chain, &id);
    assert_eq!(p["kind"], "params", "{p}");
    assert_eq!(p["status"], "executed", "{p}");
    assert_eq!(p["change"]["max_tx_size"], 8192, "{p}");
    assert!(p["change"]["expiry_window"].is_null(), "{p}");
    let effective = p["effective"].as_u64().unwrap();
    // Blocks are made by transactions: small attestations until the tip is the block before
    // the effective height, whose end applies the change.
    let mut n = 0;
    while status()["height"].as_u64().unwrap() + 1 < effective {
        n += 1;
        let doc = format!("small-{n}");
        std::fs::write(dir.join(&doc), doc.as_bytes()).unwrap();
        let mut a = strings(&["tx", "attest", &doc, "--out", &format!("{doc}.json")]);
        a.extend(sender(&chain, "admin"));
        run_ok(&dir, &a);
        assert!(n < 10, "the chain does not reach height {effective}");
    }
    let after = status();
    assert_eq!(after["params"]["max_tx_size"], 8192, "{after}");
    assert_eq!(after["params"]["since"], effective, "{after}");
    assert_eq!(
        after["params"]["expiry_window"], before["params"]["expiry_window"],
        "{after}"
    );
    assert_eq!(
        after["params"]["max_txs_per_block"], before["params"]["max_txs_per_block"],
        "{after}"
    );
    run_fails(
        &dir,
        &big("doc-2"),
        2,
        &format!("exceeds the chain's max_tx_size 8192 in force since height {effective}"),
    );
}
/// A founding organisation registered by governance (`org-register`, executed at once by the
/// dev chain's single organisation): its admin, refused before, connects over TLS, anchors a
/// document, and the receipt (with its anchor proof) verifies offline against the genesis file
/// alone; it votes on its own removal (`org-remove`), which then refuses it.
#[test]
fn an_organisation_registered_by_governance_attests_with_an_offline_receipt_then_leaves() {
    let chain = crate::dev_node::dev_chain(1);
    let dir = chain.dir.clone();
    let _node = crate::dev_node::Node::start(&chain);
    let key = SoftwareProvider::new(Arc::new(SystemRandom))
        .generate()
        .unwrap();
    let now = now_secs();
    let root = pki::issue_root(
        "New Bureau Root CA",
        "New Bureau",
        Serial::random(&SystemRandom).unwrap(),
        pki::Validity {
            not_before: UnixTime(now - 3600),
            not_after: UnixTime(now + 86400 * 365),
        },
        &key,
    )
    .unwrap();
    write_key(&dir, "new-ca", &key, &root);
    let crl = pki::issue_crl(
        &root,
        &key,
        1,
        UnixTime(now - 60),
        UnixTime(now + 86400),
        &[],
    )
    .unwrap();
    std::fs::write(dir.join("new-ca.crl.pem"), crl.to_pem()).unwrap();
    member(&dir, &root, &key, Role::Admin, "New Bureau", "new-admin");
    std::fs::write(dir.join("notice.txt"), b"New Bureau notice 1\n").unwrap();
    let mut attest = strings(&["tx", "attest", "notice.txt", "--out", "receipt.json"]);
    attest.extend(sender(&chain, "new-admin"));

    // Before: the node knows no anchor for its admin.
    run_fails(&dir, &attest, 2, "TX_CERT_INVALID");

    let mut propose = strings(&[
        "governance",
        "propose",
        "org-register",
        "--ca-cert",
        "new-ca.crt.pem",
        "--crl",
        "new-ca.crl.pem",
        "--deadline-in",
        "50",
    ]);
    propose.extend(sender(&chain, "admin"));
    let out = run_ok(&dir, &propose);
    assert!(out.contains("executed at height"), "{out}");
    let id = hex_after(&out, "committed: proposal ");
    let p = show(&chain, &id);
    assert_eq!(p["kind"], "org-register", "{p}");
    assert_eq!(p["change"]["organisation"], "New Bureau", "{p}");
    assert_eq!(p["status"], "executed", "{p}");

    // After: its admin attests, and the receipt verifies offline.
    run_ok(&dir, &attest);
    let receipt = std::fs::read_to_string(dir.join("receipt.json")).unwrap();
    assert!(receipt.contains("\"anchor_proofs\""), "{receipt}");
    let verified = run_ok(
        &dir,
        &strings(&[
            "receipt",
            "verify",
            "receipt.json",
            "notice.txt",
            "--genesis",
            "data/genesis.json",
        ]),
    );
    assert!(verified.contains("New Bureau"), "{verified}");
    // Without its anchor proof, the genesis file alone does not anchor the signer.
    let mut file: serde_json::Value = serde_json::from_str(&receipt).unwrap();
    file.as_object_mut().unwrap().remove("anchor_proofs");
    std::fs::write(dir.join("bare.json"), file.to_string()).unwrap();
    run_fails(
        &dir,
        &strings(&[
            "receipt",
            "verify",
            "bare.json",
            "--genesis",
            "data/genesis.json",
        ]),
        1,
        "anchor proof",
    );

    // org-remove: from the next block its admin is refused.
    let mut remove = strings(&[
        "governance",
        "propose",
        "org-remove",
        "--organisation",
        "New Bureau",
        "--deadline-in",
        "50",
    ]);
    remove.extend(sender(&chain, "admin"));
    let out = run_ok(&dir, &remove);
    // Two organisations now: the majority is both, and New Bureau is in the electorate.
    assert!(out.contains("1 yes, 0 no of 2 organisation(s)"), "{out}");
    let id = hex_after(&out, "committed: proposal ");
    let mut vote = strings(&["governance", "vote", &id, "yes"]);
    vote.extend(sender(&chain, "new-admin"));
    let out = run_ok(&dir, &vote);
    assert!(out.contains("executed at height"), "{out}");
    std::fs::write(dir.join("notice2.txt"), b"New Bureau notice 2\n").unwrap();
    let mut again = strings(&["tx", "attest", "notice2.txt"]);
    again.extend(sender(&chain, "new-admin"));
    run_fails(&dir, &again, 2, "TX_ORG_REMOVED");
    // The receipt of before still verifies: it is judged at its own block.
    run_ok(
        &dir,
        &strings(&[
            "receipt",
            "verify",
            "receipt.json",
            "--genesis",
            "data/genesis.json",
        ]),
    );
}
