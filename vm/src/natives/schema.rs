//! `schema.conform`: checks a value against a JSON Schema (the subset the compiler emits for
//! types: `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
//! `anyOf`; other keywords are ignored) and converts it to the shape the type asks for: ints
//! become floats where a number is wanted, objects with `properties` take the schema's field
//! order (a record when the module has that record shape, else a map in that order), and
//! missing optional fields become null. A mismatch is a ValueError naming the place by JSON
//! pointer: `at /tags/0: expected string, found int`.
//!
//! Both arguments come from outside the program's control (a model's answer, a schema built
//! from text), so the walk is bounded in depth and in total steps.

use super::{arg, Ctx, NativeFn};
use crate::compare::equal;
use crate::error::{kind, Raise, R};
use crate::format::Constant;
use crate::heap::{MapEntry, MapObj, Obj, RecordObj};
use crate::label::Label;
use crate::text::shape_names;
use crate::value::{Key, KeyRef, Kind, Value};

/// Nesting (of the value, and of schemas inside `anyOf`) beyond this is refused.
const MAX_DEPTH: usize = 128;
/// Schema nodes visited in one call beyond this are refused (nested `anyOf` can multiply).
const MAX_STEPS: usize = 1_000_000;

pub(super) fn lookup(name: &str) -> Option<NativeFn> {
    Some(match name {
        "schema.conform" => conform,
        _ => return None,
    })
}

fn conform(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let mut c = Conformer {
        cx,
        path: Vec::new(),
        steps: 0,
    };
    match c.value(arg(args, 0), arg(args, 1), 0) {
        Ok(v) => Ok(v),
        Err(Fail::Mismatch { path, message, .. }) => Err(Raise::rt(
            kind::VALUE,
            format!("at {}: {message}", pointer_text(&path)),
        )),
        Err(Fail::Hard(r)) => Err(r),
    }
}

/// One step of a JSON pointer.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Why a value does not conform: a mismatch (which `anyOf` may recover from), or an error
/// that ends the whole check (a bad schema, a limit, a broken heap).
enum Fail {
    Mismatch {
        path: Vec<Seg>,
        message: String,
        /// For a value of the wrong type: the types that were wanted (what `anyOf` lists).
        wanted: Option<String>,
    },
    Hard(Raise),
}

impl From<Raise> for Fail {
    fn from(r: Raise) -> Fail {
        Fail::Hard(r)
    }
}

impl From<crate::heap::Dangling> for Fail {
    fn from(d: crate::heap::Dangling) -> Fail {
        Fail::Hard(d.into())
    }
}

type F<T> = Result<T, Fail>;

