//! The transaction pool: admitted transactions in arrival order, bounded, with the clients
//! waiting for each one's commit.
//!
//! Blocks are filled from it under two limits: a transaction count and a byte budget (what
//! `max_block_size`, the limit every block reader enforces, leaves after the block's header
//! and framing: `types::Limits::block_tx_budget`). A transaction that does not fit what is
//! left of the budget keeps its place at the head of the line, so it goes first into the next
//! block, while later, smaller ones that fit still go into this one. The pool refuses a
//! transaction larger than a whole block's budget, so every waiting transaction fits an
//! empty block and none can wait forever.

use std::collections::{HashMap, VecDeque};

use execution::VerifiedTx;
use tokio::sync::oneshot;
use types::{Block, Height, Receipt, TxId};

/// What a waiting client learns about its transaction.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// In a synced block.
    Committed {
        /// The block height.
        height: Height,
        /// The position in the block.
        position: u32,
        /// The execution result.
        receipt: Receipt,
    },
    /// Dropped before commit by the re-check (revoked signer, expired, …).
    Dropped(execution::Rejection),
}

/// What the pool needs to know of a transaction.
pub trait Pooled {
    /// Its ID.
    fn id(&self) -> TxId;
    /// The bytes it takes in a block: its encoding and its length prefix
    /// ([`Block::entry_len`]).
    fn block_len(&self) -> usize;
}

impl Pooled for VerifiedTx {
    fn id(&self) -> TxId {
        VerifiedTx::id(self)
    }

    fn block_len(&self) -> usize {
        // The admitted encoding is canonical, so the block re-encodes it to the same length.
        Block::entry_len(self.encoded_len())
    }
}

/// A bounded FIFO of admitted transactions.
#[derive(Debug)]
pub struct Pool<T = VerifiedTx> {
    // Arrival order; an entry is live while `txs` holds its id under the same arrival number
    // (a removed transaction's entry goes lazily, and one admitted again gets a new number).
    order: VecDeque<(u64, TxId)>,
    txs: HashMap<TxId, (u64, T)>,
    next: u64,
    waiters: HashMap<TxId, Vec<oneshot::Sender<Outcome>>>,
    max: usize,
    block_budget: usize,
    // The sum of the waiting transactions' block_len.
    bytes: usize,
}

/// Why the pool refused a transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum PoolRefusal {
    /// Already waiting.
    Duplicate,
    /// At capacity.
    Full {
        /// The capacity.
        max: usize,
    },
    /// Larger than a whole block's byte budget: no block could ever hold it.
    LargerThanABlock {
        /// The bytes it would take in a block.
        len: usize,
        /// The byte budget of a block's transactions.
        budget: usize,
    },
}

impl<T: Pooled> Pool<T> {
    /// Returns an empty pool holding at most `max` transactions, for blocks whose
    /// transactions may take `block_budget` bytes (`Limits::block_tx_budget`).
    pub fn new(max: usize, block_budget: usize) -> Self {
        Self {
            order: VecDeque::new(),
            txs: HashMap::new(),
            next: 0,
            waiters: HashMap::new(),
            max,
            block_budget,
            bytes: 0,
        }
    }

    /// Returns the number of waiting transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Returns the ids of the waiting transactions, oldest first.
    pub fn ids(&self) -> Vec<TxId> {
        self.order
            .iter()
            .filter(|(n, id)| self.txs.get(id).is_some_and(|(m, _)| m == n))
            .map(|(_, id)| *id)
            .collect()
    }

    /// Returns whether a client waits for the outcome of `id`.
    pub fn has_waiters(&self, id: &TxId) -> bool {
        self.waiters.get(id).is_some_and(|w| !w.is_empty())
    }

    /// Returns whether no transaction waits.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Returns the bytes the waiting transactions would take in blocks.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns whether the waiting transactions fill a block of at most `max_txs`
    /// transactions: by count, or by bytes (then the next block cannot take them all).
    pub fn holds_a_block(&self, max_txs: usize) -> bool {
        self.len() >= max_txs || self.bytes >= self.block_budget
    }

    /// Returns whether `id` waits here.
    pub fn contains(&self, id: &TxId) -> bool {
        self.txs.contains_key(id)
    }

    /// Returns the waiting transaction `id`.
    pub fn get(&self, id: &TxId) -> Option<&T> {
        self.txs.get(id).map(|(_, tx)| tx)
    }

