//! The checking walk: from the ASTs of every loaded module to one IR [`Program`]. It resolves
//! names (E02xx, with `resolve.rs`), types every expression and reports static type errors
//! (E03xx, with the rules of `typeck.rs`), finds the variables closures capture, decides where
//! run-time type checks are needed, and removes the surface sugar.

use std::collections::HashMap;

use aivm_vm::format::{native_by_name, MAX_TYPE_CHAIN};

use crate::ast::{self, Span};
use crate::diagnostic::{Diagnostic, FileId, Severity};
use crate::ir::{
    BinOp, Capture, Expr, ExprKind, Extern, ExternIdx, Func, FuncIdx, Place, Program, Stmt,
    StmtKind, Var, VarId,
};
use crate::resolve::{suggest, Def, Global, ModId, Namespace, Scopes};
use crate::typeck::{self, FieldAccess, TypeFault};
use crate::types::{Alias, Conf, Ty, TypeTable};

#[path = "lower_agent.rs"]
mod agent;
#[path = "lower_labels.rs"]
mod labels;
#[path = "lower_mcp.rs"]
mod mcp;

/// One parsed module, with its imports already loaded.
#[derive(Debug)]
pub struct ModuleSrc {
    pub file: FileId,
    pub ast: ast::SourceModule,
    /// The loaded module of each `import` item, in order; `None` when loading failed (already
    /// reported).
    pub imports: Vec<Option<ModId>>,
    /// `std.agent`, loaded for a module with `llm` expressions.
    pub agent: Option<ModId>,
    /// `std.mcp`, loaded for a module with `tool` items.
    pub mcp: Option<ModId>,
    /// Whether the prelude's names are visible (false for the prelude itself).
    pub sees_prelude: bool,
    /// The entry file: its `main` and `export fn`s go into the module header.
    pub entry: bool,
}

/// The checked program and its named types.
#[derive(Debug)]
pub struct Lowered {
    pub program: Program,
    pub types: TypeTable,
}

/// A known function's signature, with the spans that "declared here" labels point at.
#[derive(Debug, Clone)]
struct Sig {
    name: String,
    params: Vec<(Ty, Option<Span>)>,
    /// The parameters' names (a tool's arguments are named by them).
    names: Vec<String>,
    ret: Ty,
    file: FileId,
    span: Span,
}

/// The function being lowered.
struct FnCtx {
    func: Func,
    scopes: Scopes,
    loops: u32,
    ret_span: Option<Span>,
    /// The variables of nested `fn` statements bound at the start of their block (so that
    /// they can call each other), by the offset of the function's name.
    hoisted: HashMap<u32, VarId>,
    /// Nested functions used before their `fn` statement: their block must create their
    /// variable (and cell) at its start, since a closure made earlier may capture it.
    early_fns: Vec<VarId>,
}

struct Lowerer<'a> {
    mods: &'a [ModuleSrc],
    ns: Vec<Namespace>,
    prelude: Option<ModId>,
    types: TypeTable,
    prog: Program,
    fn_sigs: HashMap<FuncIdx, Sig>,
    extern_sigs: Vec<Sig>,
    wrappers: HashMap<ExternIdx, FuncIdx>,
    /// The one-argument adapters that call functions offered as tools (see `agent.rs`).
    tool_adapters: HashMap<FuncIdx, FuncIdx>,
    /// Externs the compiler adds for natives that lowering calls (`json.parse`, ...).
    intrinsics: HashMap<&'static str, ExternIdx>,
    diags: &'a mut Vec<Diagnostic>,
    module: ModId,
    file: FileId,
    fns: Vec<FnCtx>,
}

/// Checks and lowers every module. Diagnostics (errors and warnings) are appended to `diags`;
/// the program is meaningful only when no error was added.
pub fn lower(mods: &[ModuleSrc], prelude: Option<ModId>, diags: &mut Vec<Diagnostic>) -> Lowered {
    let mut l = Lowerer {
        mods,
        ns: vec![Namespace::default(); mods.len()],
        prelude,
        types: TypeTable::default(),
        prog: Program::default(),
        fn_sigs: HashMap::new(),
        extern_sigs: Vec::new(),
        wrappers: HashMap::new(),
        tool_adapters: HashMap::new(),
        intrinsics: HashMap::new(),
        diags,
        module: 0,
        file: 0,
        fns: Vec::new(),
    };
    for m in 0..mods.len() {
        l.declare_items(m as ModId);
    }
    for m in 0..mods.len() {
        l.resolve_aliases(m as ModId);
    }
    l.check_alias_cycles();
    for m in 0..mods.len() {
        l.resolve_signatures(m as ModId);
    }
    for m in 0..mods.len() {
        l.lower_bodies(m as ModId);
    }
    Lowered {
        program: l.prog,
        types: l.types,
    }
}

fn placeholder(name: &str, file: FileId, span: Span, doc: Option<String>) -> Func {
    Func {
        name: name.to_string(),
        file,
        span,
        doc,
        params: Vec::new(),
        param_tys: Vec::new(),
        ret: Ty::Any,
        captures: Vec::new(),
        vars: Vec::new(),
        body: Vec::new(),
    }
}

/// The name an import binds: its alias, the last segment of a std path, or the file stem.
fn import_name(imp: &ast::Import) -> (String, Span) {
    if let Some(a) = &imp.alias {
        return (a.name.clone(), a.span);
    }
    match &imp.target {
        ast::ImportTarget::Std(path) => match path.last() {
            Some(id) => (id.name.clone(), id.span),
            None => (String::new(), imp.span),
        },
        ast::ImportTarget::File { path, span } => {
            let stem = std::path::Path::new(path)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            (stem, *span)
        }
    }
}

const BUILTIN_TYPES: &[&str] = &[
    "int", "float", "bool", "string", "null", "any", "error", "fn", "task",
];

