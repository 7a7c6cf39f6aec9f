//! Operations that destroy SM2's security when misused: they take the secret nonce from the
//! caller. They exist only so the worked examples of GB/T 32918.5 (which print k, r_A, r_B) can
//! be reproduced bit for bit by the conformance suite. Nothing else in gmchain calls them.

use crate::sm2::{self, EphemeralKey, PrivateKey};
use crypto::{CryptoError, PublicKey, Signature, UserId};

/// Signs with the given k (GB/T 32918.2 §6.1 with A3 replaced by the caller's k).
pub fn sign_with_k(
    key: &PrivateKey,
    id: &UserId,
    msg: &[u8],
    k: &[u8; 32],
) -> Result<Signature, CryptoError> {
    let e = sm2::message_digest(id, &key.public_key(), msg);
    sm2::sign_with_k(key, &e, k)
}

/// Encrypts with the given k (GB/T 32918.4 §6.1 with A1 replaced by the caller's k); C1‖C3‖C2.
pub fn encrypt_with_k(to: &PublicKey, msg: &[u8], k: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
    sm2::encrypt_with_k(to, msg, k)
}

/// Builds the ephemeral key of the key exchange from a given r (GB/T 32918.3 §6.1 A1/B1).
pub fn ephemeral_key(r: &[u8; 32]) -> Result<EphemeralKey, CryptoError> {
    EphemeralKey::from_bytes(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbt32918_5_annex_a_signature() {
        // GB/T 32918.5-2017 Annex A (sm2p256v1): message "message digest", default ID.
        let d = hex::decode("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
            .unwrap();
        let key = PrivateKey::from_bytes(&d).unwrap();
        let k: [u8; 32] =
            hex::decode("59276e27d506861a16680f3ad9c02dccef3cc1fa3cdbe4ce6d54b80deac1bc21")
                .unwrap()
                .try_into()
                .unwrap();
        let sig = sign_with_k(&key, &UserId::default(), b"message digest", &k).unwrap();
        assert_eq!(
            hex::encode(sig.r()),
            "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
        );
        assert_eq!(
            hex::encode(sig.s()),
            "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
        );
        sm2::verify(
            &key.public_key(),
            &UserId::default(),
            b"message digest",
            &sig,
        )
        .unwrap();
    }
}
