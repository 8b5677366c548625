//! The tiering state of one VM: call counters, the compiled specialisations of each function,
//! and the entry from the interpreter into compiled code (the only `unsafe` call).

use std::time::Instant;

use super::analyze::{self, Key, Ty};
use super::codegen::Backend;
use super::runtime::{self, JitCtx};
use super::{JitEvent, JitMode, AUTO_THRESHOLD, LOOP_THRESHOLD};
use crate::format::Module;
use crate::label::Label;
use crate::value::{Kind, Value};

/// The entry of a compiled specialisation: `(ctx, argument bits) -> result bits`.
type EntryFn = unsafe extern "C" fn(*mut JitCtx, *const u64) -> u64;
/// A compiled loop region: `(ctx, register bits) -> the pc to resume at`.
type LoopFn = unsafe extern "C" fn(*mut JitCtx, *mut u64) -> u64;

/// Bail-outs of entries into a function before it is left to the interpreter for good.
const MAX_BAILS: u32 = 16;
/// Specialisations per function.
const MAX_SPECS: usize = 4;

#[derive(Clone, Copy)]
enum Spec {
    Ready { entry: EntryFn, ret: Ty },
    Refused,
}

#[derive(Default)]
struct FnState {
    calls: u32,
    bails: u32,
    /// Never compiled: an instruction the JIT does not handle, or too many bail-outs.
    never: bool,
    /// By packed argument types (two bits each).
    specs: Vec<(u32, Spec)>,
    /// The loops of the function that have come round, by header.
    loops: Vec<LoopState>,
}

/// A compiled loop region: its entry, and the registers it holds at each exit (by pc).
struct LoopCode {
    entry: LoopFn,
    /// The register types the region was compiled for (`Ext`: left in the frame).
    key: Vec<Ty>,
    /// For each pc, the registers the region writes back when it leaves there.
    exits: Vec<Vec<(u16, Ty)>>,
}

/// The tiering state of one loop: back-edges taken, and the regions compiled for it.
struct LoopState {
    header: u32,
    /// Entered at a call (the function's first instruction), not at a back-edge.
    at_call: bool,
    edges: u32,
    /// The registers live at the header (computed when the loop first gets hot).
    live: Vec<bool>,
    regions: Vec<LoopCode>,
}

/// The JIT of one VM.
pub(crate) struct Jit {
    /// Where each function's instructions start in `refused`.
    bases: Vec<usize>,
    /// By instruction: a region entered there (a loop header, or a function's first
    /// instruction entered at its call) was refused, so the interpreter need not ask again:
    /// the one check a back-edge of an interpreted loop pays.
    refused: Vec<bool>,
    threshold: u32,
    /// Back-edges of a loop before it is compiled.
    loop_threshold: u32,
    funcs: Vec<FnState>,
    /// Made at the first compile request, so that a VM that never compiles pays nothing.
    backend: Option<Backend>,
    /// Cranelift does not support this host: nothing compiles.
    unsupported: bool,
    events: Vec<JitEvent>,
    /// Register types and bits of a region entry (reused).
    scratch_key: Vec<Ty>,
    scratch_bits: Vec<u64>,
}

// SAFETY: the JIT's code memory and Cranelift state are owned by this value alone; no pointer
// into them is shared outside it (entries are stored in `funcs` and called only through
// `&mut self`), and nothing in them is tied to the thread that made them. Moving the whole
// value to another thread is therefore sound; it is not `Sync`.
unsafe impl Send for Jit {}

/// The packed type of a public int, float or bool argument, else `None`.
#[inline(always)]
fn arg_code(v: &Value) -> Option<(u32, u64)> {
    if v.label() != Label::PUBLIC {
        return None;
    }
    match v.kind() {
        Kind::Int(i) => Some((1, i as u64)),
        Kind::Float(f) => Some((2, f.to_bits())),
        Kind::Bool(b) => Some((3, b as u64)),
        _ => None,
    }
}

