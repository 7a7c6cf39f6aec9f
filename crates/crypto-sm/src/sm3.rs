//! SM3 (GB/T 32905-2016), HMAC-SM3 (RFC 2104 over SM3, GM/T 0042), and the key derivation
//! function of GB/T 32918.4-2016 §5.4.3.
//!
//! The compression function is this crate's own (issue 19: RustCrypto's `sm3`, which it
//! replaces, stays as the reference the tests compare against): the portable code in safe Rust
//! (round constants T_j <<< j precomputed, the 68-word expansion kept as a rolling window of 16
//! words, W'_j = W_j ^ W_{j+4} computed on the fly, four rounds per step with the register
//! roles renamed instead of moved), and on x86_64 the kernels of `arch::sm3`: the expansion in
//! SIMD registers beside the scalar rounds for one message, and eight messages at once in
//! SIMD lanes for [`sm3_many`]. [`Sm3Backend`] names them; the fastest this CPU has is used.

use crate::arch::sm3::Sm3Kernel;
use crypto::{CryptoError, Digest, Secret};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;
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

// §4.3 Boolean functions and §4.4 permutations.
#[inline(always)]
fn ff_low(x: u32, y: u32, z: u32) -> u32 {
    x ^ y ^ z
}
#[inline(always)]
fn ff_high(x: u32, y: u32, z: u32) -> u32 {
    // (X ∧ Y) ∨ (X ∧ Z) ∨ (Y ∧ Z), the majority, in four operations.
    (x & y) | (z & (x | y))
}
#[inline(always)]
fn gg_high(x: u32, y: u32, z: u32) -> u32 {
    // (X ∧ Y) ∨ (¬X ∧ Z): X selects Y or Z.
    ((y ^ z) & x) ^ z
}
#[inline(always)]
fn p0(x: u32) -> u32 {
    x ^ x.rotate_left(9) ^ x.rotate_left(17)
}
#[inline(always)]
fn p1(x: u32) -> u32 {
    x ^ x.rotate_left(15) ^ x.rotate_left(23)
}

/// One round of §5.3.3 on the registers named (A, B, C, D, E, F, G, H): D and H receive the
/// new A and E, B and F are rotated in place, and the caller renames the roles for the next
/// round instead of moving eight words.
macro_rules! round {
    ($s:ident, $a:literal, $b:literal, $c:literal, $d:literal, $e:literal, $f:literal, $g:literal,
     $h:literal, $high:ident, $t:expr, $w:expr, $wp:expr) => {{
        let a12 = $s[$a].rotate_left(12);
        // SS1 = ((A <<< 12) + E + (T_j <<< j)) <<< 7, with E added last: E is the value that
        // arrives latest from the previous round.
        let ss1 = a12.wrapping_add($t).wrapping_add($s[$e]).rotate_left(7);
        let ss2 = ss1 ^ a12;
        let (ff, gg) = if $high {
            (
                ff_high($s[$a], $s[$b], $s[$c]),
                gg_high($s[$e], $s[$f], $s[$g]),
            )
        } else {
            (
                ff_low($s[$a], $s[$b], $s[$c]),
                ff_low($s[$e], $s[$f], $s[$g]),
            )
        };
        // TT1 = FF + D + SS2 + W'_j → the new A (in D's register);
        // TT2 = GG + H + SS1 + W_j → the new E = P0(TT2) (in H's register).
        $s[$d] = ff.wrapping_add($s[$d]).wrapping_add($wp).wrapping_add(ss2);
        $s[$h] = p0(gg.wrapping_add($s[$h]).wrapping_add($w).wrapping_add(ss1));
        $s[$b] = $s[$b].rotate_left(9);
        $s[$f] = $s[$f].rotate_left(19);
    }};
}

/// Rounds 4k..4k+4 of §5.3.3 on the working registers `s` (A..H), with W_j in `w` and W'_j in
/// `wp`. After four renamed rounds every register is back in its role.
#[inline(always)]
pub(crate) fn four_rounds(s: &mut [u32; 8], k: usize, w: &[u32; 4], wp: &[u32; 4]) {
    let j = 4 * k;
    let t = [T[j & 63], T[(j + 1) & 63], T[(j + 2) & 63], T[(j + 3) & 63]];
    let high = k >= 4;
    round!(s, 0, 1, 2, 3, 4, 5, 6, 7, high, t[0], w[0], wp[0]);
    round!(s, 3, 0, 1, 2, 7, 4, 5, 6, high, t[1], w[1], wp[1]);
    round!(s, 2, 3, 0, 1, 6, 7, 4, 5, high, t[2], w[2], wp[2]);
    round!(s, 1, 2, 3, 0, 5, 6, 7, 4, high, t[3], w[3], wp[3]);
}

