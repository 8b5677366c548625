//! Tests of the back end on ASTs built in Rust (independent of the parser).

use aivm_vm::format::{Instr, Module};

use crate::ast::*;
use crate::diagnostic::{Diagnostic, SourceMap};
use crate::lower::{lower, ModuleSrc};

fn sp() -> Span {
    Span::default()
}
fn ident(n: &str) -> Ident {
    Ident {
        name: n.into(),
        span: sp(),
    }
}
fn ex(kind: ExprKind) -> Expr {
    Expr { kind, span: sp() }
}
fn int(i: i64) -> Expr {
    ex(ExprKind::Int(i))
}
fn name(n: &str) -> Expr {
    ex(ExprKind::Name(ident(n)))
}
fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    ex(ExprKind::Binary(op, Box::new(a), Box::new(b)))
}
fn call(f: &str, args: Vec<Expr>) -> Expr {
    ex(ExprKind::Call(Box::new(name(f)), args))
}
fn st(kind: StmtKind) -> Stmt {
    Stmt { kind, span: sp() }
}
fn block(stmts: Vec<Stmt>) -> Block {
    Block { stmts, span: sp() }
}
fn let_(n: &str, ty: Option<TypeKind>, value: Expr) -> Stmt {
    st(StmtKind::Let {
        name: ident(n),
        ty: ty.map(|kind| TypeExpr { kind, span: sp() }),
        value,
    })
}
fn ret(e: Expr) -> Stmt {
    st(StmtKind::Return(Some(e)))
}
fn ty(n: &str) -> TypeKind {
    TypeKind::Name(vec![ident(n)])
}
fn param(n: &str, t: Option<TypeKind>) -> Param {
    Param {
        name: ident(n),
        ty: t.map(|kind| TypeExpr { kind, span: sp() }),
        span: sp(),
    }
}
fn fn_decl(n: &str, params: Vec<Param>, ret: Option<TypeKind>, body: Vec<Stmt>) -> FnDecl {
    FnDecl {
        doc: None,
        exported: false,
        name: ident(n),
        params,
        ret: ret.map(|kind| TypeExpr { kind, span: sp() }),
        body: block(body),
        span: sp(),
    }
}
fn print_extern() -> Item {
    Item::Extern(ExternDecl {
        doc: None,
        name: ident("print"),
        params: vec![param("v", None)],
        ret: None,
        native: "io.print".into(),
        native_span: sp(),
        span: sp(),
    })
}

fn compile_items(items: Vec<Item>) -> Result<Module, Vec<Diagnostic>> {
    let mut sources = SourceMap::default();
    let file = sources.add("test.ail", "fn main() {}\n");
    let mods = vec![ModuleSrc {
        file,
        ast: SourceModule {
            items,
            uses_llm: false,
        },
        imports: vec![],
        agent: None,
        mcp: None,
        sees_prelude: false,
        entry: true,
    }];
    let mut diags = Vec::new();
    let lowered = lower(&mods, None, &mut diags);
    if diags
        .iter()
        .any(|d| d.severity == crate::diagnostic::Severity::Error)
    {
        return Err(diags);
    }
    crate::codegen::generate(&lowered.program, &lowered.types, &sources)
}

fn listing(m: &Module, func: usize) -> String {
    m.functions[func]
        .code
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{i:3} {c:?}\n"))
        .collect()
}

#[test]
fn fib_compiles_to_compact_code() {
    // fn fib(n: int) -> int { if n < 2 { return n } return fib(n - 1) + fib(n - 2) }
    let body = vec![
        st(StmtKind::If {
            cond: bin(BinOp::Lt, name("n"), int(2)),
            then: block(vec![ret(name("n"))]),
            els: None,
        }),
        ret(bin(
            BinOp::Add,
            call("fib", vec![bin(BinOp::Sub, name("n"), int(1))]),
            call("fib", vec![bin(BinOp::Sub, name("n"), int(2))]),
        )),
    ];
    let m = compile_items(vec![Item::Fn(fn_decl(
        "fib",
        vec![param("n", Some(ty("int")))],
        Some(ty("int")),
        body,
    ))])
    .expect("compiles");
    let f = &m.functions[0];
    assert_eq!(f.params.len(), 1);
    let code = listing(&m, 0);
    // The parameter check, the fused loop test, immediates instead of constants, and the
    // return value needs no check: int + int is int.
    assert!(code.starts_with("  0 CheckType { src: 0, ty: "), "{code}");
    assert!(code.contains("JumpIfNotLt { a: 0, b: 1"), "{code}");
    assert!(
        code.contains("AddImm { dst: 1, src: 0, imm: -1 }"),
        "{code}"
    );
    assert!(
        code.contains("CallFn { dst: 1, func: 0, args: RegRange { start: 1, count: 1 } }"),
        "{code}"
    );
    assert!(code.contains("Add { dst: 1, a: 1, b: 2 }"), "{code}");
    assert_eq!(
        code.matches("CheckType").count(),
        1,
        "only the parameter check: the implicit return is unreachable and left out:\n{code}"
    );
    assert!(code.trim_end().ends_with("Return { src: 1 }"), "{code}");
    assert!(f.nregs <= 3, "nregs = {}\n{code}", f.nregs);
    assert!(m.constants.is_empty());
}

