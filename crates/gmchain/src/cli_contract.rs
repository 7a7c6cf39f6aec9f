//! `gmchain contract build`: compiles a Rust contract to the module a deployment takes, and
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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::Subcommand;

use crate::{CmdResult, Failure};

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
