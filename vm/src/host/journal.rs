//! The journal (spec/journal.md): every effect of a run and its result as JSON Lines, between a
//! `run_start` and a `run_end` event, written as each result reaches the program. Replaying a
//! journal answers the program's input effects from it — matched by task and per-task sequence,
//! released in journal order — and performs its output effects again, so a replay reproduces
//! the output and the journal byte for byte, or stops at the first divergence.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::budget::Spent;
use super::llm::{ModelResponse, Usage};
use crate::host_value::{HostError, HostValue};
use crate::interp::EffectRequest;
use crate::label::{Integrity, LabelInfo};

/// The version of the journal format written in `run_start`.
pub const JOURNAL_VERSION: u32 = 1;

/// One line of a journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStart(RunStart),
    /// A policy decision, written before the effect it permits (or instead of it).
    Decision(DecisionEvent),
    Effect(EffectEvent),
    /// A label lowered by `declassify`/`endorse` (spec/security.md).
    Label(LabelEvent),
    /// An MCP server started (spec/mcp.md): not matched by a replay, which starts none.
    #[serde(rename = "mcp.start")]
    McpStart(McpStart),
    /// A line an MCP server's child wrote on its stderr.
    #[serde(rename = "mcp.stderr")]
    McpStderr(McpStderr),
    /// A progress notification of an MCP tool call.
    #[serde(rename = "mcp.progress")]
    McpProgress(McpProgress),
    /// An MCP server stopped.
    #[serde(rename = "mcp.stop")]
    McpStop(McpStop),
    /// A server's `sampling/createMessage`, served (or refused) by a model of the run.
    #[serde(rename = "mcp.sampling")]
    McpSampling(Box<McpSampling>),
    /// A server's `elicitation/create`, and how it was answered.
    #[serde(rename = "mcp.elicitation")]
    McpElicitation(McpElicitation),
    RunEnd(RunEnd),
}

/// An MCP server ready for calls: what it answered `initialize` and `tools/list` with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpStart {
    pub server: String,
    /// The protocol version the server chose.
    pub protocol: String,
    /// Its `serverInfo`: name and version.
    pub server_info: String,
    /// How many of its tools were accepted.
    pub tools: u64,
    /// Milliseconds from spawn (or connect) to the tool list.
    pub ms: u64,
    /// Tools left out for their names (§Names), each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
}

/// One stderr line of an MCP server's child (cut at 1 KiB; at most 1000 per server).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpStderr {
    pub server: String,
    pub line: String,
}

/// `notifications/progress` of a call in flight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpProgress {
    pub server: String,
    pub tool: String,
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// How an MCP server ended: `exit N`, `signal N`, `killed`, or `closed` (HTTP).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpStop {
    pub server: String,
    pub status: String,
}

/// A server's sampling request: what the policy decided about it (judged as `llm.call` with
/// audience `model:MODEL`), and what the model answered. Not matched by a replay, which
/// starts no server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpSampling {
    pub server: String,
    /// The logical model the server's `sampling` setting names.
    pub model: String,
    /// The request as the model was asked (the server's text: untrusted).
    pub request: serde_json::Value,
    pub request_label: String,
    /// `allow`, `ask` or `deny`; the rule and reason that decided.
    pub verdict: String,
    pub rule: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// `ok`, or the kind of the error the server was answered with.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The model call, when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmRecord>,
    /// The label of the answer: the model read untrusted text.
    pub result_label: String,
}

/// A server's elicitation: the message shown, the fields asked for, and the action answered
/// (`accept`, `decline`, `cancel`). The values a person typed are not recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpElicitation {
    pub server: String,
    pub message: String,
    pub fields: Vec<String>,
    pub action: String,
}

/// What the policy decided about one effect the program asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    pub task: u32,
    /// The effect's number in its task, as in the effect event it precedes.
    pub seq: u64,
    /// The tool id judged: the effect's native name, or for the `tool.call` gate the name of
    /// the program's tool.
    pub tool: String,
    /// `allow`, `ask` or `deny`.
    pub verdict: String,
    /// The rule that decided.
    pub rule: String,
    pub reason: String,
    /// sha256 of the canonical JSON of the arguments judged.
    pub args_hash: String,
    /// The label of each named argument.
    pub labels: BTreeMap<String, String>,
    /// The label of the control flow that led to the call.
    pub control: String,
    /// For `ask`: how it was answered (`approved`, `auto-approved`, `refused`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

