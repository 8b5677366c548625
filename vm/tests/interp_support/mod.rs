//! A tiny module builder and runner for the interpreter tests: programs are written as
//! instruction lists, so each test controls exactly the code the interpreter runs.

#![allow(dead_code)] // each test binary uses its own subset

use aivm_vm::format::{
    Constant, Function, Instr, LineEntry, Module, Param, RegRange, TypeDesc, VerifiedModule,
};
use aivm_vm::{HostError, HostValue, Limits, Step, Vm, VmError};

pub fn rr(start: u16, count: u16) -> RegRange {
    RegRange::new(start, count)
}

#[derive(Default)]
pub struct Builder {
    pub m: Module,
}

impl Builder {
    pub fn new() -> Builder {
        let mut b = Builder::default();
        b.m.types.push(TypeDesc::Any);
        let f = b.str("test.ail");
        b.m.files.push(f);
        b
    }

    pub fn str(&mut self, s: &str) -> u32 {
        if let Some(i) = self.m.strings.iter().position(|x| x == s) {
            return i as u32;
        }
        self.m.strings.push(s.to_string());
        (self.m.strings.len() - 1) as u32
    }

    pub fn konst(&mut self, c: Constant) -> u32 {
        self.m.constants.push(c);
        (self.m.constants.len() - 1) as u32
    }

    pub fn kstr(&mut self, s: &str) -> u32 {
        let id = self.str(s);
        self.konst(Constant::Str(id))
    }

    pub fn shape(&mut self, names: &[&str]) -> u32 {
        let ids = names.iter().map(|n| self.str(n)).collect();
        self.konst(Constant::Shape(ids))
    }

    pub fn native(&mut self, name: &str) -> u32 {
        let id = self.str(name);
        if let Some(i) = self.m.natives.iter().position(|x| *x == id) {
            return i as u32;
        }
        self.m.natives.push(id);
        (self.m.natives.len() - 1) as u32
    }

    pub fn ty(&mut self, t: TypeDesc) -> u32 {
        self.m.types.push(t);
        (self.m.types.len() - 1) as u32
    }

    /// Adds a function; instruction `pc` is at line `pc + 1`, column 1 of test.ail.
    pub fn func(&mut self, name: &str, nparams: usize, nregs: u16, code: Vec<Instr>) -> u32 {
        self.func_caps(name, nparams, nregs, 0, code)
    }

    pub fn func_caps(
        &mut self,
        name: &str,
        nparams: usize,
        nregs: u16,
        ncaps: u16,
        code: Vec<Instr>,
    ) -> u32 {
        let name = self.str(name);
        let pname = self.str("p");
        let lines = (0..code.len() as u32)
            .map(|pc| LineEntry {
                pc,
                line: pc + 1,
                col: 1,
            })
            .collect();
        self.m.functions.push(Function {
            name,
            params: (0..nparams).map(|_| Param { name: pname, ty: 0 }).collect(),
            ret: 0,
            nregs,
            ncaps,
            code,
            lines,
            file: Some(0),
            doc: None,
        });
        (self.m.functions.len() - 1) as u32
    }

    /// Reserves a function slot (for mutual references), filled by `set_func`.
    pub fn declare(&mut self, name: &str) -> u32 {
        self.func(name, 0, 1, vec![Instr::Return { src: 0 }])
    }

    pub fn set_code(&mut self, f: u32, nparams: usize, nregs: u16, ncaps: u16, code: Vec<Instr>) {
        let pname = self.str("p");
        let func = &mut self.m.functions[f as usize];
        func.params = (0..nparams)
            .map(|_| aivm_vm::format::Param { name: pname, ty: 0 })
            .collect();
        func.nregs = nregs;
        func.ncaps = ncaps;
        func.lines = (0..code.len() as u32)
            .map(|pc| LineEntry {
                pc,
                line: pc + 1,
                col: 1,
            })
            .collect();
        func.code = code;
    }

