//! Issuance by role, agency CA certificates, dual pairs and renewal.

use super::{AuditDetail, Authority, pki};
use crate::dir::CaKind;
use crate::error::{CaError, PkiStep};
use crate::index::Index;
use crate::renewal::{self, RenewalKey};
use crypto::{PublicKey, Secret};
use crypto_sm::sm2::PrivateKey;
use pki::{Certificate, IssueRequest, Role};

/// Who a certificate is for.
#[derive(Clone, Copy, Debug)]
pub enum Holder<'a> {
    /// A PKCS#10 request (PEM or DER): its proof of possession is verified, and its subject
    /// checked against the role and organisation (`pki::csr::check_for_issuance`).
    Request(&'a [u8]),
    /// A key pair the CA generates for the holder named `common_name`; the caller delivers the
    /// private key ([`Issued::generated`]).
    Generate { common_name: &'a str },
}

/// Where the escrow copy of an encryption key the CA generated is kept.
pub trait EscrowStore {
    /// Keeps `pem` (the key as encrypted PKCS#8) for the certificate `serial` (hex), durably
    /// and readable by its owner only, before the certificate enters the index.
    fn deposit(&self, serial: &str, pem: &[u8]) -> Result<(), CaError>;
}

/// The escrow of a dual pair's encryption key: the passphrase its copy is encrypted under, and
/// where that copy goes.
#[derive(Clone, Copy)]
pub struct Escrow<'a> {
    pub passphrase: &'a Secret,
    pub store: &'a dyn EscrowStore,
}

impl std::fmt::Debug for Escrow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Escrow([redacted])")
    }
}

/// The encryption half of a dual pair.
#[derive(Debug)]
pub struct EncryptionHalf {
    /// The encryption certificate (node-enc, user-enc, admin-enc or auditor-enc).
    pub certificate: Certificate,
    /// Its private key sealed to the holder's signing key (GM/T 0009 SM2EnvelopedKey, DER).
    pub envelope: Vec<u8>,
}

/// What an issuance made.
#[derive(Debug)]
pub struct Issued {
    pub certificate: Certificate,
    /// The holder's key pair, when the CA generated it: the caller delivers it encrypted.
    pub generated: Option<PrivateKey>,
    /// For a dual pair: the encryption half.
    pub encryption: Option<EncryptionHalf>,
    detail: String,
}

impl AuditDetail for Issued {
    fn audit_detail(&self) -> String {
        self.detail.clone()
    }
}

/// What a renewal made.
#[derive(Debug)]
pub struct Renewed {
    pub certificate: Certificate,
    /// The serial renewed.
    pub renews: String,
    detail: String,
}

impl AuditDetail for Renewed {
    fn audit_detail(&self) -> String {
        self.detail.clone()
    }
}

/// A first issuance not yet written to the index.
struct Draft {
    index: Index,
    issuer: Certificate,
    certificate: Certificate,
    generated: Option<PrivateKey>,
}

/// A holder resolved: the common name and key to certify.
struct Subject {
    common_name: String,
    public_key: PublicKey,
    generated: Option<PrivateKey>,
}

