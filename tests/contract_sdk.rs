//! The contract SDK and its examples as a contract author meets them: `gmchain contract build`
//! on the three examples (each module validates as a deployment would, and `hello` fits the
//! page limit), the SDK's and the examples' native unit tests (the typed-argument known
//! answers among them), and the refusals of `contract build` (floating point, no wasm32
//! toolchain, a crate with other dependencies).
//!
//! The wasm32 builds need a rustc with the `wasm32-unknown-unknown` standard library; the
//! README's test command installs Debian's (`scripts/setup.sh`). Without one these tests fail:
//! they never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn gmchain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmchain"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run gmchain")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The declared memory pages (minimum, maximum) and the section ids of a module.
fn sections(module: &[u8]) -> (Option<(u64, Option<u64>)>, Vec<u8>) {
    fn leb(b: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return v;
            }
        }
    }
    let (mut at, mut memory, mut ids) = (8, None, Vec::new());
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = leb(module, &mut at) as usize;
        if id == 5 {
            let mut p = at;
            assert_eq!(leb(module, &mut p), 1, "one memory");
            let flags = module[p];
            p += 1;
            let min = leb(module, &mut p);
            let max = (flags & 1 == 1).then(|| leb(module, &mut p));
            memory = Some((min, max));
        }
        ids.push(id);
        at += size;
    }
    (memory, ids)
}

#[test]
fn the_examples_build_and_validate_as_a_deployment_would() {
    let out = tempfile::tempdir().expect("tempdir");
    let limits = contracts::Limits::default();
    let mut report = Vec::new();
    for name in ["hello", "workflow", "licences"] {
        let wasm = out.path().join(format!("{name}.wasm"));
        let started = Instant::now();
        let o = gmchain(&[
            "contract",
            "build",
            "--path",
            &format!("contracts/examples/{name}"),
            "--out",
            wasm.to_str().expect("utf-8 path"),
        ]);
        let took = started.elapsed();
        assert!(
            o.status.success(),
            "gmchain contract build {name} (needs a rustc with the wasm32-unknown-unknown target: \
             scripts/setup.sh installs Debian's rustc and libstd-rust-dev-wasm32): {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        let stdout = text(&o.stdout);
        let module = std::fs::read(&wasm).expect("the built module");
        let validated = contracts::validate(&module, &limits).expect("the module validates");
        assert!(validated.exports(contracts::EntryPoint::Call));
        assert!(
            stdout.contains(&format!("hash    {}", validated.hash())),
            "the printed code hash is the module's SM3: {stdout}"
        );
        assert!(
            stdout.contains(&format!("size    {} bytes", module.len())),
            "{stdout}"
        );
        let (memory, ids) = sections(&module);
        assert!(
            !ids.contains(&0),
            "{name}: custom sections are stripped: {ids:?}"
        );
        let (min, max) = memory.expect("a memory");
        assert!(
            min <= 64 && max == Some(64),
            "{name}: memory {min}..{max:?} pages"
        );
        report.push(format!(
            "{name}: {} bytes, memory {min}..{} pages, built in {:.1} s",
            module.len(),
            max.unwrap_or(0),
            took.as_secs_f64()
        ));
        if name == "hello" {
            // The tutorial's contract: small, and deployable at the page limit.
            assert!(module.len() < 64 * 1024, "hello is {} bytes", module.len());
            assert!(min <= 2, "hello needs {min} pages before it runs");
        }
    }
    eprintln!("contract build: {}", report.join("; "));
}

/// Compiles `root_file` natively with rustc's test harness and runs it; returns the number
/// of tests that passed.
fn native_tests(dir: &Path, name: &str, root_file: &Path, extra: &[&str]) -> usize {
    let bin = dir.join(name);
    let o = Command::new("rustc")
        .current_dir(root())
        .args(["--edition", "2021", "--test", "-o"])
        .arg(&bin)
        .args(extra)
        .arg(root_file)
        .output()
        .expect("run rustc");
    assert!(
        o.status.success(),
        "rustc --test {name}: {}",
        text(&o.stderr)
    );
    let o = Command::new(&bin).output().expect("run the tests");
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{name}: {stdout}{}", text(&o.stderr));
    let passed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a test result line");
    assert!(passed > 0, "{name}: no tests ran");
    passed
}

#[test]
fn the_sdk_and_the_examples_pass_their_native_unit_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sdk = root().join("contracts/sdk/src/lib.rs");
    // The SDK's own tests, the known answers of contracts/sdk/args.kat among them.
    let sdk_tests = native_tests(dir.path(), "sdk", &sdk, &[]);
    assert!(sdk_tests >= 17, "{sdk_tests} SDK tests");

    let o = Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "rlib",
            "--crate-name",
            "gmchain_sdk",
        ])
        .arg("--out-dir")
        .arg(dir.path())
        .arg(&sdk)
        .output()
        .expect("run rustc");
    assert!(o.status.success(), "the SDK, natively: {}", text(&o.stderr));
    let extern_sdk = format!(
        "gmchain_sdk={}",
        dir.path().join("libgmchain_sdk.rlib").display()
    );
    let mut counts = vec![format!("sdk {sdk_tests}")];
    for name in ["hello", "workflow", "licences"] {
        let file = root().join(format!("contracts/examples/{name}/src/lib.rs"));
        let n = native_tests(dir.path(), name, &file, &["--extern", &extern_sdk]);
        counts.push(format!("{name} {n}"));
    }
    eprintln!("native unit tests passed: {}", counts.join(", "));
}

