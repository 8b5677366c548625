//! The reference checker: re-judges every effect a run performed, from the journal and the
//! policy the test gave the run, and returns the ones the policy forbids. It is written from
//! spec/security.md and /work/notes/SEC.md, not from the engine: paths are judged by where they
//! really lead on disk after the run (canonical resolution, file identity for denies), URLs by a
//! parser of its own, label conditions on a lower bound of each argument's label that comes
//! from provenance the test knows (distinctive markers placed in every labelled source: when a
//! model's request held a marker, everything the model answered carries that source's label).
//!
//! What it checks for each performed effect (anything but a `PolicyDenied` outcome):
//! - a permitting decision event for it was written before it;
//! - the tool id is valid, and a model's call (`tool.call`) names a tool offered in that turn
//!   and asked for in that answer;
//! - the resource grant: read/write paths under a granted root and not under a denied path (by
//!   identity), hosts granted (loopback/private ones by name only) and not denied, commands and
//!   variables granted; other natives granted by `--allow-tool`/`-A` or by default;
//! - `--deny-tool`, deny rules, and that some allow/ask rule holds when the tool has any;
//! - asks were approved (and `--yes` only approved what it may);
//! - the confidentiality default: every argument's readers include the call's audience;
//! - a model request holding data whose readers exclude `model:NAME` was not sent.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::journal::{Decision, Effect, Event, Journal};
use super::label::Label;
use super::pattern::Pattern;
use super::policy::{Action, Cond, Grant, PolicySpec, Rule};

/// A source of labelled data, recognised by a marker string it always contains.
#[derive(Clone, Debug)]
pub struct Marker {
    pub text: String,
    pub label: Label,
}

/// What the checker knows about the run besides the policy.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    /// The working directory of the run (relative paths and grants are relative to it).
    pub cwd: PathBuf,
    pub markers: Vec<Marker>,
    /// Whether every effect must have a decision event (spec/security.md §7). llm.call is
    /// judged by its readers only.
    pub require_decisions: bool,
}

/// One effect the checker would have refused.
#[derive(Clone, Debug)]
pub struct Violation {
    pub line: usize,
    pub effect: String,
    pub args: String,
    pub why: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut args = self.args.clone();
        if args.len() > 300 {
            let mut cut = 300;
            while !args.is_char_boundary(cut) {
                cut -= 1;
            }
            args.truncate(cut);
            args.push('…');
        }
        write!(
            f,
            "journal line {}: {}({}): {}",
            self.line, self.effect, args, self.why
        )
    }
}

/// The parameter names of the native tools (SEC.md §3).
pub fn native_params(tool: &str) -> &'static [&'static str] {
    match tool {
        "fs.read" | "fs.list" => &["path"],
        "fs.write" => &["path", "text"],
        "http.get" => &["url"],
        "http.post" => &["url", "body", "content_type"],
        "proc.run" => &["cmd", "args"],
        "env.get" => &["name"],
        "io.print" => &["value"],
        "io.ask" => &["question"],
        _ => &[],
    }
}

/// `[A-Za-z0-9_.-]{1,128}`
pub fn valid_tool_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Glob: `*` matches `[A-Za-z0-9_.-]*`, everything else is itself; whole id.
pub fn glob_matches(glob: &str, id: &str) -> bool {
    fn go(g: &[u8], s: &[u8]) -> bool {
        match g.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => {
                let mut i = 0;
                loop {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    match s.get(i) {
                        Some(&c)
                            if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-') =>
                        {
                            i += 1
                        }
                        _ => return false,
                    }
                }
            }
            Some((&c, rest)) => s.first() == Some(&c) && go(rest, &s[1..]),
        }
    }
    go(glob.as_bytes(), id.as_bytes())
}

/// Where `path` leads on disk now, walked one name at a time as the OS would: symlinks
/// followed, `..` taken from the resolved directory. `None` for paths no OS call accepts.
pub fn resolve(cwd: &Path, path: &str) -> Option<PathBuf> {
    walk(cwd, path).map(|w| w.reached)
}

