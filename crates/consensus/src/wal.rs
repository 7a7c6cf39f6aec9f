//! The write-ahead log's entries and their codec.
//!
//! A frame is `version (1) ‖ kind (1) ‖ payload length (u32 BE) ‖ payload ‖ SM3(everything
//! before)`. Decoding checks the version, the kind, the length against a limit, the SM3 and
//! that the frame and the payload are consumed exactly (no trailing bytes). The host stores
//! each frame as one record, durably, before it returns from `Host::wal_append`.

use crypto::Digest;
use crypto_sm::sm3::sm3;
use types::codec::{Reader, Writer};
use types::{
    BlockHash, Decode, Encode, Height, Limits, Proposal, SignedProposal, SignedVote, Vote,
};

use crate::certificate::LivenessCertificate;
use crate::error::ConsensusError;

/// The frame format version.
pub const WAL_VERSION: u8 = 1;

/// Bytes of a frame around its payload (version, kind, length, SM3).
pub const FRAME_OVERHEAD: usize = 1 + 1 + 4 + 32;

/// A timeout's step, as logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutKind {
    /// Waiting for the proposal.
    Propose,
    /// Waiting for prevotes.
    Prevote,
    /// Waiting for precommits.
    Precommit,
    /// Rebroadcast of the last votes.
    Rebroadcast,
}

impl TimeoutKind {
    fn tag(self) -> u8 {
        match self {
            TimeoutKind::Propose => 1,
            TimeoutKind::Prevote => 2,
            TimeoutKind::Precommit => 3,
            TimeoutKind::Rebroadcast => 4,
        }
    }
    fn from_tag(t: u8) -> Option<Self> {
        Some(match t {
            1 => TimeoutKind::Propose,
            2 => TimeoutKind::Prevote,
            3 => TimeoutKind::Precommit,
            4 => TimeoutKind::Rebroadcast,
            _ => return None,
        })
    }
}

/// A round timeout the host arms and feeds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    /// The round.
    pub round: u32,
    /// The step.
    pub kind: TimeoutKind,
}

/// One entry of the write-ahead log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalEntry {
    /// About to ask the signer for this vote (logged before the signer is called): the
    /// double-sign guard's memory.
    SignVote(Vote),
    /// About to ask the signer for this proposal.
    SignProposal(Proposal),
    /// A vote consensus accepted (ours or a peer's).
    Vote(SignedVote),
    /// A proposal consensus accepted.
    Proposal(SignedProposal),
    /// A block consensus may vote on (ours or a proposer's), logged before consensus sees
    /// its proposal, so a restarted node can still broadcast, re-propose or hand it over.
    Block {
        /// Height.
        height: Height,
        /// Its hash.
        hash: BlockHash,
        /// The block.
        bytes: Vec<u8>,
    },
    /// Our own value for a round we propose in.
    Propose {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// Block hash.
        block: BlockHash,
    },
    /// A proposed block and the host's verdict on it.
    ProposedValue {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// Proof-of-lock round, if a re-proposal.
        valid_round: Option<u32>,
        /// The proposer.
        proposer: Digest,
        /// Block hash.
        block: BlockHash,
        /// Whether the host found it valid.
        valid: bool,
    },
    /// A liveness certificate consensus accepted.
    Certificate(LivenessCertificate),
    /// A timeout that elapsed.
    Timeout {
        /// Height.
        height: Height,
        /// The timeout.
        timeout: Timeout,
    },
}

const K_SIGN_VOTE: u8 = 1;
const K_SIGN_PROPOSAL: u8 = 2;
const K_VOTE: u8 = 3;
const K_PROPOSAL: u8 = 4;
const K_PROPOSE: u8 = 5;
const K_PROPOSED_VALUE: u8 = 6;
const K_TIMEOUT: u8 = 7;
const K_CERTIFICATE: u8 = 8;
const K_BLOCK: u8 = 9;

impl WalEntry {
    /// The height the entry belongs to.
    pub fn height(&self) -> Height {
        match self {
            WalEntry::SignVote(v) => v.height,
            WalEntry::SignProposal(p) => p.height,
            WalEntry::Vote(v) => v.vote.height,
            WalEntry::Proposal(p) => p.proposal.height,
            WalEntry::Certificate(c) => c.height,
            WalEntry::Block { height, .. }
            | WalEntry::Propose { height, .. }
            | WalEntry::ProposedValue { height, .. }
            | WalEntry::Timeout { height, .. } => *height,
        }
    }

