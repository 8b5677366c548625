//! Heap, host and state: the collector frees cycles, string appends reuse their buffer,
//! labels flow from an untrusted file to derived values, and a VM suspended at an effect
//! survives serialisation into a fresh VM.

mod interp_support;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use aivm_vm::format::{Instr::*, VerifiedModule};
use aivm_vm::host::config::Config;
use aivm_vm::host::{Host, TraceSink};
use aivm_vm::policy::PolicyBuilder;
use aivm_vm::{HostValue, Limits, Step, Vm, VmState};
use interp_support::*;

#[test]
fn collector_frees_a_dropped_cycle() {
    // l = [0..5000 items], l.push(l) (a list containing itself); a closure whose cell holds
    // the closure itself; print; drop both; print.
    let mut b = Builder::new();
    let print = b.native("io.print");
    let push = b.native("list.push");
    let f = b.func_caps(
        "selfref",
        0,
        1,
        1,
        vec![UpvalGet { dst: 0, idx: 0 }, Return { src: 0 }],
    );
    let m = b.main(
        8,
        vec![
            LoadInt { dst: 0, imm: 0 },
            LoadInt { dst: 1, imm: 5000 },
            NewList {
                dst: 2,
                items: rr(0, 0),
            },
            // loop: push(l, i); i += 1
            JumpIfNotLt {
                a: 0,
                b: 1,
                target: 9,
            },
            Move { dst: 3, src: 2 },
            Move { dst: 4, src: 0 },
            CallNative {
                dst: 5,
                native: push,
                args: rr(3, 2),
            },
            AddImm {
                dst: 0,
                src: 0,
                imm: 1,
            },
            Jump { target: 3 },
            Move { dst: 3, src: 2 },
            CallNative {
                dst: 5,
                native: push,
                args: rr(2, 2),
            },
            LoadNull { dst: 6 },
            CellNew { dst: 6, src: 6 },
            Closure {
                dst: 7,
                func: f,
                caps: rr(6, 1),
            },
            CellSet { cell: 6, src: 7 },
            LoadInt { dst: 5, imm: 1 },
            Effect {
                dst: 5,
                native: print,
                args: rr(5, 1),
            },
            LoadNull { dst: 2 },
            LoadNull { dst: 3 },
            LoadNull { dst: 4 },
            LoadNull { dst: 6 },
            LoadNull { dst: 7 },
            Effect {
                dst: 5,
                native: print,
                args: rr(5, 1),
            },
            Return { src: 5 },
        ],
    );
    let mut vm = Vm::new(&m, Limits::default()).unwrap();
    vm.start_main(vec![]).unwrap();
    let Step::Effect(req) = vm.run().unwrap() else {
        panic!()
    };
    let live_with_cycle = vm.collect_garbage();
    let objects_with_cycle = vm.heap_objects();
    assert!(
        live_with_cycle > 5000 * 16,
        "the list is live: {live_with_cycle}"
    );
    vm.resume(req.task, Ok(HostValue::null())).unwrap();
    let Step::Effect(req) = vm.run().unwrap() else {
        panic!()
    };
    let live_after = vm.collect_garbage();
    assert!(
        live_after < live_with_cycle / 10,
        "{live_after} vs {live_with_cycle}"
    );
    assert!(
        vm.heap_objects() + 3 <= objects_with_cycle,
        "list, cell and closure freed"
    );
    vm.resume(req.task, Ok(HostValue::null())).unwrap();
    assert!(matches!(vm.run().unwrap(), Step::Done { .. }));
}

