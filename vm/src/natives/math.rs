//! `math.*`: absolute value, min/max, rounding to ints, and float functions (which accept
//! ints too).

use super::core::float_to_int;
use super::{arg, type_err, Ctx, NativeFn};
use crate::compare;
use crate::error::{kind, Raise, R};
use crate::value::{Kind, Value};

pub(super) fn lookup(name: &str) -> Option<NativeFn> {
    Some(match name {
        "math.abs" => abs,
        "math.min" => min,
        "math.max" => max,
        "math.floor" => floor,
        "math.ceil" => ceil,
        "math.round" => round,
        "math.sqrt" => sqrt,
        "math.pow" => pow,
        "math.sin" => sin,
        "math.cos" => cos,
        "math.log" => log,
        "math.exp" => exp,
        _ => return None,
    })
}

fn num(native: &str, v: Value) -> R<f64> {
    match v.kind() {
        Kind::Int(i) => Ok(i as f64),
        Kind::Float(f) => Ok(f),
        _ => Err(type_err(native, "a number", v)),
    }
}

fn abs(_: &mut Ctx, args: &[Value]) -> R<Value> {
    let v = arg(args, 0);
    match v.kind() {
        Kind::Int(i) => i
            .checked_abs()
            .map(Value::int)
            .ok_or_else(|| Raise::rt(kind::OVERFLOW, "integer overflow in abs")),
        Kind::Float(f) => Ok(Value::float(f.abs())),
        _ => Err(type_err("abs", "a number", v)),
    }
}

fn pick(cx: &mut Ctx, args: &[Value], native: &str, want_less: bool) -> R<Value> {
    let (a, b) = (arg(args, 0), arg(args, 1));
    num(native, a)?;
    num(native, b)?;
    let a_less = compare::order(cx.heap, a, b)? == Some(std::cmp::Ordering::Less);
    Ok(if a_less == want_less { a } else { b })
}

fn min(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    pick(cx, args, "min", true)
}

fn max(cx: &mut Ctx, args: &[Value]) -> R<Value> {
    let (a, b) = (arg(args, 0), arg(args, 1));
    num("max", a)?;
    num("max", b)?;
    let b_less = compare::order(cx.heap, b, a)? == Some(std::cmp::Ordering::Less);
    Ok(if b_less { a } else { b })
}

fn rounding(args: &[Value], native: &str, f: fn(f64) -> f64) -> R<Value> {
    let v = arg(args, 0);
    match v.kind() {
        Kind::Int(i) => Ok(Value::int(i)),
        Kind::Float(x) => Ok(Value::int(float_to_int(f(x), native)?)),
        _ => Err(type_err(native, "a number", v)),
    }
}

fn floor(_: &mut Ctx, args: &[Value]) -> R<Value> {
    rounding(args, "floor", f64::floor)
}

fn ceil(_: &mut Ctx, args: &[Value]) -> R<Value> {
    rounding(args, "ceil", f64::ceil)
}

fn round(_: &mut Ctx, args: &[Value]) -> R<Value> {
    rounding(args, "round", f64::round)
}

fn unary(args: &[Value], native: &str, f: fn(f64) -> f64) -> R<Value> {
    Ok(Value::float(f(num(native, arg(args, 0))?)))
}

fn sqrt(_: &mut Ctx, args: &[Value]) -> R<Value> {
    unary(args, "sqrt", f64::sqrt)
}

fn sin(_: &mut Ctx, args: &[Value]) -> R<Value> {
    unary(args, "sin", f64::sin)
}

fn cos(_: &mut Ctx, args: &[Value]) -> R<Value> {
    unary(args, "cos", f64::cos)
}

fn log(_: &mut Ctx, args: &[Value]) -> R<Value> {
    unary(args, "log", f64::ln)
}

fn exp(_: &mut Ctx, args: &[Value]) -> R<Value> {
    unary(args, "exp", f64::exp)
}

fn pow(_: &mut Ctx, args: &[Value]) -> R<Value> {
    let a = num("pow", arg(args, 0))?;
    let b = num("pow", arg(args, 1))?;
    Ok(Value::float(a.powf(b)))
}
