//! The bytecode format: the opcode table, the in-memory module, the natives table, and (in
//! their own files) the encoder, decoder, verifier and assembly text. This part of the crate
//! knows nothing of the interpreter or the compiler.

mod asm;
mod container;
mod decode;
mod encode;
mod inspect;
mod module;
mod natives;
mod opcodes;
pub mod schema;
mod verify;

pub use asm::{assemble, disassemble, AsmError};
pub use decode::{decode, DecodeError, DecodeErrorKind};
pub use encode::encode;
pub use inspect::manifest_text;
pub use module::*;
pub use natives::{
    is_mcp_server_name, is_native_family, native_by_name, NativeInfo, LLM_CALL, MCP_CALL, NATIVES,
};
pub use opcodes::{
    EffectClass, Flow, Instr, OpInfo, Opcode, Operand, OperandKind, Reg, RegRange, OPCODES,
};
pub use verify::{
    is_narrow, verify, Location, VerifiedModule, VerifyError, DATAFLOW_BUDGET_WORDS,
    MAX_READER_LEN, MAX_RESOURCE_LEN, MAX_TYPE_CHAIN,
};
