//! The consortium's trust: exactly the CA certificates a chain's genesis lists, and for each,
//! the organisations it may sponsor. Every certificate of a member (a node, an admin, a user,
//! and the CA of an organisation registered later) is validated up to one of these anchors,
//! each link against its issuer's CRL. The node's admission and the offline receipt verifier
//! both call [`Consortium::validate`], so they agree by construction on what a valid signer is.

use crate::cert::Certificate;
use crate::chain::{TrustAnchor, ValidatedChain, validate_path};
use crate::crl::Crl;
use crate::error::{CertRef, ChainError};
use crate::{Role, UnixTime};

/// Which organisations, besides its own, an anchor may certify a CA (or a member) for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sponsorship {
    /// Exactly these names. Only a self-signed anchor can list any: below an agency CA every
    /// certificate names the agency's own organisation.
    Listed(Vec<String>),
    /// Any name: the rule of chains whose genesis bound no names to anchors (genesis format 1).
    /// Only for verifying the receipts of such chains; a node never runs with it.
    AnyOrganisation,
}

/// A trust anchor of the consortium and the organisation names it may sponsor.
#[derive(Debug, Clone)]
pub struct ConsortiumAnchor {
    /// The CA certificate (self-signed root, or an agency CA listed in genesis).
    pub anchor: TrustAnchor,
    /// The organisations it sponsors besides its own O.
    pub sponsors: Sponsorship,
}

/// The anchors of one chain, each checked once when the consortium is built.
#[derive(Debug, Clone)]
pub struct Consortium {
    anchors: Vec<TrustAnchor>,
    organisations: Vec<String>,
    sponsors: Vec<Sponsorship>,
}

fn r(c: &Certificate) -> CertRef {
    CertRef {
        subject: c.subject(),
        serial: c.serial(),
    }
}

impl Consortium {
    /// Checks each anchor: its subject names one organisation (O); a self-signed anchor's
    /// signature verifies with its user ID (checked here once, not on every validation); only a
    /// self-signed anchor lists sponsored organisations, none of them its own.
    pub fn new(anchors: Vec<ConsortiumAnchor>) -> Result<Consortium, ChainError> {
        let mut out = Consortium {
            anchors: Vec::with_capacity(anchors.len()),
            organisations: Vec::with_capacity(anchors.len()),
            sponsors: Vec::with_capacity(anchors.len()),
        };
        for a in anchors {
            let cert = &a.anchor.cert;
            let o = cert
                .organisation()
                .ok_or_else(|| ChainError::AnchorUnusable {
                    cert: r(cert),
                    reason: "its subject has no single organisation (O)",
                })?;
            if cert.is_self_issued() {
                cert.verify_signed_by(&cert.public_key(), &a.anchor.user_id)
                    .map_err(|_| ChainError::SignatureInvalid {
                        cert: r(cert),
                        issuer: r(cert),
                    })?;
            } else if matches!(&a.sponsors, Sponsorship::Listed(l) if !l.is_empty()) {
                return Err(ChainError::AnchorUnusable {
                    cert: r(cert),
                    reason: "an agency CA (not self-signed) certifies only its own organisation, so it cannot sponsor others",
                });
            }
            out.anchors.push(a.anchor);
            out.organisations.push(o);
            out.sponsors.push(a.sponsors);
        }
        Ok(out)
    }

    /// Returns the anchors, in genesis order.
    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// Returns each anchor with the organisations it sponsors, in order: the input of
    /// [`Consortium::new`] for a consortium whose anchors change (a chain's governance
    /// registers or removes founding organisations).
    pub fn entries(&self) -> Vec<ConsortiumAnchor> {
        self.anchors
            .iter()
            .zip(&self.sponsors)
            .map(|(anchor, sponsors)| ConsortiumAnchor {
                anchor: anchor.clone(),
                sponsors: sponsors.clone(),
            })
            .collect()
    }

    /// Returns whether `cert` is one of the anchors (byte for byte).
    pub fn is_anchor(&self, cert: &Certificate) -> bool {
        self.anchors.iter().any(|a| a.cert.der() == cert.der())
    }

    /// Returns whether the anchor at `index` may sponsor `organisation`: its own O, or one it
    /// lists.
    pub fn sponsors(&self, index: usize, organisation: &str) -> bool {
        self.organisations.get(index).map(String::as_str) == Some(organisation)
            || match self.sponsors.get(index) {
                Some(Sponsorship::Listed(names)) => names.iter().any(|x| x == organisation),
                Some(Sponsorship::AnyOrganisation) => true,
                None => false,
            }
    }

    /// Validates `leaf` for `intended` at `now` as [`crate::validate_chain`] does, against
    /// these anchors only, with every link's revocation judged by `crls` (failing closed),
    /// then checks that the anchor sponsors the organisation of the certificate just below it.
    /// The returned chain's organisation is that certificate's O, which every certificate below
    /// it shares (an agency CA certifies only its own organisation): the member's organisation.
    pub fn validate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        crls: &[Crl],
        now: UnixTime,
        intended: Role,
    ) -> Result<ValidatedChain, ChainError> {
        let (path, index) = validate_path(
            leaf,
            intermediates,
            &self.anchors,
            crls,
            now,
            intended,
            false,
        )?;
        let top = path.len() - 1;
        let organisation = match top.checked_sub(1) {
            // The leaf is an anchor itself.
            None => self.organisations[index].clone(),
            Some(below) => {
                let c = &path[below];
                let o = c.organisation().unwrap_or_default();
                if !self.sponsors(index, &o) {
                    return Err(ChainError::NotSponsored {
                        cert: r(c),
                        organisation: o,
                        anchor: path[top].subject(),
                    });
                }
                o
            }
        };
        Ok(ValidatedChain {
            path,
            organisation,
            role: intended,
        })
    }
}
