//! The built-in `supervision` contract (issue 16): the chain's supervisor freezes and unfreezes a
//! certificate, the people of an organisation, or a WASM contract, each with a reason.
//!
//! - `freeze(kind, target, reason)` and `unfreeze(kind, target, reason)`, kind `cert` (target:
//!   64 hex of the certificate's SM3 ID), `org` (its name) or `contract` (a deployed WASM
//!   contract's name). Only an auditor of the supervising organisation calls them, and only
//!   under the freeze policy `supervisor`; under `governance` the same change is a governance
//!   proposal (`supervision-freeze`, `supervision-unfreeze`) that the supervisor's admin makes
//!   and the organisations vote, and whose execution runs [`apply`] in this namespace.
//!
//! A supervisor's freeze is its own flag (`supervision/frozen/<kind>/<target>`), apart from an
//! admin's suspension (`identity/suspended/…`) and a governance freeze of a contract (the
//! contract record's `frozen`): each is lifted only by the authority that set it, and admission
//! refuses each with its own code. The supervising organisation's people cannot be frozen as an
//! organisation (they alone can unfreeze), though each of their certificates can.

use crate::codes::{FailureCode, RejectCode};
use crate::context::{CallContext, ContractError, Phase};
use crate::contract::{BUILTIN_CALL_COST, Contract, Denial};
use crate::error::ExecError;
use crate::keys::{self, SUPERVISION};
use crate::trace::{
    FreezeKind, FreezePolicy, FreezeRecord, LogHead, MAX_REASON_LEN, SupervisorRecord,
};
use crate::view::StateRead;
use crate::wasm;
use crypto::Digest;
use pki::Role;

const METHODS: &[&str] = &["freeze", "unfreeze", "anchor_log"];

/// The `supervision` contract.
#[derive(Debug)]
pub struct SupervisionContract;

/// Returns the chain's supervisor, if it names one.
pub fn supervisor(r: &(impl StateRead + ?Sized)) -> Result<Option<SupervisorRecord>, ExecError> {
    let key = keys::full(SUPERVISION, &keys::supervision::supervisor());
    r.read(&key)?
        .map(|v| SupervisorRecord::decode(&key, &v))
        .transpose()
}

/// Returns the supervisor's freeze of `target` of `kind`, if it froze it.
pub fn freeze(
    r: &(impl StateRead + ?Sized),
    kind: FreezeKind,
    target: &str,
) -> Result<Option<FreezeRecord>, ExecError> {
    let key = keys::full(
        SUPERVISION,
        &keys::supervision::frozen(kind.as_str(), target),
    );
    r.read(&key)?
        .map(|v| FreezeRecord::decode(&key, &v))
        .transpose()
}

/// Returns the last anchored head of the audit log signed by the certificate `log`.
pub fn log_head(r: &(impl StateRead + ?Sized), log: &Digest) -> Result<Option<LogHead>, ExecError> {
    let key = keys::full(SUPERVISION, &keys::supervision::log_head(log));
    r.read(&key)?
        .map(|v| LogHead::decode_bytes(&v).map_err(|e| ExecError::corrupt(&key, e)))
        .transpose()
}

