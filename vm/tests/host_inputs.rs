//! The host bounds what a program takes in: a line of standard input longer than the policy's
//! `max_input_bytes` is an `IoError` the program can catch, never an unbounded read.

use std::io::Cursor;

use aivm_vm::format::{assemble, VerifiedModule};
use aivm_vm::host::{Host, Policy, RunError};
use aivm_vm::{HostData, Limits, Vm, VmError};

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

fn read_line_with(input: &str, max_input_bytes: u64) -> Result<HostData, (String, String)> {
    let module = assemble(READ_ONE_LINE).expect("assembles");
    let verified = VerifiedModule::new(module).expect("verifies");
    let mut vm = Vm::new(&verified, Limits::default()).expect("loads");
    vm.start_main(vec![]).expect("main starts");
    let policy = Policy {
        max_input_bytes,
        ..Policy::default()
    };
    let stdin = Box::new(Cursor::new(input.as_bytes().to_vec()));
    let mut host = Host::new(policy, Box::new(Vec::new()), stdin);
    match host.run_to_end(&mut vm) {
        Ok(v) => Ok(v.data),
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => Err((kind, message)),
        Err(e) => panic!("unexpected end: {e}"),
    }
}

#[test]
fn a_line_within_the_cap_is_read_without_its_newline() {
    assert_eq!(
        read_line_with("hello\r\nworld\n", 16),
        Ok(HostData::Str("hello".into()))
    );
    assert_eq!(read_line_with("", 16), Ok(HostData::Null), "end of input");
    assert_eq!(
        read_line_with("exactly\n", 8),
        Ok(HostData::Str("exactly".into())),
        "a line whose newline is the last byte allowed"
    );
}

#[test]
fn a_line_past_the_cap_is_an_io_error() {
    let endless = "a".repeat(1000);
    let (kind, message) = read_line_with(&endless, 64).expect_err("cut at the cap");
    assert_eq!(kind, "IoError");
    assert!(message.contains("64 bytes"), "{message}");
}