/// The portable compression function CF (§5.3) over whole blocks.
fn compress_portable(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    for block in blocks {
        // §5.3.2 a: W_0..W_15, then a rolling window: x[j mod 16] holds W_j.
        let mut x = [0u32; 16];
        for (o, c) in x.iter_mut().zip(block.as_chunks::<4>().0) {
            *o = u32::from_be_bytes(*c);
        }
        let mut s = *state;
        for k in 0..16 {
            let j = 4 * k;
            let w = [x[j & 15], x[(j + 1) & 15], x[(j + 2) & 15], x[(j + 3) & 15]];
            let mut wp = [0u32; 4];
            for (i, o) in wp.iter_mut().enumerate() {
                let n = j + 4 + i;
                if n >= 16 {
                    // §5.3.2 b; W_{n−16} is no longer needed once W_n is known.
                    x[n & 15] = p1(x[n & 15] ^ x[(n - 9) & 15] ^ x[(n - 3) & 15].rotate_left(15))
                        ^ x[(n - 13) & 15].rotate_left(7)
                        ^ x[(n - 6) & 15];
                }
                // §5.3.2 c: W'_j = W_j ^ W_{j+4}.
                *o = w[i] ^ x[n & 15];
            }
            four_rounds(&mut s, k, &w, &wp);
        }
        // §5.3.1: V(i+1) = ABCDEFGH ⊕ V(i).
        for (v, r) in state.iter_mut().zip(s) {
            *v ^= r;
        }
    }
}

/// The SM3 implementations of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sm3Backend {
    /// Safe Rust, every CPU: the rolling schedule and renamed rounds; [`sm3_many`] hashes one
    /// message after the other.
    Portable,
    /// x86_64 AVX2: [`sm3_many`] hashes eight messages at once in YMM lanes; one message runs
    /// the portable code.
    Avx2,
    /// x86_64 AVX-512F + AVX-512VL (+ SSSE3, AVX2): one message with the message expansion in
    /// XMM registers; eight messages at once in YMM lanes with one-instruction rotations.
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

    /// The backend [`sm3`], [`Sm3Context::new`], HMAC, the KDF and [`sm3_many`] use: the
    /// fastest this CPU can run, detected once per process.
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
                        _ => "the SM3 avx512vl backend (this CPU lacks AVX-512F/VL, AVX2 or SSSE3)",
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

/// The compression in use: a detected kernel, or none for the portable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Engine(Option<Sm3Kernel>);

impl Engine {
    fn detected() -> Self {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        *ENGINE.get_or_init(|| Sm3Backend::detected().engine().unwrap_or(Engine(None)))
    }

    #[inline]
    fn compress(self, state: &mut [u32; 8], blocks: &[[u8; 64]]) {
        match self.0 {
            Some(k) if k.compress(state, blocks) => {}
            _ => compress_portable(state, blocks),
        }
    }
}

/// Returns SM3(`data`) (GB/T 32905-2016 §5).
pub fn sm3(data: &[u8]) -> Digest {
    let mut h = Sm3Context::new();
    h.update(data);
    h.finish()
}

/// Returns SM3 over the concatenation of `parts`, without copying them together.
pub fn sm3_parts(parts: &[&[u8]]) -> Digest {
    let mut h = Sm3Context::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// An incremental SM3 computation. The buffered input and chaining value are wiped on drop
/// (SM3 also hashes secrets: HMAC keys, the KDF's shared point).
#[derive(Clone)]
pub struct Sm3Context {
    state: [u32; 8],
    buf: [u8; 64],
    buf_len: usize,
    /// Bytes absorbed so far (§5.1 needs the length in bits mod 2^64).
    total: u64,
    engine: Engine,
}

impl core::fmt::Debug for Sm3Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Sm3Context")
    }
}

impl Default for Sm3Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Sm3Context {
    fn drop(&mut self) {
        self.state.zeroize();
        self.buf.zeroize();
    }
}

impl Sm3Context {
    /// Starts a new computation on the detected backend ([`Sm3Backend::detected`]).
    pub fn new() -> Self {
        Self::on(Engine::detected())
    }

    /// Starts a new computation on `backend`; [`CryptoError::Unsupported`] if this CPU cannot
    /// run it (tests and benchmarks use this to run every backend).
    pub fn with_backend(backend: Sm3Backend) -> Result<Self, CryptoError> {
        Ok(Self::on(backend.engine()?))
    }

