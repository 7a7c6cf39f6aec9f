//! `gmchain data fetch` with the grantee's encryption key in a PKCS#11 token (issue 15, Tests:
//! "the envelope opened with the grantee's key held in the soft token; a wrong recipient
//! cannot open it"), and a fetch from a node that cannot be reached.
//!
//! Second Bureau is an agency whose keys never leave tokens: its CA key is in the CA's token
//! (a `gmchain ca` directory at the CA's site, outside the chain's directory), and each of its
//! people holds a token with a signing key that also unwraps (`keys generate --usage
//! sign-unwrap`). The CA issues their dual pairs (`ca issue --dual`); `keys import-envelope`
//! unwraps each encryption key inside its holder's token. The user signs its request, opens
//! its TLS session and decrypts the data key with token keys only. The one step outside the
//! CLI is the dev root's signature on the agency CA's certificate: the dev chain's root is a
//! key file, not a `gmchain ca` directory, so `ca intermediate` cannot run on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crypto::RandomSource;
use crypto_sm::rng::SystemRandom;
use pki::{IssueRequest, Role, Serial, UnixTime};

use crate::demo_pki::{repo, softtoken_module};
use crate::dev_node::{Chain, Node, PASS, dev_chain, free_port, identity, now_secs};
use crate::governance::{hex_after, run_ok, sender, strings};

const ORG: &str = "Second Bureau";

/// The files holding the user PIN of every token here and the security officer's, and the
/// user PIN itself.
const USER_PIN: &str = "user.pin";
const SO_PIN: &str = "so.pin";
const USER_PIN_VALUE: &[u8] = b"user-pin-1234";
/// The passphrase of the CA's escrow copies of the encryption keys it generates.
const ESCROW_PASS: &[u8] = b"escrow-passphrase";

fn profile() -> String {
    repo()
        .join("hsm-profiles/gmchain-softtoken.toml")
        .to_str()
        .unwrap()
        .to_string()
}

/// `gmchain` in the chain's directory (its admin's client profile for the TLS trust) with the
/// soft token's slots in `tokens`.
fn gm_tokens(chain: &Chain, tokens: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(&chain.dir)
        .env("GMCHAIN_CLIENT_PROFILE", chain.dir.join("client.toml"))
        .env("GMCHAIN_SOFTTOKEN_DIR", tokens)
        .env("GMCHAIN_PKCS11_MODULE", softtoken_module())
        .env("GMCHAIN_OPERATOR", "test-operator")
        .args(args)
        .output()
        .expect("run gmchain")
}

