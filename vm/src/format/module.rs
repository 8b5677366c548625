//! The in-memory form of a bytecode module: what the compiler builds, the encoder writes, the
//! decoder reads back and the verifier checks. Every cross-reference is an index into one of the
//! module's tables, so a module is plain data (spec/bytecode.md).

use serde::{Deserialize, Serialize};

use super::opcodes::Instr;

/// Index into [`Module::strings`].
pub type StrId = u32;
/// Index into [`Module::types`].
pub type TypeId = u32;
/// Index into [`Module::functions`].
pub type FuncId = u32;

/// The container version this crate reads and writes.
pub const FORMAT_VERSION: u16 = 3;
/// The first four bytes of every `.aib` file.
pub const MAGIC: [u8; 4] = *b"AIVM";

/// A compiled, self-contained program: the entry module and every module it imports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Module {
    /// The string pool: names, string constants, doc comments, file names. UTF-8.
    pub strings: Vec<String>,
    /// The constant pool.
    pub constants: Vec<Constant>,
    /// Type descriptors: run-time checks, and later the schemas sent to models.
    pub types: Vec<TypeDesc>,
    /// Names (string ids) of the VM natives the module calls, e.g. `"string.upper"`; code
    /// refers to a native by its index in this table.
    pub natives: Vec<StrId>,
    pub functions: Vec<Function>,
    /// Functions visible to hosts by name (and later to models, as tools).
    pub exports: Vec<Export>,
    /// The `main` function, if the module has one.
    pub entry: Option<FuncId>,
    /// Source files the debug info refers to (string ids), indexed by [`Function::file`].
    pub files: Vec<StrId>,
    /// The model slots the program declares (`model smart = "large"`); `CallLlm` accepts only
    /// their logical names, and a host maps each logical name to a provider before running.
    pub models: Vec<ModelSlot>,
    /// What the program may ask of the world (since version 3): the tools it calls, the
    /// resources it declares with `needs`, and its authority to lower labels.
    pub manifest: Manifest,
}

/// The capability manifest (spec/bytecode.md, "Manifest"): everything a host must grant
/// before the program's first instruction. Every list is sorted and holds each string once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Tool ids (`[A-Za-z0-9_.-]{1,128}`): every effect native the module's code asks for
    /// with `Effect`, and the names of the program functions it offers to models.
    pub tools: Vec<StrId>,
    /// Paths the program reads beneath (`needs read "./data"`).
    pub read: Vec<StrId>,
    /// Paths the program writes beneath (`needs write "./out"`).
    pub write: Vec<StrId>,
    /// Hosts the program connects to, `host` or `host:port` (`needs net "api.example.com"`).
    pub net: Vec<StrId>,
    /// Commands the program runs (`needs run "git"`).
    pub run: Vec<StrId>,
    /// Environment variables the program reads (`needs env "HOME"`).
    pub env: Vec<StrId>,
    /// Authority to run `Declassify` (`needs declassify`).
    pub declassify: bool,
    /// Authority to run `Endorse` (`needs endorse`); `EndorseNarrow` needs none.
    pub endorse: bool,
}

impl Manifest {
    /// The resource lists with their names, in the order of the encoding.
    pub fn resources(&self) -> [(&'static str, &Vec<StrId>); 5] {
        [
            ("read", &self.read),
            ("write", &self.write),
            ("net", &self.net),
            ("run", &self.run),
            ("env", &self.env),
        ]
    }

    /// The resource lists, mutable, in the order of [`Manifest::resources`].
    pub fn resources_mut(&mut self) -> [(&'static str, &mut Vec<StrId>); 5] {
        [
            ("read", &mut self.read),
            ("write", &mut self.write),
            ("net", &mut self.net),
            ("run", &mut self.run),
            ("env", &mut self.env),
        ]
    }
}

/// Whether `id` is a valid tool id: 1 to 128 bytes of `[A-Za-z0-9_.-]`, compared exactly.
pub fn is_tool_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A declared model: the program's name for it and the logical name a host configures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSlot {
    /// The name in the program (`smart`).
    pub name: StrId,
    /// The logical name (`"large"`) the host maps to a provider and model.
    pub logical: StrId,
}

/// An entry of the constant pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Constant {
    Int(i64),
    Float(f64),
    Str(StrId),
    /// The ordered field names of a record, used by `NewRecord`.
    Shape(Vec<StrId>),
    /// The readers of a label, used by `Classify` and `Declassify`: a set of principals
    /// (sorted, each once), or `None` for public (everyone).
    Readers(Option<Vec<StrId>>),
}

/// A type descriptor. Types refer to other types by index; the verifier checks every index and
/// that named types do not form a cycle without going through a list, map or record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypeDesc {
    Any,
    Null,
    Bool,
    Int,
    Float,
    Str,
    List(TypeId),
    /// A map from string (or int) keys to values of this type.
    Map(TypeId),
    Record(Vec<Field>),
    /// The type or null.
    Optional(TypeId),
    /// Exactly this string.
    StrLit(StrId),
    /// Any one of these types.
    Union(Vec<TypeId>),
    /// Any function value.
    Func,
    /// An error value.
    Error,
    /// A named alias (`type Name = ...`), with its doc comment.
    Named {
        name: StrId,
        ty: TypeId,
        doc: Option<StrId>,
    },
}

/// A field of a record type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: StrId,
    pub ty: TypeId,
}

/// A function's parameter: its name and declared type (`Any` when unannotated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: StrId,
    pub ty: TypeId,
}

/// One function: its signature, frame size and code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Function {
    pub name: StrId,
    /// Parameters; they arrive in registers `0..params.len()`.
    pub params: Vec<Param>,
    /// Declared return type (`Any` when unannotated).
    pub ret: TypeId,
    /// Number of registers in the frame; every register operand is below it.
    pub nregs: u16,
    /// Number of cells a closure of this function captures (`UpvalGet` indices are below it).
    pub ncaps: u16,
    pub code: Vec<Instr>,
    /// Source positions, sorted by instruction index (debug info).
    pub lines: Vec<LineEntry>,
    /// Index into [`Module::files`] of the source file, if known (debug info).
    pub file: Option<u32>,
    /// The `///` doc comment, if any.
    pub doc: Option<StrId>,
}

/// From instruction `pc` on (until the next entry), code comes from `line:col` of the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEntry {
    pub pc: u32,
    pub line: u32,
    pub col: u32,
}

/// A function exported by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub name: StrId,
    pub func: FuncId,
}

impl Module {
    /// The string with this id, or `""` when out of range (verified modules never are).
    pub fn str(&self, id: StrId) -> &str {
        self.strings
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The name of function `func`, or `?` when out of range.
    pub fn func_name(&self, func: FuncId) -> &str {
        self.functions
            .get(func as usize)
            .map_or("?", |f| self.str(f.name))
    }

    /// The model slot whose logical name is `logical`, if any.
    pub fn model(&self, logical: &str) -> Option<&ModelSlot> {
        self.models.iter().find(|s| self.str(s.logical) == logical)
    }

    /// The source position of instruction `pc` of function `func`, from the line table.
    pub fn position(&self, func: FuncId, pc: u32) -> Option<(Option<&str>, u32, u32)> {
        let f = self.functions.get(func as usize)?;
        let idx = f.lines.partition_point(|e| e.pc <= pc);
        let entry = f.lines.get(idx.checked_sub(1)?)?;
        let file = f
            .file
            .and_then(|i| self.files.get(i as usize))
            .map(|s| self.str(*s));
        Some((file, entry.line, entry.col))
    }
}
