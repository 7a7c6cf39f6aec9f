//! SM2 over the curve sm2p256v1 (GB/T 32918.5-2017): key pairs and public key validation
//! (part 1), signatures with ZA (part 2), key exchange (part 3) and public key encryption (part 4).
//!
//! The field, scalar and point arithmetic of everything that touches a secret (key generation,
//! signing, decryption, key exchange) is RustCrypto's (`sm2`, `primeorder`): constant time.
//! Signature verification ([`verify`], [`verify_digest`]) handles only public values and runs
//! on the crate's own variable-time arithmetic (module `verify_fast`: a field specialised to p,
//! Jacobian coordinates with mixed additions, an interleaved w-NAF with a 64 KiB table of the
//! base point built once per process); [`verify_reference`] and [`verify_digest_reference`]
//! keep the previous, RustCrypto-based verification for the differential tests and the
//! benchmarks. The algorithm steps are ours and carry the standard's step labels.

mod kex;
mod pke;
mod verify_fast;

pub use kex::{EphemeralKey, KexOutcome, KexRole, key_exchange};
pub(crate) use pke::encrypt_with_k;
pub use pke::{decrypt, decrypt_c1c2c3_legacy, encrypt};

use crate::sm3::{Sm3Context, sm3_parts};
use crypto::{CryptoError, Digest, PublicKey, RandomSource, Signature, UserId};
use elliptic_curve::ops::{MulByGeneratorVartime, Reduce};
use elliptic_curve::point::AffineCoordinates;
use elliptic_curve::sec1::ToSec1Point;
use elliptic_curve::subtle::ConstantTimeEq;
use elliptic_curve::{Curve, Group, PrimeField};
use sm2::{AffinePoint, FieldBytes, NonZeroScalar, ProjectivePoint, Scalar, Sm2, U256};
use zeroize::{Zeroize, Zeroizing};

pub use sm2::elliptic_curve;

/// The curve parameters of sm2p256v1 (GB/T 32918.5-2017 §2), big-endian hex.
pub mod params {
    /// The field prime p.
    pub const P: &str = "fffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffff";
    /// Coefficient a.
    pub const A: &str = "fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc";
    /// Coefficient b.
    pub const B: &str = "28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93";
    /// The group order n.
    pub const N: &str = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123";
    /// x of the base point G.
    pub const GX: &str = "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7";
    /// y of the base point G.
    pub const GY: &str = "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0";
}

/// An SM2 private key d with 1 ≤ d ≤ n − 2 (GB/T 32918.1 §6.1), its public key, and the
/// precomputed (1 + d)⁻¹ mod n. Both scalars are zeroized on drop; `Debug` prints only the
/// public key.
pub struct PrivateKey {
    d: NonZeroScalar,
    d_plus_1_inv: Scalar,
    public: PublicKey,
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.d.zeroize();
        self.d_plus_1_inv.zeroize();
    }
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PrivateKey([redacted], public={:?})", self.public)
    }
}

impl PrivateKey {
    /// Generates a key pair from `rng` (GB/T 32918.1 §6.1), by rejection sampling into
    /// [1, n − 2].
    pub fn generate(rng: &dyn RandomSource) -> Result<Self, CryptoError> {
        // n > 2^255, so fewer than one draw in 2^32 is rejected; the bound only guards a broken source.
        for _ in 0..64 {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rng.fill(&mut bytes[..])?;
            if let Ok(k) = Self::from_bytes(&bytes[..]) {
                return Ok(k);
            }
        }
        Err(CryptoError::Entropy)
    }

