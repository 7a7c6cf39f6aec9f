//! GB/T 32907 (SM4) and the modes, including the RFC 8998 AEADs.

use super::{Check, Evidence, derived, each, expect_eq, expect_err};
use crypto::Sm4Mode;
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
            // The vector is unpadded: compare the full blocks; our CBC always adds PKCS#7.
            let ct = sm4::encrypt(&k, mode, &iv, &aad, &pt).map_err(|e| e.to_string())?;
            return expect_eq(
                "ciphertext (first blocks)",
                &ct[..want.len().min(ct.len())],
                &want,
            );
        }
        let ct = sm4::encrypt(&k, mode, &iv, &aad, &pt).map_err(|e| e.to_string())?;
        expect_eq("ciphertext", &ct, &want)?;
        let back = sm4::decrypt(&k, mode, &iv, &aad, &want).map_err(|e| e.to_string())?;
        expect_eq("plaintext", back.expose(), &pt)
    })
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
    with_key("fixed test key", 0x42, cbc_neg_with)
}

fn cbc_neg_with(k: &Sm4Secret) -> Vec<Evidence> {
    let iv = [0x24u8; 16];
    let good = sm4::encrypt(k, Sm4Mode::Cbc, &iv, &[], b"sixteen byte msg").unwrap_or_default();
    let mut bad_pad = good.clone();
    if let Some(b) = bad_pad.get_mut(good.len().saturating_sub(17)) {
        *b ^= 0x01; // flips the last plaintext block's padding byte
    }
    vec![
        derived(
            "empty ciphertext",
            expect_err("decrypt", sm4::decrypt(k, Sm4Mode::Cbc, &iv, &[], &[])),
        ),
        derived(
            "15-byte ciphertext",
            expect_err(
                "decrypt",
                sm4::decrypt(k, Sm4Mode::Cbc, &iv, &[], &good[..15]),
            ),
        ),
        derived(
            "padding byte altered",
            expect_err("decrypt", sm4::decrypt(k, Sm4Mode::Cbc, &iv, &[], &bad_pad)),
        ),
        derived(
            "IV of 12 bytes",
            expect_err(
                "encrypt",
                sm4::encrypt(k, Sm4Mode::Cbc, &iv[..12], &[], b"x"),
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
