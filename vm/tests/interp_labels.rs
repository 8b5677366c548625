//! The label instructions and the control label, on hand-written assembly: Classify,
//! Declassify, Endorse and EndorseNarrow relabel deeply and copy instead of changing shared
//! data; the lowering ones leave label events; branches, labelled callees, returns, spawned
//! tasks and caught errors carry the control label to effects (`control`, and the arguments
//! with strict flow); the verifier rejects label lowering without authority and effects the
//! manifest does not list. A property test checks that without the label instructions no
//! result is ever labelled below what it was computed from.

mod interp_support;

use std::collections::BTreeSet;

use aivm_vm::format::{assemble, verify, Module, VerifiedModule};
use aivm_vm::{
    EffectRequest, HostData, HostValue, Integrity, LabelInfo, LabelOp, Limits, Step, Vm,
};
use proptest::prelude::*;

fn readers(names: &[&str]) -> LabelInfo {
    LabelInfo {
        integrity: Integrity::Trusted,
        readers: Some(names.iter().map(|s| s.to_string()).collect()),
    }
}

fn secret() -> LabelInfo {
    LabelInfo {
        integrity: Integrity::Untrusted,
        readers: Some(BTreeSet::from(["alice".to_string()])),
    }
}

/// Assembles `text`, lists its effect natives as tools, and verifies it.
fn module(text: &str) -> VerifiedModule {
    let mut m = assemble(text).unwrap_or_else(|e| panic!("assembly: {e}"));
    interp_support::fill_tools(&mut m);
    VerifiedModule::new(m).unwrap_or_else(|e| panic!("verify: {e}"))
}

/// What a run of function 0 with `args` asked and returned.
struct Run {
    effects: Vec<EffectRequest>,
    value: HostValue,
    vm: Vm,
}

fn run(m: &VerifiedModule, args: Vec<HostValue>, strict: bool) -> Run {
    let mut vm = Vm::new(m, Limits::default()).expect("loads");
    vm.set_strict_flow(strict);
    vm.start(0, args).expect("starts");
    let mut effects = Vec::new();
    loop {
        match vm.run().expect("runs") {
            Step::Effect(req) => {
                let task = req.task;
                effects.push(req);
                vm.resume(task, Ok(HostValue::null())).expect("resumes");
            }
            Step::Done { value, .. } => return Run { effects, value, vm },
            Step::Idle => panic!("idle"),
        }
    }
}

fn items(v: &HostValue) -> &[HostValue] {
    match &v.data {
        HostData::List(items) => items,
        other => panic!("not a list: {other:?}"),
    }
}

/// main(x): builds outer = [x, [x]], runs OP on it into r4, and returns [r4, the original
/// outer list, the original's first item].
const RELABEL: &str = "
.strings
    s0 = \"main\"
    s1 = \"x\"
    s2 = \"alice\"
    s3 = \"bob\"
.const
    k0 = readers [s2, s3]
    k1 = readers public
    k2 = readers [s3]
.types
    t0 = any
.manifest
    declassify
    endorse
.func f0 s0
    params s1: t0
    regs 8
    NewList r2, r0+1
    Move r1, r0
    NewList r3, r1+2
    OP
    Move r5, r3
    LoadInt r7, 0
    GetIndex r6, r3, r7
    NewList r0, r4+3
    Return r0
";

fn relabel(op: &str, arg: HostValue) -> Run {
    let m = module(&RELABEL.replace("OP", op));
    run(&m, vec![arg], false)
}

#[test]
fn classify_joins_readers_into_every_node_of_a_copy() {
    let r = relabel(
        "Classify r4, r3, k0",
        HostValue::int(7).labelled(readers(&["bob", "carol"])),
    );
    let out = items(&r.value);
    let (copy, original, item) = (&out[0], &out[1], &out[2]);
    // The copy: the list, the nested list and both items are readable by alice and bob only,
    // intersected with what each node had (the ints: bob and carol).
    assert_eq!(copy.label, readers(&["alice", "bob"]));
    let inner = items(copy);
    assert_eq!(inner[0].label, readers(&["bob"]));
    assert_eq!(inner[1].label, readers(&["alice", "bob"]));
    assert_eq!(items(&inner[1])[0].label, readers(&["bob"]));
    // The original, reachable through another register, is untouched.
    assert!(original.label.is_public());
    assert_eq!(items(original)[0].label, readers(&["bob", "carol"]));
    assert_eq!(item.label, readers(&["bob", "carol"]));
    let mut vm = r.vm;
    assert!(vm.take_label_events().is_empty(), "raising records nothing");
}

