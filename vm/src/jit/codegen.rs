//! Bytecode to Cranelift IR, for the plans and regions of `analyze.rs`. Code works on unboxed
//! ints, floats and bools in Cranelift variables (two per register: an `i64` for ints, bools
//! and null, an `f64` for floats), with the budgets (fuel, nested calls left, register-stack
//! room left) in variables too; it never touches the heap.
//!
//! - A specialisation becomes `(ctx, fuel, calls, stack, args...) -> (result, fuel)`.
//!   Everything it cannot finish the way the interpreter would (an error, a limit, fuel
//!   running short) returns the fuel [`BAILED`]; callers pass it on at once, so a bail-out
//!   unwinds the whole native call tree having changed nothing the program can see, and
//!   `tier.rs` lets the interpreter run the call. A trampoline `(ctx, *const u64 args) -> u64`
//!   enters it from Rust.
//! - A loop region becomes `(ctx, *mut u64 registers) -> pc`: it reads the registers it holds
//!   from the array, and whatever it cannot do leaves at that instruction's pc with the
//!   registers written back, a run-time tag for those of mixed types, and the fuel in `ctx`.
//!
//! Fuel is charged per segment (a run of instructions entered only at its top) before the
//! segment runs, so compiled code never runs an instruction the interpreter would have refused
//! for lack of fuel; a region leaving mid-segment gives back the fuel of what did not run. On
//! success the total charged is exactly the interpreter's count.

use std::collections::HashMap;
use std::mem::ManuallyDrop;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{
    AbiParam, Block, InstBuilder, MemFlagsData, Signature, Type, Value as ClValue,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId as ClFuncId, Linkage, Module as _};

use super::analyze::{Key, Plan, Region, Ty};
use super::runtime::{self, JitCtx, BAILED};
use crate::format::{Constant, Instr, Module};

/// A compiled specialisation: its Cranelift id and its return type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Body {
    pub id: ClFuncId,
    pub ret: Ty,
}

/// The Cranelift module holding every function compiled so far, and reusable contexts.
pub(crate) struct Backend {
    /// Freed in `drop` (cranelift-jit leaks code memory unless asked to free it).
    module: ManuallyDrop<JITModule>,
    ctx: Context,
    fctx: FunctionBuilderContext,
    bodies: HashMap<Key, Body>,
    /// Entry trampolines by specialisation: `(ctx, *const u64 args) -> u64`.
    entries: HashMap<Key, ClFuncId>,
    names: usize,
}

fn cl_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The machine type of a value of static type `t`.
fn cl_ty(t: Ty) -> Type {
    match t {
        Ty::Float => F64,
        _ => I64,
    }
}

