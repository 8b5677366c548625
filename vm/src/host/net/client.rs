//! The request loop of the HTTP tools: resolve the checked host once, check every address,
//! connect only to those addresses (a resolver that knows no other name), read the answer
//! within its limits, and follow redirects by hand, checking each hop from the start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use reqwest::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use url::Url;

use super::url_check::{check_addrs, check_parsed, check_url, Checked};
use super::{shown, HttpLimits, NetCheck, NetError};
use crate::host_value::{HostData, HostValue};
use crate::policy::Denial;
use crate::value::Key;

/// The most redirects any call follows, whatever the limits say (spec/security-net.md §3).
const MAX_REDIRECTS: u32 = 5;

/// What to send: a GET, or a POST with its body and content type.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    post: Option<(String, Option<HeaderValue>)>,
}

impl Request {
    pub(crate) fn get() -> Request {
        Request { post: None }
    }

    /// A POST; the content type must be a valid header value (no line breaks or controls).
    pub(crate) fn post(body: &str, content_type: &str) -> Result<Request, NetError> {
        let ct = if content_type.is_empty() {
            None
        } else {
            Some(HeaderValue::from_str(content_type).map_err(|_| {
                NetError::Invalid(format!(
                    "the content type {} is not a valid header value",
                    shown(content_type)
                ))
            })?)
        };
        Ok(Request {
            post: Some((body.to_string(), ct)),
        })
    }
}

/// Name resolution, behind a trait so that tests can play a rebinding DNS server.
pub(crate) trait Lookup: Send + Sync {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver.
pub(crate) struct SystemDns;

impl Lookup for SystemDns {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Performs `req` on `url` within `limits.timeout`, following redirects.
pub(crate) async fn fetch(
    check: &dyn NetCheck,
    limits: &HttpLimits,
    dns: &dyn Lookup,
    url: &str,
    req: Request,
) -> Result<HostValue, NetError> {
    match tokio::time::timeout(limits.timeout, hops(check, limits, dns, url, req)).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Io {
            reason: "timeout",
            url: url.to_string(),
            message: format!(
                "no complete answer within {} ms",
                limits.timeout.as_millis()
            ),
        }),
    }
}

async fn hops(
    check: &dyn NetCheck,
    limits: &HttpLimits,
    dns: &dyn Lookup,
    url: &str,
    mut req: Request,
) -> Result<HostValue, NetError> {
    let mut target = check_url(check, url)?;
    let mut redirects = 0;
    // The URL that redirected to `target`, while following a redirect.
    let mut from: Option<Url> = None;
    loop {
        let addrs = resolve(dns, &target).await?;
        if let Err(d) = check_addrs(&target, &addrs) {
            return Err(match &from {
                Some(prev) => hop_refused(prev, &target.url, d.into()),
                None => d.into(),
            });
        }
        let resp = send(limits, &target, &addrs, &req).await?;
        let Some(next) = redirect_target(&resp, &target.url)? else {
            return read_answer(limits, &target.url, resp).await;
        };
        if redirects >= limits.max_redirects.min(MAX_REDIRECTS) {
            return Err(NetError::Http {
                reason: "too_many_redirects",
                url: target.url.to_string(),
                message: format!(
                    "more than {} redirects (the last to {})",
                    limits.max_redirects.min(MAX_REDIRECTS),
                    shown(next.as_str())
                ),
            });
        }
        redirects += 1;
        let status = resp.status().as_u16();
        // Browsers turn a POST answered by 301, 302 or 303 into a GET without body (Fetch
        // standard, "HTTP-redirect fetch"); 307 and 308 exist to repeat the request as it was.
        if matches!(status, 301..=303) {
            req = Request::get();
        }
        drop(resp);
        let prev = target.url.clone();
        // A body is sent again only where it was allowed to go: the policy judged it for this
        // origin's host, not for wherever the server points.
        if req.post.is_some() && next.origin() != prev.origin() {
            return Err(Denial::new(
                "net:redirect",
                format!(
                    "{} answered {status} to {}, which would send the request body to another \
                     origin; it is not followed",
                    shown(prev.as_str()),
                    shown(next.as_str())
                ),
            )
            .into());
        }
        target = check_parsed(check, next.clone()).map_err(|e| hop_refused(&prev, &next, e))?;
        from = Some(prev);
    }
}

/// A redirect hop that failed its checks: a policy refusal under rule `net:redirect` naming
/// the rule it broke; a target that is no usable URL an `HttpError`.
fn hop_refused(from: &Url, to: &Url, e: NetError) -> NetError {
    match e {
        NetError::Denied(d) => NetError::Denied(Denial::new(
            "net:redirect",
            format!(
                "{} redirected to {}, which is refused: {} (rule {})",
                shown(from.as_str()),
                shown(to.as_str()),
                d.reason,
                d.rule
            ),
        )),
        NetError::Invalid(m) => NetError::Http {
            reason: "bad_redirect",
            url: from.to_string(),
            message: format!("redirected to {}: {m}", shown(to.as_str())),
        },
        other => other,
    }
}

