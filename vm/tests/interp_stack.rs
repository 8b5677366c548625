//! The register stack counts against the heap limit: deep calls of a function with a large
//! frame end with `HeapExhausted` long before the call-depth limit, instead of allocating
//! gigabytes of registers.

use std::io::Cursor;

use aivm_vm::format::{assemble, VerifiedModule};
use aivm_vm::host::{Host, Policy, RunError};
use aivm_vm::{Limits, Vm, VmError};

/// `f` has a frame of 65,535 registers (1 MiB) and calls itself forever.
const BIG_FRAMES: &str = "\
.strings
    s0 = \"main\"
    s1 = \"f\"
.types
    t0 = any
.entry f1
.func f0 s1
    regs 65535
    CallFn r0, f0, r0+0
    Return r0
.func f1 s0
    regs 1
    CallFn r0, f0, r0+0
    Return r0
";

#[test]
fn deep_calls_of_large_frames_exhaust_the_heap_limit() {
    let module = assemble(BIG_FRAMES).expect("assembles");
    let verified = VerifiedModule::new(module).expect("verifies");
    let limits = Limits {
        max_heap_bytes: 32 << 20,
        ..Limits::default()
    };
    let mut vm = Vm::new(&verified, limits).expect("loads");
    vm.start_main(vec![]).expect("main starts");
    let mut host = Host::new(
        Policy::default(),
        Box::new(Vec::new()),
        Box::new(Cursor::new(Vec::new())),
    );
    match host.run_to_end(&mut vm) {
        Err(RunError::Vm(VmError::HeapExhausted { limit, trace })) => {
            assert_eq!(limit, 32 << 20);
            // 32 MiB of 16-byte registers hold 31 frames of 65,535 registers, and main's.
            assert!(trace.0.len() < 40, "stopped after {} frames", trace.0.len());
        }
        other => panic!("expected HeapExhausted, got {other:?}"),
    }
}
