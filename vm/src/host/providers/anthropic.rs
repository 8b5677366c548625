//! The Anthropic Messages provider: maps a [`ModelRequest`] to `POST {base}/v1/messages`
//! (system prompt apart, tool calls and results as content blocks, structured output through
//! one forced tool whose input is the answer), plain or streamed (SSE), and the answer back.
//! spec/providers.md §Anthropic has the mapping.

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

/// Anthropic's own endpoint root (requests go to `{base}/v1/messages`).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the API; this is sent when a request sets none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A client of one Anthropic Messages endpoint; cheap to share, safe to call concurrently.
#[derive(Debug)]
pub struct AnthropicProvider {
    settings: HttpSettings,
    endpoint: reqwest::Url,
    client: reqwest::Client,
}

impl AnthropicProvider {
    pub fn new(settings: HttpSettings) -> Result<Self, ProviderError> {
        let client = http_client(&settings.name, &settings.limits)?;
        let endpoint = super::endpoint(&settings.name, &settings.base_url, "/v1/messages")?;
        Ok(AnthropicProvider {
            settings,
            endpoint,
            client,
        })
    }

    async fn turn(&self, req: &ModelRequest) -> Result<ModelResponse, ProviderError> {
        let name = &self.settings.name;
        let limits = &self.settings.limits;
        let (body, output_tool) = wire_request(req, self.settings.stream);
        let mut http = self
            .client
            .post(self.endpoint.clone())
            .header("content-type", "application/json")
            .header("anthropic-version", API_VERSION)
            .body(body.to_string());
        if let Some(key) = &self.settings.api_key {
            http = http.header("x-api-key", key.expose());
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
        let out = output_tool.as_deref();
        if self.settings.stream && is_sse {
            read_stream(name, limits, req, out, resp).await
        } else {
            let body = read_body(name, limits, resp, limits.max_body_bytes).await?;
            parse_message(name, req, out, &body)
        }
    }
}

impl Provider for AnthropicProvider {
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

/// The tool input of a call, as an object: the API requires one. Arguments that are not a
/// JSON object (the model wrote garbage, and the agent loop fed the error back) are sent as
/// an empty object; the error message that follows says what was wrong.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// The JSON body of a Messages request, and the name of the output tool when structured
/// output is asked for.
fn wire_request(req: &ModelRequest, stream: bool) -> (Value, Option<String>) {
    let system: Vec<&str> = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    // The API wants alternating turns: consecutive messages of one side (several tool
    // results, or a tool result then a user remark) are merged into one message.
    let mut messages: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::System => continue,
            Role::User => ("user", text_block(&m.content)),
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.as_deref().unwrap_or(""),
                    "content": m.content,
                })],
            ),
            Role::Assistant => {
                let mut blocks = text_block(&m.content);
                blocks.extend(m.tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(&c.arguments)})
                }));
                ("assistant", blocks)
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    let obj = body
        .as_object_mut()
        .expect("json! of an object literal is an object");
    if !system.is_empty() {
        obj.insert("system".into(), json!(system.join("\n\n")));
    }
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(
            |t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}),
        )
        .collect();
    let mut output_tool = None;
    if let Some(out) = &req.output {
        // The answer is the input of a tool the model must call. With other tools offered
        // too, the model must call one of them or this one (`any`); alone, this one.
        let mut name = out.name.clone();
        while req.tools.iter().any(|t| t.name == name) {
            name.push_str("_answer");
        }
        tools.push(json!({
            "name": name,
            "description": "Give the final answer: its input is the answer, as the schema says.",
            "input_schema": super::wire_output(out).schema,
        }));
        let choice = if req.tools.is_empty() {
            json!({"type": "tool", "name": name})
        } else {
            json!({"type": "any"})
        };
        obj.insert("tool_choice".into(), choice);
        output_tool = Some(name);
    }
    if !tools.is_empty() {
        obj.insert("tools".into(), Value::Array(tools));
    }
    if let Some(t) = req.temperature {
        obj.insert("temperature".into(), json!(t));
    }
    if !req.stop.is_empty() {
        obj.insert("stop_sequences".into(), json!(req.stop));
    }
    if stream {
        obj.insert("stream".into(), json!(true));
    }
    (body, output_tool)
}

