//! Keeps the reference chapters complete: every native the VM has is documented in
//! spec/natives.md and bound by the standard library; every `extern fn` of the standard
//! library names a real native; every diagnostic code the compiler emits is listed in
//! spec/diagnostics.md, and every code listed there is emitted (or marked reserved).

use std::collections::BTreeSet;
use std::path::Path;

use aivm_vm::format::NATIVES;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `.ail` file of the standard library, with its text.
fn stdlib() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = root().join("stdlib/std");
    for entry in std::fs::read_dir(&dir).expect("stdlib/std exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "ail") {
            let text = std::fs::read_to_string(&path).expect("readable");
            out.push((path.display().to_string(), text));
        }
    }
    assert!(out.len() >= 6, "the prelude and five modules");
    out
}

/// The native name of every `extern fn ... = "name"` in `text`.
fn extern_natives(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("extern fn "))
        .filter_map(|l| {
            let q = l.rsplit_once("= \"")?.1;
            Some(q.trim_end_matches('"').to_string())
        })
        .collect()
}

#[test]
fn every_stdlib_extern_names_a_native() {
    let mut bound = BTreeSet::new();
    for (file, text) in stdlib() {
        let names = extern_natives(&text);
        let declared = text
            .lines()
            .filter(|l| l.trim_start().starts_with("extern fn "))
            .count();
        assert_eq!(
            names.len(),
            declared,
            "{file}: an extern without a native name"
        );
        for n in names {
            assert!(
                NATIVES.iter().any(|x| x.name == n),
                "{file}: extern names `{n}`, which the VM does not have"
            );
            bound.insert(n);
        }
    }
    for n in NATIVES {
        assert!(
            bound.contains(n.name),
            "native `{}` is not bound by any standard module",
            n.name
        );
    }
}

#[test]
fn every_native_is_documented() {
    let spec = read("spec/natives.md");
    for n in NATIVES {
        assert!(
            spec.contains(&format!("`{}`", n.name)),
            "spec/natives.md does not document `{}`",
            n.name
        );
    }
    // And the spec names no native the VM lacks.
    for word in spec.split('`') {
        let looks_native = [
            "core.", "list.", "map.", "string.", "math.", "json.", "io.", "fs.",
        ]
        .iter()
        .any(|p| word.starts_with(p))
            || word == "clock.now";
        if looks_native && !word.contains(' ') && !word.contains('(') {
            assert!(
                NATIVES.iter().any(|x| x.name == word),
                "spec/natives.md names `{word}`, which is not a native"
            );
        }
    }
}

/// Every `"E0123"` / `"W0123"` string literal in the compiler's sources.
fn emitted_codes() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let dir = root().join("compiler/src");
    for entry in std::fs::read_dir(&dir).expect("compiler/src exists") {
        let path = entry.expect("a directory entry").path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // A code is a whole string literal: a quote, five characters, a quote.
        let b = text.as_bytes();
        for (i, _) in text.match_indices('"') {
            if let Some(code) = text.get(i + 1..i + 6) {
                if is_code(code) && b.get(i + 6) == Some(&b'"') {
                    codes.insert(code.to_string());
                }
            }
        }
    }
    codes
}

fn is_code(s: &str) -> bool {
    s.len() == 5
        && (s.starts_with('E') || s.starts_with('W'))
        && s[1..].chars().all(|c| c.is_ascii_digit())
}

/// The codes in the first column of the tables of spec/diagnostics.md, with their rows.
fn listed_codes() -> Vec<(String, String)> {
    read("spec/diagnostics.md")
        .lines()
        .filter_map(|l| {
            let cell = l.strip_prefix('|')?.split('|').next()?.trim();
            is_code(cell).then(|| (cell.to_string(), l.to_string()))
        })
        .collect()
}

#[test]
fn every_emitted_code_is_listed_and_every_listed_code_is_emitted() {
    let emitted = emitted_codes();
    assert!(
        emitted.len() > 30,
        "found the compiler's codes: {emitted:?}"
    );
    let listed = listed_codes();
    let names: BTreeSet<String> = listed.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(names.len(), listed.len(), "a code is listed twice");
    for c in &emitted {
        assert!(
            names.contains(c),
            "{c} is emitted but not in spec/diagnostics.md"
        );
    }
    for (c, row) in &listed {
        assert!(
            emitted.contains(c) || row.contains("Reserved"),
            "{c} is listed but never emitted (mark it Reserved): {row}"
        );
    }
}
