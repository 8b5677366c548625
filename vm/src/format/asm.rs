//! The assembly text of a module (spec/bytecode.md, "Assembly text"): [`disassemble`] prints
//! every table and every function, and [`assemble`] reads it back, so that
//! `assemble(&disassemble(m)) == m` bit for bit — and so the encodings are equal too. Operands
//! are parsed by the kinds of the opcode table; nothing here lists opcodes.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::module::{
    Constant, Export, Field, Function, LineEntry, ModelSlot, Module, Param, StrId, TypeDesc,
    FORMAT_VERSION,
};
use super::opcodes::{Instr, Opcode, Operand, OperandKind, RegRange};

/// An assembly error, at a 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct AsmError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Where the comment of an instruction or table entry starts, so comments line up.
const COMMENT_COLUMN: usize = 36;

/// Prints a module as assembly text.
pub fn disassemble(m: &Module) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; aivm assembly, bytecode format version {FORMAT_VERSION}"
    );
    out.push_str(".strings\n");
    for (i, s) in m.strings.iter().enumerate() {
        let _ = writeln!(out, "    s{i} = {}", quote(s));
    }
    out.push_str(".const\n");
    for (i, c) in m.constants.iter().enumerate() {
        let (text, comment) = match c {
            Constant::Int(v) => (format!("int {v}"), None),
            Constant::Float(v) => float_text(*v),
            Constant::Str(s) => (format!("str s{s}"), Some(str_comment(m, *s))),
            Constant::Shape(names) => (
                format!("shape [{}]", join(names.iter().map(|n| format!("s{n}")))),
                Some(shape_comment(m, names)),
            ),
            Constant::Readers(None) => ("readers public".to_string(), None),
            Constant::Readers(Some(names)) => (
                format!("readers [{}]", join(names.iter().map(|n| format!("s{n}")))),
                Some(names_comment(m, names)),
            ),
        };
        line_with_comment(&mut out, &format!("    k{i} = {text}"), comment);
    }
    out.push_str(".types\n");
    for (i, t) in m.types.iter().enumerate() {
        line_with_comment(
            &mut out,
            &format!("    t{i} = {}", type_text(t)),
            type_comment(m, t),
        );
    }
    out.push_str(".natives\n");
    for (i, &n) in m.natives.iter().enumerate() {
        line_with_comment(
            &mut out,
            &format!("    n{i} = s{n}"),
            Some(m.str(n).to_string()),
        );
    }
    out.push_str(".files\n");
    for (i, &f) in m.files.iter().enumerate() {
        line_with_comment(
            &mut out,
            &format!("    s{f}"),
            Some(format!("file {i}: {}", str_comment(m, f))),
        );
    }
    out.push_str(".exports\n");
    for e in &m.exports {
        line_with_comment(
            &mut out,
            &format!("    s{} = f{}", e.name, e.func),
            Some(format!("{} -> {}", m.str(e.name), m.func_name(e.func))),
        );
    }
    out.push_str(".models\n");
    for slot in &m.models {
        line_with_comment(
            &mut out,
            &format!("    s{} = s{}", slot.name, slot.logical),
            Some(format!("{} = {:?}", m.str(slot.name), m.str(slot.logical))),
        );
    }
    out.push_str(".manifest\n");
    let man = &m.manifest;
    let lists = std::iter::once(("tools", &man.tools)).chain(man.resources());
    for (word, list) in lists {
        if !list.is_empty() {
            line_with_comment(
                &mut out,
                &format!(
                    "    {word} [{}]",
                    join(list.iter().map(|n| format!("s{n}")))
                ),
                Some(names_comment(m, list)),
            );
        }
    }
    if man.declassify {
        out.push_str("    declassify\n");
    }
    if man.endorse {
        out.push_str("    endorse\n");
    }
    if let Some(e) = m.entry {
        line_with_comment(
            &mut out,
            &format!(".entry f{e}"),
            Some(m.func_name(e).to_string()),
        );
    }
    for (i, f) in m.functions.iter().enumerate() {
        disassemble_function(&mut out, m, i, f);
    }
    out
}

