//! The abstract syntax tree the parser builds: every node carries the source span it came
//! from, so later stages can point diagnostics at it. The tree is exactly what was written;
//! names are resolved and sugar removed later, in the IR.

/// A byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A name as written, with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// One source file.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceModule {
    pub items: Vec<Item>,
    /// Whether the module has an `llm` expression (it then imports `std.agent` implicitly).
    pub uses_llm: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import(Import),
    Fn(FnDecl),
    Extern(ExternDecl),
    Type(TypeDecl),
    Model(ModelDecl),
    Needs(NeedsDecl),
    McpTool(McpToolDecl),
}

/// `/// doc` `export`? `tool name(params) -> Ret from mcp "SERVER"` (or `"SERVER.TOOL"`): a
/// function whose body calls the tool of an MCP server.
#[derive(Clone, Debug, PartialEq)]
pub struct McpToolDecl {
    pub doc: Option<String>,
    pub exported: bool,
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    /// The tool id `SERVER.TOOL`, checked by the parser (E0122).
    pub id: String,
    /// The span of the `from mcp "..."` part (of the whole item when it is missing).
    pub source_span: Span,
    pub span: Span,
}

/// `needs read "./data"`, `needs declassify`, ...: a line of the module's capability manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct NeedsDecl {
    /// What is needed; `None` when the item was malformed (already reported).
    pub need: Option<Need>,
    pub span: Span,
}

/// One capability a module declares with `needs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// A path the program reads beneath.
    Read(String),
    /// A path the program writes beneath.
    Write(String),
    /// A host, `host` or `host:port`, the program connects to.
    Net(String),
    /// A command the program runs.
    Run(String),
    /// An environment variable the program reads.
    Env(String),
    /// Authority to lower confidentiality (`declassify(x, ...)`).
    Declassify,
    /// Authority to raise integrity (`endorse(x)`).
    Endorse,
}

/// `model smart = "large"`: a model slot. `smart` names the string `"large"`, the logical
/// model name the host maps to a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDecl {
    pub name: Ident,
    pub logical: String,
    pub logical_span: Span,
    pub span: Span,
}

/// `import std.strings` (binds `strings`), `import std.strings as s`,
/// `import "./util.ail"` (binds `util`), `import "./util.ail" as u`.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub target: ImportTarget,
    pub alias: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImportTarget {
    /// A dotted standard-library path such as `std.strings`.
    Std(Vec<Ident>),
    /// A relative file path, as written in the string literal.
    File { path: String, span: Span },
}

/// `/// doc` `export`? `fn name(params) -> Ret { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    pub doc: Option<String>,
    pub exported: bool,
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
    pub span: Span,
}

/// `/// doc` `extern fn name(params) -> Ret = "native.name"`: binds a VM native.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub native: String,
    pub native_span: Span,
    pub span: Span,
}

/// `/// doc` `type Name = T`
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDecl {
    pub doc: Option<String>,
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    /// `int`, `float`, `bool`, `string`, `null`, `any`, `error`, `fn`, or a `type` alias name
    /// (possibly qualified by an import: `m.Name`).
    Name(Vec<Ident>),
    /// `[T]`
    List(Box<TypeExpr>),
    /// `map[string, T]` (the key type is kept for diagnostics).
    Map(Box<TypeExpr>, Box<TypeExpr>),
    /// `{ field: T, other: U }`
    Record(Vec<FieldType>),
    /// `T?`
    Optional(Box<TypeExpr>),
    /// `"low"`
    StrLit(String),
    /// `A | B | C`
    Union(Vec<TypeExpr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldType {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let name: T = value`
    Let {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    /// `target = value`, or `target op= value` (`op` is `Add`, `Sub`, `Mul`, `Div` or `Mod`).
    Assign {
        target: Expr,
        op: Option<BinOp>,
        value: Expr,
    },
    /// A nested `fn name(...) { ... }`: a local closure that may call itself.
    Fn(FnDecl),
    Expr(Expr),
    If {
        cond: Expr,
        then: Block,
        els: Option<Else>,
    },
    While {
        cond: Expr,
        body: Block,
    },
    /// `for x in iter { }` or `for k, v in iter { }` (key/value of a map, index/item of a list).
    For {
        first: Ident,
        second: Option<Ident>,
        iter: Expr,
        body: Block,
    },
    Break,
    Continue,
    Return(Option<Expr>),
    Throw(Expr),
    /// `try { } catch e { }`
    Try {
        body: Block,
        name: Ident,
        handler: Block,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Else {
    Block(Block),
    /// `else if ...`: a nested `If` statement.
    If(Box<Stmt>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string literal without interpolation, escapes already decoded.
    Str(String),
    /// A string with `{expr}` parts.
    Interp(Vec<InterpPart>),
    Name(Ident),
    List(Vec<Expr>),
    /// `{ name: value, ... }`
    Record(Vec<(Ident, Expr)>),
    /// `{ "key": value, ... }`, or `{}` for the empty map.
    Map(Vec<(Expr, Expr)>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a and b`, `a or b`: short-circuit.
    Logic(LogicOp, Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Expr>),
    Field(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    /// `x[lo:hi]`, either bound optional.
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// `lo..hi`
    Range(Box<Expr>, Box<Expr>),
    /// `fn(params) -> T { body }`
    Lambda(Box<FnDecl>),
    /// `llm model -> T { items }`
    Llm(Box<LlmExpr>),
    /// `spawn f(a, b)`: the operand is always a [`ExprKind::Call`] (the parser checks).
    Spawn(Box<Expr>),
    /// `await task`
    Await(Box<Expr>),
}

/// `llm MODEL [-> TYPE] { ITEMS }`: one model conversation run by `std.agent`.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmExpr {
    /// The model: a name whose value is a logical model name (usually a `model` item).
    pub model: Ident,
    /// The output type; the answer is a plain string without one.
    pub ty: Option<TypeExpr>,
    pub items: Vec<LlmItem>,
}

/// One line of an `llm` body: `word value`.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmItem {
    pub kind: LlmItemKind,
    /// The span of the item word.
    pub word: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LlmItemKind {
    /// `system E`, `user E`, `assistant E`: one message.
    Message(Role, Expr),
    /// `messages E`: a list of message records spliced into the conversation.
    Messages(Expr),
    /// `tools [f, g]`: the program's functions the model may call.
    Tools(Vec<Ident>),
    /// `temperature E`, `max_tokens E`, ...
    Option(LlmOption, Expr),
    /// `endorse`: the validated answer (of a narrow output type) is endorsed as trusted.
    Endorse,
}

/// The author of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// The options of an `llm` expression; each may be given once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmOption {
    Temperature,
    MaxTokens,
    Stop,
    MaxTurns,
    Retries,
}

impl LlmOption {
    /// The item word, which is also the field name in the request record.
    pub fn word(self) -> &'static str {
        match self {
            LlmOption::Temperature => "temperature",
            LlmOption::MaxTokens => "max_tokens",
            LlmOption::Stop => "stop",
            LlmOption::MaxTurns => "max_turns",
            LlmOption::Retries => "retries",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum InterpPart {
    Text(String),
    Expr(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogicOp {
    And,
    Or,
}
