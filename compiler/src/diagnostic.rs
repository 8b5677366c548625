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
}

/// Every source file of one compilation.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
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
        let end = (offset as usize).min(f.text.len());
        let before = f.text.get(..end).unwrap_or("");
        let line = before.matches('\n').count() as u32 + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        (line, col)
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
