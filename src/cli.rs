//! The command line: what a user can type, with help text a newcomer understands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Runs agent programs: `.ail` source compiled to portable `.aib` bytecode, executed by a
/// register VM that performs every effect (printing, files, the clock) through a deny-by-default
/// host.
#[derive(Parser, Debug)]
#[command(name = "aivm", version)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

pub const EXIT_CODES_HELP: &str = "\
Examples:
  aivm run examples/hello.ail -- Ada       run source; arguments after -- go to main
  aivm build examples/hello.ail            compile to examples/hello.aib
  aivm run --allow-read=data prog.aib      run bytecode that may read files under data/
  aivm run --allow-net=api.x.com --deny-read=data/secrets agent.ail
                                           grant a host, and never the secrets (deny wins)
  aivm run --model smart=openai:gpt-4o-mini agent.ail
                                           bind the program's model \"smart\" to an OpenAI model
  aivm run --trace run.jsonl agent.ail     record every effect; --replay run.jsonl re-runs it offline
  aivm run --each inputs.jsonl --concurrency 32 agent.ail
                                           run main once per input line, results as JSON Lines

Exit status:
  0    success (or the int that `main` returned)
  1    the program raised an error it did not catch
  2    usage error (bad command line)
  3    compile error in the source
  4    invalid bytecode or assembly (malformed, or rejected by the verifier)
  5    the program exceeded a limit (fuel, call depth, heap)
  6    a file named on the command line could not be read or written
  7    a replay diverged from its journal, or the journal cannot be read
  8    a model has no provider, or the model configuration is invalid
  9    the program needs permissions it was not granted, or the policy is invalid
  141  the reader of standard output went away (as after SIGPIPE)";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile (if given source) and run a program.
    ///
    /// FILE is `.ail` source (compiled in memory) or `.aib` bytecode (verified before it runs).
    /// Arguments after `--` go to the program's `main(args: [string])`.
    Run(Box<RunArgs>),
    /// Compile `.ail` source to `.aib` bytecode.
    Build {
        /// The source file.
        file: PathBuf,
        /// Where to write the bytecode (default: FILE with the extension `.aib`).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check `.ail` source for errors without writing anything.
    Check {
        /// The source file.
        file: PathBuf,
    },
    /// Print the assembly text of a program (`.aib`, or `.ail` compiled in memory).
    Disasm {
        /// The bytecode or source file.
        file: PathBuf,
    },
    /// Assemble assembly text (`.aia`) into `.aib` bytecode.
    Asm {
        /// The assembly file.
        file: PathBuf,
        /// Where to write the bytecode (default: FILE with the extension `.aib`).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Decode and verify `.aib` bytecode without running it.
    Verify {
        /// The bytecode file.
        file: PathBuf,
    },
    /// Print what a program may ask of the world: its capability manifest (models, tools,
    /// files, hosts, commands, environment variables, authority to lower labels).
    ///
    /// FILE is `.ail` source (compiled in memory) or `.aib` bytecode (verified first). The MCP
    /// servers of the configuration beside it are listed too (with --mcp, started and asked
    /// for their tools).
    Inspect {
        /// The bytecode or source file.
        file: PathBuf,
        /// Start the configured MCP servers and list their tools with their lock status.
        #[arg(long)]
        mcp: bool,
        /// The configuration file (default: aivm.toml beside the program, else in the working
        /// directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Review and try the MCP servers configured in aivm.toml: list their tools, pin them in
    /// aivm.lock, call one.
    Mcp(Box<McpArgs>),
    /// Serve the program's exported functions as tools to other agents (MCP).
    ///
    /// Each `export fn` becomes a tool (schema from its types, description from its doc
    /// comment); every call runs a fresh VM under the policy, limits and budgets given here.
    /// Over stdio by default; `--http 127.0.0.1:PORT` serves Streamable HTTP at `/mcp`.
    Serve(Box<ServeArgs>),
}

/// `aivm serve`: the protocol, where to listen, and the same grants and limits as `aivm run`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The program: `.ail` source or `.aib` bytecode.
    pub file: PathBuf,

    /// Speak the Model Context Protocol (required: the only protocol served for now).
    #[arg(long, required = true)]
    pub mcp: bool,

    /// Serve Streamable HTTP at ADDR (e.g. 127.0.0.1:8080, path /mcp) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,

    /// Let --http bind an address other than loopback (requests are still refused unless
    /// their Host header names localhost, 127.0.0.1, ::1 or an --allowed-host).
    #[arg(long = "allow-remote", requires = "http")]
    pub allow_remote: bool,

    /// With --http: accept this Host header value too (repeatable).
    #[arg(long = "allowed-host", value_name = "HOST", requires = "http")]
    pub allowed_hosts: Vec<String>,

    /// Write one journal per tool call into DIR (`call-N-TOOL.jsonl`, spec/journal.md).
    #[arg(long, value_name = "DIR")]
    pub trace: Option<PathBuf>,

    /// Run at most N tool calls at once; more wait for a free slot.
    #[arg(long = "max-concurrent-calls", value_name = "N", default_value_t = 16,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_concurrent_calls: usize,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Args, Debug)]
pub struct McpArgs {
    /// The configuration file (default: aivm.toml in the working directory).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: McpCommand,
}

#[derive(Subcommand, Debug)]
pub enum McpCommand {
    /// List the tools of the configured servers (all, or those named), each with its status in
    /// aivm.lock: pinned, CHANGED since it was pinned (refused until pinned again), or new.
    List {
        /// The servers to list (default: all).
        servers: Vec<String>,
        /// Print JSON: every tool with its schemas, annotations and hash.
        #[arg(long)]
        json: bool,
    },
    /// Show what changed in the servers' tools since the last review, and pin them in
    /// aivm.lock (asks first; programs may call only pinned tools).
    Lock {
        /// The servers to review (default: all).
        servers: Vec<String>,
        /// Pin without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Call one tool (SERVER.TOOL) with a JSON object of arguments, as a program would: the
    /// policy judges the call first (grant it with --allow-tool=SERVER.TOOL).
    Call {
        /// The tool, as SERVER.TOOL.
        tool: String,
        /// The arguments, a JSON object (default: {}).
        arguments: Option<String>,
        #[command(flatten)]
        policy: Box<PolicyArgs>,
        /// Write the journal of the call (decision, MCP events, result) to FILE.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The program: `.ail` source or `.aib` bytecode.
    pub file: PathBuf,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub exec: ExecArgs,

    /// Write the journal to FILE: every effect and its result as JSON Lines (spec/journal.md).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Re-run offline from a journal written by --trace: model calls and inputs are answered
    /// from it, output is produced again; the first difference stops the run (exit 7).
    #[arg(long, value_name = "FILE", conflicts_with = "each")]
    pub replay: Option<PathBuf>,

    /// Do not print the summary line (model calls, tokens, cost, time) on stderr.
    #[arg(long, short)]
    pub quiet: bool,

    /// Run main once per line of FILE (JSON Lines; each line's value is main's one argument)
    /// and write one JSON result per line to stdout, in input order.
    #[arg(long, value_name = "FILE", conflicts_with = "trace")]
    pub each: Option<PathBuf>,

    /// With --each: how many runs go at once.
    #[arg(long, value_name = "N", default_value_t = 16, requires = "each")]
    pub concurrency: usize,

    /// Arguments passed to the program's `main`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// How each run is executed, shared by `aivm run` and `aivm serve`: the VM's limits, the
/// models and their configuration, and the budgets.
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Stop the program after this many instructions (default: no limit).
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Maximum call depth before the program is stopped.
    #[arg(long = "max-depth", value_name = "N", default_value_t = 10_000)]
    pub max_depth: usize,

    /// Maximum heap size in MiB before the program is stopped.
    #[arg(long = "max-heap-mb", value_name = "MIB", default_value_t = 1024)]
    pub max_heap_mb: usize,

    /// When the JIT compiles hot functions to machine code: off, auto (after repeated calls)
    /// or always (at the first call, for testing). The output is the same in every mode.
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub jit: aivm_vm::JitMode,

    /// Bind a model name the program declares to a provider, e.g. `smart=openai:gpt-4o-mini`,
    /// `fast=anthropic:claude-3-5-haiku-latest`, `x=scripted:answers.json` (repeatable;
    /// overrides aivm.toml).
    #[arg(long = "model", value_name = "NAME=KIND:ID")]
    pub models: Vec<String>,

    /// The model configuration file (default: aivm.toml beside the program, else in the
    /// working directory).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Stop model calls after N of them (the next raises BudgetExceeded).
    #[arg(long = "max-llm-calls", value_name = "N")]
    pub max_llm_calls: Option<u64>,

    /// Stop tool calls after N of them.
    #[arg(long = "max-tool-calls", value_name = "N")]
    pub max_tool_calls: Option<u64>,

    /// The most tokens (input and output together) the run's model calls may use.
    #[arg(long = "max-tokens", value_name = "N")]
    pub max_tokens: Option<u64>,

    /// The most the run's model calls may cost, in US dollars. Models without a price in the
    /// configuration cannot be called under a cost budget.
    #[arg(long = "max-cost", value_name = "USD")]
    pub max_cost: Option<f64>,

    /// Wall-time budget of the run in seconds; calls still in flight then get BudgetExceeded.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

impl PolicyArgs {
    /// The flags as the policy builder reads them.
    pub fn grant_flags(&self) -> aivm_vm::policy::GrantFlags {
        aivm_vm::policy::GrantFlags {
            allow_read: self.allow_read.clone(),
            deny_read: self.deny_read.clone(),
            allow_write: self.allow_write.clone(),
            deny_write: self.deny_write.clone(),
            allow_net: self.allow_net.clone(),
            deny_net: self.deny_net.clone(),
            allow_run: self.allow_run.clone(),
            deny_run: self.deny_run.clone(),
            allow_env: self.allow_env.clone(),
            deny_env: self.deny_env.clone(),
            allow_tool: self.allow_tool.clone(),
            deny_tool: self.deny_tool.clone(),
            allow_model: self.allow_model.clone(),
            deny_model: self.deny_model.clone(),
            ask: self.ask.clone(),
            allow_all: self.allow_all,
            no_prompt: self.no_prompt,
            yes: self.yes,
        }
    }
}

/// What the host lets the program do: deny by default (spec/security.md). Each `--allow-*`
/// takes a comma-separated list, or no value for everything of its kind; each `--deny-*` beats
/// every allow.
#[derive(Args, Debug, Default, Clone)]
#[command(next_help_heading = "Permissions")]
pub struct PolicyArgs {
    /// Let the program read files under these paths (all files without a value).
    #[arg(long = "allow-read", value_name = "PATH", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub allow_read: Option<Vec<String>>,
    /// Let the program create and write files under these paths.
    #[arg(long = "allow-write", value_name = "PATH", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub allow_write: Option<Vec<String>>,
    /// Let the program reach these hosts (HOST or HOST:PORT) over HTTP. Loopback, private and
    /// metadata addresses need to be named explicitly.
    #[arg(long = "allow-net", value_name = "HOST", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub allow_net: Option<Vec<String>>,
    /// Let the program run these commands (exact names; no shell).
    #[arg(long = "allow-run", value_name = "CMD", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub allow_run: Option<Vec<String>>,
    /// Let the program read these environment variables (and pass them to commands it runs).
    #[arg(long = "allow-env", value_name = "VAR", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub allow_env: Option<Vec<String>>,
    /// Let the program (and the models it offers them to) use these tools: ids or globs with `*`.
    #[arg(long = "allow-tool", value_name = "ID", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub allow_tool: Option<Vec<String>>,
    /// Let the program call these models (logical names) on a network provider.
    #[arg(long = "allow-model", value_name = "NAME", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub allow_model: Option<Vec<String>>,
    /// Never let the program read these paths, whatever else allows it.
    #[arg(long = "deny-read", value_name = "PATH", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub deny_read: Option<Vec<String>>,
    /// Never let the program write these paths.
    #[arg(long = "deny-write", value_name = "PATH", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub deny_write: Option<Vec<String>>,
    /// Never let the program reach these hosts.
    #[arg(long = "deny-net", value_name = "HOST", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub deny_net: Option<Vec<String>>,
    /// Never let the program run these commands.
    #[arg(long = "deny-run", value_name = "CMD", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub deny_run: Option<Vec<String>>,
    /// Never let the program read these environment variables.
    #[arg(long = "deny-env", value_name = "VAR", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub deny_env: Option<Vec<String>>,
    /// Never let the program use these tools.
    #[arg(long = "deny-tool", value_name = "ID", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub deny_tool: Option<Vec<String>>,
    /// Never let the program call these models.
    #[arg(long = "deny-model", value_name = "NAME", num_args = 0.., require_equals = true, value_delimiter = ',')]
    pub deny_model: Option<Vec<String>>,
    /// Ask before each call of these tools (ids or globs), even when they are allowed.
    #[arg(long = "ask", value_name = "ID", value_delimiter = ',')]
    pub ask: Vec<String>,
    /// Allow everything of every kind (denies still apply).
    #[arg(short = 'A', long = "allow-all")]
    pub allow_all: bool,
    /// Never ask: every call the policy would ask about is refused.
    #[arg(long = "no-prompt")]
    pub no_prompt: bool,
    /// Approve the asks whose rule allows approval without a person (never a label violation,
    /// unless the rule says so).
    #[arg(long = "yes", conflicts_with = "no_prompt")]
    pub yes: bool,
    /// Stamp the control-flow label on every effect's arguments (implicit flows), not only pass
    /// it to the policy.
    #[arg(long = "strict-flow")]
    pub strict_flow: bool,
    /// Use the named permission set `[permissions.NAME]` of aivm.toml too.
    #[arg(long = "permissions", value_name = "NAME")]
    pub permissions: Option<String>,
}
