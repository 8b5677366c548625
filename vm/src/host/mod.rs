//! The host: an async driver on tokio that runs a VM until no task is ready, performs the
//! inline effects (print, input, files, clock, the tool gate) at once and in order, puts model
//! calls in flight together, and when every task waits, takes ONE completion, resumes its task
//! and runs to idle again. A run is thus a function of the order in which calls complete; the
//! journal records that order and a replay releases results in it (spec/journal.md).

pub mod approve;
pub mod budget;
pub mod config;
mod effects;
pub mod journal;
pub mod llm;
pub mod llm_value;
pub mod many;
pub mod net;
pub mod providers;
pub mod tools;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::VmError;
use crate::format::Module;
use crate::host_value::{HostError, HostValue};
use crate::interp::{EffectRequest, Step, Vm};
use crate::label::LabelInfo;
use budget::{Budget, BudgetLimits, Spent};
use config::{ModelBinding, Price};
use journal::{Divergence, EffectEvent, Event, LlmRecord, Replayer, RunEnd, RunStart};
pub use journal::{EffectEvent as TraceEvent, TraceSink};
use llm::{ModelResponse, ProviderError};

/// What the host lets a program do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Directories (or files) under which `fs.read` is allowed.
    pub allow_read: Vec<PathBuf>,
    /// Directories (or files) whose contents are labelled untrusted when read.
    pub untrusted: Vec<PathBuf>,
    /// The most bytes one `fs.read` or `io.read_line` takes in; more is an `IoError`, so
    /// that a device or an endless line cannot hang the host or exhaust its memory.
    pub max_input_bytes: u64,
}

impl Default for Policy {
    /// Nothing granted; inputs up to 64 MiB.
    fn default() -> Self {
        Policy {
            allow_read: Vec::new(),
            untrusted: Vec::new(),
            max_input_bytes: 64 << 20,
        }
    }
}

/// The error kind of a model call that failed after its retries.
pub const MODEL_ERROR: &str = "ModelError";

