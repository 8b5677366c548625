//! aivm's compiler: `.ail` source to a bytecode [`aivm_vm::format::Module`].
//!
//! Pipeline: load and parse every module (`load`), then one checking walk (`lower`, using
//! `resolve` for names and `typeck` for types) builds the IR (`ir`), and `codegen` turns it
//! into one self-contained module.

// Until the parser lands, nothing outside the tests calls the back end.
#![allow(dead_code)]

pub mod ast;
pub mod diagnostic;

mod codegen;
mod ir;
mod load;
mod lower;
mod resolve;
mod typeck;
mod types;

use aivm_vm::format::Module;

use crate::diagnostic::Diagnostics;

/// A compiled program and the warnings its compilation produced.
#[derive(Debug)]
pub struct Compiled {
    pub module: Module,
    pub warnings: Diagnostics,
}

/// Runs the pipeline after loading; `Err` holds every error and warning.
fn compile_loaded(loaded: load::Loaded) -> Result<Compiled, Diagnostics> {
    let load::Loaded {
        modules,
        prelude,
        sources,
        mut diags,
    } = loaded;
    let lowered = lower::lower(&modules, prelude, &mut diags);
    diags.sort_by_key(|d| (d.file, d.span.start));
    let out = Diagnostics {
        items: diags,
        sources,
    };
    if out.has_errors() {
        return Err(out);
    }
    let module = codegen::generate(&lowered.program, &lowered.types, &out.sources);
    Ok(Compiled {
        module,
        warnings: out,
    })
}

#[cfg(test)]
mod tests;
