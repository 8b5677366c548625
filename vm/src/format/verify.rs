//! The verifier: decides, without running anything, whether a decoded module may run. The
//! interpreter only accepts a [`VerifiedModule`], so unverified code cannot reach it. Each
//! property below is a numbered rule of spec/bytecode.md, "Verifier rules", and every error
//! names its rule (`[V7]`).
//!
//! Module tables:
//! * V1  every string id (names, docs, string constants, shape fields, type names and
//!   literals, native names, file names, model names, `Str` operands) is below the string
//!   pool's length.
//! * V2  a record shape constant names each field once; a readers constant lists readers
//!   that are non-empty, at most 256 bytes, free of control characters, and in strictly
//!   ascending byte order (so each once).
//! * V3  every type index inside a type is in range; a record type names each field once; no
//!   cycle of types runs only through `Named`, `Optional` and `Union` (a recursive type must go
//!   through a list, map or record), and no chain of them is longer than 64.
//! * V4  every entry of the native table names a native the VM has (`natives::native_by_name`).
//! * V5  each function's parameter and return types are in range, it has no more parameters
//!   than registers, and its file index is in range.
//! * V6  every export names a function in range, and no two exports share a name.
//! * V7  the entry function, if any, is in range and takes 0 or 1 parameter.
//! * V19 model slots: their names and logical names are strings in range (V1), and no two
//!   slots share a logical name (the logical name is what `CallLlm` and hosts look up).
//! * V20 the manifest: its strings are in range (V1); every tool id is a valid tool id
//!   (`[A-Za-z0-9_.-]{1,128}`); every resource (read, write, net, run, env) is non-empty, at
//!   most 4096 bytes and free of control characters; each list is in strictly ascending byte
//!   order (so no entry appears twice).
//!
//! Code, for each function:
//! * V8  the code is not empty and control cannot run off its end: the last instruction's
//!   flow is `jump` or `stop`.
//! * V9  every register operand is below the frame size (`nregs`); a range `r+n` ends at or
//!   below it.
//! * V10 every constant, function, type, native and string operand is in range, and every
//!   jump target is an instruction of the function.
//! * V11 `LoadConst` loads an int, float or string constant; `NewRecord` takes a shape constant
//!   whose field count equals its value count; `Classify` and `Declassify` take a readers
//!   constant, which for `Classify` is a list (not public).
//! * V12 `CallFn` passes as many arguments as the callee has parameters; `Closure` captures as
//!   many cells as the callee's `ncaps`; `LoadFunc` only names a function with no captures.
//! * V13 `CallNative` calls a pure native and `Effect` an effect native, each with exactly
//!   the native's arity of arguments; `Effect` never names `llm.call` (only `CallLlm` does).
//! * V14 `UpvalGet`, `UpvalSet` and `UpvalCell` indices are below the function's `ncaps`.
//! * V15 `NewMap` takes an even number of registers (key/value pairs).
//! * V16 every register read is defined on every path from the function's entry: a forward
//!   dataflow over the control-flow graph, where parameters are defined at entry, `Dst`
//!   operands define their register on every outgoing edge, except that `TryBegin` defines
//!   its `err` register only on the edge to its handler, which carries the state at the
//!   `TryBegin`. The edges come from the opcode table's flow column.
//! * V17 the line table is sorted by `pc` (non-decreasing) and every `pc` is an instruction.
//! * V18 the dataflow fits a fixed memory budget (basic blocks × registers); larger functions
//!   are rejected rather than verified slowly.
//! * V21 every `Effect` names a native listed in the manifest's tools.
//! * V22 `Declassify` only in a module whose manifest declares `declassify` authority, and
//!   `Endorse` only with `endorse` authority.
//! * V23 the type of `EndorseNarrow` is narrow: bool, int, float, null, a string literal, or
//!   an optional, union or named alias of narrow types only.
//!
//! The verifier never panics and never executes code; its work is linear in the module's size
//! for V1–V15, V17 and V19–V23, and bounded by V18 for V16.

use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::module::{is_tool_id, Constant, Function, Module, TypeDesc};
use super::natives::{native_by_name, NativeInfo, LLM_CALL};
use super::opcodes::{Flow, Instr, Operand, RegRange};

/// A module the verifier accepted. The interpreter takes this, never a bare [`Module`].
#[derive(Clone, Debug)]
pub struct VerifiedModule(Arc<Module>);

