//! `gmchain devnet` as the README shows it: `up` (a PKI with each agency's keys in its own
//! soft-token slot, one validator per agency on 127.0.0.x), `status`, a document attested with
//! alice's client profile and `env.sh`, its receipt verified offline against the genesis with
//! a quorum of validators, `down`; no node process is left, also when a test fails (the guard
//! runs `down` and then kills whatever still names the devnet's directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::demo_pki::softtoken_module;

fn gm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .env("GMCHAIN_PKCS11_MODULE", softtoken_module())
        .env_remove("GMCHAIN_CLIENT_PROFILE")
        .env_remove("GMCHAIN_SOFTTOKEN_DIR")
        .args(args)
        .output()
        .expect("run gmchain")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A devnet directory whose nodes are stopped on drop, whatever happened.
struct Devnet {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Devnet {
    fn new() -> Devnet {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("devnet");
        Devnet { _tmp: tmp, dir }
    }

    fn arg(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn run(&self, cmd: &str, extra: &[&str]) -> Output {
        let mut args = vec!["devnet", cmd, "--dir", self.arg()];
        args.extend_from_slice(extra);
        gm(&args)
    }

    /// The processes whose command line names this devnet's directory (its nodes).
    fn processes(&self) -> Vec<u32> {
        processes_naming(&self.dir)
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if self.dir.join("devnet.json").exists() {
            let _ = self.run("down", &[]);
        }
        for pid in self.processes() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Live (not zombie) processes with an argument that starts with `dir`.
fn processes_naming(dir: &Path) -> Vec<u32> {
    let want = dir.as_os_str().as_encoded_bytes();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .unwrap_or("X");
        if state == "Z" || state == "X" {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline.split(|b| *b == 0).any(|a| a.starts_with(want)) {
            out.push(pid);
        }
    }
    out
}

/// A base port P with P to P+3 free on the loopback addresses of `nodes` nodes.
fn free_base_port(nodes: usize) -> u16 {
    for _ in 0..200 {
        let probe = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let p = probe.local_addr().unwrap().port();
        drop(probe);
        if p > 65000 {
            continue;
        }
        let free = (1..=nodes).all(|i| {
            (0..4)
                .all(|k| std::net::TcpListener::bind((format!("127.0.0.{}", i + 1), p + k)).is_ok())
        });
        if free {
            return p;
        }
    }
    panic!("no free base port");
}

/// The whole README flow on `n` validators.
fn up_attest_verify_down(n: usize) {
    let net = Devnet::new();
    let port = free_base_port(n).to_string();
    let started = std::time::Instant::now();
    let o = net.run("up", &["--nodes", &n.to_string(), "--base-port", &port]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "devnet up: {out}{err}");
    eprintln!(
        "devnet up --nodes {n}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for i in 1..=n {
        let api = format!("127.0.0.{}:{port}", i + 1);
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("node-{i} ")) && l.contains(&api)),
            "node-{i} at {api} in the table: {out}"
        );
        assert!(net.dir.join(format!("node-{i}/node.pid")).exists());
    }
    let pids = net.processes();
    assert_eq!(pids.len(), n, "one process per node: {pids:?}");

    // A second `up` over the running devnet is refused.
    let o = net.run("up", &["--nodes", &n.to_string(), "--base-port", &port]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("devnet down"), "{err}");

    let o = net.run("status", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "devnet status: {out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" running ")).count(),
        n,
        "{out}"
    );

    // As the README: source env.sh (tokens, module, alice's client profile), attest, verify.
    // `tx attest` waits for the commit without a limit of its own: a stalled network would hang
    // the test, so it gets two minutes.
    let doc = net.dir.join("notice.txt");
    std::fs::write(
        &doc,
        b"Notice 2026-118: opening hours of the records office.\n",
    )
    .unwrap();
    let d = |p: &str| net.dir.join(p).display().to_string();
    let alice = std::fs::read_to_string(net.dir.join("alice.uri")).unwrap();
    let script = format!(
        "set -e; source '{env}'; timeout 120 '{bin}' tx attest '{doc}' --key '{key}' \
         --hsm-profile '{hsm}' --pass-file '{pin}' --cert '{cert}' --out '{receipt}'",
        env = d("env.sh"),
        bin = env!("CARGO_BIN_EXE_gmchain"),
        doc = doc.display(),
        key = alice.trim(),
        hsm = d("softtoken.toml"),
        pin = d("agency-1/user.pin"),
        cert = d("alice.pem"),
        receipt = d("receipt.json"),
    );
    let o = Command::new("bash")
        .args(["-c", &script])
        .env_remove("GMCHAIN_PKCS11_MODULE")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "tx attest: {out}{err}");

