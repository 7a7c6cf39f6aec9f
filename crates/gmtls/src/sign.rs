//! The TLS identity: a certificate chain and the `crypto::Signer` of its leaf's key, behind
//! rustls's `SigningKey`. The signer is a token handle (PKCS#11), a keystore key or a software
//! key; CertificateVerify is signed with the RFC 8998 §3.2.1 user ID, so the private key never
//! leaves where it lives.

use std::fmt;
use std::sync::Arc;

use crypto::UserId;
use pki::Certificate;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer as TlsSigner, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::{SM2SIG_SM3, TLS13_SM2_ID, TlsError};

/// A certificate chain (leaf first, then the CAs a peer may need, anchor excluded) and the
/// signer of the leaf's key.
#[derive(Clone)]
pub struct Credentials {
    chain: Vec<Certificate>,
    signer: Arc<dyn crypto::Signer>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("leaf", &self.chain.first().map(|c| c.subject()))
            .field("chain_len", &self.chain.len())
            .finish()
    }
}

impl Credentials {
    /// Checks that the chain is not empty and that the signer holds the leaf's key (a
    /// mismatch would only show as every peer refusing the handshake).
    pub fn new(chain: Vec<Certificate>, signer: Arc<dyn crypto::Signer>) -> Result<Self, TlsError> {
        let leaf = chain.first().ok_or(TlsError::EmptyChain)?;
        if leaf.public_key() != signer.public_key() {
            return Err(TlsError::KeyMismatch {
                subject: leaf.subject(),
            });
        }
        Ok(Credentials { chain, signer })
    }

    /// Returns the leaf certificate.
    pub fn leaf(&self) -> &Certificate {
        &self.chain[0]
    }

    /// Returns the signer of the leaf's key.
    pub fn signer(&self) -> Arc<dyn crypto::Signer> {
        self.signer.clone()
    }

    /// Returns the chain, leaf first.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// Returns the rustls form: the DER chain and a signing key over the signer.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        let chain = self
            .chain
            .iter()
            .map(|c| CertificateDer::from(c.der().to_vec()))
            .collect();
        Arc::new(CertifiedKey::new(
            chain,
            Arc::new(Sm2SigningKey(self.signer.clone())),
        ))
    }
}

/// An SM2 key as rustls's signing key: it signs with `sm2sig_sm3` only.
struct Sm2SigningKey(Arc<dyn crypto::Signer>);

impl fmt::Debug for Sm2SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm2SigningKey({:?})", self.0.public_key())
    }
}

impl SigningKey for Sm2SigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn TlsSigner>> {
        offered
            .contains(&SignatureScheme::Unknown(SM2SIG_SM3))
            .then(|| Box::new(Sm2TlsSigner(self.0.clone())) as Box<dyn TlsSigner>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        // No SignatureAlgorithm value names SM2; rustls uses this only for TLS 1.2 suites,
        // which gmtls never offers.
        SignatureAlgorithm::Unknown(0x08)
    }
}

struct Sm2TlsSigner(Arc<dyn crypto::Signer>);

impl fmt::Debug for Sm2TlsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm2TlsSigner({:?})", self.0.public_key())
    }
}

impl TlsSigner for Sm2TlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let id = UserId::new(TLS13_SM2_ID.to_vec())
            .map_err(|e| rustls::Error::General(format!("RFC 8998 user ID: {e}")))?;
        let sig = crate::blocking(|| self.0.sign(&id, message)).map_err(|e| {
            // A token that fails here (gone, logged out) fails the handshake; say why in the
            // node's log, the peer only sees an internal_error alert.
            tracing::warn!("TLS CertificateVerify could not be signed: {e}");
            rustls::Error::General(format!("CertificateVerify could not be signed: {e}"))
        })?;
        // RFC 8998 §3.2.1 / GM/T 0009: the signature is the DER SM2Signature.
        Ok(sig.to_der())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Unknown(SM2SIG_SM3)
    }
}
