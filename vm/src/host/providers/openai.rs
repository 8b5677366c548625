//! The OpenAI-compatible chat-completions provider (OpenAI, vLLM, llama.cpp's server, Ollama,
//! LM Studio, OpenRouter): maps a [`ModelRequest`] to `POST {base}/chat/completions`, plain or
//! streamed (SSE), and the answer back, tolerating the variations real servers show (null or
//! empty content, ids without `call_`, extra fields, a usage chunk with no choices, an `error`
//! object inside a 200 stream). spec/providers.md §OpenAI has the mapping.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::sse::{read_events, Flow, SseEvent};
use super::{
    check_status, estimate_usage, http_client, invalid_json, read_body, send, HttpSettings, Limits,
};
use crate::host::llm::{
    BoxFuture, Finish, ModelRequest, ModelResponse, Provider, ProviderError, Role, ToolCall, Usage,
};

/// OpenAI's own endpoint; a local server is e.g. `http://127.0.0.1:8080/v1`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// A client of one OpenAI-compatible endpoint; cheap to share and safe to call concurrently
/// (the HTTP connection pool is shared).
#[derive(Debug)]
pub struct OpenAiProvider {
    settings: HttpSettings,
    endpoint: reqwest::Url,
    client: reqwest::Client,
}

impl OpenAiProvider {
    pub fn new(settings: HttpSettings) -> Result<Self, ProviderError> {
        let client = http_client(&settings.name, &settings.limits)?;
        let endpoint = super::endpoint(&settings.name, &settings.base_url, "/chat/completions")?;
        Ok(OpenAiProvider {
            settings,
            endpoint,
            client,
        })
    }

    async fn turn(&self, req: &ModelRequest) -> Result<ModelResponse, ProviderError> {
        let name = &self.settings.name;
        let limits = &self.settings.limits;
        let body = wire_request(req, self.settings.stream);
        let mut http = self
            .client
            .post(self.endpoint.clone())
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = &self.settings.api_key {
            http = http.bearer_auth(key.expose());
        }
        if self.settings.stream {
            http = http.header("accept", "text/event-stream");
        }
        let resp = check_status(name, limits, send(name, limits, http).await?).await?;
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        // A server that ignores `stream` answers with one JSON body; take it as it is.
        if self.settings.stream && is_sse {
            read_stream(name, limits, req, resp).await
        } else {
            let body = read_body(name, limits, resp, limits.max_body_bytes).await?;
            parse_completion(name, req, &body)
        }
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn call<'a>(
        &'a self,
        req: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ProviderError>> {
        Box::pin(async move { Ok(super::unwrap_output(req, self.turn(req).await?)) })
    }
}

/// The JSON body of a chat-completions request.
fn wire_request(req: &ModelRequest, stream: bool) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| match m.role {
            Role::System => json!({"role": "system", "content": m.content}),
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant if m.tool_calls.is_empty() => {
                json!({"role": "assistant", "content": m.content})
            }
            // Content "" rather than null: every server tried accepts "", one rejects null.
            Role::Assistant => json!({
                "role": "assistant",
                "content": m.content,
                "tool_calls": m.tool_calls.iter().map(|c| json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })).collect::<Vec<_>>(),
            }),
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": m.tool_call_id.as_deref().unwrap_or(""),
                "content": m.content,
            }),
        })
        .collect();
    let mut body = json!({"model": req.model, "messages": messages});
    let obj = body
        .as_object_mut()
        .expect("json! of an object literal is an object");
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
        obj.insert("tools".into(), Value::Array(tools));
    }
    if let Some(out) = &req.output {
        let wire = super::wire_output(out);
        obj.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {
                "name": out.name, "schema": wire.schema, "strict": wire.strict,
            }}),
        );
    }
    if let Some(t) = req.temperature {
        obj.insert("temperature".into(), json!(t));
    }
    if let Some(n) = req.max_tokens {
        obj.insert("max_tokens".into(), json!(n));
    }
    if !req.stop.is_empty() {
        obj.insert("stop".into(), json!(req.stop));
    }
    if stream {
        obj.insert("stream".into(), json!(true));
        obj.insert("stream_options".into(), json!({"include_usage": true}));
    }
    body
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    /// A string of JSON (the standard), or an object (some servers).
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

fn protocol(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::Protocol {
        provider: provider.to_string(),
        message: message.into(),
    }
}

