//! The instruction set: every opcode is defined once, in [`for_each_op!`], and every stage
//! (the `Instr` enum, encoder, decoder, verifier, assembler, disassembler, interpreter and the
//! spec's opcode table test) is an expansion of that one list.
//!
//! Notation in the `///` lines: `R[x]` is register `x` of the current frame, `K[k]` constant `k`,
//! `S[s]` string `s` of the string pool, `F[f]` function `f`, `T[t]` type `t`, `N[n]` native `n`.
//! `R[r..r+n]` is a register range. Unless a line says otherwise, the label of the result is the
//! join of the labels of every operand read (spec/instructions.md, "Labels").

// The semantics lines use the spec's notation `R[x]`, `K[k]`, ..., which rustdoc would read as
// links.
#![allow(rustdoc::broken_intra_doc_links)]

/// Calls `$m!` with the opcode table. Each row is:
///
/// ```text
/// /// one-line semantics
/// CODE Name { operand: Kind, ... } => flow, effect;
/// ```
///
/// * `Kind` is one of the [`OperandKind`] names; `Dst` registers are written, `Src` and `Range`
///   registers are read. The verifier derives its register checks from these kinds.
/// * `flow` says where control goes next: `next` (fall through), `jump` (always to the `Target`
///   operand), `branch` (to the `Target` operand or fall through), `stop` (leaves the function:
///   return or throw).
/// * `effect` is `pure` or `yields` (the instruction suspends the interpreter and hands an effect
///   to the host).
#[macro_export]
macro_rules! for_each_op {
    ($m:ident) => {
        $m! {
            /// Does nothing.
            0x00 Nop {} => next, pure;
            /// R[dst] := R[src] (value and label).
            0x01 Move { dst: Dst, src: Src } => next, pure;
            /// R[dst] := null.
            0x02 LoadNull { dst: Dst } => next, pure;
            /// R[dst] := true.
            0x03 LoadTrue { dst: Dst } => next, pure;
            /// R[dst] := false.
            0x04 LoadFalse { dst: Dst } => next, pure;
            /// R[dst] := imm, an int.
            0x05 LoadInt { dst: Dst, imm: Imm } => next, pure;
            /// R[dst] := K[k] (an int, float or string constant).
            0x06 LoadConst { dst: Dst, k: Const } => next, pure;
            /// R[dst] := a closure of F[func] with no captured cells.
            0x07 LoadFunc { dst: Dst, func: Func } => next, pure;
            /// R[dst] := a closure of F[func] capturing the cells in R[caps..caps+n].
            0x08 Closure { dst: Dst, func: Func, caps: Range } => next, pure;

            /// R[dst] := a new cell holding R[src].
            0x10 CellNew { dst: Dst, src: Src } => next, pure;
            /// R[dst] := the value held by the cell R[cell].
            0x11 CellGet { dst: Dst, cell: Src } => next, pure;
            /// The cell R[cell] := R[src].
            0x12 CellSet { cell: Src, src: Src } => next, pure;
            /// R[dst] := the value held by captured cell `idx` of the running closure.
            0x13 UpvalGet { dst: Dst, idx: Count } => next, pure;
            /// Captured cell `idx` of the running closure := R[src].
            0x14 UpvalSet { idx: Count, src: Src } => next, pure;
            /// R[dst] := captured cell `idx` of the running closure itself (to capture it again).
            0x15 UpvalCell { dst: Dst, idx: Count } => next, pure;

            /// R[dst] := R[a] + R[b]: int (overflow is an error), float, or string concatenation.
            0x20 Add { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := R[a] - R[b].
            0x21 Sub { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := R[a] * R[b].
            0x22 Mul { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := R[a] / R[b]; int / int truncates toward zero, by zero is an error.
            0x23 Div { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := R[a] % R[b]; the sign follows the dividend, by zero is an error.
            0x24 Mod { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := -R[src].
            0x25 Neg { dst: Dst, src: Src } => next, pure;
            /// R[dst] := R[src] + imm, where R[src] is an int or float.
            0x26 AddImm { dst: Dst, src: Src, imm: Imm } => next, pure;
            /// R[dst] := not R[src], where R[src] is a bool.
            0x27 Not { dst: Dst, src: Src } => next, pure;
            /// R[dst] := R[src] * imm, as `Mul` with an int right operand (label: that of R[src]).
            0x28 MulImm { dst: Dst, src: Src, imm: Imm } => next, pure;
            /// R[dst] := R[src] / imm, as `Div` with an int right operand (label: that of R[src]).
            0x29 DivImm { dst: Dst, src: Src, imm: Imm } => next, pure;
            /// R[dst] := R[src] % imm, as `Mod` with an int right operand (label: that of R[src]).
            0x2a ModImm { dst: Dst, src: Src, imm: Imm } => next, pure;

            /// R[dst] := R[a] == R[b] (structural equality; 1 == 1.0 is true).
            0x30 Eq { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := R[a] != R[b].
            0x31 Ne { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := R[a] < R[b] (numbers, or strings by code point).
            0x32 Lt { dst: Dst, a: Src, b: Src } => next, pure;
            /// R[dst] := R[a] <= R[b].
            0x33 Le { dst: Dst, a: Src, b: Src } => next, pure;

            /// R[dst] := the text of R[src] as `print` shows it (strings unchanged).
            0x38 ToStr { dst: Dst, src: Src } => next, pure;
            /// R[dst] := the concatenation of the texts of R[parts..parts+n].
            0x39 Concat { dst: Dst, parts: Range } => next, pure;

            /// Continue at `target`.
            0x40 Jump { target: Target } => jump, pure;
            /// Continue at `target` if R[cond] is true; R[cond] must be a bool.
            0x41 JumpIf { cond: Src, target: Target } => branch, pure;
            /// Continue at `target` if R[cond] is false; R[cond] must be a bool.
            0x42 JumpIfNot { cond: Src, target: Target } => branch, pure;
            /// Continue at `target` unless R[a] < R[b] (the loop test of `for i in a..b`).
            0x43 JumpIfNotLt { a: Src, b: Src, target: Target } => branch, pure;

            /// R[dst] := a new list of R[items..items+n].
            0x50 NewList { dst: Dst, items: Range } => next, pure;
            /// R[dst] := a new map of the key/value pairs in R[kvs..kvs+n] (n is even).
            0x51 NewMap { dst: Dst, kvs: Range } => next, pure;
            /// R[dst] := a new record with the field names of shape K[shape] and values R[vals..vals+n].
            0x52 NewRecord { dst: Dst, shape: Const, vals: Range } => next, pure;
            /// R[dst] := R[obj][R[key]] (list or string by int index, map by key).
            0x53 GetIndex { dst: Dst, obj: Src, key: Src } => next, pure;
            /// R[obj][R[key]] := R[src] (list by index, map by key).
            0x54 SetIndex { obj: Src, key: Src, src: Src } => next, pure;
            /// R[dst] := field S[name] of the record or map R[obj].
            0x55 GetField { dst: Dst, obj: Src, name: Str } => next, pure;
            /// Field S[name] of the record or map R[obj] := R[src].
            0x56 SetField { obj: Src, name: Str, src: Src } => next, pure;
            /// R[dst] := R[obj][R[lo]:R[hi]] for a list or string; a null bound is open.
            0x57 Slice { dst: Dst, obj: Src, lo: Src, hi: Src } => next, pure;
            /// R[dst] := the int range R[lo]..R[hi] (half-open).
            0x58 Range { dst: Dst, lo: Src, hi: Src } => next, pure;

            /// R[dst] := an iterator over R[src]: list items, map keys, string characters or a range.
            0x60 IterNew { dst: Dst, src: Src } => next, pure;
            /// R[dst] := the next item of iterator R[iter]; if there is none, R[dst] := null and
            /// continue at `target`.
            0x61 IterNext { dst: Dst, iter: Src, target: Target } => branch, pure;
            /// R[key], R[val] := the next pair of iterator R[iter]: (index, item) of a list,
            /// (key, value) of a map, (index, character) of a string, (index, n) of a range; if
            /// there is none, both := null and continue at `target`.
            0x62 IterNext2 { key: Dst, val: Dst, iter: Src, target: Target } => branch, pure;

            /// R[dst] := R[callee](R[args..args+n]); R[callee] must be a function of arity n.
            0x70 Call { dst: Dst, callee: Src, args: Range } => next, pure;
            /// R[dst] := F[func](R[args..args+n]).
            0x71 CallFn { dst: Dst, func: Func, args: Range } => next, pure;
            /// R[dst] := N[native](R[args..args+n]); N[native] must be a pure native.
            0x72 CallNative { dst: Dst, native: Native, args: Range } => next, pure;
            /// Return R[src] to the caller.
            0x73 Return { src: Src } => stop, pure;

            /// Raise R[src] (an error value, or any value, which becomes the error's payload).
            0x78 Throw { src: Src } => stop, pure;
            /// Enter a protected region: an error raised before the matching TryEnd stores the
            /// error in R[err] and continues at `handler`.
            0x79 TryBegin { err: Dst, handler: Target } => branch, pure;
            /// Leave the innermost protected region of this frame.
            0x7a TryEnd {} => next, pure;
            /// Raise a TypeError unless R[src] conforms to type T[ty].
            0x7b CheckType { src: Src, ty: Type } => next, pure;

            /// Suspend and ask the host to perform effect native N[native] with arguments
            /// R[args..args+n]; the host's result goes to R[dst].
            0x80 Effect { dst: Dst, native: Native, args: Range } => next, yields;
            /// Suspend and ask the host for one model turn (effect `llm.call`) with arguments
            /// R[model] and R[req]; R[model] must be a string naming a model slot's logical name.
            /// The host's answer goes to R[dst].
            0x81 CallLlm { dst: Dst, model: Src, req: Src } => next, yields;
            /// R[dst] := the handle of a new task running R[callee](R[args..args+n]); R[callee]
            /// must be a function of arity n. The new task runs when the current one suspends.
            0x82 Spawn { dst: Dst, callee: Src, args: Range } => next, pure;
            /// Suspend until task R[task] finishes; R[dst] := its value, or raise its error.
            0x83 Await { dst: Dst, task: Src } => next, pure;

            /// R[dst] := R[src] with the readers K[readers] joined into the label of every node
            /// (containers are copied); raises labels only, so it needs no authority.
            0x90 Classify { dst: Dst, src: Src, readers: Const } => next, pure;
            /// R[dst] := R[src] with the readers of every node set to K[readers] (public for
            /// null), integrity unchanged (containers are copied). Needs `declassify` authority
            /// in the manifest; recorded as a label event.
            0x91 Declassify { dst: Dst, src: Src, readers: Const } => next, pure;
            /// R[dst] := R[src] with every node trusted, readers unchanged (containers are
            /// copied). Needs `endorse` authority in the manifest; recorded as a label event.
            0x92 Endorse { dst: Dst, src: Src } => next, pure;
            /// R[dst] := R[src], trusted, after a check that it conforms to the narrow type
            /// T[ty] (a TypeError otherwise); needs no authority; recorded as a label event.
            0x93 EndorseNarrow { dst: Dst, src: Src, ty: Type } => next, pure;
        }
    };
}

/// The kinds of operand an instruction can have, with their encoding (spec/bytecode.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperandKind {
    /// A register the instruction writes (u16).
    Dst,
    /// A register the instruction reads (u16).
    Src,
    /// A run of registers the instruction reads: first register (u16), count (u16).
    Range,
    /// An index into the constant pool (u32).
    Const,
    /// An index into the function table (u32).
    Func,
    /// An index into the type table (u32).
    Type,
    /// An index into the module's native import table (u32).
    Native,
    /// An index into the string pool (u32).
    Str,
    /// A jump target: a byte offset into the function's code on disk (u32), an instruction
    /// index in memory.
    Target,
    /// A signed immediate (i32).
    Imm,
    /// A small unsigned number (u16).
    Count,
}

impl OperandKind {
    /// The operand's size in bytes in the encoded instruction stream.
    pub const fn width(self) -> usize {
        match self {
            OperandKind::Dst | OperandKind::Src | OperandKind::Count => 2,
            OperandKind::Range => 4,
            OperandKind::Const
            | OperandKind::Func
            | OperandKind::Type
            | OperandKind::Native
            | OperandKind::Str
            | OperandKind::Target
            | OperandKind::Imm => 4,
        }
    }

    /// The name used in the opcode table of the spec and in diagnostics.
    pub const fn name(self) -> &'static str {
        match self {
            OperandKind::Dst => "Dst",
            OperandKind::Src => "Src",
            OperandKind::Range => "Range",
            OperandKind::Const => "Const",
            OperandKind::Func => "Func",
            OperandKind::Type => "Type",
            OperandKind::Native => "Native",
            OperandKind::Str => "Str",
            OperandKind::Target => "Target",
            OperandKind::Imm => "Imm",
            OperandKind::Count => "Count",
        }
    }
}

/// A register number within a frame.
pub type Reg = u16;

/// A run of `count` registers starting at `start`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct RegRange {
    pub start: Reg,
    pub count: u16,
}

impl RegRange {
    pub const fn new(start: Reg, count: u16) -> Self {
        RegRange { start, count }
    }

    /// The registers of the range, in order. A range that would run past `u16::MAX` is
    /// clipped; the verifier rejects such ranges against the frame size before this matters.
    pub fn regs(self) -> impl Iterator<Item = Reg> {
        let end = (self.start as u32 + self.count as u32).min(u16::MAX as u32 + 1);
        (self.start as u32..end).map(|r| r as Reg)
    }
}

/// One operand of an instruction, tagged with its kind. Used by the generic stages (encoder,
/// decoder, verifier, assembler); the interpreter matches on [`Instr`] fields directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Dst(Reg),
    Src(Reg),
    Range(RegRange),
    Const(u32),
    Func(u32),
    Type(u32),
    Native(u32),
    Str(u32),
    Target(u32),
    Imm(i32),
    Count(u16),
}

impl Operand {
    pub const fn kind(self) -> OperandKind {
        match self {
            Operand::Dst(_) => OperandKind::Dst,
            Operand::Src(_) => OperandKind::Src,
            Operand::Range(_) => OperandKind::Range,
            Operand::Const(_) => OperandKind::Const,
            Operand::Func(_) => OperandKind::Func,
            Operand::Type(_) => OperandKind::Type,
            Operand::Native(_) => OperandKind::Native,
            Operand::Str(_) => OperandKind::Str,
            Operand::Target(_) => OperandKind::Target,
            Operand::Imm(_) => OperandKind::Imm,
            Operand::Count(_) => OperandKind::Count,
        }
    }
}

/// Where control goes after an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Falls through to the next instruction.
    Next,
    /// Always continues at its `Target` operand.
    Jump,
    /// Continues at its `Target` operand or falls through.
    Branch,
    /// Leaves the function (return or throw).
    Stop,
}

/// Whether an instruction may suspend the interpreter with an effect for the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectClass {
    Pure,
    Yields,
}

/// The static description of one opcode: one row of the table.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    pub code: u8,
    pub name: &'static str,
    pub operands: &'static [(&'static str, OperandKind)],
    pub flow: Flow,
    pub effect: EffectClass,
    pub doc: &'static str,
}