/// The state of the region of `func` at `header` (`at_call`: entered at a call).
fn loop_state(
    funcs: &mut [FnState],
    func: u32,
    header: u32,
    at_call: bool,
) -> Option<&mut LoopState> {
    funcs
        .get_mut(func as usize)?
        .loops
        .iter_mut()
        .find(|l| l.header == header && l.at_call == at_call)
}

fn ty_of(code: u32) -> Ty {
    match code {
        1 => Ty::Int,
        2 => Ty::Float,
        _ => Ty::Bool,
    }
}

impl Jit {
    /// A JIT for `module` (`None` for [`JitMode::Off`]). When Cranelift does not support the
    /// host, every compile request is refused and the interpreter runs everything.
    pub fn new(module: &Module, mode: JitMode) -> Option<Jit> {
        let (threshold, loop_threshold) = match mode {
            JitMode::Off => return None,
            JitMode::Auto => (AUTO_THRESHOLD, LOOP_THRESHOLD),
            JitMode::Always => (1, 1),
        };
        let mut funcs = Vec::with_capacity(module.functions.len());
        funcs.resize_with(module.functions.len(), FnState::default);
        let mut bases = Vec::with_capacity(module.functions.len());
        let mut total = 0;
        for f in &module.functions {
            bases.push(total);
            total += f.code.len();
        }
        Some(Jit {
            bases,
            refused: vec![false; total],
            threshold,
            loop_threshold,
            funcs,
            backend: None,
            unsupported: false,
            events: Vec::new(),
            scratch_key: Vec::new(),
            scratch_bits: Vec::new(),
        })
    }

    pub fn events(&self) -> &[JitEvent] {
        &self.events
    }

