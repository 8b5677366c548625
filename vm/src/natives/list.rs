//! `list.*`: in-place updates (push, pop, insert, remove) and new lists (sort, reverse,
//! concat, copy), searches and join. `list.sort` is a stable O(n log n) native sort.

use super::{arg, type_err, Ctx, NativeFn};
use crate::compare;
use crate::error::{kind, Raise, R};
use crate::text::write_text;
use crate::value::{Kind, Value};

pub(super) fn lookup(name: &str) -> Option<NativeFn> {
    Some(match name {
        "list.push" => push,
        "list.pop" => pop,
        "list.insert" => insert,
        "list.remove" => remove,
        "list.sort" => sort,
        "list.reverse" => reverse,
        "list.contains" => contains,
        "list.index_of" => index_of,
        "list.join" => join,
        "list.concat" => concat,
        "list.copy" => copy,
        _ => return None,
    })
}

fn push(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let l = cx.list_arg("push", arg(args, 0))?;
    let v = arg(args, 1);
    cx.heap.with_list(l, |items| items.push(v))?;
    Ok(Value::NULL)
}

fn pop(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let lv = arg(args, 0);
    let l = cx.list_arg("pop", lv)?;
    match cx.heap.with_list(l, |items| items.pop())? {
        Some(v) => Ok(v),
        None => Err(Raise::rt(kind::INDEX, "pop from an empty list")),
    }
}

fn position(i: i64, len: usize, inclusive: bool) -> R<usize> {
    let limit = if inclusive { len + 1 } else { len };
    usize::try_from(i)
        .ok()
        .filter(|&u| u < limit)
        .ok_or_else(|| {
            Raise::rt(
                kind::INDEX,
                format!("index {i} is out of range for a list of length {len}"),
            )
        })
}

fn insert(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let l = cx.list_arg("insert", arg(args, 0))?;
    let i = cx.int_arg("insert", arg(args, 1))?;
    let v = arg(args, 2);
    let at = position(i, cx.heap.list(l)?.len(), true)?;
    cx.heap.with_list(l, |items| items.insert(at, v))?;
    Ok(Value::NULL)
}

fn remove(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let l = cx.list_arg("remove", arg(args, 0))?;
    let i = cx.int_arg("remove", arg(args, 1))?;
    let at = position(i, cx.heap.list(l)?.len(), false)?;
    Ok(cx.heap.with_list(l, |items| items.remove(at))?)
}

fn sort(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let l = cx.list_arg("sort", arg(args, 0))?;
    let mut items = cx.heap.list(l)?.clone();
    let all = |f: fn(&Kind) -> bool| items.iter().all(|v| f(&v.kind()));
    if all(|k| matches!(k, Kind::Int(_))) {
        items.sort_by_key(|v| match v.kind() {
            Kind::Int(i) => i,
            _ => 0,
        });
    } else if all(|k| matches!(k, Kind::Int(_) | Kind::Float(_))) {
        // Mixed numbers order as floats; `total_cmp` is a total order (NaN sorts last).
        let key = |v: &Value| match v.kind() {
            Kind::Int(i) => i as f64,
            Kind::Float(f) => f,
            _ => 0.0,
        };
        items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    } else if all(|k| matches!(k, Kind::Str(_))) {
        let heap = &*cx.heap;
        let mut keyed: Vec<(&str, Value)> = Vec::with_capacity(items.len());
        for v in &items {
            if let Kind::Str(s) = v.kind() {
                keyed.push((heap.str(s)?, *v));
            }
        }
        keyed.sort_by(|a, b| a.0.cmp(b.0));
        items = keyed.into_iter().map(|(_, v)| v).collect();
    } else {
        return Err(Raise::rt(
            kind::TYPE,
            "list.sort needs a list of all numbers or all strings",
        ));
    }
    Ok(cx.new_list(items))
}

fn reverse(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let l = cx.list_arg("reverse", arg(args, 0))?;
    let mut items = cx.heap.list(l)?.clone();
    items.reverse();
    Ok(cx.new_list(items))
}

fn find(cx: &Ctx, args: &[Value], native: &str) -> R<Option<usize>> {
    let l = cx.list_arg(native, arg(args, 0))?;
    let needle = arg(args, 1);
    for (i, v) in cx.heap.list(l)?.iter().enumerate() {
        if compare::equal(cx.heap, cx.module, *v, needle)? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn contains(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    Ok(Value::bool(find(cx, args, "contains")?.is_some()))
}

fn index_of(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    Ok(Value::int(
        find(cx, args, "index_of")?.map_or(-1, |i| i as i64),
    ))
}

fn join(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let l = cx.list_arg("join", arg(args, 0))?;
    let sep = cx.str_arg("join", arg(args, 1))?;
    let mut out = String::new();
    for (i, v) in cx.heap.list(l)?.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        write_text(&mut out, cx.heap, cx.module, *v)?;
    }
    // The text shows every item: it is labelled with all of them (the list's own label and
    // the separator's join in as for any native).
    let label = cx.text_label(arg(args, 0))?;
    Ok(cx.new_str(out)?.labelled(label))
}

fn concat(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let a = cx.list_arg("concat", arg(args, 0))?;
    let b = cx.list_arg("concat", arg(args, 1))?;
    let (la, lb) = (cx.heap.list(a)?, cx.heap.list(b)?);
    cx.reserve((la.len() + lb.len()) * std::mem::size_of::<Value>())?;
    let mut items = Vec::with_capacity(la.len() + lb.len());
    items.extend_from_slice(la);
    items.extend_from_slice(lb);
    Ok(cx.new_list(items))
}

fn copy(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let v = arg(args, 0);
    match v.kind() {
        Kind::List(l) => {
            let items = cx.heap.list(l)?.clone();
            Ok(cx.new_list(items))
        }
        _ => Err(type_err("copy", "a list", v)),
    }
}