macro_rules! operand_ty {
    (Dst) => {
        Reg
    };
    (Src) => {
        Reg
    };
    (Range) => {
        RegRange
    };
    (Const) => {
        u32
    };
    (Func) => {
        u32
    };
    (Type) => {
        u32
    };
    (Native) => {
        u32
    };
    (Str) => {
        u32
    };
    (Target) => {
        u32
    };
    (Imm) => {
        i32
    };
    (Count) => {
        u16
    };
}

macro_rules! flow_of {
    (next) => {
        Flow::Next
    };
    (jump) => {
        Flow::Jump
    };
    (branch) => {
        Flow::Branch
    };
    (stop) => {
        Flow::Stop
    };
}

macro_rules! effect_of {
    (pure) => {
        EffectClass::Pure
    };
    (yields) => {
        EffectClass::Yields
    };
}

macro_rules! define_instr {
    ($(
        $(#[doc = $doc:literal])*
        $code:literal $name:ident { $($field:ident : $kind:ident),* } => $flow:ident, $effect:ident;
    )*) => {
        /// An opcode: the first byte of an encoded instruction.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode {
            $($name = $code,)*
        }

        /// A decoded instruction. Jump targets are instruction indices within the function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum Instr {
            $(
                $(#[doc = $doc])*
                $name { $($field: operand_ty!($kind)),* },
            )*
        }

        /// Every opcode, in table order.
        pub const OPCODES: &[OpInfo] = &[
            $(OpInfo {
                code: $code,
                name: stringify!($name),
                operands: &[$((stringify!($field), OperandKind::$kind)),*],
                flow: flow_of!($flow),
                effect: effect_of!($effect),
                doc: concat!($($doc, "\n"),*),
            },)*
        ];

        impl Opcode {
            /// The opcode with this byte, if any.
            pub fn from_byte(byte: u8) -> Option<Opcode> {
                match byte {
                    $($code => Some(Opcode::$name),)*
                    _ => None,
                }
            }

            /// The opcode with this name (as written in assembly), if any.
            pub fn from_name(name: &str) -> Option<Opcode> {
                match name {
                    $(stringify!($name) => Some(Opcode::$name),)*
                    _ => None,
                }
            }

            /// This opcode's row of the table.
            pub fn info(self) -> &'static OpInfo {
                match self {
                    $(Opcode::$name => {
                        const INFO: OpInfo = OpInfo {
                            code: $code,
                            name: stringify!($name),
                            operands: &[$((stringify!($field), OperandKind::$kind)),*],
                            flow: flow_of!($flow),
                            effect: effect_of!($effect),
                            doc: concat!($($doc, "\n"),*),
                        };
                        &INFO
                    })*
                }
            }
        }

        impl Instr {
            /// The instruction's opcode.
            pub fn opcode(&self) -> Opcode {
                match self {
                    $(Instr::$name { .. } => Opcode::$name,)*
                }
            }

            /// The instruction's operands, in table order, tagged with their kinds.
            #[allow(unused_variables)]
            pub fn operands(&self) -> Vec<Operand> {
                match *self {
                    $(Instr::$name { $($field),* } => vec![$(Operand::$kind($field)),*],)*
                }
            }

            /// Builds an instruction from an opcode and its operands; `None` when the operands
            /// do not match the opcode's row in number or kind.
            #[allow(unused_mut, unused_variables)]
            pub fn from_operands(op: Opcode, operands: &[Operand]) -> Option<Instr> {
                match op {
                    $(Opcode::$name => {
                        let mut it = operands.iter().copied();
                        let instr = Instr::$name {
                            $($field: match it.next()? {
                                Operand::$kind(v) => v,
                                _ => return None,
                            },)*
                        };
                        if it.next().is_some() {
                            return None;
                        }
                        Some(instr)
                    })*
                }
            }
        }
    };
}