impl DecisionEvent {
    /// Whether the effect went ahead.
    pub fn permitted(&self) -> bool {
        match self.verdict.as_str() {
            "allow" => true,
            "ask" => matches!(self.approval.as_deref(), Some("approved" | "auto-approved")),
            _ => false,
        }
    }
}

/// A label lowered by the program, with the authority its manifest declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelEvent {
    pub task: u32,
    /// `declassify`, `endorse` or `endorse_narrow`.
    pub op: String,
    /// Where: the function and source line.
    pub function: String,
    pub line: u32,
    pub from: String,
    pub to: String,
}

/// The first event: the format version and the providers the model names resolved to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    pub version: u32,
    /// Logical model name → provider (`openai:gpt-4o-mini`); never a key.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
}

/// One effect the program asked for, and what it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectEvent {
    /// The task that asked.
    pub task: u32,
    /// The task's effect number, from 0.
    pub seq: u64,
    /// The effect's native name, e.g. `io.print`, `llm.call`.
    pub effect: String,
    /// The arguments as plain JSON.
    pub args: Vec<serde_json::Value>,
    /// The label of each argument (e.g. `untrusted`, `trusted, readers={alice}`).
    pub arg_labels: Vec<String>,
    /// `ok`, or the kind of the error the program got.
    pub outcome: String,
    /// The result as plain JSON; absent when the effect failed, and for `llm.call` (see `llm`).
    /// A null result is written as `null`, and read back as `Some(Null)`, not as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub result: Option<serde_json::Value>,
    /// The error the program got instead of a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    /// The label of the result (or of the error).
    pub result_label: String,
    /// For `llm.call`: the provider's answer and what the call cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<Box<LlmRecord>>,
}

/// A field that is present, even as `null`, is `Some`: so that a journal read back writes the
/// same bytes again.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// A failed effect, as the program saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub kind: String,
    pub message: String,
    /// The error's payload, kept exactly (with its labels) so that a replay reproduces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<HostValue>,
}

/// What a model call did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmRecord {
    /// The logical model name the program used.
    pub model: String,
    /// The provider it resolved to.
    pub provider: String,
    /// The answer; absent when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ModelResponse>,
    pub usage: Usage,
    /// US dollars; absent when the model has no price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// HTTP attempts made (retries included); 0 when no call was made.
    pub attempts: u32,
    pub latency_ms: u64,
}

/// The last event: how the run ended and what it spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunEnd {
    /// `ok` (main returned), `error` (an uncaught program error) or `failed` (the host or the
    /// VM stopped the run: a limit, a divergence, a broken output).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub spent: Spent,
}

impl EffectEvent {
    /// The event for `req`, with its outcome still to fill in.
    pub(crate) fn asked(req: &EffectRequest, seq: u64) -> EffectEvent {
        EffectEvent {
            task: req.task.0,
            seq,
            effect: req.native.clone(),
            args: req.args.iter().map(HostValue::to_json).collect(),
            arg_labels: req.args.iter().map(|a| a.label.to_string()).collect(),
            outcome: "ok".into(),
            result: None,
            error: None,
            result_label: LabelInfo::public().to_string(),
            llm: None,
        }
    }

    /// Fills in the outcome (`result` only for effects other than `llm.call`).
    pub(crate) fn with_outcome(mut self, outcome: &Result<HostValue, HostError>) -> EffectEvent {
        match outcome {
            Ok(v) => {
                if self.effect != "llm.call" {
                    self.result = Some(v.to_json());
                }
                self.result_label = v.label.to_string();
            }
            Err(e) => {
                self.outcome = e.kind.clone();
                self.error = Some(ErrorRecord {
                    kind: e.kind.clone(),
                    message: e.message.clone(),
                    payload: e.payload.as_deref().cloned(),
                });
                self.result_label = e.label.to_string();
            }
        }
        self
    }

