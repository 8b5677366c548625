//! Information-flow labels end to end: a file (untrusted unless the policy labels it) is read,
//! and every value derived from its contents (concatenation, arithmetic on a parsed int, a list
//! holding it, a record field, a closure's result, a function's result) is labelled untrusted,
//! while an unrelated constant stays trusted; `--trace` records the read with its label.

use std::path::PathBuf;
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aivm-labels-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn aivm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the aivm binary runs")
}

const PROGRAM: &str = r#"
import std.strings

fn double(x) {
  return x * 2
}

fn main(args: [string]) -> int {
  let text = read_file(args[0])
  let n = int(strings.trim(text))
  let plus = n + 1
  let greeting = "value: " + strings.trim(text)
  let items = [1, plus, 3]
  let record = {count: n, name: "fixed"}
  let add = fn(k) { return k + plus }
  let from_closure = add(10)
  let from_call = double(n)
  let constant = 40 + 2
  print("text {label_of(text)}")
  print("arith {label_of(plus)}")
  print("concat {label_of(greeting)}")
  print("list {label_of(items)}")
  print("element {label_of(items[1])}")
  print("field {label_of(record.count)}")
  print("closure {label_of(from_closure)}")
  print("call {label_of(from_call)}")
  print("constant {label_of(constant)}")
  print("literal {label_of("fixed")}")
  print("sum {plus} {from_closure} {from_call}")
  return 0
}
"#;

/// Runs `program` with reading granted under `root`, `input` as its argument, and a journal.
fn run_reading(
    root: &std::path::Path,
    program: &std::path::Path,
    input: &std::path::Path,
    trace: &std::path::Path,
) -> Output {
    let allow = format!("--allow-read={}", path_str(root));
    aivm(&[
        "run",
        &allow,
        "--trace",
        path_str(trace),
        path_str(program),
        "--",
        path_str(input),
    ])
}

#[test]
fn values_derived_from_an_untrusted_file_are_untrusted() {
    let dir = temp_dir("flow");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let input = data.join("count.txt");
    std::fs::write(&input, "41\n").expect("write data");
    let program = dir.join("flow.ail");
    std::fs::write(&program, PROGRAM).expect("write program");
    let trace = dir.join("trace.jsonl");

    let o = run_reading(&data, &program, &input, &trace);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");

    let label = |what: &str| -> String {
        let prefix = format!("{what} ");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{what}` line in:\n{out}"))
            .to_string()
    };
    for derived in [
        "text", "arith", "concat", "element", "field", "closure", "call",
    ] {
        assert!(
            label(derived).starts_with("untrusted"),
            "{derived}: {}\n{out}",
            label(derived)
        );
    }
    assert_eq!(label("constant"), "trusted", "{out}");
    // spec/instructions.md, NewList: the new list value itself is public and each item keeps
    // its own label, so the list is trusted while the element read from it is not.
    assert_eq!(label("list"), "trusted", "{out}");
    assert_eq!(label("literal"), "trusted", "{out}");
    // The values themselves are computed normally.
    assert_eq!(label("sum"), "42 52 82", "{out}");

    let text = std::fs::read_to_string(&trace).expect("trace written");
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let reads: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["effect"] == "fs.read").collect();
    assert_eq!(reads.len(), 1, "{text}");
    assert_eq!(reads[0]["outcome"], "ok", "{text}");
    let result_label = reads[0]["result_label"].as_str().unwrap_or("");
    assert!(result_label.starts_with("untrusted"), "{text}");
    // The printed lines are effects too; a constant's print is trusted.
    let printed_constant = events
        .iter()
        .find(|e| e["effect"] == "io.print" && e["args"][0] == "constant trusted")
        .unwrap_or_else(|| panic!("no print of the constant in:\n{text}"));
    assert_eq!(printed_constant["arg_labels"][0], "trusted", "{text}");
}

#[test]
fn the_same_file_is_trusted_where_the_policy_labels_it_trusted() {
    let dir = temp_dir("trusted");
    let input = dir.join("count.txt");
    std::fs::write(&input, "41\n").expect("write data");
    let program = dir.join("flow.ail");
    std::fs::write(&program, PROGRAM).expect("write program");
    // aivm.toml beside the program: what is read beneath its folder is trusted.
    std::fs::write(
        dir.join("aivm.toml"),
        "[[labels]]\nread = \".\"\nintegrity = \"trusted\"\n",
    )
    .expect("write aivm.toml");
    let allow = format!("--allow-read={}", path_str(&dir));
    let o = aivm(&["run", &allow, path_str(&program), "--", path_str(&input)]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("text trusted\n"), "{out}");
    assert!(out.contains("call trusted\n"), "{out}");
    assert!(!out.contains("untrusted"), "{out}");
}

/// A program that declares resources and authority, calls effect natives and offers a
/// function to a model: everything `aivm inspect` shows.
const MANIFEST_PROGRAM: &str = r#"
needs read "./data"
needs net "api.example.com:443"
needs env "HOME"
needs read "./data"
needs declassify
model smart = "large"

/// Sends money.
fn send_money(to: string, amount: int) -> string {
  return "sent {amount} to {to}"
}

fn main() {
  let text = read_file("./data/x.txt")
  let answer = llm smart {
    user "Pay the bill in {text}"
    tools [send_money]
  }
  print(declassify(answer, null))
}
"#;

#[test]
fn inspect_prints_the_manifest_of_source_and_bytecode_alike() {
    let dir = temp_dir("inspect");
    let program = dir.join("pay.ail");
    std::fs::write(&program, MANIFEST_PROGRAM).expect("write program");
    let o = aivm(&["inspect", path_str(&program)]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    insta::assert_snapshot!("inspect_manifest", text);

    let bytecode = dir.join("pay.aib");
    let b = aivm(&["build", path_str(&program), "-o", path_str(&bytecode)]);
    assert_eq!(b.status.code(), Some(0));
    let o = aivm(&["inspect", path_str(&bytecode)]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), text);

    // A program without `needs declassify` does not compile: the error names the fix.
    let bad = dir.join("bad.ail");
    std::fs::write(&bad, MANIFEST_PROGRAM.replace("needs declassify\n", "")).expect("write");
    let o = aivm(&["inspect", path_str(&bad)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("E0218") && err.contains("needs declassify"),
        "{err}"
    );
}

/// A field of a labelled record carries the record's label when the tool gate judges it, as
/// it does when the program reads it (GetField joins the two): the record a model's untrusted
/// arguments become must not reach the policy as trusted fields.
#[test]
fn the_tool_gate_judges_fields_with_their_record_label() {
    let dir = temp_dir("gate");
    let input = dir.join("args.json");
    std::fs::write(&input, "{\"iban\": \"XX00\"}").expect("write data");
    let program = dir.join("gate.ail");
    std::fs::write(
        &program,
        r#"
import std.agent
extern fn parse_json(text: string) = "json.parse"
fn main(args: [string]) -> int {
  let record = parse_json(read_file(args[0]))
  print("field {label_of(record.iban)}")
  agent.tool_gate("pay", record)
  return 0
}
"#,
    )
    .expect("write program");
    let trace = dir.join("trace.jsonl");
    let o = run_reading(&dir, &program, &input, &trace);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(out, "field untrusted\n");
    let text = std::fs::read_to_string(&trace).expect("trace written");
    let pay: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .find(|e| e["event"] == "decision" && e["tool"] == "pay")
        .expect("a decision on pay");
    assert_eq!(pay["labels"]["iban"], "untrusted", "{pay}");
}
