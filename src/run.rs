//! `aivm run`: load and verify a program, bind its models to providers, start `main` with the
//! arguments after `--` (or once per input with `--each`), and let the host perform its
//! effects under the policy and budgets the flags grant.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, IsTerminal, LineWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aivm_vm::format::VerifiedModule;
use aivm_vm::host::budget::{BudgetLimits, Spent};
use aivm_vm::host::config::{self, Config};
use aivm_vm::host::llm_value::value_from_json;
use aivm_vm::host::many::{run_many, ManyRun};
use aivm_vm::host::mcp::{Lock, McpHub, LOCK_FILE};
use aivm_vm::host::{approve, declared_models, journal, Host, RunError, TraceSink};
use aivm_vm::policy::{Policy, PolicyBuilder};
use aivm_vm::{Limits, Vm, VmError};

use crate::cli::{ExecArgs, PolicyArgs, RunArgs};
use crate::errors::CliError;

pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let module = crate::load_verified(&args.file)?;
    let limits = limits(&args.exec);
    let (config, config_dir) = load_config(&args.file, &args.exec)?;
    let budget = budget_limits(&args.exec, &config)?;
    let policy = policy(&args.policy, &config, config_dir.as_deref())?;
    if let Some(inputs) = &args.each {
        return run_each(&args, &module, &limits, &config, &policy, budget, inputs);
    }
    let mut vm = Vm::new(&module, limits).map_err(CliError::Run)?;
    vm.set_jit(args.exec.jit);
    vm.set_strict_flow(args.policy.strict_flow);
    vm.start_main(args.args.clone()).map_err(CliError::Run)?;

    let stdout = Box::new(LineWriter::new(io::stdout()));
    let stdin = Box::new(BufReader::new(io::stdin()));
    let mut host = Host::new(policy.clone(), stdout, stdin)
        .with_input_cap(input_cap(&args.exec))
        .with_budget(budget)
        .with_approver(approver(&policy, true));
    host = match &args.replay {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| CliError::Io {
                path: path.clone(),
                source: e,
            })?;
            let events = journal::parse(&text)
                .map_err(|e| CliError::Replay(format!("{}: {e}", path.display())))?;
            host.with_replay(events)
        }
        None => {
            let host = host.with_models(bind(&args.file, &module, &config)?);
            match mcp_hub(&config, &policy)? {
                Some(hub) => host.with_mcp(hub),
                None => host,
            }
        }
    };
    if let Some(path) = &args.trace {
        // Line by line, so that a run that fails or is killed leaves its journal so far.
        let file = std::fs::File::create(path).map_err(|e| CliError::Io {
            path: path.clone(),
            source: e,
        })?;
        host = host.with_trace(TraceSink::JsonLines(Box::new(LineWriter::new(file))));
    }
    let result = host.run_to_end(&mut vm);
    let started = !matches!(result, Err(RunError::Unlinkable(_) | RunError::Grants(_)));
    if !args.quiet && started && shows_summary(&module, &host.spent()) {
        eprintln!("{}", summary(&host.spent(), host.elapsed()));
    }
    if !args.quiet {
        for b in host.blocked() {
            // A user rule's reason ends by naming the rule; the line names it first.
            let named = format!(" (rule `{}`)", b.rule);
            let reason = b.reason.strip_suffix(&named).unwrap_or(&b.reason);
            eprintln!("aivm: blocked {} (rule {}): {reason}", b.tool, b.rule);
        }
    }
    // `AIVM_JIT_STATS=1`: what the JIT compiled and how long it took, on stderr (benches).
    if std::env::var_os("AIVM_JIT_STATS").is_some() {
        for e in vm.jit_events() {
            let what = e.refused.as_deref().unwrap_or("compiled");
            eprintln!(
                "jit: {} {}us {} fn(s): {what}",
                e.function, e.micros, e.compiled
            );
        }
    }
    let value = match result {
        Ok(value) => value,
        Err(e) => return Err(run_error(e, &args)),
    };
    match value.exit_status() {
        // Exit statuses are a byte on every platform we run on; the low byte is what a shell
        // sees, so report exactly that.
        Some(status) => Ok(ExitCode::from(status as u8)),
        None => Err(CliError::BadExit(value.to_json().to_string())),
    }
}

