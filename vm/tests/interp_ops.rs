//! Every opcode through small hand-built programs: values, strings, collections, iterators,
//! cells and closures, calls, natives, type checks and errors.

mod interp_support;

use aivm_vm::format::Constant::{Float as F, Int as I};
use aivm_vm::format::{Instr, Instr::*, TypeDesc};
use aivm_vm::VmError;
use interp_support::*;

/// Runs `main` built by `f` (which gets the builder and the index of `io.print`).
fn prog(nregs: u16, f: impl FnOnce(&mut Builder, u32) -> Vec<Instr>) -> Outcome {
    let mut b = Builder::new();
    let print = b.native("io.print");
    let code = f(&mut b, print);
    run(b.main(nregs, code))
}

fn p(print: u32, r: u16, tmp: u16) -> Instr {
    Effect {
        dst: tmp,
        native: print,
        args: rr(r, 1),
    }
}

#[test]
fn loads_moves_and_printing_of_scalars() {
    let out = prog(9, |b, pr| {
        let kf = b.konst(F(1.0));
        let kf2 = b.konst(F(1e16));
        let ks = b.kstr("héllo");
        let neg = b.konst(I(-5));
        vec![
            Nop {},
            LoadNull { dst: 0 },
            LoadTrue { dst: 1 },
            LoadFalse { dst: 2 },
            LoadInt { dst: 3, imm: 42 },
            LoadConst { dst: 4, k: kf },
            LoadConst { dst: 5, k: kf2 },
            LoadConst { dst: 6, k: ks },
            Move { dst: 7, src: 6 },
            p(pr, 0, 8),
            p(pr, 1, 8),
            p(pr, 2, 8),
            p(pr, 3, 8),
            p(pr, 4, 8),
            p(pr, 5, 8),
            p(pr, 7, 8),
            LoadConst { dst: 0, k: neg },
            Neg { dst: 1, src: 0 },
            p(pr, 1, 8),
            Not { dst: 2, src: 2 },
            p(pr, 2, 8),
            LoadFunc { dst: 0, func: 0 },
            p(pr, 0, 8),
            Return { src: 3 },
        ]
    })
    .lines();
    assert_eq!(
        out,
        [
            "null",
            "true",
            "false",
            "42",
            "1.0",
            "1e16",
            "héllo",
            "5",
            "true",
            "<fn main>"
        ]
    );
}

#[test]
fn strings_concat_tostr_and_interpolation() {
    let o = prog(8, |b, pr| {
        let a = b.kstr("ab");
        let c = b.kstr("cd");
        let kf = b.konst(F(0.5));
        vec![
            LoadConst { dst: 0, k: a },
            LoadConst { dst: 1, k: c },
            Add { dst: 2, a: 0, b: 1 },
            p(pr, 2, 7),
            LoadInt { dst: 3, imm: 7 },
            ToStr { dst: 4, src: 3 },
            Add { dst: 4, a: 4, b: 0 },
            p(pr, 4, 7),
            LoadConst { dst: 5, k: kf },
            Move { dst: 6, src: 1 },
            Concat {
                dst: 6,
                parts: rr(3, 4),
            },
            p(pr, 6, 7),
            Add { dst: 6, a: 0, b: 3 },
            Return { src: 6 },
        ]
    });
    assert_eq!(o.out, ["abcd", "7ab", "77ab0.5cd"]);
    let (k, m) = o.uncaught();
    assert_eq!(k, "TypeError");
    assert!(m.starts_with("cannot add string and int"), "{m}");
}

#[test]
fn string_comparisons_and_equality() {
    let o = prog(6, |b, pr| {
        let a = b.kstr("apple");
        let c = b.kstr("banana");
        vec![
            LoadConst { dst: 0, k: a },
            LoadConst { dst: 1, k: c },
            Lt { dst: 2, a: 0, b: 1 },
            p(pr, 2, 5),
            Le { dst: 2, a: 1, b: 0 },
            p(pr, 2, 5),
            Eq { dst: 2, a: 0, b: 0 },
            p(pr, 2, 5),
            LoadInt { dst: 3, imm: 1 },
            Eq { dst: 2, a: 0, b: 3 },
            p(pr, 2, 5),
            Lt { dst: 2, a: 0, b: 3 },
            Return { src: 2 },
        ]
    });
    assert_eq!(o.out, ["true", "false", "true", "false"]);
    assert_eq!(o.uncaught().0, "TypeError", "strings and ints do not order");
}