/// Why a run stopped without a final value.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error("cannot write the program's output: {0}")]
    Output(std::io::Error),
    #[error("cannot write the trace: {0}")]
    Trace(std::io::Error),
    #[error(transparent)]
    ReplayDiverged(#[from] Divergence),
    /// A model slot of the program has no provider.
    #[error("{0}")]
    Link(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// The effect events of a journal kept in memory (its `run_start` and `run_end` left out).
#[derive(Clone, Copy, Debug)]
pub struct EffectEvents<'a>(&'a [Event]);

impl<'a> EffectEvents<'a> {
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &'a EffectEvent> + 'a {
        self.0.iter().filter_map(|e| match e {
            Event::Effect(ev) => Some(ev),
            _ => None,
        })
    }

    pub fn last(&self) -> Option<&'a EffectEvent> {
        self.iter().next_back()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The logical model names `module` declares, in order: what [`config::bind_models`] binds.
pub fn declared_models(module: &Module) -> Vec<String> {
    module
        .models
        .iter()
        .map(|m| module.str(m.logical).to_string())
        .collect()
}

/// A model call in flight: resolves to its completion.
type InFlight = LocalBoxFuture<'static, Completion>;

/// A finished model call, waiting to be given to its task.
struct Completion {
    req: EffectRequest,
    seq: u64,
    model: String,
    provider: String,
    label: LabelInfo,
    price: Option<Price>,
    result: Result<ModelResponse, ProviderError>,
    attempts: u32,
    latency: Duration,
}

/// The host. Output and input are any writer and reader, so tests capture them.
pub struct Host {
    pub policy: Policy,
    stdout: Box<dyn Write>,
    stdin: Box<dyn BufRead>,
    trace: TraceSink,
    models: IndexMap<String, ModelBinding>,
    limits: BudgetLimits,
    budget: Budget,
    replay: Option<Replayer>,
    /// Each task's next effect number.
    seqs: HashMap<u32, u64>,
    started: Instant,
}

impl Host {
    /// A host that records nothing; see [`Host::with_trace`].
    pub fn new(policy: Policy, stdout: Box<dyn Write>, stdin: Box<dyn BufRead>) -> Host {
        Host {
            policy,
            stdout,
            stdin,
            trace: TraceSink::Off,
            models: IndexMap::new(),
            limits: BudgetLimits::default(),
            budget: Budget::new(BudgetLimits::default()),
            replay: None,
            seqs: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// The same host, recording every effect into `sink`.
    pub fn with_trace(mut self, sink: TraceSink) -> Host {
        self.trace = sink;
        self
    }

    /// The same host, with calls of each logical model name going to its binding (see
    /// [`config::bind_models`]).
    pub fn with_models(mut self, models: IndexMap<String, ModelBinding>) -> Host {
        self.models.extend(models);
        self
    }

    /// The same host, under these budgets (the clock starts when the run does).
    pub fn with_budget(mut self, limits: BudgetLimits) -> Host {
        self.limits = limits;
        self
    }

    /// The same host, answering input effects and model calls from a recorded journal instead
    /// of performing them; output effects are performed again.
    pub fn with_replay(mut self, events: Vec<Event>) -> Host {
        self.replay = Some(Replayer::new(events));
        self
    }

    /// The journal's events so far, when recording in memory.
    pub fn events(&self) -> &[Event] {
        match &self.trace {
            TraceSink::Memory(events) => events,
            _ => &[],
        }
    }

    /// The effect events recorded so far, when recording in memory.
    pub fn trace_events(&self) -> EffectEvents<'_> {
        EffectEvents(self.events())
    }

    /// What the run has spent so far.
    pub fn spent(&self) -> Spent {
        self.budget.spent()
    }

    /// Wall time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs `vm` to the end on a current-thread tokio runtime built for the purpose. Not for
    /// use inside a runtime: there, await [`Host::run`].
    pub fn run_to_end(&mut self, vm: &mut Vm) -> Result<HostValue, RunError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RunError::Runtime)?;
        rt.block_on(self.run(vm))
    }

    /// Runs `vm` until the task the host started finishes, performing every effect; returns
    /// its final value. Writes `run_start` and `run_end` around the effects in the journal.
    pub async fn run(&mut self, vm: &mut Vm) -> Result<HostValue, RunError> {
        self.link(vm.module())?;
        self.started = Instant::now();
        self.budget = Budget::new(self.limits.clone());
        let models = match self.replay.as_ref().and_then(Replayer::run_start) {
            Some(s) => s.models.clone(),
            None => self
                .models
                .iter()
                .map(|(k, b)| (k.clone(), b.provider.name().to_string()))
                .collect(),
        };
        self.journal(Event::RunStart(RunStart {
            version: journal::JOURNAL_VERSION,
            models,
        }))?;
        let result = self.drive(vm).await;
        if let Err(e @ RunError::Trace(_)) = &result {
            // The journal itself is broken: there is nowhere to write its end.
            return Err(RunError::Trace(std::io::Error::other(e.to_string())));
        }
        let end = match &result {
            Ok(v) => RunEnd {
                outcome: "ok".into(),
                value: Some(v.to_json()),
                error: None,
                spent: self.budget.spent(),
            },
            Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => RunEnd {
                outcome: "error".into(),
                value: None,
                error: Some(format!("{kind}: {message}")),
                spent: self.budget.spent(),
            },
            Err(e) => RunEnd {
                outcome: "failed".into(),
                value: None,
                error: Some(e.to_string()),
                spent: self.budget.spent(),
            },
        };
        self.journal(Event::RunEnd(end))?;
        result
    }

    /// Checks, before the first instruction, that every model the program declares reaches a
    /// provider (in a replay: was recorded in the journal).
    fn link(&self, module: &Module) -> Result<(), RunError> {
        for slot in &module.models {
            let (name, logical) = (module.str(slot.name), module.str(slot.logical));
            let bound = match self.replay.as_ref().and_then(Replayer::run_start) {
                Some(start) => start.models.contains_key(logical),
                None => self.models.contains_key(logical),
            };
            if bound {
                continue;
            }
            return Err(RunError::Link(if self.replay.is_some() {
                format!(
                    "model `{name}` (\"{logical}\") is not in the journal being replayed: \
                     the program has changed since it was recorded"
                )
            } else {
                format!(
                    "model `{name}` (\"{logical}\") has no provider: add `{logical} = \
                     \"openai:MODEL\"` under [models] in aivm.toml, pass --model \
                     {logical}=KIND:ID, or ship a scripted transcript beside the program"
                )
            }));
        }
        Ok(())
    }

    async fn drive(&mut self, vm: &mut Vm) -> Result<HostValue, RunError> {
        let mut in_flight: FuturesUnordered<InFlight> = FuturesUnordered::new();
        // The model calls in flight, by task and sequence (so that a timeout fails them in a
        // deterministic order).
        let mut asked: BTreeMap<(u32, u64), EffectRequest> = BTreeMap::new();
        // Calls cut off by the time budget, given their error one at a time like completions.
        let mut expired: VecDeque<(EffectRequest, u64)> = VecDeque::new();
        loop {
            match vm.run()? {
                Step::Done { value, .. } => {
                    if let Some(r) = &self.replay {
                        r.finish()?;
                    }
                    self.stdout.flush().map_err(RunError::Output)?;
                    return Ok(value);
                }
                Step::Effect(req) => {
                    let seq = self.next_seq(&req);
                    if self.replay.is_some() {
                        self.replay_ask(vm, req, seq)?;
                    } else if req.native == "llm.call" {
                        match self.start_llm(&req, seq) {
                            Ok(fut) => {
                                in_flight.push(fut);
                                asked.insert((req.task.0, seq), req);
                            }
                            Err(e) => self.deliver(vm, &req, seq, Err(e), None)?,
                        }
                    } else {
                        let outcome = self.perform_inline(&req)?;
                        self.deliver(vm, &req, seq, outcome, None)?;
                    }
                }
                Step::Idle => {
                    if self.replay.is_some() {
                        self.replay_release(vm)?;
                        continue;
                    }
                    if let Some((req, seq)) = expired.pop_front() {
                        let e = self.budget.time_exceeded().to_host_error();
                        self.deliver(vm, &req, seq, Err(e), None)?;
                        continue;
                    }
                    if in_flight.is_empty() {
                        // Tasks wait for each other and nothing can wake them.
                        return Err(vm.deadlock().unwrap_or(VmError::Idle).into());
                    }
                    let next = match self.budget.deadline() {
                        None => in_flight.next().await,
                        Some(d) => {
                            match tokio::time::timeout_at(d.into(), in_flight.next()).await {
                                Ok(c) => c,
                                Err(_) => {
                                    // Out of time: drop every call in flight (cancelling it);
                                    // their tasks get BudgetExceeded in (task, seq) order.
                                    in_flight = FuturesUnordered::new();
                                    expired.extend(
                                        std::mem::take(&mut asked)
                                            .into_iter()
                                            .map(|((_, seq), req)| (req, seq)),
                                    );
                                    continue;
                                }
                            }
                        }
                    };
                    if let Some(c) = next {
                        asked.remove(&(c.req.task.0, c.seq));
                        self.complete(vm, c)?;
                    }
                }
            }
        }
    }

    /// Performs one inline effect (and records it), outside a run: for embedders and tests.
    pub fn perform(
        &mut self,
        req: &EffectRequest,
    ) -> Result<Result<HostValue, HostError>, RunError> {
        let seq = self.next_seq(req);
        let outcome = self.perform_inline(req)?;
        self.journal(Event::Effect(
            EffectEvent::asked(req, seq).with_outcome(&outcome),
        ))?;
        Ok(outcome)
    }

    fn next_seq(&mut self, req: &EffectRequest) -> u64 {
        let n = self.seqs.entry(req.task.0).or_insert(0);
        let seq = *n;
        *n += 1;
        seq
    }

    /// An effect performed at once: the tool gate here, the rest in `effects`.
    fn perform_inline(
        &mut self,
        req: &EffectRequest,
    ) -> Result<Result<HostValue, HostError>, RunError> {
        if req.native == "tool.call" {
            return Ok(match self.budget.admit_tool() {
                Ok(()) => Ok(HostValue::null()),
                Err(e) => Err(e.to_host_error()),
            });
        }
        if let Err(e) = self.budget.check_time() {
            // Output still goes out after the time is up; nothing else starts.
            if !effects::is_output(&req.native) {
                return Ok(Err(e.to_host_error()));
            }
        }
        effects::perform(&self.policy, &mut *self.stdout, &mut *self.stdin, req)
            .map_err(RunError::Output)
    }

    /// Starts a model call: converts the request, checks the budget, and returns the future
    /// of its completion. A bad request or a spent budget fails at once, with no call made.
    fn start_llm(&mut self, req: &EffectRequest, seq: u64) -> Result<InFlight, HostError> {
        let model = req.args.first().and_then(HostValue::as_str).unwrap_or("");
        let Some(binding) = self.models.get(model).cloned() else {
            return Err(HostError::new(
                MODEL_ERROR,
                format!("no provider is configured for model {model:?}"),
            ));
        };
        let request = req.args.get(1).cloned().unwrap_or_else(HostValue::null);
        let mut label = request.deep_label();
        if let Some(m) = req.args.first() {
            label = label.join(&m.label);
        }
        let mut mreq = llm_value::request_from_value(&binding.model, &request)?;
        if mreq.max_tokens.is_none() {
            mreq.max_tokens = binding.max_tokens;
        }
        self.budget
            .admit_llm(&mut mreq, binding.price.as_ref(), model)
            .map_err(|e| e.to_host_error())?;
        let model = model.to_string();
        let req = req.clone();
        Ok(Box::pin(async move {
            let t0 = Instant::now();
            let provider = binding.provider.name().to_string();
            let (result, attempts) =
                providers::retry::call_with_retries(&*binding.provider, &mreq, &binding.retry)
                    .await;
            Completion {
                req,
                seq,
                model,
                provider,
                label,
                price: binding.price,
                result,
                attempts,
                latency: t0.elapsed(),
            }
        }))
    }

    /// Gives a finished model call to its task.
    fn complete(&mut self, vm: &mut Vm, c: Completion) -> Result<(), RunError> {
        let (outcome, response, usage, cost) = match c.result {
            Ok(resp) => {
                let cost = c.price.map(|p| p.cost(&resp.usage));
                self.budget.charge_llm(&resp.usage, cost);
                let v = llm_value::response_to_value(&resp, &c.label);
                (Ok(v), Some(resp.clone()), resp.usage, cost)
            }
            Err(e) => {
                let he = HostError::new(
                    MODEL_ERROR,
                    format!("model {} ({}): {e}", c.model, c.provider),
                );
                (Err(he), None, llm::Usage::default(), None)
            }
        };
        let record = LlmRecord {
            model: c.model,
            provider: c.provider,
            response,
            usage,
            cost,
            attempts: c.attempts,
            latency_ms: c.latency.as_millis().min(u64::MAX as u128) as u64,
        };
        self.deliver(vm, &c.req, c.seq, outcome, Some(record))
    }

    /// Records an effect's outcome in the journal and resumes its task with it.
    fn deliver(
        &mut self,
        vm: &mut Vm,
        req: &EffectRequest,
        seq: u64,
        outcome: Result<HostValue, HostError>,
        llm: Option<LlmRecord>,
    ) -> Result<(), RunError> {
        if !self.trace.is_off() {
            let mut ev = EffectEvent::asked(req, seq).with_outcome(&outcome);
            ev.llm = llm.map(Box::new);
            self.journal(Event::Effect(ev))?;
        }
        vm.resume(req.task, outcome)?;
        Ok(())
    }

    /// Replay: the program asks for an effect.
    fn replay_ask(&mut self, vm: &mut Vm, req: EffectRequest, seq: u64) -> Result<(), RunError> {
        let Some(replay) = self.replay.as_mut() else {
            return Ok(());
        };
        match replay.ask(&req, seq)? {
            journal::Answer::Later => Ok(()),
            journal::Answer::Now(ev) => self.replay_deliver(vm, &req, *ev),
            journal::Answer::Perform => {
                // Output is performed again; its outcome (null, or a broken output that stops
                // the run) is what the recording had.
                let outcome = self.perform_inline(&req)?;
                let ev = EffectEvent::asked(&req, seq).with_outcome(&outcome);
                self.journal(Event::Effect(ev))?;
                vm.resume(req.task, outcome)?;
                Ok(())
            }
        }
    }

    /// Replay: every task waits; release the next recorded model call.
    fn replay_release(&mut self, vm: &mut Vm) -> Result<(), RunError> {
        let Some(replay) = self.replay.as_mut() else {
            return Ok(());
        };
        let ev = replay.release()?;
        let req = EffectRequest {
            task: crate::interp::TaskId(ev.task),
            native: ev.effect.clone(),
            args: Vec::new(),
            control: Default::default(),
        };
        self.replay_deliver(vm, &req, ev)
    }

    /// Replay: gives a task its recorded outcome, and writes the recorded event again.
    fn replay_deliver(
        &mut self,
        vm: &mut Vm,
        req: &EffectRequest,
        ev: EffectEvent,
    ) -> Result<(), RunError> {
        let outcome = match (ev.llm.as_deref(), &ev.error) {
            (
                Some(LlmRecord {
                    response: Some(resp),
                    usage,
                    cost,
                    ..
                }),
                None,
            ) => {
                self.budget.charge_llm(usage, *cost);
                let label = journal::parse_label(&ev.result_label).unwrap_or_default();
                Ok(llm_value::response_to_value(resp, &label))
            }
            _ => ev.outcome(),
        };
        let admitted = ev
            .error
            .as_ref()
            .is_none_or(|e| e.kind != budget::BUDGET_EXCEEDED);
        self.budget.record_replayed(
            ev.llm.as_ref().is_some_and(|l| l.attempts > 0),
            ev.effect == "tool.call" && admitted,
        );
        self.journal(Event::Effect(ev))?;
        vm.resume(req.task, outcome)?;
        Ok(())
    }

    fn journal(&mut self, event: Event) -> Result<(), RunError> {
        self.trace.write(event).map_err(RunError::Trace)
    }
}
