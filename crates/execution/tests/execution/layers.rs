//! The crate's modules form layers (issue 11 point 5): each imports only modules of earlier
//! layers, so nothing is a cycle and a newcomer can read the crate bottom up. The layers are
//! the numbered list under "# Layers" in `src/lib.rs`'s doc comment; this test reads that list
//! and every `src/*.rs`, and fails on any `use crate::…`, `crate::x::…` path or `super::` path
//! that reaches the crate root, naming a module of the same or a later layer.

use std::collections::BTreeMap;
use std::path::Path;

/// A token of Rust source, as far as paths need: identifiers and the punctuation of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Other,
}

/// Splits `src` into tokens, dropping comments (doc links are not imports), string, byte
/// string, raw string and character literals, and lifetimes.
fn tokens(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 1;
            i += 2;
            while i < c.len() && depth > 0 {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if ch == 'r'
            && (at(i + 1) == '"' || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#')))
            || ch == 'b' && at(i + 1) == 'r' && matches!(at(i + 2), '"' | '#')
        {
            // Raw (byte) string: r#"…"#.
            i += if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(i) == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1; // the opening quote
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push(Tok::Other);
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Other);
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            // A character literal ('x', '\n', '\u{..}', b'x') or a lifetime ('a).
            let start = if ch == 'b' { i + 1 } else { i };
            if at(start + 1) == '\\' {
                i = start + 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(start + 2) == '\'' {
                i = start + 3;
            } else {
                i = start + 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
            out.push(Tok::Other);
        } else if ch.is_alphabetic() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[s..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                i += 1;
            }
            out.push(Tok::Other);
        } else {
            i += 1;
            out.push(match ch {
                ':' if at(i) == ':' => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                c if c.is_whitespace() => continue,
                _ => Tok::Other,
            });
        }
    }
    out
}

/// Returns the first identifier of each entry of the `{…}` group opening at `toks[open]`.
fn group_heads(toks: &[Tok], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for t in &toks[open..] {
        match t {
            Tok::Open => {
                depth += 1;
                if depth == 1 {
                    expect_head = true;
                }
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Comma if depth == 1 => expect_head = true,
            Tok::Ident(s) if depth == 1 && expect_head => {
                heads.push(s.clone());
                expect_head = false;
            }
            _ => {
                if depth == 1 {
                    expect_head = false;
                }
            }
        }
    }
    heads
}

/// Pushes the root-level name(s) at `toks[at]`: an identifier, or each head of a group.
fn push_item(toks: &[Tok], at: usize, names: &mut Vec<String>) {
    match toks.get(at) {
        Some(Tok::Ident(s)) => names.push(s.clone()),
        Some(Tok::Open) => names.extend(group_heads(toks, at)),
        _ => {}
    }
}

/// The names, at the crate root, that each path in `toks` reaches: `crate::x…`, `crate::{x, y}`
/// and `super::x…` where `super` leaves the file's module (more `super`s than enclosing inline
/// `mod` blocks).
fn root_names(toks: &[Tok]) -> Vec<String> {
    let mut names = Vec::new();
    // Brace depths at which inline `mod name {` blocks opened.
    let mut mods: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if mods.last() == Some(&depth) {
                    mods.pop();
                }
            }
            Tok::Ident(k)
                if k == "mod"
                    && matches!(toks.get(i + 1), Some(Tok::Ident(_)))
                    && toks.get(i + 2) == Some(&Tok::Open) =>
            {
                mods.push(depth);
            }
            Tok::Ident(k) if k == "crate" && toks.get(i + 1) == Some(&Tok::PathSep) => {
                push_item(toks, i + 2, &mut names);
                i += 2;
                continue;
            }
            Tok::Ident(k) if k == "super" && toks.get(i + 1) == Some(&Tok::PathSep) => {
                let mut j = i;
                let mut supers = 0;
                while toks.get(j) == Some(&Tok::Ident("super".into()))
                    && toks.get(j + 1) == Some(&Tok::PathSep)
                {
                    supers += 1;
                    j += 2;
                }
                // More `super`s than enclosing inline modules: the path leaves the file's
                // module for the crate root.
                if supers > mods.len() {
                    push_item(toks, j, &mut names);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// The crate's structure read from `src/lib.rs`: its modules, which module each root
/// re-export comes from, and the layers of the doc comment.
struct Crate {
    modules: Vec<String>,
    reexports: BTreeMap<String, String>,
    layers: Vec<Vec<String>>,
}

fn read_crate(src: &Path) -> Crate {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs reads");
    let toks = tokens(&lib);
    let mut modules = Vec::new();
    let mut reexports = BTreeMap::new();
    for (i, t) in toks.iter().enumerate() {
        if *t == Tok::Ident("mod".into())
            && let (Some(Tok::Ident(m)), Some(Tok::Semi)) = (toks.get(i + 1), toks.get(i + 2))
        {
            modules.push(m.clone());
        }
        // `pub use module::{A, B};` or `pub use module::A;`.
        if *t == Tok::Ident("use".into())
            && let (Some(Tok::Ident(m)), Some(Tok::PathSep)) = (toks.get(i + 1), toks.get(i + 2))
        {
            let names = match toks.get(i + 3) {
                Some(Tok::Open) => group_heads(&toks, i + 3),
                Some(Tok::Ident(n)) => vec![n.clone()],
                _ => vec![],
            };
            for n in names {
                reexports.insert(n, m.clone());
            }
        }
    }
    // The numbered list under "# Layers": `//! 3. `view`: …`.
    let mut layers = Vec::new();
    let mut in_section = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with('#') {
            in_section = doc == "# Layers";
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((num, rest)) = doc.split_once(". ") else {
            continue;
        };
        if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        assert_eq!(
            num.parse::<usize>().unwrap(),
            layers.len() + 1,
            "lib.rs: the layers are numbered 1, 2, 3, … in order"
        );
        let names: Vec<String> = rest
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| modules.iter().any(|m| m == n))
            .map(str::to_string)
            .collect();
        assert!(
            !names.is_empty(),
            "lib.rs: layer {num} names no module: {doc}"
        );
        layers.push(names);
    }
    Crate {
        modules,
        reexports,
        layers,
    }
}

/// Returns every import of a module of the same or a later layer, as "file: imports x (layer
/// n), a module of layer m or later".
fn violations(src: &Path) -> Vec<String> {
    let krate = read_crate(src);
    let mut layer_of = BTreeMap::new();
    for (n, layer) in krate.layers.iter().enumerate() {
        for m in layer {
            assert!(
                layer_of.insert(m.clone(), n + 1).is_none(),
                "lib.rs: module {m} is in two layers"
            );
        }
    }
    for m in &krate.modules {
        assert!(
            layer_of.contains_key(m),
            "lib.rs: module {m} is in no layer of the '# Layers' list"
        );
    }
    let mut found = Vec::new();
    for m in &krate.modules {
        let file = src.join(format!("{m}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mine = layer_of[m];
        let mut seen = Vec::new();
        for name in root_names(&tokens(&text)) {
            let target = if krate.modules.contains(&name) {
                name.clone()
            } else if let Some(t) = krate.reexports.get(&name) {
                t.clone()
            } else {
                continue;
            };
            if target == *m || seen.contains(&target) {
                continue;
            }
            let theirs = layer_of[&target];
            if theirs >= mine {
                found.push(format!(
                    "{m}.rs (layer {mine}) imports {target} (layer {theirs}){}",
                    if name == target {
                        String::new()
                    } else {
                        format!(" through crate::{name}")
                    }
                ));
                seen.push(target);
            }
        }
    }
    found
}

#[test]
fn modules_import_only_earlier_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against the layer order of src/lib.rs:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_layer_check_sees_every_form_of_import() {
    // The checker itself: each form of path to the crate root is found, and nothing else.
    let src = r#"
        //! Docs mention crate::admission, which is no import.
        use crate::codes::X;
        use crate::{view::StateRead, records};
        use super::Genesis;
        pub(crate) fn f() -> &'static str { let _c = 'x'; "crate::executor::Y" }
        fn g() { crate::identity::check(); let _ = r"super::keys"; }
        mod tests { use super::*; use super::super::contract::Z; }
    "#;
    assert_eq!(
        root_names(&tokens(src)),
        [
            "codes", "view", "records", "Genesis", "identity", "contract"
        ]
    );
}

#[test]
fn only_admission_constructs_a_verified_tx() {
    // `VerifiedTx::new` is crate-private; within the crate only admission may call it, so the
    // executor takes nothing that did not pass admission.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let new = [
        Tok::Ident("VerifiedTx".into()),
        Tok::PathSep,
        Tok::Ident("new".into()),
    ];
    let mut callers = Vec::new();
    for m in read_crate(&src).modules {
        let text = std::fs::read_to_string(src.join(format!("{m}.rs"))).unwrap();
        if tokens(&text).windows(3).any(|w| w == new) {
            callers.push(m);
        }
    }
    assert_eq!(callers, ["admission"]);
}
