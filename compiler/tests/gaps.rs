//! Closed gaps of the back end: mutually recursive nested functions, type checks of stores
//! into record fields, and `if a < b` (compiled to `JumpIfNotLt`) failing exactly like `a < b`.

mod common;

use aivm_compiler::compile_source;
use aivm_compiler::render::render;

/// Compiles `src` and runs `main`, returning what it printed.
fn output(src: &str) -> Vec<String> {
    let c = compile_source("gap.ail", src).unwrap_or_else(|d| panic!("{}", render(&d, false)));
    common::printed(c.module, "gap.ail")
}

/// The codes of the errors compiling `src` reports.
fn errors(src: &str) -> Vec<&'static str> {
    match compile_source("gap.ail", src) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .items
            .iter()
            .filter(|d| d.severity == aivm_compiler::diagnostic::Severity::Error)
            .map(|d| d.code)
            .collect(),
    }
}

#[test]
fn nested_functions_can_call_each_other() {
    let src = r#"
fn main() {
  let base = 0
  fn is_even(n: int) -> bool {
    if n == base { return true }
    return is_odd(n - 1)
  }
  fn is_odd(n: int) -> bool {
    if n == base { return false }
    return is_even(n - 1)
  }
  print("{is_even(10)} {is_odd(7)} {is_even(3)}")
}
"#;
    assert_eq!(output(src), ["true true false"]);
}

#[test]
fn nested_functions_are_visible_in_their_whole_block() {
    // A lambda made before `later` is declared sees it; inner blocks hoist their own.
    let src = r#"
fn main() {
  let early = fn(x) { return later(x) + 1 }
  fn later(x) { return x * 10 }
  print(early(4))
  if true {
    fn ping(n) { if n == 0 { return "ping" } else { return pong(n - 1) } }
    fn pong(n) { if n == 0 { return "pong" } else { return ping(n - 1) } }
    print("{ping(3)} {ping(4)}")
  }
  let counter = 0
  fn bump() { counter += 1; if counter < 3 { again() } }
  fn again() { bump() }
  bump()
  print(counter)
}
"#;
    assert_eq!(output(src), ["41", "pong ping", "3"]);
}

#[test]
fn a_nested_function_called_before_its_statement_is_a_catchable_error() {
    let src = r#"
fn main() {
  try {
    print(too_soon())
  } catch e {
    print(e.kind)
  }
  fn too_soon() { return 1 }
  print(too_soon())
}
"#;
    assert_eq!(output(src), ["TypeError", "1"]);
}

