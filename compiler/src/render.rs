//! Renders [`Diagnostics`] for people with `miette`'s graphical handler: an adapter gives each
//! [`Diagnostic`] miette's view of it (code, severity, labels, help, named source).

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::diagnostic::{Diagnostic, Diagnostics, FileId, Label, Severity, SourceMap};

/// Width of rendered output, fixed so that output (and snapshots of it) do not depend on the
/// terminal.
const WIDTH: usize = 100;

/// At most this many diagnostics are shown; the rest are counted. Beyond helping nobody, each
/// rendering scans its source from the start, so thousands of them would take quadratic time.
const MAX_RENDERED: usize = 100;

/// Renders every diagnostic, separated by blank lines. `color` selects unicode drawing with
/// ANSI colors; otherwise plain ASCII without escape codes. Honouring `NO_COLOR` is the caller's job.
pub fn render(diags: &Diagnostics, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::none()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(WIDTH)
        .with_links(false);
    let mut out = String::new();
    // Errors first: when some must be left out, leave out warnings.
    let errors = diags
        .items
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let mut warnings_left = MAX_RENDERED.saturating_sub(errors);
    let mut errors_left = MAX_RENDERED;
    let shown = diags.items.iter().filter(|d| {
        let left = match d.severity {
            Severity::Error => &mut errors_left,
            Severity::Warning => &mut warnings_left,
        };
        let show = *left > 0;
        *left = left.saturating_sub(1);
        show
    });
    for diag in shown {
        let report = Report::new(diag, &diags.sources);
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering into a String only fails if a Display impl fails; fall back to one line.
            out.push_str(&format!("error[{}]: {}\n", diag.code, diag.message));
        }
        out.push('\n');
    }
    let hidden_errors = errors.saturating_sub(MAX_RENDERED);
    let hidden_warnings =
        (diags.items.len() - errors).saturating_sub(MAX_RENDERED.saturating_sub(errors));
    if hidden_errors + hidden_warnings > 0 {
        out.push_str(&format!(
            "... and {hidden_errors} more error(s) and {hidden_warnings} more warning(s) not shown\n\n"
        ));
    }
    out
}

/// One diagnostic as miette sees it. Labels in the diagnostic's own file are drawn on its
/// source; labels in other files become related notes, each drawn on its own source.
struct Report {
    /// The header line: `error[E0110]`; empty for related notes.
    code: String,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl Report {
    fn new(d: &Diagnostic, sources: &SourceMap) -> Report {
        let mut labels = vec![labeled(d.span, &d.label, true)];
        let mut related = Vec::new();
        for Label { file, span, text } in &d.extra {
            if *file == d.file {
                labels.push(labeled(*span, text, false));
            } else {
                related.push(Report {
                    code: String::new(),
                    severity: miette::Severity::Advice,
                    message: text.clone(),
                    help: None,
                    source: named(sources, *file),
                    labels: vec![labeled(*span, text, true)],
                    related: Vec::new(),
                });
            }
        }
        let source = named(sources, d.file);
        if source.is_none() {
            // Spans without their text cannot be drawn.
            labels.clear();
        }
        let word = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        Report {
            code: format!("{word}[{}]", d.code),
            severity: match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            message: d.message.clone(),
            help: d.help.clone(),
            source,
            labels,
            related,
        }
    }
}

fn named(sources: &SourceMap, file: FileId) -> Option<NamedSource<Arc<str>>> {
    sources
        .get(file)
        .map(|f| NamedSource::new(f.name.clone(), f.text.clone()))
}

fn labeled(span: crate::ast::Span, text: &str, primary: bool) -> LabeledSpan {
    let at = SourceSpan::new(
        (span.start as usize).into(),
        span.end.saturating_sub(span.start) as usize,
    );
    let text = (!text.is_empty()).then(|| text.to_string());
    if primary {
        LabeledSpan::new_primary_with_span(text, at)
    } else {
        LabeledSpan::new_with_span(text, at)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(&self.code) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}
