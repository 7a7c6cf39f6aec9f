//! The ledger's errors: its own failures ([`LedgerError`]) and why a proposed block is
//! refused ([`BlockRefusal`]).

use crypto::Digest;
use thiserror::Error;
use types::{BlockHash, CertificateError, Height, TxId};

/// A failure of the ledger or its store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The store failed or refused a write.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The store failed its start-up check.
    #[error(
        "the store failed its integrity check: {0}; restore the data directory from a backup or re-initialise it"
    )]
    Integrity(#[from] storage::IntegrityError),
    /// Execution failed (the state store, a corrupt record).
    #[error(transparent)]
    Execution(#[from] execution::ExecError),
    /// The store holds no block.
    #[error("the store holds no block (run `gmchain node init` first)")]
    EmptyStore,
    /// Block 0 is not this genesis's.
    #[error(
        "the store's block 0 is {stored}, but the genesis file gives {expected}: this data directory belongs to another chain"
    )]
    GenesisMismatch {
        /// The stored hash.
        stored: BlockHash,
        /// The genesis file's.
        expected: BlockHash,
    },
    /// The genesis file is unusable.
    #[error("genesis: {0}")]
    Genesis(String),
    /// A value the store should hold is missing.
    #[error("the store is missing the {0}")]
    Missing(&'static str),
    /// A height below the base of a store initialised from a snapshot: its header and state
    /// were never in this store.
    #[error(
        "height {height} is below the base {base} of this store (it was initialised from a snapshot at {base})"
    )]
    BelowBase {
        /// The height asked for.
        height: Height,
        /// The store's base.
        base: Height,
    },
    /// The certified header recorded by a snapshot store does not read back.
    #[error("the certified header recorded at the store's base does not read back: {0}")]
    BaseCertified(String),
    /// A certificate does not decide the block it is committed with.
    #[error("the commit certificate of height {height} does not decide the block: {source}")]
    Certificate {
        /// The height.
        height: Height,
        /// Why.
        #[source]
        source: CertificateError,
    },
    /// The height counter would overflow.
    #[error("height overflow")]
    HeightOverflow,
    /// Too many transactions for a header's u32 count.
    #[error("{count} transactions do not fit a block header's u32 count")]
    TxCountOverflow {
        /// How many.
        count: usize,
    },
}

/// Why a proposed (or synced) block is refused: a validator votes nil on it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BlockRefusal {
    /// Another chain's block.
    #[error("the block is for chain {got:?}")]
    ChainId {
        /// Its chain id.
        got: String,
    },
    /// Not the next height.
    #[error("the block is at height {got}, the next height is {expected}")]
    Height {
        /// Its height.
        got: Height,
        /// The next height.
        expected: Height,
    },
    /// Not on the head.
    #[error("the block's parent {got} is not the head {expected}")]
    Parent {
        /// Its parent.
        got: BlockHash,
        /// The head.
        expected: BlockHash,
    },
    /// A v1 header.
    #[error("the block has a version-1 header (no validator set or parent certificate)")]
    HeaderVersion,
    /// The header names another validator set.
    #[error("the header's validator set {got} is not the height's set {expected}")]
    ValidatorSet {
        /// The header's.
        got: Digest,
        /// The height's.
        expected: Digest,
    },
    /// The header names another validator set for the next height than the block's
    /// execution leaves.
    #[error(
        "the header's next validator set {got} is not the set the block's execution leaves, {expected}"
    )]
    NextValidatorSet {
        /// The header's.
        got: Digest,
        /// The execution's.
        expected: Digest,
    },
    /// The header names another parent certificate.
    #[error(
        "the header's last_commit {got} is not the hash of the parent's certificate {expected}"
    )]
    LastCommit {
        /// The header's.
        got: Digest,
        /// The parent certificate's.
        expected: Digest,
    },
    /// The proposer is not a validator of the height.
    #[error("the proposer {proposer} is not a validator of this height")]
    Proposer {
        /// The header's proposer.
        proposer: Digest,
    },
    /// The timestamp is not after the parent's.
    #[error("the timestamp {timestamp} ms is not after the parent's {parent} ms")]
    NotAfterParent {
        /// The block's.
        timestamp: u64,
        /// The parent's.
        parent: u64,
    },
    /// The timestamp is too far from the verifier's clock.
    #[error("the timestamp {timestamp} ms is more than {bound} ms from this node's clock {now} ms")]
    Time {
        /// The block's.
        timestamp: u64,
        /// The verifier's clock.
        now: u64,
        /// The bound.
        bound: u64,
    },
    /// The header's count disagrees with the transactions.
    #[error("the header declares {declared} transactions, the block holds {actual}")]
    TxCount {
        /// Declared.
        declared: u32,
        /// Held.
        actual: usize,
    },
    /// More transactions than the chain's `max_txs_per_block` in force at the block.
    #[error(
        "the block holds {count} transactions, above the chain's max_txs_per_block {max} in force {since}"
    )]
    TooManyTxs {
        /// Held.
        count: usize,
        /// The parameter in force.
        max: usize,
        /// Since when ("since height H" or "since genesis").
        since: String,
    },
    /// A root disagrees with the contents.
    #[error("the header's {which} {declared} differs from the computed {computed}")]
    Root {
        /// Which root.
        which: &'static str,
        /// The header's.
        declared: Digest,
        /// Computed here.
        computed: Digest,
    },
    /// Larger than a block may be.
    #[error("the block takes {size} bytes, above max_block_size = {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A transaction admission refuses.
    #[error("transaction {position}: {rejection}")]
    Transaction {
        /// Its position.
        position: usize,
        /// Why.
        rejection: execution::Rejection,
    },
    /// A transaction twice in the block.
    #[error("transaction {position} ({tx_id}) appears earlier in the block")]
    DuplicateInBlock {
        /// Its position.
        position: usize,
        /// Its id.
        tx_id: TxId,
    },
    /// The ledger failed while verifying (not the block's fault).
    #[error("the block could not be verified: {0}")]
    Ledger(#[from] LedgerError),
}
