//! `PolicyBuilder`: merges `[policy]`, a chosen `[permissions.NAME]` and the flags into one
//! compiled `Policy`. Allows are united, denies are united, and nothing an allow adds can
//! remove a deny (the decision checks denies first).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::entry::{NetEntry, NetHost, PathText, Word};
use super::file::{Action, GrantValue, LabelConfig, LabelSelector, PolicyConfig, PolicySection};
use super::flags::GrantFlags;
use super::labels::{LabelEntry, Selector};
use super::name::ToolPattern;
use super::{Access, Inner, Origin, Policy, PolicyError};

/// Builds a [`Policy`]: `PolicyBuilder::new(cwd).config(&cfg, dir, None)?.flags(&f)?.build()`.
#[derive(Debug)]
pub struct PolicyBuilder {
    cwd: PathBuf,
    inner: Inner,
    rule_ids: HashSet<String>,
}

/// A grant or deny of one kind from one source, parsed.
enum Grant<T> {
    All(Origin),
    Items(Vec<(T, Origin)>),
}

fn origin(text: String) -> Origin {
    Arc::from(text)
}

impl<T> Access<T> {
    fn add(&mut self, deny: bool, g: Grant<T>) {
        match (deny, g) {
            (false, Grant::All(o)) => self.allow_all = self.allow_all.take().or(Some(o)),
            (true, Grant::All(o)) => self.deny_all = self.deny_all.take().or(Some(o)),
            (false, Grant::Items(xs)) => self.allow.extend(xs),
            (true, Grant::Items(xs)) => self.deny.extend(xs),
        }
    }
}

