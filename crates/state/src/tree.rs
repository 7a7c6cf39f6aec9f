//! Reading and updating the tree: [`apply`], [`get`], [`prove`].

use crypto::Digest;
use crypto_sm::sm3::{sm3, sm3_many};

use crate::error::StateError;
use crate::node::{
    EMPTY_ROOT, MAX_VALUE_LEN, Node, internal_message, key_path, leaf_message, path_bit,
};
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

/// A child of a node being built: a hash already known, or a node of the plan (by index) whose
/// hash is computed once its own children's are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ref {
    Known(Digest),
    Planned(usize),
}

/// What an updated subtree became.
#[derive(Clone, Copy)]
enum Sub {
    Empty,
    Leaf(Ref),
    Internal(Ref),
    /// Not touched by the updates; its kind is read only if needed.
    Unchanged(Digest),
}

impl Sub {
    fn to_ref(self) -> Ref {
        match self {
            Sub::Empty => Ref::Known(EMPTY_ROOT),
            Sub::Leaf(r) | Sub::Internal(r) => r,
            Sub::Unchanged(h) => Ref::Known(h),
        }
    }
}

/// A node the update creates, before its hash is known.
enum Planned<'a> {
    /// A new leaf (its value is hashed with the other new leaves' in [`Updater::hash_planned`]).
    Leaf { key_hash: Digest, value: &'a [u8] },
    /// A new internal node. `was` is the node it replaces, with that node's children: if the
    /// children's hashes come out unchanged (a key set to the value it had), the old node stands
    /// and nothing is written for it.
    Internal {
        left: Ref,
        right: Ref,
        was: Option<(Digest, Digest, Digest)>,
    },
}

fn load<S: NodeStore + ?Sized>(store: &S, hash: &Digest) -> Result<Node, StateError> {
    store
        .get(hash)?
        .ok_or(StateError::MissingNode { hash: *hash })
}

/// Rebuilds the updated paths in two passes: the walk below decides the shape of every new node
/// (reading only the paths the updates touch) and plans it, children before parents; then
/// [`Updater::hash_planned`] computes the hashes level by level from the leaves up, each level
/// in one [`sm3_many`] call (eight nodes in SIMD lanes where the CPU has them).
struct Updater<'s, 'a, S: ?Sized> {
    store: &'s S,
    plan: Vec<Planned<'a>>,
    /// The height of each planned node above the planned nodes below it (leaves and nodes over
    /// known children are 0), which orders the hashing.
    level: Vec<usize>,
}

