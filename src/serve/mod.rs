//! `aivm serve FILE --mcp`: the program's exported functions as MCP tools, over stdio or
//! Streamable HTTP on loopback (spec/mcp.md, "Server mode"). Each call runs a fresh VM on its
//! own thread under the policy, limits, budgets and models the server was started with;
//! `print` output becomes log notifications, never bytes on the protocol's stdout.

mod client;
mod convert;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aivm_vm::format::{self, FuncId, VerifiedModule};
use aivm_vm::host::budget::BudgetLimits;
use aivm_vm::host::config::ModelBinding;
use aivm_vm::host::embed::Embedder;
use aivm_vm::host::mcp::McpHub;
use aivm_vm::host::providers::client::is_client_model;
use aivm_vm::host::{Host, RunError, TraceSink};
use aivm_vm::policy::Policy;
use aivm_vm::{EffectRequest, HostError, HostValue, JitMode, LabelInfo, Limits, Vm, VmError};
use indexmap::IndexMap;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::cli::ServeArgs;
use crate::errors::CliError;
use crate::run;
use convert::Output;

/// One exported function served as a tool.
struct Served {
    name: String,
    func: FuncId,
    /// The parameters: name and type.
    params: Vec<(String, format::TypeId)>,
    output: Output,
    /// The tool as `tools/list` shows it.
    tool: Tool,
}

/// What every call of every session shares: the program and how to run it.
struct Shared {
    module: VerifiedModule,
    tools: Vec<Served>,
    policy: Policy,
    models: IndexMap<String, ModelBinding>,
    budget: BudgetLimits,
    limits: Limits,
    jit: JitMode,
    strict_flow: bool,
    input_cap: u64,
    trace_dir: Option<PathBuf>,
    calls: AtomicU64,
    /// The MCP servers the program may use; each call starts its own (its VM runs on a
    /// runtime of its own).
    mcp: Option<McpHub>,
    /// Calls running at once, at most `--max-concurrent-calls`; a permit is held by the call's
    /// thread until it ends (a cancelled call still computing keeps it).
    running: Arc<Semaphore>,
}

pub fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let module = crate::load_verified(&args.file)?;
    let (config, config_dir) = run::load_config(&args.file, &args.exec)?;
    let budget = run::budget_limits(&args.exec, &config)?;
    let policy = run::policy(&args.policy, &config, config_dir.as_deref())?;
    let models = run::bind(&args.file, &module, &config)?;
    let mcp = run::mcp_hub(&config, &policy)?;
    if let Some(dir) = &args.trace {
        std::fs::create_dir_all(dir).map_err(|e| CliError::Io {
            path: dir.clone(),
            source: e,
        })?;
    }
    if let Some(addr) = args.http {
        if !addr.ip().is_loopback() && !args.allow_remote {
            return Err(CliError::Usage(format!(
                "--http {addr} is not a loopback address: serve on 127.0.0.1 (or pass \
                 --allow-remote to expose the program's tools to the network)"
            )));
        }
    }
    let tools = tools(&module);
    let shared = Arc::new(Shared {
        tools,
        policy,
        models,
        budget,
        limits: run::limits(&args.exec),
        jit: args.exec.jit,
        strict_flow: args.policy.strict_flow,
        input_cap: run::input_cap(&args.exec),
        trace_dir: args.trace.clone(),
        calls: AtomicU64::new(0),
        running: Arc::new(Semaphore::new(args.max_concurrent_calls)),
        module,
        mcp,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Host(RunError::Runtime(e)))?;
    let result = match args.http {
        Some(addr) => rt.block_on(serve_http(shared, addr, &args.allowed_hosts)),
        None => rt.block_on(serve_stdio(shared)),
    };
    // Calls still running on their threads are abandoned with the process.
    rt.shutdown_background();
    result.map(|()| ExitCode::SUCCESS)
}

