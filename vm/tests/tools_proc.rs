//! `proc.run` over real subprocesses (THREATS 22): exact-name grants, no shell, a scrubbed
//! environment (no `LD_*` even when granted), empty standard input, exit statuses, output
//! caps, and a timeout that kills and reaps the command.

use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use aivm_vm::host::tools::{EnvGrants, ProcGrants, ToolSetupError};
use aivm_vm::{HostData, HostError, HostValue};

/// Sets the variables these tests look for, once (the test threads share the process).
fn setup_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("LD_PRELOAD", "/nonexistent/aivm-canary-preload.so");
        std::env::set_var("LD_LIBRARY_PATH", "/nonexistent/aivm-canary-lib");
        std::env::set_var("DYLD_INSERT_LIBRARIES", "/nonexistent/aivm-canary.dylib");
        std::env::set_var("AIVM_TOOLS_GRANTED", "granted-value");
        std::env::set_var("AIVM_TOOLS_HIDDEN", "hidden-value");
    });
}

fn grants(cmds: &[&str], env: EnvGrants) -> ProcGrants {
    let cmds: Vec<String> = cmds.iter().map(|c| c.to_string()).collect();
    ProcGrants::new(&cmds, env).expect("the commands exist")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `{status, stdout, stderr}` of a finished command.
fn fields(v: &HostValue) -> (i64, String, String) {
    let HostData::Record(fields) = &v.data else {
        panic!("a record: {v:?}")
    };
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["status", "stdout", "stderr"]);
    let HostData::Int(status) = fields[0].1.data else {
        panic!("an int status")
    };
    let out = fields[1].1.as_str().expect("text").to_string();
    let err = fields[2].1.as_str().expect("text").to_string();
    (status, out, err)
}

async fn run(g: &ProcGrants, cmd: &str, args: &[&str]) -> Result<HostValue, HostError> {
    g.start(cmd, &strings(args))?.await
}

fn denied_rule(r: Result<HostValue, HostError>) -> String {
    let e = r.expect_err("a denial");
    assert_eq!(e.kind, "PolicyDenied", "{e:?}");
    let Some(HostData::Record(fields)) = e.payload.as_deref().map(|p| &p.data) else {
        panic!("a payload: {e:?}")
    };
    fields
        .iter()
        .find(|(n, _)| n == "rule")
        .and_then(|(_, v)| v.as_str())
        .expect("a rule")
        .to_string()
}

#[tokio::test]
async fn the_environment_is_cleared_but_for_granted_variables_and_never_passes_loader_ones() {
    setup_env();
    let only =
        EnvGrants::only(&strings(&["AIVM_TOOLS_GRANTED", "LD_PRELOAD", "NOT_SET_X"])).unwrap();
    let (status, out, _) = fields(&run(&grants(&["env"], only), "env", &[]).await.unwrap());
    assert_eq!(status, 0);
    // Exactly the one granted variable that is set and is not a loader variable.
    assert_eq!(out, "AIVM_TOOLS_GRANTED=granted-value\n");
    // Everything granted: the host's variables, still without LD_*/DYLD_*.
    let (_, out, _) = fields(
        &run(&grants(&["env"], EnvGrants::all()), "env", &[])
            .await
            .unwrap(),
    );
    assert!(out.contains("AIVM_TOOLS_HIDDEN=hidden-value"), "{out}");
    for line in out.lines() {
        assert!(
            !line.starts_with("LD_") && !line.starts_with("DYLD_"),
            "a loader variable reached the command: {line}"
        );
    }
    // Nothing granted: an empty environment (not even PATH).
    let (_, out, _) = fields(
        &run(&grants(&["env"], EnvGrants::none()), "env", &[])
            .await
            .unwrap(),
    );
    assert_eq!(out, "");
}

#[tokio::test]
async fn only_commands_granted_by_exact_name_run() {
    let g = grants(&["echo"], EnvGrants::none());
    let (status, out, _) = fields(&run(&g, "echo", &["hi"]).await.unwrap());
    assert_eq!((status, out.as_str()), (0, "hi\n"));
    let echo_path = g.resolved("echo").expect("resolved at grant time");
    assert!(echo_path.is_absolute(), "{}", echo_path.display());
    for other in [
        "sh",
        "ECHO",
        "echo ",
        " echo",
        "./echo",
        "echo; id",
        "echo && id",
        echo_path.to_str().unwrap(),
    ] {
        assert_eq!(
            denied_rule(run(&g, other, &[]).await),
            "grant:run",
            "{other:?}"
        );
    }
    assert_eq!(
        run(&g, "ec\0ho", &[]).await.expect_err("NUL").kind,
        "ValueError"
    );
    assert_eq!(
        run(&g, "echo", &["a\0b"]).await.expect_err("NUL").kind,
        "ValueError"
    );
    // A grant of a command that does not exist is a configuration error at start.
    let missing = ProcGrants::new(&strings(&["aivm-no-such-command-x"]), EnvGrants::none());
    assert!(matches!(missing, Err(ToolSetupError::Command { .. })));
}

