//! The encoder: a [`Module`] to the bytes of an `.aib` container (spec/bytecode.md,
//! "Container"). The encoding is canonical — one module has exactly one encoding — so
//! `encode(decode(b)?) == b` for every byte string the decoder accepts.

use super::container::{
    const_tag, manifest_flag, opt_tag, type_tag, SectionId, SECTION_HEADER_LEN,
};
use super::module::{Constant, Function, Module, TypeDesc, FORMAT_VERSION, MAGIC};
use super::opcodes::{Instr, Operand};

/// Encodes a module. Every module has an encoding, valid or not; a jump target past the end of
/// a function's code is written as a byte offset past the end, which the decoder rejects.
/// Table lengths above `u32::MAX` are not representable and are truncated (no real module has
/// four billion entries).
pub fn encode(m: &Module) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    for id in SectionId::REQUIRED {
        let mut w = Writer::default();
        match id {
            SectionId::Strings => {
                w.len(m.strings.len());
                for s in &m.strings {
                    w.str(s);
                }
            }
            SectionId::Constants => {
                w.len(m.constants.len());
                for c in &m.constants {
                    w.constant(c);
                }
            }
            SectionId::Types => {
                w.len(m.types.len());
                for t in &m.types {
                    w.type_desc(t);
                }
            }
            SectionId::Natives => w.u32_list(&m.natives),
            SectionId::Functions => {
                w.len(m.functions.len());
                for f in &m.functions {
                    w.function(f);
                }
            }
            SectionId::Exports => {
                w.len(m.exports.len());
                for e in &m.exports {
                    w.u32(e.name);
                    w.u32(e.func);
                }
            }
            SectionId::Entry => w.opt(m.entry),
            SectionId::Files => w.u32_list(&m.files),
            SectionId::Models => {
                w.len(m.models.len());
                for s in &m.models {
                    w.u32(s.name);
                    w.u32(s.logical);
                }
            }
            SectionId::Manifest => {
                let man = &m.manifest;
                w.u32_list(&man.tools);
                for (_, list) in man.resources() {
                    w.u32_list(list);
                }
                let mut flags = 0;
                if man.declassify {
                    flags |= manifest_flag::DECLASSIFY;
                }
                if man.endorse {
                    flags |= manifest_flag::ENDORSE;
                }
                w.u8(flags);
            }
            // Reserved sections are not written by this version.
            SectionId::Tools => continue,
        }
        out.reserve(SECTION_HEADER_LEN + w.0.len());
        out.push(id as u8);
        out.extend_from_slice(&(w.0.len() as u32).to_le_bytes());
        out.extend_from_slice(&w.0);
    }
    out
}

/// The byte offset of the start of each instruction of `code`, plus the offset of its end.
pub(crate) fn instruction_offsets(code: &[Instr]) -> Vec<u32> {
    let mut offsets = Vec::with_capacity(code.len() + 1);
    let mut at = 0u32;
    for i in code {
        offsets.push(at);
        at = at.saturating_add(i.encoded_len() as u32);
    }
    offsets.push(at);
    offsets
}

