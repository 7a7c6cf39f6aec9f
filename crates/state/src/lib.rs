//! The gmchain world state as an SM3-authenticated sparse Merkle tree: 256-bit paths
//! SM3(key), O(log n) updates, and inclusion and non-inclusion proofs that a light client checks
//! against a root from a verified block header.
//!
//! # Design
//!
//! - Path: `SM3(key)`, read most significant bit first; bit 0 goes left. Hashing the key means no
//!   writer can choose where its key lands, so the tree is balanced in expectation.
//! - Leaf: `SM3(0x00 ‖ SM3(key) ‖ SM3(value))`. Internal node: `SM3(0x01 ‖ left ‖ right)`.
//! - Empty subtree: [`EMPTY_ROOT`], 32 zero bytes, at every level (not per-level defaults). The
//!   empty tree's root is [`EMPTY_ROOT`].
//! - Canonical, compressed form: a subtree with one pair is that pair's leaf however high up
//!   ("shortcut leaf"); a subtree with two or more pairs is an internal node. So a key's depth is
//!   about log2(n) + O(1), not 256, and the root depends only on the set of pairs: insertion order
//!   and deleted history leave no trace.
//! - Storage: nodes are content-addressed ([`Node`] under its hash) behind [`NodeStore`].
//!   [`apply`] only reads and returns the new nodes, so a block's whole state change can be one
//!   atomic write batch; [`MemStore`] keeps them in memory.
//!
//! # What it refuses
//!
//! Values over [`MAX_VALUE_LEN`]; node and proof encodings that are not canonical or carry
//! trailing bytes; stores whose nodes do not form a tree. It opens no file, socket, clock or entropy
//! source, and never deletes nodes (pruning old roots belongs to the storage backend).
//!
//! This crate must not have any transitive dependencies on RocksDB.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod node;
mod proof;
mod store;
mod tree;

