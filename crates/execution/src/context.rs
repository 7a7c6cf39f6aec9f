//! The call context: everything a contract call sees and may do, and nothing else.
//!
//! A [`CallContext`] reads through its own write overlay down to the state it was given (the
//! state at a root, the executor's block overlay, or an enclosing call). Its writes and events
//! stay in that overlay: the executor keeps them only when the call succeeds, and a nested call
//! (a call into another contract, [`CallContext::nested`]) joins them to its caller's only when
//! it succeeds, so a failing callee leaves nothing behind. A cost meter, shared by a
//! transaction's nested calls, counts what they cost against a limit. A read-only context
//! (authorisation hooks, queries) refuses every write and event.
//!
//! It gives no clock, no randomness and no other contract's keys: every key is prefixed with the
//! namespace of the contract that runs, so the WASM engine of a later release can offer the same
//! operations as host functions.

use std::cell::Cell;
use std::collections::BTreeMap;

use crate::codes::FailureCode;
use crate::error::ExecError;
use crate::keys;
use crate::trace::TraceKind;
use crate::view::StateRead;
use crypto::Digest;
use pki::{Certificate, ChainError, Role};
use types::{Event, Height, Limits, TxId};

/// Writes by full key; `None` deletes.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Who signed an admitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerInfo {
    /// SM3 of the signer's certificate (DER).
    pub cert_id: Digest,
    /// The signer's organisation: the O of the registered CA that anchors the chain (for
    /// `identity.register_org`, the new organisation).
    pub organisation: String,
    /// The certificate's common name.
    pub common_name: String,
    /// The certificate's role.
    pub role: Role,
}

/// The block being executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// Its height.
    pub height: Height,
    /// Its timestamp (ms since the Unix epoch), as the proposer stated it.
    pub timestamp_ms: u64,
}

/// When a contract's code runs: it tells an authorisation hook which checks to make and how
/// its refusals are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Admission of a new transaction, against the state at the tip: every check, including
    /// those too costly to repeat (a CRL's signature). A refusal is a `Rejection`.
    Admission,
    /// Admission's recheck before commit, against the state of that time: what can change
    /// since admission.
    Recheck,
    /// Execution in a block, against the state the block's earlier transactions left. A
    /// refusal fails the transaction (a `Failed` receipt).
    Execution,
}

/// Certificate validation in the consortium as admission runs it: the founding CAs as trust
/// anchors, the CAs of organisations registered later as intermediates, the recorded CRLs and
/// the admission time. Offered to authorisation hooks at admission and recheck only.
pub trait CaValidation {
    /// Validates `cert` for the role `intended`. Returns its path (`cert` first, the founding
    /// CA last), or the chain error; `Err` when the state could not be read.
    fn validate(
        &self,
        cert: &Certificate,
        intended: Role,
    ) -> Result<Result<Vec<Certificate>, ChainError>, ExecError>;
}

/// How a contract call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The transaction fails: its writes are discarded and its receipt says `Failed`.
    #[error("{code}: {message}")]
    Failed {
        /// The stable failure code.
        code: FailureCode,
        /// What was wrong.
        message: String,
    },
    /// A write, delete or event in a read-only context (an authorisation hook or a query).
    #[error("{contract}: a read-only call may not {action}")]
    ReadOnly {
        /// The namespace of the contract whose call tried.
        contract: String,
        /// What it tried ("write", "delete", "emit an event").
        action: &'static str,
    },
    /// A charge that would take the cost meter past its limit; the charge is not made.
    #[error("cost limit of {limit} units exceeded: {used} used, {requested} more requested")]
    CostExceeded {
        /// The meter's limit.
        limit: u64,
        /// What was used before the refused charge.
        used: u64,
        /// The refused charge.
        requested: u64,
    },
    /// A WASM contract's run failed (a trap, fuel, a bound, an abort, a refused host call):
    /// the transaction fails with the contracts crate's code.
    #[error("{}: {message}", code.name)]
    Run {
        /// The stable code (range 3200–3299 or the host's refusal).
        code: &'static codes::Code,
        /// What went wrong.
        message: String,
    },
    /// The state could not be read: the whole block stops with this error.
    #[error(transparent)]
    State(#[from] ExecError),
}

