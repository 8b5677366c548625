//! The checks on a URL before anything is sent: WHATWG parse (IDNA, numeric IPv4 forms), scheme,
//! userinfo, the host grant, and then — on the addresses the name resolved to — the private
//! address rule. Run again on every redirect hop (spec/security-net.md).

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

use super::ip_class::non_public;
use super::{NetCheck, NetError, NetGrant};
use crate::policy::Denial;

/// The longest URL accepted (browsers and servers commonly stop near 8 KiB).
pub(crate) const MAX_URL_BYTES: usize = 8 << 10;

/// A URL that passed every check that needs no DNS: where to connect and under which grant.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    /// The URL to request (a trailing dot of its host name removed).
    pub url: Url,
    /// The host as given to [`NetCheck::check_host`]: a lower-case ASCII name or an IP's text.
    pub host: String,
    /// The address when the host is an IP literal (nothing to resolve).
    pub ip: Option<IpAddr>,
    pub port: u16,
    pub grant: NetGrant,
}

/// Parses `text` and checks scheme, userinfo and the host grant, in that order.
pub(crate) fn check_url(check: &dyn NetCheck, text: &str) -> Result<Checked, NetError> {
    if text.len() > MAX_URL_BYTES {
        return Err(NetError::Invalid(format!(
            "the URL is {} bytes long, more than {MAX_URL_BYTES}",
            text.len()
        )));
    }
    let url = Url::parse(text).map_err(|e| NetError::Invalid(format!("not a URL: {e}")))?;
    check_parsed(check, url)
}

/// The checks of [`check_url`] on a URL already parsed (a redirect's target).
pub(crate) fn check_parsed(check: &dyn NetCheck, mut url: Url) -> Result<Checked, NetError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Denial::new(
            "net:scheme",
            format!(
                "only http and https URLs may be fetched, not {}:",
                url.scheme()
            ),
        )
        .into());
    }
    // A user name or password in a URL is how `https://ok.com@evil.com/` fools a reader into
    // seeing the wrong host; nothing legitimate needs it here. Its text is not repeated.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Denial::new(
            "net:userinfo",
            "the URL carries a user name or password (text before `@`), which is refused",
        )
        .into());
    }
    let (host, ip) = match url.host() {
        Some(Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
        Some(Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
        Some(Host::Domain(name)) => (domain_name(name)?, None),
        None => return Err(NetError::Invalid("the URL has no host".into())),
    };
    if ip.is_none() && url.host_str() != Some(host.as_str()) {
        // `example.com.` is `example.com`: request the name that was checked, so that a deny
        // on a name cannot be stepped around by its absolute spelling.
        url.set_host(Some(&host))
            .map_err(|e| NetError::Invalid(format!("the host {host:?} is not valid: {e}")))?;
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| NetError::Invalid("the URL has no port".into()))?;
    let grant = check.check_host(&host, port)?;
    Ok(Checked {
        url,
        host,
        ip,
        port,
        grant,
    })
}

/// A parsed domain as the policy sees it: the url crate has already lower-cased it and turned
/// Unicode into punycode; one trailing dot (the absolute form) is dropped.
fn domain_name(name: &str) -> Result<String, NetError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.ends_with('.') || name.starts_with('.') || name.contains("..") {
        return Err(NetError::Invalid(format!(
            "the host {name:?} is not a valid name"
        )));
    }
    Ok(name.to_string())
}

/// The private address rule, on every address `checked.host` resolved to: each one must be a
/// public address unless a person named this host in the grant.
pub(crate) fn check_addrs(checked: &Checked, addrs: &[SocketAddr]) -> Result<(), Denial> {
    if checked.grant == NetGrant::Named {
        return Ok(());
    }
    for addr in addrs {
        if let Some(why) = non_public(addr.ip()) {
            let via = if checked.ip.is_some() {
                String::new()
            } else {
                format!(" (resolved from {})", checked.host)
            };
            return Err(Denial::new(
                "net:private",
                format!(
                    "{} is {why}{via}; such addresses are reached only when the grant names the \
                     host (--allow-net={}:{})",
                    addr.ip(),
                    bracketed(&checked.host),
                    checked.port
                ),
            ));
        }
    }
    Ok(())
}

