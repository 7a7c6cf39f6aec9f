//! SM3 (GB/T 32905-2016), HMAC-SM3 (RFC 2104 over SM3, GM/T 0042), the key derivation
//! function of GB/T 32918.4-2016 §5.4.3, and SM3 of many short items at once.
//!
//! One message is RustCrypto's `sm3`. Issue 19 measured a compression of our own in safe Rust
//! (round constants T_j <<< j precomputed, a 16-word rolling message schedule, the two round
//! families unrolled, register roles renamed instead of moved) at 0.98–1.0× RustCrypto's, and
//! the message expansion in SSE/AVX-512VL registers beside the scalar rounds at 1.01–1.02×: a
//! round is bound by the latency of E → SS1 → TT2 → P0 → E (seven dependent operations), which
//! no reordering of the independent work shortens. Neither was worth replacing a maintained
//! crate or adding `unsafe` (numbers in `docs/ARCHITECTURE.md`).
//!
//! Many messages are another matter: [`sm3_many`] hashes eight independent messages at once,
//! one per 32-bit lane of a SIMD register, with the kernels of `arch::sm3` (AVX2, or AVX-512VL
//! for one-instruction rotations); [`Sm3Backend`] names them and the fastest this CPU has is
//! used. Transaction IDs, Merkle nodes (65 bytes) and state-tree nodes are hashed in batches.

use crate::arch::sm3::Sm3Kernel;
use crypto::{CryptoError, Digest, Secret};
use hmac::{KeyInit, Mac};
use sm3::Digest as _;
use std::sync::OnceLock;
use zeroize::Zeroize;

/// The initial value IV (§4.1).
const IV: [u32; 8] = [
    0x7380_166f,
    0x4914_b2b9,
    0x1724_42d7,
    0xda8a_0600,
    0xa96f_30bc,
    0x1631_38aa,
    0xe38d_ee4d,
    0xb0fb_0e4e,
];

/// The round constants T_j (§4.2) already rotated left by j mod 32, as §5.3.3 uses them.
pub(crate) const T: [u32; 64] = {
    let mut t = [0u32; 64];
    let mut j = 0;
    while j < 64 {
        let tj: u32 = if j < 16 { 0x79cc_4519 } else { 0x7a87_9d8a };
        t[j] = tj.rotate_left((j % 32) as u32);
        j += 1;
    }
    t
};

/// How [`sm3_many`] runs (one message, [`sm3`] and [`Sm3Context`], is always RustCrypto's
/// `sm3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sm3Backend {
    /// Every CPU: one message after the other.
    Portable,
    /// x86_64 AVX2: eight messages at once in YMM lanes (rotations as two shifts and an OR).
    Avx2,
    /// x86_64 AVX-512F + AVX-512VL (and AVX2): eight messages at once in YMM lanes, rotations
    /// with `vprold`, the Boolean functions with `vpternlogd`.
    Avx512Vl,
}

static DETECTED: OnceLock<Sm3Backend> = OnceLock::new();

impl Sm3Backend {
    /// Every backend, whether or not this CPU can run it.
    pub const ALL: [Sm3Backend; 3] = [Sm3Backend::Portable, Sm3Backend::Avx2, Sm3Backend::Avx512Vl];

    /// The backend's name in test and benchmark reports.
    pub fn name(self) -> &'static str {
        match self {
            Sm3Backend::Portable => "portable",
            Sm3Backend::Avx2 => "avx2",
            Sm3Backend::Avx512Vl => "avx512vl",
        }
    }

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        self == Sm3Backend::Portable || Sm3Kernel::detect(self).is_some()
    }

    /// The backends this CPU can run.
    pub fn available() -> Vec<Sm3Backend> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// The backends this CPU cannot run (tests list them as untested, never as passed).
    pub fn unavailable() -> Vec<Sm3Backend> {
        Self::ALL
            .into_iter()
            .filter(|b| !b.is_available())
            .collect()
    }

    /// The backend [`sm3_many`] uses: the fastest this CPU can run, detected once per process.
    pub fn detected() -> Sm3Backend {
        *DETECTED.get_or_init(|| {
            [Sm3Backend::Avx512Vl, Sm3Backend::Avx2]
                .into_iter()
                .find(|b| b.is_available())
                .unwrap_or(Sm3Backend::Portable)
        })
    }

    fn engine(self) -> Result<Engine, CryptoError> {
        match self {
            Sm3Backend::Portable => Ok(Engine(None)),
            _ => Sm3Kernel::detect(self)
                .map(|k| Engine(Some(k)))
                .ok_or(CryptoError::Unsupported {
                    what: match self {
                        Sm3Backend::Avx2 => "the SM3 avx2 backend (this CPU lacks AVX2)",
                        _ => "the SM3 avx512vl backend (this CPU lacks AVX-512F/VL or AVX2)",
                    },
                }),
        }
    }
}

