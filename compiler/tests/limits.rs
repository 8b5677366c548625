//! Limits: every shape of deep nesting is either compiled or rejected with E0118, and the
//! deepest accepted program of each shape compiles (and verifies) on a 2 MiB thread stack, the
//! default for spawned threads, so the limit leaves real headroom. Very long flat programs
//! compile or get a size diagnostic (E0401), never a panic or a module the verifier rejects.

use aivm_compiler::compile_source;
use aivm_compiler::diagnostic::Diagnostics;

/// A program whose nesting is `n` deep in one way.
type Shape = fn(usize) -> String;

fn in_main(expr: &str) -> String {
    format!("fn main() {{\n  let x = {expr}\n  print(x)\n}}\n")
}

fn shapes() -> Vec<(&'static str, Shape)> {
    vec![
        ("parentheses", |n| {
            in_main(&format!("{}1{}", "(".repeat(n), ")".repeat(n)))
        }),
        ("lists", |n| {
            in_main(&format!("{}1{}", "[".repeat(n), "]".repeat(n)))
        }),
        ("records", |n| {
            in_main(&format!("{}1{}", "{a: ".repeat(n), "}".repeat(n)))
        }),
        ("maps", |n| {
            in_main(&format!("{}1{}", "{\"a\": ".repeat(n), "}".repeat(n)))
        }),
        ("negations", |n| in_main(&format!("{}1", "- ".repeat(n)))),
        ("nots", |n| in_main(&format!("{}true", "not ".repeat(n)))),
        ("fields", |n| in_main(&format!("x{}", ".b".repeat(n)))),
        ("calls", |n| in_main(&format!("print{}", "()".repeat(n)))),
        ("indexes", |n| in_main(&format!("[1]{}", "[0]".repeat(n)))),
        ("sums", |n| in_main(&format!("1{}", " + 1".repeat(n)))),
        ("ands", |n| {
            in_main(&format!("true{}", " and true".repeat(n)))
        }),
        ("ifs", |n| {
            format!(
                "fn main() {{\n{}print(1)\n{}}}\n",
                "if true {\n".repeat(n),
                "}\n".repeat(n)
            )
        }),
        ("else ifs", |n| {
            let mut s = String::from("fn main(args: [string]) {\n  if len(args) == 0 { print(0) }");
            for i in 1..n {
                s.push_str(&format!(" else if len(args) == {i} {{ print({i}) }}"));
            }
            s.push_str("\n}\n");
            s
        }),
        ("whiles", |n| {
            format!(
                "fn main() {{\n{}break\n{}}}\n",
                "while true {\n".repeat(n),
                "}\n".repeat(n)
            )
        }),
        ("lambdas", |n| {
            in_main(&format!(
                "{}1{}",
                "fn() { return ".repeat(n),
                " }".repeat(n)
            ))
        }),
        ("nested fns", |n| {
            let mut s = String::from("fn main() {\n");
            for i in 0..n {
                s.push_str(&format!("fn f{i}() {{\n"));
            }
            s.push_str(&"}\n".repeat(n));
            s.push_str("}\n");
            s
        }),
        ("list types", |n| {
            format!(
                "fn main() {{\n  let x: {}int{} = []\n  print(x)\n}}\n",
                "[".repeat(n),
                "]".repeat(n)
            )
        }),
        ("optional types", |n| {
            format!(
                "fn main() {{\n  let x: int{} = null\n  print(x)\n}}\n",
                "?".repeat(n)
            )
        }),
        ("interpolations", |n| {
            in_main(&format!("\"{{{}1{}}}\"", "(".repeat(n), ")".repeat(n)))
        }),
        ("interpolated nesting", |n| {
            // Strings within interpolations within strings, with brackets around each.
            let mut e = String::from("1");
            for _ in 0..n.min(15) {
                e = format!("\"{{[{e}]}}\"");
            }
            in_main(&format!("{}{e}{}", "[".repeat(n), "]".repeat(n)))
        }),
    ]
}

fn codes(d: &Diagnostics) -> Vec<&'static str> {
    d.items.iter().map(|d| d.code).collect()
}

