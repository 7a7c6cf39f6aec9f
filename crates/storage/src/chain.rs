//! The typed chain store over a [`KvBackend`].

use std::collections::HashSet;
use std::sync::Mutex;

use crypto::Digest;
use state::{EMPTY_ROOT, Node, NodeStore, StateError, UpdateBatch};
use types::{
    Block, BlockHash, BlockHeader, CommitCertificate, Decode, Encode, Height, Limits, Receipt,
    SignedTx, TxId, receipts_root,
};

use crate::backend::{KvBackend, Table, WriteBatch};
use crate::error::{IntegrityError, IntegrityFault, MigrateError, StorageError};

/// The Meta key of the tip pointer: height (u64 BE) ‖ block hash (32 bytes).
pub const TIP_KEY: &[u8] = b"tip";
/// The Meta key of the store's layout version: one byte, written with block 0.
pub const STORE_VERSION_KEY: &[u8] = b"store_version";

/// The Meta key of the store's base (version 4): height (u64 BE) ‖ block hash (32 bytes), the
/// lowest height whose header the store holds and from which it verifies forward: 0 for a store
/// built from genesis, the snapshot's height for a node that joined from a snapshot.
pub const BASE_KEY: &[u8] = b"base";
/// The Meta key of the pruning mark (version 4): u64 BE, the lowest height whose block and
/// receipts a pruned node still holds; absent when nothing was pruned.
pub const PRUNED_BELOW_KEY: &[u8] = b"pruned_below";
/// The Meta key of the genesis block's hash in a store that does not hold block 0 (one
/// initialised from a snapshot): 32 bytes, checked against the genesis file at every start.
pub const GENESIS_KEY: &[u8] = b"genesis";
/// The Meta key of the certified header a store initialised from a snapshot was verified
/// against (version 4, snapshot stores only): the snapshot's certified-header JSON as the
/// snapshot file carries it (docs/formats.md §11): the base's header, its commit certificate
/// and the validator-set changes from genesis to it, each certified by the set before. What
/// receipts and certified headers of later heights carry for the changes below the base,
/// whose blocks this store does not hold.
pub const BASE_CERTIFIED_KEY: &[u8] = b"base_certified";
/// The most deletions [`ChainStore::prune_below`] is asked to put in one batch by a node
/// (blocks and receipts): a long archive node switched to pruned mode catches up in bounded
/// batches, one per commit, instead of one batch of everything under the commit lock.
pub const PRUNE_BATCH_DELETES: usize = 20_000;

/// The layout version of the store this build reads and writes (docs/formats.md §0): 2 holds
/// v2 headers, commit certificates and the consensus write-ahead log; 3 holds the fuel
/// parameters in the state's chain parameters and version 2 receipts (issue 14); 4 records the
/// store's base ([`BASE_KEY`]) and pruning mark ([`PRUNED_BELOW_KEY`]) (issue 18). A store
/// without the version key was written before the key existed and has the version-1 layout.
pub const STORE_VERSION: u8 = 4;
/// The version `gmchain node migrate` moves to [`STORE_VERSION`]: a version-3 store differs
/// from a version-4 one only by the absent `base` key (and the version byte).
pub const MIGRATES_FROM: u8 = 3;
const TIP_LEN: usize = 40;
const LOCATION_LEN: usize = 12;

/// The last committed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Its height.
    pub height: Height,
    /// Its hash.
    pub hash: BlockHash,
}

/// Where a transaction sits in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// The block height.
    pub height: Height,
    /// The position in the block.
    pub position: u32,
}

impl TxLocation {
    fn encode(self) -> [u8; LOCATION_LEN] {
        let mut out = [0u8; LOCATION_LEN];
        out[..8].copy_from_slice(&self.height.0.to_be_bytes());
        out[8..].copy_from_slice(&self.position.to_be_bytes());
        out
    }

    fn decode(table: Table, what: &'static str, bytes: &[u8]) -> Result<Self, StorageError> {
        let arr: [u8; LOCATION_LEN] = bytes.try_into().map_err(|_| StorageError::BadLength {
            table,
            what,
            len: bytes.len(),
            expected: LOCATION_LEN,
        })?;
        let (h, p) = arr.split_at(8);
        Ok(Self {
            height: Height(u64::from_be_bytes(h.try_into().unwrap_or_default())),
            position: u32::from_be_bytes(p.try_into().unwrap_or_default()),
        })
    }
}

/// Encodes a (height, hash) pair as the tip and base keys hold it.
pub(crate) fn encode_point(height: Height, hash: BlockHash) -> Vec<u8> {
    let mut out = Vec::with_capacity(TIP_LEN);
    out.extend_from_slice(&height.0.to_be_bytes());
    out.extend_from_slice(hash.as_bytes());
    out
}

fn decode_point(bytes: &[u8], what: &'static str) -> Result<Tip, StorageError> {
    let arr: [u8; TIP_LEN] = bytes.try_into().map_err(|_| StorageError::BadLength {
        table: Table::Meta,
        what,
        len: bytes.len(),
        expected: TIP_LEN,
    })?;
    let (h, hash) = arr.split_at(8);
    Ok(Tip {
        height: Height(u64::from_be_bytes(h.try_into().unwrap_or_default())),
        hash: BlockHash(Digest(hash.try_into().unwrap_or_default())),
    })
}

fn height_key(h: Height) -> [u8; 8] {
    h.0.to_be_bytes()
}

