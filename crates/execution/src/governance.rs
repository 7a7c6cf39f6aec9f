//! The `governance` system contract: what no single agency may decide alone, decided by the
//! organisations of the consortium, one vote each, on the chain.
//!
//! An admin of a registered organisation proposes (`propose`); the proposing organisation's
//! vote is a yes. Admins of the other organisations of the electorate (the active
//! organisations when the proposal was made) vote yes or no (`vote`) until the deadline
//! height. The proposal executes in the block whose vote reaches the kind's threshold, and is
//! rejected as soon as the remaining organisations could no longer reach it. Every step is a
//! receipt and an event (`proposed`, `voted`, `executed`, `rejected`).
//!
//! Kinds (docs/execution.md §7):
//! - `validator-add`, `validator-remove`, `validator-rotate`: a validator-set change,
//!   effective from a named height after the deadline. The decision is recorded as the
//!   pending change; the chain's validator rule (`validators`) applies it at the end of the
//!   block before that height. At most one change is pending: a vote that would execute a
//!   second fails with `GOVERNANCE_CHANGE_PENDING` and may be cast again later.
//! - `params`: a change of the chain parameters (expiry window, most transactions per block,
//!   largest transaction), effective from a named height after the deadline; each value given
//!   is checked against the hard bounds (`ParamsUpdate::check`) when proposed and again when
//!   executed, the others keep their values. The decision is recorded as the pending
//!   parameter change; the chain's parameter rule (`params_rule`) applies it at the end of the
//!   block before that height. At most one is pending, as for validator changes.
//! - `policy`: the threshold of a kind (majority, all, or at least m organisations); always
//!   decided by all organisations of the electorate, and in force from its execution.
//! - `org-register`: a new founding organisation, its self-signed root CA a trust anchor of
//!   the chain from the executing block on (admission reads the anchors from the state);
//!   `org-remove`: any organisation leaves, founding included, unless it holds a validator
//!   seat, sponsors an active organisation or is the last founding one. Both are checked when
//!   proposed and again when executed, take effect when executed (no effective height), are
//!   decided by the `organisations` policy, and write the identity namespace through a call
//!   nested in it (the identity contract's code makes the writes).
//!
//! What it refuses to do: count a second vote of one organisation, a vote after the
//! deadline or of an organisation outside the electorate, execute a validator change that
//! no longer fits the set (validator unknown or already present, the last validator
//! removed, a certificate that is not an active organisation's valid node-signing
//! certificate), or change any state but its own namespace (the validator set changes
//! and the chain parameters change through the pending records, which the chain's rules read).
//!
//! - `contract-deploy`, `contract-upgrade`, `contract-freeze`, `contract-unfreeze`: the
//!   lifecycle of a WASM contract (issue 14), decided by the `contracts` policy and taking
//!   effect when executed. A deployment or upgrade carries the module (in one or more
//!   arguments, concatenated), which is validated when proposed (`contracts::validate`) and
//!   stored then under `contracts/code/<SM3>`; the proposal records only its hash. Executing a
//!   deployment records the contract and runs its `init` if it exports one; an upgrade runs
//!   the new code's `migrate` if exported; a failing `init` or `migrate` fails the executing
//!   vote, so nothing changes. Nothing else deploys or changes code that all nodes run.
//!
//! Not here yet: a validator's power is always 1.

use std::collections::BTreeMap;

use crate::codes::{FailureCode, RejectCode};
use crate::context::{CallContext, ContractError, Phase};
use crate::contract::{self, BUILTIN_CALL_COST, Contract, Denial};
use crate::error::ExecError;
use crate::identity;
use crate::keys::{self, CONTRACTS, GOVERNANCE, IDENTITY, governance as k};
use crate::params::ParamsUpdate;
use crate::params_rule;
use crate::records::{
    ContractRecord, PendingChange, PendingParams, ValidatorChange, ValidatorRecord,
};
use crate::trace::{FreezeKind, FreezePolicy};
use crate::validators;
use crate::view::{self, StateRead};
use crypto::{Digest, UserId};
use pki::{Certificate, Crl, Role};
use types::Height;
use types::codec::{Reader, Writer};

/// The built-in `governance` contract.
#[derive(Clone, Copy, Debug, Default)]
pub struct GovernanceContract;

const METHODS: &[&str] = &["propose", "vote"];

/// The most organisations a proposal's electorate (and its votes) may hold: what a stored
/// proposal decodes with. A proposal is refused while more organisations are active.
pub const MAX_ELECTORATE: usize = 4096;

/// The longest voting period, in blocks, from the proposing block to the deadline.
pub const MAX_VOTING_PERIOD: u64 = 1_000_000;

/// The kinds whose threshold a policy sets, and their thresholds when neither genesis nor a
/// policy proposal set one.
pub const POLICY_KINDS: &[(&str, Policy)] = &[
    ("contracts", Policy::Majority),
    ("organisations", Policy::Majority),
    ("params", Policy::Majority),
    ("supervision", Policy::Majority),
    ("validators", Policy::Majority),
];

/// How many organisations of the electorate must vote yes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// More than half.
    Majority,
    /// All of them.
    All,
    /// At least this many (at least 1).
    AtLeast(u32),
}

impl Policy {
    /// Parses `majority`, `all` or `at-least:<m>`.
    pub fn parse(text: &str) -> Result<Policy, String> {
        match text {
            "majority" => Ok(Policy::Majority),
            "all" => Ok(Policy::All),
            _ => match text.strip_prefix("at-least:").map(str::parse::<u32>) {
                Some(Ok(m)) if m >= 1 => Ok(Policy::AtLeast(m)),
                _ => Err(format!(
                    "policy {text:?} is not \"majority\", \"all\" or \"at-least:<m>\" with m >= 1"
                )),
            },
        }
    }

    /// The text form.
    pub fn text(&self) -> String {
        match self {
            Policy::Majority => "majority".into(),
            Policy::All => "all".into(),
            Policy::AtLeast(m) => format!("at-least:{m}"),
        }
    }

    /// How many yes votes of an electorate of `n` pass a proposal.
    pub fn required(&self, n: usize) -> usize {
        match self {
            Policy::Majority => n / 2 + 1,
            Policy::All => n,
            Policy::AtLeast(m) => usize::try_from(*m).unwrap_or(usize::MAX),
        }
    }
}

/// What a proposal decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalKind {
    /// A validator-set change.
    Validators(Box<ValidatorChange>),
    /// A change of the chain parameters.
    Params(ParamsUpdate),
    /// A new founding organisation (`org-register`): its self-signed root CA becomes a trust
    /// anchor of the chain, with its CRL, from the executing block on.
    OrgRegister {
        /// The organisation's root CA certificate; its O names the organisation.
        ca: Box<Certificate>,
        /// Its CRL, issued and signed by the CA.
        crl: Box<Crl>,
    },
    /// An organisation leaves (`org-remove`), founding or not.
    OrgRemove {
        /// The organisation's name.
        name: String,
    },
    /// A WASM contract's lifecycle change.
    Contract(ContractChange),
    /// The chain's supervisor (`supervisor`): an active organisation and the freeze policy,
    /// in force from the executing block (issue 16).
    Supervisor {
        /// The supervising organisation.
        organisation: String,
        /// How its freezes are made.
        policy: FreezePolicy,
    },
    /// A supervisor's freeze or unfreeze under the `governance` freeze policy
    /// (`supervision-freeze`, `supervision-unfreeze`): proposed by an admin of the supervising
    /// organisation, in force from the executing block, recorded as the supervisor's own.
    SupervisionFreeze {
        /// A freeze (else an unfreeze).
        freeze: bool,
        /// What is frozen.
        kind: FreezeKind,
        /// Its target (certificate ID hex, organisation, contract).
        target: String,
        /// Why.
        reason: String,
    },
    /// The threshold of a kind of proposal.
    Policy {
        /// The kind (one of [`POLICY_KINDS`]).
        kind: String,
        /// Its new policy.
        policy: Policy,
    },
}

impl ProposalKind {
    /// The kind whose policy decides this proposal; `None` for policy changes (all
    /// organisations).
    fn policy_kind(&self) -> Option<&'static str> {
        match self {
            ProposalKind::Validators(_) => Some("validators"),
            ProposalKind::Params(_) => Some("params"),
            ProposalKind::OrgRegister { .. } | ProposalKind::OrgRemove { .. } => {
                Some("organisations")
            }
            ProposalKind::Contract(_) => Some("contracts"),
            ProposalKind::Supervisor { .. } | ProposalKind::SupervisionFreeze { .. } => {
                Some("supervision")
            }
            ProposalKind::Policy { .. } => None,
        }
    }
}

