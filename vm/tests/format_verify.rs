//! Verifier fixtures: every `vm/tests/verifier/*.aia` file is assembled and verified. A file
//! with a `; error: <text>` mark must be rejected with a message containing the text (and,
//! when the mark is on an instruction, naming that instruction's function and pc); a file
//! without a mark must be accepted.

mod common;

use std::path::Path;

use aivm_vm::format::{assemble, verify, Instr, Module, Opcode, VerifiedModule};
use common::{random_any_module, Rng};

/// The mark of a fixture: the expected text, and the function name and pc of the marked line
/// when it is an instruction.
struct Mark {
    text: String,
    at: Option<(String, usize)>,
}

fn find_mark(src: &str, m: &Module) -> Option<Mark> {
    let mut func: Option<String> = None;
    let mut pc = 0;
    let mut mark = None;
    for line in src.lines() {
        let code = line.split(';').next().unwrap_or("").trim();
        let first = code.split_whitespace().next().unwrap_or("");
        if first == ".func" {
            let idx = m.functions.len().min(
                code.split_whitespace()
                    .nth(1)
                    .and_then(|f| f[1..].parse::<usize>().ok())
                    .unwrap(),
            );
            func = Some(m.str(m.functions[idx].name).to_string());
            pc = 0;
        } else if first.starts_with('.') {
            func = None;
        }
        let is_instr = func.is_some() && Opcode::from_name(first).is_some();
        if let Some((_, text)) = line.split_once("; error: ") {
            assert!(mark.is_none(), "one mark per fixture");
            mark = Some(Mark {
                text: text.trim().to_string(),
                at: is_instr.then(|| (func.clone().unwrap(), pc)),
            });
        }
        if is_instr {
            pc += 1;
        }
    }
    mark
}

#[test]
fn verifier_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verifier");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "aia"))
        .collect();
    files.sort();
    let mut rejected = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let src = std::fs::read_to_string(path).unwrap();
        let m = assemble(&src).unwrap_or_else(|e| panic!("{name}:{e}"));
        match (find_mark(&src, &m), verify(&m)) {
            (None, Ok(())) => {}
            (None, Err(e)) => panic!("{name}: valid fixture rejected: {e}"),
            (Some(mark), Ok(())) => panic!("{name}: accepted, expected {:?}", mark.text),
            (Some(mark), Err(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&mark.text),
                    "{name}: {msg:?} lacks {:?}",
                    mark.text
                );
                if let Some((func, pc)) = mark.at {
                    let place = format!("function `{func}` #");
                    assert!(msg.contains(&place), "{name}: {msg:?} lacks {place:?}");
                    assert!(
                        msg.contains(&format!(", pc {pc} (")),
                        "{name}: {msg:?} not at pc {pc}"
                    );
                }
                rejected += 1;
            }
        }
    }
    assert!(rejected >= 12, "only {rejected} rejection fixtures");
}

#[test]
fn error_message_shape() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verifier/register_beyond_frame.aia"),
    )
    .unwrap();
    let err = verify(&assemble(&src).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function `main` #0, pc 2 (Add): register r12 read but frame has 10 registers [V9]"
    );
    assert_eq!(err.rule, 9);
}

#[test]
fn verified_module_wraps_only_valid_modules() {
    let mut m = common::every_opcode_module();
    let v = VerifiedModule::new(m.clone()).unwrap();
    assert_eq!(v.functions.len(), 2);
    m.functions[0].code.push(Instr::Nop {});
    assert!(VerifiedModule::new(m).is_err());
}

#[test]
fn wild_modules_never_panic_the_verifier() {
    let mut rng = Rng(42);
    let mut rejected = 0;
    for _ in 0..3_000 {
        rejected += verify(&random_any_module(&mut rng)).is_err() as usize;
    }
    assert!(
        rejected > 1_000,
        "wild modules should mostly be invalid ({rejected})"
    );
}

#[test]
fn huge_frames_are_verified_within_budget() {
    let src = ".strings\n s0 = \"main\"\n.types\n t0 = any\n.func f0 s0\n regs 65535\n LoadNull r65534\n Concat r0, r65534+1\n Return r0\n";
    verify(&assemble(src).unwrap()).unwrap();
}
