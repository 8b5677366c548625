//! End-to-end tests of `aivm run` with model calls: a scripted transcript beside the program,
//! the summary line and `--quiet`, `--trace` then `--replay` (same output, same journal byte for
//! byte), a divergence (exit 7), an unbound model or a missing key (exit 8, before any call),
//! budgets from flags, and `--each` with `--concurrency`. Programs are hand-written assembly
//! until the language has `llm` expressions.

mod common;

use std::path::PathBuf;

use common::{aivm_in, assert_exit, stderr, stdout, temp_dir};

/// A fresh folder holding `name.aib` assembled from `asm`, and the transcript if given.
fn program(test: &str, asm: &str, transcript: Option<&str>) -> (PathBuf, PathBuf) {
    let dir = temp_dir("cli-llm", test);
    let aia = dir.join("agent.aia");
    std::fs::write(&aia, asm).expect("write asm");
    let o = aivm_in(&dir, &["asm", "agent.aia"]);
    assert_exit(&o, 0);
    if let Some(t) = transcript {
        std::fs::write(dir.join("agent.script.json"), t).expect("write transcript");
    }
    (dir.clone(), dir.join("agent.aib"))
}

/// main spawns ask(0), ask(1), ask(2) and prints their answers in that order; ask(i) asks
/// model "large" `q<i>` and returns the answer's content.
const FAN_OUT: &str = include_str!("../vm/tests/programs/fan_out.aia");

/// Answers per question, the first one slowest, so that completions come out of order.
const TRANSCRIPT: &str = r#"{"turns": [
  {"when": "q0", "content": "zero", "delay_ms": 150, "usage": {"input_tokens": 10, "output_tokens": 2}},
  {"when": "q1", "content": "one", "usage": {"input_tokens": 10, "output_tokens": 2}},
  {"when": "q2", "content": "two", "delay_ms": 50, "usage": {"input_tokens": 10, "output_tokens": 2}}
]}"#;

#[test]
fn a_program_runs_on_the_transcript_beside_it_with_a_summary_line() {
    let (dir, aib) = program("scripted", FAN_OUT, Some(TRANSCRIPT));
    let o = aivm_in(&dir, &["run", aib.to_str().unwrap()]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "zero\none\ntwo\n");
    let err = stderr(&o);
    assert!(
        err.starts_with("aivm: 3 model calls, 30 tokens in, 6 out, $0.0000, 0 tool calls, "),
        "{err}"
    );
    let o = aivm_in(&dir, &["run", "--quiet", aib.to_str().unwrap()]);
    assert_exit(&o, 0);
    assert_eq!(stderr(&o), "", "--quiet leaves stderr empty");
}

#[test]
fn trace_then_replay_gives_the_same_output_and_the_same_journal() {
    let (dir, aib) = program("replay", FAN_OUT, Some(TRANSCRIPT));
    let aib = aib.to_str().unwrap();
    let o = aivm_in(&dir, &["run", "-q", "--trace", "live.jsonl", aib]);
    assert_exit(&o, 0);
    let live = std::fs::read_to_string(dir.join("live.jsonl")).expect("journal written");
    assert!(live.contains(r#""effect":"llm.call""#), "{live}");
    // Offline: no transcript any more, only the journal.
    std::fs::remove_file(dir.join("agent.script.json")).unwrap();
    let o2 = aivm_in(
        &dir,
        &[
            "run",
            "-q",
            "--replay",
            "live.jsonl",
            "--trace",
            "again.jsonl",
            aib,
        ],
    );
    assert_exit(&o2, 0);
    assert_eq!(stdout(&o2), stdout(&o));
    let again = std::fs::read_to_string(dir.join("again.jsonl")).expect("journal written");
    assert_eq!(
        again, live,
        "the replay's journal is the same, byte for byte"
    );
}

#[test]
fn a_tampered_journal_stops_the_replay_with_exit_7_and_says_where() {
    let (dir, aib) = program("diverge", FAN_OUT, Some(TRANSCRIPT));
    let aib = aib.to_str().unwrap();
    assert_exit(&aivm_in(&dir, &["run", "-q", "--trace", "j.jsonl", aib]), 0);
    let text = std::fs::read_to_string(dir.join("j.jsonl")).unwrap();
    std::fs::write(
        dir.join("j.jsonl"),
        text.replacen(r#""content":"q1""#, r#""content":"q9""#, 1),
    )
    .unwrap();
    let changed = std::fs::read_to_string(dir.join("j.jsonl")).unwrap();
    assert_ne!(changed, text, "the journal records the question");
    let o = aivm_in(&dir, &["run", "-q", "--replay", "j.jsonl", aib]);
    assert_exit(&o, 7);
    let err = stderr(&o);
    assert!(err.contains("replay diverged at event"), "{err}");
    assert!(err.contains("q9") && err.contains("q1"), "{err}");
}

#[test]
fn an_unbound_model_or_a_missing_key_is_exit_8_before_any_call() {
    let (dir, aib) = program("unbound", FAN_OUT, None);
    let aib = aib.to_str().unwrap();
    let o = aivm_in(&dir, &["run", aib]);
    assert_exit(&o, 8);
    let err = stderr(&o);
    assert!(err.contains("large"), "{err}");
    assert!(err.contains("aivm.toml"), "{err}");
    assert_eq!(stdout(&o), "");

    let o = aivm_in(
        &dir,
        &[
            "run",
            "--allow-model=large",
            "--model",
            "large=openai:gpt-4o-mini",
            aib,
        ],
    );
    assert_exit(&o, 8);
    assert!(stderr(&o).contains("OPENAI_API_KEY"), "{}", stderr(&o));

    let o = aivm_in(&dir, &["run", "--model", "large=nonsense", aib]);
    assert_exit(&o, 8);
}

#[test]
fn budget_flags_stop_the_run_with_budget_exceeded() {
    let (dir, aib) = program("budget", FAN_OUT, Some(TRANSCRIPT));
    let o = aivm_in(
        &dir,
        &["run", "--max-llm-calls", "2", aib.to_str().unwrap()],
    );
    assert_exit(&o, 1);
    assert_eq!(stdout(&o), "zero\none\n");
    let err = stderr(&o);
    assert!(err.contains("BudgetExceeded"), "{err}");
    assert!(err.contains("aivm: 2 model calls"), "{err}");
    // A cost budget with a transcript: transcripts are free, so the calls go through.
    let o = aivm_in(
        &dir,
        &["run", "-q", "--max-cost", "0.01", aib.to_str().unwrap()],
    );
    assert_exit(&o, 0);
    let o = aivm_in(&dir, &["run", "--timeout", "-1", aib.to_str().unwrap()]);
    assert_exit(&o, 2);
}

/// main(input) asks model "large" about its input and prints "<input> <answer>".
const ONE_ASK: &str = include_str!("../vm/tests/programs/one_ask.aia");

#[test]
fn each_runs_main_once_per_input_and_writes_results_in_input_order() {
    let turns: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"when": "about {i}", "content": "ans{i}", "delay_ms": {}}}"#,
                (6 - i) * 20
            )
        })
        .collect();
    let transcript = format!(r#"{{"turns": [{}]}}"#, turns.join(","));
    let (dir, aib) = program("each", ONE_ASK, Some(&transcript));
    std::fs::write(dir.join("in.jsonl"), "0\n1\n2\n\n3\n4\n5\n").unwrap();
    let o = aivm_in(
        &dir,
        &[
            "run",
            "--each",
            "in.jsonl",
            "--concurrency",
            "4",
            aib.to_str().unwrap(),
        ],
    );
    assert_exit(&o, 0);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 6);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["index"], i, "{l}");
        assert_eq!(l["ok"], true, "{l}");
        assert_eq!(l["value"], i, "{l}");
        assert_eq!(l["output"], format!("{i} ans{i}\n"), "{l}");
    }
    assert!(stderr(&o).contains("6 model calls"), "{}", stderr(&o));
    assert!(stderr(&o).contains("(6 runs, 0 failed)"), "{}", stderr(&o));

    // An input the transcript has no answer for fails that run alone; the exit status says so.
    std::fs::write(dir.join("in2.jsonl"), "0\n7\n").unwrap();
    let o = aivm_in(
        &dir,
        &["run", "-q", "--each", "in2.jsonl", aib.to_str().unwrap()],
    );
    assert_exit(&o, 1);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["error"]["kind"], "ModelError", "{}", lines[1]);

    let o = aivm_in(
        &dir,
        &[
            "run",
            "--each",
            "in.jsonl",
            "--replay",
            "x",
            aib.to_str().unwrap(),
        ],
    );
    assert_exit(&o, 2);
}

