//! The table of VM natives: functions a module calls by name (`CallNative`) and effects it asks
//! the host to perform (`Effect`). The names and arities are part of the specification
//! (spec/natives.md): a module names the natives it uses in its native table, and the verifier
//! rejects a name this table does not know, an arity mismatch, and a pure call of an effect
//! (or the reverse).

/// One native: its qualified name, its parameters, and whether it is an effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeInfo {
    pub name: &'static str,
    pub arity: u16,
    /// The parameter names, in order (`arity` of them): the policy names a call's positional
    /// arguments by them (`fs.write` gets `{path, text}`), so rules can constrain `path`.
    pub params: &'static [&'static str],
    /// `true` for effects: performed by the host, reached only through the `Effect` opcode.
    pub effect: bool,
    pub doc: &'static str,
}

macro_rules! natives {
    ($($name:literal ($($param:ident),*) $(, $effect:ident)? : $doc:literal;)*) => {
        /// Every native, in a fixed order (the order is not part of the format: modules refer
        /// to natives by name).
        pub const NATIVES: &[NativeInfo] = &[
            $(NativeInfo {
                name: $name,
                // The arity is the number of parameters, so the two cannot disagree.
                arity: <[&str]>::len(&[$(stringify!($param)),*]) as u16,
                params: &[$(stringify!($param)),*],
                effect: natives!(@effect $($effect)?),
                doc: $doc,
            },)*
        ];
    };
    (@effect effect) => { true };
    (@effect) => { false };
}

natives! {
    // Effects: performed by the host, never by the interpreter.
    "io.print"(value), effect: "Writes the text of the value and a newline to standard output.";
    "io.read_line"(), effect: "Reads one line of standard input, without its newline; null at end of input.";
    "fs.read"(path), effect: "Reads a UTF-8 text file; the path must be granted with --allow-read.";
    "clock.now"(), effect: "Milliseconds since the Unix epoch, as an int.";
    "llm.call"(model, request), effect: "One model turn (model logical name, request); reached only through the CallLlm opcode.";
    "fs.write"(path, text), effect: "Writes a UTF-8 text file (created or truncated); the path must be granted with --allow-write.";
    "fs.list"(path), effect: "The sorted names in a directory; the path must be granted with --allow-read.";
    "proc.run"(cmd, args), effect: "Runs a granted command (no shell) with a list of string arguments; {status, stdout, stderr}.";
    "env.get"(name), effect: "The value of a granted environment variable, or null when it is not set.";
    "io.ask"(question), effect: "Shows a question to the user and returns their one-line answer.";
    "http.get"(url), effect: "An HTTP GET of a granted host; {status, headers, body}.";
    "http.post"(url, body, content_type), effect: "An HTTP POST of a text body with a content type to a granted host; {status, headers, body}.";
    "tool.call"(name, args), effect: "The gate before the program runs a tool a model asked for (tool name, arguments); the host checks budgets and journals it, and answers null or raises.";
    "mcp.call"(tool, arguments), effect: "Calls the MCP tool SERVER.TOOL with an arguments record or map; {content, structured}, or ToolError / McpError.";
    "mcp.resource"(server, uri), effect: "Reads a resource of an MCP server (resources/read): {contents: [{type, uri, mime_type, text|blob}]}, or McpError.";
    "mcp.prompt"(server, name, arguments), effect: "Gets a prompt of an MCP server with its arguments (prompts/get): {description, messages: [{role, content}]}, or McpError.";
    "mcp.progress"(done, total, message), effect: "Reports the progress of a served call (done, total or null, message or null): a progress notification to the MCP client that asked for it; journalled only under aivm run. Returns null.";

    // Core.
    "core.len"(value): "Length of a string (in characters), list or map.";
    "core.str"(value): "The text of a value, as print shows it.";
    "core.int"(value): "Converts a float (truncating), bool or numeric string to an int.";
    "core.float"(value): "Converts an int or numeric string to a float.";
    "core.type_of"(value): "The name of the value's run-time type.";
    "core.error"(kind, message): "A new error value with a kind and a message.";
    "core.error_with"(kind, message, payload): "A new error value with a kind, a message and a payload.";
    "core.label_of"(value): "The value's information-flow label, as text (a debugging aid).";

    // Lists.
    "list.push"(list, value): "Appends a value to a list in place; returns null.";
    "list.pop"(list): "Removes and returns the last item; an error on an empty list.";
    "list.insert"(list, index, value): "Inserts a value at an index in place.";
    "list.remove"(list, index): "Removes and returns the item at an index.";
    "list.sort"(list): "A new list of the items in ascending order (all numbers or all strings).";
    "list.reverse"(list): "A new list of the items in reverse order.";
    "list.contains"(list, value): "Whether the list holds an item equal to the value.";
    "list.index_of"(list, value): "The index of the first item equal to the value, or -1.";
    "list.join"(list, sep): "The texts of the items joined by a separator.";
    "list.concat"(a, b): "A new list of the items of both lists.";
    "list.copy"(list): "A shallow copy of the list.";

    // Maps.
    "map.keys"(map): "A list of the map's keys in insertion order.";
    "map.values"(map): "A list of the map's values in insertion order.";
    "map.has"(map, key): "Whether the map has the key.";
    "map.get"(map, key, default): "The value for a key, or the default.";
    "map.remove"(map, key): "Removes a key; returns its value or null.";

    // Strings.
    "string.split"(s, sep): "Splits a string on a separator.";
    "string.upper"(s): "Upper-cased copy.";
    "string.lower"(s): "Lower-cased copy.";
    "string.trim"(s): "Copy without leading and trailing white space.";
    "string.starts_with"(s, prefix): "Whether the string starts with the prefix.";
    "string.ends_with"(s, suffix): "Whether the string ends with the suffix.";
    "string.contains"(s, needle): "Whether the string contains the needle.";
    "string.find"(s, needle): "Character index of the first occurrence of the needle, or -1.";
    "string.replace"(s, needle, with): "Copy with every occurrence of a needle replaced.";
    "string.chars"(s): "A list of the string's characters.";
    "string.repeat"(s, n): "The string repeated n times.";
    "string.parse_int"(s): "The int written in the string, or null.";
    "string.parse_float"(s): "The float written in the string, or null.";

    // Math.
    "math.abs"(x): "Absolute value (int overflow is an error).";
    "math.min"(a, b): "The smaller of two numbers.";
    "math.max"(a, b): "The larger of two numbers.";
    "math.floor"(x): "Largest int not above the number.";
    "math.ceil"(x): "Smallest int not below the number.";
    "math.round"(x): "Nearest int, halves away from zero.";
    "math.sqrt"(x): "Square root, as a float.";
    "math.pow"(x, y): "A number raised to a power, as a float.";
    "math.sin"(x): "Sine, as a float.";
    "math.cos"(x): "Cosine, as a float.";
    "math.log"(x): "Natural logarithm, as a float.";
    "math.exp"(x): "e raised to the number, as a float.";

    // JSON.
    "json.parse"(text): "The value written in a JSON text; an error names the position.";
    "json.stringify"(value): "Compact JSON text of a value.";

    // Schemas.
    "schema.conform"(value, schema): "The value checked against a JSON Schema and converted to its shape; a ValueError names the path of a mismatch.";
}

