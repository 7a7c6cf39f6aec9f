//! Where nodes live: the [`NodeStore`] trait and the in-memory [`MemStore`].

use std::collections::HashMap;

use crypto::Digest;

use crate::error::StateError;
use crate::node::Node;

/// A content-addressed node store: each node is kept under its own hash.
///
/// Tree operations only read through [`NodeStore::get`]; an update returns the nodes it created
/// (see [`crate::apply`]) and the caller writes them with [`NodeStore::write`], so that a
/// persistent backend can commit one block's state change as one atomic write batch.
pub trait NodeStore {
    /// Returns the node stored under `hash`, or `None` if there is none.
    fn get(&self, hash: &Digest) -> Result<Option<Node>, StateError>;

    /// Stores `nodes` (each under its hash) all at once. Writing a node that is already present
    /// is allowed and changes nothing, since a hash names exactly one node.
    fn write(&mut self, nodes: Vec<(Digest, Node)>) -> Result<(), StateError>;
}

/// A [`NodeStore`] in a hash map, for tests, benchmarks and tools. It never forgets a node: old
/// roots stay readable.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    nodes: HashMap<Digest, Node>,
}

impl MemStore {
    /// Returns an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of nodes held.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Returns whether the store holds no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl NodeStore for MemStore {
    fn get(&self, hash: &Digest) -> Result<Option<Node>, StateError> {
        Ok(self.nodes.get(hash).cloned())
    }

    fn write(&mut self, nodes: Vec<(Digest, Node)>) -> Result<(), StateError> {
        self.nodes.reserve(nodes.len());
        self.nodes.extend(nodes);
        Ok(())
    }
}
