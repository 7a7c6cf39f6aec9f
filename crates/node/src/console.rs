//! The web console's static assets (issue 17; `crates/node/console/`), built into the binary:
//! the plain REST listener serves them at `/`, so the console loads nothing from a CDN or any
//! other origin. The pages call only the REST routes of `docs/rest.md` and verify receipts in
//! the browser with the pinned `sm-crypto` in `console/vendor/` (`scripts/console-vendor.sh`).
//!
//! Every asset is a file of its own (no inline script or style), so the console runs under
//! [`CONTENT_SECURITY_POLICY`]; index.html carries the same policy in a `<meta>` element.

/// The Content-Security-Policy to send with every console asset: scripts, styles and requests
/// of the console's own origin only, no `eval`, no plug-ins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";

/// (path, content type, bytes) of every asset; `/` serves `index.html`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    (
        "/console.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/console.css"),
    ),
    ("/console.js", JS, include_bytes!("../console/console.js")),
    ("/i18n.js", JS, include_bytes!("../console/i18n.js")),
    ("/gm.js", JS, include_bytes!("../console/gm.js")),
    ("/codec.js", JS, include_bytes!("../console/codec.js")),
    ("/verify.js", JS, include_bytes!("../console/verify.js")),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_bytes!("../console/favicon.svg"),
    ),
    (
        "/vendor/sm2.js",
        JS,
        include_bytes!("../console/vendor/sm2.js"),
    ),
    (
        "/vendor/sm3.js",
        JS,
        include_bytes!("../console/vendor/sm3.js"),
    ),
    (
        "/vendor/sm-crypto-LICENCE_MIT",
        "text/plain; charset=utf-8",
        include_bytes!("../console/vendor/sm-crypto-LICENCE_MIT"),
    ),
];

/// Returns the content type and bytes of the console asset at `path` (`/` is `index.html`), or
/// `None`: the console never answers under `/v1/` or for `/openapi.json`, which are the API's.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, t, b)| (*t, *b))
}

