//! The assembly text: exact round trips (for valid and invalid modules alike), a golden
//! disassembly, and assembler errors with line and column.

mod common;

use aivm_vm::format::{
    assemble, decode, disassemble, encode, Constant, Function, Instr, Module, Param, TypeDesc,
};
use common::{every_opcode_module, random_any_module, random_valid_module, same, Rng};
use proptest::prelude::*;

fn round_trip(m: &Module) {
    let text = disassemble(m);
    let back = match assemble(&text) {
        Ok(b) => b,
        Err(e) => panic!("{e}\n{text}"),
    };
    assert!(same(&back, m), "round trip changed the module:\n{text}");
    // Printing again gives the same text.
    assert_eq!(disassemble(&back), text);
}

#[test]
fn every_opcode_round_trips_through_text() {
    let m = every_opcode_module();
    round_trip(&m);
    assert_eq!(assemble(&disassemble(&m)).unwrap(), m);
}

#[test]
fn odd_strings_and_floats_are_exact() {
    let mut m = every_opcode_module();
    for s in [
        "",
        "line\nbreak\r\n",
        "quote \" backslash \\ tab \t nul \0",
        "bell \u{7} del \u{7f} c1 \u{85}",
        "zero width \u{200b} bidi \u{202e} bom \u{feff} sep \u{2028}",
        "emoji 😀 accents éü ß 中文",
        "; not a comment, \"s0\", @L1, r0+4",
    ] {
        m.strings.push(s.to_string());
        let id = (m.strings.len() - 1) as u32;
        m.constants.push(Constant::Str(id));
        m.natives.push(id);
    }
    for bits in [
        0x8000_0000_0000_0000u64,
        0x7ff8_0000_0000_0000,
        0x7ff8_0000_0000_0001,
        0xfff8_0000_0000_0000,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        0x0000_0000_0000_0001,
        0x3fb9_9999_9999_999a,
        0x4341_c379_37e0_8000,
    ] {
        m.constants.push(Constant::Float(f64::from_bits(bits)));
    }
    m.constants.push(Constant::Int(i64::MIN));
    m.constants.push(Constant::Int(i64::MAX));
    round_trip(&m);
    let text = disassemble(&m);
    assert!(text.contains("float -0.0\n"), "{text}");
    assert!(text.contains("float NaN\n"), "{text}");
    assert!(text.contains("float 0x7ff8000000000001"), "{text}");
    assert!(text.contains("float 0.1\n"), "{text}");
    assert!(text.contains("\"line\\nbreak\\r\\n\""), "{text}");
    assert!(text.contains("\\u{200b}"), "{text}");
}

#[test]
fn invalid_modules_round_trip_too() {
    let mut m = Module::default();
    m.strings.push("f".into());
    m.functions.push(Function {
        name: 99,
        params: vec![Param { name: 7, ty: 8 }],
        ret: 5,
        nregs: 1,
        ncaps: 0,
        code: vec![
            Instr::Jump { target: 40 },
            Instr::JumpIf {
                cond: 900,
                target: 2,
            },
        ],
        lines: vec![],
        file: Some(3),
        doc: Some(1),
    });
    m.functions.push(Function {
        code: vec![],
        ..m.functions[0].clone()
    });
    m.entry = Some(12);
    m.types.push(TypeDesc::Union(vec![0]));
    round_trip(&m);
    let text = disassemble(&m);
    assert!(text.contains("Jump @40"), "{text}");
    assert!(text.contains("JumpIf r900, @2"), "{text}");
}

#[test]
fn golden_disassembly() {
    let mut m = Module::default();
    for s in [
        "main", "args", "hello\n", "io.print", "x", "Point", "main.ail", "smart", "large",
    ] {
        m.strings.push(s.into());
    }
    m.constants = vec![
        Constant::Str(2),
        Constant::Float(2.5),
        Constant::Shape(vec![4]),
    ];
    m.types = vec![
        TypeDesc::Any,
        TypeDesc::List(2),
        TypeDesc::Str,
        TypeDesc::Record(vec![aivm_vm::format::Field { name: 4, ty: 3 }]),
        TypeDesc::Named {
            name: 5,
            ty: 3,
            doc: None,
        },
    ];
    m.types[3] = TypeDesc::Int;
    m.natives = vec![3];
    m.files = vec![6];
    m.exports = vec![aivm_vm::format::Export { name: 0, func: 0 }];
    m.entry = Some(0);
    m.models = vec![aivm_vm::format::ModelSlot {
        name: 7,
        logical: 8,
    }];
    m.manifest.tools = vec![3];
    m.manifest.read = vec![6];
    m.manifest.endorse = true;
    m.constants.push(Constant::Readers(Some(vec![4])));
    m.constants.push(Constant::Readers(None));
    m.functions.push(Function {
        name: 0,
        params: vec![Param { name: 1, ty: 1 }],
        ret: 0,
        nregs: 3,
        ncaps: 0,
        code: vec![
            Instr::LoadConst { dst: 1, k: 0 },
            Instr::LoadInt { dst: 2, imm: 3 },
            Instr::AddImm {
                dst: 2,
                src: 2,
                imm: -1,
            },
            Instr::Effect {
                dst: 1,
                native: 0,
                args: aivm_vm::format::RegRange::new(1, 1),
            },
            Instr::JumpIfNotLt {
                a: 2,
                b: 2,
                target: 2,
            },
            Instr::NewRecord {
                dst: 1,
                shape: 2,
                vals: aivm_vm::format::RegRange::new(2, 1),
            },
            Instr::Return { src: 2 },
        ],
        lines: vec![aivm_vm::format::LineEntry {
            pc: 0,
            line: 2,
            col: 5,
        }],
        file: Some(0),
        doc: None,
    });
    let text = disassemble(&m);
    let want = r#"; aivm assembly, bytecode format version 3
.strings
    s0 = "main"
    s1 = "args"
    s2 = "hello\n"
    s3 = "io.print"
    s4 = "x"
    s5 = "Point"
    s6 = "main.ail"
    s7 = "smart"
    s8 = "large"
.const
    k0 = str s2                     ; "hello\n"
    k1 = float 2.5
    k2 = shape [s4]                 ; {x}
    k3 = readers [s4]               ; ["x"]
    k4 = readers public
.types
    t0 = any
    t1 = list t2
    t2 = str
    t3 = int
    t4 = named s5 t3                ; Point
.natives
    n0 = s3                         ; io.print
.files
    s6                              ; file 0: "main.ail"
.exports
    s0 = f0                         ; main -> main
.models
    s7 = s8                         ; smart = "large"
.manifest
    tools [s3]                      ; ["io.print"]
    read [s6]                       ; ["main.ail"]
    endorse
.entry f0                           ; main
.func f0 s0                         ; main
    params s1: t1
    ret t0
    regs 3
    caps 0
    file 0                          ; "main.ail"
    line 0 2:5
    LoadConst r1, k0                ; "hello\n"
    LoadInt r2, 3
L2:
    AddImm r2, r2, -1
    Effect r1, n0, r1+1             ; io.print
    JumpIfNotLt r2, r2, @L2
    NewRecord r1, k2, r2+1          ; {x}
    Return r2
"#;
    assert_eq!(text, want);
    assert_eq!(assemble(want).unwrap(), m);
}

