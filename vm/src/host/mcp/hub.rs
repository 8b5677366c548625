//! [`McpHub`]: one per run. Starts each configured server the first time a call needs it
//! (concurrent first calls share one start), keeps its tool list in step with the server
//! (`notifications/tools/list_changed` makes the next call list again), calls tools under
//! the server's deadline and byte cap, turns progress and stderr into journal events, and
//! stops every child at the end: stdin closed, 300 ms, then its process group killed.

// `roots` is deprecated for protocol versions after 2025-11-25 (SEP-2577); aivm speaks
// 2025-11-25, where servers (the filesystem one) still ask for them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
    GetPromptRequestParams, Implementation, ListRootsResult, ProgressNotificationParam,
    ProgressToken, ProtocolVersion, ReadResourceRequestParams, Root, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, Peer, RoleClient, ServiceError};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::{mpsc, oneshot, OnceCell};

use super::config::{McpConfig, ServerConfig, Transport};
use super::lock::{Lock, LockStatus};
use super::names::{check_tool_name, split_id};
use super::paths::check_paths;
use super::value::{content_of, output_of, prompt_value, resource_value, CallOutput};
use super::{McpError, McpTool};
use crate::host::journal::{Event, McpProgress, McpStart, McpStderr, McpStop};
use crate::host_value::HostValue;
use crate::policy::{Denial, FsGrantLists};

/// The deadline of a start: spawn (or connect), `initialize` and `tools/list`.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a child has to exit after its stdin closes before its group gets SIGTERM, and
/// how long it then has before the group is killed.
const EOF_GRACE: Duration = Duration::from_millis(50);
const EXIT_GRACE: Duration = Duration::from_millis(300);
/// Stderr lines kept per server, and the bytes kept of each.
const MAX_STDERR_LINES: usize = 1000;
const MAX_STDERR_LINE: usize = 1024;

/// Knobs of a hub (the defaults are those of a run).
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// See [`DEFAULT_START_TIMEOUT`].
    pub start_timeout: Duration,
    /// Refuse tools the lock does not pin with their current hash (a run); `false` for the
    /// review commands (`aivm mcp list/call`), which then also send calls of tools the
    /// server does not list, for the server to answer.
    pub enforce_lock: bool,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            start_timeout: DEFAULT_START_TIMEOUT,
            enforce_lock: true,
        }
    }
}

/// A request a server sent that the run answers (spec/mcp.md §Client): the hub forwards it
/// to whoever took [`McpHub::serve_requests`], so that the run's policy, budget, journal and
/// approver stay with their one owner.
#[derive(Debug)]
pub enum ServerRequest {
    /// `sampling/createMessage`, to be served by the run's model `model` (the server's
    /// `sampling` setting). `params` is the request as JSON; the reply is a
    /// `CreateMessageResult` as JSON, or the reason for a JSON-RPC error.
    Sampling {
        server: String,
        model: String,
        params: serde_json::Value,
        reply: oneshot::Sender<Result<serde_json::Value, String>>,
    },
    /// `elicitation/create` (params as JSON); the reply is an `ElicitResult` as JSON.
    Elicitation {
        server: String,
        params: serde_json::Value,
        reply: oneshot::Sender<serde_json::Value>,
    },
}

/// Where servers' requests go, and whether a person can answer elicitations.
#[derive(Clone)]
struct RequestSink {
    tx: mpsc::UnboundedSender<ServerRequest>,
    elicitation: bool,
}

/// The MCP client of a run. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct McpHub {
    inner: Arc<Inner>,
}

/// The one start of a server: its connection, or why it failed.
type Start = Arc<OnceCell<Result<Arc<Conn>, String>>>;

struct Inner {
    cfg: McpConfig,
    base_dir: PathBuf,
    lock: Lock,
    roots: Vec<Root>,
    opts: HubOptions,
    events: Arc<Mutex<Vec<Event>>>,
    /// Server → its one start (the error of a failed start is kept: it is not retried).
    conns: Mutex<HashMap<String, Start>>,
    /// Set by `shutdown`: no server starts after it.
    shut: AtomicBool,
    /// Set by `serve_requests`: servers started after it are offered sampling (where
    /// configured) and elicitation (when a person can answer).
    requests: Mutex<Option<RequestSink>>,
}

impl McpHub {
    /// A hub for the servers of `cfg`; relative `cwd`s are taken from `base_dir` (the config
    /// file's folder); `roots` answer the servers' `roots/list` (as `file://` URIs).
    pub fn new(cfg: &McpConfig, base_dir: &Path, lock: Lock, roots: Vec<PathBuf>) -> McpHub {
        McpHub::with_options(cfg, base_dir, lock, roots, HubOptions::default())
    }

