//! Shared by the format tests: a small deterministic random number generator and a generator
//! of random *valid* modules, whose instructions are built from the opcode table so that every
//! opcode is exercised without listing them by hand.

#![allow(dead_code)] // each test binary uses its own subset

use aivm_vm::format::{
    encode, is_narrow, native_by_name, Constant, Export, Field, Function, Instr, LineEntry,
    ModelSlot, Module, OpInfo, Opcode, Operand, OperandKind, Param, RegRange, TypeDesc, LLM_CALL,
    NATIVES, OPCODES,
};

/// SplitMix64: deterministic, seedable, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Byte-exact module equality: the encoding is canonical and injective, and unlike `==` it
/// treats NaN constants with the same bits as equal.
pub fn same(a: &Module, b: &Module) -> bool {
    encode(a) == encode(b)
}

const ODD_STRINGS: &[&str] = &[
    "",
    "main",
    "a",
    "b",
    "hello, world\n",
    "tab\there \"quoted\" back\\slash",
    "unicode é ü 😀 \u{200b} \u{202e} \u{feff}",
    "\0nul\u{1}\u{7f}\r\n",
    "; not a comment",
    "{not: interpolated}",
];

fn random_string(rng: &mut Rng) -> String {
    if rng.chance(60) {
        return ODD_STRINGS[rng.below(ODD_STRINGS.len())].to_string();
    }
    let n = rng.below(12);
    (0..n)
        .map(|_| match rng.below(4) {
            0 => char::from_u32(rng.below(0x80) as u32).unwrap_or('?'),
            1 => char::from_u32(0x20 + rng.below(0x5f) as u32).unwrap_or('?'),
            2 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'),
            _ => ['é', '😀', '\n', '"', '\\', ';', '\u{2028}'][rng.below(7)],
        })
        .collect()
}

fn random_float(rng: &mut Rng) -> f64 {
    const SPECIAL: &[u64] = &[
        0x0000_0000_0000_0000, // 0.0
        0x8000_0000_0000_0000, // -0.0
        0x7ff0_0000_0000_0000, // inf
        0xfff0_0000_0000_0000, // -inf
        0x7ff8_0000_0000_0000, // NaN
        0xfff8_0000_0000_0001, // negative NaN with a payload
        0x0000_0000_0000_0001, // smallest subnormal
        0x3ff8_0000_0000_0000, // 1.5
        0x4341_c379_37e0_8000, // 1e16
    ];
    if rng.chance(50) {
        f64::from_bits(SPECIAL[rng.below(SPECIAL.len())])
    } else {
        f64::from_bits(rng.next())
    }
}

