//! Block execution: the transactions in order over an overlay of the parent state, one
//! receipt each, and one state update for the block.

use std::collections::{BTreeMap, BTreeSet};

use crate::codes::FailureCode;
use crate::context::{
    BlockContext, CallContext, ContractError, CostMeter, Env, Phase, SignerInfo, Writes,
};
use crate::contract::{BUILTIN_CALL_COST, Denial};
use crate::error::ExecError;
use crate::keys::{self, AUDIT, IDENTITY};
use crate::params::ChainParams;
use crate::params_rule;
use crate::registry::Registry;
use crate::trace::{FreezeKind, MAX_ROWS_PER_ENTRY, TraceEntry, TraceKind, TraceRow};
use crate::validators;
use crate::verified::VerifiedTx;
use crate::view::StateRead;
use crate::wasm;
use crypto::Digest;
use state::{NodeStore, UpdateBatch};
use types::{ChainId, Event, Limits, Receipt, Status};

/// What executing a block produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockExecution {
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// The new state root and the nodes to persist for it.
    pub update: UpdateBatch,
    /// The validator set of the next height, as the block leaves the state (its hash goes
    /// into the header's `next_validator_set`).
    pub next_validators: types::ValidatorSet,
    /// The epoch the block recorded, when the next height's set differs from this one's.
    pub epoch: Option<crate::records::EpochRecord>,
    /// The parameter change the block applied (in force from the next height), if any.
    pub params_change: Option<crate::records::ParamsChange>,
}

/// Whether a write changes what decides a validator's standing: a CRL, a suspension or an
/// organisation record.
fn touches_validator_standing(key: &[u8]) -> bool {
    [
        &b"identity/crl/"[..],
        b"identity/suspended/",
        b"identity/org/",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// What a transaction's successful call left: its writes, events, output and the trace
/// subjects its contract declared.
type Done = (Writes, Vec<Event>, Vec<u8>, Vec<(TraceKind, String)>);

/// The bytes of code whose compiled modules a node keeps (least recently used dropped first):
/// all the code deployed contracts may run ([`crate::MAX_DEPLOYED_CODE_BYTES`]) and room for
/// 32 modules of the largest size a module may have (upgraded contracts' old code), so that a
/// deployed contract's module is compiled once per process however the calls rotate among
/// contracts (24 MiB of code at most, about 2.2 bytes of memory per byte of code).
pub const MODULE_CACHE_BYTES: usize = crate::MAX_DEPLOYED_CODE_BYTES as usize + 32 * 256 * 1024;

/// Executes blocks of admitted transactions.
#[derive(Debug)]
pub struct Executor {
    chain_id: ChainId,
    // The genesis parameters: used only on a state that holds none (`chain/params`).
    genesis_params: ChainParams,
    registry: Registry,
    // The node's contract runtime: the deterministic engine and the compiled-module cache.
    runtime: std::sync::Arc<contracts::Runtime>,
    // Whether each transaction is appended to the trace indexes (`audit/`). Always true but in
    // the benchmark's executor ([`Executor::without_trace_indexes_for_bench`]).
    trace_indexes: bool,
}

/// The parent state plus the writes of the block's successful transactions so far. Writes are
/// kept in a `BTreeMap`, so nothing depends on hashing order.
struct Overlay<'a, S: NodeStore + ?Sized> {
    store: &'a S,
    root: Digest,
    writes: Writes,
}

impl<S: NodeStore + ?Sized> StateRead for Overlay<'_, S> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExecError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(state::get(self.store, self.root, key)?),
        }
    }
}

impl Executor {
    /// Returns an executor for chain `chain_id` whose genesis parameters are `params`. A block
    /// is executed under the parameters in force in its parent's state (`chain/params`, which
    /// governance changes); `params` apply only to a state that holds none.
    pub fn new(chain_id: ChainId, params: &ChainParams) -> Self {
        Executor {
            chain_id,
            genesis_params: *params,
            registry: Registry::builtin(),
            runtime: std::sync::Arc::new(contracts::Runtime::new(
                contracts::Limits::default(),
                MODULE_CACHE_BYTES,
            )),
            trace_indexes: true,
        }
    }

