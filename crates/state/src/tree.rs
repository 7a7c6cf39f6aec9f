//! Reading and updating the tree: [`apply`], [`get`], [`prove`].

use crypto::Digest;
use crypto_sm::sm3::sm3;

use crate::error::StateError;
use crate::node::{EMPTY_ROOT, MAX_VALUE_LEN, Node, internal_hash, key_path, leaf_hash, path_bit};
use crate::proof::{LeafProof, Proof};
use crate::store::NodeStore;

/// The number of path bits, and so the deepest level a node can sit at.
const DEPTH: usize = 256;

/// The result of [`apply`]: the new root and the nodes to write so that it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateBatch {
    /// The root after the updates.
    pub root: Digest,
    /// The nodes created by the updates, each with its hash, in no particular order. Nodes that
    /// only the old root needed are not listed (nothing is deleted: pruning is the caller's).
    pub nodes: Vec<(Digest, Node)>,
}

/// One key's change, by path.
struct Update<'a> {
    key_hash: Digest,
    value: Option<&'a [u8]>,
}

/// A leaf of the subtree being rebuilt; `stored` is the hash of a leaf that is already stored.
struct LeafRef<'a> {
    key_hash: Digest,
    value: &'a [u8],
    stored: Option<Digest>,
}

/// What an updated subtree became.
#[derive(Clone, Copy)]
enum Sub {
    Empty,
    Leaf(Digest),
    Internal(Digest),
    /// Not touched by the updates; its kind is read only if needed.
    Unchanged(Digest),
}

impl Sub {
    fn hash(self) -> Digest {
        match self {
            Sub::Empty => EMPTY_ROOT,
            Sub::Leaf(h) | Sub::Internal(h) | Sub::Unchanged(h) => h,
        }
    }
}

fn load<S: NodeStore + ?Sized>(store: &S, hash: &Digest) -> Result<Node, StateError> {
    store
        .get(hash)?
        .ok_or(StateError::MissingNode { hash: *hash })
}

struct Updater<'s, S: ?Sized> {
    store: &'s S,
    out: Vec<(Digest, Node)>,
}

