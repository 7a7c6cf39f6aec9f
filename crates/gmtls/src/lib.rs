//! GM TLS 1.3 (RFC 8998) on rustls, for every channel of gmchain: the node's API, its clients,
//! and node-to-node links.
//!
//! - [`provider()`]: a rustls `CryptoProvider` offering exactly `TLS_SM4_GCM_SM3` (0x00C6),
//!   `TLS_SM4_CCM_SM3` (0x00C7), the group `curveSM2` (0x0029) and the signature scheme
//!   `sm2sig_sm3` (0x0708), with SM3, HMAC-SM3/HKDF, SM4-GCM/CCM and ECDHE from `crypto-sm`.
//!   No other algorithm can be negotiated; rustls is built without TLS 1.2, ring or aws-lc.
//! - [`Credentials`]: a certificate chain and the `crypto::Signer` of its key (a token handle, a
//!   keystore key), behind rustls's `SigningKey`. CertificateVerify is signed with the user ID
//!   `TLSv1.3+GM+Cipher+Suite` (RFC 8998 §3.2.1); certificates keep the default ID.
//! - [`Authority`]: who may connect. Both sides verify the peer's chain with the pki crate
//!   (consortium anchors, role, validity, revocation failing closed), never with webpki.
//!   Refusals map to alerts: unknown CA → `unknown_ca`, revoked or suspended →
//!   `certificate_revoked`, expired → `certificate_expired`, wrong role →
//!   `unsupported_certificate`.
//! - [`server_config`] / [`client_config`]: TLS 1.3 only, client certificates mandatory,
//!   resumption, tickets and 0-RTT off on both sides. [`link_server_config`] /
//!   [`link_client_config`]: the same for node-to-node links, `node-sign` on both ends.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
pub mod net;
mod provider;
mod sign;
mod verify;

pub use rustls;
pub use tokio_rustls;

pub use config::{
    API_CLIENT_ROLES, LINK_ROLES, OrganisationPolicy, RolePolicy, SERVER_ROLES, ServerCertificate,
    client_config, link_client_config, link_server_config, peer_identity, server_config,
};
pub use provider::{
    AEAD_SM4_CCM, AEAD_SM4_GCM, CurveSm2, KX_CURVE_SM2, Sm4AeadAlgorithm, Suite, TLS13_SM4_CCM_SM3,
    TLS13_SM4_GCM_SM3, provider, provider_with_suites,
};
pub use sign::Credentials;
pub use verify::{
    Authority, ClientVerifier, PeerIdentity, Refusal, RefusalKind, ServerVerifier, StaticAuthority,
    role_of, verify_certificate_verify,
};

/// Runs `f`, which may block (a token call, state reads), telling a multi-threaded tokio
/// runtime first so that its other tasks move to other workers; elsewhere it just runs `f`.
/// rustls calls signers and verifiers synchronously inside a handshake's poll.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// `TLS_SM4_GCM_SM3` (RFC 8998 §2).
pub const TLS_SM4_GCM_SM3: u16 = 0x00C6;
/// `TLS_SM4_CCM_SM3` (RFC 8998 §2).
pub const TLS_SM4_CCM_SM3: u16 = 0x00C7;
/// The `curveSM2` named group (RFC 8998 §3.1).
pub const CURVE_SM2: u16 = 0x0029;
/// The `sm2sig_sm3` signature scheme (RFC 8998 §3.2).
pub const SM2SIG_SM3: u16 = 0x0708;
/// The SM2 user ID of TLS 1.3 CertificateVerify (RFC 8998 §3.2.1).
pub const TLS13_SM2_ID: &[u8] = b"TLSv1.3+GM+Cipher+Suite";

/// A configuration gmtls refuses to build.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No certificate was given.
    #[error("the TLS certificate chain is empty")]
    EmptyChain,
    /// The signer does not hold the certificate's key.
    #[error(
        "the TLS key does not match the certificate {subject}: give the key the certificate was issued for"
    )]
    KeyMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// No trust anchor was given.
    #[error("no CA certificate to trust: give the consortium's root or agency CA (--ca)")]
    NoAnchor,
    /// A trust anchor is unusable.
    #[error("CA certificate unusable as a trust anchor: {0}")]
    Anchor(String),
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

impl codes::Coded for TlsError {
    fn code(&self) -> &'static codes::Code {
        match self {
            TlsError::EmptyChain | TlsError::KeyMismatch { .. } => &codes::TLS_CREDENTIALS,
            TlsError::NoAnchor | TlsError::Anchor(_) => &codes::TLS_TRUST,
            TlsError::Config(_) => &codes::TLS_CONFIG,
        }
    }
}

#[cfg(test)]
mod tests {
    /// `blocking` runs where rustls can call it without panicking: outside any runtime, on a
    /// current-thread runtime (the CLI's), on a multi-threaded runtime's worker and its
    /// `block_on` thread (the node, the tunnel), and on a `spawn_blocking` thread (the
    /// node's session recheck).
    #[test]
    fn blocking_runs_in_every_runtime_context() {
        assert_eq!(super::blocking(|| 1), 1);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { super::blocking(|| 2) }), 2);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert_eq!(multi.block_on(async { super::blocking(|| 3) }), 3);
        let on_worker =
            multi.block_on(async { tokio::spawn(async { super::blocking(|| 4) }).await });
        assert_eq!(on_worker.unwrap(), 4);
        let on_pool =
            multi.block_on(async { tokio::task::spawn_blocking(|| super::blocking(|| 5)).await });
        assert_eq!(on_pool.unwrap(), 5);
    }
}
