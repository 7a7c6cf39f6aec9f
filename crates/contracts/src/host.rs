//! What the chain gives a running contract: the [`Host`] trait (`execution` implements it over
//! the state), a nested call's [`CallResult`], and why a host function failed ([`HostError`]).
//! The WebAssembly side of the host API (the `gmchain` imports, their bounds and fuel) is
//! `crate::abi`; this module only states what the runtime asks of the chain.

use crate::error::RunError;

/// What the chain gives a running contract; `execution` implements it over the state.
///
/// The runtime checks every argument a contract passes against `docs/contracts.md` §2 and
/// charges its fuel before it calls a method here, so an implementation sees only arguments
/// within the bounds. Implementations must be deterministic: the same state and the same calls
/// give the same answers on every node.
pub trait Host {
    /// The call's input (docs/contracts.md §2 "Input").
    fn input(&self) -> &[u8];
    /// Reads the contract's own key (no namespace: the host adds it); `None` when absent.
    fn storage_read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, HostError>;
    /// Writes the contract's own key.
    fn storage_write(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostError>;
    /// Removes the contract's own key.
    fn storage_remove(&mut self, key: &[u8]) -> Result<(), HostError>;
    /// The signer in the canonical caller encoding.
    fn caller(&self) -> Vec<u8>;
    /// The calling contract's name; `None` when a transaction or query called.
    fn caller_contract(&self) -> Option<String>;
    /// The height of the block being executed (for a query: the tip's height + 1).
    fn block_height(&self) -> u64;
    /// The block's timestamp in ms since the Unix epoch as its proposer stated it.
    fn block_time_ms(&self) -> u64;
    /// The transaction's ID (for a query: 32 zero bytes).
    fn tx_id(&self) -> [u8; 32];
    /// Emits an event of this contract. `name` is already checked by the runtime against §2's
    /// bounds (1–64 printable ASCII, no space), topics ≤ 4 of 1–64 bytes, data ≤ 16 384 bytes;
    /// the host counts events per transaction.
    fn emit(&mut self, name: &str, topics: Vec<Vec<u8>>, data: Vec<u8>) -> Result<(), HostError>;
    /// Runs contract `name` with `input`, giving it at most `fuel` fuel. The host handles depth,
    /// lookup, the callee's run (a nested [`crate::Runtime::run`]) and reverting the callee's
    /// writes. A callee that fails is `Ok` with `ok: false` (see [`crate::Outcome::call_result`]);
    /// an `Err` ends the caller's run too.
    fn call(&mut self, name: &str, input: &[u8], fuel: u64) -> Result<CallResult, HostError>;
}

/// A nested call's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallResult {
    /// Whether the callee's entry point returned (its writes and events join the caller's).
    pub ok: bool,
    /// Fuel the callee used; the runtime charges it to the caller.
    pub fuel_used: u64,
    /// The callee's return data; on failure `"<code> <message>"` in UTF-8.
    pub return_data: Vec<u8>,
}

/// Why a host function could not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The run fails with this code and message (a write in a read-only call, too many events…).
    #[error("{message}")]
    Failed {
        /// The run's code ([`RunError::Host`] reports it as its own).
        code: &'static codes::Code,
        /// What was refused.
        message: String,
    },
    /// The state could not be read: the run stops with [`RunError::HostState`]; the executor
    /// stops the block.
    #[error("the node could not read its state: {0}")]
    State(String),
}

impl From<HostError> for RunError {
    fn from(e: HostError) -> RunError {
        match e {
            HostError::Failed { code, message } => RunError::Host { code, message },
            HostError::State(message) => RunError::HostState { message },
        }
    }
}
