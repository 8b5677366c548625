//! Load-time checks: what the interpreter relies on to index registers, code and tables
//! without failing. `check_module` runs on every module a VM is made for (a verified module
//! passes it trivially); `check_state` on every restored state.

use crate::error::VmError;
use crate::format::{Constant, Flow, Instr, Module, NativeInfo, Operand, NATIVES};
use crate::natives::{self, NativeFn};
use crate::value::Kind;

use super::{Status, VmState};

/// A module's native import, resolved.
#[derive(Clone, Copy)]
pub(crate) enum NativeSlot {
    Pure(NativeFn),
    Effect(&'static NativeInfo),
}

fn bad(msg: String) -> VmError {
    VmError::InvalidModule(msg)
}

/// For each string of the module's pool, the first id with the same text, so that names (of
/// record fields) compare by id with the same result as comparing their texts.
pub(crate) fn canonical_strings(module: &Module) -> Vec<u32> {
    let mut first: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    module
        .strings
        .iter()
        .enumerate()
        .map(|(i, s)| *first.entry(s.as_str()).or_insert(i as u32))
        .collect()
}

/// For each constant, the canonical ids (see [`canonical_strings`]) of its field names if it
/// is a record shape, else nothing: a field's slot is then found by comparing ids.
pub(crate) fn canonical_shapes(module: &Module, canon: &[u32]) -> Vec<Box<[u32]>> {
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

/// Checks `module` and resolves its natives.
pub(crate) fn check_module(module: &Module) -> Result<Vec<NativeSlot>, VmError> {
    let mut slots = Vec::with_capacity(module.natives.len());
    let mut infos = Vec::with_capacity(module.natives.len());
    for &sid in &module.natives {
        let name = module
            .strings
            .get(sid as usize)
            .ok_or_else(|| bad(format!("native name string {sid} out of range")))?;
        let info = NATIVES
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| bad(format!("unknown native \"{name}\"")))?;
        slots.push(if info.effect {
            NativeSlot::Effect(info)
        } else {
            NativeSlot::Pure(
                natives::lookup(name)
                    .ok_or_else(|| bad(format!("native \"{name}\" has no implementation")))?,
            )
        });
        infos.push(info);
    }
    if let Some(e) = module.entry {
        if e as usize >= module.functions.len() {
            return Err(bad(format!("entry function {e} out of range")));
        }
    }
    for (fi, f) in module.functions.iter().enumerate() {
        let fname = module.str(f.name);
        let err = |pc: usize, msg: String| {
            bad(format!("function {fname} ({fi}), instruction {pc}: {msg}"))
        };
        if (f.nregs as usize) < f.params.len() {
            return Err(err(0, "fewer registers than parameters".into()));
        }
        match f.code.last() {
            Some(last) if matches!(last.opcode().info().flow, Flow::Jump | Flow::Stop) => {}
            _ => return Err(err(f.code.len(), "code may run off its end".into())),
        }
        for (pc, ins) in f.code.iter().enumerate() {
            for op in ins.operands() {
                let ok = match op {
                    Operand::Dst(r) | Operand::Src(r) => r < f.nregs,
                    Operand::Range(rr) => rr.start as u32 + rr.count as u32 <= f.nregs as u32,
                    Operand::Const(k) => (k as usize) < module.constants.len(),
                    Operand::Func(x) => (x as usize) < module.functions.len(),
                    Operand::Type(t) => (t as usize) < module.types.len(),
                    Operand::Native(n) => (n as usize) < module.natives.len(),
                    Operand::Str(s) => (s as usize) < module.strings.len(),
                    Operand::Target(t) => (t as usize) < f.code.len(),
                    Operand::Imm(_) => true,
                    Operand::Count(c) => c < f.ncaps,
                };
                if !ok {
                    return Err(err(pc, format!("operand {op:?} out of range")));
                }
            }
            check_instr(module, &infos, ins).map_err(|m| err(pc, m))?;
        }
    }
    Ok(slots)
}

/// The per-opcode rules beyond index ranges.
fn check_instr(module: &Module, infos: &[&NativeInfo], ins: &Instr) -> Result<(), String> {
    match *ins {
        Instr::LoadConst { k, .. } => match module.constants.get(k as usize) {
            Some(Constant::Shape(_)) => Err("LoadConst of a record shape".into()),
            _ => Ok(()),
        },
        Instr::NewRecord { shape, vals, .. } => match module.constants.get(shape as usize) {
            Some(Constant::Shape(names)) if names.len() == vals.count as usize => {
                if names.iter().all(|n| (*n as usize) < module.strings.len()) {
                    Ok(())
                } else {
                    Err("record shape names a missing string".into())
                }
            }
            _ => Err("NewRecord needs a shape with one name per value".into()),
        },
        Instr::NewMap { kvs, .. } if kvs.count % 2 != 0 => Err("NewMap of an odd count".into()),
        Instr::CallNative { native, args, .. } | Instr::Effect { native, args, .. } => {
            let info = infos
                .get(native as usize)
                .ok_or_else(|| "native out of range".to_string())?;
            let want_effect = matches!(ins, Instr::Effect { .. });
            if info.effect != want_effect {
                Err(format!(
                    "native {} is {} but called with {}",
                    info.name,
                    if info.effect { "an effect" } else { "pure" },
                    if want_effect { "Effect" } else { "CallNative" }
                ))
            } else if info.arity != args.count {
                Err(format!(
                    "native {} takes {} arguments, given {}",
                    info.name, info.arity, args.count
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Checks that a restored state fits the module: frames, registers and heap references.
pub(crate) fn check_state(module: &Module, st: &VmState) -> Result<(), VmError> {
    let bad = |m: String| VmError::Corrupt(m);
    if st.consts.len() != module.constants.len() {
        return Err(bad("constant cache does not match the module".into()));
    }
    for (ti, t) in st.tasks.iter().enumerate() {
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
        if let Status::Waiting { dst, .. } = t.status {
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
