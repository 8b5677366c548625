//! A `tools/call` result as the program sees it (spec/mcp.md §Client): `{content: [ITEM…],
//! structured}` with each content item in a fixed shape, the text items joined for messages,
//! and the server's label hint, which the host joins with the policy's label.

use std::collections::BTreeSet;

use serde_json::Value as J;

use crate::host::llm_value::value_from_json;
use crate::host_value::{HostData, HostValue};
use crate::label::{Integrity, LabelInfo};

/// A successful tool result.
#[derive(Clone, Debug, PartialEq)]
pub struct CallOutput {
    /// `{content, structured}`, every node public: label it with [`CallOutput::labelled`].
    pub value: HostValue,
    /// The text items, joined by `"\n"`.
    pub text: String,
    /// `_meta["aivm/label"]` of the result, when it is well formed.
    pub label_hint: Option<LabelInfo>,
}

impl CallOutput {
    /// The value labelled `base` (the policy's output label of the tool) and the server's
    /// hint: a trusted server's hint replaces `base`; any other hint is joined with it, so
    /// it can only make the label stricter.
    pub fn labelled(self, base: &LabelInfo, trust_hints: bool) -> HostValue {
        let label = match &self.label_hint {
            Some(h) if trust_hints => h.clone(),
            Some(h) => base.join(h),
            None => base.clone(),
        };
        self.value.labelled_deep(&label)
    }
}

fn record(fields: Vec<(&str, HostValue)>) -> HostValue {
    HostValue::new(HostData::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    ))
}

fn field_str(item: &J, key: &str) -> HostValue {
    match item.get(key) {
        Some(J::String(s)) => HostValue::str(s.clone()),
        _ => HostValue::null(),
    }
}

/// One content item in its §4 shape (absent fields null; an unknown type keeps its JSON in
/// `value`).
fn item_value(item: &J) -> HostValue {
    let kind = item.get("type").and_then(J::as_str).unwrap_or("");
    let ty = ("type", HostValue::str(kind));
    match kind {
        "text" => record(vec![ty, ("text", field_str(item, "text"))]),
        "image" | "audio" => record(vec![
            ty,
            ("data", field_str(item, "data")),
            ("mime_type", field_str(item, "mimeType")),
        ]),
        "resource" => {
            let r = item.get("resource").cloned().unwrap_or(J::Null);
            let body = if r.get("blob").is_some() {
                ("blob", field_str(&r, "blob"))
            } else {
                ("text", field_str(&r, "text"))
            };
            record(vec![
                ty,
                ("uri", field_str(&r, "uri")),
                ("mime_type", field_str(&r, "mimeType")),
                body,
            ])
        }
        "resource_link" => record(vec![
            ty,
            ("uri", field_str(item, "uri")),
            ("name", field_str(item, "name")),
            ("mime_type", field_str(item, "mimeType")),
        ]),
        _ => record(vec![ty, ("value", value_from_json(item))]),
    }
}

