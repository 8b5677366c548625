//! The inner dispatch loop: every instruction that stays within one frame. The common cases
//! (moves, int and float arithmetic on public values, compares, jumps, simple type checks) run
//! inline; every other case goes through one out-of-line call, [`Exec::step`], which has the
//! full semantics. The loop stops at a frame change (calls, returns, `try`, throws, effects: the
//! outer loop in `exec.rs` runs those), at a raised error, at a GC safe point that is due, and
//! when the fuel runs out. Kept apart from the outer loop, with a single call site for the slow
//! path, so that its few live values (code, registers, pc, fuel) stay in machine registers.

use crate::error::{Fatal, Raise, R};
use crate::format::{Constant, Instr, TypeDesc};
use crate::label::{Label, LabelTable};
use crate::value::{Kind, ObjId, Value};

use super::exec::Exec;
use super::{Frame, Handler, Task};

fn corrupt(msg: String) -> Stop {
    Stop::Raise(Raise::Fatal(Fatal::Corrupt(msg)))
}

/// Why the inner loop stopped. With `Outer` the top frame's pc is at the instruction the
/// outer loop must run (not yet charged); with `Gc` and `Raise` the instruction at fault has
/// run (charged, pc past it); with `Fuel` the pc is at the instruction that found none left.
pub(super) enum Stop {
    Fuel,
    Outer,
    Gc,
    Raise(Raise),
}

/// Both operands ints, or both floats, with public labels: the result needs no label join.
enum Num {
    Ints(i64, i64),
    Floats(f64, f64),
    Other,
}

/// The top frame branched on a value labelled `l`: its control label `ctl` takes `l` in (it is
/// never lowered within the frame). Out of line: public conditions never get here.
#[cold]
#[inline(never)]
fn raise_control(frames: &mut [Frame], labels: &mut LabelTable, ctl: Label, l: Label) -> Label {
    let raised = labels.join(ctl, l);
    if let Some(fr) = frames.last_mut() {
        fr.label = raised;
    }
    raised
}

#[inline(always)]
fn num(x: Value, y: Value) -> Num {
    if let (Some(i), Some(j)) = (x.public_int(), y.public_int()) {
        return Num::Ints(i, j);
    }
    if let (Some(a), Some(b)) = (x.public_float(), y.public_float()) {
        return Num::Floats(a, b);
    }
    Num::Other
}

