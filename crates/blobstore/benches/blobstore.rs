//! The blob store against the raw cipher, in one run: put (stream in, hash, fsync, rename,
//! fsync the directory) and read (stream out through a 256 KiB buffer) of a 1 MiB and a
//! 64 MiB payload, and SM4-GCM decryption of the same payload's chunks with no framing,
//! hashing or I/O (the ceiling a fetch is compared with: issue 15 asks for fetch ≥ 0.5× the
//! decryption speed). The store lives in a temporary directory on the machine's disk.
//!
//! Run: `cargo bench -p blobstore --bench blobstore -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;
use std::io::Read;

use blobstore::{BlobId, BlobStore, IO_BUFFER_LEN};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use crypto_sm::sm4::{AEAD_TAG_LEN, Sm4Aead, Sm4Secret};
use exchange::payload::{CHUNK_LEN, HEADER_LEN, aad, nonce, seal};

fn bench(c: &mut Criterion) {
    let key = Sm4Secret::from_slice(&[7; 16]).unwrap();
    let prefix = [1u8; 8];
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
    let mut group = c.benchmark_group("blobstore");
    group.sampling_mode(SamplingMode::Flat);
    for mib in [1usize, 64] {
        group.sample_size(if mib == 1 { 50 } else { 10 });
        let data: Vec<u8> = (0..mib * CHUNK_LEN).map(|i| (i % 251) as u8).collect();
        let mut payload = Vec::new();
        let summary = seal(&key, &prefix, &mut &data[..], &mut payload).unwrap();
        drop(data);
        let id = BlobId::from(summary.payload_sm3);
        let len = payload.len() as u64;
        group.throughput(Throughput::Bytes(len));

        group.bench_function(format!("sm4_gcm_decrypt_raw_{mib}MiB"), |b| {
            let aead = Sm4Aead::new(&key, crypto::Sm4Mode::Gcm).unwrap();
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(&payload[..HEADER_LEN]);
            let mut work = payload.clone();
            b.iter(|| {
                work.copy_from_slice(&payload);
                let chunks = work[HEADER_LEN..].chunks_mut(CHUNK_LEN + AEAD_TAG_LEN);
                let count = chunks.len();
                for (i, chunk) in chunks.enumerate() {
                    let body = chunk.len() - AEAD_TAG_LEN;
                    let (text, tag) = chunk.split_at_mut(body);
                    let tag: &[u8; AEAD_TAG_LEN] = (&*tag).try_into().unwrap();
                    let n = nonce(&prefix, i as u64).unwrap();
                    aead.open_in_place(&n, &aad(&head, i + 1 == count), text, tag)
                        .unwrap();
                }
                black_box(&work);
            })
        });
        group.bench_function(format!("put_{mib}MiB"), |b| {
            b.iter(|| black_box(store.put(id, len, &mut &payload[..]).unwrap()))
        });
        group.bench_function(format!("read_{mib}MiB"), |b| {
            let mut buf = vec![0u8; IO_BUFFER_LEN];
            b.iter(|| {
                let mut reader = store.open_read(&id).unwrap();
                let mut total = 0u64;
                loop {
                    let n = reader.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    total += black_box(&buf[..n]).len() as u64;
                }
                assert_eq!(total, len);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
