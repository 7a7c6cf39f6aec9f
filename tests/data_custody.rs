//! What a custodian keeps and what it never keeps (issue 15, Tests): a publish cut by SIGKILL
//! loses no acknowledged version or blob and leaves nothing half-written servable; no plaintext
//! byte of a payload or of confidential metadata reaches the chain's store (its files and every
//! table read back through the store API), the blob store or the node's log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crypto::RandomSource;
use crypto_sm::rng::SystemRandom;
use storage::KvBackend;

use crate::dev_node::{Chain, Node, dev_chain_orgs, log_of};
use crate::governance::{run_ok, strings};

fn sender(chain: &Chain, key: &str, cert: &str) -> Vec<String> {
    strings(&[
        "--key",
        key,
        "--pass-file",
        "pass",
        "--cert",
        cert,
        "--node",
        &chain.grpc,
    ])
}

fn admin(chain: &Chain) -> Vec<String> {
    sender(chain, "admin.key.pem", "admin.crt.pem")
}

/// The dev chain's second organisation's user, with its encryption pair.
fn org2_user(chain: &Chain) -> Vec<String> {
    sender(chain, "orgs/2.user.key.pem", "orgs/2.user.crt.pem")
}

fn with(mut a: Vec<String>, more: Vec<String>) -> Vec<String> {
    a.extend(more);
    a
}

fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    SystemRandom.fill(&mut b).unwrap();
    b
}

/// Records the node's endpoint (its node-enc certificate) for the admin's organisation.
fn endpoint(chain: &Chain) {
    run_ok(
        &chain.dir,
        &with(
            strings(&[
                "data",
                "endpoint",
                "--address",
                &chain.grpc,
                "--enc-cert",
                "node.enc.crt.pem",
            ]),
            admin(chain),
        ),
    );
}

fn publish(chain: &Chain, file: &Path, name: &str, extra: &[&str]) -> String {
    let mut a = strings(&[
        "data",
        "publish",
        file.to_str().unwrap(),
        "--name",
        name,
        "--class",
        "unconditional",
    ]);
    a.extend(strings(extra));
    run_ok(&chain.dir, &with(a, admin(chain)))
}

/// Organisation 2's user requests `dataset` (unconditional: granted at once) and fetches it
/// to `out`.
fn request_and_fetch(chain: &Chain, dataset: &str, out: &Path, request: bool) {
    if request {
        run_ok(
            &chain.dir,
            &with(
                strings(&[
                    "data",
                    "request",
                    dataset,
                    "--purpose",
                    "checks",
                    "--enc-cert",
                    "orgs/2.user.enc.crt.pem",
                ]),
                org2_user(chain),
            ),
        );
    }
    run_ok(&chain.dir, &fetch_args(chain, dataset, out));
}

/// `data fetch` of `dataset` to `out` by organisation 2's user.
fn fetch_args(chain: &Chain, dataset: &str, out: &Path) -> Vec<String> {
    strings(&[
        "data",
        "fetch",
        dataset,
        "--enc-key",
        "orgs/2.user.enc.key.pem",
        "--enc-pass-file",
        "pass",
        "--out",
        out.to_str().unwrap(),
        "--node",
        &chain.grpc,
        "--tls-key",
        "orgs/2.user.key.pem",
        "--tls-pass-file",
        "pass",
        "--tls-cert",
        "orgs/2.user.crt.pem",
    ])
}

fn blobs_dir(chain: &Chain) -> PathBuf {
    chain.dir.join("data/blobs")
}

/// The blob store's entries: (complete blobs, other files but the lock: temporaries, whose
/// names start with safefile's prefix and may end like the blob's).
fn blob_files(chain: &Chain) -> (Vec<String>, Vec<String>) {
    let (mut blobs, mut other) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(blobs_dir(chain)).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".blob") && !name.starts_with(safefile::TEMP_PREFIX) {
            blobs.push(name);
        } else if name != ".lock" {
            other.push(name);
        }
    }
    blobs.sort();
    (blobs, other)
}

