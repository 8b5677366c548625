//! The OpenAI-compatible provider over real HTTP against `aivm-fakes`: answers (plain,
//! structured, tool calls, streamed), errors (HTTP statuses, garbage, truncated and broken
//! streams, an `error` event in a 200 stream), and the wire shape of what it sends.

use std::time::Duration;

use aivm_fakes::{openai, FakeOpenAi, Reply};
use aivm_vm::host::llm::{
    Finish, Message, ModelRequest, OutputSchema, Provider, ProviderError, Role, ToolCall, ToolSpec,
    Usage,
};
use aivm_vm::host::providers::openai::OpenAiProvider;
use aivm_vm::host::providers::HttpSettings;
use aivm_vm::host::providers::{ApiKey, Limits};
use serde_json::json;

fn provider(fake: &FakeOpenAi, key: Option<&str>, stream: bool) -> OpenAiProvider {
    OpenAiProvider::new(HttpSettings {
        name: "openai:test".into(),
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
    ModelRequest::new("gpt-test", messages)
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": false}),
        mcp: None,
    }
}

fn protocol_message(e: ProviderError) -> String {
    match e {
        ProviderError::Protocol { provider, message } => {
            assert_eq!(provider, "openai:test");
            message
        }
        other => panic!("expected a Protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_answer_and_request_shape() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &openai::completion("Hello there.", "stop"),
    ));
    let p = provider(&fake, None, false);
    let mut req = ask("Say hello");
    req.temperature = Some(0.0);
    req.max_tokens = Some(50);
    req.stop = vec!["\n\n".into()];
    let got = p.call(&req).await.unwrap();
    assert_eq!(got.content, "Hello there.");
    assert_eq!(got.finish, Finish::Stop);
    assert!(got.tool_calls.is_empty());
    assert_eq!(
        got.usage,
        Usage {
            input_tokens: 26,
            output_tokens: 14
        }
    );
    // The server's alias, not the id asked for.
    assert_eq!(got.model, "smollm2");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), None, "no key, no Authorization");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "model": "gpt-test",
            "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}],
            "temperature": 0.0,
            "max_tokens": 50,
            "stop": ["\n\n"],
        })
    );
}

#[tokio::test]
async fn key_goes_in_a_bearer_header() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(200, &openai::completion("ok", "stop")));
    let p = provider(&fake, Some("sk-test-123"), false);
    p.call(&ask("x")).await.unwrap();
    assert_eq!(
        fake.requests()[0].header("Authorization"),
        Some("Bearer sk-test-123")
    );
    assert!(
        !format!("{p:?}").contains("sk-test-123"),
        "Debug never shows the key"
    );
}

#[tokio::test]
async fn structured_output_asks_for_a_strict_json_schema() {
    let fake = FakeOpenAi::start().await.unwrap();
    let answer = "{\n    \"name\": \"Ava\",\n    \"age\": 25\n}";
    fake.push(Reply::json(200, &openai::completion(answer, "stop")));
    let p = provider(&fake, None, false);
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name", "age"], "additionalProperties": false});
    let mut req = ask("Make a person");
    req.output = Some(OutputSchema {
        name: "Person".into(),
        schema: schema.clone(),
    });
    let got = p.call(&req).await.unwrap();
    assert_eq!(got.content, answer);
    let sent = fake.requests()[0].json();
    assert_eq!(
        sent["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "Person", "schema": schema, "strict": true}})
    );
}

#[tokio::test]
async fn a_list_answer_is_wrapped_on_the_wire_and_unwrapped_for_the_program() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &openai::completion(r#"{"answer": ["a", "b"]}"#, "stop"),
    ));
    let p = provider(&fake, None, false);
    let items = json!({"type": "array", "items": {"type": "string"}});
    let mut req = ask("List two letters");
    req.output = Some(OutputSchema {
        name: "Letters".into(),
        schema: items.clone(),
    });
    let got = p.call(&req).await.unwrap();
    assert_eq!(got.content, r#"["a","b"]"#);
    let sent = fake.requests()[0].json();
    assert_eq!(
        sent["response_format"]["json_schema"]["schema"],
        json!({"type": "object", "properties": {"answer": items}, "required": ["answer"],
               "additionalProperties": false})
    );
    assert_eq!(
        sent["response_format"]["json_schema"]["strict"],
        json!(true)
    );
}

