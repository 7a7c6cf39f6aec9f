//! Small newtypes: heights, chain IDs, ids and hashes, timestamps.

use crate::codec::{DecodeError, DecodeReason};
use core::fmt;
use crypto::Digest;

/// A block height. The genesis block has height 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Height(pub u64);

impl Height {
    /// Returns the next height, or `None` at `u64::MAX`.
    pub fn next(self) -> Option<Height> {
        self.0.checked_add(1).map(Height)
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Milliseconds since the Unix epoch, as the proposer stated it. This crate never reads a
/// clock; whether a timestamp is plausible is for consensus to judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

/// The longest chain ID, in bytes.
pub const MAX_CHAIN_ID_LEN: usize = 64;

/// The name of a chain: 1 to 64 bytes of printable ASCII without spaces. Every transaction
/// and header carries it, so a signature for one chain is worthless on another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChainId(String);

impl ChainId {
    /// Parses a chain ID, refusing empty, long or non-ASCII ones.
    pub fn new(id: &str) -> Result<Self, DecodeError> {
        Self::parse("chain_id", id.as_bytes())
    }

    /// Parses the bytes of a chain ID read from field `field`.
    pub(crate) fn parse(field: &'static str, bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::codec::check_name(field, bytes, MAX_CHAIN_ID_LEN).map(Self)
    }

    /// Returns the chain ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for ChainId {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A transaction ID: SM3("GMCHAIN-TX-V1\0" ‖ canonical unsigned transaction), see docs/formats.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub Digest);

impl TxId {
    /// Returns the 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A block hash: SM3("GMCHAIN-HEADER-V1\0" ‖ canonical header), see docs/formats.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockHash(pub Digest);

impl BlockHash {
    /// The parent of the genesis block: 32 zero bytes.
    pub const GENESIS_PARENT: BlockHash = BlockHash(Digest([0u8; 32]));

    /// Returns the 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Maps a crypto-layer refusal into a decode error for `field`.
pub(crate) fn crypto_field(field: &'static str, e: crypto::CryptoError) -> DecodeError {
    DecodeError::new(field, DecodeReason::Crypto(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_bounds() {
        assert_eq!(ChainId::new("gov-bj-1").unwrap().as_str(), "gov-bj-1");
        assert!(ChainId::new(&"a".repeat(64)).is_ok());
        let e = ChainId::new(&"a".repeat(65)).unwrap_err();
        assert_eq!(e.field, "chain_id");
        assert!(ChainId::new("").is_err());
        assert!(ChainId::new("gov bj").is_err());
        assert!(ChainId::new("政务链").is_err());
    }

    #[test]
    fn height_next_saturates_to_none() {
        assert_eq!(Height(1).next(), Some(Height(2)));
        assert_eq!(Height(u64::MAX).next(), None);
    }
}
