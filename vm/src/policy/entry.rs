//! The values of grants: paths, network hosts (with optional port), command and variable
//! names. Each parses from the text a flag or a policy file gives, with a message saying
//! what is wrong, so a bad entry is refused when the policy is loaded.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

/// A path as given (a flag or a file entry); made absolute against a base folder when the
/// policy is built. `~` is not expanded (the shell does that for flags).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct PathText(String);

impl PathText {
    pub fn parse(text: &str) -> Result<PathText, String> {
        if text.is_empty() {
            return Err("a path must not be empty".into());
        }
        if text.contains('\0') {
            return Err(format!("{text:?} contains a NUL byte"));
        }
        if text.starts_with('~') {
            return Err(format!(
                "{text:?}: `~` is not expanded here; write the path out in full"
            ));
        }
        Ok(PathText(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path made absolute against `base` and with `.` components dropped; `..` is kept
    /// (what it means depends on the files, which the tools resolve by handle).
    pub fn absolute(&self, base: &Path) -> PathBuf {
        absolute(base, Path::new(&self.0))
    }
}

/// `path` joined onto `base` when relative, without `.` components or a trailing slash.
pub(crate) fn absolute(base: &Path, path: &Path) -> PathBuf {
    base.join(path)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

impl TryFrom<String> for PathText {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        PathText::parse(&s)
    }
}

/// A command or model name: non-empty, no control characters; compared exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Word(String);

impl Word {
    pub fn parse(text: &str) -> Result<Word, String> {
        if text.is_empty() {
            return Err("a name must not be empty".into());
        }
        if text.chars().any(char::is_control) {
            return Err(format!("{text:?} contains a control character"));
        }
        Ok(Word(text.to_string()))
    }

    /// An environment variable's name: a word without `=`.
    pub fn parse_env(text: &str) -> Result<Word, String> {
        let w = Word::parse(text)?;
        if text.contains('=') {
            return Err(format!("{text:?}: a variable name cannot contain `=`"));
        }
        Ok(w)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Word {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Word::parse(&s)
    }
}

/// An environment variable's name in a policy file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct EnvName(pub Word);

impl TryFrom<String> for EnvName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Word::parse_env(&s).map(EnvName)
    }
}

/// A network host in canonical form: a lower-case ASCII (punycode) name without a trailing
/// dot, or an IP address (IPv4-mapped IPv6 addresses are their IPv4 address).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NetHost {
    Name(String),
    Ip(IpAddr),
}

impl NetHost {
    /// Parses a host as a URL parser does (WHATWG: IDNA to punycode, lower case, numeric
    /// IPv4 forms such as `2130706433` → 127.0.0.1); IPv6 with or without brackets.
    pub fn parse(text: &str) -> Result<NetHost, String> {
        if text.is_empty() {
            return Err("a host must not be empty".into());
        }
        if let Ok(ip) = text.parse::<Ipv6Addr>() {
            return Ok(NetHost::ip(IpAddr::V6(ip)));
        }
        if text.contains('*') {
            return Err(format!(
                "{text:?}: wildcards are not supported in hosts; name each host"
            ));
        }
        let host = url::Host::parse(text).map_err(|e| format!("{text:?} is not a host: {e}"))?;
        Ok(match host {
            url::Host::Domain(d) => {
                let d = d.strip_suffix('.').unwrap_or(&d);
                if d.is_empty() || d.contains('.') && d.split('.').any(str::is_empty) {
                    return Err(format!("{text:?} is not a host name"));
                }
                NetHost::Name(d.to_string())
            }
            url::Host::Ipv4(ip) => NetHost::Ip(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => NetHost::ip(IpAddr::V6(ip)),
        })
    }

    fn ip(ip: IpAddr) -> NetHost {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => NetHost::Ip(IpAddr::V4(v4)),
                None => NetHost::Ip(ip),
            },
            v4 => NetHost::Ip(v4),
        }
    }
}

impl fmt::Display for NetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetHost::Name(n) => f.write_str(n),
            NetHost::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            NetHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// `HOST` (any port) or `HOST:PORT`; IPv6 as `[::1]` or `[::1]:8080`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct NetEntry {
    pub host: NetHost,
    pub port: Option<u16>,
}

impl NetEntry {
    pub fn parse(text: &str) -> Result<NetEntry, String> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(format!("{text:?}: `[` without `]`"));
            };
            let host = inside
                .parse::<Ipv6Addr>()
                .map_err(|_| format!("{text:?}: {inside:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{text:?}: expected `:PORT` after `]`"))?,
                ),
            };
            (NetHost::ip(IpAddr::V6(host)), port)
        } else if text.matches(':').count() > 1 {
            // A bare IPv6 address: no port can be told apart from it.
            let ip = text.parse::<Ipv6Addr>().map_err(|_| {
                format!("{text:?} is not HOST[:PORT] (write IPv6 addresses as [::1]:PORT)")
            })?;
            (NetHost::ip(IpAddr::V6(ip)), None)
        } else {
            match text.split_once(':') {
                Some((h, p)) => (NetHost::parse(h)?, Some(p)),
                None => (NetHost::parse(text)?, None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => return Err(format!("{text:?}: {p:?} is not a port (1-65535)")),
            },
        };
        Ok(NetEntry { host, port })
    }
}

impl TryFrom<String> for NetEntry {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        NetEntry::parse(&s)
    }
}

impl fmt::Display for NetEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> String {
        NetEntry::parse(s).unwrap().to_string()
    }

    #[test]
    fn hosts_are_canonical() {
        assert_eq!(net("API.Example.COM"), "api.example.com");
        assert_eq!(net("api.example.com.:443"), "api.example.com:443");
        assert_eq!(net("bücher.de"), "xn--bcher-kva.de");
        assert_eq!(net("2130706433"), "127.0.0.1");
        assert_eq!(net("0x7f.1"), "127.0.0.1");
        assert_eq!(net("[::1]"), "[::1]");
        assert_eq!(net("[::1]:8080"), "[::1]:8080");
        assert_eq!(net("::1"), "[::1]");
        assert_eq!(net("[::ffff:127.0.0.1]:80"), "127.0.0.1:80");
        assert_eq!(net("10.0.0.1:5432"), "10.0.0.1:5432");
    }

    #[test]
    fn bad_hosts_say_why() {
        for bad in [
            "",
            "a.com:",
            "a.com:0",
            "a.com:65536",
            "a.com:+80",
            "a.com:80:90",
            "*.example.com",
            "[::1",
            "[::1]x",
            "[nope]",
            "ok.com@evil.com",
            "a b.com",
            "a..com",
            ".",
        ] {
            assert!(NetEntry::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_and_words() {
        assert!(PathText::parse("").is_err());
        assert!(PathText::parse("~/.ssh")
            .unwrap_err()
            .contains("not expanded"));
        assert!(PathText::parse("a\0b").is_err());
        let p = PathText::parse("./data/./x/").unwrap();
        assert_eq!(p.absolute(Path::new("/w")), PathBuf::from("/w/data/x"));
        assert_eq!(
            PathText::parse("/abs/../y")
                .unwrap()
                .absolute(Path::new("/w")),
            PathBuf::from("/abs/../y")
        );
        assert!(Word::parse("git").is_ok());
        assert!(Word::parse("").is_err());
        assert!(Word::parse("a\nb").is_err());
        assert!(Word::parse_env("A=B").is_err());
        assert!(Word::parse_env("HOME").is_ok());
    }
}