fn decode<T: Decode>(table: Table, bytes: &[u8], limits: &Limits) -> Result<T, StorageError> {
    T::from_bytes(bytes, limits).map_err(|source| StorageError::Decode { table, source })
}

/// Headers, blocks, the transaction index, receipts, state nodes and the tip, over a
/// [`KvBackend`]. Every block is written in one batch by [`ChainStore::commit_block`].
#[derive(Debug)]
pub struct ChainStore<B: KvBackend> {
    backend: B,
    limits: Limits,
    // Serialises commits so that the tip read and the batch written are one step.
    commit: Mutex<()>,
}

/// Judges the value of the `Meta` key [`STORE_VERSION_KEY`] (`None`: the key is absent, the
/// version-1 layout of stores written before it existed). A backend that opens a store calls it
/// before any write (RocksDB: from a read-only probe). Version 1 is refused with what to do.
/// `has_tip`: whether the store holds a tip pointer (a store without one and without a version
/// is empty, not version 1: block 0 writes the version).
pub fn check_store_version(value: Option<&[u8]>, has_tip: bool) -> Result<(), StorageError> {
    match value {
        None if !has_tip => Ok(()),
        None | Some([1]) => Err(StorageError::Version1Store {
            supported: STORE_VERSION,
        }),
        Some([v]) if *v == STORE_VERSION => Ok(()),
        Some([v]) if *v == MIGRATES_FROM => Err(StorageError::NeedsMigration {
            found: MIGRATES_FROM,
            supported: STORE_VERSION,
        }),
        Some(v) => Err(StorageError::UnsupportedVersion {
            found: match v {
                [b] => b.to_string(),
                other => format!("unreadable ({} bytes)", other.len()),
            },
            supported: STORE_VERSION,
        }),
    }
}

/// Checks a block's body against its header: the transaction count and root, one receipt per
/// transaction in order (the first position where the two disagree, a missing or an extra
/// receipt included, is refused), and the receipts root. Returns the transaction ids. Both
/// ways a block enters a store run it: a commit after its parent, and a snapshot's base.
fn check_body(block: &Block, receipts: &[Receipt]) -> Result<Vec<TxId>, StorageError> {
    let h = &block.header;
    let height = h.height;
    if usize::try_from(h.tx_count).ok() != Some(block.txs.len()) {
        return Err(StorageError::TxCountMismatch {
            height,
            declared: h.tx_count,
            actual: block.txs.len(),
        });
    }
    let computed = block.tx_root();
    if computed != h.tx_root {
        return Err(StorageError::TxRootMismatch {
            height,
            declared: h.tx_root,
            computed,
        });
    }
    let ids: Vec<TxId> = block.txs.iter().map(SignedTx::tx_id).collect();
    let matches = |i: usize| match (ids.get(i), receipts.get(i)) {
        (Some(id), Some(r)) => *id == r.tx_id,
        _ => false,
    };
    if let Some(position) = (0..ids.len().max(receipts.len())).find(|&i| !matches(i)) {
        return Err(StorageError::ReceiptMismatch { height, position });
    }
    let computed = receipts_root(receipts);
    if computed != h.receipts_root {
        return Err(StorageError::ReceiptsRootMismatch {
            height,
            declared: h.receipts_root,
            computed,
        });
    }
    Ok(ids)
}

impl<B: KvBackend> ChainStore<B> {
    /// Returns a store over `backend` that decodes stored values under `limits`.
    pub fn new(backend: B, limits: Limits) -> Self {
        Self {
            backend,
            limits,
            commit: Mutex::new(()),
        }
    }

    /// Returns the limits stored values are decoded under. Block assembly takes its byte
    /// budget from them ([`Limits::block_tx_budget`]), so what it builds is what the store
    /// accepts and reads back.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Returns the backend (tools and tests read raw values through it).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Fails, changing nothing, unless the store's layout version is [`STORE_VERSION`] (a store
    /// written before the version key existed has none and the version-1 layout). An empty
    /// store (no tip yet) passes: block 0 writes the version.
    pub fn check_version(&self) -> Result<(), StorageError> {
        let version = self.backend.get(Table::Meta, STORE_VERSION_KEY)?;
        let has_tip = self.backend.get(Table::Meta, TIP_KEY)?.is_some();
        check_store_version(version.as_deref(), has_tip)
    }

    /// Returns the tip, or `None` for an empty store.
    pub fn tip(&self) -> Result<Option<Tip>, StorageError> {
        let Some(bytes) = self.backend.get(Table::Meta, TIP_KEY)? else {
            return Ok(None);
        };
        let arr: [u8; TIP_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| StorageError::BadLength {
                    table: Table::Meta,
                    what: "tip pointer",
                    len: bytes.len(),
                    expected: TIP_LEN,
                })?;
        let (h, hash) = arr.split_at(8);
        Ok(Some(Tip {
            height: Height(u64::from_be_bytes(h.try_into().unwrap_or_default())),
            hash: BlockHash(Digest(hash.try_into().unwrap_or_default())),
        }))
    }

    /// Returns the store's base: the lowest height whose header it holds and from which it
    /// verifies forward (height 0 for a store built from genesis; the snapshot's height for
    /// a node that joined from one). `None` for an empty store.
    pub fn base(&self) -> Result<Option<Tip>, StorageError> {
        self.backend
            .get(Table::Meta, BASE_KEY)?
            .map(|b| decode_point(&b, "base"))
            .transpose()
    }

