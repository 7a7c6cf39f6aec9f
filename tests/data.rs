//! Sharing data between agencies through `gmchain data` (issue 15), end to end against a dev
//! chain with three organisations: Dev Bureau (the owner, whose node `node0` is the
//! custodian), and Second and Third Bureau registered on the running chain with their own CAs
//! (sponsored by the dev root). Every step goes through the CLI as an agency would use it.
//!
//! Fixtures this test expects of the dev chain (`gmchain node dev-chain`), besides what it
//! makes itself (the bureaus, their users and their `user-enc` certificates, the CRLs):
//! - the node serves the Exchange service on its API listener, with a blob store enabled by
//!   `node.toml`'s `[exchange]` section;
//! - [`NODE_ENC_CERT`]: the node-enc certificate of `node0` (CN `node0`, O Dev Bureau), whose
//!   key the node unwraps custodian envelopes with;
//! - the role `user-enc` (`pki::Role` parses it) and the contract's rule that a `user`
//!   requester's encryption certificate is its `user-enc` pair.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crypto::Signer;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SystemRandom;
use pki::{Certificate, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime};

use crate::dev_node::{Chain, Node, dev_chain, gm, identity, now_secs, write_key};
use crate::governance::{hex_after, register_bureau, run_fails, run_ok, sender, strings};

/// The dev chain's node-enc certificate of `node0` (a fixture of the lead's dev chain).
const NODE_ENC_CERT: &str = "node.enc.crt.pem";

/// Issues `cn` of `org` with `role` under the CA `issuer` (key and certificate written as
/// `<file>.key.pem`/`<file>.crt.pem` in the chain's directory, the dev passphrase).
pub(crate) fn issue(
    dir: &Path,
    issuer: &str,
    role: Role,
    org: &str,
    cn: &str,
    file: &str,
) -> (crypto_sm::SoftSigner, Certificate) {
    let (ca_key, ca) = identity(dir, issuer);
    let key = SoftwareProvider::new(Arc::new(SystemRandom))
        .generate()
        .unwrap();
    let now = now_secs();
    let cert = pki::issue(
        &ca,
        &ca_key,
        &IssueRequest {
            role,
            common_name: cn,
            organisation: org,
            public_key: &key.public_key(),
            serial: Serial::random(&SystemRandom).unwrap(),
            validity: pki::Validity {
                not_before: UnixTime(now - 600).max(ca.validity().not_before),
                not_after: UnixTime(now + 86400 * 30).min(ca.validity().not_after),
            },
        },
    )
    .unwrap();
    write_key(dir, file, &key, &cert);
    (key, cert)
}

fn user_enc() -> Role {
    "user-enc"
        .parse()
        .expect("the role user-enc (the dual-key work of issue 15)")
}

/// The TLS identity of `who` for commands that act as it towards the node (fetch): flags
/// override the admin's client profile; the trust (CA, CRLs) stays the profile's.
fn tls_as(who: &str) -> Vec<String> {
    strings(&[
        "--tls-key",
        &format!("{who}.key.pem"),
        "--tls-pass-file",
        "pass",
        "--tls-cert",
        &format!("{who}.crt.pem"),
    ])
}

fn fetch_args(chain: &Chain, who: &str, dataset: &str, out: &Path) -> Vec<String> {
    let mut a = strings(&[
        "data",
        "fetch",
        dataset,
        "--enc-key",
        &format!("{who}-enc.key.pem"),
        "--enc-pass-file",
        "pass",
        "--out",
        out.to_str().unwrap(),
        "--node",
        &chain.grpc,
    ]);
    a.extend(tls_as(who));
    a
}

fn with(mut a: Vec<String>, more: Vec<String>) -> Vec<String> {
    a.extend(more);
    a
}