impl VerifiedModule {
    /// Verifies `m` and wraps it.
    pub fn new(m: Module) -> Result<Self, VerifyError> {
        verify(&m)?;
        Ok(VerifiedModule(Arc::new(m)))
    }

    pub fn module(&self) -> &Module {
        &self.0
    }

    /// The shared module, for holders that outlive this wrapper.
    pub fn arc(&self) -> &Arc<Module> {
        &self.0
    }
}

impl Deref for VerifiedModule {
    type Target = Module;
    fn deref(&self) -> &Module {
        &self.0
    }
}

/// Why a module may not run: the rule broken (spec/bytecode.md, "Verifier rules"), where, and
/// what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message} [V{rule}]")]
pub struct VerifyError {
    pub rule: u8,
    pub location: Location,
    pub message: String,
}

/// Where a verifier error is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An entry of a module table, e.g. `constant #3` or `entry`.
    Table {
        table: &'static str,
        index: Option<u32>,
    },
    /// A function, and within it an instruction (with its opcode name) if the error has one.
    Function {
        index: u32,
        name: String,
        pc: Option<u32>,
        opcode: Option<&'static str>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Table { table, index: None } => write!(f, "{table}"),
            Location::Table {
                table,
                index: Some(i),
            } => write!(f, "{table} #{i}"),
            Location::Function {
                index,
                name,
                pc,
                opcode,
            } => {
                write!(f, "function `{name}` #{index}")?;
                if let Some(pc) = pc {
                    write!(f, ", pc {pc}")?;
                }
                if let Some(op) = opcode {
                    write!(f, " ({op})")?;
                }
                Ok(())
            }
        }
    }
}

/// The most bitset words (64 registers each) the definite-assignment analysis may hold for one
/// function: 2^24 words, 128 MiB (rule V18).
pub const DATAFLOW_BUDGET_WORDS: usize = 1 << 24;

/// The longest chain of `Named`, `Optional` and `Union` references a type may start (rule V3).
pub const MAX_TYPE_CHAIN: usize = 64;

/// The longest reader name of a readers constant, in bytes (rule V2).
pub const MAX_READER_LEN: usize = 256;

/// The longest resource of the manifest (a path, host, command or variable), in bytes (V20).
pub const MAX_RESOURCE_LEN: usize = 4096;

/// Whether `t` is a narrow type (rule V23): one whose values carry at most a few bits the
/// program chose among, so that endorsing a conforming value cannot pass on free text.
/// Aliases, optionals and unions are followed at most [`MAX_TYPE_CHAIN`] deep.
pub fn is_narrow(types: &[TypeDesc], t: u32) -> bool {
    fn go(types: &[TypeDesc], t: u32, depth: usize) -> bool {
        if depth > MAX_TYPE_CHAIN {
            return false;
        }
        match types.get(t as usize) {
            Some(TypeDesc::Bool | TypeDesc::Int | TypeDesc::Float | TypeDesc::Null) => true,
            Some(TypeDesc::StrLit(_)) => true,
            Some(TypeDesc::Optional(u)) | Some(TypeDesc::Named { ty: u, .. }) => {
                go(types, *u, depth + 1)
            }
            Some(TypeDesc::Union(us)) => us.iter().all(|u| go(types, *u, depth + 1)),
            _ => false,
        }
    }
    go(types, t, 0)
}

/// Checks every rule of the module comment above; the first broken one is reported.
pub fn verify(m: &Module) -> Result<(), VerifyError> {
    let v = Verifier { m };
    v.tables()?;
    let natives = v.natives()?;
    // V21: which entries of the native table the manifest lists as tools.
    let tools: HashSet<&str> = m.manifest.tools.iter().map(|&t| m.str(t)).collect();
    let listed: Vec<bool> = m
        .natives
        .iter()
        .map(|&n| tools.contains(m.str(n)))
        .collect();
    for (i, f) in m.functions.iter().enumerate() {
        FuncVerifier {
            m,
            natives: &natives,
            listed: &listed,
            f,
            index: i as u32,
        }
        .run()?;
    }
    Ok(())
}

fn table_err(rule: u8, table: &'static str, index: Option<usize>, message: String) -> VerifyError {
    VerifyError {
        rule,
        location: Location::Table {
            table,
            index: index.map(|i| i as u32),
        },
        message,
    }
}

struct Verifier<'m> {
    m: &'m Module,
}

