//! The Anthropic Messages provider over real HTTP against `aivm-fakes`: headers, the system
//! prompt, tool_use / tool_result blocks, structured output through a forced tool, streaming
//! events, and errors.

use std::time::Duration;

use aivm_fakes::{anthropic, FakeAnthropic, Reply};
use aivm_vm::host::llm::{
    Finish, Message, ModelRequest, OutputSchema, Provider, ProviderError, Role, ToolCall, ToolSpec,
    Usage,
};
use aivm_vm::host::providers::anthropic::{AnthropicProvider, API_VERSION};
use aivm_vm::host::providers::HttpSettings;
use aivm_vm::host::providers::{ApiKey, Limits};
use serde_json::json;

fn provider(fake: &FakeAnthropic, key: Option<&str>, stream: bool) -> AnthropicProvider {
    AnthropicProvider::new(HttpSettings {
        name: "anthropic:test".into(),
        base_url: fake.base_url(),
        api_key: key.map(ApiKey::new),
        stream,
        limits: Limits {
            timeout: Duration::from_secs(10),
            ..Limits::default()
        },
    })
    .unwrap()
}

fn ask(text: &str) -> ModelRequest {
    let messages = vec![
        Message::text(Role::System, "You are terse."),
        Message::text(Role::User, text),
    ];
    ModelRequest {
        temperature: Some(0.2),
        max_tokens: Some(300),
        ..ModelRequest::new("claude-test", messages)
    }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        mcp: None,
    }
}

fn protocol_message(e: ProviderError) -> String {
    match e {
        ProviderError::Protocol { message, .. } => message,
        other => panic!("expected a Protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_answer_headers_and_system_prompt() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &anthropic::message(vec![anthropic::text_block("Hi.")], "end_turn"),
    ));
    let got = provider(&fake, Some("sk-ant-xyz"), false)
        .call(&ask("Hello"))
        .await
        .unwrap();
    assert_eq!(got.content, "Hi.");
    assert_eq!(got.finish, Finish::Stop);
    assert_eq!(
        got.usage,
        Usage {
            input_tokens: 21,
            output_tokens: 9
        }
    );
    assert_eq!(got.model, "claude-fake-1");
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("sk-ant-xyz"));
    assert_eq!(r.header("anthropic-version"), Some(API_VERSION));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.json(),
        json!({
            "model": "claude-test",
            "max_tokens": 300,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
            "temperature": 0.2,
        })
    );
}

#[tokio::test]
async fn no_key_no_key_header() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &anthropic::message(vec![anthropic::text_block("x")], "end_turn"),
    ));
    provider(&fake, None, false).call(&ask("x")).await.unwrap();
    assert_eq!(fake.requests()[0].header("x-api-key"), None);
}

#[tokio::test]
async fn structured_output_through_a_forced_tool() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &anthropic::message(
            vec![anthropic::tool_use_block(
                "toolu_01",
                "Ticket",
                json!({"category": "billing", "urgent": true}),
            )],
            "tool_use",
        ),
    ));
    let schema = json!({"type": "object", "properties": {"category": {"type": "string"}, "urgent": {"type": "boolean"}},
                        "required": ["category", "urgent"], "additionalProperties": false});
    let mut req = ask("Triage: I was charged twice");
    req.output = Some(OutputSchema {
        name: "Ticket".into(),
        schema: schema.clone(),
    });
    let got = provider(&fake, None, false).call(&req).await.unwrap();
    assert_eq!(got.content, r#"{"category":"billing","urgent":true}"#);
    assert_eq!(got.finish, Finish::Stop);
    assert!(got.tool_calls.is_empty());
    let sent = fake.requests()[0].json();
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "Ticket"})
    );
    assert_eq!(sent["tools"][0]["name"], json!("Ticket"));
    assert_eq!(sent["tools"][0]["input_schema"], schema);
}

#[tokio::test]
async fn tool_calls_and_results_as_blocks() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &anthropic::message(
            vec![
                anthropic::text_block("Let me check both."),
                anthropic::tool_use_block("toolu_a", "get_weather", json!({"city": "Oslo"})),
                anthropic::tool_use_block("toolu_b", "get_weather", json!({"city": "Rome"})),
            ],
            "tool_use",
        ),
    ));
    fake.push(Reply::json(
        200,
        &anthropic::message(vec![anthropic::text_block("Both mild.")], "end_turn"),
    ));
    let p = provider(&fake, None, false);
    let mut req = ask("Weather in Oslo and Rome?");
    req.tools = vec![weather_tool()];
    let one = p.call(&req).await.unwrap();
    assert_eq!(one.finish, Finish::ToolCalls);
    assert_eq!(one.content, "Let me check both.");
    assert_eq!(
        one.tool_calls,
        vec![
            ToolCall {
                id: "toolu_a".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Oslo"}"#.into()
            },
            ToolCall {
                id: "toolu_b".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Rome"}"#.into()
            },
        ]
    );
    req.messages.push(Message {
        role: Role::Assistant,
        content: one.content.clone(),
        tool_calls: one.tool_calls.clone(),
        tool_call_id: None,
        name: None,
    });
    for (id, result) in [("toolu_a", "5 C"), ("toolu_b", "17 C")] {
        req.messages.push(Message {
            role: Role::Tool,
            content: result.into(),
            tool_calls: vec![],
            tool_call_id: Some(id.into()),
            name: Some("get_weather".into()),
        });
    }
    assert_eq!(p.call(&req).await.unwrap().content, "Both mild.");
    let sent = fake.requests()[1].json();
    assert_eq!(
        sent["tools"],
        json!([{"name": "get_weather", "description": "Weather in a city",
                                       "input_schema": weather_tool().parameters}])
    );
    assert!(sent.get("tool_choice").is_none());
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo and Rome?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check both."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "5 C"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "17 C"}]},
        ])
    );
}

