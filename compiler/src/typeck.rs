//! The typing rules of expressions: what an operator, a field access, an index or an iteration
//! yields for given operand types, and when the operands are statically wrong. Unknown (`any`)
//! operands always pass: the interpreter checks them at run time. The walk that applies these
//! rules and turns failures into E03xx diagnostics is in `lower.rs`.

use crate::ir::BinOp;
use crate::types::{Conf, Ty, TypeTable};

/// Why an operation is statically ill-typed, as the primary label text, plus an optional hint.
#[derive(Debug)]
pub struct TypeFault {
    pub label: String,
    pub help: Option<String>,
}

fn fault(label: impl Into<String>) -> TypeFault {
    TypeFault {
        label: label.into(),
        help: None,
    }
}

/// What the checker may assume about a type for an operator: a definite kind or unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Str,
    Other,
    Unknown,
}

fn kind(types: &TypeTable, ty: &Ty) -> Kind {
    match types.expand(ty) {
        Ty::Int => Kind::Int,
        Ty::Float => Kind::Float,
        Ty::Str | Ty::StrLit(_) => Kind::Str,
        Ty::Union(ms) if ms.iter().all(|m| kind(types, m) == Kind::Str) => Kind::Str,
        Ty::Any | Ty::Never | Ty::Union(_) | Ty::Optional(_) => Kind::Unknown,
        _ => Kind::Other,
    }
}

/// The result type of `a op b`, or why it cannot work.
pub fn binary(types: &TypeTable, op: BinOp, a: &Ty, b: &Ty) -> Result<Ty, TypeFault> {
    let (ka, kb) = (kind(types, a), kind(types, b));
    let numeric = |k: Kind| matches!(k, Kind::Int | Kind::Float);
    match op {
        BinOp::Eq | BinOp::Ne => Ok(Ty::Bool),
        BinOp::Lt | BinOp::Le => {
            let ok = match (ka, kb) {
                (Kind::Unknown, k) | (k, Kind::Unknown) => k != Kind::Other,
                (x, y) => (numeric(x) && numeric(y)) || (x == Kind::Str && y == Kind::Str),
            };
            if ok {
                Ok(Ty::Bool)
            } else {
                Err(fault(format!("cannot compare `{a}` with `{b}`")))
            }
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
            let sym = op_symbol(op);
            match (ka, kb) {
                (Kind::Int, Kind::Int) => Ok(Ty::Int),
                (x, y) if numeric(x) && numeric(y) => Ok(Ty::Float),
                (Kind::Str, Kind::Str) if op == BinOp::Add => Ok(Ty::Str),
                // `+` succeeds on a string only with another string.
                (Kind::Str, Kind::Unknown) | (Kind::Unknown, Kind::Str) if op == BinOp::Add => {
                    Ok(Ty::Str)
                }
                (Kind::Str, _) | (_, Kind::Str) if op == BinOp::Add => Err(TypeFault {
                    label: format!("cannot add `{a}` and `{b}`"),
                    help: Some("`+` joins two strings only; use interpolation: \"{a}{b}\"".into()),
                }),
                (Kind::Unknown, k) | (k, Kind::Unknown) => {
                    if k == Kind::Other || (k == Kind::Str && op != BinOp::Add) {
                        Err(fault(format!(
                            "cannot apply `{sym}` to `{}`",
                            if ka == Kind::Unknown { b } else { a }
                        )))
                    } else if k == Kind::Float {
                        Ok(Ty::Float)
                    } else {
                        Ok(Ty::Any)
                    }
                }
                _ => Err(fault(format!("cannot apply `{sym}` to `{a}` and `{b}`"))),
            }
        }
    }
}

/// The source spelling of an operator.
pub fn op_symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
    }
}

/// The type of `-a`.
pub fn negate(types: &TypeTable, a: &Ty) -> Result<Ty, TypeFault> {
    match kind(types, a) {
        Kind::Int => Ok(Ty::Int),
        Kind::Float => Ok(Ty::Float),
        Kind::Unknown => Ok(Ty::Any),
        _ => Err(fault(format!("cannot negate `{a}`"))),
    }
}

/// Whether a value of type `ty` can be a condition (must be a bool at run time).
pub fn condition(types: &TypeTable, ty: &Ty) -> Result<(), TypeFault> {
    match types.conforms(ty, &Ty::Bool) {
        Conf::No => Err(TypeFault {
            label: format!("expected `bool`, found `{ty}`"),
            help: Some(
                "conditions must be bools; compare explicitly, e.g. `x != 0` or `s != \"\"`".into(),
            ),
        }),
        _ => Ok(()),
    }
}

/// What a field access on a value of type `ty` yields.
pub enum FieldAccess {
    Known(Ty),
    /// The record type has no such field; the candidates are its field names.
    NoField(Vec<String>),
    /// The type has no fields at all.
    NotRecord,
}

pub fn field(types: &TypeTable, ty: &Ty, name: &str) -> FieldAccess {
    match types.expand(ty) {
        Ty::Record(fields) => match fields.iter().find(|(n, _)| n == name) {
            Some((_, t)) => FieldAccess::Known(t.clone()),
            None => FieldAccess::NoField(fields.iter().map(|(n, _)| n.clone()).collect()),
        },
        Ty::Map(v) => FieldAccess::Known((**v).clone()),
        Ty::Error => match name {
            "kind" | "message" => FieldAccess::Known(Ty::Str),
            _ => FieldAccess::Known(Ty::Any),
        },
        Ty::Int
        | Ty::Float
        | Ty::Bool
        | Ty::Null
        | Ty::Str
        | Ty::StrLit(_)
        | Ty::List(_)
        | Ty::Func
        | Ty::Range
        | Ty::Task => FieldAccess::NotRecord,
        _ => FieldAccess::Known(Ty::Any),
    }
}