/// A path walked: how far it got, and whether every folder on the way exists (when one does
/// not, `reached` is the last folder that does, and an access there can only fail).
pub struct Walked {
    pub reached: PathBuf,
    pub complete: bool,
}

pub fn walk(cwd: &Path, path: &str) -> Option<Walked> {
    if path.contains('\0') || path.is_empty() {
        return None;
    }
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    let comps: Vec<Component> = abs.components().collect();
    let mut cur = PathBuf::from("/");
    for (i, c) in comps.iter().enumerate() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(name) => {
                let next = cur.join(name);
                if std::fs::symlink_metadata(&next).is_ok() {
                    // Follows links (a dangling one stays as written).
                    cur = std::fs::canonicalize(&next).unwrap_or(next);
                } else if i + 1 == comps.len() {
                    cur = next; // a file the call may create
                } else {
                    return Some(Walked {
                        reached: cur,
                        complete: false,
                    });
                }
            }
        }
    }
    Some(Walked {
        reached: cur,
        complete: true,
    })
}

/// Whether resolved `target` is `root` or beneath it (component-wise, never by string prefix).
fn beneath(target: &Path, root: &Path) -> bool {
    !target
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        && target.starts_with(root)
}

/// Whether `target` or a directory on its way is the file a deny names (by identity: device
/// and inode, so hard links and other spellings are caught too).
fn denied_by(target: &Path, denied: &Path) -> bool {
    if beneath(target, denied) {
        return true;
    }
    let Ok(d) = std::fs::metadata(denied) else {
        return false;
    };
    let mut cur = Some(target);
    while let Some(p) = cur {
        if let Ok(m) = std::fs::metadata(p) {
            if m.dev() == d.dev() && m.ino() == d.ino() {
                return true;
            }
        }
        cur = p.parent();
    }
    false
}

/// A URL's scheme, host and port as the checker reads it: a conservative parser that refuses
/// everything unusual (userinfo, percent-encoding or non-ASCII in the host, numeric IPv4
/// forms other than the dotted quad).
pub fn parse_url(url: &str) -> Result<(String, String, u16), String> {
    let url = url.trim_matches(|c: char| c <= ' ');
    let (scheme, rest) = url.split_once(':').ok_or("no scheme")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(format!("scheme {scheme}")),
    };
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err("userinfo".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("bad IPv6")?;
        (
            format!("[{}]", h.to_ascii_lowercase()),
            after.strip_prefix(':'),
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse::<u16>().map_err(|_| format!("port {p}"))?,
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    if !host.starts_with('[') {
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        {
            return Err(format!("unusual host {host:?}"));
        }
        if let Some(ip) = whatwg_ipv4(&host)? {
            return Ok((scheme, ip.to_string(), port));
        }
    }
    Ok((scheme, host.trim_end_matches('.').to_string(), port))
}

/// The WHATWG IPv4 parser: a host whose last label is numeric is an IPv4 address written in
/// one to four parts, each decimal, octal (leading 0) or hex (0x); `Ok(None)` for a name.
fn whatwg_ipv4(host: &str) -> Result<Option<std::net::Ipv4Addr>, String> {
    let mut parts: Vec<&str> = host.split('.').collect();
    if parts.last() == Some(&"") && parts.len() > 1 {
        parts.pop();
    }
    let number = |p: &str| -> Option<u64> {
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"))
        {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (p, 10)
        };
        if digits.is_empty() {
            return Some(0);
        }
        u64::from_str_radix(digits, radix).ok()
    };
    let last = parts.last().copied().unwrap_or_default();
    if last.is_empty() || number(last).is_none() {
        return Ok(None);
    }
    if parts.len() > 4 {
        return Err(format!("bad IPv4 {host}"));
    }
    let mut nums = Vec::new();
    for p in &parts {
        nums.push(number(p).ok_or_else(|| format!("bad IPv4 part in {host}"))?);
    }
    let (init, tail) = nums.split_at(nums.len() - 1);
    if init.iter().any(|&n| n > 255) || tail[0] >= 256u64.pow(5 - nums.len() as u32) {
        return Err(format!("IPv4 out of range {host}"));
    }
    let mut ip = tail[0];
    for (i, n) in init.iter().enumerate() {
        ip += n << (8 * (3 - i));
    }
    Ok(Some(std::net::Ipv4Addr::from(ip as u32)))
}

/// Loopback, private, link-local, metadata or unspecified: these need a grant by name.
fn special_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match v6.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.to_ipv4_mapped().is_some()
                    || (ip.segments()[0] & 0xfe00) == 0xfc00
                    || (ip.segments()[0] & 0xffc0) == 0xfe80
            }
            Err(_) => true,
        };
    }
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.octets()[0] == 0
                || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
        }
        Err(_) => false,
    }
}