impl Lowerer<'_> {
    fn error(&mut self, code: &'static str, msg: impl Into<String>, span: Span) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::error(code, msg, self.file, span));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn fault(&mut self, code: &'static str, msg: &str, span: Span, f: TypeFault) {
        let d = self.error(code, msg, span);
        d.label = f.label;
        d.help = f.help;
    }

    // ---- module level -------------------------------------------------------------------

    fn define(&mut self, m: ModId, name: &str, span: Span, global: Global) {
        let file = self.mods[m as usize].file;
        if let Some(prev) = self.ns[m as usize].get(name) {
            let d = Diagnostic::error(
                "E0202",
                format!("`{name}` is defined more than once"),
                file,
                span,
            )
            .with_label("redefined here")
            .with_extra(prev.file, prev.span, "first defined here")
            .with_help("rename one of the definitions");
            self.diags.push(d);
            return;
        }
        self.ns[m as usize]
            .defs
            .insert(name.to_string(), Def { global, file, span });
    }

    fn declare_items(&mut self, m: ModId) {
        let src = &self.mods[m as usize];
        self.file = src.file;
        let mut import_no = 0;
        for item in &src.ast.items {
            match item {
                ast::Item::Import(imp) => {
                    let target = src.imports.get(import_no).copied().flatten();
                    import_no += 1;
                    let (name, span) = import_name(imp);
                    let g = target.map_or(Global::Poison, Global::Module);
                    self.define(m, &name, span, g);
                }
                ast::Item::Fn(f) => {
                    let idx = self.prog.funcs.len() as FuncIdx;
                    self.prog.funcs.push(placeholder(
                        &f.name.name,
                        src.file,
                        f.span,
                        f.doc.clone(),
                    ));
                    self.define(m, &f.name.name, f.name.span, Global::Fn(idx));
                    if src.entry {
                        if f.name.name == "main" {
                            self.prog.entry = Some(idx);
                            if f.params.len() > 1 {
                                let d = Diagnostic::error(
                                    "E0215",
                                    "`main` takes at most one parameter",
                                    src.file,
                                    f.name.span,
                                )
                                .with_label(format!("declared with {} parameters", f.params.len()))
                                .with_help(
                                    "declare `fn main(args: [string]) -> int` or `fn main()`",
                                );
                                self.diags.push(d);
                            }
                            if let Some(ret) = f.ret.as_ref().filter(|t| !is_exit_status_type(t)) {
                                let d = Diagnostic::error(
                                    "E0313",
                                    "`main` must return an exit status",
                                    src.file,
                                    ret.span,
                                )
                                .with_label("the exit status is an int")
                                .with_help("declare `fn main(args: [string]) -> int`, or leave out the return type");
                                self.diags.push(d);
                            }
                        }
                        if f.exported {
                            self.prog.exports.push((f.name.name.clone(), idx));
                        }
                    }
                }
                ast::Item::McpTool(t) => {
                    let idx = self.prog.funcs.len() as FuncIdx;
                    self.prog.funcs.push(placeholder(
                        &t.name.name,
                        src.file,
                        t.span,
                        t.doc.clone(),
                    ));
                    self.define(m, &t.name.name, t.name.span, Global::Fn(idx));
                    self.prog.mcp_tools.insert(idx, t.id.clone());
                    if src.entry && t.exported {
                        self.prog.exports.push((t.name.name.clone(), idx));
                    }
                }
                ast::Item::Extern(e) => {
                    let idx = self.prog.externs.len() as ExternIdx;
                    let (effect, known) = match native_by_name(&e.native) {
                        Some((_, info)) => {
                            if info.arity as usize != e.params.len() {
                                let d = Diagnostic::error(
                                    "E0211",
                                    format!("native `{}` takes {} arguments", e.native, info.arity),
                                    src.file,
                                    e.native_span,
                                )
                                .with_label(format!("declared here with {}", e.params.len()))
                                .with_help(format!("declare exactly {} parameters", info.arity));
                                self.diags.push(d);
                            }
                            (info.effect, true)
                        }
                        None => (false, false),
                    };
                    if !known {
                        let names = aivm_vm::format::NATIVES.iter().map(|n| n.name);
                        let mut d = Diagnostic::error(
                            "E0210",
                            format!("unknown native `{}`", e.native),
                            src.file,
                            e.native_span,
                        )
                        .with_label("the VM has no native of this name");
                        d.help = Some(match suggest(&e.native, names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "the natives are listed in spec/natives.md".into(),
                        });
                        self.diags.push(d);
                    }
                    self.prog.externs.push(Extern {
                        name: e.name.name.clone(),
                        native: e.native.clone(),
                        effect,
                        params: Vec::new(),
                        ret: Ty::Any,
                        doc: e.doc.clone(),
                    });
                    self.extern_sigs.push(Sig {
                        name: e.name.name.clone(),
                        params: Vec::new(),
                        names: Vec::new(),
                        ret: Ty::Any,
                        file: src.file,
                        span: e.name.span,
                    });
                    self.define(m, &e.name.name, e.name.span, Global::Extern(idx));
                }
                ast::Item::Needs(n) => {
                    let needs = &mut self.prog.needs;
                    match &n.need {
                        Some(ast::Need::Read(p)) => drop(needs.read.insert(p.clone())),
                        Some(ast::Need::Write(p)) => drop(needs.write.insert(p.clone())),
                        Some(ast::Need::Net(h)) => drop(needs.net.insert(h.clone())),
                        Some(ast::Need::Run(c)) => drop(needs.run.insert(c.clone())),
                        Some(ast::Need::Env(v)) => drop(needs.env.insert(v.clone())),
                        Some(ast::Need::Declassify) => needs.declassify = true,
                        Some(ast::Need::Endorse) => needs.endorse = true,
                        None => {}
                    }
                }
                ast::Item::Model(md) => {
                    let id = self.prog.models.len() as u32;
                    self.prog.models.push(crate::ir::Model {
                        name: md.name.name.clone(),
                        logical: md.logical.clone(),
                    });
                    self.define(m, &md.name.name, md.name.span, Global::Model(id));
                }
                ast::Item::Type(t) => {
                    let id = self.types.aliases.len() as u32;
                    self.types.aliases.push(Alias {
                        name: t.name.name.clone(),
                        doc: t.doc.clone(),
                        ty: Ty::Any,
                    });
                    self.define(m, &t.name.name, t.name.span, Global::Type(id));
                }
            }
        }
    }

    fn resolve_aliases(&mut self, m: ModId) {
        self.module = m;
        self.file = self.mods[m as usize].file;
        let mods = self.mods;
        for item in &mods[m as usize].ast.items {
            if let ast::Item::Type(t) = item {
                if let Some(Def {
                    global: Global::Type(id),
                    ..
                }) = self.ns[m as usize].get(&t.name.name)
                {
                    let ty = self.resolve_type(&t.ty);
                    if let Some(a) = self.types.aliases.get_mut(id as usize) {
                        a.ty = ty;
                    }
                }
            }
        }
    }

    /// Rejects aliases that reach themselves without going through a list, map or record, and
    /// chains of aliases, optionals and unions longer than the verifier allows (rule V3).
    fn check_alias_cycles(&mut self) {
        /// What following non-container references from a type finds.
        enum Reach {
            Fine,
            Cycle,
            TooLong,
        }
        fn walk(
            types: &TypeTable,
            ty: &Ty,
            target: u32,
            depth: usize,
            seen: &mut Vec<u32>,
        ) -> Reach {
            if depth > MAX_ALIAS_CHAIN {
                return Reach::TooLong;
            }
            match ty {
                Ty::Named(id, _) => {
                    if *id == target {
                        return Reach::Cycle;
                    }
                    if seen.contains(id) {
                        return Reach::Fine;
                    }
                    seen.push(*id);
                    match types.aliases.get(*id as usize) {
                        Some(a) => walk(types, &a.ty, target, depth + 1, seen),
                        None => Reach::Fine,
                    }
                }
                Ty::Optional(t) => walk(types, t, target, depth + 1, seen),
                Ty::Union(ms) => {
                    for m in ms {
                        match walk(types, m, target, depth + 1, seen) {
                            Reach::Fine => {}
                            other => return other,
                        }
                    }
                    Reach::Fine
                }
                _ => Reach::Fine,
            }
        }
        // Half the verifier's limit: the type table may add a node or two per alias (the alias
        // itself, then its optional or union), and a program must never compile into a module
        // the verifier rejects.
        const MAX_ALIAS_CHAIN: usize = MAX_TYPE_CHAIN / 2;
        let mods = self.mods;
        for (m, src) in mods.iter().enumerate() {
            for item in &src.ast.items {
                let ast::Item::Type(t) = item else { continue };
                let Some(Def {
                    global: Global::Type(id),
                    ..
                }) = self.ns[m].get(&t.name.name)
                else {
                    continue;
                };
                let Some(alias) = self.types.aliases.get(id as usize) else {
                    continue;
                };
                let d = match walk(&self.types, &alias.ty, id, 1, &mut Vec::new()) {
                    Reach::Fine => continue,
                    Reach::Cycle => Diagnostic::error(
                        "E0309",
                        format!("type `{}` is defined in terms of itself", t.name.name),
                        src.file,
                        t.ty.span,
                    )
                    .with_label("this refers back to the type being defined")
                    .with_help("a recursive type must go through a list, map or record, e.g. `{kids: [Tree]}`"),
                    Reach::TooLong => Diagnostic::error(
                        "E0314",
                        format!("type `{}` is a chain of more than {MAX_ALIAS_CHAIN} aliases, optionals and unions", t.name.name),
                        src.file,
                        t.ty.span,
                    )
                    .with_label("the chain starts here")
                    .with_help("write the type out, or shorten the chain of aliases"),
                };
                self.diags.push(d);
                if let Some(a) = self.types.aliases.get_mut(id as usize) {
                    a.ty = Ty::Any;
                }
            }
        }
    }

    fn lookup_global(&self, name: &str) -> Option<Def> {
        self.ns[self.module as usize].get(name).or_else(|| {
            let p = self.prelude?;
            if self.mods[self.module as usize].sees_prelude {
                self.ns[p as usize].get(name)
            } else {
                None
            }
        })
    }

    fn global_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.ns[self.module as usize].defs.keys().cloned().collect();
        if let Some(p) = self.prelude {
            if self.mods[self.module as usize].sees_prelude {
                names.extend(self.ns[p as usize].defs.keys().cloned());
            }
        }
        names.sort();
        names
    }

    fn resolve_type(&mut self, te: &ast::TypeExpr) -> Ty {
        match &te.kind {
            ast::TypeKind::Name(path) => self.resolve_type_name(path, te.span),
            ast::TypeKind::List(t) => Ty::List(Box::new(self.resolve_type(t))),
            ast::TypeKind::Map(k, v) => {
                let key = self.resolve_type(k);
                if !matches!(key, Ty::Str | Ty::Int | Ty::Any) {
                    self.error("E0312", "map keys must be strings or ints", k.span)
                        .label = format!("found `{key}`");
                }
                Ty::Map(Box::new(self.resolve_type(v)))
            }
            ast::TypeKind::Record(fields) => {
                let mut out: Vec<(String, Ty)> = Vec::new();
                for f in fields {
                    if out.iter().any(|(n, _)| *n == f.name.name) {
                        self.error(
                            "E0202",
                            format!("field `{}` is declared twice", f.name.name),
                            f.name.span,
                        )
                        .label = "declared again here".into();
                        continue;
                    }
                    let t = self.resolve_type(&f.ty);
                    out.push((f.name.name.clone(), t));
                }
                Ty::Record(out)
            }
            ast::TypeKind::Optional(t) => Ty::Optional(Box::new(self.resolve_type(t))),
            ast::TypeKind::StrLit(s) => Ty::StrLit(s.clone()),
            ast::TypeKind::Union(ms) => {
                Ty::Union(ms.iter().map(|m| self.resolve_type(m)).collect())
            }
        }
    }

    fn resolve_type_name(&mut self, path: &[ast::Ident], span: Span) -> Ty {
        match path {
            [one] => {
                let builtin = match one.name.as_str() {
                    "int" => Some(Ty::Int),
                    "float" => Some(Ty::Float),
                    "bool" => Some(Ty::Bool),
                    "string" => Some(Ty::Str),
                    "null" => Some(Ty::Null),
                    "any" => Some(Ty::Any),
                    "error" => Some(Ty::Error),
                    "fn" => Some(Ty::Func),
                    "task" => Some(Ty::Task),
                    _ => None,
                };
                if let Some(t) = builtin {
                    return t;
                }
                match self.lookup_global(&one.name) {
                    Some(Def {
                        global: Global::Type(id),
                        ..
                    }) => Ty::Named(id, one.name.clone()),
                    Some(Def {
                        global: Global::Poison,
                        ..
                    }) => Ty::Any,
                    Some(_) => {
                        let d = self.error("E0212", format!("`{}` is not a type", one.name), span);
                        d.label = "expected a type here".into();
                        Ty::Any
                    }
                    None => {
                        let mut cands: Vec<String> =
                            BUILTIN_TYPES.iter().map(|s| s.to_string()).collect();
                        let m = self.module as usize;
                        let prelude_ns = self.prelude.filter(|_| self.mods[m].sees_prelude);
                        for ns in std::iter::once(m).chain(prelude_ns.map(|p| p as usize)) {
                            for (n, d) in &self.ns[ns].defs {
                                if matches!(d.global, Global::Type(_)) {
                                    cands.push(n.clone());
                                }
                            }
                        }
                        let s = suggest(&one.name, cands.iter().map(String::as_str));
                        let d = self.error("E0212", format!("unknown type `{}`", one.name), span);
                        d.label = "not a known type".into();
                        d.help = s.map(|s| format!("did you mean `{s}`?"));
                        Ty::Any
                    }
                }
            }
            [m, name] => match self.lookup_global(&m.name) {
                Some(Def {
                    global: Global::Module(mm),
                    ..
                }) => match self.ns[mm as usize].get(&name.name) {
                    Some(Def {
                        global: Global::Type(id),
                        ..
                    }) => Ty::Named(id, format!("{}.{}", m.name, name.name)),
                    _ => {
                        let d = self.error(
                            "E0212",
                            format!("module `{}` has no type `{}`", m.name, name.name),
                            name.span,
                        );
                        d.label = "not a type of this module".into();
                        Ty::Any
                    }
                },
                Some(Def {
                    global: Global::Poison,
                    ..
                }) => Ty::Any,
                _ => {
                    let d = self.error("E0201", format!("no module named `{}`", m.name), m.span);
                    d.label = "not an imported module".into();
                    d.help = Some(format!("import it first, e.g. `import std.{}`", m.name));
                    Ty::Any
                }
            },
            _ => {
                self.error("E0212", "a type name has at most one module prefix", span)
                    .label = "write `module.Type`".into();
                Ty::Any
            }
        }
    }

    fn resolve_params(&mut self, params: &[ast::Param]) -> Vec<(Ty, Option<Span>)> {
        params
            .iter()
            .map(|p| match &p.ty {
                Some(t) => (self.resolve_type(t), Some(t.span)),
                None => (Ty::Any, None),
            })
            .collect()
    }

    fn resolve_signatures(&mut self, m: ModId) {
        self.module = m;
        self.file = self.mods[m as usize].file;
        let mods = self.mods;
        for item in &mods[m as usize].ast.items {
            match item {
                ast::Item::Fn(f) => self.fn_signature(m, &f.name, &f.params, f.ret.as_ref()),
                ast::Item::McpTool(t) => self.fn_signature(m, &t.name, &t.params, t.ret.as_ref()),
                ast::Item::Extern(e) => {
                    let Some(Def {
                        global: Global::Extern(idx),
                        ..
                    }) = self.ns[m as usize].get(&e.name.name)
                    else {
                        continue;
                    };
                    let params = self.resolve_params(&e.params);
                    let ret = e.ret.as_ref().map_or(Ty::Any, |t| self.resolve_type(t));
                    if let Some(x) = self.prog.externs.get_mut(idx as usize) {
                        x.params = params.iter().map(|(t, _)| t.clone()).collect();
                        x.ret = ret.clone();
                    }
                    if let Some(s) = self.extern_sigs.get_mut(idx as usize) {
                        s.params = params;
                        s.names = e.params.iter().map(|p| p.name.name.clone()).collect();
                        s.ret = ret;
                    }
                }
                _ => {}
            }
        }
    }

    /// The signature of the top-level function `name` of module `m` (a `fn` or a `tool`).
    fn fn_signature(
        &mut self,
        m: ModId,
        name: &ast::Ident,
        params: &[ast::Param],
        ret: Option<&ast::TypeExpr>,
    ) {
        let Some(Def {
            global: Global::Fn(idx),
            ..
        }) = self.ns[m as usize].get(&name.name)
        else {
            return;
        };
        if self.fn_sigs.contains_key(&idx) {
            return;
        }
        let param_tys = self.resolve_params(params);
        let ret = ret.map_or(Ty::Any, |t| self.resolve_type(t));
        self.fn_sigs.insert(
            idx,
            Sig {
                name: name.name.clone(),
                params: param_tys,
                names: params.iter().map(|p| p.name.name.clone()).collect(),
                ret,
                file: self.file,
                span: name.span,
            },
        );
    }

    fn lower_bodies(&mut self, m: ModId) {
        self.module = m;
        self.file = self.mods[m as usize].file;
        let mods = self.mods;
        for item in &mods[m as usize].ast.items {
            let name = match item {
                ast::Item::Fn(f) => &f.name,
                ast::Item::McpTool(t) => &t.name,
                _ => continue,
            };
            let Some(Def {
                global: Global::Fn(idx),
                span,
                ..
            }) = self.ns[m as usize].get(&name.name)
            else {
                continue;
            };
            // A duplicate definition was reported; only the first one is compiled.
            if span != name.span {
                continue;
            }
            let Some(sig) = self.fn_sigs.get(&idx).cloned() else {
                continue;
            };
            let tys = sig.params.iter().map(|(t, _)| t.clone()).collect();
            match item {
                ast::Item::Fn(f) => self.lower_function(idx, f, tys, sig.ret),
                ast::Item::McpTool(t) => self.lower_mcp_tool(idx, t, tys, sig.ret),
                _ => {}
            }
        }
    }

    // ---- functions ----------------------------------------------------------------------

    fn lower_function(&mut self, idx: FuncIdx, decl: &ast::FnDecl, param_tys: Vec<Ty>, ret: Ty) {
        let func = match self.prog.funcs.get_mut(idx as usize) {
            Some(f) => std::mem::replace(f, placeholder("", 0, Span::default(), None)),
            None => return,
        };
        self.fns.push(FnCtx {
            func,
            scopes: Scopes::default(),
            loops: 0,
            ret_span: decl.ret.as_ref().map(|t| t.span),
            hoisted: HashMap::new(),
            early_fns: Vec::new(),
        });
        self.ctx().scopes.push();
        for (p, ty) in decl.params.iter().zip(&param_tys) {
            if self
                .ctx_ref()
                .func
                .params
                .iter()
                .any(|v| self.ctx_ref().func.vars[*v as usize].name == p.name.name)
            {
                self.error(
                    "E0202",
                    format!("parameter `{}` is declared twice", p.name.name),
                    p.name.span,
                )
                .label = "declared again here".into();
            }
            let v = self.new_var(&p.name.name, p.name.span, ty.clone());
            // Parameters are not reported as unused: callers must pass them anyway.
            self.ctx().func.vars[v as usize].used = true;
            self.ctx().scopes.bind(&p.name.name, v);
            self.ctx().func.params.push(v);
        }
        self.ctx().func.param_tys = param_tys;
        self.ctx().func.ret = ret.clone();
        let body = self.block(&decl.body);
        if let Some(ret_ty) = &decl.ret {
            if self.types.conforms(&Ty::Null, &ret) == Conf::No && !always_leaves(&decl.body.stmts)
            {
                let what = if decl.name.name.is_empty() {
                    "this function".to_string()
                } else {
                    format!("`{}`", decl.name.name)
                };
                let end = Span {
                    start: decl.body.span.end.saturating_sub(1),
                    end: decl.body.span.end,
                };
                let file = self.file;
                let d = self.error(
                    "E0310",
                    format!("{what} may reach its end without returning a value"),
                    end,
                );
                d.label = format!("expected a `return` of `{ret}` before here");
                d.extra.push(crate::diagnostic::Label {
                    file,
                    span: ret_ty.span,
                    text: "return type declared here".into(),
                });
                d.help = Some(format!(
                    "add a `return` at the end, or declare the return type as `{ret}?`"
                ));
            }
        }
        self.ctx().scopes.pop();
        if let Some(mut ctx) = self.fns.pop() {
            ctx.func.body = body;
            if let Some(slot) = self.prog.funcs.get_mut(idx as usize) {
                *slot = ctx.func;
            }
        }
    }

    fn ctx(&mut self) -> &mut FnCtx {
        // Invariant: statements and expressions are only lowered inside `lower_function`,
        // which pushes a context first.
        self.fns.last_mut().expect("lowering outside a function")
    }

    fn ctx_ref(&self) -> &FnCtx {
        // Invariant: as for `ctx`.
        self.fns.last().expect("lowering outside a function")
    }

    fn new_var(&mut self, name: &str, span: Span, ty: Ty) -> VarId {
        let vars = &mut self.ctx().func.vars;
        vars.push(Var {
            name: name.to_string(),
            span,
            ty,
            captured: false,
            assigned: false,
            used: false,
        });
        (vars.len() - 1) as VarId
    }

    /// A hidden temporary (evaluates an operand once in compound assignments).
    fn temp_var(&mut self, span: Span) -> VarId {
        let v = self.new_var("", span, Ty::Any);
        self.ctx().func.vars[v as usize].used = true;
        v
    }

    /// Finds a variable visible from function `depth` of the stack, capturing it through every
    /// function in between. Returns its place and declared type.
    fn find_var(&mut self, depth: usize, name: &str) -> Option<(Place, Ty, VarRef)> {
        let ctx = self.fns.get(depth)?;
        if let Some(v) = ctx.scopes.lookup(name) {
            let ty = ctx.func.vars[v as usize].ty.clone();
            return Some((Place::Local(v), ty, VarRef { depth, var: v }));
        }
        if depth == 0 {
            return None;
        }
        let (outer, ty, origin) = self.find_var(depth - 1, name)?;
        let cap = match outer {
            Place::Local(v) => {
                self.fns[depth - 1].func.vars[v as usize].captured = true;
                Capture::Local(v)
            }
            Place::Upval(i) => Capture::Upval(i),
        };
        let caps = &mut self.fns[depth].func.captures;
        let i = match caps.iter().position(|c| *c == cap) {
            Some(i) => i,
            None => {
                caps.push(cap);
                caps.len() - 1
            }
        };
        Some((Place::Upval(i as u16), ty, origin))
    }

    fn lookup_var(&mut self, name: &str) -> Option<(Place, Ty, VarRef)> {
        let depth = self.fns.len().checked_sub(1)?;
        self.find_var(depth, name)
    }

    fn var_mut(&mut self, r: VarRef) -> Option<&mut Var> {
        self.fns.get_mut(r.depth)?.func.vars.get_mut(r.var as usize)
    }

    // ---- statements ---------------------------------------------------------------------

    fn block(&mut self, b: &ast::Block) -> Vec<Stmt> {
        self.ctx().scopes.push();
        // Nested functions are visible in their whole block, like top-level functions, so
        // that they can be mutually recursive.
        for s in &b.stmts {
            if let ast::StmtKind::Fn(decl) = &s.kind {
                let var = self.new_var(&decl.name.name, decl.name.span, Ty::Func);
                self.ctx().scopes.bind(&decl.name.name, var);
                self.ctx().hoisted.insert(decl.name.span.start, var);
            }
        }
        let early_before = self.ctx_ref().early_fns.len();
        let mut out = Vec::new();
        for s in &b.stmts {
            self.stmt(s, &mut out);
        }
        let early: Vec<VarId> = self.ctx().early_fns.drain(early_before..).collect();
        let declare = early.into_iter().map(|var| {
            let span = self.ctx_ref().func.vars[var as usize].span;
            Stmt {
                kind: StmtKind::Let {
                    var,
                    value: Expr::new(ExprKind::Null, Ty::Null, span),
                    check: None,
                },
                span,
            }
        });
        let out: Vec<Stmt> = declare.collect::<Vec<_>>().into_iter().chain(out).collect();
        self.end_scope();
        out
    }

    fn end_scope(&mut self) {
        let vars = self.ctx().scopes.pop();
        for v in vars {
            let var = self.ctx_ref().func.vars[v as usize].clone();
            if !var.used && !var.captured && !var.name.is_empty() && !var.name.starts_with('_') {
                let mut d = Diagnostic::error(
                    "W0201",
                    format!("unused variable `{}`", var.name),
                    self.file,
                    var.span,
                )
                .with_label("never read")
                .with_help(format!(
                    "if this is intentional, prefix it with an underscore: `_{}`",
                    var.name
                ));
                d.severity = Severity::Warning;
                self.diags.push(d);
            }
        }
    }

    /// The type check a value of `value_ty` needs to be stored where `want` is declared: none,
    /// a run-time check, or a static error (reported at `span`, with `decl` as "declared here").
    fn check_assign(
        &mut self,
        value_ty: &Ty,
        want: &Ty,
        span: Span,
        decl: Option<(Span, &str)>,
    ) -> Option<Ty> {
        match self.types.conforms(value_ty, want) {
            Conf::Yes => None,
            Conf::Maybe => Some(want.clone()),
            Conf::No => {
                let file = self.file;
                let d = self.error("E0301", "mismatched types", span);
                d.label = format!("expected `{want}`, found `{value_ty}`");
                if let Some((s, text)) = decl {
                    d.extra.push(crate::diagnostic::Label {
                        file,
                        span: s,
                        text: text.to_string(),
                    });
                }
                if matches!((value_ty, want), (Ty::Int, Ty::Float)) {
                    d.help = Some(
                        "write the number as a float, e.g. `1.0`, or convert with `float(x)`"
                            .into(),
                    );
                }
                None
            }
        }
    }

    fn stmt(&mut self, s: &ast::Stmt, out: &mut Vec<Stmt>) {
        let span = s.span;
        let kind = match &s.kind {
            ast::StmtKind::Let { name, ty, value } => {
                let value = self.expr(value);
                let (decl_ty, check) = match ty {
                    Some(t) => {
                        let want = self.resolve_type(t);
                        let check = self.check_assign(
                            &value.ty,
                            &want,
                            value.span,
                            Some((t.span, "expected due to this annotation")),
                        );
                        (want, check)
                    }
                    None => (Ty::Any, None),
                };
                let var = self.new_var(&name.name, name.span, decl_ty);
                self.ctx().scopes.bind(&name.name, var);
                StmtKind::Let { var, value, check }
            }
            ast::StmtKind::Assign { target, op, value } => {
                match self.assign(target, *op, value, span) {
                    Some(k) => k,
                    None => return,
                }
            }
            ast::StmtKind::Fn(decl) => {
                let hoisted = self.ctx().hoisted.remove(&decl.name.span.start);
                let var = match hoisted {
                    Some(v) => v,
                    None => {
                        let v = self.new_var(&decl.name.name, decl.name.span, Ty::Func);
                        self.ctx().scopes.bind(&decl.name.name, v);
                        v
                    }
                };
                let early = self.ctx_ref().func.vars[var as usize].used;
                let func = self.lambda(decl);
                if early {
                    // Its variable exists from the start of the block; this fills it in.
                    self.ctx().early_fns.push(var);
                    if let Some(v) = self.ctx().func.vars.get_mut(var as usize) {
                        v.assigned = true;
                    }
                    StmtKind::Assign {
                        place: Place::Local(var),
                        value: Expr::new(ExprKind::Closure(func), Ty::Func, decl.span),
                        check: None,
                    }
                } else {
                    StmtKind::LocalFn { var, func }
                }
            }
            ast::StmtKind::Expr(e) => StmtKind::Expr(self.expr(e)),
            ast::StmtKind::If { cond, then, els } => {
                let cond = self.condition(cond);
                let then = self.block(then);
                let els = match els {
                    None => Vec::new(),
                    Some(ast::Else::Block(b)) => self.block(b),
                    Some(ast::Else::If(stmt)) => {
                        let mut v = Vec::new();
                        self.stmt(stmt, &mut v);
                        v
                    }
                };
                StmtKind::If { cond, then, els }
            }
            ast::StmtKind::While { cond, body } => {
                let cond = self.condition(cond);
                self.ctx().loops += 1;
                let body = self.block(body);
                self.ctx().loops -= 1;
                StmtKind::While { cond, body }
            }
            ast::StmtKind::For {
                first,
                second,
                iter,
                body,
            } => self.for_loop(first, second.as_ref(), iter, body),
            ast::StmtKind::Break | ast::StmtKind::Continue => {
                let word = if matches!(s.kind, ast::StmtKind::Break) {
                    "break"
                } else {
                    "continue"
                };
                if self.ctx_ref().loops == 0 {
                    let d = self.error("E0203", format!("`{word}` outside of a loop"), span);
                    d.label = format!("`{word}` is only allowed inside `while` or `for`");
                    return;
                }
                if word == "break" {
                    StmtKind::Break
                } else {
                    StmtKind::Continue
                }
            }
            ast::StmtKind::Return(value) => {
                let ret = self.ctx_ref().func.ret.clone();
                let ret_span = self.ctx_ref().ret_span;
                let decl = ret_span.map(|s| (s, "return type declared here"));
                match value {
                    Some(v) => {
                        let v = self.expr(v);
                        let check = self.check_assign(&v.ty, &ret, v.span, decl);
                        StmtKind::Return {
                            value: Some(v),
                            check,
                        }
                    }
                    None => {
                        let check = self.check_assign(&Ty::Null, &ret, span, decl);
                        StmtKind::Return { value: None, check }
                    }
                }
            }
            ast::StmtKind::Throw(e) => StmtKind::Throw(self.expr(e)),
            ast::StmtKind::Try {
                body,
                name,
                handler,
            } => {
                let body = self.block(body);
                self.ctx().scopes.push();
                let var = self.new_var(&name.name, name.span, Ty::Error);
                self.ctx().scopes.bind(&name.name, var);
                let handler = self.block(handler);
                self.end_scope();
                StmtKind::Try { body, var, handler }
            }
        };
        out.push(Stmt { kind, span });
    }

    fn for_loop(
        &mut self,
        first: &ast::Ident,
        second: Option<&ast::Ident>,
        iter: &ast::Expr,
        body: &ast::Block,
    ) -> StmtKind {
        if let (ast::ExprKind::Range(lo, hi), None) = (&iter.kind, second) {
            let lo = self.int_operand(lo);
            let hi = self.int_operand(hi);
            self.ctx().scopes.push();
            let var = self.new_var(&first.name, first.span, Ty::Int);
            self.ctx().scopes.bind(&first.name, var);
            self.ctx().loops += 1;
            let body = self.block(body);
            self.ctx().loops -= 1;
            self.end_scope();
            return StmtKind::ForRange { var, lo, hi, body };
        }
        let iter = self.expr(iter);
        // Loop variables are unannotated, hence `any`, like every unannotated variable; only
        // a statically non-iterable value is an error here.
        if let Err(f) = typeck::iteration(&self.types, &iter.ty) {
            self.fault("E0311", "not iterable", iter.span, f);
        }
        self.ctx().scopes.push();
        let a = self.new_var(&first.name, first.span, Ty::Any);
        self.ctx().scopes.bind(&first.name, a);
        let b = second.map(|s| {
            let b = self.new_var(&s.name, s.span, Ty::Any);
            self.ctx().scopes.bind(&s.name, b);
            b
        });
        self.ctx().loops += 1;
        let body = self.block(body);
        self.ctx().loops -= 1;
        self.end_scope();
        StmtKind::ForIter {
            first: a,
            second: b,
            iter,
            body,
        }
    }

    fn assign(
        &mut self,
        target: &ast::Expr,
        op: Option<ast::BinOp>,
        value: &ast::Expr,
        span: Span,
    ) -> Option<StmtKind> {
        match &target.kind {
            ast::ExprKind::Name(id) => {
                let Some((place, ty, origin)) = self.lookup_var(&id.name) else {
                    match self.lookup_global(&id.name) {
                        Some(def) => {
                            let d = self.error(
                                "E0213",
                                format!("cannot assign to `{}`", id.name),
                                id.span,
                            );
                            d.label = "not a variable".into();
                            d.extra.push(crate::diagnostic::Label {
                                file: def.file,
                                span: def.span,
                                text: "defined here".into(),
                            });
                            d.help = Some(format!(
                                "declare a variable instead: `let {} = ...`",
                                id.name
                            ));
                        }
                        None => self.undefined(id),
                    }
                    let _ = self.expr(value);
                    return None;
                };
                if let Some(v) = self.var_mut(origin) {
                    v.assigned = true;
                }
                let value = self.expr(value);
                let value = match op {
                    Some(op) => {
                        if let Some(v) = self.var_mut(origin) {
                            v.used = true;
                        }
                        let cur = Expr::new(ExprKind::Var(place), ty.clone(), id.span);
                        self.binary(op, cur, value, span)
                    }
                    None => value,
                };
                let decl_span = self
                    .fns
                    .get(origin.depth)
                    .and_then(|c| c.func.vars.get(origin.var as usize))
                    .map(|v| v.span);
                let check = if ty.is_any() {
                    None
                } else {
                    self.check_assign(
                        &value.ty,
                        &ty,
                        value.span,
                        decl_span.map(|s| (s, "variable declared here")),
                    )
                };
                Some(StmtKind::Assign {
                    place,
                    value,
                    check,
                })
            }
            ast::ExprKind::Field(obj, name) => {
                let obj = self.expr(obj);
                let Some(op) = op else {
                    let value = self.expr(value);
                    let check = self.check_field_store(&obj, name, &value);
                    return Some(StmtKind::SetField {
                        obj,
                        name: name.name.clone(),
                        value,
                        check,
                    });
                };
                let tmp = self.temp_var(obj.span);
                let tmp_e = Expr::new(ExprKind::Var(Place::Local(tmp)), obj.ty.clone(), obj.span);
                let cur = self.field_of(tmp_e.clone(), name);
                let field_ty = cur.ty.clone();
                let value = self.expr(value);
                let value = self.binary(op, cur, value, span);
                let check = if field_ty.is_any() {
                    None
                } else {
                    self.check_assign(&value.ty, &field_ty, value.span, None)
                };
                Some(StmtKind::Block(vec![
                    Stmt {
                        kind: StmtKind::Let {
                            var: tmp,
                            value: obj,
                            check: None,
                        },
                        span,
                    },
                    Stmt {
                        kind: StmtKind::SetField {
                            obj: tmp_e,
                            name: name.name.clone(),
                            value,
                            check,
                        },
                        span,
                    },
                ]))
            }
            ast::ExprKind::Index(obj, key) => {
                let obj = self.expr(obj);
                let key = self.expr(key);
                if let Err(f) = typeck::index(&self.types, &obj.ty, &key.ty) {
                    self.fault("E0307", "invalid index", key.span, f);
                }
                let Some(op) = op else {
                    let value = self.expr(value);
                    return Some(StmtKind::SetIndex { obj, key, value });
                };
                let t_obj = self.temp_var(obj.span);
                let t_key = self.temp_var(key.span);
                let obj_e = Expr::new(ExprKind::Var(Place::Local(t_obj)), obj.ty.clone(), obj.span);
                let key_e = Expr::new(ExprKind::Var(Place::Local(t_key)), key.ty.clone(), key.span);
                let elem = typeck::index(&self.types, &obj.ty, &key.ty).unwrap_or(Ty::Any);
                let cur = Expr::new(
                    ExprKind::Index(Box::new(obj_e.clone()), Box::new(key_e.clone())),
                    elem,
                    target.span,
                );
                let value = self.expr(value);
                let value = self.binary(op, cur, value, span);
                Some(StmtKind::Block(vec![
                    Stmt {
                        kind: StmtKind::Let {
                            var: t_obj,
                            value: obj,
                            check: None,
                        },
                        span,
                    },
                    Stmt {
                        kind: StmtKind::Let {
                            var: t_key,
                            value: key,
                            check: None,
                        },
                        span,
                    },
                    Stmt {
                        kind: StmtKind::SetIndex {
                            obj: obj_e,
                            key: key_e,
                            value,
                        },
                        span,
                    },
                ]))
            }
            _ => {
                let d = self.error("E0213", "cannot assign to this expression", target.span);
                d.label = "not a variable, field or index".into();
                let _ = self.expr(value);
                None
            }
        }
    }

    /// `obj.name = value`: the field must exist on a known record type, and the value must
    /// conform to its declared type (statically, or by a run-time check it returns).
    fn check_field_store(&mut self, obj: &Expr, name: &ast::Ident, value: &Expr) -> Option<Ty> {
        // `field_of` reports a missing field or a value without fields, as for a read.
        let want = self.field_of(obj.clone(), name).ty;
        if want.is_any() {
            return None;
        }
        self.check_assign(&value.ty, &want, value.span, None)
    }

    // ---- expressions --------------------------------------------------------------------

    fn poison(span: Span) -> Expr {
        Expr::new(ExprKind::Null, Ty::Any, span)
    }

    fn condition(&mut self, e: &ast::Expr) -> Expr {
        let e = self.expr(e);
        if let Err(f) = typeck::condition(&self.types, &e.ty) {
            self.fault("E0303", "condition is not a bool", e.span, f);
        }
        e
    }

    fn int_operand(&mut self, e: &ast::Expr) -> Expr {
        let e = self.expr(e);
        if !typeck::int_or_unknown(&self.types, &e.ty) {
            let d = self.error("E0302", "range bounds must be ints", e.span);
            d.label = format!("expected `int`, found `{}`", e.ty);
        }
        e
    }

    fn undefined(&mut self, id: &ast::Ident) {
        let mut names: Vec<String> = self
            .fns
            .iter()
            .flat_map(|c| c.scopes.names().map(String::from).collect::<Vec<_>>())
            .collect();
        names.extend(self.global_names());
        let s = suggest(&id.name, names.iter().map(String::as_str));
        let d = self.error(
            "E0201",
            format!("cannot find `{}` in this scope", id.name),
            id.span,
        );
        d.label = "not found".into();
        d.help = s.map(|s| format!("did you mean `{s}`?"));
    }

    /// The value of a global definition used as an expression.
    fn global_value(&mut self, def: Def, name: &str, span: Span) -> Expr {
        match def.global {
            Global::Fn(idx) => Expr::new(ExprKind::Func(idx), Ty::Func, span),
            Global::Extern(idx) => {
                let f = self.extern_wrapper(idx);
                Expr::new(ExprKind::Func(f), Ty::Func, span)
            }
            Global::Module(_) => {
                let d = self.error("E0205", format!("module `{name}` is not a value"), span);
                d.label = "a module, used as a value".into();
                d.help = Some(format!("use one of its members, e.g. `{name}.something`"));
                Self::poison(span)
            }
            Global::Type(_) => {
                let d = self.error("E0214", format!("type `{name}` is not a value"), span);
                d.label = "a type, used as a value".into();
                Self::poison(span)
            }
            Global::Model(id) => {
                let logical = self
                    .prog
                    .models
                    .get(id as usize)
                    .map_or(String::new(), |m| m.logical.clone());
                Expr::new(ExprKind::Str(logical), Ty::Str, span)
            }
            Global::Poison => Self::poison(span),
        }
    }

    /// A function that calls an extern, so that the extern can be passed around as a value.
    fn extern_wrapper(&mut self, idx: ExternIdx) -> FuncIdx {
        if let Some(f) = self.wrappers.get(&idx) {
            return *f;
        }
        let Some(ext) = self.prog.externs.get(idx as usize).cloned() else {
            return 0;
        };
        let sig = self.extern_sigs.get(idx as usize).cloned();
        let (file, span) = sig
            .as_ref()
            .map_or((self.file, Span::default()), |s| (s.file, s.span));
        let mut f = placeholder(&ext.name, file, span, ext.doc.clone());
        let mut args = Vec::new();
        for (i, t) in ext.params.iter().enumerate() {
            f.vars.push(Var {
                name: format!("p{i}"),
                span,
                ty: t.clone(),
                captured: false,
                assigned: false,
                used: true,
            });
            f.params.push(i as VarId);
            args.push(Expr::new(
                ExprKind::Var(Place::Local(i as VarId)),
                t.clone(),
                span,
            ));
        }
        f.param_tys = ext.params.clone();
        f.ret = ext.ret.clone();
        let call = Expr::new(ExprKind::CallExtern(idx, args), ext.ret.clone(), span);
        f.body = vec![Stmt {
            kind: StmtKind::Return {
                value: Some(call),
                check: None,
            },
            span,
        }];
        let fi = self.prog.funcs.len() as FuncIdx;
        self.prog.funcs.push(f);
        self.wrappers.insert(idx, fi);
        fi
    }

    fn name(&mut self, id: &ast::Ident) -> Expr {
        if let Some((place, ty, origin)) = self.lookup_var(&id.name) {
            if let Some(v) = self.var_mut(origin) {
                v.used = true;
            }
            return Expr::new(ExprKind::Var(place), ty, id.span);
        }
        match self.lookup_global(&id.name) {
            Some(def) => self.global_value(def, &id.name, id.span),
            None => {
                self.undefined(id);
                Self::poison(id.span)
            }
        }
    }

    /// If `e` names an imported module (not shadowed by a variable), that module.
    fn as_module(&mut self, e: &ast::Expr) -> Option<Option<ModId>> {
        let ast::ExprKind::Name(id) = &e.kind else {
            return None;
        };
        if self.fns.iter().any(|c| c.scopes.lookup(&id.name).is_some()) {
            return None;
        }
        match self.lookup_global(&id.name)?.global {
            Global::Module(m) => Some(Some(m)),
            Global::Poison => Some(None),
            _ => None,
        }
    }

    /// The member `name` of module `m`, or a diagnostic.
    fn member(&mut self, m: ModId, module_name: &str, name: &ast::Ident) -> Option<Def> {
        match self.ns[m as usize].get(&name.name) {
            Some(Def {
                global: Global::Module(_),
                ..
            })
            | None => {
                let cands: Vec<String> = self.ns[m as usize]
                    .defs
                    .iter()
                    .filter(|(_, d)| !matches!(d.global, Global::Module(_) | Global::Poison))
                    .map(|(n, _)| n.clone())
                    .collect();
                let s = suggest(&name.name, cands.iter().map(String::as_str));
                let d = self.error(
                    "E0206",
                    format!("module `{module_name}` has no member `{}`", name.name),
                    name.span,
                );
                d.label = "not defined in this module".into();
                d.help = s.map(|s| format!("did you mean `{module_name}.{s}`?"));
                None
            }
            Some(def) => Some(def),
        }
    }

    fn field_of(&mut self, obj: Expr, name: &ast::Ident) -> Expr {
        let ty = match typeck::field(&self.types, &obj.ty, &name.name) {
            FieldAccess::Known(t) => t,
            FieldAccess::NoField(fields) => {
                let s = suggest(&name.name, fields.iter().map(String::as_str));
                let d = self.error(
                    "E0305",
                    format!("no field `{}` on type `{}`", name.name, obj.ty),
                    name.span,
                );
                d.label = "unknown field".into();
                d.help = Some(match s {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the fields are: {}", fields.join(", ")),
                });
                Ty::Any
            }
            FieldAccess::NotRecord => {
                let d = self.error("E0306", format!("`{}` has no fields", obj.ty), name.span);
                d.label = format!("field access on a value of type `{}`", obj.ty);
                Ty::Any
            }
        };
        let span = obj.span.to(name.span);
        Expr::new(ExprKind::Field(Box::new(obj), name.name.clone()), ty, span)
    }

    fn binary(&mut self, op: ast::BinOp, a: Expr, b: Expr, span: Span) -> Expr {
        let (op, swapped) = match op {
            ast::BinOp::Add => (BinOp::Add, false),
            ast::BinOp::Sub => (BinOp::Sub, false),
            ast::BinOp::Mul => (BinOp::Mul, false),
            ast::BinOp::Div => (BinOp::Div, false),
            ast::BinOp::Mod => (BinOp::Mod, false),
            ast::BinOp::Eq => (BinOp::Eq, false),
            ast::BinOp::Ne => (BinOp::Ne, false),
            ast::BinOp::Lt => (BinOp::Lt, false),
            ast::BinOp::Le => (BinOp::Le, false),
            ast::BinOp::Gt => (BinOp::Lt, true),
            ast::BinOp::Ge => (BinOp::Le, true),
        };
        let ty = match typeck::binary(&self.types, op, &a.ty, &b.ty) {
            Ok(t) => t,
            Err(f) => {
                let sym = match (op, swapped) {
                    (BinOp::Lt, true) => ">",
                    (BinOp::Le, true) => ">=",
                    _ => typeck::op_symbol(op),
                };
                self.fault("E0302", &format!("invalid operands to `{sym}`"), span, f);
                Ty::Any
            }
        };
        Expr::new(
            ExprKind::Binary {
                op,
                a: Box::new(a),
                b: Box::new(b),
                swapped,
            },
            ty,
            span,
        )
    }

    fn args(&mut self, args: &[ast::Expr]) -> Vec<Expr> {
        args.iter().map(|a| self.expr(a)).collect()
    }

    /// Checks the arguments of a call of a known function against its signature.
    fn check_call(&mut self, sig: &Sig, args: &[Expr], call_span: Span) {
        if sig.params.len() != args.len() {
            let n = sig.params.len();
            let d = Diagnostic::error(
                "E0304",
                format!(
                    "`{}` takes {n} argument{} but {} {} given",
                    sig.name,
                    if n == 1 { "" } else { "s" },
                    args.len(),
                    if args.len() == 1 { "was" } else { "were" }
                ),
                self.file,
                call_span,
            )
            .with_label(format!(
                "expected {n} argument{}",
                if n == 1 { "" } else { "s" }
            ))
            .with_extra(sig.file, sig.span, "defined here");
            self.diags.push(d);
            return;
        }
        for ((want, decl), arg) in sig.params.iter().zip(args) {
            if self.types.conforms(&arg.ty, want) == Conf::No {
                let mut d = Diagnostic::error("E0301", "mismatched types", self.file, arg.span)
                    .with_label(format!("expected `{want}`, found `{}`", arg.ty));
                if let Some(s) = decl {
                    d = d.with_extra(sig.file, *s, "parameter declared here");
                }
                self.diags.push(d);
            }
        }
    }

    fn call(&mut self, callee: &ast::Expr, args: &[ast::Expr], span: Span) -> Expr {
        // A direct call of a known function, extern, or module member.
        let direct = match &callee.kind {
            ast::ExprKind::Name(id) if self.lookup_var(&id.name).is_none() => {
                match self.lookup_global(&id.name) {
                    Some(Def {
                        global: Global::Module(_),
                        ..
                    }) => {
                        let d = self.error(
                            "E0205",
                            format!("cannot call module `{}`", id.name),
                            id.span,
                        );
                        d.label = "a module, not a function".into();
                        d.help = Some(format!(
                            "call one of its functions, e.g. `{}.name(...)`",
                            id.name
                        ));
                        let _ = self.args(args);
                        return Self::poison(span);
                    }
                    None if labels::BUILTINS.contains(&id.name.as_str()) => {
                        return self.label_builtin(id, args, span)
                    }
                    other => other,
                }
            }
            ast::ExprKind::Field(obj, name) => match self.as_module(obj) {
                Some(Some(m)) => {
                    let module_name = match &obj.kind {
                        ast::ExprKind::Name(id) => id.name.clone(),
                        _ => String::new(),
                    };
                    match self.member(m, &module_name, name) {
                        Some(def) => Some(def),
                        None => {
                            let _ = self.args(args);
                            return Self::poison(span);
                        }
                    }
                }
                Some(None) => {
                    let _ = self.args(args);
                    return Self::poison(span);
                }
                None => None,
            },
            _ => None,
        };
        match direct.map(|d| d.global) {
            Some(Global::Fn(idx)) => {
                let args = self.args(args);
                let ret = match self.fn_sigs.get(&idx).cloned() {
                    Some(sig) => {
                        self.check_call(&sig, &args, span);
                        sig.ret
                    }
                    None => Ty::Any,
                };
                return Expr::new(ExprKind::CallFn(idx, args), ret, span);
            }
            Some(Global::Extern(idx)) => {
                let args = self.args(args);
                let ret = match self.extern_sigs.get(idx as usize).cloned() {
                    Some(sig) => {
                        self.check_call(&sig, &args, span);
                        sig.ret
                    }
                    None => Ty::Any,
                };
                return Expr::new(ExprKind::CallExtern(idx, args), ret, span);
            }
            Some(Global::Type(_)) => {
                let d = self.error("E0214", "a type cannot be called", callee.span);
                d.label = "a type, not a function".into();
                let _ = self.args(args);
                return Self::poison(span);
            }
            Some(Global::Poison) => {
                let _ = self.args(args);
                return Self::poison(span);
            }
            _ => {}
        }
        let f = self.expr(callee);
        if typeck::not_callable(&self.types, &f.ty) {
            let d = self.error("E0308", format!("`{}` is not a function", f.ty), f.span);
            d.label = "called here".into();
        }
        let args = self.args(args);
        Expr::new(ExprKind::Call(Box::new(f), args), Ty::Any, span)
    }

    fn lambda(&mut self, decl: &ast::FnDecl) -> FuncIdx {
        let idx = self.prog.funcs.len() as FuncIdx;
        self.prog.funcs.push(placeholder(
            &decl.name.name,
            self.file,
            decl.span,
            decl.doc.clone(),
        ));
        let params = self.resolve_params(&decl.params);
        let ret = decl.ret.as_ref().map_or(Ty::Any, |t| self.resolve_type(t));
        let tys = params.into_iter().map(|(t, _)| t).collect();
        self.lower_function(idx, decl, tys, ret);
        idx
    }

    fn same_type(items: &[Expr]) -> Ty {
        match items.first() {
            None => Ty::Never,
            Some(first) if items.iter().all(|e| e.ty == first.ty) => first.ty.clone(),
            Some(_) => {
                if items
                    .iter()
                    .all(|e| matches!(e.ty, Ty::Str | Ty::StrLit(_)))
                {
                    Ty::Str
                } else {
                    Ty::Any
                }
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr) -> Expr {
        let span = e.span;
        match &e.kind {
            ast::ExprKind::Null => Expr::new(ExprKind::Null, Ty::Null, span),
            ast::ExprKind::Bool(b) => Expr::new(ExprKind::Bool(*b), Ty::Bool, span),
            ast::ExprKind::Int(i) => Expr::new(ExprKind::Int(*i), Ty::Int, span),
            ast::ExprKind::Float(f) => Expr::new(ExprKind::Float(*f), Ty::Float, span),
            ast::ExprKind::Str(s) => {
                Expr::new(ExprKind::Str(s.clone()), Ty::StrLit(s.clone()), span)
            }
            ast::ExprKind::Interp(parts) => {
                let parts = parts
                    .iter()
                    .map(|p| match p {
                        ast::InterpPart::Text(t) => {
                            Expr::new(ExprKind::Str(t.clone()), Ty::Str, span)
                        }
                        ast::InterpPart::Expr(e) => self.expr(e),
                    })
                    .collect();
                Expr::new(ExprKind::Concat(parts), Ty::Str, span)
            }
            ast::ExprKind::Name(id) => self.name(id),
            ast::ExprKind::List(items) => {
                let items = self.args(items);
                let t = Self::same_type(&items);
                let t = match t {
                    Ty::StrLit(_) => Ty::Str,
                    t => t,
                };
                Expr::new(ExprKind::List(items), Ty::List(Box::new(t)), span)
            }
            ast::ExprKind::Record(fields) => {
                let mut out: Vec<(String, Expr)> = Vec::new();
                for (name, value) in fields {
                    let v = self.expr(value);
                    if out.iter().any(|(n, _)| *n == name.name) {
                        self.error(
                            "E0202",
                            format!("field `{}` is given twice", name.name),
                            name.span,
                        )
                        .label = "given again here".into();
                        continue;
                    }
                    out.push((name.name.clone(), v));
                }
                let ty = Ty::Record(out.iter().map(|(n, e)| (n.clone(), e.ty.clone())).collect());
                Expr::new(ExprKind::Record(out), ty, span)
            }
            ast::ExprKind::Map(kvs) => {
                let mut out = Vec::new();
                for (k, v) in kvs {
                    let k = self.expr(k);
                    let v = self.expr(v);
                    out.push((k, v));
                }
                let values: Vec<Expr> = out.iter().map(|(_, v)| v.clone()).collect();
                let t = match Self::same_type(&values) {
                    Ty::StrLit(_) => Ty::Str,
                    t => t,
                };
                Expr::new(ExprKind::Map(out), Ty::Map(Box::new(t)), span)
            }
            ast::ExprKind::Unary(op, inner) => {
                let inner = self.expr(inner);
                match op {
                    ast::UnOp::Neg => {
                        // Fold `-5` so that it is a constant, not a negation at run time.
                        match inner.kind {
                            ExprKind::Int(i) => {
                                return Expr::new(ExprKind::Int(i.wrapping_neg()), Ty::Int, span)
                            }
                            ExprKind::Float(f) => {
                                return Expr::new(ExprKind::Float(-f), Ty::Float, span)
                            }
                            _ => {}
                        }
                        let ty = match typeck::negate(&self.types, &inner.ty) {
                            Ok(t) => t,
                            Err(f) => {
                                self.fault("E0302", "invalid operand to `-`", span, f);
                                Ty::Any
                            }
                        };
                        Expr::new(ExprKind::Neg(Box::new(inner)), ty, span)
                    }
                    ast::UnOp::Not => {
                        if let Err(f) = typeck::condition(&self.types, &inner.ty) {
                            self.fault("E0303", "operand of `not` is not a bool", inner.span, f);
                        }
                        Expr::new(ExprKind::Not(Box::new(inner)), Ty::Bool, span)
                    }
                }
            }
            ast::ExprKind::Binary(op, a, b) => {
                let a = self.expr(a);
                let b = self.expr(b);
                self.binary(*op, a, b, span)
            }
            ast::ExprKind::Logic(op, a, b) => {
                let a = self.condition(a);
                let b = self.condition(b);
                let kind = match op {
                    ast::LogicOp::And => ExprKind::And(Box::new(a), Box::new(b)),
                    ast::LogicOp::Or => ExprKind::Or(Box::new(a), Box::new(b)),
                };
                Expr::new(kind, Ty::Bool, span)
            }
            ast::ExprKind::Call(callee, args) => self.call(callee, args, span),
            ast::ExprKind::Field(obj, name) => {
                match self.as_module(obj) {
                    Some(Some(m)) => {
                        let module_name = match &obj.kind {
                            ast::ExprKind::Name(id) => id.name.clone(),
                            _ => String::new(),
                        };
                        return match self.member(m, &module_name, name) {
                            Some(def) => self.global_value(def, &name.name, span),
                            None => Self::poison(span),
                        };
                    }
                    Some(None) => return Self::poison(span),
                    None => {}
                }
                let obj = self.expr(obj);
                self.field_of(obj, name)
            }
            ast::ExprKind::Index(obj, key) => {
                let obj = self.expr(obj);
                let key = self.expr(key);
                let ty = match typeck::index(&self.types, &obj.ty, &key.ty) {
                    Ok(t) => t,
                    Err(f) => {
                        self.fault("E0307", "invalid index", key.span.to(obj.span), f);
                        Ty::Any
                    }
                };
                Expr::new(ExprKind::Index(Box::new(obj), Box::new(key)), ty, span)
            }
            ast::ExprKind::Slice(obj, lo, hi) => {
                let obj = self.expr(obj);
                let lo = lo.as_ref().map(|e| Box::new(self.int_operand(e)));
                let hi = hi.as_ref().map(|e| Box::new(self.int_operand(e)));
                let ty = match typeck::slice(&self.types, &obj.ty) {
                    Ok(t) => t,
                    Err(f) => {
                        self.fault("E0307", "invalid slice", obj.span, f);
                        Ty::Any
                    }
                };
                Expr::new(ExprKind::Slice(Box::new(obj), lo, hi), ty, span)
            }
            ast::ExprKind::Range(lo, hi) => {
                let lo = self.int_operand(lo);
                let hi = self.int_operand(hi);
                Expr::new(ExprKind::Range(Box::new(lo), Box::new(hi)), Ty::Range, span)
            }
            ast::ExprKind::Lambda(decl) => {
                let idx = self.lambda(decl);
                Expr::new(ExprKind::Closure(idx), Ty::Func, span)
            }
            ast::ExprKind::Llm(l) => self.llm(l, span),
            ast::ExprKind::Spawn(call) => self.spawn(call, span),
            ast::ExprKind::Await(task) => self.await_task(task, span),
        }
    }
}

/// Which function on the stack owns a variable.
#[derive(Clone, Copy, Debug)]
struct VarRef {
    depth: usize,
    var: VarId,
}

/// Whether running the statements always ends in `return` or `throw` (a conservative test:
/// loops are assumed to exit).
fn always_leaves(stmts: &[ast::Stmt]) -> bool {
    stmts.last().is_some_and(|s| match &s.kind {
        ast::StmtKind::Return(_) | ast::StmtKind::Throw(_) => true,
        ast::StmtKind::If {
            then,
            els: Some(els),
            ..
        } => {
            always_leaves(&then.stmts)
                && match els {
                    ast::Else::Block(b) => always_leaves(&b.stmts),
                    ast::Else::If(s) => always_leaves(std::slice::from_ref(s)),
                }
        }
        ast::StmtKind::Try { body, handler, .. } => {
            always_leaves(&body.stmts) && always_leaves(&handler.stmts)
        }
        ast::StmtKind::While { cond, body } => {
            // `while true { ... }` without `break` leaves only through return or throw.
            matches!(cond.kind, ast::ExprKind::Bool(true)) && !has_break(&body.stmts)
        }
        _ => false,
    })
}

fn has_break(stmts: &[ast::Stmt]) -> bool {
    stmts.iter().any(|s| match &s.kind {
        ast::StmtKind::Break => true,
        ast::StmtKind::If { then, els, .. } => {
            has_break(&then.stmts)
                || match els {
                    Some(ast::Else::Block(b)) => has_break(&b.stmts),
                    Some(ast::Else::If(s)) => has_break(std::slice::from_ref(s)),
                    None => false,
                }
        }
        ast::StmtKind::Try { body, handler, .. } => {
            has_break(&body.stmts) || has_break(&handler.stmts)
        }
        _ => false,
    })
}

/// Whether a declared return type of `main` can be an exit status: `int`, `int?` or `null`.
fn is_exit_status_type(t: &ast::TypeExpr) -> bool {
    match &t.kind {
        ast::TypeKind::Name(path) => {
            matches!(path.as_slice(), [one] if one.name == "int" || one.name == "null")
        }
        ast::TypeKind::Optional(inner) => is_exit_status_type(inner),
        _ => false,
    }
}
