//! `gmchain contract …` and `gmchain query events`: WASM contracts on the chain.
//!
//! `gmchain contract build` compiles a Rust contract to the module a deployment takes, and
//! checks it exactly as the chain will.
//!
//! A contract is a crate whose only dependency is the SDK (`contracts/sdk`, crate
//! `gmchain_sdk`), or a single `.rs` file. The build calls `rustc` directly, not cargo: the
//! rustc that has the `wasm32-unknown-unknown` standard library may be Debian's 1.63, which
//! rustup's cargo cannot drive, and Debian's cargo cannot fetch crates (the SDK has none).
//!
//! Steps: find a rustc with the wasm32 target (`--rustc`, else `rustc` on the PATH, else
//! `/usr/bin/rustc`: the first whose sysroot has `lib/rustlib/wasm32-unknown-unknown`);
//! compile the SDK (`--sdk`, else the crate's `gmchain_sdk` path dependency, else the copy
//! built into this binary) and the contract with `opt-level=z`, `panic=abort`, LTO, a small
//! stack (`--stack-size`, default 64 KiB; Rust's default reserves 1 MiB = 16 pages) and the
//! memory's maximum declared at the chain's page limit; strip every custom section (debug
//! information, `name`, `producers`: nothing the chain reads, and they are most of the bytes);
//! validate with `contracts::validate` under the default `contracts::Limits`; write the module
//! and print its size, SM3 code hash and declared memory. A refusal by validation exits 2 with
//! its code (a floating-point operator names the function, from the `name` section read
//! before stripping).
//!
//! The other subcommands talk to a node:
//! - `deploy`, `upgrade`, `freeze`, `unfreeze`: a `governance.propose` of the contract kind
//!   (docs/contracts.md; nothing runs on the chain until the organisations vote it). A module
//!   is checked here first exactly as the chain checks it (`contracts::validate`, the default
//!   limits), and refused with the rule's code (`CONTRACT_FLOAT`, ...) and exit 2 before
//!   anything is sent; it travels split into arguments of at most [`CODE_CHUNK`] bytes.
//! - `call`: a version 2 transaction with a fuel limit; prints the receipt as JSON; exit 1 when
//!   it failed.
//! - `query`: a read-only run at the node's tip (no transaction), as the client's certificate.
//! - `show`: the contract's record.
//!
//! Arguments are typed (`--arg u64:5`, `--arg str:hello`, docs/contracts.md §2,
//! `types::args`); `--returns` decodes the output by a type list.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, anyhow};
use api::v1 as pb;
use clap::Subcommand;
use types::args::ArgType;
use types::{Call, Status};

use crate::cli_governance::{Schedule, check_kind_args, submit_proposal};
use crate::cli_tx::{
    NodeArgs, SenderArgs, connect, event_fields, event_json, failure_name, print_json, runtime,
    status_failure, submit,
};
use crate::io::read_named;
use crate::{CmdResult, Failure};

/// The fuel limit of `gmchain contract call` without `--fuel`: 10⁷, a tenth of the default
/// `max_fuel_per_tx` and far more than the example contracts use per call.
pub(crate) const DEFAULT_CALL_FUEL: u64 = 10_000_000;

/// The most module bytes in one argument of a deployment or upgrade (the chain takes up to
/// 64 KiB per argument).
pub(crate) const CODE_CHUNK: usize = 60_000;

/// When voting on a contract proposal ends.
#[derive(Debug, clap::Args)]
pub(crate) struct ProposalDeadline {
    /// The last height at which votes count.
    #[arg(long, value_name = "H", conflicts_with = "deadline_in")]
    deadline: Option<u64>,
    /// The deadline as blocks after the node's tip (default 100).
    #[arg(long, value_name = "N")]
    deadline_in: Option<u64>,
}

impl ProposalDeadline {
    fn schedule(&self) -> Schedule {
        match (self.deadline, self.deadline_in) {
            (None, None) => Schedule::deadline_only(None, Some(100)),
            (d, n) => Schedule::deadline_only(d, n),
        }
    }
}

/// A call's method and typed arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct CallArgs {
    /// The contract's name.
    name: String,
    /// The method.
    method: String,
    /// An argument as TYPE:VALUE (u64:5, i64:-3, u32:7, bool:true, str:hello, bytes:0a0b,
    /// digest:<64 hex>), in order; repeat for each.
    #[arg(long = "arg", value_name = "TYPE:VALUE")]
    args: Vec<String>,
    /// Decode the output as these types, comma-separated (one type: the whole output; several:
    /// a tuple, each value length-prefixed).
    #[arg(long, value_name = "TYPE,...")]
    returns: Option<String>,
}

