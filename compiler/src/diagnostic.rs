//! Compiler diagnostics: every error has a code, a message, a labelled primary span, optional
//! extra labels and a hint. Stages collect them into [`Diagnostics`], which owns the source
//! text so that the CLI can render them with `miette`.

use std::sync::Arc;

use crate::ast::Span;

/// Index into [`SourceMap`].
pub type FileId = u32;

/// One source file the compiler read.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as the user would recognise it (relative where possible).
    pub name: String,
    pub text: Arc<str>,
    /// Byte offset of the start of each line, for positions in O(log n).
    line_starts: Vec<u32>,
}

/// Every source file of one compilation.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let text: Arc<str> = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i as u32 + 1))
            .collect();
        self.files.push(SourceFile {
            name: name.into(),
            text,
            line_starts,
        });
        (self.files.len() - 1) as FileId
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id as usize)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: u32) -> (u32, u32) {
        let Some(f) = self.get(file) else {
            return (0, 0);
        };
        let offset = offset.min(f.text.len() as u32);
        let line = f
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = f.line_starts.get(line - 1).copied().unwrap_or(0) as usize;
        let col = f
            .text
            .get(start..offset as usize)
            .map_or(0, |l| l.chars().count());
        (line as u32, col as u32 + 1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A secondary label: another place that explains the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub text: String,
}

/// One diagnostic, e.g. `E0301 mismatched types` at a span with a label and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// A stable code such as `E0101`, listed in spec/diagnostics.md.
    pub code: &'static str,
    pub severity: Severity,
    /// What is wrong, in one line.
    pub message: String,
    pub file: FileId,
    pub span: Span,
    /// The text under the primary span: why it is wrong, here.
    pub label: String,
    pub extra: Vec<Label>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>, file: FileId, span: Span) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            file,
            span,
            label: String::new(),
            extra: Vec::new(),
            help: None,
        }
    }

    pub fn with_label(mut self, text: impl Into<String>) -> Self {
        self.label = text.into();
        self
    }

    pub fn with_extra(mut self, file: FileId, span: Span, text: impl Into<String>) -> Self {
        self.extra.push(Label {
            file,
            span,
            text: text.into(),
        });
        self
    }

    pub fn with_help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }
}

/// The diagnostics of a compilation, with the sources they point into.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let mut map = SourceMap::default();
        let f = map.add("a.ail", "ab\né€x\n\nlast");
        assert_eq!(map.line_col(f, 0), (1, 1));
        assert_eq!(map.line_col(f, 2), (1, 3), "the newline ends line 1");
        assert_eq!(map.line_col(f, 3), (2, 1));
        // `é` and `€` are two and three bytes: `x` is the third character of line 2.
        assert_eq!(map.line_col(f, 8), (2, 3));
        assert_eq!(map.line_col(f, 10), (3, 1));
        assert_eq!(map.line_col(f, 11), (4, 1));
        assert_eq!(
            map.line_col(f, 1000),
            (4, 5),
            "past the end clamps to the end"
        );
        assert_eq!(
            map.line_col(99, 0),
            (0, 0),
            "an unknown file has no position"
        );
    }
}