    fn on(engine: Engine) -> Self {
        Self {
            state: IV,
            buf: [0; 64],
            buf_len: 0,
            total: 0,
            engine,
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            let (head, rest) = data.split_at(take);
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(head);
            self.buf_len += take;
            data = rest;
            if self.buf_len < 64 {
                return;
            }
            self.engine
                .compress(&mut self.state, core::slice::from_ref(&self.buf));
            self.buf_len = 0;
        }
        // Whole blocks straight from the input, no copy.
        let (blocks, tail) = data.as_chunks::<64>();
        if !blocks.is_empty() {
            self.engine.compress(&mut self.state, blocks);
        }
        self.buf[..tail.len()].copy_from_slice(tail);
        self.buf_len = tail.len();
    }

    /// Returns the digest.
    pub fn finish(mut self) -> Digest {
        // §5.1 padding: 1 bit, zeros to 448 mod 512, the length in bits as 64 bits.
        let bits = self.total.wrapping_mul(8);
        let n = self.buf_len;
        let mut last = [[0u8; 64]; 2];
        let used = if n < 56 { 1 } else { 2 };
        {
            let flat = last.as_flattened_mut();
            flat[..n].copy_from_slice(&self.buf[..n]);
            flat[n] = 0x80;
            flat[used * 64 - 8..used * 64].copy_from_slice(&bits.to_be_bytes());
        }
        self.engine.compress(&mut self.state, &last[..used]);
        last.as_flattened_mut().zeroize();
        let mut out = [0u8; 32];
        for (o, v) in out.as_chunks_mut::<4>().0.iter_mut().zip(self.state) {
            *o = v.to_be_bytes();
        }
        Digest(out)
    }
}

