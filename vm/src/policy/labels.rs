//! Output labels of tools: a default per tool (what comes from files, the web, commands and
//! other servers is untrusted; the user's answers, the environment and the clock are
//! trusted), overridden by `[[labels]]` entries. A label is given by the source of the data,
//! never derived from its content.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::entry::NetHost;
use super::name::ToolPattern;
use super::Policy;
use crate::label::{Integrity, LabelInfo};

/// A compiled `[[labels]]` entry.
#[derive(Clone, Debug)]
pub(crate) struct LabelEntry {
    pub(crate) selector: Selector,
    pub(crate) integrity: Option<Integrity>,
    pub(crate) readers: Option<BTreeSet<String>>,
}

#[derive(Clone, Debug)]
pub(crate) enum Selector {
    Tool(ToolPattern),
    /// An absolute path: the file or folder and everything beneath.
    Read(PathBuf),
    Net(NetHost),
    Run(String),
    Env(String),
}

/// The default integrity of a tool's output.
fn default_integrity(tool: &str) -> Integrity {
    match tool {
        "env.get" | "io.ask" | "io.read_line" | "clock.now" | "io.print" | "mcp.progress" => {
            Integrity::Trusted
        }
        // Program functions: the VM labels their results itself.
        t if !t.contains('.') => Integrity::Trusted,
        // Files, the web, commands, MCP servers and anything else outside.
        _ => Integrity::Untrusted,
    }
}

impl LabelEntry {
    /// How specifically this entry selects the output of `tool` on `resource`, or `None`
    /// when it does not apply: a resource entry beats a tool entry (deeper paths beat
    /// shallower ones) and an exact tool id beats a pattern.
    fn specificity(&self, tool: &str, resource: Option<&str>) -> Option<usize> {
        match &self.selector {
            Selector::Tool(p) => p.matches(tool).then_some(if p.is_exact() { 2 } else { 1 }),
            Selector::Read(root) => {
                let r = Path::new(resource?);
                (matches!(tool, "fs.read" | "fs.list") && r.is_absolute() && r.starts_with(root))
                    .then(|| 10 + root.components().count())
            }
            Selector::Net(h) => {
                let ok = matches!(tool, "http.get" | "http.post")
                    && NetHost::parse(resource?).is_ok_and(|r| &r == h);
                ok.then_some(10)
            }
            Selector::Run(c) => (tool == "proc.run" && resource? == c).then_some(10),
            Selector::Env(v) => (tool == "env.get" && resource? == v).then_some(10),
        }
    }
}

impl Policy {
    /// The label of an output of `tool` that came from `resource` (an absolute path for
    /// `fs.*`, the host for `http.*`, the command for `proc.run`, the variable for
    /// `env.get`). For integrity and for readers separately, the most specific entry that
    /// sets it wins; entries equally specific are joined (the less trusted, the fewer
    /// readers).
    pub fn output_label(&self, tool: &str, resource: Option<&str>) -> LabelInfo {
        let mut integrity = (0usize, default_integrity(tool));
        let mut readers: (usize, Option<BTreeSet<String>>) = (0, None);
        for e in &self.inner.labels {
            let Some(s) = e.specificity(tool, resource) else {
                continue;
            };
            if let Some(i) = e.integrity {
                if s > integrity.0 {
                    integrity = (s, i);
                } else if s == integrity.0 {
                    integrity.1 = integrity.1.max(i);
                }
            }
            if let Some(r) = &e.readers {
                if s > readers.0 {
                    readers = (s, Some(r.clone()));
                } else if s == readers.0 {
                    readers.1 = Some(match readers.1.take() {
                        Some(old) => old.intersection(r).cloned().collect(),
                        None => r.clone(),
                    });
                }
            }
        }
        LabelInfo {
            integrity: integrity.1,
            readers: readers.1,
        }
    }
}
