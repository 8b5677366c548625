//! The lexer: `.ail` source text to tokens with byte spans, using `logos`, plus a pass over
//! the token list that checks delimiters, merges doc comments and marks line-leading tokens
//! so the newline-free grammar can tell `f\n(x)` (two statements) from `f(x)` (a call).

use std::fmt;

use logos::{Filter, Logos};

use crate::ast::Span;
use crate::diagnostic::{Diagnostic, FileId};

/// Why `logos` rejected some input. `Default` is what logos reports for input no pattern matches.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LexError {
    #[default]
    UnknownChar,
    IntOverflow,
    FloatOutOfRange,
    /// With the offset (from the opening quote) of a `{` whose interpolation spans quotes or
    /// lines: usually a brace meant literally, which swallowed the closing quote.
    UnterminatedString(Option<usize>),
}

/// One token. The `*Lead` variants and `ReturnBare` are never produced by `logos` itself: the
/// pass in [`lex`] rewrites `(`, `[`, `-` that start a statement line, and `return` with nothing
/// after it on its line, so that the grammar needs no newline tokens.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+", error = LexError)]
pub enum Tok<'s> {
    #[token("fn")]
    Fn,
    #[token("let")]
    Let,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("while")]
    While,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("break")]
    Break,
    #[token("continue")]
    Continue,
    #[token("return")]
    Return,
    /// `return` with no value: followed by a newline, `;`, `}` or the end of the file.
    ReturnBare,
    #[token("throw")]
    Throw,
    #[token("try")]
    Try,
    #[token("catch")]
    Catch,
    #[token("import")]
    Import,
    #[token("as")]
    As,
    #[token("export")]
    Export,
    #[token("extern")]
    Extern,
    #[token("type")]
    Type,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("not")]
    Not,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("null")]
    Null,
    /// `model` starting a top-level item (`model smart = "large"`); elsewhere `model` is a name.
    Model,
    /// `needs` starting a top-level item (`needs read "./data"`); elsewhere `needs` is a name.
    Needs,
    /// `tool` starting a top-level item (`tool read(path: string) from mcp "files"`);
    /// elsewhere `tool` is a name (`tool.fn`, `let tool = ...`).
    ToolItem,
    /// `endorse` alone on its line (an item of an `llm` body); elsewhere `endorse` is a name
    /// (the builtin `endorse(x)`).
    EndorseItem,
    /// `llm` followed by a name on the same line; elsewhere `llm` is a name.
    Llm,
    /// `spawn` followed by a name on the same line; elsewhere `spawn` is a name.
    Spawn,
    /// `await` followed by a name on the same line; elsewhere `await` is a name.
    Await,

    #[token("(")]
    LParen,
    /// A `(` that starts a statement line: it opens a parenthesised expression, never a call.
    LParenLead,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    /// A `[` that starts a statement line: a list literal, never an index.
    LBracketLead,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("=")]
    Assign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    /// A `-` that starts a statement line: a negation, never a subtraction.
    MinusLead,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("+=")]
    PlusEq,
    #[token("-=")]
    MinusEq,
    #[token("*=")]
    StarEq,
    #[token("/=")]
    SlashEq,
    #[token("%=")]
    PercentEq,
    #[token("->")]
    Arrow,
    #[token("?")]
    Question,
    #[token("|")]
    Pipe,
    /// `&&`, `||` and `!` are not operators of the language; they are lexed so that the
    /// diagnostic can say what to write instead, and replaced by `and`, `or`, `not`.
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,

    #[regex(r"[0-9][0-9_]*", lex_int)]
    Int(i64),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9][0-9_]*)?", lex_float)]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9][0-9_]*", lex_float)]
    Float(f64),
    /// The raw text of a string literal, quotes included; `parse.rs` splits it into text and
    /// interpolations (`Ctx::string_expr`).
    #[token("\"", lex_string)]
    Str(&'s str),
    /// The text of a raw string literal, `r"..."` or `\"\"\"...\"\"\"`, without its quotes: no
    /// escapes, no interpolation.
    #[token("r\"", lex_raw_string)]
    #[token("\"\"\"", lex_triple_string)]
    RawStr(&'s str),
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident(&'s str),
    /// The text of one or more `///` lines, without the slashes.
    #[regex(r"//[^\n]*", lex_comment)]
    Doc(String),
}

fn lex_int<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<i64, LexError> {
    lex.slice()
        .replace('_', "")
        .parse::<i64>()
        .map_err(|_| LexError::IntOverflow)
}

fn lex_float<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<f64, LexError> {
    match lex.slice().replace('_', "").parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(LexError::FloatOutOfRange),
    }
}

fn lex_comment<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Filter<String> {
    let text = lex.slice();
    match text.strip_prefix("///") {
        Some(rest) if !rest.starts_with('/') => {
            let rest = rest.strip_suffix('\r').unwrap_or(rest);
            Filter::Emit(rest.strip_prefix(' ').unwrap_or(rest).to_string())
        }
        _ => Filter::Skip,
    }
}

fn lex_string<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<&'s str, LexError> {
    let rest = lex.remainder();
    match string_scan(rest.as_bytes()) {
        Ok(n) => {
            lex.bump(n);
            Ok(lex.slice())
        }
        Err(open) => {
            lex.bump(rest.len());
            // Offsets from the opening quote.
            Err(LexError::UnterminatedString(open.map(|o| o + 1)))
        }
    }
}