/// A host as written in a URL or a flag: IPv6 in brackets.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Grants everything, remembering what it was asked.
    #[derive(Default)]
    struct All(Mutex<Vec<(String, u16)>>);

    impl NetCheck for All {
        fn check_host(&self, host: &str, port: u16) -> Result<NetGrant, Denial> {
            if let Ok(mut seen) = self.0.lock() {
                seen.push((host.to_string(), port));
            }
            Ok(NetGrant::All)
        }
    }

    fn host_of(url: &str) -> Result<(String, u16), NetError> {
        let c = check_url(&All::default(), url)?;
        Ok((c.host, c.port))
    }

    fn rule(r: Result<Checked, NetError>) -> String {
        match r {
            Err(NetError::Denied(d)) => d.rule,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn hosts_are_what_a_browser_connects_to() {
        let cases = [
            ("http://2130706433/", "127.0.0.1", 80),
            ("http://0x7f.1/", "127.0.0.1", 80),
            ("http://0177.0.0.1:8080/", "127.0.0.1", 8080),
            ("http://127.1/", "127.0.0.1", 80),
            ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", 443),
            ("https://[0:0:0:0:0:0:0:1]:9/", "::1", 9),
            ("https://EXAMPLE.com./x", "example.com", 443),
            ("https://аpple.com/", "xn--pple-43d.com", 443),
            ("https://b%C3%BCcher.de/", "xn--bcher-kva.de", 443),
            ("http://ok.com%2Eevil.com/", "ok.com.evil.com", 80),
        ];
        for (url, host, port) in cases {
            let got = host_of(url).unwrap_or_else(|e| panic!("{url}: {e:?}"));
            assert_eq!(got, (host.to_string(), port), "{url}");
        }
    }

    #[test]
    fn the_request_goes_to_the_checked_name() {
        let c = check_url(&All::default(), "http://Example.COM.:81/a?b#c").expect("valid");
        assert_eq!(c.url.as_str(), "http://example.com:81/a?b#c");
    }

    #[test]
    fn scheme_and_userinfo_are_refused_before_the_grant_is_asked() {
        let check = All::default();
        for (url, want) in [
            ("file:///etc/passwd", "net:scheme"),
            ("ftp://example.com/", "net:scheme"),
            ("javascript:alert(1)", "net:scheme"),
            ("https://ok.com@evil.com/", "net:userinfo"),
            ("https://user:pw@example.com/", "net:userinfo"),
            ("https://:pw@example.com/", "net:userinfo"),
        ] {
            assert_eq!(rule(check_url(&check, url)), want, "{url}");
        }
        assert!(check.0.lock().map(|s| s.is_empty()).unwrap_or(false));
    }

    #[test]
    fn malformed_urls_are_invalid_not_denied() {
        for url in [
            "",
            "not a url",
            "http://",
            "http://1.2.3.4.5/",
            "http://256.0.0.1/",
            "http://[::1/",
            "http://a..b/",
        ] {
            assert!(
                matches!(check_url(&All::default(), url), Err(NetError::Invalid(_))),
                "{url}"
            );
        }
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(matches!(
            check_url(&All::default(), &long),
            Err(NetError::Invalid(_))
        ));
    }

    #[test]
    fn a_named_grant_reaches_private_addresses_and_all_does_not() {
        let mut c = check_url(&All::default(), "http://intranet.example:8080/").expect("valid");
        let addrs: Vec<SocketAddr> = vec![
            "93.184.216.34:8080".parse().expect("valid"),
            "10.0.0.5:8080".parse().expect("valid"),
        ];
        let d = check_addrs(&c, &addrs).expect_err("one address is private");
        assert_eq!(d.rule, "net:private");
        assert!(d.reason.contains("10.0.0.5"), "{}", d.reason);
        assert!(d.reason.contains("intranet.example:8080"), "{}", d.reason);
        assert!(check_addrs(&c, &addrs[..1]).is_ok());
        c.grant = NetGrant::Named;
        assert!(check_addrs(&c, &addrs).is_ok());
    }
}