impl CallArgs {
    /// The arguments' bytes and the result types, checked before anything is sent.
    fn parse(&self) -> Result<(Vec<Vec<u8>>, Option<Returns>), Failure> {
        let args = self
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                types::args::parse_arg(a)
                    .map_err(|e| Failure::BadInput(format!("--arg {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let returns = self
            .returns
            .as_deref()
            .map(Returns::parse)
            .transpose()
            .map_err(|e| Failure::BadInput(format!("--returns: {e}")))?;
        Ok((args, returns))
    }
}

/// The WebAssembly target contracts are built for.
const TARGET: &str = "wasm32-unknown-unknown";

/// What to install when no rustc has the target.
const INSTALL: &str = "install the target with `rustup target add wasm32-unknown-unknown` (where rustup can download), or Debian's rustc 1.63 and its wasm32 standard library (`apt-get install rustc libstd-rust-dev-wasm32`), or name a rustc with --rustc";

/// The SDK's sources, for contracts built without an SDK directory on this machine (the files
/// a `wasm32` build compiles; the native test host and the known answers are not among them).
const EMBEDDED_SDK: [(&str, &str); 4] = [
    ("lib.rs", include_str!("../../../contracts/sdk/src/lib.rs")),
    (
        "codec.rs",
        include_str!("../../../contracts/sdk/src/codec.rs"),
    ),
    (
        "host.rs",
        include_str!("../../../contracts/sdk/src/host.rs"),
    ),
    (
        "storage.rs",
        include_str!("../../../contracts/sdk/src/storage.rs"),
    ),
];

#[derive(Debug, Subcommand)]
pub(crate) enum ContractCommand {
    /// Builds a contract (a crate using the SDK, or one .rs file) into a WebAssembly module,
    /// strips its custom sections and validates it as a deployment would; prints the module's
    /// size and SM3 code hash.
    Build(BuildArgs),
    /// Proposes deploying a WASM module as contract NAME (kind contract-deploy; sent by an
    /// admin, whose vote is a yes). The module is checked here as the chain will check it.
    Deploy(ModuleChange),
    /// Proposes replacing contract NAME's code (kind contract-upgrade; its state stays; the new
    /// code's `migrate`, if exported, runs in the executing vote).
    Upgrade(ModuleChange),
    /// Proposes freezing contract NAME: calls are refused, queries still answer.
    Freeze(StateChange),
    /// Proposes unfreezing contract NAME.
    Unfreeze(StateChange),
    /// Calls a method in a transaction (version 2, with a fuel limit), waits for the commit
    /// and prints the receipt (JSON: status, fuel used, output, events). Exit 1 when the
    /// receipt says Failed.
    Call {
        #[command(flatten)]
        call: CallArgs,
        /// The transaction's fuel limit (at most the chain's max_fuel_per_tx).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_CALL_FUEL)]
        fuel: u64,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Runs a method read-only at the node's tip, as your certificate (no transaction,
    /// nothing written); prints the output (JSON).
    Query {
        #[command(flatten)]
        call: CallArgs,
        /// The most fuel the query may use (default: the chain's max_fuel_per_tx).
        #[arg(long, value_name = "N")]
        fuel: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// A deployed contract's record: code hash and size, version, frozen, heights (JSON).
    Show {
        /// The contract's name.
        name: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// A proposal that brings a module: `contract deploy` and `contract upgrade`.
#[derive(Debug, clap::Args)]
pub(crate) struct ModuleChange {
    /// The contract's name (1-32 of a-z, 0-9, '-', '_', starting with a letter).
    name: String,
    /// The module (.wasm).
    #[arg(long, value_name = "FILE")]
    code: PathBuf,
    /// The proposal's fuel limit [default: what the checks of the module cost (40 per byte,
    /// 800 per function) plus 10⁷]: with a policy one organisation meets, the proposal
    /// executes at once and runs the module's `init`/`migrate` on what is left.
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    #[command(flatten)]
    deadline: ProposalDeadline,
    #[command(flatten)]
    sender: SenderArgs,
    #[command(flatten)]
    node: NodeArgs,
}

/// A proposal that changes only a contract's state: `contract freeze` and `contract unfreeze`.
#[derive(Debug, clap::Args)]
pub(crate) struct StateChange {
    /// The contract's name.
    name: String,
    #[command(flatten)]
    deadline: ProposalDeadline,
    #[command(flatten)]
    sender: SenderArgs,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The contract: a crate directory (Cargo.toml, src/lib.rs) or a single .rs file.
    #[arg(long)]
    path: PathBuf,
    /// Where to write the module [default: <crate name>.wasm in the current directory].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The SDK's directory (contracts/sdk) [default: the crate's gmchain_sdk path dependency,
    /// else the SDK built into this gmchain].
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
    /// The rustc to use; it must have the wasm32-unknown-unknown target [default: rustc on
    /// the PATH, else /usr/bin/rustc].
    #[arg(long, value_name = "FILE")]
    rustc: Option<PathBuf>,
    /// Bytes of linear memory reserved for the stack.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    stack_size: u32,
}

pub(crate) fn run(c: ContractCommand) -> CmdResult {
    match c {
        ContractCommand::Build(args) => build(&args),
        other => run_on_chain(other),
    }
}

/// What is compiled: the crate's name, root file, edition and SDK directory (if it names one).
#[derive(Debug)]
struct Source {
    name: String,
    root: PathBuf,
    edition: String,
    sdk: Option<PathBuf>,
}

fn source(path: &Path) -> anyhow::Result<Source> {
    if path.is_file() {
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            return Err(anyhow!(
                "--path {}: not a .rs file or a crate directory",
                path.display()
            ));
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("contract");
        return Ok(Source {
            name: crate_name(stem),
            root: path.to_path_buf(),
            edition: "2021".into(),
            sdk: None,
        });
    }
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "--path {}: neither a .rs file nor a crate directory with a Cargo.toml",
            path.display()
        )
    })?;
    let toml: toml::Table = text
        .parse()
        .with_context(|| format!("{}: not TOML", manifest.display()))?;
    let package = toml.get("package").and_then(|p| p.as_table());
    let name = package
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| anyhow!("{}: no [package] name", manifest.display()))?;
    let edition = package
        .and_then(|p| p.get("edition"))
        .and_then(|e| e.as_str())
        .unwrap_or("2021")
        .to_string();
    let mut sdk = None;
    if let Some(deps) = toml.get("dependencies").and_then(|d| d.as_table()) {
        for (dep, spec) in deps {
            if dep != "gmchain_sdk" {
                return Err(anyhow!(
                    "{}: dependency `{dep}`: `gmchain contract build` compiles crates whose only dependency is gmchain_sdk (build others with cargo)",
                    manifest.display()
                ));
            }
            if let Some(p) = spec.get("path").and_then(|p| p.as_str()) {
                sdk = Some(path.join(p));
            }
        }
    }
    let root = toml
        .get("lib")
        .and_then(|l| l.get("path"))
        .and_then(|p| p.as_str())
        .map(|p| path.join(p))
        .unwrap_or_else(|| path.join("src/lib.rs"));
    Ok(Source {
        name: crate_name(name),
        root,
        edition,
        sdk,
    })
}

fn crate_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A rustc that has the wasm32 target: its path and `--version`.
#[derive(Debug)]
struct Rustc {
    path: PathBuf,
    version: String,
}

/// Returns whether `rustc` runs and its sysroot has the wasm32 standard library.
fn probe(rustc: &Path, dir: &Path) -> Option<Rustc> {
    let out = Command::new(rustc)
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !sysroot
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
    {
        return None;
    }
    let version = Command::new(rustc)
        .current_dir(dir)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Some(Rustc {
        path: rustc.to_path_buf(),
        version,
    })
}

fn find_rustc(given: Option<&Path>, dir: &Path) -> Result<Rustc, Failure> {
    if let Some(rustc) = given {
        return probe(rustc, dir).ok_or_else(|| {
            Failure::BadInput(format!(
                "--rustc {} does not run or has no {TARGET} standard library; {INSTALL}",
                rustc.display()
            ))
        });
    }
    for candidate in ["rustc", "/usr/bin/rustc"] {
        if let Some(found) = probe(Path::new(candidate), dir) {
            return Ok(found);
        }
    }
    Err(Failure::BadInput(format!(
        "no rustc with the {TARGET} target (tried rustc on the PATH and /usr/bin/rustc); {INSTALL}"
    )))
}

/// A directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("gmchain-contract-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs rustc; its diagnostics go to this process's stderr.
fn rustc_run(rustc: &Rustc, args: &[String], what: &str) -> CmdResult {
    let status = Command::new(&rustc.path)
        .args(args)
        .status()
        .map_err(|e| Failure::BadInput(format!("cannot run {}: {e}", rustc.path.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::BadInput(format!(
            "{} could not compile {what} (its errors are above)",
            rustc.version
        )))
    }
}

fn build(args: &BuildArgs) -> CmdResult {
    let started = Instant::now();
    let src = source(&args.path)?;
    let dir = if args.path.is_dir() {
        args.path.clone()
    } else {
        args.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let rustc = find_rustc(args.rustc.as_deref(), &dir)?;
    let tmp = TempDir::new()?;

    let sdk_root = match args.sdk.as_ref().or(src.sdk.as_ref()) {
        Some(sdk) => {
            let root = sdk.join("src/lib.rs");
            if !root.is_file() {
                return Err(Failure::BadInput(format!(
                    "SDK {}: no src/lib.rs",
                    sdk.display()
                )));
            }
            root
        }
        None => {
            let src_dir = tmp.0.join("sdk/src");
            std::fs::create_dir_all(&src_dir)
                .with_context(|| format!("create {}", src_dir.display()))?;
            for (name, text) in EMBEDDED_SDK {
                std::fs::write(src_dir.join(name), text)
                    .with_context(|| format!("write the SDK's {name}"))?;
            }
            src_dir.join("lib.rs")
        }
    };

    let common = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--target",
            TARGET,
            "-C",
            "opt-level=z",
            "-C",
            "panic=abort",
            "-C",
            "codegen-units=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let out_dir = tmp.0.display().to_string();
    let mut sdk_args = common(&[
        "--edition",
        "2021",
        "--crate-type",
        "rlib",
        "--crate-name",
        "gmchain_sdk",
        "--out-dir",
        &out_dir,
    ]);
    sdk_args.push(sdk_root.display().to_string());
    rustc_run(&rustc, &sdk_args, "the SDK")?;

    let limits = contracts::Limits::default();
    let max_memory = u64::from(limits.max_memory_pages) * contracts::PAGE_BYTES;
    let raw_path = tmp.0.join(format!("{}.wasm", src.name));
    let mut contract_args = common(&[
        "--edition",
        &src.edition,
        "--crate-type",
        "cdylib",
        "--crate-name",
        &src.name,
        "-C",
        "lto",
        "-C",
        &format!("link-arg=-zstack-size={}", args.stack_size),
        "-C",
        &format!("link-arg=--max-memory={max_memory}"),
        "-L",
        &out_dir,
        "--extern",
        &format!("gmchain_sdk={}/libgmchain_sdk.rlib", out_dir),
        "-o",
        &raw_path.display().to_string(),
    ]);
    contract_args.push(src.root.display().to_string());
    rustc_run(&rustc, &contract_args, &src.root.display().to_string())?;

    let raw = std::fs::read(&raw_path).with_context(|| format!("read {}", raw_path.display()))?;
    let module = walk(&raw).map_err(|e| Failure::BadInput(format!("the compiled module: {e}")))?;
    let validated = contracts::validate(&module.stripped, &limits).map_err(|e| {
        let mut message = format!("{}: {e}", codes::Coded::code(&e).name);
        // A float operator carries its function's index; a float local names it in its place
        // (`function 17 (a local)`). The `name` section read before stripping gives the name.
        let function = match &e {
            contracts::DeployError::FloatInstruction { function, .. } => Some(*function),
            contracts::DeployError::FloatType { place } => place
                .strip_prefix("function ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse::<u32>().ok()),
            _ => None,
        };
        if let Some(name) = function.and_then(|f| module.function_names.get(&f).map(|n| (f, n))) {
            message.push_str(&format!(" (function {} is `{}`)", name.0, name.1));
        }
        Failure::coded(&e, message)
    })?;

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", src.name)));
    std::fs::write(&out, &module.stripped).with_context(|| format!("write {}", out.display()))?;
    let memory = match module.memory {
        Some((min, Some(max))) => format!("{min} pages, at most {max}"),
        Some((min, None)) => format!("{min} pages, no maximum declared"),
        None => "none".into(),
    };
    println!("module  {}", out.display());
    println!(
        "size    {} bytes ({} bytes of custom sections stripped)",
        module.stripped.len(),
        raw.len() - module.stripped.len()
    );
    println!("hash    {}", validated.hash());
    println!("memory  {memory}");
    println!(
        "rustc   {} ({}), {:.1} s",
        rustc.version,
        rustc.path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A module's sections as `build` needs them.
#[derive(Debug)]
struct Walked {
    /// The module without its custom sections.
    stripped: Vec<u8>,
    /// Function names from the `name` section (index → name, demangled).
    function_names: std::collections::BTreeMap<u32, String>,
    /// The first memory's declared minimum and maximum pages.
    memory: Option<(u64, Option<u64>)>,
}

/// Reads an unsigned LEB128 of at most 64 bits at `*at`.
fn leb(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes
            .get(*at)
            .ok_or_else(|| format!("a number runs past the end at byte {at}"))?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(format!("a number longer than 64 bits before byte {at}"))
}

/// Walks the sections of a module (binary format: the 8-byte header, then sections of one id
/// byte, a LEB128 size and the payload): keeps every section except custom ones (id 0), reads
/// function names from the `name` custom section and the memory section's limits. It checks
/// only the framing: validation proper is `contracts::validate`'s.
fn walk(bytes: &[u8]) -> Result<Walked, String> {
    const HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    if bytes.get(..8) != Some(&HEADER[..]) {
        return Err("not a WebAssembly 1.0 module (bad header)".into());
    }
    let mut stripped = HEADER.to_vec();
    let mut function_names = std::collections::BTreeMap::new();
    let mut memory = None;
    let mut at = 8;
    while at < bytes.len() {
        let start = at;
        let id = bytes[at];
        at += 1;
        let size = usize::try_from(leb(bytes, &mut at)?).map_err(|e| e.to_string())?;
        let end = at
            .checked_add(size)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("section {id} at byte {start} runs past the end"))?;
        let payload = &bytes[at..end];
        match id {
            0 => {
                let mut p = 0;
                let name_len = usize::try_from(leb(payload, &mut p)?).map_err(|e| e.to_string())?;
                if payload.get(p..p + name_len) == Some(&b"name"[..]) {
                    names(&payload[p + name_len..], &mut function_names);
                }
            }
            5 => {
                let mut p = 0;
                if leb(payload, &mut p)? > 0 {
                    let flags = *payload.get(p).ok_or("memory section runs past the end")?;
                    p += 1;
                    let min = leb(payload, &mut p)?;
                    let max = if flags & 1 == 1 {
                        Some(leb(payload, &mut p)?)
                    } else {
                        None
                    };
                    memory = Some((min, max));
                }
                stripped.extend_from_slice(&bytes[start..end]);
            }
            _ => stripped.extend_from_slice(&bytes[start..end]),
        }
        at = end;
    }
    Ok(Walked {
        stripped,
        function_names,
        memory,
    })
}

/// Reads the function-name subsection (id 1) of a `name` section; a malformed one is ignored
/// (names only improve a message).
fn names(payload: &[u8], out: &mut std::collections::BTreeMap<u32, String>) {
    let mut at = 0;
    let read = |at: &mut usize| leb(payload, at).ok();
    while at < payload.len() {
        let id = payload[at];
        at += 1;
        let Some(size) = read(&mut at).and_then(|s| usize::try_from(s).ok()) else {
            return;
        };
        let Some(sub) = payload.get(at..at.saturating_add(size)) else {
            return;
        };
        at += size;
        if id != 1 {
            continue;
        }
        let mut p = 0;
        let Some(count) = leb(sub, &mut p).ok() else {
            return;
        };
        for _ in 0..count {
            let (Ok(index), Ok(len)) = (leb(sub, &mut p), leb(sub, &mut p)) else {
                return;
            };
            let Some(name) = usize::try_from(len).ok().and_then(|l| sub.get(p..p + l)) else {
                return;
            };
            p += name.len();
            if let Ok(index) = u32::try_from(index) {
                out.insert(index, demangle(&String::from_utf8_lossy(name)));
            }
        }
    }
}

/// Turns a legacy Rust symbol (`_ZN7licence7average17h0123456789abcdefE`) into its path
/// (`licence::average`); other names are returned as they are.
fn demangle(symbol: &str) -> String {
    let Some(mut rest) = symbol.strip_prefix("_ZN").and_then(|s| s.strip_suffix('E')) else {
        return symbol.to_string();
    };
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(len) = rest[..digits].parse::<usize>() else {
            return symbol.to_string();
        };
        let Some(part) = rest.get(digits..digits + len) else {
            return symbol.to_string();
        };
        parts.push(part);
        rest = &rest[digits + len..];
    }
    if parts
        .last()
        .is_some_and(|h| h.len() == 17 && h.starts_with('h'))
    {
        parts.pop();
    }
    parts.join("::")
}

/// The arguments of `gmchain query events`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// Only events of this contract.
    #[arg(long)]
    contract: Option<String>,
    /// Only events with this name.
    #[arg(long)]
    name: Option<String>,
    /// Only events with this topic, typed like an argument (str:case-1, u64:5, bytes:0a0b).
    #[arg(long, value_name = "TYPE:VALUE")]
    topic: Option<String>,
    /// The first block (default 1).
    #[arg(long, value_name = "H", default_value_t = 1)]
    from: u64,
    /// The last block (default the tip); at most 10000 blocks in one request.
    #[arg(long, value_name = "H")]
    to: Option<u64>,
    /// The most events printed from the range (the node's default 1000, at most 10000).
    #[arg(long, value_name = "N", default_value_t = 0)]
    limit: u32,
    /// After the range, print each matching event of the blocks committed from now on, one
    /// JSON object per line, until interrupted.
    #[arg(long, conflicts_with = "to")]
    follow: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// Reads and checks a module as the chain will at deployment; returns its bytes.
/// Reads and checks the module at `path` as the chain will; returns it with the fuel a proposal
/// carrying it pays for those checks.
fn module(path: &Path) -> Result<(Vec<u8>, u64), Failure> {
    let code = read_named("--code", path)?;
    let m = contracts::validate(&code, &contracts::Limits::default()).map_err(|e| {
        Failure::BadInput(format!(
            "--code {}: {}: {e}",
            path.display(),
            codes::Coded::code(&e).name
        ))
    })?;
    let checks = contracts::fuel::module_check(code.len() as u64, m.functions());
    Ok((code, checks))
}

/// A deployment's or upgrade's arguments: the name, then the module in chunks.
fn code_args(name: &str, code: &[u8]) -> Vec<Vec<u8>> {
    let mut args = vec![name.as_bytes().to_vec()];
    args.extend(code.chunks(CODE_CHUNK).map(<[u8]>::to_vec));
    args
}

/// The subcommands that talk to a node.
fn run_on_chain(cmd: ContractCommand) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            ContractCommand::Build(args) => build(&args),
            ContractCommand::Deploy(m) => module_change("contract-deploy", &m).await,
            ContractCommand::Upgrade(m) => module_change("contract-upgrade", &m).await,
            ContractCommand::Freeze(c) => {
                lifecycle(
                    "contract-freeze",
                    &c.name,
                    None,
                    &c.deadline,
                    &c.sender,
                    &c.node,
                )
                .await
            }
            ContractCommand::Unfreeze(c) => {
                lifecycle(
                    "contract-unfreeze",
                    &c.name,
                    None,
                    &c.deadline,
                    &c.sender,
                    &c.node,
                )
                .await
            }
            ContractCommand::Call {
                call,
                fuel,
                sender,
                node,
            } => contract_call(&call, fuel, &sender, &node).await,
            ContractCommand::Query { call, fuel, node } => query(&call, fuel, &node).await,
            ContractCommand::Show { name, node } => show(&name, &node).await,
        }
    })
}

/// Proposes the deployment or upgrade `kind` that `m` describes.
async fn module_change(kind: &str, m: &ModuleChange) -> CmdResult {
    lifecycle(
        kind,
        &m.name,
        Some((&m.code, m.fuel)),
        &m.deadline,
        &m.sender,
        &m.node,
    )
    .await
}

/// Proposes the lifecycle change `kind` of contract `name` (with the module at `code` for a
/// deployment or an upgrade).
async fn lifecycle(
    kind: &str,
    name: &str,
    code: Option<(&Path, Option<u64>)>,
    deadline: &ProposalDeadline,
    sender: &SenderArgs,
    node: &NodeArgs,
) -> CmdResult {
    execution::check_contract_name(name).map_err(Failure::BadInput)?;
    let (args, fuel) = match code {
        Some((path, fuel)) => {
            let (code, checks) = module(path)?;
            println!(
                "module {}: {} bytes, SM3 {} (checked as the chain will; the checks cost {checks} fuel)",
                path.display(),
                code.len(),
                crypto_sm::sm3::sm3(&code)
            );
            let fuel = fuel.unwrap_or(
                DEFAULT_CALL_FUEL
                    .saturating_add(checks)
                    .saturating_add(execution::BUILTIN_CALL_COST),
            );
            (code_args(name, &code), Some(fuel))
        }
        None => (vec![name.as_bytes().to_vec()], None),
    };
    check_kind_args(kind, &args, "NAME/--code")?;
    submit_proposal(kind, args, deadline.schedule(), sender, node, fuel).await
}

async fn contract_call(
    call: &CallArgs,
    fuel: u64,
    sender: &SenderArgs,
    node: &NodeArgs,
) -> CmdResult {
    let (args, returns) = call.parse()?;
    let mut client = connect(node).await?;
    let committed = submit(
        &mut client,
        sender,
        Call {
            contract: call.name.clone(),
            method: call.method.clone(),
            args,
        },
        Some(fuel),
    )
    .await?;
    let r = &committed.receipt;
    let (status, code, message) = match &r.status {
        Status::Success => ("success", None, None),
        Status::Failed { code, message } => ("failed", Some(failure_name(*code)), Some(message)),
    };
    let decoded = match (&returns, &r.status) {
        (Some(t), Status::Success) => Some(t.decode(&r.output)),
        _ => None,
    };
    print_json(&serde_json::json!({
        "tx_id": committed.id.to_string(),
        "height": committed.height,
        "position": committed.position,
        "call": format!("{}.{}", call.name, call.method),
        "status": status,
        "code": code,
        "code_number": match &r.status {
            Status::Failed { code, .. } => Some(*code),
            Status::Success => None,
        },
        "message": message,
        "fuel_limit": fuel,
        "fuel_used": r.fuel_used,
        "output": hex::encode(&r.output),
        "returns": decoded,
        "events": r.events.iter().map(event_json).collect::<Vec<_>>(),
    }))?;
    if let Status::Failed { code, message } = &r.status {
        return Err(Failure::NotVerified(format!(
            "transaction {} was committed at height {} but failed: {} ({code}): {message}",
            committed.id,
            committed.height,
            failure_name(*code)
        )));
    }
    Ok(())
}

async fn query(call: &CallArgs, fuel: Option<u64>, node: &NodeArgs) -> CmdResult {
    let (args, returns) = call.parse()?;
    let mut client = connect(node).await?;
    let a = client
        .query_contract(pb::QueryContractRequest {
            contract: call.name.clone(),
            method: call.method.clone(),
            args,
            fuel,
        })
        .await
        .map_err(|s| status_failure("query", s))?
        .into_inner();
    print_json(&serde_json::json!({
        "call": format!("{}.{}", call.name, call.method),
        "height": a.height,
        "fuel_used": a.fuel_used,
        "output": hex::encode(&a.output),
        "returns": returns.map(|t| t.decode(&a.output)),
    }))
}

async fn show(name: &str, node: &NodeArgs) -> CmdResult {
    let mut client = connect(node).await?;
    let c = client
        .get_contract(pb::GetContractRequest {
            name: name.to_string(),
        })
        .await
        .map_err(|s| status_failure("contract", s))?
        .into_inner();
    print_json(&serde_json::json!({
        "name": c.name,
        "code_hash": hex::encode(&c.code_hash),
        "code_size": c.code_size,
        "version": c.version,
        "frozen": c.frozen,
        "deployed": c.deployed,
        "updated": c.updated,
        "proposal": hex::encode(&c.proposal_id),
        "tip": c.tip,
    }))
}

fn contract_event_json(e: &pb::ContractEvent) -> serde_json::Value {
    let mut j = event_fields(&e.contract, &e.name, &e.topics, &e.data);
    if let Some(o) = j.as_object_mut() {
        o.insert("height".into(), e.height.into());
        o.insert("tx_id".into(), hex::encode(&e.tx_id).into());
        o.insert("position".into(), e.position.into());
        o.insert("index".into(), e.index.into());
    }
    j
}

/// `gmchain query events`.
pub(crate) async fn events(a: EventsArgs) -> CmdResult {
    let topic = a
        .topic
        .as_deref()
        .map(types::args::parse_arg)
        .transpose()
        .map_err(|e| Failure::BadInput(format!("--topic: {e}")))?;
    let filter = pb::EventFilter {
        contract: a.contract.clone(),
        name: a.name.clone(),
        topic,
    };
    {
        let mut client = connect(&a.node).await?;
        // Subscribed before the range is read, so that no block between the two is missed;
        // the stream's events of blocks the range covered are skipped.
        let stream = if a.follow {
            Some(
                client
                    .subscribe_events(pb::SubscribeEventsRequest {
                        filter: Some(filter.clone()),
                    })
                    .await
                    .map_err(|s| status_failure("event subscription", s))?
                    .into_inner(),
            )
        } else {
            None
        };
        let r = client
            .query_events(pb::QueryEventsRequest {
                filter: Some(filter),
                from_height: a.from,
                to_height: a.to,
                limit: a.limit,
            })
            .await
            .map_err(|s| status_failure("events", s))?
            .into_inner();
        let Some(mut stream) = stream else {
            return print_json(&serde_json::json!({
                "from_height": a.from.max(1),
                "scanned_to": r.scanned_to,
                "truncated": r.truncated,
                "tip": r.tip,
                "events": r.events.iter().map(contract_event_json).collect::<Vec<_>>(),
            }));
        };
        let line = |e: &pb::ContractEvent| -> CmdResult {
            let text = serde_json::to_string(&contract_event_json(e))
                .map_err(|e| Failure::BadInput(format!("cannot render JSON: {e}")))?;
            println!("{text}");
            Ok(())
        };
        for e in &r.events {
            line(e)?;
        }
        if r.truncated {
            eprintln!(
                "gmchain: the range holds more than the {} events printed (the scan stopped at block {}; ask again with --from); following the blocks committed from now on",
                r.events.len(),
                r.scanned_to
            );
        }
        loop {
            match stream.message().await {
                Ok(Some(e)) if e.height <= r.scanned_to => {}
                Ok(Some(e)) => line(&e)?,
                Ok(None) => {
                    return Err(Failure::Unreachable(
                        "the node ended the event stream".into(),
                    ));
                }
                Err(s) => return Err(status_failure("event stream", s)),
            }
        }
    }
}

/// The result type of `--returns`: one type, or several as a tuple (each value
/// length-prefixed, docs/contracts.md §2).
#[derive(Debug)]
struct Returns(ArgType);

impl Returns {
    fn parse(text: &str) -> Result<Returns, String> {
        let text = text.trim();
        let ty = match text.parse::<ArgType>() {
            Ok(t) => t,
            Err(e) if text.contains(',') && !text.starts_with('(') => format!("({text})")
                .parse::<ArgType>()
                .map_err(|_| e.to_string())?,
            Err(e) => return Err(e.to_string()),
        };
        Ok(Returns(ty))
    }

    /// The output shown as a value of the type (`types::args::decode_text`); an output that
    /// does not decode is reported in place.
    fn decode(&self, output: &[u8]) -> serde_json::Value {
        match types::args::decode_text(&self.0, output) {
            Ok(text) => serde_json::Value::String(text),
            Err(e) => serde_json::json!({ "undecodable": e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_strips_custom_sections_and_reads_memory_and_names() {
        let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        // memory section: one memory, min 2, max 64.
        m.extend_from_slice(&[5, 4, 1, 1, 2, 64]);
        // custom `name` section with function 3 named `_ZN3foo3bar17h0011223344556677E`.
        let sym = b"_ZN3foo3bar17h0011223344556677E";
        let mut sub = vec![1, 3, sym.len() as u8];
        sub.extend_from_slice(sym);
        let mut payload = vec![4];
        payload.extend_from_slice(b"name");
        payload.push(1);
        payload.push(sub.len() as u8);
        payload.extend_from_slice(&sub);
        m.push(0);
        m.push(payload.len() as u8);
        m.extend_from_slice(&payload);
        let w = walk(&m).unwrap();
        assert_eq!(w.stripped, m[..14]);
        assert_eq!(w.memory, Some((2, Some(64))));
        assert_eq!(
            w.function_names.get(&3).map(String::as_str),
            Some("foo::bar")
        );
        assert!(
            walk(&m[..m.len() - 1])
                .unwrap_err()
                .contains("runs past the end")
        );
        assert!(walk(b"\0asm\x02\0\0\0").unwrap_err().contains("bad header"));
    }

    #[test]
    fn demangle_keeps_plain_names() {
        assert_eq!(demangle("call"), "call");
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("_ZN9broken"), "_ZN9broken");
    }
}