/// The addresses to connect to: the IP literal, or every address the name resolves to.
async fn resolve(dns: &dyn Lookup, target: &Checked) -> Result<Vec<SocketAddr>, NetError> {
    if let Some(ip) = target.ip {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let dns_error = |message: String| NetError::Io {
        reason: "dns",
        url: target.url.to_string(),
        message,
    };
    let addrs = dns
        .lookup(&target.host, target.port)
        .await
        .map_err(|e| dns_error(format!("cannot resolve {}: {e}", target.host)))?;
    if addrs.is_empty() {
        return Err(dns_error(format!("{} has no address", target.host)));
    }
    Ok(addrs)
}

/// A resolver for reqwest that answers only the checked name, with the checked addresses: the
/// connection cannot go anywhere a second DNS answer would send it.
struct Pinned {
    name: String,
    addrs: Vec<SocketAddr>,
}

impl reqwest::dns::Resolve for Pinned {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let answer: Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> =
            if name.as_str().eq_ignore_ascii_case(&self.name) {
                Ok(Box::new(self.addrs.clone().into_iter()))
            } else {
                Err(format!("{} was not checked; it is not resolved", name.as_str()).into())
            };
        Box::pin(std::future::ready(answer))
    }
}

/// Sends one request to one of `addrs` and waits for the answer's head.
async fn send(
    limits: &HttpLimits,
    target: &Checked,
    addrs: &[SocketAddr],
    req: &Request,
) -> Result<reqwest::Response, NetError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would make the connection somewhere else than the
        // address that was checked.
        .no_proxy()
        .connect_timeout(limits.connect_timeout)
        .pool_max_idle_per_host(0)
        .user_agent(concat!("aivm/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(Pinned {
            name: target.host.clone(),
            addrs: addrs.to_vec(),
        }))
        .build()
        .map_err(|e| NetError::Io {
            reason: "connect",
            url: target.url.to_string(),
            message: format!("cannot build an HTTP client: {}", innermost(&e)),
        })?;
    let builder = match &req.post {
        None => client.get(target.url.clone()),
        Some((body, ct)) => {
            let b = client.post(target.url.clone()).body(body.clone());
            match ct {
                Some(ct) => b.header(CONTENT_TYPE, ct.clone()),
                None => b,
            }
        }
    };
    builder
        .send()
        .await
        .map_err(|e| transport_error(&target.url, &e))
}

/// The next URL when `resp` is a redirect with a `Location`, resolved against `base`.
fn redirect_target(resp: &reqwest::Response, base: &Url) -> Result<Option<Url>, NetError> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = resp.headers().get(LOCATION) else {
        return Ok(None);
    };
    let bad = |why: String| NetError::Http {
        reason: "bad_redirect",
        url: base.to_string(),
        message: why,
    };
    let text = std::str::from_utf8(location.as_bytes())
        .map_err(|_| bad("the redirect's Location is not UTF-8".into()))?;
    base.join(text).map(Some).map_err(|e| {
        bad(format!(
            "the redirect's Location {} is not a URL: {e}",
            shown(text)
        ))
    })
}

