//! `env.get` and the environment handed to commands: only granted variables, by exact name
//! (`--allow-env=HOME`; `--allow-env` alone grants all). Values are read from the host's
//! environment at the moment of the call. Variables that steer the dynamic loader
//! (`LD_*`, `DYLD_*`) are never passed to a command, whatever the grants say.

use std::collections::BTreeSet;
use std::ffi::OsString;

use super::{io_error, value_error, ToolSetupError};
use crate::host_value::HostError;
use crate::host_value::HostValue;
use crate::policy::Denial;

/// The environment variables a run may read and pass on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvGrants {
    /// `None`: every variable.
    names: Option<BTreeSet<String>>,
}

impl EnvGrants {
    /// No variable.
    pub fn none() -> EnvGrants {
        EnvGrants {
            names: Some(BTreeSet::new()),
        }
    }

    /// Every variable (`--allow-env` without a value).
    pub fn all() -> EnvGrants {
        EnvGrants { names: None }
    }

    /// Exactly these variables (case and bytes as written).
    pub fn only(names: &[String]) -> Result<EnvGrants, ToolSetupError> {
        for n in names {
            if !valid_name(n) {
                return Err(ToolSetupError::EnvName { name: n.clone() });
            }
        }
        Ok(EnvGrants {
            names: Some(names.iter().cloned().collect()),
        })
    }

    /// Whether `name` is granted (an exact, case-sensitive match).
    pub fn allows(&self, name: &str) -> bool {
        match &self.names {
            None => true,
            Some(names) => names.contains(name),
        }
    }

    /// `env.get(name)`: the variable's value, or null when it is not set; `PolicyDenied`
    /// (rule `grant:env`) unless granted.
    pub fn get(&self, name: &str) -> Result<HostValue, HostError> {
        const TOOL: &str = "env.get";
        if !valid_name(name) {
            return Err(value_error(
                TOOL,
                format!("{name:?} is not an environment variable name"),
            ));
        }
        if !self.allows(name) {
            return Err(Denial::new(
                "grant:env",
                format!(
                    "reading the environment variable {name} is not allowed (grant it with --allow-env={name})"
                ),
            )
            .into_host_error(TOOL));
        }
        match std::env::var_os(name) {
            None => Ok(HostValue::null()),
            Some(v) => v
                .into_string()
                .map(HostValue::str)
                .map_err(|_| io_error(TOOL, format!("the value of {name} is not UTF-8 text"))),
        }
    }

    /// The variables a command gets: the granted ones that are set, without loader
    /// variables.
    pub(crate) fn for_child(&self) -> Vec<(OsString, OsString)> {
        let visible = |k: &str| !is_loader_var(k) && self.allows(k);
        match &self.names {
            None => std::env::vars_os()
                .filter(|(k, _)| k.to_str().is_some_and(visible))
                .collect(),
            Some(names) => names
                .iter()
                .filter(|k| visible(k))
                .filter_map(|k| Some((OsString::from(k), std::env::var_os(k)?)))
                .collect(),
        }
    }
}

/// Variables that make the dynamic loader load or search other code.
fn is_loader_var(name: &str) -> bool {
    name.starts_with("LD_") || name.starts_with("DYLD_")
}

/// A name a process environment can hold: not empty, no `=`, no NUL.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}