/// The exported functions that can be tools; the others are named on stderr and left out.
fn tools(module: &VerifiedModule) -> Vec<Served> {
    let mut out: Vec<Served> = Vec::new();
    for export in &module.exports {
        let name = module.str(export.name).to_string();
        let Some(f) = module.functions.get(export.func as usize) else {
            continue;
        };
        if !format::is_tool_id(&name) {
            eprintln!(
                "aivm: export `{}` is not a valid tool name: left out",
                name.escape_debug()
            );
            continue;
        }
        if out.iter().any(|t| t.name.eq_ignore_ascii_case(&name)) {
            eprintln!("aivm: export `{name}` collides with another tool ignoring case: left out");
            continue;
        }
        let input = match format::schema::arguments(module, &f.params) {
            Ok(Json::Object(s)) => s,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("aivm: export `{name}` cannot be a tool: a parameter's {e}");
                continue;
            }
        };
        let output = Output::of(module, f.ret);
        let doc = f.doc.map(|d| module.str(d).to_string()).unwrap_or_default();
        let mut tool = json!({"name": name, "description": doc, "inputSchema": input});
        if let (Some(s), Json::Object(t)) = (output.schema(), &mut tool) {
            t.insert("outputSchema".into(), Json::Object(s.clone()));
        }
        let tool: Tool = match serde_json::from_value(tool) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("aivm: export `{name}` cannot be described as a tool: {e}");
                continue;
            }
        };
        out.push(Served {
            name,
            func: export.func,
            params: f
                .params
                .iter()
                .map(|p| (module.str(p.name).to_string(), p.ty))
                .collect(),
            output,
            tool,
        });
    }
    out
}

async fn serve_stdio(shared: Arc<Shared>) -> Result<(), CliError> {
    eprintln!(
        "aivm: serving {} tool(s) over stdio (MCP)",
        shared.tools.len()
    );
    let server = Server::new(shared)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| CliError::Usage(format!("MCP over stdio: {e}")))?;
    server
        .waiting()
        .await
        .map_err(|e| CliError::Usage(format!("MCP over stdio: {e}")))?;
    Ok(())
}

async fn serve_http(
    shared: Arc<Shared>,
    addr: SocketAddr,
    extra_hosts: &[String],
) -> Result<(), CliError> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    // Requests whose Host names anything else are refused (DNS rebinding): loopback names,
    // with or without the port, and what --allowed-host adds.
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    hosts.extend(extra_hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
    let service = StreamableHttpService::new(
        move || Ok(Server::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    eprintln!("aivm: serving MCP at http://{local}/mcp");
    axum::serve(listener, app)
        .await
        .map_err(|e| CliError::Usage(format!("serving {local}: {e}")))
}

/// One MCP session: the shared program, and the log level this client asked for.
#[derive(Clone)]
struct Server {
    shared: Arc<Shared>,
    /// The lowest level of log notification the client wants (rank, see [`level_rank`]).
    min_level: Arc<Mutex<u8>>,
}

impl Server {
    fn new(shared: Arc<Shared>) -> Server {
        Server {
            shared,
            min_level: Arc::new(Mutex::new(0)),
        }
    }

    fn wants_info(&self) -> bool {
        // A poisoned lock still holds a level; keep using it.
        let min = *self.min_level.lock().unwrap_or_else(|p| p.into_inner());
        min <= INFO_RANK
    }
}

/// The rank of `info`, the level of printed lines.
const INFO_RANK: u8 = 1;

#[allow(deprecated)] // MCP logging is deprecated by SEP-2577, still how clients see output
fn level_rank(level: rmcp::model::LoggingLevel) -> u8 {
    use rmcp::model::LoggingLevel as L;
    match level {
        L::Debug => 0,
        L::Info => 1,
        L::Notice => 2,
        L::Warning => 3,
        L::Error => 4,
        L::Critical => 5,
        L::Alert => 6,
        L::Emergency => 7,
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let caps: ServerCapabilities =
            serde_json::from_value(json!({"tools": {"listChanged": false}, "logging": {}}))
                .unwrap_or_default();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("aivm", env!("CARGO_PKG_VERSION")))
    }

    #[allow(deprecated)] // see level_rank
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        *self.min_level.lock().unwrap_or_else(|p| p.into_inner()) = level_rank(request.level);
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            self.shared.tools.iter().map(|t| t.tool.clone()).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared
            .tools
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(index) = self
            .shared
            .tools
            .iter()
            .position(|t| t.name == request.name)
        else {
            return Err(McpError::invalid_params(
                format!("no tool `{}`", request.name),
                None,
            ));
        };
        let result = self.call(index, request.arguments, &context).await;
        let result: CallToolResult = serde_json::from_value(result)
            .map_err(|e| McpError::internal_error(format!("result: {e}"), None))?;
        Ok(result.into())
    }
}

