//! A read cache of state-tree nodes. Nodes are content-addressed (stored under their SM3 hash)
//! and never change, so a cached node can never be stale: the cache only saves RocksDB reads and
//! decoding on the paths every admission and execution walks (the top of the tree is shared).

use std::collections::HashMap;
use std::sync::Mutex;

use crypto::Digest;
use state::{Node, NodeStore, StateError};
use storage::{ChainStore, KvBackend};

/// Nodes kept at most; when full the cache starts over (the hot top levels refill at once).
pub const NODE_CACHE_CAPACITY: usize = 200_000;

/// The cache itself, shared by all readers.
#[derive(Debug, Default)]
pub struct NodeCache {
    nodes: Mutex<HashMap<Digest, Node>>,
}

impl NodeCache {
    fn get(&self, hash: &Digest) -> Option<Node> {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    fn put(&self, hash: Digest, node: Node) {
        let mut m = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= NODE_CACHE_CAPACITY {
            m.clear();
        }
        m.insert(hash, node);
    }

    /// Holds the nodes a block just committed wrote (call it only once the write succeeded):
    /// the next block's admission and execution walk exactly these paths, which would
    /// otherwise be read back from the store one by one.
    pub fn committed(&self, nodes: Vec<(Digest, Node)>) {
        let mut m = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if m.len().saturating_add(nodes.len()) > NODE_CACHE_CAPACITY {
            m.clear();
        }
        // A block larger than the whole cache keeps only what fits.
        m.extend(nodes.into_iter().take(NODE_CACHE_CAPACITY));
    }

    /// Nodes held.
    pub fn len(&self) -> usize {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        // Bounded: a batch past the capacity starts the cache over.
        let (h, n) = batch.nodes[0].clone();
        let many: Vec<(Digest, Node)> = (0..NODE_CACHE_CAPACITY as u32 + 10)
            .map(|i| {
                let mut d = h.0;
                d[..4].copy_from_slice(&i.to_be_bytes());
                (Digest(d), n.clone())
            })
            .collect();
        cache.committed(many);
        assert!(cache.len() <= NODE_CACHE_CAPACITY);
    }
}
