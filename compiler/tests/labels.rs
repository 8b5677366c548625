//! The label builtins, the `endorse` item of `llm` and `needs`, compiled and run: each builtin
//! relabels as spec/language.md says (checked with `label_of`), the ones that lower a label
//! need the module's `needs` (E0218) and written-out readers (E0219), `endorse` in an `llm`
//! needs a narrow type (E0318), the manifest lists the effects the pruned code asks for, the
//! offered functions and every module's `needs`, and it survives encoding. Control labels
//! reach effects from compiled `if` and `for`.

use std::path::PathBuf;

use aivm_compiler::{compile_file, compile_source};
use aivm_vm::format::{decode, encode, Instr, Module, VerifiedModule};
use aivm_vm::{
    EffectRequest, HostData, HostError, HostValue, Integrity, LabelInfo, Limits, Step, Vm,
};

fn compile(src: &str) -> Module {
    match compile_source("labels.ail", src) {
        Ok(c) => c.module,
        Err(d) => panic!("does not compile: {:?}", d.items),
    }
}

fn codes(src: &str) -> Vec<&'static str> {
    match compile_source("labels.ail", src) {
        Ok(_) => panic!("compiles"),
        Err(d) => d
            .items
            .iter()
            .map(|i| i.code)
            .filter(|c| c.starts_with('E'))
            .collect(),
    }
}

fn secret() -> LabelInfo {
    LabelInfo {
        integrity: Integrity::Untrusted,
        readers: Some(["alice".to_string()].into()),
    }
}

/// Runs `main(args)` where `args` is a list of strings whose items carry `label`; effects
/// are answered with null. Returns every effect asked and what `print` printed.
fn run(
    m: Module,
    args: &[&str],
    label: &LabelInfo,
    strict: bool,
) -> (Vec<EffectRequest>, Vec<String>) {
    let m = VerifiedModule::new(m).expect("verifies");
    let mut vm = Vm::new(&m, Limits::default()).expect("loads");
    vm.set_strict_flow(strict);
    let list = HostValue::new(HostData::List(
        args.iter()
            .map(|a| HostValue::str(*a).labelled(label.clone()))
            .collect(),
    ));
    vm.start(m.entry.expect("main"), vec![list])
        .expect("starts");
    let (mut effects, mut printed) = (Vec::new(), Vec::new());
    loop {
        match vm.run().expect("runs") {
            Step::Effect(req) => {
                if req.native == "io.print" {
                    printed.push(req.args[0].as_str().unwrap_or("").to_string());
                }
                let r = match req.native.as_str() {
                    "io.print" => Ok(HostValue::null()),
                    other => Err(HostError::new("IoError", format!("no {other}"))),
                };
                let task = req.task;
                effects.push(req);
                vm.resume(task, r).expect("resumes");
            }
            Step::Done { .. } => return (effects, printed),
            Step::Idle => panic!("idle"),
        }
    }
}

#[test]
fn the_builtins_relabel_deeply() {
    let m = compile(
        r#"
needs declassify
needs endorse

fn main(args: [string]) {
  let s = args[0]
  print("input {label_of(s)}")
  let c = classify([s, "x"], ["bob", "alice", "bob"])
  print("classified {label_of(c)} {label_of(c[0])} {label_of(c[1])}")
  let d = declassify(c, null)
  print("declassified {label_of(d[0])} {label_of(d[1])}")
  let r = declassify(s, ["carol"])
  print("readers {label_of(r)}")
  let e = endorse({v: s})
  print("endorsed {label_of(e.v)}")
  print("original {label_of(s)} {label_of(c[0])}")
}
"#,
    );
    let (_, out) = run(m, &["hi"], &secret(), false);
    assert_eq!(
        out,
        [
            "input untrusted, readers={alice}",
            "classified trusted, readers={alice, bob} untrusted, readers={alice} trusted, readers={alice, bob}",
            "declassified untrusted trusted",
            "readers untrusted, readers={carol}",
            "endorsed trusted, readers={alice}",
            "original untrusted, readers={alice} untrusted, readers={alice}",
        ]
    );
}

