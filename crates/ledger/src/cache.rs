//! A read cache of state-tree nodes. Nodes are content-addressed (stored under their SM3 hash)
//! and never change, so a cached node can never be stale: the cache only saves RocksDB reads and
//! decoding on the paths every admission and execution walks (the top of the tree is shared).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

use crypto::Digest;
use state::{Node, NodeStore, StateError};
use storage::{ChainStore, KvBackend};

/// Nodes kept at most by default, over the cache's two generations (each holds half); a node
/// sets its own with `[storage] state_cache_nodes` ([`NodeCache::set_capacity`]).
pub const NODE_CACHE_CAPACITY: usize = 200_000;

/// The smallest capacity taken: the top levels every admission walks, many times over.
pub const MIN_NODE_CACHE_CAPACITY: usize = 1_000;

/// The cache itself, shared by all readers. Two generations: nodes go into the young one;
/// when it holds half the capacity it becomes the old one (the previous old one is dropped),
/// and a node found in the old generation moves back into the young one. What the recent
/// blocks walk (the top levels, the paths their admissions and executions read) stays, and
/// the cache never starts over from nothing.
#[derive(Debug, Default)]
pub struct NodeCache {
    gens: Mutex<Generations>,
}

#[derive(Debug)]
struct Generations {
    young: HashMap<Digest, Node, DigestHash>,
    old: HashMap<Digest, Node, DigestHash>,
    capacity: usize,
}

impl Default for Generations {
    fn default() -> Self {
        Generations {
            young: HashMap::default(),
            old: HashMap::default(),
            capacity: NODE_CACHE_CAPACITY,
        }
    }
}

impl Generations {
    fn insert(&mut self, hash: Digest, node: Node) {
        if self.young.len() >= self.capacity / 2 {
            self.old = std::mem::take(&mut self.young);
            // The new young generation gets the old one's hasher keys (any would do).
            self.young = HashMap::with_hasher(self.old.hasher().clone());
        }
        self.young.insert(hash, node);
    }
}

impl NodeCache {
    fn get(&self, hash: &Digest) -> Option<Node> {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = g.young.get(hash) {
            return Some(n.clone());
        }
        let n = g.old.remove(hash)?;
        g.insert(*hash, n.clone());
        Some(n)
    }

    fn put(&self, hash: Digest, node: Node) {
        self.gens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash, node);
    }

    /// Holds the nodes a block just committed wrote (call it only once the write succeeded):
    /// the next block's admission and execution walk exactly these paths, which would
    /// otherwise be read back from the store one by one.
    pub fn committed(&self, nodes: Vec<(Digest, Node)>) {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        for (h, n) in nodes {
            g.insert(h, n);
        }
    }

    /// Keeps at most `capacity` nodes from now on (at least [`MIN_NODE_CACHE_CAPACITY`]); a
    /// generation larger than half of it is dropped (with its table), so the bound holds at
    /// once. A node sets it once, right after opening its store.
    pub fn set_capacity(&self, capacity: usize) {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        g.capacity = capacity.max(MIN_NODE_CACHE_CAPACITY);
        let half = g.capacity / 2;
        if g.old.len() > half {
            g.old = HashMap::with_hasher(g.old.hasher().clone());
        }
        if g.young.len() > half {
            g.young = HashMap::with_hasher(g.young.hasher().clone());
        }
    }

    /// The most nodes kept.
    pub fn capacity(&self) -> usize {
        self.gens.lock().unwrap_or_else(|e| e.into_inner()).capacity
    }

    /// Nodes held.
    pub fn len(&self) -> usize {
        let g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        g.young.len() + g.old.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The hash of a map keyed by SM3 digests: a folded multiply of the digest's first 16 bytes
/// with two keys drawn at random per map (from the standard library's random hasher keys).
/// Digests are already uniform, so SipHash's work over all 32 bytes buys nothing; the secret
/// keys keep an adversary who grinds digests (state keys are theirs to choose) from aiming
/// them at one bucket.
#[derive(Debug, Clone)]
struct DigestHash {
    k0: u64,
    k1: u64,
}

impl Default for DigestHash {
    fn default() -> Self {
        let r = std::collections::hash_map::RandomState::new();
        DigestHash {
            k0: r.hash_one(0x5eed_u64),
            k1: r.hash_one(0x5eed_5eed_u64),
        }
    }
}

impl BuildHasher for DigestHash {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            k0: self.k0,
            k1: self.k1,
            state: 0,
        }
    }
}