/// A text block, or none for empty text (the API rejects empty text blocks).
fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

fn protocol(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::Protocol {
        provider: provider.to_string(),
        message: message.into(),
    }
}

/// What the answer's blocks say, whichever way they arrived.
struct Parts {
    text: String,
    /// (id, name, input JSON text)
    calls: Vec<(String, String, String)>,
    stop_reason: Option<String>,
}

fn finish_answer(
    provider: &str,
    req: &ModelRequest,
    output_tool: Option<&str>,
    parts: Parts,
    usage: Option<Usage>,
    model: Option<String>,
) -> Result<ModelResponse, ProviderError> {
    let mut content = parts.text;
    let mut answered = false;
    let mut calls = Vec::new();
    for (i, (id, name, input)) in parts.calls.into_iter().enumerate() {
        if name.is_empty() {
            return Err(protocol(
                provider,
                format!("tool_use block {i} has no name"),
            ));
        }
        if Some(name.as_str()) == output_tool {
            // The structured answer: its input is the content; text beside it is dropped.
            content = input;
            answered = true;
        } else {
            calls.push(ToolCall {
                id: if id.is_empty() {
                    format!("toolu_{i}")
                } else {
                    id
                },
                name,
                arguments: input,
            });
        }
    }
    // The output tool's answer is final: real calls beside it are dropped.
    let tool_calls = if answered { Vec::new() } else { calls };
    let finish = match parts.stop_reason.as_deref() {
        Some("max_tokens") => Finish::Length,
        _ if !tool_calls.is_empty() => Finish::ToolCalls,
        _ => Finish::Stop,
    };
    let usage = usage.unwrap_or_else(|| estimate_usage(req, &content, &tool_calls));
    Ok(ModelResponse {
        content,
        tool_calls,
        finish,
        usage,
        model: model.unwrap_or_else(|| req.model.clone()),
    })
}

fn usage_of(u: WireUsage) -> Option<Usage> {
    let input = u.input_tokens?
        + u.cache_creation_input_tokens.unwrap_or(0)
        + u.cache_read_input_tokens.unwrap_or(0);
    Some(Usage {
        input_tokens: input,
        output_tokens: u.output_tokens?,
    })
}

fn embedded_error(provider: &str, v: &Value, where_: &str) -> Option<ProviderError> {
    let is_error = v.get("type").and_then(Value::as_str) == Some("error")
        || v.get("error").is_some_and(|e| !e.is_null());
    if !is_error {
        return None;
    }
    let message = super::json_error_message(v).unwrap_or_else(|| v.to_string());
    Some(protocol(provider, format!("{where_}: {message}")))
}

fn parse_message(
    provider: &str,
    req: &ModelRequest,
    output_tool: Option<&str>,
    body: &[u8],
) -> Result<ModelResponse, ProviderError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| invalid_json(provider, "the answer", &e, body))?;
    if let Some(e) = embedded_error(provider, &v, "the answer is an error") {
        return Err(e);
    }
    let m: WireMessage =
        serde_json::from_value(v).map_err(|e| invalid_json(provider, "the message", &e, body))?;
    let mut parts = Parts {
        text: String::new(),
        calls: Vec::new(),
        stop_reason: m.stop_reason,
    };
    for b in m.content {
        match b.kind.as_str() {
            "text" => parts.text.push_str(b.text.as_deref().unwrap_or("")),
            "tool_use" => parts.calls.push((
                b.id.unwrap_or_default(),
                b.name.unwrap_or_default(),
                b.input.unwrap_or_else(|| json!({})).to_string(),
            )),
            // Thinking and other blocks are not part of the answer.
            _ => {}
        }
    }
    finish_answer(
        provider,
        req,
        output_tool,
        parts,
        m.usage.and_then(usage_of),
        m.model,
    )
}

