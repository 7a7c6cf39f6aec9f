//! GB/T 32907 (SM4) and the modes, including the RFC 8998 AEADs.

use super::{Check, Evidence, derived, each, expect_eq, expect_err};
use crypto::{CryptoError, Secret, Sm4Mode};
use crypto_sm::sm4::{self, Sm4Secret};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "sm4-block-kat",
        title: "SM4 block encryption and decryption equal Annex A.1",
        run: block,
    },
    Check {
        id: "sm4-iterated-kat",
        title: "1,000,000 iterated SM4 encryptions equal Annex A.2",
        run: iterated,
    },
    Check {
        id: "sm4-cbc-kat",
        title: "SM4-CBC equals the vectors, both directions",
        run: cbc,
    },
    Check {
        id: "sm4-ctr-kat",
        title: "SM4-CTR equals the vectors, both directions",
        run: ctr,
    },
    Check {
        id: "sm4-cbc-neg",
        title: "SM4-CBC rejects bad lengths and bad padding",
        run: cbc_neg,
    },
    Check {
        id: "sm4-gcm-kat",
        title: "SM4-GCM equals RFC 8998 Appendix A.1",
        run: gcm,
    },
    Check {
        id: "sm4-ccm-kat",
        title: "SM4-CCM equals RFC 8998 Appendix A.2",
        run: ccm,
    },
    Check {
        id: "sm4-aead-neg",
        title: "SM4-GCM/CCM release nothing when tag, AAD or ciphertext is altered",
        run: aead_neg,
    },
    Check {
        id: "sm4-aead-params",
        title: "SM4 AEADs take only 12-byte nonces and produce 16-byte tags (RFC 8998 §3.4)",
        run: aead_params,
    },
];

/// The SM4 mode functions the KAT checks exercise: crypto-sm's in every run; the tests
/// substitute a broken one to show that the check notices.
#[derive(Clone, Copy)]
struct ModeFns {
    encrypt: EncryptFn,
    decrypt: DecryptFn,
}

/// `sm4::encrypt`: key, mode, IV or nonce, AAD, plaintext.
type EncryptFn = fn(&Sm4Secret, Sm4Mode, &[u8], &[u8], &[u8]) -> Result<Vec<u8>, CryptoError>;
/// `sm4::decrypt`: key, mode, IV or nonce, AAD, ciphertext.
type DecryptFn = fn(&Sm4Secret, Sm4Mode, &[u8], &[u8], &[u8]) -> Result<Secret, CryptoError>;

const CRYPTO_SM: ModeFns = ModeFns {
    encrypt: sm4::encrypt,
    decrypt: sm4::decrypt,
};

fn key(v: &crate::vectors::Vector) -> Result<Sm4Secret, String> {
    Sm4Secret::from_slice(&v.bytes("key")?).map_err(|e| e.to_string())
}

fn block16(b: Vec<u8>) -> Result<[u8; 16], String> {
    b.try_into()
        .map_err(|_| "block is not 16 bytes".to_string())
}

fn block() -> Vec<Evidence> {
    each("sm4", "block", |v| {
        let k = key(v)?;
        let pt = block16(v.bytes("pt")?)?;
        let ct = block16(v.bytes("ct")?)?;
        expect_eq("encrypt", &sm4::encrypt_block(&k, &pt), &ct)?;
        expect_eq("decrypt", &sm4::decrypt_block(&k, &ct), &pt)
    })
}

fn iterated() -> Vec<Evidence> {
    each("sm4", "block-iterated", |v| {
        let k = key(v)?;
        let mut b = block16(v.bytes("pt")?)?;
        for _ in 0..v.int("iterations")? {
            b = sm4::encrypt_block(&k, &b);
        }
        expect_eq("after iterations", &b, &v.bytes("ct")?)
    })
}

fn mode_kat(kind: &str, mode: Sm4Mode) -> Vec<Evidence> {
    mode_kat_with(CRYPTO_SM, kind, mode)
}

fn mode_kat_with(f: ModeFns, kind: &str, mode: Sm4Mode) -> Vec<Evidence> {
    each("sm4", kind, |v| {
        let k = key(v)?;
        let iv = v.bytes(if mode.is_aead() { "nonce" } else { "iv" })?;
        let aad = if mode.is_aead() {
            v.bytes("aad")?
        } else {
            Vec::new()
        };
        let pt = v.bytes("pt")?;
        let mut want = v.bytes("ct")?;
        if mode.is_aead() {
            want.extend_from_slice(&v.bytes("tag")?);
        }
        if mode == Sm4Mode::Cbc && v.text("padding") == Some("none") {
            return cbc_unpadded(f, &k, &iv, &pt, &want);
        }
        let ct = (f.encrypt)(&k, mode, &iv, &aad, &pt).map_err(|e| e.to_string())?;
        expect_eq("ciphertext", &ct, &want)?;
        let back = (f.decrypt)(&k, mode, &iv, &aad, &want).map_err(|e| e.to_string())?;
        expect_eq("plaintext", back.expose(), &pt)
    })
}