    /// The entry as one frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let kind = match self {
            WalEntry::SignVote(v) => {
                v.encode_to(&mut w);
                K_SIGN_VOTE
            }
            WalEntry::SignProposal(p) => {
                p.encode_to(&mut w);
                K_SIGN_PROPOSAL
            }
            WalEntry::Vote(v) => {
                v.encode_to(&mut w);
                K_VOTE
            }
            WalEntry::Proposal(p) => {
                p.encode_to(&mut w);
                K_PROPOSAL
            }
            WalEntry::Block {
                height,
                hash,
                bytes,
            } => {
                w.u64(height.0);
                w.fixed(hash.as_bytes());
                w.bytes(bytes);
                K_BLOCK
            }
            WalEntry::Propose {
                height,
                round,
                block,
            } => {
                w.u64(height.0);
                w.u32(*round);
                w.fixed(block.as_bytes());
                K_PROPOSE
            }
            WalEntry::ProposedValue {
                height,
                round,
                valid_round,
                proposer,
                block,
                valid,
            } => {
                w.u64(height.0);
                w.u32(*round);
                match valid_round {
                    None => w.u8(0),
                    Some(r) => {
                        w.u8(1);
                        w.u32(*r);
                    }
                }
                w.fixed(proposer.as_bytes());
                w.fixed(block.as_bytes());
                w.u8(u8::from(*valid));
                K_PROPOSED_VALUE
            }
            WalEntry::Certificate(c) => {
                w.bytes(&c.to_bytes());
                K_CERTIFICATE
            }
            WalEntry::Timeout { height, timeout } => {
                w.u64(height.0);
                w.u32(timeout.round);
                w.u8(timeout.kind.tag());
                K_TIMEOUT
            }
        };
        let payload = w.into_bytes();
        let mut frame = Vec::with_capacity(payload.len() + FRAME_OVERHEAD);
        frame.push(WAL_VERSION);
        frame.push(kind);
        // Payloads are bounded by the block limit, far below 4 GiB.
        frame.extend_from_slice(
            &u32::try_from(payload.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        frame.extend_from_slice(&payload);
        let check = sm3(&frame);
        frame.extend_from_slice(check.as_bytes());
        frame
    }

    /// Decodes one frame whose payload is at most `max_payload` bytes.
    pub fn decode(frame: &[u8], max_payload: usize) -> Result<Self, ConsensusError> {
        let bad = |reason: &'static str| ConsensusError::WalCorrupt { reason };
        if frame.len() < FRAME_OVERHEAD {
            return Err(bad("frame shorter than its header and checksum"));
        }
        if frame[0] != WAL_VERSION {
            return Err(ConsensusError::WalVersion { got: frame[0] });
        }
        let kind = frame[1];
        let len = u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]]) as usize;
        if len > max_payload {
            return Err(ConsensusError::WalEntryTooLarge {
                len,
                max: max_payload,
            });
        }
        if frame.len() != len + FRAME_OVERHEAD {
            return Err(bad(
                "frame length differs from its header (truncated or trailing bytes)",
            ));
        }
        let body = &frame[..6 + len];
        if sm3(body).as_bytes() != &frame[6 + len..] {
            return Err(bad("SM3 checksum mismatch"));
        }
        let payload = &frame[6..6 + len];
        let limits = Limits::default();
        let d = |e: types::DecodeError| ConsensusError::WalDecode(e);
        let entry = match kind {
            K_SIGN_VOTE => WalEntry::SignVote(Vote::from_bytes(payload, &limits).map_err(d)?),
            K_SIGN_PROPOSAL => {
                WalEntry::SignProposal(Proposal::from_bytes(payload, &limits).map_err(d)?)
            }
            K_VOTE => WalEntry::Vote(SignedVote::from_bytes(payload, &limits).map_err(d)?),
            K_PROPOSAL => {
                WalEntry::Proposal(SignedProposal::from_bytes(payload, &limits).map_err(d)?)
            }
            K_PROPOSE => {
                let mut r = Reader::new(payload);
                let e = WalEntry::Propose {
                    height: Height(r.u64("wal.propose.height").map_err(d)?),
                    round: r.u32("wal.propose.round").map_err(d)?,
                    block: BlockHash(Digest(r.array("wal.propose.block").map_err(d)?)),
                };
                r.finish().map_err(d)?;
                e
            }
            K_PROPOSED_VALUE => {
                let mut r = Reader::new(payload);
                let height = Height(r.u64("wal.value.height").map_err(d)?);
                let round = r.u32("wal.value.round").map_err(d)?;
                let valid_round = match r.u8("wal.value.valid_round").map_err(d)? {
                    0 => None,
                    1 => Some(r.u32("wal.value.valid_round").map_err(d)?),
                    _ => return Err(bad("unknown valid_round flag")),
                };
                let proposer = Digest(r.array("wal.value.proposer").map_err(d)?);
                let block = BlockHash(Digest(r.array("wal.value.block").map_err(d)?));
                let valid = match r.u8("wal.value.valid").map_err(d)? {
                    0 => false,
                    1 => true,
                    _ => return Err(bad("validity is neither 0 nor 1")),
                };
                r.finish().map_err(d)?;
                WalEntry::ProposedValue {
                    height,
                    round,
                    valid_round,
                    proposer,
                    block,
                    valid,
                }
            }
            K_TIMEOUT => {
                let mut r = Reader::new(payload);
                let height = Height(r.u64("wal.timeout.height").map_err(d)?);
                let round = r.u32("wal.timeout.round").map_err(d)?;
                let kind = TimeoutKind::from_tag(r.u8("wal.timeout.kind").map_err(d)?)
                    .ok_or(bad("unknown timeout kind"))?;
                r.finish().map_err(d)?;
                WalEntry::Timeout {
                    height,
                    timeout: Timeout { round, kind },
                }
            }
            K_BLOCK => {
                let mut r = Reader::new(payload);
                let e = WalEntry::Block {
                    height: Height(r.u64("wal.block.height").map_err(d)?),
                    hash: BlockHash(Digest(r.array("wal.block.hash").map_err(d)?)),
                    bytes: r.bytes("wal.block.bytes", max_payload).map_err(d)?.to_vec(),
                };
                r.finish().map_err(d)?;
                e
            }
            K_CERTIFICATE => {
                let mut r = Reader::new(payload);
                let c = LivenessCertificate::from_bytes(
                    r.bytes("wal.certificate", max_payload).map_err(d)?,
                )
                .map_err(d)?;
                r.finish().map_err(d)?;
                WalEntry::Certificate(c)
            }
            got => return Err(ConsensusError::WalUnknownKind { got }),
        };
        Ok(entry)
    }
}