#[test]
fn string_append_reuses_its_buffer() {
    // s = ""; repeat 10000 times: s = s + "ab"; also t = "{s}{i}" style Concat appends.
    let mut b = Builder::new();
    let empty = b.kstr("");
    let ab = b.kstr("ab");
    let len = b.native("core.len");
    let m = b.main(
        6,
        vec![
            LoadConst { dst: 0, k: empty },
            LoadConst { dst: 1, k: ab },
            LoadInt { dst: 2, imm: 0 },
            LoadInt {
                dst: 3,
                imm: 10_000,
            },
            JumpIfNotLt {
                a: 2,
                b: 3,
                target: 9,
            },
            Add { dst: 0, a: 0, b: 1 },
            Concat {
                dst: 0,
                parts: rr(0, 3),
            },
            AddImm {
                dst: 2,
                src: 2,
                imm: 1,
            },
            Jump { target: 4 },
            CallNative {
                dst: 4,
                native: len,
                args: rr(0, 1),
            },
            Return { src: 4 },
        ],
    );
    let mut vm = Vm::new(&m, Limits::default()).unwrap();
    vm.start_main(vec![]).unwrap();
    let Step::Done { value, .. } = vm.run().unwrap() else {
        panic!()
    };
    // Each round appends "ab" + "ab" + the decimal i.
    let digits: usize = (0..10_000).map(|i: i32| i.to_string().len()).sum();
    assert_eq!(value.data, aivm_vm::HostData::Int((40_000 + digits) as i64));
    // The constants "" and "ab", the first copy, and nothing per iteration.
    assert!(
        vm.heap_objects() <= 4,
        "{} objects: appends copied",
        vm.heap_objects()
    );
}

