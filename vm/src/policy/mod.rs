//! The policy: what the host lets a program do. Deny by default; every effect is judged here
//! before the host performs it (spec/security.md). Pure: no I/O, no clock, no async.
//!
//! A [`Policy`] is built once from `aivm.toml` and the flags ([`PolicyBuilder`]) and is then
//! immutable. [`Policy::decide`] judges a tool call; `check_net`/`check_run`/`check_env`/
//! `check_model` and `fs_grants` give the resource grants as data; [`Policy::link`] checks a
//! program's manifest before it starts; [`Policy::output_label`] labels tool outputs.

mod build;
mod canonical;
mod cond;
mod decide;
mod entry;
mod file;
mod flags;
mod labels;
mod link;
mod name;
mod num;
mod resources;
mod schema;

use std::path::PathBuf;
use std::sync::Arc;

use crate::host_value::{HostError, HostValue};
use crate::label::LabelInfo;

pub use build::PolicyBuilder;
pub use canonical::{
    args_hash, canonical_args, canonical_json, labels_json, payload_hash, CanonicalError,
};
pub use entry::{NetEntry, NetHost, PathText, Word};
pub use file::{
    Action, ArgConfig, GrantValue, LabelCond, LabelConfig, LabelSelector, Lit, OnLabelViolation,
    Pattern, PolicyConfig, PolicySection, RuleConfig, Rules, ValueCond, RESERVED_RULE_IDS,
};
pub use flags::GrantFlags;
pub use link::{ManifestView, Missing};
pub use name::{valid_tool_name, ToolPattern, MAX_TOOL_NAME};
pub use num::Num;
pub use resources::{FsGrantLists, NetGrant, PathGrants};
pub use schema::Schema;

/// The error kind a program gets when the policy refuses an effect.
pub const POLICY_DENIED: &str = "PolicyDenied";

/// Why the policy refused something: the rule that decided and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (rule {rule})")]
pub struct Denial {
    /// A stable rule id: a user rule's `id`, or a built-in one such as `grant:read`.
    pub rule: String,
    pub reason: String,
}

impl Denial {
    pub fn new(rule: impl Into<String>, reason: impl Into<String>) -> Denial {
        Denial {
            rule: rule.into(),
            reason: reason.into(),
        }
    }

    /// The catchable error the program gets: kind `PolicyDenied`, payload `{tool, rule,
    /// reason}`.
    pub fn into_host_error(self, tool: &str) -> HostError {
        // Most reasons already name the tool; say it once.
        let message = if self.reason.starts_with(tool) {
            self.reason.clone()
        } else {
            format!("{tool}: {}", self.reason)
        };
        let payload = HostValue::new(crate::host_value::HostData::Record(vec![
            ("tool".into(), HostValue::str(tool)),
            ("rule".into(), HostValue::str(self.rule)),
            ("reason".into(), HostValue::str(self.reason)),
        ]));
        HostError::new(POLICY_DENIED, message).with_payload(payload)
    }
}

/// A policy that cannot be built: the message says which flag or entry, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
    #[error("--permissions {name}: {message}")]
    Permissions { name: String, message: String },
    #[error("aivm.toml: {message}")]
    Config { message: String },
}

/// What to do with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    /// Only with a person's approval (denied when nobody can be asked).
    Ask,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::Deny => "deny",
        }
    }
}

/// The judgement of one call: the verdict, the rule that decided it and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// A stable rule id (a user rule's `id` or a built-in one); spec/security-policy.md.
    pub rule: String,
    /// A sentence for people, naming the flag or rule to change. It never quotes argument
    /// values (they may be secret); it may name argument names, patterns and readers.
    pub reason: String,
    /// The call asks because a label condition failed (a rule's `on_label_violation = "ask"`).
    pub label_violation: bool,
    /// Whether `--yes` may approve this ask: `--ask` asks are; a rule's asks only with
    /// `auto_approve = true`.
    pub auto_approvable: bool,
}

impl Decision {
    fn new(verdict: Verdict, rule: impl Into<String>, reason: String) -> Decision {
        Decision {
            verdict,
            rule: rule.into(),
            reason,
            label_violation: false,
            auto_approvable: false,
        }
    }

    pub(crate) fn deny(rule: impl Into<String>, reason: String) -> Decision {
        Decision::new(Verdict::Deny, rule, reason)
    }

