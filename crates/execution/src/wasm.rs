//! WASM contracts in execution: contract names, the registry of deployed contracts, loading a
//! contract's code into the node's runtime, and the chain's side of the host API
//! (`contracts::Host`) over a [`CallContext`] (docs/contracts.md §2).
//!
//! A deployed contract's keys live in its namespace `wasm/<name>`; the registry
//! (`contracts/deployed/<name>`, `contracts/code/<hash>`) is written only by the governance
//! contract's lifecycle changes. A call into another contract runs in a nested context, so the
//! callee's writes and events join the caller's only when it succeeds.

use contracts::{CallResult, CompiledModule, EntryPoint, Host, HostError, RunError, Runtime};
use crypto::Digest;

use crate::codes::FailureCode;
use crate::context::{CallContext, ContractError, SignerInfo};
use crate::error::ExecError;
use crate::keys::{self, CONTRACTS};
use crate::records::ContractRecord;
use crate::trace::{FreezeKind, FreezeRecord, TraceKind};
use crate::view::StateRead;

/// Longest contract name, in bytes.
pub const MAX_CONTRACT_NAME_LEN: usize = 32;

/// The most nested contract calls (a transaction's own call is depth 0).
pub const MAX_CALL_DEPTH: u32 = 8;

/// Names no WASM contract may take: the built-in contracts and the chain's namespaces.
pub const RESERVED_NAMES: &[&str] = &[
    "identity",
    "attestation",
    "governance",
    "chain",
    "contracts",
    "wasm",
    "supervision",
    "audit",
];

/// Checks a WASM contract's name: 1 to 32 bytes of `a-z`, `0-9`, `-` and `_`, starting with a
/// letter, and not a reserved name. The error says what is wrong.
pub fn check_contract_name(name: &str) -> Result<(), String> {
    let shape = !name.is_empty()
        && name.len() <= MAX_CONTRACT_NAME_LEN
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !shape {
        return Err(format!(
            "contract name {name:?} is not 1 to {MAX_CONTRACT_NAME_LEN} characters of a-z, 0-9, '-' and '_' starting with a letter"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "contract name {name:?} is reserved (the chain's own namespaces: {})",
            RESERVED_NAMES.join(", ")
        ));
    }
    Ok(())
}

/// Who may call a WASM contract: users and admins (the contract decides further from the
/// caller it is given); auditors read through queries and node certificates send nothing.
pub(crate) fn role_refusal(role: pki::Role, contract: &str) -> Option<String> {
    (!matches!(role, pki::Role::User | pki::Role::Admin))
        .then(|| format!("role {role} may not call the WASM contract {contract:?}"))
}

/// Returns the deployed contract `name`, if any.
pub fn contract(
    r: &(impl StateRead + ?Sized),
    name: &str,
) -> Result<Option<ContractRecord>, ExecError> {
    let key = keys::full(CONTRACTS, &keys::contracts::deployed(name));
    r.read(&key)?
        .map(|v| ContractRecord::decode(&key, &v))
        .transpose()
}

/// Returns the stored code with SM3 hash `hash`, if any.
pub fn code(r: &(impl StateRead + ?Sized), hash: &Digest) -> Result<Option<Vec<u8>>, ExecError> {
    r.read(&keys::full(CONTRACTS, &keys::contracts::code(hash)))
}

/// Returns a call's input (docs/contracts.md §2): `bytes(method) ‖ u32 count ‖ bytes(arg)…`.
pub fn encode_input(method: &str, args: &[Vec<u8>]) -> Vec<u8> {
    let mut w = types::codec::Writer::new();
    w.bytes(method.as_bytes());
    w.len(args.len());
    for a in args {
        w.bytes(a);
    }
    w.into_bytes()
}

/// Returns the caller's encoding (docs/contracts.md §2): `cert_id ‖ bytes(organisation) ‖
/// bytes(common name) ‖ bytes(role)`.
pub fn encode_caller(signer: &SignerInfo) -> Vec<u8> {
    let mut w = types::codec::Writer::new();
    w.fixed(signer.cert_id.as_bytes());
    w.bytes(signer.organisation.as_bytes());
    w.bytes(signer.common_name.as_bytes());
    w.bytes(signer.role.as_str().as_bytes());
    w.into_bytes()
}

