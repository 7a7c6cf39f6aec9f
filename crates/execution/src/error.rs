//! The crate's errors: [`ExecError`] for infrastructure failures, [`GenesisError`] for a
//! genesis file that cannot start a chain. A transaction's own failure is never an error here:
//! admission returns a [`crate::Rejection`], execution a `Failed` receipt.

use thiserror::Error;

/// An infrastructure failure: the state cannot be read or holds a record that does not decode.
/// A node that gets one must stop executing the block; it says nothing about the transactions.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The state tree or its node store failed.
    #[error("state store failed: {0}")]
    State(#[from] state::StateError),
    /// A state record does not decode: the store is corrupt or was written by another version.
    #[error("corrupt state record at key {key:?}: {reason}")]
    CorruptRecord {
        /// The state key (lossy UTF-8).
        key: String,
        /// What was wrong with the value.
        reason: String,
    },
    /// A block with more transactions than the chain's limit.
    #[error("block holds {count} transactions, more than the limit of {max}")]
    TooManyTxs {
        /// How many the block holds.
        count: usize,
        /// The limit (`ChainParams::max_txs_per_block`).
        max: usize,
    },
    /// A block whose transactions name more fuel in total than the chain's limit.
    #[error("block's transactions name {total} fuel in total, more than max_fuel_per_block {max}")]
    FuelBudget {
        /// The sum of the transactions' fuel limits (a transaction without one counts
        /// `BUILTIN_CALL_COST`).
        total: u128,
        /// The limit (`ChainParams::max_fuel_per_block`).
        max: u64,
    },
    /// A contract's run reported that the state could not be read, without the error itself
    /// (the chain's host always keeps it; this is the fallback).
    #[error("the state could not be read while a contract ran: {message}")]
    ContractState {
        /// The runtime's message.
        message: String,
    },
    /// The genesis validators do not form a validator set.
    #[error("the genesis validators do not form a validator set: {0}")]
    ValidatorSet(#[from] types::ValidatorSetError),
}

impl ExecError {
    pub(crate) fn corrupt(key: &[u8], reason: impl ToString) -> Self {
        ExecError::CorruptRecord {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Why a genesis file was refused. Every variant names the field, as a JSON path
/// (`organisations[1].ca_cert`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenesisError {
    /// The file is not JSON.
    #[error("genesis: not valid JSON: {reason}")]
    Json {
        /// The parser's message (with line and column).
        reason: String,
    },
    /// A field is missing, unknown, of the wrong type or has a refused value.
    #[error("{field}: {problem}")]
    Field {
        /// The JSON path of the field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl GenesisError {
    pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        GenesisError::Field {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
