//! [`Hsm`]: GM/T 0009 SM2EnvelopedKey import. The enveloped encryption key is unwrapped inside
//! the token with the holder's signing key, so that its private half never exists in host
//! memory: first the envelope's SM4 key (an SM2Cipher to the holder) becomes a session
//! transport key with `mechanisms.sm2_unwrap`, then the enveloped d becomes a sensitive,
//! unextractable SM2 private key that only decrypts with `mechanisms.sm4_ecb_unwrap` (the
//! envelope's symmetric algorithm, SM4-ECB). A token whose profile names neither is refused
//! ([`HsmError::Unsupported`]): gmchain never opens an envelope in software to import it.

use super::{Hsm, KeyInfo, bool_attr};
use crate::HsmError;
use crate::ffi::{Attr, Mech, ObjectHandle, Param};
use crate::format;
use crate::pool::{Ctx, OpError};
use crate::profile::{Operation, PublicKeyAttribute, SM2_EC_PARAMS, Sm2KeyType};
use crate::uri::KeyUri;
use crypto::{CipherFormat, PublicKey};
use cryptoki_sys::*;

/// The fields of a GM/T 0009 SM2EnvelopedKey (`pki::envelope::parse` reads them).
#[derive(Clone, Copy, Debug)]
pub struct EnvelopedKey<'a> {
    /// `symEncryptedKey`: the SM2Cipher (DER) of the 16-byte SM4 key, to the holder.
    pub sym_encrypted: &'a [u8],
    /// `sm2PublicKey`: the enveloped key pair's public key.
    pub public_key: PublicKey,
    /// `sm2EncryptedPrivateKey`: d in two SM4-ECB blocks.
    pub encrypted_private_key: &'a [u8; 32],
}