/// Parses a flag's values (see [`GrantFlags`]): `None` → nothing.
fn from_flag<T>(
    flag: &str,
    v: &Option<Vec<String>>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Grant<T>>, PolicyError> {
    let Some(items) = v else { return Ok(None) };
    if items.is_empty() {
        return Ok(Some(Grant::All(origin(flag.to_string()))));
    }
    let mut out = Vec::new();
    for s in items {
        let x = parse(s).map_err(|message| PolicyError::Flag {
            flag: flag.to_string(),
            message,
        })?;
        out.push((x, origin(format!("{flag}={s}"))));
    }
    Ok(Some(Grant::Items(out)))
}

/// A file grant: `true` → all, a list → its entries, each shown as where it came from.
fn from_file<T, U>(
    key: &str,
    table: &str,
    v: &Option<GrantValue<T>>,
    show: impl Fn(&T) -> String,
    map: impl Fn(&T) -> U,
) -> Option<Grant<U>> {
    match v.as_ref()? {
        GrantValue::All => Some(Grant::All(origin(format!("`{key} = true` in {table}")))),
        GrantValue::Items(xs) => Some(Grant::Items(
            xs.iter()
                .map(|x| (map(x), origin(format!("{} in `{key}` of {table}", show(x)))))
                .collect(),
        )),
    }
}

impl PolicyBuilder {
    /// An empty builder: nothing granted. `cwd` is the run's working directory, against
    /// which relative paths in flags (and in the manifest, at link time) are taken.
    pub fn new(cwd: impl Into<PathBuf>) -> PolicyBuilder {
        let cwd = cwd.into();
        PolicyBuilder {
            inner: Inner::empty(cwd.clone()),
            cwd,
            rule_ids: HashSet::new(),
        }
    }

    /// Adds `[policy]`, then `[permissions.NAME]` when `permissions` names one (an unknown
    /// name is an error), and `[[labels]]`. Relative paths are taken against `base_dir`,
    /// the config file's folder.
    pub fn config(
        mut self,
        cfg: &PolicyConfig,
        base_dir: &Path,
        permissions: Option<&str>,
    ) -> Result<PolicyBuilder, PolicyError> {
        // A relative folder is taken against the run's working directory, so that every path
        // the policy holds is absolute (labels and roots are compared with absolute paths).
        let base_dir = &self.cwd.join(base_dir);
        self.section(&cfg.policy, base_dir, "[policy]")?;
        if let Some(name) = permissions {
            let Some(set) = cfg.permissions.get(name) else {
                let known: Vec<&str> = cfg.permissions.keys().map(String::as_str).collect();
                return Err(PolicyError::Permissions {
                    name: name.to_string(),
                    message: if known.is_empty() {
                        "aivm.toml has no [permissions.NAME] tables".into()
                    } else {
                        format!(
                            "aivm.toml has no [permissions.{name}] (it has: {})",
                            known.join(", ")
                        )
                    },
                });
            };
            self.section(set, base_dir, &format!("[permissions.{name}]"))?;
        }
        for l in &cfg.labels {
            self.inner.labels.push(label_entry(l, base_dir));
        }
        Ok(self)
    }

    fn section(&mut self, s: &PolicySection, base: &Path, table: &str) -> Result<(), PolicyError> {
        let i = &mut self.inner;
        if s.allow_all {
            i.grant_everything(origin(format!("`allow-all = true` in {table}")));
        }
        let path = |p: &PathText| p.absolute(base);
        let show_path = |p: &PathText| format!("{:?}", p.as_str());
        let show = |x: &dyn std::fmt::Display| format!("\"{x}\"");
        for (deny, key, v) in [
            (false, "allow-read", &s.allow_read),
            (true, "deny-read", &s.deny_read),
        ] {
            if let Some(g) = from_file(key, table, v, show_path, path) {
                i.read.add(deny, g);
            }
        }
        for (deny, key, v) in [
            (false, "allow-write", &s.allow_write),
            (true, "deny-write", &s.deny_write),
        ] {
            if let Some(g) = from_file(key, table, v, show_path, path) {
                i.write.add(deny, g);
            }
        }
        for (deny, key, v) in [
            (false, "allow-net", &s.allow_net),
            (true, "deny-net", &s.deny_net),
        ] {
            if let Some(g) = from_file(key, table, v, |x| show(x), NetEntry::clone) {
                i.net.add(deny, g);
            }
        }
        for (deny, key, v) in [
            (false, "allow-run", &s.allow_run),
            (true, "deny-run", &s.deny_run),
        ] {
            if let Some(g) = from_file(key, table, v, |w| show(&w.as_str()), Word::clone) {
                i.run.add(deny, g);
            }
        }
        for (deny, key, v) in [
            (false, "allow-env", &s.allow_env),
            (true, "deny-env", &s.deny_env),
        ] {
            if let Some(g) = from_file(key, table, v, |w| show(&w.0.as_str()), |w| w.0.clone()) {
                i.env.add(deny, g);
            }
        }
        for (deny, key, v) in [
            (false, "allow-model", &s.allow_model),
            (true, "deny-model", &s.deny_model),
        ] {
            if let Some(g) = from_file(key, table, v, |w| show(&w.as_str()), Word::clone) {
                i.model.add(deny, g);
            }
        }
        for (deny, key, v) in [
            (false, "allow-tool", &s.allow_tool),
            (true, "deny-tool", &s.deny_tool),
        ] {
            if let Some(g) = from_file(key, table, v, |p| show(p), ToolPattern::clone) {
                i.add_tools(deny, g);
            }
        }
        for p in &s.ask {
            i.ask
                .insert(p.clone(), origin(format!("\"{p}\" in `ask` of {table}")));
        }
        if s.deny_declassify {
            i.deny_declassify
                .get_or_insert_with(|| origin(format!("`deny-declassify = true` in {table}")));
        }
        if s.deny_endorse {
            i.deny_endorse
                .get_or_insert_with(|| origin(format!("`deny-endorse = true` in {table}")));
        }
        for r in &s.rules.0 {
            if !self.rule_ids.insert(r.id.clone()) {
                return Err(PolicyError::Config {
                    message: format!("rule id `{}` is used twice ({table} repeats it)", r.id),
                });
            }
            let index = self.inner.rules.len() as u32;
            let set = match r.action {
                Action::Deny => &mut self.inner.deny_rules,
                Action::Allow | Action::Ask => &mut self.inner.pass_rules,
            };
            set.insert(r.tool.clone(), index);
            self.inner.rules.push(r.clone());
        }
        Ok(())
    }

    /// Adds the flags.
    pub fn flags(mut self, f: &GrantFlags) -> Result<PolicyBuilder, PolicyError> {
        let cwd = self.cwd.clone();
        let i = &mut self.inner;
        if f.allow_all {
            i.grant_everything(origin("-A".into()));
        }
        let path = |s: &str| PathText::parse(s).map(|p| p.absolute(&cwd));
        for (deny, flag, v) in [
            (false, "--allow-read", &f.allow_read),
            (true, "--deny-read", &f.deny_read),
        ] {
            if let Some(g) = from_flag(flag, v, path)? {
                i.read.add(deny, g);
            }
        }
        for (deny, flag, v) in [
            (false, "--allow-write", &f.allow_write),
            (true, "--deny-write", &f.deny_write),
        ] {
            if let Some(g) = from_flag(flag, v, path)? {
                i.write.add(deny, g);
            }
        }
        for (deny, flag, v) in [
            (false, "--allow-net", &f.allow_net),
            (true, "--deny-net", &f.deny_net),
        ] {
            if let Some(g) = from_flag(flag, v, NetEntry::parse)? {
                i.net.add(deny, g);
            }
        }
        for (deny, flag, v) in [
            (false, "--allow-run", &f.allow_run),
            (true, "--deny-run", &f.deny_run),
        ] {
            if let Some(g) = from_flag(flag, v, Word::parse)? {
                i.run.add(deny, g);
            }
        }
        for (deny, flag, v) in [
            (false, "--allow-env", &f.allow_env),
            (true, "--deny-env", &f.deny_env),
        ] {
            if let Some(g) = from_flag(flag, v, Word::parse_env)? {
                i.env.add(deny, g);
            }
        }
        for (deny, flag, v) in [
            (false, "--allow-model", &f.allow_model),
            (true, "--deny-model", &f.deny_model),
        ] {
            if let Some(g) = from_flag(flag, v, Word::parse)? {
                i.model.add(deny, g);
            }
        }
        for (deny, flag, v) in [
            (false, "--allow-tool", &f.allow_tool),
            (true, "--deny-tool", &f.deny_tool),
        ] {
            if let Some(g) = from_flag(flag, v, ToolPattern::parse)? {
                i.add_tools(deny, g);
            }
        }
        for s in &f.ask {
            let p = ToolPattern::parse(s).map_err(|message| PolicyError::Flag {
                flag: "--ask".into(),
                message,
            })?;
            i.ask.insert(p, origin(format!("--ask={s}")));
        }
        i.no_prompt |= f.no_prompt;
        i.yes |= f.yes;
        Ok(self)
    }

    /// The compiled, immutable policy.
    pub fn build(self) -> Policy {
        Policy {
            inner: Arc::new(self.inner),
        }
    }
}

impl Inner {
    fn grant_everything(&mut self, o: Origin) {
        for a in [&mut self.read.allow_all, &mut self.write.allow_all] {
            a.get_or_insert_with(|| o.clone());
        }
        self.net.allow_all.get_or_insert_with(|| o.clone());
        for a in [
            &mut self.run.allow_all,
            &mut self.env.allow_all,
            &mut self.model.allow_all,
        ] {
            a.get_or_insert_with(|| o.clone());
        }
        self.tool_allow_all.get_or_insert(o);
    }

    fn add_tools(&mut self, deny: bool, g: Grant<ToolPattern>) {
        match (deny, g) {
            (false, Grant::All(o)) => {
                self.tool_allow_all.get_or_insert(o);
            }
            (true, Grant::All(o)) => {
                self.tool_deny_all.get_or_insert(o);
            }
            (false, Grant::Items(xs)) => xs
                .into_iter()
                .for_each(|(p, o)| self.tool_allow.insert(p, o)),
            (true, Grant::Items(xs)) => xs
                .into_iter()
                .for_each(|(p, o)| self.tool_deny.insert(p, o)),
        }
    }
}

fn label_entry(l: &LabelConfig, base: &Path) -> LabelEntry {
    let selector = match &l.selector {
        LabelSelector::Tool(p) => Selector::Tool(p.clone()),
        LabelSelector::Read(p) => Selector::Read(p.absolute(base)),
        LabelSelector::Net(h) => Selector::Net(NetHost::clone(h)),
        LabelSelector::Run(w) => Selector::Run(w.as_str().to_string()),
        LabelSelector::Env(w) => Selector::Env(w.as_str().to_string()),
    };
    LabelEntry {
        selector,
        integrity: l.integrity,
        readers: l.readers.as_ref().map(|r| r.iter().cloned().collect()),
    }
}