fn disassemble_function(out: &mut String, m: &Module, index: usize, f: &Function) {
    line_with_comment(
        out,
        &format!(".func f{index} s{}", f.name),
        Some(m.str(f.name).to_string()),
    );
    let params = join(f.params.iter().map(|p| format!("s{}: t{}", p.name, p.ty)));
    if params.is_empty() {
        out.push_str("    params\n");
    } else {
        let _ = writeln!(out, "    params {params}");
    }
    let _ = writeln!(out, "    ret t{}", f.ret);
    let _ = writeln!(out, "    regs {}", f.nregs);
    let _ = writeln!(out, "    caps {}", f.ncaps);
    if let Some(file) = f.file {
        let comment = m.files.get(file as usize).map(|&s| str_comment(m, s));
        line_with_comment(out, &format!("    file {file}"), comment);
    }
    if let Some(doc) = f.doc {
        line_with_comment(out, &format!("    doc s{doc}"), Some(str_comment(m, doc)));
    }
    for l in &f.lines {
        let _ = writeln!(out, "    line {} {}:{}", l.pc, l.line, l.col);
    }
    let len = f.code.len() as u32;
    let mut labelled = vec![false; f.code.len()];
    for i in &f.code {
        for op in i.operands() {
            if let Operand::Target(t) = op {
                if t < len {
                    labelled[t as usize] = true;
                }
            }
        }
    }
    for (pc, i) in f.code.iter().enumerate() {
        if labelled[pc] {
            let _ = writeln!(out, "L{pc}:");
        }
        let info = i.opcode().info();
        let ops: Vec<String> = i
            .operands()
            .into_iter()
            .map(|o| operand_text(o, len))
            .collect();
        let mut text = format!("    {}", info.name);
        if !ops.is_empty() {
            text.push(' ');
            text.push_str(&ops.join(", "));
        }
        line_with_comment(out, &text, instr_comment(m, i));
    }
}

fn operand_text(op: Operand, code_len: u32) -> String {
    match op {
        Operand::Dst(r) | Operand::Src(r) => format!("r{r}"),
        Operand::Range(RegRange { start, count }) => format!("r{start}+{count}"),
        Operand::Const(k) => format!("k{k}"),
        Operand::Func(f) => format!("f{f}"),
        Operand::Type(t) => format!("t{t}"),
        Operand::Native(n) => format!("n{n}"),
        Operand::Str(s) => format!("s{s}"),
        // Labels exist only for targets inside the code; others keep their raw index.
        Operand::Target(t) if t < code_len => format!("@L{t}"),
        Operand::Target(t) => format!("@{t}"),
        Operand::Imm(v) => v.to_string(),
        Operand::Count(c) => c.to_string(),
    }
}