    /// Benchmark only (`gmchain bench audit`): an executor that writes no trace index, so that
    /// the indexes' share of a block's commit time can be measured against the same blocks.
    /// Its state roots differ from every node's, so no chain can run on it: a block it executes
    /// is refused by any other validator, and a node never builds one.
    #[doc(hidden)]
    pub fn without_trace_indexes_for_bench(chain_id: ChainId, params: &ChainParams) -> Self {
        Executor {
            trace_indexes: false,
            ..Executor::new(chain_id, params)
        }
    }

    /// Executes `txs` in order on the state at `parent_root`. A transaction that fails gets a
    /// `Failed` receipt and leaves no write; an `Err` means the state could not be read and
    /// says nothing about the transactions. Deterministic: the same inputs give the same
    /// receipts and root.
    pub fn execute_block<S: NodeStore + ?Sized>(
        &self,
        store: &S,
        parent_root: Digest,
        ctx: &BlockContext,
        txs: &[VerifiedTx],
    ) -> Result<BlockExecution, ExecError> {
        let mut overlay = Overlay {
            store,
            root: parent_root,
            writes: BTreeMap::new(),
        };
        // The parameters of this block: those its parent's state holds, read once.
        let params = params_rule::in_force_or(&overlay, Some(&self.genesis_params))?
            .map_or(self.genesis_params, |p| p.params);
        let limits = params.limits();
        if txs.len() > limits.max_txs_per_block {
            return Err(ExecError::TooManyTxs {
                count: txs.len(),
                max: limits.max_txs_per_block,
            });
        }
        // The block's fuel budget: the transactions' limits, known before anything runs.
        let total = block_fuel(txs);
        if total > u128::from(params.max_fuel_per_block) {
            return Err(ExecError::FuelBudget {
                total,
                max: params.max_fuel_per_block,
            });
        }
        let mut receipts = Vec::with_capacity(txs.len());
        let mut traced: BTreeMap<(TraceKind, String), Vec<TraceRow>> = BTreeMap::new();
        let mut standing_txs: Vec<(types::TxId, Vec<Vec<u8>>)> = Vec::new();
        for (position, tx) in (0u32..).zip(txs) {
            let (fuel_used, result) = self.run(&overlay, ctx, &limits, tx);
            let mut subjects = Vec::new();
            let receipt = match result {
                Ok((writes, events, output, declared)) => {
                    subjects = declared;
                    let standing: Vec<Vec<u8>> = writes
                        .keys()
                        .filter(|k| touches_validator_standing(k))
                        .cloned()
                        .collect();
                    if !standing.is_empty() {
                        standing_txs.push((tx.id(), standing));
                    }
                    overlay.writes.extend(writes);
                    // The signer's certificate is recorded so later transactions may name it by
                    // ID (Sender::Registered).
                    let cert_key =
                        keys::full(IDENTITY, &keys::identity::cert(&tx.signer().cert_id));
                    if overlay.read(&cert_key)?.is_none() {
                        overlay
                            .writes
                            .insert(cert_key, Some(tx.certificate().der().to_vec()));
                    }
                    Receipt {
                        fuel_used: Some(fuel_used),
                        output,
                        tx_id: tx.id(),
                        status: Status::Success,
                        events,
                    }
                }
                Err(e) => {
                    let (code, message) = e.into_failure()?;
                    Receipt {
                        fuel_used: Some(fuel_used),
                        output: Vec::new(),
                        tx_id: tx.id(),
                        status: Status::Failed {
                            code: code.number,
                            message: bounded(message, limits.max_message_len),
                        },
                        events: Vec::new(),
                    }
                }
            };
            let code = match &receipt.status {
                Status::Success => 0,
                Status::Failed { code, .. } => *code,
            };
            if self.trace_indexes {
                collect_subjects(&mut traced, position, tx, code, subjects);
            }
            receipts.push(receipt);
        }
        // The trace indexes: one entry per subject the block touched.
        write_trace_entries(&mut overlay, ctx, traced)?;
        // The chain's validator rule: the set of the next height, from what the block left.
        let end = validators::end_block(&overlay, ctx.height, &standing_txs)?;
        overlay.writes.extend(end.writes);
        // The chain's parameter rule: the parameters of the next height.
        let (param_writes, params_change) = params_rule::end_block(&overlay, ctx.height)?;
        overlay.writes.extend(param_writes);
        let updates: Vec<(Vec<u8>, Option<Vec<u8>>)> = overlay.writes.into_iter().collect();
        let update = state::apply(store, parent_root, &updates)?;
        Ok(BlockExecution {
            receipts,
            update,
            next_validators: end.next,
            epoch: end.epoch,
            params_change,
        })
    }