    /// Builds a key from the 32-byte big-endian d, refusing d outside [1, n − 2].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidPrivateKey {
                reason: "d must be 32 bytes",
            })?;
        let mut repr = FieldBytes::from(arr);
        let scalar = Option::<Scalar>::from(Scalar::from_repr(repr))
            .ok_or(CryptoError::InvalidPrivateKey { reason: "d ≥ n" });
        repr.zeroize();
        Self::from_scalar(scalar?)
    }

    fn from_scalar(mut d: Scalar) -> Result<Self, CryptoError> {
        // GB/T 32918.1 §6.1: d ∈ [1, n − 2], so that 1 + d is invertible (GB/T 32918.2 §6.1 A6).
        let nz = Option::<NonZeroScalar>::from(NonZeroScalar::new(d));
        let inv = Option::<Scalar>::from((d + Scalar::ONE).invert());
        d.zeroize();
        let (Some(d), Some(d_plus_1_inv)) = (nz, inv) else {
            return Err(CryptoError::InvalidPrivateKey {
                reason: "d must lie in [1, n-2]",
            });
        };
        let point = ProjectivePoint::mul_by_generator(&*d).to_affine();
        let public = encode_point(&point)?;
        Ok(Self {
            d,
            d_plus_1_inv,
            public,
        })
    }

    /// Returns d as 32 big-endian bytes, zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.d.to_repr().into())
    }

    /// Returns the public key P = [d]G.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    pub(crate) fn scalar(&self) -> &NonZeroScalar {
        &self.d
    }

    /// Signs `msg` for user ID `id` (GB/T 32918.2 §6.1) with a hedged nonce.
    pub fn sign(
        &self,
        id: &UserId,
        msg: &[u8],
        rng: &dyn RandomSource,
    ) -> Result<Signature, CryptoError> {
        let e = message_digest(id, &self.public, msg);
        self.sign_digest(&e, rng)
    }

    /// Signs e = SM3(ZA ‖ M) computed by the caller (GB/T 32918.2 §6.1 A3-A7).
    ///
    /// k comes from RFC 6979's HMAC-DRBG over SM3, keyed with d and e and mixed with 32 bytes
    /// from `rng` (a hedged nonce): a broken `rng` cannot leak d through a repeated k, and a
    /// fault or a repeated message cannot either while `rng` works.
    pub fn sign_digest(
        &self,
        e: &Digest,
        rng: &dyn RandomSource,
    ) -> Result<Signature, CryptoError> {
        let extra: Zeroizing<[u8; 32]> = Zeroizing::new(crate::rng::random_array(rng)?);
        let e_scalar = digest_to_scalar(e);
        let d_repr = Zeroizing::new(self.d.to_repr());
        let mut kgen = rfc6979::KGenerator::<sm3::Sm3, U256>::new(
            &d_repr,
            &e_scalar.to_bytes(),
            &extra[..],
            &Sm2::ORDER,
        );
        // A3: draw k; retry on the (2^-200-rare) r = 0, r + k = n or s = 0 of A5/A6.
        for _ in 0..16 {
            let mut k_bytes = Zeroizing::new(FieldBytes::default());
            kgen.fill_next_k(&mut k_bytes);
            let Some(k) = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(*k_bytes)) else {
                continue;
            };
            if let Some(sig) = sign_with_nonce(&self.d, &self.d_plus_1_inv, &e_scalar, &k) {
                return Ok(sig);
            }
        }
        Err(CryptoError::Entropy)
    }
}

/// GB/T 32918.2 §6.1 A4-A7 for a given nonce k. Returns `None` where A5/A6 say "return to A3".
pub(crate) fn sign_with_nonce(
    d: &NonZeroScalar,
    d_plus_1_inv: &Scalar,
    e: &Scalar,
    k: &NonZeroScalar,
) -> Option<Signature> {
    // A4: (x1, y1) = [k]G
    let point = ProjectivePoint::mul_by_generator(&**k).to_affine();
    // A5: r = (e + x1) mod n; back to A3 if r = 0 or r + k = n
    let r = *e + <Scalar as Reduce<FieldBytes>>::reduce(&point.x());
    if bool::from(r.is_zero() | (r + **k).ct_eq(&Scalar::ZERO)) {
        return None;
    }
    // A6: s = ((1 + d)^-1 · (k − r·d)) mod n; back to A3 if s = 0
    let s = *d_plus_1_inv * (**k - r * **d);
    if bool::from(s.is_zero()) {
        return None;
    }
    // A7
    Some(Signature::from_scalars(
        r.to_repr().into(),
        s.to_repr().into(),
    ))
}

/// Signs with an explicit nonce; reachable only through [`crate::danger`].
pub(crate) fn sign_with_k(
    key: &PrivateKey,
    e: &Digest,
    k: &[u8; 32],
) -> Result<Signature, CryptoError> {
    let k = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr((*k).into())).ok_or(
        CryptoError::InvalidInput {
            reason: "k must lie in [1, n-1]",
        },
    )?;
    sign_with_nonce(&key.d, &key.d_plus_1_inv, &digest_to_scalar(e), &k).ok_or(
        CryptoError::InvalidInput {
            reason: "this k gives r = 0, r + k = n or s = 0 (GB/T 32918.2 §6.1 A5/A6)",
        },
    )
}