impl Server {
    /// Runs tool `index` with `arguments`; the `tools/call` result as JSON.
    async fn call(
        &self,
        index: usize,
        arguments: Option<serde_json::Map<String, Json>>,
        context: &RequestContext<RoleServer>,
    ) -> Json {
        let shared = self.shared.clone();
        let Some(tool) = shared.tools.get(index) else {
            return convert::error_result("HostError", "no such tool");
        };
        let args = match check_arguments(&shared, tool, arguments.unwrap_or_default()) {
            Ok(a) => a,
            Err(message) => return convert::error_result("ValueError", &message),
        };
        // Wait for a free slot, unless the client gives up first.
        let permit = tokio::select! {
            p = shared.running.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return convert::error_result("HostError", "the server is closing"),
            },
            _ = context.ct.cancelled() => return cancelled_result(),
        };
        let n = shared.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
        let (done_tx, mut done_rx) = oneshot::channel();
        // Dropped or sent, this ends the run at its next await (see run_call).
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        let cancelled = Arc::new(AtomicBool::new(false));
        let embedder = CallEmbedder {
            out: out_tx.clone(),
            cancelled: cancelled.clone(),
            can_elicit: client::can_elicit(&context.peer),
        };
        let models = call_models(&shared.models, &context.peer);
        let worker = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("aivm-call-{n}"))
            .spawn(move || {
                let call = Call {
                    index,
                    args,
                    n,
                    models,
                    out: out_tx,
                    embedder,
                };
                let outcome = run_call(&worker, call, cancel_rx);
                drop(permit);
                // The session may be gone; then nobody wants the result.
                let _ = done_tx.send(outcome);
            });
        if let Err(e) = spawned {
            return convert::error_result("HostError", &format!("cannot start the call: {e}"));
        }
        let progress = context
            .meta
            .get_progress_token()
            .and_then(|t| serde_json::to_value(t).ok());
        let outcome = loop {
            tokio::select! {
                msg = out_rx.recv() => match msg {
                    Some(msg) => self.forward(context, progress.as_ref(), &cancelled, msg).await,
                    // The run's output is closed: only its outcome is left.
                    None => break (&mut done_rx).await,
                },
                outcome = &mut done_rx => break outcome,
                _ = context.ct.cancelled() => {
                    // The client cancelled the request or went away: the run stops at its next
                    // step or await; its thread ends (and frees its slot) when it sees that.
                    cancelled.store(true, Ordering::SeqCst);
                    let _ = cancel_tx.send(());
                    return cancelled_result();
                }
            }
        };
        while let Ok(msg) = out_rx.try_recv() {
            self.forward(context, progress.as_ref(), &cancelled, msg)
                .await;
        }
        match outcome {
            Ok(Ok(value)) => tool.output.result(&value),
            Ok(Err(RunError::Cancelled)) => cancelled_result(),
            Ok(Err(e)) => {
                let (kind, message) = failure(&e);
                convert::error_result(&kind, &message)
            }
            Err(_) => {
                convert::error_result("HostError", "the call's thread ended without a result")
            }
        }
    }

    /// Sends what the run produced to the client: a printed line as a log notification,
    /// progress as a progress notification (only when the request carried a progress
    /// token), a question as an elicitation whose answer goes back to the run.
    async fn forward(
        &self,
        context: &RequestContext<RoleServer>,
        token: Option<&Json>,
        cancelled: &AtomicBool,
        msg: Out,
    ) {
        match msg {
            Out::Line(line) => self.log_line(context, line).await,
            Out::Progress {
                done,
                total,
                message,
            } => {
                let Some(token) = token else { return };
                let mut p = json!({"progressToken": token, "progress": done});
                if let Json::Object(o) = &mut p {
                    if let Some(t) = total {
                        o.insert("total".into(), json!(t));
                    }
                    if let Some(m) = message {
                        o.insert("message".into(), json!(m));
                    }
                }
                let n: Result<rmcp::model::ServerNotification, _> = serde_json::from_value(
                    json!({"method": "notifications/progress", "params": p}),
                );
                if let Ok(n) = n {
                    // A client that went away misses it; the call goes on.
                    let _ = context.peer.send_notification(n).await;
                }
            }
            Out::Ask { question, reply } => {
                let answer = tokio::select! {
                    a = client::elicit(&context.peer, &question) => a,
                    _ = context.ct.cancelled() => {
                        // Flagged first, so that the run stops rather than go on with the
                        // refusal.
                        cancelled.store(true, Ordering::SeqCst);
                        Err(HostError::new("IoError", "io.ask: no answer: the call was cancelled"))
                    }
                };
                // The run may have ended meanwhile; then nobody waits for the answer.
                let _ = reply.send(answer);
            }
        }
    }

    /// A printed line, as an `info` log notification from logger `stdout`.
    #[allow(deprecated)] // see level_rank
    async fn log_line(&self, context: &RequestContext<RoleServer>, line: String) {
        if !self.wants_info() {
            return;
        }
        let param: Result<rmcp::model::LoggingMessageNotificationParam, _> =
            serde_json::from_value(json!({"level": "info", "logger": "stdout", "data": line}));
        if let Ok(p) = param {
            // A client that went away misses the line; the call goes on.
            let _ = context.peer.notify_logging_message(p).await;
        }
    }
}

