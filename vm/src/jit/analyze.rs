//! What the JIT can compile: a forward type analysis of a function's bytecode given the types
//! of its arguments (a specialisation), and of every function it calls, to a fixed point over
//! their return types. A function is compilable when every reachable instruction is one the
//! code generator handles on the types the analysis finds; otherwise the whole request is
//! refused and the interpreter keeps the function.

use std::collections::HashMap;

use crate::format::{Constant, Instr, Module, Operand, TypeDesc, TypeId};

/// The static type of a register at an instruction. `Bot`: no value reaches it yet (the
/// result of a call whose callee has not been seen to return); `Top`: values of different
/// types reach it, which the code generator does not handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ty {
    Bot,
    Null,
    Bool,
    Int,
    Float,
    /// A value the interpreter's frame holds and compiled code never reads (a register not
    /// live at a region's header): regions only.
    Ext,
    /// A whole value (its two words: kind and label, payload) that compiled code holds without
    /// knowing its kind: a heap value, a labelled one, a field or item read from the heap. It
    /// is used through the interpreter's own operations, or as a number after a guard that it
    /// is a public one. Regions only.
    Val,
    Top,
}

impl Ty {
    pub fn join(self, other: Ty) -> Ty {
        match (self, other) {
            (a, b) if a == b => a,
            (Ty::Bot, x) | (x, Ty::Bot) => x,
            _ => Ty::Top,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ty::Bot => "none",
            Ty::Null => "null",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Float => "float",
            Ty::Ext => "frame",
            Ty::Val => "value",
            Ty::Top => "any",
        }
    }

    fn is_num(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }
}

/// The types two operands of an arithmetic or comparison instruction are used at: a whole
/// value (`Val`) is guarded to be a public number, an int beside an int and a float otherwise.
pub(crate) fn operand_types(a: Ty, b: Ty) -> (Ty, Ty) {
    let unbox = |t: Ty, other: Ty| match (t, other) {
        (Ty::Val, Ty::Int) => Ty::Int,
        (Ty::Val, _) => Ty::Float,
        _ => t,
    };
    (unbox(a, b), unbox(b, a))
}

/// Arguments of a native compiled code calls.
pub(crate) const MAX_NATIVE_ARGS: usize = 2;

/// The type of what a `math.*` native gives compiled code: `math.sqrt` of a number is a public
/// float computed inline; any other call goes through the interpreter and is a whole value.
pub(crate) fn native_result(module: &Module, native: u32, args: &[Ty]) -> Ty {
    let sqrt = module
        .natives
        .get(native as usize)
        .is_some_and(|&n| module.str(n) == "math.sqrt");
    match args {
        [Ty::Int | Ty::Float] if sqrt => Ty::Float,
        _ => Ty::Val,
    }
}

/// Whether a value of type `t` can be stored in the heap by compiled code.
fn boxable(t: Ty) -> bool {
    matches!(
        t,
        Ty::Null | Ty::Bool | Ty::Int | Ty::Float | Ty::Val | Ty::Bot
    )
}

/// A specialisation: a function and the types of its arguments (ints, floats or bools).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub func: u32,
    pub args: Vec<Ty>,
}

/// The analysis of one specialisation: the register types before each instruction (`None`:
/// unreachable), its return type, and the specialisation each reachable `CallFn` calls.
#[derive(Debug)]
pub(crate) struct Plan {
    pub key: Key,
    pub states: Vec<Option<Vec<Ty>>>,
    pub ret: Ty,
    /// The plan index called by the `CallFn` at each pc (only for calls whose arguments have
    /// known types; a call with a `Bot` argument is never reached).
    pub calls: HashMap<usize, usize>,
}

