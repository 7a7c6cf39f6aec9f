//! GM TLS 1.3 over loopback, in process:
//! - full mutual handshakes (root → agency CA → leaf on both sides, CRLs checked on both
//!   sides), with software keys, and with the server's key in gmchain's PKCS#11 soft token
//!   (CertificateVerify signed in the token through the hsm crate, as the node does);
//! - bulk throughput of one connection (64 MiB in 16 KiB writes, client seals and server
//!   opens) against the raw SM4-GCM speed of `crypto_sm::sm4::Sm4Aead::seal_in_place` on the
//!   same buffers. Target: ratio ≥ 0.7 (issue 12).
//!
//! The soft-token row needs `target/release/libgmchain_softtoken.so`
//! (`cargo build --release -p softtoken`); without it that row is skipped with a message.
//! Run: `cargo bench -p gmtls --bench tls -- --warm-up-time 1 --measurement-time 3`.
#![allow(
    unsafe_code,
    reason = "std::env::set_var (unsafe in edition 2024) runs once, before any thread reads the environment"
)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Pki, validity};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crypto::{Secret, Sm4Mode};
use crypto_sm::sm4::{Sm4Aead, Sm4Secret};
use gmtls::rustls::{ClientConfig, ServerConfig};
use gmtls::tokio_rustls::TlsAcceptor;
use gmtls::{
    API_CLIENT_ROLES, Credentials, SERVER_ROLES, ServerCertificate, client_config, provider,
    server_config,
};
use hsm::{Hsm, KeyUsage, Profile, TokenSlot};
use pki::{IssueRequest, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

const BULK: usize = 64 << 20;
const WRITE: usize = 16 << 10;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A server accepting connections forever: the handshake, then one byte (so the client knows
/// the server accepted its certificate); then, for bulk, it reads until EOF and answers with
/// one byte.
fn serve(rt: &Runtime, config: Arc<ServerConfig>) -> SocketAddr {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let _ = tcp.set_nodelay(true);
                let acceptor = TlsAcceptor::from(config.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = tls.write_all(b"k").await;
                    let _ = tls.flush().await;
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    let _ = tls.write_all(b"k").await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        addr
    })
}

async fn handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> gmtls::net::Confirmed<gmtls::tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut s = gmtls::net::connect(addr, config, Duration::from_secs(10), None)
        .await
        .unwrap();
    let mut k = [0u8; 1];
    s.read_exact(&mut k).await.unwrap();
    s
}

struct Setup {
    pki: Pki,
    client: Arc<ClientConfig>,
}

fn setup() -> Setup {
    let pki = Pki::new(7, "Consortium");
    let user = pki.creds(Role::User, "bench-client");
    let client = client_config(&user, pki.authority(SERVER_ROLES, &[]), provider()).unwrap();
    Setup { pki, client }
}

fn server_with(pki: &Pki, creds: &Credentials) -> Arc<ServerConfig> {
    server_config(
        ServerCertificate::new(creds),
        pki.authority(API_CLIENT_ROLES, &[]),
        provider(),
    )
    .unwrap()
}