/// A random module that the verifier must accept.
pub fn random_valid_module(rng: &mut Rng) -> Module {
    let mut m = Module::default();
    let nstr = 3 + rng.below(8);
    m.strings = (0..nstr).map(|_| random_string(rng)).collect();
    let intern = |m: &mut Module, s: &str| -> u32 {
        m.strings.push(s.to_string());
        (m.strings.len() - 1) as u32
    };
    // Natives: always one pure and one effect, plus a few more.
    for name in ["core.len", "io.print"] {
        let id = intern(&mut m, name);
        m.natives.push(id);
    }
    for _ in 0..rng.below(4) {
        let n = NATIVES[rng.below(NATIVES.len())];
        let id = intern(&mut m, n.name);
        m.natives.push(id);
    }
    let (alice, bob) = (intern(&mut m, "alice"), intern(&mut m, "bob"));
    let nstr = m.strings.len();
    // The manifest lists the effect natives (V21) and maybe a resource and some authority.
    fill_manifest(&mut m);
    if rng.chance(50) {
        m.manifest.read = vec![alice];
    }
    m.manifest.declassify = rng.chance(50);
    m.manifest.endorse = rng.chance(50);
    // Constants: one of each kind, then random ones.
    m.constants.push(Constant::Int(rng.next() as i64));
    m.constants.push(Constant::Float(random_float(rng)));
    m.constants.push(Constant::Str(rng.below(nstr) as u32));
    m.constants.push(Constant::Shape(vec![0, 1]));
    m.constants.push(Constant::Readers(Some(vec![alice, bob])));
    m.constants.push(Constant::Readers(None));
    for _ in 0..rng.below(6) {
        let c = match rng.below(4) {
            0 => Constant::Int(rng.next() as i64),
            1 => Constant::Float(random_float(rng)),
            2 => Constant::Str(rng.below(nstr) as u32),
            _ => {
                let n = rng.below(nstr.min(4));
                let start = rng.below(nstr - n + 1);
                Constant::Shape((start as u32..(start + n) as u32).collect())
            }
        };
        m.constants.push(c);
    }
    // Types refer only to earlier types, or to themselves through a container.
    m.types.push(TypeDesc::Any);
    for i in 1..1 + rng.below(10) as u32 {
        let earlier = rng.below(i as usize) as u32;
        let t = match rng.below(15) {
            0 => TypeDesc::Null,
            1 => TypeDesc::Bool,
            2 => TypeDesc::Int,
            3 => TypeDesc::Float,
            4 => TypeDesc::Str,
            5 => TypeDesc::List(if rng.chance(30) { i } else { earlier }),
            6 => TypeDesc::Map(earlier),
            7 => TypeDesc::Record(
                (0..rng.below(3))
                    .map(|k| Field {
                        name: k as u32,
                        ty: if rng.chance(20) { i } else { earlier },
                    })
                    .collect(),
            ),
            8 => TypeDesc::Optional(earlier),
            9 => TypeDesc::StrLit(rng.below(nstr) as u32),
            10 => TypeDesc::Union(
                (0..rng.below(3))
                    .map(|_| rng.below(i as usize) as u32)
                    .collect(),
            ),
            11 => TypeDesc::Func,
            12 => TypeDesc::Error,
            13 => TypeDesc::Named {
                name: rng.below(nstr) as u32,
                ty: earlier,
                doc: rng.chance(50).then(|| rng.below(nstr) as u32),
            },
            _ => TypeDesc::Any,
        };
        m.types.push(t);
    }
    let ntypes = m.types.len();
    // Model slots with distinct logical names (rule V19).
    let mut logical_seen = std::collections::HashSet::new();
    for _ in 0..rng.below(3) {
        let logical = rng.below(nstr) as u32;
        if logical_seen.insert(m.strings[logical as usize].clone()) {
            m.models.push(ModelSlot {
                name: rng.below(nstr) as u32,
                logical,
            });
        }
    }
    m.files = (0..rng.below(3)).map(|_| rng.below(nstr) as u32).collect();
    // Signatures first, so calls can be checked against them.
    let nfuncs = 1 + rng.below(4);
    for _ in 0..nfuncs {
        let nparams = rng.below(3);
        let nregs = (nparams + 1 + rng.below(8)) as u16;
        m.functions.push(Function {
            name: rng.below(nstr) as u32,
            params: (0..nparams)
                .map(|_| Param {
                    name: rng.below(nstr) as u32,
                    ty: rng.below(ntypes) as u32,
                })
                .collect(),
            ret: rng.below(ntypes) as u32,
            nregs,
            ncaps: rng.below(3) as u16,
            code: vec![],
            lines: vec![],
            file: (!m.files.is_empty() && rng.chance(70)).then(|| rng.below(m.files.len()) as u32),
            doc: rng.chance(30).then(|| rng.below(nstr) as u32),
        });
    }
    for fi in 0..nfuncs {
        let code = random_body(&m, fi, rng);
        let mut pcs: Vec<u32> = (0..rng.below(4))
            .map(|_| rng.below(code.len()) as u32)
            .collect();
        pcs.sort_unstable();
        m.functions[fi].lines = pcs
            .into_iter()
            .map(|pc| LineEntry {
                pc,
                line: rng.next() as u32,
                col: rng.below(200) as u32,
            })
            .collect();
        m.functions[fi].code = code;
    }
    let entries: Vec<usize> = (0..nfuncs)
        .filter(|&f| m.functions[f].params.len() <= 1)
        .collect();
    if !entries.is_empty() && rng.chance(80) {
        m.entry = Some(entries[rng.below(entries.len())] as u32);
    }
    let mut seen = std::collections::HashSet::new();
    let names: Vec<usize> = (0..nstr)
        .filter(|&s| rng.chance(30) && seen.insert(m.strings[s].clone()))
        .collect();
    for (k, name) in names.into_iter().enumerate() {
        m.exports.push(Export {
            name: name as u32,
            func: ((k + name) % nfuncs) as u32,
        });
    }
    m
}

