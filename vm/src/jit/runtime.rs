//! What compiled code shares with the Rust side: the context it reads and writes (fuel, call
//! depth, register-stack size, the bail-out flag) and the helpers it calls.

use std::mem::offset_of;

use super::analyze::Ty;

/// The context of one entry into compiled code. `#[repr(C)]`: compiled code addresses the
/// fields by the offsets below. Within compiled code the budgets travel in machine registers;
/// the context carries them in at the entry and the fuel out at the end.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct JitCtx {
    /// Fuel left (the interpreter's `left`), at most [`MAX_FUEL`].
    pub fuel: u64,
    /// Nested calls compiled code may make: the depth limit less the frames there are, bounded
    /// by what the native stack allows.
    pub calls: u64,
    /// Registers the register stack may still grow by.
    pub stack: u64,
    /// Nonzero once a specialisation's entry bailed out: the whole entry is undone.
    pub bail: u64,
}

pub(crate) const FUEL: usize = offset_of!(JitCtx, fuel);
pub(crate) const CALLS: usize = offset_of!(JitCtx, calls);
pub(crate) const STACK: usize = offset_of!(JitCtx, stack);
pub(crate) const BAIL: usize = offset_of!(JitCtx, bail);

/// The fuel a compiled function returns when it bailed out: never a count of fuel left, which
/// is at most [`MAX_FUEL`].
pub(crate) const BAILED: u64 = u64::MAX;
pub(crate) const MAX_FUEL: u64 = u64::MAX - 1;

/// Nested compiled calls one entry may make before it bails out, so that deep recursion cannot
/// exhaust the native stack (the interpreter keeps its frames on the heap).
const NATIVE_DEPTH: u64 = 1000;

impl JitCtx {
    /// The context of an entry at call depth `depth` (the frames the task has, that of the
    /// compiled code included) with the register stack ending at `stack`.
    pub fn new(fuel: u64, depth: usize, stack: usize, max_depth: usize, max_stack: usize) -> Self {
        JitCtx {
            fuel: fuel.min(MAX_FUEL),
            calls: (max_depth.saturating_sub(depth) as u64).min(NATIVE_DEPTH),
            stack: max_stack.saturating_sub(stack) as u64,
            bail: 0,
        }
    }

    /// The fuel left: `fuel` less what compiled code charged, once it has run from a context
    /// made with `fuel`.
    pub fn fuel_left(&self, fuel: u64) -> u64 {
        fuel - (fuel.min(MAX_FUEL) - self.fuel)
    }
}

/// Float remainder as the interpreter computes it (`a % b`).
pub(crate) extern "C" fn fmod(a: f64, b: f64) -> f64 {
    a % b
}

/// `i == f` as the interpreter decides it (`compare::int_float_eq`).
pub(crate) extern "C" fn int_float_eq(i: i64, f: f64) -> i64 {
    crate::compare::int_float_eq(i, f) as i64
}

/// The run-time tag of a value of static type `t` in a region: what an exit writes back for a
/// register whose type is known only at run time. 0: a value left in the frame.
pub(crate) fn tag_of(t: Ty) -> u64 {
    match t {
        Ty::Int => 1,
        Ty::Float => 2,
        Ty::Bool => 3,
        Ty::Null => 4,
        Ty::Bot | Ty::Ext | Ty::Top => 0,
    }
}

/// The type a run-time tag stands for (`Ext` for 0).
pub(crate) fn ty_of_tag(tag: u64) -> Ty {
    match tag {
        1 => Ty::Int,
        2 => Ty::Float,
        3 => Ty::Bool,
        4 => Ty::Null,
        _ => Ty::Ext,
    }
}
