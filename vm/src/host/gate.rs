//! The gate every effect passes before the host performs it (spec/security.md): the effect
//! becomes a call — a tool id, its arguments by name exactly as the tool will receive them,
//! the control label — the policy decides, an `ask` goes to a person, and the decision becomes
//! a journal event that the host writes before anything happens in the world.

use std::collections::BTreeMap;

use super::approve::{Approval, ApprovalRequest, Approvals, Approver, NoPrompt};
use super::journal::DecisionEvent;
use crate::format::{native_by_name, MCP_CALL};
use crate::host_value::{HostData, HostError, HostValue};
use crate::interp::EffectRequest;
use crate::policy::{self, Call, Decision, Denial, Policy, Verdict};
use crate::value::Key;

/// The effect a program passes before it runs one of its own functions that a model asked for.
pub(crate) const TOOL_GATE: &str = "tool.call";

/// One effect seen as a call to judge.
pub(crate) struct CallOf {
    pub tool: String,
    pub args: Vec<(String, HostValue)>,
    pub native: bool,
    pub audience: Option<String>,
}

/// The call an effect makes. Natives name their arguments by the native table's parameter
/// names (the values are moved out of `req` and must be given back with [`restore`]); the tool
/// gate and an MCP call are judged as the tool they name (arg 0: the program's tool, or the
/// MCP tool `SERVER.TOOL`) with the fields of their arguments record (arg 1) as its
/// arguments; a model call is judged with the model as its audience, an HTTP request with its
/// host, an MCP call with its tool.
pub(crate) fn call_of(req: &mut EffectRequest) -> CallOf {
    if req.native == TOOL_GATE || req.native == MCP_CALL {
        let tool = req
            .args
            .first()
            .and_then(HostValue::as_str)
            .unwrap_or("")
            .to_string();
        // A field read from a labelled record carries the record's label too (GetField
        // joins them), so each argument is judged with its container's label joined in.
        let inherit = |v: &HostValue| {
            let container = req.args.get(1).map(|a| &a.label);
            let mut v = v.clone();
            if let Some(c) = container.filter(|c| !c.is_public()) {
                v.label = c.join(&v.label);
            }
            v
        };
        let args = match req.args.get(1).map(|a| &a.data) {
            Some(HostData::Record(fields)) => fields
                .iter()
                .map(|(k, v)| (k.clone(), inherit(v)))
                .collect(),
            Some(HostData::Map(entries)) => entries
                .iter()
                .map(|(k, v)| (key_text(k), inherit(v)))
                .collect(),
            Some(_) => vec![("arguments".to_string(), req.args[1].clone())],
            None => Vec::new(),
        };
        return CallOf {
            tool,
            args,
            native: false,
            audience: audience_of(req),
        };
    }
    let audience = audience_of(req);
    let params: &[&str] = native_by_name(&req.native).map_or(&[], |(_, n)| n.params);
    let args = std::mem::take(&mut req.args)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let name = params
                .get(i)
                .map_or_else(|| format!("arg{i}"), |p| p.to_string());
            (name, v)
        })
        .collect();
    CallOf {
        tool: req.native.clone(),
        args,
        native: true,
        audience,
    }
}

/// Gives `req` back the arguments [`call_of`] moved out of it.
pub(crate) fn restore(req: &mut EffectRequest, c: CallOf) {
    if c.native {
        req.args = c.args.into_iter().map(|(_, v)| v).collect();
    }
}

/// Who sees an effect's arguments, when the host knows it: the model of a model call, the
/// host of an HTTP request (as the network check names it), the tool of an MCP call.
pub(crate) fn audience_of(req: &EffectRequest) -> Option<String> {
    let first = req.args.first().and_then(HostValue::as_str);
    match req.native.as_str() {
        "llm.call" => first.map(|m| format!("model:{m}")),
        MCP_CALL => first.map(|t| format!("tool:{t}")),
        "http.get" | "http.post" => first.and_then(url_host).map(|h| format!("net:{h}")),
        _ => None,
    }
}

fn key_text(k: &Key) -> String {
    match k {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => s.to_string(),
    }
}

/// The host of a URL as the network check names it (lower-case ASCII, IDNA applied), if the
/// URL parses; the HTTP tool re-checks every hop itself.
fn url_host(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.trim_end_matches('.');
    Some(host.trim_matches(['[', ']']).to_string())
}

/// An attempt the policy blocked, for the summary at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub tool: String,
    pub rule: String,
    pub reason: String,
}

