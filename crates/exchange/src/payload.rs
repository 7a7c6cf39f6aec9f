//! The payload format (`docs/formats.md` §8): a published version of a dataset, encrypted with a
//! fresh SM4 data key as a stream of SM4-GCM chunks.
//!
//! ```text
//! header  = "GMCP" ‖ version (0x01) ‖ nonce prefix (8 bytes, random per payload)
//! chunk i = SM4-GCM(key, nonce = prefix ‖ u32 BE i, aad = header ‖ last, plaintext_i) ‖ tag (16)
//! ```
//!
//! Every chunk but the last holds exactly [`CHUNK_LEN`] (1 MiB) of plaintext; the last holds
//! 0 to [`CHUNK_LEN`] bytes and is the only one whose AAD ends in `last = 0x01` (the others
//! `0x00`). So a stream cut at a chunk boundary, chunks reordered, dropped or repeated, a chunk
//! moved from another payload or another header all fail a tag, and bytes after the last chunk
//! are refused. An empty plaintext is one empty last chunk (its tag alone).
//!
//! [`open`] releases a chunk's plaintext only after its tag verified, holding one chunk in
//! memory; a stream that fails later has released the chunks before the failure, so a caller
//! writes to a temporary file and keeps it only when [`open`] succeeded (and the digests the
//! catalogue records match). Both directions compute SM3 of the plaintext and of the whole
//! ciphertext (header included), the two digests the catalogue records.

use std::io::{self, Read, Write};

use crypto::{CryptoError, Digest};
use crypto_sm::sm3::Sm3Context;
use crypto_sm::sm4::{AEAD_TAG_LEN, Sm4Aead, Sm4Secret};

/// The first four bytes of every payload.
pub const MAGIC: [u8; 4] = *b"GMCP";

/// The format version this build writes and reads.
pub const VERSION: u8 = 1;

/// The length of the header: magic, version, nonce prefix.
pub const HEADER_LEN: usize = 4 + 1 + 8;

/// The plaintext of every chunk but the last.
pub const CHUNK_LEN: usize = 1 << 20;

/// The most chunks a payload may have: the 32-bit counter of the nonce (4 PiB of plaintext).
pub const MAX_CHUNKS: u64 = 1 << 32;

/// Why a payload could not be sealed or opened. Opening fails closed: on any error the
/// plaintext released so far must be discarded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The stream does not start with the payload header.
    #[error("not a gmchain payload: the first bytes are not \"GMCP\"")]
    NotAPayload,
    /// A header of a version this build does not read.
    #[error("payload format version {0}, this build reads version 1")]
    UnsupportedVersion(u8),
    /// The stream ends inside the header or a chunk, or before any chunk.
    #[error("the payload is truncated: it ends inside {what}")]
    Truncated {
        /// `the header`, or `chunk <i>`.
        what: String,
    },
    /// A chunk's tag does not verify: a wrong key, or altered, reordered, dropped or foreign
    /// bytes (including a stream cut at a chunk boundary, whose last chunk is not marked last).
    #[error(
        "chunk {chunk} does not verify (SM4-GCM tag): a wrong data key, or the payload was altered, reordered or cut"
    )]
    Tag {
        /// The chunk's index.
        chunk: u64,
    },
    /// More than [`MAX_CHUNKS`] chunks.
    #[error("the payload has more than {MAX_CHUNKS} chunks")]
    TooLong,
    /// Reading the input or writing the output failed.
    #[error("{what}: {source}")]
    Io {
        /// `reading the plaintext`, `writing the payload`, ...
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The cipher refused its input (never for a chunk of at most [`CHUNK_LEN`]).
    #[error("SM4-GCM: {0}")]
    Cipher(CryptoError),
}

/// What a sealed or opened payload was: its lengths, its chunk count and the SM3 digests the
/// catalogue records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Bytes of plaintext.
    pub plaintext_len: u64,
    /// Bytes of the payload: the header, and each chunk with its tag.
    pub payload_len: u64,
    /// Chunks, the last included (at least 1).
    pub chunks: u64,
    /// SM3 of the plaintext.
    pub plaintext_sm3: Digest,
    /// SM3 of the whole payload (header included).
    pub payload_sm3: Digest,
}

/// The header of a payload whose nonces start with `prefix`.
pub fn header(prefix: &[u8; 8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5..].copy_from_slice(prefix);
    h
}