#[test]
fn declassify_sets_readers_deeply_and_records_an_event() {
    let r = relabel(
        "Declassify r4, r3, k1",
        HostValue::int(7).labelled(secret()),
    );
    let out = items(&r.value);
    let inner = items(&out[0]);
    // Readers gone (public), integrity kept: still untrusted.
    assert_eq!(inner[0].label, LabelInfo::untrusted());
    assert_eq!(items(&inner[1])[0].label, LabelInfo::untrusted());
    assert_eq!(
        items(&out[1])[0].label,
        secret(),
        "the original keeps its label"
    );
    let mut vm = r.vm;
    let events = vm.take_label_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (e.op, e.narrow, e.func.as_str(), e.pc),
        (LabelOp::Declassify, false, "main", 3)
    );
    assert_eq!(e.from, secret());
    assert_eq!(e.to, LabelInfo::untrusted());
    assert!(vm.take_label_events().is_empty(), "taken once");

    let r = relabel(
        "Declassify r4, r3, k2",
        HostValue::int(7).labelled(secret()),
    );
    let inner = items(&items(&r.value)[0]).to_vec();
    assert_eq!(
        inner[0].label.readers,
        Some(BTreeSet::from(["bob".to_string()]))
    );
}

#[test]
fn endorse_trusts_every_node_and_keeps_readers() {
    let r = relabel("Endorse r4, r3", HostValue::int(7).labelled(secret()));
    let inner = items(&items(&r.value)[0]).to_vec();
    assert_eq!(inner[0].label, readers(&["alice"]));
    let mut vm = r.vm;
    let events = vm.take_label_events();
    assert_eq!(events[0].op, LabelOp::Endorse);
    assert_eq!(events[0].to, readers(&["alice"]));
}

/// main(x): x endorsed against the type "yes" | "no".
const NARROW: &str = "
.strings
    s0 = \"main\"
    s1 = \"x\"
    s2 = \"yes\"
    s3 = \"no\"
.types
    t0 = any
    t1 = strlit s2
    t2 = strlit s3
    t3 = union [t1, t2]
.func f0 s0
    params s1: t0
    regs 2
    TryBegin r1, @caught
    EndorseNarrow r0, r0, t3
    TryEnd
    Return r0
caught:
    Return r1
";

#[test]
fn endorse_narrow_checks_the_type_first() {
    let m = module(NARROW);
    let r = run(
        &m,
        vec![HostValue::str("yes").labelled(LabelInfo::untrusted())],
        false,
    );
    assert_eq!(r.value.as_str(), Some("yes"));
    assert!(r.value.label.is_public(), "{:?}", r.value.label);
    let mut vm = r.vm;
    let events = vm.take_label_events();
    assert!(events[0].narrow && events[0].op == LabelOp::Endorse);

    let r = run(
        &m,
        vec![HostValue::str("maybe; wire $1000").labelled(LabelInfo::untrusted())],
        false,
    );
    match &r.value.data {
        HostData::Error { kind, message } => {
            assert_eq!(kind, "TypeError");
            assert!(message.contains("\"yes\""), "{message}");
        }
        other => panic!("expected a TypeError, got {other:?}"),
    }
    let mut vm = r.vm;
    assert!(
        vm.take_label_events().is_empty(),
        "a failed check lowers nothing"
    );
}

#[test]
fn a_cycle_is_relabelled_as_a_cycle() {
    // main(x): l = [x]; push(l, l); classify l; return the copy's second item's first item.
    let text = "
.strings
    s0 = \"main\"
    s1 = \"x\"
    s2 = \"alice\"
    s3 = \"list.push\"
.const
    k0 = readers [s2]
.types
    t0 = any
.natives
    n0 = s3
.func f0 s0
    params s1: t0
    regs 4
    NewList r1, r0+1
    Move r2, r1
    CallNative r3, n0, r1+2
    Classify r1, r1, k0
    LoadInt r2, 1
    GetIndex r3, r1, r2
    GetIndex r3, r3, r2
    LoadInt r2, 0
    GetIndex r3, r3, r2
    Return r3
";
    let r = run(&module(text), vec![HostValue::int(5)], false);
    assert_eq!(r.value.data, HostData::Int(5));
    assert_eq!(r.value.label, readers(&["alice"]));
}

