//! The log file: entries, their hash chain, appending, verifying.

use crate::error::AuditError;
use crypto::{PublicKey, Signature, Signer, UserId};
use safefile::Mode;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// The longest line a log may hold: an entry's detail is a sentence, never a document.
/// A longer line is refused before it is parsed.
pub const MAX_LINE: usize = 1 << 20;

/// The action of a node log's checkpoint: the one kind of entry a node signs.
pub const CHECKPOINT: &str = "checkpoint";

/// Whether the action was carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Done,
    Refused,
}

impl Outcome {
    /// Returns the name the line and the hash carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
        }
    }
}

/// One line of a log. The field order is the line format (docs/formats.md): changing it
/// changes no hash, but it is what every log written so far holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
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
    /// Hex DER SM2 signature over `hash`, when the entry is signed (which entries are, and
    /// which may not be, is the [`Kind`]'s rule).
    pub sig: Option<String>,
}

impl Entry {
    /// Returns the stable code the detail starts with (`CODE: …`), if it starts with one.
    pub fn code(&self) -> Option<&str> {
        let (code, _) = self.detail.split_once(": ")?;
        let mut chars = code.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        well_formed.then_some(code)
    }

    /// Returns whether this entry may be unsigned in the CA's log: a refusal because the CA
    /// key could not be opened.
    pub fn is_key_unavailable_refusal(&self) -> bool {
        self.outcome == Outcome::Refused
            && (self.code() == Some(codes::CA_KEY_UNAVAILABLE.name)
                || self.detail.starts_with(LEGACY_KEY_UNAVAILABLE))
    }
}

/// How gmchain before issue 9 spelled the detail of a `CA_KEY_UNAVAILABLE` refusal; accepted so
/// that logs written then still verify. It grants nothing more than the code does.
const LEGACY_KEY_UNAVAILABLE: &str = "CA key unavailable: ";

/// A kind of log: its hash domain (so an entry of one kind never verifies in a log of
/// another) and its rule of which entries carry a signature.
#[derive(Debug)]
pub struct Kind {
    /// The domain separator that starts every hash.
    pub domain: &'static str,
    /// The key that signs, as messages name it ("the CA key").
    pub signer: &'static str,
    /// Whether this entry may carry, or lack, its signature as it does: `Err` says why not,
    /// and breaks the log at that entry.
    pub signature_rule: fn(&Entry) -> Result<(), String>,
}

/// The CA's log: every entry signed by the CA key, except a refusal recorded when that key
/// could not be opened (`CA_KEY_UNAVAILABLE`), which a later signed entry covers.
pub const CA: Kind = Kind {
    domain: "gmchain-ca-audit-v1",
    signer: "the CA key",
    signature_rule: ca_signature_rule,
};

fn ca_signature_rule(e: &Entry) -> Result<(), String> {
    if e.sig.is_some() || e.is_key_unavailable_refusal() {
        return Ok(());
    }
    Err(format!(
        "is unsigned ({} {}, code {}), but only a {} refusal may lack the CA key's signature \
         (the entry was forged or re-written)",
        e.action,
        e.outcome.as_str(),
        e.code().unwrap_or("none"),
        codes::CA_KEY_UNAVAILABLE,
    ))
}

/// The node's log: hash-chained entries, signed only at checkpoints, every checkpoint signed.
/// Signing each entry in a token would let a flood of refused connections exhaust it.
pub const NODE: Kind = Kind {
    domain: "gmchain-node-audit-v1",
    signer: "the node key",
    signature_rule: node_signature_rule,
};

fn node_signature_rule(e: &Entry) -> Result<(), String> {
    match (e.action == CHECKPOINT, e.sig.is_some()) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(
            "is a checkpoint without a signature (the signature was removed or the entry forged)"
                .into(),
        ),
        (false, true) => Err(format!(
            "is a {} entry with a signature, but a node signs only its checkpoints (the entry was forged or re-written)",
            e.action
        )),
    }
}

