//! aivm's virtual machine: the bytecode format (`format`), and the interpreter and host that
//! run it. The interpreter does no I/O: it yields effects that the host performs.

pub mod format;

mod compare;
mod error;
mod heap;
pub mod host;
mod host_value;
mod interp;
mod jit;
mod label;
mod natives;
pub mod policy;
mod text;
mod value;

pub use error::{Trace, TraceFrame, VmError};
pub use host_value::{HostData, HostError, HostValue};
pub use interp::{EffectRequest, Limits, Step, TaskId, Vm, VmState};
pub use jit::{JitEvent, JitMode, AUTO_THRESHOLD, LOOP_THRESHOLD};
pub use label::{Integrity, Label, LabelEvent, LabelInfo, LabelOp};
pub use value::Key;
