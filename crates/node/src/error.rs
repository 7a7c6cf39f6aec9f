//! The node's errors.

use std::path::Path;

use thiserror::Error;
use types::BlockHash;

/// Why the node could not start or go on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `init` on a directory that holds a store.
    #[error("{path} already holds a store; refusing to overwrite it (choose another data_dir)")]
    AlreadyInitialised {
        /// The store directory.
        path: String,
    },
    /// The store holds no block.
    #[error("the store holds no block (run `gmchain node init` first)")]
    EmptyStore,
    /// The genesis file is invalid.
    #[error("genesis {path}: {message}")]
    Genesis {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The store's block 0 is not the genesis file's.
    #[error(
        "the store's block 0 has hash {stored}, but genesis.json gives {expected}: the genesis file or the store was replaced"
    )]
    GenesisMismatch {
        /// Stored block 0 hash.
        stored: BlockHash,
        /// Hash from the genesis file.
        expected: BlockHash,
    },
    /// The node's certificate is not a genesis validator.
    #[error("{subject} is not a validator of this chain's genesis")]
    NotAValidator {
        /// The certificate subject.
        subject: String,
    },
    /// The key does not belong to the certificate.
    #[error("the node's key is not the key of its certificate {subject}")]
    KeyCertificateMismatch {
        /// The certificate subject.
        subject: String,
    },
    /// The height asked for is below what this node holds (a snapshot's base, or pruned).
    #[error(
        "height {height} is below what this node holds: it holds heights from {lowest} (it joined from a snapshot or prunes old blocks); ask an archive node"
    )]
    Pruned {
        /// The height asked for.
        height: types::Height,
        /// The lowest height this node holds.
        lowest: types::Height,
    },
    /// A transaction this node has no index entry for, on a node initialised from a snapshot:
    /// it is not committed from the snapshot's base on, but one committed before the window
    /// the snapshot carried is unknown here (an archive node knows).
    #[error(
        "transaction {id} is not among the transactions this node indexes: it joined from a snapshot at height {base} and knows the transactions committed from then (and those of the blocks shortly before that could still be included); it is not committed since, and one committed earlier is unknown here; ask an archive node"
    )]
    NotIndexed {
        /// The transaction.
        id: types::TxId,
        /// The snapshot's height (the store's base).
        base: types::Height,
    },
    /// Pruned mode on a validator of the current set.
    #[error(
        "{subject} is a validator of the current set, and [storage] keep_blocks = {keep} asks for pruned mode: a pruned node does not answer sync requests for blocks below its mark, so pruning validators can strand a validator that falls behind (f + 1 stranded stop the chain); remove keep_blocks from this validator's configuration (prune on followers only)"
    )]
    PrunedValidator {
        /// The certificate subject.
        subject: String,
        /// The configured keep_blocks.
        keep: u64,
    },
    /// The single validator's store is marked restored (a backup or a snapshot).
    #[error(
        "the store is marked restored (a backup or a snapshot, at height {tip}) and this chain has a single validator: no peer can show how far the backed-up instance signed, and signing again at a height it signed would fork the chain (receipts already given out for those heights would then contradict it); if no block after height {tip} was ever issued (the old instance is gone with nothing given out after the backup), or you accept the fork, run `gmchain node release-guard --config FILE --reason TEXT`, then start the node"
    )]
    RestoredSingleValidator {
        /// The store's tip.
        tip: u64,
    },
    /// RocksDB could not open the store.
    #[error(transparent)]
    Rocks(#[from] storage_rocksdb::RocksError),
    /// A storage read or write failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The store failed its integrity check.
    #[error(
        "store integrity: {0}; the node refuses to run on it (restore from a backup or re-sync)"
    )]
    Integrity(#[from] storage::IntegrityError),
    /// Execution failed (store unreadable, corrupt record).
    #[error(transparent)]
    Execution(#[from] execution::ExecError),
    /// The block could not be sealed. The signer's error is kept: an unreachable token is
    /// exit 3, a wrong key or PIN exit 2.
    #[error("cannot seal the block: {0}")]
    Seal(#[source] crypto::CryptoError),
    /// Something the store should hold is missing.
    #[error("store is missing the {0}")]
    Missing(&'static str),
    /// A receipt bundle could not be built.
    #[error("cannot build the receipt: {0}")]
    Receipt(String),
    /// Height arithmetic overflowed.
    #[error("height overflow")]
    HeightOverflow,
    /// A block would hold more transactions than its header's count can say.
    #[error("{count} transactions do not fit a block header's u32 count")]
    TxCountOverflow {
        /// How many there were.
        count: usize,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Server(String),
    /// The node's TLS identity could not be loaded or is not valid on its chain.
    #[error("TLS: {0}")]
    Tls(String),
    /// Several genesis validators, but the single-validator engine.
    #[error(
        "the genesis names {count} validators, but this node runs the single-validator engine, which decides alone only as the whole validator set; use a genesis with one validator"
    )]
    NotSingleValidator {
        /// How many validators the genesis names.
        count: usize,
    },
    /// A commit certificate does not decide its block.
    #[error(transparent)]
    Certificate(ledger::LedgerError),
    /// `[exchange]` does not make the node a custodian.
    #[error("[exchange]: {0}")]
    Custodian(String),
    /// The node's audit log cannot be opened or continued.
    #[error("audit log: {0}")]
    Audit(String),
    /// Free space on the data directory's filesystem is below `[storage] min_free_mib`: a
    /// write was not started (`crate::disk`).
    #[error("storage low: {0}")]
    StorageLow(String),
    /// The free space of the data directory's filesystem cannot be read at start.
    #[error("cannot read the free space of the filesystem of {path} (statvfs): {source}")]
    StorageStat {
        /// The data directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `[storage]`'s resume point is above what an unprivileged user could ever have free on
    /// a filesystem the node writes to: once low, the node would never resume.
    #[error(
        "[storage] min_free_mib + resume_margin_mib = {resume} bytes, but the filesystem of {path} can never have more than {usable} bytes free: lower them (docs/ops/disk.md §1)"
    )]
    StorageResumeUnreachable {
        /// The path on that filesystem.
        path: String,
        /// What an unprivileged user could have free on it, empty.
        usable: u64,
        /// The resume point.
        resume: u64,
    },
}

impl From<ledger::LedgerError> for NodeError {
    fn from(e: ledger::LedgerError) -> Self {
        use ledger::LedgerError as L;
        match e {
            L::Storage(e) => NodeError::Storage(e),
            L::Integrity(e) => NodeError::Integrity(e),
            L::Execution(e) => NodeError::Execution(e),
            L::EmptyStore => NodeError::EmptyStore,
            L::GenesisMismatch { stored, expected } => {
                NodeError::GenesisMismatch { stored, expected }
            }
            L::Genesis(message) => NodeError::Genesis {
                path: "genesis.json".into(),
                message,
            },
            L::Missing(what) => NodeError::Missing(what),
            L::BelowBase { height, base } => NodeError::Pruned {
                height,
                lowest: base,
            },
            L::HeightOverflow => NodeError::HeightOverflow,
            L::TxCountOverflow { count } => NodeError::TxCountOverflow { count },
            other => NodeError::Certificate(other),
        }
    }
}

impl NodeError {
    /// Returns the stable code (docs/error-codes.md).
    pub fn code(&self) -> &'static codes::Code {
        match self {
            NodeError::Io { .. } => &codes::NODE_IO,
            NodeError::AlreadyInitialised { .. } => &codes::NODE_ALREADY_INITIALISED,
            NodeError::EmptyStore => &codes::NODE_EMPTY_STORE,
            NodeError::Genesis { .. } => &codes::NODE_GENESIS_INVALID,
            NodeError::GenesisMismatch { .. } => &codes::NODE_GENESIS_MISMATCH,
            NodeError::NotAValidator { .. } => &codes::NODE_NOT_A_VALIDATOR,
            NodeError::KeyCertificateMismatch { .. } => &codes::NODE_KEY_CERT_MISMATCH,
            NodeError::Rocks(storage_rocksdb::RocksError::Version {
                source: storage::StorageError::NeedsMigration { .. },
                ..
            })
            | NodeError::Storage(storage::StorageError::NeedsMigration { .. }) => {
                &codes::NODE_STORE_NEEDS_MIGRATION
            }
            NodeError::Pruned { .. } | NodeError::NotIndexed { .. } => &codes::NODE_PRUNED,
            NodeError::PrunedValidator { .. } => &codes::NODE_PRUNED_VALIDATOR,
            NodeError::RestoredSingleValidator { .. } => &codes::NODE_RESTORED_SINGLE_VALIDATOR,
            NodeError::Rocks(_) => &codes::NODE_STORE_OPEN,
            NodeError::Storage(_) => &codes::NODE_STORAGE,
            NodeError::Integrity(_) => &codes::NODE_STORE_INTEGRITY,
            NodeError::Execution(_) => &codes::NODE_EXECUTION,
            NodeError::Seal(_) => &codes::NODE_SEAL,
            NodeError::Tls(_) => &codes::NODE_TLS_CERTIFICATE,
            NodeError::Missing(_) => &codes::NODE_MISSING,
            NodeError::Receipt(_) => &codes::NODE_RECEIPT,
            NodeError::HeightOverflow => &codes::NODE_HEIGHT_OVERFLOW,
            NodeError::TxCountOverflow { .. } => &codes::NODE_TX_COUNT_OVERFLOW,
            NodeError::Listen { .. } => &codes::NODE_LISTEN,
            NodeError::Server(_) => &codes::NODE_SERVER,
            NodeError::NotSingleValidator { .. } => &codes::NODE_NOT_SINGLE_VALIDATOR,
            NodeError::Certificate(_) => &codes::NODE_CERTIFICATE,
            NodeError::Custodian(_) => &codes::NODE_CUSTODIAN,
            NodeError::Audit(_) => &codes::NODE_AUDIT,
            NodeError::StorageLow(_) => &codes::NODE_STORAGE_LOW,
            NodeError::StorageStat { .. } => &codes::NODE_STORAGE_STAT,
            NodeError::StorageResumeUnreachable { .. } => &codes::NODE_STORAGE_RESUME_UNREACHABLE,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        NodeError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl codes::Coded for NodeError {
    fn code(&self) -> &'static codes::Code {
        NodeError::code(self)
    }

    fn class(&self) -> codes::Class {
        match self {
            // The signer's failure decides: a token that is gone, or a wrong key or PIN.
            NodeError::Seal(e) => codes::Coded::class(e),
            _ => self.code().class,
        }
    }
}
