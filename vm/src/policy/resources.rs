//! Resource grants as plain data for the native tools: file roots and denied paths, and
//! answers for a host, a command, a variable or a model. In every check a deny is looked at
//! before any allow, so no allow (not even `-A`) can undo it.

use std::path::PathBuf;

use super::entry::{NetEntry, NetHost, Word};
use super::{Access, Denial, Policy};

/// The file grants, for `fs.*`: paths are absolute, as given (not resolved: the tools
/// resolve beneath each root by handle and compare denies by file identity).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsGrantLists {
    pub read: PathGrants,
    pub write: PathGrants,
}

/// One direction (read or write) of the file grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathGrants {
    /// Everything is granted (`--allow-read` without a value, or `-A`); `deny` still applies.
    pub all: bool,
    /// Granted roots: each file or folder and everything beneath it.
    pub roots: Vec<PathBuf>,
    /// Denied files and folders (with everything beneath), whatever the grants say.
    pub deny: Vec<PathBuf>,
}

fn path_grants(a: &Access<PathBuf>) -> PathGrants {
    if a.deny_all.is_some() {
        // Denying everything: nothing is granted, whatever allows there are.
        return PathGrants::default();
    }
    PathGrants {
        all: a.allow_all.is_some(),
        roots: a.allow.iter().map(|(p, _)| p.clone()).collect(),
        deny: a.deny.iter().map(|(p, _)| p.clone()).collect(),
    }
}

/// How a host is granted: by name (or address), or only by a grant of every host. Loopback,
/// private and link-local addresses need `Named`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetGrant {
    Named,
    All,
}

impl Policy {
    /// The file grants (see [`FsGrantLists`]).
    pub fn fs_grants(&self) -> FsGrantLists {
        FsGrantLists {
            read: path_grants(&self.inner.read),
            write: path_grants(&self.inner.write),
        }
    }

    /// Whether `host` (a lower-case ASCII name, or an IP address, with or without IPv6
    /// brackets) may be reached on `port`. Names are compared after the same canonical
    /// parse as grants (a trailing dot, upper case, IPv4-mapped IPv6 and numeric IPv4 forms
    /// are all the same host), so no spelling of a denied host gets through.
    pub fn check_net(&self, host: &str, port: u16) -> Result<NetGrant, Denial> {
        let net = &self.inner.net;
        let h = NetHost::parse(host).map_err(|e| Denial::new("grant:net", e))?;
        let target = NetEntry {
            host: h.clone(),
            port: Some(port),
        };
        if let Some(o) = &net.deny_all {
            return Err(Denial::new(
                "deny:net",
                format!("network access to {target} is denied by {o}"),
            ));
        }
        let covers = |e: &NetEntry| e.host == h && e.port.is_none_or(|p| p == port);
        if let Some((_, o)) = net.deny.iter().find(|(e, _)| covers(e)) {
            return Err(Denial::new(
                "deny:net",
                format!("network access to {target} is denied by {o}"),
            ));
        }
        if net.allow.iter().any(|(e, _)| covers(e)) {
            return Ok(NetGrant::Named);
        }
        if net.allow_all.is_some() {
            return Ok(NetGrant::All);
        }
        Err(Denial::new(
            "grant:net",
            format!("network access to {target} is not granted: add --allow-net={h} (or --allow-net={target})"),
        ))
    }

    /// Whether the command `cmd` (by exact name, as the program gives it) may run.
    pub fn check_run(&self, cmd: &str) -> Result<(), Denial> {
        check_word(&self.inner.run, cmd, "run", "running the command")
    }

    /// Whether the environment variable `var` may be read (or passed to a command).
    pub fn check_env(&self, var: &str) -> Result<(), Denial> {
        check_word(
            &self.inner.env,
            var,
            "env",
            "reading the environment variable",
        )
    }

    /// Whether the model bound to the logical name `name` may be called. (A model bound to
    /// a scripted transcript needs no grant: the host does not ask.)
    pub fn check_model(&self, name: &str) -> Result<(), Denial> {
        check_word(&self.inner.model, name, "model", "calling the model")
    }
}

/// The names a word grant covers, for tools that need them listed (commands to resolve,
/// variables to pass to a child): `None` when every name is granted (denies still apply:
/// check each name), else the granted names that no deny takes back. A deny of everything
/// leaves an empty list.
fn granted_words(a: &Access<Word>) -> Option<Vec<String>> {
    if a.deny_all.is_some() {
        return Some(Vec::new());
    }
    if a.allow_all.is_some() {
        return None;
    }
    Some(
        a.allow
            .iter()
            .map(|(w, _)| w.as_str().to_string())
            .filter(|w| !a.deny.iter().any(|(d, _)| d.as_str() == w))
            .collect(),
    )
}

impl Policy {
    /// The commands granted by name (`None`: every command not denied; check each with
    /// [`Policy::check_run`]).
    pub fn run_grants(&self) -> Option<Vec<String>> {
        granted_words(&self.inner.run)
    }

    /// The environment variables granted by name (`None`: every variable not denied).
    pub fn env_grants(&self) -> Option<Vec<String>> {
        granted_words(&self.inner.env)
    }
}

fn check_word(a: &Access<Word>, x: &str, kind: &str, what: &str) -> Result<(), Denial> {
    let shown = super::decide::shown(x);
    let deny = |o: &str| {
        Denial::new(
            format!("deny:{kind}"),
            format!("{what} {shown} is denied by {o}"),
        )
    };
    if let Some(o) = &a.deny_all {
        return Err(deny(o));
    }
    if let Some((_, o)) = a.deny.iter().find(|(w, _)| w.as_str() == x) {
        return Err(deny(o));
    }
    if a.allow_all.is_some() || a.allow.iter().any(|(w, _)| w.as_str() == x) {
        return Ok(());
    }
    // A name that cannot be written on a command line as is gets no ready-made flag.
    let fix = if x.is_empty() || x.contains(',') || x.chars().any(char::is_control) {
        format!("a --allow-{kind} grant for it")
    } else {
        format!("--allow-{kind}={x}")
    };
    Err(Denial::new(
        format!("grant:{kind}"),
        format!("{what} {shown} is not granted: add {fix}"),
    ))
}
