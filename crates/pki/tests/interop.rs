//! Interop of gmchain's certificates, requests, CRLs and enveloped keys with OpenSSL 3 (the
//! `openssl` command, required: these tests fail without it) and GmSSL 3 (through
//! `GMCHAIN_PYTHON`, a python with PyPI `gmssl-pyx`, as `bash scripts/test.sh` sets up; they fail
//! without it unless `GMCHAIN_ALLOW_SKIP=1` on a local run, which skips them with a line naming
//! each; under `CI=true` the skip is refused).
//!
//! OpenSSL 3.0 and SM2 user IDs: `verify` takes `-vfyopt distid:…` for the certificate
//! signatures in a chain, but it never checks a trusted root's self-signature (unless
//! `-check_ss_sig`) and its CRL path has no way to pass an ID, so it verifies SM2 CRLs with the
//! empty ID. Every signature OpenSSL cannot check with the standard ID is therefore checked
//! again with GmSSL's `sm2_verify` (default ID 1234567812345678): the root's self-signature,
//! every chain signature and every CRL signature.

use crypto::{PublicKey, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use test_support::{unx, x};

const DAY: u64 = 86_400;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const DISTID: &str = "distid:1234567812345678";

fn t(days: u64) -> UnixTime {
    UnixTime(T0 + days * DAY)
}

// ---------------------------------------------------------------------------------------------
// Running OpenSSL and GmSSL

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl must be installed for the interop tests (apt-get install openssl): {e}")
        })
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// "OK", or OpenSSL's "error N at D depth lookup: …" line.
fn outcome(out: &Output) -> String {
    if out.status.success() {
        return "OK".into();
    }
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    all.lines()
        .find(|l| l.starts_with("error") && l.contains("depth"))
        .unwrap_or("failed")
        .to_string()
}

const PRELUDE: &str = r#"
import sys, ctypes
import gmssl_pyx as g
from gmssl_pyx import gmsslext as _ext

def h(s):
    assert s[0] == 'x', s
    return bytes.fromhex(s[1:])

def x(b):
    return 'x' + b.hex()

def records():
    return [l.split() for l in sys.stdin.read().splitlines() if l.strip()]

_lib = ctypes.CDLL(_ext.__file__)

def sm4_ecb(key, data, decrypt):
    # GmSSL 3.1: SM4_KEY { uint32_t rk[32]; }; sm4_encrypt runs the schedule it is given.
    ks = ctypes.create_string_buffer(128)
    (_lib.sm4_set_decrypt_key if decrypt else _lib.sm4_set_encrypt_key)(ks, key)
    out = b''
    for i in range(0, len(data), 16):
        o = ctypes.create_string_buffer(16)
        _lib.sm4_encrypt(ks, data[i:i + 16], o)
        out += o.raw
    return out

def der_parse(b):
    tag, n, off = b[0], b[1], 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[2:2 + k], 'big')
        off = 2 + k
    return tag, b[:off + n], b[off:off + n], b[off + n:]

def der_items(v):
    out = []
    while v:
        t, tlv, c, v = der_parse(v)
        out.append((t, tlv, c))
    return out

