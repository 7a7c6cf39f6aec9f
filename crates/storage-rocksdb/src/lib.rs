//! gmchain's persistent [`KvBackend`] on RocksDB: one column family per [`Table`], each
//! [`WriteBatch`] applied as one RocksDB write batch with `sync = true`, so a block (one batch,
//! see `storage::ChainStore::commit_block`) costs exactly one WAL sync and is durable when
//! [`KvBackend::write`] returns.
//!
//! This is the only crate in the workspace that links RocksDB (a C++ build of ~20 minutes
//! cold); everything above it sees only `storage::KvBackend`.
//!
//! # What it refuses to do
//!
//! Open a store another process holds (RocksDB's `LOCK` file), open a directory that is not a
//! gmchain store unless asked to create one, write without syncing the WAL, or turn on RocksDB
//! features that break atomic batches (the WAL is never disabled, `manual_wal_flush` stays off).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::path::{Path, PathBuf};

use rocksdb::statistics::Ticker;
use rocksdb::{
    ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode, Options, WriteOptions,
};
use storage::{Entries, KvBackend, StorageError, Table, WriteBatch, WriteOp};
use thiserror::Error;

/// Why the store could not be opened or used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RocksError {
    /// The directory holds no store and `create` was not requested.
    #[error("{path}: no gmchain store here (run `gmchain node init` first)")]
    NotAStore {
        /// The directory.
        path: PathBuf,
    },
    /// Another process (or another handle in this one) has the store open.
    #[error("{path}: the store is in use by another process (RocksDB LOCK is held)")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// RocksDB refused to open or read the store.
    #[error("{path}: RocksDB: {message}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// RocksDB's message.
        message: String,
    },
    /// The store records another layout version; it was probed read-only and not opened.
    #[error("{path}: {source}")]
    Version {
        /// The directory.
        path: PathBuf,
        /// The versions.
        #[source]
        source: storage::StorageError,
    },
    /// RocksDB could not make a checkpoint.
    #[error("{path}: RocksDB checkpoint: {message}")]
    Checkpoint {
        /// The checkpoint's directory.
        path: PathBuf,
        /// RocksDB's message.
        message: String,
    },
    /// A column family is missing although the store opened.
    #[error("column family {0} is missing")]
    MissingColumnFamily(&'static str),
}

/// RocksDB counters a node exports as metrics and tests compare with blocks committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RocksStats {
    /// WAL syncs (`rocksdb.wal.synced`) since the store was opened.
    pub wal_syncs: u64,
    /// Write batches applied through [`KvBackend::write`] since the store was opened.
    pub batches_written: u64,
    /// Bytes written to the WAL (`rocksdb.wal.bytes`) since the store was opened.
    pub wal_bytes: u64,
}

/// Judges a store's `store_version` value (absent: `None`) and whether it has a tip.
type VersionCheck = dyn Fn(Option<&[u8]>, bool) -> Result<(), StorageError>;

/// A [`KvBackend`] on a RocksDB directory.
pub struct RocksBackend {
    db: DB,
    // Statistics live in the Options the DB was opened with.
    opts: Options,
    path: PathBuf,
    batches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RocksBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(false);
    o.create_missing_column_families(false);
    o.set_paranoid_checks(true);
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_manual_wal_flush(false);
    o.enable_statistics();
    o
}

fn cf_options() -> Options {
    let mut o = Options::default();
    o.set_compression_type(DBCompressionType::Lz4);
    o
}

impl RocksBackend {
    /// Opens the store at `path`. With `create`, makes an empty store (every column family)
    /// if the directory holds none; without it, a missing store is [`RocksError::NotAStore`].
    pub fn open(path: &Path, create: bool) -> Result<Self, RocksError> {
        Self::open_checked(path, create, storage::check_store_version)
    }

    /// Opens an existing store of this build's version or of the version `gmchain node
    /// migrate` moves from ([`storage::MIGRATES_FROM`]), holding its lock; any other version
    /// is refused, read-only, as [`RocksBackend::open`] refuses it. Only for `migrate`, which
    /// judges the version itself before it writes.
    pub fn open_for_migration(path: &Path) -> Result<Self, RocksError> {
        Self::open_checked(path, false, |value, has_tip| match value {
            Some([v]) if *v == storage::MIGRATES_FROM => Ok(()),
            other => storage::check_store_version(other, has_tip),
        })
    }

