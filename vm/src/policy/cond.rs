//! Judging one rule against one call: each argument condition gives `Holds`, `Fails` or
//! `Unknown` (the argument is absent, or of a type the condition cannot judge). An allow or
//! ask rule needs every condition to hold; a deny rule fires unless some condition
//! definitely fails, so an argument the rule cannot judge is denied, never let through.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::file::{ArgConfig, LabelCond, Lit, RuleConfig, ValueCond};
use super::num::{compare, Num};
use crate::host_value::{HostData, HostValue};
use crate::label::{Integrity, LabelInfo};
use crate::value::Key;

/// The verdict of one condition.
pub(crate) enum Check<'a> {
    Holds,
    Fails(Why<'a>),
    Unknown(Why<'a>),
}

/// Why a condition did not hold; made into a sentence only for the one failure a decision
/// reports (a policy with many rules for a tool judges many, and formatting each would cost
/// more than judging it).
#[derive(Clone)]
pub(crate) enum Why<'a> {
    Absent(&'a str),
    /// (argument, its JSON type, the wanted type with its article)
    WrongType(&'a str, &'static str, &'static str),
    NotEqual(&'a str),
    NotListed(&'a str),
    NoMatch(&'a str, &'a str),
    OutOfRange(&'a str, Num, Num),
    NaN(&'a str),
    Schema(&'a str, String),
    Untrusted(&'a str),
    /// (argument, the argument naming its readers)
    ReadersArgAbsent(&'a str, &'a str),
    ReadersArgNotNames(&'a str, &'a str),
    ReadersExclude(&'a str, &'a str, &'a BTreeSet<String>),
    AudienceExcluded(&'a str, &'a str, &'a BTreeSet<String>),
    ControlUntrusted,
}

impl Why<'_> {
    /// The sentence for a decision's reason (never quoting a value).
    pub(crate) fn render(&self) -> String {
        match self {
            Why::Absent(n) => format!("argument `{n}` is absent"),
            Why::WrongType(n, found, want) => {
                format!("argument `{n}` is {} {found}, not {want}", article(found))
            }
            Why::NotEqual(n) => format!("argument `{n}` is not the value the rule requires"),
            Why::NotListed(n) => format!("argument `{n}` is not one of the values the rule lists"),
            Why::NoMatch(n, p) => {
                format!("argument `{n}` does not match the pattern {p:?} as a whole")
            }
            Why::OutOfRange(n, lo, hi) => format!("argument `{n}` is outside [{lo}, {hi}]"),
            Why::NaN(n) => format!("argument `{n}` is NaN, which is in no range"),
            Why::Schema(n, e) => {
                format!("argument `{n}` does not conform to the rule's schema ({e})")
            }
            Why::Untrusted(n) => {
                format!("argument `{n}` must be trusted, and it derives from untrusted data")
            }
            Why::ReadersArgAbsent(n, other) => format!(
                "argument `{other}`, which must be among the readers of `{n}`, is absent"
            ),
            Why::ReadersArgNotNames(n, other) => format!(
                "argument `{other}` must be a string or a list of strings to name readers of `{n}`"
            ),
            Why::ReadersExclude(n, other, r) => format!(
                "argument `{n}` is readable only by {}, which does not include every reader named by `{other}`",
                show_readers(r)
            ),
            Why::AudienceExcluded(n, p, r) => {
                format!("argument `{n}` is readable only by {}, not by {p}", show_readers(r))
            }
            Why::ControlUntrusted => "the call depends on untrusted data (its control label), and the rule requires trusted control".into(),
        }
    }
}

/// How an allow/ask rule fared against a call.
pub(crate) enum RuleOutcome<'a> {
    Pass,
    /// A condition on an argument's value failed (or could not be judged).
    ValueFail(Why<'a>),
    /// Every value condition held, and a label condition failed.
    LabelFail(Why<'a>),
}

/// The arguments of a call, with their deep labels computed once, when first needed.
pub(crate) struct Args<'a> {
    pub(crate) list: &'a [(String, HostValue)],
    labels: std::cell::OnceCell<Vec<LabelInfo>>,
}

impl<'a> Args<'a> {
    pub(crate) fn new(list: &'a [(String, HostValue)]) -> Args<'a> {
        Args {
            list,
            labels: std::cell::OnceCell::new(),
        }
    }

    /// The position and value of a named argument.
    pub(crate) fn get(&self, name: &str) -> Option<(usize, &'a HostValue)> {
        self.list
            .iter()
            .position(|(n, _)| n == name)
            .and_then(|i| self.list.get(i).map(|(_, v)| (i, v)))
    }

    /// The deep labels of all arguments, in order.
    pub(crate) fn labels(&self) -> &[LabelInfo] {
        self.labels
            .get_or_init(|| self.list.iter().map(|(_, v)| deep_label(v)).collect())
    }
}

/// The join of the labels of every node of a value, without allocating for scalars.
pub(crate) fn deep_label(v: &HostValue) -> LabelInfo {
    let mut label = LabelInfo::public();
    let mut stack: Vec<&HostValue> = Vec::new();
    let mut next = Some(v);
    while let Some(x) = next {
        if !x.label.is_public() {
            label = label.join(&x.label);
        }
        match &x.data {
            HostData::List(items) => stack.extend(items.iter()),
            HostData::Map(pairs) => stack.extend(pairs.iter().map(|(_, y)| y)),
            HostData::Record(fields) => stack.extend(fields.iter().map(|(_, y)| y)),
            _ => {}
        }
        next = stack.pop();
    }
    label
}

/// The JSON type name of a value, as messages show it.
pub(crate) fn json_kind(v: &HostValue) -> &'static str {
    match &v.data {
        HostData::Null => "null",
        HostData::Bool(_) => "boolean",
        HostData::Int(_) => "integer",
        HostData::Float(_) => "number",
        HostData::Str(_) => "string",
        HostData::List(_) => "array",
        HostData::Map(_) | HostData::Record(_) => "object",
        HostData::Error { .. } => "error",
        HostData::Func(_) => "function",
        HostData::Task(_) => "task",
    }
}

/// Whether a value has the JSON type of a constant (ints and floats are both numbers).
fn same_kind(l: &Lit, v: &HostValue) -> bool {
    matches!(
        (l, &v.data),
        (Lit::Bool(_), HostData::Bool(_))
            | (Lit::Num(_), HostData::Int(_) | HostData::Float(_))
            | (Lit::Str(_), HostData::Str(_))
            | (Lit::List(_), HostData::List(_))
            | (Lit::Table(_), HostData::Map(_) | HostData::Record(_))
    )
}

fn num_of(v: &HostValue) -> Option<Num> {
    match v.data {
        HostData::Int(i) => Some(Num::Int(i)),
        HostData::Float(f) => Some(Num::Float(f)),
        _ => None,
    }
}

/// Whether a value equals a constant: same JSON type, numbers by exact value (NaN equals
/// nothing), strings byte for byte, lists item by item, objects with the same keys.
pub(crate) fn lit_matches(l: &Lit, v: &HostValue) -> bool {
    match (l, &v.data) {
        (Lit::Bool(a), HostData::Bool(b)) => a == b,
        (Lit::Num(a), _) => {
            num_of(v).is_some_and(|b| compare(*a, b) == Some(std::cmp::Ordering::Equal))
        }
        (Lit::Str(a), HostData::Str(b)) => a == b,
        (Lit::List(a), HostData::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| lit_matches(x, y))
        }
        (Lit::Table(a), HostData::Record(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.iter().any(|(n, y)| n == k && lit_matches(x, y)))
        }
        (Lit::Table(a), HostData::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.iter().any(|(key, y)| key_is(key, k) && lit_matches(x, y)))
        }
        _ => false,
    }
}

fn key_is(key: &Key, name: &str) -> bool {
    match key {
        Key::Str(s) => &**s == name,
        Key::Int(i) => name == i.to_string(),
    }
}

/// The value of a named argument.
pub(crate) fn arg<'v>(args: &'v [(String, HostValue)], name: &str) -> Option<&'v HostValue> {
    args.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// "a string", "an object": the JSON type with its article.
fn with_article(t: &str) -> &'static str {
    match t {
        "boolean" => "a boolean",
        "number" => "a number",
        "string" => "a string",
        "array" => "an array",
        "object" => "an object",
        _ => "a value",
    }
}

fn value_check<'a>(name: &'a str, cond: &'a ValueCond, v: &HostValue) -> Check<'a> {
    let wrong_type = |want: &'static str| Check::Unknown(Why::WrongType(name, json_kind(v), want));
    match cond {
        ValueCond::Equals(l) => {
            if !same_kind(l, v) {
                wrong_type(with_article(l.type_name()))
            } else if lit_matches(l, v) {
                Check::Holds
            } else {
                Check::Fails(Why::NotEqual(name))
            }
        }
        ValueCond::OneOf(ls) => {
            if !ls.iter().any(|l| same_kind(l, v)) {
                wrong_type("of the type of the listed values")
            } else if ls.iter().any(|l| lit_matches(l, v)) {
                Check::Holds
            } else {
                Check::Fails(Why::NotListed(name))
            }
        }
        ValueCond::Pattern(p) => match &v.data {
            HostData::Str(s) if p.full_match(s) => Check::Holds,
            HostData::Str(_) => Check::Fails(Why::NoMatch(name, p.source())),
            _ => wrong_type("a string"),
        },
        ValueCond::Range(lo, hi) => match num_of(v) {
            None => wrong_type("a number"),
            Some(x) => match (compare(*lo, x), compare(x, *hi)) {
                (Some(a), Some(b)) if a.is_le() && b.is_le() => Check::Holds,
                (Some(_), Some(_)) => Check::Fails(Why::OutOfRange(name, *lo, *hi)),
                _ => Check::Unknown(Why::NaN(name)),
            },
        },
        ValueCond::Schema(s) => match s.check(v) {
            Ok(()) => Check::Holds,
            Err(e) => Check::Fails(Why::Schema(name, e)),
        },
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// `{a, b}` for a reason.
pub(crate) fn show_readers(r: &BTreeSet<String>) -> String {
    if r.is_empty() {
        return "nobody".into();
    }
    r.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// The principals an argument's value names (a string, or a list of strings).
pub(crate) fn principals(v: &HostValue) -> Option<Vec<Cow<'_, str>>> {
    match &v.data {
        HostData::Str(s) => Some(vec![Cow::Borrowed(s.as_str())]),
        HostData::List(items) => items
            .iter()
            .map(|x| x.as_str().map(Cow::Borrowed))
            .collect(),
        _ => None,
    }
}

fn label_check<'a>(
    name: &'a str,
    cond: &'a LabelCond,
    label: &'a LabelInfo,
    args: &Args<'a>,
) -> Check<'a> {
    match cond {
        LabelCond::Trusted => match label.integrity {
            Integrity::Trusted => Check::Holds,
            Integrity::Untrusted => Check::Fails(Why::Untrusted(name)),
        },
        LabelCond::ReadersInclude(other) => {
            let Some(readers) = &label.readers else {
                return Check::Holds;
            };
            let Some((_, value)) = args.get(other) else {
                return Check::Fails(Why::ReadersArgAbsent(name, other));
            };
            let Some(ps) = principals(value) else {
                return Check::Fails(Why::ReadersArgNotNames(name, other));
            };
            if ps.iter().all(|p| readers.contains(p.as_ref())) {
                Check::Holds
            } else {
                Check::Fails(Why::ReadersExclude(name, other, readers))
            }
        }
        LabelCond::Audience(p) => match &label.readers {
            Some(r) if !r.contains(p) => Check::Fails(Why::AudienceExcluded(name, p, r)),
            _ => Check::Holds,
        },
    }
}

/// Judges an allow or ask rule: value conditions first (all arguments), then label
/// conditions and the control label, so that a label failure means the values were fine.
pub(crate) fn judge<'a>(
    rule: &'a RuleConfig,
    args: &'a Args<'a>,
    control: &LabelInfo,
) -> RuleOutcome<'a> {
    for (name, conds) in &rule.args {
        let Some((_, v)) = args.get(name) else {
            return RuleOutcome::ValueFail(Why::Absent(name));
        };
        for c in &conds.value {
            match value_check(name, c, v) {
                Check::Holds => {}
                Check::Fails(m) | Check::Unknown(m) => return RuleOutcome::ValueFail(m),
            }
        }
    }
    for (name, conds) in &rule.args {
        if conds.labels.is_empty() {
            continue;
        }
        let Some((i, _)) = args.get(name) else {
            continue; // Unreachable: the first pass required every constrained argument.
        };
        let Some(label) = args.labels().get(i) else {
            continue; // Unreachable: there is a label per argument.
        };
        for c in &conds.labels {
            match label_check(name, c, label, args) {
                Check::Holds => {}
                Check::Fails(m) | Check::Unknown(m) => return RuleOutcome::LabelFail(m),
            }
        }
    }
    if rule.control_trusted && control.integrity == Integrity::Untrusted {
        return RuleOutcome::LabelFail(Why::ControlUntrusted);
    }
    RuleOutcome::Pass
}

/// Whether a deny rule fires: every condition holds or cannot be judged (an absent argument
/// or one of another type counts as matching, so it is denied rather than let through).
pub(crate) fn deny_fires(rule: &RuleConfig, args: &[(String, HostValue)]) -> bool {
    rule.args.iter().all(|(name, conds): &(String, ArgConfig)| {
        let Some(v) = arg(args, name) else {
            return true;
        };
        conds
            .value
            .iter()
            .all(|c| !matches!(value_check(name, c, v), Check::Fails(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::file::Pattern;

    fn s(x: &str) -> HostValue {
        HostValue::str(x)
    }

    fn holds(c: &ValueCond, v: &HostValue) -> &'static str {
        match value_check("a", c, v) {
            Check::Holds => "holds",
            Check::Fails(_) => "fails",
            Check::Unknown(_) => "unknown",
        }
    }

    #[test]
    fn pattern_is_a_full_match() {
        let p = ValueCond::Pattern(Pattern::new(r"alice@x\.com").unwrap());
        assert_eq!(holds(&p, &s("alice@x.com")), "holds");
        assert_eq!(holds(&p, &s("alice@x.com.evil.net")), "fails");
        assert_eq!(holds(&p, &s("evil.net/alice@x.com")), "fails");
        assert_eq!(holds(&p, &s("alice@x.com\n")), "fails");
        assert_eq!(holds(&p, &HostValue::int(1)), "unknown");
        // An alternation is anchored as a whole, not only its first branch.
        let alt = ValueCond::Pattern(Pattern::new("a|b").unwrap());
        assert_eq!(holds(&alt, &s("bx")), "fails");
        assert_eq!(holds(&alt, &s("xa")), "fails");
        assert_eq!(holds(&alt, &s("b")), "holds");
    }

    #[test]
    fn ranges_ints_floats_and_nan() {
        let r = ValueCond::Range(Num::Int(0), Num::Int(1000));
        assert_eq!(holds(&r, &HostValue::int(0)), "holds");
        assert_eq!(holds(&r, &HostValue::int(1000)), "holds");
        assert_eq!(holds(&r, &HostValue::int(1001)), "fails");
        assert_eq!(holds(&r, &HostValue::new(HostData::Float(999.5))), "holds");
        assert_eq!(
            holds(&r, &HostValue::new(HostData::Float(1000.0001))),
            "fails"
        );
        assert_eq!(holds(&r, &HostValue::new(HostData::Float(-0.0))), "holds");
        assert_eq!(
            holds(&r, &HostValue::new(HostData::Float(f64::NAN))),
            "unknown"
        );
        assert_eq!(
            holds(&r, &HostValue::new(HostData::Float(f64::INFINITY))),
            "fails"
        );
        assert_eq!(holds(&r, &s("100")), "unknown");
        let f = ValueCond::Range(Num::Float(0.5), Num::Float(f64::INFINITY));
        assert_eq!(holds(&f, &HostValue::int(i64::MAX)), "holds");
        assert_eq!(holds(&f, &HostValue::int(0)), "fails");
    }

    #[test]
    fn equals_and_one_of_are_typed() {
        let e = ValueCond::Equals(Lit::Num(Num::Int(100)));
        assert_eq!(holds(&e, &HostValue::int(100)), "holds");
        assert_eq!(holds(&e, &HostValue::new(HostData::Float(100.0))), "holds");
        assert_eq!(holds(&e, &s("100")), "unknown");
        assert_eq!(holds(&e, &HostValue::int(101)), "fails");
        let o = ValueCond::OneOf(vec![Lit::Str("a".into()), Lit::Str("b".into())]);
        assert_eq!(holds(&o, &s("b")), "holds");
        assert_eq!(holds(&o, &s("B")), "fails");
        assert_eq!(holds(&o, &s("b ")), "fails");
        let t = ValueCond::Equals(Lit::Table(vec![("k".into(), Lit::Bool(true))]));
        let rec = |fields: Vec<(&str, HostValue)>| {
            HostValue::new(HostData::Record(
                fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ))
        };
        let yes = HostValue::new(HostData::Bool(true));
        assert_eq!(holds(&t, &rec(vec![("k", yes.clone())])), "holds");
        assert_eq!(
            holds(&t, &rec(vec![("k", yes.clone()), ("j", yes.clone())])),
            "fails"
        );
        let map = HostValue::new(HostData::Map(vec![(Key::Str("k".into()), yes)]));
        assert_eq!(holds(&t, &map), "holds");
        assert!(key_is(&Key::Int(1), "1") && !key_is(&Key::Int(1), "01"));
    }
}