fn digest_to_scalar(e: &Digest) -> Scalar {
    // GB/T 32918.2 §6.1 A5 / §7.1 B7 use e as an integer taken mod n.
    <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(e.as_bytes()))
}

/// Decodes and validates a public key (GB/T 32918.1 §6.2): uncompressed (04), compressed
/// (02/03) or hybrid (06/07) form; coordinates below p; on the curve; not the point at infinity.
/// The cofactor is 1, so every curve point other than O has order n and [n]P = O holds.
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
    let point = decode_point(bytes)?;
    encode_point(&point)
}

/// Validates a public key and returns its point.
pub(crate) fn validate(key: &PublicKey) -> Result<AffinePoint, CryptoError> {
    decode_point(key.as_bytes())
}

pub(crate) fn decode_point(bytes: &[u8]) -> Result<AffinePoint, CryptoError> {
    let invalid = |reason| CryptoError::InvalidPublicKey { reason };
    let first = *bytes.first().ok_or(invalid("empty encoding"))?;
    let pk = match first {
        0x02..=0x04 => {
            let expected = if first == 0x04 { 65 } else { 33 };
            if bytes.len() != expected {
                return Err(invalid(
                    "wrong length for the point form (04: 65 bytes, 02/03: 33 bytes)",
                ));
            }
            sm2::PublicKey::from_sec1_bytes(bytes).map_err(|_| {
                invalid(
                    "not a point of sm2p256v1 (coordinate ≥ p, off the curve, or no square root)",
                )
            })?
        }
        // GB/T 32918.1 §4.2.10: hybrid form carries y and its parity bit; both must agree.
        0x06 | 0x07 => {
            if bytes.len() != 65 {
                return Err(invalid("a hybrid point (06/07) is 65 bytes"));
            }
            if (bytes[64] & 1) != (first & 1) {
                return Err(invalid(
                    "hybrid point: parity of y disagrees with the prefix",
                ));
            }
            let mut u = [0u8; 65];
            u.copy_from_slice(bytes);
            u[0] = 0x04;
            sm2::PublicKey::from_sec1_bytes(&u).map_err(|_| invalid("not a point of sm2p256v1"))?
        }
        0x00 => return Err(invalid("the point at infinity is not a public key")),
        _ => return Err(invalid("unknown point encoding prefix")),
    };
    Ok(*pk.as_affine())
}

pub(crate) fn encode_point(point: &AffinePoint) -> Result<PublicKey, CryptoError> {
    let enc = point.to_sec1_point(false);
    PublicKey::from_uncompressed(enc.as_bytes())
}

/// Returns (x, y) of an affine point as big-endian bytes.
pub(crate) fn coordinates(point: &AffinePoint) -> ([u8; 32], [u8; 32]) {
    let enc = point.to_sec1_point(false);
    let b = enc.as_bytes();
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    if b.len() == 65 {
        x.copy_from_slice(&b[1..33]);
        y.copy_from_slice(&b[33..65]);
    }
    (x, y)
}

/// ZA = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA) (GB/T 32918.2 §5.5).
pub fn za(id: &UserId, key: &PublicKey) -> Digest {
    let mut h = Sm3Context::new();
    h.update(&id.entl());
    h.update(id.as_bytes());
    h.update(&CURVE_ABG);
    h.update(key.x());
    h.update(key.y());
    h.finish()
}

/// a ‖ b ‖ xG ‖ yG of sm2p256v1, the constant middle of ZA.
const CURVE_ABG: [u8; 128] = {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        }
    }
    let parts = [
        params::A.as_bytes(),
        params::B.as_bytes(),
        params::GX.as_bytes(),
        params::GY.as_bytes(),
    ];
    let mut out = [0u8; 128];
    let mut p = 0;
    while p < 4 {
        let mut i = 0;
        while i < 32 {
            out[p * 32 + i] = (nib(parts[p][2 * i]) << 4) | nib(parts[p][2 * i + 1]);
            i += 1;
        }
        p += 1;
    }
    out
};

/// e = SM3(ZA ‖ M) (GB/T 32918.2 §6.1 A1-A2).
pub fn message_digest(id: &UserId, key: &PublicKey, msg: &[u8]) -> Digest {
    let z = za(id, key);
    sm3_parts(&[z.as_bytes(), msg])
}

