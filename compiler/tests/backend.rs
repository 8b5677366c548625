//! The back end on source files: rendered diagnostics of one error per file, the code of
//! representative programs, and properties of the generated modules.

use std::path::{Path, PathBuf};

use aivm_vm::format::verify;

use aivm_compiler::render::render;
use aivm_compiler::{compile_file, compile_source};
use aivm_vm::format::Module;

fn ail_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("test folder exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ail"))
        .collect();
    files.sort();
    files
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string()
}

/// The disassembly of the module (assembly text of the format crate).
fn listing(m: &Module) -> String {
    aivm_vm::format::disassemble(m)
}

#[test]
fn each_error_file_renders_its_diagnostic() {
    for path in ail_files("tests/errors") {
        let diags = match compile_file(&path) {
            Ok(_) => panic!("{} compiled without errors", path.display()),
            Err(d) => d,
        };
        insta::assert_snapshot!(format!("error_{}", stem(&path)), render(&diags, false));
    }
}

#[test]
fn many_errors_are_reported_in_one_run() {
    let diags = compile_file(Path::new("tests/errors/many_errors.ail")).expect_err("has errors");
    let codes: Vec<&str> = diags.items.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["E0301", "E0303", "E0201", "E0304", "E0203"]);
}

#[test]
fn programs_compile_to_the_expected_code() {
    for path in ail_files("tests/programs") {
        let compiled = match compile_file(&path) {
            Ok(c) => c,
            Err(d) => panic!("{}:\n{}", path.display(), render(&d, false)),
        };
        assert!(
            compiled.warnings.items.is_empty(),
            "{}:\n{}",
            path.display(),
            render(&compiled.warnings, false)
        );
        insta::assert_snapshot!(format!("code_{}", stem(&path)), listing(&compiled.module));
    }
}

#[test]
fn unused_variables_are_warnings() {
    let src = "fn main() {\n  let unused = 1\n  let _quiet = 2\n  for i in 0..3 {\n  }\n}\n";
    let c = compile_source("warn.ail", src).expect("warnings do not stop compilation");
    let names: Vec<&str> = c
        .warnings
        .items
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(names, ["unused variable `unused`", "unused variable `i`"]);
    insta::assert_snapshot!("warning_unused", render(&c.warnings, false));
}

#[test]
fn register_reuse_keeps_frames_small() {
    let mut src = String::from("fn main() {\n");
    for b in 0..10 {
        src.push_str("  if true {\n");
        for i in 0..5 {
            let prev = if i == 0 {
                b.to_string()
            } else {
                format!("v{}", i - 1)
            };
            src.push_str(&format!("    let v{i} = {prev} * 3 + {prev}\n"));
        }
        src.push_str("    print(v4)\n  }\n");
    }
    src.push_str(&format!(
        "  print({})\n}}\n",
        (0..30)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    ));
    let m = compile_source("reuse.ail", &src).expect("compiles").module;
    let main = m
        .functions
        .iter()
        .find(|f| m.str(f.name) == "main")
        .expect("main");
    assert!(
        main.nregs <= 8,
        "50 lets and a 30-term sum need {} registers",
        main.nregs
    );
}

#[test]
fn module_header_has_entry_exports_docs_and_types() {
    let m = compile_file(Path::new("tests/programs/records.ail"))
        .expect("compiles")
        .module;
    let entry = m.entry.expect("has main") as usize;
    assert_eq!(m.str(m.functions[entry].name), "main");
    assert!(m
        .files
        .iter()
        .any(|f| m.str(*f) == "tests/programs/records.ail"));
    let named = m.types.iter().find_map(|t| match t {
        aivm_vm::format::TypeDesc::Named { name, doc, .. } if m.str(*name) == "Ticket" => {
            Some(*doc)
        }
        _ => None,
    });
    assert_eq!(named.flatten().map(|d| m.str(d)), Some("A support ticket."));
    let util = compile_file(Path::new("tests/programs/lib/util.ail"))
        .expect("compiles")
        .module;
    assert_eq!(util.exports.len(), 1);
    assert_eq!(util.str(util.exports[0].name), "twice");
    let f = &util.functions[util.exports[0].func as usize];
    assert_eq!(f.doc.map(|d| util.str(d)), Some("Twice the number."));
    assert!(util.entry.is_none());
    // Line table entries point into the file.
    let fib = compile_file(Path::new("tests/programs/fib.ail"))
        .expect("compiles")
        .module;
    let fib_fn = fib
        .functions
        .iter()
        .position(|f| fib.str(f.name) == "fib")
        .expect("fib") as u32;
    let (file, line, _) = fib.position(fib_fn, 0).expect("line info");
    assert_eq!((file, line), (Some("tests/programs/fib.ail"), 2));
}

#[test]
fn every_compiled_module_verifies() {
    let mut n = 0;
    for dir in [
        "tests/programs",
        "tests/programs/lib",
        "../examples",
        "../benches/programs",
    ] {
        let ours = dir.starts_with("tests");
        if std::fs::read_dir(dir).is_err() {
            continue;
        }
        for path in ail_files(dir) {
            let c = match compile_file(&path) {
                Ok(c) => c,
                // The examples and benchmarks belong to other parts of the project; this test
                // is about what the compiler emits, so it reports them without failing.
                Err(d) if !ours => {
                    eprintln!("skipping {}:\n{}", path.display(), render(&d, false));
                    continue;
                }
                Err(d) => panic!("{}:\n{}", path.display(), render(&d, false)),
            };
            if let Err(e) = verify(&c.module) {
                panic!(
                    "{} does not verify: {e}\n{}",
                    path.display(),
                    listing(&c.module)
                );
            }
            n += 1;
        }
    }
    // Every standard module, compiled on its own through an import.
    for m in aivm_stdlib::MODULES {
        let src = format!("import {m} as the_module\nfn main() {{\n}}\n");
        let c = compile_source("std_check.ail", &src)
            .unwrap_or_else(|d| panic!("{m}:\n{}", render(&d, false)));
        verify(&c.module).unwrap_or_else(|e| panic!("{m} does not verify: {e}"));
        n += 1;
    }
    assert!(n >= 10, "only {n} modules checked");
}