/// Every asset path, for tests and for the size report.
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(p, _, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::{Digest, PublicKey, Signature, UserId};
    use crypto_sm::rng::SystemRandom;
    use crypto_sm::sm2::PrivateKey;
    use serde_json::{Value, json};

    #[test]
    fn assets_stay_outside_the_api_and_root_is_the_page() {
        assert_eq!(asset("/").unwrap().1, asset("/index.html").unwrap().1);
        for p in asset_paths() {
            assert!(p.starts_with('/') && !p.starts_with("/v1/") && p != "/openapi.json");
            assert!(!asset(p).unwrap().1.is_empty(), "{p}");
        }
        assert!(asset("/v1/status").is_none() && asset("/openapi.json").is_none());
        assert!(asset("/../Cargo.toml").is_none());
    }

    /// No inline script or style, no eval: the page runs under the CSP.
    #[test]
    fn the_page_runs_under_its_content_security_policy() {
        let html = std::str::from_utf8(asset("/").unwrap().1).unwrap();
        assert!(
            html.contains(
                CONTENT_SECURITY_POLICY
                    .split("; frame-ancestors")
                    .next()
                    .unwrap()
            )
        );
        for needle in ["<script>", " style=", "onclick=", "onload=", "javascript:"] {
            assert!(!html.contains(needle), "index.html contains {needle}");
        }
        for p in asset_paths().filter(|p| p.ends_with(".js") && !p.starts_with("/vendor/")) {
            let js = std::str::from_utf8(asset(p).unwrap().1).unwrap();
            for needle in ["eval(", "new Function", "innerHTML", "http://", "https://"] {
                assert!(!js.contains(needle), "{p} contains {needle}");
            }
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    fn vectors() -> Value {
        let rng = SystemRandom;
        let sm3: Vec<Value> = [0usize, 1, 3, 55, 56, 63, 64, 65, 1000, 100_000]
            .iter()
            .map(|&n| json!({"len": n, "sm3": crypto_sm::sm3::sm3(&pattern(n)).to_hex()}))
            .collect();
        let ids: [&[u8]; 3] = [b"1234567812345678", b"alice@agency-1", &[0xff, 0x00, 0x80]];
        let mut sm2 = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let key = PrivateKey::generate(&rng).unwrap();
            let other = PrivateKey::generate(&rng).unwrap();
            let uid = UserId::new(id.to_vec()).unwrap();
            let msg = pattern(10 + i * 100);
            let sig = key.sign(&uid, &msg, &rng).unwrap();
            let pk = hex::encode(key.public_key().as_bytes());
            let v = |what: &str, key: &str, id: &[u8], msg: &[u8], sig: &[u8]| {
                json!({"case": what, "public_key": key, "user_id": hex::encode(id),
                       "message": hex::encode(msg), "signature": hex::encode(sig)})
            };
            let der = sig.to_der();
            sm2.push(v("valid", &pk, id, &msg, &der));
            let mut tampered = der.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            sm2.push(v("tampered signature", &pk, id, &msg, &tampered));
            let mut m2 = msg.clone();
            m2[0] ^= 1;
            sm2.push(v("other message", &pk, id, &m2, &der));
            sm2.push(v("other user id", &pk, b"1234567812345679", &msg, &der));
            let opk = hex::encode(other.public_key().as_bytes());
            sm2.push(v("other key", &opk, id, &msg, &der));
            // r = 0 and s = n: outside [1, n-1]; a padded INTEGER: not strict DER.
            sm2.push(v(
                "r = 0",
                &pk,
                id,
                &msg,
                &hex::decode("3006020100020101").unwrap(),
            ));
            let n = "00fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123";
            let s_n = format!("3026020101022100{}", &n[2..]);
            sm2.push(v("s = n", &pk, id, &msg, &hex::decode(s_n).unwrap()));
            let mut padded = vec![0x30, der[1] + 1, 0x02, der[3] + 1, 0x00];
            padded.extend_from_slice(&der[4..]);
            sm2.push(v("non-minimal DER", &pk, id, &msg, &padded));
            let mut off = key.public_key().as_bytes().to_vec();
            off[64] ^= 1;
            sm2.push(v("key not on the curve", &hex::encode(off), id, &msg, &der));
        }
        let vote = types::Vote {
            chain_id: types::ChainId::new("dev-chain").unwrap(),
            height: types::Height(0x0102_0304_0506),
            round: 3,
            kind: types::VoteKind::Precommit,
            block: Some(types::BlockHash(crypto_sm::sm3::sm3(b"block"))),
            validator: crypto_sm::sm3::sm3(b"validator"),
        };
        let mut merkle = Vec::new();
        for size in 0usize..=9 {
            let entries: Vec<Digest> = (0..size).map(|i| crypto_sm::sm3::sm3(&[i as u8])).collect();
            let leaves: Vec<Digest> = entries
                .iter()
                .map(|e| types::merkle::leaf_hash(e.as_bytes()))
                .collect();
            let proofs: Vec<Value> = (0..size)
                .map(|i| {
                    let p = types::merkle::prove(&leaves, i).unwrap();
                    json!(p.path.iter().map(Digest::to_hex).collect::<Vec<_>>())
                })
                .collect();
            merkle.push(json!({
                "entries": entries.iter().map(Digest::to_hex).collect::<Vec<_>>(),
                "root": types::merkle::root(&entries.iter().map(|e| e.0).collect::<Vec<_>>()).to_hex(),
                "proofs": proofs,
            }));
        }
        json!({
            "about": "SM3, SM2 and ledger encodings computed by gmchain's Rust (crates/node/src/console.rs); the console test checks the browser's against them. Regenerate with GMCHAIN_BLESS_CONSOLE_VECTORS=1 cargo test -p node console.",
            "sm3_input": "byte i = (31 i + 7) mod 256",
            "sm3": sm3,
            "sm2": sm2,
            "precommit": {
                "chain_id": "dev-chain", "height": vote.height.0.to_string(), "round": vote.round,
                "block": hex::encode(vote.block.unwrap().as_bytes()), "validator": vote.validator.to_hex(),
                "signing_bytes": hex::encode(vote.signing_bytes()),
            },
            "merkle": merkle,
        })
    }

    fn valid_in_rust(v: &Value) -> bool {
        let h = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
        let Ok(key) = PublicKey::from_uncompressed(&h("public_key")) else {
            return false;
        };
        let Ok(sig) = Signature::from_der(&h("signature")) else {
            return false;
        };
        if sig.to_der() != h("signature") {
            return false;
        }
        let id = UserId::new(h("user_id")).unwrap();
        crypto_sm::sm2::verify(&key, &id, &h("message"), &sig).is_ok()
    }

    /// The vectors the browser test compares sm-crypto (through console/gm.js) with: SM3 equal
    /// to Rust's, SM2 signatures by crypto-sm that Rust accepts exactly when the case is
    /// "valid", the precommit bytes and Merkle proofs of `types`. Signatures are random, so
    /// the file is written once (bless) and checked against Rust on every run.
    #[test]
    fn console_vectors_agree_with_rust() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console/test/vectors.json");
        if std::env::var_os("GMCHAIN_BLESS_CONSOLE_VECTORS").is_some() {
            let text = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
        }
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let fresh = vectors();
        assert_eq!(file["sm3"], fresh["sm3"]);
        assert_eq!(file["precommit"], fresh["precommit"]);
        assert_eq!(file["merkle"], fresh["merkle"]);
        let cases = file["sm2"].as_array().unwrap();
        assert_eq!(cases.len(), 27);
        for c in cases {
            assert_eq!(valid_in_rust(c), c["case"] == "valid", "{c}");
        }
    }
}
