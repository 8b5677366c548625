//! The host: an async driver on tokio that runs a VM until no task is ready, performs the
//! inline effects (print, input, files, clock, the tool gate) at once and in order, puts model
//! calls in flight together, and when every task waits, takes ONE completion, resumes its task
//! and runs to idle again. A run is thus a function of the order in which calls complete; the
//! journal records that order and a replay releases results in it (spec/journal.md).

pub mod approve;
pub mod budget;
pub mod config;
mod effects;
pub mod embed;
mod gate;
pub mod journal;
pub mod llm;
pub mod llm_value;
pub mod many;
pub mod mcp;
pub mod net;
pub mod providers;
mod server_requests;
pub mod tools;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use indexmap::IndexMap;

use crate::error::VmError;
use crate::format::Module;
use crate::host_value::{HostError, HostValue};
use crate::interp::{EffectRequest, Step, Vm};
use crate::label::LabelInfo;
use crate::policy::{ManifestView, Missing, Policy};
use budget::{Budget, BudgetLimits, Spent};
use config::{ModelBinding, Price};
pub use gate::Blocked;
use journal::{Divergence, EffectEvent, Event, LabelEvent, LlmRecord, Replayer, RunEnd, RunStart};
pub use journal::{EffectEvent as TraceEvent, TraceSink};
use llm::{ModelResponse, ProviderError};

