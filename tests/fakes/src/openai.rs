//! OpenAI chat-completions bodies and streams as llama.cpp's server sends them (REAL-MODEL.md
//! §3): `chatcmpl-` ids, a `timings` object, tool-call ids without `call_`, content `""` beside
//! tool calls, a first delta with `content: null`, a usage chunk with `choices: []`.

use serde_json::{json, Value};

/// Usage reported by every canned answer: 26 tokens in, 14 out.
pub const PROMPT_TOKENS: u64 = 26;
pub const COMPLETION_TOKENS: u64 = 14;

fn usage() -> Value {
    json!({"completion_tokens": COMPLETION_TOKENS, "prompt_tokens": PROMPT_TOKENS,
           "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS, "prompt_tokens_details": {"cached_tokens": 0}})
}

fn envelope(object: &str, choices: Value) -> Value {
    json!({
        "choices": choices,
        "created": 1795556626,
        "model": "smollm2",
        "system_fingerprint": "b0-unknown",
        "object": object,
        "id": "chatcmpl-CmablX3nfyu6rVN0KWZ67lDpzxe7xOuM",
    })
}

/// A non-streamed answer with this content and finish reason.
pub fn completion(content: &str, finish: &str) -> Value {
    let mut v = envelope(
        "chat.completion",
        json!([{"finish_reason": finish, "index": 0,
                "message": {"role": "assistant", "content": content}}]),
    );
    v["usage"] = usage();
    v["timings"] = json!({"cache_n": 0, "prompt_n": 26, "prompt_ms": 85.4, "predicted_n": 14, "predicted_ms": 69.8});
    v
}

/// A non-streamed answer calling tools: `(id, name, arguments JSON text)` each.
pub fn tool_calls(calls: &[(&str, &str, &str)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| json!({"type": "function", "function": {"name": name, "arguments": args}, "id": id}))
        .collect();
    let mut v = envelope(
        "chat.completion",
        json!([{"finish_reason": "tool_calls", "index": 0,
                "message": {"role": "assistant", "content": "", "tool_calls": calls}}]),
    );
    v["usage"] = usage();
    v
}

/// An error body: `{"error": {"code", "message", "type"}}`.
pub fn error_body(code: u16, message: &str, kind: &str) -> Value {
    json!({"error": {"code": code, "message": message, "type": kind}})
}

/// One SSE event carrying `v`.
pub fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// The stream's final event.
pub fn done() -> String {
    "data: [DONE]\n\n".to_string()
}

/// A stream chunk with one choice.
pub fn chunk(delta: Value, finish: Option<&str>) -> Value {
    envelope(
        "chat.completion.chunk",
        json!([{"finish_reason": finish, "index": 0, "delta": delta}]),
    )
}

/// The usage chunk (`choices: []`) sent when `stream_options.include_usage` is set.
pub fn usage_chunk() -> Value {
    let mut v = envelope("chat.completion.chunk", json!([]));
    v["usage"] = usage();
    v["timings"] = json!({"prompt_n": 26, "predicted_n": 14});
    v
}

/// A whole streamed text answer: the role chunk (content null), one chunk per piece, the
/// finish chunk, the usage chunk and `[DONE]`.
pub fn stream_text(pieces: &[&str], finish: &str) -> Vec<String> {
    let mut out = vec![data(&chunk(
        json!({"role": "assistant", "content": null}),
        None,
    ))];
    out.extend(
        pieces
            .iter()
            .map(|p| data(&chunk(json!({"content": p}), None))),
    );
    out.push(data(&chunk(json!({}), Some(finish))));
    out.push(data(&usage_chunk()));
    out.push(done());
    out
}

/// A whole streamed tool call: the first delta carries id, type and name with the first
/// piece of the arguments, later deltas only pieces.
pub fn stream_tool_call(id: &str, name: &str, arg_pieces: &[&str]) -> Vec<String> {
    let mut out = vec![data(&chunk(
        json!({"role": "assistant", "content": null}),
        None,
    ))];
    for (i, piece) in arg_pieces.iter().enumerate() {
        let call = if i == 0 {
            json!({"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": piece}})
        } else {
            json!({"index": 0, "function": {"arguments": piece}})
        };
        out.push(data(&chunk(json!({"tool_calls": [call]}), None)));
    }
    out.push(data(&chunk(json!({}), Some("tool_calls"))));
    out.push(data(&usage_chunk()));
    out.push(done());
    out
}