/// The bytes a CA signs to anchor its log's head (SM2, default user ID): the domain
/// `gmchain-log-anchor-v1`, then the log (SM3 of the CA certificate), the head entry's
/// sequence number (u64 BE) and its hash.
pub fn log_anchor_statement(log: &Digest, seq: u64, head: &Digest) -> Vec<u8> {
    let mut m = b"gmchain-log-anchor-v1".to_vec();
    m.extend_from_slice(log.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(head.as_bytes());
    m
}

/// `anchor_log`'s arguments: [log (32: SM3 of the log's signing certificate), seq (u64 BE),
/// head (32)], and for a CA's log the CA's signature of [`log_anchor_statement`] (DER).
struct Anchor {
    log: Digest,
    seq: u64,
    head: Digest,
    signature: Option<crypto::Signature>,
}

fn parse_anchor(args: &[Vec<u8>]) -> Result<Anchor, ContractError> {
    if !(3..=4).contains(&args.len()) {
        return Err(bad(format!(
            "supervision.anchor_log takes 3 arguments (log, seq, head) and, for a CA's log, the CA's signature; got {}",
            args.len()
        )));
    }
    Ok(Anchor {
        log: crate::contract::digest_arg(&args[0], "args[0] (log)")?,
        seq: crate::contract::u64_be(&args[1], "args[1] (seq)")?,
        head: crate::contract::digest_arg(&args[2], "args[2] (head)")?,
        signature: args
            .get(3)
            .map(|d| {
                crypto::gmt0009::decode_signature(d)
                    .map_err(|e| bad(format!("args[3] (CA signature): {e}")))
            })
            .transpose()?,
    })
}

/// Who may anchor a log: a node its own (the log its node-sign certificate signs: the
/// transaction's signature is the node's), an admin its organisation's registered CA's, with
/// the CA's own signature of the anchor (so no admin can anchor a head the CA did not sign,
/// nor jam the log's record with a head the CA's log will never reach).
fn may_anchor(ctx: &CallContext<'_>, a: &Anchor) -> Result<(), Denial> {
    let caller = ctx.caller();
    let log = &a.log;
    let ok = match caller.role {
        Role::NodeSign => *log == caller.cert_id && a.signature.is_none(),
        Role::Admin => match crate::view::organisation(ctx, &caller.organisation)? {
            Some(o) if o.ca_cert.fingerprint() == *log => {
                let Some(sig) = &a.signature else {
                    return Err(Denial::refused(
                        RejectCode::BadArguments,
                        FailureCode::BadArguments,
                        "supervision.anchor_log: a CA's log is anchored with the CA's signature of the anchor (args[3])",
                    ));
                };
                if crypto_sm::sm2::verify(
                    &o.ca_cert.public_key(),
                    &crypto::UserId::default(),
                    &log_anchor_statement(log, a.seq, &a.head),
                    sig,
                )
                .is_err()
                {
                    return Err(Denial::refused(
                        RejectCode::PermissionDenied,
                        FailureCode::PermissionDenied,
                        format!(
                            "supervision.anchor_log: the CA signature of entry {} ({}) does not verify with {:?}'s registered CA",
                            a.seq, a.head, caller.organisation
                        ),
                    ));
                }
                true
            }
            _ => false,
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::PermissionDenied,
            format!(
                "supervision.anchor_log: log {log} is neither the signer's own node log nor its organisation's CA log"
            ),
        ))
    }
}

/// Records the head of an audit log; a head behind or beside the one anchored before fails.
fn anchor_log(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
    let Anchor { log, seq, head, .. } = parse_anchor(args)?;
    let key = keys::supervision::log_head(&log);
    if let Some(old) = ctx.get(&key)? {
        let old = LogHead::decode_bytes(&old)
            .map_err(|e| ExecError::corrupt(&keys::full(SUPERVISION, &key), e))?;
        if seq < old.seq || (seq == old.seq && head != old.head) {
            return Err(ContractError::failed(
                FailureCode::LogRegressed,
                format!(
                    "log {log}: entry {seq} ({head}) does not extend entry {} ({}) anchored at height {}: the log was truncated or rewritten",
                    old.seq, old.head, old.height.0
                ),
            ));
        }
    }
    let rec = LogHead {
        seq,
        head,
        height: ctx.block().height,
        timestamp_ms: ctx.block().timestamp_ms,
    };
    ctx.put(&key, rec.encode())?;
    ctx.emit_with_topics(
        "log-anchored",
        vec![log.0.to_vec()],
        seq.to_be_bytes().to_vec(),
    )
}

