//! The transaction pool: admitted transactions in arrival order, bounded, with the clients
//! waiting for each one's commit.

use std::collections::{HashMap, VecDeque};

use execution::VerifiedTx;
use tokio::sync::oneshot;
use types::{Height, Receipt, TxId};

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
    /// Dropped before commit by the re-check (revoked signer, expired, …): code and message.
    Dropped {
        /// The stable rejection code.
        code: &'static str,
        /// The message.
        message: String,
    },
}

/// A bounded FIFO of admitted transactions.
#[derive(Debug, Default)]
pub struct Pool {
    order: VecDeque<TxId>,
    txs: HashMap<TxId, VerifiedTx>,
    waiters: HashMap<TxId, Vec<oneshot::Sender<Outcome>>>,
    max: usize,
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
}

impl Pool {
    /// Returns an empty pool holding at most `max` transactions.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// Returns the number of waiting transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Returns whether no transaction waits.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Returns whether `id` waits here.
    pub fn contains(&self, id: &TxId) -> bool {
        self.txs.contains_key(id)
    }

    /// Adds an admitted transaction.
    pub fn insert(&mut self, tx: VerifiedTx) -> Result<(), PoolRefusal> {
        let id = tx.id();
        if self.txs.contains_key(&id) {
            return Err(PoolRefusal::Duplicate);
        }
        if self.txs.len() >= self.max {
            return Err(PoolRefusal::Full { max: self.max });
        }
        self.order.push_back(id);
        self.txs.insert(id, tx);
        Ok(())
    }

    /// Registers a client waiting for `id`'s outcome.
    pub fn wait(&mut self, id: TxId) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.waiters.entry(id).or_default().push(tx);
        rx
    }

    /// Removes and returns up to `n` transactions, oldest first.
    pub fn take(&mut self, n: usize) -> Vec<VerifiedTx> {
        let mut out = Vec::with_capacity(n.min(self.txs.len()));
        while out.len() < n {
            let Some(id) = self.order.pop_front() else {
                break;
            };
            if let Some(tx) = self.txs.remove(&id) {
                out.push(tx);
            }
        }
        out
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
