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
    /// The handle of a task (its id in the VM): no heap object needed.
    Task(u32),
}

/// A value in a register: its kind and its information-flow label, packed in 16 bytes (two
/// words) so that registers copy cheaply and "a public int" is one compare of `head`.
/// Build values with [`Value::new`] and [`Value::with`], read them with [`Value::kind`] and
/// [`Value::label`]. Serialises exactly like the struct `{kind, label}`.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(from = "ValueRepr", into = "ValueRepr")]
pub struct Value {
    /// The kind's tag in the low byte, the label in the high 32 bits.
    head: u64,
    /// The kind's payload (int, float bits, bool, object id, string view).
    bits: u64,
}

/// The serialised form of a [`Value`].
#[derive(Serialize, Deserialize)]
struct ValueRepr {
    kind: Kind,
    label: Label,
}

impl From<ValueRepr> for Value {
    fn from(r: ValueRepr) -> Value {
        Value::with(r.kind, r.label)
    }
}

impl From<Value> for ValueRepr {
    fn from(v: Value) -> ValueRepr {
        ValueRepr {
            kind: v.kind(),
            label: v.label(),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.kind() == other.kind() && self.label() == other.label()
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Value")
            .field("kind", &self.kind())
            .field("label", &self.label())
            .finish()
    }
}

/// The kind tags (the low byte of a value's head; a public value's head is its tag alone).
pub(crate) mod tag {
    pub const NULL: u64 = 0;
    pub const BOOL: u64 = 1;
    pub const INT: u64 = 2;
    pub const FLOAT: u64 = 3;
    pub const STR: u64 = 4;
    pub const LIST: u64 = 5;
    pub const MAP: u64 = 6;
    pub const RECORD: u64 = 7;
    pub const FUNC: u64 = 8;
    pub const CLOSURE: u64 = 9;
    pub const CELL: u64 = 10;
    pub const ERROR: u64 = 11;
    pub const ITER: u64 = 12;
    pub const RANGE: u64 = 13;
    pub const TASK: u64 = 14;
}

impl Value {
    pub const NULL: Value = Value::new(Kind::Null);

    #[inline]
    pub const fn new(kind: Kind) -> Value {
        Value::with(kind, Label::PUBLIC)
    }

    #[inline]
    pub const fn with(kind: Kind, label: Label) -> Value {
        let (t, bits) = match kind {
            Kind::Null => (tag::NULL, 0),
            Kind::Bool(b) => (tag::BOOL, b as u64),
            Kind::Int(i) => (tag::INT, i as u64),
            Kind::Float(f) => (tag::FLOAT, f.to_bits()),
            Kind::Str(s) => (tag::STR, s.obj.0 as u64 | (s.len as u64) << 32),
            Kind::List(o) => (tag::LIST, o.0 as u64),
            Kind::Map(o) => (tag::MAP, o.0 as u64),
            Kind::Record(o) => (tag::RECORD, o.0 as u64),
            Kind::Func(f) => (tag::FUNC, f as u64),
            Kind::Closure(o) => (tag::CLOSURE, o.0 as u64),
            Kind::Cell(o) => (tag::CELL, o.0 as u64),
            Kind::Error(o) => (tag::ERROR, o.0 as u64),
            Kind::Iter(o) => (tag::ITER, o.0 as u64),
            Kind::Range(o) => (tag::RANGE, o.0 as u64),
            Kind::Task(t) => (tag::TASK, t as u64),
        };
        Value {
            head: t | (label.0 as u64) << 32,
            bits,
        }
    }

    /// The two words of the value, for the JIT, which holds values as machine words.
    #[inline]
    pub(crate) const fn to_raw(self) -> (u64, u64) {
        (self.head, self.bits)
    }

    /// The value of two words that [`Value::to_raw`] made (or of a public tag and its
    /// payload). Other words make a valid value too: an unknown tag reads as null.
    #[inline]
    pub(crate) const fn from_raw(head: u64, bits: u64) -> Value {
        Value { head, bits }
    }

