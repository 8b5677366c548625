//! The effects the host performs at once, in the order the program asks for them: `io.print`,
//! `io.read_line`, `io.ask`, `fs.read` and `fs.list` (deny by default: only beneath granted
//! roots, resolved by handle by `tools::fs`, so no `..`, symlink or race escape; files under
//! untrusted paths come back labelled untrusted) and `clock.now`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use super::tools::{self, FsOutput, FsRoots};
use super::Policy;
use crate::host_value::{HostError, HostValue};
use crate::interp::EffectRequest;
use crate::label::LabelInfo;

/// Whether replay performs `effect` again (it only writes) rather than answering it from the
/// journal.
pub(crate) fn is_output(effect: &str) -> bool {
    effect == "io.print"
}

/// Performs one inline effect. The outer error is the host's own output failing (the
/// program's standard output went away); the inner one is what the program sees.
pub(crate) fn perform(
    policy: &Policy,
    stdout: &mut dyn Write,
    stdin: &mut dyn BufRead,
    req: &EffectRequest,
) -> std::io::Result<Result<HostValue, HostError>> {
    Ok(match req.native.as_str() {
        "io.print" => {
            let text = req.args.first().and_then(HostValue::as_str).unwrap_or("");
            writeln!(stdout, "{text}")?;
            Ok(HostValue::null())
        }
        "io.read_line" => {
            // A prompt printed just before must be visible before we block on input.
            stdout.flush()?;
            tools::io::read_line(stdin, policy.max_input_bytes)
        }
        "io.ask" => match tools::string_arg("io.ask", &req.args, 0, "question") {
            Ok(q) => tools::io::ask(stdout, stdin, q, policy.max_input_bytes)?,
            Err(e) => Err(e),
        },
        "fs.read" => read_tool(policy, "fs.read", &req.args, FsRoots::read),
        "fs.list" => read_tool(policy, "fs.list", &req.args, FsRoots::list),
        "clock.now" => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            Ok(HostValue::int(ms))
        }
        other => Err(HostError::new(
            "PolicyDenied",
            format!("this host does not perform the effect {other}"),
        )),
    })
}

/// `fs.read` and `fs.list` under the host's read grants (tools::fs: beneath the root, by
/// handle); a file found under a `--untrusted` path, by identity, comes back untrusted.
///
/// The grants are opened for each call because this host keeps its `Policy` as plain paths;
/// a root that does not exist grants nothing, as before.
fn read_grants(policy: &Policy) -> Result<FsRoots, HostError> {
    let roots: Vec<PathBuf> = policy
        .allow_read
        .iter()
        .filter(|p| p.exists())
        .cloned()
        .collect();
    FsRoots::open(&roots, &[], &[], &[])
        .map(|r| {
            r.with_marks(&policy.untrusted)
                .with_max_bytes(policy.max_input_bytes)
        })
        .map_err(|e| HostError::new("IoError", e.to_string()))
}

fn read_tool(
    policy: &Policy,
    tool: &str,
    args: &[HostValue],
    perform: fn(&FsRoots, &str) -> Result<FsOutput, HostError>,
) -> Result<HostValue, HostError> {
    let path = tools::string_arg(tool, args, 0, "path")?;
    let out = perform(&read_grants(policy)?, path)?;
    Ok(if out.marks.is_empty() {
        out.value
    } else {
        out.value.labelled_deep(&LabelInfo::untrusted())
    })
}
