//! The agent examples end to end, through the built `aivm` binary: each runs offline on the
//! scripted transcript beside it with the expected output, exit status and journal; one is
//! recorded and replayed byte for byte; two run against a fake OpenAI-compatible server over
//! real HTTP and print what they print on their transcripts; `aivm check` accepts every example;
//! the README's quick start runs triage and shows its output.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use aivm_fakes::{openai, FakeOpenAi, Reply};
use common::{aivm_command, assert_exit, path_str, root, stderr, stdout};
use serde_json::Value;

/// Runs `aivm` in `dir` with `stdin` (empty when None), with no model configuration coming
/// from the environment: every model the examples name falls back to their transcripts.
fn aivm_in(dir: &Path, args: &[&str], stdin: Option<&Path>) -> Output {
    let input = match stdin {
        Some(path) => Stdio::from(std::fs::File::open(path).expect("stdin file")),
        None => Stdio::null(),
    };
    aivm_command(dir)
        .args(args)
        .stdin(input)
        .output()
        .expect("the aivm binary runs")
}

fn aivm(args: &[&str]) -> Output {
    aivm_in(&root(), args, None)
}

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("examples", name)
}

fn journal(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("journal written");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each journal line is JSON"))
        .collect()
}

/// The `llm.call` events of a journal, in the order the calls completed.
fn llm_calls(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["effect"] == "llm.call")
        .collect()
}

/// The messages of the request an `llm.call` event records.
fn messages(call: &Value) -> &Vec<Value> {
    call["args"][1]["messages"]
        .as_array()
        .expect("a request with messages")
}

/// The content of a call's last message.
fn last_message(call: &Value) -> &str {
    messages(call)
        .last()
        .and_then(|m| m["content"].as_str())
        .expect("a last message with content")
}

/// Runs an example on its transcript with a journal, checking the exit code; returns the
/// output and the journal's events.
fn run_example(name: &str, args: &[&str], stdin: Option<&str>, code: i32) -> (Output, Vec<Value>) {
    let dir = temp_dir(name);
    let trace = dir.join("journal.jsonl");
    let mut all = vec!["run", "--trace", path_str(&trace)];
    all.extend_from_slice(args);
    let stdin = stdin.map(|p| root().join(p));
    let o = aivm_in(&root(), &all, stdin.as_deref());
    assert_exit(&o, code);
    let events = journal(&trace);
    assert_eq!(events[0]["event"], "run_start");
    assert_eq!(events.last().expect("events")["event"], "run_end");
    (o, events)
}

const TRIAGE_OUT: &str = "\
[high] Shop down with 502 errors (ops@bakery.example) tags: outage, 502, shop
[medium] Double charge for March (no e-mail) tags: billing, refund
[low] Feature request: dark mode (jun@studio.example) tags: feature-request, ui
1 of 3 tickets need someone now
";

#[test]
fn every_example_passes_check() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "ail") {
            let o = aivm(&["check", path_str(&path)]);
            assert_exit(&o, 0);
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} examples found");
}

