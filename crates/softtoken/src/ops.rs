//! Cryptographic operations in progress, and the jobs that finish them.
//!
//! An `*Init` call builds an operation holding everything it needs (a reference to the
//! decrypted key, the mechanism, buffered input); the finishing call takes the operation out of
//! its session under the module lock and returns a [`Job`], which runs after the lock is
//! released. So a slow SM2 signature in one session never blocks another session.
#![forbid(unsafe_code)]

use crate::error::{Result, ck};
use crate::mechanism::Sm4Cipher;
use crate::object::Plain;
use crypto::{CipherFormat, CryptoError, Digest, PublicKey, RandomSource, Signature, UserId};
use crypto_sm::sm2;
use crypto_sm::sm3::Sm3Context;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The length of a raw SM2 signature r ‖ s.
pub const SIGNATURE_LEN: usize = 64;
/// C1 (65) ‖ C3 (32): the SM2 ciphertext overhead.
pub const SM2_CIPHER_OVERHEAD: usize = 97;
/// The most input an operation buffers (multi-part ciphers, the raw SM2 mechanism).
pub const MAX_BUFFERED: usize = 64 * 1024 * 1024;

/// What is being signed or verified.
#[derive(Clone)]
pub enum SignInput {
    /// `CKM_GM_SM2_SIGN`: the caller's e, collected (32 bytes in the end).
    Digest(Vec<u8>),
    /// `CKM_GM_SM2_SM3_SIGN`: SM3 started with ZA, absorbing the message.
    Message(Sm3Context),
}

impl core::fmt::Debug for SignInput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SignInput::Digest(b) => write!(f, "Digest({} bytes)", b.len()),
            SignInput::Message(_) => f.write_str("Message"),
        }
    }
}

impl SignInput {
    /// Starts: for a message, e = SM3(ZA ‖ M) with ZA over `id` and `key` (GB/T 32918.2 §6.1 A1).
    pub fn new(id: Option<&UserId>, key: &PublicKey) -> Self {
        match id {
            None => SignInput::Digest(Vec::new()),
            Some(id) => {
                let mut h = Sm3Context::new();
                h.update(sm2::za(id, key).as_bytes());
                SignInput::Message(h)
            }
        }
    }

    /// Absorbs more input.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            SignInput::Digest(buf) => {
                // e is 32 bytes: anything longer is already wrong, but PKCS#11 reports it at
                // the end; bound the buffer meanwhile.
                if buf.len() + data.len() > 1024 {
                    return Err(ck(CKR_DATA_LEN_RANGE, "CKM_GM_SM2_SIGN signs a 32-byte e"));
                }
                buf.extend_from_slice(data);
            }
            SignInput::Message(h) => h.update(data),
        }
        Ok(())
    }

    /// Returns e (GB/T 32918.2 §6.1 A2).
    fn finish(self) -> Result<Digest> {
        match self {
            SignInput::Digest(buf) => {
                let e: [u8; 32] = buf
                    .as_slice()
                    .try_into()
                    .map_err(|_| ck(CKR_DATA_LEN_RANGE, "CKM_GM_SM2_SIGN signs a 32-byte e"))?;
                Ok(Digest(e))
            }
            SignInput::Message(h) => Ok(h.finish()),
        }
    }

    /// Returns whether more input can still make the final length right.
    pub fn len_ok(&self, extra: usize) -> bool {
        match self {
            SignInput::Digest(buf) => buf.len() + extra == 32,
            SignInput::Message(_) => true,
        }
    }
}

/// Who must be logged in for an operation to go on: checked again when it finishes, so that a
/// logout in between stops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A public object: nobody.
    Nobody,
    /// A token secret that is not `CKA_PRIVATE`: someone (the token key was needed).
    AnyLogin,
    /// A `CKA_PRIVATE` object: the user.
    User,
}

/// A signature in progress.
#[derive(Debug)]
pub struct SignOp {
    /// The slot index, for the login check.
    pub slot: usize,
    /// Who must still be logged in.
    pub need: Need,
    /// The decrypted private key.
    pub key: Arc<Plain>,
    /// The input so far.
    pub input: SignInput,
}

/// A verification in progress.
#[derive(Debug)]
pub struct VerifyOp {
    /// The public key.
    pub key: PublicKey,
    /// The input so far.
    pub input: SignInput,
}

