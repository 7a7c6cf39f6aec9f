//! SM4 (GB/T 32907-2016) and the modes gmchain uses: CBC with PKCS#7 padding, CTR (128-bit
//! big-endian counter, as OpenSSL), and the RFC 8998 AEADs SM4-GCM and SM4-CCM (12-byte nonce,
//! 16-byte tag appended to the ciphertext).
//!
//! # Backends
//!
//! The block cipher runs on one of several [`Backend`]s, chosen per call (per [`Sm4Aead`] at
//! its creation) as [`Backend::current`]: the fastest one this CPU has ([`Backend::detected`]),
//! unless the calling thread forced another with [`Backend::force`] (tests and benchmarks do,
//! to run every path the CPU offers).
//!
//! - [`Backend::Table`]: RustCrypto's `sm4` crate, a 256-byte S-box table indexed by key- and
//!   data-dependent bytes. Portable, and **not constant time** against cache-timing attacks.
//!   The only backend off x86_64, and on x86_64 CPUs without AES-NI.
//! - [`Backend::AesNi`], [`Backend::AesNiAvx2`], [`Backend::VaesAvx2`], [`Backend::GfniAvx2`],
//!   [`Backend::GfniAvx512`]: the kernels of [`crate::arch`], which compute the S-box (through
//!   AES's S-box, or GFNI's affine and inversion instructions) on 4–16 blocks at once, with no
//!   memory access indexed by secret data. The key schedule runs its S-box through the same
//!   kernel, on one lane. Preference when detecting: GFNI (AVX-512, then AVX2), then VAES,
//!   AES-NI+AVX2, AES-NI, then the table.
//!
//! The modes are RustCrypto's (`ctr`, `aes-gcm` with GHASH from `polyval`, which uses
//! carry-less multiplication (PCLMULQDQ) where the CPU has it, `ccm`, `cbc`) over either
//! backend, so the counter semantics are the same on every backend: CTR wraps its whole
//! 128-bit counter, GCM the low 32 bits (inc32). CTR, GCM and CBC decryption hand the kernels
//! 16 blocks per call; CBC encryption and CCM's CBC-MAC are serial and go one block per call
//! through the same constant-time kernel, where one block is bound by the latency of 32
//! rounds: measured, CBC encryption runs at about 0.6× the table's speed on the AES-NI
//! backends and at par on GFNI, CCM at par or better (its CTR half is batched).
//!
//! Side channels on the SIMD backends: see [`crate::arch`] for what the constant-time claim
//! covers. CBC's PKCS#7 unpadding is RustCrypto's `block-padding`; the key itself and the
//! expanded round keys are wiped on drop, SIMD register spills are not.

use aes_gcm::aead::{Aead, Payload};
use cbc::cipher::{
    Array, Block, BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt,
    BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockModeDecrypt,
    BlockModeEncrypt, BlockSizeUser, InOut, InOutBuf, InnerIvInit, KeyInit, ParBlocks,
    ParBlocksSizeUser, StreamCipher, consts::U16,
};
use crypto::{CryptoError, Secret, Sm4Mode};
use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use zeroize::{Zeroize, Zeroizing};

use crate::arch::{self, Kernel};

type Sm4Gcm = aes_gcm::AesGcm<Engine, aes_gcm::aead::consts::U12>;
type Sm4Ccm = ccm::Ccm<Engine, ccm::consts::U16, ccm::consts::U12>;
type Sm4Ctr = ctr::Ctr128BE<Engine>;

// ---------------------------------------------------------------------------------------------
// Backends

/// An implementation of the SM4 block cipher (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// RustCrypto `sm4`: table S-box, portable, not constant time.
    Table,
    /// AES-NI + SSSE3: the S-box through `aesenclast`, 8 blocks per pass (XMM registers).
    AesNi,
    /// AES-NI + AVX2: as `AesNi` on YMM registers, 16 blocks per pass.
    AesNiAvx2,
    /// VAES + AVX2: as `AesNiAvx2` with 256-bit `vaesenclast`, 16 blocks per pass.
    VaesAvx2,
    /// GFNI + AVX2: the S-box through `gf2p8affineqb`/`gf2p8affineinvqb`, 16 blocks per pass.
    GfniAvx2,
    /// GFNI + AVX-512F/BW (and AVX2, for short tails): as `GfniAvx2` on 512-bit registers,
    /// 16 blocks per pass.
    GfniAvx512,
}

thread_local! {
    /// The backends forced on this thread, newest last, each with its guard's number: a guard
    /// removes its own entry whatever the order guards are dropped in, so the choice in force
    /// is always the newest live guard's (review i19 M1: restoring a saved value let a guard
    /// dropped out of order leave a backend forced after every guard was gone).
    static FORCED: RefCell<Vec<(u64, Backend)>> = const { RefCell::new(Vec::new()) };
    static NEXT_GUARD: Cell<u64> = const { Cell::new(0) };
}

static DETECTED: OnceLock<Backend> = OnceLock::new();

