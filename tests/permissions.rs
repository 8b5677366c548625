//! Permissions through `aivm run`: a manifest that declares resources confines the program to
//! them even when the host grants more; a manifest asking for more than is granted does not
//! start, and the refusal lists every missing flag; a deny beats an allow-all.

mod common;

use common::{aivm_in, assert_exit, stderr, stdout, temp_dir};

#[test]
fn declared_roots_confine_reads_beneath_a_wider_grant() {
    let dir = temp_dir("permissions", "confine");
    std::fs::create_dir_all(dir.join("mine")).expect("mkdir");
    std::fs::create_dir_all(dir.join("other")).expect("mkdir");
    std::fs::write(dir.join("mine/a.txt"), "mine").expect("write");
    std::fs::write(dir.join("other/b.txt"), "other").expect("write");
    let program = dir.join("p.ail");
    std::fs::write(
        &program,
        r#"
needs read "mine"
fn main() {
  print(read_file("mine/a.txt"))
  try { print(read_file("other/b.txt")) } catch e { print(e.kind) }
}
"#,
    )
    .expect("write program");
    let o = aivm_in(&dir, &["run", "--allow-read=.", "p.ail"]);
    assert_exit(&o, 0);
    // The host grants the whole folder; the program declared only `mine`.
    assert_eq!(stdout(&o), "mine\nPolicyDenied\n");
}

#[test]
fn a_manifest_beyond_the_grants_does_not_start_and_names_every_flag() {
    let dir = temp_dir("permissions", "link");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    let program = dir.join("p.ail");
    std::fs::write(
        &program,
        r#"
needs read "data"
needs net "api.example.com"
needs env "HOME"
fn main() {
  print("ran")
}
"#,
    )
    .expect("write program");
    let o = aivm_in(&dir, &["run", "--allow-read=data", "p.ail"]);
    assert_exit(&o, 9);
    assert_eq!(stdout(&o), "", "nothing ran");
    let err = stderr(&o);
    assert!(err.contains("--allow-net=api.example.com"), "{err}");
    assert!(err.contains("--allow-env=HOME"), "{err}");
    assert!(!err.contains("--allow-read"), "reading is granted: {err}");
    let o = aivm_in(
        &dir,
        &[
            "run",
            "--allow-read=data",
            "--allow-net=api.example.com",
            "--allow-env=HOME",
            "p.ail",
        ],
    );
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "ran\n");
}

#[test]
fn a_deny_beats_allow_all_for_the_same_path() {
    let dir = temp_dir("permissions", "deny");
    std::fs::create_dir_all(dir.join("secrets")).expect("mkdir");
    std::fs::write(dir.join("secrets/key.txt"), "k").expect("write");
    std::fs::write(dir.join("open.txt"), "o").expect("write");
    let program = dir.join("p.ail");
    std::fs::write(
        &program,
        r#"
fn main() {
  print(read_file("open.txt"))
  try { print(read_file("secrets/key.txt")) } catch e { print("{e.kind} {e.payload.rule}") }
  try { print(read_file("./secrets/../secrets/key.txt")) } catch e { print(e.kind) }
}
"#,
    )
    .expect("write program");
    let o = aivm_in(&dir, &["run", "-A", "--deny-read=secrets", "p.ail"]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "o\nPolicyDenied deny:read\nPolicyDenied\n");
}