#[tokio::test]
async fn an_open_map_answer_is_not_asked_for_in_strict_mode() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(200, &openai::completion(r#"{"x": 1}"#, "stop")));
    let p = provider(&fake, None, false);
    let mut req = ask("Count");
    req.output = Some(OutputSchema {
        name: "Counts".into(),
        schema: json!({"type": "object", "additionalProperties": {"type": "integer"}}),
    });
    assert_eq!(p.call(&req).await.unwrap().content, r#"{"x": 1}"#);
    let sent = fake.requests()[0].json();
    assert_eq!(
        sent["response_format"]["json_schema"]["strict"],
        json!(false)
    );
}

#[tokio::test]
async fn tool_calls_single_and_parallel_and_the_round_trip() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &openai::tool_calls(&[(
            "8G4JVTSNHRgHEt39VVE8lPYT7bRDmtXR",
            "get_weather",
            "{\"city\": \"Paris\"}",
        )]),
    ));
    fake.push(Reply::json(
        200,
        &openai::tool_calls(&[
            ("call_a", "get_weather", "{\"city\":\"Oslo\"}"),
            ("call_b", "get_weather", "{\"city\":\"Rome\"}"),
        ]),
    ));
    let p = provider(&fake, None, false);
    let mut req = ask("Weather in Paris?");
    req.tools = vec![weather_tool()];
    let one = p.call(&req).await.unwrap();
    assert_eq!(one.finish, Finish::ToolCalls);
    assert_eq!(one.content, "");
    assert_eq!(
        one.tool_calls,
        vec![ToolCall {
            id: "8G4JVTSNHRgHEt39VVE8lPYT7bRDmtXR".into(),
            name: "get_weather".into(),
            arguments: "{\"city\": \"Paris\"}".into(),
        }]
    );

    // Feed the call and its result back, as the agent loop does.
    req.messages.push(Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: one.tool_calls.clone(),
        tool_call_id: None,
        name: None,
    });
    req.messages.push(Message {
        role: Role::Tool,
        content: "18 C, sunny".into(),
        tool_calls: vec![],
        tool_call_id: Some(one.tool_calls[0].id.clone()),
        name: Some("get_weather".into()),
    });
    let two = p.call(&req).await.unwrap();
    assert_eq!(
        two.tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.arguments.as_str()))
            .collect::<Vec<_>>(),
        [
            ("call_a", "{\"city\":\"Oslo\"}"),
            ("call_b", "{\"city\":\"Rome\"}")
        ]
    );

    let sent = fake.requests()[1].json();
    assert_eq!(
        sent["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                "parameters": weather_tool().parameters}}])
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "assistant", "content": "", "tool_calls": [{"id": "8G4JVTSNHRgHEt39VVE8lPYT7bRDmtXR",
               "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]})
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "tool", "tool_call_id": "8G4JVTSNHRgHEt39VVE8lPYT7bRDmtXR", "content": "18 C, sunny"})
    );
    let roles: Vec<_> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            json!("system"),
            json!("user"),
            json!("assistant"),
            json!("tool")
        ]
    );
}