/// Whether a `--allow-net`/`--deny-net` entry names this host and port.
fn net_entry_matches(entry: &str, host: &str, port: u16) -> bool {
    let entry = entry.to_ascii_lowercase();
    if let Ok((_, h, p)) = parse_url(&format!("http://{entry}")) {
        let has_port = entry
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !entry.ends_with(']');
        return h == host && (!has_port || p == port);
    }
    false
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// Every value inside `v`, `v` included.
fn all_values(v: &Value, out: &mut Vec<Value>) {
    out.push(v.clone());
    match v {
        Value::Array(items) => items.iter().for_each(|i| all_values(i, out)),
        Value::Object(m) => m.values().for_each(|i| all_values(i, out)),
        _ => {}
    }
}

/// The state of the model conversation the checker follows through the journal.
#[derive(Default)]
struct Conversation {
    /// Lower bound of the label of the last request (and so of the answer).
    label: Label,
    /// Tools offered in the last request.
    offered: BTreeSet<String>,
    /// Tool names the last answer called.
    called: Vec<String>,
    /// Every value of the last answer's tool-call arguments (to recognise values a tool body
    /// passes on to a native).
    values: Vec<Value>,
    active: bool,
}

/// One performed call as the checker judges it.
struct CallView<'a> {
    tool: &'a str,
    /// The named arguments.
    args: &'a [(String, Value)],
    /// A model's call through the `tool.call` gate (else a native effect).
    gate: bool,
    /// Whether the effect's outcome was `ok`.
    ok: bool,
}

/// The checker.
pub struct Checker<'a> {
    pub policy: &'a PolicySpec,
    pub facts: &'a RunFacts,
}