fn arguments_text(v: Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

fn finish_of(reason: Option<&str>, has_calls: bool) -> Finish {
    match reason {
        Some("length") => Finish::Length,
        _ if has_calls => Finish::ToolCalls,
        // `stop`, `tool_calls` without calls, `content_filter`, or none at all.
        _ => Finish::Stop,
    }
}

fn usage_or_estimate(
    usage: Option<WireUsage>,
    req: &ModelRequest,
    content: &str,
    calls: &[ToolCall],
) -> Usage {
    match usage {
        Some(WireUsage {
            prompt_tokens: Some(i),
            completion_tokens: Some(o),
        }) => Usage {
            input_tokens: i,
            output_tokens: o,
        },
        _ => estimate_usage(req, content, calls),
    }
}

/// The error object a 200 body or a stream event may carry instead of an answer.
fn embedded_error(provider: &str, v: &Value, where_: &str) -> Option<ProviderError> {
    let err = v.get("error").filter(|e| !e.is_null())?;
    let message = super::json_error_message(v).unwrap_or_else(|| err.to_string());
    let code = err
        .get("code")
        .filter(|c| !c.is_null())
        .map(|c| format!(" (code {c})"))
        .unwrap_or_default();
    Some(protocol(provider, format!("{where_}: {message}{code}")))
}

fn parse_completion(
    provider: &str,
    req: &ModelRequest,
    body: &[u8],
) -> Result<ModelResponse, ProviderError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| invalid_json(provider, "the answer", &e, body))?;
    if let Some(e) = embedded_error(provider, &v, "the answer is an error") {
        return Err(e);
    }
    let c: Completion = serde_json::from_value(v)
        .map_err(|e| invalid_json(provider, "the chat completion", &e, body))?;
    let Some(choice) = c.choices.into_iter().next() else {
        return Err(protocol(provider, "the answer has no choices"));
    };
    let Some(msg) = choice.message else {
        return Err(protocol(provider, "the first choice has no message"));
    };
    let mut calls = Vec::new();
    for (i, call) in msg.tool_calls.unwrap_or_default().into_iter().enumerate() {
        let f = call.function.unwrap_or(WireFunction {
            name: None,
            arguments: None,
        });
        let name = f
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| protocol(provider, format!("tool call {i} has no function name")))?;
        calls.push(ToolCall {
            id: call
                .id
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("call_{i}")),
            name,
            arguments: arguments_text(f.arguments),
        });
    }
    // A refusal (structured outputs) stands in for the content, so the program sees why.
    let content = msg.content.or(msg.refusal).unwrap_or_default();
    Ok(ModelResponse {
        finish: finish_of(choice.finish_reason.as_deref(), !calls.is_empty()),
        usage: usage_or_estimate(c.usage, req, &content, &calls),
        model: c.model.unwrap_or_else(|| req.model.clone()),
        content,
        tool_calls: calls,
    })
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The answer assembled from stream chunks so far.
#[derive(Default)]
struct Assembly {
    content: String,
    refusal: String,
    calls: BTreeMap<u64, PartialCall>,
    finish: Option<String>,
    usage: Option<WireUsage>,
    model: Option<String>,
    events: usize,
}

