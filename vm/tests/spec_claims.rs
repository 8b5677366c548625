//! The claims of spec/instructions.md and spec/semantics.md about errors and edge cases, one
//! or more per opcode, checked on small modules written in assembly text: each is assembled,
//! verified, and run by `Vm` under `host::Host`; `main`'s return value or uncaught error is
//! compared with what the spec says.

mod interp_support;

use std::io::Cursor;

use aivm_vm::format::{assemble, VerifiedModule};
use aivm_vm::host::{Host, RunError};
use aivm_vm::policy::Policy;
use aivm_vm::{HostData, HostValue, Limits, Vm, VmError};

/// A module with one function, `main` (f0), made from parts of assembly text. Strings are
/// `s1..` in order (`s0` is "main"), then the native names; constants `k0..`; types `t1..`
/// (`t0` is `any`); natives `n0..`. `code` is main's body (8 registers, no parameters);
/// `extra` holds further `.func` blocks (f1 onwards).
#[derive(Default)]
struct Src<'a> {
    strings: &'a [&'a str],
    consts: &'a [&'a str],
    types: &'a [&'a str],
    natives: &'a [&'a str],
    code: &'a str,
    extra: &'a str,
}

impl Src<'_> {
    fn text(&self) -> String {
        let mut t = String::from(".strings\n    s0 = \"main\"\n");
        for (n, s) in (1..).zip(self.strings.iter().chain(self.natives)) {
            t += &format!("    s{n} = {s:?}\n");
        }
        t += ".const\n";
        for (i, k) in self.consts.iter().enumerate() {
            t += &format!("    k{i} = {k}\n");
        }
        t += ".types\n    t0 = any\n";
        for (i, ty) in self.types.iter().enumerate() {
            t += &format!("    t{} = {ty}\n", i + 1);
        }
        t += ".natives\n";
        for i in 0..self.natives.len() {
            t += &format!("    n{i} = s{}\n", 1 + self.strings.len() + i);
        }
        t += ".entry f0\n.func f0 s0\n    ret t0\n    regs 8\n";
        t += self.code;
        t += "\n";
        t += self.extra;
        t
    }
}

/// What a run ended with: main's value as text, or the uncaught error's kind and message.
#[derive(Debug, PartialEq)]
enum Out {
    Value(String),
    Error(String, String),
    Fatal(String),
}

fn show(v: &HostValue) -> String {
    match &v.data {
        HostData::Float(f) => format!("{f:?}"),
        _ => v.to_json().to_string(),
    }
}

fn run_with(src: &Src, limits: Limits) -> Out {
    run_under(src, limits, Policy::default())
}