/// The comment of an instruction: what its constant, function, native, string or type is.
fn instr_comment(m: &Module, i: &Instr) -> Option<String> {
    let parts: Vec<String> = i
        .operands()
        .into_iter()
        .filter_map(|op| match op {
            Operand::Const(k) => m.constants.get(k as usize).map(|c| match c {
                Constant::Int(v) => v.to_string(),
                Constant::Float(v) => format!("{v:?}"),
                Constant::Str(s) => str_comment(m, *s),
                Constant::Shape(names) => shape_comment(m, names),
                Constant::Readers(None) => "public".to_string(),
                Constant::Readers(Some(names)) => names_comment(m, names),
            }),
            Operand::Func(f) => m
                .functions
                .get(f as usize)
                .map(|g| m.str(g.name).to_string()),
            Operand::Native(n) => m.natives.get(n as usize).map(|&s| m.str(s).to_string()),
            Operand::Str(s) => m.strings.get(s as usize).map(|_| str_comment(m, s)),
            Operand::Type(t) => m
                .types
                .get(t as usize)
                .and_then(|t| type_comment(m, t).or_else(|| Some(type_text(t)))),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn line_with_comment(out: &mut String, text: &str, comment: Option<String>) {
    out.push_str(text);
    if let Some(c) = comment {
        let pad = COMMENT_COLUMN.saturating_sub(text.chars().count()).max(1);
        out.extend(std::iter::repeat_n(' ', pad));
        out.push_str("; ");
        // Names come from the string pool and may hold line breaks: escape them so the
        // comment stays on its line.
        for ch in c.chars() {
            if needs_escape(ch) {
                let _ = write!(out, "\\u{{{:x}}}", ch as u32);
            } else {
                out.push(ch);
            }
        }
    }
    out.push('\n');
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// A string for a comment: quoted, escaped, and cut short when long.
fn str_comment(m: &Module, s: u32) -> String {
    let text = m.str(s);
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("{}...", quote(&cut))
    } else {
        quote(text)
    }
}

/// A list of strings for a comment: `["a", "b"]`.
fn names_comment(m: &Module, names: &[StrId]) -> String {
    format!("[{}]", join(names.iter().map(|&n| str_comment(m, n))))
}

fn shape_comment(m: &Module, names: &[u32]) -> String {
    format!("{{{}}}", join(names.iter().map(|&n| m.str(n).to_string())))
}

/// A float as text: the shortest form when it reads back to the same bits, else the bits.
fn float_text(v: f64) -> (String, Option<String>) {
    let short = format!("{v:?}");
    if short
        .parse::<f64>()
        .is_ok_and(|p| p.to_bits() == v.to_bits())
    {
        (format!("float {short}"), None)
    } else {
        (format!("float {:#018x}", v.to_bits()), Some(short))
    }
}

fn type_text(t: &TypeDesc) -> String {
    match t {
        TypeDesc::Any => "any".into(),
        TypeDesc::Null => "null".into(),
        TypeDesc::Bool => "bool".into(),
        TypeDesc::Int => "int".into(),
        TypeDesc::Float => "float".into(),
        TypeDesc::Str => "str".into(),
        TypeDesc::Func => "func".into(),
        TypeDesc::Error => "error".into(),
        TypeDesc::List(e) => format!("list t{e}"),
        TypeDesc::Map(e) => format!("map t{e}"),
        TypeDesc::Optional(e) => format!("optional t{e}"),
        TypeDesc::StrLit(s) => format!("strlit s{s}"),
        TypeDesc::Record(fields) => format!(
            "record {{{}}}",
            join(fields.iter().map(|f| format!("s{}: t{}", f.name, f.ty)))
        ),
        TypeDesc::Union(ts) => format!("union [{}]", join(ts.iter().map(|t| format!("t{t}")))),
        TypeDesc::Named { name, ty, doc } => match doc {
            Some(d) => format!("named s{name} t{ty} doc s{d}"),
            None => format!("named s{name} t{ty}"),
        },
    }
}

fn type_comment(m: &Module, t: &TypeDesc) -> Option<String> {
    match t {
        TypeDesc::StrLit(s) => Some(str_comment(m, *s)),
        TypeDesc::Record(fields) => Some(format!(
            "{{{}}}",
            join(fields.iter().map(|f| m.str(f.name).to_string()))
        )),
        TypeDesc::Named { name, .. } => Some(m.str(*name).to_string()),
        _ => None,
    }
}

/// Whether a character is written as `\u{..}` in a string: controls, and invisible format
/// characters (zero-width, bidirectional overrides, byte order mark) that would hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{61c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// A string literal: double quotes, with `\" \\ \n \t \r \0` and `\u{HEX}` escapes.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads assembly text into a module. Every table entry carries its index, which must be the
/// next one; references are not checked here (that is the verifier's job), so any module,
/// valid or not, can be written down.
pub fn assemble(text: &str) -> Result<Module, AsmError> {
    let mut a = Assembler::default();
    for (n, line) in text.lines().enumerate() {
        let toks = tokenize(line, n + 1)?;
        if toks.is_empty() {
            continue;
        }
        let mut p = Line {
            toks,
            at: 0,
            line: n + 1,
            end_col: line.chars().count() + 1,
        };
        a.line(&mut p)?;
        p.finish()?;
    }
    a.finish_function()?;
    Ok(a.m)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A run of characters other than white space, punctuation and quotes.
    Word(String),
    Str(String),
    Punct(char),
}

const PUNCT: &[char] = &[',', ':', '=', '[', ']', '{', '}'];

/// Splits one line into tokens with their 1-based columns; `;` starts a comment.
fn tokenize(line: &str, lineno: usize) -> Result<Vec<(Tok, usize)>, AsmError> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let err = |col: usize, message: String| AsmError {
        line: lineno,
        col,
        message,
    };
    while let Some(&c) = chars.get(i) {
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == ';' {
            break;
        } else if PUNCT.contains(&c) {
            toks.push((Tok::Punct(c), col));
            i += 1;
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(err(col, "unterminated string".into()));
                };
                i += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else {
                            return Err(err(i, "unterminated escape".into()));
                        };
                        i += 1;
                        match e {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            '0' => s.push('\0'),
                            '\\' => s.push('\\'),
                            '"' => s.push('"'),
                            'u' => {
                                let start = i - 1;
                                if chars.get(i) != Some(&'{') {
                                    return Err(err(start, "expected `{` after `\\u`".into()));
                                }
                                let close = chars[i..].iter().position(|&c| c == '}');
                                let Some(close) = close else {
                                    return Err(err(start, "unterminated `\\u{`".into()));
                                };
                                let hex: String = chars[i + 1..i + close].iter().collect();
                                let ch = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .filter(|_| !hex.is_empty() && hex.len() <= 6)
                                    .and_then(char::from_u32);
                                let Some(ch) = ch else {
                                    return Err(err(
                                        start,
                                        format!("`\\u{{{hex}}}` is not a Unicode scalar value"),
                                    ));
                                };
                                s.push(ch);
                                i += close + 1;
                            }
                            other => return Err(err(i - 1, format!("unknown escape `\\{other}`"))),
                        }
                    }
                    c => s.push(c),
                }
            }
            toks.push((Tok::Str(s), col));
        } else {
            let start = i;
            while let Some(&c) = chars.get(i) {
                if c.is_whitespace() || c == ';' || c == '"' || PUNCT.contains(&c) {
                    break;
                }
                i += 1;
            }
            toks.push((Tok::Word(chars[start..i].iter().collect()), col));
        }
    }
    Ok(toks)
}

