//! Randomness sources: the OS source (for the binary) and a seeded one (for tests).

use crypto::{CryptoError, RandomSource};

/// Fills a fresh array from `source`.
pub(crate) fn random_array<const N: usize>(
    source: &dyn RandomSource,
) -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    source.fill(&mut out)?;
    Ok(out)
}

/// The operating system's entropy source (`getrandom`). Only the binary constructs it.
#[cfg(feature = "system-rng")]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

#[cfg(feature = "system-rng")]
impl RandomSource for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(buf).map_err(|_| CryptoError::Entropy)
    }
}

/// A deterministic generator for tests and reproducible simulations: SM3 in counter mode over a
/// seed. Never use it for keys that protect anything.
#[derive(Debug)]
pub struct SeededRandom {
    state: std::sync::Mutex<([u8; 32], u64)>,
}

impl SeededRandom {
    /// Returns a generator whose output is a function of `seed` alone.
    pub fn new(seed: u64) -> Self {
        let s = crate::sm3::sm3(&seed.to_be_bytes());
        Self {
            state: std::sync::Mutex::new((s.0, 0)),
        }
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        let mut st = self.state.lock().map_err(|_| CryptoError::Entropy)?;
        for chunk in buf.chunks_mut(32) {
            let mut input = [0u8; 40];
            input[..32].copy_from_slice(&st.0);
            input[32..].copy_from_slice(&st.1.to_be_bytes());
            st.1 += 1;
            let block = crate::sm3::sm3(&input);
            chunk.copy_from_slice(&block.0[..chunk.len()]);
        }
        Ok(())
    }
}
