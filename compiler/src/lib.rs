//! aivm's compiler: `.ail` source to a bytecode [`aivm_vm::format::Module`].
//!
//! Pipeline: load and parse every module (`load`), then one checking walk (`lower`, using
//! `resolve` for names and `typeck` for types) builds the IR (`ir`), and `codegen` turns it
//! into one self-contained module.

pub mod ast;
pub mod diagnostic;
mod lexer;
pub mod parse;
pub mod render;

mod codegen;
mod ir;
mod load;
mod lower;
mod manifest;
mod needs;
mod nesting;
mod prune;
mod resolve;
mod schema;
mod typeck;
mod types;

use std::path::Path;

use aivm_vm::format::Module;

use crate::diagnostic::Diagnostics;

/// A compiled program and the warnings its compilation produced.
#[derive(Debug)]
pub struct Compiled {
    pub module: Module,
    pub warnings: Diagnostics,
}

/// Compiles a `.ail` file, the files and standard modules it imports, and the prelude into
/// one self-contained module.
pub fn compile_file(path: &Path) -> Result<Compiled, Diagnostics> {
    compile_loaded(load::load(load::Entry::File(path), parse::parse_module))
}

/// Compiles source text named `name` (file imports are relative to the current directory).
pub fn compile_source(name: &str, src: &str) -> Result<Compiled, Diagnostics> {
    compile_loaded(load::load(
        load::Entry::Source { name, text: src },
        parse::parse_module,
    ))
}

/// Checks a file without keeping the module: every error and warning.
pub fn check_file(path: &Path) -> Diagnostics {
    match compile_file(path) {
        Ok(c) => c.warnings,
        Err(d) => d,
    }
}

/// Runs the pipeline after loading; `Err` holds every error and warning.
fn compile_loaded(loaded: load::Loaded) -> Result<Compiled, Diagnostics> {
    let load::Loaded {
        modules,
        prelude,
        sources,
        mut diags,
        parse_failed,
    } = loaded;
    if parse_failed {
        return Err(Diagnostics {
            items: diags,
            sources,
        });
    }
    let lowered = lower::lower(&modules, prelude, &mut diags);
    diags.sort_by_key(|d| (d.file, d.span.start));
    let out = Diagnostics {
        items: diags,
        sources,
    };
    if out.has_errors() {
        return Err(out);
    }
    let mut module = match codegen::generate(&lowered.program, &lowered.types, &out.sources) {
        Ok(m) => m,
        Err(errors) => {
            let mut out = out;
            out.items.extend(errors);
            out.items.sort_by_key(|d| (d.file, d.span.start));
            return Err(out);
        }
    };
    let kept = prune::unreachable_functions(&mut module);
    // The MCP tools the kept code can call; a `tool` item nothing reaches asks nothing.
    let mcp_tools: std::collections::BTreeSet<String> = lowered
        .program
        .mcp_tools
        .iter()
        .filter(|(f, _)| kept.get(**f as usize).copied().unwrap_or(false))
        .map(|(_, id)| id.clone())
        .collect();
    manifest::fill(&mut module, &lowered.program.needs, &mcp_tools);
    Ok(Compiled {
        module,
        warnings: out,
    })
}

#[cfg(test)]
mod tests;
