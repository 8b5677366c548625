//! `schema.conform` and `core.error_with`: conversions (record order, ints as numbers,
//! missing optional fields), the JSON-pointer paths of mismatches, hostile schemas and values
//! (cycles, nesting, exponential `anyOf`), and a property test over random values and the
//! exact schema of each.

mod common;
mod interp_support;

use aivm_vm::format::Instr::*;
use aivm_vm::{HostData, HostValue};
use common::Rng;
use interp_support::*;
use serde_json::json;

/// Parses `value` and `schema` (JSON texts) in the VM and conforms the one to the other; the
/// module also holds a record shape constant for each of `shapes`.
fn conform_with(value: &str, schema: &str, shapes: &[&[&str]]) -> Result<HostValue, String> {
    let mut b = Builder::new();
    let parse = b.native("json.parse");
    let conform = b.native("schema.conform");
    let kv = b.kstr(value);
    let ks = b.kstr(schema);
    for s in shapes {
        b.shape(s);
    }
    let m = b.main(
        3,
        vec![
            LoadConst { dst: 0, k: kv },
            CallNative {
                dst: 0,
                native: parse,
                args: rr(0, 1),
            },
            LoadConst { dst: 1, k: ks },
            CallNative {
                dst: 1,
                native: parse,
                args: rr(1, 1),
            },
            CallNative {
                dst: 2,
                native: conform,
                args: rr(0, 2),
            },
            Return { src: 2 },
        ],
    );
    let out = run(m);
    match out.result {
        Ok(v) => Ok(v),
        Err(aivm_vm::VmError::Uncaught { kind, message, .. }) => Err(format!("{kind}: {message}")),
        Err(e) => panic!("{e}"),
    }
}

fn conform(value: &str, schema: &str) -> Result<HostValue, String> {
    conform_with(value, schema, &[])
}

const TICKET: &str = r#"{
  "type": "object",
  "properties": {
    "title": {"type": "string"},
    "priority": {"type": "string", "enum": ["low", "high"]},
    "tags": {"type": "array", "items": {"type": "string"}},
    "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "score": {"type": "number"}
  },
  "required": ["title", "priority", "tags", "note", "score"],
  "additionalProperties": false
}"#;

fn names(v: &HostValue) -> Vec<String> {
    match &v.data {
        HostData::Record(fields) => fields.iter().map(|(k, _)| k.clone()).collect(),
        HostData::Map(pairs) => pairs.iter().map(|(k, _)| format!("{k:?}")).collect(),
        other => panic!("not an object: {other:?}"),
    }
}

#[test]
fn objects_take_the_schemas_order_and_become_records_when_the_shape_exists() {
    let answer = r#"{"score": 3, "tags": ["a"], "priority": "low", "title": "T"}"#;
    let shape: &[&str] = &["title", "priority", "tags", "note", "score"];
    let v = conform_with(answer, TICKET, &[shape]).unwrap();
    assert_eq!(names(&v), shape);
    assert_eq!(
        v.to_json(),
        json!({"title": "T", "priority": "low", "tags": ["a"], "note": null, "score": 3.0})
    );
    let HostData::Record(fields) = &v.data else {
        panic!()
    };
    assert_eq!(
        fields[4].1.data,
        HostData::Float(3.0),
        "ints are made floats"
    );
    // Without the shape in the module: a map, in the same order.
    let v = conform(answer, TICKET).unwrap();
    assert!(matches!(v.data, HostData::Map(_)));
    assert_eq!(
        serde_json::to_string(&v.to_json()).unwrap(),
        r#"{"title":"T","priority":"low","tags":["a"],"note":null,"score":3.0}"#
    );
}