/// main(c): prints "a" before and "b" after branching on c, then returns 1.
const BRANCH: &str = "
.strings
    s0 = \"main\"
    s1 = \"c\"
    s2 = \"a\"
    s3 = \"b\"
    s4 = \"io.print\"
.const
    k0 = str s2
    k1 = str s3
.types
    t0 = any
.natives
    n0 = s4
.func f0 s0
    params s1: t0
    regs 2
    LoadConst r1, k0
    Effect r1, n0, r1+1
    JumpIfNot r0, @skip
skip:
    LoadConst r1, k1
    Effect r1, n0, r1+1
    LoadInt r1, 1
    Return r1
";

#[test]
fn a_branch_on_a_labelled_condition_raises_the_control_label() {
    let m = module(BRANCH);
    let r = run(
        &m,
        vec![HostValue::new(HostData::Bool(true)).labelled(secret())],
        false,
    );
    assert!(r.effects[0].control.is_public());
    assert_eq!(
        r.effects[1].control,
        secret(),
        "never lowered within the frame"
    );
    assert!(
        r.effects[1].args[0].label.is_public(),
        "default mode reports only"
    );
    assert_eq!(
        r.value.label,
        secret(),
        "the last frame returns under its control label"
    );

    let r = run(
        &m,
        vec![HostValue::new(HostData::Bool(true)).labelled(secret())],
        true,
    );
    assert!(r.effects[0].args[0].label.is_public());
    assert_eq!(
        r.effects[1].args[0].label,
        secret(),
        "strict flow labels the arguments"
    );

    let r = run(&m, vec![HostValue::new(HostData::Bool(true))], true);
    assert!(r
        .effects
        .iter()
        .all(|e| e.control.is_public() && e.args[0].label.is_public()));
}

/// main(f, x): g = f; calls g(x) (the callee prints), then prints; returns what g returned.
const CALLS: &str = "
.strings
    s0 = \"main\"
    s1 = \"f\"
    s2 = \"x\"
    s3 = \"callee\"
    s4 = \"io.print\"
    s5 = \"after\"
    s6 = \"inner\"
.const
    k0 = str s5
    k1 = str s6
.types
    t0 = any
.natives
    n0 = s4
.func f0 s0
    params s1: t0, s2: t0
    regs 4
    LoadFunc r0, f1
    Call r2, r0, r1+1
    LoadConst r3, k0
    Effect r3, n0, r3+1
    Return r2
.func f1 s3
    params s2: t0
    regs 2
    LoadConst r1, k1
    Effect r1, n0, r1+1
    JumpIf r0, @done
done:
    LoadInt r1, 0
    Return r1
";

#[test]
fn callees_start_at_the_callers_control_and_return_theirs() {
    let m = module(CALLS);
    // The condition the callee branches on is labelled: its result carries that, its
    // caller's control does not (no try region is open).
    let r = run(
        &m,
        vec![
            HostValue::null(),
            HostValue::new(HostData::Bool(false)).labelled(secret()),
        ],
        false,
    );
    assert!(r.effects[0].control.is_public());
    assert!(r.effects[1].control.is_public());
    assert_eq!(r.value.label, secret());
}

/// main(c): spawns f1(c) and awaits it; f1 prints after branching on c... and main branches
/// on c before spawning f2, which prints at once.
const SPAWN: &str = "
.strings
    s0 = \"main\"
    s1 = \"c\"
    s2 = \"child\"
    s3 = \"io.print\"
.const
    k0 = str s2
.types
    t0 = any
.natives
    n0 = s3
.func f0 s0
    params s1: t0
    regs 3
    JumpIf r0, @go
go:
    LoadFunc r1, f1
    Spawn r2, r1, r0+0
    Await r2, r2
    Return r2
.func f1 s2
    params
    regs 1
    LoadConst r0, k0
    Effect r0, n0, r0+1
    LoadInt r0, 3
    Return r0
";

#[test]
fn a_spawned_task_starts_at_the_spawners_control_label() {
    let r = run(
        &module(SPAWN),
        vec![HostValue::new(HostData::Bool(true)).labelled(secret())],
        false,
    );
    assert_eq!(r.effects.len(), 1);
    assert_eq!(r.effects[0].control, secret());
    assert_eq!(r.value.label, secret());
}

/// main(c): try { f1(c) } catch; then print. f1 throws when c is true.
const CATCH: &str = "
.strings
    s0 = \"main\"
    s1 = \"c\"
    s2 = \"thrower\"
    s3 = \"io.print\"
    s4 = \"after\"