/// The refusal an error records, if it is one (`PolicyDenied` with its `{tool, rule, reason}`
/// payload, from the gate or from a tool that checked its resource).
pub(crate) fn blocked(e: &HostError) -> Option<Blocked> {
    if e.kind != policy::POLICY_DENIED {
        return None;
    }
    let field = |name: &str| -> String {
        match e.payload.as_deref().map(|p| &p.data) {
            Some(HostData::Record(fields)) => fields
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_str())
                .unwrap_or("")
                .to_string(),
            _ => String::new(),
        }
    };
    Some(Blocked {
        tool: field("tool"),
        rule: field("rule"),
        reason: field("reason"),
    })
}

/// The verdict on one effect: whether it may happen (else the error the program gets), and the
/// journal event that records it (made only when someone reads it: a journal, or a replay
/// comparing it).
pub(crate) struct Judged {
    pub outcome: Result<(), HostError>,
    pub event: Option<DecisionEvent>,
}

/// The policy, the approver and the approvals of one run.
pub(crate) struct Gate {
    pub policy: Policy,
    approver: Box<dyn Approver>,
    approvals: Approvals,
    run_id: String,
}

impl Gate {
    pub fn new(policy: Policy) -> Gate {
        let run_id = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        Gate {
            policy,
            approver: Box::new(NoPrompt),
            approvals: Approvals::default(),
            run_id,
        }
    }

    pub fn set_approver(&mut self, approver: Box<dyn Approver>) {
        self.approver = approver;
    }

    /// Whether a person can be asked (MCP elicitation is offered only then).
    pub fn can_ask(&self) -> bool {
        self.approver.can_ask()
    }

    /// Puts an MCP server's form to the person, if there is one.
    pub fn elicit(&mut self, req: &super::approve::Elicitation) -> super::approve::ElicitAnswer {
        self.approver.elicit(req)
    }

    /// Judges `req`. In a replay, `recorded` is the decision the journal holds for this effect:
    /// its answer to an `ask` is used instead of asking again.
    pub fn judge(
        &mut self,
        req: &mut EffectRequest,
        seq: u64,
        recorded: Option<&DecisionEvent>,
        want_event: bool,
    ) -> Judged {
        let c = call_of(req);
        let decision = self.policy.decide(&Call {
            tool: &c.tool,
            args: &c.args,
            control: &req.control,
            native: c.native,
            audience: c.audience.as_deref(),
        });
        // The canonical arguments are what an approval binds and what the journal hashes;
        // an allowed or denied call nobody records needs neither.
        let needs_canonical = want_event || decision.verdict == Verdict::Ask;
        let canonical = if needs_canonical {
            policy::canonical_args(&c.args).unwrap_or_else(|e| format!("!{e}"))
        } else {
            String::new()
        };
        let mut event = want_event.then(|| DecisionEvent {
            task: req.task.0,
            seq,
            tool: c.tool.clone(),
            verdict: decision.verdict.as_str().to_string(),
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
            args_hash: policy::args_hash(&canonical),
            labels: c
                .args
                .iter()
                .map(|(k, v)| (k.clone(), v.deep_label().to_string()))
                .collect::<BTreeMap<_, _>>(),
            control: req.control.to_string(),
            approval: None,
        });
        let outcome = match decision.verdict {
            Verdict::Allow => Ok(()),
            Verdict::Deny => Err(denial(&decision)),
            Verdict::Ask => {
                let approval = match recorded {
                    Some(r) => recorded_approval(r),
                    None => self.ask(&c, req, &canonical, &decision),
                };
                if let Some(e) = event.as_mut() {
                    e.approval = Some(approval.as_str().to_string());
                }
                if approval.approved() {
                    Ok(())
                } else {
                    Err(Denial::new(
                        &decision.rule,
                        format!("{} ({})", decision.reason, approval.as_str()),
                    ))
                }
            }
        };
        let outcome = outcome.map_err(|d| d.into_host_error(&c.tool));
        restore(req, c);
        Judged { outcome, event }
    }

