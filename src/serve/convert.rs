//! Values across the MCP boundary of `aivm serve`: a call's JSON arguments checked against the
//! declared parameter types and converted to VM values, and a run's outcome turned into a
//! `tools/call` result (text, structured content, or an error result).

use aivm_vm::format::{Module, TypeDesc, TypeId};
use aivm_vm::host::llm_value::value_from_json;
use aivm_vm::{HostData, HostValue, Key, LabelInfo};
use serde_json::{json, Map, Value as Json};

/// How deep a type may be followed without consuming any JSON (named, optional and union
/// chains are bounded by the verifier; this is a second, cheap guard).
const MAX_DEPTH: usize = 512;

/// `value` as a VM value of type `ty`, every node labelled `label`; the error says where
/// (`path`, e.g. `query.tags[2]`) and what was expected.
pub fn argument(
    module: &Module,
    ty: TypeId,
    value: &Json,
    path: &str,
    label: &LabelInfo,
) -> Result<HostValue, String> {
    let v = Conv { module }.convert(ty, value, path, 0)?;
    Ok(v.labelled_deep(label))
}

struct Conv<'a> {
    module: &'a Module,
}

impl Conv<'_> {
    fn convert(&self, ty: TypeId, v: &Json, path: &str, depth: usize) -> Result<HostValue, String> {
        if depth > MAX_DEPTH {
            return Err(format!("{path}: the value is nested too deeply"));
        }
        let m = self.module;
        let desc = m
            .types
            .get(ty as usize)
            .ok_or_else(|| format!("{path}: the program has no type {ty}"))?;
        let mismatch = || format!("{path}: expected {}, got {}", type_name(m, ty), kind(v));
        let data = match (desc, v) {
            (TypeDesc::Any, _) => return Ok(value_from_json(v)),
            (TypeDesc::Null, Json::Null) => HostData::Null,
            (TypeDesc::Bool, Json::Bool(b)) => HostData::Bool(*b),
            (TypeDesc::Int, Json::Number(n)) => HostData::Int(integer(n).ok_or_else(mismatch)?),
            (TypeDesc::Float, Json::Number(n)) => HostData::Float(n.as_f64().ok_or_else(mismatch)?),
            (TypeDesc::Str, Json::String(s)) => HostData::Str(s.clone()),
            (TypeDesc::StrLit(lit), Json::String(s)) if m.str(*lit) == s => {
                HostData::Str(s.clone())
            }
            (TypeDesc::List(item), Json::Array(items)) => HostData::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| self.convert(*item, x, &format!("{path}[{i}]"), depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            (TypeDesc::Map(val), Json::Object(obj)) => HostData::Map(
                obj.iter()
                    .map(|(k, x)| {
                        let v = self.convert(*val, x, &format!("{path}.{k}"), depth + 1)?;
                        Ok((Key::Str(k.as_str().into()), v))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            (TypeDesc::Record(fields), Json::Object(obj)) => {
                if let Some(extra) = obj
                    .keys()
                    .find(|k| !fields.iter().any(|f| m.str(f.name) == k.as_str()))
                {
                    return Err(format!("{path}: unexpected field `{extra}`"));
                }
                let mut out = Vec::with_capacity(fields.len());
                for f in fields {
                    let name = m.str(f.name);
                    let sub = format!("{path}.{name}");
                    let v = match obj.get(name) {
                        Some(x) => self.convert(f.ty, x, &sub, depth + 1)?,
                        None if self.admits_null(f.ty, depth) => HostValue::null(),
                        None => return Err(format!("{sub}: missing")),
                    };
                    out.push((name.to_string(), v));
                }
                HostData::Record(out)
            }
            (TypeDesc::Optional(_), Json::Null) => HostData::Null,
            (TypeDesc::Optional(inner), _) => {
                // A mismatch right here names the optional type; a deeper one its own place.
                let here = format!("{path}: expected");
                return self.convert(*inner, v, path, depth + 1).map_err(|e| {
                    if e.starts_with(&here) {
                        mismatch()
                    } else {
                        e
                    }
                });
            }
            (TypeDesc::Named { ty: inner, .. }, _) => {
                return self.convert(*inner, v, path, depth + 1)
            }
            (TypeDesc::Union(members), _) => {
                for t in members {
                    if let Ok(x) = self.convert(*t, v, path, depth + 1) {
                        return Ok(x);
                    }
                }
                return Err(mismatch());
            }
            _ => return Err(mismatch()),
        };
        Ok(HostValue::new(data))
    }

    /// Whether a missing record field of type `ty` may be taken as null.
    fn admits_null(&self, ty: TypeId, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.module.types.get(ty as usize) {
            Some(TypeDesc::Optional(_) | TypeDesc::Null | TypeDesc::Any) => true,
            Some(TypeDesc::Named { ty, .. }) => self.admits_null(*ty, depth + 1),
            Some(TypeDesc::Union(ms)) => ms.iter().any(|t| self.admits_null(*t, depth + 1)),
            _ => false,
        }
    }
}

/// An integer, also when written `3.0` (JSON Schema's `integer` admits it).
fn integer(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        // Exactly representable and in range: the cast below then loses nothing.
        (f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63)).then_some(f as i64)
    })
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A type as the error messages name it (its alias name, else its shape, shortly).
fn type_name(m: &Module, ty: TypeId) -> String {
    match m.types.get(ty as usize) {
        Some(TypeDesc::Any) => "any value".into(),
        Some(TypeDesc::Null) => "null".into(),
        Some(TypeDesc::Bool) => "bool".into(),
        Some(TypeDesc::Int) => "int".into(),
        Some(TypeDesc::Float) => "float".into(),
        Some(TypeDesc::Str) => "string".into(),
        Some(TypeDesc::StrLit(s)) => format!("{:?}", m.str(*s)),
        Some(TypeDesc::List(_)) => "a list".into(),
        Some(TypeDesc::Map(_)) => "a map (object)".into(),
        Some(TypeDesc::Record(_)) => "a record (object)".into(),
        Some(TypeDesc::Optional(t)) => format!("{} or null", type_name(m, *t)),
        Some(TypeDesc::Union(_)) => "one of the union's types".into(),
        Some(TypeDesc::Named { name, .. }) => format!("`{}`", m.str(*name)),
        Some(TypeDesc::Func) => "a function (not expressible in JSON)".into(),
        Some(TypeDesc::Error) => "an error (not expressible in JSON)".into(),
        None => "?".into(),
    }
}

/// How a tool's result is shaped, decided once from its return type.
#[derive(Clone, Debug)]
pub enum Output {
    /// `-> string`: the string as one text item, no structured content.
    Text,
    /// An object type (record or map): the value is the structured content.
    Object(Map<String, Json>),
    /// Any other typed result: structured content `{"result": value}`.
    Wrapped(Map<String, Json>),
    /// Untyped (`any`): a string as text, anything else as JSON text, and an object value
    /// also as structured content.
    Untyped,
    /// `-> mcp.Content` (one item) or `-> [mcp.Content]` (several): the items themselves.
    Content,
}

impl Output {
    /// The shaping of a function returning `ty`, and its `outputSchema` if it has one.
    pub fn of(module: &Module, ty: TypeId) -> Output {
        if matches!(module.types.get(ty as usize), Some(TypeDesc::Str)) {
            return Output::Text;
        }
        let item = match module.types.get(ty as usize) {
            Some(TypeDesc::List(item)) => *item,
            _ => ty,
        };
        if is_content(module, item) {
            return Output::Content;
        }
        match aivm_vm::format::schema::schema(module, ty) {
            Ok(Json::Object(s)) if s.is_empty() => Output::Untyped,
            Ok(Json::Object(s)) if s.get("type").is_some_and(|t| t == "object") => {
                Output::Object(s)
            }
            Ok(s) => {
                let wrapped = json!({
                    "type": "object",
                    "properties": {"result": s},
                    "required": ["result"],
                    "additionalProperties": false,
                });
                match wrapped {
                    Json::Object(w) => Output::Wrapped(w),
                    _ => Output::Untyped,
                }
            }
            // A function or error result has no schema: shown as text.
            Err(_) => Output::Untyped,
        }
    }

    pub fn schema(&self) -> Option<&Map<String, Json>> {
        match self {
            Output::Object(s) | Output::Wrapped(s) => Some(s),
            Output::Text | Output::Untyped | Output::Content => None,
        }
    }

    /// The `tools/call` result of a returned value: `{content, structuredContent?}`.
    pub fn result(&self, value: &HostValue) -> Json {
        let doc = value.to_json();
        if let Output::Content = self {
            let items = match doc {
                Json::Array(items) => items,
                one => vec![one],
            };
            return match items.iter().map(content_item).collect::<Option<Vec<_>>>() {
                Some(content) => json!({ "content": content }),
                None => error_result(
                    "HostError",
                    "a content item the program returned is malformed",
                ),
            };
        }
        let text = match &doc {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let content = json!([{"type": "text", "text": text}]);
        let structured = match self {
            Output::Text | Output::Content => None,
            Output::Object(_) => Some(doc),
            Output::Wrapped(_) => Some(json!({ "result": doc })),
            Output::Untyped => doc.is_object().then_some(doc),
        };
        match structured {
            Some(s) => json!({"content": content, "structuredContent": s}),
            None => json!({"content": content}),
        }
    }
}

/// An error result: `isError` with one text item `Kind: message`.
pub fn error_result(kind: &str, message: &str) -> Json {
    json!({
        "content": [{"type": "text", "text": format!("{kind}: {message}")}],
        "isError": true,
    })
}

/// The content kinds of std.mcp's `Content`, by the `type` field of their records.
const CONTENT_KINDS: [&str; 4] = ["text", "image", "audio", "resource"];

/// Whether `ty` is std.mcp's `Content`: a type named `Content` that is a union of records
/// each tagged by a `type` field with one of the content kinds. The name alone is not
/// enough (a program may name its own type so), nor the shape alone (an ordinary record is
/// a value, never content).
fn is_content(module: &Module, ty: TypeId) -> bool {
    let Some(TypeDesc::Named {
        name, ty: inner, ..
    }) = module.types.get(ty as usize)
    else {
        return false;
    };
    if module.str(*name) != "Content" {
        return false;
    }
    let Some(TypeDesc::Union(members)) = module.types.get(*inner as usize) else {
        return false;
    };
    let tag = |t: TypeId| -> Option<&str> {
        let mut t = t;
        // A member is a named record (`Text`, `Image`...): one alias to look through.
        if let Some(TypeDesc::Named { ty, .. }) = module.types.get(t as usize) {
            t = *ty;
        }
        let Some(TypeDesc::Record(fields)) = module.types.get(t as usize) else {
            return None;
        };
        let f = fields.iter().find(|f| module.str(f.name) == "type")?;
        match module.types.get(f.ty as usize) {
            Some(TypeDesc::StrLit(s)) => Some(module.str(*s)),
            _ => None,
        }
    };
    let tags: Option<Vec<&str>> = members.iter().map(|m| tag(*m)).collect();
    tags.is_some_and(|tags| !tags.is_empty() && tags.iter().all(|t| CONTENT_KINDS.contains(t)))
}

/// One item of std.mcp's `Content` as MCP content (camelCase, absent fields left out), or
/// `None` when it is not one.
fn content_item(item: &Json) -> Option<Json> {
    let str_of = |k: &str| item.get(k).and_then(Json::as_str);
    Some(match str_of("type")? {
        "text" => json!({"type": "text", "text": str_of("text")?}),
        kind @ ("image" | "audio") => json!({
            "type": kind,
            "data": str_of("data")?,
            "mimeType": str_of("mime_type")?,
        }),
        "resource" => {
            let mut r = Map::new();
            r.insert("uri".into(), json!(str_of("uri")?));
            if let Some(m) = str_of("mime_type") {
                r.insert("mimeType".into(), json!(m));
            }
            match (str_of("text"), str_of("blob")) {
                (Some(t), _) => r.insert("text".into(), json!(t)),
                (None, Some(b)) => r.insert("blob".into(), json!(b)),
                (None, None) => return None,
            };
            json!({"type": "resource", "resource": r})
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_items_map_to_mcp_content() {
        assert_eq!(
            content_item(&json!({"type": "audio", "data": "AA==", "mime_type": "audio/wav"})),
            Some(json!({"type": "audio", "data": "AA==", "mimeType": "audio/wav"}))
        );
        // A null mime type is left out; text wins over a blob.
        assert_eq!(
            content_item(&json!({"type": "resource", "uri": "u", "mime_type": null,
                                 "text": "t", "blob": "AA=="})),
            Some(json!({"type": "resource", "resource": {"uri": "u", "text": "t"}}))
        );
        for bad in [
            json!({"type": "resource", "uri": "u", "mime_type": null, "text": null, "blob": null}),
            json!({"type": "image", "data": "AA=="}),
            json!({"type": "resource_link", "uri": "u"}),
            json!("text"),
        ] {
            assert_eq!(content_item(&bad), None, "{bad}");
        }
    }

    #[test]
    fn only_std_mcp_content_is_content() {
        let src = "import std.mcp\n\ntype Content = {type: string, text: string}\n\
                   type Item = {type: \"text\", text: string}\n\
                   fn a() -> mcp.Content { return mcp.text(\"x\") }\n\
                   fn b() -> [mcp.Content] { return [] }\n\
                   fn c() -> Content { return {type: \"text\", text: \"x\"} }\n\
                   fn d() -> Item { return {type: \"text\", text: \"x\"} }\n\
                   fn main() { print(a()); print(b()); print(c()); print(d()) }\n";
        let module = aivm_compiler::compile_source("content.ail", src)
            .expect("compiles")
            .module;
        let ret = |name: &str| {
            let f = module
                .functions
                .iter()
                .find(|f| module.str(f.name) == name)
                .expect("the function");
            Output::of(&module, f.ret)
        };
        assert!(matches!(ret("a"), Output::Content));
        assert!(matches!(ret("b"), Output::Content));
        assert!(matches!(ret("c"), Output::Object(_)));
        assert!(matches!(ret("d"), Output::Object(_)));
    }
}