impl Backend {
    /// A backend for the host's architecture; an error when Cranelift does not support it.
    pub fn new() -> Result<Backend, String> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(cl_err)?;
        // As cranelift-jit requires: absolute relocations, no colocated libcalls.
        flags
            .set("use_colocated_libcalls", "false")
            .map_err(cl_err)?;
        flags.set("is_pic", "false").map_err(cl_err)?;
        let isa = cranelift_native::builder()
            .map_err(cl_err)?
            .finish(settings::Flags::new(flags))
            .map_err(cl_err)?;
        let module = JITModule::new(JITBuilder::with_isa(
            isa,
            cranelift_module::default_libcall_names(),
        ));
        Ok(Backend {
            ctx: module.make_context(),
            module: ManuallyDrop::new(module),
            fctx: FunctionBuilderContext::new(),
            bodies: HashMap::new(),
            entries: HashMap::new(),
            names: 0,
        })
    }

    fn name(&mut self, what: &str, func: u32) -> String {
        self.names += 1;
        format!("{what}{func}_{}", self.names)
    }

    /// `(ctx, fuel, calls left, stack left, args...) -> (result, fuel)`: the budgets travel in
    /// machine registers, and a fuel of [`BAILED`] returned says the call bailed out.
    fn body_sig(&self, key: &Key, ret: Ty) -> Signature {
        let mut sig = self.module.make_signature();
        for _ in 0..4 {
            sig.params.push(AbiParam::new(I64));
        }
        for t in &key.args {
            sig.params.push(AbiParam::new(cl_ty(*t)));
        }
        sig.returns.push(AbiParam::new(cl_ty(ret)));
        sig.returns.push(AbiParam::new(I64));
        sig
    }

    /// Declares and defines every plan not compiled yet; returns the body of each plan. The
    /// caller finalizes.
    fn define_plans(&mut self, module: &Module, plans: &[Plan]) -> Result<Vec<Body>, String> {
        // Declare first, so that calls between the new functions resolve.
        let mut ids = Vec::with_capacity(plans.len());
        let mut fresh = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            let body = match self.bodies.get(&p.key) {
                Some(b) => *b,
                None => {
                    let name = self.name("f", p.key.func);
                    let sig = self.body_sig(&p.key, p.ret);
                    let id = self
                        .module
                        .declare_function(&name, Linkage::Local, &sig)
                        .map_err(cl_err)?;
                    fresh.push(i);
                    Body { id, ret: p.ret }
                }
            };
            ids.push(body);
        }
        for &i in &fresh {
            let p = &plans[i];
            let mut callees = HashMap::new();
            for (&pc, &j) in &p.calls {
                let (callee, body) = plans.get(j).zip(ids.get(j)).ok_or("call index")?;
                callees.insert(pc, (callee.key.clone(), *body));
            }
            self.module.clear_context(&mut self.ctx);
            self.ctx.func.signature = self.body_sig(&p.key, p.ret);
            let unit = Unit {
                func: p.key.func,
                states: &p.states,
                callees,
                shape: Shape::Function {
                    key: &p.key,
                    ret: p.ret,
                },
            };
            self.define(module, ids[i].id, &unit)?;
        }
        for &i in &fresh {
            self.bodies.insert(plans[i].key.clone(), ids[i]);
        }
        Ok(ids)
    }

    /// Translates `unit` into the context and defines it as function `id`.
    fn define(&mut self, module: &Module, id: ClFuncId, unit: &Unit) -> Result<(), String> {
        let dump = std::env::var_os("AIVM_JIT_DUMP").is_some();
        let r = translate(self, module, unit).and_then(|()| {
            self.ctx.set_disasm(dump);
            self.module
                .define_function(id, &mut self.ctx)
                .map_err(|e| format!("{e:?}"))
        });
        if let Some(code) = self.ctx.compiled_code().filter(|_| dump) {
            eprintln!("{}", code.vcode.as_deref().unwrap_or(""));
        }
        self.module.clear_context(&mut self.ctx);
        r
    }

    /// Compiles every plan not compiled yet and an entry trampoline for the first, and
    /// returns the trampoline's address and the first plan's return type.
    pub fn compile(&mut self, module: &Module, plans: &[Plan]) -> Result<(*const u8, Ty), String> {
        let root = plans.first().ok_or("no plan")?;
        let ids = self.define_plans(module, plans)?;
        let entry = match self.entries.get(&root.key) {
            Some(id) => *id,
            None => {
                let id = self.trampoline(&root.key, ids[0])?;
                self.entries.insert(root.key.clone(), id);
                id
            }
        };
        self.module.finalize_definitions().map_err(cl_err)?;
        Ok((self.module.get_finalized_function(entry), ids[0].ret))
    }

    /// Compiles a loop region (and the specialisations it calls) into a native function
    /// `(ctx, *mut u64 registers) -> u64 exit pc` and returns its address. It reads the
    /// registers of the region's entry types from the array at entry, and writes those of the
    /// exit's types back before it returns.
    pub fn compile_region(
        &mut self,
        module: &Module,
        region: &Region,
    ) -> Result<*const u8, String> {
        let mut callees = HashMap::new();
        let mut bodies = Vec::with_capacity(region.callees.len());
        for plans in &region.callees {
            let ids = self.define_plans(module, plans)?;
            let (p, b) = plans.first().zip(ids.first()).ok_or("empty callee")?;
            bodies.push((p.key.clone(), *b));
        }
        for (&pc, &j) in &region.calls {
            callees.insert(pc, bodies.get(j).cloned().ok_or("callee index")?);
        }
        let mut sig = self.module.make_signature();
        sig.params.push(AbiParam::new(I64));
        sig.params.push(AbiParam::new(I64));
        sig.returns.push(AbiParam::new(I64));
        let name = self.name("loop", region.func);
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(cl_err)?;
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = sig;
        let unit = Unit {
            func: region.func,
            states: &region.states,
            callees,
            shape: Shape::Region(region),
        };
        self.define(module, id, &unit)?;
        self.module.finalize_definitions().map_err(cl_err)?;
        Ok(self.module.get_finalized_function(id))
    }

    /// `(ctx, args) -> u64`: loads the arguments from the array, calls the body, and returns
    /// the result's bits.
    fn trampoline(&mut self, key: &Key, body: Body) -> Result<ClFuncId, String> {
        let mut sig = self.module.make_signature();
        sig.params.push(AbiParam::new(I64));
        sig.params.push(AbiParam::new(I64));
        sig.returns.push(AbiParam::new(I64));
        let name = self.name("entry", key.func);
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(cl_err)?;
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = sig;
        let tcfg = self.module.target_config();
        {
            let callee = self
                .module
                .declare_func_in_func(body.id, &mut self.ctx.func);
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let block = b.create_block();
            b.append_block_params_for_function_params(block);
            b.switch_to_block(block);
            let params = b.block_params(block).to_vec();
            let (ctx, argv) = (params[0], params[1]);
            let fl = MemFlagsData::trusted();
            let mut args = vec![ctx];
            for o in [runtime::FUEL, runtime::CALLS, runtime::STACK] {
                args.push(b.ins().load(I64, fl, ctx, o as i32));
            }
            for (i, t) in key.args.iter().enumerate() {
                let v = b.ins().load(cl_ty(*t), fl, argv, (i * 8) as i32);
                args.push(v);
            }
            let call = b.ins().call(callee, &args);
            let (mut out, fuel) = (b.inst_results(call)[0], b.inst_results(call)[1]);
            // The fuel left, or the bail-out flag.
            let bailed = b.ins().icmp_imm_s(IntCC::Equal, fuel, BAILED as i64);
            let (yes, no, done) = (b.create_block(), b.create_block(), b.create_block());
            b.ins().brif(bailed, yes, &[], no, &[]);
            b.switch_to_block(yes);
            let one = b.ins().iconst(I64, 1);
            b.ins().store(fl, one, ctx, runtime::BAIL as i32);
            b.ins().jump(done, &[]);
            b.switch_to_block(no);
            b.ins().store(fl, fuel, ctx, runtime::FUEL as i32);
            b.ins().jump(done, &[]);
            b.switch_to_block(done);
            if body.ret == Ty::Float {
                out = b.ins().bitcast(I64, MemFlagsData::new(), out);
            }
            b.ins().return_(&[out]);
            b.seal_all_blocks();
            b.finalize(tcfg);
        }
        let r = self.module.define_function(id, &mut self.ctx);
        self.module.clear_context(&mut self.ctx);
        r.map_err(|e| format!("{e:?}"))?;
        Ok(id)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // SAFETY: the only pointers into the module's code are the entries kept by the `Jit`
        // that owns this backend, which is being dropped with it: no compiled code runs or can
        // run after this point. `module` is not used again (this is `drop`).
        unsafe { ManuallyDrop::take(&mut self.module).free_memory() }
    }
}