#[test]
fn mismatches_name_their_place_by_json_pointer() {
    let cases = [
        (
            r#"{"title": "T", "priority": "low", "tags": ["a", 7], "score": 1}"#,
            "ValueError: at /tags/1: expected string, found int",
        ),
        (
            r#"{"title": "T", "priority": "mid", "tags": [], "score": 1}"#,
            r#"ValueError: at /priority: expected one of "low", "high", found "mid""#,
        ),
        (
            r#"{"priority": "low", "tags": [], "score": 1}"#,
            r#"ValueError: at the top level: missing required field "title""#,
        ),
        (
            r#"{"title": "T", "priority": "low", "tags": [], "score": 1, "x": 2}"#,
            r#"ValueError: at the top level: unexpected field "x" (allowed: title, priority, tags, note, score)"#,
        ),
        (
            r#"{"title": "T", "priority": "low", "tags": [], "note": 5, "score": 1}"#,
            "ValueError: at /note: expected string or null, found int",
        ),
        (
            r#"{"title": "T", "priority": "low", "tags": [], "score": "high"}"#,
            "ValueError: at /score: expected number, found string",
        ),
        (
            r#""just text""#,
            "ValueError: at the top level: expected object, found string",
        ),
    ];
    for (value, want) in cases {
        assert_eq!(conform(value, TICKET).unwrap_err(), want, "{value}");
    }
    // Pointer escapes: `/` and `~` in keys.
    let schema = r#"{"type": "object", "properties": {"a/b~c": {"type": "integer"}}}"#;
    assert_eq!(
        conform(r#"{"a/b~c": true}"#, schema).unwrap_err(),
        "ValueError: at /a~1b~0c: expected integer, found bool"
    );
    // The deepest failure of an anyOf is the one reported.
    let schema = r#"{"anyOf": [{"type": "object", "properties": {"n": {"type": "integer"}},
        "required": ["n"]}, {"type": "null"}]}"#;
    assert_eq!(
        conform(r#"{"n": "one"}"#, schema).unwrap_err(),
        "ValueError: at /n: expected integer, found string"
    );
    assert_eq!(
        conform(r#"{}"#, schema).unwrap_err(),
        r#"ValueError: at the top level: missing required field "n""#
    );
    assert_eq!(
        conform(r#""n""#, schema).unwrap_err(),
        "ValueError: at the top level: expected object or null, found string"
    );
    // An enum mismatch is about the value, not its type: it is the one reported.
    let schema = r#"{"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]}"#;
    assert_eq!(
        conform(r#""b""#, schema).unwrap_err(),
        r#"ValueError: at the top level: expected one of "a", found "b""#
    );
}

#[test]
fn numbers_integers_constants_and_maps() {
    assert_eq!(
        conform("3", r#"{"type": "number"}"#).unwrap().data,
        HostData::Float(3.0)
    );
    assert_eq!(
        conform("3.0", r#"{"type": "integer"}"#).unwrap().data,
        HostData::Int(3)
    );
    assert_eq!(
        conform("3.5", r#"{"type": "integer"}"#).unwrap_err(),
        "ValueError: at the top level: expected integer, found float"
    );
    assert_eq!(
        conform(r#""b""#, r#"{"const": "a"}"#).unwrap_err(),
        r#"ValueError: at the top level: expected "a", found "b""#
    );
    assert_eq!(
        conform("null", r#"{"type": ["string", "null"]}"#)
            .unwrap()
            .data,
        HostData::Null
    );
    let dict = r#"{"type": "object", "additionalProperties": {"type": "number"}}"#;
    assert_eq!(
        conform(r#"{"b": 1, "a": 2.5}"#, dict).unwrap().to_json(),
        json!({"b": 1.0, "a": 2.5})
    );
    assert_eq!(
        conform(r#"{"b": 1, "a": "x"}"#, dict).unwrap_err(),
        "ValueError: at /a: expected number, found string"
    );
    // `{}` and `true` accept anything, `false` nothing.
    assert_eq!(conform("[1]", "{}").unwrap().to_json(), json!([1]));
    assert_eq!(conform("[1]", "true").unwrap().to_json(), json!([1]));
    assert_eq!(
        conform("1", "false").unwrap_err(),
        "ValueError: at the top level: no value is allowed here"
    );
}

#[test]
fn invalid_schemas_are_reported_as_such() {
    assert_eq!(
        conform("1", r#"{"type": "int"}"#).unwrap_err(),
        r#"ValueError: schema.conform: invalid schema for the value at the top level: unknown type "int""#
    );
    assert_eq!(
        conform("[1]", r#"{"type": "array", "items": 5}"#).unwrap_err(),
        "ValueError: schema.conform: invalid schema for the value at /0: a schema is an object or a bool, found int"
    );
    // A mismatch inside an anyOf branch does not hide a broken schema in another.
    assert!(
        conform("1", r#"{"anyOf": [{"type": "string"}, {"anyOf": 3}]}"#)
            .unwrap_err()
            .contains("`anyOf` must be a non-empty list")
    );
}

/// Builds, in the VM, a map `s` with `s[key] = s` (or `[s]` with `wrap`: a schema that
/// contains itself) and a value `v`, then conforms `v` to `s`.
fn cyclic(
    schema_extra: &[(&str, &str)],
    key: &str,
    wrap: bool,
    value: &str,
) -> Result<HostValue, String> {
    let mut b = Builder::new();
    let parse = b.native("json.parse");
    let conform = b.native("schema.conform");
    let kv = b.kstr(value);
    let kk = b.kstr(key);
    let mut code = vec![
        NewMap {
            dst: 0,
            kvs: rr(0, 0),
        },
        LoadConst { dst: 1, k: kk },
        NewList {
            dst: 2,
            items: rr(0, 1),
        },
        SetIndex {
            obj: 0,
            key: 1,
            src: if wrap { 2 } else { 0 },
        },
    ];
    for (k, v) in schema_extra {
        let kk = b.kstr(k);
        let kv = b.kstr(v);
        code.extend([
            LoadConst { dst: 1, k: kk },
            LoadConst { dst: 2, k: kv },
            CallNative {
                dst: 2,
                native: parse,
                args: rr(2, 1),
            },
            SetIndex {
                obj: 0,
                key: 1,
                src: 2,
            },
        ]);
    }
    code.extend([
        LoadConst { dst: 3, k: kv },
        CallNative {
            dst: 3,
            native: parse,
            args: rr(3, 1),
        },
        Move { dst: 4, src: 0 },
        CallNative {
            dst: 5,
            native: conform,
            args: rr(3, 2),
        },
        Return { src: 5 },
    ]);
    let out = run(b.main(6, code));
    match out.result {
        Ok(v) => Ok(v),
        Err(aivm_vm::VmError::Uncaught { kind, message, .. }) => Err(format!("{kind}: {message}")),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn self_containing_schemas_and_deep_values_are_bounded() {
    // items = the schema itself: fine for a shallow value, refused past the depth bound.
    let shallow = "[[[]]]";
    assert_eq!(
        cyclic(&[("type", "\"array\"")], "items", false, shallow)
            .unwrap()
            .to_json(),
        json!([[[]]])
    );
    let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
    assert!(cyclic(&[], "items", false, &deep).is_ok());
    // anyOf = [the schema itself]: no progress in the value, stopped by the depth bound.
    let e = cyclic(&[], "anyOf", true, "1").unwrap_err();
    assert!(e.contains("nested more than 128 deep"), "{e}");
}

#[test]
fn exponential_any_of_is_stopped_by_the_step_budget() {
    // S = {"anyOf": [T, T, T]} with T = {"type": "array", "items": S}, against lists nested
    // 60 deep around an int: every branch fails only at the bottom, 3^60 ways.
    let mut b = Builder::new();
    let parse = b.native("json.parse");
    let conform = b.native("schema.conform");
    let value = format!("{}1{}", "[".repeat(60), "]".repeat(60));
    let kv = b.kstr(&value);
    let k_anyof = b.kstr("anyOf");
    let k_items = b.kstr("items");
    let k_type = b.kstr("type");
    let k_array = b.kstr("array");
    let m = b.main(
        8,
        vec![
            // r0 = S, r1 = T
            NewMap {
                dst: 0,
                kvs: rr(0, 0),
            },
            LoadConst { dst: 2, k: k_type },
            LoadConst { dst: 3, k: k_array },
            LoadConst { dst: 4, k: k_items },
            Move { dst: 5, src: 0 },
            NewMap {
                dst: 1,
                kvs: rr(2, 4),
            },
            Move { dst: 2, src: 1 },
            Move { dst: 3, src: 1 },
            Move { dst: 4, src: 1 },
            NewList {
                dst: 5,
                items: rr(2, 3),
            },
            LoadConst { dst: 6, k: k_anyof },
            SetIndex {
                obj: 0,
                key: 6,
                src: 5,
            },
            LoadConst { dst: 6, k: kv },
            CallNative {
                dst: 6,
                native: parse,
                args: rr(6, 1),
            },
            Move { dst: 7, src: 0 },
            CallNative {
                dst: 5,
                native: conform,
                args: rr(6, 2),
            },
            Return { src: 5 },
        ],
    );
    let started = std::time::Instant::now();
    let (kind, message) = run(m).uncaught();
    assert_eq!(kind, "ValueError");
    assert!(message.contains("too complex"), "{message}");
    assert!(started.elapsed().as_secs() < 60);
}

#[test]
fn error_with_carries_a_payload() {
    let mut b = Builder::new();
    let native = b.native("core.error_with");
    let parse = b.native("json.parse");
    let kk = b.kstr("MaxTurns");
    let km = b.kstr("the model asked for tools 8 times");
    let kp = b.kstr(r#"{"conversation": [1, 2]}"#);
    let payload = b.str("payload");
    let kind = b.str("kind");
    let m = b.main(
        6,
        vec![
            LoadConst { dst: 0, k: kk },
            LoadConst { dst: 1, k: km },
            LoadConst { dst: 2, k: kp },
            CallNative {
                dst: 2,
                native: parse,
                args: rr(2, 1),
            },
            CallNative {
                dst: 3,
                native,
                args: rr(0, 3),
            },
            TryBegin { err: 4, handler: 7 },
            Throw { src: 3 },
            GetField {
                dst: 5,
                obj: 4,
                name: payload,
            },
            GetField {
                dst: 4,
                obj: 4,
                name: kind,
            },
            NewList {
                dst: 0,
                items: rr(4, 2),
            },
            Return { src: 0 },
        ],
    );
    let v = run(m).result.unwrap();
    assert_eq!(v.to_json(), json!(["MaxTurns", {"conversation": [1, 2]}]));
}

/// A random JSON value and the exact schema of it (integers as "integer", so nothing is
/// converted), with the pointers of its leaves.
fn random_value(rng: &mut Rng, depth: usize) -> (serde_json::Value, serde_json::Value) {
    let pick = if depth > 3 {
        rng.below(4)
    } else {
        rng.below(7)
    };
    match pick {
        0 => (json!(null), json!({"type": "null"})),
        1 => (json!(rng.chance(50)), json!({"type": "boolean"})),
        2 => (
            json!(rng.below(1000) as i64 - 500),
            json!({"type": "integer"}),
        ),
        3 => {
            let s = ["a", "b/c", "é", "x~y", ""][rng.below(5)];
            if rng.chance(30) {
                (json!(s), json!({"type": "string", "enum": ["zz", s]}))
            } else {
                (json!(s), json!({"type": "string"}))
            }
        }
        4 | 5 => {
            // An array of one element type: every item has the same schema.
            let (first, schema) = random_value(rng, depth + 1);
            let n = rng.below(4);
            let items: Vec<serde_json::Value> = (0..n).map(|_| first.clone()).collect();
            (json!(items), json!({"type": "array", "items": schema}))
        }
        _ => {
            let mut obj = serde_json::Map::new();
            let mut props = serde_json::Map::new();
            let mut required = vec![];
            for k in ["id", "na/me", "tags", "x"].iter().take(1 + rng.below(4)) {
                let (v, s) = random_value(rng, depth + 1);
                obj.insert(k.to_string(), v);
                props.insert(k.to_string(), s);
                required.push(json!(k));
            }
            (
                json!(obj),
                json!({"type": "object", "properties": props, "required": required,
                       "additionalProperties": false}),
            )
        }
    }
}

/// The JSON pointers of the leaves (non-container values) of `v`.
fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                leaves(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                leaves(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => out.push(at),
    }
}

#[test]
fn random_values_conform_to_their_own_schema_and_a_changed_leaf_is_found() {
    let mut rng = Rng(0x5eed_cafe);
    for _ in 0..150 {
        let (v, s) = random_value(&mut rng, 0);
        let text = v.to_string();
        let got = conform(&text, &s.to_string()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got.to_json(), v, "{text}");
        // Replace one leaf with an object: no leaf schema accepts one.
        let mut ptrs = vec![];
        leaves(&v, String::new(), &mut ptrs);
        if ptrs.is_empty() {
            continue;
        }
        let ptr = &ptrs[rng.below(ptrs.len())];
        let mut bad = v.clone();
        *bad.pointer_mut(ptr).unwrap() = json!({"oops": 1});
        let e = conform(&bad.to_string(), &s.to_string()).unwrap_err();
        let at = if ptr.is_empty() {
            "the top level".to_string()
        } else {
            ptr.clone()
        };
        assert!(
            e.starts_with(&format!("ValueError: at {at}: expected ")) && e.ends_with("found map"),
            "{bad}: {e}"
        );
    }
}
