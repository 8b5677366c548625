//! The decoder: the bytes of an `.aib` container to a [`Module`] (spec/bytecode.md,
//! "Container"). It checks structure only — lengths, tags, UTF-8, opcodes, that jumps land on
//! instruction starts — and leaves cross-references to the verifier. It never panics, and it
//! never allocates more than the input could hold: every count is checked against the bytes
//! that remain before anything is reserved for it.

use std::fmt;

use super::container::{
    const_tag, manifest_flag, min_size, opt_tag, type_tag, SectionId, HEADER_LEN,
    SECTION_HEADER_LEN,
};
use super::module::{
    Constant, Export, Field, Function, LineEntry, Manifest, ModelSlot, Module, Param, TypeDesc,
    FORMAT_VERSION, MAGIC,
};
use super::opcodes::{Instr, Opcode, Operand, OperandKind, RegRange};

/// Why a byte string is not a well-formed container, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    /// The section being read, `None` for the header and the section table itself.
    pub section: Option<&'static str>,
    /// Absolute byte offset in the input.
    pub offset: usize,
    /// The function being read, in the `functions` section.
    pub function: Option<u32>,
}

/// What is wrong with the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input does not start with `AIVM`.
    BadMagic {
        found: Vec<u8>,
    },
    /// The header names a format version this decoder does not read.
    VersionMismatch {
        found: u16,
    },
    /// The header's flags field is not zero.
    BadFlags {
        found: u16,
    },
    /// Fewer bytes remain (in the section, code or input) than the next item needs.
    Truncated {
        expected: u64,
        found: u64,
    },
    /// A section's contents end before its declared length.
    Oversized {
        declared: u32,
        used: u32,
    },
    /// Bytes follow the last section.
    TrailingBytes {
        count: usize,
    },
    UnknownSection {
        id: u8,
    },
    /// A section id this version reserves for a later one (tool declarations).
    ReservedSection {
        id: u8,
    },
    DuplicateSection,
    /// A section appears after one that must follow it.
    OutOfOrder {
        after: &'static str,
    },
    /// A required section is absent: the input ends, or `found` comes in its place.
    MissingSection {
        missing: &'static str,
        found: Option<&'static str>,
    },
    /// String number `index` of the pool is not valid UTF-8.
    BadUtf8 {
        index: usize,
    },
    UnknownOpcode {
        byte: u8,
    },
    /// A jump's byte offset is not the start of an instruction of its function.
    BadJumpTarget {
        target: u32,
    },
    /// A tag byte (of a constant, type or optional field) has no meaning.
    UnknownTag {
        what: &'static str,
        tag: u8,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeErrorKind as K;
        let title = match &self.kind {
            K::BadMagic { .. } => "bad magic in",
            K::VersionMismatch { .. } => "unsupported version in",
            K::BadFlags { .. } => "unknown flags in",
            K::Truncated { .. } => "truncated",
            K::Oversized { .. } => "oversized",
            K::TrailingBytes { .. } => "trailing bytes after",
            K::UnknownSection { .. } => "unknown section id in",
            K::ReservedSection { .. } => "reserved section id in",
            K::DuplicateSection => "duplicate",
            K::OutOfOrder { .. } => "misplaced",
            K::MissingSection { .. } => "missing section in",
            K::BadUtf8 { .. } => "bad UTF-8 in",
            K::UnknownOpcode { .. } => "unknown opcode in",
            K::BadJumpTarget { .. } => "bad jump target in",
            K::UnknownTag { .. } => "unknown tag in",
        };
        write!(f, "{title} ")?;
        match self.section {
            Some(s) => write!(f, "section `{s}`")?,
            None if matches!(
                self.kind,
                K::BadMagic { .. } | K::VersionMismatch { .. } | K::BadFlags { .. }
            ) =>
            {
                write!(f, "header")?
            }
            None => write!(f, "container")?,
        }
        if let Some(func) = self.function {
            write!(f, " (function #{func})")?;
        }
        write!(f, " at offset {:#x}: ", self.offset)?;
        match &self.kind {
            K::BadMagic { found } => {
                write!(f, "expected `AIVM` (41 49 56 4d), found")?;
                for b in found {
                    write!(f, " {b:02x}")?;
                }
                Ok(())
            }
            K::VersionMismatch { found } => write!(
                f,
                "this VM reads format version {FORMAT_VERSION}, the file is version {found}"
            ),
            K::BadFlags { found } => write!(f, "flags must be 0, found {found:#06x}"),
            K::Truncated { expected, found } => {
                write!(f, "expected {expected} bytes, found {found}")
            }
            K::Oversized { declared, used } => write!(
                f,
                "the section declares {declared} bytes but its contents end after {used}"
            ),
            K::TrailingBytes { count } => write!(f, "{count} bytes follow the last section"),
            K::UnknownSection { id } => write!(f, "no section has id {id}"),
            K::ReservedSection { id } => write!(
                f,
                "section id {id} is reserved for a later format version than {FORMAT_VERSION}"
            ),
            K::DuplicateSection => write!(f, "the section appears twice"),
            K::OutOfOrder { after } => write!(f, "the section must come before `{after}`"),
            K::MissingSection {
                missing,
                found: None,
            } => write!(f, "the input ends where section `{missing}` must be"),
            K::MissingSection {
                missing,
                found: Some(found),
            } => write!(
                f,
                "expected section `{missing}`, found `{found}` (every section appears once, in order)"
            ),
            K::BadUtf8 { index } => write!(f, "string #{index} is not valid UTF-8"),
            K::UnknownOpcode { byte } => write!(f, "no instruction has opcode {byte:#04x}"),
            K::BadJumpTarget { target } => write!(
                f,
                "jump to byte {target:#x} of the code, which is not the start of an instruction"
            ),
            K::UnknownTag { what, tag } => write!(f, "{tag} is not a valid {what} tag"),
        }
    }
}