def der(tag, v):
    n = len(v)
    if n < 128:
        l = bytes([n])
    else:
        nb = n.to_bytes((n.bit_length() + 7) // 8, 'big')
        l = bytes([0x80 | len(nb)]) + nb
    return bytes([tag]) + l + v

SM4_ECB_ALG = der(0x30, der(0x06, bytes.fromhex('2a811ccf55016801')) + b'\x05\x00')
"#;

/// Runs `script` (after the prelude) with `input` on stdin.
fn py(python: &Path, script: &str, input: &str) -> Vec<Vec<String>> {
    test_support::py(python, PRELUDE, script, input, "interop")
}

fn python() -> Option<PathBuf> {
    test_support::python("cargo test -p pki --test interop")
}

/// The DER of a certificate's or CRL's signature value (the BIT STRING content): the last
/// element of the outer SEQUENCE.
fn signature_value(der: &[u8]) -> Vec<u8> {
    // Outer header, then skip TBS and algorithm.
    let (_, body) = split_tlv(der);
    let (tbs_len, _) = tlv_len(body);
    let rest = &body[tbs_len..];
    let (alg_len, _) = tlv_len(rest);
    let (_, bits) = split_tlv(&rest[alg_len..]);
    assert_eq!(bits[0], 0, "unused bits");
    bits[1..].to_vec()
}

fn tlv_len(b: &[u8]) -> (usize, usize) {
    let (hdr, len) = if b[1] & 0x80 == 0 {
        (2, b[1] as usize)
    } else {
        let k = (b[1] & 0x7f) as usize;
        (
            2 + k,
            b[2..2 + k].iter().fold(0usize, |a, x| a << 8 | *x as usize),
        )
    };
    (hdr + len, hdr)
}

fn split_tlv(b: &[u8]) -> (u8, &[u8]) {
    let (total, hdr) = tlv_len(b);
    (b[0], &b[hdr..total])
}

/// GmSSL checks `sig` by `key` over `tbs` with the default ID; returns its verdicts.
fn gmssl_verify(python: &Path, cases: &[(PublicKey, Vec<u8>, Vec<u8>)]) -> Vec<bool> {
    let input: String = cases
        .iter()
        .map(|(k, tbs, sig)| format!("{} {} {}\n", x(&k.as_bytes()[1..]), x(tbs), x(sig)))
        .collect();
    py(
        python,
        r#"
for pub, tbs, sig in records():
    print(int(g.sm2_verify(h(pub), h(tbs), h(sig), signer_id=b'1234567812345678')))
"#,
        &input,
    )
    .iter()
    .map(|l| l[0] == "1")
    .collect()
}

// ---------------------------------------------------------------------------------------------
// A consortium made by gmchain

struct Ours {
    root_key: SoftSigner,
    root: Certificate,
    agency_key: SoftSigner,
    agency: Certificate,
    node: Certificate,
    node_enc: Certificate,
    user: Certificate,
    crls: Vec<Crl>,
    csr: String,
}

fn ours(seed: u64) -> Ours {
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(seed)));
    let root_key = p.generate().unwrap();
    let root = issue_root(
        "GMChain Root CA",
        "GMChain Consortium",
        Serial::random(p.rng()).unwrap(),
        Validity {
            not_before: t(0),
            not_after: t(3650),
        },
        &root_key,
    )
    .unwrap();
    let agency_key = p.generate().unwrap();
    let agency = issue(
        &root,
        &root_key,
        &IssueRequest {
            role: Role::AgencyCa,
            common_name: "广东省政务服务数据管理局 CA",
            organisation: "广东省政务服务数据管理局",
            public_key: &agency_key.public_key(),
            serial: Serial::random(p.rng()).unwrap(),
            validity: Validity {
                not_before: t(0),
                not_after: t(1825),
            },
        },
    )
    .unwrap();
    let leaf = |role, cn: &str| {
        let k = p.generate().unwrap();
        issue(
            &agency,
            &agency_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "广东省政务服务数据管理局",
                public_key: &k.public_key(),
                serial: Serial::random(p.rng()).unwrap(),
                validity: Validity {
                    not_before: t(1),
                    not_after: t(366),
                },
            },
        )
        .unwrap()
    };
    let node = leaf(Role::NodeSign, "node-1");
    let node_enc = leaf(Role::NodeEnc, "node-1");
    let user = leaf(Role::User, "张三");
    let crls = vec![
        issue_crl(&root, &root_key, 1, t(0), t(90), &[]).unwrap(),
        issue_crl(
            &agency,
            &agency_key,
            3,
            t(0),
            t(90),
            &[RevokedEntry {
                serial: Serial::from_hex("0badc0de").unwrap(),
                revoked_at: t(5),
                reason: RevocationReason::Superseded,
            }],
        )
        .unwrap(),
    ];
    let csr_key = p.generate().unwrap();
    let csr = csr::build(
        "CN=node-2,OU=node,O=广东省政务服务数据管理局,C=CN",
        &csr_key,
    )
    .unwrap();
    Ours {
        root_key,
        root,
        agency_key,
        agency,
        node,
        node_enc,
        user,
        crls,
        csr,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    name.to_string()
}

