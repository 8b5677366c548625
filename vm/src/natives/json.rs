//! `json.*`: parse JSON text into values (objects become maps, in document order) and
//! stringify values as compact JSON (records and maps become objects).

use super::{arg, Ctx, NativeFn};
use crate::error::{kind, Raise, R};
use crate::heap::{MapEntry, MapObj, Obj};
use crate::label::Label;
use crate::text::shape_names;
use crate::value::{Key, Kind, ObjId, Value};

/// Values nested deeper than this are not stringified (a cycle, or absurd depth).
const MAX_DEPTH: usize = 128;

pub(super) fn lookup(name: &str) -> Option<NativeFn> {
    Some(match name {
        "json.parse" => parse,
        "json.stringify" => stringify,
        _ => return None,
    })
}

fn json_err(message: String) -> Raise {
    Raise::rt(kind::JSON, message)
}

fn parse(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let text = cx.str_arg("json.parse", arg(args, 0))?;
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        json_err(format!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    build(cx, &doc)
}

fn build(cx: &mut Ctx, doc: &serde_json::Value) -> R<Value> {
    use serde_json::Value as J;
    Ok(match doc {
        J::Null => Value::NULL,
        J::Bool(b) => Value::bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => Value::float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => cx.new_str(s.clone())?,
        J::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(build(cx, x)?);
            }
            cx.new_list(out)
        }
        J::Object(fields) => {
            let mut m = MapObj::default();
            for (k, x) in fields {
                let v = build(cx, x)?;
                m.key_bytes += k.len();
                m.entries.insert(
                    Key::Str(k.as_str().into()),
                    MapEntry {
                        key_label: Label::PUBLIC,
                        value: v,
                    },
                );
            }
            Value::new(Kind::Map(cx.heap.alloc(Obj::Map(m))))
        }
    })
}

fn stringify(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let mut stack = Vec::new();
    let doc = to_json(cx, arg(args, 0), &mut stack)?;
    cx.new_str(doc.to_string())
}

fn to_json(cx: &Ctx, v: Value, stack: &mut Vec<ObjId>) -> R<serde_json::Value> {
    use serde_json::Value as J;
    let heap = &*cx.heap;
    let mut enter = |o: ObjId| -> R<()> {
        if stack.contains(&o) || stack.len() >= MAX_DEPTH {
            return Err(json_err(
                "cannot stringify a cyclic or too deeply nested value".into(),
            ));
        }
        stack.push(o);
        Ok(())
    };
    Ok(match v.kind() {
        Kind::Null => J::Null,
        Kind::Bool(b) => J::Bool(b),
        Kind::Int(i) => J::from(i),
        Kind::Float(f) => J::Number(serde_json::Number::from_f64(f).ok_or_else(|| {
            json_err(format!(
                "cannot stringify the float {f} (JSON has no NaN or infinity)"
            ))
        })?),
        Kind::Str(s) => J::String(heap.str(s)?.to_string()),
        Kind::List(o) => {
            enter(o)?;
            let mut out = Vec::new();
            for x in heap.list(o)? {
                out.push(to_json(cx, *x, stack)?);
            }
            stack.pop();
            J::Array(out)
        }
        Kind::Map(o) => {
            enter(o)?;
            let mut out = serde_json::Map::new();
            for (k, e) in &heap.map(o)?.entries {
                let key = match k {
                    Key::Int(i) => i.to_string(),
                    Key::Str(s) => s.to_string(),
                };
                out.insert(key, to_json(cx, e.value, stack)?);
            }
            stack.pop();
            J::Object(out)
        }
        Kind::Record(o) => {
            enter(o)?;
            let rec = heap.record(o)?;
            let mut out = serde_json::Map::new();
            for (n, x) in shape_names(cx.module, rec.shape).iter().zip(&rec.vals) {
                out.insert(cx.module.str(*n).to_string(), to_json(cx, *x, stack)?);
            }
            stack.pop();
            J::Object(out)
        }
        Kind::Error(o) => {
            let e = heap.error(o)?;
            let mut out = serde_json::Map::new();
            out.insert("kind".into(), J::String(e.kind.clone()));
            out.insert("message".into(), J::String(e.message.clone()));
            J::Object(out)
        }
        _ => return Err(json_err(format!("cannot stringify a {}", v.type_name()))),
    })
}
