//! `proc.run(cmd, args)`: a granted command, run without a shell.
//!
//! - `cmd` must be granted by its exact name (`--allow-run=git`). Each granted name is
//!   resolved once, when the host starts, to an absolute path: a name with a `/` against the
//!   working directory, any other through the absolute directories of `PATH` (relative `PATH`
//!   entries are skipped: they would resolve against a directory the program may write). A
//!   grant of every command (`--allow-run` alone) resolves at the call, the same way, with
//!   the `PATH` the host started with.
//! - The arguments go to the program as they are: no shell, no globbing, `;` is a character.
//! - The environment is cleared; only granted variables are passed ([`EnvGrants`]), and
//!   never `LD_*`/`DYLD_*`. Standard input is empty (`/dev/null`).
//! - Standard output and error are each capped; a command that writes more, or runs longer
//!   than the timeout, is killed and reaped and the program gets an `IoError`. A command
//!   that ends gives `{status, stdout, stderr}`: the exit code, or 128 + the signal that
//!   ended it (the shell's convention); the outputs as text (invalid UTF-8 replaced).
//! - The run is async (tokio), so the host keeps it in flight like a model call; the grant
//!   check happens before anything starts, in [`ProcGrants::start`].
//!
//! Residual: a command's own children that leave its process group outlive a kill (the
//! host stops waiting for them at the timeout, but they are not hunted down).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{io_error, value_error, EnvGrants, ToolSetupError};
use crate::host_value::{HostData, HostError, HostValue};
use crate::policy::Denial;

const TOOL: &str = "proc.run";

/// Time a killed command gets to be reaped before the host stops waiting for it.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// The commands a run may start, and how.
#[derive(Clone, Debug)]
pub struct ProcGrants {
    commands: Commands,
    env: EnvGrants,
    timeout: Duration,
    max_output: usize,
}

#[derive(Clone, Debug)]
enum Commands {
    /// Granted names and the absolute paths they resolved to.
    Only(BTreeMap<String, PathBuf>),
    /// Every command, resolved at the call against the host's start-up `PATH` and
    /// directory.
    All {
        path: Option<OsString>,
        cwd: PathBuf,
    },
}

impl ProcGrants {
    /// Exactly these commands (each must resolve now), passing `env` to them; 30 s and
    /// 1 MiB per stream by default.
    pub fn new(commands: &[String], env: EnvGrants) -> Result<ProcGrants, ToolSetupError> {
        let cwd = std::env::current_dir().map_err(ToolSetupError::WorkingDirectory)?;
        let path = std::env::var_os("PATH");
        let mut resolved = BTreeMap::new();
        for name in commands {
            let found =
                resolve(name, path.as_deref(), &cwd).map_err(|why| ToolSetupError::Command {
                    name: name.clone(),
                    why,
                })?;
            resolved.insert(name.clone(), found);
        }
        Ok(ProcGrants::with(Commands::Only(resolved), env))
    }

    /// Every command (`--allow-run` without a value).
    pub fn all(env: EnvGrants) -> Result<ProcGrants, ToolSetupError> {
        let cwd = std::env::current_dir().map_err(ToolSetupError::WorkingDirectory)?;
        let path = std::env::var_os("PATH");
        Ok(ProcGrants::with(Commands::All { path, cwd }, env))
    }

    fn with(commands: Commands, env: EnvGrants) -> ProcGrants {
        ProcGrants {
            commands,
            env,
            timeout: Duration::from_secs(30),
            max_output: 1 << 20,
        }
    }

    /// How long a command may run, and the most bytes kept of each of its outputs.
    pub fn with_limits(mut self, timeout: Duration, max_output: usize) -> ProcGrants {
        self.timeout = timeout;
        self.max_output = max_output;
        self
    }

    /// The absolute path `cmd` runs, if it is granted.
    pub fn resolved(&self, cmd: &str) -> Option<PathBuf> {
        match &self.commands {
            Commands::Only(map) => map.get(cmd).cloned(),
            Commands::All { path, cwd } => resolve(cmd, path.as_deref(), cwd).ok(),
        }
    }