/// hash_n = SM3(domain ‖ hash_{n-1} ‖ seq ‖ time ‖ len‖operator ‖ len‖action ‖ len‖outcome ‖
/// len‖detail), numbers and lengths big-endian (8 and 4 bytes), hash_0 = 32 zero bytes.
#[allow(clippy::too_many_arguments)] // reason: the hash's fields, in the order it takes them
fn entry_hash(
    kind: &Kind,
    prev: &[u8; 32],
    seq: u64,
    time: u64,
    operator: &str,
    action: &str,
    outcome: Outcome,
    detail: &str,
) -> [u8; 32] {
    let mut h = crypto_sm::sm3::Sm3Context::new();
    h.update(kind.domain.as_bytes());
    h.update(prev);
    h.update(&seq.to_be_bytes());
    h.update(&time.to_be_bytes());
    for field in [operator, action, outcome.as_str(), detail] {
        h.update(&(field.len() as u32).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finish().0
}

fn hash_of(kind: &Kind, prev: &[u8; 32], e: &Entry) -> [u8; 32] {
    entry_hash(
        kind,
        prev,
        e.seq,
        e.time,
        &e.operator,
        &e.action,
        e.outcome,
        &e.detail,
    )
}

/// The last entry that carries a valid signature: everything up to it is authenticated by it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    pub seq: u64,
    /// Its hash, hex.
    pub hash: String,
}

/// What verification does with unsigned entries after the last signed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsignedTail {
    /// Accept them (they are reported in `AuditReport::unsigned_tail`).
    Allow,
    /// Fail: nothing authenticates them.
    Refuse,
}

/// What verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    pub entries: u64,
    /// The last hash (the head), hex.
    pub head: String,
    /// The last signed entry; `None` if no entry is signed.
    pub last_signed: Option<SignedHead>,
    /// Entries recorded without a signature.
    pub unsigned: Vec<u64>,
    /// The unsigned entries after the last signed one: no signature covers them.
    pub unsigned_tail: Vec<u64>,
}

/// A log file of one [`Kind`]. Each call reads the file again (the CA's commands run one at a
/// time under its directory lock); [`crate::Writer`] keeps the head in memory instead.
#[derive(Clone, Debug)]
pub struct Log {
    path: PathBuf,
    kind: &'static Kind,
}

impl Log {
    pub fn new(path: impl Into<PathBuf>, kind: &'static Kind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }

    /// Returns the file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the log's kind.
    pub fn kind(&self) -> &'static Kind {
        self.kind
    }

    /// Reads every entry (none if the file does not exist). A line that is not an entry, is
    /// longer than [`MAX_LINE`] or lacks its newline (a write cut short) fails, naming its
    /// line number as the entry.
    pub fn read(&self) -> Result<Vec<Entry>, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut reader = std::io::BufReader::new(f);
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(io)?;
            if n == 0 {
                return Ok(out);
            }
            let seq = out.len() as u64;
            if line.pop() != Some(b'\n') {
                return Err(AuditError::broken(
                    seq,
                    if n > MAX_LINE {
                        format!("the line is longer than {MAX_LINE} bytes: not a log entry")
                    } else {
                        "the last line has no newline: a write was cut short (or the file cut)"
                            .to_string()
                    },
                ));
            }
            let entry: Entry = serde_json::from_slice(&line)
                .map_err(|e| AuditError::broken(seq, format!("not a log entry: {e}")))?;
            out.push(entry);
        }
    }

    /// Returns the sequence number and previous hash the next entry takes: reads every line of
    /// the log, so a damaged log fails here, before anything is appended.
    fn next_link(&self) -> Result<(u64, [u8; 32]), AuditError> {
        let entries = self.read()?;
        match entries.last() {
            Some(last) => Ok((last.seq + 1, parse_hash(&last.hash, last.seq)?)),
            None => Ok((0, [0u8; 32])),
        }
    }

    /// Checks that an entry can be appended (the reading [`Log::append`] does first) and
    /// returns how many entries the log holds.
    pub fn check_appendable(&self) -> Result<u64, AuditError> {
        self.next_link().map(|(next, _)| next)
    }

    /// Appends an entry, signed by `signer` if given, and returns it. The caller is the only
    /// appender meanwhile (it holds a lock).
    pub fn append(
        &self,
        time: u64,
        operator: &str,
        action: &str,
        outcome: Outcome,
        detail: &str,
        signer: Option<&dyn Signer>,
    ) -> Result<Entry, AuditError> {
        let (seq, prev) = self.next_link()?;
        self.append_at(seq, prev, time, operator, action, outcome, detail, signer)
    }

    #[allow(clippy::too_many_arguments)] // reason: the entry's fields, then its signer
    pub(crate) fn append_at(
        &self,
        seq: u64,
        prev: [u8; 32],
        time: u64,
        operator: &str,
        action: &str,
        outcome: Outcome,
        detail: &str,
        signer: Option<&dyn Signer>,
    ) -> Result<Entry, AuditError> {
        let hash = entry_hash(
            self.kind, &prev, seq, time, operator, action, outcome, detail,
        );
        let sig = match signer {
            Some(s) => Some(hex::encode(s.sign(&UserId::default(), &hash)?.to_der())),
            None => None,
        };
        let entry = Entry {
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
        let mut line = serde_json::to_vec(&entry).map_err(|e| AuditError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if line.len() >= MAX_LINE {
            return Err(AuditError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "entry {seq} would be {} bytes, over the {MAX_LINE}-byte line limit",
                    line.len()
                ),
            });
        }
        line.push(b'\n');
        // Appended and fsynced (the directory too when this creates the log); a failed append
        // is cut back, so the file never keeps a partial line.
        safefile::append(&self.path, &line, Mode::PUBLIC).map_err(|e| {
            let (_, path, source) = e.into_parts();
            AuditError::Io { path, source }
        })?;
        Ok(entry)
    }

    /// Verifies the whole log: every link and hash, the kind's signature rule, and every
    /// signature against one of `keys` (a node's key may have changed over the log's life);
    /// with `expect_head`, that no entry was cut off the end; with `UnsignedTail::Refuse`,
    /// that no unsigned entry follows the last signed one.
    pub fn verify(
        &self,
        keys: &[PublicKey],
        expect_head: Option<&str>,
        tail: UnsignedTail,
    ) -> Result<AuditReport, AuditError> {
        let entries = self.read()?;
        verify_entries(self.kind, &entries, Some(keys), expect_head, tail)
    }
}