    /// [`McpHub::new`] with other [`HubOptions`].
    pub fn with_options(
        cfg: &McpConfig,
        base_dir: &Path,
        lock: Lock,
        roots: Vec<PathBuf>,
        opts: HubOptions,
    ) -> McpHub {
        let roots = roots
            .iter()
            .filter_map(|p| {
                let url = url::Url::from_file_path(p).ok()?;
                let mut root = Root::new(url.to_string());
                root.name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                Some(root)
            })
            .collect();
        McpHub {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                base_dir: base_dir.to_path_buf(),
                lock,
                roots,
                opts,
                events: Arc::default(),
                conns: Mutex::default(),
                shut: AtomicBool::new(false),
                requests: Mutex::default(),
            }),
        }
    }

    /// A hub with the same servers, lock and roots that has started none of them: for runs
    /// that each need their own connections (each on a runtime of its own).
    pub fn fresh(&self) -> McpHub {
        let i = &self.inner;
        McpHub {
            inner: Arc::new(Inner {
                cfg: i.cfg.clone(),
                base_dir: i.base_dir.clone(),
                lock: i.lock.clone(),
                roots: i.roots.clone(),
                opts: i.opts.clone(),
                events: Arc::default(),
                conns: Mutex::default(),
                shut: AtomicBool::new(false),
                requests: Mutex::default(),
            }),
        }
    }

    /// Takes the servers' `sampling/createMessage` and `elicitation/create` requests from
    /// now on, and offers elicitation to servers started after it when `elicitation` (a
    /// person can be asked). Sampling is offered to the servers configured with
    /// `sampling = MODEL` in any case; without this (the review commands) their requests
    /// are refused with a JSON-RPC error.
    pub fn serve_requests(&self, elicitation: bool) -> mpsc::UnboundedReceiver<ServerRequest> {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock_or_recover(&self.inner.requests) = Some(RequestSink { tx, elicitation });
        rx
    }

    /// The lockfile the hub checks tools against.
    pub fn lock(&self) -> &Lock {
        &self.inner.lock
    }

    /// The configuration of a server.
    pub fn server_config(&self, server: &str) -> Option<&ServerConfig> {
        self.inner.cfg.servers.get(server)
    }

    /// The tools `server` lists (starting it if need be): the usable and the refused ones,
    /// each with its lock status; tools with names against the rules are left out (the
    /// `mcp.start` event names them).
    pub async fn tools(&self, server: &str) -> Result<Vec<McpTool>, McpError> {
        let conn = self.conn(server, "*").await?;
        conn.refresh(&self.inner, "*").await?;
        let tools = lock_or_recover(&conn.tools).accepted.clone();
        Ok(tools)
    }

    /// Checks the `paths` arguments of a call of `id` against the file grants (spec/mcp.md
    /// §Client), before anything is sent, and makes each the absolute path it checked
    /// (relative ones are taken from the run's working directory): a refusal is
    /// `PolicyDenied` with rule `fs`. Ids of servers not configured pass (the call then fails
    /// with `McpError`).
    pub fn check_paths(
        &self,
        id: &str,
        args: &mut serde_json::Map<String, serde_json::Value>,
        grants: &FsGrantLists,
    ) -> Result<(), Denial> {
        let Some((server, tool)) = split_id(id) else {
            return Ok(());
        };
        let Some(cfg) = self.server_config(server) else {
            return Ok(());
        };
        let cwd = std::env::current_dir().unwrap_or_else(|_| self.inner.base_dir.clone());
        check_paths(cfg, id, tool, &cwd, args, grants)
    }

    /// Calls the tool `id` (`SERVER.TOOL`) with `args`. The tool must be listed and (unless
    /// the lock is not enforced) pinned; the call is cancelled at the server's deadline.
    /// `isError` results are [`McpError::Tool`].
    pub async fn call(
        &self,
        id: &str,
        args: serde_json::Map<String, serde_json::Value>,
    ) -> Result<CallOutput, McpError> {
        let Some((server, tool)) = split_id(id) else {
            return Err(McpError::NoSuchTool {
                server: id.to_string(),
                tool: String::new(),
                reason: format!("{id:?} is not an MCP tool id (SERVER.TOOL)"),
            });
        };
        let conn = self.conn(server, tool).await?;
        conn.refresh(&self.inner, tool).await?;
        self.admit(&conn, tool)?;
        conn.call(tool, args).await
    }

    /// Reads the resource `uri` of `server` (`resources/read`), within the server's deadline:
    /// `{contents: [{type: "resource", uri, mime_type, text|blob}]}`, unlabelled.
    pub async fn read_resource(&self, server: &str, uri: &str) -> Result<HostValue, McpError> {
        const WHAT: &str = "resources/read";
        let conn = self.conn(server, WHAT).await?;
        let params = ReadResourceRequestParams::new(uri);
        let result = conn.within(WHAT, conn.peer.read_resource(params)).await?;
        Ok(resource_value(
            &serde_json::to_value(result).unwrap_or_default(),
        ))
    }

    /// Gets the prompt `name` of `server` with `arguments` (`prompts/get`), within the
    /// server's deadline: `{description, messages: [{role, content}]}`, a text message's
    /// content as its text (so the messages can join a conversation), unlabelled.
    pub async fn get_prompt(
        &self,
        server: &str,
        name: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<HostValue, McpError> {
        const WHAT: &str = "prompts/get";
        let conn = self.conn(server, WHAT).await?;
        let mut params = GetPromptRequestParams::new(name);
        params.arguments = Some(arguments);
        let result = conn.within(WHAT, conn.peer.get_prompt(params)).await?;
        Ok(prompt_value(
            &serde_json::to_value(result).unwrap_or_default(),
        ))
    }

    /// Takes the events recorded since the last call (`mcp.start`, `mcp.stderr`,
    /// `mcp.progress`, `mcp.stop`), for the journal.
    pub fn drain_events(&self) -> Vec<Event> {
        std::mem::take(&mut *lock_or_recover(&self.inner.events))
    }

    /// Stops every started server: closes the connection (a child's stdin), waits up to
    /// 300 ms, then kills the child's process group; records `mcp.stop` for each.
    pub async fn shutdown(&self) {
        self.inner.shut.store(true, Ordering::SeqCst);
        let cells: Vec<_> = lock_or_recover(&self.inner.conns)
            .drain()
            .map(|(_, c)| c)
            .collect();
        // All at once: a run ends after its slowest server, not after the sum of them.
        let conns: Vec<Arc<Conn>> = cells
            .iter()
            .filter_map(|cell| match cell.get() {
                Some(Ok(conn)) => Some(conn.clone()),
                _ => None,
            })
            .collect();
        let stopped = futures_util::future::join_all(conns.iter().map(|c| c.stop())).await;
        for (conn, status) in conns.iter().zip(stopped) {
            push(
                &self.inner.events,
                Event::McpStop(McpStop {
                    server: conn.server.clone(),
                    status,
                }),
            );
        }
    }

    /// The process id of a started stdio server's child (for tests and diagnostics).
    pub fn child_pid(&self, server: &str) -> Option<u32> {
        let cell = lock_or_recover(&self.inner.conns).get(server)?.clone();
        match cell.get() {
            Some(Ok(conn)) => conn.pid,
            _ => None,
        }
    }

    fn cwd_of(&self, cfg: &ServerConfig) -> PathBuf {
        match &cfg.transport {
            Transport::Stdio { cwd: Some(c), .. } => self.inner.base_dir.join(c),
            _ => self.inner.base_dir.clone(),
        }
    }

    /// The started connection to `server`, starting it if it is the first use.
    async fn conn(&self, server: &str, tool: &str) -> Result<Arc<Conn>, McpError> {
        let Some(cfg) = self.inner.cfg.servers.get(server) else {
            return Err(McpError::NotConfigured {
                server: server.to_string(),
                tool: tool.to_string(),
            });
        };
        if self.inner.shut.load(Ordering::SeqCst) {
            return Err(McpError::Start {
                server: server.to_string(),
                tool: tool.to_string(),
                reason: "the run's MCP servers were shut down".into(),
            });
        }
        let cell = lock_or_recover(&self.inner.conns)
            .entry(server.to_string())
            .or_default()
            .clone();
        let started = cell
            .get_or_init(|| async {
                let timeout = cfg.start_timeout.unwrap_or(self.inner.opts.start_timeout);
                match tokio::time::timeout(timeout, self.start(server, cfg)).await {
                    Ok(r) => r.map(Arc::new),
                    Err(_) => Err(format!(
                        "no answer to initialize and tools/list within {} ms",
                        timeout.as_millis()
                    )),
                }
            })
            .await;
        match started {
            Ok(c) => Ok(c.clone()),
            Err(reason) => Err(McpError::Start {
                server: server.to_string(),
                tool: tool.to_string(),
                reason: reason.clone(),
            }),
        }
    }

    /// Whether `tool` may be called on `conn`: listed, and pinned when the lock is enforced.
    fn admit(&self, conn: &Conn, tool: &str) -> Result<(), McpError> {
        let server = &conn.server;
        let tools = lock_or_recover(&conn.tools);
        if let Some((_, why)) = tools.rejected.iter().find(|(n, _)| n == tool) {
            return Err(McpError::NoSuchTool {
                server: server.clone(),
                tool: tool.to_string(),
                reason: format!("the server's tool was left out: {why}"),
            });
        }
        let listed = tools.accepted.iter().find(|t| t.name == tool);
        if !self.inner.opts.enforce_lock {
            return Ok(());
        }
        let fix = format!("review it, then run `aivm mcp lock {server}`");
        match listed {
            None => Err(McpError::NoSuchTool {
                server: server.clone(),
                tool: tool.to_string(),
                reason: format!("MCP server `{server}` lists no tool `{tool}`"),
            }),
            Some(t) => match t.status {
                LockStatus::Pinned => Ok(()),
                LockStatus::Changed => Err(McpError::Locked {
                    server: server.clone(),
                    tool: tool.to_string(),
                    reason: format!(
                        "the tool changed since it was approved in aivm.lock (its definition now hashes to {}): {fix}",
                        t.hash
                    ),
                }),
                LockStatus::Unpinned => Err(McpError::Locked {
                    server: server.clone(),
                    tool: tool.to_string(),
                    reason: format!("the tool is not approved in aivm.lock: {fix}"),
                }),
            },
        }
    }

    async fn start(&self, server: &str, cfg: &ServerConfig) -> Result<Conn, String> {
        let t0 = Instant::now();
        let requests = lock_or_recover(&self.inner.requests).clone();
        let state = Arc::new(ServerState {
            server: server.to_string(),
            // Offered as configured, so that the review commands see (and pin) the tools a
            // server lists only to clients that sample; they refuse the requests.
            sampling: cfg.sampling.clone(),
            elicitation: requests.as_ref().is_some_and(|r| r.elicitation),
            requests: requests.map(|r| r.tx),
            roots: self.inner.roots.clone(),
            events: self.inner.events.clone(),
            stale: AtomicBool::new(false),
            progress: Mutex::default(),
            cancelling: Mutex::default(),
        });
        let over_cap = Arc::new(AtomicBool::new(false));
        let handler = Handler(state.clone());
        let (service, child) = match &cfg.transport {
            Transport::Stdio {
                command, args, env, ..
            } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args).env_clear();
                if let Some(path) = std::env::var_os("PATH") {
                    cmd.env("PATH", path);
                }
                cmd.envs(env)
                    .current_dir(self.cwd_of(cfg))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    // Its own process group, so that whatever it spawns is killed with it.
                    .process_group(0);
                let mut child = cmd
                    .spawn()
                    .map_err(|e| format!("cannot run `{command}`: {e}"))?;
                let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
                    return Err("the child's stdin or stdout is missing".into());
                };
                if let Some(stderr) = child.stderr.take() {
                    tokio::spawn(capture_stderr(stderr, state.clone()));
                }
                let mut guard = ChildGuard::new(child);
                let capped = Capped {
                    inner: stdout,
                    limit: cfg.max_result_bytes,
                    line: 0,
                    over: over_cap.clone(),
                };
                // The cap is enforced by `Capped`, which ends the connection instead of
                // dropping the line and leaving the call to its deadline.
                let transport =
                    AsyncRwTransport::new_client(capped, stdin).with_max_line_length(usize::MAX);
                match rmcp::serve_client(handler, transport).await {
                    Ok(s) => (s, Some(guard)),
                    Err(e) => {
                        let note = guard.exit_note().await;
                        // rmcp's error names its own types; what a person needs is that the
                        // server went away, and how.
                        return Err(if note.is_empty() {
                            format!("initialize failed: {e}")
                        } else {
                            format!("the server closed the connection before answering initialize{note}")
                        });
                    }
                }
            }
            Transport::Http { url, headers } => {
                let mut custom = HashMap::new();
                for (k, v) in headers {
                    let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("invalid header name {k:?}"))?;
                    let value = expand_env(v).map_err(|var| {
                        format!("header {k}: the environment variable {var} is not set")
                    })?;
                    let mut value =
                        reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                            format!("header {k}: the value is not a valid header value")
                        })?;
                    value.set_sensitive(true);
                    custom.insert(name, value);
                }
                let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(custom)
                    .max_sse_event_size(cfg.max_result_bytes)
                    .max_json_response_size(cfg.max_result_bytes);
                let transport = StreamableHttpClientTransport::from_config(config);
                let s = rmcp::serve_client(handler, transport)
                    .await
                    .map_err(|e| e.to_string())?;
                (s, None)
            }
        };
        let info = service.peer_info();
        // rmcp takes whatever version the server names; a version no SDK speaks means the two
        // sides cannot agree on the messages.
        if let Some(v) = info.as_ref().map(|i| &i.protocol_version) {
            if !ProtocolVersion::KNOWN_VERSIONS.contains(v) {
                return Err(format!(
                    "the server answered protocol version {v:?}, which aivm does not speak (it asked for {})",
                    ProtocolVersion::V_2025_11_25
                ));
            }
        }
        let conn = Conn {
            server: server.to_string(),
            peer: service.peer().clone(),
            state,
            service: tokio::sync::Mutex::new(Some(service)),
            pid: child.as_ref().and_then(|c| c.pid),
            child: tokio::sync::Mutex::new(child),
            tools: Mutex::default(),
            over_cap,
            timeout: cfg.timeout,
            cap: cfg.max_result_bytes,
        };
        conn.list(&self.inner.lock)
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        let tools = lock_or_recover(&conn.tools);
        push(
            &self.inner.events,
            Event::McpStart(McpStart {
                server: server.to_string(),
                protocol: info
                    .as_ref()
                    .map(|i| i.protocol_version.to_string())
                    .unwrap_or_default(),
                server_info: info
                    .as_ref()
                    .and_then(|i| i.server_info.as_ref())
                    .map(|s| format!("{} {}", s.name, s.version))
                    .unwrap_or_default(),
                tools: tools.accepted.len() as u64,
                ms: t0.elapsed().as_millis() as u64,
                rejected: tools
                    .rejected
                    .iter()
                    .map(|(n, why)| format!("{n:?}: {why}"))
                    .collect(),
            }),
        );
        drop(tools);
        Ok(conn)
    }
}

