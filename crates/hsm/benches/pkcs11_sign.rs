//! SM2 signing through the PKCS#11 path (gmchain soft token: pool checkout, ZA in software or in
//! the token, C_SignInit + C_Sign across the C boundary, raw r‖s decoding) against direct
//! software signing (`crypto_sm::sm2::PrivateKey::sign`). Both hedge their nonce with the OS
//! random source; the soft token does the same curve arithmetic as the software provider, so
//! the ratio is the cost of the PKCS#11 path itself. Target: ≤ 1.5×.
//!
//! Needs `target/release/libgmchain_softtoken.so`: `cargo build --release -p softtoken`, then
//! `cargo bench -p hsm --bench pkcs11_sign`. Without the module the PKCS#11 rows are skipped
//! with a message (the software row still runs).
#![allow(
    unsafe_code,
    reason = "std::env::set_var (unsafe in edition 2024) runs once, before any thread reads the environment"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use crypto::{Secret, Signer, UserId};
use crypto_sm::rng::SystemRandom;
use crypto_sm::sm2::PrivateKey;
use hsm::{Hsm, HsmSigner, KeyUri, KeyUsage, Profile, TokenSlot};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MSG: &[u8] =
    b"gmchain transaction body of a typical size: 20 bytes is what openssl speed signs";

fn softtoken_lib() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let lib = exe.parent()?.parent()?.join("libgmchain_softtoken.so");
    lib.is_file().then_some(lib)
}

struct Token {
    _dir: tempfile::TempDir,
    digest_mode: HsmSigner,
    za_in_token: HsmSigner,
}

fn token() -> Option<Token> {
    let Some(lib) = softtoken_lib() else {
        eprintln!(
            "pkcs11_sign: libgmchain_softtoken.so is not next to the bench executable; run `cargo build --release -p softtoken` first. PKCS#11 rows skipped."
        );
        return None;
    };
    let dir = tempfile::tempdir().ok()?;
    // SAFETY: see the crate-level allow.
    unsafe { std::env::set_var("GMCHAIN_SOFTTOKEN_DIR", dir.path()) };
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hsm-profiles");
    let text = std::fs::read_to_string(profiles.join("gmchain-softtoken.toml")).ok()?;
    let profile = Profile::from_toml(&text, profiles.join("gmchain-softtoken.toml"))
        .ok()?
        .with_library(&lib);
    let za_text = text
        .replace(
            "sign_input = \"digest\"",
            "sign_input = \"message-with-id\"\nid_parameter = \"raw\"",
        )
        .replace("sm2_sign = 0x80474D11", "sm2_sign = 0x80474D12");
    let za_profile = Profile::from_toml(&za_text, profiles.join("za-in-token.toml"))
        .ok()?
        .with_library(&lib);
    let so = Secret::new(b"bench-so-pin".to_vec());
    let user = Secret::new(b"bench-user-pin".to_vec());
    Hsm::init_token(&profile, TokenSlot::FirstUninitialized, &so, "bench").ok()?;
    Hsm::init_pin(&profile, "bench", &so, &user).ok()?;
    let hsm = Hsm::open(&profile, "bench", Some(user.clone()), 4).ok()?;
    let key = hsm.generate_sm2("bench-1", &[1], KeyUsage::Signing).ok()?;
    let za = Hsm::open(&za_profile, "bench", Some(user), 4).ok()?;
    let uri: &KeyUri = &key.uri;
    Some(Token {
        digest_mode: hsm.signer(uri).ok()?,
        za_in_token: za.signer(uri).ok()?,
        _dir: dir,
    })
}

fn per_op(n: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

fn bench(c: &mut Criterion) {
    let rng = SystemRandom;
    let key = PrivateKey::generate(&rng).expect("software key");
    let id = UserId::default();
    let token = token();

    let mut group = c.benchmark_group("sm2_sign");
    group.bench_function("software PrivateKey::sign", |b| {
        b.iter(|| black_box(key.sign(&id, black_box(MSG), &rng).expect("sign")))
    });
    if let Some(t) = &token {
        group.bench_function("pkcs11 soft token, ZA in software (CKM_GM_SM2_SIGN)", |b| {
            b.iter(|| black_box(t.digest_mode.sign(&id, black_box(MSG)).expect("sign")))
        });
        group.bench_function(
            "pkcs11 soft token, ZA in token (CKM_GM_SM2_SM3_SIGN)",
            |b| b.iter(|| black_box(t.za_in_token.sign(&id, black_box(MSG)).expect("sign"))),
        );
    }
    group.finish();

    // The ratio, measured back to back in this process (criterion's report gives the detail).
    if let Some(t) = &token {
        let n = 3000;
        let soft = per_op(n, || {
            black_box(key.sign(&id, MSG, &rng).expect("sign"));
        });
        let digest = per_op(n, || {
            black_box(t.digest_mode.sign(&id, MSG).expect("sign"));
        });
        let za = per_op(n, || {
            black_box(t.za_in_token.sign(&id, MSG).expect("sign"));
        });
        let ratio = |d: Duration| d.as_secs_f64() / soft.as_secs_f64();
        println!(
            "sm2_sign ratio (target <= 1.5): software {soft:?}/op; pkcs11 ZA in software {digest:?}/op = {:.2}x; pkcs11 ZA in token {za:?}/op = {:.2}x",
            ratio(digest),
            ratio(za)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
