//! Errors and limits: try/catch across frames, uncaught errors with stack traces, and the
//! fuel, depth and heap limits (typed, not catchable, no panic, no hang).

mod interp_support;

use aivm_vm::format::Instr::*;
use aivm_vm::{Limits, VmError};
use interp_support::*;

/// thrower() raises ValueError("boom") made by core.error; middle() calls it.
fn with_thrower(b: &mut Builder) -> (u32, u32) {
    let err = b.native("core.error");
    let kk = b.kstr("ValueError");
    let km = b.kstr("boom");
    let thrower = b.func(
        "thrower",
        0,
        3,
        vec![
            LoadConst { dst: 0, k: kk },
            LoadConst { dst: 1, k: km },
            CallNative {
                dst: 2,
                native: err,
                args: rr(0, 2),
            },
            Throw { src: 2 },
        ],
    );
    let middle = b.func(
        "middle",
        0,
        1,
        vec![
            CallFn {
                dst: 0,
                func: thrower,
                args: rr(0, 0),
            },
            Return { src: 0 },
        ],
    );
    (thrower, middle)
}

#[test]
fn try_catches_an_error_raised_two_frames_down() {
    let mut b = Builder::new();
    let print = b.native("io.print");
    let (_, middle) = with_thrower(&mut b);
    let kind = b.str("kind");
    let message = b.str("message");
    let m = b.main(
        4,
        vec![
            TryBegin { err: 0, handler: 4 },
            CallFn {
                dst: 1,
                func: middle,
                args: rr(0, 0),
            },
            TryEnd {},
            Jump { target: 9 },
            GetField {
                dst: 1,
                obj: 0,
                name: kind,
            },
            Effect {
                dst: 3,
                native: print,
                args: rr(1, 1),
            },
            GetField {
                dst: 1,
                obj: 0,
                name: message,
            },
            Effect {
                dst: 3,
                native: print,
                args: rr(1, 1),
            },
            Effect {
                dst: 3,
                native: print,
                args: rr(0, 1),
            },
            LoadInt { dst: 2, imm: 0 },
            Return { src: 2 },
        ],
    );
    assert_eq!(output(m), ["ValueError", "boom", "ValueError: boom"]);
}

#[test]
fn runtime_errors_are_catchable_and_handlers_end_with_their_frame() {
    let mut b = Builder::new();
    let print = b.native("io.print");
    // inner() opens a try and returns without TryEnd; the later error must not land in it.
    let inner = b.func(
        "inner",
        0,
        2,
        vec![
            TryBegin { err: 0, handler: 3 },
            LoadNull { dst: 1 },
            Return { src: 1 },
            Return { src: 0 },
        ],
    );
    let m = b.main(
        4,
        vec![
            TryBegin { err: 0, handler: 6 },
            CallFn {
                dst: 1,
                func: inner,
                args: rr(0, 0),
            },
            LoadInt { dst: 1, imm: 1 },
            LoadInt { dst: 2, imm: 0 },
            Div { dst: 1, a: 1, b: 2 },
            Return { src: 1 },
            Effect {
                dst: 3,
                native: print,
                args: rr(0, 1),
            },
            Return { src: 3 },
        ],
    );
    assert_eq!(output(m), ["DivisionByZero: division by zero"]);
}

