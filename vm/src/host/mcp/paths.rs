//! The file grants applied to an MCP call before the server sees it (spec/mcp.md §Client):
//! each argument the server's `paths` names is resolved (symlinks and `..` included) and must
//! lie beneath a granted root of its access, with no denied path on the way in or beneath it.
//! The server reads whatever it is pointed at, so the check is on the resolved path.

use std::path::{Component, Path, PathBuf};

use serde_json::Value as J;

use super::config::{PathAccess, ServerConfig};
use crate::policy::{Denial, FsGrantLists, PathGrants};

/// The rule of a refusal.
pub const RULE: &str = "fs";

/// Checks the path arguments of a call of `tool` (as the server names it), and replaces each
/// by the absolute, resolved path it checked, so that the server opens exactly that (and a
/// relative path means what it means to the program). `cwd` is the folder relative paths are
/// taken from (the run's working directory). An argument that is absent is not checked; one
/// that is not a string (or a list of strings) is refused.
pub fn check_paths(
    server: &ServerConfig,
    id: &str,
    tool: &str,
    cwd: &Path,
    args: &mut serde_json::Map<String, J>,
    grants: &FsGrantLists,
) -> Result<(), Denial> {
    for (arg, access) in server.path_args(tool) {
        let (list, kind) = match access {
            PathAccess::Read => (&grants.read, "read"),
            PathAccess::Write => (&grants.write, "write"),
        };
        let mut check = |p: &mut J| -> Result<(), Denial> {
            let J::String(text) = p else {
                return Err(not_a_path(id, arg));
            };
            let resolved = check_one(id, arg, text, cwd, list, kind)?;
            *p = J::String(resolved.to_string_lossy().into_owned());
            Ok(())
        };
        match args.get_mut(arg) {
            None | Some(J::Null) => continue,
            Some(J::Array(items)) => items.iter_mut().try_for_each(&mut check)?,
            Some(p) => check(p)?,
        }
    }
    Ok(())
}

fn not_a_path(id: &str, arg: &str) -> Denial {
    Denial::new(
        RULE,
        format!("{id}: argument `{arg}` must be a path (a string or a list of strings)"),
    )
}

fn check_one(
    id: &str,
    arg: &str,
    text: &str,
    cwd: &Path,
    grants: &PathGrants,
    kind: &str,
) -> Result<PathBuf, Denial> {
    // Quoted and escaped: a path may hold anything.
    let shown = format!("{text:?}");
    let Some(path) = resolve(&cwd.join(text)) else {
        return Err(Denial::new(
            RULE,
            format!("{id}: argument `{arg}` = {shown} cannot be resolved (a `..` past a missing folder, or no existing parent)"),
        ));
    };
    for d in &grants.deny {
        let d = resolve(d).unwrap_or_else(|| d.clone());
        if path.starts_with(&d) || d.starts_with(&path) {
            return Err(Denial::new(
                RULE,
                format!(
                    "{id}: argument `{arg}` = {shown} reaches {}, which is denied for {kind}",
                    d.display()
                ),
            ));
        }
    }
    let granted = grants.all
        || grants
            .roots
            .iter()
            .any(|r| path.starts_with(resolve(r).unwrap_or_else(|| r.clone())));
    if granted {
        Ok(path)
    } else {
        Err(Denial::new(
            RULE,
            format!(
                "{id}: argument `{arg}` = {shown} ({}) is not beneath a granted {kind} root: add --allow-{kind}=PATH",
                path.display()
            ),
        ))
    }
}

/// The path with every symlink resolved: the longest existing ancestor canonicalised, then
/// the rest appended (`.` dropped; `..` in the rest, which no file system could resolve
/// yet, gives `None`).
fn resolve(path: &Path) -> Option<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Some(out);
        }
        let name = existing.file_name()?.to_os_string();
        match Path::new(&name).components().next() {
            Some(Component::Normal(_)) => rest.push(name),
            _ => return None,
        }
        if !existing.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        server: ServerConfig,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for d in ["granted/sub", "granted/secret", "outside"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("granted/a.txt"), "a").unwrap();
        std::fs::write(root.join("outside/b.txt"), "b").unwrap();
        std::os::unix::fs::symlink(root.join("outside"), root.join("granted/link")).unwrap();
        let server: ServerConfig = toml::from_str(
            r#"command = "x"
paths = { "read_text_file.path" = "read", "write_file.path" = "write", "read_multiple_files.paths" = "read" }"#,
        )
        .unwrap();
        Fixture {
            _dir: dir,
            root,
            server,
        }
    }

    fn grants(f: &Fixture) -> FsGrantLists {
        FsGrantLists {
            read: PathGrants {
                all: false,
                roots: vec![f.root.join("granted")],
                deny: vec![f.root.join("granted/secret")],
            },
            write: PathGrants {
                all: false,
                roots: vec![f.root.join("granted/sub")],
                deny: vec![],
            },
        }
    }

    fn check(f: &Fixture, tool: &str, args: J) -> Result<(), Denial> {
        let J::Object(mut map) = args else {
            unreachable!()
        };
        check_paths(
            &f.server,
            "files.x",
            tool,
            &f.root.join("granted"),
            &mut map,
            &grants(f),
        )
    }

    #[test]
    fn granted_paths_pass() {
        let f = fixture();
        let ok = [
            ("read_text_file", json!({"path": "a.txt"})),
            (
                "read_text_file",
                json!({"path": f.root.join("granted/a.txt")}),
            ),
            ("read_text_file", json!({"path": "sub/../a.txt"})),
            ("read_text_file", json!({"path": "sub/new/deeper.txt"})),
            ("write_file", json!({"path": "sub/new.txt", "content": "x"})),
            ("read_multiple_files", json!({"paths": ["a.txt", "sub"]})),
            ("list_directory", json!({"path": "/etc"})),
            ("read_text_file", json!({"other": "/etc/passwd"})),
        ];
        for (tool, args) in ok {
            assert_eq!(check(&f, tool, args.clone()), Ok(()), "{tool} {args}");
        }
    }

    #[test]
    fn escapes_are_refused() {
        let f = fixture();
        let bad = [
            (
                "read_text_file",
                json!({"path": "../outside/b.txt"}),
                "not beneath",
            ),
            (
                "read_text_file",
                json!({"path": "link/b.txt"}),
                "not beneath",
            ),
            ("read_text_file", json!({"path": "link"}), "not beneath"),
            (
                "read_text_file",
                json!({"path": "/etc/passwd"}),
                "not beneath",
            ),
            ("read_text_file", json!({"path": "secret/x"}), "denied"),
            ("read_text_file", json!({"path": "."}), "denied"),
            (
                "read_text_file",
                json!({"path": "missing/../../outside/b.txt"}),
                "cannot be resolved",
            ),
            ("write_file", json!({"path": "a.txt"}), "granted write root"),
            (
                "read_multiple_files",
                json!({"paths": ["a.txt", "../outside/b.txt"]}),
                "not beneath",
            ),
            (
                "read_multiple_files",
                json!({"paths": ["a.txt", 3]}),
                "must be a path",
            ),
            (
                "read_text_file",
                json!({"path": {"p": 1}}),
                "must be a path",
            ),
        ];
        for (tool, args, want) in bad {
            let d = check(&f, tool, args.clone()).unwrap_err();
            assert_eq!(d.rule, "fs");
            assert!(d.reason.contains(want), "{tool} {args}: {}", d.reason);
            assert!(d.reason.starts_with("files.x: "), "{}", d.reason);
        }
    }
}
