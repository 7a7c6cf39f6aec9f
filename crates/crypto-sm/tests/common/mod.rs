//! Helpers shared by the differential test binaries of crypto-sm.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use crypto::RandomSource;
use crypto_sm::rng::SeededRandom;
use crypto_sm::sm2::PrivateKey;
use crypto_sm::sm3::sm3;

/// A test's random source, remembering the seed for replay messages.
pub struct Rng {
    inner: SeededRandom,
    seed: u64,
}

pub fn base_seed() -> u64 {
    match std::env::var("GMCHAIN_TEST_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("GMCHAIN_TEST_SEED={s:?} is not a decimal u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock before 1970")
            .as_nanos() as u64,
    }
}

impl Rng {
    /// One generator per test, derived from the run's seed and the test's name, so one test can
    /// be replayed alone.
    pub fn for_test(name: &str) -> Self {
        let seed = base_seed();
        eprintln!("{name}: seed {seed} (replay: GMCHAIN_TEST_SEED={seed})");
        let tweak = u64::from_be_bytes(sm3(name.as_bytes()).0[..8].try_into().unwrap());
        Self {
            inner: SeededRandom::new(seed ^ tweak),
            seed,
        }
    }

    pub fn bytes(&self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.inner.fill(&mut v).unwrap();
        v
    }

    pub fn array<const N: usize>(&self) -> [u8; N] {
        let mut a = [0u8; N];
        self.inner.fill(&mut a).unwrap();
        a
    }

    pub fn u64(&self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    /// Uniform enough in `0..n` for test-case selection.
    pub fn below(&self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }

    /// A value in `lo..=hi`.
    pub fn range(&self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn key(&self) -> PrivateKey {
        PrivateKey::generate(&self.inner).unwrap()
    }

    pub fn src(&self) -> &SeededRandom {
        &self.inner
    }

    /// A printable ASCII passphrase of 1 to 32 characters.
    pub fn passphrase(&self) -> Vec<u8> {
        (0..self.range(1, 32))
            .map(|_| b' ' + self.below(95) as u8)
            .collect()
    }

    /// A string to attach to assertion messages.
    pub fn ctx(&self, case: impl std::fmt::Display) -> String {
        format!("seed {} ({case})", self.seed)
    }
}

// ---------------------------------------------------------------------------------------------
// SM2 verification cases: valid signatures and the ways to break them

/// The group order n of sm2p256v1, big-endian.
pub const SM2_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x72, 0x03, 0xdf, 0x6b, 0x21, 0xc6, 0x05, 0x2b, 0x53, 0xbb, 0xf4, 0x09, 0x39, 0xd5, 0x41, 0x23,
];

/// What a verification case does to a valid (key, ID, message, signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sm2Mutation {
    None,
    RZero,
    SZero,
    REqualsN,
    SEqualsN,
    RAboveN,
    SAboveN,
    /// s = n − r, so t = r + s = n ≡ 0 (B5).
    RPlusSIsN,
    FlipBitR,
    FlipBitS,
    /// A flipped bit in the message, so in e.
    FlipBitMessage,
    WrongKey,
    WrongId,
    /// The key's y coordinate changed so that the point is off the curve (review i19 L3).
    OffCurveKey,
    /// The key replaced by P = [−s/t]G (t = r + s), so that [s]G + [t]P = O (B6/B7) whatever
    /// e is (review i19 L3).
    SumAtInfinity,
}

impl Sm2Mutation {
    pub const ALL: [Sm2Mutation; 15] = [
        Sm2Mutation::None,
        Sm2Mutation::RZero,
        Sm2Mutation::SZero,
        Sm2Mutation::REqualsN,
        Sm2Mutation::SEqualsN,
        Sm2Mutation::RAboveN,
        Sm2Mutation::SAboveN,
        Sm2Mutation::RPlusSIsN,
        Sm2Mutation::FlipBitR,
        Sm2Mutation::FlipBitS,
        Sm2Mutation::FlipBitMessage,
        Sm2Mutation::WrongKey,
        Sm2Mutation::WrongId,
        Sm2Mutation::OffCurveKey,
        Sm2Mutation::SumAtInfinity,
    ];

