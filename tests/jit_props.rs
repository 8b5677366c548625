//! Property: random well-typed programs (int, float and bool arithmetic, branches, loops, calls,
//! numbers kept in records and lists, prints inside loops, overflow, division by zero and
//! indexes out of range caught by `try`) print the same, hold the
//! same VM state at every effect, end the same, and execute the same number of instructions
//! with the JIT off and with `--jit=always`; and stop at the same instruction with the same
//! error under a fuel limit.

use aivm_vm::format::VerifiedModule;
use aivm_vm::{HostValue, JitMode, Limits, Step, Vm};
use proptest::prelude::*;

/// A tiny deterministic generator: the program is a function of the seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &'a [String]) -> &'a str {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum T {
    Int,
    Float,
    Bool,
}

struct Scope {
    ints: Vec<String>,
    floats: Vec<String>,
    fresh: usize,
    /// The function prints (an effect), so it is never compiled whole: its loops are compiled
    /// where they run, and leave at each print.
    prints: bool,
}

/// The functions generated so far: name, return type.
struct Prog {
    funcs: Vec<(String, T)>,
}

fn int_expr(g: &mut Gen, s: &Scope, p: &Prog, depth: u32) -> String {
    let k = if depth == 0 { g.below(3) } else { g.below(9) };
    match k {
        0 => {
            let lits = [
                "0",
                "1",
                "2",
                "3",
                "7",
                "-1",
                "-5",
                "100",
                "3037000500",
                "9223372036854775807",
                "4611686018427387904",
            ];
            lits[g.below(lits.len() as u64) as usize].to_string()
        }
        1 | 2 => g.pick(&s.ints).to_string(),
        3..=6 => {
            let ops = ["+", "-", "*", "/", "%", "+", "-", "*"];
            let op = ops[g.below(ops.len() as u64) as usize];
            let a = int_expr(g, s, p, depth - 1);
            let b = int_expr(g, s, p, depth - 1);
            format!("({a} {op} {b})")
        }
        7 => format!("(-{})", int_expr(g, s, p, depth - 1)),
        _ => call(g, s, p, depth, T::Int).unwrap_or_else(|| g.pick(&s.ints).to_string()),
    }
}

fn float_expr(g: &mut Gen, s: &Scope, p: &Prog, depth: u32) -> String {
    let k = if depth == 0 { g.below(2) } else { g.below(9) };
    match k {
        0 => {
            let lits = ["0.0", "0.5", "-2.25", "3.0", "1e300", "-0.0", "7.125"];
            lits[g.below(lits.len() as u64) as usize].to_string()
        }
        1 | 2 => g.pick(&s.floats).to_string(),
        3..=5 => {
            let ops = ["+", "-", "*", "/", "%"];
            let op = ops[g.below(ops.len() as u64) as usize];
            let a = float_expr(g, s, p, depth - 1);
            let b = match g.below(3) {
                0 => int_expr(g, s, p, depth - 1),
                _ => float_expr(g, s, p, depth - 1),
            };
            format!("({a} {op} {b})")
        }
        6 => format!("({} * 0.5)", int_expr(g, s, p, depth - 1)),
        7 => format!("(-{})", float_expr(g, s, p, depth - 1)),
        _ => call(g, s, p, depth, T::Float).unwrap_or_else(|| g.pick(&s.floats).to_string()),
    }
}

fn cond(g: &mut Gen, s: &Scope, p: &Prog, depth: u32) -> String {
    match g.below(if depth == 0 { 2 } else { 7 }) {
        0 => {
            let ops = ["<", "<=", "==", "!=", ">", ">="];
            let op = ops[g.below(ops.len() as u64) as usize];
            format!(
                "({} {op} {})",
                int_expr(g, s, p, depth.min(1)),
                int_expr(g, s, p, depth.min(1))
            )
        }
        1 => {
            let ops = ["<", "<=", "==", "!="];
            let op = ops[g.below(ops.len() as u64) as usize];
            format!(
                "({} {op} {})",
                float_expr(g, s, p, depth.min(1)),
                int_expr(g, s, p, depth.min(1))
            )
        }
        2 => format!("(not {})", cond(g, s, p, depth - 1)),
        3 => format!(
            "({} and {})",
            cond(g, s, p, depth - 1),
            cond(g, s, p, depth - 1)
        ),
        4 => format!(
            "({} or {})",
            cond(g, s, p, depth - 1),
            cond(g, s, p, depth - 1)
        ),
        _ => call(g, s, p, depth, T::Bool).unwrap_or_else(|| "true".into()),
    }
}

/// A call of an earlier function returning `want`, if there is one.
fn call(g: &mut Gen, s: &Scope, p: &Prog, depth: u32, want: T) -> Option<String> {
    let cands: Vec<&(String, T)> = p.funcs.iter().filter(|(_, t)| *t == want).collect();
    if cands.is_empty() {
        return None;
    }
    let (name, _) = cands[g.below(cands.len() as u64) as usize];
    let d = depth.saturating_sub(1);
    Some(format!(
        "{name}({}, {}, {})",
        int_expr(g, s, p, d),
        int_expr(g, s, p, d),
        float_expr(g, s, p, d)
    ))
}

