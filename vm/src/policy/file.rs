//! The policy parts of `aivm.toml`: `[policy]`, `[permissions.NAME]`, `[[policy.rules]]` and
//! `[[labels]]`. Every entry is checked while it is read (ids, patterns, hosts, ranges,
//! schemas, rule consistency), so a bad one is an error at its line and column.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::entry::{EnvName, NetEntry, PathText, Word};
use super::name::{valid_tool_name, ToolPattern};
use super::num::Num;
use super::schema::Schema;
use crate::label::Integrity;

/// Everything about permissions in one `aivm.toml`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyConfig {
    /// `[policy]`: always applied.
    pub policy: PolicySection,
    /// `[permissions.NAME]`: applied when chosen with `--permissions NAME`.
    pub permissions: IndexMap<String, PolicySection>,
    /// `[[labels]]`: the labels of tool outputs.
    pub labels: Vec<LabelConfig>,
}

/// A `[policy]` or `[permissions.NAME]` table: the same keys as the flags, plus rules.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicySection {
    #[serde(default)]
    pub allow_all: bool,
    #[serde(default)]
    pub allow_read: Option<GrantValue<PathText>>,
    #[serde(default)]
    pub deny_read: Option<GrantValue<PathText>>,
    #[serde(default)]
    pub allow_write: Option<GrantValue<PathText>>,
    #[serde(default)]
    pub deny_write: Option<GrantValue<PathText>>,
    #[serde(default)]
    pub allow_net: Option<GrantValue<NetEntry>>,
    #[serde(default)]
    pub deny_net: Option<GrantValue<NetEntry>>,
    #[serde(default)]
    pub allow_run: Option<GrantValue<Word>>,
    #[serde(default)]
    pub deny_run: Option<GrantValue<Word>>,
    #[serde(default)]
    pub allow_env: Option<GrantValue<EnvName>>,
    #[serde(default)]
    pub deny_env: Option<GrantValue<EnvName>>,
    #[serde(default)]
    pub allow_tool: Option<GrantValue<ToolPattern>>,
    #[serde(default)]
    pub deny_tool: Option<GrantValue<ToolPattern>>,
    #[serde(default)]
    pub allow_model: Option<GrantValue<Word>>,
    #[serde(default)]
    pub deny_model: Option<GrantValue<Word>>,
    /// Tools (ids or patterns) whose calls ask a person even when granted.
    #[serde(default)]
    pub ask: Vec<ToolPattern>,
    /// Refuse programs that declare `needs declassify` / `needs endorse`.
    #[serde(default)]
    pub deny_declassify: bool,
    #[serde(default)]
    pub deny_endorse: bool,
    /// `[[policy.rules]]` (or `[[permissions.NAME.rules]]`).
    #[serde(default)]
    pub rules: Rules,
}

/// A grant's value in a file: `true` (everything of the kind), `false` or `[]` (nothing),
/// or a list of entries.
#[derive(Clone, Debug, PartialEq)]
pub enum GrantValue<T> {
    All,
    Items(Vec<T>),
}

impl<'de, T> Deserialize<'de> for GrantValue<T>
where
    T: TryFrom<String, Error = String>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: TryFrom<String, Error = String>> Visitor<'de> for V<T> {
            type Value = GrantValue<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a list of strings")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<GrantValue<T>, E> {
                Ok(if b {
                    GrantValue::All
                } else {
                    GrantValue::Items(Vec::new())
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GrantValue<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    items.push(T::try_from(s).map_err(de::Error::custom)?);
                }
                Ok(GrantValue::Items(items))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The rules of one table, with unique ids.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(try_from = "Vec<RuleConfig>")]
pub struct Rules(pub Vec<RuleConfig>);

impl TryFrom<Vec<RuleConfig>> for Rules {
    type Error = String;
    fn try_from(rules: Vec<RuleConfig>) -> Result<Self, String> {
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            if !seen.insert(r.id.as_str()) {
                return Err(format!("rule id `{}` is used twice", r.id));
            }
        }
        Ok(Rules(rules))
    }
}

/// What a rule does when its tool matches and its conditions hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

