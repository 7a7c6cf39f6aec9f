//! The chain parameters (docs/execution.md §2.1): set at genesis, changed by a governance
//! `params` proposal (docs/execution.md §4.3), and the decoding limits they tighten.

use types::Limits;

/// Chain-wide parameters: the genesis file's until a governance change takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainParams {
    /// How far ahead of the tip a transaction's expiry may be (default 100).
    pub expiry_window: u64,
    /// Most transactions in a block (default 2000).
    pub max_txs_per_block: u32,
    /// Largest encoded signed transaction in bytes (default 128 KiB).
    pub max_tx_size: usize,
    /// The most fuel one transaction may name as its limit (docs/contracts.md §3; default
    /// [`DEFAULT_MAX_FUEL_PER_TX`]).
    pub max_fuel_per_tx: u64,
    /// The most fuel the transactions of one block may name in total (the sum of their
    /// limits, known before execution; default [`DEFAULT_MAX_FUEL_PER_BLOCK`]).
    pub max_fuel_per_block: u64,
}

/// The default `max_fuel_per_tx`: 10⁸ fuel, about half a second of the interpreter (issue 14
/// benchmark), far above what the example contracts need per call.
pub const DEFAULT_MAX_FUEL_PER_TX: u64 = 100_000_000;

/// The default `max_fuel_per_block`: 2·10⁹ fuel, the time of a few seconds of interpretation
/// at most, whatever the transactions do.
pub const DEFAULT_MAX_FUEL_PER_BLOCK: u64 = 2_000_000_000;

/// The least a fuel parameter may be set to: a built-in call costs
/// [`crate::BUILTIN_CALL_COST`], so lower would refuse every transaction.
pub const MIN_FUEL_PARAM: u64 = 10_000;

/// The most `max_fuel_per_tx` may be set to: 10¹⁰ fuel, about 14 s of the interpreter at its
/// measured 724 M fuel/s. Above, one transaction could stall every node past any consensus
/// timeout.
pub const MAX_FUEL_PER_TX_CEILING: u64 = 10_000_000_000;

/// The most `max_fuel_per_block` may be set to: 10¹¹ fuel.
pub const MAX_FUEL_PER_BLOCK_CEILING: u64 = 100_000_000_000;

/// The least fuel limit a call to a WASM contract may name: what loading and starting a
/// module costs at least (docs/contracts.md §5). Admission refuses less
/// (`TX_FUEL_LIMIT_TOO_LOW`), so no call that cannot pay makes a node load a module.
pub const MIN_CALL_FUEL: u64 = 10_000;

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            expiry_window: 100,
            max_txs_per_block: 2000,
            max_tx_size: 128 * 1024,
            max_fuel_per_tx: DEFAULT_MAX_FUEL_PER_TX,
            max_fuel_per_block: DEFAULT_MAX_FUEL_PER_BLOCK,
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

/// The largest expiry window a governance change may set, in blocks: the same horizon as
/// the longest voting period (`governance::MAX_VOTING_PERIOD`). A larger window only keeps
/// signed transactions usable longer (duplicates are refused by the chain's transaction index
/// whatever the window), so the ceiling bounds how long a leaked signed transaction stays
/// valid, not correctness.
pub const MAX_EXPIRY_WINDOW: u64 = 1_000_000;

/// The smallest `max_tx_size` a governance change may set, in bytes. Every organisation must
/// still be able to send `identity.register_org` and `identity.update_crl`: the signer's
/// certificate inline (an SM2 certificate of the consortium is about 500 to 700 bytes), a CA
/// certificate of the same size, a CRL (about 300 bytes plus about 40 per revoked
/// certificate), the signature and framing come to about 2 KiB with an empty CRL; 8 KiB
/// leaves room for a CRL of well over 100 entries (a registration with 100 revoked entries
/// measured 4 954 bytes; the test `the_smallest_max_tx_size_still_carries_a_registration_with_a_crl`
/// holds it below this bound).
pub const MIN_MAX_TX_SIZE: usize = 8 * 1024;

/// A change of the chain parameters: each value given replaces the one in force, the others
/// stay as they are when the change takes effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamsUpdate {
    /// The new expiry window, in blocks.
    pub expiry_window: Option<u64>,
    /// The new most transactions per block.
    pub max_txs_per_block: Option<u32>,
    /// The new largest encoded signed transaction, in bytes.
    pub max_tx_size: Option<usize>,
    /// The new most fuel per transaction.
    pub max_fuel_per_tx: Option<u64>,
    /// The new most fuel per block.
    pub max_fuel_per_block: Option<u64>,
}

