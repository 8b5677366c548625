//! `map.*`: keys and values in insertion order, membership, lookup with a default, removal
//! (which keeps the order of the other keys).

use super::{arg, Ctx, NativeFn};
use crate::error::R;
use crate::value::{Key, KeyRef, ObjId, Value};

pub(super) fn lookup(name: &str) -> Option<NativeFn> {
    Some(match name {
        "map.keys" => keys,
        "map.values" => values,
        "map.has" => has,
        "map.get" => get,
        "map.remove" => remove,
        _ => return None,
    })
}

/// The value of a key, as the program sees it.
fn key_value(cx: &mut Ctx, k: &Key, label: crate::label::Label) -> R<Value> {
    Ok(match k {
        Key::Int(i) => Value::int(*i),
        Key::Str(s) => cx.new_str(s.to_string())?,
    }
    .labelled(label))
}

fn keys(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let m = cx.map_arg("keys", arg(args, 0))?;
    let pairs: Vec<(Key, crate::label::Label)> = cx
        .heap
        .map(m)?
        .entries
        .iter()
        .map(|(k, e)| (k.clone(), e.key_label))
        .collect();
    let mut out = Vec::with_capacity(pairs.len());
    for (k, l) in &pairs {
        out.push(key_value(cx, k, *l)?);
    }
    Ok(cx.new_list(out))
}

fn values(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let m = cx.map_arg("values", arg(args, 0))?;
    let vals = cx.heap.map(m)?.entries.values().map(|e| e.value).collect();
    Ok(cx.new_list(vals))
}

/// Looks `key` up in map `m` with `f`.
fn with_key<T>(
    cx: &Ctx,
    m: ObjId,
    key: Value,
    f: impl FnOnce(&crate::heap::MapObj, KeyRef) -> T,
) -> R<T> {
    let k = cx.heap.map_key(key)?;
    Ok(f(cx.heap.map(m)?, k))
}

fn has(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let m = cx.map_arg("has", arg(args, 0))?;
    let found = with_key(cx, m, arg(args, 1), |map, k| map.entries.contains_key(&k))?;
    Ok(Value::bool(found))
}

fn get(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let m = cx.map_arg("get", arg(args, 0))?;
    let found = with_key(cx, m, arg(args, 1), |map, k| map.entries.get(&k).copied())?;
    Ok(match found {
        Some(e) => e
            .value
            .labelled(cx.labels.join(e.value.label(), e.key_label)),
        None => arg(args, 2),
    })
}

fn remove(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let m = cx.map_arg("remove", arg(args, 0))?;
    let key = cx.heap.map_key(arg(args, 1))?.to_owned();
    let map = cx.heap.map_mut(m)?;
    let removed = map.entries.shift_remove(&key.as_ref());
    if removed.is_some() {
        if let Key::Str(s) = &key {
            map.key_bytes = map.key_bytes.saturating_sub(s.len());
        }
    }
    Ok(removed.map_or(Value::NULL, |e| e.value))
}
