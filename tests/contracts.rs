//! WASM contracts through the CLI and the node API (issue 14 item 5), against a node process:
//! a contract deployed by the admins of two organisations voting (`gmchain contract deploy`,
//! `gmchain gov vote`), called twice (state, fuel, events), queried read-only as the client's
//! certificate, shown, its events found by contract and topic (and streamed), a failing call
//! (exit 1 with its receipt), refusals (fuel above the chain's maximum, a frozen contract,
//! a float module refused before anything is sent), `gov list` and the metrics.

use std::path::Path;
use std::time::Duration;

use api::v1 as pb;

use crate::dev_node::{Chain, Node, client, dev_chain, fails, log_of, ok, scrape};
use crate::governance::{hex_after, register_bureau, register_second_bureau, sender, strings};

/// A counter contract. `add` (argument: a u64) adds to the u64 under key `n` (stored
/// big-endian), emits `added` with topic `total` and the new value as data, and returns the
/// new value; `get` returns it; `who` returns the caller's encoding; anything else aborts.
const COUNTER: &str = r#"(module
  (import "gmchain" "input_read" (func $input_read (param i32)))
  (import "gmchain" "storage_read" (func $sread (param i32 i32 i32 i32) (result i32)))
  (import "gmchain" "storage_write" (func $swrite (param i32 i32 i32 i32)))
  (import "gmchain" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "gmchain" "caller" (func $caller (param i32 i32) (result i32)))
  (import "gmchain" "set_return" (func $set_return (param i32 i32)))
  (import "gmchain" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 100) "n")
  (data (i32.const 120) "\00\00\00\01\00\00\00\05total")
  (data (i32.const 140) "added")
  (data (i32.const 150) "no such method")
  ;; Big-endian bytes read little-endian, and back.
  (func $swap (param $x i64) (result i64)
    (local $r i64) (local $i i32)
    (loop $l
      (local.set $r (i64.or (i64.shl (local.get $r) (i64.const 8))
                            (i64.and (local.get $x) (i64.const 255))))
      (local.set $x (i64.shr_u (local.get $x) (i64.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 8))))
    (local.get $r))
  (func (export "call")
    (local $m i32)
    (call $input_read (i32.const 1024))
    (local.set $m (i32.load8_u (i32.const 1028)))
    ;; add: input = len(3) "add" count(1) len(8) value, the value at 1024 + 15.
    (if (i32.eq (local.get $m) (i32.const 97)) (then
      (drop (call $sread (i32.const 100) (i32.const 1) (i32.const 300) (i32.const 8)))
      (i64.store (i32.const 300)
        (call $swap (i64.add (call $swap (i64.load (i32.const 300)))
                             (call $swap (i64.load (i32.const 1039))))))
      (call $swrite (i32.const 100) (i32.const 1) (i32.const 300) (i32.const 8))
      (call $emit (i32.const 140) (i32.const 5) (i32.const 120) (i32.const 13)
                  (i32.const 300) (i32.const 8))
      (call $set_return (i32.const 300) (i32.const 8))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 103)) (then
      (drop (call $sread (i32.const 100) (i32.const 1) (i32.const 300) (i32.const 8)))
      (call $set_return (i32.const 300) (i32.const 8))
      (return)))
    (if (i32.eq (local.get $m) (i32.const 119)) (then
      (call $set_return (i32.const 2048) (call $caller (i32.const 2048) (i32.const 1024)))
      (return)))
    (call $abort (i32.const 150) (i32.const 14)))
)"#;

/// A module with a float instruction: refused at deployment (docs/contracts.md §1 rule 4).
const FLOAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "call") (drop (f32.const 1.5))))"#;

/// Copies the node's log beside the test's temporary directory when the test fails (the
/// chain's directory goes with it).
struct KeepLog<'a>(&'a Chain);

impl Drop for KeepLog<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let keep =
                std::env::temp_dir().join(format!("gmchain-contracts-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::write(keep.join("node.log"), log_of(self.0));
            eprintln!("node log kept in {}", keep.display());
        }
    }
}

