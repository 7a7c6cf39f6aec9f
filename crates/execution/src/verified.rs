//! The admitted transaction: [`VerifiedTx`], which admission makes and the executor requires.
//!
//! Its fields are private and its only constructor is crate-private; within the crate, only
//! `admission` calls it (the test `only_admission_constructs_a_verified_tx` reads the sources
//! and holds every other module to that).

use std::sync::Arc;

use crate::context::SignerInfo;
use pki::{Certificate, Crl, Role};
use types::{Height, SignedTx, TxId};

/// A validated certificate path: leaf first, the founding CA (trust anchor) last.
#[derive(Debug)]
pub(crate) struct CheckedChain {
    pub(crate) path: Vec<Certificate>,
    pub(crate) organisation: String,
    pub(crate) role: Role,
}

/// A transaction that passed admission. Only admission constructs one; the executor takes
/// nothing else.
#[derive(Clone, Debug)]
pub struct VerifiedTx {
    signed: SignedTx,
    id: TxId,
    encoded_len: usize,
    signer: SignerInfo,
    chain: Arc<CheckedChain>,
    /// The CA and CRL the call introduced (`Contract::introduced_ca`), which cover the signer.
    pending: Option<(Certificate, Crl)>,
}

impl VerifiedTx {
    /// Returns an admitted transaction. Only admission calls it.
    pub(crate) fn new(
        signed: SignedTx,
        id: TxId,
        encoded_len: usize,
        signer: SignerInfo,
        chain: Arc<CheckedChain>,
        pending: Option<(Certificate, Crl)>,
    ) -> Self {
        VerifiedTx {
            signed,
            id,
            encoded_len,
            signer,
            chain,
            pending,
        }
    }

    /// Returns the signed transaction.
    pub fn signed(&self) -> &SignedTx {
        &self.signed
    }

    /// Returns the transaction ID.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// Returns the length of the encoding that was admitted.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// Returns the signer.
    pub fn signer(&self) -> &SignerInfo {
        &self.signer
    }

    /// Returns the expiry height.
    pub fn expiry(&self) -> Height {
        self.signed.tx.expiry
    }

    /// Returns the signer's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.chain.path[0]
    }

    /// Returns the validated path of the signer's certificate.
    pub(crate) fn chain(&self) -> &CheckedChain {
        &self.chain
    }

    /// Returns the CA and CRL the call introduced, if any.
    pub(crate) fn pending(&self) -> Option<&(Certificate, Crl)> {
        self.pending.as_ref()
    }
}
