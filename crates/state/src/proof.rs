//! Inclusion and non-inclusion proofs, their verification and their canonical encoding.

use crypto::Digest;
use crypto_sm::sm3::sm3;

use crate::error::{DecodeFault, Encoded, ProofFault, StateError};
use crate::node::{EMPTY_ROOT, Reader, internal_hash, key_path, leaf_hash, path_bit};

/// The most siblings a proof can have: one per level of the 256-bit path.
pub const MAX_PROOF_SIBLINGS: usize = 256;

/// The leaf a proof's path ends at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafProof {
    /// SM3(key) of the leaf's key.
    pub key_hash: Digest,
    /// SM3(value) of the leaf's value.
    pub value_hash: Digest,
}

/// A Merkle proof for one key: the siblings along the key's path from the root down, and where
/// the path ends (an empty subtree, the key's own leaf, or another key's shortcut leaf that
/// occupies the subtree the key would be in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    leaf: Option<LeafProof>,
    siblings: Vec<Digest>,
}

impl Proof {
    pub(crate) fn new(leaf: Option<LeafProof>, siblings: Vec<Digest>) -> Self {
        Self { leaf, siblings }
    }

    /// Returns the leaf the path ends at, or `None` for an empty subtree.
    pub fn leaf(&self) -> Option<&LeafProof> {
        self.leaf.as_ref()
    }

    /// Returns the siblings, root level first ([`EMPTY_ROOT`] for an empty sibling).
    pub fn siblings(&self) -> &[Digest] {
        &self.siblings
    }

    /// Returns the canonical encoding:
    /// `flag(1: 00 no leaf, 01 leaf) ‖ [key_hash(32) ‖ value_hash(32)] ‖ count(u16 BE)
    /// ‖ bitmap(⌈count/8⌉, bit i MSB-first set iff sibling i is not empty) ‖ non-empty siblings`.
    pub fn encode(&self) -> Vec<u8> {
        let count = self.siblings.len();
        let mut out = Vec::with_capacity(1 + 64 + 2 + count.div_ceil(8) + 32 * count);
        match &self.leaf {
            None => out.push(0),
            Some(l) => {
                out.push(1);
                out.extend_from_slice(&l.key_hash.0);
                out.extend_from_slice(&l.value_hash.0);
            }
        }
        // A proof from `prove` or `decode` has at most 256 siblings.
        out.extend_from_slice(&u16::try_from(count).unwrap_or(u16::MAX).to_be_bytes());
        let mut bitmap = vec![0u8; count.div_ceil(8)];
        for (i, s) in self.siblings.iter().enumerate() {
            if *s != EMPTY_ROOT {
                bitmap[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for s in self.siblings.iter().filter(|s| **s != EMPTY_ROOT) {
            out.extend_from_slice(&s.0);
        }
        out
    }

    /// Decodes a proof, refusing anything but the canonical encoding (more than 256 siblings,
    /// padding bits set, an explicitly encoded empty sibling, truncation, trailing bytes). Never
    /// panics.
    pub fn decode(bytes: &[u8]) -> Result<Proof, StateError> {
        let mut r = Reader::new(bytes, Encoded::Proof);
        let leaf = match r.u8()? {
            0 => None,
            1 => Some(LeafProof {
                key_hash: r.digest()?,
                value_hash: r.digest()?,
            }),
            tag => return Err(r.fail(DecodeFault::UnknownTag { tag })),
        };
        let count = usize::from(r.u16()?);
        if count > MAX_PROOF_SIBLINGS {
            return Err(r.fail(DecodeFault::LengthTooLarge {
                len: count,
                max: MAX_PROOF_SIBLINGS,
            }));
        }
        let bitmap = r.take(count.div_ceil(8))?;
        let mut siblings = Vec::with_capacity(count);
        for i in 0..count {
            if bitmap[i / 8] & (0x80 >> (i % 8)) == 0 {
                siblings.push(EMPTY_ROOT);
            } else {
                let s = r.digest()?;
                if s == EMPTY_ROOT {
                    return Err(r.fail(DecodeFault::NonCanonical));
                }
                siblings.push(s);
            }
        }
        if count % 8 != 0
            && bitmap
                .last()
                .is_some_and(|b| b & (0xff >> (count % 8)) != 0)
        {
            return Err(r.fail(DecodeFault::NonCanonical));
        }
        r.finish()?;
        Ok(Proof { leaf, siblings })
    }
}

fn reject(fault: ProofFault) -> StateError {
    StateError::ProofInvalid { fault }
}

/// Checks that `proof` shows `key` bound to `value` (`Some`) or absent (`None`) in the tree whose
/// root is `root`. The root must come from a trusted source (a verified block header); the proof
/// may come from anyone.
pub fn verify_proof(
    root: Digest,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &Proof,
) -> Result<(), StateError> {
    let count = proof.siblings.len();
    if count > MAX_PROOF_SIBLINGS {
        return Err(reject(ProofFault::TooManySiblings { count }));
    }
    let key_hash = key_path(key);
    let mut current = match (value, &proof.leaf) {
        (Some(_), None) => return Err(reject(ProofFault::KeyAbsent)),
        (Some(v), Some(leaf)) => {
            if leaf.key_hash != key_hash {
                return Err(reject(ProofFault::LeafKeyMismatch));
            }
            if leaf.value_hash != sm3(v) {
                return Err(reject(ProofFault::ValueMismatch));
            }
            leaf_hash(&leaf.key_hash, &leaf.value_hash)
        }
        (None, Some(leaf)) => {
            if leaf.key_hash == key_hash {
                return Err(reject(ProofFault::KeyPresent));
            }
            // The other key's leaf must sit in the subtree the key would be in.
            if (0..count).any(|i| path_bit(&leaf.key_hash, i) != path_bit(&key_hash, i)) {
                return Err(reject(ProofFault::LeafNotOnPath));
            }
            leaf_hash(&leaf.key_hash, &leaf.value_hash)
        }
        (None, None) => EMPTY_ROOT,
    };
    for (depth, sibling) in proof.siblings.iter().enumerate().rev() {
        current = if path_bit(&key_hash, depth) {
            internal_hash(sibling, &current)
        } else {
            internal_hash(&current, sibling)
        };
    }
    if current != root {
        return Err(reject(ProofFault::RootMismatch {
            expected: root,
            computed: current,
        }));
    }
    Ok(())
}