impl core::fmt::Display for Sm3Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The lanes kernel of [`sm3_many`]: a detected kernel, or none for one message at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Engine(Option<Sm3Kernel>);

impl Engine {
    fn detected() -> Self {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        *ENGINE.get_or_init(|| Sm3Backend::detected().engine().unwrap_or(Engine(None)))
    }
}

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

/// Messages of more blocks than this are hashed on their own by [`sm3_many`]: a lane batch
/// runs as many blocks as its longest member, so one long item would hold seven short ones.
/// Seventeen blocks: a 1 KiB message with its padding (the bound [`sm3_many`] names; at 16,
/// `gmchain bench crypto`'s 1 KiB row showed every 1 KiB message going one at a time).
const MANY_MAX_BLOCKS: usize = 17;

/// Returns SM3 of each item, in order: `sm3_many(items)[i] == sm3(items[i])`.
///
/// For many short items (transaction IDs, Merkle nodes): on the `avx2`/`avx512vl` backends
/// eight items of up to 1 KiB are hashed at once in SIMD lanes (longer ones, and a remainder
/// of fewer than three, one at a time). Lengths may differ; a batch costs its longest item.
pub fn sm3_many<T: AsRef<[u8]>>(items: &[T]) -> Vec<Digest> {
    many_on(Engine::detected(), items)
}

/// [`sm3_many`] on a given backend; [`CryptoError::Unsupported`] if this CPU cannot run it.
pub fn sm3_many_with<T: AsRef<[u8]>>(
    backend: Sm3Backend,
    items: &[T],
) -> Result<Vec<Digest>, CryptoError> {
    Ok(many_on(backend.engine()?, items))
}

fn many_on<T: AsRef<[u8]>>(engine: Engine, items: &[T]) -> Vec<Digest> {
    let mut out = vec![Digest([0; 32]); items.len()];
    let Some(kernel) = engine.0 else {
        for (o, m) in out.iter_mut().zip(items) {
            *o = sm3(m.as_ref());
        }
        return out;
    };
    // Indices of the items that go into lanes, in order; the others one by one.
    let mut batch: Vec<usize> = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let m = m.as_ref();
        if padded_blocks(m.len()) <= MANY_MAX_BLOCKS {
            batch.push(i);
        } else if let Some(o) = out.get_mut(i) {
            *o = sm3(m);
        }
    }
    for group in batch.chunks(8) {
        if group.len() < 3 {
            for &i in group {
                if let (Some(o), Some(m)) = (out.get_mut(i), items.get(i)) {
                    *o = sm3(m.as_ref());
                }
            }
            continue;
        }
        let mut lanes: [&[u8]; 8] = [&[]; 8];
        for (l, &i) in lanes.iter_mut().zip(group) {
            *l = items.get(i).map_or(&[][..], |m| m.as_ref());
        }
        let digests = lanes8(kernel, &lanes[..group.len()]);
        for (&i, d) in group.iter().zip(digests) {
            if let Some(o) = out.get_mut(i) {
                *o = d;
            }
        }
    }
    out
}

/// Blocks of a message of `len` bytes after §5.1 padding.
fn padded_blocks(len: usize) -> usize {
    (len + 9).div_ceil(64)
}

