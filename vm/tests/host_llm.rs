//! Model calls through the host driver: several calls in flight from one program, results
//! given one at a time in completion order, the journal and its byte-for-byte replay, budgets,
//! provider errors as catchable `ModelError`, bad request shapes, linking, real HTTP against
//! the fake OpenAI server, and hundreds of programs at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use aivm_fakes::{openai, FakeServer, Reply};
use aivm_vm::format::{assemble, VerifiedModule};
use aivm_vm::host::budget::BudgetLimits;
use aivm_vm::host::config::{self, ModelBinding, ModelConfig, Price, ProviderKind};
use aivm_vm::host::journal::{self, Event};
use aivm_vm::host::llm::{
    BoxFuture, Finish, ModelRequest, ModelResponse, Provider, ProviderError, Usage,
};
use aivm_vm::host::many::run_many;
use aivm_vm::host::providers::retry::RetryRule;
use aivm_vm::host::{Host, RunError, TraceSink};
use aivm_vm::policy::{GrantFlags, Policy, PolicyBuilder};
use aivm_vm::{HostValue, Limits, Vm, VmError};
use indexmap::IndexMap;

#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).expect("utf-8")
    }
}

/// main spawns ask(0), ask(1), ask(2) and prints their answers in that order; ask(i) asks
/// model "large" `q<i>` and returns the answer's content.
const FAN_OUT: &str = include_str!("programs/fan_out.aia");

fn module(asm: &str) -> VerifiedModule {
    VerifiedModule::new(assemble(asm).expect("assembles")).expect("verifies")
}

/// Answers "A:<last user message>" after a delay chosen per question, so that calls made
/// together finish in an order the test decides.
struct Delayed {
    delays_ms: HashMap<String, u64>,
    fail_with: Option<ProviderError>,
}

impl Provider for Delayed {
    fn name(&self) -> &str {
        "test:delayed"
    }
    fn call<'a>(
        &'a self,
        req: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ProviderError>> {
        Box::pin(async move {
            let q = req
                .messages
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            let ms = self.delays_ms.get(&q).copied().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if let Some(e) = &self.fail_with {
                return Err(e.clone());
            }
            Ok(ModelResponse {
                content: format!("A:{q}"),
                tool_calls: vec![],
                finish: Finish::Stop,
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                },
                model: req.model.clone(),
            })
        })
    }
}

fn binding(provider: Arc<dyn Provider>, price: Option<Price>) -> IndexMap<String, ModelBinding> {
    let mut m = IndexMap::new();
    m.insert(
        "large".to_string(),
        ModelBinding {
            logical: "large".into(),
            provider,
            model: "test-model".into(),
            retry: RetryRule::none(),
            max_tokens: None,
            price,
        },
    );
    m
}

fn delayed(delays: &[(&str, u64)]) -> Arc<dyn Provider> {
    Arc::new(Delayed {
        delays_ms: delays.iter().map(|(q, d)| (q.to_string(), *d)).collect(),
        fail_with: None,
    })
}

struct Outcome {
    result: Result<HostValue, RunError>,
    output: String,
    journal: String,
}

/// How many journal lines come before the first effect event.
fn events_before_first_effect(journal: &str) -> usize {
    journal
        .lines()
        .take_while(|l| !l.contains("\"event\":\"effect\""))
        .count()
}

/// A policy that lets the program call every model (the HTTP ones need a grant).
fn models_granted() -> Policy {
    PolicyBuilder::new(".")
        .flags(&GrantFlags {
            allow_model: Some(Vec::new()),
            ..GrantFlags::default()
        })
        .expect("valid grants")
        .build()
}

fn run_with(asm: &str, setup: impl FnOnce(Host) -> Host) -> Outcome {
    let m = module(asm);
    let mut vm = Vm::new(&m, Limits::default()).expect("loads");
    vm.start_main(vec![]).expect("starts");
    let out = Shared::default();
    let journal = Shared::default();
    let host = Host::new(
        models_granted(),
        Box::new(out.clone()),
        Box::new(std::io::empty()),
    )
    .with_trace(TraceSink::JsonLines(Box::new(journal.clone())));
    let mut host = setup(host);
    let result = host.run_to_end(&mut vm);
    Outcome {
        result,
        output: out.text(),
        journal: journal.text(),
    }
}