/// A source program with a tool and a typed answer: the whole path from `llm` to the host.
const AGENT: &str = r#"
model smart = "large"

/// Looks an order up by its number.
fn lookup(id: int) {
  print("lookup {id}")
  return {id: id, status: "shipped"}
}

type Reply = {status: string, order: int}

fn main() {
  try {
    let r = llm smart -> Reply {
      system "You answer questions about orders."
      user "Where is order 1042?"
      tools [lookup]
    }
    print("{r.order}: {r.status}")
  } catch e {
    print(e.kind)
    print(e.payload.budget.budget)
    return 3
  }
}
"#;

const AGENT_TRANSCRIPT: &str = r#"{"turns": [
  {"tool_calls": [{"name": "lookup", "arguments": {"id": 1042}}]},
  {"json": {"status": "shipped", "order": 1042}}
]}"#;

fn source_program(test: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir("cli-llm", test);
    std::fs::write(dir.join("agent.ail"), AGENT).unwrap();
    std::fs::write(dir.join("agent.script.json"), AGENT_TRANSCRIPT).unwrap();
    (dir.clone(), dir.join("agent.ail"))
}

#[test]
fn an_agent_with_a_tool_and_a_typed_answer_runs_records_and_replays() {
    let (dir, src) = source_program("agent");
    let src = src.to_str().unwrap();
    let o = aivm_in(&dir, &["run", "--trace", "t.jsonl", src]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "lookup 1042\n1042: shipped\n");
    assert!(
        stderr(&o).starts_with("aivm: 2 model calls, ") && stderr(&o).contains(", 1 tool call, "),
        "{}",
        stderr(&o)
    );
    let journal = std::fs::read_to_string(dir.join("t.jsonl")).unwrap();
    let effects: Vec<String> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "effect")
        .map(|e| e["effect"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        effects,
        ["llm.call", "tool.call", "io.print", "llm.call", "io.print"]
    );

    let o2 = aivm_in(
        &dir,
        &[
            "run", "-q", "--replay", "t.jsonl", "--trace", "t2.jsonl", src,
        ],
    );
    assert_exit(&o2, 0);
    assert_eq!(stdout(&o2), stdout(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("t2.jsonl")).unwrap(),
        journal
    );
}

#[test]
fn a_tool_budget_of_zero_is_caught_by_the_program_with_its_payload() {
    let (dir, src) = source_program("toolbudget");
    let o = aivm_in(
        &dir,
        &["run", "-q", "--max-tool-calls", "0", src.to_str().unwrap()],
    );
    assert_exit(&o, 3);
    assert_eq!(stdout(&o), "BudgetExceeded\ntool_calls\n");
}
