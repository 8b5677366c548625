//! `CheckType`: whether a value conforms to a type of the module's type table. Containers are
//! checked deeply; a container already being checked against the same type counts as
//! conforming, so cyclic values and recursive types terminate.

use crate::error::{kind, Fatal, Raise, R};
use crate::format::{Module, TypeDesc, TypeId};
use crate::heap::Heap;
use crate::text::shape_names;
use crate::value::{KeyRef, Kind, ObjId, Value};

use super::exec::Exec;

/// Deeper checks than this are refused with a TypeError rather than made (keeps off the Rust
/// stack's edge).
const MAX_DEPTH: usize = 2000;

struct Checker<'a> {
    heap: &'a Heap,
    module: &'a Module,
    active: Vec<(ObjId, TypeId)>,
    /// Levels of `conforms` on the Rust stack.
    depth: usize,
}

impl Checker<'_> {
    fn ty(&self, t: TypeId) -> R<&TypeDesc> {
        self.module
            .types
            .get(t as usize)
            .ok_or_else(|| Raise::Fatal(Fatal::Corrupt(format!("type {t}"))))
    }

    /// Every level of the walk counts against [`MAX_DEPTH`]: container levels of the value and
    /// the (verifier-bounded) chains of named, optional and union types between them.
    fn conforms(&mut self, v: Value, t: TypeId) -> R<bool> {
        if self.depth >= MAX_DEPTH {
            return Err(Raise::rt(
                kind::TYPE,
                "value nested too deeply to check its type",
            ));
        }
        self.depth += 1;
        let result = self.conforms_at(v, t);
        self.depth -= 1;
        result
    }

    fn conforms_at(&mut self, v: Value, t: TypeId) -> R<bool> {
        let desc = self.ty(t)?;
        Ok(match desc {
            TypeDesc::Any => true,
            TypeDesc::Null => matches!(v.kind(), Kind::Null),
            TypeDesc::Bool => matches!(v.kind(), Kind::Bool(_)),
            TypeDesc::Int => matches!(v.kind(), Kind::Int(_)),
            TypeDesc::Float => matches!(v.kind(), Kind::Float(_)),
            TypeDesc::Str => matches!(v.kind(), Kind::Str(_)),
            TypeDesc::Func => matches!(v.kind(), Kind::Func(_) | Kind::Closure(_)),
            TypeDesc::Error => matches!(v.kind(), Kind::Error(_)),
            TypeDesc::StrLit(s) => match v.kind() {
                Kind::Str(r) => self.heap.str(r)? == self.module.str(*s),
                _ => false,
            },
            TypeDesc::Optional(inner) => {
                matches!(v.kind(), Kind::Null) || self.conforms(v, *inner)?
            }
            TypeDesc::Named { ty, .. } => self.conforms(v, *ty)?,
            TypeDesc::Union(members) => {
                let members = members.clone();
                for m in members {
                    if self.conforms(v, m)? {
                        return Ok(true);
                    }
                }
                false
            }
            TypeDesc::List(item) => {
                let Kind::List(o) = v.kind() else {
                    return Ok(false);
                };
                let item = *item;
                // `[any]` holds whatever it holds: no need to walk the items.
                if matches!(self.ty(item)?, TypeDesc::Any) {
                    return Ok(true);
                }
                self.within(o, t, |c| {
                    let heap = c.heap;
                    for x in heap.list(o)? {
                        if !c.conforms(*x, item)? {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })?
            }
            TypeDesc::Map(val) => {
                let Kind::Map(o) = v.kind() else {
                    return Ok(false);
                };
                let val = *val;
                if matches!(self.ty(val)?, TypeDesc::Any) {
                    return Ok(true);
                }
                self.within(o, t, |c| {
                    let heap = c.heap;
                    for e in heap.map(o)?.entries.values() {
                        if !c.conforms(e.value, val)? {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })?
            }
            TypeDesc::Record(fields) => {
                let fields: Vec<(String, TypeId)> = fields
                    .iter()
                    .map(|f| (self.module.str(f.name).to_string(), f.ty))
                    .collect();
                match v.kind() {
                    Kind::Record(o) => self.within(o, t, |c| {
                        let rec = c.heap.record(o)?;
                        let names = shape_names(c.module, rec.shape);
                        let pairs: Vec<(String, Value)> = names
                            .iter()
                            .map(|n| c.module.str(*n).to_string())
                            .zip(rec.vals.iter().copied())
                            .collect();
                        for (name, ty) in &fields {
                            let Some((_, x)) = pairs.iter().find(|(n, _)| n == name) else {
                                if matches!(c.ty(*ty)?, TypeDesc::Optional(_)) {
                                    continue;
                                }
                                return Ok(false);
                            };
                            if !c.conforms(*x, *ty)? {
                                return Ok(false);
                            }
                        }
                        Ok(true)
                    })?,
                    // A map with the record's fields as string keys conforms (e.g. parsed JSON).
                    Kind::Map(o) => self.within(o, t, |c| {
                        for (name, ty) in &fields {
                            let found = c
                                .heap
                                .map(o)?
                                .entries
                                .get(&KeyRef::Str(name))
                                .map(|e| e.value);
                            match found {
                                Some(x) => {
                                    if !c.conforms(x, *ty)? {
                                        return Ok(false);
                                    }
                                }
                                None if matches!(c.ty(*ty)?, TypeDesc::Optional(_)) => {}
                                None => return Ok(false),
                            }
                        }
                        Ok(true)
                    })?,
                    _ => false,
                }
            }
        })
    }

    /// Checks container `o` against type `t`, unless that check is already under way.
    fn within(&mut self, o: ObjId, t: TypeId, f: impl FnOnce(&mut Self) -> R<bool>) -> R<bool> {
        if self.active.contains(&(o, t)) {
            return Ok(true);
        }
        self.active.push((o, t));
        let r = f(self);
        self.active.pop();
        r
    }
}

/// The type's name as the spec writes it, for messages.
pub(crate) fn type_text(module: &Module, t: TypeId, depth: usize) -> String {
    let Some(desc) = module.types.get(t as usize) else {
        return "?".into();
    };
    if depth > 8 {
        return "...".into();
    }
    let sub = |t: TypeId| type_text(module, t, depth + 1);
    match desc {
        TypeDesc::Any => "any".into(),
        TypeDesc::Null => "null".into(),
        TypeDesc::Bool => "bool".into(),
        TypeDesc::Int => "int".into(),
        TypeDesc::Float => "float".into(),
        TypeDesc::Str => "string".into(),
        TypeDesc::Func => "fn".into(),
        TypeDesc::Error => "error".into(),
        TypeDesc::List(i) => format!("[{}]", sub(*i)),
        TypeDesc::Map(v) => format!("map[string, {}]", sub(*v)),
        TypeDesc::Optional(i) => format!("{}?", sub(*i)),
        TypeDesc::StrLit(s) => {
            let mut out = String::new();
            crate::text::write_quoted(&mut out, module.str(*s));
            out
        }
        TypeDesc::Union(ms) => ms.iter().map(|m| sub(*m)).collect::<Vec<_>>().join(" | "),
        TypeDesc::Record(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", module.str(f.name), sub(f.ty)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        TypeDesc::Named { name, .. } => module.str(*name).to_string(),
    }
}

impl Exec<'_> {
    pub(super) fn check_type(&mut self, v: Value, ty: TypeId) -> R<()> {
        if let (Some(TypeDesc::Any), _) | (Some(TypeDesc::Int), Kind::Int(_)) =
            (self.cx.module.types.get(ty as usize), v.kind())
        {
            return Ok(());
        }
        let mut c = Checker {
            heap: self.cx.heap,
            module: self.cx.module,
            active: Vec::new(),
            depth: 0,
        };
        if c.conforms(v, ty)? {
            return Ok(());
        }
        Err(Raise::rt(
            kind::TYPE,
            format!(
                "expected {}, found {}",
                type_text(self.cx.module, ty, 0),
                v.type_name()
            ),
        ))
    }
}
