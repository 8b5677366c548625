//! Errors of the command line, the exit code each maps to, and how they are shown: compile
//! errors through the compiler's miette renderer, everything else as a miette report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use aivm_compiler::diagnostic::Diagnostics;
use aivm_vm::format::{AsmError, DecodeError, VerifyError};
use aivm_vm::VmError;
use miette::{GraphicalReportHandler, GraphicalTheme};

/// The documented exit codes (see `aivm --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    ProgramError = 1,
    Usage = 2,
    Compile = 3,
    InvalidBytecode = 4,
    Limit = 5,
    Io = 6,
    Replay = 7,
    ModelConfig = 8,
    /// The program needs permissions the policy does not grant, or the policy is invalid.
    Permissions = 9,
    /// As after SIGPIPE.
    BrokenPipe = 141,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CliError {
    #[error("cannot access `{}`", path.display())]
    #[diagnostic(code(aivm::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Rendered by the compiler's own renderer, which shows the source.
    #[error("compilation failed")]
    Compile(Box<Diagnostics>),

    #[error("`{}` is not valid aivm bytecode", file.display())]
    #[diagnostic(
        code(aivm::invalid_bytecode),
        help("rebuild it with `aivm build`, or check it was not truncated or altered")
    )]
    Decode {
        file: PathBuf,
        #[source]
        source: DecodeError,
    },

    #[error("`{}` is text, not aivm bytecode", .0.display())]
    #[diagnostic(
        code(aivm::invalid_bytecode),
        help("source files end in `.ail` (run them directly); assembly text is turned into bytecode with `aivm asm`")
    )]
    TextNotBytecode(PathBuf),

    #[error("`{}` was rejected by the verifier", file.display())]
    #[diagnostic(code(aivm::verify))]
    Verify {
        file: PathBuf,
        #[source]
        source: VerifyError,
    },

    #[error("`{}` is not valid aivm assembly", file.display())]
    #[diagnostic(code(aivm::asm))]
    Assembly {
        file: PathBuf,
        #[source]
        source: AsmError,
    },

    #[error("the program failed")]
    #[diagnostic(code(aivm::run))]
    Run(#[source] VmError),

    #[error("the run stopped")]
    #[diagnostic(code(aivm::host))]
    Host(#[source] aivm_vm::host::RunError),

    #[error("{0}")]
    #[diagnostic(code(aivm::replay))]
    Replay(String),

    #[error("{0}")]
    #[diagnostic(
        code(aivm::models),
        help("nothing was sent to any model; how models are bound, keys found and transcripts named: spec/providers.md §1-2")
    )]
    ModelConfig(String),

    #[error("{0}")]
    #[diagnostic(
        code(aivm::permissions),
        help("nothing ran; permission flags, aivm.toml's [policy] and the decision order: spec/security-policy.md")
    )]
    Permissions(String),

    #[error("{0}")]
    #[diagnostic(code(aivm::usage))]
    Usage(String),

    /// The reader of standard output went away; not reported, exit 141.
    #[error("standard output was closed")]
    BrokenPipe,

    #[error("`main` returned {0}, which is not an exit status")]
    #[diagnostic(
        code(aivm::exit_status),
        help("return an int (the exit status) or nothing from `main`")
    )]
    BadExit(String),
}

impl CliError {
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Io { .. } => Exit::Io,
            CliError::Compile(_) => Exit::Compile,
            CliError::Decode { .. }
            | CliError::TextNotBytecode(_)
            | CliError::Verify { .. }
            | CliError::Assembly { .. } => Exit::InvalidBytecode,
            CliError::Run(
                VmError::FuelExhausted { .. }
                | VmError::StackOverflow { .. }
                | VmError::HeapExhausted { .. },
            ) => Exit::Limit,
            CliError::Run(VmError::InvalidModule(_)) => Exit::InvalidBytecode,
            CliError::Replay(_) => Exit::Replay,
            CliError::ModelConfig(_) => Exit::ModelConfig,
            CliError::Permissions(_) => Exit::Permissions,
            CliError::Usage(_) => Exit::Usage,
            CliError::BrokenPipe => Exit::BrokenPipe,
            CliError::Run(_) | CliError::BadExit(_) | CliError::Host(_) => Exit::ProgramError,
        }
    }
}

/// Whether to colour output on stderr: not when `NO_COLOR` is set (to anything but the empty
/// string, per no-color.org) or when stderr is not a terminal.
pub fn color() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// Prints an error to stderr.
pub fn report(e: &CliError) {
    if let CliError::Compile(diags) = e {
        eprint!("{}", aivm_compiler::render::render(diags, color()));
        let n = diags
            .items
            .iter()
            .filter(|d| d.severity == aivm_compiler::diagnostic::Severity::Error)
            .count();
        eprintln!(
            "error: could not compile: {n} error{}",
            if n == 1 { "" } else { "s" }
        );
        return;
    }
    let theme = if color() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    if handler.render_report(&mut out, e).is_err() {
        out = format!("error: {e}\n");
    }
    eprint!("{out}");
}
