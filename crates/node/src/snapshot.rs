//! State snapshots (docs/formats.md §11): export the state tree at a height with what
//! certifies it, and initialise a new node's store from one, verifying everything against the
//! genesis file alone.
//!
//! A snapshot carries the header at height H, its commit certificate and the validator-set
//! changes from genesis to H (a [`receipt::CertifiedHeader`]: exactly the rule offline
//! receipts follow), the blocks the importer needs so that it judges later transactions as an
//! archive node does (block H with its receipts, and every earlier block that may hold a
//! transaction whose expiry is above H: a replay of one is a duplicate on an archive node, so
//! its ID must be in the new node's transaction index), then the state-tree nodes depth-first
//! from the root, each checked against the hash its parent named as it arrives (memory bounded
//! by the tree's depth), and the SM3 of everything before it.
//!
//! What it refuses to do: export from a store another process holds (a running node: back it
//! up first and export from the backup's `DIR/store`), write a store before everything
//! verified (the store is built in `db.importing` and renamed to `db` last), or read a
//! snapshot of another chain.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crypto::Digest;
use crypto_sm::sm3::Sm3Context;
use execution::Genesis;
use ledger::Ledger;
use state::{EMPTY_ROOT, Node, NodeStore};
use storage::{ChainStore, KvBackend, Table, WriteBatch};
use storage_rocksdb::{RocksBackend, RocksError};
use types::{Block, BlockHash, Decode, Encode, Height, Limits, Receipt};

use crate::error::NodeError;

/// The first bytes of a snapshot file.
pub const MAGIC: &[u8; 16] = b"gmchain-snapshot";
/// The snapshot format version this build writes and reads.
pub const VERSION: u8 = 1;
/// State nodes written per batch while importing.
const NODE_BATCH: usize = 20_000;
/// The largest state node encoding read (a leaf holds at most `state::MAX_VALUE_LEN` bytes).
const MAX_NODE_LEN: u32 = 1 << 24;

/// Why a snapshot could not be exported or imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file is not a snapshot this build reads, or is truncated.
    #[error("snapshot {path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The snapshot is of another chain.
    #[error("snapshot {path}: {message}")]
    WrongChain {
        /// The file.
        path: String,
        /// What differs.
        message: String,
    },
    /// Something in the snapshot does not verify.
    #[error("snapshot {path}: {message}; nothing was written")]
    Invalid {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The store cannot be exported.
    #[error("{0}")]
    Source(String),
    /// A node error (the store, the genesis, a file).
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl SnapshotError {
    /// Returns the stable code (docs/error-codes.md).
    pub fn code(&self) -> &'static codes::Code {
        match self {
            SnapshotError::Format { .. } => &codes::NODE_SNAPSHOT_FORMAT,
            SnapshotError::WrongChain { .. } => &codes::NODE_SNAPSHOT_WRONG_CHAIN,
            SnapshotError::Invalid { .. } => &codes::NODE_SNAPSHOT_INVALID,
            SnapshotError::Source(_) => &codes::NODE_SNAPSHOT_SOURCE,
            SnapshotError::Node(e) => e.code(),
        }
    }
}

impl codes::Coded for SnapshotError {
    fn code(&self) -> &'static codes::Code {
        SnapshotError::code(self)
    }
}

impl From<storage::StorageError> for SnapshotError {
    fn from(e: storage::StorageError) -> Self {
        SnapshotError::Node(e.into())
    }
}

impl From<ledger::LedgerError> for SnapshotError {
    fn from(e: ledger::LedgerError) -> Self {
        SnapshotError::Node(e.into())
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The snapshot's height.
    pub height: Height,
    /// Its block hash.
    pub hash: BlockHash,
    /// The lowest height of the blocks carried for duplicate detection.
    pub blocks_from: Height,
    /// State-tree nodes written.
    pub nodes: u64,
    /// Bytes written.
    pub bytes: u64,
    /// SM3 of the file but its trailer (the trailer's value).
    pub sm3: Digest,
}

/// What an import wrote.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The store's base (= tip) height.
    pub height: Height,
    /// Its block hash.
    pub hash: BlockHash,
    /// The lowest height whose transactions are indexed for duplicate detection.
    pub indexed_from: Height,
    /// State-tree nodes verified and written.
    pub nodes: u64,
    /// The validator-set changes followed from genesis.
    pub set_changes: usize,
}