#[test]
fn lists_maps_records_index_field_slice() {
    let out = prog(12, |b, pr| {
        let shape = b.shape(&["title", "n"]);
        let kt = b.kstr("t\"x");
        let ka = b.kstr("a");
        let kb = b.kstr("b");
        let title = b.str("title");
        let n = b.str("n");
        let fa = b.str("a");
        vec![
            LoadInt { dst: 0, imm: 1 },
            LoadInt { dst: 1, imm: 2 },
            LoadConst { dst: 2, k: kt },
            NewList {
                dst: 3,
                items: rr(0, 3),
            },
            p(pr, 3, 11),
            // map {"a": 1, "b": [1, 2, "t\"x"]}
            LoadConst { dst: 4, k: ka },
            Move { dst: 5, src: 0 },
            LoadConst { dst: 6, k: kb },
            Move { dst: 7, src: 3 },
            NewMap {
                dst: 8,
                kvs: rr(4, 4),
            },
            p(pr, 8, 11),
            // record {title: "t\"x", n: 2}
            NewRecord {
                dst: 9,
                shape,
                vals: rr(1, 2),
            },
            p(pr, 9, 11),
            GetField {
                dst: 10,
                obj: 9,
                name: title,
            },
            p(pr, 10, 11),
            SetField {
                obj: 9,
                name: n,
                src: 0,
            },
            GetField {
                dst: 10,
                obj: 9,
                name: n,
            },
            p(pr, 10, 11),
            GetField {
                dst: 10,
                obj: 8,
                name: fa,
            },
            p(pr, 10, 11),
            // l[1] = 5; m["a"] = 9; m.c? ; l[0:2]
            LoadInt { dst: 4, imm: 5 },
            SetIndex {
                obj: 3,
                key: 0,
                src: 4,
            },
            GetIndex {
                dst: 10,
                obj: 3,
                key: 0,
            },
            p(pr, 10, 11),
            LoadConst { dst: 5, k: ka },
            LoadInt { dst: 6, imm: 9 },
            SetIndex {
                obj: 8,
                key: 5,
                src: 6,
            },
            GetIndex {
                dst: 10,
                obj: 8,
                key: 5,
            },
            p(pr, 10, 11),
            LoadNull { dst: 6 },
            Slice {
                dst: 10,
                obj: 3,
                lo: 0,
                hi: 6,
            },
            p(pr, 10, 11),
            GetIndex {
                dst: 10,
                obj: 2,
                key: 0,
            },
            p(pr, 10, 11),
            Slice {
                dst: 10,
                obj: 2,
                lo: 0,
                hi: 1,
            },
            p(pr, 10, 11),
            Slice {
                dst: 10,
                obj: 2,
                lo: 6,
                hi: 1,
            },
            p(pr, 10, 11),
            Return { src: 0 },
        ]
    })
    .lines();
    assert_eq!(
        out,
        [
            r#"[1, 2, "t\"x"]"#,
            r#"{"a": 1, "b": [1, 2, "t\"x"]}"#,
            r#"{title: 2, n: "t\"x"}"#,
            "2",
            "1",
            "1",
            "5",
            "9",
            r#"[5, "t\"x"]"#,
            "\"",
            "\"",
            "t\"",
        ]
    );
}

#[test]
fn index_and_key_errors() {
    let idx = |i: i32| {
        prog(4, |_, _| {
            vec![
                LoadInt { dst: 0, imm: 1 },
                NewList {
                    dst: 1,
                    items: rr(0, 1),
                },
                LoadInt { dst: 2, imm: i },
                GetIndex {
                    dst: 3,
                    obj: 1,
                    key: 2,
                },
                Return { src: 3 },
            ]
        })
        .uncaught()
    };
    assert_eq!(
        idx(1),
        (
            "IndexError".into(),
            "index 1 is out of range for a list of length 1".into()
        )
    );
    assert_eq!(idx(-1).0, "IndexError");
    let (k, m) = prog(3, |b, _| {
        let kx = b.kstr("x");
        vec![
            NewMap {
                dst: 0,
                kvs: rr(0, 0),
            },
            LoadConst { dst: 1, k: kx },
            GetIndex {
                dst: 2,
                obj: 0,
                key: 1,
            },
            Return { src: 2 },
        ]
    })
    .uncaught();
    assert_eq!(
        (k.as_str(), m.as_str()),
        ("KeyError", "key \"x\" not found")
    );
    let (k, _) = prog(3, |b, _| {
        let shape = b.shape(&["a"]);
        let zz = b.str("zz");
        vec![
            LoadInt { dst: 0, imm: 1 },
            NewRecord {
                dst: 1,
                shape,
                vals: rr(0, 1),
            },
            GetField {
                dst: 2,
                obj: 1,
                name: zz,
            },
            Return { src: 2 },
        ]
    })
    .uncaught();
    assert_eq!(k, "KeyError");
    let (k, _) = prog(4, |_, _| {
        vec![
            LoadInt { dst: 0, imm: 1 },
            NewList {
                dst: 1,
                items: rr(0, 1),
            },
            LoadInt { dst: 2, imm: 3 },
            Slice {
                dst: 3,
                obj: 1,
                lo: 0,
                hi: 2,
            },
            Return { src: 3 },
        ]
    })
    .uncaught();
    assert_eq!(k, "IndexError");
}