    /// A mutation for case `i`: about a third of the cases stay valid.
    pub fn for_case(rng: &Rng, i: usize) -> Sm2Mutation {
        if i.is_multiple_of(3) {
            Sm2Mutation::None
        } else {
            Sm2Mutation::ALL[1 + rng.below(Sm2Mutation::ALL.len() - 1)]
        }
    }
}

/// big-endian a − b (mod 2^256).
pub fn be_sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        out[i] = d.rem_euclid(256) as u8;
        borrow = i16::from(d < 0);
    }
    out
}

/// big-endian a + b (mod 2^256).
pub fn be_add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    out
}

/// A verification case: the inputs after `mutation`, which may make them invalid.
pub struct Sm2Case {
    pub key: crypto::PublicKey,
    pub id: crypto::UserId,
    pub msg: Vec<u8>,
    pub sig: crypto::Signature,
    pub mutation: Sm2Mutation,
}

/// Applies `mutation` to a valid (key, id, msg, sig); `other_key` is the wrong key to use.
pub fn mutate_sm2(
    rng: &Rng,
    mutation: Sm2Mutation,
    key: crypto::PublicKey,
    id: crypto::UserId,
    msg: Vec<u8>,
    sig: crypto::Signature,
    other_key: crypto::PublicKey,
) -> Sm2Case {
    let (mut r, mut s) = (*sig.r(), *sig.s());
    let (mut key, mut id, mut msg) = (key, id, msg);
    let above_n = || {
        let mut k = [0u8; 32];
        k[24..].copy_from_slice(&rng.u64().to_be_bytes());
        be_add(&SM2_N, &k)
    };
    let bit = rng.below(256);
    match mutation {
        Sm2Mutation::None => {}
        Sm2Mutation::RZero => r = [0; 32],
        Sm2Mutation::SZero => s = [0; 32],
        Sm2Mutation::REqualsN => r = SM2_N,
        Sm2Mutation::SEqualsN => s = SM2_N,
        Sm2Mutation::RAboveN => r = above_n(),
        Sm2Mutation::SAboveN => s = above_n(),
        Sm2Mutation::RPlusSIsN => s = be_sub(&SM2_N, &r),
        Sm2Mutation::FlipBitR => r[bit / 8] ^= 1 << (bit % 8),
        Sm2Mutation::FlipBitS => s[bit / 8] ^= 1 << (bit % 8),
        Sm2Mutation::FlipBitMessage => {
            if msg.is_empty() {
                msg.push(0);
            } else {
                let i = rng.below(msg.len());
                msg[i] ^= 1 << rng.below(8);
            }
        }
        Sm2Mutation::WrongKey => key = other_key,
        Sm2Mutation::WrongId => {
            let mut w = id.as_bytes().to_vec();
            match w.first_mut() {
                Some(b) => *b ^= 0x01,
                None => w.push(b'x'),
            }
            id = crypto::UserId::new(w).unwrap();
        }
        Sm2Mutation::OffCurveKey => key = off_curve(&key),
        Sm2Mutation::SumAtInfinity => key = key_with_sum_at_infinity(&r, &s),
    }
    Sm2Case {
        key,
        id,
        msg,
        sig: crypto::Signature::from_scalars(r, s),
        mutation,
    }
}

/// A random user ID: the default, a printable one, or binary (1-100 bytes, never empty so that
/// GmSSL takes it too).
pub fn sm2_random_id(rng: &Rng) -> crypto::UserId {
    match rng.below(4) {
        0 => crypto::UserId::default(),
        1 => crypto::UserId::new(format!("node-{}@gmchain", rng.below(100_000))).unwrap(),
        _ => crypto::UserId::new(rng.bytes(rng.range(1, 100))).unwrap(),
    }
}

/// The SM4 backends this CPU can run, each to be forced in turn; the others are printed as
/// untested (never reported as passed).
pub fn sm4_backends(test: &str) -> Vec<crypto_sm::sm4::Backend> {
    use crypto_sm::sm4::Backend;
    eprintln!("{test}: CPU features {}", crypto_sm::arch::cpu_features());
    for b in Backend::unavailable() {
        eprintln!("{test}: SM4 backend {b}: UNTESTED on this CPU");
    }
    Backend::available()
}

