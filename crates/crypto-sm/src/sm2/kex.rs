//! The SM2 key exchange protocol of GB/T 32918.3-2016 §6.1, with the optional confirmation
//! values S1/SB and S2/SA. Both parties run the same function with their role.

use super::{PrivateKey, coordinates, decode_point, validate, za};
use crate::sm3::{Sm3Context, kdf};
use crypto::{CryptoError, Digest, PublicKey, RandomSource, Secret, UserId};
use elliptic_curve::subtle::ConstantTimeEq;
use elliptic_curve::{Group, PrimeField};
use sm2::{FieldBytes, NonZeroScalar, ProjectivePoint, Scalar};
use zeroize::{Zeroize, Zeroizing};

use super::elliptic_curve;

/// Which side of the exchange we are: A (initiator) or B (responder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KexRole {
    /// User A of GB/T 32918.3, who sends RA first.
    Initiator,
    /// User B, who answers with RB (and SB).
    Responder,
}

/// An ephemeral key pair (r, R = [r]G); r is zeroized on drop.
pub struct EphemeralKey {
    r: NonZeroScalar,
    point: PublicKey,
}

impl Drop for EphemeralKey {
    fn drop(&mut self) {
        self.r.zeroize();
    }
}

impl core::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EphemeralKey([redacted], R={:?})", self.point)
    }
}

impl EphemeralKey {
    /// A1-A3 / B1-B3: r ∈ [1, n−1], R = [r]G.
    pub fn generate(rng: &dyn RandomSource) -> Result<Self, CryptoError> {
        for _ in 0..64 {
            let mut b = Zeroizing::new([0u8; 32]);
            rng.fill(&mut b[..])?;
            if let Ok(k) = Self::from_bytes(&b) {
                return Ok(k);
            }
        }
        Err(CryptoError::Entropy)
    }

    /// Builds an ephemeral key from a given r (for known-answer tests and the `danger` module).
    pub(crate) fn from_bytes(r: &[u8; 32]) -> Result<Self, CryptoError> {
        let r = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr((*r).into())).ok_or(
            CryptoError::InvalidInput {
                reason: "r must lie in [1, n-1]",
            },
        )?;
        let point = super::encode_point(&ProjectivePoint::mul_by_generator(&*r).to_affine())?;
        Ok(Self { r, point })
    }

    /// Returns R, to send to the peer.
    pub fn public(&self) -> PublicKey {
        self.point
    }

    /// Elliptic-curve Diffie-Hellman on sm2p256v1 (TLS 1.3 `curveSM2`, RFC 8998 §3.1, with the
    /// shared secret of RFC 8446 §7.4.2: the x-coordinate of [r]Q). `peer` is validated as a
    /// public key first (GB/T 32918.1 §6.2: on the curve, not the point at infinity), so an
    /// invalid-curve point is refused before any multiplication with r.
    pub fn diffie_hellman(&self, peer: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let q = ProjectivePoint::from(decode_point(peer).map_err(|_| {
            CryptoError::InvalidPublicKey {
                reason: "the peer's key share is not a point of sm2p256v1",
            }
        })?);
        let shared = q * *self.r;
        // The cofactor is 1 and r ∈ [1, n−1], so [r]Q = O only for Q = O, refused above; the
        // check stays so that no future change of the decoder can yield a zero secret.
        if bool::from(shared.is_identity()) {
            return Err(CryptoError::InvalidInput {
                reason: "shared point is the point at infinity",
            });
        }
        let (x, mut y) = coordinates(&shared.to_affine());
        y.zeroize();
        Ok(Zeroizing::new(x))
    }
}

/// The agreed key and the confirmation values of one party.
pub struct KexOutcome {
    /// K (KA or KB), `klen` bytes.
    pub key: Secret,
    /// The confirmation value this party sends: SA (A) or SB (B).
    pub confirmation: [u8; 32],
    expected_from_peer: [u8; 32],
}

impl core::fmt::Debug for KexOutcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KexOutcome([redacted])")
    }
}

impl KexOutcome {
    /// Checks the peer's confirmation value (A checks S1 = SB, B checks S2 = SA) in constant time.
    pub fn check_peer_confirmation(&self, value: &[u8]) -> Result<(), CryptoError> {
        if bool::from(self.expected_from_peer.as_slice().ct_eq(value)) {
            Ok(())
        } else {
            Err(CryptoError::InvalidInput {
                reason: "key confirmation value from the peer does not match",
            })
        }
    }

    /// Returns the value the peer is expected to send (exposed for known-answer tests).
    pub fn expected_from_peer(&self) -> &[u8; 32] {
        &self.expected_from_peer
    }
}

/// x̄ = 2^w + (x & (2^w − 1)) with w = ⌈⌈log2 n⌉ / 2⌉ − 1 = 127 (GB/T 32918.3 §6.1 A4/B3).
fn x_bar(x: &[u8; 32]) -> Scalar {
    let mut b = [0u8; 32];
    b[16..].copy_from_slice(&x[16..]);
    b[16] = (b[16] & 0x7f) | 0x80;
    // 2^127 + (x mod 2^127) < n always, so from_repr succeeds.
    Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(b))).unwrap_or(Scalar::ZERO)
}

