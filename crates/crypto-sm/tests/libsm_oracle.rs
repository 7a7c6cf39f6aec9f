//! libsm 0.6.1 (citahub) as an independent oracle: SM2 signatures both ways (libsm hard-codes the
//! ID "1234567812345678" in `sign`/`verify`; its `hash` takes other IDs), SM2 encryption in
//! libsm's C1 C2 C3 order (read by our `decrypt_c1c2c3_legacy`), SM3, SM4 block/CBC/CTR; plus
//! property tests of our codecs (never panic; round trips) and SM4 modes.
//!
//! The seeded cases take their seed from `GMCHAIN_TEST_SEED` or the clock and print it; libsm
//! draws its own nonces from the OS, which only ever makes a case stronger.

mod common;
use common::Rng;
use crypto::{CipherFormat, CryptoError, PublicKey, Signature, Sm4Mode, UserId, gmt0009};
use crypto_sm::keys::{decode_private_key, decode_public_key};
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::{self, PrivateKey, decrypt_c1c2c3_legacy, message_digest};
use crypto_sm::sm3::{Sm3Context, sm3};
use crypto_sm::sm4::{self, Sm4Secret};
use libsm::sm2::encrypt::{DecryptCtx, EncryptCtx};
use libsm::sm2::signature::{SigCtx, Signature as LibsmSignature};
use libsm::sm3::hash::Sm3Hash;
use libsm::sm4::cipher::Sm4Cipher;
use libsm::sm4::cipher_mode::{CipherMode, Sm4CipherMode};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/// libsm's `(public point, secret scalar)` for our key, checking that both libraries derive the
/// same point. (A macro, so libsm's num-bigint types need no name here.)
macro_rules! libsm_key {
    ($ctx:expr, $key:expr) => {{
        let sk = $ctx.load_seckey(&$key.to_bytes()[..]).unwrap();
        let pk = $ctx.pk_from_sk(&sk).unwrap();
        assert_eq!(
            $ctx.serialize_pubkey(&pk, false).unwrap(),
            $key.public_key().as_bytes().to_vec(),
            "libsm derives another public key from d"
        );
        (pk, sk)
    }};
}

fn be32(bytes: Vec<u8>) -> [u8; 32] {
    assert!(bytes.len() <= 32);
    let mut out = [0u8; 32];
    out[32 - bytes.len()..].copy_from_slice(&bytes);
    out
}

fn from_libsm(sig: &LibsmSignature) -> Signature {
    Signature::from_scalars(
        be32(sig.get_r().to_bytes_be()),
        be32(sig.get_s().to_bytes_be()),
    )
}

fn to_libsm(sig: &Signature) -> LibsmSignature {
    LibsmSignature::new(sig.r(), sig.s())
}

// ---------------------------------------------------------------------------------------------
// SM2 signatures

