//! Arithmetic modulo the SM2 prime p = 2^256 − 2^224 − 2^96 + 2^64 − 1, variable time, for
//! verification only.
//!
//! An element is four little-endian 64-bit limbs holding a·R mod p with R = 2^256 (Montgomery
//! form), always fully reduced (< p). Montgomery reduction is cheap for this prime: −p⁻¹ mod 2^64
//! is 1, so the quotient digit of each round is the low limb itself, and adding that digit
//! times p, divided by 2^64, is adding m·(p + 1)/2^64 = m·(2^192 − 2^160 − 2^32 + 1): shifts,
//! additions and subtractions, no multiplication.

/// p, little-endian limbs.
pub(super) const P: [u64; 4] = [
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_0000_0000,
    0xffff_ffff_ffff_ffff,
    0xffff_fffe_ffff_ffff,
];

/// R² mod p, to enter Montgomery form (R = 2^256).
const R2: [u64; 4] = [
    0x0000_0002_0000_0003,
    0x0000_0002_ffff_ffff,
    0x0000_0001_0000_0001,
    0x0000_0004_0000_0002,
];

/// An element of GF(p) in Montgomery form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fe(pub(super) [u64; 4]);

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    // borrow is 0 or 1; the returned borrow too.
    let t = u128::from(a)
        .wrapping_sub(u128::from(b))
        .wrapping_sub(u128::from(borrow));
    (t as u64, ((t >> 64) as u64) & 1)
}

#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(acc) + u128::from(a) * u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

/// Subtracts p from the 257-bit value (hi, a) if it is ≥ p; (hi, a) < 2p.
#[inline(always)]
fn reduce_once(a: [u64; 4], hi: u64) -> [u64; 4] {
    let (r0, b) = sbb(a[0], P[0], 0);
    let (r1, b) = sbb(a[1], P[1], b);
    let (r2, b) = sbb(a[2], P[2], b);
    let (r3, b) = sbb(a[3], P[3], b);
    let (_, b) = sbb(hi, 0, b);
    // b = 1: the value was below p, keep it. A mask rather than a branch: the outcome is a coin
    // toss for random data, and a mispredicted branch costs more than the selects.
    let keep = 0u64.wrapping_sub(b);
    [
        (a[0] & keep) | (r0 & !keep),
        (a[1] & keep) | (r1 & !keep),
        (a[2] & keep) | (r2 & !keep),
        (a[3] & keep) | (r3 & !keep),
    ]
}

/// Montgomery reduction of a 512-bit product t < p·R: returns t·R⁻¹ mod p.
#[inline(always)]
fn montgomery_reduce(t: [u64; 8]) -> [u64; 4] {
    // Each round takes m = the lowest live limb; (t + m·p) / 2^64 = t/2^64 (the low limb
    // cancels exactly) + m·(2^192 − 2^160 − 2^32 + 1), and that multiple of m is
    // [m − (m≪32), −(m≫32) − borrow, −(m≪32) − borrow, m − (m≫32) − borrow] as limbs, never
    // negative overall.
    let mut t = t;
    let mut top = 0u64; // the carry above t[7]
    for i in 0..4 {
        let m = t[i];
        let lo = m << 32;
        let hi = m >> 32;
        let (d0, b) = sbb(m, lo, 0);
        let (d1, b) = sbb(0, hi, b);
        let (d2, b) = sbb(0, lo, b);
        let (d3, _) = sbb(m, hi, b);
        let (x, c) = adc(t[i + 1], d0, 0);
        t[i + 1] = x;
        let (x, c) = adc(t[i + 2], d1, c);
        t[i + 2] = x;
        let (x, c) = adc(t[i + 3], d2, c);
        t[i + 3] = x;
        let (x, c) = adc(t[i + 4], d3, c);
        t[i + 4] = x;
        // Propagate the carry to the top.
        let mut c = c;
        let mut j = i + 5;
        while j < 8 {
            let (x, c2) = adc(t[j], 0, c);
            t[j] = x;
            c = c2;
            j += 1;
        }
        top += c;
    }
    reduce_once([t[4], t[5], t[6], t[7]], top)
}

