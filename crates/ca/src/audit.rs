//! The CA audit log: one JSON line per action or refused action, each naming the operator,
//! hash-chained with SM3 and signed by the CA key (GB/T 39786 §8.3 e: integrity of logs). The
//! chain, the line format and verification are the `auditlog` crate's, shared with the node's
//! log; this module is the CA's use of it (kind [`auditlog::CA`], its errors as [`CaError`]).
//!
//! hash_n = SM3("gmchain-ca-audit-v1" ‖ hash_{n-1} ‖ seq ‖ time ‖ len‖operator ‖ len‖action ‖
//! len‖outcome ‖ len‖detail), with hash_0 = 32 zero bytes and lengths as 4-byte big-endian; the
//! signature is SM2 (default user ID) over hash_n. Editing an entry breaks its hash; removing one
//! breaks the next entry's link; truncating the tail is caught by comparing the last hash with
//! the head printed after each command (`--expect-head`).
//!
//! An action that changes the CA is recorded ahead of its commit (write-ahead): its `done`
//! entry is appended once every step that can refuse it has passed, just before the index is
//! written, so every certificate, revocation and CRL number the index records has its entry.
//! If the index write then fails, a `refused` entry with code `CA_NOT_COMMITTED` follows and
//! names the `done` entry that did not take effect; after a crash between the two, a `done`
//! entry may name a certificate that the index does not record (and no one received).
//!
//! A refusal's detail starts with its stable code (`CA_RENEW_REVOKED: …`). Exactly one kind of
//! entry may lack a signature: a refusal with code `CA_KEY_UNAVAILABLE`, recorded when the key
//! that would sign it could not be opened. Such an entry is authenticated only once a later
//! signed entry's hash chain runs through it; until then it is the log's unsigned tail, which
//! anyone who can write the file could have forged (it may also hide a cut-off signed tail), so
//! verification reports the last signed head besides the head and `UnsignedTail::Refuse`
//! (`audit-verify --strict`) fails on an unsigned tail. Any other unsigned entry breaks the log.

use crate::error::CaError;
use auditlog::AuditError;
use crypto::{PublicKey, Signer};
use std::path::PathBuf;

pub use auditlog::{AuditReport, Entry as AuditEntry, Outcome, SignedHead, UnsignedTail};

impl From<AuditError> for CaError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Io { path, source } => CaError::Io { path, source },
            AuditError::Corrupt { path, reason } => CaError::Corrupt { path, reason },
            AuditError::Broken { seq, reason } => CaError::AuditBroken { seq, reason },
            AuditError::HeadMismatch {
                expected,
                actual,
                entries,
            } => CaError::AuditHeadMismatch {
                expected,
                actual,
                entries,
            },
            AuditError::UnsignedTail {
                first,
                last,
                last_signed,
            } => CaError::AuditUnsignedTail {
                first,
                last,
                last_signed,
            },
            AuditError::Sign(e) => CaError::Sign(e),
            // `AuditError` is non-exhaustive; a new failure still names the log.
            other => CaError::Corrupt {
                path: PathBuf::from("audit.log"),
                reason: other.to_string(),
            },
        }
    }
}

