//! This crate must not have any transitive dependencies on RocksDB.
//!
//! gmchain's storage, as pure logic: the [`KvBackend`] trait (named [`Table`]s, atomic
//! [`WriteBatch`]es), the in-memory [`MemBackend`], and the typed [`ChainStore`] that keeps
//! headers, blocks, the transaction index, receipts, state-tree nodes and the tip pointer.
//!
//! # Invariants
//!
//! - Each block is committed in exactly one [`WriteBatch`]: header, block, transaction index,
//!   receipts, state nodes and the tip pointer together. A backend applies a batch atomically
//!   and durably, so a store holds either all of a block or none of it.
//! - [`ChainStore::commit_block`] refuses a block that does not extend the tip (height, parent),
//!   whose transaction root, receipts root, state root or transaction count disagree with its
//!   header, or that it could not read back under its [`types::Limits`] (a block above
//!   `max_block_size`, a receipt above `max_receipt_size`); a refused block writes nothing.
//! - Every stored value is decoded with [`types::Limits`] through the canonical codec; a
//!   tampered value is an error, never a panic.
//! - [`ChainStore::check_tip_on_startup`] refuses a half-written or tampered tip, and
//!   [`ChainStore::verify_chain`] re-checks any range of the chain, each naming the height.
//!
//! # What it refuses to do
//!
//! Open files, sockets, clocks or entropy sources (a persistent backend lives in its own shell
//! crate and maps [`Table`]s to its column families); write state nodes outside a block commit;
//! prune or rewrite history.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod backend;
mod chain;
mod error;

pub use backend::{Entries, KvBackend, MemBackend, Table, WriteBatch, WriteOp};
pub use chain::{
    BASE_CERTIFIED_KEY, BASE_KEY, ChainStore, GENESIS_KEY, MIGRATES_FROM, PRUNE_BATCH_DELETES,
    PRUNED_BELOW_KEY, STORE_VERSION, STORE_VERSION_KEY, StateNodes, TIP_KEY, Tip, TxLocation,
    check_store_version,
};
pub use error::{IntegrityError, IntegrityFault, MigrateError, StorageError};
