//! Chain validation (RFC 5280 §6, reduced to gmchain's profiles), with the time passed in and
//! revocation failing closed.

use crate::cert::Certificate;
use crate::crl::Crl;
use crate::der_util::oid;
use crate::error::{CertRef, ChainError, CrlProblem};
use crate::{Role, UnixTime};
use crypto::UserId;
use x509_cert::ext::pkix::KeyUsages;

/// The longest path gmchain builds (root → agency CA → leaf is 3).
pub const MAX_PATH_LEN: usize = 6;

/// A trusted CA certificate and the SM2 user ID its signatures (and those of every certificate
/// and CRL in chains it anchors) were made with.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    /// The CA certificate: a root, or an organisation's registered agency CA.
    pub cert: Certificate,
    /// The signers' user ID: `1234567812345678` (GM/T 0009 default) unless the anchor's CA
    /// signs with another, e.g. OpenSSL 3.0's default empty ID.
    pub user_id: UserId,
}

impl TrustAnchor {
    /// Returns an anchor using the default user ID.
    pub fn new(cert: Certificate) -> Self {
        TrustAnchor {
            cert,
            user_id: UserId::default(),
        }
    }
}

/// A chain that passed every check; only [`validate_chain`] and
/// [`crate::Consortium::validate`] construct one.
#[derive(Debug, Clone)]
pub struct ValidatedChain {
    pub(crate) path: Vec<Certificate>,
    pub(crate) organisation: String,
    pub(crate) role: Role,
}

impl ValidatedChain {
    /// Returns the validated certificate.
    pub fn leaf(&self) -> &Certificate {
        &self.path[0]
    }

    /// Returns the identity's organisation: the O of the trust anchor that anchors the chain
    /// (register each organisation's own CA as its anchor to bind identities to it).
    pub fn organisation(&self) -> &str {
        &self.organisation
    }

    /// Returns the role the leaf was validated for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Returns the path, leaf first, trust anchor last.
    pub fn path(&self) -> &[Certificate] {
        &self.path
    }
}

fn r(c: &Certificate) -> CertRef {
    CertRef {
        subject: c.subject(),
        serial: c.serial(),
    }
}

/// Finds the issuer of `cur`: by name, anchors before intermediates, and among several, the
/// one whose subject key identifier matches `cur`'s authority key identifier. Returns the
/// issuer and, for an anchor, its index.
fn find_issuer<'a>(
    cur: &Certificate,
    path: &[&Certificate],
    intermediates: &'a [Certificate],
    anchors: &'a [TrustAnchor],
) -> Option<(&'a Certificate, Option<usize>)> {
    let fresh = |c: &Certificate| !path.iter().any(|p| p.der() == c.der());
    let mut by_name: Vec<(&'a Certificate, Option<usize>)> = anchors
        .iter()
        .enumerate()
        .map(|(i, a)| (&a.cert, Some(i)))
        .chain(intermediates.iter().map(|c| (c, None)))
        .filter(|(c, _)| c.subject_name() == cur.issuer_name() && fresh(c))
        .collect();
    if let Some(aki) = cur.authority_key_id()
        && by_name.iter().any(|(c, _)| c.subject_key_id() == Some(aki))
    {
        by_name.retain(|(c, _)| c.subject_key_id() == Some(aki));
    }
    by_name.into_iter().next()
}

/// For a certificate with no issuer by name, a diagnosis: the certificate whose key did sign
/// it, if any. Only candidates whose subject key identifier equals the certificate's authority
/// key identifier are tried, each with its own anchor's user ID and the default one, so the
/// work is bounded by the few certificates that share one key identifier, never by the number
/// of anchors (a certificate naming an unknown issuer must cost almost nothing to refuse).
fn signer_by_key<'a>(
    cur: &Certificate,
    intermediates: &'a [Certificate],
    anchors: &'a [TrustAnchor],
) -> Option<&'a Certificate> {
    let aki = cur.authority_key_id()?;
    let default = UserId::default();
    anchors
        .iter()
        .map(|a| (&a.cert, Some(&a.user_id)))
        .chain(intermediates.iter().map(|c| (c, None)))
        .filter(|(c, _)| c.subject_key_id() == Some(aki) && c.der() != cur.der())
        .find(|(c, id)| {
            cur.verify_signed_by(&c.public_key(), &default).is_ok()
                || id.is_some_and(|id| {
                    *id != default && cur.verify_signed_by(&c.public_key(), id).is_ok()
                })
        })
        .map(|(c, _)| c)
}

