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

    /// The join of the labels of every node of the value: the label of everything it holds
    /// (what a model shown this value may say is at most this trusted and this public).
    pub fn deep_label(&self) -> LabelInfo {
        let mut label = LabelInfo::public();
        // An explicit stack: a host may build values of any depth.
        let mut stack = vec![self];
        while let Some(v) = stack.pop() {
            if !v.label.is_public() {
                label = label.join(&v.label);
            }
            stack.extend(v.children());
        }
        label
    }

    /// The same value with `label` joined into the label of every node (a node already
    /// less trusted or more private stays so; a public node gets exactly `label`).
    pub fn labelled_deep(mut self, label: &LabelInfo) -> HostValue {
        if label.is_public() {
            return self;
        }
        let mut stack = vec![&mut self];
        while let Some(v) = stack.pop() {
            v.label = v.label.join(label);
            match &mut v.data {
                HostData::List(items) => stack.extend(items.iter_mut()),
                HostData::Map(pairs) => stack.extend(pairs.iter_mut().map(|(_, x)| x)),
                HostData::Record(fields) => stack.extend(fields.iter_mut().map(|(_, x)| x)),
                _ => {}
            }
        }
        self
    }

    /// The values directly inside this one.
    fn children(&self) -> Box<dyn Iterator<Item = &HostValue> + '_> {
        match &self.data {
            HostData::List(items) => Box::new(items.iter()),
            HostData::Map(pairs) => Box::new(pairs.iter().map(|(_, x)| x)),
            HostData::Record(fields) => Box::new(fields.iter().map(|(_, x)| x)),
            _ => Box::new(std::iter::empty()),
        }
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
    /// e.g. "PolicyDenied", "IoError".
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn readers(names: &[&str]) -> LabelInfo {
        LabelInfo {
            integrity: Integrity::Trusted,
            readers: Some(names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>()),
        }
    }

    #[test]
    fn deep_label_joins_every_node() {
        let v = HostValue::new(HostData::Record(vec![
            (
                "a".into(),
                HostValue::str("x").labelled(readers(&["alice", "bob"])),
            ),
            (
                "b".into(),
                HostValue::new(HostData::List(vec![
                    HostValue::int(1),
                    HostValue::str("web").labelled(LabelInfo::untrusted()),
                ])),
            ),
            (
                "c".into(),
                HostValue::new(HostData::Map(vec![(
                    Key::Str("k".into()),
                    HostValue::int(2).labelled(readers(&["bob", "carol"])),
                )])),
            ),
        ]));
        let l = v.deep_label();
        assert_eq!(l.integrity, Integrity::Untrusted);
        assert_eq!(l.readers, readers(&["bob"]).readers);
        assert!(HostValue::int(1).deep_label().is_public());
    }

    #[test]
    fn labelled_deep_raises_every_node_and_never_lowers_one() {
        let v = HostValue::new(HostData::List(vec![
            HostValue::str("a"),
            HostValue::new(HostData::Record(vec![(
                "x".into(),
                HostValue::int(1).labelled(readers(&["alice"])),
            )])),
        ]));
        let v = v.labelled_deep(&LabelInfo::untrusted());
        assert!(v.is_untrusted());
        let HostData::List(items) = &v.data else {
            panic!()
        };
        assert!(items[0].is_untrusted());
        let HostData::Record(fields) = &items[1].data else {
            panic!()
        };
        assert!(fields[0].1.is_untrusted());
        assert_eq!(fields[0].1.label.readers, readers(&["alice"]).readers);
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut v = HostValue::int(0).labelled(LabelInfo::untrusted());
        for _ in 0..200_000 {
            v = HostValue::new(HostData::List(vec![v]));
        }
        assert!(v.deep_label() == LabelInfo::untrusted());
        let v = v.labelled_deep(&readers(&["a"]));
        assert_eq!(v.label, readers(&["a"]));
        // Dropping a 200k-deep tree recurses in Drop: take it apart by hand.
        let mut v = v;
        while let HostData::List(mut items) = std::mem::replace(&mut v.data, HostData::Null) {
            match items.pop() {
                Some(inner) => v = inner,
                None => break,
            }
        }
    }
}
