//! Optional: the model calls of agent programs against a real model served on this machine
//! (llama.cpp's `llama-server` with SmolLM2-135M-Instruct; `tests/real-model/setup.sh` builds
//! it into a cache outside the clone, `tests/real-model/serve.sh` starts it and prints its base
//! URL). Set `AIVM_REAL_LLM_SERVER` to that URL to run these tests; without it each test prints
//! a skip line and passes, so the default test run does not depend on a model.
//!
//! Nothing here asserts the generated text (it depends on the CPU the server was built for):
//! only that the VM takes what a real server sends — a structured answer that validates
//! against the program's type, and, for tool calls, which this small model only makes with a
//! forced tool choice, either an answer or a typed `ModelError`, never a crash or a hang.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn server() -> Option<String> {
    match std::env::var("AIVM_REAL_LLM_SERVER") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipping: AIVM_REAL_LLM_SERVER is not set (see tests/real-model/setup.sh)");
            None
        }
    }
}

/// A folder with `program` as `main.ail` and an aivm.toml binding `small` to the server.
fn project(name: &str, url: &str, program: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aivm-real-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.ail"), program).unwrap();
    std::fs::write(
        dir.join("aivm.toml"),
        format!(
            "[models]\nsmall = {{ provider = \"openai\", model = \"smollm2\", base_url = \"{url}\", retries = 1, timeout_secs = 120 }}\n"
        ),
    )
    .unwrap();
    dir
}

fn run(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(["run", "--trace", "journal.jsonl", "main.ail"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the aivm binary runs")
}

#[test]
fn a_structured_answer_from_a_real_model_validates_against_the_type() {
    let Some(url) = server() else { return };
    let dir = project(
        "structured",
        &url,
        r#"
model fast = "small"
type Mood = "happy" | "sad" | "neutral"
type Verdict = {mood: Mood, confident: bool}
fn main() -> int {
  let v = llm fast -> Verdict {
    system "You classify the mood of a sentence."
    user "Classify: I love sunny mornings."
    temperature 0
    max_tokens 60
  }
  print("mood={v.mood} confident={v.confident}")
  return 0
}
"#,
    );
    let out = run(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The answer either validated (grammar-constrained output) or the loop gave up with the
    // typed error after its retries; a real server must never make the VM crash.
    match out.status.code() {
        Some(0) => {
            let line = stdout.trim();
            assert!(
                ["mood=happy", "mood=sad", "mood=neutral"]
                    .iter()
                    .any(|p| line.starts_with(p)),
                "{line}"
            );
        }
        other => assert!(stderr.contains("OutputInvalid"), "exit {other:?}: {stderr}"),
    }
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"llm.call\""), "{journal}");
}

#[test]
fn a_tool_offering_call_against_a_real_model_answers_or_fails_typed() {
    let Some(url) = server() else { return };
    let dir = project(
        "tools",
        &url,
        r#"
model fast = "small"
/// The current temperature in a city, in degrees Celsius.
fn weather(city: string) -> int {
  return 21
}
fn main() -> int {
  try {
    let _answer = llm fast {
      user "What is the temperature in Paris? Use the tool."
      tools [weather]
      temperature 0
      max_tokens 80
      max_turns 3
    }
    print("answered")
  } catch e {
    print("error {e.kind}")
  }
  return 0
}
"#,
    );
    let out = run(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let line = stdout.trim();
    assert!(
        line == "answered" || line == "error ModelError" || line == "error MaxTurns",
        "{line}"
    );
}