    /// The outcome a replay gives the program (for effects other than a successful
    /// `llm.call`, whose value is rebuilt from `llm.response`).
    pub(crate) fn outcome(&self) -> Result<HostValue, HostError> {
        let label = parse_label(&self.result_label).unwrap_or_default();
        match &self.error {
            Some(e) => {
                let mut he = HostError::new(e.kind.clone(), e.message.clone());
                he.label = label;
                he.payload = e.payload.clone().map(Box::new);
                Err(he)
            }
            None => {
                let doc = self.result.clone().unwrap_or_default();
                Ok(super::llm_value::value_from_json(&doc).labelled(label))
            }
        }
    }

    /// Whether `req` is what this event records being asked.
    fn same_request(&self, other: &EffectEvent) -> bool {
        self.task == other.task
            && self.seq == other.seq
            && self.effect == other.effect
            && self.args == other.args
            && self.arg_labels == other.arg_labels
    }

    /// A one-line description for divergence messages.
    pub(crate) fn describe(&self) -> String {
        self.describe_around(0)
    }

    /// The call in full, as JSON arguments.
    fn call_text(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        format!("{}({})", self.effect, args.join(", "))
    }

    /// The effect, its call cut to a window of about 300 bytes beginning a little before byte
    /// `at` of the call's text (so that a long request shows the part that matters).
    fn describe_around(&self, at: usize) -> String {
        let call = self.call_text();
        format!(
            "task {} effect #{}: {}",
            self.task,
            self.seq,
            window(&call, at.saturating_sub(60), 300)
        )
    }

    /// Both calls, each cut around the first byte where they differ.
    fn contrast(&self, other: &EffectEvent) -> (String, String) {
        let (a, b) = (self.call_text(), other.call_text());
        let at = a
            .bytes()
            .zip(b.bytes())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        (self.describe_around(at), other.describe_around(at))
    }
}

/// About `len` bytes of `text` from byte `from` (both moved to character boundaries), with `…`
/// where text was left out.
fn window(text: &str, from: usize, len: usize) -> String {
    let mut start = from.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = start.saturating_add(len).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&text[start..end]);
    if end < text.len() {
        out.push('…');
    }
    out
}

/// Reads a label as [`LabelInfo`]'s `Display` writes it: `trusted` or `untrusted`, then
/// optionally `, readers={a, b}`.
pub fn parse_label(text: &str) -> Option<LabelInfo> {
    let (integrity, rest) = match text.split_once(", ") {
        Some((i, r)) => (i, Some(r)),
        None => (text, None),
    };
    let integrity = match integrity {
        "trusted" => Integrity::Trusted,
        "untrusted" => Integrity::Untrusted,
        _ => return None,
    };
    let readers = match rest {
        None => None,
        Some(r) => {
            let inner = r.strip_prefix("readers={")?.strip_suffix('}')?;
            Some(
                inner
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<BTreeSet<_>>(),
            )
        }
    };
    Some(LabelInfo { integrity, readers })
}

/// Where the host writes the journal.
pub enum TraceSink {
    /// Nowhere: a long run keeps no history.
    Off,
    /// In memory, for tests and embedders that inspect the run afterwards.
    Memory(Vec<Event>),
    /// As JSON Lines, one event a line, written as each effect completes (so a run that fails
    /// or is killed still leaves the journal up to that point; give a `LineWriter` or an
    /// unbuffered writer for that).
    JsonLines(Box<dyn Write>),
}

impl TraceSink {
    pub(crate) fn write(&mut self, event: Event) -> std::io::Result<()> {
        match self {
            TraceSink::Off => Ok(()),
            TraceSink::Memory(events) => {
                events.push(event);
                Ok(())
            }
            TraceSink::JsonLines(w) => {
                let mut line = serde_json::to_vec(&event)?;
                line.push(b'\n');
                w.write_all(&line)?;
                w.flush()
            }
        }
    }

    pub(crate) fn is_off(&self) -> bool {
        matches!(self, TraceSink::Off)
    }
}

/// A journal that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line} of the journal: {message}")]
pub struct JournalError {
    pub line: usize,
    pub message: String,
}

/// Parses a journal (JSON Lines; blank lines are skipped).
pub fn parse(text: &str) -> Result<Vec<Event>, JournalError> {
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(line).map_err(|e| JournalError {
            line: i + 1,
            message: e.to_string(),
        })?;
        events.push(event);
    }
    match events.first() {
        Some(Event::RunStart(s)) if s.version == JOURNAL_VERSION => Ok(events),
        Some(Event::RunStart(s)) => Err(JournalError {
            line: 1,
            message: format!(
                "journal format version {} (this aivm reads version {JOURNAL_VERSION})",
                s.version
            ),
        }),
        _ => Err(JournalError {
            line: 1,
            message: "a journal begins with a run_start event".into(),
        }),
    }
}

