//! Mutated programs through the whole pipeline: thousands of deterministic token-level and
//! byte-level mutations of every valid program in the repository go through `compile_source`.
//! No mutant may make the compiler panic; every module it produces must pass the verifier and
//! run on the interpreter (a small fuel limit, no file access, in-memory stdin and stdout)
//! without a panic. Program errors and limit errors are fine.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use aivm_compiler::compile_source;
use aivm_vm::format::{verify, VerifiedModule};
use aivm_vm::host::Host;
use aivm_vm::policy::Policy;
use aivm_vm::{Limits, Vm};
use common::Rng;

/// Mutants in total, spread over the seed programs.
const MUTANTS: usize = 4_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the compiler crate sits in the workspace")
        .to_path_buf()
}

/// Every valid `.ail` program of the repository (examples, benchmarks, compiler test programs).
fn seeds() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in [
        "examples",
        "benches/programs",
        "compiler/tests/programs",
        "compiler/tests/programs/lib",
    ] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ail"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).expect("read seed");
            out.push((p.display().to_string(), text));
        }
    }
    out
}

/// Rough tokens: runs of word characters, a string literal, or single other characters.
fn pieces(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        if word(c) {
            cur.push(c);
            if !chars.peek().is_some_and(|&d| word(d)) {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            out.push(c.to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "<", ">", "==", "!=", "<=", ">=", "..", "and", "or", "not", "=", "+=",
    ".", ",", ":", ";", "?", "|", "->", "(", ")", "[", "]", "{", "}", "\"", "fn", "return", "if",
    "else", "while", "for", "in", "break", "continue", "let", "try", "catch", "throw", "null",
    "true", "false",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "9223372036854775807",
    "4611686018427387904",
    "1e308",
    "0.5",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "null",
    "\"{1}\"",
];

fn is_word(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut toks = pieces(src);
    if toks.is_empty() || src.is_empty() {
        return src.to_string();
    }
    let idents: Vec<String> = toks.iter().filter(|t| is_word(t)).cloned().collect();
    let i = rng.below(toks.len());
    match rng.below(10) {
        0 => {
            toks.remove(i);
        }
        1 => {
            let t = toks[i].clone();
            toks.insert(i, t);
        }
        2 => {
            let j = (i + 1 + rng.below(3)).min(toks.len() - 1);
            toks.swap(i, j);
        }
        3 => {
            // An identifier becomes another identifier of the same file.
            let words: Vec<usize> = (0..toks.len()).filter(|&k| is_word(&toks[k])).collect();
            if let (Some(&k), Some(w)) = (rng.pick(&words), rng.pick(&idents)) {
                toks[k] = w.clone();
            }
        }
        4 => {
            // An operator or keyword becomes another.
            let ops: Vec<usize> = (0..toks.len())
                .filter(|&k| OPERATORS.contains(&toks[k].as_str()))
                .collect();
            if let (Some(&k), Some(op)) = (rng.pick(&ops), rng.pick(OPERATORS)) {
                toks[k] = op.to_string();
            }
        }
        5 => {
            // A literal (or any token) becomes another literal.
            let nums: Vec<usize> = (0..toks.len())
                .filter(|&k| toks[k].starts_with(|c: char| c.is_ascii_digit()))
                .collect();
            let k = rng.pick(&nums).copied().unwrap_or(i);
            if let Some(l) = rng.pick(LITERALS) {
                toks[k] = l.to_string();
            }
        }
        6 => {
            // A byte becomes another ASCII character.
            let mut bytes = src.as_bytes().to_vec();
            let k = rng.below(bytes.len());
            if bytes[k].is_ascii() {
                let replacements = b" (){}[]\"\\:;,.+-*<=!x1\n";
                bytes[k] = replacements[rng.below(replacements.len())];
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        7 => {
            let mut cut = rng.below(src.len());
            while !src.is_char_boundary(cut) {
                cut -= 1;
            }
            return src[..cut].to_string();
        }
        8 => {
            // A token from elsewhere in the file.
            let t = toks[rng.below(toks.len())].clone();
            toks.insert(i, t);
        }
        _ => {
            // A run of tokens is deleted.
            let end = (i + 1 + rng.below(8)).min(toks.len());
            toks.drain(i..end);
        }
    }
    toks.concat()
}

/// What happened to one mutant.
#[derive(Debug, PartialEq)]
enum Outcome {
    Rejected,
    Ran,
}

/// Compiles, verifies and runs one mutant; `Err` describes a panic or an unverifiable module.
fn exercise(src: &str) -> Result<Outcome, String> {
    let compiled = catch_unwind(|| compile_source("mutant.ail", src))
        .map_err(|_| "the compiler panicked".to_string())?;
    let Ok(compiled) = compiled else {
        return Ok(Outcome::Rejected);
    };
    let module = compiled.module;
    verify(&module).map_err(|e| format!("the verifier rejected the module: {e}"))?;
    let verified = VerifiedModule::new(module).map_err(|e| e.to_string())?;
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let limits = Limits {
            fuel: Some(100_000),
            max_depth: 200,
            max_heap_bytes: 64 << 20,
        };
        let Ok(mut vm) = Vm::new(&verified, limits) else {
            return;
        };
        if vm.start_main(vec!["a".into(), "b".into()]).is_err() {
            return;
        }
        let mut host = Host::new(
            Policy::default(),
            Box::new(std::io::sink()),
            Box::new(std::io::Cursor::new(b"line one\nline two\n".to_vec())),
        );
        let _ = host.run_to_end(&mut vm);
    }));
    ran.map_err(|_| "the interpreter panicked".to_string())?;
    Ok(Outcome::Ran)
}

#[test]
fn mutated_programs_compile_verify_and_run_without_panic() {
    let seeds = seeds();
    assert!(
        seeds.len() >= 10,
        "found only {} seed programs",
        seeds.len()
    );
    // Imports of files are relative to the working directory: run from the test programs.
    std::env::set_current_dir(root().join("compiler/tests/programs")).expect("cd");
    for (name, src) in &seeds {
        assert_eq!(
            exercise(src),
            Ok(Outcome::Ran),
            "seed {name} must compile and run"
        );
    }
    let mut rng = Rng(0x5DEE_CE66_D1CE_5EED);
    let (mut rejected, mut ran) = (0, 0);
    let mut failures = Vec::new();
    for n in 0..MUTANTS {
        let (name, base) = &seeds[n % seeds.len()];
        let mut src = base.clone();
        for _ in 0..=rng.below(2) {
            src = mutate(&src, &mut rng);
        }
        match exercise(&src) {
            Ok(Outcome::Rejected) => rejected += 1,
            Ok(Outcome::Ran) => ran += 1,
            Err(why) => failures.push(format!("mutant {n} of {name}: {why}\n{src}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures; the first:\n{}",
        failures.len(),
        failures.first().map_or("", |f| f.as_str())
    );
    // Both outcomes must be common, or the mutator is not exercising the pipeline.
    eprintln!("rejected {rejected}, ran {ran}");
    assert!(rejected > MUTANTS / 5, "only {rejected} rejected");
    assert!(ran > MUTANTS / 10, "only {ran} ran");
}