/// The lowest height whose block may hold a transaction still includable after `height`: a
/// transaction in block h was admitted with expiry at most h − 1 + the expiry window in force
/// for h, and can be included after `height` only if its expiry is above `height`. The window
/// of each height comes from the genesis parameters and the recorded parameter changes (the
/// state's history), so the importer recomputes this from the verified state.
pub fn duplicate_window_from(
    genesis_window: u64,
    changes: &[(Height, u64)],
    height: Height,
) -> Height {
    let mut segments = vec![(Height(1), genesis_window)];
    segments.extend(changes.iter().copied());
    let target = height.0.saturating_add(2);
    let mut lowest = height.0.max(1);
    for (i, (from, window)) in segments.iter().enumerate() {
        let hi = segments
            .get(i + 1)
            .map_or(height.0, |(next, _)| next.0.saturating_sub(1))
            .min(height.0);
        let candidate = from.0.max(1).max(target.saturating_sub(*window));
        if candidate <= hi {
            lowest = lowest.min(candidate);
        }
    }
    Height(lowest)
}

fn window_changes(
    view: &(impl execution::StateRead + ?Sized),
) -> Result<Vec<(Height, u64)>, execution::ExecError> {
    Ok(execution::params_history(view)?
        .into_iter()
        .map(|c| (c.from, c.params.expiry_window))
        .collect())
}

/// A writer that hashes what it writes and writes through a staging file.
struct Out {
    file: safefile::StagingFile,
    buf: Vec<u8>,
    hash: Sm3Context,
    bytes: u64,
}

impl Out {
    fn put(&mut self, data: &[u8]) -> Result<(), NodeError> {
        self.hash.update(data);
        self.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }

    fn bytes(&mut self, data: &[u8]) -> Result<(), NodeError> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.put(&len.to_be_bytes())?;
        self.put(data)
    }

    fn flush(&mut self) -> Result<(), NodeError> {
        let buf = std::mem::take(&mut self.buf);
        self.file.write_all(&buf).map_err(safe_err)
    }
}

fn safe_err(e: safefile::Error) -> NodeError {
    let (_, path, source) = e.into_parts();
    NodeError::io(&path, source)
}

/// Where an export reads the store from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A stopped node's store (`--config`): opened with its lock, so that a running node's is
    /// refused.
    Stopped(&'a Path),
    /// A copy of a store (`--store`: a backup's `DIR/store`, a RocksDB checkpoint): opened
    /// read-only, with RocksDB's informational log in a temporary directory, so that nothing
    /// is written into it (a backup's files are listed in its signed manifest: one more file
    /// and it no longer restores). Refused while another process holds its lock.
    Copy(&'a Path),
}

fn in_use(path: &Path) -> SnapshotError {
    SnapshotError::Source(format!(
        "{}: the store is in use (a running node holds it); stop the node, or back it up (`gmchain node backup`) and export from the backup's DIR/store",
        path.display()
    ))
}

/// Whether another process holds the RocksDB lock of the store `dir` (a running node). Only
/// reads: the `LOCK` file is opened read-only and never created, and a shared lock is tried
/// (RocksDB holds an exclusive one). The probe's lock goes when the file is closed; POSIX
/// record locks are per process, so this tells about other processes only (the CLI's case).
fn held_by_another_process(dir: &Path) -> Result<bool, NodeError> {
    let lock = dir.join("LOCK");
    let file = match std::fs::File::open(&lock) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(NodeError::io(&lock, e)),
    };
    match rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(false),
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => Ok(true),
        Err(e) => Err(NodeError::io(&lock, e.into())),
    }
}

fn open_source(source: Source<'_>) -> Result<(RocksBackend, Option<TempLogDir>), SnapshotError> {
    match source {
        Source::Stopped(dir) => RocksBackend::open(dir, false)
            .map(|b| (b, None))
            .map_err(|e| match e {
                RocksError::Locked { path } => in_use(&path),
                other => SnapshotError::Node(other.into()),
            }),
        Source::Copy(dir) => {
            if held_by_another_process(dir)? {
                return Err(in_use(dir));
            }
            let log = TempLogDir::new()?;
            let backend = RocksBackend::open_read_only(dir, &log.0)
                .map_err(|e| SnapshotError::Node(e.into()))?;
            Ok((backend, Some(log)))
        }
    }
}