impl Backend {
    /// Every backend, whether or not this CPU can run it.
    pub const ALL: [Backend; 6] = [
        Backend::Table,
        Backend::AesNi,
        Backend::AesNiAvx2,
        Backend::VaesAvx2,
        Backend::GfniAvx2,
        Backend::GfniAvx512,
    ];

    /// The short name used in test and benchmark output and by [`Backend::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Backend::Table => "table",
            Backend::AesNi => "aesni",
            Backend::AesNiAvx2 => "aesni-avx2",
            Backend::VaesAvx2 => "vaes-avx2",
            Backend::GfniAvx2 => "gfni-avx2",
            Backend::GfniAvx512 => "gfni-avx512",
        }
    }

    /// The backend named `name` (as [`Backend::name`] prints it).
    pub fn from_name(name: &str) -> Option<Backend> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether no memory access or branch depends on the key or data (see [`crate::arch`]).
    pub fn is_constant_time(self) -> bool {
        self != Backend::Table
    }

    /// Whether this CPU can run this backend ([`Backend::Table`] runs everywhere).
    pub fn is_available(self) -> bool {
        self == Backend::Table || Kernel::detect(self).is_some()
    }

    /// The backends this CPU can run, table first.
    pub fn available() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// The backends this CPU cannot run (tests list them as untested, never as passed).
    pub fn unavailable() -> Vec<Backend> {
        Self::ALL
            .into_iter()
            .filter(|b| !b.is_available())
            .collect()
    }

    /// The backend used unless a thread forces another: the fastest this CPU can run,
    /// detected once per process.
    pub fn detected() -> Backend {
        *DETECTED.get_or_init(|| {
            [
                Backend::GfniAvx512,
                Backend::GfniAvx2,
                Backend::VaesAvx2,
                Backend::AesNiAvx2,
                Backend::AesNi,
            ]
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Table)
        })
    }

    /// The backend SM4 uses on this thread now: the forced one, else [`Backend::detected`].
    pub fn current() -> Backend {
        FORCED
            .with(|f| f.borrow().last().map(|(_, b)| *b))
            .unwrap_or_else(Backend::detected)
    }

    /// Makes this thread use `self` until the returned guard is dropped (then the previous
    /// choice is back). Fails with [`CryptoError::Unsupported`] if this CPU cannot run it.
    pub fn force(self) -> Result<ForcedBackend, CryptoError> {
        if !self.is_available() {
            return Err(CryptoError::Unsupported {
                what: match self {
                    Backend::Table => "the SM4 table backend",
                    Backend::AesNi => "the SM4 aesni backend (this CPU lacks AES-NI or SSSE3)",
                    Backend::AesNiAvx2 => {
                        "the SM4 aesni-avx2 backend (this CPU lacks AES-NI, AVX or AVX2)"
                    }
                    Backend::VaesAvx2 => {
                        "the SM4 vaes-avx2 backend (this CPU lacks AES-NI, VAES, AVX or AVX2)"
                    }
                    Backend::GfniAvx2 => {
                        "the SM4 gfni-avx2 backend (this CPU lacks GFNI, AVX or AVX2)"
                    }
                    Backend::GfniAvx512 => {
                        "the SM4 gfni-avx512 backend (this CPU lacks GFNI, AVX2, AVX-512F or AVX-512BW)"
                    }
                },
            });
        }
        let id = NEXT_GUARD.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
        FORCED.with(|f| f.borrow_mut().push((id, self)));
        Ok(ForcedBackend {
            id,
            _not_send: core::marker::PhantomData,
        })
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Keeps a backend forced on this thread (see [`Backend::force`]); not `Send`, since the choice
/// belongs to the thread that made it. For tests and benchmarks: on an async runtime every task
/// the thread runs meanwhile would see it (the node never forces), and a guard passed to
/// `mem::forget` leaves its backend forced on the thread for good.
#[derive(Debug)]
#[must_use = "the backend is forced only while this guard lives"]
pub struct ForcedBackend {
    id: u64,
    _not_send: core::marker::PhantomData<*const ()>,
}

impl Drop for ForcedBackend {
    fn drop(&mut self) {
        FORCED.with(|f| f.borrow_mut().retain(|(id, _)| *id != self.id));
    }
}

// ---------------------------------------------------------------------------------------------
// The block cipher over a backend

/// FK (GB/T 32907-2016 §7.3).
const FK: [u32; 4] = [0xa3b1_bac6, 0x56aa_3350, 0x677d_9197, 0xb270_22dc];

/// CK_i: byte j (from the most significant) is (4i + j)·7 mod 256 (GB/T 32907-2016 §7.3).
const fn ck(i: usize) -> u32 {
    let mut v = 0u32;
    let mut j = 0;
    while j < 4 {
        v = (v << 8) | (((4 * i + j) * 7) % 256) as u32;
        j += 1;
    }
    v
}

/// The key schedule (GB/T 32907-2016 §7.3) with the S-box step τ given: rk_i = K_{i+4} =
/// K_i ⊕ L'(τ(K_{i+1} ⊕ K_{i+2} ⊕ K_{i+3} ⊕ CK_i)), L'(B) = B ⊕ (B<<<13) ⊕ (B<<<23).
fn expand_key(key: &[u8; 16], tau: impl Fn(u32) -> u32) -> Zeroizing<[u32; 32]> {
    let mut k = [0u32; 4];
    for ((ki, word), fk) in k.iter_mut().zip(key.as_chunks::<4>().0).zip(FK) {
        *ki = u32::from_be_bytes(*word) ^ fk;
    }
    let mut rk = Zeroizing::new([0u32; 32]);
    for (i, rki) in rk.iter_mut().enumerate() {
        let t = tau(k[(i + 1) % 4] ^ k[(i + 2) % 4] ^ k[(i + 3) % 4] ^ ck(i));
        k[i % 4] ^= t ^ t.rotate_left(13) ^ t.rotate_left(23);
        *rki = k[i % 4];
    }
    k.zeroize();
    rk
}

/// SM4 with its key schedule expanded for one backend, as a RustCrypto block cipher so that
/// the `ctr`, `aes-gcm`, `ccm` and `cbc` crates run over it.
#[derive(Clone)]
pub(crate) struct Engine(EngineInner);

#[derive(Clone)]
enum EngineInner {
    Table(sm4::Sm4),
    Simd {
        backend: Backend,
        kernel: Kernel,
        enc: Zeroizing<[u32; 32]>,
        dec: Zeroizing<[u32; 32]>,
    },
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Engine({}, [redacted])", self.backend())
    }
}

