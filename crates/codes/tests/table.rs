//! The checked-in table `docs/error-codes.md` is append-only: every (name, number) pair in it
//! stays in the registry (live or retired) with the same number, and the table is the registry's
//! rendering. `GMCHAIN_BLESS_CODES=1` rewrites the table, but only after the append-only check
//! passed, so a renumbered or removed code can never be blessed away.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

fn table_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/error-codes.md")
}

/// (name, number, status) of each row of a table.
fn rows(table: &str) -> Vec<(String, u32, String)> {
    table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| name "))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let name = cells[0].trim_start_matches("| ").to_string();
            let number = cells[1]
                .parse()
                .unwrap_or_else(|_| panic!("row {name}: number {:?} is not a number", cells[1]));
            (name, number, cells[2].to_string())
        })
        .collect()
}

/// Checks a table against the registry: the problems, one line each.
fn append_only_violations(table: &str) -> Vec<String> {
    let mut live: HashMap<&str, u32> = HashMap::new();
    for c in codes::ALL {
        live.insert(c.name, c.number);
    }
    let retired: HashMap<&str, u32> = codes::RETIRED.iter().map(|r| (r.name, r.number)).collect();
    let mut problems = Vec::new();
    for (name, number, status) in rows(table) {
        match (live.get(name.as_str()), retired.get(name.as_str())) {
            (Some(&n), _) if n == number && status == "live" => {}
            (Some(&n), _) if n == number => problems.push(format!(
                "{name} ({number}) is {status} in the table but live in the registry: a retired code never comes back"
            )),
            (Some(&n), _) => problems.push(format!(
                "{name} is {number} in the table but {n} in the registry: a code is never renumbered"
            )),
            (None, Some(&n)) if n == number => {}
            (None, Some(&n)) => problems.push(format!(
                "retired {name} is {number} in the table but {n} in the registry: a code is never renumbered"
            )),
            (None, None) => problems.push(format!(
                "{name} ({number}) is in the table but not in the registry: move it to codes::RETIRED instead of deleting it"
            )),
        }
    }
    problems
}

#[test]
fn names_and_numbers_are_unique_and_in_their_ranges() {
    let mut names = HashSet::new();
    let mut numbers = HashSet::new();
    for c in codes::ALL {
        assert!(names.insert(c.name), "{} defined twice", c.name);
        assert!(numbers.insert(c.number), "number {} used twice", c.number);
        assert!(
            c.name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{}: names are UPPER_SNAKE_CASE",
            c.name
        );
        assert!(
            !c.description.is_empty() && !c.hint.is_empty(),
            "{}: description and hint",
            c.name
        );
        let prefix_ok = match c.number {
            100..=199 => c.name.starts_with("TX_"),
            1000..=1999 => c.name.starts_with("EXEC_"),
            2000..=2999 => c.name.starts_with("IDENTITY_"),
            3000..=3099 => c.name.starts_with("ATTESTATION_"),
            3100..=3199 => c.name.starts_with("GOVERNANCE_"),
            3200..=3299 => c.name.starts_with("CONTRACT_"),
            3300..=3399 => c.name.starts_with("EXCHANGE_"),
            3400..=3499 => c.name.starts_with("SUPERVISION_"),
            4000..=4099 => c.name.starts_with("NODE_"),
            4100..=4199 => c.name.starts_with("RECEIPT_"),
            4200..=4299 => c.name.starts_with("REST_"),
            5000..=5099 => c.name.starts_with("PKI_"),
            5100..=5199 => c.name.starts_with("CERT_"),
            6000..=6999 => c.name.starts_with("CA_"),
            7000..=7999 => c.name.starts_with("HSM_"),
            8000..=8999 => c.name.starts_with("CRYPTO_"),
            9000..=9099 => c.name.starts_with("TLS_"),
            _ => false,
        };
        assert!(
            prefix_ok,
            "{} ({}) is outside its range (see the crate docs)",
            c.name, c.number
        );
    }
    for r in codes::RETIRED {
        assert!(names.insert(r.name), "retired {} is also live", r.name);
        assert!(
            numbers.insert(r.number),
            "retired number {} reused",
            r.number
        );
    }
    assert_eq!(codes::by_name("TX_DUPLICATE").map(|c| c.number), Some(105));
    assert_eq!(
        codes::by_number(3001).map(|c| c.name),
        Some("ATTESTATION_DIGEST_EXISTS")
    );
}