impl<'m> Verifier<'m> {
    fn str_ok(&self, id: u32) -> bool {
        (id as usize) < self.m.strings.len()
    }

    /// V1 for a string id found in a table entry.
    fn check_str(
        &self,
        id: u32,
        table: &'static str,
        index: Option<usize>,
        what: &str,
    ) -> Result<(), VerifyError> {
        if self.str_ok(id) {
            Ok(())
        } else {
            Err(table_err(
                1,
                table,
                index,
                format!(
                    "{what} is string s{id}, but the pool has {} strings",
                    self.m.strings.len()
                ),
            ))
        }
    }

    fn check_type(
        &self,
        t: u32,
        table: &'static str,
        index: Option<usize>,
        what: &str,
        rule: u8,
    ) -> Result<(), VerifyError> {
        if (t as usize) < self.m.types.len() {
            Ok(())
        } else {
            Err(table_err(
                rule,
                table,
                index,
                format!(
                    "{what} is type t{t}, but the module has {} types",
                    self.m.types.len()
                ),
            ))
        }
    }

    /// V1–V3, V5 (signatures), V6, V7, V19.
    fn tables(&self) -> Result<(), VerifyError> {
        let m = self.m;
        for (i, c) in m.constants.iter().enumerate() {
            match c {
                Constant::Str(s) => self.check_str(*s, "constant", Some(i), "the string")?,
                Constant::Shape(names) => {
                    let mut seen = HashSet::new();
                    for &n in names {
                        self.check_str(n, "constant", Some(i), "a field name")?;
                        if !seen.insert(n) {
                            return Err(table_err(
                                2,
                                "constant",
                                Some(i),
                                format!("shape names field {:?} twice", m.str(n)),
                            ));
                        }
                    }
                }
                Constant::Readers(Some(names)) => {
                    for &n in names {
                        self.check_str(n, "constant", Some(i), "a reader")?;
                    }
                    let bad = |why: String| Err(table_err(2, "constant", Some(i), why));
                    for (k, &n) in names.iter().enumerate() {
                        let text = m.str(n);
                        if text.is_empty() || text.len() > MAX_READER_LEN {
                            return bad(format!(
                                "reader #{k} must be 1 to {MAX_READER_LEN} bytes, found {}",
                                text.len()
                            ));
                        }
                        if text.chars().any(char::is_control) {
                            return bad(format!("reader {text:?} holds a control character"));
                        }
                        if k > 0 && m.str(names[k - 1]) >= text {
                            return bad(format!(
                                "readers must be in strictly ascending order, each once: {:?} then {text:?}",
                                m.str(names[k - 1])
                            ));
                        }
                    }
                }
                Constant::Int(_) | Constant::Float(_) | Constant::Readers(None) => {}
            }
        }
        for (i, t) in m.types.iter().enumerate() {
            let at = Some(i);
            match t {
                TypeDesc::List(e) | TypeDesc::Map(e) | TypeDesc::Optional(e) => {
                    self.check_type(*e, "type", at, "the element", 3)?
                }
                TypeDesc::Record(fields) => {
                    let mut seen = HashSet::new();
                    for fl in fields {
                        self.check_str(fl.name, "type", at, "a field name")?;
                        self.check_type(fl.ty, "type", at, "a field's type", 3)?;
                        if !seen.insert(fl.name) {
                            return Err(table_err(
                                3,
                                "type",
                                at,
                                format!("record names field {:?} twice", m.str(fl.name)),
                            ));
                        }
                    }
                }
                TypeDesc::StrLit(s) => self.check_str(*s, "type", at, "the literal")?,
                TypeDesc::Union(ts) => {
                    for &u in ts {
                        self.check_type(u, "type", at, "a member", 3)?;
                    }
                }
                TypeDesc::Named { name, ty, doc } => {
                    self.check_str(*name, "type", at, "the name")?;
                    self.check_type(*ty, "type", at, "the aliased type", 3)?;
                    if let Some(d) = doc {
                        self.check_str(*d, "type", at, "the doc comment")?;
                    }
                }
                TypeDesc::Any
                | TypeDesc::Null
                | TypeDesc::Bool
                | TypeDesc::Int
                | TypeDesc::Float
                | TypeDesc::Str
                | TypeDesc::Func
                | TypeDesc::Error => {}
            }
        }
        self.type_cycles()?;
        for (i, &n) in m.natives.iter().enumerate() {
            self.check_str(n, "native", Some(i), "the name")?;
        }
        for (i, &s) in m.files.iter().enumerate() {
            self.check_str(s, "file", Some(i), "the file name")?;
        }
        for (i, f) in m.functions.iter().enumerate() {
            let at = Some(i);
            self.check_str(f.name, "function", at, "the name")?;
            if let Some(d) = f.doc {
                self.check_str(d, "function", at, "the doc comment")?;
            }
            for p in &f.params {
                self.check_str(p.name, "function", at, "a parameter name")?;
                self.check_type(p.ty, "function", at, "a parameter's type", 5)?;
            }
            self.check_type(f.ret, "function", at, "the return type", 5)?;
            if f.params.len() > f.nregs as usize {
                return Err(table_err(
                    5,
                    "function",
                    at,
                    format!(
                        "{} parameters but only {} registers",
                        f.params.len(),
                        f.nregs
                    ),
                ));
            }
            if let Some(file) = f.file {
                if file as usize >= m.files.len() {
                    return Err(table_err(
                        5,
                        "function",
                        at,
                        format!(
                            "file #{file} is out of range: the module has {} files",
                            m.files.len()
                        ),
                    ));
                }
            }
        }
        let mut names = HashSet::new();
        for (i, e) in m.exports.iter().enumerate() {
            self.check_str(e.name, "export", Some(i), "the name")?;
            if e.func as usize >= m.functions.len() {
                return Err(table_err(
                    6,
                    "export",
                    Some(i),
                    format!(
                        "exports function f{}, but the module has {} functions",
                        e.func,
                        m.functions.len()
                    ),
                ));
            }
            if !names.insert(m.str(e.name)) {
                return Err(table_err(
                    6,
                    "export",
                    Some(i),
                    format!("a second export named {:?}", m.str(e.name)),
                ));
            }
        }
        let mut logical = HashSet::new();
        for (i, slot) in m.models.iter().enumerate() {
            self.check_str(slot.name, "model", Some(i), "the name")?;
            self.check_str(slot.logical, "model", Some(i), "the logical name")?;
            if !logical.insert(m.str(slot.logical)) {
                return Err(table_err(
                    19,
                    "model",
                    Some(i),
                    format!(
                        "a second model slot with the logical name {:?}",
                        m.str(slot.logical)
                    ),
                ));
            }
        }
        self.manifest()?;
        if let Some(e) = m.entry {
            let Some(f) = m.functions.get(e as usize) else {
                return Err(table_err(
                    7,
                    "entry",
                    None,
                    format!(
                        "entry function f{e} is unknown: the module has {} functions",
                        m.functions.len()
                    ),
                ));
            };
            if f.params.len() > 1 {
                return Err(table_err(
                    7,
                    "entry",
                    None,
                    format!(
                        "entry function `{}` takes {} parameters; it must take 0 or 1",
                        m.str(f.name),
                        f.params.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// V20: the manifest's lists.
    fn manifest(&self) -> Result<(), VerifyError> {
        let man = &self.m.manifest;
        let lists = std::iter::once(("tools", &man.tools)).chain(man.resources());
        for (what, list) in lists {
            let err = |k: usize, why: String| {
                Err(table_err(
                    20,
                    "manifest",
                    None,
                    format!("{what} #{k}: {why}"),
                ))
            };
            for &id in list.iter() {
                self.check_str(id, "manifest", None, what)?;
            }
            for (k, &id) in list.iter().enumerate() {
                let text = self.m.str(id);
                if what == "tools" {
                    if !is_tool_id(text) {
                        return err(
                            k,
                            format!("{text:?} is not a tool id (1 to 128 of A-Z a-z 0-9 _ . -)"),
                        );
                    }
                } else if text.is_empty() || text.len() > MAX_RESOURCE_LEN {
                    return err(
                        k,
                        format!(
                            "a resource must be 1 to {MAX_RESOURCE_LEN} bytes, found {}",
                            text.len()
                        ),
                    );
                } else if text.chars().any(char::is_control) {
                    return err(k, format!("{text:?} holds a control character"));
                }
                if k > 0 && self.m.str(list[k - 1]) >= text {
                    return err(
                        k,
                        format!(
                            "entries must be in strictly ascending order, each once: {:?} then {text:?}",
                            self.m.str(list[k - 1])
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// V3: no cycle through `Named`, `Optional` and `Union` alone, and no chain of them longer
    /// than [`MAX_TYPE_CHAIN`], so that checking a value against a type recurses a bounded
    /// number of times per level of the value. Iterative depth-first search, so a long chain of
    /// types cannot overflow the stack here either.
    fn type_cycles(&self) -> Result<(), VerifyError> {
        let types = &self.m.types;
        let edges = |t: &TypeDesc| -> Vec<u32> {
            match t {
                TypeDesc::Named { ty, .. } | TypeDesc::Optional(ty) => vec![*ty],
                TypeDesc::Union(ts) => ts.clone(),
                _ => vec![],
            }
        };
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut color = vec![0u8; types.len()];
        // For done types: the longest chain of non-container references starting there.
        let mut height = vec![0usize; types.len()];
        for root in 0..types.len() {
            if color[root] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, Vec<u32>, usize)> = vec![(root, edges(&types[root]), 0)];
            color[root] = 1;
            while let Some(top) = stack.last_mut() {
                let (node, succ, next) = (top.0, &top.1, &mut top.2);
                if let Some(&s) = succ.get(*next) {
                    *next += 1;
                    let s = s as usize;
                    match color.get(s) {
                        Some(0) => {
                            color[s] = 1;
                            let e = edges(&types[s]);
                            stack.push((s, e, 0));
                        }
                        Some(1) => {
                            let start = stack.iter().position(|f| f.0 == s).unwrap_or(0);
                            let path: Vec<String> =
                                stack[start..].iter().map(|f| format!("t{}", f.0)).collect();
                            return Err(table_err(
                                3,
                                "type",
                                Some(node),
                                format!(
                                    "cycle {} -> t{s} does not go through a list, map or record",
                                    path.join(" -> ")
                                ),
                            ));
                        }
                        _ => {}
                    }
                } else {
                    let h = 1 + succ
                        .iter()
                        .filter_map(|&s| height.get(s as usize))
                        .max()
                        .copied()
                        .unwrap_or(0);
                    if h > MAX_TYPE_CHAIN {
                        return Err(table_err(
                            3,
                            "type",
                            Some(node),
                            format!(
                                "a chain of named, optional and union types {h} long; at most {MAX_TYPE_CHAIN} are allowed"
                            ),
                        ));
                    }
                    height[node] = h;
                    color[node] = 2;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// V4: the native table, resolved against the VM's natives.
    fn natives(&self) -> Result<Vec<&'static NativeInfo>, VerifyError> {
        self.m
            .natives
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let name = self.m.str(n);
                native_by_name(name).map(|(_, info)| info).ok_or_else(|| {
                    table_err(
                        4,
                        "native",
                        Some(i),
                        format!("unknown native {name:?}: the VM has no native by that name"),
                    )
                })
            })
            .collect()
    }
}

struct FuncVerifier<'a> {
    m: &'a Module,
    natives: &'a [&'static NativeInfo],
    /// Per native table entry, whether the manifest lists it as a tool (V21).
    listed: &'a [bool],
    f: &'a Function,
    index: u32,
}

impl FuncVerifier<'_> {
    fn err(&self, rule: u8, pc: Option<usize>, message: String) -> VerifyError {
        VerifyError {
            rule,
            location: Location::Function {
                index: self.index,
                name: self.m.str(self.f.name).to_string(),
                pc: pc.map(|p| p as u32),
                opcode: pc
                    .and_then(|p| self.f.code.get(p))
                    .map(|i| i.opcode().info().name),
            },
            message,
        }
    }

    fn run(&self) -> Result<(), VerifyError> {
        let code = &self.f.code;
        let Some(last) = code.last() else {
            return Err(self.err(8, None, "the code is empty".into()));
        };
        for (pc, i) in code.iter().enumerate() {
            self.operands(pc, i)?;
            self.specific(pc, i)?;
        }
        if matches!(last.opcode().info().flow, Flow::Next | Flow::Branch) {
            return Err(self.err(
                8,
                Some(code.len() - 1),
                "control falls off the end of the code (the last instruction must jump, return or throw)"
                    .into(),
            ));
        }
        for (k, l) in self.f.lines.iter().enumerate() {
            if l.pc as usize >= code.len() {
                return Err(self.err(
                    17,
                    None,
                    format!(
                        "line table entry #{k} is for pc {}, past the {} instructions",
                        l.pc,
                        code.len()
                    ),
                ));
            }
            if k > 0 && self.f.lines[k - 1].pc > l.pc {
                return Err(self.err(
                    17,
                    None,
                    format!("line table entry #{k} (pc {}) is out of order", l.pc),
                ));
            }
        }
        self.definite_assignment()
    }

    /// V9, V10: operands in range, by kind.
    fn operands(&self, pc: usize, i: &Instr) -> Result<(), VerifyError> {
        let m = self.m;
        let nregs = self.f.nregs as u32;
        let frame = |what: String| {
            self.err(
                9,
                Some(pc),
                format!("{what} but frame has {nregs} registers"),
            )
        };
        let range = |kind: &str, idx: u32, len: usize, plural: &str| {
            if (idx as usize) < len {
                Ok(())
            } else {
                Err(self.err(
                    10,
                    Some(pc),
                    format!("{kind} index {idx} is out of range: the module has {len} {plural}"),
                ))
            }
        };
        for op in i.operands() {
            match op {
                Operand::Dst(r) if r as u32 >= nregs => {
                    return Err(frame(format!("register r{r} written")))
                }
                Operand::Src(r) if r as u32 >= nregs => {
                    return Err(frame(format!("register r{r} read")))
                }
                Operand::Range(RegRange { start, count })
                    if start as u32 + count as u32 > nregs =>
                {
                    return Err(frame(format!(
                        "registers r{start}+{count} (up to r{}) read",
                        start as u32 + count as u32 - 1
                    )))
                }
                Operand::Const(k) => range("constant", k, m.constants.len(), "constants")?,
                Operand::Func(f) => range("function", f, m.functions.len(), "functions")?,
                Operand::Type(t) => range("type", t, m.types.len(), "types")?,
                Operand::Native(n) => range("native", n, m.natives.len(), "natives")?,
                Operand::Str(s) => range("string", s, m.strings.len(), "strings")?,
                Operand::Target(t) if t as usize >= self.f.code.len() => {
                    return Err(self.err(
                        10,
                        Some(pc),
                        format!(
                            "jump target {t} is not an instruction: the code has {} instructions",
                            self.f.code.len()
                        ),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// V11–V15: what particular opcodes require of their operands. Indices are in range here.
    fn specific(&self, pc: usize, i: &Instr) -> Result<(), VerifyError> {
        let m = self.m;
        let err = |rule, msg: String| Err(self.err(rule, Some(pc), msg));
        let func = |f: u32| m.functions.get(f as usize);
        let fname = |f: u32| func(f).map_or("", |g| m.str(g.name));
        match *i {
            Instr::LoadConst { k, .. } => {
                let what = match m.constants.get(k as usize) {
                    Some(Constant::Shape(_)) => "a shape",
                    Some(Constant::Readers(_)) => "a readers constant",
                    _ => "",
                };
                if !what.is_empty() {
                    return err(
                        11,
                        format!("constant k{k} is {what}; LoadConst takes an int, float or string"),
                    );
                }
            }
            Instr::NewRecord { shape, vals, .. } => match m.constants.get(shape as usize) {
                Some(Constant::Shape(names)) if names.len() == vals.count as usize => {}
                Some(Constant::Shape(names)) => {
                    return err(
                        11,
                        format!(
                            "shape k{shape} has {} fields but {} values are given",
                            names.len(),
                            vals.count
                        ),
                    )
                }
                _ => {
                    return err(
                        11,
                        format!("constant k{shape} is not a shape; NewRecord needs one"),
                    )
                }
            },
            Instr::CallFn { func: f, args, .. } => {
                let arity = func(f).map_or(0, |g| g.params.len());
                if arity != args.count as usize {
                    return err(
                        12,
                        format!(
                            "arity mismatch: f{f} `{}` takes {arity} arguments, {} are passed",
                            fname(f),
                            args.count
                        ),
                    );
                }
            }
            Instr::Closure { func: f, caps, .. } => {
                let ncaps = func(f).map_or(0, |g| g.ncaps);
                if ncaps != caps.count {
                    return err(
                        12,
                        format!(
                            "f{f} `{}` captures {ncaps} cells, {} are given",
                            fname(f),
                            caps.count
                        ),
                    );
                }
            }
            Instr::LoadFunc { func: f, .. } => {
                let ncaps = func(f).map_or(0, |g| g.ncaps);
                if ncaps != 0 {
                    return err(
                        12,
                        format!(
                            "f{f} `{}` captures {ncaps} cells; use Closure to supply them",
                            fname(f)
                        ),
                    );
                }
            }
            Instr::CallNative { native, args, .. } | Instr::Effect { native, args, .. } => {
                let Some(info) = self.natives.get(native as usize) else {
                    return Ok(());
                };
                let is_effect_op = matches!(i, Instr::Effect { .. });
                if info.effect && !is_effect_op {
                    return err(
                        13,
                        format!(
                            "native `{}` is an effect; call it with Effect, not CallNative",
                            info.name
                        ),
                    );
                }
                if !info.effect && is_effect_op {
                    return err(
                        13,
                        format!(
                            "native `{}` is pure; call it with CallNative, not Effect",
                            info.name
                        ),
                    );
                }
                if is_effect_op && info.name == LLM_CALL {
                    return err(
                        13,
                        format!("`{LLM_CALL}` is reached only through CallLlm, not Effect"),
                    );
                }
                if info.arity != args.count {
                    return err(
                        13,
                        format!(
                            "arity mismatch: native `{}` takes {} arguments, {} are passed",
                            info.name, info.arity, args.count
                        ),
                    );
                }
                if is_effect_op && !self.listed.get(native as usize).copied().unwrap_or(false) {
                    return err(
                        21,
                        format!(
                            "effect `{}` is not in the manifest's tools (a module may only ask for what its manifest declares)",
                            info.name
                        ),
                    );
                }
            }
            Instr::Classify { readers, .. } | Instr::Declassify { readers, .. } => {
                let is_classify = matches!(i, Instr::Classify { .. });
                match m.constants.get(readers as usize) {
                    Some(Constant::Readers(Some(_))) => {}
                    Some(Constant::Readers(None)) if !is_classify => {}
                    Some(Constant::Readers(None)) => {
                        return err(
                            11,
                            format!("Classify needs a list of readers; k{readers} is public"),
                        )
                    }
                    _ => return err(11, format!("constant k{readers} is not a readers constant")),
                }
                if !is_classify && !m.manifest.declassify {
                    return err(
                        22,
                        "Declassify without `declassify` authority in the manifest (`needs declassify`)".into(),
                    );
                }
            }
            Instr::Endorse { .. } if !m.manifest.endorse => {
                return err(
                    22,
                    "Endorse without `endorse` authority in the manifest (`needs endorse`)".into(),
                );
            }
            Instr::EndorseNarrow { ty, .. } if !is_narrow(&m.types, ty) => {
                return err(
                    23,
                    format!(
                        "type t{ty} is not narrow: EndorseNarrow takes bool, int, float, null, string literals and their unions"
                    ),
                );
            }
            Instr::UpvalGet { idx, .. }
            | Instr::UpvalSet { idx, .. }
            | Instr::UpvalCell { idx, .. }
                if idx >= self.f.ncaps =>
            {
                return err(
                    14,
                    format!(
                        "upvalue index {idx} is out of range: the function captures {} cells",
                        self.f.ncaps
                    ),
                );
            }
            Instr::NewMap { kvs, .. } if kvs.count % 2 != 0 => {
                return err(
                    15,
                    format!(
                        "odd register count {} for NewMap: it takes key/value pairs",
                        kvs.count
                    ),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// V16: forward must-analysis of defined registers over basic blocks, then one pass that
    /// checks every read against the state in front of it.
    fn definite_assignment(&self) -> Result<(), VerifyError> {
        let code = &self.f.code;
        let n = code.len();
        let mut leader = vec![false; n + 1];
        leader[0] = true;
        for (pc, i) in code.iter().enumerate() {
            if i.opcode().info().flow != Flow::Next {
                leader[pc + 1] = true;
            }
            for t in targets(i) {
                if let Some(l) = leader.get_mut(t as usize) {
                    *l = true;
                }
            }
        }
        let starts: Vec<usize> = (0..n).filter(|&pc| leader[pc]).collect();
        let words = (self.f.nregs as usize).div_ceil(64);
        if starts.len().saturating_mul(words.max(1)) > DATAFLOW_BUDGET_WORDS {
            return Err(self.err(
                18,
                None,
                format!(
                    "too large to verify: {} basic blocks × {} registers exceeds the verifier's budget",
                    starts.len(),
                    self.f.nregs
                ),
            ));
        }
        let block_of = |pc: usize| starts.partition_point(|&s| s <= pc).saturating_sub(1);
        let mut entry = Bits::new(words);
        for r in 0..self.f.params.len() {
            entry.set(r);
        }
        let mut input: Vec<Option<Bits>> = vec![None; starts.len()];
        input[0] = Some(entry);
        let mut work = vec![0usize];
        let mut queued = vec![false; starts.len()];
        queued[0] = true;
        while let Some(b) = work.pop() {
            queued[b] = false;
            let Some(mut state) = input[b].clone() else {
                continue;
            };
            let start = starts[b];
            let end = starts.get(b + 1).copied().unwrap_or(n);
            for (pc, i) in code.iter().enumerate().take(end).skip(start) {
                for (to, out) in self.edges(pc, i, &mut state) {
                    let tb = block_of(to);
                    let changed = match &mut input[tb] {
                        slot @ None => {
                            *slot = Some(out);
                            true
                        }
                        Some(have) => have.intersect(&out),
                    };
                    if changed && !queued[tb] {
                        queued[tb] = true;
                        work.push(tb);
                    }
                }
            }
        }
        for (b, start) in starts.iter().enumerate() {
            let Some(mut state) = input[b].clone() else {
                continue;
            };
            let end = starts.get(b + 1).copied().unwrap_or(n);
            for (pc, i) in code.iter().enumerate().take(end).skip(*start) {
                for op in i.operands() {
                    let read: Box<dyn Iterator<Item = u16>> = match op {
                        Operand::Src(r) => Box::new(std::iter::once(r)),
                        Operand::Range(r) => Box::new(r.regs()),
                        _ => continue,
                    };
                    for r in read {
                        if !state.get(r as usize) {
                            return Err(self.err(
                                16,
                                Some(pc),
                                format!("register r{r} read but not defined on every path to here"),
                            ));
                        }
                    }
                }
                // Advance the state along the fall-through (in-block) edge.
                let _ = self.edges(pc, i, &mut state);
            }
        }
        Ok(())
    }

    /// The control-flow successors of instruction `pc` with the state on each edge. On return
    /// `state` holds the fall-through state (what the next instruction of the block sees).
    fn edges(&self, pc: usize, i: &Instr, state: &mut Bits) -> Vec<(usize, Bits)> {
        let flow = i.opcode().info().flow;
        let before = state.clone();
        for op in i.operands() {
            if let Operand::Dst(r) = op {
                state.set(r as usize);
            }
        }
        let mut out = Vec::with_capacity(2);
        match (flow, i) {
            (_, Instr::TryBegin { err, handler }) => {
                // The error register is written only when the handler is entered.
                let mut h = before.clone();
                h.set(*err as usize);
                *state = before;
                out.push((*handler as usize, h));
                out.push((pc + 1, state.clone()));
            }
            (Flow::Next, _) => out.push((pc + 1, state.clone())),
            (Flow::Jump, _) => out.extend(targets(i).map(|t| (t as usize, state.clone()))),
            (Flow::Branch, _) => {
                out.extend(targets(i).map(|t| (t as usize, state.clone())));
                out.push((pc + 1, state.clone()));
            }
            (Flow::Stop, _) => {}
        }
        // Falling off the end is rejected by V8; an edge to `code.len()` is dropped here.
        out.retain(|(to, _)| *to < self.f.code.len());
        out
    }
}

/// The jump targets of an instruction, from its `Target` operands.
fn targets(i: &Instr) -> impl Iterator<Item = u32> {
    i.operands().into_iter().filter_map(|o| match o {
        Operand::Target(t) => Some(t),
        _ => None,
    })
}

/// A fixed-size set of registers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(words: usize) -> Self {
        Bits(vec![0; words])
    }
    fn set(&mut self, r: usize) {
        if let Some(w) = self.0.get_mut(r / 64) {
            *w |= 1 << (r % 64);
        }
    }
    fn get(&self, r: usize) -> bool {
        self.0.get(r / 64).is_some_and(|w| w & (1 << (r % 64)) != 0)
    }
    /// Keeps only the registers also in `other`; whether anything was removed.
    fn intersect(&mut self, other: &Bits) -> bool {
        let mut changed = false;
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            let n = *a & b;
            changed |= n != *a;
            *a = n;
        }
        changed
    }
}
