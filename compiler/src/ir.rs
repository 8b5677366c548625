//! The intermediate representation between the checked AST and bytecode: names are resolved
//! to variables, functions and natives; sugar is gone (compound assignment, `>`/`>=`, else-if,
//! interpolation, nested `fn`); every expression carries its static type, and every place that
//! needs a run-time type check says so.

use crate::ast::Span;
use crate::diagnostic::FileId;
use crate::types::Ty;

/// Index into [`Program::funcs`]; equal to the function's index in the bytecode module.
pub type FuncIdx = u32;
/// Index into [`Program::externs`].
pub type ExternIdx = u32;
/// Index into [`Func::vars`].
pub type VarId = u32;

/// The whole program: every function of every module, flattened.
#[derive(Debug, Default)]
pub struct Program {
    pub funcs: Vec<Func>,
    pub externs: Vec<Extern>,
    pub entry: Option<FuncIdx>,
    pub exports: Vec<(String, FuncIdx)>,
    /// Every `model` item of every module, in declaration order.
    pub models: Vec<Model>,
    /// Record shapes the module must hold although no literal builds them: `schema.conform`
    /// makes records only of shapes the module has (the records of `llm` output types).
    pub shapes: Vec<Vec<String>>,
    /// The MCP tool id each `tool` item's function calls (`SERVER.TOOL`), by function.
    pub mcp_tools: std::collections::BTreeMap<FuncIdx, String>,
    /// What every module declared with `needs`, and the functions offered to models: the
    /// parts of the capability manifest that the code alone does not show.
    pub needs: Needs,
}

/// The declared part of the manifest, merged over every module (sets: sorted, each once).
#[derive(Debug, Default)]
pub struct Needs {
    pub read: std::collections::BTreeSet<String>,
    pub write: std::collections::BTreeSet<String>,
    pub net: std::collections::BTreeSet<String>,
    pub run: std::collections::BTreeSet<String>,
    pub env: std::collections::BTreeSet<String>,
    pub declassify: bool,
    pub endorse: bool,
    /// Names of program functions offered to models in `tools [...]`, as the model sees them.
    pub offered: std::collections::BTreeSet<String>,
}

/// A label instruction (spec/instructions.md, "Labels").
#[derive(Debug, Clone, PartialEq)]
pub enum Relabel {
    /// `classify(x, readers)`.
    Classify(Vec<String>),
    /// `declassify(x, readers)`, `None` for `declassify(x, null)` (public).
    Declassify(Option<Vec<String>>),
    /// `endorse(x)`.
    Endorse,
    /// The `endorse` item of an `llm` expression: checked against a narrow type, then trusted.
    EndorseNarrow(Ty),
}

/// `model name = "logical"`.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub logical: String,
}

/// An `extern fn` binding a VM native.
#[derive(Debug, Clone)]
pub struct Extern {
    pub name: String,
    pub native: String,
    pub effect: bool,
    pub params: Vec<Ty>,
    pub ret: Ty,
    pub doc: Option<String>,
}

/// One function: a top-level `fn`, a nested `fn`, a lambda, or a wrapper that lets an extern
/// be used as a value.
#[derive(Debug)]
pub struct Func {
    pub name: String,
    pub file: FileId,
    pub span: Span,
    pub doc: Option<String>,
    /// Variables of the parameters, in order (they arrive in registers `0..n`).
    pub params: Vec<VarId>,
    /// Declared parameter types (`Any` when unannotated).
    pub param_tys: Vec<Ty>,
    /// Declared return type (`Any` when unannotated).
    pub ret: Ty,
    /// Where each captured cell of a closure of this function comes from, in the function that
    /// creates the closure.
    pub captures: Vec<Capture>,
    pub vars: Vec<Var>,
    pub body: Vec<Stmt>,
}

/// The source of one captured cell, seen from the enclosing function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// A local of the enclosing function (which therefore lives in a cell).
    Local(VarId),
    /// A cell the enclosing function itself captured.
    Upval(u16),
}

/// A local variable (parameter, `let`, loop variable, catch variable or hidden temporary).
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub span: Span,
    /// Declared type (`Any` when unannotated).
    pub ty: Ty,
    /// Captured by a closure: lives in a cell.
    pub captured: bool,
    /// Assigned after its definition.
    pub assigned: bool,
    /// Read somewhere.
    pub used: bool,
}

/// Where a variable lives, from the function that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Local(VarId),
    Upval(u16),
}

#[derive(Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum StmtKind {
    /// Defines `var` (in scope until the end of the enclosing block). `check` is the type to
    /// verify at run time, when the value's static type does not already conform.
    Let {
        var: VarId,
        value: Expr,
        check: Option<Ty>,
    },
    Assign {
        place: Place,
        value: Expr,
        check: Option<Ty>,
    },
    SetField {
        obj: Expr,
        name: String,
        value: Expr,
        /// A run-time check of `value` against the field's declared type, where needed.
        check: Option<Ty>,
    },
    SetIndex {
        obj: Expr,
        key: Expr,
        value: Expr,
    },
    Expr(Expr),
    /// A nested scope: its variables' registers are released at its end.
    Block(Vec<Stmt>),
    If {
        cond: Expr,
        then: Vec<Stmt>,
        els: Vec<Stmt>,
    },
    While {
        cond: Expr,
        body: Vec<Stmt>,
    },
    /// `for var in lo..hi`: an int loop without an iterator.
    ForRange {
        var: VarId,
        lo: Expr,
        hi: Expr,
        body: Vec<Stmt>,
    },
    /// `for first in iter` / `for first, second in iter`.
    ForIter {
        first: VarId,
        second: Option<VarId>,
        iter: Expr,
        body: Vec<Stmt>,
    },
    Break,
    Continue,
    Return {
        value: Option<Expr>,
        check: Option<Ty>,
    },
    Throw(Expr),
    Try {
        body: Vec<Stmt>,
        var: VarId,
        handler: Vec<Stmt>,
    },
    /// A nested `fn`: defines `var` as a closure of `func` that can see itself.
    LocalFn {
        var: VarId,
        func: FuncIdx,
    },
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    /// `a > b` is `b < a` with the operands swapped (left-to-right evaluation is kept by
    /// [`ExprKind::Binary`]'s `swapped` flag).
    Lt,
    Le,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Var(Place),
    /// A known function as a value.
    Func(FuncIdx),
    /// The concatenation of the texts of the parts (an interpolated string).
    Concat(Vec<Expr>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Record(Vec<(String, Expr)>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    /// `swapped`: the source wrote `b > a` / `b >= a`; the operands are evaluated in source
    /// order (`b` first) but the comparison reads them as `a < b`.
    Binary {
        op: BinOp,
        a: Box<Expr>,
        b: Box<Expr>,
        swapped: bool,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    CallFn(FuncIdx, Vec<Expr>),
    CallExtern(ExternIdx, Vec<Expr>),
    Call(Box<Expr>, Vec<Expr>),
    Field(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    Range(Box<Expr>, Box<Expr>),
    /// A closure of a lambda.
    Closure(FuncIdx),
    /// `spawn callee(args)`: a new task; the value is its handle.
    Spawn(Box<Expr>, Vec<Expr>),
    /// `await task`: the task's result (or its error, raised).
    Await(Box<Expr>),
    /// The value, checked at run time against a type (the result of an `llm` expression).
    Check(Box<Expr>, Ty),
    /// The value relabelled, deeply.
    Relabel(Relabel, Box<Expr>),
}

impl Expr {
    pub fn new(kind: ExprKind, ty: Ty, span: Span) -> Expr {
        Expr { kind, ty, span }
    }
}