/// The result of a cancelled call (sent only if the transport still wants it).
fn cancelled_result() -> Json {
    convert::error_result("Cancelled", "the client cancelled the call")
}

/// The server's model bindings for one call: those bound to `mcp-client:` answered by this
/// call's client.
fn call_models(
    models: &IndexMap<String, ModelBinding>,
    peer: &rmcp::service::Peer<RoleServer>,
) -> IndexMap<String, ModelBinding> {
    models
        .iter()
        .map(|(k, b)| {
            let mut b = b.clone();
            if is_client_model(b.provider.name()) {
                b.provider = Arc::new(client::ClientModel::new(b.provider.name(), peer.clone()));
            }
            (k.clone(), b)
        })
        .collect()
}

/// What a call's thread sends to the request's handler, in the order the program did it.
enum Out {
    /// A line the program printed.
    Line(String),
    /// `mcp.progress(done, total, message)`.
    Progress {
        done: f64,
        total: Option<f64>,
        message: Option<String>,
    },
    /// `io.ask(question)`, to be put to the client's user; the answer goes to `reply`.
    Ask {
        question: String,
        reply: std::sync::mpsc::Sender<Result<HostValue, HostError>>,
    },
}

/// The served call's part in its host: progress and questions go to the client, and the run
/// stops when the client cancels.
struct CallEmbedder {
    out: mpsc::UnboundedSender<Out>,
    cancelled: Arc<AtomicBool>,
    /// Whether the client declared elicitation; if not, `io.ask` sees the end of input.
    can_elicit: bool,
}

