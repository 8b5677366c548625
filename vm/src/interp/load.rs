//! Loading a verified module into a VM: its natives resolved to their implementations, its
//! strings and record shapes given canonical ids, and (`check_state`) a restored state checked
//! against the module, since a state comes from outside as plain data.

use crate::error::VmError;
use crate::format::{Constant, Module, NativeInfo, NATIVES};
use crate::natives::{self, NativeFn};
use crate::value::Kind;

use super::{Outcome, Status, VmState};

/// A module's native import, resolved.
#[derive(Clone, Copy)]
pub(crate) enum NativeSlot {
    Pure(NativeFn),
    Effect(&'static NativeInfo),
}

fn bad(msg: String) -> VmError {
    VmError::InvalidModule(msg)
}

/// What the interpreter derives from a module before running it, once per module: every VM
/// of the module shares it (`Vm::fresh`), so that starting one more run costs only its state.
pub(crate) struct Linked {
    pub natives: Vec<NativeSlot>,
    /// [`canonical_strings`] and [`canonical_shapes`] of the module.
    pub canon: Vec<u32>,
    pub shapes: Vec<Box<[u32]>>,
}

pub(crate) fn link(module: &Module) -> Result<Linked, VmError> {
    let natives = resolve_natives(module)?;
    let canon = canonical_strings(module);
    let shapes = canonical_shapes(module, &canon);
    Ok(Linked {
        natives,
        canon,
        shapes,
    })
}

/// For each string of the module's pool, the first id with the same text, so that names (of
/// record fields) compare by id with the same result as comparing their texts.
fn canonical_strings(module: &Module) -> Vec<u32> {
    let mut first: rustc_hash::FxHashMap<&str, u32> = rustc_hash::FxHashMap::default();
    module
        .strings
        .iter()
        .enumerate()
        .map(|(i, s)| *first.entry(s.as_str()).or_insert(i as u32))
        .collect()
}

/// For each constant, the canonical ids (see [`canonical_strings`]) of its field names if it
/// is a record shape, else nothing: a field's slot is then found by comparing ids.
fn canonical_shapes(module: &Module, canon: &[u32]) -> Vec<Box<[u32]>> {
    module
        .constants
        .iter()
        .map(|c| match c {
            Constant::Shape(names) => names
                .iter()
                .map(|&n| canon.get(n as usize).copied().unwrap_or(u32::MAX))
                .collect(),
            _ => Box::default(),
        })
        .collect()
}

/// Resolves the module's native table to the VM's implementations. The verifier has checked
/// every name (rule V4) and every use (V13); a name without an implementation here would be a
/// VM that lists a native it does not have.
fn resolve_natives(module: &Module) -> Result<Vec<NativeSlot>, VmError> {
    module
        .natives
        .iter()
        .map(|&sid| {
            let name = module.str(sid);
            let info = NATIVES
                .iter()
                .find(|n| n.name == name)
                .ok_or_else(|| bad(format!("unknown native \"{name}\"")))?;
            Ok(if info.effect {
                NativeSlot::Effect(info)
            } else {
                NativeSlot::Pure(
                    natives::lookup(name)
                        .ok_or_else(|| bad(format!("native \"{name}\" has no implementation")))?,
                )
            })
        })
        .collect()
}

/// Checks that a restored state fits the module: frames, registers and heap references.
pub(crate) fn check_state(module: &Module, st: &VmState) -> Result<(), VmError> {
    let bad = |m: String| VmError::Corrupt(m);
    if st.consts.len() != module.constants.len() {
        return Err(bad("constant cache does not match the module".into()));
    }
    for (ti, t) in st.tasks.iter().enumerate() {
        if let Outcome::Value(v) | Outcome::Error(v) = t.outcome {
            if !t.spawned || t.status != Status::Done || !st.heap.kind_matches(v) {
                return Err(bad(format!("task {ti}: outcome")));
            }
        }
        for &w in &t.waiters {
            let waits_here = st.tasks.get(w as usize).is_some_and(
                |wt| matches!(wt.status, Status::Awaiting { task, .. } if task as usize == ti),
            );
            if !waits_here || t.status == Status::Done {
                return Err(bad(format!("task {ti}: waiter {w}")));
            }
        }
        if t.status == Status::Done {
            continue;
        }
        let mut top = 0usize;
        for fr in &t.frames {
            let f = module
                .functions
                .get(fr.func as usize)
                .ok_or_else(|| bad(format!("task {ti}: frame of missing function")))?;
            if fr.base as usize != top || fr.pc as usize >= f.code.len() {
                return Err(bad(format!("task {ti}: frame layout")));
            }
            if let Some(o) = fr.closure {
                st.heap.closure(o).map_err(|e| bad(e.to_string()))?;
            }
            top += f.nregs as usize;
        }
        if t.frames.is_empty() || t.regs.len() != top {
            return Err(bad(format!("task {ti}: register stack")));
        }
        for h in &t.handlers {
            let ok = (h.depth as usize)
                .checked_sub(1)
                .and_then(|i| t.frames.get(i))
                .and_then(|fr| module.functions.get(fr.func as usize))
                .is_some_and(|f| h.err < f.nregs && (h.target as usize) < f.code.len());
            if !ok {
                return Err(bad(format!("task {ti}: try handler")));
            }
        }
        if let Status::Awaiting { task, .. } = t.status {
            let listed = st
                .tasks
                .get(task as usize)
                .is_some_and(|target| target.waiters.contains(&(ti as u32)));
            if !listed {
                return Err(bad(format!("task {ti}: awaits task {task}")));
            }
        }
        if let Status::Waiting { dst, .. } | Status::Awaiting { dst, .. } = t.status {
            let nregs = t
                .frames
                .last()
                .and_then(|fr| module.functions.get(fr.func as usize))
                .map_or(0, |f| f.nregs);
            if dst >= nregs {
                return Err(bad(format!("task {ti}: effect result register")));
            }
        }
        for v in t.regs.iter().chain(t.pending_raise.iter()) {
            if !st.heap.kind_matches(*v) {
                return Err(bad(format!(
                    "task {ti}: a register refers to a missing object"
                )));
            }
            if let Kind::Func(f) = v.kind() {
                if f as usize >= module.functions.len() {
                    return Err(bad(format!("task {ti}: function value out of range")));
                }
            }
        }
    }
    for s in st.consts.iter().flatten() {
        if st.heap.strbuf(s.obj).is_err() {
            return Err(bad("constant cache refers to a missing string".into()));
        }
    }
    st.heap
        .check(module.functions.len())
        .map_err(|e| bad(e.to_string()))
}
