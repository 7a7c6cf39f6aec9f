//! The payload format (`docs/formats.md` §8): round trips at the chunk boundaries, every kind of
//! tampering refused with nothing unverified released, and the format rebuilt independently by
//! GmSSL 3 (`gmssl-pyx`) from the text of §8.

use exchange::payload::{
    self, CHUNK_LEN, HEADER_LEN, PayloadError, Summary, aad, header, nonce, open, seal,
};

use crypto_sm::sm3::sm3;
use crypto_sm::sm4::Sm4Secret;
use test_support::{unx, x};

fn key(b: u8) -> Sm4Secret {
    Sm4Secret::from_slice(&[b; 16]).unwrap()
}

const PREFIX: [u8; 8] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ 0x5a).collect()
}

fn sealed(data: &[u8]) -> (Vec<u8>, Summary) {
    let mut out = Vec::new();
    let s = seal(&key(7), &PREFIX, &mut &data[..], &mut out).unwrap();
    (out, s)
}

/// Opens `payload` under key 7; `decrypt` (the same checks without the digests) must release
/// the same bytes and end the same way.
fn opened(payload: &[u8]) -> (Vec<u8>, Result<Summary, PayloadError>) {
    let mut out = Vec::new();
    let r = open(&key(7), &mut &payload[..], &mut out);
    let mut plain = Vec::new();
    let d = payload::decrypt(&key(7), &mut &payload[..], &mut plain);
    assert_eq!(plain, out, "decrypt released other bytes than open");
    match (&r, &d) {
        (Ok(s), Ok(d)) => assert_eq!(
            (s.plaintext_len, s.payload_len, s.chunks),
            (d.plaintext_len, d.payload_len, d.chunks)
        ),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("open gave {r:?}, decrypt {d:?}"),
    }
    (out, r)
}

#[test]
fn round_trips_at_every_chunk_boundary() {
    for len in [
        0,
        1,
        15,
        16,
        17,
        CHUNK_LEN - 1,
        CHUNK_LEN,
        CHUNK_LEN + 1,
        3 * CHUNK_LEN + 5,
    ] {
        let data = plaintext(len);
        let (payload, s) = sealed(&data);
        let chunks = (len / CHUNK_LEN + 1) as u64 - u64::from(len > 0 && len % CHUNK_LEN == 0);
        assert_eq!(s.chunks, chunks, "len {len}");
        assert_eq!(
            payload.len(),
            HEADER_LEN + len + 16 * chunks as usize,
            "len {len}"
        );
        assert_eq!(s.payload_len, payload.len() as u64);
        assert_eq!(
            payload::sealed_len(len as u64),
            Some(s.payload_len),
            "len {len}"
        );
        assert_eq!(s.plaintext_len, len as u64);
        assert_eq!(s.plaintext_sm3, sm3(&data));
        assert_eq!(s.payload_sm3, sm3(&payload));
        let (back, r) = opened(&payload);
        assert_eq!(r.unwrap(), s, "len {len}");
        assert_eq!(back, data, "len {len}");
    }
}

/// A reader that hands out at most 7 bytes a call: chunk reads must loop until full.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_give_the_same_payload() {
    let data = plaintext(CHUNK_LEN + 100);
    let (payload, _) = sealed(&data);
    let mut again = Vec::new();
    seal(&key(7), &PREFIX, &mut Trickle(&data), &mut again).unwrap();
    assert_eq!(again, payload);
    let mut back = Vec::new();
    open(&key(7), &mut Trickle(&payload), &mut back).unwrap();
    assert_eq!(back, data);
}

fn tag_error(r: Result<Summary, PayloadError>) -> u64 {
    match r {
        Err(PayloadError::Tag { chunk }) => chunk,
        other => panic!("expected a tag failure, got {other:?}"),
    }
}