    /// Checks the call and prepares the command: a denial or a bad argument is returned at
    /// once, before anything runs; the future then runs it to its end (it must be polled
    /// inside a tokio runtime). Dropping the future kills the command.
    pub fn start(
        &self,
        cmd: &str,
        args: &[String],
    ) -> Result<impl Future<Output = Result<HostValue, HostError>> + 'static, HostError> {
        if cmd.contains('\0') || args.iter().any(|a| a.contains('\0')) {
            return Err(value_error(
                TOOL,
                "a command or argument cannot contain a NUL byte",
            ));
        }
        let program = match (&self.commands, self.resolved(cmd)) {
            (_, Some(p)) => p,
            (Commands::All { .. }, None) => {
                return Err(io_error(TOOL, format!("cannot find the command `{cmd}`")))
            }
            (Commands::Only(_), None) => {
                return Err(Denial::new(
                    "grant:run",
                    format!("running `{cmd}` is not allowed (grant it with --allow-run={cmd})"),
                )
                .into_host_error(TOOL))
            }
        };
        let mut command = tokio::process::Command::new(&program);
        command
            .args(args)
            .env_clear()
            .envs(self.env.for_child())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let (timeout, cap) = (self.timeout, self.max_output);
        let shown = cmd.to_string();
        Ok(async move { run(command, &shown, timeout, cap).await })
    }
}

/// Spawns `command` and waits for it within `timeout`, keeping at most `cap` bytes of each
/// output.
async fn run(
    mut command: tokio::process::Command,
    cmd: &str,
    timeout: Duration,
    cap: usize,
) -> Result<HostValue, HostError> {
    let mut child = command
        .spawn()
        .map_err(|e| io_error(TOOL, format!("cannot start `{cmd}`: {e}")))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        // Both at once: a command blocked writing one pipe would never close the other.
        let (out, err) = futures_util::future::try_join(
            read_capped(stdout, cap, "standard output"),
            read_capped(stderr, cap, "standard error"),
        )
        .await?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, out, err))
    };
    let outcome = tokio::time::timeout(timeout, work).await;
    let why = match outcome {
        Ok(Ok((status, out, err))) => {
            let fields = vec![
                ("status".to_string(), HostValue::int(exit_code(status))),
                ("stdout".to_string(), HostValue::str(lossy(out))),
                ("stderr".to_string(), HostValue::str(lossy(err))),
            ];
            return Ok(HostValue::new(HostData::Record(fields)));
        }
        Ok(Err(why)) => why,
        Err(_) => format!("did not finish within {}", secs(timeout)),
    };
    // Kill it and reap it, so it leaves neither a running process nor a zombie behind.
    let _ = child.start_kill();
    let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
    Err(io_error(TOOL, format!("`{cmd}` {why}; it was stopped")))
}

/// Everything `stream` yields, or an error once it passes `cap` bytes.
async fn read_capped(
    stream: Option<impl AsyncRead + Unpin>,
    cap: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    let Some(stream) = stream else {
        return Ok(Vec::new());
    };
    let mut buf = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    stream
        .take(limit)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("failed reading its {what}: {e}"))?;
    if buf.len() > cap {
        return Err(format!("wrote more than {cap} bytes to its {what}"));
    }
    Ok(buf)
}

fn exit_code(status: std::process::ExitStatus) -> i64 {
    if let Some(code) = status.code() {
        return i64::from(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128 + i64::from(sig);
        }
    }
    -1
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The absolute path of the executable `name` names: with a `/`, against `cwd`; otherwise
/// the first executable regular file in an absolute `PATH` directory.
fn resolve(name: &str, path: Option<&std::ffi::OsStr>, cwd: &Path) -> Result<PathBuf, String> {
    if name.is_empty() || name.contains('\0') {
        return Err("not a command name".into());
    }
    if name.contains('/') {
        let p = cwd.join(name);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!("not an executable file ({})", p.display()))
        };
    }
    let dirs = path.map(std::env::split_paths).into_iter().flatten();
    dirs.filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| "not an executable on PATH".into())
}

fn is_executable(p: &Path) -> bool {
    let Ok(m) = std::fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        m.is_file()
    }
}