#[test]
fn register_reuse_keeps_frames_small() {
    // 50 lets, ten per nested block, each reading the previous one.
    let mut stmts = Vec::new();
    for b in 0..5 {
        let mut inner = Vec::new();
        for i in 0..10 {
            let prev = if i == 0 {
                int(b)
            } else {
                name(&format!("v{}", i - 1))
            };
            inner.push(let_(&format!("v{i}"), None, bin(BinOp::Mul, prev, int(3))));
        }
        inner.push(st(StmtKind::Expr(call("print", vec![name("v9")]))));
        stmts.push(st(StmtKind::If {
            cond: ex(ExprKind::Bool(true)),
            then: block(inner),
            els: None,
        }));
    }
    let m = compile_items(vec![
        print_extern(),
        Item::Fn(fn_decl("main", vec![], None, stmts)),
    ])
    .expect("compiles");
    let f = &m.functions[0];
    assert!(f.nregs <= 13, "nregs = {}", f.nregs);
    // The constant 3 is loaded into a register each time but never pooled.
    assert!(m.constants.is_empty());
}

#[test]
fn closures_capture_cells() {
    // fn main() { let n = 0; let inc = fn() { n = n + 1 }; inc(); print(n) }
    let lam = fn_decl(
        "",
        vec![],
        None,
        vec![st(StmtKind::Assign {
            target: name("n"),
            op: Some(BinOp::Add),
            value: int(1),
        })],
    );
    let body = vec![
        let_("n", None, int(0)),
        let_("inc", None, ex(ExprKind::Lambda(Box::new(lam)))),
        st(StmtKind::Expr(ex(ExprKind::Call(
            Box::new(name("inc")),
            vec![],
        )))),
        st(StmtKind::Expr(call("print", vec![name("n")]))),
    ];
    let m = compile_items(vec![
        print_extern(),
        Item::Fn(fn_decl("main", vec![], None, body)),
    ])
    .expect("compiles");
    let main = listing(&m, 0);
    assert!(main.contains("CellNew { dst: 0, src: 0 }"), "{main}");
    assert!(
        main.contains("Closure { dst: 1, func: 1, caps: RegRange { start: 2, count: 1 } }"),
        "{main}"
    );
    assert!(main.contains("CellGet"), "{main}");
    assert!(main.contains("Effect"), "{main}");
    let lam = listing(&m, 1);
    assert!(
        lam.contains("UpvalGet { dst: 0, idx: 0 }") && lam.contains("UpvalSet { idx: 0, src: 0 }"),
        "{lam}"
    );
    assert_eq!(m.functions[1].ncaps, 1);
    assert_eq!(m.natives.len(), 1);
}

#[test]
fn several_errors_are_reported_at_once() {
    let body = vec![
        let_("x", Some(ty("int")), ex(ExprKind::Str("a".into()))),
        st(StmtKind::Expr(call("prnt", vec![int(1)]))),
        st(StmtKind::Break),
        st(StmtKind::If {
            cond: int(1),
            then: block(vec![]),
            els: None,
        }),
    ];
    let errs = compile_items(vec![
        print_extern(),
        Item::Fn(fn_decl("main", vec![], None, body)),
    ])
    .expect_err("fails");
    let codes: Vec<&str> = errs.iter().map(|d| d.code).collect();
    // `x` is also never read: a warning alongside the errors.
    assert_eq!(
        codes,
        ["E0301", "E0201", "E0203", "E0303", "W0201"],
        "{errs:#?}"
    );
    assert_eq!(errs[1].help.as_deref(), Some("did you mean `print`?"));
}

#[test]
fn for_range_is_an_int_loop_without_iterator() {
    // fn main() { let s = 0; for i in 0..10 { s += i }; print(s) }
    let body = vec![
        let_("s", None, int(0)),
        st(StmtKind::For {
            first: ident("i"),
            second: None,
            iter: ex(ExprKind::Range(Box::new(int(0)), Box::new(int(10)))),
            body: block(vec![st(StmtKind::Assign {
                target: name("s"),
                op: Some(BinOp::Add),
                value: name("i"),
            })]),
        }),
        st(StmtKind::Expr(call("print", vec![name("s")]))),
    ];
    let m = compile_items(vec![
        print_extern(),
        Item::Fn(fn_decl("main", vec![], None, body)),
    ])
    .expect("compiles");
    let code = listing(&m, 0);
    assert!(!code.contains("Iter"), "{code}");
    assert!(code.contains("Add { dst: 0, a: 0, b: 1 }"), "{code}");
    assert!(code.contains("AddImm { dst: 1, src: 1, imm: 1 }"), "{code}");
    assert!(
        matches!(m.functions[0].code[3], Instr::JumpIfNotLt { .. }),
        "{code}"
    );
}
