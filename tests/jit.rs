//! The JIT tier is invisible (spec/semantics.md, "Tiers"): every language test program, every
//! example and the JIT's own programs in `tests/jit/` run through the `aivm` binary with
//! `--jit=off`, `--jit=always` and `--jit=auto`, and must give the same standard output,
//! standard error (error messages and stack traces included), exit status and journal. Limits too:
//! the JIT programs run again under a range of fuel and depth limits.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Status, stdout, stderr and journal (`--trace`) of `aivm run --jit=MODE ARGS...`, run from
/// the workspace root.
fn run(mode: &str, args: &[String]) -> (i32, String, String, String) {
    let journal = std::env::temp_dir().join(format!(
        "aivm-jit-{}-{mode}-{:x}.jsonl",
        std::process::id(),
        args.iter().fold(0u64, |h, a| a
            .bytes()
            .fold(h, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)))
    ));
    // A usage line's `< FILE` is standard input, as a shell would give it.
    let (args, stdin) = match args.iter().position(|a| a == "<") {
        Some(i) => (&args[..i], args.get(i + 1).map(|f| root().join(f))),
        None => (args, None),
    };
    let stdin = match stdin {
        Some(f) => std::process::Stdio::from(std::fs::File::open(&f).expect("stdin file")),
        None => std::process::Stdio::null(),
    };
    let o = Command::new(env!("CARGO_BIN_EXE_aivm"))
        .arg("run")
        .arg(format!("--jit={mode}"))
        .stdin(stdin)
        // The summary line of a run with models carries its wall time, which no two runs share.
        .arg("--quiet")
        .arg("--trace")
        .arg(&journal)
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("AIVM_JIT_STATS")
        .output()
        .expect("the aivm binary runs");
    let trace = without_wall_time(&std::fs::read_to_string(&journal).unwrap_or_default());
    let _ = std::fs::remove_file(&journal);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        trace,
    )
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ail"))
        .collect();
    out.sort();
    out
}

