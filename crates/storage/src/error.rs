//! The errors of this crate: [`StorageError`] for reads and commits, [`IntegrityError`] for
//! chain checks.

use crypto::Digest;
use types::{BlockHash, DecodeError, Height, TxId};

use crate::backend::Table;

/// A read or commit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend failed (I/O, a poisoned lock).
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value did not decode: the store is corrupt.
    #[error("stored value in table {table:?} does not decode")]
    Decode {
        /// The table read.
        table: Table,
        /// Why it was refused.
        #[source]
        source: DecodeError,
    },
    /// A stored key or fixed-layout value has the wrong length.
    #[error("stored {what} in table {table:?} is {len} bytes, expected {expected}")]
    BadLength {
        /// The table read.
        table: Table,
        /// What was read (`"key"`, `"tip pointer"`, `"tx location"`).
        what: &'static str,
        /// Its length.
        len: usize,
        /// The required length.
        expected: usize,
    },
    /// The store was written in another layout version; nothing is read or written.
    #[error(
        "the store is format version {found}; this build reads version {supported}: open it with the gmchain release that wrote it (docs/formats.md §0); nothing was changed"
    )]
    UnsupportedVersion {
        /// The version the store records.
        found: String,
        /// The version this build reads.
        supported: u8,
    },
    /// A version-3 store (gmchain 0.1.0): `gmchain node migrate` moves it to this version.
    #[error(
        "the store is format version {found}; this build reads version {supported}: stop the node and run `gmchain node migrate --config FILE` (docs/formats.md §0); nothing was changed"
    )]
    NeedsMigration {
        /// The version the store records.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// `migrate` on a store already of this build's version: nothing to do.
    #[error("store is version {version}, nothing to do")]
    AlreadyCurrent {
        /// The store's (and this build's) version.
        version: u8,
    },
    /// A store of the version-1 layout (a single-validator chain of before consensus).
    #[error(
        "the store is format version 1 (a single-validator chain without commit certificates); this build reads version {supported} only: keep the version-1 release to read it, or re-initialise the node (`gmchain node init`) on a new data directory; nothing was changed"
    )]
    Version1Store {
        /// The version this build reads.
        supported: u8,
    },
    /// The block's height is not the one after the tip (or 0 on an empty store).
    #[error("block {height} refused: the next height is {expected}")]
    HeightNotNext {
        /// The block's height.
        height: Height,
        /// The height the store expects.
        expected: Height,
    },
    /// A seal over another hash than the block's.
    #[error("block {height}: the commit certificate is for {sealed}, not the block's hash {block}")]
    CertificateMismatch {
        /// The block's height.
        height: Height,
        /// The hash the certificate decides.
        sealed: BlockHash,
        /// The block's hash.
        block: BlockHash,
    },
    /// A v1 header (no consensus commitments) offered to a v2 store.
    #[error(
        "block {height} refused: its header is version 1; a version-2 store holds version-2 headers only"
    )]
    HeaderVersion {
        /// The block's height.
        height: Height,
    },
    /// A consensus WAL key of the wrong length.
    #[error("consensus WAL key of {len} bytes; expected 12 (height, sequence)")]
    WalKey {
        /// The key's length.
        len: usize,
    },
    /// The block's parent is not the tip.
    #[error("block {height} refused: parent {parent} is not the tip {tip}")]
    ParentMismatch {
        /// The block's height.
        height: Height,
        /// The block's parent hash.
        parent: BlockHash,
        /// The tip's hash (or the genesis parent).
        tip: BlockHash,
    },
    /// `header.tx_count` differs from the number of transactions.
    #[error("block {height} refused: header.tx_count {declared} but {actual} transactions")]
    TxCountMismatch {
        /// The block's height.
        height: Height,
        /// The header's count.
        declared: u32,
        /// The number of transactions.
        actual: usize,
    },
    /// `header.tx_root` differs from the root of the transactions.
    #[error("block {height} refused: tx_root {declared} but the transactions give {computed}")]
    TxRootMismatch {
        /// The block's height.
        height: Height,
        /// The header's root.
        declared: Digest,
        /// The computed root.
        computed: Digest,
    },
    /// The receipts are not one per transaction, in order.
    #[error("block {height} refused: receipt {position} does not match the transaction there")]
    ReceiptMismatch {
        /// The block's height.
        height: Height,
        /// The first position without a matching receipt.
        position: usize,
    },
    /// `header.receipts_root` differs from the root of the receipts.
    #[error("block {height} refused: receipts_root {declared} but the receipts give {computed}")]
    ReceiptsRootMismatch {
        /// The block's height.
        height: Height,
        /// The header's root.
        declared: Digest,
        /// The computed root.
        computed: Digest,
    },
    /// `header.state_root` differs from the root of the state update.
    #[error("block {height} refused: state_root {declared} but the state update gives {computed}")]
    StateRootMismatch {
        /// The block's height.
        height: Height,
        /// The header's root.
        declared: Digest,
        /// The update's root.
        computed: Digest,
    },
    /// A transaction is already in the chain (or twice in the block).
    #[error("block {height} refused: transaction {tx_id} is already in the chain")]
    DuplicateTx {
        /// The block's height.
        height: Height,
        /// The transaction.
        tx_id: TxId,
    },
    /// The block encodes to more than the `max_block_size` its readers accept.
    #[error(
        "block {height} refused: it encodes to {size} bytes, above max_block_size = {limit} bytes, so it could not be read back"
    )]
    BlockTooLarge {
        /// The block's height.
        height: Height,
        /// Its encoded size.
        size: usize,
        /// The store's `max_block_size`.
        limit: usize,
    },
    /// A receipt encodes to more than the `max_receipt_size` its readers accept.
    #[error(
        "block {height} refused: receipt {position} encodes to {size} bytes, above max_receipt_size = {limit} bytes, so it could not be read back"
    )]
    ReceiptTooLarge {
        /// The block's height.
        height: Height,
        /// The receipt's position in the block.
        position: usize,
        /// Its encoded size.
        size: usize,
        /// The store's `max_receipt_size`.
        limit: usize,
    },
    /// A value of the block would not decode under the store's limits (a limit other than
    /// the whole object's size: a count, a field length).
    #[error("block {height} refused: its value for table {table:?} would not read back")]
    WouldNotReadBack {
        /// The block's height.
        height: Height,
        /// The table it was for.
        table: Table,
        /// What the decoder refused.
        #[source]
        source: DecodeError,
    },
    /// The chain is at `u64::MAX`.
    #[error("the chain is full at height {height}")]
    HeightOverflow {
        /// The tip's height.
        height: Height,
    },
    /// State nodes are written only by [`crate::ChainStore::commit_block`].
    #[error("the state-node view is read-only; state is written with its block")]
    ReadOnly,
}

