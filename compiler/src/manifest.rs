//! The capability manifest of a compiled module (spec/bytecode.md, "Manifest"): the tools are
//! every effect native the final (pruned) module's code asks for with `Effect`, the functions
//! it offers to models and the MCP tools (`SERVER.TOOL`) its `tool` items call; the resources and authority are what its modules declared
//! with `needs`. Every list sorted by text, each entry once, as the verifier requires.

use std::collections::{BTreeSet, HashMap};

use aivm_vm::format::{native_by_name, Instr, Module, StrId, LLM_CALL};

use crate::ir::Needs;

/// Fills `module.manifest` from its code, `needs` and the MCP tool ids of the kept `tool`
/// items. Runs after pruning, so that a tool only dead code used is not asked of the host.
pub(crate) fn fill(module: &mut Module, needs: &Needs, mcp_tools: &BTreeSet<String>) {
    let mut used = vec![false; module.natives.len()];
    for f in &module.functions {
        for i in &f.code {
            if let Instr::Effect { native, .. } = i {
                if let Some(u) = used.get_mut(*native as usize) {
                    *u = true;
                }
            }
        }
    }
    let mut tools: BTreeSet<String> = module
        .natives
        .iter()
        .zip(&used)
        .filter(|(_, &u)| u)
        .map(|(&n, _)| module.str(n).to_string())
        .filter(|name| {
            native_by_name(name).is_some_and(|(_, info)| info.effect && info.name != LLM_CALL)
        })
        .collect();
    tools.extend(needs.offered.iter().cloned());
    tools.extend(mcp_tools.iter().cloned());

    let mut pool: HashMap<String, StrId> = HashMap::new();
    for (i, s) in module.strings.iter().enumerate() {
        pool.entry(s.clone()).or_insert(i as StrId);
    }
    let mut intern = |module: &mut Module, s: &str| -> StrId {
        if let Some(&id) = pool.get(s) {
            return id;
        }
        let id = module.strings.len() as StrId;
        module.strings.push(s.to_string());
        pool.insert(s.to_string(), id);
        id
    };
    let mut ids = |module: &mut Module, set: &BTreeSet<String>| -> Vec<StrId> {
        set.iter().map(|s| intern(module, s)).collect()
    };
    let tools = ids(module, &tools);
    let read = ids(module, &needs.read);
    let write = ids(module, &needs.write);
    let net = ids(module, &needs.net);
    let run = ids(module, &needs.run);
    let env = ids(module, &needs.env);
    let man = &mut module.manifest;
    man.tools = tools;
    man.read = read;
    man.write = write;
    man.net = net;
    man.run = run;
    man.env = env;
    man.declassify = needs.declassify;
    man.endorse = needs.endorse;
}