/// A directory for RocksDB's informational log of a read-only open, removed when dropped.
struct TempLogDir(PathBuf);

impl TempLogDir {
    fn new() -> Result<Self, NodeError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| {
            NodeError::io(&std::env::temp_dir(), std::io::Error::other(e.to_string()))
        })?;
        let dir = std::env::temp_dir().join(format!("gmchain-snapshot-log-{}", hex::encode(nonce)));
        std::fs::create_dir(&dir).map_err(|e| NodeError::io(&dir, e))?;
        Ok(Self(dir))
    }
}

impl Drop for TempLogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Exports the state at `height` (default: the tip) of the store `source`, whose chain is
/// `genesis`, to `out`.
pub fn export(
    source: Source<'_>,
    genesis: Genesis,
    height: Option<Height>,
    out: &Path,
) -> Result<Exported, SnapshotError> {
    let (backend, _log) = open_source(source)?;
    let store = ChainStore::new(backend, Limits::default());
    let ledger = Ledger::open(store, genesis)?;
    let tip = ledger.head().tip;
    let height = height.unwrap_or(tip.height);
    let lowest = ledger.store().lowest_held()?;
    if height.0 == 0 || height > tip.height || height < lowest {
        return Err(SnapshotError::Source(format!(
            "height {height} is not one to export: this store holds heights {}..={} (and block 0 needs no snapshot)",
            lowest.max(Height(1)),
            tip.height
        )));
    }
    // The carried blocks first: a store that cannot give them (a snapshot node near its
    // base, a pruned node) is told so before anything else is read.
    let genesis_window = ledger.genesis().params.expiry_window;
    let changes = ledger
        .with_state_at(height, |v| window_changes(v))?
        .map_err(NodeError::from)?;
    let blocks_from = duplicate_window_from(genesis_window, &changes, height);
    if blocks_from < lowest {
        return Err(SnapshotError::Source(format!(
            "the snapshot of height {height} must carry the blocks from height {blocks_from} (transactions still includable after it), but this store holds blocks from {lowest} only; export from an archive node{}",
            if lowest.0 > 0 && ledger.snapshot_base()?.is_some_and(|b| b == lowest) {
                format!(
                    " (this node joined from a snapshot at {lowest}: it can export the heights whose carried blocks are all at or above {lowest}, once it synced that far)"
                )
            } else {
                " or one with a larger keep_blocks".to_string()
            }
        )));
    }
    let (header, certificate) = ledger.certified_header(height)?;
    let set_changes = ledger.set_changes(height)?;
    // What the importer accepts (receipt::json's limits): refused here, naming the limit,
    // rather than written and refused there.
    if set_changes.len() > receipt::MAX_SET_CHANGES {
        return Err(SnapshotError::Source(format!(
            "the chain has {} validator-set changes up to height {height}; a snapshot's certified header carries at most {} (receipt::MAX_SET_CHANGES), so no node of this release could import it",
            set_changes.len(),
            receipt::MAX_SET_CHANGES
        )));
    }
    let certified = receipt::CertifiedHeader {
        header: header.clone(),
        certificate,
        set_changes,
    }
    .to_json_value()
    .to_string();
    if certified.len() > receipt::MAX_FILE_LEN {
        return Err(SnapshotError::Source(format!(
            "the certified header of height {height} (with its validator-set changes) is {} bytes; a snapshot carries at most {} (receipt::MAX_FILE_LEN), so no node of this release could import it",
            certified.len(),
            receipt::MAX_FILE_LEN
        )));
    }

    let file = safefile::StagingFile::create(out, safefile::Mode::PUBLIC).map_err(safe_err)?;
    let mut w = Out {
        file,
        buf: Vec::with_capacity(1 << 20),
        hash: Sm3Context::new(),
        bytes: 0,
    };
    w.put(MAGIC)?;
    w.put(&[VERSION])?;
    w.bytes(ledger.genesis().chain_id.as_str().as_bytes())?;
    w.put(ledger.genesis_hash().as_bytes())?;
    w.put(&height.0.to_be_bytes())?;
    w.bytes(certified.as_bytes())?;
    let count = u32::try_from(height.0 - blocks_from.0 + 1).unwrap_or(u32::MAX);
    w.put(&count.to_be_bytes())?;
    let store = ledger.store();
    let mut h = height;
    loop {
        let block = store
            .block(h)?
            .ok_or(NodeError::Missing("block carried by the snapshot"))?;
        w.bytes(&block.to_bytes())?;
        if h == height {
            let n = u32::try_from(block.txs.len()).unwrap_or(u32::MAX);
            w.put(&n.to_be_bytes())?;
            for i in 0..n {
                let r = store
                    .receipt_at(storage::TxLocation {
                        height: h,
                        position: i,
                    })?
                    .ok_or(NodeError::Missing("receipt of the snapshot's block"))?;
                w.bytes(&r.to_bytes())?;
            }
        }
        if h == blocks_from {
            break;
        }
        h = Height(h.0 - 1);
    }
    // Depth-first, left before right: the importer checks each node against the hash its
    // parent (or the header's state root) named, holding only the pending hashes.
    let nodes = store.state_nodes();
    let mut stack = vec![header.state_root];
    let mut written = 0u64;
    while let Some(key) = stack.pop() {
        if key == EMPTY_ROOT {
            continue;
        }
        let node = nodes
            .get(&key)
            .map_err(|e| NodeError::Missing(leak_state_error(e)))?
            .ok_or(NodeError::Missing("state node under the snapshot's root"))?;
        w.bytes(&node.encode())?;
        written += 1;
        if let Node::Internal { left, right } = node {
            stack.push(right);
            stack.push(left);
        }
    }
    w.put(&0u32.to_be_bytes())?;
    let digest = std::mem::replace(&mut w.hash, Sm3Context::new()).finish();
    w.buf.extend_from_slice(digest.as_bytes());
    w.bytes += 32;
    w.flush()?;
    let Out { file, bytes, .. } = w;
    file.finish()
        .and_then(|staged| staged.rename_into_place())
        .map_err(safe_err)?;
    Ok(Exported {
        height,
        hash: header.hash(),
        blocks_from,
        nodes: written,
        bytes,
        sm3: digest,
    })
}

