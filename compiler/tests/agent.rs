//! The agent loop end to end: programs with `llm` expressions compiled and run on the VM, with
//! this test as the host. It answers each `llm.call` from a scripted list of assistant
//! messages (recording every request), lets every `tool.call` gate pass (or refuses it), and
//! captures `io.print`; the tests then check what the program printed and what the model was
//! sent.

use std::collections::VecDeque;

use aivm_compiler::compile_source;
use aivm_compiler::render::render;
mod common;

use aivm_vm::format::VerifiedModule;
use aivm_vm::{HostError, HostValue, Limits, Step, Vm};
use common::{list, record, s};
use serde_json::{json, Value};

/// What a run did, in order.
#[derive(Debug, Default)]
struct Run {
    printed: Vec<String>,
    /// The request of each model turn, as JSON.
    requests: Vec<Value>,
    /// Every effect, as `native` or `native name` (the tool name for `tool.call`).
    effects: Vec<String>,
    /// The arguments of each `tool.call` gate.
    gates: Vec<Value>,
    /// The uncaught error of `main`, if any.
    failure: Option<String>,
}

/// An assistant message as the host hands it to the program (LLM.md §4).
fn reply(content: &str, calls: &[(&str, &str, &str)]) -> Result<HostValue, HostError> {
    let tool_calls = calls
        .iter()
        .map(|(id, name, args)| {
            record(vec![
                ("id", s(id)),
                ("name", s(name)),
                ("arguments", s(args)),
            ])
        })
        .collect();
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    Ok(record(vec![
        ("role", s("assistant")),
        ("content", s(content)),
        ("tool_calls", list(tool_calls)),
        ("finish", s(finish)),
        (
            "usage",
            record(vec![
                ("input_tokens", HostValue::int(10)),
                ("output_tokens", HostValue::int(5)),
            ]),
        ),
        ("model", s("scripted-1")),
    ]))
}

/// Compiles `src` and runs `main`, answering model turns from `replies` in order; a `tool.call`
/// for a tool named in `refuse` fails with that error.
fn run_with(
    src: &str,
    replies: Vec<Result<HostValue, HostError>>,
    refuse: Option<(&str, HostError)>,
) -> Run {
    let compiled = compile_source("agent_test.ail", src)
        .unwrap_or_else(|d| panic!("does not compile:\n{}", render(&d, false)));
    let module = VerifiedModule::new(compiled.module).expect("the compiled module verifies");
    let mut vm = Vm::new(&module, Limits::default()).expect("module loads");
    vm.start_main(vec![]).expect("main starts");
    let mut replies: VecDeque<_> = replies.into();
    let mut out = Run::default();
    loop {
        match vm.run() {
            Ok(Step::Done { .. }) => return out,
            Ok(Step::Idle) => panic!("idle with nothing in flight: {out:#?}"),
            Ok(Step::Effect(req)) => {
                let answer = match req.native.as_str() {
                    "io.print" => {
                        out.printed
                            .push(req.args[0].as_str().unwrap_or("?").to_string());
                        out.effects.push("io.print".into());
                        Ok(HostValue::null())
                    }
                    "llm.call" => {
                        assert_eq!(req.args[0].as_str(), Some("large"), "the logical name");
                        out.requests.push(req.args[1].to_json());
                        out.effects.push("llm.call".into());
                        replies
                            .pop_front()
                            .unwrap_or_else(|| panic!("the script has no turn left: {out:#?}"))
                    }
                    "tool.call" => {
                        let name = req.args[0].as_str().unwrap_or("?").to_string();
                        out.gates.push(req.args[1].to_json());
                        out.effects.push(format!("tool.call {name}"));
                        match &refuse {
                            Some((n, e)) if *n == name => Err(e.clone()),
                            _ => Ok(HostValue::null()),
                        }
                    }
                    other => panic!("unexpected effect {other}"),
                };
                vm.resume(req.task, answer).expect("resume");
            }
            Err(e) => {
                out.failure = Some(e.to_string());
                return out;
            }
        }
    }
}

fn run(src: &str, replies: Vec<Result<HostValue, HostError>>) -> Run {
    run_with(src, replies, None)
}

/// The messages of a recorded request.
fn messages(req: &Value) -> &Vec<Value> {
    req["messages"].as_array().expect("messages is a list")
}

const TOOLS: &str = r#"
model smart = "large"

/// Adds two integers.
fn add(a: int, b: int) -> int {
  print("add {a} {b}")
  return a + b
}

/// Looks a word up in the dictionary.
fn define(word: string) {
  print("define {word}")
  return {word: word, meaning: "a {word}"}
}

/// Always fails.
fn broken(x) {
  throw error("Broken", "tool {x} is out of order")
}

fn main() {
  let answer = llm smart {
    system "You are a calculator."
    user "What is 2 + 3?"
    tools [add, define, broken]
  }
  print("answer: {answer}")
}
"#;

