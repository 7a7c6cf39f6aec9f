//! [`Hsm`]: SM3 in the token (for the device checks; gmchain hashes in software, crypto-sm).

use super::Hsm;
use crate::HsmError;
use crate::ffi::{Mech, Param};
use crate::profile::Operation;
use crypto::Digest;

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
}