#[tokio::test]
async fn arguments_reach_the_program_as_they_are_with_no_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("touched");
    let m = marker.to_str().unwrap();
    let g = grants(&["echo"], EnvGrants::none());
    let args = [
        format!("a; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        "*".to_string(),
        "| cat".to_string(),
        "$HOME".to_string(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, out, _) = fields(&run(&g, "echo", &refs).await.unwrap());
    assert_eq!(out, format!("{}\n", args.join(" ")));
    assert!(!marker.exists(), "a shell ran");
}

#[tokio::test]
async fn statuses_signals_and_an_empty_standard_input() {
    let g = grants(&["sh", "cat"], EnvGrants::none()).with_limits(Duration::from_secs(10), 1 << 16);
    let (status, out, err) = fields(
        &run(&g, "sh", &["-c", "echo out; echo err >&2; exit 3"])
            .await
            .unwrap(),
    );
    assert_eq!((status, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (status, _, _) = fields(&run(&g, "sh", &["-c", "kill -9 $$"]).await.unwrap());
    assert_eq!(status, 128 + 9);
    // `cat` reads standard input: it is empty, so cat ends at once.
    let started = Instant::now();
    let (status, out, _) = fields(&run(&g, "cat", &[]).await.unwrap());
    assert_eq!((status, out.as_str()), (0, ""));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Output that is not UTF-8 is replaced, not an error.
    let (_, out, _) = fields(&run(&g, "sh", &["-c", "printf 'a\\377b'"]).await.unwrap());
    assert_eq!(out, "a\u{fffd}b");
}

#[tokio::test]
async fn output_past_the_cap_stops_the_command() {
    let g = grants(&["yes", "sh"], EnvGrants::none()).with_limits(Duration::from_secs(20), 1000);
    let started = Instant::now();
    let e = run(&g, "yes", &[]).await.expect_err("capped");
    assert_eq!(e.kind, "IoError");
    assert!(e.message.contains("more than 1000 bytes"), "{}", e.message);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Standard error is capped the same way; exactly the cap is fine.
    let e = run(&g, "sh", &["-c", "yes >&2"]).await.expect_err("capped");
    assert!(e.message.contains("standard error"), "{}", e.message);
    let (_, out, _) = fields(
        &run(&g, "sh", &["-c", "head -c 1000 /dev/zero | tr '\\0' x"])
            .await
            .unwrap(),
    );
    assert_eq!(out.len(), 1000);
}

/// The processes (pid, state) whose command line is exactly `args`, or that are zombies
/// of this process named `comm`.
fn processes_like(args: &[&str], comm: &str) -> Vec<(u32, char)> {
    let me = std::process::id();
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let base = Path::new("/proc").join(pid.to_string());
        let cmdline = std::fs::read(base.join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(base.join("stat")).unwrap_or_default();
        // stat: "pid (comm) state ppid ..."
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let state = parts.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let name = head.split_once(" (").map(|(_, n)| n).unwrap_or("");
        if cmdline == want || (ppid == me && state == 'Z' && name == comm) {
            found.push((pid, state));
        }
    }
    found
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_and_reaped() {
    let g = grants(&["sleep"], EnvGrants::none()).with_limits(Duration::from_millis(500), 1000);
    // An unusual duration names this test's command among the machine's processes.
    let args = ["sleep", "9.87654"];
    let started = Instant::now();
    let e = run(&g, "sleep", &args[1..]).await.expect_err("timed out");
    let took = started.elapsed();
    assert_eq!(e.kind, "IoError");
    assert!(e.message.contains("did not finish within"), "{}", e.message);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    // Neither running nor a zombie.
    assert_eq!(processes_like(&args, "sleep"), []);

    // Dropping the run (the host gave up on it) kills the command too.
    let drop_args = ["sleep", "9.76543"];
    let fut = g.start("sleep", &strings(&drop_args[1..])).unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(300), fut).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<_> = processes_like(&drop_args, "sleep")
            .into_iter()
            .filter(|(_, state)| *state != 'Z')
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_denial_is_known_before_anything_starts_outside_a_runtime() {
    // No tokio runtime here: the check itself needs none, and a denial starts nothing.
    let g = grants(&["echo"], EnvGrants::none());
    let e = g
        .start("rm", &strings(&["-rf", "/"]))
        .err()
        .expect("denied");
    assert_eq!(e.kind, "PolicyDenied");
    assert!(e.message.contains("--allow-run=rm"), "{}", e.message);
}