/// A run failure as the contract error that fails the transaction.
fn run_failure(e: &RunError) -> ContractError {
    ContractError::Run {
        code: codes::Coded::code(e),
        message: e.to_string(),
    }
}

/// Returns the compiled module of `record`'s code: from the runtime's cache, else loaded from
/// the state, validated under the runtime's limits and compiled (which caches it).
fn load(
    runtime: &Runtime,
    r: &(impl StateRead + ?Sized),
    record: &ContractRecord,
) -> Result<CompiledModule, ContractError> {
    if let Some(m) = runtime.cached(&record.code_hash) {
        return Ok(m);
    }
    let key = keys::full(CONTRACTS, &keys::contracts::code(&record.code_hash));
    let bytes = code(r, &record.code_hash)?.ok_or_else(|| {
        ExecError::corrupt(
            &key,
            format!("the code of contract {:?} is missing", record.name),
        )
    })?;
    let deploy = |e: contracts::DeployError| ContractError::Run {
        code: codes::Coded::code(&e),
        message: format!("contract {:?}: {e}", record.name),
    };
    // Validated when proposed; the runtime's compile is the compile check.
    let module = contracts::validate_stored(&bytes, runtime.limits()).map_err(deploy)?;
    if module.hash() != record.code_hash {
        return Err(ExecError::corrupt(&key, "the code does not hash to its key").into());
    }
    runtime.compile_missed(&module).map_err(deploy)
}

/// What a run gave: the fuel it used, and its return data or why it failed.
pub(crate) struct Ran {
    /// Fuel used (charged whether or not the run succeeded).
    pub(crate) fuel_used: u64,
    /// The return data, or the failure (a [`ContractError::State`] stops the block).
    pub(crate) result: Result<Vec<u8>, ContractError>,
}

/// Runs `entry` of the deployed contract `record` with `input` and at most `fuel` fuel, in
/// `ctx` (a context whose namespace is the contract's, `wasm/<name>`). `caller_contract` is the
/// calling contract for a nested call; `depth` the call's nesting (0 for a transaction's).
#[allow(
    clippy::too_many_arguments,
    reason = "the run's inputs: who, what, with which budget, how deep"
)]
pub(crate) fn run(
    runtime: &Runtime,
    ctx: &mut CallContext<'_>,
    record: &ContractRecord,
    entry: EntryPoint,
    input: Vec<u8>,
    fuel: u64,
    caller_contract: Option<String>,
    depth: u32,
) -> Ran {
    let module = match load(runtime, ctx, record) {
        Ok(m) => m,
        Err(e) => {
            return Ran {
                fuel_used: 0,
                result: Err(e),
            };
        }
    };
    let mut host = ChainHost {
        runtime,
        ctx,
        name: record.name.clone(),
        input,
        caller_contract,
        depth,
        state_error: None,
    };
    let outcome = runtime.run(&module, entry, fuel, &mut host);
    let result = match outcome.result {
        Ok(()) => Ok(outcome.return_data),
        Err(RunError::HostState { message }) => Err(ContractError::State(
            host.state_error
                .take()
                .unwrap_or(ExecError::ContractState { message }),
        )),
        Err(e) => Err(run_failure(&e)),
    };
    Ran {
        fuel_used: outcome.fuel_used,
        result,
    }
}

