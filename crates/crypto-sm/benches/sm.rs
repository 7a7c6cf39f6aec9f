//! Criterion benchmarks of the software provider: SM2 sign and verify, SM3 at 64 B / 1 KiB /
//! 16 KiB, SM4-CTR and SM4-GCM at 1 KiB / 16 KiB.
//!
//! Each operation mirrors what `openssl speed` (OpenSSL 3.0) measures, so that the numbers can
//! be set beside it (`gmchain bench` does that in one run and prints the ratios):
//! - SM2: `openssl speed sm2` re-initialises `EVP_DigestSign`/`EVP_DigestVerify` with SM3 on
//!   every iteration and signs a 20-byte buffer with the ID "TLSv1.3+GM+Cipher+Suite", so each
//!   operation is ZA + SM3(ZA ‖ M) + the curve arithmetic + the DER encoding (sign) or
//!   decoding (verify) of the signature. Ours does the same: `sign` + `to_der`,
//!   `from_der` + `verify` (which also validates the public key).
//! - SM3: `openssl speed -evp sm3` hashes each buffer in one shot; so does `sm3()`. The
//!   `sm3-many` group measures batches of short items (`sm3_many` against a loop of `sm3()`).
//! - SM4-CTR: `openssl speed -evp sm4-ctr` streams buffers through one context; `ctr_apply`
//!   works in place and only adds the key schedule (one block's worth of work) per call.
//! - SM4-GCM: encryption with a 12-byte nonce and no AAD, output ciphertext ‖ tag (OpenSSL 3.0
//!   has no SM4-GCM to compare with).
//!
//! - `sm2/verify` is the current verification (this crate's variable-time path), and
//!   `sm2/verify_reference` the previous one (RustCrypto's point arithmetic), doing the same
//!   work; `verify_digest*` time the curve part alone (key validation, B1–B2, B5–B7).
//! - SM4 is measured on every backend this CPU can run (named in the benchmark IDs; the others
//!   are listed on stderr as not measured) and against the implementation before issue 19.
//!
//! Run: `cargo bench -p crypto-sm --bench sm` (or `-- sm2/verify` for the verification rows).

use aes_gcm::aead::{Aead, KeyInit};
use cbc::cipher::{KeyIvInit, StreamCipher};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crypto::{Signature, Sm4Mode, TLS13_USER_ID, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::{
    PrivateKey, message_digest, verify, verify_digest, verify_digest_reference, verify_reference,
};
use crypto_sm::sm3::sm3;
use crypto_sm::sm4::{Backend, Sm4Aead, Sm4Secret, ctr_apply, encrypt};
use std::hint::black_box;

/// The message length `openssl speed sm2` signs.
const SM2_MSG_LEN: usize = 20;

fn bench_sm2(c: &mut Criterion) {
    // The bench target sees crypto-sm without the `system-rng` feature, so the hedge comes from
    // the seeded source (one SM3 block per signature, as cheap as a getrandom call).
    let rng = SeededRandom::new(0x5eed);
    let key = PrivateKey::generate(&rng).expect("key generation");
    let public = key.public_key();
    let id = UserId::new(TLS13_USER_ID).expect("user ID");
    let msg = [0x5au8; SM2_MSG_LEN];
    let der = key.sign(&id, &msg, &rng).expect("sign").to_der();

    let mut group = c.benchmark_group("sm2");
    group.bench_function("sign", |b| {
        b.iter(|| {
            let sig = key.sign(&id, black_box(&msg), &rng).expect("sign").to_der();
            black_box(sig)
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            let sig = Signature::from_der(black_box(&der)).expect("DER signature");
            verify(&public, &id, black_box(&msg), &sig).expect("signature verifies");
        })
    });
    // The previous implementation (RustCrypto's point arithmetic), same work otherwise.
    group.bench_function("verify_reference", |b| {
        b.iter(|| {
            let sig = Signature::from_der(black_box(&der)).expect("DER signature");
            verify_reference(&public, &id, black_box(&msg), &sig).expect("signature verifies");
        })
    });
    // The curve part alone (key validation, B1-B2, B5-B7), without ZA, SM3 and DER.
    let sig = Signature::from_der(&der).expect("DER signature");
    let e = message_digest(&id, &public, &msg);
    group.bench_function("verify_digest", |b| {
        b.iter(|| verify_digest(&public, black_box(&e), &sig).expect("signature verifies"))
    });
    group.bench_function("verify_digest_reference", |b| {
        b.iter(|| {
            verify_digest_reference(&public, black_box(&e), &sig).expect("signature verifies")
        })
    });
    group.finish();
}

fn bench_sm3(c: &mut Criterion) {
    use crypto_sm::sm3::{Sm3Backend, sm3_many, sm3_many_with};
    use sm3::Digest as _;
    eprintln!("sm3-many: default backend {}", Sm3Backend::detected());
    for b in Sm3Backend::unavailable() {
        eprintln!("sm3-many: backend {b}: untested on this CPU (not measured)");
    }
    let backends = Sm3Backend::available();
    // `sm3/SIZE` is this crate's SM3 (one message has one implementation), `sm3/previous/SIZE`
    // RustCrypto's `sm3` (the implementation before issue 19).
    let mut group = c.benchmark_group("sm3");
    for size in [64usize, 1024, 16 * 1024] {
        let data = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| sm3(black_box(data)))
        });
        group.bench_with_input(BenchmarkId::new("previous", size), &data, |b, data| {
            b.iter(|| sm3::Sm3::digest(black_box(data)))
        });
    }
    group.finish();

    // Many short items: 256 Merkle nodes (0x01 ‖ left ‖ right, 65 bytes) or 256 items of a
    // transaction's size (300 bytes). `loop` is `sm3()` per item, `previous` RustCrypto's per
    // item, `many` `sm3_many` (default backend), `many/BACKEND` each backend.
    let mut many = c.benchmark_group("sm3-many");
    for len in [65usize, 300] {
        let items: Vec<Vec<u8>> = (0..256u32)
            .map(|i| (0..len as u32).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        many.throughput(Throughput::Elements(items.len() as u64));
        many.bench_function(BenchmarkId::new("loop", len), |b| {
            b.iter(|| items.iter().map(|m| sm3(black_box(m))).collect::<Vec<_>>())
        });
        many.bench_function(BenchmarkId::new("previous", len), |b| {
            b.iter(|| {
                items
                    .iter()
                    .map(|m| sm3::Sm3::digest(black_box(m)))
                    .collect::<Vec<_>>()
            })
        });
        many.bench_function(BenchmarkId::new("many", len), |b| {
            b.iter(|| sm3_many(black_box(&items)))
        });
        for &backend in &backends {
            many.bench_function(
                BenchmarkId::new(format!("many/{}", backend.name()), len),
                |b| {
                    b.iter(|| sm3_many_with(backend, black_box(&items)).expect("available backend"))
                },
            );
        }
    }
    many.finish();
}

