//! Constants, closures and cells, and the collection instructions: building lists, maps and
//! records, indexing, fields, slices, ranges and iterators. The label of a value read out of a
//! container is the join of the container's, the key's and the element's labels.

use crate::error::{bad_map_key, kind, Fatal, Raise, R};
use crate::format::{Constant, RegRange};
use crate::heap::{
    char_count, ClosureObj, ErrorObj, IterObj, MapEntry, MapObj, Obj, RecordObj, StrBuf,
};
use crate::label::Label;
use crate::text::shape_names;
use crate::value::{Key, KeyRef, Kind, ObjId, StrRef, Value};

use super::exec::Exec;

fn corrupt(what: &str) -> Raise {
    Raise::Fatal(Fatal::Corrupt(what.to_string()))
}

/// A TypeError for an operand that only compiler-made code sets up right (a cell, an
/// iterator): a verified module may still get it wrong, and must fail catchably, not as a
/// corrupt VM.
fn not_a(instr: &str, what: &str, v: Value) -> Raise {
    Raise::rt(
        kind::TYPE,
        format!("{instr} needs a {what}, found {}", v.type_name()),
    )
}

fn index_err(i: i64, len: usize, what: &str) -> Raise {
    if i < 0 {
        Raise::rt(
            kind::INDEX,
            format!("negative index {i} ({what}s are indexed from 0)"),
        )
    } else {
        Raise::rt(
            kind::INDEX,
            format!("index {i} is out of range for a {what} of length {len}"),
        )
    }
}

/// `i` as an index into something of length `len`.
fn index(i: i64, len: usize, what: &str) -> R<usize> {
    usize::try_from(i)
        .ok()
        .filter(|&u| u < len)
        .ok_or_else(|| index_err(i, len, what))
}

fn key_err(k: KeyRef) -> Raise {
    Raise::rt(
        kind::KEY,
        match k {
            KeyRef::Int(i) => format!("key {i} not found"),
            KeyRef::Str(s) => format!("key \"{s}\" not found"),
        },
    )
}

/// The byte range of characters `lo..hi` of `s`, or `None` if out of range.
pub(crate) fn char_span(s: &str, ascii: bool, lo: usize, hi: usize) -> Option<(usize, usize)> {
    if ascii {
        return (lo <= hi && hi <= s.len()).then_some((lo, hi));
    }
    let mut starts = s
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(s.len()));
    let b_lo = starts.by_ref().nth(lo)?;
    let b_hi = if hi == lo {
        b_lo
    } else {
        starts.nth(hi.checked_sub(lo + 1)?)?
    };
    Some((b_lo, b_hi))
}