/// What a failed label condition of an allow/ask rule leads to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnLabelViolation {
    #[default]
    Deny,
    Ask,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ControlReq {
    Trusted,
}

/// One `[[policy.rules]]` entry, checked.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct RuleConfig {
    pub id: String,
    pub tool: ToolPattern,
    pub action: Action,
    /// `control = "trusted"`: the call's control label must be trusted.
    pub control_trusted: bool,
    pub on_label_violation: OnLabelViolation,
    pub auto_approve: bool,
    /// Who would see this call's arguments: a fixed principal...
    pub audience: Option<String>,
    /// ...or the value of this argument (a string or a list of strings).
    pub audience_arg: Option<String>,
    /// Per-argument conditions, in file order; all must hold.
    pub args: Vec<(String, ArgConfig)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    tool: ToolPattern,
    action: Action,
    #[serde(default)]
    control: Option<ControlReq>,
    #[serde(default)]
    on_label_violation: Option<OnLabelViolation>,
    #[serde(default)]
    auto_approve: Option<bool>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    audience_arg: Option<String>,
    #[serde(default)]
    args: IndexMap<String, ArgConfig>,
}

/// Rule ids the engine uses itself; a user rule may not take one (ids with `:` cannot be
/// user ids at all).
pub const RESERVED_RULE_IDS: &[&str] = &[
    "default-deny",
    "invalid-tool-name",
    "duplicate-argument",
    "unknown-tool",
    "readers",
    "manifest",
];

impl TryFrom<RawRule> for RuleConfig {
    type Error = String;
    fn try_from(r: RawRule) -> Result<Self, String> {
        if !valid_tool_name(&r.id) {
            return Err(format!(
                "rule id {:?} must be 1 to 128 characters of A-Z a-z 0-9 _ . -",
                r.id
            ));
        }
        if RESERVED_RULE_IDS.contains(&r.id.as_str()) {
            return Err(format!("rule id `{}` is reserved for the engine", r.id));
        }
        let id = &r.id;
        let has_labels = r.args.values().any(|a| !a.labels.is_empty());
        if r.action == Action::Deny {
            // A deny rule fires when its conditions hold: a label condition there would deny
            // trusted values and let untrusted ones through, inverting the check.
            if has_labels || r.control.is_some() {
                return Err(format!(
                    "rule `{id}`: a deny rule cannot have label conditions (trusted, readers_include, audience, control): \
                     it would deny the trusted calls and pass the untrusted ones; put the requirement on an allow or ask rule"
                ));
            }
            for (key, set) in [
                ("on_label_violation", r.on_label_violation.is_some()),
                ("auto_approve", r.auto_approve.is_some()),
                ("audience", r.audience.is_some()),
                ("audience_arg", r.audience_arg.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "rule `{id}`: `{key}` has no meaning on a deny rule"
                    ));
                }
            }
        }
        if r.audience.is_some() && r.audience_arg.is_some() {
            return Err(format!(
                "rule `{id}`: set `audience` or `audience_arg`, not both"
            ));
        }
        for p in r.audience.iter().chain(&r.audience_arg) {
            if p.is_empty() {
                return Err(format!("rule `{id}`: an audience must not be empty"));
            }
        }
        if let Some((name, _)) = r.args.iter().find(|(n, _)| n.is_empty()) {
            return Err(format!("rule `{id}`: argument name {name:?} is empty"));
        }
        Ok(RuleConfig {
            id: r.id,
            tool: r.tool,
            action: r.action,
            control_trusted: r.control.is_some(),
            on_label_violation: r.on_label_violation.unwrap_or_default(),
            auto_approve: r.auto_approve.unwrap_or(false),
            audience: r.audience,
            audience_arg: r.audience_arg,
            args: r.args.into_iter().collect(),
        })
    }
}

