//! Merkle trees of RFC 6962 §2.1 (as restated in RFC 9162 §2.1) with SM3 as HASH:
//!
//! - MTH({}) = SM3() (the hash of the empty string);
//! - MTH({d0}) = SM3(0x00 ‖ d0) (a leaf);
//! - MTH(D[n]) = SM3(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])) for n > 1, where k is the largest power
//!   of two smaller than n.
//!
//! The last leaf is never duplicated (unlike Bitcoin's tree, where duplication lets two lists
//! share a root), and the 0x00/0x01 prefixes keep a leaf from passing for an interior node.
//! An inclusion proof does not authenticate the tree size: whoever checks one must know the size
//! from elsewhere. For a block's transactions (and receipts) that is the header's `tx_count`,
//! never a size supplied with the proof. Consistency proofs are not implemented yet.

use crate::codec::{Decode, DecodeError, Encode, Limits, Reader, Writer, tag};
use crypto::Digest;
use crypto_sm::sm3::{sm3, sm3_many, sm3_parts};
use thiserror::Error;

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// Returns the leaf hash SM3(0x00 ‖ `data`) (RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Digest {
    sm3_parts(&[&[LEAF_PREFIX], data])
}

/// Returns the interior node hash SM3(0x01 ‖ `left` ‖ `right`) (RFC 6962 §2.1).
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    sm3_parts(&[&[NODE_PREFIX], left.as_bytes(), right.as_bytes()])
}

/// Returns the Merkle Tree Hash of the data entries `entries`: the leaves, then each level,
/// hashed many at once (`sm3_many`: eight messages in SIMD lanes where the CPU has them).
pub fn root<T: AsRef<[u8]>>(entries: &[T]) -> Digest {
    let prefixed: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| {
            let e = e.as_ref();
            let mut b = Vec::with_capacity(1 + e.len());
            b.push(LEAF_PREFIX);
            b.extend_from_slice(e);
            b
        })
        .collect();
    root_of_leaf_hashes(&sm3_many(&prefixed))
}

/// Returns the Merkle Tree Hash of a tree whose leaf hashes are `leaves`.
///
/// Computed level by level from the leaves: adjacent nodes paired, an odd last node carried up
/// unchanged. That is the tree of RFC 6962's recursive definition (the left subtree of n
/// leaves is the perfect tree of the largest power of two below n; bottom-up pairing builds
/// exactly those perfect subtrees first, and a carried node is the right edge), and the test
/// `level_by_level_is_the_recursive_definition` checks it for every size up to 300.
pub fn root_of_leaf_hashes(leaves: &[Digest]) -> Digest {
    if leaves.is_empty() {
        return sm3(b"");
    }
    let mut level: Vec<Digest> = leaves.to_vec();
    while level.len() > 1 {
        let pairs: Vec<[u8; 65]> = level
            .chunks_exact(2)
            .map(|p| {
                let mut b = [0u8; 65];
                b[0] = NODE_PREFIX;
                b[1..33].copy_from_slice(p[0].as_bytes());
                b[33..].copy_from_slice(p[1].as_bytes());
                b
            })
            .collect();
        let carried = (level.len() % 2 == 1).then(|| level[level.len() - 1]);
        level = sm3_many(&pairs);
        level.extend(carried);
    }
    level[0]
}

/// MTH of a non-empty list of leaf hashes, by RFC 6962's recursive definition (the reference
/// the level-by-level computation is tested against).
#[cfg(test)]
fn subtree(leaves: &[Digest]) -> Digest {
    match leaves {
        [] => sm3(b""),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            let (l, r) = leaves.split_at(k);
            node_hash(&subtree(l), &subtree(r))
        }
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k < n / 2 + n % 2 {
        k <<= 1;
    }
    // k is now the smallest power of two ≥ n/2 rounded up, i.e. the largest power of two < n.
    k
}

/// An inclusion proof (audit path): the sibling hashes from the leaf up to the root.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InclusionProof {
    /// The audit path, leaf side first (RFC 6962 §2.1.1 PATH(m, D[n])).
    pub path: Vec<Digest>,
}

/// Why an inclusion proof failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The index is not below the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The path has the wrong length for this index and size.
    #[error("the audit path has the wrong length for this index and tree size")]
    WrongLength,
    /// The path leads to another root.
    #[error("the audit path does not lead to the expected root")]
    RootMismatch,
}

