//! The parser's front door: [`parse_module`] turns source text into a [`SourceModule`] or
//! the syntax diagnostics (E01xx). The lalrpop grammar stays behind it; this file also holds
//! the helpers the grammar actions call, string-literal decoding and error conversion.

use lalrpop_util::ParseError;

use crate::ast::*;
use crate::diagnostic::{Diagnostic, FileId};
use crate::lexer::{self, Context, Tok};
use crate::nesting;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_parens, unused_imports)]
    grammar
);

/// The error type of the token stream: tokens come pre-lexed, so reading them cannot fail.
pub(crate) type Never = std::convert::Infallible;

type SyntaxError<'s> = ParseError<usize, Tok<'s>, Never>;

/// How deeply string interpolations may nest (`"{"{"{x}"}"}"`); deeper input is rejected
/// rather than recursed into.
const MAX_INTERPOLATION_DEPTH: u32 = 16;

/// At most this many syntax errors are reported per file; after that the rest is noise.
const MAX_SYNTAX_ERRORS: usize = 30;

/// Parses one source file. On failure, returns every syntax error found, in source order.
///
/// Recovery: when the parser stops at an error, the statement (or item) around the error is
/// cut out of the token list and the file is parsed again, so each later error is reported
/// as if the broken statement were not there, without the cascades of token-skipping recovery.
pub fn parse_module(file: FileId, src: &str) -> Result<SourceModule, Vec<Diagnostic>> {
    let lexed = lexer::lex(file, src, 0, Context::File);
    if lexed.fatal {
        return Err(lexed.diags);
    }
    let mut tokens = lexed.tokens;
    let mut leads = line_leads(src, &tokens);
    let mut diags = Vec::new();
    let mut module = None;
    let parser = grammar::ModuleParser::new();
    for _ in 0..MAX_SYNTAX_ERRORS {
        let mut ctx = Ctx::new(file, src);
        // Checked on every attempt: cutting out a broken statement can join two expressions.
        match nesting::check(file, &tokens, 0) {
            Ok(depths) => ctx.string_depths = depths,
            Err(d) => {
                diags.push(*d);
                break;
            }
        }
        let parsed = parser.parse(&mut ctx, tokens.iter().cloned().map(Ok::<_, Never>));
        merge_unique(&mut diags, ctx.diags);
        let error = match parsed {
            Ok(m) => {
                module = Some(m);
                break;
            }
            Err(e) => e,
        };
        let at = match &error {
            ParseError::UnrecognizedToken { token: (l, ..), .. }
            | ParseError::ExtraToken { token: (l, ..) } => *l,
            _ => src.len(),
        };
        diags.push(syntax_diagnostic(file, error));
        let Some(k) = tokens.iter().position(|t| t.0 == at) else {
            break;
        };
        let Some(cut) = recovery_cut(&tokens, &leads, k) else {
            break;
        };
        tokens.drain(cut.clone());
        leads.drain(cut);
    }
    finish(src, lexed.diags, diags, module)
}

/// Adds diagnostics not already present: each parse attempt reports again the problems that
/// grammar actions found before the point where it stopped.
fn merge_unique(into: &mut Vec<Diagnostic>, new: Vec<Diagnostic>) {
    for d in new {
        if !into.contains(&d) {
            into.push(d);
        }
    }
}