/// Runs one party's side of GB/T 32918.3 §6.1.
///
/// `own` and `own_id` are this party's long-term key and ID; `own_eph` its ephemeral key;
/// `peer`, `peer_id` and `peer_eph` the other party's public values. Returns K of `klen` bytes
/// and the confirmation values.
#[allow(clippy::too_many_arguments)]
pub fn key_exchange(
    role: KexRole,
    own: &PrivateKey,
    own_id: &UserId,
    own_eph: &EphemeralKey,
    peer: &PublicKey,
    peer_id: &UserId,
    peer_eph: &PublicKey,
    klen: usize,
) -> Result<KexOutcome, CryptoError> {
    if klen == 0 {
        return Err(CryptoError::InvalidInput {
            reason: "klen must be at least 1 byte",
        });
    }
    let peer_point = ProjectivePoint::from(validate(peer)?);
    // A6 / B4: the peer's R must be a point of the curve.
    let peer_r =
        ProjectivePoint::from(
            validate(peer_eph).map_err(|_| CryptoError::InvalidPublicKey {
                reason: "peer's ephemeral point R is not a point of sm2p256v1",
            })?,
        );
    let (own_rx, _) = split_xy(&own_eph.point);
    let (peer_rx, _) = split_xy(peer_eph);
    // A4-A5 / B3-B4: t = (d + x̄·r) mod n
    let mut t = **own.scalar() + x_bar(&own_rx) * *own_eph.r;
    // A7 / B5: U = [h·t](P_peer + [x̄_peer]R_peer), h = 1; U ≠ O
    let u = (peer_point + peer_r * x_bar(&peer_rx)) * t;
    t.zeroize();
    if bool::from(u.is_identity()) {
        return Err(CryptoError::InvalidInput {
            reason: "shared point is the point at infinity",
        });
    }
    let (ux, uy) = coordinates(&u.to_affine());
    let (ux, uy) = (Zeroizing::new(ux), Zeroizing::new(uy));
    let z_own = za(own_id, &own.public_key());
    let z_peer = za(peer_id, peer);
    // ZA is always the initiator's, RA = (x1, y1) the initiator's ephemeral point.
    let (z_a, z_b, r_a, r_b): (Digest, Digest, &PublicKey, &PublicKey) = match role {
        KexRole::Initiator => (z_own, z_peer, &own_eph.point, peer_eph),
        KexRole::Responder => (z_peer, z_own, peer_eph, &own_eph.point),
    };
    // A8 / B6: K = KDF(xU ‖ yU ‖ ZA ‖ ZB, klen)
    let mut z = Zeroizing::new(Vec::with_capacity(128));
    z.extend_from_slice(&ux[..]);
    z.extend_from_slice(&uy[..]);
    z.extend_from_slice(z_a.as_bytes());
    z.extend_from_slice(z_b.as_bytes());
    let key = kdf(&z, klen)?;
    // Hash(xU ‖ ZA ‖ ZB ‖ x1 ‖ y1 ‖ x2 ‖ y2), shared by S1/SB and S2/SA
    let mut inner = Sm3Context::new();
    inner.update(&ux[..]);
    inner.update(z_a.as_bytes());
    inner.update(z_b.as_bytes());
    inner.update(&r_a.as_bytes()[1..]);
    inner.update(&r_b.as_bytes()[1..]);
    let inner = inner.finish();
    let confirm = |prefix: u8| {
        let mut h = Sm3Context::new();
        h.update(&[prefix]);
        h.update(&uy[..]);
        h.update(inner.as_bytes());
        h.finish().0
    };
    // SB / S1 use 0x02; SA / S2 use 0x03 (B8, A9, A10, B10).
    let s02 = confirm(0x02);
    let s03 = confirm(0x03);
    let (confirmation, expected_from_peer) = match role {
        KexRole::Initiator => (s03, s02),
        KexRole::Responder => (s02, s03),
    };
    Ok(KexOutcome {
        key,
        confirmation,
        expected_from_peer,
    })
}

fn split_xy(p: &PublicKey) -> ([u8; 32], [u8; 32]) {
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    x.copy_from_slice(p.x());
    y.copy_from_slice(p.y());
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    #[test]
    fn both_sides_agree_and_confirm() {
        let rng = SeededRandom::new(5);
        let a = PrivateKey::generate(&rng).unwrap();
        let b = PrivateKey::generate(&rng).unwrap();
        let ida = UserId::new(b"ALICE123@YAHOO.COM".to_vec()).unwrap();
        let idb = UserId::new(b"BILL456@YAHOO.COM".to_vec()).unwrap();
        let ea = EphemeralKey::generate(&rng).unwrap();
        let eb = EphemeralKey::generate(&rng).unwrap();
        let kb = key_exchange(
            KexRole::Responder,
            &b,
            &idb,
            &eb,
            &a.public_key(),
            &ida,
            &ea.public(),
            16,
        )
        .unwrap();
        let ka = key_exchange(
            KexRole::Initiator,
            &a,
            &ida,
            &ea,
            &b.public_key(),
            &idb,
            &eb.public(),
            16,
        )
        .unwrap();
        assert_eq!(ka.key, kb.key);
        ka.check_peer_confirmation(&kb.confirmation).unwrap();
        kb.check_peer_confirmation(&ka.confirmation).unwrap();
        // a wrong ID on one side gives different keys and failing confirmation
        let wrong = UserId::new(b"MALLORY".to_vec()).unwrap();
        let kx = key_exchange(
            KexRole::Initiator,
            &a,
            &ida,
            &ea,
            &b.public_key(),
            &wrong,
            &eb.public(),
            16,
        )
        .unwrap();
        assert_ne!(kx.key, kb.key);
        assert!(kx.check_peer_confirmation(&kb.confirmation).is_err());
        let mut bad_r = *eb.public().as_bytes();
        bad_r[64] ^= 1;
        let bad_r = PublicKey::from_uncompressed(&bad_r).unwrap();
        assert!(
            key_exchange(
                KexRole::Initiator,
                &a,
                &ida,
                &ea,
                &b.public_key(),
                &idb,
                &bad_r,
                16
            )
            .is_err()
        );
    }
}
