//! GB/T 39786 §8.3 e (integrity of log records) and the platform standard's logging
//! requirement: the audit logs of the CA and the node (`crates/auditlog`, one implementation)
//! written through the same `Writer` the node uses, with an SM2 key, then attacked. The hash of
//! every entry is recomputed here from the format (docs/formats.md §9) with one-shot SM3 (the
//! suite's SM3, itself checked against the standard's vectors by the sm3 checks), and the first
//! two entries' hashes are pinned to values computed with OpenSSL 3's SM3 from the same
//! format; every signature is verified here with SM2, so the check does not take the log's own
//! verifier on trust; then each tampering an operator with write access to the file could make is shown
//! to be caught by `Log::verify` (the code behind `gmchain node audit-verify` and `gmchain ca
//! audit-verify`), including an attacker who recomputes every hash after an edit (only the
//! SM2 signatures stop that one).
//!
//! The files live in a fresh directory under the system's temporary directory, removed at the
//! end. What this does not show: that a deployed node's log file is intact (run `gmchain node
//! audit-verify --anchored` on it), nor anything of the node's operational log (stderr), which
//! is not integrity-protected.

use super::{Check, Evidence};
use ::auditlog::{AuditError, Entry, Kind, Log, Outcome, UnsignedTail, Writer};
use crypto::{PublicKey, Signature, Signer, UserId};
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SeededRandom;
use std::path::Path;
use std::sync::Arc;

pub(super) const CHECKS: &[Check] = &[Check {
    id: "audit-log-integrity",
    title: "Audit logs (CA and node): SM3 hash chain and SM2 signatures recomputed independently; an edited byte, a removed or reordered entry, re-hashed entries, a forged or removed signature, an unsigned tail, a log of the other kind and (against the anchored head) a truncation are each refused",
    run: audit_log_integrity,
}];

const SOURCE: &str = "gmchain-derived (logs written by crates/auditlog with SM2 keys from SeededRandom; hash per docs/formats.md §9 recomputed with one-shot SM3)";

/// The node log's first two entry hashes, computed with Python's hashlib over OpenSSL 3's SM3
/// from the format (domain ‖ prev ‖ seq ‖ time ‖ len‖field …) and the entries' fields below.
const KAT_HASHES: [&str; 2] = [
    "c2797e44ea7b7485106d7c731e01f22e2fafcd093ff09f6fb215d8defa5739ee",
    "ffbbf95dee06516b92cf5fa8d3df0eb995a3b1ed3779b9884e5be3d54cb47809",
];

fn case(name: &str, r: Result<(), String>) -> Evidence {
    super::sourced(SOURCE, name, r)
}

/// hash_n = SM3(domain ‖ hash_{n-1} ‖ seq ‖ time ‖ len‖operator ‖ len‖action ‖ len‖outcome ‖
/// len‖detail), built as one buffer and hashed in one call.
fn expected_hash(domain: &str, prev: &[u8], e: &Entry) -> [u8; 32] {
    let mut m = Vec::new();
    m.extend_from_slice(domain.as_bytes());
    m.extend_from_slice(prev);
    m.extend_from_slice(&e.seq.to_be_bytes());
    m.extend_from_slice(&e.time.to_be_bytes());
    let outcome = match e.outcome {
        Outcome::Done => "done",
        Outcome::Refused => "refused",
    };
    for f in [
        e.operator.as_str(),
        e.action.as_str(),
        outcome,
        e.detail.as_str(),
    ] {
        m.extend_from_slice(&(f.len() as u32).to_be_bytes());
        m.extend_from_slice(f.as_bytes());
    }
    crypto_sm::sm3::sm3(&m).0
}

/// Recomputes every link and hash and verifies every signature with SM2 (default user ID)
/// under `key`; returns how many signatures it verified.
fn recompute(domain: &str, entries: &[Entry], key: &PublicKey) -> Result<usize, String> {
    let mut prev = [0u8; 32];
    let mut signed = 0;
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as u64 || e.prev != hex::encode(prev) {
            return Err(format!(
                "entry {i}: sequence or link is not the expected one"
            ));
        }
        let h = expected_hash(domain, &prev, e);
        if e.hash != hex::encode(h) {
            return Err(format!(
                "entry {i}: hash {} is not SM3 of its fields",
                e.hash
            ));
        }
        if let Some(sig) = &e.sig {
            let der = hex::decode(sig).map_err(|_| format!("entry {i}: signature is not hex"))?;
            let sig = Signature::from_der(&der).map_err(|e| format!("entry {i}: {e}"))?;
            crypto_sm::sm2::verify(key, &UserId::default(), &h, &sig)
                .map_err(|e| format!("entry {i}: SM2 signature over its hash: {e}"))?;
            signed += 1;
        }
        prev = h;
    }
    Ok(signed)
}

