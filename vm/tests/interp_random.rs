//! Robustness: random modules (verified-valid and arbitrary) that the verifier accepts are
//! accepted by the interpreter too, and run under small limits to a value or a typed error —
//! never a panic or a hang.

mod common;

use aivm_vm::format::VerifiedModule;
use aivm_vm::{HostValue, Limits, Step, Vm};
use common::{random_any_module, random_valid_module, Rng};

/// Verifies `m` and, when the verifier accepts it, runs every function of it.
fn run_all(m: aivm_vm::format::Module) {
    let Ok(m) = VerifiedModule::new(m) else {
        return;
    };
    let limits = Limits {
        fuel: Some(5_000),
        max_depth: 200,
        max_heap_bytes: 4 << 20,
    };
    let mut vm = match Vm::new(&m, limits) {
        Ok(vm) => vm,
        Err(e) => panic!("a verified module was refused: {e}"),
    };
    for (fi, f) in m.functions.iter().enumerate() {
        let args = f.params.iter().map(|_| HostValue::int(1)).collect();
        if vm.start(fi as u32, args).is_err() {
            continue;
        }
        // Effects answered with null; at most a bounded number of steps.
        for _ in 0..50 {
            match vm.run() {
                Ok(Step::Effect(req)) => vm.resume(req.task, Ok(HostValue::null())).unwrap(),
                Ok(Step::Done { .. } | Step::Idle) | Err(_) => break,
            }
        }
    }
}

#[test]
fn random_valid_modules_run_without_panicking() {
    let mut rng = Rng(7);
    for _ in 0..300 {
        run_all(random_valid_module(&mut rng));
    }
}

#[test]
fn random_arbitrary_modules_are_refused_or_run_without_panicking() {
    let mut rng = Rng(11);
    for _ in 0..300 {
        run_all(random_any_module(&mut rng));
    }
}
