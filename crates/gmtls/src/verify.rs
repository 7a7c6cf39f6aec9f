//! Certificate verification on both sides of a handshake, by the pki crate: the peer's chain to
//! the consortium's CAs, its role, its validity and its revocation (failing closed), through an
//! [`Authority`]; and CertificateVerify as SM2 with the RFC 8998 user ID. rustls's own (webpki)
//! verification is never used.

use std::fmt;
use std::sync::Arc;

use crypto::{Digest, Signature, UserId};
use pki::{
    Certificate, ChainError, Consortium, ConsortiumAnchor, Crl, Role, Sponsorship, TrustAnchor,
    UnixTime,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime as TlsTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::{SM2SIG_SM3, TLS13_SM2_ID, TlsError};

/// The authenticated peer of a connection: what every API handler and link may rely on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// SM3 of the certificate's DER: the id the chain records certificates under.
    pub cert_id: Digest,
    /// The member's organisation (the O its CA certifies).
    pub organisation: String,
    /// Its role.
    pub role: Role,
    /// The certificate's subject.
    pub subject: String,
    /// The certificate's serial number, in hex.
    pub serial: String,
    /// The last second the certificate is valid.
    pub not_after: UnixTime,
}

impl PeerIdentity {
    /// The identity a verified leaf carries. Only called on a chain an [`Authority`] accepted:
    /// the organisation of a validated chain is its leaf's O (an agency CA certifies only its
    /// own organisation, and a root-issued leaf names the root's or a sponsored one).
    pub fn of_verified_leaf(leaf: &Certificate, organisation: String, role: Role) -> Self {
        PeerIdentity {
            cert_id: leaf.fingerprint(),
            organisation,
            role,
            subject: leaf.subject(),
            serial: leaf.serial().to_string(),
            not_after: leaf.validity().not_after,
        }
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} of {}, serial {})",
            self.subject, self.role, self.organisation, self.serial
        )
    }
}

/// Why a peer's certificate is refused; each kind has its TLS alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// No path to a consortium CA, a CA not (or no longer) registered, or revocation status
    /// unknown: `unknown_ca`.
    UnknownCa,
    /// Revoked, or suspended on the chain: `certificate_revoked`.
    Revoked,
    /// Expired or not yet valid: `certificate_expired`.
    Expired,
    /// A role this endpoint does not accept: `unsupported_certificate`.
    WrongRole,
    /// Malformed, a bad signature or any other defect: `bad_certificate`.
    BadCertificate,
    /// The verifier could not decide (state unreadable): `internal_error`; never an acceptance.
    Unavailable,
}

impl RefusalKind {
    /// The TLS alert this refusal is sent as.
    pub fn alert(self) -> rustls::AlertDescription {
        use rustls::AlertDescription as A;
        match self {
            RefusalKind::UnknownCa => A::UnknownCA,
            RefusalKind::Revoked => A::CertificateRevoked,
            RefusalKind::Expired => A::CertificateExpired,
            RefusalKind::WrongRole => A::UnsupportedCertificate,
            RefusalKind::BadCertificate => A::BadCertificate,
            RefusalKind::Unavailable => A::InternalError,
        }
    }

    fn certificate_error(self) -> rustls::Error {
        match self {
            RefusalKind::UnknownCa => CertificateError::UnknownIssuer.into(),
            RefusalKind::Revoked => CertificateError::Revoked.into(),
            RefusalKind::Expired => CertificateError::Expired.into(),
            RefusalKind::WrongRole => CertificateError::InvalidPurpose.into(),
            RefusalKind::BadCertificate => CertificateError::BadEncoding.into(),
            RefusalKind::Unavailable => rustls::Error::General(
                "the certificate could not be checked: the verifier's state is unavailable".into(),
            ),
        }
    }
}

/// A refused certificate: the kind (and so the alert) and what exactly was wrong, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The kind.
    pub kind: RefusalKind,
    /// The detail: which certificate and why.
    pub detail: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl Refusal {
    /// A refusal of `kind` with `detail`.
    pub fn new(kind: RefusalKind, detail: impl Into<String>) -> Self {
        Refusal {
            kind,
            detail: detail.into(),
        }
    }

    /// The refusal a failed chain validation is.
    pub fn of_chain(e: &ChainError) -> Self {
        let kind = match e {
            // A signature that does not verify under the CA the certificate names: no CA of
            // the consortium signed it (a look-alike CA of the same name).
            ChainError::NoPathToAnchor { .. }
            | ChainError::SignatureInvalid { .. }
            | ChainError::NameChaining { .. }
            | ChainError::NotSponsored { .. }
            | ChainError::AnchorUnusable { .. }
            | ChainError::RevocationUnknown { .. } => RefusalKind::UnknownCa,
            ChainError::Revoked { .. } => RefusalKind::Revoked,
            ChainError::Expired { .. } | ChainError::NotYetValid { .. } => RefusalKind::Expired,
            ChainError::WrongRole { .. }
            | ChainError::KeyUsage { .. }
            | ChainError::ExtendedKeyUsage { .. } => RefusalKind::WrongRole,
            _ => RefusalKind::BadCertificate,
        };
        Refusal::new(kind, e.to_string())
    }
}