/// Whether each token begins a line, or follows `{` or `;`: where statements start.
fn line_leads(src: &str, tokens: &[lexer::Spanned<'_>]) -> Vec<bool> {
    let mut prev: Option<&lexer::Spanned<'_>> = None;
    let mut leads = Vec::with_capacity(tokens.len());
    for t in tokens {
        leads.push(match prev {
            None => true,
            Some((_, Tok::LBrace | Tok::Semi, _)) => true,
            Some((_, _, end)) => src.get(*end..t.0).is_some_and(|gap| gap.contains('\n')),
        });
        prev = Some(t);
    }
    leads
}

/// The token range to cut out after an error at token `k`: the statement or item containing
/// it, from its first token to the next statement start at the same nesting depth (or the
/// `}` that ends its block). Cutting whole bracketed groups keeps delimiters balanced.
fn recovery_cut(
    tokens: &[lexer::Spanned<'_>],
    leads: &[bool],
    k: usize,
) -> Option<std::ops::Range<usize>> {
    let is_open = |t: &Tok<'_>| {
        matches!(
            t,
            Tok::LParen | Tok::LParenLead | Tok::LBracket | Tok::LBracketLead | Tok::LBrace
        )
    };
    let is_close = |t: &Tok<'_>| matches!(t, Tok::RParen | Tok::RBracket | Tok::RBrace);
    // depth[i]: delimiters open around token i (a delimiter pair sits at its outside depth);
    // block[i]: the depth of the statements of the innermost `{...}` around token i.
    let mut depth = Vec::with_capacity(tokens.len());
    let mut block = Vec::with_capacity(tokens.len());
    let mut stack: Vec<(bool, usize)> = Vec::new(); // (is a brace, index of the opener)
    for (i, (_, t, _)) in tokens.iter().enumerate() {
        if is_close(t) {
            stack.pop();
        }
        depth.push(stack.len());
        block.push(stack.iter().rposition(|o| o.0).map_or(0, |p| p + 1));
        if is_open(t) {
            stack.push((matches!(t, Tok::LBrace), i));
        }
    }
    let (_, tok, _) = tokens.get(k)?;
    let closes_block = matches!(tok, Tok::RBrace);
    let d = if closes_block {
        depth.get(k)? + 1
    } else {
        *block.get(k)?
    };
    let before = if closes_block { k } else { k + 1 };
    let mut start = None;
    for j in (0..before).rev() {
        if depth[j] < d {
            break;
        }
        if depth[j] == d && leads[j] {
            start = Some(j);
            break;
        }
    }
    let start = start.unwrap_or_else(|| {
        (0..before)
            .rev()
            .find(|&j| depth[j] < d)
            .map_or(0, |j| j + 1)
    });
    let end = if closes_block {
        k
    } else {
        (k + 1..tokens.len())
            .find(|&j| {
                let t = &tokens[j].1;
                depth[j] < d
                    || (depth[j] == d
                        && leads[j]
                        && !is_close(t)
                        && !matches!(t, Tok::Else | Tok::Catch))
            })
            .unwrap_or(tokens.len())
    };
    (start < end).then_some(start..end)
}

/// Parses a single expression (as found inside `{...}` of a string), e.g. for tools and tests.
pub fn parse_expr(file: FileId, src: &str) -> Result<Expr, Vec<Diagnostic>> {
    let lexed = lexer::lex(file, src, 0, Context::Interpolation);
    if lexed.fatal {
        return Err(lexed.diags);
    }
    let mut ctx = Ctx::new(file, src);
    match nesting::check(file, &lexed.tokens, 0) {
        Ok(depths) => ctx.string_depths = depths,
        Err(d) => return Err(vec![*d]),
    }
    let tokens = lexed.tokens.into_iter().map(Ok::<_, Never>);
    let expr = match grammar::InterpolatedParser::new().parse(&mut ctx, tokens) {
        Ok(e) => Some(e),
        Err(e) => {
            ctx.syntax_error(e, None);
            None
        }
    };
    finish(src, lexed.diags, ctx.diags, expr)
}

/// Merges lexer and parser diagnostics in source order. A syntax error on a line that already
/// has a lexical error is usually a consequence of it, so it is dropped.
fn finish<T>(
    src: &str,
    mut diags: Vec<Diagnostic>,
    parsed: Vec<Diagnostic>,
    value: Option<T>,
) -> Result<T, Vec<Diagnostic>> {
    let lexical = diags.len();
    for d in parsed {
        let is_syntax = matches!(d.code, "E0110" | "E0111");
        let line = line_of(src, d.span.start);
        if is_syntax
            && diags
                .iter()
                .take(lexical)
                .any(|o| line_of(src, o.span.start) == line)
        {
            continue;
        }
        diags.push(d);
    }
    diags.sort_by_key(|d| d.span.start);
    match value {
        Some(v) if diags.is_empty() => Ok(v),
        _ => Err(diags),
    }
}

fn line_of(src: &str, offset: u32) -> usize {
    src.get(..offset as usize)
        .map_or(0, |s| s.matches('\n').count())
}

/// State shared by the grammar actions: where we are, and the diagnostics so far.
pub(crate) struct Ctx<'s> {
    file: FileId,
    src: &'s str,
    diags: Vec<Diagnostic>,
    interpolation_depth: u32,
    /// The nesting depth at each interpolating string literal (see `nesting`).
    string_depths: nesting::StringDepths,
    /// An `llm` expression was parsed.
    pub(crate) uses_llm: bool,
}

/// A string literal token: raw text (quotes included) and span; for a raw string literal,
/// its text without quotes, taken as it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StrTok<'s> {
    pub raw: &'s str,
    pub span: Span,
    pub verbatim: bool,
}

/// One `word value` line of an `llm` body (or the bare `endorse`), before the word is
/// checked.
pub(crate) struct RawLlmItem {
    pub word: Ident,
    pub value: Option<Expr>,
    pub span: Span,
}

/// The item words of an `llm` body (they are not keywords anywhere else).
const LLM_WORDS: &[&str] = &[
    "system",
    "user",
    "assistant",
    "messages",
    "tools",
    "temperature",
    "max_tokens",
    "stop",
    "max_turns",
    "retries",
    "endorse",
];

/// The kinds of `needs` item that take a string.
const NEEDS_RESOURCES: &[&str] = &["read", "write", "net", "run", "env"];
/// The kinds of `needs` item that stand alone.
const NEEDS_AUTHORITY: &[&str] = &["declassify", "endorse"];

/// One entry of a `{...}` literal, before we know whether it is a record or a map.
pub(crate) enum Entry<'s> {
    Field(Ident, Expr),
    Key(StrTok<'s>, Expr),
}

impl<'s> Ctx<'s> {
    fn new(file: FileId, src: &'s str) -> Self {
        Ctx {
            file,
            src,
            diags: Vec::new(),
            interpolation_depth: 0,
            string_depths: nesting::StringDepths::new(),
            uses_llm: false,
        }
    }

    fn syntax_error(&mut self, e: SyntaxError<'_>, extra_help: Option<&str>) {
        let mut d = syntax_diagnostic(self.file, e);
        if let Some(h) = extra_help {
            d.help = Some(h.to_string());
        }
        self.diags.push(d);
    }

    fn error(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::error(code, message, self.file, span).with_label(label));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    /// `import "./path.ail"`: the path must be a plain string.
    pub(crate) fn import_file(&mut self, s: StrTok<'s>) -> ImportTarget {
        let path = self.plain_string(s, "an import path");
        ImportTarget::File { path, span: s.span }
    }

    pub(crate) fn extern_decl(
        &mut self,
        doc: Option<String>,
        name: Ident,
        params: Vec<Param>,
        ret: Option<TypeExpr>,
        native: StrTok<'s>,
        span: Span,
    ) -> ExternDecl {
        let native_name = self.plain_string(native, "a native name");
        ExternDecl {
            doc,
            name,
            params,
            ret,
            native: native_name,
            native_span: native.span,
            span,
        }
    }

    /// `model smart = "large"`: the logical name must be a plain, non-empty string.
    pub(crate) fn model_decl(&mut self, name: Ident, logical: StrTok<'s>, span: Span) -> ModelDecl {
        let text = self.plain_string(logical, "a model name");
        if text.is_empty() {
            self.error(
                "E0119",
                "a model's logical name cannot be empty",
                logical.span,
                "empty model name",
            )
            .help =
                Some("write the name the host configures, e.g. `model smart = \"large\"`".into());
        }
        ModelDecl {
            name,
            logical: text,
            logical_span: logical.span,
            span,
        }
    }