/// The type of `obj[key]`.
pub fn index(types: &TypeTable, obj: &Ty, key: &Ty) -> Result<Ty, TypeFault> {
    let key_kind = kind(types, key);
    match types.expand(obj) {
        Ty::List(t) => match key_kind {
            Kind::Int | Kind::Unknown => Ok((**t).clone()),
            _ => Err(TypeFault {
                label: format!("lists are indexed by `int`, found `{key}`"),
                help: None,
            }),
        },
        Ty::Str | Ty::StrLit(_) => match key_kind {
            Kind::Int | Kind::Unknown => Ok(Ty::Str),
            _ => Err(fault(format!(
                "strings are indexed by `int`, found `{key}`"
            ))),
        },
        Ty::Map(t) => match key_kind {
            Kind::Int | Kind::Str | Kind::Unknown => Ok((**t).clone()),
            _ => Err(fault(format!(
                "map keys are strings or ints, found `{key}`"
            ))),
        },
        Ty::Int | Ty::Float | Ty::Bool | Ty::Null | Ty::Func | Ty::Range | Ty::Error | Ty::Task => {
            Err(fault(format!("`{obj}` cannot be indexed")))
        }
        Ty::Record(_) => Err(TypeFault {
            label: format!("`{obj}` cannot be indexed"),
            help: Some("read a record's field with `.name`".into()),
        }),
        _ => Ok(Ty::Any),
    }
}

/// The type of `obj[lo:hi]`.
pub fn slice(types: &TypeTable, obj: &Ty) -> Result<Ty, TypeFault> {
    match types.expand(obj) {
        Ty::List(_) | Ty::Str => Ok(obj.clone()),
        Ty::StrLit(_) => Ok(Ty::Str),
        Ty::Any | Ty::Never | Ty::Union(_) | Ty::Optional(_) => Ok(Ty::Any),
        _ => Err(fault(format!("`{obj}` cannot be sliced"))),
    }
}

/// The item types of `for a in x` and `for a, b in x`.
pub fn iteration(types: &TypeTable, ty: &Ty) -> Result<(Ty, Ty, Ty), TypeFault> {
    match types.expand(ty) {
        Ty::List(t) => Ok(((**t).clone(), Ty::Int, (**t).clone())),
        Ty::Map(t) => Ok((Ty::Str, Ty::Str, (**t).clone())),
        Ty::Str | Ty::StrLit(_) => Ok((Ty::Str, Ty::Int, Ty::Str)),
        Ty::Range => Ok((Ty::Int, Ty::Int, Ty::Int)),
        Ty::Int
        | Ty::Float
        | Ty::Bool
        | Ty::Null
        | Ty::Func
        | Ty::Error
        | Ty::Task
        | Ty::Record(_) => Err(TypeFault {
            label: format!("`{ty}` is not iterable"),
            help: Some("iterate over a list, a map, a string or a range `a..b`".into()),
        }),
        _ => Ok((Ty::Any, Ty::Any, Ty::Any)),
    }
}

/// Whether values of type `ty` can never be called.
pub fn not_callable(types: &TypeTable, ty: &Ty) -> bool {
    !matches!(
        types.expand(ty),
        Ty::Any | Ty::Func | Ty::Union(_) | Ty::Optional(_) | Ty::Never
    )
}

/// Whether `ty` is certainly an int (used by ranges).
pub fn int_or_unknown(types: &TypeTable, ty: &Ty) -> bool {
    matches!(kind(types, ty), Kind::Int | Kind::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_rules() {
        let t = TypeTable::default();
        assert_eq!(
            binary(&t, BinOp::Add, &Ty::Int, &Ty::Int).ok(),
            Some(Ty::Int)
        );
        assert_eq!(
            binary(&t, BinOp::Mul, &Ty::Int, &Ty::Float).ok(),
            Some(Ty::Float)
        );
        assert_eq!(
            binary(&t, BinOp::Add, &Ty::Str, &Ty::StrLit("a".into())).ok(),
            Some(Ty::Str)
        );
        assert!(binary(&t, BinOp::Add, &Ty::Str, &Ty::Int).is_err());
        assert!(binary(&t, BinOp::Sub, &Ty::Str, &Ty::Str).is_err());
        assert!(binary(&t, BinOp::Add, &Ty::Bool, &Ty::Any).is_err());
        assert_eq!(
            binary(&t, BinOp::Add, &Ty::Any, &Ty::Int).ok(),
            Some(Ty::Any)
        );
        assert!(binary(&t, BinOp::Lt, &Ty::Str, &Ty::Int).is_err());
        assert_eq!(
            binary(&t, BinOp::Eq, &Ty::Str, &Ty::Int).ok(),
            Some(Ty::Bool)
        );
    }

    #[test]
    fn index_and_condition_rules() {
        let t = TypeTable::default();
        let list = Ty::List(Box::new(Ty::Str));
        assert_eq!(index(&t, &list, &Ty::Int).ok(), Some(Ty::Str));
        assert!(index(&t, &list, &Ty::Str).is_err());
        assert!(index(&t, &Ty::Int, &Ty::Int).is_err());
        assert!(condition(&t, &Ty::Int).is_err());
        assert!(condition(&t, &Ty::Any).is_ok());
        assert!(iteration(&t, &Ty::Int).is_err());
    }
}
