//! Equality and ordering of values: `==` is structural (lists, maps, records deeply; `1 == 1.0`;
//! different kinds are unequal), `<` is defined on numbers and on two strings (code point order).

use std::cmp::Ordering;

use crate::error::{kind, Raise, R};
use crate::format::Module;
use crate::heap::Heap;
use crate::text::shape_names;
use crate::value::{Kind, Value};

/// Structures nested deeper than this cannot be compared (a cycle, or absurd depth).
const MAX_DEPTH: usize = 1000;

/// Whether an int and a float denote the same number, exactly.
pub(crate) fn int_float_eq(i: i64, f: f64) -> bool {
    // 2^63 is exactly representable; every integral float in [-2^63, 2^63) converts exactly.
    f.fract() == 0.0
        && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
        && f as i64 == i
}

/// `a == b`.
pub(crate) fn equal(heap: &Heap, module: &Module, a: Value, b: Value) -> R<bool> {
    eq_at(heap, module, a, b, 0)
}

fn eq_at(heap: &Heap, module: &Module, a: Value, b: Value, depth: usize) -> R<bool> {
    if depth > MAX_DEPTH {
        return Err(Raise::rt(
            kind::VALUE,
            "values are nested too deeply to compare (a cycle?)",
        ));
    }
    Ok(match (a.kind(), b.kind()) {
        (Kind::Null, Kind::Null) => true,
        (Kind::Bool(x), Kind::Bool(y)) => x == y,
        (Kind::Int(x), Kind::Int(y)) => x == y,
        (Kind::Float(x), Kind::Float(y)) => x == y,
        (Kind::Int(i), Kind::Float(f)) | (Kind::Float(f), Kind::Int(i)) => int_float_eq(i, f),
        (Kind::Str(x), Kind::Str(y)) => x == y || heap.str(x)? == heap.str(y)?,
        (Kind::Func(x), Kind::Func(y)) => x == y,
        (Kind::Task(x), Kind::Task(y)) => x == y,
        (Kind::Closure(x), Kind::Closure(y))
        | (Kind::Cell(x), Kind::Cell(y))
        | (Kind::Iter(x), Kind::Iter(y)) => x == y,
        (Kind::Range(x), Kind::Range(y)) => heap.range(x)? == heap.range(y)?,
        (Kind::Error(x), Kind::Error(y)) => {
            let (ex, ey) = (heap.error(x)?, heap.error(y)?);
            ex.kind == ey.kind && ex.message == ey.message
        }
        (Kind::List(x), Kind::List(y)) => {
            if x == y {
                return Ok(true);
            }
            let (lx, ly) = (heap.list(x)?, heap.list(y)?);
            if lx.len() != ly.len() {
                return Ok(false);
            }
            for (p, q) in lx.iter().zip(ly) {
                if !eq_at(heap, module, *p, *q, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Kind::Map(x), Kind::Map(y)) => {
            if x == y {
                return Ok(true);
            }
            let (mx, my) = (heap.map(x)?, heap.map(y)?);
            if mx.entries.len() != my.entries.len() {
                return Ok(false);
            }
            for (k, e) in &mx.entries {
                match my.entries.get(&k.as_ref()) {
                    Some(f) if eq_at(heap, module, e.value, f.value, depth + 1)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        (Kind::Record(x), Kind::Record(y)) => {
            if x == y {
                return Ok(true);
            }
            let (rx, ry) = (heap.record(x)?, heap.record(y)?);
            let (nx, ny) = (shape_names(module, rx.shape), shape_names(module, ry.shape));
            if nx.len() != ny.len() {
                return Ok(false);
            }
            for (i, name) in nx.iter().enumerate() {
                let field = module.str(*name);
                let Some(j) = ny.iter().position(|n| module.str(*n) == field) else {
                    return Ok(false);
                };
                match (rx.vals.get(i), ry.vals.get(j)) {
                    (Some(p), Some(q)) if eq_at(heap, module, *p, *q, depth + 1)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        _ => false,
    })
}

/// The order of two numbers or two strings; a TypeError for anything else. `None` when a
/// float is NaN (every comparison with NaN is false).
pub(crate) fn order(heap: &Heap, a: Value, b: Value) -> R<Option<Ordering>> {
    Ok(match (a.kind(), b.kind()) {
        (Kind::Int(x), Kind::Int(y)) => Some(x.cmp(&y)),
        (Kind::Float(x), Kind::Float(y)) => x.partial_cmp(&y),
        (Kind::Int(x), Kind::Float(y)) => (x as f64).partial_cmp(&y),
        (Kind::Float(x), Kind::Int(y)) => x.partial_cmp(&(y as f64)),
        (Kind::Str(x), Kind::Str(y)) => Some(heap.str(x)?.cmp(heap.str(y)?)),
        _ => {
            return Err(Raise::rt(
                kind::TYPE,
                format!(
                    "cannot compare {} and {} (only numbers, or two strings)",
                    a.type_name(),
                    b.type_name()
                ),
            ))
        }
    })
}
