//! Performing effects the gate has allowed: the inline ones at once, in the order the program
//! asks for them (`io.*`, `fs.*`, `env.get`, `clock.now`), and the asynchronous native tools
//! (`http.*`, `proc.run`) as futures the driver keeps in flight. Every resource is checked
//! again here, at the moment it is touched: files beneath a granted root by handle
//! (`tools::fs`), hosts per redirect hop (`net`), commands and variables by exact name. Each
//! output is labelled by the policy (`[[labels]]`; by default file, web and command output is
//! untrusted).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use futures_util::future::LocalBoxFuture;

use super::net::{self, HttpLimits};
use super::tools::{self, EnvGrants, FsOutput, FsRoots, ProcGrants, ToolSetupError};
use crate::host_value::{HostError, HostValue};
use crate::interp::EffectRequest;
use crate::policy::{Denial, ManifestView, NetEntry, NetHost, Policy};

/// Whether replay performs `effect` again (it only writes) rather than answering it from the
/// journal.
pub(crate) fn is_output(effect: &str) -> bool {
    effect == "io.print"
}

/// Whether `effect` is performed asynchronously (kept in flight while the program runs on, its
/// result delivered in completion order, and released in journal order by a replay) rather
/// than at once.
pub(crate) fn is_async(effect: &str) -> bool {
    matches!(
        effect,
        "llm.call"
            | "http.get"
            | "http.post"
            | "proc.run"
            | "mcp.call"
            | "mcp.resource"
            | "mcp.prompt"
    )
}

/// The native tools of one run, with their grants opened once at its start.
pub(crate) struct Tools {
    policy: Policy,
    confine: Confine,
    fs: FsRoots,
    env: EnvGrants,
    proc: ProcGrants,
    http: HttpLimits,
    max_input_bytes: u64,
}

/// What a manifest that declares resources confines the program to, beyond the policy: for
/// each kind it names (`needs net ...`), only those (spec/security.md §3). `None`: the kind is
/// not declared, and the policy alone decides.
#[derive(Debug, Default)]
struct Confine {
    net: Option<Vec<NetEntry>>,
    run: Option<Vec<String>>,
    env: Option<Vec<String>>,
}

impl Confine {
    fn of(m: &ManifestView) -> Confine {
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        Confine {
            net: (!m.net.is_empty()).then(|| {
                m.net
                    .iter()
                    .filter_map(|e| NetEntry::parse(e).ok())
                    .collect()
            }),
            run: some(&m.run),
            env: some(&m.env),
        }
    }

    fn check(list: &Option<Vec<String>>, x: &str, kind: &str) -> Result<(), Denial> {
        match list {
            Some(names) if !names.iter().any(|n| n == x) => Err(Denial::new(
                "manifest",
                format!("the program's manifest does not name {x:?} (add `needs {kind} \"{x}\"`)"),
            )),
            _ => Ok(()),
        }
    }
}

/// The policy's network check, confined to the hosts the manifest names (when it names any).
struct ConfinedNet {
    policy: Policy,
    hosts: Option<Vec<NetEntry>>,
}

impl net::NetCheck for ConfinedNet {
    fn check_host(&self, host: &str, port: u16) -> Result<net::NetGrant, Denial> {
        let grant = self.policy.check_net(host, port)?;
        let Some(hosts) = &self.hosts else {
            return Ok(grant);
        };
        let h = NetHost::parse(host).map_err(|e| Denial::new("manifest", e))?;
        if hosts
            .iter()
            .any(|e| e.host == h && e.port.is_none_or(|p| p == port))
        {
            Ok(grant)
        } else {
            Err(Denial::new(
                "manifest",
                format!("the program's manifest does not name {host}:{port} (add `needs net \"{host}\"`)"),
            ))
        }
    }
}

