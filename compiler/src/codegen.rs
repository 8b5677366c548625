//! IR to register bytecode. Locals get a register for the extent of their scope; temporaries
//! are allocated stack-like above the live locals and released after each statement, so a
//! frame needs only as many registers as the deepest nesting of live values. Expressions are
//! compiled straight into their destination register where that is safe, and string, constant
//! and type pools are deduplicated.

use std::collections::HashMap;

use aivm_vm::format::{
    Constant, Export, Field, Flow, Function, Instr, LineEntry, ModelSlot, Module, Operand, Param,
    Reg, RegRange, StrId, TypeDesc, TypeId, DATAFLOW_BUDGET_WORDS, LLM_CALL,
};

use crate::ast::Span;
use crate::diagnostic::{Diagnostic, SourceMap};
use crate::ir::{
    BinOp, Capture, Expr, ExprKind, Func, FuncIdx, Place, Program, Relabel, Stmt, StmtKind, VarId,
};
use crate::types::{Conf, Ty, TypeTable};

/// A jump target not known yet; every one is patched before the function is finished.
const UNPATCHED: u32 = u32::MAX;

/// The most registers a frame can have: `nregs` is a `u16`.
const MAX_REGS: Reg = Reg::MAX;

/// Builds the module-wide pools while functions are generated.
struct Pools<'a> {
    module: Module,
    strings: HashMap<String, StrId>,
    ints: HashMap<i64, u32>,
    floats: HashMap<u64, u32>,
    strs: HashMap<StrId, u32>,
    shapes: HashMap<Vec<StrId>, u32>,
    natives: HashMap<String, u32>,
    aliases: HashMap<u32, TypeId>,
    types: &'a TypeTable,
}

impl Pools<'_> {
    fn string(&mut self, s: &str) -> StrId {
        if let Some(id) = self.strings.get(s) {
            return *id;
        }
        let id = self.module.strings.len() as StrId;
        self.module.strings.push(s.to_string());
        self.strings.insert(s.to_string(), id);
        id
    }

    fn push_const(&mut self, c: Constant) -> u32 {
        self.module.constants.push(c);
        (self.module.constants.len() - 1) as u32
    }

    fn int(&mut self, i: i64) -> u32 {
        if let Some(k) = self.ints.get(&i) {
            return *k;
        }
        let k = self.push_const(Constant::Int(i));
        self.ints.insert(i, k);
        k
    }

    fn float(&mut self, f: f64) -> u32 {
        if let Some(k) = self.floats.get(&f.to_bits()) {
            return *k;
        }
        let k = self.push_const(Constant::Float(f));
        self.floats.insert(f.to_bits(), k);
        k
    }

    fn str_const(&mut self, s: &str) -> u32 {
        let id = self.string(s);
        if let Some(k) = self.strs.get(&id) {
            return *k;
        }
        let k = self.push_const(Constant::Str(id));
        self.strs.insert(id, k);
        k
    }

    fn shape(&mut self, names: &[String]) -> u32 {
        let ids: Vec<StrId> = names.iter().map(|n| self.string(n)).collect();
        if let Some(k) = self.shapes.get(&ids) {
            return *k;
        }
        let k = self.push_const(Constant::Shape(ids.clone()));
        self.shapes.insert(ids, k);
        k
    }

    /// A readers constant: the names sorted, each once (`None`: public).
    fn readers(&mut self, names: Option<&[String]>) -> u32 {
        let ids = names.map(|names| {
            let set: std::collections::BTreeSet<&String> = names.iter().collect();
            set.into_iter().map(|n| self.string(n)).collect::<Vec<_>>()
        });
        let c = Constant::Readers(ids);
        match self.module.constants.iter().position(|k| *k == c) {
            Some(k) => k as u32,
            None => self.push_const(c),
        }
    }

    fn native(&mut self, name: &str) -> u32 {
        if let Some(n) = self.natives.get(name) {
            return *n;
        }
        let id = self.string(name);
        self.module.natives.push(id);
        let n = (self.module.natives.len() - 1) as u32;
        self.natives.insert(name.to_string(), n);
        n
    }

    fn intern_type(&mut self, desc: TypeDesc) -> TypeId {
        if let Some(i) = self.module.types.iter().position(|t| *t == desc) {
            return i as TypeId;
        }
        self.module.types.push(desc);
        (self.module.types.len() - 1) as TypeId
    }

    /// The type table entry describing `ty` (named aliases keep their name and doc).
    fn ty(&mut self, ty: &Ty) -> TypeId {
        let desc = match ty {
            // The format has no descriptor for task handles (nor ranges): not checked.
            Ty::Any | Ty::Never | Ty::Range | Ty::Task => TypeDesc::Any,
            Ty::Null => TypeDesc::Null,
            Ty::Bool => TypeDesc::Bool,
            Ty::Int => TypeDesc::Int,
            Ty::Float => TypeDesc::Float,
            Ty::Str => TypeDesc::Str,
            Ty::Func => TypeDesc::Func,
            Ty::Error => TypeDesc::Error,
            Ty::StrLit(s) => TypeDesc::StrLit(self.string(s)),
            Ty::List(t) => TypeDesc::List(self.ty(t)),
            Ty::Map(t) => TypeDesc::Map(self.ty(t)),
            Ty::Optional(t) => TypeDesc::Optional(self.ty(t)),
            Ty::Union(ms) => TypeDesc::Union(ms.iter().map(|m| self.ty(m)).collect()),
            Ty::Record(fields) => TypeDesc::Record(
                fields
                    .iter()
                    .map(|(n, t)| Field {
                        name: self.string(n),
                        ty: self.ty(t),
                    })
                    .collect(),
            ),
            Ty::Named(id, _) => {
                if let Some(t) = self.aliases.get(id) {
                    return *t;
                }
                let types = self.types;
                let Some(alias) = types.aliases.get(*id as usize) else {
                    return self.intern_type(TypeDesc::Any);
                };
                // Reserve the slot first: a recursive alias refers to itself through it.
                let slot = self.module.types.len() as TypeId;
                self.module.types.push(TypeDesc::Any);
                self.aliases.insert(*id, slot);
                let inner = self.ty(&alias.ty);
                let name = self.string(&alias.name);
                let doc = alias.doc.as_deref().map(|d| self.string(d));
                if let Some(t) = self.module.types.get_mut(slot as usize) {
                    *t = TypeDesc::Named {
                        name,
                        ty: inner,
                        doc,
                    };
                }
                return slot;
            }
        };
        self.intern_type(desc)
    }
}