fn show(chain: &Chain, dataset: &str) -> serde_json::Value {
    let out = run_ok(
        &chain.dir,
        &strings(&["data", "show", dataset, "--json", "--node", &chain.grpc]),
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_publish_cut_by_sigkill_loses_no_acknowledged_version_and_serves_nothing_half_written() {
    let chain = dev_chain_orgs(0, 2);
    let mut node = Node::start(&chain);
    endpoint(&chain);
    let first = chain.dir.join("first.bin");
    std::fs::write(&first, random(2 * 1024 * 1024 + 5)).unwrap();
    publish(&chain, &first, "first", &[]);
    let shown = show(&chain, "Dev Bureau/first");
    let blob = format!(
        "{}.blob",
        shown["versions"][0]["payload_sm3"].as_str().unwrap()
    );
    assert_eq!(blob_files(&chain).0, vec![blob.clone()]);

    // A large publish, killed (the node) while its payload is being uploaded.
    let big = chain.dir.join("big.bin");
    std::fs::write(&big, random(96 * 1024 * 1024)).unwrap();
    let mut args = strings(&[
        "data",
        "publish",
        big.to_str().unwrap(),
        "--name",
        "big",
        "--class",
        "unconditional",
    ]);
    args.extend(admin(&chain));
    let mut publisher = Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(&chain.dir)
        .env("GMCHAIN_CLIENT_PROFILE", chain.dir.join("client.toml"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut partial = 0u64;
    while partial == 0 {
        assert!(
            Instant::now() < deadline,
            "no upload of the big payload was seen"
        );
        if publisher.try_wait().unwrap().is_some() {
            let out = publisher.wait_with_output().unwrap();
            panic!(
                "the publish ended before the node could be killed mid-upload: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for name in blob_files(&chain).1 {
            let len = std::fs::metadata(blobs_dir(&chain).join(&name))
                .map(|m| m.len())
                .unwrap_or(0);
            if len > 0 {
                partial = len;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    node.signal("-KILL");
    let out = publisher.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "the publish cannot succeed without its node"
    );
    // The upload was cut: a temporary holds part of it, no blob is complete.
    let (blobs, temps) = blob_files(&chain);
    assert_eq!(blobs, vec![blob.clone()], "only the acknowledged blob");
    assert!(!temps.is_empty() && partial < 96 * 1024 * 1024);

    // Restarted: the temporary is gone, the acknowledged version and its blob are whole and
    // served, and the cut dataset has no version to fetch.
    drop(node);
    let _node = Node::start(&chain);
    assert!(
        log_of(&chain).contains("removed 1 upload(s) a crash interrupted"),
        "{}",
        log_of(&chain)
    );
    assert_eq!(blob_files(&chain), (vec![blob.clone()], Vec::new()));
    let fetched = chain.dir.join("first.out");
    request_and_fetch(&chain, "Dev Bureau/first", &fetched, true);
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&first).unwrap()
    );
    // A new version re-keys: the data keys of versions 1 and 2, opened from their custodian
    // envelopes with the node's encryption key, differ; the grantee fetches version 2.
    publish(&chain, &first, "first", &[]);
    std::fs::remove_file(&fetched).unwrap();
    run_ok(
        &chain.dir,
        &fetch_args(&chain, "Dev Bureau/first", &fetched),
    );
    let node_key = {
        let pem = std::fs::read(chain.dir.join("node.enc.key.pem")).unwrap();
        crypto_sm::keys::decode_private_key(&pem, Some(crate::dev_node::PASS)).unwrap()
    };
    let shown = show(&chain, "Dev Bureau/first");
    let keys: Vec<Vec<u8>> = shown["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let env = hex::decode(v["custodian_envelope"].as_str().unwrap()).unwrap();
            let key = crypto_sm::sm2::decrypt(&node_key, &env, crypto::CipherFormat::Der).unwrap();
            key.expose().to_vec()
        })
        .collect();
    assert_eq!(keys.len(), 2, "{shown}");
    assert_eq!(keys[0].len(), 16);
    assert_ne!(keys[0], keys[1], "a new version re-keys");
    // The fetch log names each released envelope by its SM3, never the envelope itself.
    let log: serde_json::Value = serde_json::from_str(&run_ok(
        &chain.dir,
        &strings(&[
            "data",
            "log",
            "Dev Bureau/first",
            "--json",
            "--node",
            &chain.grpc,
        ]),
    ))
    .unwrap();
    let versions: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "served")
        .map(|r| {
            assert_eq!(r["envelope_sm3"].as_str().unwrap().len(), 64, "{r}");
            r["version"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(versions, vec![1, 2], "{log}");

    // A payload altered on the custodian's disk is refused by the fetching client, which
    // writes nothing.
    let blob_path = blobs_dir(&chain).join(&blob);
    let mut stored = std::fs::read(&blob_path).unwrap();
    stored[1000] ^= 1;
    std::fs::write(&blob_path, &stored).unwrap();
    std::fs::remove_file(&fetched).unwrap();
    let mut args = fetch_args(&chain, "Dev Bureau/first", &fetched);
    args.extend(strings(&["--dataset-version", "1"]));
    crate::dev_node::fails(
        &chain.dir,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        1,
        "EXCHANGE_VERIFY_FAILED",
    );
    assert!(
        !fetched.exists(),
        "nothing is written from an altered payload"
    );

    let o = crate::dev_node::gm(
        &chain.dir,
        &strings(&[
            "data",
            "show",
            "Dev Bureau/big",
            "--json",
            "--node",
            &chain.grpc,
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    if o.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["versions"].as_array().map(Vec::len), Some(0), "{v}");
    } else {
        assert!(String::from_utf8_lossy(&o.stderr).contains("EXCHANGE_DATASET_UNKNOWN"));
    }
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.is_file() {
            // Regular files only: the node's admin socket (admin.sock) holds no bytes at rest.
            out.push(p);
        }
    }
}

#[test]
fn no_plaintext_of_a_payload_or_of_confidential_metadata_reaches_the_store_blobs_or_log() {
    let chain = dev_chain_orgs(0, 2);
    // The node logs at debug level, so that its log says as much as it ever does.
    let config = std::fs::read_to_string(chain.dir.join("node.toml")).unwrap();
    std::fs::write(
        chain.dir.join("node.toml"),
        config.replace("level = \"warn\"", "level = \"debug\""),
    )
    .unwrap();
    let mut node = Node::start(&chain);
    endpoint(&chain);
    let marker = random(32);
    let marker_hex = hex::encode(&marker);
    // The payload: random bytes with the marker in each of its three chunks; the confidential
    // title and description carry it as text.
    let mut plain = random(2 * 1024 * 1024 + 100);
    for at in [10, 1024 * 1024 + 7, 2 * 1024 * 1024 + 50] {
        plain[at..at + 32].copy_from_slice(&marker);
    }
    let file = chain.dir.join("secret.bin");
    std::fs::write(&file, &plain).unwrap();
    publish(
        &chain,
        &file,
        "marked",
        &[
            "--confidential",
            "--title",
            &format!("title {marker_hex}"),
            "--description",
            &format!("description {marker_hex}"),
        ],
    );
    let fetched = chain.dir.join("fetched.bin");
    request_and_fetch(&chain, "Dev Bureau/marked", &fetched, true);
    assert_eq!(std::fs::read(&fetched).unwrap(), plain);
    std::fs::remove_file(&fetched).unwrap();
    std::fs::remove_file(&file).unwrap();
    // Killed, so that what the node wrote last is still in RocksDB's write-ahead log.
    node.signal("-KILL");
    drop(node);

    let needles: [&[u8]; 2] = [&marker, marker_hex.as_bytes()];
    // The search finds the marker where it is (the search can fail).
    assert!(contains(&plain, &marker));
    // Every file of the store (RocksDB's tables, WAL, manifest) and of the blob store.
    let mut files = Vec::new();
    files_under(&chain.dir.join("data"), &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "log")),
        "a RocksDB write-ahead log"
    );
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "blob"))
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for n in needles {
            assert!(!contains(&bytes, n), "the marker is in {}", f.display());
        }
    }
    // Every table read back through the store API (RocksDB may compress its files).
    let db = storage_rocksdb::RocksBackend::open(&chain.dir.join("data/db"), false).unwrap();
    let mut values = 0;
    let mut seen_dataset = false;
    for table in storage::Table::ALL {
        for (k, v) in db.iter_prefix(table, b"").unwrap() {
            values += 1;
            seen_dataset |= contains(&v, b"Dev Bureau") && contains(&v, b"marked");
            for n in needles {
                assert!(
                    !contains(&k, n) && !contains(&v, n),
                    "the marker is in table {}",
                    table.name()
                );
            }
        }
    }
    assert!(values > 100, "{values} values read back");
    assert!(seen_dataset, "the store API reads the catalogue's records");
    // The node's log.
    let log = log_of(&chain);
    assert!(log.contains("fetch served"), "the log is at debug level");
    for n in needles {
        assert!(
            !contains(log.as_bytes(), n),
            "the marker is in the node's log"
        );
    }
}