fn ok_tokens(chain: &Chain, tokens: &Path, args: &[String]) -> String {
    let o = gm_tokens(chain, tokens, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "gmchain {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn with(mut a: Vec<String>, more: Vec<String>) -> Vec<String> {
    a.extend(more);
    a
}

/// Initialises the token `label` in `tokens` and generates its key `key` with `usage`;
/// returns the key's `pkcs11:` URI.
fn token_with_key(chain: &Chain, tokens: &Path, label: &str, key: &str, usage: &str) -> String {
    let p = profile();
    ok_tokens(
        chain,
        tokens,
        &strings(&[
            "keys",
            "init-token",
            "--hsm-profile",
            &p,
            "--label",
            label,
            "--so-pass-file",
            SO_PIN,
            "--pass-file",
            USER_PIN,
        ]),
    );
    ok_tokens(
        chain,
        tokens,
        &strings(&[
            "keys",
            "generate",
            "--hsm-profile",
            &p,
            "--token-label",
            label,
            "--label",
            key,
            "--usage",
            usage,
            "--pass-file",
            USER_PIN,
        ]),
    )
    .trim()
    .to_string()
}

/// A certification request for the token key `uri`, signed inside the token, at `out`.
fn csr(chain: &Chain, tokens: &Path, uri: &str, cn: &str, out: &str) {
    ok_tokens(
        chain,
        tokens,
        &strings(&[
            "keys",
            "csr",
            "--hsm-profile",
            &profile(),
            "--key",
            uri,
            "--pass-file",
            USER_PIN,
            "--subject",
            &format!("CN={cn}"),
            "--out",
            out,
        ]),
    );
}

/// Second Bureau's CA: its key in the CA's token at `ca_site`, its certificate signed by the
/// dev root (the sponsor), its `gmchain ca` directory `ca_site/second-ca`. Returns the
/// directory.
fn agency_ca(chain: &Chain, ca_site: &Path) -> PathBuf {
    let tokens = ca_site.join("tokens");
    let uri = token_with_key(chain, &tokens, "second-ca", "ca", "sign");
    csr(chain, &tokens, &uri, "Second Bureau CA", "second-ca.csr");
    let request =
        pki::csr::verify(&std::fs::read(chain.dir.join("second-ca.csr")).unwrap()).unwrap();
    let (root_key, root) = identity(&chain.dir, "ca");
    let now = now_secs();
    let cert = pki::issue(
        &root,
        &root_key,
        &IssueRequest {
            role: Role::AgencyCa,
            common_name: "Second Bureau CA",
            organisation: ORG,
            public_key: &request.public_key,
            serial: Serial::random(&SystemRandom).unwrap(),
            validity: pki::Validity {
                not_before: UnixTime(now - 600).max(root.validity().not_before),
                not_after: UnixTime(now + 86400 * 800).min(root.validity().not_after),
            },
        },
    )
    .unwrap();
    std::fs::write(chain.dir.join("second-ca.crt.pem"), cert.to_pem()).unwrap();
    let dir = ca_site.join("second-ca");
    ok_tokens(
        chain,
        &tokens,
        &strings(&[
            "ca",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--name",
            "Second Bureau CA",
            "--org",
            ORG,
            "--cert",
            "second-ca.crt.pem",
            "--chain",
            "ca.crt.pem",
            "--key",
            &uri,
            "--hsm-profile",
            &profile(),
            "--pass-file",
            USER_PIN,
        ]),
    );
    dir
}

/// `gmchain ca …` on Second Bureau's CA directory `ca` (its key in the CA's token).
fn ca_cmd(chain: &Chain, ca: &Path, command: &str, more: &[&str]) -> String {
    let tokens = ca.parent().unwrap().join("tokens");
    let mut a = strings(&["ca", command, "--dir", ca.to_str().unwrap()]);
    a.extend(strings(more));
    a.extend(strings(&["--pass-file", USER_PIN]));
    ok_tokens(chain, &tokens, &a)
}

/// A person of Second Bureau with a dual pair whose keys live in the token `cn` (in the
/// people's token directory): the signing key (`sign`, which also unwraps) and the imported
/// encryption key (`enc`). Certificates `cn.pem` and `cn.enc.pem` in the chain's directory.
struct Holder {
    cn: &'static str,
    sign: String,
    enc: String,
}

fn holder(chain: &Chain, ca: &Path, tokens: &Path, cn: &'static str) -> Holder {
    let sign = token_with_key(chain, tokens, cn, "sign", "sign-unwrap");
    let request = format!("{cn}.csr");
    csr(chain, tokens, &sign, cn, &request);
    ca_cmd(
        chain,
        ca,
        "issue",
        &[
            "--role",
            "user",
            "--csr",
            &request,
            "--out",
            &format!("{cn}.pem"),
            "--dual",
            "--escrow-pass-file",
            "escrow.pass",
            "--validity-days",
            "30",
        ],
    );
    let enc = ok_tokens(
        chain,
        tokens,
        &strings(&[
            "keys",
            "import-envelope",
            "--hsm-profile",
            &profile(),
            "--key",
            &sign,
            "--envelope",
            &format!("{cn}.envelope.der"),
            "--cert",
            &format!("{cn}.enc.pem"),
            "--label",
            "enc",
            "--pass-file",
            USER_PIN,
        ]),
    )
    .trim()
    .to_string();
    assert!(enc.contains(&format!("token={cn};object=enc")), "{enc}");
    Holder { cn, sign, enc }
}

/// The signing options of `h` (its key in its token).
fn token_sender(chain: &Chain, h: &Holder) -> Vec<String> {
    strings(&[
        "--key",
        &h.sign,
        "--hsm-profile",
        &profile(),
        "--pass-file",
        USER_PIN,
        "--cert",
        &format!("{}.pem", h.cn),
        "--node",
        &chain.grpc,
    ])
}

/// `data fetch` of `dataset` to `out`, the TLS session as `tls` and the data key opened with
/// the token key `enc_key`, all in the people's tokens.
fn token_fetch(
    chain: &Chain,
    tls: &Holder,
    enc_key: &str,
    dataset: &str,
    out: &Path,
) -> Vec<String> {
    let p = profile();
    strings(&[
        "data",
        "fetch",
        dataset,
        "--enc-key",
        enc_key,
        "--enc-hsm-profile",
        &p,
        "--enc-pass-file",
        USER_PIN,
        "--out",
        out.to_str().unwrap(),
        "--node",
        &chain.grpc,
        "--tls-key",
        &tls.sign,
        "--tls-hsm-profile",
        &p,
        "--tls-pass-file",
        USER_PIN,
        "--tls-cert",
        &format!("{}.pem", tls.cn),
    ])
}

/// The names in `dir` (not below it): where a fetch stages its plaintext beside `--out`.
fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
}