/// `r"..."`: everything up to the next `"`, verbatim.
fn lex_raw_string<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<&'s str, LexError> {
    let rest = lex.remainder();
    match rest.find('"') {
        Some(n) => {
            lex.bump(n + 1);
            Ok(rest.get(..n).unwrap_or(""))
        }
        None => {
            lex.bump(rest.len());
            Err(LexError::UnterminatedString(None))
        }
    }
}

/// `"""..."""`: everything up to the next `"""`, verbatim, except that a line break right
/// after the opening quotes is not part of the text.
fn lex_triple_string<'s>(lex: &mut logos::Lexer<'s, Tok<'s>>) -> Result<&'s str, LexError> {
    let rest = lex.remainder();
    match rest.find("\"\"\"") {
        Some(n) => {
            lex.bump(n + 3);
            let body = rest.get(..n).unwrap_or("");
            let body = body
                .strip_prefix("\r\n")
                .or_else(|| body.strip_prefix('\n'))
                .unwrap_or(body);
            Ok(body)
        }
        None => {
            lex.bump(rest.len());
            Err(LexError::UnterminatedString(None))
        }
    }
}

/// The length of a string literal's body plus its closing quote, given the bytes after the
/// opening quote, or `None` if the input ends first. `{...}` parts may hold nested strings,
/// which may hold interpolations in turn; an explicit stack keeps deep nesting off the call stack.
/// Scanning bytes is sound for UTF-8 because every byte this matches on is ASCII.
pub(crate) fn string_len(b: &[u8]) -> Option<usize> {
    string_scan(b).ok()
}

/// [`string_len`], or on failure the offset in `b` of an interpolation's `{` that probably
/// should have been written `\{`, if any.
fn string_scan(b: &[u8]) -> Result<usize, Option<usize>> {
    // Strings and interpolations nest strictly alternately, so one stack of open
    // interpolations (each with its brace depth) and a flag for "inside a string" suffice.
    let mut interps: Vec<u32> = Vec::new();
    // The outermost `{` of the current interpolation, and the first one whose content held a
    // quote or a line break: if the string never ends, that brace was probably meant literally.
    let mut outermost = 0;
    let mut suspect = None;
    let mut in_string = true;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' if interps.is_empty() => return Ok(i + 1),
                // A string nested in an interpolation closed: back to that interpolation.
                b'"' => in_string = false,
                b'{' => {
                    if interps.is_empty() {
                        outermost = i;
                    }
                    interps.push(1);
                    in_string = false;
                }
                _ => {}
            }
        } else {
            let Some(depth) = interps.last_mut() else {
                return Err(suspect);
            };
            match c {
                b'"' | b'\n' => {
                    suspect = suspect.or(Some(outermost));
                    in_string = c == b'"';
                }
                b'{' => *depth += 1,
                b'}' => {
                    *depth -= 1;
                    if *depth == 0 {
                        interps.pop();
                        in_string = true;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    Err(suspect)
}

impl fmt::Display for Tok<'_> {
    /// How a token is named in "found ..." messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Int(v) => write!(f, "integer `{v}`"),
            Tok::Float(v) => write!(f, "float `{v}`"),
            Tok::Str(_) | Tok::RawStr(_) => write!(f, "a string"),
            Tok::Ident(n) => write!(f, "identifier `{n}`"),
            Tok::Doc(_) => write!(f, "a doc comment"),
            other => write!(f, "`{}`", other.text()),
        }
    }
}

impl Tok<'_> {
    /// Whether the token is a whole operand by itself: a name or a literal.
    pub(crate) fn is_atom(&self) -> bool {
        matches!(
            self,
            Tok::Ident(_)
                | Tok::Int(_)
                | Tok::Float(_)
                | Tok::Str(_)
                | Tok::RawStr(_)
                | Tok::True
                | Tok::False
                | Tok::Null
        )
    }

    /// The source text of a fixed token (empty for literals, which carry their own text).
    pub fn text(&self) -> &'static str {
        match self {
            Tok::Fn => "fn",
            Tok::Let => "let",
            Tok::If => "if",
            Tok::Else => "else",
            Tok::While => "while",
            Tok::For => "for",
            Tok::In => "in",
            Tok::Break => "break",
            Tok::Continue => "continue",
            Tok::Return | Tok::ReturnBare => "return",
            Tok::Throw => "throw",
            Tok::Try => "try",
            Tok::Catch => "catch",
            Tok::Import => "import",
            Tok::As => "as",
            Tok::Export => "export",
            Tok::Extern => "extern",
            Tok::Type => "type",
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::Model => "model",
            Tok::Needs => "needs",
            Tok::ToolItem => "tool",
            Tok::EndorseItem => "endorse",
            Tok::Llm => "llm",
            Tok::Spawn => "spawn",
            Tok::Await => "await",
            Tok::LParen | Tok::LParenLead => "(",
            Tok::RParen => ")",
            Tok::LBracket | Tok::LBracketLead => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Semi => ";",
            Tok::Dot => ".",
            Tok::DotDot => "..",
            Tok::Assign => "=",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Plus => "+",
            Tok::Minus | Tok::MinusLead => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::PlusEq => "+=",
            Tok::MinusEq => "-=",
            Tok::StarEq => "*=",
            Tok::SlashEq => "/=",
            Tok::PercentEq => "%=",
            Tok::Arrow => "->",
            Tok::Question => "?",
            Tok::Pipe => "|",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Bang => "!",
            Tok::Int(_)
            | Tok::Float(_)
            | Tok::Str(_)
            | Tok::RawStr(_)
            | Tok::Ident(_)
            | Tok::Doc(_) => "",
        }
    }
}

