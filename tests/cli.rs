//! End-to-end tests of the `aivm` command line: every example runs with its expected output and
//! exit code; build, disasm, asm and verify agree with each other on real files; bad input of
//! each kind gets its documented exit code and a message, never a panic.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{aivm, assert_exit, path_str, stderr, stdout};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("cli", name)
}

#[test]
fn hello_greets_everyone_named() {
    let o = aivm(&["run", "examples/hello.ail", "--", "Ada", "Grace"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "Hello, Ada!\nHello, Grace!\n");

    let o = aivm(&["run", "examples/hello.ail"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "Hello, world!\n");
}

#[test]
fn wordfreq_reads_a_granted_file() {
    let o = aivm(&[
        "run",
        "--allow-read=examples/data",
        "examples/wordfreq.ail",
        "--",
        "examples/data/tickets.txt",
    ]);
    assert_exit(&o, 0);
    // Expected counts computed independently from examples/data/tickets.txt.
    assert_eq!(
        stdout(&o),
        "44 distinct words\n10 the\n4 for\n3 page\n2 login\n2 on\n"
    );
}

#[test]
fn wordfreq_without_a_grant_does_not_start_and_names_the_flag() {
    let o = aivm(&[
        "run",
        "examples/wordfreq.ail",
        "--",
        "examples/data/tickets.txt",
    ]);
    // The program's manifest names fs.read and nothing grants reading: refused at link
    // time, before any instruction runs (spec/security.md §3).
    assert_exit(&o, 9);
    assert_eq!(stdout(&o), "", "nothing ran");
    let err = stderr(&o);
    assert!(err.contains("fs.read"), "{err}");
    assert!(
        err.contains("--allow-read"),
        "the refusal names the flag: {err}"
    );
}

#[test]
fn wordfreq_outside_its_grant_is_denied_and_the_program_sees_why() {
    let o = aivm(&[
        "run",
        "--allow-read=examples/data/invoices",
        "examples/wordfreq.ail",
        "--",
        "examples/data/tickets.txt",
    ]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.starts_with("cannot read examples/data/tickets.txt: "),
        "{out}"
    );
    assert!(
        out.contains("--allow-read"),
        "the denial names the flag: {out}"
    );
}

#[test]
fn triage_classifies_and_rejects() {
    let o = aivm(&["run", "examples/triage_rules.ail"]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o),
        concat!(
            "skipped (InvalidTicket): no `id` in {\"title\":42}\n",
            "triaged 4, rejected 1, urgent 1\n",
            "by severity: {\"low\": 2, \"medium\": 1, \"high\": 1}\n",
            "{\"id\":1,\"severity\":\"high\",\"tags\":[\"availability\"]}\n",
            "{\"id\":2,\"severity\":\"medium\",\"tags\":[\"billing\"]}\n",
            "{\"id\":3,\"severity\":\"low\",\"tags\":[\"performance\"]}\n",
            "{\"id\":5,\"severity\":\"low\",\"tags\":[]}\n",
        )
    );
}

#[test]
fn build_disasm_asm_verify_round_trip_byte_for_byte() {
    let dir = temp_dir("roundtrip");
    for example in ["hello", "wordfreq", "triage_rules", "triage", "calc"] {
        let aib = dir.join(format!("{example}.aib"));
        let o = aivm(&[
            "build",
            &format!("examples/{example}.ail"),
            "-o",
            path_str(&aib),
        ]);
        assert_exit(&o, 0);
        let o = aivm(&["verify", path_str(&aib)]);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains(": ok"), "{}", stdout(&o));

        let o = aivm(&["disasm", path_str(&aib)]);
        assert_exit(&o, 0);
        let aia = dir.join(format!("{example}.aia"));
        std::fs::write(&aia, o.stdout).expect("write assembly");
        let again = dir.join(format!("{example}.2.aib"));
        let o = aivm(&["asm", path_str(&aia), "-o", path_str(&again)]);
        assert_exit(&o, 0);
        assert_eq!(
            std::fs::read(&aib).expect("read"),
            std::fs::read(&again).expect("read"),
            "asm(disasm(x)) == x for {example}"
        );
    }
    // The bytecode runs like the source.
    let o = aivm(&["run", path_str(&dir.join("hello.aib")), "--", "Ada"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "Hello, Ada!\n");
}

#[test]
fn compile_errors_exit_3_with_spans_and_codes() {
    let dir = temp_dir("compile-error");
    let src = dir.join("bad.ail");
    std::fs::write(
        &src,
        "fn main() -> int {\n  let x: int = \"five\"\n  return y\n}\n",
    )
    .expect("write");
    let o = aivm(&["check", path_str(&src)]);
    assert_exit(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("bad.ail:2"), "points at line 2: {err}");
    assert!(err.contains("bad.ail:3"), "points at line 3: {err}");
    assert!(err.contains("2 errors"), "both errors reported: {err}");
    assert!(!err.contains('\u{1b}'), "NO_COLOR honoured: {err}");
}

#[test]
fn invalid_bytecode_exits_4_naming_the_section() {
    let dir = temp_dir("bad-bytecode");
    let aib = dir.join("hello.aib");
    assert_exit(
        &aivm(&["build", "examples/hello.ail", "-o", path_str(&aib)]),
        0,
    );
    let bytes = std::fs::read(&aib).expect("read");

    let truncated = dir.join("truncated.aib");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    for cmd in ["verify", "run"] {
        let o = aivm(&[cmd, path_str(&truncated)]);
        assert_exit(&o, 4);
        assert!(stderr(&o).contains("offset"), "{}", stderr(&o));
    }

    let garbage = dir.join("garbage.aib");
    std::fs::write(&garbage, [0xff, 0x00, 0x13, 0x37, 0xfe, 0x80, 0x01]).expect("write");
    let o = aivm(&["run", path_str(&garbage)]);
    assert_exit(&o, 4);
    assert!(stderr(&o).contains("magic"), "{}", stderr(&o));

    // Source text given as bytecode gets a hint about file kinds rather than a byte dump.
    let text = dir.join("source.aib");
    std::fs::write(&text, "fn main() {}\n").expect("write");
    let o = aivm(&["run", path_str(&text)]);
    assert_exit(&o, 4);
    assert!(
        stderr(&o).contains("is text") && stderr(&o).contains(".ail"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn runaway_programs_hit_limits_with_exit_5() {
    let dir = temp_dir("limits");
    let cases = [
        ("spin.ail", "fn main() {\n  while true {\n  }\n}\n", vec!["--fuel", "100000"], "fuel"),
        ("deep.ail", "fn f(n) {\n  return f(n + 1)\n}\nfn main() {\n  f(0)\n}\n", vec![], "stack overflow"),
        (
            "grow.ail",
            "import std.lists\nfn main() {\n  let xs = [1]\n  while true {\n    xs = lists.concat(xs, xs)\n  }\n}\n",
            vec!["--max-heap-mb", "16"],
            "heap",
        ),
        // A spawn bomb (THREATS row 27): every task counts against the heap limit.
        (
            "bomb.ail",
            "fn idle() {
  return 0
}
fn main() {
  let ts = []
  while true {
    push(ts, spawn idle())
  }
}
",
            vec!["--max-heap-mb", "16"],
            "heap",
        ),
    ];
    for (name, src, flags, needle) in cases {
        let file = dir.join(name);
        std::fs::write(&file, src).expect("write");
        let mut args = vec!["run"];
        args.extend(flags.iter().copied());
        args.push(path_str(&file));
        let o = aivm(&args);
        assert_exit(&o, 5);
        assert!(stderr(&o).contains(needle), "{name}: {}", stderr(&o));
    }
}

#[test]
fn uncaught_errors_exit_1_with_a_stack_trace() {
    let dir = temp_dir("uncaught");
    let file = dir.join("boom.ail");
    std::fs::write(
        &file,
        "fn inner(x: int) -> int {\n  return x / 0\n}\n\nfn main() {\n  inner(1)\n}\n",
    )
    .expect("write");
    let o = aivm(&["run", path_str(&file)]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("DivisionByZero"), "{err}");
    assert!(err.contains("inner") && err.contains("boom.ail:2"), "{err}");
    assert!(err.contains("main") && err.contains("boom.ail:6"), "{err}");
}

#[test]
fn main_returns_the_exit_status() {
    let dir = temp_dir("status");
    let file = dir.join("status.ail");
    std::fs::write(
        &file,
        "fn main(args: [string]) -> int {\n  return len(args) + 40\n}\n",
    )
    .expect("write");
    assert_exit(&aivm(&["run", path_str(&file), "--", "a", "b"]), 42);
}

#[test]
fn usage_errors_exit_2_and_missing_files_exit_6() {
    assert_exit(&aivm(&["frobnicate"]), 2);
    assert_exit(&aivm(&["run"]), 2);
    let o = aivm(&["run", "examples/no-such-file.ail"]);
    assert_exit(&o, 6);
    assert!(stderr(&o).contains("no-such-file.ail"), "{}", stderr(&o));
}

#[test]
fn trace_records_every_effect_as_json_lines() {
    let dir = temp_dir("trace");
    let trace = dir.join("trace.jsonl");
    let o = aivm(&[
        "run",
        "--trace",
        path_str(&trace),
        "examples/hello.ail",
        "--",
        "Ada",
        "Grace",
    ]);
    assert_exit(&o, 0);
    let text = std::fs::read_to_string(&trace).expect("trace written");
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let prints: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["effect"] == "io.print")
        .collect();
    assert_eq!(prints.len(), 2, "{text}");
    assert_eq!(prints[0]["args"][0], "Hello, Ada!", "{text}");
}

#[test]
fn a_reader_that_stops_early_ends_the_run_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = temp_dir("pipe");
    let file = dir.join("chatty.ail");
    std::fs::write(
        &file,
        "fn main() {\n  for i in 0..1000000 {\n    print(i)\n  }\n}\n",
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(["run", path_str(&file)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aivm starts");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    assert_eq!(first, "0\n");
    // The reader is dropped here: the program's next writes fail with a broken pipe.
    let o = child.wait_with_output().expect("aivm ends");
    assert_eq!(o.status.code(), Some(141), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no error report for a closed pipe");
}

#[test]
fn a_failing_run_still_leaves_its_trace() {
    let dir = temp_dir("trace-fail");
    let file = dir.join("fails.ail");
    std::fs::write(
        &file,
        "fn main() {\n  print(\"before\")\n  let xs = [1]\n  print(xs[3])\n}\n",
    )
    .expect("write");
    let trace = dir.join("trace.jsonl");
    let o = aivm(&["run", "--trace", path_str(&trace), path_str(&file)]);
    assert_exit(&o, 1);
    let text = std::fs::read_to_string(&trace).expect("trace written");
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .filter(|e: &serde_json::Value| e["event"] == "effect")
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["args"][0], "before");
}

#[test]
fn endless_input_is_cut_at_the_heap_limit_not_read_forever() {
    // /dev/zero never ends: reading it must stop at the cap with an error the program sees.
    let dir = temp_dir("endless");
    let file = dir.join("endless.ail");
    std::fs::write(
        &file,
        "fn main() -> int {\n  try {\n    read_file(\"/dev/zero\")\n  } catch e {\n    print(e.kind)\n    return 7\n  }\n  return 0\n}\n",
    )
    .expect("write");
    let o = aivm(&[
        "run",
        "--allow-read=/dev/zero",
        "--max-heap-mb",
        "8",
        path_str(&file),
    ]);
    assert_exit(&o, 7);
    assert_eq!(stdout(&o), "IoError\n");
}

#[test]
fn calc_evaluates_and_reports_each_expression() {
    let o = aivm(&[
        "run",
        "examples/calc.ail",
        "--",
        "1 + 2 * 3",
        "(1 + 2) * 3",
        "7 / 0",
        "2 *",
        "10 - 4 - 3",
        "((8)",
    ]);
    // The exit status is the number of expressions that failed.
    assert_exit(&o, 3);
    assert_eq!(
        stdout(&o),
        concat!(
            "1 + 2 * 3 = 7\n",
            "(1 + 2) * 3 = 9\n",
            "7 / 0: DivisionByZero: division by zero\n",
            "2 *: SyntaxError: the expression ends too soon\n",
            "10 - 4 - 3 = 3\n",
            "((8): SyntaxError: missing `)`\n",
        )
    );
}
