//! The SM4 S-box as GF(2^8) inversion between two affine maps, in the forms the x86_64 kernels
//! apply: 8×8 bit matrices for GFNI and 4-bit lookup tables for `pshufb` around AES-NI's S-box.
//!
//! The SM4 S-box (GB/T 32907-2016 §6.2) is S(x) = A·I(A·x ⊕ C) ⊕ C, where I is inversion in
//! GF(2^8) modulo f(z) = z^8+z^7+z^6+z^5+z^4+z^2+1 (0x1F5), A the circulant bit matrix with first
//! row 0xA7 and C = 0xD3 (the structure is published; the tests below check it against the
//! standard's table for all 256 inputs). GF(2^8)/0x1F5 and AES's GF(2^8)/0x11B are isomorphic
//! by the linear map T that sends z to a root β of f in AES's field (β = 0x23 here), so
//! I(y) = T⁻¹·I_aes(T·y) and
//!
//! - S(x) = M2·I_aes(M1·x ⊕ c1) ⊕ c2 with M1 = T·A, c1 = T·C, M2 = A·T⁻¹, c2 = C: GFNI's
//!   `gf2p8affineqb` (M1, c1) then `gf2p8affineinvqb` (M2, c2, which inverts in AES's field first);
//! - S(x) = M2'·S_aes(M1·x ⊕ c1) ⊕ c2' with S_aes(z) = A_aes·I_aes(z) ⊕ 0x63 (AES-NI's
//!   `aesenclast` with a zero round key), M2' = M2·A_aes⁻¹ and c2' = M2'·0x63 ⊕ C.
//!
//! The constants were derived with the tests' own GF(2^8) code (`derive` below), which recomputes
//! them and checks them against the table: a change to any one fails `cargo test -p crypto-sm`.
//!
//! Matrix convention: a matrix is 8 row bytes, output bit i = parity(row[i] & x). GFNI stores row
//! i in byte 7 - i of the 64-bit operand.

/// M1 = T·A as a GFNI operand.
pub(crate) const GFNI_PRE: u64 = 0x4c28_7db9_1a22_505d;
/// c1 = T·C.
pub(crate) const GFNI_PRE_C: u8 = 0x3e;
/// M2 = A·T⁻¹ as a GFNI operand (applied after inversion by `gf2p8affineinvqb`).
pub(crate) const GFNI_POST: u64 = 0xf3ab_34a9_74a6_b589;
/// c2 = C.
pub(crate) const GFNI_POST_C: u8 = 0xd3;

/// x ↦ M1·x ⊕ c1 as two nibble tables: PRE_LO[x & 15] ^ PRE_HI[x >> 4] (c1 folded into LO).
pub(crate) const PRE_LO: [u8; 16] = [
    0x3e, 0xb2, 0x0e, 0x82, 0xbb, 0x37, 0x8b, 0x07, 0xa1, 0x2d, 0x91, 0x1d, 0x24, 0xa8, 0x14, 0x98,
];
pub(crate) const PRE_HI: [u8; 16] = [
    0x00, 0xdc, 0x2e, 0xf2, 0xc5, 0x19, 0xeb, 0x37, 0x08, 0xd4, 0x26, 0xfa, 0xcd, 0x11, 0xe3, 0x3f,
];
/// z ↦ M2'·z ⊕ c2' on AES's S-box output, as nibble tables (c2' folded into LO).
pub(crate) const POST_LO: [u8; 16] = [
    0x6c, 0xd4, 0xa6, 0x1e, 0x52, 0xea, 0x98, 0x20, 0x0b, 0xb3, 0xc1, 0x79, 0x35, 0x8d, 0xff, 0x47,
];
pub(crate) const POST_HI: [u8; 16] = [
    0x00, 0xe0, 0x50, 0xb0, 0x9d, 0x7d, 0xcd, 0x2d, 0xc0, 0x20, 0x90, 0x70, 0x5d, 0xbd, 0x0d, 0xed,
];

#[cfg(test)]
mod derive {
    use super::*;