/// `gmchain ARGS` in `dir` (its admin's client profile) as JSON.
fn json(dir: &Path, args: &[String]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(dir, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("gmchain {args:?}: {e}: {out}"))
}

/// The signing options of the dev chain's first user.
fn user(chain: &Chain) -> Vec<String> {
    strings(&[
        "--key",
        "clients/0.key.pem",
        "--pass-file",
        "pass",
        "--cert",
        "clients/0.crt.pem",
        "--node",
        &chain.grpc,
    ])
}

fn with(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    a.extend(b);
    a
}

/// Proposes `args` (a `contract …` lifecycle command) as the dev chain's admin, checks that
/// it waits for the second organisation, and votes it through as Second Bureau's admin.
fn pass(chain: &Chain, args: &[&str]) -> String {
    let dir = &chain.dir;
    let out = {
        let a = with(strings(args), sender(chain, "admin"));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok(dir, &a)
    };
    assert!(out.contains("open until height"), "{out}");
    assert!(
        out.contains("1 yes, 0 no of 2 organisation(s); 2 yes needed"),
        "{out}"
    );
    let id = hex_after(&out, "committed: proposal ");
    let vote = with(
        strings(&["gov", "vote", &id, "yes"]),
        sender(chain, "second-admin"),
    );
    let vote: Vec<&str> = vote.iter().map(String::as_str).collect();
    let out = ok(dir, &vote);
    assert!(out.contains("executed at height"), "{out}");
    id
}

