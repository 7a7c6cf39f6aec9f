//! `gmchain governance …` and `gmchain query validators`: proposals and votes of the
//! `governance` system contract (validator-set changes, chain parameters, organisations
//! registered as founding organisations or removed, policies), and what the chain decided.
//!
//! Transactions are signed exactly like `gmchain tx …` (`--key`, `--cert`, `--pass-file`…).
//! The certificate a proposal names is `--validator-cert` (add, remove), `--current-cert` and
//! `--new-cert` (rotate): `--cert` is already the sender's.

use std::path::PathBuf;

use api::v1 as pb;
use clap::{Subcommand, ValueEnum};
use pki::{Certificate, Role};
use types::Call;

use crate::cli_tx::{NodeArgs, SenderArgs, connect, parse_digest, print_json, runtime, send_fuel};
use crate::io::{read_cert, read_crl};
use crate::{CmdResult, Failure};

#[derive(Debug, Subcommand)]
pub(crate) enum GovernanceCommand {
    /// Proposes a change (sent by an admin of an active organisation, whose vote is a yes).
    /// Prints the proposal ID (the transaction's), the chosen heights and where it stands.
    #[command(subcommand)]
    Propose(ProposeCommand),
    /// Votes on a proposal (sent by an admin of an organisation of its electorate; one vote
    /// per organisation).
    Vote {
        /// The proposal ID (hex, the proposing transaction's ID).
        id: String,
        /// The vote.
        vote: Vote,
        /// The vote's fuel limit (a version 2 transaction): the vote that passes a contract
        /// deployment or upgrade runs the module's `init`/`migrate` on it.
        #[arg(long, value_name = "N", default_value_t = crate::cli_contract::DEFAULT_CALL_FUEL)]
        fuel: u64,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Proposals made in the last blocks, newest first, as `show` gives each (JSON): the
    /// chain keeps no list of proposals, so the node scans the proposing transactions.
    List {
        /// Only proposals with this status: open, executed, rejected or expired.
        #[arg(long)]
        status: Option<String>,
        /// How many blocks below the tip (the tip included) to scan, at most 10000.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        blocks: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A proposal as the chain holds it: what it decides, votes, status (JSON).
    Show {
        /// The proposal ID (hex).
        id: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// A vote.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Vote {
    Yes,
    No,
}

/// When voting ends: an absolute height, or blocks after the node's tip.
#[derive(Debug, clap::Args)]
pub(crate) struct Deadline {
    /// The last height at which votes count.
    #[arg(long, value_name = "H", conflicts_with = "deadline_in")]
    deadline: Option<u64>,
    /// The deadline as blocks after the node's tip. Leave the transaction time to reach a
    /// block: a deadline already passed when it is proposed is refused.
    #[arg(long, value_name = "N")]
    deadline_in: Option<u64>,
}

/// When voting ends and when a change takes effect: absolute heights, or blocks after the
/// node's tip.
#[derive(Debug, clap::Args)]
pub(crate) struct Schedule {
    #[command(flatten)]
    deadline: Deadline,
    /// The first height the change applies to: the changed validator set or parameters
    /// (after the deadline).
    #[arg(long, value_name = "H", conflicts_with = "effective_in")]
    effective: Option<u64>,
    /// The effective height as blocks after the node's tip.
    #[arg(long, value_name = "N")]
    effective_in: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProposeCommand {
    /// A new validator: its name and node-sign certificate (issued by an active
    /// organisation's registered CA).
    ValidatorAdd {
        /// The validator's name.
        #[arg(long)]
        name: String,
        /// Its node-sign certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        validator_cert: PathBuf,
        #[command(flatten)]
        schedule: Schedule,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A validator leaves the set: by certificate ID or certificate.
    ValidatorRemove {
        /// The validator's certificate ID (hex SM3 of its certificate, `query validators`).
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "validator_cert",
            conflicts_with = "validator_cert"
        )]
        validator: Option<String>,
        /// The validator's certificate.
        #[arg(long, value_name = "FILE")]
        validator_cert: Option<PathBuf>,
        #[command(flatten)]
        schedule: Schedule,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A validator continues under a new key and certificate (same organisation): restart
    /// the node with the new key before the effective height, and no height stalls.
    ValidatorRotate {
        /// The validator's current certificate ID (hex).
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "current_cert",
            conflicts_with = "current_cert"
        )]
        validator: Option<String>,
        /// The validator's current certificate.
        #[arg(long, value_name = "FILE")]
        current_cert: Option<PathBuf>,
        /// The new node-sign certificate.
        #[arg(long, value_name = "FILE")]
        new_cert: PathBuf,
        #[command(flatten)]
        schedule: Schedule,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A change of the chain parameters, in force from the effective height (after the
    /// deadline): give at least one; the others keep the values in force when it takes
    /// effect. Bounds (checked here, at admission and at execution): --expiry-window
    /// 1..=1000000, --max-txs-per-block 1..=10000, --max-tx-size 8192..=131072.
    Params {
        /// How far beyond the tip a transaction's expiry may be, in blocks.
        #[arg(long, value_name = "N")]
        expiry_window: Option<u64>,
        /// The most transactions in a block.
        #[arg(long, value_name = "N")]
        max_txs_per_block: Option<u32>,
        /// The largest encoded signed transaction, in bytes.
        #[arg(long, value_name = "BYTES")]
        max_tx_size: Option<usize>,
        /// The most fuel a transaction may name as its limit (at least 10000).
        #[arg(long, value_name = "FUEL")]
        max_fuel_per_tx: Option<u64>,
        /// The most fuel the transactions of a block may name in total (at least 10000).
        #[arg(long, value_name = "FUEL")]
        max_fuel_per_block: Option<u64>,
        #[command(flatten)]
        schedule: Schedule,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A new founding organisation: its self-signed root CA becomes a trust anchor of the
    /// chain when the proposal executes (decided by the `organisations` policy; no effective
    /// height). Its admins may then act, and vote in later proposals.
    OrgRegister {
        /// The organisation's self-signed root CA certificate (PEM or DER); its O names the
        /// organisation.
        #[arg(long, value_name = "FILE")]
        ca_cert: PathBuf,
        /// Its CRL (PEM or DER), issued by that CA.
        #[arg(long, value_name = "FILE")]
        crl: PathBuf,
        #[command(flatten)]
        deadline: Deadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// An organisation leaves the chain, founding or not, when the proposal executes: refused
    /// while it holds a validator seat, sponsors an active organisation or is the last
    /// founding organisation (decided by the `organisations` policy; no effective height).
    OrgRemove {
        /// The organisation's name.
        #[arg(long)]
        organisation: String,
        #[command(flatten)]
        deadline: Deadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The chain's supervisor (issue 16): an active organisation whose auditors read
    /// everything through the supervision API, and its freeze policy (`supervisor`: its
    /// auditors freeze alone; `governance`: each freeze is a `supervision-freeze` proposal).
    /// Decided by the `supervision` policy, in force from its execution.
    Supervisor {
        /// The supervising organisation.
        #[arg(long)]
        organisation: String,
        /// supervisor or governance.
        #[arg(long, default_value = "supervisor")]
        freeze_policy: String,
        #[command(flatten)]
        deadline: Deadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A supervisor's freeze by vote, on a chain whose freeze policy is `governance`:
    /// proposed by an admin of the supervising organisation (`--unfreeze` lifts one).
    SupervisionFreeze {
        /// cert, org or contract.
        #[arg(long)]
        kind: String,
        /// A certificate's SM3 ID (64 hex), an organisation's or a contract's name.
        #[arg(long)]
        target: String,
        /// Why (recorded on the chain).
        #[arg(long)]
        reason: String,
        /// Lift the supervisor's freeze instead.
        #[arg(long)]
        unfreeze: bool,
        #[command(flatten)]
        deadline: Deadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The threshold of a kind of proposal (decided by all organisations; in force from its
    /// execution, so it takes a deadline and no effective height).
    Policy {
        /// The kind whose policy changes: validators, params or organisations.
        #[arg(long, default_value = "validators")]
        kind: String,
        /// majority, all, or at-least:<m>.
        #[arg(long)]
        policy: String,
        #[command(flatten)]
        deadline: Deadline,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// A node-sign certificate from `flag`'s file, or exit 2 naming what is wrong.
fn node_sign_cert(flag: &str, path: &std::path::Path) -> Result<Certificate, Failure> {
    let c = read_cert(flag, path)?;
    if c.role() != Some(Role::NodeSign) {
        return Err(Failure::BadInput(format!(
            "{flag} {}: role {}, a validator needs a node-sign certificate",
            path.display(),
            c.role().map_or("none".to_string(), |r| r.to_string())
        )));
    }
    Ok(c)
}

/// The kinds in force from their execution: a deadline, no effective height.
const NO_EFFECTIVE_HEIGHT: &[&str] = &[
    "policy",
    "org-register",
    "org-remove",
    "contract-deploy",
    "contract-upgrade",
    "contract-freeze",
    "contract-unfreeze",
];

/// Checks a kind's arguments as the chain will (`execution::parse_proposal`), before
/// anything is sent; `what` names the options they came from.
pub(crate) fn check_kind_args(kind: &str, args: &[Vec<u8>], what: &str) -> Result<(), Failure> {
    let mut all = vec![kind.as_bytes().to_vec(), vec![0; 8], vec![0; 8]];
    all.extend(args.iter().cloned());
    execution::parse_proposal(&all)
        .map(|_| ())
        .map_err(|e| Failure::BadInput(format!("{what}: {e}")))
}

/// A schedule of a deadline only.
fn deadline_only(deadline: Deadline) -> Schedule {
    Schedule {
        deadline,
        effective: Some(0),
        effective_in: None,
    }
}

/// A validator's certificate ID from `--validator ID` or a certificate file.
fn validator_id(
    id: Option<&str>,
    id_flag: &str,
    cert: Option<&std::path::Path>,
    cert_flag: &str,
) -> Result<crypto::Digest, Failure> {
    match (id, cert) {
        (Some(id), None) => parse_digest(id_flag, id),
        (None, Some(path)) => Ok(read_cert(cert_flag, path)?.fingerprint()),
        _ => Err(Failure::BadInput(format!(
            "give the validator as {id_flag} ID or {cert_flag} FILE"
        ))),
    }
}

/// One height from an absolute or a tip-relative option.
fn height(
    tip: u64,
    abs: Option<u64>,
    rel: Option<u64>,
    name: &str,
) -> Result<(u64, String), Failure> {
    match (abs, rel) {
        (Some(h), None) => Ok((h, format!("{name} height {h}"))),
        (None, Some(n)) => {
            let h = tip.checked_add(n).ok_or_else(|| {
                Failure::BadInput(format!("--{name}-in {n}: past the last height"))
            })?;
            Ok((h, format!("{name} height {h} (tip {tip} + {n})")))
        }
        _ => Err(Failure::BadInput(format!(
            "give --{name} H or --{name}-in N"
        ))),
    }
}

async fn tip(
    client: &mut api::v1::chain_client::ChainClient<tonic::transport::Channel>,
) -> Result<u64, Failure> {
    Ok(client
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(|s| crate::cli_tx::status_failure("status", s))?
        .into_inner()
        .height)
}

async fn proposal(
    client: &mut api::v1::chain_client::ChainClient<tonic::transport::Channel>,
    id: &crypto::Digest,
) -> Result<pb::ProposalResponse, Failure> {
    Ok(client
        .get_proposal(pb::GetProposalRequest {
            id: id.as_bytes().to_vec(),
        })
        .await
        .map_err(|s| crate::cli_tx::status_failure("proposal", s))?
        .into_inner())
}

/// The votes still needed to pass under `policy` (text) from an electorate of `n`.
fn required(policy: &str, n: usize) -> Option<usize> {
    execution::Policy::parse(policy).ok().map(|p| p.required(n))
}

/// One line on where a proposal stands.
fn standing(p: &pb::ProposalResponse) -> String {
    let yes = p.votes.iter().filter(|v| v.yes).count();
    let no = p.votes.len() - yes;
    let need =
        required(&p.policy, p.electorate.len()).map_or_else(|| "?".to_string(), |n| n.to_string());
    let tally = format!(
        "{yes} yes, {no} no of {} organisation(s); {need} yes needed ({})",
        p.electorate.len(),
        p.policy
    );
    match p.status.as_str() {
        "executed" if p.effective > 0 => format!(
            "executed at height {}: {} at height {} ({tally})",
            p.status_height,
            if p.kind == "params" {
                "the chain parameters change"
            } else {
                "the validator set changes"
            },
            p.effective
        ),
        "executed" | "rejected" => format!("{} at height {} ({tally})", p.status, p.status_height),
        "open" => format!("open until height {} ({tally})", p.deadline),
        other => format!("{other} ({tally})"),
    }
}

fn cert_json(der: &[u8]) -> serde_json::Value {
    match Certificate::from_der(der) {
        Ok(c) => serde_json::json!({
            "id": c.fingerprint().to_hex(),
            "subject": c.subject(),
            "not_after": c.validity().not_after.0,
            "pem": c.to_pem(),
        }),
        Err(e) => serde_json::json!({ "unreadable": e.to_string(), "der": hex::encode(der) }),
    }
}

fn proposal_json(p: &pb::ProposalResponse) -> serde_json::Value {
    use pb::proposal_response::Change;
    let change = match &p.change {
        Some(Change::ValidatorAdd(a)) => serde_json::json!({
            "name": a.name, "certificate": cert_json(&a.certificate),
        }),
        Some(Change::ValidatorRemove(r)) => serde_json::json!({
            "validator": hex::encode(&r.validator_id),
        }),
        Some(Change::ValidatorRotate(r)) => serde_json::json!({
            "validator": hex::encode(&r.current_id), "certificate": cert_json(&r.certificate),
        }),
        Some(Change::PolicyChange(c)) => serde_json::json!({
            "kind": c.kind, "policy": c.policy,
        }),
        Some(Change::ParamsChange(c)) => serde_json::json!({
            "expiry_window": c.expiry_window,
            "max_txs_per_block": c.max_txs_per_block,
            "max_tx_size": c.max_tx_size,
            "max_fuel_per_tx": c.max_fuel_per_tx,
            "max_fuel_per_block": c.max_fuel_per_block,
        }),
        Some(Change::ContractChange(c)) => serde_json::json!({
            "contract": c.name,
            "code_hash": (!c.code_hash.is_empty()).then(|| hex::encode(&c.code_hash)),
        }),
        Some(Change::OrgRegister(r)) => serde_json::json!({
            "organisation": r.organisation,
            "ca_certificate": cert_json(&r.ca_certificate),
            "crl": match pki::Crl::from_der(&r.crl) {
                Ok(c) => serde_json::json!({
                    "issuer": c.issuer(),
                    "this_update": c.this_update().0,
                    "next_update": c.next_update().map(|t| t.0),
                    "revoked": c.revoked().len(),
                }),
                Err(e) => serde_json::json!({ "unreadable": e.to_string() }),
            },
        }),
        Some(Change::OrgRemove(r)) => serde_json::json!({
            "organisation": r.organisation,
        }),
        Some(Change::Supervisor(r)) => serde_json::json!({
            "organisation": r.organisation,
            "freeze_policy": r.freeze_policy,
        }),
        Some(Change::SupervisionFreeze(r)) => serde_json::json!({
            "freeze": r.freeze,
            "kind": r.kind,
            "target": r.target,
            "reason": r.reason,
        }),
        None => serde_json::Value::Null,
    };
    let votes: serde_json::Map<String, serde_json::Value> = p
        .votes
        .iter()
        .map(|v| {
            (
                v.organisation.clone(),
                serde_json::json!(if v.yes { "yes" } else { "no" }),
            )
        })
        .collect();
    serde_json::json!({
        "id": hex::encode(&p.id),
        "kind": p.kind,
        "change": change,
        "proposer": p.proposer,
        "created": p.created,
        "deadline": p.deadline,
        "effective": p.effective,
        "electorate": p.electorate,
        "votes": votes,
        "policy": p.policy,
        "required": required(&p.policy, p.electorate.len()),
        "status": p.status,
        "status_height": p.status_height,
        "tip": p.tip,
    })
}

pub(crate) fn run(cmd: GovernanceCommand) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            GovernanceCommand::Propose(p) => propose(p).await,
            GovernanceCommand::Vote {
                id,
                vote,
                fuel,
                sender,
                node,
            } => {
                let id = parse_digest("ID", &id)?;
                let mut client = connect(&node).await?;
                let yes = matches!(vote, Vote::Yes);
                let call = Call {
                    contract: "governance".into(),
                    method: "vote".into(),
                    args: vec![
                        id.as_bytes().to_vec(),
                        if yes { b"yes".to_vec() } else { b"no".to_vec() },
                    ],
                };
                let (tx, _, height) = send_fuel(&mut client, &sender, call, Some(fuel)).await?;
                let p = proposal(&mut client, &id).await?;
                println!(
                    "governance.vote {} on proposal {} committed: tx {tx} at height {height}",
                    if yes { "yes" } else { "no" },
                    id.to_hex()
                );
                println!("proposal {}: {}", id.to_hex(), standing(&p));
                Ok(())
            }
            GovernanceCommand::List {
                status,
                blocks,
                node,
            } => {
                if !(1..=10_000).contains(&blocks) {
                    return Err(Failure::BadInput(format!(
                        "--blocks {blocks}: scan 1 to 10000 blocks"
                    )));
                }
                let mut client = connect(&node).await?;
                let l = client
                    .list_proposals(pb::ListProposalsRequest {
                        blocks,
                        status: status.unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| crate::cli_tx::status_failure("proposals", s))?
                    .into_inner();
                print_json(&serde_json::json!({
                    "tip": l.tip,
                    "from_height": l.from_height,
                    "proposals": l.proposals.iter().map(proposal_json).collect::<Vec<_>>(),
                }))
            }
            GovernanceCommand::Show { id, node } => {
                let id = parse_digest("ID", &id)?;
                let mut client = connect(&node).await?;
                let p = proposal(&mut client, &id).await?;
                print_json(&proposal_json(&p))
            }
        }
    })
}

async fn propose(cmd: ProposeCommand) -> CmdResult {
    // The kind's arguments, read (and checked) before anything is sent.
    let (kind, args, schedule, sender, node) = match cmd {
        ProposeCommand::ValidatorAdd {
            name,
            validator_cert,
            schedule,
            sender,
            node,
        } => {
            let c = node_sign_cert("--validator-cert", &validator_cert)?;
            (
                "validator-add",
                vec![name.into_bytes(), c.der().to_vec()],
                schedule,
                sender,
                node,
            )
        }
        ProposeCommand::ValidatorRemove {
            validator,
            validator_cert,
            schedule,
            sender,
            node,
        } => {
            let id = validator_id(
                validator.as_deref(),
                "--validator",
                validator_cert.as_deref(),
                "--validator-cert",
            )?;
            (
                "validator-remove",
                vec![id.as_bytes().to_vec()],
                schedule,
                sender,
                node,
            )
        }
        ProposeCommand::ValidatorRotate {
            validator,
            current_cert,
            new_cert,
            schedule,
            sender,
            node,
        } => {
            let id = validator_id(
                validator.as_deref(),
                "--validator",
                current_cert.as_deref(),
                "--current-cert",
            )?;
            let c = node_sign_cert("--new-cert", &new_cert)?;
            (
                "validator-rotate",
                vec![id.as_bytes().to_vec(), c.der().to_vec()],
                schedule,
                sender,
                node,
            )
        }
        ProposeCommand::Params {
            expiry_window,
            max_txs_per_block,
            max_tx_size,
            max_fuel_per_tx,
            max_fuel_per_block,
            schedule,
            sender,
            node,
        } => {
            let update = execution::ParamsUpdate {
                expiry_window,
                max_txs_per_block,
                max_tx_size,
                max_fuel_per_tx,
                max_fuel_per_block,
            };
            update.check().map_err(|e| {
                Failure::BadInput(
                    e.replace("expiry_window", "--expiry-window")
                        .replace("max_txs_per_block", "--max-txs-per-block")
                        .replace("max_tx_size", "--max-tx-size")
                        .replace("max_fuel_per_tx", "--max-fuel-per-tx")
                        .replace("max_fuel_per_block", "--max-fuel-per-block"),
                )
            })?;
            let value = |v: Option<u64>| v.map_or_else(Vec::new, |v| v.to_be_bytes().to_vec());
            (
                "params",
                vec![
                    value(expiry_window),
                    value(max_txs_per_block.map(u64::from)),
                    value(max_tx_size.map(|s| u64::try_from(s).unwrap_or(u64::MAX))),
                    value(max_fuel_per_tx),
                    value(max_fuel_per_block),
                ],
                schedule,
                sender,
                node,
            )
        }
        ProposeCommand::OrgRegister {
            ca_cert,
            crl,
            deadline,
            sender,
            node,
        } => {
            let ca = read_cert("--ca-cert", &ca_cert)?;
            let crl_value = read_crl("--crl", &crl)?;
            let args = vec![ca.der().to_vec(), crl_value.der().to_vec()];
            check_kind_args(
                "org-register",
                &args,
                &format!("--ca-cert {} --crl {}", ca_cert.display(), crl.display()),
            )?;
            ("org-register", args, deadline_only(deadline), sender, node)
        }
        ProposeCommand::OrgRemove {
            organisation,
            deadline,
            sender,
            node,
        } => {
            let args = vec![organisation.into_bytes()];
            check_kind_args("org-remove", &args, "--organisation")?;
            ("org-remove", args, deadline_only(deadline), sender, node)
        }
        ProposeCommand::Supervisor {
            organisation,
            freeze_policy,
            deadline,
            sender,
            node,
        } => {
            let args = vec![organisation.into_bytes(), freeze_policy.into_bytes()];
            check_kind_args("supervisor", &args, "--organisation, --freeze-policy")?;
            ("supervisor", args, deadline_only(deadline), sender, node)
        }
        ProposeCommand::SupervisionFreeze {
            kind,
            target,
            reason,
            unfreeze,
            deadline,
            sender,
            node,
        } => {
            let args = vec![kind.into_bytes(), target.into_bytes(), reason.into_bytes()];
            let k = if unfreeze {
                "supervision-unfreeze"
            } else {
                "supervision-freeze"
            };
            check_kind_args(k, &args, "--kind, --target, --reason")?;
            (k, args, deadline_only(deadline), sender, node)
        }
        ProposeCommand::Policy {
            kind,
            policy,
            deadline,
            sender,
            node,
        } => {
            if !execution::POLICY_KINDS.iter().any(|(k, _)| *k == kind) {
                return Err(Failure::BadInput(format!(
                    "--kind {kind:?}: kinds with a policy are {}",
                    execution::POLICY_KINDS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            execution::Policy::parse(&policy)
                .map_err(|e| Failure::BadInput(format!("--policy: {e}")))?;
            let args = vec![kind.into_bytes(), policy.into_bytes()];
            check_kind_args("policy", &args, "--kind/--policy")?;
            ("policy", args, deadline_only(deadline), sender, node)
        }
    };
    submit_proposal(kind, args, schedule, &sender, &node, None).await
}

impl Schedule {
    /// A schedule of a deadline only (an absolute height, or blocks after the tip), for the
    /// kinds in force from their execution.
    pub(crate) fn deadline_only(deadline: Option<u64>, deadline_in: Option<u64>) -> Schedule {
        deadline_only(Deadline {
            deadline,
            deadline_in,
        })
    }
}

/// Sends `governance.propose` of `kind` with its arguments `args` (checked by the caller) on
/// `schedule`; prints the proposal ID and where it stands (the votes it needs).
pub(crate) async fn submit_proposal(
    kind: &str,
    args: Vec<Vec<u8>>,
    schedule: Schedule,
    sender: &SenderArgs,
    node: &NodeArgs,
    fuel: Option<u64>,
) -> CmdResult {
    // Options are checked before the node is asked for its tip.
    if schedule.deadline.deadline.is_none() && schedule.deadline.deadline_in.is_none() {
        return Err(Failure::BadInput(
            "give --deadline H or --deadline-in N".into(),
        ));
    }
    if schedule.effective.is_none() && schedule.effective_in.is_none() {
        return Err(Failure::BadInput(
            "give --effective H or --effective-in N".into(),
        ));
    }
    let mut client = connect(node).await?;
    let tip = tip(&mut client).await?;
    let (deadline, deadline_text) = height(
        tip,
        schedule.deadline.deadline,
        schedule.deadline.deadline_in,
        "deadline",
    )?;
    let (effective, effective_text) = if NO_EFFECTIVE_HEIGHT.contains(&kind) {
        (0, "in force from its execution".to_string())
    } else {
        height(tip, schedule.effective, schedule.effective_in, "effective")?
    };
    if deadline <= tip {
        return Err(Failure::BadInput(format!(
            "the deadline {deadline} is not after the node's tip {tip}"
        )));
    }
    if !NO_EFFECTIVE_HEIGHT.contains(&kind) && effective <= deadline {
        return Err(Failure::BadInput(format!(
            "the effective height {effective} must be after the deadline {deadline}"
        )));
    }
    println!("proposing {kind}: {deadline_text}, {effective_text}");
    let mut call_args = vec![
        kind.as_bytes().to_vec(),
        deadline.to_be_bytes().to_vec(),
        effective.to_be_bytes().to_vec(),
    ];
    call_args.extend(args);
    let call = Call {
        contract: "governance".into(),
        method: "propose".into(),
        args: call_args,
    };
    let (id, _, height) = send_fuel(&mut client, sender, call, fuel).await?;
    let p = proposal(&mut client, &id.0).await?;
    println!("governance.propose {kind} committed: proposal {id} at height {height}");
    println!("proposal {id}: {}", standing(&p));
    Ok(())
}

/// `gmchain query validators`: the set of a height, its epochs and the pending change (JSON).
pub(crate) async fn validators(height: Option<u64>, node: &NodeArgs) -> CmdResult {
    let mut client = connect(node).await?;
    let v = client
        .get_validators(pb::GetValidatorsRequest { height })
        .await
        .map_err(|s| crate::cli_tx::status_failure("validators", s))?
        .into_inner();
    let validators: Vec<serde_json::Value> = v
        .validators
        .iter()
        .map(|x| {
            let mut j = cert_json(&x.certificate);
            if let Some(o) = j.as_object_mut() {
                o.insert("name".into(), serde_json::json!(x.name));
                o.insert("power".into(), serde_json::json!(x.power));
                o.insert("id".into(), serde_json::json!(hex::encode(&x.id)));
                o.insert("not_after".into(), serde_json::json!(x.not_after));
            }
            j
        })
        .collect();
    let epochs: Vec<serde_json::Value> = v
        .epochs
        .iter()
        .map(|e| {
            serde_json::json!({
                "from_height": e.from_height,
                "reason": e.reason,
                "causes": e.causes.iter().map(hex::encode).collect::<Vec<_>>(),
                "validators": e.validators,
            })
        })
        .collect();
    let pending = v.pending.as_ref().map(|p| {
        serde_json::json!({
            "effective": p.effective,
            "kind": p.kind,
            "validator": hex::encode(&p.validator_id),
            "certificate": if p.certificate.is_empty() {
                serde_json::Value::Null
            } else {
                cert_json(&p.certificate)
            },
            "proposal": hex::encode(&p.proposal_id),
            "tx": hex::encode(&p.tx_id),
        })
    });
    print_json(&serde_json::json!({
        "height": v.height,
        "tip": v.tip,
        "validators": validators,
        "epochs": epochs,
        "epoch_count": v.epoch_count,
        "pending": pending,
    }))
}