/// The nonce of chunk `index` of a payload whose nonces start with `prefix`.
pub fn nonce(prefix: &[u8; 8], index: u64) -> Result<[u8; 12], PayloadError> {
    let counter = u32::try_from(index).map_err(|_| PayloadError::TooLong)?;
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&counter.to_be_bytes());
    Ok(n)
}

/// The additional data of a chunk: the header, then 0x01 for the last chunk, 0x00 for others.
pub fn aad(header: &[u8; HEADER_LEN], last: bool) -> [u8; HEADER_LEN + 1] {
    let mut a = [0u8; HEADER_LEN + 1];
    a[..HEADER_LEN].copy_from_slice(header);
    a[HEADER_LEN] = u8::from(last);
    a
}

/// The length of the payload that seals `plaintext_len` bytes: the header, the plaintext, and
/// a tag per chunk (at least one chunk; a last chunk may be full). `None` past [`MAX_CHUNKS`].
/// The catalogue checks a published version's sizes with it.
pub fn sealed_len(plaintext_len: u64) -> Option<u64> {
    let chunks = plaintext_len.div_ceil(CHUNK_LEN as u64).max(1);
    if chunks > MAX_CHUNKS {
        return None;
    }
    (HEADER_LEN as u64)
        .checked_add(plaintext_len)?
        .checked_add(chunks.checked_mul(AEAD_TAG_LEN as u64)?)
}

/// Reads until `buf` is full or the input ends, retrying interrupted reads; returns the bytes
/// read (fewer than `buf.len()` only at the end). Payloads move in chunks read this way: here,
/// on the custodian and in the CLI.
pub fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn fill(input: &mut dyn Read, buf: &mut [u8], what: &'static str) -> Result<usize, PayloadError> {
    read_full(input, buf).map_err(|source| PayloadError::Io { what, source })
}

/// Hashes and writes `bytes` to the output.
fn emit(
    output: &mut dyn Write,
    hash: &mut Sm3Context,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), PayloadError> {
    hash.update(bytes);
    output
        .write_all(bytes)
        .map_err(|source| PayloadError::Io { what, source })
}

