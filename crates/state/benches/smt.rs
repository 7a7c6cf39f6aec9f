//! SM3 sparse Merkle tree in a `MemStore` at 10^4, 10^5 and 10^6 keys: update of one key, batch
//! update of 1000 keys, get, prove, verify. `apply` is measured without writing its nodes, so every
//! iteration updates the same tree of n keys.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crypto::Digest;
use state::{EMPTY_ROOT, MemStore, NodeStore, apply, get, prove, verify_proof};

fn key(i: u64) -> Vec<u8> {
    format!("account-{i}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    // 32-byte values, a balance-sized record.
    let mut v = i.to_be_bytes().to_vec();
    v.resize(32, 0xab);
    v
}

/// Builds a tree of `n` keys in chunks, writing each chunk's nodes.
fn build(n: u64) -> (MemStore, Digest) {
    let mut store = MemStore::new();
    let mut root = EMPTY_ROOT;
    let chunk = 50_000;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let ups: Vec<_> = (start..end).map(|i| (key(i), Some(value(i)))).collect();
        let batch = apply(&store, root, &ups).expect("apply");
        store.write(batch.nodes).expect("write");
        root = batch.root;
        start = end;
    }
    (store, root)
}

fn bench(c: &mut Criterion) {
    let sizes: Vec<u64> = match std::env::var("SMT_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 100_000, 1_000_000],
    };
    let mut group = c.benchmark_group("smt");
    group.sample_size(20);
    for n in sizes {
        let t = std::time::Instant::now();
        let (store, root) = build(n);
        eprintln!("built n={n}: {} nodes in {:.2?}", store.len(), t.elapsed());

        // Fresh keys each iteration (inserts), against the same n-key tree.
        let mut next = n;
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("update_1", n), |b| {
            b.iter(|| {
                next += 1;
                black_box(apply(&store, root, &[(key(next), Some(value(next)))]).expect("apply"))
            })
        });

        group.throughput(Throughput::Elements(1000));
        group.bench_function(BenchmarkId::new("update_1000", n), |b| {
            b.iter(|| {
                let ups: Vec<_> = (0..1000)
                    .map(|_| {
                        next += 1;
                        (key(next), Some(value(next)))
                    })
                    .collect();
                black_box(apply(&store, root, &ups).expect("apply"))
            })
        });

        group.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("get", n), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(get(&store, root, &key(i)).expect("get"))
            })
        });

        group.bench_function(BenchmarkId::new("prove", n), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(prove(&store, root, &key(i)).expect("prove"))
            })
        });

        let proofs: Vec<_> = (0..1024u64)
            .map(|j| {
                let k = (j * 7919) % n;
                (
                    key(k),
                    value(k),
                    prove(&store, root, &key(k)).expect("prove"),
                )
            })
            .collect();
        let depth: usize = proofs.iter().map(|p| p.2.siblings().len()).sum();
        eprintln!(
            "n={n}: mean proof depth {:.1}",
            depth as f64 / proofs.len() as f64
        );
        let mut j = 0usize;
        group.bench_function(BenchmarkId::new("verify", n), |b| {
            b.iter(|| {
                j = (j + 1) % proofs.len();
                let (k, v, p) = &proofs[j];
                verify_proof(root, k, Some(v), p).expect("verify");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