/// Validates `leaf` for the `intended` role at time `now`: builds the path to a trust anchor
/// through `intermediates`, then checks, from the anchor down, each certificate's signature
/// algorithm (SM2-with-SM3 only), signature (with the anchor's user ID), validity, critical
/// extensions, and for every issuer basic constraints (CA), key usage keyCertSign and path
/// length, and that an agency CA's certificates name its organisation; then the leaf's key
/// usage, extended key usage and role for `intended`; last, revocation of every certificate
/// below the anchor by a current CRL from its issuer. Without one the result is
/// [`ChainError::RevocationUnknown`], never a valid chain. The trust anchor itself is trusted
/// by configuration: its own revocation is not checked.
pub fn validate_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[TrustAnchor],
    crls: &[Crl],
    now: UnixTime,
    intended: Role,
) -> Result<ValidatedChain, ChainError> {
    let (path, anchor) = validate_path(leaf, intermediates, anchors, crls, now, intended, true)?;
    let anchor = &anchors[anchor];
    let organisation = anchor
        .cert
        .organisation()
        .ok_or_else(|| ChainError::AnchorUnusable {
            cert: r(&anchor.cert),
            reason: "its subject has no single organisation (O)",
        })?;
    Ok(ValidatedChain {
        path,
        organisation,
        role: intended,
    })
}

/// Builds and checks the path as [`validate_chain`] describes; returns it (leaf first, anchor
/// last) and the index of its anchor in `anchors`. With `check_anchor_signature` false, a
/// self-signed anchor's own signature is not verified again (the caller checked it once).
pub(crate) fn validate_path(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[TrustAnchor],
    crls: &[Crl],
    now: UnixTime,
    intended: Role,
    check_anchor_signature: bool,
) -> Result<(Vec<Certificate>, usize), ChainError> {
    // Path building, by name and key identifier only: no signature is verified before the
    // path is known.
    let mut path: Vec<&Certificate> = vec![leaf];
    let anchor_index: usize = loop {
        let cur = path[path.len() - 1];
        if let Some(i) = anchors.iter().position(|a| a.cert.der() == cur.der()) {
            break i;
        }
        if path.len() >= MAX_PATH_LEN {
            return Err(ChainError::PathTooLong {
                cert: r(leaf),
                max: MAX_PATH_LEN,
            });
        }
        match find_issuer(cur, &path, intermediates, anchors) {
            Some((issuer, Some(i))) => {
                path.push(issuer);
                break i;
            }
            Some((issuer, None)) => path.push(issuer),
            None => {
                if let Some(signer) = signer_by_key(cur, intermediates, anchors) {
                    return Err(ChainError::NameChaining {
                        cert: r(cur),
                        issuer_name: cur.issuer(),
                        signer: r(signer),
                    });
                }
                return Err(ChainError::NoPathToAnchor {
                    cert: r(cur),
                    issuer: cur.issuer(),
                });
            }
        }
    };
    let anchor = &anchors[anchor_index];
    let id = &anchor.user_id;
    let top = path.len() - 1;

    // Per-certificate checks, from the anchor down.
    for i in (0..=top).rev() {
        let c = path[i];
        c.check_algorithm()
            .map_err(|oid| ChainError::WrongAlgorithm { cert: r(c), oid })?;
        let issuer = if i < top {
            Some(path[i + 1])
        } else if c.is_self_issued() && check_anchor_signature {
            // A self-signed anchor: its signature is checked too, which also catches a wrong
            // user ID configured for the anchor.
            Some(c)
        } else {
            None
        };
        if let Some(iss) = issuer {
            c.verify_signed_by(&iss.public_key(), id).map_err(|_| {
                ChainError::SignatureInvalid {
                    cert: r(c),
                    issuer: r(iss),
                }
            })?;
        }
        let v = c.validity();
        if now < v.not_before {
            return Err(ChainError::NotYetValid {
                cert: r(c),
                not_before: v.not_before,
                now,
            });
        }
        if now > v.not_after {
            return Err(ChainError::Expired {
                cert: r(c),
                not_after: v.not_after,
                now,
            });
        }
        if let Some(o) = c.unknown_critical().first() {
            return Err(ChainError::UnknownCriticalExtension {
                cert: r(c),
                oid: o.to_string(),
            });
        }
        if i > 0 {
            // c issued path[i - 1].
            if !c.is_ca() {
                return Err(ChainError::NotACa { cert: r(c) });
            }
            if !c
                .key_usage()
                .is_some_and(|k| k.contains(KeyUsages::KeyCertSign))
            {
                return Err(ChainError::KeyUsage {
                    cert: r(c),
                    required: "keyCertSign",
                });
            }
            if !c.is_self_issued() {
                let expected = c.organisation().unwrap_or_default();
                let found = path[i - 1].organisation();
                if found.as_deref() != Some(expected.as_str()) {
                    return Err(ChainError::OrganisationMismatch {
                        cert: r(path[i - 1]),
                        expected,
                        found,
                    });
                }
            }
        }
    }

    // Path length (RFC 5280 §6.1.4 (l)-(m)), nearest CA first, so the error names the CA whose
    // own constraint the certificates below it break: the non-self-issued CA certificates
    // between each CA and the leaf must not outnumber its pathLenConstraint.
    for i in 1..=top {
        let c = path[i];
        let below = path[1..i].iter().filter(|p| !p.is_self_issued()).count();
        if let Some(pl) = c.path_len()
            && below > usize::from(pl)
        {
            return Err(ChainError::PathLengthExceeded {
                cert: r(c),
                path_len: pl,
                below,
            });
        }
    }

    // The leaf for the intended role: key usage, then extended key usage, then the role.
    check_leaf(leaf, intended)?;

    // Revocation, from the top: every certificate below the anchor needs a current CRL from
    // its issuer.
    for i in (0..top).rev() {
        check_revocation(path[i], path[i + 1], crls, now, id)?;
    }

    Ok((path.into_iter().cloned().collect(), anchor_index))
}