/// Issue 14 item 5: a contract's life through `gmchain contract` against a node, with two
/// organisations deciding its deployment and freeze.
#[test]
fn a_contract_deployed_by_two_organisations_is_called_queried_and_its_events_found() {
    let chain = dev_chain(2);
    let dir = chain.dir.clone();
    let _node = Node::start(&chain);
    let _keep = KeepLog(&chain);
    register_second_bureau(&chain);
    let code = wat::parse_str(COUNTER).unwrap();
    std::fs::write(dir.join("counter.wasm"), &code).unwrap();
    std::fs::write(dir.join("float.wasm"), wat::parse_str(FLOAT).unwrap()).unwrap();

    // A float module is refused here, before anything is sent (exit 2, the rule's code).
    let float = with(
        strings(&["contract", "deploy", "floaty", "--code", "float.wasm"]),
        sender(&chain, "admin"),
    );
    let float: Vec<&str> = float.iter().map(String::as_str).collect();
    let err = fails(&dir, &float, 2, "CONTRACT_FLOAT");
    assert!(err.contains("float.wasm"), "{err}");
    // Not deployed yet: show is NOT_FOUND (exit 2) naming it.
    fails(
        &dir,
        &["contract", "show", "counter", "--node", &chain.grpc],
        2,
        "no deployed contract named \"counter\"",
    );

    // Deployment: proposed by Dev Bureau's admin, executed by Second Bureau's yes.
    let deploy_id = pass(
        &chain,
        &["contract", "deploy", "counter", "--code", "counter.wasm"],
    );
    let shown = json(
        &dir,
        &strings(&["contract", "show", "counter", "--node", &chain.grpc]),
    );
    assert_eq!(shown["version"], 1, "{shown}");
    assert_eq!(shown["frozen"], false, "{shown}");
    assert_eq!(shown["code_size"], code.len(), "{shown}");
    assert_eq!(
        shown["code_hash"],
        crypto_sm::sm3::sm3(&code).to_hex(),
        "{shown}"
    );
    assert_eq!(shown["proposal"], deploy_id, "{shown}");

    // Two calls by a user: the state adds up, fuel is used, each emits its event.
    let call = |value: &str| {
        json(
            &dir,
            &with(
                strings(&[
                    "contract",
                    "call",
                    "counter",
                    "add",
                    "--arg",
                    &format!("u64:{value}"),
                    "--returns",
                    "u64",
                ]),
                user(&chain),
            ),
        )
    };
    let first = call("5");
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(first["returns"], "5", "{first}");
    assert_eq!(first["output"], "0000000000000005", "{first}");
    let fuel_1 = first["fuel_used"].as_u64().unwrap();
    assert!(fuel_1 > 0 && fuel_1 < 10_000_000, "{first}");
    assert_eq!(first["events"][0]["name"], "added", "{first}");
    assert_eq!(first["events"][0]["contract"], "wasm/counter", "{first}");
    assert_eq!(first["events"][0]["topics_text"][0], "total", "{first}");
    assert_eq!(first["events"][0]["data"], "0000000000000005", "{first}");
    let second = call("7");
    assert_eq!(second["returns"], "12", "{second}");
    assert!(
        second["height"].as_u64() > first["height"].as_u64(),
        "{second}"
    );
    // `query tx` shows the receipt's fuel, output and event topics too.
    let tx = json(
        &dir,
        &strings(&[
            "query",
            "tx",
            second["tx_id"].as_str().unwrap(),
            "--node",
            &chain.grpc,
        ]),
    );
    assert_eq!(tx["fuel_used"], second["fuel_used"], "{tx}");
    assert_eq!(tx["output"], "000000000000000c", "{tx}");
    assert_eq!(tx["events"][0]["topics"][0], hex::encode("total"), "{tx}");
    // Its offline receipt verifies and shows the status, fuel, output and the event's topic.
    ok(
        &dir,
        &[
            "query",
            "receipt",
            second["tx_id"].as_str().unwrap(),
            "--out",
            "second.json",
            "--node",
            &chain.grpc,
        ],
    );
    let verified = ok(
        &dir,
        &[
            "receipt",
            "verify",
            "second.json",
            "--genesis",
            "data/genesis.json",
        ],
    );
    assert!(verified.contains("status: success"), "{verified}");
    assert!(
        verified.contains(&format!("fuel used {}", second["fuel_used"])),
        "{verified}"
    );
    assert!(verified.contains("output 000000000000000c"), "{verified}");
    assert!(verified.contains(&hex::encode("total")), "{verified}");

    // A read-only query reads the state, as the client's certificate (the admin's profile).
    let q = json(
        &dir,
        &strings(&[
            "contract",
            "query",
            "counter",
            "get",
            "--returns",
            "u64",
            "--node",
            &chain.grpc,
        ]),
    );
    assert_eq!(q["returns"], "12", "{q}");
    assert!(q["fuel_used"].as_u64().unwrap() > 0, "{q}");
    let who = json(
        &dir,
        &strings(&["contract", "query", "counter", "who", "--node", &chain.grpc]),
    );
    let caller = hex::decode(who["output"].as_str().unwrap()).unwrap();
    let admin =
        pki::Certificate::from_pem(&std::fs::read(dir.join("admin.crt.pem")).unwrap()).unwrap();
    assert_eq!(&caller[..32], admin.fingerprint().as_bytes(), "{who}");
    let tail = String::from_utf8_lossy(&caller[32..]).into_owned();
    assert!(
        tail.contains("Dev Bureau") && tail.contains("admin"),
        "{tail}"
    );
    // Nothing was written by the queries.
    let again = json(
        &dir,
        &strings(&[
            "contract",
            "query",
            "counter",
            "get",
            "--returns",
            "u64",
            "--node",
            &chain.grpc,
        ]),
    );
    assert_eq!(again["returns"], "12", "{again}");
    // A query's fuel above the chain's max_fuel_per_tx is refused (exit 2).
    fails(
        &dir,
        &[
            "contract",
            "query",
            "counter",
            "get",
            "--fuel",
            "100000001",
            "--node",
            &chain.grpc,
        ],
        2,
        "TX_FUEL_LIMIT_TOO_HIGH",
    );

    // The events, by contract and topic; none of another name; a range too wide refused.
    let events = json(
        &dir,
        &strings(&[
            "query",
            "events",
            "--contract",
            "counter",
            "--topic",
            "str:total",
            "--node",
            &chain.grpc,
        ]),
    );
    let list = events["events"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{events}");
    assert_eq!(list[0]["data"], "0000000000000005", "{events}");
    assert_eq!(list[1]["data"], "000000000000000c", "{events}");
    assert_eq!(list[1]["tx_id"], second["tx_id"], "{events}");
    assert_eq!(list[1]["height"], second["height"], "{events}");
    assert_eq!(list[0]["index"], 0, "{events}");
    let none = json(
        &dir,
        &strings(&[
            "query",
            "events",
            "--contract",
            "counter",
            "--name",
            "removed",
            "--node",
            &chain.grpc,
        ]),
    );
    assert_eq!(none["events"].as_array().unwrap().len(), 0, "{none}");
    let other_topic = json(
        &dir,
        &strings(&[
            "query",
            "events",
            "--topic",
            "str:other",
            "--node",
            &chain.grpc,
        ]),
    );
    assert_eq!(
        other_topic["events"].as_array().unwrap().len(),
        0,
        "{other_topic}"
    );
    let tip = events["tip"].as_u64().unwrap();
    fails(
        &dir,
        &[
            "query",
            "events",
            "--from",
            "1",
            "--to",
            "10001",
            "--node",
            &chain.grpc,
        ],
        2,
        "one request scans at most 10000",
    );
    fails(
        &dir,
        &[
            "query",
            "events",
            "--to",
            &(tip + 1000).to_string(),
            "--node",
            &chain.grpc,
        ],
        2,
        "beyond the tip",
    );

    // A new event reaches a subscriber as its block commits.
    let rt = crate::consortium::rt();
    let mut c = rt.block_on(client(&chain));
    let mut stream = rt
        .block_on(c.subscribe_events(pb::SubscribeEventsRequest {
            filter: Some(pb::EventFilter {
                contract: Some("counter".into()),
                name: None,
                topic: Some(b"total".to_vec()),
            }),
        }))
        .unwrap()
        .into_inner();
    let third = call("1");
    assert_eq!(third["returns"], "13", "{third}");
    let streamed = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), stream.message()).await })
        .expect("an event within 20 s")
        .unwrap()
        .expect("the stream goes on");
    assert_eq!(streamed.height, third["height"].as_u64().unwrap());
    assert_eq!(streamed.data, 13u64.to_be_bytes());
    drop(stream);

    // A call that fails: exit 1, the receipt printed with its code; nothing changed.
    let boom = with(
        strings(&["contract", "call", "counter", "boom"]),
        user(&chain),
    );
    let boom: Vec<&str> = boom.iter().map(String::as_str).collect();
    let o = crate::dev_node::gm(&dir, &boom);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("CONTRACT_ABORTED") && err.contains("no such method"),
        "{err}"
    );
    let receipt: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(receipt["status"], "failed", "{receipt}");
    assert_eq!(receipt["code"], "CONTRACT_ABORTED", "{receipt}");
    assert!(receipt["fuel_used"].as_u64().unwrap() > 0, "{receipt}");
    // A fuel limit above the chain's max_fuel_per_tx is refused at admission (exit 2).
    let greedy = with(
        strings(&[
            "contract",
            "call",
            "counter",
            "add",
            "--arg",
            "u64:1",
            "--fuel",
            "100000001",
        ]),
        user(&chain),
    );
    let greedy: Vec<&str> = greedy.iter().map(String::as_str).collect();
    fails(&dir, &greedy, 2, "TX_FUEL_LIMIT_TOO_HIGH");
    // A bad argument is refused before anything is sent.
    let bad = with(
        strings(&["contract", "call", "counter", "add", "--arg", "u64:five"]),
        user(&chain),
    );
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    fails(&dir, &bad, 2, "--arg 1");

    // Frozen by both organisations: calls are refused (exit 2), queries still answer.
    let freeze_id = pass(&chain, &["contract", "freeze", "counter"]);
    let shown = json(
        &dir,
        &strings(&["contract", "show", "counter", "--node", &chain.grpc]),
    );
    assert_eq!(shown["frozen"], true, "{shown}");
    let frozen = with(
        strings(&["contract", "call", "counter", "add", "--arg", "u64:1"]),
        user(&chain),
    );
    let frozen: Vec<&str> = frozen.iter().map(String::as_str).collect();
    fails(&dir, &frozen, 2, "TX_CONTRACT_FROZEN");
    let q = json(
        &dir,
        &strings(&[
            "contract",
            "query",
            "counter",
            "get",
            "--returns",
            "u64",
            "--node",
            &chain.grpc,
        ]),
    );
    assert_eq!(q["returns"], "13", "{q}");

    // `gov list` finds both proposals, executed, newest first.
    let listed = json(
        &dir,
        &strings(&["gov", "list", "--status", "executed", "--node", &chain.grpc]),
    );
    let ids: Vec<&str> = listed["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [freeze_id.as_str(), deploy_id.as_str()], "{listed}");
    assert_eq!(
        listed["proposals"][1]["kind"], "contract-deploy",
        "{listed}"
    );

    // The chain's fuel parameters in the status; fuel and the module cache in the metrics.
    let status = json(&dir, &strings(&["query", "status", "--node", &chain.grpc]));
    assert_eq!(status["params"]["max_fuel_per_tx"], 100_000_000, "{status}");
    assert_eq!(
        status["params"]["max_fuel_per_block"], 2_000_000_000u64,
        "{status}"
    );
    let metrics = scrape(&chain.metrics);
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    let fuel_total = value("gmchain_contract_fuel_used_total");
    let expected = first["fuel_used"].as_u64().unwrap()
        + second["fuel_used"].as_u64().unwrap()
        + third["fuel_used"].as_u64().unwrap()
        + receipt["fuel_used"].as_u64().unwrap();
    assert!(fuel_total >= expected, "{fuel_total} < {expected}");
    assert!(value("gmchain_contract_module_cache_misses_total") >= 1);
    assert!(value("gmchain_contract_module_cache_hits_total") >= 1);
    assert!(value("gmchain_contract_queries_total") >= 4);
}

