//! aivm's compiler: `.ail` source to a bytecode [`aivm_vm::format::Module`].

pub mod ast;
pub mod diagnostic;
pub mod lexer;
pub mod parse;
pub mod render;