/// The VM's limits of each run.
pub(crate) fn limits(args: &ExecArgs) -> Limits {
    Limits {
        fuel: args.fuel,
        max_depth: args.max_depth,
        max_heap_bytes: args.max_heap_mb.saturating_mul(1 << 20),
    }
}

/// The policy: `[policy]` (and `[permissions.NAME]`, `[[labels]]`) of the configuration, then
/// the flags; deny wins wherever they disagree.
pub(crate) fn policy(
    args: &PolicyArgs,
    cfg: &Config,
    cfg_dir: Option<&Path>,
) -> Result<Policy, CliError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let perm = |e: aivm_vm::policy::PolicyError| CliError::Permissions(e.to_string());
    let builder = PolicyBuilder::new(&cwd)
        .config(
            &cfg.policy,
            cfg_dir.unwrap_or(&cwd),
            args.permissions.as_deref(),
        )
        .map_err(perm)?;
    Ok(builder.flags(&args.grant_flags()).map_err(perm)?.build())
}

/// The MCP servers of the configuration, if it names any: started on first use, checked
/// against `aivm.lock` beside the configuration, answering `roots/list` with the granted
/// read roots.
pub(crate) fn mcp_hub(cfg: &Config, policy: &Policy) -> Result<Option<McpHub>, CliError> {
    if cfg.mcp.servers.is_empty() {
        return Ok(None);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    // Absolute, so that a server's folder does not depend on where a run happens to be.
    let dir = cfg
        .base_dir
        .as_deref()
        .map_or_else(|| cwd.clone(), |d| cwd.join(d));
    let dir = dir.as_path();
    let lock =
        Lock::load(&dir.join(LOCK_FILE)).map_err(|e| CliError::Permissions(e.to_string()))?;
    let roots = policy.fs_grants().read.roots;
    Ok(Some(McpHub::new(&cfg.mcp, dir, lock, roots)))
}

/// Who answers the policy's asks: `--yes` approves what its rules let it; otherwise a person
/// at the controlling terminal, if the run may ask one (`interactive`), there is one and
/// `--no-prompt` is not given; otherwise nobody, and every ask is refused.
pub(crate) fn approver(policy: &Policy, interactive: bool) -> Box<dyn approve::Approver> {
    if policy.yes() {
        return Box::new(approve::AutoYes);
    }
    if policy.no_prompt() || !interactive {
        return Box::new(approve::NoPrompt);
    }
    match approve::terminal() {
        Some(t) => Box::new(t),
        None => Box::new(approve::NoPrompt),
    }
}

/// What is read becomes a string on the heap, so the heap limit bounds one read too.
pub(crate) fn input_cap(args: &ExecArgs) -> u64 {
    args.max_heap_mb.saturating_mul(1 << 20) as u64
}

/// The configuration: `--config`, else `aivm.toml` beside the program or in the working
/// directory, else none; then the `--model` overrides. With it, the folder of the file read
/// (against which its relative paths are taken).
pub(crate) fn load_config(
    file: &Path,
    args: &ExecArgs,
) -> Result<(Config, Option<PathBuf>), CliError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let path = args
        .config
        .clone()
        .or_else(|| config::find_config(file, &cwd));
    let mut cfg = match &path {
        Some(p) => Config::load(p).map_err(|e| CliError::ModelConfig(e.to_string()))?,
        None => Config::default(),
    };
    for spec in &args.models {
        cfg.apply_override(spec)
            .map_err(|e| CliError::ModelConfig(e.to_string()))?;
    }
    // Absolute, so that paths in it mean the same wherever they are compared.
    let dir = path.as_deref().map(|p| {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| cwd.clone(), |d| cwd.join(d))
    });
    Ok((cfg, dir))
}

