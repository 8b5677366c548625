//! The register interpreter. A [`Vm`] holds one module, a heap, a label table and several
//! tasks, each with its own frames over one register stack. [`Vm::run`] executes ready tasks,
//! lowest id first, until one needs an effect, a task the host started finishes, or none is
//! ready; the interpreter does no I/O (spec/semantics.md, "Effects" and "Tasks"): it hands an
//! [`EffectRequest`] to the host and waits for [`Vm::resume`]. Tasks the program spawns keep
//! their outcome until an `Await` takes it.
//!
//! Between effects, everything but the module is plain data ([`VmState`]): `snapshot` and
//! `restore` move a suspended VM across processes.

mod access;
mod arith;
mod calls;
mod convert;
mod exec;
mod fast;
mod jit_ops;
mod load;
mod relabel;
mod types;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::VmError;
use crate::format::{FuncId, Module, VerifiedModule};
use crate::heap::Heap;
use crate::host_value::{HostData, HostError, HostValue};
use crate::label::{Label, LabelEvent, LabelInfo, LabelTable};
use crate::value::{StrRef, Value};

pub(crate) use exec::Exec;
pub(crate) use jit_ops::jit_native;
pub(crate) use load::NativeSlot;

/// Budgets that stop a runaway program with a typed, non-catchable error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Instructions a run may execute (every instruction costs one); `None` = unlimited.
    pub fuel: Option<u64>,
    /// Frames a task may have at once.
    pub max_depth: usize,
    /// Live heap bytes (approximate) after a collection.
    pub max_heap_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: None,
            max_depth: 10_000,
            max_heap_bytes: 1 << 30,
        }
    }
}

/// A task of a VM: one thread of execution with its own frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u32);

/// What [`Vm::run`] stopped at.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A task needs the host to perform an effect, then [`Vm::resume`].
    Effect(EffectRequest),
    /// A task the host started finished with this value.
    Done { task: TaskId, value: HostValue },
    /// No task is ready: each waits for an effect ([`Vm::in_flight`]), for another task, or is
    /// done. The host resumes an effect and runs again; with none in flight, [`Vm::deadlock`]
    /// tells a stuck program from a finished one.
    Idle,
}

/// An effect for the host: the native's name (from the natives table) and its arguments, each
/// with its label. `io.print` receives one string: the text of the value to print.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectRequest {
    pub task: TaskId,
    pub native: String,
    pub args: Vec<HostValue>,
    /// The control (pc) label of the frame that asked: the join of every labelled value its
    /// control flow depended on (spec/semantics.md, "Control labels"). With strict flow it is
    /// also joined into every node of every argument.
    #[serde(default, skip_serializing_if = "LabelInfo::is_public")]
    pub control: LabelInfo,
}

/// One call frame: a window `base..base+nregs` of its task's register stack.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Frame {
    pub func: FuncId,
    /// The next instruction to run (while running, kept in a local and saved on exit).
    pub pc: u32,
    pub base: u32,
    /// The caller's register that receives the return value.
    pub ret: u16,
    /// The running closure, for `UpvalGet` and friends.
    pub closure: Option<crate::value::ObjId>,
    /// The frame's control (pc) label: the caller's when the call began, joined with the
    /// label of the function value called, then raised (never lowered) by every branch on a
    /// labelled value. Joined into the value the frame returns.
    pub label: Label,
}

/// A `try` region: an error raised while `frames.len() >= depth` lands in register `err` of
/// frame `depth - 1`, which continues at `target`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Handler {
    pub depth: u32,
    pub err: u16,
    pub target: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) enum Status {
    #[default]
    Ready,
    /// Suspended at an `Effect`; the result goes to register `dst` of the top frame.
    Waiting {
        dst: u16,
        request: EffectRequest,
    },
    /// Suspended at an `Await` of task `task`; its value goes to register `dst` of the top
    /// frame with the handle's `label` joined in (or its error is raised).
    Awaiting {
        dst: u16,
        task: u32,
        label: Label,
    },
    Done,
}