impl Engine {
    /// Expands `key` for `backend`, or for the table if this CPU cannot run `backend`.
    pub(crate) fn new(key: &[u8; 16], backend: Backend) -> Self {
        match Kernel::detect(backend) {
            Some(kernel) => {
                let enc = expand_key(key, |a| kernel.tau(a));
                let mut dec = enc.clone();
                dec.reverse();
                Self(EngineInner::Simd {
                    backend,
                    kernel,
                    enc,
                    dec,
                })
            }
            None => {
                // The expanded schedule is wiped on drop (`sm4`'s `zeroize` feature); so is
                // this copy of the key.
                let k = Zeroizing::new((*key).into());
                Self(EngineInner::Table(<sm4::Sm4 as KeyInit>::new(&k)))
            }
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match &self.0 {
            EngineInner::Table(_) => Backend::Table,
            EngineInner::Simd { backend, .. } => *backend,
        }
    }
}

impl BlockSizeUser for Engine {
    type BlockSize = U16;
}

impl BlockCipherEncrypt for Engine {
    fn encrypt_with_backend(&self, f: impl BlockCipherEncClosure<BlockSize = U16>) {
        match &self.0 {
            EngineInner::Table(c) => c.encrypt_with_backend(f),
            EngineInner::Simd { kernel, enc, .. } => f.call(&SimdBackend {
                kernel: *kernel,
                rk: enc,
            }),
        }
    }
}

impl BlockCipherDecrypt for Engine {
    fn decrypt_with_backend(&self, f: impl BlockCipherDecClosure<BlockSize = U16>) {
        match &self.0 {
            EngineInner::Table(c) => c.decrypt_with_backend(f),
            EngineInner::Simd { kernel, dec, .. } => f.call(&SimdBackend {
                kernel: *kernel,
                rk: dec,
            }),
        }
    }
}

/// A SIMD kernel with the round keys of one direction: 16 blocks per parallel call.
struct SimdBackend<'a> {
    kernel: Kernel,
    rk: &'a [u32; 32],
}

impl SimdBackend<'_> {
    fn one(&self, block: InOut<'_, '_, Block<Self>>) {
        let b: &mut [u8; 16] = block.into_out_with_copied_in().as_mut();
        self.kernel.encrypt(self.rk, core::slice::from_mut(b));
    }

    fn par(&self, blocks: InOut<'_, '_, ParBlocks<Self>>) {
        let out = blocks.into_out_with_copied_in();
        self.kernel
            .encrypt(self.rk, Array::cast_slice_to_core_mut(out.as_mut_slice()));
    }

    fn tail(&self, blocks: InOutBuf<'_, '_, Block<Self>>) {
        let out = blocks.into_out_with_copied_in();
        self.kernel
            .encrypt(self.rk, Array::cast_slice_to_core_mut(out));
    }
}

impl BlockSizeUser for SimdBackend<'_> {
    type BlockSize = U16;
}

impl ParBlocksSizeUser for SimdBackend<'_> {
    type ParBlocksSize = U16;
}

impl BlockCipherEncBackend for SimdBackend<'_> {
    fn encrypt_block(&self, block: InOut<'_, '_, Block<Self>>) {
        self.one(block)
    }
    fn encrypt_par_blocks(&self, blocks: InOut<'_, '_, ParBlocks<Self>>) {
        self.par(blocks)
    }
    fn encrypt_tail_blocks(&self, blocks: InOutBuf<'_, '_, Block<Self>>) {
        self.tail(blocks)
    }
}

