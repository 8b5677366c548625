//! Tool ids and tool globs: what a valid id is (`[A-Za-z0-9_.-]{1,128}`, compared byte for
//! byte) and how a pattern with `*` matches one (the whole id, never a prefix).

use rustc_hash::FxHashMap;

/// The longest tool id (and tool pattern) accepted.
pub const MAX_TOOL_NAME: usize = 128;

/// Whether `name` is a valid tool id: 1 to 128 bytes of ASCII letters, digits, `_`, `.`, `-`.
/// Nothing is folded or normalised: `Send_Email`, `sеnd_email` (Cyrillic е) and `send_email `
/// are not `send_email`, and only the first is even valid.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=MAX_TOOL_NAME).contains(&name.len()) && name.bytes().all(name_byte)
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// A tool id or a pattern over ids in which `*` matches any run of id characters (including
/// none and including dots). Nothing else is special, and a pattern matches whole ids only.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ToolPattern {
    text: String,
    /// The literal pieces between the stars (`a*b*c` → `a`, `b`, `c`); one piece = no star.
    pieces: Vec<String>,
}

impl ToolPattern {
    /// Parses an id or pattern; the message says what is wrong.
    pub fn parse(text: &str) -> Result<ToolPattern, String> {
        if text.is_empty() || text.len() > MAX_TOOL_NAME {
            return Err(format!(
                "a tool id or pattern must be 1 to {MAX_TOOL_NAME} characters, found {}",
                text.len()
            ));
        }
        if let Some(c) = text
            .chars()
            .find(|&c| c != '*' && !(c.is_ascii() && name_byte(c as u8)))
        {
            return Err(format!(
                "{text:?} is not a tool id or pattern: {c:?} is not allowed (ids use A-Z a-z 0-9 _ . - and patterns add *)"
            ));
        }
        Ok(ToolPattern {
            text: text.to_string(),
            pieces: text.split('*').map(str::to_string).collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a plain id (no `*`).
    pub fn is_exact(&self) -> bool {
        self.pieces.len() == 1
    }

    /// Whether the pattern matches all of `name`.
    pub fn matches(&self, name: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return false,
        };
        let Some(mut tail) = name.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return tail.is_empty();
        };
        // Each middle piece is taken at its leftmost place: any later match of the pieces
        // after it is also possible from there, so leftmost never loses a match.
        for piece in middle {
            match tail.find(piece.as_str()) {
                Some(at) => tail = &tail[at + piece.len()..],
                None => return false,
            }
        }
        tail.len() >= last.len() && tail.ends_with(last.as_str())
    }
}

impl std::fmt::Display for ToolPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for ToolPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ToolPattern::parse(&s)
    }
}

impl std::str::FromStr for ToolPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ToolPattern::parse(s)
    }
}

/// A set of tool patterns, each with a value (where it came from, or a rule index): exact ids
/// are found by hash, patterns with `*` are tried in order.
#[derive(Clone, Debug)]
pub(crate) struct PatternSet<T> {
    exact: FxHashMap<String, Vec<T>>,
    globs: Vec<(ToolPattern, T)>,
}

impl<T> Default for PatternSet<T> {
    fn default() -> Self {
        PatternSet {
            exact: FxHashMap::default(),
            globs: Vec::new(),
        }
    }
}

impl<T: Clone> PatternSet<T> {
    pub(crate) fn insert(&mut self, pattern: ToolPattern, value: T) {
        if pattern.is_exact() {
            self.exact.entry(pattern.text).or_default().push(value);
        } else {
            self.globs.push((pattern, value));
        }
    }

    /// The value of the first pattern (exact ids first) that matches `name`.
    pub(crate) fn first(&self, name: &str) -> Option<&T> {
        if let Some(v) = self.exact.get(name).and_then(|v| v.first()) {
            return Some(v);
        }
        self.globs
            .iter()
            .find(|(p, _)| p.matches(name))
            .map(|(_, v)| v)
    }

    /// Calls `f` with every value whose pattern matches `name`: exact ones, then patterns,
    /// each in order.
    pub(crate) fn each(&self, name: &str, mut f: impl FnMut(&T)) {
        self.exact.get(name).into_iter().flatten().for_each(&mut f);
        self.globs
            .iter()
            .filter(|(p, _)| p.matches(name))
            .for_each(|(_, v)| f(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exact_ascii_ids() {
        for ok in ["send_email", "fs.read", "a", "A-Z_0.9", &"x".repeat(128)] {
            assert!(valid_tool_name(ok), "{ok}");
        }
        for bad in [
            "",
            "send email",
            "send_email ",
            "send_email\0",
            "s\u{0435}nd_email", // Cyrillic е
            "mcp:b/send_email",
            "ｓend",
            &"x".repeat(129),
        ] {
            assert!(!valid_tool_name(bad), "{bad:?}");
        }
    }

    fn m(p: &str, name: &str) -> bool {
        ToolPattern::parse(p).unwrap().matches(name)
    }

    #[test]
    fn patterns_match_whole_ids_only() {
        assert!(m("send_email", "send_email"));
        assert!(!m("send_email", "send_email2"));
        assert!(!m("send_email", "Send_Email"));
        assert!(m("fs.*", "fs.read"));
        assert!(m("fs.*", "fs."));
        assert!(!m("fs.*", "fs"));
        assert!(!m("fs.*", "xfs.read"));
        assert!(m("*", "anything.at.all"));
        assert!(m("*.read", "fs.read"));
        assert!(!m("*.read", "fs.reader"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a_b_b_c"));
        assert!(!m("a*b*c", "a_c_b"));
        assert!(!m("ab*ba", "aba"));
        assert!(m("ab*ba", "abba"));
        assert!(m("**", ""));
        // `.` and `-` are literal, not regex.
        assert!(!m("fs.read", "fsxread"));
    }

    #[test]
    fn bad_patterns_say_why() {
        assert!(ToolPattern::parse("").is_err());
        assert!(ToolPattern::parse("fs.?").unwrap_err().contains("'?'"));
        assert!(ToolPattern::parse("s\u{0435}nd").is_err());
        assert!(ToolPattern::parse("[a]").is_err());
    }

    #[test]
    fn sets_find_exact_then_patterns_in_order() {
        let mut s = PatternSet::default();
        s.insert(ToolPattern::parse("*").unwrap(), 1);
        s.insert(ToolPattern::parse("fs.read").unwrap(), 2);
        s.insert(ToolPattern::parse("fs.*").unwrap(), 3);
        assert_eq!(s.first("fs.read"), Some(&2));
        assert_eq!(s.first("http.get"), Some(&1));
        let mut all = Vec::new();
        s.each("fs.read", |v| all.push(*v));
        assert_eq!(all, [2, 1, 3]);
    }
}
