//! A policy as the tests describe it: the same value becomes the command-line flags and the
//! `aivm.toml` sections the run gets (spec/security-policy.md, /work/notes/SEC.md §2), and is
//! what the reference checker re-judges the journal against.

use serde_json::Value;

/// A grant of one kind: nothing, everything of the kind (the flag without a value), or a list.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Grant {
    #[default]
    None,
    All,
    Some(Vec<String>),
}

impl Grant {
    pub fn some(items: &[&str]) -> Grant {
        Grant::Some(items.iter().map(|s| s.to_string()).collect())
    }

    pub fn items(&self) -> &[String] {
        match self {
            Grant::Some(v) => v,
            _ => &[],
        }
    }
}

/// allow | ask | deny
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

/// One condition on a named argument (`[policy.rules.args.NAME]`).
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Equals(Value),
    OneOf(Vec<Value>),
    /// A full-match regular expression: the checker understands only patterns that are
    /// literal text with `\.` escapes (it says so when it meets another).
    Pattern(String),
    Range(f64, f64),
    /// The argument's label must be trusted.
    Trusted,
    /// The readers of this argument must include the value of the named argument.
    ReadersInclude(String),
    /// The readers of this argument must include this principal.
    Audience(String),
}

/// A `[[policy.rules]]` entry.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub tool: String,
    pub action: Action,
    pub control_trusted: bool,
    pub on_label_violation_ask: bool,
    pub auto_approve: Option<bool>,
    /// Rule-level audience: who sees this call's arguments (a principal)...
    pub audience: Option<String>,
    /// ...or the principals named by the value of this argument.
    pub audience_arg: Option<String>,
    pub args: Vec<(String, Vec<Cond>)>,
}

impl Rule {
    pub fn new(id: &str, tool: &str, action: Action) -> Rule {
        Rule {
            id: id.to_string(),
            tool: tool.to_string(),
            action,
            control_trusted: false,
            on_label_violation_ask: false,
            auto_approve: None,
            audience: None,
            audience_arg: None,
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, name: &str, cond: Cond) -> Rule {
        match self.args.iter_mut().find(|(n, _)| n == name) {
            Some((_, conds)) => conds.push(cond),
            None => self.args.push((name.to_string(), vec![cond])),
        }
        self
    }

    pub fn control_trusted(mut self) -> Rule {
        self.control_trusted = true;
        self
    }

    pub fn ask_on_label_violation(mut self) -> Rule {
        self.on_label_violation_ask = true;
        self
    }

    pub fn audience_arg(mut self, arg: &str) -> Rule {
        self.audience_arg = Some(arg.to_string());
        self
    }

    pub fn auto_approve(mut self, yes: bool) -> Rule {
        self.auto_approve = Some(yes);
        self
    }
}

/// What a `[[labels]]` entry selects.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSource {
    Tool(String),
    Read(String),
    Env(String),
}

/// A `[[labels]]` entry: the output label of a tool or of files under a path.
#[derive(Clone, Debug)]
pub struct LabelDecl {
    pub source: LabelSource,
    pub untrusted: Option<bool>,
    pub readers: Option<Vec<String>>,
}

/// A whole policy.
#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    pub allow_read: Grant,
    pub allow_write: Grant,
    pub allow_net: Grant,
    pub allow_run: Grant,
    pub allow_env: Grant,
    pub allow_tool: Grant,
    pub allow_model: Grant,
    pub deny_read: Vec<String>,
    pub deny_write: Vec<String>,
    pub deny_net: Vec<String>,
    pub deny_run: Vec<String>,
    pub deny_env: Vec<String>,
    pub deny_tool: Vec<String>,
    pub ask: Vec<String>,
    pub allow_all: bool,
    pub no_prompt: bool,
    pub yes: bool,
    pub strict_flow: bool,
    pub rules: Vec<Rule>,
    pub labels: Vec<LabelDecl>,
}