fn leak_state_error(_e: state::StateError) -> &'static str {
    "readable state node under the snapshot's root"
}

/// A reader that hashes what it reads.
struct In<R: Read> {
    inner: R,
    hash: Sm3Context,
    path: String,
}

impl<R: Read> In<R> {
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), SnapshotError> {
        self.inner
            .read_exact(buf)
            .map_err(|e| SnapshotError::Format {
                path: self.path.clone(),
                message: format!("truncated or unreadable at the {what}: {e}"),
            })?;
        self.hash.update(buf);
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<u32, SnapshotError> {
        let mut b = [0u8; 4];
        self.exact(&mut b, what)?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self, what: &str) -> Result<u64, SnapshotError> {
        let mut b = [0u8; 8];
        self.exact(&mut b, what)?;
        Ok(u64::from_be_bytes(b))
    }

    fn digest(&mut self, what: &str) -> Result<Digest, SnapshotError> {
        let mut b = [0u8; 32];
        self.exact(&mut b, what)?;
        Ok(Digest(b))
    }

    fn bytes(&mut self, what: &str, max: u32) -> Result<Vec<u8>, SnapshotError> {
        let len = self.u32(what)?;
        if len > max {
            return Err(self.format(format!("the {what} is {len} bytes, above {max}")));
        }
        let mut v = vec![0u8; len as usize];
        self.exact(&mut v, what)?;
        Ok(v)
    }

    fn format(&self, message: String) -> SnapshotError {
        SnapshotError::Format {
            path: self.path.clone(),
            message,
        }
    }

    fn invalid(&self, message: String) -> SnapshotError {
        SnapshotError::Invalid {
            path: self.path.clone(),
            message,
        }
    }

    fn decode<T: Decode>(&mut self, what: &str, max: usize) -> Result<T, SnapshotError> {
        let bytes = self.bytes(what, u32::try_from(max).unwrap_or(u32::MAX))?;
        T::from_bytes(&bytes, &Limits::default())
            .map_err(|e| self.format(format!("the {what} does not decode: {e}")))
    }
}