/// The host API v1 of `docs/contracts.md` §2: every function's parameters and results (`i` =
/// i32, `I` = i64), written from the table there, not from the SDK.
const HOST_API_V1: [(&str, &str, &str); 18] = [
    ("input_len", "", "i"),
    ("input_read", "i", ""),
    ("storage_read", "iiii", "i"),
    ("storage_write", "iiii", ""),
    ("storage_remove", "ii", ""),
    ("caller", "ii", "i"),
    ("caller_contract", "ii", "i"),
    ("block_height", "", "I"),
    ("block_time_ms", "", "I"),
    ("tx_id", "i", ""),
    ("sm3", "iii", ""),
    ("sm2_verify", "iiiiiiii", "i"),
    ("emit", "iiiiii", ""),
    ("call", "iiii", "i"),
    ("return_data_len", "", "i"),
    ("return_data_read", "i", ""),
    ("set_return", "ii", ""),
    ("abort", "ii", ""),
];

/// Returns each import of a module as (module, name, params, results) in the letters of
/// [`HOST_API_V1`].
fn imports(module: &[u8]) -> Vec<(String, String, String, String)> {
    fn leb(b: &[u8], at: &mut usize) -> usize {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            v |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return v;
            }
        }
    }
    fn name(b: &[u8], at: &mut usize) -> String {
        let n = leb(b, at);
        let s = String::from_utf8_lossy(&b[*at..*at + n]).into_owned();
        *at += n;
        s
    }
    fn vals(b: &[u8], at: &mut usize) -> String {
        let n = leb(b, at);
        let s = b[*at..*at + n]
            .iter()
            .map(|t| match t {
                0x7f => 'i',
                0x7e => 'I',
                _ => '?',
            })
            .collect();
        *at += n;
        s
    }
    let (mut at, mut types, mut out) = (8, Vec::new(), Vec::new());
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = leb(module, &mut at);
        let mut p = at;
        match id {
            1 => {
                for _ in 0..leb(module, &mut p) {
                    assert_eq!(module[p], 0x60, "a function type");
                    p += 1;
                    let params = vals(module, &mut p);
                    let results = vals(module, &mut p);
                    types.push((params, results));
                }
            }
            2 => {
                for _ in 0..leb(module, &mut p) {
                    let m = name(module, &mut p);
                    let f = name(module, &mut p);
                    assert_eq!(module[p], 0, "{m}.{f} is a function import");
                    p += 1;
                    let (params, results) = types[leb(module, &mut p)].clone();
                    out.push((m, f, params, results));
                }
            }
            _ => {}
        }
        at += size;
    }
    out
}

