//! The double-sign guard of a validator restored from a backup (review r2 H1;
//! docs/ops/backup.md, "A restored validator signs nothing it may have signed before").
//!
//! A backup holds the store as it was: the consensus WAL of that moment, not the votes and
//! proposals the node signed after it. Started on such a store, a validator would sign again
//! at a height it already voted in, for another block: an equivocation (the BFT guarantee
//! counts it as a faulty validator). So `gmchain node restore` removes the consensus WAL (its
//! frames are the backed-up node's of that time, maybe another validator's when
//! `--signer-cert` restored another node's backup) and writes the `Meta` key
//! [`RESTORED_KEY`] in the same batch.
//!
//! While the key is present the BFT runner ([`crate::bft`]) runs every height as a follower
//! (no proposal, no vote: the engine has no identity) and learns from its peers how far the
//! network got: the height of every consensus message a validator of that height signed (up
//! to [`LEARN_AHEAD`] past this node's next height), and for every block committed from a
//! sync answer the height after it (its certificate shows the validators moved on). The
//! highest of these is kept in the key (u64 BE), so a restart in the middle starts from it
//! and learns again. Learning stops at the first height this node saw decided by its peers'
//! live votes (it is then at the network's front: what it learns later is progress made
//! since it came up); once it has committed that highest height the key is deleted (synced)
//! and the next height is signed normally. Nothing is signed before something was learned.
//!
//! What it does not cover (said in docs/ops/backup.md): a copy of a data directory started
//! by hand (no restore ran, no key was written), and a vote the old instance signed that no
//! live peer holds (no peer can then be shown two votes; a peer that comes back holding one
//! can, and logs the equivocation).

use storage::{KvBackend, StorageError, Table, WriteBatch};
use types::Height;

/// The `Meta` key of a restored store: u64 BE, the highest height the network was learned
/// to have reached (0: nothing learned yet).
pub const RESTORED_KEY: &[u8] = b"restored";

/// The `Meta` key `gmchain node release-guard` writes when it deletes [`RESTORED_KEY`]: one
/// line of text (who, when, the height learned, the operator's reason) that the node puts
/// into its audit log at its next start, then deletes.
pub const RELEASED_KEY: &[u8] = b"restore-guard-released";

/// How far past this node's next height a peer's message may move the guard: a faulty
/// validator signing a message for a far height could otherwise keep a restored node from
/// ever signing again (a sync answer moves it one height at a time, without bound).
pub const LEARN_AHEAD: u64 = 64;

/// Marks a store as restored from a backup: deletes its consensus WAL and any release record
/// the backup carried (that release was of an earlier guard), and writes [`RESTORED_KEY`] = 0,
/// in one synced batch.
pub fn mark<B: KvBackend + ?Sized>(backend: &B) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    batch.delete(Table::Meta, RELEASED_KEY);
    for (key, _) in backend.iter_prefix(Table::ConsensusWal, &[])? {
        batch.delete(Table::ConsensusWal, key);
    }
    batch.put(Table::Meta, RESTORED_KEY, 0u64.to_be_bytes().to_vec());
    backend.write(batch)
}

/// The restore marker: `None` if the store was not restored (or the guard has ended),
/// else the highest height learned so far.
pub fn read<B: KvBackend + ?Sized>(backend: &B) -> Result<Option<Height>, StorageError> {
    let Some(v) = backend.get(Table::Meta, RESTORED_KEY)? else {
        return Ok(None);
    };
    let bytes: [u8; 8] = v
        .as_slice()
        .try_into()
        .map_err(|_| StorageError::BadLength {
            table: Table::Meta,
            what: "restore marker",
            len: v.len(),
            expected: 8,
        })?;
    Ok(Some(Height(u64::from_be_bytes(bytes))))
}

fn write<B: KvBackend + ?Sized>(backend: &B, value: Option<Height>) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    match value {
        Some(h) => batch.put(Table::Meta, RESTORED_KEY, h.0.to_be_bytes().to_vec()),
        None => batch.delete(Table::Meta, RESTORED_KEY),
    }
    backend.write(batch)
}