#[derive(Default)]
struct StreamBlock {
    kind: String,
    text: String,
    id: String,
    name: String,
    /// `input_json_delta` pieces, or the start block's input when no delta came.
    json: String,
}

#[derive(Default)]
struct Assembly {
    blocks: BTreeMap<u64, StreamBlock>,
    model: Option<String>,
    stop_reason: Option<String>,
    usage: WireUsage,
    events: usize,
}

impl Assembly {
    fn event(&mut self, provider: &str, ev: SseEvent) -> Result<Flow, ProviderError> {
        self.events += 1;
        let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
            invalid_json(
                provider,
                &format!("stream event {}", self.events),
                &e,
                ev.data.as_bytes(),
            )
        })?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or("")
            .to_string();
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let bad = |what: &str| {
            protocol(
                provider,
                format!("stream event {} ({kind}): {what}", self.events),
            )
        };
        match kind.as_str() {
            "error" => {
                let message = super::json_error_message(&v).unwrap_or_else(|| v.to_string());
                return Err(protocol(
                    provider,
                    format!("the stream carried an error: {message}"),
                ));
            }
            "message_start" => {
                let msg = v.get("message").ok_or_else(|| bad("no message"))?;
                self.model = msg.get("model").and_then(Value::as_str).map(str::to_string);
                if let Some(u) = msg.get("usage") {
                    self.merge_usage(u);
                }
            }
            "content_block_start" => {
                let b = v
                    .get("content_block")
                    .ok_or_else(|| bad("no content_block"))?;
                let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let input = b
                    .get("input")
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                self.blocks.insert(
                    index,
                    StreamBlock {
                        kind: s("type"),
                        text: s("text"),
                        id: s("id"),
                        name: s("name"),
                        json: input.map(Value::to_string).unwrap_or_default(),
                    },
                );
            }
            "content_block_delta" => {
                let d = v.get("delta").ok_or_else(|| bad("no delta"))?;
                let block = self
                    .blocks
                    .get_mut(&index)
                    .ok_or_else(|| bad("a delta for a block that did not start"))?;
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => block
                        .text
                        .push_str(d.get("text").and_then(Value::as_str).unwrap_or("")),
                    Some("input_json_delta") => block
                        .json
                        .push_str(d.get("partial_json").and_then(Value::as_str).unwrap_or("")),
                    // thinking_delta, signature_delta, citations: not part of the answer.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                if let Some(u) = v.get("usage") {
                    self.merge_usage(u);
                }
            }
            "message_stop" => return Ok(Flow::Done),
            // ping, content_block_stop, and event types added later.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn merge_usage(&mut self, u: &Value) {
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        let usage = &mut self.usage;
        for (slot, key) in [
            (&mut usage.input_tokens, "input_tokens"),
            (&mut usage.output_tokens, "output_tokens"),
            (
                &mut usage.cache_creation_input_tokens,
                "cache_creation_input_tokens",
            ),
            (
                &mut usage.cache_read_input_tokens,
                "cache_read_input_tokens",
            ),
        ] {
            if let Some(n) = get(key) {
                *slot = Some(n);
            }
        }
    }
}