/// Generates the bytecode module of a checked program, or the E0401 errors of functions too
/// large for the bytecode format or the verifier.
pub fn generate(
    prog: &Program,
    types: &TypeTable,
    sources: &SourceMap,
) -> Result<Module, Vec<Diagnostic>> {
    let mut pools = Pools {
        module: Module::default(),
        strings: HashMap::new(),
        ints: HashMap::new(),
        floats: HashMap::new(),
        strs: HashMap::new(),
        shapes: HashMap::new(),
        natives: HashMap::new(),
        aliases: HashMap::new(),
        types,
    };
    for f in &sources.files {
        let id = pools.string(&f.name);
        pools.module.files.push(id);
    }
    // Every alias goes into the type table, used or not: later stages turn them into schemas.
    for (i, a) in types.aliases.iter().enumerate() {
        pools.ty(&Ty::Named(i as u32, a.name.clone()));
    }
    let mut errors = Vec::new();
    for func in &prog.funcs {
        match FnGen::new(&mut pools, prog, func, sources).run() {
            Ok(f) => pools.module.functions.push(f),
            Err(d) => errors.push(*d),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for shape in &prog.shapes {
        pools.shape(shape);
    }
    pools.module.entry = prog.entry;
    // One slot per logical name (the verifier rejects duplicates); the first name is kept.
    for m in &prog.models {
        let logical = pools.string(&m.logical);
        if pools.module.models.iter().all(|s| s.logical != logical) {
            let name = pools.string(&m.name);
            pools.module.models.push(ModelSlot { name, logical });
        }
    }
    for (name, func) in &prog.exports {
        let name = pools.string(name);
        pools.module.exports.push(Export { name, func: *func });
    }
    Ok(pools.module)
}

/// The E0401 error of a function too large to compile.
fn too_large(func: &Func, at: u32, why: String) -> Box<Diagnostic> {
    let what = if func.name.is_empty() {
        "this function".to_string()
    } else {
        format!("function `{}`", func.name)
    };
    let at = at as usize;
    Box::new(
        Diagnostic::error(
            "E0401",
            format!("{what} is too large to compile"),
            func.file,
            Span::new(at, at),
        )
        .with_label(why)
        .with_help("split it into smaller functions, or build large lists in a loop"),
    )
}

/// The number of basic blocks the verifier will see in `code`, as it counts them.
fn basic_blocks(code: &[Instr]) -> usize {
    let mut leader = vec![false; code.len() + 1];
    if let Some(first) = leader.first_mut() {
        *first = true;
    }
    for (pc, i) in code.iter().enumerate() {
        if i.opcode().info().flow != Flow::Next {
            leader[pc + 1] = true;
        }
        for o in i.operands() {
            if let Operand::Target(t) = o {
                if let Some(l) = leader.get_mut(t as usize) {
                    *l = true;
                }
            }
        }
    }
    leader.iter().take(code.len()).filter(|l| **l).count()
}

/// An enclosing loop: where `break` and `continue` jumps go.
struct LoopCtx {
    breaks: Vec<usize>,
    continues: Vec<usize>,
    /// Protected regions open when the loop started (jumps out of inner ones close them).
    try_depth: usize,
}

struct FnGen<'a, 'p> {
    pools: &'a mut Pools<'p>,
    prog: &'a Program,
    func: &'a Func,
    sources: &'a SourceMap,
    code: Vec<Instr>,
    lines: Vec<LineEntry>,
    regs: Vec<Reg>,
    top: Reg,
    max: Reg,
    loops: Vec<LoopCtx>,
    try_depth: usize,
    /// Set just before `expr_to` when its destination is a register nothing else uses yet, so
    /// a call may place its arguments from that register on.
    fresh: Option<Reg>,
    /// Where the function first needed more registers than a frame can have.
    too_many_regs: Option<u32>,
    /// The source offset of the statement or call being compiled.
    at: u32,
}

impl<'a, 'p> FnGen<'a, 'p> {
    fn new(
        pools: &'a mut Pools<'p>,
        prog: &'a Program,
        func: &'a Func,
        sources: &'a SourceMap,
    ) -> Self {
        FnGen {
            pools,
            prog,
            func,
            sources,
            code: Vec::new(),
            lines: Vec::new(),
            regs: vec![0; func.vars.len()],
            top: 0,
            max: 0,
            loops: Vec::new(),
            try_depth: 0,
            fresh: None,
            too_many_regs: None,
            at: func.span.start,
        }
    }

    fn run(mut self) -> Result<Function, Box<Diagnostic>> {
        let func = self.func;
        self.mark(func.span.start);
        for (i, v) in func.params.iter().enumerate() {
            self.set_reg(*v, i as Reg);
        }
        self.top = func.params.len() as Reg;
        self.max = self.top;
        for (i, (v, ty)) in func.params.iter().zip(&func.param_tys).enumerate() {
            if !ty.is_any() {
                let t = self.pools.ty(ty);
                self.emit(Instr::CheckType {
                    src: i as Reg,
                    ty: t,
                });
            }
            if self.is_cell(*v) {
                self.emit(Instr::CellNew {
                    dst: i as Reg,
                    src: i as Reg,
                });
            }
        }
        self.stmts(&func.body);
        // The implicit `return null` at the end: also the landing place of jumps past the last
        // statement. Left out when nothing reaches it (the body ends in `return` or `throw`).
        if self.end_is_reachable() {
            let r = self.alloc();
            self.emit(Instr::LoadNull { dst: r });
            if self.pools.types.conforms(&Ty::Null, &func.ret) != Conf::Yes {
                let t = self.pools.ty(&func.ret);
                self.emit(Instr::CheckType { src: r, ty: t });
            }
            self.emit(Instr::Return { src: r });
        } else {
            let end = self.pc();
            self.lines.retain(|e| e.pc < end);
        }

        let name = self.pools.string(&func.name);
        let params = func
            .params
            .iter()
            .zip(&func.param_tys)
            .map(|(v, t)| {
                let vname = func.vars.get(*v as usize).map_or("", |v| v.name.as_str());
                Param {
                    name: self.pools.string(vname),
                    ty: self.pools.ty(t),
                }
            })
            .collect();
        if let Some(at) = self.too_many_regs {
            return Err(too_large(
                func,
                at,
                format!("here it needs more than {MAX_REGS} registers (live values, list items, arguments)"),
            ));
        }
        let blocks = basic_blocks(&self.code);
        let words = usize::from(self.max).div_ceil(64).max(1);
        if blocks.saturating_mul(words) > DATAFLOW_BUDGET_WORDS {
            return Err(too_large(
                func,
                func.span.start,
                format!(
                    "its {blocks} branches with {} registers exceed what the verifier checks",
                    self.max
                ),
            ));
        }
        let ret = self.pools.ty(&func.ret);
        let doc = func.doc.as_deref().map(|d| self.pools.string(d));
        Ok(Function {
            name,
            params,
            ret,
            nregs: self.max,
            ncaps: func.captures.len() as u16,
            code: self.code,
            lines: self.lines,
            file: Some(func.file),
            doc,
        })
    }

    // ---- registers and code -------------------------------------------------------------

    fn alloc(&mut self) -> Reg {
        if self.top == MAX_REGS {
            // Past the frame size a register number can express: the function is reported as
            // too large and its code discarded, so any register will do from here on.
            self.too_many_regs.get_or_insert(self.at);
            return MAX_REGS - 1;
        }
        let r = self.top;
        self.top += 1;
        self.max = self.max.max(self.top);
        r
    }

    fn set_reg(&mut self, v: VarId, r: Reg) {
        if let Some(slot) = self.regs.get_mut(v as usize) {
            *slot = r;
        }
    }

    fn reg(&self, v: VarId) -> Reg {
        self.regs.get(v as usize).copied().unwrap_or(0)
    }

    fn is_cell(&self, v: VarId) -> bool {
        self.func.vars.get(v as usize).is_some_and(|v| v.captured)
    }

    fn emit(&mut self, i: Instr) -> usize {
        self.code.push(i);
        self.code.len() - 1
    }

    fn pc(&self) -> u32 {
        self.code.len() as u32
    }

    /// Whether control can reach the end of the code emitted so far: by falling off the last
    /// instruction, or by a jump (or a `try` handler) that targets the end.
    fn end_is_reachable(&self) -> bool {
        let end = self.pc();
        let falls_off = self
            .code
            .last()
            .is_none_or(|i| matches!(i.opcode().info().flow, Flow::Next | Flow::Branch));
        falls_off
            || self.code.iter().any(|i| {
                i.operands()
                    .iter()
                    .any(|o| matches!(o, Operand::Target(t) if *t == end))
            })
    }

    fn patch(&mut self, at: usize, target: u32) {
        if let Some(i) = self.code.get_mut(at) {
            *i = i.map_targets(|_| target);
        }
    }

    fn patch_here(&mut self, jumps: &[usize]) {
        let here = self.pc();
        for j in jumps {
            self.patch(*j, here);
        }
    }

    /// Records the source position of the code emitted from here on.
    fn mark(&mut self, offset: u32) {
        self.at = offset;
        let (line, col) = self.sources.line_col(self.func.file, offset);
        let pc = self.pc();
        if let Some(last) = self.lines.last_mut() {
            if last.line == line && last.col == col {
                return;
            }
            if last.pc == pc {
                *last = LineEntry { pc, line, col };
                return;
            }
        }
        self.lines.push(LineEntry { pc, line, col });
    }

    // ---- statements ---------------------------------------------------------------------

    fn stmts(&mut self, stmts: &[Stmt]) {
        let save = self.top;
        for s in stmts {
            self.stmt(s);
        }
        self.top = save;
    }

    fn stmt(&mut self, s: &Stmt) {
        self.mark(s.span.start);
        match &s.kind {
            StmtKind::Let { var, value, check } => {
                let r = self.alloc();
                self.fresh = Some(r);
                self.expr_to(value, r);
                self.top = r.saturating_add(1);
                if let Some(ty) = check {
                    let t = self.pools.ty(ty);
                    self.emit(Instr::CheckType { src: r, ty: t });
                }
                if self.is_cell(*var) {
                    self.emit(Instr::CellNew { dst: r, src: r });
                }
                self.set_reg(*var, r);
            }
            StmtKind::Assign {
                place,
                value,
                check,
            } => {
                let save = self.top;
                match place {
                    Place::Local(v) if !self.is_cell(*v) => {
                        let r = self.reg(*v);
                        if check.is_some() || writes_early(value) {
                            let t = self.alloc();
                            self.expr_to(value, t);
                            self.check(t, check);
                            self.emit(Instr::Move { dst: r, src: t });
                        } else {
                            self.expr_to(value, r);
                        }
                    }
                    Place::Local(v) => {
                        let t = self.expr_any(value);
                        self.check(t, check);
                        let cell = self.reg(*v);
                        self.emit(Instr::CellSet { cell, src: t });
                    }
                    Place::Upval(i) => {
                        let t = self.expr_any(value);
                        self.check(t, check);
                        self.emit(Instr::UpvalSet { idx: *i, src: t });
                    }
                }
                self.top = save;
            }
            StmtKind::SetField {
                obj,
                name,
                value,
                check,
            } => {
                let save = self.top;
                let o = self.expr_any(obj);
                let v = self.expr_any(value);
                self.check(v, check);
                let name = self.pools.string(name);
                self.emit(Instr::SetField {
                    obj: o,
                    name,
                    src: v,
                });
                self.top = save;
            }
            StmtKind::SetIndex { obj, key, value } => {
                let save = self.top;
                let o = self.expr_any(obj);
                let k = self.expr_any(key);
                let v = self.expr_any(value);
                self.emit(Instr::SetIndex {
                    obj: o,
                    key: k,
                    src: v,
                });
                self.top = save;
            }
            StmtKind::Expr(e) => {
                let save = self.top;
                let r = self.alloc();
                self.fresh = Some(r);
                self.expr_to(e, r);
                self.top = save;
            }
            StmtKind::Block(stmts) => self.stmts(stmts),
            StmtKind::If { cond, then, els } => {
                let falses = self.cond_jump(cond, false);
                self.stmts(then);
                if els.is_empty() {
                    self.patch_here(&falses);
                } else {
                    let end = self.emit(Instr::Jump { target: UNPATCHED });
                    self.patch_here(&falses);
                    self.stmts(els);
                    self.patch_here(&[end]);
                }
            }
            StmtKind::While { cond, body } => {
                let start = self.pc();
                let exits = self.cond_jump(cond, false);
                self.loop_body(body);
                let ctx = self.loops.pop();
                self.emit(Instr::Jump { target: start });
                self.patch_here(&exits);
                if let Some(ctx) = ctx {
                    self.patch_here(&ctx.breaks);
                    for c in ctx.continues {
                        self.patch(c, start);
                    }
                }
            }
            StmtKind::ForRange { var, lo, hi, body } => {
                let save = self.top;
                let counter = self.alloc();
                self.expr_to(lo, counter);
                let end = self.alloc();
                self.expr_to(hi, end);
                self.top = end.saturating_add(1);
                // The fast path never builds a `Range`, so it checks the bounds itself: a bound
                // not statically an int (an `any`) must be an int at run time, as `Range` wants.
                for (r, e) in [(counter, lo), (end, hi)] {
                    if e.ty != Ty::Int {
                        let t = self.pools.ty(&Ty::Int);
                        self.emit(Instr::CheckType { src: r, ty: t });
                    }
                }
                let start = self.pc();
                let exit = self.emit(Instr::JumpIfNotLt {
                    a: counter,
                    b: end,
                    target: UNPATCHED,
                });
                let assigned = self
                    .func
                    .vars
                    .get(*var as usize)
                    .is_some_and(|v| v.assigned);
                if self.is_cell(*var) {
                    let r = self.alloc();
                    self.emit(Instr::CellNew {
                        dst: r,
                        src: counter,
                    });
                    self.set_reg(*var, r);
                } else if assigned {
                    // The body may change its copy; the loop keeps counting on its own.
                    let r = self.alloc();
                    self.emit(Instr::Move {
                        dst: r,
                        src: counter,
                    });
                    self.set_reg(*var, r);
                } else {
                    self.set_reg(*var, counter);
                }
                self.loop_body(body);
                let ctx = self.loops.pop();
                let next = self.pc();
                self.emit(Instr::AddImm {
                    dst: counter,
                    src: counter,
                    imm: 1,
                });
                self.emit(Instr::Jump { target: start });
                self.patch_here(&[exit]);
                if let Some(ctx) = ctx {
                    self.patch_here(&ctx.breaks);
                    for c in ctx.continues {
                        self.patch(c, next);
                    }
                }
                self.top = save;
            }
            StmtKind::ForIter {
                first,
                second,
                iter,
                body,
            } => {
                let save = self.top;
                let src = self.expr_any(iter);
                let it = self.alloc();
                self.emit(Instr::IterNew { dst: it, src });
                let a = self.alloc();
                let b = second.map(|_| self.alloc());
                let start = self.pc();
                let exit = match b {
                    Some(b) => self.emit(Instr::IterNext2 {
                        key: a,
                        val: b,
                        iter: it,
                        target: UNPATCHED,
                    }),
                    None => self.emit(Instr::IterNext {
                        dst: a,
                        iter: it,
                        target: UNPATCHED,
                    }),
                };
                for (v, r) in std::iter::once((*first, a)).chain(second.zip(b)) {
                    if self.is_cell(v) {
                        self.emit(Instr::CellNew { dst: r, src: r });
                    }
                    self.set_reg(v, r);
                }
                self.loop_body(body);
                let ctx = self.loops.pop();
                self.emit(Instr::Jump { target: start });
                self.patch_here(&[exit]);
                if let Some(ctx) = ctx {
                    self.patch_here(&ctx.breaks);
                    for c in ctx.continues {
                        self.patch(c, start);
                    }
                }
                self.top = save;
            }
            StmtKind::Break | StmtKind::Continue => {
                let depth = self.loops.last().map_or(0, |l| l.try_depth);
                for _ in depth..self.try_depth {
                    self.emit(Instr::TryEnd {});
                }
                let j = self.emit(Instr::Jump { target: UNPATCHED });
                if let Some(l) = self.loops.last_mut() {
                    if matches!(s.kind, StmtKind::Break) {
                        l.breaks.push(j);
                    } else {
                        l.continues.push(j);
                    }
                }
            }
            StmtKind::Return { value, check } => {
                let save = self.top;
                let r = match value {
                    Some(v) => self.expr_any(v),
                    None => {
                        let r = self.alloc();
                        self.emit(Instr::LoadNull { dst: r });
                        r
                    }
                };
                self.check(r, check);
                for _ in 0..self.try_depth {
                    self.emit(Instr::TryEnd {});
                }
                self.emit(Instr::Return { src: r });
                self.top = save;
            }
            StmtKind::Throw(e) => {
                let save = self.top;
                let r = self.expr_any(e);
                self.emit(Instr::Throw { src: r });
                self.top = save;
            }
            StmtKind::Try { body, var, handler } => {
                let save = self.top;
                let err = self.alloc();
                let begin = self.emit(Instr::TryBegin {
                    err,
                    handler: UNPATCHED,
                });
                self.try_depth += 1;
                self.stmts(body);
                self.try_depth -= 1;
                self.emit(Instr::TryEnd {});
                let end = self.emit(Instr::Jump { target: UNPATCHED });
                self.patch_here(&[begin]);
                if self.is_cell(*var) {
                    self.emit(Instr::CellNew { dst: err, src: err });
                }
                self.set_reg(*var, err);
                self.stmts(handler);
                self.patch_here(&[end]);
                self.top = save;
            }
            StmtKind::LocalFn { var, func } => {
                let r = self.alloc();
                self.set_reg(*var, r);
                if self.is_cell(*var) {
                    // The closure captures its own cell, so the cell exists before it.
                    self.emit(Instr::LoadNull { dst: r });
                    self.emit(Instr::CellNew { dst: r, src: r });
                    let t = self.alloc();
                    self.closure(*func, t);
                    self.emit(Instr::CellSet { cell: r, src: t });
                } else {
                    self.closure(*func, r);
                }
                self.top = r.saturating_add(1);
            }
        }
    }

    fn loop_body(&mut self, body: &[Stmt]) {
        self.loops.push(LoopCtx {
            breaks: Vec::new(),
            continues: Vec::new(),
            try_depth: self.try_depth,
        });
        self.stmts(body);
    }

    fn check(&mut self, r: Reg, check: &Option<Ty>) {
        if let Some(ty) = check {
            let t = self.pools.ty(ty);
            self.emit(Instr::CheckType { src: r, ty: t });
        }
    }

    /// Emits a test of `e` that jumps when its value equals `when`, and falls through
    /// otherwise; returns the jumps to patch.
    fn cond_jump(&mut self, e: &Expr, when: bool) -> Vec<usize> {
        let save = self.top;
        let jumps = match &e.kind {
            ExprKind::Not(inner) => self.cond_jump(inner, !when),
            ExprKind::And(a, b) => {
                if when {
                    let skip = self.cond_jump(a, false);
                    let out = self.cond_jump(b, true);
                    self.patch_here(&skip);
                    out
                } else {
                    let mut out = self.cond_jump(a, false);
                    out.extend(self.cond_jump(b, false));
                    out
                }
            }
            ExprKind::Or(a, b) => {
                if when {
                    let mut out = self.cond_jump(a, true);
                    out.extend(self.cond_jump(b, true));
                    out
                } else {
                    let skip = self.cond_jump(a, true);
                    let out = self.cond_jump(b, false);
                    self.patch_here(&skip);
                    out
                }
            }
            ExprKind::Binary {
                op: BinOp::Lt,
                a,
                b,
                swapped,
            } if !when => {
                let ra = self.expr_any(a);
                let rb = self.expr_any(b);
                let (a, b) = if *swapped { (rb, ra) } else { (ra, rb) };
                vec![self.emit(Instr::JumpIfNotLt {
                    a,
                    b,
                    target: UNPATCHED,
                })]
            }
            _ => {
                let r = self.expr_any(e);
                let j = if when {
                    Instr::JumpIf {
                        cond: r,
                        target: UNPATCHED,
                    }
                } else {
                    Instr::JumpIfNot {
                        cond: r,
                        target: UNPATCHED,
                    }
                };
                vec![self.emit(j)]
            }
        };
        self.top = save;
        jumps
    }

    // ---- expressions --------------------------------------------------------------------

    /// Compiles `e` and returns the register holding its value: a plain local's own register,
    /// or a new temporary (released by the caller resetting `top`).
    fn expr_any(&mut self, e: &Expr) -> Reg {
        if let ExprKind::Var(Place::Local(v)) = e.kind {
            if !self.is_cell(v) {
                return self.reg(v);
            }
        }
        let r = self.alloc();
        self.fresh = Some(r);
        self.expr_to(e, r);
        r
    }

    /// Compiles the first operand of an instruction that writes `dst`: into `dst` itself when
    /// `dst` is fresh (it is written only by the final instruction, after every operand is
    /// read), else as [`Self::expr_any`] does.
    /// A label instruction on `inner`, into `dst`. Out of line: `expr_to` recurses with the
    /// depth of nested expressions and must keep its frame small.
    #[inline(never)]
    fn relabel(&mut self, e: &Expr, op: &Relabel, inner: &Expr, dst: Reg, fresh: bool) {
        let src = self.first_operand(inner, dst, fresh);
        self.mark(e.span.start);
        let ins = match op {
            Relabel::Classify(names) => Instr::Classify {
                dst,
                src,
                readers: self.pools.readers(Some(names)),
            },
            Relabel::Declassify(names) => Instr::Declassify {
                dst,
                src,
                readers: self.pools.readers(names.as_deref()),
            },
            Relabel::Endorse => Instr::Endorse { dst, src },
            Relabel::EndorseNarrow(ty) => Instr::EndorseNarrow {
                dst,
                src,
                ty: self.pools.ty(ty),
            },
        };
        self.emit(ins);
    }

    fn first_operand(&mut self, e: &Expr, dst: Reg, fresh: bool) -> Reg {
        if let ExprKind::Var(Place::Local(v)) = e.kind {
            if !self.is_cell(v) {
                return self.reg(v);
            }
        }
        if fresh {
            self.fresh = Some(dst);
            self.expr_to(e, dst);
            return dst;
        }
        self.expr_any(e)
    }

    /// Compiles the expressions into consecutive new registers (call arguments, list items).
    fn expr_range(&mut self, items: &[&Expr]) -> RegRange {
        let start = self.top;
        for it in items {
            let r = self.alloc();
            self.fresh = Some(r);
            self.expr_to(it, r);
            // Temporaries of one item are dead once its value is in place.
            self.top = r.saturating_add(1);
        }
        RegRange::new(start, items.len() as u16)
    }

    fn expr_to(&mut self, e: &Expr, dst: Reg) {
        let fresh = self.fresh.take() == Some(dst);
        let save = self.top.max(dst.saturating_add(1));
        self.top = save;
        // A call reads its arguments before writing its result, so into a fresh destination
        // the arguments can start at the destination itself.
        let args_from_dst = fresh && dst.saturating_add(1) == self.top;
        match &e.kind {
            ExprKind::Null => {
                self.emit(Instr::LoadNull { dst });
            }
            ExprKind::Bool(true) => {
                self.emit(Instr::LoadTrue { dst });
            }
            ExprKind::Bool(false) => {
                self.emit(Instr::LoadFalse { dst });
            }
            ExprKind::Int(i) => match i32::try_from(*i) {
                Ok(imm) => {
                    self.emit(Instr::LoadInt { dst, imm });
                }
                Err(_) => {
                    let k = self.pools.int(*i);
                    self.emit(Instr::LoadConst { dst, k });
                }
            },
            ExprKind::Float(f) => {
                let k = self.pools.float(*f);
                self.emit(Instr::LoadConst { dst, k });
            }
            ExprKind::Str(s) => {
                let k = self.pools.str_const(s);
                self.emit(Instr::LoadConst { dst, k });
            }
            ExprKind::Var(Place::Local(v)) => {
                let r = self.reg(*v);
                if self.is_cell(*v) {
                    self.emit(Instr::CellGet { dst, cell: r });
                } else if r != dst {
                    self.emit(Instr::Move { dst, src: r });
                }
            }
            ExprKind::Var(Place::Upval(i)) => {
                self.emit(Instr::UpvalGet { dst, idx: *i });
            }
            ExprKind::Func(f) => {
                self.emit(Instr::LoadFunc { dst, func: *f });
            }
            ExprKind::Closure(f) => self.closure(*f, dst),
            ExprKind::Concat(parts) => match parts.as_slice() {
                [] => {
                    let k = self.pools.str_const("");
                    self.emit(Instr::LoadConst { dst, k });
                }
                [lit @ Expr {
                    kind: ExprKind::Str(_),
                    ..
                }] => self.expr_to(lit, dst),
                [one] => {
                    let r = self.first_operand(one, dst, fresh);
                    self.emit(Instr::ToStr { dst, src: r });
                }
                _ => {
                    let parts: Vec<&Expr> = parts.iter().collect();
                    let range = self.expr_range(&parts);
                    self.emit(Instr::Concat { dst, parts: range });
                }
            },
            ExprKind::List(items) => {
                let items: Vec<&Expr> = items.iter().collect();
                let range = self.expr_range(&items);
                self.emit(Instr::NewList { dst, items: range });
            }
            ExprKind::Map(kvs) => {
                let items: Vec<&Expr> = kvs.iter().flat_map(|(k, v)| [k, v]).collect();
                let range = self.expr_range(&items);
                self.emit(Instr::NewMap { dst, kvs: range });
            }
            ExprKind::Record(fields) => {
                let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
                let shape = self.pools.shape(&names);
                let items: Vec<&Expr> = fields.iter().map(|(_, v)| v).collect();
                let range = self.expr_range(&items);
                self.emit(Instr::NewRecord {
                    dst,
                    shape,
                    vals: range,
                });
            }
            ExprKind::Neg(a) => {
                let r = self.first_operand(a, dst, fresh);
                self.emit(Instr::Neg { dst, src: r });
            }
            ExprKind::Not(a) => {
                let r = self.first_operand(a, dst, fresh);
                self.emit(Instr::Not { dst, src: r });
            }
            ExprKind::Binary { op, a, b, swapped } => self.binary(*op, a, b, *swapped, dst, fresh),
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                self.expr_to(a, dst);
                let j = if matches!(e.kind, ExprKind::And(..)) {
                    Instr::JumpIfNot {
                        cond: dst,
                        target: UNPATCHED,
                    }
                } else {
                    Instr::JumpIf {
                        cond: dst,
                        target: UNPATCHED,
                    }
                };
                let j = self.emit(j);
                self.expr_to(b, dst);
                // `b` must be a bool too: a JumpIfNot on it checks that, as the condition rule
                // requires, without changing the value.
                let jb = self.emit(Instr::JumpIfNot {
                    cond: dst,
                    target: UNPATCHED,
                });
                self.patch_here(&[j, jb]);
            }
            ExprKind::CallFn(f, args) => {
                self.mark(e.span.start);
                if args_from_dst {
                    self.top = dst;
                }
                let args: Vec<&Expr> = args.iter().collect();
                let range = self.expr_range(&args);
                self.emit(Instr::CallFn {
                    dst,
                    func: *f,
                    args: range,
                });
            }
            ExprKind::CallExtern(x, args) => {
                self.mark(e.span.start);
                if args_from_dst {
                    self.top = dst;
                }
                let args: Vec<&Expr> = args.iter().collect();
                let range = self.expr_range(&args);
                let (name, effect) = match self.prog.externs.get(*x as usize) {
                    Some(ext) => (ext.native.clone(), ext.effect),
                    None => (String::new(), false),
                };
                if name == LLM_CALL {
                    // `extern fn call_llm(model, request) = "llm.call"` (std.agent) is the
                    // CALL_LLM instruction, not an `Effect`.
                    let mut regs = range.regs();
                    let (Some(model), Some(req)) = (regs.next(), regs.next()) else {
                        return;
                    };
                    self.emit(Instr::CallLlm { dst, model, req });
                    self.top = save;
                    return;
                }
                let native = self.pools.native(&name);
                if effect {
                    self.emit(Instr::Effect {
                        dst,
                        native,
                        args: range,
                    });
                } else {
                    self.emit(Instr::CallNative {
                        dst,
                        native,
                        args: range,
                    });
                }
            }
            ExprKind::Call(callee, args) => {
                self.mark(e.span.start);
                let c = self.expr_any(callee);
                let args: Vec<&Expr> = args.iter().collect();
                let range = self.expr_range(&args);
                self.emit(Instr::Call {
                    dst,
                    callee: c,
                    args: range,
                });
            }
            ExprKind::Field(obj, name) => {
                let o = self.first_operand(obj, dst, fresh);
                let name = self.pools.string(name);
                self.emit(Instr::GetField { dst, obj: o, name });
            }
            ExprKind::Index(obj, key) => {
                let o = self.first_operand(obj, dst, fresh);
                let k = self.expr_any(key);
                self.emit(Instr::GetIndex {
                    dst,
                    obj: o,
                    key: k,
                });
            }
            ExprKind::Slice(obj, lo, hi) => {
                let o = self.first_operand(obj, dst, fresh);
                let lo = self.opt_expr(lo.as_deref());
                let hi = self.opt_expr(hi.as_deref());
                self.emit(Instr::Slice {
                    dst,
                    obj: o,
                    lo,
                    hi,
                });
            }
            ExprKind::Range(lo, hi) => {
                let a = self.first_operand(lo, dst, fresh);
                let b = self.expr_any(hi);
                self.emit(Instr::Range { dst, lo: a, hi: b });
            }
            ExprKind::Check(inner, ty) => {
                self.fresh = fresh.then_some(dst);
                self.expr_to(inner, dst);
                let t = self.pools.ty(ty);
                self.emit(Instr::CheckType { src: dst, ty: t });
            }
            ExprKind::Spawn(callee, args) => {
                self.mark(e.span.start);
                let c = self.expr_any(callee);
                let args: Vec<&Expr> = args.iter().collect();
                let range = self.expr_range(&args);
                self.emit(Instr::Spawn {
                    dst,
                    callee: c,
                    args: range,
                });
            }
            ExprKind::Await(task) => {
                self.mark(e.span.start);
                let t = self.first_operand(task, dst, fresh);
                self.emit(Instr::Await { dst, task: t });
            }
            ExprKind::Relabel(op, inner) => self.relabel(e, op, inner, dst, fresh),
        }
        self.top = save;
    }

    fn opt_expr(&mut self, e: Option<&Expr>) -> Reg {
        match e {
            Some(e) => self.expr_any(e),
            None => {
                let r = self.alloc();
                self.emit(Instr::LoadNull { dst: r });
                r
            }
        }
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, swapped: bool, dst: Reg, fresh: bool) {
        // `x + 1`, `x - 1`: an immediate operand, no constant register.
        if matches!(op, BinOp::Add | BinOp::Sub) {
            if let ExprKind::Int(i) = b.kind {
                let imm = if op == BinOp::Add {
                    Some(i)
                } else {
                    i.checked_neg()
                };
                if let Some(imm) = imm.and_then(|i| i32::try_from(i).ok()) {
                    let ra = self.first_operand(a, dst, fresh);
                    self.emit(Instr::AddImm { dst, src: ra, imm });
                    return;
                }
            }
        }
        // `x * 2`, `x / 2`, `x % 7`: the same, for an int literal right operand that fits i32
        // (not when the operands were swapped: the literal is then the left operand).
        if matches!(op, BinOp::Mul | BinOp::Div | BinOp::Mod) && !swapped {
            if let Some(imm) = int_imm(b) {
                let src = self.first_operand(a, dst, fresh);
                self.emit(match op {
                    BinOp::Mul => Instr::MulImm { dst, src, imm },
                    BinOp::Div => Instr::DivImm { dst, src, imm },
                    // BinOp::Mod, the only other operator let in above.
                    _ => Instr::ModImm { dst, src, imm },
                });
                return;
            }
        }
        let ra = self.first_operand(a, dst, fresh);
        let rb = self.expr_any(b);
        let (x, y) = if swapped { (rb, ra) } else { (ra, rb) };
        let i = match op {
            BinOp::Add => Instr::Add { dst, a: x, b: y },
            BinOp::Sub => Instr::Sub { dst, a: x, b: y },
            BinOp::Mul => Instr::Mul { dst, a: x, b: y },
            BinOp::Div => Instr::Div { dst, a: x, b: y },
            BinOp::Mod => Instr::Mod { dst, a: x, b: y },
            BinOp::Eq => Instr::Eq { dst, a: x, b: y },
            BinOp::Ne => Instr::Ne { dst, a: x, b: y },
            BinOp::Lt => Instr::Lt { dst, a: x, b: y },
            BinOp::Le => Instr::Le { dst, a: x, b: y },
        };
        self.emit(i);
    }

    /// Builds a closure of `f` into `dst`: its captured cells are gathered into consecutive
    /// registers first.
    fn closure(&mut self, f: FuncIdx, dst: Reg) {
        let Some(callee) = self.prog.funcs.get(f as usize) else {
            return;
        };
        if callee.captures.is_empty() {
            self.emit(Instr::LoadFunc { dst, func: f });
            return;
        }
        let save = self.top;
        let start = self.top;
        for cap in &callee.captures {
            let r = self.alloc();
            match cap {
                Capture::Local(v) => {
                    let src = self.reg(*v);
                    self.emit(Instr::Move { dst: r, src });
                }
                Capture::Upval(i) => {
                    self.emit(Instr::UpvalCell { dst: r, idx: *i });
                }
            }
        }
        let caps = RegRange::new(start, callee.captures.len() as u16);
        self.emit(Instr::Closure { dst, func: f, caps });
        self.top = save;
    }
}

/// Whether compiling `e` into a register writes it before reading every operand (so that
/// compiling `x = e` straight into `x`'s register could read the new value too early).
fn writes_early(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::And(..) | ExprKind::Or(..))
}

/// The value of an int literal that fits an `Imm` operand.
fn int_imm(e: &Expr) -> Option<i32> {
    match e.kind {
        ExprKind::Int(i) => i32::try_from(i).ok(),
        _ => None,
    }
}
