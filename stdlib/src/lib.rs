//! aivm's standard library: modules written in `.ail`, compiled into every program that
//! imports them (the prelude into every program). This crate only exposes their sources.

/// The module names `import` accepts, e.g. `import std.strings`.
pub const MODULES: &[&str] = &[
    "std.prelude",
    "std.strings",
    "std.lists",
    "std.maps",
    "std.math",
    "std.json",
    "std.agent",
    "std.http",
    "std.fs",
    "std.proc",
    "std.env",
    "std.io",
    "std.mcp",
];

/// The source text of a standard module, by its dotted name (`"std.strings"`).
pub fn source(module: &str) -> Option<&'static str> {
    Some(match module {
        "std.prelude" => include_str!("../std/prelude.ail"),
        "std.strings" => include_str!("../std/strings.ail"),
        "std.lists" => include_str!("../std/lists.ail"),
        "std.maps" => include_str!("../std/maps.ail"),
        "std.math" => include_str!("../std/math.ail"),
        "std.json" => include_str!("../std/json.ail"),
        "std.agent" => include_str!("../std/agent.ail"),
        "std.http" => include_str!("../std/http.ail"),
        "std.fs" => include_str!("../std/fs.ail"),
        "std.proc" => include_str!("../std/proc.ail"),
        "std.env" => include_str!("../std/env.ail"),
        "std.io" => include_str!("../std/io.ail"),
        "std.mcp" => include_str!("../std/mcp.ail"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_module_has_a_source() {
        for m in MODULES {
            let src = source(m).unwrap_or("");
            assert!(src.contains("fn "), "{m} has no functions");
        }
        assert!(source("std.nope").is_none());
        assert!(source("strings").is_none());
    }
}