/// Returns why the supervisor refuses a signer: its certificate frozen, or (for a person: a
/// user, admin or auditor) its organisation's people frozen. `None` if neither.
pub fn signer_refusal(
    r: &(impl StateRead + ?Sized),
    cert_id: &Digest,
    organisation: &str,
    role: Role,
) -> Result<Option<(RejectCode, String)>, ExecError> {
    // Only people are frozen: a node's certificate never is (consensus links and custody must
    // not depend on one authority), whatever the state holds.
    let person = matches!(role, Role::User | Role::Admin | Role::Auditor);
    if !person {
        return Ok(None);
    }
    if let Some(f) = freeze(r, FreezeKind::Cert, &cert_id.to_hex())? {
        return Ok(Some((
            RejectCode::SignerFrozen,
            format!(
                "certificate {cert_id} was frozen by the supervisor at height {} ({})",
                f.height.0, f.reason
            ),
        )));
    }
    if let Some(f) = freeze(r, FreezeKind::Org, organisation)? {
        return Ok(Some((
            RejectCode::OrgFrozen,
            format!(
                "the people of {organisation:?} were frozen by the supervisor at height {} ({})",
                f.height.0, f.reason
            ),
        )));
    }
    Ok(None)
}

/// The parsed arguments of `freeze` and `unfreeze`: [kind, target, reason], UTF-8 each, and
/// for a certificate not yet on the chain, the certificate (DER) as a fourth.
#[derive(Debug)]
pub(crate) struct FreezeArgs {
    pub(crate) kind: FreezeKind,
    pub(crate) target: String,
    pub(crate) reason: String,
    pub(crate) cert: Option<pki::Certificate>,
}

fn bad(message: String) -> ContractError {
    ContractError::failed(FailureCode::BadArguments, message)
}

/// Parses [kind, target, reason] (also the governance proposal's arguments after its kind).
pub(crate) fn parse_freeze(method: &str, args: &[Vec<u8>]) -> Result<FreezeArgs, ContractError> {
    if !(3..=4).contains(&args.len()) {
        return Err(bad(format!(
            "supervision.{method} takes 3 arguments (kind, target, reason) and, for a certificate the chain has not recorded, the certificate; got {}",
            args.len()
        )));
    }
    let text = |i: usize, what: &str| {
        std::str::from_utf8(&args[i])
            .map(str::to_string)
            .map_err(|_| bad(format!("args[{i}] ({what}) is not UTF-8")))
    };
    let kind_text = text(0, "kind")?;
    let kind = FreezeKind::parse(&kind_text).ok_or_else(|| {
        bad(format!(
            "args[0] (kind): {kind_text:?} is not cert, org or contract"
        ))
    })?;
    let target = text(1, "target")?;
    match kind {
        FreezeKind::Cert => {
            let hex = target.len() == 64
                && target
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(bad(format!(
                    "args[1] (target): {target:?} is not the 64 lower-case hex characters of a certificate's SM3 ID"
                )));
            }
        }
        FreezeKind::Org => {
            pki::check_organisation(&target).map_err(|e| bad(format!("args[1] (target): {e}")))?;
            if target.contains('/') {
                return Err(bad(format!(
                    "args[1] (target): organisation name {target:?} contains '/'"
                )));
            }
        }
        FreezeKind::Contract => {
            wasm::check_contract_name(&target)
                .map_err(|e| bad(format!("args[1] (target): {e}")))?;
        }
    }
    let reason = text(2, "reason")?;
    if reason.is_empty() || reason.len() > MAX_REASON_LEN || reason.chars().any(|c| c.is_control())
    {
        return Err(ContractError::failed(
            FailureCode::FreezeBadReason,
            format!(
                "args[2] (reason): {} bytes; give 1 to {MAX_REASON_LEN} bytes of printable text",
                reason.len()
            ),
        ));
    }
    let cert = match args.get(3) {
        None => None,
        Some(_) if kind != FreezeKind::Cert => {
            return Err(bad(
                "args[3] (certificate): only a certificate freeze names a certificate".into(),
            ));
        }
        Some(der) => {
            let c = pki::Certificate::from_der(der)
                .map_err(|e| bad(format!("args[3] (certificate): {e}")))?;
            if c.fingerprint().to_hex() != target {
                return Err(bad(format!(
                    "args[3] (certificate): its SM3 ID is {}, not the target {target}",
                    c.fingerprint()
                )));
            }
            Some(c)
        }
    };
    Ok(FreezeArgs {
        kind,
        target,
        reason,
        cert,
    })
}

