//! The native HTTP tools `http.get` and `http.post`: every URL, and every redirect hop, is
//! parsed as a browser would, checked against the host's grant, resolved once, checked again by
//! address class, and fetched from exactly the address that was checked (spec/security-net.md).

mod client;
mod ip_class;
mod url_check;

use std::time::Duration;

use crate::host_value::{HostData, HostError, HostValue};
use crate::policy::Denial;

/// How a host is granted (defined by the policy): a private address needs `Named`.
pub use crate::policy::NetGrant;

/// The grant check the tools ask before any connection. `host` is a lower-case ASCII (punycode)
/// name without a trailing dot, or an IP address's text (IPv6 without brackets); `port` is
/// explicit or the scheme's default.
pub trait NetCheck: Send + Sync {
    fn check_host(&self, host: &str, port: u16) -> Result<NetGrant, Denial>;
}

/// Sizes and deadlines of one tool call, so that no server can hang the host or exhaust its
/// memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// The most bytes of one answer's body; more ends the call with `HttpError`.
    pub max_body_bytes: usize,
    /// The deadline of the whole call: every hop, from resolving the name to the body's end.
    pub timeout: Duration,
    /// The deadline of each connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// The most header lines of one answer.
    pub max_headers: usize,
    /// The most bytes of one answer's header names and values together.
    pub max_header_bytes: usize,
    /// The most redirects followed (5 at most, whatever this says); one more is `HttpError`.
    pub max_redirects: u32,
}

impl Default for HttpLimits {
    /// 10 MiB bodies, 30 s per call, 10 s to connect, 100 headers in 64 KiB, 5 redirects.
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 10 << 20,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_headers: 100,
            max_header_bytes: 64 << 10,
            max_redirects: 5,
        }
    }
}

/// The error kind of a network failure: no address, no connection, a timeout, a connection
/// that broke mid-answer.
pub const IO_ERROR: &str = "IoError";
/// The error kind of an answer that is malformed or over a limit (body, headers, redirects).
pub const HTTP_ERROR: &str = "HttpError";

/// `http.get(url) -> {status, headers, body}`.
///
/// The result is unlabelled: the caller labels it (web content is untrusted by default).
/// Header names are lower-case, in sorted order, repeated headers joined with `", "`; the
/// body is decoded as UTF-8 with each invalid sequence replaced by U+FFFD, whatever charset
/// the answer declares.
pub async fn get(
    check: &dyn NetCheck,
    settings: &HttpLimits,
    url: &str,
) -> Result<HostValue, HostError> {
    const TOOL: &str = "http.get";
    client::fetch(
        check,
        settings,
        &client::SystemDns,
        url,
        client::Request::get(),
    )
    .await
    .map_err(|e| e.into_host_error(TOOL, url))
}

/// `http.post(url, body, content_type) -> {status, headers, body}`: as [`get`], sending `body`
/// with `Content-Type: content_type` (none when it is empty). A 301, 302 or 303 answer is
/// followed with a GET without the body, as browsers do; 307 and 308 repeat the POST.
pub async fn post(
    check: &dyn NetCheck,
    settings: &HttpLimits,
    url: &str,
    body: &str,
    content_type: &str,
) -> Result<HostValue, HostError> {
    const TOOL: &str = "http.post";
    let result = match client::Request::post(body, content_type) {
        Ok(req) => client::fetch(check, settings, &client::SystemDns, url, req).await,
        Err(e) => Err(e),
    };
    result.map_err(|e| e.into_host_error(TOOL, url))
}

/// Why a call failed, before it becomes the program's error value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetError {
    /// The policy refused it: `PolicyDenied`.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// The program's arguments are not a usable request: `ValueError`.
    #[error("{0}")]
    Invalid(String),
    /// `IoError`, with a stable `reason`: dns, connect, timeout, broken.
    #[error("{message}")]
    Io {
        reason: &'static str,
        url: String,
        message: String,
    },
    /// `HttpError`, with a stable `reason`: body_too_large, headers_too_large, bad_redirect,
    /// too_many_redirects, protocol.
    #[error("{message}")]
    Http {
        reason: &'static str,
        url: String,
        message: String,
    },
}

impl NetError {
    /// The program's error value. Io and Http errors carry `{url, reason}` as payload.
    fn into_host_error(self, tool: &str, asked: &str) -> HostError {
        let (kind, reason, url, message) = match self {
            NetError::Denied(d) => return d.into_host_error(tool),
            NetError::Invalid(m) => {
                return HostError::new(
                    crate::error::kind::VALUE,
                    format!("{tool} {}: {m}", shown(asked)),
                )
            }
            NetError::Io {
                reason,
                url,
                message,
            } => (IO_ERROR, reason, url, message),
            NetError::Http {
                reason,
                url,
                message,
            } => (HTTP_ERROR, reason, url, message),
        };
        let payload = HostValue::new(HostData::Record(vec![
            ("url".into(), HostValue::str(url.clone())),
            ("reason".into(), HostValue::str(reason)),
        ]));
        HostError::new(kind, format!("{tool} {}: {message}", shown(&url))).with_payload(payload)
    }
}

/// A URL for a message: quoted, on one line, at most 200 characters.
pub(crate) fn shown(url: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = url
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if url.chars().nth(MAX).is_some() {
        out.push('…');
    }
    format!("{out:?}")
}