#[test]
fn triage_retries_an_invalid_answer_with_the_reason() {
    let (o, events) = run_example("triage", &["examples/triage.ail"], None, 0);
    assert_eq!(stdout(&o), TRIAGE_OUT);
    assert!(
        stderr(&o).starts_with("aivm: 4 model calls, "),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        events[0]["models"]["small"],
        "scripted:examples/triage.script.json"
    );
    let calls = llm_calls(&events);
    assert_eq!(calls.len(), 4, "three tickets and one retry");
    for call in &calls {
        assert_eq!(call["args"][0], "small");
        assert_eq!(call["args"][1]["schema_name"], "Ticket");
        assert_eq!(
            call["args"][1]["schema"]["properties"]["severity"]["enum"],
            serde_json::json!(["low", "medium", "high"])
        );
        assert_eq!(call["outcome"], "ok");
    }
    // The second ticket's first answer says "Medium"; the retry carries the validation error
    // and the rejected answer, and the model corrects itself.
    let rejected = &calls[1]["llm"]["response"]["content"];
    assert!(
        rejected
            .as_str()
            .unwrap()
            .contains(r#""severity":"Medium""#),
        "{rejected}"
    );
    let retry = messages(calls[2]);
    assert_eq!(retry.len(), 4, "system, ticket, rejected answer, feedback");
    assert_eq!(retry[2]["role"], "assistant");
    assert_eq!(retry[2]["content"], *rejected);
    assert_eq!(
        last_message(calls[2]),
        "Your answer is not valid: at /severity: expected one of \"low\", \"medium\", \"high\", \
         found \"Medium\". Answer again, with only JSON that matches the schema."
    );
    let end = events.last().unwrap();
    assert_eq!(end["outcome"], "ok");
    assert_eq!(end["spent"]["llm_calls"], 4);
}

#[test]
fn triage_each_runs_one_program_per_ticket() {
    let o = aivm(&[
        "run",
        "-q",
        "--each",
        "examples/data/inbox.jsonl",
        "--concurrency",
        "3",
        "examples/triage.ail",
    ]);
    assert_exit(&o, 0);
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per input"))
        .collect();
    let outputs: Vec<&str> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            assert_eq!(l["index"], i, "results in input order");
            assert_eq!(l["ok"], true, "{l}");
            l["output"].as_str().expect("output")
        })
        .collect();
    assert_eq!(
        outputs,
        [
            "[high] Shop down with 502 errors (ops@bakery.example) tags: outage, 502, shop\n\
             1 of 1 tickets need someone now\n",
            "[medium] Double charge for March (no e-mail) tags: billing, refund\n\
             0 of 1 tickets need someone now\n",
            "[low] Feature request: dark mode (jun@studio.example) tags: feature-request, ui\n\
             0 of 1 tickets need someone now\n",
        ]
    );
}

#[test]
fn extract_checks_the_arithmetic_the_model_copied() {
    let (o, events) = run_example(
        "extract",
        &[
            "--allow-read=examples/data",
            "examples/extract.ail",
            "--",
            "examples/data/invoices/kaffee-nord.txt",
            "examples/data/invoices/acme-supplies.txt",
        ],
        None,
        1,
    );
    assert_eq!(
        stdout(&o),
        "\
RN-2025-0419 from Kaffeerösterei Nord GmbH, dated 2025-03-14
  6 x Espresso blend \"Hafen\", 1 kg bag at 18.50 = 111.00
  2 x Decaf Colombia, 1 kg bag at 21.00 = 42.00
  10 x Paper filters, pack of 100 at 3.20 = 32.00
  items 185.00 + tax 0.00 = 185.00 EUR: approved
A-7731 from ACME Cleaning Supplies, dated 2025-03-28
  1 x Floor scrubber pads (box of 5) at 45.00 = 45.00
  4 x Degreaser concentrate, 5 L at 32.50 = 130.00
  3 x Microfiber cloths (pack of 24) at 19.99 = 59.97
  items 234.97 + tax 18.80 = 253.77 USD, but the invoice asks for 263.77: sent back for review
1 approved, 1 for review
"
    );
    // Each invoice is read (a granted fs.read) and then sent to the model as it is.
    let effects: Vec<&str> = events
        .iter()
        .filter_map(|e| e["effect"].as_str())
        .filter(|e| *e != "io.print")
        .collect();
    assert_eq!(effects, ["fs.read", "llm.call", "fs.read", "llm.call"]);
    let calls = llm_calls(&events);
    let invoice = std::fs::read_to_string(root().join("examples/data/invoices/acme-supplies.txt"))
        .expect("invoice");
    assert_eq!(last_message(calls[1]), invoice);
    assert_eq!(calls[1]["args"][1]["schema_name"], "Invoice");
    assert_eq!(calls[1]["args"][1]["options"]["temperature"], 0);
}