    pub(crate) fn allow(rule: impl Into<String>, reason: String) -> Decision {
        Decision::new(Verdict::Allow, rule, reason)
    }

    /// The denial, when the verdict is `Deny`.
    pub fn denial(&self) -> Option<Denial> {
        (self.verdict == Verdict::Deny).then(|| Denial::new(&self.rule, &self.reason))
    }
}

/// One call to judge. `args` are the exact values the tool will receive, by parameter name.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub tool: &'a str,
    pub args: &'a [(String, HostValue)],
    /// The control label of the call (the pc of the frame that asked for it).
    pub control: &'a LabelInfo,
    /// A native tool of the host (`fs.read`, ...), as opposed to a program function offered
    /// to a model or an MCP tool.
    pub native: bool,
    /// Who would see the arguments, when the host knows it: `net:HOST` for an HTTP request,
    /// `model:NAME` for a model. It takes precedence over a rule's audience.
    pub audience: Option<&'a str>,
}

/// Where a grant or deny came from, as a person would write it (`--deny-net=evil.com`).
pub(crate) type Origin = Arc<str>;

/// The grants and denies of one resource kind.
#[derive(Clone, Debug)]
pub(crate) struct Access<T> {
    pub(crate) allow_all: Option<Origin>,
    pub(crate) allow: Vec<(T, Origin)>,
    pub(crate) deny_all: Option<Origin>,
    pub(crate) deny: Vec<(T, Origin)>,
}

impl<T> Default for Access<T> {
    fn default() -> Self {
        Access {
            allow_all: None,
            allow: Vec::new(),
            deny_all: None,
            deny: Vec::new(),
        }
    }
}

impl<T> Access<T> {
    /// Whether anything of the kind is granted at all (a deny of everything cancels it).
    pub(crate) fn any_allowed(&self) -> bool {
        self.deny_all.is_none() && (self.allow_all.is_some() || !self.allow.is_empty())
    }
}

/// The compiled policy.
#[derive(Clone, Debug)]
pub(crate) struct Inner {
    cwd: PathBuf,
    read: Access<PathBuf>,
    write: Access<PathBuf>,
    net: Access<NetEntry>,
    run: Access<Word>,
    env: Access<Word>,
    model: Access<Word>,
    tool_allow_all: Option<Origin>,
    tool_allow: name::PatternSet<Origin>,
    tool_deny_all: Option<Origin>,
    tool_deny: name::PatternSet<Origin>,
    ask: name::PatternSet<Origin>,
    /// User rules in the order they were added; the sets below index them by tool.
    rules: Vec<RuleConfig>,
    deny_rules: name::PatternSet<u32>,
    pass_rules: name::PatternSet<u32>,
    labels: Vec<labels::LabelEntry>,
    deny_declassify: Option<Origin>,
    deny_endorse: Option<Origin>,
    no_prompt: bool,
    yes: bool,
}

impl Inner {
    fn empty(cwd: PathBuf) -> Inner {
        Inner {
            cwd,
            read: Access::default(),
            write: Access::default(),
            net: Access::default(),
            run: Access::default(),
            env: Access::default(),
            model: Access::default(),
            tool_allow_all: None,
            tool_allow: Default::default(),
            tool_deny_all: None,
            tool_deny: Default::default(),
            ask: Default::default(),
            rules: Vec::new(),
            deny_rules: Default::default(),
            pass_rules: Default::default(),
            labels: Vec::new(),
            deny_declassify: None,
            deny_endorse: None,
            no_prompt: false,
            yes: false,
        }
    }
}

/// A compiled, immutable policy; cloning it is cheap.
#[derive(Clone, Debug)]
pub struct Policy {
    inner: Arc<Inner>,
}

impl Default for Policy {
    /// Nothing granted but what every program may do (print, read a line, ask, the clock,
    /// and its own functions).
    fn default() -> Self {
        PolicyBuilder::new("/").build()
    }
}

impl Policy {
    /// `--no-prompt`: an ask is a denial.
    pub fn no_prompt(&self) -> bool {
        self.inner.no_prompt
    }

    /// `--yes`: auto-approvable asks are approved.
    pub fn yes(&self) -> bool {
        self.inner.yes
    }

    /// The user rules, in order.
    pub fn rules(&self) -> &[RuleConfig] {
        &self.inner.rules
    }
}