/// A writer whose bytes the test can read afterwards.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn labels_flow_from_an_untrusted_file_through_derived_values() {
    let dir = std::env::temp_dir().join(format!("aivm-labels-{}", std::process::id()));
    let web = dir.join("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("page.txt"), "hello").unwrap();
    std::fs::write(dir.join("own.txt"), "mine").unwrap();

    let mut b = Builder::new();
    let read = b.native("fs.read");
    let print = b.native("io.print");
    let label_of = b.native("core.label_of");
    let len = b.native("core.len");
    let page = b.kstr(web.join("page.txt").to_str().unwrap());
    let own = b.kstr(dir.join("own.txt").to_str().unwrap());
    // id(x) = x, through a call; get() reads a captured cell.
    let id = b.func("id", 1, 1, vec![Return { src: 0 }]);
    let get = b.func_caps(
        "get",
        0,
        1,
        1,
        vec![UpvalGet { dst: 0, idx: 0 }, Return { src: 0 }],
    );
    let show = |r: u16| {
        vec![
            CallNative {
                dst: 14,
                native: label_of,
                args: rr(r, 1),
            },
            Effect {
                dst: 15,
                native: print,
                args: rr(14, 1),
            },
        ]
    };
    let mut code = vec![
        LoadConst { dst: 0, k: page },
        Effect {
            dst: 1,
            native: read,
            args: rr(0, 1),
        }, // r1 untrusted text
        LoadConst { dst: 0, k: own },
        Effect {
            dst: 2,
            native: read,
            args: rr(0, 1),
        }, // r2 trusted text
        Add { dst: 3, a: 2, b: 1 }, // string concat
        CallNative {
            dst: 4,
            native: len,
            args: rr(1, 1),
        },
        AddImm {
            dst: 4,
            src: 4,
            imm: 1,
        }, // arithmetic
        NewList {
            dst: 5,
            items: rr(2, 1),
        },
        LoadInt { dst: 6, imm: 0 },
        SetIndex {
            obj: 5,
            key: 6,
            src: 1,
        }, // store into a trusted list
        GetIndex {
            dst: 7,
            obj: 5,
            key: 6,
        }, // collection read
        CallFn {
            dst: 8,
            func: id,
            args: rr(4, 1),
        }, // call
        CellNew { dst: 9, src: 4 },
        Closure {
            dst: 10,
            func: get,
            caps: rr(9, 1),
        },
        Call {
            dst: 11,
            callee: 10,
            args: rr(0, 0),
        }, // closure
        Concat {
            dst: 12,
            parts: rr(2, 1),
        },
    ];
    for r in [1, 2, 3, 4, 7, 8, 11, 12] {
        code.extend(show(r));
    }
    code.extend([
        Effect {
            dst: 15,
            native: print,
            args: rr(3, 1),
        },
        LoadInt { dst: 0, imm: 0 },
        Return { src: 0 },
    ]);
    let m = b.main(16, code);

    let out = Shared::default();
    // Files are untrusted unless the policy's [[labels]] say otherwise: here all of `dir`
    // is trusted but its `web` folder, the more specific entry.
    let toml = format!(
        "[policy]\nallow-read = [{dir:?}]\n[[labels]]\nread = {dir:?}\nintegrity = \"trusted\"\n[[labels]]\nread = {web:?}\nintegrity = \"untrusted\"\n",
        dir = dir.display().to_string(),
        web = web.display().to_string()
    );
    let cfg = Config::parse(&toml, std::path::Path::new("/aivm.toml")).expect("parses");
    let policy = PolicyBuilder::new(".")
        .config(&cfg.policy, std::path::Path::new("/"), None)
        .expect("valid policy")
        .build();
    let mut host = Host::new(policy, Box::new(out.clone()), Box::new(std::io::empty()))
        .with_trace(TraceSink::Memory(Vec::new()));
    let mut vm = Vm::new(&m, Limits::default()).unwrap();
    vm.start_main(vec![]).unwrap();
    let status = host.run_to_end(&mut vm).unwrap();
    assert_eq!(status.exit_status(), Some(0));
    let text = String::from_utf8(out.0.borrow().clone()).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "untrusted",
            "trusted",
            "untrusted",
            "untrusted",
            "untrusted",
            "untrusted",
            "untrusted",
            "trusted",
            "minehello"
        ]
    );
    // The trace records the effects with their labels.
    let reads: Vec<_> = host
        .trace_events()
        .iter()
        .filter(|e| e.effect == "fs.read")
        .collect();
    assert_eq!(reads.len(), 2);
    assert_eq!(reads[0].result_label, "untrusted");
    assert_eq!(reads[1].result_label, "trusted");
    let last = host.trace_events().last().unwrap();
    assert_eq!(
        (last.effect.as_str(), last.arg_labels[0].as_str()),
        ("io.print", "untrusted")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fs_read_is_denied_outside_granted_roots_and_through_dotdot_or_symlinks() {
    let dir = std::env::temp_dir().join(format!("aivm-policy-{}", std::process::id()));
    let ok = dir.join("ok");
    std::fs::create_dir_all(&ok).unwrap();
    std::fs::write(dir.join("secret.txt"), "s").unwrap();
    std::fs::write(ok.join("a.txt"), "a").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("secret.txt"), ok.join("link.txt")).ok();
    let policy = aivm_vm::policy::PolicyBuilder::new(".")
        .flags(&aivm_vm::policy::GrantFlags {
            allow_read: Some(vec![ok.display().to_string()]),
            ..Default::default()
        })
        .expect("valid grants")
        .build();
    let mut host = Host::new(
        policy,
        Box::new(std::io::sink()),
        Box::new(std::io::empty()),
    );
    let mut read = |p: std::path::PathBuf| {
        let req = aivm_vm::EffectRequest {
            task: aivm_vm::TaskId(0),
            native: "fs.read".into(),
            args: vec![HostValue::str(p.to_str().unwrap())],
            control: Default::default(),
        };
        host.perform(&req).unwrap().map_err(|e| e.kind)
    };
    assert_eq!(read(ok.join("a.txt")).unwrap().as_str(), Some("a"));
    assert_eq!(read(ok.join("../secret.txt")).unwrap_err(), "PolicyDenied");
    assert_eq!(read(dir.join("secret.txt")).unwrap_err(), "PolicyDenied");
    assert_eq!(read(dir.join("missing.txt")).unwrap_err(), "PolicyDenied");
    assert_eq!(read(ok.join("missing.txt")).unwrap_err(), "IoError");
    #[cfg(unix)]
    assert_eq!(read(ok.join("link.txt")).unwrap_err(), "PolicyDenied");
    std::fs::remove_dir_all(&dir).ok();
}

