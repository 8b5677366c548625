//! `aivm run`: load and verify a program, start `main` with the arguments after `--`, and let
//! the host perform its effects under the policy the flags grant.

use std::io::{self, BufReader, LineWriter, Write};
use std::process::ExitCode;

use aivm_vm::host::{Host, Policy, RunError};
use aivm_vm::{Limits, Vm};

use crate::cli::RunArgs;
use crate::errors::CliError;

pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let module = crate::load_verified(&args.file)?;
    let limits = Limits {
        fuel: args.fuel,
        max_depth: args.max_depth,
        max_heap_bytes: args.max_heap_mb.saturating_mul(1 << 20),
    };
    let mut vm = Vm::new(&module, limits).map_err(CliError::Run)?;
    vm.start_main(args.args.clone()).map_err(CliError::Run)?;

    let policy = Policy {
        allow_read: args.allow_read.clone(),
        untrusted: args.untrusted.clone(),
    };
    let stdout = Box::new(LineWriter::new(io::stdout()));
    let stdin = Box::new(BufReader::new(io::stdin()));
    let mut host = Host::new(policy, stdout, stdin);
    let outcome = host.run_to_end(&mut vm);

    // The trace is written whatever the outcome: a failed run is when it matters most.
    if let Some(path) = &args.trace {
        write_trace(path, &host)?;
    }
    let value = match outcome {
        Ok(value) => value,
        Err(RunError::Vm(e)) => return Err(CliError::Run(e)),
        // The reader of our output went away (`aivm run x | head`): stop quietly, with the
        // status a shell gives a process ended by SIGPIPE.
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(ExitCode::from(141))
        }
        Err(RunError::Output(e)) => {
            return Err(CliError::Io {
                path: "<stdout>".into(),
                source: e,
            })
        }
    };
    match value.exit_status() {
        // Exit statuses are a byte on every platform we run on; the low byte is what a shell
        // sees, so report exactly that.
        Some(status) => Ok(ExitCode::from(status as u8)),
        None => Err(CliError::BadExit(value.to_json().to_string())),
    }
}

fn write_trace(path: &std::path::Path, host: &Host) -> Result<(), CliError> {
    let io_err = |e| CliError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut out = io::BufWriter::new(std::fs::File::create(path).map_err(io_err)?);
    for event in &host.trace {
        let line = serde_json::to_string(event).map_err(|e| io_err(e.into()))?;
        writeln!(out, "{line}").map_err(io_err)?;
    }
    out.flush().map_err(io_err)
}