/// The instructions that start a segment: the entry, jump targets, whatever follows a branch,
/// a jump or a return, and the `extra` ones (a region's header and exits). A call does not end
/// a segment: the instructions after it are charged before it, which is exact when it
/// returns, and when it bails out the charge is undone with the rest (a specialisation is
/// undone whole; a region gives back the fuel from the call on).
fn leaders(code: &[Instr], extra: impl Iterator<Item = usize>) -> Vec<bool> {
    let mut lead = vec![false; code.len() + 1];
    lead[0] = true;
    for pc in extra {
        if let Some(l) = lead.get_mut(pc) {
            *l = true;
        }
    }
    for (pc, ins) in code.iter().enumerate() {
        let target = match *ins {
            Instr::Jump { target }
            | Instr::JumpIf { target, .. }
            | Instr::JumpIfNot { target, .. }
            | Instr::JumpIfNotLt { target, .. } => Some(target as usize),
            _ => None,
        };
        if let Some(t) = target {
            if let Some(l) = lead.get_mut(t) {
                *l = true;
            }
        }
        if target.is_some() || matches!(ins, Instr::Return { .. }) {
            lead[pc + 1] = true;
        }
    }
    lead
}

/// What `translate` emits.
pub(crate) enum Shape<'a> {
    /// A specialisation `(ctx, args...) -> result`, entered at its first instruction; whatever
    /// it cannot finish bails out of the whole entry.
    Function { key: &'a Key, ret: Ty },
    /// A loop region `(ctx, *mut u64 registers) -> exit pc`, entered at its header; whatever it
    /// cannot do leaves at that instruction with the registers written back.
    Region(&'a Region),
}

/// One function to translate: its bytecode function, the analysed state before each
/// instruction, and the specialisation (with its compiled body) each compiled `CallFn` calls.
pub(crate) struct Unit<'a> {
    pub func: u32,
    pub states: &'a [Option<Vec<Ty>>],
    pub callees: HashMap<usize, (Key, Body)>,
    pub shape: Shape<'a>,
}

