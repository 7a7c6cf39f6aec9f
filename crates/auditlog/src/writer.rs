//! A long-running appender: reads the log once, then keeps its head in memory.

use crate::Entry;
use crate::error::AuditError;
use crate::log::{CHECKPOINT, Kind, Log, Outcome, UnsignedTail, parse_hash, verify_entries};
use crypto::Signer;
use std::path::PathBuf;

/// The one appender of a log for a process's lifetime (the node's): [`Writer::open`] reads
/// and checks the whole log, then each append costs one write and one fsync. The caller keeps
/// every other writer away (the node holds its store's lock).
#[derive(Debug)]
pub struct Writer {
    log: Log,
    next: u64,
    prev: [u8; 32],
    /// Entries since the last signed one (all of them if none is signed).
    unsigned_since: u64,
}

impl Writer {
    /// Opens the log at `path` (created by the first append): checks every link, hash and
    /// the kind's signature rule, so that a damaged or edited log fails here, before this
    /// process adds to it. Signatures are checked by [`Log::verify`], which has the keys.
    pub fn open(path: impl Into<PathBuf>, kind: &'static Kind) -> Result<Self, AuditError> {
        let log = Log::new(path, kind);
        let entries = log.read()?;
        let report = verify_entries(kind, &entries, None, None, UnsignedTail::Allow)?;
        let (next, prev) = match entries.last() {
            Some(last) => (last.seq + 1, parse_hash(&last.hash, last.seq)?),
            None => (0, [0u8; 32]),
        };
        Ok(Self {
            log,
            next,
            prev,
            unsigned_since: report.unsigned_tail.len() as u64,
        })
    }

    /// Returns the log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Returns the last entry's sequence number and hash; `None` for an empty log.
    pub fn head(&self) -> Option<(u64, [u8; 32])> {
        self.next.checked_sub(1).map(|seq| (seq, self.prev))
    }

    /// Returns how many entries follow the last signed one.
    pub fn unsigned_since(&self) -> u64 {
        self.unsigned_since
    }

    /// Appends an entry, signed if `signer` is given. On failure nothing was appended and the
    /// head is unchanged.
    pub fn append(
        &mut self,
        time: u64,
        operator: &str,
        action: &str,
        outcome: Outcome,
        detail: &str,
        signer: Option<&dyn Signer>,
    ) -> Result<Entry, AuditError> {
        let entry = self.log.append_at(
            self.next, self.prev, time, operator, action, outcome, detail, signer,
        )?;
        self.prev = parse_hash(&entry.hash, entry.seq)?;
        self.next += 1;
        self.unsigned_since = if entry.sig.is_some() {
            0
        } else {
            self.unsigned_since + 1
        };
        Ok(entry)
    }

    /// Appends a checkpoint: an entry signed by `signer`, whose signature over its hash covers
    /// the whole chain before it.
    pub fn checkpoint(
        &mut self,
        time: u64,
        operator: &str,
        signer: &dyn Signer,
    ) -> Result<Entry, AuditError> {
        let detail = format!(
            "signs the chain to here: entries {} to {} since the last checkpoint",
            self.next - self.unsigned_since,
            self.next
        );
        self.append(
            time,
            operator,
            CHECKPOINT,
            Outcome::Done,
            &detail,
            Some(signer),
        )
    }
}
