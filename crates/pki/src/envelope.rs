//! GM/T 0009 `SM2EnvelopedKey`: an SM2 key pair delivered under the holder's public key. For
//! dual certificates (TLCP) the CA generates the encryption key pair and sends its private key
//! this way to the holder of the signing key.
//!
//! ```text
//! SM2EnvelopedKey ::= SEQUENCE {
//!     symAlgID               AlgorithmIdentifier,  -- SM4-ECB 1.2.156.10197.1.104.1, NULL
//!     symEncryptedKey        SM2Cipher,            -- the 16-byte SM4 key, SM2-encrypted to the holder
//!     sm2PublicKey           SM2PublicKey,         -- BIT STRING 04 ‖ x ‖ y of the enveloped pair
//!     sm2EncryptedPrivateKey BIT STRING            -- the 32-byte d, SM4-ECB under that key, no padding
//! }
//! ```
//! The structure is GM/T 0009-2012 §7.4 as public implementations reproduce it (GB/T 35276-2017;
//! emmansun/gmsm `MarshalEnvelopedPrivateKey`, BouncyCastle-based Sm2EnvelopedKey classes):
//! SM4-ECB with NULL parameters, d as exactly two blocks. GmSSL 3 has no parser for it, so the
//! interop test builds and opens envelopes from GmSSL's primitives instead.

use crate::PkiError;
use crate::der_util::enc;
use crypto::{CipherFormat, Decrypter, PublicKey, RandomSource};
use crypto_sm::sm2::PrivateKey;
use crypto_sm::sm4::{Sm4Secret, decrypt_block, encrypt_block};
use der::asn1::{BitString, Null, ObjectIdentifier};
use der::{Decode, Encode, Reader, SliceReader, Tagged};
use x509_cert::spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

/// SM4 in ECB mode (GM/T 0006: sm4 1.2.156.10197.1.104, ECB arc .1).
pub const OID_SM4_ECB: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.104.1");

/// No envelope is larger than this (about 250 bytes in practice).
const MAX_ENVELOPE_LEN: usize = 1024;

fn err(reason: &'static str) -> PkiError {
    PkiError::Envelope { reason }
}

fn ecb(key: &Sm4Secret, data: &[u8; 32], encrypt: bool) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    for i in 0..2 {
        let mut block = Zeroizing::new([0u8; 16]);
        block.copy_from_slice(&data[16 * i..16 * (i + 1)]);
        let b = if encrypt {
            encrypt_block(key, &block)
        } else {
            decrypt_block(key, &block)
        };
        out[16 * i..16 * (i + 1)].copy_from_slice(&b);
    }
    out
}

/// Seals the key pair (`enc_key_d`, `enc_pub`) to `holder`: a fresh SM4 key encrypts d
/// (SM4-ECB, two blocks), and SM2 encrypts the SM4 key to `holder`. Refuses a d outside
/// [1, n−2], a d whose public key is not `enc_pub`, and an invalid holder key.
pub fn seal(
    enc_key_d: &[u8; 32],
    enc_pub: &PublicKey,
    holder: &PublicKey,
    rng: &dyn RandomSource,
) -> Result<Vec<u8>, PkiError> {
    let key = PrivateKey::from_bytes(enc_key_d)?;
    if key.public_key() != *enc_pub {
        return Err(err(
            "the private key does not belong to the enveloped public key",
        ));
    }
    let mut sym = Zeroizing::new([0u8; 16]);
    rng.fill(&mut sym[..])?;
    let sm4 = Sm4Secret::from_slice(&sym[..])?;
    let sym_encrypted = crypto_sm::sm2::encrypt(holder, &sym[..], CipherFormat::Der, rng)?;
    let d_encrypted = ecb(&sm4, enc_key_d, true);
    let alg = AlgorithmIdentifierOwned {
        oid: OID_SM4_ECB,
        parameters: Some(der::Any::encode_from(&Null).map_err(enc)?),
    };
    Ok(crypto::gmt0009::der_sequence(&[
        alg.to_der().map_err(enc)?,
        sym_encrypted,
        BitString::from_bytes(enc_pub.as_bytes())
            .and_then(|b| b.to_der())
            .map_err(enc)?,
        BitString::from_bytes(&d_encrypted[..])
            .and_then(|b| b.to_der())
            .map_err(enc)?,
    ]))
}

