//! Linking: before a program's first instruction, everything its manifest declares is
//! checked against the grants, and every missing grant is reported at once with the flag to
//! add (or the deny to remove). A missing grant means the program does not start.
//!
//! Paths are compared lexically here (component by component, never as string prefixes):
//! this is a preflight for messages; the file tools enforce by handle at run time.

use std::fmt;
use std::path::Path;

use super::decide::{native_grant, shown, Kind, NativeGrant};
use std::net::IpAddr;

use super::entry::{absolute, NetEntry, NetHost, Word};
use super::name::valid_tool_name;
use super::resources::NetGrant;
use super::{Access, Call, Origin, Policy};
use crate::label::LabelInfo;

/// A module's manifest as the policy sees it (the host fills it from the bytecode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestView {
    /// Native tools the module imports and program functions it offers to models.
    pub tools: Vec<String>,
    /// Logical model names that need a grant (leave out those bound to a transcript).
    pub models: Vec<String>,
    /// `needs read "PATH"` (relative to the working directory), and so on.
    pub read: Vec<String>,
    pub write: Vec<String>,
    /// `HOST` or `HOST:PORT`.
    pub net: Vec<String>,
    pub run: Vec<String>,
    pub env: Vec<String>,
    pub declassify: bool,
    pub endorse: bool,
}

/// One thing the program needs and does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// What is needed: `network access to api.x.com`, `the tool send_money`.
    pub need: String,
    /// The rule that refuses it (`grant:net` when a grant is missing, `deny:net` or a
    /// user rule id when a deny refuses it).
    pub rule: String,
    /// What to do: `add --allow-net=api.x.com`, `remove --deny-tool=send_*`.
    pub fix: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (rule {})", self.need, self.fix, self.rule)
    }
}

fn missing(need: String, rule: impl Into<String>, fix: String) -> Missing {
    Missing {
        need,
        rule: rule.into(),
        fix,
    }
}

fn remove(o: &Origin) -> String {
    format!("remove {o}")
}

impl Policy {
    /// Everything `m` needs that this policy does not grant, in manifest order (empty:
    /// the program may start).
    pub fn link(&self, m: &ManifestView) -> Vec<Missing> {
        let p = &*self.inner;
        let mut out = Vec::new();
        for t in &m.tools {
            if let Some(x) = self.link_tool(t, m) {
                out.push(x);
            }
        }
        for (kind, list, access) in [
            (Kind::Read, &m.read, &p.read),
            (Kind::Write, &m.write, &p.write),
        ] {
            for s in list {
                out.extend(link_path(&p.cwd, kind, s, access));
            }
        }
        for s in &m.net {
            out.extend(self.link_net(s));
        }
        for (kind, list, access, what) in [
            ("run", &m.run, &p.run, "running the command"),
            ("env", &m.env, &p.env, "the environment variable"),
            ("model", &m.models, &p.model, "the model"),
        ] {
            for s in list {
                out.extend(link_word(kind, what, s, access));
            }
        }
        for (needed, deny, what) in [
            (m.declassify, &p.deny_declassify, "declassify"),
            (m.endorse, &p.deny_endorse, "endorse"),
        ] {
            if let (true, Some(o)) = (needed, deny) {
                out.push(missing(
                    format!("authority to {what} (the program says `needs {what}`)"),
                    format!("deny:{what}"),
                    remove(o),
                ));
            }
        }
        out
    }

    fn link_tool(&self, t: &str, m: &ManifestView) -> Option<Missing> {
        let p = &*self.inner;
        let need = || format!("the tool {t}");
        if !valid_tool_name(t) {
            return Some(missing(
                format!("the tool {}", shown(t)),
                "invalid-tool-name",
                "nothing: it is not a valid tool id, so the program must be rebuilt".into(),
            ));
        }
        if let Some(o) = p.tool_deny_all.as_ref().or_else(|| p.tool_deny.first(t)) {
            return Some(missing(need(), "deny:tool", remove(o)));
        }
        let native = t.contains('.');
        let grant = if native { native_grant(t) } else { None };
        if let Some(NativeGrant::Resource(k)) = grant {
            if let Some(o) = self.deny_all_of(k) {
                return Some(missing(need(), format!("deny:{}", k.name()), remove(o)));
            }
        }
        // A deny rule without conditions refuses every call: the program could not work.
        let mut outright: Option<u32> = None;
        p.deny_rules.each(t, |&i| {
            let unconditional = p.rules.get(i as usize).is_some_and(|r| r.args.is_empty());
            if unconditional && outright.is_none_or(|b| i < b) {
                outright = Some(i);
            }
        });
        if let Some(r) = outright.and_then(|i| p.rules.get(i as usize)) {
            return Some(missing(
                need(),
                r.id.clone(),
                format!("remove or narrow rule `{}` in aivm.toml", r.id),
            ));
        }
        let control = LabelInfo::public();
        let call = Call {
            tool: t,
            args: &[],
            control: &control,
            native,
            audience: None,
        };
        let mut has_rules = false;
        p.pass_rules.each(t, |_| has_rules = true);
        if has_rules || self.grant(&call, grant).is_some() {
            return None;
        }
        match grant {
            Some(NativeGrant::Resource(k)) => {
                let declared = match k {
                    Kind::Read => &m.read,
                    Kind::Write => &m.write,
                    Kind::Net => &m.net,
                    Kind::Run => &m.run,
                    Kind::Env => &m.env,
                };
                // The manifest's own entries of that kind are reported one by one, each with
                // its flag; only a tool with none gets a general message.
                declared.is_empty().then(|| {
                    missing(
                        need(),
                        "grant:tool",
                        format!("add --allow-{}={}", k.name(), k.placeholder()),
                    )
                })
            }
            _ => Some(missing(
                need(),
                "unknown-tool",
                format!("add --allow-tool={t}"),
            )),
        }
    }