/// A token with its byte span in the file.
pub type Spanned<'s> = (usize, Tok<'s>, usize);

/// The result of lexing: tokens ready for the grammar, and what was wrong with the input.
#[derive(Debug, Default)]
pub struct Lexed<'s> {
    pub tokens: Vec<Spanned<'s>>,
    pub diags: Vec<Diagnostic>,
    /// Errors after which parsing would only report noise (an unterminated string, unbalanced
    /// delimiters): the caller should report `diags` and not parse.
    pub fatal: bool,
}

/// Where the lexed text sits: a whole file, or the inside of a `{...}` interpolation part.
#[derive(Clone, Copy, Debug)]
pub enum Context {
    /// Statements: line-leading `(`, `[`, `-` and bare `return` are marked.
    File,
    /// An expression inside a string: newlines mean nothing, as inside parentheses.
    Interpolation,
}

/// Lexes `src`, which starts at byte `base` of file `file`, into tokens with file offsets.
pub fn lex<'s>(file: FileId, src: &'s str, base: usize, context: Context) -> Lexed<'s> {
    let mut out = Lexed::default();
    let mut lexer = Tok::lexer(src);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(base + range.start, base + range.end);
        match result {
            Ok(Tok::AndAnd) => {
                out.diags.push(c_operator(file, span, "&&", "and"));
                out.tokens
                    .push((span.start as usize, Tok::And, span.end as usize));
            }
            Ok(Tok::OrOr) => {
                out.diags.push(c_operator(file, span, "||", "or"));
                out.tokens
                    .push((span.start as usize, Tok::Or, span.end as usize));
            }
            Ok(Tok::Bang) => {
                out.diags.push(c_operator(file, span, "!", "not"));
                out.tokens
                    .push((span.start as usize, Tok::Not, span.end as usize));
            }
            Ok(tok) => out
                .tokens
                .push((span.start as usize, tok, span.end as usize)),
            Err(LexError::UnknownChar) if src.get(range.clone()) == Some("'") => {
                // A single-quoted string: report it once, and parse it as a string.
                let rest = lexer.remainder();
                let line = rest.split('\n').next().unwrap_or("");
                let close = line.find('\'');
                let end = range.end + close.map_or(0, |c| c + 1);
                let whole = Span::new(base + range.start, base + end);
                let text = src.get(range.start..end).unwrap_or("'");
                out.diags
                    .push(single_quoted(file, whole, text, close.is_some()));
                if close.is_some() {
                    lexer.bump(end - range.end);
                    out.tokens
                        .push((whole.start as usize, Tok::Str(text), whole.end as usize));
                }
            }
            Err(err) => {
                let text = src.get(range.clone()).unwrap_or("");
                let (diag, substitute) = lex_error(file, span, text, &err);
                out.fatal |= matches!(err, LexError::UnterminatedString(_));
                out.diags.push(diag);
                if let Some(tok) = substitute {
                    out.tokens
                        .push((span.start as usize, tok, span.end as usize));
                }
            }
        }
    }
    merge_docs(&mut out.tokens);
    foreign_keywords(file, &mut out.tokens, &mut out.diags);
    contextual_keywords(src, base, context, &mut out.tokens);
    if let Context::File = context {
        if !out.fatal {
            let delim = check_delimiters(file, src, base, &out.tokens);
            out.fatal |= !delim.is_empty();
            out.diags.extend(delim);
        }
        mark_leads(src, base, &mut out.tokens);
    }
    out
}

fn single_quoted(file: FileId, span: Span, text: &str, closed: bool) -> Diagnostic {
    let d = Diagnostic::error("E0101", "strings are written in double quotes", file, span)
        .with_label("single quotes do not make a string");
    match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(inner) if closed => d.with_help(format!("write \"{inner}\"")),
        _ => d.with_help("write the string in double quotes: \"text\""),
    }
}

