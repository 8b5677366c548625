//! `aivm mcp list | call | lock`: a person reviewing the MCP servers of a configuration. `list`
//! shows each tool with its lock status, `lock` shows what changed since the last review and
//! pins the tools in `aivm.lock`, `call` calls one tool exactly as a program would (the policy
//! judges it first). Descriptions are the servers' words: shown escaped, never obeyed.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aivm_vm::host::approve::escape;
use aivm_vm::host::config::Config;
use aivm_vm::host::llm_value::value_from_json;
use aivm_vm::host::mcp::{
    split_id, HubOptions, Lock, LockStatus, McpHub, McpTool, Transport, LOCK_FILE,
};
use aivm_vm::host::{Host, TraceSink};
use aivm_vm::{EffectRequest, HostValue, TaskId};

use crate::cli::{McpArgs, McpCommand};
use crate::errors::CliError;

/// How much of a description a listing shows.
const DESCRIPTION_SHOWN: usize = 100;

pub fn mcp(args: McpArgs) -> Result<ExitCode, CliError> {
    let (cfg, dir) = config(args.config.as_deref())?;
    let rt = runtime()?;
    match args.command {
        McpCommand::List { servers, json } => {
            let hub = review_hub(&cfg, &dir)?;
            let out = rt.block_on(list(&hub, &cfg, &servers, json));
            rt.block_on(hub.shutdown());
            out
        }
        McpCommand::Lock { servers, yes } => {
            let hub = review_hub(&cfg, &dir)?;
            let out = rt.block_on(lock(&hub, &cfg, &dir, &servers, yes));
            rt.block_on(hub.shutdown());
            out
        }
        McpCommand::Call {
            tool,
            arguments,
            policy,
            trace,
        } => {
            if !configured(&cfg, &tool) {
                return Err(CliError::Usage(format!(
                    "{tool:?} is not SERVER.TOOL for a configured server (see `aivm mcp list`)"
                )));
            }
            let policy = crate::run::policy(&policy, &cfg, Some(&dir))?;
            let hub = crate::run::mcp_hub(&cfg, &policy)?
                .ok_or_else(|| CliError::Usage(no_servers(&dir)))?;
            let args = parse_arguments(arguments.as_deref())?;
            let mut host = Host::new(policy.clone(), Box::new(io::sink()), Box::new(io::empty()))
                .with_approver(crate::run::approver(&policy, true))
                .with_mcp(hub.clone());
            if let Some(path) = &trace {
                let file = std::fs::File::create(path).map_err(|e| CliError::Io {
                    path: path.clone(),
                    source: e,
                })?;
                host = host.with_trace(TraceSink::JsonLines(Box::new(io::LineWriter::new(file))));
            }
            let req = EffectRequest {
                task: TaskId(0),
                native: aivm_vm::format::MCP_CALL.into(),
                args: vec![HostValue::str(&tool), args],
                control: Default::default(),
            };
            let outcome = rt.block_on(async {
                let r = host.perform_async(&req).await;
                hub.shutdown().await;
                r
            });
            match outcome.map_err(CliError::Host)? {
                Ok(v) => {
                    let text = serde_json::to_string_pretty(&v.to_json()).unwrap_or_default();
                    crate::write_stdout(format!("{text}\n").as_bytes())?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("aivm: {tool}: {}: {}", e.kind, e.message);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// The MCP part of `aivm inspect FILE`: the servers of the configuration beside the program
/// (how each is reached, how many tools the lock pins), and with `--mcp` their tools as listed
/// now.
pub fn inspect(file: &Path, config: Option<&Path>, start: bool) -> Result<ExitCode, CliError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let Some(path) = config
        .map(Path::to_path_buf)
        .or_else(|| aivm_vm::host::config::find_config(file, &cwd))
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let (cfg, dir) = self::config(Some(&path))?;
    if cfg.mcp.servers.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::from("mcp servers:\n");
    let lock = read_lock(&dir)?;
    for name in cfg.mcp.servers.keys() {
        out.push_str(&format!(
            "  {name} ({}): {} tools pinned in {LOCK_FILE}\n",
            reached(&cfg, name),
            lock.tool_names(name).len()
        ));
    }
    crate::write_stdout(out.as_bytes())?;
    if !start {
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    let hub = review_hub(&cfg, &dir)?;
    let listed = rt.block_on(list(&hub, &cfg, &[], false));
    rt.block_on(hub.shutdown());
    listed
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Host(aivm_vm::host::RunError::Runtime(e)))
}

/// `--config`, else `aivm.toml` in the working directory; with its folder (absolute).
fn config(path: Option<&Path>) -> Result<(Config, PathBuf), CliError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let path = path.map_or_else(|| cwd.join("aivm.toml"), |p| cwd.join(p));
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "{} not found: MCP servers are configured under [mcp.servers.NAME] in aivm.toml \
             (or pass --config FILE)",
            path.display()
        )));
    }
    let cfg = Config::load(&path).map_err(|e| CliError::ModelConfig(e.to_string()))?;
    let dir = path.parent().map_or(cwd, Path::to_path_buf);
    Ok((cfg, dir))
}

fn no_servers(dir: &Path) -> String {
    format!(
        "{} configures no MCP server: add [mcp.servers.NAME] with `command` or `url`",
        dir.join("aivm.toml").display()
    )
}

/// A hub for reviewing: the lock is read, not enforced; no roots are offered.
fn review_hub(cfg: &Config, dir: &Path) -> Result<McpHub, CliError> {
    if cfg.mcp.servers.is_empty() {
        return Err(CliError::Usage(no_servers(dir)));
    }
    let lock = read_lock(dir)?;
    let opts = HubOptions {
        enforce_lock: false,
        ..HubOptions::default()
    };
    Ok(McpHub::with_options(&cfg.mcp, dir, lock, Vec::new(), opts))
}