impl ContractError {
    /// Returns a failure with `code` and `message`.
    pub fn failed(code: FailureCode, message: impl Into<String>) -> Self {
        ContractError::Failed {
            code,
            message: message.into(),
        }
    }

    /// Returns the code and message of the `Failed` receipt this error gives, or the
    /// infrastructure error that stops the block. A read-only refusal and an exceeded meter
    /// cannot happen in execution today (its calls are read-write and its meter has no limit);
    /// they have their own codes for the WASM contracts of issue 14.
    pub(crate) fn into_failure(self) -> Result<(&'static codes::Code, String), ExecError> {
        match self {
            ContractError::Failed { code, message } => Ok((code.code(), message)),
            e @ ContractError::ReadOnly { .. } => Ok((FailureCode::ReadOnly.code(), e.to_string())),
            e @ ContractError::CostExceeded { .. } => {
                Ok((FailureCode::CostExceeded.code(), e.to_string()))
            }
            ContractError::Run { code, message } => Ok((code, message)),
            ContractError::State(e) => Err(e),
        }
    }
}

/// Counts, in cost units, what a transaction's calls cost, against a limit. Nested calls share
/// the transaction's meter: what a callee spent stays spent even when its writes are discarded.
#[derive(Debug)]
pub(crate) struct CostMeter {
    limit: u64,
    used: Cell<u64>,
}

impl CostMeter {
    /// Returns a meter that refuses charges past `limit` units.
    pub(crate) fn new(limit: u64) -> Self {
        CostMeter {
            limit,
            used: Cell::new(0),
        }
    }

    /// Returns a meter without a limit: there is no per-transaction limit until transactions
    /// name one (issue 14's `max_fuel_per_tx`).
    pub(crate) fn unlimited() -> Self {
        CostMeter::new(u64::MAX)
    }

    /// Returns the units charged so far.
    pub(crate) fn used(&self) -> u64 {
        self.used.get()
    }

    /// Returns the units left before the limit.
    pub(crate) fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used.get())
    }

    /// Charges `units`, or refuses without charging when that would pass the limit.
    pub(crate) fn charge(&self, units: u64) -> Result<(), ContractError> {
        let used = self.used.get();
        match used.checked_add(units) {
            Some(total) if total <= self.limit => {
                self.used.set(total);
                Ok(())
            }
            _ => Err(ContractError::CostExceeded {
                limit: self.limit,
                used,
                requested: units,
            }),
        }
    }
}

/// What every call of one transaction shares: who calls, in which block, the limits, the
/// meter, the phase and (at admission) certificate validation.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub(crate) caller: &'a SignerInfo,
    pub(crate) block: &'a BlockContext,
    pub(crate) tx_id: TxId,
    pub(crate) limits: &'a Limits,
    pub(crate) meter: &'a CostMeter,
    pub(crate) phase: Phase,
    pub(crate) cas: Option<&'a dyn CaValidation>,
    /// The node's contract runtime, in execution (governance's deployments run `init` and
    /// upgrades `migrate`); `None` at admission and recheck.
    pub(crate) runtime: Option<&'a contracts::Runtime>,
}

/// What a contract call may see and do.
pub struct CallContext<'a> {
    namespace: &'a str,
    base: &'a dyn StateRead,
    writes: Writes,
    events: Vec<Event>,
    /// The trace subjects the call declared (a dataset, a contract's lifecycle, a certificate
    /// or organisation it acts on, a contract it called): indexed by the executor when the
    /// transaction succeeds.
    subjects: Vec<(TraceKind, String)>,
    /// Events of the enclosing calls, which count against the receipt's limit too.
    events_before: usize,
    read_only: bool,
    depth: u32,
    env: Env<'a>,
}