impl Fe {
    pub(super) const ZERO: Fe = Fe([0; 4]);
    /// 1 in Montgomery form: R mod p = 2^256 − p.
    pub(super) const ONE: Fe = Fe([1, 0x0000_0000_ffff_ffff, 0, 0x0000_0001_0000_0000]);

    /// Reads a big-endian integer; `None` if it is not below p.
    pub(super) fn from_be_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = 32 - 8 * (i + 1);
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[start..start + 8]);
            *limb = u64::from_be_bytes(word);
        }
        Fe::from_limbs(&limbs)
    }

    /// Enters Montgomery form from little-endian limbs; `None` if the integer is not below p.
    pub(super) fn from_limbs(limbs: &[u64; 4]) -> Option<Fe> {
        if !less_than(limbs, &P) {
            return None;
        }
        Some(Fe(*limbs).mul(&Fe(R2)))
    }

    /// Returns the canonical big-endian encoding.
    #[cfg(test)]
    pub(super) fn to_be_bytes(self) -> [u8; 32] {
        let mut t = [0u64; 8];
        t[..4].copy_from_slice(&self.0);
        let limbs = montgomery_reduce(t);
        let mut out = [0u8; 32];
        for (i, limb) in limbs.iter().enumerate() {
            out[32 - 8 * (i + 1)..32 - 8 * i].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    pub(super) fn is_zero(&self) -> bool {
        (self.0[0] | self.0[1] | self.0[2] | self.0[3]) == 0
    }

    #[inline(always)]
    pub(super) fn add(&self, rhs: &Fe) -> Fe {
        let (r0, c) = adc(self.0[0], rhs.0[0], 0);
        let (r1, c) = adc(self.0[1], rhs.0[1], c);
        let (r2, c) = adc(self.0[2], rhs.0[2], c);
        let (r3, c) = adc(self.0[3], rhs.0[3], c);
        Fe(reduce_once([r0, r1, r2, r3], c))
    }

    #[inline(always)]
    pub(super) fn double(&self) -> Fe {
        self.add(self)
    }

    #[inline(always)]
    pub(super) fn sub(&self, rhs: &Fe) -> Fe {
        let (r0, b) = sbb(self.0[0], rhs.0[0], 0);
        let (r1, b) = sbb(self.0[1], rhs.0[1], b);
        let (r2, b) = sbb(self.0[2], rhs.0[2], b);
        let (r3, b) = sbb(self.0[3], rhs.0[3], b);
        // On a borrow add p back (masked, as in reduce_once).
        let mask = 0u64.wrapping_sub(b);
        let (r0, c) = adc(r0, P[0] & mask, 0);
        let (r1, c) = adc(r1, P[1] & mask, c);
        let (r2, c) = adc(r2, P[2] & mask, c);
        let (r3, _) = adc(r3, P[3] & mask, c);
        Fe([r0, r1, r2, r3])
    }

    /// k·self for a small k (at most 2^32): one row of products, then the carry word folded
    /// back with 2^256 ≡ 2^224 + 2^96 − 2^64 + 1 (mod p).
    #[inline(always)]
    pub(super) fn mul_small(&self, k: u64) -> Fe {
        let a = &self.0;
        let (r0, c) = mac(0, a[0], k, 0);
        let (r1, c) = mac(0, a[1], k, c);
        let (r2, c) = mac(0, a[2], k, c);
        let (r3, hi) = mac(0, a[3], k, c);
        // hi < 2^32, so hi·2^32 − hi fits a word and the sum stays below 2p.
        let (s0, c) = adc(r0, hi, 0);
        let (s1, c) = adc(r1, (hi << 32) - hi, c);
        let (s2, c) = adc(r2, 0, c);
        let (s3, c) = adc(r3, hi << 32, c);
        Fe(reduce_once([s0, s1, s2, s3], c))
    }

    #[inline(always)]
    pub(super) fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    #[inline(always)]
    pub(super) fn mul(&self, rhs: &Fe) -> Fe {
        let a = &self.0;
        let b = &rhs.0;
        let mut t = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0u64;
            for j in 0..4 {
                let (x, c) = mac(t[i + j], a[i], b[j], carry);
                t[i + j] = x;
                carry = c;
            }
            t[i + 4] = carry;
        }
        Fe(montgomery_reduce(t))
    }

    #[inline(always)]
    pub(super) fn square(&self) -> Fe {
        let a = &self.0;
        // Off-diagonal products once, doubled, then the squares of the limbs.
        let mut t = [0u64; 8];
        let (x, c) = mac(0, a[0], a[1], 0);
        t[1] = x;
        let (x, c) = mac(0, a[0], a[2], c);
        t[2] = x;
        let (x, c) = mac(0, a[0], a[3], c);
        t[3] = x;
        t[4] = c;
        let (x, c) = mac(t[3], a[1], a[2], 0);
        t[3] = x;
        let (x, c) = mac(t[4], a[1], a[3], c);
        t[4] = x;
        t[5] = c;
        let (x, c) = mac(t[5], a[2], a[3], 0);
        t[5] = x;
        t[6] = c;
        t[7] = t[6] >> 63;
        t[6] = (t[6] << 1) | (t[5] >> 63);
        t[5] = (t[5] << 1) | (t[4] >> 63);
        t[4] = (t[4] << 1) | (t[3] >> 63);
        t[3] = (t[3] << 1) | (t[2] >> 63);
        t[2] = (t[2] << 1) | (t[1] >> 63);
        t[1] <<= 1;
        let (x, c) = mac(0, a[0], a[0], 0);
        t[0] = x;
        let (x, c) = adc(t[1], c, 0);
        t[1] = x;
        let (x, c2) = mac(t[2], a[1], a[1], c);
        t[2] = x;
        let (x, c) = adc(t[3], c2, 0);
        t[3] = x;
        let (x, c2) = mac(t[4], a[2], a[2], c);
        t[4] = x;
        let (x, c) = adc(t[5], c2, 0);
        t[5] = x;
        let (x, c2) = mac(t[6], a[3], a[3], c);
        t[6] = x;
        let (x, _) = adc(t[7], c2, 0);
        t[7] = x;
        Fe(montgomery_reduce(t))
    }

    /// Squares n times.
    fn square_n(&self, n: u32) -> Fe {
        let mut r = *self;
        for _ in 0..n {
            r = r.square();
        }
        r
    }

    /// Returns self^(p−2) = self⁻¹ (0 for 0), by an addition chain over the runs of ones of
    /// p − 2: 31 ones, a zero, 128 ones, 32 zeros, 62 ones, a zero, a one.
    pub(super) fn invert(&self) -> Fe {
        let x1 = *self;
        let x2 = x1.square().mul(&x1); // x^(2^2 − 1)
        let x3 = x2.square().mul(&x1);
        let x6 = x3.square_n(3).mul(&x3);
        let x12 = x6.square_n(6).mul(&x6);
        let x24 = x12.square_n(12).mul(&x12);
        let x30 = x24.square_n(6).mul(&x6);
        let x31 = x30.square().mul(&x1);
        let x32 = x31.square().mul(&x1);
        let mut r = x31.square(); // 31 ones, 0
        for _ in 0..4 {
            r = r.square_n(32).mul(&x32); // 128 ones
        }
        r = r.square_n(32); // 32 zeros
        r = r.square_n(31).mul(&x31);
        r = r.square_n(31).mul(&x31); // 62 ones
        r = r.square(); // 0
        r.square().mul(&x1) // 1
    }
}

/// a < b for little-endian limbs.
pub(super) fn less_than(a: &[u64; 4], b: &[u64; 4]) -> bool {
    for i in (0..4).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}
