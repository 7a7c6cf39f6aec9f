//! The `identity` system contract: organisations and their CA certificates, CRLs, and
//! suspensions. The founding organisations come from genesis and are the consortium's trust
//! anchors; later ones are registered by a transaction of the new organisation's admin, their
//! CA an intermediate validated up to a founding CA that sponsors the name (see admission for
//! how its chain is checked). The sponsor's admins may deregister such an organisation or
//! replace its CA; a founding organisation joins and leaves only through governance
//! (`org-register`, `org-remove`: the checks and writes are here, run by the governance
//! contract in a call nested in this namespace).
//! Suspension can only take a certificate's rights away: no method grants a role.
//!
//! Who may make each call (docs/execution.md §5) is written once, in the authorisation hook
//! [`IdentityContract::authorize`]'s rules below, which admission, recheck and execution run;
//! each rule reports with admission's codes and messages before execution and with the
//! contract's failure codes in it.

use crate::codes::{FailureCode, RejectCode};
use crate::context::{CaValidation, CallContext, ContractError, Phase};
use crate::contract::{BUILTIN_CALL_COST, Contract, Denial};
use crate::error::ExecError;
use crate::keys::{self, IDENTITY, identity as k};
use crate::records::{self, OrgRecord, SuspensionRecord};
use crate::trace::TraceKind;
use crate::view::StateRead;
use crypto::{Digest, UserId};
use pki::{CertRef, Certificate, Crl, Role};

/// The built-in `identity` contract.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityContract;

const METHODS: &[&str] = &[
    "register_org",
    "update_crl",
    "suspend",
    "resume",
    "deregister_org",
    "replace_ca",
];

fn bad(message: impl Into<String>) -> ContractError {
    ContractError::failed(FailureCode::BadArguments, message)
}

fn arg_count(method: &str, args: &[Vec<u8>], n: usize) -> Result<(), ContractError> {
    if args.len() != n {
        return Err(bad(format!(
            "identity.{method} takes {n} argument(s), got {}",
            args.len()
        )));
    }
    Ok(())
}

/// Checks an organisation name: a valid O (pki's rules) without '/', which separates the
/// organisation from the common name in an attestation owner.
pub(crate) fn check_org_name(name: &str) -> Result<(), String> {
    pki::check_organisation(name).map_err(|e| e.to_string())?;
    if name.contains('/') {
        return Err(format!("organisation name {name:?} contains '/'"));
    }
    Ok(())
}

/// Parses and checks the CA certificate of `register_org` and `replace_ca` (args[0] of two):
/// a CA with a usable organisation name. Returns it and the name.
fn parse_ca(args: &[Vec<u8>]) -> Result<(Certificate, String), ContractError> {
    arg_count("register_org", args, 2)?;
    let ca = Certificate::from_der(&args[0])
        .map_err(|e| bad(format!("args[0] (CA certificate): {e}")))?;
    if !ca.is_ca() {
        return Err(bad("args[0] (CA certificate): not a CA certificate"));
    }
    let name = ca
        .organisation()
        .ok_or_else(|| bad("args[0] (CA certificate): its subject has no organisation (O)"))?;
    check_org_name(&name).map_err(|e| bad(format!("args[0] (CA certificate): {e}")))?;
    Ok((ca, name))
}

/// Parses and checks the arguments of `register_org`: [CA certificate DER, CRL DER]. The
/// certificate must be a CA with a usable organisation name; the CRL must be issued and signed
/// by it.
pub(crate) fn parse_register_org(args: &[Vec<u8>]) -> Result<(Certificate, Crl), ContractError> {
    let (ca, _) = parse_ca(args)?;
    let crl = Crl::from_der(&args[1]).map_err(|e| bad(format!("args[1] (CRL): {e}")))?;
    if !crl_from(&crl, &ca) {
        return Err(bad(format!(
            "args[1] (CRL): not issued and signed by the CA certificate {:?}",
            ca.subject()
        )));
    }
    Ok((ca, crl))
}

/// Returns the new CA and CRL of an `identity.register_org` transaction whose arguments
/// parse, as admission took them (the node puts them into the transaction's receipt).
pub fn register_org_ca(tx: &types::SignedTx) -> Option<(Certificate, Crl)> {
    let call = &tx.tx.call;
    if call.contract != IDENTITY {
        return None;
    }
    IdentityContract
        .introduced_ca(&call.method, &call.args)
        .ok()
        .flatten()
}

