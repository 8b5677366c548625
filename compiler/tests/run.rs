//! Compiled programs run on the interpreter and print what the source says they print.

use aivm_vm::format::VerifiedModule;
use std::path::Path;

use aivm_compiler::compile_file;
use aivm_compiler::render::render;
use aivm_vm::{HostError, HostValue, Limits, Step, Vm};

/// Compiles and runs `main`, answering `io.print` into a buffer; other effects fail.
fn output(path: &str) -> Vec<String> {
    let c = compile_file(Path::new(path)).unwrap_or_else(|d| panic!("{}", render(&d, false)));
    let mut vm = Vm::new(
        &VerifiedModule::new(c.module).expect("the compiled module verifies"),
        Limits::default(),
    )
    .expect("module loads");
    vm.start_main(vec![]).expect("main starts");
    let mut out = Vec::new();
    loop {
        match vm.run() {
            Ok(Step::Done { .. }) => return out,
            Ok(Step::Effect(req)) => {
                let r = if req.native == "io.print" {
                    out.push(req.args[0].as_str().unwrap_or("?").to_string());
                    Ok(HostValue::null())
                } else {
                    Err(HostError::new("IoError", format!("no {}", req.native)))
                };
                vm.resume(req.task, r).expect("resume");
            }
            Err(e) => panic!("{path}: {e}\noutput so far: {out:?}"),
        }
    }
}

#[test]
fn fib() {
    assert_eq!(output("tests/programs/fib.ail"), ["6765"]);
}

#[test]
fn loops() {
    assert_eq!(
        output("tests/programs/loops.ail"),
        ["0: a", "1: b", "2: c", "x=1", "y=2", "625"]
    );
}

#[test]
fn closures() {
    assert_eq!(
        output("tests/programs/closures.ail"),
        ["2", "3628800", "12"]
    );
}

#[test]
fn records() {
    assert_eq!(
        output("tests/programs/records.ail"),
        ["Printer on fire! (high) 1 tags", "low", "true", "[1, 2]"]
    );
}

#[test]
fn errors() {
    assert_eq!(
        output("tests/programs/errors.ail"),
        ["0", "1", "2", "caught ValueError: too big: 3"]
    );
}

#[test]
fn imports() {
    assert_eq!(
        output("tests/programs/imports.ail"),
        [
            "SHOUT",
            "007",
            "12",
            "[4, 6]",
            "4.0",
            "{\"a\":[1,2]}",
            "true",
            "42",
            "VALUE"
        ]
    );
}