/// A WASM contract's lifecycle change (docs/contracts.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContractChange {
    /// Deploy `code_hash` as the contract `name`.
    Deploy {
        /// The new contract's name.
        name: String,
        /// SM3 of its module.
        code_hash: Digest,
        /// Whether the module exports `init` (known from its validation when proposed).
        runs_entry: bool,
    },
    /// Replace the code of the contract `name`; its state stays.
    Upgrade {
        /// The contract.
        name: String,
        /// SM3 of the new module.
        code_hash: Digest,
        /// Whether the new module exports `migrate`.
        runs_entry: bool,
        /// The proposal of the contract's last change when this was proposed
        /// (`ContractRecord::proposal`): the change executes only if no other came in between
        /// (a proposal id, not a height: two changes may share a block).
        since: Digest,
    },
    /// Refuse calls to `name` (queries still answer).
    Freeze {
        /// The contract.
        name: String,
        /// As for an upgrade.
        since: Digest,
    },
    /// Accept calls to `name` again.
    Unfreeze {
        /// The contract.
        name: String,
        /// As for an upgrade.
        since: Digest,
    },
}

impl ContractChange {
    /// The contract it changes.
    pub fn name(&self) -> &str {
        match self {
            ContractChange::Deploy { name, .. }
            | ContractChange::Upgrade { name, .. }
            | ContractChange::Freeze { name, .. }
            | ContractChange::Unfreeze { name, .. } => name,
        }
    }

    /// The contract's last change the proposal was made against (`None` for a deployment).
    pub fn since(&self) -> Option<Digest> {
        match self {
            ContractChange::Deploy { .. } => None,
            ContractChange::Upgrade { since, .. }
            | ContractChange::Freeze { since, .. }
            | ContractChange::Unfreeze { since, .. } => Some(*since),
        }
    }

    fn set_since(&mut self, h: Digest) {
        match self {
            ContractChange::Deploy { .. } => {}
            ContractChange::Upgrade { since, .. }
            | ContractChange::Freeze { since, .. }
            | ContractChange::Unfreeze { since, .. } => *since = h,
        }
    }

    /// The module a deployment or upgrade brings.
    fn code_hash(&self) -> Option<Digest> {
        match self {
            ContractChange::Deploy { code_hash, .. }
            | ContractChange::Upgrade { code_hash, .. } => Some(*code_hash),
            _ => None,
        }
    }
}

/// Where a proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Open for votes until the deadline (after it, expired).
    Open,
    /// Executed in this block.
    Executed(Height),
    /// Rejected in this block: the threshold could no longer be reached.
    Rejected(Height),
}

/// A proposal as recorded in state (`governance/proposal/<id>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalRecord {
    /// The ID of the proposing transaction.
    pub id: Digest,
    /// What it decides.
    pub kind: ProposalKind,
    /// The proposing organisation.
    pub proposer: String,
    /// The proposing block.
    pub created: Height,
    /// The last height at which votes count.
    pub deadline: Height,
    /// The first height a validator or parameter change applies to (0 for a policy).
    pub effective: Height,
    /// The organisations that vote, in name order.
    pub electorate: Vec<String>,
    /// The votes cast (organisation → yes), in name order.
    pub votes: BTreeMap<String, bool>,
    /// The threshold when it was proposed, as text.
    pub policy: Policy,
    /// Where it stands.
    pub status: ProposalStatus,
}

fn bad(message: impl Into<String>) -> ContractError {
    ContractError::failed(FailureCode::BadArguments, message)
}

fn u64_arg(args: &[Vec<u8>], i: usize, what: &str) -> Result<u64, ContractError> {
    contract::u64_be(&args[i], &format!("args[{i}] ({what})"))
}

fn digest_arg(args: &[Vec<u8>], i: usize, what: &str) -> Result<Digest, ContractError> {
    contract::digest_arg(&args[i], &format!("args[{i}] ({what})"))
}

fn cert_arg(args: &[Vec<u8>], i: usize) -> Result<Certificate, ContractError> {
    let c = Certificate::from_der(&args[i])
        .map_err(|e| bad(format!("args[{i}] (certificate): {e}")))?;
    if c.role() != Some(Role::NodeSign) {
        return Err(bad(format!(
            "args[{i}] (certificate): role {}, a validator needs a node-sign certificate",
            c.role().map_or("none".to_string(), |r| r.to_string())
        )));
    }
    Ok(c)
}

/// An argument that is empty (keep the value in force) or a u64 BE.
fn optional_u64_arg(args: &[Vec<u8>], i: usize, what: &str) -> Result<Option<u64>, ContractError> {
    if args[i].is_empty() {
        return Ok(None);
    }
    u64_arg(args, i, what).map(Some)
}

fn text_arg(args: &[Vec<u8>], i: usize, what: &str) -> Result<String, ContractError> {
    let s = String::from_utf8(args[i].clone())
        .map_err(|_| bad(format!("args[{i}] ({what}): not UTF-8")))?;
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(bad(format!(
            "args[{i}] ({what}): 1 to 64 characters without control characters"
        )));
    }
    Ok(s)
}

fn contract_name_arg(args: &[Vec<u8>]) -> Result<String, ContractError> {
    let name = String::from_utf8(args[3].clone())
        .map_err(|_| bad("args[3] (contract name): not UTF-8"))?;
    crate::wasm::check_contract_name(&name).map_err(|e| bad(format!("args[3]: {e}")))?;
    Ok(name)
}

/// The fuel a call pays for the checks of the module it carries, beyond the call's own cost:
/// `Some` for a `governance.propose` of a deployment or upgrade whose module validates
/// ([`contracts::fuel::module_check`]), else `None` (another call, a proposal without a module,
/// or one the call refuses anyway). Admission wants the fuel limit to cover it; the executor
/// charges it before the proposal's checks run.
pub fn proposal_module_fuel(call: &types::Call) -> Option<u64> {
    let args = &call.args;
    let kind = args.first()?;
    if call.contract != GOVERNANCE
        || call.method != "propose"
        || args.len() < 5
        || !(kind == b"contract-deploy" || kind == b"contract-upgrade")
    {
        return None;
    }
    let module = contract_code_arg(args).ok()?;
    Some(contracts::fuel::module_check(
        module.code().len() as u64,
        module.functions(),
    ))
}

/// The module of a deployment or upgrade: `args[4..]` concatenated, validated as the chain
/// will run it. A refusal names the module rule's code (docs/contracts.md §1).
fn contract_code_arg(args: &[Vec<u8>]) -> Result<contracts::ValidatedModule, ContractError> {
    let code: Vec<u8> = args[4..].concat();
    contracts::validate(&code, &contracts::Limits::default()).map_err(|e| {
        bad(format!(
            "args[4..] (module of {} bytes): {}: {e}",
            code.len(),
            codes::Coded::code(&e).name
        ))
    })
}

/// A parsed `propose` call: the kind, deadline and effective height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// What it decides.
    pub kind: ProposalKind,
    /// The last height at which votes count.
    pub deadline: Height,
    /// The first height a validator or parameter change applies to (0 for a policy).
    pub effective: Height,
}

/// Parses `propose`'s arguments: [kind, deadline (u64 BE), effective (u64 BE), ...]:
/// `validator-add` name, certificate DER; `validator-remove` certificate ID;
/// `validator-rotate` current certificate ID, new certificate DER; `params` expiry window,
/// max transactions per block, max transaction size (each u64 BE, or empty to keep the value
/// in force; at least one given, each within the bounds of `ParamsUpdate::check`); `policy`
/// kind, policy (effective 0); `org-register` root CA certificate DER, CRL DER (effective 0);
/// `org-remove` organisation name (effective 0).
pub fn parse_proposal(args: &[Vec<u8>]) -> Result<Proposal, ContractError> {
    parse_proposal_with(args, true)
}

/// [`parse_proposal`] without the checks of a deployment's or upgrade's module (its code hash
/// is SM3 of the bytes, `runs_entry` false): for the checks before a transaction's signature is
/// verified, and for rechecks of a transaction whose module admission checked (the checks of a
/// module depend on its bytes only).
fn parse_proposal_shape(args: &[Vec<u8>]) -> Result<Proposal, ContractError> {
    parse_proposal_with(args, false)
}