    /// `needs KIND "resource"` or `needs declassify` / `needs endorse`: checks the form and the
    /// resource's syntax (E0121).
    pub(crate) fn needs_decl(
        &mut self,
        kind: Ident,
        arg: Option<StrTok<'s>>,
        span: Span,
    ) -> NeedsDecl {
        let word = kind.name.as_str();
        let resource = NEEDS_RESOURCES.contains(&word);
        let text = arg.map(|a| (self.plain_string(a, "a `needs` resource"), a.span));
        let need = match (word, text) {
            (_, Some((text, at))) if resource => match crate::needs::check(word, &text) {
                Ok(()) => Some(match word {
                    "read" => Need::Read(text),
                    "write" => Need::Write(text),
                    "net" => Need::Net(text),
                    "run" => Need::Run(text),
                    _ => Need::Env(text),
                }),
                Err((label, help)) => {
                    let msg = format!("invalid `needs {word}` resource");
                    self.error("E0121", msg, at, &label).help = Some(help);
                    None
                }
            },
            (_, None) if resource => {
                let msg = format!("`needs {word}` takes a string");
                self.error("E0121", msg, kind.span, "what is needed?").help = Some(format!(
                    "name the resource: {}",
                    crate::needs::example(word)
                ));
                None
            }
            ("declassify", None) => Some(Need::Declassify),
            ("endorse", None) => Some(Need::Endorse),
            (_, Some((_, at))) if NEEDS_AUTHORITY.contains(&word) => {
                let msg = format!("`needs {word}` takes no value");
                self.error("E0121", msg, at, "remove this").help =
                    Some(format!("write `needs {word}` alone"));
                None
            }
            _ => {
                let msg = format!("unknown `needs` item `{word}`");
                let words = NEEDS_RESOURCES.iter().chain(NEEDS_AUTHORITY).copied();
                let hint = crate::resolve::suggest(word, words);
                self.error("E0121", msg, kind.span, "not a capability").help = Some(match hint {
                    Some(h) => format!("did you mean `{h}`?"),
                    None => "a module needs read, write, net, run or env (with a string), declassify or endorse".into(),
                });
                None
            }
        };
        NeedsDecl { need, span }
    }

    /// `tool name(params) -> T from mcp "S"` / `"S.T"`: checks the source's words and the
    /// tool id by the MCP name rules (E0122): the id is `S.name` or `S.T`.
    pub(crate) fn mcp_tool(
        &mut self,
        doc: Option<String>,
        exported: bool,
        l: usize,
        (name, params, ret, source, r): ToolParts<'s>,
    ) -> McpToolDecl {
        let span = span(l, r);
        let example = format!("write `tool {}(...) from mcp \"SERVER\"`, where SERVER is a server of aivm.toml's [mcp.servers], or `from mcp \"SERVER.TOOL\"` when the server names the tool otherwise", name.name);
        let mut decl = McpToolDecl {
            doc,
            exported,
            name,
            params,
            ret,
            id: String::new(),
            source_span: span,
            span,
        };
        let Some(src) = source else {
            let at = Span::new(span.end as usize, span.end as usize);
            self.error(
                "E0122",
                format!(
                    "`tool {}` does not say where the tool comes from",
                    decl.name.name
                ),
                at,
                "expected `from mcp \"SERVER\"` here",
            )
            .help = Some(example);
            return decl;
        };
        decl.source_span = src.span;
        let words_ok =
            src.from.name == "from" && src.kind.as_ref().is_some_and(|k| k.name == "mcp");
        if !words_ok {
            let at = src
                .kind
                .as_ref()
                .map_or(src.from.span, |k| src.from.span.to(k.span));
            self.error(
                "E0122",
                "expected `from mcp` before the server",
                at,
                "not `from mcp`",
            )
            .help = Some(example);
            return decl;
        }
        let text = self.plain_string(src.s, "an MCP tool's source");
        let (server, remote) = match text.split_once('.') {
            Some((s, t)) => (s, t),
            None => (text.as_str(), decl.name.name.as_str()),
        };
        let fault = if server.is_empty() {
            Some(("the server name is empty".to_string(), example.clone()))
        } else if aivm_vm::format::is_native_family(server) {
            Some((
                format!("`{server}` is a family of VM natives (`{server}.…`), not a server name"),
                "rename the server in aivm.toml (and here): an MCP tool id must never look like a native's".to_string(),
            ))
        } else if !aivm_vm::format::is_mcp_server_name(server) {
            Some((
                format!("`{}` is not a server name", server.escape_debug()),
                "a server name is 1 to 64 of A-Z a-z 0-9 _ -".to_string(),
            ))
        } else if !is_mcp_tool_name(remote) {
            Some((
                format!("`{}` is not an MCP tool name", remote.escape_debug()),
                "a tool name is 1 to 128 of A-Z a-z 0-9 _ . -".to_string(),
            ))
        } else {
            None
        };
        let id = format!("{server}.{remote}");
        let fault = fault.or_else(|| {
            (!aivm_vm::format::is_tool_id(&id)).then(|| {
                (
                    format!("the tool id `{id}` is {} bytes long", id.len()),
                    "a tool id `SERVER.TOOL` is at most 128 bytes: shorten the server name in aivm.toml".to_string(),
                )
            })
        });
        match fault {
            Some((label, help)) => {
                self.error("E0122", "invalid MCP tool source", src.s.span, label)
                    .help = Some(help);
            }
            None => decl.id = id,
        }
        decl
    }

