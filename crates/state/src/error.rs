//! The one error type of this crate.

use crypto::Digest;

/// Which encoded structure a decode error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoded {
    /// A stored tree node ([`crate::Node`]).
    Node,
    /// A Merkle proof ([`crate::Proof`]).
    Proof,
}

/// Why bytes were refused by a decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeFault {
    /// The input ended before the structure was complete.
    Truncated,
    /// Bytes remained after the structure was complete.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The leading tag or flag byte is not one this format defines.
    UnknownTag {
        /// The byte found.
        tag: u8,
    },
    /// A length field exceeds the format's limit.
    LengthTooLarge {
        /// The length found.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// The bytes are well-formed but not the one canonical encoding (an internal node with two
    /// empty children, an explicitly encoded empty sibling, padding bits set in a bitmap).
    NonCanonical,
}

/// Why a proof was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofFault {
    /// More siblings than the 256 levels of the tree.
    TooManySiblings {
        /// The number of siblings in the proof.
        count: usize,
    },
    /// A value was claimed but the proof shows the key absent.
    KeyAbsent,
    /// Absence was claimed but the proof's leaf is the key's own leaf.
    KeyPresent,
    /// The proof's leaf is for a different key than the one claimed present.
    LeafKeyMismatch,
    /// The proof's leaf commits to a different value than the one claimed.
    ValueMismatch,
    /// For a non-inclusion proof, the leaf shown does not lie on the key's path.
    LeafNotOnPath,
    /// The proof hashes to a different root.
    RootMismatch {
        /// The trusted root the proof was checked against.
        expected: Digest,
        /// The root the proof hashes to.
        computed: Digest,
    },
}

/// Everything that can go wrong reading, updating or proving the state tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The store lacks a node the tree refers to (pruned, never written, or the wrong root).
    #[error("state node {hash} is missing from the node store")]
    MissingNode {
        /// The hash of the missing node.
        hash: Digest,
    },
    /// The store's nodes do not form a well-formed tree below `root` (a node deeper than 256
    /// levels, or an internal node where only a leaf can be).
    #[error("state tree below node {hash} is malformed at depth {depth}")]
    Malformed {
        /// The node at which the inconsistency was found.
        hash: Digest,
        /// Its depth (0 is the root).
        depth: usize,
    },
    /// A value exceeds [`crate::MAX_VALUE_LEN`].
    #[error("state value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Encoded bytes were refused.
    #[error("cannot decode {what:?}: {fault:?}")]
    Decode {
        /// What was being decoded.
        what: Encoded,
        /// Why it was refused.
        fault: DecodeFault,
    },
    /// A Merkle proof does not prove the claim it was checked for.
    #[error("state proof rejected: {fault:?}")]
    ProofInvalid {
        /// Which check failed.
        fault: ProofFault,
    },
    /// An invariant of the update's own bookkeeping failed (a bug, never the input's fault):
    /// refused rather than answered with a root the other validators would not compute.
    #[error("state update bookkeeping failed: {what}")]
    Internal {
        /// Which invariant.
        what: &'static str,
    },
    /// The storage backend failed.
    #[error("state node store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}