    /// GB/T 32907-2016 §6.2, the S-box table (the reference the derivation is checked against).
    const SBOX: [u8; 256] = [
        0xd6, 0x90, 0xe9, 0xfe, 0xcc, 0xe1, 0x3d, 0xb7, 0x16, 0xb6, 0x14, 0xc2, 0x28, 0xfb, 0x2c,
        0x05, 0x2b, 0x67, 0x9a, 0x76, 0x2a, 0xbe, 0x04, 0xc3, 0xaa, 0x44, 0x13, 0x26, 0x49, 0x86,
        0x06, 0x99, 0x9c, 0x42, 0x50, 0xf4, 0x91, 0xef, 0x98, 0x7a, 0x33, 0x54, 0x0b, 0x43, 0xed,
        0xcf, 0xac, 0x62, 0xe4, 0xb3, 0x1c, 0xa9, 0xc9, 0x08, 0xe8, 0x95, 0x80, 0xdf, 0x94, 0xfa,
        0x75, 0x8f, 0x3f, 0xa6, 0x47, 0x07, 0xa7, 0xfc, 0xf3, 0x73, 0x17, 0xba, 0x83, 0x59, 0x3c,
        0x19, 0xe6, 0x85, 0x4f, 0xa8, 0x68, 0x6b, 0x81, 0xb2, 0x71, 0x64, 0xda, 0x8b, 0xf8, 0xeb,
        0x0f, 0x4b, 0x70, 0x56, 0x9d, 0x35, 0x1e, 0x24, 0x0e, 0x5e, 0x63, 0x58, 0xd1, 0xa2, 0x25,
        0x22, 0x7c, 0x3b, 0x01, 0x21, 0x78, 0x87, 0xd4, 0x00, 0x46, 0x57, 0x9f, 0xd3, 0x27, 0x52,
        0x4c, 0x36, 0x02, 0xe7, 0xa0, 0xc4, 0xc8, 0x9e, 0xea, 0xbf, 0x8a, 0xd2, 0x40, 0xc7, 0x38,
        0xb5, 0xa3, 0xf7, 0xf2, 0xce, 0xf9, 0x61, 0x15, 0xa1, 0xe0, 0xae, 0x5d, 0xa4, 0x9b, 0x34,
        0x1a, 0x55, 0xad, 0x93, 0x32, 0x30, 0xf5, 0x8c, 0xb1, 0xe3, 0x1d, 0xf6, 0xe2, 0x2e, 0x82,
        0x66, 0xca, 0x60, 0xc0, 0x29, 0x23, 0xab, 0x0d, 0x53, 0x4e, 0x6f, 0xd5, 0xdb, 0x37, 0x45,
        0xde, 0xfd, 0x8e, 0x2f, 0x03, 0xff, 0x6a, 0x72, 0x6d, 0x6c, 0x5b, 0x51, 0x8d, 0x1b, 0xaf,
        0x92, 0xbb, 0xdd, 0xbc, 0x7f, 0x11, 0xd9, 0x5c, 0x41, 0x1f, 0x10, 0x5a, 0xd8, 0x0a, 0xc1,
        0x31, 0x88, 0xa5, 0xcd, 0x7b, 0xbd, 0x2d, 0x74, 0xd0, 0x12, 0xb8, 0xe5, 0xb4, 0xb0, 0x89,
        0x69, 0x97, 0x4a, 0x0c, 0x96, 0x77, 0x7e, 0x65, 0xb9, 0xf1, 0x09, 0xc5, 0x6e, 0xc6, 0x84,
        0x18, 0xf0, 0x7d, 0xec, 0x3a, 0xdc, 0x4d, 0x20, 0x79, 0xee, 0x5f, 0x3e, 0xd7, 0xcb, 0x39,
        0x48,
    ];

    type Matrix = [u8; 8];

