//! The pure natives (spec/natives.md): functions over values that the interpreter calls
//! directly (`CallNative`). One file per family. Effects (`io.*`, `fs.*`, `clock.*`) are not
//! here: the host performs them.

mod core;
mod json;
mod list;
mod map;
mod math;
mod schema;
mod string;

use crate::error::{kind, Raise, R};
use crate::format::Module;
use crate::heap::{Heap, Obj};
use crate::label::LabelTable;
use crate::value::{Kind, ObjId, StrRef, Value};

/// A pure native: the arguments (arity checked by the verifier, rule V13) to a result or a
/// raised error. The interpreter joins the arguments' labels into the result's label.
pub(crate) type NativeFn = fn(&mut Ctx, &[Value]) -> R<Value>;

/// What a native may touch: the heap, the labels and the module (for record field names).
pub(crate) struct Ctx<'a> {
    pub heap: &'a mut Heap,
    pub labels: &'a mut LabelTable,
    pub module: &'a Module,
}

/// The implementation of the pure native `name`, if any.
pub(crate) fn lookup(name: &str) -> Option<NativeFn> {
    let (family, _) = name.split_once('.')?;
    match family {
        "core" => core::lookup(name),
        "list" => list::lookup(name),
        "map" => map::lookup(name),
        "string" => string::lookup(name),
        "math" => math::lookup(name),
        "json" => json::lookup(name),
        "schema" => schema::lookup(name),
        _ => None,
    }
}

/// The argument at `i`; natives are only called with their declared arity (verifier rule V13),
/// so a missing one reads as null rather than failing.
fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).copied().unwrap_or(Value::NULL)
}

fn type_err(native: &str, want: &str, got: Value) -> Raise {
    Raise::rt(
        kind::TYPE,
        format!("{native} expects {want}, found {}", got.type_name()),
    )
}

impl Ctx<'_> {
    pub fn str_arg(&self, native: &str, v: Value) -> R<&str> {
        match v.kind() {
            Kind::Str(s) => Ok(self.heap.str(s)?),
            _ => Err(type_err(native, "a string", v)),
        }
    }

    pub fn int_arg(&self, native: &str, v: Value) -> R<i64> {
        match v.kind() {
            Kind::Int(i) => Ok(i),
            _ => Err(type_err(native, "an int", v)),
        }
    }

    pub fn list_arg(&self, native: &str, v: Value) -> R<ObjId> {
        match v.kind() {
            Kind::List(o) => Ok(o),
            _ => Err(type_err(native, "a list", v)),
        }
    }

    pub fn map_arg(&self, native: &str, v: Value) -> R<ObjId> {
        match v.kind() {
            Kind::Map(o) => Ok(o),
            _ => Err(type_err(native, "a map", v)),
        }
    }

    /// A new string value.
    pub fn new_str(&mut self, text: String) -> R<Value> {
        let s: StrRef = self
            .heap
            .alloc_str(text)
            .ok_or_else(|| Raise::rt(kind::VALUE, "string too long (over 4 GiB)"))?;
        Ok(Value::new(Kind::Str(s)))
    }

    pub fn new_list(&mut self, items: Vec<Value>) -> Value {
        Value::new(Kind::List(self.heap.alloc(Obj::List(items))))
    }

    /// The text of a value, as `print` shows it.
    pub fn text(&self, v: Value) -> R<String> {
        Ok(crate::text::text_of(self.heap, self.module, v)?)
    }

    /// `v`'s label joined with the label of everything its text shows (see
    /// [`crate::text::inner_labels`]): the label of `str(v)`, of `v` interpolated, of its JSON.
    pub fn text_label(&mut self, v: Value) -> R<crate::label::Label> {
        let mut inner = Vec::new();
        crate::text::inner_labels(self.heap, v, &mut inner)?;
        Ok(inner
            .into_iter()
            .fold(v.label(), |acc, l| self.labels.join(acc, l)))
    }

    /// Refuses an allocation of `bytes` that could never fit under the heap limit.
    pub fn reserve(&self, bytes: usize) -> R<()> {
        if self.heap.would_exceed(bytes) {
            return Err(Raise::Fatal(crate::error::Fatal::Heap));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pure_native_is_implemented() {
        for n in crate::format::NATIVES {
            assert_eq!(
                lookup(n.name).is_some(),
                !n.effect,
                "native {} (effect: {})",
                n.name,
                n.effect
            );
        }
    }
}