impl Checker<'_> {
    fn markers_in(&self, text: &str) -> Label {
        self.facts
            .markers
            .iter()
            .filter(|m| text.contains(&m.text))
            .fold(Label::bottom(), |acc, m| acc.join(&m.label))
    }

    fn path_grant(
        &self,
        path: &str,
        grant: &Grant,
        denies: &[String],
        ok: bool,
    ) -> Result<(), String> {
        let Some(walked) = walk(&self.facts.cwd, path) else {
            return Err(format!("path {path:?} is not a path"));
        };
        if !walked.complete && ok {
            return Err(format!(
                "{path:?} succeeded through a folder that does not exist"
            ));
        }
        let target = walked.reached;
        for d in denies {
            if let Some(dp) = resolve(&self.facts.cwd, d) {
                if denied_by(&target, &dp) {
                    return Err(format!("{} is under the denied {d}", target.display()));
                }
            }
        }
        let granted = self.policy.allow_all
            || match grant {
                Grant::None => false,
                Grant::All => true,
                Grant::Some(roots) => roots.iter().any(|r| {
                    resolve(&self.facts.cwd, r).is_some_and(|root| beneath(&target, &root))
                }),
            };
        if granted {
            Ok(())
        } else {
            Err(format!(
                "{} is outside every granted root",
                target.display()
            ))
        }
    }

    fn net_grant(&self, url: &str) -> Result<String, String> {
        let (_, host, port) = parse_url(url)?;
        if self
            .policy
            .deny_net
            .iter()
            .any(|e| net_entry_matches(e, &host, port))
        {
            return Err(format!("{host}:{port} is denied"));
        }
        let named = self
            .policy
            .allow_net
            .items()
            .iter()
            .any(|e| net_entry_matches(e, &host, port));
        let all = self.policy.allow_all || self.policy.allow_net == Grant::All;
        if named || (all && !special_host(&host)) {
            Ok(host)
        } else {
            Err(format!("{host}:{port} is not granted"))
        }
    }

    fn name_grant(&self, name: &str, grant: &Grant, denies: &[String]) -> Result<(), String> {
        if denies.iter().any(|d| d == name) {
            return Err(format!("{name} is denied"));
        }
        let ok = self.policy.allow_all
            || match grant {
                Grant::None => false,
                Grant::All => true,
                Grant::Some(v) => v.iter().any(|g| g == name),
            };
        if ok {
            Ok(())
        } else {
            Err(format!("{name} is not granted"))
        }
    }

    /// The tool grant and the resource check of a call; returns the host's audience
    /// (`net:HOST` for HTTP), if any.
    fn grant(
        &self,
        tool: &str,
        args: &[(String, Value)],
        gate: bool,
        ok: bool,
    ) -> Result<Option<String>, String> {
        let s = |n: &str| {
            args.iter()
                .find(|(k, _)| k == n)
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
                .unwrap_or_default()
        };
        if gate {
            // A program function the program offered (checked by the caller).
            return Ok(None);
        }
        let p = self.policy;
        match tool {
            "fs.read" | "fs.list" => self
                .path_grant(&s("path"), &p.allow_read, &p.deny_read, ok)
                .map(|_| None),
            "fs.write" => self
                .path_grant(&s("path"), &p.allow_write, &p.deny_write, ok)
                .map(|_| None),
            "http.get" | "http.post" => self.net_grant(&s("url")).map(|h| Some(format!("net:{h}"))),
            "proc.run" => self
                .name_grant(&s("cmd"), &p.allow_run, &p.deny_run)
                .map(|_| None),
            "env.get" => self
                .name_grant(&s("name"), &p.allow_env, &p.deny_env)
                .map(|_| None),
            "io.print" | "io.ask" | "io.read_line" | "clock.now" => Ok(None),
            _ => {
                let ok = p.allow_all
                    || p.rules
                        .iter()
                        .any(|r| r.action != Action::Deny && glob_matches(&r.tool, tool))
                    || match &p.allow_tool {
                        Grant::All => true,
                        Grant::Some(g) => g.iter().any(|g| glob_matches(g, tool)),
                        Grant::None => false,
                    };
                if ok {
                    Ok(None)
                } else {
                    Err(format!("{tool} is not granted"))
                }
            }
        }
    }

    /// A value condition's result for an argument (spec/security-policy.md §4.1): `None` is
    /// *unknown* (absent, a type the condition cannot judge).
    fn value_cond(cond: &Cond, v: Option<&Value>) -> Result<Option<bool>, String> {
        let Some(v) = v else { return Ok(None) };
        let same_type =
            |a: &Value, b: &Value| std::mem::discriminant(a) == std::mem::discriminant(b);
        Ok(match cond {
            Cond::Equals(e) => same_type(v, e).then(|| json_eq(v, e)),
            Cond::OneOf(set) => {
                if set.iter().any(|e| same_type(v, e)) {
                    Some(set.iter().any(|e| json_eq(v, e)))
                } else {
                    None
                }
            }
            Cond::Pattern(p) => {
                let pat = Pattern::new(p).map_err(|e| format!("checker: pattern {p}: {e}"))?;
                v.as_str().map(|s| pat.full_match(s))
            }
            Cond::Range(lo, hi) => v
                .as_f64()
                .filter(|_| v.is_number())
                .map(|x| *lo <= x && x <= *hi),
            Cond::Trusted | Cond::ReadersInclude(_) | Cond::Audience(_) => Some(true),
        })
    }

    /// A label condition (§4.2); an absent argument fails.
    fn label_cond(
        cond: &Cond,
        name: &str,
        args: &[(String, Value)],
        label: &dyn Fn(&str) -> Label,
    ) -> bool {
        if !args.iter().any(|(k, _)| k == name) {
            return false;
        }
        let l = label(name);
        match cond {
            Cond::Trusted => !l.untrusted,
            Cond::ReadersInclude(other) => {
                let Some(readers) = &l.readers else {
                    return true;
                };
                let to = args.iter().find(|(k, _)| k == other).map(|(_, v)| v);
                match to {
                    Some(Value::String(p)) => readers.contains(p),
                    Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|p| readers.contains(p))),
                    _ => false,
                }
            }
            Cond::Audience(p) => l.readable_by(p),
            _ => true,
        }
    }

    fn is_label_cond(c: &Cond) -> bool {
        matches!(
            c,
            Cond::Trusted | Cond::ReadersInclude(_) | Cond::Audience(_)
        )
    }

    /// The principals who would see the call's arguments (§5 step 6); `None` when a rule's
    /// `audience_arg` names no strings (the rule fails).
    fn audience(
        tool: &str,
        host: Option<&str>,
        rule: Option<&Rule>,
        args: &[(String, Value)],
    ) -> Option<Vec<String>> {
        if let Some(h) = host {
            return Some(vec![h.to_string()]);
        }
        if let Some(r) = rule {
            if let Some(a) = &r.audience_arg {
                return match args.iter().find(|(k, _)| k == a).map(|(_, v)| v) {
                    Some(Value::String(p)) => Some(vec![p.clone()]),
                    Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect(),
                    ),
                    _ => None,
                };
            }
            if let Some(a) = &r.audience {
                return Some(vec![a.clone()]);
            }
        }
        Some(vec![match tool {
            "io.print" | "io.ask" | "io.read_line" => "user".to_string(),
            _ => format!("tool:{tool}"),
        }])
    }

    /// The confidentiality rule: every argument's readers and the control label's readers
    /// include every audience principal.
    fn confidential(
        args: &[(String, Value)],
        label: &dyn Fn(&str) -> Label,
        control: &Label,
        audience: &[String],
    ) -> Result<(), String> {
        for p in audience {
            for (name, _) in args {
                let l = label(name);
                if !l.readable_by(p) {
                    return Err(format!("argument {name} ({l}) may not reach {p}"));
                }
            }
            if !control.readable_by(p) {
                return Err(format!("the control label ({control}) may not reach {p}"));
            }
        }
        Ok(())
    }

    /// Judges one performed call; `Err` says why it should not have happened.
    fn judge(
        &self,
        call: &CallView<'_>,
        label: &dyn Fn(&str) -> Label,
        control: &Label,
        decision: Option<&Decision>,
    ) -> Result<(), String> {
        let (tool, args, gate, ok) = (call.tool, call.args, call.gate, call.ok);
        // 1. Names.
        if !valid_tool_id(tool) {
            return Err(format!("invalid tool id {tool:?}"));
        }
        // 2. Denies.
        if self.policy.deny_tool.iter().any(|g| glob_matches(g, tool)) {
            return Err("--deny-tool names it".into());
        }
        let rules: Vec<&Rule> = self
            .policy
            .rules
            .iter()
            .filter(|r| glob_matches(&r.tool, tool))
            .collect();
        for r in rules.iter().filter(|r| r.action == Action::Deny) {
            let mut fires = true;
            for (name, conds) in &r.args {
                let v = args.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                for c in conds {
                    if Self::value_cond(c, v)? == Some(false) {
                        fires = false;
                    }
                }
            }
            if fires {
                return Err(format!("deny rule {} fires", r.id));
            }
        }
        // 3. Grant, and the resource check the host makes (with the host's audience).
        let host_audience = self.grant(tool, args, gate, ok)?;
        // 4. Rules.
        let permissive: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.action != Action::Deny)
            .collect();
        let mut ask: Option<Option<&Rule>> = None; // Some(None): --ask; Some(Some(r)): rule r
        let mut label_violation = false;
        if permissive.is_empty() {
            let audience =
                Self::audience(tool, host_audience.as_deref(), None, args).unwrap_or_default();
            Self::confidential(args, label, control, &audience)
                .map_err(|e| format!("readers: {e}"))?;
        } else {
            let mut satisfied: Vec<&Rule> = Vec::new();
            let mut violation: Option<&Rule> = None;
            for r in &permissive {
                let mut values = true;
                let mut labels = !(r.control_trusted && control.untrusted);
                for (name, conds) in &r.args {
                    let v = args.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                    for c in conds {
                        if Self::is_label_cond(c) {
                            labels &= Self::label_cond(c, name, args, label);
                        } else {
                            values &= Self::value_cond(c, v)? == Some(true);
                        }
                    }
                }
                let conf = match Self::audience(tool, host_audience.as_deref(), Some(r), args) {
                    Some(aud) => Self::confidential(args, label, control, &aud).is_ok(),
                    None => false,
                };
                if values && labels && conf {
                    satisfied.push(r);
                } else if values && r.on_label_violation_ask && violation.is_none() {
                    violation = Some(r);
                }
            }
            if let Some(r) = satisfied.iter().find(|r| r.action == Action::Ask) {
                ask = Some(Some(*r));
            } else if satisfied.is_empty() {
                match violation {
                    Some(r) => {
                        ask = Some(Some(r));
                        label_violation = true;
                    }
                    None => {
                        let ids: Vec<&str> = permissive.iter().map(|r| r.id.as_str()).collect();
                        return Err(format!(
                            "no allow/ask rule is satisfied ({})",
                            ids.join(", ")
                        ));
                    }
                }
            }
        }
        // 5. --ask.
        if ask.is_none() && self.policy.ask.iter().any(|g| glob_matches(g, tool)) {
            ask = Some(None);
        }
        if let Some(rule) = ask {
            let approval = decision.and_then(|d| d.approval.as_deref());
            match approval {
                Some("approved") => {}
                Some("auto-approved") => {
                    if !self.policy.yes {
                        return Err("auto-approved without --yes".into());
                    }
                    if let Some(r) = rule {
                        if r.auto_approve != Some(true) {
                            let what = if label_violation {
                                "a label violation of"
                            } else {
                                "an ask of"
                            };
                            return Err(format!(
                                "--yes approved {what} rule {} without auto_approve = true",
                                r.id
                            ));
                        }
                    }
                }
                other => return Err(format!("needed an approval, got {other:?}")),
            }
        }
        Ok(())
    }

    /// Every performed effect of `journal` the policy forbids.
    pub fn check(&self, journal: &Journal) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut conv = Conversation::default();
        let mut decisions: std::collections::HashMap<(u64, u64), &Decision> = Default::default();
        let mut seen_results = String::new();
        for ev in &journal.events {
            let e = match ev {
                Event::Decision(d) => {
                    decisions.insert((d.task, d.seq), d);
                    continue;
                }
                Event::Effect(e) => e,
                Event::Other(_) => continue,
            };
            let decision = decisions.remove(&(e.task, e.seq));
            let mut fail = |why: String| {
                out.push(Violation {
                    line: e.line,
                    effect: e.effect.clone(),
                    args: Value::Array(e.args.clone()).to_string(),
                    why,
                })
            };
            if let Some(d) = decision {
                if !d.permits() && e.performed() {
                    fail(format!(
                        "the decision was {} ({:?}) but the effect's outcome is {}",
                        d.verdict, d.approval, e.outcome
                    ));
                    continue;
                }
            }
            if !e.performed() {
                continue;
            }
            if e.effect == "llm.call" {
                let control = decision.and_then(|d| d.control.as_ref());
                self.follow_llm(e, control, &mut conv, &mut fail);
                continue;
            }
            if self.facts.require_decisions && decision.is_none() {
                fail("performed without a decision event before it".into());
                continue;
            }
            if let Some(r) = &e.result {
                if self
                    .facts
                    .markers
                    .iter()
                    .any(|m| r.to_string().contains(&m.text))
                {
                    seen_results.push_str(&r.to_string());
                }
            }
            self.judge_effect(e, decision, &conv, &seen_results, &mut fail);
        }
        out
    }

    fn follow_llm(
        &self,
        e: &Effect,
        decision_control: Option<&Label>,
        conv: &mut Conversation,
        fail: &mut dyn FnMut(String),
    ) {
        let model = e.arg_str(0).unwrap_or_default().to_string();
        let request = e.args.get(1).cloned().unwrap_or(Value::Null);
        // Data that entered the conversation: every message but the model's own (an
        // assistant message is labelled by the request that produced it, whose messages are
        // all still here; its text may hold a marker the model only guessed).
        let entered: Vec<&Value> = request["messages"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["role"] != "assistant").collect())
            .unwrap_or_default();
        let label = self.markers_in(&serde_json::to_string(&entered).unwrap_or_default());
        let principal = format!("model:{model}");
        if !label.readable_by(&principal) {
            fail(format!(
                "the request holds data ({label}) {principal} may not read"
            ));
        }
        if let Some(c) = decision_control {
            if !c.readable_by(&principal) {
                fail(format!(
                    "the model call's control label ({c}) excludes {principal}"
                ));
            }
        }
        conv.label = label;
        conv.offered = request["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        conv.called.clear();
        conv.values.clear();
        for (name, arguments) in e.llm_tool_calls() {
            conv.called.push(name);
            if let Ok(v) = serde_json::from_str::<Value>(&arguments) {
                all_values(&v, &mut conv.values);
            }
        }
        conv.active = true;
    }

    fn judge_effect(
        &self,
        e: &Effect,
        decision: Option<&Decision>,
        conv: &Conversation,
        seen_results: &str,
        fail: &mut dyn FnMut(String),
    ) {
        let gate = e.effect == "tool.call";
        let (tool, args): (String, Vec<(String, Value)>) = if gate {
            let name = e.arg_str(0).unwrap_or_default().to_string();
            let fields = match e.args.get(1) {
                Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                _ => Vec::new(),
            };
            (name, fields)
        } else {
            let params = native_params(&e.effect);
            let named = e
                .args
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let n = params
                        .get(i)
                        .map_or_else(|| format!("arg{i}"), |p| p.to_string());
                    (n, v.clone())
                })
                .collect();
            (e.effect.clone(), named)
        };
        if gate {
            if !conv.offered.contains(&tool) {
                fail(format!("{tool:?} was not offered in this turn"));
                return;
            }
            if !conv.called.contains(&tool) {
                fail(format!("the model's answer did not call {tool:?}"));
                return;
            }
        }
        // Model-driven: the gate, and effects of the tool bodies it starts (tasks other than
        // main's): their control flow passed through the loop's branch on the answer.
        let model_driven = conv.active && (gate || e.task != 0);
        let control_lb = if model_driven {
            conv.label.clone()
        } else {
            Label::bottom()
        };
        let control = match decision.and_then(|d| d.control.clone()) {
            Some(c) => c.join(&control_lb),
            None => control_lb.clone(),
        };
        let label = |name: &str| -> Label {
            let mut l = Label::bottom();
            let value = args.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            if model_driven {
                let derived = gate
                    || value
                        .is_some_and(|v| conv.values.iter().any(|x| json_eq(x, v) && !x.is_null()));
                if derived || self.policy.strict_flow {
                    l = l.join(&conv.label);
                }
            }
            if self.policy.strict_flow {
                l = l.join(&control_lb);
            }
            if !model_driven {
                // Direct flows the program itself makes: a marker it read earlier, passed on.
                // (In a model's calls a marker may be the model's own guess: there only the
                // request's provenance counts.)
                if let Some(v) = value {
                    let text = v.to_string();
                    for m in &self.facts.markers {
                        if text.contains(&m.text) && seen_results.contains(&m.text) {
                            l = l.join(&m.label);
                        }
                    }
                }
            }
            if let Some(dl) = decision.and_then(|d| d.labels.get(name)) {
                l = l.join(dl);
            }
            l
        };
        let ok = e.outcome == "ok";
        let call = CallView {
            tool: &tool,
            args: &args,
            gate,
            ok,
        };
        if let Err(why) = self.judge(&call, &label, &control, decision) {
            // A call that could not have touched anything (a path or URL no OS or client
            // accepts) is fine when it failed.
            let inert = e.outcome != "ok"
                && (why.contains("is not a path")
                    || why.starts_with("userinfo")
                    || why.starts_with("unusual host")
                    || why.starts_with("bad IPv4")
                    || why.starts_with("IPv4 out of range")
                    || why.starts_with("scheme")
                    || why.starts_with("no scheme")
                    || why.starts_with("port ")
                    || why.starts_with("bad IPv6")
                    || why.starts_with("empty host"));
            if !inert {
                fail(why);
            }
        }
    }
}
