//! The synchronous host of this version: it runs a VM to the end, performing each effect it
//! yields — `io.print`, `io.read_line`, `fs.read` (deny by default: only under granted roots,
//! after canonicalising the path, so no `..` or symlink escape; files under untrusted roots come
//! back labelled untrusted) and `clock.now` — and records every effect in a trace.

pub mod config;
pub mod llm;
pub mod providers;

use std::io::{BufRead, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::VmError;
use crate::host_value::{HostData, HostError, HostValue};
use crate::interp::{EffectRequest, Step, Vm};
use crate::label::LabelInfo;

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

/// One performed (or refused) effect, for `--trace`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub effect: String,
    /// The arguments as plain JSON.
    pub args: Vec<serde_json::Value>,
    /// `"ok"` or the error kind.
    pub outcome: String,
    /// A short description of the result (sizes rather than contents).
    pub summary: String,
    /// The labels of the arguments and of the result, as text.
    pub arg_labels: Vec<String>,
    pub result_label: String,
}

/// Why `run_to_end` stopped without a final value.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error("cannot write the program's output: {0}")]
    Output(std::io::Error),
    #[error("cannot write the trace: {0}")]
    Trace(std::io::Error),
}

/// Where the host records the effects it performs.
pub enum TraceSink {
    /// Nowhere: a long run keeps no history.
    Off,
    /// In memory, for tests and embedders that inspect the run afterwards.
    Memory(Vec<TraceEvent>),
    /// As JSON Lines, one event a line, written as each effect completes (so a run that fails
    /// or is killed still leaves the trace up to that point; give a `LineWriter` or an
    /// unbuffered writer for that).
    JsonLines(Box<dyn Write>),
}

/// The host. Output and input are any writer and reader, so tests capture them.
pub struct Host {
    pub policy: Policy,
    stdout: Box<dyn Write>,
    stdin: Box<dyn BufRead>,
    trace: TraceSink,
}

impl Host {
    /// A host that records nothing; see [`Host::with_trace`].
    pub fn new(policy: Policy, stdout: Box<dyn Write>, stdin: Box<dyn BufRead>) -> Host {
        Host {
            policy,
            stdout,
            stdin,
            trace: TraceSink::Off,
        }
    }

    /// The same host, recording every effect into `sink`.
    pub fn with_trace(mut self, sink: TraceSink) -> Host {
        self.trace = sink;
        self
    }

    /// The effects recorded so far, when recording in memory.
    pub fn trace_events(&self) -> &[TraceEvent] {
        match &self.trace {
            TraceSink::Memory(events) => events,
            _ => &[],
        }
    }

    /// Runs `vm` until a task finishes, performing every effect; returns its final value.
    pub fn run_to_end(&mut self, vm: &mut Vm) -> Result<HostValue, RunError> {
        loop {
            match vm.run()? {
                Step::Done { value, .. } => {
                    self.stdout.flush().map_err(RunError::Output)?;
                    return Ok(value);
                }
                Step::Effect(req) => {
                    let result = self.perform(&req)?;
                    vm.resume(req.task, result)?;
                }
                // Effects are performed at once here, so nothing is in flight: idle is stuck.
                Step::Idle => return Err(vm.deadlock().unwrap_or(VmError::Idle).into()),
            }
        }
    }

