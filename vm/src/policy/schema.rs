//! The `schema` condition of a rule: a small JSON Schema checked against a `HostValue`
//! (`crate::natives` checks heap values inside the VM, which an argument is not). Keywords:
//! `type`, `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
//! `minLength`, `maxLength`, `pattern` (whole string), `items`, `minItems`, `maxItems`,
//! `properties`, `required`, `additionalProperties` (a bool); `title`, `description` are
//! ignored; anything else is refused when the policy is read, so no constraint is silently
//! dropped. No coercion: `"100"` is not a number, `1.0` is not an integer.

use std::cmp::Ordering;

use super::cond::{json_kind, lit_matches};
use super::file::{Lit, Pattern};
use super::num::{compare, Num};
use crate::host_value::{HostData, HostValue};
use crate::value::Key;

/// Schemas nested deeper than this are refused.
const MAX_DEPTH: usize = 32;

/// A compiled schema (compared by its source).
#[derive(Clone, Debug)]
pub struct Schema {
    source: Lit,
    root: Node,
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Type {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Type {
    fn parse(s: &str) -> Result<Type, String> {
        Ok(match s {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "string" => Type::String,
            "array" => Type::Array,
            "object" => Type::Object,
            _ => return Err(format!("unknown schema type {s:?}")),
        })
    }

    fn admits(self, v: &HostValue) -> bool {
        match (self, &v.data) {
            (Type::Null, HostData::Null) | (Type::Boolean, HostData::Bool(_)) => true,
            (Type::Integer, HostData::Int(_)) => true,
            (Type::Number, HostData::Int(_)) => true,
            (Type::Number, HostData::Float(f)) => f.is_finite(),
            (Type::String, HostData::Str(_)) => true,
            (Type::Array, HostData::List(_)) => true,
            (Type::Object, HostData::Map(_) | HostData::Record(_)) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Node {
    types: Option<Vec<Type>>,
    enum_: Option<Vec<Lit>>,
    const_: Option<Lit>,
    minimum: Option<Num>,
    maximum: Option<Num>,
    exclusive_minimum: Option<Num>,
    exclusive_maximum: Option<Num>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<Pattern>,
    items: Option<Box<Node>>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    properties: Vec<(String, Node)>,
    required: Vec<String>,
    additional_properties: Option<bool>,
}

impl Schema {
    /// Compiles a schema written as a TOML table.
    pub fn compile(source: &Lit) -> Result<Schema, String> {
        let root = node(source, 0).map_err(|e| format!("schema: {e}"))?;
        Ok(Schema {
            source: source.clone(),
            root,
        })
    }

    /// Whether `v` conforms; the error names the place (a JSON pointer) and the keyword.
    pub fn check(&self, v: &HostValue) -> Result<(), String> {
        let mut path = String::new();
        check(&self.root, v, &mut path)
    }
}

fn count(v: &Lit, key: &str) -> Result<u64, String> {
    match v {
        Lit::Num(Num::Int(i)) if *i >= 0 => Ok(*i as u64),
        _ => Err(format!("`{key}` must be a non-negative integer")),
    }
}

fn number(v: &Lit, key: &str) -> Result<Num, String> {
    match v {
        Lit::Num(n) => Ok(*n),
        _ => Err(format!("`{key}` must be a number")),
    }
}

fn node(s: &Lit, depth: usize) -> Result<Node, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH}"));
    }
    let Lit::Table(fields) = s else {
        return Err(format!("a schema must be a table, found {}", s.type_name()));
    };
    let mut n = Node::default();
    for (key, v) in fields {
        match key.as_str() {
            "type" => {
                n.types = Some(match v {
                    Lit::Str(t) => vec![Type::parse(t)?],
                    Lit::List(ts) => ts
                        .iter()
                        .map(|t| match t {
                            Lit::Str(t) => Type::parse(t),
                            _ => Err("`type` lists type names".to_string()),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err("`type` must be a type name or a list of them".into()),
                })
            }
            "enum" => match v {
                Lit::List(vs) => n.enum_ = Some(vs.clone()),
                _ => return Err("`enum` must be a list".into()),
            },
            "const" => n.const_ = Some(v.clone()),
            "minimum" => n.minimum = Some(number(v, key)?),
            "maximum" => n.maximum = Some(number(v, key)?),
            "exclusiveMinimum" => n.exclusive_minimum = Some(number(v, key)?),
            "exclusiveMaximum" => n.exclusive_maximum = Some(number(v, key)?),
            "minLength" => n.min_length = Some(count(v, key)?),
            "maxLength" => n.max_length = Some(count(v, key)?),
            "minItems" => n.min_items = Some(count(v, key)?),
            "maxItems" => n.max_items = Some(count(v, key)?),
            "pattern" => match v {
                Lit::Str(p) => n.pattern = Some(Pattern::new(p)?),
                _ => return Err("`pattern` must be a string".into()),
            },
            "items" => n.items = Some(Box::new(node(v, depth + 1)?)),
            "properties" => match v {
                Lit::Table(props) => {
                    for (name, sub) in props {
                        n.properties.push((name.clone(), node(sub, depth + 1)?));
                    }
                }
                _ => return Err("`properties` must be a table".into()),
            },
            "required" => match v {
                Lit::List(names) => {
                    for name in names {
                        match name {
                            Lit::Str(s) => n.required.push(s.clone()),
                            _ => return Err("`required` lists property names".into()),
                        }
                    }
                }
                _ => return Err("`required` must be a list".into()),
            },
            "additionalProperties" => match v {
                Lit::Bool(b) => n.additional_properties = Some(*b),
                _ => return Err("`additionalProperties` must be true or false here".into()),
            },
            "title" | "description" => {}
            other => {
                return Err(format!(
                    "unsupported keyword `{other}` (supported: type, enum, const, minimum, maximum, \
                     exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern, items, minItems, \
                     maxItems, properties, required, additionalProperties)"
                ))
            }
        }
    }
    Ok(n)
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

fn fail<T>(path: &str, msg: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("at {}: {msg}", at(path)))
}

fn check(n: &Node, v: &HostValue, path: &mut String) -> Result<(), String> {
    if let Some(types) = &n.types {
        if !types.iter().any(|t| t.admits(v)) {
            let want: Vec<String> = types
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect();
            return fail(
                path,
                format!("expected {}, found {}", want.join(" or "), json_kind(v)),
            );
        }
    }
    if let Some(vs) = &n.enum_ {
        if !vs.iter().any(|l| lit_matches(l, v)) {
            return fail(path, "not one of the `enum` values");
        }
    }
    if let Some(c) = &n.const_ {
        if !lit_matches(c, v) {
            return fail(path, "not the `const` value");
        }
    }
    let num = match v.data {
        HostData::Int(i) => Some(Num::Int(i)),
        HostData::Float(f) => Some(Num::Float(f)),
        _ => None,
    };
    if let Some(x) = num {
        let bounds = [
            (
                n.minimum,
                "minimum",
                &[Ordering::Greater, Ordering::Equal][..],
            ),
            (n.maximum, "maximum", &[Ordering::Less, Ordering::Equal][..]),
            (
                n.exclusive_minimum,
                "exclusiveMinimum",
                &[Ordering::Greater][..],
            ),
            (
                n.exclusive_maximum,
                "exclusiveMaximum",
                &[Ordering::Less][..],
            ),
        ];
        for (bound, key, ok) in bounds {
            if let Some(b) = bound {
                // NaN compares as nothing, so it fails every bound.
                if !compare(x, b).is_some_and(|o| ok.contains(&o)) {
                    return fail(path, format!("{x} is outside `{key}` {b}"));
                }
            }
        }
    }
    if let HostData::Str(s) = &v.data {
        let len = s.chars().count() as u64;
        if n.min_length.is_some_and(|m| len < m) || n.max_length.is_some_and(|m| len > m) {
            return fail(
                path,
                format!("a string of {len} characters is outside the length limits"),
            );
        }
        if let Some(p) = &n.pattern {
            if !p.full_match(s) {
                return fail(
                    path,
                    format!("does not match the pattern {:?} as a whole", p.source()),
                );
            }
        }
    }
    if let HostData::List(items) = &v.data {
        let len = items.len() as u64;
        if n.min_items.is_some_and(|m| len < m) || n.max_items.is_some_and(|m| len > m) {
            return fail(
                path,
                format!("a list of {len} items is outside the length limits"),
            );
        }
        if let Some(item) = &n.items {
            for (i, x) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                check(item, x, path)?;
                path.truncate(len);
            }
        }
    }
    let fields: Option<Vec<(String, &HostValue)>> = match &v.data {
        HostData::Record(fs) => Some(fs.iter().map(|(k, x)| (k.clone(), x)).collect()),
        HostData::Map(ps) => Some(
            ps.iter()
                .map(|(k, x)| {
                    let k = match k {
                        Key::Str(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                    };
                    (k, x)
                })
                .collect(),
        ),
        _ => None,
    };
    if let Some(fields) = fields {
        for r in &n.required {
            if !fields.iter().any(|(k, _)| k == r) {
                return fail(path, format!("the required property `{r}` is absent"));
            }
        }
        for (k, x) in &fields {
            let len = path.len();
            path.push('/');
            path.push_str(&k.replace('~', "~0").replace('/', "~1"));
            match n.properties.iter().find(|(name, _)| name == k) {
                Some((_, sub)) => check(sub, x, path)?,
                None if n.additional_properties == Some(false) => {
                    path.truncate(len);
                    return fail(path, format!("the property `{k}` is not allowed"));
                }
                None => {}
            }
            path.truncate(len);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(toml_text: &str) -> Result<Schema, String> {
        #[derive(serde::Deserialize)]
        struct W {
            s: Lit,
        }
        let w: W = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Schema::compile(&w.s)
    }

    fn rec(fields: Vec<(&str, HostValue)>) -> HostValue {
        HostValue::new(HostData::Record(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ))
    }

    #[test]
    fn types_are_strict() {
        let s = schema(r#"s = { type = "integer", minimum = 0, maximum = 1000 }"#).unwrap();
        assert!(s.check(&HostValue::int(5)).is_ok());
        assert!(s
            .check(&HostValue::str("100"))
            .unwrap_err()
            .contains("expected integer, found string"));
        assert!(s.check(&HostValue::new(HostData::Float(5.0))).is_err());
        assert!(s
            .check(&HostValue::int(1001))
            .unwrap_err()
            .contains("maximum"));
        assert!(s.check(&HostValue::int(-1)).is_err());
        let n = schema(r#"s = { type = "number", maximum = 1e3 }"#).unwrap();
        assert!(n.check(&HostValue::new(HostData::Float(f64::NAN))).is_err());
        assert!(n
            .check(&HostValue::new(HostData::Float(f64::INFINITY)))
            .is_err());
        assert!(n.check(&HostValue::new(HostData::Float(1e308))).is_err());
        assert!(n.check(&HostValue::new(HostData::Float(-0.0))).is_ok());
    }

    #[test]
    fn strings_lists_and_objects() {
        let s = schema(
            r#"s = { type = "object", required = ["to"], additionalProperties = false, properties = { to = { type = "string", maxLength = 5, pattern = "[a-z]+" }, tags = { type = "array", maxItems = 2, items = { enum = ["a", "b"] } } } }"#,
        )
        .unwrap();
        assert!(s.check(&rec(vec![("to", HostValue::str("bob"))])).is_ok());
        let e = s
            .check(&rec(vec![("to", HostValue::str("bobbies"))]))
            .unwrap_err();
        assert!(e.starts_with("at /to:"), "{e}");
        assert!(s
            .check(&rec(vec![("to", HostValue::str("bob1"))]))
            .unwrap_err()
            .contains("pattern"));
        assert!(s
            .check(&rec(vec![]))
            .unwrap_err()
            .contains("required property `to`"));
        let extra = rec(vec![
            ("to", HostValue::str("b")),
            ("cc", HostValue::str("x")),
        ]);
        assert!(s.check(&extra).unwrap_err().contains("`cc` is not allowed"));
        let tags = |xs: Vec<&str>| {
            rec(vec![
                ("to", HostValue::str("b")),
                (
                    "tags",
                    HostValue::new(HostData::List(xs.into_iter().map(HostValue::str).collect())),
                ),
            ])
        };
        assert!(s.check(&tags(vec!["a", "b"])).is_ok());
        assert!(s
            .check(&tags(vec!["a", "c"]))
            .unwrap_err()
            .starts_with("at /tags/1:"));
        assert!(s.check(&tags(vec!["a", "b", "a"])).is_err());
    }

    #[test]
    fn unknown_keywords_and_bad_values_are_refused() {
        assert!(schema(r#"s = { type = "string", format = "email" }"#)
            .unwrap_err()
            .contains("`format`"));
        assert!(schema(r#"s = { type = "text" }"#)
            .unwrap_err()
            .contains("unknown schema type"));
        assert!(schema(r#"s = { maxLength = -1 }"#).is_err());
        assert!(schema(r#"s = { pattern = "(" }"#).is_err());
        assert!(schema(r#"s = "string""#).is_err());
        let mut deep = String::from("{ type = \"array\" }");
        for _ in 0..40 {
            deep = format!("{{ items = {deep} }}");
        }
        assert!(schema(&format!("s = {deep}"))
            .unwrap_err()
            .contains("deeper"));
    }
}