impl<'a, S: NodeStore + ?Sized> Updater<'_, 'a, S> {
    fn plan(&mut self, node: Planned<'a>) -> Result<Ref, StateError> {
        let below = |r: &Ref| match r {
            Ref::Planned(i) => self
                .level
                .get(*i)
                .map(|l| l + 1)
                .ok_or(StateError::Internal {
                    what: "a node planned before its child",
                }),
            Ref::Known(_) => Ok(0),
        };
        let level = match &node {
            Planned::Leaf { .. } => 0,
            Planned::Internal { left, right, .. } => below(left)?.max(below(right)?),
        };
        self.plan.push(node);
        self.level.push(level);
        Ok(Ref::Planned(self.plan.len() - 1))
    }

    /// Applies `ups` (sorted by path, one per path, all under this subtree's prefix) to the
    /// subtree `hash` at `depth`.
    fn update(
        &mut self,
        hash: Digest,
        depth: usize,
        ups: &[Update<'a>],
    ) -> Result<Sub, StateError> {
        if hash == EMPTY_ROOT {
            if ups.is_empty() {
                return Ok(Sub::Empty);
            }
            let leaves: Vec<LeafRef<'a>> = ups
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
            Node::Leaf { key_hash, .. } => {
                // Merge the stored pair with the updates, the updates winning, and rebuild. The
                // stored leaf is kept by its hash: its value is not needed again.
                let overridden = ups.binary_search_by(|u| u.key_hash.cmp(&key_hash)).is_ok();
                let mut leaves: Vec<LeafRef<'a>> = Vec::with_capacity(ups.len() + 1);
                let mut pending = (!overridden).then_some(LeafRef {
                    key_hash,
                    value: &[],
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
                    Node::Leaf { .. } => Sub::Leaf(Ref::Known(h)),
                    Node::Internal { .. } => Sub::Internal(Ref::Known(h)),
                },
                other => other,
            };
            if let Sub::Leaf(h) = only {
                return Ok(Sub::Leaf(h));
            }
        }
        let (lr, rr) = (l.to_ref(), r.to_ref());
        if (lr, rr) == (Ref::Known(old.0), Ref::Known(old.1)) {
            return Ok(Sub::Internal(Ref::Known(old_hash)));
        }
        if depth >= DEPTH {
            return Err(StateError::Malformed {
                hash: old_hash,
                depth,
            });
        }
        Ok(Sub::Internal(self.plan(Planned::Internal {
            left: lr,
            right: rr,
            was: Some((old_hash, old.0, old.1)),
        })?))
    }

    /// Builds the canonical subtree at `depth` holding exactly `leaves` (sorted, distinct paths,
    /// all under this subtree's prefix).
    fn build(&mut self, depth: usize, leaves: &[LeafRef<'a>]) -> Result<Sub, StateError> {
        match leaves {
            [] => Ok(Sub::Empty),
            [leaf] => Ok(Sub::Leaf(match leaf.stored {
                Some(h) => Ref::Known(h),
                None => self.plan(Planned::Leaf {
                    key_hash: leaf.key_hash,
                    value: leaf.value,
                })?,
            })),
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
                Ok(Sub::Internal(self.plan(Planned::Internal {
                    left: l.to_ref(),
                    right: r.to_ref(),
                    was: None,
                })?))
            }
        }
    }

    /// Computes the hash of every planned node (level by level, or in plan order for a thin
    /// plan) and returns the hash `top` stands for with the nodes to write (an internal node
    /// whose children came out unchanged is not written: the old one stands). A node whose
    /// child has no hash yet, or a hash count that differs from the messages', is
    /// [`StateError::Internal`]: never a root made up.
    fn hash_planned(self, top: Ref) -> Result<UpdateBatch, StateError> {
        let Updater { plan, level, .. } = self;
        let mut hashes: Vec<Option<Digest>> = vec![None; plan.len()];
        let highest = level.iter().copied().max().unwrap_or(0);
        let mut reused = vec![false; plan.len()];
        if plan.len() < 3 * (highest + 1) {
            // A thin plan (a few paths: on average fewer than three nodes a level, too few for
            // the lanes).
            hash_in_order(&plan, &mut hashes, &mut reused)?;
        } else {
            hash_by_level(&plan, &level, highest, &mut hashes, &mut reused)?;
        }
        let root = resolved(&hashes, top)?;
        let mut nodes = Vec::with_capacity(plan.len());
        for (i, p) in plan.into_iter().enumerate() {
            if reused[i] {
                continue;
            }
            let hash = resolved(&hashes, Ref::Planned(i))?;
            let node = match p {
                Planned::Leaf { key_hash, value } => Node::Leaf {
                    key_hash,
                    value: value.to_vec(),
                },
                Planned::Internal { left, right, .. } => Node::Internal {
                    left: resolved(&hashes, left)?,
                    right: resolved(&hashes, right)?,
                },
            };
            nodes.push((hash, node));
        }
        Ok(UpdateBatch { root, nodes })
    }
}

/// The hash a child reference stands for: known, or its planned node's once computed.
fn resolved(hashes: &[Option<Digest>], r: Ref) -> Result<Digest, StateError> {
    match r {
        Ref::Known(h) => Ok(h),
        Ref::Planned(i) => hashes
            .get(i)
            .copied()
            .flatten()
            .ok_or(StateError::Internal {
                what: "a node hashed before its child",
            }),
    }
}

/// What a planned node's hash needs: the old node's hash, where its children came out
/// unchanged, or the message to hash.
enum Input {
    Reused(Digest),
    Message([u8; 65]),
}

/// The input of planned node `p`, its children's hashes taken from `hashes` and a leaf's
/// value hash from `value_hash`.
fn input(
    p: &Planned<'_>,
    hashes: &[Option<Digest>],
    value_hash: impl FnOnce(&[u8]) -> Result<Digest, StateError>,
) -> Result<Input, StateError> {
    Ok(match p {
        Planned::Leaf { key_hash, value } => {
            Input::Message(leaf_message(key_hash, &value_hash(value)?))
        }
        Planned::Internal { left, right, was } => {
            let (l, r) = (resolved(hashes, *left)?, resolved(hashes, *right)?);
            match was {
                Some((h, wl, wr)) if (l, r) == (*wl, *wr) => Input::Reused(*h),
                _ => Input::Message(internal_message(&l, &r)),
            }
        }
    })
}

/// [`sm3_many`], refusing a digest count other than the items'.
fn sm3_each<T: AsRef<[u8]>>(items: &[T]) -> Result<Vec<Digest>, StateError> {
    let digests = sm3_many(items);
    if digests.len() != items.len() {
        return Err(StateError::Internal {
            what: "sm3_many returned a different number of digests",
        });
    }
    Ok(digests)
}

/// Hashes a plan one node after the other in plan order, which puts every child before its
/// parent.
fn hash_in_order(
    plan: &[Planned<'_>],
    hashes: &mut [Option<Digest>],
    reused: &mut [bool],
) -> Result<(), StateError> {
    for (i, p) in plan.iter().enumerate() {
        hashes[i] = Some(match input(p, hashes, |v| Ok(sm3(v)))? {
            Input::Reused(h) => {
                reused[i] = true;
                h
            }
            Input::Message(m) => sm3(&m),
        });
    }
    Ok(())
}

/// Hashes a wide plan level by level, each level's nodes in one [`sm3_many`] call (eight in SIMD
/// lanes where the CPU has them), the leaves' values first.
fn hash_by_level(
    plan: &[Planned<'_>],
    level: &[usize],
    highest: usize,
    hashes: &mut [Option<Digest>],
    reused: &mut [bool],
) -> Result<(), StateError> {
    // The leaves' value hashes, all at once.
    let leaves: Vec<(usize, &[u8])> = plan
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Planned::Leaf { value, .. } => Some((i, *value)),
            Planned::Internal { .. } => None,
        })
        .collect();
    let values: Vec<&[u8]> = leaves.iter().map(|(_, v)| *v).collect();
    let mut leaf_value_hash: Vec<Option<Digest>> = vec![None; plan.len()];
    for ((i, _), h) in leaves.iter().zip(sm3_each(&values)?) {
        leaf_value_hash[*i] = Some(h);
    }
    // The planned nodes in order of level (a counting sort: one vector, no vector a level).
    let mut starts = vec![0usize; highest + 2];
    for l in level {
        starts[l + 1] += 1;
    }
    for l in 1..starts.len() {
        starts[l] += starts[l - 1];
    }
    let mut order = vec![0usize; plan.len()];
    let mut next = starts.clone();
    for (i, l) in level.iter().enumerate() {
        order[next[*l]] = i;
        next[*l] += 1;
    }
    let mut to_hash: Vec<usize> = Vec::new();
    let mut messages: Vec<[u8; 65]> = Vec::new();
    for l in 0..=highest {
        to_hash.clear();
        messages.clear();
        for &i in &order[starts[l]..starts[l + 1]] {
            let value_hash = |_: &[u8]| {
                leaf_value_hash[i].ok_or(StateError::Internal {
                    what: "a new leaf without its value's hash",
                })
            };
            match input(&plan[i], hashes, value_hash)? {
                Input::Reused(h) => {
                    hashes[i] = Some(h);
                    reused[i] = true;
                }
                Input::Message(m) => {
                    to_hash.push(i);
                    messages.push(m);
                }
            }
        }
        if messages.len() < 3 {
            // Too few for the lanes (a single update's path): one at a time.
            for (&i, m) in to_hash.iter().zip(&messages) {
                hashes[i] = Some(sm3(m));
            }
        } else {
            for (&i, h) in to_hash.iter().zip(sm3_each(&messages)?) {
                hashes[i] = Some(h);
            }
        }
    }
    Ok(())
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
    if let Some(len) = updates
        .iter()
        .filter_map(|(_, v)| v.as_ref().map(Vec::len))
        .find(|len| *len > MAX_VALUE_LEN)
    {
        return Err(StateError::ValueTooLarge {
            len,
            max: MAX_VALUE_LEN,
        });
    }
    // The keys' paths, many at once.
    let keys: Vec<&[u8]> = updates.iter().map(|(k, _)| k.as_slice()).collect();
    let mut ups: Vec<Update<'_>> = sm3_each(&keys)?
        .into_iter()
        .zip(updates)
        .map(|(key_hash, (_, value))| Update {
            key_hash,
            value: value.as_deref(),
        })
        .collect();
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
        plan: Vec::new(),
        level: Vec::new(),
    };
    let top = updater.update(root, 0, &deduped)?.to_ref();
    updater.hash_planned(top)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    /// The two ways of hashing a plan give the same hashes and reuse the same nodes, on plans
    /// thin and wide (each path is taken by `apply` only on one side of the width rule).
    #[test]
    fn in_order_and_by_level_hash_alike() {
        let mut store = MemStore::new();
        let ups: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..300u32)
            .map(|i| {
                (
                    i.to_be_bytes().to_vec(),
                    Some(vec![i as u8; (i % 70) as usize]),
                )
            })
            .collect();
        let base = apply(&store, EMPTY_ROOT, &ups).unwrap();
        store.write(base.nodes).unwrap();
        for n in [1usize, 2, 5, 40, 300] {
            // New keys, changed values, unchanged values and deletions.
            let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            for i in 0..n as u32 {
                let key = (i * 7 % 400).to_be_bytes().to_vec();
                let value = match i % 4 {
                    0 => None,
                    1 => Some(vec![(i * 7 % 400) as u8; (i * 7 % 400 % 70) as usize]),
                    _ => Some(vec![0xee; i as usize % 90]),
                };
                batch.push((key, value));
            }
            let paths: Vec<Update<'_>> = {
                let mut u: Vec<Update<'_>> = batch
                    .iter()
                    .map(|(k, v)| Update {
                        key_hash: key_path(k),
                        value: v.as_deref(),
                    })
                    .collect();
                u.sort_by_key(|a| a.key_hash);
                u.dedup_by_key(|a| a.key_hash);
                u
            };
            let mut updater = Updater {
                store: &store,
                plan: Vec::new(),
                level: Vec::new(),
            };
            updater.update(base.root, 0, &paths).unwrap();
            let (plan, level) = (updater.plan, updater.level);
            let top = level.iter().copied().max().unwrap_or(0);
            let mut a = (vec![None; plan.len()], vec![false; plan.len()]);
            let mut b = a.clone();
            hash_in_order(&plan, &mut a.0, &mut a.1).unwrap();
            hash_by_level(&plan, &level, top, &mut b.0, &mut b.1).unwrap();
            assert_eq!(a, b, "{n} updates");
            assert!(a.0.iter().all(Option::is_some));
        }
    }
}