/// The arguments of an example: its usage line `//   aivm run [FLAGS] FILE [-- ARGS]`, split
/// like a shell splits double-quoted words; the file alone when it has none.
fn example_args(file: &Path) -> Vec<String> {
    let src = std::fs::read_to_string(file).expect("read example");
    let rel = file
        .strip_prefix(root())
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned();
    let Some(line) = src
        .lines()
        .find_map(|l| l.trim_start_matches('/').trim().strip_prefix("aivm run "))
    else {
        return vec![rel];
    };
    // A remark after the command, `   (the tickets below)`, is not part of it.
    let line = line.split("  (").next().unwrap_or(line).trim_end();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// The journal with its wall-clock fields (spec/journal.md: `latency_ms`, `ms`) masked: they
/// differ between any two runs.
fn without_wall_time(journal: &str) -> String {
    let mut out = String::with_capacity(journal.len());
    let mut rest = journal;
    while let Some(i) = ["\"latency_ms\":", "\"ms\":"]
        .iter()
        .filter_map(|k| rest.find(k).map(|i| i + k.len()))
        .min()
    {
        out.push_str(&rest[..i]);
        rest = rest[i..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('_');
    }
    out.push_str(rest);
    out
}

/// Runs `args` in every mode and returns the differences from `--jit=off`.
fn differences(args: &[String]) -> Vec<String> {
    let want = run("off", args);
    assert!(
        want.3.contains("\"event\":\"run_start\""),
        "{args:?}: no journal written:\n{}",
        want.2
    );
    let mut out = Vec::new();
    for mode in ["always", "auto"] {
        let got = run(mode, args);
        if got != want {
            out.push(format!(
                "{args:?} --jit={mode}: exit {} vs {}\n--- off stdout\n{}--- {mode} stdout\n{}\
                 --- off stderr\n{}--- {mode} stderr\n{}--- off journal\n{}--- {mode} journal\n{}",
                want.0, got.0, want.1, got.1, want.2, got.2, want.3, got.3
            ));
        }
    }
    out
}

#[test]
fn language_programs_behave_the_same_in_every_tier() {
    let mut failures = Vec::new();
    let programs = files("tests/lang");
    assert!(programs.len() >= 6, "found {programs:?}");
    for file in programs {
        failures.extend(differences(&[file.to_string_lossy().into_owned()]));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_behave_the_same_in_every_tier() {
    let mut failures = Vec::new();
    let examples = files("examples");
    assert!(examples.len() >= 4, "found {examples:?}");
    for file in examples {
        let args = example_args(&file);
        assert!(
            args.iter().any(|a| a.ends_with(".ail")),
            "{args:?} names the example"
        );
        failures.extend(differences(&args));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn jit_programs_behave_the_same_in_every_tier() {
    let mut failures = Vec::new();
    let programs = files("tests/jit");
    assert!(!programs.is_empty());
    for file in programs {
        failures.extend(differences(&[file.to_string_lossy().into_owned()]));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The deoptimisation program really exercises compiled code: with `always` the JIT reports
/// its specialisations (so the differential tests above compare two different tiers).
#[test]
fn the_jit_compiles_the_deopt_program() {
    let o = Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(["run", "--jit=always", "tests/jit/deopt.ail"])
        .current_dir(root())
        .env("AIVM_JIT_STATS", "1")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    for f in [
        "jit: sum_to(int) ",
        "jit: grow(int, int) ",
        "jit: poly(float) ",
        "jit: is_even(int) ",
        "jit: mixed(int, float) ",
    ] {
        assert!(err.contains(f), "{f} missing in:\n{err}");
    }
    assert!(err.contains("2 fn(s): compiled"), "{err}");
}

/// The loops of `main` (which prints, so is never compiled whole) are compiled where they run,
/// and left mid-loop where the interpreter must take over; the differential test above
/// compares the output of both.
#[test]
fn the_jit_compiles_the_loops_of_main() {
    let o = Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(["run", "--jit=always", "tests/jit/loops.ail"])
        .current_dir(root())
        .env("AIVM_JIT_STATS", "1")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    let compiled = err
        .lines()
        .filter(|l| l.starts_with("jit: main loop at ") && l.ends_with(": compiled"))
        .count();
    // Every loop of main but the three that leave each time round (a `try`, prints).
    assert!(compiled >= 10, "{compiled} loops compiled:\n{err}");
    assert!(
        err.contains("the loop leaves compiled code every time round"),
        "{err}"
    );
    // The callee compiled with the loop that calls it.
    assert!(err.contains("jit: grow(int, int) "), "{err}");
}

/// Functions and loops that use records, lists, list iterators and math natives are compiled
/// (at their call, or where they loop), and the differential tests compare them.
#[test]
fn the_jit_compiles_heap_code() {
    let o = Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(["run", "--jit=always", "tests/jit/heap.ail"])
        .current_dir(root())
        .env("AIVM_JIT_STATS", "1")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    let compiled = |what: &str| {
        err.lines()
            .any(|l| l.starts_with(&format!("jit: {what}")) && l.ends_with(": compiled"))
    };
    assert!(compiled("step at call "), "{err}");
    assert!(compiled("total loop at "), "{err}");
    let loops = err
        .lines()
        .filter(|l| l.starts_with("jit: main loop at ") && l.ends_with(": compiled"))
        .count();
    assert!(loops >= 5, "{loops} loops of main compiled:\n{err}");
}

/// Fuel and call depth run out at the same instruction, with the same trace, whichever tier
/// was running when they did.
#[test]
fn limits_hold_in_compiled_code() {
    let file = "tests/jit/limits.ail".to_string();
    let mut failures = Vec::new();
    for fuel in [1u64, 50, 997, 5_000, 20_011, 100_000, 400_003] {
        failures.extend(differences(&[format!("--fuel={fuel}"), file.clone()]));
    }
    for depth in [2usize, 10, 100, 999, 1_001, 1_500, 5_000] {
        failures.extend(differences(&[format!("--max-depth={depth}"), file.clone()]));
    }
    // In compiled loops: each of these stops in a different loop of the program.
    let loops = "tests/jit/loops.ail".to_string();
    for fuel in [
        1_000u64, 999_999, 1_000_007, 1_050_000, 1_100_000, 1_200_000, 1_500_000,
    ] {
        failures.extend(differences(&[format!("--fuel={fuel}"), loops.clone()]));
    }
    // In compiled code that uses the heap: in `step` (at its call and in its loops), then in
    // the loops of main.
    let heap = "tests/jit/heap.ail".to_string();
    for fuel in [
        5_000u64, 50_000, 200_000, 600_000, 640_000, 660_000, 670_000,
    ] {
        failures.extend(differences(&[format!("--fuel={fuel}"), heap.clone()]));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The limits were reached: the last fuel ran out, the smallest depth overflowed.
    let (code, _, err, _) = run("always", &["--fuel=20011".into(), file.clone()]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("fuel"), "{err}");
    let (code, _, err, _) = run("always", &["--max-depth=100".into(), file]);
    assert_eq!(code, 5, "{err}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `unsafe` appears only in `vm/src/jit/` (calling generated code and what that needs), and
/// every use there is explained by a `// SAFETY:` comment just above it.
#[test]
fn unsafe_code_is_confined_to_the_jit_and_justified() {
    let mut files = Vec::new();
    for dir in ["src", "vm/src", "compiler/src", "stdlib"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 20);
    let jit_dir = root().join("vm/src/jit");
    let mut uses = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !(code.contains("unsafe {") || code.contains("unsafe impl")) {
                continue;
            }
            assert!(
                f.starts_with(&jit_dir),
                "{}:{}: unsafe outside vm/src/jit",
                f.display(),
                i + 1
            );
            let above = &lines[i.saturating_sub(12)..i];
            assert!(
                above
                    .iter()
                    .any(|l| l.trim_start().starts_with("// SAFETY:")),
                "{}:{}: unsafe without a SAFETY comment",
                f.display(),
                i + 1
            );
            uses += 1;
        }
    }
    assert!(uses >= 3, "found the JIT's unsafe blocks ({uses})");
}

/// A VM with its JIT can still move between threads (hosts may run VMs on worker threads).
#[test]
fn a_vm_with_a_jit_is_send() {
    fn send<T: Send>() {}
    send::<aivm_vm::Vm>();
}
