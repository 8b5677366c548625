//! The outer dispatch loop: runs the inner loop (`fast.rs`, which executes almost every
//! instruction, calls and returns included) and handles what it stops for: raised errors
//! (unwinding to a handler), GC safe points, the fuel running out, `Throw`, `Effect` and the
//! last `Return`. Fuel: every instruction costs one unit, checked before it runs.

use crate::error::{Fatal, Raise, VmError, R};
use crate::format::{Instr, Module};
use crate::host_value::HostValue;
use crate::natives::Ctx;
use crate::value::{ObjId, StrRef, Value};

use super::fast::Stop;
use super::{Frame, Limits, NativeSlot, Task, VmState};

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
    /// The first string id with the same text, per string id (field names compare by id).
    pub canon: &'a [u32],
    /// Per constant, the canonical ids of a record shape's field names (else empty).
    pub shapes: &'a [Box<[u32]>],
    pub limits: &'a Limits,
    /// The most registers a task's stack may hold: the heap limit bounds the register stack
    /// too, so that deep calls of functions with large frames cannot exhaust memory.
    pub max_stack_regs: usize,
    pub consts: &'a mut [Option<StrRef>],
    executed: &'a mut u64,
    others: &'a [Task],
}

impl<'a> Exec<'a> {
    pub fn new(
        module: &'a Module,
        natives: &'a [NativeSlot],
        canon: &'a [u32],
        shapes: &'a [Box<[u32]>],
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
            canon,
            shapes,
            limits,
            max_stack_regs: limits.max_heap_bytes / std::mem::size_of::<Value>(),
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
        loop {
            let stop;
            (*fuel, stop) = self.run_frames(t, *fuel);
            match stop {
                Stop::Outer => {}
                Stop::Fuel => {
                    self.raise(t, Raise::Fatal(Fatal::Fuel))?;
                    continue;
                }
                Stop::Raise(e) => {
                    self.raise(t, e)?;
                    continue;
                }
                Stop::Gc => {
                    if let Err(e) = self.collect(t) {
                        self.raise(t, e)?;
                    }
                    continue;
                }
            }
            // The instructions that leave the interpreter or unwind: the top frame's pc is at
            // one of them, with fuel left for it.
            let Some(&Frame { func, pc, base, .. }) = t.frames.last() else {
                return Err(VmError::Corrupt("a running task has no frame".into()));
            };
            let Some(&ins) = module
                .functions
                .get(func as usize)
                .and_then(|f| f.code.get(pc as usize))
            else {
                return Err(VmError::Corrupt(format!("pc {pc} out of function {func}")));
            };
            *fuel = fuel.saturating_sub(1);
            if let Some(fr) = t.frames.last_mut() {
                fr.pc = pc + 1;
            }
            let reg = |t: &Task, r: u16| {
                t.regs
                    .get(base as usize + r as usize)
                    .copied()
                    .ok_or_else(|| VmError::Corrupt(format!("register {r} out of range")))
            };
            match ins {
                Instr::Return { src } => {
                    let v = reg(t, src)?;
                    if let Some(v) = self.ret(t, v) {
                        return self.finish(v);
                    }
                }
                Instr::Throw { src } => {
                    let e = self.throw(reg(t, src)?);
                    self.raise(t, e)?;
                }
                Instr::Effect { dst, native, args } => {
                    let regs = t.regs.get(base as usize..).unwrap_or_default();
                    match self.effect(regs, native, args) {
                        Ok((native, args)) => return Ok(Exit::Effect { dst, native, args }),
                        Err(e) => self.raise(t, e)?,
                    }
                }
                other => {
                    return Err(VmError::Corrupt(format!(
                        "{:?} reached the outer dispatch loop",
                        other.opcode()
                    )))
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
