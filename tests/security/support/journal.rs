//! The journal of a run (`--trace`, spec/journal.md and spec/security.md §7) read as plain
//! JSON: the decision and effect events the checker and the tests look at.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::label::Label;

/// A `decision` event.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The 1-based line of the journal.
    pub line: usize,
    pub task: u64,
    pub seq: u64,
    pub tool: String,
    pub verdict: String,
    pub rule: String,
    pub reason: String,
    pub args_hash: String,
    pub labels: BTreeMap<String, Label>,
    pub control: Option<Label>,
    pub approval: Option<String>,
}

impl Decision {
    /// Whether the decision lets the effect happen (spec/security.md §7).
    pub fn permits(&self) -> bool {
        match self.verdict.as_str() {
            "allow" => true,
            "ask" => matches!(self.approval.as_deref(), Some("approved" | "auto-approved")),
            _ => false,
        }
    }
}

/// An `effect` event.
#[derive(Clone, Debug)]
pub struct Effect {
    pub line: usize,
    pub task: u64,
    pub seq: u64,
    pub effect: String,
    pub args: Vec<Value>,
    pub arg_labels: Vec<Option<Label>>,
    pub outcome: String,
    pub result: Option<Value>,
    pub error: Option<Value>,
    /// The whole event, for what the fields above leave out (`llm.response`).
    pub raw: Value,
}

impl Effect {
    /// Whether the effect happened (or was at least attempted in the world): anything but a
    /// `PolicyDenied` outcome.
    pub fn performed(&self) -> bool {
        self.outcome != "PolicyDenied"
    }

    /// The argument `i` as a string, if it is one.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i).and_then(Value::as_str)
    }

    /// For `llm.call`: the tool calls of the model's answer, `(name, arguments text)`.
    pub fn llm_tool_calls(&self) -> Vec<(String, String)> {
        self.raw["llm"]["response"]["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_string(),
                            c["arguments"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One line of a journal.
#[derive(Clone, Debug)]
pub enum Event {
    Decision(Decision),
    Effect(Effect),
    /// run_start, run_end, label and anything newer, kept as they are.
    Other(Value),
}

/// A parsed journal.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    pub events: Vec<Event>,
}

fn label_at(v: &Value) -> Option<Label> {
    v.as_str().and_then(Label::parse)
}

impl Journal {
    /// Reads and parses `path`; panics with the line when it is not a journal (tests only).
    pub fn read(path: &Path) -> Journal {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("journal {} unreadable: {e}", path.display()));
        Journal::parse(&text)
    }

    pub fn parse(text: &str) -> Journal {
        let mut events = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("journal line {} is not JSON ({e}): {line}", i + 1));
            let n = i + 1;
            let ev = match v["event"].as_str() {
                Some("decision") => Event::Decision(Decision {
                    line: n,
                    task: v["task"].as_u64().unwrap_or(u64::MAX),
                    seq: v["seq"].as_u64().unwrap_or(u64::MAX),
                    tool: v["tool"].as_str().unwrap_or_default().to_string(),
                    verdict: v["verdict"].as_str().unwrap_or_default().to_string(),
                    rule: v["rule"].as_str().unwrap_or_default().to_string(),
                    reason: v["reason"].as_str().unwrap_or_default().to_string(),
                    args_hash: v["args_hash"].as_str().unwrap_or_default().to_string(),
                    labels: v["labels"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, l)| Some((k.clone(), label_at(l)?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    control: label_at(&v["control"]),
                    approval: v["approval"].as_str().map(str::to_string),
                }),
                Some("effect") => Event::Effect(Effect {
                    line: n,
                    task: v["task"].as_u64().unwrap_or(u64::MAX),
                    seq: v["seq"].as_u64().unwrap_or(u64::MAX),
                    effect: v["effect"].as_str().unwrap_or_default().to_string(),
                    args: v["args"].as_array().cloned().unwrap_or_default(),
                    arg_labels: v["arg_labels"]
                        .as_array()
                        .map(|a| a.iter().map(label_at).collect())
                        .unwrap_or_default(),
                    outcome: v["outcome"].as_str().unwrap_or_default().to_string(),
                    result: v.get("result").cloned(),
                    error: v.get("error").cloned(),
                    raw: v,
                }),
                _ => Event::Other(v),
            };
            events.push(ev);
        }
        Journal { events }
    }

    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.events.iter().filter_map(|e| match e {
            Event::Decision(d) => Some(d),
            _ => None,
        })
    }

    pub fn effects(&self) -> impl Iterator<Item = &Effect> {
        self.events.iter().filter_map(|e| match e {
            Event::Effect(x) => Some(x),
            _ => None,
        })
    }

    /// The effects of this kind that happened.
    pub fn performed(&self, effect: &str) -> Vec<&Effect> {
        self.effects()
            .filter(|e| e.effect == effect && e.performed())
            .collect()
    }

    /// The decisions about this tool id.
    pub fn decisions_for(&self, tool: &str) -> Vec<&Decision> {
        self.decisions().filter(|d| d.tool == tool).collect()
    }

    /// The decision event judging effect (task, seq), if any.
    pub fn decision_of(&self, task: u64, seq: u64) -> Option<&Decision> {
        self.decisions().find(|d| d.task == task && d.seq == seq)
    }

    /// The tool.call gates a model's calls went through that the policy let through, by name.
    pub fn permitted_gates(&self) -> Vec<String> {
        self.effects()
            .filter(|e| e.effect == "tool.call" && e.performed())
            .filter_map(|e| e.arg_str(0).map(str::to_string))
            .collect()
    }
}

/// A value in the host's lossless journal form (`{"data": {"str": "x"}, "label": ...}`) as
/// plain JSON (labels dropped); plain JSON is returned as it is.
pub fn plain(v: &Value) -> Value {
    let Some(data) = v.get("data") else {
        return v.clone();
    };
    match data {
        Value::String(s) if s == "null" => Value::Null,
        Value::Object(m) => {
            let Some((tag, inner)) = m.iter().next() else {
                return Value::Null;
            };
            match tag.as_str() {
                "list" => Value::Array(
                    inner
                        .as_array()
                        .map(|a| a.iter().map(plain).collect())
                        .unwrap_or_default(),
                ),
                "map" | "record" => {
                    let mut out = serde_json::Map::new();
                    for pair in inner.as_array().into_iter().flatten() {
                        let key = match &pair[0] {
                            Value::String(s) => s.clone(),
                            other => plain(other)
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| other.to_string()),
                        };
                        out.insert(key, plain(&pair[1]));
                    }
                    Value::Object(out)
                }
                _ => inner.clone(),
            }
        }
        other => other.clone(),
    }
}

impl Effect {
    /// The payload of the error the effect gave, as plain JSON.
    pub fn error_payload(&self) -> Option<Value> {
        self.error
            .as_ref()
            .and_then(|e| e.get("payload"))
            .map(plain)
    }
}