impl<S: NodeStore + ?Sized> Updater<'_, S> {
    /// Applies `ups` (sorted by path, one per path, all under this subtree's prefix) to the
    /// subtree `hash` at `depth`.
    fn update(
        &mut self,
        hash: Digest,
        depth: usize,
        ups: &[Update<'_>],
    ) -> Result<Sub, StateError> {
        if hash == EMPTY_ROOT {
            if ups.is_empty() {
                return Ok(Sub::Empty);
            }
            let leaves: Vec<LeafRef<'_>> = ups
                .iter()
                .filter_map(|u| {
                    u.value.map(|value| LeafRef {
                        key_hash: u.key_hash,
                        value,
                        stored: None,
                    })
                })
                .collect();
            return self.build(depth, &leaves);
        }
        if ups.is_empty() {
            return Ok(Sub::Unchanged(hash));
        }
        match load(self.store, &hash)? {
            Node::Leaf { key_hash, value } => {
                // Merge the stored pair with the updates, the updates winning, and rebuild.
                let overridden = ups.binary_search_by(|u| u.key_hash.cmp(&key_hash)).is_ok();
                let mut leaves: Vec<LeafRef<'_>> = Vec::with_capacity(ups.len() + 1);
                let mut pending = (!overridden).then_some(LeafRef {
                    key_hash,
                    value: &value,
                    stored: Some(hash),
                });
                for u in ups {
                    if let Some(p) = pending.take_if(|p| p.key_hash < u.key_hash) {
                        leaves.push(p);
                    }
                    if let Some(value) = u.value {
                        leaves.push(LeafRef {
                            key_hash: u.key_hash,
                            value,
                            stored: None,
                        });
                    }
                }
                leaves.extend(pending);
                self.build(depth, &leaves)
            }
            Node::Internal { left, right } => {
                // The deepest internal node sits at depth 255 and splits on bit 255.
                if depth >= DEPTH {
                    return Err(StateError::Malformed { hash, depth });
                }
                let split = ups.partition_point(|u| !path_bit(&u.key_hash, depth));
                let (lu, ru) = ups.split_at(split);
                let l = self.update(left, depth + 1, lu)?;
                let r = self.update(right, depth + 1, ru)?;
                self.join(hash, depth, (left, right), l, r)
            }
        }
    }

    /// Puts two updated children back together in canonical form.
    fn join(
        &mut self,
        old_hash: Digest,
        depth: usize,
        old: (Digest, Digest),
        l: Sub,
        r: Sub,
    ) -> Result<Sub, StateError> {
        let only = match (l, r) {
            (Sub::Empty, Sub::Empty) => return Ok(Sub::Empty),
            (Sub::Empty, only) | (only, Sub::Empty) => Some(only),
            _ => None,
        };
        if let Some(only) = only {
            // A lone leaf moves up; a lone internal node stays below a one-child node.
            let only = match only {
                Sub::Unchanged(h) => match load(self.store, &h)? {
                    Node::Leaf { .. } => Sub::Leaf(h),
                    Node::Internal { .. } => Sub::Internal(h),
                },
                other => other,
            };
            if let Sub::Leaf(h) = only {
                return Ok(Sub::Leaf(h));
            }
        }
        let (lh, rh) = (l.hash(), r.hash());
        if (lh, rh) == old {
            return Ok(Sub::Internal(old_hash));
        }
        if depth >= DEPTH {
            return Err(StateError::Malformed {
                hash: old_hash,
                depth,
            });
        }
        Ok(self.internal(lh, rh))
    }

    fn internal(&mut self, left: Digest, right: Digest) -> Sub {
        let h = internal_hash(&left, &right);
        self.out.push((h, Node::Internal { left, right }));
        Sub::Internal(h)
    }

    /// Builds the canonical subtree at `depth` holding exactly `leaves` (sorted, distinct paths,
    /// all under this subtree's prefix).
    fn build(&mut self, depth: usize, leaves: &[LeafRef<'_>]) -> Result<Sub, StateError> {
        match leaves {
            [] => Ok(Sub::Empty),
            [leaf] => {
                if let Some(h) = leaf.stored {
                    return Ok(Sub::Leaf(h));
                }
                let h = leaf_hash(&leaf.key_hash, &sm3(leaf.value));
                self.out.push((
                    h,
                    Node::Leaf {
                        key_hash: leaf.key_hash,
                        value: leaf.value.to_vec(),
                    },
                ));
                Ok(Sub::Leaf(h))
            }
            _ => {
                if depth >= DEPTH {
                    // Two distinct 256-bit paths part before bit 256; reaching here means the
                    // store holds a leaf off its own path.
                    return Err(StateError::Malformed {
                        hash: EMPTY_ROOT,
                        depth,
                    });
                }
                let split = leaves.partition_point(|l| !path_bit(&l.key_hash, depth));
                let (ll, rl) = leaves.split_at(split);
                let l = self.build(depth + 1, ll)?;
                let r = self.build(depth + 1, rl)?;
                Ok(self.internal(l.hash(), r.hash()))
            }
        }
    }
}

/// Applies `updates` to the tree at `root`: `Some(value)` sets a key, `None` deletes it (deleting
/// an absent key changes nothing). If a key appears more than once, its last update wins.
///
/// Reads only the nodes on the updated paths, so the cost is O(k log n) hashes and reads for k
/// updates in a tree of n keys (paths shared by several updates are rebuilt once). Returns the new
/// root and the nodes to write; the store is not modified, so nothing changes if the caller drops
/// the batch. The root depends only on the resulting set of pairs, never on history.
pub fn apply<S: NodeStore + ?Sized>(
    store: &S,
    root: Digest,
    updates: &[(Vec<u8>, Option<Vec<u8>>)],
) -> Result<UpdateBatch, StateError> {
    let mut ups: Vec<Update<'_>> = Vec::with_capacity(updates.len());
    for (key, value) in updates {
        if let Some(v) = value
            && v.len() > MAX_VALUE_LEN
        {
            return Err(StateError::ValueTooLarge {
                len: v.len(),
                max: MAX_VALUE_LEN,
            });
        }
        ups.push(Update {
            key_hash: key_path(key),
            value: value.as_deref(),
        });
    }
    // Stable sort, then keep the last update of each path.
    ups.sort_by_key(|a| a.key_hash);
    let mut deduped: Vec<Update<'_>> = Vec::with_capacity(ups.len());
    for u in ups {
        match deduped.last_mut() {
            Some(last) if last.key_hash == u.key_hash => *last = u,
            _ => deduped.push(u),
        }
    }
    let mut updater = Updater {
        store,
        out: Vec::new(),
    };
    let new_root = updater.update(root, 0, &deduped)?.hash();
    Ok(UpdateBatch {
        root: new_root,
        nodes: updater.out,
    })
}

/// Walks from `root` towards `key_hash`, calling `on_sibling` with each sibling passed, and
/// returns the subtree where the walk stopped: empty, or a leaf (maybe another key's).
fn walk<S: NodeStore + ?Sized>(
    store: &S,
    root: Digest,
    key_hash: &Digest,
    mut on_sibling: impl FnMut(Digest),
) -> Result<Option<(Digest, Vec<u8>)>, StateError> {
    let mut hash = root;
    let mut depth = 0;
    loop {
        if hash == EMPTY_ROOT {
            return Ok(None);
        }
        match load(store, &hash)? {
            Node::Leaf { key_hash, value } => return Ok(Some((key_hash, value))),
            Node::Internal { left, right } => {
                if depth >= DEPTH {
                    return Err(StateError::Malformed { hash, depth });
                }
                let (next, sibling) = if path_bit(key_hash, depth) {
                    (right, left)
                } else {
                    (left, right)
                };
                on_sibling(sibling);
                hash = next;
                depth += 1;
            }
        }
    }
}

/// Returns the value of `key` in the tree at `root`, or `None` if it is absent.
pub fn get<S: NodeStore + ?Sized>(
    store: &S,
    root: Digest,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StateError> {
    let key_hash = key_path(key);
    Ok(walk(store, root, &key_hash, |_| {})?
        .and_then(|(kh, value)| (kh == key_hash).then_some(value)))
}

/// Returns a proof of `key`'s value in the tree at `root`: an inclusion proof if present, a
/// non-inclusion proof otherwise. Check it with [`crate::verify_proof`].
pub fn prove<S: NodeStore + ?Sized>(
    store: &S,
    root: Digest,
    key: &[u8],
) -> Result<Proof, StateError> {
    let key_hash = key_path(key);
    let mut siblings = Vec::new();
    let end = walk(store, root, &key_hash, |s| siblings.push(s))?;
    let leaf = end.map(|(key_hash, value)| LeafProof {
        key_hash,
        value_hash: sm3(&value),
    });
    Ok(Proof::new(leaf, siblings))
}
