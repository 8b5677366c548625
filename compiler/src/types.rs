//! Static types of the gradual type system: what the checker knows about a value at compile
//! time, the table of named `type` aliases, and the conformance relation (yes / no / only a
//! run-time check can tell) that decides between a static error, no check, and a `CheckType`.

use std::fmt;

/// A static type. `Any` is the type of everything unannotated: consistent with every type.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Any,
    /// The element type of an empty list literal: conforms to every type.
    Never,
    Null,
    Bool,
    Int,
    Float,
    Str,
    /// Exactly this string.
    StrLit(String),
    List(Box<Ty>),
    /// A map with string (or int) keys.
    Map(Box<Ty>),
    Record(Vec<(String, Ty)>),
    /// The type or null.
    Optional(Box<Ty>),
    Union(Vec<Ty>),
    /// Any function value.
    Func,
    Error,
    /// An int range `a..b` (not writable as an annotation).
    Range,
    /// The handle of a task started by `spawn`.
    Task,
    /// A `type` alias, by index into [`TypeTable::aliases`].
    Named(u32, String),
}

/// The answer of [`TypeTable::conforms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conf {
    /// Every value of the source type conforms: no run-time check needed.
    Yes,
    /// No value of the source type conforms (except through `any`): a static error.
    No,
    /// Some values conform: a run-time `CheckType` decides.
    Maybe,
}

/// A named alias: `/// doc` `type Name = T`.
#[derive(Clone, Debug)]
pub struct Alias {
    pub name: String,
    pub doc: Option<String>,
    pub ty: Ty,
}

/// Every alias of the program (all modules share one table).
#[derive(Clone, Debug, Default)]
pub struct TypeTable {
    pub aliases: Vec<Alias>,
}

/// Recursion bound for comparing recursive aliases; past it the answer is "check at run time".
const MAX_DEPTH: u32 = 24;

impl TypeTable {
    /// Follows aliases to a structural type.
    pub fn expand<'a>(&'a self, mut ty: &'a Ty) -> &'a Ty {
        let mut guard = 0;
        while let Ty::Named(id, _) = ty {
            guard += 1;
            match self.aliases.get(*id as usize) {
                Some(a) if guard < 64 => ty = &a.ty,
                _ => return &Ty::Any,
            }
        }
        ty
    }

    /// Whether values of `src` conform to `dst`.
    pub fn conforms(&self, src: &Ty, dst: &Ty) -> Conf {
        self.conf(src, dst, 0)
    }

