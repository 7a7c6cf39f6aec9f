//! The registry: which contract owns which method, and the permission table of who may call
//! it. A call missing from either is unknown.

use crate::attestation::AttestationContract;
use crate::contract::Contract;
use crate::exchange::ExchangeContract;
use crate::governance::GovernanceContract;
use crate::identity::IdentityContract;
use crate::supervision::SupervisionContract;
use pki::Role;

/// The contracts a node runs, by name.
#[derive(Debug)]
pub struct Registry {
    contracts: Vec<Box<dyn Contract>>,
}

impl Registry {
    /// Returns the built-in contracts: `identity`, `attestation`, `governance`, `exchange` and
    /// `supervision`.
    pub fn builtin() -> Self {
        Registry {
            contracts: vec![
                Box::new(IdentityContract),
                Box::new(AttestationContract),
                Box::new(GovernanceContract),
                Box::new(ExchangeContract),
                Box::new(SupervisionContract),
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

/// Who may call a method: roles from the certificate, checked here, plus an organisation rule
/// that the contract's authorisation hook checks (`Contract::authorize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The contract.
    pub contract: &'static str,
    /// The method.
    pub method: &'static str,
    /// The roles that may call it.
    pub roles: &'static [Role],
    /// The organisation rule, for people (docs/execution.md §5); the contract's hook
    /// enforces it.
    pub organisation_rule: &'static str,
}

/// The permission table. A call missing here is unknown, whatever the contracts implement.
/// Auditors read through the query API and send no transactions but the supervisor's freezes;
/// CA and encryption
/// certificates send none; a node's signing certificate sends only its organisation's data
/// requests and, as a custodian, its fetch records.
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
        contract: "governance",
        method: "propose",
        roles: &[Role::Admin],
        organisation_rule: "the admin's organisation is active; it votes yes by proposing",
    },
    Permission {
        contract: "governance",
        method: "vote",
        roles: &[Role::Admin],
        organisation_rule: "the admin's organisation is in the proposal's electorate and has not voted",
    },
    Permission {
        contract: "attestation",
        method: "anchor",
        roles: &[Role::User, Role::Admin],
        organisation_rule: "the owner is always the signer (\"<organisation>/<common name>\")",
    },
    Permission {
        contract: "exchange",
        method: "set_endpoint",
        roles: &[Role::Admin],
        organisation_rule: "the node-enc certificate is of a node of the admin's own organisation (same O, CN = the node)",
    },
    Permission {
        contract: "exchange",
        method: "register",
        roles: &[Role::Admin, Role::User],
        organisation_rule: "the dataset belongs to the signer's organisation",
    },
    Permission {
        contract: "exchange",
        method: "publish",
        roles: &[Role::Admin, Role::User],
        organisation_rule: "a version of a dataset of the signer's organisation, held by one of its nodes with a recorded endpoint",
    },
    Permission {
        contract: "exchange",
        method: "request",
        roles: &[Role::Admin, Role::User, Role::NodeSign],
        organisation_rule: "another organisation's dataset, with the signer's own encryption certificate",
    },
    Permission {
        contract: "exchange",
        method: "grant",
        roles: &[Role::Admin],
        organisation_rule: "a request for a dataset of the admin's organisation",
    },
    Permission {
        contract: "exchange",
        method: "deny",
        roles: &[Role::Admin],
        organisation_rule: "a request for a dataset of the admin's organisation",
    },
    Permission {
        contract: "exchange",
        method: "revoke",
        roles: &[Role::Admin],
        organisation_rule: "a grant of a dataset of the admin's organisation",
    },
    Permission {
        contract: "exchange",
        method: "record_fetch",
        roles: &[Role::NodeSign],
        organisation_rule: "the signer is the custodian node the version or message names",
    },
    Permission {
        contract: "exchange",
        method: "send",
        roles: &[Role::Admin, Role::User],
        organisation_rule: "from the signer's organisation to other registered organisations",
    },
    Permission {
        contract: "supervision",
        method: "freeze",
        roles: &[Role::Auditor],
        organisation_rule: "the signer's organisation is the chain's supervisor and the freeze policy is `supervisor`; the target exists and is not the supervising organisation",
    },
    Permission {
        contract: "supervision",
        method: "unfreeze",
        roles: &[Role::Auditor],
        organisation_rule: "the signer's organisation is the chain's supervisor and the freeze policy is `supervisor`; the supervisor froze the target",
    },
    Permission {
        contract: "supervision",
        method: "anchor_log",
        roles: &[Role::NodeSign, Role::Admin],
        organisation_rule: "a node anchors its own audit log (its node-sign certificate's), an admin its organisation's registered CA's",
    },
    Permission {
        contract: "exchange",
        method: "ack",
        roles: &[Role::Admin, Role::User],
        organisation_rule: "the signer's organisation is a recipient of the message",
    },
];

impl Permission {
    /// Returns why a signer of `role` may not make this call, or `None` if it may: the
    /// permission table's role check, the same at admission, recheck and execution.
    pub(crate) fn role_refusal(&self, role: Role) -> Option<String> {
        (!self.roles.contains(&role))
            .then(|| format!("role {role} may not call {}.{}", self.contract, self.method))
    }
}

/// Returns the permission entry of `contract.method`.
pub fn permission(contract: &str, method: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .find(|p| p.contract == contract && p.method == method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{
        BlockContext, CallContext, ContractError, CostMeter, Env, Phase, SignerInfo,
    };
    use crate::contract::BUILTIN_CALL_COST;
    use crate::error::ExecError;
    use crate::view::StateRead;
    use crypto::Digest;
    use types::{Height, Limits, TxId};

    struct Empty;

    impl StateRead for Empty {
        fn read(&self, _: &[u8]) -> Result<Option<Vec<u8>>, ExecError> {
            Ok(None)
        }
    }

    #[test]
    fn every_builtin_call_charges_the_fixed_cost_first() {
        let caller = SignerInfo {
            cert_id: Digest([1; 32]),
            organisation: "Org".into(),
            common_name: "admin".into(),
            role: Role::Admin,
        };
        let block = BlockContext {
            height: Height(1),
            timestamp_ms: 0,
        };
        let limits = Limits::default();
        let registry = Registry::builtin();
        for p in PERMISSIONS {
            let contract = registry.get(p.contract).unwrap();
            for (limit, enough) in [(BUILTIN_CALL_COST - 1, false), (BUILTIN_CALL_COST, true)] {
                let meter = CostMeter::new(limit);
                let env = Env {
                    caller: &caller,
                    block: &block,
                    tx_id: TxId(Digest([2; 32])),
                    limits: &limits,
                    meter: &meter,
                    phase: Phase::Execution,
                    cas: None,
                    runtime: None,
                };
                let mut ctx = CallContext::new(contract.name(), &Empty, env);
                // No arguments: a call that is charged goes on to fail on its arguments.
                let r = contract.call(&mut ctx, p.method, &[]);
                let call = format!("{}.{}", p.contract, p.method);
                if enough {
                    assert!(
                        matches!(r, Err(ContractError::Failed { .. })),
                        "{call}: {r:?}"
                    );
                    assert_eq!(meter.used(), BUILTIN_CALL_COST, "{call}");
                } else {
                    assert!(
                        matches!(r, Err(ContractError::CostExceeded { .. })),
                        "{call}: {r:?}"
                    );
                    assert_eq!(meter.used(), 0, "{call}");
                }
            }
        }
    }
}