#[test]
fn openssl_parses_and_verifies_our_chain() {
    let o = ours(41);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "root.pem", &o.root.to_pem());
    write(d, "agency.pem", &o.agency.to_pem());
    write(d, "node.pem", &o.node.to_pem());
    write(d, "enc.pem", &o.node_enc.to_pem());
    write(d, "user.pem", &o.user.to_pem());
    write(d, "root.crl", &o.crls[0].to_pem());
    write(d, "agency.crl", &o.crls[1].to_pem());
    write(d, "req.pem", &o.csr);

    // Parsing: every field as OpenSSL reads it.
    let text = openssl_ok(d, &["x509", "-in", "root.pem", "-text", "-noout"]);
    for want in [
        "Signature Algorithm: SM2-with-SM3",
        "Version: 3 (0x2)",
        "CA:TRUE, pathlen:1",
        "Certificate Sign, CRL Sign",
        "ASN1 OID: SM2",
        "Subject Key Identifier",
    ] {
        assert!(text.contains(want), "root lacks {want:?}:\n{text}");
    }
    let text = openssl_ok(
        d,
        &[
            "x509",
            "-in",
            "agency.pem",
            "-text",
            "-noout",
            "-nameopt",
            "utf8",
        ],
    );
    for want in [
        "CA:TRUE, pathlen:0",
        "Authority Key Identifier",
        "广东省政务服务数据管理局",
    ] {
        assert!(text.contains(want), "agency lacks {want:?}:\n{text}");
    }
    let text = openssl_ok(d, &["x509", "-in", "node.pem", "-text", "-noout"]);
    for want in [
        "CA:FALSE",
        "Digital Signature, Non Repudiation",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "OU = node",
    ] {
        assert!(text.contains(want), "node-sign lacks {want:?}:\n{text}");
    }
    let text = openssl_ok(d, &["x509", "-in", "enc.pem", "-text", "-noout"]);
    assert!(
        text.contains("Key Encipherment, Data Encipherment, Key Agreement"),
        "{text}"
    );
    let text = openssl_ok(d, &["crl", "-in", "agency.crl", "-text", "-noout"]);
    for want in [
        "Signature Algorithm: SM2-with-SM3",
        "CRL Number",
        "Serial Number: 0BADC0DE",
        "Superseded",
        "Authority Key Identifier",
    ] {
        assert!(text.contains(want), "CRL lacks {want:?}:\n{text}");
    }
    openssl_ok(d, &["crl", "-in", "root.crl", "-text", "-noout"]);
    let text = openssl_ok(
        d,
        &[
            "req", "-in", "req.pem", "-text", "-noout", "-verify", "-vfyopt", DISTID,
        ],
    );
    assert!(text.contains("SM2-with-SM3"), "{text}");

    // Chain verification with the standard ID, at a time inside every validity. OpenSSL 3.0
    // `verify` applies -vfyopt distid only to the certificate it is asked about, not to the
    // intermediates it pulls from -untrusted (nor to CRLs): so each link is verified on its
    // own, the agency against the root, and each leaf against the agency as a partial-chain
    // anchor. Together they cover every certificate signature of the chain with the ID.
    let at = (T0 + 30 * DAY).to_string();
    let verify = |ca: &str, cert: &str, extra: &[&str]| {
        let mut args = vec![
            "verify",
            "-attime",
            &at,
            "-vfyopt",
            DISTID,
            "-x509_strict",
            "-CAfile",
            ca,
        ];
        args.extend_from_slice(extra);
        args.push(cert);
        openssl(d, &args)
    };
    let must = |out: Output, what: &str| {
        assert!(
            out.status.success(),
            "openssl verify rejected {what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    must(verify("root.pem", "agency.pem", &[]), "agency ← root");
    for leaf in ["node.pem", "enc.pem", "user.pem"] {
        must(verify("agency.pem", leaf, &["-partial_chain"]), leaf);
    }
    // Purposes follow the extended key usages.
    must(
        verify(
            "agency.pem",
            "node.pem",
            &["-partial_chain", "-purpose", "sslserver"],
        ),
        "node as server",
    );
    must(
        verify(
            "agency.pem",
            "node.pem",
            &["-partial_chain", "-purpose", "sslclient"],
        ),
        "node as client",
    );
    must(
        verify(
            "agency.pem",
            "user.pem",
            &["-partial_chain", "-purpose", "sslclient"],
        ),
        "user as client",
    );
    assert!(
        !verify(
            "agency.pem",
            "user.pem",
            &["-partial_chain", "-purpose", "sslserver"]
        )
        .status
        .success(),
        "a user certificate passed as a TLS server"
    );
    // The ID matters: OpenSSL 3.0's default (empty) ID rejects our signatures.
    let out = openssl(
        d,
        &[
            "verify",
            "-attime",
            &at,
            "-CAfile",
            "root.pem",
            "agency.pem",
        ],
    );
    assert!(!out.status.success(), "verified without the standard ID");
    // What OpenSSL 3.0 does with the whole chain and with our CRLs, for the record: both need
    // the ID where OpenSSL cannot take it.
    let out = openssl(
        d,
        &[
            "verify",
            "-attime",
            &at,
            "-vfyopt",
            DISTID,
            "-CAfile",
            "root.pem",
            "-untrusted",
            "agency.pem",
            "user.pem",
        ],
    );
    eprintln!(
        "openssl verify root → agency → user in one call: {}",
        outcome(&out)
    );
    write(
        d,
        "crls.pem",
        &format!("{}{}", o.crls[0].to_pem(), o.crls[1].to_pem()),
    );
    let out = verify(
        "agency.pem",
        "user.pem",
        &["-partial_chain", "-crl_check", "-CRLfile", "crls.pem"],
    );
    eprintln!(
        "openssl verify -crl_check on our SM2 CRL: {}",
        outcome(&out)
    );
    // So the signatures `verify` cannot check with the ID (the root's self-signature, the
    // CRLs) are checked by OpenSSL's pkeyutl over the TBS bytes, with the ID.
    std::fs::write(
        d.join("root.pub"),
        crypto_sm::keys::encode_public_key_pem(&o.root_key.public_key()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("agency.pub"),
        crypto_sm::keys::encode_public_key_pem(&o.agency_key.public_key()).unwrap(),
    )
    .unwrap();
    let pkeyutl = |key: &str, tbs: &[u8], sig: &[u8]| {
        std::fs::write(d.join("tbs.der"), tbs).unwrap();
        std::fs::write(d.join("sig.der"), sig).unwrap();
        let out = openssl(
            d,
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-in", "tbs.der",
                "-digest", "sm3", "-pkeyopt", DISTID, "-sigfile", "sig.der",
            ],
        );
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully")
    };
    assert!(
        pkeyutl("root.pub", o.root.tbs_der(), &signature_value(o.root.der())),
        "root self-signature"
    );
    assert!(
        pkeyutl(
            "root.pub",
            o.crls[0].tbs_der(),
            &signature_value(o.crls[0].der())
        ),
        "root CRL"
    );
    assert!(
        pkeyutl(
            "agency.pub",
            o.crls[1].tbs_der(),
            &signature_value(o.crls[1].der())
        ),
        "agency CRL"
    );
    assert!(
        !pkeyutl(
            "agency.pub",
            o.root.tbs_der(),
            &signature_value(o.root.der())
        ),
        "wrong key accepted"
    );

    // GmSSL checks every signature with the default ID, including those OpenSSL cannot.
    let Some(python) = python() else { return };
    let mut cases = vec![
        (
            o.root_key.public_key(),
            o.root.tbs_der().to_vec(),
            signature_value(o.root.der()),
        ),
        (
            o.root_key.public_key(),
            o.agency.tbs_der().to_vec(),
            signature_value(o.agency.der()),
        ),
        (
            o.root_key.public_key(),
            o.crls[0].tbs_der().to_vec(),
            signature_value(o.crls[0].der()),
        ),
        (
            o.agency_key.public_key(),
            o.crls[1].tbs_der().to_vec(),
            signature_value(o.crls[1].der()),
        ),
    ];
    for c in [&o.node, &o.node_enc, &o.user] {
        cases.push((
            o.agency_key.public_key(),
            c.tbs_der().to_vec(),
            signature_value(c.der()),
        ));
    }
    // A wrong key and a changed TBS must fail in GmSSL too.
    cases.push((
        o.agency_key.public_key(),
        o.root.tbs_der().to_vec(),
        signature_value(o.root.der()),
    ));
    let mut changed = o.user.tbs_der().to_vec();
    let n = changed.len();
    changed[n - 1] ^= 1;
    cases.push((
        o.agency_key.public_key(),
        changed,
        signature_value(o.user.der()),
    ));
    let verdicts = gmssl_verify(&python, &cases);
    let n = verdicts.len();
    assert!(
        verdicts[..n - 2].iter().all(|v| *v),
        "GmSSL rejected: {verdicts:?}"
    );
    assert!(
        !verdicts[n - 2] && !verdicts[n - 1],
        "GmSSL accepted a bad case: {verdicts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A consortium made by OpenSSL

const EXT: &str = "
[agency]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[user]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

fn root_cnf(cn: &str) -> String {
    format!(
        "[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_root
[dn]
C = CN
O = OSSL Consortium
OU = root-ca
CN = {cn}
[v3_root]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"
    )
}

fn ca_cnf(dir: &Path, name: &str) -> String {
    let db = dir.join(format!("{name}-index.txt"));
    std::fs::write(&db, "").unwrap();
    std::fs::write(dir.join(format!("{name}-crlnumber")), "01\n").unwrap();
    let cnf = format!(
        "[ca]
default_ca = CA_default
[CA_default]
database = {}
crlnumber = {}
default_md = sm3
default_crl_days = 30
",
        db.display(),
        dir.join(format!("{name}-crlnumber")).display()
    );
    write(dir, &format!("{name}-ca.cnf"), &cnf)
}

/// Builds root → agency → user with OpenSSL, every signature with `sigopt` (empty for
/// OpenSSL's default ID), and a CRL from each CA.
fn openssl_consortium(d: &Path, tag: &str, sigopt: &[&str]) {
    write(d, "ext.cnf", EXT);
    for k in ["root", "agency", "user"] {
        openssl_ok(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:SM2",
                "-out",
                &format!("{tag}{k}.key"),
            ],
        );
    }
    let cnf = write(
        d,
        &format!("{tag}root.cnf"),
        &root_cnf(&format!("OSSL Root {tag}")),
    );
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        &*format!("{tag}root.key"),
        "-sm3",
        "-config",
        &cnf,
        "-days",
        "3650",
        "-set_serial",
        "0x0a01",
        "-out",
        &*format!("{tag}root.pem"),
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(sigopt.iter().map(|s| s.to_string()));
    openssl_ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let csr = |k: &str, subj: &str| {
        let mut a = vec![
            "req".to_string(),
            "-new".into(),
            "-key".into(),
            format!("{tag}{k}.key"),
            "-sm3".into(),
            "-subj".into(),
            subj.into(),
            "-out".into(),
            format!("{tag}{k}.csr"),
        ];
        a.extend(sigopt.iter().map(|s| s.to_string()));
        openssl_ok(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    };
    csr(
        "agency",
        "/C=CN/O=OSSL Agency/OU=agency-ca/CN=OSSL Agency CA",
    );
    csr("user", "/C=CN/O=OSSL Agency/OU=user/CN=ossl-user");
    let sign = |k: &str, ca: &str, ext: &str, serial: &str| {
        let mut a = vec![
            "x509".to_string(),
            "-req".into(),
            "-in".into(),
            format!("{tag}{k}.csr"),
            "-CA".into(),
            format!("{tag}{ca}.pem"),
            "-CAkey".into(),
            format!("{tag}{ca}.key"),
            "-sm3".into(),
            "-set_serial".into(),
            serial.into(),
            "-days".into(),
            "365".into(),
            "-extfile".into(),
            "ext.cnf".into(),
            "-extensions".into(),
            ext.into(),
            "-out".into(),
            format!("{tag}{k}.pem"),
        ];
        // The same ID for signing and for checking the request's own signature.
        for s in sigopt.chunks(2) {
            a.extend(s.iter().map(|s| s.to_string()));
            a.push("-vfyopt".into());
            a.push(s[1].to_string());
        }
        openssl_ok(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    };
    sign("agency", "root", "agency", "0x0a02");
    sign("user", "agency", "user", "0x0a03");
    for ca in ["root", "agency"] {
        let cnf = ca_cnf(d, &format!("{tag}{ca}"));
        let mut a = vec![
            "ca".to_string(),
            "-gencrl".into(),
            "-config".into(),
            cnf,
            "-keyfile".into(),
            format!("{tag}{ca}.key"),
            "-cert".into(),
            format!("{tag}{ca}.pem"),
            "-out".into(),
            format!("{tag}{ca}.crl"),
        ];
        a.extend(sigopt.iter().map(|s| s.to_string()));
        openssl_ok(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

fn read(d: &Path, name: &str) -> Vec<u8> {
    std::fs::read(d.join(name)).unwrap()
}

fn wall_clock() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

#[test]
fn we_validate_openssl_certificates_csrs_and_crls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_consortium(d, "std-", &["-sigopt", DISTID]);
    let root = Certificate::from_pem(&read(d, "std-root.pem")).unwrap();
    let agency = Certificate::from_pem(&read(d, "std-agency.pem")).unwrap();
    let user = Certificate::from_pem(&read(d, "std-user.pem")).unwrap();
    let crls = vec![
        Crl::from_pem(&read(d, "std-root.crl")).unwrap(),
        Crl::from_pem(&read(d, "std-agency.crl")).unwrap(),
    ];
    assert_eq!(root.role(), Some(Role::RootCa));
    assert_eq!(agency.role(), Some(Role::AgencyCa));
    assert_eq!(user.role(), Some(Role::User));
    assert_eq!(user.serial().to_hex(), "0a03");
    assert_eq!(crls[1].number(), 1);
    crls[1].verify_signed_by(&agency.public_key()).unwrap();
    // OpenSSL's requests carry a valid proof of possession.
    let req = csr::verify(&read(d, "std-user.csr")).unwrap();
    assert_eq!(req.public_key, user.public_key());
    assert_eq!(
        csr::check_for_issuance(&req, Role::User, "OSSL Agency").unwrap(),
        "ossl-user"
    );
    assert!(matches!(
        csr::check_for_issuance(&req, Role::Admin, "OSSL Agency"),
        Err(PkiError::RoleClaimMismatch { .. })
    ));
    // The chain validates, with OpenSSL's CRLs.
    let now = UnixTime(wall_clock().0 + 60);
    let anchors = [TrustAnchor::new(root.clone())];
    let ok = validate_chain(
        &user,
        std::slice::from_ref(&agency),
        &anchors,
        &crls,
        now,
        Role::User,
    )
    .unwrap();
    assert_eq!(ok.organisation(), "OSSL Consortium");
    assert_eq!(ok.path().len(), 3);
    // Revoked by OpenSSL: `openssl ca -revoke`, then a new CRL.
    let cnf = "std-agency-ca.cnf";
    openssl_ok(
        d,
        &[
            "ca",
            "-revoke",
            "std-user.pem",
            "-crl_reason",
            "keyCompromise",
            "-config",
            cnf,
            "-keyfile",
            "std-agency.key",
            "-cert",
            "std-agency.pem",
        ],
    );
    openssl_ok(
        d,
        &[
            "ca",
            "-gencrl",
            "-config",
            cnf,
            "-keyfile",
            "std-agency.key",
            "-cert",
            "std-agency.pem",
            "-out",
            "std-agency2.crl",
            "-sigopt",
            DISTID,
        ],
    );
    let crl2 = Crl::from_pem(&read(d, "std-agency2.crl")).unwrap();
    assert_eq!(crl2.number(), 2);
    assert_eq!(crl2.revoked()[0].reason, RevocationReason::KeyCompromise);
    let crls2 = vec![crls[0].clone(), crls[1].clone(), crl2];
    let e = validate_chain(
        &user,
        std::slice::from_ref(&agency),
        &anchors,
        &crls2,
        now,
        Role::User,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::Revoked {
                reason: RevocationReason::KeyCompromise,
                ..
            }
        ),
        "{e}"
    );
    // Without CRLs: unknown, never valid.
    assert!(matches!(
        validate_chain(
            &user,
            std::slice::from_ref(&agency),
            &anchors,
            &[],
            now,
            Role::User
        ),
        Err(ChainError::RevocationUnknown { .. })
    ));
}

#[test]
fn openssl_foreign_algorithms_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A P-256 CA (ecdsa-with-SHA256) certifies an SM2 key: the certificate parses (its key is
    // SM2) but its signature algorithm is refused wherever it is judged.
    openssl_ok(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "p256.key",
            "-subj",
            "/CN=p256",
            "-days",
            "30",
            "-out",
            "p256.pem",
        ],
    );
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:SM2",
            "-out",
            "k.pem",
        ],
    );
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-key",
            "k.pem",
            "-sm3",
            "-sigopt",
            DISTID,
            "-subj",
            "/C=CN/O=Org/OU=user/CN=u",
            "-out",
            "u.csr",
        ],
    );
    openssl_ok(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "u.csr",
            "-vfyopt",
            DISTID,
            "-CA",
            "p256.pem",
            "-CAkey",
            "p256.key",
            "-sha256",
            "-days",
            "30",
            "-set_serial",
            "7",
            "-out",
            "u.pem",
        ],
    );
    let c = Certificate::from_pem(&read(d, "u.pem")).unwrap();
    assert_eq!(c.signature_algorithm(), "1.2.840.10045.4.3.2");
    assert!(matches!(
        c.verify_signed_by(&c.public_key(), &UserId::default()),
        Err(PkiError::WrongAlgorithm { .. })
    ));
    let e = validate_chain(
        &c,
        &[],
        &[TrustAnchor::new(c.clone())],
        &[],
        wall_clock(),
        Role::User,
    )
    .unwrap_err();
    assert!(matches!(e, ChainError::WrongAlgorithm { .. }), "{e}");
    // A P-256 key is not an SM2 key.
    openssl_ok(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "p256.key",
            "-subj",
            "/CN=p256",
            "-days",
            "30",
            "-out",
            "p256.pem",
        ],
    );
    assert!(matches!(
        Certificate::from_pem(&read(d, "p256.pem")),
        Err(PkiError::NotSm2Key { .. })
    ));
}