    /// Puts an `ask` to the approver. The approval is bound to this payload and this run by a
    /// fresh nonce and consumed at once by the effect it was given for.
    fn ask(
        &mut self,
        c: &CallOf,
        req: &EffectRequest,
        canonical: &str,
        decision: &Decision,
    ) -> Approval {
        let labels = policy::labels_json(&c.args);
        let nonce = self.approvals.nonce();
        let hash = policy::payload_hash(
            &c.tool,
            canonical,
            &labels,
            &decision.rule,
            &self.run_id,
            &nonce.to_string(),
        );
        let request = ApprovalRequest {
            tool: c.tool.clone(),
            args: canonical.to_string(),
            labels: c
                .args
                .iter()
                .map(|(k, v)| (k.clone(), v.deep_label().to_string()))
                .collect(),
            control: req.control.to_string(),
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
            label_violation: decision.label_violation,
            auto_approvable: decision.auto_approvable,
            hash: hash.clone(),
        };
        let approval = self.approver.approve(&request);
        if !approval.approved() {
            return approval;
        }
        self.approvals.grant(nonce, &hash);
        // The effect about to run is the one shown: the same payload, bound by the same nonce.
        if self.approvals.consume(nonce, &hash) {
            approval
        } else {
            Approval::Refused(super::approve::Refusal::Person)
        }
    }
}

fn denial(d: &Decision) -> Denial {
    d.denial()
        .unwrap_or_else(|| Denial::new(&d.rule, d.reason.clone()))
}

/// A recorded answer to an `ask`, as the replay gives it again.
fn recorded_approval(r: &DecisionEvent) -> Approval {
    use super::approve::Refusal;
    match r.approval.as_deref() {
        Some("approved") => Approval::Person,
        Some("auto-approved") => Approval::Auto,
        Some("refused: no one to ask") => Approval::Refused(Refusal::NonInteractive),
        Some("refused: --yes does not cover it") => Approval::Refused(Refusal::NotAutoApprovable),
        _ => Approval::Refused(Refusal::Person),
    }
}

/// The error for an effect the host cannot perform at all.
pub(crate) fn unknown_effect(effect: &str) -> HostError {
    Denial::new(
        "unknown-tool",
        format!("this host does not perform the effect {effect}"),
    )
    .into_host_error(effect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::TaskId;
    use crate::label::LabelInfo;
    use crate::policy::{GrantFlags, PolicyBuilder};

    /// `mcp.call("files.read_text_file", {path})` with an untrusted arguments record.
    fn mcp_request() -> EffectRequest {
        let args = HostValue::new(HostData::Record(vec![
            ("path".into(), HostValue::str("/etc/passwd")),
            ("tail".into(), HostValue::int(3)),
        ]))
        .labelled(LabelInfo::untrusted());
        EffectRequest {
            task: TaskId(0),
            native: MCP_CALL.into(),
            args: vec![HostValue::str("files.read_text_file"), args],
            control: LabelInfo::default(),
        }
    }

    #[test]
    fn an_mcp_call_is_judged_as_its_tool_with_the_record_fields_as_arguments() {
        let mut req = mcp_request();
        let c = call_of(&mut req);
        assert_eq!(c.tool, "files.read_text_file");
        assert!(!c.native);
        assert_eq!(c.audience.as_deref(), Some("tool:files.read_text_file"));
        let names: Vec<&str> = c.args.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["path", "tail"]);
        // Each field carries the record's label, as reading it in the program would.
        assert!(c
            .args
            .iter()
            .all(|(_, v)| v.label == LabelInfo::untrusted()));
        restore(&mut req, c);
        assert_eq!(req.args.len(), 2, "the request keeps its arguments");
    }

    #[test]
    fn a_denied_mcp_tool_is_refused_with_its_id_and_arguments_in_the_decision() {
        let mut gate = Gate::new(Policy::default());
        let mut req = mcp_request();
        let judged = gate.judge(&mut req, 7, None, true);
        let err = judged
            .outcome
            .expect_err("an MCP tool is denied unless granted");
        assert_eq!(err.kind, policy::POLICY_DENIED);
        let blocked = blocked(&err).expect("a policy refusal");
        assert_eq!(blocked.tool, "files.read_text_file");
        let event = judged.event.expect("an event was asked for");
        assert_eq!(event.tool, "files.read_text_file");
        assert_eq!(event.verdict, "deny");
        let labelled: Vec<&str> = event.labels.keys().map(String::as_str).collect();
        assert_eq!(labelled, ["path", "tail"]);
        assert_eq!(req.args.len(), 2);

        // Granted by id, the same call passes; another server's tool still does not.
        let flags = GrantFlags {
            allow_tool: Some(vec!["files.read_text_file".into()]),
            ..GrantFlags::default()
        };
        let policy = PolicyBuilder::new("/")
            .flags(&flags)
            .expect("valid flags")
            .build();
        let mut gate = Gate::new(policy);
        assert!(gate.judge(&mut req, 8, None, false).outcome.is_ok());
        req.args[0] = HostValue::str("other.read_text_file");
        assert!(gate.judge(&mut req, 9, None, false).outcome.is_err());
    }
}