/// An unpadded CBC vector through gmchain's CBC, which always pads (PKCS#7): encrypting must give
/// the vector's blocks followed by exactly one padding block, and decrypting the vector's blocks
/// followed by that padding block E(K, C_n ⊕ 10…10) (made with the single-block function the
/// block KAT checks) must give the plaintext back.
fn cbc_unpadded(
    f: ModeFns,
    k: &Sm4Secret,
    iv: &[u8],
    pt: &[u8],
    want: &[u8],
) -> Result<(), String> {
    let ct = (f.encrypt)(k, Sm4Mode::Cbc, iv, &[], pt).map_err(|e| e.to_string())?;
    if ct.len() != want.len() + 16 {
        return Err(format!(
            "encrypt: {} bytes for {} plaintext bytes; expected the vector's {} and one padding block",
            ct.len(),
            pt.len(),
            want.len()
        ));
    }
    expect_eq("ciphertext (vector blocks)", &ct[..want.len()], want)?;
    let last = want
        .len()
        .checked_sub(16)
        .and_then(|at| want.get(at..))
        .ok_or_else(|| "the vector's ciphertext is shorter than a block".to_string())?;
    let mut x = [0x10u8; 16];
    for (b, c) in x.iter_mut().zip(last) {
        *b ^= c;
    }
    let padding_block = sm4::encrypt_block(k, &x);
    expect_eq(
        "ciphertext (padding block)",
        &ct[want.len()..],
        &padding_block,
    )?;
    let mut padded = want.to_vec();
    padded.extend_from_slice(&padding_block);
    let back =
        (f.decrypt)(k, Sm4Mode::Cbc, iv, &[], &padded).map_err(|e| format!("decrypt: {e}"))?;
    expect_eq("plaintext (decrypted)", back.expose(), pt)
}

fn cbc() -> Vec<Evidence> {
    mode_kat("cbc", Sm4Mode::Cbc)
}

fn ctr() -> Vec<Evidence> {
    mode_kat("ctr", Sm4Mode::Ctr)
}

fn gcm() -> Vec<Evidence> {
    mode_kat("gcm", Sm4Mode::Gcm)
}

fn ccm() -> Vec<Evidence> {
    mode_kat("ccm", Sm4Mode::Ccm)
}

/// Runs `f` with a fixed test key, or reports the key's rejection as a failed case.
fn with_key(case: &str, byte: u8, f: impl FnOnce(&Sm4Secret) -> Vec<Evidence>) -> Vec<Evidence> {
    match Sm4Secret::from_slice(&[byte; 16]) {
        Ok(k) => f(&k),
        Err(e) => vec![derived(case, Err(e.to_string()))],
    }
}

fn cbc_neg() -> Vec<Evidence> {
    with_key("fixed test key", 0x42, |k| cbc_neg_with(CRYPTO_SM, k))
}

fn cbc_neg_with(f: ModeFns, k: &Sm4Secret) -> Vec<Evidence> {
    let iv = [0x24u8; 16];
    // The negative cases alter a good ciphertext; without one they would prove nothing.
    let good = match (f.encrypt)(k, Sm4Mode::Cbc, &iv, &[], b"sixteen byte msg") {
        Ok(c) if c.len() == 32 => c,
        Ok(c) => {
            return vec![derived(
                "setup: a good 2-block ciphertext",
                Err(format!("encrypt gave {} bytes, expected 32", c.len())),
            )];
        }
        Err(e) => {
            return vec![derived(
                "setup: a good 2-block ciphertext",
                Err(format!("encrypt: {e}")),
            )];
        }
    };
    let mut bad_pad = good.clone();
    bad_pad[15] ^= 0x01; // flips the last plaintext block's padding byte
    let decrypt = |data: &[u8]| (f.decrypt)(k, Sm4Mode::Cbc, &iv, &[], data);
    vec![
        derived(
            "good ciphertext decrypts (the baseline the cases alter)",
            decrypt(&good)
                .map_err(|e| e.to_string())
                .and_then(|m| expect_eq("plaintext", m.expose(), b"sixteen byte msg")),
        ),
        derived("empty ciphertext", expect_err("decrypt", decrypt(&[]))),
        derived(
            "15-byte ciphertext",
            expect_err("decrypt", decrypt(&good[..15])),
        ),
        derived(
            "padding byte altered",
            expect_err("decrypt", decrypt(&bad_pad)),
        ),
        derived(
            "IV of 12 bytes",
            expect_err(
                "encrypt",
                (f.encrypt)(k, Sm4Mode::Cbc, &iv[..12], &[], b"x"),
            ),
        ),
        derived(
            "key of 15 bytes",
            expect_err("key", Sm4Secret::from_slice(&[0; 15])),
        ),
    ]
}

