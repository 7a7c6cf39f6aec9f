//! The block seal: the proposer's SM2 signature over a block hash. A single-node chain seals
//! each block with its validator key; the BFT issue replaces the seal with a quorum
//! certificate of the same shape per validator.

use crate::codec::{Decode, DecodeError, DecodeReason, Encode, Limits, Reader, Writer, tag};
use crate::error::TxError;
use crate::primitives::{BlockHash, crypto_field};
use crate::tx::MAX_SIGNATURE_DER_LEN;
use crypto::{Digest, PublicKey, Signature, Signer, UserId};

/// The domain tag in front of the block hash in the signed message.
pub const SEAL_DOMAIN: &[u8] = b"GMCHAIN-SEAL-V1\0";

/// A validator's signature over a block hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSeal {
    /// The sealed block's hash.
    pub block_hash: BlockHash,
    /// SM3 of the signing validator's certificate DER (the header's `proposer`).
    pub signer: Digest,
    /// SM2 signature (default user ID) over `SEAL_DOMAIN ‖ block_hash`.
    pub signature: Signature,
}

impl BlockSeal {
    /// The message a validator signs for `hash`.
    pub fn message(hash: &BlockHash) -> Vec<u8> {
        let mut m = Vec::with_capacity(SEAL_DOMAIN.len() + 32);
        m.extend_from_slice(SEAL_DOMAIN);
        m.extend_from_slice(hash.as_bytes());
        m
    }

    /// Seals `block_hash` with `signer` (the validator key, normally in the HSM).
    pub fn sign(
        block_hash: BlockHash,
        signer_id: Digest,
        signer: &dyn Signer,
    ) -> Result<Self, crypto::CryptoError> {
        let signature = signer.sign(&UserId::default(), &Self::message(&block_hash))?;
        Ok(Self {
            block_hash,
            signer: signer_id,
            signature,
        })
    }

    /// Verifies the signature with the validator's public key.
    pub fn verify(&self, public_key: &PublicKey) -> Result<(), TxError> {
        crypto_sm::sm2::verify(
            public_key,
            &UserId::default(),
            &Self::message(&self.block_hash),
            &self.signature,
        )
        .map_err(TxError::SignatureInvalid)
    }
}

impl Encode for BlockSeal {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::BLOCK_SEAL);
        w.fixed(self.block_hash.as_bytes());
        w.fixed(self.signer.as_bytes());
        w.bytes(&self.signature.to_der());
    }
}

impl Decode for BlockSeal {
    fn decode_from(r: &mut Reader<'_>, _limits: &Limits) -> Result<Self, DecodeError> {
        r.header("seal.header", tag::BLOCK_SEAL)?;
        let block_hash = BlockHash(Digest(r.array("seal.block_hash")?));
        let signer = Digest(r.array("seal.signer")?);
        let der = r.bytes("seal.signature", MAX_SIGNATURE_DER_LEN)?;
        let signature = Signature::from_der(der).map_err(|e| crypto_field("seal.signature", e))?;
        if signature.to_der() != der {
            return Err(DecodeError::new(
                "seal.signature",
                DecodeReason::InvalidText {
                    expected: "strict DER SM2Signature",
                },
            ));
        }
        Ok(Self {
            block_hash,
            signer,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Decode;
    use crypto_sm::SoftwareProvider;
    use crypto_sm::rng::SeededRandom;
    use crypto_sm::sm2::PrivateKey;
    use std::sync::Arc;

    fn signer(b: u8) -> crypto_sm::SoftSigner {
        SoftwareProvider::new(Arc::new(SeededRandom::new(3)))
            .signer(PrivateKey::from_bytes(&[b; 32]).unwrap())
    }

    #[test]
    fn seal_signs_verifies_and_round_trips() {
        let s = signer(0x31);
        let hash = BlockHash(Digest([0xab; 32]));
        let seal = BlockSeal::sign(hash, Digest([0x22; 32]), &s).unwrap();
        seal.verify(&crypto::Signer::public_key(&s)).unwrap();
        // Another key, another hash: refused.
        assert!(
            seal.verify(&crypto::Signer::public_key(&signer(0x32)))
                .is_err()
        );
        let mut other = seal.clone();
        other.block_hash = BlockHash(Digest([0xac; 32]));
        assert!(other.verify(&crypto::Signer::public_key(&s)).is_err());
        // The signed message is the domain tag and the hash, nothing else.
        let msg = BlockSeal::message(&hash);
        assert_eq!(&msg[..SEAL_DOMAIN.len()], SEAL_DOMAIN);
        assert_eq!(&msg[SEAL_DOMAIN.len()..], hash.as_bytes());
        let bytes = seal.to_bytes();
        assert_eq!(&bytes[..2], &[0x01, crate::codec::tag::BLOCK_SEAL]);
        let back = BlockSeal::from_bytes(&bytes, &Limits::default()).unwrap();
        assert_eq!(back, seal);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(BlockSeal::from_bytes(&trailing, &Limits::default()).is_err());
        assert!(BlockSeal::from_bytes(&bytes[..bytes.len() - 1], &Limits::default()).is_err());
    }
}
