//! What bounds a run besides fuel and depth: the register stack counts against the heap limit
//! (deep calls of large frames end with `HeapExhausted` instead of allocating gigabytes), and
//! the host caps what a program takes in (a line of input longer than the policy's
//! `max_input_bytes` is an `IoError` the program sees, never an unbounded read).

mod interp_support;

use std::io::Cursor;

use aivm_vm::format::{assemble, VerifiedModule};
use aivm_vm::host::{Host, RunError};
use aivm_vm::policy::Policy;
use aivm_vm::{HostValue, Limits, Vm};

/// Assembles, verifies and runs `asm` to the end with this policy and standard input.
fn run(asm: &str, limits: Limits, cap: u64, stdin: &str) -> Result<HostValue, RunError> {
    let mut module = assemble(asm).expect("assembles");
    interp_support::fill_tools(&mut module);
    let verified = VerifiedModule::new(module).expect("verifies");
    let mut vm = Vm::new(&verified, limits).expect("loads");
    vm.start_main(vec![]).expect("main starts");
    let stdin = Box::new(Cursor::new(stdin.as_bytes().to_vec()));
    Host::new(Policy::default(), Box::new(Vec::new()), stdin)
        .with_input_cap(cap)
        .run_to_end(&mut vm)
}

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
    let limits = Limits {
        max_heap_bytes: 32 << 20,
        ..Limits::default()
    };
    match run(
        BIG_FRAMES,
        limits,
        aivm_vm::host::DEFAULT_MAX_INPUT_BYTES,
        "",
    ) {
        Err(RunError::Vm(aivm_vm::VmError::HeapExhausted { limit, trace })) => {
            assert_eq!(limit, 32 << 20);
            // 32 MiB of 16-byte registers hold 31 frames of 65,535 registers, and main's.
            assert!(trace.0.len() < 40, "stopped after {} frames", trace.0.len());
        }
        other => panic!("expected HeapExhausted, got {other:?}"),
    }
}

/// `main` returns what `read_line()` gives it.
const READ_ONE_LINE: &str = "\
.strings
    s0 = \"main\"
    s1 = \"io.read_line\"
.types
    t0 = any
.natives
    n0 = s1
.entry f0
.func f0 s0
    regs 1
    Effect r0, n0, r0+0
    Return r0
";

fn read_line_with(input: &str, max_input_bytes: u64) -> Result<HostValue, RunError> {
    run(READ_ONE_LINE, Limits::default(), max_input_bytes, input)
}

#[test]
fn a_line_within_the_cap_is_read_without_its_newline() {
    let line = |input, cap| read_line_with(input, cap).expect("reads").to_json();
    assert_eq!(line("hello\r\nworld\n", 16), "hello");
    assert_eq!(line("", 16), serde_json::Value::Null, "end of input");
    assert_eq!(
        line("exactly\n", 8),
        "exactly",
        "a line whose newline is the last byte allowed"
    );
}

#[test]
fn a_line_past_the_cap_is_an_io_error() {
    match read_line_with(&"a".repeat(1000), 64) {
        Err(RunError::Vm(aivm_vm::VmError::Uncaught { kind, message, .. })) => {
            assert_eq!(kind, "IoError");
            assert!(message.contains("64 bytes"), "{message}");
        }
        other => panic!("expected an uncaught IoError, got {other:?}"),
    }
}
