//! Tree nodes, their hashes and their canonical storage encoding.

use crypto::Digest;
use crypto_sm::sm3::sm3;

use crate::error::{DecodeFault, Encoded, StateError};

/// The largest value a leaf may hold, in bytes (1 MiB). Values are bounded so that every stored
/// node has a bounded encoding and a decoder can refuse anything larger before allocating.
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// The digest standing for an empty subtree at every level, and so the root of the empty tree:
/// 32 zero bytes. It is not the hash of anything (finding an SM3 preimage of zero is infeasible),
/// so it cannot be confused with a leaf or an internal node. One default for all levels suffices
/// because the canonical form never contains an internal node with two empty children.
pub const EMPTY_ROOT: Digest = Digest([0u8; 32]);

/// Domain separation byte of a leaf hash.
const LEAF_TAG: u8 = 0x00;
/// Domain separation byte of an internal-node hash.
const INTERNAL_TAG: u8 = 0x01;

/// Returns the 256-bit path of `key` in the tree: SM3(key). Hashing the key means nobody can
/// choose where a key lands, so the tree stays balanced in expectation whatever keys are written.
pub fn key_path(key: &[u8]) -> Digest {
    sm3(key)
}

/// Returns a leaf's hash: SM3(0x00 ‖ key_hash ‖ value_hash), with value_hash = SM3(value).
pub fn leaf_hash(key_hash: &Digest, value_hash: &Digest) -> Digest {
    sm3(&leaf_message(key_hash, value_hash))
}

/// Returns an internal node's hash: SM3(0x01 ‖ left ‖ right).
pub fn internal_hash(left: &Digest, right: &Digest) -> Digest {
    sm3(&internal_message(left, right))
}

/// What a leaf's hash is SM3 of: 0x00 ‖ key_hash ‖ value_hash (hashed many at once by the
/// tree's update).
pub(crate) fn leaf_message(key_hash: &Digest, value_hash: &Digest) -> [u8; 65] {
    tagged(LEAF_TAG, key_hash, value_hash)
}

/// What an internal node's hash is SM3 of: 0x01 ‖ left ‖ right.
pub(crate) fn internal_message(left: &Digest, right: &Digest) -> [u8; 65] {
    tagged(INTERNAL_TAG, left, right)
}

fn tagged(tag: u8, a: &Digest, b: &Digest) -> [u8; 65] {
    let mut m = [0u8; 65];
    m[0] = tag;
    m[1..33].copy_from_slice(&a.0);
    m[33..].copy_from_slice(&b.0);
    m
}

/// Returns bit `index` (0 = most significant bit of byte 0) of `path`; 0 goes left, 1 right.
/// Callers keep `index < 256`.
pub(crate) fn path_bit(path: &Digest, index: usize) -> bool {
    (path.0[index / 8] >> (7 - (index % 8))) & 1 == 1
}

/// A stored node, addressed by its hash.
///
/// The canonical tree built from a set of pairs has: the empty subtree as [`EMPTY_ROOT`]; a
/// subtree holding exactly one pair as that pair's [`Node::Leaf`], however high up ("shortcut
/// leaf"); and a subtree holding two or more pairs as a [`Node::Internal`], whose children may be
/// empty (a run of such nodes leads to where two paths part).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Node {
    /// One (key, value) pair; the key is kept only as its path SM3(key).
    Leaf {
        /// SM3(key).
        key_hash: Digest,
        /// The value, at most [`MAX_VALUE_LEN`] bytes.
        value: Vec<u8>,
    },
    /// Two children; either may be [`EMPTY_ROOT`], not both.
    Internal {
        /// The hash of the subtree whose next path bit is 0.
        left: Digest,
        /// The hash of the subtree whose next path bit is 1.
        right: Digest,
    },
}

impl Node {
    /// Returns the node's hash, the key it is stored under.
    pub fn hash(&self) -> Digest {
        match self {
            Node::Leaf { key_hash, value } => leaf_hash(key_hash, &sm3(value)),
            Node::Internal { left, right } => internal_hash(left, right),
        }
    }

    /// Returns the canonical storage encoding:
    /// leaf `00 ‖ key_hash(32) ‖ len(u32 BE) ‖ value`; internal `01 ‖ left(32) ‖ right(32)`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Node::Leaf { key_hash, value } => {
                let mut out = Vec::with_capacity(1 + 32 + 4 + value.len());
                out.push(LEAF_TAG);
                out.extend_from_slice(&key_hash.0);
                // Values are capped at MAX_VALUE_LEN when written, so the length fits in u32.
                out.extend_from_slice(
                    &u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes(),
                );
                out.extend_from_slice(value);
                out
            }
            Node::Internal { left, right } => {
                let mut out = Vec::with_capacity(65);
                out.push(INTERNAL_TAG);
                out.extend_from_slice(&left.0);
                out.extend_from_slice(&right.0);
                out
            }
        }
    }

    /// Decodes a node, refusing truncated input, trailing bytes, unknown tags, values over
    /// [`MAX_VALUE_LEN`] and internal nodes with two empty children. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Node, StateError> {
        let mut r = Reader::new(bytes, Encoded::Node);
        let node = match r.u8()? {
            LEAF_TAG => {
                let key_hash = r.digest()?;
                let len = r.u32()? as usize;
                if len > MAX_VALUE_LEN {
                    return Err(r.fail(DecodeFault::LengthTooLarge {
                        len,
                        max: MAX_VALUE_LEN,
                    }));
                }
                let value = r.take(len)?.to_vec();
                Node::Leaf { key_hash, value }
            }
            INTERNAL_TAG => {
                let left = r.digest()?;
                let right = r.digest()?;
                if left == EMPTY_ROOT && right == EMPTY_ROOT {
                    return Err(r.fail(DecodeFault::NonCanonical));
                }
                Node::Internal { left, right }
            }
            tag => return Err(r.fail(DecodeFault::UnknownTag { tag })),
        };
        r.finish()?;
        Ok(node)
    }
}