/// The tokens of one line and a cursor over them.
struct Line {
    toks: Vec<(Tok, usize)>,
    at: usize,
    line: usize,
    end_col: usize,
}

impl Line {
    fn col(&self) -> usize {
        self.toks.get(self.at).map_or(self.end_col, |t| t.1)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, AsmError> {
        Err(AsmError {
            line: self.line,
            col: self.col(),
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.0)
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the line".into(),
            Some(Tok::Word(w)) => format!("`{w}`"),
            Some(Tok::Str(_)) => "a string".into(),
            Some(Tok::Punct(c)) => format!("`{c}`"),
        }
    }

    fn word(&mut self, what: &str) -> Result<String, AsmError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => self.err(format!("expected {what}, found {}", self.found())),
        }
    }

    fn punct(&mut self, c: char) -> Result<(), AsmError> {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.at += 1;
            Ok(())
        } else {
            self.err(format!("expected `{c}`, found {}", self.found()))
        }
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Tok::Punct(c));
        if hit {
            self.at += 1;
        }
        hit
    }

    fn finish(&self) -> Result<(), AsmError> {
        if self.at < self.toks.len() {
            return self.err(format!(
                "unexpected {} at the end of the line",
                self.found()
            ));
        }
        Ok(())
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, AsmError> {
        let col = self.col();
        let w = self.word(what)?;
        w.parse().map_err(|_| AsmError {
            line: self.line,
            col,
            message: format!("expected {what}, found `{w}`"),
        })
    }

    /// A reference such as `s3` or `t0`: the prefix, then a u32.
    fn index(&mut self, prefix: char, what: &str) -> Result<u32, AsmError> {
        let col = self.col();
        let w = self.word(what)?;
        parse_prefixed(&w, prefix).ok_or_else(|| AsmError {
            line: self.line,
            col,
            message: format!("expected {what} (`{prefix}<number>`), found `{w}`"),
        })
    }

    fn index_list(
        &mut self,
        open: char,
        close: char,
        prefix: char,
        what: &str,
    ) -> Result<Vec<u32>, AsmError> {
        self.punct(open)?;
        let mut v = Vec::new();
        if self.eat(close) {
            return Ok(v);
        }
        loop {
            v.push(self.index(prefix, what)?);
            if self.eat(close) {
                return Ok(v);
            }
            self.punct(',')?;
        }
    }
}

