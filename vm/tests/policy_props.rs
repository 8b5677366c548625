//! Properties of the policy engine over generated policies and calls: a deny is never
//! undone by adding allows (flags or rules); more restrictive labels never get a more
//! permissive verdict; rules that require trust never pass untrusted data; tool patterns
//! agree with a regex reference; the label join is a semilattice join; canonical JSON is
//! JSON and ignores field order.

use std::collections::BTreeSet;
use std::path::Path;

use aivm_vm::host::config::Config;
use aivm_vm::policy::{
    canonical_json, Call, GrantFlags, Policy, PolicyBuilder, ToolPattern, Verdict,
};
use aivm_vm::{HostData, HostValue, Integrity, LabelInfo};
use proptest::prelude::*;

fn build(toml: &str, flags: &GrantFlags) -> Policy {
    let cfg =
        Config::parse(toml, Path::new("/p/aivm.toml")).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    PolicyBuilder::new("/work")
        .config(&cfg.policy, Path::new("/p"), None)
        .unwrap()
        .flags(flags)
        .unwrap()
        .build()
}

/// A few names and patterns, so that generated rules often apply to generated calls.
const NAMES: &[&str] = &["a", "ab", "b", "m.a", "fs.read", "io.print"];
const PATTERNS: &[&str] = &[
    "a", "ab", "a*", "*", "b*", "m.*", "*.a", "fs.*", "fs.read", "io.print",
];

fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(NAMES).prop_map(String::from),
        "[ab]{1,3}"
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(PATTERNS).prop_map(String::from),
        1 => "[ab*]{1,3}",
    ]
}

fn label() -> impl Strategy<Value = LabelInfo> {
    (
        any::<bool>(),
        proptest::option::weighted(0.3, proptest::collection::btree_set("[abcu]", 0..3)),
    )
        .prop_map(|(untrusted, readers)| LabelInfo {
            integrity: if untrusted {
                Integrity::Untrusted
            } else {
                Integrity::Trusted
            },
            readers: readers.map(|r: BTreeSet<String>| {
                r.into_iter()
                    .map(|x| if x == "u" { "user".into() } else { x })
                    .collect()
            }),
        })
}

/// One allow or ask rule as TOML, with random value and label conditions on `x`.
#[derive(Clone, Debug)]
struct RuleSpec {
    tool: String,
    ask: bool,
    range: Option<(i64, i64)>,
    trusted: bool,
    audience: Option<String>,
    control: bool,
    label_ask: bool,
    auto: bool,
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    // Weighted towards few conditions, so that rules often hold.
    (
        pattern(),
        any::<bool>(),
        proptest::option::weighted(0.3, (-5i64..10, 0i64..10)),
        proptest::bool::weighted(0.4),
        proptest::option::weighted(
            0.2,
            prop_oneof![Just("a".to_string()), Just("user".to_string())],
        ),
        proptest::bool::weighted(0.2),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(tool, ask, range, trusted, audience, control, label_ask, auto)| RuleSpec {
                tool,
                ask,
                range: range.map(|(lo, w)| (lo, lo + w)),
                trusted,
                audience,
                control,
                label_ask,
                auto,
            },
        )
}

fn rule_toml(id: &str, r: &RuleSpec) -> String {
    let mut s = format!(
        "\n[[policy.rules]]\nid = \"{id}\"\ntool = \"{}\"\naction = \"{}\"\non_label_violation = \"{}\"\nauto_approve = {}\n",
        r.tool,
        if r.ask { "ask" } else { "allow" },
        if r.label_ask { "ask" } else { "deny" },
        r.auto
    );
    if r.control {
        s.push_str("control = \"trusted\"\n");
    }
    if r.range.is_some() || r.trusted || r.audience.is_some() {
        s.push_str("[policy.rules.args.x]\n");
        if let Some((lo, hi)) = r.range {
            s.push_str(&format!("range = [{lo}, {hi}]\n"));
        }
        if r.trusted {
            s.push_str("trusted = true\n");
        }
        if let Some(a) = &r.audience {
            s.push_str(&format!("audience = \"{a}\"\n"));
        }
    }
    s
}

fn deny_rule_toml(id: &str, tool: &str, range: Option<(i64, i64)>) -> String {
    // Dotted keys, so that rules after it in the file do not land in its args table.
    let mut s =
        format!("\n[[policy.rules]]\nid = \"{id}\"\ntool = \"{tool}\"\naction = \"deny\"\n");
    if let Some((lo, hi)) = range {
        s.push_str(&format!("args.x.range = [{lo}, {hi}]\n"));
    }
    s
}