fn block(g: &mut Gen, s: &mut Scope, p: &Prog, ret: T, nest: u32, out: &mut String, ind: &str) {
    let n = 1 + g.below(4);
    let (ni, nf) = (s.ints.len(), s.floats.len());
    for _ in 0..n {
        if s.prints && g.below(5) == 0 {
            let v = g.pick(&s.ints).to_string();
            match g.below(2) {
                0 => out.push_str(&format!("{ind}print({v})\n")),
                _ => out.push_str(&format!("{ind}print(\"{v} {{{v}}}\")\n")),
            }
            continue;
        }
        match g.below(if nest == 0 { 4 } else { 7 }) {
            0 => {
                let v = format!("i{}", s.fresh);
                s.fresh += 1;
                let e = int_expr(g, s, p, 2);
                out.push_str(&format!("{ind}let {v} = {e}\n"));
                s.ints.push(v);
            }
            1 => {
                let v = format!("f{}", s.fresh);
                s.fresh += 1;
                let e = float_expr(g, s, p, 2);
                out.push_str(&format!("{ind}let {v} = {e}\n"));
                s.floats.push(v);
            }
            2 => {
                // Loop counters (`k...`) are never assigned, so every loop ends.
                let targets: Vec<String> = s
                    .ints
                    .iter()
                    .filter(|v| !v.starts_with('k'))
                    .cloned()
                    .collect();
                let v = g.pick(&targets).to_string();
                let e = int_expr(g, s, p, 2);
                out.push_str(&format!("{ind}{v} = {e}\n"));
            }
            3 => {
                let v = g.pick(&s.floats).to_string();
                let e = float_expr(g, s, p, 2);
                out.push_str(&format!("{ind}{v} = {e}\n"));
            }
            4 => {
                let c = cond(g, s, p, 2);
                out.push_str(&format!("{ind}if {c} {{\n"));
                block(g, s, p, ret, nest - 1, out, &format!("{ind}  "));
                out.push_str(&format!("{ind}}} else {{\n"));
                block(g, s, p, ret, nest - 1, out, &format!("{ind}  "));
                out.push_str(&format!("{ind}}}\n"));
            }
            5 => {
                let v = format!("k{}", s.fresh);
                s.fresh += 1;
                let bound = g.below(12);
                out.push_str(&format!("{ind}for {v} in 0..{bound} {{\n"));
                s.ints.push(v);
                block(g, s, p, ret, nest - 1, out, &format!("{ind}  "));
                s.ints.pop();
                out.push_str(&format!("{ind}}}\n"));
            }
            _ => {
                let v = format!("k{}", s.fresh);
                s.fresh += 1;
                let bound = g.below(9);
                out.push_str(&format!("{ind}let {v} = 0\n{ind}while {v} < {bound} {{\n"));
                s.ints.push(v.clone());
                block(g, s, p, ret, nest - 1, out, &format!("{ind}  "));
                if g.below(4) == 0 {
                    let c = cond(g, s, p, 1);
                    let e = ret_expr(g, s, p, ret);
                    out.push_str(&format!(
                        "{ind}  if {c} {{\n{ind}    return {e}\n{ind}  }}\n"
                    ));
                }
                out.push_str(&format!("{ind}  {v} = {v} + 1\n{ind}}}\n"));
                s.ints.pop();
            }
        }
    }
    s.ints.truncate(ni);
    s.floats.truncate(nf);
}

fn ret_expr(g: &mut Gen, s: &Scope, p: &Prog, ret: T) -> String {
    match ret {
        T::Int => int_expr(g, s, p, 2),
        T::Float => float_expr(g, s, p, 2),
        T::Bool => cond(g, s, p, 2),
    }
}

fn program(seed: u64) -> String {
    let mut g = Gen(seed | 1);
    let mut p = Prog { funcs: Vec::new() };
    let mut src = String::new();
    let nfuncs = 1 + g.below(4);
    for i in 0..nfuncs {
        let ret = [T::Int, T::Float, T::Bool, T::Int][g.below(4) as usize];
        let rname = match ret {
            T::Int => "int",
            T::Float => "float",
            T::Bool => "bool",
        };
        let name = format!("g{i}");
        src.push_str(&format!(
            "fn {name}(a: int, b: int, x: float) -> {rname} {{\n"
        ));
        // Half the functions keep some of their numbers in a record and a list, read and
        // written through the heap.
        let heap = g.below(2) == 0;
        let mut s = Scope {
            ints: vec!["a".into(), "b".into()],
            floats: vec!["x".into()],
            fresh: 0,
            prints: g.below(2) == 0,
        };
        if heap {
            src.push_str("  let rec = {v: a, w: x}\n  let xs = [b, a, 7]\n");
            s.ints
                .extend(["rec.v".into(), "xs[1]".into(), "xs[b % 3 + 1]".into()]);
            s.floats.push("rec.w".into());
        }
        block(&mut g, &mut s, &p, ret, 2, &mut src, "  ");
        let e = ret_expr(&mut g, &s, &p, ret);
        src.push_str(&format!("  return {e}\n}}\n\n"));
        p.funcs.push((name, ret));
    }
    src.push_str("fn main() {\n  for k in 0..12 {\n");
    for (name, _) in &p.funcs {
        src.push_str(&format!(
            "    try {{\n      print({name}(k - 4, k * k - 7, k * 0.75 - 2.0))\n    }} catch e {{\n      print(e)\n    }}\n"
        ));
    }
    src.push_str("  }\n}\n");
    src
}