struct FoldHasher {
    k0: u64,
    k1: u64,
    state: u64,
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        // A digest arrives as its 32 bytes (after the slice's length, folded in below).
        let word = |i: usize| {
            let mut w = [0u8; 8];
            if let Some(b) = bytes.get(i..i + 8) {
                w.copy_from_slice(b);
            } else if let Some(b) = bytes.get(i..) {
                w[..b.len()].copy_from_slice(b);
            }
            u64::from_le_bytes(w)
        };
        let x = u128::from(word(0) ^ self.k0 ^ self.state) * u128::from(word(8) ^ self.k1);
        self.state = (x as u64) ^ ((x >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.state ^= n as u64;
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// A read-only [`NodeStore`] over the committed nodes, through the cache.
#[derive(Debug)]
pub struct CachedNodes<'a, B: KvBackend> {
    store: &'a ChainStore<B>,
    cache: &'a NodeCache,
}

impl<'a, B: KvBackend> CachedNodes<'a, B> {
    /// Reads `store`'s state nodes through `cache`.
    pub fn new(store: &'a ChainStore<B>, cache: &'a NodeCache) -> Self {
        Self { store, cache }
    }
}

impl<B: KvBackend> NodeStore for CachedNodes<'_, B> {
    fn get(&self, hash: &Digest) -> Result<Option<Node>, StateError> {
        if let Some(n) = self.cache.get(hash) {
            return Ok(Some(n));
        }
        let node = self.store.state_nodes().get(hash)?;
        if let Some(n) = &node {
            self.cache.put(*hash, n.clone());
        }
        Ok(node)
    }

    fn write(&mut self, nodes: Vec<(Digest, Node)>) -> Result<(), StateError> {
        // Committed nodes are written only with their block (ChainStore::commit_block).
        self.store.state_nodes().write(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::MemBackend;

    #[test]
    fn cached_reads_equal_store_reads() {
        let store = ChainStore::new(MemBackend::new(), types::Limits::default());
        let cache = NodeCache::default();
        let ups: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            (0..50u8).map(|i| (vec![i], Some(vec![i, i]))).collect();
        let batch = state::apply(&store.state_nodes(), state::EMPTY_ROOT, &ups).unwrap();
        let root = batch.root;
        let mut w = storage::WriteBatch::new();
        for (h, n) in &batch.nodes {
            w.put(storage::Table::StateNodes, h.0.to_vec(), n.encode());
        }
        store.backend().write(w).unwrap();
        let cached = CachedNodes::new(&store, &cache);
        for i in 0..50u8 {
            assert_eq!(
                state::get(&cached, root, &[i]).unwrap(),
                state::get(&store.state_nodes(), root, &[i]).unwrap()
            );
        }
        assert!(!cache.is_empty());
        // Second pass from the cache gives the same answers.
        for i in 0..50u8 {
            assert_eq!(state::get(&cached, root, &[i]).unwrap(), Some(vec![i, i]));
        }
    }

    #[test]
    fn committed_nodes_are_served_without_a_store_read_and_stay_bounded() {
        let store = ChainStore::new(MemBackend::new(), types::Limits::default());
        let ups: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            (0..50u8).map(|i| (vec![i], Some(vec![i, i]))).collect();
        let batch = state::apply(&store.state_nodes(), state::EMPTY_ROOT, &ups).unwrap();
        let cache = NodeCache::default();
        cache.committed(batch.nodes.clone());
        assert_eq!(cache.len(), batch.nodes.len());
        // The store holds none of them: every answer comes from the cache, and equals the
        // value written.
        let cached = CachedNodes::new(&store, &cache);
        for i in 0..50u8 {
            assert_eq!(
                state::get(&cached, batch.root, &[i]).unwrap(),
                Some(vec![i, i])
            );
        }
        assert_eq!(
            state::get(&store.state_nodes(), batch.root, &[0])
                .ok()
                .flatten(),
            None
        );
        // Bounded: a batch past the capacity keeps at most the capacity.
        let (h, n) = batch.nodes[0].clone();
        let many: Vec<(Digest, Node)> = (0..NODE_CACHE_CAPACITY as u32 + 10)
            .map(|i| {
                let mut d = h.0;
                d[..4].copy_from_slice(&i.to_be_bytes());
                (Digest(d), n.clone())
            })
            .collect();
        cache.committed(many.clone());
        assert!(cache.len() <= NODE_CACHE_CAPACITY);
        // ... and the most recent half of it: the newest node is served, an old one read
        // again moves to the young generation.
        let cached = CachedNodes::new(&store, &cache);
        let newest = many.last().unwrap().0;
        assert!(cached.get(&newest).unwrap().is_some());
    }

    /// The cache keeps what was used recently instead of starting over when full: a node
    /// read in every "block" survives any number of generations of other nodes.
    #[test]
    fn a_node_read_in_every_block_survives_generations_of_others() {
        let store = ChainStore::new(MemBackend::new(), types::Limits::default());
        let cache = NodeCache::default();
        let hot = Digest([0xAB; 32]);
        let node = Node::Internal {
            left: Digest([1; 32]),
            right: Digest([2; 32]),
        };
        cache.committed(vec![(hot, node.clone())]);
        let cached = CachedNodes::new(&store, &cache);
        let mut i = 0u32;
        for _block in 0..8 {
            // A quarter of the capacity of other nodes per block, then the hot read.
            let others: Vec<(Digest, Node)> = (0..NODE_CACHE_CAPACITY / 4)
                .map(|_| {
                    i += 1;
                    let mut d = [0u8; 32];
                    d[..4].copy_from_slice(&i.to_be_bytes());
                    (Digest(d), node.clone())
                })
                .collect();
            cache.committed(others);
            assert_eq!(
                cached.get(&hot).unwrap(),
                Some(node.clone()),
                "block {_block}"
            );
            assert!(cache.len() <= NODE_CACHE_CAPACITY);
        }
        // One not read again is gone after two generations.
        let first = {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&1u32.to_be_bytes());
            Digest(d)
        };
        assert_eq!(cached.get(&first).unwrap(), None);
    }

    /// A capacity set by the node's configuration bounds the cache the same way, and a smaller
    /// one than what is held drops the excess at once.
    #[test]
    fn a_configured_capacity_bounds_the_cache() {
        let cache = NodeCache::default();
        let node = Node::Internal {
            left: Digest([1; 32]),
            right: Digest([2; 32]),
        };
        let batch = |from: u32, n: u32| -> Vec<(Digest, Node)> {
            (from..from + n)
                .map(|i| {
                    let mut d = [0u8; 32];
                    d[..4].copy_from_slice(&i.to_be_bytes());
                    (Digest(d), node.clone())
                })
                .collect()
        };
        cache.committed(batch(0, 30_000));
        assert_eq!(cache.len(), 30_000);
        cache.set_capacity(10_000);
        assert_eq!(cache.capacity(), 10_000);
        assert_eq!(cache.len(), 0);
        cache.committed(batch(100_000, 25_000));
        assert!(cache.len() <= 10_000, "{}", cache.len());
        cache.set_capacity(10);
        assert_eq!(cache.capacity(), MIN_NODE_CACHE_CAPACITY);
        cache.set_capacity(1_000_000);
        cache.committed(batch(200_000, 300_000));
        assert!(cache.len() > NODE_CACHE_CAPACITY && cache.len() <= 1_000_000);
        // Lowered while what is held still fits: the bound holds from then on, not from the
        // next roll (review i19-s38b I2).
        let lowered = NodeCache::default();
        lowered.committed(batch(0, 150_000));
        lowered.set_capacity(160_000);
        let mut most = lowered.len();
        for k in 150_000..300_000 {
            lowered.committed(batch(k, 1));
            most = most.max(lowered.len());
        }
        assert!(most <= 160_000, "held {most} past the capacity of 160 000");
    }

    #[test]
    fn the_digest_hash_depends_on_every_key_half_and_on_the_keys() {
        let a = DigestHash { k0: 1, k1: 2 };
        let b = DigestHash { k0: 3, k1: 2 };
        let d = Digest([7; 32]);
        let mut e = d;
        e.0[9] ^= 1;
        let mut f = d;
        f.0[1] ^= 1;
        assert_ne!(a.hash_one(d), a.hash_one(e));
        assert_ne!(a.hash_one(d), a.hash_one(f));
        assert_ne!(a.hash_one(d), b.hash_one(d));
        assert_eq!(a.hash_one(d), a.hash_one(d));
    }
}
