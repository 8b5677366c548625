//! `core.*`: length, text, conversions, type names, error values and labels.

use super::{arg, type_err, Ctx, NativeFn};
use crate::error::{kind, Raise, R};
use crate::heap::{char_count, ErrorObj, Obj};
use crate::value::{Kind, Value};

pub(super) fn lookup(name: &str) -> Option<NativeFn> {
    Some(match name {
        "core.len" => len,
        "core.str" => str,
        "core.int" => int,
        "core.float" => float,
        "core.type_of" => type_of,
        "core.error" => error,
        "core.error_with" => error_with,
        "core.label_of" => label_of,
        _ => return None,
    })
}

fn len(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let v = arg(args, 0);
    let n = match v.kind() {
        Kind::Str(s) => char_count(cx.heap.str(s)?, cx.heap.str_is_ascii(s)?),
        Kind::List(o) => cx.heap.list(o)?.len(),
        Kind::Map(o) => cx.heap.map(o)?.entries.len(),
        Kind::Record(o) => cx.heap.record(o)?.vals.len(),
        _ => return Err(type_err("len", "a string, list or map", v)),
    };
    Ok(Value::int(n as i64))
}

fn str(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let v = arg(args, 0);
    if let Kind::Str(_) = v.kind() {
        return Ok(v);
    }
    let text = cx.text(v)?;
    let label = cx.text_label(v)?;
    Ok(cx.new_str(text)?.labelled(label))
}

/// A float as an int, truncating toward zero; NaN and out-of-range values are errors.
pub(super) fn float_to_int(f: f64, what: &str) -> R<i64> {
    if f.is_nan() {
        return Err(Raise::rt(
            kind::VALUE,
            format!("{what}: cannot convert NaN to an int"),
        ));
    }
    let t = f.trunc();
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
        return Err(Raise::rt(
            kind::OVERFLOW,
            format!("{what}: {f} is out of the int range"),
        ));
    }
    Ok(t as i64)
}

fn int(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let v = arg(args, 0);
    let i = match v.kind() {
        Kind::Int(i) => i,
        Kind::Float(f) => float_to_int(f, "int")?,
        Kind::Bool(b) => b as i64,
        Kind::Str(s) => {
            let text = cx.heap.str(s)?;
            text.trim().parse::<i64>().map_err(|_| {
                Raise::rt(
                    kind::VALUE,
                    format!("int: \"{}\" is not an integer", text.trim()),
                )
            })?
        }
        _ => return Err(type_err("int", "a number, bool or numeric string", v)),
    };
    Ok(Value::int(i))
}

fn float(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let v = arg(args, 0);
    let f = match v.kind() {
        Kind::Int(i) => i as f64,
        Kind::Float(f) => f,
        Kind::Str(s) => {
            let text = cx.heap.str(s)?;
            text.trim().parse::<f64>().map_err(|_| {
                Raise::rt(
                    kind::VALUE,
                    format!("float: \"{}\" is not a number", text.trim()),
                )
            })?
        }
        _ => return Err(type_err("float", "a number or numeric string", v)),
    };
    Ok(Value::float(f))
}

fn type_of(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    cx.new_str(arg(args, 0).type_name().to_string())
}

fn error(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let kind = cx.str_arg("error", arg(args, 0))?.to_string();
    let message = cx.str_arg("error", arg(args, 1))?.to_string();
    let o = cx.heap.alloc(Obj::Error(ErrorObj {
        kind,
        message,
        payload: Value::NULL,
    }));
    Ok(Value::new(Kind::Error(o)))
}

/// `error_with(kind, message, payload)`: an error value carrying a payload (e.g. the partial
/// conversation of an agent loop that stopped), which `e.payload` reads back.
fn error_with(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let kind = cx.str_arg("error_with", arg(args, 0))?.to_string();
    let message = cx.str_arg("error_with", arg(args, 1))?.to_string();
    let o = cx.heap.alloc(Obj::Error(ErrorObj {
        kind,
        message,
        payload: arg(args, 2),
    }));
    Ok(Value::new(Kind::Error(o)))
}

fn label_of(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let text = cx.labels.describe(arg(args, 0).label());
    cx.new_str(text)
}
