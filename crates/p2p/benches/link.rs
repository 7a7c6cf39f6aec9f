//! Frames per second over one link between two in-process nodes on loopback (GM TLS 1.3,
//! SM4-GCM): the sender queues a batch with `send`, the receiver takes every message from its
//! inbound queue. Rows: a point-to-point topic (framing, TLS, queues) and a relayed topic with
//! distinct payloads (plus SM3 of each payload and the seen-cache), at 256 B and 64 KiB.
//! Then a full mesh of four nodes in which each broadcasts 250 distinct 1 KiB transactions
//! per round (every node takes the 750 of the others), with announce-and-fetch (the
//! default) and with full relays: the four nodes share the runtime, so the time is their CPU.
//! Run: `cargo bench -p p2p --bench link -- --warm-up-time 1 --measurement-time 3`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Pki;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gmtls::ServerCertificate;
use p2p::{Inbound, Network, NetworkConfig, NetworkHandle, PeerAddr, PeerId, Topic};
use pki::Role;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const BATCH: usize = 1000;

async fn node(
    pki: &Pki,
    cn: &str,
    peers: Vec<PeerAddr>,
    tweak: impl FnOnce(&mut NetworkConfig),
) -> (NetworkHandle, mpsc::Receiver<Inbound>, PeerAddr) {
    let creds = pki.creds(Role::NodeSign, cn);
    let mut config = NetworkConfig::new("127.0.0.1:0".parse().unwrap(), PeerId::of(creds.leaf()));
    config.peers = peers;
    config.outbound_queue = 4 * BATCH;
    config.inbound_queue = 4 * BATCH;
    tweak(&mut config);
    let server =
        gmtls::link_server_config(ServerCertificate::new(&creds), pki.authority()).unwrap();
    let client = gmtls::link_client_config(&creds, pki.authority()).unwrap();
    let (net, rx) = Network::start(config, server, client, Arc::new(|_| true))
        .await
        .unwrap();
    let addr = PeerAddr {
        addr: net.local_addr(),
        name: cn.to_string(),
        organisation: None,
    };
    (net, rx, addr)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = Pki::new(1);
    let (b, mut b_rx, b_addr) = rt.block_on(node(&pki, "node-b", vec![], |_| {}));
    let (a, _a_rx, _) = rt.block_on(node(&pki, "node-a", vec![b_addr], |_| {}));
    rt.block_on(async {
        let start = Instant::now();
        while a.stats().links != 1 {
            assert!(start.elapsed() < Duration::from_secs(10), "no link");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let b_id = a.links()[0].id();
    let mut counter = 0u64;
    for size in [256usize, 64 << 10] {
        let mut g = c.benchmark_group(format!("p2p link {size} B"));
        g.throughput(Throughput::Elements(BATCH as u64));
        if size > 4096 {
            // A batch of 64 MiB takes about a second.
            g.sample_size(10);
        }
        let payload: Arc<[u8]> = vec![7u8; size].into();
        g.bench_function("sync-response", |bench| {
            bench.iter(|| {
                run(&rt, &a, b_id, &mut b_rx, Topic::SYNC_RESPONSE, |_| {
                    payload.clone()
                })
            })
        });
        g.bench_function("transaction (relayed, SM3)", |bench| {
            bench.iter(|| {
                run(&rt, &a, b_id, &mut b_rx, Topic::TRANSACTION, |_| {
                    counter += 1;
                    let mut p = vec![7u8; size];
                    p[..8].copy_from_slice(&counter.to_be_bytes());
                    p.into()
                })
            })
        });
        g.finish();
    }
    assert_eq!(
        a.stats().dropped_total(),
        0,
        "the bench must not drop frames"
    );
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// Transactions each node of the mesh broadcasts per round.
const MESH_EACH: usize = 250;

fn mesh(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = Pki::new(2);
    let mut g = c.benchmark_group("p2p mesh of 4, 1 KiB transactions");
    g.throughput(Throughput::Elements(4 * MESH_EACH as u64));
    let mut counter = 0u64;
    for announce in [true, false] {
        let mut nodes: Vec<(NetworkHandle, mpsc::Receiver<Inbound>)> = Vec::new();
        let mut addrs: Vec<PeerAddr> = Vec::new();
        for i in 0..4 {
            let (net, rx, addr) = rt.block_on(node(
                &pki,
                &format!("mesh-{announce}-{i}"),
                addrs.clone(),
                |c| {
                    c.announce_relays = announce;
                    c.relay_settle = Duration::from_millis(100);
                },
            ));
            nodes.push((net, rx));
            addrs.push(addr);
        }
        rt.block_on(async {
            let start = Instant::now();
            // Linked, and every link-state heard (each peer lists the three others).
            while !nodes.iter().all(|(n, _)| {
                let links = n.links();
                links.len() == 3 && links.iter().all(|l| l.peer_links.len() == 3)
            }) {
                assert!(start.elapsed() < Duration::from_secs(20), "no mesh");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let name = if announce {
            "announce-and-fetch"
        } else {
            "full relay"
        };
        g.bench_function(name, |bench| {
            bench.iter(|| {
                for (n, _) in &nodes {
                    for _ in 0..MESH_EACH {
                        counter += 1;
                        let mut p = vec![7u8; 1024];
                        p[..8].copy_from_slice(&counter.to_be_bytes());
                        n.broadcast(Topic::TRANSACTION, p).unwrap();
                    }
                }
                rt.block_on(async {
                    for (_, rx) in nodes.iter_mut() {
                        for _ in 0..3 * MESH_EACH {
                            rx.recv().await.unwrap();
                        }
                    }
                });
            })
        });
        let s: Vec<p2p::Stats> = nodes.iter().map(|(n, _)| n.stats()).collect();
        let total = |f: fn(&p2p::Stats) -> u64| s.iter().map(f).sum::<u64>();
        eprintln!(
            "{name}: frames in {}, duplicates {}, announced ids {}, fetched {}, dropped {}",
            total(|x| x.frames_in),
            total(|x| x.duplicates),
            total(|x| x.announces_out),
            total(|x| x.fetched),
            total(|x| x.dropped_total()),
        );
        rt.block_on(async {
            for (n, _) in &nodes {
                n.shutdown().await;
            }
        });
    }
    g.finish();
}

fn run(
    rt: &Runtime,
    a: &NetworkHandle,
    to: PeerId,
    rx: &mut mpsc::Receiver<Inbound>,
    topic: Topic,
    mut payload: impl FnMut(usize) -> Arc<[u8]>,
) {
    for i in 0..BATCH {
        a.send(to, topic, payload(i)).unwrap();
    }
    rt.block_on(async {
        for _ in 0..BATCH {
            rx.recv().await.unwrap();
        }
    });
}

criterion_group!(benches, bench, mesh);
criterion_main!(benches);