fn aead_neg() -> Vec<Evidence> {
    let mut out = Vec::new();
    for (kind, mode) in [("gcm-bad-tag", Sm4Mode::Gcm), ("ccm-bad-tag", Sm4Mode::Ccm)] {
        out.extend(each("sm4", kind, |v| {
            let k = key(v)?;
            let mut data = v.bytes("ct")?;
            data.extend_from_slice(&v.bytes("tag")?);
            expect_err(
                "decrypt",
                sm4::decrypt(&k, mode, &v.bytes("nonce")?, &v.bytes("aad")?, &data),
            )
        }));
    }
    for (kind, mode) in [("gcm", Sm4Mode::Gcm), ("ccm", Sm4Mode::Ccm)] {
        out.extend(each("sm4", kind, |v| {
            let k = key(v)?;
            let nonce = v.bytes("nonce")?;
            let aad = v.bytes("aad")?;
            let mut data = v.bytes("ct")?;
            data.extend_from_slice(&v.bytes("tag")?);
            for i in [0, data.len() / 2, data.len() - 1] {
                let mut bad = data.clone();
                bad[i] ^= 0x80;
                expect_err(
                    &format!("byte {i} flipped"),
                    sm4::decrypt(&k, mode, &nonce, &aad, &bad),
                )?;
            }
            let mut bad_aad = aad.clone();
            bad_aad.push(0);
            expect_err(
                "AAD extended",
                sm4::decrypt(&k, mode, &nonce, &bad_aad, &data),
            )?;
            expect_err(
                "truncated",
                sm4::decrypt(&k, mode, &nonce, &aad, &data[..15]),
            )
        }));
    }
    out
}

fn aead_params() -> Vec<Evidence> {
    with_key("fixed test key", 0x11, aead_params_with)
}

fn aead_params_with(k: &Sm4Secret) -> Vec<Evidence> {
    let mut out = Vec::new();
    for mode in [Sm4Mode::Gcm, Sm4Mode::Ccm] {
        let name = format!("{mode:?}");
        out.push(derived(
            &format!("{name}: 16-byte nonce refused"),
            expect_err("encrypt", sm4::encrypt(k, mode, &[0; 16], &[], b"m")),
        ));
        out.push(derived(
            &format!("{name}: 8-byte nonce refused"),
            expect_err("encrypt", sm4::encrypt(k, mode, &[0; 8], &[], b"m")),
        ));
        let tag_len = sm4::encrypt(k, mode, &[0; 12], &[], b"message").map(|c| c.len() - 7);
        out.push(derived(
            &format!("{name}: tag is 16 bytes"),
            match tag_len {
                Ok(16) => Ok(()),
                other => Err(format!("tag length {other:?}")),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CBC decryption that ignores the IV (uses zeros): the first block comes out wrong.
    fn decrypt_ignoring_iv(
        k: &Sm4Secret,
        mode: Sm4Mode,
        _iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Secret, CryptoError> {
        sm4::decrypt(k, mode, &[0; 16], aad, data)
    }

    fn encrypt_failing(
        _: &Sm4Secret,
        _: Sm4Mode,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::InvalidInput { reason: "broken" })
    }

    #[test]
    fn cbc_negatives_fail_when_their_good_ciphertext_cannot_be_made() {
        let k = Sm4Secret::from_slice(&[0x42; 16]).unwrap();
        let broken = ModeFns {
            encrypt: encrypt_failing,
            decrypt: sm4::decrypt,
        };
        let out = cbc_neg_with(broken, &k);
        assert!(
            out.iter().any(|e| !e.pass),
            "every case passed without a good ciphertext: {out:?}"
        );
        assert!(cbc_neg().iter().all(|e| e.pass), "{:?}", cbc_neg());
    }

    #[test]
    fn every_cbc_vector_passes_both_directions() {
        let out = cbc();
        assert!(out.len() >= 9, "{} CBC vectors", out.len());
        for e in &out {
            assert!(e.pass, "{}: {}", e.case, e.detail);
        }
    }

    /// The audit's finding: the unpadded CBC vectors were only encrypted, so the check titled
    /// "both directions" passed them with any decryption. Every vector must now catch a
    /// broken decrypt.
    #[test]
    fn every_cbc_vector_catches_a_broken_decrypt() {
        let broken = ModeFns {
            encrypt: sm4::encrypt,
            decrypt: decrypt_ignoring_iv,
        };
        let out = mode_kat_with(broken, "cbc", Sm4Mode::Cbc);
        assert!(!out.is_empty());
        let missed: Vec<&str> = out
            .iter()
            .filter(|e| e.pass)
            .map(|e| e.case.as_str())
            .collect();
        assert!(
            missed.is_empty(),
            "cases that passed with a decrypt that ignores the IV: {missed:?}"
        );
    }
}