/// Random allow flags (deny flags are never generated here).
fn allow_flags() -> impl Strategy<Value = GrantFlags> {
    (
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(pattern(), 0..3)),
        proptest::option::of(proptest::collection::vec("[a-c]{1,2}\\.com", 0..3)),
        proptest::option::of(proptest::collection::vec("[a-c]{1,2}", 0..3)),
        proptest::collection::vec(pattern(), 0..2),
    )
        .prop_map(
            |(allow_all, allow_tool, allow_net, allow_run, ask)| GrantFlags {
                allow_all,
                allow_tool,
                allow_net,
                allow_run: allow_run.clone(),
                allow_env: allow_run,
                allow_read: Some(vec![]),
                ask,
                ..Default::default()
            },
        )
}

#[derive(Clone, Debug)]
struct CallSpec {
    tool: String,
    x: Option<(i64, LabelInfo)>,
    control: LabelInfo,
    native: bool,
}

fn call_spec() -> impl Strategy<Value = CallSpec> {
    (
        tool_name(),
        proptest::option::weighted(0.8, (-8i64..16, label())),
        label(),
        any::<bool>(),
    )
        .prop_map(|(tool, x, control, native)| CallSpec {
            tool,
            x,
            control,
            native,
        })
}

fn decide(p: &Policy, c: &CallSpec) -> aivm_vm::policy::Decision {
    let args: Vec<(String, HostValue)> =
        c.x.iter()
            .map(|(n, l)| ("x".to_string(), HostValue::int(*n).labelled(l.clone())))
            .collect();
    p.decide(&Call {
        tool: &c.tool,
        args: &args,
        control: &c.control,
        native: c.native,
        audience: None,
    })
}

/// JSON equality, floats within a relative 1e-15 (serde_json's default float parser is not
/// always correctly rounded; the canonical text is).
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            // serde_json's parser (without its exact-float feature) may be off in the last
            // digits, relatively more so for subnormals, which have fewer significant bits.
            let tolerance = if x.abs() < f64::MIN_POSITIVE {
                1e-9
            } else {
                1e-15
            };
            x == y || (x - y).abs() <= tolerance * x.abs().max(y.abs())
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Allow => 0,
        Verdict::Ask => 1,
        Verdict::Deny => 2,
    }
}