/// `s12` with prefix `s` is 12; no sign, no leading `+`.
fn parse_prefixed<T: std::str::FromStr>(w: &str, prefix: char) -> Option<T> {
    let digits = w.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Strings,
    Const,
    Types,
    Natives,
    Files,
    Exports,
    Models,
    Manifest,
    Func,
}

/// A jump operand waiting for its label: instruction index, operand index, label, position.
struct Fixup {
    pc: usize,
    operand: usize,
    label: String,
    line: usize,
    col: usize,
}

struct Assembler {
    m: Module,
    section: Section,
    /// The function being assembled, with its pending operands.
    code: Vec<Vec<Operand>>,
    ops: Vec<Opcode>,
    labels: HashMap<String, usize>,
    fixups: Vec<Fixup>,
}

impl Default for Assembler {
    fn default() -> Self {
        Assembler {
            m: Module::default(),
            section: Section::None,
            code: vec![],
            ops: vec![],
            labels: HashMap::new(),
            fixups: vec![],
        }
    }
}

impl Assembler {
    fn line(&mut self, p: &mut Line) -> Result<(), AsmError> {
        if let Some(Tok::Word(w)) = p.peek() {
            if w.starts_with('.') {
                return self.directive(p);
            }
        }
        match self.section {
            Section::None => p.err("expected a section directive such as `.strings` or `.func`"),
            Section::Strings => {
                self.entry_index(p, 's', self.m.strings.len(), "string")?;
                match p.toks.get(p.at) {
                    Some((Tok::Str(s), _)) => {
                        self.m.strings.push(s.clone());
                        p.at += 1;
                        Ok(())
                    }
                    _ => p.err(format!("expected a string literal, found {}", p.found())),
                }
            }
            Section::Const => {
                self.entry_index(p, 'k', self.m.constants.len(), "constant")?;
                let c = constant(p)?;
                self.m.constants.push(c);
                Ok(())
            }
            Section::Types => {
                self.entry_index(p, 't', self.m.types.len(), "type")?;
                let t = type_desc(p)?;
                self.m.types.push(t);
                Ok(())
            }
            Section::Natives => {
                self.entry_index(p, 'n', self.m.natives.len(), "native")?;
                let s = p.index('s', "a string")?;
                self.m.natives.push(s);
                Ok(())
            }
            Section::Files => {
                let s = p.index('s', "a string")?;
                self.m.files.push(s);
                Ok(())
            }
            Section::Exports => {
                let name = p.index('s', "a string")?;
                p.punct('=')?;
                let func = p.index('f', "a function")?;
                self.m.exports.push(Export { name, func });
                Ok(())
            }
            Section::Models => {
                let name = p.index('s', "a string (the model's name)")?;
                p.punct('=')?;
                let logical = p.index('s', "a string (the logical name)")?;
                self.m.models.push(ModelSlot { name, logical });
                Ok(())
            }
            Section::Manifest => self.manifest_line(p),
            Section::Func => self.function_line(p),
        }
    }

    /// One line of `.manifest`: `tools [s1, s2]`, a resource list the same way, or a bare
    /// `declassify` / `endorse`. Each word at most once.
    fn manifest_line(&mut self, p: &mut Line) -> Result<(), AsmError> {
        let col = p.col();
        let w =
            p.word("`tools`, `read`, `write`, `net`, `run`, `env`, `declassify` or `endorse`")?;
        let twice = || AsmError {
            line: p.line,
            col,
            message: format!("`{w}` is given twice in `.manifest`"),
        };
        let man = &mut self.m.manifest;
        let flag = match w.as_str() {
            "declassify" => Some(&mut man.declassify),
            "endorse" => Some(&mut man.endorse),
            _ => None,
        };
        if let Some(flag) = flag {
            if std::mem::replace(flag, true) {
                return Err(twice());
            }
            return Ok(());
        }
        let list = match w.as_str() {
            "tools" => &mut man.tools,
            "read" => &mut man.read,
            "write" => &mut man.write,
            "net" => &mut man.net,
            "run" => &mut man.run,
            "env" => &mut man.env,
            _ => {
                return Err(AsmError {
                    line: p.line,
                    col,
                    message: format!(
                        "unknown manifest entry `{w}`: expected tools, read, write, net, run, env, declassify or endorse"
                    ),
                })
            }
        };
        if !list.is_empty() {
            return Err(twice());
        }
        let items = p.index_list('[', ']', 's', "a string")?;
        if items.is_empty() {
            return p.err(format!("`{w} []` is written by leaving the line out"));
        }
        *list = items;
        Ok(())
    }

