//! `gmchain devnet …`: a consortium of N agencies on this machine, for demonstrations and the
//! multi-process tests.
//!
//! `up` builds, in one directory, a demo PKI (per agency a root CA in a `gmchain ca` directory
//! with its CRL, and a soft-token slot holding the agency's node key; the node-sign
//! certificates come from CSRs signed inside the tokens), one genesis listing every agency and
//! every validator, a production-mode configuration per node on its own loopback address
//! (`127.0.0.(i+1)`), client profiles for a user `alice` and an admin of Agency 1, and starts
//! the nodes as background processes. `status` reads their pid files and metrics; `down` stops
//! them with SIGTERM (SIGKILL after 20 s).
//!
//! What it refuses: to build over a directory that is not a devnet, to start over a running
//! devnet, and to leave nodes running when one of them fails to start. The PINs and CA
//! passphrases are random and stored beside the keys (mode 0600): the soft token protects keys
//! only as well as the files of this machine. Never use a devnet for real data.
//!
//! The token operations run as `gmchain keys …` child processes: the soft token reads its
//! storage directory from the environment at `C_Initialize`, and this process does not change
//! its own environment (no unsafe code). The CA and the genesis are made in-process.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ca::{Action, Context, Holder, KeyLocation, NewCa};
use clap::Subcommand;
use crypto::{RandomSource, Secret};
use crypto_sm::rng::SystemRandom;
use pki::{Role, UnixTime};
use serde::{Deserialize, Serialize};

use crate::io::write_file;
use crate::{CmdResult, Failure};

/// The most nodes a devnet has (loopback addresses 127.0.0.2..=127.0.0.8).
const MAX_NODES: u8 = 7;
/// How long `up` waits for every node to answer `query status`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `down` waits for a node to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// The manifest `up` writes and `status`/`down` read.
const MANIFEST: &str = "devnet.json";
/// The chain id of every devnet.
const CHAIN_ID: &str = "devnet";
/// The module profile's source; `up` writes a copy naming the module by its absolute path.
const SOFTTOKEN_PROFILE: &str = include_str!("../../../hsm-profiles/gmchain-softtoken.toml");
/// The soft token module's file name.
const MODULE_FILE: &str = "libgmchain_softtoken.so";

#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Builds a demo consortium in DIR (PKI with each agency's keys in its own soft-token slot,
    /// genesis, one configuration per node) and starts its nodes on 127.0.0.2…; a stopped
    /// devnet in DIR is started again with its chain. Exit 2 if a devnet is running there,
    /// 3 if a node does not start.
    Up {
        /// Validators, one per agency (1 to 7).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=(MAX_NODES as i64)))]
        nodes: u8,
        /// The devnet's directory.
        #[arg(long, default_value = "devnet")]
        dir: PathBuf,
        /// Node i listens on 127.0.0.(i+1): API on P, metrics on P+1, consensus on P+2, REST
        /// and the web console on P+3.
        #[arg(long, default_value_t = 27100)]
        base_port: u16,
    },
    /// Shows each node: running or not, height and metrics. Exit 3 if a node is down.
    Status {
        #[arg(long, default_value = "devnet")]
        dir: PathBuf,
    },
    /// Stops every node (SIGTERM, SIGKILL after 20 s). Exit 0 also when nothing runs.
    Down {
        #[arg(long, default_value = "devnet")]
        dir: PathBuf,
    },
}

/// One node as the manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeEntry {
    name: String,
    organisation: String,
    api: SocketAddr,
    metrics: SocketAddr,
    consensus: SocketAddr,
}

impl NodeEntry {
    /// The plain REST listener (and web console): P+3 on the node's address.
    fn rest(&self) -> SocketAddr {
        SocketAddr::new(self.api.ip(), self.api.port().saturating_add(3))
    }
}

/// `DIR/devnet.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    chain_id: String,
    nodes: Vec<NodeEntry>,
}

const MANIFEST_FORMAT: &str = "gmchain-devnet/1";

// Standard output that a closed pipe (`gmchain devnet up | head`) does not turn into a panic:
// the nodes are running by then and the report is only for reading.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! say_part {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

pub(crate) fn run(cmd: DevnetCommand) -> CmdResult {
    match cmd {
        DevnetCommand::Up {
            nodes,
            dir,
            base_port,
        } => up(&dir, nodes, base_port),
        DevnetCommand::Status { dir } => status(&dir),
        DevnetCommand::Down { dir } => down(&dir).map(|_| ()),
    }
}

fn bad(what: impl std::fmt::Display) -> Failure {
    Failure::BadInput(what.to_string())
}

fn io_fail(path: &Path, e: std::io::Error) -> Failure {
    bad(format!("{}: {e}", path.display()))
}

fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}"))
}

fn agency_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("agency-{i}"))
}

fn token_label(i: usize) -> String {
    format!("agency-{i}")
}