/// Where a replay and the program parted ways.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("replay diverged at event {event} of the journal: it recorded {recorded}, but the program {asked}")]
pub struct Divergence {
    /// The event's number: its 1-based position in the journal (`run_start` is event 1).
    pub event: usize,
    pub recorded: String,
    pub asked: String,
}

/// The state of a replay: which recorded events the program has asked for, and which result
/// goes out next.
pub struct Replayer {
    events: Vec<Event>,
    /// The recorded policy decisions, by (task, seq): their position and event.
    decisions: HashMap<(u32, u64), usize>,
    /// (task, seq) → index of its effect event.
    by_request: HashMap<(u32, u64), usize>,
    /// The index of the next effect event to release.
    next: usize,
    /// Asked model calls waiting for their turn, by (task, seq).
    pending: BTreeMap<(u32, u64), String>,
}

/// What the replay does with an asked effect.
pub(crate) enum Answer {
    /// Deliver this outcome now (an input effect answered from the journal).
    Now(Box<EffectEvent>),
    /// Perform the output effect again now.
    Perform,
    /// A model call: its recorded answer comes when the journal's order says so.
    Later,
}

impl Replayer {
    pub fn new(events: Vec<Event>) -> Replayer {
        let by_request = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::Effect(ev) => Some(((ev.task, ev.seq), i)),
                _ => None,
            })
            .collect();
        let decisions = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::Decision(d) => Some(((d.task, d.seq), i)),
                _ => None,
            })
            .collect();
        let mut r = Replayer {
            decisions,
            events,
            by_request,
            next: 0,
            pending: BTreeMap::new(),
        };
        r.skip_to_effect();
        r
    }

    /// The recorded `run_start`.
    pub fn run_start(&self) -> Option<&RunStart> {
        match self.events.first() {
            Some(Event::RunStart(s)) => Some(s),
            _ => None,
        }
    }

    fn skip_to_effect(&mut self) {
        while let Some(e) = self.events.get(self.next) {
            if matches!(e, Event::Effect(_)) {
                break;
            }
            self.next += 1;
        }
    }

    fn next_effect(&self) -> Option<&EffectEvent> {
        match self.events.get(self.next) {
            Some(Event::Effect(ev)) => Some(ev),
            _ => None,
        }
    }

    fn recorded_next(&self) -> String {
        match self.next_effect() {
            Some(ev) => ev.describe(),
            None => "no more effects".into(),
        }
    }

    /// The recorded decision on the effect (task, seq), with its 1-based event number.
    pub(crate) fn decision(&self, task: u32, seq: u64) -> Option<(usize, &DecisionEvent)> {
        let &i = self.decisions.get(&(task, seq))?;
        match self.events.get(i) {
            Some(Event::Decision(d)) => Some((i + 1, d)),
            _ => None,
        }
    }

    /// The policy refused `req` again: the recorded effect must be the next one, and it is
    /// passed over (the refusal is delivered at once, as when it was recorded).
    pub(crate) fn refused(&mut self, req: &EffectRequest, seq: u64) -> Result<(), Divergence> {
        self.take_next(req, seq).map(|_| ())
    }

    /// The position of the recorded event for `req`, which must ask for the same effect with
    /// the same arguments.
    fn recorded_for(&self, asked: &EffectEvent) -> Result<usize, Divergence> {
        let Some(&i) = self.by_request.get(&(asked.task, asked.seq)) else {
            return Err(self.not_next(asked));
        };
        let Some(Event::Effect(recorded)) = self.events.get(i) else {
            return Err(Divergence {
                event: i + 1,
                recorded: "an event that is not an effect".into(),
                asked: format!("asked for {}", asked.describe()),
            });
        };
        if !recorded.same_request(asked) {
            let (recorded, asked) = recorded.contrast(asked);
            return Err(Divergence {
                event: i + 1,
                recorded,
                asked: format!("asked for {asked}"),
            });
        }
        Ok(i)
    }

    /// The divergence of asking for `asked` when the journal records something else next.
    fn not_next(&self, asked: &EffectEvent) -> Divergence {
        Divergence {
            event: self.next + 1,
            recorded: self.recorded_next(),
            asked: format!("asked for {}", asked.describe()),
        }
    }

    /// The recorded event for `req`, which must be the next one: the host performs every
    /// effect but a model call the moment it is asked, so in a faithful replay it is always
    /// the next one the journal recorded. Moves past it.
    fn take_next(&mut self, req: &EffectRequest, seq: u64) -> Result<EffectEvent, Divergence> {
        let asked = EffectEvent::asked(req, seq);
        let i = self.recorded_for(&asked)?;
        if i != self.next {
            return Err(self.not_next(&asked));
        }
        let ev = match self.events.get(i) {
            Some(Event::Effect(ev)) => ev.clone(),
            _ => return Err(self.not_next(&asked)),
        };
        self.next += 1;
        self.skip_to_effect();
        Ok(ev)
    }

    /// The program asks for `req` as its task's effect number `seq`.
    pub(crate) fn ask(&mut self, req: &EffectRequest, seq: u64) -> Result<Answer, Divergence> {
        if super::effects::is_async(&req.native) {
            let asked = EffectEvent::asked(req, seq);
            self.recorded_for(&asked)?;
            self.pending.insert((asked.task, seq), asked.describe());
            return Ok(Answer::Later);
        }
        let ev = self.take_next(req, seq)?;
        Ok(if super::effects::is_output(&req.native) {
            Answer::Perform
        } else {
            Answer::Now(Box::new(ev))
        })
    }

    /// Every task waits: the next recorded model call, which must be one the program asked for.
    pub(crate) fn release(&mut self) -> Result<EffectEvent, Divergence> {
        let waiting = |pending: &BTreeMap<(u32, u64), String>| {
            let list: Vec<&str> = pending.values().map(String::as_str).collect();
            if list.is_empty() {
                "is waiting for nothing the host could answer".to_string()
            } else {
                format!("is waiting for {}", list.join("; "))
            }
        };
        let Some(ev) = self.next_effect().cloned() else {
            return Err(Divergence {
                event: self.next + 1,
                recorded: "no more effects".into(),
                asked: waiting(&self.pending),
            });
        };
        if self.pending.remove(&(ev.task, ev.seq)).is_none() {
            return Err(Divergence {
                event: self.next + 1,
                recorded: ev.describe(),
                asked: waiting(&self.pending),
            });
        }
        self.next += 1;
        self.skip_to_effect();
        Ok(ev)
    }

    /// The program finished: the journal must have nothing left to give.
    pub(crate) fn finish(&self) -> Result<(), Divergence> {
        match self.next_effect() {
            None => Ok(()),
            Some(ev) => Err(Divergence {
                event: self.next + 1,
                recorded: ev.describe(),
                asked: "finished".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::TaskId;

    fn req(task: u32, native: &str, arg: &str) -> EffectRequest {
        EffectRequest {
            task: TaskId(task),
            native: native.into(),
            args: vec![HostValue::str(arg)],
            control: Default::default(),
        }
    }

    fn ev(task: u32, seq: u64, native: &str, arg: &str) -> Event {
        let r = req(task, native, arg);
        Event::Effect(EffectEvent::asked(&r, seq).with_outcome(&Ok(HostValue::str("r"))))
    }

    fn start() -> Event {
        Event::RunStart(RunStart {
            version: JOURNAL_VERSION,
            models: BTreeMap::new(),
        })
    }

    #[test]
    fn a_divergence_in_a_long_request_shows_where_it_differs() {
        let prompt = "You triage support tickets. ".repeat(40);
        let recorded = format!("{prompt}Triage this ticket");
        let asked = format!("{prompt}Triage that ticket");
        let mut r = Replayer::new(vec![start(), ev(0, 0, "io.read_line", &recorded)]);
        let Err(d) = r.ask(&req(0, "io.read_line", &asked), 0) else {
            panic!("a changed request must diverge");
        };
        assert_eq!(d.event, 2);
        assert!(d.recorded.contains("this ticket"), "{}", d.recorded);
        assert!(d.asked.contains("that ticket"), "{}", d.asked);
        assert!(d.recorded.contains('…') && d.recorded.len() < 400);
    }

    #[test]
    fn labels_read_back_as_displayed() {
        for l in [
            LabelInfo::public(),
            LabelInfo::untrusted(),
            LabelInfo {
                integrity: Integrity::Untrusted,
                readers: Some(["a".to_string(), "b".to_string()].into()),
            },
            LabelInfo {
                integrity: Integrity::Trusted,
                readers: Some(BTreeSet::new()),
            },
        ] {
            assert_eq!(parse_label(&l.to_string()), Some(l.clone()), "{l}");
        }
        assert_eq!(parse_label("bogus"), None);
    }

    #[test]
    fn events_round_trip_through_json_lines_byte_for_byte() {
        let e = EffectEvent::asked(&req(0, "fs.read", "a.txt"), 3).with_outcome(&Err(
            HostError::new("BudgetExceeded", "spent").with_payload(HostValue::int(1)),
        ));
        let null =
            EffectEvent::asked(&req(1, "tool.call", "f"), 0).with_outcome(&Ok(HostValue::null()));
        let events = vec![start(), Event::Effect(e), Event::Effect(null)];
        let text: String = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        let back = parse(&text).unwrap();
        assert_eq!(back, events);
        let again: String = back
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        assert_eq!(again, text);
        assert!(
            text.contains(r#""event":"effect","task":0,"seq":3,"effect":"fs.read""#),
            "{text}"
        );
    }

    #[test]
    fn a_journal_must_begin_with_a_known_run_start() {
        assert!(parse("").unwrap_err().message.contains("run_start"));
        let e = parse("{\"event\":\"run_start\",\"version\":99}\n").unwrap_err();
        assert!(e.message.contains("version 99"), "{}", e.message);
        let e = parse("{\"event\":\"run_start\",\"version\":1}\nnot json\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn inline_effects_must_come_in_journal_order() {
        let mut r = Replayer::new(vec![
            start(),
            ev(0, 0, "io.read_line", ""),
            ev(0, 1, "clock.now", ""),
        ]);
        assert!(matches!(
            r.ask(&req(0, "io.read_line", ""), 0),
            Ok(Answer::Now(_))
        ));
        // A different argument than recorded.
        let d = r.ask(&req(0, "clock.now", "x"), 1).err().unwrap();
        assert_eq!(d.event, 3);
        assert!(d.recorded.contains("clock.now(\"\")"), "{d}");
        assert!(d.asked.contains("clock.now(\"x\")"), "{d}");
        assert!(matches!(
            r.ask(&req(0, "clock.now", ""), 1),
            Ok(Answer::Now(_))
        ));
        assert!(r.finish().is_ok());
        // One effect too many.
        let d = r.ask(&req(0, "clock.now", ""), 2).err().unwrap();
        assert_eq!(d.recorded, "no more effects");
    }

    #[test]
    fn model_calls_are_released_in_journal_order_whatever_order_they_were_asked() {
        let mut r = Replayer::new(vec![
            start(),
            ev(2, 0, "llm.call", "b"),
            ev(1, 0, "llm.call", "a"),
            ev(1, 1, "io.print", "x"),
        ]);
        assert!(matches!(
            r.ask(&req(1, "llm.call", "a"), 0),
            Ok(Answer::Later)
        ));
        // Task 2's call is recorded first but not asked yet: nothing can be released.
        let d = r.release().unwrap_err();
        assert_eq!(d.event, 2);
        assert!(d.asked.contains("waiting for task 1 effect #0"), "{d}");
        assert!(matches!(
            r.ask(&req(2, "llm.call", "b"), 0),
            Ok(Answer::Later)
        ));
        assert_eq!(r.release().unwrap().task, 2);
        assert_eq!(r.release().unwrap().task, 1);
        assert!(matches!(
            r.ask(&req(1, "io.print", "x"), 1),
            Ok(Answer::Perform)
        ));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn finishing_early_is_a_divergence() {
        let r = Replayer::new(vec![start(), ev(0, 0, "io.print", "x")]);
        let d = r.finish().unwrap_err();
        assert_eq!((d.event, d.asked.as_str()), (2, "finished"));
        assert!(d.to_string().starts_with("replay diverged at event 2 of the journal: it recorded task 0 effect #0: io.print(\"x\"), but the program finished"), "{d}");
    }
}