/// `gmchain ARGS` in `dir` without the admin's client profile (a client with no certificate).
fn bare(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// On a chain of one organisation (a proposal executes in its own block): an upgrade keeps the
/// contract's state and bumps its version; freeze then unfreeze lets calls in again;
/// `query events --follow` prints the range, then each new event; the public read-only
/// listener shows the contract and its events but refuses a query (it has no client identity).
#[test]
fn an_upgraded_contract_keeps_its_state_and_the_public_listener_refuses_queries() {
    use std::io::BufRead;
    let chain = dev_chain(1);
    let dir = chain.dir.clone();
    let port = crate::dev_node::free_port();
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    std::fs::write(
        dir.join("node.toml"),
        config.replace(
            "[api]\n",
            &format!("[api]\npublic_listen = \"127.0.0.1:{port}\"\n"),
        ),
    )
    .unwrap();
    let _node = Node::start(&chain);
    let _keep = KeepLog(&chain);
    let code = wat::parse_str(COUNTER).unwrap();
    std::fs::write(dir.join("counter.wasm"), &code).unwrap();
    // The upgrade: the same contract with another abort message (another code hash).
    let v2 = wat::parse_str(COUNTER.replace("no such method", "unknown method")).unwrap();
    std::fs::write(dir.join("counter2.wasm"), &v2).unwrap();
    let admin = |args: &[&str]| -> String {
        let a = with(strings(args), sender(&chain, "admin"));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = ok(&dir, &a);
        assert!(out.contains("executed at height"), "{out}");
        out
    };
    admin(&["contract", "deploy", "counter", "--code", "counter.wasm"]);
    let add = |v: &str| -> std::process::Output {
        let a = with(
            strings(&[
                "contract",
                "call",
                "counter",
                "add",
                "--arg",
                &format!("u64:{v}"),
            ]),
            user(&chain),
        );
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        crate::dev_node::gm(&dir, &a)
    };
    assert!(add("5").status.success());

    // `query events --follow`: the range's event first, then the next one as it commits.
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(&dir)
        .args([
            "query",
            "events",
            "--contract",
            "counter",
            "--follow",
            "--node",
            &chain.grpc,
        ])
        .env("GMCHAIN_CLIENT_PROFILE", dir.join("client.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let line = |what: &str| -> serde_json::Value {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{what}: no line from query events --follow"));
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("{what}: {e}: {l}"))
    };
    let first = line("the range");
    assert_eq!(first["data"], "0000000000000005", "{first}");
    let o = add("2");
    assert!(o.status.success());
    let call: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let next = line("the new block");
    assert_eq!(next["data"], "0000000000000007", "{next}");
    assert_eq!(next["tx_id"], call["tx_id"], "{next}");
    let _ = follow.kill();
    let _ = follow.wait();

    // The upgrade keeps the state; the version and code hash change.
    admin(&["contract", "upgrade", "counter", "--code", "counter2.wasm"]);
    let shown = json(
        &dir,
        &strings(&["contract", "show", "counter", "--node", &chain.grpc]),
    );
    assert_eq!(shown["version"], 2, "{shown}");
    assert_eq!(
        shown["code_hash"],
        crypto_sm::sm3::sm3(&v2).to_hex(),
        "{shown}"
    );
    let q = json(
        &dir,
        &strings(&[
            "contract",
            "query",
            "counter",
            "get",
            "--returns",
            "u64",
            "--node",
            &chain.grpc,
        ]),
    );
    assert_eq!(q["returns"], "7", "{q}");
    // The new code runs: its abort message.
    let o = crate::dev_node::gm(
        &dir,
        &with(
            strings(&["contract", "call", "counter", "nope"]),
            user(&chain),
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown method"));

    // Frozen, then unfrozen: calls are refused, then let in again.
    admin(&["contract", "freeze", "counter"]);
    let o = add("1");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TX_CONTRACT_FROZEN"));
    admin(&["contract", "unfreeze", "counter"]);
    let o = add("1");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = json(&dir, &strings(&["gov", "list", "--node", &chain.grpc]));
    let kinds: Vec<&str> = listed["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "contract-unfreeze",
            "contract-freeze",
            "contract-upgrade",
            "contract-deploy"
        ],
        "{listed}"
    );

    // The public listener: the record and the events are reads anyone may make; a query
    // needs a caller identity, which it does not have.
    let public = format!("http://127.0.0.1:{port}");
    let o = bare(&dir, &["contract", "show", "counter", "--node", &public]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bare(
        &dir,
        &[
            "query",
            "events",
            "--contract",
            "counter",
            "--node",
            &public,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), 3, "{events}");
    let o = bare(
        &dir,
        &["contract", "query", "counter", "get", "--node", &public],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("NODE_UNAUTHENTICATED"), "{err}");
}

/// Issue 14's end-to-end test: the workflow example (`contracts/examples/workflow`), built by
/// `gmchain contract build`, deployed by the vote of two of three organisations' admins; a
/// case opened by a user of the first moves through steps held by a user of the second, a user
/// of the third and the first's admin; a step by the wrong organisation is refused with the
/// contract's message (exit 1, nothing written); where the case stands and its history are
/// queried; its events are found.
#[test]
fn the_workflow_example_moves_a_case_through_three_organisations() {
    let chain = dev_chain(2);
    let dir = chain.dir.clone();
    let _node = Node::start(&chain);
    let _keep = KeepLog(&chain);
    register_bureau(&chain, "Second Bureau", "second", &["second-user"]);
    register_bureau(&chain, "Third Bureau", "third", &["third-user"]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/examples/workflow");
    let built = ok(
        &dir,
        &[
            "contract",
            "build",
            "--path",
            example.to_str().unwrap(),
            "--out",
            "workflow.wasm",
        ],
    );
    assert!(built.contains("hash"), "{built}");

    // Proposed by Dev Bureau's admin; of three organisations, a majority is two: Second
    // Bureau's yes deploys it.
    let out = {
        let a = with(
            strings(&["contract", "deploy", "workflow", "--code", "workflow.wasm"]),
            sender(&chain, "admin"),
        );
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok(&dir, &a)
    };
    assert!(out.contains("of 3 organisation(s); 2 yes needed"), "{out}");
    let id = hex_after(&out, "committed: proposal ");
    let vote = with(
        strings(&["gov", "vote", &id, "yes"]),
        sender(&chain, "second-admin"),
    );
    let vote: Vec<&str> = vote.iter().map(String::as_str).collect();
    assert!(ok(&dir, &vote).contains("executed at height"));

    let call = |who: Vec<String>, method: &str, args: &[&str], returns: Option<&str>| {
        let mut a = strings(&["contract", "call", "workflow", method]);
        for x in args {
            a.push("--arg".into());
            a.push((*x).into());
        }
        if let Some(r) = returns {
            a.push("--returns".into());
            a.push(r.into());
        }
        a.extend(who);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        crate::dev_node::gm(&dir, &a)
    };
    let committed = |o: std::process::Output| -> serde_json::Value {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // The kind of case: intake by Second Bureau's users, review by Third Bureau's users,
    // approval by Dev Bureau's admins, each within 50 blocks.
    committed(call(
        sender(&chain, "admin"),
        "define",
        &[
            "str:permit",
            r#"list<(str,str,str,u64)>:[("intake","Second Bureau","user",50),("review","Third Bureau","user",50),("approve","Dev Bureau","admin",50)]"#,
        ],
        None,
    ));
    // A user of Dev Bureau opens a case: case 1.
    let opened = committed(call(
        user(&chain),
        "open",
        &["str:permit", "str:market stall, Xicheng district"],
        Some("u64"),
    ));
    assert_eq!(opened["returns"], "1", "{opened}");
    assert!(opened["fuel_used"].as_u64().unwrap() > 0, "{opened}");
    // The first step is Second Bureau's: Third Bureau's user is refused, by the contract,
    // naming who holds the step (a Failed receipt: exit 1); nothing was written.
    let wrong = call(
        sender(&chain, "third-user"),
        "approve",
        &["u64:1", "str:looks fine"],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1), "{wrong:?}");
    let refused: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(refused["code"], "CONTRACT_ABORTED", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("Second Bureau") && message.contains("Third Bureau"),
        "{message}"
    );
    // The three steps, each by the organisation and role that holds it.
    for (who, note) in [
        (sender(&chain, "second-user"), "documents complete"),
        (sender(&chain, "third-user"), "site inspected"),
        (sender(&chain, "admin"), "permit granted"),
    ] {
        let r = committed(call(
            who,
            "approve",
            &["u64:1", &format!("str:{note}")],
            None,
        ));
        assert_eq!(r["status"], "success", "{r}");
    }
    // Where the case stands, and its history: read-only, no transaction.
    let query = |method: &str, returns: &str| {
        json(
            &dir,
            &with(
                strings(&[
                    "contract",
                    "query",
                    "workflow",
                    method,
                    "--arg",
                    "u64:1",
                    "--returns",
                    returns,
                ]),
                strings(&["--node", &chain.grpc]),
            ),
        )
    };
    let status = query("status", "(str,str,str,str,str,u64,u64,str,str,u64,bool)");
    let text = status["returns"].as_str().unwrap();
    assert!(text.contains("\"completed\""), "{text}");
    assert!(text.contains("\"permit\""), "{text}");
    let history = query("history", "list<(u64,u64,str,str,str,str,str)>");
    let text = history["returns"].as_str().unwrap();
    for expected in [
        "documents complete",
        "site inspected",
        "permit granted",
        "Second Bureau",
        "Third Bureau",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(
        !text.contains("looks fine"),
        "the refused step is in the history: {text}"
    );
    // The events: three approvals and the completion, found by contract and name.
    let named = |name: &str| {
        json(
            &dir,
            &strings(&[
                "query",
                "events",
                "--contract",
                "workflow",
                "--name",
                name,
                "--node",
                &chain.grpc,
            ]),
        )
    };
    let events = named("step_approved");
    assert_eq!(events["events"].as_array().unwrap().len(), 3, "{events}");
    let done = named("case_completed");
    assert_eq!(done["events"].as_array().unwrap().len(), 1, "{done}");
}