/// Node `i` (1-based) of a devnet with base port `p`.
fn entry(i: usize, p: u16) -> Result<NodeEntry, Failure> {
    let top = p
        .checked_add(2)
        .filter(|t| t.checked_add(1).is_some())
        .ok_or_else(|| bad(format!("--base-port {p}: P+3 is not a port")))?;
    let ip = std::net::Ipv4Addr::new(127, 0, 0, (i + 1) as u8);
    Ok(NodeEntry {
        name: format!("node-{i}"),
        organisation: format!("Agency {i}"),
        api: SocketAddr::from((ip, p)),
        metrics: SocketAddr::from((ip, p + 1)),
        consensus: SocketAddr::from((ip, top)),
    })
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, Failure> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_fail(&path, e)),
    };
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("{}: not a devnet manifest: {e}", path.display())))?;
    if m.format != MANIFEST_FORMAT {
        return Err(bad(format!(
            "{}: format {:?}, expected {MANIFEST_FORMAT:?}",
            path.display(),
            m.format
        )));
    }
    Ok(Some(m))
}

fn manifest_or_fail(dir: &Path) -> Result<Manifest, Failure> {
    read_manifest(dir)?.ok_or_else(|| {
        bad(format!(
            "{} is not a devnet (no {MANIFEST}); make one with `gmchain devnet up --dir {}`",
            dir.display(),
            dir.display()
        ))
    })
}

// ---- processes ------------------------------------------------------------------------------