    /// Returns the pruning mark: blocks and receipts below it were deleted (pruned mode).
    /// `None` when nothing was pruned.
    pub fn pruned_below(&self) -> Result<Option<Height>, StorageError> {
        let Some(b) = self.backend.get(Table::Meta, PRUNED_BELOW_KEY)? else {
            return Ok(None);
        };
        let arr: [u8; 8] = b
            .as_slice()
            .try_into()
            .map_err(|_| StorageError::BadLength {
                table: Table::Meta,
                what: "pruned_below",
                len: b.len(),
                expected: 8,
            })?;
        Ok(Some(Height(u64::from_be_bytes(arr))))
    }

    /// Returns the lowest height whose block, receipts and transactions this store answers
    /// for: the higher of the base and the pruning mark (0 for an archive store).
    pub fn lowest_held(&self) -> Result<Height, StorageError> {
        let base = self.base()?.map_or(Height(0), |b| b.height);
        let pruned = self.pruned_below()?.unwrap_or(Height(0));
        Ok(base.max(pruned))
    }

    /// Returns the certified-header JSON a store initialised from a snapshot recorded
    /// ([`BASE_CERTIFIED_KEY`]), or `None` (a store built from genesis).
    pub fn base_certified(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.backend.get(Table::Meta, BASE_CERTIFIED_KEY)
    }

    /// Returns the genesis block's hash recorded by a store that does not hold block 0 (one
    /// initialised from a snapshot), or `None`.
    pub fn recorded_genesis(&self) -> Result<Option<BlockHash>, StorageError> {
        let Some(b) = self.backend.get(Table::Meta, GENESIS_KEY)? else {
            return Ok(None);
        };
        let arr: [u8; 32] = b
            .as_slice()
            .try_into()
            .map_err(|_| StorageError::BadLength {
                table: Table::Meta,
                what: "genesis hash",
                len: b.len(),
                expected: 32,
            })?;
        Ok(Some(BlockHash(Digest(arr))))
    }

    /// Moves a version-3 store to version 4 (`gmchain node migrate`): checks the tip as a
    /// starting node does, then writes the base (height 0 and block 0's hash) and the version
    /// in one batch. Version 3 to 4 adds only the `base` key: nothing else is rewritten.
    /// Returns the base written. Refuses any version other than [`MIGRATES_FROM`] (a version
    /// 4 store is [`StorageError::AlreadyCurrent`], which the caller reports as nothing to do).
    pub fn migrate_to_current(&self) -> Result<Tip, MigrateError> {
        let version = self.backend.get(Table::Meta, STORE_VERSION_KEY)?;
        match version.as_deref() {
            Some([v]) if *v == MIGRATES_FROM => {}
            Some([v]) if *v == STORE_VERSION => {
                return Err(MigrateError::Storage(StorageError::AlreadyCurrent {
                    version: STORE_VERSION,
                }));
            }
            other => {
                let has_tip = self.backend.get(Table::Meta, TIP_KEY)?.is_some();
                check_store_version(other, has_tip)?;
                // An empty store (no tip, no version) has nothing to migrate.
                return Err(MigrateError::Storage(StorageError::AlreadyCurrent {
                    version: STORE_VERSION,
                }));
            }
        }
        self.check_tip_on_startup()?
            .ok_or(MigrateError::Integrity(IntegrityError {
                height: Height(0),
                fault: IntegrityFault::Missing {
                    table: Table::Meta,
                    what: "tip pointer".into(),
                },
            }))?;
        let zero = self
            .header(Height(0))?
            .ok_or(MigrateError::Integrity(IntegrityError {
                height: Height(0),
                fault: IntegrityFault::Missing {
                    table: Table::Headers,
                    what: "header".into(),
                },
            }))?;
        let base = Tip {
            height: Height(0),
            hash: zero.hash(),
        };
        let mut batch = WriteBatch::new();
        batch.put(Table::Meta, BASE_KEY, encode_point(base.height, base.hash));
        batch.put(Table::Meta, STORE_VERSION_KEY, vec![STORE_VERSION]);
        self.backend.write(batch)?;
        Ok(base)
    }

