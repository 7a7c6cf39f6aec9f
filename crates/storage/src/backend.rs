//! The key-value backend: named tables, atomic write batches, and the in-memory backend.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::error::StorageError;

/// A logical table. A persistent backend maps each to its own keyspace (a RocksDB column
/// family); the in-memory backend keys one map by `(Table, key)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Table {
    /// Height (u64 BE) → canonical block (header and transactions).
    Blocks,
    /// Height (u64 BE) → canonical block header.
    Headers,
    /// Transaction ID (32 bytes) → height (u64 BE) ‖ position (u32 BE).
    TxIndex,
    /// Height (u64 BE) ‖ position (u32 BE) → canonical receipt.
    Receipts,
    /// Node hash (32 bytes) → canonical state-tree node.
    StateNodes,
    /// Small named records: the tip pointer.
    Meta,
    /// Height (u64 BE) → the block's commit certificate (2f+1 precommits).
    Certificates,
    /// Height (u64 BE) ‖ sequence (u32 BE) → a consensus write-ahead-log entry (its own
    /// codec, crates/consensus), written and synced before the vote it records leaves the node.
    ConsensusWal,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 8] = [
        Table::Blocks,
        Table::Headers,
        Table::TxIndex,
        Table::Receipts,
        Table::StateNodes,
        Table::Meta,
        Table::Certificates,
        Table::ConsensusWal,
    ];

    /// Returns a stable name, usable as a column-family name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Blocks => "blocks",
            Table::Headers => "headers",
            Table::TxIndex => "tx_index",
            Table::Receipts => "receipts",
            Table::StateNodes => "state_nodes",
            Table::Meta => "meta",
            Table::Certificates => "certificates",
            Table::ConsensusWal => "consensus_wal",
        }
    }
}

/// One write in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Store `value` under `key` in `table`, replacing any previous value.
    Put {
        /// The table.
        table: Table,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` from `table` (absent keys are fine).
    Delete {
        /// The table.
        table: Table,
        /// The key.
        key: Vec<u8>,
    },
}

/// Writes applied together: a backend applies all of them or none. Later operations on the
/// same key win.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// Returns an empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Put {
            table,
            key: key.into(),
            value: value.into(),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Delete {
            table,
            key: key.into(),
        });
    }

    /// Returns the operations in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Returns the operations, consuming the batch.
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }

    /// Returns the number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Returns whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Key-value pairs read from one table, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A key-value store with named tables and atomic batches.
///
/// **API Boundary:** the persistent backend (`storage-rocksdb`) implements this trait; nothing
/// above it sees files or column families.
pub trait KvBackend: Send + Sync {
    /// Returns the value under `key` in `table`, or `None`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Applies `batch` atomically: after an error or a crash either every operation is visible
    /// or none is. When it returns `Ok`, the batch is durable.
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError>;

    /// Returns every `(key, value)` in `table` whose key starts with `prefix`, in key order.
    /// Meant for tools and checks, not hot paths.
    fn iter_prefix(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError>;
}

type Map = BTreeMap<(Table, Vec<u8>), Vec<u8>>;

/// A [`KvBackend`] in memory, for tests and tools. Batches are atomic (applied under one write
/// lock) and "durable" for the life of the value.
#[derive(Debug, Default)]
pub struct MemBackend {
    map: RwLock<Map>,
}

impl MemBackend {
    /// Returns an empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of keys held across all tables.
    pub fn len(&self) -> Result<usize, StorageError> {
        Ok(self.map.read().map_err(|_| poisoned())?.len())
    }

    /// Returns whether no table holds a key.
    pub fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(self.len()? == 0)
    }

    /// Fault injection: applies only the operations of `batch` for which `keep` returns true,
    /// as a backend without atomic batches would after a crash part-way through. Only for
    /// tests of the start-up checks.
    #[cfg(any(test, feature = "test-util"))]
    pub fn write_partial(
        &self,
        batch: WriteBatch,
        keep: impl Fn(&WriteOp) -> bool,
    ) -> Result<(), StorageError> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for op in batch.into_ops().into_iter().filter(|op| keep(op)) {
            apply(&mut map, op);
        }
        Ok(())
    }
}

fn apply(map: &mut Map, op: WriteOp) {
    match op {
        WriteOp::Put { table, key, value } => {
            map.insert((table, key), value);
        }
        WriteOp::Delete { table, key } => {
            map.remove(&(table, key));
        }
    }
}

fn poisoned() -> StorageError {
    StorageError::Backend(Box::new(std::io::Error::other(
        "in-memory backend lock poisoned",
    )))
}

impl KvBackend for MemBackend {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let map = self.map.read().map_err(|_| poisoned())?;
        Ok(map.get(&(table, key.to_vec())).cloned())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        // One write lock for the whole batch: readers see all of it or none of it.
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for op in batch.into_ops() {
            apply(&mut map, op);
        }
        Ok(())
    }

    fn iter_prefix(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
        let map = self.map.read().map_err(|_| poisoned())?;
        Ok(map
            .range((table, prefix.to_vec())..)
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_put_delete_and_prefix() {
        let b = MemBackend::new();
        let mut w = WriteBatch::new();
        w.put(Table::Meta, b"a1".to_vec(), b"x".to_vec());
        w.put(Table::Meta, b"a2".to_vec(), b"y".to_vec());
        w.put(Table::Blocks, b"a3".to_vec(), b"z".to_vec());
        w.put(Table::Meta, b"b1".to_vec(), b"w".to_vec());
        w.delete(Table::Meta, b"a2".to_vec());
        b.write(w).unwrap();
        assert_eq!(b.get(Table::Meta, b"a1").unwrap(), Some(b"x".to_vec()));
        assert_eq!(b.get(Table::Meta, b"a2").unwrap(), None);
        assert_eq!(b.get(Table::Headers, b"a1").unwrap(), None);
        let got = b.iter_prefix(Table::Meta, b"a").unwrap();
        assert_eq!(got, vec![(b"a1".to_vec(), b"x".to_vec())]);
        assert_eq!(b.iter_prefix(Table::Meta, b"").unwrap().len(), 2);
        assert_eq!(b.len().unwrap(), 3);
    }

    #[test]
    fn partial_write_applies_only_kept_ops() {
        let b = MemBackend::new();
        let mut w = WriteBatch::new();
        w.put(Table::Meta, b"k".to_vec(), b"1".to_vec());
        w.put(Table::Headers, b"k".to_vec(), b"2".to_vec());
        b.write_partial(w, |op| {
            matches!(
                op,
                WriteOp::Put {
                    table: Table::Meta,
                    ..
                }
            )
        })
        .unwrap();
        assert!(b.get(Table::Meta, b"k").unwrap().is_some());
        assert!(b.get(Table::Headers, b"k").unwrap().is_none());
    }
}