#[test]
fn orders_runs_two_tools_from_one_turn() {
    let (o, events) = run_example("orders", &["examples/orders.ail"], None, 0);
    assert_eq!(
        stdout(&o),
        "Your Niche Zero grinder (order 1042) is on its way with UPS, tracking number \
         1Z999AA10123456784. And yes, you can still send back the Lelit Bianca from order 1017: \
         you have 18 days left in the 30-day return window. To start the return, just reply to \
         this message and we'll take it from there.\n"
    );
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["effect"].as_str()).collect();
    assert_eq!(
        kinds,
        ["llm.call", "tool.call", "tool.call", "llm.call", "io.print"]
    );
    let calls = llm_calls(&events);
    let tools: Vec<&Value> = calls[0]["args"][1]["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .map(|t| &t["name"])
        .collect();
    assert_eq!(tools, ["lookup_order", "return_policy"]);
    assert!(calls[0]["args"][1]["tools"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Looks an order up by its number."));
    assert_eq!(
        calls[0]["llm"]["response"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "two tools asked for in one turn"
    );
    // The gate saw the checked arguments; the second turn has one answer per call.
    let gates: Vec<&Value> = events
        .iter()
        .filter(|e| e["effect"] == "tool.call")
        .map(|e| &e["args"])
        .collect();
    assert_eq!(
        gates,
        [
            &serde_json::json!(["lookup_order", {"id": 1042}]),
            &serde_json::json!(["return_policy", {"id": 1017}]),
        ]
    );
    let answers: Vec<&Value> = messages(calls[1])
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["tool_call_id"], "call_1_0");
    assert!(answers[0]["content"]
        .as_str()
        .unwrap()
        .contains(r#""status":"shipped","carrier":"UPS""#));
    assert_eq!(
        answers[1]["content"],
        r#"{"returnable":true,"reason":"18 days left in the 30-day return window"}"#
    );
    assert_eq!(events.last().unwrap()["spent"]["tool_calls"], 2);
}

const SUMMARIZE_OUT: &str = "\
- Payments: Card refunds moved to the new ledger and now settle in 2 days instead of 5 (risks: provider's v1 API retires on 30 April with 20% of calls not migrated; PCI DSS 4.0 audit on 22 April, evidence 70% done)
- Search: New ranking model live for 50% of users, first-result click-through up from 31% to 36% (risks: none)
- Mobile: Release 5.2 in App Store review and at 20% of the Android rollout (risks: single Android build machine that failed twice; one iOS engineer short, offline mode slips to July)

Good week overall. Payments cut refund settlement from 5 days to 2, Search's new ranking model lifted first-result click-through from 31% to 36% on half of users, and release 5.2 is on its way on both mobile platforms.

Act first on the payment provider's v1 API shutdown on 30 April: 20% of payment calls, mostly subscription renewals, still use it and nobody has started the migration. If it is not done in time, renewals fail and revenue stops. Ask Payments for an owner and a plan this week; the Android build machine and iOS hiring matter, but they delay releases rather than break them.
";

#[test]
fn summarize_calls_three_workers_at_once_then_the_editor() {
    let (o, events) = run_example(
        "summarize",
        &["--allow-read=examples/data", "examples/summarize.ail"],
        None,
        0,
    );
    assert_eq!(stdout(&o), SUMMARIZE_OUT);
    let calls = llm_calls(&events);
    assert_eq!(calls.len(), 4);
    // The workers run in tasks 1-3, one per report, all in flight together: the transcript
    // delays the answers by 600, 200 and 400 ms, so they complete out of order, and the run
    // takes about as long as the slowest.
    let workers: Vec<(u64, &str)> = calls[..3]
        .iter()
        .map(|c| {
            assert_eq!(c["args"][0], "small");
            (c["task"].as_u64().unwrap(), last_message(c))
        })
        .collect();
    let order: Vec<u64> = workers.iter().map(|w| w.0).collect();
    assert_eq!(order, [2, 3, 1], "completed in the order of their delays");
    assert!(workers[0].1.starts_with("Search — week 14"));
    assert!(workers[2].1.starts_with("Payments team, weekly report"));
    let editor = calls[3];
    assert_eq!(editor["task"], 0);
    assert_eq!(editor["args"][0], "large");
    assert!(last_message(editor).starts_with("This week's summaries:\n- Payments: "));
    let secs = events.last().unwrap();
    assert_eq!(secs["spent"]["llm_calls"], 4);
}

#[test]
fn chat_folds_its_memory_and_still_knows_the_budget() {
    let (o, events) = run_example(
        "chat",
        &["examples/chat.ail"],
        Some("examples/data/chat.txt"),
        0,
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    assert_eq!(
        lines[0],
        "> Happy to help! With 12 people and 4,000 EUR you have about 330 EUR per person. Is it \
         a day trip or overnight, and where is the team based?"
    );
    assert_eq!(lines[4], "(folded 4 older messages into a summary)");
    assert_eq!(lines[7], "(folded 5 older messages into a summary)");
    assert_eq!(
        lines[8],
        "> The rough budget came to about 3,760 EUR of your 4,000 EUR, so roughly 240 EUR is \
         left: enough for a round of drinks in the old town, or as a buffer in case train fares \
         go up."
    );
    let replies = lines.iter().filter(|l| l.starts_with("> ")).count();
    assert_eq!(replies, 7, "one reply per line of input");

    let calls = llm_calls(&events);
    assert_eq!(calls.len(), 9, "seven replies and two summaries");
    let summaries: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            messages(c)[0]["content"]
                .as_str()
                .unwrap()
                .starts_with("Summarise this conversation")
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(summaries, [4, 7]);
    // The second summary folds the first one in.
    assert!(last_message(calls[7]).starts_with("system: Summary of the conversation so far: "));
    // The conversation stays short: the last request holds the system prompt, the summary and
    // the five latest messages, and the budget is known only through the summary.
    let last = messages(calls[8]);
    assert_eq!(last.len(), 7);
    assert!(last[1]["content"]
        .as_str()
        .unwrap()
        .contains("about 3,760 EUR (train 720"));
    assert!(!last[2..]
        .iter()
        .any(|m| m["content"].as_str().unwrap().contains("3,760")));
    // The history read from stdin: one read_line per line and a last one that gives null.
    let reads = events
        .iter()
        .filter(|e| e["effect"] == "io.read_line")
        .count();
    assert_eq!(reads, 8);
}

#[test]
fn a_recorded_run_replays_byte_for_byte_without_transcript_or_files() {
    let dir = temp_dir("replay");
    let live = dir.join("live.jsonl");
    let o = aivm(&[
        "run",
        "-q",
        "--allow-read=examples/data",
        "--trace",
        path_str(&live),
        "examples/summarize.ail",
    ]);
    assert_exit(&o, 0);
    // A copy of the program alone: no transcript beside it, no reports. The same grants are
    // given (the policy judges the replayed effects again and must decide as it did), but
    // the folder they name does not exist there: reads are answered from the journal.
    std::fs::copy(
        root().join("examples/summarize.ail"),
        dir.join("summarize.ail"),
    )
    .expect("copy the program");
    let again = dir.join("again.jsonl");
    let o2 = aivm_in(
        &dir,
        &[
            "run",
            "-q",
            "--allow-read=examples/data",
            "--replay",
            path_str(&live),
            "--trace",
            path_str(&again),
            "summarize.ail",
        ],
        None,
    );
    assert_exit(&o2, 0);
    assert_eq!(stdout(&o2), SUMMARIZE_OUT);
    assert_eq!(o2.stdout, o.stdout, "the same output");
    let (live, again) = (
        std::fs::read(&live).expect("journal"),
        std::fs::read(&again).expect("journal"),
    );
    assert!(
        live == again,
        "the same journal, byte for byte:\n{}\n---\n{}",
        String::from_utf8_lossy(&live),
        String::from_utf8_lossy(&again)
    );
}

/// The fake server's answers to an example, in order: the transcript's turns as OpenAI chat
/// completions (the examples' transcripts list their turns in the order they are used).
fn replies_from_transcript(path: &Path) -> Vec<Reply> {
    let text = std::fs::read_to_string(path).expect("transcript");
    let doc: Value = serde_json::from_str(&text).expect("transcript JSON");
    let turns = doc["turns"].as_array().expect("turns");
    turns
        .iter()
        .enumerate()
        .map(|(t, turn)| {
            let body = if let Some(json) = turn.get("json") {
                openai::completion(&json.to_string(), "stop")
            } else if let Some(calls) = turn.get("tool_calls") {
                let calls: Vec<(String, String, String)> = calls
                    .as_array()
                    .expect("tool calls")
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        (
                            format!("call_{}_{k}", t + 1),
                            c["name"].as_str().expect("name").to_string(),
                            c["arguments"].to_string(),
                        )
                    })
                    .collect();
                let refs: Vec<(&str, &str, &str)> = calls
                    .iter()
                    .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
                    .collect();
                openai::tool_calls(&refs)
            } else {
                openai::completion(turn["content"].as_str().expect("content"), "stop")
            };
            Reply::json(200, &body)
        })
        .collect()
}

/// Runs an example with its model bound, by an aivm.toml in a temporary working folder, to a
/// fake OpenAI-compatible server answering what the transcript answers. Returns the output and
/// the requests the server received.
fn run_on_fake_openai(name: &str) -> (Output, Vec<Value>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let fake = rt
        .block_on(FakeOpenAi::start())
        .expect("fake server starts");
    for reply in replies_from_transcript(&root().join(format!("examples/{name}.script.json"))) {
        fake.push(reply);
    }
    let dir = temp_dir(&format!("fake-{name}"));
    std::fs::write(
        dir.join("aivm.toml"),
        format!(
            "[policy]\nallow-model = [\"small\"]\n[models]\nsmall = {{ provider = \"openai\", model = \"gpt-4o-mini\", base_url = \"{}\" }}\n",
            fake.base_url()
        ),
    )
    .expect("write aivm.toml");
    let program = root().join(format!("examples/{name}.ail"));
    let o = aivm_in(&dir, &["run", "-q", path_str(&program)], None);
    assert_exit(&o, 0);
    assert_eq!(fake.remaining(), 0, "every scripted answer was asked for");
    let requests = fake
        .requests()
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST");
            assert_eq!(r.path, "/v1/chat/completions");
            assert_eq!(r.header("authorization"), None, "no key for a local server");
            r.json()
        })
        .collect();
    (o, requests)
}

#[test]
fn triage_on_a_fake_openai_server_prints_what_it_prints_on_its_transcript() {
    let (o, requests) = run_on_fake_openai("triage");
    assert_eq!(stdout(&o), TRIAGE_OUT);
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r["model"], "gpt-4o-mini");
        assert_eq!(r["temperature"], 0.0);
        let format = &r["response_format"];
        assert_eq!(format["type"], "json_schema");
        assert_eq!(format["json_schema"]["name"], "Ticket");
        assert_eq!(format["json_schema"]["strict"], true);
        assert_eq!(
            format["json_schema"]["schema"]["required"],
            serde_json::json!(["title", "severity", "tags", "customer"])
        );
    }
    let retry = requests[2]["messages"].as_array().expect("messages");
    assert_eq!(retry.len(), 4);
    assert!(retry[3]["content"]
        .as_str()
        .unwrap()
        .starts_with("Your answer is not valid: at /severity"));
}