impl Exec<'_> {
    /// Runs task `t` with `left` fuel until it has to stop; returns the fuel left and why,
    /// with the top frame's pc saved. Every instruction costs one unit of fuel, checked before
    /// it runs.
    ///
    /// Invariants (the verifier's rules V8–V10 of spec/bytecode.md, and load::check_state for
    /// restored states): register operands are below the frame's `nregs`, the register stack
    /// ends at `base + nregs` of the top frame, jump targets are in the code, type operands
    /// are in the type table, and the last instruction of a function does not fall through,
    /// so the indexing below cannot fail.
    #[inline(never)]
    pub(super) fn run_frames(&mut self, t: &mut Task, mut left: u64) -> (u64, Stop) {
        let module = self.cx.module;
        'frame: loop {
            let Some(&Frame {
                func,
                pc,
                base,
                closure,
                label: ctl,
                ..
            }) = t.frames.last()
            else {
                return (left, corrupt("a running task has no frame".into()));
            };
            // The top frame's control label (kept in step with the frame's `label`).
            let mut ctl = ctl;
            // The top frame's function (kept in step by the inline call and return).
            let mut cur = func;
            let Some(f) = module.functions.get(func as usize) else {
                return (left, corrupt(format!("frame of missing function {func}")));
            };
            let mut code: &[Instr] = &f.code;
            let mut base = base as usize;
            let mut closure = closure;
            let mut pc = pc as usize;
            let Some(mut regs) = t.regs.get_mut(base..base + f.nregs as usize) else {
                return (left, corrupt("register window out of range".into()));
            };
            // Leaves with the top frame's pc saved.
            macro_rules! leave {
                ($pc:expr, $stop:expr) => {{
                    if let Some(fr) = t.frames.last_mut() {
                        fr.pc = $pc as u32;
                    }
                    return (left, $stop);
                }};
            }
            macro_rules! r {
                ($x:expr) => {
                    regs[$x as usize]
                };
            }
            'run: while left != 0 {
                let ins = &code[pc];
                pc = 'fast: {
                    // Stores the result of an allocating handler and steps on, leaving for the slow
                    // loop to raise its error or to collect garbage when the heap asks for it.
                    macro_rules! store_or_leave {
                        ($dst:expr, $result:expr) => {{
                            match $result {
                                Ok(v) => r!($dst) = v,
                                Err(e) => {
                                    left -= 1;
                                    leave!(pc + 1, Stop::Raise(e))
                                }
                            }
                            if self.cx.heap.gc_due() {
                                left -= 1;
                                leave!(pc + 1, Stop::Gc)
                            }
                            break 'fast pc + 1;
                        }};
                    }
                    // Binary arithmetic on two public ints (`$int`: None = overflow or zero divisor, left
                    // to the slow path) or two public floats.
                    macro_rules! arith {
                        ($dst:expr, $a:expr, $b:expr, $int:expr, $float:expr) => {
                            match num(r!($a), r!($b)) {
                                Num::Ints(i, j) => {
                                    if let Some(s) = $int(i, j) {
                                        r!($dst) = Value::int(s);
                                        break 'fast pc + 1;
                                    }
                                }
                                Num::Floats(a, b) => {
                                    r!($dst) = Value::float($float(a, b));
                                    break 'fast pc + 1;
                                }
                                Num::Other => {}
                            }
                        };
                    }
                    // Arithmetic with an int immediate on a public int (`$int`: None = overflow or
                    // zero divisor, left to the slow path) or a public float; the rest (errors,
                    // labels) goes to the register form's handler.
                    macro_rules! arith_imm {
                        ($dst:expr, $src:expr, $imm:expr, $int:expr, $float:expr) => {{
                            let x = r!($src);
                            if let Some(i) = x.public_int() {
                                if let Some(s) = $int(i, $imm as i64) {
                                    r!($dst) = Value::int(s);
                                    break 'fast pc + 1;
                                }
                            } else if let Some(f) = x.public_float() {
                                r!($dst) = Value::float($float(f, $imm as f64));
                                break 'fast pc + 1;
                            }
                        }};
                    }
                    macro_rules! compare {
                            ($dst:expr, $a:expr, $b:expr, $op:tt) => {
                                match num(r!($a), r!($b)) {
                                    Num::Ints(i, j) => {
                                        r!($dst) = Value::bool(i $op j);
                                        break 'fast pc + 1;
                                    }
                                    Num::Floats(a, b) => {
                                        r!($dst) = Value::bool(a $op b);
                                        break 'fast pc + 1;
                                    }
                                    Num::Other => {}
                                }
                            };
                        }
                    match *ins {
                        Instr::Nop {} => break 'fast pc + 1,
                        Instr::Move { dst, src } => {
                            r!(dst) = r!(src);
                            break 'fast pc + 1;
                        }
                        Instr::LoadNull { dst } => {
                            r!(dst) = Value::NULL;
                            break 'fast pc + 1;
                        }
                        Instr::LoadTrue { dst } => {
                            r!(dst) = Value::bool(true);
                            break 'fast pc + 1;
                        }
                        Instr::LoadFalse { dst } => {
                            r!(dst) = Value::bool(false);
                            break 'fast pc + 1;
                        }
                        Instr::LoadInt { dst, imm } => {
                            r!(dst) = Value::int(imm as i64);
                            break 'fast pc + 1;
                        }
                        Instr::LoadFunc { dst, func } => {
                            r!(dst) = Value::new(Kind::Func(func));
                            break 'fast pc + 1;
                        }
                        Instr::Add { dst, a, b } => {
                            arith!(dst, a, b, i64::checked_add, |a, b| a + b);
                            let (x, y) = (r!(a), r!(b));
                            if let (Kind::Str(p), Kind::Str(q)) = (x.kind(), y.kind()) {
                                let label = self.cx.labels.join(x.label(), y.label());
                                store_or_leave!(dst, self.add_strs(p, q, label))
                            }
                        }
                        Instr::Sub { dst, a, b } => {
                            arith!(dst, a, b, i64::checked_sub, |a, b| a - b)
                        }
                        Instr::Mul { dst, a, b } => {
                            arith!(dst, a, b, i64::checked_mul, |a, b| a * b)
                        }
                        Instr::Div { dst, a, b } => {
                            arith!(dst, a, b, i64::checked_div, |a, b| a / b)
                        }
                        Instr::Mod { dst, a, b } => {
                            arith!(dst, a, b, i64::checked_rem, |a, b| a % b)
                        }
                        Instr::AddImm { dst, src, imm } => {
                            let x = r!(src);
                            if let Some(i) = x.as_int() {
                                if let Some(s) = i.checked_add(imm as i64) {
                                    r!(dst) = Value::int(s).labelled(x.label());
                                    break 'fast pc + 1;
                                }
                            } else if let Some(f) = x.as_float() {
                                r!(dst) = Value::float(f + imm as f64).labelled(x.label());
                                break 'fast pc + 1;
                            }
                        }
                        Instr::MulImm { dst, src, imm } => {
                            arith_imm!(dst, src, imm, i64::checked_mul, |a, b| a * b)
                        }
                        Instr::DivImm { dst, src, imm } => {
                            arith_imm!(dst, src, imm, i64::checked_div, |a, b| a / b)
                        }
                        Instr::ModImm { dst, src, imm } => {
                            arith_imm!(dst, src, imm, i64::checked_rem, |a, b| a % b)
                        }
                        Instr::Eq { dst, a, b } => compare!(dst, a, b, ==),
                        Instr::Ne { dst, a, b } => compare!(dst, a, b, !=),
                        Instr::Lt { dst, a, b } => compare!(dst, a, b, <),
                        Instr::Le { dst, a, b } => compare!(dst, a, b, <=),
                        // A back-edge: the JIT tier may run the loop from its header in
                        // compiled code, which resumes the interpreter where it leaves
                        // (vm/src/jit/mod.rs). Compiled code sees only public values, so the
                        // frame's control label must be public already.
                        Instr::Jump { target } => {
                            if target as usize <= pc
                                && ctl.is_public()
                                && self
                                    .jit
                                    .as_deref()
                                    .is_some_and(|j| j.may_enter(cur, target))
                            {
                                // Taken out for the call, so that compiled code can call back
                                // into this interpreter (for the heap) while nothing else
                                // borrows it.
                                if let Some(jit) = self.jit.take() {
                                    left -= 1;
                                    let (max_depth, max_stack) =
                                        (self.limits.max_depth, self.max_stack_regs);
                                    let exec = (self as *mut Exec).cast::<u8>();
                                    pc = match left {
                                        0 => target as usize,
                                        _ => jit
                                            .enter_loop(
                                                module,
                                                cur,
                                                target,
                                                false,
                                                regs,
                                                &mut left,
                                                t.frames.len(),
                                                base + regs.len(),
                                                max_depth,
                                                max_stack,
                                                exec,
                                            )
                                            .unwrap_or(target as usize),
                                    };
                                    self.jit = Some(jit);
                                    continue 'run;
                                }
                            }
                            break 'fast target as usize;
                        }
                        // A public bool is one compare; a labelled one raises the control label.
                        Instr::JumpIf { cond, target } | Instr::JumpIfNot { cond, target } => {
                            let c = r!(cond);
                            let b = match c.public_bool() {
                                Some(b) => Some(b),
                                None => c.as_bool().inspect(|_| {
                                    ctl = raise_control(
                                        &mut t.frames,
                                        self.cx.labels,
                                        ctl,
                                        c.label(),
                                    );
                                }),
                            };
                            if let Some(b) = b {
                                let jump = b == matches!(ins, Instr::JumpIf { .. });
                                break 'fast if jump { target as usize } else { pc + 1 };
                            }
                        }
                        Instr::JumpIfNotLt { a, b, target } => {
                            let (x, y) = (r!(a), r!(b));
                            let less = match (x.public_int(), y.public_int()) {
                                (Some(i), Some(j)) => i < j,
                                _ => match (x.as_float(), y.as_float()) {
                                    _ if !x.label().is_public() || !y.label().is_public() => {
                                        let l = self.cx.labels.join(x.label(), y.label());
                                        ctl = raise_control(&mut t.frames, self.cx.labels, ctl, l);
                                        match self.less(x, y) {
                                            Ok(l) => l,
                                            Err(e) => {
                                                left -= 1;
                                                leave!(pc + 1, Stop::Raise(e))
                                            }
                                        }
                                    }
                                    (Some(p), Some(q)) => p < q,
                                    _ => match self.less(x, y) {
                                        Ok(l) => l,
                                        Err(e) => {
                                            left -= 1;
                                            leave!(pc + 1, Stop::Raise(e))
                                        }
                                    },
                                },
                            };
                            break 'fast if less { pc + 1 } else { target as usize };
                        }
                        Instr::CheckType { src, ty } => {
                            let x = r!(src);
                            let simple = match self.cx.module.types.get(ty as usize) {
                                Some(TypeDesc::Any) => true,
                                Some(TypeDesc::Int) => x.as_int().is_some(),
                                Some(TypeDesc::Float) => x.as_float().is_some(),
                                Some(TypeDesc::Bool) => x.as_bool().is_some(),
                                Some(TypeDesc::Str) => x.is_str(),
                                _ => false,
                            };
                            if simple {
                                break 'fast pc + 1;
                            }
                        }
                        Instr::CallFn { dst, func, args } => {
                            left -= 1;
                            if let Some(fr) = t.frames.last_mut() {
                                fr.pc = (pc + 1) as u32;
                            }
                            // The common case inline: arity right, depth and stack below their
                            // limits.
                            let callee = module.functions.get(func as usize);
                            // The top frame's window ends the register stack.
                            let stack_len = base + regs.len();
                            let Some(f) = callee.filter(|f| {
                                f.params.len() == args.count as usize
                                    && t.frames.len() < self.limits.max_depth
                                    && stack_len + f.nregs as usize <= self.max_stack_regs
                            }) else {
                                if let Err(e) = self.call(t, func, None, args, dst, ctl) {
                                    return (left, Stop::Raise(e));
                                }
                                continue 'frame;
                            };
                            // The JIT tier: a compiled specialisation runs the whole call, or
                            // declines having changed nothing (vm/src/jit/mod.rs).
                            if let Some(jit) = self.jit.as_deref_mut() {
                                let first = args.start as usize;
                                let a = regs.get(first..first + args.count as usize);
                                if let Some(v) = a.and_then(|a| {
                                    jit.enter(
                                        module,
                                        func,
                                        a,
                                        &mut left,
                                        t.frames.len() + 1,
                                        stack_len + f.nregs as usize,
                                        self.limits.max_depth,
                                        self.max_stack_regs,
                                    )
                                }) {
                                    // Compiled code sees only public values, so it never
                                    // branches on a labelled one: its control label is the
                                    // caller's throughout, joined into its result as a
                                    // return of the interpreter would.
                                    debug_assert!(v.label().is_public());
                                    r!(dst) = match ctl.is_public() {
                                        true => v,
                                        false => v.labelled(ctl),
                                    };
                                    pc += 1;
                                    continue 'run;
                                }
                            }
                            let nregs = f.nregs as usize;
                            let new_base = base + regs.len();
                            let first = base + args.start as usize;
                            // The new window: the arguments (registers of the caller's window,
                            // in range by the load checks), then nulls.
                            t.regs.reserve(nregs);
                            for i in 0..nregs {
                                let v = match i < args.count as usize {
                                    true => t.regs.get(first + i).copied().unwrap_or(Value::NULL),
                                    false => Value::NULL,
                                };
                                t.regs.push(v);
                            }
                            t.frames.push(Frame {
                                func,
                                pc: 0,
                                base: new_base as u32,
                                ret: dst,
                                closure: None,
                                label: ctl,
                            });
                            cur = func;
                            code = &f.code;
                            base = new_base;
                            closure = None;
                            regs = match t.regs.get_mut(new_base..new_base + nregs) {
                                Some(r) => r,
                                None => leave!(0, corrupt("register window".into())),
                            };
                            pc = 0;
                            // Not a specialisation: the JIT tier may run the function from its
                            // first instruction in compiled code, as a region, in this frame.
                            if ctl.is_public()
                                && left != 0
                                && self.jit.as_deref().is_some_and(|j| j.may_enter(func, 0))
                            {
                                if let Some(jit) = self.jit.take() {
                                    let (max_depth, max_stack) =
                                        (self.limits.max_depth, self.max_stack_regs);
                                    let exec = (self as *mut Exec).cast::<u8>();
                                    pc = jit
                                        .enter_loop(
                                            module,
                                            func,
                                            0,
                                            true,
                                            regs,
                                            &mut left,
                                            t.frames.len(),
                                            new_base + nregs,
                                            max_depth,
                                            max_stack,
                                            exec,
                                        )
                                        .unwrap_or(0);
                                    self.jit = Some(jit);
                                }
                            }
                            continue 'run;
                        }
                        Instr::Call { dst, callee, args } => {
                            left -= 1;
                            let callee = r!(callee);
                            if let Some(fr) = t.frames.last_mut() {
                                fr.pc = (pc + 1) as u32;
                            }
                            if let Err(e) = self.call_value(t, callee, args, dst) {
                                return (left, Stop::Raise(e));
                            }
                            continue 'frame;
                        }
                        // The last frame's return ends the task: the outer loop finishes it.
                        Instr::Return { src } if t.frames.len() > 1 => {
                            left -= 1;
                            let v = r!(src);
                            let Some(fr) = t.frames.pop() else {
                                continue 'frame;
                            };
                            let depth = t.frames.len() as u32;
                            while t.handlers.last().is_some_and(|h| h.depth > depth) {
                                t.handlers.pop();
                            }
                            let v = v.labelled(self.cx.labels.join(v.label(), fr.label));
                            t.regs.truncate(fr.base as usize);
                            self.returned_under(t, fr.label);
                            let Some(&Frame {
                                func,
                                pc: caller_pc,
                                base: caller_base,
                                closure: caller_closure,
                                label: caller_ctl,
                                ..
                            }) = t.frames.last()
                            else {
                                continue 'frame;
                            };
                            ctl = caller_ctl;
                            cur = func;
                            let Some(f) = module.functions.get(func as usize) else {
                                continue 'frame;
                            };
                            code = &f.code;
                            base = caller_base as usize;
                            closure = caller_closure;
                            pc = caller_pc as usize;
                            regs = match t.regs.get_mut(base..base + f.nregs as usize) {
                                Some(r) => r,
                                None => leave!(pc, corrupt("register window".into())),
                            };
                            if let Some(slot) = regs.get_mut(fr.ret as usize) {
                                *slot = v;
                            }
                            continue 'run;
                        }
                        // Numbers, and strings already on the heap (the first load of a
                        // string constant allocates: slow path).
                        Instr::LoadConst { dst, k } => {
                            let v = match module.constants.get(k as usize) {
                                Some(Constant::Int(i)) => Some(Value::int(*i)),
                                Some(Constant::Float(f)) => Some(Value::float(*f)),
                                _ => self
                                    .consts
                                    .get(k as usize)
                                    .copied()
                                    .flatten()
                                    .map(Value::str),
                            };
                            if let Some(v) = v {
                                r!(dst) = v;
                                break 'fast pc + 1;
                            }
                        }
                        Instr::GetField { dst, obj, name } => {
                            let x = r!(obj);
                            if let Kind::Record(o) = x.kind() {
                                if let Some(&mut v) = self.field_ref(o, name) {
                                    r!(dst) = v.labelled(self.cx.labels.join(x.label(), v.label()));
                                    break 'fast pc + 1;
                                }
                            }
                        }
                        Instr::SetField { obj, name, src } => {
                            if let Kind::Record(o) = r!(obj).kind() {
                                let v = r!(src);
                                if let Some(slot) = self.field_ref(o, name) {
                                    *slot = v;
                                    break 'fast pc + 1;
                                }
                            }
                        }
                        Instr::GetIndex { dst, obj, key } => {
                            let (x, k) = (r!(obj), r!(key));
                            if let (Kind::List(o), Kind::Int(i)) = (x.kind(), k.kind()) {
                                let v = match self.cx.heap.list(o) {
                                    Ok(list) => usize::try_from(i).ok().and_then(|i| list.get(i)),
                                    Err(_) => None,
                                };
                                if let Some(&v) = v {
                                    let l = self.cx.labels.join(x.label(), k.label());
                                    r!(dst) = v.labelled(self.cx.labels.join(l, v.label()));
                                    break 'fast pc + 1;
                                }
                            }
                        }
                        Instr::SetIndex { obj, key, src } => {
                            let (k, v) = (r!(key), r!(src));
                            if let (Kind::List(o), Kind::Int(i)) = (r!(obj).kind(), k.kind()) {
                                let v = v.labelled(self.cx.labels.join(v.label(), k.label()));
                                let slot = match self.cx.heap.list_mut(o) {
                                    Ok(list) => {
                                        usize::try_from(i).ok().and_then(|i| list.get_mut(i))
                                    }
                                    Err(_) => None,
                                };
                                if let Some(slot) = slot {
                                    *slot = v;
                                    break 'fast pc + 1;
                                }
                            }
                        }
                        // Natives and string `+` skip the slow path's dispatch: they are the
                        // inner loop of text building.
                        Instr::CallNative { dst, native, args } => {
                            store_or_leave!(dst, self.call_native(regs, native, args))
                        }
                        Instr::TryBegin { err, handler } => {
                            t.handlers.push(Handler {
                                depth: t.frames.len() as u32,
                                err,
                                target: handler,
                            });
                            break 'fast pc + 1;
                        }
                        Instr::TryEnd {} => {
                            let depth = t.frames.len() as u32;
                            if t.handlers.last().is_some_and(|h| h.depth == depth) {
                                t.handlers.pop();
                            }
                            break 'fast pc + 1;
                        }
                        Instr::Return { .. }
                        | Instr::Throw { .. }
                        | Instr::Effect { .. }
                        | Instr::CallLlm { .. }
                        | Instr::Spawn { .. }
                        | Instr::Await { .. } => leave!(pc, Stop::Outer),
                        // Whether the loop goes on depends on the iterable: a labelled one
                        // raises the control label; the step itself is the slow path's.
                        Instr::IterNext { iter, .. } | Instr::IterNext2 { iter, .. } => {
                            let l = r!(iter).label();
                            if !l.is_public() {
                                ctl = raise_control(&mut t.frames, self.cx.labels, ctl, l);
                            }
                        }
                        // The label instructions: rare, and they copy what they relabel.
                        Instr::Classify { dst, src, readers } => {
                            store_or_leave!(dst, self.classify(r!(src), readers))
                        }
                        Instr::Declassify { dst, src, readers } => {
                            let at = (t.frames.last().map_or(0, |f| f.func), pc as u32);
                            store_or_leave!(dst, self.declassify(r!(src), readers, at))
                        }
                        Instr::Endorse { dst, src } => {
                            let at = (t.frames.last().map_or(0, |f| f.func), pc as u32);
                            store_or_leave!(dst, self.endorse(r!(src), at))
                        }
                        Instr::EndorseNarrow { dst, src, ty } => {
                            let at = (t.frames.last().map_or(0, |f| f.func), pc as u32);
                            store_or_leave!(dst, self.endorse_narrow(r!(src), ty, at))
                        }
                        _ => {}
                    }
                    // The slow path: one call site for every case the arms above leave.
                    let next = match self.step(ins, regs, closure) {
                        Ok(None) => pc + 1,
                        Ok(Some(target)) => target as usize,
                        Err(e) => {
                            left -= 1;
                            leave!(pc + 1, Stop::Raise(e))
                        }
                    };
                    // A safe point. Only an instruction that allocates can make a collection
                    // due, and the inline cases above never allocate.
                    if self.cx.heap.gc_due() {
                        left -= 1;
                        leave!(next, Stop::Gc)
                    }
                    next
                };
                left -= 1;
            }
            leave!(pc, Stop::Fuel)
        }
    }

    /// The full semantics of an instruction that stays within its frame: the value it writes
    /// and, for a branch taken, its target.
    #[inline(never)]
    fn step(&mut self, ins: &Instr, regs: &mut [Value], closure: Option<ObjId>) -> R<Option<u32>> {
        macro_rules! r {
            ($x:expr) => {
                regs[$x as usize]
            };
        }
        match *ins {
            Instr::Nop {} => {}
            Instr::Move { dst, src } => r!(dst) = r!(src),
            Instr::LoadNull { dst } => r!(dst) = Value::NULL,
            Instr::LoadTrue { dst } => r!(dst) = Value::bool(true),
            Instr::LoadFalse { dst } => r!(dst) = Value::bool(false),
            Instr::LoadInt { dst, imm } => r!(dst) = Value::int(imm as i64),
            Instr::LoadConst { dst, k } => r!(dst) = self.constant(k)?,
            Instr::LoadFunc { dst, func } => r!(dst) = Value::new(Kind::Func(func)),
            Instr::Closure { dst, func, caps } => r!(dst) = self.closure(regs, func, caps)?,
            Instr::CellNew { dst, src } => r!(dst) = self.cell_new(r!(src)),
            Instr::CellGet { dst, cell } => r!(dst) = self.cell_get(r!(cell))?,
            Instr::CellSet { cell, src } => self.cell_set(r!(cell), r!(src))?,
            Instr::UpvalGet { dst, idx } => r!(dst) = self.upval_get(closure, idx)?,
            Instr::UpvalSet { idx, src } => self.upval_set(closure, idx, r!(src))?,
            Instr::UpvalCell { dst, idx } => r!(dst) = self.upval_cell(closure, idx)?,
            Instr::Add { dst, a, b } => r!(dst) = self.add(r!(a), r!(b))?,
            Instr::Sub { dst, a, b } => r!(dst) = self.sub(r!(a), r!(b))?,
            Instr::Mul { dst, a, b } => r!(dst) = self.mul(r!(a), r!(b))?,
            Instr::Div { dst, a, b } => r!(dst) = self.div(r!(a), r!(b))?,
            Instr::Mod { dst, a, b } => r!(dst) = self.rem(r!(a), r!(b))?,
            Instr::Neg { dst, src } => r!(dst) = self.neg(r!(src))?,
            Instr::AddImm { dst, src, imm } => r!(dst) = self.add_imm(r!(src), imm)?,
            // The immediate forms are the register forms with a public int right operand, so
            // their errors and labels are the same by construction.
            Instr::MulImm { dst, src, imm } => {
                r!(dst) = self.mul(r!(src), Value::int(imm as i64))?
            }
            Instr::DivImm { dst, src, imm } => {
                r!(dst) = self.div(r!(src), Value::int(imm as i64))?
            }
            Instr::ModImm { dst, src, imm } => {
                r!(dst) = self.rem(r!(src), Value::int(imm as i64))?
            }
            Instr::Not { dst, src } => r!(dst) = self.not(r!(src))?,
            Instr::Eq { dst, a, b } => r!(dst) = self.eq(r!(a), r!(b), true)?,
            Instr::Ne { dst, a, b } => r!(dst) = self.eq(r!(a), r!(b), false)?,
            Instr::Lt { dst, a, b } => r!(dst) = self.lt(r!(a), r!(b), false)?,
            Instr::Le { dst, a, b } => r!(dst) = self.lt(r!(a), r!(b), true)?,
            Instr::ToStr { dst, src } => r!(dst) = self.stringify(r!(src))?,
            Instr::Concat { dst, parts } => r!(dst) = self.concat(regs, parts)?,
            Instr::Jump { target } => return Ok(Some(target)),
            Instr::JumpIf { cond, target } | Instr::JumpIfNot { cond, target } => {
                let Kind::Bool(b) = r!(cond).kind() else {
                    return Err(self.not_bool(r!(cond)));
                };
                if b == matches!(ins, Instr::JumpIf { .. }) {
                    return Ok(Some(target));
                }
            }
            Instr::JumpIfNotLt { a, b, target } => {
                if !self.less(r!(a), r!(b))? {
                    return Ok(Some(target));
                }
            }
            Instr::NewList { dst, items } => r!(dst) = self.new_list(regs, items),
            Instr::NewMap { dst, kvs } => r!(dst) = self.new_map(regs, kvs)?,
            Instr::NewRecord { dst, shape, vals } => r!(dst) = self.new_record(regs, shape, vals),
            Instr::GetIndex { dst, obj, key } => r!(dst) = self.get_index(r!(obj), r!(key))?,
            Instr::SetIndex { obj, key, src } => self.set_index(r!(obj), r!(key), r!(src))?,
            Instr::GetField { dst, obj, name } => r!(dst) = self.get_field(r!(obj), name)?,
            Instr::SetField { obj, name, src } => self.set_field(r!(obj), name, r!(src))?,
            Instr::Slice { dst, obj, lo, hi } => r!(dst) = self.slice(r!(obj), r!(lo), r!(hi))?,
            Instr::Range { dst, lo, hi } => r!(dst) = self.range(r!(lo), r!(hi))?,
            Instr::IterNew { dst, src } => r!(dst) = self.iter_new(r!(src))?,
            Instr::IterNext { dst, iter, target } => match self.iter_next(r!(iter), false)? {
                Some((_, v)) => r!(dst) = v,
                None => {
                    r!(dst) = Value::NULL;
                    return Ok(Some(target));
                }
            },
            Instr::IterNext2 {
                key,
                val,
                iter,
                target,
            } => match self.iter_next(r!(iter), true)? {
                Some((k, v)) => {
                    r!(key) = k;
                    r!(val) = v;
                }
                None => {
                    r!(key) = Value::NULL;
                    r!(val) = Value::NULL;
                    return Ok(Some(target));
                }
            },
            Instr::CallNative { dst, native, args } => {
                r!(dst) = self.call_native(regs, native, args)?
            }
            Instr::CheckType { src, ty } => self.check_type(r!(src), ty)?,
            Instr::Call { .. }
            | Instr::CallFn { .. }
            | Instr::Return { .. }
            | Instr::Throw { .. }
            | Instr::TryBegin { .. }
            | Instr::TryEnd { .. }
            | Instr::Effect { .. }
            | Instr::CallLlm { .. }
            | Instr::Spawn { .. }
            | Instr::Await { .. }
            | Instr::Classify { .. }
            | Instr::Declassify { .. }
            | Instr::Endorse { .. }
            | Instr::EndorseNarrow { .. } => {
                return Err(Raise::Fatal(crate::error::Fatal::Corrupt(format!(
                    "{:?} reached the in-frame handler",
                    ins.opcode()
                ))))
            }
        }
        Ok(None)
    }
}
