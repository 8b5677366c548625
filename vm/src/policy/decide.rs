//! `Policy::decide`: the decision order of spec/security-policy.md, step by step. Every
//! path ends in exactly one `Decision`, and the first step that denies wins.

use std::borrow::Cow;

use rustc_hash::FxHashSet;

use super::cond::{deny_fires, judge, principals, show_readers, Args, RuleOutcome, Why};
use super::file::{Action, OnLabelViolation, RuleConfig};
use super::name::valid_tool_name;
use super::{Call, Decision, Policy, Verdict};
use crate::label::LabelInfo;

/// How a native tool is granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NativeGrant {
    /// Always (printing, reading a line, asking the user, the clock).
    Default,
    /// By a grant of this resource kind.
    Resource(Kind),
}

/// A kind of resource grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
    Net,
    Run,
    Env,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Net => "net",
            Kind::Run => "run",
            Kind::Env => "env",
        }
    }

    /// What a flag's value is called in messages.
    pub(crate) fn placeholder(self) -> &'static str {
        match self {
            Kind::Read | Kind::Write => "PATH",
            Kind::Net => "HOST",
            Kind::Run => "CMD",
            Kind::Env => "VAR",
        }
    }
}

/// The native tools the policy knows, and how each is granted.
pub(crate) fn native_grant(tool: &str) -> Option<NativeGrant> {
    Some(match tool {
        // A model call is granted when its model is (the host links models before the run);
        // the confidentiality rule still judges what the request shows the model. The tool
        // gate is the mechanism by which a program's own tools are judged: the host judges
        // each call through it as the program tool it names, and `mcp.call` likewise as the
        // MCP tool it names (`SERVER.TOOL`, which needs its own grant). `mcp.progress` only
        // reports to whoever called a served program.
        "io.print" | "io.read_line" | "io.ask" | "clock.now" | "llm.call" | "tool.call"
        | "mcp.call" | "mcp.progress" => NativeGrant::Default,
        "fs.read" | "fs.list" => NativeGrant::Resource(Kind::Read),
        "fs.write" => NativeGrant::Resource(Kind::Write),
        "http.get" | "http.post" => NativeGrant::Resource(Kind::Net),
        "proc.run" => NativeGrant::Resource(Kind::Run),
        "env.get" => NativeGrant::Resource(Kind::Env),
        _ => return None,
    })
}

/// A tool id for a message: escaped (no control, bidi or invisible characters reach a
/// terminal) and cut at 64 characters.
pub(crate) fn shown(tool: &str) -> String {
    let cut: String = tool.chars().take(64).collect();
    let more = if cut.len() < tool.len() { "…" } else { "" };
    let escaped: String = cut
        .chars()
        .flat_map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                vec![c]
            } else {
                c.escape_unicode().collect()
            }
        })
        .collect();
    format!("\"{escaped}\"{more}")
}