/// The files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.is_file() {
                // Regular files only: the node's admin socket (admin.sock) holds no bytes.
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The files under `dir` holding an SM2 private key (PEM or DER, plain or encrypted with one
/// of `passes`) whose public key is `public`; and how many private key files were read.
fn private_keys_of(
    dir: &Path,
    public: &crypto::PublicKey,
    passes: &[&[u8]],
) -> (Vec<PathBuf>, usize) {
    let (mut found, mut read) = (Vec::new(), 0);
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let keys: Vec<crypto_sm::sm2::PrivateKey> = std::iter::once(None)
            .chain(passes.iter().map(|p| Some(*p)))
            .filter_map(|p| crypto_sm::keys::decode_private_key(&bytes, p).ok())
            .collect();
        if !keys.is_empty() {
            read += 1;
        }
        if keys.iter().any(|k| &k.public_key() == public) {
            found.push(f);
        }
    }
    (found, read)
}

/// A file of `len` random bytes.
fn document(dir: &Path, name: &str, len: usize) -> PathBuf {
    let mut bytes = vec![0u8; len];
    SystemRandom.fill(&mut bytes).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    path
}

#[test]
fn a_grantee_opens_the_envelope_in_its_token_and_a_wrong_recipients_token_cannot() {
    let chain = dev_chain(1);
    let dir = chain.dir.clone();
    let _node = Node::start(&chain);
    std::fs::write(dir.join(USER_PIN), [USER_PIN_VALUE, b"\n"].concat()).unwrap();
    std::fs::write(dir.join(SO_PIN), "so-pin-1234\n").unwrap();
    std::fs::write(dir.join("escrow.pass"), [ESCROW_PASS, b"\n"].concat()).unwrap();

    // Second Bureau: its CA at its own site, its admin, its CRL, registered on the chain.
    let ca_site = tempfile::tempdir().unwrap();
    let ca = agency_ca(&chain, ca_site.path());
    ca_cmd(
        &chain,
        &ca,
        "issue",
        &[
            "--role",
            "admin",
            "--generate",
            "--name",
            "second-admin",
            "--key-out",
            "second-admin.key.pem",
            "--key-pass-file",
            "pass",
            "--out",
            "second-admin.crt.pem",
            "--validity-days",
            "30",
        ],
    );
    ca_cmd(&chain, &ca, "crl", &["--out", "second-ca.crl.pem"]);
    run_ok(
        &dir,
        &with(
            strings(&[
                "tx",
                "identity",
                "register-org",
                "--ca-cert",
                "second-ca.crt.pem",
                "--crl",
                "second-ca.crl.pem",
            ]),
            sender(&chain, "second-admin"),
        ),
    );

    // Its user and a colleague, each with a token of its own (two slots of one machine).
    let tokens = dir.join("people-tokens");
    let user = holder(&chain, &ca, &tokens, "second-user");
    let clerk = holder(&chain, &ca, &tokens, "second-clerk");

    // The owner records its custodian, publishes; the user asks with its token's signature
    // and its user-enc certificate; the owner's admin grants.
    run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "endpoint",
                "--address",
                &chain.grpc,
                "--enc-cert",
                "node.enc.crt.pem",
            ]),
            sender(&chain, "admin"),
        ),
    );
    // Over one upload chunk (1 MiB), not a multiple of anything.
    let permits = document(&dir, "permits.bin", (1 << 20) + 4099);
    run_ok(
        &dir,
        &with(
            strings(&[
                "data",
                "publish",
                permits.to_str().unwrap(),
                "--name",
                "permits",
            ]),
            sender(&chain, "admin"),
        ),
    );
    let out = ok_tokens(
        &chain,
        &tokens,
        &with(
            strings(&[
                "data",
                "request",
                "Dev Bureau/permits",
                "--purpose",
                "permit checks",
                "--enc-cert",
                "second-user.enc.pem",
            ]),
            token_sender(&chain, &user),
        ),
    );
    let request = hex_after(&out, "request ");
    run_ok(
        &dir,
        &with(
            strings(&["data", "grant", &request, "--blocks", "100000"]),
            sender(&chain, "admin"),
        ),
    );

    // The grantee's fetch: TLS and decryption in its token; the bytes are the owner's.
    let fetched = dir.join("fetched.bin");
    let o = gm_tokens(
        &chain,
        &tokens,
        &token_fetch(&chain, &user, &user.enc, "Dev Bureau/permits", &fetched),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let (got, published) = (
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&permits).unwrap(),
    );
    assert!(
        got == published,
        "fetched {} bytes, not the published {} bytes",
        got.len(),
        published.len()
    );
    assert!(err.contains("verified") && err.contains(&request), "{err}");

    // The key that opened it exists only in the token: sensitive, never extractable, and no
    // file on the holder's side (the chain's directory, the tokens' files included) holds it
    // in any readable form. The same search finds the CA's escrow copy at the CA's site, so it
    // would find a copy.
    let check = ok_tokens(
        &chain,
        &tokens,
        &strings(&[
            "keys",
            "check",
            "--hsm-profile",
            &profile(),
            "--token-label",
            user.cn,
            "--key",
            &user.enc,
            "--pass-file",
            USER_PIN,
        ]),
    );
    for (attribute, value) in [("CKA_SENSITIVE", "true"), ("CKA_EXTRACTABLE", "false")] {
        let row = check
            .lines()
            .find(|l| l.contains("key \"enc\"") && l.contains(attribute))
            .unwrap_or_else(|| panic!("no {attribute} row in {check}"));
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"ok"), "{row}");
        assert_eq!(words.last(), Some(&value), "{row}");
    }
    let enc_public =
        pki::Certificate::from_pem(&std::fs::read(dir.join("second-user.enc.pem")).unwrap())
            .unwrap()
            .public_key();
    let passes: [&[u8]; 3] = [PASS, ESCROW_PASS, USER_PIN_VALUE];
    let (copies, read) = private_keys_of(&dir, &enc_public, &passes);
    assert!(copies.is_empty(), "the user-enc key in a file: {copies:?}");
    assert!(
        read >= 3,
        "only {read} private key files were read in {}",
        dir.display()
    );
    let (escrowed, _) = private_keys_of(ca_site.path(), &enc_public, &passes);
    assert_eq!(escrowed.len(), 1, "{escrowed:?}");

    // A wrong recipient: the colleague's token key (a real user-enc key of Second Bureau)
    // cannot open the envelope made for the grantee's certificate: the token itself refuses
    // the ciphertext (C3). Exit 1, one line naming the envelope and the key; nothing at a new
    // --out, an existing --out unchanged, no file left beside them.
    let existing = dir.join("kept.bin");
    std::fs::write(&existing, b"an existing file\n").unwrap();
    let fresh = dir.join("wrong.bin");
    let before = entries(&dir);
    for out in [&fresh, &existing] {
        let o = gm_tokens(
            &chain,
            &tokens,
            &token_fetch(&chain, &user, &clerk.enc, "Dev Bureau/permits", out),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("EXCHANGE_VERIFY_FAILED")
                && err.contains("envelope")
                && err.contains("--enc-key")
                && err.contains("the token rejected"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    assert!(!fresh.exists());
    assert_eq!(std::fs::read(&existing).unwrap(), b"an existing file\n");
    assert_eq!(entries(&dir), before, "a file was left beside --out");

    // The custodian unreachable at the address given: exit 3, one line naming it, no file.
    let closed = format!("127.0.0.1:{}", free_port());
    let o = gm_tokens(
        &chain,
        &tokens,
        &with(
            token_fetch(&chain, &user, &user.enc, "Dev Bureau/permits", &fresh),
            strings(&["--exchange-node", &closed]),
        ),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains(&closed), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!fresh.exists());
}

/// `data fetch` whose `--node` nothing listens on: exit 3 and one line naming the node, before
/// anything is written.
#[test]
fn a_fetch_from_a_node_that_cannot_be_reached_exits_3_naming_it() {
    let chain = dev_chain(1);
    let dir = chain.dir.clone();
    let closed = format!("127.0.0.1:{}", free_port());
    let out = dir.join("fetched.bin");
    let o = crate::dev_node::gm(
        &dir,
        &[
            "data",
            "fetch",
            "Dev Bureau/anything",
            "--enc-key",
            "admin.enc.key.pem",
            "--enc-pass-file",
            "pass",
            "--out",
            out.to_str().unwrap(),
            "--node",
            &closed,
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains(&closed), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!out.exists());
}
