//! The register interpreter. A [`Vm`] holds one module, a heap, a label table and several
//! tasks, each with its own frames over one register stack. [`Vm::run`] executes a ready task
//! until it finishes or needs an effect; the interpreter does no I/O (spec/semantics.md,
//! "Effects"): it hands an [`EffectRequest`] to the host and waits for [`Vm::resume`].
//!
//! Between effects, everything but the module is plain data ([`VmState`]): `snapshot` and
//! `restore` move a suspended VM across processes.

mod access;
mod arith;
mod calls;
mod convert;
mod exec;
mod fast;
mod load;
mod types;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::VmError;
use crate::format::{FuncId, Module, VerifiedModule};
use crate::heap::Heap;
use crate::host_value::{HostData, HostError, HostValue};
use crate::label::{Label, LabelInfo, LabelTable};
use crate::value::{StrRef, Value};

pub(crate) use exec::Exec;
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
    /// A task finished with this value.
    Done { task: TaskId, value: HostValue },
}

/// An effect for the host: the native's name (from the natives table) and its arguments, each
/// with its label. `io.print` receives one string: the text of the value to print.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectRequest {
    pub task: TaskId,
    pub native: String,
    pub args: Vec<HostValue>,
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
    /// The label of the function value called, joined into the result.
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
    Done,
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
}

/// A virtual machine running one module.
pub struct Vm {
    module: Arc<Module>,
    natives: Vec<NativeSlot>,
    /// `load::canonical_strings` and `load::canonical_shapes` of the module.
    canon: Vec<u32>,
    shapes: Vec<Box<[u32]>>,
    limits: Limits,
    st: VmState,
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
        Vm::with_state(module, limits, st)
    }

    fn with_state(module: &VerifiedModule, limits: Limits, mut st: VmState) -> Result<Vm, VmError> {
        let module = module.arc().clone();
        let natives = load::resolve_natives(&module)?;
        let canon = load::canonical_strings(&module);
        let shapes = load::canonical_shapes(&module, &canon);
        st.heap.set_limit(limits.max_heap_bytes);
        Ok(Vm {
            module,
            natives,
            canon,
            shapes,
            limits,
            st,
        })
    }

    /// A VM resuming a [`VmState`] taken from a VM of the same module.
    pub fn restore(module: &VerifiedModule, limits: Limits, state: VmState) -> Result<Vm, VmError> {
        let vm = Vm::with_state(module, limits, state)?;
        load::check_state(&vm.module, &vm.st)?;
        Ok(vm)
    }

    /// A copy of the VM's state (everything but the module).
    pub fn snapshot(&self) -> VmState {
        self.st.clone()
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

    /// Runs the first ready task (lowest id) until it finishes or yields an effect.
    pub fn run(&mut self) -> Result<Step, VmError> {
        let idx = self
            .st
            .tasks
            .iter()
            .position(|t| t.status == Status::Ready)
            .ok_or(VmError::Idle)?;
        let mut task = std::mem::take(&mut self.st.tasks[idx]);
        task.status = Status::Done; // the placeholder left behind must never be picked
        let id = TaskId(idx as u32);
        let result = {
            let mut ex = Exec::new(
                &self.module,
                &self.natives,
                &self.canon,
                &self.shapes,
                &self.limits,
                &mut self.st,
            );
            ex.run(&mut task)
        };
        let (status, step) = match result {
            Ok(exec::Exit::Done(value)) => (Status::Done, Ok(Step::Done { task: id, value })),
            Ok(exec::Exit::Effect { dst, native, args }) => {
                let request = EffectRequest {
                    task: id,
                    native: native.to_string(),
                    args,
                };
                (
                    Status::Waiting {
                        dst,
                        request: request.clone(),
                    },
                    Ok(Step::Effect(request)),
                )
            }
            Err(e) => (Status::Done, Err(e)),
        };
        task.status = status;
        if let Status::Done = task.status {
            task.regs = Vec::new();
            task.frames = Vec::new();
            task.handlers = Vec::new();
        }
        self.st.tasks[idx] = task;
        step
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
        Ok(())
    }
}