/// What a run shows: its printed lines with the whole VM state at many of them (what a host
/// would serialise to suspend the run there), how it ended, and the instructions it executed.
#[derive(Debug, PartialEq)]
struct Run {
    out: Vec<String>,
    end: String,
    instructions: u64,
}

/// Runs `module` in `mode`; with `suspend_at: Some(n)`, the run is suspended at its n-th
/// effect and resumed from its state in a new VM.
fn run(module: &VerifiedModule, mode: JitMode, fuel: Option<u64>, suspend_at: Option<u32>) -> Run {
    let limits = Limits {
        fuel,
        ..Limits::default()
    };
    let mut vm = Vm::new(module, limits.clone()).expect("vm");
    vm.set_jit(mode);
    vm.start_main(vec![]).expect("main");
    let mut out = Vec::new();
    let mut effects = 0u32;
    let end = loop {
        match vm.run() {
            Ok(Step::Effect(req)) => {
                out.push(format!("{} {:?}", req.native, req.args));
                // The whole state at the first effects and then at every 16th (serialising
                // it is most of the test's time).
                effects += 1;
                if effects <= 32 || effects.is_multiple_of(16) {
                    out.push(serde_json::to_string(&vm.snapshot()).expect("state serialises"));
                }
                if suspend_at == Some(effects) {
                    // (Not through JSON text: JSON has no NaN or infinities, which these
                    // programs make.)
                    let state = vm.snapshot();
                    vm = Vm::restore(module, limits.clone(), state).expect("state restores");
                    vm.set_jit(mode);
                }
                vm.resume(req.task, Ok(HostValue::null())).expect("resume");
            }
            Ok(Step::Done { value, .. }) => break format!("done {value:?}"),
            Ok(Step::Idle) => break "idle".into(),
            Err(e) => break format!("error {e:?}"),
        }
    };
    Run {
        out,
        end,
        instructions: vm.instructions(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_programs_behave_the_same_in_both_tiers(seed in any::<u64>(), cut in 0.0f64..1.0) {
        let src = program(seed);
        let compiled = match aivm_compiler::compile_source("gen.ail", &src) {
            Ok(c) => c,
            Err(d) => panic!("generated program does not compile: {d:?}\n{src}"),
        };
        let module = VerifiedModule::new(compiled.module).expect("verifies");
        let off = run(&module, JitMode::Off, None, None);
        let jit = run(&module, JitMode::Always, None, None);
        prop_assert_eq!(&off, &jit, "program:\n{}", src);
        // Suspended at an effect and resumed in another VM, with the JIT on in both.
        let resumed = run(&module, JitMode::Always, None, Some(3));
        prop_assert_eq!(&off, &resumed, "resumed at the third effect, program:\n{}", src);
        // Under a fuel limit somewhere inside the run.
        let fuel = ((off.instructions as f64) * cut) as u64 + 1;
        let off = run(&module, JitMode::Off, Some(fuel), None);
        let jit = run(&module, JitMode::Always, Some(fuel), None);
        prop_assert_eq!(&off, &jit, "fuel {}, program:\n{}", fuel, src);
    }
}

/// The generator makes programs the JIT compiles (so the property compares two tiers).
#[test]
fn generated_programs_are_compiled() {
    let (mut compiled, mut loops) = (0, 0);
    for seed in 0..20u64 {
        let src = program(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let c = aivm_compiler::compile_source("gen.ail", &src).expect("compiles");
        let module = VerifiedModule::new(c.module).expect("verifies");
        let mut vm = Vm::new(&module, Limits::default()).expect("vm");
        vm.set_jit(JitMode::Always);
        vm.start_main(vec![]).expect("main");
        while let Ok(Step::Effect(req)) = vm.run() {
            vm.resume(req.task, Ok(HostValue::null())).expect("resume");
        }
        compiled += vm
            .jit_events()
            .iter()
            .filter(|e| e.refused.is_none())
            .count();
        loops += vm
            .jit_events()
            .iter()
            .filter(|e| {
                e.refused.is_none()
                    && (e.function.contains(" loop at ") || e.function.ends_with(" at call"))
            })
            .count();
    }
    assert!(compiled >= 20, "only {compiled} specialisations compiled");
    assert!(loops >= 10, "only {loops} regions compiled");
}
