//! The crate's one error type.

use types::{BlockHash, CertificateError, Height};

use crate::wal::TimeoutKind;

/// Why consensus could not handle an input, or refused to do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// An earlier input failed; this instance must be replaced by `Consensus::recover`.
    #[error("consensus failed earlier (crash semantics): recover it from its WAL")]
    Poisoned,
    /// An input arrived before the first `StartHeight`.
    #[error("no height started yet: the host must send StartHeight first")]
    NotStarted,
    /// The double-sign guard refused to sign a second, different vote.
    #[error(
        "refused to sign a {kind:?} at height {height} round {round} for {wanted:?}: already signed one for {signed:?}"
    )]
    DoubleVote {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// Prevote or precommit.
        kind: types::VoteKind,
        /// The block of the vote signed before (None = nil).
        signed: Option<BlockHash>,
        /// The block of the vote asked for now.
        wanted: Option<BlockHash>,
    },
    /// The double-sign guard refused to sign a second, different proposal.
    #[error(
        "refused to sign a proposal at height {height} round {round} for {wanted}: already signed one for {signed}"
    )]
    DoubleProposal {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// Block proposed before.
        signed: BlockHash,
        /// Block asked for now.
        wanted: BlockHash,
    },
    /// The host failed at something consensus needs (signing, WAL, proposing).
    #[error("the host failed to {action}: {reason}")]
    Host {
        /// What consensus asked for.
        action: &'static str,
        /// The host's reason.
        reason: String,
    },
    /// A WAL frame is damaged.
    #[error("WAL entry corrupt: {reason}")]
    WalCorrupt {
        /// What was wrong.
        reason: &'static str,
    },
    /// A WAL frame of a version this build does not read.
    #[error("WAL entry version {got} is not supported (this build reads version 1)")]
    WalVersion {
        /// The version found.
        got: u8,
    },
    /// A WAL frame of an unknown kind.
    #[error("WAL entry kind {got} is unknown")]
    WalUnknownKind {
        /// The kind found.
        got: u8,
    },
    /// A WAL frame longer than allowed.
    #[error("WAL entry payload of {len} bytes exceeds the limit of {max}")]
    WalEntryTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A WAL payload that does not decode.
    #[error("WAL entry payload does not decode: {0}")]
    WalDecode(types::DecodeError),
    /// A synced block's certificate does not prove it.
    #[error("the certificate of synced block {block} at height {height} does not verify: {source}")]
    SyncCertificate {
        /// Height.
        height: Height,
        /// Block.
        block: BlockHash,
        /// Why.
        source: Box<CertificateError>,
    },
    /// A timeout kind this crate never schedules.
    #[error("timeout {kind:?} was never scheduled by consensus")]
    UnknownTimeout {
        /// The kind.
        kind: TimeoutKind,
    },
    /// Malachite's core reported an error.
    #[error("consensus core: {reason}")]
    Core {
        /// Its message.
        reason: String,
    },
}