impl ParamsUpdate {
    /// Checks that it names at least one value and that each lies within the hard bounds:
    /// `expiry_window` 1..=[`MAX_EXPIRY_WINDOW`], `max_txs_per_block`
    /// 1..=`Limits::default().max_txs_per_block`, `max_tx_size`
    /// [`MIN_MAX_TX_SIZE`]..=`Limits::default().max_tx_size` (the largest this build decodes).
    /// The error names the first value out of bounds.
    pub fn check(&self) -> Result<(), String> {
        if *self == ParamsUpdate::default() {
            return Err(
                "a parameter change names at least one of expiry_window, max_txs_per_block, max_tx_size"
                    .into(),
            );
        }
        let ceiling = Limits::default();
        if let Some(w) = self.expiry_window
            && !(1..=MAX_EXPIRY_WINDOW).contains(&w)
        {
            return Err(format!(
                "expiry_window {w} is outside 1..={MAX_EXPIRY_WINDOW}"
            ));
        }
        if let Some(n) = self.max_txs_per_block
            && !(1..=ceiling.max_txs_per_block).contains(&usize::try_from(n).unwrap_or(usize::MAX))
        {
            return Err(format!(
                "max_txs_per_block {n} is outside 1..={}",
                ceiling.max_txs_per_block
            ));
        }
        if let Some(s) = self.max_tx_size
            && !(MIN_MAX_TX_SIZE..=ceiling.max_tx_size).contains(&s)
        {
            return Err(format!(
                "max_tx_size {s} is outside {MIN_MAX_TX_SIZE}..={} bytes",
                ceiling.max_tx_size
            ));
        }
        for (name, v, ceiling) in [
            (
                "max_fuel_per_tx",
                self.max_fuel_per_tx,
                MAX_FUEL_PER_TX_CEILING,
            ),
            (
                "max_fuel_per_block",
                self.max_fuel_per_block,
                MAX_FUEL_PER_BLOCK_CEILING,
            ),
        ] {
            if let Some(v) = v
                && !(MIN_FUEL_PARAM..=ceiling).contains(&v)
            {
                return Err(format!(
                    "{name} {v} is outside {MIN_FUEL_PARAM}..={ceiling}"
                ));
            }
        }
        Ok(())
    }

    /// Returns `current` with the values this change gives.
    pub fn apply_to(&self, current: &ChainParams) -> ChainParams {
        ChainParams {
            expiry_window: self.expiry_window.unwrap_or(current.expiry_window),
            max_txs_per_block: self.max_txs_per_block.unwrap_or(current.max_txs_per_block),
            max_tx_size: self.max_tx_size.unwrap_or(current.max_tx_size),
            max_fuel_per_tx: self.max_fuel_per_tx.unwrap_or(current.max_fuel_per_tx),
            max_fuel_per_block: self
                .max_fuel_per_block
                .unwrap_or(current.max_fuel_per_block),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_name_the_value() {
        let ok = ParamsUpdate {
            expiry_window: Some(1),
            max_txs_per_block: Some(1),
            max_tx_size: Some(MIN_MAX_TX_SIZE),
            max_fuel_per_tx: Some(MIN_FUEL_PARAM),
            max_fuel_per_block: None,
        };
        assert_eq!(ok.check(), Ok(()));
        let top = ParamsUpdate {
            expiry_window: Some(MAX_EXPIRY_WINDOW),
            max_txs_per_block: Some(10_000),
            max_tx_size: Some(128 * 1024),
            max_fuel_per_tx: Some(MAX_FUEL_PER_TX_CEILING),
            max_fuel_per_block: Some(MAX_FUEL_PER_BLOCK_CEILING),
        };
        assert_eq!(top.check(), Ok(()));
        let cases = [
            (ParamsUpdate::default(), "at least one"),
            (
                ParamsUpdate {
                    expiry_window: Some(0),
                    ..ok
                },
                "expiry_window 0",
            ),
            (
                ParamsUpdate {
                    expiry_window: Some(MAX_EXPIRY_WINDOW + 1),
                    ..ok
                },
                "expiry_window 1000001",
            ),
            (
                ParamsUpdate {
                    max_txs_per_block: Some(0),
                    ..ok
                },
                "max_txs_per_block 0",
            ),
            (
                ParamsUpdate {
                    max_txs_per_block: Some(10_001),
                    ..ok
                },
                "max_txs_per_block 10001 is outside 1..=10000",
            ),
            (
                ParamsUpdate {
                    max_tx_size: Some(MIN_MAX_TX_SIZE - 1),
                    ..ok
                },
                "max_tx_size 8191 is outside 8192..=131072",
            ),
            (
                ParamsUpdate {
                    max_tx_size: Some(128 * 1024 + 1),
                    ..ok
                },
                "max_tx_size 131073",
            ),
            (
                ParamsUpdate {
                    max_fuel_per_block: Some(MIN_FUEL_PARAM - 1),
                    ..ok
                },
                "max_fuel_per_block 9999 is outside 10000..=",
            ),
            (
                ParamsUpdate {
                    max_fuel_per_tx: Some(MAX_FUEL_PER_TX_CEILING + 1),
                    ..ok
                },
                "max_fuel_per_tx 10000000001 is outside",
            ),
        ];
        for (update, want) in cases {
            let got = update.check().unwrap_err();
            assert!(got.contains(want), "{update:?}: {got}");
        }
    }

    #[test]
    fn a_change_keeps_the_values_it_does_not_name() {
        let current = ChainParams::default();
        let update = ParamsUpdate {
            max_tx_size: Some(9000),
            ..ParamsUpdate::default()
        };
        assert_eq!(
            update.apply_to(&current),
            ChainParams {
                max_tx_size: 9000,
                ..current
            }
        );
    }
}