fn read_lock(dir: &Path) -> Result<Lock, CliError> {
    Lock::load(&dir.join(LOCK_FILE)).map_err(|e| CliError::Permissions(e.to_string()))
}

/// The servers named (each must be configured), or all of them.
fn chosen(cfg: &Config, names: &[String]) -> Result<Vec<String>, CliError> {
    if names.is_empty() {
        return Ok(cfg.mcp.servers.keys().cloned().collect());
    }
    for n in names {
        if !cfg.mcp.servers.contains_key(n) {
            return Err(CliError::Usage(format!(
                "no MCP server `{n}` is configured (configured: {})",
                cfg.mcp
                    .servers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(names.to_vec())
}

/// How a server is reached, for a listing.
fn reached(cfg: &Config, server: &str) -> String {
    match cfg.mcp.servers.get(server).map(|s| &s.transport) {
        Some(Transport::Stdio { command, args, .. }) => {
            let mut words = vec![command.clone()];
            words.extend(args.iter().cloned());
            format!("stdio: {}", escape(&words.join(" "), DESCRIPTION_SHOWN))
        }
        Some(Transport::Http { url, .. }) => format!("http: {}", escape(url, DESCRIPTION_SHOWN)),
        None => String::new(),
    }
}

fn status_word(s: LockStatus) -> &'static str {
    match s {
        LockStatus::Pinned => "pinned",
        LockStatus::Changed => "CHANGED",
        LockStatus::Unpinned => "new",
    }
}

async fn list(
    hub: &McpHub,
    cfg: &Config,
    names: &[String],
    json: bool,
) -> Result<ExitCode, CliError> {
    let mut failed = false;
    let mut out = String::new();
    let mut docs = Vec::new();
    for server in chosen(cfg, names)? {
        match hub.tools(&server).await {
            Ok(tools) if json => docs.push(serde_json::json!({
                "server": server,
                "tools": tools.iter().map(tool_json).collect::<Vec<_>>(),
            })),
            Ok(tools) => {
                out.push_str(&format!(
                    "{server} ({}): {} tools\n",
                    reached(cfg, &server),
                    tools.len()
                ));
                for t in &tools {
                    out.push_str(&format!(
                        "  {:<40} {:<8} {}\n",
                        t.id,
                        status_word(t.status),
                        escape(&t.description, DESCRIPTION_SHOWN)
                    ));
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("aivm: {e}");
                if json {
                    docs.push(serde_json::json!({"server": server, "error": e.to_string()}));
                }
            }
        }
    }
    if json {
        out = serde_json::to_string_pretty(&docs).unwrap_or_default() + "\n";
    }
    crate::write_stdout(out.as_bytes())?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn tool_json(t: &McpTool) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "status": status_word(t.status).to_lowercase(),
        "hash": t.hash,
        "description": t.description,
        "inputSchema": t.input_schema,
        "outputSchema": t.output_schema,
        "annotations": t.annotations,
    })
}

async fn lock(
    hub: &McpHub,
    cfg: &Config,
    dir: &Path,
    names: &[String],
    yes: bool,
) -> Result<ExitCode, CliError> {
    let mut lock = read_lock(dir)?;
    let mut report = String::new();
    let mut changes = 0usize;
    let mut listed = Vec::new();
    for server in chosen(cfg, names)? {
        let tools = hub
            .tools(&server)
            .await
            .map_err(|e| CliError::Usage(format!("cannot review `{server}`: {e}")))?;
        let current: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        for t in &tools {
            let what = match t.status {
                LockStatus::Pinned => continue,
                LockStatus::Changed => "changed",
                LockStatus::Unpinned => "new",
            };
            changes += 1;
            report.push_str(&format!(
                "  {what:<8} {}: {}\n",
                t.id,
                escape(&t.description, 400)
            ));
        }
        for gone in lock.tool_names(&server) {
            if !current.contains(&gone) {
                changes += 1;
                report.push_str(&format!("  removed  {server}.{gone}\n"));
            }
        }
        if !lock.has_server(&server) && tools.is_empty() {
            changes += 1;
        }
        listed.push((server, tools));
    }
    let path = dir.join(LOCK_FILE);
    if changes == 0 {
        crate::write_stdout(format!("{}: up to date\n", path.display()).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    eprint!("Tools to pin in {}:\n{report}", path.display());
    if !yes && !confirm()? {
        eprintln!("aivm: nothing written (pass --yes to pin without asking)");
        return Ok(ExitCode::FAILURE);
    }
    for (server, tools) in &listed {
        lock.pin(server, tools);
    }
    lock.save(&path)
        .map_err(|e| CliError::Permissions(e.to_string()))?;
    crate::write_stdout(format!("{}: {changes} change(s) pinned\n", path.display()).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Asks the person at the terminal; without one, the answer is no.
fn confirm() -> Result<bool, CliError> {
    if !io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("Pin them? [y/N] ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Io {
            path: "<stdin>".into(),
            source: e,
        })?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// The arguments of `aivm mcp call`: a JSON object (default `{}`).
fn parse_arguments(text: Option<&str>) -> Result<HostValue, CliError> {
    let doc: serde_json::Value = match text {
        None => serde_json::json!({}),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| CliError::Usage(format!("the arguments are not JSON: {e}")))?,
    };
    if !doc.is_object() {
        return Err(CliError::Usage(
            "the arguments must be a JSON object, e.g. '{\"path\": \"notes.md\"}'".into(),
        ));
    }
    Ok(value_from_json(&doc))
}

/// Whether `id` names a tool of a configured server.
fn configured(cfg: &Config, id: &str) -> bool {
    split_id(id).is_some_and(|(s, _)| cfg.mcp.servers.contains_key(s))
}