/// `elif` (and `elsif`, `elseif`) right after a `}`: reported, and parsed as `else if`.
fn foreign_keywords(file: FileId, tokens: &mut Vec<Spanned<'_>>, diags: &mut Vec<Diagnostic>) {
    let mut i = 1;
    while i < tokens.len() {
        let (start, end) = (tokens[i].0, tokens[i].2);
        if let (Tok::RBrace, Tok::Ident(w @ ("elif" | "elsif" | "elseif"))) =
            (&tokens[i - 1].1, &tokens[i].1)
        {
            diags.push(
                Diagnostic::error(
                    "E0106",
                    format!("`{w}` is not a keyword in aivm"),
                    file,
                    Span::new(start, end),
                )
                .with_label("write `else if` here")
                .with_help(
                    "conditions are chained with `else if`: `if a { } else if b { } else { }`",
                ),
            );
            tokens[i] = (start, Tok::Else, end);
            tokens.insert(i + 1, (start, Tok::If, end));
        }
        i += 1;
    }
}

/// Turns the words `model`, `needs`, `tool`, `llm`, `spawn`, `await` and `endorse` into
/// keywords where only the keyword makes sense, so they stay usable as names everywhere else
/// (`resp.model`, `let llm = ...`, `tool.fn`): `model`, `needs` and `tool` at the top level
/// of a file before a name (`model smart = "large"`, `needs read "./data"`, `tool read(...)
/// from mcp "files"`); `llm`, `spawn` and `await` before a name on the
/// same line (a name followed by a name is never valid); `endorse` alone on its line inside
/// braces (the bare item of an `llm` body: a name alone is never a useful statement). Never
/// after `.`, where a word is always a field name.
fn contextual_keywords(src: &str, base: usize, context: Context, tokens: &mut [Spanned<'_>]) {
    let same_line = |from: usize, to: usize| {
        src.get(from.saturating_sub(base)..to.saturating_sub(base))
            .is_some_and(|gap| !gap.contains('\n'))
    };
    let mut depth = 0usize;
    for i in 0..tokens.len() {
        let after_dot = i > 0 && matches!(tokens[i - 1].1, Tok::Dot);
        let next = tokens.get(i + 1).map(|(s, t, _)| (*s, t.clone()));
        let end = tokens[i].2;
        let starts_line = match i.checked_sub(1).and_then(|p| tokens.get(p)) {
            None => true,
            Some((_, prev, prev_end)) => {
                matches!(prev, Tok::LBrace | Tok::Semi) || !same_line(*prev_end, tokens[i].0)
            }
        };
        let ends_line = match &next {
            None => true,
            Some((next_start, t)) => {
                matches!(t, Tok::RBrace | Tok::Semi) || !same_line(end, *next_start)
            }
        };
        let tok = &mut tokens[i].1;
        match tok {
            Tok::LParen | Tok::LBracket | Tok::LBrace => depth += 1,
            Tok::RParen | Tok::RBracket | Tok::RBrace => depth = depth.saturating_sub(1),
            Tok::Ident("endorse") if !after_dot && depth > 0 && starts_line && ends_line => {
                *tok = Tok::EndorseItem;
            }
            Tok::Ident(word) if !after_dot => {
                let Some((next_start, Tok::Ident(_))) = next else {
                    continue;
                };
                let keyword = match *word {
                    "model" if depth == 0 && matches!(context, Context::File) => Tok::Model,
                    "needs" if depth == 0 && matches!(context, Context::File) => Tok::Needs,
                    "tool" if depth == 0 && matches!(context, Context::File) => Tok::ToolItem,
                    "llm" if same_line(end, next_start) => Tok::Llm,
                    "spawn" if same_line(end, next_start) => Tok::Spawn,
                    "await" if same_line(end, next_start) => Tok::Await,
                    _ => continue,
                };
                *tok = keyword;
            }
            _ => {}
        }
    }
}

fn c_operator(file: FileId, span: Span, written: &str, word: &str) -> Diagnostic {
    Diagnostic::error(
        "E0106",
        format!("`{written}` is not an operator in aivm"),
        file,
        span,
    )
    .with_label(format!("write `{word}` here"))
    .with_help(format!(
        "boolean operators are words: `and`, `or`, `not`; replace `{written}` with `{word}`"
    ))
}

/// The diagnostic for a token logos rejected, and a token to parse in its place, if any, so
/// that one bad literal does not also cause a syntax error.
fn lex_error<'s>(
    file: FileId,
    span: Span,
    text: &str,
    err: &LexError,
) -> (Diagnostic, Option<Tok<'s>>) {
    match err {
        LexError::UnknownChar => {
            let ch = text.chars().next().unwrap_or('?');
            let span = Span::new(span.start as usize, span.start as usize + ch.len_utf8().max(1));
            let shown = if ch.is_control() { ch.escape_debug().to_string() } else { ch.to_string() };
            let mut d = Diagnostic::error("E0101", format!("unexpected character `{shown}`"), file, span)
                .with_label("not valid here");
            d = match ch {
                '\'' => d.with_help("strings are written in double quotes: \"text\""),
                '#' => d.with_help("comments start with `//`"),
                '&' => d.with_help("to combine conditions, use `and`"),
                _ => d,
            };
            (d, None)
        }
        LexError::IntOverflow => (
            Diagnostic::error("E0104", "integer literal is too large", file, span)
                .with_label("does not fit in a 64-bit signed integer")
                .with_help("the largest int is 9223372036854775807; for larger magnitudes use a float such as `1e19`"),
            Some(Tok::Int(0)),
        ),
        LexError::FloatOutOfRange => (
            Diagnostic::error("E0105", "float literal is out of range", file, span)
                .with_label("this is larger than the largest 64-bit float")
                .with_help("the largest float is about 1.8e308"),
            Some(Tok::Float(0.0)),
        ),
        LexError::UnterminatedString(open_brace) => {
            let quote = Span::new(span.start as usize, span.start as usize + 1);
            let mut d = Diagnostic::error("E0102", "unterminated string", file, quote)
                .with_label("this string is never closed");
            d = match open_brace {
                Some(o) => {
                    let at = span.start as usize + o;
                    d.with_extra(file, Span::new(at, at + 1), "this `{` starts an interpolation, which runs on past quotes")
                        .with_help("a `{` in a string starts an interpolation `{expr}`; if the brace is meant literally, escape it as `\\{` (and `}` as `\\}`)")
                }
                None => d.with_help("add a closing `\"`; a `\"` inside a string is written `\\\"`"),
            };
            (d, None)
        }
    }
}