for_each_op!(define_instr);

impl Instr {
    /// The same instruction with every `Target` operand passed through `f`.
    pub fn map_targets(&self, mut f: impl FnMut(u32) -> u32) -> Instr {
        let ops: Vec<Operand> = self
            .operands()
            .into_iter()
            .map(|o| match o {
                Operand::Target(t) => Operand::Target(f(t)),
                other => other,
            })
            .collect();
        // Invariant: only the values of Target operands changed, so the operands still match
        // the opcode's row.
        Instr::from_operands(self.opcode(), &ops).unwrap_or(*self)
    }

    /// The encoded size of this instruction in bytes: the opcode byte and its operands.
    pub fn encoded_len(&self) -> usize {
        1 + self
            .opcode()
            .info()
            .operands
            .iter()
            .map(|(_, k)| k.width())
            .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for info in OPCODES {
            assert!(seen.insert(info.code), "duplicate code {:#x}", info.code);
            let op = Opcode::from_byte(info.code).expect("code decodes");
            assert_eq!(op.info().name, info.name);
            assert_eq!(Opcode::from_name(info.name), Some(op));
        }
    }

    #[test]
    fn operands_round_trip_through_from_operands() {
        let i = Instr::Slice {
            dst: 1,
            obj: 2,
            lo: 3,
            hi: 4,
        };
        assert_eq!(Instr::from_operands(i.opcode(), &i.operands()), Some(i));
        assert_eq!(
            Instr::from_operands(Opcode::Slice, &[Operand::Dst(1)]),
            None
        );
        assert_eq!(i.encoded_len(), 9);
    }

    #[test]
    fn only_jumps_and_branches_have_targets() {
        for info in OPCODES {
            let has_target = info.operands.iter().any(|(_, k)| *k == OperandKind::Target);
            let needs = matches!(info.flow, Flow::Jump | Flow::Branch);
            assert_eq!(has_target, needs, "{}", info.name);
        }
    }
}