#[tokio::test]
async fn http_errors_are_typed_with_the_servers_message() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(
        400,
        &openai::error_body(
            400,
            "Invalid tool_choice: sometimes",
            "invalid_request_error",
        ),
    ));
    fake.push(Reply::json(401, &json!({"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}})));
    fake.push(
        Reply::json(
            429,
            &openai::error_body(429, "Rate limit reached", "rate_limit_error"),
        )
        .with_header("Retry-After", "7"),
    );
    fake.push(Reply::json(
        500,
        &openai::error_body(
            500,
            "The model produced output that does not match the expected peg-native format",
            "server_error",
        ),
    ));
    fake.push(Reply::raw(502, "text/plain", "Bad Gateway"));
    let p = provider(&fake, None, false);
    let mut seen = Vec::new();
    for _ in 0..5 {
        match p.call(&ask("x")).await.unwrap_err() {
            e @ ProviderError::Http { .. } => seen.push(e),
            other => panic!("expected Http, got {other:?}"),
        }
    }
    let statuses: Vec<u16> = seen
        .iter()
        .map(|e| match e {
            ProviderError::Http { status, .. } => *status,
            _ => 0,
        })
        .collect();
    assert_eq!(statuses, [400, 401, 429, 500, 502]);
    assert_eq!(
        seen.iter().map(|e| e.is_retryable()).collect::<Vec<_>>(),
        [false, false, true, true, true]
    );
    assert_eq!(
        seen[0].to_string(),
        "openai:test answered HTTP 400: Invalid tool_choice: sometimes (invalid_request_error)"
    );
    assert!(seen[1].to_string().contains("Invalid API Key"));
    assert!(
        matches!(&seen[2], ProviderError::Http { retry_after: Some(d), .. } if *d == Duration::from_secs(7))
    );
    assert!(matches!(
        &seen[3],
        ProviderError::Http {
            retry_after: None,
            ..
        }
    ));
    assert!(seen[3].to_string().contains("peg-native"));
    assert!(seen[4].to_string().contains("Bad Gateway"));
}

#[tokio::test]
async fn garbage_answers_are_protocol_errors_with_an_excerpt() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::raw(
        200,
        "application/json",
        "<html><body>proxy login</body></html>",
    ));
    fake.push(Reply::json(200, &json!({"choices": []})));
    fake.push(Reply::json(200, &json!({"choices": "many"})));
    let p = provider(&fake, None, false);
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(
        m.contains("not valid") && m.contains("<html><body>proxy login"),
        "{m}"
    );
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(m.contains("no choices"), "{m}");
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(m.contains("chat completion") && m.contains("many"), "{m}");
}

#[tokio::test]
async fn refused_connection_is_a_retryable_connect_error() {
    let fake = FakeOpenAi::start().await.unwrap();
    let base = fake.base_url();
    drop(fake);
    // Give the aborted server task a moment to release the port.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let p = OpenAiProvider::new(HttpSettings {
        name: "openai:test".into(),
        base_url: base,
        api_key: None,
        stream: false,
        limits: Limits::default(),
    })
    .unwrap();
    let e = p.call(&ask("x")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Connect { .. }), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn slow_server_is_a_timeout() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(
        Reply::json(200, &openai::completion("late", "stop")).with_delay(Duration::from_secs(3)),
    );
    let p = OpenAiProvider::new(HttpSettings {
        name: "openai:test".into(),
        base_url: fake.base_url(),
        api_key: None,
        stream: false,
        limits: Limits {
            timeout: Duration::from_millis(200),
            ..Limits::default()
        },
    })
    .unwrap();
    let e = p.call(&ask("x")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { .. }), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &openai::completion(&"x".repeat(5000), "stop"),
    ));
    let p = OpenAiProvider::new(HttpSettings {
        name: "openai:test".into(),
        base_url: fake.base_url(),
        api_key: None,
        stream: false,
        limits: Limits {
            max_body_bytes: 1024,
            ..Limits::default()
        },
    })
    .unwrap();
    let m = protocol_message(p.call(&ask("x")).await.unwrap_err());
    assert!(m.contains("larger than 1024 bytes"), "{m}");
}