#[test]
fn the_sdk_imports_the_host_api_v1_with_its_exact_signatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("every_import.rs");
    // A contract that reaches every host function through the SDK, so the linker keeps every
    // import.
    std::fs::write(
        &file,
        r#"
use gmchain_sdk::*;

fn all(key: Bytes) -> u64 {
    let input = input();
    let v: Value<Bytes> = Value::new("v");
    v.set(&key);
    let _ = v.get();
    v.remove();
    let who = caller();
    let from = caller_contract();
    let digest = sm3(&key.0);
    let ok = sm2_verify(&key.0, b"1234567812345678", &digest, &tx_id());
    emit("all", &[who.organisation.as_bytes()], &digest);
    let called = call("other", "m", vec![]).is_ok();
    if !ok && called && from.is_none() && input.args.is_empty() {
        abort("unreachable in practice");
    }
    set_return(&digest);
    block_height() + block_time_ms()
}

gmchain_sdk::contract! {
    fn all(key: Bytes) -> u64;
}
"#,
    )
    .expect("write");
    let wasm = dir.path().join("every_import.wasm");
    let o = gmchain(&[
        "contract",
        "build",
        "--path",
        file.to_str().expect("utf-8"),
        "--out",
        wasm.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let module = std::fs::read(&wasm).expect("module");
    let mut got: Vec<(String, String, String, String)> = imports(&module);
    got.sort();
    let mut want: Vec<(String, String, String, String)> = HOST_API_V1
        .iter()
        .map(|(f, p, r)| {
            (
                "gmchain".to_string(),
                f.to_string(),
                p.to_string(),
                r.to_string(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_contract_with_floating_point_is_refused_naming_the_function() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("floaty.rs");
    std::fs::write(
        &file,
        r#"
#[inline(never)]
fn average(a: u64, b: u64) -> u64 {
    ((a as f64 + b as f64) / 2.5) as u64
}

fn mean(a: u64, b: u64) -> u64 {
    average(a, b)
}

gmchain_sdk::contract! {
    fn mean(a: u64, b: u64) -> u64;
}
"#,
    )
    .expect("write");
    let wasm = dir.path().join("floaty.wasm");
    // A single file: built with the SDK inside gmchain.
    let o = gmchain(&[
        "contract",
        "build",
        "--path",
        file.to_str().expect("utf-8"),
        "--out",
        wasm.to_str().expect("utf-8"),
    ]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("gmchain: CONTRACT_FLOAT: ") && last.contains("is `floaty::average`"),
        "{stderr}"
    );
    assert!(!wasm.exists(), "a refused module is not written");
}

#[test]
fn contract_build_says_what_to_install_without_a_wasm32_rustc() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A rustc that runs but whose sysroot has no wasm32 standard library.
    let fake = dir.path().join("rustc");
    std::fs::write(&fake, "#!/bin/sh\necho /nonexistent-sysroot\n").expect("write");
    let mut perms = std::fs::metadata(&fake).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).expect("chmod");
    let o = gmchain(&[
        "contract",
        "build",
        "--path",
        "contracts/examples/hello",
        "--rustc",
        fake.to_str().expect("utf-8"),
    ]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("rustup target add wasm32-unknown-unknown")
            && stderr.contains("libstd-rust-dev-wasm32"),
        "{stderr}"
    );
}

#[test]
fn contract_build_refuses_what_it_cannot_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = gmchain(&["contract", "build", "--path", "contracts/no-such-contract"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no-such-contract"),
        "{}",
        text(&o.stderr)
    );

    let krate = dir.path().join("withdeps");
    std::fs::create_dir_all(krate.join("src")).expect("mkdir");
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"withdeps\"\nedition = \"2021\"\n[dependencies]\nserde = \"1\"\n",
    )
    .expect("write");
    std::fs::write(krate.join("src/lib.rs"), "").expect("write");
    let o = gmchain(&[
        "contract",
        "build",
        "--path",
        krate.to_str().expect("utf-8"),
    ]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("dependency `serde`"), "{stderr}");
}
