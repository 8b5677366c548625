//! The outer dispatch loop: runs the inner loop (`fast.rs`, which executes almost every
//! instruction, calls and returns included) and handles what it stops for: raised errors
//! (unwinding to a handler), GC safe points, the fuel running out, `Throw`, `Effect` and the
//! last `Return`, and the task instructions (`CallLlm`, `Spawn`, `Await`), which need the VM's
//! task table and so leave the loop for `Vm::run`. Fuel: every instruction costs one unit,
//! checked before it runs.

use crate::error::{kind, Fatal, Raise, VmError, R};
use crate::format::{Instr, Module, RegRange, LLM_CALL};
use crate::host_value::HostValue;
use crate::label::{Label, LabelEvent};
use crate::natives::Ctx;
use crate::value::{Kind, ObjId, StrRef, Value};

use super::fast::Stop;
use super::{Frame, Limits, NativeSlot, Outcome, Task, VmState};

/// The tasks a VM may hold, live or finished, before spawning one more is a heap-limit error:
/// each task costs this many bytes of the heap limit (its table entry), so a program that
/// spawns without end stops like one that allocates without end.
const TASK_COST: usize = 256;

/// Why the loop stopped.
pub(crate) enum Exit {
    /// The task's last frame returned this value.
    Done(Value),
    Effect {
        dst: u16,
        native: &'static str,
        args: Vec<HostValue>,
        /// The control label of the frame that asked.
        control: crate::label::LabelInfo,
    },
    /// The task ran `Spawn`: this is the new task (its handle is already in the register).
    Spawn(Box<Task>),
    /// The task ran `Await` on the task with this id; `label` is the handle's.
    Await { dst: u16, task: u32, label: Label },
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
    /// The JIT tier, when on (vm/src/jit/; entered from `CallFn` in `fast.rs`).
    pub jit: Option<&'a mut crate::jit::Jit>,
    /// The error value that left the task uncaught, if it did (kept for spawned tasks, whose
    /// error is raised again by `Await`).
    pub uncaught: Option<Value>,
    /// The id of the task running (for label events).
    pub task: u32,
    /// Strict flow: effect arguments get the control label too (see `Vm::set_strict_flow`).
    pub strict_flow: bool,
    /// Where label-lowering instructions record what they did.
    pub events: &'a mut Vec<LabelEvent>,
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
            jit: None,
            uncaught: None,
            task: 0,
            strict_flow: false,
            events: &mut st.label_events,
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
            let Some(&Frame {
                func,
                pc,
                base,
                label: control,
                ..
            }) = t.frames.last()
            else {
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
                        return Ok(Exit::Done(v));
                    }
                }
                Instr::Throw { src } => {
                    let e = self.throw(reg(t, src)?);
                    self.raise(t, e)?;
                }
                Instr::Effect { dst, native, args } => {
                    let regs = t.regs.get(base as usize..).unwrap_or_default();
                    match self.effect(regs, native, args) {
                        Ok((native, args)) => {
                            return Ok(self.effect_exit(dst, native, args, control))
                        }
                        Err(e) => self.raise(t, e)?,
                    }
                }
                Instr::CallLlm { dst, model, req } => {
                    match self.llm_request(reg(t, model)?, reg(t, req)?) {
                        Ok(args) => return Ok(self.effect_exit(dst, LLM_CALL, args, control)),
                        Err(e) => self.raise(t, e)?,
                    }
                }
                Instr::Spawn { dst, callee, args } => {
                    let callee = reg(t, callee)?;
                    let regs = t.regs.get(base as usize..).unwrap_or_default();
                    match self.new_task(callee, regs, args, control) {
                        Ok((new, label)) => {
                            let id = self.others.len() as u32;
                            let slot = t
                                .regs
                                .get_mut(base as usize + dst as usize)
                                .ok_or_else(|| VmError::Corrupt("spawn register".into()))?;
                            *slot = Value::with(Kind::Task(id), label);
                            return Ok(Exit::Spawn(Box::new(new)));
                        }
                        Err(e) => self.raise(t, e)?,
                    }
                }
                Instr::Await { dst, task } => {
                    let h = reg(t, task)?;
                    match h.kind() {
                        Kind::Task(id) => {
                            return Ok(Exit::Await {
                                dst,
                                task: id,
                                label: h.label(),
                            })
                        }
                        _ => {
                            let e = Raise::rt(
                                kind::TYPE,
                                format!("await needs a task, found {}", h.type_name()),
                            );
                            self.raise(t, e)?
                        }
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

    /// The exit for an effect asked under control label `control`: with strict flow, every
    /// node of every argument gets that label joined into its own.
    fn effect_exit(
        &self,
        dst: u16,
        native: &'static str,
        mut args: Vec<HostValue>,
        control: Label,
    ) -> Exit {
        let control = self.cx.labels.info(control);
        if self.strict_flow && !control.is_public() {
            args = args
                .into_iter()
                .map(|a| a.labelled_deep(&control))
                .collect();
        }
        Exit::Effect {
            dst,
            native,
            args,
            control,
        }
    }

    /// The arguments of the `llm.call` effect of `CallLlm`: the model's logical name, which
    /// must be one of the module's model slots, and the request as is.
    fn llm_request(&mut self, model: Value, req: Value) -> R<Vec<HostValue>> {
        let Kind::Str(s) = model.kind() else {
            return Err(Raise::rt(
                kind::TYPE,
                format!("a model is named by a string, found {}", model.type_name()),
            ));
        };
        let name = self.cx.heap.str(s)?;
        if self.cx.module.model(name).is_none() {
            let known: Vec<String> = self
                .cx
                .module
                .models
                .iter()
                .map(|m| format!("{:?}", self.cx.module.str(m.logical)))
                .collect();
            let known = match known.is_empty() {
                true => "the program declares no models".to_string(),
                false => format!("declared: {}", known.join(", ")),
            };
            return Err(Raise::rt(
                kind::UNKNOWN_MODEL,
                format!("no model slot has the logical name {name:?} ({known})"),
            ));
        }
        Ok(vec![
            super::convert::to_host(&self.cx, model)?,
            super::convert::to_host(&self.cx, req)?,
        ])
    }

    /// A new task running `callee(args)`, and the label of its handle (the join of the
    /// callee's and the arguments' labels). Arity is checked as by `Call`. The task starts at
    /// the spawner's control label `control` joined with the callee's label.
    fn new_task(
        &mut self,
        callee: Value,
        regs: &[Value],
        args: RegRange,
        control: Label,
    ) -> R<(Task, Label)> {
        let (func, closure) = match callee.kind() {
            Kind::Func(f) => (f, None),
            Kind::Closure(o) => (self.cx.heap.closure(o)?.func, Some(o)),
            _ => {
                return Err(Raise::rt(
                    kind::TYPE,
                    format!("cannot spawn a {}", callee.type_name()),
                ))
            }
        };
        let module = self.cx.module;
        let f = module
            .functions
            .get(func as usize)
            .ok_or_else(|| Raise::Fatal(Fatal::Corrupt(format!("spawn of function {func}"))))?;
        if f.params.len() != args.count as usize {
            return Err(super::calls::arity_error(module, func, args.count));
        }
        let tasks = self.others.len().saturating_add(1);
        if f.nregs as usize > self.max_stack_regs
            || tasks.saturating_mul(TASK_COST) > self.limits.max_heap_bytes
        {
            return Err(Raise::Fatal(Fatal::Heap));
        }
        let start = args.start as usize;
        // In range: the arguments are registers of the caller's window (verifier rule V9).
        let a = regs
            .get(start..start + args.count as usize)
            .unwrap_or_default();
        let mut label = callee.label();
        for v in a {
            label = self.cx.labels.join(label, v.label());
        }
        let mut new_regs = vec![Value::NULL; f.nregs as usize];
        for (slot, v) in new_regs.iter_mut().zip(a) {
            *slot = *v;
        }
        let task = Task {
            regs: new_regs,
            frames: vec![Frame {
                func,
                pc: 0,
                base: 0,
                ret: 0,
                closure,
                label: self.cx.labels.join(control, callee.label()),
            }],
            spawned: true,
            ..Task::default()
        };
        Ok((task, label))
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

/// The roots a task holds: its registers, its frames' closures, a pending error, and its
/// outcome while no one has awaited it.
pub(crate) fn task_roots(t: &Task, roots: &mut Vec<Value>, objs: &mut Vec<ObjId>) {
    roots.extend_from_slice(&t.regs);
    roots.extend(t.pending_raise);
    if let Outcome::Value(v) | Outcome::Error(v) = t.outcome {
        roots.push(v);
    }
    objs.extend(t.frames.iter().filter_map(|f| f.closure));
}