impl BlockCipherDecBackend for SimdBackend<'_> {
    fn decrypt_block(&self, block: InOut<'_, '_, Block<Self>>) {
        self.one(block)
    }
    fn decrypt_par_blocks(&self, blocks: InOut<'_, '_, ParBlocks<Self>>) {
        self.par(blocks)
    }
    fn decrypt_tail_blocks(&self, blocks: InOutBuf<'_, '_, Block<Self>>) {
        self.tail(blocks)
    }
}

const _: () = assert!(arch::MAX_BLOCKS == 16, "SimdBackend's ParBlocksSize is U16");

// ---------------------------------------------------------------------------------------------
// Keys and modes

/// A 128-bit SM4 key, zeroized on drop.
#[derive(Clone)]
pub struct Sm4Secret(Zeroizing<[u8; 16]>);

impl core::fmt::Debug for Sm4Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Sm4Secret([redacted])")
    }
}

impl Sm4Secret {
    /// Takes a 16-byte key.
    pub fn from_slice(key: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 16] = key.try_into().map_err(|_| CryptoError::InvalidLength {
            what: "SM4 key",
            expected: 16,
            got: key.len(),
        })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    fn engine(&self) -> Engine {
        Engine::new(&self.0, Backend::current())
    }
}

fn check_iv(mode: Sm4Mode, iv: &[u8]) -> Result<(), CryptoError> {
    if iv.len() != mode.iv_len() {
        return Err(CryptoError::InvalidLength {
            what: if mode.is_aead() {
                "SM4 nonce (RFC 8998: 12 bytes)"
            } else {
                "SM4 IV"
            },
            expected: mode.iv_len(),
            got: iv.len(),
        });
    }
    Ok(())
}

fn check_no_aad(mode: Sm4Mode, aad: &[u8]) -> Result<(), CryptoError> {
    if !mode.is_aead() && !aad.is_empty() {
        return Err(CryptoError::InvalidInput {
            reason: "AAD is only meaningful for GCM and CCM",
        });
    }
    Ok(())
}

/// Encrypts one 16-byte block (GB/T 32907-2016 §7.1).
pub fn encrypt_block(key: &Sm4Secret, block: &[u8; 16]) -> [u8; 16] {
    let mut b = (*block).into();
    key.engine().encrypt_block(&mut b);
    b.into()
}

/// Decrypts one 16-byte block (GB/T 32907-2016 §7.2: round keys in reverse order).
pub fn decrypt_block(key: &Sm4Secret, block: &[u8; 16]) -> [u8; 16] {
    let mut b = (*block).into();
    key.engine().decrypt_block(&mut b);
    b.into()
}

/// An SM4 key with its schedule expanded once, for many single-block operations (and for the
/// timing harness, which must time the block function without the key schedule). It keeps the
/// backend current when it was made.
#[derive(Clone, Debug)]
pub struct Sm4BlockKey(Engine);

impl Sm4BlockKey {
    /// Expands `key` for [`Backend::current`].
    pub fn new(key: &Sm4Secret) -> Self {
        Self(key.engine())
    }

    /// The backend the schedule was expanded for.
    pub fn backend(&self) -> Backend {
        self.0.backend()
    }

    /// Encrypts one 16-byte block (GB/T 32907-2016 §7.1).
    pub fn encrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut b = (*block).into();
        self.0.encrypt_block(&mut b);
        b.into()
    }
}

/// An RFC 8998 AEAD (`AEAD_SM4_GCM` or `AEAD_SM4_CCM`: 12-byte nonce, 16-byte tag) with its
/// key schedule expanded once, sealing and opening in place: the record layer of TLS 1.3
/// encrypts every record under one key, so neither the key schedule nor a copy of the record
/// is paid per record.
pub struct Sm4Aead {
    inner: AeadInner,
    backend: Backend,
}

enum AeadInner {
    Gcm(Box<Sm4Gcm>),
    Ccm(Box<Sm4Ccm>),
}

impl core::fmt::Debug for Sm4Aead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mode = match self.inner {
            AeadInner::Gcm(_) => "GCM",
            AeadInner::Ccm(_) => "CCM",
        };
        write!(f, "Sm4Aead({mode}, {}, [redacted])", self.backend)
    }
}

/// The tag length of both RFC 8998 AEADs.
pub const AEAD_TAG_LEN: usize = 16;

impl Sm4Aead {
    /// Expands `key` for `mode`, which must be [`Sm4Mode::Gcm`] or [`Sm4Mode::Ccm`].
    pub fn new(key: &Sm4Secret, mode: Sm4Mode) -> Result<Self, CryptoError> {
        // The expanded key schedules and GHASH key are wiped on drop (`Engine`'s `Zeroizing`
        // round keys, the `zeroize` features of `sm4` and `aes-gcm`).
        let engine = match mode {
            Sm4Mode::Gcm | Sm4Mode::Ccm => key.engine(),
            Sm4Mode::Cbc | Sm4Mode::Ctr => {
                return Err(CryptoError::InvalidInput {
                    reason: "an AEAD is SM4-GCM or SM4-CCM",
                });
            }
        };
        let backend = engine.backend();
        let inner = if mode == Sm4Mode::Gcm {
            AeadInner::Gcm(Box::new(Sm4Gcm::from(engine)))
        } else {
            AeadInner::Ccm(Box::new(Sm4Ccm::from(engine)))
        };
        Ok(Self { inner, backend })
    }