#[test]
fn iterators_over_lists_maps_strings_ranges() {
    // For each source: IterNew, then IterNext2 printing "k=v" via Concat.
    let out = prog(12, |b, pr| {
        let ka = b.kstr("a");
        let kb = b.kstr("b");
        let ks = b.kstr("hé");
        let eq = b.kstr("=");
        let mut code = vec![
            LoadInt { dst: 0, imm: 7 },
            LoadInt { dst: 1, imm: 8 },
            NewList {
                dst: 2,
                items: rr(0, 2),
            },
            LoadConst { dst: 3, k: ka },
            LoadInt { dst: 4, imm: 1 },
            LoadConst { dst: 5, k: kb },
            LoadInt { dst: 6, imm: 2 },
            NewMap {
                dst: 3,
                kvs: rr(3, 4),
            },
            LoadConst { dst: 4, k: ks },
            LoadInt { dst: 5, imm: 3 },
            LoadInt { dst: 6, imm: 5 },
            Range {
                dst: 5,
                lo: 5,
                hi: 6,
            },
            LoadConst { dst: 10, k: eq },
        ];
        for src in [2u16, 3, 4, 5] {
            let top = code.len() as u32;
            code.extend([
                IterNew { dst: 6, src },
                IterNext2 {
                    key: 7,
                    val: 8,
                    iter: 6,
                    target: top + 6,
                },
                Move { dst: 9, src: 7 },
                Concat {
                    dst: 11,
                    parts: rr(7, 1),
                },
                // print k then v
                p(pr, 9, 11),
                Jump { target: top + 7 },
                Jump { target: top + 9 },
                p(pr, 8, 11),
                Jump { target: top + 1 },
            ]);
        }
        // Single-variable form over the map gives keys.
        let top = code.len() as u32;
        code.extend([
            IterNew { dst: 6, src: 3 },
            IterNext {
                dst: 7,
                iter: 6,
                target: top + 4,
            },
            p(pr, 7, 11),
            Jump { target: top + 1 },
            Return { src: 0 },
        ]);
        code
    })
    .lines();
    assert_eq!(
        out,
        [
            "0", "7", "1", "8", "a", "1", "b", "2", "0", "h", "1", "é", "0", "3", "1", "4", "a",
            "b"
        ]
    );
}

#[test]
fn cells_closures_and_shared_mutation() {
    // counter = 0 in a cell; two closures share it: inc() adds 1, get() reads it.
    let mut b = Builder::new();
    let print = b.native("io.print");
    let inc = b.func_caps(
        "inc",
        0,
        2,
        1,
        vec![
            UpvalGet { dst: 0, idx: 0 },
            AddImm {
                dst: 0,
                src: 0,
                imm: 1,
            },
            UpvalSet { idx: 0, src: 0 },
            UpvalCell { dst: 1, idx: 0 },
            CellGet { dst: 0, cell: 1 },
            Return { src: 0 },
        ],
    );
    let get = b.func_caps(
        "get",
        0,
        1,
        1,
        vec![UpvalGet { dst: 0, idx: 0 }, Return { src: 0 }],
    );
    let m = b.main(
        6,
        vec![
            LoadInt { dst: 0, imm: 0 },
            CellNew { dst: 1, src: 0 },
            Closure {
                dst: 2,
                func: inc,
                caps: rr(1, 1),
            },
            Closure {
                dst: 3,
                func: get,
                caps: rr(1, 1),
            },
            Call {
                dst: 4,
                callee: 2,
                args: rr(0, 0),
            },
            Call {
                dst: 4,
                callee: 2,
                args: rr(0, 0),
            },
            Call {
                dst: 4,
                callee: 3,
                args: rr(0, 0),
            },
            p(print, 4, 5),
            LoadInt { dst: 0, imm: 40 },
            CellSet { cell: 1, src: 0 },
            Call {
                dst: 4,
                callee: 2,
                args: rr(0, 0),
            },
            p(print, 4, 5),
            p(print, 2, 5),
            Return { src: 4 },
        ],
    );
    assert_eq!(output(m), ["2", "41", "<fn inc>"]);
}