/// The operator's release of the guard (review r4 H1: a chain that needs this validator for
/// its quorum cannot decide the height the guard waits for): deletes [`RESTORED_KEY`] and
/// writes `record` under [`RELEASED_KEY`], in one synced batch. Returns the height that had
/// been learned, or `None` (nothing written) when the store carries no marker. The store must
/// not be in use (the caller holds its lock): the node reads the marker at start only.
pub fn release<B: KvBackend + ?Sized>(
    backend: &B,
    record: &str,
) -> Result<Option<Height>, StorageError> {
    let Some(learned) = read(backend)? else {
        return Ok(None);
    };
    let mut batch = WriteBatch::new();
    batch.delete(Table::Meta, RESTORED_KEY);
    batch.put(Table::Meta, RELEASED_KEY, record.as_bytes().to_vec());
    backend.write(batch)?;
    Ok(Some(learned))
}

/// The record of a release not yet in the audit log (the node records it at start).
pub fn released<B: KvBackend + ?Sized>(backend: &B) -> Result<Option<String>, StorageError> {
    Ok(backend
        .get(Table::Meta, RELEASED_KEY)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// [`released`], deleted from the store: the node calls it once the audit log holding the
/// record is closed.
pub fn take_released<B: KvBackend + ?Sized>(backend: &B) -> Result<Option<String>, StorageError> {
    let Some(record) = released(backend)? else {
        return Ok(None);
    };
    let mut batch = WriteBatch::new();
    batch.delete(Table::Meta, RELEASED_KEY);
    backend.write(batch)?;
    Ok(Some(record))
}

/// The guard of a restored validator while its marker is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignGuard {
    /// The highest height the network was learned to have reached.
    known: Height,
    /// Whether something was learned (nothing is signed before).
    learned: bool,
    /// Set at the first height decided by the peers' live votes: learning has ended.
    frozen: bool,
}

impl SignGuard {
    /// The guard of a store with the marker set, or `None`.
    pub fn load<B: KvBackend + ?Sized>(backend: &B) -> Result<Option<SignGuard>, StorageError> {
        Ok(read(backend)?.map(|known| SignGuard {
            known,
            learned: known.0 > 0,
            frozen: false,
        }))
    }

    /// The highest height learned so far.
    pub fn known(&self) -> Height {
        self.known
    }

    /// A peer showed the network at `height` (this node's next height is `next`): raises
    /// the guard (kept in the store) unless learning has ended or `height` is more than
    /// [`LEARN_AHEAD`] past `next`.
    pub fn learn<B: KvBackend + ?Sized>(
        &mut self,
        backend: &B,
        height: Height,
        next: Height,
    ) -> Result<(), StorageError> {
        if self.frozen || height.0 > next.0.saturating_add(LEARN_AHEAD) {
            return Ok(());
        }
        self.learned = true;
        if height > self.known {
            write(backend, Some(height))?;
            self.known = height;
        }
        Ok(())
    }

    /// This node committed `height`, decided by its peers' live votes (`live`) or from a
    /// sync answer or the WAL. Returns `true` when the guard has ended: learning had ended
    /// (or ends now) and `height` is at or past the highest height learned; the marker is
    /// then deleted from the store (synced) and the next height is signed.
    pub fn committed<B: KvBackend + ?Sized>(
        &mut self,
        backend: &B,
        height: Height,
        live: bool,
    ) -> Result<bool, StorageError> {
        if live && self.learned {
            self.frozen = true;
        }
        if self.frozen && height >= self.known {
            write(backend, None)?;
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::MemBackend;

    #[test]
    fn mark_removes_the_wal_and_sets_the_marker_in_one_batch() {
        let b = MemBackend::new();
        let mut batch = WriteBatch::new();
        batch.put(Table::ConsensusWal, vec![0u8; 12], b"frame".to_vec());
        batch.put(Table::Meta, b"tip".to_vec(), b"x".to_vec());
        b.write(batch).unwrap();
        assert_eq!(read(&b).unwrap(), None);
        mark(&b).unwrap();
        assert!(b.iter_prefix(Table::ConsensusWal, &[]).unwrap().is_empty());
        assert_eq!(read(&b).unwrap(), Some(Height(0)));
        assert_eq!(b.get(Table::Meta, b"tip").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn the_guard_learns_until_a_live_decision_and_ends_at_the_height_learned() {
        let b = MemBackend::new();
        mark(&b).unwrap();
        let mut g = SignGuard::load(&b).unwrap().unwrap();
        // A sync commit before anything was learned ends nothing, nor does a live one.
        assert!(!g.committed(&b, Height(3), false).unwrap());
        assert!(!g.committed(&b, Height(4), true).unwrap());
        assert!(
            !g.frozen,
            "a live decision before anything was learned does not end learning"
        );
        // Learned from peers, kept in the store; a message far ahead is not believed.
        g.learn(&b, Height(22), Height(6)).unwrap();
        g.learn(&b, Height(9), Height(6)).unwrap();
        g.learn(&b, Height(6 + LEARN_AHEAD + 1), Height(6)).unwrap();
        assert_eq!(read(&b).unwrap(), Some(Height(22)));
        // A restart in the middle keeps it.
        let mut again = SignGuard::load(&b).unwrap().unwrap();
        assert_eq!(again.known(), Height(22));
        // Synced up to 21: not ended.
        assert!(!again.committed(&b, Height(21), false).unwrap());
        // The first live decision (21 here) ends learning; later heights are not learned.
        assert!(!again.committed(&b, Height(21), true).unwrap());
        again.learn(&b, Height(23), Height(22)).unwrap();
        assert_eq!(again.known(), Height(22));
        // Height 22 committed: the guard ends, the marker is gone.
        assert!(again.committed(&b, Height(22), false).unwrap());
        assert_eq!(read(&b).unwrap(), None);
        assert_eq!(SignGuard::load(&b).unwrap(), None);
    }

    #[test]
    fn a_release_deletes_the_marker_and_leaves_its_record_once() {
        let b = MemBackend::new();
        assert_eq!(release(&b, "not guarded").unwrap(), None);
        assert_eq!(
            take_released(&b).unwrap(),
            None,
            "a release without a marker wrote"
        );
        mark(&b).unwrap();
        let mut g = SignGuard::load(&b).unwrap().unwrap();
        g.learn(&b, Height(9), Height(4)).unwrap();
        assert_eq!(
            release(&b, "by ops: quorum needs it").unwrap(),
            Some(Height(9))
        );
        assert_eq!(read(&b).unwrap(), None);
        assert_eq!(SignGuard::load(&b).unwrap(), None);
        assert_eq!(
            released(&b).unwrap().as_deref(),
            Some("by ops: quorum needs it"),
            "read twice"
        );
        assert_eq!(
            take_released(&b).unwrap().as_deref(),
            Some("by ops: quorum needs it")
        );
        assert_eq!(
            take_released(&b).unwrap(),
            None,
            "the record was taken twice"
        );
        // A backup taken before the node recorded a release carries the record: a restore's
        // mark clears it (review r5 R5-4), so no release is logged that did not happen.
        mark(&b).unwrap();
        release(&b, "an earlier guard's").unwrap();
        mark(&b).unwrap();
        assert_eq!(released(&b).unwrap(), None);
    }

    #[test]
    fn a_marker_of_another_length_is_an_error_not_ignored() {
        let b = MemBackend::new();
        let mut batch = WriteBatch::new();
        batch.put(Table::Meta, RESTORED_KEY.to_vec(), vec![1, 2, 3]);
        b.write(batch).unwrap();
        assert!(read(&b).is_err());
    }
}