/// SM4 data lengths every differential test covers: empty, around one block, around four,
/// sixteen blocks (one SIMD pass) and around it, and long inputs with odd tails.
pub const SM4_LENGTHS: &[usize] = &[
    0, 1, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 255, 256, 257, 4095, 65537,
];

/// `key` with y changed until the point is off the curve (the first try almost always is).
pub fn off_curve(key: &crypto::PublicKey) -> crypto::PublicKey {
    let mut b = *key.as_bytes();
    loop {
        b[64] = b[64].wrapping_add(1);
        if crypto_sm::sm2::parse_public_key(&b).is_err() {
            return crypto::PublicKey::from_uncompressed(&b).unwrap();
        }
    }
}

/// P = [−s/t]G with t = r + s (mod n): for this key [s]G + [t]P is the point at infinity, so
/// (r, s) must be refused at B7 whatever the message (as `sm2::tests::sum_at_infinity_is_invalid`).
pub fn key_with_sum_at_infinity(r: &[u8; 32], s: &[u8; 32]) -> crypto::PublicKey {
    use sm2::elliptic_curve::Group;
    use sm2::elliptic_curve::ops::Reduce;
    use sm2::elliptic_curve::sec1::ToSec1Point;
    use sm2::{ProjectivePoint, Scalar, U256};
    let r = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(r));
    let s = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(s));
    let t = r + s;
    let d = -s * Option::<Scalar>::from(t.invert()).expect("t = r + s is not 0 mod n");
    let p = (ProjectivePoint::generator() * d).to_affine();
    crypto::PublicKey::from_uncompressed(p.to_sec1_point(false).as_bytes()).unwrap()
}

/// A verification case whose x₁ (of [s]G + [t]P) is at least n, so that B7 holds only with
/// R = (e + x₁ mod n): the one case that takes the verifier's second candidate (review i19 L3;
/// built as `sm2::tests::x1_above_n_takes_the_second_candidate`). Returns the key, the digest
/// e, a valid signature, and the same signature with r + 1 and r − 1 (both invalid).
pub struct X1AboveN {
    pub key: crypto::PublicKey,
    pub e: crypto::Digest,
    pub sig: crypto::Signature,
    pub bad: [crypto::Signature; 2],
}

/// `count` cases of [`X1AboveN`] (points with n ≤ x < p: about half of those x are on the curve).
pub fn x1_above_n_cases(rng: &Rng, count: usize) -> Vec<X1AboveN> {
    use sm2::elliptic_curve::ops::Reduce;
    use sm2::elliptic_curve::point::AffineCoordinates;
    use sm2::elliptic_curve::sec1::ToSec1Point;
    use sm2::elliptic_curve::{Group, PrimeField};
    use sm2::{FieldBytes, ProjectivePoint, Scalar, U256};
    let mut out = Vec::new();
    let mut x = SM2_N;
    while out.len() < count {
        // The next x above n (p − n is about 2^224, far more than needed).
        x = be_add(&x, &{
            let mut one = [0u8; 32];
            one[31] = 1 + rng.below(200) as u8;
            one
        });
        let mut comp = vec![0x02 | (x[31] & 1)];
        comp.extend_from_slice(&x);
        let Ok(q) = sm2::PublicKey::from_sec1_bytes(&comp) else {
            continue; // x³ − 3x + b is not a square
        };
        let q = ProjectivePoint::from(*q.as_affine());
        let e = crypto::Digest(rng.array());
        let e_s = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(e.as_bytes()));
        let s = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&rng.array::<32>()));
        let r = e_s + <Scalar as Reduce<FieldBytes>>::reduce(&q.to_affine().x());
        let t = r + s;
        let Some(t_inv) = Option::<Scalar>::from(t.invert()) else {
            continue;
        };
        let p = ((q - ProjectivePoint::generator() * s) * t_inv).to_affine();
        let key = crypto::PublicKey::from_uncompressed(p.to_sec1_point(false).as_bytes()).unwrap();
        let sig = crypto::Signature::from_scalars(r.to_repr().into(), s.to_repr().into());
        let bad = [Scalar::ONE, -Scalar::ONE]
            .map(|d| crypto::Signature::from_scalars((r + d).to_repr().into(), s.to_repr().into()));
        out.push(X1AboveN { key, e, sig, bad });
    }
    out
}