    /// `s3 =` at the start of a table entry, where 3 must be the next index.
    fn entry_index(
        &mut self,
        p: &mut Line,
        prefix: char,
        next: usize,
        what: &str,
    ) -> Result<(), AsmError> {
        let col = p.col();
        let i = p.index(prefix, &format!("a {what} index"))?;
        if i as usize != next {
            return Err(AsmError {
                line: p.line,
                col,
                message: format!("expected {what} {prefix}{next} next, found {prefix}{i}"),
            });
        }
        p.punct('=')
    }

    fn directive(&mut self, p: &mut Line) -> Result<(), AsmError> {
        let col = p.col();
        let d = p.word("a directive")?;
        self.finish_function()?;
        self.section = match d.as_str() {
            ".strings" => Section::Strings,
            ".const" => Section::Const,
            ".types" => Section::Types,
            ".natives" => Section::Natives,
            ".files" => Section::Files,
            ".exports" => Section::Exports,
            ".models" => Section::Models,
            ".manifest" => Section::Manifest,
            ".entry" => {
                if self.m.entry.is_some() {
                    return Err(AsmError {
                        line: p.line,
                        col,
                        message: "a second `.entry`".into(),
                    });
                }
                self.m.entry = Some(p.index('f', "a function")?);
                Section::None
            }
            ".func" => {
                let next = self.m.functions.len();
                let icol = p.col();
                let i = p.index('f', "a function index")?;
                if i as usize != next {
                    return Err(AsmError {
                        line: p.line,
                        col: icol,
                        message: format!("expected function f{next} next, found f{i}"),
                    });
                }
                let name = p.index('s', "the function's name (a string)")?;
                self.m.functions.push(Function {
                    name,
                    params: vec![],
                    ret: 0,
                    nregs: 0,
                    ncaps: 0,
                    code: vec![],
                    lines: vec![],
                    file: None,
                    doc: None,
                });
                Section::Func
            }
            _ => {
                return Err(AsmError {
                    line: p.line,
                    col,
                    message: format!(
                        "unknown directive `{d}`: expected .strings, .const, .types, .natives, \
                         .files, .exports, .models, .manifest, .entry or .func"
                    ),
                })
            }
        };
        Ok(())
    }