    /// Runs one transaction: the fuel it used, and on success its writes, events and output.
    fn run<S: NodeStore + ?Sized>(
        &self,
        overlay: &Overlay<'_, S>,
        ctx: &BlockContext,
        limits: &Limits,
        tx: &VerifiedTx,
    ) -> (u64, Result<Done, ContractError>) {
        let body = &tx.signed().tx;
        // A transaction without a fuel limit (version 1) calls only the built-ins: it may spend
        // exactly what the block's fuel budget counts for it, one built-in call's fixed cost (so
        // a governance vote of version 1 cannot run a deployment's `init` for free).
        let meter = CostMeter::new(body.fuel_limit.unwrap_or(BUILTIN_CALL_COST));
        let env = Env {
            caller: tx.signer(),
            block: ctx,
            tx_id: tx.id(),
            limits,
            meter: &meter,
            phase: Phase::Execution,
            cas: None,
            runtime: Some(&self.runtime),
        };
        let result = self.call(overlay, env, tx);
        (meter.used(), result)
    }

    fn call<S: NodeStore + ?Sized>(
        &self,
        overlay: &Overlay<'_, S>,
        env: Env<'_>,
        tx: &VerifiedTx,
    ) -> Result<Done, ContractError> {
        let body = &tx.signed().tx;
        if body.chain_id != self.chain_id {
            return Err(ContractError::failed(
                FailureCode::WrongChain,
                format!("transaction is for chain {:?}", body.chain_id.as_str()),
            ));
        }
        let call = &body.call;
        let Some((contract, perm)) = self.registry.resolve(&call.contract, &call.method) else {
            return self.call_wasm(overlay, env, tx);
        };
        // Roles and the contract's own rules are checked here too, on the state the block's
        // earlier transactions left: execution must not depend on who admitted the
        // transaction.
        if let Some(why) = perm.role_refusal(tx.signer().role) {
            return Err(ContractError::failed(FailureCode::PermissionDenied, why));
        }
        // A proposal carrying a module pays for the module's checks before they run, whether
        // the proposal is then accepted or refused.
        if let Some(fuel) = crate::governance::proposal_module_fuel(call) {
            env.meter.charge(fuel)?;
        }
        contract.check_args(&call.method, &call.args)?;
        contract
            .authorize(
                &CallContext::read_only(contract.name(), overlay, env),
                &call.method,
                &call.args,
            )
            .map_err(Denial::into_failure)?;
        let mut cctx = CallContext::new(contract.name(), overlay, env);
        contract.call(&mut cctx, &call.method, &call.args)?;
        let (writes, events, subjects) = cctx.into_traced_parts();
        Ok((writes, events, Vec::new(), subjects))
    }