/// The log file.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn log(&self) -> auditlog::Log {
        auditlog::Log::new(self.path.clone(), &auditlog::CA)
    }

    /// Checks that an entry can be appended: the reading of the log [`AuditLog::append`] does
    /// first. `CaDir::audited` calls it before an action, so that a log that cannot record the
    /// action refuses it before it changes anything.
    /// Returns how many entries the log holds.
    pub fn check_appendable(&self) -> Result<u64, CaError> {
        Ok(self.log().check_appendable()?)
    }

    /// Appends an entry and returns the new head. The caller holds the CA directory's lock.
    pub fn append(
        &self,
        time: u64,
        operator: &str,
        action: &str,
        outcome: Outcome,
        detail: &str,
        signer: Option<&dyn Signer>,
    ) -> Result<String, CaError> {
        self.append_entry(time, operator, action, outcome, detail, signer)
            .map(|e| e.hash)
    }

    /// Appends an entry and returns it.
    pub(crate) fn append_entry(
        &self,
        time: u64,
        operator: &str,
        action: &str,
        outcome: Outcome,
        detail: &str,
        signer: Option<&dyn Signer>,
    ) -> Result<AuditEntry, CaError> {
        Ok(self
            .log()
            .append(time, operator, action, outcome, detail, signer)?)
    }

    /// Verifies the whole log against the CA's public key: links, hashes, signatures, and that
    /// only `CA_KEY_UNAVAILABLE` refusals are unsigned; with `expect_head`, also that no entry
    /// was cut off the end; with `UnsignedTail::Refuse`, that the last entry is signed.
    pub fn verify(
        &self,
        ca_key: &PublicKey,
        expect_head: Option<&str>,
        tail: UnsignedTail,
    ) -> Result<AuditReport, CaError> {
        Ok(self
            .log()
            .verify(std::slice::from_ref(ca_key), expect_head, tail)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;
    use std::sync::Arc;

    fn setup() -> (tempfile::TempDir, AuditLog, crypto_sm::SoftSigner) {
        let t = tempfile::tempdir().unwrap();
        let log = AuditLog::new(t.path().join("audit.log"));
        let signer = SoftwareProvider::new(Arc::new(SeededRandom::new(3)))
            .generate()
            .unwrap();
        (t, log, signer)
    }

    fn lines(log: &AuditLog) -> Vec<String> {
        std::fs::read_to_string(&log.path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write(log: &AuditLog, l: &[String]) {
        std::fs::write(
            &log.path,
            l.iter().map(|x| format!("{x}\n")).collect::<String>(),
        )
        .unwrap();
    }

    /// Appends `n` signed "issue" entries and returns the head after each.
    fn signed_entries(log: &AuditLog, signer: &dyn Signer, n: u64) -> Vec<String> {
        (0..n)
            .map(|i| {
                log.append(
                    1000 + i,
                    "alice",
                    "issue",
                    Outcome::Done,
                    &format!("user serial {i:02x}"),
                    Some(signer),
                )
                .unwrap()
            })
            .collect()
    }

    // Issue 9 defect 7: whoever can write the log must not be able to replace its signed tail
    // by unsigned entries whose hash links they recompute.
    #[test]
    fn tail_rewritten_as_unsigned_entries_is_rejected() {
        let (_t, log, signer) = setup();
        let pk = crypto::Signer::public_key(&signer);
        signed_entries(&log, &signer, 5);
        let full = lines(&log);
        // Drop the last two signed entries and append forged ones, linked like real entries.
        write(&log, &full[..3]);
        log.append(
            1003,
            "alice",
            "issue",
            Outcome::Done,
            "user serial 99",
            None,
        )
        .unwrap();
        log.append(1004, "alice", "revoke", Outcome::Done, "revoked 01", None)
            .unwrap();
        assert!(
            matches!(
                log.verify(&pk, None, UnsignedTail::Allow),
                Err(CaError::AuditBroken { seq: 3, .. })
            ),
            "{:?}",
            log.verify(&pk, None, UnsignedTail::Allow)
        );
    }

    #[test]
    fn unsigned_entry_other_than_key_unavailable_refusal_is_rejected_in_the_middle() {
        let (_t, log, signer) = setup();
        let pk = crypto::Signer::public_key(&signer);
        signed_entries(&log, &signer, 2);
        // A refusal, but not for an unavailable CA key.
        log.append(
            1002,
            "bob",
            "renew",
            Outcome::Refused,
            "CA_RENEW_REVOKED: serial 01 is revoked (key-compromise)",
            None,
        )
        .unwrap();
        signed_entries(&log, &signer, 1);
        assert!(
            matches!(
                log.verify(&pk, None, UnsignedTail::Allow),
                Err(CaError::AuditBroken { seq: 2, .. })
            ),
            "{:?}",
            log.verify(&pk, None, UnsignedTail::Allow)
        );
        // A done action with the key-unavailable code is no refusal.
        let (_t, log, signer) = setup();
        signed_entries(&log, &signer, 1);
        log.append(
            1001,
            "bob",
            "crl",
            Outcome::Done,
            "CA_KEY_UNAVAILABLE: the CA key could not be opened",
            None,
        )
        .unwrap();
        signed_entries(&log, &signer, 1);
        assert!(matches!(
            log.verify(&pk, None, UnsignedTail::Allow),
            Err(CaError::AuditBroken { seq: 1, .. })
        ));
    }

    #[test]
    fn key_unavailable_refusal_covered_by_a_later_signed_entry_verifies() {
        let (_t, log, signer) = setup();
        let pk = crypto::Signer::public_key(&signer);
        signed_entries(&log, &signer, 2);
        log.append(
            1002,
            "bob",
            "crl",
            Outcome::Refused,
            "CA_KEY_UNAVAILABLE: the token PIN is wrong",
            None,
        )
        .unwrap();
        let heads = signed_entries(&log, &signer, 1);
        let r = log.verify(&pk, None, UnsignedTail::Refuse).unwrap();
        assert_eq!(r.entries, 4);
        assert_eq!(r.unsigned, vec![2]);
        assert!(r.unsigned_tail.is_empty());
        assert_eq!(
            r.last_signed,
            Some(SignedHead {
                seq: 3,
                hash: heads[0].clone()
            })
        );
        assert_eq!(r.head, heads[0]);
        // The signature of entry 3 covers entry 2: editing it breaks the chain.
        let mut l = lines(&log);
        l[2] = l[2].replace("wrong", "right");
        write(&log, &l);
        assert!(matches!(
            log.verify(&pk, None, UnsignedTail::Allow),
            Err(CaError::AuditBroken { seq: 2, .. })
        ));
    }

    #[test]
    fn unsigned_tail_verifies_only_without_strict_and_reports_the_last_signed_head() {
        let (_t, log, signer) = setup();
        let pk = crypto::Signer::public_key(&signer);
        let heads = signed_entries(&log, &signer, 3);
        let full = lines(&log);
        // Rewrite the tail: the last signed entry replaced by key-unavailable refusals whose
        // links are recomputed. Entry 1 becomes the last signed one.
        write(&log, &full[..2]);
        for t in 0..2 {
            log.append(
                2000 + t,
                "mallory",
                "issue",
                Outcome::Refused,
                "CA_KEY_UNAVAILABLE: token absent",
                None,
            )
            .unwrap();
        }
        let r = log.verify(&pk, None, UnsignedTail::Allow).unwrap();
        assert_eq!(r.entries, 4);
        assert_eq!(
            r.last_signed,
            Some(SignedHead {
                seq: 1,
                hash: heads[1].clone()
            })
        );
        assert_ne!(r.head, heads[1]);
        assert_eq!(r.unsigned_tail, vec![2, 3]);
        match log.verify(&pk, None, UnsignedTail::Refuse) {
            Err(e @ CaError::AuditUnsignedTail { .. }) => {
                assert!(
                    matches!(
                        e,
                        CaError::AuditUnsignedTail {
                            first: 2,
                            last: 3,
                            last_signed: Some(1)
                        }
                    ),
                    "{e:?}"
                );
                assert!(e.to_string().contains("entries 2 to 3 are unsigned"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // The head the last real command printed still catches the rewrite.
        assert!(matches!(
            log.verify(&pk, Some(&heads[2]), UnsignedTail::Allow),
            Err(CaError::AuditHeadMismatch { .. })
        ));
        // A log of nothing but unsigned refusals has no signed head and fails strict.
        let (_t, log, _signer) = setup();
        log.append(
            1,
            "bob",
            "crl",
            Outcome::Refused,
            "CA_KEY_UNAVAILABLE: x",
            None,
        )
        .unwrap();
        let r = log.verify(&pk, None, UnsignedTail::Allow).unwrap();
        assert_eq!((r.last_signed, r.unsigned_tail), (None, vec![0]));
        assert!(matches!(
            log.verify(&pk, None, UnsignedTail::Refuse),
            Err(CaError::AuditUnsignedTail {
                last_signed: None,
                ..
            })
        ));
    }

    // Review of issue 11, defect 4: the code of the one entry that may be unsigned was a
    // string literal here, unknown to the registry of stable codes.
    #[test]
    fn key_unavailable_is_a_code_of_the_registry() {
        let code = codes::by_name("CA_KEY_UNAVAILABLE")
            .expect("CA_KEY_UNAVAILABLE is in the registry (crates/codes/src/registry.rs)");
        let entry = AuditEntry {
            seq: 0,
            time: 0,
            operator: "op".into(),
            action: "crl".into(),
            outcome: Outcome::Refused,
            detail: format!("{}: the CA key could not be opened: PIN", code.name),
            prev: String::new(),
            hash: String::new(),
            sig: None,
        };
        assert!(entry.is_key_unavailable_refusal());
        assert_eq!(entry.code().and_then(codes::by_name), Some(code));
    }

    #[test]
    fn codes_and_the_legacy_key_unavailable_spelling() {
        let entry = |outcome, detail: &str| AuditEntry {
            seq: 0,
            time: 0,
            operator: "op".into(),
            action: "crl".into(),
            outcome,
            detail: detail.into(),
            prev: String::new(),
            hash: String::new(),
            sig: None,
        };
        assert_eq!(
            entry(Outcome::Refused, "CA_RENEW_REVOKED: serial 01").code(),
            Some("CA_RENEW_REVOKED")
        );
        for detail in [
            "renewed 01 as 02",
            "ca_key_unavailable: x",
            ": x",
            "CA KEY: x",
        ] {
            assert_eq!(entry(Outcome::Done, detail).code(), None, "{detail}");
        }
        assert!(entry(Outcome::Refused, "CA_KEY_UNAVAILABLE: PIN").is_key_unavailable_refusal());
        // Written by gmchain before the code existed.
        assert!(
            entry(Outcome::Refused, "CA key unavailable: wrong PIN").is_key_unavailable_refusal()
        );
        assert!(!entry(Outcome::Done, "CA_KEY_UNAVAILABLE: PIN").is_key_unavailable_refusal());
        assert!(!entry(Outcome::Refused, "CA_KEY_UNAVAILABLEX: PIN").is_key_unavailable_refusal());
    }

    #[test]
    fn chain_verifies_and_detects_edit_removal_truncation() {
        let (_t, log, signer) = setup();
        let pk = crypto::Signer::public_key(&signer);
        let mut head = String::new();
        for i in 0..5 {
            head = log
                .append(
                    1000 + i,
                    "alice",
                    "issue",
                    Outcome::Done,
                    &format!("serial {i:02x}"),
                    Some(&signer),
                )
                .unwrap();
        }
        log.append(
            2000,
            "bob",
            "revoke",
            Outcome::Refused,
            "CA_KEY_UNAVAILABLE: wrong PIN",
            None,
        )
        .unwrap();
        let r = log.verify(&pk, None, UnsignedTail::Allow).unwrap();
        assert_eq!((r.entries, r.unsigned.clone()), (6, vec![5]));
        assert!(matches!(
            log.verify(&pk, Some(&head), UnsignedTail::Allow),
            Err(CaError::AuditHeadMismatch { .. })
        ));
        let full = lines(&log);

        // Edit the operator of entry 2.
        let mut edited = full.clone();
        edited[2] = edited[2].replace("alice", "mallory");
        write(&log, &edited);
        assert!(matches!(
            log.verify(&pk, None, UnsignedTail::Allow),
            Err(CaError::AuditBroken { seq: 2, .. })
        ));

        // Remove entry 3.
        let mut removed = full.clone();
        removed.remove(3);
        write(&log, &removed);
        assert!(matches!(
            log.verify(&pk, None, UnsignedTail::Allow),
            Err(CaError::AuditBroken { seq: 3, .. })
        ));

        // Truncate to the first 4 entries: consistent by itself, caught by the expected head.
        write(&log, &full[..4]);
        let r = log.verify(&pk, None, UnsignedTail::Allow).unwrap();
        assert_eq!(r.entries, 4);
        assert!(matches!(
            log.verify(&pk, Some(&head), UnsignedTail::Allow),
            Err(CaError::AuditHeadMismatch { .. })
        ));

        // A signature from another key.
        write(&log, &full);
        let other = SoftwareProvider::new(Arc::new(SeededRandom::new(4)))
            .generate()
            .unwrap();
        assert!(matches!(
            log.verify(
                &crypto::Signer::public_key(&other),
                None,
                UnsignedTail::Allow
            ),
            Err(CaError::AuditBroken { seq: 0, .. })
        ));
    }
}
