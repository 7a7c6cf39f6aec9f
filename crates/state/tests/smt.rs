//! Property tests: the tree against a from-the-definition reference, order independence,
//! deletion, proofs (and their rejection when anything is wrong), and total decoders.

use std::collections::BTreeMap;

use crypto::Digest;
use proptest::prelude::*;
use state::{
    EMPTY_ROOT, MemStore, Node, NodeStore, Proof, StateError, apply, get, internal_hash, key_path,
    leaf_hash, prove, verify_proof,
};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The root straight from the definition: empty → zero, one pair → its leaf, else an internal
/// node over the two halves split on the next path bit.
fn reference_root(map: &Map) -> Digest {
    fn bit(d: &Digest, i: usize) -> bool {
        (d.0[i / 8] >> (7 - i % 8)) & 1 == 1
    }
    fn go(items: &[(Digest, Digest)], depth: usize) -> Digest {
        match items {
            [] => EMPTY_ROOT,
            [(k, v)] => leaf_hash(k, v),
            _ => {
                let (l, r): (Vec<_>, Vec<_>) = items.iter().partition(|(k, _)| !bit(k, depth));
                internal_hash(&go(&l, depth + 1), &go(&r, depth + 1))
            }
        }
    }
    let items: Vec<(Digest, Digest)> = map
        .iter()
        .map(|(k, v)| (key_path(k), key_path(v)))
        .collect();
    go(&items, 0)
}

fn commit(store: &mut MemStore, root: Digest, ups: &[(Vec<u8>, Option<Vec<u8>>)]) -> Digest {
    let batch = apply(store, root, ups).unwrap();
    store.write(batch.nodes).unwrap();
    batch.root
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    // A small key space so that updates hit existing keys and deletions hit present ones.
    (0u8..48).prop_map(|k| vec![k])
}

