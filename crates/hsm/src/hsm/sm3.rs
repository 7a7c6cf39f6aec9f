//! [`Hsm`]: SM3 in the token, and [`HsmHasher`].

use super::Hsm;
use crate::HsmError;
use crate::ffi::{Mech, Param};
use crate::profile::Operation;
use crypto::{Digest, HashContext, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

impl Hsm {
    /// SM3 of `data`, computed by the token.
    pub fn sm3(&self, data: &[u8]) -> Result<Digest, HsmError> {
        let mech = self.mechanism(Operation::Sm3Digest)?;
        let out = self.inner.pool.run("SM3 digest", |ctx| {
            Ok(ctx
                .raw
                .digest(ctx.handle(), &Mech::new(mech, Param::None), data)?)
        })?;
        let arr: [u8; 32] = out
            .as_slice()
            .try_into()
            .map_err(|_| HsmError::InvalidInput {
                reason: format!("the token returned a {}-byte SM3 digest", out.len()),
            })?;
        Ok(Digest(arr))
    }

    /// Returns an SM3 [`Hasher`] that computes through the token.
    pub fn hasher(&self) -> Result<HsmHasher, HsmError> {
        self.mechanism(Operation::Sm3Digest)?;
        Ok(HsmHasher {
            hsm: self.clone(),
            fallbacks: Arc::new(AtomicU64::new(0)),
        })
    }
}

/// SM3 through the token, as a [`Hasher`].
///
/// [`Hasher`] cannot fail, a token can. When the token fails (unreachable, session lost twice)
/// this hasher returns SM3 computed in software, which is byte-for-byte the same function of
/// public input and involves no key, and counts the event in [`HsmHasher::software_fallbacks`].
/// Callers that must know use [`Hsm::sm3`], which never falls back.
#[derive(Clone)]
pub struct HsmHasher {
    hsm: Hsm,
    fallbacks: Arc<AtomicU64>,
}

impl std::fmt::Debug for HsmHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HsmHasher({:?})", self.hsm)
    }
}

impl HsmHasher {
    /// Returns how many digests were computed in software because the token failed.
    pub fn software_fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    fn digest(hsm: &Hsm, fallbacks: &AtomicU64, data: &[u8]) -> Digest {
        match hsm.sm3(data) {
            Ok(d) => d,
            Err(_) => {
                fallbacks.fetch_add(1, Ordering::Relaxed);
                crypto_sm::sm3::sm3(data)
            }
        }
    }
}

impl Hasher for HsmHasher {
    fn sm3(&self, data: &[u8]) -> Digest {
        Self::digest(&self.hsm, &self.fallbacks, data)
    }

    fn start(&self) -> Box<dyn HashContext> {
        Box::new(HsmHashContext {
            hsm: self.hsm.clone(),
            fallbacks: self.fallbacks.clone(),
            buf: Vec::new(),
        })
    }
}

/// Buffers input and digests it in one token call at `finish`, so that no pooled session is
/// held between updates.
struct HsmHashContext {
    hsm: Hsm,
    fallbacks: Arc<AtomicU64>,
    buf: Vec<u8>,
}

impl HashContext for HsmHashContext {
    fn update(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn finish(self: Box<Self>) -> Digest {
        HsmHasher::digest(&self.hsm, &self.fallbacks, &self.buf)
    }
}
