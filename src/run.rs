//! `aivm run`: load and verify a program, start `main` with the arguments after `--`, and let
//! the host perform its effects under the policy the flags grant.

use std::io::{self, BufReader, LineWriter};
use std::process::ExitCode;

use aivm_vm::host::{Host, Policy, RunError, TraceSink};
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
    vm.set_jit(args.jit);
    vm.start_main(args.args.clone()).map_err(CliError::Run)?;

    let policy = Policy {
        allow_read: args.allow_read.clone(),
        untrusted: args.untrusted.clone(),
        // What is read becomes a string on the heap, so the heap limit bounds it too.
        max_input_bytes: args.max_heap_mb.saturating_mul(1 << 20) as u64,
    };
    let stdout = Box::new(LineWriter::new(io::stdout()));
    let stdin = Box::new(BufReader::new(io::stdin()));
    let mut host = Host::new(policy, stdout, stdin);
    if let Some(path) = &args.trace {
        // Line by line, so that a run that fails or is killed leaves its trace so far.
        let file = std::fs::File::create(path).map_err(|e| CliError::Io {
            path: path.clone(),
            source: e,
        })?;
        host = host.with_trace(TraceSink::JsonLines(Box::new(LineWriter::new(file))));
    }
    let result = host.run_to_end(&mut vm);
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
        Err(RunError::Vm(e)) => return Err(CliError::Run(e)),
        Err(RunError::Trace(e)) => {
            return Err(CliError::Io {
                path: args.trace.clone().unwrap_or_default(),
                source: e,
            })
        }
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