    let o = gm(&[
        "receipt",
        "verify",
        &d("receipt.json"),
        doc.to_str().unwrap(),
        "--genesis",
        &d("node-1/data/genesis.json"),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "receipt verify: {out}{err}");
    let certified: usize = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("final: certified by "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("no certificate line: {out}"));
    let quorum = 2 * n / 3 + 1;
    assert!(
        certified >= quorum,
        "certified by {certified} of {n}, quorum {quorum}: {out}"
    );
    assert!(out.contains("signer CN=alice"), "{out}");
    // The same receipt does not verify another document.
    std::fs::write(
        &doc,
        b"Notice 2026-118: opening hours of the records office!\n",
    )
    .unwrap();
    let o = gm(&[
        "receipt",
        "verify",
        &d("receipt.json"),
        doc.to_str().unwrap(),
        "--genesis",
        &d("node-1/data/genesis.json"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));

    if n == 4 {
        contract_tutorial(&net);
    }

    // Having decided blocks together, every node shows a link to each of the others. (Counted
    // from the right: an organisation's name may hold spaces.)
    let o = net.run("status", &[]);
    let (out, _) = text(&o);
    let mut lines = out.lines();
    let column = lines
        .next()
        .and_then(|h| h.split_whitespace().rev().position(|c| c == "LINKS"))
        .unwrap_or_else(|| panic!("no LINKS column: {out}"));
    // A lone validator runs no links at all ("-").
    let links = if n > 1 {
        (n - 1).to_string()
    } else {
        "-".into()
    };
    for l in lines.filter(|l| l.contains(" running ")) {
        assert_eq!(
            l.split_whitespace().rev().nth(column),
            Some(links.as_str()),
            "{out}"
        );
    }

    let o = net.run("down", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "devnet down: {out}{err}");
    assert_eq!(out.matches(": stopped").count(), n, "{out}");
    assert!(net.processes().is_empty(), "left: {:?}", net.processes());
    for i in 1..=n {
        assert!(!net.dir.join(format!("node-{i}/node.pid")).exists());
    }
    // Idempotent; status now says the nodes are down (exit 3).
    let o = net.run("down", &[]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = net.run("status", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" down ")).count(),
        n,
        "{out}"
    );
}

#[test]
fn one_validator_up_status_attest_verify_down() {
    up_attest_verify_down(1);
}

/// The README's contract tutorial on the four-agency devnet: the smallest example contract
/// built, proposed by Agency 1's admin, deployed by the yes of Agency 2's and Agency 3's admins
/// (a majority of four), called by alice, read back by a query, its event found.
fn contract_tutorial(net: &Devnet) {
    let d = |p: &str| net.dir.join(p).display().to_string();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/examples/hello");
    let signer = |who: &str, agency: usize| -> String {
        let uri = std::fs::read_to_string(net.dir.join(format!("{who}.uri"))).unwrap();
        format!(
            "--key '{}' --hsm-profile '{}' --pass-file '{}' --cert '{}'",
            uri.trim(),
            d("softtoken.toml"),
            d(&format!("agency-{agency}/user.pin")),
            d(&format!("{who}.pem"))
        )
    };
    let run = |script: String| -> String {
        let o = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "set -e; source '{env}'; gm() {{ timeout 120 '{bin}' \"$@\"; }}; {script}",
                    env = d("env.sh"),
                    bin = env!("CARGO_BIN_EXE_gmchain"),
                ),
            ])
            .current_dir(&net.dir)
            .env_remove("GMCHAIN_PKCS11_MODULE")
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{script}: {out}{err}");
        out
    };
    run(format!(
        "gm contract build --path '{}' --out hello.wasm",
        example.display()
    ));
    let out = run(format!(
        "gm contract deploy hello --code hello.wasm {}",
        signer("admin", 1)
    ));
    assert!(out.contains("of 4 organisation(s); 3 yes needed"), "{out}");
    let id = out
        .split("committed: proposal ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no proposal id: {out}"))
        .to_string();
    run(format!("gm gov vote {id} yes {}", signer("admin-2", 2)));
    let out = run(format!("gm gov vote {id} yes {}", signer("admin-3", 3)));
    assert!(out.contains("executed at height"), "{out}");
    let out = run(format!(
        "gm contract call hello set --arg 'str:你好, gmchain' {}",
        signer("alice", 1)
    ));
    assert!(out.contains("\"status\": \"success\""), "{out}");
    let out = run("gm contract query hello get --returns str".into());
    assert!(out.contains("你好, gmchain"), "{out}");
    let out = run("gm query events --contract hello".into());
    assert!(out.contains("greeting_set"), "{out}");
}

#[test]
fn four_agencies_attest_and_verify_with_a_quorum_certificate() {
    up_attest_verify_down(4);
}

#[test]
fn a_node_that_does_not_start_stops_the_devnet_with_exit_3() {
    let net = Devnet::new();
    let port = free_base_port(2).to_string();
    let o = net.run("up", &["--nodes", "2", "--base-port", &port]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = net.run("down", &[]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // A stopped devnet starts again with its chain; without its certificate node-2 cannot,
    // and node-1, which did start, is stopped again.
    std::fs::remove_file(net.dir.join("node-2/node.pem")).unwrap();
    let o = net.run("up", &["--nodes", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(err.contains("node-2 did not start"), "{err}");
    assert!(err.contains("node.pem"), "the log's end is shown: {err}");
    assert!(net.processes().is_empty(), "left: {:?}", net.processes());
    assert!(!net.dir.join("node-1/node.pid").exists());
    assert!(!net.dir.join("node-2/node.pid").exists());
    // A different size is refused for a stopped devnet.
    let o = net.run("up", &["--nodes", "3"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("stopped devnet of 2 node(s)"), "{err}");
}

#[test]
fn up_refuses_what_is_not_a_devnet_and_addresses_in_use() {
    let net = Devnet::new();
    std::fs::create_dir_all(&net.dir).unwrap();
    std::fs::write(net.dir.join("notes.txt"), b"mine").unwrap();
    let o = net.run("up", &["--nodes", "1"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a devnet"), "{err}");
    assert_eq!(std::fs::read(net.dir.join("notes.txt")).unwrap(), b"mine");

    let net = Devnet::new();
    let port = free_base_port(2);
    let _busy = std::net::TcpListener::bind(("127.0.0.3", port + 1)).unwrap();
    let o = net.run("up", &["--nodes", "2", "--base-port", &port.to_string()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("node-2 metrics address 127.0.0.3:{}", port + 1)),
        "{err}"
    );
    assert!(!net.dir.join("devnet.json").exists());

    for n in ["0", "8"] {
        let o = net.run("up", &["--nodes", n]);
        assert_eq!(o.status.code(), Some(2), "--nodes {n}: {:?}", text(&o));
    }
    let o = net.run("status", &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a devnet"), "{err}");
}