/// Initialises `data_dir` from the snapshot `file` of the chain `genesis`: verifies the
/// genesis hash, the validator-set changes from genesis and the commit certificate of the
/// snapshot's height, the carried blocks' hash links to that header, every state node against
/// its parent's hash up to the header's state root, and the file's SM3; then writes the store
/// (base = tip = the snapshot's height) and the genesis file.
///
/// Trust: a quorum of a validator set the chain has since retired could certify another
/// state at some height without naming the changes that retired it (nothing in the file can
/// show that a change was left out: the long-range assumption offline receipts make too).
/// `expect`, the block hash of the snapshot's height as an archive node of the chain gives
/// it (checked out of band), closes that: a snapshot of another block is refused.
pub fn import(
    data_dir: &Path,
    genesis: &Genesis,
    file: &Path,
    expect: Option<BlockHash>,
) -> Result<Imported, SnapshotError> {
    genesis
        .require_current_format()
        .map_err(|e| NodeError::Genesis {
            path: "the genesis".into(),
            message: e.to_string(),
        })?;
    let db = data_dir.join("db");
    if db.join("CURRENT").exists() {
        return Err(NodeError::AlreadyInitialised {
            path: db.display().to_string(),
        }
        .into());
    }
    let path = file.display().to_string();
    let f = std::fs::File::open(file).map_err(|e| NodeError::io(file, e))?;
    let mut r = In {
        inner: BufReader::with_capacity(1 << 20, f),
        hash: Sm3Context::new(),
        path: path.clone(),
    };
    let limits = Limits::default();

    // Magic, version, chain.
    let mut magic = [0u8; 16];
    r.exact(&mut magic, "magic")?;
    if &magic != MAGIC {
        return Err(r.format("not a gmchain snapshot (its first bytes are not the magic)".into()));
    }
    let mut v = [0u8; 1];
    r.exact(&mut v, "version")?;
    if v[0] != VERSION {
        return Err(r.format(format!(
            "snapshot format version {}; this build reads version {VERSION}",
            v[0]
        )));
    }
    let chain = r.bytes("chain id", 64)?;
    if chain != genesis.chain_id.as_str().as_bytes() {
        return Err(SnapshotError::WrongChain {
            path,
            message: format!(
                "the snapshot is of chain {:?}, the genesis file's is {}",
                String::from_utf8_lossy(&chain),
                genesis.chain_id
            ),
        });
    }
    let genesis_hash = BlockHash(r.digest("genesis hash")?);
    let expected = genesis
        .build(&state::MemStore::new())
        .map_err(|e| NodeError::Genesis {
            path: "the genesis".into(),
            message: e.to_string(),
        })?
        .block
        .header
        .hash();
    if genesis_hash != expected {
        return Err(SnapshotError::WrongChain {
            path,
            message: format!(
                "the snapshot's genesis hash is {genesis_hash}, the genesis file gives {expected}"
            ),
        });
    }
    let height = Height(r.u64("height")?);
    if height.0 == 0 {
        return Err(r.format("a snapshot of height 0 (use `gmchain node init`)".into()));
    }

    // The certified header: the rule offline receipts follow.
    let certified_bytes = r.bytes(
        "certified header",
        u32::try_from(receipt::MAX_FILE_LEN).unwrap_or(u32::MAX),
    )?;
    let value: serde_json::Value = serde_json::from_slice(&certified_bytes)
        .map_err(|e| r.format(format!("the certified header is not JSON: {e}")))?;
    let certified = receipt::CertifiedHeader::from_json_value(&value, &limits)
        .map_err(|e| r.format(format!("the certified header does not decode: {e}")))?;
    if certified.header.height != height {
        return Err(r.invalid(format!(
            "the certified header is of height {}, the snapshot says {height}",
            certified.header.height
        )));
    }
    let trust = receipt::TrustContext {
        chain_id: genesis.chain_id.clone(),
        validators: genesis.validators.iter().map(|v| v.cert.clone()).collect(),
        consortium: genesis.consortium().map_err(|e| NodeError::Genesis {
            path: "the genesis".into(),
            message: e.to_string(),
        })?,
    };
    certified.verify(&trust).map_err(|e| {
        r.invalid(format!(
            "the commit certificate of height {height} does not verify under the validator set of that height followed from genesis: {e}"
        ))
    })?;
    let hash = certified.header.hash();
    if let Some(expected) = expect
        && expected != hash
    {
        return Err(r.invalid(format!(
            "its block of height {height} is {hash}, not the {expected} given (--expect-hash): it is not the block the chain decided at that height as the node asked knows it"
        )));
    }

    // The carried blocks, from the snapshot's height down, each linked to the one above.
    let count = r.u32("block count")?;
    if count == 0 || u64::from(count) > height.0 {
        return Err(r.format(format!(
            "{count} blocks carried for a snapshot of height {height}"
        )));
    }
    let top: Block = r.decode("block", limits.max_block_size)?;
    if top.header != certified.header {
        return Err(r.invalid(format!(
            "the carried block of height {height} is not the certified header's"
        )));
    }
    if top.tx_root() != top.header.tx_root {
        return Err(r.invalid(format!(
            "the transactions of block {height} do not give its tx_root"
        )));
    }
    let n = r.u32("receipt count")?;
    if usize::try_from(n).ok() != Some(top.txs.len()) {
        return Err(r.invalid(format!(
            "{n} receipts for the {} transactions of block {height}",
            top.txs.len()
        )));
    }
    let mut receipts: Vec<Receipt> = Vec::with_capacity(top.txs.len());
    for _ in 0..n {
        receipts.push(r.decode("receipt", limits.max_receipt_size)?);
    }
    if types::receipts_root(&receipts) != top.header.receipts_root {
        return Err(r.invalid(format!(
            "the receipts of block {height} do not give its receipts_root"
        )));
    }
    // Only the index entries of the blocks below H are kept: memory grows with their
    // transactions (44 bytes each), not their size.
    let mut earlier: Vec<(types::TxId, storage::TxLocation)> = Vec::new();
    let mut parent = top.header.parent;
    for i in 1..count {
        let b: Block = r.decode("block", limits.max_block_size)?;
        let want = Height(height.0 - u64::from(i));
        if b.header.height != want || b.header.hash() != parent {
            return Err(r.invalid(format!(
                "the carried block of height {want} is not the parent the block above names"
            )));
        }
        if b.tx_root() != b.header.tx_root {
            return Err(r.invalid(format!(
                "the transactions of block {want} do not give its tx_root"
            )));
        }
        parent = b.header.parent;
        for (i, tx) in b.txs.iter().enumerate() {
            earlier.push((
                tx.tx_id(),
                storage::TxLocation {
                    height: want,
                    position: u32::try_from(i).unwrap_or(u32::MAX),
                },
            ));
        }
    }
    let indexed_from = Height(height.0 + 1 - u64::from(count));

    // The state, streamed into a store built aside.
    let partial = data_dir.join("db.importing");
    if partial.exists() {
        // What an interrupted import left: never a store (it has no tip).
        std::fs::remove_dir_all(&partial).map_err(|e| NodeError::io(&partial, e))?;
    }
    std::fs::create_dir_all(data_dir).map_err(|e| NodeError::io(data_dir, e))?;
    let backend = RocksBackend::open(&partial, true).map_err(NodeError::from)?;
    let store = ChainStore::new(backend, limits.clone());
    let result = (|| -> Result<(u64, Imported), SnapshotError> {
        let root = top.header.state_root;
        let mut pending = if root == EMPTY_ROOT {
            vec![]
        } else {
            vec![root]
        };
        let mut batch = WriteBatch::new();
        let mut nodes = 0u64;
        loop {
            let bytes = r.bytes("state node", MAX_NODE_LEN)?;
            if bytes.is_empty() {
                break;
            }
            let node = Node::decode(&bytes)
                .map_err(|e| r.format(format!("state node {nodes} does not decode: {e}")))?;
            let got = node.hash();
            let Some(want) = pending.pop() else {
                return Err(r.invalid(format!(
                    "state node {nodes} is beyond the tree the state root {root} names"
                )));
            };
            if got != want {
                return Err(r.invalid(format!(
                    "state node {nodes} hashes to {got}, not the {want} its parent names: the state does not hash to the header's state root {root}"
                )));
            }
            if let Node::Internal { left, right } = &node {
                for child in [*right, *left] {
                    if child != EMPTY_ROOT {
                        pending.push(child);
                    }
                }
            }
            batch.put(Table::StateNodes, got.0.to_vec(), bytes);
            nodes += 1;
            if batch.len() >= NODE_BATCH {
                store.backend().write(std::mem::take(&mut batch))?;
            }
        }
        if !pending.is_empty() {
            return Err(r.invalid(format!(
                "{} state nodes under the state root {root} are missing",
                pending.len()
            )));
        }
        if !batch.is_empty() {
            store.backend().write(batch)?;
        }
        let computed = std::mem::replace(&mut r.hash, Sm3Context::new()).finish();
        let mut trailer = [0u8; 32];
        r.inner
            .read_exact(&mut trailer)
            .map_err(|e| r.format(format!("truncated at the trailer: {e}")))?;
        if trailer != computed.0 {
            return Err(r.invalid(format!(
                "the file's SM3 is {computed}, its trailer says {}",
                Digest(trailer)
            )));
        }
        let mut extra = [0u8; 1];
        if r.inner
            .read(&mut extra)
            .map_err(|e| NodeError::io(file, e))?
            != 0
        {
            return Err(r.format("bytes after the trailer".into()));
        }
        // Enough blocks carried: recomputed from the verified state's parameter history.
        let changes = {
            let nodes = store.state_nodes();
            let view = execution::StateView::new(&nodes, root);
            window_changes(&view).map_err(|e| {
                r.invalid(format!("the state's parameter history does not read: {e}"))
            })?
        };
        let needed = duplicate_window_from(genesis.params.expiry_window, &changes, height);
        if indexed_from > needed {
            return Err(r.invalid(format!(
                "it carries the blocks from height {indexed_from}, but transactions of blocks from {needed} may still be included after {height}: a replay of one would not be found a duplicate"
            )));
        }
        let tip = store.install_base(
            &top,
            &receipts,
            &certified.certificate,
            &earlier,
            genesis_hash,
            &certified_bytes,
        )?;
        // The store has no consensus WAL: were this node a validator that signed at heights
        // above H before (a disk lost, the node re-joined from a snapshot), it must not sign
        // again at a height it may have signed at. The restore marker of a backup holds it back
        // until it has passed the height the network reached (crate::restored).
        crate::restored::mark(store.backend())?;
        Ok((
            nodes,
            Imported {
                height: tip.height,
                hash: tip.hash,
                indexed_from,
                nodes,
                set_changes: certified.set_changes.len(),
            },
        ))
    })();
    drop(store);
    let imported = match result {
        Ok((_, imported)) => imported,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    debug_assert_eq!(imported.hash, hash);
    crate::local::write_atomic(&data_dir.join("genesis.json"), genesis.to_json().as_bytes())?;
    std::fs::rename(&partial, &db).map_err(|e| NodeError::io(&db, e))?;
    sync_dir(data_dir)?;
    Ok(imported)
}

fn sync_dir(dir: &Path) -> Result<(), NodeError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| NodeError::io(dir, e))
}

/// The store directory of a data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_reaches_back_by_the_largest_window_in_force() {
        // Window 100 since genesis: blocks from H + 2 − 100.
        assert_eq!(duplicate_window_from(100, &[], Height(500)), Height(402));
        // A short chain: from block 1.
        assert_eq!(duplicate_window_from(100, &[], Height(50)), Height(1));
        // The window shrank to 10 at height 450: the blocks before kept window 100.
        assert_eq!(
            duplicate_window_from(100, &[(Height(450), 10)], Height(500)),
            Height(402)
        );
        // Long after the change, only the new window counts.
        assert_eq!(
            duplicate_window_from(100, &[(Height(450), 10)], Height(1000)),
            Height(992)
        );
        // A window that grew: from the larger window's reach.
        assert_eq!(
            duplicate_window_from(10, &[(Height(450), 300)], Height(500)),
            Height(450)
        );
        // Never above the snapshot's height.
        assert_eq!(duplicate_window_from(1, &[], Height(500)), Height(500));
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod chain_tests;
