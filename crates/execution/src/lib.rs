//! Deterministic execution for gmchain: the genesis file and block 0, the built-in system
//! contracts (`identity`: organisations, their CA certificates, CRLs and suspensions;
//! `attestation`: 存证, SM3 digests anchored with metadata), the permission table, and
//! transaction admission.
//!
//! Admission ([`Admission`]) checks a transaction once: size, form, chain, expiry, duplicate,
//! call and argument shape, the signer's certificate chain against the organisations' registered
//! CAs with their recorded CRLs, suspension, the SM2 signature and the permission table. The
//! result is a [`VerifiedTx`], which only [`Admission`] constructs and which the [`Executor`]
//! requires. Before commit, [`Admission::recheck`] repeats only what can change: revocation,
//! suspension, expiry, duplicates and permissions.
//!
//! Execution ([`Executor::execute_block`]) runs the transactions in order over an overlay of the
//! parent state: a transaction that fails gets a `Failed` receipt with a stable code and its
//! writes are discarded; the block's surviving writes become one [`state::UpdateBatch`].
//!
//! What it refuses to do: read a clock, a file, a socket or an entropy source (time comes in
//! [`AdmitContext`] and [`BlockContext`]); let iteration order of a hash map reach the state
//! (writes are kept in ordered maps); let a contract touch another contract's keys; grant a
//! role (the role is the certificate's, the chain can only suspend it); treat a failing
//! transaction as an infrastructure error ([`ExecError`] is only for an unreadable or corrupt
//! state). The WASM engine is not here: [`Contract`] is the interface it will implement.
//!
//! Formats, key layout, permission table and every code: `docs/execution.md`.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod admission;
mod attestation;
mod codes;
mod contract;
mod error;
mod executor;
mod genesis;
mod identity;
pub mod keys;
mod records;
mod view;

pub use admission::{
    Admission, AdmitContext, CERT_CACHE_CAPACITY, REFUSAL_CACHE_CAPACITY, Seen, SignerInfo,
    VerifiedTx,
};
pub use attestation::{AttestationContract, MAX_KIND_LEN, MAX_METADATA_LEN, MAX_POINTER_LEN};
pub use codes::{FailureCode, RejectCode, Rejection};
pub use contract::{
    CallContext, Contract, ContractError, PERMISSIONS, Permission, Registry, permission,
};
pub use error::{ExecError, GenesisError};
pub use executor::{BlockContext, BlockExecution, Executor};
pub use genesis::{
    ChainParams, GENESIS_DOMAIN, GENESIS_FORMAT, Genesis, GenesisBlock, GenesisOrg,
    GenesisValidator,
};
pub use identity::{IdentityContract, register_org_ca};
pub use records::{Attestation, AttestationId, OrgRecord, SuspensionRecord, ValidatorRecord};
pub use view::{MAX_PAGE, StateRead, StateView};