    fn link_net(&self, s: &str) -> Option<Missing> {
        let net = &self.inner.net;
        let need = format!("network access to {s}");
        let e = match NetEntry::parse(s) {
            Ok(e) => e,
            Err(msg) => return Some(missing(need, "manifest", format!("nothing: {msg}"))),
        };
        match e.port {
            Some(port) => match self.check_net(&e.host.to_string(), port) {
                Ok(NetGrant::All) if needs_named(&e.host) => Some(missing(
                    need,
                    "grant:net",
                    format!("add --allow-net={e} (a local or private address needs its own grant)"),
                )),
                Ok(_) => None,
                Err(d) if d.rule == "grant:net" => {
                    Some(missing(need, d.rule, format!("add --allow-net={e}")))
                }
                Err(d) => {
                    let o = net.deny_all.as_ref().or_else(|| {
                        net.deny
                            .iter()
                            .find(|(x, _)| x.host == e.host)
                            .map(|(_, o)| o)
                    });
                    Some(missing(need, d.rule, o.map_or(d.reason, remove)))
                }
            },
            // Any port: a grant of the host on one port does not cover it.
            None => {
                let denied = net.deny_all.as_ref().or_else(|| {
                    net.deny
                        .iter()
                        .find(|(x, _)| x.host == e.host && x.port.is_none())
                        .map(|(_, o)| o)
                });
                if let Some(o) = denied {
                    return Some(missing(need, "deny:net", remove(o)));
                }
                let named = net
                    .allow
                    .iter()
                    .any(|(x, _)| x.host == e.host && x.port.is_none());
                let granted = named || net.allow_all.is_some() && !needs_named(&e.host);
                (!granted).then(|| missing(need, "grant:net", format!("add --allow-net={e}")))
            }
        }
    }
}

/// Hosts the HTTP tool reaches only when granted by name, not by a grant of every host:
/// loopback, private, link-local, shared and unspecified addresses, and `localhost`. (The
/// tool checks the address it connects to; this is for linking's messages.)
fn needs_named(host: &NetHost) -> bool {
    match host {
        NetHost::Name(n) => n == "localhost" || n.ends_with(".localhost"),
        NetHost::Ip(IpAddr::V4(ip)) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        NetHost::Ip(IpAddr::V6(ip)) => {
            let [first, ..] = ip.segments();
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

fn link_path(cwd: &Path, kind: Kind, s: &str, a: &Access<std::path::PathBuf>) -> Option<Missing> {
    let verb = if kind == Kind::Read { "read" } else { "write" };
    let need = format!("{verb} access to {s}");
    let text = match super::entry::PathText::parse(s) {
        Ok(t) => t,
        Err(msg) => return Some(missing(need, "manifest", format!("nothing: {msg}"))),
    };
    let path = absolute(cwd, Path::new(text.as_str()));
    let denied = a.deny_all.as_ref().or_else(|| {
        a.deny
            .iter()
            .find(|(d, _)| path.starts_with(d))
            .map(|(_, o)| o)
    });
    if let Some(o) = denied {
        return Some(missing(need, format!("deny:{verb}"), remove(o)));
    }
    let granted = a.allow_all.is_some() || a.allow.iter().any(|(r, _)| path.starts_with(r));
    (!granted).then(|| {
        missing(
            need,
            format!("grant:{verb}"),
            format!("add --allow-{verb}={s}"),
        )
    })
}

fn link_word(kind: &str, what: &str, s: &str, a: &Access<Word>) -> Option<Missing> {
    let need = format!("{what} {}", shown(s));
    let denied = a
        .deny_all
        .as_ref()
        .or_else(|| a.deny.iter().find(|(w, _)| w.as_str() == s).map(|(_, o)| o));
    if let Some(o) = denied {
        return Some(missing(need, format!("deny:{kind}"), remove(o)));
    }
    let granted = a.allow_all.is_some() || a.allow.iter().any(|(w, _)| w.as_str() == s);
    (!granted).then(|| {
        missing(
            need,
            format!("grant:{kind}"),
            format!("add --allow-{kind}={s}"),
        )
    })
}