/// Parses the argument of `deregister_org`: [organisation name, UTF-8].
pub(crate) fn parse_org_name(args: &[Vec<u8>]) -> Result<String, ContractError> {
    arg_count("deregister_org", args, 1)?;
    let name = String::from_utf8(args[0].clone())
        .map_err(|_| bad("args[0] (organisation name): not UTF-8"))?;
    check_org_name(&name).map_err(|e| bad(format!("args[0] (organisation name): {e}")))?;
    Ok(name)
}

/// Parses the argument of `update_crl`: [CRL DER].
pub(crate) fn parse_update_crl(args: &[Vec<u8>]) -> Result<Crl, ContractError> {
    arg_count("update_crl", args, 1)?;
    Crl::from_der(&args[0]).map_err(|e| bad(format!("args[0] (CRL): {e}")))
}

/// Parses the argument of `suspend` and `resume`: [certificate SM3 ID, 32 bytes].
pub(crate) fn parse_cert_id(method: &str, args: &[Vec<u8>]) -> Result<Digest, ContractError> {
    arg_count(method, args, 1)?;
    <[u8; 32]>::try_from(args[0].as_slice())
        .map(Digest)
        .map_err(|_| {
            bad(format!(
                "args[0] (certificate ID): {} bytes, expected 32",
                args[0].len()
            ))
        })
}

/// Returns whether `crl` is issued and signed by `ca`.
pub(crate) fn crl_from(crl: &Crl, ca: &Certificate) -> bool {
    crl.issuer() == ca.subject() && crl.verify_signed_by(&ca.public_key()).is_ok()
}

/// Reads the organisation `name` (a record that does not decode names its full state key, as
/// `StateView` does).
fn read_org(ctx: &CallContext<'_>, name: &str) -> Result<Option<OrgRecord>, ContractError> {
    let key = k::org(name);
    Ok(ctx
        .get(&key)?
        .map(|v| OrgRecord::decode(&keys::full(IDENTITY, &key), &v))
        .transpose()?)
}

/// Returns the active organisation whose CA issued `cert` (by issuer name and, when `cert`
/// names one, authority key identifier), enumerating the registered organisations. Admission
/// verified the signature; this finds whose CA it was.
fn issuing_org(
    ctx: &CallContext<'_>,
    cert: &Certificate,
) -> Result<Option<OrgRecord>, ContractError> {
    let count_key = k::org_count();
    let count = records::decode_u64(&count_key, ctx.get(&count_key)?.as_deref())?;
    for seq in 0..count {
        let key = k::org_index(seq);
        let Some(name) = ctx.get(&key)? else {
            return Err(ExecError::corrupt(&key, "organisation index entry missing").into());
        };
        let name = String::from_utf8(name)
            .map_err(|_| ExecError::corrupt(&key, "organisation name is not UTF-8"))?;
        let Some(org) = read_org(ctx, &name)? else {
            return Err(ExecError::corrupt(&key, "indexed organisation missing").into());
        };
        let issuer = &org.ca_cert;
        let key_matches = match cert.authority_key_id() {
            Some(aki) => issuer.subject_key_id() == Some(aki),
            None => true,
        };
        if org.is_active() && issuer.subject() == cert.issuer() && key_matches {
            return Ok(Some(org));
        }
    }
    Ok(None)
}

