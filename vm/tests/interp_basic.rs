//! Arithmetic, jumps, calls and printing through the dispatch loop.

mod interp_support;

use aivm_vm::format::Instr::*;
use aivm_vm::HostData;
use interp_support::*;

/// A module whose main computes `op(a, b)` on two constants and prints it.
fn binop(
    a: aivm_vm::format::Constant,
    b: aivm_vm::format::Constant,
    op: fn(u16, u16, u16) -> aivm_vm::format::Instr,
) -> Outcome {
    let mut bld = Builder::new();
    let ka = bld.konst(a);
    let kb = bld.konst(b);
    let print = bld.native("io.print");
    let m = bld.main(
        4,
        vec![
            LoadConst { dst: 0, k: ka },
            LoadConst { dst: 1, k: kb },
            op(2, 0, 1),
            Effect {
                dst: 3,
                native: print,
                args: rr(2, 1),
            },
            LoadNull { dst: 3 },
            Return { src: 3 },
        ],
    );
    run(m)
}

use aivm_vm::format::Constant::{Float as F, Int as I};

fn ok(o: Outcome) -> String {
    o.lines().join("\n")
}

fn err_kind(o: Outcome) -> String {
    o.uncaught().0
}

#[test]
fn int_and_float_arithmetic() {
    let add = |d, a, b| Add { dst: d, a, b };
    let sub = |d, a, b| Sub { dst: d, a, b };
    let mul = |d, a, b| Mul { dst: d, a, b };
    let div = |d, a, b| Div { dst: d, a, b };
    let rem = |d, a, b| Mod { dst: d, a, b };
    assert_eq!(ok(binop(I(2), I(3), add)), "5");
    assert_eq!(ok(binop(I(2), F(0.5), add)), "2.5");
    assert_eq!(ok(binop(I(2), I(3), sub)), "-1");
    assert_eq!(ok(binop(I(6), I(7), mul)), "42");
    assert_eq!(ok(binop(I(-7), I(2), div)), "-3");
    assert_eq!(ok(binop(I(-7), I(2), rem)), "-1");
    assert_eq!(ok(binop(I(7), I(-2), rem)), "1");
    assert_eq!(ok(binop(F(1.0), F(0.0), div)), "inf");
    assert_eq!(ok(binop(F(0.0), F(0.0), div)), "NaN");
    assert_eq!(ok(binop(F(1.0), I(2), mul)), "2.0");
    assert_eq!(ok(binop(F(7.5), F(2.0), rem)), "1.5");
}

#[test]
fn overflow_and_division_by_zero_are_errors() {
    let add = |d, a, b| Add { dst: d, a, b };
    let mul = |d, a, b| Mul { dst: d, a, b };
    let div = |d, a, b| Div { dst: d, a, b };
    let rem = |d, a, b| Mod { dst: d, a, b };
    let sub = |d, a, b| Sub { dst: d, a, b };
    assert_eq!(err_kind(binop(I(i64::MAX), I(1), add)), "Overflow");
    assert_eq!(err_kind(binop(I(i64::MIN), I(1), sub)), "Overflow");
    assert_eq!(err_kind(binop(I(i64::MAX), I(2), mul)), "Overflow");
    assert_eq!(err_kind(binop(I(i64::MIN), I(-1), div)), "Overflow");
    assert_eq!(err_kind(binop(I(i64::MIN), I(-1), rem)), "Overflow");
    assert_eq!(err_kind(binop(I(1), I(0), div)), "DivisionByZero");
    assert_eq!(err_kind(binop(I(1), I(0), rem)), "DivisionByZero");
}

#[test]
fn comparisons() {
    let eq = |d, a, b| Eq { dst: d, a, b };
    let ne = |d, a, b| Ne { dst: d, a, b };
    let lt = |d, a, b| Lt { dst: d, a, b };
    let le = |d, a, b| Le { dst: d, a, b };
    assert_eq!(ok(binop(I(1), F(1.0), eq)), "true");
    assert_eq!(ok(binop(I(1), F(1.5), ne)), "true");
    assert_eq!(ok(binop(I(1), F(1.5), lt)), "true");
    assert_eq!(ok(binop(I(2), I(2), le)), "true");
    assert_eq!(ok(binop(I(3), I(2), le)), "false");
    assert_eq!(ok(binop(F(f64::NAN), F(f64::NAN), eq)), "false");
    assert_eq!(ok(binop(F(f64::NAN), F(1.0), lt)), "false");
}

#[test]
fn a_loop_sums_with_jumps() {
    // s = 0; i = 0; while i < 10 { s += i; i += 1 }; return s
    let m = Builder::new().main(
        3,
        vec![
            LoadInt { dst: 0, imm: 0 },
            LoadInt { dst: 1, imm: 0 },
            LoadInt { dst: 2, imm: 10 },
            JumpIfNotLt {
                a: 1,
                b: 2,
                target: 7,
            },
            Add { dst: 0, a: 0, b: 1 },
            AddImm {
                dst: 1,
                src: 1,
                imm: 1,
            },
            Jump { target: 3 },
            Return { src: 0 },
        ],
    );
    let o = run(m);
    assert_eq!(o.result.unwrap().data, HostData::Int(45));
}

#[test]
fn recursive_fib_through_call_fn() {
    let mut b = Builder::new();
    let fib = b.declare("fib");
    // fib(n) = n < 2 ? n : fib(n-1) + fib(n-2)
    b.set_code(
        fib,
        1,
        5,
        0,
        vec![
            LoadInt { dst: 1, imm: 2 },
            JumpIfNotLt {
                a: 0,
                b: 1,
                target: 3,
            },
            Return { src: 0 },
            AddImm {
                dst: 2,
                src: 0,
                imm: -1,
            },
            CallFn {
                dst: 3,
                func: fib,
                args: rr(2, 1),
            },
            AddImm {
                dst: 2,
                src: 0,
                imm: -2,
            },
            CallFn {
                dst: 4,
                func: fib,
                args: rr(2, 1),
            },
            Add { dst: 3, a: 3, b: 4 },
            Return { src: 3 },
        ],
    );
    let m = b.main(
        2,
        vec![
            LoadInt { dst: 0, imm: 20 },
            CallFn {
                dst: 1,
                func: fib,
                args: rr(0, 1),
            },
            Return { src: 1 },
        ],
    );
    assert_eq!(run(m).result.unwrap().data, HostData::Int(6765));
}

#[test]
fn conditions_must_be_bools() {
    let m = Builder::new().main(
        1,
        vec![
            LoadInt { dst: 0, imm: 1 },
            JumpIf { cond: 0, target: 0 },
            Return { src: 0 },
        ],
    );
    let (kind, message) = run(m).uncaught();
    assert_eq!(kind, "TypeError");
    assert_eq!(message, "condition must be a bool, found int");
}