/// The mechanism of a cipher operation.
#[derive(Debug, Clone)]
pub enum CipherMech {
    /// SM2 public-key encryption.
    Sm2,
    /// An SM4 mode.
    Sm4(Sm4Cipher),
}

/// The key of a cipher operation.
#[derive(Debug, Clone)]
pub enum CipherKey {
    /// SM2 encryption to this public key.
    Sm2Public(PublicKey),
    /// SM2 decryption with this private key, or SM4 with this key.
    Secret(Arc<Plain>),
}

/// An encryption or decryption in progress; multi-part input is buffered and processed at the
/// end (so GCM releases nothing before its tag is checked).
#[derive(Debug)]
pub struct CipherOp {
    /// The slot index.
    pub slot: usize,
    /// Who must still be logged in.
    pub need: Need,
    /// The mechanism.
    pub mech: CipherMech,
    /// The key.
    pub key: CipherKey,
    /// Input buffered by `*Update`.
    pub buf: Zeroizing<Vec<u8>>,
}

impl CipherOp {
    /// Buffers more input.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.len() + data.len() > MAX_BUFFERED {
            return Err(ck(
                CKR_DATA_LEN_RANGE,
                "multi-part input is limited to 64 MiB",
            ));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Returns the output length of encrypting `extra` more bytes (exact).
    pub fn encrypted_len(&self, extra: usize) -> Result<usize> {
        let n = self.buf.len() + extra;
        match &self.mech {
            CipherMech::Sm2 if n == 0 => Err(ck(CKR_DATA_LEN_RANGE, "SM2 cannot encrypt nothing")),
            CipherMech::Sm2 => Ok(n + SM2_CIPHER_OVERHEAD),
            CipherMech::Sm4(c) => c.encrypted_len(n),
        }
    }

    /// Returns an upper bound of the output length of decrypting `extra` more bytes.
    pub fn decrypted_len(&self, extra: usize) -> Result<usize> {
        let n = self.buf.len() + extra;
        match &self.mech {
            CipherMech::Sm2 if n <= SM2_CIPHER_OVERHEAD => Err(ck(
                CKR_ENCRYPTED_DATA_LEN_RANGE,
                "an SM2 ciphertext is C1 (65) ‖ C3 (32) ‖ at least one byte",
            )),
            CipherMech::Sm2 => Ok(n - SM2_CIPHER_OVERHEAD),
            CipherMech::Sm4(c) => c.decrypted_len(n),
        }
    }
}

/// A digest in progress.
#[derive(Debug, Clone, Default)]
pub struct DigestOp {
    /// SM3 state.
    pub ctx: Sm3Context,
}

/// The finishing half of an operation, run without the module lock.
pub enum Job<'a> {
    /// Sign the op's input plus `data`.
    Sign {
        /// The operation.
        op: SignOp,
        /// Final input.
        data: &'a [u8],
        /// Randomness for the hedged nonce.
        rng: Arc<dyn RandomSource>,
    },
    /// Verify.
    Verify {
        /// The operation.
        op: VerifyOp,
        /// Final input.
        data: &'a [u8],
        /// The signature.
        signature: &'a [u8],
    },
    /// Encrypt.
    Encrypt {
        /// The operation.
        op: CipherOp,
        /// Final input.
        data: &'a [u8],
        /// Randomness for SM2's k.
        rng: Arc<dyn RandomSource>,
    },
    /// Decrypt.
    Decrypt {
        /// The operation.
        op: CipherOp,
        /// Final input.
        data: &'a [u8],
    },
    /// Digest.
    Digest {
        /// The operation.
        op: DigestOp,
        /// Final input.
        data: &'a [u8],
    },
}

impl core::fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Job::Sign { .. } => "Job::Sign",
            Job::Verify { .. } => "Job::Verify",
            Job::Encrypt { .. } => "Job::Encrypt",
            Job::Decrypt { .. } => "Job::Decrypt",
            Job::Digest { .. } => "Job::Digest",
        })
    }
}

fn sm2_key(p: &Plain) -> Result<&sm2::PrivateKey> {
    match p {
        Plain::Sm2(k) => Ok(k),
        Plain::Sm4(_) => Err(ck(CKR_KEY_TYPE_INCONSISTENT, "not an SM2 key")),
    }
}

