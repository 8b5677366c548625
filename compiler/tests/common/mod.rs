//! Helpers shared by the compiler's integration tests: a deterministic generator for the
//! mutation tests and a runner that collects what a compiled program prints.

#![allow(dead_code)] // each test binary uses its own subset

use aivm_vm::format::{Module, VerifiedModule};
use aivm_vm::{HostData, HostError, HostValue, Limits, Step, Vm};

/// xorshift64*: a tiny deterministic generator, so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Runs `main` of a compiled `module`, answering `io.print` into a buffer (other effects
/// fail), and returns the printed lines; panics naming `what` if the run fails.
pub fn printed(module: Module, what: &str) -> Vec<String> {
    let mut vm = Vm::new(
        &VerifiedModule::new(module).expect("the compiled module verifies"),
        Limits::default(),
    )
    .expect("module loads");
    vm.start_main(vec![]).expect("main starts");
    let mut out = Vec::new();
    loop {
        match vm.run() {
            Ok(Step::Done { .. }) => return out,
            Ok(Step::Effect(req)) => {
                let r = if req.native == "io.print" {
                    out.push(req.args[0].as_str().unwrap_or("?").to_string());
                    Ok(HostValue::null())
                } else {
                    Err(HostError::new("IoError", format!("no {}", req.native)))
                };
                vm.resume(req.task, r).expect("resume");
            }
            Ok(Step::Idle) => panic!("{what}: idle before main finished\noutput so far: {out:?}"),
            Err(e) => panic!("{what}: {e}\noutput so far: {out:?}"),
        }
    }
}

/// A string value, as a host gives it.
pub fn s(text: &str) -> HostValue {
    HostValue::str(text)
}

/// A record value with these fields, in order.
pub fn record(fields: Vec<(&str, HostValue)>) -> HostValue {
    HostValue::new(HostData::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    ))
}

/// A list value.
pub fn list(items: Vec<HostValue>) -> HostValue {
    HostValue::new(HostData::List(items))
}
