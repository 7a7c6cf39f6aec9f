//! SM3 (GB/T 32905-2016), HMAC-SM3 (RFC 2104 over SM3, GM/T 0042), and the key derivation
//! function of GB/T 32918.4-2016 §5.4.3.

use crypto::{CryptoError, Digest, Secret};
use hmac::{KeyInit, Mac};
use sm3::Digest as _;

/// Returns SM3(`data`) (GB/T 32905-2016 §5).
pub fn sm3(data: &[u8]) -> Digest {
    Digest(sm3::Sm3::digest(data).into())
}

/// Returns SM3 over the concatenation of `parts`, without copying them together.
pub fn sm3_parts(parts: &[&[u8]]) -> Digest {
    let mut h = sm3::Sm3::new();
    for p in parts {
        h.update(p);
    }
    Digest(h.finalize().into())
}

/// An incremental SM3 computation.
#[derive(Clone, Default)]
pub struct Sm3Context(sm3::Sm3);

impl core::fmt::Debug for Sm3Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Sm3Context")
    }
}

impl Sm3Context {
    /// Starts a new computation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Returns the digest.
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

/// Returns HMAC-SM3(`key`, `data`) (RFC 2104 with SM3, block size 64 bytes).
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length (long keys are hashed first), so this cannot fail.
    match hmac::Hmac::<sm3::Sm3>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0u8; 32],
    }
}

/// An incremental HMAC-SM3 under one key: the keyed inner and outer states are computed once
/// in [`HmacSm3::new`] and cloned for each message (the TLS 1.3 key schedule and Finished
/// MACs of RFC 8998 run many MACs under one key).
#[derive(Clone)]
pub struct HmacSm3(hmac::Hmac<sm3::Sm3>);

impl core::fmt::Debug for HmacSm3 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacSm3([redacted])")
    }
}

impl HmacSm3 {
    /// Keys the MAC; any key length is accepted (keys over 64 bytes are hashed first).
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here; the fallback
        // is an unreachable empty key, never a silent success of another operation.
        Self(
            hmac::Hmac::<sm3::Sm3>::new_from_slice(key)
                .unwrap_or_else(|_| <hmac::Hmac<sm3::Sm3> as KeyInit>::new(&Default::default())),
        )
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Returns the 32-byte tag.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into_bytes().into()
    }
}

/// Checks an HMAC-SM3 tag in constant time.
pub fn hmac_sm3_verify(key: &[u8], data: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
    let mut mac =
        hmac::Hmac::<sm3::Sm3>::new_from_slice(key).map_err(|_| CryptoError::InvalidInput {
            reason: "HMAC key rejected",
        })?;
    mac.update(data);
    mac.verify_slice(tag).map_err(|_| CryptoError::TagMismatch)
}

/// The largest output the KDF can produce: the 32-bit counter runs from 1 to 2^32 − 1.
pub const KDF_MAX_LEN: u64 = (u32::MAX as u64) * 32;

/// The SM3 key derivation function of GB/T 32918.4-2016 §5.4.3: the first `klen` bytes of
/// SM3(Z ‖ ct) for ct = 1, 2, … as 32-bit big-endian counters.
pub fn kdf(z: &[u8], klen: usize) -> Result<Secret, CryptoError> {
    if klen as u64 > KDF_MAX_LEN {
        return Err(CryptoError::InvalidInput {
            reason: "KDF output longer than (2^32 - 1) * 32 bytes",
        });
    }
    let mut out = vec![0u8; klen];
    let mut base = sm3::Sm3::new();
    base.update(z);
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        // §5.4.3 step a: ct starts at 0x00000001.
        let ct = (i as u32).wrapping_add(1);
        let mut h = base.clone();
        h.update(ct.to_be_bytes());
        let block = h.finalize();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_a_examples() {
        // GB/T 32905-2016 Annex A.1 and A.2
        assert_eq!(
            sm3(b"abc").to_hex(),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            sm3(&b"abcd".repeat(16)).to_hex(),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
        assert_eq!(sm3_parts(&[b"ab", b"c"]), sm3(b"abc"));
    }

    #[test]
    fn kdf_counter_and_length() {
        let z = b"shared secret";
        let k = kdf(z, 70).unwrap();
        assert_eq!(k.len(), 70);
        let mut first = z.to_vec();
        first.extend_from_slice(&1u32.to_be_bytes());
        assert_eq!(&k.expose()[..32], sm3(&first).as_bytes());
        let mut third = z.to_vec();
        third.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(&k.expose()[64..], &sm3(&third).as_bytes()[..6]);
        assert!(kdf(z, 0).unwrap().is_empty());
    }

    #[test]
    fn incremental_hmac_matches_the_one_shot_for_every_split_and_key_length() {
        let data: Vec<u8> = (0..200u8).collect();
        for key_len in [0usize, 1, 32, 64, 65, 200] {
            let key = vec![0x0bu8; key_len];
            let keyed = HmacSm3::new(&key);
            for cut in [0usize, 1, 63, 64, 65, 200] {
                let mut m = keyed.clone();
                m.update(&data[..cut]);
                m.update(&data[cut..]);
                assert_eq!(m.finish(), hmac_sm3(&key, &data), "key {key_len} cut {cut}");
            }
        }
    }

    #[test]
    fn hmac_verify_rejects_a_flipped_tag() {
        let mut tag = hmac_sm3(b"key", b"data");
        assert!(hmac_sm3_verify(b"key", b"data", &tag).is_ok());
        tag[0] ^= 1;
        assert_eq!(
            hmac_sm3_verify(b"key", b"data", &tag),
            Err(CryptoError::TagMismatch)
        );
    }
}