/// Every version of the table git has recorded: a (name, number) pair once committed stays in
/// the registry, even when a later commit rewrote the table or a merge took the other side's
/// (hence `--full-history`: git's default history simplification hides such commits). `None`
/// outside a git checkout (a source tarball); CI runs on a clone, and under `CI` a missing
/// history fails instead of skipping.
fn committed_tables() -> Option<Vec<(String, String)>> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let revs = git(&[
        "log",
        "--full-history",
        "--format=%H",
        "--",
        "docs/error-codes.md",
    ])?;
    Some(
        revs.lines()
            .filter_map(|rev| {
                git(&["show", &format!("{rev}:docs/error-codes.md")])
                    .map(|table| (rev.to_string(), table))
            })
            .collect(),
    )
}

#[test]
fn no_code_ever_committed_is_renumbered_or_removed() {
    let Some(tables) = committed_tables() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but git cannot list the committed versions of docs/error-codes.md (not a clone, no git, or a dubious-ownership refusal): the append-only check must run in CI"
        );
        eprintln!(
            "not a git checkout: the committed tables cannot be read; checked against the working tree only"
        );
        return;
    };
    for (rev, table) in tables {
        let problems = append_only_violations(&table);
        assert!(
            problems.is_empty(),
            "docs/error-codes.md as committed in {rev} vs the registry:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_checked_in_table_is_append_only_and_current() {
    let path = table_path();
    let table = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: the table is checked in and never deleted",
            path.display()
        )
    });
    let problems = append_only_violations(&table);
    assert!(
        problems.is_empty(),
        "docs/error-codes.md vs the registry:\n{}",
        problems.join("\n")
    );
    let rendered = codes::render_table();
    if table != rendered {
        if std::env::var_os("GMCHAIN_BLESS_CODES").is_some() {
            std::fs::write(&path, rendered).expect("write docs/error-codes.md");
        } else {
            panic!(
                "docs/error-codes.md is not the registry's rendering (a code was added or its text changed): \
                 run `GMCHAIN_BLESS_CODES=1 cargo test -p codes` and commit the table"
            );
        }
    }
}

#[test]
fn a_renumbered_removed_or_unretired_code_fails_the_check() {
    let table = codes::render_table();
    assert!(append_only_violations(&table).is_empty());
    // Renumbered: TX_DUPLICATE was 105.
    let renumbered = table.replace("| TX_DUPLICATE | 105 |", "| TX_DUPLICATE | 199 |");
    let p = append_only_violations(&renumbered);
    assert!(
        p.iter()
            .any(|l| l.contains("TX_DUPLICATE is 199 in the table but 105")),
        "{p:?}"
    );
    // Removed from the registry: a row the registry does not know.
    let removed = format!("{table}| TX_GONE | 198 | live | x | x | x | x |\n");
    let p = append_only_violations(&removed);
    assert!(
        p.iter()
            .any(|l| l.contains("TX_GONE (198) is in the table but not in the registry")),
        "{p:?}"
    );
    // A retired code marked live again, or a live code marked retired.
    let flipped = table.replace(
        "| TX_POOL_FULL | 191 | live |",
        "| TX_POOL_FULL | 191 | retired |",
    );
    let p = append_only_violations(&flipped);
    assert!(
        p.iter()
            .any(|l| l.contains("TX_POOL_FULL (191) is retired in the table")),
        "{p:?}"
    );
}