    /// Adds an admitted transaction.
    pub fn insert(&mut self, tx: T) -> Result<(), PoolRefusal> {
        let id = tx.id();
        if self.txs.contains_key(&id) {
            return Err(PoolRefusal::Duplicate);
        }
        let len = tx.block_len();
        if len > self.block_budget {
            return Err(PoolRefusal::LargerThanABlock {
                len,
                budget: self.block_budget,
            });
        }
        if self.txs.len() >= self.max {
            return Err(PoolRefusal::Full { max: self.max });
        }
        let n = self.next;
        self.next += 1;
        self.order.push_back((n, id));
        self.txs.insert(id, (n, tx));
        self.bytes += len;
        Ok(())
    }

    /// Registers a client waiting for `id`'s outcome.
    pub fn wait(&mut self, id: TxId) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.waiters.entry(id).or_default().push(tx);
        rx
    }

    /// Hands out (clones of) the transactions of the next block, oldest first, without
    /// removing them: at most `max_txs`, taking together at most the block byte budget. One
    /// that does not fit what is left of the budget stays, at its place in line, for the next
    /// block (where it comes first, and fits, since no transaction exceeds the budget); later
    /// ones that fit are still handed out. A transaction leaves the pool only by
    /// [`Pool::remove`], when its block commits or it is dropped, so a consensus round that
    /// fails loses nothing.
    pub fn peek(&self, max_txs: usize) -> Vec<T>
    where
        T: Clone,
    {
        let mut out = Vec::with_capacity(max_txs.min(self.txs.len()));
        let mut left = self.block_budget;
        for (n, id) in &self.order {
            if out.len() >= max_txs || left == 0 {
                break;
            }
            let Some((m, tx)) = self.txs.get(id) else {
                continue;
            };
            if m != n {
                continue;
            }
            let len = tx.block_len();
            if len > left {
                continue;
            }
            left -= len;
            out.push(tx.clone());
        }
        out
    }

    /// Removes `id` (committed in a block, or dropped); returns whether it was waiting.
    pub fn remove(&mut self, id: &TxId) -> bool {
        match self.txs.remove(id) {
            Some((_, tx)) => {
                self.bytes -= tx.block_len();
                // The order entry goes lazily (peek skips it): now if it is at the head, and
                // all stale ones at once when they outnumber the live ones.
                let live = |txs: &HashMap<TxId, (u64, T)>, (n, i): &(u64, TxId)| {
                    txs.get(i).is_some_and(|(m, _)| m == n)
                };
                while let Some(front) = self.order.front() {
                    if live(&self.txs, front) {
                        break;
                    }
                    self.order.pop_front();
                }
                if self.order.len() > 2 * self.txs.len() + 64 {
                    let txs = &self.txs;
                    self.order.retain(|e| live(txs, e));
                }
                true
            }
            None => false,
        }
    }

    /// Tells the clients waiting for `id` its outcome.
    pub fn resolve(&mut self, id: &TxId, outcome: Outcome) {
        if let Some(ws) = self.waiters.remove(id) {
            for w in ws {
                // A client that gave up has dropped its receiver; nothing to tell.
                let _ = w.send(outcome.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::Digest;

    /// A stand-in for an admitted transaction: an arrival number and a size in a block.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Tx(u32, usize);

    impl Pooled for Tx {
        fn id(&self) -> TxId {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&self.0.to_be_bytes());
            TxId(Digest(d))
        }
        fn block_len(&self) -> usize {
            self.1
        }
    }

    impl Pool<Tx> {
        /// A committed block: what `peek` hands out, then removed.
        fn take(&mut self, max_txs: usize) -> Vec<Tx> {
            let block = self.peek(max_txs);
            for t in &block {
                assert!(self.remove(&t.id()));
            }
            block
        }
    }

    /// Issue 13 point 1: handing out removes nothing, so a round that fails loses nothing;
    /// a removed transaction admitted again goes to the back of the line, once.
    #[test]
    fn peek_hands_out_without_removing_and_remove_is_exact() {
        let mut p = Pool::new(2_000, 100_000);
        for (n, len) in [(1, 10), (2, 10), (3, 10)] {
            p.insert(Tx(n, len)).unwrap();
        }
        assert_eq!(numbers(&p.peek(2)), [1, 2]);
        assert_eq!(
            numbers(&p.peek(2)),
            [1, 2],
            "a failed round: the same block again"
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p.bytes(), 30);
        assert!(p.remove(&Tx(2, 10).id()));
        assert!(!p.remove(&Tx(2, 10).id()), "removed once");
        assert!(!p.remove(&Tx(9, 10).id()), "never waiting");
        assert_eq!(numbers(&p.peek(5)), [1, 3]);
        assert_eq!(p.bytes(), 20);
        // Admitted again (it was dropped): at the back, not at its old place, and only once.
        p.insert(Tx(2, 10)).unwrap();
        assert_eq!(numbers(&p.peek(5)), [1, 3, 2]);
        // Many removals leave no stale entries behind.
        for n in 10..1000 {
            p.insert(Tx(n, 1)).unwrap();
        }
        for n in 10..1000 {
            p.remove(&Tx(n, 1).id());
        }
        assert!(p.order.len() <= 2 * p.len() + 64, "{}", p.order.len());
        assert_eq!(numbers(&p.peek(5)), [1, 3, 2]);
    }

    fn pool(budget: usize, txs: &[(u32, usize)]) -> Pool<Tx> {
        let mut p = Pool::new(100, budget);
        for &(n, len) in txs {
            p.insert(Tx(n, len)).unwrap();
        }
        p
    }

    fn numbers(txs: &[Tx]) -> Vec<u32> {
        txs.iter().map(|t| t.0).collect()
    }

    #[test]
    fn takes_in_arrival_order_under_the_count_limit() {
        let mut p = pool(1000, &[(1, 10), (2, 10), (3, 10)]);
        assert_eq!(numbers(&p.take(2)), [1, 2]);
        assert_eq!(p.bytes(), 10);
        assert_eq!(numbers(&p.take(2)), [3]);
        assert!(p.is_empty());
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn a_transaction_over_the_remaining_budget_waits_without_holding_back_smaller_ones() {
        // Budget 100: 1 (60) goes in; 2 (50) does not fit the 40 left and waits; 3 (30)
        // and 5 (10) still fit; 4 (20) does not fit the 10 left after 3.
        let mut p = pool(100, &[(1, 60), (2, 50), (3, 30), (4, 20), (5, 10)]);
        assert_eq!(p.bytes(), 170);
        let first = p.take(10);
        assert_eq!(numbers(&first), [1, 3, 5]);
        assert_eq!(first.iter().map(|t| t.1).sum::<usize>(), 100);
        assert_eq!(p.bytes(), 70);
        // The skipped one is first in line for the next block.
        assert_eq!(numbers(&p.take(10)), [2, 4]);
        assert!(p.is_empty());
    }

    #[test]
    fn every_block_stays_within_the_budget_and_nothing_is_lost_or_starved() {
        let (budget, max_txs) = (1000, 50);
        let mut p = Pool::new(10_000, budget);
        // Large and small mixed, more than many blocks hold.
        let mut total = 0;
        for n in 0..600u32 {
            let len = if n % 3 == 0 {
                700 + (n as usize * 7) % 301
            } else {
                1 + (n as usize * 37) % 200
            };
            total += len;
            p.insert(Tx(n, len)).unwrap();
        }
        assert_eq!(p.bytes(), total);
        let mut committed = Vec::new();
        while !p.is_empty() {
            let head = p.order.front().map(|e| e.1);
            let block = p.take(max_txs);
            assert!(block.iter().map(|t| t.1).sum::<usize>() <= budget);
            assert!(block.len() <= max_txs);
            // The head of the line always goes into the block it is offered to: a skipped
            // transaction waits one block at most.
            assert_eq!(block.first().map(Tx::id), head);
            // Within a block, arrival order is kept.
            assert!(block.windows(2).all(|w| w[0].0 < w[1].0));
            committed.extend(numbers(&block));
        }
        committed.sort_unstable();
        assert_eq!(committed, (0..600).collect::<Vec<_>>());
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn the_producer_sees_a_full_block_by_count_or_by_bytes() {
        let p = pool(100, &[(1, 30), (2, 30)]);
        assert!(!p.holds_a_block(3));
        assert!(p.holds_a_block(2));
        let p = pool(100, &[(1, 60), (2, 50)]);
        assert!(p.holds_a_block(3));
    }

    #[test]
    fn refuses_duplicates_a_full_pool_and_what_no_block_could_hold() {
        let mut p = Pool::new(2, 100);
        p.insert(Tx(1, 10)).unwrap();
        assert_eq!(p.insert(Tx(1, 10)), Err(PoolRefusal::Duplicate));
        assert_eq!(
            p.insert(Tx(2, 101)),
            Err(PoolRefusal::LargerThanABlock {
                len: 101,
                budget: 100
            })
        );
        p.insert(Tx(3, 100)).unwrap();
        assert_eq!(p.insert(Tx(4, 1)), Err(PoolRefusal::Full { max: 2 }));
        assert_eq!(p.bytes(), 110);
    }
}