/// Functions bigger than this are left to the interpreter (the analysis keeps a register
/// state per instruction).
pub(crate) const MAX_CODE: usize = 4096;
pub(crate) const MAX_REGS: usize = 256;
/// Arguments of a compiled function: they are passed in machine registers.
pub(crate) const MAX_ARGS: usize = 12;
/// Specialisations one compile request may analyse.
const MAX_KEYS: usize = 48;
/// Re-analyses one request may make before it is refused (the lattice is shallow; this only
/// bounds pathological call graphs).
const MAX_ROUNDS: usize = 2000;

/// Why a request was refused (for the statistics and the tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub func: u32,
    pub pc: usize,
    pub why: String,
}

fn refuse(func: u32, pc: usize, why: impl Into<String>) -> Refused {
    Refused {
        func,
        pc,
        why: why.into(),
    }
}

/// Whether every instruction of function `func` is one the JIT knows at all (whatever the
/// types): a cheap test before any analysis, so that functions with effects, heap access or
/// closures are marked never-compile at their first call.
pub(crate) fn supported_opcodes(module: &Module, func: u32) -> bool {
    let Some(f) = module.functions.get(func as usize) else {
        return false;
    };
    f.code.len() <= MAX_CODE
        && (f.nregs as usize) <= MAX_REGS
        && f.params.len() <= MAX_ARGS
        && f.code.iter().all(|i| {
            matches!(
                i,
                Instr::Nop {}
                    | Instr::Move { .. }
                    | Instr::LoadNull { .. }
                    | Instr::LoadTrue { .. }
                    | Instr::LoadFalse { .. }
                    | Instr::LoadInt { .. }
                    | Instr::LoadConst { .. }
                    | Instr::Add { .. }
                    | Instr::Sub { .. }
                    | Instr::Mul { .. }
                    | Instr::Div { .. }
                    | Instr::Mod { .. }
                    | Instr::Neg { .. }
                    | Instr::AddImm { .. }
                    | Instr::MulImm { .. }
                    | Instr::DivImm { .. }
                    | Instr::ModImm { .. }
                    | Instr::Not { .. }
                    | Instr::Eq { .. }
                    | Instr::Ne { .. }
                    | Instr::Lt { .. }
                    | Instr::Le { .. }
                    | Instr::Jump { .. }
                    | Instr::JumpIf { .. }
                    | Instr::JumpIfNot { .. }
                    | Instr::JumpIfNotLt { .. }
                    | Instr::CallFn { .. }
                    | Instr::Return { .. }
                    | Instr::CheckType { .. }
            )
        })
}

