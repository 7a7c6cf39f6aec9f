//! The ledger's values: transactions, block headers, blocks, receipts and events; their
//! canonical binary encoding (docs/formats.md); their IDs and hashes (SM3 with a domain tag);
//! and RFC 6962 Merkle trees with SM3.
//!
//! What it refuses to do: read a clock, a file, a socket or an entropy source (heights and
//! timestamps are values; a salt is chosen by the caller); decide whether a transaction is
//! allowed (certificates, permissions, nonces and state are the node's); decode anything
//! without [`Limits`], or accept trailing bytes, non-canonical DER or an unknown version. No
//! decoder panics on any input.
//!
//! The encoding is pinned by known-answer tests (`tests/types.rs`): a change to their expected
//! bytes is a format change and needs a new format version, not a test update.
//!
//! Errors: decoding fails with [`DecodeError`] (the field and a [`DecodeReason`]); transaction
//! checks with [`TxError`]; Merkle proofs with [`merkle::ProofError`].
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod args;
mod block;
pub mod codec;
mod error;
pub mod merkle;
mod primitives;
mod receipt;
mod seal;
mod tx;
mod vote;

pub use block::{
    BLOCK_TX_FRAMING, Block, BlockHeader, ConsensusLinks, HEADER_DOMAIN, HEADER_V2_DOMAIN,
};
pub use codec::{
    Decode, DecodeError, DecodeReason, Encode, FORMAT_VERSION, FORMAT_VERSION_2, Limits,
};
pub use error::TxError;
pub use primitives::{BlockHash, ChainId, Height, MAX_CHAIN_ID_LEN, Timestamp, TxId};
pub use receipt::{Event, RECEIPT_DOMAIN, Receipt, Status, receipts_root};
pub use seal::{BlockSeal, SEAL_DOMAIN};
pub use tx::{
    Call, MAX_SIGNATURE_DER_LEN, SIGNED_TX_DOMAIN, Sender, SignedTx, TX_ID_DOMAIN, Transaction,
    check_expiry,
};
pub use vote::{
    CERTIFICATE_DOMAIN, CertificateError, CommitCertificate, MAX_VALIDATORS, PROPOSAL_DOMAIN,
    Proposal, Round, SignedProposal, SignedVote, VALIDATOR_SET_DOMAIN, VOTE_DOMAIN, ValidatorEntry,
    ValidatorSet, ValidatorSetError, Vote, VoteKind, verify_consensus_signature,
};