/// Decodes and structurally checks a container. The result still needs the verifier
/// ([`crate::format::verify()`]) before it may run.
pub fn decode(bytes: &[u8]) -> Result<Module> {
    let mut r = Reader {
        bytes,
        pos: 0,
        end: bytes.len(),
        section: None,
        function: None,
    };
    let magic = r.take(MAGIC.len())?;
    if magic != MAGIC {
        return Err(r.err_at(
            0,
            DecodeErrorKind::BadMagic {
                found: magic.to_vec(),
            },
        ));
    }
    let at = r.pos;
    let version = r.u16()?;
    if version != FORMAT_VERSION {
        return Err(r.err_at(at, DecodeErrorKind::VersionMismatch { found: version }));
    }
    let at = r.pos;
    let flags = r.u16()?;
    if flags != 0 {
        return Err(r.err_at(at, DecodeErrorKind::BadFlags { found: flags }));
    }
    debug_assert_eq!(r.pos, HEADER_LEN);

    let mut m = Module::default();
    for (i, want) in SectionId::REQUIRED.iter().copied().enumerate() {
        r.section = None;
        r.function = None;
        let at = r.pos;
        if r.remaining() == 0 {
            return Err(r.err_at(
                at,
                DecodeErrorKind::MissingSection {
                    missing: want.name(),
                    found: None,
                },
            ));
        }
        let id_byte = r.u8()?;
        let Some(id) = SectionId::from_byte(id_byte) else {
            return Err(r.err_at(at, DecodeErrorKind::UnknownSection { id: id_byte }));
        };
        if id.is_reserved() {
            return Err(r.err_at(at, DecodeErrorKind::ReservedSection { id: id_byte }));
        }
        r.section = Some(id.name());
        if id < want {
            let kind = if i > 0 && SectionId::REQUIRED[i - 1] == id {
                DecodeErrorKind::DuplicateSection
            } else {
                DecodeErrorKind::OutOfOrder {
                    after: SectionId::REQUIRED[i - 1].name(),
                }
            };
            return Err(r.err_at(at, kind));
        }
        if id > want {
            r.section = None;
            return Err(r.err_at(
                at,
                DecodeErrorKind::MissingSection {
                    missing: want.name(),
                    found: Some(id.name()),
                },
            ));
        }
        let declared = r.u32()?;
        if declared as usize > r.remaining() {
            return Err(r.err_at(
                at,
                DecodeErrorKind::Truncated {
                    expected: declared as u64,
                    found: r.remaining() as u64,
                },
            ));
        }
        let start = r.pos;
        let file_end = r.end;
        r.end = start + declared as usize;
        match id {
            SectionId::Strings => m.strings = r.strings()?,
            SectionId::Constants => m.constants = r.list(min_size::CONSTANT, Reader::constant)?,
            SectionId::Types => m.types = r.list(min_size::TYPE, Reader::type_desc)?,
            SectionId::Natives => m.natives = r.u32_list()?,
            SectionId::Functions => m.functions = r.functions()?,
            SectionId::Exports => {
                m.exports = r.list(min_size::PAIR, |r| {
                    Ok(Export {
                        name: r.u32()?,
                        func: r.u32()?,
                    })
                })?
            }
            SectionId::Entry => m.entry = r.opt("entry")?,
            SectionId::Files => m.files = r.u32_list()?,
            SectionId::Models => {
                m.models = r.list(min_size::PAIR, |r| {
                    Ok(ModelSlot {
                        name: r.u32()?,
                        logical: r.u32()?,
                    })
                })?
            }
            SectionId::Manifest => m.manifest = r.manifest()?,
            SectionId::Tools => {}
        }
        r.function = None;
        if r.pos != r.end {
            return Err(r.err_at(
                at,
                DecodeErrorKind::Oversized {
                    declared,
                    used: (r.pos - start) as u32,
                },
            ));
        }
        r.end = file_end;
        debug_assert!(at + SECTION_HEADER_LEN <= start);
    }
    r.section = None;
    if r.remaining() > 0 {
        let at = r.pos;
        let kind = match r.bytes.get(at).copied().and_then(SectionId::from_byte) {
            Some(id) if id.is_reserved() => DecodeErrorKind::ReservedSection { id: id as u8 },
            Some(id) => {
                r.section = Some(id.name());
                let last = SectionId::REQUIRED[SectionId::REQUIRED.len() - 1];
                if id == last {
                    DecodeErrorKind::DuplicateSection
                } else {
                    DecodeErrorKind::OutOfOrder { after: last.name() }
                }
            }
            None => DecodeErrorKind::TrailingBytes {
                count: r.remaining(),
            },
        };
        return Err(r.err_at(at, kind));
    }
    Ok(m)
}