/// Reads the recorded certificate `id` (a value that does not parse names its full state key,
/// as `StateView` does).
fn read_cert(ctx: &CallContext<'_>, id: &Digest) -> Result<Option<Certificate>, ContractError> {
    let key = k::cert(id);
    match ctx.get(&key)? {
        None => Ok(None),
        Some(v) => {
            Ok(Some(Certificate::from_der(&v).map_err(|e| {
                ExecError::corrupt(&keys::full(IDENTITY, &key), e)
            })?))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Who may make each call: the rules of the authorisation hook. Before execution a refusal is
// admission's (TX_PERMISSION_DENIED naming the call, or TX_BAD_ARGUMENTS); in execution it is
// the contract's failure code.

fn in_execution(ctx: &CallContext<'_>) -> bool {
    ctx.phase() == Phase::Execution
}

/// Prefixes `why` with the call before execution, where `TX_PERMISSION_DENIED` names it.
fn naming_the_call(ctx: &CallContext<'_>, method: &str, why: String) -> String {
    if in_execution(ctx) {
        why
    } else {
        format!("identity.{method}: {why}")
    }
}

fn cert_ref(c: &Certificate) -> CertRef {
    CertRef {
        subject: c.subject(),
        serial: c.serial(),
    }
}

/// `deregister_org` and `replace_ca`: the organisation holds no seat in the validator set
/// (or a pending one): deregistering it or replacing its CA would remove its validators
/// without the consortium's vote. Its validators leave by governance first.
fn holds_no_seat(ctx: &CallContext<'_>, method: &str, name: &str) -> Result<(), Denial> {
    if holds_seat(ctx, name)? {
        return Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::OrgHasValidators,
            naming_the_call(
                ctx,
                method,
                format!(
                    "organisation {name:?} holds a validator seat: remove or rotate its validators by a governance proposal first"
                ),
            ),
        ));
    }
    Ok(())
}

/// Returns whether the organisation `name` holds a seat in the validator set, or in the
/// pending change.
fn holds_seat(r: &(impl StateRead + ?Sized), name: &str) -> Result<bool, ExecError> {
    let mut seats: Vec<Certificate> = crate::validators::current(r)?
        .into_iter()
        .map(|v| v.cert)
        .collect();
    if let Some(p) = crate::validators::pending(r)? {
        match p.change {
            crate::records::ValidatorChange::Add(v) => seats.push(v.cert),
            crate::records::ValidatorChange::Rotate { new, .. } => seats.push(new),
            crate::records::ValidatorChange::Remove(_) => {}
        }
    }
    Ok(seats
        .iter()
        .any(|c| c.organisation().as_deref() == Some(name)))
}

/// `register_org`, in execution: the admin's organisation is the one registered. (Before
/// execution the signer's path runs through the new CA, which names it: admission validates
/// the signer through [`Contract::introduced_ca`].)
fn registers_its_own(ctx: &CallContext<'_>, name: &str) -> Result<(), Denial> {
    let caller = &ctx.caller().organisation;
    if caller != name {
        return Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::PermissionDenied,
            format!("an admin of {caller:?} may not register organisation {name:?}"),
        ));
    }
    Ok(())
}

/// `deregister_org` and `replace_ca`: the organisation `name` is registered, not a founding
/// organisation (those change only through governance), and sponsored by the admin's
/// organisation. Returns its record.
fn sponsored_org(ctx: &CallContext<'_>, method: &str, name: &str) -> Result<OrgRecord, Denial> {
    let org = read_org(ctx, name)?.ok_or_else(|| {
        Denial::refused(
            RejectCode::BadArguments,
            FailureCode::OrgUnknown,
            format!("organisation {name:?} is not registered"),
        )
    })?;
    let caller = &ctx.caller().organisation;
    match &org.sponsor {
        None => Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::OrgFounding,
            naming_the_call(
                ctx,
                method,
                format!(
                    "{name:?} is a founding organisation: it changes only through the consortium's governance"
                ),
            ),
        )),
        Some(sponsor) if sponsor != caller => Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::PermissionDenied,
            if in_execution(ctx) {
                format!(
                    "{name:?} is sponsored by {sponsor:?}; an admin of {caller:?} may not change it"
                )
            } else {
                format!(
                    "identity.{method}: {name:?} is sponsored by {sponsor:?}, not by the admin's organisation {caller:?}"
                )
            },
        )),
        Some(_) => {
            // The consortium's decision is final: the sponsor alone cannot undo it.
            if let Some(at) = ctx.get(&k::removed_by_governance(name))? {
                let at = records::decode_u64(&k::removed_by_governance(name), Some(&at))?;
                return Err(Denial::refused(
                    RejectCode::PermissionDenied,
                    FailureCode::OrgRemoved,
                    naming_the_call(
                        ctx,
                        method,
                        format!(
                            "{name:?} was removed by a governance proposal at height {at}: its sponsor cannot change or re-admit it"
                        ),
                    ),
                ));
            }
            Ok(org)
        }
    }
}