.const
    k0 = str s4
.types
    t0 = any
.natives
    n0 = s3
.func f0 s0
    params s1: t0
    regs 3
    TryBegin r1, @caught
    CallFn r2, f1, r0+1
    TryEnd
caught:
    LoadConst r2, k0
    Effect r2, n0, r2+1
    LoadInt r2, 0
    Return r2
.func f1 s2
    params s1: t0
    regs 1
    JumpIfNot r0, @fine
    Throw r0
fine:
    Return r0
";

#[test]
fn whether_a_call_raised_reaches_the_control_label_of_the_frame_that_catches() {
    let m = module(CATCH);
    for c in [true, false] {
        let r = run(
            &m,
            vec![HostValue::new(HostData::Bool(c)).labelled(secret())],
            false,
        );
        assert_eq!(r.effects.len(), 1);
        assert_eq!(r.effects[0].control, secret(), "raised: {c}");
    }
}

fn rejected(text: &str, authority: &str, rule: &str) {
    let mut m: Module = assemble(text).unwrap_or_else(|e| panic!("assembly: {e}"));
    interp_support::fill_tools(&mut m);
    m.manifest.declassify = authority.contains("declassify");
    m.manifest.endorse = authority.contains("endorse");
    let e = verify(&m).expect_err("must be rejected");
    assert!(e.to_string().contains(rule), "{e} lacks {rule}");
}

#[test]
fn the_verifier_rejects_lowering_without_authority_and_effects_outside_the_manifest() {
    let with = |op: &str| {
        RELABEL
            .replace("OP", op)
            .replace("    declassify\n    endorse\n", "")
    };
    rejected(&with("Declassify r4, r3, k1"), "endorse", "[V22]");
    rejected(&with("Endorse r4, r3"), "declassify", "[V22]");
    rejected(
        &with("Classify r4, r3, k1"),
        "",
        "Classify needs a list of readers",
    );
    rejected(&with("Classify r4, r3, k1"), "", "[V11]");
    // Classify needs no authority; Declassify with it passes.
    let mut m = assemble(&with("Classify r4, r3, k0")).unwrap();
    assert!(verify(&m).is_ok());
    m.manifest.declassify = true;
    assert!(verify(&m).is_ok());
    // LoadConst of a readers constant.
    rejected(
        &with("LoadConst r4, k0"),
        "",
        "is a readers constant; LoadConst",
    );
    // EndorseNarrow of a type that is not narrow: string, any, a list.
    for t in ["str", "any", "list t1"] {
        let text = NARROW.replace("t3 = union [t1, t2]", &format!("t3 = {t}"));
        rejected(&text, "", "[V23]");
    }

    // An effect whose native is not a tool of the manifest.
    let mut m = assemble(BRANCH).unwrap();
    assert!(verify(&m).unwrap_err().to_string().contains("[V21]"));
    interp_support::fill_tools(&mut m);
    assert!(verify(&m).is_ok());
    // Manifest strings: a tool id with a space, tools out of order, a resource with a
    // control character.
    let mut bad = m.clone();
    bad.strings.push("io print".into());
    bad.manifest.tools.push(bad.strings.len() as u32 - 1);
    assert!(verify(&bad)
        .unwrap_err()
        .to_string()
        .contains("is not a tool id"));
    let mut bad = m.clone();
    bad.strings.push("clock.now".into());
    bad.manifest.tools.push(bad.strings.len() as u32 - 1);
    assert!(verify(&bad)
        .unwrap_err()
        .to_string()
        .contains("strictly ascending"));
    let mut bad = m.clone();
    bad.strings.push("a\nb".into());
    bad.manifest.read.push(bad.strings.len() as u32 - 1);
    assert!(verify(&bad).unwrap_err().to_string().contains("[V20]"));
    // Readers constants: sorted, each once.
    let text = RELABEL
        .replace("OP", "Classify r4, r3, k0")
        .replace("k0 = readers [s2, s3]", "k0 = readers [s3, s2]");
    rejected(&text, "", "[V2]");
}