/// Checks `entries` as [`Log::verify`] does; `keys: None` checks everything but the
/// signatures' values (the writer's reading at open, which needs no key).
pub(crate) fn verify_entries(
    kind: &Kind,
    entries: &[Entry],
    keys: Option<&[PublicKey]>,
    expect_head: Option<&str>,
    tail: UnsignedTail,
) -> Result<AuditReport, AuditError> {
    let mut prev = [0u8; 32];
    let mut unsigned = Vec::new();
    let mut last_signed = None;
    for (i, e) in entries.iter().enumerate() {
        let broken = |reason: String| AuditError::broken(i as u64, reason);
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
        let hash = hash_of(kind, &prev, e);
        if e.hash != hex::encode(hash) {
            return Err(broken(
                "its content does not match its hash (the entry was edited)".into(),
            ));
        }
        (kind.signature_rule)(e).map_err(&broken)?;
        match &e.sig {
            Some(sig) => {
                let der = hex::decode(sig).map_err(|_| broken("signature is not hex".into()))?;
                let sig =
                    Signature::from_der(&der).map_err(|err| broken(format!("signature: {err}")))?;
                if let Some(keys) = keys
                    && !keys
                        .iter()
                        .any(|k| crypto_sm::sm2::verify(k, &UserId::default(), &hash, &sig).is_ok())
                {
                    return Err(broken(format!(
                        "signature does not verify with {}",
                        kind.signer
                    )));
                }
                last_signed = Some(SignedHead {
                    seq: e.seq,
                    hash: e.hash.clone(),
                });
            }
            None => unsigned.push(e.seq),
        }
        prev = hash;
    }
    let head = hex::encode(prev);
    if let Some(expected) = expect_head
        && !expected.eq_ignore_ascii_case(&head)
    {
        return Err(AuditError::HeadMismatch {
            expected: expected.to_string(),
            actual: head,
            entries: entries.len() as u64,
        });
    }
    let unsigned_tail: Vec<u64> = match &last_signed {
        Some(s) => unsigned.iter().copied().filter(|&n| n > s.seq).collect(),
        None => unsigned.clone(),
    };
    if tail == UnsignedTail::Refuse
        && let (Some(&first), Some(&last)) = (unsigned_tail.first(), unsigned_tail.last())
    {
        return Err(AuditError::UnsignedTail {
            first,
            last,
            last_signed: last_signed.as_ref().map(|s| s.seq),
        });
    }
    Ok(AuditReport {
        entries: entries.len() as u64,
        head,
        last_signed,
        unsigned,
        unsigned_tail,
    })
}

pub(crate) fn parse_hash(h: &str, seq: u64) -> Result<[u8; 32], AuditError> {
    hex::decode(h)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(AuditError::broken(seq, "hash is not 32 bytes of hex"))
}
