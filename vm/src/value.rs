//! Run-time values: a small `Copy` [`Value`] (a [`Kind`] and a [`Label`]) that lives in
//! registers. Everything bigger than a word lives in the heap and is referred to by [`ObjId`].

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::format::FuncId;
use crate::label::Label;

/// The index of a heap slot. Plain data: no pointers, so the VM state serialises as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjId(pub u32);

/// A string value: a view of the first `len` bytes of the heap string buffer `obj`. Buffers only
/// grow at the end, so a view never changes once made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrRef {
    pub obj: ObjId,
    pub len: u32,
}

/// What a value is. Heap kinds hold the id of their object.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(StrRef),
    List(ObjId),
    Map(ObjId),
    Record(ObjId),
    /// A function with no captured cells: no heap object needed.
    Func(FuncId),
    Closure(ObjId),
    Cell(ObjId),
    Error(ObjId),
    Iter(ObjId),
    Range(ObjId),
}

/// A value in a register: its kind and its information-flow label.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub kind: Kind,
    pub label: Label,
}

impl Value {
    pub const NULL: Value = Value::new(Kind::Null);

    #[inline]
    pub const fn new(kind: Kind) -> Value {
        Value {
            kind,
            label: Label::PUBLIC,
        }
    }

    #[inline]
    pub const fn with(kind: Kind, label: Label) -> Value {
        Value { kind, label }
    }

    #[inline]
    pub const fn int(i: i64) -> Value {
        Value::new(Kind::Int(i))
    }

    #[inline]
    pub const fn float(f: f64) -> Value {
        Value::new(Kind::Float(f))
    }

    #[inline]
    pub const fn str(s: StrRef) -> Value {
        Value::new(Kind::Str(s))
    }

    #[inline]
    pub const fn bool(b: bool) -> Value {
        Value::new(Kind::Bool(b))
    }

    /// The same value with another label.
    #[inline]
    pub const fn labelled(self, label: Label) -> Value {
        Value {
            kind: self.kind,
            label,
        }
    }

    /// The heap object this value refers to, if any.
    pub fn obj(&self) -> Option<ObjId> {
        match self.kind {
            Kind::Str(s) => Some(s.obj),
            Kind::List(o)
            | Kind::Map(o)
            | Kind::Record(o)
            | Kind::Closure(o)
            | Kind::Cell(o)
            | Kind::Error(o)
            | Kind::Iter(o)
            | Kind::Range(o) => Some(o),
            Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) | Kind::Func(_) => None,
        }
    }

    /// The name `type_of` gives this value's kind.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "bool",
            Kind::Int(_) => "int",
            Kind::Float(_) => "float",
            Kind::Str(_) => "string",
            Kind::List(_) => "list",
            Kind::Map(_) => "map",
            Kind::Record(_) => "record",
            Kind::Func(_) | Kind::Closure(_) => "fn",
            Kind::Cell(_) => "cell",
            Kind::Error(_) => "error",
            Kind::Iter(_) => "iterator",
            Kind::Range(_) => "range",
        }
    }
}

/// A map key: a string (hashed by content) or an int. Lookups take a [`KeyRef`], so a string
/// key is found from a `&str` without allocating.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    Int(i64),
    Str(Box<str>),
}

/// A borrowed map key, hashed exactly like the [`Key`] it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef<'a> {
    Int(i64),
    Str(&'a str),
}

impl Key {
    pub fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Int(i) => KeyRef::Int(*i),
            Key::Str(s) => KeyRef::Str(s),
        }
    }
}

impl KeyRef<'_> {
    pub fn to_owned(self) -> Key {
        match self {
            KeyRef::Int(i) => Key::Int(i),
            KeyRef::Str(s) => Key::Str(s.into()),
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state)
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            KeyRef::Int(i) => {
                state.write_u8(0);
                state.write_i64(*i);
            }
            KeyRef::Str(s) => {
                state.write_u8(1);
                state.write(s.as_bytes());
            }
        }
    }
}

impl indexmap::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self == key.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_small() {
        assert!(std::mem::size_of::<Kind>() <= 16);
        assert!(std::mem::size_of::<Value>() <= 24);
    }

    #[test]
    fn borrowed_and_owned_keys_hash_alike() {
        use std::hash::BuildHasher;
        let h = rustc_hash::FxBuildHasher;
        let owned = Key::Str("word".into());
        assert_eq!(h.hash_one(&owned), h.hash_one(KeyRef::Str("word")));
        assert_ne!(h.hash_one(Key::Int(1)), h.hash_one(KeyRef::Str("1")));
    }
}