/// Runs the lifecycle entry point `entry` (`init` after a deployment, `migrate` after an
/// upgrade) of `record`'s code in its namespace, nested in `ctx` (the governance call that
/// executes the change), when the module exports it, with at most `fuel` fuel, which is charged
/// to the transaction (the executing vote): its receipt and the block's fuel budget count it.
/// Its input is the entry's name and no arguments; its caller the transaction's signer (the
/// admin whose vote passed the change). A failure fails the change; running out of fuel says
/// that the executing vote must name a fuel limit.
pub(crate) fn run_lifecycle(
    ctx: &mut CallContext<'_>,
    record: &ContractRecord,
    entry: EntryPoint,
    fuel: u64,
) -> Result<(), ContractError> {
    let Some(runtime) = ctx.runtime() else {
        return Err(ContractError::failed(
            FailureCode::ContractInvalid,
            format!(
                "contract {:?}: {} runs only in a block's execution",
                record.name,
                entry.name()
            ),
        ));
    };
    // The module exports the entry point (the proposal recorded it from the module's
    // validation). A vote that cannot pay for starting it fails before anything is loaded, so a
    // failing vote costs the node no compilation.
    if fuel < crate::params::MIN_CALL_FUEL {
        return Err(ContractError::Run {
            code: &codes::CONTRACT_FUEL_EXHAUSTED,
            message: format!(
                "{} of contract {:?} needs at least {} fuel and the executing vote has {fuel} left: vote with a fuel limit",
                entry.name(),
                record.name,
                crate::params::MIN_CALL_FUEL
            ),
        });
    }
    let namespace = keys::wasm_namespace(&record.name);
    let mut used = 0;
    let result = ctx.nested(&namespace, |c| {
        let ran = run(
            runtime,
            c,
            record,
            entry,
            encode_input(entry.name(), &[]),
            fuel,
            None,
            0,
        );
        used = ran.fuel_used;
        match ran.result {
            Ok(_) => Ok(()),
            Err(ContractError::Run { code, message }) => {
                let hint = if code.number == codes::CONTRACT_FUEL_EXHAUSTED.number {
                    format!(
                        " (it had {fuel} fuel: what the executing vote's fuel limit left, at most max_fuel_per_tx; vote with a fuel limit)"
                    )
                } else {
                    String::new()
                };
                Err(ContractError::Run {
                    code,
                    message: format!(
                        "{} of contract {:?}: {message}{hint}",
                        entry.name(),
                        record.name
                    ),
                })
            }
            Err(e) => Err(e),
        }
    });
    ctx.charge(used.min(fuel))?;
    result
}

/// The chain's side of the host API for one running contract.
struct ChainHost<'r, 'c, 'a> {
    runtime: &'r Runtime,
    ctx: &'c mut CallContext<'a>,
    name: String,
    input: Vec<u8>,
    caller_contract: Option<String>,
    depth: u32,
    /// The state error behind a `HostError::State`, handed to the executor as it was.
    state_error: Option<ExecError>,
}

impl ChainHost<'_, '_, '_> {
    /// Maps a context's refusal to the host's: a state error is kept for the executor.
    fn refuse(&mut self, e: ContractError) -> HostError {
        match e {
            ContractError::State(e) => {
                let message = e.to_string();
                self.state_error = Some(e);
                HostError::State(message)
            }
            e @ ContractError::ReadOnly { .. } => HostError::Failed {
                code: &codes::CONTRACT_READ_ONLY,
                message: e.to_string(),
            },
            e => match e.into_failure() {
                Ok((code, message)) => HostError::Failed { code, message },
                Err(e) => {
                    let message = e.to_string();
                    self.state_error = Some(e);
                    HostError::State(message)
                }
            },
        }
    }

    fn failed_call(code: &'static codes::Code, message: String) -> CallResult {
        CallResult {
            ok: false,
            fuel_used: 0,
            return_data: format!("{} {message}", code.name).into_bytes(),
        }
    }
}