/// The effect `CallLlm` yields; the verifier rejects it in `Effect` (rule V13).
pub const LLM_CALL: &str = "llm.call";

/// The effect that calls a tool of an MCP server (spec/natives.md); the gate judges it as the
/// MCP tool it names, not as a native.
pub const MCP_CALL: &str = "mcp.call";

/// Whether `prefix` is a native family: the part before the dot of some native's name (`fs`,
/// `llm`, `mcp`, ...). An MCP server may not be named like one, so that no MCP tool id can be
/// mistaken for a native.
pub fn is_native_family(prefix: &str) -> bool {
    NATIVES.iter().any(|n| {
        n.name
            .split_once('.')
            .is_some_and(|(family, _)| family == prefix)
    })
}

/// Whether `name` may name an MCP server: 1 to 64 of `A-Z a-z 0-9 _ -`, and not a native
/// family.
pub fn is_mcp_server_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        && !is_native_family(name)
}

/// The native with this name, if the VM has one.
pub fn native_by_name(name: &str) -> Option<(usize, &'static NativeInfo)> {
    NATIVES.iter().enumerate().find(|(_, n)| n.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for n in NATIVES {
            assert!(seen.insert(n.name), "duplicate native {}", n.name);
        }
        assert!(native_by_name("io.print").is_some_and(|(_, n)| n.effect));
        assert!(native_by_name("core.len").is_some_and(|(_, n)| !n.effect));
    }

    #[test]
    fn parameters_are_distinct_identifiers() {
        for n in NATIVES {
            assert_eq!(usize::from(n.arity), n.params.len(), "{}", n.name);
            let mut seen = std::collections::HashSet::new();
            for p in n.params {
                assert!(
                    p.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !p.is_empty(),
                    "{}: parameter {p}",
                    n.name
                );
                assert!(seen.insert(p), "{}: parameter {p} twice", n.name);
            }
        }
        let write = native_by_name("fs.write").map(|(_, n)| n.params);
        assert_eq!(write, Some(&["path", "text"][..]));
        let post = native_by_name("http.post").map(|(_, n)| n.params);
        assert_eq!(post, Some(&["url", "body", "content_type"][..]));
        let mcp = native_by_name(MCP_CALL).map(|(_, n)| (n.params, n.effect));
        assert_eq!(mcp, Some((&["tool", "arguments"][..], true)));
    }

    #[test]
    fn server_names_exclude_native_families() {
        for ok in ["files", "everything", "my-server_2", "A"] {
            assert!(is_mcp_server_name(ok), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            "fs",
            "mcp",
            "llm",
            "tool",
            "a.b",
            "caf\u{e9}",
            "a b",
            long.as_str(),
        ] {
            assert!(!is_mcp_server_name(bad), "{bad}");
        }
        assert!(is_native_family("string") && !is_native_family("files"));
    }
}
