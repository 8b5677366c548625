//! The policy engine from the outside: policies written as `aivm.toml` and flags, calls
//! judged by `decide`, resources by `check_*`, manifests by `link`, outputs by
//! `output_label`. Includes the published policy bugs of Deno, CaMeL, FIDES and Progent as
//! regression tests at the engine level.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aivm_vm::host::config::Config;
use aivm_vm::policy::{
    Call, Decision, GrantFlags, ManifestView, NetGrant, Policy, PolicyBuilder, PolicyError, Verdict,
};
use aivm_vm::{HostData, HostValue, Integrity, LabelInfo};

const CWD: &str = "/work";

fn config(toml: &str) -> Config {
    Config::parse(toml, Path::new("/p/aivm.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn build(toml: &str, flags: &GrantFlags) -> Policy {
    PolicyBuilder::new(CWD)
        .config(&config(toml).policy, Path::new("/p"), None)
        .unwrap()
        .flags(flags)
        .unwrap()
        .build()
}

fn with_flags(flags: &GrantFlags) -> Policy {
    build("", flags)
}

fn with_toml(toml: &str) -> Policy {
    build(toml, &GrantFlags::default())
}

fn list(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

fn untrusted() -> LabelInfo {
    LabelInfo::untrusted()
}

fn readers(names: &[&str]) -> LabelInfo {
    LabelInfo {
        integrity: Integrity::Trusted,
        readers: Some(names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>()),
    }
}

fn s(x: &str) -> HostValue {
    HostValue::str(x)
}

fn args(pairs: Vec<(&str, HostValue)>) -> Vec<(String, HostValue)> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Decides a call with a public control label.
fn decide(p: &Policy, tool: &str, a: &[(String, HostValue)], native: bool) -> Decision {
    p.decide(&Call {
        tool,
        args: a,
        control: &LabelInfo::public(),
        native,
        audience: None,
    })
}

fn program(p: &Policy, tool: &str, a: Vec<(&str, HostValue)>) -> Decision {
    decide(p, tool, &args(a), false)
}

fn native(p: &Policy, tool: &str, a: Vec<(&str, HostValue)>) -> Decision {
    decide(p, tool, &args(a), true)
}

#[track_caller]
fn assert_verdict(d: &Decision, verdict: Verdict, rule: &str) {
    assert_eq!((d.verdict, d.rule.as_str()), (verdict, rule), "{d:?}");
}

// ---- Defaults and grants ----

#[test]
fn deny_by_default_except_what_every_program_may_do() {
    let p = Policy::default();
    assert_verdict(
        &native(&p, "io.print", vec![("text", s("hi"))]),
        Verdict::Allow,
        "grant:default",
    );
    assert_verdict(
        &native(&p, "clock.now", vec![]),
        Verdict::Allow,
        "grant:default",
    );
    assert_verdict(
        &program(&p, "summarize", vec![]),
        Verdict::Allow,
        "grant:program",
    );
    let d = native(&p, "fs.read", vec![("path", s("/etc/passwd"))]);
    assert_verdict(&d, Verdict::Deny, "grant:tool");
    assert!(d.reason.contains("--allow-read=PATH"), "{}", d.reason);
    let d = program(&p, "crm.lookup", vec![]);
    assert_verdict(&d, Verdict::Deny, "unknown-tool");
    assert!(d.reason.contains("--allow-tool=crm.lookup"), "{}", d.reason);
    // A native id the policy does not know is unknown, whatever its namespace.
    assert_verdict(
        &native(&p, "fs.delete_all", vec![]),
        Verdict::Deny,
        "unknown-tool",
    );
    assert!(p.check_model("large").is_err());
    assert!(p.check_run("git").is_err());
    assert!(p.check_env("HOME").is_err());
    assert!(p.check_net("example.com", 443).is_err());
    let fs = p.fs_grants();
    assert!(!fs.read.all && fs.read.roots.is_empty() && !fs.write.all);
}

#[test]
fn natives_are_granted_by_their_resource_or_allow_tool() {
    let p = with_flags(&GrantFlags {
        allow_read: list(&["./data"]),
        allow_tool: list(&["http.get", "crm.*"]),
        ..Default::default()
    });
    let d = native(&p, "fs.read", vec![("path", s("/work/data/x"))]);
    assert_verdict(&d, Verdict::Allow, "grant:read");
    assert!(d.reason.contains("--allow-read=./data"), "{}", d.reason);
    assert_verdict(&native(&p, "fs.write", vec![]), Verdict::Deny, "grant:tool");
    assert_verdict(
        &native(&p, "http.get", vec![]),
        Verdict::Allow,
        "grant:tool",
    );
    assert_verdict(
        &program(&p, "crm.lookup", vec![]),
        Verdict::Allow,
        "grant:tool",
    );
    assert_verdict(
        &program(&p, "crmx.lookup", vec![]),
        Verdict::Deny,
        "unknown-tool",
    );
    let fs = p.fs_grants();
    assert_eq!(fs.read.roots, [PathBuf::from("/work/data")]);
}

// ---- Deno CVE-2025-48888: a deny must beat an allow of everything ----

#[test]
fn deny_read_beats_allow_read_of_everything() {
    let p = with_flags(&GrantFlags {
        allow_read: Some(vec![]),
        deny_read: list(&["secrets"]),
        ..Default::default()
    });
    let fs = p.fs_grants();
    assert!(fs.read.all);
    assert_eq!(fs.read.deny, [PathBuf::from("/work/secrets")]);
    let m = ManifestView {
        read: vec!["./secrets/keys".into(), "./data".into()],
        ..Default::default()
    };
    let missing = p.link(&m);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].rule, "deny:read");
    assert!(missing[0].need.contains("./secrets/keys"));
    assert_eq!(missing[0].fix, "remove --deny-read=secrets");
}

#[test]
fn allow_all_never_undoes_a_deny() {
    let p = with_flags(&GrantFlags {
        allow_all: true,
        deny_net: list(&["evil.example"]),
        deny_tool: list(&["send_*"]),
        deny_run: list(&["rm"]),
        deny_env: list(&["AWS_SECRET_ACCESS_KEY"]),
        deny_model: list(&["expensive"]),
        deny_write: Some(vec![]),
        ..Default::default()
    });
    assert_eq!(p.check_net("good.example", 443), Ok(NetGrant::All));
    let d = p.check_net("evil.example", 443).unwrap_err();
    assert_eq!(d.rule, "deny:net");
    assert!(d.reason.contains("--deny-net=evil.example"), "{}", d.reason);
    assert_verdict(
        &program(&p, "send_money", vec![]),
        Verdict::Deny,
        "deny:tool",
    );
    assert_verdict(
        &program(&p, "lookup", vec![]),
        Verdict::Allow,
        "grant:program",
    );
    assert_eq!(p.check_run("rm").unwrap_err().rule, "deny:run");
    assert!(p.check_run("git").is_ok());
    assert!(p.check_env("AWS_SECRET_ACCESS_KEY").is_err());
    assert!(p.check_env("HOME").is_ok());
    assert!(p.check_model("expensive").is_err());
    assert!(p.check_model("small").is_ok());
    // Denying every write empties the write grants, and fs.write is denied outright.
    let fs = p.fs_grants();
    assert!(!fs.write.all && fs.write.roots.is_empty());
    assert!(fs.read.all);
    assert_verdict(&native(&p, "fs.write", vec![]), Verdict::Deny, "deny:write");
}

#[test]
fn a_specific_allow_does_not_beat_a_pattern_deny() {
    let p = with_flags(&GrantFlags {
        allow_tool: list(&["crm.send_money"]),
        deny_tool: list(&["crm.send_*"]),
        ..Default::default()
    });
    assert_verdict(
        &program(&p, "crm.send_money", vec![]),
        Verdict::Deny,
        "deny:tool",
    );
    // The same from a file and flags mixed: the file allows, the flag denies.
    let p = build(
        "[policy]\nallow-tool = [\"crm.*\"]\n",
        &GrantFlags {
            deny_tool: list(&["crm.delete"]),
            ..Default::default()
        },
    );
    assert_verdict(
        &program(&p, "crm.delete", vec![]),
        Verdict::Deny,
        "deny:tool",
    );
    assert_verdict(
        &program(&p, "crm.lookup", vec![]),
        Verdict::Allow,
        "grant:tool",
    );
}

// ---- Hosts: no spelling of a denied host gets through ----

#[test]
fn host_spellings_are_one_host() {
    let p = with_flags(&GrantFlags {
        allow_net: Some(vec![]),
        deny_net: list(&["evil.com", "127.0.0.1", "[::1]"]),
        ..Default::default()
    });
    for spelling in [
        "evil.com",
        "EVIL.COM",
        "evil.com.",
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "127.1",
        "[::ffff:127.0.0.1]",
        "::ffff:127.0.0.1",
        "::1",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
    ] {
        assert_eq!(
            p.check_net(spelling, 80).map_err(|d| d.rule),
            Err("deny:net".to_string()),
            "{spelling}"
        );
    }
    assert_eq!(p.check_net("evil.com.evil.net", 80), Ok(NetGrant::All));
    assert_eq!(
        p.check_net("ok.com@evil.com", 80).unwrap_err().rule,
        "grant:net"
    );
}

#[test]
fn named_hosts_ports_and_addresses() {
    let p = with_flags(&GrantFlags {
        allow_net: list(&[
            "api.x.com:443",
            "files.x.com",
            "127.0.0.1:8080",
            "[::1]:9000",
        ]),
        ..Default::default()
    });
    assert_eq!(p.check_net("api.x.com", 443), Ok(NetGrant::Named));
    let d = p.check_net("api.x.com", 80).unwrap_err();
    assert_eq!(d.rule, "grant:net");
    assert!(d.reason.contains("--allow-net=api.x.com"), "{}", d.reason);
    assert_eq!(p.check_net("files.x.com", 8443), Ok(NetGrant::Named));
    assert!(p.check_net("x.com", 443).is_err());
    assert!(p.check_net("evil.api.x.com", 443).is_err());
    assert_eq!(p.check_net("127.0.0.1", 8080), Ok(NetGrant::Named));
    assert!(p.check_net("127.0.0.1", 8081).is_err());
    assert_eq!(p.check_net("::1", 9000), Ok(NetGrant::Named));
    assert_eq!(p.check_net("bücher.de", 443).unwrap_err().rule, "grant:net");
    let idn = with_flags(&GrantFlags {
        allow_net: list(&["bücher.de"]),
        ..Default::default()
    });
    assert_eq!(idn.check_net("xn--bcher-kva.de", 443), Ok(NetGrant::Named));
    // A Cyrillic look-alike is another host.
    assert!(idn.check_net("b\u{0443}cher.de", 443).is_err());
}

// ---- Tool names: exact bytes only ----

#[test]
fn homoglyph_case_and_padded_tool_names_are_not_the_granted_tool() {
    let p = with_toml(
        r#"
[policy]
allow-tool = ["crm.send_money"]
"#,
    );
    assert_verdict(
        &program(&p, "crm.send_money", vec![]),
        Verdict::Allow,
        "grant:tool",
    );
    assert_verdict(
        &program(&p, "crm.Send_Money", vec![]),
        Verdict::Deny,
        "unknown-tool",
    );
    assert_verdict(
        &program(&p, "CRM.send_money", vec![]),
        Verdict::Deny,
        "unknown-tool",
    );
    for bad in [
        "crm.s\u{0435}nd_money", // Cyrillic е
        "crm.send_money ",
        " crm.send_money",
        "crm.send_money\0",
        "crm.send_money\u{200b}",
        "crm.send\u{202e}yenom",
        "",
    ] {
        let d = program(&p, bad, vec![]);
        assert_verdict(&d, Verdict::Deny, "invalid-tool-name");
        // The reason shows the name escaped: nothing invisible reaches a terminal.
        assert!(d.reason.is_ascii(), "{}", d.reason);
    }
    let long = "a".repeat(129);
    assert_verdict(
        &program(&p, &long, vec![]),
        Verdict::Deny,
        "invalid-tool-name",
    );
}

#[test]
fn repeated_argument_names_are_refused() {
    let p = Policy::default();
    let a = args(vec![("to", s("alice")), ("to", s("eve"))]);
    assert_verdict(
        &decide(&p, "send_email", &a, false),
        Verdict::Deny,
        "duplicate-argument",
    );
}

// ---- Rules: values ----

const EMAIL: &str = r#"
[[policy.rules]]
id = "mail-alice"
tool = "send_email"
action = "allow"
[policy.rules.args.to]
pattern = 'alice@x\.com'
"#;

#[test]
fn patterns_match_whole_values_never_a_prefix() {
    let p = with_toml(EMAIL);
    assert_verdict(
        &program(&p, "send_email", vec![("to", s("alice@x.com"))]),
        Verdict::Allow,
        "mail-alice",
    );
    for evil in [
        "alice@x.com.evil.net",
        "alice@x.com\n",
        "xalice@x.com",
        "alice@xxcom",
        "ALICE@x.com",
    ] {
        let d = program(&p, "send_email", vec![("to", s(evil))]);
        assert_verdict(&d, Verdict::Deny, "mail-alice");
        assert!(d.reason.contains("as a whole"), "{}", d.reason);
        assert!(
            !d.reason.contains(evil),
            "reasons never quote values: {}",
            d.reason
        );
    }
    // Not a string at all: denied, not coerced.
    let d = program(
        &p,
        "send_email",
        vec![("to", HostValue::new(HostData::List(vec![s("alice@x.com")])))],
    );
    assert_verdict(&d, Verdict::Deny, "mail-alice");
}

#[test]
fn an_omitted_constrained_argument_is_denied() {
    let p = with_toml(EMAIL);
    let d = program(&p, "send_email", vec![("body", s("hi"))]);
    assert_verdict(&d, Verdict::Deny, "mail-alice");
    assert!(d.reason.contains("argument `to` is absent"), "{}", d.reason);
    // The same for a deny rule: an argument it cannot judge is denied, not waved through.
    let p = with_toml(
        r#"
[[policy.rules]]
id = "no-big-payments"
tool = "send_money"
action = "deny"
[policy.rules.args.amount]
range = [1000, inf]
"#,
    );
    assert_verdict(
        &program(&p, "send_money", vec![("amount", HostValue::int(5))]),
        Verdict::Allow,
        "grant:program",
    );
    assert_verdict(
        &program(&p, "send_money", vec![("amount", HostValue::int(5000))]),
        Verdict::Deny,
        "no-big-payments",
    );
    assert_verdict(
        &program(&p, "send_money", vec![]),
        Verdict::Deny,
        "no-big-payments",
    );
    assert_verdict(
        &program(&p, "send_money", vec![("amount", s("5000"))]),
        Verdict::Deny,
        "no-big-payments",
    );
    let nan = HostValue::new(HostData::Float(f64::NAN));
    assert_verdict(
        &program(&p, "send_money", vec![("amount", nan)]),
        Verdict::Deny,
        "no-big-payments",
    );
}

#[test]
fn equals_one_of_range_and_schema() {
    let p = with_toml(
        r#"
[[policy.rules]]
id = "pay"
tool = "send_money"
action = "allow"
[policy.rules.args.recipient]
one_of = ["DE89370400440532013000", "GB29NWBK60161331926819"]
[policy.rules.args.amount]
range = [0, 1000]
schema = { type = "integer" }
[policy.rules.args.currency]
equals = "EUR"
"#,
    );
    let ok = |r: &str, amount: HostValue, cur: &str| {
        program(
            &p,
            "send_money",
            vec![
                ("recipient", s(r)),
                ("amount", amount),
                ("currency", s(cur)),
            ],
        )
    };
    assert_verdict(
        &ok("DE89370400440532013000", HostValue::int(1000), "EUR"),
        Verdict::Allow,
        "pay",
    );
    assert_verdict(
        &ok("DE89370400440532013000", HostValue::int(1001), "EUR"),
        Verdict::Deny,
        "pay",
    );
    assert_verdict(
        &ok("DE89370400440532013000", HostValue::int(-1), "EUR"),
        Verdict::Deny,
        "pay",
    );
    assert_verdict(
        &ok(
            "DE89370400440532013000",
            HostValue::new(HostData::Float(10.0)),
            "EUR",
        ),
        Verdict::Deny,
        "pay",
    );
    assert_verdict(
        &ok("DE89370400440532013000", s("100"), "EUR"),
        Verdict::Deny,
        "pay",
    );
    assert_verdict(
        &ok("DE89370400440532013000", HostValue::int(1), "eur"),
        Verdict::Deny,
        "pay",
    );
    assert_verdict(
        &ok("DE89 3704 0044 0532 0130 00", HostValue::int(1), "EUR"),
        Verdict::Deny,
        "pay",
    );
    assert_verdict(
        &ok("GB29NWBK60161331926819", HostValue::int(0), "EUR"),
        Verdict::Allow,
        "pay",
    );
}

#[test]
fn any_passing_rule_allows_and_ask_beats_allow() {
    let p = with_toml(
        r#"
[[policy.rules]]
id = "small"
tool = "send_money"
action = "allow"
args.amount.range = [0, 100]

[[policy.rules]]
id = "medium"
tool = "send_*"
action = "ask"
auto_approve = true
args.amount.range = [50, 1000]
"#,
    );
    let pay = |n: i64| program(&p, "send_money", vec![("amount", HostValue::int(n))]);
    assert_verdict(&pay(10), Verdict::Allow, "small");
    let d = pay(75);
    assert_verdict(&d, Verdict::Ask, "medium");
    assert!(d.auto_approvable && !d.label_violation);
    assert_verdict(&pay(500), Verdict::Ask, "medium");
    let d = pay(5000);
    assert_verdict(&d, Verdict::Deny, "small");
    assert!(d.reason.contains("other rule"), "{}", d.reason);
}

#[test]
fn an_ask_rule_whose_label_condition_fails_no_longer_applies() {
    // "At least one rule must be satisfied; ask beats allow": a satisfied allow rule still
    // allows when the only ask rule fails its label condition. Write the label condition
    // on the allow rule when it must hold for every call.
    let p = with_toml(
        r#"
[[policy.rules]]
id = "ask-trusted"
tool = "send"
action = "ask"
args.x.trusted = true

[[policy.rules]]
id = "allow-any"
tool = "send"
action = "allow"
"#,
    );
    let send = |x: HostValue| program(&p, "send", vec![("x", x)]);
    assert_verdict(&send(s("a")), Verdict::Ask, "ask-trusted");
    assert_verdict(
        &send(s("a").labelled(untrusted())),
        Verdict::Allow,
        "allow-any",
    );
}

// ---- Rules: labels ----

const PAY_TRUSTED: &str = r#"
[[policy.rules]]
id = "pay-only-trusted"
tool = "send_money"
action = "allow"
control = "trusted"
[policy.rules.args.recipient]
trusted = true
"#;

#[test]
fn untrusted_recipients_and_untrusted_control_are_denied() {
    let p = with_toml(PAY_TRUSTED);
    let trusted = args(vec![("recipient", s("DE89"))]);
    assert_verdict(
        &decide(&p, "send_money", &trusted, false),
        Verdict::Allow,
        "pay-only-trusted",
    );
    let injected = args(vec![("recipient", s("ATTACKER").labelled(untrusted()))]);
    let d = decide(&p, "send_money", &injected, false);
    assert_verdict(&d, Verdict::Deny, "pay-only-trusted");
    assert!(
        d.reason.contains("`recipient`") && d.reason.contains("untrusted"),
        "{}",
        d.reason
    );
    // Untrusted deep inside the value counts too.
    let nested = args(vec![(
        "recipient",
        HostValue::new(HostData::List(vec![
            s("DE89"),
            s("X").labelled(untrusted()),
        ])),
    )]);
    assert_verdict(
        &decide(&p, "send_money", &nested, false),
        Verdict::Deny,
        "pay-only-trusted",
    );
    // A trusted value chosen under untrusted control (CaMeL's control dependency).
    let d = p.decide(&Call {
        tool: "send_money",
        args: &trusted,
        control: &untrusted(),
        native: false,
        audience: None,
    });
    assert_verdict(&d, Verdict::Deny, "pay-only-trusted");
    assert!(d.reason.contains("control"), "{}", d.reason);
}

#[test]
fn label_violations_ask_only_where_the_rule_says_and_yes_only_where_it_says() {
    let ask = PAY_TRUSTED.replace("control = \"trusted\"", "on_label_violation = \"ask\"");
    let p = with_toml(&ask);
    let injected = args(vec![("recipient", s("ATTACKER").labelled(untrusted()))]);
    let d = decide(&p, "send_money", &injected, false);
    assert_verdict(&d, Verdict::Ask, "pay-only-trusted");
    assert!(d.label_violation && !d.auto_approvable, "{d:?}");
    let p = with_toml(&ask.replace(
        "action = \"allow\"",
        "action = \"allow\"\nauto_approve = true",
    ));
    let d = decide(&p, "send_money", &injected, false);
    assert!(d.label_violation && d.auto_approvable, "{d:?}");
    // A value failure still denies under on_label_violation = "ask".
    let p = with_toml(&format!("{ask}equals = \"DE89\"\n"));
    let d = decide(
        &p,
        "send_money",
        &args(vec![("recipient", s("EVIL").labelled(untrusted()))]),
        false,
    );
    assert_verdict(&d, Verdict::Deny, "pay-only-trusted");
}

#[test]
fn a_policy_cannot_invert_a_trust_check() {
    // `trusted = false` would mean "must be untrusted": refused when read.
    let e = Config::parse(
        &PAY_TRUSTED.replace("trusted = true", "trusted = false"),
        Path::new("/p/aivm.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("trusted = false") && e.contains("line"), "{e}");
    // A deny rule fires when its conditions hold: a label condition there would deny the
    // trusted calls and pass the untrusted ones. Refused, with where.
    let e = Config::parse(
        &PAY_TRUSTED.replace(
            "action = \"allow\"\ncontrol = \"trusted\"",
            "action = \"deny\"",
        ),
        Path::new("/p/aivm.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("deny rule cannot have label conditions") && e.contains("line"),
        "{e}"
    );
    let e = Config::parse(
        &PAY_TRUSTED.replace("action = \"allow\"", "action = \"deny\""),
        Path::new("/p/aivm.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("label conditions"), "{e}");
    // And the program grant of send_money does not let an untrusted recipient through a
    // policy that requires trust on one of two rules only if the other rule passes it.
    let p = with_toml(&format!(
        "{PAY_TRUSTED}\n[[policy.rules]]\nid = \"pay-small\"\ntool = \"send_money\"\naction = \"allow\"\nargs.amount.range = [0, 10]\n"
    ));
    let injected = |amount: i64| {
        args(vec![
            ("recipient", s("X").labelled(untrusted())),
            ("amount", HostValue::int(amount)),
        ])
    };
    let d = decide(&p, "send_money", &injected(5), false);
    assert_verdict(&d, Verdict::Allow, "pay-small");
    assert_verdict(
        &decide(&p, "send_money", &injected(50), false),
        Verdict::Deny,
        "pay-only-trusted",
    );
}

#[test]
fn readers_include_and_audience_conditions() {
    let p = with_toml(
        r#"
[[policy.rules]]
id = "mail"
tool = "send_email"
action = "allow"
audience_arg = "to"
[policy.rules.args.body]
readers_include = "to"
[policy.rules.args.to]

[[policy.rules]]
id = "post"
tool = "post_public"
action = "allow"
audience = "public:web"
args.text.audience = "public:web"
"#,
    );
    let mail = |to: HostValue, body: HostValue| {
        program(&p, "send_email", vec![("to", to), ("body", body)])
    };
    let secret = || s("q3 numbers").labelled(readers(&["alice", "bob"]));
    assert_verdict(&mail(s("alice"), secret()), Verdict::Allow, "mail");
    let d = mail(s("eve"), secret());
    assert_verdict(&d, Verdict::Deny, "mail");
    assert!(d.reason.contains("alice, bob"), "{}", d.reason);
    let both = HostValue::new(HostData::List(vec![s("alice"), s("eve")]));
    assert_verdict(&mail(both, secret()), Verdict::Deny, "mail");
    assert_verdict(&mail(s("eve"), s("public text")), Verdict::Allow, "mail");
    assert_verdict(&mail(HostValue::int(3), secret()), Verdict::Deny, "mail");
    let post = |text: HostValue| program(&p, "post_public", vec![("text", text)]);
    assert_verdict(&post(s("hello")), Verdict::Allow, "post");
    assert_verdict(&post(secret()), Verdict::Deny, "post");
    assert_verdict(
        &post(s("x").labelled(readers(&["public:web"]))),
        Verdict::Allow,
        "post",
    );
}

// ---- The default confidentiality rule ----

#[test]
fn confidential_arguments_reach_only_their_readers() {
    let p = with_flags(&GrantFlags {
        allow_net: Some(vec![]),
        ..Default::default()
    });
    let for_user = || s("secret").labelled(readers(&["user"]));
    let print = |v: HostValue| native(&p, "io.print", vec![("text", v)]);
    assert_verdict(&print(for_user()), Verdict::Allow, "grant:default");
    let d = print(s("x").labelled(readers(&["alice"])));
    assert_verdict(&d, Verdict::Deny, "readers");
    assert!(
        d.reason.contains("readable only by alice") && d.reason.contains("user"),
        "{}",
        d.reason
    );
    // Deep inside a record.
    let nested = HostValue::new(HostData::Record(vec![(
        "k".into(),
        s("x").labelled(readers(&["alice"])),
    )]));
    assert_verdict(&print(nested), Verdict::Deny, "readers");
    // The host names the audience of an HTTP request: a secret for the user may not go.
    let a = args(vec![(
        "url",
        s("https://evil.example/?d=").labelled(readers(&["user"])),
    )]);
    let http = |audience| {
        p.decide(&Call {
            tool: "http.get",
            args: &a,
            control: &LabelInfo::public(),
            native: true,
            audience,
        })
    };
    assert_verdict(&http(Some("net:evil.example")), Verdict::Deny, "readers");
    // Without a host's audience the call goes to `tool:http.get`, which is no reader either.
    assert_verdict(&http(None), Verdict::Deny, "readers");
    let ok = args(vec![(
        "url",
        s("u").labelled(readers(&["user", "net:api.x.com"])),
    )]);
    let d = p.decide(&Call {
        tool: "http.get",
        args: &ok,
        control: &LabelInfo::public(),
        native: true,
        audience: Some("net:api.x.com"),
    });
    assert_verdict(&d, Verdict::Allow, "grant:net");
}

#[test]
fn the_hosts_audience_beats_a_rules_audience() {
    let p = build(
        r#"
[[policy.rules]]
id = "post-to-user"
tool = "http.post"
action = "allow"
audience = "user"
"#,
        &GrantFlags {
            allow_net: Some(vec![]),
            ..Default::default()
        },
    );
    let a = args(vec![("body", s("secret").labelled(readers(&["user"])))]);
    let call = |audience| {
        p.decide(&Call {
            tool: "http.post",
            args: &a,
            control: &LabelInfo::public(),
            native: true,
            audience,
        })
    };
    assert_verdict(&call(None), Verdict::Allow, "post-to-user");
    assert_verdict(&call(Some("net:evil.example")), Verdict::Deny, "readers");
}

#[test]
fn an_implicit_flow_through_control_is_checked_for_readers() {
    let p = Policy::default();
    let a = args(vec![("text", s("1"))]);
    let d = p.decide(&Call {
        tool: "send",
        args: &a,
        control: &readers(&["alice"]),
        native: false,
        audience: None,
    });
    assert_verdict(&d, Verdict::Deny, "readers");
    assert!(d.reason.contains("control label"), "{}", d.reason);
}

#[test]
fn readers_violations_ask_under_the_rules_on_label_violation() {
    let p = with_toml(
        r#"
[[policy.rules]]
id = "share"
tool = "share"
action = "allow"
on_label_violation = "ask"
"#,
    );
    let d = program(
        &p,
        "share",
        vec![("doc", s("x").labelled(readers(&["alice"])))],
    );
    assert_verdict(&d, Verdict::Ask, "readers");
    assert!(d.label_violation && !d.auto_approvable);
}

// ---- --ask ----

#[test]
fn ask_flags_make_granted_calls_ask_and_never_grant() {
    let p = with_flags(&GrantFlags {
        allow_read: list(&["."]),
        ask: vec!["fs.*".into(), "delete_*".into()],
        ..Default::default()
    });
    let d = native(&p, "fs.read", vec![("path", s("/work/x"))]);
    assert_verdict(&d, Verdict::Ask, "ask:tool");
    assert!(d.auto_approvable && !d.label_violation);
    assert!(d.reason.contains("--ask=fs.*"), "{}", d.reason);
    assert_verdict(&native(&p, "fs.write", vec![]), Verdict::Deny, "grant:tool");
    assert_verdict(
        &program(&p, "delete_file", vec![]),
        Verdict::Ask,
        "ask:tool",
    );
    assert_verdict(
        &program(&p, "list_files", vec![]),
        Verdict::Allow,
        "grant:program",
    );
    assert!(!p.yes() && !p.no_prompt());
    let p = with_flags(&GrantFlags {
        yes: true,
        no_prompt: true,
        ..Default::default()
    });
    assert!(p.yes() && p.no_prompt());
}

// ---- Rules grant tools; deny rules ----

#[test]
fn rules_grant_mcp_tools_and_deny_rules_fire_first() {
    let p = with_toml(
        r#"
[[policy.rules]]
id = "crm-read"
tool = "crm.get_*"
action = "allow"

[[policy.rules]]
id = "no-vip"
tool = "crm.get_customer"
action = "deny"
args.id.one_of = ["vip-1", "vip-2"]
"#,
    );
    let get = |id: HostValue| program(&p, "crm.get_customer", vec![("id", id)]);
    assert_verdict(&get(s("c-7")), Verdict::Allow, "crm-read");
    assert_verdict(&get(s("vip-1")), Verdict::Deny, "no-vip");
    // A value of another type than the rule's constants cannot be judged: denied.
    assert_verdict(&get(HostValue::int(1)), Verdict::Deny, "no-vip");
    assert_verdict(
        &program(&p, "crm.delete", vec![]),
        Verdict::Deny,
        "unknown-tool",
    );
}

// ---- Linking ----

#[test]
fn link_reports_every_missing_grant_with_its_flag() {
    let p = build(
        r#"
[policy]
deny-declassify = true

[[policy.rules]]
id = "never-wire"
tool = "wire_money"
action = "deny"
"#,
        &GrantFlags {
            allow_read: list(&["./data"]),
            allow_net: list(&["api.x.com:443"]),
            allow_run: list(&["git"]),
            deny_env: list(&["TOKEN"]),
            allow_env: Some(vec![]),
            ..Default::default()
        },
    );
    let m = ManifestView {
        tools: [
            "fs.read",
            "fs.write",
            "http.get",
            "io.print",
            "summarize",
            "wire_money",
            "crm.lookup",
        ]
        .map(String::from)
        .to_vec(),
        models: vec!["large".into()],
        read: vec!["./data/in".into(), "/etc".into()],
        write: vec![],
        net: vec![
            "api.x.com:443".into(),
            "api.x.com".into(),
            "other.com:80".into(),
        ],
        run: vec!["git".into(), "curl".into()],
        env: vec!["HOME".into(), "TOKEN".into()],
        declassify: true,
        endorse: true,
    };
    let got: Vec<(String, String)> = p.link(&m).into_iter().map(|x| (x.rule, x.fix)).collect();
    let want = [
        ("grant:tool", "add --allow-write=PATH"),
        (
            "never-wire",
            "remove or narrow rule `never-wire` in aivm.toml",
        ),
        ("unknown-tool", "add --allow-tool=crm.lookup"),
        ("grant:read", "add --allow-read=/etc"),
        ("grant:net", "add --allow-net=api.x.com"),
        ("grant:net", "add --allow-net=other.com:80"),
        ("grant:run", "add --allow-run=curl"),
        ("deny:env", "remove --deny-env=TOKEN"),
        ("grant:model", "add --allow-model=large"),
        (
            "deny:declassify",
            "remove `deny-declassify = true` in [policy]",
        ),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
    assert!(with_flags(&GrantFlags {
        allow_all: true,
        ..Default::default()
    })
    .link(&ManifestView {
        declassify: false,
        ..m
    })
    .is_empty());
}

#[test]
fn link_refuses_a_tool_denied_outright_but_not_one_denied_conditionally() {
    let p = with_toml(
        r#"
[[policy.rules]]
id = "big"
tool = "send_money"
action = "deny"
args.amount.range = [1000, inf]
"#,
    );
    let m = ManifestView {
        tools: vec!["send_money".into()],
        ..Default::default()
    };
    assert!(p.link(&m).is_empty());
    let p = with_flags(&GrantFlags {
        deny_tool: list(&["send_*"]),
        ..Default::default()
    });
    let missing = p.link(&m);
    assert_eq!(missing.len(), 1);
    assert_eq!(
        missing[0].to_string(),
        "the tool send_money: remove --deny-tool=send_* (rule deny:tool)"
    );
}

#[test]
fn link_asks_for_local_addresses_by_name() {
    let all = with_flags(&GrantFlags {
        allow_net: Some(vec![]),
        ..Default::default()
    });
    let m = ManifestView {
        net: [
            "127.0.0.1:8080",
            "localhost",
            "[::1]:9000",
            "10.1.2.3",
            "api.x.com",
            "8.8.8.8:53",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let needs: Vec<String> = all.link(&m).into_iter().map(|x| x.need).collect();
    assert_eq!(
        needs,
        [
            "network access to 127.0.0.1:8080",
            "network access to localhost",
            "network access to [::1]:9000",
            "network access to 10.1.2.3"
        ]
    );
    let named = with_flags(&GrantFlags {
        allow_net: list(&[
            "127.0.0.1:8080",
            "localhost",
            "[::1]",
            "10.1.2.3",
            "api.x.com",
            "8.8.8.8",
        ]),
        ..Default::default()
    });
    assert_eq!(named.link(&m), []);
}

#[test]
fn check_flow_is_the_readers_rule_for_other_sinks() {
    let p = Policy::default();
    let public = LabelInfo::public();
    assert!(p.check_flow(&public, &public, "model:large").is_ok());
    assert!(p
        .check_flow(&readers(&["user", "model:large"]), &public, "model:large")
        .is_ok());
    let d = p
        .check_flow(&readers(&["user"]), &public, "model:large")
        .unwrap_err();
    assert_eq!(d.rule, "readers");
    assert!(d.reason.contains("readable only by user"), "{}", d.reason);
    assert!(p
        .check_flow(&public, &readers(&["alice"]), "model:large")
        .is_err());
    // Integrity is not confidentiality: untrusted data may reach any principal.
    assert!(p.check_flow(&untrusted(), &untrusted(), "user").is_ok());
}

// ---- Output labels ----

#[test]
fn output_labels_default_and_most_specific_entry_wins() {
    let p = with_toml(
        r#"
[[labels]]
read = "./kb"
integrity = "trusted"

[[labels]]
read = "./kb/scraped"
integrity = "untrusted"

[[labels]]
read = "./secrets"
readers = ["user"]

[[labels]]
env = "TOKEN"
readers = ["user", "net:api.x.com"]

[[labels]]
net = "API.X.com"
integrity = "trusted"

[[labels]]
tool = "crm.*"
integrity = "trusted"

[[labels]]
tool = "crm.notes"
integrity = "untrusted"
"#,
    );
    let l = |tool: &str, r: Option<&str>| p.output_label(tool, r);
    assert_eq!(l("fs.read", Some("/elsewhere/x")), LabelInfo::untrusted());
    assert_eq!(l("http.get", Some("example.com")), LabelInfo::untrusted());
    assert_eq!(l("proc.run", Some("git")), LabelInfo::untrusted());
    assert_eq!(l("env.get", Some("HOME")), LabelInfo::public());
    assert_eq!(l("io.ask", None), LabelInfo::public());
    assert_eq!(l("clock.now", None), LabelInfo::public());
    assert_eq!(l("mcp_thing.x", None), LabelInfo::untrusted());
    // Paths are relative to the config file's folder (/p).
    assert_eq!(l("fs.read", Some("/p/kb/a.md")), LabelInfo::public());
    assert_eq!(
        l("fs.read", Some("/p/kb/scraped/a.html")),
        LabelInfo::untrusted()
    );
    assert_eq!(l("fs.read", Some("/p/kbx/a.md")), LabelInfo::untrusted());
    assert_eq!(l("fs.read", Some("/work/kb/a.md")), LabelInfo::untrusted());
    let secret = l("fs.read", Some("/p/secrets/key"));
    assert_eq!(secret.readers, readers(&["user"]).readers);
    assert_eq!(secret.integrity, Integrity::Untrusted);
    let token = l("env.get", Some("TOKEN"));
    assert_eq!(token, readers(&["net:api.x.com", "user"]));
    assert_eq!(l("http.get", Some("api.x.com")), LabelInfo::public());
    assert_eq!(l("crm.lookup", None), LabelInfo::public());
    assert_eq!(l("crm.notes", None), LabelInfo::untrusted());
}

// ---- Named permission sets ----

#[test]
fn permission_sets_merge_with_policy_and_flags() {
    let cfg = config(
        r#"
[policy]
allow-read = ["./data"]

[permissions.ci]
allow-net = ["ci.example.com"]
deny-read = ["./data/private"]

[permissions.dev]
allow-all = true
"#,
    );
    let ci = PolicyBuilder::new(CWD)
        .config(&cfg.policy, Path::new("/p"), Some("ci"))
        .unwrap()
        .build();
    assert_eq!(ci.check_net("ci.example.com", 443), Ok(NetGrant::Named));
    let fs = ci.fs_grants();
    assert_eq!(fs.read.roots, [PathBuf::from("/p/data")]);
    assert_eq!(fs.read.deny, [PathBuf::from("/p/data/private")]);
    let plain = PolicyBuilder::new(CWD)
        .config(&cfg.policy, Path::new("/p"), None)
        .unwrap()
        .build();
    assert!(plain.check_net("ci.example.com", 443).is_err());
    let e = PolicyBuilder::new(CWD)
        .config(&cfg.policy, Path::new("/p"), Some("prod"))
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::Permissions {
            name: "prod".into(),
            message: "aivm.toml has no [permissions.prod] (it has: ci, dev)".into()
        }
    );
}

// ---- Bad input ----

#[test]
fn bad_flags_name_the_flag() {
    for (flags, want) in [
        (
            GrantFlags {
                allow_read: list(&[""]),
                ..Default::default()
            },
            "--allow-read: a path must not be empty",
        ),
        (
            GrantFlags {
                allow_net: list(&["ok.com@evil.com"]),
                ..Default::default()
            },
            "--allow-net:",
        ),
        (
            GrantFlags {
                allow_net: list(&["a.com:99999"]),
                ..Default::default()
            },
            "is not a port",
        ),
        (
            GrantFlags {
                deny_tool: list(&["send money"]),
                ..Default::default()
            },
            "--deny-tool:",
        ),
        (
            GrantFlags {
                ask: vec!["fs.?".into()],
                ..Default::default()
            },
            "--ask:",
        ),
        (
            GrantFlags {
                allow_env: list(&["A=B"]),
                ..Default::default()
            },
            "--allow-env:",
        ),
    ] {
        let e = PolicyBuilder::new(CWD)
            .flags(&flags)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e} / {want}");
    }
}

#[test]
fn malformed_policy_files_say_where() {
    let cases = [
        ("[policy]\nallow-reed = [\"x\"]\n", "allow-reed", 2),
        ("[policy]\nallow-net = [\"ok.com@evil.com\"]\n", "not a host", 2),
        ("[policy]\nallow-net = \"api.x.com\"\n", "true, false or a list of strings", 2),
        ("[policy]\nallow-tool = [\"s\u{0435}nd\"]\n", "not allowed", 2),
        ("[policy]\n\n[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\ncolour = 1\n", "colour", 7),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"permit\"\n", "permit", 4),
        ("[[policy.rules]]\ntool = \"t\"\naction = \"allow\"\n", "id", 1),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\n[policy.rules.args.to]\npattern = \"(\"\n", "not a valid regular expression", 6),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\nargs.n.range = [10, 1]\n", "low bound", 5),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\nargs.n.range = [0, nan]\n", "NaN", 5),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\nargs.n.equals = 1979-05-27\n", "dates", 5),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\nargs.n.schema = { type = \"int\" }\n", "unknown schema type", 5),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\nargs.n.sheme = {}\n", "sheme", 5),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\n[[policy.rules]]\nid = \"r\"\ntool = \"u\"\naction = \"deny\"\n", "used twice", 1),
        ("[[policy.rules]]\nid = \"readers\"\ntool = \"t\"\naction = \"allow\"\n", "reserved", 1),
        ("[[policy.rules]]\nid = \"a:b\"\ntool = \"t\"\naction = \"allow\"\n", "rule id", 1),
        ("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"deny\"\nauto_approve = true\n", "no meaning on a deny rule", 1),
        ("[[labels]]\ntool = \"fs.read\"\nread = \"./x\"\nintegrity = \"trusted\"\n", "not several", 1),
        ("[[labels]]\ntool = \"fs.read\"\n", "must set", 1),
        ("[[labels]]\ntool = \"fs.read\"\nintegrity = \"high\"\n", "high", 3),
        ("[permissions.ci]\ndeny-read = [\"~/.ssh\"]\n", "not expanded", 2),
    ];
    for (text, want, line) in cases {
        let e = Config::parse(text, Path::new("/p/aivm.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/p/aivm.toml"), "{e}");
        assert!(e.contains(want), "{text}\n---\n{e}");
        assert!(
            e.contains(&format!("line {line}, column")),
            "{text}\n---\n{e}"
        );
    }
}

#[test]
fn deeply_nested_policy_values_fail_cleanly() {
    let text = |depth: usize| {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        format!("[[policy.rules]]\nid = \"r\"\ntool = \"t\"\naction = \"allow\"\nargs.x.equals = {nested}\n")
    };
    let p = with_toml(&text(10));
    let mut v = HostValue::int(1);
    for _ in 0..10 {
        v = HostValue::new(HostData::List(vec![v]));
    }
    assert_verdict(&program(&p, "t", vec![("x", v)]), Verdict::Allow, "r");
    // The TOML reader refuses deep nesting before the policy sees it: an error, no crash.
    let e = Config::parse(&text(10_000), Path::new("/p/aivm.toml")).unwrap_err();
    assert!(e.to_string().contains("line 5"), "{e}");
}