#[test]
fn hand_written_text_with_named_labels() {
    let text = r#"
; a loop with a named label, comments and blank lines
.strings
    s0 = "count"   ; the function's name
.types
    t0 = any
.func f0 s0
    regs 2
    LoadInt r0, 0
    LoadInt r1, 10
loop:
    AddImm r0, r0, 1
    JumpIfNotLt r0, r1, @done
    Jump @loop
done:
    Return r0
"#;
    let m = assemble(text).unwrap();
    let code = &m.functions[0].code;
    assert_eq!(
        code[3],
        Instr::JumpIfNotLt {
            a: 0,
            b: 1,
            target: 5
        }
    );
    assert_eq!(code[4], Instr::Jump { target: 2 });
    aivm_vm::format::verify(&m).unwrap();
}

fn asm_err(text: &str) -> String {
    assemble(text).unwrap_err().to_string()
}

#[test]
fn assembler_errors_have_line_and_column() {
    assert_eq!(
        asm_err(".strings\n    s0 = \"a\"\n    s2 = \"b\"\n"),
        "3:5: expected string s1 next, found s2"
    );
    assert_eq!(
        asm_err(".func f0 s0\n    Add r1, k2, r3\n"),
        "2:13: expected operand `a` of Add (a register like `r3`), found `k2`"
    );
    assert_eq!(
        asm_err(".func f0 s0\n    Frobnicate r1\n"),
        "2:5: unknown instruction `Frobnicate`"
    );
    assert_eq!(
        asm_err(".func f0 s0\n    Jump @nowhere\n"),
        "2:10: undefined label `nowhere`"
    );
    assert_eq!(
        asm_err(".strings\n    s0 = \"unterminated\n"),
        "2:10: unterminated string"
    );
    assert_eq!(
        asm_err(".strings\n    s0 = \"bad \\q\"\n"),
        "2:15: unknown escape `\\q`"
    );
    assert_eq!(
        asm_err(".func f0 s0\n    Return r0 r1\n"),
        "2:15: unexpected `r1` at the end of the line"
    );
    assert_eq!(
        asm_err(".func f0 s0\n    Return\n"),
        "2:11: expected operand `src` of Return (a register like `r3`), found the end of the line"
    );
    assert_eq!(
        asm_err("    s0 = \"x\"\n"),
        "1:5: expected a section directive such as `.strings` or `.func`"
    );
    assert_eq!(
        asm_err(".const\n    k0 = float 1.5.5\n"),
        "2:16: expected a float (like `1.5`, `-0.0`, `inf`) or its 16 hex digit bits (like `0x7ff8000000000000`), found `1.5.5`"
    );
    assert_eq!(
        asm_err(".func f0 s0\nx:\nx:\n"),
        "3:1: label `x` is defined twice"
    );
    assert_eq!(asm_err(".bogus\n"), "1:1: unknown directive `.bogus`: expected .strings, .const, .types, .natives, .files, .exports, .models, .manifest, .entry or .func");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn asm_disasm_is_identity_on_valid_modules(seed in any::<u64>()) {
        let m = random_valid_module(&mut Rng(seed));
        let back = assemble(&disassemble(&m)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(&back, &m));
    }

    #[test]
    fn asm_disasm_is_identity_on_any_module(seed in any::<u64>()) {
        let m = random_any_module(&mut Rng(seed));
        let back = assemble(&disassemble(&m)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(&back, &m));
        // Bytes -> module -> text -> module -> bytes, whenever the bytes decode.
        let bytes = encode(&m);
        if let Ok(d) = decode(&bytes) {
            let again = assemble(&disassemble(&d)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(encode(&again), bytes);
        }
    }
}
