//! The chain parameters fixed at genesis (docs/execution.md §2.1), and the decoding limits
//! they tighten.

use types::Limits;

/// Chain-wide parameters fixed at genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainParams {
    /// How far ahead of the tip a transaction's expiry may be (default 100).
    pub expiry_window: u64,
    /// Most transactions in a block (default 2000).
    pub max_txs_per_block: u32,
    /// Largest encoded signed transaction in bytes (default 128 KiB).
    pub max_tx_size: usize,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            expiry_window: 100,
            max_txs_per_block: 2000,
            max_tx_size: 128 * 1024,
        }
    }
}

impl ChainParams {
    /// Returns `Limits::default()` tightened by these parameters (never loosened).
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        let txs = usize::try_from(self.max_txs_per_block).unwrap_or(usize::MAX);
        Limits {
            max_tx_size: d.max_tx_size.min(self.max_tx_size),
            max_txs_per_block: d.max_txs_per_block.min(txs),
            ..d
        }
    }
}