impl Embedder for CallEmbedder {
    fn perform(&mut self, req: &EffectRequest) -> Option<Result<HostValue, HostError>> {
        match req.native.as_str() {
            "mcp.progress" => Some(self.progress(&req.args)),
            "io.ask" if self.can_elicit => Some(self.ask(&req.args)),
            _ => None,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl CallEmbedder {
    fn progress(&self, args: &[HostValue]) -> Result<HostValue, HostError> {
        let number = |v: Option<&HostValue>| match v.map(|v| &v.data) {
            Some(aivm_vm::HostData::Int(i)) => Some(*i as f64),
            Some(aivm_vm::HostData::Float(f)) if f.is_finite() => Some(*f),
            _ => None,
        };
        let Some(done) = number(args.first()) else {
            return Err(HostError::new(
                "ValueError",
                "mcp.progress: `done` must be a finite number",
            ));
        };
        let total = number(args.get(1));
        let message = args.get(2).and_then(HostValue::as_str).map(str::to_string);
        // The handler is gone only when the call is: nobody to tell.
        let _ = self.out.send(Out::Progress {
            done,
            total,
            message,
        });
        Ok(HostValue::null())
    }

    fn ask(&self, args: &[HostValue]) -> Result<HostValue, HostError> {
        let question = args.first().and_then(HostValue::as_str).unwrap_or("");
        let (reply, answer) = std::sync::mpsc::channel();
        let asked = self.out.send(Out::Ask {
            question: question.to_string(),
            reply,
        });
        if asked.is_err() {
            return Err(HostError::new(
                "IoError",
                "io.ask: no answer: the call has ended",
            ));
        }
        // The VM's thread waits for the person; it looks up now and then for a cancellation.
        loop {
            match answer.recv_timeout(Duration::from_millis(100)) {
                Ok(a) => return a,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !self.cancelled() => {}
                Err(_) => {
                    return Err(HostError::new(
                        "IoError",
                        "io.ask: no answer: the call was cancelled",
                    ))
                }
            }
        }
    }
}

/// The arguments object checked against the parameters: one value per parameter, in order.
fn check_arguments(
    shared: &Shared,
    tool: &Served,
    mut arguments: serde_json::Map<String, Json>,
) -> Result<Vec<aivm_vm::HostValue>, String> {
    // What a client sends is not the server's own word: untrusted, as model output is.
    let label = LabelInfo::untrusted();
    let mut out = Vec::with_capacity(tool.params.len());
    for (name, ty) in &tool.params {
        let missing = !arguments.contains_key(name);
        let value = arguments.remove(name).unwrap_or(Json::Null);
        match convert::argument(&shared.module, *ty, &value, name, &label) {
            Ok(v) => out.push(v),
            Err(_) if missing => return Err(format!("missing argument `{name}`")),
            Err(e) => return Err(format!("argument {e}")),
        }
    }
    if let Some(extra) = arguments.keys().next() {
        return Err(format!(
            "unexpected argument `{extra}` (the tool takes {})",
            if tool.params.is_empty() {
                "none".to_string()
            } else {
                tool.params
                    .iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    Ok(out)
}

/// One call's run, handed to its thread.
struct Call {
    index: usize,
    args: Vec<HostValue>,
    n: u64,
    models: IndexMap<String, ModelBinding>,
    out: mpsc::UnboundedSender<Out>,
    embedder: CallEmbedder,
}

/// One call on its own thread: a fresh VM and host, run to the end or until `cancel`
/// resolves (sent or dropped), which drops the run at its next await.
fn run_call(
    shared: &Shared,
    call: Call,
    cancel: oneshot::Receiver<()>,
) -> Result<HostValue, RunError> {
    let Some(tool) = shared.tools.get(call.index) else {
        return Err(RunError::Link("no such tool".into()));
    };
    let mut vm = Vm::new(&shared.module, shared.limits.clone())?;
    vm.set_jit(shared.jit);
    vm.set_strict_flow(shared.strict_flow);
    vm.start(tool.func, call.args)?;
    let out = Box::new(Lines {
        buf: Vec::new(),
        tx: call.out,
    });
    let mut host = Host::new(shared.policy.clone(), out, Box::new(io::empty()))
        .with_input_cap(shared.input_cap)
        .with_budget(shared.budget.clone())
        .with_models(call.models)
        // Nobody is at a terminal for a served call: asks are refused unless --yes.
        .with_approver(run::approver(&shared.policy, false))
        .with_embedder(Box::new(call.embedder));
    if let Some(hub) = &shared.mcp {
        host = host.with_mcp(hub.fresh());
    }
    if let Some(dir) = &shared.trace_dir {
        let path = dir.join(format!("call-{:04}-{}.jsonl", call.n, tool.name));
        let file = std::fs::File::create(&path).map_err(RunError::Trace)?;
        host = host.with_trace(TraceSink::JsonLines(Box::new(io::LineWriter::new(file))));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    rt.block_on(async {
        tokio::select! {
            r = host.run(&mut vm) => r,
            _ = cancel => Err(RunError::Cancelled),
        }
    })
}

/// The error kind and message of a failed call.
fn failure(e: &RunError) -> (String, String) {
    match e {
        RunError::Vm(VmError::Uncaught { kind, message, .. }) => (kind.clone(), message.clone()),
        RunError::Vm(v @ VmError::FuelExhausted { .. }) => ("FuelExhausted".into(), short(v)),
        RunError::Vm(v @ VmError::StackOverflow { .. }) => ("StackOverflow".into(), short(v)),
        RunError::Vm(v @ VmError::HeapExhausted { .. }) => ("HeapExhausted".into(), short(v)),
        RunError::Vm(v) => ("VmError".into(), v.to_string()),
        RunError::Unlinkable(_) | RunError::Grants(_) => ("PolicyDenied".into(), e.to_string()),
        other => ("HostError".into(), other.to_string()),
    }
}

/// The first line of an error's text (its stack trace left out).
fn short(e: &VmError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The program's standard output, cut into lines for log notifications.
struct Lines {
    buf: Vec<u8>,
    tx: mpsc::UnboundedSender<Out>,
}

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..i]).into_owned();
            // The receiver is gone only when the session is: the output has nowhere to go.
            let _ = self.tx.send(Out::Line(text));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self
                .tx
                .send(Out::Line(String::from_utf8_lossy(&self.buf).into_owned()));
        }
    }
}
