//! The heap: an arena of object slots addressed by [`ObjId`] with a free list, and a
//! mark-and-sweep collector (cycles included). It accounts approximate bytes (object size plus
//! buffer capacities) so the interpreter can run a collection when enough was allocated since
//! the last one and enforce the heap limit. Collections happen only when the interpreter asks,
//! at points where every live value is in a root.

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use crate::error::{bad_map_key, R};
use crate::format::FuncId;
use crate::label::Label;
use crate::value::{Key, KeyRef, Kind, ObjId, StrRef, Value};

/// A collection runs at least after this many bytes are allocated, whatever the live size.
const MIN_GC_THRESHOLD: usize = 1 << 20;

/// A string buffer. String values are views of a prefix of one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StrBuf {
    pub text: String,
    /// Whether `text` is all ASCII, so character indices are byte indices.
    pub ascii: bool,
    /// A frozen buffer (a constant's) is never appended to in place.
    pub frozen: bool,
}

/// The length in characters of `text`, a view of a buffer whose `ascii` flag is given: for an
/// all-ASCII buffer that is the byte length, without a walk over the text.
pub(crate) fn char_count(text: &str, ascii: bool) -> usize {
    if ascii {
        text.len()
    } else {
        text.chars().count()
    }
}

/// One entry of a map: the key's label and the value.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct MapEntry {
    pub key_label: Label,
    pub value: Value,
}

pub type Entries = IndexMap<Key, MapEntry, FxBuildHasher>;

/// A map: insertion-ordered, with a fast deterministic hasher.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MapObj {
    #[serde(with = "entries_as_pairs")]
    pub entries: Entries,
    /// Bytes held by string keys, for accounting.
    pub key_bytes: usize,
}

/// Map entries serialise as a list of `[key, entry]` pairs: keys may be ints, which formats
/// such as JSON do not allow as object keys.
mod entries_as_pairs {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Entries, MapEntry};
    use crate::value::Key;

    pub fn serialize<S: Serializer>(e: &Entries, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(e.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        let pairs: Vec<(Key, MapEntry)> = Vec::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

/// A record: the field names are the module constant `shape` (a `Constant::Shape`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordObj {
    pub shape: u32,
    pub vals: Vec<Value>,
}

/// A function with the cells it captured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosureObj {
    pub func: FuncId,
    pub caps: Vec<ObjId>,
}

/// An error value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorObj {
    pub kind: String,
    pub message: String,
    /// The thrown value when a non-error was thrown; null otherwise.
    pub payload: Value,
}

/// The position of an iterator.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum IterObj {
    List { list: ObjId, next: usize },
    Map { map: ObjId, next: usize },
    Str { s: StrRef, byte: usize, index: i64 },
    Range { start: i64, next: i64, end: i64 },
}

/// A heap object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Obj {
    Str(StrBuf),
    List(Vec<Value>),
    Map(MapObj),
    Record(RecordObj),
    Closure(ClosureObj),
    Cell(Value),
    Error(ErrorObj),
    Iter(IterObj),
    Range(i64, i64),
}

impl Obj {
    /// Approximate bytes held: the slot plus buffer capacities. O(1).
    pub fn size(&self) -> usize {
        let extra = match self {
            Obj::Str(s) => s.text.capacity(),
            Obj::List(v) => v.capacity() * std::mem::size_of::<Value>(),
            Obj::Map(m) => {
                m.entries.capacity()
                    * (std::mem::size_of::<Key>() + std::mem::size_of::<MapEntry>() + 16)
                    + m.key_bytes
            }
            Obj::Record(r) => r.vals.capacity() * std::mem::size_of::<Value>(),
            Obj::Closure(c) => c.caps.capacity() * std::mem::size_of::<ObjId>(),
            Obj::Error(e) => e.kind.capacity() + e.message.capacity(),
            Obj::Cell(_) | Obj::Iter(_) | Obj::Range(..) => 0,
        };
        std::mem::size_of::<Option<Obj>>() + extra
    }

    /// Calls `f` on every value and object this one refers to.
    fn children(&self, mut f: impl FnMut(Child)) {
        match self {
            Obj::Str(_) | Obj::Range(..) => {}
            Obj::List(v) => v.iter().for_each(|x| f(Child::Value(*x))),
            Obj::Map(m) => m.entries.values().for_each(|e| f(Child::Value(e.value))),
            Obj::Record(r) => r.vals.iter().for_each(|x| f(Child::Value(*x))),
            Obj::Closure(c) => c.caps.iter().for_each(|o| f(Child::Obj(*o))),
            Obj::Cell(v) => f(Child::Value(*v)),
            Obj::Error(e) => f(Child::Value(e.payload)),
            Obj::Iter(it) => match *it {
                IterObj::List { list, .. } => f(Child::Obj(list)),
                IterObj::Map { map, .. } => f(Child::Obj(map)),
                IterObj::Str { s, .. } => f(Child::Obj(s.obj)),
                IterObj::Range { .. } => {}
            },
        }
    }
}

