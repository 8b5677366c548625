//! aivm's virtual machine: the bytecode format (`format`), and the interpreter and host that
//! run it. The interpreter does no I/O: it yields effects that the host performs.

pub mod format;