/// `replace_ca`, before execution: the new CA validates in the consortium as an agency CA
/// (sponsored by its anchor, not revoked by its issuer's recorded CRL), and its issuer is the
/// active registered CA of the admin's organisation, the sponsor. (Execution finds the
/// issuing organisation by name and key identifier instead: [`issuing_org`].)
fn issued_by_the_sponsor(
    ctx: &CallContext<'_>,
    cas: &dyn CaValidation,
    ca: &Certificate,
) -> Result<(), Denial> {
    let path = cas.validate(ca, Role::AgencyCa)?.map_err(|e| {
        Denial::refused(
            RejectCode::BadArguments,
            FailureCode::BadArguments,
            format!("args[0] (CA certificate): {e} ({})", e.code()),
        )
    })?;
    let caller = &ctx.caller().organisation;
    let sponsor = read_org(ctx, caller)?;
    let issued_by_sponsor = match (path.get(1), sponsor) {
        (Some(issuer), Some(s)) => s.is_active() && issuer.fingerprint() == s.ca_cert.fingerprint(),
        _ => false,
    };
    if !issued_by_sponsor {
        return Err(Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::PermissionDenied,
            format!(
                "identity.replace_ca: the new CA {} is not issued by the registered CA of the admin's organisation {caller:?}",
                cert_ref(ca)
            ),
        ));
    }
    Ok(())
}

/// `update_crl`: the admin's organisation is registered. Returns its record.
fn own_org(ctx: &CallContext<'_>, method: &str) -> Result<OrgRecord, Denial> {
    let name = &ctx.caller().organisation;
    read_org(ctx, name)?.ok_or_else(|| {
        Denial::refused(
            RejectCode::PermissionDenied,
            FailureCode::OrgUnknown,
            naming_the_call(
                ctx,
                method,
                format!("organisation {name:?} is not registered"),
            ),
        )
    })
}