#[tokio::test]
async fn truncated_json_at_length_is_an_answer_not_an_error() {
    // The agent loop decides what to do with it (validation fails, it retries).
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(
        200,
        &openai::completion("{\n    \"name\": \"Av", "length"),
    ));
    let p = provider(&fake, None, false);
    let got = p.call(&ask("x")).await.unwrap();
    assert_eq!(
        (got.content.as_str(), got.finish),
        ("{\n    \"name\": \"Av", Finish::Length)
    );
}

#[tokio::test]
async fn streamed_text_is_assembled_with_usage() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(
        Reply::sse(openai::stream_text(&["Hel", "lo", ", wörld"], "stop"))
            .with_chunk_delay(Duration::from_millis(2)),
    );
    let p = provider(&fake, None, true);
    let got = p.call(&ask("x")).await.unwrap();
    assert_eq!(got.content, "Hello, wörld");
    assert_eq!(got.finish, Finish::Stop);
    assert_eq!(
        got.usage,
        Usage {
            input_tokens: 26,
            output_tokens: 14
        }
    );
    assert_eq!(got.model, "smollm2");
    let r = &fake.requests()[0];
    assert_eq!(r.json()["stream"], json!(true));
    assert_eq!(r.json()["stream_options"], json!({"include_usage": true}));
    assert_eq!(r.header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn events_split_across_tcp_chunks_still_assemble() {
    let fake = FakeOpenAi::start().await.unwrap();
    let whole: String = openai::stream_text(&["a", "b", "c"], "stop").concat();
    // Seven-byte pieces cut events, lines and JSON at arbitrary places.
    let pieces: Vec<String> = whole
        .as_bytes()
        .chunks(7)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    fake.push(Reply::sse(pieces));
    let got = provider(&fake, None, true).call(&ask("x")).await.unwrap();
    assert_eq!(got.content, "abc");
}

#[tokio::test]
async fn streamed_tool_calls_single_and_parallel() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::sse(openai::stream_tool_call(
        "IBKUPJlSTxnbVs52p4NF9eJ4WgOMhLty",
        "get_weather",
        &["{", "\"", "city", "\":", " \"", "Paris", "\"", "}"],
    )));
    // Two calls whose deltas interleave, told apart by `index`.
    let call = |index: u64, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut c = json!({"index": index, "function": {"arguments": args}});
        if let Some(id) = id {
            c["id"] = json!(id);
            c["type"] = json!("function");
        }
        if let Some(name) = name {
            c["function"]["name"] = json!(name);
        }
        openai::data(&openai::chunk(json!({"tool_calls": [c]}), None))
    };
    fake.push(Reply::sse(vec![
        openai::data(&openai::chunk(
            json!({"role": "assistant", "content": null}),
            None,
        )),
        call(0, Some("call_x"), Some("get_weather"), "{\"city\":"),
        call(1, Some("call_y"), Some("get_weather"), ""),
        call(1, None, None, "{\"city\":\"Rome\"}"),
        call(0, None, None, "\"Oslo\"}"),
        openai::data(&openai::chunk(json!({}), Some("tool_calls"))),
        openai::done(),
    ]));
    let p = provider(&fake, None, true);
    let mut req = ask("weather");
    req.tools = vec![weather_tool()];
    let one = p.call(&req).await.unwrap();
    assert_eq!(one.finish, Finish::ToolCalls);
    assert_eq!(
        one.tool_calls,
        vec![ToolCall {
            id: "IBKUPJlSTxnbVs52p4NF9eJ4WgOMhLty".into(),
            name: "get_weather".into(),
            arguments: "{\"city\": \"Paris\"}".into()
        }]
    );
    let two = p.call(&req).await.unwrap();
    let got: Vec<_> = two
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("call_x", "get_weather", "{\"city\":\"Oslo\"}"),
            ("call_y", "get_weather", "{\"city\":\"Rome\"}")
        ]
    );
    // No usage chunk in that stream: estimated rather than zero.
    assert!(two.usage.output_tokens > 0);
}

