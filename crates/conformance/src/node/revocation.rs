//! The live revocation check (GM/T 0111 §8.4, §8.7): throwaway signers of the identity's
//! organisation, expired, suspended and revoked, are refused by the node. It writes, so it runs
//! only when [`super::write_refusal`] allows it.

use super::error::NodeCheckError;
use super::submit::{
    Case, Committed, anchor, body, commit, commit_anchor, ev, hex32, none_committed, random,
    refused, throwaway_signer,
};
use super::{NodeProbe, Party, genesis};
use crate::checks::Evidence;
use crypto::{Signer, UserId};
use crypto_sm::SoftSigner;
use pki::{
    Certificate, IssueRequest, RevocationReason, RevokedEntry, Role, Serial, UnixTime, Validity,
};
use types::{Call, Encode, Sender, SignedTx};

const SRC_REVOKE: &str = "live node; expected: docs/execution.md refusal codes, identity contract (suspend, resume, update_crl)";

/// A fresh transaction from `party` (sender `party.cert`), signed by its key, for the node's
/// current height.
fn signed_as(p: &dyn NodeProbe, party: Party<'_>, call: Call) -> Result<SignedTx, NodeCheckError> {
    let st = p.status()?;
    let mut tx = body(p, &st, call)?;
    tx.sender = Sender::Certificate(party.cert.to_vec());
    SignedTx::sign(tx, party.signer, &UserId::default())
        .map_err(|source| NodeCheckError::Signing { source })
}

/// A fresh attestation anchor from `party`.
fn anchor_as(p: &dyn NodeProbe, party: Party<'_>, meta: &str) -> Result<SignedTx, NodeCheckError> {
    let doc: [u8; 32] = random(p)?;
    signed_as(p, party, anchor(&crypto_sm::sm3::sm3(&doc), meta))
}

fn identity_call(method: &str, arg: Vec<u8>) -> Call {
    Call {
        contract: "identity".into(),
        method: method.into(),
        args: vec![arg],
    }
}

/// A throwaway user certificate of the CA's organisation, valid over `validity`.
fn throwaway_user(
    p: &dyn NodeProbe,
    ca_cert: &Certificate,
    ca: Party<'_>,
    cn: &str,
    validity: Validity,
) -> Result<(SoftSigner, Certificate), NodeCheckError> {
    let org = ca_cert
        .organisation()
        .ok_or(NodeCheckError::CaNoOrganisation)?;
    let key = throwaway_signer(p)?;
    let cert = pki::issue(
        ca_cert,
        ca.signer,
        &IssueRequest {
            role: Role::User,
            common_name: cn,
            organisation: &org,
            public_key: &key.public_key(),
            serial: Serial::random(p.random()).map_err(|source| NodeCheckError::Pki {
                what: "a random serial",
                source,
            })?,
            validity,
        },
    )
    .map_err(|source| NodeCheckError::Issue {
        cn: cn.to_string(),
        source,
    })?;
    Ok((key, cert))
}

/// Refused with `code`, the message naming `detail` too.
fn refused_naming(p: &dyn NodeProbe, s: &SignedTx, code: &str, detail: &str) -> Case {
    refused(p, &s.to_bytes(), code).and_then(|m| {
        if m.contains(detail) {
            Ok(m)
        } else {
            Err(NodeCheckError::RefusedNotNaming {
                code: code.to_string(),
                detail: detail.to_string(),
                message: m,
            })
        }
    })
}

fn committed_note(c: &Committed) -> String {
    format!("tx {} at height {}", hex32(&c.id), c.height)
}

const META_REVOKE: &str = "gmchain conformance node-revocation-live (GM/T 0111 8.4, 8.7)";

/// The organisation's next CRL: every entry of `recorded` plus `serial`, number + 1,
/// thisUpdate `now` (later than the recorded one), nextUpdate the recorded one's if later,
/// else now + 30 days, signed by the CA key.
fn next_crl(
    recorded: &pki::Crl,
    ca_cert: &Certificate,
    ca: Party<'_>,
    serial: Serial,
    now: u64,
) -> Result<pki::Crl, NodeCheckError> {
    if now <= recorded.this_update().0 {
        return Err(NodeCheckError::CrlNotBeforeNow {
            this_update: recorded.this_update(),
            now,
        });
    }
    let mut entries = recorded.revoked();
    entries.push(RevokedEntry {
        serial,
        revoked_at: UnixTime(now),
        reason: RevocationReason::KeyCompromise,
    });
    let next = recorded
        .next_update()
        .filter(|n| n.0 > now)
        .unwrap_or(UnixTime(now.saturating_add(30 * 86_400)));
    pki::issue_crl(
        ca_cert,
        ca.signer,
        recorded.number().saturating_add(1),
        UnixTime(now),
        next,
        &entries,
    )
    .map_err(|source| NodeCheckError::Pki {
        what: "issuing the next CRL",
        source,
    })
}