pub use error::{DecodeFault, Encoded, ProofFault, StateError};
pub use node::{EMPTY_ROOT, MAX_VALUE_LEN, Node, internal_hash, key_path, leaf_hash};
pub use proof::{LeafProof, MAX_PROOF_SIBLINGS, Proof, verify_proof};
pub use store::{MemStore, NodeStore};
pub use tree::{UpdateBatch, apply, get, prove};

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::Digest;

    type Updates = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    fn set(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    fn del(k: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), None)
    }

    fn commit(store: &mut MemStore, root: Digest, ups: Updates) -> Digest {
        let batch = apply(store, root, &ups).unwrap();
        store.write(batch.nodes).unwrap();
        batch.root
    }

    #[test]
    fn empty_tree() {
        let store = MemStore::new();
        assert_eq!(get(&store, EMPTY_ROOT, b"a").unwrap(), None);
        let proof = prove(&store, EMPTY_ROOT, b"a").unwrap();
        verify_proof(EMPTY_ROOT, b"a", None, &proof).unwrap();
        assert!(apply(&store, EMPTY_ROOT, &[]).unwrap().nodes.is_empty());
    }

    #[test]
    fn single_key_root_is_its_leaf() {
        let mut store = MemStore::new();
        let root = commit(&mut store, EMPTY_ROOT, vec![set("a", "1")]);
        assert_eq!(root, leaf_hash(&key_path(b"a"), &key_path(b"1")));
        assert_eq!(get(&store, root, b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn two_keys_root_by_hand() {
        let mut store = MemStore::new();
        let root = commit(&mut store, EMPTY_ROOT, vec![set("a", "1"), set("b", "2")]);
        let la = (key_path(b"a"), leaf_hash(&key_path(b"a"), &key_path(b"1")));
        let lb = (key_path(b"b"), leaf_hash(&key_path(b"b"), &key_path(b"2")));
        // Compute the expected root from the definition: a run of one-child nodes down to the
        // first bit where the two paths differ.
        let bit = |d: &Digest, i: usize| (d.0[i / 8] >> (7 - i % 8)) & 1;
        let split = (0..256).find(|&i| bit(&la.0, i) != bit(&lb.0, i)).unwrap();
        let (zero, one) = if bit(&la.0, split) == 0 {
            (la.1, lb.1)
        } else {
            (lb.1, la.1)
        };
        let mut h = internal_hash(&zero, &one);
        for i in (0..split).rev() {
            h = if bit(&la.0, i) == 0 {
                internal_hash(&h, &EMPTY_ROOT)
            } else {
                internal_hash(&EMPTY_ROOT, &h)
            };
        }
        assert_eq!(root, h);
    }

    #[test]
    fn known_answer_root() {
        // Pins the whole hashing scheme: changing this root is a state format change.
        let mut store = MemStore::new();
        let ups = (0..16)
            .map(|i| set(&format!("key{i}"), &format!("value{i}")))
            .collect();
        let root = commit(&mut store, EMPTY_ROOT, ups);
        // Cross-checked with an independent Python reference over OpenSSL SM3 (hashlib "sm3").
        assert_eq!(
            root.to_hex(),
            "087582051a0642db8f22152edc5de986198d091179ec5e811a5a70befe02ce2f"
        );
    }

    #[test]
    fn insert_then_delete_gives_empty_root() {
        let mut store = MemStore::new();
        let root = commit(&mut store, EMPTY_ROOT, vec![set("a", "1")]);
        assert_eq!(commit(&mut store, root, vec![del("a")]), EMPTY_ROOT);
        let root = commit(
            &mut store,
            EMPTY_ROOT,
            vec![set("a", "1"), set("b", "2"), set("c", "3")],
        );
        assert_eq!(
            commit(&mut store, root, vec![del("b"), del("a"), del("c")]),
            EMPTY_ROOT
        );
    }

    #[test]
    fn delete_restores_previous_root() {
        let mut store = MemStore::new();
        let only_a = commit(&mut store, EMPTY_ROOT, vec![set("A", "1")]);
        let ab = commit(&mut store, only_a, vec![set("B", "2")]);
        assert_ne!(ab, only_a);
        assert_eq!(commit(&mut store, ab, vec![del("B")]), only_a);
        // Deleting an absent key, and re-writing a value, change nothing.
        assert_eq!(commit(&mut store, ab, vec![del("C")]), ab);
        assert_eq!(commit(&mut store, ab, vec![set("A", "1")]), ab);
        // The old root is still readable.
        assert_eq!(get(&store, only_a, b"B").unwrap(), None);
        assert_eq!(get(&store, ab, b"B").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn last_update_of_a_key_wins_within_a_batch() {
        let mut store = MemStore::new();
        let root = commit(
            &mut store,
            EMPTY_ROOT,
            vec![
                set("a", "1"),
                set("a", "2"),
                del("b"),
                set("b", "3"),
                del("b"),
            ],
        );
        assert_eq!(get(&store, root, b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(get(&store, root, b"b").unwrap(), None);
        assert_eq!(root, commit(&mut store, EMPTY_ROOT, vec![set("a", "2")]));
    }

    #[test]
    fn value_limit() {
        let store = MemStore::new();
        let ups = vec![(b"k".to_vec(), Some(vec![0; MAX_VALUE_LEN + 1]))];
        assert!(matches!(
            apply(&store, EMPTY_ROOT, &ups),
            Err(StateError::ValueTooLarge { len, max: MAX_VALUE_LEN }) if len == MAX_VALUE_LEN + 1
        ));
        assert!(
            apply(
                &store,
                EMPTY_ROOT,
                &[(b"k".to_vec(), Some(vec![0; MAX_VALUE_LEN]))]
            )
            .is_ok()
        );
    }

    #[test]
    fn missing_node_is_an_error() {
        let mut store = MemStore::new();
        let root = commit(&mut store, EMPTY_ROOT, vec![set("a", "1"), set("b", "2")]);
        let empty = MemStore::new();
        assert!(
            matches!(get(&empty, root, b"a"), Err(StateError::MissingNode { hash }) if hash == root)
        );
        assert!(matches!(
            prove(&empty, root, b"a"),
            Err(StateError::MissingNode { .. })
        ));
        assert!(matches!(
            apply(&empty, root, &[set("c", "3")]),
            Err(StateError::MissingNode { .. })
        ));
    }

    #[test]
    fn proofs_inclusion_and_non_inclusion() {
        let mut store = MemStore::new();
        let ups: Updates = (0..64)
            .map(|i| set(&format!("k{i}"), &format!("v{i}")))
            .collect();
        let root = commit(&mut store, EMPTY_ROOT, ups);
        let p = prove(&store, root, b"k7").unwrap();
        verify_proof(root, b"k7", Some(b"v7"), &p).unwrap();
        let fault = |r: Result<(), StateError>| match r {
            Err(StateError::ProofInvalid { fault }) => fault,
            other => panic!("expected a proof error, got {other:?}"),
        };
        assert_eq!(
            fault(verify_proof(root, b"k7", Some(b"v8"), &p)),
            ProofFault::ValueMismatch
        );
        assert_eq!(
            fault(verify_proof(root, b"k7", None, &p)),
            ProofFault::KeyPresent
        );
        assert_eq!(
            fault(verify_proof(root, b"k8", Some(b"v7"), &p)),
            ProofFault::LeafKeyMismatch
        );
        assert!(matches!(
            fault(verify_proof(EMPTY_ROOT, b"k7", Some(b"v7"), &p)),
            ProofFault::RootMismatch { .. }
        ));
        let absent = prove(&store, root, b"nope").unwrap();
        verify_proof(root, b"nope", None, &absent).unwrap();
        assert_eq!(
            fault(verify_proof(root, b"nope", Some(b"x"), &absent)).clone(),
            if absent.leaf().is_some() {
                ProofFault::LeafKeyMismatch
            } else {
                ProofFault::KeyAbsent
            }
        );
    }
}
