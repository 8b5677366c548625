//! Shared by the security tests (`tests/security_*.rs`): the world a run acts on (a temporary
//! folder of real files, loopback HTTP servers, a recording command), running `aivm` with a
//! policy given as flags and `aivm.toml`, the journal, and the reference checker that re-judges
//! what the run did.

#![allow(dead_code)] // each test binary uses its own subset

pub mod checker;
pub mod journal;
pub mod label;
pub mod pattern;
pub mod policy;
pub mod rng;
pub mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use checker::{Checker, RunFacts, Violation};
use journal::Journal;
use policy::PolicySpec;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/security/NAME`
pub fn asset(name: &str) -> PathBuf {
    root().join("tests/security").join(name)
}

/// A fresh, empty folder for test `name` of suite `suite`, canonical (no symlink in its path,
/// so that resolved paths compare with it).
pub fn temp_world(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aivm-sec-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::canonicalize(&dir).expect("canonical temp dir")
}

/// Writes `text` to `dir/rel`, creating folders.
pub fn put(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write fixture");
}

/// Every regular file under `dir` (not following symlinks) with its bytes, by relative path.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(base, &p, out);
            } else if ft.is_file() {
                let rel = p
                    .strip_prefix(base)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The files that are new or changed between two snapshots.
pub fn changed(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// A finished run: what it printed, how it ended, its journal.
pub struct Run {
    pub output: Output,
    pub journal: Journal,
    pub dir: PathBuf,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Fails the test if aivm panicked or was killed by a signal.
    pub fn assert_no_panic(&self) {
        let err = self.stderr();
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "aivm panicked:\n{err}"
        );
        assert!(
            self.output.status.code().is_some(),
            "aivm was killed by a signal: {:?}\nstderr:\n{err}",
            self.output.status
        );
    }

    /// Fails unless the exit code is `code` (and nothing panicked).
    pub fn assert_exit(&self, code: i32) {
        self.assert_no_panic();
        assert_eq!(
            self.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Lines of stdout starting with `prefix`.
    pub fn lines_with(&self, prefix: &str) -> Vec<String> {
        self.stdout()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// Runs the reference checker over the journal.
    pub fn check(&self, policy: &PolicySpec, facts: &RunFacts) -> Vec<Violation> {
        Checker { policy, facts }.check(&self.journal)
    }

    /// Fails with every violation the checker finds.
    pub fn assert_checker_clean(&self, policy: &PolicySpec, facts: &RunFacts) {
        let v = self.check(policy, facts);
        assert!(
            v.is_empty(),
            "the reference checker rejects {} performed effect(s):\n{}",
            v.len(),
            v.iter()
                .take(20)
                .map(|v| format!("  {v}\n"))
                .collect::<String>()
        );
    }
}

/// `aivm` without model keys, base URLs or colour from the environment.
pub fn aivm_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aivm"));
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// How to run a program.
pub struct RunSpec<'a> {
    pub dir: &'a Path,
    /// The program, relative to `dir` (or absolute).
    pub program: &'a str,
    pub policy: &'a PolicySpec,
    /// Extra `aivm run` options (e.g. `--model`), before the program.
    pub options: Vec<String>,
    /// Arguments for `main`.
    pub args: Vec<String>,
    /// Extra `aivm.toml` text (e.g. `[models]`), written with the policy's sections.
    pub toml_extra: String,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, String)>,
}

impl<'a> RunSpec<'a> {
    pub fn new(dir: &'a Path, program: &'a str, policy: &'a PolicySpec) -> RunSpec<'a> {
        RunSpec {
            dir,
            program,
            policy,
            options: Vec::new(),
            args: Vec::new(),
            toml_extra: String::new(),
            stdin: None,
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn option(mut self, o: impl Into<String>) -> Self {
        self.options.push(o.into());
        self
    }

    pub fn toml(mut self, text: &str) -> Self {
        self.toml_extra.push_str(text);
        self
    }

    /// Runs `aivm run -q --trace journal.jsonl FLAGS OPTIONS PROGRAM -- ARGS` in `dir`, with the
    /// policy's `aivm.toml` in `dir` (the program's folder, or the working directory).
    pub fn run(self) -> Run {
        let toml = format!("{}\n{}", self.toml_extra, self.policy.toml());
        std::fs::write(self.dir.join("aivm.toml"), toml).expect("write aivm.toml");
        let journal_path = self.dir.join("journal.jsonl");
        let _ = std::fs::remove_file(&journal_path);
        let mut cmd = aivm_command(self.dir);
        cmd.arg("run").arg("-q").arg("--trace").arg(&journal_path);
        cmd.arg("--config").arg(self.dir.join("aivm.toml"));
        cmd.args(self.policy.flags());
        cmd.args(&self.options);
        cmd.arg(self.program);
        if !self.args.is_empty() {
            cmd.arg("--").args(&self.args);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let output = match &self.stdin {
            None => cmd
                .stdin(std::process::Stdio::null())
                .output()
                .expect("aivm runs"),
            Some(input) => {
                use std::io::Write;
                cmd.stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                let mut child = cmd.spawn().expect("aivm runs");
                if let Some(mut si) = child.stdin.take() {
                    let _ = si.write_all(input);
                }
                child.wait_with_output().expect("aivm runs")
            }
        };
        let journal = if journal_path.exists() {
            Journal::read(&journal_path)
        } else {
            Journal::default()
        };
        Run {
            output,
            journal,
            dir: self.dir.to_path_buf(),
        }
    }
}

/// Copies a program from `tests/security/` into `dir` (with its name), so that aivm.toml and
/// the transcript beside it are the test's.
pub fn install(dir: &Path, asset_name: &str) -> String {
    let src = asset(asset_name);
    let name = src
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    std::fs::copy(&src, dir.join(&name)).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    name
}

/// A shell script at `dir/NAME` that appends its arguments and selected environment to `log`,
/// one line per run: the recorder the proc tests count real invocations with.
pub fn recorder(dir: &Path, name: &str, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\nprintf 'run %s LD_PRELOAD=%s SECRET_TOKEN=%s\\n' \"$*\" \"${{LD_PRELOAD-unset}}\" \"${{SECRET_TOKEN-unset}}\" >> '{}'\necho recorded\n",
        log.display()
    );
    std::fs::write(&path, script).expect("write recorder");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A model transcript (spec/scripted.md) built turn by turn.
#[derive(Default, Clone)]
pub struct Transcript {
    pub turns: Vec<serde_json::Value>,
}

impl Transcript {
    pub fn calls(mut self, calls: &[(&str, serde_json::Value)]) -> Self {
        let calls: Vec<serde_json::Value> = calls
            .iter()
            .map(|(n, a)| serde_json::json!({"name": n, "arguments": a}))
            .collect();
        self.turns.push(serde_json::json!({ "tool_calls": calls }));
        self
    }

    pub fn calls_when(mut self, when: &str, calls: &[(&str, serde_json::Value)]) -> Self {
        let calls: Vec<serde_json::Value> = calls
            .iter()
            .map(|(n, a)| serde_json::json!({"name": n, "arguments": a}))
            .collect();
        self.turns
            .push(serde_json::json!({ "when": when, "tool_calls": calls }));
        self
    }

    pub fn say(mut self, content: &str) -> Self {
        self.turns.push(serde_json::json!({ "content": content }));
        self
    }

    pub fn say_when(mut self, when: &str, content: &str) -> Self {
        self.turns
            .push(serde_json::json!({ "when": when, "content": content }));
        self
    }

    pub fn json(&self) -> String {
        serde_json::json!({ "turns": self.turns }).to_string()
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.json()).expect("write transcript");
    }
}