    /// `spawn e`: `e` must be a call, which the new task runs.
    pub(crate) fn spawn(&mut self, e: Expr, span: Span) -> Expr {
        if !matches!(e.kind, ExprKind::Call(..)) {
            self.error(
                "E0120",
                "`spawn` needs a function call",
                e.span,
                "not a call",
            )
            .help = Some("spawn a call such as `spawn summarize(doc)`; to run a function value `f`, write `spawn f()`".into());
        }
        Expr {
            kind: ExprKind::Spawn(Box::new(e)),
            span,
        }
    }

    /// `llm model -> T { items }`: checks each item word, that options are given once, that
    /// `tools` lists names, and that items are on separate lines.
    pub(crate) fn llm(
        &mut self,
        model: Ident,
        ty: Option<TypeExpr>,
        raw: Vec<RawLlmItem>,
        span: Span,
    ) -> Expr {
        self.uses_llm = true;
        let mut items: Vec<LlmItem> = Vec::new();
        let mut prev_end: Option<u32> = None;
        for RawLlmItem { word, value, span } in raw {
            if let Some(end) = prev_end {
                let gap = self
                    .src
                    .get(end as usize..span.start as usize)
                    .unwrap_or("\n");
                if !gap.contains('\n') && !gap.contains(';') {
                    self.error(
                        "E0117",
                        "expected `;` or a new line between `llm` items",
                        Span::new(span.start as usize, span.start as usize),
                        "a new item starts here",
                    )
                    .help = Some("put each item of an `llm` body on its own line".into());
                }
            }
            prev_end = Some(span.end);
            let Some(value) = value else {
                items.push(LlmItem {
                    kind: LlmItemKind::Endorse,
                    word: word.span,
                    span,
                });
                continue;
            };
            let kind = match word.name.as_str() {
                "system" => LlmItemKind::Message(Role::System, value),
                "user" => LlmItemKind::Message(Role::User, value),
                "assistant" => LlmItemKind::Message(Role::Assistant, value),
                "messages" => LlmItemKind::Messages(value),
                "tools" => match self.tool_names(value) {
                    Some(names) => LlmItemKind::Tools(names),
                    None => continue,
                },
                "temperature" => LlmItemKind::Option(LlmOption::Temperature, value),
                "max_tokens" => LlmItemKind::Option(LlmOption::MaxTokens, value),
                "stop" => LlmItemKind::Option(LlmOption::Stop, value),
                "max_turns" => LlmItemKind::Option(LlmOption::MaxTurns, value),
                "retries" => LlmItemKind::Option(LlmOption::Retries, value),
                "endorse" => {
                    self.error(
                        "E0119",
                        "`endorse` takes no value",
                        value.span,
                        "remove this",
                    )
                    .help = Some("write `endorse` alone on its line: it endorses the answer, whose type must be narrow".into());
                    continue;
                }
                other => {
                    let msg = format!("unknown `llm` item `{other}`");
                    let hint = crate::resolve::suggest(other, LLM_WORDS.iter().copied());
                    self.error("E0119", msg, word.span, "not an item of an `llm` body")
                        .help = Some(match hint {
                        Some(h) => format!("did you mean `{h}`?"),
                        None => format!("the items are: {}", LLM_WORDS.join(", ")),
                    });
                    continue;
                }
            };
            let once = match &kind {
                LlmItemKind::Tools(_) => Some("tools"),
                LlmItemKind::Option(o, _) => Some(o.word()),
                _ => None,
            };
            if let Some(w) = once {
                let earlier = items.iter().find(|i| match &i.kind {
                    LlmItemKind::Tools(_) => w == "tools",
                    LlmItemKind::Option(o, _) => o.word() == w,
                    _ => false,
                });
                if let Some(first) = earlier.map(|i| i.word) {
                    let file = self.file;
                    let d = self.error(
                        "E0119",
                        format!("`{w}` is given twice"),
                        word.span,
                        "given again here",
                    );
                    d.extra.push(crate::diagnostic::Label {
                        file,
                        span: first,
                        text: "first given here".into(),
                    });
                    d.help = Some(format!("give `{w}` once"));
                    continue;
                }
            }
            items.push(LlmItem {
                kind,
                word: word.span,
                span,
            });
        }
        Expr {
            kind: ExprKind::Llm(Box::new(LlmExpr { model, ty, items })),
            span,
        }
    }

    /// The names of `tools [f, g, fs.read]` (a module's member as one dotted name), or `None`
    /// (reported) when the value is not a list of names.
    fn tool_names(&mut self, value: Expr) -> Option<Vec<Ident>> {
        let as_name = |e: Expr| -> Option<Ident> {
            match e.kind {
                ExprKind::Name(id) => Some(id),
                ExprKind::Field(obj, field) => match obj.kind {
                    ExprKind::Name(m) => Some(Ident {
                        name: format!("{}.{}", m.name, field.name),
                        span: e.span,
                    }),
                    _ => None,
                },
                _ => None,
            }
        };
        let bad = |e: &Expr| match &e.kind {
            ExprKind::Name(_) => false,
            ExprKind::Field(obj, _) => !matches!(obj.kind, ExprKind::Name(_)),
            _ => true,
        };
        let at = match &value.kind {
            ExprKind::List(items) => match items.iter().find(|e| bad(e)) {
                None => {
                    let ExprKind::List(items) = value.kind else {
                        return None;
                    };
                    return Some(items.into_iter().filter_map(as_name).collect());
                }
                Some(e) => e.span,
            },
            _ => value.span,
        };
        self.error(
            "E0119",
            "`tools` takes a list of function names",
            at,
            "not the name of a function",
        )
        .help = Some(
            "offer the program's functions and native bindings by name: `tools [search, fs.read]`"
                .into(),
        );
        None
    }

    /// `map[K, V]`: any other name before `[` is an error.
    pub(crate) fn map_type(&mut self, m: Ident, k: TypeExpr, v: TypeExpr, span: Span) -> TypeExpr {
        if m.name != "map" {
            let msg = format!("`{}` takes no type arguments", m.name);
            self.error(
                "E0116",
                msg,
                m.span,
                "only `map` is written with `[...]` after it",
            )
            .help = Some("a list type is written `[T]`, a map type `map[string, T]`".into());
        }
        ty(
            TypeKind::Map(Box::new(k), Box::new(v)),
            span.start as usize,
            span.end as usize,
        )
    }

