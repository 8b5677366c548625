//! Shared by the end-to-end tests of the `aivm` binary: running it with no model configuration
//! coming from the environment, reading what it printed, checking its exit code, temp folders.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root: examples and programs are named relative to it.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `aivm` to be run in `dir` without colour, and without the keys and base URLs of the
/// environment, so that a model no `aivm.toml` binds falls back to its transcript.
pub fn aivm_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aivm"));
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL");
    cmd
}

/// Runs `aivm args` in `dir` (see [`aivm_command`]).
pub fn aivm_in(dir: &Path, args: &[&str]) -> Output {
    aivm_command(dir)
        .args(args)
        .output()
        .expect("the aivm binary runs")
}

/// Runs `aivm args` at the repository root.
pub fn aivm(args: &[&str]) -> Output {
    aivm_in(&root(), args)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, and that nothing panicked.
pub fn assert_exit(o: &Output, code: i32) {
    assert!(
        !stderr(o).contains("panicked"),
        "aivm panicked:\n{}",
        stderr(o)
    );
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// A fresh, empty temporary folder for the test `name` of the suite `suite`.
pub fn temp_dir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aivm-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