/// The content items of a result (its JSON form) and their text items joined.
pub(crate) fn content_of(result: &J) -> (HostValue, String) {
    let items: &[J] = result
        .get("content")
        .and_then(J::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let text: Vec<&str> = items
        .iter()
        .filter(|i| i.get("type").and_then(J::as_str) == Some("text"))
        .filter_map(|i| i.get("text").and_then(J::as_str))
        .collect();
    (
        HostValue::new(HostData::List(items.iter().map(item_value).collect())),
        text.join("\n"),
    )
}

/// A `ReadResourceResult` (its JSON form): `{contents: [...]}`, each item as a resource
/// content item of a tool result.
pub(crate) fn resource_value(result: &J) -> HostValue {
    let items: Vec<HostValue> = result
        .get("contents")
        .and_then(J::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|c| item_value(&serde_json::json!({"type": "resource", "resource": c})))
        .collect();
    record(vec![("contents", HostValue::new(HostData::List(items)))])
}

/// A `GetPromptResult` (its JSON form): `{description, messages: [{role, content}]}`, the
/// content of a text message as its text (a conversation message), any other as its item.
pub(crate) fn prompt_value(result: &J) -> HostValue {
    let messages: Vec<HostValue> = result
        .get("messages")
        .and_then(J::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|m| {
            let content = m.get("content").cloned().unwrap_or(J::Null);
            let content = match content.get("type").and_then(J::as_str) {
                Some("text") => field_str(&content, "text"),
                _ => item_value(&content),
            };
            record(vec![("role", field_str(m, "role")), ("content", content)])
        })
        .collect();
    record(vec![
        ("description", field_str(result, "description")),
        ("messages", HostValue::new(HostData::List(messages))),
    ])
}

/// A `CallToolResult` (its JSON form) as a [`CallOutput`].
pub(crate) fn output_of(result: &J) -> CallOutput {
    let (content, text) = content_of(result);
    let structured = match result.get("structuredContent") {
        Some(s) => value_from_json(s),
        None => HostValue::null(),
    };
    CallOutput {
        value: record(vec![("content", content), ("structured", structured)]),
        text,
        label_hint: result
            .get("_meta")
            .and_then(|m| m.get("aivm/label"))
            .and_then(label_hint),
    }
}

/// `{integrity: "trusted"|"untrusted", readers: [..]|null}`; anything else is no hint.
fn label_hint(h: &J) -> Option<LabelInfo> {
    let integrity = match h.get("integrity")?.as_str()? {
        "trusted" => Integrity::Trusted,
        "untrusted" => Integrity::Untrusted,
        _ => return None,
    };
    let readers = match h.get("readers") {
        None | Some(J::Null) => None,
        Some(J::Array(rs)) => Some(
            rs.iter()
                .map(|r| r.as_str().map(str::to_string))
                .collect::<Option<BTreeSet<String>>>()?,
        ),
        Some(_) => return None,
    };
    Some(LabelInfo { integrity, readers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_item_shape() {
        let out = output_of(&json!({
            "content": [
                {"type": "text", "text": "a"},
                {"type": "image", "data": "iVBO", "mimeType": "image/png"},
                {"type": "audio", "data": "UklG", "mimeType": "audio/wav"},
                {"type": "resource", "resource": {"uri": "test://1", "text": "t"}},
                {"type": "resource", "resource": {"uri": "test://2", "mimeType": "x/y", "blob": "AA=="}},
                {"type": "resource_link", "uri": "test://3", "name": "n"},
                {"type": "text", "text": "b"},
                {"type": "hologram", "x": 1},
            ],
            "structuredContent": {"sum": 5},
        }));
        assert_eq!(out.text, "a\nb");
        assert_eq!(
            out.value.to_json(),
            json!({
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "image", "data": "iVBO", "mime_type": "image/png"},
                    {"type": "audio", "data": "UklG", "mime_type": "audio/wav"},
                    {"type": "resource", "uri": "test://1", "mime_type": null, "text": "t"},
                    {"type": "resource", "uri": "test://2", "mime_type": "x/y", "blob": "AA=="},
                    {"type": "resource_link", "uri": "test://3", "name": "n", "mime_type": null},
                    {"type": "text", "text": "b"},
                    {"type": "hologram", "value": {"type": "hologram", "x": 1}},
                ],
                "structured": {"sum": 5},
            })
        );
        assert_eq!(out.label_hint, None);
        let none = output_of(&json!({"content": []}));
        assert_eq!(
            none.value.to_json(),
            json!({"content": [], "structured": null})
        );
    }

    #[test]
    fn hints_lower_only_when_trusted() {
        let hinted = |h: J| output_of(&json!({"content": [], "_meta": {"aivm/label": h}}));
        let trusted = hinted(json!({"integrity": "trusted", "readers": null}));
        let untrusted = LabelInfo::untrusted();
        assert_eq!(
            trusted.clone().labelled(&untrusted, false).label,
            untrusted,
            "an untrusted server cannot raise trust"
        );
        assert_eq!(
            trusted.labelled(&untrusted, true).label,
            LabelInfo::public()
        );
        let private = hinted(json!({"integrity": "untrusted", "readers": ["alice"]}));
        let v = private.labelled(&LabelInfo::public(), false);
        assert_eq!(v.label.integrity, Integrity::Untrusted);
        assert_eq!(v.label.readers, Some(BTreeSet::from(["alice".to_string()])));
        // Every node carries it.
        assert_eq!(v.deep_label(), v.label);
        for bad in [
            json!("trusted"),
            json!({"integrity": "high"}),
            json!({"integrity": "trusted", "readers": [1]}),
        ] {
            assert_eq!(hinted(bad.clone()).label_hint, None, "{bad}");
        }
    }
}
