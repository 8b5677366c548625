//! Values as hosts see them: a plain, JSON-like tree with a label on every node. Effect
//! arguments and results, task arguments and final values cross the VM boundary in this form,
//! so a host never touches the heap.

use serde::{Deserialize, Serialize};

use crate::label::{Integrity, LabelInfo};
use crate::value::Key;

/// A value outside the VM, with its label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostValue {
    pub data: HostData,
    #[serde(default, skip_serializing_if = "LabelInfo::is_public")]
    pub label: LabelInfo,
}

/// The shape of a [`HostValue`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostData {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<HostValue>),
    /// A map, in insertion order.
    Map(Vec<(Key, HostValue)>),
    /// A record: field names and values, in order.
    Record(Vec<(String, HostValue)>),
    Error {
        kind: String,
        message: String,
    },
    /// A function value, by name (it cannot leave the VM).
    Func(String),
    /// The handle of a task of the VM, by id.
    Task(u32),
}

impl HostValue {
    /// A trusted, public value.
    pub fn new(data: HostData) -> HostValue {
        HostValue {
            data,
            label: LabelInfo::public(),
        }
    }

    pub fn null() -> HostValue {
        HostValue::new(HostData::Null)
    }

    pub fn int(i: i64) -> HostValue {
        HostValue::new(HostData::Int(i))
    }

    pub fn str(s: impl Into<String>) -> HostValue {
        HostValue::new(HostData::Str(s.into()))
    }

    /// The same value with another label.
    pub fn labelled(mut self, label: LabelInfo) -> HostValue {
        self.label = label;
        self
    }

    pub fn is_untrusted(&self) -> bool {
        self.label.integrity == Integrity::Untrusted
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.data {
            HostData::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The exit status a final value of `main` stands for: an int (clamped to i32), or 0 for
    /// null; `None` for anything else.
    pub fn exit_status(&self) -> Option<i32> {
        match self.data {
            HostData::Null => Some(0),
            HostData::Int(i) => Some(i.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            _ => None,
        }
    }
}

impl HostValue {
    /// The value as plain JSON (labels left out): maps and records become objects, errors
    /// `{"kind", "message"}`, functions their name, non-finite floats null.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.data {
            HostData::Null => J::Null,
            HostData::Bool(b) => J::Bool(*b),
            HostData::Int(i) => J::from(*i),
            HostData::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            HostData::Str(s) | HostData::Func(s) => J::String(s.clone()),
            HostData::List(items) => J::Array(items.iter().map(HostValue::to_json).collect()),
            HostData::Map(pairs) => J::Object(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Key::Int(i) => i.to_string(),
                            Key::Str(s) => s.to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
            HostData::Record(fields) => J::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
            HostData::Error { kind, message } => {
                serde_json::json!({ "kind": kind, "message": message })
            }
            HostData::Task(t) => J::String(format!("<task {t}>")),
        }
    }
}

/// An effect that failed: it becomes a catchable error value of this kind in the program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct HostError {
    /// e.g. "PermissionDenied", "IoError".
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "LabelInfo::is_public")]
    pub label: LabelInfo,
    /// The error's payload (e.g. `{budget, used, limit}` of a `BudgetExceeded`); null if none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<HostValue>>,
}

impl HostError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> HostError {
        HostError {
            kind: kind.into(),
            message: message.into(),
            label: LabelInfo::public(),
            payload: None,
        }
    }

    /// The same error carrying `payload`.
    pub fn with_payload(mut self, payload: HostValue) -> HostError {
        self.payload = Some(Box::new(payload));
        self
    }
}
