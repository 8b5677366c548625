//! The claims of the "Semantics" sections of spec/language.md, checked on small programs:
//! each is compiled from source, run with `io.print` captured, and its output compared with
//! what the spec says.

use aivm_vm::format::VerifiedModule;

use aivm_compiler::compile_source;
use aivm_compiler::render::render;
use aivm_vm::{HostError, HostValue, Limits, Step, Vm, VmError};

/// The lines `main` prints, then `Ok(exit value)` or the uncaught error as `Kind: message`.
fn run(src: &str, args: &[&str]) -> (Vec<String>, Result<String, String>) {
    let c = compile_source("spec.ail", src).unwrap_or_else(|d| panic!("{}", render(&d, false)));
    let mut vm = Vm::new(
        &VerifiedModule::new(c.module).expect("the compiled module verifies"),
        Limits::default(),
    )
    .expect("module loads");
    vm.start_main(args.iter().map(|s| s.to_string()).collect())
        .expect("main starts");
    let mut out = Vec::new();
    loop {
        match vm.run() {
            Ok(Step::Done { value, .. }) => {
                return (out, Ok(value.to_json().to_string()));
            }
            Ok(Step::Effect(req)) => {
                let r = if req.native == "io.print" {
                    out.push(req.args[0].as_str().unwrap_or("?").to_string());
                    Ok(HostValue::null())
                } else {
                    Err(HostError::new("IoError", format!("no {}", req.native)))
                };
                vm.resume(req.task, r).expect("resume");
            }
            Ok(Step::Idle) => panic!("idle before main finished"),
            Err(VmError::Uncaught { kind, message, .. }) => {
                return (out, Err(format!("{kind}: {message}")));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// The printed lines of a program that must finish without an uncaught error.
fn prints(body: &str) -> Vec<String> {
    let src = format!("fn main() {{\n{body}\n}}\n");
    let (out, end) = run(&src, &[]);
    assert!(end.is_ok(), "{end:?}\n{src}");
    out
}

#[test]
fn operands_evaluate_left_to_right() {
    let src = "fn t(log, x) { push(log, x); return x }\n\
               fn main() {\n\
               let log = []\n\
               let _a = t(log, 1) + t(log, 2) * t(log, 3)\n\
               let _b = t(log, 4) > t(log, 5)\n\
               let _c = [t(log, 6), t(log, 7)]\n\
               let m = {\"k\": t(log, 8)}\n\
               m[t(log, \"k\")] = t(log, 9)\n\
               t(log, fn(a, b) { return a })(t(log, 10), t(log, 11))\n\
               print(log)\n}\n";
    let (out, _) = run(src, &[]);
    assert_eq!(
        out,
        ["[1, 2, 3, 4, 5, 6, 7, 8, \"k\", 9, <fn lambda>, 10, 11]"]
    );
}

#[test]
fn scopes_shadow_and_blocks_end_them() {
    assert_eq!(
        prints(
            "let x = 1\nlet x = x + 1\nprint(x)\nif true { let x = 10; print(x) }\nprint(x)\n\
             for x in 0..1 { print(x) }\nprint(x)"
        ),
        ["2", "10", "2", "0", "2"]
    );
}

#[test]
fn closures_share_variables_and_loops_bind_fresh_ones() {
    assert_eq!(
        prints(
            "let n = 0\nlet inc = fn() { n = n + 1 }\ninc(); inc()\nprint(n)\n\
             let fs = []\nfor i in 0..3 { push(fs, fn() { return i }) }\n\
             print([fs[0](), fs[1](), fs[2]()])\n\
             let gs = []\nfor s in [\"a\", \"b\"] { push(gs, fn() { return s }) }\n\
             print([gs[0](), gs[1]()])\n\
             fn fact(k) { if k <= 1 { return 1 }; return k * fact(k - 1) }\nprint(fact(5))"
        ),
        ["2", "[0, 1, 2]", "[\"a\", \"b\"]", "120"]
    );
}

#[test]
fn range_loops_evaluate_bounds_once_and_own_their_counter() {
    assert_eq!(
        prints(
            "let m = 3\nfor i in 0..m { m = 10; print(i) }\n\
             for i in 0..2 { i = i + 10; print(i) }"
        ),
        ["0", "1", "2", "10", "11"]
    );
}

#[test]
fn range_loop_bounds_must_be_ints_at_run_time() {
    // Unannotated (`any`) bounds are checked when the loop starts, as `a..b` would be.
    let (out, end) = run(
        "fn main() {\nlet a = 0.5\nfor i in a..3 { print(i) }\n}\n",
        &[],
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(end, Err("TypeError: expected int, found float".into()));
    let (out, end) = run(
        "fn main() {\nlet b = \"x\"\nfor i in 0..b { print(i) }\n}\n",
        &[],
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(end, Err("TypeError: expected int, found string".into()));
}

#[test]
fn compound_assignment_evaluates_its_target_once() {
    let src = "fn t(log, x) { push(log, x); return x }\n\
               fn main() {\n\
               let log = []\n\
               let xs = [1, 2]\n\
               xs[t(log, 0)] += t(log, 5)\n\
               let r = {n: 1}\n\
               t(log, r).n *= 3\n\
               print(xs)\nprint(r)\nprint(log)\n}\n";
    let (out, _) = run(src, &[]);
    assert_eq!(out, ["[6, 2]", "{n: 3}", "[0, 5, {n: 3}]"]);
}

#[test]
fn and_or_short_circuit_and_need_bools() {
    assert_eq!(
        prints(
            "let one = 1\nprint(false and one)\nprint(true or one)\n\
             try { print(true and one) } catch e { print(e) }"
        ),
        [
            "false",
            "true",
            "TypeError: condition must be a bool, found int"
        ]
    );
}

#[test]
fn throw_and_catch() {
    assert_eq!(
        prints(
            "try { throw {a: 1} } catch e { print(e.kind); print(e.message); print(e.payload) }\n\
             try { throw error(\"Mine\", \"boom\") } catch e { print(e); print(e.payload) }\n\
             try { let _z = 1 / 0 } catch e { print(type_of(e)); print(e.kind) }\n\
             try { try { throw \"in\" } catch e { throw e } } catch e2 { print(e2.message) }"
        ),
        [
            "Error",
            "{a: 1}",
            "{a: 1}",
            "Mine: boom",
            "null",
            "error",
            "DivisionByZero",
            "in"
        ]
    );
}

#[test]
fn loops_leave_try_regions_they_break_out_of() {
    assert_eq!(
        prints(
            "for i in 0..3 { try { if i == 1 { break } } catch e { print(e) } }\n\
             try { throw \"after\" } catch e { print(e.message) }"
        ),
        ["after"]
    );
}

#[test]
fn annotations_are_checked_at_run_time_when_unknown_statically() {
    let src = "type Level = \"low\" | \"high\"\n\
               fn lvl(l: Level) -> string { return l }\n\
               fn f(x: int) -> int { return x }\n\
               fn g(x) -> int { return x }\n\
               fn main() {\n\
               let s = \"low\"\nprint(lvl(s))\n\
               let u = \"mid\"\ntry { print(lvl(u)) } catch e { print(e) }\n\
               let a = \"1\"\ntry { print(f(a)) } catch e { print(e) }\n\
               try { print(g(\"x\")) } catch e { print(e) }\n\
               let o: int? = null\ntry { let _p: int = o } catch e { print(e) }\n\
               let h = f\ntry { print(h(1, 2)) } catch e { print(e) }\n\
               let k: int = 1\nlet v = \"s\"\ntry { k = v } catch e { print(e) }\n\
               print(k)\n}\n";
    let (out, end) = run(src, &[]);
    assert_eq!(end, Ok("null".into()));
    assert_eq!(
        out,
        [
            "low",
            "TypeError: expected Level, found string",
            "TypeError: expected int, found string",
            "TypeError: expected int, found string",
            "TypeError: expected int, found null",
            "TypeError: f takes 1 argument but 2 were given",
            "TypeError: expected int, found string",
            "1"
        ]
    );
}

#[test]
fn main_gets_the_arguments_and_returns_the_status() {
    let (out, end) = run(
        "fn main(args: [string]) -> int { print(args); return len(args) }",
        &["a", "b"],
    );
    assert_eq!(out, ["[\"a\", \"b\"]"]);
    assert_eq!(end, Ok("2".into()));
    let (_, end) = run("fn main() { }", &[]);
    assert_eq!(end, Ok("null".into()));
}

#[test]
fn text_of_values() {
    assert_eq!(
        prints(
            "print(\"{1.0} {0.1 + 0.2} {1e16} {-0.0} {7 / -2} {-7 % 2}\")\n\
             print({b: 1, a: \"x\"})\nprint({\"z\": 1, \"a\": [\"q\"]})\n\
             print(0..3)\nprint(str(fn(x) { return x }))"
        ),
        [
            "1.0 0.30000000000000004 1e16 -0.0 -3 -1",
            "{b: 1, a: \"x\"}",
            "{\"z\": 1, \"a\": [\"q\"]}",
            "0..3",
            "<fn lambda>"
        ]
    );
}

#[test]
fn loops_read_lists_live_and_element_stores_are_unchecked() {
    assert_eq!(
        prints(
            "let xs = [1]\nfor x in xs { if x < 3 { push(xs, x + 1) } }\nprint(xs)\n\
             let ys: [int] = [1]\nys[0] = \"s\"\nprint(ys)"
        ),
        ["[1, 2, 3]", "[\"s\"]"]
    );
}