impl core::fmt::Debug for CallContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CallContext")
            .field("namespace", &self.namespace)
            .field("writes", &self.writes.len())
            .field("events", &self.events.len())
            .field("read_only", &self.read_only)
            .field("depth", &self.depth)
            .field("phase", &self.env.phase)
            .field("tx_id", &self.env.tx_id)
            .finish()
    }
}

/// Reads by full key: the context's own writes first, then what it stands on.
impl StateRead for CallContext<'_> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExecError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.read(key),
        }
    }
}

impl<'a> CallContext<'a> {
    /// Returns a read-write context for a call of the contract `namespace` on `base`.
    pub(crate) fn new(namespace: &'a str, base: &'a dyn StateRead, env: Env<'a>) -> Self {
        CallContext {
            namespace,
            base,
            writes: BTreeMap::new(),
            events: Vec::new(),
            subjects: Vec::new(),
            events_before: 0,
            read_only: false,
            depth: 0,
            env,
        }
    }

    /// Returns a read-only context: every write, delete and event is refused
    /// ([`ContractError::ReadOnly`]).
    pub(crate) fn read_only(namespace: &'a str, base: &'a dyn StateRead, env: Env<'a>) -> Self {
        CallContext {
            read_only: true,
            ..CallContext::new(namespace, base, env)
        }
    }