/// Decides who may complete a handshake: validates a peer's chain and returns its identity.
/// The node's authority reads the consortium, registered CAs, CRLs and suspensions from the
/// chain's state at its tip; a client's is a [`StaticAuthority`].
pub trait Authority: Send + Sync + fmt::Debug {
    /// Validates `leaf` (with the `intermediates` the peer sent) at `now`.
    fn authenticate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        now: UnixTime,
    ) -> Result<PeerIdentity, Refusal>;
}

/// Trust given up front: anchors and CRLs (a client's `--ca` and `--crl` files, a test's
/// fixtures), accepting only certificates of the given roles. Revocation fails closed: every
/// certificate below an anchor needs a current CRL of its issuer.
#[derive(Debug)]
pub struct StaticAuthority {
    consortium: Consortium,
    crls: Vec<Crl>,
    roles: Vec<Role>,
}

impl StaticAuthority {
    /// Trusts `anchors` (each for its own organisation and, for a self-signed root, any
    /// organisation it certifies: a client trusting a root trusts what the root signs) with
    /// `crls`, for `roles`.
    pub fn new(
        anchors: Vec<Certificate>,
        crls: Vec<Crl>,
        roles: &[Role],
    ) -> Result<Self, TlsError> {
        if anchors.is_empty() {
            return Err(TlsError::NoAnchor);
        }
        let anchors = anchors
            .into_iter()
            .map(|c| ConsortiumAnchor {
                sponsors: if c.is_self_issued() {
                    Sponsorship::AnyOrganisation
                } else {
                    Sponsorship::Listed(Vec::new())
                },
                anchor: TrustAnchor::new(c),
            })
            .collect();
        let consortium = Consortium::new(anchors).map_err(|e| TlsError::Anchor(e.to_string()))?;
        Ok(StaticAuthority {
            consortium,
            crls,
            roles: roles.to_vec(),
        })
    }
}

