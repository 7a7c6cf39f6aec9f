//! The contract interface, the registry of built-in contracts and the permission table.
//!
//! A [`Contract`] sees the world only through a [`CallContext`]: get, put and delete under its
//! own namespace, events under its own name, the caller, the block and the transaction ID. It
//! gets no clock, no randomness and no other contract's keys, so the WASM engine of a later
//! release can implement the same trait with host functions of the same shape.

use std::collections::BTreeMap;

use crate::admission::SignerInfo;
use crate::codes::FailureCode;
use crate::error::ExecError;
use crate::executor::BlockContext;
use crate::keys;
use crate::view::StateRead;
use pki::Role;
use types::{Event, Limits, TxId};

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

    /// Runs `method`. On `Err` every write and event of the call is discarded.
    fn call(
        &self,
        ctx: &mut CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), ContractError>;
}

/// A call's writes by full key; `None` deletes.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What a contract call may see and do.
pub struct CallContext<'a> {
    namespace: &'static str,
    base: &'a dyn StateRead,
    writes: Writes,
    events: Vec<Event>,
    caller: &'a SignerInfo,
    block: &'a BlockContext,
    tx_id: TxId,
    limits: &'a Limits,
}

impl core::fmt::Debug for CallContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CallContext")
            .field("namespace", &self.namespace)
            .field("writes", &self.writes.len())
            .field("events", &self.events.len())
            .field("tx_id", &self.tx_id)
            .finish()
    }
}

impl<'a> CallContext<'a> {
    pub(crate) fn new(
        namespace: &'static str,
        base: &'a dyn StateRead,
        caller: &'a SignerInfo,
        block: &'a BlockContext,
        tx_id: TxId,
        limits: &'a Limits,
    ) -> Self {
        CallContext {
            namespace,
            base,
            writes: BTreeMap::new(),
            events: Vec::new(),
            caller,
            block,
            tx_id,
            limits,
        }
    }

    /// Returns the value under the contract's `key` (relative to its namespace), seeing the
    /// call's own earlier writes.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ContractError> {
        let k = keys::full(self.namespace, key);
        match self.writes.get(&k) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.base.read(&k)?),
        }
    }

    /// Writes `value` under the contract's `key`.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), ContractError> {
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
    pub fn delete(&mut self, key: &[u8]) {
        self.writes.insert(keys::full(self.namespace, key), None);
    }

    /// Emits event `name` with `data`; its contract is always the calling contract.
    pub fn emit(&mut self, name: &str, data: Vec<u8>) -> Result<(), ContractError> {
        let ok_name = !name.is_empty()
            && name.len() <= self.limits.max_name_len
            && name.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if !ok_name {
            return Err(ContractError::failed(
                FailureCode::EventInvalid,
                format!(
                    "event name {name:?} is not 1..={} printable ASCII bytes",
                    self.limits.max_name_len
                ),
            ));
        }
        if self.events.len() >= self.limits.max_events_per_receipt {
            return Err(ContractError::failed(
                FailureCode::EventInvalid,
                format!("more than {} events", self.limits.max_events_per_receipt),
            ));
        }
        if data.len() > self.limits.max_event_data {
            return Err(ContractError::failed(
                FailureCode::EventInvalid,
                format!(
                    "event data of {} bytes exceeds {} bytes",
                    data.len(),
                    self.limits.max_event_data
                ),
            ));
        }
        self.events.push(Event {
            contract: self.namespace.to_string(),
            name: name.to_string(),
            data,
        });
        Ok(())
    }

    /// Returns the signer of the transaction.
    pub fn caller(&self) -> &SignerInfo {
        self.caller
    }

    /// Returns the block being executed.
    pub fn block(&self) -> &BlockContext {
        self.block
    }

    /// Returns the transaction's ID.
    pub fn tx_id(&self) -> TxId {
        self.tx_id
    }

    pub(crate) fn into_parts(self) -> (Writes, Vec<Event>) {
        (self.writes, self.events)
    }
}

/// The contracts a node runs, by name.
#[derive(Debug)]
pub struct Registry {
    contracts: Vec<Box<dyn Contract>>,
}

impl Registry {
    /// Returns the built-in contracts: `identity` and `attestation`.
    pub fn builtin() -> Self {
        Registry {
            contracts: vec![
                Box::new(crate::identity::IdentityContract),
                Box::new(crate::attestation::AttestationContract),
            ],
        }
    }

    /// Returns the contract `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Contract> {
        self.contracts
            .iter()
            .find(|c| c.name() == name)
            .map(|c| c.as_ref())
    }

    /// Returns the contract that has `method` and the permission entry of the call, if the
    /// call is known.
    pub fn resolve(
        &self,
        contract: &str,
        method: &str,
    ) -> Option<(&dyn Contract, &'static Permission)> {
        let c = self.get(contract)?;
        if !c.methods().contains(&method) {
            return None;
        }
        Some((c, permission(contract, method)?))
    }
}

/// Who may call a method: roles from the certificate, plus an organisation rule checked by
/// admission, recheck and the contract itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The contract.
    pub contract: &'static str,
    /// The method.
    pub method: &'static str,
    /// The roles that may call it.
    pub roles: &'static [Role],
    /// The organisation rule, for people (docs/execution.md §5).
    pub organisation_rule: &'static str,
}

/// The permission table. A call missing here is unknown, whatever the contracts implement.
/// Auditors read through the query API and send no transactions; CA and node certificates
/// send none either.
pub const PERMISSIONS: &[Permission] = &[
    Permission {
        contract: "identity",
        method: "register_org",
        roles: &[Role::Admin],
        organisation_rule: "the admin is certified by the new organisation's CA, which a founding CA that sponsors the name issued",
    },
    Permission {
        contract: "identity",
        method: "deregister_org",
        roles: &[Role::Admin],
        organisation_rule: "the organisation was registered under a CA that the admin's organisation's CA issued (its sponsor); founding organisations change only by governance",
    },
    Permission {
        contract: "identity",
        method: "replace_ca",
        roles: &[Role::Admin],
        organisation_rule: "the admin's organisation sponsors the organisation, and its CA issued the new CA",
    },
    Permission {
        contract: "identity",
        method: "update_crl",
        roles: &[Role::Admin],
        organisation_rule: "the CRL is issued by the registered CA of the admin's own organisation",
    },
    Permission {
        contract: "identity",
        method: "suspend",
        roles: &[Role::Admin],
        organisation_rule: "the certificate belongs to the admin's own organisation",
    },
    Permission {
        contract: "identity",
        method: "resume",
        roles: &[Role::Admin],
        organisation_rule: "the certificate belongs to the admin's own organisation",
    },
    Permission {
        contract: "attestation",
        method: "anchor",
        roles: &[Role::User, Role::Admin],
        organisation_rule: "the owner is always the signer (\"<organisation>/<common name>\")",
    },
];

/// Returns the permission entry of `contract.method`.
pub fn permission(contract: &str, method: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .find(|p| p.contract == contract && p.method == method)
}