    /// Runs a call to a deployed WASM contract: its `call` entry point with the transaction's
    /// method and arguments as input, at most the transaction's fuel limit.
    fn call_wasm<S: NodeStore + ?Sized>(
        &self,
        overlay: &Overlay<'_, S>,
        env: Env<'_>,
        tx: &VerifiedTx,
    ) -> Result<Done, ContractError> {
        let call = &tx.signed().tx.call;
        let Some(record) = wasm::contract(overlay, &call.contract)? else {
            return Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!(
                    "no built-in method {}.{} and no deployed contract {:?}",
                    call.contract, call.method, call.contract
                ),
            ));
        };
        if let Some(why) = wasm::role_refusal(tx.signer().role, &record.name) {
            return Err(ContractError::failed(FailureCode::PermissionDenied, why));
        }
        let Some(limit) = tx
            .signed()
            .tx
            .fuel_limit
            .filter(|l| *l >= crate::params::MIN_CALL_FUEL)
        else {
            return Err(ContractError::failed(
                FailureCode::CostExceeded,
                format!(
                    "a call to the WASM contract {:?} needs a fuel limit of at least {} (a version 2 transaction)",
                    record.name,
                    crate::params::MIN_CALL_FUEL
                ),
            ));
        };
        if record.frozen {
            return Err(ContractError::failed(
                FailureCode::ContractFrozen,
                format!("contract {:?} is frozen", record.name),
            ));
        }
        if let Some(f) = crate::supervision::freeze(overlay, FreezeKind::Contract, &record.name)? {
            return Err(ContractError::failed(
                FailureCode::ContractFrozenBySupervisor,
                format!(
                    "contract {:?} was frozen by the supervisor at height {} ({})",
                    record.name, f.height.0, f.reason
                ),
            ));
        }
        let namespace = keys::wasm_namespace(&record.name);
        let mut cctx = CallContext::new(&namespace, overlay, env);
        let ran = wasm::run(
            &self.runtime,
            &mut cctx,
            &record,
            contracts::EntryPoint::Call,
            wasm::encode_input(&call.method, &call.args),
            limit,
            None,
            0,
        );
        // The run cannot use more than its limit, which is the meter's.
        env.meter.charge(ran.fuel_used.min(limit))?;
        let output = ran.result?;
        let (writes, events, subjects) = cctx.into_traced_parts();
        Ok((writes, events, output, subjects))
    }
}

/// What a read-only query of a WASM contract returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryAnswer {
    /// The contract's return data (`set_return`).
    pub output: Vec<u8>,
    /// The fuel the query used.
    pub fuel_used: u64,
}

impl Executor {
    /// Runs `contract.method(args)` read-only on the state at `root` (no transaction): the
    /// contract's `call` entry point in a read-only context (a write, removal or event fails the
    /// query with `CONTRACT_READ_ONLY`; its callees are read-only too), with `fuel` fuel, seen by
    /// `caller` (the client's identity), in the block `block` (the tip's successor height, the
    /// tip's time), with a zero transaction ID. A frozen contract still answers. Fuel below
    /// [`crate::MIN_CALL_FUEL`] fails with `TX_FUEL_LIMIT_TOO_LOW` before the module is
    /// loaded, as a transaction's call would be refused. `Err` with a
    /// [`ContractError::State`] means the state could not be read; any other error is the
    /// query's failure with its code.
    #[allow(
        clippy::too_many_arguments,
        reason = "a query's inputs: the state, the block, who asks, the call, the budget"
    )]
    pub fn query<S: NodeStore + ?Sized>(
        &self,
        store: &S,
        root: Digest,
        block: &BlockContext,
        caller: &SignerInfo,
        contract: &str,
        method: &str,
        args: &[Vec<u8>],
        fuel: u64,
    ) -> Result<QueryAnswer, ContractError> {
        // As for a call: a query that cannot pay for loading a module does not load it.
        if fuel < crate::MIN_CALL_FUEL {
            return Err(ContractError::Run {
                code: &codes::TX_FUEL_LIMIT_TOO_LOW,
                message: format!(
                    "a query names fuel {fuel}, below the {} a contract call needs",
                    crate::MIN_CALL_FUEL
                ),
            });
        }
        let overlay = Overlay {
            store,
            root,
            writes: BTreeMap::new(),
        };
        let Some(record) = wasm::contract(&overlay, contract)? else {
            return Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("no deployed contract {contract:?}"),
            ));
        };
        let limits = params_rule::in_force_or(&overlay, Some(&self.genesis_params))?
            .map_or(self.genesis_params, |p| p.params)
            .limits();
        let meter = CostMeter::new(fuel);
        let env = Env {
            caller,
            block,
            tx_id: types::TxId(Digest([0; 32])),
            limits: &limits,
            meter: &meter,
            phase: Phase::Execution,
            cas: None,
            runtime: Some(&self.runtime),
        };
        let namespace = keys::wasm_namespace(&record.name);
        let mut cctx = CallContext::read_only(&namespace, &overlay, env);
        let ran = wasm::run(
            &self.runtime,
            &mut cctx,
            &record,
            contracts::EntryPoint::Call,
            wasm::encode_input(method, args),
            fuel,
            None,
            0,
        );
        let output = ran.result?;
        Ok(QueryAnswer {
            output,
            fuel_used: ran.fuel_used,
        })
    }

    /// Returns the runtime's compiled-module cache counters (hits, misses, size).
    pub fn module_cache(&self) -> contracts::CacheStats {
        self.runtime.cache_stats()
    }
}