/// Analyses `root` and every specialisation it calls. The first plan is the root's.
pub(crate) fn plan(module: &Module, root: Key) -> Result<Vec<Plan>, Refused> {
    let mut keys: Vec<Key> = vec![root.clone()];
    let mut index: HashMap<Key, usize> = HashMap::from([(root, 0)]);
    let mut rets: Vec<Ty> = vec![Ty::Bot];
    let mut plans: Vec<Option<Plan>> = vec![None];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new()];
    let mut work: Vec<usize> = vec![0];
    let mut rounds = 0;
    while let Some(i) = work.pop() {
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(refuse(keys[0].func, 0, "call graph too large to analyse"));
        }
        let key = keys[i].clone();
        let mut callee_of = |k: Key, caller: usize| -> Result<(usize, Ty), Refused> {
            let j = match index.get(&k) {
                Some(&j) => j,
                None => {
                    if keys.len() >= MAX_KEYS {
                        return Err(refuse(k.func, 0, "too many specialisations"));
                    }
                    if !supported_opcodes(module, k.func) {
                        return Err(refuse(k.func, 0, "calls a function the JIT cannot compile"));
                    }
                    let j = keys.len();
                    keys.push(k.clone());
                    index.insert(k, j);
                    rets.push(Ty::Bot);
                    plans.push(None);
                    dependents.push(Vec::new());
                    work.push(j);
                    j
                }
            };
            if let Some(d) = dependents.get_mut(j) {
                if !d.contains(&caller) {
                    d.push(caller);
                }
            }
            Ok((j, rets.get(j).copied().unwrap_or(Ty::Bot)))
        };
        let p = analyse_one(module, &key, &mut |k| callee_of(k, i))?;
        let old = rets[i];
        let new = old.join(p.ret);
        if new == Ty::Top {
            return Err(refuse(key.func, 0, "returns values of different types"));
        }
        rets[i] = new;
        plans[i] = Some(p);
        if new != old {
            for &d in &dependents[i] {
                if !work.contains(&d) {
                    work.push(d);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(plans.len());
    for (i, p) in plans.into_iter().enumerate() {
        let Some(mut p) = p else {
            return Err(refuse(keys[i].func, 0, "specialisation not analysed"));
        };
        p.ret = rets[i];
        out.push(p);
    }
    Ok(out)
}

/// The kind tag a `CheckType` against type `ty` checks a whole value for at run time, when
/// it is one of the simple types whose check is the kind alone (whatever the label).
pub(crate) fn kind_tag(module: &Module, ty: TypeId) -> Option<u64> {
    use crate::value::tag;
    Some(match module.types.get(ty as usize)? {
        TypeDesc::Int => tag::INT,
        TypeDesc::Float => tag::FLOAT,
        TypeDesc::Bool => tag::BOOL,
        TypeDesc::Str => tag::STR,
        _ => return None,
    })
}

/// Whether a value of static type `t` conforms to type `ty`: `Some(true)` always,
/// `Some(false)` never, `None` when it cannot tell.
fn conforms(module: &Module, t: Ty, ty: TypeId, depth: usize) -> Option<bool> {
    if depth > 32 || matches!(t, Ty::Top | Ty::Ext) {
        return None;
    }
    if t == Ty::Val {
        return matches!(module.types.get(ty as usize)?, TypeDesc::Any).then_some(true);
    }
    if t == Ty::Bot {
        return Some(true);
    }
    Some(match module.types.get(ty as usize)? {
        TypeDesc::Any => true,
        TypeDesc::Null => t == Ty::Null,
        TypeDesc::Bool => t == Ty::Bool,
        TypeDesc::Int => t == Ty::Int,
        TypeDesc::Float => t == Ty::Float,
        TypeDesc::Optional(inner) => t == Ty::Null || conforms(module, t, *inner, depth + 1)?,
        TypeDesc::Named { ty, .. } => conforms(module, t, *ty, depth + 1)?,
        TypeDesc::Union(alts) => {
            let mut any = false;
            for a in alts {
                any |= conforms(module, t, *a, depth + 1)?;
            }
            any
        }
        TypeDesc::Str
        | TypeDesc::List(_)
        | TypeDesc::Map(_)
        | TypeDesc::Record(_)
        | TypeDesc::StrLit(_)
        | TypeDesc::Func
        | TypeDesc::Error => false,
    })
}

/// What a forward analysis is of: a whole specialisation entered at its first instruction
/// (every reachable instruction must compile, else the request is refused), or a loop region
/// entered at a loop header with the frame's registers (an instruction that does not compile
/// on the types it sees becomes an exit back to the interpreter).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Function,
    Region,
}

/// What one instruction does to the abstract state.
#[derive(Default)]
struct Step {
    write: Option<(u16, Ty)>,
    targets: Vec<usize>,
    falls: bool,
    ret: Option<Ty>,
    /// The callee index a `CallFn` calls (as the `callee` closure numbers them).
    call: Option<usize>,
}

/// The result of a forward analysis: the state before each reachable instruction, the
/// instructions that exit to the interpreter (regions only), the return type, and the callee
/// index of each reachable `CallFn`.
struct Analysis {
    states: Vec<Option<Vec<Ty>>>,
    /// The register each compiled instruction writes, and the type it writes.
    writes: Vec<Option<(u16, Ty)>>,
    exits: Vec<bool>,
    ret: Ty,
    calls: HashMap<usize, usize>,
}

/// The abstract effect of instruction `pc` on state `s`: `Err` when the code generator does
/// not handle it on these types.
fn transfer(
    module: &Module,
    func: u32,
    pc: usize,
    ins: Instr,
    s: &[Ty],
    mode: Mode,
    callee: &mut dyn FnMut(Key) -> Result<(usize, Ty), Refused>,
) -> Result<Step, Refused> {
    let no = |why: &str| refuse(func, pc, format!("{:?}: {why}", ins.opcode()));
    let get = |r: u16| -> Result<Ty, Refused> {
        match s.get(r as usize) {
            Some(Ty::Top) | None => Err(no("a register of mixed types")),
            Some(Ty::Ext) => Err(no("a value compiled code does not hold")),
            Some(t) => Ok(*t),
        }
    };
    let num2 = |a: Ty, b: Ty| -> Result<Ty, Refused> {
        Ok(match (a, b) {
            (Ty::Bot, _) | (_, Ty::Bot) => Ty::Bot,
            (Ty::Int, Ty::Int) => Ty::Int,
            (x, y) if x.is_num() && y.is_num() => Ty::Float,
            _ => return Err(no("operands are not numbers")),
        })
    };
    let num1 = |a: Ty| -> Result<Ty, Refused> {
        match a {
            Ty::Bot | Ty::Int | Ty::Float => Ok(a),
            _ => Err(no("operand is not a number")),
        }
    };
    let mut step = Step {
        falls: true,
        ..Step::default()
    };
    match ins {
        Instr::Nop {} => {}
        Instr::Move { dst, src } => step.write = Some((dst, get(src)?)),
        Instr::LoadNull { dst } => step.write = Some((dst, Ty::Null)),
        Instr::LoadTrue { dst } | Instr::LoadFalse { dst } => step.write = Some((dst, Ty::Bool)),
        Instr::LoadInt { dst, .. } => step.write = Some((dst, Ty::Int)),
        Instr::LoadConst { dst, k } => {
            let t = match module.constants.get(k as usize) {
                Some(Constant::Int(_)) => Ty::Int,
                Some(Constant::Float(_)) => Ty::Float,
                _ => return Err(no("not a number constant")),
            };
            step.write = Some((dst, t));
        }
        Instr::Add { dst, a, b }
        | Instr::Sub { dst, a, b }
        | Instr::Mul { dst, a, b }
        | Instr::Div { dst, a, b }
        | Instr::Mod { dst, a, b } => {
            let (x, y) = operand_types(get(a)?, get(b)?);
            step.write = Some((dst, num2(x, y)?))
        }
        Instr::Neg { dst, src } => {
            let (x, _) = operand_types(get(src)?, Ty::Float);
            step.write = Some((dst, num1(x)?))
        }
        Instr::AddImm { dst, src, .. }
        | Instr::MulImm { dst, src, .. }
        | Instr::DivImm { dst, src, .. }
        | Instr::ModImm { dst, src, .. } => step.write = Some((dst, num1(get(src)?)?)),
        Instr::Not { dst, src } => match get(src)? {
            Ty::Bool | Ty::Bot => step.write = Some((dst, Ty::Bool)),
            _ => return Err(no("not a bool")),
        },
        Instr::Eq { dst, a, b } | Instr::Ne { dst, a, b } => {
            if get(a)? == Ty::Val || get(b)? == Ty::Val {
                return Err(no("equality of whole values"));
            }
            step.write = Some((dst, Ty::Bool));
        }
        Instr::Lt { dst, a, b } | Instr::Le { dst, a, b } => {
            let (x, y) = operand_types(get(a)?, get(b)?);
            num2(x, y)?;
            step.write = Some((dst, Ty::Bool));
        }
        Instr::Jump { target } => {
            step.targets.push(target as usize);
            step.falls = false;
        }
        Instr::JumpIf { cond, target } | Instr::JumpIfNot { cond, target } => match get(cond)? {
            Ty::Bool | Ty::Bot => step.targets.push(target as usize),
            _ => return Err(no("condition is not a bool")),
        },
        Instr::JumpIfNotLt { a, b, target } => {
            let (x, y) = operand_types(get(a)?, get(b)?);
            num2(x, y)?;
            step.targets.push(target as usize);
        }
        // The heap, through the interpreter's own operations (interp/jit_ops.rs).
        Instr::GetField { dst, obj, .. } if get(obj)? == Ty::Val => {
            step.write = Some((dst, Ty::Val))
        }
        Instr::SetField { obj, src, .. } if get(obj)? == Ty::Val && boxable(get(src)?) => {}
        Instr::GetIndex { dst, obj, key }
            if get(obj)? == Ty::Val && matches!(get(key)?, Ty::Int | Ty::Val) =>
        {
            step.write = Some((dst, Ty::Val))
        }
        Instr::SetIndex { obj, key, src }
            if get(obj)? == Ty::Val
                && matches!(get(key)?, Ty::Int | Ty::Val)
                && boxable(get(src)?) => {}
        Instr::IterNext { dst, iter, target } if get(iter)? == Ty::Val => {
            step.write = Some((dst, Ty::Val));
            step.targets.push(target as usize);
        }
        Instr::CallNative { dst, native, args }
            if crate::interp::jit_native(module, native)
                && args.count as usize <= MAX_NATIVE_ARGS =>
        {
            let mut tys = Vec::with_capacity(args.count as usize);
            for r in args.regs() {
                match get(r)? {
                    t @ (Ty::Int | Ty::Float | Ty::Val | Ty::Bot) => tys.push(t),
                    _ => return Err(no("an argument is not a number")),
                }
            }
            step.write = Some((dst, native_result(module, native, &tys)));
        }
        Instr::CheckType { src, ty } => {
            let checked = get(src)? == Ty::Val && kind_tag(module, ty).is_some();
            if !checked && conforms(module, get(src)?, ty, 0) != Some(true) {
                return Err(no("the check may fail"));
            }
        }
        Instr::CallFn { dst, func: g, args } => {
            let mut tys = Vec::with_capacity(args.count as usize);
            let mut unreached = false;
            for r in args.regs() {
                match get(r)? {
                    Ty::Bot => unreached = true,
                    t @ (Ty::Int | Ty::Float | Ty::Bool) => tys.push(t),
                    _ => return Err(no("an argument is not an int, float or bool")),
                }
            }
            let arity = module.functions.get(g as usize).map(|f| f.params.len());
            if arity != Some(args.count as usize) {
                return Err(no("arity mismatch"));
            }
            let t = match unreached {
                true => Ty::Bot,
                false => {
                    let (j, t) = callee(Key { func: g, args: tys })?;
                    step.call = Some(j);
                    t
                }
            };
            step.write = Some((dst, t));
        }
        // A region never returns: popping the frame is the interpreter's.
        Instr::Return { src } if mode == Mode::Function => {
            let t = get(src)?;
            if !matches!(t, Ty::Bot | Ty::Null | Ty::Bool | Ty::Int | Ty::Float) {
                return Err(no("unsupported return value"));
            }
            step.ret = Some(t);
            step.falls = false;
        }
        _ => return Err(no("instruction not compiled")),
    }
    if let Some((dst, _)) = step.write {
        if dst as usize >= s.len() {
            return Err(no("register out of range"));
        }
    }
    Ok(step)
}

/// The forward analysis from instruction `start` with register types `init`, to a fixed
/// point; `callee` gives the index and the current return type of a called specialisation.
fn analyse(
    module: &Module,
    func: u32,
    start: usize,
    init: Vec<Ty>,
    mode: Mode,
    callee: &mut dyn FnMut(Key) -> Result<(usize, Ty), Refused>,
) -> Result<Analysis, Refused> {
    let f = module
        .functions
        .get(func as usize)
        .ok_or_else(|| refuse(func, 0, "no such function"))?;
    let n = f.code.len();
    if start >= n {
        return Err(refuse(func, start, "no such instruction"));
    }
    let mut states: Vec<Option<Vec<Ty>>> = vec![None; n];
    let mut exits = vec![false; n];
    let mut writes = vec![None; n];
    states[start] = Some(init);
    let mut work = vec![start];
    let mut ret = Ty::Bot;
    let mut calls = HashMap::new();
    while let Some(pc) = work.pop() {
        let Some(s) = states[pc].clone() else {
            continue;
        };
        let step = match transfer(module, func, pc, f.code[pc], &s, mode, callee) {
            Ok(step) => step,
            Err(r) if mode == Mode::Function => return Err(r),
            Err(_) => {
                // The interpreter takes over here, with the state as it is.
                exits[pc] = true;
                continue;
            }
        };
        let mut s = s;
        writes[pc] = step.write;
        if let Some((dst, t)) = step.write {
            s[dst as usize] = t;
        }
        if let Some(t) = step.ret {
            ret = ret.join(t);
        }
        if let Some(j) = step.call {
            calls.insert(pc, j);
        }
        let mut targets = step.targets;
        if step.falls {
            targets.push(pc + 1);
        }
        for t in targets {
            if t >= n {
                return Err(refuse(func, pc, "falls off the end"));
            }
            let changed = match &mut states[t] {
                slot @ None => {
                    *slot = Some(s.clone());
                    true
                }
                Some(old) => {
                    let mut changed = false;
                    for (o, new) in old.iter_mut().zip(&s) {
                        let j = o.join(*new);
                        if j != *o {
                            *o = j;
                            changed = true;
                        }
                    }
                    changed
                }
            };
            if changed {
                // A state that changed is checked again, exits included: an exit may compile
                // on the joined types of a later round only if they still fit, so start over.
                exits[t] = false;
                if !work.contains(&t) {
                    work.push(t);
                }
            }
        }
    }
    if ret == Ty::Top {
        return Err(refuse(func, 0, "returns values of different types"));
    }
    // Every change of a state queued its instruction again, so each reachable instruction was
    // last checked against its final state.
    Ok(Analysis {
        states,
        writes,
        exits,
        ret,
        calls,
    })
}

/// The forward analysis of one specialisation; `callee` gives the plan index and the current
/// return type of a called specialisation.
fn analyse_one(
    module: &Module,
    key: &Key,
    callee: &mut dyn FnMut(Key) -> Result<(usize, Ty), Refused>,
) -> Result<Plan, Refused> {
    let func = key.func;
    let f = module
        .functions
        .get(func as usize)
        .ok_or_else(|| refuse(func, 0, "no such function"))?;
    if f.params.len() != key.args.len() {
        return Err(refuse(func, 0, "arity"));
    }
    let mut init = vec![Ty::Null; f.nregs as usize];
    for (slot, t) in init.iter_mut().zip(&key.args) {
        *slot = *t;
    }
    let a = analyse(module, func, 0, init, Mode::Function, callee)?;
    Ok(Plan {
        key: key.clone(),
        states: a.states,
        ret: a.ret,
        calls: a.calls,
    })
}

/// The registers of function `func` live at `pc`: read on some path from `pc` before they
/// are written. An instruction's register operands are read (sources and ranges) or written
/// (destinations), and every instruction reads before it writes.
pub(crate) fn live_at(module: &Module, func: u32, pc: usize) -> Vec<bool> {
    let Some(f) = module.functions.get(func as usize) else {
        return Vec::new();
    };
    let (n, nregs) = (f.code.len(), f.nregs as usize);
    let mut live: Vec<Vec<bool>> = vec![vec![false; nregs]; n + 1];
    let succs = |pc: usize, ins: &Instr| -> Vec<usize> {
        let mut out = Vec::with_capacity(2);
        let (target, falls) = match *ins {
            Instr::Jump { target } => (Some(target), false),
            Instr::JumpIf { target, .. }
            | Instr::JumpIfNot { target, .. }
            | Instr::JumpIfNotLt { target, .. }
            | Instr::IterNext { target, .. }
            | Instr::IterNext2 { target, .. } => (Some(target), true),
            Instr::TryBegin { handler, .. } => (Some(handler), true),
            Instr::Return { .. } | Instr::Throw { .. } => (None, false),
            _ => (None, true),
        };
        out.extend(target.map(|t| t as usize));
        if falls {
            out.push(pc + 1);
        }
        out
    };
    let mut changed = true;
    while changed {
        changed = false;
        for (q, ins) in f.code.iter().enumerate().rev() {
            let mut now = vec![false; nregs];
            for t in succs(q, ins) {
                if let Some(l) = live.get(t) {
                    for (a, b) in now.iter_mut().zip(l) {
                        *a |= *b;
                    }
                }
            }
            let ops = ins.operands();
            for o in &ops {
                if let Operand::Dst(r) = *o {
                    if let Some(x) = now.get_mut(r as usize) {
                        *x = false;
                    }
                }
            }
            for o in &ops {
                let regs: Vec<u16> = match *o {
                    Operand::Src(r) => vec![r],
                    Operand::Range(rr) => rr.regs().collect(),
                    _ => continue,
                };
                for r in regs {
                    if let Some(x) = now.get_mut(r as usize) {
                        *x = true;
                    }
                }
            }
            if now != live[q] {
                live[q] = now;
                changed = true;
            }
        }
    }
    live.swap_remove(pc.min(n))
}

/// A loop region: the code reachable from a loop header, entered from the interpreter with the
/// frame's registers of types `entry` (`Ext` for those compiled code does not hold), and left
/// at an exit instruction, which the interpreter runs next with the registers written back.
#[derive(Debug)]
pub(crate) struct Region {
    pub func: u32,
    pub header: usize,
    pub entry: Vec<Ty>,
    /// The register types before each reachable instruction (`Top`: of a type known only at
    /// run time, which compiled code tracks in a tag but never reads).
    pub states: Vec<Option<Vec<Ty>>>,
    /// The register each compiled instruction writes, and the type it writes.
    pub writes: Vec<Option<(u16, Ty)>>,
    /// The instructions not compiled: reaching one leaves compiled code.
    pub exits: Vec<bool>,
    /// The specialisation each compiled `CallFn` calls, as an index into `callees`.
    pub calls: HashMap<usize, usize>,
    /// Plans of the called specialisations (each with the plans it calls, its own first).
    pub callees: Vec<Vec<Plan>>,
}

/// Instructions a region entered at a call must compile when it has no loop, to be worth
/// entering.
const MIN_CALL_REGION: usize = 24;

/// Analyses the region of function `func` at `header`, entered with registers of types
/// `entry`: a loop's header, entered at a back-edge, or (`at_call`) the function's first
/// instruction, entered once the interpreter has pushed its frame. Refused when compiled code
/// would leave before a loop came round again, or (at a call, without a loop) when it would
/// compile too little.
pub(crate) fn region(
    module: &Module,
    func: u32,
    header: usize,
    entry: Vec<Ty>,
    at_call: bool,
) -> Result<Region, Refused> {
    let f = module
        .functions
        .get(func as usize)
        .ok_or_else(|| refuse(func, 0, "no such function"))?;
    if f.code.len() > MAX_CODE || f.nregs as usize > MAX_REGS || entry.len() != f.nregs as usize {
        return Err(refuse(func, header, "too big to compile"));
    }
    let mut keys: Vec<Key> = Vec::new();
    let mut callees: Vec<Result<Vec<Plan>, Refused>> = Vec::new();
    let a = analyse(
        module,
        func,
        header,
        entry.clone(),
        Mode::Region,
        &mut |k: Key| {
            let j = match keys.iter().position(|x| *x == k) {
                Some(j) => j,
                None => {
                    callees.push(plan(module, k.clone()));
                    keys.push(k);
                    callees.len() - 1
                }
            };
            match callees.get(j) {
                Some(Ok(plans)) => Ok((j, plans.first().map_or(Ty::Bot, |p| p.ret))),
                Some(Err(r)) => Err(r.clone()),
                None => Err(refuse(func, header, "callee")),
            }
        },
    )?;
    // Compiled branches back: to the header (the loop comes round in compiled code), or to
    // anywhere before them (a loop of a function entered at its call).
    let back = |to_header: bool| {
        f.code.iter().enumerate().any(|(pc, ins)| {
            a.states[pc].is_some()
                && !a.exits[pc]
                && match *ins {
                    Instr::Jump { target }
                    | Instr::JumpIf { target, .. }
                    | Instr::JumpIfNot { target, .. }
                    | Instr::JumpIfNotLt { target, .. }
                    | Instr::IterNext { target, .. } => match to_header {
                        true => target as usize == header,
                        false => target as usize <= pc,
                    },
                    _ => to_header && pc + 1 == header,
                }
        })
    };
    match at_call {
        false if !back(true) => {
            return Err(refuse(
                func,
                header,
                "the loop leaves compiled code every time round",
            ))
        }
        true if !back(false)
            && (0..f.code.len())
                .filter(|&pc| a.states[pc].is_some() && !a.exits[pc])
                .count()
                < MIN_CALL_REGION =>
        {
            return Err(refuse(
                func,
                header,
                "too little compiles before the interpreter takes over",
            ))
        }
        _ => {}
    }
    // Only the callees of compiled calls are kept (each was analysed successfully).
    let mut kept = Vec::new();
    let mut renumber = HashMap::new();
    let mut calls = HashMap::new();
    for (pc, j) in a.calls {
        if a.exits[pc] {
            continue;
        }
        let k = *renumber.entry(j).or_insert_with(|| {
            kept.push(j);
            kept.len() - 1
        });
        calls.insert(pc, k);
    }
    let mut slots: Vec<Option<Vec<Plan>>> = callees.into_iter().map(|c| c.ok()).collect();
    let mut out = Vec::with_capacity(kept.len());
    for j in kept {
        let plans = slots
            .get_mut(j)
            .and_then(Option::take)
            .ok_or_else(|| refuse(func, header, "a compiled call has no plan"))?;
        out.push(plans);
    }
    Ok(Region {
        func,
        header,
        entry,
        states: a.states,
        writes: a.writes,
        exits: a.exits,
        calls,
        callees: out,
    })
}

#[cfg(test)]
mod tests {
    use super::supported_opcodes;
    use crate::format::{Constant, Function, Instr, Module, TypeDesc};

    fn module(middle: Option<Instr>) -> Module {
        let mut code = vec![Instr::LoadInt { dst: 0, imm: 1 }];
        code.extend(middle);
        code.push(Instr::Return { src: 0 });
        Module {
            strings: vec!["f".into()],
            constants: vec![Constant::Readers(None)],
            types: vec![TypeDesc::Any, TypeDesc::Bool],
            functions: vec![Function {
                name: 0,
                params: vec![],
                ret: 0,
                nregs: 1,
                ncaps: 0,
                code,
                lines: vec![],
                file: None,
                doc: None,
            }],
            ..Module::default()
        }
    }

    /// Compiled code sees only public values and never changes a label, so no function that
    /// holds a label instruction is ever compiled: the interpreter runs them all.
    #[test]
    fn the_label_instructions_are_never_compiled() {
        assert!(supported_opcodes(&module(None), 0));
        for i in [
            Instr::Classify {
                dst: 0,
                src: 0,
                readers: 0,
            },
            Instr::Declassify {
                dst: 0,
                src: 0,
                readers: 0,
            },
            Instr::Endorse { dst: 0, src: 0 },
            Instr::EndorseNarrow {
                dst: 0,
                src: 0,
                ty: 1,
            },
        ] {
            assert!(!supported_opcodes(&module(Some(i)), 0), "{i:?}");
        }
    }
}
