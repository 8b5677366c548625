//! Compiled programs run on the interpreter and print what the source says they print.

mod common;

use std::path::Path;

use aivm_compiler::compile_file;
use aivm_compiler::render::render;

/// Compiles and runs `main`, answering `io.print` into a buffer; other effects fail.
fn output(path: &str) -> Vec<String> {
    let c = compile_file(Path::new(path)).unwrap_or_else(|d| panic!("{}", render(&d, false)));
    common::printed(c.module, path)
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