fn parse_proposal_with(args: &[Vec<u8>], check_module: bool) -> Result<Proposal, ContractError> {
    if args.len() < 3 {
        return Err(bad(format!(
            "governance.propose takes kind, deadline, effective height and the kind's arguments; got {} argument(s)",
            args.len()
        )));
    }
    let kind = String::from_utf8_lossy(&args[0]).into_owned();
    let deadline = Height(u64_arg(args, 1, "deadline height")?);
    let effective = Height(u64_arg(args, 2, "effective height")?);
    let want = |n: usize| -> Result<(), ContractError> {
        if args.len() != n {
            return Err(bad(format!(
                "governance.propose {kind} takes {n} arguments, got {}",
                args.len()
            )));
        }
        Ok(())
    };
    let kind = match kind.as_str() {
        "validator-add" => {
            want(5)?;
            ProposalKind::Validators(Box::new(ValidatorChange::Add(ValidatorRecord {
                name: text_arg(args, 3, "validator name")?,
                cert: cert_arg(args, 4)?,
            })))
        }
        "validator-remove" => {
            want(4)?;
            ProposalKind::Validators(Box::new(ValidatorChange::Remove(digest_arg(
                args,
                3,
                "validator certificate ID",
            )?)))
        }
        "validator-rotate" => {
            want(5)?;
            ProposalKind::Validators(Box::new(ValidatorChange::Rotate {
                old: digest_arg(args, 3, "current certificate ID")?,
                new: cert_arg(args, 4)?,
            }))
        }
        "params" => {
            // Version 1 of the kind names three values; the fuel parameters (issue 14) two
            // more, each empty to keep its value.
            if args.len() != 6 {
                want(8)?;
            }
            let update = ParamsUpdate {
                expiry_window: optional_u64_arg(args, 3, "expiry_window")?,
                max_txs_per_block: optional_u64_arg(args, 4, "max_txs_per_block")?
                    .map(|n| {
                        u32::try_from(n).map_err(|_| {
                            bad(format!(
                                "args[4] (max_txs_per_block): {n} is above 2^32 - 1"
                            ))
                        })
                    })
                    .transpose()?,
                max_tx_size: optional_u64_arg(args, 5, "max_tx_size")?
                    .map(|n| {
                        usize::try_from(n).map_err(|_| {
                            bad(format!("args[5] (max_tx_size): {n} does not fit in usize"))
                        })
                    })
                    .transpose()?,
                max_fuel_per_tx: args
                    .get(6)
                    .map(|_| optional_u64_arg(args, 6, "max_fuel_per_tx"))
                    .transpose()?
                    .flatten(),
                max_fuel_per_block: args
                    .get(7)
                    .map(|_| optional_u64_arg(args, 7, "max_fuel_per_block"))
                    .transpose()?
                    .flatten(),
            };
            update.check().map_err(bad)?;
            ProposalKind::Params(update)
        }
        "policy" => {
            want(5)?;
            let target = text_arg(args, 3, "kind")?;
            if !POLICY_KINDS.iter().any(|(k, _)| *k == target) {
                return Err(bad(format!(
                    "args[3] (kind): {target:?} has no policy; kinds: {}",
                    POLICY_KINDS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let policy = Policy::parse(&text_arg(args, 4, "policy")?)
                .map_err(|e| bad(format!("args[4] (policy): {e}")))?;
            if effective != Height(0) {
                return Err(bad(
                    "args[2] (effective height): a policy is in force from its execution; give 0",
                ));
            }
            ProposalKind::Policy {
                kind: target,
                policy,
            }
        }
        "org-register" => {
            want(5)?;
            let (ca, crl, _) = identity::parse_founding_ca(&args[3], &args[4], 3)?;
            ProposalKind::OrgRegister {
                ca: Box::new(ca),
                crl: Box::new(crl),
            }
        }
        "org-remove" => {
            want(4)?;
            let name = text_arg(args, 3, "organisation name")?;
            identity::check_org_name(&name)
                .map_err(|e| bad(format!("args[3] (organisation name): {e}")))?;
            ProposalKind::OrgRemove { name }
        }
        "contract-deploy" | "contract-upgrade" => {
            if args.len() < 5 {
                return Err(bad(format!(
                    "governance.propose {kind} takes the name and the module (one or more arguments, concatenated); got {} argument(s)",
                    args.len()
                )));
            }
            let name = contract_name_arg(args)?;
            let (code_hash, exports) = if check_module {
                let module = contract_code_arg(args)?;
                let exports = |e| module.exports(e);
                (
                    module.hash(),
                    [
                        exports(contracts::EntryPoint::Init),
                        exports(contracts::EntryPoint::Migrate),
                    ],
                )
            } else {
                let len: usize = args[4..].iter().map(Vec::len).sum();
                let max = contracts::Limits::default().max_code_size;
                if len > max {
                    return Err(bad(format!(
                        "args[4..] (module of {len} bytes): over the {max} bytes a module may have"
                    )));
                }
                (crypto_sm::sm3::sm3(&args[4..].concat()), [false, false])
            };
            ProposalKind::Contract(if kind == "contract-deploy" {
                ContractChange::Deploy {
                    name,
                    code_hash,
                    runs_entry: exports[0],
                }
            } else {
                ContractChange::Upgrade {
                    name,
                    code_hash,
                    runs_entry: exports[1],
                    since: Digest([0; 32]),
                }
            })
        }
        "supervisor" => {
            want(5)?;
            let organisation = text_arg(args, 3, "organisation name")?;
            identity::check_org_name(&organisation)
                .map_err(|e| bad(format!("args[3] (organisation name): {e}")))?;
            let text = text_arg(args, 4, "freeze policy")?;
            let policy = FreezePolicy::parse(&text).ok_or_else(|| {
                bad(format!(
                    "args[4] (freeze policy): {text:?} is not supervisor or governance"
                ))
            })?;
            ProposalKind::Supervisor {
                organisation,
                policy,
            }
        }
        "supervision-freeze" | "supervision-unfreeze" => {
            want(6)?;
            let method = if kind == "supervision-freeze" {
                "freeze"
            } else {
                "unfreeze"
            };
            let a = crate::supervision::parse_freeze(method, &args[3..])?;
            ProposalKind::SupervisionFreeze {
                freeze: method == "freeze",
                kind: a.kind,
                target: a.target,
                reason: a.reason,
            }
        }
        "contract-freeze" | "contract-unfreeze" => {
            want(4)?;
            let name = contract_name_arg(args)?;
            let since = Digest([0; 32]);
            ProposalKind::Contract(if kind == "contract-freeze" {
                ContractChange::Freeze { name, since }
            } else {
                ContractChange::Unfreeze { name, since }
            })
        }
        other => {
            return Err(bad(format!(
                "args[0] (kind): {other:?} is not validator-add, validator-remove, validator-rotate, params, org-register, org-remove, policy, contract-deploy, contract-upgrade, contract-freeze, contract-unfreeze, supervisor, supervision-freeze or supervision-unfreeze"
            )));
        }
    };
    if matches!(
        kind,
        ProposalKind::OrgRegister { .. } | ProposalKind::OrgRemove { .. }
    ) && effective != Height(0)
    {
        return Err(bad(
            "args[2] (effective height): an organisation change takes effect when the proposal executes; give 0",
        ));
    }
    if matches!(
        kind,
        ProposalKind::Supervisor { .. } | ProposalKind::SupervisionFreeze { .. }
    ) && effective != Height(0)
    {
        return Err(bad(
            "args[2] (effective height): a supervision change takes effect when the proposal executes; give 0",
        ));
    }
    if matches!(kind, ProposalKind::Contract(_)) && effective != Height(0) {
        return Err(bad(
            "args[2] (effective height): a contract change takes effect when the proposal executes; give 0",
        ));
    }
    if matches!(kind, ProposalKind::Validators(_) | ProposalKind::Params(_))
        && (effective <= deadline || effective.0 - deadline.0 > MAX_VOTING_PERIOD)
    {
        return Err(bad(format!(
            "the effective height {} must be after the deadline {} and at most {MAX_VOTING_PERIOD} blocks after it",
            effective.0, deadline.0
        )));
    }
    Ok(Proposal {
        kind,
        deadline,
        effective,
    })
}

/// Parses `vote`'s arguments: [proposal ID (32 bytes), "yes" or "no"].
pub fn parse_vote(args: &[Vec<u8>]) -> Result<(Digest, bool), ContractError> {
    if args.len() != 2 {
        return Err(bad(format!(
            "governance.vote takes a proposal ID and \"yes\" or \"no\", got {} argument(s)",
            args.len()
        )));
    }
    let id = digest_arg(args, 0, "proposal ID")?;
    let yes = match args[1].as_slice() {
        b"yes" => true,
        b"no" => false,
        _ => return Err(bad("args[1] (vote): \"yes\" or \"no\"")),
    };
    Ok((id, yes))
}

fn refused(failure: FailureCode, message: String) -> Denial {
    let reject = match failure {
        FailureCode::PermissionDenied => RejectCode::PermissionDenied,
        FailureCode::ContractFrozenBySupervisor => RejectCode::ContractFrozenBySupervisor,
        _ => RejectCode::BadArguments,
    };
    Denial::refused(reject, failure, message)
}

/// When a contract change is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// When proposed: the contract's state is what the proposal will be made against.
    Proposing,
    /// When executed: the contract must not have changed since the proposal.
    Executing,
}

/// The most proposals carrying a module an organisation may have open at once. An open
/// proposal holds its module in the state (up to a transaction's size); one past its deadline
/// no longer counts, and its module goes at the organisation's next such proposal, so an
/// organisation keeps at most this many modules of undecided proposals.
pub const MAX_OPEN_MODULE_PROPOSALS: usize = 8;

/// The IDs of `organisation`'s proposals carrying a module that may still be open, oldest first.
fn module_proposals(
    r: &(impl StateRead + ?Sized),
    organisation: &str,
) -> Result<Vec<Digest>, ExecError> {
    let key = keys::full(GOVERNANCE, &k::module_proposals(organisation));
    let Some(bytes) = r.read(&key)? else {
        return Ok(Vec::new());
    };
    let c = |e| ExecError::corrupt(&key, e);
    let mut rd = Reader::new(&bytes);
    rd.header(
        "module_proposals.header",
        crate::records::tag::MODULE_PROPOSALS,
    )
    .map_err(c)?;
    let n = rd
        .len("module_proposals.ids", MAX_OPEN_MODULE_PROPOSALS)
        .map_err(c)?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(Digest(rd.array("module_proposals.id").map_err(c)?));
    }
    rd.finish().map_err(c)?;
    Ok(ids)
}

/// Which of `ids` are still open at `height` (their deadline not passed, not decided), and
/// which expired undecided (their modules still referenced by them).
fn split_open(
    r: &(impl StateRead + ?Sized),
    ids: &[Digest],
    height: Height,
) -> Result<(Vec<Digest>, Vec<ProposalRecord>), ExecError> {
    let mut open = Vec::new();
    let mut expired = Vec::new();
    for id in ids {
        if let Some(p) = read_proposal(r, id)?
            && p.status == ProposalStatus::Open
        {
            if p.deadline < height {
                expired.push(p);
            } else {
                open.push(*id);
            }
        }
    }
    Ok((open, expired))
}

/// Whether `organisation` may open another proposal carrying a module at `height`.
fn check_module_proposal_room(
    r: &(impl StateRead + ?Sized),
    organisation: &str,
    height: Height,
) -> Result<(), Denial> {
    let (open, _) = split_open(r, &module_proposals(r, organisation)?, height)?;
    if open.len() >= MAX_OPEN_MODULE_PROPOSALS {
        return Err(too_many_module_proposals(organisation, &open));
    }
    Ok(())
}

fn too_many_module_proposals(organisation: &str, open: &[Digest]) -> Denial {
    refused(
        FailureCode::ProposalSchedule,
        format!(
            "{organisation:?} has {} open proposals carrying a module ({}), the most an organisation may have: wait for their votes or deadlines",
            open.len(),
            open.iter()
                .map(Digest::to_hex)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// Records the proposal `id` carrying a module among `organisation`'s, first dropping the
/// modules of its proposals that expired undecided (their references; with the last one the
/// module goes) and the proposals decided since.
fn add_module_proposal(
    ctx: &mut CallContext<'_>,
    organisation: &str,
    id: Digest,
) -> Result<(), ContractError> {
    let height = ctx.block().height;
    let (mut open, expired) = split_open(&*ctx, &module_proposals(&*ctx, organisation)?, height)?;
    for p in expired {
        release_module(ctx, &p.kind)?;
    }
    if open.len() >= MAX_OPEN_MODULE_PROPOSALS {
        return Err(too_many_module_proposals(organisation, &open).into_failure());
    }
    open.push(id);
    let mut w = Writer::new();
    w.header(crate::records::tag::MODULE_PROPOSALS);
    w.len(open.len());
    for id in &open {
        w.fixed(id.as_bytes());
    }
    ctx.put(&k::module_proposals(organisation), w.into_bytes())
}

/// Rejects the open proposals carrying a module of `organisation`, which is being removed
/// (no later proposal of it would sweep them): each is marked rejected at this height and its
/// module reference dropped, and the organisation's list goes.
fn reject_module_proposals_of(
    ctx: &mut CallContext<'_>,
    organisation: &str,
) -> Result<(), ContractError> {
    let height = ctx.block().height;
    for id in module_proposals(&*ctx, organisation)? {
        let Some(mut p) = read_proposal(&*ctx, &id)? else {
            continue;
        };
        if p.status != ProposalStatus::Open {
            continue;
        }
        release_module(ctx, &p.kind)?;
        p.status = ProposalStatus::Rejected(height);
        ctx.emit("rejected", id.0.to_vec())?;
        ctx.put(&k::proposal(&id), p.encode())?;
    }
    ctx.delete(&k::module_proposals(organisation))
}

/// Drops the reference a decided or expired proposal of `kind` held on its module, if it
/// carries one (with the last reference the module goes).
fn release_module(ctx: &mut CallContext<'_>, kind: &ProposalKind) -> Result<(), ContractError> {
    if let ProposalKind::Contract(change) = kind
        && let Some(hash) = change.code_hash()
    {
        ctx.nested(CONTRACTS, |c| add_code_ref(c, &hash, -1))?;
    }
    Ok(())
}

/// Adds `delta` to the count of references to the module `hash` (open proposals and the
/// contracts deployed from them), in the `contracts` namespace (`ctx` is nested in it); at
/// zero the module and its count are deleted.
fn add_code_ref(ctx: &mut CallContext<'_>, hash: &Digest, delta: i64) -> Result<(), ContractError> {
    let key = keys::contracts::code_refs(hash);
    let n = read_count(&*ctx, &key, "a code reference count")?.saturating_add_signed(delta);
    if n == 0 {
        ctx.delete(&key)?;
        ctx.delete(&keys::contracts::code(hash))
    } else {
        ctx.put(&key, n.to_be_bytes().to_vec())
    }
}

/// The most bytes of code the deployed contracts (frozen or not) may run, each module counted
/// once (a consensus rule). Every node keeps all of it compiled
/// ([`crate::MODULE_CACHE_BYTES`]), so that no transaction can make a node compile a module
/// again and again by calling more contracts than its cache holds: a module is compiled once
/// per process (and again after an engine renewal), whatever the calls. 16 MiB is 128 modules
/// of the largest a default chain's transaction carries, or about 240 of the workflow example's
/// size.
pub const MAX_DEPLOYED_CODE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a u64 BE count of the `contracts` namespace (absent: 0).
fn read_count(r: &(impl StateRead + ?Sized), key: &[u8], what: &str) -> Result<u64, ExecError> {
    let full = keys::full(CONTRACTS, key);
    match r.read(&full)? {
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| ExecError::corrupt(&full, format!("{what} is not 8 bytes"))),
        None => Ok(0),
    }
}

/// The bytes of the modules the deployed contracts run, each counted once.
pub fn deployed_code_bytes(r: &(impl StateRead + ?Sized)) -> Result<u64, ExecError> {
    read_count(
        r,
        &keys::contracts::code_live_bytes(),
        "the deployed code's size",
    )
}

/// Whether a deployment of module `hash` (`len` bytes), or an upgrade to it replacing module
/// `replaced`, keeps the deployed code within [`MAX_DEPLOYED_CODE_BYTES`]: the new module counts
/// unless a deployed contract runs it already, the replaced one no longer counts when this
/// contract is the last to run it. The refusal says by how much it does not fit.
fn check_deployed_code_room(
    r: &(impl StateRead + ?Sized),
    hash: &Digest,
    len: u64,
    replaced: Option<&Digest>,
) -> Result<(), Denial> {
    let live = |h: &Digest| {
        read_count(
            r,
            &keys::contracts::code_live(h),
            "a module's deployed count",
        )
    };
    if live(hash)? > 0 {
        return Ok(());
    }
    let freed = match replaced {
        Some(old) if live(old)? == 1 => crate::wasm::code(r, old)?.map_or(0, |c| c.len() as u64),
        _ => 0,
    };
    let deployed = deployed_code_bytes(r)?;
    let total = deployed.saturating_sub(freed).saturating_add(len);
    if total > MAX_DEPLOYED_CODE_BYTES {
        return Err(refused(
            FailureCode::ContractInvalid,
            format!(
                "the deployed contracts run {deployed} bytes of code; this module ({len} bytes{}) would make {total}, over the chain's \
                 {MAX_DEPLOYED_CODE_BYTES}: upgrade a contract to smaller code first",
                if freed > 0 {
                    format!(", replacing {freed}")
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok(())
}

/// Adds `delta` to the deployed contracts running module `hash` (`ctx` is nested in the
/// `contracts` namespace), keeping the deployed code's size: the module's `len` bytes count
/// while one contract runs it.
fn add_code_live(
    ctx: &mut CallContext<'_>,
    hash: &Digest,
    len: u64,
    delta: i64,
) -> Result<(), ContractError> {
    let key = keys::contracts::code_live(hash);
    let before = read_count(&*ctx, &key, "a module's deployed count")?;
    let after = before.saturating_add_signed(delta);
    if after == 0 {
        ctx.delete(&key)?;
    } else {
        ctx.put(&key, after.to_be_bytes().to_vec())?;
    }
    let bytes_key = keys::contracts::code_live_bytes();
    let bytes = read_count(&*ctx, &bytes_key, "the deployed code's size")?;
    let bytes = match (before, after) {
        (0, 1..) => bytes.saturating_add(len),
        (1.., 0) => bytes.saturating_sub(len),
        _ => bytes,
    };
    ctx.put(&bytes_key, bytes.to_be_bytes().to_vec())
}

/// Whether `change` fits the contract's state (checked when proposed and again when
/// executed): a deployment's name is free, an upgrade's, freeze's or unfreeze's contract is
/// deployed, an upgrade brings other code, a freeze finds it running, an unfreeze frozen; when
/// executed, the contract has had no other change since the proposal was made (a stale
/// upgrade or unfreeze must not undo a later one). Returns the contract's record when it
/// exists.
fn check_contract_change(
    r: &(impl StateRead + ?Sized),
    change: &ContractChange,
    stage: Stage,
) -> Result<Option<ContractRecord>, Denial> {
    let name = change.name();
    let current = crate::wasm::contract(r, name)?;
    let invalid = |m: String| refused(FailureCode::ContractInvalid, m);
    if stage == Stage::Executing
        && let (Some(since), Some(c)) = (change.since(), &current)
        && c.proposal != since
    {
        return Err(invalid(format!(
            "contract {name:?} changed (proposal {}, height {}) after this proposal was made: propose again",
            c.proposal.to_hex(),
            c.updated.0
        )));
    }
    // New code must not run in a contract the supervisor froze (its `migrate` could rewrite
    // the state the freeze preserves): the supervisor unfreezes it first (review 18).
    if matches!(change, ContractChange::Upgrade { .. })
        && current.is_some()
        && let Some(f) = crate::supervision::freeze(r, FreezeKind::Contract, name)?
    {
        return Err(refused(
            FailureCode::ContractFrozenBySupervisor,
            format!(
                "contract {name:?} was frozen by the supervisor at height {} ({}): it cannot be upgraded until the supervisor unfreezes it",
                f.height.0, f.reason
            ),
        ));
    }
    match (change, &current) {
        (ContractChange::Deploy { .. }, Some(c)) => Err(invalid(format!(
            "contract {name:?} is already deployed (version {}, since height {})",
            c.version, c.deployed.0
        ))),
        (ContractChange::Deploy { .. }, None) => Ok(None),
        (_, None) => Err(invalid(format!("no deployed contract {name:?}"))),
        (ContractChange::Upgrade { code_hash, .. }, Some(c)) if c.code_hash == *code_hash => {
            Err(invalid(format!(
                "contract {name:?} already runs code {}",
                code_hash.to_hex()
            )))
        }
        (ContractChange::Freeze { .. }, Some(c)) if c.frozen => {
            Err(invalid(format!("contract {name:?} is already frozen")))
        }
        (ContractChange::Unfreeze { .. }, Some(c)) if !c.frozen => {
            Err(invalid(format!("contract {name:?} is not frozen")))
        }
        (_, Some(c)) => Ok(Some(c.clone())),
    }
}

/// Executes a passed contract change: the registry record, and `init` (deployment) or the new
/// code's `migrate` (upgrade) when the module exports it, with the chain's `max_fuel_per_tx`.
/// A failing entry point fails the change: nothing of it is kept.
fn execute_contract_change(
    ctx: &mut CallContext<'_>,
    change: &ContractChange,
    proposal: Digest,
) -> Result<(), ContractError> {
    let current =
        check_contract_change(ctx, change, Stage::Executing).map_err(Denial::into_failure)?;
    let height = ctx.block().height;
    let name = change.name().to_string();
    let previous_hash = current.as_ref().map(|c| c.code_hash);
    let (record, entry) = match (change, current) {
        (
            ContractChange::Deploy {
                code_hash,
                runs_entry,
                ..
            },
            _,
        ) => (
            ContractRecord {
                name: name.clone(),
                code_hash: *code_hash,
                version: 1,
                frozen: false,
                deployed: height,
                updated: height,
                proposal,
            },
            runs_entry.then_some(contracts::EntryPoint::Init),
        ),
        (
            ContractChange::Upgrade {
                code_hash,
                runs_entry,
                ..
            },
            Some(c),
        ) => (
            ContractRecord {
                code_hash: *code_hash,
                version: c.version.saturating_add(1),
                updated: height,
                proposal,
                ..c
            },
            runs_entry.then_some(contracts::EntryPoint::Migrate),
        ),
        (ContractChange::Freeze { .. }, Some(c)) => (
            ContractRecord {
                frozen: true,
                updated: height,
                proposal,
                ..c
            },
            None,
        ),
        (ContractChange::Unfreeze { .. }, Some(c)) => (
            ContractRecord {
                frozen: false,
                updated: height,
                proposal,
                ..c
            },
            None,
        ),
        // check_contract_change returns the record for every change but a deployment.
        (_, None) => {
            return Err(ContractError::failed(
                FailureCode::ContractInvalid,
                format!("no deployed contract {name:?}"),
            ));
        }
    };
    if crate::wasm::code(ctx, &record.code_hash)?.is_none() {
        return Err(ContractError::failed(
            FailureCode::ContractInvalid,
            format!(
                "the module {} of contract {name:?} is not stored (propose the change again)",
                record.code_hash.to_hex()
            ),
        ));
    }
    // The deployed code's size: the new module counts (once), the replaced one no longer.
    if let ContractChange::Deploy { code_hash, .. } | ContractChange::Upgrade { code_hash, .. } =
        change
    {
        let len = crate::wasm::code(ctx, code_hash)?.map_or(0, |c| c.len() as u64);
        let old = match change {
            ContractChange::Upgrade { .. } => Some(previous_hash),
            _ => None,
        };
        check_deployed_code_room(ctx, code_hash, len, old.flatten().as_ref())
            .map_err(Denial::into_failure)?;
        ctx.nested(CONTRACTS, |c| add_code_live(c, code_hash, len, 1))?;
        if let Some(Some(old)) = old {
            let old_len = crate::wasm::code(ctx, &old)?.map_or(0, |c| c.len() as u64);
            ctx.nested(CONTRACTS, |c| add_code_live(c, &old, old_len, -1))?;
        }
    }
    let key = keys::contracts::deployed(&name);
    ctx.nested(CONTRACTS, |c| c.put(&key, record.encode()))?;
    if let Some(entry) = entry {
        // On the executing vote's own fuel: what its limit leaves, at most max_fuel_per_tx.
        let fuel = params_rule::in_force(ctx)?
            .params
            .max_fuel_per_tx
            .min(ctx.cost_left());
        crate::wasm::run_lifecycle(ctx, &record, entry, fuel)?;
    }
    let mut data = name.into_bytes();
    data.push(b' ');
    data.extend_from_slice(record.code_hash.to_hex().as_bytes());
    ctx.emit("contract", data)
}

/// Reads the proposal `id`.
pub fn read_proposal(
    r: &(impl StateRead + ?Sized),
    id: &Digest,
) -> Result<Option<ProposalRecord>, ExecError> {
    let key = keys::full(GOVERNANCE, &k::proposal(id));
    r.read(&key)?
        .map(|v| ProposalRecord::decode(&key, &v))
        .transpose()
}

/// The policy of `kind` in force: the last policy proposal's, else the genesis default.
pub fn policy(r: &(impl StateRead + ?Sized), kind: &str) -> Result<Policy, ExecError> {
    let key = keys::full(GOVERNANCE, &k::policy(kind));
    match r.read(&key)? {
        Some(v) => {
            Policy::parse(&String::from_utf8_lossy(&v)).map_err(|e| ExecError::corrupt(&key, e))
        }
        None => Ok(POLICY_KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(Policy::All, |(_, p)| *p)),
    }
}

/// Whether `change` fits the current validator set and state; the reason if not.
fn check_change(
    r: &(impl StateRead + ?Sized),
    change: &ValidatorChange,
    now: pki::UnixTime,
) -> Result<(), Denial> {
    let current = validators::current(r)?;
    let has = |id: &Digest| current.iter().any(|v| v.cert.fingerprint() == *id);
    let invalid = |m: String| refused(FailureCode::ValidatorChangeInvalid, m);
    // A certificate a validator may hold: valid at the block's time, not excluded by the
    // validator rule, signed by the registered CA of an active organisation whose name is
    // its O. Returns that organisation's name.
    let usable = |c: &Certificate| -> Result<String, Denial> {
        let id = c.fingerprint().to_hex();
        let validity = c.validity();
        if now < validity.not_before || now > validity.not_after {
            return Err(invalid(format!(
                "certificate {id} is not valid at the block's time (valid {} to {})",
                validity.not_before, validity.not_after
            )));
        }
        if let Some(why) = validators::exclusion(r, c)? {
            return Err(invalid(why));
        }
        let issuer = view::organisations(r)?.into_iter().find(|o| {
            o.is_active()
                && o.ca_cert.subject() == c.issuer()
                && c.verify_signed_by(&o.ca_cert.public_key(), &UserId::default())
                    .is_ok()
        });
        match issuer {
            Some(o) if c.organisation().as_deref() == Some(o.name.as_str()) => Ok(o.name),
            Some(o) => Err(invalid(format!(
                "certificate {id} names organisation {:?} but is issued by {:?}'s CA",
                c.organisation(),
                o.name
            ))),
            None => Err(invalid(format!(
                "certificate {id} is not signed by a registered organisation's CA"
            ))),
        }
    };
    match change {
        ValidatorChange::Add(v) => {
            if has(&v.cert.fingerprint()) {
                return Err(invalid(format!(
                    "certificate {} is already a validator's",
                    v.cert.fingerprint().to_hex()
                )));
            }
            if current.len() >= types::MAX_VALIDATORS {
                return Err(invalid(format!(
                    "the set holds the most validators, {}",
                    types::MAX_VALIDATORS
                )));
            }
            usable(&v.cert).map(|_| ())
        }
        ValidatorChange::Remove(id) => {
            if !has(id) {
                return Err(invalid(format!("{} is not a validator", id.to_hex())));
            }
            if current.len() == 1 {
                return Err(invalid("the last validator cannot be removed".into()));
            }
            Ok(())
        }
        ValidatorChange::Rotate { old, new } => {
            let Some(v) = current.iter().find(|v| v.cert.fingerprint() == *old) else {
                return Err(invalid(format!("{} is not a validator", old.to_hex())));
            };
            if has(&new.fingerprint()) {
                return Err(invalid(format!(
                    "certificate {} is already a validator's",
                    new.fingerprint().to_hex()
                )));
            }
            let org = usable(new)?;
            // The seat stays with its organisation: the new certificate is issued by the
            // registered CA of the organisation the validator belongs to.
            if v.cert.organisation().as_deref() != Some(org.as_str()) {
                return Err(invalid(format!(
                    "the new certificate is {org:?}'s, the validator is {:?}'s: a rotation keeps the organisation",
                    v.cert.organisation()
                )));
            }
            Ok(())
        }
    }
}

/// Whether an organisation change fits the state: for `org-register`, the name is unused
/// and the CA can become an anchor; for `org-remove`, the organisation may leave. Returns the
/// removed organisation's record. Nothing to check for other kinds.
fn check_org_change(
    r: &(impl StateRead + ?Sized),
    kind: &ProposalKind,
    now: pki::UnixTime,
) -> Result<Option<crate::records::OrgRecord>, Denial> {
    match kind {
        ProposalKind::OrgRegister { ca, crl } => {
            let name = ca.organisation().unwrap_or_default();
            identity::check_new_founding(r, ca, crl, &name, now).map(|()| None)
        }
        ProposalKind::OrgRemove { name } => identity::check_removal(r, name).map(Some),
        ProposalKind::Validators(_)
        | ProposalKind::Params(_)
        | ProposalKind::Policy { .. }
        | ProposalKind::Contract(_)
        | ProposalKind::Supervisor { .. }
        | ProposalKind::SupervisionFreeze { .. } => Ok(None),
    }
}

/// Room a CRL renewal needs beyond the CRL itself: the admin's certificate inline, the
/// transaction's envelope and signature, and about 60 more revoked entries.
pub const CRL_RENEWAL_MARGIN: usize = 4096;

/// Whether a lowered `max_tx_size` still lets every active organisation record a CRL as
/// large as its current one plus [`CRL_RENEWAL_MARGIN`]: an organisation that cannot renew
/// its CRL would see all its members refused (revocation fails closed) once it expires, the
/// admins who could vote to raise the limit included.
fn check_params_fit(r: &(impl StateRead + ?Sized), update: &ParamsUpdate) -> Result<(), Denial> {
    // The parameters the change leaves keep genesis's rule: a transaction's fuel fits a block.
    let merged = update.apply_to(&params_rule::in_force(r)?.params);
    if merged.max_fuel_per_tx > merged.max_fuel_per_block {
        return Err(refused(
            FailureCode::ParamsInvalid,
            format!(
                "the change would leave max_fuel_per_tx {} above max_fuel_per_block {}: no block could hold such a transaction",
                merged.max_fuel_per_tx, merged.max_fuel_per_block
            ),
        ));
    }
    let Some(size) = update.max_tx_size else {
        return Ok(());
    };
    for org in view::organisations(r)?.iter().filter(|o| o.is_active()) {
        let key = keys::full(
            keys::IDENTITY,
            &keys::identity::crl(&org.ca_cert.fingerprint()),
        );
        let crl_len = r.read(&key)?.map_or(0, |c| c.len());
        let needed = crl_len.saturating_add(CRL_RENEWAL_MARGIN);
        if size < needed {
            return Err(refused(
                FailureCode::ParamsInvalid,
                format!(
                    "max_tx_size {size} would leave {:?} unable to renew its CRL of {crl_len} bytes: it needs at least {needed} (the CRL plus {CRL_RENEWAL_MARGIN})",
                    org.name
                ),
            ));
        }
    }
    Ok(())
}

/// The block's time as certificates are judged at (seconds).
fn block_time(ctx: &CallContext<'_>) -> pki::UnixTime {
    pki::UnixTime(ctx.block().timestamp_ms / 1000)
}

/// The active organisations, in name order.
fn electorate(r: &(impl StateRead + ?Sized)) -> Result<Vec<String>, ExecError> {
    let mut names: Vec<String> = view::organisations(r)?
        .into_iter()
        .filter(|o| o.is_active())
        .map(|o| o.name)
        .collect();
    names.sort();
    Ok(names)
}

impl GovernanceContract {
    fn authorize_propose(ctx: &CallContext<'_>, args: &[Vec<u8>]) -> Result<(), Denial> {
        // A recheck judges the proposal against a newer state; its module, checked at
        // admission, is the same bytes.
        let p = if ctx.phase() == Phase::Recheck {
            parse_proposal_shape(args)?
        } else {
            parse_proposal(args)?
        };
        let caller = &ctx.caller().organisation;
        let electors = electorate(ctx)?;
        if !electors.contains(caller) {
            return Err(refused(
                FailureCode::PermissionDenied,
                format!("{caller:?} is not an active organisation"),
            ));
        }
        if electors.len() > MAX_ELECTORATE {
            return Err(refused(
                FailureCode::BadArguments,
                format!(
                    "{} organisations are active, more than a proposal's electorate holds ({MAX_ELECTORATE})",
                    electors.len()
                ),
            ));
        }
        let now = ctx.block().height;
        if p.deadline < now || p.deadline.0 - now.0 > MAX_VOTING_PERIOD {
            return Err(refused(
                FailureCode::ProposalSchedule,
                format!(
                    "the deadline {} must lie between the proposing height {} and {} blocks after it",
                    p.deadline.0, now.0, MAX_VOTING_PERIOD
                ),
            ));
        }
        match &p.kind {
            ProposalKind::Validators(change) => check_change(ctx, change, block_time(ctx))?,
            ProposalKind::Params(update) => check_params_fit(ctx, update)?,
            ProposalKind::Contract(change) => {
                check_contract_change(ctx, change, Stage::Proposing)?;
                if let Some(hash) = change.code_hash() {
                    check_module_proposal_room(ctx, caller, ctx.block().height)?;
                    let len = args[4..].iter().map(|a| a.len() as u64).sum();
                    let replaced = crate::wasm::contract(ctx, change.name())?.map(|c| c.code_hash);
                    check_deployed_code_room(ctx, &hash, len, replaced.as_ref())?;
                }
            }
            ProposalKind::Supervisor { organisation, .. } => {
                check_supervisor(ctx, organisation)?;
            }
            ProposalKind::SupervisionFreeze {
                freeze,
                kind,
                target,
                reason,
            } => {
                check_supervision_freeze(ctx, caller, *freeze, *kind, target, reason)?;
            }
            kind => check_org_change(ctx, kind, block_time(ctx)).map(|_| ())?,
        }
        Ok(())
    }

    fn authorize_vote(ctx: &CallContext<'_>, args: &[Vec<u8>]) -> Result<(), Denial> {
        let (id, _) = parse_vote(args)?;
        let p = read_proposal(ctx, &id)?.ok_or_else(|| {
            refused(
                FailureCode::ProposalUnknown,
                format!("no proposal {}", id.to_hex()),
            )
        })?;
        let caller = &ctx.caller().organisation;
        if !p.electorate.contains(caller) {
            return Err(refused(
                FailureCode::PermissionDenied,
                format!(
                    "{caller:?} is not in the electorate of proposal {}",
                    id.to_hex()
                ),
            ));
        }
        if p.status != ProposalStatus::Open {
            return Err(refused(
                FailureCode::ProposalClosed,
                format!("proposal {} is {:?}", id.to_hex(), p.status),
            ));
        }
        if ctx.block().height > p.deadline {
            return Err(refused(
                FailureCode::ProposalClosed,
                format!(
                    "proposal {} expired at height {}",
                    id.to_hex(),
                    p.deadline.0
                ),
            ));
        }
        if p.votes.contains_key(caller) {
            return Err(refused(
                FailureCode::AlreadyVoted,
                format!("{caller:?} already voted on proposal {}", id.to_hex()),
            ));
        }
        Ok(())
    }

    fn propose(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let mut p = parse_proposal(args)?;
        if let ProposalKind::Contract(change) = &mut p.kind {
            // The contract's state the change is made against: it executes only if that is
            // still the contract's last change.
            if let Some(c) = crate::wasm::contract(ctx, change.name())? {
                change.set_since(c.proposal);
            }
            // A deployment's or upgrade's module is stored now (validated by the parse above)
            // and counted as referenced by the open proposal; the proposal records its hash.
            // Code no deployed contract runs is never called; a rejected proposal's reference
            // goes, and with the last one the code.
            if let Some(hash) = change.code_hash() {
                let code = args[4..].concat();
                ctx.nested(CONTRACTS, |c| {
                    let key = keys::contracts::code(&hash);
                    if c.get(&key)?.is_none() {
                        c.put(&key, code)?;
                    }
                    add_code_ref(c, &hash, 1)
                })?;
                let org = ctx.caller().organisation.clone();
                add_module_proposal(ctx, &org, ctx.tx_id().0)?;
            }
        }
        let caller = ctx.caller().organisation.clone();
        let policy = match p.kind.policy_kind() {
            Some(kind) => policy(ctx, kind)?,
            None => Policy::All,
        };
        let id = ctx.tx_id().0;
        let mut record = ProposalRecord {
            id,
            kind: p.kind,
            proposer: caller.clone(),
            created: ctx.block().height,
            deadline: p.deadline,
            effective: p.effective,
            electorate: electorate(ctx)?,
            votes: BTreeMap::from([(caller.clone(), true)]),
            policy,
            status: ProposalStatus::Open,
        };
        ctx.emit("proposed", id.0.to_vec())?;
        Self::tally(ctx, &mut record)?;
        ctx.put(&k::proposal(&id), record.encode())
    }

    fn vote(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let (id, yes) = parse_vote(args)?;
        let mut record = read_proposal(ctx, &id)?.ok_or_else(|| {
            ContractError::failed(
                FailureCode::ProposalUnknown,
                format!("no proposal {}", id.to_hex()),
            )
        })?;
        let caller = ctx.caller().organisation.clone();
        record.votes.insert(caller.clone(), yes);
        let mut data = id.0.to_vec();
        data.push(u8::from(yes));
        data.extend_from_slice(caller.as_bytes());
        ctx.emit("voted", data)?;
        Self::tally(ctx, &mut record)?;
        ctx.put(&k::proposal(&id), record.encode())
    }

    /// Executes or rejects `record` if its votes decide it.
    fn tally(ctx: &mut CallContext<'_>, record: &mut ProposalRecord) -> Result<(), ContractError> {
        // A proposal about a contract, and each vote on it, is part of the contract's
        // lifecycle; one about an organisation, of the organisation's trace (review 18).
        match &record.kind {
            ProposalKind::Contract(change) => {
                ctx.trace(crate::trace::TraceKind::Lifecycle, change.name());
            }
            ProposalKind::OrgRegister { ca, .. } => {
                ctx.trace(
                    crate::trace::TraceKind::Org,
                    &ca.organisation().unwrap_or_default(),
                );
            }
            ProposalKind::OrgRemove { name } => ctx.trace(crate::trace::TraceKind::Org, name),
            _ => {}
        }
        let n = record.electorate.len();
        let required = record.policy.required(n);
        let yes = record.votes.values().filter(|v| **v).count();
        let no = record.votes.len() - yes;
        let height = ctx.block().height;
        if yes >= required {
            Self::execute(ctx, record)?;
            record.status = ProposalStatus::Executed(height);
            ctx.emit("executed", record.id.0.to_vec())?;
        } else if n.saturating_sub(no) < required {
            record.status = ProposalStatus::Rejected(height);
            ctx.emit("rejected", record.id.0.to_vec())?;
            // The rejected proposal's module is no longer referenced by it.
            release_module(ctx, &record.kind)?;
        }
        Ok(())
    }

    fn execute(ctx: &mut CallContext<'_>, record: &ProposalRecord) -> Result<(), ContractError> {
        match &record.kind {
            ProposalKind::Validators(change) => {
                if let Some(p) = validators::pending(ctx)? {
                    return Err(ContractError::failed(
                        FailureCode::ValidatorChangePending,
                        format!(
                            "proposal {}'s validator change is pending until height {}; vote again after it",
                            p.proposal.to_hex(),
                            p.effective.0
                        ),
                    ));
                }
                check_change(ctx, change, block_time(ctx)).map_err(Denial::into_failure)?;
                let pending = PendingChange {
                    effective: record.effective,
                    change: (**change).clone(),
                    proposal: record.id,
                    tx: ctx.tx_id(),
                };
                ctx.put(&k::pending_validators(), pending.encode())
            }
            ProposalKind::Params(update) => {
                if let Some(p) = params_rule::pending(ctx)? {
                    return Err(ContractError::failed(
                        FailureCode::ValidatorChangePending,
                        format!(
                            "proposal {}'s parameter change is pending until height {}; vote again after it",
                            p.proposal.to_hex(),
                            p.effective.0
                        ),
                    ));
                }
                // Checked again: the record may have been written under other bounds, and the
                // CRLs on record may have grown since it was proposed.
                update.check().map_err(|e| {
                    ContractError::failed(
                        FailureCode::ParamsInvalid,
                        format!("proposal {}: {e}", record.id.to_hex()),
                    )
                })?;
                check_params_fit(ctx, update).map_err(Denial::into_failure)?;
                let pending = PendingParams {
                    effective: record.effective,
                    update: *update,
                    proposal: record.id,
                    tx: ctx.tx_id(),
                };
                ctx.put(&k::pending_params(), pending.encode())
            }
            ProposalKind::OrgRegister { ca, crl } => {
                check_org_change(ctx, &record.kind, block_time(ctx))
                    .map_err(Denial::into_failure)?;
                ctx.nested(IDENTITY, |id| identity::register_founding(id, ca, crl))
            }
            ProposalKind::OrgRemove { .. } => {
                let org = check_org_change(ctx, &record.kind, block_time(ctx))
                    .map_err(Denial::into_failure)?;
                match org {
                    Some(org) => {
                        reject_module_proposals_of(ctx, &org.name)?;
                        ctx.nested(IDENTITY, |id| identity::remove_by_governance(id, org))
                    }
                    None => Ok(()),
                }
            }
            ProposalKind::Policy { kind, policy } => {
                ctx.put(&k::policy(kind), policy.text().into_bytes())
            }
            ProposalKind::Contract(change) => execute_contract_change(ctx, change, record.id),
            ProposalKind::Supervisor {
                organisation,
                policy,
            } => {
                check_supervisor(ctx, organisation).map_err(Denial::into_failure)?;
                let rec = crate::trace::SupervisorRecord {
                    organisation: organisation.clone(),
                    policy: *policy,
                    since: ctx.block().height,
                };
                ctx.nested(keys::SUPERVISION, |c| {
                    c.put(&keys::supervision::supervisor(), rec.encode())
                })
            }
            ProposalKind::SupervisionFreeze {
                freeze,
                kind,
                target,
                reason,
            } => {
                check_supervision_freeze(ctx, &record.proposer, *freeze, *kind, target, reason)
                    .map_err(Denial::into_failure)?;
                let a = crate::supervision::FreezeArgs {
                    kind: *kind,
                    target: target.clone(),
                    reason: reason.clone(),
                    cert: None,
                };
                ctx.nested(keys::SUPERVISION, |c| {
                    crate::supervision::apply(c, *freeze, &a)
                })
            }
        }
    }
}

/// A supervisor named by governance is an active organisation whose people are not frozen
/// (a frozen supervisor could not unfreeze anyone).
fn check_supervisor(ctx: &CallContext<'_>, organisation: &str) -> Result<(), Denial> {
    match view::organisation(ctx, organisation)? {
        Some(o) if o.removed_at.is_none() => {}
        _ => {
            return Err(refused(
                FailureCode::BadArguments,
                format!("{organisation:?} is not an active organisation"),
            ));
        }
    }
    if crate::supervision::freeze(ctx, FreezeKind::Org, organisation)?.is_some() {
        return Err(refused(
            FailureCode::BadArguments,
            format!("{organisation:?}'s people are frozen by the supervisor: unfreeze them first"),
        ));
    }
    Ok(())
}

/// A supervision freeze by vote: proposed by the supervising organisation, under the
/// `governance` freeze policy, of a target that may be frozen.
fn check_supervision_freeze(
    ctx: &CallContext<'_>,
    proposer: &str,
    freeze: bool,
    kind: FreezeKind,
    target: &str,
    reason: &str,
) -> Result<(), Denial> {
    let what = if freeze {
        "supervision-freeze"
    } else {
        "supervision-unfreeze"
    };
    let s = crate::supervision::require_supervisor(ctx, proposer, what)?;
    if s.policy != FreezePolicy::Governance {
        return Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::FreezeNeedsVote,
            format!(
                "{what}: the chain's freeze policy is \"supervisor\": the supervisor's auditors freeze and unfreeze by supervision.{} without a vote",
                if freeze { "freeze" } else { "unfreeze" }
            ),
        ));
    }
    if freeze {
        let a = crate::supervision::FreezeArgs {
            kind,
            target: target.to_string(),
            reason: reason.to_string(),
            cert: None,
        };
        crate::supervision::check_target(ctx, &s, &a).map_err(Denial::from)?;
    }
    Ok(())
}

impl Contract for GovernanceContract {
    fn name(&self) -> &'static str {
        GOVERNANCE
    }

    fn methods(&self) -> &'static [&'static str] {
        METHODS
    }

    fn check_args(&self, method: &str, args: &[Vec<u8>]) -> Result<(), ContractError> {
        match method {
            // The module's checks wait for the signature (admission) and the fuel (execution).
            "propose" => parse_proposal_shape(args).map(|_| ()),
            "vote" => parse_vote(args).map(|_| ()),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("governance has no method {method:?}"),
            )),
        }
    }

    fn authorize(
        &self,
        ctx: &CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), Denial> {
        match method {
            "propose" => Self::authorize_propose(ctx, args),
            "vote" => Self::authorize_vote(ctx, args),
            _ => Ok(()),
        }
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), ContractError> {
        ctx.charge(BUILTIN_CALL_COST)?;
        match method {
            "propose" => Self::propose(ctx, args),
            "vote" => Self::vote(ctx, args),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("governance has no method {method:?}"),
            )),
        }
    }
}

// The record's encoding (docs/execution.md §3).

impl ProposalRecord {
    /// Returns the record's canonical encoding (docs/execution.md §3), as stored under
    /// `governance/proposal/<id>`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.header(crate::records::tag::PROPOSAL);
        w.fixed(self.id.as_bytes());
        match &self.kind {
            ProposalKind::Validators(c) => {
                w.u8(1);
                c.encode_to(&mut w);
            }
            ProposalKind::Policy { kind, policy } => {
                w.u8(2);
                w.bytes(kind.as_bytes());
                w.bytes(policy.text().as_bytes());
            }
            ProposalKind::Params(update) => {
                w.u8(3);
                update.encode_to(&mut w);
            }
            ProposalKind::OrgRegister { ca, crl } => {
                w.u8(4);
                w.bytes(ca.der());
                w.bytes(crl.der());
            }
            ProposalKind::OrgRemove { name } => {
                w.u8(5);
                w.bytes(name.as_bytes());
            }
            ProposalKind::Supervisor {
                organisation,
                policy,
            } => {
                w.u8(7);
                w.bytes(organisation.as_bytes());
                w.bytes(policy.as_str().as_bytes());
            }
            ProposalKind::SupervisionFreeze {
                freeze,
                kind,
                target,
                reason,
            } => {
                w.u8(8);
                w.u8(u8::from(*freeze));
                w.bytes(kind.as_str().as_bytes());
                w.bytes(target.as_bytes());
                w.bytes(reason.as_bytes());
            }
            ProposalKind::Contract(change) => {
                w.u8(6);
                match change {
                    ContractChange::Deploy {
                        name,
                        code_hash,
                        runs_entry,
                    } => {
                        w.u8(1);
                        w.bytes(name.as_bytes());
                        w.fixed(code_hash.as_bytes());
                        w.u8(u8::from(*runs_entry));
                    }
                    ContractChange::Upgrade {
                        name,
                        code_hash,
                        runs_entry,
                        since,
                    } => {
                        w.u8(2);
                        w.bytes(name.as_bytes());
                        w.fixed(code_hash.as_bytes());
                        w.u8(u8::from(*runs_entry));
                        w.fixed(since.as_bytes());
                    }
                    ContractChange::Freeze { name, since } => {
                        w.u8(3);
                        w.bytes(name.as_bytes());
                        w.fixed(since.as_bytes());
                    }
                    ContractChange::Unfreeze { name, since } => {
                        w.u8(4);
                        w.bytes(name.as_bytes());
                        w.fixed(since.as_bytes());
                    }
                }
            }
        }
        w.bytes(self.proposer.as_bytes());
        w.u64(self.created.0);
        w.u64(self.deadline.0);
        w.u64(self.effective.0);
        w.len(self.electorate.len());
        for o in &self.electorate {
            w.bytes(o.as_bytes());
        }
        w.len(self.votes.len());
        for (o, yes) in &self.votes {
            w.bytes(o.as_bytes());
            w.u8(u8::from(*yes));
        }
        w.bytes(self.policy.text().as_bytes());
        match self.status {
            ProposalStatus::Open => w.u8(0),
            ProposalStatus::Executed(h) => {
                w.u8(1);
                w.u64(h.0);
            }
            ProposalStatus::Rejected(h) => {
                w.u8(2);
                w.u64(h.0);
            }
        }
        w.into_bytes()
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, ExecError> {
        let c = |e| ExecError::corrupt(key, e);
        let text = |r: &mut Reader<'_>, f: &'static str| -> Result<String, ExecError> {
            String::from_utf8(r.bytes(f, 1024).map_err(c)?.to_vec())
                .map_err(|_| ExecError::corrupt(key, format!("{f} is not UTF-8")))
        };
        let mut r = Reader::new(bytes);
        r.header("proposal.header", crate::records::tag::PROPOSAL)
            .map_err(c)?;
        let id = Digest(r.array("proposal.id").map_err(c)?);
        let kind = match r.u8("proposal.kind").map_err(c)? {
            1 => ProposalKind::Validators(Box::new(ValidatorChange::decode_from(key, &mut r)?)),
            2 => ProposalKind::Policy {
                kind: text(&mut r, "proposal.policy_kind")?,
                policy: Policy::parse(&text(&mut r, "proposal.policy")?)
                    .map_err(|e| ExecError::corrupt(key, e))?,
            },
            3 => ProposalKind::Params(ParamsUpdate::decode_from(key, &mut r)?),
            4 => {
                let ca = r.bytes("proposal.ca", pki::MAX_CERT_LEN).map_err(c)?;
                let crl = r.bytes("proposal.crl", pki::MAX_CRL_LEN).map_err(c)?;
                ProposalKind::OrgRegister {
                    ca: Box::new(
                        Certificate::from_der(ca).map_err(|e| ExecError::corrupt(key, e))?,
                    ),
                    crl: Box::new(Crl::from_der(crl).map_err(|e| ExecError::corrupt(key, e))?),
                }
            }
            5 => ProposalKind::OrgRemove {
                name: text(&mut r, "proposal.organisation")?,
            },
            7 => {
                let organisation = text(&mut r, "proposal.supervisor")?;
                let p = text(&mut r, "proposal.freeze_policy")?;
                ProposalKind::Supervisor {
                    organisation,
                    policy: FreezePolicy::parse(&p).ok_or_else(|| {
                        ExecError::corrupt(key, format!("proposal.freeze_policy {p:?}"))
                    })?,
                }
            }
            8 => {
                let freeze = match r.u8("proposal.freeze").map_err(c)? {
                    0 => false,
                    1 => true,
                    got => {
                        return Err(ExecError::corrupt(key, format!("proposal.freeze {got}")));
                    }
                };
                let k = text(&mut r, "proposal.freeze_kind")?;
                ProposalKind::SupervisionFreeze {
                    freeze,
                    kind: FreezeKind::parse(&k).ok_or_else(|| {
                        ExecError::corrupt(key, format!("proposal.freeze_kind {k:?}"))
                    })?,
                    target: text(&mut r, "proposal.freeze_target")?,
                    reason: text(&mut r, "proposal.freeze_reason")?,
                }
            }
            6 => {
                let change = r.u8("proposal.contract_change").map_err(c)?;
                let name = text(&mut r, "proposal.contract")?;
                match change {
                    1 | 2 => {
                        let code_hash = Digest(r.array("proposal.code_hash").map_err(c)?);
                        let runs_entry = match r.u8("proposal.runs_entry").map_err(c)? {
                            0 => false,
                            1 => true,
                            got => {
                                return Err(ExecError::corrupt(
                                    key,
                                    format!("proposal.runs_entry {got}"),
                                ));
                            }
                        };
                        ProposalKind::Contract(if change == 1 {
                            ContractChange::Deploy {
                                name,
                                code_hash,
                                runs_entry,
                            }
                        } else {
                            ContractChange::Upgrade {
                                name,
                                code_hash,
                                runs_entry,
                                since: Digest(r.array("proposal.since").map_err(c)?),
                            }
                        })
                    }
                    3 | 4 => {
                        let since = Digest(r.array("proposal.since").map_err(c)?);
                        ProposalKind::Contract(if change == 3 {
                            ContractChange::Freeze { name, since }
                        } else {
                            ContractChange::Unfreeze { name, since }
                        })
                    }
                    got => {
                        return Err(ExecError::corrupt(
                            key,
                            format!("proposal contract change {got}"),
                        ));
                    }
                }
            }
            got => return Err(ExecError::corrupt(key, format!("proposal kind {got}"))),
        };
        let proposer = text(&mut r, "proposal.proposer")?;
        let created = Height(r.u64("proposal.created").map_err(c)?);
        let deadline = Height(r.u64("proposal.deadline").map_err(c)?);
        let effective = Height(r.u64("proposal.effective").map_err(c)?);
        let n = r.len("proposal.electorate", MAX_ELECTORATE).map_err(c)?;
        let mut electorate = Vec::with_capacity(n);
        for _ in 0..n {
            electorate.push(text(&mut r, "proposal.electorate[]")?);
        }
        let n = r.len("proposal.votes", MAX_ELECTORATE).map_err(c)?;
        let mut votes = BTreeMap::new();
        for _ in 0..n {
            let o = text(&mut r, "proposal.votes[].organisation")?;
            let yes = r.u8("proposal.votes[].yes").map_err(c)? == 1;
            votes.insert(o, yes);
        }
        let policy = Policy::parse(&text(&mut r, "proposal.threshold")?)
            .map_err(|e| ExecError::corrupt(key, e))?;
        let status = match r.u8("proposal.status").map_err(c)? {
            0 => ProposalStatus::Open,
            1 => ProposalStatus::Executed(Height(r.u64("proposal.status.height").map_err(c)?)),
            2 => ProposalStatus::Rejected(Height(r.u64("proposal.status.height").map_err(c)?)),
            got => return Err(ExecError::corrupt(key, format!("proposal status {got}"))),
        };
        r.finish().map_err(c)?;
        Ok(ProposalRecord {
            id,
            kind,
            proposer,
            created,
            deadline,
            effective,
            electorate,
            votes,
            policy,
            status,
        })
    }
}
