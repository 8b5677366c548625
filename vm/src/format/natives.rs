//! The table of VM natives: functions a module calls by name (`CallNative`) and effects it asks
//! the host to perform (`Effect`). The names and arities are part of the specification
//! (spec/natives.md): a module names the natives it uses in its native table, and the verifier
//! rejects a name this table does not know, an arity mismatch, and a pure call of an effect
//! (or the reverse).

/// One native: its qualified name, number of arguments, and whether it is an effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeInfo {
    pub name: &'static str,
    pub arity: u16,
    /// `true` for effects: performed by the host, reached only through the `Effect` opcode.
    pub effect: bool,
    pub doc: &'static str,
}

macro_rules! natives {
    ($($name:literal / $arity:literal $(, $effect:ident)? : $doc:literal;)*) => {
        /// Every native, in a fixed order (the order is not part of the format: modules refer
        /// to natives by name).
        pub const NATIVES: &[NativeInfo] = &[
            $(NativeInfo {
                name: $name,
                arity: $arity,
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
    "io.print" / 1, effect: "Writes the text of the value and a newline to standard output.";
    "io.read_line" / 0, effect: "Reads one line of standard input, without its newline; null at end of input.";
    "fs.read" / 1, effect: "Reads a UTF-8 text file; the path must be granted with --allow-read.";
    "clock.now" / 0, effect: "Milliseconds since the Unix epoch, as an int.";
    "llm.call" / 2, effect: "One model turn (model logical name, request); reached only through the CallLlm opcode.";
    "tool.call" / 2, effect: "The gate before the program runs a tool a model asked for (tool name, arguments); the host checks budgets and journals it, and answers null or raises.";

    // Core.
    "core.len" / 1: "Length of a string (in characters), list or map.";
    "core.str" / 1: "The text of a value, as print shows it.";
    "core.int" / 1: "Converts a float (truncating), bool or numeric string to an int.";
    "core.float" / 1: "Converts an int or numeric string to a float.";
    "core.type_of" / 1: "The name of the value's run-time type.";
    "core.error" / 2: "A new error value with a kind and a message.";
    "core.error_with" / 3: "A new error value with a kind, a message and a payload.";
    "core.label_of" / 1: "The value's information-flow label, as text (a debugging aid).";

    // Lists.
    "list.push" / 2: "Appends a value to a list in place; returns null.";
    "list.pop" / 1: "Removes and returns the last item; an error on an empty list.";
    "list.insert" / 3: "Inserts a value at an index in place.";
    "list.remove" / 2: "Removes and returns the item at an index.";
    "list.sort" / 1: "A new list of the items in ascending order (all numbers or all strings).";
    "list.reverse" / 1: "A new list of the items in reverse order.";
    "list.contains" / 2: "Whether the list holds an item equal to the value.";
    "list.index_of" / 2: "The index of the first item equal to the value, or -1.";
    "list.join" / 2: "The texts of the items joined by a separator.";
    "list.concat" / 2: "A new list of the items of both lists.";
    "list.copy" / 1: "A shallow copy of the list.";

    // Maps.
    "map.keys" / 1: "A list of the map's keys in insertion order.";
    "map.values" / 1: "A list of the map's values in insertion order.";
    "map.has" / 2: "Whether the map has the key.";
    "map.get" / 3: "The value for a key, or the default.";
    "map.remove" / 2: "Removes a key; returns its value or null.";

    // Strings.
    "string.split" / 2: "Splits a string on a separator.";
    "string.upper" / 1: "Upper-cased copy.";
    "string.lower" / 1: "Lower-cased copy.";
    "string.trim" / 1: "Copy without leading and trailing white space.";
    "string.starts_with" / 2: "Whether the string starts with the prefix.";
    "string.ends_with" / 2: "Whether the string ends with the suffix.";
    "string.contains" / 2: "Whether the string contains the needle.";
    "string.find" / 2: "Character index of the first occurrence of the needle, or -1.";
    "string.replace" / 3: "Copy with every occurrence of a needle replaced.";
    "string.chars" / 1: "A list of the string's characters.";
    "string.repeat" / 2: "The string repeated n times.";
    "string.parse_int" / 1: "The int written in the string, or null.";
    "string.parse_float" / 1: "The float written in the string, or null.";

    // Math.
    "math.abs" / 1: "Absolute value (int overflow is an error).";
    "math.min" / 2: "The smaller of two numbers.";
    "math.max" / 2: "The larger of two numbers.";
    "math.floor" / 1: "Largest int not above the number.";
    "math.ceil" / 1: "Smallest int not below the number.";
    "math.round" / 1: "Nearest int, halves away from zero.";
    "math.sqrt" / 1: "Square root, as a float.";
    "math.pow" / 2: "A number raised to a power, as a float.";
    "math.sin" / 1: "Sine, as a float.";
    "math.cos" / 1: "Cosine, as a float.";
    "math.log" / 1: "Natural logarithm, as a float.";
    "math.exp" / 1: "e raised to the number, as a float.";

    // JSON.
    "json.parse" / 1: "The value written in a JSON text; an error names the position.";
    "json.stringify" / 1: "Compact JSON text of a value.";

    // Schemas.
    "schema.conform" / 2: "The value checked against a JSON Schema and converted to its shape; a ValueError names the path of a mismatch.";
}

/// The effect `CallLlm` yields; the verifier rejects it in `Effect` (rule V13).
pub const LLM_CALL: &str = "llm.call";

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
}
