//! The async host driver: inline effects in order, the journal it writes, and replay — which
//! reproduces a run's output and journal byte for byte from the journal alone, and stops at the
//! first divergence with the event number, what was recorded and what the program asked for.

use std::cell::RefCell;
use std::io::{Cursor, Write};
use std::rc::Rc;

use aivm_vm::format::{assemble, VerifiedModule};
use aivm_vm::host::journal::{self, Event};
use aivm_vm::host::{Host, RunError, TraceSink};
use aivm_vm::policy::Policy;
use aivm_vm::{Limits, Vm};

/// A writer tests can read back after the host is done with it.
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

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).expect("utf-8")
    }
}

/// Reads two lines and prints each; `clock.now` in between.
const ECHO: &str = "\
.strings
    s0 = \"main\"
    s1 = \"io.read_line\"
    s2 = \"io.print\"
    s3 = \"clock.now\"
.types
    t0 = any
.natives
    n0 = s1
    n1 = s2
    n2 = s3
.manifest
    tools [s3, s2, s1]
.entry f0
.func f0 s0
    regs 2
    Effect r0, n0, r0+0
    Effect r1, n1, r0+1
    Effect r1, n2, r0+0
    Effect r0, n0, r0+0
    Effect r1, n1, r0+1
    LoadInt r0, 0
    Return r0
";

fn module(asm: &str) -> VerifiedModule {
    VerifiedModule::new(assemble(asm).expect("assembles")).expect("verifies")
}

/// Runs `asm` with `stdin`, optionally replaying `replay`; returns the outcome, the output and
/// the journal text.
fn run(asm: &str, stdin: &str, replay: Option<&str>) -> (Result<String, RunError>, String, String) {
    let m = module(asm);
    let mut vm = Vm::new(&m, Limits::default()).expect("loads");
    vm.start_main(vec![]).expect("main starts");
    let out = Shared::default();
    let journal = Shared::default();
    let mut host = Host::new(
        Policy::default(),
        Box::new(out.clone()),
        Box::new(Cursor::new(stdin.as_bytes().to_vec())),
    )
    .with_trace(TraceSink::JsonLines(Box::new(journal.clone())));
    if let Some(text) = replay {
        host = host.with_replay(journal::parse(text).expect("journal parses"));
    }
    let result = host.run_to_end(&mut vm).map(|v| v.to_json().to_string());
    (result, out.text(), journal.text())
}

#[test]
fn inline_effects_run_in_order_and_are_journalled_between_start_and_end() {
    let (result, out, text) = run(ECHO, "one\ntwo\n", None);
    assert_eq!(result.expect("runs"), "0");
    assert_eq!(out, "one\ntwo\n");
    let events = journal::parse(&text).expect("the journal parses");
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::RunStart(_) => "start".to_string(),
            Event::Effect(ev) => format!("{}#{}", ev.effect, ev.seq),
            Event::RunEnd(end) => format!("end:{}", end.outcome),
            Event::Decision(d) => format!("decision:{}#{}", d.tool, d.seq),
            Event::Label(l) => format!("label:{}", l.op),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "decision:io.read_line#0",
            "io.read_line#0",
            "decision:io.print#1",
            "io.print#1",
            "decision:clock.now#2",
            "clock.now#2",
            "decision:io.read_line#3",
            "io.read_line#3",
            "decision:io.print#4",
            "io.print#4",
            "end:ok"
        ]
    );
}

#[test]
fn a_replay_reproduces_output_and_journal_byte_for_byte_without_reading_input() {
    let (_, out, recorded) = run(ECHO, "one\ntwo\n", None);
    // No input at all this time: the lines and the clock come from the journal.
    let (result, out2, replayed) = run(ECHO, "", Some(&recorded));
    assert_eq!(result.expect("replays"), "0");
    assert_eq!(out2, out);
    assert_eq!(replayed, recorded);
}

#[test]
fn a_changed_program_diverges_at_the_first_difference() {
    let (_, _, recorded) = run(ECHO, "one\ntwo\n", None);
    // The same program, printing the clock instead of the second line.
    let changed = ECHO.replacen(
        "Effect r1, n1, r0+1\n    LoadInt",
        "Effect r1, n1, r1+1\n    LoadInt",
        1,
    );
    let (result, _, _) = run(&changed, "", Some(&recorded));
    match result {
        Err(RunError::ReplayDiverged(d)) => {
            // start, then a decision and an effect event per effect: io.print #4 is event 11.
            assert_eq!(d.event, 11, "{d}");
            assert!(d.recorded.contains("io.print(\"two\")"), "{d}");
            assert!(d.asked.contains("task 0 effect #4: io.print("), "{d}");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
    // A program that stops early leaves recorded effects unasked.
    let short = ECHO.replacen(
        "    Effect r0, n0, r0+0\n    Effect r1, n1, r0+1\n    LoadInt",
        "    LoadInt",
        1,
    );
    let (result, _, _) = run(&short, "", Some(&recorded));
    match result {
        Err(RunError::ReplayDiverged(d)) => {
            assert_eq!(d.event, 9, "{d}");
            assert_eq!(d.asked, "finished");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}