fn push(events: &Mutex<Vec<Event>>, e: Event) {
    lock_or_recover(events).push(e);
}

/// A poisoned lock only means another thread panicked while holding it; the data (events,
/// lists) stays usable.
fn lock_or_recover<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `${VAR}` replaced by the host's variable; `Err(VAR)` when one is not set.
fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let var = &after[..end];
        out.push_str(&std::env::var(var).map_err(|_| var.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What the client handler shares with the hub, per server.
struct ServerState {
    server: String,
    /// The run's model that serves this server's sampling requests (sampling is offered
    /// only then; requests are refused when nobody serves them).
    sampling: Option<String>,
    /// Whether elicitation is offered.
    elicitation: bool,
    requests: Option<mpsc::UnboundedSender<ServerRequest>>,
    roots: Vec<Root>,
    events: Arc<Mutex<Vec<Event>>>,
    /// The server said its tool list changed: list again before the next call.
    stale: AtomicBool,
    /// Progress token → the tool called with it.
    progress: Mutex<HashMap<ProgressToken, String>>,
    /// Cancellations of abandoned calls being sent, awaited before the connection closes.
    cancelling: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct Handler(Arc<ServerState>);

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.roots = serde_json::from_value(serde_json::json!({})).ok();
        if self.0.sampling.is_some() {
            caps.sampling = serde_json::from_value(serde_json::json!({})).ok();
        }
        if self.0.elicitation {
            caps.elicitation = serde_json::from_value(serde_json::json!({"form": {}})).ok();
        }
        ClientConfig::new(caps, Implementation::new("aivm", env!("CARGO_PKG_VERSION")))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, rmcp::ErrorData> {
        let refuse = |why: String| rmcp::ErrorData::invalid_request(why, None);
        let (Some(tx), Some(model)) = (&self.0.requests, &self.0.sampling) else {
            return Err(refuse(
                "this client does not offer sampling to this server".into(),
            ));
        };
        let params = serde_json::to_value(&params).map_err(|e| refuse(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        tx.send(ServerRequest::Sampling {
            server: self.0.server.clone(),
            model: model.clone(),
            params,
            reply,
        })
        .map_err(|_| refuse("the run has ended".into()))?;
        match answer.await {
            Ok(Ok(result)) => serde_json::from_value(result)
                .map_err(|e| rmcp::ErrorData::internal_error(e.to_string(), None)),
            Ok(Err(why)) => Err(refuse(why)),
            Err(_) => Err(refuse("the run has ended".into())),
        }
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        let declined = || ElicitResult::new(rmcp::model::ElicitationAction::Decline);
        let Some(tx) = self.0.requests.as_ref().filter(|_| self.0.elicitation) else {
            return Ok(declined());
        };
        let Ok(params) = serde_json::to_value(&request) else {
            return Ok(declined());
        };
        let (reply, answer) = oneshot::channel();
        let sent = tx.send(ServerRequest::Elicitation {
            server: self.0.server.clone(),
            params,
            reply,
        });
        if sent.is_err() {
            return Ok(declined());
        }
        Ok(answer
            .await
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_else(declined))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, rmcp::ErrorData> {
        Ok(ListRootsResult::new(self.0.roots.clone()))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let tool = lock_or_recover(&self.0.progress)
            .get(&params.progress_token)
            .cloned();
        // Progress of no call in flight (late, or made up) is not recorded.
        let Some(tool) = tool else { return };
        push(
            &self.0.events,
            Event::McpProgress(McpProgress {
                server: self.0.server.clone(),
                tool,
                progress: params.progress,
                total: params.total,
                message: params.message,
            }),
        );
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.stale.store(true, Ordering::SeqCst);
    }
}

/// The tools of a server as last listed.
#[derive(Default)]
struct ToolList {
    accepted: Vec<McpTool>,
    /// Names left out, with why.
    rejected: Vec<(String, String)>,
}

/// A started server.
struct Conn {
    server: String,
    state: Arc<ServerState>,
    peer: Peer<RoleClient>,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, Handler>>>,
    child: tokio::sync::Mutex<Option<ChildGuard>>,
    pid: Option<u32>,
    tools: Mutex<ToolList>,
    over_cap: Arc<AtomicBool>,
    timeout: Duration,
    cap: usize,
}

impl Conn {
    /// Lists the tools and applies the naming rules and the lock.
    async fn list(&self, lock: &Lock) -> Result<(), String> {
        self.state.stale.store(false, Ordering::SeqCst);
        let listed = tokio::time::timeout(self.timeout, self.peer.list_all_tools())
            .await
            .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))?
            .map_err(|e| self.describe(e))?;
        let mut list = ToolList::default();
        for t in &listed {
            if let Err(why) = check_tool_name(&t.name) {
                list.rejected.push((t.name.to_string(), why));
                continue;
            }
            let folded = t.name.to_ascii_lowercase();
            let twins = listed
                .iter()
                .filter(|u| u.name.to_ascii_lowercase() == folded)
                .count();
            if twins > 1 {
                list.rejected.push((
                    t.name.to_string(),
                    "another tool of the server has the same name but for case".into(),
                ));
                continue;
            }
            list.accepted
                .push(McpTool::from_listed(&self.server, t, lock));
        }
        *lock_or_recover(&self.tools) = list;
        Ok(())
    }

    /// Lists the tools again if the server said they changed.
    async fn refresh(&self, inner: &Inner, tool: &str) -> Result<(), McpError> {
        if !self.state.stale.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.list(&inner.lock)
            .await
            .map_err(|reason| McpError::Call {
                server: self.server.clone(),
                tool: tool.to_string(),
                reason: format!(
                    "listing the tools again (the server said they changed) failed: {reason}"
                ),
            })
    }

    /// A request of `what` that must answer within the server's deadline.
    async fn within<T>(
        &self,
        what: &str,
        request: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, McpError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(McpError::Call {
                server: self.server.clone(),
                tool: what.to_string(),
                reason: self.describe(e),
            }),
            Err(_) => Err(McpError::Deadline {
                server: self.server.clone(),
                tool: what.to_string(),
                secs: self.timeout.as_secs(),
            }),
        }
    }

    fn describe(&self, e: ServiceError) -> String {
        match e {
            ServiceError::McpError(d) => format!("JSON-RPC error {}: {}", d.code.0, d.message),
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                "the server closed the connection (it exited, or sent something that is not JSON-RPC)".into()
            }
            other => other.to_string(),
        }
    }

    async fn call(
        &self,
        tool: &str,
        args: serde_json::Map<String, serde_json::Value>,
    ) -> Result<CallOutput, McpError> {
        let fail = |reason: String| McpError::Call {
            server: self.server.clone(),
            tool: tool.to_string(),
            reason,
        };
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new(tool.to_string()).with_arguments(args),
        ));
        // rmcp cancels the request (notifications/cancelled) when its deadline passes.
        let options = PeerRequestOptions::with_timeout(self.timeout);
        let handle = self
            .peer
            .send_request_with_option(request, options)
            .await
            .map_err(|e| fail(self.describe(e)))?;
        let token = handle.progress_token.clone();
        lock_or_recover(&self.state.progress).insert(token.clone(), tool.to_string());
        // If the run drops this call (its time budget ran out), the server is told to stop.
        let mut abandoned = CancelOnDrop {
            peer: Some(handle.peer.clone()),
            id: handle.id.clone(),
            state: self.state.clone(),
        };
        // A backstop in case the answer never comes back through rmcp's own deadline.
        let answer = tokio::time::timeout(
            self.timeout + Duration::from_secs(1),
            handle.await_response(),
        )
        .await;
        abandoned.peer = None;
        lock_or_recover(&self.state.progress).remove(&token);
        let deadline = || McpError::Deadline {
            server: self.server.clone(),
            tool: tool.to_string(),
            secs: self.timeout.as_secs(),
        };
        // A message over the cap ends the connection; rmcp may then leave the call to its
        // deadline, so the cap is looked at first.
        let too_large = || McpError::TooLarge {
            server: self.server.clone(),
            tool: tool.to_string(),
            limit: self.cap,
        };
        let result = match answer {
            Err(_) | Ok(Err(ServiceError::Timeout { .. }))
                if self.over_cap.load(Ordering::SeqCst) =>
            {
                return Err(too_large())
            }
            Err(_) | Ok(Err(ServiceError::Timeout { .. })) => return Err(deadline()),
            Ok(Err(e)) => {
                if self.over_cap.load(Ordering::SeqCst) {
                    return Err(too_large());
                }
                let reason = match self.child.lock().await.as_mut() {
                    Some(c) => format!("{}{}", self.describe(e), c.exit_note().await),
                    // rmcp's HTTP transport ends without saying why (a body over the cap is
                    // one reason it gives up).
                    None if matches!(e, ServiceError::TransportClosed) => format!(
                        "the HTTP connection closed: the server went away, or sent a message over max_result_bytes ({})",
                        self.cap
                    ),
                    None => self.describe(e),
                };
                return Err(fail(reason));
            }
            Ok(Ok(ServerResult::CallToolResult(r))) => r,
            Ok(Ok(other)) => {
                return Err(fail(format!(
                    "the server answered with something that is not a tool result: {}",
                    serde_json::to_string(&other)
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect::<String>()
                )))
            }
        };
        let json = serde_json::to_value(&result).map_err(|e| fail(e.to_string()))?;
        if result.is_error == Some(true) {
            let (content, message) = content_of(&json);
            return Err(McpError::Tool {
                server: self.server.clone(),
                tool: tool.to_string(),
                content: Box::new(content),
                message,
            });
        }
        Ok(output_of(&json))
    }

    /// Closes the connection and ends the child; returns how it ended.
    async fn stop(&self) -> String {
        // Cancellations of abandoned calls go out before the connection closes.
        let sending: Vec<_> = lock_or_recover(&self.state.cancelling).drain(..).collect();
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            futures_util::future::join_all(sending),
        )
        .await;
        if let Some(service) = self.service.lock().await.take() {
            // Closing the transport closes the child's stdin (or ends the HTTP session).
            let _ = tokio::time::timeout(Duration::from_secs(1), service.cancel()).await;
        }
        match self.child.lock().await.take() {
            Some(mut c) => c.end().await,
            None => "closed".into(),
        }
    }
}

