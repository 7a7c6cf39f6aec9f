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
    /// The block could not be sealed (token unreachable).
    #[error("cannot seal the block: {0}")]
    Seal(String),
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
}

impl NodeError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        NodeError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
