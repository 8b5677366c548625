//! `string.*`: splitting, case, trimming, searching (character indices), replacing, repeating
//! and parsing numbers.

use super::{arg, Ctx, NativeFn};
use crate::error::{kind, Raise, R};
use crate::value::Value;

pub(super) fn lookup(name: &str) -> Option<NativeFn> {
    Some(match name {
        "string.split" => split,
        "string.upper" => upper,
        "string.lower" => lower,
        "string.trim" => trim,
        "string.starts_with" => starts_with,
        "string.ends_with" => ends_with,
        "string.contains" => contains,
        "string.find" => find,
        "string.replace" => replace,
        "string.chars" => chars,
        "string.repeat" => repeat,
        "string.parse_int" => parse_int,
        "string.parse_float" => parse_float,
        _ => return None,
    })
}

fn s0<'c>(cx: &'c Ctx, args: &[Value], native: &str) -> R<&'c str> {
    cx.str_arg(native, arg(args, 0))
}

fn strings(cx: &mut Ctx, parts: Vec<String>) -> R<Value> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        out.push(cx.new_str(p)?);
    }
    Ok(cx.new_list(out))
}

fn split(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let s = s0(cx, args, "split")?;
    let sep = cx.str_arg("split", arg(args, 1))?;
    if sep.is_empty() {
        return Err(Raise::rt(
            kind::VALUE,
            "split: empty separator (use string.chars)",
        ));
    }
    let parts: Vec<String> = s.split(sep).map(str::to_string).collect();
    strings(cx, parts)
}

fn map_text(cx: &mut Ctx, args: &[Value], native: &str, f: fn(&str) -> String) -> R<Value> {
    let out = f(s0(cx, args, native)?);
    cx.new_str(out)
}

fn upper(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    map_text(cx, args, "upper", str::to_uppercase)
}

fn lower(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    map_text(cx, args, "lower", str::to_lowercase)
}

fn trim(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    map_text(cx, args, "trim", |s| s.trim().to_string())
}

fn test(cx: &mut Ctx, args: &[Value], native: &str, f: fn(&str, &str) -> bool) -> R<Value> {
    let s = s0(cx, args, native)?;
    let t = cx.str_arg(native, arg(args, 1))?;
    Ok(Value::bool(f(s, t)))
}

fn starts_with(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    test(cx, args, "starts_with", |s, t| s.starts_with(t))
}

fn ends_with(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    test(cx, args, "ends_with", |s, t| s.ends_with(t))
}

fn contains(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    test(cx, args, "contains", |s, t| s.contains(t))
}

fn find(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let s = s0(cx, args, "find")?;
    let needle = cx.str_arg("find", arg(args, 1))?;
    Ok(Value::int(match s.find(needle) {
        Some(byte) => s[..byte].chars().count() as i64,
        None => -1,
    }))
}

fn replace(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let s = s0(cx, args, "replace")?;
    let from = cx.str_arg("replace", arg(args, 1))?;
    let to = cx.str_arg("replace", arg(args, 2))?;
    let out = s.replace(from, to);
    cx.new_str(out)
}

fn chars(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let parts: Vec<String> = s0(cx, args, "chars")?.chars().map(String::from).collect();
    strings(cx, parts)
}

fn repeat(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let s = s0(cx, args, "repeat")?;
    let n = cx.int_arg("repeat", arg(args, 1))?;
    let n = usize::try_from(n)
        .map_err(|_| Raise::rt(kind::VALUE, format!("repeat: negative count {n}")))?;
    let bytes = s
        .len()
        .checked_mul(n)
        .ok_or(Raise::Fatal(crate::error::Fatal::Heap))?;
    cx.reserve(bytes)?;
    let out = s.repeat(n);
    cx.new_str(out)
}

fn parse_int(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    Ok(match s0(cx, args, "parse_int")?.trim().parse::<i64>() {
        Ok(i) => Value::int(i),
        Err(_) => Value::NULL,
    })
}

fn parse_float(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    Ok(match s0(cx, args, "parse_float")?.trim().parse::<f64>() {
        Ok(f) => Value::float(f),
        Err(_) => Value::NULL,
    })
}
