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
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A client offering no RFC 8998 suite gets the certificate here so that rustls goes on
        // to its suite choice and refuses with handshake_failure (no common suite), in clear;
        // declining here would send access_denied. rustls passes only the signature schemes
        // usable with the common suites, so for such a client the list is empty anyway.
        let gm_suite = hello
            .cipher_suites()
            .iter()
            .any(|s| crate::Suite::from_rustls(*s).is_some());
        // A client offering an RFC 8998 suite gets a certificate only if it accepts
        // sm2sig_sm3 (the others get access_denied before the ServerHello).
        (!gm_suite
            || hello
                .signature_schemes()
                .contains(&SignatureScheme::Unknown(SM2SIG_SM3)))
        .then(|| self.current())
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
