//! Block headers and blocks.

use crate::codec::{self, Decode, DecodeError, DecodeReason, Encode, Limits, Reader, Writer, tag};
use crate::merkle;
use crate::primitives::{BlockHash, ChainId, Height, MAX_CHAIN_ID_LEN, Timestamp};
use crate::tx::SignedTx;
use crypto::Digest;
use crypto_sm::sm3::sm3_parts;

/// Domain tag hashed before the canonical v1 header (a single-validator chain's, before
/// consensus) to form the block hash (docs/formats.md §4).
pub const HEADER_DOMAIN: &[u8] = b"GMCHAIN-HEADER-V1\0";
/// Domain tag hashed before the canonical v2 header (docs/formats.md §4).
pub const HEADER_V2_DOMAIN: &[u8] = b"GMCHAIN-HEADER-V2\0";

/// What a v2 header adds: the consensus commitments. A header without them is v1 (read only
/// to verify receipts of v1 chains; a v2 store refuses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsensusLinks {
    /// The hash of the validator set that decides this block ([`crate::ValidatorSet::hash`]).
    pub validator_set: Digest,
    /// The hash of the validator set of the next height, as this block's execution leaves
    /// it (governance changes, revoked validators): what lets a light client follow the set
    /// from genesis, each change vouched for by the certificate of the set before it.
    pub next_validator_set: Digest,
    /// The hash of the parent's commit certificate ([`crate::CommitCertificate::hash`]); all
    /// zero at heights 0 and 1 (block 0 is decided by the genesis file, not by votes).
    pub last_commit: Digest,
}

impl ConsensusLinks {
    /// The `last_commit` of blocks whose parent has no certificate (heights 0 and 1).
    pub const NO_PARENT_CERTIFICATE: Digest = Digest([0; 32]);
}

/// A block header: everything a block commits to, in a fixed-layout record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: ChainId,
    /// The height; genesis is 0.
    pub height: Height,
    /// How many transactions the block holds: the size of the tree under `tx_root` (and, with
    /// one receipt per transaction, of the one under `receipts_root`). An inclusion proof does
    /// not commit to its tree size, so a light client takes the size from here, never from the
    /// prover. At most
    /// `Limits::max_txs_per_block` when decoded; [`Block`] decoding checks it against the
    /// transactions.
    pub tx_count: u32,
    /// The parent's hash; [`BlockHash::GENESIS_PARENT`] for genesis.
    pub parent: BlockHash,
    /// Merkle root of the signed transactions' entry hashes, in block order ([`Block::tx_root`]).
    pub tx_root: Digest,
    /// The state root after executing the block.
    pub state_root: Digest,
    /// Merkle root of the receipt hashes, in block order ([`crate::receipts_root`]).
    pub receipts_root: Digest,
    /// The proposer's stated time; judged by consensus, never by this crate.
    pub timestamp: Timestamp,
    /// SM3 of the proposer's certificate (DER).
    pub proposer: Digest,
    /// The v2 commitments; `None` for a v1 header.
    pub consensus: Option<ConsensusLinks>,
}

impl BlockHeader {
    /// Returns the header's layout: 1 (no consensus commitments) or 2.
    pub fn version(&self) -> u8 {
        if self.consensus.is_some() { 2 } else { 1 }
    }

    /// Returns the block hash: SM3(`HEADER_V2_DOMAIN` ‖ canonical header) for a v2 header,
    /// SM3(`HEADER_DOMAIN` ‖ canonical header) for a v1 header.
    pub fn hash(&self) -> BlockHash {
        let domain = if self.consensus.is_some() {
            HEADER_V2_DOMAIN
        } else {
            HEADER_DOMAIN
        };
        BlockHash(sm3_parts(&[domain, &self.to_bytes()]))
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, w: &mut Writer) {
        w.header(if self.consensus.is_some() {
            tag::BLOCK_HEADER_V2
        } else {
            tag::BLOCK_HEADER
        });
        w.bytes(self.chain_id.as_str().as_bytes());
        w.u64(self.height.0);
        w.u32(self.tx_count);
        w.fixed(self.parent.as_bytes());
        w.fixed(self.tx_root.as_bytes());
        w.fixed(self.state_root.as_bytes());
        w.fixed(self.receipts_root.as_bytes());
        w.u64(self.timestamp.0);
        w.fixed(self.proposer.as_bytes());
        if let Some(c) = &self.consensus {
            w.fixed(c.validator_set.as_bytes());
            w.fixed(c.next_validator_set.as_bytes());
            w.fixed(c.last_commit.as_bytes());
        }
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        // A v2 header has its own type tag; either layout reads (receipts of v1 chains).
        let v2 = r.header_of("header.header", &[tag::BLOCK_HEADER, tag::BLOCK_HEADER_V2])?
            == tag::BLOCK_HEADER_V2;
        let chain_id = ChainId::parse(
            "header.chain_id",
            r.bytes("header.chain_id", MAX_CHAIN_ID_LEN)?,
        )?;
        let height = Height(r.u64("header.height")?);
        let tx_count = r.u32("header.tx_count")?;
        let len = usize::try_from(tx_count).unwrap_or(usize::MAX);
        codec::check_size("header.tx_count", len, limits.max_txs_per_block)?;
        let parent = BlockHash(Digest(r.array("header.parent")?));
        let tx_root = Digest(r.array("header.tx_root")?);
        let state_root = Digest(r.array("header.state_root")?);
        let receipts_root = Digest(r.array("header.receipts_root")?);
        let timestamp = Timestamp(r.u64("header.timestamp")?);
        let proposer = Digest(r.array("header.proposer")?);
        let consensus = if v2 {
            Some(ConsensusLinks {
                validator_set: Digest(r.array("header.validator_set")?),
                next_validator_set: Digest(r.array("header.next_validator_set")?),
                last_commit: Digest(r.array("header.last_commit")?),
            })
        } else {
            None
        };
        Ok(BlockHeader {
            chain_id,
            height,
            tx_count,
            parent,
            tx_root,
            state_root,
            receipts_root,
            timestamp,
            proposer,
            consensus,
        })
    }
}