/// Returns the audit path for the entry at `index` among the leaf hashes `leaves`, or `None`
/// if `index` is out of range (RFC 6962 §2.1.1).
pub fn prove(leaves: &[Digest], index: usize) -> Option<InclusionProof> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(index, leaves, &mut path);
    Some(InclusionProof { path })
}

/// PATH(m, D[n]): the inner path first, then the sibling subtree's root.
fn path_into(m: usize, leaves: &[Digest], out: &mut Vec<Digest>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    let (l, r) = leaves.split_at(k);
    if m < k {
        path_into(m, l, out);
        out.push(root_of_leaf_hashes(r));
    } else {
        path_into(m - k, r, out);
        out.push(root_of_leaf_hashes(l));
    }
}

/// Verifies that `leaf` (a leaf hash, see [`leaf_hash`]) is at `index` in the tree of `size`
/// leaves with root `root`, by the algorithm of RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    root: &Digest,
    leaf: &Digest,
    index: u64,
    size: u64,
    proof: &InclusionProof,
) -> Result<(), ProofError> {
    // 1. leaf_index must be below tree_size.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // 2-3. fn = leaf_index, sn = tree_size - 1, r = hash.
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    // 4. For each p in the path:
    for p in &proof.path {
        // 4a. sn = 0 with path left: too long.
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        // 4b. A right child, or the last node of its level: p is the left sibling.
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            // 4b.ii. Skip the levels where this node has no right sibling.
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        // 4c.
        f_n >>= 1;
        s_n >>= 1;
    }
    // 5. The path must be used up exactly and lead to the root.
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the data entry `entry` is at `index`: [`verify_inclusion`] of its leaf hash.
pub fn verify(
    root: &Digest,
    entry: &[u8],
    index: u64,
    size: u64,
    proof: &InclusionProof,
) -> Result<(), ProofError> {
    verify_inclusion(root, &leaf_hash(entry), index, size, proof)
}

impl Encode for InclusionProof {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::INCLUSION_PROOF);
        w.len(self.path.len());
        for d in &self.path {
            w.fixed(d.as_bytes());
        }
    }
}

impl Decode for InclusionProof {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        r.header("proof.header", tag::INCLUSION_PROOF)?;
        let n = r.len("proof.path", limits.max_proof_len)?;
        let mut path = Vec::new();
        for _ in 0..n {
            path.push(Digest(r.array("proof.path[]")?));
        }
        Ok(Self { path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level-by-level root (hashed many at once) is RFC 6962's recursive MTH, for every
    /// size up to 300, from `root` over data and from `root_of_leaf_hashes`.
    #[test]
    fn level_by_level_is_the_recursive_definition() {
        for n in 0..=300usize {
            let data: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i % 70]).collect();
            let leaves: Vec<Digest> = data.iter().map(|d| leaf_hash(d)).collect();
            let reference = if n == 0 { sm3(b"") } else { subtree(&leaves) };
            assert_eq!(root_of_leaf_hashes(&leaves), reference, "n = {n}");
            assert_eq!(root(&data), reference, "n = {n}");
        }
    }

    #[test]
    fn split_is_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (7, 4),
            (8, 4),
            (9, 8),
            (1025, 1024),
        ] {
            assert_eq!(split(n), k, "n = {n}");
        }
    }

    #[test]
    fn empty_tree_is_sm3_of_nothing() {
        assert_eq!(
            root::<&[u8]>(&[]).to_hex(),
            "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"
        );
    }

    #[test]
    fn no_duplicated_last_leaf() {
        // With duplication, [a, b, c] and [a, b, c, c] would share a root.
        assert_ne!(root(&[b"a", b"b", b"c"]), root(&[b"a", b"b", b"c", b"c"]));
    }

    #[test]
    fn out_of_range() {
        assert!(prove(&[], 0).is_none());
        let leaves = [leaf_hash(b"x")];
        let proof = prove(&leaves, 0).unwrap();
        assert!(proof.path.is_empty());
        assert_eq!(
            verify_inclusion(&leaves[0], &leaves[0], 1, 1, &proof),
            Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
        );
        assert_eq!(
            verify_inclusion(&leaves[0], &leaves[0], 0, 1, &proof),
            Ok(())
        );
    }
}
