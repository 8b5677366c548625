//! `http.get` and `http.post` over real loopback HTTP: what a granted request returns, and the
//! same server refused when only "all hosts" is granted.

mod net_support;

use aivm_vm::host::net::{get, post, HttpLimits};
use net_support::{body, denied_rule, headers, status, Grants, Reply, Server};

#[tokio::test]
async fn a_named_loopback_host_is_fetched() {
    let srv = Server::fixed(
        200,
        &[
            ("X-Multi", "one"),
            ("content-type", "text/plain; charset=utf-8"),
            ("x-multi", "two"),
        ],
        "héllo".as_bytes(),
    )
    .await;
    let grants = Grants::named("127.0.0.1", Some(srv.port()));
    let v = get(&grants, &HttpLimits::default(), &srv.url("/page?q=1#frag"))
        .await
        .expect("granted");
    assert_eq!(status(&v), 200);
    assert_eq!(body(&v), "héllo");
    let hs = headers(&v);
    assert!(
        hs.contains(&("x-multi".into(), "one, two".into())),
        "{hs:?}"
    );
    assert!(hs.contains(&("content-type".into(), "text/plain; charset=utf-8".into())));
    let names: Vec<&str> = hs.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "header names come sorted");
    assert!(v.label.is_public(), "the caller labels the answer");
    let seen = srv.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].target, "/page?q=1", "the fragment is not sent");
    assert!(seen[0]
        .header("user-agent")
        .is_some_and(|u| u.starts_with("aivm/")));
}

#[tokio::test]
async fn the_same_server_is_refused_under_a_grant_of_all_hosts() {
    let srv = Server::fixed(200, &[], b"secret").await;
    let r = get(&Grants::all(), &HttpLimits::default(), &srv.url("/")).await;
    assert_eq!(denied_rule(&r), "net:private");
    assert_eq!(srv.connections().await, 0);
}

#[tokio::test]
async fn a_named_host_name_reaches_loopback_through_its_checked_address() {
    let srv = Server::fixed(200, &[], b"local").await;
    let url = format!("http://localhost:{}/x", srv.port());
    let v = get(
        &Grants::named("localhost", None),
        &HttpLimits::default(),
        &url,
    )
    .await
    .expect("granted by name");
    assert_eq!(body(&v), "local");
    let seen = srv.requests();
    assert_eq!(
        seen[0].header("host"),
        Some(format!("localhost:{}", srv.port()).as_str())
    );
}

#[tokio::test]
async fn post_sends_the_body_and_its_content_type() {
    let srv = Server::fixed(201, &[], b"made").await;
    let grants = Grants::named("127.0.0.1", None);
    let v = post(
        &grants,
        &HttpLimits::default(),
        &srv.url("/items"),
        "{\"a\": 1}",
        "application/json",
    )
    .await
    .expect("granted");
    assert_eq!(status(&v), 201);
    let seen = &srv.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body, b"{\"a\": 1}");
    assert_eq!(seen.header("content-type"), Some("application/json"));

    post(&grants, &HttpLimits::default(), &srv.url("/"), "x", "")
        .await
        .expect("no content type");
    assert_eq!(srv.requests()[1].header("content-type"), None);
}

#[tokio::test]
async fn a_content_type_cannot_smuggle_a_header() {
    let srv = Server::fixed(200, &[], b"").await;
    let r = post(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
        "x",
        "text/plain\r\nx-evil: 1",
    )
    .await;
    assert_eq!(r.expect_err("refused").kind, "ValueError");
    assert_eq!(srv.connections().await, 0);
}

#[tokio::test]
async fn error_statuses_are_answers() {
    let srv = Server::fixed(404, &[], b"nope").await;
    let v = get(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
    )
    .await
    .expect("an answer");
    assert_eq!((status(&v), body(&v)), (404, "nope"));
}

#[tokio::test]
async fn invalid_utf8_becomes_replacement_characters() {
    let srv = Server::fixed(200, &[("x-raw", "caf\u{e9}")], b"ok \xff\xfe end").await;
    let v = get(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
    )
    .await
    .expect("an answer");
    assert_eq!(body(&v), "ok \u{fffd}\u{fffd} end");
    assert!(headers(&v).contains(&("x-raw".into(), "caf\u{e9}".into())));
}

#[tokio::test]
async fn a_body_without_length_is_read_to_the_close() {
    let srv = Server::start(|_| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end".to_vec())
    })
    .await;
    let v = get(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
    )
    .await
    .expect("an answer");
    assert_eq!(body(&v), "until the end");
}

#[tokio::test]
async fn a_chunked_body_is_decoded() {
    let srv = Server::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let v = get(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
    )
    .await
    .expect("an answer");
    assert_eq!(body(&v), "hello world");
}