    /// `"low"` in a type.
    pub(crate) fn literal_type(&mut self, s: StrTok<'s>, span: Span) -> TypeExpr {
        let text = self.plain_string(s, "a literal type");
        ty(
            TypeKind::StrLit(text),
            span.start as usize,
            span.end as usize,
        )
    }

    /// The string of a literal that may not interpolate (import paths, native names, types).
    fn plain_string(&mut self, s: StrTok<'s>, what: &str) -> String {
        match self.string_expr(s).kind {
            ExprKind::Str(text) => text,
            _ => {
                let msg = format!("{what} cannot contain `{{...}}` interpolation");
                self.error("E0115", msg, s.span, "this string interpolates")
                    .help = Some("write `\\{` for a literal brace".into());
                String::new()
            }
        }
    }

    /// `target = value` or `target op= value`: the target must be a place.
    pub(crate) fn assign(&mut self, target: Expr, op: Option<BinOp>, value: Expr) -> StmtKind {
        if !matches!(
            target.kind,
            ExprKind::Name(_) | ExprKind::Field(..) | ExprKind::Index(..)
        ) {
            let label = match target.kind {
                ExprKind::Binary(BinOp::Eq, ..) => "this is a comparison, not a place",
                ExprKind::Call(..) => "a call result cannot be assigned to",
                ExprKind::Slice(..) => "a slice cannot be assigned to",
                _ => "not a variable, field or index",
            };
            self.error(
                "E0112",
                "invalid left-hand side of assignment",
                target.span,
                label,
            )
            .help = Some(
                "only a variable `x`, a field `x.f` or an element `x[i]` can be assigned".into(),
            );
        }
        StmtKind::Assign { target, op, value }
    }

    /// `{ ... }`: a record if keys are names, a map if they are strings; `{}` is the empty map.
    pub(crate) fn braced(&mut self, entries: Vec<Entry<'s>>, span: Span) -> Expr {
        let is_record = matches!(entries.first(), Some(Entry::Field(..)));
        let mut fields = Vec::new();
        let mut pairs = Vec::new();
        for entry in entries {
            match entry {
                Entry::Field(k, v) if is_record => fields.push((k, v)),
                Entry::Key(k, v) if !is_record => {
                    let key = self.string_expr(k);
                    pairs.push((key, v));
                }
                Entry::Field(k, _) => {
                    self.mixed_keys(k.span, "a field name in a map literal", span)
                }
                Entry::Key(k, _) => {
                    self.mixed_keys(k.span, "a string key in a record literal", span)
                }
            }
        }
        let kind = if is_record {
            ExprKind::Record(fields)
        } else {
            ExprKind::Map(pairs)
        };
        Expr { kind, span }
    }

    fn mixed_keys(&mut self, at: Span, label: &str, whole: Span) {
        let file = self.file;
        let d = self.error("E0114", "record fields and map keys are mixed", at, label);
        d.extra.push(crate::diagnostic::Label {
            file,
            span: Span::new(whole.start as usize, whole.start as usize + 1),
            text: "the first entry decides what this literal is".into(),
        });
        d.help = Some("a record has name keys `{a: 1}`; a map has string keys `{\"a\": 1}`".into());
    }

