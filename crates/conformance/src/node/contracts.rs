//! The live contract check (issue 14; GZ-5.4, GZ-6.5, GM/T 0111 7.8): a throwaway contract is
//! deployed, called, attacked, upgraded and frozen on the node through governance votes,
//! every step a transaction whose receipt the check reads. The identity under test (a user)
//! must be refused a deployment proposal; each change must execute on the yes votes of two
//! organisations (GetProposal), must not show before its quorum, and must leave its proposal
//! and height in GetContract. A case the chain gives no chance to show (a proposal the
//! proposer's vote alone executes) fails with the reason; none is left out. It writes (proposals, votes and a
//! contract that stays on the chain, frozen), so it runs only when [`super::write_refusal`]
//! allows it.
//!
//! The module is the offline checks' probe contract (`checks::contracts::probe`), compiled
//! here from WebAssembly text; its SM3 is computed here and compared with what the node
//! reports. Nothing the node says about the contract is taken on trust: versions, hashes and
//! the counter are read back with GetContract and QueryContract and checked against what the
//! chain's rules give for the transactions the check sent.

use super::error::NodeCheckError;
use super::submit::{Case, body, ev, hex32, none_committed, random, refused};
use super::{ContractInfo, NodeProbe, Party, ProposalInfo, QueryAnswer, Submission, genesis};
use crate::checks::Evidence;
use crate::checks::contracts::{MIGRATE, probe};
use crypto::{Signer, UserId};
use pki::{Certificate, Role};
use types::{Call, Decode, Encode, Limits, Receipt, Sender, SignedTx, Status};

const SRC: &str = "live node; expected: docs/contracts.md §4 (lifecycle by governance), §5 (calls, fuel, receipts), docs/execution.md refusal codes";

/// The fuel limit of the proposals and votes (an upgrade's executing vote runs `migrate`).
const GOV_FUEL: u64 = 10_000_000;
/// The fuel limit of the contract calls.
const CALL_FUEL: u64 = 5_000_000;
/// The fuel limit of the endless loop (it must use exactly this).
const LOOP_FUEL: u64 = 1_000_000;
/// Voting ends this many blocks after the tip.
const DEADLINE_IN: u64 = 100;

/// A committed transaction, whatever its receipt's status.
#[derive(Debug, Clone)]
struct Run {
    id: [u8; 32],
    height: u64,
    receipt: Receipt,
}

impl Run {
    fn note(&self) -> String {
        format!(
            "tx {} at height {}, fuel used {}",
            hex32(&self.id),
            self.height,
            self.receipt
                .fuel_used
                .map_or_else(|| "none".to_string(), |f| f.to_string())
        )
    }
    fn has_event(&self, name: &str) -> bool {
        self.receipt.events.iter().any(|e| e.name == name)
    }
    fn event_names(&self) -> Vec<String> {
        self.receipt
            .events
            .iter()
            .map(|e| format!("{}.{}", e.contract, e.name))
            .collect()
    }
}

fn answer(what: impl Into<String>) -> NodeCheckError {
    NodeCheckError::ContractAnswer { what: what.into() }
}

/// The stable name of a receipt's code ("success" for a success).
fn code_name(r: &Receipt) -> String {
    match &r.status {
        Status::Success => "success".into(),
        Status::Failed { code, .. } => {
            codes::by_number(*code).map_or_else(|| format!("code {code}"), |c| c.name.to_string())
        }
    }
}

/// A fresh transaction calling `call` with fuel limit `fuel`, from `party` (else the identity).
fn signed(
    p: &dyn NodeProbe,
    party: Option<Party<'_>>,
    call: Call,
    fuel: Option<u64>,
) -> Result<SignedTx, NodeCheckError> {
    let st = p.status()?;
    let mut tx = body(p, &st, call)?;
    tx.fuel_limit = fuel;
    let signer: &dyn Signer = match party {
        Some(x) => {
            tx.sender = Sender::Certificate(x.cert.to_vec());
            x.signer
        }
        None => p.signer(),
    };
    SignedTx::sign(tx, signer, &UserId::default())
        .map_err(|source| NodeCheckError::Signing { source })
}

/// Submits `s` and expects it committed, whatever its receipt says.
fn run(p: &dyn NodeProbe, s: &SignedTx) -> Result<Run, NodeCheckError> {
    match p.submit(&s.to_bytes())? {
        Submission::Committed {
            tx_id,
            height,
            receipt,
            ..
        } => {
            let receipt = Receipt::from_bytes(&receipt, &Limits::default())
                .map_err(|source| NodeCheckError::UnreadableReceipt { height, source })?;
            let id: [u8; 32] = tx_id
                .as_slice()
                .try_into()
                .map_err(|_| NodeCheckError::TxIdLength { len: tx_id.len() })?;
            if id != s.tx_id().0.0 {
                return Err(NodeCheckError::TxIdMismatch {
                    node: id,
                    recomputed: s.tx_id().0.0,
                });
            }
            Ok(Run {
                id,
                height,
                receipt,
            })
        }
        Submission::NotCommitted { tx_id } => Err(NodeCheckError::NotReportedCommitted { tx_id }),
        Submission::Refused { code, message } => Err(NodeCheckError::Refused { code, message }),
    }
}

