//! The cost of one policy decision (`Policy::decide`), in µs, for policies of 10 and 1,000
//! rules: rules spread over many tools (exact ids and patterns, allow, ask and deny, with
//! value and label conditions), and the worst case of 1,000 rules all for the called tool.
//! Run with `cargo bench -p aivm-vm --bench policy`.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use aivm_vm::host::config::Config;
use aivm_vm::policy::{Call, GrantFlags, Policy, PolicyBuilder};
use aivm_vm::{HostData, HostValue, Integrity, LabelInfo};

/// `n` rules over `n / 2` tools: most exact, one in ten a pattern, one in ten a deny.
fn spread_rules(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let tool = if i % 10 == 3 {
            format!("grp{}_*", i / 10)
        } else {
            format!("tool{}", i / 2)
        };
        let action = match i % 10 {
            7 => "deny",
            5 => "ask",
            _ => "allow",
        };
        s.push_str(&format!(
            "[[policy.rules]]\nid = \"r{i}\"\ntool = \"{tool}\"\naction = \"{action}\"\n"
        ));
        match action {
            "deny" => s.push_str("args.amount.range = [100000, inf]\n"),
            _ => s.push_str(
                "args.to.pattern = '[a-z]+@example\\.com'\nargs.to.trusted = true\nargs.amount.range = [0, 1000]\n",
            ),
        }
    }
    s
}

/// `n` rules all for `pay`; only the last one holds for the benchmark's call.
fn same_tool_rules(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let limit = if i + 1 == n { 1000 } else { 10 };
        s.push_str(&format!(
            "[[policy.rules]]\nid = \"r{i}\"\ntool = \"pay\"\naction = \"allow\"\nargs.to.one_of = [\"alice@example.com\", \"bob@example.com\"]\nargs.amount.range = [0, {limit}]\n"
        ));
    }
    s
}

fn policy(toml: &str) -> Policy {
    let cfg = match Config::parse(toml, Path::new("/bench/aivm.toml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let flags = GrantFlags {
        allow_read: Some(vec!["./data".into()]),
        deny_tool: Some(vec!["danger_*".into()]),
        ask: vec!["fs.write".into()],
        ..Default::default()
    };
    match PolicyBuilder::new("/bench")
        .config(&cfg.policy, Path::new("/bench"), None)
        .and_then(|b| b.flags(&flags))
    {
        Ok(b) => b.build(),
        Err(e) => panic!("{e}"),
    }
}

struct Case {
    name: &'static str,
    tool: String,
    args: Vec<(String, HostValue)>,
    native: bool,
}

fn payment(to: &str, amount: i64) -> Vec<(String, HostValue)> {
    vec![
        ("to".into(), HostValue::str(to)),
        ("amount".into(), HostValue::int(amount)),
        (
            "memo".into(),
            HostValue::new(HostData::Record(vec![
                ("ref".into(), HostValue::str("inv-42")),
                (
                    "lines".into(),
                    HostValue::new(HostData::List(vec![HostValue::int(1); 4])),
                ),
            ])),
        ),
    ]
}

fn cases(n: usize) -> Vec<Case> {
    let mid = n / 4;
    vec![
        Case {
            name: "rule allows",
            tool: format!("tool{mid}"),
            args: payment("alice@example.com", 50),
            native: false,
        },
        Case {
            name: "rule denies (prefix bypass)",
            tool: format!("tool{mid}"),
            args: payment("alice@example.com.evil.net", 50),
            native: false,
        },
        Case {
            name: "pattern rule",
            tool: format!("grp{}_x", n / 20),
            args: payment("bob@example.com", 5),
            native: false,
        },
        Case {
            name: "native, resource grant",
            tool: "fs.read".into(),
            args: vec![("path".into(), HostValue::str("/bench/data/a.txt"))],
            native: true,
        },
        Case {
            name: "deny flag",
            tool: "danger_zone".into(),
            args: vec![],
            native: false,
        },
        Case {
            name: "confidential arg",
            tool: "io.print".into(),
            args: vec![(
                "text".into(),
                HostValue::str("secret").labelled(LabelInfo {
                    integrity: Integrity::Trusted,
                    readers: Some(BTreeSet::from(["alice".to_string()])),
                }),
            )],
            native: true,
        },
    ]
}

/// Mean µs per decision of `case` over enough iterations to take about 0.2 s.
fn time(p: &Policy, case: &Case) -> f64 {
    let control = LabelInfo::public();
    let call = Call {
        tool: &case.tool,
        args: &case.args,
        control: &control,
        native: case.native,
        audience: None,
    };
    let mut iters = 1_000u64;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(p.decide(black_box(&call)));
        }
        let t = start.elapsed();
        if t.as_secs_f64() > 0.2 || iters > 100_000_000 {
            return t.as_secs_f64() * 1e6 / iters as f64;
        }
        iters *= 4;
    }
}

fn main() {
    for n in [10usize, 1_000] {
        let p = policy(&spread_rules(n));
        println!("{n} rules over many tools:");
        for case in cases(n) {
            let d = p.decide(&Call {
                tool: &case.tool,
                args: &case.args,
                control: &LabelInfo::public(),
                native: case.native,
                audience: None,
            });
            println!(
                "  {:<30} {:>8.3} µs  ({} by {})",
                case.name,
                time(&p, &case),
                d.verdict.as_str(),
                d.rule
            );
        }
    }
    for n in [10usize, 1_000] {
        let p = policy(&same_tool_rules(n));
        let case = Case {
            name: "all rules judged, last holds",
            tool: "pay".into(),
            args: payment("alice@example.com", 500),
            native: false,
        };
        println!(
            "{n} rules all for the called tool:\n  {:<30} {:>8.3} µs",
            case.name,
            time(&p, &case)
        );
    }
}
