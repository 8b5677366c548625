//! Canonical JSON of tool arguments and the payload hash an approval is bound to. Canonical:
//! object keys sorted by their UTF-8 bytes, no spaces, ints as ints, floats in their
//! shortest round-trip form (always with `.` or `e`, so `1.0` never reads back as an int),
//! strings with only the escapes JSON requires. NaN and infinities have no JSON form and
//! are an error, as are two keys that become the same string (`1` and `"1"` in a map).

use sha2::{Digest, Sha256};

use crate::host_value::{HostData, HostValue};
use crate::label::{Integrity, LabelInfo};
use crate::value::Key;

/// Why a value has no canonical JSON form.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CanonicalError {
    #[error("the number {0} has no JSON form")]
    NotFinite(f64),
    #[error("the key {0:?} appears twice in one object")]
    DuplicateKey(String),
}

/// The canonical JSON text of a value (labels left out; errors as `{"kind","message"}`,
/// functions by name and tasks as `"<task N>"`, as `HostValue::to_json` shows them).
pub fn canonical_json(v: &HostValue) -> Result<String, CanonicalError> {
    let mut w = Writer::default();
    w.run(Item::Value(v))?;
    Ok(w.out)
}

/// The canonical JSON of named arguments: an object with the names as keys.
pub fn canonical_args(args: &[(String, HostValue)]) -> Result<String, CanonicalError> {
    let mut w = Writer::default();
    let entries = args.iter().map(|(k, v)| (k.clone(), v)).collect();
    w.run(Item::Object(entries))?;
    Ok(w.out)
}

/// The deep label of each argument, canonically: `{"name":{"integrity":"untrusted",
/// "readers":["alice"]}}` (`readers` left out when public), keys sorted.
pub fn labels_json(args: &[(String, HostValue)]) -> String {
    let mut sorted: Vec<(&str, LabelInfo)> = args
        .iter()
        .map(|(k, v)| (k.as_str(), v.deep_label()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::from("{");
    for (i, (name, l)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, name);
        out.push_str(":{\"integrity\":");
        out.push_str(match l.integrity {
            Integrity::Trusted => "\"trusted\"",
            Integrity::Untrusted => "\"untrusted\"",
        });
        if let Some(r) = &l.readers {
            out.push_str(",\"readers\":[");
            for (j, p) in r.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_str(&mut out, p);
            }
            out.push(']');
        }
        out.push('}');
    }
    out.push('}');
    out
}

/// The hash an approval is bound to: SHA-256 (hex) over the tool, its canonical arguments,
/// their labels, the deciding rule, the run id and a one-time nonce. Each field is
/// length-prefixed, so no two different payloads share an encoding.
pub fn payload_hash(
    tool: &str,
    canonical_args: &str,
    labels: &str,
    rule: &str,
    run: &str,
    nonce: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"aivm-approval-v1\0");
    for field in [tool, canonical_args, labels, rule, run, nonce] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex(&h.finalize())
}