/// Joins consecutive `///` lines into one token, and drops doc comments that do not come
/// right before an item that keeps them (`fn name`, `tool name`, `export`, `extern`, `type`): elsewhere
/// `///` is an ordinary comment.
fn merge_docs(tokens: &mut Vec<Spanned<'_>>) {
    let old = std::mem::take(tokens);
    let mut iter = old.into_iter().peekable();
    while let Some((start, tok, end)) = iter.next() {
        let Tok::Doc(mut text) = tok else {
            tokens.push((start, tok, end));
            continue;
        };
        let mut end = end;
        while let Some((_, Tok::Doc(more), more_end)) = iter.peek() {
            text.push('\n');
            text.push_str(more);
            end = *more_end;
            iter.next();
        }
        let documents_item = match iter.peek() {
            Some((_, Tok::Export | Tok::Extern | Tok::Type, _)) => true,
            // `fn name` is an item; `fn(` is a lambda, which has no doc. `tool name` is an
            // MCP tool item (`tool` is still a plain word here: see `contextual_keywords`).
            Some((_, Tok::Fn | Tok::Ident("tool"), _)) => {
                let mut ahead = iter.clone();
                ahead.next();
                matches!(ahead.peek(), Some((_, Tok::Ident(_), _)))
            }
            _ => false,
        };
        if documents_item {
            tokens.push((start, Tok::Doc(text), end));
        }
    }
}