fn run_under(src: &Src, limits: Limits, policy: Policy) -> Out {
    let text = src.text();
    let mut module = assemble(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    interp_support::fill_tools(&mut module);
    let verified = VerifiedModule::new(module).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut vm = Vm::new(&verified, limits).expect("a verified module loads");
    vm.start_main(vec![]).expect("main starts");
    let mut host = Host::new(
        policy,
        Box::new(Vec::new()),
        Box::new(Cursor::new(Vec::new())),
    );
    match host.run_to_end(&mut vm) {
        Ok(v) => Out::Value(show(&v)),
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => Out::Error(kind, message),
        Err(RunError::Vm(e)) => Out::Fatal(format!("{e}")),
        Err(e) => panic!("{e}"),
    }
}

fn run(src: &Src) -> Out {
    run_with(src, Limits::default())
}

/// Runs `code` (with constants `consts`) and expects main's value to print as `want`.
fn value(consts: &[&str], code: &str, want: &str) {
    let src = Src {
        consts,
        code,
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value(want.into()), "\n{code}");
}

/// Runs `src` and expects an uncaught error of `kind` whose message contains `msg`.
fn fails(src: &Src, kind: &str, msg: &str) {
    match run(src) {
        Out::Error(k, m) => {
            assert_eq!(k, kind, "message: {m}\n{}", src.code);
            assert!(m.contains(msg), "{m:?} lacks {msg:?}\n{}", src.code);
        }
        other => panic!("expected {kind}, got {other:?}\n{}", src.code),
    }
}

fn fails_code(consts: &[&str], code: &str, kind: &str, msg: &str) {
    let src = Src {
        consts,
        code,
        ..Src::default()
    };
    fails(&src, kind, msg);
}

const MIN_MAX: &[&str] = &["int -9223372036854775808", "int 9223372036854775807"];

// ---- arithmetic -------------------------------------------------------------------------

#[test]
fn add_overflows_and_refuses_mixed_text() {
    fails_code(
        MIN_MAX,
        "LoadConst r0, k1\nLoadInt r1, 1\nAdd r2, r0, r1\nReturn r2",
        "Overflow",
        "overflow",
    );
    fails_code(
        &["str s0"],
        "LoadConst r0, k0\nLoadInt r1, 1\nAdd r2, r0, r1\nReturn r2",
        "TypeError",
        "cannot add string and int",
    );
    value(
        &["float 0.5"],
        "LoadInt r0, 1\nLoadConst r1, k0\nAdd r2, r0, r1\nReturn r2",
        "1.5",
    );
    value(
        &["str s0"],
        "LoadConst r0, k0\nAdd r1, r0, r0\nReturn r1",
        "\"mainmain\"",
    );
    fails_code(
        &[],
        "LoadNull r0\nLoadNull r1\nAdd r2, r0, r1\nReturn r2",
        "TypeError",
        "cannot add null and null",
    );
}

#[test]
fn sub_and_mul_overflow_and_need_numbers() {
    fails_code(
        MIN_MAX,
        "LoadConst r0, k0\nLoadInt r1, 1\nSub r2, r0, r1\nReturn r2",
        "Overflow",
        "",
    );
    fails_code(
        MIN_MAX,
        "LoadConst r0, k1\nLoadInt r1, 2\nMul r2, r0, r1\nReturn r2",
        "Overflow",
        "",
    );
    fails_code(
        &["str s0"],
        "LoadConst r0, k0\nSub r1, r0, r0\nReturn r1",
        "TypeError",
        "",
    );
    fails_code(
        &["str s0"],
        "LoadConst r0, k0\nLoadInt r1, 2\nMul r2, r0, r1\nReturn r2",
        "TypeError",
        "",
    );
}

#[test]
fn div_truncates_and_fails_on_zero_and_min_by_minus_one() {
    value(
        &[],
        "LoadInt r0, 7\nLoadInt r1, -2\nDiv r2, r0, r1\nReturn r2",
        "-3",
    );
    fails_code(
        &[],
        "LoadInt r0, 7\nLoadInt r1, 0\nDiv r2, r0, r1\nReturn r2",
        "DivisionByZero",
        "division by zero",
    );
    fails_code(
        MIN_MAX,
        "LoadConst r0, k0\nLoadInt r1, -1\nDiv r2, r0, r1\nReturn r2",
        "Overflow",
        "",
    );
    // A float on either side follows IEEE: no error.
    value(
        &["float 0.0"],
        "LoadInt r0, 1\nLoadConst r1, k0\nDiv r2, r0, r1\nReturn r2",
        "inf",
    );
    value(
        &["float -1.0"],
        "LoadConst r0, k0\nLoadInt r1, 0\nDiv r2, r0, r1\nReturn r2",
        "-inf",
    );
    value(
        &["float 0.0"],
        "LoadConst r0, k0\nDiv r1, r0, r0\nReturn r1",
        "NaN",
    );
}

#[test]
fn mod_has_the_sign_of_the_dividend_and_fails_like_div() {
    value(
        &[],
        "LoadInt r0, -7\nLoadInt r1, 2\nMod r2, r0, r1\nReturn r2",
        "-1",
    );
    value(
        &[],
        "LoadInt r0, 7\nLoadInt r1, -2\nMod r2, r0, r1\nReturn r2",
        "1",
    );
    fails_code(
        &[],
        "LoadInt r0, 7\nLoadInt r1, 0\nMod r2, r0, r1\nReturn r2",
        "DivisionByZero",
        "",
    );
    fails_code(
        MIN_MAX,
        "LoadConst r0, k0\nLoadInt r1, -1\nMod r2, r0, r1\nReturn r2",
        "Overflow",
        "",
    );
    value(
        &["float -7.5"],
        "LoadConst r0, k0\nLoadInt r1, 2\nMod r2, r0, r1\nReturn r2",
        "-1.5",
    );
}

#[test]
fn neg_addimm_and_not() {
    fails_code(
        MIN_MAX,
        "LoadConst r0, k0\nNeg r1, r0\nReturn r1",
        "Overflow",
        "",
    );
    fails_code(
        &["str s0"],
        "LoadConst r0, k0\nNeg r1, r0\nReturn r1",
        "TypeError",
        "cannot negate a string",
    );
    value(
        &["float 0.0"],
        "LoadConst r0, k0\nNeg r1, r0\nReturn r1",
        "-0.0",
    );
    fails_code(
        MIN_MAX,
        "LoadConst r0, k1\nAddImm r1, r0, 1\nReturn r1",
        "Overflow",
        "",
    );
    value(
        &["float 0.5"],
        "LoadConst r0, k0\nAddImm r1, r0, -1\nReturn r1",
        "-0.5",
    );
    fails_code(
        &[],
        "LoadNull r0\nAddImm r1, r0, 1\nReturn r1",
        "TypeError",
        "",
    );
    fails_code(
        &[],
        "LoadInt r0, 0\nNot r1, r0\nReturn r1",
        "TypeError",
        "`not` needs a bool, found int",
    );
    value(&[], "LoadFalse r0\nNot r1, r0\nReturn r1", "true");
}

/// The immediate forms (`MulImm`, `DivImm`, `ModImm`) against their register forms: the same
/// value or the same error (kind and message) for each left operand, with `imm` in a register.
#[test]
fn immediate_forms_act_like_register_forms() {
    let lefts: &[&str] = &[
        "int 7",
        "int -7",
        "float -7.5",
        "int -9223372036854775808",
        "int 9223372036854775807",
        "str s0",
        "float 0.0",
    ];
    for (imm_op, reg_op) in [("MulImm", "Mul"), ("DivImm", "Div"), ("ModImm", "Mod")] {
        for imm in [2, -1, 0, 1103515245] {
            for left in lefts {
                let consts = [*left];
                let with_imm = format!("LoadConst r0, k0\n{imm_op} r2, r0, {imm}\nReturn r2");
                let with_reg =
                    format!("LoadConst r0, k0\nLoadInt r1, {imm}\n{reg_op} r2, r0, r1\nReturn r2");
                let src = |code| Src {
                    consts: &consts,
                    code,
                    ..Src::default()
                };
                let got = run(&src(&with_imm));
                assert_eq!(got, run(&src(&with_reg)), "\n{with_imm}");
                assert!(!matches!(got, Out::Fatal(_)), "{got:?}\n{with_imm}");
            }
        }
    }
    value(&[], "LoadInt r0, 7\nModImm r1, r0, 3\nReturn r1", "1");
    value(&[], "LoadInt r0, -7\nDivImm r1, r0, 2\nReturn r1", "-3");
    value(&[], "LoadInt r0, -7\nMulImm r1, r0, -3\nReturn r1", "21");
    fails_code(
        &["str s0"],
        "LoadConst r0, k0\nMulImm r1, r0, 2\nReturn r1",
        "TypeError",
        "cannot multiply string and int",
    );
    fails_code(
        &[],
        "LoadInt r0, 7\nDivImm r1, r0, 0\nReturn r1",
        "DivisionByZero",
        "division by zero",
    );
    fails_code(
        &[],
        "LoadInt r0, 7\nModImm r1, r0, 0\nReturn r1",
        "DivisionByZero",
        "remainder by zero",
    );
    fails_code(
        MIN_MAX,
        "LoadConst r0, k1\nMulImm r1, r0, 2\nReturn r1",
        "Overflow",
        "integer overflow in multiply",
    );
    fails_code(
        MIN_MAX,
        "LoadConst r0, k0\nDivImm r1, r0, -1\nReturn r1",
        "Overflow",
        "",
    );
    fails_code(
        MIN_MAX,
        "LoadConst r0, k0\nModImm r1, r0, -1\nReturn r1",
        "Overflow",
        "",
    );
}

/// The result of an immediate form carries the label of its register operand: untrusted for a
/// number read from an untrusted file (int and float), trusted for a literal.
#[test]
fn immediate_forms_keep_the_label_of_the_register_operand() {
    let dir = std::env::temp_dir().join(format!("aivm-claims-imm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (text, op, want) in [
        ("12", "MulImm", "[84,\"untrusted\"]"),
        ("12", "DivImm", "[1,\"untrusted\"]"),
        ("12", "ModImm", "[5,\"untrusted\"]"),
        ("-12", "ModImm", "[-5,\"untrusted\"]"),
        ("1.5", "MulImm", "[10.5,\"untrusted\"]"),
        ("1.5", "DivImm", "[0.21428571428571427,\"untrusted\"]"),
    ] {
        let file = dir.join(format!("n{text}"));
        std::fs::write(&file, text).expect("write the input");
        let path = file.to_str().expect("a UTF-8 temp path");
        let to_num = if text.contains('.') { "n2" } else { "n1" };
        // r1 := untrusted text; r2 := its number; r3 := r2 op 7; r4 := label of r3.
        let code = format!(
            "LoadConst r0, k0\nEffect r1, n0, r0+1\nCallNative r2, {to_num}, r1+1\n\
             {op} r3, r2, 7\nCallNative r4, n3, r3+1\nNewList r5, r3+2\nReturn r5"
        );
        let src = Src {
            strings: &[path],
            consts: &["str s1"],
            natives: &["fs.read", "core.int", "core.float", "core.label_of"],
            code: &code,
            ..Src::default()
        };
        // Files read are untrusted by default.
        let policy = aivm_vm::policy::PolicyBuilder::new(".")
            .flags(&aivm_vm::policy::GrantFlags {
                allow_read: Some(vec![dir.display().to_string()]),
                ..Default::default()
            })
            .expect("valid grants")
            .build();
        let got = run_under(&src, Limits::default(), policy);
        assert_eq!(got, Out::Value(want.into()), "\n{code}");
    }
    std::fs::remove_dir_all(&dir).ok();
    let code =
        "LoadInt r0, 12\nModImm r3, r0, 7\nCallNative r4, n0, r3+1\nNewList r5, r3+2\nReturn r5";
    let src = Src {
        natives: &["core.label_of"],
        code,
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("[5,\"trusted\"]".into()));
}

// ---- comparison and text ----------------------------------------------------------------

#[test]
fn eq_is_structural_and_never_fails() {
    // Different kinds are unequal, not an error.
    value(
        &["str s0"],
        "LoadInt r0, 1\nLoadConst r1, k0\nEq r2, r0, r1\nReturn r2",
        "false",
    );
    // An int equals the float of the same number.
    value(
        &["float 1.0"],
        "LoadInt r0, 1\nLoadConst r1, k0\nEq r2, r0, r1\nReturn r2",
        "true",
    );
    // NaN is unequal to itself.
    value(
        &["float NaN"],
        "LoadConst r0, k0\nEq r1, r0, r0\nNe r2, r0, r0\nNewList r3, r1+2\nReturn r3",
        "[false,true]",
    );
    // Two distinct lists with equal items are equal.
    value(
        &[],
        "LoadInt r0, 1\nNewList r1, r0+1\nNewList r2, r0+1\nEq r3, r1, r2\nReturn r3",
        "true",
    );
    // Maps are equal whatever their order.
    let src = Src {
        strings: &["b"],
        consts: &["str s0", "str s1"],
        code: "LoadConst r0, k0\nLoadInt r1, 1\nLoadConst r2, k1\nLoadInt r3, 2\nNewMap r4, r0+4\n\
         Move r0, r2\nLoadInt r1, 2\nLoadConst r2, k0\nLoadInt r3, 1\nNewMap r5, r0+4\n\
         Eq r6, r4, r5\nReturn r6",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("true".into()));
    // Ranges are equal by their bounds.
    value(
        &[],
        "LoadInt r0, 1\nLoadInt r1, 3\nRange r2, r0, r1\nRange r3, r0, r1\nEq r4, r2, r3\n\
         Return r4",
        "true",
    );
}

#[test]
fn order_needs_two_numbers_or_two_strings() {
    fails_code(
        &["str s0"],
        "LoadInt r0, 1\nLoadConst r1, k0\nLt r2, r0, r1\nReturn r2",
        "TypeError",
        "cannot compare int and string",
    );
    fails_code(
        &[],
        "LoadNull r0\nLe r1, r0, r0\nReturn r1",
        "TypeError",
        "",
    );
    // Strings by code point: "Z" < "a".
    let src = Src {
        strings: &["Z", "a"],
        consts: &["str s1", "str s2"],
        code: "LoadConst r0, k0\nLoadConst r1, k1\nLt r2, r0, r1\nReturn r2",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("true".into()));
    // Mixed numbers compare as floats; NaN compares false.
    value(
        &["float 1.5", "float NaN"],
        "LoadInt r0, 1\nLoadConst r1, k0\nLe r2, r0, r1\nLoadConst r3, k1\nLt r4, r3, r0\n\
         Le r5, r0, r3\nNewList r6, r4+2\nNewList r7, r2+1\nNewList r4, r6+2\nReturn r4",
        "[[false,false],[true]]",
    );
}

#[test]
fn tostr_and_concat_take_any_value() {
    // Concat formats each part as printing does: strings raw at top level.
    value(
        &["str s0"],
        "LoadInt r0, 1\nLoadConst r1, k0\nLoadNull r2\nNewList r3, r1+2\nConcat r4, r0+4\nReturn r4",
        "\"1mainnull[\\\"main\\\", null]\"",
    );
    value(
        &["float 1.0"],
        "LoadConst r0, k0\nToStr r1, r0\nReturn r1",
        "\"1.0\"",
    );
    value(
        &["str s0"],
        "LoadConst r0, k0\nToStr r1, r0\nReturn r1",
        "\"main\"",
    );
    value(&[], "Concat r0, r0+0\nReturn r0", "\"\"");
}

// ---- jumps ------------------------------------------------------------------------------

#[test]
fn conditions_must_be_bools() {
    for op in ["JumpIf", "JumpIfNot"] {
        fails_code(
            &[],
            &format!("LoadInt r0, 1\n{op} r0, @end\nend:\nReturn r0"),
            "TypeError",
            "condition must be a bool, found int",
        );
        fails_code(
            &[],
            &format!("LoadNull r0\n{op} r0, @end\nend:\nReturn r0"),
            "TypeError",
            "found null",
        );
    }
}

#[test]
fn jump_if_not_lt_jumps_unless_less() {
    // NaN is not less than anything: the jump is taken.
    value(
        &["float NaN"],
        "LoadConst r0, k0\nLoadInt r1, 1\nLoadTrue r2\nJumpIfNotLt r0, r1, @out\nLoadFalse r2\n\
         out:\nReturn r2",
        "true",
    );
    fails_code(
        &["str s0"],
        "LoadInt r0, 1\nLoadConst r1, k0\nJumpIfNotLt r0, r1, @out\nout:\nReturn r0",
        "TypeError",
        "cannot compare",
    );
}

// ---- collections ------------------------------------------------------------------------

#[test]
fn new_map_needs_string_or_int_keys_and_keeps_first_position() {
    fails_code(
        &["float 1.5"],
        "LoadConst r0, k0\nLoadInt r1, 1\nNewMap r2, r0+2\nReturn r2",
        "TypeError",
        "map keys must be strings or ints, found float",
    );
    // A repeated key keeps its first position and its last value.
    value(
        &["str s0"],
        "LoadConst r0, k0\nLoadInt r1, 1\nLoadInt r2, 7\nLoadInt r3, 2\nLoadConst r4, k0\n\
         LoadInt r5, 3\nNewMap r6, r0+6\nReturn r6",
        "{\"main\":3,\"7\":2}",
    );
}

#[test]
fn get_index_checks_kinds_and_ranges() {
    let list3 = "LoadInt r0, 10\nLoadInt r1, 11\nLoadInt r2, 12\nNewList r3, r0+3\n";
    fails_code(
        &[],
        &format!("{list3}LoadInt r4, -1\nGetIndex r5, r3, r4\nReturn r5"),
        "IndexError",
        "negative index -1",
    );
    fails_code(
        &[],
        &format!("{list3}LoadInt r4, 3\nGetIndex r5, r3, r4\nReturn r5"),
        "IndexError",
        "index 3 is out of range for a list of length 3",
    );
    value(
        &[],
        &format!("{list3}LoadInt r4, 2\nGetIndex r5, r3, r4\nReturn r5"),
        "12",
    );
    fails_code(
        &["str s0"],
        &format!("{list3}LoadConst r4, k0\nGetIndex r5, r3, r4\nReturn r5"),
        "TypeError",
        "cannot index a list with a string",
    );
    // A map by key: an int key is not the string of its digits.
    fails_code(
        &["str s0"],
        "LoadInt r0, 1\nLoadInt r1, 2\nNewMap r2, r0+2\nLoadConst r3, k0\nGetIndex r4, r2, r3\n\
         Return r4",
        "KeyError",
        "key \"main\" not found",
    );
    value(
        &[],
        "LoadInt r0, 1\nLoadInt r1, 2\nNewMap r2, r0+2\nGetIndex r3, r2, r0\nReturn r3",
        "2",
    );
    // A string by character index.
    let src = Src {
        strings: &["héllo"],
        consts: &["str s1"],
        code: "LoadConst r0, k0\nLoadInt r1, 1\nGetIndex r2, r0, r1\nReturn r2",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("\"é\"".into()));
    let src = Src {
        strings: &["héllo"],
        consts: &["str s1"],
        code: "LoadConst r0, k0\nLoadInt r1, 5\nGetIndex r2, r0, r1\nReturn r2",
        ..Src::default()
    };
    fails(&src, "IndexError", "for a string of length 5");
    // A record by field name, as GetField.
    let src = Src {
        strings: &["a"],
        consts: &["shape [s1]", "str s1"],
        code: "LoadInt r0, 5\nNewRecord r1, k0, r0+1\nLoadConst r2, k1\nGetIndex r3, r1, r2\n\
               Return r3",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("5".into()));
    fails_code(
        &[],
        "LoadInt r0, 1\nGetIndex r1, r0, r0\nReturn r1",
        "TypeError",
        "cannot index a int with a int",
    );
}

#[test]
fn set_index_never_grows_a_list_and_adds_map_keys() {
    let list2 = "LoadInt r0, 10\nLoadInt r1, 11\nNewList r3, r0+2\n";
    fails_code(
        &[],
        &format!("{list2}LoadInt r4, 2\nSetIndex r3, r4, r0\nReturn r3"),
        "IndexError",
        "index 2 is out of range",
    );
    fails_code(
        &[],
        &format!("{list2}LoadInt r4, -1\nSetIndex r3, r4, r0\nReturn r3"),
        "IndexError",
        "negative index",
    );
    value(
        &[],
        &format!("{list2}LoadInt r4, 1\nSetIndex r3, r4, r0\nReturn r3"),
        "[10,10]",
    );
    value(
        &[],
        "NewMap r0, r0+0\nLoadInt r1, 5\nLoadInt r2, 6\nSetIndex r0, r1, r2\nReturn r0",
        "{\"5\":6}",
    );
    fails_code(
        &["str s0"],
        "LoadConst r0, k0\nLoadInt r1, 0\nSetIndex r0, r1, r1\nReturn r0",
        "TypeError",
        "cannot set an element of a string",
    );
}

#[test]
fn fields_of_records_maps_and_errors() {
    let base = Src {
        strings: &["a", "b", "kind", "message", "payload", "K", "M"],
        consts: &["shape [s1]", "str s6", "str s7"],
        ..Src::default()
    };
    let with = |code: &'static str| Src {
        code,
        strings: base.strings,
        consts: base.consts,
        ..Src::default()
    };
    // A record has exactly its shape's fields: reading or setting another is a KeyError.
    fails(
        &with("LoadInt r0, 1\nNewRecord r1, k0, r0+1\nGetField r2, r1, s2\nReturn r2"),
        "KeyError",
        "record has no field \"b\"",
    );
    fails(
        &with("LoadInt r0, 1\nNewRecord r1, k0, r0+1\nSetField r1, s2, r0\nReturn r1"),
        "KeyError",
        "record has no field \"b\"",
    );
    assert_eq!(
        run(&with(
            "LoadInt r0, 1\nNewRecord r1, k0, r0+1\nLoadInt r2, 2\nSetField r1, s1, r2\n\
             GetField r3, r1, s1\nReturn r3"
        )),
        Out::Value("2".into())
    );
    // A map's field is its string key; SetField adds the key.
    assert_eq!(
        run(&with(
            "NewMap r0, r0+0\nLoadInt r1, 3\nSetField r0, s2, r1\nGetField r2, r0, s2\nReturn r2"
        )),
        Out::Value("3".into())
    );
    fails(
        &with("NewMap r0, r0+0\nGetField r1, r0, s1\nReturn r1"),
        "KeyError",
        "key \"a\" not found",
    );
    // An error has kind, message and payload, and nothing else; its fields cannot be set.
    let err = "LoadConst r0, k1\nLoadConst r1, k2\nCallNative r2, n0, r0+2\n";
    let natives: &[&str] = &["core.error"];
    let mk = |tail: &str| format!("{err}{tail}");
    for (tail, want) in [
        ("GetField r3, r2, s3\nReturn r3", Out::Value("\"K\"".into())),
        ("GetField r3, r2, s4\nReturn r3", Out::Value("\"M\"".into())),
        ("GetField r3, r2, s5\nReturn r3", Out::Value("null".into())),
    ] {
        let code = mk(tail);
        let src = Src {
            natives,
            code: &code,
            ..with("")
        };
        assert_eq!(run(&src), want, "{code}");
    }
    let code = mk("GetField r3, r2, s1\nReturn r3");
    fails(
        &Src {
            natives,
            code: &code,
            ..with("")
        },
        "KeyError",
        "an error has no field \"a\"",
    );
    let code = mk("SetField r2, s3, r0\nReturn r2");
    fails(
        &Src {
            natives,
            code: &code,
            ..with("")
        },
        "TypeError",
        "cannot set field \"kind\" of a error",
    );
    fails(
        &with("LoadInt r0, 1\nGetField r1, r0, s1\nReturn r1"),
        "TypeError",
        "cannot read field \"a\" of a int",
    );
    fails(
        &with("NewList r0, r0+0\nSetField r0, s1, r0\nReturn r0"),
        "TypeError",
        "cannot set field \"a\" of a list",
    );
}

#[test]
fn slices_are_not_clamped() {
    let list3 = "LoadInt r0, 10\nLoadInt r1, 11\nLoadInt r2, 12\nNewList r3, r0+3\n";
    // Null bounds are open.
    value(
        &[],
        &format!("{list3}LoadInt r4, 1\nLoadNull r5\nSlice r6, r3, r4, r5\nReturn r6"),
        "[11,12]",
    );
    value(
        &[],
        &format!("{list3}LoadNull r4\nLoadInt r5, 1\nSlice r6, r3, r4, r5\nReturn r6"),
        "[10]",
    );
    value(
        &[],
        &format!("{list3}LoadInt r4, 3\nSlice r6, r3, r4, r4\nReturn r6"),
        "[]",
    );
    for (lo, hi, msg) in [
        (2, 1, "slice 2:1 is out of range"),
        (0, 4, "slice 0:4 is out of range for a list of length 3"),
        (-1, 2, "slice -1:2"),
    ] {
        fails_code(
            &[],
            &format!("{list3}LoadInt r4, {lo}\nLoadInt r5, {hi}\nSlice r6, r3, r4, r5\nReturn r6"),
            "IndexError",
            msg,
        );
    }
    fails_code(
        &["float 1.0"],
        &format!("{list3}LoadConst r4, k0\nLoadNull r5\nSlice r6, r3, r4, r5\nReturn r6"),
        "TypeError",
        "slice bounds must be ints, found float",
    );
    // Strings slice by character.
    let src = Src {
        strings: &["héllo"],
        consts: &["str s1"],
        code: "LoadConst r0, k0\nLoadInt r1, 1\nLoadInt r2, 3\nSlice r3, r0, r1, r2\nReturn r3",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("\"él\"".into()));
    fails_code(
        &[],
        "NewMap r0, r0+0\nLoadNull r1\nSlice r2, r0, r1, r1\nReturn r2",
        "TypeError",
        "cannot slice a map",
    );
}

#[test]
fn ranges_need_ints_and_may_be_empty() {
    fails_code(
        &["float 2.0"],
        "LoadInt r0, 0\nLoadConst r1, k0\nRange r2, r0, r1\nReturn r2",
        "TypeError",
        "a range needs two ints, found int and float",
    );
    // lo >= hi iterates nothing.
    value(
        &[],
        "LoadInt r0, 5\nLoadInt r1, 2\nRange r2, r0, r1\nIterNew r3, r2\nLoadTrue r4\n\
         IterNext r5, r3, @done\nLoadFalse r4\ndone:\nReturn r4",
        "true",
    );
}

/// Collects every item an iterator over what `setup` leaves in r2 yields (`IterNext2` when
/// `pair`), then the values the exhausted instruction wrote.
fn collect(setup: &str, strings: &[&str], consts: &[&str], pair: bool) -> Out {
    let next = if pair {
        "IterNext2 r4, r5, r3, @done\nNewList r7, r4+2"
    } else {
        "IterNext r4, r3, @done\nMove r7, r4"
    };
    let tail = if pair {
        "NewList r7, r4+2"
    } else {
        "Move r7, r4"
    };
    let code = format!(
        "{setup}IterNew r3, r2\nNewList r6, r0+0\ntop:\n{next}\nMove r0, r6\nMove r1, r7\n\
         CallNative r4, n0, r0+2\nJump @top\ndone:\n{tail}\nMove r0, r6\nMove r1, r7\n\
         NewList r2, r0+2\nReturn r2"
    );
    run(&Src {
        strings,
        consts,
        natives: &["list.push"],
        code: &code,
        ..Src::default()
    })
}

#[test]
fn iteration_over_each_kind() {
    let range = "LoadInt r0, 5\nLoadInt r1, 7\nRange r2, r0, r1\n";
    assert_eq!(
        collect(range, &[], &[], true),
        Out::Value("[[[0,5],[1,6]],[null,null]]".into())
    );
    assert_eq!(
        collect(range, &[], &[], false),
        Out::Value("[[5,6],null]".into())
    );
    let map = "LoadConst r0, k0\nLoadInt r1, 1\nLoadInt r2, 9\nLoadInt r3, 2\nNewMap r2, r0+4\n";
    assert_eq!(
        collect(map, &["b"], &["str s1"], false),
        Out::Value("[[\"b\",9],null]".into())
    );
    assert_eq!(
        collect(map, &["b"], &["str s1"], true),
        Out::Value("[[[\"b\",1],[9,2]],[null,null]]".into())
    );
    let text = "LoadConst r2, k0\n";
    assert_eq!(
        collect(text, &["hé"], &["str s1"], true),
        Out::Value("[[[0,\"h\"],[1,\"é\"]],[null,null]]".into())
    );
    let list = "LoadInt r0, 3\nLoadInt r1, 4\nNewList r2, r0+2\n";
    assert_eq!(
        collect(list, &[], &[], true),
        Out::Value("[[[0,3],[1,4]],[null,null]]".into())
    );
}

#[test]
fn iterating_a_non_iterable_is_a_type_error() {
    fails_code(
        &[],
        "LoadInt r0, 1\nIterNew r1, r0\nReturn r1",
        "TypeError",
        "cannot iterate over a int",
    );
    // IterNext on something that is not an iterator: a catchable TypeError, not a VM fault.
    fails_code(
        &[],
        "NewList r0, r0+0\nIterNext r1, r0, @end\nend:\nReturn r1",
        "TypeError",
        "IterNext needs a iterator, found list",
    );
    // IterNew of an iterator is that iterator: both advance together.
    value(
        &[],
        "LoadInt r0, 0\nLoadInt r1, 3\nRange r2, r0, r1\nIterNew r3, r2\nIterNew r4, r3\n\
         IterNext r5, r3, @end\nIterNext r5, r4, @end\nend:\nReturn r5",
        "1",
    );
}

// ---- cells and closures -----------------------------------------------------------------

#[test]
fn cells_and_captures_fail_catchably_when_misused() {
    fails_code(
        &[],
        "LoadInt r0, 1\nCellGet r1, r0\nReturn r1",
        "TypeError",
        "CellGet needs a cell, found int",
    );
    fails_code(
        &[],
        "LoadInt r0, 1\nCellSet r0, r0\nReturn r0",
        "TypeError",
        "CellSet needs a cell, found int",
    );
    // A closure captures cells only.
    let src = Src {
        code: "LoadInt r0, 1\nClosure r1, f1, r0+1\nReturn r1",
        extra:
            ".func f1 s0\n    ret t0\n    regs 1\n    caps 1\n    UpvalGet r0, 0\n    Return r0\n",
        ..Src::default()
    };
    fails(
        &src,
        "TypeError",
        "a closure can only capture cells, found int",
    );
    // A function with captures called directly (not as a closure) has no cells to read.
    let src = Src {
        code: "CallFn r0, f1, r0+0\nReturn r0",
        extra:
            ".func f1 s0\n    ret t0\n    regs 1\n    caps 1\n    UpvalGet r0, 0\n    Return r0\n",
        ..Src::default()
    };
    fails(&src, "TypeError", "captured variable 0 is missing");
    // Cells are shared: a closure's UpvalSet is seen through the caller's cell.
    let src = Src {
        code: "LoadInt r0, 1\nCellNew r0, r0\nClosure r1, f1, r0+1\nCall r2, r1, r2+0\n\
               CellGet r3, r0\nReturn r3",
        extra: ".func f1 s0\n    ret t0\n    regs 1\n    caps 1\n    LoadInt r0, 42\n    \
                UpvalSet 0, r0\n    Return r0\n",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("42".into()));
}

// ---- calls, errors and types ------------------------------------------------------------

const ID: &str = ".func f1 s0\n    params s0: t0\n    ret t0\n    regs 1\n    Return r0\n";

#[test]
fn call_checks_the_callee_and_its_arity() {
    fails_code(
        &[],
        "LoadInt r0, 1\nCall r1, r0, r0+1\nReturn r1",
        "TypeError",
        "cannot call a int",
    );
    let src = Src {
        code: "LoadFunc r0, f1\nLoadInt r1, 1\nLoadInt r2, 2\nCall r3, r0, r1+2\nReturn r3",
        extra: ID,
        ..Src::default()
    };
    fails(&src, "TypeError", "main takes 1 argument but 2 were given");
    let src = Src {
        code: "LoadFunc r0, f1\nLoadInt r1, 7\nCall r3, r0, r1+1\nReturn r3",
        extra: ID,
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("7".into()));
}

#[test]
fn call_native_raises_the_natives_errors() {
    let src = Src {
        natives: &["list.pop"],
        code: "NewList r0, r0+0\nCallNative r1, n0, r0+1\nReturn r1",
        ..Src::default()
    };
    fails(&src, "IndexError", "pop from an empty list");
    let src = Src {
        natives: &["core.len"],
        code: "LoadInt r0, 1\nCallNative r1, n0, r0+1\nReturn r1",
        ..Src::default()
    };
    fails(
        &src,
        "TypeError",
        "len expects a string, list or map, found int",
    );
}

#[test]
fn throw_wraps_non_errors_and_raises_errors_as_they_are() {
    let src = Src {
        strings: &["kind", "message", "payload"],
        code: "LoadInt r0, 5\nNewList r0, r0+1\nTryBegin r1, @h\nThrow r0\nh:\n\
               GetField r2, r1, s1\nGetField r3, r1, s2\nGetField r4, r1, s3\n\
               NewList r5, r2+3\nReturn r5",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("[\"Error\",\"[5]\",[5]]".into()));
    // Uncaught, a non-error is reported as kind Error with its text.
    fails_code(&["str s0"], "LoadConst r0, k0\nThrow r0", "Error", "main");
    let src = Src {
        strings: &["Boom", "bad"],
        consts: &["str s1", "str s2"],
        natives: &["core.error"],
        code: "LoadConst r0, k0\nLoadConst r1, k1\nCallNative r2, n0, r0+2\nThrow r2",
        ..Src::default()
    };
    fails(&src, "Boom", "bad");
}

#[test]
fn try_regions_belong_to_their_frame() {
    // The callee's error unwinds to the caller's handler.
    let src = Src {
        code: "TryBegin r0, @h\nCallFn r1, f1, r1+0\nTryEnd\nLoadInt r0, 0\nReturn r0\nh:\n\
               LoadInt r0, 1\nReturn r0",
        extra: ".func f1 s0\n    ret t0\n    regs 1\n    LoadNull r0\n    Throw r0\n",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("1".into()));
    // After TryEnd the region is over: a later error is not caught.
    fails_code(
        &[],
        "TryBegin r0, @h\nTryEnd\nLoadNull r1\nThrow r1\nh:\nReturn r0",
        "Error",
        "null",
    );
    // A function that returns inside its own region leaves it: the region does not catch
    // errors raised later by its caller.
    let src = Src {
        code: "CallFn r0, f1, r0+0\nLoadNull r1\nThrow r1",
        extra: ".func f1 s0\n    ret t0\n    regs 1\n    TryBegin r0, @h\n    LoadInt r0, 0\n    \
                Return r0\nh:\n    LoadInt r0, 99\n    Return r0\n",
        ..Src::default()
    };
    fails(&src, "Error", "null");
    // A TryEnd with no region of its own frame open does nothing (the caller's region stays).
    let src = Src {
        code: "TryBegin r0, @h\nCallFn r1, f1, r1+0\nLoadNull r1\nThrow r1\nh:\nLoadInt r0, 7\n\
               Return r0",
        extra: ".func f1 s0\n    ret t0\n    regs 1\n    TryEnd\n    LoadNull r0\n    Return r0\n",
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("7".into()));
    // Regions nest: the innermost catches, and an error in a handler goes to the outer one.
    value(
        &[],
        "TryBegin r0, @outer\nTryBegin r1, @inner\nLoadNull r2\nThrow r2\ninner:\n\
         LoadInt r2, 1\nThrow r2\nouter:\nLoadInt r3, 2\nReturn r3",
        "2",
    );
}

#[test]
fn limits_are_not_catchable() {
    let src = Src {
        code: "TryBegin r0, @h\ntop:\nJump @top\nh:\nReturn r0",
        ..Src::default()
    };
    match run_with(
        &src,
        Limits {
            fuel: Some(1000),
            ..Limits::default()
        },
    ) {
        Out::Fatal(m) => assert!(m.contains("fuel exhausted"), "{m}"),
        other => panic!("{other:?}"),
    }
    let src = Src {
        code: "TryBegin r0, @h\nCallFn r1, f1, r1+0\nReturn r1\nh:\nReturn r0",
        extra: ".func f1 s0\n    ret t0\n    regs 1\n    CallFn r0, f1, r0+0\n    Return r0\n",
        ..Src::default()
    };
    match run_with(
        &src,
        Limits {
            max_depth: 50,
            ..Limits::default()
        },
    ) {
        Out::Fatal(m) => assert!(m.contains("stack overflow"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// Runs CheckType of what `setup` leaves in r0 against type `t1` (with `types` as t1..):
/// true when it passes, false when it raises a TypeError.
fn conforms(setup: &str, strings: &[&str], consts: &[&str], types: &[&str]) -> bool {
    let code = format!("{setup}CheckType r0, t1\nLoadTrue r1\nReturn r1");
    match run(&Src {
        strings,
        consts,
        types,
        natives: &["core.error"],
        code: &code,
        ..Src::default()
    }) {
        Out::Value(v) => v == "true",
        Out::Error(k, m) => {
            assert_eq!(k, "TypeError", "{m}");
            assert!(m.starts_with("expected "), "{m}");
            false
        }
        Out::Fatal(m) => panic!("{m}"),
    }
}

#[test]
fn check_type_on_each_type_desc() {
    let int = "LoadInt r0, 1\n";
    let null = "LoadNull r0\n";
    let flt = "LoadConst r0, k0\n";
    let s = "LoadConst r0, k1\n";
    let c: &[&str] = &["float 1.0", "str s1"];
    let st: &[&str] = &["low"];
    let simple = |setup: &str, ty: &str| conforms(setup, st, c, &[ty]);
    assert!(simple(int, "any") && simple(null, "any"));
    assert!(simple(null, "null") && !simple(int, "null"));
    assert!(simple("LoadTrue r0\n", "bool") && !simple(int, "bool"));
    assert!(simple(int, "int") && !simple(flt, "int"));
    // An int is not a float (no implicit conversion at run time either).
    assert!(simple(flt, "float") && !simple(int, "float"));
    assert!(simple(s, "str") && !simple(int, "str"));
    assert!(simple("LoadFunc r0, f0\n", "func") && !simple(s, "func"));
    let err = "LoadConst r0, k1\nCallNative r0, n0, r0+2\n";
    let err_setup = format!("LoadConst r1, k1\n{err}");
    assert!(simple(&err_setup, "error") && !simple(s, "error"));
    assert!(simple(s, "strlit s1"));
    let other = ["str s2"];
    assert!(!conforms(
        "LoadConst r0, k0\n",
        &["low", "high"],
        &other,
        &["strlit s1"]
    ));
    // Compound types refer to t2.. for their parts.
    let two = |setup: &str, t1: &str, t2: &str| conforms(setup, st, c, &[t1, t2]);
    assert!(two(null, "optional t2", "int") && two(int, "optional t2", "int"));
    assert!(!two(s, "optional t2", "int"));
    assert!(two(int, "named s1 t2", "int") && !two(s, "named s1 t2", "int"));
    // Unions: any member.
    assert!(conforms(s, st, c, &["union [t2, t3]", "int", "strlit s1"]));
    assert!(!conforms(
        flt,
        st,
        c,
        &["union [t2, t3]", "int", "strlit s1"]
    ));
    // Lists and maps are checked deeply.
    let list = "LoadInt r0, 1\nLoadInt r1, 2\nNewList r0, r0+2\n";
    let mixed = "LoadInt r0, 1\nLoadNull r1\nNewList r0, r0+2\n";
    assert!(two(list, "list t2", "int") && !two(mixed, "list t2", "int"));
    assert!(two(mixed, "list t0", "int") && !two(int, "list t0", "int"));
    let map = "LoadConst r0, k1\nLoadInt r1, 2\nNewMap r0, r0+2\n";
    assert!(two(map, "map t2", "int") && !two(map, "map t2", "str"));
    assert!(!two(list, "map t2", "int"));
    // Records: every declared field present and conforming; extra fields allowed; a missing
    // optional field is allowed; a map with the fields as keys conforms.
    let rec = "LoadInt r0, 1\nLoadInt r1, 2\nNewRecord r0, k2, r0+2\n";
    let rc: &[&str] = &["float 1.0", "str s1", "shape [s1, s2]"];
    let ss: &[&str] = &["low", "high", "other"];
    let rec_ok = |setup: &str, types: &[&str]| conforms(setup, ss, rc, types);
    assert!(rec_ok(rec, &["record {s1: t2}", "int"]));
    assert!(rec_ok(rec, &["record {s1: t2, s2: t2}", "int"]));
    assert!(!rec_ok(rec, &["record {s3: t2}", "int"]));
    assert!(rec_ok(rec, &["record {s3: t2}", "optional t0"]));
    assert!(!rec_ok(rec, &["record {s1: t2}", "str"]));
    let map_rec = "LoadConst r0, k1\nLoadInt r1, 2\nNewMap r0, r0+2\n";
    assert!(rec_ok(map_rec, &["record {s1: t2}", "int"]));
    assert!(!rec_ok(int, &["record {s1: t2}", "int"]));
}

#[test]
fn check_type_terminates_on_cycles() {
    // A list that contains itself, against a recursive type `T = [T]`.
    let code = "NewList r0, r0+0\nMove r1, r0\nMove r2, r0\nCallNative r3, n0, r1+2\n\
                CheckType r0, t1\nLoadTrue r1\nReturn r1";
    let src = Src {
        strings: &["T"],
        types: &["named s1 t2", "list t1"],
        natives: &["list.push"],
        code,
        ..Src::default()
    };
    assert_eq!(run(&src), Out::Value("true".into()));
}