/// `update_crl`: the CRL is issued and signed by the registered CA of the admin's
/// organisation. Admission checks the issuer's name, and the signature on first admission
/// only (it cannot change); execution checks both at once.
fn crl_of_own_ca(ctx: &CallContext<'_>, crl: &Crl) -> Result<(), Denial> {
    let org = own_org(ctx, "update_crl")?;
    let name = &ctx.caller().organisation;
    match ctx.phase() {
        Phase::Execution => {
            if !crl_from(crl, &org.ca_cert) {
                return Err(Denial::refused(
                    RejectCode::PermissionDenied,
                    FailureCode::CrlIssuerMismatch,
                    format!(
                        "the CRL of {:?} is not issued and signed by the registered CA of {name:?}",
                        crl.issuer()
                    ),
                ));
            }
        }
        phase => {
            if crl.issuer() != org.ca_cert.subject() {
                return Err(Denial::refused(
                    RejectCode::PermissionDenied,
                    FailureCode::CrlIssuerMismatch,
                    format!(
                        "identity.update_crl: the CRL is issued by {:?}, not by the registered CA of {name:?}",
                        crl.issuer()
                    ),
                ));
            }
            if phase == Phase::Admission && crl.verify_signed_by(&org.ca_cert.public_key()).is_err()
            {
                return Err(Denial::refused(
                    RejectCode::BadArguments,
                    FailureCode::CrlIssuerMismatch,
                    format!(
                        "args[0] (CRL): its signature does not verify with the registered CA of {name:?}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `suspend` and `resume`: the certificate belongs to the admin's organisation. Before
/// execution a certificate not recorded yet passes (an earlier transaction of the block may
/// record it); execution requires it.
fn own_cert(ctx: &CallContext<'_>, method: &str, id: &Digest) -> Result<(), Denial> {
    let caller = &ctx.caller().organisation;
    match read_cert(ctx, id)? {
        None if in_execution(ctx) => Err(Denial::refused(
            RejectCode::BadArguments,
            FailureCode::CertUnknown,
            format!("no certificate is recorded under {id}"),
        )),
        None => Ok(()),
        Some(cert) => {
            let owner = cert.organisation();
            if owner.as_deref() == Some(caller.as_str()) {
                return Ok(());
            }
            let owner = owner.unwrap_or_default();
            Err(Denial::refused(
                RejectCode::PermissionDenied,
                FailureCode::PermissionDenied,
                if in_execution(ctx) {
                    format!(
                        "certificate {id} belongs to {owner:?}, not to the admin's organisation {caller:?}"
                    )
                } else {
                    format!(
                        "identity.{method}: certificate {id} belongs to {owner:?}, not to {caller:?}"
                    )
                },
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Founding organisations registered, and organisations removed, by governance
// (docs/execution.md §4.3): the checks the governance contract runs when a proposal is made
// and again when it executes, and the writes, which it makes through a call nested in this
// namespace. No transaction calls them directly.

/// Parses a founding organisation's CA certificate and CRL (governance `org-register`; `at`
/// is the argument index of the CA, the CRL's is the next): a self-signed root CA (gmchain
/// role root-ca) whose signature verifies with its own key under the default user ID, with a
/// usable organisation name (O), and a CRL issued and signed by it. Returns the CA, the CRL
/// and the name.
pub(crate) fn parse_founding_ca(
    ca: &[u8],
    crl: &[u8],
    at: usize,
) -> Result<(Certificate, Crl, String), ContractError> {
    let what = |m: String| bad(format!("args[{at}] (CA certificate): {m}"));
    let ca = Certificate::from_der(ca).map_err(|e| what(e.to_string()))?;
    if ca.role() != Some(Role::RootCa) {
        return Err(what(format!(
            "role {}; a founding organisation's CA is a self-signed root CA (OU root-ca, CA, keyCertSign)",
            ca.role().map_or("none".to_string(), |r| r.to_string())
        )));
    }
    ca.verify_signed_by(&ca.public_key(), &UserId::default())
        .map_err(|e| {
            what(format!(
                "its self-signature does not verify with its key and the default user ID: {e}"
            ))
        })?;
    let name = ca
        .organisation()
        .ok_or_else(|| what("its subject has no organisation (O)".into()))?;
    check_org_name(&name).map_err(what)?;
    let crl = Crl::from_der(crl).map_err(|e| bad(format!("args[{}] (CRL): {e}", at + 1)))?;
    if !crl_from(&crl, &ca) {
        return Err(bad(format!(
            "args[{}] (CRL): not issued and signed by the CA certificate {:?}",
            at + 1,
            ca.subject()
        )));
    }
    Ok((ca, crl, name))
}

fn governance_refusal(code: FailureCode, message: String) -> Denial {
    let reject = match code {
        FailureCode::PermissionDenied => RejectCode::PermissionDenied,
        _ => RejectCode::BadArguments,
    };
    Denial::refused(reject, code, message)
}

/// Checks, on the state `r` at the block time `now`, that `ca` may become the trust anchor of
/// the new founding organisation `name`: the name was never registered (a removed
/// organisation's name stays taken, so its records and the receipts of its members keep
/// their meaning), the CA is valid at `now`, and no registered CA, current or former, has its
/// subject or its key (a path to one anchor must not be mistaken for a path to another).
pub(crate) fn check_new_founding(
    r: &(impl StateRead + ?Sized),
    ca: &Certificate,
    crl: &Crl,
    name: &str,
    now: pki::UnixTime,
) -> Result<(), Denial> {
    if let Some(old) = crate::view::organisation(r, name)? {
        return Err(match old.removed_at {
            None => governance_refusal(
                FailureCode::OrgExists,
                format!("organisation {name:?} is already registered"),
            ),
            Some(at) => governance_refusal(
                FailureCode::OrgRemoved,
                format!(
                    "organisation {name:?} was removed at height {at}; a removed name is not registered again (its records keep their meaning): choose another name"
                ),
            ),
        });
    }
    let validity = ca.validity();
    if now < validity.not_before || now > validity.not_after {
        return Err(governance_refusal(
            FailureCode::OrgCaInvalid,
            format!(
                "the CA {} is not valid at the block's time {now} (valid {} to {})",
                cert_ref(ca),
                validity.not_before,
                validity.not_after
            ),
        ));
    }
    // A CRL not current at the block's time would leave every member of the new organisation,
    // its admins included, refused (revocation fails closed) with no way to record another.
    if now < crl.this_update() || crl.next_update().is_some_and(|next| now >= next) {
        return Err(governance_refusal(
            FailureCode::OrgCaInvalid,
            format!(
                "the CRL of {} is not current at the block's time {now} (thisUpdate {}, nextUpdate {}): its members could not be judged; issue a current CRL",
                cert_ref(ca),
                crl.this_update(),
                crl.next_update()
                    .map_or_else(|| "none".to_string(), |t| t.to_string())
            ),
        ));
    }
    let orgs = crate::view::organisations(r)?;
    let founding = orgs
        .iter()
        .filter(|o| o.is_founding() && o.is_active())
        .count();
    if founding >= records::MAX_ANCHORS {
        return Err(governance_refusal(
            FailureCode::OrgCaInvalid,
            format!(
                "the chain has {founding} active founding organisations, the most its list of anchors holds ({})",
                records::MAX_ANCHORS
            ),
        ));
    }
    for org in orgs {
        for old in std::iter::once(&org.ca_cert).chain(&org.former_cas) {
            if old.subject() == ca.subject() || old.public_key() == ca.public_key() {
                return Err(governance_refusal(
                    FailureCode::OrgCaInvalid,
                    format!(
                        "the CA {} has the subject or key of {:?}'s CA {}: a new anchor needs its own",
                        cert_ref(ca),
                        org.name,
                        cert_ref(old)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that governance may remove the organisation `name` on the state `r`: it is
/// registered and active, sponsors no active organisation, is not the last active founding
/// organisation, and holds no validator seat (current or pending); the first that fails is
/// the refusal. Returns its record.
pub(crate) fn check_removal(
    r: &(impl StateRead + ?Sized),
    name: &str,
) -> Result<OrgRecord, Denial> {
    let orgs = crate::view::organisations(r)?;
    let Some(org) = orgs.iter().find(|o| o.name == name).cloned() else {
        return Err(governance_refusal(
            FailureCode::OrgUnknown,
            format!("organisation {name:?} is not registered"),
        ));
    };
    if let Some(at) = org.removed_at {
        return Err(governance_refusal(
            FailureCode::OrgRemoved,
            format!("organisation {name:?} was already removed at height {at}"),
        ));
    }
    let sponsored: Vec<&str> = orgs
        .iter()
        .filter(|o| o.is_active() && o.sponsor.as_deref() == Some(name))
        .map(|o| o.name.as_str())
        .collect();
    if !sponsored.is_empty() {
        return Err(governance_refusal(
            FailureCode::OrgSponsors,
            format!(
                "organisation {name:?} sponsors the active organisations {sponsored:?}: they leave first"
            ),
        ));
    }
    if org.is_founding()
        && !orgs
            .iter()
            .any(|o| o.is_founding() && o.is_active() && o.name != name)
    {
        return Err(governance_refusal(
            FailureCode::LastFounding,
            format!(
                "organisation {name:?} is the last active founding organisation, the chain's last trust anchor"
            ),
        ));
    }
    if holds_seat(r, name)? {
        return Err(governance_refusal(
            FailureCode::OrgHasValidators,
            format!(
                "organisation {name:?} holds a validator seat (or a pending one): remove or rotate its validators by a governance proposal first"
            ),
        ));
    }
    Ok(org)
}

/// Writes the names of the active founding organisations (`identity/anchors`), after a
/// governance change of them.
fn write_anchors(ctx: &mut CallContext<'_>) -> Result<(), ContractError> {
    let names: Vec<String> = crate::view::organisations(&*ctx)?
        .into_iter()
        .filter(|o| o.is_founding() && o.is_active())
        .map(|o| o.name)
        .collect();
    ctx.put(&k::anchors(), records::encode_anchors(&names))
}

/// Registers the founding organisation of `ca` with its CRL (governance `org-register`,
/// executed; `ctx` is this namespace's, nested in governance's call): its record without a
/// sponsor, its index entry, its CRL, and the new list of anchors. Its members are admitted
/// from the next block.
pub(crate) fn register_founding(
    ctx: &mut CallContext<'_>,
    ca: &Certificate,
    crl: &Crl,
) -> Result<(), ContractError> {
    let name = ca.organisation().unwrap_or_default();
    let count_key = k::org_count();
    let count = records::decode_u64(&count_key, ctx.get(&count_key)?.as_deref())?;
    let record = OrgRecord {
        name: name.clone(),
        ca_cert: ca.clone(),
        registered_at: ctx.block().height,
        sponsor: None,
        removed_at: None,
        former_cas: Vec::new(),
    };
    ctx.put(&k::org(&name), record.encode())?;
    ctx.trace(TraceKind::Org, &name);
    ctx.put(&k::org_index(count), name.into_bytes())?;
    ctx.put(&count_key, count.saturating_add(1).to_be_bytes().to_vec())?;
    ctx.put(&k::crl(&ca.fingerprint()), crl.der().to_vec())?;
    write_anchors(ctx)
}

/// Removes the organisation `record` (governance `org-remove`, executed; `ctx` is this
/// namespace's): marked removed at this block's height, as `deregister_org` does, so its
/// members are refused from the next block; a founding organisation also leaves the anchors.
pub(crate) fn remove_by_governance(
    ctx: &mut CallContext<'_>,
    mut record: OrgRecord,
) -> Result<(), ContractError> {
    let height = ctx.block().height;
    record.removed_at = Some(height);
    let founding = record.is_founding();
    ctx.put(&k::org(&record.name), record.encode())?;
    ctx.trace(TraceKind::Org, &record.name);
    ctx.put(
        &k::removed_by_governance(&record.name),
        height.0.to_be_bytes().to_vec(),
    )?;
    if founding {
        write_anchors(ctx)?;
    }
    Ok(())
}

impl IdentityContract {
    fn register_org(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        // The authorisation hook checked that the admin's organisation is the new one.
        let (ca, crl) = parse_register_org(args)?;
        let name = ca.organisation().unwrap_or_default();
        if let Some(old) = read_org(ctx, &name)? {
            if !old.is_active() {
                return Err(ContractError::failed(
                    FailureCode::OrgRemoved,
                    format!(
                        "organisation {name:?} was deregistered; only its sponsor {:?} can re-admit it (identity.replace_ca)",
                        old.sponsor.unwrap_or_default()
                    ),
                ));
            }
            return Err(ContractError::failed(
                FailureCode::OrgExists,
                format!("organisation {name:?} is already registered"),
            ));
        }
        let sponsor = issuing_org(ctx, &ca)?.ok_or_else(|| {
            ContractError::failed(
                FailureCode::PermissionDenied,
                format!(
                    "no registered organisation's CA issued the new CA (issuer {:?})",
                    ca.issuer()
                ),
            )
        })?;
        let count_key = k::org_count();
        let count = records::decode_u64(&count_key, ctx.get(&count_key)?.as_deref())?;
        let record = OrgRecord {
            name: name.clone(),
            ca_cert: ca.clone(),
            registered_at: ctx.block().height,
            sponsor: Some(sponsor.name),
            removed_at: None,
            former_cas: Vec::new(),
        };
        ctx.put(&k::org(&name), record.encode())?;
        ctx.trace(TraceKind::Org, &name);
        ctx.put(&k::org_index(count), name.into_bytes())?;
        ctx.put(&count_key, count.saturating_add(1).to_be_bytes().to_vec())?;
        ctx.put(&k::crl(&ca.fingerprint()), crl.der().to_vec())?;
        Ok(())
    }

    /// Deregisters an organisation sponsored by the caller's: from the next block its members
    /// and every CA certified beneath its CA are refused (admission requires every CA on a
    /// signer's path to be an active registered CA). The record stays, marked removed, so old
    /// receipts keep their meaning and the name cannot be re-registered by the removed CA.
    fn deregister_org(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let name = parse_org_name(args)?;
        let mut org = sponsored_org(ctx, "deregister_org", &name).map_err(Denial::into_failure)?;
        if let Some(at) = org.removed_at {
            return Err(ContractError::failed(
                FailureCode::OrgRemoved,
                format!("organisation {name:?} was already deregistered at height {at}"),
            ));
        }
        org.removed_at = Some(ctx.block().height);
        // In the organisation's trace, as the supervisor's freeze of it is (review 18).
        ctx.trace(TraceKind::Org, &name);
        ctx.put(&k::org(&name), org.encode())
    }

    /// Replaces the CA of an organisation sponsored by the caller's (and re-admits it if it
    /// was deregistered): the new CA, issued by the caller's organisation's CA, and its CRL.
    /// No overlap: from the next block, certificates under the old CA are refused.
    fn replace_ca(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let (ca, crl) = parse_register_org(args)?;
        let name = ca.organisation().unwrap_or_default();
        let mut org = sponsored_org(ctx, "replace_ca", &name).map_err(Denial::into_failure)?;
        if org.ca_cert == ca {
            return Err(bad(format!(
                "args[0] (CA certificate): it is already the CA of {name:?}"
            )));
        }
        let issuer = issuing_org(ctx, &ca)?;
        if issuer.as_ref().map(|o| o.name.as_str()) != Some(ctx.caller().organisation.as_str()) {
            return Err(ContractError::failed(
                FailureCode::PermissionDenied,
                format!(
                    "the new CA of {name:?} must be issued by the CA of the sponsor {:?}",
                    ctx.caller().organisation
                ),
            ));
        }
        let old = std::mem::replace(&mut org.ca_cert, ca.clone());
        org.former_cas.push(old);
        if org.former_cas.len() > records::MAX_FORMER_CAS {
            org.former_cas.remove(0);
        }
        org.registered_at = ctx.block().height;
        org.removed_at = None;
        ctx.trace(TraceKind::Org, &name);
        ctx.put(&k::org(&name), org.encode())?;
        ctx.put(&k::crl(&ca.fingerprint()), crl.der().to_vec())
    }

    fn update_crl(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        // The authorisation hook checked, on this state, that the CRL is issued and signed by
        // the registered CA of the admin's organisation.
        let crl = parse_update_crl(args)?;
        let org = own_org(ctx, "update_crl").map_err(Denial::into_failure)?;
        let key = k::crl(&org.ca_cert.fingerprint());
        if let Some(old) = ctx.get(&key)? {
            let old = Crl::from_der(&old).map_err(|e| ExecError::corrupt(&key, e))?;
            if crl.this_update() <= old.this_update() {
                return Err(ContractError::failed(
                    FailureCode::CrlNotNewer,
                    format!(
                        "the CRL's thisUpdate {} is not later than the recorded CRL's {}",
                        crl.this_update(),
                        old.this_update()
                    ),
                ));
            }
        }
        ctx.put(&key, crl.der().to_vec())
    }

    fn suspend(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        // The authorisation hook checked that the certificate is recorded and belongs to the
        // admin's organisation.
        let id = parse_cert_id("suspend", args)?;
        let key = k::suspended(&id);
        if ctx.get(&key)?.is_some() {
            return Err(ContractError::failed(
                FailureCode::AlreadySuspended,
                format!("certificate {id} is already suspended"),
            ));
        }
        let record = SuspensionRecord {
            height: ctx.block().height,
            by: ctx.caller().cert_id,
        };
        // In the certificate's trace, as the supervisor's freeze of it is (review 18).
        ctx.trace(TraceKind::Cert, &id.to_hex());
        ctx.put(&key, record.encode())
    }

    fn resume(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let id = parse_cert_id("resume", args)?;
        let key = k::suspended(&id);
        if ctx.get(&key)?.is_none() {
            return Err(ContractError::failed(
                FailureCode::NotSuspended,
                format!("certificate {id} is not suspended"),
            ));
        }
        ctx.trace(TraceKind::Cert, &id.to_hex());
        ctx.delete(&key)
    }
}

impl Contract for IdentityContract {
    fn name(&self) -> &'static str {
        IDENTITY
    }

    fn methods(&self) -> &'static [&'static str] {
        METHODS
    }

    fn check_args(&self, method: &str, args: &[Vec<u8>]) -> Result<(), ContractError> {
        match method {
            "register_org" | "replace_ca" => parse_register_org(args).map(|_| ()),
            "deregister_org" => parse_org_name(args).map(|_| ()),
            "update_crl" => parse_update_crl(args).map(|_| ()),
            "suspend" | "resume" => parse_cert_id(method, args).map(|_| ()),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("identity has no method {method:?}"),
            )),
        }
    }

    /// `register_org` signs with a certificate of the new CA it brings along.
    fn introduced_ca(
        &self,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<Option<(Certificate, Crl)>, ContractError> {
        if method != "register_org" {
            return Ok(None);
        }
        parse_register_org(args).map(Some)
    }

    fn authorize(
        &self,
        ctx: &CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), Denial> {
        match method {
            "register_org" if in_execution(ctx) => {
                let (_, name) = parse_ca(args)?;
                registers_its_own(ctx, &name)
            }
            "deregister_org" => {
                let name = parse_org_name(args)?;
                sponsored_org(ctx, method, &name)?;
                holds_no_seat(ctx, method, &name)
            }
            "replace_ca" => {
                let (ca, name) = parse_ca(args)?;
                sponsored_org(ctx, method, &name)?;
                holds_no_seat(ctx, method, &name)?;
                match ctx.ca_validation() {
                    Some(cas) => issued_by_the_sponsor(ctx, cas, &ca),
                    None => Ok(()),
                }
            }
            "update_crl" => {
                let crl = parse_update_crl(args)?;
                crl_of_own_ca(ctx, &crl)
            }
            "suspend" | "resume" => {
                let id = parse_cert_id(method, args)?;
                own_cert(ctx, method, &id)
            }
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
            "register_org" => Self::register_org(ctx, args),
            "update_crl" => Self::update_crl(ctx, args),
            "suspend" => Self::suspend(ctx, args),
            "resume" => Self::resume(ctx, args),
            "deregister_org" => Self::deregister_org(ctx, args),
            "replace_ca" => Self::replace_ca(ctx, args),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("identity has no method {method:?}"),
            )),
        }
    }
}