    fn gf_mul(mut a: u8, mut b: u8, poly: u16) -> u8 {
        let mut r = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                r ^= a;
            }
            b >>= 1;
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= (poly & 0xff) as u8;
            }
        }
        r
    }

    fn gf_inv(x: u8, poly: u16) -> u8 {
        (1..=255u8).find(|&y| gf_mul(x, y, poly) == 1).unwrap_or(0)
    }

    fn apply(m: &Matrix, x: u8) -> u8 {
        (0..8).fold(0, |acc, i| {
            acc | ((((m[i] & x).count_ones() & 1) as u8) << i)
        })
    }

    /// The matrix of a linear map, from the images of the basis bits.
    fn matrix_of(f: impl Fn(u8) -> u8) -> Matrix {
        let cols: Vec<u8> = (0..8).map(|j| f(1 << j)).collect();
        core::array::from_fn(|i| (0..8).fold(0, |row, j| row | (((cols[j] >> i) & 1) << j)))
    }

    fn mul(a: &Matrix, b: &Matrix) -> Matrix {
        matrix_of(|x| apply(a, apply(b, x)))
    }

    fn inverse(a: &Matrix) -> Matrix {
        let mut t = [0u8; 256];
        for x in 0..=255u8 {
            t[apply(a, x) as usize] = x;
        }
        matrix_of(|y| t[y as usize])
    }

    fn gfni_operand(m: &Matrix) -> u64 {
        (0..8).fold(0, |q, i| q | (u64::from(m[i]) << (8 * (7 - i))))
    }

    const A_SM4: Matrix = [0xa7, 0x4f, 0x9e, 0x3d, 0x7a, 0xf4, 0xe9, 0xd3];
    const C_SM4: u8 = 0xd3;
    const F_SM4: u16 = 0x1f5;
    const F_AES: u16 = 0x11b;

    fn a_aes() -> Matrix {
        matrix_of(|x| x ^ x.rotate_left(1) ^ x.rotate_left(2) ^ x.rotate_left(3) ^ x.rotate_left(4))
    }

    fn s_aes(z: u8) -> u8 {
        apply(&a_aes(), gf_inv(z, F_AES)) ^ 0x63
    }

    #[test]
    fn the_sm4_sbox_is_an_affine_inversion_in_gf_0x1f5() {
        for x in 0..=255u8 {
            let y = apply(&A_SM4, gf_inv(apply(&A_SM4, x) ^ C_SM4, F_SM4)) ^ C_SM4;
            assert_eq!(y, SBOX[x as usize], "x = {x:#04x}");
        }
        // The AES S-box built the same way is the AES S-box (FIPS 197 spot values).
        assert_eq!((s_aes(0x00), s_aes(0x01), s_aes(0x53)), (0x63, 0x7c, 0xed));
    }

    #[test]
    fn the_kernel_constants_are_the_derived_maps() {
        // β: a root of the SM4 field polynomial in AES's field; T sends z^j to β^j.
        let beta = 0x23u8;
        let pow = |e: u32| (0..e).fold(1u8, |r, _| gf_mul(r, beta, F_AES));
        let f_beta = [8, 7, 6, 5, 4, 2, 0].iter().fold(0, |acc, &e| acc ^ pow(e));
        assert_eq!(f_beta, 0, "β is a root of 0x1F5 in GF(2^8)/0x11B");
        let t = matrix_of(|x| {
            (0..8)
                .filter(|j| x >> j & 1 == 1)
                .fold(0, |acc, j| acc ^ pow(j))
        });
        let m1 = mul(&t, &A_SM4);
        let c1 = apply(&t, C_SM4);
        let m2 = mul(&A_SM4, &inverse(&t));
        let m2a = mul(&m2, &inverse(&a_aes()));
        let c2a = apply(&m2a, 0x63) ^ C_SM4;

        assert_eq!(gfni_operand(&m1), GFNI_PRE);
        assert_eq!(c1, GFNI_PRE_C);
        assert_eq!(gfni_operand(&m2), GFNI_POST);
        assert_eq!(C_SM4, GFNI_POST_C);
        for n in 0..16u8 {
            assert_eq!(PRE_LO[n as usize], apply(&m1, n) ^ c1);
            assert_eq!(PRE_HI[n as usize], apply(&m1, n << 4));
            assert_eq!(POST_LO[n as usize], apply(&m2a, n) ^ c2a);
            assert_eq!(POST_HI[n as usize], apply(&m2a, n << 4));
        }

        // Both kernel formulas give the standard's S-box for every input.
        for x in 0..=255u8 {
            let pre = PRE_LO[(x & 15) as usize] ^ PRE_HI[(x >> 4) as usize];
            let gfni = apply(&m2, gf_inv(pre, F_AES)) ^ GFNI_POST_C;
            let z = s_aes(pre);
            let aesni = POST_LO[(z & 15) as usize] ^ POST_HI[(z >> 4) as usize];
            assert_eq!(gfni, SBOX[x as usize], "GFNI form, x = {x:#04x}");
            assert_eq!(aesni, SBOX[x as usize], "AES-NI form, x = {x:#04x}");
        }
    }
}