/// Committed with a Success receipt.
fn succeeded(r: Run) -> Result<Run, NodeCheckError> {
    match &r.receipt.status {
        Status::Success => Ok(r),
        Status::Failed { code, message } => Err(NodeCheckError::CommittedButFailed {
            height: r.height,
            code: *code,
            message: message.clone(),
        }),
    }
}

fn contract_call(name: &str, method: &str) -> Call {
    Call {
        contract: name.into(),
        method: method.into(),
        args: Vec::new(),
    }
}

fn vote_call(id: &[u8; 32]) -> Call {
    Call {
        contract: "governance".into(),
        method: "vote".into(),
        args: vec![id.to_vec(), b"yes".to_vec()],
    }
}

fn proposal(p: &dyn NodeProbe, id: &[u8; 32]) -> Result<ProposalInfo, NodeCheckError> {
    p.proposal(id)?
        .ok_or_else(|| NodeCheckError::ProposalUnknown { id: hex32(id) })
}

fn standing(info: &ProposalInfo) -> String {
    let votes: Vec<String> = info
        .votes
        .iter()
        .map(|(o, y)| format!("{o}: {}", if *y { "yes" } else { "no" }))
        .collect();
    format!(
        "policy {:?}, electorate {:?}, votes [{}], {}{}",
        info.policy,
        info.electorate,
        votes.join(", "),
        info.status,
        if info.status_height > 0 {
            format!(" at height {}", info.status_height)
        } else {
            String::new()
        }
    )
}

/// The `governance.propose` call of `kind` (voting ends [`DEADLINE_IN`] blocks after `tip`,
/// effective 0) with `rest` after the schedule.
fn propose_call(tip: u64, kind: &str, rest: Vec<Vec<u8>>) -> Call {
    let mut args = vec![
        kind.as_bytes().to_vec(),
        tip.saturating_add(DEADLINE_IN).to_be_bytes().to_vec(),
        0u64.to_be_bytes().to_vec(),
    ];
    args.extend(rest);
    Call {
        contract: "governance".into(),
        method: "propose".into(),
        args,
    }
}

/// The admin's proposal of `kind` with `rest` after the schedule: committed with a `proposed`
/// event, and known to GetProposal as that kind.
fn propose(
    p: &dyn NodeProbe,
    admin: Party<'_>,
    kind: &str,
    rest: Vec<Vec<u8>>,
) -> Result<(Run, ProposalInfo), NodeCheckError> {
    let call = propose_call(p.status()?.height, kind, rest);
    let r = succeeded(run(p, &signed(p, Some(admin), call, Some(GOV_FUEL))?)?)?;
    if !r.has_event("proposed") {
        return Err(answer(format!(
            "the proposal's receipt has no `proposed` event: {:?}",
            r.event_names()
        )));
    }
    let info = proposal(p, &r.id)?;
    if info.kind != kind {
        return Err(answer(format!(
            "GetProposal reports kind {:?} for a {kind} proposal",
            info.kind
        )));
    }
    Ok((r, info))
}