    /// A module whose entry is `main` with this code, verified.
    pub fn main(mut self, nregs: u16, code: Vec<Instr>) -> VerifiedModule {
        let f = self.func("main", 0, nregs, code);
        self.m.entry = Some(f);
        self.build()
    }

    /// The module, verified: the interpreter runs nothing else. Its manifest lists every
    /// effect native it imports as a tool (what the compiler would write), and keeps any
    /// authority a test gave it.
    pub fn build(mut self) -> VerifiedModule {
        fill_tools(&mut self.m);
        match VerifiedModule::new(self.m) {
            Ok(v) => v,
            Err(e) => panic!("test module does not verify: {e}"),
        }
    }
}

/// The output of a run: printed lines and the final value or error.
#[derive(Debug)]
pub struct Outcome {
    pub out: Vec<String>,
    pub result: Result<HostValue, VmError>,
    /// The labels of printed values.
    pub labels: Vec<String>,
}

impl Outcome {
    /// The printed lines, panicking if the run failed.
    pub fn lines(self) -> Vec<String> {
        if let Err(e) = &self.result {
            panic!("run failed: {e}\noutput so far: {:?}", self.out);
        }
        self.out
    }

    /// The kind and message of the uncaught error the run ended with, panicking otherwise.
    pub fn uncaught(self) -> (String, String) {
        match self.result {
            Err(VmError::Uncaught { kind, message, .. }) => (kind, message),
            other => panic!("expected an uncaught error, got {other:?} / {:?}", self.out),
        }
    }
}

/// Runs `main` with a host that prints into a buffer and answers other effects from `answer`.
pub fn run_with(
    m: VerifiedModule,
    limits: Limits,
    mut answer: impl FnMut(&str, &[HostValue]) -> Result<HostValue, HostError>,
) -> Outcome {
    let mut vm = Vm::new(&m, limits).expect("module loads");
    vm.start_main(vec![]).expect("main starts");
    let mut out = Vec::new();
    let mut labels = Vec::new();
    loop {
        match vm.run() {
            Ok(Step::Done { value, .. }) => {
                return Outcome {
                    out,
                    result: Ok(value),
                    labels,
                };
            }
            Ok(Step::Effect(req)) => {
                let r = if req.native == "io.print" {
                    out.push(req.args[0].as_str().unwrap_or("?").to_string());
                    labels.push(req.args[0].label.to_string());
                    Ok(HostValue::null())
                } else {
                    answer(&req.native, &req.args)
                };
                vm.resume(req.task, r).expect("resume");
            }
            Ok(Step::Idle) => {
                return Outcome {
                    out,
                    result: Err(vm.deadlock().unwrap_or(VmError::Idle)),
                    labels,
                }
            }
            Err(e) => {
                return Outcome {
                    out,
                    result: Err(e),
                    labels,
                }
            }
        }
    }
}

pub fn run(m: VerifiedModule) -> Outcome {
    run_with(m, Limits::default(), |n, _| {
        Err(HostError::new("IoError", format!("no {n}")))
    })
}

/// Runs `main` and returns the printed lines, panicking on an error.
pub fn output(m: VerifiedModule) -> Vec<String> {
    run(m).lines()
}

/// Sets the manifest's tools to the effect natives of the module's native table (sorted, each
/// once), as the compiler does; `llm.call` is reached through `CallLlm` and is not a tool.
pub fn fill_tools(m: &mut Module) {
    let mut tools: Vec<u32> = m
        .natives
        .iter()
        .copied()
        .filter(|&n| {
            aivm_vm::format::native_by_name(m.str(n))
                .is_some_and(|(_, info)| info.effect && info.name != aivm_vm::format::LLM_CALL)
        })
        .collect();
    tools.sort_by(|a, b| m.str(*a).cmp(m.str(*b)));
    tools.dedup_by(|a, b| m.str(*a) == m.str(*b));
    m.manifest.tools = tools;
}