    /// Writes the base of a store initialised from a snapshot, on an empty store whose state
    /// nodes (those of `block`'s state root) were written first: the header, block, receipts
    /// and certificate of the snapshot's height, the transaction index of `block` and the
    /// `earlier` index entries (the transactions of the blocks below it that the snapshot
    /// carries for duplicate detection; those blocks are not stored: they are below the
    /// base), then the tip, the base, block 0's hash (`genesis`), the verified certified
    /// header's JSON (`certified`, [`BASE_CERTIFIED_KEY`]) and the version, all in one batch. The caller verified the certificate, the earlier
    /// blocks' hash links and the state; this checks the block against its header and
    /// receipts, the certificate's height and hash, and that the state root is held.
    pub fn install_base(
        &self,
        block: &Block,
        receipts: &[Receipt],
        certificate: &CommitCertificate,
        earlier: &[(TxId, TxLocation)],
        genesis: BlockHash,
        certified: &[u8],
    ) -> Result<Tip, StorageError> {
        let _guard = self.commit.lock().map_err(|_| {
            StorageError::Backend(Box::new(std::io::Error::other("commit lock poisoned")))
        })?;
        let h = &block.header;
        let height = h.height;
        if self.tip()?.is_some() || height == Height(0) {
            return Err(StorageError::HeightNotNext {
                height,
                expected: Height(0),
            });
        }
        let hash = h.hash();
        if certificate.block != hash || certificate.height != height {
            return Err(StorageError::CertificateMismatch {
                height,
                sealed: certificate.block,
                block: hash,
            });
        }
        let ids = check_body(block, receipts)?;
        if h.state_root != EMPTY_ROOT
            && self
                .backend
                .get(Table::StateNodes, h.state_root.as_bytes())?
                .is_none()
        {
            return Err(StorageError::StateRootMismatch {
                height,
                declared: h.state_root,
                computed: EMPTY_ROOT,
            });
        }
        let mut batch = WriteBatch::new();
        batch.put(Table::Headers, height_key(height), h.to_bytes());
        batch.put(Table::Blocks, height_key(height), block.to_bytes());
        batch.put(
            Table::Certificates,
            height_key(height),
            certificate.to_bytes(),
        );
        for (i, (id, receipt)) in ids.iter().zip(receipts).enumerate() {
            let loc = TxLocation {
                height,
                position: u32::try_from(i).unwrap_or(u32::MAX),
            };
            batch.put(Table::TxIndex, id.as_bytes().to_vec(), loc.encode());
            batch.put(Table::Receipts, loc.encode(), receipt.to_bytes());
        }
        for (id, loc) in earlier {
            if loc.height >= height {
                return Err(StorageError::HeightNotNext {
                    height: loc.height,
                    expected: height,
                });
            }
            batch.put(Table::TxIndex, id.as_bytes().to_vec(), loc.encode());
        }
        batch.put(Table::Meta, TIP_KEY, encode_point(height, hash));
        batch.put(Table::Meta, BASE_KEY, encode_point(height, hash));
        batch.put(Table::Meta, GENESIS_KEY, genesis.as_bytes().to_vec());
        batch.put(Table::Meta, BASE_CERTIFIED_KEY, certified.to_vec());
        batch.put(Table::Meta, STORE_VERSION_KEY, vec![STORE_VERSION]);
        self.backend.write(batch)?;
        Ok(Tip { height, hash })
    }

    /// Pruned mode: deletes the blocks and receipts of heights `from..below` (headers,
    /// certificates and the transaction index stay: the index is what duplicate detection
    /// reads, and headers and certificates are small) but those of the heights in `keep` (the
    /// blocks holding the causes of validator-set changes, which receipts and snapshots
    /// prove), and records the height reached as the pruning mark, in one batch. One batch
    /// holds at most about `max_deletes` deletions (at least one block's): a call that stops
    /// short returns a mark below `below`, and the next call goes on from it. Refuses to
    /// prune the tip or below the base (nothing below the mark already is touched). Returns
    /// the new mark, or `None` when there was nothing to prune.
    pub fn prune_below(
        &self,
        below: Height,
        keep: &[Height],
        max_deletes: usize,
    ) -> Result<Option<Height>, StorageError> {
        let _guard = self.commit.lock().map_err(|_| {
            StorageError::Backend(Box::new(std::io::Error::other("commit lock poisoned")))
        })?;
        let Some(tip) = self.tip()? else {
            return Ok(None);
        };
        let from = self
            .pruned_below()?
            .unwrap_or(Height(0))
            .max(self.base()?.map_or(Height(0), |b| b.height));
        let below = below.min(tip.height);
        if below <= from {
            return Ok(None);
        }
        let mut batch = WriteBatch::new();
        let mut deletes = 0usize;
        let mut h = from;
        while h < below && (h == from || deletes < max_deletes) {
            if keep.contains(&h) {
                h = Height(h.0 + 1);
                continue;
            }
            if let Some(header) = self.header(h)? {
                for i in 0..header.tx_count {
                    batch.delete(
                        Table::Receipts,
                        TxLocation {
                            height: h,
                            position: i,
                        }
                        .encode()
                        .to_vec(),
                    );
                }
                deletes += usize::try_from(header.tx_count).unwrap_or(usize::MAX);
            }
            batch.delete(Table::Blocks, height_key(h).to_vec());
            deletes = deletes.saturating_add(1);
            h = Height(h.0 + 1);
        }
        batch.put(Table::Meta, PRUNED_BELOW_KEY, height_key(h).to_vec());
        self.backend.write(batch)?;
        Ok(Some(h))
    }

    /// Returns the header at `height`.
    pub fn header(&self, height: Height) -> Result<Option<BlockHeader>, StorageError> {
        self.backend
            .get(Table::Headers, &height_key(height))?
            .map(|b| decode(Table::Headers, &b, &self.limits))
            .transpose()
    }

    /// Returns the block at `height`.
    pub fn block(&self, height: Height) -> Result<Option<Block>, StorageError> {
        self.backend
            .get(Table::Blocks, &height_key(height))?
            .map(|b| decode(Table::Blocks, &b, &self.limits))
            .transpose()
    }

    /// Returns the seal of the block at `height` (absent for blocks committed unsealed).
    pub fn certificate(&self, height: Height) -> Result<Option<CommitCertificate>, StorageError> {
        self.backend
            .get(Table::Certificates, &height_key(height))?
            .map(|b| decode(Table::Certificates, &b, &self.limits))
            .transpose()
    }