/// Verifies a signature on `msg` (GB/T 32918.2 §7.1), validating the public key first.
pub fn verify(
    key: &PublicKey,
    id: &UserId,
    msg: &[u8],
    sig: &Signature,
) -> Result<(), CryptoError> {
    verify_digest(key, &message_digest(id, key, msg), sig)
}

/// Verifies a signature over a precomputed e = SM3(ZA ‖ M).
///
/// The curve arithmetic is this crate's variable-time verification path
/// (module `sm2::verify_fast`: SM2-specific field, interleaved w-NAF with a precomputed
/// table of G); every input is public, so variable time leaks nothing.
pub fn verify_digest(key: &PublicKey, e: &Digest, sig: &Signature) -> Result<(), CryptoError> {
    validate(key)?;
    let (r, s, t) = signature_scalars(sig)?;
    // B7 is checked as x₁′ ≡ r′ − e′ (mod n), so the fast path needs v = r′ − e′.
    let v = r - digest_to_scalar(e);
    let inputs = verify_fast::Inputs {
        px: key_coordinate(key.x()),
        py: key_coordinate(key.y()),
        s: &s.to_repr().into(),
        t: &t.to_repr().into(),
        v: &v.to_repr().into(),
    };
    match verify_fast::verify(&inputs) {
        verify_fast::Outcome::Valid => Ok(()),
        verify_fast::Outcome::Infinity | verify_fast::Outcome::Mismatch => {
            Err(CryptoError::SignatureInvalid)
        }
        verify_fast::Outcome::BadKey => Err(CryptoError::InvalidPublicKey {
            reason: "coordinate not below p",
        }),
        verify_fast::Outcome::Unavailable => verify_digest_point_reference(&validate(key)?, e, sig),
    }
}

/// The previous verification (before issue 19): the same steps on RustCrypto's constant-time
/// arithmetic (`ProjectivePoint::mul_by_generator_and_mul_add_vartime`) and an inversion for
/// x₁′. Kept as the reference the differential tests compare [`verify`] with, and as the
/// "previous implementation" of `gmchain bench crypto`; nothing in the node calls it.
pub fn verify_reference(
    key: &PublicKey,
    id: &UserId,
    msg: &[u8],
    sig: &Signature,
) -> Result<(), CryptoError> {
    verify_digest_reference(key, &message_digest(id, key, msg), sig)
}

/// [`verify_digest`] on the previous implementation (see [`verify_reference`]).
pub fn verify_digest_reference(
    key: &PublicKey,
    e: &Digest,
    sig: &Signature,
) -> Result<(), CryptoError> {
    let point = validate(key)?;
    verify_digest_point_reference(&point, e, sig)
}

/// A 32-byte coordinate of a [`PublicKey`] (always 32 bytes: the type holds 65).
fn key_coordinate(bytes: &[u8]) -> &[u8; 32] {
    const ZERO: [u8; 32] = [0; 32];
    bytes.try_into().unwrap_or(&ZERO)
}

/// B1, B2 and B5: r′ and s′ in [1, n − 1], t = (r′ + s′) mod n not 0.
fn signature_scalars(sig: &Signature) -> Result<(Scalar, Scalar, Scalar), CryptoError> {
    // B1: r' ∈ [1, n−1]
    let r = Option::<Scalar>::from(Scalar::from_repr((*sig.r()).into()))
        .filter(|r| !bool::from(r.is_zero()))
        .ok_or(CryptoError::MalformedSignature {
            reason: "r is not in [1, n-1]",
        })?;
    // B2: s' ∈ [1, n−1]
    let s = Option::<Scalar>::from(Scalar::from_repr((*sig.s()).into()))
        .filter(|s| !bool::from(s.is_zero()))
        .ok_or(CryptoError::MalformedSignature {
            reason: "s is not in [1, n-1]",
        })?;
    // B3-B4 were done by the caller: e' = SM3(ZA ‖ M').
    // B5: t = (r' + s') mod n, fail if t = 0
    let t = r + s;
    if bool::from(t.is_zero()) {
        return Err(CryptoError::SignatureInvalid);
    }
    Ok((r, s, t))
}