/// The fields of an SM2EnvelopedKey, checked for form but not opened: what a token needs to
/// unwrap the enveloped key itself (`gmchain keys import-envelope`), so that the private key
/// never exists in host memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeParts {
    /// `symEncryptedKey`: the GM/T 0009 SM2Cipher (DER) of the 16-byte SM4 key, to the holder.
    pub sym_encrypted: Vec<u8>,
    /// `sm2PublicKey`: the enveloped key pair's public key (a point of sm2p256v1).
    pub public_key: PublicKey,
    /// `sm2EncryptedPrivateKey`: d, two SM4-ECB blocks under the SM4 key.
    pub encrypted_private_key: [u8; 32],
}

/// Parses an SM2EnvelopedKey without opening it: DER, at most 1 KiB, no trailing bytes,
/// symAlgID SM4-ECB with absent or NULL parameters, an uncompressed point of sm2p256v1, a
/// 32-byte encrypted d. Nothing here needs a key.
pub fn parse(der: &[u8]) -> Result<EnvelopeParts, PkiError> {
    if der.len() > MAX_ENVELOPE_LEN {
        return Err(err("larger than any SM2EnvelopedKey"));
    }
    let malformed = |_| {
        err(
            "not a DER SM2EnvelopedKey SEQUENCE { AlgorithmIdentifier, SM2Cipher, BIT STRING, BIT STRING }",
        )
    };
    let mut reader = SliceReader::new(der).map_err(malformed)?;
    let (alg, sym_encrypted, public, private) = reader
        .sequence(|seq| {
            let alg = AlgorithmIdentifierOwned::decode(seq)?;
            let cipher = seq.tlv_bytes()?;
            let public = BitString::decode(seq)?;
            let private = BitString::decode(seq)?;
            Ok::<_, der::Error>((alg, cipher, public, private))
        })
        .map_err(malformed)?;
    reader
        .finish()
        .map_err(|_| err("trailing bytes after SM2EnvelopedKey"))?;
    if alg.oid != OID_SM4_ECB {
        return Err(err("symAlgID is not SM4-ECB (1.2.156.10197.1.104.1)"));
    }
    if let Some(p) = &alg.parameters
        && (p.tag() != der::Tag::Null || !p.value().is_empty())
    {
        return Err(err("SM4-ECB parameters must be absent or NULL"));
    }
    let public = public
        .as_bytes()
        .ok_or(err("sm2PublicKey has unused bits"))?;
    if public.len() != 65 || public[0] != 0x04 {
        return Err(err("sm2PublicKey is not an uncompressed point 04 ‖ x ‖ y"));
    }
    let public_key = crypto_sm::sm2::parse_public_key(public)
        .map_err(|_| err("sm2PublicKey is not a point of sm2p256v1"))?;
    let encrypted_private_key: [u8; 32] = private
        .as_bytes()
        .ok_or(err("sm2EncryptedPrivateKey has unused bits"))?
        .try_into()
        .map_err(|_| err("sm2EncryptedPrivateKey is not 32 bytes (d in two SM4 blocks)"))?;
    Ok(EnvelopeParts {
        sym_encrypted: sym_encrypted.to_vec(),
        public_key,
        encrypted_private_key,
    })
}

/// Opens an envelope with the holder's decryption key (which may live in a token): returns the
/// enveloped private key, after checking that it belongs to the enveloped public key.
pub fn open(der: &[u8], holder: &dyn Decrypter) -> Result<PrivateKey, PkiError> {
    let parts = parse(der)?;
    let sym = holder
        .decrypt(&parts.sym_encrypted, CipherFormat::Der)
        .map_err(|_| err("symEncryptedKey does not decrypt with the holder's key"))?;
    let sm4 = Sm4Secret::from_slice(sym.expose())
        .map_err(|_| err("symEncryptedKey does not hold a 16-byte SM4 key"))?;
    let d = ecb(&sm4, &parts.encrypted_private_key, false);
    let key = PrivateKey::from_bytes(&d[..])
        .map_err(|_| err("the decrypted private key is out of range (wrong key or tampered)"))?;
    if key.public_key() != parts.public_key {
        return Err(err(
            "the decrypted private key does not belong to sm2PublicKey (wrong key or tampered)",
        ));
    }
    Ok(key)
}