impl Assembly {
    fn chunk(&mut self, provider: &str, ev: SseEvent) -> Result<Flow, ProviderError> {
        self.events += 1;
        if ev.data.trim() == "[DONE]" {
            return Ok(Flow::Done);
        }
        let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
            invalid_json(
                provider,
                &format!("stream event {}", self.events),
                &e,
                ev.data.as_bytes(),
            )
        })?;
        if let Some(e) = embedded_error(provider, &v, "the stream carried an error") {
            return Err(e);
        }
        let chunk: Chunk = serde_json::from_value(v).map_err(|e| {
            invalid_json(
                provider,
                &format!("stream chunk {}", self.events),
                &e,
                ev.data.as_bytes(),
            )
        })?;
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for choice in chunk.choices.unwrap_or_default() {
            // One answer was asked for (n = 1); other choices would be a server's oddity.
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if choice.finish_reason.is_some() {
                self.finish = choice.finish_reason;
            }
            let Some(delta) = choice.delta else { continue };
            if let Some(text) = delta.content {
                self.content.push_str(&text);
            }
            if let Some(text) = delta.refusal {
                self.refusal.push_str(&text);
            }
            for (pos, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let slot = self
                    .calls
                    .entry(call.index.unwrap_or(pos as u64))
                    .or_default();
                if let Some(id) = call.id.filter(|s| !s.is_empty()) {
                    if slot.id.is_empty() {
                        slot.id = id;
                    }
                }
                if let Some(f) = call.function {
                    // The name comes whole in the first delta; a server that repeats it in
                    // later deltas must not double it.
                    if let Some(name) = f.name.filter(|n| !n.is_empty()) {
                        if slot.name.is_empty() {
                            slot.name = name;
                        } else if slot.name != name {
                            slot.name.push_str(&name);
                        }
                    }
                    slot.arguments.push_str(&arguments_text(f.arguments));
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn finish(self, provider: &str, req: &ModelRequest) -> Result<ModelResponse, ProviderError> {
        let mut calls = Vec::new();
        for (i, (index, c)) in self.calls.into_iter().enumerate() {
            if c.name.is_empty() {
                return Err(protocol(
                    provider,
                    format!("streamed tool call {index} has no function name"),
                ));
            }
            calls.push(ToolCall {
                id: if c.id.is_empty() {
                    format!("call_{i}")
                } else {
                    c.id
                },
                name: c.name,
                arguments: c.arguments,
            });
        }
        let content = if self.content.is_empty() {
            self.refusal
        } else {
            self.content
        };
        Ok(ModelResponse {
            finish: finish_of(self.finish.as_deref(), !calls.is_empty()),
            usage: usage_or_estimate(self.usage, req, &content, &calls),
            model: self.model.unwrap_or_else(|| req.model.clone()),
            content,
            tool_calls: calls,
        })
    }
}

async fn read_stream(
    provider: &str,
    limits: &Limits,
    req: &ModelRequest,
    resp: reqwest::Response,
) -> Result<ModelResponse, ProviderError> {
    let mut asm = Assembly::default();
    let done = read_events(provider, resp, limits, |ev| asm.chunk(provider, ev)).await?;
    if !done {
        return Err(protocol(
            provider,
            format!(
                "the stream ended without `data: [DONE]` after {} events (finish_reason {})",
                asm.events,
                asm.finish.as_deref().unwrap_or("not sent")
            ),
        ));
    }
    asm.finish(provider, req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::llm::{Message, OutputSchema, ToolSpec};

    fn req() -> ModelRequest {
        ModelRequest {
            model: "m".into(),
            messages: vec![
                Message::text(Role::System, "be brief"),
                Message {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }],
                    tool_call_id: None,
                    name: None,
                },
                Message {
                    role: Role::Tool,
                    content: "42".into(),
                    tool_calls: vec![],
                    tool_call_id: Some("c1".into()),
                    name: Some("f".into()),
                },
            ],
            tools: vec![ToolSpec {
                name: "f".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
                mcp: None,
            }],
            output: Some(OutputSchema {
                name: "T".into(),
                schema: json!({"type": "object"}),
            }),
            temperature: Some(0.5),
            max_tokens: Some(10),
            stop: vec!["END".into()],
        }
    }

    #[test]
    fn wire_request_shape() {
        let body = wire_request(&req(), true);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "42"},
                ],
                "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "T", "schema": {"type": "object"}, "strict": false}},
                "temperature": 0.5,
                "max_tokens": 10,
                "stop": ["END"],
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
    }

    #[test]
    fn completion_variants() {
        let r = req();
        let got = parse_completion(
            "p",
            &r,
            br#"{"choices":[{"finish_reason":"tool_calls","message":{"content":"","tool_calls":[
                {"type":"function","function":{"name":"f","arguments":{"a":1}}},
                {"id":"8G4J","function":{"name":"g","arguments":"{}"}}]}}],
              "model":"smollm2","timings":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(got.finish, Finish::ToolCalls);
        assert_eq!(got.tool_calls[0].id, "call_0");
        assert_eq!(got.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!(got.tool_calls[1].id, "8G4J");
        assert_eq!(got.model, "smollm2");
        // No usage reported: estimated, never zero output.
        assert!(got.usage.input_tokens > 0 && got.usage.output_tokens > 0);

        let refused = parse_completion(
            "p",
            &r,
            br#"{"choices":[{"finish_reason":"stop","message":{"content":null,"refusal":"no"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        )
        .unwrap();
        assert_eq!(refused.content, "no");
        assert_eq!(
            refused.usage,
            Usage {
                input_tokens: 3,
                output_tokens: 1
            }
        );
        assert_eq!(refused.model, "m");

        for (body, want) in [
            (&br#"{"choices":[]}"#[..], "no choices"),
            (
                br#"{"error":{"message":"boom","code":500}}"#,
                "boom (code 500)",
            ),
            (
                br#"{"choices":[{"message":{"tool_calls":[{"function":{}}]}}]}"#,
                "no function name",
            ),
            (b"<html>", "not valid"),
        ] {
            let e = parse_completion("p", &r, body).unwrap_err();
            assert!(
                matches!(&e, ProviderError::Protocol { message, .. } if message.contains(want)),
                "{e}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        #[test]
        fn any_answer_parses_or_fails_typed(body in super::super::hostile::answer()) {
            // The property is that this returns at all: a value or a ProviderError.
            let _ = parse_completion("fuzz", &req(), &body);
        }
    }
}
