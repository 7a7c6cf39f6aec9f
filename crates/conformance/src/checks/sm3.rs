//! GB/T 32905 (SM3), HMAC-SM3, and the KDF of GB/T 32918.4 §5.4.3.

use super::{Check, Evidence, derived, each, expect_eq};
use crypto_sm::sm3;

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "sm3-digest-kat",
        title: "SM3 digests equal the Annex A examples and boundary-length vectors",
        run: digest,
    },
    Check {
        id: "sm3-incremental",
        title: "Incremental SM3 over any split equals one-shot SM3",
        run: incremental,
    },
    Check {
        id: "sm3-hmac-kat",
        title: "HMAC-SM3 equals published and cross-checked vectors",
        run: hmac,
    },
    Check {
        id: "sm3-kdf-kat",
        title: "The SM3 KDF (GB/T 32918.4 §5.4.3) equals the vectors",
        run: kdf,
    },
];

fn digest() -> Vec<Evidence> {
    each("sm3", "digest", |v| {
        expect_eq(
            "digest",
            sm3::sm3(&v.message()?).as_bytes(),
            &v.bytes("digest")?,
        )
    })
}

fn incremental() -> Vec<Evidence> {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    let whole = sm3::sm3(&data);
    [1usize, 55, 56, 63, 64, 65, 127, 128, 999]
        .iter()
        .map(|&split| {
            let mut ctx = sm3::Sm3Context::new();
            ctx.update(&data[..split]);
            ctx.update(&data[split..]);
            derived(
                &format!("split at byte {split} of 1000"),
                expect_eq("digest", ctx.finish().as_bytes(), whole.as_bytes()),
            )
        })
        .collect()
}

fn hmac() -> Vec<Evidence> {
    each("sm3", "hmac", |v| {
        expect_eq(
            "mac",
            &sm3::hmac_sm3(&v.bytes("key")?, &v.bytes("msg")?),
            &v.bytes("mac")?,
        )
    })
}

fn kdf() -> Vec<Evidence> {
    each("sm3", "kdf", |v| {
        let out = sm3::kdf(&v.bytes("z")?, v.int("klen")? as usize).map_err(|e| e.to_string())?;
        expect_eq("KDF output", out.expose(), &v.bytes("out")?)
    })
}
