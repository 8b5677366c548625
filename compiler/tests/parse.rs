//! Parser tests: representative programs for every construct of the language, checked
//! through a compact S-expression view of the AST.

use aivm_compiler::ast::*;
use aivm_compiler::parse::{parse_expr, parse_module};

/// Compact, deterministic view of an expression: `(+ 1 (* 2 3))`.
fn ex(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Null => "null".into(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Float(f) => format!("{f:?}"),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Interp(parts) => {
            let ps: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    InterpPart::Text(t) => format!("{t:?}"),
                    InterpPart::Expr(e) => ex(e),
                })
                .collect();
            format!("(interp {})", ps.join(" "))
        }
        ExprKind::Name(n) => n.name.clone(),
        ExprKind::List(xs) => format!("[{}]", xs.iter().map(ex).collect::<Vec<_>>().join(" ")),
        ExprKind::Record(fs) => {
            format!(
                "{{{}}}",
                fs.iter()
                    .map(|(k, v)| format!("{}: {}", k.name, ex(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        ExprKind::Map(kv) => {
            format!(
                "(map {})",
                kv.iter()
                    .map(|(k, v)| format!("{} {}", ex(k), ex(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        ExprKind::Unary(op, e) => format!(
            "({} {})",
            if *op == UnOp::Neg { "neg" } else { "not" },
            ex(e)
        ),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", binop(*op), ex(a), ex(b)),
        ExprKind::Logic(op, a, b) => format!(
            "({} {} {})",
            if *op == LogicOp::And { "and" } else { "or" },
            ex(a),
            ex(b)
        ),
        ExprKind::Call(f, args) => format!(
            "(call {}{})",
            ex(f),
            args.iter()
                .map(|a| format!(" {}", ex(a)))
                .collect::<String>()
        ),
        ExprKind::Field(e, f) => format!("(. {} {})", ex(e), f.name),
        ExprKind::Index(e, i) => format!("(idx {} {})", ex(e), ex(i)),
        ExprKind::Slice(e, lo, hi) => {
            let b = |x: &Option<Box<Expr>>| x.as_ref().map_or("_".to_string(), |e| ex(e));
            format!("(slice {} {} {})", ex(e), b(lo), b(hi))
        }
        ExprKind::Range(a, b) => format!("(.. {} {})", ex(a), ex(b)),
        ExprKind::Lambda(f) => format!("(lambda {})", func(f)),
        ExprKind::Spawn(e) => format!("(spawn {})", ex(e)),
        ExprKind::Await(e) => format!("(await {})", ex(e)),
        ExprKind::Llm(l) => {
            let t =
                l.ty.as_ref()
                    .map_or(String::new(), |t| format!(" -> {}", ty(t)));
            let items: String = l
                .items
                .iter()
                .map(|i| format!(" {}", llm_item(&i.kind)))
                .collect();
            format!("(llm {}{t}{items})", l.model.name)
        }
    }
}

fn llm_item(k: &LlmItemKind) -> String {
    match k {
        LlmItemKind::Message(r, e) => format!("({} {})", r.as_str(), ex(e)),
        LlmItemKind::Messages(e) => format!("(messages {})", ex(e)),
        LlmItemKind::Tools(names) => {
            let n: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
            format!("(tools {})", n.join(" "))
        }
        LlmItemKind::Option(o, e) => format!("({} {})", o.word(), ex(e)),
        LlmItemKind::Endorse => "(endorse)".to_string(),
    }
}

fn binop(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
    }
}

fn ty(t: &TypeExpr) -> String {
    match &t.kind {
        TypeKind::Name(path) => path
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        TypeKind::List(t) => format!("[{}]", ty(t)),
        TypeKind::Map(k, v) => format!("map[{}, {}]", ty(k), ty(v)),
        TypeKind::Record(fs) => {
            format!(
                "{{{}}}",
                fs.iter()
                    .map(|f| format!("{}: {}", f.name.name, ty(&f.ty)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        TypeKind::Optional(t) => format!("{}?", ty(t)),
        TypeKind::StrLit(s) => format!("{s:?}"),
        TypeKind::Union(ts) => format!("({})", ts.iter().map(ty).collect::<Vec<_>>().join(" | ")),
    }
}

fn params(ps: &[Param]) -> String {
    ps.iter()
        .map(|p| match &p.ty {
            Some(t) => format!("{}: {}", p.name.name, ty(t)),
            None => p.name.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn func(f: &FnDecl) -> String {
    let ret = f
        .ret
        .as_ref()
        .map_or(String::new(), |t| format!(" -> {}", ty(t)));
    format!("({}){} {}", params(&f.params), ret, block(&f.body))
}

fn block(b: &Block) -> String {
    format!(
        "{{{}}}",
        b.stmts.iter().map(stmt).collect::<Vec<_>>().join("; ")
    )
}

fn stmt(s: &Stmt) -> String {
    match &s.kind {
        StmtKind::Let { name, ty: t, value } => match t {
            Some(t) => format!("let {}: {} = {}", name.name, ty(t), ex(value)),
            None => format!("let {} = {}", name.name, ex(value)),
        },
        StmtKind::Assign { target, op, value } => {
            format!("{} {}= {}", ex(target), op.map_or("", binop), ex(value))
        }
        StmtKind::Fn(f) => format!("fn {}{}", f.name.name, func(f)),
        StmtKind::Expr(e) => ex(e),
        StmtKind::If { cond, then, els } => {
            let e = match els {
                None => String::new(),
                Some(Else::Block(b)) => format!(" else {}", block(b)),
                Some(Else::If(s)) => format!(" else {}", stmt(s)),
            };
            format!("if {} {}{}", ex(cond), block(then), e)
        }
        StmtKind::While { cond, body } => format!("while {} {}", ex(cond), block(body)),
        StmtKind::For {
            first,
            second,
            iter,
            body,
        } => {
            let vars = match second {
                Some(s) => format!("{}, {}", first.name, s.name),
                None => first.name.clone(),
            };
            format!("for {} in {} {}", vars, ex(iter), block(body))
        }
        StmtKind::Break => "break".into(),
        StmtKind::Continue => "continue".into(),
        StmtKind::Return(None) => "return".into(),
        StmtKind::Return(Some(e)) => format!("return {}", ex(e)),
        StmtKind::Throw(e) => format!("throw {}", ex(e)),
        StmtKind::Try {
            body,
            name,
            handler,
        } => format!("try {} catch {} {}", block(body), name.name, block(handler)),
    }
}

fn item(i: &Item) -> String {
    match i {
        Item::Import(im) => {
            let target = match &im.target {
                ImportTarget::Std(path) => path
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
                ImportTarget::File { path, .. } => format!("{path:?}"),
            };
            match &im.alias {
                Some(a) => format!("import {target} as {}", a.name),
                None => format!("import {target}"),
            }
        }
        Item::Fn(f) => format!(
            "{}{}fn {}{}",
            doc(&f.doc),
            if f.exported { "export " } else { "" },
            f.name.name,
            func(f)
        ),
        Item::Extern(e) => {
            let ret = e
                .ret
                .as_ref()
                .map_or(String::new(), |t| format!(" -> {}", ty(t)));
            format!(
                "{}extern fn {}({}){} = {:?}",
                doc(&e.doc),
                e.name.name,
                params(&e.params),
                ret,
                e.native
            )
        }
        Item::Type(t) => format!("{}type {} = {}", doc(&t.doc), t.name.name, ty(&t.ty)),
        Item::Model(m) => format!("model {} = {:?}", m.name.name, m.logical),
        Item::Needs(n) => format!("needs {:?}", n.need),
        Item::McpTool(t) => {
            let ret = t
                .ret
                .as_ref()
                .map_or(String::new(), |r| format!(" -> {}", ty(r)));
            format!(
                "{}{}tool {}({}){} from mcp {:?}",
                doc(&t.doc),
                if t.exported { "export " } else { "" },
                t.name.name,
                params(&t.params),
                ret,
                t.id
            )
        }
    }
}

fn doc(d: &Option<String>) -> String {
    d.as_ref().map_or(String::new(), |d| format!("/// {d:?}\n"))
}

fn module(src: &str) -> String {
    match parse_module(0, src) {
        Ok(m) => m.items.iter().map(item).collect::<Vec<_>>().join("\n"),
        Err(d) => panic!("parse failed: {d:#?}"),
    }
}

/// The statements of `fn main() { <body> }`.
fn body(src: &str) -> Vec<String> {
    let m = parse_module(0, &format!("fn main() {{\n{src}\n}}"))
        .unwrap_or_else(|d| panic!("parse failed: {d:#?}"));
    match m.items.first() {
        Some(Item::Fn(f)) => f.body.stmts.iter().map(stmt).collect(),
        other => panic!("expected a fn, got {other:?}"),
    }
}

fn expr(src: &str) -> String {
    ex(&parse_expr(0, src).unwrap_or_else(|d| panic!("parse of {src:?} failed: {d:#?}")))
}

fn error_codes(src: &str) -> Vec<&'static str> {
    match parse_module(0, src) {
        Ok(_) => Vec::new(),
        Err(d) => d.iter().map(|d| d.code).collect(),
    }
}

#[test]
fn items() {
    let src = r#"
import std.strings
import std.strings as s
import "./util.ail"
import "./util.ail" as u

/// A ticket.
/// Second line.
type Ticket = {
  title: string,
  severity: "low" | "medium" | "high",
  tags: [string],
  customer: string?,
}

/// Upper-case.
extern fn upper(s: string) -> string = "string.upper"
extern fn now() = "clock.now"

fn add(a: int, b) -> int { return a + b }
/// Entry.
export fn main(args: [string]) -> int { return 0 }
"#;
    let expected = r#"import std.strings
import std.strings as s
import "./util.ail"
import "./util.ail" as u
/// "A ticket.\nSecond line."
type Ticket = {title: string, severity: ("low" | "medium" | "high"), tags: [string], customer: string?}
/// "Upper-case."
extern fn upper(s: string) -> string = "string.upper"
extern fn now() = "clock.now"
fn add(a: int, b) -> int {return (+ a b)}
/// "Entry."
export fn main(args: [string]) -> int {return 0}"#;
    assert_eq!(module(src), expected);
}

#[test]
fn types() {
    let src = r#"
type A = int
type B = [map[string, float]]
type C = m.Name?
type D = ("a" | "b")?
type E = fn
type F = null | bool | error | any
type G = {x: {y: [int]}}
type H = [string]?
"#;
    let expected = r#"type A = int
type B = [map[string, float]]
type C = m.Name?
type D = ("a" | "b")?
type E = fn
type F = (null | bool | error | any)
type G = {x: {y: [int]}}
type H = [string]?"#;
    assert_eq!(module(src), expected);
}

#[test]
fn statements() {
    let src = r#"
let x = 1
let y: int? = null
x = 2
r.f = 3
xs[0] = 4
x += 1; x -= 1; x *= 2; x /= 2; x %= 3
if a { b() } else if c { d() } else { e() }
while x < 10 { x += 1 }
for v in xs { continue }
for i, v in xs { break }
return
return x
throw error("Oops", "bad")
try { risky() } catch e { print(e.message) }
fn fact(n) { return n * fact(n - 1) }
f(1)
"#;
    let expected = vec![
        "let x = 1",
        "let y: int? = null",
        "x = 2",
        "(. r f) = 3",
        "(idx xs 0) = 4",
        "x += 1",
        "x -= 1",
        "x *= 2",
        "x /= 2",
        "x %= 3",
        "if a {(call b)} else if c {(call d)} else {(call e)}",
        "while (< x 10) {x += 1}",
        "for v in xs {continue}",
        "for i, v in xs {break}",
        "return",
        "return x",
        r#"throw (call error "Oops" "bad")"#,
        "try {(call risky)} catch e {(call print (. e message))}",
        "fn fact(n) {return (* n (call fact (- n 1)))}",
        "(call f 1)",
    ];
    assert_eq!(body(src), expected);
}

#[test]
fn precedence() {
    assert_eq!(expr("a or b and c"), "(or a (and b c))");
    assert_eq!(expr("a and b or c"), "(or (and a b) c)");
    assert_eq!(expr("not a == b"), "(not (== a b))");
    assert_eq!(expr("not a and b"), "(and (not a) b)");
    assert_eq!(expr("a == b and c != d"), "(and (== a b) (!= c d))");
    assert_eq!(expr("a < b + 1"), "(< a (+ b 1))");
    assert_eq!(expr("0..n + 1"), "(.. 0 (+ n 1))");
    assert_eq!(expr("a + b * c - d"), "(- (+ a (* b c)) d)");
    assert_eq!(expr("a - b - c"), "(- (- a b) c)");
    assert_eq!(expr("a / b % c"), "(% (/ a b) c)");
    assert_eq!(expr("-a * b"), "(* (neg a) b)");
    assert_eq!(expr("--a"), "(neg (neg a))");
    assert_eq!(expr("-a.b(c)[d]"), "(neg (idx (call (. a b) c) d))");
    assert_eq!(expr("(a + b) * c"), "(* (+ a b) c)");
    assert_eq!(expr("a <= b"), "(<= a b)");
    assert_eq!(expr("a >= b"), "(>= a b)");
    assert_eq!(expr("a > b"), "(> a b)");
}

#[test]
fn postfix_and_primaries() {
    assert_eq!(expr("f(a, b,)"), "(call f a b)");
    assert_eq!(expr("f()()"), "(call (call f))");
    assert_eq!(expr("xs[1:2]"), "(slice xs 1 2)");
    assert_eq!(expr("xs[:2]"), "(slice xs _ 2)");
    assert_eq!(expr("xs[1:]"), "(slice xs 1 _)");
    assert_eq!(expr("xs[:]"), "(slice xs _ _)");
    assert_eq!(
        expr("[1, 2.5, true, false, null, \"s\"]"),
        "[1 2.5 true false null \"s\"]"
    );
    assert_eq!(expr("[]"), "[]");
    assert_eq!(expr("{name: \"x\", n: 1,}"), "{name: \"x\", n: 1}");
    assert_eq!(expr("{\"k\": 1, \"j\": 2}"), "(map \"k\" 1 \"j\" 2)");
    assert_eq!(expr("{}"), "(map )");
    assert_eq!(
        expr("fn(x, y: int) -> int { return x + y }"),
        "(lambda (x, y: int) -> int {return (+ x y)})"
    );
    assert_eq!(expr("fn() {}"), "(lambda () {})");
    assert_eq!(expr("1_000_000"), "1000000");
    assert_eq!(expr("1e3"), "1000.0");
}

#[test]
fn strings_and_interpolation() {
    assert_eq!(
        expr(r#""a\nb\t\r\\\"\{\}\0""#),
        format!("{:?}", "a\nb\t\r\\\"{}\0")
    );
    assert_eq!(expr(r#""\u{1F600}\u{41}""#), "\"😀A\"");
    assert_eq!(expr(r#""x = {x + 1}!""#), r#"(interp "x = " (+ x 1) "!")"#);
    assert_eq!(expr(r#""{a}{b}""#), "(interp a b)");
    assert_eq!(
        expr(r#""{f("in {y}")}""#),
        r#"(interp (call f (interp "in " y)))"#
    );
    assert_eq!(
        expr(r#""{ {"k": 1}["k"] }""#),
        r#"(interp (idx (map "k" 1) "k"))"#
    );
}

#[test]
fn interpolation_spans_are_file_offsets() {
    let src = "fn main() { print(\"ab {x + yy} c\") }";
    let m = parse_module(0, src).expect("parses");
    let Item::Fn(f) = &m.items[0] else {
        panic!("fn expected")
    };
    let StmtKind::Expr(call) = &f.body.stmts[0].kind else {
        panic!("expr stmt")
    };
    let ExprKind::Call(_, args) = &call.kind else {
        panic!("call")
    };
    let ExprKind::Interp(parts) = &args[0].kind else {
        panic!("interp")
    };
    let InterpPart::Expr(e) = &parts[1] else {
        panic!("expr part")
    };
    let start = src.find("x + yy").expect("present");
    assert_eq!(
        (e.span.start as usize, e.span.end as usize),
        (start, start + 6)
    );
    let ExprKind::Binary(_, _, rhs) = &e.kind else {
        panic!("binary")
    };
    assert_eq!(&src[rhs.span.start as usize..rhs.span.end as usize], "yy");
}

#[test]
fn spans_of_items_and_statements() {
    let src = "/// doc\nfn f(a: int) {\n  let x = a + 1\n}\n";
    let m = parse_module(0, src).expect("parses");
    let Item::Fn(f) = &m.items[0] else {
        panic!("fn expected")
    };
    assert_eq!(
        &src[f.span.start as usize..f.span.end as usize],
        "fn f(a: int) {\n  let x = a + 1\n}"
    );
    assert_eq!(
        &src[f.name.span.start as usize..f.name.span.end as usize],
        "f"
    );
    assert_eq!(
        &src[f.params[0].span.start as usize..f.params[0].span.end as usize],
        "a: int"
    );
    let s = &f.body.stmts[0];
    assert_eq!(
        &src[s.span.start as usize..s.span.end as usize],
        "let x = a + 1"
    );
}

#[test]
fn newlines_separate_statements() {
    // A line starting with `(`, `[` or `-` starts a new statement...
    assert_eq!(body("f\n(x)"), vec!["f", "x"]);
    assert_eq!(body("a\n-b"), vec!["a", "(neg b)"]);
    assert_eq!(body("a\n[1]"), vec!["a", "[1]"]);
    // ...unless inside parentheses or brackets.
    assert_eq!(body("let x = (a\n- b)"), vec!["let x = (- a b)"]);
    assert_eq!(body("f(a,\n  b)"), vec!["(call f a b)"]);
    // A trailing operator continues the line.
    assert_eq!(body("let x = a +\n  b"), vec!["let x = (+ a b)"]);
    // `return` alone on its line returns nothing.
    assert_eq!(body("return\nf()"), vec!["return", "(call f)"]);
    assert_eq!(body("if a { return }"), vec!["if a {return}"]);
    // `;` separates statements on one line; empty statements are fine.
    assert_eq!(body("a; b;; c;"), vec!["a", "b", "c"]);
}

#[test]
fn nested_blocks_in_lambdas() {
    let got = body("let f = fn(x) {\n  let y = x\n  (y)\n}\nf(1)");
    assert_eq!(
        got,
        vec!["let f = (lambda (x) {let y = x; y})", "(call f 1)"]
    );
}

#[test]
fn doc_comments_on_nested_fns() {
    assert_eq!(body("/// helper\nfn h() {}"), vec!["fn h() {}"]);
    let m = parse_module(0, "fn main() {\n/// helper\nfn h() {}\n}").expect("parses");
    let Item::Fn(f) = &m.items[0] else {
        panic!("fn expected")
    };
    let StmtKind::Fn(h) = &f.body.stmts[0].kind else {
        panic!("nested fn")
    };
    assert_eq!(h.doc.as_deref(), Some("helper"));
}

#[test]
fn several_errors_are_reported_at_once() {
    let src = "fn main() {\n  let = 1\n  f(a b)\n  let ok = 1\n  x = = 2\n}\nfn g {\n}\n";
    assert_eq!(error_codes(src), vec!["E0110", "E0110", "E0110", "E0110"]);
}

#[test]
fn semantic_syntax_checks() {
    assert_eq!(error_codes("fn main() { f() = 1 }"), vec!["E0112"]);
    assert_eq!(error_codes("fn main() { x[1:2] = 1 }"), vec!["E0112"]);
    assert_eq!(
        error_codes("fn main() { let r = {a: 1, \"b\": 2} }"),
        vec!["E0114"]
    );
    assert_eq!(
        error_codes("fn main() { let x = 1 let y = 2 }"),
        vec!["E0117"]
    );
    assert_eq!(error_codes("fn main() { if a < b < c {} }"), vec!["E0113"]);
    assert_eq!(error_codes("type T = list[int, int]"), vec!["E0116"]);
    assert_eq!(error_codes("import \"{x}.ail\""), vec!["E0115"]);
    assert_eq!(error_codes("fn main() { print(\"{}\") }"), vec!["E0115"]);
    assert_eq!(error_codes("fn main() { print(\"a}\") }"), vec!["E0115"]);
    assert_eq!(
        error_codes("fn main() { print(\"\\u{D800}\") }"),
        vec!["E0103"]
    );
    assert_eq!(error_codes("fn main() { print(\"\\q\") }"), vec!["E0103"]);
}

#[test]
fn empty_module() {
    assert_eq!(module(""), "");
    assert_eq!(module("// only a comment\n"), "");
}

#[test]
fn agent_syntax() {
    assert_eq!(
        module("model smart = \"large\"\nfn f() {}"),
        "model smart = \"large\"\nfn f() {}"
    );
    let src = r#"let t = llm smart -> Ticket {
  system "You triage."
  messages history; user "Ticket: {text}"
  tools [lookup, search]
  temperature 0.2
  max_turns 3
}"#;
    assert_eq!(
        body(src),
        ["let t = (llm smart -> Ticket (system \"You triage.\") (messages history) (user (interp \"Ticket: \" text)) (tools lookup search) (temperature 0.2) (max_turns 3))"]
    );
    assert_eq!(
        body("let ts = [spawn f(1), spawn m.g(x)]\nlet r = await ts[0] + 1"),
        [
            "let ts = [(spawn (call f 1)) (spawn (call (. m g) x))]",
            "let r = (+ (await (idx ts 0)) 1)"
        ]
    );
    // Inside a string, and the words as plain names elsewhere.
    assert_eq!(expr("\"{await t}\""), "(interp (await t))");
    assert_eq!(body("let model = r.model"), ["let model = (. r model)"]);
    assert_eq!(error_codes("fn f() { spawn x.y }"), ["E0120"]);
}

#[test]
fn mcp_tool_items() {
    assert_eq!(
        module(
            "/// Reads.\ntool read(path: string) -> string from mcp \"files\"\nexport tool sum(a: int, b) from mcp \"everything.get-sum\""
        ),
        "/// \"Reads.\"\ntool read(path: string) -> string from mcp \"files.read\"\nexport tool sum(a: int, b) from mcp \"everything.get-sum\""
    );
    // `tool` is a name everywhere else, `type` may be a field name.
    assert_eq!(
        body("let tool = t; tool.fn(tool.type)"),
        ["let tool = t", "(call (. tool fn) (. tool type))"]
    );
    assert_eq!(error_codes("tool read(path: string)"), ["E0122"]);
    assert_eq!(error_codes("tool read(path) from mcp \"fs\""), ["E0122"]);
    assert_eq!(error_codes("tool read(path) from mcp \"a b\""), ["E0122"]);
    assert_eq!(
        error_codes("tool read(path) from mcp \"files.a/b\""),
        ["E0122"]
    );
    assert_eq!(error_codes("tool read(path) from \"files\""), ["E0122"]);
}

#[test]
fn needs_items_and_the_endorse_item() {
    assert_eq!(
        module(
            "needs read \"./data\"\nneeds net \"api.example.com:443\"\nneeds declassify\nneeds endorse\nfn f() {}"
        ),
        "needs Some(Read(\"./data\"))\nneeds Some(Net(\"api.example.com:443\"))\nneeds Some(Declassify)\nneeds Some(Endorse)\nfn f() {}"
    );
    // `needs` is a name everywhere else.
    assert_eq!(
        body("let needs = 1; needs = needs.x"),
        ["let needs = 1", "needs = (. needs x)"]
    );
    // Malformed items: unknown kind (with a suggestion), a resource without its string, an
    // authority with one, a bad resource.
    assert_eq!(error_codes("needs reed \"x\""), ["E0121"]);
    assert_eq!(error_codes("needs read"), ["E0121"]);
    assert_eq!(error_codes("needs endorse \"x\""), ["E0121"]);
    assert_eq!(error_codes("needs net \"https://x.com/\""), ["E0121"]);
    assert_eq!(error_codes("needs env \"A B\""), ["E0121"]);

    let src = "let ok = llm smart -> bool {\n  user \"Is it spam?\"\n  endorse\n}";
    assert_eq!(
        body(src),
        ["let ok = (llm smart -> bool (user \"Is it spam?\") (endorse))"]
    );
    assert_eq!(
        body("let ok = llm smart -> bool { user \"q\"; endorse }"),
        ["let ok = (llm smart -> bool (user \"q\") (endorse))"]
    );
    // The builtin stays a call, and `endorse` with a value is an error.
    assert_eq!(body("let y = endorse(x)"), ["let y = (call endorse x)"]);
    assert_eq!(
        error_codes("fn f() { let a = llm m -> bool {\n endorse true\n} }"),
        ["E0119"]
    );
}