/// The most bytes one file read or input line takes in by default: 64 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 << 20;

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
    /// The program asks for more than the policy grants: nothing ran.
    #[error("the program needs permissions it was not given:\n{}", .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Unlinkable(Vec<crate::policy::Missing>),
    /// The policy's grants could not be opened (a granted command that does not exist...).
    #[error("{0}")]
    Grants(#[from] tools::ToolSetupError),
    /// The embedder stopped the run ([`embed::Embedder::cancelled`]).
    #[error("the run was cancelled")]
    Cancelled,
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

/// An effect in flight (a model call, an HTTP request, a command): resolves to its completion.
type InFlight = LocalBoxFuture<'static, Completion>;

/// A finished asynchronous effect, waiting to be given to its task.
struct Completion {
    req: EffectRequest,
    seq: u64,
    done: Done,
}

/// What an asynchronous effect came to.
enum Done {
    Llm(LlmDone),
    /// A native tool performed off the VM's thread of control (HTTP, a command).
    Tool(Result<HostValue, HostError>),
}

/// A finished model call.
struct LlmDone {
    model: String,
    provider: String,
    label: LabelInfo,
    price: Option<Price>,
    result: Result<ModelResponse, ProviderError>,
    attempts: u32,
    latency: Duration,
}

/// Gives each offered MCP tool the server's description where the program wrote none, and
/// the server's input schema (with its property descriptions and constraints) where the
/// program declares exactly its properties — else the program's own, which its agent loop
/// checks calls against. Tools the lock does not pin as listed, and servers that fail to
/// start, keep what the program declared: calling them is refused or fails anyway, with the
/// reason given to the model.
async fn offer_mcp_tools(hub: &mcp::McpHub, tools: &mut [llm::ToolSpec]) {
    for t in tools.iter_mut() {
        let Some((server, _)) = t.mcp.as_deref().and_then(mcp::split_id) else {
            continue;
        };
        let Ok(listed) = hub.tools(server).await else {
            continue;
        };
        let found = listed
            .into_iter()
            .find(|l| Some(&l.id) == t.mcp.as_ref() && l.status == mcp::LockStatus::Pinned);
        if let Some(l) = found {
            let names = |schema: &serde_json::Value| -> Option<std::collections::BTreeSet<String>> {
                Some(
                    schema
                        .get("properties")?
                        .as_object()?
                        .keys()
                        .cloned()
                        .collect(),
                )
            };
            if names(&t.parameters).is_some() && names(&t.parameters) == names(&l.input_schema) {
                t.parameters = l.input_schema;
            }
            if t.description.is_empty() {
                t.description = l.description;
            }
        }
    }
}

/// What wakes the driver when every task waits.
// One at a time, moved at once into its handler: the size of the largest does not matter.
#[allow(clippy::large_enum_variant)]
enum Wake {
    /// An effect in flight finished.
    Done(Option<Completion>),
    /// An MCP server asks for sampling or elicitation (while a call to it is in flight).
    Request(mcp::ServerRequest),
    /// A model call serving a sampling request finished.
    Sampled(Box<server_requests::Sampled>),
}

/// The next of: a sampling call finished, a server's request, an effect finished.
async fn wake(
    in_flight: &mut FuturesUnordered<InFlight>,
    sampling: &mut FuturesUnordered<server_requests::Sampling>,
    requests: &mut Option<tokio::sync::mpsc::UnboundedReceiver<mcp::ServerRequest>>,
) -> Wake {
    let request = async {
        match requests.as_mut() {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        Some(s) = sampling.next(), if !sampling.is_empty() => Wake::Sampled(Box::new(s)),
        Some(r) = request => Wake::Request(r),
        c = in_flight.next() => Wake::Done(c),
    }
}

/// The host. Output and input are any writer and reader, so tests capture them.
pub struct Host {
    gate: gate::Gate,
    blocked: Vec<Blocked>,
    /// The native tools, their grants opened when the run starts.
    tools: Option<effects::Tools>,
    /// The most bytes one file read or input line takes in.
    max_input_bytes: u64,
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
    /// The MCP servers of the configuration (started on first use), if any, and whether the
    /// run stops them when it ends (else whoever shares the hub does).
    mcp: Option<mcp::McpHub>,
    mcp_owned: bool,
    /// The MCP tool ids the manifest names: when it names any, the program is confined to
    /// them (a computed id passed to `std.mcp.call` is refused).
    mcp_ids: Option<Vec<String>>,
    embedder: Option<Box<dyn embed::Embedder>>,
    /// The MCP servers' sampling and elicitation requests (taken when the run starts), and
    /// how many sampling requests were judged.
    requests: Option<tokio::sync::mpsc::UnboundedReceiver<mcp::ServerRequest>>,
    sampled: u64,
}

impl Host {
    /// A host that records nothing; see [`Host::with_trace`].
    pub fn new(policy: Policy, stdout: Box<dyn Write>, stdin: Box<dyn BufRead>) -> Host {
        Host {
            gate: gate::Gate::new(policy),
            blocked: Vec::new(),
            tools: None,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            stdout,
            stdin,
            trace: TraceSink::Off,
            models: IndexMap::new(),
            limits: BudgetLimits::default(),
            budget: Budget::new(BudgetLimits::default()),
            replay: None,
            seqs: HashMap::new(),
            started: Instant::now(),
            mcp: None,
            mcp_owned: false,
            mcp_ids: None,
            embedder: None,
            requests: None,
            sampled: 0,
        }
    }

    /// The same host, with `mcp.call` effects going to the servers of `hub`. The run stops
    /// every server it started when it ends.
    pub fn with_mcp(mut self, hub: mcp::McpHub) -> Host {
        self.mcp = Some(hub);
        self.mcp_owned = true;
        self
    }

    /// The same host, using the servers of `hub` without stopping them when the run ends:
    /// for many runs sharing one set of servers, whose owner calls [`mcp::McpHub::shutdown`].
    pub fn with_shared_mcp(mut self, hub: mcp::McpHub) -> Host {
        self.mcp = Some(hub);
        self.mcp_owned = false;
        self
    }

    /// The same host, taking in at most `bytes` per file read or input line (more is an
    /// `IoError`), so that a device or an endless line cannot exhaust its memory.
    pub fn with_input_cap(mut self, bytes: u64) -> Host {
        self.max_input_bytes = bytes;
        self
    }

    /// The same host, putting the policy's `ask` verdicts to `approver` (by default nobody
    /// is asked and every ask is refused).
    pub fn with_approver(mut self, approver: Box<dyn approve::Approver>) -> Host {
        self.gate.set_approver(approver);
        self
    }

    /// The same host, letting `embedder` perform inline effects and stop the run.
    pub fn with_embedder(mut self, embedder: Box<dyn embed::Embedder>) -> Host {
        self.embedder = Some(embedder);
        self
    }

    /// The policy the host judges effects by.
    pub fn policy(&self) -> &Policy {
        &self.gate.policy
    }

    /// The attempts the policy blocked so far (at the gate, or where a resource was touched),
    /// in the order the program got their refusals.
    pub fn blocked(&self) -> &[Blocked] {
        &self.blocked
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
        if let (Some(hub), true, None) = (&self.mcp, self.mcp_owned, &self.replay) {
            self.requests = Some(hub.serve_requests(self.gate.can_ask()));
        }
        let result = self.drive(vm).await;
        if let (Some(hub), true) = (&self.mcp, self.mcp_owned) {
            hub.shutdown().await;
        }
        let stopped = self.journal_mcp();
        let result = result.and_then(|v| stopped.map(|()| v));
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

    /// Checks, before the first instruction, that the policy grants what the program's
    /// manifest declares, that every model it declares reaches a provider (in a replay: was
    /// recorded in the journal), and opens the native tools' grants.
    fn link(&mut self, module: &Module) -> Result<(), RunError> {
        let view = self.manifest_view(module);
        let mut missing = self.gate.policy.link(&view);
        let mcp_ids: Vec<String> = view
            .tools
            .iter()
            .filter(|t| mcp::split_id(t).is_some() && crate::format::native_by_name(t).is_none())
            .cloned()
            .collect();
        if self.replay.is_none() {
            missing.extend(self.link_mcp(&mcp_ids));
        }
        if !missing.is_empty() {
            return Err(RunError::Unlinkable(missing));
        }
        self.mcp_ids = (!mcp_ids.is_empty()).then_some(mcp_ids);
        self.tools = Some(effects::Tools::new(
            &self.gate.policy,
            &view,
            self.max_input_bytes,
        )?);
        self.link_models(module)
    }

    /// What the MCP tools the manifest names need beyond the policy: each server configured,
    /// and its tools reviewed into the lockfile (spec/mcp.md §Lockfile). The servers start on
    /// first use; a tool the lock does not pin as listed is refused then.
    fn link_mcp(&self, ids: &[String]) -> Vec<Missing> {
        let mut servers: Vec<&str> = ids
            .iter()
            .filter_map(|t| mcp::split_id(t))
            .map(|(s, _)| s)
            .collect();
        servers.sort_unstable();
        servers.dedup();
        let mut out = Vec::new();
        for s in servers {
            let need = format!("the MCP server {s}");
            match &self.mcp {
                Some(hub) if hub.server_config(s).is_some() => {
                    if !hub.lock().has_server(s) {
                        out.push(Missing {
                            need,
                            rule: mcp::LOCK_RULE.into(),
                            fix: format!(
                                "review its tools and pin them: run `aivm mcp lock {s}` (writes {})",
                                mcp::LOCK_FILE
                            ),
                        });
                    }
                }
                _ => out.push(Missing {
                    need,
                    rule: "mcp-config".into(),
                    fix: format!("configure it: add [mcp.servers.{s}] to aivm.toml"),
                }),
            }
        }
        out
    }

    /// The module's manifest as the policy reads it. Models bound to a network provider need a
    /// grant; scripted ones and a replay's do not (they reach nobody).
    fn manifest_view(&self, module: &Module) -> ManifestView {
        let m = &module.manifest;
        let strs = |ids: &[crate::format::StrId]| -> Vec<String> {
            ids.iter().map(|&i| module.str(i).to_string()).collect()
        };
        let models = if self.replay.is_some() {
            Vec::new()
        } else {
            // Models bound only to serve MCP sampling are granted per request.
            let declared = declared_models(module);
            self.models
                .iter()
                .filter(|(name, b)| b.provider.needs_grant() && declared.contains(name))
                .map(|(name, _)| name.clone())
                .collect()
        };
        ManifestView {
            tools: strs(&m.tools),
            models,
            read: strs(&m.read),
            write: strs(&m.write),
            net: strs(&m.net),
            run: strs(&m.run),
            env: strs(&m.env),
            declassify: m.declassify,
            endorse: m.endorse,
        }
    }

    fn link_models(&self, module: &Module) -> Result<(), RunError> {
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
        // Model calls serving MCP servers' sampling requests.
        let mut sampling: FuturesUnordered<server_requests::Sampling> = FuturesUnordered::new();
        loop {
            if self.embedder.as_ref().is_some_and(|e| e.cancelled()) {
                return Err(RunError::Cancelled);
            }
            let step = vm.run()?;
            if !matches!(step, Step::Effect(_)) {
                self.journal_labels(vm)?;
            }
            match step {
                Step::Done { value, .. } => {
                    if let Some(r) = &self.replay {
                        r.finish()?;
                    }
                    self.stdout.flush().map_err(RunError::Output)?;
                    return Ok(value);
                }
                Step::Effect(mut req) => {
                    self.journal_labels(vm)?;
                    let seq = self.next_seq(&req);
                    if let Err(e) = self.judge(&mut req, seq)? {
                        if let Some(r) = self.replay.as_mut() {
                            // The recorded effect was refused as well: pass its event over.
                            r.refused(&req, seq)?;
                        }
                        self.deliver(vm, &req, seq, Err(e), None)?;
                    } else if self.replay.is_some() {
                        self.replay_ask(vm, req, seq)?;
                    } else if effects::is_async(&req.native) {
                        match self.start_async(&req, seq) {
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
                    let deadline = self.budget.deadline();
                    let wait = wake(&mut in_flight, &mut sampling, &mut self.requests);
                    let next = match deadline {
                        None => wait.await,
                        Some(d) => {
                            match tokio::time::timeout_at(d.into(), wait).await {
                                Ok(c) => c,
                                Err(_) => {
                                    // Out of time: drop every call in flight (cancelling it);
                                    // their tasks get BudgetExceeded in (task, seq) order.
                                    in_flight = FuturesUnordered::new();
                                    sampling = FuturesUnordered::new();
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
                    match next {
                        Wake::Done(Some(c)) => {
                            asked.remove(&(c.req.task.0, c.seq));
                            self.complete(vm, c)?;
                        }
                        Wake::Done(None) => {}
                        Wake::Request(r) => sampling.extend(self.serve_request(r)?),
                        Wake::Sampled(s) => self.finish_sampling(*s)?,
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
        let mut judged = req.clone();
        let outcome = match self.judge(&mut judged, seq)? {
            Ok(()) => self.perform_inline(req)?,
            Err(e) => Err(e),
        };
        self.journal(Event::Effect(
            EffectEvent::asked(req, seq).with_outcome(&outcome),
        ))?;
        Ok(outcome)
    }

    /// Judges and performs one effect of any kind (an asynchronous one awaited at once), and
    /// records it, outside a run: `aivm mcp call`, embedders. A model call is not performed
    /// this way (its request needs a run's bindings and budget): it is refused.
    pub async fn perform_async(
        &mut self,
        req: &EffectRequest,
    ) -> Result<Result<HostValue, HostError>, RunError> {
        if !effects::is_async(&req.native) {
            return self.perform(req);
        }
        let seq = self.next_seq(req);
        let mut judged = req.clone();
        let outcome = match self.judge(&mut judged, seq)? {
            Err(e) => Err(e),
            Ok(()) if req.native == "llm.call" => Err(HostError::new(
                MODEL_ERROR,
                "a model call is performed only within a run",
            )),
            Ok(()) => match self.start_async(req, seq) {
                Err(e) => Err(e),
                Ok(fut) => match fut.await.done {
                    Done::Tool(outcome) => outcome,
                    Done::Llm(_) => Err(HostError::new(MODEL_ERROR, "unexpected model call")),
                },
            },
        };
        if let Err(e) = &outcome {
            if let Some(b) = gate::blocked(e) {
                self.blocked.push(b);
            }
        }
        self.journal_mcp()?;
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
        if req.native == gate::TOOL_GATE {
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
        if let Some(outcome) = self.embedder.as_mut().and_then(|e| e.perform(req)) {
            return Ok(outcome);
        }
        self.tools()?;
        let Some(tools) = self.tools.as_ref() else {
            return Ok(Err(gate::unknown_effect(&req.native)));
        };
        tools
            .perform(&mut *self.stdout, &mut *self.stdin, req)
            .map_err(RunError::Output)
    }

    /// The native tools, opened on first use when the run did not link them (an embedder
    /// performing effects outside a run).
    fn tools(&mut self) -> Result<&effects::Tools, RunError> {
        let tools = match self.tools.take() {
            Some(t) => t,
            None => effects::Tools::new(
                &self.gate.policy,
                &ManifestView::default(),
                self.max_input_bytes,
            )?,
        };
        Ok(self.tools.insert(tools))
    }

    /// Judges an effect and writes the decision to the journal before anything else happens;
    /// the inner error is the `PolicyDenied` the program gets instead of the effect.
    fn judge(
        &mut self,
        req: &mut EffectRequest,
        seq: u64,
    ) -> Result<Result<(), HostError>, RunError> {
        let recorded = self
            .replay
            .as_ref()
            .and_then(|r| r.decision(req.task.0, seq))
            .map(|(at, d)| (at, d.clone()));
        let want_event = !self.trace.is_off() || recorded.is_some();
        let judged = self
            .gate
            .judge(req, seq, recorded.as_ref().map(|(_, d)| d), want_event);
        if let (Some((at, r)), Some(now)) = (&recorded, &judged.event) {
            if (r.verdict.as_str(), r.rule.as_str()) != (now.verdict.as_str(), now.rule.as_str()) {
                return Err(RunError::ReplayDiverged(Divergence {
                    event: *at,
                    recorded: format!("the policy said {} (rule {})", r.verdict, r.rule),
                    asked: format!(
                        "asked for {}, which the policy now judges {} (rule {})",
                        now.tool, now.verdict, now.rule
                    ),
                }));
            }
        }
        if let (false, Some(event)) = (self.trace.is_off(), judged.event) {
            self.journal(Event::Decision(event))?;
        }
        Ok(judged.outcome)
    }

    /// Writes the label lowerings the program ran since the last look.
    fn journal_labels(&mut self, vm: &mut Vm) -> Result<(), RunError> {
        let events = vm.take_label_events();
        if self.trace.is_off() {
            return Ok(());
        }
        for e in events {
            let op = match (e.op, e.narrow) {
                (crate::label::LabelOp::Declassify, _) => "declassify",
                (crate::label::LabelOp::Endorse, false) => "endorse",
                (crate::label::LabelOp::Endorse, true) => "endorse_narrow",
            };
            self.journal(Event::Label(LabelEvent {
                task: e.task.0,
                op: op.into(),
                function: e.func,
                line: e.line,
                from: e.from.to_string(),
                to: e.to.to_string(),
            }))?;
        }
        Ok(())
    }

    /// Starts an asynchronous effect and returns the future of its completion.
    fn start_async(&mut self, req: &EffectRequest, seq: u64) -> Result<InFlight, HostError> {
        if req.native == "llm.call" {
            return self.start_llm(req, seq);
        }
        self.budget.check_time().map_err(|e| e.to_host_error())?;
        if req.native == crate::format::MCP_CALL {
            return self.start_mcp(req, seq);
        }
        if matches!(req.native.as_str(), "mcp.resource" | "mcp.prompt") {
            return self.start_mcp_read(req, seq);
        }
        let fut = self
            .tools()
            .map_err(|e| HostError::new("IoError", e.to_string()))?
            .start(req)?;
        let req = req.clone();
        Ok(Box::pin(async move {
            Completion {
                req,
                seq,
                done: Done::Tool(fut.await),
            }
        }))
    }

    /// Starts an MCP tool call the gate allowed: the manifest's confinement, the `paths`
    /// arguments against the file grants (before the server sees anything), then the call;
    /// the result is labelled by the policy (and the server's hint, spec/mcp.md §Labels).
    fn start_mcp(&mut self, req: &EffectRequest, seq: u64) -> Result<InFlight, HostError> {
        let id = req
            .args
            .first()
            .and_then(HostValue::as_str)
            .unwrap_or("")
            .to_string();
        let Some(hub) = self.mcp.clone() else {
            let (server, tool) = mcp::split_id(&id).unwrap_or((&id, ""));
            let e = mcp::McpError::NotConfigured {
                server: server.to_string(),
                tool: tool.to_string(),
            };
            return Err(e.into_host_error(&LabelInfo::default()));
        };
        if let Some(ids) = &self.mcp_ids {
            if !ids.contains(&id) {
                let reason = format!(
                    "the program's manifest does not name the MCP tool {id:?} (declare it with \
                     a `tool ... from mcp` item)"
                );
                return Err(crate::policy::Denial::new("manifest", reason).into_host_error(&id));
            }
        }
        let mut args = match req.args.get(1).map(HostValue::to_json) {
            Some(serde_json::Value::Object(m)) => m,
            Some(serde_json::Value::Null) | None => serde_json::Map::new(),
            Some(other) => {
                return Err(HostError::new(
                    "TypeError",
                    format!(
                        "mcp.call: the arguments of {id} must be a record or a map, not {other}"
                    ),
                ))
            }
        };
        hub.check_paths(&id, &mut args, &self.gate.policy.fs_grants())
            .map_err(|d| d.into_host_error(&id))?;
        let label = self.gate.policy.output_label(&id, None);
        let trust = mcp::split_id(&id)
            .and_then(|(s, _)| hub.server_config(s))
            .is_some_and(|c| c.trust_label_hints);
        let req = req.clone();
        Ok(Box::pin(async move {
            let outcome = match hub.call(&id, args).await {
                Ok(out) => Ok(out.labelled(&label, trust)),
                Err(e) => Err(e.into_host_error(&label)),
            };
            Completion {
                req,
                seq,
                done: Done::Tool(outcome),
            }
        }))
    }

    /// Starts a read of an MCP server's resource or prompt the gate allowed (as the native
    /// `mcp.resource` / `mcp.prompt`, with the server and what is read as its arguments); the
    /// result is labelled by the policy's output label of the native (untrusted by default).
    fn start_mcp_read(&mut self, req: &EffectRequest, seq: u64) -> Result<InFlight, HostError> {
        let tool = req.native.clone();
        let arg = |i: usize, name: &str| -> Result<String, HostError> {
            req.args
                .get(i)
                .and_then(HostValue::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    HostError::new("TypeError", format!("{tool}: `{name}` must be a string"))
                })
        };
        let server = arg(0, "server")?;
        let what = arg(
            1,
            if tool == "mcp.resource" {
                "uri"
            } else {
                "name"
            },
        )?;
        let arguments = match req.args.get(2).map(HostValue::to_json) {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let Some(hub) = self.mcp.clone() else {
            let e = mcp::McpError::NotConfigured {
                server: server.clone(),
                tool: tool.clone(),
            };
            return Err(e.into_host_error(&LabelInfo::default()));
        };
        let label = self.gate.policy.output_label(&tool, None);
        let req = req.clone();
        Ok(Box::pin(async move {
            let result = if tool == "mcp.resource" {
                hub.read_resource(&server, &what).await
            } else {
                hub.get_prompt(&server, &what, arguments).await
            };
            let outcome = match result {
                Ok(v) => Ok(v.labelled_deep(&label)),
                Err(e) => Err(e.into_host_error(&label)),
            };
            Completion {
                req,
                seq,
                done: Done::Tool(outcome),
            }
        }))
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
        let hub = self.mcp.clone();
        Ok(Box::pin(async move {
            let t0 = Instant::now();
            if let Some(hub) = &hub {
                offer_mcp_tools(hub, &mut mreq.tools).await;
            }
            let provider = binding.provider.name().to_string();
            let (result, attempts) =
                providers::retry::call_with_retries(&*binding.provider, &mreq, &binding.retry)
                    .await;
            Completion {
                req,
                seq,
                done: Done::Llm(LlmDone {
                    model,
                    provider,
                    label,
                    price: binding.price,
                    result,
                    attempts,
                    latency: t0.elapsed(),
                }),
            }
        }))
    }

    /// Gives a finished asynchronous effect to its task.
    fn complete(&mut self, vm: &mut Vm, c: Completion) -> Result<(), RunError> {
        let llm = match c.done {
            Done::Llm(llm) => llm,
            Done::Tool(outcome) => return self.deliver(vm, &c.req, c.seq, outcome, None),
        };
        self.complete_llm(vm, &c.req, c.seq, llm)
    }

    /// Gives a finished model call to its task, charging what it cost.
    fn complete_llm(
        &mut self,
        vm: &mut Vm,
        req: &EffectRequest,
        seq: u64,
        c: LlmDone,
    ) -> Result<(), RunError> {
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
        self.deliver(vm, req, seq, outcome, Some(record))
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
        if let Err(e) = &outcome {
            if let Some(b) = gate::blocked(e) {
                self.blocked.push(b);
            }
        }
        self.journal_mcp()?;
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

    /// Writes what the MCP servers did since the last look (starts, stderr lines, progress,
    /// stops), so that it precedes the effect it belongs to.
    fn journal_mcp(&mut self) -> Result<(), RunError> {
        let Some(hub) = &self.mcp else {
            return Ok(());
        };
        for ev in hub.drain_events() {
            self.journal(ev)?;
        }
        Ok(())
    }

    fn journal(&mut self, event: Event) -> Result<(), RunError> {
        self.trace.write(event).map_err(RunError::Trace)
    }
}
