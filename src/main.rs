//! The `aivm` command line: compiles, assembles, verifies and runs programs. This is the edge
//! where typed errors from the compiler and the VM become rendered diagnostics and exit codes.

mod cli;
mod errors;
mod mcp;
mod run;
mod serve;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aivm_vm::format::{self, Module, VerifiedModule};
use clap::Parser;

use cli::{Cli, Command};
use errors::{CliError, Exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            };
            // Printing help or a usage error to a closed stream is not worth a panic.
            let _ = e.print();
            return code.into();
        }
    };
    match dispatch(cli.command) {
        Ok(code) => code,
        // A closed pipe is how `aivm run x | head` ends: quietly.
        Err(CliError::BrokenPipe) => Exit::BrokenPipe.into(),
        Err(e) => {
            errors::report(&e);
            e.exit().into()
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Run(args) => run::run(*args),
        Command::Serve(args) => serve::serve(*args),
        Command::Mcp(args) => mcp::mcp(*args),
        Command::Build { file, output } => {
            let module = compile(&file)?;
            let out = output.unwrap_or_else(|| file.with_extension("aib"));
            write(&out, &format::encode(&module))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file } => {
            compile(&file)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Disasm { file } => {
            let module = load(&file)?;
            write_stdout(format::disassemble(&module).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Asm { file, output } => {
            let text = read_text(&file)?;
            let module = format::assemble(&text).map_err(|e| CliError::Assembly {
                file: file.clone(),
                source: e,
            })?;
            VerifiedModule::new(module.clone()).map_err(|e| CliError::Verify {
                file: file.clone(),
                source: e,
            })?;
            let out = output.unwrap_or_else(|| file.with_extension("aib"));
            write(&out, &format::encode(&module))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { file, mcp, config } => {
            let module = load_verified(&file)?;
            write_stdout(format::manifest_text(&module).as_bytes())?;
            mcp::inspect(&file, config.as_deref(), mcp)
        }
        Command::Verify { file } => {
            let module = decode(&file)?;
            let verified = VerifiedModule::new(module).map_err(|e| CliError::Verify {
                file: file.clone(),
                source: e,
            })?;
            let code_bytes: usize = verified
                .functions
                .iter()
                .flat_map(|f| f.code.iter())
                .map(|i| i.encoded_len())
                .sum();
            let line = format!(
                "{}: ok ({} functions, {code_bytes} bytes of code)\n",
                file.display(),
                verified.functions.len(),
            );
            write_stdout(line.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Compiles `.ail` source, printing warnings; errors become [`CliError::Compile`].
fn compile(file: &Path) -> Result<Module, CliError> {
    if !file.exists() {
        return Err(CliError::Io {
            path: file.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    match aivm_compiler::compile_file(file) {
        Ok(compiled) => {
            if !compiled.warnings.items.is_empty() {
                eprint!(
                    "{}",
                    aivm_compiler::render::render(&compiled.warnings, errors::color())
                );
            }
            Ok(compiled.module)
        }
        Err(diags) => Err(CliError::Compile(Box::new(diags))),
    }
}

/// Reads `.aib` bytecode and decodes it (not yet verified).
fn decode(file: &Path) -> Result<Module, CliError> {
    let bytes = fs::read(file).map_err(|e| CliError::Io {
        path: file.to_path_buf(),
        source: e,
    })?;
    format::decode(&bytes).map_err(|e| {
        if !bytes.starts_with(&format::MAGIC) && std::str::from_utf8(&bytes).is_ok() {
            CliError::TextNotBytecode(file.to_path_buf())
        } else {
            CliError::Decode {
                file: file.to_path_buf(),
                source: e,
            }
        }
    })
}

/// A program from source (`.ail`, compiled in memory) or bytecode (anything else).
fn load(file: &Path) -> Result<Module, CliError> {
    if is_source(file) {
        compile(file)
    } else {
        decode(file)
    }
}

/// Loads and verifies a program, ready to run.
fn load_verified(file: &Path) -> Result<VerifiedModule, CliError> {
    VerifiedModule::new(load(file)?).map_err(|e| CliError::Verify {
        file: file.to_path_buf(),
        source: e,
    })
}

fn is_source(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "ail")
}

fn read_text(file: &Path) -> Result<String, CliError> {
    fs::read_to_string(file).map_err(|e| CliError::Io {
        path: file.to_path_buf(),
        source: e,
    })
}

/// Writes to standard output; a reader that stopped early (`aivm disasm x | head`) is not an
/// error.
fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn write(file: &PathBuf, bytes: &[u8]) -> Result<(), CliError> {
    fs::write(file, bytes).map_err(|e| CliError::Io {
        path: file.clone(),
        source: e,
    })
}