    /// Performs one effect (and records it).
    pub fn perform(
        &mut self,
        req: &EffectRequest,
    ) -> Result<Result<HostValue, HostError>, RunError> {
        let result = match req.native.as_str() {
            "io.print" => {
                let text = req.args.first().and_then(HostValue::as_str).unwrap_or("");
                writeln!(self.stdout, "{text}").map_err(RunError::Output)?;
                Ok(HostValue::null())
            }
            "io.read_line" => {
                self.stdout.flush().map_err(RunError::Output)?;
                self.read_line()
            }
            "fs.read" => match req.args.first().map(|a| &a.data) {
                Some(HostData::Str(p)) => self.read_file(Path::new(p)),
                _ => Err(HostError::new("TypeError", "fs.read expects a path string")),
            },
            "clock.now" => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                Ok(HostValue::int(ms))
            }
            other => Err(HostError::new(
                "PermissionDenied",
                format!("this host does not perform the effect {other}"),
            )),
        };
        self.record(req, &result).map_err(RunError::Trace)?;
        Ok(result)
    }

    fn record(
        &mut self,
        req: &EffectRequest,
        result: &Result<HostValue, HostError>,
    ) -> std::io::Result<()> {
        if matches!(self.trace, TraceSink::Off) {
            return Ok(());
        }
        let (outcome, summary, label) = match result {
            Ok(v) => ("ok".to_string(), summarise(v), v.label.to_string()),
            Err(e) => (e.kind.clone(), e.message.clone(), e.label.to_string()),
        };
        let event = TraceEvent {
            effect: req.native.clone(),
            args: req.args.iter().map(HostValue::to_json).collect(),
            outcome,
            summary,
            arg_labels: req.args.iter().map(|a| a.label.to_string()).collect(),
            result_label: label,
        };
        match &mut self.trace {
            TraceSink::Off => {}
            TraceSink::Memory(events) => events.push(event),
            TraceSink::JsonLines(w) => {
                serde_json::to_writer(&mut *w, &event)?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    fn read_line(&mut self) -> Result<HostValue, HostError> {
        let cap = self.policy.max_input_bytes;
        let mut line = String::new();
        match (&mut self.stdin).take(cap).read_line(&mut line) {
            Ok(0) => Ok(HostValue::null()),
            Ok(n) if n as u64 >= cap && !line.ends_with('\n') => Err(HostError::new(
                "IoError",
                format!("an input line longer than {cap} bytes"),
            )),
            Ok(_) => {
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                Ok(HostValue::str(line))
            }
            Err(e) => Err(HostError::new("IoError", format!("reading input: {e}"))),
        }
    }

    fn read_file(&mut self, path: &Path) -> Result<HostValue, HostError> {
        let shown = path.display().to_string();
        let denied = || {
            HostError::new(
                "PermissionDenied",
                format!("reading {shown} is not allowed (grant it with --allow-read)"),
            )
        };
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(e) => {
                // Say "not allowed" rather than "not found" for paths outside the grants, so a
                // program cannot probe for files it may not read.
                let lexical = lexical_absolute(path).ok_or_else(denied)?;
                if !inside_any(&lexical, &self.policy.allow_read) {
                    return Err(denied());
                }
                return Err(HostError::new(
                    "IoError",
                    format!("cannot read {shown}: {e}"),
                ));
            }
        };
        if !inside_any(&real, &self.policy.allow_read) {
            return Err(denied());
        }
        let cap = self.policy.max_input_bytes;
        let io_err =
            |e: std::io::Error| HostError::new("IoError", format!("cannot read {shown}: {e}"));
        let mut bytes = Vec::new();
        std::fs::File::open(&real)
            .and_then(|f| f.take(cap.saturating_add(1)).read_to_end(&mut bytes))
            .map_err(io_err)?;
        if bytes.len() as u64 > cap {
            return Err(HostError::new(
                "IoError",
                format!("cannot read {shown}: it is larger than {cap} bytes"),
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| HostError::new("IoError", format!("{shown} is not valid UTF-8 text")))?;
        let label = if inside_any(&real, &self.policy.untrusted) {
            LabelInfo::untrusted()
        } else {
            LabelInfo::public()
        };
        Ok(HostValue::str(text).labelled(label))
    }
}

/// Whether the canonical path `p` is inside one of `roots` (each canonicalised; roots that do
/// not exist grant nothing).
fn inside_any(p: &Path, roots: &[PathBuf]) -> bool {
    roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| p.starts_with(&r))
}

/// `p` made absolute with `.` and `..` resolved by text alone (for paths that do not exist).
fn lexical_absolute(p: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(p).ok()?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

fn summarise(v: &HostValue) -> String {
    match &v.data {
        HostData::Null => "null".into(),
        HostData::Str(s) => format!("{} bytes", s.len()),
        HostData::Bool(b) => b.to_string(),
        HostData::Int(i) => i.to_string(),
        HostData::Float(f) => f.to_string(),
        HostData::List(items) => format!("list of {}", items.len()),
        HostData::Map(entries) => format!("map of {}", entries.len()),
        HostData::Record(fields) => format!("record of {} fields", fields.len()),
        HostData::Error { kind, .. } => format!("error {kind}"),
        HostData::Func(name) => format!("fn {name}"),
        HostData::Task(t) => format!("task {t}"),
    }
}