#[test]
fn lowering_needs_declared_authority_and_written_readers() {
    assert_eq!(
        codes("fn main() { let x = declassify(1, null) }"),
        ["E0218"]
    );
    assert_eq!(codes("fn main() { let x = endorse(1) }"), ["E0218"]);
    // The authority of another module does not count: it must be this module's.
    assert_eq!(
        codes("needs endorse\nfn main() { let x = declassify(1, null) }"),
        ["E0218"]
    );
    assert_eq!(
        codes("fn main() { let r = [\"a\"]; let x = classify(1, r) }"),
        ["E0219"]
    );
    assert_eq!(codes("fn main() { let x = classify(1, null) }"), ["E0219"]);
    assert_eq!(
        codes("fn main() { let x = classify(1, [\"\"]) }"),
        ["E0219"]
    );
    assert_eq!(codes("fn main() { let x = classify(1) }"), ["E0219"]);
    assert_eq!(
        codes("needs endorse\nfn main() { let x = endorse(1, 2) }"),
        ["E0219"]
    );
    // Classify needs nothing; a program's own `endorse` function is an ordinary call.
    compile("fn main() { let x = classify(1, [\"a\"]) }");
    let m = compile("fn endorse(x) { return x }\nfn main() { print(endorse(1)) }");
    assert!(!m
        .functions
        .iter()
        .flat_map(|f| &f.code)
        .any(|i| matches!(i, Instr::Endorse { .. })));
}

#[test]
fn an_llm_answer_is_endorsed_only_for_a_narrow_type() {
    let src = |ty: &str| {
        format!("model smart = \"large\"\nfn main() {{\n  let a = llm smart {ty}{{\n    user \"q\"\n    endorse\n  }}\n  print(a)\n}}\n")
    };
    for narrow in ["-> bool ", "-> \"yes\" | \"no\" ", "-> int? ", "-> float "] {
        let m = compile(&src(narrow));
        let main = &m.functions[m.entry.unwrap() as usize];
        assert!(
            main.code
                .iter()
                .any(|i| matches!(i, Instr::EndorseNarrow { .. })),
            "{narrow}"
        );
        assert!(!m.manifest.endorse, "narrow endorsement needs no authority");
        VerifiedModule::new(m).expect("verifies");
    }
    for wide in ["", "-> string ", "-> [bool] ", "-> {ok: bool} ", "-> any "] {
        assert_eq!(codes(&src(wide)), ["E0318"], "{wide}");
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "aivm-compiler-labels-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn the_manifest_lists_used_effects_offered_functions_and_every_modules_needs() {
    let dir = temp_dir("manifest");
    std::fs::write(
        dir.join("util.ail"),
        "needs write \"./out\"\nneeds net \"b.example.com\"\nneeds declassify\nexport fn now() { return clock_now() }\nextern fn clock_now() -> int = \"clock.now\"\nfn unused() { print(read_line()) }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.ail"),
        r#"import "./util.ail"
needs net "a.example.com"
needs net "b.example.com"
needs run "git"
model smart = "large"

/// Looks up a word.
fn lookup(word: string) -> string {
  return word
}

fn main() {
  print(util.now())
  let a = llm smart {
    user "q"
    tools [lookup]
  }
}
"#,
    )
    .unwrap();
    let m = compile_file(&dir.join("main.ail"))
        .expect("compiles")
        .module;
    let names = |ids: &[u32]| {
        ids.iter()
            .map(|&i| m.str(i).to_string())
            .collect::<Vec<_>>()
    };
    // Sorted; `io.read_line` is only used by a pruned function; `llm.call` is a model, not a
    // tool; the agent loop's gate `tool.call` is an effect the code asks for.
    assert_eq!(
        names(&m.manifest.tools),
        ["clock.now", "io.print", "lookup", "tool.call"]
    );
    assert_eq!(names(&m.manifest.net), ["a.example.com", "b.example.com"]);
    assert_eq!(names(&m.manifest.write), ["./out"]);
    assert_eq!(names(&m.manifest.run), ["git"]);
    assert!(m.manifest.read.is_empty() && m.manifest.env.is_empty());
    assert!(m.manifest.declassify && !m.manifest.endorse);
    let back = decode(&encode(&m)).expect("decodes");
    assert_eq!(back.manifest, m.manifest);
    VerifiedModule::new(back).expect("verifies");
}

#[test]
fn control_labels_reach_effects_from_compiled_branches_and_loops() {
    let m = compile(
        r#"
fn main(args: [string]) {
  print("before")
  let x = 0
  if args[0] == "yes" {
    x = 1
  }
  print("after")
}
"#,
    );
    let (effects, _) = run(m.clone(), &["yes"], &secret(), false);
    assert!(effects[0].control.is_public());
    assert_eq!(effects[1].control, secret());
    assert!(
        effects[1].args[0].label.is_public(),
        "default mode: control only"
    );
    let (effects, _) = run(m, &["no"], &secret(), true);
    assert_eq!(
        effects[1].args[0].label,
        secret(),
        "strict: the argument carries it"
    );

    // A loop over a labelled list: how often it runs depends on the list.
    let m = compile(
        r#"
fn main(args: [string]) {
  let items = classify(args, ["alice"])
  for a in items {
  }
  print("done")
}
"#,
    );
    let (effects, _) = run(m, &["a"], &LabelInfo::public(), false);
    assert_eq!(
        effects[0].control.readers,
        Some(["alice".to_string()].into())
    );
}