    /// The backend this AEAD's block cipher runs on (chosen when it was made).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        use aes_gcm::aead::AeadInOut;
        let n = (*nonce).into();
        let tag = match &self.inner {
            AeadInner::Gcm(c) => c
                .encrypt_inout_detached(&n, aad, buf.into())
                .map_err(|_| CryptoError::InvalidInput {
                    reason: "SM4-GCM plaintext too long",
                })?
                .into(),
            AeadInner::Ccm(c) => c
                .encrypt_inout_detached(&n, aad, buf.into())
                .map_err(|_| CryptoError::InvalidInput {
                    reason: "SM4-CCM plaintext longer than 2^24 - 1 bytes",
                })?
                .into(),
        };
        Ok(tag)
    }

    /// Decrypts `buf` in place if `tag` verifies; otherwise fails with
    /// [`CryptoError::TagMismatch`] and `buf` must be discarded.
    pub fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        use aes_gcm::aead::AeadInOut;
        let n = (*nonce).into();
        let t = (*tag).into();
        match &self.inner {
            AeadInner::Gcm(c) => c.decrypt_inout_detached(&n, aad, buf.into(), &t),
            AeadInner::Ccm(c) => c.decrypt_inout_detached(&n, aad, buf.into(), &t),
        }
        .map_err(|_| CryptoError::TagMismatch)
    }
}

/// Encrypts with the given mode; AEAD output is ciphertext ‖ tag.
pub fn encrypt(
    key: &Sm4Secret,
    mode: Sm4Mode,
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    check_iv(mode, iv)?;
    check_no_aad(mode, aad)?;
    match mode {
        Sm4Mode::Cbc => {
            let enc =
                cbc::Encryptor::<Engine>::inner_iv_slice_init(key.engine(), iv).map_err(|_| {
                    CryptoError::InvalidInput {
                        reason: "SM4-CBC key or IV length",
                    }
                })?;
            Ok(enc.encrypt_padded_vec::<cbc::cipher::block_padding::Pkcs7>(data))
        }
        Sm4Mode::Ctr => {
            let mut out = data.to_vec();
            ctr_apply(key, iv, &mut out)?;
            Ok(out)
        }
        Sm4Mode::Gcm => Sm4Gcm::from(key.engine())
            .encrypt(
                iv.try_into()
                    .map_err(|_| CryptoError::InvalidInput { reason: "nonce" })?,
                Payload { msg: data, aad },
            )
            .map_err(|_| CryptoError::InvalidInput {
                reason: "SM4-GCM plaintext too long",
            }),
        Sm4Mode::Ccm => Sm4Ccm::from(key.engine())
            .encrypt(
                iv.try_into()
                    .map_err(|_| CryptoError::InvalidInput { reason: "nonce" })?,
                Payload { msg: data, aad },
            )
            .map_err(|_| CryptoError::InvalidInput {
                reason: "SM4-CCM plaintext longer than 2^24 - 1 bytes",
            }),
    }
}

