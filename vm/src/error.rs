//! Errors: [`VmError`], what a run ends with when it cannot go on (an uncaught error, a limit,
//! a bad module), and the internal [`Raise`] that handlers return while unwinding.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::heap::Dangling;
use crate::value::Value;

/// One line of a stack trace: a function and the source position it was at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceFrame {
    pub function: String,
    pub file: Option<String>,
    pub line: u32,
    pub col: u32,
}

/// A stack trace, innermost call first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace(pub Vec<TraceFrame>);

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fr in &self.0 {
            write!(f, "\n  at {}", fr.function)?;
            match &fr.file {
                Some(file) => write!(f, " ({file}:{}:{})", fr.line, fr.col)?,
                None if fr.line > 0 => write!(f, " (line {}:{})", fr.line, fr.col)?,
                None => {}
            }
        }
        Ok(())
    }
}

/// Why a run stopped. Limit errors and uncaught errors carry the stack at that point.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum VmError {
    /// An error value reached the top of its task with no `try` to catch it.
    #[error("{kind}: {message}{trace}")]
    Uncaught {
        kind: String,
        message: String,
        trace: Trace,
    },
    #[error("fuel exhausted: the program ran {limit} instructions, its limit{trace}")]
    FuelExhausted { limit: u64, trace: Trace },
    #[error("stack overflow: the call depth passed its limit of {limit}{trace}")]
    StackOverflow { limit: usize, trace: Trace },
    #[error("heap exhausted: live data passed the limit of {limit} bytes{trace}")]
    HeapExhausted { limit: usize, trace: Trace },
    /// The module cannot be run (e.g. an index out of range or an unknown native).
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// A restored state does not fit the module, or refers to a missing object.
    #[error("corrupt VM state: {0}")]
    Corrupt(String),
    #[error("no task {0}")]
    NoSuchTask(u32),
    #[error("task {0} is not waiting for an effect")]
    NotWaiting(u32),
    #[error("no task is ready to run (every task is waiting for an effect or done)")]
    Idle,
    /// No task is ready, no effect is in flight, and tasks still wait at `Await`: nothing can
    /// ever wake them.
    #[error(
        "deadlock: {awaiting} task(s) wait at `await` and no effect is in flight to wake them"
    )]
    Deadlock { awaiting: usize },
}

impl VmError {
    /// The stack trace, for errors that have one.
    pub fn trace(&self) -> Option<&Trace> {
        match self {
            VmError::Uncaught { trace, .. }
            | VmError::FuelExhausted { trace, .. }
            | VmError::StackOverflow { trace, .. }
            | VmError::HeapExhausted { trace, .. } => Some(trace),
            _ => None,
        }
    }
}

/// A limit the interpreter hit, or a broken invariant; turned into a [`VmError`] with a trace.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Fatal {
    Fuel,
    Depth,
    Heap,
    Corrupt(String),
}

/// How a handler leaves abnormally: a catchable error, or a fatal stop.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Raise {
    /// An error value already on the heap (thrown by the program or made by the host).
    Value(Value),
    /// A run-time error not yet on the heap: it is allocated only if it is caught or reported.
    Rt {
        kind: &'static str,
        message: String,
    },
    Fatal(Fatal),
}

impl Raise {
    pub(crate) fn rt(kind: &'static str, message: impl Into<String>) -> Raise {
        Raise::Rt {
            kind,
            message: message.into(),
        }
    }
}

/// The TypeError for a map key that is neither a string nor an int.
pub(crate) fn bad_map_key(key: Value) -> Raise {
    Raise::rt(
        kind::TYPE,
        format!(
            "map keys must be strings or ints, found {}",
            key.type_name()
        ),
    )
}

impl From<Dangling> for Raise {
    fn from(d: Dangling) -> Raise {
        Raise::Fatal(Fatal::Corrupt(d.to_string()))
    }
}

/// Error kinds raised by the interpreter and natives (spec/semantics.md, "Errors").
pub mod kind {
    pub const TYPE: &str = "TypeError";
    pub const OVERFLOW: &str = "Overflow";
    pub const DIV_ZERO: &str = "DivisionByZero";
    pub const INDEX: &str = "IndexError";
    pub const KEY: &str = "KeyError";
    pub const VALUE: &str = "ValueError";
    pub const JSON: &str = "JsonError";
    /// `CallLlm` named a model that is not one of the module's model slots.
    pub const UNKNOWN_MODEL: &str = "UnknownModel";
}

pub(crate) type R<T> = Result<T, Raise>;