/// One instruction of a random straight-line program over int registers r0..r3.
#[derive(Clone, Debug)]
enum Op {
    Add(u16, u16, u16),
    Sub(u16, u16, u16),
    AddImm(u16, u16, i32),
    Neg(u16, u16),
    Move(u16, u16),
    Classify(u16, u16),
    /// Branches on `r[a] < r[b]` and on `r[a] == r[b]`: the control label takes both in.
    Branch(u16, u16),
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0u16..4;
    prop_oneof![
        (r.clone(), r.clone(), r.clone()).prop_map(|(d, a, b)| Op::Add(d, a, b)),
        (r.clone(), r.clone(), r.clone()).prop_map(|(d, a, b)| Op::Sub(d, a, b)),
        (r.clone(), r.clone(), -5i32..5).prop_map(|(d, a, i)| Op::AddImm(d, a, i)),
        (r.clone(), r.clone()).prop_map(|(d, a)| Op::Neg(d, a)),
        (r.clone(), r.clone()).prop_map(|(d, a)| Op::Move(d, a)),
        (r.clone(), r.clone()).prop_map(|(d, a)| Op::Classify(d, a)),
        (r.clone(), r).prop_map(|(a, b)| Op::Branch(a, b)),
    ]
}

fn label() -> impl Strategy<Value = LabelInfo> {
    prop_oneof![
        Just(LabelInfo::public()),
        Just(LabelInfo::untrusted()),
        Just(readers(&["alice"])),
        Just(readers(&["alice", "bob"])),
        Just(secret()),
    ]
}

/// Whether `a` is at least as restrictive as `b` (`a ⊒ b`).
fn above(a: &LabelInfo, b: &LabelInfo) -> bool {
    a.join(b) == *a
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Each register's label ends at or above the join of every label that flowed into it,
    /// and the effect after the program reports a control label at or above every branch's
    /// operands. Nothing but the label instructions lowers a label.
    #[test]
    fn labels_only_rise_without_the_label_instructions(
        inputs in proptest::collection::vec((0i64..100, label()), 4),
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        let mut code = String::new();
        let mut flows: Vec<LabelInfo> = inputs.iter().map(|(_, l)| l.clone()).collect();
        let mut control = LabelInfo::public();
        let alice = readers(&["alice"]);
        for (i, o) in ops.iter().enumerate() {
            match *o {
                Op::Add(d, a, b) | Op::Sub(d, a, b) => {
                    let name = if matches!(o, Op::Add(..)) { "Add" } else { "Sub" };
                    code += &format!("    {name} r{d}, r{a}, r{b}\n");
                    flows[d as usize] = flows[a as usize].join(&flows[b as usize]);
                }
                Op::AddImm(d, a, imm) => {
                    code += &format!("    AddImm r{d}, r{a}, {imm}\n");
                    flows[d as usize] = flows[a as usize].clone();
                }
                Op::Neg(d, a) => {
                    code += &format!("    Neg r{d}, r{a}\n");
                    flows[d as usize] = flows[a as usize].clone();
                }
                Op::Move(d, a) => {
                    code += &format!("    Move r{d}, r{a}\n");
                    flows[d as usize] = flows[a as usize].clone();
                }
                Op::Classify(d, a) => {
                    code += &format!("    Classify r{d}, r{a}, k0\n");
                    flows[d as usize] = flows[a as usize].join(&alice);
                }
                Op::Branch(a, b) => {
                    code += &format!(
                        "    JumpIfNotLt r{a}, r{b}, @l{i}\nl{i}:\n    Eq r4, r{a}, r{b}\n    JumpIf r4, @m{i}\nm{i}:\n"
                    );
                    control = control.join(&flows[a as usize]).join(&flows[b as usize]);
                }
            }
        }
        let text = format!(
            ".strings\n    s0 = \"main\"\n    s1 = \"p\"\n    s2 = \"alice\"\n    s3 = \"clock.now\"\n\
             .const\n    k0 = readers [s2]\n.types\n    t0 = any\n.natives\n    n0 = s3\n\
             .func f0 s0\n    params s1: t0, s1: t0, s1: t0, s1: t0\n    regs 6\n{code}\
                 Effect r5, n0, r0+0\n    NewList r5, r0+4\n    Return r5\n"
        );
        let m = module(&text);
        let args = inputs.iter().map(|(v, l)| HostValue::int(*v).labelled(l.clone())).collect();
        let r = run(&m, args, false);
        prop_assert!(above(&r.effects[0].control, &control));
        prop_assert!(above(&r.value.label, &control), "returned under the control label");
        for (got, want) in items(&r.value).iter().zip(&flows) {
            prop_assert!(above(&got.label, want), "{:?} below {:?}", got.label, want);
        }
    }
}