/// A block: a header and its transactions in order.
///
/// Decoding checks form, and that `header.tx_count` equals the number of transactions (a
/// mismatch fails on the field `block.txs`). Whether `header.tx_root` equals
/// [`Block::tx_root`], whether the transactions are valid and whether the header extends the
/// chain are the node's checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in execution order.
    pub txs: Vec<SignedTx>,
}

impl Block {
    /// Returns the Merkle root (RFC 6962, SM3) whose data entries are the 32-byte entry hashes
    /// of the signed transactions ([`SignedTx::entry_hash`]) in block order.
    ///
    /// The entries cover the signatures, not only the transaction IDs: rewriting a stored
    /// signature changes the root, hence the header and the hash chain.
    pub fn tx_root(&self) -> Digest {
        let entries: Vec<[u8; 32]> = self.txs.iter().map(|t| t.entry_hash().0).collect();
        merkle::root(&entries)
    }
}

/// Bytes a block spends on each transaction besides its encoding: the u32 length prefix.
pub const BLOCK_TX_FRAMING: usize = 4;

impl BlockHeader {
    /// Returns the length of the encoding of a v2 header of `chain_id` (every other field has
    /// a fixed width), the only layout a node builds.
    pub fn encoded_len(chain_id: &ChainId) -> usize {
        // version, type; chain_id as bytes; height; tx_count; parent, tx_root, state_root,
        // receipts_root; timestamp; proposer; validator_set, next_validator_set,
        // last_commit.
        2 + 4 + chain_id.as_str().len() + 8 + 4 + 4 * 32 + 8 + 32 + 3 * 32
    }
}

impl Block {
    /// Returns the length of a block's encoding besides its transactions: version and type,
    /// the header of `chain_id`, and the transaction count.
    pub fn envelope_len(chain_id: &ChainId) -> usize {
        2 + BlockHeader::encoded_len(chain_id) + 4
    }

    /// Returns what a signed transaction whose encoding is `tx_len` bytes adds to a block:
    /// the encoding and its length prefix. A block's encoding is exactly
    /// [`Block::envelope_len`] plus this for each of its transactions.
    pub fn entry_len(tx_len: usize) -> usize {
        tx_len.saturating_add(BLOCK_TX_FRAMING)
    }
}

impl Limits {
    /// Returns the byte budget of the transactions of one block of `chain_id`: what
    /// `max_block_size`, the limit every block decoder enforces, leaves after the envelope
    /// ([`Block::envelope_len`]). A block whose transactions' [`Block::entry_len`]s sum to at
    /// most this encodes to at most `max_block_size` bytes and reads back.
    ///
    /// Block assembly and the genesis check of `max_tx_size` take the budget from here, and
    /// storage refuses a block above `max_block_size`: one limit, not two that can drift
    /// apart.
    pub fn block_tx_budget(&self, chain_id: &ChainId) -> usize {
        self.max_block_size
            .saturating_sub(Block::envelope_len(chain_id))
    }

    /// Returns the largest encoded transaction that fits in a block of `chain_id` on its own
    /// (the budget less one length prefix).
    pub fn largest_tx_in_block(&self, chain_id: &ChainId) -> usize {
        self.block_tx_budget(chain_id)
            .saturating_sub(BLOCK_TX_FRAMING)
    }
}

impl Encode for Block {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::BLOCK);
        self.header.encode_to(w);
        w.len(self.txs.len());
        for tx in &self.txs {
            // Each transaction is length-prefixed so it can be bounded by max_tx_size alone
            // (BLOCK_TX_FRAMING bytes, counted by Block::entry_len).
            w.bytes(&tx.to_bytes());
        }
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        r.header("block.header", tag::BLOCK)?;
        let header = BlockHeader::decode_from(r, limits)?;
        let count = r.len("block.txs", limits.max_txs_per_block)?;
        // The header fixes the size of the transactions tree; a block must agree with it.
        if u32::try_from(count).ok() != Some(header.tx_count) {
            return Err(DecodeError::new(
                "block.txs",
                DecodeReason::CountMismatch {
                    count,
                    declared: header.tx_count,
                    declared_by: "header.tx_count",
                },
            ));
        }
        let mut txs = Vec::new();
        for _ in 0..count {
            let bytes = r.bytes("block.txs[]", limits.max_tx_size)?;
            txs.push(SignedTx::from_bytes(bytes, limits)?);
        }
        Ok(Block { header, txs })
    }

    /// Decodes a block that fills `bytes`, refusing more than `max_block_size` bytes first.
    fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        codec::check_size("block", bytes.len(), limits.max_block_size)?;
        let mut r = Reader::new(bytes);
        let value = Self::decode_from(&mut r, limits)?;
        r.finish()?;
        Ok(value)
    }
}