/// A program with state across effects: a map of counts, a closure over a cell, a growing
/// string; it reads lines until the end of input and prints as it goes.
fn stateful_program() -> VerifiedModule {
    let mut b = Builder::new();
    let print = b.native("io.print");
    let read_line = b.native("io.read_line");
    let get = b.native("map.get");
    let inc = b.func_caps(
        "bump",
        0,
        1,
        1,
        vec![
            UpvalGet { dst: 0, idx: 0 },
            AddImm {
                dst: 0,
                src: 0,
                imm: 1,
            },
            UpvalSet { idx: 0, src: 0 },
            Return { src: 0 },
        ],
    );
    let sep = b.kstr(",");
    b.main(
        12,
        vec![
            NewMap {
                dst: 0,
                kvs: rr(0, 0),
            },
            LoadInt { dst: 1, imm: 0 },
            CellNew { dst: 1, src: 1 },
            Closure {
                dst: 2,
                func: inc,
                caps: rr(1, 1),
            },
            LoadConst { dst: 3, k: sep },
            // loop (pc 5): line = read_line(); if line == null: break
            Effect {
                dst: 4,
                native: read_line,
                args: rr(0, 0),
            },
            LoadNull { dst: 5 },
            Eq { dst: 5, a: 4, b: 5 },
            JumpIf {
                cond: 5,
                target: 22,
            },
            // counts[line] = get(counts, line, 0) + 1
            Move { dst: 6, src: 0 },
            Move { dst: 7, src: 4 },
            LoadInt { dst: 8, imm: 0 },
            CallNative {
                dst: 9,
                native: get,
                args: rr(6, 3),
            },
            AddImm {
                dst: 9,
                src: 9,
                imm: 1,
            },
            SetIndex {
                obj: 0,
                key: 4,
                src: 9,
            },
            // s = s + line; n = bump(); print "{count}{n}{line}"
            Add { dst: 3, a: 3, b: 4 },
            Call {
                dst: 10,
                callee: 2,
                args: rr(0, 0),
            },
            Move { dst: 11, src: 4 },
            Concat {
                dst: 11,
                parts: rr(9, 3),
            },
            Effect {
                dst: 11,
                native: print,
                args: rr(11, 1),
            },
            Effect {
                dst: 11,
                native: print,
                args: rr(0, 1),
            },
            Jump { target: 5 },
            Effect {
                dst: 11,
                native: print,
                args: rr(3, 1),
            },
            CellGet { dst: 10, cell: 1 },
            Return { src: 10 },
        ],
    )
}

const INPUT: [&str; 4] = ["a", "b", "a", "c"];

/// Runs to the end, answering read_line from INPUT, optionally serialising the whole VM to
/// JSON and restoring it into a fresh VM at every effect.
fn run_stateful(roundtrip: bool) -> (Vec<String>, HostValue) {
    let module = stateful_program();
    let mut vm = Vm::new(&module, Limits::default()).unwrap();
    vm.start_main(vec![]).unwrap();
    let mut input = INPUT.iter();
    let mut out = Vec::new();
    loop {
        let step = vm.run().unwrap();
        let req = match step {
            Step::Done { value, .. } => return (out, value),
            Step::Effect(req) => req,
            Step::Idle => panic!("idle with main unfinished"),
        };
        if roundtrip {
            let bytes = serde_json::to_vec(&vm.snapshot()).unwrap();
            drop(vm);
            let state: VmState = serde_json::from_slice(&bytes).unwrap();
            vm = Vm::restore(&module, Limits::default(), state).unwrap();
            assert_eq!(
                vm.pending(req.task),
                Some(&req),
                "the pending effect survives"
            );
        }
        let answer = match req.native.as_str() {
            "io.print" => {
                out.push(req.args[0].as_str().unwrap().to_string());
                HostValue::null()
            }
            "io.read_line" => input
                .next()
                .map_or(HostValue::null(), |s| HostValue::str(*s)),
            other => panic!("unexpected effect {other}"),
        };
        vm.resume(req.task, Ok(answer)).unwrap();
    }
}

#[test]
fn snapshot_restore_at_every_effect_gives_the_same_run() {
    let (plain, v1) = run_stateful(false);
    let (restored, v2) = run_stateful(true);
    assert_eq!(plain, restored);
    assert_eq!(v1, v2);
    assert_eq!(
        plain.first().unwrap(),
        "11a",
        "count, bump and line of the first line"
    );
    assert_eq!(plain.last().unwrap(), ",abac");
    assert_eq!(plain[plain.len() - 2], r#"{"a": 2, "b": 1, "c": 1}"#);
    assert_eq!(v1.data, aivm_vm::HostData::Int(4));
}