type Result<T> = std::result::Result<T, DecodeError>;

/// A cursor over the input, limited to the current section.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
    section: Option<&'static str>,
    function: Option<u32>,
}

impl<'a> Reader<'a> {
    fn err_at(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            kind,
            section: self.section,
            offset,
            function: self.function,
        }
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err_at(
                self.pos,
                DecodeErrorKind::Truncated {
                    expected: n as u64,
                    found: self.remaining() as u64,
                },
            ));
        }
        let s = self.bytes.get(self.pos..self.pos + n).unwrap_or_default();
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a count of items at least `min` bytes each, rejecting it if the section cannot
    /// hold that many, so a lying count never causes a large allocation.
    fn count(&mut self, min: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.u32()? as usize;
        let need = n as u64 * min as u64;
        if need > self.remaining() as u64 {
            return Err(self.err_at(
                at,
                DecodeErrorKind::Truncated {
                    expected: need,
                    found: self.remaining() as u64,
                },
            ));
        }
        Ok(n)
    }

    fn list<T>(
        &mut self,
        min: usize,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.count(min)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(v)
    }

    fn u32_list(&mut self) -> Result<Vec<u32>> {
        self.list(min_size::U32, Reader::u32)
    }

    fn opt(&mut self, what: &'static str) -> Result<Option<u32>> {
        let at = self.pos;
        match self.u8()? {
            opt_tag::NONE => Ok(None),
            opt_tag::SOME => Ok(Some(self.u32()?)),
            tag => Err(self.err_at(at, DecodeErrorKind::UnknownTag { what, tag })),
        }
    }

    fn strings(&mut self) -> Result<Vec<String>> {
        let n = self.count(min_size::STRING)?;
        let mut v = Vec::with_capacity(n);
        for index in 0..n {
            let len = self.count(1)?;
            let at = self.pos;
            let bytes = self.take(len)?;
            match std::str::from_utf8(bytes) {
                Ok(s) => v.push(s.to_owned()),
                Err(e) => {
                    return Err(
                        self.err_at(at + e.valid_up_to(), DecodeErrorKind::BadUtf8 { index })
                    )
                }
            }
        }
        Ok(v)
    }

    fn constant(&mut self) -> Result<Constant> {
        let at = self.pos;
        Ok(match self.u8()? {
            const_tag::INT => Constant::Int(i64::from_le_bytes(self.array()?)),
            const_tag::FLOAT => Constant::Float(f64::from_bits(u64::from_le_bytes(self.array()?))),
            const_tag::STR => Constant::Str(self.u32()?),
            const_tag::SHAPE => Constant::Shape(self.u32_list()?),
            const_tag::READERS => {
                let opt_at = self.pos;
                match self.u8()? {
                    opt_tag::NONE => Constant::Readers(None),
                    opt_tag::SOME => Constant::Readers(Some(self.u32_list()?)),
                    tag => {
                        return Err(self.err_at(
                            opt_at,
                            DecodeErrorKind::UnknownTag {
                                what: "readers",
                                tag,
                            },
                        ))
                    }
                }
            }
            tag => {
                return Err(self.err_at(
                    at,
                    DecodeErrorKind::UnknownTag {
                        what: "constant",
                        tag,
                    },
                ))
            }
        })
    }

    fn type_desc(&mut self) -> Result<TypeDesc> {
        let at = self.pos;
        Ok(match self.u8()? {
            type_tag::ANY => TypeDesc::Any,
            type_tag::NULL => TypeDesc::Null,
            type_tag::BOOL => TypeDesc::Bool,
            type_tag::INT => TypeDesc::Int,
            type_tag::FLOAT => TypeDesc::Float,
            type_tag::STR => TypeDesc::Str,
            type_tag::LIST => TypeDesc::List(self.u32()?),
            type_tag::MAP => TypeDesc::Map(self.u32()?),
            type_tag::RECORD => TypeDesc::Record(self.list(min_size::PAIR, |r| {
                Ok(Field {
                    name: r.u32()?,
                    ty: r.u32()?,
                })
            })?),
            type_tag::OPTIONAL => TypeDesc::Optional(self.u32()?),
            type_tag::STR_LIT => TypeDesc::StrLit(self.u32()?),
            type_tag::UNION => TypeDesc::Union(self.u32_list()?),
            type_tag::FUNC => TypeDesc::Func,
            type_tag::ERROR => TypeDesc::Error,
            type_tag::NAMED => TypeDesc::Named {
                name: self.u32()?,
                ty: self.u32()?,
                doc: self.opt("type doc")?,
            },
            tag => return Err(self.err_at(at, DecodeErrorKind::UnknownTag { what: "type", tag })),
        })
    }

    /// The manifest: the tool list, the five resource lists, then the flags byte, whose
    /// unknown bits must be zero (so that the encoding stays canonical).
    fn manifest(&mut self) -> Result<Manifest> {
        if self.remaining() < min_size::MANIFEST {
            return Err(self.err_at(
                self.pos,
                DecodeErrorKind::Truncated {
                    expected: min_size::MANIFEST as u64,
                    found: self.remaining() as u64,
                },
            ));
        }
        let mut man = Manifest {
            tools: self.u32_list()?,
            ..Manifest::default()
        };
        for (_, list) in man.resources_mut() {
            *list = self.u32_list()?;
        }
        let at = self.pos;
        let flags = self.u8()?;
        if flags & !manifest_flag::ALL != 0 {
            return Err(self.err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "manifest flags",
                    tag: flags,
                },
            ));
        }
        man.declassify = flags & manifest_flag::DECLASSIFY != 0;
        man.endorse = flags & manifest_flag::ENDORSE != 0;
        Ok(man)
    }

    fn functions(&mut self) -> Result<Vec<Function>> {
        let n = self.count(min_size::FUNCTION)?;
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            self.function = Some(i as u32);
            v.push(self.function_body()?);
        }
        Ok(v)
    }

    fn function_body(&mut self) -> Result<Function> {
        let name = self.u32()?;
        let params = self.list(min_size::PAIR, |r| {
            Ok(Param {
                name: r.u32()?,
                ty: r.u32()?,
            })
        })?;
        let ret = self.u32()?;
        let nregs = self.u16()?;
        let ncaps = self.u16()?;
        let file = self.opt("file")?;
        let doc = self.opt("doc")?;
        let code_len = self.count(1)?;
        let code = self.code(code_len)?;
        let lines = self.list(min_size::LINE, |r| {
            Ok(LineEntry {
                pc: r.u32()?,
                line: r.u32()?,
                col: r.u32()?,
            })
        })?;
        Ok(Function {
            name,
            params,
            ret,
            nregs,
            ncaps,
            code,
            lines,
            file,
            doc,
        })
    }

    /// Decodes `len` bytes of code, then turns byte-offset targets into instruction indices.
    fn code(&mut self, len: usize) -> Result<Vec<Instr>> {
        let base = self.pos;
        let outer_end = self.end;
        self.end = base + len;
        // An instruction is at least one byte, so `len` bounds the instruction count.
        let mut starts: Vec<u32> = Vec::new();
        let mut code = Vec::new();
        let mut targets: Vec<(usize, u32)> = Vec::new();
        let mut operands = Vec::with_capacity(4);
        while self.pos < self.end {
            let at = self.pos;
            starts.push((at - base) as u32);
            let byte = self.u8()?;
            let Some(op) = Opcode::from_byte(byte) else {
                return Err(self.err_at(at, DecodeErrorKind::UnknownOpcode { byte }));
            };
            operands.clear();
            for &(_, kind) in op.info().operands {
                let o_at = self.pos;
                operands.push(match kind {
                    OperandKind::Dst => Operand::Dst(self.u16()?),
                    OperandKind::Src => Operand::Src(self.u16()?),
                    OperandKind::Count => Operand::Count(self.u16()?),
                    OperandKind::Range => Operand::Range(RegRange::new(self.u16()?, self.u16()?)),
                    OperandKind::Const => Operand::Const(self.u32()?),
                    OperandKind::Func => Operand::Func(self.u32()?),
                    OperandKind::Type => Operand::Type(self.u32()?),
                    OperandKind::Native => Operand::Native(self.u32()?),
                    OperandKind::Str => Operand::Str(self.u32()?),
                    OperandKind::Imm => Operand::Imm(i32::from_le_bytes(self.array()?)),
                    OperandKind::Target => {
                        let t = self.u32()?;
                        targets.push((o_at, t));
                        Operand::Target(t)
                    }
                });
            }
            // The operands were read from the opcode's own row, so they always match it; the
            // error arm only keeps this path panic-free.
            let Some(instr) = Instr::from_operands(op, &operands) else {
                return Err(self.err_at(at, DecodeErrorKind::UnknownOpcode { byte }));
            };
            code.push(instr);
        }
        for &(at, t) in &targets {
            if starts.binary_search(&t).is_err() {
                return Err(self.err_at(at, DecodeErrorKind::BadJumpTarget { target: t }));
            }
        }
        if !targets.is_empty() {
            for i in code.iter_mut() {
                *i = i.map_targets(|t| starts.binary_search(&t).map_or(t, |idx| idx as u32));
            }
        }
        self.end = outer_end;
        Ok(code)
    }
}