fn llm_order(journal_text: &str) -> Vec<u32> {
    journal::parse(journal_text)
        .expect("parses")
        .iter()
        .filter_map(|e| match e {
            Event::Effect(ev) if ev.effect == "llm.call" => Some(ev.task),
            _ => None,
        })
        .collect()
}

#[test]
fn calls_run_together_and_are_journalled_in_completion_order() {
    let p = delayed(&[("q0", 120), ("q1", 10), ("q2", 60)]);
    let o = run_with(FAN_OUT, |h| h.with_models(binding(p, None)));
    assert_eq!(o.result.expect("runs").to_json(), 0);
    assert_eq!(o.output, "A:q0\nA:q1\nA:q2\n", "printed in await order");
    assert_eq!(
        llm_order(&o.journal),
        [2, 3, 1],
        "journalled as they completed"
    );
    let events = journal::parse(&o.journal).unwrap();
    let Some(Event::Effect(first)) = events.iter().find(|e| matches!(e, Event::Effect(_))) else {
        panic!("no effect event")
    };
    let llm = first.llm.as_ref().expect("an llm record");
    assert_eq!(
        (llm.model.as_str(), llm.provider.as_str()),
        ("large", "test:delayed")
    );
    assert_eq!(llm.attempts, 1);
    assert_eq!(llm.response.as_ref().unwrap().content, "A:q1");
    match events.last() {
        Some(Event::RunEnd(end)) => {
            assert_eq!(end.outcome, "ok");
            assert_eq!(end.spent.llm_calls, 3);
            assert_eq!(end.spent.input_tokens, 30);
        }
        other => panic!("expected run_end, got {other:?}"),
    }
}

#[test]
fn replay_reproduces_output_and_journal_byte_for_byte_offline() {
    let p = delayed(&[("q0", 80), ("q1", 40), ("q2", 0)]);
    let live = run_with(FAN_OUT, |h| h.with_models(binding(p, None)));
    assert!(live.result.is_ok());
    let events = journal::parse(&live.journal).unwrap();
    // No provider at all: every answer comes from the journal, in its order.
    let replay = run_with(FAN_OUT, |h| h.with_replay(events));
    assert_eq!(replay.result.expect("replays").to_json(), 0);
    assert_eq!(replay.output, live.output);
    assert_eq!(replay.journal, live.journal);
}

#[test]
fn a_replay_whose_requests_changed_diverges_with_both_sides() {
    let p = delayed(&[]);
    let live = run_with(FAN_OUT, |h| h.with_models(binding(p, None)));
    let changed = FAN_OUT.replace("content\\\": \\\"q", "content\\\": \\\"Q");
    let events = journal::parse(&live.journal).unwrap();
    let replay = run_with(&changed, |h| h.with_replay(events));
    match replay.result {
        Err(RunError::ReplayDiverged(d)) => {
            // The first effect event: after run_start and the decisions on the calls asked.
            let first = events_before_first_effect(&live.journal) + 1;
            assert_eq!(d.event, first, "{d}");
            assert!(d.recorded.contains("\"q0\""), "{d}");
            assert!(d.asked.contains("\"Q0\""), "{d}");
        }
        other => panic!(
            "expected a divergence, got {:?}",
            other.map(|v| v.to_json())
        ),
    }
}

#[test]
fn the_llm_call_budget_refuses_the_third_call_with_a_catchable_error() {
    let p = delayed(&[]);
    let o = run_with(FAN_OUT, |h| {
        h.with_models(binding(p, None)).with_budget(BudgetLimits {
            max_llm_calls: Some(2),
            ..BudgetLimits::default()
        })
    });
    match o.result {
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => {
            assert_eq!(kind, "BudgetExceeded");
            assert!(
                message.contains("llm_calls budget is spent: 2 used of 2"),
                "{message}"
            );
        }
        other => panic!(
            "expected BudgetExceeded, got {:?}",
            other.map(|v| v.to_json())
        ),
    }
    assert_eq!(o.output, "A:q0\nA:q1\n");
    let refused = journal::parse(&o.journal)
        .unwrap()
        .into_iter()
        .find_map(|e| match e {
            Event::Effect(ev) if ev.outcome == "BudgetExceeded" => Some(ev),
            _ => None,
        })
        .expect("the refusal is journalled");
    assert!(refused.llm.is_none(), "no call was made");
    let payload = refused.error.unwrap().payload.unwrap();
    assert_eq!(
        payload.to_json(),
        serde_json::json!({"budget": "llm_calls", "used": 2, "limit": 2})
    );
}