/// SM3 of up to eight messages of at most [`MANY_MAX_BLOCKS`] padded blocks, in lanes.
fn lanes8(kernel: Sm3Kernel, msgs: &[&[u8]]) -> [Digest; 8] {
    // Each lane: its whole blocks from the message, then its padded tail (one or two blocks).
    let mut tails = [[0u8; 128]; 8];
    let mut full = [0usize; 8];
    let mut total = [0usize; 8];
    for (l, m) in msgs.iter().enumerate().take(8) {
        let f = m.len() / 64;
        let rest = m.get(f * 64..).unwrap_or(&[]);
        let blocks = padded_blocks(m.len());
        let t = &mut tails[l];
        t[..rest.len()].copy_from_slice(rest);
        t[rest.len()] = 0x80;
        let end = (blocks - f) * 64;
        t[end - 8..end].copy_from_slice(&((m.len() as u64).wrapping_mul(8)).to_be_bytes());
        full[l] = f;
        total[l] = blocks;
    }
    let rounds = total.iter().copied().max().unwrap_or(0);
    let mut state = [[0u32; 8]; 8];
    for (row, iv) in state.iter_mut().zip(IV) {
        *row = [iv; 8];
    }
    let mut out = [Digest([0; 32]); 8];
    let mut words = [[0u32; 8]; 16];
    for b in 0..rounds {
        for l in 0..msgs.len().min(8) {
            let block: &[u8] = if b < full[l] {
                msgs[l].get(b * 64..b * 64 + 64).unwrap_or(&[])
            } else {
                tails[l]
                    .get((b - full[l]) * 64..(b - full[l]) * 64 + 64)
                    .unwrap_or(&[])
            };
            // Lanes already finished hash zeros; their digest was taken.
            for (k, c) in block.as_chunks::<4>().0.iter().enumerate().take(16) {
                words[k][l] = u32::from_be_bytes(*c);
            }
            if block.is_empty() {
                for row in words.iter_mut() {
                    row[l] = 0;
                }
            }
        }
        kernel.lanes(&mut state, &words);
        for l in 0..msgs.len().min(8) {
            if total[l] == b + 1 {
                for (o, row) in out[l].0.as_chunks_mut::<4>().0.iter_mut().zip(&state) {
                    *o = row[l].to_be_bytes();
                }
            }
        }
    }
    tails.as_flattened_mut().zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;
    use crypto::RandomSource;

    /// RustCrypto's `sm3`, the implementation this module replaced: the reference.
    fn reference(data: &[u8]) -> [u8; 32] {
        sm3::Sm3::digest(data).into()
    }

    /// The seed of the random cases: `GMCHAIN_TEST_SEED` or the clock, printed for replay.
    fn seeded(name: &str) -> SeededRandom {
        let seed = std::env::var("GMCHAIN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        eprintln!("{name}: seed {seed} (replay: GMCHAIN_TEST_SEED={seed})");
        SeededRandom::new(seed)
    }

    fn below(rng: &SeededRandom, n: usize) -> usize {
        let mut b = [0u8; 8];
        rng.fill(&mut b).unwrap();
        (u64::from_be_bytes(b) % n as u64) as usize
    }

    fn bytes(rng: &SeededRandom, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rng.fill(&mut v).unwrap();
        v
    }

    /// The `sm3_many` backends this CPU runs; the others are printed as untested.
    fn backends() -> Vec<Sm3Backend> {
        for b in Sm3Backend::unavailable() {
            eprintln!("sm3: backend {b}: untested on this CPU");
        }
        Sm3Backend::available()
    }

    #[test]
    fn t_constants_are_the_standard_ones_rotated() {
        // §4.2: T_j = 79cc4519 for j < 16, 7a879d8a after; CF uses T_j <<< (j mod 32).
        assert_eq!(T[0], 0x79cc_4519);
        assert_eq!(T[1], 0xf398_8a32);
        assert_eq!(T[16], 0x9d8a_7a87);
        assert_eq!(T[33], 0xf50f_3b14);
    }

    #[test]
    fn many_equals_single_calls_for_unequal_lengths_on_every_backend() {
        let rng = seeded("many_equals_single_calls");
        for b in backends() {
            for count in [0usize, 1, 2, 3, 7, 8, 9, 16, 17, 30] {
                let items: Vec<Vec<u8>> = (0..count)
                    .map(|_| {
                        // Lengths around the padding edges, Merkle nodes, transactions, and a
                        // few longer than a lane batch takes.
                        let n = match below(&rng, 6) {
                            0 => 65,
                            1 => 55 + below(&rng, 20),
                            2 => below(&rng, 400),
                            3 => 1015 + below(&rng, 20),
                            4 => below(&rng, 3000),
                            _ => 300,
                        };
                        bytes(&rng, n)
                    })
                    .collect();
                let got = sm3_many_with(b, &items).unwrap();
                assert_eq!(got.len(), items.len());
                for (i, (d, m)) in got.iter().zip(&items).enumerate() {
                    assert_eq!(
                        d.0,
                        reference(m),
                        "{b} count {count} item {i} len {}",
                        m.len()
                    );
                }
            }
        }
        // The default path too, with borrowed items.
        let a = [0x01u8; 65];
        let items: Vec<&[u8]> = vec![&a, b"abc", &[], &a[..64], &a[..56]];
        for (d, m) in sm3_many(&items).iter().zip(&items) {
            assert_eq!(d.0, reference(m));
        }
    }

    #[test]
    fn a_backend_this_cpu_lacks_is_refused() {
        for b in Sm3Backend::unavailable() {
            assert!(matches!(
                sm3_many_with(b, &[b"x"]),
                Err(CryptoError::Unsupported { .. })
            ));
        }
        assert!(Sm3Backend::Portable.is_available());
        assert!(Sm3Backend::detected().is_available());
    }

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
