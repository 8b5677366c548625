//! The effects the host performs at once, in the order the program asks for them: `io.print`,
//! `io.read_line`, `fs.read` (deny by default: only under granted roots, after canonicalising
//! the path, so no `..` or symlink escape; files under untrusted roots come back labelled
//! untrusted) and `clock.now`.

use std::io::{BufRead, Read, Write};
use std::path::{Component, Path, PathBuf};

use super::Policy;
use crate::host_value::{HostData, HostError, HostValue};
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
            read_line(stdin, policy.max_input_bytes)
        }
        "fs.read" => match req.args.first().map(|a| &a.data) {
            Some(HostData::Str(p)) => read_file(policy, Path::new(p)),
            _ => Err(HostError::new("TypeError", "fs.read expects a path string")),
        },
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

fn read_line(stdin: &mut dyn BufRead, cap: u64) -> Result<HostValue, HostError> {
    let mut line = String::new();
    match stdin.take(cap).read_line(&mut line) {
        Ok(0) => Ok(HostValue::null()),
        Ok(n) if n as u64 >= cap && !line.ends_with('\n') => Err(HostError::new(
            "IoError",
            format!("an input line longer than {cap} bytes"),
        )),
        Ok(_) => {
            if line.ends_with('\n') {
                line.pop();
                if line.ends_with('\r') {
                    line.pop();
                }
            }
            Ok(HostValue::str(line))
        }
        Err(e) => Err(HostError::new("IoError", format!("reading input: {e}"))),
    }
}

fn read_file(policy: &Policy, path: &Path) -> Result<HostValue, HostError> {
    let shown = path.display().to_string();
    let denied = || {
        HostError::new(
            "PolicyDenied",
            format!("reading {shown} is not allowed (grant it with --allow-read)"),
        )
    };
    let real = match path.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            // Say "not allowed" rather than "not found" for paths outside the grants, so a
            // program cannot probe for files it may not read.
            let lexical = lexical_absolute(path).ok_or_else(denied)?;
            if !inside_any(&lexical, &policy.allow_read) {
                return Err(denied());
            }
            return Err(HostError::new(
                "IoError",
                format!("cannot read {shown}: {e}"),
            ));
        }
    };
    if !inside_any(&real, &policy.allow_read) {
        return Err(denied());
    }
    let cap = policy.max_input_bytes;
    let io_err = |e: std::io::Error| HostError::new("IoError", format!("cannot read {shown}: {e}"));
    let mut bytes = Vec::new();
    std::fs::File::open(&real)
        .and_then(|f| f.take(cap.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io_err)?;
    if bytes.len() as u64 > cap {
        return Err(HostError::new(
            "IoError",
            format!("cannot read {shown}: it is larger than {cap} bytes"),
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| HostError::new("IoError", format!("{shown} is not valid UTF-8 text")))?;
    let label = if inside_any(&real, &policy.untrusted) {
        LabelInfo::untrusted()
    } else {
        LabelInfo::public()
    };
    Ok(HostValue::str(text).labelled(label))
}

/// Whether the canonical path `p` is inside one of `roots` (each canonicalised; roots that do
/// not exist grant nothing).
fn inside_any(p: &Path, roots: &[PathBuf]) -> bool {
    roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| p.starts_with(&r))
}

/// `p` made absolute with `.` and `..` resolved by text alone (for paths that do not exist).
fn lexical_absolute(p: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(p).ok()?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}