#[tokio::test]
async fn streamed_truncated_json_at_length() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::sse(openai::stream_text(
        &["{\"tags\": [\"a\", ", "\"b"],
        "length",
    )));
    let got = provider(&fake, None, true).call(&ask("x")).await.unwrap();
    assert_eq!(
        (got.content.as_str(), got.finish),
        ("{\"tags\": [\"a\", \"b", Finish::Length)
    );
}

#[tokio::test]
async fn error_event_inside_a_200_stream() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::sse(vec![
        openai::data(&openai::chunk(
            json!({"role": "assistant", "content": null}),
            None,
        )),
        openai::data(&openai::error_body(
            500,
            "The model produced output that does not match the expected peg-native format",
            "server_error",
        )),
    ]));
    let m = protocol_message(
        provider(&fake, None, true)
            .call(&ask("x"))
            .await
            .unwrap_err(),
    );
    assert!(
        m.contains("the stream carried an error")
            && m.contains("peg-native")
            && m.contains("code 500"),
        "{m}"
    );
}

#[tokio::test]
async fn stream_without_done_is_truncated() {
    let fake = FakeOpenAi::start().await.unwrap();
    let mut chunks = openai::stream_text(&["partial"], "stop");
    chunks.truncate(2);
    fake.push(Reply::sse(chunks));
    let m = protocol_message(
        provider(&fake, None, true)
            .call(&ask("x"))
            .await
            .unwrap_err(),
    );
    assert!(
        m.contains("ended without `data: [DONE]` after 2 events"),
        "{m}"
    );
}

#[tokio::test]
async fn connection_closed_mid_stream() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(
        Reply::sse(openai::stream_text(&["a", "b", "c"], "stop"))
            .with_chunk_delay(Duration::from_millis(20))
            .dropping_after(2),
    );
    let m = protocol_message(
        provider(&fake, None, true)
            .call(&ask("x"))
            .await
            .unwrap_err(),
    );
    assert!(m.contains("broke mid-answer"), "{m}");
}

#[tokio::test]
async fn invalid_json_in_a_stream_event() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::sse(vec![
        "data: {\"choices\": [{\"delta\": \n\n".into(),
        openai::done(),
    ]));
    let m = protocol_message(
        provider(&fake, None, true)
            .call(&ask("x"))
            .await
            .unwrap_err(),
    );
    assert!(m.contains("stream event 1 is not valid"), "{m}");
}

#[tokio::test]
async fn lenient_chunks_from_other_servers() {
    // mistral.rs repeats the role and sends `tool_calls: null`, `usage: null`; some servers
    // end with `data: [DONE]` and no blank line; comments and pings are ignored.
    let fake = FakeOpenAi::start().await.unwrap();
    let c = |content: &str, finish: Option<&str>| {
        let mut v = openai::chunk(
            json!({"role": "assistant", "content": content, "tool_calls": null}),
            finish,
        );
        v["usage"] = json!(null);
        openai::data(&v)
    };
    fake.push(Reply::sse(vec![
        ": keep-alive\n\n".into(),
        c("x", None),
        c("y", Some("stop")),
        "data: [DONE]".into(),
    ]));
    let got = provider(&fake, None, true).call(&ask("x")).await.unwrap();
    assert_eq!(got.content, "xy");
}

#[tokio::test]
async fn a_server_that_ignores_stream_answers_with_json() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(200, &openai::completion("whole", "stop")));
    let got = provider(&fake, None, true).call(&ask("x")).await.unwrap();
    assert_eq!(got.content, "whole");
}

#[tokio::test]
async fn streamed_http_errors_are_plain_http_errors() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.push(Reply::json(
        400,
        &json!({"error": {"code": 400, "message": "request (20031 tokens) exceeds the available context size (2048 tokens), try increasing it",
                          "type": "exceed_context_size_error", "n_prompt_tokens": 20031, "n_ctx": 2048}}),
    ));
    let e = provider(&fake, None, true)
        .call(&ask("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Http { status: 400, message, .. } if message.contains("exceeds the available context")),
        "{e:?}"
    );
}