impl Tools {
    /// Opens the policy's grants: file roots by handle (a granted path that does not exist
    /// grants nothing), commands resolved to absolute paths, variables by name. Where the
    /// manifest declares resources of a kind, only those are opened or allowed.
    pub fn new(
        policy: &Policy,
        manifest: &ManifestView,
        max_input_bytes: u64,
    ) -> Result<Tools, ToolSetupError> {
        let mut g = policy.fs_grants();
        // Linking has checked that every declared path is granted: they become the roots.
        let cwd = std::env::current_dir().map_err(ToolSetupError::WorkingDirectory)?;
        if !manifest.read.is_empty() {
            g.read.all = false;
            g.read.roots = manifest.read.iter().map(|p| cwd.join(p)).collect();
        }
        if !manifest.write.is_empty() {
            g.write.all = false;
            g.write.roots = manifest.write.iter().map(|p| cwd.join(p)).collect();
        }
        let everything = |all: bool, roots: &[PathBuf]| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = roots.to_vec();
            if all {
                v.push(PathBuf::from("/"));
            }
            v
        };
        let read: Vec<PathBuf> = everything(g.read.all, &g.read.roots)
            .into_iter()
            .filter(|p| p.exists())
            .collect();
        let write: Vec<PathBuf> = everything(g.write.all, &g.write.roots)
            .into_iter()
            .filter(|p| p.exists() || p.parent().is_some_and(Path::exists))
            .collect();
        let fs = FsRoots::open(&read, &write, &g.read.deny, &g.write.deny)?
            .with_max_bytes(max_input_bytes);
        let env = match policy.env_grants() {
            Some(names) => EnvGrants::only(&names)?,
            // Every variable but the denied ones: those of this process, by name (a name no
            // program could ask for, such as an exported shell function's, is left out).
            None => {
                let names: Vec<String> = std::env::vars_os()
                    .filter_map(|(k, _)| k.into_string().ok())
                    .filter(|k| tools::env::valid_name(k) && policy.check_env(k).is_ok())
                    .collect();
                EnvGrants::only(&names)?
            }
        };
        let proc = match policy.run_grants() {
            Some(cmds) => ProcGrants::new(&cmds, env.clone())?,
            None => ProcGrants::all(env.clone())?,
        };
        Ok(Tools {
            policy: policy.clone(),
            confine: Confine::of(manifest),
            fs,
            env,
            proc,
            http: HttpLimits::default(),
            max_input_bytes,
        })
    }

    /// Performs one inline effect. The outer error is the host's own output failing (the
    /// program's standard output went away); the inner one is what the program sees.
    pub fn perform(
        &self,
        stdout: &mut dyn Write,
        stdin: &mut dyn BufRead,
        req: &EffectRequest,
    ) -> std::io::Result<Result<HostValue, HostError>> {
        let args = &req.args;
        Ok(match req.native.as_str() {
            "io.print" => {
                let text = args.first().and_then(HostValue::as_str).unwrap_or("");
                writeln!(stdout, "{text}")?;
                Ok(HostValue::null())
            }
            // Progress has nobody to go to outside `aivm serve` (whose embedder performs it):
            // the journal records it, nothing else happens.
            "mcp.progress" => Ok(HostValue::null()),
            "io.read_line" => {
                // A prompt printed just before must be visible before we block on input.
                stdout.flush()?;
                tools::io::read_line(stdin, self.max_input_bytes)
            }
            "io.ask" => match tools::string_arg("io.ask", args, 0, "question") {
                Ok(q) => tools::io::ask(stdout, stdin, q, self.max_input_bytes)?,
                Err(e) => Err(e),
            },
            "fs.read" => self.file("fs.read", args, |p| self.fs.read(p)),
            "fs.list" => self.file("fs.list", args, |p| self.fs.list(p)),
            "fs.write" => match tools::string_arg("fs.write", args, 1, "text") {
                Ok(text) => self.file("fs.write", args, |p| self.fs.write(p, text)),
                Err(e) => Err(e),
            },
            "env.get" => self.env_get(args),
            "clock.now" => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                Ok(HostValue::int(ms))
            }
            other => Err(super::gate::unknown_effect(other)),
        })
    }

    /// A file tool, its output labelled by where the file really is.
    fn file(
        &self,
        tool: &str,
        args: &[HostValue],
        perform: impl FnOnce(&str) -> Result<FsOutput, HostError>,
    ) -> Result<HostValue, HostError> {
        let path = tools::string_arg(tool, args, 0, "path")?;
        let out = perform(path)?;
        let real = std::fs::canonicalize(path)
            .ok()
            .or_else(|| std::path::absolute(path).ok())
            .map(|p| p.display().to_string());
        Ok(out
            .value
            .labelled_deep(&self.policy.output_label(tool, real.as_deref())))
    }

    fn env_get(&self, args: &[HostValue]) -> Result<HostValue, HostError> {
        let name = tools::string_arg("env.get", args, 0, "name")?;
        self.policy
            .check_env(name)
            .and_then(|()| Confine::check(&self.confine.env, name, "env"))
            .map_err(|d| d.into_host_error("env.get"))?;
        let v = self.env.get(name)?;
        Ok(v.labelled_deep(&self.policy.output_label("env.get", Some(name))))
    }

    /// Starts an asynchronous native tool: the resource is checked now, the work happens in the
    /// returned future.
    pub fn start(
        &self,
        req: &EffectRequest,
    ) -> Result<LocalBoxFuture<'static, Result<HostValue, HostError>>, HostError> {
        let args = &req.args;
        match req.native.as_str() {
            "http.get" | "http.post" => {
                let tool = req.native.clone();
                let url = tools::string_arg(&tool, args, 0, "url")?.to_string();
                let body = if tool == "http.post" {
                    let body = tools::string_arg(&tool, args, 1, "body")?.to_string();
                    let ct = tools::string_arg(&tool, args, 2, "content_type")?.to_string();
                    Some((body, ct))
                } else {
                    None
                };
                let check = ConfinedNet {
                    policy: self.policy.clone(),
                    hosts: self.confine.net.clone(),
                };
                let (policy, limits) = (self.policy.clone(), self.http.clone());
                let host =
                    super::gate::audience_of(req).map(|a| a.trim_start_matches("net:").to_string());
                Ok(Box::pin(async move {
                    let result = match &body {
                        None => net::get(&check, &limits, &url).await,
                        Some((b, ct)) => net::post(&check, &limits, &url, b, ct).await,
                    };
                    let label = policy.output_label(&tool, host.as_deref());
                    result.map(|v| v.labelled_deep(&label))
                }))
            }
            "proc.run" => {
                let cmd = tools::string_arg("proc.run", args, 0, "cmd")?.to_string();
                let argv = tools::strings_arg("proc.run", args, 1, "args")?;
                self.policy
                    .check_run(&cmd)
                    .and_then(|()| Confine::check(&self.confine.run, &cmd, "run"))
                    .map_err(|d| d.into_host_error("proc.run"))?;
                let fut = self.proc.start(&cmd, &argv)?;
                let label = self.policy.output_label("proc.run", Some(&cmd));
                Ok(Box::pin(async move {
                    fut.await.map(|v| v.labelled_deep(&label))
                }))
            }
            other => Err(super::gate::unknown_effect(other)),
        }
    }
}