/// A JSON pointer (RFC 6901) for a path; the root is written "the top level".
fn pointer_text(path: &[Seg]) -> String {
    if path.is_empty() {
        return "the top level".into();
    }
    let mut out = String::new();
    for s in path {
        out.push('/');
        match s {
            Seg::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

struct Conformer<'c, 'a> {
    cx: &'c mut Ctx<'a>,
    path: Vec<Seg>,
    steps: usize,
}

/// The parts of a schema object this checker reads.
#[derive(Default)]
struct Schema {
    types: Option<Vec<String>>,
    any_of: Option<Vec<Value>>,
    enum_: Option<Vec<Value>>,
    const_: Option<Value>,
    items: Option<Value>,
    properties: Option<Vec<(String, Value)>>,
    required: Vec<String>,
    /// `None` when absent (extra fields are kept as they are).
    additional: Option<Value>,
}

impl Conformer<'_, '_> {
    fn mismatch<T>(&self, message: String) -> F<T> {
        Err(Fail::Mismatch {
            path: self.path.clone(),
            message,
            wanted: None,
        })
    }

    /// The value here is of none of the `wanted` types.
    fn wrong_type<T>(&self, wanted: String, v: Value) -> F<T> {
        Err(Fail::Mismatch {
            path: self.path.clone(),
            message: format!("expected {wanted}, found {}", v.type_name()),
            wanted: Some(wanted),
        })
    }

    fn bad_schema<T>(&self, message: String) -> F<T> {
        Err(Fail::Hard(Raise::rt(
            kind::VALUE,
            format!(
                "schema.conform: invalid schema for the value at {}: {message}",
                pointer_text(&self.path)
            ),
        )))
    }

    /// The value at `key` of a schema object (a map from `json.parse`, or a record).
    fn field(&self, obj: Value, key: &str) -> F<Option<Value>> {
        let heap = &*self.cx.heap;
        Ok(match obj.kind() {
            Kind::Map(o) => heap.map(o)?.entries.get(&KeyRef::Str(key)).map(|e| e.value),
            Kind::Record(o) => {
                let rec = heap.record(o)?;
                let module = self.cx.module;
                shape_names(module, rec.shape)
                    .iter()
                    .position(|n| module.str(*n) == key)
                    .and_then(|i| rec.vals.get(i).copied())
            }
            _ => None,
        })
    }

    fn string(&self, v: Value) -> F<Option<String>> {
        Ok(match v.kind() {
            Kind::Str(s) => Some(self.cx.heap.str(s)?.to_string()),
            _ => None,
        })
    }

    fn list(&self, v: Value) -> F<Option<Vec<Value>>> {
        Ok(match v.kind() {
            Kind::List(o) => Some(self.cx.heap.list(o)?.clone()),
            _ => None,
        })
    }

    /// The (key, key label, value) entries of an object value, in order.
    fn entries(&self, v: Value) -> F<Vec<(Key, Label, Value)>> {
        let heap = &*self.cx.heap;
        Ok(match v.kind() {
            Kind::Map(o) => heap
                .map(o)?
                .entries
                .iter()
                .map(|(k, e)| (k.clone(), e.key_label, e.value))
                .collect(),
            Kind::Record(o) => {
                let rec = heap.record(o)?;
                let module = self.cx.module;
                shape_names(module, rec.shape)
                    .iter()
                    .zip(&rec.vals)
                    .map(|(n, x)| (Key::Str(module.str(*n).into()), Label::PUBLIC, *x))
                    .collect()
            }
            _ => Vec::new(),
        })
    }

    fn parse_schema(&self, s: Value) -> F<Schema> {
        let mut out = Schema::default();
        if let Some(t) = self.field(s, "type")? {
            let names = match (self.string(t)?, self.list(t)?) {
                (Some(name), _) => vec![name],
                (None, Some(items)) => {
                    let mut names = Vec::with_capacity(items.len());
                    for x in items {
                        match self.string(x)? {
                            Some(n) => names.push(n),
                            None => return self.bad_schema("`type` lists a non-string".into()),
                        }
                    }
                    names
                }
                _ => return self.bad_schema("`type` must be a string or a list".into()),
            };
            for n in &names {
                if !matches!(
                    n.as_str(),
                    "null" | "boolean" | "integer" | "number" | "string" | "array" | "object"
                ) {
                    return self.bad_schema(format!("unknown type {n:?}"));
                }
            }
            out.types = Some(names);
        }
        if let Some(a) = self.field(s, "anyOf")? {
            match self.list(a)? {
                Some(items) if !items.is_empty() => out.any_of = Some(items),
                _ => return self.bad_schema("`anyOf` must be a non-empty list".into()),
            }
        }
        if let Some(e) = self.field(s, "enum")? {
            match self.list(e)? {
                Some(items) => out.enum_ = Some(items),
                None => return self.bad_schema("`enum` must be a list".into()),
            }
        }
        out.const_ = self.field(s, "const")?;
        out.items = self.field(s, "items")?;
        if let Some(p) = self.field(s, "properties")? {
            if !matches!(p.kind(), Kind::Map(_) | Kind::Record(_)) {
                return self.bad_schema("`properties` must be an object".into());
            }
            let mut props = Vec::new();
            for (k, _, v) in self.entries(p)? {
                match k {
                    Key::Str(name) => props.push((name.to_string(), v)),
                    Key::Int(i) => props.push((i.to_string(), v)),
                }
            }
            out.properties = Some(props);
        }
        if let Some(r) = self.field(s, "required")? {
            let Some(items) = self.list(r)? else {
                return self.bad_schema("`required` must be a list".into());
            };
            for x in items {
                match self.string(x)? {
                    Some(n) => out.required.push(n),
                    None => return self.bad_schema("`required` lists a non-string".into()),
                }
            }
        }
        out.additional = self.field(s, "additionalProperties")?;
        Ok(out)
    }

    /// Checks `v` against schema `s` and returns the converted value.
    fn value(&mut self, v: Value, s: Value, depth: usize) -> F<Value> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Fail::Hard(Raise::rt(
                kind::VALUE,
                "schema.conform: the schema is too complex to check (over a million steps)",
            )));
        }
        if depth > MAX_DEPTH {
            return Err(Fail::Hard(Raise::rt(
                kind::VALUE,
                format!(
                    "schema.conform: at {}: the value or schema is nested more than {MAX_DEPTH} deep",
                    pointer_text(&self.path)
                ),
            )));
        }
        match s.kind() {
            Kind::Bool(true) => return Ok(v),
            Kind::Bool(false) => return self.mismatch("no value is allowed here".into()),
            Kind::Map(_) | Kind::Record(_) => {}
            _ => {
                return self.bad_schema(format!(
                    "a schema is an object or a bool, found {}",
                    s.type_name()
                ))
            }
        }
        let schema = self.parse_schema(s)?;
        let mut v = v;
        if let Some(branches) = &schema.any_of {
            v = self.any_of(v, branches, depth)?;
        }
        if let Some(c) = schema.const_ {
            if !equal(self.cx.heap, self.cx.module, v, c)? {
                let want = self.describe(c)?;
                let found = self.describe(v)?;
                return self.mismatch(format!("expected {want}, found {found}"));
            }
        }
        if let Some(options) = &schema.enum_ {
            let mut hit = false;
            for o in options {
                if equal(self.cx.heap, self.cx.module, v, *o)? {
                    hit = true;
                    break;
                }
            }
            if !hit {
                let mut want = Vec::new();
                for o in options.iter().take(20) {
                    want.push(self.describe(*o)?);
                }
                let found = self.describe(v)?;
                return self.mismatch(format!(
                    "expected one of {}, found {found}",
                    want.join(", ")
                ));
            }
        }
        if let Some(types) = &schema.types {
            match types.iter().find_map(|t| self.convert(v, t)) {
                Some(converted) => v = converted,
                None => return self.wrong_type(types.join(" or "), v),
            }
        }
        match v.kind() {
            Kind::List(_) => match schema.items {
                Some(items) => self.array(v, items, depth),
                None => Ok(v),
            },
            Kind::Map(_) | Kind::Record(_)
                if schema.properties.is_some() || schema.additional.is_some() =>
            {
                self.object(v, &schema, depth)
            }
            _ => Ok(v),
        }
    }

    /// `v` as a value of JSON type `t`, converted where the type asks: an int where a number
    /// is wanted becomes a float; a float with an integral value where an integer is wanted
    /// becomes an int. `None` when it is not of that type.
    fn convert(&self, v: Value, t: &str) -> Option<Value> {
        let label = v.label();
        match (t, v.kind()) {
            ("null", Kind::Null)
            | ("boolean", Kind::Bool(_))
            | ("integer", Kind::Int(_))
            | ("number", Kind::Float(_))
            | ("string", Kind::Str(_))
            | ("array", Kind::List(_))
            | ("object", Kind::Map(_) | Kind::Record(_)) => Some(v),
            ("number", Kind::Int(i)) => Some(Value::float(i as f64).labelled(label)),
            ("integer", Kind::Float(f))
                if f.fract() == 0.0
                    && (-9.007_199_254_740_992e15..=9.007_199_254_740_992e15).contains(&f) =>
            {
                Some(Value::int(f as i64).labelled(label))
            }
            _ => None,
        }
    }

    fn any_of(&mut self, v: Value, branches: &[Value], depth: usize) -> F<Value> {
        let mut fails: Vec<(Vec<Seg>, String, Option<String>)> = Vec::new();
        for b in branches {
            let at = self.path.len();
            match self.value(v, *b, depth + 1) {
                Ok(x) => return Ok(x),
                Err(Fail::Mismatch {
                    path,
                    message,
                    wanted,
                }) => fails.push((path, message, wanted)),
                Err(hard) => return Err(hard),
            }
            self.path.truncate(at);
        }
        // The most telling failure: one from a branch of the value's own type, which got
        // past the type check (the deepest such); when every branch wanted another type, say
        // what each wanted.
        let here = self.path.len();
        let of_type = |f: &(Vec<Seg>, String, Option<String>)| f.0.len() > here || f.2.is_none();
        let deepest = fails.iter().filter(|f| of_type(f)).map(|f| f.0.len()).max();
        if let Some(depth) = deepest {
            if let Some(i) = fails.iter().position(|f| of_type(f) && f.0.len() == depth) {
                let (path, message, wanted) = fails.swap_remove(i);
                return Err(Fail::Mismatch {
                    path,
                    message,
                    wanted,
                });
            }
        }
        let mut wanted: Vec<String> = Vec::new();
        for w in fails.into_iter().filter_map(|f| f.2) {
            if !wanted.contains(&w) {
                wanted.push(w);
            }
        }
        self.wrong_type(wanted.join(" or "), v)
    }

    fn array(&mut self, v: Value, items: Value, depth: usize) -> F<Value> {
        let Some(xs) = self.list(v)? else {
            return Ok(v);
        };
        let mut out = Vec::with_capacity(xs.len());
        for (i, x) in xs.into_iter().enumerate() {
            self.path.push(Seg::Index(i));
            out.push(self.value(x, items, depth + 1)?);
            self.path.pop();
        }
        let o = self.cx.heap.alloc(Obj::List(out));
        Ok(Value::with(Kind::List(o), v.label()))
    }

    fn object(&mut self, v: Value, schema: &Schema, depth: usize) -> F<Value> {
        let entries = self.entries(v)?;
        let props: &[(String, Value)] = schema.properties.as_deref().unwrap_or(&[]);
        let mut fields: Vec<(Key, Label, Value)> = Vec::with_capacity(props.len());
        for (name, ps) in props {
            let found = entries
                .iter()
                .find(|(k, _, _)| matches!(k, Key::Str(s) if **s == **name));
            self.path.push(Seg::Key(name.clone()));
            let value = match found {
                Some((_, _, x)) => self.value(*x, *ps, depth + 1)?,
                None => {
                    let required = schema.required.iter().any(|r| r == name);
                    // A required field may be left out when null is allowed (an optional
                    // field of the type), and an optional one always: both become null.
                    let nullable = match self.value(Value::NULL, *ps, depth + 1) {
                        Ok(_) => true,
                        Err(Fail::Mismatch { .. }) => false,
                        Err(hard) => return Err(hard),
                    };
                    if required && !nullable {
                        self.path.pop();
                        return self.mismatch(format!("missing required field {name:?}"));
                    }
                    Value::NULL
                }
            };
            self.path.pop();
            let label = found.map_or(Label::PUBLIC, |(_, l, _)| *l);
            fields.push((Key::Str(name.as_str().into()), label, value));
        }
        for req in &schema.required {
            if !props.iter().any(|(n, _)| n == req)
                && !entries
                    .iter()
                    .any(|(k, _, _)| matches!(k, Key::Str(s) if **s == **req))
            {
                return self.mismatch(format!("missing required field {req:?}"));
            }
        }
        let mut extras = 0;
        for (k, kl, x) in &entries {
            if matches!(k, Key::Str(s) if props.iter().any(|(n, _)| **s == **n)) {
                continue;
            }
            let name = match k {
                Key::Str(s) => s.to_string(),
                Key::Int(i) => i.to_string(),
            };
            let value = match schema.additional.map(|a| a.kind()) {
                None | Some(Kind::Bool(true)) => *x,
                Some(Kind::Bool(false)) => {
                    let allowed: Vec<&str> = props.iter().map(|(n, _)| n.as_str()).collect();
                    return self.mismatch(format!(
                        "unexpected field {name:?} (allowed: {})",
                        allowed.join(", ")
                    ));
                }
                Some(_) => {
                    let a = schema.additional.unwrap_or(Value::NULL);
                    self.path.push(Seg::Key(name));
                    let x = self.value(*x, a, depth + 1)?;
                    self.path.pop();
                    x
                }
            };
            extras += 1;
            fields.push((k.clone(), *kl, value));
        }
        if schema.properties.is_some() && extras == 0 {
            if let Some(shape) = self.shape_for(props) {
                let vals = fields.into_iter().map(|(_, _, x)| x).collect();
                let o = self.cx.heap.alloc(Obj::Record(RecordObj { shape, vals }));
                return Ok(Value::with(Kind::Record(o), v.label()));
            }
        }
        let mut m = MapObj::default();
        for (k, kl, x) in fields {
            if let Key::Str(s) = &k {
                m.key_bytes += s.len();
            }
            m.entries.insert(
                k,
                MapEntry {
                    key_label: kl,
                    value: x,
                },
            );
        }
        let o = self.cx.heap.alloc(Obj::Map(m));
        Ok(Value::with(Kind::Map(o), v.label()))
    }

    /// A record shape constant of the module with exactly these field names in this order.
    fn shape_for(&self, props: &[(String, Value)]) -> Option<u32> {
        let module = self.cx.module;
        module
            .constants
            .iter()
            .position(|c| match c {
                Constant::Shape(names) => {
                    names.len() == props.len()
                        && names
                            .iter()
                            .zip(props)
                            .all(|(n, (p, _))| module.str(*n) == p)
                }
                _ => false,
            })
            .map(|i| i as u32)
    }

    /// A short description of a value for a message: scalars as JSON, strings quoted (and cut
    /// short), containers by kind.
    fn describe(&self, v: Value) -> F<String> {
        Ok(match v.kind() {
            Kind::Str(s) => {
                let text = self.cx.heap.str(s)?;
                let cut: String = text.chars().take(40).collect();
                let more = if cut.len() < text.len() { "..." } else { "" };
                format!("{:?}", format!("{cut}{more}"))
            }
            Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => self.cx.text(v)?,
            _ => v.type_name().to_string(),
        })
    }
}