/// The soft token with one SM2 key and a node-sign certificate for it from the agency CA.
fn token_credentials(pki: &Pki) -> Option<(tempfile::TempDir, Credentials)> {
    let exe = std::env::current_exe().ok()?;
    let lib: PathBuf = exe.parent()?.parent()?.join("libgmchain_softtoken.so");
    if !lib.is_file() {
        eprintln!(
            "tls bench: {} is missing: run `cargo build --release -p softtoken` first. Soft-token row skipped.",
            lib.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    // SAFETY: see the crate-level allow.
    unsafe { std::env::set_var("GMCHAIN_SOFTTOKEN_DIR", dir.path()) };
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hsm-profiles");
    let profile = Profile::load(profiles.join("gmchain-softtoken.toml"))
        .ok()?
        .with_library(&lib);
    let (so, user) = (
        Secret::new(b"bench-so-pin".to_vec()),
        Secret::new(b"bench-user-pin".to_vec()),
    );
    Hsm::init_token(&profile, TokenSlot::FirstUninitialized, &so, "bench").ok()?;
    Hsm::init_pin(&profile, "bench", &so, &user).ok()?;
    let hsm = Hsm::open(&profile, "bench", Some(user), 4).ok()?;
    let key = hsm.generate_sm2("tls-node", &[1], KeyUsage::Signing).ok()?;
    let cert = pki::issue(
        &pki.agency,
        &pki.agency_key,
        &IssueRequest {
            role: Role::NodeSign,
            common_name: "node-token",
            organisation: "Agency A",
            public_key: &key.public_key,
            serial: pki.serial(),
            validity: validity(1, 365),
        },
    )
    .ok()?;
    let signer = hsm.signer(&key.uri).ok()?;
    let creds = Credentials::new(vec![cert, pki.agency.clone()], Arc::new(signer)).ok()?;
    Some((dir, creds))
}

fn handshakes(c: &mut Criterion) {
    let rt = runtime();
    let s = setup();
    let mut g = c.benchmark_group("mutual_handshake");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    let software = serve(
        &rt,
        server_with(&s.pki, &s.pki.creds(Role::NodeSign, "node-1")),
    );
    g.bench_function("software_keys", |b| {
        b.iter(|| rt.block_on(handshake(software, s.client.clone())))
    });
    if let Some((_dir, creds)) = token_credentials(&s.pki) {
        let token = serve(&rt, server_with(&s.pki, &creds));
        g.bench_function("server_key_in_softtoken", |b| {
            b.iter(|| rt.block_on(handshake(token, s.client.clone())))
        });
    }
    g.finish();
}

/// Median seconds per 64 MiB of each bulk row, for the ratio printed at the end.
static BULK_TIMES: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

fn record(name: &'static str, d: Duration, iters: u64) {
    BULK_TIMES
        .lock()
        .unwrap()
        .push((name, d.as_secs_f64() / iters as f64));
}

fn bulk(c: &mut Criterion) {
    let rt = runtime();
    let s = setup();
    let addr = serve(
        &rt,
        server_with(&s.pki, &s.pki.creds(Role::NodeSign, "node-1")),
    );
    let mut g = c.benchmark_group("bulk_64MiB_in_16KiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(BULK as u64));
    let chunk = vec![0x5Au8; WRITE];
    g.bench_function("tls_sm4_gcm_one_connection", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(async {
                    let mut tls = handshake(addr, s.client.clone()).await;
                    let start = Instant::now();
                    for _ in 0..BULK / WRITE {
                        tls.write_all(&chunk).await.unwrap();
                    }
                    tls.flush().await.unwrap();
                    // close_notify: the server has read (and opened) everything when it answers.
                    tls.shutdown().await.unwrap();
                    let mut k = [0u8; 1];
                    tls.read_exact(&mut k).await.unwrap();
                    start.elapsed()
                });
            }
            record("tls", total, iters);
            total
        })
    });
    let key = Sm4Secret::from_slice(&[7u8; 16]).unwrap();
    let aead = Sm4Aead::new(&key, Sm4Mode::Gcm).unwrap();
    let aad = [0x17, 0x03, 0x03, 0x40, 0x11];
    g.bench_function("raw_sm4_gcm_seal_in_place", |b| {
        b.iter_custom(|iters| {
            let mut buf = vec![0x5Au8; WRITE + 1];
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..(BULK / WRITE) as u64 {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&i.to_be_bytes());
                    std::hint::black_box(aead.seal_in_place(&nonce, &aad, &mut buf).unwrap());
                }
            }
            let d = start.elapsed();
            record("raw", d, iters);
            d
        })
    });
    // In process the client seals and the server opens every byte: the same work, raw.
    g.bench_function("raw_sm4_gcm_seal_then_open", |b| {
        b.iter_custom(|iters| {
            let mut buf = vec![0x5Au8; WRITE + 1];
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..(BULK / WRITE) as u64 {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&i.to_be_bytes());
                    let tag = aead.seal_in_place(&nonce, &aad, &mut buf).unwrap();
                    aead.open_in_place(&nonce, &aad, &mut buf, &tag).unwrap();
                }
            }
            let d = start.elapsed();
            record("raw_both", d, iters);
            d
        })
    });
    g.finish();
    let times = BULK_TIMES.lock().unwrap();
    let median = |name: &str| {
        let mut v: Vec<f64> = times
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (tls, raw, both) = (median("tls"), median("raw"), median("raw_both"));
    let mib = (BULK >> 20) as f64;
    eprintln!(
        "\nbulk: TLS {:.1} MiB/s; raw SM4-GCM seal {:.1} MiB/s, ratio {:.2} (target >= 0.7); \
         raw seal+open (the in-process TLS work per byte) {:.1} MiB/s, ratio {:.2}\n",
        mib / tls,
        mib / raw,
        raw / tls,
        mib / both,
        both / tls
    );
}

criterion_group!(benches, handshakes, bulk);
criterion_main!(benches);
