//! The operations compiled loops call back into the interpreter for: reading and writing
//! record fields and list items, stepping a list iterator, and calling `len` or a `math.*`
//! native. Each
//! has exactly the interpreter's semantics (labels included) and changes nothing when it
//! fails: `None` makes compiled code leave before the instruction, and the interpreter then
//! runs it and raises what it raises. None of them allocates, so no collection falls due in
//! compiled code.

use crate::format::Module;
use crate::heap::IterObj;
use crate::value::{Kind, Value};

use super::exec::Exec;
use super::load::NativeSlot;

/// Whether pure native `native` of the module is one compiled code may call: `len` and the
/// `math.*` functions read their arguments and never allocate.
pub(crate) fn jit_native(module: &Module, native: u32) -> bool {
    module.natives.get(native as usize).is_some_and(|&n| {
        let name = module.str(n);
        name == "core.len" || name.starts_with("math.")
    })
}

impl Exec<'_> {
    /// `GetField` (the fast path of `fast.rs` first, then the full one).
    pub(crate) fn jit_get_field(&mut self, obj: Value, name: u32) -> Option<Value> {
        if let Kind::Record(o) = obj.kind() {
            if let Some(&mut v) = self.field_ref(o, name) {
                return Some(v.labelled(self.cx.labels.join(obj.label(), v.label())));
            }
        }
        self.get_field(obj, name).ok()
    }

    /// `SetField` (the fast path of `fast.rs` first, then the full one).
    pub(crate) fn jit_set_field(&mut self, obj: Value, name: u32, src: Value) -> Option<()> {
        if let Kind::Record(o) = obj.kind() {
            if let Some(slot) = self.field_ref(o, name) {
                *slot = src;
                return Some(());
            }
        }
        self.set_field(obj, name, src).ok()
    }

    /// `GetIndex` (the fast path of `fast.rs` first, then the full one).
    pub(crate) fn jit_get_index(&mut self, obj: Value, key: Value) -> Option<Value> {
        if let (Kind::List(o), Kind::Int(i)) = (obj.kind(), key.kind()) {
            let item = self
                .cx
                .heap
                .list(o)
                .ok()
                .and_then(|list| usize::try_from(i).ok().and_then(|i| list.get(i)).copied());
            if let Some(v) = item {
                let l = self.cx.labels.join(obj.label(), key.label());
                return Some(v.labelled(self.cx.labels.join(l, v.label())));
            }
        }
        self.get_index(obj, key).ok()
    }

    /// `SetIndex`.
    pub(crate) fn jit_set_index(&mut self, obj: Value, key: Value, src: Value) -> Option<()> {
        self.set_index(obj, key, src).ok()
    }

    /// `IterNext` on a public iterator over a list: `Some(Some(item))`, or `Some(None)` at its
    /// end. `None` for anything else (a map's iterator makes its keys, which allocates).
    pub(crate) fn jit_iter_next(&mut self, it: Value) -> Option<Option<Value>> {
        let Kind::Iter(o) = it.kind() else {
            return None;
        };
        if !it.label().is_public() || !matches!(self.cx.heap.iter(o).ok()?, IterObj::List { .. }) {
            return None;
        }
        self.iter_next(it, false).ok().map(|x| x.map(|(_, v)| v))
    }

    /// `CallNative` of `len` or a `math.*` native (see [`jit_native`]) on `args`.
    pub(crate) fn jit_call_native(&mut self, native: u32, args: &[Value]) -> Option<Value> {
        let Some(NativeSlot::Pure(_)) = self.natives.get(native as usize) else {
            return None;
        };
        if !jit_native(self.cx.module, native) {
            return None;
        }
        let range = crate::format::RegRange {
            start: 0,
            count: args.len() as u16,
        };
        self.call_native(args, native, range).ok()
    }
}