/// The voters vote yes in turn until the proposal executes: each vote commits with `voted`,
/// the one that executes it (or the proposal itself, when the proposer's vote suffices) has
/// `executed`. Fails naming the policy, electorate and votes when the votes given cannot pass
/// it.
fn vote_until_executed(
    p: &dyn NodeProbe,
    voters: &[(Party<'_>, String)],
    proposed: &Run,
    mut info: ProposalInfo,
) -> Result<(Vec<Run>, ProposalInfo), NodeCheckError> {
    let mut votes = Vec::new();
    for (v, org) in voters {
        if info.status != "open" {
            break;
        }
        if info.votes.iter().any(|(o, _)| o == org) {
            continue;
        }
        let r = succeeded(run(
            p,
            &signed(p, Some(*v), vote_call(&proposed.id), Some(GOV_FUEL))?,
        )?)?;
        if !r.has_event("voted") {
            return Err(answer(format!(
                "the vote of {org:?} has no `voted` event: {:?}",
                r.event_names()
            )));
        }
        votes.push(r);
        info = proposal(p, &proposed.id)?;
    }
    if info.status != "executed" {
        return Err(NodeCheckError::PolicyNotMet {
            id: hex32(&proposed.id),
            proposal: Box::new(info),
        });
    }
    let executing = votes.last().unwrap_or(proposed);
    if !executing.has_event("executed") || executing.height != info.status_height {
        return Err(answer(format!(
            "the executing transaction (tx {} at height {}) lacks `executed` or is not at the proposal's execution height {}: events {:?}",
            hex32(&executing.id),
            executing.height,
            info.status_height,
            executing.event_names()
        )));
    }
    Ok((votes, info))
}

fn pass_note(proposed: &Run, votes: &[Run], info: &ProposalInfo) -> String {
    let mut note = format!(
        "proposal {} by {:?}: {}; events {:?}",
        hex32(&proposed.id),
        info.proposer,
        proposed.note(),
        proposed.event_names()
    );
    for v in votes {
        note.push_str(&format!(
            "; vote {}: events {:?}",
            v.note(),
            v.event_names()
        ));
    }
    if votes.is_empty() {
        note.push_str("; no vote transaction: the proposer's organisation's vote passes it");
    }
    note.push_str(&format!("; {}", standing(info)));
    note
}

fn counter(output: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(output).ok().map(u64::from_le_bytes)
}

/// QueryContract `name.method` (no arguments): its output, fuel and height.
fn query(
    p: &dyn NodeProbe,
    name: &str,
    method: &str,
) -> Result<(Vec<u8>, u64, u64), NodeCheckError> {
    match p.query_contract(name, method, &[], None)? {
        QueryAnswer::Output {
            output,
            fuel_used,
            height,
        } => Ok((output, fuel_used, height)),
        QueryAnswer::Refused { code, message } => Err(NodeCheckError::QueryRefused {
            call: format!("{name}.{method}"),
            code,
            message,
        }),
    }
}

/// The counter and the failed calls' key `x` by QueryContract: both must be as expected.
fn state_is(p: &dyn NodeProbe, name: &str, n: u64) -> Case {
    let (out, fuel, height) = query(p, name, "q")?;
    if counter(&out) != Some(n) {
        return Err(answer(format!(
            "QueryContract {name}.q at height {height}: output {}, expected the counter {n}",
            hex::encode(&out)
        )));
    }
    let (x, _, _) = query(p, name, "x")?;
    if !x.is_empty() {
        return Err(answer(format!(
            "QueryContract {name}.x: the key a failed call wrote is in the state ({})",
            hex::encode(&x)
        )));
    }
    Ok(format!(
        "QueryContract {name}.q at height {height}: counter {n} (fuel {fuel}); {name}.x: absent (no failed call's write kept)"
    ))
}

/// The admin's organisation and the voters with theirs: every one an admin, each of another
/// organisation.
fn parties<'a>(
    admin: Party<'a>,
    voters: Vec<Party<'a>>,
) -> Result<(String, Vec<(Party<'a>, String)>), NodeCheckError> {
    let admin_cert =
        Certificate::from_der(admin.cert).map_err(|source| NodeCheckError::BadCertificate {
            what: "--admin-cert",
            source,
        })?;
    if admin_cert.role() != Some(Role::Admin) {
        return Err(NodeCheckError::NotAdmin {
            subject: admin_cert.subject(),
        });
    }
    let admin_org = admin_cert.organisation().unwrap_or_default();
    let mut seen = vec![admin_org.clone()];
    let mut out = Vec::new();
    for v in voters {
        let c = Certificate::from_der(v.cert).map_err(|source| NodeCheckError::BadCertificate {
            what: "--voter-cert",
            source,
        })?;
        let bad = |why: String| NodeCheckError::BadVoter {
            subject: c.subject(),
            why,
        };
        if c.role() != Some(Role::Admin) {
            return Err(bad(format!("its role is {:?}, not admin", c.role())));
        }
        let org = c.organisation().unwrap_or_default();
        if seen.contains(&org) {
            return Err(bad(format!(
                "its organisation {org:?} is the admin's or another voter's: one vote per organisation"
            )));
        }
        seen.push(org.clone());
        out.push((v, org));
    }
    Ok((admin_org, out))
}

/// The identity under test (`--key`, a role user) proposes the deployment of `code` as
/// `name`: the node must refuse it TX_PERMISSION_DENIED (deployment only by governance of an
/// authorised identity; GM/T 0111 7.8). Sent only when the identity is a role user, so that an
/// admin identity never opens a proposal by mistake.
fn user_proposal(
    p: &dyn NodeProbe,
    name: &str,
    code: &[u8],
    refused_ids: &mut Vec<[u8; 32]>,
) -> Case {
    let cert = Certificate::from_der(p.certificate()).map_err(|source| {
        NodeCheckError::BadCertificate {
            what: "--cert",
            source,
        }
    })?;
    if cert.role() != Some(Role::User) {
        return Err(NodeCheckError::NotExercised { role: cert.role() });
    }
    let call = propose_call(
        p.status()?.height,
        "contract-deploy",
        vec![name.as_bytes().to_vec(), code.to_vec()],
    );
    let s = signed(p, None, call, Some(GOV_FUEL))?;
    refused_ids.push(s.tx_id().0.0);
    let m = refused(p, &s.to_bytes(), "TX_PERMISSION_DENIED")?;
    Ok(format!(
        "{} ({}): {m}",
        cert.subject(),
        cert.organisation().unwrap_or_default()
    ))
}

/// GZ-6.5's multi-party approval of the executed proposal `id`, read back with GetProposal:
/// yes votes of at least two distinct organisations of its electorate.
fn multi_party(p: &dyn NodeProbe, id: &[u8; 32]) -> Case {
    let info = proposal(p, id)?;
    if info.status != "executed" {
        return Err(answer(format!(
            "GetProposal {}: {}; expected executed",
            hex32(id),
            standing(&info)
        )));
    }
    let yes: std::collections::BTreeSet<&str> = info
        .votes
        .iter()
        .filter(|(_, y)| *y)
        .map(|(o, _)| o.as_str())
        .collect();
    if let Some(o) = yes
        .iter()
        .find(|o| !info.electorate.iter().any(|e| e == *o))
    {
        return Err(answer(format!(
            "GetProposal {}: a yes vote of {o:?}, outside the electorate {:?}",
            hex32(id),
            info.electorate
        )));
    }
    if yes.len() < 2 {
        return Err(NodeCheckError::SingleOrganisation {
            id: hex32(id),
            yes: yes.iter().map(|o| o.to_string()).collect(),
            proposal: Box::new(info),
        });
    }
    Ok(format!(
        "GetProposal {}: executed at height {} on the yes votes of {} organisations {:?}; {}",
        hex32(id),
        info.status_height,
        yes.len(),
        yes,
        standing(&info)
    ))
}

/// `observe` while the proposal is still open (its quorum not reached); a case that fails with
/// the reason when the proposer's vote alone executed it, so nothing could be observed.
fn while_awaited(info: &ProposalInfo, id: &[u8; 32], observe: impl FnOnce() -> Case) -> Case {
    if info.status == "open" {
        return observe();
    }
    Err(NodeCheckError::NotShown {
        why: format!(
            "proposal {} was {} by its own transaction (the proposer's organisation's vote passed it: {}), so nothing could be observed while votes were awaited",
            hex32(id),
            info.status,
            standing(info)
        ),
    })
}

/// GetContract `name`: its record, or an error when the node reports none.
fn record(p: &dyn NodeProbe, name: &str) -> Result<ContractInfo, NodeCheckError> {
    p.contract(name)?
        .ok_or_else(|| answer(format!("GetContract: no contract {name}")))
}

/// What the contract's record must say after a lifecycle change.
struct Expected<'a> {
    /// The proposal that made the change and the height that executed it.
    proposal: &'a [u8; 32],
    height: u64,
    /// The deployment's height, unchanged by later changes.
    deployed: u64,
    version: u32,
    code_hash: &'a crypto::Digest,
    frozen: bool,
}

/// The audit trail of a lifecycle change in GetContract: the record names the proposal that
/// made it, `updated` is the height that executed it, `deployed` is unchanged, and version,
/// code hash and frozen are as the change leaves them.
fn audit_trail(p: &dyn NodeProbe, name: &str, want: &Expected<'_>) -> Case {
    let c = record(p, name)?;
    if c.proposal_id != want.proposal
        || c.updated != want.height
        || c.deployed != want.deployed
        || c.version != want.version
        || c.code_hash != want.code_hash.as_bytes()
        || c.frozen != want.frozen
    {
        return Err(answer(format!(
            "GetContract {name}: proposal {}, updated {}, deployed {}, version {}, code hash {}, frozen {}; expected proposal {}, updated {} (its execution height), deployed {} (unchanged), version {}, code hash {}, frozen {}",
            hex::encode(&c.proposal_id),
            c.updated,
            c.deployed,
            c.version,
            hex::encode(&c.code_hash),
            c.frozen,
            hex32(want.proposal),
            want.height,
            want.deployed,
            want.version,
            want.code_hash,
            want.frozen
        )));
    }
    Ok(format!(
        "{name}: proposal {}, updated at height {} (its execution), deployed at height {} (unchanged), version {}, code hash {}, frozen {}",
        hex32(want.proposal),
        c.updated,
        c.deployed,
        c.version,
        want.code_hash,
        c.frozen
    ))
}

/// `r`'s receipt file (GetReceiptProof) verified offline against the genesis file: the same
/// transaction and height as the submission, and the same receipt.
fn verified_receipt(
    p: &dyn NodeProbe,
    trust: &receipt::TrustContext,
    r: &Run,
) -> Result<(receipt::VerifiedReceipt, Receipt), NodeCheckError> {
    let json = p.receipt_json(&r.id)?;
    let bundle =
        receipt::ReceiptBundle::from_json(json.as_bytes(), &Limits::default()).map_err(|e| {
            NodeCheckError::ReceiptOfTx {
                tx: r.id,
                source: Box::new(e),
            }
        })?;
    let offline = bundle.receipt.clone();
    let v = bundle
        .verify(trust, None)
        .map_err(|e| NodeCheckError::Receipt {
            source: Box::new(e),
        })?;
    if v.tx_id.0.0 != r.id || v.height.0 != r.height {
        return Err(NodeCheckError::ReceiptForOther {
            tx: v.tx_id,
            height: v.height,
        });
    }
    if offline != r.receipt || v.fuel_used != r.receipt.fuel_used {
        return Err(answer(format!(
            "the receipt file's receipt differs from the submission's: fuel {:?} vs {:?}, events {} vs {}, output {} vs {}",
            offline.fuel_used,
            r.receipt.fuel_used,
            offline.events.len(),
            r.receipt.events.len(),
            hex::encode(&offline.output),
            hex::encode(&r.receipt.output)
        )));
    }
    Ok((v, offline))
}

/// The receipt file of the transaction that executed a governance change verifies offline and
/// carries the governance `executed` event.
fn governance_receipt(p: &dyn NodeProbe, trust: &receipt::TrustContext, r: &Run) -> Case {
    let (v, offline) = verified_receipt(p, trust, r)?;
    let executed = offline
        .events
        .iter()
        .any(|e| e.contract == "governance" && e.name == "executed");
    if !executed || offline.status != Status::Success {
        return Err(answer(format!(
            "the receipt file of tx {}: status {:?}, events {:?}; expected a Success with governance.executed",
            hex32(&r.id),
            offline.status,
            r.event_names()
        )));
    }
    Ok(format!(
        "tx {} at height {} in block {}, signer {} ({}), certified by {:?}; call {}, events {:?}",
        v.tx_id,
        v.height,
        v.block_hash,
        v.signer_subject,
        v.organisation,
        v.certified_by,
        v.call,
        r.event_names()
    ))
}

/// The transaction that executed a change: the last vote, or the proposal itself.
fn executing<'r>(proposed: &'r Run, votes: &'r [Run]) -> &'r Run {
    votes.last().unwrap_or(proposed)
}

pub(super) fn contract_lifecycle_live(p: &dyn NodeProbe) -> Vec<Evidence> {
    let Some(admin) = p.admin() else {
        return vec![ev(
            "an admin of a member organisation",
            SRC,
            Err(NodeCheckError::AdminNotGiven),
        )];
    };
    let (admin_org, voters) = match parties(admin, p.voters()) {
        Ok(x) => x,
        Err(e) => return vec![ev("the admin and the voters", SRC, Err(e))],
    };
    let trust = match genesis(p).and_then(|(g, _)| {
        let consortium = g
            .consortium()
            .map_err(|source| NodeCheckError::Consortium { source })?;
        Ok(receipt::TrustContext {
            chain_id: g.chain_id.clone(),
            validators: g.validators.iter().map(|v| v.cert.clone()).collect(),
            consortium,
        })
    }) {
        Ok(t) => t,
        Err(e) => return vec![ev("the genesis file", SRC, Err(e))],
    };
    let modules = probe("").and_then(|a| probe(MIGRATE).map(|b| (a, b)));
    let (code, code2) = match modules {
        Ok(x) => x,
        Err(why) => {
            return vec![ev(
                "the test contract modules",
                SRC,
                Err(NodeCheckError::ProbeModule { why }),
            )];
        }
    };
    let name = match random::<4>(p) {
        Ok(r) => format!("conf-{}", hex::encode(r)),
        Err(e) => return vec![ev("a contract name", SRC, Err(e))],
    };
    let before = match p.status() {
        Ok(s) => s.height,
        Err(e) => return vec![ev("status", SRC, Err(e.into()))],
    };
    let hash = crypto_sm::sm3::sm3(&code);
    let hash2 = crypto_sm::sm3::sm3(&code2);
    let mut out = Vec::new();
    let mut refused_ids: Vec<[u8; 32]> = Vec::new();

    // (a) Deployment: refused to the identity under test (a user), then by governance.
    out.push(ev(
        &format!("a contract-deploy proposal of {name} by the identity under test (--key, a role user) is refused TX_PERMISSION_DENIED"),
        SRC,
        user_proposal(p, &name, &code, &mut refused_ids),
    ));
    let proposed = propose(
        p,
        admin,
        "contract-deploy",
        vec![name.as_bytes().to_vec(), code.clone()],
    );
    let (prop, info) = match proposed {
        Ok(x) => x,
        Err(e) => {
            out.push(ev(
                &format!(
                    "the admin's contract-deploy proposal of {name} commits with a `proposed` event"
                ),
                SRC,
                Err(e),
            ));
            return finish(p, out, &refused_ids, before);
        }
    };
    out.push(ev(
        &format!("the admin's contract-deploy proposal of {name} commits with a `proposed` event"),
        SRC,
        Ok(format!(
            "module {} bytes, SM3 {hash} (computed by the check); proposal {} by {admin_org:?}: {}; {}",
            code.len(),
            hex32(&prop.id),
            prop.note(),
            standing(&info)
        )),
    ));
    out.push(ev(
        "before the policy's votes, GetContract knows no such contract and a call to it is refused TX_UNKNOWN_CALL",
        SRC,
        while_awaited(&info, &prop.id, || {
            if let Some(c) = p.contract(&name)? {
                return Err(answer(format!(
                    "GetContract {name}: version {}, code hash {} before the deployment's quorum",
                    c.version,
                    hex::encode(&c.code_hash)
                )));
            }
            let s = signed(p, None, contract_call(&name, "i"), Some(CALL_FUEL))?;
            refused_ids.push(s.tx_id().0.0);
            let m = refused(p, &s.to_bytes(), "TX_UNKNOWN_CALL")?;
            Ok(format!("GetContract: none; {m}"))
        }),
    ));
    let open = info.status == "open";
    out.push(ev(
        "a second vote by the proposer's organisation is refused TX_BAD_ARGUMENTS",
        SRC,
        signed(p, Some(admin), vote_call(&prop.id), Some(GOV_FUEL)).and_then(|s| {
            refused_ids.push(s.tx_id().0.0);
            let m = refused(p, &s.to_bytes(), "TX_BAD_ARGUMENTS")?;
            // Open: already voted; executed in its own transaction: closed.
            let why = if open { "already voted" } else { "Executed" };
            if m.contains(why) {
                Ok(m)
            } else {
                Err(NodeCheckError::RefusedNotNaming {
                    code: "TX_BAD_ARGUMENTS".into(),
                    detail: why.into(),
                    message: m,
                })
            }
        }),
    ));
    let executed = vote_until_executed(p, &voters, &prop, info);
    let deployed_at = executed.as_ref().ok().map(|(_, i)| i.status_height);
    out.push(ev(
        "the deployment executes on the contract policy's votes: each vote's receipt has `voted`, the executing transaction's `executed`",
        SRC,
        executed.map(|(votes, info)| pass_note(&prop, &votes, &info)),
    ));
    let Some(deployed_at) = deployed_at else {
        return finish(p, out, &refused_ids, before);
    };
    out.push(ev(
        "multi-party approval: the deployment executed on the yes votes of at least two organisations (GetProposal)",
        SRC,
        multi_party(p, &prop.id),
    ));
    let first = record(p, &name).and_then(|c| {
        if c.version != 1 || c.frozen || c.code_hash != hash.as_bytes() || c.name != name {
            return Err(answer(format!(
                "GetContract {name}: name {:?}, version {}, frozen {}, code hash {}; expected version 1, not frozen, code hash {hash} (SM3 of the proposed module)",
                c.name,
                c.version,
                c.frozen,
                hex::encode(&c.code_hash)
            )));
        }
        if c.proposal_id != prop.id
            || c.code_size != code.len() as u64
            || c.deployed != deployed_at
            || c.updated != deployed_at
        {
            return Err(answer(format!(
                "GetContract {name}: proposal {}, code size {}, deployed {}, updated {}; expected the proposal {}, {} bytes, deployed and updated at its execution height {deployed_at}",
                hex::encode(&c.proposal_id),
                c.code_size,
                c.deployed,
                c.updated,
                hex32(&prop.id),
                code.len()
            )));
        }
        Ok(format!(
            "{name}: version 1, not frozen, code hash {hash} = SM3 of the module, {} bytes, deployed at height {} (the proposal's execution), proposal {}",
            c.code_size,
            c.deployed,
            hex32(&c.proposal_id)
        ))
    });
    let ok = first.is_ok();
    out.push(ev(
        "GetContract: version 1, not frozen, code hash = SM3 of the proposed module (computed by the check), the deployment's proposal and height",
        SRC,
        first,
    ));
    if !ok {
        return finish(p, out, &refused_ids, before);
    }

    // (b) A user's call within its fuel limit; its receipt verified offline.
    let call = signed(p, None, contract_call(&name, "i"), Some(CALL_FUEL))
        .and_then(|s| run(p, &s))
        .and_then(succeeded);
    let first = call.as_ref().ok().cloned();
    out.push(ev(
        &format!("the identity's call {name}.i with fuel limit {CALL_FUEL}: Success, fuel used ≤ the limit, the contract's `inc` event and output (counter 1)"),
        SRC,
        call.and_then(|r| {
            let fuel = r.receipt.fuel_used.unwrap_or(0);
            let ns = format!("wasm/{name}");
            let event = r.receipt.events.iter().any(|e| e.contract == ns && e.name == "inc");
            if fuel == 0 || fuel > CALL_FUEL || !event || counter(&r.receipt.output) != Some(1) {
                return Err(answer(format!(
                    "receipt: fuel used {:?} (limit {CALL_FUEL}), events {:?}, output {}",
                    r.receipt.fuel_used,
                    r.event_names(),
                    hex::encode(&r.receipt.output)
                )));
            }
            Ok(format!("{}; events {:?}; output {} (counter 1)", r.note(), r.event_names(), hex::encode(&r.receipt.output)))
        }),
    ));
    out.push(ev(
        "the call's receipt file (GetReceiptProof) verifies offline against the genesis file and shows the same status, fuel, events and output",
        SRC,
        first.ok_or(NodeCheckError::NoCommittedTx).and_then(|r| {
            let (v, offline) = verified_receipt(p, &trust, &r)?;
            Ok(format!(
                "tx {} at height {} in block {}, signer {} ({}), certified by {:?}; call {}, fuel used {:?}, {} event(s), output {}",
                v.tx_id, v.height, v.block_hash, v.signer_subject, v.organisation, v.certified_by, v.call, v.fuel_used, offline.events.len(), hex::encode(&offline.output)
            ))
        }),
    ));

    // (c) Hostile calls: each a Failed receipt with its code, nothing kept.
    for (method, what, want, fuel) in [
        ("l", "an endless loop", "CONTRACT_FUEL_EXHAUSTED", LOOP_FUEL),
        ("f", "a write, then a trap", "CONTRACT_TRAP", CALL_FUEL),
        (
            "g",
            "a write, then memory growth past the page limit (refused, then a trap)",
            "CONTRACT_TRAP",
            CALL_FUEL,
        ),
        (
            "d",
            "a write, then recursion without end",
            "CONTRACT_STACK_EXHAUSTED",
            CALL_FUEL,
        ),
    ] {
        let r = signed(p, None, contract_call(&name, method), Some(fuel)).and_then(|s| run(p, &s));
        out.push(ev(
            &format!("{what} ({name}.{method}, fuel limit {fuel}): a Failed receipt {want}, no event, no output{}", if method == "l" { ", fuel used = the limit" } else { "" }),
            SRC,
            r.and_then(|r| {
                let got = code_name(&r.receipt);
                let used = r.receipt.fuel_used;
                if got != want
                    || !r.receipt.events.is_empty()
                    || !r.receipt.output.is_empty()
                    || used.is_none_or(|u| u > fuel)
                    || (method == "l" && used != Some(fuel))
                {
                    return Err(answer(format!(
                        "receipt {got} ({:?}), fuel used {used:?} of {fuel}, events {:?}, output {}",
                        r.receipt.status,
                        r.event_names(),
                        hex::encode(&r.receipt.output)
                    )));
                }
                let message = match &r.receipt.status {
                    Status::Failed { message, .. } => message.clone(),
                    Status::Success => String::new(),
                };
                Ok(format!("{}; {got}: {message}", r.note()))
            }),
        ));
    }
    out.push(ev(
        "afterwards a read-only QueryContract shows the counter unchanged by the failed calls (1) and none of their writes",
        SRC,
        state_is(p, &name, 1),
    ));
    out.push(ev(
        "the node still commits a good call: Success, counter 2",
        SRC,
        call_counts(p, &name, 2),
    ));
    let mut count = 2;

    // (d) Upgrade by vote to a module exporting `migrate`; the contract read while the upgrade
    // awaits its quorum.
    let upgrade_case = format!(
        "the upgrade of {name} to a module exporting `migrate` (SM3 {hash2}) executes on the policy's votes"
    );
    let mut current = (1, hash);
    match propose(
        p,
        admin,
        "contract-upgrade",
        vec![name.as_bytes().to_vec(), code2.clone()],
    ) {
        Err(e) => out.push(ev(&upgrade_case, SRC, Err(e))),
        Ok((up, info)) => {
            out.push(ev(
                "while the upgrade awaits its quorum the contract is unchanged: GetContract gives version 1 and the first module's SM3, not frozen; migrate has not run; the counter is 2",
                SRC,
                while_awaited(&info, &up.id, || {
                    let c = record(p, &name)?;
                    if c.version != 1 || c.frozen || c.code_hash != hash.as_bytes() {
                        return Err(answer(format!(
                            "GetContract {name} before the upgrade's quorum: version {}, frozen {}, code hash {}; expected version 1, not frozen, {hash}: the node applied the upgrade early",
                            c.version,
                            c.frozen,
                            hex::encode(&c.code_hash)
                        )));
                    }
                    let (m, _, _) = query(p, &name, "M")?;
                    if !m.is_empty() {
                        return Err(answer(format!(
                            "before the upgrade's quorum migrate's key holds {}: the node ran migrate early",
                            hex::encode(&m)
                        )));
                    }
                    let kept = state_is(p, &name, 2)?;
                    Ok(format!(
                        "proposal {} open ({}); {name}: version 1, code hash {hash}, not frozen; migrate's key absent; {kept}",
                        hex32(&up.id),
                        standing(&info)
                    ))
                }),
            ));
            let executed = vote_until_executed(p, &voters, &up, info);
            let done = executed
                .as_ref()
                .ok()
                .map(|(votes, info)| (executing(&up, votes).clone(), info.status_height));
            out.push(ev(
                &upgrade_case,
                SRC,
                executed.map(|(votes, info)| pass_note(&up, &votes, &info)),
            ));
            if let Some((exec, height)) = done {
                current = (2, hash2);
                out.push(ev(
                    "multi-party approval: the upgrade executed on the yes votes of at least two organisations (GetProposal)",
                    SRC,
                    multi_party(p, &up.id),
                ));
                out.push(ev(
                    "after the upgrade: GetContract gives version 2 and the new module's SM3, migrate ran (its key is in the state), the counter is kept (2)",
                    SRC,
                    record(p, &name).and_then(|c| {
                        if c.version != 2 || c.frozen || c.code_hash != hash2.as_bytes() {
                            return Err(answer(format!(
                                "GetContract {name}: version {}, frozen {}, code hash {}; expected version 2, not frozen, {hash2}",
                                c.version,
                                c.frozen,
                                hex::encode(&c.code_hash)
                            )));
                        }
                        let (m, _, _) = query(p, &name, "M")?;
                        if m != b"m" {
                            return Err(answer(format!("migrate's key holds {}, expected 6d (\"m\")", hex::encode(&m))));
                        }
                        let kept = state_is(p, &name, 2)?;
                        Ok(format!(
                            "{name}: version 2, code hash {hash2} (was {hash}), updated at height {}; migrate's key present; {kept}",
                            c.updated
                        ))
                    }),
                ));
                out.push(ev(
                    "audit trail after the upgrade: GetContract names the upgrade's proposal, updated = its execution height, deployed unchanged",
                    SRC,
                    audit_trail(
                        p,
                        &name,
                        &Expected {
                            proposal: &up.id,
                            height,
                            deployed: deployed_at,
                            version: 2,
                            code_hash: &hash2,
                            frozen: false,
                        },
                    ),
                ));
                out.push(ev(
                    "the upgrade's executing transaction's receipt file (GetReceiptProof) verifies offline against the genesis file with its governance events",
                    SRC,
                    governance_receipt(p, &trust, &exec),
                ));
            }
        }
    }

    // (e) Freeze by vote: still callable while it awaits its quorum; then calls refused,
    // queries still answer. The contract stays frozen.
    let freeze_case = format!("the freeze of {name} executes on the policy's votes");
    let (version, code_hash) = current;
    match propose(p, admin, "contract-freeze", vec![name.as_bytes().to_vec()]) {
        Err(e) => out.push(ev(&freeze_case, SRC, Err(e))),
        Ok((fr, info)) => {
            out.push(ev(
                &format!("while the freeze awaits its quorum the contract is not frozen: GetContract gives version {version}, not frozen, and a call still commits (counter {})", count + 1),
                SRC,
                while_awaited(&info, &fr.id, || {
                    let c = record(p, &name)?;
                    if c.frozen || c.version != version || c.code_hash != code_hash.as_bytes() {
                        return Err(answer(format!(
                            "GetContract {name} before the freeze's quorum: version {}, frozen {}, code hash {}; expected version {version}, not frozen, {code_hash}: the node applied the freeze early",
                            c.version,
                            c.frozen,
                            hex::encode(&c.code_hash)
                        )));
                    }
                    let called = call_counts(p, &name, count + 1)?;
                    count += 1;
                    Ok(format!(
                        "proposal {} open ({}); {name}: version {version}, not frozen; {called}",
                        hex32(&fr.id),
                        standing(&info)
                    ))
                }),
            ));
            let executed = vote_until_executed(p, &voters, &fr, info);
            let done = executed
                .as_ref()
                .ok()
                .map(|(votes, info)| (executing(&fr, votes).clone(), info.status_height));
            out.push(ev(
                &freeze_case,
                SRC,
                executed.map(|(votes, info)| pass_note(&fr, &votes, &info)),
            ));
            if let Some((exec, height)) = done {
                out.push(ev(
                    "multi-party approval: the freeze executed on the yes votes of at least two organisations (GetProposal)",
                    SRC,
                    multi_party(p, &fr.id),
                ));
                out.push(ev(
                    "GetContract reports it frozen; a call is refused TX_CONTRACT_FROZEN",
                    SRC,
                    record(p, &name).and_then(|c| {
                        if !c.frozen {
                            return Err(answer(format!(
                                "GetContract {name}: not frozen after the freeze executed"
                            )));
                        }
                        let s = signed(p, None, contract_call(&name, "i"), Some(CALL_FUEL))?;
                        refused_ids.push(s.tx_id().0.0);
                        let m = refused(p, &s.to_bytes(), "TX_CONTRACT_FROZEN")?;
                        Ok(format!("frozen at height {}: {m}", c.updated))
                    }),
                ));
                out.push(ev(
                    &format!("audit trail after the freeze: GetContract names the freeze's proposal, updated = its execution height, deployed unchanged, version {version} and its code hash kept"),
                    SRC,
                    audit_trail(
                        p,
                        &name,
                        &Expected {
                            proposal: &fr.id,
                            height,
                            deployed: deployed_at,
                            version,
                            code_hash: &code_hash,
                            frozen: true,
                        },
                    ),
                ));
                out.push(ev(
                    "the freeze's executing transaction's receipt file (GetReceiptProof) verifies offline against the genesis file with its governance events",
                    SRC,
                    governance_receipt(p, &trust, &exec),
                ));
                out.push(ev(
                    &format!("a frozen contract stays queryable: QueryContract answers with the kept counter ({count}); clean-up: the contract stays frozen on the test chain (a government chain deletes nothing)"),
                    SRC,
                    state_is(p, &name, count),
                ));
            }
        }
    }
    finish(p, out, &refused_ids, before)
}

/// The identity's call `name.i` commits with Success and the counter `n` as its output.
fn call_counts(p: &dyn NodeProbe, name: &str, n: u64) -> Case {
    let r = succeeded(run(
        p,
        &signed(p, None, contract_call(name, "i"), Some(CALL_FUEL))?,
    )?)?;
    if counter(&r.receipt.output) != Some(n) {
        return Err(answer(format!(
            "output {}, expected the counter {n}",
            hex::encode(&r.receipt.output)
        )));
    }
    Ok(format!(
        "{}; output {} (counter {n})",
        r.note(),
        hex::encode(&r.receipt.output)
    ))
}

fn finish(
    p: &dyn NodeProbe,
    mut out: Vec<Evidence>,
    refused_ids: &[[u8; 32]],
    before: u64,
) -> Vec<Evidence> {
    if !refused_ids.is_empty() {
        out.push(ev(
            "nothing refused was committed",
            SRC,
            none_committed(p, refused_ids, before),
        ));
    }
    out
}