    fn function_line(&mut self, p: &mut Line) -> Result<(), AsmError> {
        let col = p.col();
        let w = p.word("an instruction, a label or a function field")?;
        // A label: a name and a colon, alone on the line.
        if p.peek() == Some(&Tok::Punct(':')) && p.toks.len() == 2 {
            p.at += 1;
            if w.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(AsmError {
                    line: p.line,
                    col,
                    message: format!("label `{w}` must not start with a digit"),
                });
            }
            if self.labels.insert(w.clone(), self.code.len()).is_some() {
                return Err(AsmError {
                    line: p.line,
                    col,
                    message: format!("label `{w}` is defined twice"),
                });
            }
            return Ok(());
        }
        let Some(f) = self.m.functions.last_mut() else {
            return p.err("no function is open");
        };
        match w.as_str() {
            "params" => {
                f.params.clear();
                if p.peek().is_none() {
                    return Ok(());
                }
                loop {
                    let name = p.index('s', "a parameter name (a string)")?;
                    p.punct(':')?;
                    let ty = p.index('t', "a type")?;
                    f.params.push(Param { name, ty });
                    if p.peek().is_none() {
                        return Ok(());
                    }
                    p.punct(',')?;
                }
            }
            "ret" => f.ret = p.index('t', "a type")?,
            "regs" => f.nregs = p.number("a register count (0 to 65535)")?,
            "caps" => f.ncaps = p.number("a capture count (0 to 65535)")?,
            "file" => f.file = Some(p.number("a file index")?),
            "doc" => f.doc = Some(p.index('s', "a string")?),
            "line" => {
                let pc = p.number("an instruction index")?;
                let line = p.number("a line number")?;
                p.punct(':')?;
                let col = p.number("a column number")?;
                f.lines.push(LineEntry { pc, line, col });
            }
            _ => {
                let Some(op) = Opcode::from_name(&w) else {
                    return Err(AsmError {
                        line: p.line,
                        col,
                        message: format!("unknown instruction `{w}`"),
                    });
                };
                self.instruction(p, op)?;
            }
        }
        Ok(())
    }

    fn instruction(&mut self, p: &mut Line, op: Opcode) -> Result<(), AsmError> {
        let info = op.info();
        let mut operands = Vec::with_capacity(info.operands.len());
        for (k, &(name, kind)) in info.operands.iter().enumerate() {
            if k > 0 {
                p.punct(',')?;
            }
            let col = p.col();
            let what = format!("operand `{name}` of {} ({})", info.name, kind_hint(kind));
            let w = p.word(&what)?;
            let bad = || AsmError {
                line: p.line,
                col,
                message: format!("expected {what}, found `{w}`"),
            };
            let operand = match kind {
                OperandKind::Dst => Operand::Dst(parse_prefixed(&w, 'r').ok_or_else(bad)?),
                OperandKind::Src => Operand::Src(parse_prefixed(&w, 'r').ok_or_else(bad)?),
                OperandKind::Range => {
                    let (a, b) = w.split_once('+').ok_or_else(bad)?;
                    let start = parse_prefixed(a, 'r').ok_or_else(bad)?;
                    let count = (!b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()))
                        .then(|| b.parse().ok())
                        .flatten()
                        .ok_or_else(bad)?;
                    Operand::Range(RegRange::new(start, count))
                }
                OperandKind::Const => Operand::Const(parse_prefixed(&w, 'k').ok_or_else(bad)?),
                OperandKind::Func => Operand::Func(parse_prefixed(&w, 'f').ok_or_else(bad)?),
                OperandKind::Type => Operand::Type(parse_prefixed(&w, 't').ok_or_else(bad)?),
                OperandKind::Native => Operand::Native(parse_prefixed(&w, 'n').ok_or_else(bad)?),
                OperandKind::Str => Operand::Str(parse_prefixed(&w, 's').ok_or_else(bad)?),
                OperandKind::Imm => Operand::Imm(w.parse().map_err(|_| bad())?),
                OperandKind::Count => Operand::Count(w.parse().map_err(|_| bad())?),
                OperandKind::Target => {
                    let label = w.strip_prefix('@').ok_or_else(bad)?;
                    if label.is_empty() {
                        return Err(bad());
                    }
                    if label.starts_with(|c: char| c.is_ascii_digit()) {
                        Operand::Target(parse_prefixed(&format!("#{label}"), '#').ok_or_else(bad)?)
                    } else {
                        self.fixups.push(Fixup {
                            pc: self.code.len(),
                            operand: k,
                            label: label.to_string(),
                            line: p.line,
                            col,
                        });
                        Operand::Target(0)
                    }
                }
            };
            operands.push(operand);
        }
        self.code.push(operands);
        self.ops.push(op);
        Ok(())
    }

    /// Resolves the open function's labels and stores its code.
    fn finish_function(&mut self) -> Result<(), AsmError> {
        if self.section != Section::Func {
            return Ok(());
        }
        for fx in self.fixups.drain(..) {
            let Some(&pc) = self.labels.get(&fx.label) else {
                return Err(AsmError {
                    line: fx.line,
                    col: fx.col,
                    message: format!("undefined label `{}`", fx.label),
                });
            };
            if let Some(o) = self
                .code
                .get_mut(fx.pc)
                .and_then(|ops| ops.get_mut(fx.operand))
            {
                *o = Operand::Target(pc as u32);
            }
        }
        self.labels.clear();
        let mut code = Vec::with_capacity(self.code.len());
        for (op, operands) in self.ops.drain(..).zip(self.code.drain(..)) {
            // The operands were parsed from the opcode's own row, so they always match it.
            if let Some(i) = Instr::from_operands(op, &operands) {
                code.push(i);
            }
        }
        if let Some(f) = self.m.functions.last_mut() {
            f.code = code;
        }
        self.section = Section::None;
        Ok(())
    }
}