/// The backends to measure; those this CPU cannot run are named as not measured.
fn sm4_backends() -> Vec<Backend> {
    eprintln!("sm4: CPU features {}", crypto_sm::arch::cpu_features());
    eprintln!("sm4: default backend {}", Backend::detected());
    for b in Backend::unavailable() {
        eprintln!("sm4: backend {b}: untested on this CPU (not measured)");
    }
    Backend::available()
}

fn bench_sm4(c: &mut Criterion) {
    let key = Sm4Secret::from_slice(&[0x12u8; 16]).expect("SM4 key");
    let key_bytes = [0x12u8; 16];
    let iv = [0x34u8; 16];
    let nonce = [0x56u8; 12];
    let backends = sm4_backends();

    // `sm4-ctr/SIZE` and `sm4-gcm/SIZE` are the default backend (what gmchain runs);
    // `sm4-ctr/BACKEND/SIZE` each forced backend; `sm4-ctr/previous/SIZE` the implementation
    // before issue 19 (the `ctr` and `aes-gcm` crates over RustCrypto's table `sm4`, key
    // schedule per call as in `ctr_apply`).
    let mut ctr = c.benchmark_group("sm4-ctr");
    for size in [1024usize, 16 * 1024] {
        let mut buf = vec![0u8; size];
        ctr.throughput(Throughput::Bytes(size as u64));
        ctr.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| ctr_apply(&key, black_box(&iv), black_box(&mut buf)).expect("SM4-CTR"))
        });
        for &backend in &backends {
            let _forced = backend.force().expect("available backend");
            ctr.bench_function(BenchmarkId::new(backend.name(), size), |b| {
                b.iter(|| ctr_apply(&key, black_box(&iv), black_box(&mut buf)).expect("SM4-CTR"))
            });
        }
        ctr.bench_function(BenchmarkId::new("previous", size), |b| {
            b.iter(|| {
                let mut c = ctr::Ctr128BE::<sm4::Sm4>::new(&key_bytes.into(), &iv.into());
                c.apply_keystream(black_box(&mut buf))
            })
        });
    }
    ctr.finish();

    let mut gcm = c.benchmark_group("sm4-gcm");
    for size in [1024usize, 16 * 1024] {
        let data = vec![0u8; size];
        gcm.throughput(Throughput::Bytes(size as u64));
        gcm.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| {
                encrypt(&key, Sm4Mode::Gcm, black_box(&nonce), &[], black_box(data))
                    .expect("SM4-GCM")
            })
        });
        for &backend in &backends {
            let _forced = backend.force().expect("available backend");
            gcm.bench_with_input(BenchmarkId::new(backend.name(), size), &data, |b, data| {
                b.iter(|| {
                    encrypt(&key, Sm4Mode::Gcm, black_box(&nonce), &[], black_box(data))
                        .expect("SM4-GCM")
                })
            });
        }
        gcm.bench_with_input(BenchmarkId::new("previous", size), &data, |b, data| {
            b.iter(|| {
                let g =
                    aes_gcm::AesGcm::<sm4::Sm4, aes_gcm::aead::consts::U12>::new(&key_bytes.into());
                g.encrypt(&nonce.into(), black_box(&data[..]))
                    .expect("SM4-GCM")
            })
        });
    }
    gcm.finish();

    // The TLS record path: one `Sm4Aead` per key, sealing in place.
    let mut seal = c.benchmark_group("sm4-gcm-seal");
    for size in [1024usize, 16 * 1024] {
        let mut buf = vec![0u8; size];
        seal.throughput(Throughput::Bytes(size as u64));
        for &backend in &backends {
            let _forced = backend.force().expect("available backend");
            let aead = Sm4Aead::new(&key, Sm4Mode::Gcm).expect("SM4-GCM key");
            seal.bench_function(BenchmarkId::new(aead.backend().name(), size), |b| {
                b.iter(|| {
                    aead.seal_in_place(black_box(&nonce), &[], black_box(&mut buf))
                        .expect("SM4-GCM")
                })
            });
        }
    }
    seal.finish();
}

criterion_group!(benches, bench_sm2, bench_sm3, bench_sm4);
criterion_main!(benches);