#[test]
fn a_cost_budget_fails_closed_for_a_model_without_a_price() {
    let o = run_with(FAN_OUT, |h| {
        h.with_models(binding(delayed(&[]), None))
            .with_budget(BudgetLimits {
                max_cost: Some(1.0),
                ..BudgetLimits::default()
            })
    });
    match o.result {
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => {
            assert_eq!(kind, "BudgetExceeded");
            assert!(message.contains("has no price"), "{message}");
        }
        other => panic!(
            "expected BudgetExceeded, got {:?}",
            other.map(|v| v.to_json())
        ),
    }
    // With a price the same budget lets the calls through and records their cost.
    let price = Price {
        input: 1.0,
        output: 2.0,
    };
    let o = run_with(FAN_OUT, |h| {
        h.with_models(binding(delayed(&[]), Some(price)))
            .with_budget(BudgetLimits {
                max_cost: Some(1.0),
                ..BudgetLimits::default()
            })
    });
    assert!(o.result.is_ok());
    match journal::parse(&o.journal).unwrap().last() {
        Some(Event::RunEnd(end)) => assert!((end.spent.cost - 3.0 * 20e-6).abs() < 1e-12),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_time_budget_cuts_slow_calls_instead_of_hanging() {
    let p = delayed(&[("q0", 60_000), ("q1", 60_000), ("q2", 60_000)]);
    let t0 = std::time::Instant::now();
    let o = run_with(FAN_OUT, |h| {
        h.with_models(binding(p, None)).with_budget(BudgetLimits {
            timeout: Some(Duration::from_millis(200)),
            ..BudgetLimits::default()
        })
    });
    match o.result {
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => {
            assert_eq!(kind, "BudgetExceeded");
            assert!(message.contains("time budget"), "{message}");
        }
        other => panic!(
            "expected BudgetExceeded, got {:?}",
            other.map(|v| v.to_json())
        ),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "it did not wait for the calls"
    );
}

#[test]
fn provider_failures_are_model_errors_naming_provider_and_status() {
    let p: Arc<dyn Provider> = Arc::new(Delayed {
        delays_ms: HashMap::new(),
        fail_with: Some(ProviderError::Http {
            provider: "test:delayed".into(),
            status: 401,
            message: "bad key".into(),
            retry_after: None,
        }),
    });
    let o = run_with(FAN_OUT, |h| h.with_models(binding(p, None)));
    match o.result {
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => {
            assert_eq!(kind, "ModelError");
            assert!(message.contains("test:delayed"), "{message}");
            assert!(message.contains("401"), "{message}");
        }
        other => panic!("expected ModelError, got {:?}", other.map(|v| v.to_json())),
    }
}

#[test]
fn a_request_of_the_wrong_shape_is_a_type_error_with_its_path() {
    let bad = FAN_OUT.replace("\\\"role\\\": \\\"user\\\"", "\\\"role\\\": 7");
    let o = run_with(&bad, |h| h.with_models(binding(delayed(&[]), None)));
    match o.result {
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => {
            assert_eq!(kind, "TypeError");
            assert!(
                message.contains("at messages[0].role: expected a string, found int"),
                "{message}"
            );
        }
        other => panic!("expected TypeError, got {:?}", other.map(|v| v.to_json())),
    }
}

#[test]
fn an_unbound_model_stops_the_run_before_its_first_instruction() {
    let o = run_with(FAN_OUT, |h| h);
    match o.result {
        Err(RunError::Link(m)) => {
            assert!(
                m.contains("model `smart` (\"large\") has no provider"),
                "{m}"
            );
            assert!(m.contains("aivm.toml") && m.contains("--model"), "{m}");
        }
        other => panic!(
            "expected a link error, got {:?}",
            other.map(|v| v.to_json())
        ),
    }
    assert_eq!(o.journal, "", "nothing ran");
}

fn http_binding(base_url: String) -> IndexMap<String, ModelBinding> {
    let mut cfg = ModelConfig::new(ProviderKind::OpenAi, "gpt-test");
    cfg.base_url = Some(base_url);
    let provider = config::build_provider("large", &cfg, None, &|_| None).expect("builds");
    binding(provider, None)
}

#[test]
fn calls_go_over_real_http_to_the_fake_openai_server() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = FakeServer::start(Reply::json(200, &openai::completion("hi", "stop")))
            .await
            .unwrap();
        let m = module(FAN_OUT);
        let mut vm = Vm::new(&m, Limits::default()).unwrap();
        vm.start_main(vec![]).unwrap();
        let out = Shared::default();
        let mut host = Host::new(
            models_granted(),
            Box::new(out.clone()),
            Box::new(std::io::empty()),
        )
        .with_models(http_binding(format!("{}/v1", server.url())));
        let v = host.run(&mut vm).await.expect("runs");
        assert_eq!(v.to_json(), 0);
        assert_eq!(out.text(), "hi\nhi\nhi\n");
        let mut asked: Vec<String> = server
            .requests()
            .iter()
            .map(|r| {
                let body = r.json();
                assert_eq!(body["model"], "test-model");
                body["messages"][0]["content"].as_str().unwrap().to_string()
            })
            .collect();
        asked.sort();
        assert_eq!(asked, ["q0", "q1", "q2"]);
    });
}

