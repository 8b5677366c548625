//! From `aivm.toml` to a request on the wire: bindings built by `bind_models` call the fake
//! servers with the configured model id, base URL, key and streaming; transcripts bound by
//! default are retried without waiting.

use std::path::PathBuf;

use aivm_fakes::{anthropic, openai, FakeAnthropic, FakeOpenAi, Reply};
use aivm_vm::host::config::{bind_models, Config};
use aivm_vm::host::llm::{Message, ModelRequest, Role, Usage};
use aivm_vm::host::providers::retry::call_with_retries;

fn req(model: &str) -> ModelRequest {
    ModelRequest::new(model, vec![Message::text(Role::User, "hi")])
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aivm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn configured_bindings_reach_the_servers() {
    let oa = FakeOpenAi::start().await.unwrap();
    let an = FakeAnthropic::start().await.unwrap();
    oa.push(Reply::sse(openai::stream_text(&["str", "eamed"], "stop")));
    an.push(Reply::json(
        200,
        &anthropic::message(vec![anthropic::text_block("claude says")], "end_turn"),
    ));
    let text = format!(
        r#"
[models]
small = {{ provider = "openai", model = "smollm2", base_url = "{}", stream = true, api_key_env = "AIVM_TEST_KEY", price = {{ input = 1.0, output = 2.0 }} }}
large = {{ provider = "anthropic", model = "claude-x", base_url = "{}", max_tokens = 64, retries = 0 }}
"#,
        oa.base_url(),
        an.base_url()
    );
    let config = Config::parse(&text, std::path::Path::new("aivm.toml")).unwrap();
    let env = |k: &str| (k == "AIVM_TEST_KEY").then(|| "sk-from-env".to_string());
    let b = bind_models(&config, &["small", "large"], None, &env).unwrap();
    assert_eq!(b["small"].model, "smollm2");
    assert_eq!(b["small"].provider.name(), "openai:smollm2");
    assert_eq!(b["large"].retry.max_attempts, 1);
    assert_eq!(b["large"].max_tokens, Some(64));
    assert!(!format!("{:?}", b["small"]).contains("sk-from-env"));

    let (r, attempts) = call_with_retries(
        b["small"].provider.as_ref(),
        &req(&b["small"].model),
        &b["small"].retry,
    )
    .await;
    let r = r.unwrap();
    assert_eq!((r.content.as_str(), attempts), ("streamed", 1));
    assert_eq!(b["small"].cost(&r.usage), Some((26.0 + 28.0) / 1e6));
    let (r, _) = call_with_retries(
        b["large"].provider.as_ref(),
        &req(&b["large"].model),
        &b["large"].retry,
    )
    .await;
    assert_eq!(r.unwrap().content, "claude says");
    assert_eq!(b["large"].cost(&Usage::default()), None, "no price known");

    let sent = &oa.requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer sk-from-env"));
    assert_eq!(sent.json()["model"], "smollm2");
    assert_eq!(sent.json()["stream"], true);
    assert_eq!(an.requests()[0].json()["model"], "claude-x");
}

#[tokio::test]
async fn transcripts_are_retried_without_waiting() {
    let dir = temp_dir("retry-transcript");
    let program = dir.join("agent.ail");
    std::fs::write(
        dir.join("agent.script.json"),
        r#"{"turns": [{"error": {"status": 503, "message": "busy"}}, {"content": "second try"}]}"#,
    )
    .unwrap();
    let b = bind_models(&Config::default(), &["m"], Some(&program), &|_| None).unwrap();
    let start = std::time::Instant::now();
    let (r, attempts) =
        call_with_retries(b["m"].provider.as_ref(), &req(&b["m"].model), &b["m"].retry).await;
    assert_eq!((r.unwrap().content.as_str(), attempts), ("second try", 2));
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    std::fs::remove_dir_all(&dir).unwrap();
}