/// Reports unclosed, unexpected and mismatched `(` `[` `{`, the way rustc does before parsing,
/// because a parser that meets a missing `}` can only point at the end of the file.
fn check_delimiters(
    file: FileId,
    src: &str,
    base: usize,
    tokens: &[Spanned<'_>],
) -> Vec<Diagnostic> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut open: Vec<(&'static str, Span)> = Vec::new();
    // The first `{` whose `}` is indented differently from the line that opened it: when a
    // `}` is missing, this is usually where (the braces after it pair up one level off).
    let mut suspect: Option<(Span, Span)> = None;
    for (start, tok, end) in tokens {
        let span = Span::new(*start, *end);
        let close = tok.text();
        match tok {
            Tok::LParen | Tok::LBracket | Tok::LBrace => open.push((tok.text(), span)),
            Tok::RParen | Tok::RBracket | Tok::RBrace => match open.pop() {
                Some((o, ospan)) if closer(o) == close => {
                    let (oi, ci) = (
                        indent_of(src, base, &line_starts, ospan.start),
                        indent_of(src, base, &line_starts, span.start),
                    );
                    if o == "{" && suspect.is_none() && ci.is_some() && oi != ci {
                        suspect = Some((ospan, span));
                    }
                }
                Some((o, ospan)) => {
                    let d = Diagnostic::error(
                        "E0108",
                        format!("mismatched closing delimiter `{close}`"),
                        file,
                        span,
                    )
                    .with_label(format!("expected `{}` here", closer(o)))
                    .with_extra(
                        file,
                        ospan,
                        format!("this `{o}` is closed by the `{close}`"),
                    );
                    return vec![d];
                }
                None => {
                    let d = Diagnostic::error(
                        "E0109",
                        format!("unexpected closing delimiter `{close}`"),
                        file,
                        span,
                    )
                    .with_label("nothing is open here")
                    .with_help(format!(
                        "remove this `{close}`, or add its opening `{}` earlier",
                        opener(close)
                    ));
                    return vec![d];
                }
            },
            _ => {}
        }
    }
    let Some((o, ospan)) = open.pop() else {
        return Vec::new();
    };
    let eof = tokens.last().map_or(0, |t| t.2);
    let mut d = Diagnostic::error(
        "E0107",
        format!("unclosed delimiter `{o}`"),
        file,
        Span::new(eof, eof),
    )
    .with_label(format!(
        "expected `{}` before the end of the file",
        closer(o)
    ))
    .with_extra(file, ospan, "unclosed delimiter")
    .with_help(format!("add the missing `{}`", closer(o)));
    if let (Some((sopen, sclose)), "{") = (suspect, o) {
        let line = likely_missing_line(src, base, sopen.start)
            .unwrap_or_else(|| line_number(src, base, sclose.start));
        d.help = Some(format!(
            "add the missing `}}`; judging by the indentation, it belongs before line {line}"
        ));
        d = d
            .with_extra(file, sopen, "this `{` might be the one missing its `}`...")
            .with_extra(
                file,
                sclose,
                "...as the `}` that closes it is indented differently",
            );
    }
    vec![d]
}

/// 1-based line number of a file offset.
fn line_number(src: &str, base: usize, offset: u32) -> usize {
    src.get(..(offset as usize).saturating_sub(base))
        .map_or(0, |t| t.matches('\n').count())
        + 1
}

/// The first non-blank line after the one holding the `{` at `open` that is indented no
/// deeper than it: where that block's `}` was presumably meant to go.
fn likely_missing_line(src: &str, base: usize, open: u32) -> Option<usize> {
    let first = line_number(src, base, open);
    let lines: Vec<&str> = src.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let opener_indent = indent(lines.get(first.checked_sub(1)?)?);
    (first..lines.len())
        .find(|&i| {
            lines
                .get(i)
                .is_some_and(|l| !l.trim().is_empty() && indent(l) <= opener_indent)
        })
        .map(|i| i + 1)
}

/// The indentation of the line holding `offset`, if the token there is first on its line.
/// The indentation of the line holding `offset`, if only blanks precede it on that line (or it
/// is a `{`, which ends a line such as `if c {`). `line_starts` makes this independent of the
/// line's length, so a file of one long line stays linear to check.
fn indent_of(src: &str, base: usize, line_starts: &[usize], offset: u32) -> Option<usize> {
    let at = (offset as usize).checked_sub(base)?;
    let line = line_starts.partition_point(|&s| s <= at).checked_sub(1)?;
    let line_start = *line_starts.get(line)?;
    let indent = src
        .get(line_start..at)?
        .bytes()
        .take_while(|b| *b == b' ' || *b == b'\t')
        .count();
    let all_blank = line_start + indent == at;
    if all_blank || src.get(at..at + 1) == Some("{") {
        Some(indent)
    } else {
        None
    }
}

fn closer(open: &str) -> &'static str {
    match open {
        "(" => ")",
        "[" => "]",
        _ => "}",
    }
}

fn opener(close: &str) -> &'static str {
    match close {
        ")" => "(",
        "]" => "[",
        _ => "{",
    }
}

