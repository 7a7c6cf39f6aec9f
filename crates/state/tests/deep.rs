//! The update's edges (review i19-state, stop 38): splits at the deepest level (bit 255), one
//! and eight at once (eight nodes on each of 256 levels: the lanes at every level), and a
//! known-answer root over keys and values of many lengths, computed outside this code. The
//! twins' key hashes have no known preimage; they are written to the store directly, as a tree
//! holding them would be.
use crypto::Digest;
use state::{
    EMPTY_ROOT, MemStore, Node, NodeStore, apply, get, internal_hash, key_path, leaf_hash,
};

fn bit(d: &Digest, i: usize) -> bool {
    (d.0[i / 8] >> (7 - i % 8)) & 1 == 1
}

/// The canonical root of (key_hash, value_hash) pairs, from the definition.
fn reference(items: &mut [(Digest, Digest)]) -> Digest {
    fn go(items: &[(Digest, Digest)], depth: usize) -> Digest {
        match items {
            [] => EMPTY_ROOT,
            [(k, v)] => leaf_hash(k, v),
            _ => {
                let s = items.partition_point(|(k, _)| !bit(k, depth));
                internal_hash(&go(&items[..s], depth + 1), &go(&items[s..], depth + 1))
            }
        }
    }
    items.sort();
    go(items, 0)
}

#[test]
fn deepest_split_at_bit_255() {
    let mut store = MemStore::new();
    let k = b"deep".to_vec();
    let mut twin = key_path(&k);
    twin.0[31] ^= 1;
    let leaf = Node::Leaf {
        key_hash: twin,
        value: vec![7],
    };
    let root = leaf.hash();
    store.write(vec![(root, leaf)]).unwrap();
    let batch = apply(&store, root, &[(k.clone(), Some(vec![1]))]).unwrap();
    // 255 one-child internal nodes, the split at depth 255, and the new leaf.
    assert_eq!(batch.nodes.len(), 257);
    let want = reference(&mut [(twin, key_path(&[7])), (key_path(&k), key_path(&[1]))]);
    assert_eq!(batch.root, want);
    for (h, n) in &batch.nodes {
        assert_eq!(*h, n.hash());
    }
    store.write(batch.nodes).unwrap();
    assert_eq!(get(&store, want, &k).unwrap(), Some(vec![1]));
    // Deleting it again: the twin moves back up to the root, nothing new is written.
    let back = apply(&store, want, &[(k, None)]).unwrap();
    assert_eq!(back.root, root);
    assert!(back.nodes.is_empty());
}

#[test]
fn eight_deepest_splits_in_one_batch() {
    // Eight keys, each beside a twin differing in bit 255: 8 nodes on every one of 256 levels.
    let mut store = MemStore::new();
    let keys: Vec<Vec<u8>> = (0..8).map(|i| format!("deep{i}").into_bytes()).collect();
    let mut items: Vec<(Digest, Digest)> = Vec::new();
    let mut twins = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let mut t = key_path(k);
        t.0[31] ^= 1;
        twins.push(t);
        items.push((t, key_path(&[i as u8])));
    }
    // Store the canonical tree of the twins (built with the reference, written by hand).
    fn write_tree(store: &mut MemStore, items: &[(Digest, Vec<u8>)], depth: usize) -> Digest {
        match items {
            [] => EMPTY_ROOT,
            [(k, v)] => {
                let n = Node::Leaf {
                    key_hash: *k,
                    value: v.clone(),
                };
                let h = n.hash();
                store.write(vec![(h, n)]).unwrap();
                h
            }
            _ => {
                let s = items.partition_point(|(k, _)| !bit(k, depth));
                let l = write_tree(store, &items[..s], depth + 1);
                let r = write_tree(store, &items[s..], depth + 1);
                let n = Node::Internal { left: l, right: r };
                let h = n.hash();
                store.write(vec![(h, n)]).unwrap();
                h
            }
        }
    }
    let mut raw: Vec<(Digest, Vec<u8>)> = twins
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, vec![i as u8]))
        .collect();
    raw.sort();
    let root = write_tree(&mut store, &raw, 0);
    assert_eq!(root, reference(&mut items.clone()));
    let ups: Vec<_> = keys.iter().map(|k| (k.clone(), Some(k.clone()))).collect();
    let batch = apply(&store, root, &ups).unwrap();
    for k in &keys {
        items.push((key_path(k), key_path(k)));
    }
    assert_eq!(batch.root, reference(&mut items));
    for (h, n) in &batch.nodes {
        assert_eq!(*h, n.hash());
    }
    store.write(batch.nodes).unwrap();
    // The same values again: the root stands and no internal node is written.
    let again = apply(&store, batch.root, &ups).unwrap();
    assert_eq!(again.root, batch.root);
    assert!(
        again
            .nodes
            .iter()
            .all(|(_, n)| matches!(n, Node::Leaf { .. }))
    );
    // Deleted: back to the twins' tree; the nodes above the twins are rebuilt (as in 736be40)
    // and are the ones already stored.
    let dels: Vec<_> = keys.iter().map(|k| (k.clone(), None)).collect();
    let back = apply(&store, batch.root, &dels).unwrap();
    assert_eq!(back.root, root);
    for (h, n) in &back.nodes {
        assert_eq!(store.get(h).unwrap().as_ref(), Some(n));
    }
}

/// A known-answer root over keys of 4 to ~300 bytes and values at SM3's padding edges, the lane
/// limit and MAX_VALUE_LEN, inserted in several batches. The expected root comes from an
/// independent reference over OpenSSL's SM3 (Python's `hashlib.new("sm3")`), the definition
/// written out: `sm3 = lambda b: hashlib.new("sm3", b).digest()`; items = sorted
/// `(sm3(key), sm3(value))`; `go([]) = 32 zero bytes`, `go([(k, v)]) = sm3(b"\0" + k + v)`,
/// else `sm3(b"\1" + go(left) + go(right))` split on the path bit (most significant first).
#[test]
fn known_answer_root_varied_lengths() {
    const L: [usize; 13] = [
        0,
        1,
        55,
        56,
        63,
        64,
        65,
        119,
        120,
        1015,
        1016,
        2000,
        1 << 20,
    ];
    let ups: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..64usize)
        .map(|i| {
            let k = [
                b"kat".to_vec(),
                i.to_string().repeat(1 + (i % 5) * 30).into_bytes(),
            ]
            .concat();
            (k, Some(vec![i as u8; L[i % L.len()]]))
        })
        .collect();
    let mut store = MemStore::new();
    let mut root = EMPTY_ROOT;
    for chunk in ups.chunks(9) {
        let b = apply(&store, root, chunk).unwrap();
        store.write(b.nodes).unwrap();
        root = b.root;
    }
    assert_eq!(
        root.to_hex(),
        "f660ed28957b42e4fa56701af5d9221f524d40655efd3db26c6052989dbe8227"
    );
    assert_eq!(
        apply(&MemStore::new(), EMPTY_ROOT, &ups).unwrap().root,
        root
    );
}