/// Notes the transaction under each subject it touches: its signer's certificate, its
/// signer's organisation and the contract it called, whatever its outcome, and, when it
/// succeeded, the subjects its contract declared (a dataset, a contract's lifecycle).
fn collect_subjects(
    traced: &mut BTreeMap<(TraceKind, String), Vec<TraceRow>>,
    position: u32,
    tx: &VerifiedTx,
    code: u32,
    declared: Vec<(TraceKind, String)>,
) {
    let signer = tx.signer();
    let call = &tx.signed().tx.call;
    let row = TraceRow {
        position,
        tx_id: tx.id().0,
        signer: signer.cert_id,
        organisation: signer.organisation.clone(),
        contract: call.contract.clone(),
        method: call.method.clone(),
        code,
    };
    let mut subjects: BTreeSet<(TraceKind, String)> = declared.into_iter().collect();
    subjects.insert((TraceKind::Cert, signer.cert_id.to_hex()));
    subjects.insert((TraceKind::Org, signer.organisation.clone()));
    subjects.insert((TraceKind::Contract, call.contract.clone()));
    for s in subjects {
        traced.entry(s).or_default().push(row.clone());
    }
}

/// Appends the block's entries to the trace indexes (`audit/` namespace): for each subject
/// the block touched, its transactions in block order, in entries of at most
/// [`MAX_ROWS_PER_ENTRY`], numbered on from the subject's counter, which is rewritten once.
/// Entries are only appended, so the entries of a height range are exactly those between the
/// counters at its two ends; one entry per subject per block keeps the index's writes to the
/// subjects a block touched, not its transactions.
fn write_trace_entries<S: NodeStore + ?Sized>(
    overlay: &mut Overlay<'_, S>,
    ctx: &BlockContext,
    traced: BTreeMap<(TraceKind, String), Vec<TraceRow>>,
) -> Result<(), ExecError> {
    for ((kind, id), rows) in traced {
        let count_key = keys::full(AUDIT, &keys::audit::count(kind.as_str(), &id));
        let mut n = crate::records::decode_u64(&count_key, overlay.read(&count_key)?.as_deref())?;
        for chunk in rows.chunks(MAX_ROWS_PER_ENTRY) {
            let entry = TraceEntry {
                height: ctx.height,
                timestamp_ms: ctx.timestamp_ms,
                rows: chunk.to_vec(),
            };
            overlay.writes.insert(
                keys::full(AUDIT, &keys::audit::entry(kind.as_str(), &id, n)),
                Some(entry.encode()),
            );
            n = n.saturating_add(1);
        }
        overlay
            .writes
            .insert(count_key, Some(n.to_be_bytes().to_vec()));
    }
    Ok(())
}

/// Returns the fuel a block's transactions name in total: each one's limit, or
/// [`BUILTIN_CALL_COST`] for a transaction without one.
pub(crate) fn block_fuel(txs: &[VerifiedTx]) -> u128 {
    txs.iter()
        .map(|t| u128::from(t.signed().tx.fuel_limit.unwrap_or(BUILTIN_CALL_COST)))
        .sum()
}

/// Cuts `message` to at most `max` bytes on a character boundary.
fn bounded(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut end = max;
        while end > 0 && !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn message_bound_respects_char_boundaries() {
        assert_eq!(bounded("abc".into(), 5), "abc");
        assert_eq!(bounded("存证".into(), 4), "存");
        assert_eq!(bounded("存证".into(), 2), "");
    }
}