fn map_strategy() -> impl Strategy<Value = Map> {
    prop::collection::btree_map(small_key(), prop::collection::vec(any::<u8>(), 0..8), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn matches_reference_and_reads_back(map in map_strategy()) {
        let mut store = MemStore::new();
        let ups: Vec<_> = map.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let root = commit(&mut store, EMPTY_ROOT, &ups);
        prop_assert_eq!(root, reference_root(&map));
        for k in 0u8..48 {
            prop_assert_eq!(get(&store, root, &[k]).unwrap(), map.get(&vec![k]).cloned());
        }
    }

    #[test]
    fn insertion_order_and_batching_do_not_matter(
        map in map_strategy(),
        perm in prop::collection::vec(any::<prop::sample::Index>(), 40),
        chunk in 1usize..8,
    ) {
        let mut ups: Vec<_> = map.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        for (i, idx) in perm.iter().enumerate().take(ups.len()) {
            let j = idx.index(ups.len());
            ups.swap(i, j);
        }
        let mut store = MemStore::new();
        let mut root = EMPTY_ROOT;
        for c in ups.chunks(chunk) {
            root = commit(&mut store, root, c);
        }
        prop_assert_eq!(root, reference_root(&map));
    }

    #[test]
    fn random_update_sequences_match_reference(
        ops in prop::collection::vec(
            (small_key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..4))),
            0..120,
        ),
        chunk in 1usize..10,
    ) {
        let mut store = MemStore::new();
        let mut root = EMPTY_ROOT;
        let mut model = Map::new();
        for c in ops.chunks(chunk) {
            root = commit(&mut store, root, c);
            for (k, v) in c {
                match v {
                    Some(v) => { model.insert(k.clone(), v.clone()); }
                    None => { model.remove(k); }
                }
            }
            prop_assert_eq!(root, reference_root(&model));
        }
        // Deleting everything gives the empty root.
        let dels: Vec<_> = model.keys().map(|k| (k.clone(), None)).collect();
        prop_assert_eq!(commit(&mut store, root, &dels), EMPTY_ROOT);
    }

    /// The nodes an update emits are exactly the new nodes of the new tree: each stored under its
    /// own hash, none twice, each reachable from the new root, and a key set to the value it
    /// already had emits no internal node (the old path stands).
    #[test]
    fn emitted_nodes_are_the_new_tree_s_own(
        map in map_strategy(),
        ops in prop::collection::vec(
            (small_key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..4))),
            1..30,
        ),
    ) {
        let mut store = MemStore::new();
        let ups: Vec<_> = map.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let root = commit(&mut store, EMPTY_ROOT, &ups);
        let batch = apply(&store, root, &ops).unwrap();
        let mut emitted = BTreeMap::new();
        for (h, n) in &batch.nodes {
            let own = match n {
                Node::Leaf { key_hash, value } => leaf_hash(key_hash, &key_path(value)),
                Node::Internal { left, right } => internal_hash(left, right),
                _ => unreachable!("a node kind this test does not know"),
            };
            prop_assert_eq!(*h, own);
            prop_assert!(emitted.insert(*h, n.clone()).is_none(), "node {} emitted twice", h);
        }
        // Walk the new tree: every emitted node is met.
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![batch.root];
        while let Some(h) = stack.pop() {
            if h == EMPTY_ROOT {
                continue;
            }
            let n = match emitted.get(&h) {
                Some(n) => n.clone(),
                None => store.get(&h).unwrap().expect("a node of the new tree is stored or emitted"),
            };
            seen.insert(h);
            if let Node::Internal { left, right } = n {
                stack.push(left);
                stack.push(right);
            }
        }
        for h in emitted.keys() {
            prop_assert!(seen.contains(h), "emitted node {} is not in the new tree", h);
        }
        // Setting present keys to their own values: the root stands and no internal node is new.
        let same: Vec<_> = map.iter().take(5).map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let again = apply(&store, root, &same).unwrap();
        prop_assert_eq!(again.root, root);
        let only_leaves = again.nodes.iter().all(|(_, n)| matches!(n, Node::Leaf { .. }));
        prop_assert!(only_leaves, "a key set to its own value emitted an internal node");
        for (h, n) in &again.nodes {
            let stored = store.get(h).unwrap();
            prop_assert_eq!(stored.as_ref(), Some(n), "a new node for an unchanged key");
        }
    }

    #[test]
    fn proofs_verify_and_wrong_claims_fail(map in map_strategy(), other in any::<u8>()) {
        let mut store = MemStore::new();
        let ups: Vec<_> = map.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let root = commit(&mut store, EMPTY_ROOT, &ups);
        let wrong_root = commit(&mut store, root, &[(vec![200, other], Some(vec![1]))]);
        for k in 0u8..48 {
            let key = vec![k];
            let proof = prove(&store, root, &key).unwrap();
            // Round trip through the wire encoding.
            prop_assert_eq!(&Proof::decode(&proof.encode()).unwrap(), &proof);
            match map.get(&key) {
                Some(v) => {
                    verify_proof(root, &key, Some(v), &proof).unwrap();
                    let mut wrong = v.clone();
                    wrong.push(other);
                    prop_assert!(verify_proof(root, &key, Some(&wrong), &proof).is_err());
                    prop_assert!(verify_proof(root, &key, None, &proof).is_err());
                    prop_assert!(verify_proof(wrong_root, &key, Some(v), &proof).is_err());
                    // The same proof for another key fails.
                    let k2 = vec![k.wrapping_add(1 + other % 40) % 48];
                    prop_assert!(verify_proof(root, &k2, Some(v), &proof).is_err());
                    if map.contains_key(&k2) {
                        // Absence of a present key is never provable.
                        prop_assert!(verify_proof(root, &k2, None, &proof).is_err());
                    }
                }
                None => {
                    verify_proof(root, &key, None, &proof).unwrap();
                    prop_assert!(verify_proof(root, &key, Some(&[other]), &proof).is_err());
                    if wrong_root != root {
                        prop_assert!(verify_proof(wrong_root, &key, None, &proof).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn tampered_proofs_fail(map in map_strategy(), k in 0u8..48, pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut store = MemStore::new();
        let ups: Vec<_> = map.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let root = commit(&mut store, EMPTY_ROOT, &ups);
        let key = vec![k];
        let value = map.get(&key).map(Vec::as_slice);
        let mut bytes = prove(&store, root, &key).unwrap().encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        // A flipped byte either fails to decode or yields a proof that does not verify.
        if let Ok(tampered) = Proof::decode(&bytes) {
            prop_assert!(verify_proof(root, &key, value, &tampered).is_err());
        }
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(node) = Node::decode(&bytes) {
            prop_assert_eq!(node.encode(), bytes.clone());
        }
        if let Ok(proof) = Proof::decode(&bytes) {
            prop_assert_eq!(proof.encode(), bytes);
        }
    }

    #[test]
    fn node_round_trip(key_hash in any::<[u8; 32]>(), value in prop::collection::vec(any::<u8>(), 0..64)) {
        let n = Node::Leaf { key_hash: Digest(key_hash), value };
        prop_assert_eq!(Node::decode(&n.encode()).unwrap(), n);
    }
}

#[test]
fn decoders_on_structured_garbage() {
    // Valid prefixes with wrong lengths: the random-bytes property rarely builds these.
    for tag in [0u8, 1, 2, 0xff] {
        for len in [0usize, 1, 32, 33, 36, 64, 65, 66, 100] {
            let mut b = vec![tag];
            b.resize(len.max(1), 0x5a);
            let _ = Node::decode(&b);
            let _ = Proof::decode(&b);
        }
    }
    let mut huge = vec![0u8];
    huge.extend_from_slice(&[0xff, 0xff]);
    assert!(matches!(
        Proof::decode(&huge),
        Err(StateError::Decode { .. })
    ));
}
