//! What compiled code shares with the Rust side: the context it reads and writes (fuel, call
//! depth, register-stack size, the bail-out flag) and the helpers it calls.

use std::mem::offset_of;

use super::analyze::Ty;

/// The context of one entry into compiled code. `#[repr(C)]`: compiled code addresses the
/// fields by the offsets below.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct JitCtx {
    /// Fuel left (the interpreter's `left`).
    pub fuel: u64,
    /// Frames the task would have: the interpreter's `t.frames.len()`.
    pub depth: u64,
    pub max_depth: u64,
    /// Registers the task's register stack would hold.
    pub stack: u64,
    pub max_stack: u64,
    /// Nested compiled calls left before the native stack's own bound.
    pub native_left: u64,
    /// Nonzero once compiled code gave up: the whole entry is undone.
    pub bail: u64,
}

pub(crate) const FUEL: usize = offset_of!(JitCtx, fuel);
pub(crate) const DEPTH: usize = offset_of!(JitCtx, depth);
pub(crate) const MAX_DEPTH: usize = offset_of!(JitCtx, max_depth);
pub(crate) const STACK: usize = offset_of!(JitCtx, stack);
pub(crate) const MAX_STACK: usize = offset_of!(JitCtx, max_stack);
pub(crate) const NATIVE_LEFT: usize = offset_of!(JitCtx, native_left);
pub(crate) const BAIL: usize = offset_of!(JitCtx, bail);

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