    /// A block; statements on one line must be separated by `;`.
    pub(crate) fn block(&mut self, stmts: Vec<Stmt>, span: Span) -> Block {
        for pair in stmts.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let gap = self
                .src
                .get(a.span.end as usize..b.span.start as usize)
                .unwrap_or("\n");
            if !gap.contains('\n') && !gap.contains(';') {
                let at = Span::new(b.span.start as usize, b.span.start as usize);
                let d = self.error(
                    "E0117",
                    "expected `;` or a new line between statements",
                    at,
                    "a new statement starts here",
                );
                d.extra.push(crate::diagnostic::Label {
                    file: d.file,
                    span: a.span,
                    text: "this statement ends here".into(),
                });
                d.help =
                    Some("put each statement on its own line, or separate them with `;`".into());
            }
        }
        Block { stmts, span }
    }

    /// A string literal as an expression: escapes decoded, `{expr}` parts parsed.
    pub(crate) fn string_expr(&mut self, s: StrTok<'s>) -> Expr {
        if s.verbatim {
            return Expr {
                kind: ExprKind::Str(s.raw.to_string()),
                span: s.span,
            };
        }
        let base = s.span.start as usize;
        let mut parts: Vec<InterpPart> = Vec::new();
        let mut text = String::new();
        for piece in split_string(s.raw) {
            match piece {
                Piece::Char(c) => text.push(c),
                Piece::BadEscape(at, len, what) => {
                    let span = Span::new(base + at, base + at + len);
                    self.bad_escape(span, what);
                }
                Piece::LoneClose(at) => {
                    let span = Span::new(base + at, base + at + 1);
                    self.error(
                        "E0115",
                        "unmatched `}` in string",
                        span,
                        "this `}` closes nothing",
                    )
                    .help = Some("write `\\}` for a literal `}`".into());
                }
                Piece::Interp(start, end) => {
                    if !text.is_empty() {
                        parts.push(InterpPart::Text(std::mem::take(&mut text)));
                    }
                    if let Some(e) = self.interpolation(s.raw, base, start, end) {
                        parts.push(InterpPart::Expr(e));
                    }
                }
            }
        }
        let kind = if parts.is_empty() {
            ExprKind::Str(text)
        } else {
            if !text.is_empty() {
                parts.push(InterpPart::Text(text));
            }
            ExprKind::Interp(parts)
        };
        Expr { kind, span: s.span }
    }

    fn bad_escape(&mut self, span: Span, what: EscapeError) {
        let (msg, label, help) = match what {
            EscapeError::Unknown => (
                "unknown escape sequence",
                "not a valid escape",
                "the escapes are \\n \\t \\r \\\\ \\\" \\{ \\} \\0 and \\u{XXXX}",
            ),
            EscapeError::Unicode => (
                "invalid unicode escape",
                "not a unicode scalar value",
                "write 1 to 6 hex digits in braces, e.g. \\u{1F600}, for a code point up to 10FFFF (not a surrogate)",
            ),
        };
        self.error("E0103", msg, span, label).help = Some(help.into());
    }

    /// Parses the `{...}` part at `raw[start..end]` (braces excluded) as an expression.
    fn interpolation(
        &mut self,
        raw: &'s str,
        base: usize,
        start: usize,
        end: usize,
    ) -> Option<Expr> {
        let inner = raw.get(start..end).unwrap_or("");
        let open = Span::new(base + start - 1, base + end + 1);
        if inner.trim().is_empty() {
            self.error(
                "E0115",
                "empty interpolation `{}` in string",
                open,
                "expected an expression inside the braces",
            )
            .help = Some("write `\\{}` for literal braces".into());
            return None;
        }
        if self.interpolation_depth >= MAX_INTERPOLATION_DEPTH {
            self.error(
                "E0115",
                "string interpolations are nested too deeply",
                open,
                "too deep",
            );
            return None;
        }
        let lexed = lexer::lex(self.file, inner, base + start, Context::Interpolation);
        let failed = !lexed.diags.is_empty();
        self.diags.extend(lexed.diags);
        if failed {
            return None;
        }
        let depth = self.string_depths.get(&(base as u32)).copied().unwrap_or(0);
        match nesting::check(self.file, &lexed.tokens, depth.saturating_add(1)) {
            Ok(depths) => self.string_depths.extend(depths),
            Err(d) => {
                self.diags.push(*d);
                return None;
            }
        }
        let eof = base + end;
        let tokens = lexed.tokens.into_iter().map(Ok::<_, Never>);
        self.interpolation_depth += 1;
        let parsed = grammar::InterpolatedParser::new().parse(self, tokens);
        self.interpolation_depth -= 1;
        match parsed {
            Ok(e) => Some(e),
            Err(e) => {
                self.bad_interpolation(e, Span::new(base + start - 1, base + start), eof);
                None
            }
        }
    }

    /// A `{...}` part of a string that is not an expression: often text meant literally, such
    /// as JSON in a prompt, so the diagnostic says how to escape the brace.
    fn bad_interpolation(&mut self, e: SyntaxError<'_>, open: Span, eof: usize) {
        let e = match e {
            // The end of the part is its closing brace, not the end of the file.
            ParseError::UnrecognizedEof { expected, .. } => ParseError::UnrecognizedToken {
                token: (eof, Tok::RBrace, eof + 1),
                expected,
            },
            // Where the expression could end, the `}` closing the part is what was missing.
            ParseError::UnrecognizedToken {
                token,
                mut expected,
            } => {
                if !expected.iter().any(|t| terminal(t) == "int") {
                    expected.push("\"}\"".into());
                }
                ParseError::UnrecognizedToken { token, expected }
            }
            other => other,
        };
        let mut d = syntax_diagnostic(self.file, e);
        d.code = "E0115";
        d.message = format!("invalid interpolation in string: {}", d.message);
        d.extra.push(crate::diagnostic::Label {
            file: self.file,
            span: open,
            text: "this `{` starts an interpolation".into(),
        });
        d.help = Some("`{...}` in a string must hold an expression; to write a literal brace, escape it as `\\{`".into());
        self.diags.push(d);
    }
}

/// One decoded piece of a string literal's raw text. Offsets are into the raw text.
enum Piece {
    Char(char),
    BadEscape(usize, usize, EscapeError),
    LoneClose(usize),
    /// The text between `{` and its `}`.
    Interp(usize, usize),
}

#[derive(Clone, Copy)]
enum EscapeError {
    Unknown,
    Unicode,
}

/// Splits the raw text of a string literal (quotes included) into characters, escapes and
/// interpolation parts. The lexer has already checked that the literal is terminated.
fn split_string(raw: &str) -> Vec<Piece> {
    let body_end = raw.len().saturating_sub(1).max(1);
    let mut out = Vec::new();
    let mut chars = raw.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if i >= body_end {
            break;
        }
        match c {
            '\\' => {
                let Some((j, e)) = chars.next() else { break };
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    '0' => Some('\0'),
                    '\\' | '"' | '{' | '}' => Some(e),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.push(Piece::Char(ch));
                } else if e == 'u' {
                    out.push(unicode_escape(raw, i, &mut chars));
                } else {
                    out.push(Piece::BadEscape(
                        i,
                        j + e.len_utf8() - i,
                        EscapeError::Unknown,
                    ));
                }
            }
            '{' => {
                let end = interpolation_end(raw, i + 1);
                out.push(Piece::Interp(i + 1, end));
                while chars.peek().is_some_and(|&(k, _)| k <= end) {
                    chars.next();
                }
            }
            '}' => out.push(Piece::LoneClose(i)),
            c => out.push(Piece::Char(c)),
        }
    }
    out
}

/// Decodes `\u{XXXX}`; `at` is the offset of the backslash, `chars` is just past the `u`.
fn unicode_escape(
    raw: &str,
    at: usize,
    chars: &mut std::iter::Peekable<impl Iterator<Item = (usize, char)>>,
) -> Piece {
    let bad = |end: usize| Piece::BadEscape(at, end - at, EscapeError::Unicode);
    if chars.peek().map(|&(_, c)| c) != Some('{') {
        return bad(at + 2);
    }
    chars.next();
    let mut digits = String::new();
    while let Some(&(k, c)) = chars.peek() {
        chars.next();
        if c == '}' {
            let code = u32::from_str_radix(&digits, 16)
                .ok()
                .filter(|_| (1..=6).contains(&digits.len()));
            return match code.and_then(char::from_u32) {
                Some(ch) => Piece::Char(ch),
                None => bad(k + 1),
            };
        }
        if !c.is_ascii_hexdigit() || digits.len() >= 6 || c == '"' {
            return bad(k + c.len_utf8().min(raw.len() - k));
        }
        digits.push(c);
    }
    bad(raw.len())
}