/// main(input) asks model "large" about its input and prints "<input> <answer>".
const ONE_ASK: &str = include_str!("programs/one_ask.aia");

#[test]
fn hundreds_of_programs_run_at_once_against_a_slow_server_and_all_are_right() {
    const N: usize = 300;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reply = Reply::json(200, &openai::completion("ok", "stop"))
            .with_delay(Duration::from_millis(200));
        let server = FakeServer::start(reply).await.unwrap();
        let base = format!("{}/v1", server.url());
        let models = http_binding(base);
        let m = module(ONE_ASK);
        let mut results = vec![None; N];
        let t0 = std::time::Instant::now();
        let template = Vm::new(&m, Limits::default()).unwrap();
        run_many(
            &template,
            (0..N).map(|i| HostValue::int(i as i64)),
            N,
            |_, out| {
                Host::new(models_granted(), out, Box::new(std::io::empty()))
                    .with_models(models.clone())
            },
            |done| {
                let value = done.result.as_ref().map(|v| v.to_json()).ok();
                results[done.index] = Some((value, done.output, done.spent.llm_calls));
            },
        )
        .await;
        for (i, r) in results.iter().enumerate() {
            let (value, output, calls) = r.clone().expect("every run reported");
            assert_eq!(value, Some(serde_json::json!(i)), "run {i}");
            assert_eq!(output, format!("{i} ok\n"), "run {i}");
            assert_eq!(calls, 1);
        }
        let mut asked: Vec<String> = server
            .requests()
            .iter()
            .map(|r| {
                r.json()["messages"][0]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        asked.sort();
        let mut want: Vec<String> = (0..N).map(|i| format!("about {i}")).collect();
        want.sort();
        assert_eq!(asked, want, "each program asked once, about its own input");
        // Not a timing assertion on speed, only a sanity bound far above the expected ~0.2 s:
        // 300 sequential calls would take a minute.
        assert!(t0.elapsed() < Duration::from_secs(50));
    });
}

#[test]
fn a_scripted_transcript_answers_by_content_whatever_order_the_calls_finish_in() {
    let transcript = r#"{"turns": [
      {"when": "q2", "content": "two", "delay_ms": 10},
      {"when": "q0", "content": "zero", "delay_ms": 60},
      {"when": "q1", "content": "one"}
    ]}"#;
    let p: Arc<dyn Provider> = Arc::new(
        aivm_vm::host::providers::scripted::ScriptedProvider::from_json(transcript, "test")
            .expect("a valid transcript"),
    );
    let live = run_with(FAN_OUT, |h| h.with_models(binding(p, None)));
    assert_eq!(live.output, "zero\none\ntwo\n");
    assert_eq!(llm_order(&live.journal), [2, 3, 1]);
    let events = journal::parse(&live.journal).unwrap();
    let replay = run_with(FAN_OUT, |h| h.with_replay(events));
    assert_eq!((replay.output, replay.journal), (live.output, live.journal));
}