#[test]
fn tampering_is_refused_and_nothing_unverified_is_released() {
    let data = plaintext(2 * CHUNK_LEN + 10);
    let (payload, _) = sealed(&data);
    let sealed_chunk = CHUNK_LEN + 16;
    // A byte of the second chunk's ciphertext: the first chunk (verified) is released, nothing
    // of the second.
    let mut p = payload.clone();
    p[HEADER_LEN + sealed_chunk + 3] ^= 1;
    let (out, r) = opened(&p);
    assert_eq!(tag_error(r), 1);
    assert_eq!(out, data[..CHUNK_LEN]);
    // A byte of a tag, of the prefix (every nonce and the AAD change).
    let mut p = payload.clone();
    p[HEADER_LEN + sealed_chunk - 1] ^= 0x80;
    let (out, r) = opened(&p);
    assert_eq!(tag_error(r), 0);
    assert!(out.is_empty());
    let mut p = payload.clone();
    p[6] ^= 1;
    assert_eq!(tag_error(opened(&p).1), 0);
    // Cut at a chunk boundary: the chunk before the cut is not marked last.
    let cut = &payload[..HEADER_LEN + 2 * sealed_chunk];
    let (out, r) = opened(cut);
    assert_eq!(tag_error(r), 1);
    assert_eq!(out, data[..CHUNK_LEN]);
    // Cut inside a chunk.
    let (_, r) = opened(&payload[..HEADER_LEN + sealed_chunk + 100]);
    assert_eq!(tag_error(r), 1);
    // The first two chunks swapped.
    let mut p = payload[..HEADER_LEN].to_vec();
    p.extend_from_slice(&payload[HEADER_LEN + sealed_chunk..HEADER_LEN + 2 * sealed_chunk]);
    p.extend_from_slice(&payload[HEADER_LEN..HEADER_LEN + sealed_chunk]);
    p.extend_from_slice(&payload[HEADER_LEN + 2 * sealed_chunk..]);
    assert_eq!(tag_error(opened(&p).1), 0);
    // A byte after the last chunk: the last chunk is then read as a middle one.
    let mut p = payload.clone();
    p.push(0);
    assert!(matches!(opened(&p).1, Err(PayloadError::Tag { .. })));
    // Another data key.
    let mut out = Vec::new();
    let r = open(&key(8), &mut &payload[..], &mut out);
    assert_eq!(tag_error(r), 0);
    assert!(out.is_empty());
    // A chunk of another payload (another prefix) under the same key.
    let mut other = Vec::new();
    seal(&key(7), &[9; 8], &mut &data[..], &mut other).unwrap();
    let mut p = payload[..HEADER_LEN].to_vec();
    p.extend_from_slice(&other[HEADER_LEN..]);
    assert_eq!(tag_error(opened(&p).1), 0);
}

#[test]
fn headers_that_are_not_a_payload_are_named() {
    let (payload, _) = sealed(b"hello");
    assert!(matches!(opened(b"").1, Err(PayloadError::Truncated { .. })));
    assert!(matches!(
        opened(b"GM").1,
        Err(PayloadError::Truncated { .. })
    ));
    assert!(matches!(
        opened(b"PK\x03\x04 zip").1,
        Err(PayloadError::NotAPayload)
    ));
    assert!(matches!(
        opened(&payload[..HEADER_LEN - 1]).1,
        Err(PayloadError::Truncated { .. })
    ));
    let mut p = payload.clone();
    p[4] = 2;
    let e = opened(&p).1.unwrap_err();
    assert!(matches!(e, PayloadError::UnsupportedVersion(2)));
    assert_eq!(
        e.to_string(),
        "payload format version 2, this build reads version 1"
    );
    // A header and nothing else: the last chunk (at least its tag) is missing.
    let e = opened(&payload[..HEADER_LEN]).1.unwrap_err();
    assert!(matches!(e, PayloadError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("chunk 0"), "{e}");
}

#[test]
fn the_building_blocks_follow_the_format() {
    let h = header(&PREFIX);
    assert_eq!(&h[..], &unx("x474d435001a0a1a2a3a4a5a6a7")[..]);
    assert_eq!(
        nonce(&PREFIX, 0x0102_0304).unwrap(),
        <[u8; 12]>::try_from(&unx("xa0a1a2a3a4a5a6a701020304")[..]).unwrap()
    );
    assert!(matches!(
        nonce(&PREFIX, payload::MAX_CHUNKS),
        Err(PayloadError::TooLong)
    ));
    assert_eq!(aad(&h, true)[HEADER_LEN], 1);
    assert_eq!(aad(&h, false)[HEADER_LEN], 0);
}

/// GmSSL 3 builds the payload from the text of docs/formats.md §8 alone (header, per-chunk nonce
/// and AAD, SM4-GCM, tag after each chunk), for a plaintext of two full chunks and a short
/// last one; gmchain's payload must be the same bytes, and SM3 of it the same digest.
#[test]
fn gmssl_builds_the_same_payload_from_the_format() {
    let Some(python) = test_support::python("cargo test -p exchange --test payload") else {
        return;
    };
    let data = plaintext(2 * CHUNK_LEN + 1000);
    let (payload, s) = sealed(&data);
    let script = r#"
import sys
import gmssl_pyx as g
key, prefix, data = [bytes.fromhex(l.strip()[1:]) for l in sys.stdin.read().split()]
CHUNK = 1 << 20
header = b"GMCP" + bytes([1]) + prefix
out = bytearray(header)
chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
for i, c in enumerate(chunks):
    nonce = prefix + i.to_bytes(4, "big")
    aad = header + bytes([1 if i == len(chunks) - 1 else 0])
    ct, tag = g.sm4_gcm_encrypt(key, nonce, aad, c)
    out += ct + tag
print("x" + bytes(out).hex(), "x" + g.sm3_hash(bytes(out)).hex())
"#;
    let input = format!("{}\n{}\n{}\n", x(&[7; 16]), x(&PREFIX), x(&data));
    let out = test_support::py(&python, "", script, &input, "payload");
    assert_eq!(out.len(), 1, "{out:?}");
    let theirs = unx(&out[0][0]);
    assert_eq!(theirs.len(), payload.len());
    assert!(theirs == payload, "GmSSL's payload differs from gmchain's");
    assert_eq!(unx(&out[0][1]), s.payload_sm3.as_bytes());
}