/// Sets the manifest's tools to the effect natives the module imports (sorted by name, each
/// once), as the compiler does.
pub fn fill_manifest(m: &mut Module) {
    let mut tools: Vec<u32> = m
        .natives
        .iter()
        .copied()
        .filter(|&n| native_by_name(m.str(n)).is_some_and(|(_, i)| i.effect && i.name != LLM_CALL))
        .collect();
    tools.sort_by(|a, b| m.str(*a).cmp(m.str(*b)));
    tools.dedup_by(|a, b| m.str(*a) == m.str(*b));
    m.manifest.tools = tools;
}

/// A body for function `fi`: define every register, then random instructions, then `Return`.
fn random_body(m: &Module, fi: usize, rng: &mut Rng) -> Vec<Instr> {
    let f = &m.functions[fi];
    let mut code: Vec<Instr> = (f.params.len() as u16..f.nregs)
        .map(|r| Instr::LoadNull { dst: r })
        .collect();
    let n = rng.below(24);
    let mut tries = 0;
    while code.len() < f.params.len() + n && tries < 200 {
        tries += 1;
        let info = &OPCODES[rng.below(OPCODES.len())];
        if let Some(i) = instr_for(m, fi, info, rng) {
            code.push(i);
        }
    }
    code.push(Instr::Return { src: 0 });
    // Targets were drawn as raw numbers: bring them into the code.
    let len = code.len() as u32;
    code.iter().map(|i| i.map_targets(|t| t % len)).collect()
}

