//! The program's side of a model turn: the request value `CALL_LLM` yields becomes a
//! [`ModelRequest`], and a [`ModelResponse`] becomes the assistant-message record the program
//! gets back (spec/llm.md). The answer carries the deep join of every label in the request
//! (the label rule): what a model says is as untrusted and as confidential as what it read.

use super::llm::{Message, ModelRequest, ModelResponse, OutputSchema, Role, ToolCall, ToolSpec};
use crate::host_value::{HostData, HostError, HostValue};
use crate::label::LabelInfo;
use crate::value::Key;

/// The kind of error a malformed request raises in the program.
const BAD_REQUEST: &str = "TypeError";

/// Reads the request value of `llm.call` into the provider-neutral form. `model` is the
/// provider's model id the logical name maps to. A field of the wrong shape is a `TypeError`
/// naming its path in the request, e.g. `messages[2].role`.
pub fn request_from_value(model: &str, v: &HostValue) -> Result<ModelRequest, HostError> {
    let top = Fields::of(v, "request")?;
    let messages = match top.get("messages") {
        None => return Err(bad("messages", "a list of messages is required")),
        Some(m) => list(m, "messages")?
            .iter()
            .enumerate()
            .map(|(i, m)| message(m, &format!("messages[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let tools = match top.get("tools") {
        None => Vec::new(),
        Some(t) if is_null(t) => Vec::new(),
        Some(t) => list(t, "tools")?
            .iter()
            .enumerate()
            .map(|(i, t)| tool(t, &format!("tools[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let output = match top.get("schema") {
        None => None,
        Some(s) if is_null(s) => None,
        Some(s) => {
            let name = match top.get("schema_name") {
                Some(n) if !is_null(n) => string(n, "schema_name")?.to_string(),
                _ => String::new(),
            };
            Some(OutputSchema {
                name: schema_name(&name),
                schema: s.to_json(),
            })
        }
    };
    let mut req = ModelRequest {
        model: model.to_string(),
        messages,
        tools,
        output,
        temperature: None,
        max_tokens: None,
        stop: Vec::new(),
    };
    if let Some(opts) = top.get("options").filter(|o| !is_null(o)) {
        let opts = Fields::of(opts, "options")?;
        if let Some(t) = opts.get("temperature").filter(|t| !is_null(t)) {
            req.temperature = Some(match t.data {
                HostData::Int(i) => i as f64,
                HostData::Float(f) if f.is_finite() => f,
                _ => return Err(expected(t, "options.temperature", "a number")),
            });
        }
        if let Some(m) = opts.get("max_tokens").filter(|m| !is_null(m)) {
            req.max_tokens = Some(match m.data {
                HostData::Int(i) if i >= 1 => i as u64,
                _ => return Err(expected(m, "options.max_tokens", "a positive int")),
            });
        }
        if let Some(s) = opts.get("stop").filter(|s| !is_null(s)) {
            req.stop = list(s, "options.stop")?
                .iter()
                .enumerate()
                .map(|(i, s)| string(s, &format!("options.stop[{i}]")).map(str::to_string))
                .collect::<Result<_, _>>()?;
        }
    }
    Ok(req)
}

/// The assistant message the program receives: a record `{role, content, tool_calls, finish,
/// usage, model}` with every node labelled `label` (the deep join of the request).
pub fn response_to_value(resp: &ModelResponse, label: &LabelInfo) -> HostValue {
    let s = |t: &str| HostValue::str(t);
    let record = |fields: Vec<(&str, HostValue)>| {
        HostValue::new(HostData::Record(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ))
    };
    let calls = resp
        .tool_calls
        .iter()
        .map(|c| {
            record(vec![
                ("id", s(&c.id)),
                ("name", s(&c.name)),
                ("arguments", s(&c.arguments)),
            ])
        })
        .collect();
    let finish = match resp.finish {
        super::llm::Finish::Stop => "stop",
        super::llm::Finish::Length => "length",
        super::llm::Finish::ToolCalls => "tool_calls",
    };
    let tokens = |n: u64| HostValue::int(i64::try_from(n).unwrap_or(i64::MAX));
    let v = record(vec![
        ("role", s("assistant")),
        ("content", s(&resp.content)),
        ("tool_calls", HostValue::new(HostData::List(calls))),
        ("finish", s(finish)),
        (
            "usage",
            record(vec![
                ("input_tokens", tokens(resp.usage.input_tokens)),
                ("output_tokens", tokens(resp.usage.output_tokens)),
            ]),
        ),
        ("model", s(&resp.model)),
    ]);
    v.labelled_deep(label)
}

/// A plain JSON document as a value: objects become maps with string keys (as `json.parse`
/// makes them), every node public.
pub fn value_from_json(doc: &serde_json::Value) -> HostValue {
    use serde_json::Value as J;
    HostValue::new(match doc {
        J::Null => HostData::Null,
        J::Bool(b) => HostData::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => HostData::Int(i),
            None => HostData::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => HostData::Str(s.clone()),
        J::Array(items) => HostData::List(items.iter().map(value_from_json).collect()),
        J::Object(fields) => HostData::Map(
            fields
                .iter()
                .map(|(k, v)| (Key::Str(k.as_str().into()), value_from_json(v)))
                .collect(),
        ),
    })
}

/// The fields of a record, or of a map with string keys (as `json.parse` builds objects).
struct Fields<'a>(Vec<(&'a str, &'a HostValue)>);

impl<'a> Fields<'a> {
    fn of(v: &'a HostValue, path: &str) -> Result<Fields<'a>, HostError> {
        match &v.data {
            HostData::Record(fields) => Ok(Fields(
                fields.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            )),
            HostData::Map(pairs) => Ok(Fields(
                pairs
                    .iter()
                    .filter_map(|(k, v)| match k {
                        Key::Str(s) => Some((&**s, v)),
                        Key::Int(_) => None,
                    })
                    .collect(),
            )),
            _ => Err(expected(v, path, "a record")),
        }
    }

    fn get(&self, name: &str) -> Option<&'a HostValue> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

fn message(v: &HostValue, path: &str) -> Result<Message, HostError> {
    let f = Fields::of(v, path)?;
    let role_path = format!("{path}.role");
    let role = match f.get("role") {
        None => return Err(bad(&role_path, "a role is required")),
        Some(r) => match string(r, &role_path)? {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(bad(
                    &role_path,
                    &format!("expected one of system, user, assistant, tool; found {other:?}"),
                ))
            }
        },
    };
    let content = match f.get("content") {
        None => String::new(),
        Some(c) if is_null(c) => String::new(),
        Some(c) => string(c, &format!("{path}.content"))?.to_string(),
    };
    let tool_calls = match f.get("tool_calls") {
        None => Vec::new(),
        Some(t) if is_null(t) => Vec::new(),
        Some(t) => list(t, &format!("{path}.tool_calls"))?
            .iter()
            .enumerate()
            .map(|(i, c)| tool_call(c, &format!("{path}.tool_calls[{i}]")))
            .collect::<Result<_, _>>()?,
    };
    let opt_str = |name: &str| -> Result<Option<String>, HostError> {
        match f.get(name) {
            None => Ok(None),
            Some(x) if is_null(x) => Ok(None),
            Some(x) => Ok(Some(string(x, &format!("{path}.{name}"))?.to_string())),
        }
    };
    let tool_call_id = opt_str("tool_call_id")?;
    if role == Role::Tool && tool_call_id.is_none() {
        return Err(bad(
            &format!("{path}.tool_call_id"),
            "a tool message needs the id of the call it answers",
        ));
    }
    Ok(Message {
        role,
        content,
        tool_calls,
        tool_call_id,
        name: opt_str("name")?,
    })
}

fn tool_call(v: &HostValue, path: &str) -> Result<ToolCall, HostError> {
    let f = Fields::of(v, path)?;
    let req_str = |name: &str| -> Result<String, HostError> {
        let p = format!("{path}.{name}");
        match f.get(name) {
            None => Err(bad(&p, "required")),
            Some(x) => Ok(string(x, &p)?.to_string()),
        }
    };
    // Arguments are JSON text as the model wrote them; a program that built them as a value
    // gets them sent as that value's JSON.
    let arguments = match f.get("arguments") {
        None => "{}".to_string(),
        Some(HostValue {
            data: HostData::Str(s),
            ..
        }) => s.clone(),
        Some(other) => other.to_json().to_string(),
    };
    Ok(ToolCall {
        id: req_str("id")?,
        name: req_str("name")?,
        arguments,
    })
}

fn tool(v: &HostValue, path: &str) -> Result<ToolSpec, HostError> {
    let f = Fields::of(v, path)?;
    let name = match f.get("name") {
        None => return Err(bad(&format!("{path}.name"), "required")),
        Some(n) => string(n, &format!("{path}.name"))?.to_string(),
    };
    let description = match f.get("description") {
        None => String::new(),
        Some(d) if is_null(d) => String::new(),
        Some(d) => string(d, &format!("{path}.description"))?.to_string(),
    };
    let parameters = match f.get("parameters") {
        None => serde_json::json!({"type": "object", "properties": {}}),
        Some(p) => match &p.data {
            HostData::Map(_) | HostData::Record(_) => p.to_json(),
            _ => {
                return Err(expected(
                    p,
                    &format!("{path}.parameters"),
                    "a JSON Schema object",
                ))
            }
        },
    };
    let mcp = match f.get("mcp") {
        Some(m) if !is_null(m) => Some(string(m, &format!("{path}.mcp"))?.to_string()),
        _ => None,
    };
    Ok(ToolSpec {
        name,
        description,
        parameters,
        mcp,
    })
}

/// A schema name providers accept (`[A-Za-z0-9_-]{1,64}`): other characters become `_`.
fn schema_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "output".to_string()
    } else {
        cleaned
    }
}

fn is_null(v: &HostValue) -> bool {
    matches!(v.data, HostData::Null)
}

fn list<'a>(v: &'a HostValue, path: &str) -> Result<&'a [HostValue], HostError> {
    match &v.data {
        HostData::List(items) => Ok(items),
        _ => Err(expected(v, path, "a list")),
    }
}

fn string<'a>(v: &'a HostValue, path: &str) -> Result<&'a str, HostError> {
    v.as_str().ok_or_else(|| expected(v, path, "a string"))
}

fn expected(found: &HostValue, path: &str, what: &str) -> HostError {
    bad(
        path,
        &format!("expected {what}, found {}", kind_name(found)),
    )
}

fn bad(path: &str, why: &str) -> HostError {
    HostError::new(BAD_REQUEST, format!("llm request at {path}: {why}"))
}

fn kind_name(v: &HostValue) -> &'static str {
    match v.data {
        HostData::Null => "null",
        HostData::Bool(_) => "bool",
        HostData::Int(_) => "int",
        HostData::Float(_) => "float",
        HostData::Str(_) => "string",
        HostData::List(_) => "list",
        HostData::Map(_) => "map",
        HostData::Record(_) => "record",
        HostData::Error { .. } => "error",
        HostData::Func(_) => "fn",
        HostData::Task(_) => "task",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::llm::{Finish, Usage};

    fn rec(fields: Vec<(&str, HostValue)>) -> HostValue {
        HostValue::new(HostData::Record(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ))
    }

    fn list_of(items: Vec<HostValue>) -> HostValue {
        HostValue::new(HostData::List(items))
    }

    fn msg(role: &str, content: &str) -> HostValue {
        rec(vec![
            ("role", HostValue::str(role)),
            ("content", HostValue::str(content)),
        ])
    }

    #[test]
    fn a_full_request_converts_with_schema_tools_and_options() {
        let schema = value_from_json(
            &serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
        );
        let v = rec(vec![
            (
                "messages",
                list_of(vec![msg("system", "be brief"), msg("user", "hi")]),
            ),
            (
                "tools",
                list_of(vec![rec(vec![
                    ("name", HostValue::str("add")),
                    ("description", HostValue::str("adds")),
                    ("parameters", schema.clone()),
                    ("params", list_of(vec![HostValue::str("a")])),
                    ("fn", HostValue::new(HostData::Func("add".into()))),
                ])]),
            ),
            ("schema", schema),
            ("schema_name", HostValue::str("My Type")),
            (
                "options",
                rec(vec![
                    ("temperature", HostValue::int(0)),
                    ("max_tokens", HostValue::int(100)),
                    ("stop", list_of(vec![HostValue::str("END")])),
                ]),
            ),
            ("max_turns", HostValue::int(8)),
        ]);
        let r = request_from_value("gpt-x", &v).unwrap();
        assert_eq!(r.model, "gpt-x");
        assert_eq!(r.messages.len(), 2);
        assert_eq!(r.messages[0].role, Role::System);
        assert_eq!(r.tools[0].name, "add");
        assert_eq!(r.tools[0].parameters["properties"]["a"]["type"], "integer");
        let out = r.output.unwrap();
        assert_eq!(out.name, "My_Type");
        assert_eq!(r.temperature, Some(0.0));
        assert_eq!(r.max_tokens, Some(100));
        assert_eq!(r.stop, vec!["END".to_string()]);
    }

    #[test]
    fn maps_from_json_parse_are_accepted_like_records() {
        let v = value_from_json(&serde_json::json!({
            "messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": null,
                          "tool_calls": [{"id": "1", "name": "f", "arguments": {"x": 1}}]},
                         {"role": "tool", "tool_call_id": "1", "name": "f", "content": "2"}],
            "schema": null, "options": null
        }));
        let r = request_from_value("m", &v).unwrap();
        assert_eq!(r.messages[1].content, "");
        assert_eq!(r.messages[1].tool_calls[0].arguments, r#"{"x":1}"#);
        assert_eq!(r.messages[2].tool_call_id.as_deref(), Some("1"));
        assert!(r.output.is_none());
    }

    #[test]
    fn bad_shapes_are_type_errors_naming_the_path() {
        let cases = [
            (
                serde_json::json!(3),
                "at request: expected a record, found int",
            ),
            (
                serde_json::json!({}),
                "at messages: a list of messages is required",
            ),
            (
                serde_json::json!({"messages": [{"role": "bot", "content": "x"}]}),
                "at messages[0].role: expected one of system, user, assistant, tool; found \"bot\"",
            ),
            (
                serde_json::json!({"messages": [{"role": "user", "content": 5}]}),
                "at messages[0].content: expected a string, found int",
            ),
            (
                serde_json::json!({"messages": [], "options": {"max_tokens": 0}}),
                "at options.max_tokens: expected a positive int, found int",
            ),
            (
                serde_json::json!({"messages": [], "options": {"stop": ["a", 1]}}),
                "at options.stop[1]: expected a string, found int",
            ),
            (
                serde_json::json!({"messages": [{"role": "tool", "content": "x"}]}),
                "at messages[0].tool_call_id: a tool message needs",
            ),
            (
                serde_json::json!({"messages": [], "tools": [{"name": "f", "parameters": 1}]}),
                "at tools[0].parameters: expected a JSON Schema object, found int",
            ),
        ];
        for (doc, want) in cases {
            let e = request_from_value("m", &value_from_json(&doc)).unwrap_err();
            assert_eq!(e.kind, "TypeError");
            assert!(e.message.contains(want), "{doc}: {}", e.message);
        }
    }

    #[test]
    fn the_answer_carries_the_deep_join_of_the_request_on_every_node() {
        let secret = LabelInfo {
            readers: Some(["alice".to_string()].into_iter().collect()),
            ..LabelInfo::public()
        };
        let req = rec(vec![(
            "messages",
            list_of(vec![
                msg("user", "a"),
                rec(vec![
                    ("role", HostValue::str("user")),
                    (
                        "content",
                        HostValue::str("web page").labelled(LabelInfo::untrusted()),
                    ),
                ]),
                msg("user", "b").labelled(secret.clone()),
            ]),
        )]);
        let label = req.deep_label();
        assert_eq!(label, LabelInfo::untrusted().join(&secret));
        let resp = ModelResponse {
            content: "ok".into(),
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            finish: Finish::ToolCalls,
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
            },
            model: "m-1".into(),
        };
        let v = response_to_value(&resp, &label);
        assert_eq!(
            v.to_json(),
            serde_json::json!({"role": "assistant", "content": "ok",
                "tool_calls": [{"id": "c1", "name": "f", "arguments": "{}"}],
                "finish": "tool_calls", "usage": {"input_tokens": 3, "output_tokens": 4},
                "model": "m-1"})
        );
        let mut nodes = vec![&v];
        let mut seen = 0;
        while let Some(n) = nodes.pop() {
            assert_eq!(n.label, label);
            seen += 1;
            match &n.data {
                HostData::List(xs) => nodes.extend(xs),
                HostData::Record(fs) => nodes.extend(fs.iter().map(|(_, x)| x)),
                _ => {}
            }
        }
        assert!(seen > 10);
        // A public request gives a public answer.
        assert!(response_to_value(&resp, &msg("user", "x").deep_label())
            .label
            .is_public());
    }
}