#[test]
fn orders_on_a_fake_openai_server_prints_what_it_prints_on_its_transcript() {
    let (o, requests) = run_on_fake_openai("orders");
    let (scripted, _) = run_example("orders-scripted", &["examples/orders.ail"], None, 0);
    assert_eq!(stdout(&o), stdout(&scripted));
    assert_eq!(requests.len(), 2);
    let tools = requests[0]["tools"].as_array().expect("tools");
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["function"]["name"], "lookup_order");
    assert_eq!(
        tools[0]["function"]["parameters"]["properties"]["id"]["type"],
        "integer"
    );
    let second = requests[1]["messages"].as_array().expect("messages");
    let roles: Vec<&str> = second.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
    assert_eq!(
        second[2]["tool_calls"][1]["function"]["name"],
        "return_policy"
    );
    assert_eq!(second[4]["tool_call_id"], "call_1_1");
}

#[test]
fn the_readme_quick_start_runs_triage_and_shows_its_output() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .expect("a quick start section");
    let first = quick
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.lines().next())
        .expect("a first command");
    assert!(
        first.starts_with("cargo run -q -- run examples/triage.ail "),
        "{first}"
    );
    assert!(
        quick.contains(TRIAGE_OUT),
        "the README shows what examples/triage.ail prints"
    );
}

