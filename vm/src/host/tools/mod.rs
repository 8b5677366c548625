//! The native tools the host performs for a program (spec/natives.md, SEC §3): files
//! (`fs.read`, `fs.write`, `fs.list`), commands (`proc.run`), the environment (`env.get`) and
//! the user (`io.ask`). HTTP lives beside them in its own module.
//!
//! Decisions every tool here follows:
//! - A tool takes plain grant data this module defines ([`FsRoots`], [`ProcGrants`],
//!   [`EnvGrants`]), built once when the host starts from the policy's grants; never the policy
//!   itself. The policy decides whether a call may happen at all; the tool enforces the
//!   resource grant itself, at the moment it touches the world (by handle, by exact name).
//! - A refusal is a [`Denial`](crate::policy::Denial) with a built-in rule id (`grant:read`,
//!   `deny:read`, `grant:write`, `deny:write`, `grant:run`, `grant:env`), turned into the
//!   program's `PolicyDenied` error; nothing happens in the world before a denial.
//! - Outputs come back unlabelled (public, trusted): the caller labels them with the policy's
//!   `output_label` (default untrusted for files and commands). Files additionally report
//!   which *marks* (paths given to [`FsRoots::with_marks`], matched by file identity like
//!   deny rules) they were found under, so a label can be chosen per directory without
//!   comparing path strings.
//! - Sizes are capped (file contents, listings, command output) and inputs checked (NUL
//!   bytes, names); a tool never panics on what a program or the file system gives it.

pub mod env;
pub mod fs;
pub mod io;
pub mod proc;

pub use env::EnvGrants;
pub use fs::{FsOutput, FsRoots};
pub use proc::ProcGrants;

use std::path::PathBuf;

use crate::host_value::{HostData, HostError, HostValue};

/// Why grant data could not be built when the host starts (a configuration mistake, reported
/// before the program runs).
#[derive(Debug, thiserror::Error)]
pub enum ToolSetupError {
    #[error("cannot open the granted path {}: {source}", path.display())]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find the working directory: {0}")]
    WorkingDirectory(std::io::Error),
    #[error("the command `{name}` granted with --allow-run is {why}")]
    Command { name: String, why: String },
    #[error("`{name}` is not a valid environment variable name for --allow-env")]
    EnvName { name: String },
}

/// The `index`th argument of an effect as a string, or the `TypeError` naming the
/// parameter.
pub fn string_arg<'a>(
    tool: &str,
    args: &'a [HostValue],
    index: usize,
    param: &str,
) -> Result<&'a str, HostError> {
    match args.get(index).map(|a| &a.data) {
        Some(HostData::Str(s)) => Ok(s),
        other => Err(HostError::new(
            "TypeError",
            format!(
                "{tool} expects `{param}` to be a string, found {}",
                kind_of(other)
            ),
        )),
    }
}

/// The `index`th argument of an effect as a list of strings, or the `TypeError` naming the
/// parameter and the first item that is not a string.
pub fn strings_arg(
    tool: &str,
    args: &[HostValue],
    index: usize,
    param: &str,
) -> Result<Vec<String>, HostError> {
    let items = match args.get(index).map(|a| &a.data) {
        Some(HostData::List(items)) => items,
        other => {
            return Err(HostError::new(
                "TypeError",
                format!(
                    "{tool} expects `{param}` to be a list of strings, found {}",
                    kind_of(other)
                ),
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match &item.data {
            HostData::Str(s) => Ok(s.clone()),
            other => Err(HostError::new(
                "TypeError",
                format!(
                    "{tool} expects `{param}` to be a list of strings, found {} at index {i}",
                    kind_of(Some(other))
                ),
            )),
        })
        .collect()
}

fn kind_of(data: Option<&HostData>) -> &'static str {
    match data {
        None => "nothing",
        Some(HostData::Null) => "null",
        Some(HostData::Bool(_)) => "bool",
        Some(HostData::Int(_)) => "int",
        Some(HostData::Float(_)) => "float",
        Some(HostData::Str(_)) => "string",
        Some(HostData::List(_)) => "list",
        Some(HostData::Map(_)) => "map",
        Some(HostData::Record(_)) => "record",
        Some(HostData::Error { .. }) => "error",
        Some(HostData::Func(_)) => "fn",
        Some(HostData::Task(_)) => "task",
    }
}

/// A `ValueError` for `tool`: an argument of the right kind but an unusable value.
fn value_error(tool: &str, message: impl std::fmt::Display) -> HostError {
    HostError::new("ValueError", format!("{tool}: {message}"))
}

/// An `IoError` for `tool`: the world refused or failed.
fn io_error(tool: &str, message: impl std::fmt::Display) -> HostError {
    HostError::new("IoError", format!("{tool}: {message}"))
}