/// The pid in `node-i/node.pid` if that process is alive and is this node's `node start`
/// (its command line names the node's configuration: a reused pid is not mistaken for it).
fn running_pid(dir: &Path, i: usize) -> Option<u32> {
    let text = std::fs::read_to_string(node_dir(dir, i).join("node.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    alive_as_node(pid, &node_config(dir, i)).then_some(pid)
}

/// Node `i`'s configuration file, absolute (as `up` passes it to `node start`).
fn node_config(dir: &Path, i: usize) -> PathBuf {
    let path = node_dir(dir, i).join("node.toml");
    path.canonicalize().unwrap_or(path)
}

fn alive_as_node(pid: u32, config: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    // A zombie has exited: it only waits for its parent to reap it.
    match std::fs::read_to_string(proc.join("stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next());
            if matches!(state, Some("Z") | Some("X") | None) {
                return false;
            }
        }
        Err(_) => return false,
    }
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
        return false;
    };
    let want = config.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == want)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The soft token module: `$GMCHAIN_PKCS11_MODULE` when it names gmchain's soft token (another
/// module there, a vendor's HSM, is not what a devnet's tokens are), else the one built beside
/// this executable.
fn module_path() -> Result<PathBuf, Failure> {
    if let Some(p) = std::env::var_os(hsm::MODULE_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if p.file_name().is_some_and(|n| n == MODULE_FILE) {
            return if p.is_file() {
                Ok(p)
            } else {
                Err(Failure::Unreachable(format!(
                    "{}={} is not a file",
                    hsm::MODULE_ENV,
                    p.display()
                )))
            };
        }
    }
    let exe = std::env::current_exe().map_err(|e| bad(format!("this executable: {e}")))?;
    let so = exe
        .parent()
        .map(|d| d.join(MODULE_FILE))
        .unwrap_or_else(|| PathBuf::from(MODULE_FILE));
    if so.is_file() {
        Ok(so)
    } else {
        Err(Failure::Unreachable(format!(
            "the soft token module {} is missing: build it with `cargo build -p softtoken`, or set {} to its path",
            so.display(),
            hsm::MODULE_ENV
        )))
    }
}

/// `gmchain ARGS` with the devnet's tokens.
fn gm(dir: &Path, slots: usize, module: &Path) -> Result<Command, Failure> {
    let exe = std::env::current_exe().map_err(|e| bad(format!("this executable: {e}")))?;
    let mut c = Command::new(exe);
    c.env("GMCHAIN_SOFTTOKEN_DIR", dir.join("tokens"))
        .env("GMCHAIN_SOFTTOKEN_SLOTS", slots.to_string())
        .env(hsm::MODULE_ENV, module)
        .env_remove("GMCHAIN_CLIENT_PROFILE")
        .stdin(Stdio::null());
    Ok(c)
}

/// Runs a `gmchain` step to completion; returns its standard output, or a failure naming the
/// step with the child's one-line error and its exit class.
fn step(what: &str, mut c: Command) -> Result<String, Failure> {
    let out = c
        .output()
        .map_err(|e| bad(format!("{what}: cannot run gmchain: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let msg = format!("{what}: {}", line.trim_start_matches("gmchain: "));
    Err(match out.status.code() {
        Some(1) => Failure::NotVerified(msg),
        Some(3) => Failure::Unreachable(msg),
        _ => Failure::BadInput(msg),
    })
}

fn random_hex(bytes: usize) -> Result<String, Failure> {
    let mut b = vec![0u8; bytes];
    SystemRandom
        .fill(&mut b)
        .map_err(|e| bad(format!("random: {e}")))?;
    Ok(hex::encode(b))
}

// ---- up ---------------------------------------------------------------------------------------

fn up(dir: &Path, n: u8, base_port: u16) -> CmdResult {
    let started = Instant::now();
    let module = module_path()?;
    let n = usize::from(n);
    let manifest = match read_manifest(dir)? {
        Some(m) => {
            let running: Vec<String> = (1..=m.nodes.len())
                .filter_map(|i| running_pid(dir, i).map(|p| format!("node-{i} pid {p}")))
                .collect();
            if !running.is_empty() {
                return Err(bad(format!(
                    "a devnet is running in {} ({}): run `gmchain devnet down --dir {}` first",
                    dir.display(),
                    running.join(", "),
                    dir.display()
                )));
            }
            if m.nodes.len() != n {
                return Err(bad(format!(
                    "{} holds a stopped devnet of {} node(s), not {n}: start it with --nodes {}, or remove the directory for a new one",
                    dir.display(),
                    m.nodes.len(),
                    m.nodes.len()
                )));
            }
            say!(
                "starting the stopped devnet in {} (its chain is kept)",
                dir.display()
            );
            m
        }
        None => {
            let empty = match std::fs::read_dir(dir) {
                Ok(mut d) => d.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(io_fail(dir, e)),
            };
            if !empty {
                return Err(bad(format!(
                    "{} exists and is not a devnet: choose a new --dir or remove it",
                    dir.display()
                )));
            }
            let nodes = (1..=n)
                .map(|i| entry(i, base_port))
                .collect::<Result<Vec<_>, _>>()?;
            check_ports(&nodes)?;
            std::fs::create_dir_all(dir).map_err(|e| io_fail(dir, e))?;
            let dir_abs = dir.canonicalize().map_err(|e| io_fail(dir, e))?;
            if let Err(e) = create(&dir_abs, &nodes, &module) {
                // Nothing runs yet and the directory was empty: leave it so, for a retry.
                let _ = std::fs::remove_dir_all(&dir_abs);
                let _ = std::fs::create_dir_all(&dir_abs);
                return Err(e);
            }
            let m = Manifest {
                format: MANIFEST_FORMAT.into(),
                chain_id: CHAIN_ID.into(),
                nodes,
            };
            let json = serde_json::to_vec_pretty(&m).map_err(|e| bad(format!("manifest: {e}")))?;
            write_file(&dir_abs.join(MANIFEST), &json, false)?;
            m
        }
    };
    let dir = dir.canonicalize().map_err(|e| io_fail(dir, e))?;
    check_ports(&manifest.nodes)?;
    write_env(&dir, &manifest, &module)?;
    start_all(&dir, &manifest, &module)?;
    print_summary(&dir, &manifest, started.elapsed());
    Ok(())
}

/// Every address the nodes will listen on must be free now (a clear message instead of a node
/// that dies on bind).
fn check_ports(nodes: &[NodeEntry]) -> CmdResult {
    for node in nodes {
        for (what, addr) in [
            ("API", node.api),
            ("metrics", node.metrics),
            ("consensus", node.consensus),
            ("REST", node.rest()),
        ] {
            TcpListener::bind(addr).map_err(|e| {
                bad(format!(
                    "{} {what} address {addr} is not free ({e}): choose another --base-port",
                    node.name
                ))
            })?;
        }
    }
    Ok(())
}

/// An agency's token PIN file and its key URIs.
struct Agency {
    pin_file: PathBuf,
    ca_pem: PathBuf,
    crl_pem: PathBuf,
    node_uri: String,
}

/// Builds the PKI, genesis, configurations and stores of a new devnet in `dir` (absolute).
fn create(dir: &Path, nodes: &[NodeEntry], module: &Path) -> CmdResult {
    let n = nodes.len();
    let profile_path = dir.join("softtoken.toml");
    write_file(&profile_path, softtoken_profile(module)?.as_bytes(), false)?;
    std::fs::create_dir_all(dir.join("tokens")).map_err(|e| io_fail(dir, e))?;
    let keys = |args: &[&str]| -> Result<Command, Failure> {
        let mut c = gm(dir, n, module)?;
        c.arg("keys").args(args);
        Ok(c)
    };
    let profile_arg = profile_path.display().to_string();
    let mut agencies = Vec::with_capacity(n);
    for (idx, node) in nodes.iter().enumerate() {
        let i = idx + 1;
        let adir = agency_dir(dir, i);
        std::fs::create_dir_all(&adir).map_err(|e| io_fail(&adir, e))?;
        // The agency's token: its own slot (the first uninitialised one), its own PINs.
        let pin_file = adir.join("user.pin");
        let so_file = adir.join("so.pin");
        write_file(&pin_file, format!("{}\n", random_hex(12)?).as_bytes(), true)?;
        write_file(&so_file, format!("{}\n", random_hex(12)?).as_bytes(), true)?;
        let label = token_label(i);
        let (pin_arg, so_arg) = (
            pin_file.display().to_string(),
            so_file.display().to_string(),
        );
        step(
            &format!("{label}: keys init-token"),
            keys(&[
                "init-token",
                "--hsm-profile",
                &profile_arg,
                "--label",
                &label,
                "--so-pass-file",
                &so_arg,
                "--pass-file",
                &pin_arg,
            ])?,
        )?;
        let generate = |key: &str| -> Result<String, Failure> {
            step(
                &format!("{label}: keys generate {key}"),
                keys(&[
                    "generate",
                    "--hsm-profile",
                    &profile_arg,
                    "--token-label",
                    &label,
                    "--label",
                    key,
                    "--pass-file",
                    &pin_arg,
                    "--sessions",
                    "1",
                ])?,
            )
        };
        let csr = |uri: &str, subject: &str, out: &Path| -> CmdResult {
            step(
                &format!("{label}: keys csr {subject}"),
                keys(&[
                    "csr",
                    "--hsm-profile",
                    &profile_arg,
                    "--key",
                    uri,
                    "--pass-file",
                    &pin_arg,
                    "--sessions",
                    "1",
                    "--subject",
                    subject,
                    "--out",
                    &out.display().to_string(),
                ])?,
            )
            .map(drop)
        };
        let node_uri = generate(&node.name)?;
        let ndir = node_dir(dir, i);
        std::fs::create_dir_all(&ndir).map_err(|e| io_fail(&ndir, e))?;
        let node_csr = ndir.join("node.csr");
        csr(
            &node_uri,
            &format!("CN={},O={}", node.name, node.organisation),
            &node_csr,
        )?;
        // Agency 1 also holds the demo user and admin; every other agency an admin of its
        // own (`admin-<i>`), so that proposals can be voted by several organisations.
        let mut requests = vec![(Role::NodeSign, node_csr, ndir.join("node.pem"))];
        let people: Vec<(Role, String)> = if i == 1 {
            vec![(Role::User, "alice".into()), (Role::Admin, "admin".into())]
        } else {
            vec![(Role::Admin, admin_label(i))]
        };
        for (role, who) in people {
            let uri = generate(&who)?;
            let path = dir.join(format!("{who}.csr"));
            let cn = if role == Role::Admin { "admin" } else { &who };
            csr(&uri, &format!("CN={cn},O={}", node.organisation), &path)?;
            requests.push((role, path, dir.join(format!("{who}.pem"))));
            write_file(&dir.join(format!("{who}.uri")), uri.as_bytes(), false)?;
        }
        let (ca_pem, crl_pem) = agency_ca(&adir, &node.organisation, &requests)?;
        agencies.push(Agency {
            pin_file,
            ca_pem,
            crl_pem,
            node_uri,
        });
    }
    // One genesis for every node (its timestamp is part of its hash).
    let mut configs = Vec::with_capacity(n);
    for i in 1..=n {
        let path = node_dir(dir, i).join("node.toml");
        write_file(
            &path,
            node_toml(dir, i, nodes, &agencies, &profile_path).as_bytes(),
            false,
        )?;
        configs.push(path);
    }
    let first = node::NodeConfig::load(&configs[0]).map_err(|e| bad(e.to_string()))?;
    let genesis = crate::cli_node::genesis_from_config(&first)?;
    write_file(
        &dir.join("genesis.json"),
        genesis.to_json().as_bytes(),
        false,
    )?;
    for path in &configs {
        let config = node::NodeConfig::load(path).map_err(|e| bad(e.to_string()))?;
        node::init(&config.data_dir, &genesis)
            .map_err(|e| Failure::coded(&e, format!("{}: node init: {e}", path.display())))?;
    }
    write_profiles(dir, nodes, &agencies, &profile_path)?;
    Ok(())
}

/// The soft token profile with the module's absolute path, so that the nodes and clients load
/// the same module wherever they run.
fn softtoken_profile(module: &Path) -> Result<String, Failure> {
    let mut out = String::new();
    let mut replaced = false;
    for line in SOFTTOKEN_PROFILE.lines() {
        if line.starts_with("library = ") {
            let lib = toml::Value::String(module.display().to_string());
            let _ = writeln!(out, "library = {lib}");
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if replaced {
        Ok(out)
    } else {
        Err(bad(
            "hsm-profiles/gmchain-softtoken.toml has no `library = ` line",
        ))
    }
}

/// Makes the agency's root CA (a `gmchain ca` directory `adir/ca`, key in its keystore),
/// issues a certificate for each (role, CSR, output) and publishes the first CRL. Returns the
/// CA certificate and CRL files.
fn agency_ca(
    adir: &Path,
    org: &str,
    requests: &[(Role, PathBuf, PathBuf)],
) -> Result<(PathBuf, PathBuf), Failure> {
    let ca_dir = adir.join("ca");
    let pass_file = adir.join("ca.pass");
    let pass = random_hex(16)?;
    write_file(&pass_file, format!("{pass}\n").as_bytes(), true)?;
    let store = keystore::DirKeyStore::create(
        &ca_dir.join("keys"),
        Secret::new(pass.into_bytes()),
        Arc::new(SystemRandom),
    )
    .map_err(|e| bad(format!("{org} CA keystore: {e}")))?;
    store
        .generate("ca")
        .map_err(|e| bad(format!("{org} CA key: {e}")))?;
    let signer = store
        .signer("ca")
        .map_err(|e| bad(format!("{org} CA key: {e}")))?;
    let clock = UnixTime(crate::cli_ca::now());
    let cx = Context {
        signer: &signer,
        rng: &SystemRandom,
        clock: &clock,
        operator: "gmchain devnet",
    };
    let ca_err = |e: ca::CaError| Failure::coded(&e, format!("{org} CA: {e}"));
    let created = ca::init_root(
        NewCa {
            dir: &ca_dir,
            name: &format!("{org} Root CA"),
            organisation: org,
        },
        KeyLocation::Keystore { label: "ca".into() },
        3650,
        &cx,
    )
    .map_err(ca_err)?;
    let ca_pem = adir.join("ca.pem");
    write_file(&ca_pem, created.certificate.to_pem().as_bytes(), false)?;
    for (role, csr, out) in requests {
        let request = std::fs::read(csr).map_err(|e| io_fail(csr, e))?;
        let done = created
            .dir
            .audited(&cx, Action::Issue, |a| {
                a.issue(*role, Holder::Request(&request), 365)
            })
            .map_err(ca_err)?;
        let issued = done.result.map_err(ca_err)?;
        write_file(out, issued.certificate.to_pem().as_bytes(), false)?;
    }
    // A month of validity: the nodes refuse a chain whose CRL is out of date.
    let done = created
        .dir
        .audited(&cx, Action::Crl, |a| a.publish_crl(30 * 24))
        .map_err(ca_err)?;
    let crl = done.result.map_err(ca_err)?;
    let crl_pem = adir.join("crl.pem");
    write_file(&crl_pem, crl.crl.to_pem().as_bytes(), false)?;
    Ok((ca_pem, crl_pem))
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Node `i`'s configuration. Paths are relative to the node's directory, except the
/// profile and PIN (absolute: the devnet directory is fixed once made).
fn node_toml(
    dir: &Path,
    i: usize,
    nodes: &[NodeEntry],
    agencies: &[Agency],
    profile: &Path,
) -> String {
    let me = &nodes[i - 1];
    let a = &agencies[i - 1];
    let rel = |p: &Path| -> String {
        let s = p.strip_prefix(dir).map(|r| format!("../{}", r.display()));
        q(&s.unwrap_or_else(|_| p.display().to_string()))
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# {} of {}: written by `gmchain devnet up`.\nmode = \"production\"\ndata_dir = \"data\"\n",
        me.name, me.organisation
    );
    let _ = writeln!(
        t,
        "[key]\nkey = {}\nhsm_profile = {}\npass_file = {}\ncertificate = \"node.pem\"\n",
        q(&a.node_uri),
        rel(profile),
        rel(&a.pin_file)
    );
    let _ = writeln!(
        t,
        "[api]\nlisten = \"{}\"\nmetrics_listen = \"{}\"\n\n[rest]\nlisten = \"{}\"\n",
        me.api,
        me.metrics,
        me.rest()
    );
    let _ = writeln!(t, "[block]\ninterval_ms = 200\n\n[log]\nlevel = \"info\"\n");
    if nodes.len() > 1 {
        let _ = writeln!(t, "[consensus]\nlisten = \"{}\"\n", me.consensus);
        for peer in nodes.iter().filter(|p| p.name != me.name) {
            let _ = writeln!(
                t,
                "[[consensus.peers]]\naddress = \"{}\"\nname = {}\norganisation = {}\n",
                peer.consensus,
                q(&peer.name),
                q(&peer.organisation)
            );
        }
    }
    let _ = writeln!(
        t,
        "[chain]\nchain_id = {}\ntest_chain = true\n",
        q(CHAIN_ID)
    );
    for (node, agency) in nodes.iter().zip(agencies) {
        let _ = writeln!(
            t,
            "[[organisations]]\nname = {}\nca_cert = {}\ncrl = {}\n",
            q(&node.organisation),
            rel(&agency.ca_pem),
            rel(&agency.crl_pem)
        );
    }
    for node in nodes {
        let _ = writeln!(
            t,
            "[[validators]]\nname = {}\ncert = {}\n",
            q(&node.name),
            q(&format!("../{}/node.pem", node.name))
        );
    }
    t
}

/// The label of agency `i`'s admin (its key, certificate and profile): `admin` for Agency 1,
/// `admin-<i>` for the others.
fn admin_label(i: usize) -> String {
    if i == 1 {
        "admin".into()
    } else {
        format!("admin-{i}")
    }
}

/// `alice.toml` and `admin.toml`: Agency 1's user and admin, to node-1; `admin-<i>.toml`: agency
/// i's admin, to its own node; each trusting every agency's CA (with its CRL) so that `--node`,
/// `--node-name` and `--node-organisation` reach any node.
fn write_profiles(
    dir: &Path,
    nodes: &[NodeEntry],
    agencies: &[Agency],
    profile: &Path,
) -> CmdResult {
    let rel = |p: &Path| -> String {
        q(&p.strip_prefix(dir)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string()))
    };
    let list = |f: &dyn Fn(&Agency) -> &Path| {
        agencies
            .iter()
            .map(|a| rel(f(a)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cas = list(&|a| &a.ca_pem);
    let crls = list(&|a| &a.crl_pem);
    let mut people: Vec<(String, usize)> = vec![("alice".into(), 0), ("admin".into(), 0)];
    people.extend((2..=nodes.len()).map(|i| (admin_label(i), i - 1)));
    for (who, k) in people {
        let uri = std::fs::read_to_string(dir.join(format!("{who}.uri")))
            .map_err(|e| io_fail(&dir.join(format!("{who}.uri")), e))?;
        let text = format!(
            "# {who} of {org}: a client profile (gmchain --client-profile, GMCHAIN_CLIENT_PROFILE).\n\
             node = \"{api}\"\nnode_name = {name}\nnode_organisation = {org_q}\n\
             tls_key = {key}\nhsm_profile = {hsm}\npass_file = {pin}\ntls_cert = \"{who}.pem\"\n\
             ca = [{cas}]\ncrls = [{crls}]\n",
            org = nodes[k].organisation,
            api = nodes[k].api,
            name = q(&nodes[k].name),
            org_q = q(&nodes[k].organisation),
            key = q(uri.trim()),
            hsm = rel(profile),
            pin = rel(&agencies[k].pin_file),
        );
        write_file(&dir.join(format!("{who}.toml")), text.as_bytes(), false)?;
    }
    Ok(())
}

/// Starts every node and waits until each answers `query status` over TLS. On a failure: the
/// end of the failed node's log, every started node stopped, exit 3.
fn start_all(dir: &Path, m: &Manifest, module: &Path) -> CmdResult {
    let n = m.nodes.len();
    let mut children: Vec<Child> = Vec::with_capacity(n);
    let fail_and_stop = |children: &mut Vec<Child>, i: usize, why: String| -> Failure {
        let log = node_dir(dir, i).join("node.log");
        eprintln!("{why}; the end of {}:", log.display());
        for line in tail(&log, 20) {
            eprintln!("  {line}");
        }
        for c in children.iter_mut() {
            signal(c.id(), "-TERM");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for c in children.iter_mut() {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for j in 1..=n {
            let _ = std::fs::remove_file(node_dir(dir, j).join("node.pid"));
        }
        Failure::Unreachable(format!(
            "node-{i} did not start ({why}); the devnet was stopped; see {}",
            log.display()
        ))
    };
    for i in 1..=n {
        let ndir = node_dir(dir, i);
        let log_path = ndir.join("node.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| io_fail(&log_path, e))?;
        let err = log.try_clone().map_err(|e| io_fail(&log_path, e))?;
        let mut c = gm(dir, n, module)?;
        c.arg("node")
            .arg("start")
            .arg("--config")
            .arg(ndir.join("node.toml"))
            .current_dir(&ndir)
            .stdout(log)
            .stderr(err)
            // Its own process group: a Ctrl-C in this terminal does not reach the nodes.
            .process_group(0);
        match c.spawn() {
            Ok(child) => {
                let pid = child.id();
                children.push(child);
                write_file(&ndir.join("node.pid"), format!("{pid}\n").as_bytes(), false)?;
            }
            Err(e) => {
                return Err(fail_and_stop(
                    &mut children,
                    i,
                    format!("cannot run gmchain node start: {e}"),
                ));
            }
        }
    }
    let deadline = Instant::now() + START_TIMEOUT;
    let mut ready = vec![false; n];
    while ready.iter().any(|r| !r) {
        for i in 1..=n {
            if ready[i - 1] {
                continue;
            }
            if let Ok(Some(status)) = children[i - 1].try_wait() {
                return Err(fail_and_stop(
                    &mut children,
                    i,
                    format!("node-{i} exited ({status})"),
                ));
            }
            ready[i - 1] = answers_status(dir, m, i, module);
        }
        if ready.iter().all(|r| *r) {
            break;
        }
        if Instant::now() >= deadline {
            let i = ready.iter().position(|r| !r).map_or(1, |p| p + 1);
            return Err(fail_and_stop(
                &mut children,
                i,
                format!(
                    "node-{i} did not answer `query status` within {} s",
                    START_TIMEOUT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Whether node `i` answers `gmchain query status` over mutual GM TLS with the admin profile.
fn answers_status(dir: &Path, m: &Manifest, i: usize, module: &Path) -> bool {
    let node = &m.nodes[i - 1];
    let Ok(mut c) = gm(dir, m.nodes.len(), module) else {
        return false;
    };
    c.args(["query", "status", "--client-profile"])
        .arg(dir.join("admin.toml"))
        .arg("--node")
        .arg(node.api.to_string())
        .arg("--node-name")
        .arg(&node.name)
        .arg("--node-organisation")
        .arg(&node.organisation)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.status().map(|s| s.success()).unwrap_or(false)
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// `DIR/env.sh`: the environment alice's commands need (the agencies' soft tokens, the module,
/// her client profile).
fn write_env(dir: &Path, m: &Manifest, module: &Path) -> CmdResult {
    let env = dir.join("env.sh");
    let env_text = format!(
        "# gmchain devnet: the agencies' soft tokens and alice's client profile.\n\
         export GMCHAIN_SOFTTOKEN_DIR={}\nexport GMCHAIN_SOFTTOKEN_SLOTS={}\nexport {}={}\n\
         export GMCHAIN_CLIENT_PROFILE={}\n",
        shell_quote(&dir.join("tokens").display().to_string()),
        m.nodes.len(),
        hsm::MODULE_ENV,
        shell_quote(&module.display().to_string()),
        shell_quote(&dir.join("alice.toml").display().to_string()),
    );
    write_file(&env, env_text.as_bytes(), false)
}

fn print_summary(dir: &Path, m: &Manifest, took: Duration) {
    say!(
        "devnet {:?}: {} validator(s), up in {:.1} s, in {}",
        m.chain_id,
        m.nodes.len(),
        took.as_secs_f64(),
        dir.display()
    );
    say!(
        "{:<8} {:<12} {:<18} {:<32} {:<18}",
        "NODE",
        "ORGANISATION",
        "API (GM TLS)",
        "METRICS",
        "CONSENSUS"
    );
    for (i, node) in m.nodes.iter().enumerate() {
        say!(
            "{:<8} REST and web console: http://{}/",
            node.name,
            node.rest()
        );
        let consensus = if m.nodes.len() > 1 {
            node.consensus.to_string()
        } else {
            "-".into()
        };
        say!(
            "{:<8} {:<12} {:<18} {:<32} {:<18} pid {}",
            node.name,
            node.organisation,
            node.api.to_string(),
            format!("http://{}/metrics", node.metrics),
            consensus,
            running_pid(dir, i + 1).map_or("?".into(), |p| p.to_string())
        );
    }
    let alice_uri = std::fs::read_to_string(dir.join("alice.uri")).unwrap_or_default();
    let d = |p: &str| shell_quote(&dir.join(p).display().to_string());
    say!();
    say!(
        "alice (user of Agency 1, key in its token): client profile {}",
        dir.join("alice.toml").display()
    );
    say!(
        "admin of Agency 1: client profile {}",
        dir.join("admin.toml").display()
    );
    for i in 2..=m.nodes.len() {
        say!(
            "admin of Agency {i}: client profile {}",
            dir.join(format!("{}.toml", admin_label(i))).display()
        );
    }
    say!();
    say!("  source {}", d("env.sh"));
    say!("  gmchain query status");
    say!(
        "  gmchain tx attest notice.txt --key {} --hsm-profile {} --pass-file {} --cert {} --out receipt.json",
        shell_quote(alice_uri.trim()),
        d("softtoken.toml"),
        d("agency-1/user.pin"),
        d("alice.pem")
    );
    say!(
        "  gmchain receipt verify receipt.json notice.txt --genesis {}",
        d("node-1/data/genesis.json")
    );
    say!(
        "  gmchain devnet status --dir {}",
        shell_quote(&dir.display().to_string())
    );
    say!(
        "  gmchain devnet down --dir {}",
        shell_quote(&dir.display().to_string())
    );
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

// ---- status -----------------------------------------------------------------------------------

/// The metrics `status` shows, in order.
const SHOWN: &[(&str, &str)] = &[
    ("gmchain_height", "HEIGHT"),
    ("gmchain_txs_committed_total", "TXS"),
    ("gmchain_pool_size", "POOL"),
    ("gmchain_p2p_links", "LINKS"),
    ("gmchain_consensus_signatures_total", "SIGNED"),
    ("gmchain_tls_handshakes_total", "TLS-HS"),
];

fn status(dir: &Path) -> CmdResult {
    let m = manifest_or_fail(dir)?;
    say_part!(
        "{:<8} {:<12} {:<8} {:<8}",
        "NODE",
        "ORGANISATION",
        "STATE",
        "PID"
    );
    for (_, h) in SHOWN {
        say_part!(" {h:>8}");
    }
    say!();
    let mut down = Vec::new();
    for (idx, node) in m.nodes.iter().enumerate() {
        let i = idx + 1;
        let pid = running_pid(dir, i);
        let metrics = pid.and_then(|_| scrape(node.metrics).ok());
        let state = match (pid, &metrics) {
            (None, _) => "down",
            (Some(_), None) => "no-metrics",
            (Some(_), Some(_)) => "running",
        };
        say_part!(
            "{:<8} {:<12} {:<8} {:<8}",
            node.name,
            node.organisation,
            state,
            pid.map_or("-".into(), |p| p.to_string())
        );
        for (name, _) in SHOWN {
            let v = metrics
                .as_ref()
                .and_then(|ms| ms.iter().find(|(k, _)| k == name))
                .map_or("-".to_string(), |(_, v)| v.clone());
            say_part!(" {v:>8}");
        }
        say!();
        if pid.is_none() {
            down.push(node.name.clone());
        }
    }
    if down.is_empty() {
        Ok(())
    } else {
        Err(Failure::Unreachable(format!(
            "{} not running (see {}/<node>/node.log; `gmchain devnet up --dir {}` starts a stopped devnet)",
            down.join(", "),
            dir.display(),
            dir.display()
        )))
    }
}

/// The unlabelled `gmchain_…` samples of a node's `/metrics` (plain HTTP/1.0).
fn scrape(addr: SocketAddr) -> Result<Vec<(String, String)>, std::io::Error> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: devnet\r\n\r\n")?;
    let mut body = Vec::new();
    s.take(4 << 20).read_to_end(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .lines()
        .filter(|l| l.starts_with("gmchain_"))
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (!k.contains('{')).then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect())
}

// ---- down -------------------------------------------------------------------------------------

/// Stops every running node; returns how many were running.
fn down(dir: &Path) -> Result<usize, Failure> {
    let m = manifest_or_fail(dir)?;
    let running: Vec<(usize, u32)> = (1..=m.nodes.len())
        .filter_map(|i| running_pid(dir, i).map(|p| (i, p)))
        .collect();
    let t0 = Instant::now();
    for (_, pid) in &running {
        signal(*pid, "-TERM");
    }
    for i in 1..=m.nodes.len() {
        let config = node_config(dir, i);
        match running.iter().find(|(j, _)| *j == i) {
            None => say!("node-{i}: not running"),
            Some((_, pid)) => {
                let deadline = Instant::now() + STOP_TIMEOUT;
                while alive_as_node(*pid, &config) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if alive_as_node(*pid, &config) {
                    signal(*pid, "-KILL");
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while alive_as_node(*pid, &config) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    say!(
                        "node-{i}: killed (pid {pid}: no exit {} s after SIGTERM)",
                        STOP_TIMEOUT.as_secs()
                    );
                } else {
                    say!(
                        "node-{i}: stopped (pid {pid}, {:.1} s after SIGTERM)",
                        t0.elapsed().as_secs_f64()
                    );
                }
            }
        }
        let _ = std::fs::remove_file(node_dir(dir, i).join("node.pid"));
    }
    if running.is_empty() {
        say!("the devnet in {} is down", dir.display());
    }
    Ok(running.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_follow_the_base_port() {
        let e = entry(3, 40000).unwrap();
        assert_eq!(e.api.to_string(), "127.0.0.4:40000");
        assert_eq!(e.metrics.to_string(), "127.0.0.4:40001");
        assert_eq!(e.consensus.to_string(), "127.0.0.4:40002");
        assert_eq!(
            (e.name.as_str(), e.organisation.as_str()),
            ("node-3", "Agency 3")
        );
        assert!(entry(1, 65534).is_err());
    }

    #[test]
    fn the_profile_names_the_module_by_absolute_path() {
        let p = softtoken_profile(Path::new("/opt/x y/libgmchain_softtoken.so")).unwrap();
        let parsed: toml::Value = toml::from_str(&p).unwrap();
        assert_eq!(
            parsed["library"].as_str(),
            Some("/opt/x y/libgmchain_softtoken.so")
        );
        assert_eq!(parsed["name"].as_str(), Some("gmchain-softtoken"));
    }

    #[test]
    fn a_node_config_lists_every_other_node_as_a_peer() {
        let dir = Path::new("/d");
        let nodes: Vec<_> = (1..=3).map(|i| entry(i, 30000).unwrap()).collect();
        let agencies: Vec<_> = (1..=3)
            .map(|i| Agency {
                pin_file: dir.join(format!("agency-{i}/user.pin")),
                ca_pem: dir.join(format!("agency-{i}/ca.pem")),
                crl_pem: dir.join(format!("agency-{i}/crl.pem")),
                node_uri: format!("pkcs11:token=agency-{i};object=node-{i}"),
            })
            .collect();
        let text = node_toml(dir, 2, &nodes, &agencies, &dir.join("softtoken.toml"));
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["consensus"]["listen"].as_str(), Some("127.0.0.3:30002"));
        let peers = v["consensus"]["peers"].as_array().unwrap();
        let names: Vec<_> = peers.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["node-1", "node-3"]);
        assert_eq!(peers[1]["organisation"].as_str(), Some("Agency 3"));
        assert_eq!(v["key"]["pass_file"].as_str(), Some("../agency-2/user.pin"));
        assert_eq!(v["validators"].as_array().unwrap().len(), 3);
        assert_eq!(v["organisations"].as_array().unwrap().len(), 3);
        // A single validator has no [consensus] section.
        let one = node_toml(
            dir,
            1,
            &nodes[..1],
            &agencies[..1],
            &dir.join("softtoken.toml"),
        );
        let v: toml::Value = toml::from_str(&one).unwrap();
        assert!(v.get("consensus").is_none());
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/tmp/dev-net/env.sh"), "/tmp/dev-net/env.sh");
        assert_eq!(
            shell_quote("pkcs11:token=a;object=b"),
            "'pkcs11:token=a;object=b'"
        );
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn a_reused_pid_is_not_taken_for_a_node() {
        // This test process is alive but its command line names no node configuration.
        let me = std::process::id();
        assert!(!alive_as_node(me, Path::new("/nowhere/node.toml")));
        assert!(!alive_as_node(u32::MAX, Path::new("/nowhere/node.toml")));
    }
}