/// Checks that `organisation` is the chain's supervisor; returns the supervisor record.
pub(crate) fn require_supervisor(
    r: &(impl StateRead + ?Sized),
    organisation: &str,
    what: &str,
) -> Result<SupervisorRecord, Denial> {
    match supervisor(r)? {
        Some(s) if s.organisation == organisation => Ok(s),
        Some(s) => Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::NotSupervisor,
            format!(
                "{what}: {organisation:?} is not the chain's supervisor ({:?} is)",
                s.organisation
            ),
        )),
        None => Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::NotSupervisor,
            format!("{what}: the chain names no supervisor"),
        )),
    }
}

/// Checks that a freeze's target exists and may be frozen: a person's certificate (user,
/// admin, auditor: recorded on the chain, or given as the fourth argument), a registered
/// organisation other than the supervisor, a deployed contract. A node's or a CA's
/// certificate is never frozen by the supervisor: a validator leaves by governance
/// (`validator-remove`), any certificate by its CA's revocation.
pub(crate) fn check_target(
    r: &(impl StateRead + ?Sized),
    supervisor: &SupervisorRecord,
    a: &FreezeArgs,
) -> Result<(), ContractError> {
    match a.kind {
        FreezeKind::Cert => {
            let id = hex::decode(&a.target)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .map(Digest);
            let recorded = match id {
                Some(id) => {
                    let key = keys::full(keys::IDENTITY, &keys::identity::cert(&id));
                    match r.read(&key)? {
                        Some(der) => Some(
                            pki::Certificate::from_der(&der)
                                .map_err(|e| ExecError::corrupt(&key, e))?,
                        ),
                        None => None,
                    }
                }
                None => None,
            };
            let Some(cert) = recorded.or_else(|| a.cert.clone()) else {
                return Err(ContractError::failed(
                    FailureCode::FreezeTargetUnknown,
                    format!(
                        "certificate {} is not on the chain: give the certificate itself (gmchain audit freeze --target FILE)",
                        a.target
                    ),
                ));
            };
            match cert.role() {
                Some(Role::User | Role::Admin | Role::Auditor) => Ok(()),
                role => Err(ContractError::failed(
                    FailureCode::FreezeTargetProtected,
                    format!(
                        "certificate {} is {}, not a person's: the supervisor freezes people; a validator leaves by governance (validator-remove), any certificate by its CA's revocation",
                        a.target,
                        role.map_or("of no gmchain role", Role::as_str)
                    ),
                )),
            }
        }
        FreezeKind::Org => {
            if a.target == supervisor.organisation {
                return Err(ContractError::failed(
                    FailureCode::FreezeTargetProtected,
                    format!(
                        "{:?} is the supervising organisation: its people alone can unfreeze, so it is never frozen as a whole (freeze single certificates)",
                        a.target
                    ),
                ));
            }
            match crate::view::organisation(r, &a.target)? {
                Some(o) if o.removed_at.is_none() => Ok(()),
                _ => Err(ContractError::failed(
                    FailureCode::FreezeTargetUnknown,
                    format!("no registered organisation {:?}", a.target),
                )),
            }
        }
        FreezeKind::Contract => match wasm::contract(r, &a.target)? {
            Some(_) => Ok(()),
            None => Err(ContractError::failed(
                FailureCode::FreezeTargetUnknown,
                format!("no deployed contract {:?}", a.target),
            )),
        },
    }
}