/// A request in flight: dropped before its answer (the call's future was dropped, as when a
/// run's time budget ends the calls in flight), it sends the server
/// `notifications/cancelled` for it. Cleared (`peer: None`) once the answer is in.
struct CancelOnDrop {
    peer: Option<Peer<RoleClient>>,
    id: rmcp::model::RequestId,
    state: Arc<ServerState>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let (Some(peer), Ok(rt)) = (self.peer.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let note = rmcp::model::CancelledNotificationParam::new(
            Some(self.id.clone()),
            Some("the run stopped waiting for it".into()),
        );
        let sending = rt.spawn(async move {
            let _ = peer.notify_cancelled(note).await;
        });
        lock_or_recover(&self.state.cancelling).push(sending);
    }
}

/// A child that is killed, with its process group, when dropped.
struct ChildGuard {
    child: Option<tokio::process::Child>,
    pid: Option<u32>,
}

impl ChildGuard {
    fn new(child: tokio::process::Child) -> ChildGuard {
        ChildGuard {
            pid: child.id(),
            child: Some(child),
        }
    }

    /// `" (the server exited with …)"` when the child has exited or does so within 200 ms.
    async fn exit_note(&mut self) -> String {
        let Some(c) = self.child.as_mut() else {
            return String::new();
        };
        match tokio::time::timeout(Duration::from_millis(200), c.wait()).await {
            Ok(Ok(s)) => format!(" (the server {})", describe_exit(s)),
            _ => String::new(),
        }
    }