/// Marks the tokens whose meaning depends on the start of a line. Inside `(...)` and `[...]`
/// newlines mean nothing; inside `{...}` and at top level, a `(`, `[` or `-` that begins a
/// line (or follows `{` or `;`) begins a new statement, and `return` at the end of a line
/// returns nothing.
fn mark_leads(src: &str, base: usize, tokens: &mut [Spanned<'_>]) {
    let mut stack: Vec<bool> = Vec::new(); // true = inside braces
    let newline_between = |from: usize, to: usize| {
        src.get(from.saturating_sub(base)..to.saturating_sub(base))
            .is_some_and(|gap| gap.contains('\n'))
    };
    let mut prev: Option<(usize, bool)> = None; // end of the previous token, and whether it was `{`/`;`
    for i in 0..tokens.len() {
        let statements = stack.last().copied().unwrap_or(true);
        let (start, end) = (tokens[i].0, tokens[i].2);
        let leads = match prev {
            None => true,
            Some((prev_end, after_sep)) => after_sep || newline_between(prev_end, start),
        };
        let next_ends_line = match tokens.get(i + 1) {
            None => true,
            Some((next_start, next, _)) => {
                matches!(next, Tok::RBrace | Tok::Semi) || newline_between(end, *next_start)
            }
        };
        let tok = &mut tokens[i].1;
        match tok {
            Tok::LParen | Tok::LBracket => stack.push(false),
            Tok::LBrace => stack.push(true),
            Tok::RParen | Tok::RBracket | Tok::RBrace => {
                stack.pop();
            }
            _ => {}
        }
        if statements && leads {
            match tok {
                Tok::LParen => *tok = Tok::LParenLead,
                Tok::LBracket => *tok = Tok::LBracketLead,
                Tok::Minus => *tok = Tok::MinusLead,
                _ => {}
            }
        }
        if statements && next_ends_line && *tok == Tok::Return {
            *tok = Tok::ReturnBare;
        }
        prev = Some((end, matches!(tok, Tok::LBrace | Tok::Semi)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok<'_>> {
        let lexed = lex(0, src, 0, Context::File);
        assert!(
            lexed.diags.is_empty(),
            "unexpected diagnostics: {:?}",
            lexed.diags
        );
        lexed.tokens.into_iter().map(|t| t.1).collect()
    }

    fn codes(src: &str) -> Vec<&'static str> {
        lex(0, src, 0, Context::File)
            .diags
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn agent_words_are_keywords_only_where_nothing_else_fits() {
        let t = toks("model smart = \"large\"\nfn f() { let t = spawn g(x)\n await t }");
        assert_eq!(t[0], Tok::Model);
        assert!(t.contains(&Tok::Spawn) && t.contains(&Tok::Await));
        let t = toks("fn f() { llm smart { user \"hi\" } }");
        assert!(t.contains(&Tok::Llm));
        // As names: a field, a variable, a call, and a name on the next line.
        for src in [
            "fn f() { print(r.model) }",
            "fn f() { let model = 1; let llm = model }",
            "fn f() { spawn(x); await(y) }",
            "fn f() { x = llm\n smart() }",
            "fn f() { r.await }",
        ] {
            let t = toks(src);
            assert!(
                !t.iter()
                    .any(|t| matches!(t, Tok::Model | Tok::Llm | Tok::Spawn | Tok::Await)),
                "{src}: {t:?}"
            );
        }
    }

    #[test]
    fn keywords() {
        let src = "fn let if else while for in break continue return throw try catch import as export extern type and or not true false null";
        let expected = vec![
            Tok::Fn,
            Tok::Let,
            Tok::If,
            Tok::Else,
            Tok::While,
            Tok::For,
            Tok::In,
            Tok::Break,
            Tok::Continue,
            Tok::Return,
            Tok::Throw,
            Tok::Try,
            Tok::Catch,
            Tok::Import,
            Tok::As,
            Tok::Export,
            Tok::Extern,
            Tok::Type,
            Tok::And,
            Tok::Or,
            Tok::Not,
            Tok::True,
            Tok::False,
            Tok::Null,
        ];
        assert_eq!(toks(src), expected);
        // A keyword prefix is still an identifier.
        assert_eq!(
            toks("fnord iff lets"),
            vec![Tok::Ident("fnord"), Tok::Ident("iff"), Tok::Ident("lets")]
        );
    }

    #[test]
    fn punctuation() {
        let src = "x ( ) [ ] { } , : ; . .. = == != < <= > >= + - * / % += -= *= /= %= -> ? |";
        let expected = vec![
            Tok::Ident("x"),
            Tok::LParen,
            Tok::RParen,
            Tok::LBracket,
            Tok::RBracket,
            Tok::LBrace,
            Tok::RBrace,
            Tok::Comma,
            Tok::Colon,
            Tok::Semi,
            Tok::Dot,
            Tok::DotDot,
            Tok::Assign,
            Tok::EqEq,
            Tok::Ne,
            Tok::Lt,
            Tok::Le,
            Tok::Gt,
            Tok::Ge,
            Tok::Plus,
            Tok::Minus,
            Tok::Star,
            Tok::Slash,
            Tok::Percent,
            Tok::PlusEq,
            Tok::MinusEq,
            Tok::StarEq,
            Tok::SlashEq,
            Tok::PercentEq,
            Tok::Arrow,
            Tok::Question,
            Tok::Pipe,
        ];
        assert_eq!(toks(src), expected);
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("42 1_000 0"),
            vec![Tok::Int(42), Tok::Int(1000), Tok::Int(0)]
        );
        assert_eq!(
            toks("1.5 1e9 2.5e-3 1_0.2_5"),
            vec![
                Tok::Float(1.5),
                Tok::Float(1e9),
                Tok::Float(2.5e-3),
                Tok::Float(10.25)
            ]
        );
        // `1..5` is a range, not the float `1.` followed by `.5`.
        assert_eq!(toks("1..5"), vec![Tok::Int(1), Tok::DotDot, Tok::Int(5)]);
        assert_eq!(toks("x.0"), vec![Tok::Ident("x"), Tok::Dot, Tok::Int(0)]);
        assert_eq!(toks("9223372036854775807"), vec![Tok::Int(i64::MAX)]);
    }

    #[test]
    fn number_overflow_is_a_diagnostic_with_a_substitute() {
        let lexed = lex(0, "9223372036854775808 1e999", 0, Context::File);
        let codes: Vec<_> = lexed.diags.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["E0104", "E0105"]);
        assert_eq!(lexed.diags[0].span, Span::new(0, 19));
        assert!(!lexed.fatal);
        assert_eq!(
            lexed.tokens.len(),
            2,
            "both literals are kept so parsing can continue"
        );
    }

    #[test]
    fn strings_keep_raw_text_including_nested_interpolation() {
        assert_eq!(toks(r#""a\"b""#), vec![Tok::Str(r#""a\"b""#)]);
        let src = r#""x {f("y {z}")} w" 1"#;
        assert_eq!(
            toks(src),
            vec![Tok::Str(r#""x {f("y {z}")} w""#), Tok::Int(1)]
        );
        assert_eq!(
            toks(r#""\{ not interp""#),
            vec![Tok::Str(r#""\{ not interp""#)]
        );
        assert_eq!(toks("\"multi\nline\""), vec![Tok::Str("\"multi\nline\"")]);
    }

    #[test]
    fn unterminated_string_is_fatal_and_points_at_the_quote() {
        let lexed = lex(0, "let s = \"abc {x}\n", 0, Context::File);
        assert!(lexed.fatal);
        assert_eq!(lexed.diags.len(), 1);
        assert_eq!(lexed.diags[0].code, "E0102");
        assert_eq!(lexed.diags[0].span, Span::new(8, 9));
        assert_eq!(codes("\"a {\"b}"), vec!["E0102"]);
    }

    #[test]
    fn comments_and_doc_comments() {
        assert_eq!(
            toks("x // comment\ny"),
            vec![Tok::Ident("x"), Tok::Ident("y")]
        );
        assert_eq!(
            toks("/// one\n///two\nfn f"),
            vec![Tok::Doc("one\ntwo".into()), Tok::Fn, Tok::Ident("f")]
        );
        assert_eq!(toks("/// d\nexport fn f")[0], Tok::Doc("d".into()));
        assert_eq!(toks("/// d\ntype T")[0], Tok::Doc("d".into()));
        assert_eq!(toks("/// d\nextern fn f")[0], Tok::Doc("d".into()));
        // Not before an item: an ordinary comment. `////` is always ordinary.
        assert_eq!(toks("/// d\nlet x"), vec![Tok::Let, Tok::Ident("x")]);
        assert_eq!(toks("/// d\nfn(x)")[0], Tok::Fn);
        assert_eq!(toks("//// d\nfn f")[0], Tok::Fn);
    }

    #[test]
    fn line_leading_tokens_are_marked_in_statement_context() {
        assert_eq!(toks("f\n(x)")[1], Tok::LParenLead);
        assert_eq!(toks("f (x)")[1], Tok::LParen);
        assert_eq!(toks("a\n-b")[1], Tok::MinusLead);
        assert_eq!(toks("a\n[1]")[1], Tok::LBracketLead);
        assert_eq!(toks("{ (x) }")[1], Tok::LParenLead);
        assert_eq!(toks("a; -b")[2], Tok::MinusLead);
        // Inside parentheses and brackets newlines mean nothing.
        assert_eq!(toks("(a\n-b)")[2], Tok::Minus);
        assert_eq!(toks("[a\n(b)]")[2], Tok::LParen);
        // ...but a block inside them is statements again.
        assert_eq!(toks("f(fn() {\n(x)\n})")[6], Tok::LParenLead);
    }

    #[test]
    fn bare_return() {
        assert_eq!(toks("return\nx")[0], Tok::ReturnBare);
        assert_eq!(toks("{ return }")[1], Tok::ReturnBare);
        assert_eq!(toks("return; x")[0], Tok::ReturnBare);
        assert_eq!(toks("return")[0], Tok::ReturnBare);
        assert_eq!(toks("return x")[0], Tok::Return);
        assert_eq!(toks("return (x)")[0], Tok::Return);
    }

    #[test]
    fn c_operators_are_replaced_with_a_diagnostic() {
        let lexed = lex(0, "a && b || !c", 0, Context::File);
        let codes: Vec<_> = lexed.diags.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["E0106", "E0106", "E0106"]);
        let kinds: Vec<_> = lexed.tokens.iter().map(|t| t.1.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                Tok::Ident("a"),
                Tok::And,
                Tok::Ident("b"),
                Tok::Or,
                Tok::Not,
                Tok::Ident("c")
            ]
        );
        assert_eq!(
            lexed.diags[0].help.as_deref().map(|h| h.contains("`and`")),
            Some(true)
        );
    }

    #[test]
    fn unknown_characters() {
        assert_eq!(codes("a @ b"), vec!["E0101"]);
        let lexed = lex(0, "x é", 0, Context::File);
        assert_eq!(
            lexed.diags[0].span,
            Span::new(2, 4),
            "the span covers the whole UTF-8 character"
        );
        let quoted = lex(0, "'a b'", 0, Context::File);
        assert_eq!(
            quoted.diags.len(),
            1,
            "one diagnostic for the whole single-quoted text"
        );
        assert_eq!(quoted.diags[0].span, Span::new(0, 5));
        assert_eq!(quoted.diags[0].help.as_deref(), Some("write \"a b\""));
        assert_eq!(
            quoted.tokens[0].1,
            Tok::Str("'a b'"),
            "parsed on as a string"
        );
    }

    #[test]
    fn delimiters() {
        let unclosed = lex(0, "fn f() {\n  if x {\n}", 0, Context::File);
        assert!(unclosed.fatal);
        assert_eq!(unclosed.diags[0].code, "E0107");
        assert_eq!(
            unclosed.diags[0].extra[0].span,
            Span::new(7, 8),
            "the unclosed brace is labelled"
        );
        assert_eq!(codes("(]"), vec!["E0108"]);
        assert_eq!(codes("x)"), vec!["E0109"]);
    }

    #[test]
    fn spans_are_offset_by_base() {
        let lexed = lex(0, "a + 1", 100, Context::Interpolation);
        let spans: Vec<_> = lexed.tokens.iter().map(|t| (t.0, t.2)).collect();
        assert_eq!(spans, vec![(100, 101), (102, 103), (104, 105)]);
    }
}
