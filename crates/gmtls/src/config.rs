//! Server and client configurations: TLS 1.3 only, the GM provider only, mutual authentication
//! always, and no session resumption or 0-RTT on either side: a resumed TLS 1.3 session skips
//! the client certificate and so its revocation check, and early data can be replayed.

use std::sync::{Arc, RwLock};

use pki::{Certificate, Role};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};

use crate::verify::{ClientVerifier, ServerVerifier};
use crate::{Authority, Credentials, PeerIdentity, SM2SIG_SM3, TlsError};

/// The roles a node accepts on a node-to-node link.
pub const LINK_ROLES: &[Role] = &[Role::NodeSign];
/// The roles a node's API accepts from clients.
pub const API_CLIENT_ROLES: &[Role] = &[Role::User, Role::Admin, Role::Auditor];
/// The role a client accepts from the node it calls.
pub const SERVER_ROLES: &[Role] = &[Role::NodeSign];

/// The certificate a server presents, replaceable while it runs (a renewed certificate takes
/// effect for the next handshake; live connections keep theirs).
#[derive(Debug)]
pub struct ServerCertificate(RwLock<Arc<CertifiedKey>>, RwLock<Certificate>);

impl ServerCertificate {
    /// Presents `creds`.
    pub fn new(creds: &Credentials) -> Arc<Self> {
        Arc::new(ServerCertificate(
            RwLock::new(creds.certified_key()),
            RwLock::new(creds.leaf().clone()),
        ))
    }

    /// Presents `creds` from the next handshake on.
    pub fn replace(&self, creds: &Credentials) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = creds.certified_key();
        *self.1.write().unwrap_or_else(|e| e.into_inner()) = creds.leaf().clone();
    }

    /// Returns the leaf certificate presented now.
    pub fn leaf(&self) -> Certificate {
        self.1.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Always the certificate, whatever the client offers: rustls resolves it before
        // choosing the suite and group and answers `None` with access_denied, so a non-GM
        // offer (whose signature schemes rustls empties when no suite is in common) must get
        // this far to be refused as what it is, handshake_failure (no common suite or group,
        // or, at CertificateVerify, no sm2sig_sm3: the key signs with nothing else).
        Some(self.current())
    }
}

/// The server side: presents `certificate`, requires a client certificate that `clients`
/// accepts.
pub fn server_config(
    certificate: Arc<ServerCertificate>,
    clients: Arc<dyn Authority>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(ClientVerifier(clients)))
        .with_cert_resolver(certificate);
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// A client certificate, fixed for the client's life.
#[derive(Debug)]
struct ClientCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::Unknown(SM2SIG_SM3))
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The client side: presents `creds`, accepts a server that `servers` accepts.
pub fn client_config(
    creds: &Credentials,
    servers: Arc<dyn Authority>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier(servers)))
        .with_client_cert_resolver(Arc::new(ClientCertificate(creds.certified_key())));
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(Arc::new(config))
}

/// The identity of the peer of a finished handshake, from the leaf its verifier accepted.
pub fn peer_identity(conn: &rustls::CommonState) -> Option<PeerIdentity> {
    let der = conn.peer_certificates()?.first()?;
    let leaf = Certificate::from_der(der.as_ref()).ok()?;
    let role = leaf.role()?;
    let organisation = leaf.organisation()?;
    Some(PeerIdentity::of_verified_leaf(&leaf, organisation, role))
}

/// Accepts only what `inner` accepts and only certificates of `roles`: a listener's role
/// policy on top of any authority (the node's chain authority accepts every member).
#[derive(Debug)]
pub struct RolePolicy {
    inner: Arc<dyn Authority>,
    roles: &'static [Role],
}

impl RolePolicy {
    /// `inner`, restricted to `roles`.
    pub fn new(inner: Arc<dyn Authority>, roles: &'static [Role]) -> Arc<Self> {
        Arc::new(RolePolicy { inner, roles })
    }
}

impl Authority for RolePolicy {
    fn authenticate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        now: pki::UnixTime,
    ) -> Result<PeerIdentity, crate::Refusal> {
        crate::role_of(leaf, self.roles)?;
        self.inner.authenticate(leaf, intermediates, now)
    }
}

/// Accepts only what `inner` accepts and only members of `organisation`: a client that names
/// its node binds the node's organisation too, since a CN is unique only within an
/// organisation (any member's CA may issue a node-sign certificate named `node-1`).
#[derive(Debug)]
pub struct OrganisationPolicy {
    inner: Arc<dyn Authority>,
    organisation: String,
}

impl OrganisationPolicy {
    /// `inner`, restricted to members of `organisation`.
    pub fn new(inner: Arc<dyn Authority>, organisation: impl Into<String>) -> Arc<Self> {
        Arc::new(OrganisationPolicy {
            inner,
            organisation: organisation.into(),
        })
    }
}

impl Authority for OrganisationPolicy {
    fn authenticate(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        now: pki::UnixTime,
    ) -> Result<PeerIdentity, crate::Refusal> {
        let id = self.inner.authenticate(leaf, intermediates, now)?;
        if id.organisation != self.organisation {
            return Err(crate::Refusal::new(
                crate::RefusalKind::BadCertificate,
                format!(
                    "{} is a member of {:?}, not of {:?} as named",
                    id.subject, id.organisation, self.organisation
                ),
            ));
        }
        Ok(id)
    }
}

/// The server side of a node-to-node link: presents the node's `node-sign` certificate and
/// accepts only peers with a `node-sign` certificate that `peers` accepts.
pub fn link_server_config(
    certificate: Arc<ServerCertificate>,
    peers: Arc<dyn Authority>,
) -> Result<Arc<ServerConfig>, TlsError> {
    check_link_role(&certificate.leaf())?;
    server_config(
        certificate,
        RolePolicy::new(peers, LINK_ROLES),
        crate::provider(),
    )
}

/// The client side of a node-to-node link: presents `creds` (a `node-sign` certificate) and
/// accepts only a peer node with a `node-sign` certificate that `peers` accepts.
pub fn link_client_config(
    creds: &Credentials,
    peers: Arc<dyn Authority>,
) -> Result<Arc<ClientConfig>, TlsError> {
    check_link_role(creds.leaf())?;
    client_config(creds, RolePolicy::new(peers, LINK_ROLES), crate::provider())
}

fn check_link_role(leaf: &Certificate) -> Result<(), TlsError> {
    match leaf.role() {
        Some(Role::NodeSign) => Ok(()),
        other => Err(TlsError::Config(format!(
            "a node link presents a node-sign certificate; {} is {}",
            leaf.subject(),
            other.map(|r| r.as_str()).unwrap_or("of no gmchain role")
        ))),
    }
}
