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

Exit status:
  0    success (or the int that `main` returned)
  1    the program raised an error it did not catch
  2    usage error (bad command line)
  3    compile error in the source
  4    invalid bytecode or assembly (malformed, or rejected by the verifier)
  5    the program exceeded a limit (fuel, call depth, heap)
  6    a file named on the command line could not be read or written
  141  the reader of standard output went away (as after SIGPIPE)";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile (if given source) and run a program.
    ///
    /// FILE is `.ail` source (compiled in memory) or `.aib` bytecode (verified before it runs).
    /// Arguments after `--` go to the program's `main(args: [string])`.
    Run(RunArgs),
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
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The program: `.ail` source or `.aib` bytecode.
    pub file: PathBuf,

    /// Let the program read files under PATH (repeatable). Reading is denied by default; paths
    /// are resolved (symlinks and `..` included) before they are checked against PATH.
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<PathBuf>,

    /// Label what is read from files under PATH as untrusted (repeatable).
    #[arg(long = "untrusted", value_name = "PATH")]
    pub untrusted: Vec<PathBuf>,

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

    /// Write every effect and its result to FILE as JSON Lines.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Arguments passed to the program's `main`.
    #[arg(last = true)]
    pub args: Vec<String>,
}