/// Checks a leaf's role against `roles` before any chain work: a wrong role is refused as such
/// even when the chain is also bad, so the peer learns the more useful reason.
pub fn role_of(leaf: &Certificate, roles: &[Role]) -> Result<Role, Refusal> {
    match leaf.role() {
        Some(r) if roles.contains(&r) => Ok(r),
        Some(r) => Err(Refusal::new(
            RefusalKind::WrongRole,
            format!(
                "{} is a {r} certificate; this endpoint accepts {}",
                leaf.subject(),
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Err(Refusal::new(
            RefusalKind::WrongRole,
            format!("{} carries no gmchain role", leaf.subject()),
        )),
    }
}

impl Authority for StaticAuthority {
    fn authenticate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        now: UnixTime,
    ) -> Result<PeerIdentity, Refusal> {
        let role = role_of(leaf, &self.roles)?;
        let chain = self
            .consortium
            .validate(leaf, intermediates, &self.crls, now, role)
            .map_err(|e| Refusal::of_chain(&e))?;
        Ok(PeerIdentity::of_verified_leaf(
            leaf,
            chain.organisation().to_string(),
            role,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// rustls verifiers

fn parse(der: &CertificateDer<'_>) -> Result<Certificate, rustls::Error> {
    Certificate::from_der(der.as_ref()).map_err(|e| {
        tracing::debug!("peer certificate refused: {e}");
        rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
    })
}

fn check_chain(
    authority: &dyn Authority,
    side: &'static str,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: TlsTime,
) -> Result<PeerIdentity, rustls::Error> {
    let leaf = parse(end_entity)?;
    let inter = intermediates
        .iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    authority
        .authenticate(&leaf, &inter, UnixTime(now.as_secs()))
        .map_err(|r| {
            tracing::warn!(
                peer = %leaf.subject(),
                serial = %leaf.serial(),
                alert = ?r.kind.alert(),
                "TLS {side} certificate refused: {}",
                r.detail
            );
            r.kind.certificate_error()
        })
}

/// Verifies a TLS 1.3 CertificateVerify: `sm2sig_sm3` only, SM2 with the RFC 8998 §3.2.1 ID
/// over the leaf's key.
pub fn verify_certificate_verify(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::Unknown(SM2SIG_SM3) {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let leaf = parse(cert)?;
    let sig = Signature::from_der(dss.signature())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    let id = UserId::new(TLS13_SM2_ID.to_vec())
        .map_err(|e| rustls::Error::General(format!("RFC 8998 user ID: {e}")))?;
    crypto_sm::sm2::verify(&leaf.public_key(), &id, message, &sig).map_err(|_| {
        tracing::warn!(peer = %leaf.subject(), "TLS CertificateVerify does not verify");
        rustls::Error::InvalidCertificate(CertificateError::BadSignature)
    })?;
    Ok(HandshakeSignatureValid::assertion())
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
}

/// The server's check of client certificates: mandatory, through an [`Authority`].
#[derive(Debug)]
pub struct ClientVerifier(pub Arc<dyn Authority>);

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: TlsTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_chain(&*self.0, "client", end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_certificate_verify(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::Unknown(SM2SIG_SM3)]
    }
}

/// The client's check of the server's certificate through an [`Authority`]; the server name
/// is not checked (a node is identified by its certificate, not a DNS name).
#[derive(Debug)]
pub struct ServerVerifier(pub Arc<dyn Authority>);

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: TlsTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let identity = check_chain(&*self.0, "server", end_entity, intermediates, now)?;
        // A client that names the node (`--node-name`, a profile's `node_name`, passed as a
        // DNS-form server name) accepts only the consortium certificate with that common name:
        // another member's node at that address is refused. A client that gives only an
        // address accepts any node the consortium certifies.
        if let ServerName::DnsName(name) = server_name {
            let cn = Certificate::from_der(end_entity.as_ref())
                .ok()
                .and_then(|c| c.common_name());
            if cn.as_deref() != Some(name.as_ref()) {
                tracing::warn!(
                    expected = name.as_ref(),
                    presented = %identity.subject,
                    "TLS server certificate refused: not the node named"
                );
                return Err(CertificateError::NotValidForName.into());
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_certificate_verify(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::Unknown(SM2SIG_SM3)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{API_CLIENT_ROLES, LINK_ROLES, SERVER_ROLES};
    use crypto::Signer;
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;
    use pki::{IssueRequest, Serial, UnixTime, Validity, issue, issue_root};
    use std::sync::Arc;

    /// Issue 15 item 6: the encryption half of a person's dual pair authenticates nothing, so
    /// no TLS endpoint accepts it as an identity; the signing half is accepted where its role
    /// is listed.
    #[test]
    fn an_encryption_certificate_is_never_a_tls_identity() {
        let p = SoftwareProvider::new(Arc::new(SeededRandom::new(3)));
        let validity = Validity {
            not_before: UnixTime(1_767_225_600),
            not_after: UnixTime(1_767_225_600 + 86_400 * 365),
        };
        let ca_key = p.generate().unwrap();
        let ca = issue_root(
            "TLS Root",
            "Agency T",
            Serial::from_hex("01").unwrap(),
            validity,
            &ca_key,
        )
        .unwrap();
        let key = p.generate().unwrap();
        let leaf = |role, serial: u8| {
            issue(
                &ca,
                &ca_key,
                &IssueRequest {
                    role,
                    common_name: "alice",
                    organisation: "Agency T",
                    public_key: &key.public_key(),
                    serial: Serial::from_bytes(&[0x10, serial]).unwrap(),
                    validity,
                },
            )
            .unwrap()
        };
        for (i, role) in [
            Role::UserEnc,
            Role::AdminEnc,
            Role::AuditorEnc,
            Role::NodeEnc,
        ]
        .into_iter()
        .enumerate()
        {
            let enc = leaf(role, i as u8);
            for roles in [API_CLIENT_ROLES, LINK_ROLES, SERVER_ROLES] {
                let r = role_of(&enc, roles).unwrap_err();
                assert_eq!(r.kind, RefusalKind::WrongRole, "{role}");
                assert!(r.detail.contains(role.as_str()), "{}", r.detail);
            }
        }
        assert_eq!(
            role_of(&leaf(Role::User, 9), API_CLIENT_ROLES).unwrap(),
            Role::User
        );
    }
}