    /// Runs `func(args)` in compiled code if it can: the interpreter has checked arity and
    /// that a frame may be pushed (`depth` frames, `stack` registers, its callee's window
    /// included). Returns the result with `fuel` charged, or `None` having changed nothing
    /// (the interpreter then runs the call).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn enter(
        &mut self,
        module: &Module,
        func: u32,
        args: &[Value],
        fuel: &mut u64,
        depth: usize,
        stack: usize,
        max_depth: usize,
        max_stack: usize,
    ) -> Option<Value> {
        let st = self.funcs.get_mut(func as usize)?;
        if st.never {
            return None;
        }
        if st.calls == 0 && !analyze::supported_opcodes(module, func) {
            // Decided once, at the first call: effects, heap access, closures, `try`.
            st.never = true;
            return None;
        }
        st.calls = st.calls.saturating_add(1);
        let mut key = 0u32;
        let mut bits = [0u64; analyze::MAX_ARGS];
        for (i, a) in args.iter().enumerate() {
            let (code, b) = arg_code(a)?;
            key |= code << (2 * i);
            *bits.get_mut(i)? = b;
        }
        let spec = match st.specs.iter().find(|(k, _)| *k == key) {
            Some((_, s)) => *s,
            None => {
                if st.calls < self.threshold || st.specs.len() >= MAX_SPECS {
                    return None;
                }
                self.compile(module, func, key, args.len())
            }
        };
        let Spec::Ready { entry, ret } = spec else {
            return None;
        };
        let mut ctx = JitCtx::new(
            *fuel,
            depth,
            stack,
            max_depth,
            max_stack,
            std::ptr::null_mut(),
        );
        // SAFETY: `entry` was made by `Backend::compile` for exactly this specialisation: it
        // reads `args.len()` words from `bits` (which holds `MAX_ARGS`), and reads and writes
        // only `ctx`, which outlives the call. Its code lives in `self.backend`'s memory, which
        // is never freed while `self` lives. The code itself touches no other memory: the
        // analysis admits only register arithmetic, compares, branches and calls of other
        // such functions, and every division is guarded against zero and overflow, so it
        // cannot trap.
        let out = unsafe { entry(&mut ctx, bits.as_ptr()) };
        if ctx.bail != 0 {
            if let Some(st) = self.funcs.get_mut(func as usize) {
                st.bails += 1;
                if st.bails >= MAX_BAILS {
                    st.never = true;
                }
            }
            return None;
        }
        *fuel = ctx.fuel_left(*fuel);
        Some(match ret {
            Ty::Int => Value::int(out as i64),
            Ty::Float => Value::float(f64::from_bits(out)),
            Ty::Bool => Value::bool(out != 0),
            // `Bot`: the function never returns normally, so this is never reached.
            Ty::Null | Ty::Bot | Ty::Ext | Ty::Val | Ty::Top => Value::NULL,
        })
    }

    /// Whether a region of `func` at `header` may still be compiled or entered (cheap: the
    /// interpreter asks before every [`Jit::enter_loop`]).
    #[inline(always)]
    pub fn may_enter(&self, func: u32, header: u32) -> bool {
        let at = self.bases.get(func as usize).map(|b| b + header as usize);
        at.and_then(|i| self.refused.get(i)) == Some(&false)
    }

    /// Marks the regions at `header` refused for good. (A loop whose header is its
    /// function's first instruction shares the flag with the function's call: the first
    /// refusal stops both, a chance missed, never a wrong answer.)
    fn never_enter(&mut self, func: u32, header: u32) {
        let at = self.bases.get(func as usize).map(|b| b + header as usize);
        if let Some(slot) = at.and_then(|i| self.refused.get_mut(i)) {
            *slot = true;
        }
    }

    /// Runs the loop of function `func` at `header` in compiled code if it can, from the
    /// frame's registers `regs`: the interpreter has just taken a back-edge to `header` (and
    /// charged it). Returns the pc at which the interpreter goes on, with `regs` and `fuel` as
    /// the interpreter would have left them there; `None` having changed nothing. `depth` is
    /// the task's frame count and `stack` the end of the frame's window; the control label of
    /// the frame must be public (the interpreter checks). `exec` is the interpreter running
    /// the task, for compiled code to call back into; it must not be used until this returns.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn enter_loop(
        &mut self,
        module: &Module,
        func: u32,
        header: u32,
        at_call: bool,
        regs: &mut [Value],
        fuel: &mut u64,
        depth: usize,
        stack: usize,
        max_depth: usize,
        max_stack: usize,
        exec: *mut u8,
    ) -> Option<usize> {
        let threshold = match at_call {
            true => self.threshold,
            false => self.loop_threshold,
        };
        if !self.may_enter(func, header) {
            return None;
        }
        if loop_state(&mut self.funcs, func, header, at_call).is_none() {
            self.funcs.get_mut(func as usize)?.loops.push(LoopState {
                header,
                at_call,
                edges: 0,
                live: Vec::new(),
                regions: Vec::new(),
            });
        }
        let l = loop_state(&mut self.funcs, func, header, at_call)?;
        l.edges = l.edges.saturating_add(1);
        if l.edges < threshold {
            return None;
        }
        if l.live.is_empty() {
            l.live = analyze::live_at(module, func, header as usize);
        }
        // The types of the frame's registers, as compiled code would hold them; those not
        // live at the header are left in the frame (compiled code writes them before any
        // read, and an exit writes back what it wrote).
        // The words are each register's payload, then its run-time tag (written at an exit
        // for a register of mixed types), then the first word of a whole value.
        let nregs = regs.len();
        self.scratch_key.clear();
        self.scratch_bits.clear();
        self.scratch_bits.resize(3 * nregs, 0);
        for (r, v) in regs.iter().enumerate() {
            let live = l.live.get(r).copied().unwrap_or(true);
            let (head, payload) = v.to_raw();
            let (t, bits) = match (live, v.label() == Label::PUBLIC, v.kind()) {
                (false, _, _) => (Ty::Ext, 0),
                (true, true, Kind::Int(i)) => (Ty::Int, i as u64),
                (true, true, Kind::Float(f)) => (Ty::Float, f.to_bits()),
                (true, true, Kind::Bool(b)) => (Ty::Bool, b as u64),
                (true, true, Kind::Null) => (Ty::Null, 0),
                (true, _, _) => {
                    if let Some(slot) = self.scratch_bits.get_mut(2 * nregs + r) {
                        *slot = head;
                    }
                    (Ty::Val, payload)
                }
            };
            self.scratch_key.push(t);
            if let Some(slot) = self.scratch_bits.get_mut(r) {
                *slot = bits;
            }
        }
        let found = l.regions.iter().position(|c| c.key == self.scratch_key);
        let i = match found {
            Some(i) => i,
            None => {
                if l.regions.len() >= MAX_SPECS {
                    return None;
                }
                let key = self.scratch_key.clone();
                self.compile_loop(module, func, header, at_call, key)?
            }
        };
        let l = loop_state(&mut self.funcs, func, header, at_call)?;
        let code = l.regions.get(i)?;
        let mut ctx = JitCtx::new(*fuel, depth, stack, max_depth, max_stack, exec);
        // SAFETY: `code.entry` was made by `Backend::compile_region` for a region of this
        // function entered with registers of the types `code.key`, which `scratch_bits` was
        // just filled for: three words per register of the frame (payload, tag, first word),
        // `regs.len()` registers, which is the function's `nregs` (the interpreter's window).
        // The code reads and writes only words of that array at register indices the verifier
        // bounded by `nregs`, and `ctx`, which outlives the call; its memory lives as long as
        // `self.backend`. Within, the analysis admits only register arithmetic, compares,
        // branches, calls of compiled specialisations and calls of the helpers of
        // `runtime.rs`, which reach the heap only through `exec` (which the caller does not
        // use meanwhile); every division is guarded, so it cannot trap.
        let at = unsafe { (code.entry)(&mut ctx, self.scratch_bits.as_mut_ptr()) } as usize;
        let back = code.exits.get(at)?;
        for &(r, t) in back {
            let r = r as usize;
            let bits = self.scratch_bits.get(r).copied().unwrap_or(0);
            let t = match t {
                Ty::Top => {
                    runtime::ty_of_tag(self.scratch_bits.get(nregs + r).copied().unwrap_or(0))
                }
                t => t,
            };
            if let Some(slot) = regs.get_mut(r) {
                *slot = match t {
                    Ty::Int => Value::int(bits as i64),
                    Ty::Float => Value::float(f64::from_bits(bits)),
                    Ty::Bool => Value::bool(bits != 0),
                    Ty::Null => Value::NULL,
                    Ty::Val => {
                        let head = self.scratch_bits.get(2 * nregs + r).copied().unwrap_or(0);
                        Value::from_raw(head, bits)
                    }
                    // Left in the frame: not written by compiled code.
                    Ty::Bot | Ty::Ext | Ty::Top => continue,
                };
            }
        }
        *fuel = ctx.fuel_left(*fuel);
        Some(at)
    }

    /// Compiles the loop region of `func` at `header` for registers of types `key`; returns
    /// its index among the loop's regions, or `None` (and the loop stays interpreted) when
    /// the region is refused.
    #[cold]
    #[inline(never)]
    fn compile_loop(
        &mut self,
        module: &Module,
        func: u32,
        header: u32,
        at_call: bool,
        key: Vec<Ty>,
    ) -> Option<usize> {
        let start = Instant::now();
        let name = match at_call {
            true => format!("{} at call", module.func_name(func)),
            false => format!("{} loop at {header}", module.func_name(func)),
        };
        let result = analyze::region(module, func, header as usize, key.clone(), at_call)
            .map_err(|r| format!("{} at pc {}: {}", module.func_name(r.func), r.pc, r.why))
            .and_then(|region| {
                let n = region.callees.iter().map(Vec::len).sum::<usize>() + 1;
                let ptr = self.backend()?.compile_region(module, &region)?;
                let exits = region
                    .states
                    .iter()
                    .map(|s| {
                        s.iter()
                            .flatten()
                            .enumerate()
                            .filter(|(_, t)| {
                                matches!(
                                    t,
                                    Ty::Int | Ty::Float | Ty::Bool | Ty::Null | Ty::Val | Ty::Top
                                )
                            })
                            .map(|(r, t)| (r as u16, *t))
                            .collect()
                    })
                    .collect();
                Ok((ptr, exits, n))
            });
        let micros = start.elapsed().as_micros() as u64;
        let l = loop_state(&mut self.funcs, func, header, at_call)?;
        let (out, compiled, refused) = match result {
            Ok((ptr, exits, n)) => {
                // SAFETY: `ptr` is the finalized address of a region that
                // Backend::compile_region declared with the signature `(i64, i64) -> i64` in
                // the host's default calling convention, which is `extern "C"`'s.
                let entry: LoopFn = unsafe { std::mem::transmute::<*const u8, LoopFn>(ptr) };
                l.regions.push(LoopCode { entry, key, exits });
                (Some(l.regions.len() - 1), n, None)
            }
            Err(why) => (None, 0, Some(why)),
        };
        if out.is_none() {
            self.never_enter(func, header);
        }
        self.events.push(JitEvent {
            function: name,
            compiled,
            micros,
            refused,
        });
        out
    }

    /// The backend, made on first use.
    fn backend(&mut self) -> Result<&mut Backend, String> {
        if self.unsupported {
            return Err("Cranelift does not support this host".into());
        }
        if self.backend.is_none() {
            match Backend::new() {
                Ok(b) => self.backend = Some(b),
                Err(e) => {
                    self.unsupported = true;
                    return Err(e);
                }
            }
        }
        self.backend
            .as_mut()
            .ok_or_else(|| "no backend".to_string())
    }

    /// Compiles `func` for the packed argument types `key`, records the outcome, and returns
    /// it.
    #[cold]
    #[inline(never)]
    fn compile(&mut self, module: &Module, func: u32, key: u32, nargs: usize) -> Spec {
        let start = Instant::now();
        let args: Vec<Ty> = (0..nargs).map(|i| ty_of((key >> (2 * i)) & 3)).collect();
        let name = format!(
            "{}({})",
            module.func_name(func),
            args.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
        );
        let supported = analyze::supported_opcodes(module, func);
        let result = match supported {
            false => Err("uses instructions the JIT does not compile".to_string()),
            true => analyze::plan(module, Key { func, args })
                .map_err(|r| format!("{} at pc {}: {}", module.func_name(r.func), r.pc, r.why))
                .and_then(|plans| {
                    let n = plans.len();
                    self.backend()?
                        .compile(module, &plans)
                        .map(|(ptr, ret)| (ptr, ret, n))
                }),
        };
        let micros = start.elapsed().as_micros() as u64;
        let (spec, compiled, refused) = match result {
            Ok((ptr, ret, n)) => {
                // SAFETY: `ptr` is the finalized address of a trampoline that Backend::compile
                // declared with the signature `(i64, i64) -> i64` in the host's default
                // calling convention, which is `extern "C"`'s.
                let entry: EntryFn = unsafe { std::mem::transmute::<*const u8, EntryFn>(ptr) };
                (Spec::Ready { entry, ret }, n, None)
            }
            Err(why) => (Spec::Refused, 0, Some(why)),
        };
        if let Some(st) = self.funcs.get_mut(func as usize) {
            if !supported {
                st.never = true;
            }
            st.specs.push((key, spec));
        }
        self.events.push(JitEvent {
            function: name,
            compiled,
            micros,
            refused,
        });
        spec
    }
}