fn check_leaf(leaf: &Certificate, intended: Role) -> Result<(), ChainError> {
    let ku = leaf.key_usage();
    let has = |k: KeyUsages| ku.is_some_and(|f| f.contains(k));
    let required = match intended {
        Role::RootCa | Role::AgencyCa => (!has(KeyUsages::KeyCertSign)).then_some("keyCertSign"),
        Role::NodeSign | Role::Admin | Role::User | Role::Auditor => {
            (!has(KeyUsages::DigitalSignature)).then_some("digitalSignature")
        }
        Role::NodeEnc | Role::UserEnc | Role::AdminEnc | Role::AuditorEnc => {
            (!(has(KeyUsages::KeyEncipherment) || has(KeyUsages::KeyAgreement)))
                .then_some("keyEncipherment or keyAgreement")
        }
    };
    if let Some(required) = required {
        return Err(ChainError::KeyUsage {
            cert: r(leaf),
            required,
        });
    }
    let eku = leaf.extended_key_usage().unwrap_or(&[]);
    let missing = match intended {
        Role::RootCa | Role::AgencyCa | Role::UserEnc | Role::AdminEnc | Role::AuditorEnc => None,
        Role::NodeSign | Role::NodeEnc => (!(eku.contains(&oid::KP_SERVER_AUTH)
            && eku.contains(&oid::KP_CLIENT_AUTH)))
        .then_some("serverAuth and clientAuth"),
        Role::Admin | Role::User | Role::Auditor => {
            (!eku.contains(&oid::KP_CLIENT_AUTH)).then_some("clientAuth")
        }
    };
    if let Some(required) = missing {
        return Err(ChainError::ExtendedKeyUsage {
            cert: r(leaf),
            required,
        });
    }
    let found = leaf.role();
    if found != Some(intended) {
        return Err(ChainError::WrongRole {
            cert: r(leaf),
            expected: intended,
            found,
        });
    }
    Ok(())
}

/// Checks `cert` against the current CRL of `issuer`: fails closed when there is none.
fn check_revocation(
    cert: &Certificate,
    issuer: &Certificate,
    crls: &[Crl],
    now: UnixTime,
    id: &UserId,
) -> Result<(), ChainError> {
    let unknown = |problem| ChainError::RevocationUnknown {
        cert: r(cert),
        problem,
    };
    let named: Vec<&Crl> = crls
        .iter()
        .filter(|c| c.issuer_name() == issuer.subject_name())
        .collect();
    if named.is_empty() {
        return Err(unknown(CrlProblem::Missing));
    }
    if !issuer
        .key_usage()
        .is_some_and(|k| k.contains(KeyUsages::CRLSign))
    {
        return Err(unknown(CrlProblem::IssuerNotCrlSigner));
    }
    // Among the issuer's authentic CRLs, the current one with the highest number.
    let mut problem = None;
    let mut best: Option<&Crl> = None;
    for crl in named {
        if let Err(oid) = crl.check_algorithm() {
            problem.get_or_insert(CrlProblem::WrongAlgorithm { oid });
            continue;
        }
        if crl
            .verify_signed_by_with_id(&issuer.public_key(), id)
            .is_err()
        {
            problem = Some(CrlProblem::SignatureInvalid);
            continue;
        }
        if !crl.is_current(now) {
            if !matches!(problem, Some(CrlProblem::SignatureInvalid)) {
                problem = Some(CrlProblem::NotCurrent {
                    this_update: crl.this_update(),
                    next_update: crl.next_update(),
                });
            }
            continue;
        }
        if best.is_none_or(|b| crl.number() > b.number()) {
            best = Some(crl);
        }
    }
    let Some(crl) = best else {
        return Err(unknown(problem.unwrap_or(CrlProblem::Missing)));
    };
    if let Some(e) = crl.find(&cert.serial()) {
        return Err(ChainError::Revoked {
            cert: r(cert),
            reason: e.reason,
            at: e.revoked_at,
        });
    }
    Ok(())
}