/// What a chain check found wrong at a height.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityFault {
    /// The store has no tip pointer but holds chain data, or the range asked for is beyond
    /// the tip.
    #[error("beyond the tip ({tip:?})")]
    BeyondTip {
        /// The tip height, if any.
        tip: Option<Height>,
    },
    /// A value that should be there is absent (the tip pointer is ahead of the data).
    #[error("missing {what} in table {table:?}")]
    Missing {
        /// The table.
        table: Table,
        /// What is missing (`"header"`, `"block"`, `"receipt 3"`).
        what: String,
    },
    /// Data for a height above the tip pointer (a half-written commit).
    #[error("{table:?} holds data beyond the tip pointer")]
    DataBeyondTip {
        /// The table holding it.
        table: Table,
    },
    /// A stored value could not be read or decoded.
    #[error("unreadable value in table {table:?}")]
    Unreadable {
        /// The table.
        table: Table,
        /// Why.
        #[source]
        source: StorageError,
    },
    /// The stored header says another height.
    #[error("the stored header says height {found}")]
    HeaderHeight {
        /// The header's height.
        found: Height,
    },
    /// The header's hash differs from the tip pointer's.
    #[error("header hash {computed} differs from the tip pointer's {recorded}")]
    TipHash {
        /// The hash in the tip pointer.
        recorded: BlockHash,
        /// The recomputed header hash.
        computed: BlockHash,
    },
    /// The base header's hash differs from the recorded base (a snapshot store).
    #[error("header hash {computed} differs from the store's recorded base {recorded}")]
    BaseHash {
        /// The hash the base key records.
        recorded: BlockHash,
        /// The recomputed header hash.
        computed: BlockHash,
    },
    /// The header's parent is not the previous header's hash.
    #[error("parent {parent} is not the hash {expected} of the previous header")]
    ParentLink {
        /// The header's parent.
        parent: BlockHash,
        /// The previous header's recomputed hash.
        expected: BlockHash,
    },
    /// The header inside the stored block differs from the stored header.
    #[error("the block's header differs from the stored header")]
    BlockHeader,
    /// The transactions' root differs from the header.
    #[error("tx_root {declared} but the stored block gives {computed}")]
    TxRoot {
        /// The header's root.
        declared: Digest,
        /// The recomputed root.
        computed: Digest,
    },
    /// A receipt belongs to another transaction.
    #[error("receipt {position} is for another transaction")]
    ReceiptTx {
        /// Its position in the block.
        position: u32,
    },
    /// The receipts' root differs from the header.
    #[error("receipts_root {declared} but the stored receipts give {computed}")]
    ReceiptsRoot {
        /// The header's root.
        declared: Digest,
        /// The recomputed root.
        computed: Digest,
    },
    /// The transaction index points elsewhere for a transaction of this block.
    #[error("the index entry of transaction {position} is wrong")]
    TxIndex {
        /// The transaction's position in the block.
        position: u32,
    },
    /// A state-tree node reachable from the header's state root is missing, unreadable, or
    /// stored under a key that is not its hash.
    #[error("state node {key}: {problem}")]
    StateNode {
        /// The key it is stored (or expected) under.
        key: Digest,
        /// What is wrong.
        problem: &'static str,
    },
}

/// `migrate` could not move the store: its version, or the tip check that comes first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// A read or write failed, or the version is not one to migrate.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The tip check failed: the store is damaged and is not migrated.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
}

/// A chain check failed at `height`.
#[derive(Debug, thiserror::Error)]
#[error("store integrity check failed at height {height}: {fault}")]
pub struct IntegrityError {
    /// The first bad height.
    pub height: Height,
    /// What was wrong there.
    pub fault: IntegrityFault,
}