impl Hsm {
    /// Imports an enveloped SM2 encryption key pair under `label` and `id`: unwrapped in the
    /// token with the holder's private key `holder` (which needs `CKA_UNWRAP`: a signing key
    /// generated with [`super::KeyUsage::SigningAndUnwrap`]), stored as a persistent private
    /// key that is sensitive, never extractable and decrypts only (no sign, no unwrap), with
    /// its public key object beside it.
    ///
    /// Before reporting success the imported key must show `expected` (the encryption
    /// certificate's key) as its public key, and must decrypt in the token a random challenge
    /// SM2-encrypted to `expected` in software; otherwise both new objects are destroyed.
    /// The session transport key is destroyed whatever happens. A wrong holder or a tampered
    /// envelope is refused by the token (C3, or d not belonging to the enveloped public key)
    /// and makes no object.
    pub fn import_envelope(
        &self,
        holder: &KeyUri,
        envelope: &EnvelopedKey<'_>,
        expected: &PublicKey,
        label: &str,
        id: &[u8],
    ) -> Result<KeyInfo, HsmError> {
        if label.is_empty() {
            return Err(HsmError::InvalidInput {
                reason: "a key label must not be empty".into(),
            });
        }
        if envelope.public_key != *expected {
            return Err(HsmError::InvalidInput {
                reason: "the envelope's sm2PublicKey is not the public key of the encryption certificate given: the envelope and the certificate are not of one dual pair".into(),
            });
        }
        let sm2_unwrap = self.mechanism(Operation::Sm2Unwrap)?;
        let ecb_unwrap = self.mechanism(Operation::Sm4EcbUnwrap)?;
        let sm2_decrypt = self.mechanism(Operation::Sm2Encrypt)?;
        let profile = &self.inner.profile;
        let sm2 = *profile.sm2();
        let sm4_type = profile
            .sm4()
            .key_type
            .ok_or_else(|| self.unsupported("SM4 keys (no [sm4] key_type)"))?;
        let unwrap_format = sm2
            .unwrap_ciphertext
            .ok_or_else(|| self.unsupported(Operation::Sm2Unwrap.description()))?;
        let decrypt_format = sm2
            .ciphertext
            .ok_or_else(|| self.unsupported("SM2 decryption"))?;
        let sym =
            format::ciphertext_to_token(envelope.sym_encrypted, CipherFormat::Der, unwrap_format)?;
        let holder_key = self.signer(holder)?;
        let holder_ref = holder_key.key_ref();
        let holder_uri = holder_key.info().uri.to_string();

        let transport = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_SECRET_KEY)),
            Attr::ulong(CKA_KEY_TYPE, sm4_type),
            Attr::bool(CKA_TOKEN, false),
            Attr::bool(CKA_PRIVATE, true),
            Attr::bool(CKA_SENSITIVE, true),
            Attr::bool(CKA_EXTRACTABLE, false),
            Attr::bool(CKA_UNWRAP, true),
            Attr::bool(CKA_WRAP, false),
            Attr::bool(CKA_ENCRYPT, false),
            Attr::bool(CKA_DECRYPT, false),
        ];
        let point_attr = sm2.public_key;
        let point = (
            point_attr.attribute() as CK_ATTRIBUTE_TYPE,
            format::encode_public_key(expected, point_attr.encoding()),
        );
        let mut private = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
            Attr::ulong(CKA_KEY_TYPE, sm2.key_type.code()),
            Attr::bool(CKA_TOKEN, true),
            Attr::bool(CKA_PRIVATE, true),
            Attr::bool(CKA_SENSITIVE, true),
            Attr::bool(CKA_EXTRACTABLE, false),
            Attr::bool(CKA_SIGN, false),
            Attr::bool(CKA_DECRYPT, true),
            Attr::bool(CKA_UNWRAP, false),
            Attr::bool(CKA_DERIVE, false),
            Attr::bytes(CKA_LABEL, label.as_bytes()),
            Attr::bytes(CKA_ID, id),
        ];
        // The enveloped public key, so that the token checks d against it inside the unwrap
        // (the soft token requires it: SM4-ECB does not authenticate). Tokens that keep the
        // point in a vendor attribute get none; the challenge below checks them.
        if matches!(
            point_attr,
            PublicKeyAttribute::EcPointDer | PublicKeyAttribute::EcPointRaw
        ) {
            private.push(Attr::bytes(point.0, &point.1));
        }
        let mut public = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_PUBLIC_KEY)),
            Attr::ulong(CKA_KEY_TYPE, sm2.key_type.code()),
            Attr::bool(CKA_TOKEN, true),
            Attr::bool(CKA_PRIVATE, false),
            Attr::bool(CKA_VERIFY, false),
            Attr::bool(CKA_ENCRYPT, true),
            Attr::bytes(CKA_LABEL, label.as_bytes()),
            Attr::bytes(CKA_ID, id),
            Attr::bytes(point.0, &point.1),
        ];
        if sm2.key_type == Sm2KeyType::Ec || sm2.keygen_ec_params {
            public.push(Attr::bytes(CKA_EC_PARAMS, &SM2_EC_PARAMS));
            if sm2.key_type == Sm2KeyType::Ec {
                private.push(Attr::bytes(CKA_EC_PARAMS, &SM2_EC_PARAMS));
            }
        }
        // The challenge: 16 random bytes from the token, SM2-encrypted to the certificate's key
        // in software.
        let challenge = self.random(16)?;
        let sealed =
            crypto_sm::sm2::encrypt(expected, &challenge, CipherFormat::C1C3C2, &self.rng())?;
        let sealed = format::ciphertext_to_token(&sealed, CipherFormat::C1C3C2, decrypt_format)?;

        let taken = self.key_uri(label, &[], crate::uri::ObjectType::Private);
        self.inner.pool.run_write("envelope import", |ctx| {
            let mut probe = self.sm2_template(CKO_PRIVATE_KEY, &taken);
            probe.retain(|a| a.ty != CKA_EC_PARAMS);
            if !ctx.raw.find_objects(ctx.handle(), &probe)?.is_empty() {
                return Err(HsmError::KeyExists {
                    label: label.to_string(),
                }
                .into());
            }
            let h = holder_ref.lookup(ctx)?;
            let unwrap = bool_attr(ctx.raw.attribute(ctx.handle(), h, CKA_UNWRAP)?);
            if unwrap != Some(true) {
                return Err(HsmError::KeyCannotUnwrap {
                    uri: holder_uri.clone(),
                }
                .into());
            }
            let holder_uri = &holder_uri;
            let refused = |step: &'static str| {
                move |c: crate::rv::CallError| -> OpError {
                    if c.is(CKR_WRAPPED_KEY_INVALID)
                        || c.is(CKR_WRAPPED_KEY_LEN_RANGE)
                        || c.is(CKR_ENCRYPTED_DATA_INVALID)
                    {
                        HsmError::EnvelopeRefused {
                            step,
                            holder: holder_uri.clone(),
                        }
                        .into()
                    } else if c.is(CKR_MECHANISM_INVALID) {
                        self.unsupported(step).into()
                    } else if c.is(CKR_KEY_FUNCTION_NOT_PERMITTED) {
                        HsmError::KeyCannotUnwrap {
                            uri: holder_uri.clone(),
                        }
                        .into()
                    } else {
                        c.into()
                    }
                }
            };
            let kt = ctx
                .raw
                .unwrap_key(
                    ctx.handle(),
                    &Mech::new(sm2_unwrap, Param::None),
                    h,
                    &sym,
                    &transport,
                )
                .map_err(refused(
                    "unwrapping the envelope's SM4 key with the holder's key",
                ))?;
            let made = ctx.raw.unwrap_key(
                ctx.handle(),
                &Mech::new(ecb_unwrap, Param::None),
                kt,
                envelope.encrypted_private_key,
                &private,
            );
            // The transport key goes whatever happened; a session object dies with its
            // session anyway, but a pooled session lives on.
            let _ = ctx.raw.destroy_object(ctx.handle(), kt);
            let d = made.map_err(refused("unwrapping the enveloped private key"))?;
            let finish = |ctx: &Ctx<'_>| -> Result<KeyInfo, OpError> {
                ctx.raw.create_object(ctx.handle(), &public)?;
                let info = self.key_info(ctx, d)?;
                check_imported(ctx, &info, expected, d, sm2_decrypt, &sealed, &challenge)?;
                Ok(info)
            };
            match finish(ctx) {
                Ok(info) => Ok(info),
                Err(e) => {
                    destroy_labelled(ctx, self, label, id);
                    Err(e)
                }
            }
        })
    }
}

