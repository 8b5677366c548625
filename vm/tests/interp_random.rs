//! Robustness: random modules (verified-valid and arbitrary) run under small limits must end
//! with a value or a typed error — never a panic or a hang.

mod common;

use std::sync::Arc;

use aivm_vm::{HostValue, Limits, Step, Vm};
use common::{random_any_module, random_valid_module, Rng};

fn run_all(m: aivm_vm::format::Module) {
    let m = Arc::new(m);
    let limits = Limits {
        fuel: Some(5_000),
        max_depth: 200,
        max_heap_bytes: 4 << 20,
    };
    let Ok(mut vm) = Vm::new(m.clone(), limits) else {
        return;
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
                Ok(Step::Done { .. }) | Err(_) => break,
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

#[test]
fn the_interpreter_accepts_what_the_verifier_accepts() {
    let mut rng = Rng(3);
    for _ in 0..300 {
        let m = random_valid_module(&mut rng);
        if aivm_vm::format::verify(&m).is_ok() {
            if let Err(e) = Vm::new(Arc::new(m), Limits::default()) {
                panic!("verified module refused: {e}");
            }
        }
    }
}
