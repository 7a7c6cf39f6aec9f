//! Building and signing transactions: the canonical `types::SignedTx`, for the chain the node
//! reports, expiring within its window.

use std::sync::Arc;

use crypto::{Digest, RandomSource, Signer, UserId};
use pki::Certificate;
use types::{Call, ChainId, Height, Sender as TxSender, SignedTx, Transaction};

use crate::SdkError;

/// Who signs: a key (any `crypto::Signer`: a token handle, a keystore key) and the certificate
/// issued for it.
#[derive(Clone)]
pub struct Sender {
    signer: Arc<dyn Signer>,
    cert: Certificate,
    registered: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("cert", &self.cert.subject())
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// The sender `cert` signing with `signer`; refuses a key that is not the certificate's.
    pub fn new(signer: Arc<dyn Signer>, cert: Certificate) -> Result<Sender, SdkError> {
        if signer.public_key() != cert.public_key() {
            return Err(SdkError::KeyMismatch {
                subject: cert.subject(),
            });
        }
        Ok(Sender {
            signer,
            cert,
            registered: false,
        })
    }

    /// With `true`, transactions carry the certificate's SM3 id instead of the certificate
    /// (it must be registered on the chain, which its first successful transaction does).
    pub fn registered(mut self, registered: bool) -> Sender {
        self.registered = registered;
        self
    }

    /// The sender's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
}

/// The call anchoring a document's SM3 digest (存证): `attestation.anchor(digest, kind,
/// metadata, pointer)`.
pub fn anchor_call(digest: &Digest, kind: &str, metadata: &str, pointer: Vec<u8>) -> Call {
    Call {
        contract: receipt::ATTESTATION_CONTRACT.into(),
        method: receipt::ATTESTATION_METHOD.into(),
        args: vec![
            digest.as_bytes().to_vec(),
            kind.as_bytes().to_vec(),
            metadata.as_bytes().to_vec(),
            pointer,
        ],
    }
}

/// A call of `method` of the contract `contract` (a built-in one or a deployed WASM contract)
/// with its arguments as bytes (`types::args` encodes typed ones).
pub fn contract_call(contract: &str, method: &str, args: Vec<Vec<u8>>) -> Call {
    Call {
        contract: contract.into(),
        method: method.into(),
        args,
    }
}

/// Builds transactions for the chain a node reports (`GetStatus`): its chain id, and an expiry
/// within its window from its tip.
#[derive(Debug, Clone)]
pub struct TxBuilder {
    chain_id: ChainId,
    tip: u64,
    window: u64,
    expiry_blocks: Option<u64>,
    fuel_limit: Option<u64>,
}

impl TxBuilder {
    /// A builder for the chain `status` describes.
    pub fn from_status(status: &api::v1::StatusResponse) -> Result<TxBuilder, SdkError> {
        let chain_id = ChainId::new(&status.chain_id).map_err(|e| SdkError::ChainId {
            chain_id: status.chain_id.clone(),
            reason: e.to_string(),
        })?;
        Ok(TxBuilder {
            chain_id,
            tip: status.height,
            window: status.expiry_window.max(1),
            expiry_blocks: None,
            fuel_limit: None,
        })
    }

    /// Expire `blocks` after the tip (clamped to 1 ..= the chain's window; `None`: the window).
    pub fn expiry_blocks(mut self, blocks: Option<u64>) -> TxBuilder {
        self.expiry_blocks = blocks;
        self
    }

    /// A fuel limit (`Some`: a version 2 transaction, as a WASM contract's call needs).
    pub fn fuel_limit(mut self, fuel: Option<u64>) -> TxBuilder {
        self.fuel_limit = fuel;
        self
    }

    /// The expiry height of the transactions this builder makes.
    pub fn expiry(&self) -> Height {
        let ahead = self
            .expiry_blocks
            .unwrap_or(self.window)
            .clamp(1, self.window);
        Height(self.tip.saturating_add(ahead))
    }