/// A bounds-checked cursor over bytes being decoded.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: Encoded,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: Encoded) -> Self {
        Self { rest: bytes, what }
    }

    pub(crate) fn fail(&self, fault: DecodeFault) -> StateError {
        StateError::Decode {
            what: self.what,
            fault,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.rest.len() < n {
            return Err(self.fail(DecodeFault::Truncated));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, StateError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StateError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn digest(&mut self) -> Result<Digest, StateError> {
        let mut d = [0u8; 32];
        d.copy_from_slice(self.take(32)?);
        Ok(Digest(d))
    }

    pub(crate) fn finish(self) -> Result<(), StateError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.fail(DecodeFault::TrailingBytes {
                count: self.rest.len(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(b: u8) -> Digest {
        Digest([b; 32])
    }

    #[test]
    fn hashes_follow_the_documented_preimages() {
        let kh = key_path(b"alice");
        let vh = sm3(b"100");
        let mut pre = vec![0x00];
        pre.extend_from_slice(&kh.0);
        pre.extend_from_slice(&vh.0);
        assert_eq!(leaf_hash(&kh, &vh), sm3(&pre));
        let mut pre = vec![0x01];
        pre.extend_from_slice(&d(1).0);
        pre.extend_from_slice(&d(2).0);
        assert_eq!(internal_hash(&d(1), &d(2)), sm3(&pre));
        assert_eq!(
            Node::Leaf {
                key_hash: kh,
                value: b"100".to_vec()
            }
            .hash(),
            leaf_hash(&kh, &vh)
        );
    }

    #[test]
    fn path_bits_are_msb_first() {
        let mut p = [0u8; 32];
        p[0] = 0b1000_0001;
        p[31] = 0x01;
        let p = Digest(p);
        assert!(path_bit(&p, 0));
        assert!(!path_bit(&p, 1));
        assert!(path_bit(&p, 7));
        assert!(path_bit(&p, 255));
        assert!(!path_bit(&p, 254));
    }

    // Known-answer encodings: changing these bytes is a storage format change.
    #[test]
    fn encoding_known_answers() {
        let leaf = Node::Leaf {
            key_hash: d(0xab),
            value: vec![1, 2, 3],
        };
        let expected = format!("00{}00000003010203", "ab".repeat(32));
        assert_eq!(hex::encode(leaf.encode()), expected);
        let internal = Node::Internal {
            left: d(0x11),
            right: EMPTY_ROOT,
        };
        let expected = format!("01{}{}", "11".repeat(32), "00".repeat(32));
        assert_eq!(hex::encode(internal.encode()), expected);
        for n in [leaf, internal] {
            assert_eq!(Node::decode(&n.encode()).unwrap(), n);
        }
    }

    #[test]
    fn decoder_refusals() {
        let fault = |bytes: &[u8]| match Node::decode(bytes) {
            Err(StateError::Decode {
                what: Encoded::Node,
                fault,
            }) => fault,
            other => panic!("expected a decode error, got {other:?}"),
        };
        assert_eq!(fault(&[]), DecodeFault::Truncated);
        assert_eq!(fault(&[7]), DecodeFault::UnknownTag { tag: 7 });
        let mut internal = Node::Internal {
            left: d(1),
            right: d(2),
        }
        .encode();
        internal.push(0);
        assert_eq!(fault(&internal), DecodeFault::TrailingBytes { count: 1 });
        assert_eq!(fault(&internal[..64]), DecodeFault::Truncated);
        let mut both_empty = vec![1];
        both_empty.extend_from_slice(&[0; 64]);
        assert_eq!(fault(&both_empty), DecodeFault::NonCanonical);
        let mut big = vec![0];
        big.extend_from_slice(&[0; 32]);
        big.extend_from_slice(&(MAX_VALUE_LEN as u32 + 1).to_be_bytes());
        assert_eq!(
            fault(&big),
            DecodeFault::LengthTooLarge {
                len: MAX_VALUE_LEN + 1,
                max: MAX_VALUE_LEN
            }
        );
        let mut short = vec![0];
        short.extend_from_slice(&[0; 32]);
        short.extend_from_slice(&5u32.to_be_bytes());
        short.extend_from_slice(&[9; 4]);
        assert_eq!(fault(&short), DecodeFault::Truncated);
    }
}