#[test]
fn openssl_empty_id_needs_an_anchor_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // OpenSSL 3.0's default: no -sigopt, so every signature uses the empty ID.
    openssl_consortium(d, "empty-", &[]);
    let root = Certificate::from_pem(&read(d, "empty-root.pem")).unwrap();
    let agency = Certificate::from_pem(&read(d, "empty-agency.pem")).unwrap();
    let user = Certificate::from_pem(&read(d, "empty-user.pem")).unwrap();
    let crls = vec![
        Crl::from_pem(&read(d, "empty-root.crl")).unwrap(),
        Crl::from_pem(&read(d, "empty-agency.crl")).unwrap(),
    ];
    let now = UnixTime(wall_clock().0 + 60);
    let inter = std::slice::from_ref(&agency);
    let e = validate_chain(
        &user,
        inter,
        &[TrustAnchor::new(root.clone())],
        &crls,
        now,
        Role::User,
    )
    .unwrap_err();
    assert!(matches!(e, ChainError::SignatureInvalid { .. }), "{e}");
    let empty = TrustAnchor {
        cert: root.clone(),
        user_id: UserId::new(Vec::new()).unwrap(),
    };
    validate_chain(&user, inter, &[empty], &crls, now, Role::User).unwrap();
    // A CSR signed with the empty ID fails the proof of possession (which uses the standard ID).
    assert!(matches!(
        csr::verify(&read(d, "empty-user.csr")),
        Err(PkiError::SignatureInvalid { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// GM/T 0009 SM2EnvelopedKey

#[test]
fn envelope_interop_with_gmssl_primitives() {
    let Some(python) = python() else { return };
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(43)));
    // Ours → opened in Python with GmSSL's SM2 decryption and SM4.
    let mut input = String::new();
    let mut cases = Vec::new();
    for _ in 0..8 {
        let holder = crypto_sm::sm2::PrivateKey::generate(p.rng()).unwrap();
        let enc = crypto_sm::sm2::PrivateKey::generate(p.rng()).unwrap();
        let env = envelope::seal(
            &enc.to_bytes(),
            &enc.public_key(),
            &holder.public_key(),
            p.rng(),
        )
        .unwrap();
        input += &format!("{} {}\n", x(&holder.to_bytes()[..]), x(&env));
        cases.push(enc);
    }
    let out = py(
        &python,
        r#"
for holder_d, env in records():
    holder_d, env = h(holder_d), h(env)
    (t, _, body), = [(a, b, c) for a, b, c in der_items(env)]
    assert t == 0x30
    (t1, alg, _), (t2, cipher, _), (t3, _, pub), (t4, _, encd) = der_items(body)
    assert (t1, t2, t3, t4) == (0x30, 0x30, 0x03, 0x03)
    assert alg == SM4_ECB_ALG, alg.hex()
    assert pub[0] == 0 and encd[0] == 0 and len(encd) == 33
    key = g.sm2_decrypt(holder_d, cipher)
    d = sm4_ecb(key, encd[1:], True)
    pub64 = pub[2:]
    sig = g.sm2_sign(d, pub64, b'probe')
    print(x(d), int(g.sm2_verify(pub64, b'probe', sig)))
"#,
        &input,
    );
    for (line, enc) in out.iter().zip(&cases) {
        assert_eq!(
            unx(&line[0]),
            enc.to_bytes().to_vec(),
            "GmSSL recovered another d"
        );
        assert_eq!(line[1], "1", "the enveloped public key does not match d");
    }

    // Built in Python from GmSSL's key generation, SM2 encryption and SM4 → opened by us.
    let holders: Vec<SoftSigner> = (0..8).map(|_| p.generate().unwrap()).collect();
    let input: String = holders
        .iter()
        .map(|h| format!("{}\n", x(&Signer::public_key(h).as_bytes()[1..])))
        .collect();
    let out = py(
        &python,
        r#"
for holder_pub, in records():
    pub, d = g.sm2_key_generate()
    key = g.rand_bytes(16)
    cipher = g.sm2_encrypt(h(holder_pub), key)
    encd = sm4_ecb(key, d, False)
    env = der(0x30, SM4_ECB_ALG + cipher + der(0x03, b'\x00\x04' + pub) + der(0x03, b'\x00' + encd))
    print(x(env), x(pub), x(d))
"#,
        &input,
    );
    for (line, holder) in out.iter().zip(&holders) {
        let key = envelope::open(&unx(&line[0]), holder).unwrap();
        assert_eq!(key.to_bytes().to_vec(), unx(&line[2]));
        assert_eq!(key.public_key().as_bytes()[1..], unx(&line[1])[..]);
        // Another holder cannot open it.
        let other = &holders[(holders
            .iter()
            .position(|h| std::ptr::eq(h, holder))
            .unwrap()
            + 1)
            % holders.len()];
        assert!(envelope::open(&unx(&line[0]), other).is_err());
    }
}
