//! What compiled code shares with the Rust side: the context it reads and writes (fuel, call
//! depth, register-stack size, the bail-out flag) and the helpers it calls.

use std::mem::offset_of;

use super::analyze::Ty;
use crate::interp::Exec;
use crate::value::Value;

/// The context of one entry into compiled code. `#[repr(C)]`: compiled code addresses the
/// fields by the offsets below. Within compiled code the budgets travel in machine registers;
/// the context carries them in at the entry and the fuel out at the end.
#[repr(C)]
#[derive(Debug)]
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
    /// The interpreter a region calls back into (`Exec`), null for a specialisation.
    pub exec: *mut u8,
    /// The two words of the value a helper gives back.
    pub out: [u64; 2],
    /// The words of the values compiled code passes a helper beyond its register arguments.
    pub args: [u64; 4],
}

pub(crate) const FUEL: usize = offset_of!(JitCtx, fuel);
pub(crate) const CALLS: usize = offset_of!(JitCtx, calls);
pub(crate) const STACK: usize = offset_of!(JitCtx, stack);
pub(crate) const BAIL: usize = offset_of!(JitCtx, bail);
pub(crate) const OUT: usize = offset_of!(JitCtx, out);
pub(crate) const ARGS: usize = offset_of!(JitCtx, args);

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
    /// `exec` is the interpreter to call back into (null when there is none to call).
    pub fn new(
        fuel: u64,
        depth: usize,
        stack: usize,
        max_depth: usize,
        max_stack: usize,
        exec: *mut u8,
    ) -> Self {
        JitCtx {
            fuel: fuel.min(MAX_FUEL),
            calls: (max_depth.saturating_sub(depth) as u64).min(NATIVE_DEPTH),
            stack: max_stack.saturating_sub(stack) as u64,
            bail: 0,
            exec,
            out: [0; 2],
            args: [0; 4],
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
        Ty::Val => 5,
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
        5 => Ty::Val,
        _ => Ty::Ext,
    }
}

/// The helpers' signatures: the context and N words, returning a status. Compiled code calls
/// them with all arguments as `i64`s, which is how the C calling convention passes these.
pub(crate) type Helper2 = extern "C" fn(*mut JitCtx, u64, u64) -> u64;
pub(crate) type Helper3 = extern "C" fn(*mut JitCtx, u64, u64, u64) -> u64;
pub(crate) type Helper4 = extern "C" fn(*mut JitCtx, u64, u64, u64, u64) -> u64;
pub(crate) type Helper5 = extern "C" fn(*mut JitCtx, u64, u64, u64, u64, u64) -> u64;

/// A helper's answer: done, or leave before the instruction (the interpreter runs it).
pub(crate) const DONE: u64 = 0;
pub(crate) const LEAVE: u64 = 1;
/// `IterNext` found the end of the list.
pub(crate) const END: u64 = 2;

/// The interpreter behind `ctx`, and the context itself, for a helper.
///
/// # Safety
/// `ctx` must be the context compiled code was entered with, whose `exec` is the `Exec` that
/// entered it.
unsafe fn parts<'a>(ctx: *mut JitCtx) -> (&'a mut JitCtx, &'a mut Exec<'a>) {
    // SAFETY: compiled regions are entered only by `Jit::enter_loop`, with a context that lives
    // across the call and whose `exec` points at the `Exec` running the task, which the
    // interpreter does not touch until compiled code returns (its `jit` was taken out of it
    // for the call, so nothing else borrows it). Helpers run one at a time on that thread,
    // and the context and the interpreter are distinct objects.
    unsafe {
        let ctx = &mut *ctx;
        let exec = &mut *ctx.exec.cast::<Exec<'a>>();
        (ctx, exec)
    }
}

/// The status of an operation that gives a value, the value stored as the helper's answer.
fn answer(ctx: &mut JitCtx, v: Option<Value>) -> u64 {
    let Some(v) = v else {
        return LEAVE;
    };
    let (head, bits) = v.to_raw();
    ctx.out = [head, bits];
    DONE
}

/// The status of an operation that gives nothing.
fn done(r: Option<()>) -> u64 {
    r.map_or(LEAVE, |()| DONE)
}

pub(crate) extern "C" fn get_field(ctx: *mut JitCtx, head: u64, bits: u64, name: u64) -> u64 {
    // SAFETY: called only by compiled regions with their context (see `parts`).
    let (ctx, exec) = unsafe { parts(ctx) };
    answer(
        ctx,
        exec.jit_get_field(Value::from_raw(head, bits), name as u32),
    )
}

pub(crate) extern "C" fn set_field(
    ctx: *mut JitCtx,
    head: u64,
    bits: u64,
    name: u64,
    src_head: u64,
    src_bits: u64,
) -> u64 {
    // SAFETY: called only by compiled regions with their context (see `parts`).
    let (_, exec) = unsafe { parts(ctx) };
    let src = Value::from_raw(src_head, src_bits);
    done(exec.jit_set_field(Value::from_raw(head, bits), name as u32, src))
}

pub(crate) extern "C" fn get_index(
    ctx: *mut JitCtx,
    head: u64,
    bits: u64,
    key_head: u64,
    key_bits: u64,
) -> u64 {
    // SAFETY: called only by compiled regions with their context (see `parts`).
    let (ctx, exec) = unsafe { parts(ctx) };
    let key = Value::from_raw(key_head, key_bits);
    answer(ctx, exec.jit_get_index(Value::from_raw(head, bits), key))
}

/// `SetIndex`; the value stored is in `ctx.args[0..2]`.
pub(crate) extern "C" fn set_index(
    ctx: *mut JitCtx,
    head: u64,
    bits: u64,
    key_head: u64,
    key_bits: u64,
) -> u64 {
    // SAFETY: called only by compiled regions with their context (see `parts`).
    let (ctx, exec) = unsafe { parts(ctx) };
    let key = Value::from_raw(key_head, key_bits);
    let src = Value::from_raw(ctx.args[0], ctx.args[1]);
    done(exec.jit_set_index(Value::from_raw(head, bits), key, src))
}

pub(crate) extern "C" fn iter_next(ctx: *mut JitCtx, head: u64, bits: u64) -> u64 {
    // SAFETY: called only by compiled regions with their context (see `parts`).
    let (ctx, exec) = unsafe { parts(ctx) };
    match exec.jit_iter_next(Value::from_raw(head, bits)) {
        Some(None) => END,
        item => answer(ctx, item.flatten()),
    }
}

/// `CallNative` of a `math.*` native on `argc` values in `ctx.args`.
pub(crate) extern "C" fn call_native(ctx: *mut JitCtx, native: u64, argc: u64) -> u64 {
    // SAFETY: called only by compiled regions with their context (see `parts`).
    let (ctx, exec) = unsafe { parts(ctx) };
    let a = ctx.args;
    let args = [Value::from_raw(a[0], a[1]), Value::from_raw(a[2], a[3])];
    let Some(args) = args.get(..argc as usize) else {
        return LEAVE;
    };
    answer(ctx, exec.jit_call_native(native as u32, args))
}