#[test]
fn a_replay_under_another_policy_diverges_at_the_decision() {
    let dir = temp_dir("permissions", "replay");
    std::fs::write(dir.join("a.txt"), "alpha").expect("write");
    let program = dir.join("p.ail");
    std::fs::write(&program, "fn main() {\n  print(read_file(\"a.txt\"))\n}\n")
        .expect("write program");
    let o = aivm_in(
        &dir,
        &["run", "--allow-read=.", "--trace", "j.jsonl", "p.ail"],
    );
    assert_exit(&o, 0);
    let journal = std::fs::read_to_string(dir.join("j.jsonl")).expect("journal");
    let decisions = journal
        .lines()
        .filter(|l| l.contains("\"event\":\"decision\""))
        .count();
    assert_eq!(
        decisions, 2,
        "one per effect (the read, the print):\n{journal}"
    );
    // The same grants replay byte for byte, without the file.
    std::fs::remove_file(dir.join("a.txt")).expect("remove");
    let o = aivm_in(
        &dir,
        &[
            "run",
            "--allow-read=.",
            "--replay",
            "j.jsonl",
            "--trace",
            "k.jsonl",
            "p.ail",
        ],
    );
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "alpha\n");
    let again = std::fs::read_to_string(dir.join("k.jsonl")).expect("journal");
    assert_eq!(again, journal);
    // A policy that now judges the read otherwise is a divergence at the recorded decision.
    // (Resource checks happen where a resource is touched, and a replay touches none.)
    let o = aivm_in(
        &dir,
        &[
            "run",
            "--allow-read=.",
            "--ask=fs.read",
            "--replay",
            "j.jsonl",
            "p.ail",
        ],
    );
    assert_exit(&o, 7);
    let err = stderr(&o);
    assert!(
        err.contains("the policy said allow") && err.contains("now judges ask"),
        "{err}"
    );
}

#[test]
fn a_native_tool_offered_to_a_model_is_judged_at_the_gate_and_again_inside() {
    let dir = temp_dir("permissions", "native-tool");
    std::fs::create_dir_all(dir.join("docs")).expect("mkdir");
    std::fs::write(dir.join("docs/a.txt"), "alpha").expect("write");
    std::fs::write(dir.join("secret.txt"), "s3cret").expect("write");
    std::fs::write(
        dir.join("p.ail"),
        "import std.fs\nmodel m = \"small\"\nfn main() {\n  print(llm m { user \"go\"; tools [fs.read] })\n}\n",
    )
    .expect("write program");
    std::fs::write(
        dir.join("p.script.json"),
        r#"{"turns": [
  {"when": "go", "tool_calls": [
    {"name": "fs_read", "arguments": {"path": "docs/a.txt"}},
    {"name": "fs_read", "arguments": {"path": "secret.txt"}}]},
  {"when": "alpha", "content": "read one"}
]}"#,
    )
    .expect("write transcript");
    let o = aivm_in(
        &dir,
        &["run", "--allow-read=docs", "--trace", "j.jsonl", "p.ail"],
    );
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "read one\n");
    let journal = std::fs::read_to_string(dir.join("j.jsonl")).expect("journal");
    let events: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    // The model was offered `fs_read`, described by the standard library's doc comment.
    let first = events
        .iter()
        .find(|e| e["effect"] == "llm.call")
        .expect("a model call");
    let tool = &first["args"][1]["tools"][0];
    assert_eq!(tool["name"], "fs_read");
    assert!(
        tool["description"].as_str().is_some_and(|d| !d.is_empty()),
        "{tool}"
    );
    // Each call passed the gate as `fs_read`, and the read inside was judged as `fs.read`:
    // the file outside the grant was refused where it was touched, the other one was read.
    let gates = events
        .iter()
        .filter(|e| e["event"] == "decision" && e["tool"] == "fs_read")
        .count();
    assert_eq!(gates, 2);
    let reads: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "effect" && e["effect"] == "fs.read")
        .map(|e| e["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reads, ["ok", "PolicyDenied"]);
    assert!(
        !journal.contains("s3cret"),
        "the secret never entered the run"
    );
}

#[test]
fn allow_env_for_all_starts_beside_variables_no_program_could_name() {
    let dir = temp_dir("permissions", "env-all");
    std::fs::write(
        dir.join("p.ail"),
        "import std.env\nfn main() {\n  print(env.get(\"AIVM_TEST_VISIBLE\"))\n  try { print(env.get(\"AIVM_TEST_HIDDEN\")) } catch e { print(e.kind) }\n}\n",
    )
    .expect("write program");
    let o = common::aivm_command(&dir)
        .args(["run", "--allow-env", "--deny-env=AIVM_TEST_HIDDEN", "p.ail"])
        .env("BASH_FUNC_helper%%", "() { :; }")
        .env("AIVM_TEST_VISIBLE", "yes")
        .env("AIVM_TEST_HIDDEN", "no")
        .output()
        .expect("aivm runs");
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "yes\nPolicyDenied\n");
}
