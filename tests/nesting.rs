//! Hostile source through the command line: 100,000 levels of nesting of every kind make
//! `aivm check` exit with the compile-error code and E0118, never crash (a stack overflow
//! kills the process with a signal, which has no exit code); long flat programs compile or
//! get a size diagnostic.

use std::path::PathBuf;
use std::process::{Command, Output};

const N: usize = 100_000;

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aivm-nesting-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn check(name: &str, src: &str) -> Output {
    let path = temp_dir().join(format!("{name}.ail"));
    std::fs::write(&path, src).expect("write source");
    Command::new(env!("CARGO_BIN_EXE_aivm"))
        .arg("check")
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("the aivm binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exits with `code` (3: compile error), not by a signal and not by a panic.
fn assert_exit(name: &str, o: &Output, code: i32) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{name}: aivm panicked:\n{err}");
    assert!(
        !err.contains("overflowed its stack"),
        "{name}: stack overflow"
    );
    assert_eq!(
        o.status.code(),
        Some(code),
        "{name}: status {:?} (None: killed by a signal)\nstderr (end): {}",
        o.status,
        err.chars()
            .rev()
            .take(2000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
}

fn in_main(expr: &str) -> String {
    format!("fn main() {{\n  let x = {expr}\n  print(x)\n}}\n")
}

#[test]
fn deep_nesting_of_every_kind_is_error_e0118() {
    let shapes: Vec<(&str, String)> = vec![
        (
            "parens",
            in_main(&format!("{}1{}", "(".repeat(N), ")".repeat(N))),
        ),
        (
            "brackets",
            in_main(&format!("{}1{}", "[".repeat(N), "]".repeat(N))),
        ),
        (
            "braces",
            in_main(&format!("{}1{}", "{a: ".repeat(N), "}".repeat(N))),
        ),
        ("negations", in_main(&format!("{}1", "-".repeat(N)))),
        ("nots", in_main(&format!("{}true", "not ".repeat(N)))),
        ("fields", in_main(&format!("x{}", ".b".repeat(N)))),
        ("calls", in_main(&format!("f{}", "()".repeat(N)))),
        ("sums", in_main(&format!("1{}", "+1".repeat(N)))),
        (
            "ifs",
            format!(
                "fn main() {{\n{}{}}}\n",
                "if true {\n".repeat(N),
                "}\n".repeat(N)
            ),
        ),
        (
            "else_ifs",
            format!(
                "fn main() {{\n if false {{ }}{}\n}}\n",
                " else if false { }".repeat(N)
            ),
        ),
        (
            "lambdas",
            in_main(&format!(
                "{}1{}",
                "fn() { return ".repeat(N),
                " }".repeat(N)
            )),
        ),
        (
            "types",
            format!(
                "fn main() {{\n  let x: {}int{} = []\n}}\n",
                "[".repeat(N),
                "]".repeat(N)
            ),
        ),
        (
            "interpolation",
            in_main(&format!("\"{{{}1{}}}\"", "(".repeat(N), ")".repeat(N))),
        ),
    ];
    for (name, src) in shapes {
        let o = check(name, &src);
        assert_exit(name, &o, 3);
        let err = stderr(&o);
        assert!(
            err.contains("E0118") && err.contains("nested too deeply"),
            "{name}: {}",
            err.chars().take(2000).collect::<String>()
        );
    }
}

#[test]
fn long_flat_programs_compile_or_hit_a_size_limit() {
    let o = check(
        "statements",
        &format!("fn main() {{\n{}}}\n", "print(1)\n".repeat(N)),
    );
    assert_exit("statements", &o, 0);

    let o = check(
        "string",
        &format!("fn main() {{\n  print(\"{}\")\n}}\n", "a".repeat(1 << 20)),
    );
    assert_exit("string", &o, 0);

    let items: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    let o = check("list", &in_main(&format!("[{}]", items.join(", "))));
    assert_exit("list", &o, 3);
    assert!(stderr(&o).contains("E0401"), "{}", stderr(&o));
}

#[test]
fn long_alias_chains_are_error_e0314_and_short_ones_run() {
    let chain = |n: usize| {
        let mut src: String = (0..n)
            .map(|i| format!("type A{i} = A{}\n", i + 1))
            .collect();
        src.push_str(&format!("type A{n} = int?\n"));
        src + "fn main() {\n  let x: A0 = 7\n  print(x)\n}\n"
    };
    let o = check("alias-chain", &chain(N));
    assert_exit("alias-chain", &o, 3);
    assert!(stderr(&o).contains("E0314"), "{}", stderr(&o));

    // A chain within the limit compiles into a module the verifier accepts (rule V3).
    let dir = temp_dir();
    let src = dir.join("short-chain.ail");
    std::fs::write(&src, chain(20)).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(["run", src.to_str().expect("utf-8 path")])
        .output()
        .expect("aivm runs");
    assert_exit("short-chain", &o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "7\n");
}