/// What became of a spawned task, kept until an `Await` takes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// Not finished (or started by the host, whose outcome goes to the host).
    #[default]
    Pending,
    /// Returned this value.
    Value(Value),
    /// Ended with this uncaught error value.
    Error(Value),
    /// Finished and awaited: the outcome was handed over.
    Taken,
}

/// A task's execution state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Task {
    /// The register stack; its length is always the top frame's `base + nregs`.
    pub regs: Vec<Value>,
    pub frames: Vec<Frame>,
    pub handlers: Vec<Handler>,
    pub status: Status,
    /// An error to raise as soon as the task runs again (a failed effect).
    pub pending_raise: Option<Value>,
    /// Started by `Spawn` (its outcome is kept for `Await`), not by the host.
    #[serde(default)]
    pub spawned: bool,
    #[serde(default)]
    pub outcome: Outcome,
    /// The tasks suspended at an `Await` of this one.
    #[serde(default)]
    pub waiters: Vec<u32>,
}

/// Everything a VM holds except its module: plain data, serialisable as is.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VmState {
    pub(crate) heap: Heap,
    pub(crate) labels: LabelTable,
    pub(crate) tasks: Vec<Task>,
    /// String constants already placed on the heap, by constant index.
    pub(crate) consts: Vec<Option<StrRef>>,
    /// Instructions executed so far (the fuel used).
    pub(crate) executed: u64,
    /// Label lowerings not yet taken by the host ([`Vm::take_label_events`]).
    #[serde(default)]
    pub(crate) label_events: Vec<LabelEvent>,
}

/// A virtual machine running one module.
pub struct Vm {
    module: Arc<Module>,
    linked: Arc<load::Linked>,
    limits: Limits,
    st: VmState,
    /// Ids of the tasks whose status is `Ready`, derived from the state.
    ready: BTreeSet<u32>,
    /// The number of tasks `Waiting` for an effect and `Awaiting` a task, derived from the
    /// state, so that hosts can ask after every idle step at no cost.
    waiting: usize,
    awaiting: usize,
    /// The JIT tier (vm/src/jit/): derived from the module, not part of the state.
    jit: Option<Box<crate::jit::Jit>>,
    jit_mode: crate::jit::JitMode,
    /// Strict flow: every effect argument is labelled with the control label too.
    strict_flow: bool,
}

impl Vm {
    /// A VM for `module`. Only verified modules run: the verifier's rules (spec/bytecode.md)
    /// are what the interpreter relies on to index registers, constants, functions and code
    /// without failing.
    pub fn new(module: &VerifiedModule, limits: Limits) -> Result<Vm, VmError> {
        let st = VmState {
            consts: vec![None; module.constants.len()],
            ..VmState::default()
        };
        let linked = Arc::new(load::link(module)?);
        Ok(Vm::with_state(module.arc().clone(), linked, limits, st))
    }

    /// A new VM of the same module, limits and JIT mode, with no tasks: what `new` would give,
    /// without deriving the module's tables again (for hosts that start many runs of one
    /// program).
    pub fn fresh(&self) -> Vm {
        let st = VmState {
            consts: vec![None; self.module.constants.len()],
            ..VmState::default()
        };
        let mut vm = Vm::with_state(
            self.module.clone(),
            self.linked.clone(),
            self.limits.clone(),
            st,
        );
        vm.set_jit(self.jit_mode);
        vm.strict_flow = self.strict_flow;
        vm
    }

