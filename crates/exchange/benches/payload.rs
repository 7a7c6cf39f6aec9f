//! The payload format against the raw cipher: sealing and opening a dataset version in memory,
//! and SM4-GCM over the same bytes in 1 MiB chunks with no framing, hashing or copies (the
//! ceiling the format's throughput is compared with, as a ratio within one run).
//!
//! Run: `cargo bench -p exchange --bench payload -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crypto_sm::sm4::{Sm4Aead, Sm4Secret};
use exchange::payload::{CHUNK_LEN, open, seal};

fn bench(c: &mut Criterion) {
    let key = Sm4Secret::from_slice(&[7; 16]).unwrap();
    let prefix = [1u8; 8];
    let mut group = c.benchmark_group("payload");
    for mib in [1usize, 16] {
        let data: Vec<u8> = (0..mib * CHUNK_LEN).map(|i| i as u8).collect();
        let mut sealed = Vec::new();
        seal(&key, &prefix, &mut &data[..], &mut sealed).unwrap();
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(format!("sm4_gcm_raw_{mib}MiB"), |b| {
            let aead = Sm4Aead::new(&key, crypto::Sm4Mode::Gcm).unwrap();
            let mut buf = data.clone();
            b.iter(|| {
                for (i, chunk) in buf.chunks_mut(CHUNK_LEN).enumerate() {
                    let mut n = [0u8; 12];
                    n[8..].copy_from_slice(&(i as u32).to_be_bytes());
                    black_box(aead.seal_in_place(&n, b"aad", chunk).unwrap());
                }
            })
        });
        group.bench_function(format!("seal_{mib}MiB"), |b| {
            let mut out = Vec::with_capacity(sealed.len());
            b.iter(|| {
                out.clear();
                black_box(seal(&key, &prefix, &mut &data[..], &mut out).unwrap())
            })
        });
        group.bench_function(format!("open_{mib}MiB"), |b| {
            let mut out = Vec::with_capacity(data.len());
            b.iter(|| {
                out.clear();
                black_box(open(&key, &mut &sealed[..], &mut out).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
