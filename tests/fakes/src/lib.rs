//! Fake model servers for aivm's tests: [`FakeOpenAi`] and [`FakeAnthropic`] listen on
//! 127.0.0.1 (a free port), answer each request with the next scripted [`Reply`] (status,
//! headers, JSON or raw body, SSE chunks, delays, a connection dropped mid-body) and record
//! every request they receive. [`openai`] and [`anthropic`] build bodies and streams in the
//! shapes real servers send, quirks included (see shared/REAL-MODEL.md §3).

pub mod anthropic;
pub mod mcp;
pub mod openai;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::Value;

/// How a fake server answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, sent chunk by chunk (chunked transfer encoding).
    pub chunks: Vec<Bytes>,
    /// Wait this long before the status line.
    pub delay: Duration,
    /// Wait this long before each chunk after the first.
    pub chunk_delay: Duration,
    /// Send only this many chunks, then close the connection without ending the body.
    pub drop_after: Option<usize>,
}

impl Reply {
    /// A JSON body with this status.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::raw(status, "application/json", body.to_string())
    }

    /// Any body, with its content type.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            chunks: vec![body.into()],
            delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            drop_after: None,
        }
    }

    /// A 200 event stream; each chunk is sent as it is (the caller frames the events).
    pub fn sse(chunks: Vec<String>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            chunks: chunks.into_iter().map(Bytes::from).collect(),
            delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            drop_after: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn with_chunk_delay(mut self, delay: Duration) -> Reply {
        self.chunk_delay = delay;
        self
    }

    /// Close the connection after `n` chunks, mid-body. Give the reply a chunk delay too, so
    /// that the head and the first chunks leave before the connection closes (else the
    /// client may see a connection closed before any answer).
    pub fn dropping_after(mut self, n: usize) -> Reply {
        self.drop_after = Some(n);
        self
    }
}

/// One request a fake server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header (the name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    queue: VecDeque<Reply>,
    requests: Vec<RecordedRequest>,
}

type SharedState = Arc<Mutex<Shared>>;

fn lock(s: &SharedState) -> std::sync::MutexGuard<'_, Shared> {
    // A test that panicked while holding the lock leaves consistent data behind.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A scripted HTTP server on 127.0.0.1. It stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    state: SharedState,
    task: tokio::task::JoinHandle<()>,
    /// What to answer when no reply is queued.
    exhausted: Reply,
}

impl FakeServer {
    /// Starts a server on a free port of 127.0.0.1 (inside a tokio runtime).
    pub async fn start(exhausted: Reply) -> std::io::Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state: SharedState = Arc::default();
        let fallback = exhausted.clone();
        let app = Router::new()
            .fallback(move |st: State<SharedState>, req: Request| answer(st, req, fallback.clone()))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            // The server runs until the task is aborted; an accept error ends it early, and
            // then requests fail to connect, which the test sees.
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeServer {
            addr,
            state,
            task,
            exhausted,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues the answer to the next unanswered request.
    pub fn push(&self, reply: Reply) -> &Self {
        lock(&self.state).queue.push_back(reply);
        self
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Replies queued but not yet used.
    pub fn remaining(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// The reply sent when the queue is empty.
    pub fn exhausted_reply(&self) -> &Reply {
        &self.exhausted
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(state): State<SharedState>, req: Request, exhausted: Reply) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let reply = {
        let mut s = lock(&state);
        s.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        s.queue.pop_front().unwrap_or(exhausted)
    };
    respond(reply).await
}

/// Sends a reply: waits its delay, then streams its chunks.
pub async fn respond(reply: Reply) -> Response {
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let keep = reply
        .drop_after
        .unwrap_or(reply.chunks.len())
        .min(reply.chunks.len());
    let drops = reply.drop_after.is_some();
    let gap = reply.chunk_delay;
    let chunks: VecDeque<Bytes> = reply.chunks.into_iter().take(keep).collect();
    let stream = futures_util::stream::unfold(
        (chunks, true, drops),
        move |(mut rest, first, drops)| async move {
            match rest.pop_front() {
                Some(chunk) => {
                    if !first && !gap.is_zero() {
                        tokio::time::sleep(gap).await;
                    }
                    Some((Ok::<Bytes, std::io::Error>(chunk), (rest, false, drops)))
                }
                // An error from the body stream makes the server abort the connection.
                None if drops => {
                    if !gap.is_zero() {
                        tokio::time::sleep(gap).await;
                    }
                    Some((
                        Err(std::io::Error::other("fake server: connection dropped")),
                        (rest, false, false),
                    ))
                }
                None => None,
            }
        },
    );
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// A fake OpenAI-compatible server (`base_url()` ends in `/v1`). With no reply queued it
/// answers 418 with an OpenAI-shaped error, which no client retries.
pub struct FakeOpenAi(FakeServer);

impl FakeOpenAi {
    pub async fn start() -> std::io::Result<FakeOpenAi> {
        let exhausted = Reply::json(
            418,
            &openai::error_body(
                418,
                "fake server: no reply scripted for this request",
                "invalid_request_error",
            ),
        );
        FakeServer::start(exhausted).await.map(FakeOpenAi)
    }

    /// The base URL a provider is configured with: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.0.url())
    }
}

impl std::ops::Deref for FakeOpenAi {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.0
    }
}

/// A fake Anthropic Messages server (`base_url()` has no `/v1`). With no reply queued it
/// answers 418 with an Anthropic-shaped error.
pub struct FakeAnthropic(FakeServer);

impl FakeAnthropic {
    pub async fn start() -> std::io::Result<FakeAnthropic> {
        let exhausted = Reply::json(
            418,
            &anthropic::error_body(
                "invalid_request_error",
                "fake server: no reply scripted for this request",
            ),
        );
        FakeServer::start(exhausted).await.map(FakeAnthropic)
    }

    /// The base URL a provider is configured with: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.0.url()
    }
}

impl std::ops::Deref for FakeAnthropic {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.0
    }
}
