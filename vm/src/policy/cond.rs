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

/// The verdict of one condition; the strings are sentences for the decision's reason.
pub(crate) enum Check {
    Holds,
    Fails(String),
    Unknown(String),
}

/// How an allow/ask rule fared against a call.
pub(crate) enum RuleOutcome {
    Pass,
    /// A condition on an argument's value failed (or could not be judged).
    ValueFail(String),
    /// Every value condition held, and a label condition failed.
    LabelFail(String),
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

fn value_check(name: &str, cond: &ValueCond, v: &HostValue) -> Check {
    let wrong_type = |want: &str| {
        Check::Unknown(format!(
            "argument `{name}` is {} {}, not {want}",
            article(json_kind(v)),
            json_kind(v)
        ))
    };
    match cond {
        ValueCond::Equals(l) => {
            if !same_kind(l, v) {
                wrong_type(&format!("{} {}", article(l.type_name()), l.type_name()))
            } else if lit_matches(l, v) {
                Check::Holds
            } else {
                Check::Fails(format!(
                    "argument `{name}` is not the value the rule requires"
                ))
            }
        }
        ValueCond::OneOf(ls) => {
            if !ls.iter().any(|l| same_kind(l, v)) {
                wrong_type("of the type of the listed values")
            } else if ls.iter().any(|l| lit_matches(l, v)) {
                Check::Holds
            } else {
                Check::Fails(format!(
                    "argument `{name}` is not one of the values the rule lists"
                ))
            }
        }
        ValueCond::Pattern(p) => match &v.data {
            HostData::Str(s) if p.full_match(s) => Check::Holds,
            HostData::Str(_) => Check::Fails(format!(
                "argument `{name}` does not match the pattern {:?} as a whole",
                p.source()
            )),
            _ => wrong_type("a string"),
        },
        ValueCond::Range(lo, hi) => match num_of(v) {
            None => wrong_type("a number"),
            Some(x) => match (compare(*lo, x), compare(x, *hi)) {
                (Some(a), Some(b)) if a.is_le() && b.is_le() => Check::Holds,
                (Some(_), Some(_)) => {
                    Check::Fails(format!("argument `{name}` is outside [{lo}, {hi}]"))
                }
                _ => Check::Unknown(format!("argument `{name}` is NaN, which is in no range")),
            },
        },
        ValueCond::Schema(s) => match s.check(v) {
            Ok(()) => Check::Holds,
            Err(e) => Check::Fails(format!(
                "argument `{name}` does not conform to the rule's schema ({e})"
            )),
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

fn label_check(
    name: &str,
    cond: &LabelCond,
    label: &LabelInfo,
    args: &[(String, HostValue)],
) -> Check {
    match cond {
        LabelCond::Trusted => match label.integrity {
            Integrity::Trusted => Check::Holds,
            Integrity::Untrusted => Check::Fails(format!(
                "argument `{name}` must be trusted, and it derives from untrusted data"
            )),
        },
        LabelCond::ReadersInclude(other) => {
            let Some(readers) = &label.readers else {
                return Check::Holds;
            };
            let Some(value) = arg(args, other) else {
                return Check::Fails(format!(
                    "argument `{other}`, which must be among the readers of `{name}`, is absent"
                ));
            };
            let Some(ps) = principals(value) else {
                return Check::Fails(format!(
                    "argument `{other}` must be a string or a list of strings to name readers of `{name}`"
                ));
            };
            if ps.iter().all(|p| readers.contains(p.as_ref())) {
                Check::Holds
            } else {
                Check::Fails(format!(
                    "argument `{name}` is readable only by {}, which does not include every reader named by `{other}`",
                    show_readers(readers)
                ))
            }
        }
        LabelCond::Audience(p) => match &label.readers {
            Some(r) if !r.contains(p) => Check::Fails(format!(
                "argument `{name}` is readable only by {}, not by {p}",
                show_readers(r)
            )),
            _ => Check::Holds,
        },
    }
}

/// Judges an allow or ask rule: value conditions first (all arguments), then label
/// conditions and the control label, so that a label failure means the values were fine.
pub(crate) fn judge(
    rule: &RuleConfig,
    args: &[(String, HostValue)],
    control: &LabelInfo,
) -> RuleOutcome {
    for (name, conds) in &rule.args {
        let Some(v) = arg(args, name) else {
            return RuleOutcome::ValueFail(format!("argument `{name}` is absent"));
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
        let Some(v) = arg(args, name) else {
            continue; // Unreachable: the first pass required every constrained argument.
        };
        let label = v.deep_label();
        for c in &conds.labels {
            match label_check(name, c, &label, args) {
                Check::Holds => {}
                Check::Fails(m) | Check::Unknown(m) => return RuleOutcome::LabelFail(m),
            }
        }
    }
    if rule.control_trusted && control.integrity == Integrity::Untrusted {
        return RuleOutcome::LabelFail(
            "the call depends on untrusted data (its control label), and the rule requires trusted control".into(),
        );
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