/// How the tool came to be granted (step 3), when it is.
pub(crate) enum Granted {
    /// By a built-in or flag grant: its rule id and a reason.
    By(&'static str, String),
    /// Only by the user allow/ask rules for it (step 4 decides).
    ByRules,
}

impl Policy {
    /// Judges one call (spec/security-policy.md, "Decision order"):
    /// 1. an invalid tool id or a repeated argument name → deny;
    /// 2. any deny (flag, deny-all of the tool's resource kind, or a deny rule whose
    ///    conditions hold) → deny;
    /// 3. the tool must be granted (natives by their resource grant or `--allow-tool`; the
    ///    built-in io/clock tools and program functions by default; an allow/ask rule for
    ///    the tool grants it), else deny `grant:tool` / `unknown-tool`;
    /// 4. when allow/ask rules exist for the tool, one must be satisfied — its conditions
    ///    hold and so does step 6 under its audience — (ask beats allow), else deny naming
    ///    the failed condition (or ask, for a label failure under
    ///    `on_label_violation = "ask"`);
    /// 5. `--ask` makes an allowed call ask;
    /// 6. confidentiality (without rules; with rules, inside step 4): every argument's
    ///    readers (and the control label's) must include the call's audience, else deny
    ///    `readers`.
    ///
    /// The resource check of a native tool (`check_net`, ...) is the host's, on the exact
    /// resource the tool will touch.
    pub fn decide(&self, call: &Call) -> Decision {
        let p = &*self.inner;
        let tool = call.tool;

        // 1. Names.
        if !valid_tool_name(tool) {
            return Decision::deny(
                "invalid-tool-name",
                format!(
                    "{} is not a valid tool id: ids are 1 to 128 characters of A-Z a-z 0-9 _ . - and are compared exactly",
                    shown(tool)
                ),
            );
        }
        if let Some(name) = repeated_arg(call.args) {
            return Decision::deny(
                "duplicate-argument",
                format!("{tool}: argument `{name}` is given more than once"),
            );
        }

        // 2. Denies.
        if let Some(o) = &p.tool_deny_all {
            return Decision::deny("deny:tool", format!("{tool}: every tool is denied by {o}"));
        }
        if let Some(o) = p.tool_deny.first(tool) {
            return Decision::deny("deny:tool", format!("{tool} is denied by {o}"));
        }
        let native = if call.native {
            native_grant(tool)
        } else {
            None
        };
        if let Some(NativeGrant::Resource(k)) = native {
            if let Some(o) = self.deny_all_of(k) {
                return Decision::deny(
                    format!("deny:{}", k.name()),
                    format!("{tool}: every {} grant is denied by {o}", k.name()),
                );
            }
        }
        if let Some(rule) = self.first_deny_rule(call) {
            return Decision::deny(
                rule.id.clone(),
                format!("{tool} is denied by rule `{}` in aivm.toml", rule.id),
            );
        }

        // 3. The tool grant.
        let args = Args::new(call.args);
        let mut rules: Vec<u32> = Vec::new();
        p.pass_rules.each(tool, |&i| rules.push(i));
        rules.sort_unstable();
        let granted = match self.grant(call, native) {
            Some(g) => g,
            None if !rules.is_empty() => Granted::ByRules,
            None => return self.ungranted(call, native),
        };

        // 4. The allow/ask rules for the tool (each judged with the confidentiality rule
        //    under its own audience); without rules, 6. confidentiality on its own.
        let mut decision = match granted {
            Granted::By(rule, reason) if rules.is_empty() => {
                if let Err(e) = readers_check(call, &args, None) {
                    return Decision::deny("readers", format!("{tool}: {}", e.message()));
                }
                Decision::allow(rule, reason)
            }
            _ => match self.judge_rules(call, &args, &rules) {
                Ok(d) => d,
                Err(d) => return d,
            },
        };

        // 5. `--ask`.
        if decision.verdict == Verdict::Allow {
            if let Some(o) = p.ask.first(tool) {
                decision = Decision {
                    verdict: Verdict::Ask,
                    rule: "ask:tool".into(),
                    reason: format!("{tool} asks for approval because of {o}"),
                    label_violation: false,
                    auto_approvable: true,
                };
            }
        }
        decision
    }

