//! Points of sm2p256v1 (y² = x³ − 3x + b) in Jacobian coordinates (x = X/Z², y = Y/Z³, Z = 0 for
//! the point at infinity) and affine points for the precomputed tables, variable time.
//!
//! The formulas are the classic Jacobian ones for a = −3 (the doubling as in the
//! Explicit-Formulas Database's "dbl-2001-b" with Z3 = 2·Y·Z, the additions as
//! "add-1998-cmo-2" and "madd-2004-hmv"): they are not complete, so each addition tests for the
//! two exceptional cases (equal inputs: double instead; opposite inputs: the point at infinity)
//! on the public values it adds.

use super::field::Fe;

/// An affine point (never the point at infinity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Affine {
    pub(super) x: Fe,
    pub(super) y: Fe,
}

/// A point in Jacobian coordinates.
#[derive(Clone, Copy, Debug)]
pub(super) struct Jacobian {
    pub(super) x: Fe,
    pub(super) y: Fe,
    pub(super) z: Fe,
}

impl Affine {
    pub(super) fn neg(&self) -> Affine {
        Affine {
            x: self.x,
            y: self.y.neg(),
        }
    }

    /// Whether y² = x³ − 3x + b.
    #[cfg(test)]
    pub(super) fn is_on_curve(&self) -> bool {
        let x2 = self.x.square();
        let x3 = x2.mul(&self.x);
        let three_x = self.x.double().add(&self.x);
        let rhs = x3.sub(&three_x).add(&curve_b());
        self.y.square() == rhs
    }
}

/// b of sm2p256v1, in Montgomery form.
#[cfg(test)]
fn curve_b() -> Fe {
    // The constant is below p, so the conversion cannot fail; ZERO only keeps this panic-free.
    Fe::from_be_bytes(&B_BYTES).unwrap_or(Fe::ZERO)
}

#[cfg(test)]
const B_BYTES: [u8; 32] = [
    0x28, 0xe9, 0xfa, 0x9e, 0x9d, 0x9f, 0x5e, 0x34, 0x4d, 0x5a, 0x9e, 0x4b, 0xcf, 0x65, 0x09, 0xa7,
    0xf3, 0x97, 0x89, 0xf5, 0x15, 0xab, 0x8f, 0x92, 0xdd, 0xbc, 0xbd, 0x41, 0x4d, 0x94, 0x0e, 0x93,
];

impl Jacobian {
    pub(super) const IDENTITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    pub(super) fn from_affine(p: &Affine) -> Jacobian {
        Jacobian {
            x: p.x,
            y: p.y,
            z: Fe::ONE,
        }
    }

    pub(super) fn is_identity(&self) -> bool {
        self.z.is_zero()
    }

    pub(super) fn neg(&self) -> Jacobian {
        Jacobian {
            x: self.x,
            y: self.y.neg(),
            z: self.z,
        }
    }

    /// Returns the affine point, or `None` for the point at infinity (one inversion).
    #[cfg(test)]
    pub(super) fn to_affine(self) -> Option<Affine> {
        if self.is_identity() {
            return None;
        }
        let zi = self.z.invert();
        let zi2 = zi.square();
        Some(Affine {
            x: self.x.mul(&zi2),
            y: self.y.mul(&zi2.mul(&zi)),
        })
    }

    /// 2·self: 4M + 4S (a = −3); Z3 = 2·Y·Z rather than (Y + Z)² − Y² − Z², which saves
    /// three additions for the price of a multiplication in place of a squaring.
    #[inline]
    pub(super) fn double(&self) -> Jacobian {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta4 = self.x.mul(&gamma).mul_small(4);
        let alpha = self.x.sub(&delta).mul(&self.x.add(&delta)).mul_small(3);
        let x3 = alpha.square().sub(&beta4.double());
        let z3 = self.y.mul(&self.z).double();
        let y3 = alpha.mul(&beta4.sub(&x3)).sub(&gamma.square().mul_small(8));
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// self + q for an affine q: 8M + 3S.
    #[inline]
    pub(super) fn add_affine(&self, q: &Affine) -> Jacobian {
        if self.is_identity() {
            return Jacobian::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z.mul(&z1z1));
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::IDENTITY
            };
        }
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = self.x.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&self.y.mul(&hhh));
        let z3 = self.z.mul(&h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// self + q: 12M + 4S.
    #[inline]
    pub(super) fn add(&self, q: &Jacobian) -> Jacobian {
        self.add_cached(&Cached::new(q))
    }

    /// self + q with q's Z² and Z³ at hand: 11M + 3S.
    #[inline]
    pub(super) fn add_cached(&self, q: &Cached) -> Jacobian {
        if self.is_identity() {
            return q.point;
        }
        if q.point.is_identity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let u1 = self.x.mul(&q.zz);
        let u2 = q.point.x.mul(&z1z1);
        let s1 = self.y.mul(&q.zzz);
        let s2 = q.point.y.mul(&self.z.mul(&z1z1));
        let h = u2.sub(&u1);
        let r = s2.sub(&s1);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::IDENTITY
            };
        }
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = u1.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&s1.mul(&hhh));
        let z3 = self.z.mul(&q.point.z).mul(&h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }
}

/// A Jacobian point with Z² and Z³ precomputed: the per-key table's entries, each added many
/// times.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cached {
    point: Jacobian,
    zz: Fe,
    zzz: Fe,
}

impl Cached {
    pub(super) fn new(point: &Jacobian) -> Cached {
        let zz = point.z.square();
        Cached {
            point: *point,
            zz,
            zzz: zz.mul(&point.z),
        }
    }

    pub(super) fn neg(&self) -> Cached {
        Cached {
            point: self.point.neg(),
            ..*self
        }
    }
}

/// Converts many points to affine with one inversion (Montgomery's trick). Returns `None` if
/// any is the point at infinity.
pub(super) fn batch_to_affine(points: &[Jacobian]) -> Option<Vec<Affine>> {
    if points.iter().any(Jacobian::is_identity) {
        return None;
    }
    // prefix[i] = z_0 · … · z_i
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = Fe::ONE;
    for p in points {
        acc = acc.mul(&p.z);
        prefix.push(acc);
    }
    let mut inv = acc.invert(); // (z_0 · … · z_{n−1})⁻¹
    let mut out = vec![
        Affine {
            x: Fe::ZERO,
            y: Fe::ZERO
        };
        points.len()
    ];
    for i in (0..points.len()).rev() {
        let zi = if i == 0 { inv } else { inv.mul(&prefix[i - 1]) };
        inv = inv.mul(&points[i].z);
        let zi2 = zi.square();
        out[i] = Affine {
            x: points[i].x.mul(&zi2),
            y: points[i].y.mul(&zi2.mul(&zi)),
        };
    }
    Some(out)
}
