//! Deterministic execution for gmchain: the genesis file and block 0, the built-in system
//! contracts (`identity`: organisations, their CA certificates, CRLs and suspensions;
//! `attestation`: 存证, SM3 digests anchored with metadata), the permission table, and
//! transaction admission.
//!
//! Admission ([`Admission`]) checks a transaction once: size, form, chain, expiry, duplicate,
//! call and argument shape, the signer's certificate chain against the organisations' registered
//! CAs with their recorded CRLs, suspension, the SM2 signature, the permission table's roles and
//! the contract's own authorisation hook ([`Contract::authorize`]). The result is a
//! [`VerifiedTx`], which only [`Admission`] constructs and which the [`Executor`] requires.
//! Before commit, [`Admission::recheck`] repeats only what can change: revocation, suspension,
//! expiry, duplicates and permissions.
//!
//! Execution ([`Executor::execute_block`]) runs the transactions in order over an overlay of the
//! parent state: each call in a [`CallContext`] with its own write overlay (nestable, for calls
//! between contracts), an event sink, a cost meter and a read-only mode (hooks, queries); a
//! transaction that fails gets a `Failed` receipt with a stable code and its writes are
//! discarded; the block's surviving writes become one [`state::UpdateBatch`].
//!
//! What it refuses to do: read a clock, a file, a socket or an entropy source (time comes in
//! [`AdmitContext`] and [`BlockContext`]); let iteration order of a hash map reach the state
//! (writes are kept in ordered maps); let a contract touch another contract's keys; grant a
//! role (the role is the certificate's, the chain can only suspend it); treat a failing
//! transaction as an infrastructure error ([`ExecError`] is only for an unreadable or corrupt
//! state); name a contract or method in admission or the executor (what is particular to a
//! contract is behind [`Contract`]). The WASM engine is not here: [`Contract`] is the interface
//! it will implement.
//!
//! Formats, key layout, permission table and every code: `docs/execution.md`.
//!
//! # Layers
//!
//! The modules form layers, read bottom up; each imports only modules of earlier layers, so
//! none is part of a cycle. The test `layers::modules_import_only_earlier_layers` reads this
//! list and fails on any import against it.
//!
//! 1. `codes`, `error`, `keys`: stable codes, the crate's errors, the state key layout.
//! 2. `params`: the chain parameters and the limits they tighten.
//! 3. `records`, `trace`: state records and their canonical encoding (supervision's records
//!    and the trace indexes' entries apart).
//! 4. `view`: reading the state at a root ([`StateRead`], [`StateView`]).
//! 5. `context`: the call context: who calls in which block, the write overlay, events, the
//!    cost meter, the read-only mode and the phase (admission, recheck, execution).
//! 6. `contract`: the contract interface and its authorisation hook.
//! 7. `validators`, `params_rule`, `wasm`: the chain's validator and parameter rules (the set
//!    and the parameters of each height, from the state); WASM contract names, the registry of
//!    deployed contracts and the chain's side of the host API.
//! 8. `identity`, `attestation`, `exchange`, `supervision`: the built-in contracts of
//!    organisations, attestations, data exchange and the supervisor's freezes.
//! 9. `governance`: the built-in contract of proposals (its organisation changes run
//!    identity's code, nested in identity's namespace).
//! 10. `registry`: which contract owns which method, and the permission table.
//! 11. `verified`: the admitted transaction.
//! 12. `admission`, `executor`: judging a transaction, executing a block.
//! 13. `genesis`: the genesis file and block 0.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod admission;
mod attestation;
mod codes;
mod context;
mod contract;
mod error;
mod exchange;
mod executor;
mod genesis;
mod governance;
mod identity;
pub mod keys;
mod params;
mod params_rule;
mod records;
mod registry;
mod supervision;
mod trace;
mod validators;
mod verified;
mod view;
mod wasm;

pub use admission::{
    Admission, AdmitContext, CERT_CACHE_CAPACITY, MemberRefusal, REFUSAL_CACHE_CAPACITY, Seen,
};
pub use attestation::AttestationContract;
pub use codes::{FailureCode, RejectCode, Rejection};
pub use context::{BlockContext, CaValidation, CallContext, ContractError, Phase, SignerInfo};
pub use contract::{BUILTIN_CALL_COST, Contract, Denial};
pub use error::{ExecError, GenesisError};
pub use exchange::ExchangeContract;
/// The data-exchange contract's records and reads (`exchange` namespace).
pub mod data {
    pub use crate::exchange::*;
}
pub use executor::{BlockExecution, Executor, MODULE_CACHE_BYTES, QueryAnswer};
pub use genesis::{
    GENESIS_DOMAIN, GENESIS_FORMAT, Genesis, GenesisBlock, GenesisOrg, GenesisSupervision,
    GenesisValidator,
};
pub use governance::{
    CRL_RENEWAL_MARGIN, ContractChange, GovernanceContract, MAX_DEPLOYED_CODE_BYTES,
    MAX_ELECTORATE, MAX_OPEN_MODULE_PROPOSALS, MAX_VOTING_PERIOD, POLICY_KINDS, Policy, Proposal,
    ProposalKind, ProposalRecord, ProposalStatus, deployed_code_bytes, parse_proposal, parse_vote,
    policy, read_proposal,
};
pub use identity::{IdentityContract, register_org_ca};
pub use params::{
    ChainParams, DEFAULT_MAX_FUEL_PER_BLOCK, DEFAULT_MAX_FUEL_PER_TX, MAX_EXPIRY_WINDOW,
    MAX_FUEL_PER_BLOCK_CEILING, MAX_FUEL_PER_TX_CEILING, MIN_CALL_FUEL, MIN_FUEL_PARAM,
    MIN_MAX_TX_SIZE, ParamsUpdate,
};
pub use params_rule::{
    ParamsInForce, history as params_history, in_force as params_in_force,
    pending as pending_params,
};
pub use records::{
    Attestation, AttestationId, ContractRecord, EpochRecord, MAX_KIND_LEN, MAX_METADATA_LEN,
    MAX_POINTER_LEN, OrgRecord, ParamsChange, PendingChange, PendingParams, SuspensionRecord,
    ValidatorChange, ValidatorRecord,
};
pub use registry::{PERMISSIONS, Permission, Registry, permission};
pub use supervision::{
    SupervisionContract, freeze as supervisor_freeze, log_anchor_statement, log_head,
    signer_refusal as supervisor_refusal, supervisor,
};
pub use trace::{
    FreezeKind, FreezePolicy, FreezeRecord, LogHead, MAX_REASON_LEN, MAX_ROWS_PER_ENTRY,
    SupervisorRecord, TraceEntry, TraceKind, TraceRow,
};
pub use validators::{
    EndOfBlock, current as current_validators, epochs, exclusion, pending, to_set,
};
pub use verified::VerifiedTx;
pub use view::{AnchorList, MAX_PAGE, StateRead, StateView};
pub use wasm::{
    MAX_CALL_DEPTH, MAX_CONTRACT_NAME_LEN, RESERVED_NAMES, check_contract_name,
    code as contract_code, contract, encode_caller, encode_input,
};
