//! Approvals end to end: `--ask` makes a granted tool ask a person on the controlling
//! terminal (a real pseudo-terminal, made by util-linux `script`), each approval covers the one
//! call it was shown for, and with no terminal every ask is refused.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{aivm, assert_exit, stderr, stdout, temp_dir};

/// Two calls of the same tool with the same arguments: an approval of the first must not
/// cover the second.
const PROGRAM: &str = r#"
fn main() {
  print("first {now_ms() > 0}")
  print("second {now_ms() > 0}")
}
"#;

/// The program, in a folder of its own for the test `name` (tests run in parallel).
fn program(name: &str) -> std::path::PathBuf {
    let dir = temp_dir("approvals", name);
    let path = dir.join("ask.ail");
    std::fs::write(&path, PROGRAM).expect("write program");
    path
}

/// Runs `aivm run ARGS` on a pseudo-terminal, typing `answers`; returns what the terminal
/// showed (program output and prompts alike) and the exit status.
fn on_terminal(args: &[&str], answers: &str) -> (String, i32) {
    let bin = env!("CARGO_BIN_EXE_aivm");
    let line = std::iter::once(bin)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // `script -e` returns the child's status.
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs (Debian's bsdutils)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answers.as_bytes())
        .expect("type the answers");
    let out = child.wait_with_output().expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    (text, out.status.code().unwrap_or(-1))
}

#[test]
fn a_person_approves_one_call_and_refuses_the_next() {
    let p = program("person");
    let (shown, status) = on_terminal(
        &["run", "--ask=clock.now", p.to_str().expect("utf-8")],
        "y\nn\n",
    );
    // The first call was shown and approved and happened; the second asked again (the
    // approval covered one call only), was refused, and the program got PolicyDenied.
    assert_eq!(
        shown.matches("Allow this one call? [y/N]").count(),
        2,
        "{shown}"
    );
    assert!(
        shown.contains("the program asks to call clock.now"),
        "{shown}"
    );
    assert!(shown.contains("first true"), "{shown}");
    assert!(!shown.contains("second"), "{shown}");
    assert!(shown.contains("PolicyDenied"), "{shown}");
    assert_eq!(status, 1, "{shown}");
}

#[test]
fn without_a_terminal_every_ask_is_refused_and_yes_approves_what_its_rule_allows() {
    let p = program("no-terminal");
    let path = p.to_str().expect("utf-8");
    let o = aivm(&["run", "--ask=clock.now", path]);
    assert_exit(&o, 1);
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("no one to ask"), "{}", stderr(&o));
    // `--ask` asks are approvable by --yes: both calls run, each approved on its own.
    let o = aivm(&["run", "--ask=clock.now", "--yes", path]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "first true\nsecond true\n");
    // --no-prompt refuses even on a terminal.
    let (shown, status) = on_terminal(&["run", "--ask=clock.now", "--no-prompt", path], "y\ny\n");
    assert!(!shown.contains("Allow this one call?"), "{shown}");
    assert_eq!(status, 1, "{shown}");
}

#[test]
fn many_runs_at_once_never_prompt_and_yes_still_approves() {
    let p = program("each");
    let inputs = p.with_file_name("inputs.jsonl");
    std::fs::write(&inputs, "\"a\"\n\"b\"\n").expect("write inputs");
    let path = p.to_str().expect("utf-8");
    let each = inputs.to_str().expect("utf-8");
    // On a terminal too: runs in parallel cannot share it, so an ask is refused.
    let (shown, status) = on_terminal(&["run", "--ask=clock.now", "--each", each, path], "y\ny\n");
    assert!(!shown.contains("Allow this one call?"), "{shown}");
    assert_eq!(shown.matches("no one to ask").count(), 2, "{shown}");
    assert_eq!(status, 1, "{shown}");
    let o = aivm(&["run", "--ask=clock.now", "--yes", "--each", each, path]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o).matches("second true").count(),
        2,
        "{}",
        stdout(&o)
    );
}