    fn with_state(
        module: Arc<Module>,
        linked: Arc<load::Linked>,
        limits: Limits,
        mut st: VmState,
    ) -> Vm {
        st.heap.set_limit(limits.max_heap_bytes);
        let ready = st
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.status == Status::Ready)
            .map(|(i, _)| i as u32)
            .collect();
        let count = |f: fn(&Status) -> bool| st.tasks.iter().filter(|t| f(&t.status)).count();
        let waiting = count(|s| matches!(s, Status::Waiting { .. }));
        let awaiting = count(|s| matches!(s, Status::Awaiting { .. }));
        let jit_mode = crate::jit::JitMode::default();
        let jit = crate::jit::Jit::new(&module, jit_mode).map(Box::new);
        Vm {
            module,
            linked,
            limits,
            st,
            ready,
            waiting,
            awaiting,
            jit,
            jit_mode,
            strict_flow: false,
        }
    }

    /// A VM resuming a [`VmState`] taken from a VM of the same module.
    pub fn restore(module: &VerifiedModule, limits: Limits, state: VmState) -> Result<Vm, VmError> {
        let linked = Arc::new(load::link(module)?);
        let vm = Vm::with_state(module.arc().clone(), linked, limits, state);
        load::check_state(&vm.module, &vm.st)?;
        Ok(vm)
    }

    /// A copy of the VM's state (everything but the module).
    pub fn snapshot(&self) -> VmState {
        self.st.clone()
    }

    /// Chooses when the JIT compiles ([`JitMode::default`] unless set). What the program
    /// does is the same in every mode; only its speed differs.
    ///
    /// [`JitMode::default`]: crate::JitMode
    pub fn set_jit(&mut self, mode: crate::jit::JitMode) {
        self.jit_mode = mode;
        self.jit = crate::jit::Jit::new(&self.module, mode).map(Box::new);
    }

    /// What the JIT compiled or refused so far, in order, with compile times.
    pub fn jit_events(&self) -> &[crate::jit::JitEvent] {
        self.jit.as_deref().map_or(&[], |j| j.events())
    }

    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Approximate live heap bytes (exact after a collection).
    pub fn heap_bytes(&self) -> usize {
        self.st.heap.bytes()
    }

    /// Heap objects allocated and not yet collected.
    pub fn heap_objects(&self) -> usize {
        self.st.heap.objects()
    }

    /// Runs a full collection now, with every task's registers as roots.
    pub fn collect_garbage(&mut self) -> usize {
        let mut roots: Vec<Value> = Vec::new();
        let mut objs = Vec::new();
        for t in &self.st.tasks {
            exec::task_roots(t, &mut roots, &mut objs);
        }
        roots.extend(
            self.st
                .consts
                .iter()
                .flatten()
                .map(|s| Value::new(crate::value::Kind::Str(*s))),
        );
        self.st.heap.collect(roots, &objs)
    }

    /// Instructions executed so far.
    pub fn instructions(&self) -> u64 {
        self.st.executed
    }

    /// The meaning of a label of this VM.
    pub fn label_info(&self, l: Label) -> LabelInfo {
        self.st.labels.info(l)
    }

    /// Turns strict flow on or off (`--strict-flow`): when on, every effect's arguments are
    /// labelled, node by node, with the control label of the frame that asks as well as their
    /// own; when off the control label is only reported in [`EffectRequest::control`].
    pub fn set_strict_flow(&mut self, on: bool) {
        self.strict_flow = on;
    }

    pub fn strict_flow(&self) -> bool {
        self.strict_flow
    }

    /// The label lowerings (`Declassify`, `Endorse`, `EndorseNarrow`) run since the last call,
    /// in the order they ran, for the host to journal.
    pub fn take_label_events(&mut self) -> Vec<LabelEvent> {
        std::mem::take(&mut self.st.label_events)
    }

    /// Starts a task calling function `func` with `args`; it runs at the next [`Vm::run`].
    pub fn start(&mut self, func: FuncId, args: Vec<HostValue>) -> Result<TaskId, VmError> {
        let f = self
            .module
            .functions
            .get(func as usize)
            .ok_or_else(|| VmError::InvalidModule(format!("no function {func}")))?;
        if f.params.len() != args.len() {
            return Err(VmError::InvalidModule(format!(
                "function {} takes {} arguments, {} given",
                self.module.str(f.name),
                f.params.len(),
                args.len()
            )));
        }
        let mut regs = vec![Value::NULL; f.nregs as usize];
        for (slot, a) in regs.iter_mut().zip(&args) {
            *slot = convert::from_host(&mut self.st.heap, &mut self.st.labels, a);
        }
        let task = Task {
            regs,
            frames: vec![Frame {
                func,
                pc: 0,
                base: 0,
                ret: 0,
                closure: None,
                label: Label::PUBLIC,
            }],
            ..Task::default()
        };
        let id = TaskId(self.st.tasks.len() as u32);
        self.st.tasks.push(task);
        self.ready.insert(id.0);
        Ok(id)
    }

    /// Starts the module's `main`: with the command-line arguments as a list of strings if it
    /// takes a parameter, with nothing if it takes none.
    pub fn start_main(&mut self, args: Vec<String>) -> Result<TaskId, VmError> {
        let entry = self
            .module
            .entry
            .ok_or_else(|| VmError::InvalidModule("the module has no main function".into()))?;
        let nparams = self
            .module
            .functions
            .get(entry as usize)
            .map_or(0, |f| f.params.len());
        let args = match nparams {
            0 => vec![],
            _ => vec![HostValue::new(HostData::List(
                args.into_iter().map(HostValue::str).collect(),
            ))],
        };
        self.start(entry, args)
    }

    /// Runs ready tasks, always the lowest id first, until one yields an effect, a task the
    /// host started finishes, or no task is ready ([`Step::Idle`]). A spawned task that finishes
    /// or suspends at an `Await` does not stop the run. A limit error (fuel, depth, heap) in any
    /// task ends the run, as does an uncaught error in a task the host started.
    pub fn run(&mut self) -> Result<Step, VmError> {
        while let Some(&idx) = self.ready.first() {
            if let Some(step) = self.run_task(idx)? {
                return Ok(step);
            }
        }
        Ok(Step::Idle)
    }

    /// Runs ready task `idx` until it stops; a step for the host, if the stop is one.
    fn run_task(&mut self, idx: u32) -> Result<Option<Step>, VmError> {
        self.ready.remove(&idx);
        let slot = self
            .st
            .tasks
            .get_mut(idx as usize)
            .ok_or(VmError::NoSuchTask(idx))?;
        let mut task = std::mem::take(slot);
        slot.status = Status::Done; // the placeholder left behind must never be picked
        let id = TaskId(idx);
        let (result, uncaught) = {
            let mut ex = Exec::new(
                &self.module,
                &self.linked.natives,
                &self.linked.canon,
                &self.linked.shapes,
                &self.limits,
                &mut self.st,
            );
            ex.jit = self.jit.as_deref_mut();
            ex.task = idx;
            ex.strict_flow = self.strict_flow;
            let r = ex.run(&mut task);
            (r, ex.uncaught)
        };
        let mut step = None;
        let mut finished = None;
        let mut failure = None;
        match result {
            Ok(exec::Exit::Done(value)) => {
                task.status = Status::Done;
                if task.spawned {
                    finished = Some(Outcome::Value(value));
                } else {
                    let cx = crate::natives::Ctx {
                        heap: &mut self.st.heap,
                        labels: &mut self.st.labels,
                        module: &self.module,
                    };
                    match convert::to_host(&cx, value) {
                        Ok(value) => step = Some(Step::Done { task: id, value }),
                        Err(_) => {
                            failure = Some(VmError::Uncaught {
                                kind: crate::error::kind::VALUE.into(),
                                message:
                                    "the final value cannot leave the VM (it contains a cycle)"
                                        .into(),
                                trace: Default::default(),
                            })
                        }
                    }
                }
            }
            Ok(exec::Exit::Effect {
                dst,
                native,
                args,
                control,
            }) => {
                let request = EffectRequest {
                    task: id,
                    native: native.to_string(),
                    args,
                    control,
                };
                task.status = Status::Waiting {
                    dst,
                    request: request.clone(),
                };
                self.waiting += 1;
                step = Some(Step::Effect(request));
            }
            Ok(exec::Exit::Spawn(new)) => {
                task.status = Status::Ready;
                self.ready.insert(idx);
                let new_id = self.st.tasks.len() as u32;
                self.st.tasks.push(*new);
                self.ready.insert(new_id);
            }
            Ok(exec::Exit::Await {
                dst,
                task: target,
                label,
            }) => self.await_task(idx, &mut task, dst, target, label),
            Err(VmError::Uncaught { .. }) if task.spawned && uncaught.is_some() => {
                task.status = Status::Done;
                finished = uncaught.map(Outcome::Error);
            }
            Err(e) => {
                task.status = Status::Done;
                failure = Some(e);
            }
        }
        if let Status::Done = task.status {
            task.regs = Vec::new();
            task.frames = Vec::new();
            task.handlers = Vec::new();
        }
        if let Some(slot) = self.st.tasks.get_mut(idx as usize) {
            *slot = task;
        }
        if let Some(outcome) = finished {
            self.complete(idx, outcome);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(step),
        }
    }

    /// `Await` of task `target` by task `idx` (taken out of the table as `task`): takes the
    /// outcome if there is one, else suspends `task` until `target` finishes. Errors are raised
    /// in `task` when it runs again.
    fn await_task(&mut self, idx: u32, task: &mut Task, dst: u16, target: u32, label: Label) {
        task.status = Status::Ready;
        let problem = if target == idx {
            Some("a task cannot await itself".to_string())
        } else {
            match self.st.tasks.get(target as usize) {
                None => Some(format!("there is no task {target}")),
                Some(t) if !t.spawned => Some(format!(
                    "task {target} was started by the host; only spawned tasks can be awaited"
                )),
                Some(t) => match t.outcome {
                    Outcome::Taken => Some(format!("task {target} has already been awaited")),
                    Outcome::Value(_) | Outcome::Error(_) => None,
                    Outcome::Pending => self.await_cycle(idx, target),
                },
            }
        };
        if let Some(message) = problem {
            let e = convert::new_error(
                &mut self.st.heap,
                crate::error::kind::VALUE,
                message,
                Value::NULL,
            );
            task.pending_raise = Some(e);
            self.ready.insert(idx);
            return;
        }
        let Some(t) = self.st.tasks.get_mut(target as usize) else {
            return;
        };
        match std::mem::replace(&mut t.outcome, Outcome::Taken) {
            Outcome::Value(v) => {
                let v = v.labelled(self.st.labels.join(v.label(), label));
                let base = task.frames.last().map_or(0, |f| f.base as usize);
                if let Some(r) = task.regs.get_mut(base + dst as usize) {
                    *r = v;
                }
                self.ready.insert(idx);
            }
            Outcome::Error(e) => {
                task.pending_raise = Some(e.labelled(self.st.labels.join(e.label(), label)));
                self.ready.insert(idx);
            }
            Outcome::Pending | Outcome::Taken => {
                t.outcome = Outcome::Pending;
                t.waiters.push(idx);
                task.status = Status::Awaiting {
                    dst,
                    task: target,
                    label,
                };
                self.awaiting += 1;
            }
        }
    }

    /// Why task `idx` may not wait for `target`: `target` waits, directly or through other
    /// tasks, for `idx`, so neither could ever finish.
    fn await_cycle(&self, idx: u32, target: u32) -> Option<String> {
        let mut at = target;
        // Each task awaits at most one other, so the chain has at most one step per task.
        for _ in 0..self.st.tasks.len() {
            match self.st.tasks.get(at as usize).map(|t| &t.status) {
                Some(Status::Awaiting { task, .. }) => {
                    if *task == idx {
                        return Some(format!(
                            "awaiting task {target} would deadlock: it waits for this task"
                        ));
                    }
                    at = *task;
                }
                _ => return None,
            }
        }
        None
    }

    /// Spawned task `idx` finished: hands its outcome to the tasks awaiting it, or keeps it.
    fn complete(&mut self, idx: u32, outcome: Outcome) {
        let Some(t) = self.st.tasks.get_mut(idx as usize) else {
            return;
        };
        let waiters = std::mem::take(&mut t.waiters);
        if waiters.is_empty() {
            t.outcome = outcome;
            return;
        }
        t.outcome = Outcome::Taken;
        for w in waiters {
            let Some(wt) = self.st.tasks.get_mut(w as usize) else {
                continue;
            };
            let Status::Awaiting { dst, label, .. } = wt.status else {
                continue;
            };
            match outcome {
                Outcome::Value(v) => {
                    let v = v.labelled(self.st.labels.join(v.label(), label));
                    let base = wt.frames.last().map_or(0, |f| f.base as usize);
                    if let Some(r) = wt.regs.get_mut(base + dst as usize) {
                        *r = v;
                    }
                }
                Outcome::Error(e) => {
                    wt.pending_raise = Some(e.labelled(self.st.labels.join(e.label(), label)));
                }
                Outcome::Pending | Outcome::Taken => {}
            }
            wt.status = Status::Ready;
            self.awaiting = self.awaiting.saturating_sub(1);
            self.ready.insert(w);
        }
    }

    /// The number of tasks waiting for the host to finish an effect.
    pub fn in_flight(&self) -> usize {
        self.waiting
    }

    /// The number of tasks suspended at an `Await`.
    pub fn awaiting(&self) -> usize {
        self.awaiting
    }

    /// Whether some task is ready to run.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// After [`Step::Idle`]: [`VmError::Deadlock`] when tasks wait at `Await` while no task is
    /// ready and no effect is in flight (nothing can wake them); `None` otherwise (effects to
    /// finish, or nothing left to run).
    pub fn deadlock(&self) -> Option<VmError> {
        if self.has_ready() || self.in_flight() > 0 {
            return None;
        }
        match self.awaiting() {
            0 => None,
            awaiting => Some(VmError::Deadlock { awaiting }),
        }
    }

    /// The effect task `task` waits for, if any (e.g. after a restore).
    pub fn pending(&self, task: TaskId) -> Option<&EffectRequest> {
        match &self.st.tasks.get(task.0 as usize)?.status {
            Status::Waiting { request, .. } => Some(request),
            _ => None,
        }
    }

    /// Gives a waiting task the result of its effect; the task is ready to run again. A
    /// [`HostError`] is raised in the task as a catchable error of its kind.
    pub fn resume(
        &mut self,
        task: TaskId,
        result: Result<HostValue, HostError>,
    ) -> Result<(), VmError> {
        let t = self
            .st
            .tasks
            .get_mut(task.0 as usize)
            .ok_or(VmError::NoSuchTask(task.0))?;
        let Status::Waiting { dst, .. } = t.status else {
            return Err(VmError::NotWaiting(task.0));
        };
        match result {
            Ok(v) => {
                let value = convert::from_host(&mut self.st.heap, &mut self.st.labels, &v);
                let base = t.frames.last().map_or(0, |f| f.base as usize);
                let slot = t
                    .regs
                    .get_mut(base + dst as usize)
                    .ok_or_else(|| VmError::Corrupt("effect result register".into()))?;
                *slot = value;
            }
            Err(e) => {
                let label = self.st.labels.intern(&e.label);
                let payload = match &e.payload {
                    Some(p) => convert::from_host(&mut self.st.heap, &mut self.st.labels, p),
                    None => Value::NULL,
                };
                let v = convert::host_error(&mut self.st.heap, &e.kind, e.message, payload, label);
                t.pending_raise = Some(v);
            }
        }
        t.status = Status::Ready;
        self.waiting = self.waiting.saturating_sub(1);
        self.ready.insert(task.0);
        Ok(())
    }
}