    /// Waits [`EXIT_GRACE`] for the child to exit, then kills its group.
    async fn end(&mut self) -> String {
        let Some(mut c) = self.child.take() else {
            return "closed".into();
        };
        // A server that exits at the end of its input is given a moment for that; then the
        // group is asked to terminate (servers that save state on SIGTERM can), and killed
        // if it has not within EXIT_GRACE. A run does not wait on a server's timers.
        let status = match tokio::time::timeout(EOF_GRACE, c.wait()).await {
            Ok(Ok(s)) => describe_exit(s),
            _ => {
                signal_group(self.pid, "TERM");
                match tokio::time::timeout(EXIT_GRACE, c.wait()).await {
                    Ok(Ok(s)) => describe_exit(s),
                    _ => {
                        let _ = c.start_kill();
                        let _ = tokio::time::timeout(Duration::from_secs(1), c.wait()).await;
                        "killed".into()
                    }
                }
            }
        };
        // Whatever it spawned goes too.
        signal_group(self.pid, "KILL");
        status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
            signal_group(self.pid, "KILL");
        }
    }
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "exited".into(),
    }
}

/// Sends SIGNAL (`TERM`, `KILL`) to the process group `pid` leads (the child was made its
/// leader). No `unsafe` here: the `kill` command does it.
fn signal_group(pid: Option<u32>, signal: &str) {
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Reads a child's stderr to its end, recording each line (cut at 1 KiB; the first 1000).
async fn capture_stderr(mut stderr: tokio::process::ChildStderr, state: Arc<ServerState>) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut count = 0usize;
    let emit = |line: &mut Vec<u8>, count: &mut usize| {
        if *count < MAX_STDERR_LINES {
            push(
                &state.events,
                Event::McpStderr(McpStderr {
                    server: state.server.clone(),
                    line: String::from_utf8_lossy(line)
                        .trim_end_matches('\r')
                        .to_string(),
                }),
            );
        }
        *count += 1;
        line.clear();
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                emit(&mut line, &mut count);
            } else if line.len() < MAX_STDERR_LINE {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, &mut count);
    }
}

