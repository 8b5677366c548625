//! Numbers as policies compare them: ints and floats by exact mathematical value (no rounding
//! of a large int to a float), and NaN equal to, below and above nothing.

use std::cmp::Ordering;

/// An int or a float, from a policy file or from an argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

/// The order of two numbers by exact value; `None` when either is NaN.
pub fn compare(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => int_float(x, y),
        (Num::Float(x), Num::Int(y)) => int_float(y, x).map(Ordering::reverse),
    }
}

/// Compares an int with a float without converting the int (which would round above 2^53).
fn int_float(i: i64, f: f64) -> Option<Ordering> {
    // 2^63 is exactly representable; every float at or above it exceeds any i64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    // Now trunc(f) fits an i64 exactly.
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => (t).partial_cmp(&f),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn exact_across_int_and_float() {
        assert_eq!(compare(Num::Int(1), Num::Float(1.0)), Some(Equal));
        assert_eq!(compare(Num::Int(1), Num::Float(1.5)), Some(Less));
        assert_eq!(compare(Num::Int(2), Num::Float(1.5)), Some(Greater));
        assert_eq!(compare(Num::Int(-1), Num::Float(-1.5)), Some(Greater));
        assert_eq!(compare(Num::Float(-1.5), Num::Int(-1)), Some(Less));
        // 2^53 + 1 is not a float: the int must not be rounded onto the bound.
        let big = (1i64 << 53) + 1;
        assert_eq!(
            compare(Num::Int(big), Num::Float((1i64 << 53) as f64)),
            Some(Greater)
        );
        assert_eq!(compare(Num::Int(i64::MAX), Num::Float(9.3e18)), Some(Less));
        assert_eq!(
            compare(Num::Int(i64::MIN), Num::Float(-9.3e18)),
            Some(Greater)
        );
        assert_eq!(
            compare(Num::Int(i64::MAX), Num::Float(f64::INFINITY)),
            Some(Less)
        );
        assert_eq!(compare(Num::Int(0), Num::Float(-0.0)), Some(Equal));
        assert_eq!(compare(Num::Int(0), Num::Float(f64::NAN)), None);
        assert_eq!(compare(Num::Float(f64::NAN), Num::Float(f64::NAN)), None);
    }
}
