//! What the network tool tests share: a tiny HTTP/1.1 server on loopback that counts every
//! connection and request and answers with raw bytes (so a test can send anything, slowly or
//! cut short), and a `NetCheck` with explicit grants that records what it was asked.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aivm_vm::host::net::{NetCheck, NetGrant};
use aivm_vm::policy::Denial;
use aivm_vm::{HostData, HostError, HostValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers.
pub enum Reply {
    /// These bytes, then close.
    Raw(Vec<u8>),
    /// `head`, then `count` bytes one at a time every `every`.
    Trickle {
        head: Vec<u8>,
        count: usize,
        every: Duration,
    },
}

type Answer = dyn Fn(&Seen) -> Reply + Send + Sync;

pub struct Server {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// A server on 127.0.0.1 answering each request with `answer`.
    pub async fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, answer.clone(), r.clone()));
            }
        });
        Server {
            addr,
            connections,
            requests,
        }
    }

    /// A server that answers every request with `response(status, headers, body)`.
    pub async fn fixed(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Server {
        let bytes = response(status, headers, body);
        Server::start(move |_| Reply::Raw(bytes.clone())).await
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far (after a short pause, so that one the kernel has completed
    /// but the accept loop has not yet seen is counted).
    pub async fn connections(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn serve(mut stream: TcpStream, answer: Arc<Answer>, requests: Arc<Mutex<Vec<Seen>>>) {
    let Some(seen) = read_request(&mut stream).await else {
        return;
    };
    let reply = answer(&seen);
    if let Ok(mut r) = requests.lock() {
        r.push(seen);
    }
    match reply {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
        }
        Reply::Trickle { head, count, every } => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            for _ in 0..count {
                tokio::time::sleep(every).await;
                if stream.write_all(b"x").await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

/// A whole HTTP/1.1 answer with a Content-Length, closing the connection.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A redirect answer.
pub fn redirect(status: u16, location: &str) -> Vec<u8> {
    response(status, &[("location", location)], b"")
}

/// Grants by host (and optionally port), recording each question.
#[derive(Default)]
pub struct Grants {
    /// Hosts a person named: `(host, None)` any port, `(host, Some(p))` that port.
    pub named: Vec<(String, Option<u16>)>,
    /// Every other host is granted as part of "all hosts".
    pub all: bool,
    /// Hosts refused outright (deny wins).
    pub denied: Vec<String>,
    seen: Mutex<Vec<(String, u16)>>,
}

impl Grants {
    pub fn all() -> Grants {
        Grants {
            all: true,
            ..Grants::default()
        }
    }

    pub fn named(host: &str, port: Option<u16>) -> Grants {
        Grants::default().and_named(host, port)
    }

    pub fn and_named(mut self, host: &str, port: Option<u16>) -> Grants {
        self.named.push((host.to_string(), port));
        self
    }

    pub fn and_denied(mut self, host: &str) -> Grants {
        self.denied.push(host.to_string());
        self
    }

    /// Every question asked so far: (host, port).
    pub fn seen(&self) -> Vec<(String, u16)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl NetCheck for Grants {
    fn check_host(&self, host: &str, port: u16) -> Result<NetGrant, Denial> {
        if let Ok(mut s) = self.seen.lock() {
            s.push((host.to_string(), port));
        }
        if self.denied.iter().any(|d| d == host) {
            return Err(Denial::new("deny:net", format!("{host} is denied")));
        }
        if self
            .named
            .iter()
            .any(|(h, p)| h == host && p.is_none_or(|p| p == port))
        {
            return Ok(NetGrant::Named);
        }
        if self.all {
            return Ok(NetGrant::All);
        }
        Err(Denial::new(
            "grant:net",
            format!("{host}:{port} is not granted"),
        ))
    }
}

/// A field of a record value.
pub fn field<'a>(v: &'a HostValue, name: &str) -> &'a HostValue {
    match &v.data {
        HostData::Record(fields) => fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, x)| x)
            .unwrap_or_else(|| panic!("no field {name} in {v:?}")),
        _ => panic!("not a record: {v:?}"),
    }
}

pub fn status(v: &HostValue) -> i64 {
    match field(v, "status").data {
        HostData::Int(i) => i,
        ref other => panic!("status is {other:?}"),
    }
}

pub fn body(v: &HostValue) -> &str {
    field(v, "body").as_str().expect("body is a string")
}

/// The headers map as (name, value) pairs, in order.
pub fn headers(v: &HostValue) -> Vec<(String, String)> {
    match &field(v, "headers").data {
        HostData::Map(pairs) => pairs
            .iter()
            .map(|(k, x)| {
                let k = match k {
                    aivm_vm::Key::Str(s) => s.to_string(),
                    aivm_vm::Key::Int(i) => i.to_string(),
                };
                (
                    k,
                    x.as_str().expect("header values are strings").to_string(),
                )
            })
            .collect(),
        other => panic!("headers are {other:?}"),
    }
}

/// The rule of a `PolicyDenied` error (panics on anything else, showing it).
pub fn denied_rule(r: &Result<HostValue, HostError>) -> String {
    match r {
        Err(e) if e.kind == "PolicyDenied" => payload_str(e, "rule"),
        other => panic!("expected PolicyDenied, got {other:?}"),
    }
}

/// A string field of an error's payload.
pub fn payload_str(e: &HostError, name: &str) -> String {
    let p = e
        .payload
        .as_deref()
        .unwrap_or_else(|| panic!("no payload: {e:?}"));
    field(p, name).as_str().unwrap_or_default().to_string()
}

/// The (kind, payload reason) of an Io or Http error.
pub fn failure(r: &Result<HostValue, HostError>) -> (String, String) {
    match r {
        Err(e) => (e.kind.clone(), payload_str(e, "reason")),
        Ok(v) => panic!("expected a failure, got {v:?}"),
    }
}