/// A child's stdout that fails once a line (one JSON-RPC message) grows past `limit` bytes,
/// which ends the connection: rmcp would drop the line and keep waiting.
struct Capped<R> {
    inner: R,
    limit: usize,
    /// Bytes since the last newline.
    line: usize,
    over: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Capped<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.over.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::Error::other("message over max_result_bytes")));
        }
        let before = buf.filled().len();
        let me = &mut *self;
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let mut over = false;
                for &b in &buf.filled()[before..] {
                    if b == b'\n' {
                        me.line = 0;
                    } else {
                        me.line += 1;
                        over |= me.line > me.limit;
                    }
                }
                if over {
                    buf.set_filled(before);
                    me.over.store(true, Ordering::SeqCst);
                    return Poll::Ready(Err(std::io::Error::other(
                        "message over max_result_bytes",
                    )));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion() {
        // PATH is set wherever tests run.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_env("a ${PATH} b").unwrap(), format!("a {path} b"));
        assert_eq!(expand_env("no vars").unwrap(), "no vars");
        assert_eq!(expand_env("open ${x").unwrap(), "open ${x");
        assert_eq!(
            expand_env("${AIVM_SURELY_UNSET_VAR_9}").unwrap_err(),
            "AIVM_SURELY_UNSET_VAR_9"
        );
    }

    #[tokio::test]
    async fn the_cap_ends_the_stream() {
        let data: &[u8] = b"short\nthis line is too long\n";
        let over = Arc::new(AtomicBool::new(false));
        let mut r = Capped {
            inner: data,
            limit: 10,
            line: 0,
            over: over.clone(),
        };
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).await.unwrap_err();
        assert!(e.to_string().contains("max_result_bytes"));
        assert!(over.load(Ordering::SeqCst));
        let mut ok = Capped {
            inner: b"0123456789\n0123456789\n" as &[u8],
            limit: 10,
            line: 0,
            over: Arc::new(AtomicBool::new(false)),
        };
        let mut out = Vec::new();
        ok.read_to_end(&mut out).await.unwrap();
        assert_eq!(out.len(), 22);
    }
}
