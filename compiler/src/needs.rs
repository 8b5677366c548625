//! The syntax of the resources a `needs` item names (spec/language.md, "Capabilities"): what
//! the parser accepts in `needs read "./data"`, `needs net "api.example.com:443"`, ... The
//! checks are about form only; whether a host grants them is the policy's business.

use aivm_vm::format::MAX_RESOURCE_LEN;

/// Whether `text` is a valid resource of `needs KIND`; else the label and help of the error.
pub(crate) fn check(kind: &str, text: &str) -> Result<(), (String, String)> {
    if text.is_empty() {
        return Err((
            "empty".into(),
            format!("name the resource: {}", example(kind)),
        ));
    }
    if text.len() > MAX_RESOURCE_LEN {
        return Err((
            format!("{} bytes long", text.len()),
            format!("a resource is at most {MAX_RESOURCE_LEN} bytes"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err((
            "holds a control character".into(),
            "write the resource without control characters (line breaks, tabs, NUL)".into(),
        ));
    }
    match kind {
        "net" => net(text),
        "run" if text.chars().any(char::is_whitespace) => Err((
            "holds white space".into(),
            "`needs run` names the command alone, e.g. `needs run \"git\"`; its arguments are given when it runs".into(),
        )),
        "env" if !is_env_name(text) => Err((
            "not a variable name".into(),
            "an environment variable name is letters, digits and `_`, not starting with a digit, e.g. `needs env \"HOME\"`".into(),
        )),
        _ => Ok(()),
    }
}

/// An example of the item, for help texts.
pub(crate) fn example(kind: &str) -> &'static str {
    match kind {
        "read" => "`needs read \"./data\"`",
        "write" => "`needs write \"./out\"`",
        "net" => "`needs net \"api.example.com\"` or `needs net \"api.example.com:443\"`",
        "run" => "`needs run \"git\"`",
        _ => "`needs env \"HOME\"`",
    }
}

fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `host` or `host:port`: a lower-case ASCII name (punycode for international names), an IPv4
/// address, or an IPv6 address in brackets; a port from 1 to 65535.
fn net(text: &str) -> Result<(), (String, String)> {
    let bad = |label: &str| {
        Err((
            label.to_string(),
            "write a host name and optionally a port, e.g. `needs net \"api.example.com:443\"` (lower case, international names in punycode, IPv6 in brackets)".to_string(),
        ))
    };
    if text.contains("://") || text.contains('/') {
        return bad("a host, not a URL");
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return bad("unclosed `[`");
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("not an IPv6 address");
        }
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (addr, Some(p)),
                None => return bad("unexpected text after `]`"),
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if let Some(p) = port {
        if !p.bytes().all(|b| b.is_ascii_digit()) || !matches!(p.parse::<u32>(), Ok(1..=65535)) {
            return bad("not a port from 1 to 65535");
        }
    }
    if text.starts_with('[') {
        return Ok(());
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !name_ok {
        return bad("not a lower-case host name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn resources_are_checked_by_kind() {
        for (kind, ok) in [
            ("read", "./data"),
            ("write", "/tmp/out dir"),
            ("net", "api.example.com"),
            ("net", "api.example.com:443"),
            ("net", "127.0.0.1:8080"),
            ("net", "[::1]:8080"),
            ("net", "xn--bcher-kva.de"),
            ("run", "git"),
            ("env", "HOME"),
            ("env", "_X1"),
        ] {
            assert_eq!(check(kind, ok), Ok(()), "{kind} {ok}");
        }
        for (kind, bad) in [
            ("read", ""),
            ("read", "a\nb"),
            ("net", "https://api.example.com"),
            ("net", "API.example.com"),
            ("net", "bücher.de"),
            ("net", "host:0"),
            ("net", "host:99999"),
            ("net", "host:"),
            ("net", "[::1"),
            ("net", "a..b"),
            ("run", "git status"),
            ("env", "1X"),
            ("env", "A-B"),
        ] {
            assert!(check(kind, bad).is_err(), "{kind} {bad:?} accepted");
        }
    }
}