    /// Returns where transaction `id` was included.
    pub fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StorageError> {
        self.backend
            .get(Table::TxIndex, id.as_bytes())?
            .map(|b| TxLocation::decode(Table::TxIndex, "tx location", &b))
            .transpose()
    }

    /// Returns transaction `id` and where it was included.
    pub fn tx(&self, id: &TxId) -> Result<Option<(SignedTx, TxLocation)>, StorageError> {
        let Some(loc) = self.tx_location(id)? else {
            return Ok(None);
        };
        let Some(block) = self.block(loc.height)? else {
            return Ok(None);
        };
        let tx = usize::try_from(loc.position)
            .ok()
            .and_then(|p| block.txs.get(p))
            .filter(|tx| tx.tx_id() == *id)
            .cloned();
        Ok(tx.map(|tx| (tx, loc)))
    }

    /// Returns the receipt of transaction `id`.
    pub fn receipt(&self, id: &TxId) -> Result<Option<Receipt>, StorageError> {
        let Some(loc) = self.tx_location(id)? else {
            return Ok(None);
        };
        Ok(self.receipt_at(loc)?.filter(|r: &Receipt| r.tx_id == *id))
    }

    /// Returns the receipt at a block position.
    pub fn receipt_at(&self, loc: TxLocation) -> Result<Option<Receipt>, StorageError> {
        self.backend
            .get(Table::Receipts, &loc.encode())?
            .map(|b| decode(Table::Receipts, &b, &self.limits))
            .transpose()
    }

