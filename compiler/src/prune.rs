//! Drops the functions nothing can reach: a program that imports `std.lists` for `sort` should
//! not carry `map`, `filter` and the rest. Reachable means named by the entry, an export, or an
//! instruction (`CallFn`, `LoadFunc`, `Closure`) of a reachable function; the survivors keep
//! their order and every function operand is renumbered. A module with neither an entry nor
//! exports keeps every function: nothing says what it is for.

use aivm_vm::format::{Instr, Module, Operand};

/// Drops the unreachable functions; returns, for each function before pruning, whether it
/// was kept.
pub(crate) fn unreachable_functions(module: &mut Module) -> Vec<bool> {
    if module.entry.is_none() && module.exports.is_empty() {
        return vec![true; module.functions.len()];
    }
    let n = module.functions.len();
    let mut live = vec![false; n];
    let mut work: Vec<u32> = module
        .entry
        .into_iter()
        .chain(module.exports.iter().map(|e| e.func))
        .collect();
    while let Some(f) = work.pop() {
        let Some(slot) = live.get_mut(f as usize) else {
            continue;
        };
        if std::mem::replace(slot, true) {
            continue;
        }
        if let Some(func) = module.functions.get(f as usize) {
            for ins in &func.code {
                for op in ins.operands() {
                    if let Operand::Func(g) = op {
                        work.push(g);
                    }
                }
            }
        }
    }
    if live.iter().all(|&l| l) {
        return live;
    }
    // New index of each surviving function.
    let mut renumber = vec![u32::MAX; n];
    let survivors = live.iter().enumerate().filter(|(_, &l)| l);
    for (new, (old, _)) in survivors.enumerate() {
        renumber[old] = new as u32;
    }
    let map = |f: u32| renumber.get(f as usize).copied().unwrap_or(f);
    let functions = std::mem::take(&mut module.functions);
    module.functions = functions
        .into_iter()
        .zip(&live)
        .filter(|(_, &l)| l)
        .map(|(mut func, _)| {
            for ins in &mut func.code {
                *ins = renumbered(ins, map);
            }
            func
        })
        .collect();
    module.entry = module.entry.map(map);
    for e in &mut module.exports {
        e.func = map(e.func);
    }
    live
}

/// The instruction with its function operands passed through `map`.
fn renumbered(ins: &Instr, map: impl Fn(u32) -> u32) -> Instr {
    let ops: Vec<Operand> = ins
        .operands()
        .into_iter()
        .map(|o| match o {
            Operand::Func(f) => Operand::Func(map(f)),
            other => other,
        })
        .collect();
    // Invariant: only the values of Func operands changed, so the operands still match the
    // opcode's row.
    Instr::from_operands(ins.opcode(), &ops).unwrap_or(*ins)
}

#[cfg(test)]
mod tests {
    use aivm_vm::format::VerifiedModule;

    fn function_names(src: &str) -> Vec<String> {
        let compiled = crate::compile_source("prune.ail", src).expect("compiles");
        let m = compiled.module;
        let names = m
            .functions
            .iter()
            .map(|f| m.str(f.name).to_string())
            .collect();
        VerifiedModule::new(m).expect("the pruned module verifies");
        names
    }

    #[test]
    fn only_reachable_functions_are_kept() {
        let names = function_names(
            "import std.lists\n\
             fn unused() {\n  return 1\n}\n\
             fn helper(x) {\n  return x + 1\n}\n\
             fn main() {\n  let f = helper\n  print(lists.sum([f(1), 2]))\n}\n",
        );
        assert!(names.contains(&"main".to_string()), "{names:?}");
        assert!(
            names.contains(&"helper".to_string()),
            "a function value is reachable: {names:?}"
        );
        assert!(names.contains(&"sum".to_string()), "{names:?}");
        assert!(!names.contains(&"unused".to_string()), "{names:?}");
        assert!(!names.contains(&"filter".to_string()), "{names:?}");
    }

    #[test]
    fn exports_are_roots_and_a_module_without_roots_keeps_everything() {
        let names =
            function_names("export fn api() {\n  return 1\n}\nfn dead() {\n  return 2\n}\n");
        assert_eq!(names, ["api"]);
        let names = function_names("fn a() {\n  return 1\n}\nfn b() {\n  return 2\n}\n");
        // The prelude's own functions stay too.
        assert!(
            names.ends_with(&["a".to_string(), "b".to_string()]),
            "{names:?}"
        );
        assert!(names.contains(&"await_all".to_string()), "{names:?}");
    }
}