/// Converts an in-memory jump target (an instruction index) to its on-disk byte offset. Indices
/// at or past the end map injectively past the end of the code.
fn target_offset(offsets: &[u32], index: u32) -> u32 {
    match offsets.get(index as usize) {
        Some(&o) => o,
        None => {
            let end = offsets.last().copied().unwrap_or(0);
            let past = index as u64 - (offsets.len() as u64 - 1);
            u32::try_from(end as u64 + past).unwrap_or(u32::MAX)
        }
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn u32_list(&mut self, v: &[u32]) {
        self.len(v.len());
        for &x in v {
            self.u32(x);
        }
    }
    fn opt(&mut self, v: Option<u32>) {
        match v {
            None => self.u8(opt_tag::NONE),
            Some(x) => {
                self.u8(opt_tag::SOME);
                self.u32(x);
            }
        }
    }

    fn constant(&mut self, c: &Constant) {
        match c {
            Constant::Int(i) => {
                self.u8(const_tag::INT);
                self.0.extend_from_slice(&i.to_le_bytes());
            }
            Constant::Float(f) => {
                self.u8(const_tag::FLOAT);
                self.0.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Constant::Str(s) => {
                self.u8(const_tag::STR);
                self.u32(*s);
            }
            Constant::Shape(names) => {
                self.u8(const_tag::SHAPE);
                self.u32_list(names);
            }
            Constant::Readers(readers) => {
                self.u8(const_tag::READERS);
                match readers {
                    None => self.u8(opt_tag::NONE),
                    Some(list) => {
                        self.u8(opt_tag::SOME);
                        self.u32_list(list);
                    }
                }
            }
        }
    }

    fn type_desc(&mut self, t: &TypeDesc) {
        match t {
            TypeDesc::Any => self.u8(type_tag::ANY),
            TypeDesc::Null => self.u8(type_tag::NULL),
            TypeDesc::Bool => self.u8(type_tag::BOOL),
            TypeDesc::Int => self.u8(type_tag::INT),
            TypeDesc::Float => self.u8(type_tag::FLOAT),
            TypeDesc::Str => self.u8(type_tag::STR),
            TypeDesc::List(t) => {
                self.u8(type_tag::LIST);
                self.u32(*t);
            }
            TypeDesc::Map(t) => {
                self.u8(type_tag::MAP);
                self.u32(*t);
            }
            TypeDesc::Record(fields) => {
                self.u8(type_tag::RECORD);
                self.len(fields.len());
                for f in fields {
                    self.u32(f.name);
                    self.u32(f.ty);
                }
            }
            TypeDesc::Optional(t) => {
                self.u8(type_tag::OPTIONAL);
                self.u32(*t);
            }
            TypeDesc::StrLit(s) => {
                self.u8(type_tag::STR_LIT);
                self.u32(*s);
            }
            TypeDesc::Union(ts) => {
                self.u8(type_tag::UNION);
                self.u32_list(ts);
            }
            TypeDesc::Func => self.u8(type_tag::FUNC),
            TypeDesc::Error => self.u8(type_tag::ERROR),
            TypeDesc::Named { name, ty, doc } => {
                self.u8(type_tag::NAMED);
                self.u32(*name);
                self.u32(*ty);
                self.opt(*doc);
            }
        }
    }

    fn function(&mut self, f: &Function) {
        self.u32(f.name);
        self.len(f.params.len());
        for p in &f.params {
            self.u32(p.name);
            self.u32(p.ty);
        }
        self.u32(f.ret);
        self.u16(f.nregs);
        self.u16(f.ncaps);
        self.opt(f.file);
        self.opt(f.doc);
        let offsets = instruction_offsets(&f.code);
        let code_len = offsets.last().copied().unwrap_or(0);
        self.u32(code_len);
        for i in &f.code {
            self.instr(i, &offsets);
        }
        self.len(f.lines.len());
        for l in &f.lines {
            self.u32(l.pc);
            self.u32(l.line);
            self.u32(l.col);
        }
    }

    fn instr(&mut self, i: &Instr, offsets: &[u32]) {
        self.u8(i.opcode() as u8);
        for op in i.operands() {
            match op {
                Operand::Dst(r) | Operand::Src(r) | Operand::Count(r) => self.u16(r),
                Operand::Range(r) => {
                    self.u16(r.start);
                    self.u16(r.count);
                }
                Operand::Const(x)
                | Operand::Func(x)
                | Operand::Type(x)
                | Operand::Native(x)
                | Operand::Str(x) => self.u32(x),
                Operand::Target(t) => self.u32(target_offset(offsets, t)),
                Operand::Imm(v) => self.0.extend_from_slice(&v.to_le_bytes()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::module::{Function, LineEntry};

    #[test]
    fn empty_module_has_header_and_ten_empty_sections() {
        let bytes = encode(&Module::default());
        assert_eq!(&bytes[..4], b"AIVM");
        assert_eq!(&bytes[4..8], &[3, 0, 0, 0]);
        // Eight sections hold one u32 zero count, the entry section one `none` byte, the
        // manifest six zero counts and a zero flags byte.
        assert_eq!(bytes.len(), 8 + 10 * 5 + 8 * 4 + 1 + 6 * 4 + 1);
        assert_eq!(
            &bytes[bytes.len() - 30..bytes.len() - 25],
            &[11, 25, 0, 0, 0]
        );
        assert_eq!(&bytes[8..17], &[1, 4, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn targets_become_byte_offsets() {
        let f = Function {
            name: 0,
            params: vec![],
            ret: 0,
            nregs: 1,
            ncaps: 0,
            code: vec![
                Instr::LoadTrue { dst: 0 },
                Instr::JumpIf { cond: 0, target: 0 },
                Instr::Return { src: 0 },
            ],
            lines: vec![LineEntry {
                pc: 0,
                line: 1,
                col: 1,
            }],
            file: None,
            doc: None,
        };
        let offs = instruction_offsets(&f.code);
        assert_eq!(offs, vec![0, 3, 10, 13]);
        assert_eq!(target_offset(&offs, 2), 10);
        assert_eq!(target_offset(&offs, 3), 13);
        assert_eq!(target_offset(&offs, 5), 15);
        let mut w = Writer::default();
        w.instr(&Instr::JumpIf { cond: 0, target: 2 }, &offs);
        assert_eq!(w.0, vec![0x41, 0, 0, 10, 0, 0, 0]);
    }
}
