//! Each check of verification, broken once: edits of every byte and every field, removal,
//! reordering, truncation, forged and missing checkpoint signatures, the unsigned tail, the
//! domain, and the bounds of aggregation.

use super::*;
use crypto::Signer;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SeededRandom;
use std::path::Path;
use std::sync::Arc;

fn key(seed: u64) -> crypto_sm::SoftSigner {
    SoftwareProvider::new(Arc::new(SeededRandom::new(seed)))
        .generate()
        .unwrap()
}

/// A node log of 10 entries: unsigned events 0-3, checkpoint 4, events 5-8, checkpoint 9.
/// Returns the heads after each entry.
fn node_log(path: &Path, signer: &dyn Signer) -> Vec<String> {
    let mut w = Writer::open(path, &NODE).unwrap();
    let mut heads = Vec::new();
    for i in 0..10u64 {
        let e = if i % 5 == 4 {
            w.checkpoint(1000 + i, "node-1", signer).unwrap()
        } else {
            w.append(
                1000 + i,
                "node-1",
                "p2p-link-accepted",
                Outcome::Done,
                &format!("peer 10.0.0.{i}"),
                None,
            )
            .unwrap()
        };
        heads.push(e.hash);
    }
    heads
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write(path: &Path, l: &[String]) {
    std::fs::write(path, l.iter().map(|x| format!("{x}\n")).collect::<String>()).unwrap();
}

fn broken_at(r: Result<AuditReport, AuditError>) -> u64 {
    match r {
        Err(AuditError::Broken { seq, .. }) => seq,
        other => panic!("expected a broken entry, got {other:?}"),
    }
}

struct Fixture {
    _t: tempfile::TempDir,
    log: Log,
    key: crypto::PublicKey,
    heads: Vec<String>,
    full: Vec<String>,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("audit.log");
    let signer = key(7);
    let heads = node_log(&path, &signer);
    let full = lines(&path);
    Fixture {
        log: Log::new(path, &NODE),
        key: signer.public_key(),
        _t: t,
        heads,
        full,
    }
}

impl Fixture {
    fn verify(&self) -> Result<AuditReport, AuditError> {
        self.log
            .verify(std::slice::from_ref(&self.key), None, UnsignedTail::Allow)
    }
    fn put(&self, l: &[String]) {
        write(self.log.path(), l);
    }
}

#[test]
fn an_intact_log_verifies_with_its_checkpoints_as_signed_heads() {
    let f = fixture();
    let r = f
        .log
        .verify(std::slice::from_ref(&f.key), None, UnsignedTail::Refuse)
        .unwrap();
    assert_eq!(r.entries, 10);
    assert_eq!(r.head, f.heads[9]);
    assert_eq!(
        r.last_signed,
        Some(SignedHead {
            seq: 9,
            hash: f.heads[9].clone()
        })
    );
    assert_eq!(r.unsigned, vec![0, 1, 2, 3, 5, 6, 7, 8]);
    assert!(r.unsigned_tail.is_empty());
    // The expected head matches, in either case.
    f.log
        .verify(
            std::slice::from_ref(&f.key),
            Some(&f.heads[9].to_uppercase()),
            UnsignedTail::Refuse,
        )
        .unwrap();
    // One of several keys (a key that changed over the log's life) is enough.
    let other = key(8).public_key();
    f.log
        .verify(&[other, f.key], None, UnsignedTail::Allow)
        .unwrap();
    // The checkpoint's detail names what it covers.
    let cp: Entry = serde_json::from_str(&f.full[9]).unwrap();
    assert_eq!(cp.action, CHECKPOINT);
    assert!(cp.detail.contains("entries 5 to 9"), "{}", cp.detail);
}

#[test]
fn every_edited_byte_of_an_event_and_of_a_checkpoint_is_detected_at_its_entry() {
    let f = fixture();
    for target in [2usize, 4] {
        let line = f.full[target].as_bytes().to_vec();
        for at in 0..line.len() {
            let mut edited = line.clone();
            edited[at] = if line[at] == b'0' { b'1' } else { b'0' };
            let mut l = f.full.clone();
            l[target] = String::from_utf8(edited).unwrap();
            f.put(&l);
            assert_eq!(
                broken_at(f.verify()),
                target as u64,
                "byte {at} of entry {target}: {}",
                l[target]
            );
        }
    }
}

#[test]
fn an_edit_of_each_field_is_detected_at_its_entry() {
    let f = fixture();
    type Edit = (&'static str, fn(&mut Entry));
    let edits: Vec<Edit> = vec![
        ("seq", |e| e.seq += 100),
        ("time", |e| e.time += 1),
        ("operator", |e| e.operator.push('x')),
        ("action", |e| e.action.push('x')),
        ("outcome", |e| e.outcome = Outcome::Refused),
        ("detail", |e| e.detail.push('x')),
        ("prev", |e| e.prev = "11".repeat(32)),
        ("hash", |e| e.hash = "22".repeat(32)),
        ("sig", |e| {
            e.sig = match &e.sig {
                // Another valid DER signature: the same one with s replaced is not at hand,
                // so a signature of another message by the same key.
                Some(_) => Some(hex::encode(
                    key(7)
                        .sign(&crypto::UserId::default(), b"another message")
                        .unwrap()
                        .to_der(),
                )),
                None => Some("00".into()),
            }
        }),
    ];
    for target in [3usize, 9] {
        for (name, edit) in &edits {
            let mut e: Entry = serde_json::from_str(&f.full[target]).unwrap();
            edit(&mut e);
            let mut l = f.full.clone();
            l[target] = serde_json::to_string(&e).unwrap();
            f.put(&l);
            assert_eq!(
                broken_at(f.verify()),
                target as u64,
                "field {name} of entry {target}"
            );
        }
    }
}

#[test]
fn removed_and_reordered_entries_are_detected() {
    let f = fixture();
    for removed in [0usize, 3, 4, 7] {
        let mut l = f.full.clone();
        l.remove(removed);
        f.put(&l);
        assert_eq!(broken_at(f.verify()), removed as u64, "removed {removed}");
    }
    let mut l = f.full.clone();
    l.swap(2, 3);
    f.put(&l);
    assert_eq!(broken_at(f.verify()), 2);
    // Reordered with their sequence numbers and links recomputed is a rewrite: the
    // checkpoint's signature no longer covers the chain.
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("audit.log");
    let mut w = Writer::open(&path, &NODE).unwrap();
    for l in [&f.full[0], &f.full[2], &f.full[1], &f.full[3]] {
        let e: Entry = serde_json::from_str(l).unwrap();
        w.append(e.time, &e.operator, &e.action, e.outcome, &e.detail, None)
            .unwrap();
    }
    let mut rewritten = lines(&path);
    rewritten.extend_from_slice(&f.full[4..]);
    f.put(&rewritten);
    assert_eq!(broken_at(f.verify()), 4);
}

#[test]
fn a_cut_tail_verifies_alone_and_is_caught_by_the_expected_head() {
    let f = fixture();
    // Cut right after checkpoint 4: the shorter log is consistent, even strictly.
    f.put(&f.full[..5]);
    let r = f
        .log
        .verify(std::slice::from_ref(&f.key), None, UnsignedTail::Refuse)
        .unwrap();
    assert_eq!(r.entries, 5);
    match f.log.verify(
        std::slice::from_ref(&f.key),
        Some(&f.heads[9]),
        UnsignedTail::Allow,
    ) {
        Err(e @ AuditError::HeadMismatch { entries: 5, .. }) => {
            assert!(e.to_string().contains("truncated"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // An empty file too.
    f.put(&[]);
    assert!(matches!(
        f.log.verify(
            std::slice::from_ref(&f.key),
            Some(&f.heads[9]),
            UnsignedTail::Allow
        ),
        Err(AuditError::HeadMismatch { entries: 0, .. })
    ));
}

#[test]
fn forged_checkpoint_signatures_are_detected() {
    let f = fixture();
    // The whole log rewritten by someone with another key.
    let t = tempfile::tempdir().unwrap();
    let forged = t.path().join("audit.log");
    node_log(&forged, &key(99));
    let log = Log::new(&forged, &NODE);
    let e = log
        .verify(std::slice::from_ref(&f.key), None, UnsignedTail::Allow)
        .unwrap_err();
    assert!(
        matches!(&e, AuditError::Broken { seq: 4, reason } if reason.contains("does not verify with the node key")),
        "{e}"
    );
    // Checkpoint 4's valid signature moved onto checkpoint 9.
    let mut l = f.full.clone();
    let mut cp9: Entry = serde_json::from_str(&l[9]).unwrap();
    let cp4: Entry = serde_json::from_str(&l[4]).unwrap();
    cp9.sig = cp4.sig;
    l[9] = serde_json::to_string(&cp9).unwrap();
    f.put(&l);
    assert_eq!(broken_at(f.verify()), 9);
    // A checkpoint without its signature.
    let mut l = f.full.clone();
    let mut cp: Entry = serde_json::from_str(&l[4]).unwrap();
    cp.sig = None;
    l[4] = serde_json::to_string(&cp).unwrap();
    f.put(&l);
    let e = f.verify().unwrap_err();
    assert!(
        matches!(&e, AuditError::Broken { seq: 4, reason } if reason.contains("checkpoint without a signature")),
        "{e}"
    );
    // Signature bytes that are not DER, or not hex.
    for bad in ["3006020101020101ff", "zz"] {
        let mut l = f.full.clone();
        let mut cp: Entry = serde_json::from_str(&l[4]).unwrap();
        cp.sig = Some(bad.into());
        l[4] = serde_json::to_string(&cp).unwrap();
        f.put(&l);
        assert_eq!(broken_at(f.verify()), 4, "{bad}");
    }
}

#[test]
fn the_unsigned_tail_passes_only_without_strict() {
    let f = fixture();
    let mut w = Writer::open(f.log.path(), &NODE).unwrap();
    assert_eq!(w.unsigned_since(), 0);
    for i in 0..2 {
        w.append(2000 + i, "node-1", "start", Outcome::Done, "x", None)
            .unwrap();
    }
    assert_eq!(w.unsigned_since(), 2);
    let r = f.verify().unwrap();
    assert_eq!(r.unsigned_tail, vec![10, 11]);
    assert_eq!(r.last_signed.as_ref().map(|s| s.seq), Some(9));
    assert_eq!(Some(r.head.clone()), w.head().map(|(_, h)| hex::encode(h)));
    match f
        .log
        .verify(std::slice::from_ref(&f.key), None, UnsignedTail::Refuse)
    {
        Err(
            e @ AuditError::UnsignedTail {
                first: 10,
                last: 11,
                last_signed: Some(9),
            },
        ) => assert!(
            e.to_string().contains("entries 10 to 11 are unsigned"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // A checkpoint covers them again.
    w.checkpoint(2002, "node-1", &key(7)).unwrap();
    f.log
        .verify(std::slice::from_ref(&f.key), None, UnsignedTail::Refuse)
        .unwrap();
    // A log with no checkpoint at all: no signed head.
    let t = tempfile::tempdir().unwrap();
    let mut w = Writer::open(t.path().join("a.log"), &NODE).unwrap();
    w.append(1, "n", "start", Outcome::Done, "x", None).unwrap();
    let log = Log::new(t.path().join("a.log"), &NODE);
    let r = log
        .verify(std::slice::from_ref(&f.key), None, UnsignedTail::Allow)
        .unwrap();
    assert_eq!((r.last_signed, r.unsigned_tail), (None, vec![0]));
    assert!(matches!(
        log.verify(std::slice::from_ref(&f.key), None, UnsignedTail::Refuse),
        Err(AuditError::UnsignedTail {
            last_signed: None,
            ..
        })
    ));
}

#[test]
fn a_node_signs_only_checkpoints() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("audit.log");
    let signer = key(7);
    let mut w = Writer::open(&path, &NODE).unwrap();
    w.append(1, "n", "start", Outcome::Done, "x", Some(&signer))
        .unwrap();
    let e = Log::new(&path, &NODE)
        .verify(&[signer.public_key()], None, UnsignedTail::Allow)
        .unwrap_err();
    assert!(
        matches!(&e, AuditError::Broken { seq: 0, reason } if reason.contains("signs only its checkpoints")),
        "{e}"
    );
    // The writer refuses to continue such a log.
    assert!(matches!(
        Writer::open(&path, &NODE),
        Err(AuditError::Broken { seq: 0, .. })
    ));
}

#[test]
fn an_entry_does_not_verify_in_a_log_of_the_other_kind() {
    let t = tempfile::tempdir().unwrap();
    let signer = key(7);
    let ca = Log::new(t.path().join("ca.log"), &CA);
    ca.append(1, "op", "issue", Outcome::Done, "x", Some(&signer))
        .unwrap();
    ca.verify(&[signer.public_key()], None, UnsignedTail::Refuse)
        .unwrap();
    // The same bytes read as a node log: the domain is part of the hash (a node entry that
    // is unsigned would also break the CA's signature rule).
    let as_node = Log::new(ca.path(), &NODE);
    let e = as_node
        .verify(&[signer.public_key()], None, UnsignedTail::Allow)
        .unwrap_err();
    assert!(
        matches!(&e, AuditError::Broken { seq: 0, reason } if reason.contains("does not match its hash")),
        "{e}"
    );
}

#[test]
fn damaged_lines_are_refused_before_anything_is_appended() {
    let f = fixture();
    // A write cut short: the last line without its newline.
    let mut bytes = std::fs::read(f.log.path()).unwrap();
    bytes.truncate(bytes.len() - 20);
    std::fs::write(f.log.path(), &bytes).unwrap();
    for r in [
        Writer::open(f.log.path(), &NODE).map(|_| ()),
        f.verify().map(|_| ()),
    ] {
        match r {
            Err(AuditError::Broken { seq: 9, reason }) => {
                assert!(reason.contains("no newline"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    // A line over the limit is refused without being parsed.
    std::fs::write(f.log.path(), vec![b'x'; MAX_LINE + 10]).unwrap();
    match f.verify() {
        Err(AuditError::Broken { seq: 0, reason }) => {
            assert!(reason.contains("longer"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // An edited entry stops the writer at open.
    let mut l = f.full.clone();
    l[6] = l[6].replace("10.0.0.6", "10.0.0.7");
    f.put(&l);
    assert!(matches!(
        Writer::open(f.log.path(), &NODE),
        Err(AuditError::Broken { seq: 6, .. })
    ));
    // A missing file is an empty log.
    let t = tempfile::tempdir().unwrap();
    let w = Writer::open(t.path().join("none.log"), &NODE).unwrap();
    assert_eq!(w.head(), None);
}

#[test]
fn ten_thousand_refusals_of_one_peer_in_one_minute_make_one_entry() {
    let minute = 29_000_000u64;
    let mut r = Refusals::default();
    for i in 0..10_000u64 {
        let reason = if i % 2 == 0 {
            "not admitted"
        } else {
            "handshake timed out"
        };
        r.add(minute * 60 + i % 60, "p2p-link-refused", "10.9.9.9", reason);
    }
    // Nothing of the current minute is drained before it ends.
    assert!(r.drain_before(minute).is_empty());
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("audit.log");
    let mut w = Writer::open(&path, &NODE).unwrap();
    let summaries = r.drain_before(minute + 1);
    assert!(r.is_empty());
    for s in &summaries {
        w.append(
            (s.minute + 1) * 60,
            &s.peer,
            s.action,
            Outcome::Refused,
            &s.detail(),
            None,
        )
        .unwrap();
    }
    let entries = Log::new(&path, &NODE).read().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let d = &entries[0].detail;
    assert!(d.contains("refused 10000 times"), "{d}");
    assert!(d.contains("not admitted x5000"), "{d}");
    assert!(d.contains("handshake timed out x5000"), "{d}");
}

#[test]
fn aggregation_is_bounded_in_peers_and_reasons_and_split_by_minute_and_channel() {
    let minute = 100u64;
    let mut r = Refusals::default();
    // Many addresses in one minute: at most MAX_PEERS_PER_MINUTE + 1 entries.
    for i in 0..5_000u32 {
        r.add(
            minute * 60,
            "api-connection-refused",
            &format!("peer-{i}"),
            "x",
        );
    }
    // Many reasons from one peer: MAX_REASONS named, the rest counted.
    for i in 0..50 {
        r.add(
            minute * 60 + 1,
            "p2p-link-refused",
            "p",
            &format!("reason {i}"),
        );
    }
    // The next minute is another entry.
    r.add(
        (minute + 1) * 60,
        "p2p-link-refused",
        "p",
        &"long ".repeat(100),
    );
    let all = r.drain_all();
    let api: Vec<_> = all
        .iter()
        .filter(|s| s.action == "api-connection-refused")
        .collect();
    assert_eq!(api.len(), MAX_PEERS_PER_MINUTE + 1);
    assert_eq!(api.iter().map(|s| s.count).sum::<u64>(), 5_000);
    let others = api.iter().find(|s| s.peer == OTHER_PEERS).unwrap();
    assert_eq!(others.count, 5_000 - MAX_PEERS_PER_MINUTE as u64);
    let p2p: Vec<_> = all
        .iter()
        .filter(|s| s.action == "p2p-link-refused")
        .collect();
    assert_eq!(p2p.len(), 2);
    assert_eq!(p2p[0].reasons.len(), MAX_REASONS);
    assert_eq!(p2p[0].other_reasons, 50 - MAX_REASONS as u64);
    assert!(p2p[0].detail().contains("other reasons x46"));
    assert_eq!(p2p[1].minute, minute + 1);
    assert_eq!(p2p[1].reasons[0].0.len(), MAX_REASON_LEN);
    assert!(r.is_empty());
}

#[test]
fn key_use_is_counted_per_purpose_and_reset_when_taken() {
    let uses = Arc::new(KeyUse::default());
    let inner: Arc<dyn Signer> = Arc::new(key(7));
    let votes = CountingSigner::new(inner.clone(), Purpose::BlockAndVoteSigning, uses.clone());
    let tls = CountingSigner::new(inner.clone(), Purpose::TlsHandshake, uses.clone());
    for _ in 0..3 {
        votes.sign(&crypto::UserId::default(), b"m").unwrap();
    }
    tls.sign_digest(&crypto::Digest([1; 32])).unwrap();
    assert_eq!(votes.public_key(), inner.public_key());
    let taken = uses.take();
    assert_eq!(
        taken,
        vec![
            (Purpose::BlockAndVoteSigning, 3),
            (Purpose::TlsHandshake, 1)
        ]
    );
    assert_eq!(
        KeyUse::detail(&taken),
        "since the last checkpoint: block-and-vote-signing 3, tls-handshake 1"
    );
    assert!(uses.take().is_empty());
}

/// A CA log written by gmchain before this crate existed (commit a3f3f94, `gmchain ca init`,
/// `ca crl`, a `ca crl` with a wrong passphrase, `ca crl`): it verifies unchanged, its
/// key-unavailable refusal covered by the signature after it.
#[test]
fn a_ca_log_written_before_this_crate_verifies_byte_for_byte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let key_hex = std::fs::read_to_string(dir.join("ca-before-auditlog.key.hex")).unwrap();
    let key = crypto::PublicKey::from_uncompressed(&hex::decode(key_hex.trim()).unwrap()).unwrap();
    let log = Log::new(dir.join("ca-before-auditlog.log"), &CA);
    let head = "5334217d7216a338ac4516c6733c307790e5b241fc152c79ac444feec0fa2d49";
    let r = log
        .verify(std::slice::from_ref(&key), Some(head), UnsignedTail::Refuse)
        .unwrap();
    assert_eq!((r.entries, r.unsigned.clone()), (4, vec![2]));
    assert_eq!(r.last_signed.map(|s| s.seq), Some(3));
    // Read back and written again, each line is the same bytes.
    let text = std::fs::read_to_string(log.path()).unwrap();
    for (line, entry) in text.lines().zip(log.read().unwrap()) {
        assert_eq!(serde_json::to_string(&entry).unwrap(), line);
    }
    // The same file is no node log.
    assert_eq!(
        broken_at(Log::new(log.path(), &NODE).verify(&[key], None, UnsignedTail::Allow)),
        0
    );
}

/// The node's entry hash, pinned to a value computed by OpenSSL 3.0.19 (`openssl dgst -sm3`)
/// over the bytes the crate documents: "gmchain-node-audit-v1" ‖ 32 zero bytes ‖ seq 0 ‖
/// time 1700000000 ‖ each field with its 4-byte length.
#[test]
fn the_node_entry_hash_matches_openssl() {
    let t = tempfile::tempdir().unwrap();
    let log = Log::new(t.path().join("a.log"), &NODE);
    let e = log
        .append(
            1_700_000_000,
            "node-1",
            "start",
            Outcome::Done,
            "gmchain 0.1.0, config sm3 00",
            None,
        )
        .unwrap();
    assert_eq!(
        e.hash,
        "eebb4752b5f7733095a4740251054c8f32c20a4a6b5a627dcd7112fdb211f1fb"
    );
}