/// SHA-256 of canonical arguments, in lower-case hex: what a `decision` event records of them.
pub fn args_hash(canonical_args: &str) -> String {
    hex(&Sha256::digest(canonical_args.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum Item<'a> {
    Value(&'a HostValue),
    Object(Vec<(String, &'a HostValue)>),
    Text(&'static str),
    Key(String),
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    /// Writes an item with an explicit stack: a host value may be nested any depth.
    fn run<'a>(&mut self, first: Item<'a>) -> Result<(), CanonicalError> {
        let mut stack = vec![first];
        while let Some(item) = stack.pop() {
            match item {
                Item::Text(t) => self.out.push_str(t),
                Item::Key(k) => {
                    push_str(&mut self.out, &k);
                    self.out.push(':');
                }
                Item::Object(mut entries) => {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    for pair in entries.windows(2) {
                        if let [(a, _), (b, _)] = pair {
                            if a == b {
                                return Err(CanonicalError::DuplicateKey(a.clone()));
                            }
                        }
                    }
                    self.out.push('{');
                    stack.push(Item::Text("}"));
                    for (i, (k, v)) in entries.into_iter().enumerate().rev() {
                        stack.push(Item::Value(v));
                        stack.push(Item::Key(k));
                        if i > 0 {
                            stack.push(Item::Text(","));
                        }
                    }
                }
                Item::Value(v) => match &v.data {
                    HostData::Null => self.out.push_str("null"),
                    HostData::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
                    HostData::Int(i) => self.out.push_str(&i.to_string()),
                    HostData::Float(f) => {
                        if !f.is_finite() {
                            return Err(CanonicalError::NotFinite(*f));
                        }
                        self.out.push_str(ryu::Buffer::new().format_finite(*f));
                    }
                    HostData::Str(s) | HostData::Func(s) => push_str(&mut self.out, s),
                    HostData::Task(t) => push_str(&mut self.out, &format!("<task {t}>")),
                    HostData::Error { kind, message } => {
                        self.out.push_str("{\"kind\":");
                        push_str(&mut self.out, kind);
                        self.out.push_str(",\"message\":");
                        push_str(&mut self.out, message);
                        self.out.push('}');
                    }
                    HostData::List(items) => {
                        self.out.push('[');
                        stack.push(Item::Text("]"));
                        for (i, x) in items.iter().enumerate().rev() {
                            stack.push(Item::Value(x));
                            if i > 0 {
                                stack.push(Item::Text(","));
                            }
                        }
                    }
                    HostData::Record(fields) => stack.push(Item::Object(
                        fields.iter().map(|(k, x)| (k.clone(), x)).collect(),
                    )),
                    HostData::Map(pairs) => stack.push(Item::Object(
                        pairs
                            .iter()
                            .map(|(k, x)| {
                                let k = match k {
                                    Key::Str(s) => s.to_string(),
                                    Key::Int(i) => i.to_string(),
                                };
                                (k, x)
                            })
                            .collect(),
                    )),
                },
            }
        }
        Ok(())
    }
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
/// escapes, everything else as is.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: Vec<(&str, HostValue)>) -> HostValue {
        HostValue::new(HostData::Record(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ))
    }

    fn f(x: f64) -> HostValue {
        HostValue::new(HostData::Float(x))
    }

    #[test]
    fn sorted_compact_and_typed() {
        let v = rec(vec![
            ("b", HostValue::int(1)),
            (
                "a",
                HostValue::new(HostData::List(vec![f(1.0), f(0.1), f(1e300), f(-0.0)])),
            ),
            ("é", HostValue::str("x\"y\\\n\u{1}\u{202e}")),
            ("B", HostValue::null()),
        ]);
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"B\":null,\"a\":[1.0,0.1,1e300,-0.0],\"b\":1,\"é\":\"x\\\"y\\\\\\n\\u0001\u{202e}\"}"
        );
        // What canonical JSON says parses back to the same JSON value.
        let back: serde_json::Value = serde_json::from_str(&canonical_json(&v).unwrap()).unwrap();
        assert_eq!(back["b"], 1);
        assert!(back["a"][0].is_f64());
    }

    #[test]
    fn order_of_fields_does_not_matter_and_values_do() {
        let a = rec(vec![("x", HostValue::int(1)), ("y", HostValue::str("s"))]);
        let b = rec(vec![("y", HostValue::str("s")), ("x", HostValue::int(1))]);
        let c = rec(vec![("y", HostValue::str("s")), ("x", f(1.0))]);
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_ne!(canonical_json(&a), canonical_json(&c));
    }

    #[test]
    fn not_representable_is_an_error() {
        assert!(matches!(
            canonical_json(&f(f64::NAN)),
            Err(CanonicalError::NotFinite(_))
        ));
        assert!(matches!(
            canonical_json(&f(f64::NEG_INFINITY)),
            Err(CanonicalError::NotFinite(_))
        ));
        let m = HostValue::new(HostData::Map(vec![
            (Key::Int(1), HostValue::int(1)),
            (Key::Str("1".into()), HostValue::int(2)),
        ]));
        assert_eq!(
            canonical_json(&m),
            Err(CanonicalError::DuplicateKey("1".into()))
        );
    }

    #[test]
    fn deep_values_do_not_overflow() {
        let mut v = HostValue::int(0);
        for _ in 0..100_000 {
            v = HostValue::new(HostData::List(vec![v]));
        }
        let s = canonical_json(&v).unwrap();
        assert_eq!(s.len(), 200_001);
        // Take the tree apart by hand: dropping it recursively would overflow.
        while let HostData::List(mut items) = std::mem::replace(&mut v.data, HostData::Null) {
            match items.pop() {
                Some(inner) => v = inner,
                None => break,
            }
        }
    }

    #[test]
    fn hash_binds_every_field() {
        let base = payload_hash("t", "{}", "{}", "r", "run", "n");
        assert_eq!(base.len(), 64);
        assert_eq!(base, payload_hash("t", "{}", "{}", "r", "run", "n"));
        for other in [
            payload_hash("u", "{}", "{}", "r", "run", "n"),
            payload_hash("t", "{ }", "{}", "r", "run", "n"),
            payload_hash("t", "{}", "{}x", "r", "run", "n"),
            payload_hash("t", "{}", "{}", "r2", "run", "n"),
            payload_hash("t", "{}", "{}", "r", "run2", "n"),
            payload_hash("t", "{}", "{}", "r", "run", "n2"),
            // Moving a byte from one field to the next changes the hash (length prefixes).
            payload_hash("t{", "}", "{}", "r", "run", "n"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn labels_text() {
        let secret = LabelInfo {
            integrity: Integrity::Untrusted,
            readers: Some(["bob".to_string(), "alice".to_string()].into()),
        };
        let args = vec![
            ("to".to_string(), HostValue::str("x")),
            ("body".to_string(), HostValue::str("y").labelled(secret)),
        ];
        assert_eq!(
            labels_json(&args),
            "{\"body\":{\"integrity\":\"untrusted\",\"readers\":[\"alice\",\"bob\"]},\"to\":{\"integrity\":\"trusted\"}}"
        );
        assert_eq!(
            canonical_args(&args).unwrap(),
            "{\"body\":\"y\",\"to\":\"x\"}"
        );
    }
}
