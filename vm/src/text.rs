//! The text of values, as `print`, `str` and interpolation show them (spec/semantics.md,
//! "Printing"): strings raw at top level and quoted inside collections, floats in shortest
//! round-trip form with `.0` kept, maps and records in insertion order.

use std::fmt::Write;

use crate::format::{Constant, Module};
use crate::heap::{Dangling, Heap, Obj};
use crate::label::Label;
use crate::value::{Key, Kind, ObjId, Value};

/// Collections nested deeper than this print as `...` (keeps printing off the Rust stack's edge).
const MAX_DEPTH: usize = 200;

/// Appends the text of `v` to `out`.
pub(crate) fn write_text(
    out: &mut String,
    heap: &Heap,
    module: &Module,
    v: Value,
) -> Result<(), Dangling> {
    match v.kind() {
        Kind::Str(s) => {
            out.push_str(heap.str(s)?);
            Ok(())
        }
        Kind::Int(i) => {
            push_int(out, i);
            Ok(())
        }
        _ => Printer {
            heap,
            module,
            stack: Vec::new(),
        }
        .repr(out, v),
    }
}

/// The text of `v` as a new string.
pub(crate) fn text_of(heap: &Heap, module: &Module, v: Value) -> Result<String, Dangling> {
    // Room for any int or float without growing; longer texts grow as usual.
    let mut out = String::with_capacity(24);
    write_text(&mut out, heap, module, v)?;
    Ok(out)
}

/// The labels of everything inside `v` that its text shows (items, values, keys of maps, at any
/// depth; cycles visited once), not `v`'s own: the text of a collection is as secret and as
/// untrusted as the most secret and least trusted thing it shows. Distinct non-public labels
/// are appended to `out`.
pub(crate) fn inner_labels(heap: &Heap, v: Value, out: &mut Vec<Label>) -> Result<(), Dangling> {
    let Some(root) = container(v) else {
        return Ok(());
    };
    let mut seen = vec![root];
    let mut todo = vec![root];
    let note = |l: Label, out: &mut Vec<Label>| {
        if !l.is_public() && !out.contains(&l) {
            out.push(l);
        }
    };
    while let Some(o) = todo.pop() {
        let mut visit = |item: Value, out: &mut Vec<Label>| {
            note(item.label(), out);
            if let Some(inner) = container(item) {
                if !seen.contains(&inner) {
                    seen.push(inner);
                    todo.push(inner);
                }
            }
        };
        match heap.get(o)? {
            Obj::List(items) => items.iter().for_each(|i| visit(*i, out)),
            Obj::Map(m) => {
                for e in m.entries.values() {
                    note(e.key_label, out);
                    visit(e.value, out);
                }
            }
            Obj::Record(r) => r.vals.iter().for_each(|v| visit(*v, out)),
            _ => {}
        }
    }
    Ok(())
}

/// The collection object a value shows the contents of, if it is one.
fn container(v: Value) -> Option<ObjId> {
    match v.kind() {
        Kind::List(o) | Kind::Map(o) | Kind::Record(o) => Some(o),
        _ => None,
    }
}

/// Appends a float: `NaN`, `inf`, `-inf`, or ryu's shortest round-trip form (`1.0`, `1e16`).
pub fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else {
        out.push_str(ryu::Buffer::new().format_finite(f));
    }
}

/// Appends `s` as a JSON-style quoted string.
pub fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the decimal text of `i`: the same text as `write!(out, "{i}")` without going through
/// `fmt` (printing ints is the inner loop of building text).
pub(crate) fn push_int(out: &mut String, i: i64) {
    let mut buf = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    // u64::MAX has 20 digits, so `pos` never goes below 0.
    while pos > 0 {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push('-');
    }
    if let Some(Ok(digits)) = buf.get(pos..).map(std::str::from_utf8) {
        out.push_str(digits);
    }
}

/// The field names of record shape constant `shape`.
pub(crate) fn shape_names(module: &Module, shape: u32) -> &[u32] {
    match module.constants.get(shape as usize) {
        Some(Constant::Shape(names)) => names,
        _ => &[],
    }
}

struct Printer<'a> {
    heap: &'a Heap,
    module: &'a Module,
    /// The containers being printed, to show a cycle as `[...]` instead of looping.
    stack: Vec<ObjId>,
}

impl Printer<'_> {
    fn repr(&mut self, out: &mut String, v: Value) -> Result<(), Dangling> {
        match v.kind() {
            Kind::Null => out.push_str("null"),
            Kind::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Kind::Int(i) => push_int(out, i),
            Kind::Float(f) => write_float(out, f),
            Kind::Str(s) => write_quoted(out, self.heap.str(s)?),
            Kind::Func(f) => {
                let _ = write!(out, "<fn {}>", self.module.func_name(f));
            }
            Kind::Closure(o) => {
                let f = self.heap.closure(o)?.func;
                let _ = write!(out, "<fn {}>", self.module.func_name(f));
            }
            Kind::Error(o) => {
                let e = self.heap.error(o)?;
                let _ = write!(out, "{}: {}", e.kind, e.message);
            }
            Kind::Cell(_) => out.push_str("<cell>"),
            Kind::Task(t) => {
                let _ = write!(out, "<task {t}>");
            }
            Kind::Iter(_) => out.push_str("<iterator>"),
            Kind::Range(o) => {
                let (lo, hi) = self.heap.range(o)?;
                let _ = write!(out, "{lo}..{hi}");
            }
            Kind::List(o) | Kind::Map(o) | Kind::Record(o) => self.container(out, v, o)?,
        }
        Ok(())
    }

    fn container(&mut self, out: &mut String, v: Value, o: ObjId) -> Result<(), Dangling> {
        let (open, close) = if matches!(v.kind(), Kind::List(_)) {
            ("[", "]")
        } else {
            ("{", "}")
        };
        if self.stack.contains(&o) || self.stack.len() >= MAX_DEPTH {
            out.push_str(open);
            out.push_str("...");
            out.push_str(close);
            return Ok(());
        }
        self.stack.push(o);
        out.push_str(open);
        match self.heap.get(o)? {
            Obj::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.repr(out, *item)?;
                }
            }
            Obj::Map(m) => {
                for (i, (k, e)) in m.entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    match k {
                        Key::Int(n) => {
                            let _ = write!(out, "{n}");
                        }
                        Key::Str(s) => write_quoted(out, s),
                    }
                    out.push_str(": ");
                    self.repr(out, e.value)?;
                }
            }
            Obj::Record(r) => {
                let names = shape_names(self.module, r.shape);
                for (i, (name, val)) in names.iter().zip(&r.vals).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(self.module.str(*name));
                    out.push_str(": ");
                    self.repr(out, *val)?;
                }
            }
            Obj::Str(_)
            | Obj::Closure(_)
            | Obj::Cell(_)
            | Obj::Error(_)
            | Obj::Iter(_)
            | Obj::Range(..) => return Err(Dangling(o)),
        }
        out.push_str(close);
        self.stack.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_print_like_display() {
        for i in [
            0,
            7,
            -7,
            10,
            -10,
            123456789,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            let mut s = String::from("x");
            push_int(&mut s, i);
            assert_eq!(s, format!("x{i}"));
        }
    }

    #[test]
    fn floats_print_shortest_round_trip() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e16"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (f, want) in cases {
            let mut s = String::new();
            write_float(&mut s, f);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn quoting_escapes_specials() {
        let mut s = String::new();
        write_quoted(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }
}