    /// What the value is.
    #[inline]
    pub const fn kind(&self) -> Kind {
        let o = ObjId(self.bits as u32);
        match self.head & 0xff {
            tag::BOOL => Kind::Bool(self.bits != 0),
            tag::INT => Kind::Int(self.bits as i64),
            tag::FLOAT => Kind::Float(f64::from_bits(self.bits)),
            tag::STR => Kind::Str(StrRef {
                obj: o,
                len: (self.bits >> 32) as u32,
            }),
            tag::LIST => Kind::List(o),
            tag::MAP => Kind::Map(o),
            tag::RECORD => Kind::Record(o),
            tag::FUNC => Kind::Func(self.bits as u32),
            tag::CLOSURE => Kind::Closure(o),
            tag::CELL => Kind::Cell(o),
            tag::ERROR => Kind::Error(o),
            tag::ITER => Kind::Iter(o),
            tag::RANGE => Kind::Range(o),
            tag::TASK => Kind::Task(self.bits as u32),
            // Values are only built by `with`, which never makes another tag.
            _ => Kind::Null,
        }
    }

    /// The value's information-flow label.
    #[inline]
    pub const fn label(&self) -> Label {
        Label((self.head >> 32) as u32)
    }

    /// The int, if this is an int with the public label: one compare.
    #[inline]
    pub const fn public_int(&self) -> Option<i64> {
        if self.head == tag::INT {
            Some(self.bits as i64)
        } else {
            None
        }
    }

    /// The int, whatever the label.
    #[inline]
    pub const fn as_int(&self) -> Option<i64> {
        if self.head & 0xff == tag::INT {
            Some(self.bits as i64)
        } else {
            None
        }
    }

    /// The bool, if this is a bool with the public label: one compare (a branch on it needs
    /// no change of the control label).
    #[inline]
    pub const fn public_bool(&self) -> Option<bool> {
        if self.head == tag::BOOL {
            Some(self.bits != 0)
        } else {
            None
        }
    }

    /// The bool, whatever the label.
    #[inline]
    pub const fn as_bool(&self) -> Option<bool> {
        if self.head & 0xff == tag::BOOL {
            Some(self.bits != 0)
        } else {
            None
        }
    }

    /// Whether this is a string, whatever the label.
    #[inline]
    pub const fn is_str(&self) -> bool {
        self.head & 0xff == tag::STR
    }

    /// The float, whatever the label.
    #[inline]
    pub const fn as_float(&self) -> Option<f64> {
        if self.head & 0xff == tag::FLOAT {
            Some(f64::from_bits(self.bits))
        } else {
            None
        }
    }

    /// The float, if this is a float with the public label: one compare.
    #[inline]
    pub const fn public_float(&self) -> Option<f64> {
        if self.head == tag::FLOAT {
            Some(f64::from_bits(self.bits))
        } else {
            None
        }
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
            head: (self.head & 0xff) | (label.0 as u64) << 32,
            bits: self.bits,
        }
    }

    /// The heap object this value refers to, if any.
    pub fn obj(&self) -> Option<ObjId> {
        match self.kind() {
            Kind::Str(s) => Some(s.obj),
            Kind::List(o)
            | Kind::Map(o)
            | Kind::Record(o)
            | Kind::Closure(o)
            | Kind::Cell(o)
            | Kind::Error(o)
            | Kind::Iter(o)
            | Kind::Range(o) => Some(o),
            Kind::Null
            | Kind::Bool(_)
            | Kind::Int(_)
            | Kind::Float(_)
            | Kind::Func(_)
            | Kind::Task(_) => None,
        }
    }

    /// The name `type_of` gives this value's kind.
    pub fn type_name(&self) -> &'static str {
        match self.kind() {
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
            Kind::Task(_) => "task",
        }
    }
}

/// A map key: a string (hashed by content) or an int. Lookups take a `KeyRef`, so a string
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
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }

    #[test]
    fn values_round_trip_through_their_parts() {
        let s = StrRef {
            obj: ObjId(7),
            len: u32::MAX,
        };
        for k in [
            Kind::Null,
            Kind::Bool(true),
            Kind::Int(-5),
            Kind::Int(i64::MIN),
            Kind::Float(-0.5),
            Kind::Str(s),
            Kind::Map(ObjId(u32::MAX)),
            Kind::Func(3),
            Kind::Range(ObjId(1)),
            Kind::Task(u32::MAX),
        ] {
            let v = Value::with(k, Label(9));
            assert_eq!(v.kind(), k);
            assert_eq!(v.label(), Label(9));
            assert_eq!(v.labelled(Label::PUBLIC).kind(), k);
        }
        assert_eq!(Value::int(3).public_int(), Some(3));
        assert_eq!(Value::int(3).labelled(Label(1)).public_int(), None);
        let json = serde_json::to_string(&Value::with(Kind::Int(4), Label(2))).unwrap();
        assert_eq!(json, r#"{"kind":{"Int":4},"label":2}"#);
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