/// A valid instruction of opcode `info` for function `fi` of `m`, if the module allows one.
/// Jump targets are random numbers, to be reduced modulo the code length by the caller.
pub fn instr_for(m: &Module, fi: usize, info: &OpInfo, rng: &mut Rng) -> Option<Instr> {
    let f = &m.functions[fi];
    let op = Opcode::from_name(info.name)?;
    let nregs = f.nregs as usize;
    let reg = |rng: &mut Rng| rng.below(nregs) as u16;
    let range = |rng: &mut Rng, count: usize| -> Option<RegRange> {
        (count <= nregs).then(|| RegRange::new(rng.below(nregs - count + 1) as u16, count as u16))
    };
    // What the opcode needs of the module, chosen first so its range count can follow.
    let pick = |rng: &mut Rng, v: Vec<usize>| -> Option<usize> {
        (!v.is_empty()).then(|| v[rng.below(v.len())])
    };
    let native_kind = |effect: bool| -> Vec<usize> {
        (0..m.natives.len())
            .filter(|&i| {
                native_by_name(m.str(m.natives[i]))
                    .is_some_and(|(_, n)| n.effect == effect && n.name != LLM_CALL)
            })
            .collect()
    };
    let readers = |public: bool| -> Vec<usize> {
        (0..m.constants.len())
            .filter(|&k| match &m.constants[k] {
                Constant::Readers(r) => public || r.is_some(),
                _ => false,
            })
            .collect()
    };
    let mut ty = rng.below(m.types.len());
    let (func, konst, native, count) = match op {
        Opcode::Classify => (0, pick(rng, readers(false))?, 0, 0),
        Opcode::Declassify if m.manifest.declassify => (0, pick(rng, readers(true))?, 0, 0),
        Opcode::Declassify => return None,
        Opcode::Endorse if !m.manifest.endorse => return None,
        Opcode::EndorseNarrow => {
            ty = pick(
                rng,
                (0..m.types.len())
                    .filter(|&t| is_narrow(&m.types, t as u32))
                    .collect(),
            )?;
            (0, 0, 0, 0)
        }
        Opcode::LoadFunc => (
            pick(
                rng,
                (0..m.functions.len())
                    .filter(|&g| m.functions[g].ncaps == 0)
                    .collect(),
            )?,
            0,
            0,
            0,
        ),
        Opcode::Closure => {
            let g = rng.below(m.functions.len());
            (g, 0, 0, m.functions[g].ncaps as usize)
        }
        Opcode::CallFn => {
            let g = rng.below(m.functions.len());
            (g, 0, 0, m.functions[g].params.len())
        }
        Opcode::LoadConst => (
            0,
            pick(
                rng,
                (0..m.constants.len())
                    .filter(|&k| {
                        !matches!(m.constants[k], Constant::Shape(_) | Constant::Readers(_))
                    })
                    .collect(),
            )?,
            0,
            0,
        ),
        Opcode::NewRecord => {
            let k = pick(
                rng,
                (0..m.constants.len())
                    .filter(|&k| matches!(m.constants[k], Constant::Shape(_)))
                    .collect(),
            )?;
            let Constant::Shape(s) = &m.constants[k] else {
                return None;
            };
            (0, k, 0, s.len())
        }
        Opcode::CallNative | Opcode::Effect => {
            let n = pick(rng, native_kind(op == Opcode::Effect))?;
            let (_, info) = native_by_name(m.str(m.natives[n]))?;
            (0, 0, n, info.arity as usize)
        }
        Opcode::NewMap => (0, 0, 0, 2 * rng.below(nregs / 2 + 1)),
        Opcode::UpvalGet | Opcode::UpvalSet | Opcode::UpvalCell => {
            if f.ncaps == 0 {
                return None;
            }
            (0, 0, 0, rng.below(f.ncaps as usize))
        }
        _ => (0, 0, 0, rng.below(nregs + 1)),
    };
    let mut ops = Vec::new();
    for &(_, kind) in info.operands {
        ops.push(match kind {
            OperandKind::Dst => Operand::Dst(reg(rng)),
            OperandKind::Src => Operand::Src(reg(rng)),
            OperandKind::Range => Operand::Range(range(rng, count)?),
            OperandKind::Const => Operand::Const(konst as u32),
            OperandKind::Func => Operand::Func(func as u32),
            OperandKind::Type => Operand::Type(ty as u32),
            OperandKind::Native => Operand::Native(native as u32),
            OperandKind::Str => Operand::Str(rng.below(m.strings.len()) as u32),
            OperandKind::Target => Operand::Target(rng.next() as u32),
            OperandKind::Imm => Operand::Imm(rng.next() as i32),
            OperandKind::Count => Operand::Count(count as u16),
        });
    }
    Instr::from_operands(op, &ops)
}