fn write_lines(path: &Path, entries: &[Entry]) -> Result<(), String> {
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `entries` as the file `name` and expects `Log::verify` to refuse it as `want` says.
fn refused(
    dir: &Path,
    name: &str,
    kind: &'static Kind,
    entries: &[Entry],
    keys: &[PublicKey],
    expect_head: Option<&str>,
    want: impl Fn(&AuditError) -> bool,
) -> Result<(), String> {
    let path = dir.join(name);
    write_lines(&path, entries)?;
    match Log::new(&path, kind).verify(keys, expect_head, UnsignedTail::Refuse) {
        Ok(r) => Err(format!(
            "verified ({} entries, head {}), but must be refused",
            r.entries, r.head
        )),
        Err(e) if want(&e) => Ok(()),
        Err(e) => Err(format!("refused for another reason: {e}")),
    }
}

fn broken_at(seq: u64) -> impl Fn(&AuditError) -> bool {
    move |e| matches!(e, AuditError::Broken { seq: s, .. } if *s == seq)
}

/// Re-links and re-hashes every entry from `from` on, as an attacker without the key would
/// after an edit; signatures are left as they were.
fn rehash(domain: &str, entries: &mut [Entry], from: usize) {
    let mut prev = from
        .checked_sub(1)
        .and_then(|n| hex::decode(&entries[n].hash).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .unwrap_or([0u8; 32]);
    for e in entries.iter_mut().skip(from) {
        e.prev = hex::encode(prev);
        let h = expected_hash(domain, &prev, e);
        e.hash = hex::encode(h);
        prev = h;
    }
}

/// Recomputes `entries` (read from `path`), expects `signatures` SM2 signatures, and verifies
/// the file with `Log::verify`.
fn intact(
    path: &Path,
    kind: &'static Kind,
    entries: &[Entry],
    key: &PublicKey,
    signatures: usize,
    expect_head: Option<&str>,
) -> Result<(), String> {
    let signed = recompute(kind.domain, entries, key)?;
    if signed != signatures {
        return Err(format!("{signed} SM2 signatures, expected {signatures}"));
    }
    Log::new(path, kind)
        .verify(std::slice::from_ref(key), expect_head, UnsignedTail::Refuse)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A log cut back to a signed entry: it verifies without a head, and not against `head`.
fn cut(dir: &Path, entries: &[Entry], keys: &[PublicKey], head: &str) -> Result<(), String> {
    let path = dir.join("cut.log");
    write_lines(&path, entries)?;
    Log::new(&path, &auditlog::NODE)
        .verify(keys, None, UnsignedTail::Refuse)
        .map_err(|e| format!("without a head: {e}"))?;
    refused(
        dir,
        "cut.log",
        &auditlog::NODE,
        entries,
        keys,
        Some(head),
        |e| matches!(e, AuditError::HeadMismatch { .. }),
    )
}

fn audit_log_integrity() -> Vec<Evidence> {
    match run_cases() {
        Ok(cases) => cases,
        Err(e) => vec![case("audit logs written for the check", Err(e))],
    }
}

fn run_cases() -> Result<Vec<Evidence>, String> {
    let scratch = crate::Scratch::new("conformance-auditlog")?;
    let dir = scratch.path();
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(0x39786)));
    let node_key = p.generate().map_err(|e| e.to_string())?;
    let ca_key = p.generate().map_err(|e| e.to_string())?;
    let other = p.generate().map_err(|e| e.to_string())?;
    let (node_pk, ca_pk) = (node_key.public_key(), ca_key.public_key());
    let t0 = 1_767_225_600;

    // The node's log as the node writes it: entries, a signed checkpoint, more, a checkpoint.
    let node_path = dir.join("node-audit.log");
    let mut w = Writer::open(&node_path, &auditlog::NODE).map_err(|e| e.to_string())?;
    let events = [
        (
            "start",
            Outcome::Done,
            "gmchain (pid 1), configuration node.toml sm3 00",
        ),
        (
            "p2p-link-accepted",
            Outcome::Done,
            "incoming link from 127.0.0.2:27102",
        ),
        (
            "api-connection-refused",
            Outcome::Refused,
            "refused 12 times in minute 0: TLS handshake failed",
        ),
        (
            "supervision.freeze-served",
            Outcome::Done,
            "cert 00…: unusual volume",
        ),
        ("stop", Outcome::Done, "stopped cleanly"),
    ];
    for (i, (action, outcome, detail)) in events.iter().enumerate() {
        w.append(t0 + i as u64, "node-1", action, *outcome, detail, None)
            .map_err(|e| e.to_string())?;
        if i == 2 || i == events.len() - 1 {
            w.checkpoint(t0 + i as u64, "node-1", &node_key)
                .map_err(|e| e.to_string())?;
        }
    }
    let node = Log::new(&node_path, &auditlog::NODE)
        .read()
        .map_err(|e| e.to_string())?;
    let head = node.last().map(|e| e.hash.clone()).unwrap_or_default();
    let nkeys = std::slice::from_ref(&node_pk);

    // The CA's log: every entry signed.
    let ca_path = dir.join("ca-audit.log");
    let mut cw = Writer::open(&ca_path, &auditlog::CA).map_err(|e| e.to_string())?;
    for (i, action) in ["init", "issue", "revoke"].iter().enumerate() {
        let signer: &dyn Signer = &ca_key;
        cw.append(
            t0 + i as u64,
            "CN=ca-admin",
            action,
            Outcome::Done,
            "serial 01",
            Some(signer),
        )
        .map_err(|e| e.to_string())?;
    }
    let ca = Log::new(&ca_path, &auditlog::CA)
        .read()
        .map_err(|e| e.to_string())?;
    let ckeys = std::slice::from_ref(&ca_pk);

    let mut out = Vec::new();
    out.push(Evidence {
        case: "node log: the first two entries' hashes equal those OpenSSL 3's SM3 gives for the documented format".into(),
        source: "OpenSSL 3 SM3 (Python hashlib), docs/formats.md §9".into(),
        pass: node.len() >= 2
            && node[0].hash == KAT_HASHES[0]
            && node[1].hash == KAT_HASHES[1],
        detail: format!(
            "got {} and {}",
            node.first().map_or("none", |e| e.hash.as_str()),
            node.get(1).map_or("none", |e| e.hash.as_str())
        ),
    });
    out.push(case(
        "node log: every hash is SM3 of its fields and the previous hash, every checkpoint an SM2 signature under the node key, and the log verifies",
        intact(&node_path, &auditlog::NODE, &node, &node_pk, 2, Some(&head)),
    ));
    out.push(case(
        "CA log: every entry SM2-signed under the CA key over its SM3 hash, and the log verifies",
        intact(&ca_path, &auditlog::CA, &ca, &ca_pk, ca.len(), None),
    ));
    // One byte of each field of an entry edited.
    for (field, edit) in [
        ("time", 0usize),
        ("operator", 1),
        ("action", 2),
        ("outcome", 3),
        ("detail", 4),
    ] {
        let mut t = node.clone();
        let e = &mut t[4];
        match edit {
            0 => e.time ^= 1,
            1 => e.operator.push('x'),
            2 => e.action.replace_range(0..1, "t"),
            3 => e.outcome = Outcome::Refused,
            _ => e.detail = e.detail.replacen("unusual", "usual", 1),
        }
        out.push(case(
            &format!("node log: entry 4's {field} edited is refused at entry 4"),
            refused(
                dir,
                "edit.log",
                &auditlog::NODE,
                &t,
                nkeys,
                None,
                broken_at(4),
            ),
        ));
    }
    let mut t = node.clone();
    t.remove(2);
    out.push(case(
        "node log: an entry removed is refused where it was",
        refused(
            dir,
            "removed.log",
            &auditlog::NODE,
            &t,
            nkeys,
            None,
            broken_at(2),
        ),
    ));
    let mut t = node.clone();
    t.swap(0, 1);
    out.push(case(
        "node log: two entries swapped are refused",
        refused(
            dir,
            "swapped.log",
            &auditlog::NODE,
            &t,
            nkeys,
            None,
            broken_at(0),
        ),
    ));
    // An attacker who edits entry 1 and recomputes every later hash: the chain is whole
    // again, but the first checkpoint's signature no longer covers it.
    let mut t = node.clone();
    t[1].detail = "incoming link from 10.9.9.9:1".into();
    rehash(auditlog::NODE.domain, &mut t, 1);
    let checkpoint = node
        .iter()
        .position(|e| e.sig.is_some())
        .unwrap_or_default() as u64;
    out.push(case(
        "node log: an entry edited and every later hash recomputed is refused at the first checkpoint's SM2 signature",
        refused(dir, "rehashed.log", &auditlog::NODE, &t, nkeys, None, |e| {
            matches!(e, AuditError::Broken { seq, reason } if *seq == checkpoint && reason.contains("signature"))
        }),
    ));
    // A checkpoint re-signed with another key, and one with its signature removed.
    let mut t = node.clone();
    let c = checkpoint as usize;
    let h: Vec<u8> = hex::decode(&t[c].hash).map_err(|e| e.to_string())?;
    let forged = other
        .sign(&UserId::default(), &h)
        .map_err(|e| e.to_string())?;
    t[c].sig = Some(hex::encode(forged.to_der()));
    out.push(case(
        "node log: a checkpoint signed by another key is refused",
        refused(
            dir,
            "forged.log",
            &auditlog::NODE,
            &t,
            nkeys,
            None,
            broken_at(checkpoint),
        ),
    ));
    let mut t = node.clone();
    t[c].sig = None;
    out.push(case(
        "node log: a checkpoint without its signature is refused",
        refused(
            dir,
            "unsigned-cp.log",
            &auditlog::NODE,
            &t,
            nkeys,
            None,
            broken_at(checkpoint),
        ),
    ));
    // Entries appended after the last checkpoint by someone without the key.
    let mut t = node.clone();
    let mut extra = t[1].clone();
    extra.seq = t.len() as u64;
    t.push(extra);
    rehash(auditlog::NODE.domain, &mut t, node.len());
    out.push(case(
        "node log: an entry appended after the last checkpoint (no signature covers it) is refused",
        refused(dir, "tail.log", &auditlog::NODE, &t, nkeys, None, |e| {
            matches!(e, AuditError::UnsignedTail { .. })
        }),
    ));
    // Cut back to the first checkpoint: the rest of the log is whole, so only the head
    // recorded elsewhere (anchored on the chain, or --expect-head) shows it.
    let t: Vec<Entry> = node[..=c].to_vec();
    out.push(case(
        "node log: cut back to a checkpoint verifies alone, and is refused against the anchored head",
        cut(dir, &t, nkeys, &head),
    ));
    // The CA log: an entry with its signature removed, a re-hashed edit, and the node's log
    // presented as a CA log (another hash domain).
    let mut t = ca.clone();
    t[1].sig = None;
    out.push(case(
        "CA log: an entry without its signature is refused",
        refused(
            dir,
            "ca-unsigned.log",
            &auditlog::CA,
            &t,
            ckeys,
            None,
            broken_at(1),
        ),
    ));
    let mut t = ca.clone();
    t[1].detail = "serial 02".into();
    rehash(auditlog::CA.domain, &mut t, 1);
    out.push(case(
        "CA log: an entry edited and re-hashed is refused at its own SM2 signature",
        refused(
            dir,
            "ca-rehashed.log",
            &auditlog::CA,
            &t,
            ckeys,
            None,
            |e| matches!(e, AuditError::Broken { seq: 1, reason } if reason.contains("signature")),
        ),
    ));
    // A node log of one signed checkpoint satisfies the CA's signature rule too: only the
    // hash domain can refuse it as a CA log.
    let one_path = dir.join("one.log");
    let mut one = Writer::open(&one_path, &auditlog::NODE).map_err(|e| e.to_string())?;
    one.checkpoint(t0, "node-1", &node_key)
        .map_err(|e| e.to_string())?;
    let one = Log::new(&one_path, &auditlog::NODE)
        .read()
        .map_err(|e| e.to_string())?;
    out.push(case(
        "a node log presented as a CA log is refused at its first entry's hash (the hash domains differ)",
        refused(dir, "kind.log", &auditlog::CA, &one, nkeys, None, |e| {
            matches!(e, AuditError::Broken { seq: 0, reason } if reason.contains("does not match its hash"))
        }),
    ));
    Ok(out)
}
