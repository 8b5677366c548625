//! Language tests: each program in `tests/lang/` ends with an `// expect:` block holding the
//! exact standard output it must print; the program runs through the `aivm` binary, from source
//! and again from its built bytecode, and must exit 0 both times.

use std::path::{Path, PathBuf};
use std::process::Command;

fn expected(src: &str) -> Option<String> {
    let (_, block) = src.split_once("// expect:\n")?;
    let mut out = String::new();
    for line in block.lines() {
        let text = line
            .strip_prefix("// ")
            .or_else(|| line.strip_prefix("//"))?;
        out.push_str(text);
        out.push('\n');
    }
    Some(out)
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_aivm"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the aivm binary runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn programs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/lang exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ail"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_language_program_prints_what_it_expects() {
    let files = programs();
    assert!(files.len() >= 6, "found the programs: {files:?}");
    let out_dir = std::env::temp_dir().join(format!("aivm-lang-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let mut failures = Vec::new();
    for file in &files {
        let src = std::fs::read_to_string(file).expect("read program");
        let want =
            expected(&src).unwrap_or_else(|| panic!("{}: no `// expect:` block", file.display()));
        let path = file.to_str().expect("utf-8 path");
        let (code, out, err) = run(&["run", path]);
        if code != 0 || out != want {
            failures.push(format!(
                "{} (source): exit {code}\n--- expected\n{want}--- got\n{out}--- stderr\n{err}",
                file.display()
            ));
            continue;
        }
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("prog");
        let aib = out_dir.join(format!("{stem}.aib"));
        let aib = aib.to_str().expect("utf-8 path");
        let (code, _, err) = run(&["build", path, "-o", aib]);
        assert_eq!(code, 0, "{}: build failed: {err}", file.display());
        let (code, out, err) = run(&["run", aib]);
        if code != 0 || out != want {
            failures.push(format!(
                "{} (bytecode): exit {code}\n--- got\n{out}--- stderr\n{err}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