/// Reads the answer into `{status, headers, body}`, within the header and body limits.
async fn read_answer(
    limits: &HttpLimits,
    url: &Url,
    mut resp: reqwest::Response,
) -> Result<HostValue, NetError> {
    let over = |reason: &'static str, message: String| NetError::Http {
        reason,
        url: url.to_string(),
        message,
    };
    let status = resp.status().as_u16();
    let headers = resp.headers();
    if headers.len() > limits.max_headers {
        return Err(over(
            "headers_too_large",
            format!(
                "the answer has {} header lines, more than {}",
                headers.len(),
                limits.max_headers
            ),
        ));
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(over(
            "headers_too_large",
            format!(
                "the answer's headers take {header_bytes} bytes, more than {}",
                limits.max_header_bytes
            ),
        ));
    }
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        joined
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let too_big = || {
        over(
            "body_too_large",
            format!("the body is larger than {} bytes", limits.max_body_bytes),
        )
    };
    if resp
        .content_length()
        .is_some_and(|n| n > limits.max_body_bytes as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(url, &e))? {
        if body.len().saturating_add(chunk.len()) > limits.max_body_bytes {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    let headers = joined
        .into_iter()
        .map(|(k, v)| (Key::Str(k.into()), HostValue::str(v)))
        .collect();
    Ok(HostValue::new(HostData::Record(vec![
        ("status".into(), HostValue::int(i64::from(status))),
        ("headers".into(), HostValue::new(HostData::Map(headers))),
        (
            "body".into(),
            HostValue::str(String::from_utf8_lossy(&body).into_owned()),
        ),
    ])))
}

/// A failure before the answer's head. The operating system's failures (timeouts, refused or
/// broken connections) are `IoError`; bytes that are no HTTP answer (garbage, a head over
/// hyper's limits, a close before any answer) are `HttpError`.
fn transport_error(url: &Url, e: &reqwest::Error) -> NetError {
    let io = |reason, what: &str| NetError::Io {
        reason,
        url: url.to_string(),
        message: format!("{what}: {}", innermost(e)),
    };
    if e.is_timeout() {
        io("timeout", "no answer in time")
    } else if e.is_connect() {
        io("connect", "cannot connect")
    } else if has_io_cause(e) {
        io("broken", "the connection broke")
    } else {
        NetError::Http {
            reason: "protocol",
            url: url.to_string(),
            message: format!("no valid HTTP answer: {}", innermost(e)),
        }
    }
}

/// A failure while reading the body: the connection broke (or the deadline passed) mid-answer.
fn body_error(url: &Url, e: &reqwest::Error) -> NetError {
    NetError::Io {
        reason: if e.is_timeout() { "timeout" } else { "broken" },
        url: url.to_string(),
        message: format!("the answer broke off: {}", innermost(e)),
    }
}

fn has_io_cause(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The deepest cause of a reqwest error, which says what happened ("Connection refused");
/// the layers above it repeat the URL and name internal stages.
fn innermost(e: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use reqwest::dns::Resolve;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::host::net::NetGrant;

    /// A DNS server that answers `first` once and `later` ever after: a rebinding attack.
    struct Rebinding {
        calls: AtomicUsize,
        first: Vec<SocketAddr>,
        later: Vec<SocketAddr>,
    }

    impl Lookup for Rebinding {
        fn lookup<'a>(
            &'a self,
            _host: &'a str,
            _port: u16,
        ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = if n == 0 { &self.first } else { &self.later };
            Box::pin(std::future::ready(Ok(answer.clone())))
        }
    }

    struct Grant(NetGrant);

    impl NetCheck for Grant {
        fn check_host(&self, _host: &str, _port: u16) -> Result<NetGrant, Denial> {
            Ok(self.0)
        }
    }

    /// A listener on `ip` (port 0 = any) answering "pinned" to each request; counts
    /// connections.
    async fn listener(addr: &str) -> (SocketAddr, std::sync::Arc<AtomicUsize>) {
        let l = TcpListener::bind(addr).await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\npinned")
                        .await;
                });
            }
        });
        (addr, count)
    }

    // Linux routes all of 127.0.0.0/8 to loopback; other systems configure 127.0.0.1 only.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_connection_goes_to_the_address_that_was_checked() {
        // Two loopback addresses on the same port: the checked one, and where a second DNS
        // answer would send the request.
        let (checked, hits) = listener("127.0.0.1:0").await;
        let (rebound, other_hits) = listener(&format!("127.0.0.2:{}", checked.port())).await;
        let dns = Rebinding {
            calls: AtomicUsize::new(0),
            first: vec![checked],
            later: vec![rebound],
        };
        let url = format!("http://rebind.test:{}/", checked.port());
        let v = fetch(
            &Grant(NetGrant::Named),
            &HttpLimits::default(),
            &dns,
            &url,
            Request::get(),
        )
        .await
        .expect("fetched");
        assert_eq!(dns.calls.load(Ordering::SeqCst), 1, "one lookup per hop");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(other_hits.load(Ordering::SeqCst), 0);
        assert!(format!("{v:?}").contains("pinned"));
    }

    #[tokio::test]
    async fn one_private_address_among_public_ones_is_refused() {
        let (local, hits) = listener("127.0.0.1:0").await;
        let public: SocketAddr = format!("93.184.216.34:{}", local.port())
            .parse()
            .expect("valid");
        let dns = Rebinding {
            calls: AtomicUsize::new(0),
            first: vec![public, local],
            later: vec![local],
        };
        let url = format!("http://mixed.test:{}/", local.port());
        let r = fetch(
            &Grant(NetGrant::All),
            &HttpLimits::default(),
            &dns,
            &url,
            Request::get(),
        )
        .await;
        match r {
            Err(NetError::Denied(d)) => assert_eq!(d.rule, "net:private"),
            other => panic!("expected a denial, got {other:?}"),
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_pinned_resolver_knows_only_the_checked_name() {
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("valid");
        let pinned = Pinned {
            name: "ok.test".into(),
            addrs: vec![addr],
        };
        let name = |s: &str| s.parse::<reqwest::dns::Name>().expect("a name");
        let got: Vec<SocketAddr> = pinned
            .resolve(name("OK.test"))
            .await
            .expect("pinned")
            .collect();
        assert_eq!(got, vec![addr]);
        assert!(pinned.resolve(name("evil.test")).await.is_err());
    }
}
