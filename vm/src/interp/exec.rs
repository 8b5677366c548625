//! The dispatch loop: fetch the instruction at `pc`, match it, call a small handler. Calls and
//! returns push and pop frames on the task's `Vec` (no Rust recursion per bytecode call); the
//! loop reloads the frame's locals after each. Slow paths live in the `arith`, `access` and
//! `calls` handlers. Fuel: every instruction costs one unit, checked before it runs.

use crate::error::{Fatal, Raise, VmError, R};
use crate::format::{Instr, Module};
use crate::host_value::HostValue;
use crate::label::Label;
use crate::natives::Ctx;
use crate::value::{Kind, ObjId, StrRef, Value};

use super::{Frame, Handler, Limits, NativeSlot, Task, VmState};

/// Why the loop stopped.
pub(crate) enum Exit {
    Done(HostValue),
    Effect {
        dst: u16,
        native: &'static str,
        args: Vec<HostValue>,
    },
}

/// The interpreter's view of a VM while one task runs: the module, the shared heap and labels,
/// and the other tasks (read only, as GC roots).
pub(crate) struct Exec<'a> {
    pub cx: Ctx<'a>,
    pub natives: &'a [NativeSlot],
    pub limits: &'a Limits,
    pub consts: &'a mut [Option<StrRef>],
    executed: &'a mut u64,
    others: &'a [Task],
}

impl<'a> Exec<'a> {
    pub fn new(
        module: &'a Module,
        natives: &'a [NativeSlot],
        limits: &'a Limits,
        st: &'a mut VmState,
    ) -> Self {
        Exec {
            cx: Ctx {
                heap: &mut st.heap,
                labels: &mut st.labels,
                module,
            },
            natives,
            limits,
            consts: &mut st.consts,
            executed: &mut st.executed,
            others: &st.tasks,
        }
    }

    /// Runs task `t` until it finishes, yields an effect, or fails.
    pub fn run(&mut self, t: &mut Task) -> Result<Exit, VmError> {
        let start = match self.limits.fuel {
            Some(f) => f.saturating_sub(*self.executed),
            None => u64::MAX,
        };
        let mut fuel = start;
        let result = self.dispatch(t, &mut fuel);
        *self.executed += start - fuel;
        result
    }

