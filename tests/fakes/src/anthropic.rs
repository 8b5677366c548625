//! Anthropic Messages bodies and event streams in the API's shapes: `message` objects with
//! content blocks, and the `message_start` … `message_stop` event sequence.

use serde_json::{json, Value};

pub const INPUT_TOKENS: u64 = 21;
pub const OUTPUT_TOKENS: u64 = 9;

/// A non-streamed message with these content blocks.
pub fn message(blocks: Vec<Value>, stop_reason: &str) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
    })
}

pub fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

pub fn tool_use_block(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

/// An error body: `{"type": "error", "error": {"type", "message"}}`.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// One named SSE event.
pub fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn start() -> String {
    event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-fake-1",
            "content": [], "stop_reason": null,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1}}}),
    )
}

fn end(stop_reason: &str) -> Vec<String> {
    vec![
        event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                    "usage": {"output_tokens": OUTPUT_TOKENS}}),
        ),
        event("message_stop", &json!({"type": "message_stop"})),
    ]
}

/// A whole streamed text answer, with a `ping` after the start.
pub fn stream_text(pieces: &[&str], stop_reason: &str) -> Vec<String> {
    let mut out = vec![
        start(),
        event("ping", &json!({"type": "ping"})),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for p in pieces {
        out.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        ));
    }
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    out.extend(end(stop_reason));
    out
}

/// A whole streamed answer: a text block, then one tool_use block whose input arrives as
/// `input_json_delta` pieces.
pub fn stream_tool_use(
    text: &str,
    id: &str,
    name: &str,
    json_pieces: &[&str],
    stop_reason: &str,
) -> Vec<String> {
    let mut out = vec![
        start(),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ),
        event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 1,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ),
    ];
    for p in json_pieces {
        out.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": p}}),
        ));
    }
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 1}),
    ));
    out.extend(end(stop_reason));
    out
}