fn verify_digest_point_reference(
    point: &AffinePoint,
    e: &Digest,
    sig: &Signature,
) -> Result<(), CryptoError> {
    let (r, s, t) = signature_scalars(sig)?;
    let e = digest_to_scalar(e);
    // B6: (x1', y1') = [s']G + [t]PA. Only public values: variable time is fine.
    let sum = ProjectivePoint::mul_by_generator_and_mul_add_vartime(
        &s,
        &t,
        &ProjectivePoint::from(*point),
    );
    if bool::from(sum.is_identity()) {
        return Err(CryptoError::SignatureInvalid);
    }
    // B7: R = (e' + x1') mod n, pass iff R = r'
    let big_r = e + <Scalar as Reduce<FieldBytes>>::reduce(&sum.to_affine().x());
    if bool::from(big_r.ct_eq(&r)) {
        Ok(())
    } else {
        Err(CryptoError::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    #[test]
    fn curve_constant_matches_params() {
        assert_eq!(hex::encode(&CURVE_ABG[..32]), params::A);
        assert_eq!(hex::encode(&CURVE_ABG[96..]), params::GY);
        let g = ProjectivePoint::GENERATOR.to_affine();
        let (x, y) = coordinates(&g);
        assert_eq!(hex::encode(x), params::GX);
        assert_eq!(hex::encode(y), params::GY);
        assert_eq!(hex::encode(Sm2::ORDER.to_be_bytes()), params::N);
    }

    #[test]
    fn sign_verify_round_trip_and_negatives() {
        let rng = SeededRandom::new(1);
        let key = PrivateKey::generate(&rng).unwrap();
        let id = UserId::default();
        let sig = key.sign(&id, b"hello", &rng).unwrap();
        verify(&key.public_key(), &id, b"hello", &sig).unwrap();
        assert_eq!(
            verify(&key.public_key(), &id, b"hellO", &sig),
            Err(CryptoError::SignatureInvalid)
        );
        assert_eq!(
            verify(
                &key.public_key(),
                &UserId::new(b"".to_vec()).unwrap(),
                b"hello",
                &sig
            ),
            Err(CryptoError::SignatureInvalid)
        );
        let zero_r = Signature::from_scalars([0u8; 32], *sig.s());
        assert!(matches!(
            verify(&key.public_key(), &id, b"hello", &zero_r),
            Err(CryptoError::MalformedSignature { .. })
        ));
        let n: [u8; 32] = hex::decode(params::N).unwrap().try_into().unwrap();
        let n_s = Signature::from_scalars(*sig.r(), n);
        assert!(matches!(
            verify(&key.public_key(), &id, b"hello", &n_s),
            Err(CryptoError::MalformedSignature { .. })
        ));
        // hedged: two signatures of the same message differ
        assert_ne!(key.sign(&id, b"hello", &rng).unwrap(), sig);
    }

    #[test]
    fn private_key_range() {
        let n: [u8; 32] = hex::decode(params::N).unwrap().try_into().unwrap();
        let mut n_1 = n;
        n_1[31] -= 1;
        let mut n_2 = n;
        n_2[31] -= 2;
        assert!(PrivateKey::from_bytes(&[0u8; 32]).is_err());
        assert!(PrivateKey::from_bytes(&n).is_err());
        assert!(PrivateKey::from_bytes(&n_1).is_err());
        assert!(PrivateKey::from_bytes(&n_2).is_ok());
        assert!(PrivateKey::from_bytes(&[0xff; 32]).is_err());
        assert!(PrivateKey::from_bytes(&[1u8; 31]).is_err());
        let k = PrivateKey::from_bytes(&n_2).unwrap();
        assert!(!format!("{k:?}").contains(&hex::encode(n_2)));
    }

    #[test]
    fn point_forms() {
        let rng = SeededRandom::new(2);
        let key = PrivateKey::generate(&rng).unwrap();
        let pk = key.public_key();
        let mut comp = vec![0x02 | (pk.y()[31] & 1)];
        comp.extend_from_slice(pk.x());
        assert_eq!(parse_public_key(&comp).unwrap(), pk);
        let mut hybrid = pk.as_bytes().to_vec();
        hybrid[0] = 0x06 | (pk.y()[31] & 1);
        assert_eq!(parse_public_key(&hybrid).unwrap(), pk);
        hybrid[0] ^= 1;
        assert!(parse_public_key(&hybrid).is_err());
        let mut off = pk.as_bytes().to_vec();
        off[64] ^= 1;
        assert!(parse_public_key(&off).is_err());
        assert!(parse_public_key(&[0]).is_err());
        assert!(parse_public_key(&[]).is_err());
        assert!(parse_public_key(&pk.as_bytes()[..64]).is_err());
    }

    /// A signature whose x₁′ lies in [n, p), so that B7 reduces x₁′ mod n: the fast path must
    /// take its second candidate (v + n). Random signatures reach this with probability 2⁻¹²⁸,
    /// so the case is built: Q with x(Q) ≥ n, any s′ and e′, r′ = (e′ + x(Q)) mod n,
    /// t = r′ + s′ and the key P = [t⁻¹](Q − [s′]G), so that [s′]G + [t]P = Q.
    #[test]
    fn x1_above_n_takes_the_second_candidate() {
        let rng = SeededRandom::new(0x19a1);
        let n = Sm2::ORDER;
        let mut built = 0;
        let mut x_bytes: [u8; 32] = n.to_be_bytes().into();
        for i in 0..200u8 {
            x_bytes[31] = x_bytes[31].wrapping_add(if i == 0 { 0 } else { 1 });
            let mut comp = vec![0x02 | (i & 1)];
            comp.extend_from_slice(&x_bytes);
            let Ok(q) = sm2::PublicKey::from_sec1_bytes(&comp) else {
                continue; // x³ − 3x + b is not a square: try the next x
            };
            let q = ProjectivePoint::from(*q.as_affine());
            let mut b = [0u8; 32];
            rng.fill(&mut b).unwrap();
            let e = Digest(b);
            let e_s = digest_to_scalar(&e);
            rng.fill(&mut b).unwrap();
            let s = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&b));
            let r = e_s + <Scalar as Reduce<FieldBytes>>::reduce(&q.to_affine().x());
            let t = r + s;
            let p = (q - ProjectivePoint::mul_by_generator(&s)) * t.invert().unwrap();
            let key = encode_point(&p.to_affine()).unwrap();
            let sig = Signature::from_scalars(r.to_repr().into(), s.to_repr().into());
            assert_eq!(verify_digest(&key, &e, &sig), Ok(()));
            assert_eq!(verify_digest_reference(&key, &e, &sig), Ok(()));
            // libsm agrees.
            let ctx = libsm::sm2::signature::SigCtx::new();
            let pk = ctx.load_pubkey(key.as_bytes()).unwrap();
            let lsig = libsm::sm2::signature::Signature::new(sig.r(), sig.s());
            assert!(ctx.verify_raw(e.as_bytes(), &pk, &lsig).unwrap());
            // r′ taken as x₁′ + e′ without the reduction of x₁′ (i.e. r′ + n, reduced) is the same
            // r′; r′ − 1 and r′ + 1 are refused by both paths.
            for delta in [Scalar::ONE, -Scalar::ONE] {
                let bad = Signature::from_scalars((r + delta).to_repr().into(), s.to_repr().into());
                assert_eq!(
                    verify_digest(&key, &e, &bad),
                    Err(CryptoError::SignatureInvalid)
                );
                assert_eq!(
                    verify_digest_reference(&key, &e, &bad),
                    Err(CryptoError::SignatureInvalid)
                );
            }
            built += 1;
        }
        assert!(built >= 50, "only {built} points with x ≥ n were built");
    }

    /// [s′]G + [t]P = O (P = [−s′/t]G): SignatureInvalid on both paths, whatever r′ says.
    #[test]
    fn sum_at_infinity_is_invalid() {
        let rng = SeededRandom::new(0x19a2);
        for _ in 0..100 {
            let mut b = [0u8; 32];
            rng.fill(&mut b).unwrap();
            let r = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&b));
            rng.fill(&mut b).unwrap();
            let s = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&b));
            let t = r + s;
            let d = -s * t.invert().unwrap();
            let key = encode_point(&ProjectivePoint::mul_by_generator(&d).to_affine()).unwrap();
            let sig = Signature::from_scalars(r.to_repr().into(), s.to_repr().into());
            rng.fill(&mut b).unwrap();
            // Also with e′ = r′, so that "x₁′ = 0" would pass B7 if infinity were read as (0, 0).
            for e in [Digest(b), Digest(r.to_repr().into())] {
                assert_eq!(
                    verify_digest(&key, &e, &sig),
                    Err(CryptoError::SignatureInvalid)
                );
                assert_eq!(
                    verify_digest_reference(&key, &e, &sig),
                    Err(CryptoError::SignatureInvalid)
                );
            }
        }
    }
}