#[test]
fn self_recursive_closure() {
    let mut b = Builder::new();
    let fact = b.declare("fact");
    b.set_code(
        fact,
        1,
        5,
        1,
        vec![
            LoadInt { dst: 1, imm: 2 },
            JumpIfNotLt {
                a: 0,
                b: 1,
                target: 4,
            },
            LoadInt { dst: 1, imm: 1 },
            Return { src: 1 },
            UpvalGet { dst: 2, idx: 0 },
            AddImm {
                dst: 3,
                src: 0,
                imm: -1,
            },
            Call {
                dst: 4,
                callee: 2,
                args: rr(3, 1),
            },
            Mul { dst: 4, a: 4, b: 0 },
            Return { src: 4 },
        ],
    );
    let m = b.main(
        5,
        vec![
            LoadNull { dst: 0 },
            CellNew { dst: 1, src: 0 },
            Closure {
                dst: 2,
                func: fact,
                caps: rr(1, 1),
            },
            CellSet { cell: 1, src: 2 },
            LoadInt { dst: 3, imm: 20 },
            Call {
                dst: 4,
                callee: 2,
                args: rr(3, 1),
            },
            Return { src: 4 },
        ],
    );
    assert_eq!(
        run(m).result.unwrap().data,
        aivm_vm::HostData::Int(2432902008176640000)
    );
}

#[test]
fn calls_check_arity_and_callee_kind() {
    let mut b = Builder::new();
    let f = b.func("two", 2, 2, vec![Return { src: 0 }]);
    let m = b.main(
        3,
        vec![
            LoadFunc { dst: 0, func: f },
            Call {
                dst: 1,
                callee: 0,
                args: rr(0, 1),
            },
            Return { src: 1 },
        ],
    );
    let (k, m) = run(m).uncaught();
    assert_eq!(
        (k.as_str(), m.as_str()),
        ("TypeError", "two takes 2 arguments but 1 was given")
    );
    let (k, _) = prog(2, |_, _| {
        vec![
            LoadInt { dst: 0, imm: 1 },
            Call {
                dst: 1,
                callee: 0,
                args: rr(0, 0),
            },
            Return { src: 1 },
        ]
    })
    .uncaught();
    assert_eq!(k, "TypeError");
}

#[test]
fn call_native_and_check_type() {
    let out = prog(6, |b, pr| {
        let len = b.native("core.len");
        let ty = b.native("core.type_of");
        let ks = b.kstr("héllo");
        vec![
            LoadConst { dst: 0, k: ks },
            CallNative {
                dst: 1,
                native: len,
                args: rr(0, 1),
            },
            p(pr, 1, 5),
            CallNative {
                dst: 2,
                native: ty,
                args: rr(1, 1),
            },
            p(pr, 2, 5),
            Return { src: 1 },
        ]
    })
    .lines();
    assert_eq!(out, ["5", "int"]);
    let check = |ty: TypeDesc, build: fn(&mut Builder) -> Vec<Instr>| {
        let mut b = Builder::new();
        let inner = b.ty(TypeDesc::Int);
        let t = match ty {
            TypeDesc::List(_) => b.ty(TypeDesc::List(inner)),
            other => b.ty(other),
        };
        let mut code = build(&mut b);
        code.extend([
            CheckType { src: 0, ty: t },
            LoadNull { dst: 0 },
            Return { src: 0 },
        ]);
        run(b.main(4, code)).result
    };
    let list_of_ints: fn(&mut Builder) -> Vec<Instr> = |_| {
        vec![
            LoadInt { dst: 1, imm: 1 },
            LoadInt { dst: 2, imm: 2 },
            NewList {
                dst: 0,
                items: rr(1, 2),
            },
        ]
    };
    assert!(check(TypeDesc::List(0), list_of_ints).is_ok());
    match check(TypeDesc::Str, list_of_ints) {
        Err(VmError::Uncaught { kind, message, .. }) => {
            assert_eq!(kind, "TypeError");
            assert_eq!(message, "expected string, found list");
        }
        other => panic!("{other:?}"),
    }
    let mixed: fn(&mut Builder) -> Vec<Instr> = |b| {
        let k = b.kstr("x");
        vec![
            LoadInt { dst: 1, imm: 1 },
            LoadConst { dst: 2, k },
            NewList {
                dst: 0,
                items: rr(1, 2),
            },
        ]
    };
    assert!(check(TypeDesc::List(0), mixed).is_err());
}

#[test]
fn throw_of_a_non_error_wraps_it() {
    let (k, m) = prog(2, |_, _| vec![LoadInt { dst: 0, imm: 3 }, Throw { src: 0 }]).uncaught();
    assert_eq!((k.as_str(), m.as_str()), ("Error", "3"));
}
