//! The GmSSL bridge's skip rule, run in child processes (the rule reads the environment): a
//! missing `GMCHAIN_PYTHON` fails the test, unless `GMCHAIN_ALLOW_SKIP=1` outside CI, and then
//! the skip names the test. Under `CI=true` no skip is allowed.

use std::process::{Command, Output};

/// Runs `probe_python` below in a child process of this test binary with exactly `env` set
/// (of the variables the rule reads).
fn probe(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "probe_python",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("GMCHAIN_SKIP_PROBE", "1");
    for var in ["CI", "GMCHAIN_ALLOW_SKIP", "GMCHAIN_PYTHON"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The child: asks for the python as a GmSSL test does. Does nothing unless run by `probe`.
#[test]
#[ignore = "run by the other tests in a child process"]
fn probe_python() {
    if std::env::var_os("GMCHAIN_SKIP_PROBE").is_none() {
        return;
    }
    match test_support::python("cargo test -p test-support --test skip") {
        Some(p) => println!("PROBE: python {}", p.display()),
        None => println!("PROBE: skipped"),
    }
}

#[test]
fn ci_refuses_the_skip() {
    for ci in ["true", "1"] {
        let o = probe(&[("CI", ci), ("GMCHAIN_ALLOW_SKIP", "1")]);
        let out = text(&o);
        assert!(
            !o.status.success(),
            "CI={ci} with GMCHAIN_ALLOW_SKIP=1 must fail, not skip:\n{out}"
        );
        assert!(
            out.contains("CI") && out.contains("GMCHAIN_PYTHON"),
            "the failure must say why:\n{out}"
        );
        assert!(!out.contains("PROBE: skipped"), "{out}");
    }
}

#[test]
fn a_local_skip_is_allowed_only_when_asked_for_and_names_the_test() {
    let o = probe(&[("GMCHAIN_ALLOW_SKIP", "1")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("PROBE: skipped"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("SKIPPED") && l.contains("probe_python")),
        "the skip's line must name the skipped test:\n{out}"
    );
    for env in [
        &[][..],
        &[("CI", "false")][..],
        &[("GMCHAIN_ALLOW_SKIP", "0")][..],
    ] {
        let o = probe(env);
        assert!(
            !o.status.success(),
            "no GMCHAIN_PYTHON and no GMCHAIN_ALLOW_SKIP=1 ({env:?}) must fail:\n{}",
            text(&o)
        );
    }
}

#[test]
fn ci_with_the_bridge_runs() {
    let o = probe(&[("CI", "true"), ("GMCHAIN_PYTHON", "/opt/some/python")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("PROBE: python /opt/some/python"), "{out}");
}