#[test]
fn stores_into_known_record_fields_are_type_checked() {
    let rec = "type T = {n: int, tag: \"a\" | \"b\"}\n";
    let bad_static =
        format!("{rec}fn main() {{\n  let t: T = {{n: 1, tag: \"a\"}}\n  t.n = \"x\"\n}}\n");
    assert_eq!(errors(&bad_static), ["E0301"]);
    let bad_compound =
        format!("{rec}fn main() {{\n  let t: T = {{n: 1, tag: \"a\"}}\n  t.n += 1.5\n}}\n");
    assert_eq!(errors(&bad_compound), ["E0301"]);
    let bad_literal =
        format!("{rec}fn main() {{\n  let t: T = {{n: 1, tag: \"a\"}}\n  t.tag = \"c\"\n}}\n");
    assert_eq!(errors(&bad_literal), ["E0301"]);
    let no_field = format!("{rec}fn main() {{\n  let t: T = {{n: 1, tag: \"a\"}}\n  t.m = 1\n}}\n");
    assert_eq!(errors(&no_field), ["E0305"]);
    let no_fields = "fn main() {\n  let s: string = \"x\"\n  s.n = 1\n}\n";
    assert_eq!(errors(no_fields), ["E0306"]);

    // Values of unknown type are checked when stored; conforming ones are stored.
    let dynamic = format!(
        "{rec}fn main() {{
  let t: T = {{n: 1, tag: \"a\"}}
  let v = \"x\"
  try {{ t.n = v }} catch e {{ print(e.kind) }}
  let w = \"b\"
  t.tag = w
  t.n += 2
  let u = {{n: 1}}
  u.n = \"anything\"
  print(\"{{t}} {{u.n}}\")
}}
"
    );
    assert_eq!(
        output(&dynamic),
        ["TypeError", "{n: 3, tag: \"b\"} anything"]
    );
}

#[test]
fn if_less_than_fails_like_the_less_than_operator() {
    // `if a < b` and `while a < b` compile to `JumpIfNotLt`; `let c = a < b` to `Lt`.
    let src = r#"
fn main() {
  let pairs = [["a", 1], [1, "a"], [null, 2], [[1], [2]], [true, false], [{}, {}]]
  for p in pairs {
    let a = p[0]
    let b = p[1]
    let m1 = ""
    let m2 = ""
    let m3 = ""
    try { let c = a < b; m1 = "no error {c}" } catch e { m1 = "{e.kind}: {e.message}" }
    try { if a < b { m2 = "no error" } else { m2 = "no error" } } catch e { m2 = "{e.kind}: {e.message}" }
    try { while a < b { break } ; m3 = "no error" } catch e { m3 = "{e.kind}: {e.message}" }
    print("{m1 == m2 and m2 == m3} {m1}")
  }
  let nan = 0.0 / 0.0
  let x = nan < 1.0
  if nan < 1.0 { print("wrong") } else { print("nan is not less {x}") }
}
"#;
    let out = output(src);
    assert_eq!(out.len(), 7, "{out:?}");
    for line in &out[..6] {
        assert!(line.starts_with("true TypeError: "), "{line}");
    }
    assert_eq!(out[6], "nan is not less false");
}

#[test]
fn raw_strings_take_their_text_as_it_is() {
    let src = r####"
type Path = r"C:\tmp"
fn main() {
  let r = 1
  let p: Path = "C:\\tmp"
  print(r"{not} \n interpolated")
  print("""
{"json": ["with", "quotes"], "and": "\n stays"}
  second line""")
  print(len(""""""))
  print(r"" + "{r}" + r"\")
  print(p == r"C:\tmp")
}
"####;
    assert_eq!(
        output(src),
        [
            "{not} \\n interpolated",
            "{\"json\": [\"with\", \"quotes\"], \"and\": \"\\n stays\"}\n  second line",
            "0",
            "1\\",
            "true",
        ]
    );
    assert_eq!(
        errors("fn main() {\n  print(r\"never closed)\n}\n"),
        ["E0102"]
    );
    assert_eq!(
        errors("fn main() {\n  print(\"\"\"never \" closed\")\n}\n"),
        ["E0102"]
    );
}

#[test]
fn immediate_operands_act_like_register_operands() {
    // `x * 2`, `x / 2`, `x % 2` compile to `MulImm`/`DivImm`/`ModImm`; with the literal in a
    // variable they compile to `Mul`/`Div`/`Mod`. Values and errors must agree.
    let src = r#"
fn show(f) {
  try { return "{f()}" } catch e { return "{e.kind}: {e.message}" }
}
fn main() {
  let xs = [7, -7, 7.5, -7.5, 9223372036854775807, -9223372036854775807 - 1, "s", null, true]
  let m1 = -1
  let z = 0
  let three = 3
  for x in xs {
    print(show(fn() { return x * -1 }) == show(fn() { return x * m1 }))
    print(show(fn() { return x * 3 }) == show(fn() { return x * three }))
    print(show(fn() { return x / -1 }) == show(fn() { return x / m1 }))
    print(show(fn() { return x / 0 }) == show(fn() { return x / z }))
    print(show(fn() { return x / 3 }) == show(fn() { return x / three }))
    print(show(fn() { return x % -1 }) == show(fn() { return x % m1 }))
    print(show(fn() { return x % 0 }) == show(fn() { return x % z }))
    print(show(fn() { return x % 3 }) == show(fn() { return x % three }))
  }
  print("{-7 % 3} {-7 / 2} {7.5 % 2} {3 * 2} {2 * 3} {10 % 3000000000}")
}
"#;
    let c = compile_source("gap.ail", src).unwrap_or_else(|d| panic!("{}", render(&d, false)));
    let code = format!("{:?}", c.module.functions);
    for op in ["MulImm", "DivImm", "ModImm", "Mul {", "Div {", "Mod {"] {
        assert!(code.contains(op), "no {op} in {code}");
    }
    // A literal that does not fit an i32 stays in a register.
    assert!(!code.contains("imm: 3000000000"), "{code}");
    let out = common::printed(c.module, "gap.ail");
    assert_eq!(out.len(), 9 * 8 + 1, "{out:?}");
    for line in &out[..72] {
        assert_eq!(line, "true", "{out:?}");
    }
    assert_eq!(out[72], "-1 -3 1.5 6 6 10");
}