impl Authority<'_> {
    /// Returns the subject `holder` names, for `role` in `organisation`.
    fn subject(
        &self,
        holder: Holder<'_>,
        role: Role,
        organisation: &str,
    ) -> Result<Subject, CaError> {
        match holder {
            Holder::Request(bytes) => {
                let req = pki::csr::verify(bytes).map_err(pki(PkiStep::Request))?;
                let common_name = pki::csr::check_for_issuance(&req, role, organisation)
                    .map_err(pki(PkiStep::Request))?;
                Ok(Subject {
                    common_name,
                    public_key: req.public_key,
                    generated: None,
                })
            }
            Holder::Generate { common_name } => {
                let key = PrivateKey::generate(self.cx.rng).map_err(CaError::KeyGeneration)?;
                Ok(Subject {
                    common_name: common_name.to_string(),
                    public_key: key.public_key(),
                    generated: Some(key),
                })
            }
        }
    }

    /// Signs a certificate of `key` for `role` with a fresh serial and a validity of
    /// `validity_days` from now, within the issuer's; applies no rule and records nothing.
    #[allow(clippy::too_many_arguments)] // IssueRequest's fields less the serial and validity
    fn sign(
        &self,
        index: &Index,
        issuer: &Certificate,
        role: Role,
        common_name: &str,
        organisation: &str,
        key: &PublicKey,
        validity_days: u64,
        step: PkiStep,
    ) -> Result<Certificate, CaError> {
        let serial = self.fresh_serial(index)?;
        pki::issue(
            issuer,
            self.cx.signer,
            &IssueRequest {
                role,
                common_name,
                organisation,
                public_key: key,
                serial,
                validity: self.validity(validity_days, issuer)?,
            },
        )
        .map_err(pki(step))
    }

    /// Applies the CA's rule for a first issuance of `key` (`ca::renewal::check_issuance`: not
    /// a key this CA recorded as compromised, and not after it recorded its own compromise) to
    /// the index the certificate then goes into.
    fn check_issuance(&self, index: &Index, key: &PublicKey) -> Result<(), CaError> {
        renewal::check_issuance(index, key, |e| self.stored(e).map(|c| c.public_key()))
    }

    /// A first issuance for `holder`: the certificate, recorded in the index returned (which
    /// the caller commits with the certificate's file), with the issuer's certificate and any
    /// key the CA generated.
    fn first_issuance(
        &self,
        holder: Holder<'_>,
        role: Role,
        organisation: &str,
        validity_days: u64,
    ) -> Result<Draft, CaError> {
        let subject = self.subject(holder, role, organisation)?;
        let issuer = self.certificate()?;
        let mut index = self.dir.read_index()?;
        self.check_issuance(&index, &subject.public_key)?;
        let certificate = self.sign(
            &index,
            &issuer,
            role,
            &subject.common_name,
            organisation,
            &subject.public_key,
            validity_days,
            PkiStep::Issue,
        )?;
        self.record(&mut index, &certificate, role)?;
        Ok(Draft {
            index,
            issuer,
            certificate,
            generated: subject.generated,
        })
    }

    /// Issues a certificate for `role` (not a CA role: those come from `init` and
    /// [`Authority::intermediate`]) in this CA's organisation.
    pub fn issue(
        &self,
        role: Role,
        holder: Holder<'_>,
        validity_days: u64,
    ) -> Result<Issued, CaError> {
        if role.is_ca() {
            return Err(CaError::CaRoleNotIssued { role });
        }
        let organisation = self.dir.meta().organisation.clone();
        let draft = self.first_issuance(holder, role, &organisation, validity_days)?;
        let cert = draft.certificate;
        let detail = format!(
            "{} {} serial {}",
            role.as_str(),
            cert.subject(),
            cert.serial()
        );
        self.commit(&draft.index, &[&cert], &detail)?;
        Ok(Issued {
            detail,
            certificate: cert,
            generated: draft.generated,
            encryption: None,
        })
    }

    /// Issues a dual pair: the holder's certificate of signing role `role` (node-sign, user,
    /// admin or auditor), and a certificate of its encryption pair ([`Role::encryption_pair`]:
    /// node-enc, user-enc, admin-enc, auditor-enc; same O and CN) for a key pair the CA
    /// generates, whose private key is sealed to the holder's signing key (GM/T 0009
    /// SM2EnvelopedKey) and kept in escrow as encrypted PKCS#8. Both certificates enter the
    /// index in one write, or neither. A role without an encryption pair is refused
    /// ([`CaError::NoEncryptionPair`]) before anything is made.
    pub fn issue_pair(
        &self,
        role: Role,
        holder: Holder<'_>,
        validity_days: u64,
        escrow: Escrow<'_>,
    ) -> Result<Issued, CaError> {
        let enc_role = role
            .encryption_pair()
            .ok_or(CaError::NoEncryptionPair { role })?;
        let organisation = self.dir.meta().organisation.clone();
        let Draft {
            mut index,
            issuer,
            certificate: sign,
            generated,
        } = self.first_issuance(holder, role, &organisation, validity_days)?;
        let enc_key = PrivateKey::generate(self.cx.rng).map_err(CaError::KeyGeneration)?;
        let enc_pub = enc_key.public_key();
        let cn = sign.common_name().unwrap_or_default();
        let org = sign.organisation().unwrap_or_default();
        self.check_issuance(&index, &enc_pub)?;
        let enc = self.sign(
            &index,
            &issuer,
            enc_role,
            &cn,
            &org,
            &enc_pub,
            validity_days,
            PkiStep::IssueEncryption,
        )?;
        let envelope = pki::envelope::seal(
            &enc_key.to_bytes(),
            &enc_pub,
            &sign.public_key(),
            self.cx.rng,
        )
        .map_err(pki(PkiStep::Envelope))?;
        let escrowed = crypto_sm::keys::encode_encrypted_pkcs8_pem(
            &enc_key,
            escrow.passphrase.expose(),
            crypto_sm::keys::DEFAULT_ITERATIONS,
            self.cx.rng,
        )
        .map_err(CaError::EscrowEncrypt)?;
        let enc_hex = enc.serial().to_hex();
        let sign_hex = sign.serial().to_hex();
        self.record(&mut index, &enc, enc_role)?;
        index.get_mut(&enc_hex)?.pair = Some(sign_hex.clone());
        index.get_mut(&sign_hex)?.pair = Some(enc_hex.clone());
        // The last step that can refuse: the pair is committed (files and index) only after
        // the escrow copy is kept, so an index never names an encryption key that exists
        // nowhere else, and no certificate file is left that the index does not record.
        escrow.store.deposit(&enc_hex, escrowed.as_bytes())?;
        let detail = format!(
            "{} {} serial {}; {} serial {}",
            role.as_str(),
            sign.subject(),
            sign.serial(),
            enc_role.as_str(),
            enc.serial()
        );
        self.commit(&index, &[&sign, &enc], &detail)?;
        Ok(Issued {
            detail,
            certificate: sign,
            generated,
            encryption: Some(EncryptionHalf {
                certificate: enc,
                envelope,
            }),
        })
    }

    /// Issues an agency CA certificate for `organisation` (only a root does: gmchain's
    /// hierarchy is root → agency CA → end entities).
    pub fn intermediate(
        &self,
        holder: Holder<'_>,
        organisation: &str,
        validity_days: u64,
    ) -> Result<Issued, CaError> {
        if self.dir.meta().kind != CaKind::Root {
            return Err(CaError::NotRoot);
        }
        let draft = self.first_issuance(holder, Role::AgencyCa, organisation, validity_days)?;
        let cert = draft.certificate;
        let detail = format!("agency CA {} serial {}", cert.subject(), cert.serial());
        self.commit(&draft.index, &[&cert], &detail)?;
        Ok(Issued {
            detail,
            certificate: cert,
            generated: draft.generated,
            encryption: None,
        })
    }

    /// Checks the renewal rules that concern the certificate itself (revoked, already renewed),
    /// so that a caller refuses before it reads a request.
    pub fn renewable(&self, serial: &str) -> Result<(), CaError> {
        let index = self.dir.read_index()?;
        index.get(serial)?;
        renewal::check_renewable(&index, serial)?;
        Ok(())
    }

    /// Renews `serial`: a new serial, the same subject and profile, and the same key unless
    /// `request` (a PKCS#10 request for the same common name) brings a new one. Applies the
    /// whole rule of [`crate::renewal`].
    pub fn renew(
        &self,
        serial: &str,
        request: Option<&[u8]>,
        validity_days: u64,
    ) -> Result<Renewed, CaError> {
        let mut index = self.dir.read_index()?;
        let old_entry = index.get(serial)?.clone();
        renewal::check_renewable(&index, serial)?;
        let old = self.stored(&old_entry)?;
        let role = old.role().ok_or_else(|| CaError::NoRole {
            serial: serial.to_string(),
        })?;
        let public_key = match request {
            Some(bytes) => {
                let req = pki::csr::verify(bytes).map_err(pki(PkiStep::Request))?;
                let cn = pki::csr::check_for_issuance(&req, role, &self.dir.meta().organisation)
                    .map_err(pki(PkiStep::Request))?;
                if Some(cn.clone()) != old.common_name() {
                    return Err(CaError::RenewSubjectMismatch {
                        requested: cn,
                        kept: old.common_name().unwrap_or_default(),
                    });
                }
                req.public_key
            }
            None => old.public_key(),
        };
        let key = match request {
            Some(_) => RenewalKey::New(&public_key),
            None => RenewalKey::Reused,
        };
        renewal::check_renewal(&index, &old_entry.serial, key, |e| {
            self.stored(e).map(|c| c.public_key())
        })?;
        let issuer = self.certificate()?;
        let cn = old.common_name().unwrap_or_default();
        let org = old.organisation().unwrap_or_default();
        let cert = self.sign(
            &index,
            &issuer,
            role,
            &cn,
            &org,
            &public_key,
            validity_days,
            PkiStep::Renew,
        )?;
        self.record(&mut index, &cert, role)?;
        let new_hex = cert.serial().to_hex();
        index.get_mut(&new_hex)?.renews = Some(old_entry.serial.clone());
        index.get_mut(&old_entry.serial)?.renewed_by = Some(new_hex.clone());
        let detail = format!(
            "renewed {} as {new_hex}{}",
            old_entry.serial,
            if request.is_some() {
                " with a new key"
            } else {
                ""
            }
        );
        self.commit(&index, &[&cert], &detail)?;
        Ok(Renewed {
            detail,
            certificate: cert,
            renews: old_entry.serial,
        })
    }
}