    /// Whether data with `label`, in a computation whose control label is `control`, may
    /// reach `audience` (a principal: `model:NAME` for a model's context, `user` for the
    /// terminal...): the confidentiality rule of `decide` for sinks that are not tool
    /// calls. A refusal has rule `readers`.
    pub fn check_flow(
        &self,
        label: &LabelInfo,
        control: &LabelInfo,
        audience: &str,
    ) -> Result<(), super::Denial> {
        for (what, l) in [("the data", label), ("the control flow", control)] {
            if let Some(r) = &l.readers {
                if !r.contains(audience) {
                    return Err(super::Denial::new(
                        "readers",
                        format!(
                            "{what} is readable only by {}, and would reach {audience}",
                            show_readers(r)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The origin of a deny of everything of kind `k`.
    pub(crate) fn deny_all_of(&self, k: Kind) -> Option<&super::Origin> {
        let p = &*self.inner;
        match k {
            Kind::Read => p.read.deny_all.as_ref(),
            Kind::Write => p.write.deny_all.as_ref(),
            Kind::Net => p.net.deny_all.as_ref(),
            Kind::Run => p.run.deny_all.as_ref(),
            Kind::Env => p.env.deny_all.as_ref(),
        }
    }

    /// The grant of kind `k`, when there is any (the first one, for the reason).
    fn any_grant_of(&self, k: Kind) -> Option<&super::Origin> {
        fn first<T>(a: &super::Access<T>) -> Option<&super::Origin> {
            if !a.any_allowed() {
                return None;
            }
            a.allow_all.as_ref().or(a.allow.first().map(|(_, o)| o))
        }
        let p = &*self.inner;
        match k {
            Kind::Read => first(&p.read),
            Kind::Write => first(&p.write),
            Kind::Net => first(&p.net),
            Kind::Run => first(&p.run),
            Kind::Env => first(&p.env),
        }
    }

    /// The first deny rule (in file order) for the tool that fires on this call.
    fn first_deny_rule(&self, call: &Call) -> Option<&RuleConfig> {
        let p = &*self.inner;
        let mut best: Option<u32> = None;
        p.deny_rules.each(call.tool, |&i| {
            if best.is_none_or(|b| i < b)
                && p.rules
                    .get(i as usize)
                    .is_some_and(|r| deny_fires(r, call.args))
            {
                best = Some(i);
            }
        });
        best.and_then(|i| p.rules.get(i as usize))
    }

    /// Step 3 without the rules: the grant of the tool by default, resource or flag.
    pub(crate) fn grant(&self, call: &Call, native: Option<NativeGrant>) -> Option<Granted> {
        let p = &*self.inner;
        let tool = call.tool;
        match native {
            Some(NativeGrant::Default) => {
                return Some(Granted::By(
                    "grant:default",
                    format!("{tool} is granted to every program"),
                ))
            }
            Some(NativeGrant::Resource(k)) => {
                if let Some(o) = self.any_grant_of(k) {
                    return Some(Granted::By(
                        match k {
                            Kind::Read => "grant:read",
                            Kind::Write => "grant:write",
                            Kind::Net => "grant:net",
                            Kind::Run => "grant:run",
                            Kind::Env => "grant:env",
                        },
                        format!("{tool} is granted by {o}"),
                    ));
                }
            }
            None if !call.native && !tool.contains('.') => {
                return Some(Granted::By(
                    "grant:program",
                    format!("{tool} is a function the program offers"),
                ))
            }
            None => {}
        }
        let o = p
            .tool_allow_all
            .as_ref()
            .or_else(|| p.tool_allow.first(tool))?;
        Some(Granted::By(
            "grant:tool",
            format!("{tool} is granted by {o}"),
        ))
    }

    fn ungranted(&self, call: &Call, native: Option<NativeGrant>) -> Decision {
        let tool = call.tool;
        match native {
            Some(NativeGrant::Resource(k)) => Decision::deny(
                "grant:tool",
                format!(
                    "{tool} is not granted: add --allow-{}={} (or --allow-tool={tool})",
                    k.name(),
                    k.placeholder()
                ),
            ),
            _ => Decision::deny(
                "unknown-tool",
                format!("no tool {tool} is granted: add --allow-tool={tool} if the program should use it"),
            ),
        }
    }

    /// Step 4: a rule is satisfied when its conditions hold and, under its audience, the
    /// confidentiality rule holds. The first satisfied ask rule asks, else the first
    /// satisfied allow rule allows; when none is satisfied, a label-only failure of a rule
    /// with `on_label_violation = "ask"` asks, and anything else denies naming the first
    /// rule's failed condition.
    fn judge_rules(&self, call: &Call, args: &Args, rules: &[u32]) -> Result<Decision, Decision> {
        let all = &self.inner.rules;
        let mut allow: Option<&RuleConfig> = None;
        // (rule, why, whether the confidentiality rule was what failed)
        let mut label_ask: Option<(&RuleConfig, Failure, bool)> = None;
        let mut first_fail: Option<(&RuleConfig, Failure, bool)> = None;
        for rule in rules.iter().filter_map(|&i| all.get(i as usize)) {
            let outcome = match judge(rule, args, call.control) {
                RuleOutcome::Pass => match readers_check(call, args, Some(rule)) {
                    Ok(()) => None,
                    Err(Unreadable::Label(m)) => Some((Failure::Text(m), true, true)),
                    Err(Unreadable::Audience(m)) => Some((Failure::Text(m), false, false)),
                },
                RuleOutcome::LabelFail(w) => Some((Failure::Cond(w), true, false)),
                RuleOutcome::ValueFail(w) => Some((Failure::Cond(w), false, false)),
            };
            match outcome {
                None if rule.action == Action::Ask => {
                    return Ok(Decision {
                        verdict: Verdict::Ask,
                        rule: rule.id.clone(),
                        reason: format!("{} asks for approval (rule `{}`)", call.tool, rule.id),
                        label_violation: false,
                        auto_approvable: rule.auto_approve,
                    });
                }
                None => {
                    allow.get_or_insert(rule);
                }
                Some((m, is_label, readers)) => {
                    let ask_mode = rule.on_label_violation == OnLabelViolation::Ask;
                    if is_label && ask_mode && label_ask.is_none() {
                        label_ask = Some((rule, m.clone(), readers));
                    }
                    if first_fail.is_none() {
                        first_fail = Some((rule, m, readers));
                    }
                }
            }
        }
        let id = |rule: &RuleConfig, readers: bool| {
            if readers {
                "readers".to_string()
            } else {
                rule.id.clone()
            }
        };
        if let Some(rule) = allow {
            let reason = format!("{} is allowed by rule `{}`", call.tool, rule.id);
            return Ok(Decision::allow(rule.id.clone(), reason));
        }
        if let Some((rule, m, readers)) = label_ask {
            return Ok(Decision {
                verdict: Verdict::Ask,
                rule: id(rule, readers),
                reason: format!(
                    "{}: {}; rule `{}` asks a person in that case",
                    call.tool,
                    m.render(),
                    rule.id
                ),
                label_violation: true,
                auto_approvable: rule.auto_approve,
            });
        }
        // Every rule either is satisfied or fails, so with rules to judge this is set;
        // without any, nothing allowed the call.
        let Some((rule, m, readers)) = first_fail else {
            return Err(Decision::deny(
                "default-deny",
                format!("{}: no rule allows this call", call.tool),
            ));
        };
        let others = match rules.len() {
            0 | 1 => String::new(),
            2 => "; the other rule for it does not hold either".into(),
            n => format!("; none of the {} other rules for it holds either", n - 1),
        };
        Err(Decision::deny(
            id(rule, readers),
            format!("{}: {} (rule `{}`){others}", call.tool, m.render(), rule.id),
        ))
    }
}

/// Why a rule was not satisfied: a condition, or the confidentiality rule under it.
#[derive(Clone)]
enum Failure<'a> {
    Cond(Why<'a>),
    Text(String),
}

impl Failure<'_> {
    fn render(&self) -> String {
        match self {
            Failure::Cond(w) => w.render(),
            Failure::Text(t) => t.clone(),
        }
    }
}

/// The first argument name that appears twice (a tool would see only one of the values).
fn repeated_arg(args: &[(String, crate::HostValue)]) -> Option<&str> {
    if args.len() <= 8 {
        for (i, (a, _)) in args.iter().enumerate() {
            if args.iter().take(i).any(|(b, _)| a == b) {
                return Some(a);
            }
        }
        return None;
    }
    let mut seen = FxHashSet::default();
    args.iter()
        .map(|(a, _)| a.as_str())
        .find(|a| !seen.insert(*a))
}

/// Who would see the call's arguments: the host's fact (`net:HOST`, `model:NAME`), else the
/// chosen rule's `audience_arg` or `audience`, else `user` for io.print/io.ask and
/// `tool:ID` for anything else.
fn audience<'c>(
    call: &Call<'c>,
    rule: Option<&'c RuleConfig>,
) -> Result<Vec<Cow<'c, str>>, Unreadable> {
    if let Some(a) = call.audience {
        return Ok(vec![Cow::Borrowed(a)]);
    }
    if let Some(r) = rule {
        if let Some(name) = &r.audience_arg {
            let (_, v) = Args::new(call.args).get(name).ok_or_else(|| {
                Unreadable::Audience(format!(
                    "argument `{name}`, which names who sees this call (rule `{}`), is absent",
                    r.id
                ))
            })?;
            return principals(v).ok_or_else(|| {
                Unreadable::Audience(format!(
                    "argument `{name}` must be a string or a list of strings to name who sees this call (rule `{}`)",
                    r.id
                ))
            });
        }
        if let Some(a) = &r.audience {
            return Ok(vec![Cow::Borrowed(a.as_str())]);
        }
    }
    Ok(vec![match call.tool {
        "io.print" | "io.ask" | "io.read_line" | "mcp.progress" => Cow::Borrowed("user"),
        t => Cow::Owned(format!("tool:{t}")),
    }])
}

/// Step 6: every argument's readers, and the control label's, must include every principal
/// of the audience.
/// Why the confidentiality rule refused a call: a label that excludes the audience, or an
/// audience argument that is absent or not a principal (a value failure).
enum Unreadable {
    Label(String),
    Audience(String),
}

impl Unreadable {
    fn message(self) -> String {
        match self {
            Unreadable::Label(m) | Unreadable::Audience(m) => m,
        }
    }
}

fn readers_check(call: &Call, args: &Args, rule: Option<&RuleConfig>) -> Result<(), Unreadable> {
    let all_public = call.control.readers.is_none()
        && call
            .args
            .iter()
            .all(|(_, v)| v.label.is_public() && is_flat(v));
    if all_public {
        return Ok(());
    }
    let who = audience(call, rule)?;
    let missing = |readers: &std::collections::BTreeSet<String>| {
        who.iter().find(|p| !readers.contains(p.as_ref())).cloned()
    };
    for ((name, _), label) in call.args.iter().zip(args.labels()) {
        if let Some(readers) = &label.readers {
            if let Some(p) = missing(readers) {
                return Err(Unreadable::Label(format!(
                    "argument `{name}` is readable only by {}, and this call would show it to {p}",
                    show_readers(readers)
                )));
            }
        }
    }
    if let Some(readers) = &call.control.readers {
        if let Some(p) = missing(readers) {
            return Err(Unreadable::Label(format!(
                "whether this call happens depends on data readable only by {} (its control label), and it would reach {p}",
                show_readers(readers)
            )));
        }
    }
    Ok(())
}

/// A scalar: its own label is its deep label.
fn is_flat(v: &crate::HostValue) -> bool {
    !matches!(
        v.data,
        crate::HostData::List(_) | crate::HostData::Map(_) | crate::HostData::Record(_)
    )
}
