//! [`Hsm`]: the token's random number generator, and [`HsmRandom`].

use super::Hsm;
use crate::HsmError;
use crate::pool::OpError;
use crate::rv::CallError;
use crypto::{CryptoError, RandomSource};

impl Hsm {
    /// Random bytes from the token's generator.
    pub fn random(&self, n: usize) -> Result<Vec<u8>, HsmError> {
        let mut out = vec![0u8; n];
        self.fill_random(&mut out)?;
        Ok(out)
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<(), HsmError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.inner.pool.run("random generation", |ctx| {
            ctx.session
                .generate_random_slice(buf)
                .map_err(|e| OpError::Call(CallError::from_cryptoki("C_GenerateRandom", &e)))
        })
    }

    /// Returns a [`RandomSource`] drawing from the token.
    pub fn rng(&self) -> HsmRandom {
        HsmRandom { hsm: self.clone() }
    }
}

/// The token's random number generator as a [`RandomSource`].
#[derive(Clone, Debug)]
pub struct HsmRandom {
    hsm: Hsm,
}

impl RandomSource for HsmRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        self.hsm.fill_random(buf).map_err(|_| CryptoError::Entropy)
    }
}
