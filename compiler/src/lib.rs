//! aivm's compiler: `.ail` source to a bytecode [`aivm_vm::format::Module`].

pub mod ast;
pub mod diagnostic;