fn kind_hint(kind: OperandKind) -> &'static str {
    match kind {
        OperandKind::Dst | OperandKind::Src => "a register like `r3`",
        OperandKind::Range => "a register range like `r3+2`",
        OperandKind::Const => "a constant like `k0`",
        OperandKind::Func => "a function like `f0`",
        OperandKind::Type => "a type like `t0`",
        OperandKind::Native => "a native like `n0`",
        OperandKind::Str => "a string like `s0`",
        OperandKind::Target => "a label like `@L3`",
        OperandKind::Imm => "a 32-bit integer",
        OperandKind::Count => "a number from 0 to 65535",
    }
}

fn constant(p: &mut Line) -> Result<Constant, AsmError> {
    let col = p.col();
    let kind = p.word("a constant kind (int, float, str, shape or readers)")?;
    Ok(match kind.as_str() {
        "int" => Constant::Int(p.number("a 64-bit integer")?),
        "float" => {
            let vcol = p.col();
            let w = p.word("a float")?;
            let v = match w.strip_prefix("0x") {
                Some(hex) if hex.len() == 16 => {
                    u64::from_str_radix(hex, 16).ok().map(f64::from_bits)
                }
                Some(_) => None,
                None => w.parse::<f64>().ok(),
            };
            Constant::Float(v.ok_or_else(|| AsmError {
                line: p.line,
                col: vcol,
                message: format!(
                    "expected a float (like `1.5`, `-0.0`, `inf`) or its 16 hex digit bits (like `0x7ff8000000000000`), found `{w}`"
                ),
            })?)
        }
        "str" => Constant::Str(p.index('s', "a string")?),
        "shape" => Constant::Shape(p.index_list('[', ']', 's', "a field name (a string)")?),
        "readers" => {
            if p.peek() == Some(&Tok::Word("public".into())) {
                p.at += 1;
                Constant::Readers(None)
            } else {
                Constant::Readers(Some(p.index_list('[', ']', 's', "a reader (a string)")?))
            }
        }
        _ => {
            return Err(AsmError {
                line: p.line,
                col,
                message: format!(
                    "unknown constant kind `{kind}`: expected int, float, str, shape or readers"
                ),
            })
        }
    })
}

fn type_desc(p: &mut Line) -> Result<TypeDesc, AsmError> {
    let col = p.col();
    let kind = p.word("a type")?;
    Ok(match kind.as_str() {
        "any" => TypeDesc::Any,
        "null" => TypeDesc::Null,
        "bool" => TypeDesc::Bool,
        "int" => TypeDesc::Int,
        "float" => TypeDesc::Float,
        "str" => TypeDesc::Str,
        "func" => TypeDesc::Func,
        "error" => TypeDesc::Error,
        "list" => TypeDesc::List(p.index('t', "a type")?),
        "map" => TypeDesc::Map(p.index('t', "a type")?),
        "optional" => TypeDesc::Optional(p.index('t', "a type")?),
        "strlit" => TypeDesc::StrLit(p.index('s', "a string")?),
        "union" => TypeDesc::Union(p.index_list('[', ']', 't', "a type")?),
        "record" => {
            p.punct('{')?;
            let mut fields = Vec::new();
            if !p.eat('}') {
                loop {
                    let name = p.index('s', "a field name (a string)")?;
                    p.punct(':')?;
                    let ty = p.index('t', "a type")?;
                    fields.push(Field { name, ty });
                    if p.eat('}') {
                        break;
                    }
                    p.punct(',')?;
                }
            }
            TypeDesc::Record(fields)
        }
        "named" => {
            let name = p.index('s', "the type's name (a string)")?;
            let ty = p.index('t', "a type")?;
            let doc = if p.peek().is_some() {
                let w = p.word("`doc`")?;
                if w != "doc" {
                    return p.err(format!("expected `doc`, found `{w}`"));
                }
                Some(p.index('s', "a string")?)
            } else {
                None
            };
            TypeDesc::Named { name, ty, doc }
        }
        _ => {
            return Err(AsmError {
                line: p.line,
                col,
                message: format!("unknown type `{kind}`"),
            })
        }
    })
}