fn sm4_key(p: &Plain) -> Result<crypto_sm::sm4::Sm4Secret> {
    match p {
        Plain::Sm4(k) => k.sm4(),
        Plain::Sm2(_) => Err(ck(CKR_KEY_TYPE_INCONSISTENT, "not an SM4 key")),
    }
}

fn joined<'b>(buf: &'b [u8], data: &'b [u8], scratch: &'b mut Zeroizing<Vec<u8>>) -> &'b [u8] {
    if buf.is_empty() {
        data
    } else {
        scratch.extend_from_slice(buf);
        scratch.extend_from_slice(data);
        scratch.as_slice()
    }
}

impl Job<'_> {
    /// Runs the job: the output bytes (empty for a successful verification).
    pub fn run(self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Job::Sign { mut op, data, rng } => {
                op.input.update(data)?;
                let e = op.input.finish()?;
                // GB/T 32918.2 §6.1 A3-A7.
                let sig = sm2_key(&op.key)?.sign_digest(&e, rng.as_ref())?;
                Ok(Zeroizing::new(sig.to_raw().to_vec()))
            }
            Job::Verify {
                mut op,
                data,
                signature,
            } => {
                if signature.len() != SIGNATURE_LEN {
                    return Err(ck(
                        CKR_SIGNATURE_LEN_RANGE,
                        "an SM2 signature is r ‖ s, 64 bytes",
                    ));
                }
                op.input.update(data)?;
                let e = op.input.finish()?;
                let sig = Signature::from_raw(signature)
                    .map_err(|_| ck(CKR_SIGNATURE_LEN_RANGE, "an SM2 signature is 64 bytes"))?;
                // GB/T 32918.2 §7.1 B1-B7, including the range checks of r and s.
                sm2::verify_digest(&op.key, &e, &sig)
                    .map_err(|_| ck(CKR_SIGNATURE_INVALID, "the signature does not verify"))?;
                Ok(Zeroizing::new(Vec::new()))
            }
            Job::Encrypt { op, data, rng } => {
                let mut scratch = Zeroizing::new(Vec::new());
                let input = joined(&op.buf, data, &mut scratch);
                match (&op.mech, &op.key) {
                    (CipherMech::Sm2, CipherKey::Sm2Public(pk)) => {
                        if input.is_empty() {
                            return Err(ck(CKR_DATA_LEN_RANGE, "SM2 cannot encrypt nothing"));
                        }
                        Ok(Zeroizing::new(sm2::encrypt(
                            pk,
                            input,
                            CipherFormat::C1C3C2,
                            rng.as_ref(),
                        )?))
                    }
                    (CipherMech::Sm4(c), CipherKey::Secret(k)) => {
                        Ok(Zeroizing::new(c.encrypt(&sm4_key(k)?, input)?))
                    }
                    _ => Err(ck(
                        CKR_KEY_TYPE_INCONSISTENT,
                        "key does not fit the mechanism",
                    )),
                }
            }
            Job::Decrypt { op, data } => {
                let mut scratch = Zeroizing::new(Vec::new());
                let input = joined(&op.buf, data, &mut scratch);
                match (&op.mech, &op.key) {
                    (CipherMech::Sm2, CipherKey::Secret(k)) => {
                        let pt = sm2::decrypt(sm2_key(k)?, input, CipherFormat::C1C3C2).map_err(
                            |e| match e {
                                CryptoError::Entropy => crate::error::Error::Entropy,
                                // C3 mismatch, C1 not on the curve, malformed: release nothing.
                                _ => ck(CKR_ENCRYPTED_DATA_INVALID, "SM2 decryption failed"),
                            },
                        )?;
                        Ok(Zeroizing::new(pt.expose().to_vec()))
                    }
                    (CipherMech::Sm4(c), CipherKey::Secret(k)) => c.decrypt(&sm4_key(k)?, input),
                    _ => Err(ck(
                        CKR_KEY_TYPE_INCONSISTENT,
                        "key does not fit the mechanism",
                    )),
                }
            }
            Job::Digest { mut op, data } => {
                op.ctx.update(data);
                Ok(Zeroizing::new(op.ctx.finish().as_bytes().to_vec()))
            }
        }
    }
}