#[test]
fn tools_run_with_the_parsed_arguments_in_parallel_and_their_results_go_back() {
    let r = run(
        TOOLS,
        vec![
            reply(
                "",
                &[
                    ("c1", "add", r#"{"a": 2, "b": 3}"#),
                    ("c2", "define", r#"{"word": "sum"}"#),
                ],
            ),
            reply("5", &[]),
        ],
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["add 2 3", "define sum", "answer: 5"]);
    // Both calls pass the gate before either tool runs: they run as parallel tasks.
    assert_eq!(
        r.effects,
        [
            "llm.call",
            "tool.call add",
            "tool.call define",
            "io.print",
            "io.print",
            "llm.call",
            "io.print"
        ]
    );
    assert_eq!(r.gates, [json!({"a": 2, "b": 3}), json!({"word": "sum"})]);

    // The first request: the messages in order, and the tools as the model sees them.
    let first = &r.requests[0];
    assert_eq!(
        messages(first),
        &vec![
            json!({"role": "system", "content": "You are a calculator."}),
            json!({"role": "user", "content": "What is 2 + 3?"}),
        ]
    );
    let tools = first["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 3);
    assert_eq!(
        tools[0],
        json!({
            "name": "add",
            "description": "Adds two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": false,
            },
        })
    );
    assert_eq!(first["schema"], Value::Null);

    // The second request carries the assistant's calls and one tool message per call.
    let second = messages(&r.requests[1]);
    assert_eq!(second.len(), 5);
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["tool_calls"][1]["name"], "define");
    assert_eq!(
        second[3],
        json!({"role": "tool", "tool_call_id": "c1", "name": "add", "content": "5"})
    );
    assert_eq!(second[4]["tool_call_id"], "c2");
    assert_eq!(second[4]["content"], r#"{"word":"sum","meaning":"a sum"}"#);
}

#[test]
fn bad_tool_calls_are_answered_with_the_reason() {
    let r = run(
        TOOLS,
        vec![
            reply(
                "",
                &[
                    ("c1", "nope", "{}"),
                    ("c2", "add", r#"{"a": "two", "b": 3}"#),
                    ("c3", "add", "{not json"),
                    ("c4", "broken", r#"{"x": 7}"#),
                ],
            ),
            reply("sorry", &[]),
        ],
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["answer: sorry"]);
    // Only the call with valid arguments reaches the gate.
    assert_eq!(r.effects[1..3], ["tool.call broken", "llm.call"]);
    let msgs = messages(&r.requests[1]);
    let contents: Vec<&str> = msgs[3..]
        .iter()
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(contents[0], "error: no tool named nope");
    assert!(
        contents[1].starts_with("error: invalid arguments:") && contents[1].contains("/a"),
        "{contents:?}"
    );
    assert!(
        contents[2].starts_with("error: the arguments are not valid JSON"),
        "{contents:?}"
    );
    assert_eq!(contents[3], "error: Broken: tool 7 is out of order");
}

#[test]
fn a_flood_of_calls_runs_sixteen_and_duplicate_keys_are_not_json() {
    let mut calls: Vec<(String, String)> = (0..50)
        .map(|i| (format!("c{i}"), format!(r#"{{"a": {i}, "b": 1}}"#)))
        .collect();
    calls[0].1 = r#"{"a": 1, "a": 2, "b": 1}"#.to_string();
    let refs: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|(id, args)| (id.as_str(), "add", args.as_str()))
        .collect();
    let r = run(TOOLS, vec![reply("", &refs), reply("done", &[])]);
    assert_eq!(r.failure, None, "{r:#?}");
    // 15 of the first 16 reach the gate (the first names `a` twice); none of the 34 after.
    let gated = r.effects.iter().filter(|e| *e == "tool.call add").count();
    assert_eq!(gated, 15, "{:?}", r.effects);
    let msgs = messages(&r.requests[1]);
    let answers: Vec<&str> = msgs
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(answers.len(), 50, "every call is answered");
    assert!(answers[0].contains("appears twice"), "{}", answers[0]);
    assert_eq!(answers[1], "2");
    assert!(answers[16..]
        .iter()
        .all(|a| a.starts_with("error: at most 16 tool calls")));
}

const TICKET: &str = r#"
model smart = "large"

/// A triaged support ticket.
type Ticket = {
  title: string,
  severity: "low" | "medium" | "high",
  tags: [string],
  customer: string?,
}

fn main() {
  let text = "The printer is on fire"
  let t = llm smart -> Ticket {
    system "You triage support tickets."
    user "Classify: {text}"
    temperature 0
  }
  print(t.title)
  print(t.severity)
  print(t.tags[1])
  print(t.customer == null)
  print(type_of(t))
}
"#;

#[test]
fn structured_output_becomes_a_record_after_a_validation_retry() {
    let r = run(
        TICKET,
        vec![
            reply(
                r#"{"title": "Fire", "severity": "urgent", "tags": [], "customer": null}"#,
                &[],
            ),
            reply(
                r#"{"title": "Fire", "severity": "high", "tags": ["hw", "fire"], "customer": null}"#,
                &[],
            ),
        ],
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["Fire", "high", "fire", "true", "record"]);
    let first = &r.requests[0];
    assert_eq!(first["schema_name"], "Ticket");
    assert_eq!(
        first["schema"]["properties"]["severity"],
        json!({"type": "string", "enum": ["low", "medium", "high"]})
    );
    assert_eq!(first["schema"]["description"], "A triaged support ticket.");
    assert_eq!(
        first["options"],
        json!({"temperature": 0, "max_tokens": null, "stop": null})
    );
    assert_eq!(
        messages(first)[1]["content"],
        "Classify: The printer is on fire"
    );
    // The retry: the invalid answer and the reason went back to the model.
    let second = messages(&r.requests[1]);
    assert_eq!(second.len(), 4);
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[3]["role"], "user");
    let feedback = second[3]["content"].as_str().unwrap_or("");
    assert!(
        feedback.starts_with("Your answer is not valid:") && feedback.contains("severity"),
        "{feedback}"
    );
}

#[test]
fn output_invalid_after_the_retries_carries_the_answer_and_the_conversation() {
    let src = r#"
model smart = "large"

fn main() {
  try {
    let n = llm smart -> {n: int} {
      user "Give me a number"
      retries 1
    }
    print(n)
  } catch e {
    print(e.kind)
    print(e.payload.answer)
    print(len(e.payload.conversation))
    print(e.payload.reason != "")
  }
}
"#;
    let r = run(
        src,
        vec![reply("seven", &[]), reply(r#"{"n": "seven"}"#, &[])],
    );
    assert_eq!(r.failure, None);
    assert_eq!(
        r.printed,
        ["OutputInvalid", r#"{"n": "seven"}"#, "4", "true"]
    );
    assert_eq!(r.requests.len(), 2);
}

#[test]
fn max_turns_stops_an_endless_tool_loop() {
    let src = r#"
model smart = "large"

fn ping() {
  return "pong"
}

fn main() {
  let history = [{role: "user", content: "Ping forever"}]
  try {
    print(llm smart {
      messages history
      tools [ping]
      max_turns 2
    })
  } catch e {
    print(e.kind)
    print(len(e.payload.conversation))
    print(len(history))
  }
}
"#;
    let call = || reply("", &[("p", "ping", "{}")]);
    let r = run(src, vec![call(), call()]);
    assert_eq!(r.failure, None);
    // user, then (assistant, tool) twice; the caller's list is left as it was.
    assert_eq!(r.printed, ["MaxTurns", "5", "1"]);
    assert_eq!(r.requests.len(), 2);
}

#[test]
fn budget_errors_carry_the_conversation_and_policy_denials_go_back_to_the_model() {
    let src = r#"
model smart = "large"

fn ping() {
  return "pong"
}

fn main() {
  try {
    print(llm smart {
      user "Ping"
      tools [ping]
    })
  } catch e {
    print(e.kind)
    print(e.message)
    print(len(e.payload.conversation))
  }
}
"#;
    let r = run_with(
        src,
        vec![reply("", &[("p", "ping", "{}")])],
        Some((
            "ping",
            HostError::new("BudgetExceeded", "max_tool_calls: 0 left"),
        )),
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["BudgetExceeded", "max_tool_calls: 0 left", "2"]);

    let r = run_with(
        src,
        vec![
            reply("", &[("p", "ping", "{}")]),
            reply("no ping, then", &[]),
        ],
        Some(("ping", HostError::new("PolicyDenied", "tool ping"))),
    );
    // A call the policy refuses is not run; the model is told why, and the loop goes on.
    assert_eq!(r.failure, None, "{r:#?}");
    assert_eq!(r.printed, ["no ping, then"]);
    let told = messages(&r.requests[1])
        .iter()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    assert_eq!(told, "error: PolicyDenied: tool ping");

    let r = run(
        src,
        vec![Err(HostError::new(
            "BudgetExceeded",
            "max_llm_calls: 0 left",
        ))],
    );
    assert_eq!(r.printed, ["BudgetExceeded", "max_llm_calls: 0 left", "1"]);
}

#[test]
fn models_are_module_slots_and_llm_call_is_one_instruction() {
    let src = "model smart = \"large\"\nmodel cheap = \"small\"\nmodel again = \"large\"\nfn main() {\n  print(smart)\n  print(llm cheap { user \"hi\" })\n}\n";
    let m = compile_source("models.ail", src).expect("compiles").module;
    let slots: Vec<(&str, &str)> = m
        .models
        .iter()
        .map(|s| (m.str(s.name), m.str(s.logical)))
        .collect();
    assert_eq!(slots, [("smart", "large"), ("cheap", "small")]);
    let listing = aivm_vm::format::disassemble(&m);
    assert_eq!(listing.matches("CallLlm").count(), 1, "{listing}");
    assert!(!listing.contains("\"llm.call\""), "{listing}");
}