impl Exec<'_> {
    /// The value of constant `k`; a string constant is put on the heap once, frozen.
    pub(super) fn constant(&mut self, k: u32) -> R<Value> {
        let module = self.cx.module;
        match module.constants.get(k as usize) {
            Some(Constant::Int(i)) => Ok(Value::int(*i)),
            Some(Constant::Float(f)) => Ok(Value::float(*f)),
            Some(Constant::Str(sid)) => {
                if let Some(Some(s)) = self.consts.get(k as usize) {
                    return Ok(Value::new(Kind::Str(*s)));
                }
                let text = module.str(*sid).to_string();
                let len = u32::try_from(text.len()).map_err(|_| corrupt("constant length"))?;
                let obj = self.cx.heap.alloc(Obj::Str(StrBuf {
                    ascii: text.is_ascii(),
                    text,
                    frozen: true,
                }));
                let s = StrRef { obj, len };
                if let Some(slot) = self.consts.get_mut(k as usize) {
                    *slot = Some(s);
                }
                Ok(Value::new(Kind::Str(s)))
            }
            _ => Err(corrupt("constant")),
        }
    }

    pub(super) fn closure(&mut self, regs: &[Value], func: u32, caps: RegRange) -> R<Value> {
        let start = caps.start as usize;
        let mut cells = Vec::with_capacity(caps.count as usize);
        for v in &regs[start..start + caps.count as usize] {
            match v.kind() {
                Kind::Cell(o) => cells.push(o),
                _ => {
                    return Err(Raise::rt(
                        kind::TYPE,
                        format!("a closure can only capture cells, found {}", v.type_name()),
                    ))
                }
            }
        }
        let o = self
            .cx
            .heap
            .alloc(Obj::Closure(ClosureObj { func, caps: cells }));
        Ok(Value::new(Kind::Closure(o)))
    }

    pub(super) fn cell_new(&mut self, v: Value) -> Value {
        Value::new(Kind::Cell(self.cx.heap.alloc(Obj::Cell(v))))
    }

    pub(super) fn cell_get(&mut self, c: Value) -> R<Value> {
        match c.kind() {
            Kind::Cell(o) => Ok(*self.cx.heap.cell(o)?),
            _ => Err(not_a("CellGet", "cell", c)),
        }
    }

    pub(super) fn cell_set(&mut self, c: Value, v: Value) -> R<()> {
        match c.kind() {
            Kind::Cell(o) => {
                *self.cx.heap.cell_mut(o)? = v;
                Ok(())
            }
            _ => Err(not_a("CellSet", "cell", c)),
        }
    }

    /// Captured cell `idx` of the running closure. A function whose captures were not all
    /// supplied (called directly, or closed over fewer cells) fails with a TypeError.
    fn upval(&self, closure: Option<ObjId>, idx: u16) -> R<ObjId> {
        let missing = || {
            Raise::rt(
                kind::TYPE,
                format!("captured variable {idx} is missing: the function was not called as a closure of its cells"),
            )
        };
        let c = closure.ok_or_else(missing)?;
        let caps = &self.cx.heap.closure(c)?.caps;
        caps.get(idx as usize).copied().ok_or_else(missing)
    }

    pub(super) fn upval_get(&mut self, closure: Option<ObjId>, idx: u16) -> R<Value> {
        let cell = self.upval(closure, idx)?;
        Ok(*self.cx.heap.cell(cell)?)
    }

    pub(super) fn upval_set(&mut self, closure: Option<ObjId>, idx: u16, v: Value) -> R<()> {
        let cell = self.upval(closure, idx)?;
        *self.cx.heap.cell_mut(cell)? = v;
        Ok(())
    }

    pub(super) fn upval_cell(&mut self, closure: Option<ObjId>, idx: u16) -> R<Value> {
        Ok(Value::new(Kind::Cell(self.upval(closure, idx)?)))
    }

    pub(super) fn new_list(&mut self, regs: &[Value], items: RegRange) -> Value {
        let start = items.start as usize;
        let v = regs[start..start + items.count as usize].to_vec();
        self.cx.new_list(v)
    }

    pub(super) fn new_map(&mut self, regs: &[Value], kvs: RegRange) -> R<Value> {
        let start = kvs.start as usize;
        let o = self.cx.heap.alloc(Obj::Map(MapObj::default()));
        for pair in regs[start..start + kvs.count as usize].chunks(2) {
            if let [k, v] = pair {
                self.map_set(o, *k, *v)?;
            }
        }
        Ok(Value::new(Kind::Map(o)))
    }

    pub(super) fn new_record(&mut self, regs: &[Value], shape: u32, vals: RegRange) -> Value {
        let start = vals.start as usize;
        let vals = regs[start..start + vals.count as usize].to_vec();
        let o = self.cx.heap.alloc(Obj::Record(RecordObj { shape, vals }));
        Value::new(Kind::Record(o))
    }

    /// Sets `key` of map `m` to `v`; the key's label is kept with the entry.
    fn map_set(&mut self, m: ObjId, key: Value, v: Value) -> R<()> {
        let entry = MapEntry {
            key_label: key.label(),
            value: v,
        };
        let heap = &mut *self.cx.heap;
        match key.kind() {
            Kind::Int(i) => Ok(heap.map_insert(m, Key::Int(i), entry)?),
            Kind::Str(s) => {
                let existing = {
                    let k = KeyRef::Str(heap.str(s)?);
                    heap.map(m)?.entries.get_index_of(&k)
                };
                match existing {
                    Some(i) => {
                        if let Some((_, e)) = heap.map_mut(m)?.entries.get_index_mut(i) {
                            *e = entry;
                        }
                        Ok(())
                    }
                    None => {
                        let k = Key::Str(heap.str(s)?.into());
                        Ok(heap.map_insert(m, k, entry)?)
                    }
                }
            }
            _ => Err(bad_map_key(key)),
        }
    }

    /// The entry of map `m` for `key`.
    fn map_get(&self, m: ObjId, key: Value) -> R<MapEntry> {
        let heap = &*self.cx.heap;
        let k = heap.map_key(key)?;
        heap.map(m)?
            .entries
            .get(&k)
            .copied()
            .ok_or_else(|| key_err(k))
    }

    /// The field of record `r` named by string `name` of the pool, if it has one.
    #[inline]
    pub(super) fn field_ref(&mut self, r: ObjId, name: u32) -> Option<&mut Value> {
        let want = *self.canon.get(name as usize)?;
        let shapes = self.shapes;
        let rec = self.cx.heap.record_mut(r).ok()?;
        let i = shapes
            .get(rec.shape as usize)?
            .iter()
            .position(|&n| n == want)?;
        rec.vals.get_mut(i)
    }

    /// The position of field `name` in record `r`, or a KeyError if it has none.
    fn field_index(&self, r: ObjId, name: &str) -> R<usize> {
        let module = self.cx.module;
        let rec = self.cx.heap.record(r)?;
        shape_names(module, rec.shape)
            .iter()
            .position(|n| module.str(*n) == name)
            .ok_or_else(|| Raise::rt(kind::KEY, format!("record has no field \"{name}\"")))
    }

    /// A one-character string: character `i` of `s`.
    fn char_at(&mut self, s: StrRef, i: i64) -> R<Value> {
        let heap = &*self.cx.heap;
        let text = heap.str(s)?;
        let ascii = heap.str_is_ascii(s)?;
        let len = char_count(text, ascii);
        let at = index(i, len, "string")?;
        let (lo, hi) =
            char_span(text, ascii, at, at + 1).ok_or_else(|| index_err(i, len, "string"))?;
        let c = text[lo..hi].to_string();
        self.cx.new_str(c)
    }

    pub(super) fn get_index(&mut self, obj: Value, key: Value) -> R<Value> {
        let label = self.cx.labels.join(obj.label(), key.label());
        let v = match (obj.kind(), key.kind()) {
            (Kind::List(o), Kind::Int(i)) => {
                let list = self.cx.heap.list(o)?;
                list[index(i, list.len(), "list")?]
            }
            (Kind::Str(s), Kind::Int(i)) => self.char_at(s, i)?,
            (Kind::Map(o), _) => {
                let e = self.map_get(o, key)?;
                e.value
                    .labelled(self.cx.labels.join(e.value.label(), e.key_label))
            }
            (Kind::Record(o), Kind::Str(s)) => {
                let name = self.cx.heap.str(s)?.to_string();
                return self.get_field_named(obj, o, &name);
            }
            _ => {
                return Err(Raise::rt(
                    kind::TYPE,
                    format!(
                        "cannot index a {} with a {}",
                        obj.type_name(),
                        key.type_name()
                    ),
                ))
            }
        };
        Ok(v.labelled(self.cx.labels.join(label, v.label())))
    }

    pub(super) fn set_index(&mut self, obj: Value, key: Value, src: Value) -> R<()> {
        let v = src.labelled(self.cx.labels.join(src.label(), key.label()));
        match (obj.kind(), key.kind()) {
            (Kind::List(o), Kind::Int(i)) => {
                let list = self.cx.heap.list_mut(o)?;
                let at = index(i, list.len(), "list")?;
                list[at] = v;
                Ok(())
            }
            (Kind::Map(o), _) => self.map_set(o, key, v),
            (Kind::Record(o), Kind::Str(s)) => {
                let name = self.cx.heap.str(s)?.to_string();
                self.set_field_named(o, &name, v)
            }
            _ => Err(Raise::rt(
                kind::TYPE,
                format!(
                    "cannot set an element of a {} with a {} key",
                    obj.type_name(),
                    key.type_name()
                ),
            )),
        }
    }

    pub(super) fn get_field(&mut self, obj: Value, name: u32) -> R<Value> {
        let module = self.cx.module;
        let fname = module.str(name);
        match obj.kind() {
            Kind::Record(o) => self.get_field_named(obj, o, fname),
            Kind::Map(o) => {
                let e = *self
                    .cx
                    .heap
                    .map(o)?
                    .entries
                    .get(&KeyRef::Str(fname))
                    .ok_or_else(|| key_err(KeyRef::Str(fname)))?;
                let l = self.cx.labels.join(obj.label(), e.value.label());
                Ok(e.value.labelled(self.cx.labels.join(l, e.key_label)))
            }
            Kind::Error(o) => {
                let ErrorObj {
                    kind: k,
                    message,
                    payload,
                } = self.cx.heap.error(o)?;
                let v = match fname {
                    "kind" => {
                        let k = k.clone();
                        self.cx.new_str(k)?
                    }
                    "message" => {
                        let m = message.clone();
                        self.cx.new_str(m)?
                    }
                    "payload" => *payload,
                    _ => {
                        return Err(Raise::rt(
                            kind::KEY,
                            format!(
                                "an error has no field \"{fname}\" (it has kind, message, payload)"
                            ),
                        ))
                    }
                };
                Ok(v.labelled(self.cx.labels.join(obj.label(), v.label())))
            }
            _ => Err(Raise::rt(
                kind::TYPE,
                format!("cannot read field \"{fname}\" of a {}", obj.type_name()),
            )),
        }
    }

    fn get_field_named(&mut self, obj: Value, o: ObjId, name: &str) -> R<Value> {
        let i = self.field_index(o, name)?;
        let v = self
            .cx
            .heap
            .record(o)?
            .vals
            .get(i)
            .copied()
            .ok_or_else(|| corrupt("record shape"))?;
        Ok(v.labelled(self.cx.labels.join(obj.label(), v.label())))
    }

    fn set_field_named(&mut self, o: ObjId, name: &str, v: Value) -> R<()> {
        let i = self.field_index(o, name)?;
        let slot = self
            .cx
            .heap
            .record_mut(o)?
            .vals
            .get_mut(i)
            .ok_or_else(|| corrupt("record shape"))?;
        *slot = v;
        Ok(())
    }

    pub(super) fn set_field(&mut self, obj: Value, name: u32, src: Value) -> R<()> {
        let module = self.cx.module;
        let fname = module.str(name);
        match obj.kind() {
            Kind::Record(o) => self.set_field_named(o, fname, src),
            Kind::Map(o) => {
                let entry = MapEntry {
                    key_label: Label::PUBLIC,
                    value: src,
                };
                Ok(self.cx.heap.map_insert(o, Key::Str(fname.into()), entry)?)
            }
            _ => Err(Raise::rt(
                kind::TYPE,
                format!("cannot set field \"{fname}\" of a {}", obj.type_name()),
            )),
        }
    }

    pub(super) fn slice(&mut self, obj: Value, lo: Value, hi: Value) -> R<Value> {
        let bound = |v: Value, default: i64| -> R<i64> {
            match v.kind() {
                Kind::Null => Ok(default),
                Kind::Int(i) => Ok(i),
                _ => Err(Raise::rt(
                    kind::TYPE,
                    format!("slice bounds must be ints, found {}", v.type_name()),
                )),
            }
        };
        let l1 = self.cx.labels.join(obj.label(), lo.label());
        let label = self.cx.labels.join(l1, hi.label());
        let check = |a: i64, b: i64, len: usize, what: &str| -> R<(usize, usize)> {
            match (usize::try_from(a), usize::try_from(b)) {
                (Ok(x), Ok(y)) if x <= y && y <= len => Ok((x, y)),
                _ => Err(Raise::rt(
                    kind::INDEX,
                    format!("slice {a}:{b} is out of range for a {what} of length {len}"),
                )),
            }
        };
        match obj.kind() {
            Kind::List(o) => {
                let len = self.cx.heap.list(o)?.len();
                let (a, b) = check(bound(lo, 0)?, bound(hi, len as i64)?, len, "list")?;
                let items = self.cx.heap.list(o)?[a..b].to_vec();
                Ok(self.cx.new_list(items).labelled(label))
            }
            Kind::Str(s) => {
                let heap = &*self.cx.heap;
                let text = heap.str(s)?;
                let ascii = heap.str_is_ascii(s)?;
                let len = char_count(text, ascii);
                let (a, b) = check(bound(lo, 0)?, bound(hi, len as i64)?, len, "string")?;
                let (blo, bhi) = char_span(text, ascii, a, b).ok_or_else(|| corrupt("slice"))?;
                if blo == 0 {
                    // A prefix is a view of the same buffer: no copy.
                    let view = StrRef {
                        obj: s.obj,
                        len: bhi as u32,
                    };
                    return Ok(Value::with(Kind::Str(view), label));
                }
                let part = text[blo..bhi].to_string();
                Ok(self.cx.new_str(part)?.labelled(label))
            }
            _ => Err(Raise::rt(
                kind::TYPE,
                format!("cannot slice a {}", obj.type_name()),
            )),
        }
    }

    pub(super) fn range(&mut self, lo: Value, hi: Value) -> R<Value> {
        match (lo.kind(), hi.kind()) {
            (Kind::Int(a), Kind::Int(b)) => {
                let o = self.cx.heap.alloc(Obj::Range(a, b));
                Ok(Value::with(
                    Kind::Range(o),
                    self.cx.labels.join(lo.label(), hi.label()),
                ))
            }
            _ => Err(Raise::rt(
                kind::TYPE,
                format!(
                    "a range needs two ints, found {} and {}",
                    lo.type_name(),
                    hi.type_name()
                ),
            )),
        }
    }

    pub(super) fn iter_new(&mut self, src: Value) -> R<Value> {
        let it = match src.kind() {
            Kind::List(list) => IterObj::List { list, next: 0 },
            Kind::Map(map) => IterObj::Map { map, next: 0 },
            Kind::Str(s) => IterObj::Str {
                s,
                byte: 0,
                index: 0,
            },
            Kind::Range(o) => {
                let (lo, hi) = self.cx.heap.range(o)?;
                IterObj::Range {
                    start: lo,
                    next: lo,
                    end: hi,
                }
            }
            Kind::Iter(_) => return Ok(src),
            _ => {
                return Err(Raise::rt(
                    kind::TYPE,
                    format!("cannot iterate over a {}", src.type_name()),
                ))
            }
        };
        let o = self.cx.heap.alloc(Obj::Iter(it));
        Ok(Value::with(Kind::Iter(o), src.label()))
    }

    /// Advances iterator `it`: `(index or key, item)`, or `None` at the end. For a map the
    /// single-variable form wants the key, which comes second when `pair` is false.
    pub(super) fn iter_next(&mut self, it: Value, pair: bool) -> R<Option<(Value, Value)>> {
        let Kind::Iter(o) = it.kind() else {
            return Err(not_a("IterNext", "iterator", it));
        };
        let state = *self.cx.heap.iter(o)?;
        let (next_state, k, v) = match state {
            IterObj::List { list, next } => {
                let Some(item) = self.cx.heap.list(list)?.get(next).copied() else {
                    return Ok(None);
                };
                (
                    IterObj::List {
                        list,
                        next: next + 1,
                    },
                    Value::int(next as i64),
                    item,
                )
            }
            IterObj::Map { map, next } => {
                let Some((key, e)) = self.cx.heap.map(map)?.entries.get_index(next) else {
                    return Ok(None);
                };
                let (key, e) = (key.clone(), *e);
                let kv = match key {
                    Key::Int(i) => Value::int(i),
                    Key::Str(s) => self.cx.new_str(s.into())?,
                }
                .labelled(e.key_label);
                let (k, v) = if pair {
                    (kv, e.value)
                } else {
                    (Value::NULL, kv)
                };
                (
                    IterObj::Map {
                        map,
                        next: next + 1,
                    },
                    k,
                    v,
                )
            }
            IterObj::Str { s, byte, index } => {
                let text = self.cx.heap.str(s)?;
                let Some(c) = text.get(byte..).and_then(|t| t.chars().next()) else {
                    return Ok(None);
                };
                let ch = self.cx.new_str(c.to_string())?;
                (
                    IterObj::Str {
                        s,
                        byte: byte + c.len_utf8(),
                        index: index + 1,
                    },
                    Value::int(index),
                    ch,
                )
            }
            IterObj::Range { start, next, end } => {
                if next >= end {
                    return Ok(None);
                }
                (
                    IterObj::Range {
                        start,
                        next: next + 1,
                        end,
                    },
                    Value::int(next.wrapping_sub(start)),
                    Value::int(next),
                )
            }
        };
        *self.cx.heap.iter_mut(o)? = next_state;
        let kl = self.cx.labels.join(it.label(), k.label());
        let vl = self.cx.labels.join(it.label(), v.label());
        Ok(Some((k.labelled(kl), v.labelled(vl))))
    }
}
