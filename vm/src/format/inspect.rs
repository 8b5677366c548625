//! The capability manifest as `aivm inspect` prints it: models, tools, resources and
//! authority of a module, one entry per line in a fixed order, so that the text is stable
//! and diffs well (spec/bytecode.md, "Manifest").

use std::fmt::Write as _;

use super::module::{Module, StrId};
use super::natives::native_by_name;

/// The manifest of `m` as text: one section per kind, each entry on its own indented line,
/// `(none)` for an empty section. The tools are split three ways: natives, MCP tools
/// (`SERVER.TOOL`: dotted, not a native; their section only when there are some), and the
/// program's functions offered to models (no dot). Names are printed as they are (tool ids and model names are
/// plain); resources and logical model names are quoted with escapes, so no byte of the module
/// can forge a line.
pub fn manifest_text(m: &Module) -> String {
    let mut out = String::new();
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    let section = |out: &mut String, title: &str, lines: Vec<String>| {
        let _ = writeln!(out, "{title}:");
        if lines.is_empty() {
            out.push_str("  (none)\n");
        }
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    };
    let models = m
        .models
        .iter()
        .map(|s| format!("{} = {}", quote(m.str(s.name)), quote(m.str(s.logical))))
        .collect();
    section(&mut out, "models", models);
    let man = &m.manifest;
    let (dotted, offered): (Vec<StrId>, Vec<StrId>) =
        man.tools.iter().partition(|&&t| m.str(t).contains('.'));
    let (native, mcp): (Vec<StrId>, Vec<StrId>) = dotted
        .into_iter()
        .partition(|&t| native_by_name(m.str(t)).is_some());
    let names = |ids: &[StrId]| ids.iter().map(|&t| m.str(t).to_string()).collect();
    section(&mut out, "tools", names(&native));
    if !mcp.is_empty() {
        section(&mut out, "mcp tools", names(&mcp));
    }
    section(&mut out, "offered to models", names(&offered));
    for (what, list) in man.resources() {
        section(
            &mut out,
            what,
            list.iter().map(|&s| quote(m.str(s))).collect(),
        );
    }
    let mut authority = Vec::new();
    if man.declassify {
        authority.push("declassify".to_string());
    }
    if man.endorse {
        authority.push("endorse".to_string());
    }
    section(&mut out, "authority", authority);
    out
}