/// A module that uses every opcode of the table once, in function 0 (which has two captured
/// cells), with a plain function 1 beside it.
pub fn every_opcode_module() -> Module {
    let mut rng = Rng(7);
    let mut m = Module {
        strings: ["main", "a", "b", "core.len", "io.print", "doc", "file.ail"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        constants: vec![
            Constant::Int(-7),
            Constant::Float(-0.0),
            Constant::Str(5),
            Constant::Shape(vec![1, 2]),
            Constant::Readers(Some(vec![1, 2])),
        ],
        types: vec![TypeDesc::Any, TypeDesc::List(0), TypeDesc::Bool],
        natives: vec![3, 4],
        entry: Some(0),
        files: vec![6],
        exports: vec![Export { name: 0, func: 0 }],
        ..Module::default()
    };
    m.functions.push(Function {
        name: 0,
        params: vec![Param { name: 1, ty: 0 }],
        ret: 0,
        nregs: 6,
        ncaps: 2,
        code: vec![],
        lines: vec![LineEntry {
            pc: 0,
            line: 1,
            col: 1,
        }],
        file: Some(0),
        doc: Some(5),
    });
    // A plain function for LoadFunc, which needs a callee without captures.
    m.functions.push(Function {
        name: 2,
        params: vec![],
        ret: 1,
        nregs: 1,
        ncaps: 0,
        code: vec![Instr::LoadInt { dst: 0, imm: 1 }, Instr::Return { src: 0 }],
        lines: vec![],
        file: None,
        doc: None,
    });
    fill_manifest(&mut m);
    m.manifest.declassify = true;
    m.manifest.endorse = true;
    let mut code: Vec<Instr> = (1..6).map(|r| Instr::LoadNull { dst: r }).collect();
    for info in OPCODES {
        let i = instr_for(&m, 0, info, &mut rng)
            .unwrap_or_else(|| panic!("no valid {} for the sample module", info.name));
        code.push(i);
    }
    code.push(Instr::Return { src: 0 });
    let last = (code.len() - 1) as u32;
    m.functions[0].code = code.iter().map(|i| i.map_targets(|_| last)).collect();
    m
}

/// An instruction of opcode `info` with arbitrary operand values (likely invalid).
pub fn wild_instr(info: &OpInfo, rng: &mut Rng) -> Instr {
    let small = |rng: &mut Rng| -> u32 {
        if rng.chance(70) {
            rng.below(20) as u32
        } else {
            rng.next() as u32
        }
    };
    let ops: Vec<Operand> = info
        .operands
        .iter()
        .map(|&(_, kind)| match kind {
            OperandKind::Dst => Operand::Dst(small(rng) as u16),
            OperandKind::Src => Operand::Src(small(rng) as u16),
            OperandKind::Range => {
                Operand::Range(RegRange::new(small(rng) as u16, small(rng) as u16))
            }
            OperandKind::Const => Operand::Const(small(rng)),
            OperandKind::Func => Operand::Func(small(rng)),
            OperandKind::Type => Operand::Type(small(rng)),
            OperandKind::Native => Operand::Native(small(rng)),
            OperandKind::Str => Operand::Str(small(rng)),
            OperandKind::Target => Operand::Target(small(rng)),
            OperandKind::Imm => Operand::Imm(rng.next() as i32),
            OperandKind::Count => Operand::Count(small(rng) as u16),
        })
        .collect();
    let op = Opcode::from_name(info.name).expect("table names are opcodes");
    Instr::from_operands(op, &ops).expect("operands follow the table row")
}

/// A random module with no guarantee of validity: a valid one with some parts made wild.
pub fn random_any_module(rng: &mut Rng) -> Module {
    let mut m = random_valid_module(rng);
    for f in &mut m.functions {
        for i in f.code.iter_mut() {
            if rng.chance(15) {
                *i = wild_instr(&OPCODES[rng.below(OPCODES.len())], rng);
            }
        }
        if rng.chance(10) {
            f.code.clear();
        }
        if rng.chance(20) {
            f.lines.push(LineEntry {
                pc: rng.next() as u32,
                line: 0,
                col: u32::MAX,
            });
        }
        if rng.chance(10) {
            f.nregs = rng.next() as u16;
        }
    }
    if rng.chance(20) {
        m.entry = Some(rng.next() as u32);
    }
    if rng.chance(20) {
        m.natives.push(rng.below(m.strings.len() + 3) as u32);
    }
    if rng.chance(20) {
        m.types.push(TypeDesc::Union(vec![m.types.len() as u32]));
    }
    if rng.chance(20) {
        m.constants.push(Constant::Shape(vec![u32::MAX, 0]));
    }
    m
}