#[test]
fn uncaught_error_has_a_stack_trace_with_positions() {
    let mut b = Builder::new();
    let (_, middle) = with_thrower(&mut b);
    let m = b.main(
        1,
        vec![
            Nop {},
            CallFn {
                dst: 0,
                func: middle,
                args: rr(0, 0),
            },
            Return { src: 0 },
        ],
    );
    let e = run(m).result.unwrap_err();
    let VmError::Uncaught {
        kind,
        message,
        trace,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((kind.as_str(), message.as_str()), ("ValueError", "boom"));
    let frames: Vec<(String, u32)> = trace
        .0
        .iter()
        .map(|f| (f.function.clone(), f.line))
        .collect();
    assert_eq!(
        frames,
        [
            ("thrower".to_string(), 4),
            ("middle".to_string(), 1),
            ("main".to_string(), 2)
        ]
    );
    assert_eq!(
        e.to_string(),
        "ValueError: boom\n  at thrower (test.ail:4:1)\n  at middle (test.ail:1:1)\n  at main (test.ail:2:1)"
    );
}

#[test]
fn fuel_stops_an_infinite_loop() {
    let m = Builder::new().main(1, vec![Nop {}, Jump { target: 0 }]);
    let limits = Limits {
        fuel: Some(10_000),
        ..Limits::default()
    };
    let o = run_with(m, limits, |_, _| unreachable!());
    match o.result {
        Err(VmError::FuelExhausted { limit, trace }) => {
            assert_eq!(limit, 10_000);
            assert_eq!(trace.0[0].function, "main");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn depth_limit_stops_infinite_recursion_even_inside_try() {
    let mut b = Builder::new();
    let f = b.declare("forever");
    b.set_code(
        f,
        0,
        2,
        0,
        vec![
            TryBegin { err: 0, handler: 3 },
            CallFn {
                dst: 1,
                func: f,
                args: rr(0, 0),
            },
            Return { src: 1 },
            Return { src: 0 },
        ],
    );
    let m = b.main(
        1,
        vec![
            CallFn {
                dst: 0,
                func: f,
                args: rr(0, 0),
            },
            Return { src: 0 },
        ],
    );
    let o = run_with(
        m,
        Limits {
            max_depth: 500,
            ..Limits::default()
        },
        |_, _| unreachable!(),
    );
    match o.result {
        Err(VmError::StackOverflow { limit, trace }) => {
            assert_eq!(limit, 500);
            assert!(trace.0.len() < 50, "long traces are shortened");
            assert!(trace.0.iter().any(|f| f.function.contains("more frames")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn heap_limit_stops_a_list_doubled_forever() {
    let mut b = Builder::new();
    let concat = b.native("list.concat");
    let m = b.main(
        3,
        vec![
            TryBegin { err: 0, handler: 0 },
            LoadInt { dst: 0, imm: 1 },
            NewList {
                dst: 1,
                items: rr(0, 1),
            },
            Move { dst: 2, src: 1 },
            CallNative {
                dst: 1,
                native: concat,
                args: rr(1, 2),
            },
            Move { dst: 2, src: 1 },
            Jump { target: 4 },
        ],
    );
    let limits = Limits {
        max_heap_bytes: 8 << 20,
        fuel: Some(1_000_000),
        ..Limits::default()
    };
    let o = run_with(m, limits, |_, _| unreachable!());
    match o.result {
        Err(VmError::HeapExhausted { limit, .. }) => assert_eq!(limit, 8 << 20),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heap_limit_refuses_one_huge_string() {
    let mut b = Builder::new();
    let repeat = b.native("string.repeat");
    let k = b.kstr("abc");
    let big = b.konst(aivm_vm::format::Constant::Int(1 << 40));
    let m = b.main(
        3,
        vec![
            LoadConst { dst: 0, k },
            LoadConst { dst: 1, k: big },
            CallNative {
                dst: 2,
                native: repeat,
                args: rr(0, 2),
            },
            Return { src: 2 },
        ],
    );
    let o = run_with(m, Limits::default(), |_, _| unreachable!());
    assert!(
        matches!(o.result, Err(VmError::HeapExhausted { .. })),
        "{:?}",
        o.result
    );
}

#[test]
fn failed_effects_are_catchable_errors() {
    let mut b = Builder::new();
    let read = b.native("fs.read");
    let print = b.native("io.print");
    let path = b.kstr("/etc/passwd");
    let m = b.main(
        3,
        vec![
            TryBegin { err: 1, handler: 4 },
            LoadConst { dst: 0, k: path },
            Effect {
                dst: 1,
                native: read,
                args: rr(0, 1),
            },
            Return { src: 1 },
            Effect {
                dst: 2,
                native: print,
                args: rr(1, 1),
            },
            Return { src: 2 },
        ],
    );
    let o = run_with(m, Limits::default(), |name, _| {
        Err(aivm_vm::HostError::new(
            "PolicyDenied",
            format!("{name} denied"),
        ))
    });
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(o.out, ["PolicyDenied: fs.read denied"]);
}