/// Makes the change in the `supervision` namespace: a freeze records `FreezeRecord`, an
/// unfreeze removes it. Declares the trace subjects (a contract's lifecycle; the frozen
/// organisation or certificate).
pub(crate) fn apply(
    ctx: &mut CallContext<'_>,
    freeze: bool,
    a: &FreezeArgs,
) -> Result<(), ContractError> {
    let key = keys::supervision::frozen(a.kind.as_str(), &a.target);
    let present = ctx.get(&key)?.is_some();
    if freeze && present {
        return Err(ContractError::failed(
            FailureCode::AlreadyFrozen,
            format!(
                "the supervisor already froze {} {:?}",
                a.kind.as_str(),
                a.target
            ),
        ));
    }
    if !freeze && !present {
        return Err(ContractError::failed(
            FailureCode::NotFrozen,
            format!(
                "the supervisor has not frozen {} {:?} (a suspension or a governance freeze is lifted by its own authority)",
                a.kind.as_str(),
                a.target
            ),
        ));
    }
    if freeze {
        let record = FreezeRecord {
            reason: a.reason.clone(),
            height: ctx.block().height,
            tx_id: ctx.tx_id().0,
            by: ctx.caller().cert_id,
        };
        ctx.put(&key, record.encode())?;
        // The list of every freeze made, which lists those in force with their records.
        let count_key = keys::supervision::freeze_count();
        let n = crate::records::decode_u64(
            &keys::full(SUPERVISION, &count_key),
            ctx.get(&count_key)?.as_deref(),
        )?;
        ctx.put(
            &keys::supervision::freeze_log(n),
            format!("{}/{}", a.kind.as_str(), a.target).into_bytes(),
        )?;
        ctx.put(&count_key, n.saturating_add(1).to_be_bytes().to_vec())?;
    } else {
        ctx.delete(&key)?;
    }
    let topic = crypto_sm::sm3::sm3(format!("{}/{}", a.kind.as_str(), a.target).as_bytes());
    ctx.emit_with_topics(
        if freeze { "frozen" } else { "unfrozen" },
        vec![topic.0.to_vec()],
        a.reason.clone().into_bytes(),
    )?;
    match a.kind {
        FreezeKind::Contract => ctx.trace(crate::trace::TraceKind::Lifecycle, &a.target),
        FreezeKind::Org => ctx.trace(crate::trace::TraceKind::Org, &a.target),
        FreezeKind::Cert => ctx.trace(crate::trace::TraceKind::Cert, &a.target),
    }
    Ok(())
}

impl Contract for SupervisionContract {
    fn name(&self) -> &'static str {
        SUPERVISION
    }

    fn methods(&self) -> &'static [&'static str] {
        METHODS
    }

    fn check_args(&self, method: &str, args: &[Vec<u8>]) -> Result<(), ContractError> {
        match method {
            "freeze" | "unfreeze" => parse_freeze(method, args).map(|_| ()),
            "anchor_log" => parse_anchor(args).map(|_| ()),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("supervision has no method {method:?}"),
            )),
        }
    }

    /// The signer's organisation is the supervisor and the policy lets its auditors act alone;
    /// a freeze's target exists and may be frozen.
    fn authorize(
        &self,
        ctx: &CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), Denial> {
        if method == "anchor_log" {
            return may_anchor(ctx, &parse_anchor(args)?);
        }
        let a = parse_freeze(method, args)?;
        let what = if ctx.phase() == Phase::Execution {
            "the signer".to_string()
        } else {
            format!("supervision.{method}")
        };
        let s = require_supervisor(ctx, &ctx.caller().organisation, &what)?;
        if s.policy != FreezePolicy::Supervisor {
            return Err(Denial::refused(
                RejectCode::PermissionDenied,
                FailureCode::FreezeNeedsVote,
                format!(
                    "supervision.{method}: the chain's freeze policy is {:?}: propose supervision-{method} through governance",
                    s.policy.as_str()
                ),
            ));
        }
        if method == "freeze" {
            check_target(ctx, &s, &a).map_err(Denial::from)?;
        }
        Ok(())
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), ContractError> {
        ctx.charge(BUILTIN_CALL_COST)?;
        if method == "anchor_log" {
            return anchor_log(ctx, args);
        }
        let a = parse_freeze(method, args)?;
        match method {
            "freeze" => apply(ctx, true, &a),
            "unfreeze" => apply(ctx, false, &a),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("supervision has no method {method:?}"),
            )),
        }
    }
}