/// The budgets of `[budget]` in the configuration, each overridden by its flag.
pub(crate) fn budget_limits(args: &ExecArgs, cfg: &Config) -> Result<BudgetLimits, CliError> {
    let b = &cfg.budget;
    let timeout = match args.timeout {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            return Err(CliError::Usage(format!(
                "--timeout takes a positive number of seconds, not {s}"
            )))
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => b.timeout_secs.map(Duration::from_secs),
    };
    if let Some(c) = args.max_cost {
        if !(c.is_finite() && c >= 0.0) {
            return Err(CliError::Usage(format!(
                "--max-cost takes a non-negative number of US dollars, not {c}"
            )));
        }
    }
    Ok(BudgetLimits {
        max_llm_calls: args.max_llm_calls.or(b.max_llm_calls),
        max_tool_calls: args.max_tool_calls.or(b.max_tool_calls),
        max_input_tokens: b.max_input_tokens,
        max_output_tokens: b.max_output_tokens,
        max_tokens: args.max_tokens.or(b.max_tokens),
        max_cost: args.max_cost.or(b.max_cost),
        timeout,
    })
}

/// Binds every model the program declares, before it runs.
pub(crate) fn bind(
    file: &Path,
    module: &VerifiedModule,
    cfg: &Config,
) -> Result<indexmap::IndexMap<String, config::ModelBinding>, CliError> {
    let mut names = declared_models(module);
    // The models MCP servers may sample (`sampling = "MODEL"`), bound like the program's.
    for s in cfg.mcp.servers.values() {
        if let Some(m) = &s.sampling {
            if !names.contains(m) {
                names.push(m.clone());
            }
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    config::bind_models(cfg, &names, Some(file), &config::process_env)
        .map_err(|e| CliError::ModelConfig(e.to_string()))
}

fn run_error(e: RunError, args: &RunArgs) -> CliError {
    match e {
        RunError::Vm(e) => CliError::Run(e),
        RunError::Trace(e) => CliError::Io {
            path: args.trace.clone().unwrap_or_default(),
            source: e,
        },
        // The reader of our output went away (`aivm run x | head`): the caller exits quietly.
        RunError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => CliError::BrokenPipe,
        RunError::Output(e) => CliError::Io {
            path: "<stdout>".into(),
            source: e,
        },
        RunError::ReplayDiverged(d) => CliError::Replay(d.to_string()),
        RunError::Link(m) => CliError::ModelConfig(m),
        e @ (RunError::Unlinkable(_) | RunError::Grants(_)) => CliError::Permissions(e.to_string()),
        other => CliError::Host(other),
    }
}

/// The summary line is for runs that involve models or tools; plain programs stay silent.
fn shows_summary(module: &VerifiedModule, spent: &Spent) -> bool {
    !module.models.is_empty() || spent.llm_calls > 0 || spent.tool_calls > 0
}

/// `aivm: 3 model calls, 1200 tokens in, 310 out, $0.0021, 2 tool calls, 1.42 s`; the cost
/// says "cost unknown" for calls to models without a price rather than count them as free.
fn summary(spent: &Spent, elapsed: Duration) -> String {
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let cost = match spent.unpriced_calls {
        0 => format!("${:.4}", spent.cost),
        n if n == spent.llm_calls => "cost unknown (no price)".to_string(),
        n => format!("${:.4} + unknown for {}", spent.cost, plural(n, "call")),
    };
    format!(
        "aivm: {}, {} tokens in, {} out, {cost}, {}, {:.2} s",
        plural(spent.llm_calls, "model call"),
        spent.input_tokens,
        spent.output_tokens,
        plural(spent.tool_calls, "tool call"),
        elapsed.as_secs_f64()
    )
}

/// `--each`: one run per input line, `--concurrency` at a time; results as JSON Lines on
/// stdout in input order, progress on stderr when it is a terminal.
fn run_each(
    args: &RunArgs,
    module: &VerifiedModule,
    limits: &Limits,
    cfg: &Config,
    policy: &Policy,
    budget: BudgetLimits,
    inputs_path: &Path,
) -> Result<ExitCode, CliError> {
    let io_err = |e| CliError::Io {
        path: inputs_path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::open(inputs_path).map_err(io_err)?;
    let mut inputs = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err)?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
            CliError::Usage(format!(
                "{} line {}: not JSON: {e}",
                inputs_path.display(),
                i + 1
            ))
        })?;
        inputs.push(value_from_json(&doc));
    }
    let models = bind(&args.file, module, cfg)?;
    let hub = mcp_hub(cfg, policy)?;
    let total = inputs.len();
    let progress = !args.quiet && io::stderr().is_terminal();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Host(RunError::Runtime(e)))?;
    let started = Instant::now();
    let mut stdout = io::stdout().lock();
    let mut waiting: BTreeMap<usize, ManyRun> = BTreeMap::new();
    let mut next_out = 0usize;
    let mut failed = 0usize;
    let mut done = 0usize;
    let mut spent = Spent::default();
    let mut write_err: Option<io::Error> = None;
    let mut template = Vm::new(module, limits.clone()).map_err(CliError::Run)?;
    template.set_jit(args.exec.jit);
    template.set_strict_flow(args.policy.strict_flow);
    rt.block_on(run_many(
        &template,
        inputs,
        args.concurrency,
        |_, out| {
            // Many runs at once cannot share a terminal.
            let approver = approver(policy, false);
            let host = Host::new(policy.clone(), out, Box::new(io::empty()))
                .with_input_cap(input_cap(&args.exec))
                .with_models(models.clone())
                .with_budget(budget.clone())
                .with_approver(approver);
            match &hub {
                Some(hub) => host.with_shared_mcp(hub.clone()),
                None => host,
            }
        },
        |run| {
            done += 1;
            failed += usize::from(run.result.is_err());
            spent.add(&run.spent);
            waiting.insert(run.index, run);
            // Write out every result whose predecessors are all written.
            while let Some(r) = waiting.remove(&next_out) {
                next_out += 1;
                if write_err.is_none() {
                    let line = result_line(&r);
                    if let Err(e) = writeln!(stdout, "{line}") {
                        write_err = Some(e);
                    }
                }
            }
            if progress {
                eprint!("\r[{done}/{total}] {failed} failed");
            }
        },
    ));
    if let Some(hub) = &hub {
        rt.block_on(hub.shutdown());
    }
    if progress {
        eprintln!();
    }
    if let Some(e) = write_err {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Err(CliError::BrokenPipe);
        }
        return Err(CliError::Io {
            path: "<stdout>".into(),
            source: e,
        });
    }
    if !args.quiet {
        eprintln!(
            "{} ({total} runs, {failed} failed)",
            summary(&spent, started.elapsed())
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::errors::Exit::ProgramError as u8)
    })
}

/// One `--each` result: `{"index", "ok": true, "value", "output"}` or
/// `{"index", "ok": false, "error": {"kind", "message"}, "output"}`.
fn result_line(r: &ManyRun) -> serde_json::Value {
    use serde_json::json;
    match &r.result {
        Ok(v) => json!({"index": r.index, "ok": true, "value": v.to_json(), "output": r.output}),
        Err(RunError::Vm(VmError::Uncaught { kind, message, .. })) => json!({
            "index": r.index, "ok": false,
            "error": {"kind": kind, "message": message}, "output": r.output
        }),
        Err(e) => json!({
            "index": r.index, "ok": false,
            "error": {"kind": "HostError", "message": e.to_string()}, "output": r.output
        }),
    }
}
