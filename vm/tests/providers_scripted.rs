//! The scripted provider (spec/scripted.md): deterministic turn selection, every kind of
//! answer, usage estimates, and the error when the transcript has no answer left.

use aivm_vm::host::llm::{Finish, Message, ModelRequest, Provider, ProviderError, Role, Usage};
use aivm_vm::host::providers::scripted::{transcript_path, ScriptedProvider};
use std::path::Path;

fn req(model: &str, texts: &[&str]) -> ModelRequest {
    let messages = texts.iter().map(|t| Message::text(Role::User, *t));
    ModelRequest::new(model, messages.collect())
}

const TRANSCRIPT: &str = r#"{
  "turns": [
    {"content": "first plain"},
    {"when": "refund", "json": {"category": "billing", "urgent": true}, "usage": {"input_tokens": 7, "output_tokens": 3}},
    {"model": "small", "content": "for small only"},
    {"tool_calls": [{"name": "lookup", "arguments": {"id": 3}}, {"name": "now"}]},
    {"when": "boom", "error": {"status": 503, "message": "overloaded"}},
    {"content": "cut sh", "finish": "length"}
  ]
}"#;

#[tokio::test]
async fn turns_are_chosen_deterministically() {
    let p = ScriptedProvider::from_json(TRANSCRIPT, "t.script.json").unwrap();
    assert_eq!(p.name(), "scripted:t.script.json");

    // A matching `when` wins over earlier unused turns without one.
    let a = p.call(&req("large", &["I want a refund"])).await.unwrap();
    assert_eq!(a.content, r#"{"category":"billing","urgent":true}"#);
    assert_eq!(
        a.usage,
        Usage {
            input_tokens: 7,
            output_tokens: 3
        }
    );
    assert_eq!(a.model, "large");

    // Then the first unused turn without `when`, skipping turns for other models.
    let b = p.call(&req("large", &["hello"])).await.unwrap();
    assert_eq!(b.content, "first plain");
    assert_eq!(b.finish, Finish::Stop);
    assert!(
        b.usage.input_tokens > 0 && b.usage.output_tokens > 0,
        "estimated usage"
    );

    let c = p.call(&req("large", &["hello"])).await.unwrap();
    assert_eq!(c.finish, Finish::ToolCalls);
    assert_eq!(c.content, "");
    let calls: Vec<_> = c
        .tool_calls
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str(), t.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("call_4_0", "lookup", r#"{"id":3}"#),
            ("call_4_1", "now", "{}")
        ]
    );

    let d = p.call(&req("small", &["hi"])).await.unwrap();
    assert_eq!(d.content, "for small only");

    let e = p
        .call(&req("large", &["this will boom"]))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ProviderError::Http {
            provider: "scripted:t.script.json".into(),
            status: 503,
            message: "overloaded".into(),
            retry_after: None
        }
    );

    let f = p.call(&req("large", &["x"])).await.unwrap();
    assert_eq!((f.content.as_str(), f.finish), ("cut sh", Finish::Length));

    let g = p.call(&req("large", &["anything else"])).await.unwrap_err();
    let ProviderError::Exhausted(msg) = g else {
        panic!("{g:?}")
    };
    assert_eq!(
        msg,
        "scripted transcript t.script.json has no answer for call 7 (model \"large\"): all 6 turns are used; \
         the last user message is \"anything else\""
    );
}

#[tokio::test]
async fn unmatched_when_turns_are_not_used_blindly() {
    let p = ScriptedProvider::from_json(
        r#"{"turns": [{"when": "refund", "content": "r"}]}"#,
        "w.json",
    )
    .unwrap();
    let e = p.call(&req("m", &["hello"])).await.unwrap_err();
    let ProviderError::Exhausted(msg) = e else {
        panic!("{e:?}")
    };
    assert!(
        msg.contains("call 1") && msg.contains("1 unused turns"),
        "{msg}"
    );
    // The turn is still there for a request that matches.
    assert_eq!(
        p.call(&req("m", &["a refund please"]))
            .await
            .unwrap()
            .content,
        "r"
    );
}

#[test]
fn bad_transcripts_are_config_errors() {
    for (text, want) in [
        (r#"{"turns": [{}]}"#, "turn 1 gives no answer"),
        (
            r#"{"turns": [{"content": "a", "json": {}}]}"#,
            "more than one kind",
        ),
        (
            r#"{"turns": [{"contnet": "a"}]}"#,
            "unknown field `contnet`",
        ),
        (
            r#"{"turns": [{"tool_calls": [{"name": "f", "arguments": [1]}]}]}"#,
            "must be an object",
        ),
        ("[", "EOF"),
    ] {
        let e = ScriptedProvider::from_json(text, "bad.json").unwrap_err();
        let ProviderError::Config(msg) = e else {
            panic!("{e:?}")
        };
        assert!(
            msg.starts_with("scripted transcript bad.json: ") && msg.contains(want),
            "{msg}"
        );
    }
    let e = ScriptedProvider::load(Path::new("/nonexistent/x.script.json")).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn transcript_naming() {
    assert_eq!(
        transcript_path(Path::new("ex/triage.ail")),
        Path::new("ex/triage.script.json")
    );
    assert_eq!(
        transcript_path(Path::new("ex/triage.aib")),
        Path::new("ex/triage.script.json")
    );
}

#[tokio::test]
async fn selection_happens_when_the_call_is_made() {
    // Two calls made in one order and awaited in the other get the turns in call order.
    let p = ScriptedProvider::from_json(
        r#"{"turns": [{"content": "one", "delay_ms": 30}, {"content": "two"}]}"#,
        "d.json",
    )
    .unwrap();
    let r = req("m", &["x"]);
    let first = p.call(&r);
    let second = p.call(&r);
    assert_eq!(second.await.unwrap().content, "two");
    assert_eq!(first.await.unwrap().content, "one");
}