fn height(chain: &Chain) -> u64 {
    let out = run_ok(
        &chain.dir,
        &strings(&["query", "status", "--node", &chain.grpc]),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["height"].as_u64().unwrap()
}

/// Moves the chain to height `h`: blocks are made only for transactions, so the admin anchors
/// small documents until then.
fn wait_for_height(chain: &Chain, h: u64) {
    let mut n = 0u64;
    while height(chain) < h {
        n += 1;
        assert!(n < 200, "the chain did not reach height {h}");
        let doc = chain.dir.join(format!("tick-{n}.txt"));
        std::fs::write(&doc, format!("tick {n} {:?}", Instant::now())).unwrap();
        run_ok(
            &chain.dir,
            &with(
                strings(&["tx", "attest", doc.to_str().unwrap()]),
                sender(chain, "admin"),
            ),
        );
    }
}

fn json(chain: &Chain, args: &[&str]) -> serde_json::Value {
    let mut a = strings(args);
    a.extend(strings(&["--json", "--node", &chain.grpc]));
    serde_json::from_str(&run_ok(&chain.dir, &a)).unwrap()
}

/// A file of `len` random bytes (the marker search is tests/data_custody.rs).
fn document(dir: &Path, name: &str, len: usize) -> PathBuf {
    let mut bytes = vec![0u8; len];
    crypto::RandomSource::fill(&SystemRandom, &mut bytes).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    path
}

#[test]
fn three_agencies_publish_request_grant_fetch_revoke_and_every_fetch_is_logged() {
    let chain = dev_chain(1);
    let dir = chain.dir.clone();
    let _node = Node::start(&chain);
    register_bureau(&chain, "Second Bureau", "second", &["second-user"]);
    register_bureau(
        &chain,
        "Third Bureau",
        "third",
        &["third-user", "third-revoked"],
    );
    for (ca, org, cn) in [
        ("second-ca", "Second Bureau", "second-user"),
        ("third-ca", "Third Bureau", "third-user"),
        ("third-ca", "Third Bureau", "third-revoked"),
    ] {
        issue(&dir, ca, user_enc(), org, cn, &format!("{cn}-enc"));
    }

    // The owner records its node's endpoint, then publishes three datasets.
    run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "endpoint",
                "--address",
                &chain.grpc,
                "--enc-cert",
                NODE_ENC_CERT,
            ]),
            sender(&chain, "admin"),
        ),
    );
    let licences = document(&dir, "licences.bin", 3 * 1024 * 1024 + 17);
    let out = run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "publish",
                licences.to_str().unwrap(),
                "--name",
                "licences",
                "--title",
                "Licences issued",
            ]),
            sender(&chain, "admin"),
        ),
    );
    assert!(out.contains("Dev Bureau/licences version 1"), "{out}");
    let plain_sm3 = crypto_sm::sm3::sm3(&std::fs::read(&licences).unwrap()).to_string();
    assert!(out.contains(&plain_sm3), "{out}");
    let secret = document(&dir, "internal.bin", 1000);
    run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "publish",
                secret.to_str().unwrap(),
                "--name",
                "internal",
                "--class",
                "not-shared",
            ]),
            sender(&chain, "admin"),
        ),
    );
    let open = document(&dir, "register.bin", 5000);
    run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "publish",
                open.to_str().unwrap(),
                "--name",
                "register",
                "--class",
                "unconditional",
                "--confidential",
                "--title",
                "Register of companies",
            ]),
            sender(&chain, "admin"),
        ),
    );
    let listed = json(&chain, &["data", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    let shown = json(&chain, &["data", "show", "Dev Bureau/register"]);
    assert_eq!(shown["confidential"], true, "{shown}");
    assert_eq!(shown["title"], "", "{shown}");
    assert_eq!(
        shown["versions"][0]["confidential_metadata"], true,
        "{shown}"
    );

    // Second Bureau's user asks; the request waits for the owner's admin; a fetch before the
    // grant is refused and writes nothing.
    let fetched = dir.join("fetched.bin");
    let out = run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "request",
                "Dev Bureau/licences",
                "--purpose",
                "licence checks at the border",
                "--enc-cert",
                "second-user-enc.crt.pem",
            ]),
            sender(&chain, "second-user"),
        ),
    );
    assert!(out.contains("pending"), "{out}");
    let second_req = hex_after(&out, "request ");
    run_fails(
        &dir,
        &fetch_args(&chain, "second-user", "Dev Bureau/licences", &fetched),
        1,
        "EXCHANGE_NO_GRANT",
    );
    assert!(!fetched.exists());

    // Granted: fetched, decrypted, both digests checked, the bytes are the owner's.
    run_ok(
        &dir,
        &with(
            strings(&["data", "grant", &second_req, "--blocks", "100000"]),
            sender(&chain, "admin"),
        ),
    );
    let err = crate::dev_node::gm(
        &dir,
        &fetch_args(&chain, "second-user", "Dev Bureau/licences", &fetched)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        err.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&licences).unwrap()
    );
    let text = String::from_utf8_lossy(&err.stderr);
    assert!(
        text.contains(&plain_sm3) && text.contains("verified"),
        "{text}"
    );
    std::fs::remove_file(&fetched).unwrap();

    // A not-shared dataset can never be requested, so never granted.
    run_fails(
        &dir,
        &with(
            strings(&[
                "data",
                "request",
                "Dev Bureau/internal",
                "--purpose",
                "curiosity",
                "--enc-cert",
                "third-user-enc.crt.pem",
            ]),
            sender(&chain, "third-user"),
        ),
        1,
        "EXCHANGE_NOT_SHARED",
    );
    run_fails(
        &dir,
        &fetch_args(&chain, "third-user", "Dev Bureau/internal", &fetched),
        1,
        "EXCHANGE_NO_GRANT",
    );
    assert!(!fetched.exists());

    // An unconditional dataset is granted at once, for a few blocks: served, then expired.
    let out = run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "request",
                "Dev Bureau/register",
                "--purpose",
                "company checks",
                "--enc-cert",
                "third-user-enc.crt.pem",
                "--blocks",
                "4",
            ]),
            sender(&chain, "third-user"),
        ),
    );
    assert!(out.contains("granted at once until height"), "{out}");
    let expiry: u64 = out
        .split("until height ")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The grantee reads the confidential title with the version's key (the chain has it sealed).
    let args = fetch_args(&chain, "third-user", "Dev Bureau/register", &fetched);
    let o = gm(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("title \"Register of companies\""),
        "the fetch prints the opened confidential title: {err}"
    );
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&open).unwrap()
    );
    std::fs::remove_file(&fetched).unwrap();
    wait_for_height(&chain, expiry + 1);
    run_fails(
        &dir,
        &fetch_args(&chain, "third-user", "Dev Bureau/register", &fetched),
        1,
        "EXCHANGE_GRANT_EXPIRED",
    );
    assert!(!fetched.exists());

    // A grantee whose certificate its organisation revokes is refused.
    let out = run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "request",
                "Dev Bureau/licences",
                "--purpose",
                "audit",
                "--enc-cert",
                "third-revoked-enc.crt.pem",
            ]),
            sender(&chain, "third-revoked"),
        ),
    );
    let revoked_req = hex_after(&out, "request ");
    run_ok(
        &dir,
        &with(
            strings(&["data", "grant", &revoked_req, "--blocks", "1000"]),
            sender(&chain, "admin"),
        ),
    );
    let (third_ca_key, third_ca) = identity(&dir, "third-ca");
    let (_, revoked_cert) = identity(&dir, "third-revoked");
    let (_, revoked_enc) = identity(&dir, "third-revoked-enc");
    let now = now_secs();
    let revoke = |number: u64, certs: &[&Certificate]| {
        let crl = pki::issue_crl(
            &third_ca,
            &third_ca_key,
            number,
            UnixTime(now - 60 + number),
            UnixTime(now + 86400),
            &certs
                .iter()
                .map(|c| RevokedEntry {
                    serial: c.serial(),
                    revoked_at: UnixTime(now - 30),
                    reason: RevocationReason::KeyCompromise,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let file = format!("third-ca.crl.{number}.pem");
        std::fs::write(dir.join(&file), crl.to_pem()).unwrap();
        run_ok(
            &dir,
            &with(
                strings(&["tx", "identity", "revoke", "--crl", &file]),
                sender(&chain, "third-admin"),
            ),
        );
    };
    // Its encryption certificate revoked: the custodian refuses, and records the refusal.
    revoke(2, &[&revoked_enc]);
    run_fails(
        &dir,
        &fetch_args(&chain, "third-revoked", "Dev Bureau/licences", &fetched),
        1,
        "EXCHANGE_ENC_CERT_INVALID",
    );
    assert!(!fetched.exists());
    let revoked_id = revoked_cert.fingerprint().to_string();
    let log = json(&chain, &["data", "log", "Dev Bureau/licences"]);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["requester_cert"] == revoked_id.as_str()
                && r["outcome"] == "EXCHANGE_ENC_CERT_INVALID"),
        "{log}"
    );
    // Its signing certificate revoked too: the TLS handshake refuses it before any fetch.
    revoke(3, &[&revoked_enc, &revoked_cert]);
    let o = crate::dev_node::gm(
        &dir,
        &fetch_args(&chain, "third-revoked", "Dev Bureau/licences", &fetched)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_ne!(
        o.status.code(),
        Some(0),
        "a revoked grantee was served: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!fetched.exists());

    // The owner revokes Second Bureau's grant: refused from then on.
    run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "revoke",
                &second_req,
                "--reason",
                "the agreement ended",
            ]),
            sender(&chain, "admin"),
        ),
    );
    run_fails(
        &dir,
        &fetch_args(&chain, "second-user", "Dev Bureau/licences", &fetched),
        1,
        "EXCHANGE_NO_GRANT",
    );
    assert!(!fetched.exists());
    let shown = json(&chain, &["data", "show", "Dev Bureau/licences"]);
    let statuses: Vec<&str> = shown["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["revoked", "granted"], "{shown}");

    // Every served and refused fetch is in the log, with who and the outcome.
    let second_cert = identity(&dir, "second-user").1.fingerprint().to_string();
    let log = json(&chain, &["data", "log", "Dev Bureau/licences"]);
    let entries: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["requester_cert"] == second_cert.as_str())
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["request"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(entries.len(), 3, "{log}");
    assert_eq!(entries[0].0, "EXCHANGE_NO_GRANT", "{log}");
    assert_eq!(
        entries[1],
        ("served".to_string(), second_req.clone()),
        "{log}"
    );
    assert_eq!(entries[2].0, "EXCHANGE_NO_GRANT", "{log}");
    let log = json(&chain, &["data", "log", "Dev Bureau/register"]);
    let outcomes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["served", "EXCHANGE_GRANT_EXPIRED"], "{log}");
    let log = json(&chain, &["data", "log", "Dev Bureau/internal"]);
    assert_eq!(log[0]["outcome"], "EXCHANGE_NO_GRANT", "{log}");

    // Point to point: a file to both bureaus, fetched by one, acknowledged.
    let letter = document(&dir, "letter.bin", 2000);
    let out = run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "send",
                letter.to_str().unwrap(),
                "--to",
                "Second Bureau,Third Bureau",
                "--subject",
                "Joint inspection",
            ]),
            sender(&chain, "admin"),
        ),
    );
    let mid = hex_after(&out, "sent message ");
    let inbox = json(&chain, &["data", "inbox", "--org", "Second Bureau"]);
    assert_eq!(inbox[0]["id"], mid.as_str(), "{inbox}");
    run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "fetch",
                "--message",
                &mid,
                "--enc-key",
                "second-user-enc.key.pem",
                "--enc-pass-file",
                "pass",
                "--enc-cert",
                "second-user-enc.crt.pem",
                "--out",
                fetched.to_str().unwrap(),
                "--node",
                &chain.grpc,
            ]),
            tls_as("second-user"),
        ),
    );
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&letter).unwrap()
    );
    run_ok(
        &dir,
        &with(
            strings(&["data", "ack", &mid]),
            sender(&chain, "second-user"),
        ),
    );
    let outbox = json(&chain, &["data", "inbox", "--sent", "--org", "Dev Bureau"]);
    assert_eq!(
        outbox[0]["acknowledged_by"],
        serde_json::json!(["Second Bureau"]),
        "{outbox}"
    );
    let log = json(&chain, &["data", "log", "--message", &mid]);
    assert_eq!(log[0]["outcome"], "served", "{log}");
}
