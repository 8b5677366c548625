//! The naming rules of MCP servers and tools (spec/mcp.md §Names): a server name is a short
//! word that no native family uses, and a tool id is `SERVER.TOOL` with TOOL as the server
//! spells it, from a small ASCII alphabet (so no homoglyph or control character gets through).

use crate::format::NATIVES;

/// Families of natives a server may not be named after, besides those in `NATIVES` (some are
/// reserved for natives to come).
const RESERVED: &[&str] = &[
    "io", "fs", "llm", "tool", "http", "proc", "env", "clock", "mcp", "core", "list", "map",
    "string", "json", "math", "schema", "label", "std",
];

/// Whether `name` may name a server: `[A-Za-z0-9_-]{1,64}`, not a native family.
pub fn check_server_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        return Err(format!(
            "{name:?} is not a server name (1 to 64 of A-Z a-z 0-9 _ -)"
        ));
    }
    let native = NATIVES
        .iter()
        .filter_map(|n| n.name.split_once('.').map(|(family, _)| family))
        .chain(RESERVED.iter().copied())
        .any(|family| family == name);
    if native {
        return Err(format!(
            "{name:?} is the name of a native family: choose another server name"
        ));
    }
    Ok(())
}

/// Whether `name` may name a tool: `[A-Za-z0-9_.-]{1,128}`.
pub fn check_tool_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > 128 || !name.chars().all(ok_char) {
        return Err(format!(
            "{:?} is not a tool name (1 to 128 of A-Z a-z 0-9 _ . -)",
            name.chars().take(140).collect::<String>()
        ));
    }
    Ok(())
}

/// Splits a tool id `SERVER.TOOL` at its first dot (server names have none).
pub fn split_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('.')
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        for ok in ["files", "web-2", "A_b", &"x".repeat(64)] {
            assert_eq!(check_server_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a.b",
            "a b",
            "é",
            &"x".repeat(65),
            "fs",
            "io",
            "mcp",
            "json",
        ] {
            assert!(check_server_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tool_names_and_ids() {
        for ok in ["read_text_file", "get-sum", "a.b", "X9"] {
            assert_eq!(check_tool_name(ok), Ok(()), "{ok}");
        }
        // A Cyrillic `а` looks like `a`.
        for bad in ["", "re\u{430}d", "a b", "a/b", "a\nb", &"t".repeat(129)] {
            assert!(check_tool_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(split_id("files.a.b"), Some(("files", "a.b")));
        assert_eq!(split_id("files"), None);
        assert_eq!(split_id(".x"), None);
        assert_eq!(split_id("x."), None);
    }
}