/// Decrypts with the given mode. AEAD modes release nothing unless the tag verifies; CBC
/// checks PKCS#7 padding (CBC is unauthenticated: use it only under a MAC or signature).
pub fn decrypt(
    key: &Sm4Secret,
    mode: Sm4Mode,
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<Secret, CryptoError> {
    check_iv(mode, iv)?;
    check_no_aad(mode, aad)?;
    match mode {
        Sm4Mode::Cbc => {
            if data.is_empty() || !data.len().is_multiple_of(16) {
                return Err(CryptoError::BadPadding {
                    reason: "ciphertext length is not a positive multiple of 16",
                });
            }
            let dec =
                cbc::Decryptor::<Engine>::inner_iv_slice_init(key.engine(), iv).map_err(|_| {
                    CryptoError::InvalidInput {
                        reason: "SM4-CBC key or IV length",
                    }
                })?;
            dec.decrypt_padded_vec::<cbc::cipher::block_padding::Pkcs7>(data)
                .map(Secret::new)
                .map_err(|_| CryptoError::BadPadding {
                    reason: "PKCS#7 padding is invalid (wrong key or IV, or tampered data)",
                })
        }
        Sm4Mode::Ctr => {
            let mut out = data.to_vec();
            ctr_apply(key, iv, &mut out)?;
            Ok(Secret::new(out))
        }
        Sm4Mode::Gcm | Sm4Mode::Ccm => {
            if data.len() < 16 {
                return Err(CryptoError::InvalidLength {
                    what: "AEAD input (ciphertext ‖ 16-byte tag)",
                    expected: 16,
                    got: data.len(),
                });
            }
            let nonce = iv
                .try_into()
                .map_err(|_| CryptoError::InvalidInput { reason: "nonce" })?;
            let payload = Payload { msg: data, aad };
            let pt = if mode == Sm4Mode::Gcm {
                Sm4Gcm::from(key.engine()).decrypt(nonce, payload)
            } else {
                Sm4Ccm::from(key.engine()).decrypt(nonce, payload)
            };
            pt.map(Secret::new).map_err(|_| CryptoError::TagMismatch)
        }
    }
}

/// Applies SM4-CTR keystream in place (encryption and decryption are the same operation).
pub fn ctr_apply(key: &Sm4Secret, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
    check_iv(Sm4Mode::Ctr, iv)?;
    let mut c =
        ctr::CtrCore::<Engine, ctr::flavors::Ctr128BE>::inner_iv_slice_init(key.engine(), iv)
            .map(Sm4Ctr::from_core)
            .map_err(|_| CryptoError::InvalidInput {
                reason: "SM4-CTR key or IV length",
            })?;
    c.try_apply_keystream(data)
        .map_err(|_| CryptoError::InvalidInput {
            reason: "SM4-CTR keystream exhausted",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// The backends this CPU can run; those it cannot are printed as untested.
    fn backends(test: &str) -> Vec<Backend> {
        eprintln!("{test}: CPU features {}", crate::arch::cpu_features());
        for b in Backend::unavailable() {
            eprintln!("{test}: backend {b}: UNTESTED on this CPU");
        }
        Backend::available()
    }

    #[test]
    fn annex_a_on_every_backend() {
        for b in backends("annex_a_on_every_backend") {
            let _forced = b.force().unwrap();
            // GB/T 32907-2016 Annex A.1
            let key = Sm4Secret::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
            let pt: [u8; 16] = h("0123456789abcdeffedcba9876543210").try_into().unwrap();
            let ct = encrypt_block(&key, &pt);
            assert_eq!(hex::encode(ct), "681edf34d206965e86b3e94f536e4246", "{b}");
            assert_eq!(decrypt_block(&key, &ct), pt, "{b}");
            // Annex A.2: the same block encrypted 1 000 000 times under the same key.
            let engine = key.engine();
            assert_eq!(engine.backend(), b);
            let mut x = pt.into();
            for _ in 0..1_000_000 {
                engine.encrypt_block(&mut x);
            }
            let x: [u8; 16] = x.into();
            assert_eq!(hex::encode(x), "595298c7c6fd271f0402f804c33d3f66", "{b}");
            eprintln!("annex_a_on_every_backend: backend {b}: passed");
        }
    }

    #[test]
    fn every_backend_matches_the_table_on_0_to_40_blocks_both_ways() {
        use crypto::RandomSource;
        let rng = crate::rng::SeededRandom::new(0x5eed_0004);
        for b in backends("every_backend_matches_the_table") {
            for case in 0..300 {
                let mut key = [0u8; 16];
                rng.fill(&mut key).unwrap();
                let n = case % 41;
                let mut data = vec![[0u8; 16]; n];
                for blk in &mut data {
                    rng.fill(blk).unwrap();
                }
                let table = Engine::new(&key, Backend::Table);
                let fast = Engine::new(&key, b);
                assert_eq!(fast.backend(), b);
                let mut want: Vec<Block<Engine>> = data.iter().map(|x| (*x).into()).collect();
                let mut got = want.clone();
                table.encrypt_blocks(&mut want);
                fast.encrypt_blocks(&mut got);
                assert_eq!(got, want, "{b}: case {case}, {n} blocks, key {key:02x?}");
                // one block at a time (CBC encryption, CCM's MAC, GCM's H) too
                let mut single = want.clone();
                for x in &mut single {
                    fast.decrypt_block(x);
                }
                fast.decrypt_blocks(&mut got);
                let orig: Vec<Block<Engine>> = data.iter().map(|x| (*x).into()).collect();
                assert_eq!(got, orig, "{b}: decryption, case {case}");
                assert_eq!(single, orig, "{b}: single-block decryption, case {case}");
            }
            // The table against itself cannot fail: it is the reference, not a pass.
            let verdict = if b == Backend::Table {
                "reference (compared with itself)"
            } else {
                "passed"
            };
            eprintln!("every_backend_matches_the_table: backend {b}: {verdict}");
        }
    }

    #[test]
    fn the_gcm_counter_wraps_its_low_32_bits_on_every_backend() {
        // inc32 (NIST SP 800-38D §6.2) as the `ctr` crate's Ctr32BE does it over the table
        // cipher, which the RFC 8998 tests pin; a 12-byte nonce cannot reach the wrap, so the
        // counter is driven directly.
        use cbc::cipher::KeyIvInit;
        let key = [0x42u8; 16];
        for b in backends("the_gcm_counter_wraps") {
            for low in [0xffff_fff0u32, 0xffff_ffff, 0xffff_fffe] {
                let mut iv = [0xa5u8; 16];
                iv[12..].copy_from_slice(&low.to_be_bytes());
                for len in [1usize, 16, 17, 255, 256, 1000] {
                    let mut want = vec![0x3cu8; len];
                    let mut got = want.clone();
                    ctr::Ctr32BE::<sm4::Sm4>::new(&key.into(), &iv.into())
                        .apply_keystream(&mut want);
                    ctr::Ctr32BE::<Engine>::from_core(ctr::CtrCore::inner_iv_init(
                        Engine::new(&key, b),
                        &iv.into(),
                    ))
                    .apply_keystream(&mut got);
                    assert_eq!(got, want, "{b}: low word {low:#x}, {len} bytes");
                }
            }
            eprintln!("the_gcm_counter_wraps: backend {b}: passed");
        }
    }

    #[test]
    fn every_mode_matches_the_previous_implementation_on_every_backend() {
        // The implementation before issue 19: the same mode crates over RustCrypto's table
        // `sm4`, built here directly.
        use aes_gcm::aead::AeadInOut;
        use cbc::cipher::{KeyIvInit, block_padding::Pkcs7};
        use crypto::RandomSource;
        type OldGcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;
        type OldCcm = ccm::Ccm<sm4::Sm4, ccm::consts::U16, ccm::consts::U12>;
        let rng = crate::rng::SeededRandom::new(0x5eed_0019);
        let lengths = [
            0usize, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000, 4095, 65537,
        ];
        for b in backends("every_mode_matches_the_previous_implementation") {
            let _forced = b.force().unwrap();
            for (case, &len) in lengths.iter().enumerate() {
                let mut r = [0u8; 16 + 16 + 12 + 24];
                rng.fill(&mut r).unwrap();
                let key: [u8; 16] = r[..16].try_into().unwrap();
                let iv: [u8; 16] = r[16..32].try_into().unwrap();
                let nonce: [u8; 12] = r[32..44].try_into().unwrap();
                let aad = &r[44..44 + case % 25];
                let mut data = vec![0u8; len];
                rng.fill(&mut data).unwrap();
                let sk = Sm4Secret::from_slice(&key).unwrap();
                let c = format!("{b}: len {len}");

                let mut want = data.clone();
                let tag = OldGcm::new(&key.into())
                    .encrypt_inout_detached(&nonce.into(), aad, want.as_mut_slice().into())
                    .unwrap();
                want.extend_from_slice(&tag);
                assert_eq!(
                    encrypt(&sk, Sm4Mode::Gcm, &nonce, aad, &data).unwrap(),
                    want,
                    "GCM {c}"
                );

                let mut want = data.clone();
                let tag = OldCcm::new(&key.into())
                    .encrypt_inout_detached(&nonce.into(), aad, want.as_mut_slice().into())
                    .unwrap();
                want.extend_from_slice(&tag);
                assert_eq!(
                    encrypt(&sk, Sm4Mode::Ccm, &nonce, aad, &data).unwrap(),
                    want,
                    "CCM {c}"
                );
                assert_eq!(
                    decrypt(&sk, Sm4Mode::Ccm, &nonce, aad, &want)
                        .unwrap()
                        .expose(),
                    &data[..],
                    "CCM decrypt {c}"
                );

                let want = cbc::Encryptor::<sm4::Sm4>::new(&key.into(), &iv.into())
                    .encrypt_padded_vec::<Pkcs7>(&data);
                assert_eq!(
                    encrypt(&sk, Sm4Mode::Cbc, &iv, &[], &data).unwrap(),
                    want,
                    "CBC {c}"
                );

                let mut want = data.clone();
                ctr::Ctr128BE::<sm4::Sm4>::new(&key.into(), &iv.into()).apply_keystream(&mut want);
                assert_eq!(
                    encrypt(&sk, Sm4Mode::Ctr, &iv, &[], &data).unwrap(),
                    want,
                    "CTR {c}"
                );
            }
            // The table is the cipher the previous implementation used: a reference, not a pass.
            let verdict = if b == Backend::Table {
                "reference (the previous implementation's own cipher)"
            } else {
                "passed"
            };
            eprintln!("every_mode_matches_the_previous_implementation: backend {b}: {verdict}");
        }
    }

    #[test]
    fn a_block_key_encrypts_as_encrypt_block_on_every_backend() {
        use crypto::RandomSource;
        let rng = crate::rng::SeededRandom::new(0x5eed_b10c);
        for b in Backend::available() {
            let _forced = b.force().unwrap();
            for _ in 0..50 {
                let mut key = [0u8; 16];
                let mut block = [0u8; 16];
                rng.fill(&mut key).unwrap();
                rng.fill(&mut block).unwrap();
                let sk = Sm4Secret::from_slice(&key).unwrap();
                let bk = Sm4BlockKey::new(&sk);
                assert_eq!(bk.backend(), b);
                assert_eq!(bk.encrypt_block(&block), encrypt_block(&sk, &block), "{b}");
            }
        }
    }

    #[test]
    fn forcing_a_backend_is_per_thread_and_undone_by_the_guard() {
        let before = Backend::current();
        assert_eq!(before, Backend::detected());
        for b in Backend::available() {
            let g = b.force().unwrap();
            assert_eq!(Backend::current(), b);
            {
                let _inner = Backend::Table.force().unwrap();
                assert_eq!(Backend::current(), Backend::Table);
                let other = std::thread::spawn(Backend::current).join().unwrap();
                assert_eq!(other, Backend::detected(), "another thread is not forced");
            }
            assert_eq!(Backend::current(), b);
            drop(g);
            assert_eq!(Backend::current(), before);
        }
        // Guards dropped out of order (review i19 M1): the newest live guard's choice holds,
        // and none is left once both are gone.
        let outer = Backend::Table.force().unwrap();
        let inner = Backend::detected().force().unwrap();
        drop(outer);
        assert_eq!(
            Backend::current(),
            Backend::detected(),
            "the live guard's choice"
        );
        drop(inner);
        assert_eq!(Backend::current(), before, "a backend outlived its guards");
        for b in Backend::unavailable() {
            assert!(matches!(b.force(), Err(CryptoError::Unsupported { .. })));
        }
        for b in Backend::ALL {
            assert_eq!(Backend::from_name(b.name()), Some(b));
        }
    }

    #[test]
    fn rfc8998_gcm_and_ccm() {
        for b in backends("rfc8998_gcm_and_ccm") {
            let _forced = b.force().unwrap();
            rfc8998_vectors();
            eprintln!("rfc8998_gcm_and_ccm: backend {b}: passed");
        }
    }

    fn rfc8998_vectors() {
        let key = Sm4Secret::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
        let nonce = h("00001234567800000000abcd");
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = h(
            "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccddddddddddddddddeeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
        );
        let gcm = encrypt(&key, Sm4Mode::Gcm, &nonce, &aad, &pt).unwrap();
        assert_eq!(
            hex::encode(&gcm[gcm.len() - 16..]),
            "83de3541e4c2b58177e065a9bf7b62ec"
        );
        assert_eq!(
            decrypt(&key, Sm4Mode::Gcm, &nonce, &aad, &gcm)
                .unwrap()
                .expose(),
            &pt[..]
        );
        let ccm = encrypt(&key, Sm4Mode::Ccm, &nonce, &aad, &pt).unwrap();
        assert_eq!(
            hex::encode(&ccm[ccm.len() - 16..]),
            "16842d4fa186f56ab33256971fa110f4"
        );
        let mut bad = ccm.clone();
        bad[0] ^= 1;
        assert_eq!(
            decrypt(&key, Sm4Mode::Ccm, &nonce, &aad, &bad),
            Err(CryptoError::TagMismatch)
        );
        assert!(decrypt(&key, Sm4Mode::Gcm, &nonce, b"other aad", &gcm).is_err());
    }

    #[test]
    fn in_place_aead_matches_the_one_shot_modes_and_refuses_a_bad_tag() {
        for b in backends("in_place_aead") {
            let _forced = b.force().unwrap();
            in_place_aead(b);
        }
    }

    fn in_place_aead(b: Backend) {
        let key = Sm4Secret::from_slice(&h("0123456789abcdeffedcba9876543210")).unwrap();
        let nonce: [u8; 12] = h("00001234567800000000abcd").try_into().unwrap();
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        for mode in [Sm4Mode::Gcm, Sm4Mode::Ccm] {
            let aead = Sm4Aead::new(&key, mode).unwrap();
            assert_eq!(aead.backend(), b);
            for len in [0usize, 1, 15, 16, 17, 64, 1000] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let whole = encrypt(&key, mode, &nonce, &aad, &pt).unwrap();
                let mut buf = pt.clone();
                let tag = aead.seal_in_place(&nonce, &aad, &mut buf).unwrap();
                assert_eq!([&buf[..], &tag[..]].concat(), whole, "{mode:?} {len}");
                aead.open_in_place(&nonce, &aad, &mut buf, &tag).unwrap();
                assert_eq!(buf, pt);
                let mut bad_tag = tag;
                bad_tag[15] ^= 1;
                let mut ct = whole[..len].to_vec();
                assert_eq!(
                    aead.open_in_place(&nonce, &aad, &mut ct, &bad_tag),
                    Err(CryptoError::TagMismatch)
                );
            }
        }
        assert!(Sm4Aead::new(&key, Sm4Mode::Cbc).is_err());
    }

    #[test]
    fn cbc_padding_and_bad_lengths() {
        let key = Sm4Secret::from_slice(&[7u8; 16]).unwrap();
        let iv = [9u8; 16];
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0x5au8; len];
            let ct = encrypt(&key, Sm4Mode::Cbc, &iv, &[], &pt).unwrap();
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(
                decrypt(&key, Sm4Mode::Cbc, &iv, &[], &ct).unwrap().expose(),
                &pt[..]
            );
        }
        assert!(matches!(
            decrypt(&key, Sm4Mode::Cbc, &iv, &[], &[0u8; 15]),
            Err(CryptoError::BadPadding { .. })
        ));
        assert!(matches!(
            decrypt(&key, Sm4Mode::Cbc, &iv, &[], &[]),
            Err(CryptoError::BadPadding { .. })
        ));
        assert!(matches!(
            encrypt(&key, Sm4Mode::Gcm, &iv, &[], b"x"),
            Err(CryptoError::InvalidLength { .. })
        ));
        assert!(matches!(
            decrypt(&key, Sm4Mode::Gcm, &iv[..12], &[], &[0u8; 15]),
            Err(CryptoError::InvalidLength { .. })
        ));
        assert!(Sm4Secret::from_slice(&[0u8; 15]).is_err());
    }
}