/// Messages of more blocks than this are hashed on their own by [`sm3_many`]: a lane batch
/// runs as many blocks as its longest member, so one long item would hold seven short ones.
const MANY_MAX_BLOCKS: usize = 16;

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
            let mut h = Sm3Context::on(engine);
            h.update(m.as_ref());
            *o = h.finish();
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
            let mut h = Sm3Context::on(engine);
            h.update(m);
            *o = h.finish();
        }
    }
    for group in batch.chunks(8) {
        if group.len() < 3 {
            for &i in group {
                if let (Some(o), Some(m)) = (out.get_mut(i), items.get(i)) {
                    let mut h = Sm3Context::on(engine);
                    h.update(m.as_ref());
                    *o = h.finish();
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

/// Returns HMAC-SM3(`key`, `data`) (RFC 2104 with SM3, block size 64 bytes).
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSm3::new(key);
    mac.update(data);
    mac.finish()
}

/// An incremental HMAC-SM3 under one key: the keyed inner and outer states are computed once
/// in [`HmacSm3::new`] and cloned for each message (the TLS 1.3 key schedule and Finished
/// MACs of RFC 8998 run many MACs under one key).
#[derive(Clone)]
pub struct HmacSm3 {
    inner: Sm3Context,
    outer: Sm3Context,
}

impl core::fmt::Debug for HmacSm3 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacSm3([redacted])")
    }
}

impl HmacSm3 {
    /// Keys the MAC; any key length is accepted (keys over 64 bytes are hashed first).
    pub fn new(key: &[u8]) -> Self {
        Self::keyed(Engine::detected(), key)
    }

    fn keyed(engine: Engine, key: &[u8]) -> Self {
        // RFC 2104 §2: K0 is the key padded with zeros to B = 64 bytes, or H(K) if longer.
        let mut k0 = [0u8; 64];
        if key.len() > 64 {
            let mut h = Sm3Context::on(engine);
            h.update(key);
            k0[..32].copy_from_slice(h.finish().as_bytes());
        } else {
            k0[..key.len()].copy_from_slice(key);
        }
        let mut pad = [0u8; 64];
        let mut inner = Sm3Context::on(engine);
        let mut outer = Sm3Context::on(engine);
        for (p, k) in pad.iter_mut().zip(&k0) {
            *p = k ^ 0x36;
        }
        inner.update(&pad);
        for (p, k) in pad.iter_mut().zip(&k0) {
            *p = k ^ 0x5c;
        }
        outer.update(&pad);
        k0.zeroize();
        pad.zeroize();
        Self { inner, outer }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// Returns the 32-byte tag.
    pub fn finish(self) -> [u8; 32] {
        let Self { inner, mut outer } = self;
        outer.update(inner.finish().as_bytes());
        outer.finish().0
    }
}

/// Checks an HMAC-SM3 tag in constant time.
pub fn hmac_sm3_verify(key: &[u8], data: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
    let ours = hmac_sm3(key, data);
    // A tag of another length never matches (as RustCrypto's `verify_slice`, used before).
    if tag.len() == ours.len() && bool::from(ours.ct_eq(tag)) {
        Ok(())
    } else {
        Err(CryptoError::TagMismatch)
    }
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
    let mut base = Sm3Context::new();
    base.update(z);
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        // §5.4.3 step a: ct starts at 0x00000001.
        let ct = (i as u32).wrapping_add(1);
        let mut h = base.clone();
        h.update(&ct.to_be_bytes());
        let block = h.finish();
        chunk.copy_from_slice(&block.0[..chunk.len()]);
    }
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;
    use crypto::RandomSource;
    use sm3::Digest as _;

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

    /// The backends this CPU runs; the others are printed as untested.
    fn backends() -> Vec<Sm3Backend> {
        for b in Sm3Backend::unavailable() {
            eprintln!("sm3: backend {b}: untested on this CPU");
        }
        Sm3Backend::available()
    }

    fn digest_on(b: Sm3Backend, data: &[u8]) -> [u8; 32] {
        let mut h = Sm3Context::with_backend(b).unwrap();
        h.update(data);
        h.finish().0
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
    fn annex_a_examples_on_every_backend() {
        for b in backends() {
            assert_eq!(
                hex::encode(digest_on(b, b"abc")),
                "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
                "{b}"
            );
            assert_eq!(
                hex::encode(digest_on(b, &b"abcd".repeat(16))),
                "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732",
                "{b}"
            );
        }
    }

    #[test]
    fn every_length_to_300_matches_the_reference_on_every_backend() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 151 + 7) as u8).collect();
        let mut cases = 0;
        for b in backends() {
            for n in 0..=300 {
                assert_eq!(
                    digest_on(b, &data[..n]),
                    reference(&data[..n]),
                    "{b} len {n}"
                );
                cases += 1;
            }
        }
        assert_eq!(sm3(&data).0, reference(&data));
        eprintln!("sm3: {cases} lengths x backends");
    }

    #[test]
    fn random_lengths_to_64_kib_match_the_reference_on_every_backend() {
        let rng = seeded("random_lengths_to_64_kib");
        for b in backends() {
            for _ in 0..40 {
                let n = below(&rng, 64 * 1024 + 1);
                let m = bytes(&rng, n);
                assert_eq!(digest_on(b, &m), reference(&m), "{b} len {n}");
            }
        }
    }

    #[test]
    fn streaming_with_random_splits_matches_one_shot_on_every_backend() {
        let rng = seeded("streaming_with_random_splits");
        for b in backends() {
            for _ in 0..200 {
                let n = below(&rng, 3000);
                let m = bytes(&rng, n);
                let mut h = Sm3Context::with_backend(b).unwrap();
                let mut rest = &m[..];
                while !rest.is_empty() {
                    // Mostly short pieces, sometimes whole blocks' worth.
                    let cut = below(
                        &rng,
                        rest.len().min(if below(&rng, 4) == 0 { 300 } else { 70 }) + 1,
                    );
                    h.update(&rest[..cut]);
                    rest = &rest[cut..];
                }
                assert_eq!(h.finish().0, reference(&m), "{b} len {n}");
            }
        }
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
                Sm3Context::with_backend(b),
                Err(CryptoError::Unsupported { .. })
            ));
            assert!(sm3_many_with(b, &[b"x"]).is_err());
        }
        assert!(Sm3Backend::Portable.is_available());
        assert!(Sm3Backend::detected().is_available());
    }

    #[test]
    fn hmac_matches_rustcrypto_hmac_for_every_key_length() {
        use hmac::{KeyInit, Mac};
        let rng = seeded("hmac_matches_rustcrypto_hmac");
        for key_len in [0usize, 1, 31, 32, 63, 64, 65, 100, 200] {
            for data_len in [0usize, 1, 55, 64, 65, 1000] {
                let key = bytes(&rng, key_len);
                let data = bytes(&rng, data_len);
                let mut mac = hmac::Hmac::<sm3::Sm3>::new_from_slice(&key).unwrap();
                mac.update(&data);
                let theirs: [u8; 32] = mac.finalize().into_bytes().into();
                assert_eq!(
                    hmac_sm3(&key, &data),
                    theirs,
                    "key {key_len} data {data_len}"
                );
                assert!(hmac_sm3_verify(&key, &data, &theirs).is_ok());
                assert_eq!(
                    hmac_sm3_verify(&key, &data, &theirs[..31]),
                    Err(CryptoError::TagMismatch)
                );
            }
        }
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
