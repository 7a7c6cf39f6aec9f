//! The extra quick peer: BabaSSL 8.3 (the libssl inside PyPI's tongsuopy wheel, driven by
//! babassl_client.py through ctypes) as a strict RFC 8998 TLS 1.3 client with a certificate,
//! against the gmtls server, both suites. scripts/interop-tongsuo.sh fetches the wheel and sets
//! TONGSUOPY_SO; without it the test fails, except outside CI with GMCHAIN_ALLOW_SKIP=1.
use interop_tongsuo::*;
use pki::Role;
use std::path::PathBuf;

fn babassl_so() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TONGSUOPY_SO") {
        return Some(PathBuf::from(p));
    }
    let default = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("../tongsuopy/tongsuopy/backends/_tongsuo.abi3.so");
    if default.is_file() {
        return Some(default);
    }
    skip_or_fail(
        "TONGSUOPY_SO is not set and no tongsuopy wheel is unpacked in the target directory \
         (bash scripts/interop-tongsuo.sh fetches it)",
    )
}

#[test]
fn babassl_client_to_gmtls_server_both_suites() {
    let Some(python) = python3() else { return };
    let Some(so) = babassl_so() else { return };
    let pki = TestPki::new("GMChain");
    let node = pki.leaf(Role::NodeSign, "node1");
    let alice = pki.leaf(Role::User, "alice");
    for suite in Suite::BOTH {
        let (addr, h) = gmtls_server(gm_server_config(&pki, &node, gmtls::provider()));
        let out = std::process::Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/babassl_client.py"))
            .arg(&so)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(suite.openssl_name())
            .arg(&alice.chain_pem)
            .arg(&alice.key_pem)
            .arg(pki.ca_pem())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let gm = h.join().unwrap();
        println!(
            "{suite:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{suite:?}: BabaSSL client failed: {stdout} (gmtls: {gm:?})"
        );
        let gm = gm.unwrap_or_else(|e| panic!("{suite:?}: gmtls server: {e}"));
        assert!(stdout.contains("version BabaSSL 8.3"), "{stdout}");
        assert!(
            stdout.contains(&format!("cipher 0x{:04x}", suite.id())),
            "{stdout}"
        );
        assert!(stdout.contains("tls TLSv1.3"), "{stdout}");
        assert!(
            stdout.contains(&format!("peer_cert {}", hex::encode(node.cert.der()))),
            "BabaSSL did not see the node's certificate: {stdout}"
        );
        assert!(stdout.contains("received pong from gmtls"), "{stdout}");
        assert_eq!(gm.suite, suite.id());
        assert_eq!(gm.peer_cert.as_deref(), Some(alice.cert.der()));
        assert_eq!(gm.received, "ping from babassl\n");
    }
}
