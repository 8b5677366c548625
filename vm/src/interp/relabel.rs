//! The label instructions (`Classify`, `Declassify`, `Endorse`, `EndorseNarrow`): a value and
//! everything reachable from it relabelled node by node, and a [`LabelEvent`] for each one
//! that lowers a label (spec/semantics.md, "Labels").
//!
//! Containers are copied, never relabelled in place: a list may be shared, and lowering its
//! label in place would lower what every other alias sees (and raising it would change data
//! the program did not name). The copy keeps the shape of the original: shared objects stay
//! shared within the copy, and cycles are copied as cycles. Strings are immutable views, so
//! relabelling their value is enough; functions, cells, iterators, ranges and task handles are
//! relabelled as values (a function's label is joined into its results when called).

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::error::{Fatal, Raise, R};
use crate::format::{Constant, TypeId};
use crate::heap::Obj;
use crate::label::{Integrity, Label, LabelEvent, LabelInfo, LabelOp};
use crate::value::{Kind, ObjId, Value};

use super::exec::Exec;

/// Label events a VM holds before the host takes them: a host drains them after every step, so
/// reaching this many means it does not, and the run stops with a heap-limit error rather than
/// growing without bound (or dropping events the journal must hold).
const MAX_PENDING_EVENTS: usize = 1 << 20;

/// How each node's label changes.
#[derive(Clone, Debug)]
enum Change {
    /// Joined with this label (`Classify`: readers intersected, never lowered).
    Join(Label),
    /// Readers set to these, integrity kept (`Declassify`).
    Readers(Option<BTreeSet<String>>),
    /// Integrity set to trusted, readers kept (`Endorse`, `EndorseNarrow`).
    Trust,
}

/// One relabelling walk: the copies made so far and the label map, with the join of the
/// labels seen before and after.
struct Walk {
    change: Change,
    copies: FxHashMap<ObjId, ObjId>,
    /// Copies whose children still hold the original's values.
    pending: Vec<ObjId>,
    labels: FxHashMap<Label, Label>,
    before: Label,
    after: Label,
}