impl Host for ChainHost<'_, '_, '_> {
    fn input(&self) -> &[u8] {
        &self.input
    }

    fn storage_read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
        self.ctx.get(key).map_err(|e| self.refuse(e))
    }

    fn storage_write(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostError> {
        self.ctx
            .put(key, value.to_vec())
            .map_err(|e| self.refuse(e))
    }

    fn storage_remove(&mut self, key: &[u8]) -> Result<(), HostError> {
        self.ctx.delete(key).map_err(|e| self.refuse(e))
    }

    fn caller(&self) -> Vec<u8> {
        encode_caller(self.ctx.caller())
    }

    fn caller_contract(&self) -> Option<String> {
        self.caller_contract.clone()
    }

    fn block_height(&self) -> u64 {
        self.ctx.block().height.0
    }

    fn block_time_ms(&self) -> u64 {
        self.ctx.block().timestamp_ms
    }

    fn tx_id(&self) -> [u8; 32] {
        self.ctx.tx_id().as_bytes().to_owned()
    }

    fn emit(&mut self, name: &str, topics: Vec<Vec<u8>>, data: Vec<u8>) -> Result<(), HostError> {
        self.ctx
            .emit_with_topics(name, topics, data)
            .map_err(|e| self.refuse(e))
    }

    fn call(&mut self, name: &str, input: &[u8], fuel: u64) -> Result<CallResult, HostError> {
        let depth = self.depth.saturating_add(1);
        if depth > MAX_CALL_DEPTH {
            return Ok(Self::failed_call(
                &codes::CONTRACT_CALL_DEPTH,
                format!("more than {MAX_CALL_DEPTH} nested contract calls (calling {name:?})"),
            ));
        }
        let record = match contract(&*self.ctx, name) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Ok(Self::failed_call(
                    FailureCode::UnknownCall.code(),
                    format!("no deployed contract named {name:?}"),
                ));
            }
            Err(e) => return Err(self.refuse(e.into())),
        };
        if record.frozen {
            return Ok(Self::failed_call(
                FailureCode::ContractFrozen.code(),
                format!("contract {name:?} is frozen"),
            ));
        }
        // The supervisor's freeze binds a callee as it binds a transaction's own contract
        // (review 18: a frozen contract's code must not run behind another's call).
        // (Read here, not through `supervision::freeze`: that module is a later layer.)
        let frozen_key = keys::full(
            keys::SUPERVISION,
            &keys::supervision::frozen(FreezeKind::Contract.as_str(), name),
        );
        let frozen = self
            .ctx
            .read(&frozen_key)
            .and_then(|v| v.map(|v| FreezeRecord::decode(&frozen_key, &v)).transpose());
        match frozen {
            Ok(Some(f)) => {
                return Ok(Self::failed_call(
                    FailureCode::ContractFrozenBySupervisor.code(),
                    format!(
                        "contract {name:?} was frozen by the supervisor at height {} ({})",
                        f.height.0, f.reason
                    ),
                ));
            }
            Ok(None) => {}
            Err(e) => return Err(self.refuse(e.into())),
        }
        let namespace = keys::wasm_namespace(name);
        let runtime = self.runtime;
        let caller = self.name.clone();
        let mut fuel_used = 0;
        let result = self.ctx.nested(&namespace, |callee| {
            let ran = run(
                runtime,
                callee,
                &record,
                EntryPoint::Call,
                input.to_vec(),
                fuel,
                Some(caller),
                depth,
            );
            fuel_used = ran.fuel_used;
            ran.result
        });
        match result {
            // A callee that ran to the end is in its contract's trace like a transaction's
            // own contract (kept only if the transaction succeeds, as every declared subject).
            Ok(return_data) => {
                self.ctx.trace(TraceKind::Contract, name);
                Ok(CallResult {
                    ok: true,
                    fuel_used,
                    return_data,
                })
            }
            Err(ContractError::State(e)) => Err(self.refuse(ContractError::State(e))),
            Err(e) => match e.into_failure() {
                Ok((code, message)) => Ok(CallResult {
                    fuel_used,
                    ..Self::failed_call(code, message)
                }),
                Err(e) => Err(self.refuse(ContractError::State(e))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_names_are_checked() {
        for ok in [
            "a",
            "workflow",
            "licence-registry",
            "v2_cases",
            &"a".repeat(32),
        ] {
            assert_eq!(check_contract_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "is not"),
            ("Workflow", "is not"),
            ("1abc", "is not"),
            ("a/b", "is not"),
            ("a b", "is not"),
            (&"a".repeat(33), "is not"),
            ("identity", "reserved"),
            ("wasm", "reserved"),
        ] {
            let e = check_contract_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_input_is_the_calls_method_and_arguments_as_a_transaction_encodes_them() {
        let input = encode_input("step", &[b"c1".to_vec(), Vec::new()]);
        assert_eq!(
            hex::encode(input),
            "00000004737465700000000200000002633100000000"
        );
    }
}
