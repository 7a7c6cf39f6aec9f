//! Full mutual TLS 1.3 handshakes per second over loopback: gmtls ↔ gmtls (software SM2 keys,
//! StaticAuthority with the CRLs) against Tongsuo ↔ Tongsuo (keys parsed once into memory,
//! X509_V_FLAG_CRL_CHECK | CRL_CHECK_ALL with the same CRLs), same chain depth (root → agency
//! CA → leaf, each side sending leaf + agency CA), TLS_SM4_GCM_SM3, curveSM2, strict SM mode,
//! no resumption. A handshake counts once the server has read one byte the client sent after
//! its Finished and the client has read the server's answer (so both verified each other).
//! Rounds are interleaved (gmtls, Tongsuo, gmtls, ...) and the median round is reported.
//!
//! `cargo bench --bench handshakes` (env HANDSHAKES=n per round, ROUNDS=r).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use interop_tongsuo::variant_ssl::ssl::{Ssl, SslContext};
use interop_tongsuo::*;
use pki::Role;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// n gmtls handshakes; returns handshakes per second.
fn gmtls_round(
    server: &Arc<gmtls::rustls::ServerConfig>,
    client: &Arc<gmtls::rustls::ClientConfig>,
    n: usize,
) -> f64 {
    use gmtls::rustls::{ClientConnection, ServerConnection, StreamOwned};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sc = server.clone();
    let start = Instant::now();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut s = StreamOwned::new(ServerConnection::new(sc.clone()).unwrap(), tcp);
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
            s.flush().unwrap();
        }
    });
    let name = gmtls::rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    for _ in 0..n {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut s = StreamOwned::new(
            ClientConnection::new(client.clone(), name.clone()).unwrap(),
            tcp,
        );
        s.write_all(b"x").unwrap();
        s.flush().unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    }
    h.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// n Tongsuo handshakes; returns handshakes per second.
fn tongsuo_round(server: &SslContext, client: &SslContext, n: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sc = server.clone();
    let start = Instant::now();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut s = Ssl::new(&sc).unwrap().accept(tcp).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
    });
    for _ in 0..n {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut s = Ssl::new(client).unwrap().connect(tcp).unwrap();
        s.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    }
    h.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: one quick round only.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 5 } else { env("HANDSHAKES", 200) };
    let rounds = if quick { 1 } else { env("ROUNDS", 7) };
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    let revoked = pki.leaf(Role::User, "revoked");
    pki.revoke(&revoked);

    let gm_provider = gmtls::provider_with_suites(&[gmtls::Suite::Sm4GcmSm3]);
    let gm_server = gm_server_config(&pki, &node, gm_provider.clone());
    let gm_client = gm_client_config(&pki, &alice, gm_provider.clone());
    let t_server = tongsuo_ctx_in_memory(Suite::Sm4GcmSm3, &node, &pki, true, true);
    let t_client = tongsuo_ctx_in_memory(Suite::Sm4GcmSm3, &alice, &pki, false, true);

    // Revocation is checked on both sides: a revoked client is refused by both servers.
    let (addr, h) = gmtls_server(gm_server.clone());
    assert!(gmtls_client(gm_client_config(&pki, &revoked, gm_provider.clone()), addr).is_err());
    assert!(
        h.join().unwrap().is_err(),
        "gmtls server accepted a revoked client"
    );
    let (addr, h) = tongsuo_server(t_server.clone());
    let t_revoked = tongsuo_ctx_in_memory(Suite::Sm4GcmSm3, &revoked, &pki, false, true);
    assert!(tongsuo_client(&t_revoked, addr).is_err());
    let e = h
        .join()
        .unwrap()
        .expect_err("Tongsuo server accepted a revoked client");
    assert!(e.0.contains("certificate revoked"), "{e}");

    println!(
        "full mutual TLS 1.3 handshakes/s, TLS_SM4_GCM_SM3, chain depth 3, CRLs checked, \
         {n} handshakes x {rounds} interleaved rounds ({})",
        tongsuo_version()
    );
    let (mut g, mut t) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        g.push(gmtls_round(&gm_server, &gm_client, n));
        t.push(tongsuo_round(&t_server, &t_client, n));
        println!("round {r}: gmtls {:8.1}/s   Tongsuo {:8.1}/s", g[r], t[r]);
    }
    let (gm, ts) = (median(g), median(t));
    println!(
        "median: gmtls (software key) {gm:.1}/s, Tongsuo (key in memory) {ts:.1}/s, \
         ratio gmtls/Tongsuo = {:.2}",
        gm / ts
    );
}