fn leq(a: &LabelInfo, b: &LabelInfo) -> bool {
    let readers_ok = match (&a.readers, &b.readers) {
        (_, None) => a.readers.is_none(),
        (None, Some(_)) => true,
        (Some(ra), Some(rb)) => rb.is_subset(ra),
    };
    a.integrity <= b.integrity && readers_ok
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Deno CVE-2025-48888 generalised: whatever allows are added, a denied tool, host,
    /// command or variable stays denied.
    #[test]
    fn deny_flags_win_over_any_allows(
        call in call_spec(),
        star in any::<bool>(),
        flags in allow_flags(),
        rules in proptest::collection::vec(rule_spec(), 0..4),
        host in "[a-c]{1,2}\\.com",
        cmd in "[a-c]{1,2}",
    ) {
        let deny = if star { format!("{}*", &call.tool[..1]) } else { call.tool.clone() };
        let toml: String = rules.iter().enumerate().map(|(i, r)| rule_toml(&format!("r{i}"), r)).collect();
        let flags = GrantFlags {
            deny_tool: Some(vec![deny]),
            deny_net: Some(vec![host.clone()]),
            deny_run: Some(vec![cmd.clone()]),
            deny_env: Some(vec![cmd.clone()]),
            ..flags
        };
        let p = build(&toml, &flags);
        let d = decide(&p, &call);
        prop_assert_eq!((d.verdict, d.rule.as_str()), (Verdict::Deny, "deny:tool"));
        prop_assert_eq!(p.check_net(&host, 443).map_err(|d| d.rule), Err("deny:net".to_string()));
        prop_assert!(p.check_run(&cmd).is_err());
        prop_assert!(p.check_env(&cmd).is_err());
    }

    /// A call a deny rule refuses is refused by the same rule after any allow rules and
    /// allow flags are added, before or after it in the file.
    #[test]
    fn allows_never_undo_a_deny_rule(
        call in call_spec(),
        star in any::<bool>(),
        spread in proptest::option::of((0i64..5, 0i64..5)),
        flags in allow_flags(),
        rules in proptest::collection::vec(rule_spec(), 0..5),
        first in any::<bool>(),
    ) {
        let deny_tool = if star { format!("{}*", &call.tool[..1]) } else { call.tool.clone() };
        // A range holding the call's `x` (any range when `x` is absent: it cannot be judged).
        let x = call.x.as_ref().map_or(0, |(n, _)| *n);
        let deny_range = spread.map(|(lo, hi)| (x - lo, x + hi));
        let base_toml = deny_rule_toml("d", &deny_tool, deny_range);
        let before = decide(&build(&base_toml, &GrantFlags::default()), &call);
        prop_assert_eq!((before.verdict, before.rule.as_str()), (Verdict::Deny, "d"));
        let extra: String = rules.iter().enumerate().map(|(i, r)| rule_toml(&format!("r{i}"), r)).collect();
        let toml = if first { format!("{extra}{base_toml}") } else { format!("{base_toml}{extra}") };
        let after = decide(&build(&toml, &flags), &call);
        prop_assert_eq!((after.verdict, after.rule.as_str()), (Verdict::Deny, "d"));
    }

    /// Raising the labels of a call (less trusted, fewer readers; arguments or control)
    /// never turns a denial into anything else; and, when no rule is an ask rule, it never
    /// makes the verdict more permissive at all. (With ask rules it can: an ask rule whose
    /// label condition fails no longer applies, and a satisfied allow rule then allows, as
    /// "at least one rule must be satisfied; ask beats allow" says.)
    #[test]
    fn more_restrictive_labels_never_loosen_the_verdict(
        call in call_spec(),
        rules in proptest::collection::vec(rule_spec(), 0..4),
        flags in allow_flags(),
        raise_x in label(),
        raise_control in label(),
    ) {
        let toml: String = rules.iter().enumerate().map(|(i, r)| rule_toml(&format!("r{i}"), r)).collect();
        let p = build(&toml, &flags);
        let before = decide(&p, &call);
        let mut raised = call.clone();
        raised.control = raised.control.join(&raise_control);
        if let Some((_, l)) = &mut raised.x {
            *l = l.join(&raise_x);
        }
        let after = decide(&p, &raised);
        if before.verdict == Verdict::Deny {
            prop_assert_eq!(after.verdict, Verdict::Deny, "{:?} -> {:?}", before, after);
        }
        if rules.iter().all(|r| !r.ask) {
            prop_assert!(rank(after.verdict) >= rank(before.verdict), "{:?} -> {:?}", before, after);
        }
    }

    /// When every rule for a tool requires `x` to be trusted, an untrusted `x` is never
    /// allowed, and it asks only as a label violation of a rule that says so.
    #[test]
    fn required_trust_is_never_skipped(
        call in call_spec(),
        rules in proptest::collection::vec(rule_spec(), 1..4),
        flags in allow_flags(),
    ) {
        let mut rules: Vec<RuleSpec> = rules.into_iter().map(|r| RuleSpec { trusted: true, ..r }).collect();
        // At least one rule is for the called tool.
        rules[0].tool = call.tool.clone();
        let toml: String = rules.iter().enumerate().map(|(i, r)| rule_toml(&format!("r{i}"), r)).collect();
        let p = build(&toml, &flags);
        let mut c = call.clone();
        let n = c.x.as_ref().map_or(0, |(n, _)| *n);
        c.x = Some((n, LabelInfo::untrusted()));
        let d = decide(&p, &c);
        prop_assert!(d.verdict != Verdict::Allow, "{:?}", d);
        if d.verdict == Verdict::Ask {
            prop_assert!(d.label_violation, "{:?}", d);
        }
    }

    /// Tool patterns agree with a regex written from their definition.
    #[test]
    fn tool_patterns_match_like_the_reference(p in "[ab.*]{1,6}", name in "[ab.]{1,6}") {
        let reference = regex::Regex::new(&format!(
            "^{}$",
            regex::escape(&p).replace("\\*", "[A-Za-z0-9_.-]*")
        )).unwrap();
        prop_assert_eq!(ToolPattern::parse(&p).unwrap().matches(&name), reference.is_match(&name));
    }

    /// Join is associative, commutative, idempotent, an upper bound, and monotone.
    #[test]
    fn label_join_is_a_join(a in label(), b in label(), c in label()) {
        prop_assert_eq!(a.join(&b).join(&c), a.join(&b.join(&c)));
        prop_assert_eq!(a.join(&b), b.join(&a));
        prop_assert_eq!(a.join(&a), a.clone());
        prop_assert!(leq(&a, &a.join(&b)) && leq(&b, &a.join(&b)));
        let a2 = a.join(&c);
        prop_assert!(leq(&a, &a2));
        prop_assert!(leq(&a.join(&b), &a2.join(&b)));
        prop_assert_eq!(a.join(&LabelInfo::public()), a.clone());
    }

    /// Canonical JSON parses as the value's JSON, whatever the order of its fields.
    #[test]
    fn canonical_json_is_json_and_order_free(
        fields in proptest::collection::btree_map("[a-z\u{e9}\"\\\\]{1,4}", prop_oneof![
            any::<i64>().prop_map(HostValue::int),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| HostValue::new(HostData::Float(f))),
            ".{0,8}".prop_map(HostValue::str),
        ], 0..6),
        rotate in 0usize..6,
    ) {
        let mut list: Vec<(String, HostValue)> = fields.into_iter().collect();
        let v = HostValue::new(HostData::Record(list.clone()));
        if !list.is_empty() {
            let k = rotate % list.len();
            list.rotate_left(k);
        }
        let w = HostValue::new(HostData::Record(list));
        let text = canonical_json(&v).unwrap();
        prop_assert_eq!(&text, &canonical_json(&w).unwrap());
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert!(json_close(&parsed, &v.to_json()), "{} vs {}", parsed, v.to_json());
    }
}