pub(super) fn revocation_live(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (Some(admin), Some(ca)) = (p.admin(), p.ca()) else {
        return vec![ev(
            "an admin and the CA of the identity's organisation",
            SRC_REVOKE,
            Err(NodeCheckError::AdminCaNotGiven),
        )];
    };
    let parties = (|| {
        let cert = |what, der| {
            Certificate::from_der(der)
                .map_err(|source| NodeCheckError::BadCertificate { what, source })
        };
        let ca_cert = cert("--ca-cert", ca.cert)?;
        let admin_cert = cert("--admin-cert", admin.cert)?;
        let id_cert = cert("--cert", p.certificate())?;
        let org = ca_cert.organisation();
        if admin_cert.role() != Some(Role::Admin) {
            return Err(NodeCheckError::NotAdmin {
                subject: admin_cert.subject(),
            });
        }
        if admin_cert.organisation() != org || id_cert.organisation() != org {
            return Err(NodeCheckError::OrganisationsDiffer {
                ca: org,
                admin: admin_cert.organisation(),
                identity: id_cert.organisation(),
            });
        }
        Ok((ca_cert, id_cert))
    })();
    let (ca_cert, id_cert) = match parties {
        Ok(x) => x,
        Err(e) => return vec![ev("the admin, the CA and the identity", SRC_REVOKE, Err(e))],
    };
    let limits = match genesis(p) {
        Ok((g, _)) => g.params.limits(),
        Err(e) => return vec![ev("the genesis file", SRC_REVOKE, Err(e))],
    };
    let before = match p.status() {
        Ok(s) => s.height,
        Err(e) => return vec![ev("status", SRC_REVOKE, Err(e.into()))],
    };
    let now = p.now_unix();
    let ca_validity = ca_cert.validity();
    let valid_now = Validity {
        not_before: UnixTime(now.saturating_sub(3600).max(ca_validity.not_before.0)),
        not_after: UnixTime(now.saturating_add(86_400).min(ca_validity.not_after.0)),
    };
    let mut refused_ids: Vec<[u8; 32]> = Vec::new();
    let admin_commits = |method: &str, arg: Vec<u8>| -> Result<Committed, NodeCheckError> {
        commit(p, signed_as(p, admin, identity_call(method, arg))?)
    };

    // (a) Expired: a validity entirely in the past, inside the CA's.
    let expired = (|| {
        let not_after = now.saturating_sub(60);
        let not_before = now.saturating_sub(2 * 86_400).max(ca_validity.not_before.0);
        if not_before >= not_after {
            return Err(NodeCheckError::CaTooRecent {
                not_before: ca_validity.not_before,
            });
        }
        let validity = Validity {
            not_before: UnixTime(not_before),
            not_after: UnixTime(not_after),
        };
        let (key, cert) = throwaway_user(p, &ca_cert, ca, "conformance-expired", validity)?;
        let s = anchor_as(
            p,
            Party {
                cert: cert.der(),
                signer: &key,
            },
            META_REVOKE,
        )?;
        refused_ids.push(s.tx_id().0.0);
        refused_naming(p, &s, "TX_CERT_INVALID", "CERT_EXPIRED")
            .map(|m| format!("certificate valid {not_before}..{not_after}: {m}"))
    })();
    out.push(ev(
        "an expired signer (validity entirely in the past) is refused TX_CERT_INVALID naming CERT_EXPIRED",
        SRC_REVOKE,
        expired,
    ));

    // (b) Suspended: commits, is suspended by the admin, is refused, is resumed.
    let suspended = throwaway_user(p, &ca_cert, ca, "conformance-suspended", valid_now);
    match suspended {
        Err(e) => out.push(ev("a throwaway signer to suspend", SRC_REVOKE, Err(e))),
        Ok((key, cert)) => {
            let party = Party {
                cert: cert.der(),
                signer: &key,
            };
            let first = anchor_as(p, party, META_REVOKE).and_then(|s| commit(p, s));
            let ok = first.is_ok();
            out.push(ev(
                "the signer to suspend first commits a transaction",
                SRC_REVOKE,
                first.map(|c| format!("{} by {}", committed_note(&c), cert.subject())),
            ));
            if ok {
                let id = cert.fingerprint().0.to_vec();
                let suspend = admin_commits("suspend", id.clone());
                let ok = suspend.is_ok();
                out.push(ev(
                    "the admin's identity.suspend of that certificate commits",
                    SRC_REVOKE,
                    suspend.map(|c| committed_note(&c)),
                ));
                if ok {
                    out.push(ev(
                        "the suspended signer's next transaction is refused TX_SIGNER_SUSPENDED",
                        SRC_REVOKE,
                        anchor_as(p, party, META_REVOKE).and_then(|s| {
                            refused_ids.push(s.tx_id().0.0);
                            refused(p, &s.to_bytes(), "TX_SIGNER_SUSPENDED")
                        }),
                    ));
                    out.push(ev(
                        "clean-up: the admin's identity.resume of that certificate commits",
                        SRC_REVOKE,
                        admin_commits("resume", id).map(|c| committed_note(&c)),
                    ));
                }
            }
        }
    }

    // (c) Revoked: commits, the organisation's next CRL lists it, is refused; the identity
    // under test still commits.
    match throwaway_user(p, &ca_cert, ca, "conformance-revoked", valid_now) {
        Err(e) => out.push(ev("a throwaway signer to revoke", SRC_REVOKE, Err(e))),
        Ok((key, cert)) => {
            let party = Party {
                cert: cert.der(),
                signer: &key,
            };
            let first = anchor_as(p, party, META_REVOKE).and_then(|s| commit(p, s));
            let first_id = first.as_ref().map(|c| c.id).ok();
            out.push(ev(
                "the signer to revoke first commits a transaction",
                SRC_REVOKE,
                first.map(|c| format!("{} by {}", committed_note(&c), cert.subject())),
            ));
            let recorded = first_id
                .ok_or(NodeCheckError::NoCommittedTx)
                .and_then(|id| {
                    let json = p.receipt_json(&id)?;
                    let b = receipt::ReceiptBundle::from_json(json.as_bytes(), &limits).map_err(
                        |e| NodeCheckError::ReceiptOfTx {
                            tx: id,
                            source: Box::new(e),
                        },
                    )?;
                    b.crls
                        .into_iter()
                        .find(|c| {
                            c.issuer() == ca_cert.subject()
                                && c.verify_signed_by(&ca_cert.public_key()).is_ok()
                        })
                        .ok_or_else(|| NodeCheckError::NoCaCrl {
                            ca: ca_cert.subject(),
                        })
                });
            let crl = recorded.and_then(|r| {
                if r.find(&id_cert.serial()).is_some() {
                    return Err(NodeCheckError::IdentityRevoked {
                        serial: id_cert.serial(),
                    });
                }
                let crl = next_crl(&r, &ca_cert, ca, cert.serial(), p.now_unix())?;
                Ok((r, crl))
            });
            let update = crl.and_then(|(r, crl)| {
                let note = format!(
                    "CRL number {} → {}, {} → {} entries (adds serial {})",
                    r.number(),
                    crl.number(),
                    r.revoked().len(),
                    crl.revoked().len(),
                    cert.serial()
                );
                admin_commits("update_crl", crl.der().to_vec())
                    .map(|c| format!("{note}: {}", committed_note(&c)))
            });
            let ok = update.is_ok();
            out.push(ev(
                "the organisation's next CRL (the recorded CRL from a receipt, plus the signer's serial) is recorded by the admin's identity.update_crl",
                SRC_REVOKE,
                update,
            ));
            if ok {
                out.push(ev(
                    "the revoked signer's next transaction is refused TX_SIGNER_REVOKED",
                    SRC_REVOKE,
                    anchor_as(p, party, META_REVOKE).and_then(|s| {
                        refused_ids.push(s.tx_id().0.0);
                        refused(p, &s.to_bytes(), "TX_SIGNER_REVOKED")
                    }),
                ));
                out.push(ev(
                    "the identity under test, not in the CRL, still commits",
                    SRC_REVOKE,
                    commit_anchor(p, META_REVOKE).map(|(c, _)| committed_note(&c)),
                ));
            }
        }
    }
    out.push(ev(
        "nothing refused was committed",
        SRC_REVOKE,
        none_committed(p, &refused_ids, before),
    ));
    out
}