    /// The transaction of `call` by `sender`, salted with 16 bytes of `rng`, unsigned.
    pub fn transaction(
        &self,
        sender: &Sender,
        call: Call,
        rng: &dyn RandomSource,
    ) -> Result<Transaction, SdkError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt).map_err(SdkError::Salt)?;
        Ok(Transaction {
            fuel_limit: self.fuel_limit,
            chain_id: self.chain_id.clone(),
            salt,
            expiry: self.expiry(),
            sender: if sender.registered {
                TxSender::Registered(sender.cert.fingerprint())
            } else {
                TxSender::Certificate(sender.cert.der().to_vec())
            },
            call,
        })
    }

    /// The signed transaction of `call` by `sender`: SM2 with the default user ID over the
    /// transaction id, in the sender's key (its token signs a token key).
    pub fn sign(
        &self,
        sender: &Sender,
        call: Call,
        rng: &dyn RandomSource,
    ) -> Result<SignedTx, SdkError> {
        let tx = self.transaction(sender, call, rng)?;
        SignedTx::sign(tx, sender.signer.as_ref(), &UserId::default()).map_err(SdkError::Sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use types::Encode;

    fn status(window: u64) -> api::v1::StatusResponse {
        api::v1::StatusResponse {
            chain_id: "sdk-test".into(),
            height: 10,
            expiry_window: window,
            ..Default::default()
        }
    }

    #[test]
    fn expiry_is_clamped_to_the_window_and_a_bad_chain_id_is_refused() {
        let b = TxBuilder::from_status(&status(100)).unwrap();
        assert_eq!(b.expiry(), Height(110));
        assert_eq!(b.clone().expiry_blocks(Some(5)).expiry(), Height(15));
        assert_eq!(b.clone().expiry_blocks(Some(0)).expiry(), Height(11));
        assert_eq!(b.expiry_blocks(Some(1000)).expiry(), Height(110));
        // A window of 0 counts as 1.
        assert_eq!(
            TxBuilder::from_status(&status(0)).unwrap().expiry(),
            Height(11)
        );
        let mut s = status(10);
        s.chain_id = String::new();
        assert!(matches!(
            TxBuilder::from_status(&s),
            Err(SdkError::ChainId { .. })
        ));
    }

    #[test]
    fn a_signed_anchor_verifies_and_a_foreign_key_is_refused() {
        let rng = Arc::new(crypto_sm::rng::SystemRandom);
        let provider = crypto_sm::SoftwareProvider::new(rng.clone());
        let signer = Arc::new(provider.generate().unwrap());
        let validity = pki::Validity {
            not_before: pki::UnixTime(1_700_000_000),
            not_after: pki::UnixTime(1_800_000_000),
        };
        let cert = pki::issue_root(
            "SDK Test",
            "SDK Org",
            pki::Serial::from_hex("01").unwrap(),
            validity,
            signer.as_ref(),
        )
        .unwrap();
        let sender = Sender::new(signer.clone(), cert.clone()).unwrap();
        let digest = crypto_sm::sm3::sm3(b"document");
        let call = anchor_call(&digest, "document", "", Vec::new());
        let b = TxBuilder::from_status(&status(100)).unwrap();
        let signed = b.sign(&sender, call.clone(), rng.as_ref()).unwrap();
        assert_eq!(signed.tx.call, call);
        assert_eq!(signed.tx.expiry, Height(110));
        assert!(matches!(signed.tx.sender, TxSender::Certificate(_)));
        // The signature is over the transaction id, with the default user ID.
        crypto_sm::sm2::verify(
            &cert.public_key(),
            &UserId::default(),
            signed.tx_id().as_bytes(),
            &signed.signature,
        )
        .unwrap();
        assert!(!signed.to_bytes().is_empty());
        let reg = b
            .sign(&sender.clone().registered(true), call, rng.as_ref())
            .unwrap();
        assert_eq!(reg.tx.sender, TxSender::Registered(cert.fingerprint()));
        let foreign: Arc<dyn Signer> = Arc::new(provider.generate().unwrap());
        assert!(matches!(
            Sender::new(foreign, cert),
            Err(SdkError::KeyMismatch { .. })
        ));
    }
}