    fn dispatch(&mut self, t: &mut Task, fuel: &mut u64) -> Result<Exit, VmError> {
        if let Some(err) = t.pending_raise.take() {
            self.raise(t, Raise::Value(err))?;
        }
        let module: &'a Module = self.cx.module;
        'frames: loop {
            let Some(&Frame {
                func,
                pc,
                base,
                closure,
                ..
            }) = t.frames.last()
            else {
                return Err(VmError::Corrupt("a running task has no frame".into()));
            };
            let Some(f) = module.functions.get(func as usize) else {
                return Err(VmError::Corrupt(format!(
                    "frame of missing function {func}"
                )));
            };
            // Invariants (load::check_module, load::check_state): every register operand is
            // below `nregs`, `regs.len() == base + nregs`, every jump target is in the code and
            // the last instruction does not fall through, so the indexing below cannot fail.
            let code: &'a [Instr] = &f.code;
            let base = base as usize;
            let mut pc = pc as usize;
            macro_rules! r {
                ($x:expr) => {
                    t.regs[base + $x as usize]
                };
            }
            macro_rules! save {
                () => {
                    if let Some(fr) = t.frames.last_mut() {
                        fr.pc = pc as u32;
                    }
                };
            }
            macro_rules! throw {
                ($e:expr) => {{
                    let e = $e;
                    save!();
                    self.raise(t, e)?;
                    continue 'frames;
                }};
            }
            macro_rules! tri {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(e) => throw!(e),
                    }
                };
            }
            macro_rules! gc {
                () => {
                    if self.cx.heap.gc_due() {
                        save!();
                        tri!(self.collect(t));
                    }
                };
            }
            loop {
                if *fuel == 0 {
                    throw!(Raise::Fatal(Fatal::Fuel));
                }
                *fuel -= 1;
                let ins = code[pc];
                pc += 1;
                match ins {
                    Instr::Nop {} => {}
                    Instr::Move { dst, src } => r!(dst) = r!(src),
                    Instr::LoadNull { dst } => r!(dst) = Value::NULL,
                    Instr::LoadTrue { dst } => r!(dst) = Value::bool(true),
                    Instr::LoadFalse { dst } => r!(dst) = Value::bool(false),
                    Instr::LoadInt { dst, imm } => r!(dst) = Value::int(imm as i64),
                    Instr::LoadConst { dst, k } => {
                        r!(dst) = tri!(self.constant(k));
                        gc!()
                    }
                    Instr::LoadFunc { dst, func } => r!(dst) = Value::new(Kind::Func(func)),
                    Instr::Closure { dst, func, caps } => {
                        r!(dst) = tri!(self.closure(&t.regs[base..], func, caps));
                        gc!()
                    }
                    Instr::CellNew { dst, src } => {
                        r!(dst) = self.cell_new(r!(src));
                        gc!()
                    }
                    Instr::CellGet { dst, cell } => r!(dst) = tri!(self.cell_get(r!(cell))),
                    Instr::CellSet { cell, src } => tri!(self.cell_set(r!(cell), r!(src))),
                    Instr::UpvalGet { dst, idx } => r!(dst) = tri!(self.upval_get(closure, idx)),
                    Instr::UpvalSet { idx, src } => tri!(self.upval_set(closure, idx, r!(src))),
                    Instr::UpvalCell { dst, idx } => r!(dst) = tri!(self.upval_cell(closure, idx)),
                    Instr::Add { dst, a, b } => {
                        r!(dst) = tri!(self.add(r!(a), r!(b)));
                        gc!()
                    }
                    Instr::Sub { dst, a, b } => r!(dst) = tri!(self.sub(r!(a), r!(b))),
                    Instr::Mul { dst, a, b } => r!(dst) = tri!(self.mul(r!(a), r!(b))),
                    Instr::Div { dst, a, b } => r!(dst) = tri!(self.div(r!(a), r!(b))),
                    Instr::Mod { dst, a, b } => r!(dst) = tri!(self.rem(r!(a), r!(b))),
                    Instr::Neg { dst, src } => r!(dst) = tri!(self.neg(r!(src))),
                    Instr::AddImm { dst, src, imm } => r!(dst) = tri!(self.add_imm(r!(src), imm)),
                    Instr::Not { dst, src } => r!(dst) = tri!(self.not(r!(src))),
                    Instr::Eq { dst, a, b } => r!(dst) = tri!(self.eq(r!(a), r!(b), true)),
                    Instr::Ne { dst, a, b } => r!(dst) = tri!(self.eq(r!(a), r!(b), false)),
                    Instr::Lt { dst, a, b } => r!(dst) = tri!(self.lt(r!(a), r!(b), false)),
                    Instr::Le { dst, a, b } => r!(dst) = tri!(self.lt(r!(a), r!(b), true)),
                    Instr::ToStr { dst, src } => {
                        r!(dst) = tri!(self.stringify(r!(src)));
                        gc!()
                    }
                    Instr::Concat { dst, parts } => {
                        r!(dst) = tri!(self.concat(&t.regs[base..], parts));
                        gc!()
                    }
                    Instr::Jump { target } => pc = target as usize,
                    Instr::JumpIf { cond, target } => {
                        if tri!(self.truth(r!(cond))) {
                            pc = target as usize
                        }
                    }
                    Instr::JumpIfNot { cond, target } => {
                        if !tri!(self.truth(r!(cond))) {
                            pc = target as usize
                        }
                    }
                    Instr::JumpIfNotLt { a, b, target } => {
                        if !tri!(self.less(r!(a), r!(b))) {
                            pc = target as usize
                        }
                    }
                    Instr::NewList { dst, items } => {
                        r!(dst) = self.new_list(&t.regs[base..], items);
                        gc!()
                    }
                    Instr::NewMap { dst, kvs } => {
                        r!(dst) = tri!(self.new_map(&t.regs[base..], kvs));
                        gc!()
                    }
                    Instr::NewRecord { dst, shape, vals } => {
                        r!(dst) = self.new_record(&t.regs[base..], shape, vals);
                        gc!()
                    }
                    Instr::GetIndex { dst, obj, key } => {
                        r!(dst) = tri!(self.get_index(r!(obj), r!(key)));
                        gc!()
                    }
                    Instr::SetIndex { obj, key, src } => {
                        tri!(self.set_index(r!(obj), r!(key), r!(src)));
                        gc!()
                    }
                    Instr::GetField { dst, obj, name } => {
                        r!(dst) = tri!(self.get_field(r!(obj), name));
                        gc!()
                    }
                    Instr::SetField { obj, name, src } => {
                        tri!(self.set_field(r!(obj), name, r!(src)));
                        gc!()
                    }
                    Instr::Slice { dst, obj, lo, hi } => {
                        r!(dst) = tri!(self.slice(r!(obj), r!(lo), r!(hi)));
                        gc!()
                    }
                    Instr::Range { dst, lo, hi } => {
                        r!(dst) = tri!(self.range(r!(lo), r!(hi)));
                        gc!()
                    }
                    Instr::IterNew { dst, src } => {
                        r!(dst) = tri!(self.iter_new(r!(src)));
                        gc!()
                    }
                    Instr::IterNext { dst, iter, target } => {
                        match tri!(self.iter_next(r!(iter), false)) {
                            Some((_, v)) => r!(dst) = v,
                            None => {
                                r!(dst) = Value::NULL;
                                pc = target as usize;
                            }
                        }
                        gc!()
                    }
                    Instr::IterNext2 {
                        key,
                        val,
                        iter,
                        target,
                    } => {
                        match tri!(self.iter_next(r!(iter), true)) {
                            Some((k, v)) => {
                                r!(key) = k;
                                r!(val) = v;
                            }
                            None => {
                                r!(key) = Value::NULL;
                                r!(val) = Value::NULL;
                                pc = target as usize;
                            }
                        }
                        gc!()
                    }
                    Instr::Call { dst, callee, args } => {
                        save!();
                        tri!(self.call_value(t, r!(callee), args, dst));
                        continue 'frames;
                    }
                    Instr::CallFn { dst, func, args } => {
                        save!();
                        tri!(self.call(t, func, None, args, dst, Label::PUBLIC));
                        continue 'frames;
                    }
                    Instr::CallNative { dst, native, args } => {
                        r!(dst) = tri!(self.call_native(&t.regs[base..], native, args));
                        gc!()
                    }
                    Instr::Return { src } => {
                        if let Some(v) = self.ret(t, r!(src)) {
                            return self.finish(v);
                        }
                        continue 'frames;
                    }
                    Instr::Throw { src } => throw!(self.throw(r!(src))),
                    Instr::TryBegin { err, handler } => t.handlers.push(Handler {
                        depth: t.frames.len() as u32,
                        err,
                        target: handler,
                    }),
                    Instr::TryEnd {} => {
                        let depth = t.frames.len() as u32;
                        if t.handlers.last().is_some_and(|h| h.depth == depth) {
                            t.handlers.pop();
                        }
                    }
                    Instr::CheckType { src, ty } => tri!(self.check_type(r!(src), ty)),
                    Instr::Effect { dst, native, args } => {
                        save!();
                        let (native, args) = tri!(self.effect(&t.regs[base..], native, args));
                        return Ok(Exit::Effect { dst, native, args });
                    }
                }
            }
        }
    }

    /// A task's final value, for the host.
    fn finish(&mut self, v: Value) -> Result<Exit, VmError> {
        match super::convert::to_host(&self.cx, v) {
            Ok(h) => Ok(Exit::Done(h)),
            Err(_) => Err(VmError::Uncaught {
                kind: crate::error::kind::VALUE.into(),
                message: "the final value cannot leave the VM (it contains a cycle)".into(),
                trace: Default::default(),
            }),
        }
    }

    /// A collection at a safe point: every live value is in a register of some task, a
    /// cached constant, or a pending error. Fails when the live data is over the heap limit.
    pub(super) fn collect(&mut self, t: &Task) -> R<()> {
        let mut roots: Vec<Value> = Vec::new();
        let mut objs: Vec<ObjId> = Vec::new();
        task_roots(t, &mut roots, &mut objs);
        for other in self.others {
            task_roots(other, &mut roots, &mut objs);
        }
        objs.extend(self.consts.iter().flatten().map(|s| s.obj));
        let live = self.cx.heap.collect(roots, &objs);
        if live > self.cx.heap.limit() {
            return Err(Raise::Fatal(Fatal::Heap));
        }
        Ok(())
    }
}

/// The roots a task holds: its registers, its frames' closures, a pending error.
pub(crate) fn task_roots(t: &Task, roots: &mut Vec<Value>, objs: &mut Vec<ObjId>) {
    roots.extend_from_slice(&t.regs);
    roots.extend(t.pending_raise);
    objs.extend(t.frames.iter().filter_map(|f| f.closure));
}
