//! The REST/JSON gateway (issue 17, docs/rest.md) against a real node process: a transaction
//! prepared by the node, signed by OpenSSL and by GmSSL outside gmchain, submitted, resubmitted
//! (its existing outcome), found and its receipt verified offline; every route's refusals as
//! problem documents; the same answers as gRPC; public mode; the mutual-TLS listener through
//! `gmchain tunnel`; schemathesis against the OpenAPI document.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use crypto::Signer as _;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SystemRandom;
use pki::{IssueRequest, Role, Serial, UnixTime};
use serde_json::{Value, json};

use crate::dev_node::{Chain, Node, dev_chain, identity, log_of, now_secs, ok};

/// One HTTP/1.1 exchange (Connection: close): status, headers (lower-case names), body.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let start = i + 2;
        out.extend_from_slice(&b[start..(start + n).min(b.len())]);
        b = &b[(start + n + 2).min(b.len())..];
    }
    out
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(crate) fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let (st, _, body) = http(addr, "GET", path, &[], b"");
    (st, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub(crate) fn post_json(
    addr: &str,
    path: &str,
    body: &Value,
) -> (u16, Vec<(String, String)>, Value) {
    let (st, h, b) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (st, h, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// Asserts an RFC 9457 problem document with `status` and, if given, registry code `code`.
fn problem(
    st: u16,
    headers: &[(String, String)],
    body: &[u8],
    status: u16,
    code: Option<&str>,
    what: &str,
) {
    assert_eq!(st, status, "{what}: {}", String::from_utf8_lossy(body));
    assert_eq!(
        header(headers, "content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    let p: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(p["status"], status, "{what}: {p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {p}"
    );
    if let Some(c) = code {
        assert_eq!(p["code"], c, "{what}: {p}");
    }
}

/// `GET path`, answered by a problem document with `status` and `code`; its body.
fn get_refused(addr: &str, path: &str, status: u16, code: &str, what: &str) -> Vec<u8> {
    let (st, h, b) = http(addr, "GET", path, &[], b"");
    problem(st, &h, &b, status, Some(code), what);
    b
}

/// `POST path` with a JSON body, answered by a problem document with `status` and `code`.
fn post_refused(addr: &str, path: &str, body: &Value, status: u16, code: &str, what: &str) {
    let (st, h, b) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    problem(st, &h, &b, status, Some(code), what);
}

/// The plain REST listener the dev chain's configuration names.
pub(crate) fn rest_addr(chain: &Chain) -> String {
    crate::dev_node::rest_listen_of(&chain.dir.join("node.toml"))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

/// A user of Dev Bureau whose key OpenSSL generated (`rest-user.key.pem`, unencrypted, in a
/// test directory only), certified by the dev root: an application team's identity.
fn openssl_user(chain: &Chain) -> String {
    let dir = &chain.dir;
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(["genpkey", "-algorithm", "SM2", "-out", "rest-user.key.pem"])
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = crypto_sm::keys::decode_private_key(
        &std::fs::read(dir.join("rest-user.key.pem")).unwrap(),
        None,
    )
    .unwrap();
    let public = SoftwareProvider::new(Arc::new(SystemRandom))
        .signer(key)
        .public_key();
    let (ca_key, ca) = identity(dir, "ca");
    let now = now_secs();
    let cert = pki::issue(
        &ca,
        &ca_key,
        &IssueRequest {
            role: Role::User,
            common_name: "rest-user",
            organisation: "Dev Bureau",
            public_key: &public,
            serial: Serial::random(&SystemRandom).unwrap(),
            validity: pki::Validity {
                not_before: UnixTime(now - 600).max(ca.validity().not_before),
                not_after: UnixTime(now + 86400 * 30).min(ca.validity().not_after),
            },
        },
    )
    .unwrap();
    std::fs::write(dir.join("rest-user.crt.pem"), cert.to_pem()).unwrap();
    cert.to_pem()
}

/// `openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:…` over `msg`: the DER signature.
fn openssl_sign(dir: &Path, msg: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join("sign.bin"), msg).unwrap();
    let o = Command::new("openssl")
        .current_dir(dir)
        .args([
            "pkeyutl",
            "-sign",
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-inkey",
            "rest-user.key.pem",
            "-in",
            "sign.bin",
            "-out",
            "sign.der",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(dir.join("sign.der")).unwrap()
}

/// The attestation call for `doc`, prepared by the node for `cert`.
fn prepare(addr: &str, doc: &[u8], cert: &str) -> Value {
    let digest = crypto_sm::sm3::sm3(doc);
    let (st, _, p) = post_json(
        addr,
        "/v1/tx/prepare",
        &json!({
            "contract": "attestation",
            "method": "anchor",
            "args": [b64(digest.as_bytes()), b64(b"document"), "", ""],
            "sender_certificate": cert,
        }),
    );
    assert_eq!(st, 200, "{p}");
    p
}

#[test]
fn an_externally_signed_transaction_goes_through_rest_and_its_receipt_verifies_offline() {
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    let cert = openssl_user(&chain);
    let doc = b"Notice 2026-201: REST anchoring";
    let p = prepare(&addr, doc, &cert);
    let sign_bytes = unb64(&p["sign_bytes"]);
    assert_eq!(sign_bytes.len(), 32);
    // The bytes to sign are the SM3 of the transaction's id domain and its encoding.
    let mut idm = b"GMCHAIN-TX-V1\0".to_vec();
    idm.extend(unb64(&p["tx"]));
    assert_eq!(crypto_sm::sm3::sm3(&idm).as_bytes(), sign_bytes.as_slice());
    // Review 19, M4: an expiry the node would refuse is refused when preparing.
    let tip: u64 = p["tip"].as_str().unwrap().parse().unwrap();
    for expiry in [
        json!(0),
        json!(tip.to_string()),
        json!("18446744073709551615"),
    ] {
        let (st, h, b) = http(
            &addr,
            "POST",
            "/v1/tx/prepare",
            &[("Content-Type", "application/json")],
            json!({"contract": "attestation", "method": "anchor", "args": [], "sender_certificate": cert, "expiry": expiry})
                .to_string()
                .as_bytes(),
        );
        problem(
            st,
            &h,
            &b,
            400,
            Some("REST_REQUEST"),
            &format!("expiry {expiry}"),
        );
    }
    assert_eq!(hex::encode(&sign_bytes), p["tx_id"].as_str().unwrap());
    let sig = openssl_sign(&chain.dir, &sign_bytes);
    let submit = json!({"tx": p["tx"], "signature": b64(&sig), "wait_for_commit": true});
    let (st, h, out) = post_json(&addr, "/v1/tx", &submit);
    assert_eq!(st, 200, "{out}\n{}", log_of(&chain));
    assert_eq!(out["committed"], true, "{out}");
    assert!(header(&h, "gmchain-existing").is_none());
    let height = out["height"].as_str().unwrap().to_string();
    assert_eq!(
        hex::encode(unb64(&out["tx_id"])),
        p["tx_id"].as_str().unwrap()
    );
    // Resubmitting the same transaction gives its outcome, not an error.
    let (st, h, again) = post_json(&addr, "/v1/tx", &submit);
    assert_eq!(st, 200, "{again}");
    assert_eq!(header(&h, "gmchain-existing"), Some("true"));
    assert_eq!(again["height"], height.as_str());
    assert_eq!(again["receipt"], out["receipt"]);
    // The committed id with another signature is not the committed transaction: refused.
    let mut other = submit.clone();
    other["signature"] = json!(b64(&openssl_sign(&chain.dir, &sign_bytes)));
    post_refused(
        &addr,
        "/v1/tx",
        &other,
        409,
        "TX_DUPLICATE",
        "the same id signed again",
    );
    // A signature over other bytes is refused with the admission code.
    let fresh = prepare(&addr, doc, &cert);
    let bad =
        json!({"tx": fresh["tx"], "signature": b64(&openssl_sign(&chain.dir, b"other bytes"))});
    post_refused(
        &addr,
        "/v1/tx",
        &bad,
        400,
        "TX_SIGNATURE_INVALID",
        "a signature over other bytes",
    );
    // Found by digest, with the organisation and the height.
    let digest = hex::encode(crypto_sm::sm3::sm3(doc).as_bytes());
    let (st, a) = get_json(&addr, &format!("/v1/attestations/by-digest/{digest}"));
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["attestation"]["owner"], "Dev Bureau/rest-user");
    assert_eq!(a["attestation"]["height"], height.as_str());
    // The receipt from REST verifies offline against the genesis file, with the document.
    let (st, proof) = get_json(
        &addr,
        &format!("/v1/tx/{}/proof", p["tx_id"].as_str().unwrap()),
    );
    assert_eq!(st, 200, "{proof}");
    std::fs::write(
        chain.dir.join("rest.receipt.json"),
        proof["receipt_json"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(chain.dir.join("doc.txt"), doc).unwrap();
    let v = ok(
        &chain.dir,
        &[
            "receipt",
            "verify",
            "rest.receipt.json",
            "doc.txt",
            "--genesis",
            "data/genesis.json",
        ],
    );
    assert!(v.contains("rest-user"), "{v}");
    // The same transaction signed by GmSSL (a second implementation) goes through too.
    gmssl_signed_submission(&chain, &addr, &cert);
}

/// Signs a prepared transaction with GmSSL's Python binding (gmssl-pyx) and submits it.
fn gmssl_signed_submission(chain: &Chain, addr: &str, cert: &str) {
    let Some(python) = test_support::python("cargo test -p gmchain --test gmchain rest::") else {
        return;
    };
    let p = prepare(addr, b"signed by GmSSL", cert);
    let key = crypto_sm::keys::decode_private_key(
        &std::fs::read(chain.dir.join("rest-user.key.pem")).unwrap(),
        None,
    )
    .unwrap();
    let signer = SoftwareProvider::new(Arc::new(SystemRandom)).signer(key);
    let public = signer.public_key();
    let d = hex::encode(*signer.private_key().to_bytes());
    let q = hex::encode(&public.as_bytes()[1..]);
    let script = format!(
        "import gmssl_pyx as g, sys\nsig = g.sm2_sign(bytes.fromhex('{d}'), bytes.fromhex('{q}'), bytes.fromhex('{}'), signer_id=b'1234567812345678')\nsys.stdout.write(sig.hex())\n",
        hex::encode(unb64(&p["sign_bytes"]))
    );
    let o = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sig = hex::decode(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
    let (st, _, out) = post_json(
        addr,
        "/v1/tx",
        &json!({"tx": p["tx"], "signature": b64(&sig), "wait_for_commit": true}),
    );
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["committed"], true);
}

/// Every route of the OpenAPI document refuses a malformed request with a problem document:
/// a POST route a body that is not JSON (400), of another media type (415), larger than its
/// limit (413); a GET route an unknown query parameter (400) and a path parameter that is not
/// of its type (400). Unknown paths are 404 and wrong methods 405, also as problems.
#[test]
fn every_route_refuses_malformed_and_oversized_requests_with_a_problem_document() {
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    let (st, doc) = get_json(&addr, "/openapi.json");
    assert_eq!(st, 200);
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            // A concrete path: each parameter a valid value of its type.
            let mut concrete = path.clone();
            let mut broken = path.clone();
            for p in params.iter().filter(|p| p["in"] == "path") {
                let name = p["name"].as_str().unwrap();
                let pattern = p["schema"]["pattern"].as_str().unwrap_or("");
                let good = if pattern.contains("0-9a-f") {
                    "ab".repeat(32)
                } else if pattern.contains("0|[1-9]") {
                    "1".into()
                } else {
                    "x".into()
                };
                concrete = concrete.replace(&format!("{{{name}}}"), &good);
                let bad = if pattern.contains("0-9a-f") {
                    "zz".to_string()
                } else if pattern.contains("0|[1-9]") {
                    "-1".into()
                } else {
                    "x".into()
                };
                broken = broken.replace(&format!("{{{name}}}"), &bad);
            }
            let what = format!("{} {path}", method.to_uppercase());
            if method == "post" {
                let json_body = op["requestBody"]["content"]
                    .get("application/json")
                    .is_some();
                if json_body {
                    let (st, h, b) = http(
                        &addr,
                        "POST",
                        &concrete,
                        &[("Content-Type", "application/json")],
                        b"{not json",
                    );
                    problem(
                        st,
                        &h,
                        &b,
                        400,
                        Some("REST_REQUEST"),
                        &format!("{what}: malformed JSON"),
                    );
                    let (st, h, b) = http(
                        &addr,
                        "POST",
                        &concrete,
                        &[("Content-Type", "application/json")],
                        b"[1,2]",
                    );
                    problem(
                        st,
                        &h,
                        &b,
                        400,
                        Some("REST_REQUEST"),
                        &format!("{what}: not an object"),
                    );
                    let (st, h, b) = http(
                        &addr,
                        "POST",
                        &concrete,
                        &[("Content-Type", "text/plain")],
                        b"{}",
                    );
                    problem(
                        st,
                        &h,
                        &b,
                        415,
                        Some("REST_MEDIA_TYPE"),
                        &format!("{what}: text/plain"),
                    );
                    // Over the route's body limit: 8 MiB, or for a batch (its own limit,
                    // api.max_batch_bytes in base64, about 21.4 MiB) 24 MiB.
                    let mib = if path.as_str() == "/v1/tx/batch" {
                        24
                    } else {
                        8
                    };
                    let big = vec![b' '; mib << 20];
                    let (st, h, b) = http(
                        &addr,
                        "POST",
                        &concrete,
                        &[("Content-Type", "application/json")],
                        &big,
                    );
                    problem(
                        st,
                        &h,
                        &b,
                        413,
                        Some("REST_TOO_LARGE"),
                        &format!("{what}: {mib} MiB"),
                    );
                } else {
                    // The upload: its query is checked before any byte is read.
                    let (st, h, b) = http(
                        &addr,
                        "POST",
                        &format!("{concrete}?payload_sm3=zz&payload_len=1"),
                        &[("Content-Type", "application/octet-stream")],
                        b"x",
                    );
                    problem(
                        st,
                        &h,
                        &b,
                        400,
                        Some("REST_REQUEST"),
                        &format!("{what}: bad payload_sm3"),
                    );
                    let (st, h, b) = http(
                        &addr,
                        "POST",
                        &format!(
                            "{concrete}?payload_sm3={}&payload_len=99999999999",
                            "ab".repeat(32)
                        ),
                        &[("Content-Type", "application/octet-stream")],
                        b"x",
                    );
                    problem(
                        st,
                        &h,
                        &b,
                        413,
                        Some("REST_TOO_LARGE"),
                        &format!("{what}: too long"),
                    );
                }
            } else {
                let sep = if concrete.contains('?') { '&' } else { '?' };
                get_refused(
                    &addr,
                    &format!("{concrete}{sep}colour=red"),
                    400,
                    "REST_REQUEST",
                    &format!("{what}: unknown query parameter"),
                );
                if broken != concrete && !broken.contains("/x") {
                    let (st, h, b) = http(&addr, "GET", &broken, &[], b"");
                    problem(
                        st,
                        &h,
                        &b,
                        400,
                        Some("REST_REQUEST"),
                        &format!("{what}: bad path parameter"),
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 39, "every route was checked");
    get_refused(
        &addr,
        "/v1/no-such-route",
        404,
        "REST_NOT_FOUND",
        "unknown path",
    );
    get_refused(
        &addr,
        "/v1/contracts/%FF",
        400,
        "REST_REQUEST",
        "a path that is not UTF-8",
    );
    let (st, h, b) = http(&addr, "DELETE", "/v1/status", &[], b"");
    problem(st, &h, &b, 405, Some("REST_METHOD"), "DELETE");
    // Nothing of the above reached the chain: the tip is still the genesis block or empty blocks.
    let (_, status) = get_json(&addr, "/v1/status");
    assert_eq!(status["committed_txs"], "0", "{status}");
}

/// REST answers are gRPC's answers: the same status, block and validators, field for field.
#[test]
fn rest_answers_are_the_grpc_answers_and_streams_are_server_sent_events() {
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, block) = rt.block_on(async {
        let mut c = crate::dev_node::client_as(&chain, "admin").await.unwrap();
        let s = c
            .get_status(api::v1::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        let b = c
            .get_block(api::v1::GetBlockRequest { height: Some(0) })
            .await
            .unwrap()
            .into_inner();
        (s, b)
    });
    let (st, s) = get_json(&addr, "/v1/status");
    assert_eq!(st, 200);
    assert_eq!(s["chain_id"], status.chain_id);
    assert_eq!(unb64(&s["genesis_hash"]), status.genesis_hash);
    assert_eq!(s["validator"], status.validator);
    assert_eq!(s["max_tx_size"], status.max_tx_size.to_string());
    let (st, b) = get_json(&addr, "/v1/blocks/0");
    assert_eq!(st, 200);
    assert_eq!(unb64(&b["block"]), block.block);
    // The latest block and a stream of blocks from height 0: the first event is block 0.
    let (st, latest) = get_json(&addr, "/v1/blocks/latest");
    assert_eq!(st, 200, "{latest}");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(
        format!("GET /v1/blocks/stream?from_height=0 HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\n\n")
        || !String::from_utf8_lossy(&got).contains("data: ")
    {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    let data = text
        .split("data: ")
        .nth(1)
        .unwrap()
        .split('\n')
        .next()
        .unwrap();
    let first: Value = serde_json::from_str(data).unwrap();
    assert_eq!(unb64(&first["block"]), block.block);
    // The health of a running single validator: storage, token and no peers to miss.
    let (st, h) = get_json(&addr, "/v1/health");
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["token"]["ok"], true);
    assert_eq!(h["storage"]["ok"], true);
    // The genesis file as the node holds it.
    let (st, _, g) = http(&addr, "GET", "/v1/genesis", &[], b"");
    assert_eq!(st, 200);
    assert_eq!(
        g,
        std::fs::read(chain.dir.join("data/genesis.json")).unwrap()
    );
    // Review 20: a DNS-rebinding page (its own host name) is refused on the plain listener
    // too; an IP address and localhost are served.
    let (st, h, b) = http(&addr, "GET", "/v1/status", &[("Host", "evil.example")], b"");
    problem(
        st,
        &h,
        &b,
        403,
        Some("REST_CROSS_SITE"),
        "a rebound host on the plain listener",
    );
    let port = addr.rsplit_once(':').unwrap().1;
    let (st, _, _) = http(
        &addr,
        "GET",
        "/v1/status",
        &[("Host", &format!("localhost:{port}"))],
        b"",
    );
    assert_eq!(st, 200);
    // The plain gateway has no certificate identity: identity-bound calls say so.
    let (st, h, b) = http(
        &addr,
        "POST",
        "/v1/contracts/hello/query",
        &[("Content-Type", "application/json")],
        br#"{"method":"get"}"#,
    );
    problem(
        st,
        &h,
        &b,
        401,
        Some("NODE_UNAUTHENTICATED"),
        "a contract query on the plain gateway",
    );
    get_refused(
        &addr,
        "/v1/exchange/escrow",
        401,
        "NODE_UNAUTHENTICATED",
        "the exchange on the plain gateway",
    );
    drop(latest);
}

/// The REST routes beside gRPC on the mutual-TLS listener, reached through `gmchain tunnel`:
/// the client's certificate identity reaches the service (the admin is named in the refusal).
#[test]
fn rest_over_the_tunnel_carries_the_clients_certificate_identity() {
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let (mut tunnel, listen) = tunnel_as(&chain, &chain.dir.join("client.toml"));
    let (st, s) = get_json(&listen, "/v1/status");
    assert_eq!(st, 200, "{s}");
    assert_eq!(s["chain_id"], "dev-chain");
    let b = get_refused(
        &listen,
        "/v1/supervision",
        403,
        "NODE_NOT_SUPERVISOR",
        "supervision as the admin",
    );
    let p: Value = serde_json::from_slice(&b).unwrap();
    assert!(p["detail"].as_str().unwrap().contains("CN=admin"), "{p}");
    // Review 19, H2: a web page must not use the certificate the tunnel lends. A cross-site
    // "simple" upload (text/plain, no preflight), a page of another origin, a fetch the browser
    // marks cross-site, and a DNS-rebinding page (its own host name resolving to 127.0.0.1).
    let blob_sm3 = "ab".repeat(32);
    let (st, h, b) = http(
        &listen,
        "POST",
        &format!("/v1/exchange/uploads?payload_sm3={blob_sm3}&payload_len=5"),
        &[("Content-Type", "text/plain")],
        b"GMCP\x01",
    );
    problem(
        st,
        &h,
        &b,
        415,
        Some("REST_MEDIA_TYPE"),
        "a text/plain upload",
    );
    for (hdrs, what) in [
        (
            vec![("Origin", "https://evil.example")],
            "a page of another origin",
        ),
        (vec![("Sec-Fetch-Site", "cross-site")], "a cross-site fetch"),
        (vec![("Host", "evil.example:80")], "a rebound host name"),
    ] {
        let (st, h, b) = http(
            &listen,
            "GET",
            "/v1/exchange/messages?organisation=Dev%20Bureau",
            &hdrs,
            b"",
        );
        problem(st, &h, &b, 403, Some("REST_CROSS_SITE"), what);
    }
    // Review 20: the gRPC paths behind the tunnel take HTTP/2 with application/grpc only (a
    // page's no-cors text/plain POST cannot call Exchange.Fetch or Supervision in the user's
    // name).
    let (st, h, b) = http(
        &listen,
        "POST",
        "/gmchain.v1.Chain/GetStatus",
        &[("Content-Type", "text/plain")],
        b"\0\0\0\0\0",
    );
    problem(
        st,
        &h,
        &b,
        403,
        Some("REST_CROSS_SITE"),
        "gRPC over HTTP/1.1 from a page",
    );
    // The tunnel's own origin and IP hosts are served.
    let own = format!("http://{listen}");
    let (st, _, b) = http(
        &listen,
        "GET",
        "/v1/status",
        &[("Origin", own.as_str()), ("Sec-Fetch-Site", "same-origin")],
        b"",
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    let _ = tunnel.0.kill();
}

/// `gmchain tunnel` with the client profile `profile` on a free loopback port, once it listens.
fn tunnel_as(chain: &Chain, profile: &Path) -> (Node, String) {
    let port = crate::dev_node::free_port();
    let listen = format!("127.0.0.1:{port}");
    let tunnel = Node(
        Command::new(env!("CARGO_BIN_EXE_gmchain"))
            .current_dir(&chain.dir)
            .env("GMCHAIN_CLIENT_PROFILE", profile)
            .args(["tunnel", "--listen", &listen])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&listen).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the tunnel did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (tunnel, listen)
}

/// The auditor pages through the tunnel: the console is served on the mutual-TLS listener too,
/// and the supervisor's auditor reads supervision and a trace over REST with its certificate.
#[test]
fn an_auditor_reaches_the_console_and_supervision_through_the_tunnel() {
    let chain = crate::dev_node::dev_chain_supervised(1, 2);
    let _node = Node::start(&chain);
    let profile = chain.dir.join("orgs/2.auditor.profile.toml");
    let (mut tunnel, listen) = tunnel_as(&chain, &profile);
    let (st, h, page) = http(&listen, "GET", "/", &[], b"");
    assert_eq!(st, 200);
    assert!(header(&h, "content-security-policy").is_some());
    assert!(
        String::from_utf8_lossy(&page).contains("<html"),
        "the console's page"
    );
    let (st, s) = get_json(&listen, "/v1/supervision");
    assert_eq!(st, 200, "{s}");
    assert_eq!(s["supervisor"], "Agency 02", "{s}");
    // A transaction of Dev Bureau's user, committed over the plain gateway, then its trace.
    let cert = openssl_user(&chain);
    let addr = rest_addr(&chain);
    let p = prepare(&addr, b"traced document", &cert);
    let sig = openssl_sign(&chain.dir, &unb64(&p["sign_bytes"]));
    let (st, _, out) = post_json(
        &addr,
        "/v1/tx",
        &json!({"tx": p["tx"], "signature": b64(&sig), "wait_for_commit": true}),
    );
    assert_eq!(st, 200, "{out}");
    let (st, t) = get_json(&listen, "/v1/supervision/trace/org/Dev%20Bureau?limit=5");
    assert_eq!(st, 200, "{t}");
    assert_ne!(t["end_count"], "0", "{t}");
    assert!(
        t["entries"].as_array().is_some_and(|e| !e.is_empty()),
        "the user's transaction is in its organisation's trace: {t}"
    );
    let _ = tunnel.0.kill();
}

/// Public mode: reads only, an attestation shows its organisation and not the person (no
/// owner filter naming one), raw objects only with public_raw = true.
#[test]
fn public_mode_serves_public_reads_without_names() {
    let chain = dev_chain(1);
    let cert = openssl_user(&chain);
    {
        let _node = Node::start(&chain);
        let addr = rest_addr(&chain);
        let p = prepare(&addr, b"public document", &cert);
        // No conformance report configured: a problem naming the setting.
        let b = get_refused(
            &addr,
            "/v1/conformance/report",
            404,
            "REST_NOT_FOUND",
            "no report configured",
        );
        assert!(String::from_utf8_lossy(&b).contains("rest.conformance_report"));
        let sig = openssl_sign(&chain.dir, &unb64(&p["sign_bytes"]));
        let (st, _, out) = post_json(
            &addr,
            "/v1/tx",
            &json!({"tx": p["tx"], "signature": b64(&sig), "wait_for_commit": true}),
        );
        assert_eq!(st, 200, "{out}");
    }
    let config = chain.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[rest]\n", "[rest]\nmode = \"public\"\n"),
    )
    .unwrap();
    let digest = hex::encode(crypto_sm::sm3::sm3(b"public document").as_bytes());
    {
        let _node = Node::start(&chain);
        let addr = rest_addr(&chain);
        // Public mode names no person: the report (its auditor) only with public_raw.
        get_refused(
            &addr,
            "/v1/conformance/report",
            403,
            "REST_NOT_PUBLIC",
            "the report in public mode",
        );
        let (st, a) = get_json(&addr, &format!("/v1/attestations/by-digest/{digest}"));
        assert_eq!(st, 200, "{a}");
        assert_eq!(a["attestation"]["owner"], "Dev Bureau");
        assert_eq!(a["attestation"]["signer"], "");
        assert!(!a.to_string().contains("rest-user"), "{a}");
        let (st, h, b) = http(
            &addr,
            "POST",
            "/v1/tx",
            &[("Content-Type", "application/json")],
            b"{}",
        );
        problem(
            st,
            &h,
            &b,
            403,
            Some("NODE_READ_ONLY"),
            "a write on the public listener",
        );

        // Review 19, H3: no name through a query, no raw object (they carry certificates)
        // unless the operator publishes them.
        get_refused(
            &addr,
            "/v1/attestations?owner=Dev%20Bureau%2Frest-user",
            403,
            "REST_NOT_PUBLIC",
            "an owner filter naming a person",
        );
        // Owners are "organisation/common name": no listing by owner names no one.
        get_refused(
            &addr,
            "/v1/attestations?owner=Dev%20Bureau",
            403,
            "REST_NOT_PUBLIC",
            "a listing by owner",
        );
        for route in ["/v1/blocks/1", "/v1/blocks/latest"] {
            get_refused(
                &addr,
                route,
                403,
                "REST_NOT_PUBLIC",
                "a raw object by default",
            );
        }
        get_refused(
            &addr,
            "/v1/supervision",
            403,
            "REST_NOT_PUBLIC",
            "supervision",
        );
    }
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "mode = \"public\"\n",
            "mode = \"public\"\npublic_raw = true\nconformance_report = \"report.json\"\n",
        ),
    )
    .unwrap();
    let report = br#"{"provenance":{},"summary":{"clauses":1,"met":1},"standards":[]}"#;
    std::fs::write(chain.dir.join("report.json"), report).unwrap();
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    // The operator's report as its file holds it, with its SM3.
    let (st, h, b) = http(&addr, "GET", "/v1/conformance/report", &[], b"");
    assert_eq!(st, 200);
    assert_eq!(b, report);
    assert_eq!(
        header(&h, "gmchain-content-sm3"),
        Some(crypto_sm::sm3::sm3(report).to_hex().as_str())
    );
    let (st, _) = get_json(&addr, "/v1/blocks/1");
    assert_eq!(st, 200, "public_raw = true publishes raw objects");
    let (st, _) = get_json(&addr, &format!("/v1/attestations/by-digest/{digest}"));
    assert_eq!(st, 200);
}

/// schemathesis (PyPI) against the generated document and a live node: no 5xx, no answer
/// outside its schema, no undocumented status, about 20 examples per operation, write routes
/// fuzzed for refusals; capped at 5 minutes.
#[test]
fn schemathesis_finds_no_server_error_or_schema_violation() {
    let Some(python) = test_support::python("cargo test -p gmchain --test gmchain rest::") else {
        return;
    };
    let st = python.with_file_name("st");
    assert!(
        st.exists(),
        "{} is missing: scripts/setup.sh installs schemathesis into the virtualenv",
        st.display()
    );
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    let o = Command::new("timeout")
        .current_dir(&chain.dir)
        .args([
            "300",
            st.to_str().unwrap(),
            "run",
            &format!("http://{addr}/openapi.json"),
            "--url",
            &format!("http://{addr}"),
            "--max-examples",
            "20",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--request-timeout",
            "5",
            "--seed",
            "17",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "schemathesis failed:\n{out}\n{}",
        log_of(&chain)
    );
    assert!(out.contains("39 selected"), "{out}");
}

/// Review 19, H1: an SSE client that goes away gives its subscription slot back even when no
/// event comes (an idle chain, a filter nothing matches); a client that leaves cannot hold
/// the node's or its address's slots.
#[test]
fn review19_sse_clients_that_leave_give_their_subscription_slots_back() {
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    // Twice the per-address limit (8), each stream dropped once it answered.
    for _ in 0..16 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(
            format!(
                "GET /v1/events/stream?filter.contract=nosuchcontract HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "stream refused: {head}");
        drop(s);
    }
    // The gauge comes back to 0 without any block or event.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = crate::dev_node::scrape(&chain.metrics);
        let open = page
            .lines()
            .find_map(|l| l.strip_prefix("gmchain_api_subscriptions "))
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        if open == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "subscriptions still held by clients that left: {open}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Review 19, M1: a body that never arrives does not hold a connection: a JSON body stalled
/// past rest.request_timeout is answered 408 (REST_BODY_TIMEOUT), and an upload the service
/// refused stops being read, its connection closed.
#[test]
fn review19_stalled_bodies_are_cut_at_the_request_timeout() {
    let chain = dev_chain(1);
    let config = chain.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[rest]\n", "[rest]\nrequest_timeout_secs = 2\n"),
    )
    .unwrap();
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    // A JSON body that stops after its first byte.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(
        format!("POST /v1/tx HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{")
            .as_bytes(),
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let (st, h, b) = parse_response(&raw);
    problem(
        st,
        &h,
        &b,
        408,
        Some("REST_BODY_TIMEOUT"),
        "a stalled JSON body",
    );
    // An upload of 1000 bytes that sends 2: the plain gateway refuses it (no identity), and
    // the connection ends instead of waiting for the rest.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(
        format!(
            "POST /v1/exchange/uploads?payload_sm3={}&payload_len=1000 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nGM",
            "ab".repeat(32)
        )
        .as_bytes(),
    )
    .unwrap();
    let mut raw = Vec::new();
    let ended = s.read_to_end(&mut raw);
    assert!(
        ended.is_ok(),
        "the connection was held: {ended:?} after {:?}",
        String::from_utf8_lossy(&raw)
    );
    let (st, h, b) = parse_response(&raw);
    problem(
        st,
        &h,
        &b,
        401,
        Some("NODE_UNAUTHENTICATED"),
        "an upload on the plain gateway",
    );
}

/// A connection that names no ALPN protocol is HTTP/2, where the node speaks first (its SETTINGS
/// frame): clients' connection check waits for those bytes. Serving it as HTTP/1.1 too (REST
/// beside gRPC) had the node wait for the client instead, and every CLI call waited 5 s.
#[test]
fn the_api_listener_speaks_first_to_clients_without_alpn() {
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::AsyncReadExt as _;
        let config = crate::dev_node::tls_config(&chain.dir, "admin");
        let mut s = gmtls::net::connect(
            chain.grpc.parse().unwrap(),
            config,
            Duration::from_secs(10),
            None,
        )
        .await
        .unwrap();
        let mut head = [0u8; 9];
        let read = tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut head)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "the node sent nothing first: {read:?}"
        );
        assert_eq!(head[3], 0x04, "an HTTP/2 SETTINGS frame: {head:?}");
    });
}

/// Issue 19: `POST /v1/tx/batch` is `Batch.SubmitTransactions`: one result per transaction in
/// order (a refused one with its code, the others committed), 200 whatever they became; an
/// empty batch is a 400 problem document with `TX_BATCH_INVALID`.
#[test]
fn a_batch_goes_through_rest_with_one_result_per_transaction() {
    use types::Encode as _;
    let chain = dev_chain(1);
    let _node = Node::start(&chain);
    let addr = rest_addr(&chain);
    let (key, cert) = identity(&chain.dir, "clients/0");
    let sign = |doc: &[u8]| {
        let mut salt = [0u8; 16];
        crypto::RandomSource::fill(&SystemRandom, &mut salt).unwrap();
        let tx = types::Transaction {
            fuel_limit: None,
            chain_id: types::ChainId::new("dev-chain").unwrap(),
            salt,
            expiry: types::Height(500),
            sender: types::Sender::Certificate(cert.der().to_vec()),
            call: types::Call {
                contract: "attestation".into(),
                method: "anchor".into(),
                args: vec![
                    crypto_sm::sm3::sm3(doc).as_bytes().to_vec(),
                    b"document".to_vec(),
                    Vec::new(),
                    Vec::new(),
                ],
            },
        };
        types::SignedTx::sign(tx, &key, &crypto::UserId::default()).unwrap()
    };
    let a = sign(b"batch a");
    let b = sign(b"batch b");
    let mut bad = sign(b"batch bad");
    bad.signature = a.signature;
    let body = json!({
        "signed_txs": [b64(&a.to_bytes()), b64(&bad.to_bytes()), b64(&b.to_bytes())],
        "wait_for_commit": true,
    });
    let (st, _, out) = post_json(&addr, "/v1/tx/batch", &body);
    assert_eq!(st, 200, "{out}\n{}", log_of(&chain));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{out}");
    for (r, t) in [(&results[0], &a), (&results[2], &b)] {
        assert_eq!(r["committed"], true, "{r}");
        assert_eq!(unb64(&r["tx_id"]), t.tx_id().as_bytes().to_vec(), "{r}");
    }
    assert_eq!(results[1]["code"], "TX_SIGNATURE_INVALID", "{out}");
    assert!(results[1]["committed"].as_bool() != Some(true), "{out}");
    post_refused(
        &addr,
        "/v1/tx/batch",
        &json!({"signed_txs": [], "wait_for_commit": false}),
        400,
        "TX_BATCH_INVALID",
        "an empty batch",
    );
}
