//! The policy: what the host lets a program do. Deny by default; every effect is judged here
//! before the host performs it (spec/security.md).

use crate::host_value::{HostError, HostValue};

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
        let message = format!("{tool}: {}", self.reason);
        let payload = HostValue::new(crate::host_value::HostData::Record(vec![
            ("tool".into(), HostValue::str(tool)),
            ("rule".into(), HostValue::str(self.rule)),
            ("reason".into(), HostValue::str(self.reason)),
        ]));
        HostError::new(POLICY_DENIED, message).with_payload(payload)
    }
}
