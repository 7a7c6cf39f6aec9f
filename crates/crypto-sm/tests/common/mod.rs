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