fn toml_str(s: &str) -> String {
    // A JSON string is a valid TOML basic string for everything the tests write.
    Value::String(s.to_string()).to_string()
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::String(s) => toml_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// Integral bounds as TOML integers (what an int argument is compared with), others as floats.
fn toml_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

fn toml_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

impl PolicySpec {
    /// The command-line flags of the grants, denies, asks and switches.
    pub fn flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        let grants = [
            ("read", &self.allow_read),
            ("write", &self.allow_write),
            ("net", &self.allow_net),
            ("run", &self.allow_run),
            ("env", &self.allow_env),
            ("tool", &self.allow_tool),
            ("model", &self.allow_model),
        ];
        for (kind, g) in grants {
            match g {
                Grant::None => {}
                Grant::All => out.push(format!("--allow-{kind}")),
                Grant::Some(v) => out.push(format!("--allow-{kind}={}", v.join(","))),
            }
        }
        let denies = [
            ("read", &self.deny_read),
            ("write", &self.deny_write),
            ("net", &self.deny_net),
            ("run", &self.deny_run),
            ("env", &self.deny_env),
            ("tool", &self.deny_tool),
        ];
        for (kind, d) in denies {
            if !d.is_empty() {
                out.push(format!("--deny-{kind}={}", d.join(",")));
            }
        }
        for a in &self.ask {
            out.push(format!("--ask={a}"));
        }
        for (on, flag) in [
            (self.allow_all, "-A"),
            (self.no_prompt, "--no-prompt"),
            (self.yes, "--yes"),
            (self.strict_flow, "--strict-flow"),
        ] {
            if on {
                out.push(flag.to_string());
            }
        }
        out
    }

    /// The `[[policy.rules]]` and `[[labels]]` sections (empty when there are none).
    pub fn toml(&self) -> String {
        let mut s = String::new();
        for r in &self.rules {
            s.push_str("[[policy.rules]]\n");
            s.push_str(&format!("id = {}\n", toml_str(&r.id)));
            s.push_str(&format!("tool = {}\n", toml_str(&r.tool)));
            let action = match r.action {
                Action::Allow => "allow",
                Action::Ask => "ask",
                Action::Deny => "deny",
            };
            s.push_str(&format!("action = \"{action}\"\n"));
            if r.control_trusted {
                s.push_str("control = \"trusted\"\n");
            }
            if r.on_label_violation_ask {
                s.push_str("on_label_violation = \"ask\"\n");
            }
            if let Some(a) = r.auto_approve {
                s.push_str(&format!("auto_approve = {a}\n"));
            }
            if let Some(a) = &r.audience {
                s.push_str(&format!("audience = {}\n", toml_str(a)));
            }
            if let Some(a) = &r.audience_arg {
                s.push_str(&format!("audience_arg = {}\n", toml_str(a)));
            }
            for (name, conds) in &r.args {
                s.push_str(&format!("[policy.rules.args.{}]\n", toml_str(name)));
                for c in conds {
                    let line = match c {
                        Cond::Equals(v) => format!("equals = {}", toml_value(v)),
                        Cond::OneOf(v) => {
                            format!("one_of = {}", toml_value(&Value::Array(v.clone())))
                        }
                        Cond::Pattern(p) => format!("pattern = {}", toml_str(p)),
                        Cond::Range(lo, hi) => {
                            format!("range = [{}, {}]", toml_num(*lo), toml_num(*hi))
                        }
                        Cond::Trusted => "trusted = true".to_string(),
                        Cond::ReadersInclude(a) => format!("readers_include = {}", toml_str(a)),
                        Cond::Audience(p) => format!("audience = {}", toml_str(p)),
                    };
                    s.push_str(&line);
                    s.push('\n');
                }
            }
            s.push('\n');
        }
        for l in &self.labels {
            let mut fields = vec![match &l.source {
                LabelSource::Tool(t) => format!("tool = {}", toml_str(t)),
                LabelSource::Read(p) => format!("read = {}", toml_str(p)),
                LabelSource::Env(v) => format!("env = {}", toml_str(v)),
            }];
            if let Some(u) = l.untrusted {
                fields.push(format!(
                    "integrity = \"{}\"",
                    if u { "untrusted" } else { "trusted" }
                ));
            }
            if let Some(r) = &l.readers {
                fields.push(format!("readers = {}", toml_list(r)));
            }
            s.push_str(&format!("[[labels]]\n{}\n\n", fields.join("\n")));
        }
        s
    }
}
