//! The contract interface: what a contract implements, built in today, a WASM module later.
//!
//! A contract sees the world only through a [`CallContext`]. Besides its calls it has an
//! authorisation hook, [`Contract::authorize`]: its own rules on who may make a call, run
//! read-only at admission (where a refusal is a `Rejection`), at recheck, and again in
//! execution before the call (where a refusal fails the transaction), each time against the
//! state of that moment. Admission and the executor know no contract by name.

use crate::codes::{FailureCode, RejectCode, Rejection};
use crate::context::{CallContext, ContractError};
use crate::error::ExecError;
use pki::{Certificate, Crl};

/// What one call of a built-in contract costs, in cost units: a fixed charge made by the
/// contract at the start of every call (docs/execution.md §4). Nothing else charges yet; fuel
/// for WASM contracts is issue 14's.
pub const BUILTIN_CALL_COST: u64 = 1_000;

/// An argument that must be a big-endian u64: its value, or `EXEC_BAD_ARGUMENTS` naming `what`
/// (the built-in contracts' shared argument rule).
pub(crate) fn u64_be(arg: &[u8], what: &str) -> Result<u64, ContractError> {
    <[u8; 8]>::try_from(arg)
        .map(u64::from_be_bytes)
        .map_err(|_| {
            ContractError::failed(
                FailureCode::BadArguments,
                format!("{what}: {} bytes, expected 8 (big-endian)", arg.len()),
            )
        })
}

/// An argument that must be 32 bytes (an SM3 digest or an ID): its value, or
/// `EXEC_BAD_ARGUMENTS` naming `what`.
pub(crate) fn digest_arg(arg: &[u8], what: &str) -> Result<crypto::Digest, ContractError> {
    <[u8; 32]>::try_from(arg).map(crypto::Digest).map_err(|_| {
        ContractError::failed(
            FailureCode::BadArguments,
            format!("{what}: {} bytes, expected 32", arg.len()),
        )
    })
}

/// Why an authorisation hook refused a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// Refused: admission and recheck answer `reject`, execution records `failure`, both with
    /// `message`.
    #[error("{message}")]
    Refused {
        /// The rejection code at admission and recheck.
        reject: RejectCode,
        /// The failure code in execution.
        failure: FailureCode,
        /// What was wrong.
        message: String,
    },
    /// The state could not be read.
    #[error(transparent)]
    State(#[from] ExecError),
}

impl Denial {
    /// Returns a refusal with its admission and execution codes.
    pub fn refused(reject: RejectCode, failure: FailureCode, message: impl Into<String>) -> Self {
        Denial::Refused {
            reject,
            failure,
            message: message.into(),
        }
    }

    /// Returns the rejection admission answers: a refusal's `reject` code, or
    /// `TX_STATE_UNAVAILABLE` when the state could not be read.
    pub fn into_rejection(self) -> Rejection {
        match self {
            Denial::Refused {
                reject, message, ..
            } => Rejection::new(reject, message),
            Denial::State(e) => Rejection::new(
                RejectCode::StateUnavailable,
                format!("cannot read state: {e}"),
            ),
        }
    }

    /// Returns the error execution fails the transaction with: a refusal's `failure` code, or
    /// the state error that stops the block.
    pub fn into_failure(self) -> ContractError {
        match self {
            Denial::Refused {
                failure, message, ..
            } => ContractError::Failed {
                code: failure,
                message,
            },
            Denial::State(e) => ContractError::State(e),
        }
    }
}

/// A hook's own failure (an argument that does not parse, a read-only or cost refusal) denies
/// the call: as a bad argument or unknown call where it says so, else as not permitted.
impl From<ContractError> for Denial {
    fn from(e: ContractError) -> Self {
        match e {
            ContractError::Failed { code, message } => {
                let reject = match code {
                    FailureCode::BadArguments => RejectCode::BadArguments,
                    FailureCode::UnknownCall => RejectCode::UnknownCall,
                    _ => RejectCode::PermissionDenied,
                };
                Denial::refused(reject, code, message)
            }
            ContractError::State(e) => Denial::State(e),
            e => Denial::refused(
                RejectCode::PermissionDenied,
                FailureCode::PermissionDenied,
                e.to_string(),
            ),
        }
    }
}

/// A contract: built in today, a WASM module later.
pub trait Contract: Send + Sync + core::fmt::Debug {
    /// Returns the contract's name, which is also its state namespace.
    fn name(&self) -> &'static str;

    /// Returns the methods a transaction may call.
    fn methods(&self) -> &'static [&'static str];

    /// Checks the shape of the arguments without state (counts, lengths, parseable values).
    /// Admission calls it and refuses with `TX_BAD_ARGUMENTS`; the executor calls it again.
    fn check_args(&self, method: &str, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let _ = (method, args);
        Ok(())
    }

    /// Returns the CA certificate and CRL that the call brings along and that certify its own
    /// signer, who is not certified through a registered CA yet (`identity.register_org`).
    /// Admission then validates the signer through that CA, which must be the first CA on its
    /// path; an `Err` is refused with `TX_BAD_ARGUMENTS`. The default: none.
    fn introduced_ca(
        &self,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<Option<(Certificate, Crl)>, ContractError> {
        let _ = (method, args);
        Ok(None)
    }

    /// The contract's own rules on who may make this call (the organisation rules of
    /// docs/execution.md §5), checked after the permission table's role check and
    /// [`Contract::check_args`], in a read-only context on the state of the moment: at
    /// admission ([`crate::Phase::Admission`]), at recheck, and in execution before
    /// [`Contract::call`], which may rely on them. The default allows every call.
    fn authorize(
        &self,
        ctx: &CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), Denial> {
        let _ = (ctx, method, args);
        Ok(())
    }

    /// Runs `method`. On `Err` every write and event of the call is discarded.
    fn call(
        &self,
        ctx: &mut CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), ContractError>;
}
