//! Keeps spec/instructions.md and the opcode table in step: the markdown table between the
//! `opcode-table` markers must list exactly the rows of `OPCODES` (code, name, operands, flow,
//! effect), in order, and every opcode must have its own `#### Name (code)` entry.

use aivm_vm::format::{EffectClass, Flow, OPCODES};

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/instructions.md");
    std::fs::read_to_string(path).expect("spec/instructions.md exists")
}

#[test]
fn opcode_table_matches_the_spec() {
    let text = spec();
    let begin = text.find("<!-- opcode-table: begin").expect("begin marker");
    let end = text.find("<!-- opcode-table: end -->").expect("end marker");
    let rows: Vec<Vec<String>> = text[begin..end]
        .lines()
        .filter(|l| l.starts_with("| 0x"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), OPCODES.len(), "one row per opcode");
    for (row, info) in rows.iter().zip(OPCODES) {
        let operands: Vec<String> = info
            .operands
            .iter()
            .map(|(n, k)| format!("{n}: {}", k.name()))
            .collect();
        let flow = match info.flow {
            Flow::Next => "next",
            Flow::Jump => "jump",
            Flow::Branch => "branch",
            Flow::Stop => "stop",
        };
        let effect = match info.effect {
            EffectClass::Pure => "pure",
            EffectClass::Yields => "yields",
        };
        let want = vec![
            format!("{:#04x}", info.code),
            info.name.to_string(),
            operands.join(", "),
            flow.to_string(),
            effect.to_string(),
        ];
        assert_eq!(
            row, &want,
            "spec row for {} differs from OPCODES",
            info.name
        );
    }
}

#[test]
fn every_opcode_has_an_entry() {
    let text = spec();
    for info in OPCODES {
        let heading = format!("#### {} ({:#04x})", info.name, info.code);
        let at = text
            .find(&heading)
            .unwrap_or_else(|| panic!("no entry `{heading}`"));
        let entry = &text[at..];
        let entry = &entry[..entry[4..].find("\n#").map_or(entry.len(), |e| e + 4)];
        for part in ["* Semantics:", "* Errors:", "* Label:"] {
            assert!(entry.contains(part), "{heading} lacks {part}");
        }
    }
}
