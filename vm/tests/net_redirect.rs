//! Redirects, followed by hand: every hop is checked from the start (scheme, userinfo, grant,
//! address class) and a refused hop is never connected to; POST becomes GET where browsers
//! make it so; a loop ends after the hop limit.

mod net_support;

use aivm_vm::host::net::{get, post, HttpLimits};
use net_support::{body, denied_rule, failure, redirect, response, Grants, Reply, Server};

/// A server that redirects every request to `location` with `status`.
async fn redirecting(status: u16, location: String) -> Server {
    let bytes = redirect(status, &location);
    Server::start(move |_| Reply::Raw(bytes.clone())).await
}

#[tokio::test]
async fn a_redirect_to_an_ungranted_port_is_refused_at_the_hop() {
    let target = Server::fixed(200, &[], b"should not be reached").await;
    let start = redirecting(302, target.url("/steal")).await;
    let grants = Grants::named("127.0.0.1", Some(start.port()));
    let r = get(&grants, &HttpLimits::default(), &start.url("/")).await;
    assert_eq!(denied_rule(&r), "net:redirect");
    let e = r.expect_err("denied");
    assert!(e.message.contains("grant:net"), "{}", e.message);
    assert!(e.message.contains("/steal"), "{}", e.message);
    assert_eq!(start.requests().len(), 1);
    assert_eq!(target.connections().await, 0);
}

#[tokio::test]
async fn a_redirect_to_loopback_under_a_grant_of_all_is_refused() {
    // The first server is named; the hop goes to a name covered only by "all hosts" that
    // resolves to loopback (the DNS-rebinding-to-internal shape).
    let target = Server::fixed(200, &[], b"internal").await;
    let start = redirecting(301, format!("http://localhost:{}/", target.port())).await;
    let grants = Grants::all().and_named("127.0.0.1", Some(start.port()));
    let r = get(&grants, &HttpLimits::default(), &start.url("/")).await;
    assert_eq!(denied_rule(&r), "net:redirect");
    assert!(r.expect_err("denied").message.contains("net:private"));
    assert_eq!(target.connections().await, 0);
}

#[tokio::test]
async fn every_hop_is_checked_like_the_first() {
    let cases = [
        ("http://169.254.169.254/latest/meta-data/", "net:private"),
        ("file:///etc/passwd", "net:scheme"),
        ("http://ok.com@evil.com/", "net:userinfo"),
        ("http://2130706433/", "net:private"),
    ];
    for (location, inner) in cases {
        let start = redirecting(307, location.to_string()).await;
        let grants = Grants::all().and_named("127.0.0.1", Some(start.port()));
        let r = get(&grants, &HttpLimits::default(), &start.url("/")).await;
        assert_eq!(denied_rule(&r), "net:redirect", "{location}");
        let msg = r.expect_err("denied").message;
        assert!(msg.contains(inner), "{location}: {msg}");
    }
}

#[tokio::test]
async fn granted_hops_are_followed_and_relative_locations_resolved() {
    let srv = Server::start(|seen| {
        Reply::Raw(match seen.target.as_str() {
            "/a" => redirect(301, "/b"),
            "/b" => redirect(308, "c?x=1"),
            _ => response(200, &[], seen.target.as_bytes()),
        })
    })
    .await;
    let v = get(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/a"),
    )
    .await
    .expect("followed");
    assert_eq!(body(&v), "/c?x=1");
    assert_eq!(srv.requests().len(), 3);
}

#[tokio::test]
async fn post_becomes_get_after_303_and_302_but_not_after_307() {
    for (code, method, kept) in [
        (303, "GET", false),
        (302, "GET", false),
        (307, "POST", true),
    ] {
        let srv = Server::start(move |seen| {
            Reply::Raw(if seen.target == "/form" {
                redirect(code, "/done")
            } else {
                response(200, &[], b"done")
            })
        })
        .await;
        post(
            &Grants::named("127.0.0.1", None),
            &HttpLimits::default(),
            &srv.url("/form"),
            "payload",
            "text/plain",
        )
        .await
        .expect("followed");
        let seen = srv.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].method, method, "after {code}");
        assert_eq!(seen[1].body == b"payload", kept, "after {code}");
        assert_eq!(
            seen[1].header("content-type").is_some(),
            kept,
            "after {code}"
        );
    }
}

#[tokio::test]
async fn a_redirect_loop_ends_at_the_hop_limit() {
    let srv = Server::start(|_| Reply::Raw(redirect(302, "/again"))).await;
    let r = get(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
    )
    .await;
    assert_eq!(
        failure(&r),
        ("HttpError".into(), "too_many_redirects".into())
    );
    assert_eq!(srv.requests().len(), 6, "the first request and 5 redirects");

    let limits = HttpLimits {
        max_redirects: 0,
        ..HttpLimits::default()
    };
    let r = get(&Grants::named("127.0.0.1", None), &limits, &srv.url("/")).await;
    assert_eq!(failure(&r).1, "too_many_redirects");
    assert_eq!(srv.requests().len(), 7);

    // More than 5 is not configurable.
    let limits = HttpLimits {
        max_redirects: 50,
        ..HttpLimits::default()
    };
    let r = get(&Grants::named("127.0.0.1", None), &limits, &srv.url("/")).await;
    assert_eq!(failure(&r).1, "too_many_redirects");
    assert_eq!(srv.requests().len(), 13);
}

#[tokio::test]
async fn a_redirect_without_location_is_the_answer() {
    let srv = Server::fixed(302, &[], b"no location").await;
    let v = get(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
    )
    .await
    .expect("an answer");
    assert_eq!(net_support::status(&v), 302);
}

#[tokio::test]
async fn an_unusable_location_is_an_http_error() {
    let srv = redirecting(302, "http://a..b/".into()).await;
    let r = get(
        &Grants::all().and_named("127.0.0.1", None),
        &HttpLimits::default(),
        &srv.url("/"),
    )
    .await;
    assert_eq!(failure(&r), ("HttpError".into(), "bad_redirect".into()));
}

#[tokio::test]
async fn a_body_is_not_resent_to_another_origin() {
    let other = Server::fixed(200, &[], b"other").await;
    for code in [307, 308] {
        let start = redirecting(code, other.url("/collect")).await;
        // Both servers are granted: the refusal is about where the body goes.
        let grants = Grants::named("127.0.0.1", None);
        let r = post(
            &grants,
            &HttpLimits::default(),
            &start.url("/"),
            "secret",
            "text/plain",
        )
        .await;
        assert_eq!(denied_rule(&r), "net:redirect", "after {code}");
        assert!(r.expect_err("denied").message.contains("request body"));
    }
    assert_eq!(other.connections().await, 0);

    // A 303 drops the body, so it may go anywhere granted.
    let start = redirecting(303, other.url("/done")).await;
    post(
        &Grants::named("127.0.0.1", None),
        &HttpLimits::default(),
        &start.url("/"),
        "secret",
        "text/plain",
    )
    .await
    .expect("followed as a GET");
    let seen = other.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].body.len()), ("GET", 0));
}