/// Emits `unit` into `be.ctx.func`.
fn translate(be: &mut Backend, module: &Module, unit: &Unit) -> Result<(), String> {
    let f = module
        .functions
        .get(unit.func as usize)
        .ok_or("no such function")?;
    let code = &f.code;
    let nregs = f.nregs as usize;
    let states = unit.states;
    let region = match unit.shape {
        Shape::Region(r) => Some(r),
        Shape::Function { .. } => None,
    };
    let is_exit = |pc: usize| region.is_some_and(|r| r.exits.get(pc) == Some(&true));
    let extra: Vec<usize> = match region {
        Some(r) => std::iter::once(r.header)
            .chain((0..code.len()).filter(|&pc| is_exit(pc)))
            .collect(),
        None => Vec::new(),
    };
    let lead = leaders(code, extra.into_iter());
    let start = region.map_or(0, |r| r.header);
    // Callee references, declared before the builder borrows the function.
    let mut refs = HashMap::new();
    for (&pc, (_, body)) in &unit.callees {
        refs.insert(
            pc,
            be.module.declare_func_in_func(body.id, &mut be.ctx.func),
        );
    }
    let call_conv = be.module.isa().default_call_conv();
    let tcfg = be.module.target_config();
    let mut b = FunctionBuilder::new(&mut be.ctx.func, &mut be.fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let ctx = params[0];
    let vi: Vec<Variable> = (0..nregs).map(|_| b.declare_var(I64)).collect();
    let vf: Vec<Variable> = (0..nregs).map(|_| b.declare_var(F64)).collect();
    let zi = b.ins().iconst(I64, 0);
    let zf = b.ins().f64const(0.0);
    for r in 0..nregs {
        b.def_var(vi[r], zi);
        b.def_var(vf[r], zf);
    }
    // A region's run-time type tags, for registers whose static type is `Top` somewhere: each
    // write sets its register's tag, and an exit writes back what the tag says. (Constants
    // that Cranelift folds away wherever the type is static.)
    let vt: Vec<Variable> = match region {
        Some(_) => (0..nregs).map(|_| b.declare_var(I64)).collect(),
        None => Vec::new(),
    };
    let fl = MemFlagsData::trusted();
    // The budgets: fuel left, nested calls left (the depth limit and the native stack's bound),
    // registers left on the register stack.
    let vfuel = b.declare_var(I64);
    let vcalls = b.declare_var(I64);
    let vstack = b.declare_var(I64);
    // The register array of a region: read at entry, written at the exits.
    let mut regs_ptr = None;
    match unit.shape {
        Shape::Function { key, .. } => {
            b.def_var(vfuel, params[1]);
            b.def_var(vcalls, params[2]);
            b.def_var(vstack, params[3]);
            for (r, t) in key.args.iter().enumerate() {
                let var = if *t == Ty::Float { vf[r] } else { vi[r] };
                b.def_var(var, params[r + 4]);
            }
        }
        Shape::Region(rg) => {
            for (var, o) in [
                (vfuel, runtime::FUEL),
                (vcalls, runtime::CALLS),
                (vstack, runtime::STACK),
            ] {
                let v = b.ins().load(I64, fl, ctx, o as i32);
                b.def_var(var, v);
            }
            let ptr = params[1];
            for (r, t) in rg.entry.iter().enumerate() {
                let tag = b.ins().iconst(I64, runtime::tag_of(*t) as i64);
                if let Some(v) = vt.get(r) {
                    b.def_var(*v, tag);
                }
                let off = (r * 8) as i32;
                match t {
                    Ty::Float => {
                        let v = b.ins().load(F64, fl, ptr, off);
                        b.def_var(vf[r], v);
                    }
                    Ty::Int | Ty::Bool | Ty::Null => {
                        let v = b.ins().load(I64, fl, ptr, off);
                        b.def_var(vi[r], v);
                    }
                    _ => {}
                }
            }
            regs_ptr = Some(ptr);
        }
    }
    let ret = match unit.shape {
        Shape::Function { ret, .. } => ret,
        Shape::Region(_) => Ty::Int,
    };
    // The bail-out of a specialisation: flag it and return a dummy of the return type.
    let bail = b.create_block();
    // The exits of a region, by pc and the fuel to give back (charged for instructions of the
    // segment that did not run).
    let mut exits: HashMap<(usize, i64), Block> = HashMap::new();
    let blocks: Vec<Option<Block>> = (0..code.len())
        .map(|pc| (lead[pc] && states[pc].is_some()).then(|| b.create_block()))
        .collect();
    let first = blocks
        .get(start)
        .copied()
        .flatten()
        .ok_or("entry unreachable")?;
    b.ins().jump(first, &[]);

    let fl = MemFlagsData::trusted();
    let off = |o: usize| o as i32;
    let mut terminated = true;
    // Where the current segment ends: a guard at `pc` gives back `seg_end - pc` fuel.
    let mut seg_end = 0usize;
    // The block that leaves compiled code at `pc` giving back `refund` fuel.
    macro_rules! leave_at {
        ($pc:expr, $refund:expr) => {{
            match region {
                None => bail,
                Some(_) => *exits
                    .entry(($pc, $refund as i64))
                    .or_insert_with(|| b.create_block()),
            }
        }};
    }
    for (pc, ins) in code.iter().enumerate() {
        let Some(s) = &states[pc] else {
            continue;
        };
        if let Some(block) = blocks[pc] {
            if !terminated {
                b.ins().jump(block, &[]);
            }
            b.switch_to_block(block);
            terminated = false;
            if is_exit(pc) {
                // Not compiled: the interpreter runs it.
                let to = leave_at!(pc, 0);
                b.ins().jump(to, &[]);
                terminated = true;
                continue;
            }
            // Fuel for the segment.
            let len = (pc + 1..=code.len())
                .find(|&q| lead[q])
                .unwrap_or(code.len())
                - pc;
            seg_end = pc + len;
            let fuel = b.use_var(vfuel);
            let short = b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, fuel, len as i64);
            let go = b.create_block();
            let to = leave_at!(pc, 0);
            b.ins().brif(short, to, &[], go, &[]);
            b.switch_to_block(go);
            let rest = b.ins().iadd_imm_s(fuel, -(len as i64));
            b.def_var(vfuel, rest);
        } else if terminated {
            continue;
        }
        let refund = seg_end.saturating_sub(pc);
        let ty = |r: u16| s.get(r as usize).copied().unwrap_or(Ty::Top);
        // A `Bot` operand: the instruction is never reached (a value no call ever returns).
        let reads_bot = ins.operands().iter().any(|o| match *o {
            crate::format::Operand::Src(r) => ty(r) == Ty::Bot,
            crate::format::Operand::Range(rr) => rr.regs().any(|r| ty(r) == Ty::Bot),
            _ => false,
        });
        if reads_bot {
            let to = leave_at!(pc, refund);
            b.ins().jump(to, &[]);
            terminated = true;
            continue;
        }
        macro_rules! geti {
            ($r:expr) => {
                b.use_var(vi[$r as usize])
            };
        }
        macro_rules! getf {
            ($r:expr) => {
                match ty($r) {
                    Ty::Float => b.use_var(vf[$r as usize]),
                    _ => {
                        let i = b.use_var(vi[$r as usize]);
                        b.ins().fcvt_from_sint(F64, i)
                    }
                }
            };
        }
        macro_rules! seti {
            ($r:expr, $v:expr) => {{
                let v = $v;
                b.def_var(vi[$r as usize], v)
            }};
        }
        macro_rules! setf {
            ($r:expr, $v:expr) => {{
                let v = $v;
                b.def_var(vf[$r as usize], v)
            }};
        }
        // Continue in a fresh block when `cond` is false; leave before this instruction (bail
        // out of a specialisation) when it is true.
        macro_rules! bail_if {
            ($cond:expr) => {{
                let c = $cond;
                let go = b.create_block();
                let to = leave_at!(pc, refund);
                b.ins().brif(c, to, &[], go, &[]);
                b.switch_to_block(go);
            }};
        }
        macro_rules! boolean {
            ($c:expr) => {{
                let c = $c;
                b.ins().uextend(I64, c)
            }};
        }
        let both_int = |a: u16, c: u16| ty(a) == Ty::Int && ty(c) == Ty::Int;
        match *ins {
            Instr::Nop {} => {}
            Instr::Move { dst, src } => match ty(src) {
                Ty::Float => setf!(dst, b.use_var(vf[src as usize])),
                _ => seti!(dst, geti!(src)),
            },
            Instr::LoadNull { dst } | Instr::LoadFalse { dst } => {
                seti!(dst, b.ins().iconst(I64, 0))
            }
            Instr::LoadTrue { dst } => seti!(dst, b.ins().iconst(I64, 1)),
            Instr::LoadInt { dst, imm } => seti!(dst, b.ins().iconst(I64, imm as i64)),
            Instr::LoadConst { dst, k } => match module.constants.get(k as usize) {
                Some(Constant::Int(i)) => seti!(dst, b.ins().iconst(I64, *i)),
                Some(Constant::Float(x)) => setf!(dst, b.ins().f64const(*x)),
                _ => return Err("constant".into()),
            },
            Instr::Add { dst, a, b: c }
            | Instr::Sub { dst, a, b: c }
            | Instr::Mul { dst, a, b: c }
                if both_int(a, c) =>
            {
                let (x, y) = (geti!(a), geti!(c));
                let (r, of) = match ins {
                    Instr::Add { .. } => b.ins().sadd_overflow(x, y),
                    Instr::Sub { .. } => b.ins().ssub_overflow(x, y),
                    _ => b.ins().smul_overflow(x, y),
                };
                bail_if!(of);
                seti!(dst, r);
            }
            Instr::Div { dst, a, b: c } | Instr::Mod { dst, a, b: c } if both_int(a, c) => {
                let (x, y) = (geti!(a), geti!(c));
                let zero = b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                bail_if!(zero);
                // i64::MIN / -1 and i64::MIN % -1 overflow (checked_div / checked_rem).
                let m1 = b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                let min = b.ins().icmp_imm_s(IntCC::Equal, x, i64::MIN);
                let both = b.ins().band(m1, min);
                bail_if!(both);
                let r = match ins {
                    Instr::Div { .. } => b.ins().sdiv(x, y),
                    _ => b.ins().srem(x, y),
                };
                seti!(dst, r);
            }
            Instr::Add { dst, a, b: c }
            | Instr::Sub { dst, a, b: c }
            | Instr::Mul { dst, a, b: c }
            | Instr::Div { dst, a, b: c }
            | Instr::Mod { dst, a, b: c } => {
                let (x, y) = (getf!(a), getf!(c));
                let r = float_op(&mut b, ins, x, y, call_conv);
                setf!(dst, r);
            }
            Instr::Neg { dst, src } => match ty(src) {
                Ty::Int => {
                    let x = geti!(src);
                    let min = b.ins().icmp_imm_s(IntCC::Equal, x, i64::MIN);
                    bail_if!(min);
                    seti!(dst, b.ins().ineg(x));
                }
                _ => {
                    let x = getf!(src);
                    setf!(dst, b.ins().fneg(x));
                }
            },
            Instr::AddImm { dst, src, imm } | Instr::MulImm { dst, src, imm } => match ty(src) {
                Ty::Int => {
                    let x = geti!(src);
                    let y = b.ins().iconst(I64, imm as i64);
                    let (r, of) = match ins {
                        Instr::AddImm { .. } => b.ins().sadd_overflow(x, y),
                        _ => b.ins().smul_overflow(x, y),
                    };
                    bail_if!(of);
                    seti!(dst, r);
                }
                _ => {
                    let x = getf!(src);
                    let y = b.ins().f64const(imm as f64);
                    let r = match ins {
                        Instr::AddImm { .. } => b.ins().fadd(x, y),
                        _ => b.ins().fmul(x, y),
                    };
                    setf!(dst, r);
                }
            },
            Instr::DivImm { dst, src, imm } | Instr::ModImm { dst, src, imm } => {
                let is_div = matches!(ins, Instr::DivImm { .. });
                match ty(src) {
                    Ty::Int => {
                        if imm == 0 {
                            let to = leave_at!(pc, refund);
                            b.ins().jump(to, &[]);
                            terminated = true;
                            continue;
                        }
                        let x = geti!(src);
                        if imm == -1 {
                            let min = b.ins().icmp_imm_s(IntCC::Equal, x, i64::MIN);
                            bail_if!(min);
                        }
                        let y = b.ins().iconst(I64, imm as i64);
                        let r = match is_div {
                            true => b.ins().sdiv(x, y),
                            false => b.ins().srem(x, y),
                        };
                        seti!(dst, r);
                    }
                    _ => {
                        let x = getf!(src);
                        let y = b.ins().f64const(imm as f64);
                        let op = match is_div {
                            true => Instr::Div {
                                dst,
                                a: src,
                                b: src,
                            },
                            false => Instr::Mod {
                                dst,
                                a: src,
                                b: src,
                            },
                        };
                        let r = float_op(&mut b, &op, x, y, call_conv);
                        setf!(dst, r);
                    }
                }
            }
            Instr::Not { dst, src } => {
                let x = geti!(src);
                seti!(dst, b.ins().bxor_imm_s(x, 1));
            }
            Instr::Eq { dst, a, b: c } | Instr::Ne { dst, a, b: c } => {
                let eq = match (ty(a), ty(c)) {
                    (Ty::Float, Ty::Float) => {
                        let (x, y) = (getf!(a), getf!(c));
                        boolean!(b.ins().fcmp(FloatCC::Equal, x, y))
                    }
                    (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => {
                        let (i, x) = match ty(a) {
                            Ty::Int => (a, c),
                            _ => (c, a),
                        };
                        let (i, x) = (geti!(i), b.use_var(vf[x as usize]));
                        helper_int_float_eq(&mut b, i, x, call_conv)
                    }
                    (Ty::Null, Ty::Null) => b.ins().iconst(I64, 1),
                    (x, y) if x == y => {
                        let (x, y) = (geti!(a), geti!(c));
                        boolean!(b.ins().icmp(IntCC::Equal, x, y))
                    }
                    // Values of different kinds are unequal.
                    _ => b.ins().iconst(I64, 0),
                };
                match ins {
                    Instr::Eq { .. } => seti!(dst, eq),
                    _ => seti!(dst, b.ins().bxor_imm_s(eq, 1)),
                }
            }
            Instr::Lt { dst, a, b: c } | Instr::Le { dst, a, b: c } => {
                let lt = matches!(ins, Instr::Lt { .. });
                let r = match both_int(a, c) {
                    true => {
                        let (x, y) = (geti!(a), geti!(c));
                        let cc = if lt {
                            IntCC::SignedLessThan
                        } else {
                            IntCC::SignedLessThanOrEqual
                        };
                        b.ins().icmp(cc, x, y)
                    }
                    false => {
                        let (x, y) = (getf!(a), getf!(c));
                        let cc = if lt {
                            FloatCC::LessThan
                        } else {
                            FloatCC::LessThanOrEqual
                        };
                        b.ins().fcmp(cc, x, y)
                    }
                };
                seti!(dst, boolean!(r));
            }
            Instr::Jump { target } => {
                let t = blocks
                    .get(target as usize)
                    .copied()
                    .flatten()
                    .ok_or("target")?;
                b.ins().jump(t, &[]);
                terminated = true;
            }
            Instr::JumpIf { cond, target } | Instr::JumpIfNot { cond, target } => {
                let t = blocks
                    .get(target as usize)
                    .copied()
                    .flatten()
                    .ok_or("target")?;
                let next = blocks.get(pc + 1).copied().flatten().ok_or("next")?;
                let c = geti!(cond);
                match ins {
                    Instr::JumpIf { .. } => b.ins().brif(c, t, &[], next, &[]),
                    _ => b.ins().brif(c, next, &[], t, &[]),
                };
                terminated = true;
            }
            Instr::JumpIfNotLt { a, b: c, target } => {
                let t = blocks
                    .get(target as usize)
                    .copied()
                    .flatten()
                    .ok_or("target")?;
                let next = blocks.get(pc + 1).copied().flatten().ok_or("next")?;
                let less = match both_int(a, c) {
                    true => {
                        let (x, y) = (geti!(a), geti!(c));
                        b.ins().icmp(IntCC::SignedLessThan, x, y)
                    }
                    false => {
                        let (x, y) = (getf!(a), getf!(c));
                        b.ins().fcmp(FloatCC::LessThan, x, y)
                    }
                };
                b.ins().brif(less, next, &[], t, &[]);
                terminated = true;
            }
            Instr::CheckType { .. } => {} // conforms statically (analyze.rs)
            Instr::CallFn { dst, args, .. } => {
                let (callee_key, body) = unit.callees.get(&pc).ok_or("call plan")?;
                let fref = *refs.get(&pc).ok_or("call ref")?;
                let nregs_callee = module
                    .functions
                    .get(callee_key.func as usize)
                    .map_or(0, |g| g.nregs as i64);
                // The interpreter's limits: the depth below its maximum, the register stack
                // within its bound; and the native stack's own bound.
                let calls = b.use_var(vcalls);
                let none = b.ins().icmp_imm_s(IntCC::Equal, calls, 0);
                bail_if!(none);
                let stack = b.use_var(vstack);
                let over = b
                    .ins()
                    .icmp_imm_s(IntCC::UnsignedLessThan, stack, nregs_callee);
                bail_if!(over);
                let mut argv = vec![ctx, b.use_var(vfuel)];
                argv.push(b.ins().iadd_imm_s(calls, -1));
                argv.push(b.ins().iadd_imm_s(stack, -nregs_callee));
                for (r, t) in args.regs().zip(&callee_key.args) {
                    let v = match t {
                        Ty::Float => b.use_var(vf[r as usize]),
                        _ => geti!(r),
                    };
                    argv.push(v);
                }
                let call = b.ins().call(fref, &argv);
                let (out, fuel) = (b.inst_results(call)[0], b.inst_results(call)[1]);
                // A callee that bails out has undone itself; so is this call (in a region,
                // only the call: the interpreter makes it next).
                let bailed = b.ins().icmp_imm_s(IntCC::Equal, fuel, BAILED as i64);
                bail_if!(bailed);
                b.def_var(vfuel, fuel);
                match body.ret {
                    Ty::Float => setf!(dst, out),
                    _ => seti!(dst, out),
                }
            }
            Instr::Return { src } => {
                let v = match ret {
                    Ty::Float => b.use_var(vf[src as usize]),
                    _ => geti!(src),
                };
                let fuel = b.use_var(vfuel);
                b.ins().return_(&[v, fuel]);
                terminated = true;
            }
            _ => return Err(format!("{:?} is not compiled", ins.opcode())),
        }
        if let (Some(rg), false) = (region, terminated) {
            if let Some(&Some((dst, t))) = rg.writes.get(pc) {
                let tag = b.ins().iconst(I64, runtime::tag_of(t) as i64);
                if let Some(v) = vt.get(dst as usize) {
                    b.def_var(*v, tag);
                }
            }
        }
    }
    if !terminated {
        // Unreachable: the analysis refuses code that falls off the end.
        let to = leave_at!(code.len().saturating_sub(1), 0);
        b.ins().jump(to, &[]);
    }
    b.switch_to_block(bail);
    let dummy = match ret {
        Ty::Float => b.ins().f64const(0.0),
        _ => b.ins().iconst(I64, 0),
    };
    let flag = b.ins().iconst(I64, BAILED as i64);
    if region.is_some() {
        // Never reached: a region leaves at an exit instead.
        b.ins().return_(&[flag]);
    } else {
        b.ins().return_(&[dummy, flag]);
    }
    // The exits of a region: give back the fuel, write the registers the interpreter will
    // read back (those of a type compiled code holds), and return the pc to resume at.
    let mut exits: Vec<((usize, i64), Block)> = exits.into_iter().collect();
    exits.sort_by_key(|(k, _)| *k);
    for ((pc, refund), block) in exits {
        b.switch_to_block(block);
        let fuel = b.use_var(vfuel);
        let back = b.ins().iadd_imm_s(fuel, refund);
        b.ins().store(fl, back, ctx, off(runtime::FUEL));
        let ptr = regs_ptr.ok_or("an exit outside a region")?;
        for (r, t) in states[pc].iter().flatten().enumerate() {
            let off = (r * 8) as i32;
            match t {
                Ty::Float => {
                    let v = b.use_var(vf[r]);
                    b.ins().store(fl, v, ptr, off);
                }
                Ty::Int | Ty::Bool => {
                    let v = b.use_var(vi[r]);
                    b.ins().store(fl, v, ptr, off);
                }
                Ty::Top => {
                    let tag = b.use_var(vt[r]);
                    let x = b.use_var(vf[r]);
                    let fbits = b.ins().bitcast(I64, MemFlagsData::new(), x);
                    let ibits = b.use_var(vi[r]);
                    let is_float =
                        b.ins()
                            .icmp_imm_s(IntCC::Equal, tag, runtime::tag_of(Ty::Float) as i64);
                    let v = b.ins().select(is_float, fbits, ibits);
                    b.ins().store(fl, v, ptr, off);
                    b.ins().store(fl, tag, ptr, ((nregs + r) * 8) as i32);
                }
                _ => {}
            }
        }
        let at = b.ins().iconst(I64, pc as i64);
        b.ins().return_(&[at]);
    }
    b.seal_all_blocks();
    b.finalize(tcfg);
    Ok(())
}

/// Float `+ - * / %`: `%` through a helper (Cranelift has no float remainder).
fn float_op(
    b: &mut FunctionBuilder,
    ins: &Instr,
    x: ClValue,
    y: ClValue,
    call_conv: cranelift_codegen::isa::CallConv,
) -> ClValue {
    match ins {
        Instr::Add { .. } => b.ins().fadd(x, y),
        Instr::Sub { .. } => b.ins().fsub(x, y),
        Instr::Mul { .. } => b.ins().fmul(x, y),
        Instr::Div { .. } => b.ins().fdiv(x, y),
        _ => {
            let mut sig = Signature::new(call_conv);
            sig.params.push(AbiParam::new(F64));
            sig.params.push(AbiParam::new(F64));
            sig.returns.push(AbiParam::new(F64));
            let sig = b.import_signature(sig);
            let f = b.ins().iconst(
                I64,
                runtime::fmod as extern "C" fn(f64, f64) -> f64 as usize as i64,
            );
            let call = b.ins().call_indirect(sig, f, &[x, y]);
            b.inst_results(call)[0]
        }
    }
}

/// `int == float` with the interpreter's exact rule, through a helper.
fn helper_int_float_eq(
    b: &mut FunctionBuilder,
    i: ClValue,
    x: ClValue,
    call_conv: cranelift_codegen::isa::CallConv,
) -> ClValue {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(I64));
    sig.params.push(AbiParam::new(F64));
    sig.returns.push(AbiParam::new(I64));
    let sig = b.import_signature(sig);
    let f = b.ins().iconst(
        I64,
        runtime::int_float_eq as extern "C" fn(i64, f64) -> i64 as usize as i64,
    );
    let call = b.ins().call_indirect(sig, f, &[i, x]);
    b.inst_results(call)[0]
}

// The context's layout is shared with `runtime.rs`.
const _: () = assert!(std::mem::size_of::<JitCtx>() == 4 * 8);