/// The imported key must be what the certificate certifies: its public key object shows
/// `expected`, it decrypts, and it does not sign.
fn check_imported(
    ctx: &Ctx<'_>,
    info: &KeyInfo,
    expected: &PublicKey,
    d: ObjectHandle,
    mech: u64,
    sealed: &[u8],
    challenge: &[u8],
) -> Result<(), OpError> {
    let mismatch = |what: &str| -> OpError {
        HsmError::InvalidInput {
            reason: format!("the imported key {} {what}; it was removed", info.uri),
        }
        .into()
    };
    if info.public_key != *expected {
        return Err(mismatch(
            "does not carry the encryption certificate's public key",
        ));
    }
    if info.sign || !info.decrypt {
        return Err(mismatch("is not a decrypt-only key"));
    }
    let opened = ctx
        .raw
        .decrypt(ctx.handle(), &Mech::new(mech, Param::None), d, sealed)
        .map_err(|_| mismatch("does not decrypt what is encrypted to the certificate's key"))?;
    if opened.as_slice() != challenge {
        return Err(mismatch(
            "does not decrypt what is encrypted to the certificate's key",
        ));
    }
    Ok(())
}

/// Destroys the objects an import made (best effort: a failed import must leave nothing).
fn destroy_labelled(ctx: &Ctx<'_>, hsm: &Hsm, label: &str, id: &[u8]) {
    let uri = hsm.key_uri(label, id, crate::uri::ObjectType::Private);
    for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY] {
        let mut t = hsm.sm2_template(class, &uri);
        t.retain(|a| a.ty != CKA_EC_PARAMS);
        if let Ok(hs) = ctx.raw.find_objects(ctx.handle(), &t) {
            for h in hs {
                let _ = ctx.raw.destroy_object(ctx.handle(), h);
            }
        }
    }
}