/// The injected e-mail makes the scripted model try to pay the attacker and forward the
/// inbox; the policy beside the program refuses both before anything happens, the reply to
/// a contact goes out, and the journal shows each decision with its rule, before its effect.
#[test]
fn assistant_obeys_an_injection_and_the_policy_refuses_what_it_asks() {
    let (o, events) = run_example("assistant", &["examples/assistant/assistant.ail"], None, 0);
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "actions:\n  [mail to ana@example.com] Re: Lunch on Thursday?\nassistant: "
        ),
        "{out}"
    );
    // What happened in the world: the contact's reply and nothing else.
    assert!(!out.contains("[payment]"), "{out}");
    assert!(!out.contains("examp1e.com]"), "{out}");
    let err = stderr(&o);
    assert!(
        err.contains("aivm: blocked pay (rule pay-only-trusted-payees)"),
        "{err}"
    );
    assert!(
        err.contains("aivm: blocked send_email (rule mail-only-to-contacts)"),
        "{err}"
    );

    let decision = |tool: &str, verdict: &str| -> &Value {
        events
            .iter()
            .find(|e| e["event"] == "decision" && e["tool"] == tool && e["verdict"] == verdict)
            .unwrap_or_else(|| panic!("no {verdict} decision on {tool}"))
    };
    let pay = decision("pay", "deny");
    assert_eq!(pay["rule"], "pay-only-trusted-payees");
    // The payee came from a model that had read the inbox: untrusted, however it is spelled.
    assert_eq!(pay["labels"]["iban"], "untrusted");
    assert_eq!(pay["control"], "untrusted");
    let forward = decision("send_email", "deny");
    assert_eq!(forward["rule"], "mail-only-to-contacts");
    assert_eq!(
        decision("send_email", "allow")["rule"],
        "mail-only-to-contacts"
    );
    // Each decision comes right before the effect it judges, which for the refused calls is
    // the gate the program asked for, failing with PolicyDenied.
    for (i, e) in events.iter().enumerate() {
        if e["event"] == "decision" {
            let next = &events[i + 1];
            assert_eq!(
                (&next["task"], &next["seq"]),
                (&e["task"], &e["seq"]),
                "{e}"
            );
            let refused = e["verdict"] == "deny";
            assert_eq!(next["outcome"] == "PolicyDenied", refused, "{next}");
        }
    }
    // The model was told why, and its last request shows it.
    let calls = llm_calls(&events);
    let last = calls.last().expect("model calls");
    let told = messages(last)
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("error: PolicyDenied: "))
        })
        .count();
    assert_eq!(told, 2, "{last}");
}