/// The offset of the `}` closing the interpolation that starts at `from` (just past its `{`),
/// skipping nested braces and strings the way the lexer did.
fn interpolation_end(raw: &str, from: usize) -> usize {
    let bytes = raw.as_bytes();
    let mut depth = 1u32;
    let mut i = from;
    while let Some(&c) = bytes.get(i) {
        match c {
            b'"' => {
                // A nested string: skip to its end, interpolations and all.
                i += 1 + nested_string_len(bytes.get(i + 1..).unwrap_or(&[]));
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    raw.len().saturating_sub(1)
}

/// The length of a nested string's body and closing quote, as the lexer measured it.
fn nested_string_len(b: &[u8]) -> usize {
    lexer::string_len(b).unwrap_or(b.len())
}

/// Whether `name` may be the name of a server's tool (MCP-CONTRACT §1): 1 to 128 of
/// `A-Z a-z 0-9 _ . -`.
fn is_mcp_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Turns a lalrpop error into a diagnostic: "expected X, found Y" with a hint where we can guess.
fn syntax_diagnostic(file: FileId, e: SyntaxError<'_>) -> Diagnostic {
    match e {
        ParseError::UnrecognizedEof { location, expected } => {
            let want = describe_expected(&expected);
            Diagnostic::error(
                "E0111",
                format!("unexpected end of file, expected {want}"),
                file,
                Span::new(location, location),
            )
            .with_label(format!("expected {want}"))
        }
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => unexpected_token(file, Span::new(l, r), &tok, &expected),
        ParseError::ExtraToken { token: (l, tok, r) } => {
            Diagnostic::error("E0110", format!("unexpected {tok}"), file, Span::new(l, r))
                .with_label("unexpected here")
        }
        ParseError::InvalidToken { location } => Diagnostic::error(
            "E0110",
            "invalid token",
            file,
            Span::new(location, location),
        )
        .with_label("here"),
        ParseError::User { error } => match error {},
    }
}

fn unexpected_token(file: FileId, span: Span, tok: &Tok<'_>, expected: &[String]) -> Diagnostic {
    let names: Vec<&str> = expected.iter().map(|s| terminal(s)).collect();
    let has = |t: &str| names.contains(&t);
    let cmp = matches!(
        tok,
        Tok::EqEq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
    );
    if cmp && !has("==") && (has("and") || has("..")) {
        return Diagnostic::error(
            "E0113",
            "comparison operators cannot be chained",
            file,
            span,
        )
        .with_label("a second comparison here")
        .with_help("compare twice and combine the results: `a < b and b < c`");
    }
    let want = describe_expected(expected);
    let mut d = Diagnostic::error("E0110", format!("expected {want}, found {tok}"), file, span)
        .with_label(format!("expected {want}"));
    let help = match tok {
        Tok::Assign if has("{") => Some(
            "to compare two values, use `==`; `=` assigns and is not an expression".to_string(),
        ),
        Tok::EqEq if has("=") => Some("to give a value, use `=`; `==` compares".to_string()),
        Tok::Ident(w @ ("elif" | "elsif" | "elseif")) => {
            Some(format!("there is no `{w}`: write `else if`"))
        }
        Tok::LBrace if names == ["("] => Some(
            "a function needs a parameter list, even an empty one: `fn name() { ... }`".to_string(),
        ),
        Tok::Let
        | Tok::If
        | Tok::While
        | Tok::For
        | Tok::Return
        | Tok::ReturnBare
        | Tok::Ident(_)
        | Tok::Int(_)
            if has("import") && has("extern") =>
        {
            Some("statements belong inside a function, e.g. `fn main() { ... }`".to_string())
        }
        t if has(",") && starts_expression(t) => Some("separate items with `,`".to_string()),
        t if has("identifier")
            && !t.text().is_empty()
            && t.text().chars().all(|c| c.is_ascii_lowercase()) =>
        {
            Some(format!(
                "`{}` is a keyword and cannot be used as a name",
                t.text()
            ))
        }
        Tok::Plus if has("identifier") => Some("there is no `++`: write `x += 1`".to_string()),
        _ => None,
    };
    if let Some(h) = help {
        d = d.with_help(h);
    }
    d
}

fn starts_expression(t: &Tok<'_>) -> bool {
    t.is_atom() || matches!(t, Tok::Not)
}

/// A lalrpop terminal name (`"\"(\""`) as the user would write the token.
fn terminal(name: &str) -> &str {
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    let name = name
        .strip_prefix("\\\"")
        .and_then(|n| n.strip_suffix("\\\""))
        .unwrap_or(name);
    match name {
        "line (" => "(",
        "line [" => "[",
        "line -" => "-",
        "return (bare)" => "return",
        "raw string" => "string",
        other => other,
    }
}

const EXPR_START: &[&str] = &[
    "identifier",
    "int",
    "float",
    "string",
    "true",
    "false",
    "null",
    "(",
    "[",
    "{",
    "-",
    "not",
    "fn",
    "llm",
    "spawn",
    "await",
];
const STMT_START: &[&str] = &[
    "let", "if", "while", "for", "break", "continue", "return", "throw", "try",
];
const ITEM_START: &[&str] = &[
    "fn",
    "import",
    "type",
    "extern",
    "export",
    "doc comment",
    "model",
    "needs",
    "tool",
];
const OPERATORS: &[&str] = &[
    "or", "and", "==", "!=", "<", "<=", ">", ">=", "..", "+", "-", "*", "/", "%", ".", "(", "[",
    "=", "+=", "-=", "*=", "/=", "%=", "?", "|",
];

/// Summarises lalrpop's expected-terminal list: whole classes ("an expression", "a
/// statement") instead of their members, and operators left out when something more
/// specific is possible.
fn describe_expected(expected: &[String]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for n in expected.iter().map(|s| terminal(s)) {
        if !names.contains(&n) && n != "doc comment" {
            names.push(n);
        }
    }
    let mut classes: Vec<String> = Vec::new();
    if names.contains(&"import") && names.contains(&"extern") {
        names.retain(|n| !ITEM_START.contains(n));
        classes.push("an item (`fn`, `import`, `type`, `extern fn`)".into());
    }
    let expression = names.contains(&"int") && names.contains(&"identifier");
    let a_type = !expression
        && names.contains(&"identifier")
        && names.contains(&"null")
        && names.contains(&"fn");
    if a_type {
        names.retain(|n| !["identifier", "null", "fn", "[", "{", "(", "string"].contains(n));
        classes.push("a type".into());
    }
    let statement = expression && names.contains(&"let") && names.contains(&"while");
    if expression {
        names.retain(|n| !EXPR_START.contains(n));
    }
    if statement {
        names.retain(|n| !STMT_START.contains(n) && *n != ";");
    }
    // Operators that could continue an expression are noise next to anything more specific.
    let continues_expression = names.contains(&"+") || names.contains(&"==");
    // `=` continues an assignment only where `+=` could too; elsewhere (`let x =`) it is specific.
    let assigns = names.contains(&"+=");
    let is_operator = |n: &&str| OPERATORS.contains(n) && (assigns || *n != "=");
    if names.iter().any(|n| !is_operator(n)) || !classes.is_empty() || expression {
        names.retain(|n| !is_operator(n));
    } else if continues_expression {
        names.clear();
        classes.push("an operator".into());
    }
    if statement {
        classes.push("a statement".into());
    } else if expression {
        classes.push("an expression".into());
    }
    let mut all: Vec<String> = names.iter().map(|n| display_terminal(n)).collect();
    all.extend(classes);
    join_or(&all)
}

fn display_terminal(n: &str) -> String {
    match n {
        "identifier" => "a name".into(),
        "string" => "a string".into(),
        "int" => "an integer".into(),
        "float" => "a float".into(),
        other => format!("`{other}`"),
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => "something else".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

// ---------------------------------------------------------------- grammar-action helpers

pub(crate) fn span(l: usize, r: usize) -> Span {
    Span::new(l, r)
}

pub(crate) fn ident(name: &str, l: usize, r: usize) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::new(l, r),
    }
}

pub(crate) fn ty(kind: TypeKind, l: usize, r: usize) -> TypeExpr {
    TypeExpr {
        kind,
        span: Span::new(l, r),
    }
}

pub(crate) fn expr(kind: ExprKind, l: usize, r: usize) -> Expr {
    Expr {
        kind,
        span: Span::new(l, r),
    }
}

pub(crate) fn name(id: Ident) -> Expr {
    let span = id.span;
    Expr {
        kind: ExprKind::Name(id),
        span,
    }
}

pub(crate) fn unary(op: UnOp, e: Expr, l: usize, r: usize) -> Expr {
    expr(ExprKind::Unary(op, Box::new(e)), l, r)
}

pub(crate) fn binary(op: BinOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
    expr(ExprKind::Binary(op, Box::new(a), Box::new(b)), l, r)
}

pub(crate) fn logic(op: LogicOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
    expr(ExprKind::Logic(op, Box::new(a), Box::new(b)), l, r)
}

pub(crate) fn slice(e: Expr, lo: Option<Expr>, hi: Option<Expr>, l: usize, r: usize) -> Expr {
    expr(
        ExprKind::Slice(Box::new(e), lo.map(Box::new), hi.map(Box::new)),
        l,
        r,
    )
}

/// The name a lambda's [`FnDecl`] carries; lambdas have no name of their own.
pub(crate) const LAMBDA_NAME: &str = "lambda";

pub(crate) fn lambda(
    params: Vec<Param>,
    ret: Option<TypeExpr>,
    body: Block,
    l: usize,
    r: usize,
) -> Expr {
    let decl = FnDecl {
        doc: None,
        exported: false,
        name: ident(LAMBDA_NAME, l, l + 2),
        params,
        ret,
        body,
        span: Span::new(l, r),
    };
    expr(ExprKind::Lambda(Box::new(decl)), l, r)
}

pub(crate) type FnParts = (Ident, Vec<Param>, Option<TypeExpr>, Block, usize);

/// `tool name(params) -> T SOURCE`, and where it ends.
pub(crate) type ToolParts<'s> = (
    Ident,
    Vec<Param>,
    Option<TypeExpr>,
    Option<ToolSource<'s>>,
    usize,
);

/// The `from mcp "..."` part of a `tool` item, before its words are checked.
pub(crate) struct ToolSource<'s> {
    pub from: Ident,
    pub kind: Option<Ident>,
    pub s: StrTok<'s>,
    pub span: Span,
}

pub(crate) fn fn_decl(
    doc: Option<String>,
    exported: bool,
    l: usize,
    (name, params, ret, body, r): FnParts,
) -> FnDecl {
    FnDecl {
        doc,
        exported,
        name,
        params,
        ret,
        body,
        span: Span::new(l, r),
    }
}

pub(crate) fn cons<T>(first: T, rest: Vec<T>) -> Vec<T> {
    let mut v = Vec::with_capacity(rest.len() + 1);
    v.push(first);
    v.extend(rest);
    v
}

pub(crate) fn push_opt<T>(mut v: Vec<T>, last: Option<T>) -> Vec<T> {
    v.extend(last);
    v
}