/// Encrypts the plaintext read from `input` under `key` into a payload written to `output`,
/// one chunk at a time (memory: two chunks). `prefix` must be fresh for every payload under
/// `key` (draw it at random; a data key serves one version, and a new version re-keys).
pub fn seal(
    key: &Sm4Secret,
    prefix: &[u8; 8],
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<Summary, PayloadError> {
    let aead = Sm4Aead::new(key, crypto::Sm4Mode::Gcm).map_err(PayloadError::Cipher)?;
    let head = header(prefix);
    let mut plain_hash = Sm3Context::new();
    let mut payload_hash = Sm3Context::new();
    emit(output, &mut payload_hash, &head, "writing the payload")?;
    // Two buffers: the chunk being sealed, and the next one read ahead to learn whether the
    // current one is the last.
    let mut current = vec![0u8; CHUNK_LEN];
    let mut next = vec![0u8; CHUNK_LEN];
    let mut len = fill(input, &mut current, "reading the plaintext")?;
    let mut index: u64 = 0;
    let mut plaintext_len: u64 = 0;
    let mut payload_len = HEADER_LEN as u64;
    loop {
        let next_len = if len == CHUNK_LEN {
            fill(input, &mut next, "reading the plaintext")?
        } else {
            0
        };
        let last = next_len == 0;
        plain_hash.update(&current[..len]);
        plaintext_len += len as u64;
        let tag = aead
            .seal_in_place(
                &nonce(prefix, index)?,
                &aad(&head, last),
                &mut current[..len],
            )
            .map_err(PayloadError::Cipher)?;
        emit(
            output,
            &mut payload_hash,
            &current[..len],
            "writing the payload",
        )?;
        emit(output, &mut payload_hash, &tag, "writing the payload")?;
        payload_len += (len + AEAD_TAG_LEN) as u64;
        index += 1;
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        len = next_len;
    }
    output.flush().map_err(|source| PayloadError::Io {
        what: "writing the payload",
        source,
    })?;
    Ok(Summary {
        plaintext_len,
        payload_len,
        chunks: index,
        plaintext_sm3: plain_hash.finish(),
        payload_sm3: payload_hash.finish(),
    })
}

/// Decrypts the payload read from `input` under `key`, writing each chunk's plaintext to
/// `output` only after its tag verified (memory: two chunks). Fails on the first chunk that
/// does not verify, on a stream that ends before a chunk marked last, and on bytes after it;
/// on failure the plaintext written so far must be discarded.
pub fn open(
    key: &Sm4Secret,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<Summary, PayloadError> {
    let mut payload_hash = Sm3Context::new();
    let mut plain_hash = Sm3Context::new();
    let d = decrypt_with(
        key,
        input,
        output,
        Some((&mut payload_hash, &mut plain_hash)),
    )?;
    Ok(Summary {
        plaintext_len: d.plaintext_len,
        payload_len: d.payload_len,
        chunks: d.chunks,
        plaintext_sm3: plain_hash.finish(),
        payload_sm3: payload_hash.finish(),
    })
}

/// What [`decrypt`] verified: the lengths and chunk count, no digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decrypted {
    /// Bytes of plaintext.
    pub plaintext_len: u64,
    /// Bytes of the payload: the header, and each chunk with its tag.
    pub payload_len: u64,
    /// Chunks, the last included (at least 1).
    pub chunks: u64,
}

/// [`open`] without the two SM3 digests, for a caller that computes them itself on other
/// threads (the CLI's fetch hashes the payload as it arrives and the plaintext as it is
/// written). The same checks, the same release rule: a chunk only after its tag.
pub fn decrypt(
    key: &Sm4Secret,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<Decrypted, PayloadError> {
    decrypt_with(key, input, output, None)
}

fn decrypt_with(
    key: &Sm4Secret,
    input: &mut dyn Read,
    output: &mut dyn Write,
    mut hashes: Option<(&mut Sm3Context, &mut Sm3Context)>,
) -> Result<Decrypted, PayloadError> {
    let aead = Sm4Aead::new(key, crypto::Sm4Mode::Gcm).map_err(PayloadError::Cipher)?;
    let mut head = [0u8; HEADER_LEN];
    let n = fill(input, &mut head, "reading the payload")?;
    if n < MAGIC.len() || head[..4] != MAGIC {
        if n < MAGIC.len() && head[..n] == MAGIC[..n] {
            return Err(PayloadError::Truncated {
                what: "the header".into(),
            });
        }
        return Err(PayloadError::NotAPayload);
    }
    if n < HEADER_LEN {
        return Err(PayloadError::Truncated {
            what: "the header".into(),
        });
    }
    if head[4] != VERSION {
        return Err(PayloadError::UnsupportedVersion(head[4]));
    }
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&head[5..]);
    if let Some((payload_hash, _)) = hashes.as_mut() {
        payload_hash.update(&head);
    }
    // A chunk is at most CHUNK_LEN + tag; one byte more read ahead tells whether it is the last.
    const SEALED: usize = CHUNK_LEN + AEAD_TAG_LEN;
    let mut current = vec![0u8; SEALED + 1];
    let mut len = fill(input, &mut current, "reading the payload")?;
    let mut index: u64 = 0;
    let mut plaintext_len: u64 = 0;
    let mut payload_len = HEADER_LEN as u64;
    loop {
        let last = len <= SEALED;
        if len < AEAD_TAG_LEN {
            return Err(PayloadError::Truncated {
                what: format!("chunk {index}"),
            });
        }
        // Not the last: exactly one sealed chunk, and the byte read ahead starts the next.
        let sealed_len = if last { len } else { SEALED };
        if let Some((payload_hash, _)) = hashes.as_mut() {
            payload_hash.update(&current[..sealed_len]);
        }
        let body = sealed_len - AEAD_TAG_LEN;
        let mut tag = [0u8; AEAD_TAG_LEN];
        tag.copy_from_slice(&current[body..sealed_len]);
        aead.open_in_place(
            &nonce(&prefix, index)?,
            &aad(&head, last),
            &mut current[..body],
            &tag,
        )
        .map_err(|_| PayloadError::Tag { chunk: index })?;
        if let Some((_, plain_hash)) = hashes.as_mut() {
            plain_hash.update(&current[..body]);
        }
        output
            .write_all(&current[..body])
            .map_err(|source| PayloadError::Io {
                what: "writing the plaintext",
                source,
            })?;
        plaintext_len += body as u64;
        payload_len += sealed_len as u64;
        index += 1;
        if last {
            break;
        }
        // The byte read ahead becomes the first of the next chunk.
        current[0] = current[SEALED];
        len = 1 + fill(input, &mut current[1..], "reading the payload")?;
    }
    output.flush().map_err(|source| PayloadError::Io {
        what: "writing the plaintext",
        source,
    })?;
    Ok(Decrypted {
        plaintext_len,
        payload_len,
        chunks: index,
    })
}