    fn conf(&self, src: &Ty, dst: &Ty, depth: u32) -> Conf {
        if depth > MAX_DEPTH {
            return Conf::Maybe;
        }
        if let (Ty::Named(a, _), Ty::Named(b, _)) = (src, dst) {
            if a == b {
                return Conf::Yes;
            }
        }
        let (s, d) = (self.expand(src), self.expand(dst));
        let depth = depth + 1;
        match (s, d) {
            (_, Ty::Any) | (Ty::Never, _) => Conf::Yes,
            (Ty::Any, _) => Conf::Maybe,
            (Ty::Union(ms), _) => {
                let answers: Vec<Conf> = ms.iter().map(|m| self.conf(m, d, depth)).collect();
                if answers.iter().all(|c| *c == Conf::Yes) {
                    Conf::Yes
                } else if answers.iter().all(|c| *c == Conf::No) {
                    Conf::No
                } else {
                    Conf::Maybe
                }
            }
            (Ty::Optional(inner), _) => {
                // `T?` flows into `T` with a run-time check; null itself must fit the target.
                let a = self.conf(&Ty::Null, d, depth);
                let b = self.conf(inner, d, depth);
                match (a, b) {
                    (Conf::Yes, Conf::Yes) => Conf::Yes,
                    (Conf::No, Conf::No) => Conf::No,
                    _ => Conf::Maybe,
                }
            }
            (_, Ty::Union(ms)) => {
                let mut best = Conf::No;
                for m in ms {
                    match self.conf(s, m, depth) {
                        Conf::Yes => return Conf::Yes,
                        Conf::Maybe => best = Conf::Maybe,
                        Conf::No => {}
                    }
                }
                best
            }
            (_, Ty::Optional(inner)) => {
                if *s == Ty::Null {
                    Conf::Yes
                } else {
                    self.conf(s, inner, depth)
                }
            }
            (Ty::StrLit(_), Ty::Str) => Conf::Yes,
            (Ty::Str, Ty::StrLit(_)) => Conf::Maybe,
            (Ty::StrLit(a), Ty::StrLit(b)) => {
                if a == b {
                    Conf::Yes
                } else {
                    Conf::No
                }
            }
            (Ty::List(a), Ty::List(b)) | (Ty::Map(a), Ty::Map(b)) => self.conf(a, b, depth),
            (Ty::Record(have), Ty::Record(want)) => {
                let mut out = Conf::Yes;
                for (name, t) in want {
                    match have.iter().find(|(n, _)| n == name) {
                        None => return Conf::No,
                        Some((_, h)) => match self.conf(h, t, depth) {
                            Conf::No => return Conf::No,
                            Conf::Maybe => out = Conf::Maybe,
                            Conf::Yes => {}
                        },
                    }
                }
                out
            }
            (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => Conf::Yes,
            _ => Conf::No,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Any => f.write_str("any"),
            Ty::Never => f.write_str("never"),
            Ty::Null => f.write_str("null"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::Str => f.write_str("string"),
            Ty::StrLit(s) => write!(f, "{s:?}"),
            Ty::List(t) => write!(f, "[{t}]"),
            Ty::Map(t) => write!(f, "map[string, {t}]"),
            Ty::Record(fields) => {
                f.write_str("{")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str("}")
            }
            Ty::Optional(t) => match **t {
                Ty::Union(_) => write!(f, "({t})?"),
                _ => write!(f, "{t}?"),
            },
            Ty::Union(ms) => {
                for (i, m) in ms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{m}")?;
                }
                Ok(())
            }
            Ty::Func => f.write_str("fn"),
            Ty::Error => f.write_str("error"),
            Ty::Range => f.write_str("range"),
            Ty::Task => f.write_str("task"),
            Ty::Named(_, n) => f.write_str(n),
        }
    }
}

impl Ty {
    /// Whether the checker knows nothing about values of this type.
    pub fn is_any(&self) -> bool {
        matches!(self, Ty::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Ty {
        Ty::StrLit(s.into())
    }

    #[test]
    fn conformance_of_basic_types() {
        let t = TypeTable::default();
        assert_eq!(t.conforms(&Ty::Int, &Ty::Int), Conf::Yes);
        assert_eq!(t.conforms(&Ty::Int, &Ty::Str), Conf::No);
        assert_eq!(t.conforms(&Ty::Any, &Ty::Str), Conf::Maybe);
        assert_eq!(t.conforms(&Ty::Str, &Ty::Any), Conf::Yes);
        assert_eq!(t.conforms(&Ty::Int, &Ty::Float), Conf::No);
        assert_eq!(
            t.conforms(&Ty::Null, &Ty::Optional(Box::new(Ty::Int))),
            Conf::Yes
        );
        assert_eq!(
            t.conforms(&Ty::Optional(Box::new(Ty::Int)), &Ty::Int),
            Conf::Maybe
        );
        assert_eq!(
            t.conforms(&Ty::List(Box::new(Ty::Never)), &Ty::List(Box::new(Ty::Int))),
            Conf::Yes
        );
    }

    #[test]
    fn literal_unions() {
        let t = TypeTable::default();
        let sev = Ty::Union(vec![lit("low"), lit("high")]);
        assert_eq!(t.conforms(&lit("low"), &sev), Conf::Yes);
        assert_eq!(t.conforms(&lit("mid"), &sev), Conf::No);
        assert_eq!(t.conforms(&Ty::Str, &sev), Conf::Maybe);
        assert_eq!(t.conforms(&Ty::Int, &sev), Conf::No);
        assert_eq!(t.conforms(&sev, &Ty::Str), Conf::Yes);
    }

    #[test]
    fn records_and_recursive_aliases() {
        let mut t = TypeTable::default();
        // type Tree = {kids: [Tree]}
        t.aliases.push(Alias {
            name: "Tree".into(),
            doc: None,
            ty: Ty::Record(vec![(
                "kids".into(),
                Ty::List(Box::new(Ty::Named(0, "Tree".into()))),
            )]),
        });
        let tree = Ty::Named(0, "Tree".into());
        let lit_rec = Ty::Record(vec![("kids".into(), Ty::List(Box::new(Ty::Never)))]);
        assert_eq!(t.conforms(&lit_rec, &tree), Conf::Yes);
        assert_eq!(t.conforms(&Ty::Record(vec![]), &tree), Conf::No);
        assert_eq!(tree.to_string(), "Tree");
        assert_eq!(
            Ty::Optional(Box::new(Ty::Union(vec![lit("a"), Ty::Int]))).to_string(),
            "(\"a\" | int)?"
        );
    }
}