/// Something an object refers to.
enum Child {
    Value(Value),
    Obj(ObjId),
}

impl Child {
    fn obj(&self) -> Option<ObjId> {
        match self {
            Child::Value(v) => v.obj(),
            Child::Obj(o) => Some(*o),
        }
    }
}

/// A reference to a missing or mismatched object: a bug or a corrupted restored state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("heap object {0:?} is missing or of the wrong kind")]
pub struct Dangling(pub ObjId);

/// The arena.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heap {
    slots: Vec<Option<Obj>>,
    free: Vec<u32>,
    /// Approximate bytes of the objects in use (exact as of the last collection, then tracked).
    bytes: usize,
    /// Bytes allocated or grown since the last collection.
    since_gc: usize,
    threshold: usize,
    collections: u64,
    /// The heap limit; set by the VM from its limits, not part of the state.
    #[serde(skip, default = "usize_max")]
    limit: usize,
}

fn usize_max() -> usize {
    usize::MAX
}

impl Default for Heap {
    fn default() -> Self {
        Heap {
            slots: Vec::new(),
            free: Vec::new(),
            bytes: 0,
            since_gc: 0,
            threshold: MIN_GC_THRESHOLD,
            collections: 0,
            limit: usize::MAX,
        }
    }
}

macro_rules! accessor {
    ($get:ident, $variant:ident, $ty:ty) => {
        pub fn $get(&self, id: ObjId) -> Result<&$ty, Dangling> {
            match self.slots.get(id.0 as usize) {
                Some(Some(Obj::$variant(x))) => Ok(x),
                _ => Err(Dangling(id)),
            }
        }
    };
    ($get:ident, $get_mut:ident, $variant:ident, $ty:ty) => {
        accessor!($get, $variant, $ty);

        /// Mutable access. Growth of buffers must be reported with [`Heap::resized`].
        pub fn $get_mut(&mut self, id: ObjId) -> Result<&mut $ty, Dangling> {
            match self.slots.get_mut(id.0 as usize) {
                Some(Some(Obj::$variant(x))) => Ok(x),
                _ => Err(Dangling(id)),
            }
        }
    };
}

