//! Calls, returns, natives, effects and raising: everything that moves between frames or
//! leaves the interpreter. Raising unwinds to the innermost `try` handler of the task, popping
//! frames; with none, the error leaves the task as [`VmError::Uncaught`] with a stack trace.

use crate::error::{kind, Fatal, Raise, Trace, TraceFrame, VmError, R};
use crate::format::{Module, RegRange};
use crate::host_value::HostValue;
use crate::label::Label;
use crate::value::{Kind, ObjId, Value};

use super::convert;
use super::exec::Exec;
use super::{Frame, NativeSlot, Task};

/// Traces longer than this keep their innermost and outermost frames only.
const TRACE_HEAD: usize = 32;
const TRACE_TAIL: usize = 8;

/// The TypeError for a call of function `func` with `given` arguments.
pub(super) fn arity_error(module: &Module, func: u32, given: u16) -> Raise {
    let (name, want) = module
        .functions
        .get(func as usize)
        .map_or(("?", 0), |f| (module.str(f.name), f.params.len()));
    Raise::rt(
        kind::TYPE,
        format!(
            "{name} takes {want} argument{} but {given} {} given",
            if want == 1 { "" } else { "s" },
            if given == 1 { "was" } else { "were" },
        ),
    )
}

impl Exec<'_> {
    /// Pushes a frame for `func` with the caller's `args` in its first registers.
    pub(super) fn call(
        &mut self,
        t: &mut Task,
        func: u32,
        closure: Option<ObjId>,
        args: RegRange,
        dst: u16,
        label: Label,
    ) -> R<()> {
        let module = self.cx.module;
        let f = module
            .functions
            .get(func as usize)
            .ok_or_else(|| Raise::Fatal(Fatal::Corrupt(format!("call of function {func}"))))?;
        if f.params.len() != args.count as usize {
            return Err(arity_error(module, func, args.count));
        }
        if t.frames.len() >= self.limits.max_depth {
            return Err(Raise::Fatal(Fatal::Depth));
        }
        if t.regs.len() + f.nregs as usize > self.max_stack_regs {
            return Err(Raise::Fatal(Fatal::Heap));
        }
        let caller_base = t.frames.last().map_or(0, |f| f.base as usize);
        let base = t.regs.len();
        t.regs.resize(base + f.nregs as usize, Value::NULL);
        let src = caller_base + args.start as usize;
        // In range: the arguments are registers of the caller's window (verifier rule V9).
        t.regs.copy_within(src..src + args.count as usize, base);
        t.frames.push(Frame {
            func,
            pc: 0,
            base: base as u32,
            ret: dst,
            closure,
            label,
        });
        Ok(())
    }

    /// Calls a function value. Which code runs depends on the value, so a labelled callee
    /// raises the caller's control label, and the callee starts at the raised one.
    pub(super) fn call_value(
        &mut self,
        t: &mut Task,
        callee: Value,
        args: RegRange,
        dst: u16,
    ) -> R<()> {
        let mut control = t.frames.last().map_or(Label::PUBLIC, |f| f.label);
        if !callee.label().is_public() {
            control = self.cx.labels.join(control, callee.label());
            if let Some(fr) = t.frames.last_mut() {
                fr.label = control;
            }
        }
        match callee.kind() {
            Kind::Func(f) => self.call(t, f, None, args, dst, control),
            Kind::Closure(o) => {
                let f = self.cx.heap.closure(o)?.func;
                self.call(t, f, Some(o), args, dst, control)
            }
            _ => Err(Raise::rt(
                kind::TYPE,
                format!("cannot call a {}", callee.type_name()),
            )),
        }
    }

    /// Pops the top frame, handing `v` (joined with the frame's control label) to the caller.
    /// Returns the task's final value when the last frame returns.
    pub(super) fn ret(&mut self, t: &mut Task, v: Value) -> Option<Value> {
        let fr = t.frames.pop()?;
        t.regs.truncate(fr.base as usize);
        let depth = t.frames.len() as u32;
        while t.handlers.last().is_some_and(|h| h.depth > depth) {
            t.handlers.pop();
        }
        let v = v.labelled(self.cx.labels.join(v.label(), fr.label));
        self.returned_under(t, fr.label);
        match t.frames.last() {
            None => Some(v),
            Some(caller) => {
                if let Some(slot) = t.regs.get_mut(caller.base as usize + fr.ret as usize) {
                    *slot = v;
                }
                None
            }
        }
    }

    /// A frame with control label `control` returned normally to the top frame. While a `try`
    /// region is open, returning instead of raising is itself a branch on what the callee's
    /// control depended on, so the caller's control label takes it in.
    #[inline]
    pub(super) fn returned_under(&mut self, t: &mut Task, control: Label) {
        if control.is_public() || t.handlers.is_empty() {
            return;
        }
        if let Some(caller) = t.frames.last_mut() {
            caller.label = self.cx.labels.join(caller.label, control);
        }
    }

    /// The error `throw v` raises: `v` itself if it is an error, else an error of kind
    /// "Error" whose message is the text of `v` and whose payload is `v`.
    pub(super) fn throw(&mut self, v: Value) -> Raise {
        if let Kind::Error(_) = v.kind() {
            return Raise::Value(v);
        }
        match self.cx.text(v) {
            Ok(message) => {
                let e = convert::new_error(self.cx.heap, "Error", message, v);
                Raise::Value(e.labelled(v.label()))
            }
            Err(r) => r,
        }
    }

    /// Unwinds task `t` to its innermost handler, or fails with the error and a trace. That
    /// the handler runs depends on the control label of the frame that raised and on the
    /// error, so the handler's frame takes both into its control label.
    pub(super) fn raise(&mut self, t: &mut Task, e: Raise) -> Result<(), VmError> {
        let v = match e {
            Raise::Fatal(f) => return Err(self.fatal(t, f)),
            Raise::Value(v) => v,
            Raise::Rt { kind, message } => {
                convert::new_error(self.cx.heap, kind, message, Value::NULL)
            }
        };
        let raised_under = t.frames.last().map_or(Label::PUBLIC, |f| f.label);
        let control = self.cx.labels.join(raised_under, v.label());
        let v = v.labelled(control);
        while let Some(h) = t.handlers.pop() {
            if h.depth as usize > t.frames.len() || h.depth == 0 {
                continue;
            }
            while t.frames.len() > h.depth as usize {
                if let Some(fr) = t.frames.pop() {
                    t.regs.truncate(fr.base as usize);
                }
            }
            let Some(fr) = t.frames.last_mut() else { break };
            fr.pc = h.target;
            fr.label = self.cx.labels.join(fr.label, control);
            let slot = fr.base as usize + h.err as usize;
            if let Some(r) = t.regs.get_mut(slot) {
                *r = v;
            }
            return Ok(());
        }
        // An uncaught error of a spawned task reaches its awaiter with the control label it
        // was raised under.
        self.uncaught = Some(v);
        let (kind, message) = match v.kind() {
            Kind::Error(o) => match self.cx.heap.error(o) {
                Ok(e) => (e.kind.clone(), e.message.clone()),
                Err(d) => return Err(VmError::Corrupt(d.to_string())),
            },
            _ => ("Error".to_string(), self.cx.text(v).unwrap_or_default()),
        };
        Err(VmError::Uncaught {
            kind,
            message,
            trace: self.trace(t),
        })
    }

    fn fatal(&self, t: &Task, f: Fatal) -> VmError {
        let trace = self.trace(t);
        match f {
            Fatal::Fuel => VmError::FuelExhausted {
                limit: self.limits.fuel.unwrap_or(u64::MAX),
                trace,
            },
            Fatal::Depth => VmError::StackOverflow {
                limit: self.limits.max_depth,
                trace,
            },
            Fatal::Heap => VmError::HeapExhausted {
                limit: self.limits.max_heap_bytes,
                trace,
            },
            Fatal::Corrupt(s) => VmError::Corrupt(s),
        }
    }

    /// The task's stack, innermost first, each frame at the instruction it was running.
    pub(super) fn trace(&self, t: &Task) -> Trace {
        let module = self.cx.module;
        let line = |fr: &Frame| {
            let pos = module.position(fr.func, fr.pc.saturating_sub(1));
            TraceFrame {
                function: module.func_name(fr.func).to_string(),
                file: pos.and_then(|p| p.0).map(str::to_string),
                line: pos.map_or(0, |p| p.1),
                col: pos.map_or(0, |p| p.2),
            }
        };
        let n = t.frames.len();
        let mut out: Vec<TraceFrame> = Vec::new();
        if n <= TRACE_HEAD + TRACE_TAIL {
            out.extend(t.frames.iter().rev().map(line));
        } else {
            out.extend(t.frames.iter().rev().take(TRACE_HEAD).map(line));
            out.push(TraceFrame {
                function: format!("... {} more frames", n - TRACE_HEAD - TRACE_TAIL),
                file: None,
                line: 0,
                col: 0,
            });
            out.extend(t.frames.iter().take(TRACE_TAIL).rev().map(line));
        }
        Trace(out)
    }

    /// Calls pure native `native` of the module on registers `args`.
    pub(super) fn call_native(&mut self, regs: &[Value], native: u32, args: RegRange) -> R<Value> {
        let Some(NativeSlot::Pure(f)) = self.natives.get(native as usize) else {
            return Err(Raise::Fatal(Fatal::Corrupt(format!("native {native}"))));
        };
        let start = args.start as usize;
        let a = &regs[start..start + args.count as usize];
        let mut label = Label::PUBLIC;
        for v in a {
            label = self.cx.labels.join(label, v.label());
        }
        let v = f(&mut self.cx, a)?;
        Ok(v.labelled(self.cx.labels.join(v.label(), label)))
    }

    /// The request for effect native `native` on registers `args`. `io.print` gets the text.
    pub(super) fn effect(
        &mut self,
        regs: &[Value],
        native: u32,
        args: RegRange,
    ) -> R<(&'static str, Vec<HostValue>)> {
        let Some(NativeSlot::Effect(info)) = self.natives.get(native as usize) else {
            return Err(Raise::Fatal(Fatal::Corrupt(format!("effect {native}"))));
        };
        let start = args.start as usize;
        let a = &regs[start..start + args.count as usize];
        let mut out = Vec::with_capacity(a.len());
        for v in a {
            let hv = if info.name == "io.print" {
                let label = self.cx.labels.info(v.label());
                HostValue::str(self.cx.text(*v)?).labelled(label)
            } else {
                convert::to_host(&self.cx, *v)?
            };
            out.push(hv);
        }
        Ok((info.name, out))
    }
}