/// The conditions on one argument: on its value and on its label. An empty set still
/// requires the argument to be present.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawArg")]
pub struct ArgConfig {
    pub value: Vec<ValueCond>,
    pub labels: Vec<LabelCond>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ValueCond {
    Equals(Lit),
    OneOf(Vec<Lit>),
    Pattern(Pattern),
    /// Inclusive bounds, `lo <= hi`, neither NaN.
    Range(Num, Num),
    Schema(Box<Schema>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum LabelCond {
    /// The argument's label (every part of it) must be trusted.
    Trusted,
    /// The argument's readers must include the value of this other argument.
    ReadersInclude(String),
    /// The argument's readers must include this principal.
    Audience(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArg {
    #[serde(default)]
    equals: Option<Lit>,
    #[serde(default)]
    one_of: Option<Vec<Lit>>,
    #[serde(default)]
    pattern: Option<Pattern>,
    #[serde(default)]
    range: Option<Vec<Lit>>,
    #[serde(default)]
    schema: Option<Lit>,
    #[serde(default)]
    trusted: Option<bool>,
    #[serde(default)]
    readers_include: Option<String>,
    #[serde(default)]
    audience: Option<String>,
}

impl TryFrom<RawArg> for ArgConfig {
    type Error = String;
    fn try_from(a: RawArg) -> Result<Self, String> {
        let mut value = Vec::new();
        if let Some(v) = a.equals {
            v.check_finite()?;
            value.push(ValueCond::Equals(v));
        }
        if let Some(vs) = a.one_of {
            if vs.is_empty() {
                return Err("`one_of` must list at least one value".into());
            }
            for v in &vs {
                v.check_finite()?;
            }
            value.push(ValueCond::OneOf(vs));
        }
        if let Some(p) = a.pattern {
            value.push(ValueCond::Pattern(p));
        }
        if let Some(r) = a.range {
            let [lo, hi] = r.as_slice() else {
                return Err("`range` must be [LOW, HIGH]".into());
            };
            let (Lit::Num(lo), Lit::Num(hi)) = (lo, hi) else {
                return Err("`range` bounds must be numbers".into());
            };
            if super::num::compare(*lo, *hi) == Some(std::cmp::Ordering::Greater) {
                return Err(format!(
                    "`range` [{lo}, {hi}]: the low bound is above the high one"
                ));
            }
            value.push(ValueCond::Range(*lo, *hi));
        }
        if let Some(s) = a.schema {
            value.push(ValueCond::Schema(Box::new(Schema::compile(&s)?)));
        }
        let mut labels = Vec::new();
        match a.trusted {
            Some(true) => labels.push(LabelCond::Trusted),
            Some(false) => {
                return Err(
                    "`trusted = false` would require untrusted data; leave `trusted` out to place no requirement on integrity".into(),
                )
            }
            None => {}
        }
        if let Some(other) = a.readers_include {
            if other.is_empty() {
                return Err("`readers_include` must name an argument".into());
            }
            labels.push(LabelCond::ReadersInclude(other));
        }
        if let Some(p) = a.audience {
            if p.is_empty() {
                return Err("`audience` must name a principal".into());
            }
            labels.push(LabelCond::Audience(p));
        }
        Ok(ArgConfig { value, labels })
    }
}

/// A full-match regular expression (compiled as `\A(?:...)\z`, so never a prefix match).
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl Pattern {
    /// The most memory a compiled pattern may take: policies are small.
    const SIZE_LIMIT: usize = 1 << 20;

    pub fn new(source: &str) -> Result<Pattern, String> {
        let regex = regex::RegexBuilder::new(&format!(r"\A(?:{source})\z"))
            .size_limit(Self::SIZE_LIMIT)
            .build()
            .map_err(|e| format!("pattern {source:?} is not a valid regular expression: {e}"))?;
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches.
    pub fn full_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Pattern::new(&s)
    }
}

/// A constant from a policy file (TOML has no null; NaN is refused when read).
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Bool(bool),
    Num(Num),
    Str(String),
    List(Vec<Lit>),
    Table(Vec<(String, Lit)>),
}

impl Lit {
    /// Infinities are fine as range bounds but can never be an argument's JSON value.
    fn check_finite(&self) -> Result<(), String> {
        match self {
            Lit::Num(Num::Float(f)) if !f.is_finite() => {
                Err(format!("{f} is not a value an argument can have"))
            }
            Lit::List(items) => items.iter().try_for_each(Lit::check_finite),
            Lit::Table(fields) => fields.iter().try_for_each(|(_, v)| v.check_finite()),
            _ => Ok(()),
        }
    }

    /// The JSON type name, for messages and type checks.
    pub fn type_name(&self) -> &'static str {
        match self {
            Lit::Bool(_) => "boolean",
            Lit::Num(_) => "number",
            Lit::Str(_) => "string",
            Lit::List(_) => "array",
            Lit::Table(_) => "object",
        }
    }
}

impl<'de> Deserialize<'de> for Lit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Lit, E> {
                Ok(Lit::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Lit, E> {
                Ok(Lit::Num(Num::Int(i)))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Lit, E> {
                i64::try_from(u)
                    .map(|i| Lit::Num(Num::Int(i)))
                    .map_err(|_| E::custom(format!("{u} is too large (the limit is {})", i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Lit, E> {
                if f.is_nan() {
                    return Err(E::custom("NaN is not a value a policy can compare with"));
                }
                Ok(Lit::Num(Num::Float(f)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Lit, E> {
                Ok(Lit::Str(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lit, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Lit>()? {
                    items.push(v);
                }
                Ok(Lit::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lit, A::Error> {
                let mut fields: Vec<(String, Lit)> = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    // The toml crate hands dates over as a private one-key table.
                    if k.starts_with("$__toml_private") {
                        return Err(de::Error::custom(
                            "dates and times are not values a policy can compare with",
                        ));
                    }
                    let v = map.next_value::<Lit>()?;
                    fields.push((k, v));
                }
                Ok(Lit::Table(fields))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[labels]]` entry: which outputs it labels, and how.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawLabel")]
pub struct LabelConfig {
    pub selector: LabelSelector,
    pub integrity: Option<Integrity>,
    pub readers: Option<Vec<String>>,
}

/// What a `[[labels]]` entry applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSelector {
    /// Every output of the matching tools.
    Tool(ToolPattern),
    /// `fs.read`/`fs.list` of this path or anything beneath it.
    Read(PathText),
    /// `http.*` answers from this host.
    Net(super::entry::NetHost),
    /// `proc.run` of this command.
    Run(Word),
    /// `env.get` of this variable.
    Env(Word),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    #[serde(default)]
    tool: Option<ToolPattern>,
    #[serde(default)]
    read: Option<PathText>,
    #[serde(default)]
    net: Option<String>,
    #[serde(default)]
    run: Option<Word>,
    #[serde(default)]
    env: Option<EnvName>,
    #[serde(default)]
    integrity: Option<Integrity>,
    #[serde(default)]
    readers: Option<Vec<String>>,
}

impl TryFrom<RawLabel> for LabelConfig {
    type Error = String;
    fn try_from(l: RawLabel) -> Result<Self, String> {
        let net = l
            .net
            .map(|h| super::entry::NetHost::parse(&h))
            .transpose()?;
        let mut selectors = Vec::new();
        selectors.extend(l.tool.map(LabelSelector::Tool));
        selectors.extend(l.read.map(LabelSelector::Read));
        selectors.extend(net.map(LabelSelector::Net));
        selectors.extend(l.run.map(LabelSelector::Run));
        selectors.extend(l.env.map(|e| LabelSelector::Env(e.0)));
        let selector = match selectors.len() {
            1 => selectors.remove(0),
            0 => return Err("a [[labels]] entry needs one of tool, read, net, run or env".into()),
            _ => {
                return Err(
                    "a [[labels]] entry takes one of tool, read, net, run or env, not several"
                        .into(),
                )
            }
        };
        if l.integrity.is_none() && l.readers.is_none() {
            return Err("a [[labels]] entry must set `integrity`, `readers` or both".into());
        }
        if let Some(r) = &l.readers {
            if r.iter().any(String::is_empty) {
                return Err("a reader must not be empty".into());
            }
        }
        Ok(LabelConfig {
            selector,
            integrity: l.integrity,
            readers: l.readers,
        })
    }
}