async fn read_stream(
    provider: &str,
    limits: &Limits,
    req: &ModelRequest,
    output_tool: Option<&str>,
    resp: reqwest::Response,
) -> Result<ModelResponse, ProviderError> {
    let mut asm = Assembly::default();
    let done = read_events(provider, resp, limits, |ev| asm.event(provider, ev)).await?;
    if !done {
        return Err(protocol(
            provider,
            format!(
                "the stream ended without `message_stop` after {} events (stop_reason {})",
                asm.events,
                asm.stop_reason.as_deref().unwrap_or("not sent")
            ),
        ));
    }
    let mut parts = Parts {
        text: String::new(),
        calls: Vec::new(),
        stop_reason: asm.stop_reason,
    };
    for b in asm.blocks.into_values() {
        match b.kind.as_str() {
            "text" => parts.text.push_str(&b.text),
            "tool_use" => {
                let json = if b.json.is_empty() {
                    "{}".to_string()
                } else {
                    b.json
                };
                parts.calls.push((b.id, b.name, json));
            }
            _ => {}
        }
    }
    finish_answer(
        provider,
        req,
        output_tool,
        parts,
        usage_of(asm.usage),
        asm.model,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::llm::{Message, OutputSchema, ToolSpec};

    #[test]
    fn wire_request_merges_turns_and_forces_the_output_tool() {
        let mut asst = Message::text(Role::Assistant, "");
        asst.tool_calls = vec![
            ToolCall {
                id: "t1".into(),
                name: "f".into(),
                arguments: r#"{"a":1}"#.into(),
            },
            ToolCall {
                id: "t2".into(),
                name: "f".into(),
                arguments: "not json".into(),
            },
        ];
        let mut r1 = Message::text(Role::Tool, "one");
        r1.tool_call_id = Some("t1".into());
        let mut r2 = Message::text(Role::Tool, "two");
        r2.tool_call_id = Some("t2".into());
        let req = ModelRequest {
            model: "claude".into(),
            messages: vec![
                Message::text(Role::System, "s1"),
                Message::text(Role::User, "hi"),
                asst,
                r1,
                r2,
                Message::text(Role::System, "s2"),
            ],
            tools: vec![],
            output: Some(OutputSchema {
                name: "Ticket".into(),
                schema: json!({"type": "object"}),
            }),
            temperature: None,
            max_tokens: None,
            stop: vec!["X".into()],
        };
        let (body, tool) = wire_request(&req, false);
        assert_eq!(tool.as_deref(), Some("Ticket"));
        assert_eq!(
            body,
            json!({
                "model": "claude",
                "max_tokens": DEFAULT_MAX_TOKENS,
                "system": "s1\n\ns2",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                        {"type": "tool_use", "id": "t2", "name": "f", "input": {}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                        {"type": "tool_result", "tool_use_id": "t2", "content": "two"}]},
                ],
                "tools": [{"name": "Ticket", "description": "Give the final answer: its input is the answer, as the schema says.", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "Ticket"},
                "stop_sequences": ["X"],
            })
        );

        // With real tools offered, any tool may be called, and a clashing name is renamed.
        let with_tools = ModelRequest {
            tools: vec![ToolSpec {
                name: "Ticket".into(),
                description: "".into(),
                parameters: json!({}),
                mcp: None,
            }],
            ..req
        };
        let (body, tool) = wire_request(&with_tools, true);
        assert_eq!(tool.as_deref(), Some("Ticket_answer"));
        assert_eq!(body["tool_choice"], json!({"type": "any"}));
        assert_eq!(body["stream"], json!(true));
    }

    #[test]
    fn output_tool_input_is_the_content() {
        let req = ModelRequest::new("c", vec![Message::text(Role::User, "x")]);
        let got = parse_message(
            "p",
            &req,
            Some("T"),
            br#"{"type":"message","model":"claude-x","stop_reason":"tool_use",
                "content":[{"type":"text","text":"Sure."},{"type":"tool_use","id":"toolu_1","name":"T","input":{"a":[1,2]}}],
                "usage":{"input_tokens":10,"output_tokens":3,"cache_read_input_tokens":5}}"#,
        )
        .unwrap();
        assert_eq!(got.content, r#"{"a":[1,2]}"#);
        assert!(got.tool_calls.is_empty());
        assert_eq!(got.finish, Finish::Stop);
        assert_eq!(
            got.usage,
            Usage {
                input_tokens: 15,
                output_tokens: 3
            }
        );
        assert_eq!(got.model, "claude-x");

        let e = parse_message(
            "p",
            &req,
            None,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("Overloaded (overloaded_error)"),
            "{e}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        #[test]
        fn any_answer_parses_or_fails_typed(body in super::super::hostile::answer()) {
            let req = ModelRequest::new("m", vec![Message::text(Role::User, "hi")]);
            // The property is that these return at all: a value or a ProviderError.
            let _ = parse_message("fuzz", &req, None, &body);
            let _ = parse_message("fuzz", &req, Some("name"), &body);
        }
    }
}