    fn open_checked(
        path: &Path,
        create: bool,
        check: impl Fn(Option<&[u8]>, bool) -> Result<(), StorageError> + 'static,
    ) -> Result<Self, RocksError> {
        let exists = path.join("CURRENT").exists();
        if !exists && !create {
            return Err(RocksError::NotAStore {
                path: path.to_path_buf(),
            });
        }
        let mut opts = options();
        if exists {
            // Judge the layout version read-only first: a store of another version is refused
            // before RocksDB writes anything to it (a read-write open flushes and rewrites
            // files), and whatever its column families.
            Self::probe_version(path, &opts, &check)?;
        } else {
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
        }
        let cfs = Table::ALL
            .iter()
            .map(|t| ColumnFamilyDescriptor::new(t.name(), cf_options()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            let message = e.into_string();
            if message.contains("LOCK") && message.contains("lock") {
                RocksError::Locked {
                    path: path.to_path_buf(),
                }
            } else {
                RocksError::Open {
                    path: path.to_path_buf(),
                    message,
                }
            }
        })?;
        for t in Table::ALL {
            if db.cf_handle(t.name()).is_none() {
                return Err(RocksError::MissingColumnFamily(t.name()));
            }
        }
        Ok(Self {
            db,
            opts,
            path: path.to_path_buf(),
            batches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Reads the layout version of an existing store without opening it for writing.
    fn probe_version(path: &Path, opts: &Options, check: &VersionCheck) -> Result<(), RocksError> {
        let open_err = |e: rocksdb::Error| RocksError::Open {
            path: path.to_path_buf(),
            message: e.into_string(),
        };
        let families = DB::list_cf(opts, path).map_err(open_err)?;
        let meta = Table::Meta.name();
        if !families.iter().any(|f| f == meta) {
            // Not our layout at all: the read-write open names the missing family.
            return Ok(());
        }
        let cfs = families
            .iter()
            .map(|f| ColumnFamilyDescriptor::new(f, cf_options()));
        let db = DB::open_cf_descriptors_read_only(opts, path, cfs, false).map_err(open_err)?;
        let (value, has_tip) = match db.cf_handle(meta) {
            Some(cf) => (
                db.get_cf(&cf, storage::STORE_VERSION_KEY)
                    .map_err(open_err)?,
                db.get_cf(&cf, storage::TIP_KEY)
                    .map_err(open_err)?
                    .is_some(),
            ),
            None => (None, false),
        };
        check(value.as_deref(), has_tip).map_err(|source| RocksError::Version {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Opens the store at `path` read-only, for reading a checkpoint (`gmchain node backup`
    /// reads the tip of the checkpoint it just made): no lock is taken and no file of `path`
    /// is written. RocksDB's informational log goes to `info_log_dir` (it would otherwise be
    /// created inside the store), which must exist.
    pub fn open_read_only(path: &Path, info_log_dir: &Path) -> Result<Self, RocksError> {
        Self::open_read_only_checked(path, info_log_dir, &storage::check_store_version)
    }

    /// [`RocksBackend::open_read_only`] that also takes a store of the version `gmchain node
    /// migrate` moves from: `migrate` checks the tip on it before it opens the store for
    /// writing (a read-write open rewrites RocksDB's MANIFEST and OPTIONS files, even when the
    /// migration is then refused).
    pub fn open_read_only_for_migration(
        path: &Path,
        info_log_dir: &Path,
    ) -> Result<Self, RocksError> {
        Self::open_read_only_checked(path, info_log_dir, &|value, has_tip| match value {
            Some([v]) if *v == storage::MIGRATES_FROM => Ok(()),
            other => storage::check_store_version(other, has_tip),
        })
    }

    fn open_read_only_checked(
        path: &Path,
        info_log_dir: &Path,
        check: &VersionCheck,
    ) -> Result<Self, RocksError> {
        if !path.join("CURRENT").exists() {
            return Err(RocksError::NotAStore {
                path: path.to_path_buf(),
            });
        }
        let mut opts = options();
        opts.set_db_log_dir(info_log_dir);
        Self::probe_version(path, &opts, check)?;
        let cfs = Table::ALL
            .iter()
            .map(|t| ColumnFamilyDescriptor::new(t.name(), cf_options()));
        let db = DB::open_cf_descriptors_read_only(&opts, path, cfs, false).map_err(|e| {
            RocksError::Open {
                path: path.to_path_buf(),
                message: e.into_string(),
            }
        })?;
        for t in Table::ALL {
            if db.cf_handle(t.name()).is_none() {
                return Err(RocksError::MissingColumnFamily(t.name()));
            }
        }
        Ok(Self {
            db,
            opts,
            path: path.to_path_buf(),
            batches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Makes a RocksDB checkpoint of the open store in `dest`, which must not exist (its
    /// parent must): a consistent copy as of one moment, whatever writes go on meanwhile.
    /// Every batch is in it entirely or not at all, so a checkpoint never holds half a block.
    /// RocksDB flushes the memtables first and hard-links the immutable table files when
    /// `dest` is on the store's filesystem (copies them otherwise); the checkpoint opens on
    /// its own, without the store it came from.
    pub fn checkpoint(&self, dest: &Path) -> Result<(), RocksError> {
        let err = |e: rocksdb::Error| RocksError::Checkpoint {
            path: dest.to_path_buf(),
            message: e.into_string(),
        };
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(err)?;
        checkpoint.create_checkpoint(dest).map_err(err)
    }

    /// Returns the directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the counters since the store was opened.
    pub fn stats(&self) -> RocksStats {
        RocksStats {
            wal_syncs: self.opts.get_ticker_count(Ticker::WalFileSynced),
            batches_written: self.batches.load(std::sync::atomic::Ordering::Relaxed),
            wal_bytes: self.opts.get_ticker_count(Ticker::WalFileBytes),
        }
    }

    fn cf(&self, table: Table) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(table.name())
            .ok_or_else(|| backend(RocksError::MissingColumnFamily(table.name())))
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Backend(Box::new(e))
}

fn rocks(path: &Path, e: rocksdb::Error) -> StorageError {
    backend(RocksError::Open {
        path: path.to_path_buf(),
        message: e.into_string(),
    })
}

impl KvBackend for RocksBackend {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db
            .get_cf(self.cf(table)?, key)
            .map_err(|e| rocks(&self.path, e))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in in_key_order(batch.into_ops()) {
            match op {
                WriteOp::Put { table, key, value } => wb.put_cf(self.cf(table)?, key, value),
                WriteOp::Delete { table, key } => wb.delete_cf(self.cf(table)?, key),
            }
        }
        // One batch, one WAL append, one sync: durable when this returns.
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        wo.disable_wal(false);
        self.db
            .write_opt(wb, &wo)
            .map_err(|e| rocks(&self.path, e))?;
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn iter_prefix(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(table)?,
            IteratorMode::From(prefix, Direction::Forward),
        ) {
            let (k, v) = item.map_err(|e| rocks(&self.path, e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }
}

/// The operations ordered by table (column family), then key; operations on the same key keep
/// their order (a stable sort), so the last still wins. A block's batch writes state-tree
/// nodes under hash keys, in random order: RocksDB's memtable skip list starts each insert
/// from where the previous one ended, so keys in order cost a short search instead of one
/// from the top (issue 13: memtable inserts were ~14% of a validator's CPU under load).
fn in_key_order(mut ops: Vec<WriteOp>) -> Vec<WriteOp> {
    fn key(op: &WriteOp) -> (Table, &[u8]) {
        match op {
            WriteOp::Put { table, key, .. } | WriteOp::Delete { table, key } => (*table, key),
        }
    }
    ops.sort_by(|a, b| key(a).cmp(&key(b)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_store_is_refused_without_create() {
        let dir = tempfile::tempdir().unwrap();
        let e = RocksBackend::open(dir.path(), false).unwrap_err();
        assert!(matches!(e, RocksError::NotAStore { .. }), "{e}");
    }

    #[test]
    fn a_batch_applied_in_key_order_keeps_the_last_write_of_each_key() {
        let dir = tempfile::tempdir().unwrap();
        let b = RocksBackend::open(dir.path(), true).unwrap();
        b.write({
            let mut w = WriteBatch::new();
            w.put(Table::Meta, b"gone".to_vec(), b"old".to_vec());
            w
        })
        .unwrap();
        // Keys out of order, each written many times (put, delete, put again) and
        // interleaved with other keys and tables: an unstable sort would reorder the writes
        // of one key.
        let mut w = WriteBatch::new();
        let mut want: std::collections::BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>> =
            Default::default();
        for round in 0u16..200 {
            for (i, t) in [Table::Blocks, Table::Meta, Table::Blocks]
                .iter()
                .enumerate()
            {
                let k = vec![(round.wrapping_mul(37) % 11) as u8, i as u8];
                if round % 7 == 3 {
                    w.delete(*t, k.clone());
                    want.insert((*t, k), None);
                } else {
                    let v = round.to_be_bytes().to_vec();
                    w.put(*t, k.clone(), v.clone());
                    want.insert((*t, k), Some(v));
                }
            }
        }
        w.delete(Table::Meta, b"gone".to_vec());
        w.put(Table::Meta, b"gone".to_vec(), b"back".to_vec());
        w.delete(Table::Meta, b"gone".to_vec());
        want.insert((Table::Meta, b"gone".to_vec()), None);
        b.write(w).unwrap();
        for ((t, k), v) in &want {
            assert_eq!(b.get(*t, k).unwrap(), *v, "{t:?} {k:?}");
        }
        // The order is by table, then key, and stable within a key.
        let ops = in_key_order(vec![
            WriteOp::Put {
                table: Table::Meta,
                key: vec![2],
                value: vec![1],
            },
            WriteOp::Delete {
                table: Table::Blocks,
                key: vec![9],
            },
            WriteOp::Delete {
                table: Table::Meta,
                key: vec![2],
            },
            WriteOp::Put {
                table: Table::Meta,
                key: vec![1],
                value: vec![3],
            },
            WriteOp::Put {
                table: Table::Meta,
                key: vec![2],
                value: vec![4],
            },
        ]);
        let order: Vec<(Table, Vec<u8>, bool)> = ops
            .iter()
            .map(|op| match op {
                WriteOp::Put { table, key, .. } => (*table, key.clone(), true),
                WriteOp::Delete { table, key } => (*table, key.clone(), false),
            })
            .collect();
        let mut tables = [Table::Blocks, Table::Meta];
        tables.sort();
        assert_eq!(order[0].0, tables[0]);
        let meta: Vec<(Vec<u8>, bool)> = order
            .iter()
            .filter(|o| o.0 == Table::Meta)
            .map(|o| (o.1.clone(), o.2))
            .collect();
        assert_eq!(
            meta,
            [
                (vec![1], true),
                (vec![2], true),
                (vec![2], false),
                (vec![2], true)
            ]
        );
    }

    #[test]
    fn batches_are_durable_and_one_sync_each() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = RocksBackend::open(dir.path(), true).unwrap();
            let base = b.stats();
            for i in 0u8..5 {
                let mut w = WriteBatch::new();
                for t in Table::ALL {
                    w.put(t, vec![i, 1], vec![i; 100]);
                    w.put(t, vec![i, 2], vec![i; 10]);
                }
                w.delete(Table::Meta, vec![i, 2]);
                b.write(w).unwrap();
            }
            let s = b.stats();
            assert_eq!(s.batches_written - base.batches_written, 5);
            assert_eq!(s.wal_syncs - base.wal_syncs, 5, "one WAL sync per batch");
        }
        let b = RocksBackend::open(dir.path(), false).unwrap();
        assert_eq!(b.get(Table::Blocks, &[3, 1]).unwrap(), Some(vec![3; 100]));
        assert_eq!(b.get(Table::Meta, &[3, 2]).unwrap(), None);
        assert_eq!(
            b.get(Table::Certificates, &[4, 2]).unwrap(),
            Some(vec![4; 10])
        );
        let got = b.iter_prefix(Table::Headers, &[2]).unwrap();
        assert_eq!(
            got,
            vec![(vec![2, 1], vec![2; 100]), (vec![2, 2], vec![2; 10])]
        );
        assert_eq!(b.iter_prefix(Table::Headers, &[]).unwrap().len(), 10);
    }

    #[test]
    fn a_checkpoint_of_an_open_store_is_a_store_of_its_own_that_a_read_only_open_leaves_unwritten()
    {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let b = RocksBackend::open(&live, true).unwrap();
        for i in 0u8..20 {
            let mut w = WriteBatch::new();
            w.put(Table::Blocks, vec![i], vec![i; 1000]);
            w.put(Table::Meta, b"mark".to_vec(), vec![i]);
            b.write(w).unwrap();
        }
        let cp = dir.path().join("cp");
        b.checkpoint(&cp).unwrap();
        // Written after the checkpoint: not in it.
        let mut w = WriteBatch::new();
        w.put(Table::Meta, b"mark".to_vec(), vec![99]);
        b.write(w).unwrap();
        // A checkpoint into an existing directory is refused.
        assert!(matches!(
            b.checkpoint(&cp).unwrap_err(),
            RocksError::Checkpoint { .. }
        ));
        let files = |p: &Path| {
            let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let before = files(&cp);
        let logs = tempfile::tempdir().unwrap();
        {
            let ro = RocksBackend::open_read_only(&cp, logs.path()).unwrap();
            assert_eq!(ro.get(Table::Meta, b"mark").unwrap(), Some(vec![19]));
            assert_eq!(ro.get(Table::Blocks, &[7]).unwrap(), Some(vec![7; 1000]));
            // Read-only: a write fails, and the live store's lock did not stop the open.
            let mut w = WriteBatch::new();
            w.put(Table::Meta, b"mark".to_vec(), vec![1]);
            assert!(ro.write(w).is_err());
        }
        assert_eq!(
            files(&cp),
            before,
            "a read-only open wrote into the checkpoint"
        );
        drop(b);
        let reopened = RocksBackend::open(&cp, false).unwrap();
        assert_eq!(reopened.get(Table::Meta, b"mark").unwrap(), Some(vec![19]));
    }

    #[test]
    fn second_open_is_refused_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let _held = RocksBackend::open(dir.path(), true).unwrap();
        let e = RocksBackend::open(dir.path(), false).unwrap_err();
        assert!(matches!(e, RocksError::Locked { .. }), "{e}");
    }
}