#[tokio::test]
async fn errors_are_typed() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.push(Reply::json(
        400,
        &anthropic::error_body("invalid_request_error", "max_tokens: field required"),
    ));
    fake.push(Reply::json(
        401,
        &anthropic::error_body("authentication_error", "invalid x-api-key"),
    ));
    fake.push(
        Reply::json(
            429,
            &anthropic::error_body(
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            ),
        )
        .with_header("retry-after", "3"),
    );
    fake.push(Reply::json(
        529,
        &anthropic::error_body("overloaded_error", "Overloaded"),
    ));
    fake.push(Reply::raw(
        200,
        "application/json",
        "{\"type\": \"message\", \"content\": [{\"type\": ",
    ));
    let p = provider(&fake, None, false);
    let e = p.call(&ask("x")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "anthropic:test answered HTTP 400: max_tokens: field required (invalid_request_error)"
    );
    assert!(!e.is_retryable());
    let e = p.call(&ask("x")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Http { status: 401, .. }) && !e.is_retryable());
    let e = p.call(&ask("x")).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Http { status: 429, retry_after: Some(d), .. } if d == Duration::from_secs(3))
    );
    let e = p.call(&ask("x")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Http { status: 529, .. }) && e.is_retryable());
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(m.contains("not valid") && m.contains("content"), "{m}");
}

#[tokio::test]
async fn streamed_text() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.push(
        Reply::sse(anthropic::stream_text(&["Hel", "lo", "!"], "end_turn"))
            .with_chunk_delay(Duration::from_millis(1)),
    );
    let got = provider(&fake, None, true).call(&ask("x")).await.unwrap();
    assert_eq!(got.content, "Hello!");
    assert_eq!(got.finish, Finish::Stop);
    assert_eq!(
        got.usage,
        Usage {
            input_tokens: 21,
            output_tokens: 9
        }
    );
    assert_eq!(got.model, "claude-fake-1");
    let sent = fake.requests()[0].json();
    assert_eq!(sent["stream"], json!(true));
}

#[tokio::test]
async fn streamed_tool_use_and_structured_answer() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.push(Reply::sse(anthropic::stream_tool_use(
        "Checking.",
        "toolu_9",
        "get_weather",
        &["{\"ci", "ty\": \"Pa", "ris\"}"],
        "tool_use",
    )));
    fake.push(Reply::sse(anthropic::stream_tool_use(
        "",
        "toolu_10",
        "Person",
        &["{\"name\": ", "\"Ava\"}"],
        "tool_use",
    )));
    fake.push(Reply::sse(anthropic::stream_tool_use(
        "",
        "toolu_11",
        "Person",
        &["{\"name\": \"Av"],
        "max_tokens",
    )));
    let p = provider(&fake, None, true);
    let mut req = ask("x");
    req.tools = vec![weather_tool()];
    let one = p.call(&req).await.unwrap();
    assert_eq!(one.content, "Checking.");
    assert_eq!(one.finish, Finish::ToolCalls);
    assert_eq!(
        one.tool_calls,
        vec![ToolCall {
            id: "toolu_9".into(),
            name: "get_weather".into(),
            arguments: "{\"city\": \"Paris\"}".into()
        }]
    );

    req.tools.clear();
    req.output = Some(OutputSchema {
        name: "Person".into(),
        schema: json!({"type": "object"}),
    });
    let two = p.call(&req).await.unwrap();
    assert_eq!(
        (two.content.as_str(), two.finish),
        ("{\"name\": \"Ava\"}", Finish::Stop)
    );
    assert!(two.tool_calls.is_empty());
    // Cut short by max_tokens: the truncated JSON is the answer, marked Length.
    let three = p.call(&req).await.unwrap();
    assert_eq!(
        (three.content.as_str(), three.finish),
        ("{\"name\": \"Av", Finish::Length)
    );
}

#[tokio::test]
async fn stream_errors() {
    let fake = FakeAnthropic::start().await.unwrap();
    // An error event after a 200.
    let mut with_error = anthropic::stream_text(&["par"], "end_turn");
    with_error.truncate(4);
    with_error.push(anthropic::event(
        "error",
        &anthropic::error_body("overloaded_error", "Overloaded"),
    ));
    fake.push(Reply::sse(with_error));
    // No message_stop.
    let mut truncated = anthropic::stream_text(&["par"], "end_turn");
    truncated.truncate(5);
    fake.push(Reply::sse(truncated));
    // The connection drops mid-stream.
    fake.push(
        Reply::sse(anthropic::stream_text(&["a", "b"], "end_turn"))
            .with_chunk_delay(Duration::from_millis(20))
            .dropping_after(3),
    );
    // Garbage in an event.
    fake.push(Reply::sse(vec![
        "event: message_start\ndata: {oops\n\n".into()
    ]));
    let p = provider(&fake, None, true);
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(
        m.contains("the stream carried an error: Overloaded (overloaded_error)"),
        "{m}"
    );
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(
        m.contains("ended without `message_stop` after 5 events"),
        "{m}"
    );
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(m.contains("broke mid-answer"), "{m}");
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(
        m.contains("stream event 1 is not valid") && m.contains("oops"),
        "{m}"
    );
}