    /// Returns the value under the contract's `key` (relative to its namespace), seeing the
    /// call's own earlier writes and those of the calls it is nested in.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ContractError> {
        Ok(self.read(&keys::full(self.namespace, key))?)
    }

    fn refuse_if_read_only(&self, action: &'static str) -> Result<(), ContractError> {
        if self.read_only {
            return Err(ContractError::ReadOnly {
                contract: self.namespace.to_string(),
                action,
            });
        }
        Ok(())
    }

    /// Writes `value` under the contract's `key`.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), ContractError> {
        self.refuse_if_read_only("write")?;
        if value.len() > state::MAX_VALUE_LEN {
            return Err(ContractError::failed(
                FailureCode::ValueTooLarge,
                format!(
                    "value of {} bytes exceeds the state limit of {} bytes",
                    value.len(),
                    state::MAX_VALUE_LEN
                ),
            ));
        }
        self.writes
            .insert(keys::full(self.namespace, key), Some(value));
        Ok(())
    }

    /// Deletes the contract's `key`.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), ContractError> {
        self.refuse_if_read_only("delete")?;
        self.writes.insert(keys::full(self.namespace, key), None);
        Ok(())
    }

    /// Emits event `name` with `data`; its contract is always the calling contract. The
    /// transaction's events go into its receipt in the receipt's current format (contract,
    /// name, data); events with topics are issue 14's, with a new receipt version.
    pub fn emit(&mut self, name: &str, data: Vec<u8>) -> Result<(), ContractError> {
        self.emit_with_topics(name, Vec::new(), data)
    }

    /// Emits event `name` with `topics` (at most `Limits::max_topics` of
    /// 1..=`Limits::max_topic_len` bytes each) and `data`.
    pub fn emit_with_topics(
        &mut self,
        name: &str,
        topics: Vec<Vec<u8>>,
        data: Vec<u8>,
    ) -> Result<(), ContractError> {
        self.refuse_if_read_only("emit an event")?;
        let limits = self.env.limits;
        if topics.len() > limits.max_topics
            || topics
                .iter()
                .any(|t| t.is_empty() || t.len() > limits.max_topic_len)
        {
            return Err(ContractError::failed(
                FailureCode::EventInvalid,
                format!(
                    "an event has at most {} topics of 1..={} bytes each",
                    limits.max_topics, limits.max_topic_len
                ),
            ));
        }
        let ok_name = !name.is_empty()
            && name.len() <= limits.max_name_len
            && name.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if !ok_name {
            return Err(ContractError::failed(
                FailureCode::EventInvalid,
                format!(
                    "event name {name:?} is not 1..={} printable ASCII bytes",
                    limits.max_name_len
                ),
            ));
        }
        if self.events_before + self.events.len() >= limits.max_events_per_receipt {
            return Err(ContractError::failed(
                FailureCode::EventInvalid,
                format!("more than {} events", limits.max_events_per_receipt),
            ));
        }
        if data.len() > limits.max_event_data {
            return Err(ContractError::failed(
                FailureCode::EventInvalid,
                format!(
                    "event data of {} bytes exceeds {} bytes",
                    data.len(),
                    limits.max_event_data
                ),
            ));
        }
        self.events.push(Event {
            topics,
            contract: self.namespace.to_string(),
            name: name.to_string(),
            data,
        });
        Ok(())
    }

    /// Charges `units` to the transaction's cost meter, or fails with
    /// [`ContractError::CostExceeded`] (charging nothing) when that would pass its limit.
    pub fn charge(&self, units: u64) -> Result<(), ContractError> {
        self.env.meter.charge(units)
    }

    /// Returns the units the transaction's calls were charged so far.
    pub fn cost_used(&self) -> u64 {
        self.env.meter.used()
    }

    /// Returns the units the transaction's calls may still be charged.
    pub fn cost_left(&self) -> u64 {
        self.env.meter.left()
    }

    /// Returns the namespace of the running contract: its name (`wasm/<name>` for a WASM
    /// contract).
    pub fn namespace(&self) -> &'a str {
        self.namespace
    }

    /// Returns whether writes and events are refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Returns how deep the call is nested: 0 for the transaction's own call.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Returns when the code runs: admission, recheck or execution.
    pub fn phase(&self) -> Phase {
        self.env.phase
    }

    /// Returns admission's certificate validation: `Some` at admission and recheck, `None`
    /// in execution.
    pub fn ca_validation(&self) -> Option<&'a dyn CaValidation> {
        self.env.cas
    }

    /// Returns the signer of the transaction.
    pub fn caller(&self) -> &'a SignerInfo {
        self.env.caller
    }

    /// Returns the block being executed. At admission and recheck: the block the transaction
    /// is admitted for (height tip + 1, time the admission time in whole seconds).
    pub fn block(&self) -> &'a BlockContext {
        self.env.block
    }

    /// Returns the node's contract runtime: `Some` in execution, `None` at admission and
    /// recheck (which run no contract code).
    pub(crate) fn runtime(&self) -> Option<&'a contracts::Runtime> {
        self.env.runtime
    }

    /// Returns the transaction's ID.
    pub fn tx_id(&self) -> TxId {
        self.env.tx_id
    }

    /// Runs `f` in a nested context for the contract `namespace` (a call into another
    /// contract): it sees this context's writes, shares its meter, and is read-only if this
    /// one is. Its writes and events join this context's only if `f` succeeds; on failure
    /// they are discarded and the failure returned. The caller of the nested call is still the
    /// transaction's signer. Crate-private: only a dispatcher that resolves the callee through
    /// the registry may choose another namespace (issue 14 adds it, with a depth limit), and
    /// governance, whose organisation changes run identity's code in identity's namespace.
    pub(crate) fn nested<T>(
        &mut self,
        namespace: &str,
        f: impl FnOnce(&mut CallContext<'_>) -> Result<T, ContractError>,
    ) -> Result<T, ContractError> {
        let (result, writes, events, subjects) = {
            let mut child = CallContext {
                namespace,
                base: &*self,
                writes: BTreeMap::new(),
                events: Vec::new(),
                subjects: Vec::new(),
                events_before: self.events_before + self.events.len(),
                read_only: self.read_only,
                depth: self.depth.saturating_add(1),
                env: self.env,
            };
            let result = f(&mut child);
            let subjects = std::mem::take(&mut child.subjects);
            let (writes, events) = child.into_parts();
            (result, writes, events, subjects)
        };
        if result.is_ok() {
            self.writes.extend(writes);
            self.events.extend(events);
            self.subjects.extend(subjects);
        }
        result
    }

    /// Declares that the call concerns `id` of `kind` (a dataset, a contract's lifecycle, a
    /// certificate or organisation it acts on, a contract it called), so that the transaction
    /// enters that subject's trace index when it succeeds.
    /// Nothing is declared in a read-only call (a hook, a query).
    pub fn trace(&mut self, kind: TraceKind, id: &str) {
        if !self.read_only && !self.subjects.iter().any(|(k, i)| *k == kind && i == id) {
            self.subjects.push((kind, id.to_string()));
        }
    }

    /// Returns the call's writes (by full key) and events.
    pub(crate) fn into_parts(self) -> (Writes, Vec<Event>) {
        (self.writes, self.events)
    }

    /// Returns the call's writes, events and declared trace subjects.
    pub(crate) fn into_traced_parts(self) -> (Writes, Vec<Event>, Vec<(TraceKind, String)>) {
        (self.writes, self.events, self.subjects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state of fixed full keys.
    struct Fixed(BTreeMap<Vec<u8>, Vec<u8>>);

    impl StateRead for Fixed {
        fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExecError> {
            Ok(self.0.get(key).cloned())
        }
    }

    struct Fixture {
        state: Fixed,
        caller: SignerInfo,
        block: BlockContext,
        limits: Limits,
        meter: CostMeter,
    }

    fn fixture(limit: u64) -> Fixture {
        let mut state = BTreeMap::new();
        state.insert(b"a/old".to_vec(), b"0".to_vec());
        Fixture {
            state: Fixed(state),
            caller: SignerInfo {
                cert_id: Digest([1; 32]),
                organisation: "Org".into(),
                common_name: "alice".into(),
                role: Role::User,
            },
            block: BlockContext {
                height: Height(1),
                timestamp_ms: 0,
            },
            limits: Limits::default(),
            meter: CostMeter::new(limit),
        }
    }

    impl Fixture {
        fn env(&self) -> Env<'_> {
            Env {
                caller: &self.caller,
                block: &self.block,
                tx_id: TxId(Digest([2; 32])),
                limits: &self.limits,
                meter: &self.meter,
                phase: Phase::Execution,
                cas: None,
                runtime: None,
            }
        }
    }

    fn failing(message: &str) -> ContractError {
        ContractError::failed(FailureCode::BadArguments, message)
    }

    #[test]
    fn a_failing_nested_call_leaves_no_write_and_no_event() {
        let f = fixture(u64::MAX);
        let mut ctx = CallContext::new("a", &f.state, f.env());
        ctx.put(b"mine", b"1".to_vec()).unwrap();
        let r: Result<(), _> = ctx.nested("b", |callee| {
            // The callee sees its caller's writes through the overlay, under full keys.
            assert_eq!(callee.read(b"a/mine").unwrap(), Some(b"1".to_vec()));
            callee.put(b"x", b"2".to_vec())?;
            callee.delete(b"gone")?;
            callee.emit("done", vec![])?;
            assert_eq!(callee.get(b"x")?, Some(b"2".to_vec()));
            Err(failing("callee fails"))
        });
        assert!(matches!(r, Err(ContractError::Failed { .. })));
        assert_eq!(ctx.read(b"b/x").unwrap(), None);
        let (writes, events) = ctx.into_parts();
        assert_eq!(
            writes.keys().cloned().collect::<Vec<_>>(),
            vec![b"a/mine".to_vec()]
        );
        assert!(events.is_empty());
    }

    #[test]
    fn a_nested_commit_merges_into_its_parent_only() {
        let f = fixture(u64::MAX);
        let mut top = CallContext::new("a", &f.state, f.env());
        // The middle call's nested call succeeds, then the middle call fails: the innermost
        // writes went into the middle call's overlay, so they are discarded with it.
        let r: Result<(), _> = top.nested("b", |middle| {
            middle.nested("c", |inner| {
                inner.put(b"deep", b"3".to_vec())?;
                inner.emit("deep", vec![])
            })?;
            assert_eq!(middle.read(b"c/deep").unwrap(), Some(b"3".to_vec()));
            Err(failing("middle fails"))
        });
        assert!(r.is_err());
        assert_eq!(top.read(b"c/deep").unwrap(), None);
        // A nested call that succeeds joins its writes and events to its caller's overlay,
        // not to the state underneath.
        top.nested("b", |callee| {
            assert_eq!(callee.depth(), 1);
            callee.put(b"kept", b"4".to_vec())?;
            callee.emit("kept", vec![7])
        })
        .unwrap();
        assert_eq!(top.read(b"b/kept").unwrap(), Some(b"4".to_vec()));
        assert_eq!(f.state.read(b"b/kept").unwrap(), None);
        let (writes, events) = top.into_parts();
        assert_eq!(writes.get(b"b/kept".as_slice()), Some(&Some(b"4".to_vec())));
        assert!(!writes.contains_key(b"c/deep".as_slice()));
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].contract.as_str(), events[0].name.as_str()),
            ("b", "kept")
        );
    }

    #[test]
    fn a_read_only_context_refuses_writes_deletes_and_events() {
        let f = fixture(u64::MAX);
        let mut ctx = CallContext::read_only("a", &f.state, f.env());
        assert_eq!(ctx.get(b"old").unwrap(), Some(b"0".to_vec()));
        assert!(matches!(
            ctx.put(b"old", b"1".to_vec()),
            Err(ContractError::ReadOnly { ref contract, action: "write" }) if contract == "a"
        ));
        assert!(matches!(
            ctx.delete(b"old"),
            Err(ContractError::ReadOnly { .. })
        ));
        assert!(matches!(
            ctx.emit("e", vec![]),
            Err(ContractError::ReadOnly { .. })
        ));
        // Read-only reaches nested calls too.
        let r = ctx.nested("b", |callee| callee.put(b"x", vec![]));
        assert!(matches!(
            r,
            Err(ContractError::ReadOnly { ref contract, .. }) if contract == "b"
        ));
        assert_eq!(ctx.get(b"old").unwrap(), Some(b"0".to_vec()));
        let (writes, events) = ctx.into_parts();
        assert!(writes.is_empty() && events.is_empty());
    }

    #[test]
    fn the_meter_refuses_past_its_limit_across_nested_calls() {
        let f = fixture(2_500);
        let mut ctx = CallContext::new("a", &f.state, f.env());
        ctx.charge(1_000).unwrap();
        // A nested call's cost counts, and stays spent when the call fails.
        let r: Result<(), _> = ctx.nested("b", |callee| {
            callee.charge(1_000)?;
            Err(failing("callee fails"))
        });
        assert!(r.is_err());
        assert_eq!(ctx.cost_used(), 2_000);
        let e = ctx.charge(501).unwrap_err();
        assert!(
            matches!(
                e,
                ContractError::CostExceeded {
                    limit: 2_500,
                    used: 2_000,
                    requested: 501
                }
            ),
            "{e}"
        );
        assert_eq!(ctx.cost_used(), 2_000);
        ctx.charge(500).unwrap();
        assert_eq!(ctx.cost_used(), 2_500);
        assert!(ctx.charge(1).is_err());
        // An overflowing charge is refused, not wrapped.
        assert!(CostMeter::unlimited().charge(u64::MAX).is_ok());
        let m = CostMeter::unlimited();
        m.charge(1).unwrap();
        assert!(m.charge(u64::MAX).is_err());
    }

    #[test]
    fn the_event_limit_counts_the_enclosing_calls_events() {
        let mut f = fixture(u64::MAX);
        f.limits.max_events_per_receipt = 2;
        let mut ctx = CallContext::new("a", &f.state, f.env());
        ctx.emit("one", vec![]).unwrap();
        let r = ctx.nested("b", |callee| {
            callee.emit("two", vec![])?;
            callee.emit("three", vec![])
        });
        assert!(
            matches!(
                r,
                Err(ContractError::Failed {
                    code: FailureCode::EventInvalid,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(ctx.into_parts().1.len(), 1);
    }
}
