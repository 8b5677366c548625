//! The host performs `io.ask`, `fs.list` and `fs.read` through the native tools: a small
//! module in assembly asks a question, lists a granted directory and reads a file in it.

mod interp_support;

use std::io::Cursor;

use aivm_vm::format::{assemble, VerifiedModule};
use aivm_vm::host::{Host, RunError};
use aivm_vm::policy::Policy;
use aivm_vm::{Limits, Vm, VmError};

/// Runs main (`code`, 8 registers) with strings `s1..` = `strings` then the native names,
/// constants `k0..` = `str s1..`, the host's input `input`; main's value as JSON and what
/// was printed, or the uncaught error's kind and message.
fn run(
    strings: &[&str],
    natives: &[&str],
    code: &str,
    policy: Policy,
    input: &str,
) -> (String, String) {
    let mut t = String::from(".strings\n    s0 = \"main\"\n");
    for (n, s) in (1..).zip(strings.iter().chain(natives)) {
        t += &format!("    s{n} = {s:?}\n");
    }
    t += ".const\n";
    for i in 0..strings.len() {
        t += &format!("    k{i} = str s{}\n", i + 1);
    }
    t += ".types\n    t0 = any\n.natives\n";
    for i in 0..natives.len() {
        t += &format!("    n{i} = s{}\n", 1 + strings.len() + i);
    }
    t += ".entry f0\n.func f0 s0\n    ret t0\n    regs 8\n";
    t += code;
    t += "\n";
    let mut module = assemble(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
    interp_support::fill_tools(&mut module);
    let verified = VerifiedModule::new(module).unwrap_or_else(|e| panic!("{e}\n{t}"));
    let mut vm = Vm::new(&verified, Limits::default()).expect("loads");
    vm.start_main(vec![]).expect("starts");
    let out = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut host = Host::new(
        policy,
        Box::new(Shared(out.clone())),
        Box::new(Cursor::new(input.as_bytes().to_vec())),
    );
    let result = match host.run_to_end(&mut vm) {
        Ok(v) => v.to_json().to_string(),
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => format!("{kind}: {message}"),
        Err(e) => panic!("{e}"),
    };
    let printed = String::from_utf8(out.borrow().clone()).expect("UTF-8 output");
    (result, printed)
}

#[test]
fn the_host_asks_lists_and_reads_through_the_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    std::fs::write(dir.join("b.txt"), "bee").unwrap();
    std::fs::write(dir.join("a.txt"), "ay").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("escape")).unwrap();
    let d = dir.to_str().unwrap();
    let a = dir.join("a.txt");
    let escape = dir.join("escape");
    let natives = ["io.ask", "fs.list", "fs.read", "core.label_of"];
    // r1 := ask(k0); r2 := list(k1); r3 := read(k2); r4 := label_of(r3); [r1, r2, r3, r4]
    let code = "LoadConst r0, k0\nEffect r1, n0, r0+1\nLoadConst r0, k1\nEffect r2, n1, r0+1\n\
                LoadConst r0, k2\nEffect r3, n2, r0+1\nCallNative r4, n3, r3+1\nNewList r5, r1+4\nReturn r5";
    // Files read are untrusted by default.
    let policy = aivm_vm::policy::PolicyBuilder::new(".")
        .flags(&aivm_vm::policy::GrantFlags {
            allow_read: Some(vec![dir.display().to_string()]),
            ..Default::default()
        })
        .expect("valid grants")
        .build();
    let (value, printed) = run(
        &["Name?\u{1b}[2J ", d, a.to_str().unwrap()],
        &natives,
        code,
        policy.clone(),
        "Ada\nrest\n",
    );
    assert_eq!(
        value,
        r#"["Ada",["a.txt","b.txt","escape"],"ay","untrusted"]"#
    );
    // The question is shown with its escape sequence made harmless.
    assert_eq!(printed, "Name?\\u{1b}[2J ");
    // A link out of the granted directory is denied, and the program sees why.
    let (value, _) = run(
        &["?", d, escape.to_str().unwrap()],
        &natives,
        code,
        policy,
        "x\n",
    );
    assert!(
        value.starts_with("PolicyDenied: fs.read: reading "),
        "{value}"
    );
    // Outside what is granted, listing is denied and names the flag. (With nothing granted
    // at all, the program would not start: its manifest names fs.list.)
    let elsewhere = aivm_vm::policy::PolicyBuilder::new(".")
        .flags(&aivm_vm::policy::GrantFlags {
            allow_read: Some(vec![dir.join("sub").display().to_string()]),
            ..Default::default()
        })
        .expect("valid grants")
        .build();
    let (value, _) = run(&["?", d, d], &natives, code, elsewhere, "x\n");
    assert!(
        value.starts_with("PolicyDenied: fs.list: listing "),
        "{value}"
    );
    assert!(value.contains("--allow-read"), "{value}");
}
