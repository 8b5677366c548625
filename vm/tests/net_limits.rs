//! The limits of the HTTP tools against hostile servers: a body over the cap, a server that
//! trickles, one that hangs up mid-body, too many headers, no server at all. Each ends in a
//! typed error, never a hang or a panic.

mod net_support;

use std::time::{Duration, Instant};

use aivm_vm::host::net::{get, HttpLimits};
use net_support::{body, failure, response, Grants, Reply, Server};

fn small(max_body_bytes: usize) -> HttpLimits {
    HttpLimits {
        max_body_bytes,
        ..HttpLimits::default()
    }
}

fn local() -> Grants {
    Grants::named("127.0.0.1", None)
}

#[tokio::test]
async fn a_body_over_the_cap_is_an_http_error() {
    let srv = Server::fixed(200, &[], &[b'a'; 1001]).await;
    let r = get(&local(), &small(1000), &srv.url("/")).await;
    assert_eq!(failure(&r), ("HttpError".into(), "body_too_large".into()));
    let v = get(&local(), &small(1001), &srv.url("/"))
        .await
        .expect("at the cap");
    assert_eq!(body(&v).len(), 1001);
}

#[tokio::test]
async fn a_body_without_length_stops_at_the_cap() {
    // 4 MiB announced by nothing: the reader must stop at the cap, not at the end.
    let mut raw = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'z', 4 << 20));
    let srv = Server::start(move |_| Reply::Raw(raw.clone())).await;
    let r = get(&local(), &small(64 << 10), &srv.url("/")).await;
    assert_eq!(failure(&r), ("HttpError".into(), "body_too_large".into()));
}

#[tokio::test]
async fn a_trickling_server_hits_the_deadline() {
    let srv = Server::start(|_| Reply::Trickle {
        head: b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_vec(),
        count: 100,
        every: Duration::from_secs(1),
    })
    .await;
    let limits = HttpLimits {
        timeout: Duration::from_millis(1500),
        ..HttpLimits::default()
    };
    let started = Instant::now();
    let r = get(&local(), &limits, &srv.url("/")).await;
    assert_eq!(failure(&r), ("IoError".into(), "timeout".into()));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(took >= Duration::from_millis(1400), "took {took:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_deadline() {
    let srv = Server::start(|_| Reply::Trickle {
        head: Vec::new(),
        count: 1,
        every: Duration::from_secs(30),
    })
    .await;
    let limits = HttpLimits {
        timeout: Duration::from_millis(500),
        ..HttpLimits::default()
    };
    let r = get(&local(), &limits, &srv.url("/")).await;
    assert_eq!(failure(&r), ("IoError".into(), "timeout".into()));
}

#[tokio::test]
async fn a_server_that_hangs_up_mid_body_is_an_io_error() {
    let mut raw = response(200, &[], &[b'a'; 100]);
    raw.truncate(raw.len() - 90);
    let srv = Server::start(move |_| Reply::Raw(raw.clone())).await;
    let r = get(&local(), &HttpLimits::default(), &srv.url("/")).await;
    assert_eq!(failure(&r), ("IoError".into(), "broken".into()));
    let e = r.expect_err("failed");
    assert_eq!(net_support::payload_str(&e, "url"), srv.url("/"));
}

#[tokio::test]
async fn no_server_is_an_io_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let r = get(
        &local(),
        &HttpLimits::default(),
        &format!("http://127.0.0.1:{port}/"),
    )
    .await;
    assert_eq!(failure(&r), ("IoError".into(), "connect".into()));
}

#[tokio::test]
async fn too_many_headers_is_an_http_error() {
    let headers: Vec<(String, String)> = (0..10).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let srv = Server::fixed(200, &refs, b"").await;
    let limits = HttpLimits {
        max_headers: 5,
        ..HttpLimits::default()
    };
    let r = get(&local(), &limits, &srv.url("/")).await;
    assert_eq!(
        failure(&r),
        ("HttpError".into(), "headers_too_large".into())
    );

    let long = "v".repeat(2000);
    let srv = Server::fixed(200, &[("x-long", long.as_str())], b"").await;
    let limits = HttpLimits {
        max_header_bytes: 1000,
        ..HttpLimits::default()
    };
    let r = get(&local(), &limits, &srv.url("/")).await;
    assert_eq!(
        failure(&r),
        ("HttpError".into(), "headers_too_large".into())
    );
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_typed_error() {
    let srv = Server::start(|_| Reply::Raw(b"SSH-2.0-OpenSSH_9.0\r\n\r\n".to_vec())).await;
    let r = get(&local(), &HttpLimits::default(), &srv.url("/")).await;
    assert_eq!(failure(&r), ("HttpError".into(), "protocol".into()));
}
