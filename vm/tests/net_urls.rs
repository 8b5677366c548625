//! The URL checks of `http.get`/`http.post` against host confusion (THREATS.md row 21): each
//! spelling is refused with its rule, before any connection (a counting listener stands where
//! the request would have gone).

mod net_support;

use aivm_vm::host::net::{get, post, HttpLimits};
use net_support::{denied_rule, Grants, Server};

async fn listener() -> Server {
    Server::fixed(200, &[], b"reached").await
}

#[tokio::test]
async fn userinfo_is_refused_before_the_grant_is_asked() {
    let grants = Grants::all();
    for url in [
        "https://ok.com@evil.com/",
        "http://user:secret@example.com/",
        "http://:secret@example.com/",
    ] {
        let r = get(&grants, &HttpLimits::default(), url).await;
        assert_eq!(denied_rule(&r), "net:userinfo", "{url}");
        let e = r.expect_err("denied");
        assert!(
            !e.message.contains("secret"),
            "the password is echoed: {}",
            e.message
        );
    }
    assert!(grants.seen().is_empty(), "{:?}", grants.seen());
}

#[tokio::test]
async fn numeric_spellings_of_loopback_need_a_named_grant() {
    let srv = listener().await;
    let port = srv.port();
    for url in [
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::ffff:7f00:1]:{port}/"),
    ] {
        let grants = Grants::all();
        let r = get(&grants, &HttpLimits::default(), &url).await;
        assert_eq!(denied_rule(&r), "net:private", "{url}");
        let asked = &grants.seen()[0];
        assert!(
            asked.0 == "127.0.0.1" || asked.0 == "::ffff:127.0.0.1",
            "{url} was checked as {asked:?}"
        );
        assert_eq!(asked.1, port);
    }
    assert_eq!(srv.connections().await, 0);
}

#[tokio::test]
async fn metadata_and_link_local_addresses_are_refused() {
    let grants = Grants::all();
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest/meta-data",
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://10.0.0.1/",
        "http://192.168.0.1/",
        "http://100.100.100.200/",
        "http://0.0.0.0/",
        "http://[::1]/",
    ] {
        let r = get(&grants, &HttpLimits::default(), url).await;
        assert_eq!(denied_rule(&r), "net:private", "{url}");
    }
    let r = get(&grants, &HttpLimits::default(), "http://169.254.169.254/").await;
    let reason = r.expect_err("denied").message;
    assert!(reason.contains("metadata"), "{reason}");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_needs_a_named_grant() {
    let srv = listener().await;
    let url = format!("http://localhost:{}/", srv.port());
    let r = get(&Grants::all(), &HttpLimits::default(), &url).await;
    assert_eq!(denied_rule(&r), "net:private");
    let e = r.expect_err("denied");
    assert!(
        e.message.contains("resolved from localhost"),
        "{}",
        e.message
    );
    assert_eq!(srv.connections().await, 0);
}

#[tokio::test]
async fn an_idn_homoglyph_does_not_match_the_ascii_grant() {
    // The first letter is CYRILLIC SMALL LETTER A.
    let grants = Grants::named("apple.com", None);
    let r = get(&grants, &HttpLimits::default(), "https://\u{0430}pple.com/").await;
    assert_eq!(denied_rule(&r), "grant:net");
    assert_eq!(grants.seen(), vec![("xn--pple-43d.com".to_string(), 443)]);
}

#[tokio::test]
async fn only_http_and_https_are_fetched() {
    let grants = Grants::all();
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/",
        "data:text/plain,hi",
        "gopher://example.com/",
        "ws://example.com/",
    ] {
        let r = get(&grants, &HttpLimits::default(), url).await;
        assert_eq!(denied_rule(&r), "net:scheme", "{url}");
    }
    assert!(grants.seen().is_empty());
}

#[tokio::test]
async fn a_deny_cannot_be_stepped_around_by_the_absolute_name() {
    let grants = Grants::all().and_denied("evil.com");
    for url in [
        "http://evil.com/",
        "http://EVIL.com./",
        "http://evil%2Ecom/",
    ] {
        let r = get(&grants, &HttpLimits::default(), url).await;
        assert_eq!(denied_rule(&r), "deny:net", "{url}");
    }
}

#[tokio::test]
async fn an_ungranted_host_is_refused_by_the_check_and_nothing_is_sent() {
    let srv = listener().await;
    // Named for another port of the same IP.
    let grants = Grants::named("127.0.0.1", Some(srv.port().wrapping_add(1)));
    let r = get(&grants, &HttpLimits::default(), &srv.url("/")).await;
    assert_eq!(denied_rule(&r), "grant:net");
    let r = post(
        &grants,
        &HttpLimits::default(),
        &srv.url("/"),
        "x",
        "text/plain",
    )
    .await;
    assert_eq!(denied_rule(&r), "grant:net");
    let e = r.expect_err("denied");
    assert_eq!(net_support::payload_str(&e, "tool"), "http.post");
    assert_eq!(srv.connections().await, 0);
}

#[tokio::test]
async fn malformed_urls_are_value_errors() {
    for url in [
        "",
        "example.com",
        "http://",
        "http://1.2.3.4.5/",
        "http://a..b/",
    ] {
        let r = get(&Grants::all(), &HttpLimits::default(), url).await;
        let e = r.expect_err("malformed");
        assert_eq!(e.kind, "ValueError", "{url}: {e:?}");
    }
}