/// Compiles on a thread with a 2 MiB stack; the result is whether it compiled, and the codes.
fn compile_small_stack(src: String) -> Result<(), Vec<&'static str>> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || match compile_source("deep.ail", &src) {
            Ok(c) => {
                aivm_vm::format::verify(&c.module).expect("the compiled module verifies");
                Ok(())
            }
            Err(d) => Err(codes(&d)),
        })
        .expect("spawn")
        .join()
        .expect("the compiler did not panic")
}

fn too_deep(r: &Result<(), Vec<&'static str>>) -> bool {
    matches!(r, Err(c) if c.contains(&"E0118"))
}

#[test]
fn very_deep_nesting_is_a_diagnostic() {
    for (name, shape) in shapes() {
        let r = compile_small_stack(shape(100_000));
        assert!(too_deep(&r), "{name}: {r:?}");
    }
}

#[test]
fn the_deepest_accepted_nesting_compiles_on_a_small_stack() {
    for (name, shape) in shapes() {
        // The largest depth the limit accepts, found by bisection (acceptance is monotone).
        let (mut lo, mut hi) = (1usize, 400usize);
        assert!(
            !too_deep(&compile_small_stack(shape(lo))),
            "{name} at depth 1"
        );
        assert!(
            too_deep(&compile_small_stack(shape(hi))),
            "{name} at depth {hi}"
        );
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if too_deep(&compile_small_stack(shape(mid))) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        assert!(lo >= 40, "{name}: only {lo} levels accepted");
    }
}

#[test]
fn long_flat_programs_compile() {
    let n = 100_000;
    let many_statements = format!("fn main() {{\n{}}}\n", "print(1)\n".repeat(n));
    assert!(compile_source("flat.ail", &many_statements).is_ok());

    let big_string = format!("fn main() {{\n  print(\"{}\")\n}}\n", "a".repeat(1 << 20));
    let c = compile_source("flat.ail", &big_string).expect("compiles");
    aivm_vm::format::verify(&c.module).expect("verifies");

    let long_union = format!(
        "type T = {}\nfn main() {{\n  let x: T = \"v1\"\n  print(x)\n}}\n",
        (0..2000)
            .map(|i| format!("\"v{i}\""))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let c = compile_source("flat.ail", &long_union).expect("compiles");
    aivm_vm::format::verify(&c.module).expect("verifies");
}

#[test]
fn too_many_registers_is_a_diagnostic() {
    let items: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let big_list = in_main(&format!("[{}]", items.join(", ")));
    let lets: String = (0..70_000).map(|i| format!("let x{i} = {i}\n")).collect();
    let many_lets = format!("fn main() {{\n{lets}}}\n");
    let args = format!(
        "fn f(a) {{ return a }}\nfn main() {{ print(len([{}])) }}\n",
        items.join(",")
    );
    for src in [big_list, many_lets, args] {
        let d = compile_source("big.ail", &src).expect_err("too large");
        assert!(codes(&d).contains(&"E0401"), "{:?}", codes(&d));
    }
    // Just below the register limit is fine and verifies.
    let items: Vec<String> = (0..60_000).map(|i| i.to_string()).collect();
    let c =
        compile_source("big.ail", &in_main(&format!("[{}]", items.join(", ")))).expect("compiles");
    aivm_vm::format::verify(&c.module).expect("verifies");
}

#[test]
fn too_many_branches_for_the_verifier_is_a_diagnostic() {
    // 40,000 live variables and 40,000 `if`s: blocks × register words exceed the verifier's
    // budget, so the compiler refuses rather than emit a module `verify` would reject.
    let mut s = String::from("fn main() {\n");
    for i in 0..40_000 {
        s.push_str(&format!("let _x{i} = {i}\n"));
    }
    for i in 0..40_000 {
        s.push_str(&format!("if _x{i} == 0 {{ print({i}) }}\n"));
    }
    s.push_str("}\n");
    let d = compile_source("branches.ail", &s).expect_err("too large to verify");
    assert!(codes(&d).contains(&"E0401"), "{:?}", codes(&d));
}