    /// Returns a read-only [`NodeStore`] over the committed state nodes.
    pub fn state_nodes(&self) -> StateNodes<'_, B> {
        StateNodes {
            backend: &self.backend,
        }
    }

    /// Commits `block`, its `receipts` (one per transaction, in order) and the state nodes of
    /// `state` in one atomic write batch, and moves the tip to it.
    ///
    /// Refuses, writing nothing, a block whose height is not the tip's plus one (0 on an empty
    /// store), whose parent is not the tip, whose `tx_count`, `tx_root`, `receipts_root` or
    /// `state_root` disagree with its contents, or that repeats a committed transaction; and
    /// a block or receipt the store could not read back under its limits (a block above
    /// `max_block_size`, a receipt above `max_receipt_size`, any other limit).
    pub fn commit_block(
        &self,
        block: &Block,
        receipts: &[Receipt],
        state: UpdateBatch,
    ) -> Result<(), StorageError> {
        let _guard = self.commit.lock().map_err(|_| {
            StorageError::Backend(Box::new(std::io::Error::other("commit lock poisoned")))
        })?;
        let batch = self.prepare_commit(block, receipts, &state)?;
        self.backend.write(batch)
    }

    /// [`ChainStore::commit_block`] with the block's commit certificate written in the same
    /// batch. Refuses a certificate for another height or hash. Whether its signatures make a
    /// quorum of the height's validator set is the caller's check (the set lives above
    /// storage: crates/ledger verifies every certificate before it commits).
    pub fn commit_certified_block(
        &self,
        block: &Block,
        receipts: &[Receipt],
        state: UpdateBatch,
        certificate: &CommitCertificate,
    ) -> Result<(), StorageError> {
        self.commit_certified_block_with_parent(block, receipts, state, certificate, None)
    }

    /// [`ChainStore::commit_certified_block`] that also replaces the parent's stored
    /// certificate by `parent_certificate`, in the same batch: the one the block's header
    /// commits to (`last_commit`). Validators build a certificate from the precommits they
    /// received, so two honest nodes may hold different ones for one block; the next header
    /// picks one, and every node keeps that one. Refuses a parent certificate for another
    /// height or hash than the parent's, or one whose hash is not the header's `last_commit`.
    pub fn commit_certified_block_with_parent(
        &self,
        block: &Block,
        receipts: &[Receipt],
        state: UpdateBatch,
        certificate: &CommitCertificate,
        parent_certificate: Option<&CommitCertificate>,
    ) -> Result<(), StorageError> {
        let _guard = self.commit.lock().map_err(|_| {
            StorageError::Backend(Box::new(std::io::Error::other("commit lock poisoned")))
        })?;
        let hash = block.header.hash();
        if certificate.block != hash || certificate.height != block.header.height {
            return Err(StorageError::CertificateMismatch {
                height: block.header.height,
                sealed: certificate.block,
                block: hash,
            });
        }
        let mut batch = self.prepare_commit(block, receipts, &state)?;
        batch.put(
            Table::Certificates,
            height_key(block.header.height),
            certificate.to_bytes(),
        );
        if let Some(parent) = parent_certificate {
            let h = block.header.height;
            let links = block.header.consensus.unwrap_or(types::ConsensusLinks {
                validator_set: crypto::Digest([0; 32]),
                next_validator_set: crypto::Digest([0; 32]),
                last_commit: crypto::Digest([0; 32]),
            });
            if h.0 == 0
                || parent.height.0 != h.0 - 1
                || parent.block != block.header.parent
                || parent.hash() != links.last_commit
            {
                return Err(StorageError::CertificateMismatch {
                    height: parent.height,
                    sealed: parent.block,
                    block: block.header.parent,
                });
            }
            batch.put(
                Table::Certificates,
                height_key(parent.height),
                parent.to_bytes(),
            );
        }
        // The consensus log of decided heights is no longer needed once the block and its
        // certificate are stored: it goes in the same batch.
        for (key, _) in self.backend.iter_prefix(Table::ConsensusWal, &[])? {
            if key
                .get(..8)
                .is_some_and(|h| h <= height_key(block.header.height).as_slice())
            {
                batch.delete(Table::ConsensusWal, key);
            }
        }
        self.backend.write(batch)
    }

    /// Appends a consensus write-ahead-log entry for `height` under `sequence`, synced before
    /// this returns (the backend's every write is).
    pub fn wal_append(
        &self,
        height: Height,
        sequence: u32,
        entry: &[u8],
    ) -> Result<(), StorageError> {
        let mut key = height_key(height).to_vec();
        key.extend_from_slice(&sequence.to_be_bytes());
        let mut batch = WriteBatch::new();
        batch.put(Table::ConsensusWal, key, entry.to_vec());
        self.backend.write(batch)
    }

    /// The consensus write-ahead log, in (height, sequence) order.
    pub fn wal_entries(&self) -> Result<Vec<(Height, u32, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for (key, value) in self.backend.iter_prefix(Table::ConsensusWal, &[])? {
            let k: [u8; 12] = key
                .as_slice()
                .try_into()
                .map_err(|_| StorageError::WalKey { len: key.len() })?;
            let (h, s) = k.split_at(8);
            out.push((
                Height(u64::from_be_bytes(h.try_into().unwrap_or_default())),
                u32::from_be_bytes(s.try_into().unwrap_or_default()),
                value,
            ));
        }
        out.sort_by_key(|e| (e.0, e.1));
        Ok(out)
    }

    /// Runs every check of [`ChainStore::commit_block`] and returns the one batch it would
    /// write, without writing it. For tools and fault-injection tests; a node commits with
    /// [`ChainStore::commit_block`], which holds the commit lock from check to write.
    pub fn prepare_commit(
        &self,
        block: &Block,
        receipts: &[Receipt],
        state: &UpdateBatch,
    ) -> Result<WriteBatch, StorageError> {
        self.check_version()?;
        let h = &block.header;
        let height = h.height;
        if h.consensus.is_none() {
            return Err(StorageError::HeaderVersion { height });
        }
        let (expected, tip_hash) = match self.tip()? {
            None => (Height(0), BlockHash::GENESIS_PARENT),
            Some(t) => (
                t.height
                    .next()
                    .ok_or(StorageError::HeightOverflow { height: t.height })?,
                t.hash,
            ),
        };
        if height != expected {
            return Err(StorageError::HeightNotNext { height, expected });
        }
        if h.parent != tip_hash {
            return Err(StorageError::ParentMismatch {
                height,
                parent: h.parent,
                tip: tip_hash,
            });
        }
        let ids = check_body(block, receipts)?;
        if state.root != h.state_root {
            return Err(StorageError::StateRootMismatch {
                height,
                declared: h.state_root,
                computed: state.root,
            });
        }
        let mut seen = HashSet::new();
        for id in &ids {
            if !seen.insert(*id) || self.backend.get(Table::TxIndex, id.as_bytes())?.is_some() {
                return Err(StorageError::DuplicateTx { height, tx_id: *id });
            }
        }

        // Nothing is written that its reader would refuse: the values are encoded once,
        // checked against the limits the readers enforce, decoded back under them, and
        // only then put in the batch.
        let header_bytes = h.to_bytes();
        let block_bytes = block.to_bytes();
        if block_bytes.len() > self.limits.max_block_size {
            return Err(StorageError::BlockTooLarge {
                height,
                size: block_bytes.len(),
                limit: self.limits.max_block_size,
            });
        }
        self.reads_back::<BlockHeader>(height, Table::Headers, &header_bytes)?;
        self.reads_back::<Block>(height, Table::Blocks, &block_bytes)?;
        let mut receipt_bytes = Vec::with_capacity(receipts.len());
        for (position, receipt) in receipts.iter().enumerate() {
            let bytes = receipt.to_bytes();
            if bytes.len() > self.limits.max_receipt_size {
                return Err(StorageError::ReceiptTooLarge {
                    height,
                    position,
                    size: bytes.len(),
                    limit: self.limits.max_receipt_size,
                });
            }
            self.reads_back::<Receipt>(height, Table::Receipts, &bytes)?;
            receipt_bytes.push(bytes);
        }

        let mut batch = WriteBatch::new();
        batch.put(Table::Headers, height_key(height), header_bytes);
        batch.put(Table::Blocks, height_key(height), block_bytes);
        for (i, (id, receipt)) in ids.iter().zip(receipt_bytes).enumerate() {
            let loc = TxLocation {
                height,
                position: u32::try_from(i).unwrap_or(u32::MAX),
            };
            batch.put(Table::TxIndex, id.as_bytes().to_vec(), loc.encode());
            batch.put(Table::Receipts, loc.encode(), receipt);
        }
        for (hash, node) in &state.nodes {
            batch.put(Table::StateNodes, hash.0, node.encode());
        }
        let mut tip = Vec::with_capacity(TIP_LEN);
        tip.extend_from_slice(&height_key(height));
        tip.extend_from_slice(h.hash().as_bytes());
        batch.put(Table::Meta, TIP_KEY, tip);
        if height == Height(0) {
            batch.put(Table::Meta, STORE_VERSION_KEY, vec![STORE_VERSION]);
            batch.put(Table::Meta, BASE_KEY, encode_point(height, h.hash()));
        }
        Ok(batch)
    }

    /// Fails unless `bytes`, about to be written to `table` for the block at `height`, decode
    /// under the store's limits exactly as its readers will decode them.
    fn reads_back<T: Decode>(
        &self,
        height: Height,
        table: Table,
        bytes: &[u8],
    ) -> Result<(), StorageError> {
        T::from_bytes(bytes, &self.limits)
            .map(drop)
            .map_err(|source| StorageError::WouldNotReadBack {
                height,
                table,
                source,
            })
    }

    /// Checks the tip before the node runs: the tip pointer names a stored header whose hash it
    /// records and which links to its parent; the block, its receipts, transaction index and
    /// state root are there and agree with the header; and nothing is stored above the tip (a
    /// half-written commit). An empty store passes only if it holds no block.
    pub fn check_tip_on_startup(&self) -> Result<Option<Tip>, IntegrityError> {
        let tip = self.tip().map_err(|source| IntegrityError {
            height: Height(0),
            fault: IntegrityFault::Unreadable {
                table: Table::Meta,
                source,
            },
        })?;
        let above = match tip {
            None => Height(0),
            Some(t) => match t.height.next() {
                Some(h) => h,
                None => return Ok(tip),
            },
        };
        // Data above the tip pointer: a batch half-applied by a backend that broke atomicity.
        let beyond = |table: Table, key: &[u8]| -> Result<(), IntegrityError> {
            match self.backend.get(table, key) {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Err(IntegrityError {
                    height: above,
                    fault: IntegrityFault::DataBeyondTip { table },
                }),
                Err(source) => Err(IntegrityError {
                    height: above,
                    fault: IntegrityFault::Unreadable { table, source },
                }),
            }
        };
        beyond(Table::Headers, &height_key(above))?;
        beyond(Table::Blocks, &height_key(above))?;
        beyond(
            Table::Receipts,
            &TxLocation {
                height: above,
                position: 0,
            }
            .encode(),
        )?;
        let Some(t) = tip else { return Ok(None) };
        self.verify_height(t.height, Some(t.hash))?;
        let header = self.header(t.height).ok().flatten().ok_or(IntegrityError {
            height: t.height,
            fault: IntegrityFault::Missing {
                table: Table::Headers,
                what: "header".into(),
            },
        })?;
        if header.state_root != EMPTY_ROOT {
            let present = self
                .backend
                .get(Table::StateNodes, header.state_root.as_bytes())
                .map_err(|source| IntegrityError {
                    height: t.height,
                    fault: IntegrityFault::Unreadable {
                        table: Table::StateNodes,
                        source,
                    },
                })?;
            if present.is_none() {
                return Err(IntegrityError {
                    height: t.height,
                    fault: IntegrityFault::Missing {
                        table: Table::StateNodes,
                        what: "state root node".into(),
                    },
                });
            }
        }
        Ok(tip)
    }

    /// Verifies heights `from..=to`: each header decodes, is at its height and links to the
    /// previous header's recomputed hash; the stored block carries the same header and its
    /// transactions give `tx_root`; the stored receipts are for those transactions and give
    /// `receipts_root`; the transaction index points at each; and the tip's hash matches the
    /// tip pointer. Returns the first bad height and what failed there.
    pub fn verify_chain(&self, from: Height, to: Height) -> Result<(), IntegrityError> {
        let tip = self.tip().map_err(|source| IntegrityError {
            height: from,
            fault: IntegrityFault::Unreadable {
                table: Table::Meta,
                source,
            },
        })?;
        let tip_height = tip.map(|t| t.height);
        if tip_height.is_none_or(|t| to > t) {
            let height = match tip_height.and_then(Height::next) {
                Some(next) => next.max(from),
                None => from,
            };
            return Err(IntegrityError {
                height,
                fault: IntegrityFault::BeyondTip { tip: tip_height },
            });
        }
        let mut h = from;
        while h <= to {
            let recorded = tip.filter(|t| t.height == h).map(|t| t.hash);
            self.verify_height(h, recorded)?;
            match h.next() {
                Some(n) => h = n,
                None => break,
            }
        }
        Ok(())
    }

    /// Re-hashes every state-tree node reachable from the state root of the header at
    /// `height`: each must be present, decode, and be stored under its own hash, so the whole
    /// state is bound to the (hash-chained) header. Returns the number of nodes visited.
    pub fn verify_state(&self, height: Height) -> Result<u64, IntegrityError> {
        let fail = |fault| IntegrityError { height, fault };
        let header = self
            .header(height)
            .map_err(|source| {
                fail(IntegrityFault::Unreadable {
                    table: Table::Headers,
                    source,
                })
            })?
            .ok_or_else(|| {
                fail(IntegrityFault::Missing {
                    table: Table::Headers,
                    what: "header".into(),
                })
            })?;
        let bad = |key: Digest, problem| fail(IntegrityFault::StateNode { key, problem });
        let mut stack = vec![header.state_root];
        let mut visited = 0u64;
        while let Some(key) = stack.pop() {
            if key == EMPTY_ROOT {
                continue;
            }
            let node = match self.state_nodes().get(&key) {
                Ok(Some(n)) => n,
                Ok(None) => return Err(bad(key, "missing")),
                Err(_) => return Err(bad(key, "unreadable or not a canonical node")),
            };
            if node.hash() != key {
                return Err(bad(key, "stored under a key that is not its SM3 hash"));
            }
            visited += 1;
            if let Node::Internal { left, right } = node {
                stack.push(right);
                stack.push(left);
            }
        }
        Ok(visited)
    }

    /// Verifies the whole chain the store holds, from its lowest held height (genesis for an
    /// archive store; the base of a snapshot store; the pruning mark of a pruned one) to the
    /// tip (`gmchain node verify-store`).
    pub fn verify_all(&self) -> Result<Option<Tip>, IntegrityError> {
        let tip = self.check_tip_on_startup()?;
        if let Some(t) = tip {
            let from = self.lowest_held().map_err(|source| IntegrityError {
                height: Height(0),
                fault: IntegrityFault::Unreadable {
                    table: Table::Meta,
                    source,
                },
            })?;
            self.verify_chain(from, t.height)?;
        }
        Ok(tip)
    }

    fn verify_height(
        &self,
        height: Height,
        recorded: Option<BlockHash>,
    ) -> Result<(), IntegrityError> {
        let fail = |fault| IntegrityError { height, fault };
        let unreadable = |table| move |source| fail(IntegrityFault::Unreadable { table, source });
        let missing = |table, what: &str| {
            fail(IntegrityFault::Missing {
                table,
                what: what.into(),
            })
        };

        let header = self
            .header(height)
            .map_err(unreadable(Table::Headers))?
            .ok_or_else(|| missing(Table::Headers, "header"))?;
        if header.height != height {
            return Err(fail(IntegrityFault::HeaderHeight {
                found: header.height,
            }));
        }
        let hash = header.hash();
        if let Some(recorded) = recorded
            && recorded != hash
        {
            return Err(fail(IntegrityFault::TipHash {
                recorded,
                computed: hash,
            }));
        }
        // The base of a store that joined from a snapshot has no parent header here: its
        // hash is the one the import verified (certificate, set changes from genesis).
        let base = self
            .base()
            .map_err(unreadable(Table::Meta))?
            .filter(|b| b.height == height && height.0 > 0);
        if let Some(b) = base
            && b.hash != hash
        {
            return Err(fail(IntegrityFault::BaseHash {
                recorded: b.hash,
                computed: hash,
            }));
        }
        let expected_parent = match height.0.checked_sub(1).map(Height) {
            _ if base.is_some() => header.parent,
            None => BlockHash::GENESIS_PARENT,
            Some(prev) => {
                // A bad previous header is reported at its own height.
                let prev_header = self
                    .header(prev)
                    .map_err(|source| IntegrityError {
                        height: prev,
                        fault: IntegrityFault::Unreadable {
                            table: Table::Headers,
                            source,
                        },
                    })?
                    .ok_or(IntegrityError {
                        height: prev,
                        fault: IntegrityFault::Missing {
                            table: Table::Headers,
                            what: "header".into(),
                        },
                    })?;
                prev_header.hash()
            }
        };
        if header.parent != expected_parent {
            return Err(fail(IntegrityFault::ParentLink {
                parent: header.parent,
                expected: expected_parent,
            }));
        }

        let block = self
            .block(height)
            .map_err(unreadable(Table::Blocks))?
            .ok_or_else(|| missing(Table::Blocks, "block"))?;
        if block.header != header {
            return Err(fail(IntegrityFault::BlockHeader));
        }
        let computed = block.tx_root();
        if computed != header.tx_root {
            return Err(fail(IntegrityFault::TxRoot {
                declared: header.tx_root,
                computed,
            }));
        }

        let mut receipts = Vec::with_capacity(block.txs.len());
        for (i, tx) in block.txs.iter().enumerate() {
            let loc = TxLocation {
                height,
                position: u32::try_from(i).unwrap_or(u32::MAX),
            };
            let receipt = self
                .receipt_at(loc)
                .map_err(unreadable(Table::Receipts))?
                .ok_or_else(|| missing(Table::Receipts, &format!("receipt {i}")))?;
            let id = tx.tx_id();
            if receipt.tx_id != id {
                return Err(fail(IntegrityFault::ReceiptTx {
                    position: loc.position,
                }));
            }
            let indexed = self.tx_location(&id).map_err(unreadable(Table::TxIndex))?;
            if indexed != Some(loc) {
                return Err(fail(IntegrityFault::TxIndex {
                    position: loc.position,
                }));
            }
            receipts.push(receipt);
        }
        let computed = receipts_root(&receipts);
        if computed != header.receipts_root {
            return Err(fail(IntegrityFault::ReceiptsRoot {
                declared: header.receipts_root,
                computed,
            }));
        }
        Ok(())
    }
}

/// A read-only [`NodeStore`] over the `StateNodes` table. State nodes are written only with
/// their block, by [`ChainStore::commit_block`]; [`NodeStore::write`] here is refused.
#[derive(Debug)]
pub struct StateNodes<'a, B: KvBackend> {
    backend: &'a B,
}

impl<B: KvBackend> NodeStore for StateNodes<'_, B> {
    fn get(&self, hash: &Digest) -> Result<Option<Node>, StateError> {
        let bytes = self
            .backend
            .get(Table::StateNodes, hash.as_bytes())
            .map_err(|e| StateError::Backend(Box::new(e)))?;
        bytes.map(|b| Node::decode(&b)).transpose()
    }

    fn write(&mut self, _nodes: Vec<(Digest, Node)>) -> Result<(), StateError> {
        Err(StateError::Backend(Box::new(StorageError::ReadOnly)))
    }
}
