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
    let Strict(doc) = serde_json::from_str(text).map_err(|e| {
        json_err(format!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    build(cx, &doc)
}

/// A JSON document read strictly: an object that names a key twice is an error, not its last
/// value (two readers of the same text must never see two different values: a policy that
/// checked one spelling while a tool received the other).
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(i.into())
    }

    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(u.into())
    }

    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice"
                )));
            }
            let Strict(v) = map.next_value()?;
            fields.insert(key, v);
        }
        Ok(serde_json::Value::Object(fields))
    }
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
    let label = cx.text_label(arg(args, 0))?;
    Ok(cx.new_str(doc.to_string())?.labelled(label))
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