impl Exec<'_> {
    /// `Classify`: `v` with the readers of constant `readers` joined into every node.
    pub(super) fn classify(&mut self, v: Value, readers: u32) -> R<Value> {
        let readers = self.readers(readers)?;
        let l = self.cx.labels.intern(&LabelInfo {
            integrity: Integrity::Trusted,
            readers,
        });
        Ok(self.relabel(v, Change::Join(l))?.0)
    }

    /// `Declassify`: `v` with the readers of every node set to constant `readers`.
    pub(super) fn declassify(&mut self, v: Value, readers: u32, at: (u32, u32)) -> R<Value> {
        let readers = self.readers(readers)?;
        let (out, from, to) = self.relabel(v, Change::Readers(readers))?;
        self.label_event(LabelOp::Declassify, false, at, from, to)?;
        Ok(out)
    }

    /// `Endorse`: `v` with every node trusted.
    pub(super) fn endorse(&mut self, v: Value, at: (u32, u32)) -> R<Value> {
        let (out, from, to) = self.relabel(v, Change::Trust)?;
        self.label_event(LabelOp::Endorse, false, at, from, to)?;
        Ok(out)
    }

    /// `EndorseNarrow`: `v`, trusted, once it is known to conform to the narrow type `ty`.
    pub(super) fn endorse_narrow(&mut self, v: Value, ty: TypeId, at: (u32, u32)) -> R<Value> {
        self.check_type(v, ty)?;
        let (out, from, to) = self.relabel(v, Change::Trust)?;
        self.label_event(LabelOp::Endorse, true, at, from, to)?;
        Ok(out)
    }

    /// The readers of a readers constant (the verifier's rule V11 says it is one).
    fn readers(&self, k: u32) -> R<Option<BTreeSet<String>>> {
        let module = self.cx.module;
        match module.constants.get(k as usize) {
            Some(Constant::Readers(r)) => Ok(r
                .as_ref()
                .map(|names| names.iter().map(|&n| module.str(n).to_string()).collect())),
            _ => Err(Raise::Fatal(Fatal::Corrupt(format!(
                "constant {k} is not a readers constant"
            )))),
        }
    }

    /// Records a lowering at `(function, pc)` for the host, whatever it changed (an event
    /// that lowered nothing still says the program asked).
    fn label_event(
        &mut self,
        op: LabelOp,
        narrow: bool,
        (func, pc): (u32, u32),
        from: Label,
        to: Label,
    ) -> R<()> {
        if self.events.len() >= MAX_PENDING_EVENTS {
            return Err(Raise::Fatal(Fatal::Heap));
        }
        let module = self.cx.module;
        let line = module.position(func, pc).map_or(0, |p| p.1);
        self.events.push(LabelEvent {
            task: super::TaskId(self.task),
            func: module.func_name(func).to_string(),
            pc,
            line,
            op,
            narrow,
            from: self.cx.labels.info(from),
            to: self.cx.labels.info(to),
        });
        Ok(())
    }

    /// `v` relabelled deeply, with the join of every label before and after.
    fn relabel(&mut self, v: Value, change: Change) -> R<(Value, Label, Label)> {
        let mut w = Walk {
            change,
            copies: FxHashMap::default(),
            pending: Vec::new(),
            labels: FxHashMap::default(),
            before: Label::PUBLIC,
            after: Label::PUBLIC,
        };
        let out = self.map_value(&mut w, v)?;
        // An explicit work list: values of any depth are walked without recursion.
        while let Some(copy) = w.pending.pop() {
            let heap = &mut *self.cx.heap;
            match heap.get(copy).map_err(Raise::from)? {
                Obj::List(items) => {
                    let mut items = items.clone();
                    for x in items.iter_mut() {
                        *x = self.map_value(&mut w, *x)?;
                    }
                    *self.cx.heap.list_mut(copy)? = items;
                }
                Obj::Map(m) => {
                    let mut entries = m.entries.clone();
                    for e in entries.values_mut() {
                        e.key_label = self.map_label(&mut w, e.key_label);
                        e.value = self.map_value(&mut w, e.value)?;
                    }
                    self.cx.heap.map_mut(copy)?.entries = entries;
                }
                Obj::Record(r) => {
                    let mut vals = r.vals.clone();
                    for x in vals.iter_mut() {
                        *x = self.map_value(&mut w, *x)?;
                    }
                    self.cx.heap.record_mut(copy)?.vals = vals;
                }
                Obj::Error(e) => {
                    let p = e.payload;
                    let payload = self.map_value(&mut w, p)?;
                    self.cx.heap.error_mut(copy)?.payload = payload;
                }
                Obj::Str(_) | Obj::Closure(_) | Obj::Cell(_) | Obj::Iter(_) | Obj::Range(..) => {}
            }
        }
        Ok((out, w.before, w.after))
    }

    /// One node: its label changed, and its object (a list, map, record or error) replaced by
    /// a copy, made once per original.
    fn map_value(&mut self, w: &mut Walk, v: Value) -> R<Value> {
        let label = self.map_label(w, v.label());
        let kind = match v.kind() {
            Kind::List(o) => Kind::List(self.copy_of(w, o)?),
            Kind::Map(o) => Kind::Map(self.copy_of(w, o)?),
            Kind::Record(o) => Kind::Record(self.copy_of(w, o)?),
            Kind::Error(o) => Kind::Error(self.copy_of(w, o)?),
            other => other,
        };
        Ok(Value::with(kind, label))
    }

    fn copy_of(&mut self, w: &mut Walk, o: ObjId) -> R<ObjId> {
        if let Some(&c) = w.copies.get(&o) {
            return Ok(c);
        }
        let obj = self.cx.heap.get(o).map_err(Raise::from)?.clone();
        let c = self.cx.heap.alloc(obj);
        w.copies.insert(o, c);
        w.pending.push(c);
        Ok(c)
    }

    fn map_label(&mut self, w: &mut Walk, l: Label) -> Label {
        w.before = self.cx.labels.join(w.before, l);
        let new = match w.labels.get(&l) {
            Some(&n) => n,
            None => {
                let n = match &w.change {
                    Change::Join(j) => self.cx.labels.join(l, *j),
                    Change::Readers(r) => {
                        let mut info = self.cx.labels.info(l);
                        info.readers = r.clone();
                        self.cx.labels.intern(&info)
                    }
                    Change::Trust => {
                        let mut info = self.cx.labels.info(l);
                        info.integrity = Integrity::Trusted;
                        self.cx.labels.intern(&info)
                    }
                };
                w.labels.insert(l, n);
                n
            }
        };
        w.after = self.cx.labels.join(w.after, new);
        new
    }
}
