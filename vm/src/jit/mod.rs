//! The JIT tier (issue 6): hot functions and hot loops are compiled to machine code with
//! Cranelift, and entered from the interpreter at a `CallFn` (a function) or at a backward
//! `Jump` (a loop, entered at its header: on-stack replacement).
//!
//! Design (spec/semantics.md, "Tiers": the program cannot tell which tier ran it):
//! - **Functions.** The interpreter counts calls per function. Past [`AUTO_THRESHOLD`] calls
//!   (at the first with [`JitMode::Always`]) it asks for a specialisation on the types of the
//!   arguments of that call; `analyze.rs` infers every register's type, and of every function
//!   called, and the request is refused (the function stays interpreted) unless every
//!   reachable instruction is one the code generator handles on those types. Entry is guarded:
//!   a specialisation runs only when every argument is a public int, float or bool of the
//!   types it was compiled for. Whatever it cannot finish exactly as the interpreter would (an
//!   overflow, a division by zero, fuel running short, the call depth or register-stack limit,
//!   the native stack's bound) makes it bail out: every compiled frame of the entry returns at
//!   once, nothing visible has changed, and the interpreter runs the call from its first
//!   instruction, raising the same error at the same pc with the same stack trace. A function
//!   that bails out often is left to the interpreter.
//! - **Regions.** The interpreter counts back-edges per loop header, and the calls of a
//!   function that has no specialisation for them. Past [`LOOP_THRESHOLD`] back-edges (or
//!   [`AUTO_THRESHOLD`] calls) the region reachable from the header (or from the function's
//!   first instruction, once the interpreter has pushed its frame) is analysed with the types
//!   of the frame's registers: public ints, floats, bools and nulls unboxed; any other value
//!   held whole (`Val`: its two words); a register not live there left in the frame (`Ext`).
//!   Whole values are used through the interpreter's own operations (`interp/jit_ops.rs`:
//!   fields, list items, list iterators, `len` and `math.*`, none of which allocates), or as
//!   numbers after a guard that they are public numbers. An instruction the region does not
//!   compile on those types is an exit, and so is a failed guard or a failed operation:
//!   compiled code leaves before that instruction with every register it wrote written back
//!   (by run-time tag where paths of different types meet) and the fuel of what did not run
//!   given back, and the interpreter goes on from there, raising what it raises. A loop whose
//!   every way round leaves, or a function region with no loop and little to compile, is not
//!   compiled.
//! - **Labels.** Constants are public and compiled arithmetic only combines public values, so
//!   its results are public, as the interpreter would label them; whole values keep their
//!   labels, and the operations on them join labels as the interpreter does. A region is
//!   entered only under a public control label, and a call's result takes the caller's
//!   control label as a return would. Label instructions are never compiled.
//! - **Fuel** is charged per straight-line segment before it runs; on success the count equals
//!   the interpreter's exactly.
//!
//! `unsafe` is confined to this folder: the calls into generated code and `Send`.

use std::str::FromStr;

#[cfg(feature = "jit")]
mod analyze;
#[cfg(feature = "jit")]
mod codegen;
#[cfg(feature = "jit")]
mod runtime;
#[cfg(feature = "jit")]
mod tier;

#[cfg(feature = "jit")]
pub(crate) use tier::Jit;

/// When the JIT compiles (`aivm run --jit=MODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JitMode {
    /// Interpret everything.
    Off,
    /// Compile a function once it has been called [`AUTO_THRESHOLD`] times.
    #[default]
    Auto,
    /// Compile every function it can at its first call (for testing).
    Always,
}

/// Calls of a function before `auto` compiles it.
pub const AUTO_THRESHOLD: u32 = 200;

/// Back-edges of a loop before `auto` compiles it.
pub const LOOP_THRESHOLD: u32 = 1000;

impl FromStr for JitMode {
    type Err = String;
    fn from_str(s: &str) -> Result<JitMode, String> {
        match s {
            "off" => Ok(JitMode::Off),
            "auto" => Ok(JitMode::Auto),
            "always" => Ok(JitMode::Always),
            _ => Err(format!("unknown JIT mode {s:?}: use off, auto or always")),
        }
    }
}

impl std::fmt::Display for JitMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JitMode::Off => "off",
            JitMode::Auto => "auto",
            JitMode::Always => "always",
        })
    }
}

/// One compile request the JIT served or refused: what it was asked, how long it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitEvent {
    /// The function and argument types asked for, e.g. `fib(int)`.
    pub function: String,
    /// Specialisations compiled by this request (the function and those it calls).
    pub compiled: usize,
    /// Wall time of the analysis and code generation, in microseconds.
    pub micros: u64,
    /// Why the request was refused, if it was.
    pub refused: Option<String>,
}

/// Without the `jit` feature: a JIT that never compiles.
#[cfg(not(feature = "jit"))]
pub(crate) struct Jit;

#[cfg(not(feature = "jit"))]
impl Jit {
    pub fn new(_module: &crate::format::Module, _mode: JitMode) -> Option<Jit> {
        None
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn enter(
        &mut self,
        _module: &crate::format::Module,
        _func: u32,
        _args: &[crate::value::Value],
        _fuel: &mut u64,
        _depth: usize,
        _stack: usize,
        _max_depth: usize,
        _max_stack: usize,
    ) -> Option<crate::value::Value> {
        None
    }

    #[inline(always)]
    pub fn may_enter(&self, _func: u32, _header: u32) -> bool {
        false
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn enter_loop(
        &mut self,
        _module: &crate::format::Module,
        _func: u32,
        _header: u32,
        _at_call: bool,
        _regs: &mut [crate::value::Value],
        _fuel: &mut u64,
        _depth: usize,
        _stack: usize,
        _max_depth: usize,
        _max_stack: usize,
        _exec: *mut u8,
    ) -> Option<usize> {
        None
    }

    pub fn events(&self) -> &[JitEvent] {
        &[]
    }
}