impl Heap {
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Approximate bytes in use.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of objects alive (or not yet collected).
    pub fn objects(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn alloc(&mut self, obj: Obj) -> ObjId {
        let size = obj.size();
        self.bytes += size;
        self.since_gc += size;
        match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i as usize) {
                    *slot = Some(obj);
                    return ObjId(i);
                }
                // A free-list entry past the end cannot happen (sweep only frees existing
                // slots); fall back to a new slot rather than lose the object.
                self.push_slot(obj)
            }
            None => self.push_slot(obj),
        }
    }

    fn push_slot(&mut self, obj: Obj) -> ObjId {
        self.slots.push(Some(obj));
        ObjId((self.slots.len() - 1) as u32)
    }

    /// Reports that an object changed size from `before` to `after` bytes.
    #[inline]
    pub fn resized(&mut self, before: usize, after: usize) {
        if after >= before {
            self.bytes += after - before;
            self.since_gc += after - before;
        } else {
            self.bytes = self.bytes.saturating_sub(before - after);
        }
    }

    /// Whether the interpreter should collect at its next safe point.
    #[inline]
    pub fn gc_due(&self) -> bool {
        self.since_gc >= self.threshold || self.bytes > self.limit
    }

    /// Whether growing by `extra` bytes would pass the limit even if everything else were
    /// garbage; used to refuse one huge allocation up front.
    pub fn would_exceed(&self, extra: usize) -> bool {
        extra > self.limit
    }

    pub fn get(&self, id: ObjId) -> Result<&Obj, Dangling> {
        match self.slots.get(id.0 as usize) {
            Some(Some(o)) => Ok(o),
            _ => Err(Dangling(id)),
        }
    }

    accessor!(strbuf, strbuf_mut, Str, StrBuf);
    accessor!(list, list_mut, List, Vec<Value>);
    accessor!(map, map_mut, Map, MapObj);
    accessor!(record, record_mut, Record, RecordObj);
    accessor!(closure, Closure, ClosureObj);
    accessor!(cell, cell_mut, Cell, Value);
    accessor!(error, error_mut, Error, ErrorObj);
    accessor!(iter, iter_mut, Iter, IterObj);

    /// The text of a string value.
    #[inline]
    pub fn str(&self, s: StrRef) -> Result<&str, Dangling> {
        self.strbuf(s.obj)?
            .text
            .get(..s.len as usize)
            .ok_or(Dangling(s.obj))
    }

    /// The map key that `key` stands for, or the TypeError a map raises for a key that is
    /// neither a string nor an int.
    pub(crate) fn map_key(&self, key: Value) -> R<KeyRef<'_>> {
        match key.kind() {
            Kind::Int(i) => Ok(KeyRef::Int(i)),
            Kind::Str(s) => Ok(KeyRef::Str(self.str(s)?)),
            _ => Err(bad_map_key(key)),
        }
    }

    /// Whether the text of a string value is all ASCII.
    pub fn str_is_ascii(&self, s: StrRef) -> Result<bool, Dangling> {
        Ok(self.strbuf(s.obj)?.ascii)
    }

    pub fn range(&self, id: ObjId) -> Result<(i64, i64), Dangling> {
        match self.slots.get(id.0 as usize) {
            Some(Some(Obj::Range(lo, hi))) => Ok((*lo, *hi)),
            _ => Err(Dangling(id)),
        }
    }

    /// A new string buffer holding `text`, and the view of all of it. `None` when the text is
    /// longer than a string value can be (4 GiB).
    pub fn alloc_str(&mut self, text: String) -> Option<StrRef> {
        let len = u32::try_from(text.len()).ok()?;
        let ascii = text.is_ascii();
        let obj = self.alloc(Obj::Str(StrBuf {
            text,
            ascii,
            frozen: false,
        }));
        Some(StrRef { obj, len })
    }

    /// `a + b` for strings. When `a` is the whole of an unfrozen buffer, `b` is appended to that
    /// buffer in place and the result is a longer view of it (older views keep seeing their
    /// prefix), so `s = s + x` in a loop is linear. Otherwise the text is copied into a new
    /// buffer. `None` when the result would be longer than a string can be.
    pub fn concat(&mut self, a: StrRef, b: StrRef) -> Result<Option<StrRef>, Dangling> {
        let Ok(total) = u32::try_from(a.len as usize + b.len as usize) else {
            return Ok(None);
        };
        // The common case first: appending another buffer's text to a whole unfrozen buffer,
        // with both slots borrowed at once.
        if a.obj != b.obj {
            if let Ok([Some(Obj::Str(ab)), Some(Obj::Str(bb))]) = self
                .slots
                .get_disjoint_mut([a.obj.0 as usize, b.obj.0 as usize])
            {
                if !ab.frozen && ab.text.len() == a.len as usize {
                    if let Some(t) = bb.text.get(..b.len as usize) {
                        let before = ab.text.capacity();
                        ab.text.push_str(t);
                        // A prefix of an all-ASCII buffer is ASCII.
                        ab.ascii &= bb.ascii || t.is_ascii();
                        let after = ab.text.capacity();
                        self.resized(before, after);
                        return Ok(Some(StrRef {
                            obj: a.obj,
                            len: total,
                        }));
                    }
                }
            }
        }
        let buf = self.strbuf(a.obj)?;
        if !buf.frozen && buf.text.len() == a.len as usize {
            let mut text = std::mem::take(&mut self.strbuf_mut(a.obj)?.text);
            let before = text.capacity();
            // The appended text is read while `a`'s text is out of its slot; `s + s` reads it
            // from the taken text itself.
            let result = if b.obj == a.obj {
                match text.get(..b.len as usize).map(str::to_owned) {
                    Some(t) => {
                        text.push_str(&t);
                        Ok(t.is_ascii())
                    }
                    None => Err(Dangling(b.obj)),
                }
            } else {
                match self.str(b) {
                    Ok(t) => {
                        text.push_str(t);
                        Ok(t.is_ascii())
                    }
                    Err(e) => Err(e),
                }
            };
            let after = text.capacity();
            let buf = self.strbuf_mut(a.obj)?;
            buf.text = text;
            let ascii = result?;
            buf.ascii &= ascii;
            self.resized(before, after);
            return Ok(Some(StrRef {
                obj: a.obj,
                len: total,
            }));
        }
        let mut text = String::with_capacity(total as usize);
        text.push_str(self.str(a)?);
        text.push_str(self.str(b)?);
        Ok(self.alloc_str(text))
    }

    /// Sets `key` of map `m`, keeping the byte accounting.
    pub fn map_insert(&mut self, m: ObjId, key: Key, entry: MapEntry) -> Result<(), Dangling> {
        let Some(Some(obj)) = self.slots.get_mut(m.0 as usize) else {
            return Err(Dangling(m));
        };
        let before = obj.size();
        let Obj::Map(map) = obj else {
            return Err(Dangling(m));
        };
        if let Key::Str(s) = &key {
            if !map.entries.contains_key(&key.as_ref()) {
                map.key_bytes += s.len();
            }
        }
        map.entries.insert(key, entry);
        let after = obj.size();
        self.resized(before, after);
        Ok(())
    }

    /// Calls `f` on list `l`, keeping the byte accounting (for pushes and inserts).
    pub fn with_list<T>(
        &mut self,
        l: ObjId,
        f: impl FnOnce(&mut Vec<Value>) -> T,
    ) -> Result<T, Dangling> {
        let Some(Some(obj)) = self.slots.get_mut(l.0 as usize) else {
            return Err(Dangling(l));
        };
        let before = obj.size();
        let Obj::List(list) = obj else {
            return Err(Dangling(l));
        };
        let out = f(list);
        let after = obj.size();
        self.resized(before, after);
        Ok(out)
    }

    /// Marks every object reachable from `roots` and frees the rest. Returns the live bytes.
    pub fn collect(&mut self, roots: impl IntoIterator<Item = Value>, objs: &[ObjId]) -> usize {
        let mut marks = vec![false; self.slots.len()];
        let mut work: Vec<ObjId> = Vec::new();
        work.extend(roots.into_iter().filter_map(|v| v.obj()));
        work.extend_from_slice(objs);
        while let Some(id) = work.pop() {
            let Some(mark) = marks.get_mut(id.0 as usize) else {
                continue;
            };
            if *mark {
                continue;
            }
            *mark = true;
            if let Some(Some(obj)) = self.slots.get(id.0 as usize) {
                obj.children(|c| work.extend(c.obj()));
            }
        }
        let mut live = 0;
        self.free.clear();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            match slot {
                Some(obj) if marks[i] => live += obj.size(),
                _ => {
                    *slot = None;
                    self.free.push(i as u32);
                }
            }
        }
        // Hand out low slots first, so reuse is deterministic and the arena stays compact.
        self.free.reverse();
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        let len = self.slots.len() as u32;
        self.free.retain(|&i| i < len);
        self.bytes = live;
        self.since_gc = 0;
        self.threshold = live.max(MIN_GC_THRESHOLD);
        self.collections += 1;
        live
    }

    /// Checks a restored heap: the free list, and that every reference held by an object
    /// points to a live object of the right kind (and functions below `nfuncs`).
    pub(crate) fn check(&self, nfuncs: usize) -> Result<(), Dangling> {
        for &i in &self.free {
            if !matches!(self.slots.get(i as usize), Some(None)) {
                return Err(Dangling(ObjId(i)));
            }
        }
        for (i, obj) in self.slots.iter().enumerate() {
            let Some(obj) = obj else { continue };
            let here = Dangling(ObjId(i as u32));
            let mut ok = true;
            obj.children(|c| {
                if let Child::Value(v) = c {
                    ok &= self.kind_matches(v);
                    if let Kind::Func(f) = v.kind() {
                        ok &= (f as usize) < nfuncs;
                    }
                }
            });
            ok &= match obj {
                Obj::Closure(c) => {
                    (c.func as usize) < nfuncs && c.caps.iter().all(|o| self.cell(*o).is_ok())
                }
                Obj::Iter(IterObj::List { list, .. }) => self.list(*list).is_ok(),
                Obj::Iter(IterObj::Map { map, .. }) => self.map(*map).is_ok(),
                Obj::Iter(IterObj::Str { s, .. }) => self.str(*s).is_ok(),
                _ => true,
            };
            if !ok {
                return Err(here);
            }
        }
        Ok(())
    }

    /// Whether `v` refers to a live object of the kind its tag says.
    pub(crate) fn kind_matches(&self, v: Value) -> bool {
        let Some(id) = v.obj() else { return true };
        let Ok(obj) = self.get(id) else { return false };
        matches!(
            (v.kind(), obj),
            (Kind::Str(_), Obj::Str(_))
                | (Kind::List(_), Obj::List(_))
                | (Kind::Map(_), Obj::Map(_))
                | (Kind::Record(_), Obj::Record(_))
                | (Kind::Closure(_), Obj::Closure(_))
                | (Kind::Cell(_), Obj::Cell(_))
                | (Kind::Error(_), Obj::Error(_))
                | (Kind::Iter(_), Obj::Iter(_))
                | (Kind::Range(_), Obj::Range(..))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_frees_unreachable_cycles_and_keeps_reachable_ones() {
        let mut h = Heap::default();
        let a = h.alloc(Obj::List(Vec::new()));
        let b = h.alloc(Obj::List(vec![Value::new(Kind::List(a))]));
        h.list_mut(a).unwrap().push(Value::new(Kind::List(b)));
        let kept = h.alloc(Obj::List(Vec::with_capacity(100)));
        let before = h.bytes();
        h.collect([Value::new(Kind::List(kept))], &[]);
        assert!(h.list(a).is_err() && h.list(b).is_err());
        assert!(h.list(kept).is_ok());
        assert!(h.bytes() < before);
        assert_eq!(h.objects(), 1);
        let again = h.alloc(Obj::Cell(Value::NULL));
        assert_eq!(again.0, 0, "freed low slots are reused first");
    }
}