#[test]
fn libsm_signatures_verify_with_ours() {
    let rng = Rng::for_test("libsm_signatures_verify_with_ours");
    let ctx = SigCtx::new();
    let id = UserId::default();
    for case in 0..100 {
        let key = rng.key();
        let (pk, sk) = libsm_key!(ctx, key);
        let msg = rng.bytes(if case % 10 == 0 { 0 } else { rng.range(1, 500) });
        let c = rng.ctx(format_args!(
            "case {case}, key {:?}, msg len {}",
            key.public_key(),
            msg.len()
        ));
        let theirs = ctx.sign(&msg, &sk, &pk).unwrap();
        let sig = from_libsm(&theirs);
        assert_eq!(
            sm2::verify(&key.public_key(), &id, &msg, &sig),
            Ok(()),
            "[{c}]"
        );
        // libsm's DER is strict DER for our decoder, and the same (r, s)
        assert_eq!(
            Signature::from_der(&theirs.der_encode()).unwrap(),
            sig,
            "[{c}]"
        );
        assert_eq!(sig.to_der(), theirs.der_encode(), "[{c}]");
        // another ID or message fails
        assert_eq!(
            sm2::verify(
                &key.public_key(),
                &UserId::new(b"1234567812345679".to_vec()).unwrap(),
                &msg,
                &sig
            ),
            Err(CryptoError::SignatureInvalid),
            "[{c}]"
        );
        let mut other = msg.clone();
        other.push(0);
        assert_eq!(
            sm2::verify(&key.public_key(), &id, &other, &sig),
            Err(CryptoError::SignatureInvalid),
            "[{c}]"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SM2 verification: the fast path against the previous implementation and libsm (issue 19)

/// Runs `cases` random verification cases (random keys, IDs, messages; a third valid, the rest
/// broken in one of the ways of `Sm2Mutation`) through `sm2::verify` (this crate's
/// variable-time path), `sm2::verify_reference` (RustCrypto's arithmetic) and, every
/// `libsm_every`-th case, libsm's `verify_raw` on the same digest. The two paths of ours must
/// return the same `Result`, error variant and reason included; libsm must agree on valid or not.
fn sm2_verify_differential(name: &str, cases: usize, libsm_every: usize) {
    let rng = Rng::for_test(name);
    let ctx = SigCtx::new();
    let mut counts = std::collections::BTreeMap::<String, (usize, usize)>::new();
    let progress = (cases / 10).max(1);
    for case in 0..cases {
        let key = rng.key();
        let id = common::sm2_random_id(&rng);
        let msg = rng.bytes(if case % 10 == 0 { 0 } else { rng.range(1, 300) });
        let sig = key.sign(&id, &msg, rng.src()).unwrap();
        let mutation = common::Sm2Mutation::for_case(&rng, case);
        let other = if mutation == common::Sm2Mutation::WrongKey {
            rng.key().public_key()
        } else {
            key.public_key()
        };
        let c = common::mutate_sm2(&rng, mutation, key.public_key(), id, msg, sig, other);
        let ctx_s = rng.ctx(format_args!(
            "case {case}, {:?}, key {:?}, id {:?}, msg len {}, r {}, s {}",
            c.mutation,
            c.key,
            c.id,
            c.msg.len(),
            hex::encode(c.sig.r()),
            hex::encode(c.sig.s())
        ));
        let new = sm2::verify(&c.key, &c.id, &c.msg, &c.sig);
        let old = sm2::verify_reference(&c.key, &c.id, &c.msg, &c.sig);
        assert_eq!(new, old, "the two paths disagree [{ctx_s}]");
        if c.mutation == common::Sm2Mutation::None {
            assert_eq!(new, Ok(()), "a valid signature was refused [{ctx_s}]");
        }
        if case.is_multiple_of(libsm_every) {
            let e = message_digest(&c.id, &c.key, &c.msg);
            // libsm refuses to load an off-curve key: that is its "invalid".
            let theirs = match ctx.load_pubkey(c.key.as_bytes()) {
                Ok(pk) => ctx.verify_raw(e.as_bytes(), &pk, &to_libsm(&c.sig)),
                Err(_) => Ok(false),
            };
            assert_eq!(
                matches!(theirs, Ok(true)),
                new.is_ok(),
                "libsm says {theirs:?}, ours {new:?} [{ctx_s}]"
            );
        }
        let entry = counts.entry(format!("{:?}", c.mutation)).or_default();
        entry.0 += 1;
        entry.1 += usize::from(new.is_ok());
        if cases >= 100_000 && (case + 1) % progress == 0 {
            eprintln!("{name}: {} of {cases} cases agree", case + 1);
        }
    }
    // Every kind of case was drawn, and only the valid ones (and, rarely, a mutation that
    // happens to give another valid signature: none is expected) verified.
    eprintln!("{name}: {cases} cases, per kind (cases, verified): {counts:?}");
    if cases >= 1000 {
        assert_eq!(counts.len(), common::Sm2Mutation::ALL.len(), "{counts:?}");
    }
    for (kind, (n, ok)) in &counts {
        if kind == "None" {
            assert_eq!(n, ok, "{kind}");
        } else {
            assert_eq!(*ok, 0, "{kind}: a broken signature verified");
        }
    }
}

/// Issue 19's in-process differential: 10⁴ cases, libsm on every case.
#[test]
fn sm2_verify_fast_matches_reference_and_libsm() {
    sm2_verify_differential("sm2_verify_fast_matches_reference_and_libsm", 10_000, 1);
}

/// The long run: 10⁷ cases (libsm on one case in ten, as it is ~20× slower than ours). Takes
/// hours; run it in release:
/// `GMCHAIN_SM2_DIFF_CASES=10000000 cargo test --release -p crypto-sm --test libsm_oracle -- --ignored sm2_verify_long_run --nocapture`
/// (`GMCHAIN_SM2_DIFF_CASES` sets the count; `GMCHAIN_TEST_SEED` replays a run).
#[test]
#[ignore = "long run (10^7 cases by default, hours); see the doc comment for the command"]
fn sm2_verify_long_run() {
    let cases = std::env::var("GMCHAIN_SM2_DIFF_CASES")
        .map(|v| v.trim().parse().expect("GMCHAIN_SM2_DIFF_CASES is a count"))
        .unwrap_or(10_000_000);
    sm2_verify_differential("sm2_verify_long_run", cases, 10);
}

/// Keys that are not points of the curve (or not points at all) are refused by the key check
/// before any arithmetic, with the same error on both paths; libsm refuses them as well.
#[test]
fn sm2_verify_refuses_bad_keys_on_both_paths() {
    let rng = Rng::for_test("sm2_verify_refuses_bad_keys_on_both_paths");
    let ctx = SigCtx::new();
    let id = UserId::default();
    let p: [u8; 32] = hex::decode(sm2::params::P).unwrap().try_into().unwrap();
    for case in 0..300 {
        let key = rng.key();
        let msg = rng.bytes(rng.range(0, 100));
        let sig = key.sign(&id, &msg, rng.src()).unwrap();
        let mut bytes = *key.public_key().as_bytes();
        match case % 6 {
            0 => bytes[1 + rng.below(64)] ^= 1 << rng.below(8), // off the curve
            1 => bytes[1..33].copy_from_slice(&p),              // x = p
            2 => bytes[33..].copy_from_slice(&p),               // y = p
            3 => bytes[1..].fill(0),                            // (0, 0): an encoding of O
            4 => bytes[1..].fill(0xff),                         // both ≥ p
            _ => {
                // y + p: the same residue, not a canonical coordinate
                let y: [u8; 32] = bytes[33..].try_into().unwrap();
                let sum = common::be_add(&y, &p);
                if sum < y {
                    continue; // overflowed 2^256: not representable
                }
                bytes[33..].copy_from_slice(&sum);
            }
        }
        let bad = PublicKey::from_uncompressed(&bytes).unwrap();
        let c = rng.ctx(format_args!("case {case}, key {}", hex::encode(bytes)));
        let new = sm2::verify(&bad, &id, &msg, &sig);
        assert!(
            matches!(new, Err(CryptoError::InvalidPublicKey { .. })),
            "{new:?} [{c}]"
        );
        assert_eq!(new, sm2::verify_reference(&bad, &id, &msg, &sig), "[{c}]");
        assert_eq!(sm2::parse_public_key(&bytes).map(|_| ()), new, "[{c}]");
        if let Ok(pk) = ctx.load_pubkey(&bytes) {
            let e = message_digest(&id, &bad, &msg);
            assert!(
                !matches!(ctx.verify_raw(e.as_bytes(), &pk, &to_libsm(&sig)), Ok(true)),
                "libsm accepted a signature under a bad key [{c}]"
            );
        }
    }
    // The point at infinity has no 65-byte form; its one-byte encoding is refused by the decoder.
    assert!(matches!(
        sm2::parse_public_key(&[0x00]),
        Err(CryptoError::InvalidPublicKey { .. })
    ));
}

#[test]
fn our_signatures_verify_with_libsm() {
    let rng = Rng::for_test("our_signatures_verify_with_libsm");
    let ctx = SigCtx::new();
    let id = UserId::default();
    for case in 0..100 {
        let key = rng.key();
        let (pk, _) = libsm_key!(ctx, key);
        let msg = rng.bytes(if case % 10 == 0 { 0 } else { rng.range(1, 500) });
        let c = rng.ctx(format_args!("case {case}, msg len {}", msg.len()));
        let sig = key.sign(&id, &msg, rng.src()).unwrap();
        assert!(
            ctx.verify(&msg, &pk, &to_libsm(&sig)).unwrap(),
            "libsm rejected ours [{c}]"
        );
        let decoded = LibsmSignature::der_decode(&sig.to_der()).unwrap();
        assert!(ctx.verify(&msg, &pk, &decoded).unwrap(), "[{c}]");
        // libsm rejects it for another message, and a signature under another ID
        let mut other = msg.clone();
        other.push(0);
        assert!(!ctx.verify(&other, &pk, &to_libsm(&sig)).unwrap(), "[{c}]");
        let other_id = key
            .sign(
                &UserId::new(b"1234567812345679".to_vec()).unwrap(),
                &msg,
                rng.src(),
            )
            .unwrap();
        assert!(
            !ctx.verify(&msg, &pk, &to_libsm(&other_id)).unwrap(),
            "[{c}]"
        );
    }
}

/// ZA with IDs other than the default: libsm's `hash(id, pk, msg)` is our `message_digest`, and a
/// libsm signature over that digest verifies with ours under that ID.
#[test]
fn message_digest_matches_libsm_for_other_ids() {
    let rng = Rng::for_test("message_digest_matches_libsm_for_other_ids");
    let ctx = SigCtx::new();
    const IDS: &[&str] = &[
        "",
        "a",
        "alice@example.com",
        "TLSv1.3+GM+Cipher+Suite",
        "节点-上海",
    ];
    for case in 0..40 {
        let key = rng.key();
        let (pk, sk) = libsm_key!(ctx, key);
        let id = if let Some(id) = IDS.get(case) {
            id.to_string()
        } else {
            // long IDs too (ENTL up to 8191 bytes)
            "x".repeat(rng.range(1, 3000))
        };
        let msg = rng.bytes(rng.range(0, 300));
        let c = rng.ctx(format_args!("case {case}, id len {}", id.len()));
        let uid = UserId::new(id.as_bytes().to_vec()).unwrap();
        let e = ctx.hash(&id, &pk, &msg).unwrap();
        assert_eq!(message_digest(&uid, &key.public_key(), &msg).0, e, "[{c}]");
        let sig = from_libsm(&ctx.sign_raw(&e, &sk).unwrap());
        assert_eq!(
            sm2::verify(&key.public_key(), &uid, &msg, &sig),
            Ok(()),
            "[{c}]"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SM2 encryption: libsm writes C1 ‖ C2 ‖ C3

#[test]
fn libsm_c1c2c3_ciphertexts_decrypt_with_legacy_decoder() {
    let rng = Rng::for_test("libsm_c1c2c3_ciphertexts_decrypt_with_legacy_decoder");
    let ctx = SigCtx::new();
    for case in 0..60 {
        let key = rng.key();
        let (pk, sk) = libsm_key!(ctx, key);
        let msg = rng.bytes(match case {
            0 => 1,
            1 => 32,
            2 => 33,
            _ => rng.range(1, 600),
        });
        let c = rng.ctx(format_args!("case {case}, len {}", msg.len()));
        let legacy = EncryptCtx::new(msg.len(), pk).encrypt(&msg).unwrap();
        assert_eq!(legacy.len(), 65 + msg.len() + 32, "[{c}]");
        assert_eq!(
            decrypt_c1c2c3_legacy(&key, &legacy).unwrap().expose(),
            &msg[..],
            "ours cannot read libsm's C1C2C3 [{c}]"
        );
        // the standard order decoder must not accept the legacy order
        assert!(
            sm2::decrypt(&key, &legacy, CipherFormat::C1C3C2).is_err(),
            "[{c}]"
        );
        // a flipped bit in C3 (the last bytes) is refused
        let mut bad = legacy.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x10;
        assert!(
            matches!(
                decrypt_c1c2c3_legacy(&key, &bad),
                Err(CryptoError::DecryptionFailed { .. })
            ),
            "[{c}]"
        );

        // ours (C1 C3 C2), reordered to C1 C2 C3, is decrypted by libsm
        let ours = sm2::encrypt(&key.public_key(), &msg, CipherFormat::C1C3C2, rng.src()).unwrap();
        let mut reordered = ours[..65].to_vec();
        reordered.extend_from_slice(&ours[97..]);
        reordered.extend_from_slice(&ours[65..97]);
        assert_eq!(
            DecryptCtx::new(msg.len(), sk).decrypt(&reordered).unwrap(),
            msg,
            "libsm cannot decrypt ours [{c}]"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// ECDH on sm2p256v1 (TLS 1.3 curveSM2)

#[test]
fn ecdh_matches_libsm_point_multiplication() {
    let rng = Rng::for_test("ecdh_matches_libsm_point_multiplication");
    let ctx = libsm::sm2::ecc::EccCtx::new();
    let mut done = 0;
    while done < 20 {
        let (ra, rb): ([u8; 32], [u8; 32]) = (
            rng.bytes(32).try_into().unwrap(),
            rng.bytes(32).try_into().unwrap(),
        );
        let (Ok(a), Ok(b)) = (
            crypto_sm::danger::ephemeral_key(&ra),
            crypto_sm::danger::ephemeral_key(&rb),
        ) else {
            continue; // r ≥ n: not a scalar
        };
        let ours = a.diffie_hellman(b.public().as_bytes()).unwrap();
        assert_eq!(
            *ours,
            *b.diffie_hellman(a.public().as_bytes()).unwrap(),
            "[{}] both sides agree",
            rng.ctx(format_args!("case {done}"))
        );
        let qb = ctx.bytes_to_point(b.public().as_bytes()).unwrap();
        let ra_libsm = SigCtx::new().load_seckey(&ra).unwrap();
        let p = ctx.mul(&ra_libsm, &qb).unwrap();
        let (x, _) = ctx.to_affine(&p).unwrap();
        assert_eq!(
            *ours,
            be32(x.to_bytes()),
            "[{}] libsm's [ra]Qb",
            rng.ctx(format_args!("case {done}"))
        );
        done += 1;
    }
    // A point off the curve, the point at infinity and junk are refused before any use of r.
    let a = crypto_sm::danger::ephemeral_key(&[7u8; 32]).unwrap();
    let mut off = a.public().as_bytes().to_vec();
    off[64] ^= 1;
    for bad in [off, vec![0u8], vec![4u8; 65], vec![]] {
        assert!(matches!(
            a.diffie_hellman(&bad),
            Err(CryptoError::InvalidPublicKey { .. })
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// SM3, SM4

#[test]
fn sm3_matches_libsm() {
    let rng = Rng::for_test("sm3_matches_libsm");
    let mut lens = vec![0usize, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 10_000];
    lens.extend((0..200).map(|_| rng.range(0, 1100)));
    for len in lens {
        let data = rng.bytes(len);
        let expected = Sm3Hash::new(&data).get_hash();
        assert_eq!(
            sm3(&data).0,
            expected,
            "[{}]",
            rng.ctx(format_args!("len {len}"))
        );
        let cut = rng.range(0, len);
        let mut h = Sm3Context::new();
        h.update(&data[..cut]);
        h.update(&data[cut..]);
        assert_eq!(h.finish().0, expected);
    }
}

#[test]
fn sm4_block_cbc_ctr_match_libsm() {
    let rng = Rng::for_test("sm4_block_cbc_ctr_match_libsm");
    for case in 0..200 {
        let key: [u8; 16] = rng.array();
        let iv: [u8; 16] = rng.array();
        let block: [u8; 16] = rng.array();
        let data = rng.bytes(if case < 33 { case } else { rng.range(0, 300) });
        let c = rng.ctx(format_args!("case {case}, len {}", data.len()));
        let sk = Sm4Secret::from_slice(&key).unwrap();
        let cipher = Sm4Cipher::new(&key).unwrap();

        let ct = sm4::encrypt_block(&sk, &block);
        assert_eq!(ct, cipher.encrypt(&block).unwrap(), "block [{c}]");
        assert_eq!(sm4::decrypt_block(&sk, &ct), block, "[{c}]");
        assert_eq!(cipher.decrypt(&ct).unwrap(), block, "[{c}]");

        let cbc = Sm4CipherMode::new(&key, CipherMode::Cbc).unwrap();
        let ours = sm4::encrypt(&sk, Sm4Mode::Cbc, &iv, &[], &data).unwrap();
        assert_eq!(ours, cbc.encrypt(&[], &data, &iv).unwrap(), "CBC [{c}]");
        assert_eq!(cbc.decrypt(&[], &ours, &iv).unwrap(), data, "[{c}]");

        let ctr = Sm4CipherMode::new(&key, CipherMode::Ctr).unwrap();
        let ours = sm4::encrypt(&sk, Sm4Mode::Ctr, &iv, &[], &data).unwrap();
        assert_eq!(ours, ctr.encrypt(&[], &data, &iv).unwrap(), "CTR [{c}]");
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// DER signature encoding round-trips for any r, s (leading zeros and top bits included),
    /// and libsm's DER decoder reads the same integers.
    #[test]
    fn signature_der_round_trip(r in any::<[u8; 32]>(), s in any::<[u8; 32]>(), zero_r in 0usize..33, zero_s in 0usize..33) {
        let mut r = r;
        let mut s = s;
        // force short integers sometimes: zero_r leading zero bytes
        r[..zero_r.min(31)].fill(0);
        s[..zero_s.min(31)].fill(0);
        let sig = Signature::from_scalars(r, s);
        let der = sig.to_der();
        prop_assert_eq!(Signature::from_der(&der).unwrap(), sig);
        prop_assert_eq!(gmt0009::decode_signature(&der).unwrap(), sig);
        let theirs = LibsmSignature::der_decode(&der).unwrap();
        prop_assert_eq!(be32(theirs.get_r().to_bytes_be()), r);
        prop_assert_eq!(be32(theirs.get_s().to_bytes_be()), s);
        prop_assert_eq!(theirs.der_encode(), der);
    }

    /// The decoders return errors, never panic, on arbitrary bytes.
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = gmt0009::decode_signature(&bytes);
        let _ = gmt0009::decode_ciphertext(&bytes);
        let _ = decode_private_key(&bytes, None);
        let _ = decode_private_key(&bytes, Some(b"pass"));
        let _ = decode_public_key(&bytes);
        let _ = sm2::parse_public_key(&bytes);
        let _ = Signature::from_raw(&bytes);
    }

    /// ... and on near-valid inputs: a valid encoding with one byte changed, truncated or
    /// extended, which reaches deeper into the parsers than random bytes do.
    #[test]
    fn decoders_never_panic_on_mutations(
        which in 0usize..5,
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        mode in 0usize..3,
        seed in any::<u64>(),
    ) {
        let rng = SeededRandom::new(seed);
        let key = PrivateKey::generate(&rng).unwrap();
        let valid: Vec<u8> = match which {
            0 => key.sign(&UserId::default(), b"m", &rng).unwrap().to_der(),
            1 => sm2::encrypt(&key.public_key(), b"msg", CipherFormat::Der, &rng).unwrap(),
            2 => crypto_sm::keys::encode_pkcs8_der(&key).unwrap().expose().to_vec(),
            3 => crypto_sm::keys::encode_sec1_pem(&key).unwrap().expose().to_vec(),
            _ => crypto_sm::keys::encode_public_key_der(&key.public_key()).unwrap(),
        };
        let mut m = valid.clone();
        match mode {
            0 => { let i = pos.index(m.len()); m[i] = byte; }
            1 => m.truncate(cut.index(m.len())),
            _ => m.insert(pos.index(m.len() + 1), byte),
        }
        let _ = gmt0009::decode_signature(&m);
        let _ = gmt0009::decode_ciphertext(&m);
        let _ = decode_private_key(&m, None);
        let _ = decode_public_key(&m);
        if let Ok(raw) = gmt0009::decode_ciphertext(&m) {
            let _ = sm2::decrypt(&key, &raw, CipherFormat::C1C3C2);
        }
        let _ = sm2::decrypt(&key, &m, CipherFormat::Der);
        let _ = sm2::decrypt(&key, &m, CipherFormat::C1C3C2);
        let _ = decrypt_c1c2c3_legacy(&key, &m);
        if let Ok(sig) = Signature::from_der(&m) {
            let _ = sm2::verify(&key.public_key(), &UserId::default(), b"m", &sig);
        }
    }

    /// Every SM4 mode round-trips; CBC also agrees with libsm.
    #[test]
    fn sm4_modes_round_trip(
        key in any::<[u8; 16]>(),
        iv in any::<[u8; 16]>(),
        aad in proptest::collection::vec(any::<u8>(), 0..40),
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let sk = Sm4Secret::from_slice(&key).unwrap();
        for mode in [Sm4Mode::Cbc, Sm4Mode::Ctr, Sm4Mode::Gcm, Sm4Mode::Ccm] {
            let iv = &iv[..mode.iv_len()];
            let aad: &[u8] = if matches!(mode, Sm4Mode::Gcm | Sm4Mode::Ccm) { &aad } else { &[] };
            let ct = sm4::encrypt(&sk, mode, iv, aad, &data).unwrap();
            let expected_len = match mode {
                Sm4Mode::Cbc => (data.len() / 16 + 1) * 16,
                Sm4Mode::Ctr => data.len(),
                _ => data.len() + 16,
            };
            prop_assert_eq!(ct.len(), expected_len);
            let pt = sm4::decrypt(&sk, mode, iv, aad, &ct).unwrap();
            prop_assert_eq!(pt.expose(), &data[..]);
            if mode.is_aead() {
                let mut bad = ct.clone();
                let i = bad.len() - 1;
                bad[i] ^= 1;
                prop_assert_eq!(sm4::decrypt(&sk, mode, iv, aad, &bad), Err(CryptoError::TagMismatch));
            }
        }
        let cbc = Sm4CipherMode::new(&key, CipherMode::Cbc).unwrap();
        prop_assert_eq!(
            sm4::encrypt(&sk, Sm4Mode::Cbc, &iv, &[], &data).unwrap(),
            cbc.encrypt(&[], &data, &iv).unwrap()
        );
    }
}
