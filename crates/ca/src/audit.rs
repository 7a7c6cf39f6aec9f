//! The CA audit log: one JSON line per action or refused action, each naming the operator,
//! hash-chained with SM3 and signed by the CA key (GB/T 39786 §8.3 e: integrity of logs).
//!
//! hash_n = SM3("gmchain-ca-audit-v1" ‖ hash_{n-1} ‖ seq ‖ time ‖ len‖operator ‖ len‖action ‖
//! len‖outcome ‖ len‖detail), with hash_0 = 32 zero bytes and lengths as 4-byte big-endian; the
//! signature is SM2 (default user ID) over hash_n. Editing an entry breaks its hash; removing one
//! breaks the next entry's link; truncating the tail is caught by comparing the last hash with
//! the head printed after each command (`--expect-head`).

use crate::error::{CaError, io};
use crypto::{PublicKey, Signature, Signer, UserId};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::path::PathBuf;

const DOMAIN: &[u8] = b"gmchain-ca-audit-v1";

/// Whether the action was carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Done,
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
        }
    }
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub seq: u64,
    /// Seconds since the epoch.
    pub time: u64,
    pub operator: String,
    pub action: String,
    pub outcome: Outcome,
    pub detail: String,
    /// Hex SM3 of the previous entry (zeros for the first).
    pub prev: String,
    /// Hex SM3 of this entry.
    pub hash: String,
    /// Hex DER SM2 signature over `hash`; absent only when the CA key could not be opened
    /// (the refusal is still recorded and chained).
    pub sig: Option<String>,
}

/// What verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    pub entries: u64,
    /// The last hash (the head), hex.
    pub head: String,
    /// Entries recorded without a signature (the CA key was not available).
    pub unsigned: Vec<u64>,
}

/// The log file.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

fn entry_hash(
    prev: &[u8; 32],
    seq: u64,
    time: u64,
    operator: &str,
    action: &str,
    outcome: Outcome,
    detail: &str,
) -> [u8; 32] {
    let mut h = crypto_sm::sm3::Sm3Context::new();
    h.update(DOMAIN);
    h.update(prev);
    h.update(&seq.to_be_bytes());
    h.update(&time.to_be_bytes());
    for field in [operator, action, outcome.as_str(), detail] {
        h.update(&(field.len() as u32).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finish().0
}

impl AuditLog {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn read(&self) -> Result<Vec<AuditEntry>, CaError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CaError::Io {
                    path: self.path.clone(),
                    source: e,
                });
            }
        };
        let mut out = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(io(&self.path))?;
            let entry: AuditEntry =
                serde_json::from_str(&line).map_err(|e| CaError::AuditBroken {
                    seq: i as u64,
                    reason: format!("not a log entry: {e}"),
                })?;
            out.push(entry);
        }
        Ok(out)
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
        let entries = self.read()?;
        let (seq, prev) = match entries.last() {
            Some(last) => (last.seq + 1, parse_hash(&last.hash, last.seq)?),
            None => (0, [0u8; 32]),
        };
        let hash = entry_hash(&prev, seq, time, operator, action, outcome, detail);
        let sig = match signer {
            Some(s) => Some(hex::encode(s.sign(&UserId::default(), &hash)?.to_der())),
            None => None,
        };
        let entry = AuditEntry {
            seq,
            time,
            operator: operator.to_string(),
            action: action.to_string(),
            outcome,
            detail: detail.to_string(),
            prev: hex::encode(prev),
            hash: hex::encode(hash),
            sig,
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| CaError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        f.write_all(&line)
            .and_then(|_| f.sync_all())
            .map_err(io(&self.path))?;
        Ok(entry.hash)
    }

    /// Verifies the whole log against the CA's public key; with `expect_head`, also that no
    /// entry was cut off the end.
    pub fn verify(
        &self,
        ca_key: &PublicKey,
        expect_head: Option<&str>,
    ) -> Result<AuditReport, CaError> {
        let entries = self.read()?;
        let mut prev = [0u8; 32];
        let mut unsigned = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let broken = |reason: String| CaError::AuditBroken {
                seq: i as u64,
                reason,
            };
            if e.seq != i as u64 {
                return Err(broken(format!(
                    "sequence number {} where {i} was expected (an entry was removed or reordered)",
                    e.seq
                )));
            }
            if e.prev != hex::encode(prev) {
                return Err(broken(
                    "does not link to the previous entry (an entry was removed or edited)".into(),
                ));
            }
            let hash = entry_hash(
                &prev,
                e.seq,
                e.time,
                &e.operator,
                &e.action,
                e.outcome,
                &e.detail,
            );
            if e.hash != hex::encode(hash) {
                return Err(broken(
                    "its content does not match its hash (the entry was edited)".into(),
                ));
            }
            match &e.sig {
                Some(sig) => {
                    let der =
                        hex::decode(sig).map_err(|_| broken("signature is not hex".into()))?;
                    let sig = Signature::from_der(&der)
                        .map_err(|err| broken(format!("signature: {err}")))?;
                    crypto_sm::sm2::verify(ca_key, &UserId::default(), &hash, &sig)
                        .map_err(|_| broken("signature does not verify with the CA key".into()))?;
                }
                None => unsigned.push(e.seq),
            }
            prev = hash;
        }
        let head = hex::encode(prev);
        if let Some(expected) = expect_head
            && !expected.eq_ignore_ascii_case(&head)
        {
            return Err(CaError::AuditHeadMismatch {
                expected: expected.to_string(),
                actual: head,
                entries: entries.len() as u64,
            });
        }
        Ok(AuditReport {
            entries: entries.len() as u64,
            head,
            unsigned,
        })
    }
}

fn parse_hash(h: &str, seq: u64) -> Result<[u8; 32], CaError> {
    hex::decode(h)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(CaError::AuditBroken {
            seq,
            reason: "hash is not 32 bytes of hex".into(),
        })
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
            "unknown serial ff",
            None,
        )
        .unwrap();
        let r = log.verify(&pk, None).unwrap();
        assert_eq!((r.entries, r.unsigned.clone()), (6, vec![5]));
        assert!(matches!(
            log.verify(&pk, Some(&head)),
            Err(CaError::AuditHeadMismatch { .. })
        ));
        let full = lines(&log);

        // Edit the operator of entry 2.
        let mut edited = full.clone();
        edited[2] = edited[2].replace("alice", "mallory");
        write(&log, &edited);
        assert!(matches!(
            log.verify(&pk, None),
            Err(CaError::AuditBroken { seq: 2, .. })
        ));

        // Remove entry 3.
        let mut removed = full.clone();
        removed.remove(3);
        write(&log, &removed);
        assert!(matches!(
            log.verify(&pk, None),
            Err(CaError::AuditBroken { seq: 3, .. })
        ));

        // Truncate to the first 4 entries: consistent by itself, caught by the expected head.
        write(&log, &full[..4]);
        let r = log.verify(&pk, None).unwrap();
        assert_eq!(r.entries, 4);
        assert!(matches!(
            log.verify(&pk, Some(&head)),
            Err(CaError::AuditHeadMismatch { .. })
        ));

        // A signature from another key.
        write(&log, &full);
        let other = SoftwareProvider::new(Arc::new(SeededRandom::new(4)))
            .generate()
            .unwrap();
        assert!(matches!(
            log.verify(&crypto::Signer::public_key(&other), None),
            Err(CaError::AuditBroken { seq: 0, .. })
        ));
    }
}
