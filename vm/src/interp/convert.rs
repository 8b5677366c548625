//! Conversion between heap values and [`HostValue`] trees, the only form in which values
//! cross the VM boundary (effect arguments and results, task arguments, final values).

use crate::error::{kind, Raise, R};
use crate::heap::{ErrorObj, Heap, MapEntry, MapObj, Obj};
use crate::host_value::{HostData, HostValue};
use crate::label::{Label, LabelTable};
use crate::natives::Ctx;
use crate::text::shape_names;
use crate::value::{Key, Kind, ObjId, Value};

/// Values nested deeper than this cannot leave the VM.
const MAX_DEPTH: usize = 200;

/// A new error value with a payload.
pub(crate) fn new_error(heap: &mut Heap, kind: &str, message: String, payload: Value) -> Value {
    let o = heap.alloc(Obj::Error(ErrorObj {
        kind: kind.to_string(),
        message,
        payload,
    }));
    Value::new(Kind::Error(o))
}

/// The error value of a failed effect.
pub(crate) fn host_error(
    heap: &mut Heap,
    kind: &str,
    message: String,
    payload: Value,
    label: Label,
) -> Value {
    new_error(heap, kind, message, payload).labelled(label)
}

/// The host form of `v`. A cyclic or absurdly deep value is a ValueError.
pub(crate) fn to_host(cx: &Ctx, v: Value) -> R<HostValue> {
    let mut stack = Vec::new();
    to_host_at(cx, v, &mut stack)
}

fn to_host_at(cx: &Ctx, v: Value, stack: &mut Vec<ObjId>) -> R<HostValue> {
    let heap = &*cx.heap;
    let label = cx.labels.info(v.label());
    let mut enter = |o: ObjId| -> R<()> {
        if stack.contains(&o) || stack.len() >= MAX_DEPTH {
            return Err(Raise::rt(
                kind::VALUE,
                "a cyclic or too deeply nested value cannot leave the VM",
            ));
        }
        stack.push(o);
        Ok(())
    };
    let data = match v.kind() {
        Kind::Null => HostData::Null,
        Kind::Bool(b) => HostData::Bool(b),
        Kind::Int(i) => HostData::Int(i),
        Kind::Float(f) => HostData::Float(f),
        Kind::Str(s) => HostData::Str(heap.str(s)?.to_string()),
        Kind::List(o) => {
            enter(o)?;
            let items = heap.list(o)?;
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(to_host_at(cx, *x, stack)?);
            }
            stack.pop();
            HostData::List(out)
        }
        Kind::Map(o) => {
            enter(o)?;
            let mut out = Vec::new();
            for (k, e) in &heap.map(o)?.entries {
                out.push((k.clone(), to_host_at(cx, e.value, stack)?));
            }
            stack.pop();
            HostData::Map(out)
        }
        Kind::Record(o) => {
            enter(o)?;
            let rec = heap.record(o)?;
            let mut out = Vec::new();
            for (n, x) in shape_names(cx.module, rec.shape).iter().zip(&rec.vals) {
                out.push((cx.module.str(*n).to_string(), to_host_at(cx, *x, stack)?));
            }
            stack.pop();
            HostData::Record(out)
        }
        Kind::Error(o) => {
            let e = heap.error(o)?;
            HostData::Error {
                kind: e.kind.clone(),
                message: e.message.clone(),
            }
        }
        Kind::Func(f) => HostData::Func(cx.module.func_name(f).to_string()),
        Kind::Closure(o) => HostData::Func(cx.module.func_name(heap.closure(o)?.func).to_string()),
        Kind::Task(t) => HostData::Task(t),
        Kind::Cell(_) | Kind::Iter(_) | Kind::Range(_) => HostData::Str(cx.text(v)?),
    };
    Ok(HostValue { data, label })
}

/// The heap form of a host value. Records become maps (their shape is not in the module);
/// functions cannot enter the VM and become null, as does a string over 4 GiB.
pub(crate) fn from_host(heap: &mut Heap, labels: &mut LabelTable, hv: &HostValue) -> Value {
    let label = labels.intern(&hv.label);
    let kind = match &hv.data {
        HostData::Null | HostData::Func(_) => Kind::Null,
        HostData::Bool(b) => Kind::Bool(*b),
        HostData::Int(i) => Kind::Int(*i),
        HostData::Float(f) => Kind::Float(*f),
        // A task id from outside may name no task: `Await` checks it.
        HostData::Task(t) => Kind::Task(*t),
        HostData::Str(s) => match heap.alloc_str(s.clone()) {
            Some(r) => Kind::Str(r),
            None => Kind::Null,
        },
        HostData::List(items) => {
            let vals: Vec<Value> = items.iter().map(|x| from_host(heap, labels, x)).collect();
            Kind::List(heap.alloc(Obj::List(vals)))
        }
        HostData::Map(pairs) => {
            let entries = pairs
                .iter()
                .map(|(k, x)| (k.clone(), from_host(heap, labels, x)))
                .collect::<Vec<_>>();
            map_kind(heap, entries)
        }
        HostData::Record(fields) => {
            let entries = fields
                .iter()
                .map(|(k, x)| (Key::Str(k.as_str().into()), from_host(heap, labels, x)))
                .collect::<Vec<_>>();
            map_kind(heap, entries)
        }
        HostData::Error { kind, message } => {
            return new_error(heap, kind, message.clone(), Value::NULL).labelled(label)
        }
    };
    Value::with(kind, label)
}

fn map_kind(heap: &mut Heap, entries: Vec<(Key, Value)>) -> Kind {
    let mut m = MapObj::default();
    for (k, v) in entries {
        if let Key::Str(s) = &k {
            m.key_bytes += s.len();
        }
        m.entries.insert(
            k,
            MapEntry {
                key_label: Label::PUBLIC,
                value: v,
            },
        );
    }
    Kind::Map(heap.alloc(Obj::Map(m)))
}
