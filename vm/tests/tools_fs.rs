//! `fs.read`, `fs.write` and `fs.list` over real files (THREATS 17–20): traversal spellings,
//! symlink escapes, a symlinked root, deny entries by identity (NFD, upper case, hard and
//! symbolic links), allow+deny conflicts, writes that must not follow links, listings, caps,
//! and a race that swaps a directory and a symlink to outside 10,000 times.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aivm_vm::host::tools::FsRoots;
use aivm_vm::{HostData, HostError, HostValue};

/// Text no file inside a root holds: any result containing it is an escape.
const CANARY: &str = "CANARY-outside-the-root-7f3a";

/// `tmp/root/{a.txt, sub/b.txt}` and `tmp/outside/secret.txt` (the canary).
struct Tree {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    // Canonical, so that the paths tests build are the ones the roots are opened at.
    let base = tmp.path().canonicalize().expect("canonical");
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("a.txt"), "alpha").unwrap();
    std::fs::write(root.join("sub/b.txt"), "beta").unwrap();
    std::fs::write(outside.join("secret.txt"), CANARY).unwrap();
    Tree {
        _tmp: tmp,
        base,
        root,
        outside,
    }
}

fn read_roots(roots: &[&Path], deny: &[&Path]) -> FsRoots {
    let roots: Vec<PathBuf> = roots.iter().map(|p| p.to_path_buf()).collect();
    let deny: Vec<PathBuf> = deny.iter().map(|p| p.to_path_buf()).collect();
    FsRoots::open(&roots, &[], &deny, &[]).expect("roots open")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test paths")
}

fn text(v: &HostValue) -> &str {
    v.as_str().expect("a string")
}

/// The rule of a `PolicyDenied` error, or a panic naming what came instead.
fn rule(r: Result<impl std::fmt::Debug, HostError>) -> String {
    let e = match r {
        Ok(v) => panic!("expected a denial, got {v:?}"),
        Err(e) => e,
    };
    assert_eq!(e.kind, "PolicyDenied", "{e:?}");
    assert!(!e.message.contains(CANARY));
    let Some(HostData::Record(fields)) = e.payload.as_deref().map(|p| &p.data) else {
        panic!("a denial carries {{tool, rule, reason}}: {e:?}")
    };
    let field = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(field("tool").starts_with("fs."), "{fields:?}");
    field("rule")
}

fn kind(r: Result<impl std::fmt::Debug, HostError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            assert!(!e.message.contains(CANARY), "{e:?}");
            e.kind
        }
    }
}

fn list(roots: &FsRoots, p: &Path) -> Vec<String> {
    let out = roots.list(s(p)).expect("listed");
    let HostData::List(items) = out.value.data else {
        panic!("a list")
    };
    items.iter().map(|v| text(v).to_string()).collect()
}

#[test]
fn reads_beneath_a_root_and_relative_paths_start_at_the_working_directory() {
    // The tests run in the crate's directory.
    let roots = read_roots(&[Path::new(".")], &[]);
    let manifest = roots.read("Cargo.toml").expect("read");
    assert!(text(&manifest.value).contains("name = \"aivm-vm\""));
    assert!(manifest.marks.is_empty());
    // `..` that stays inside the root is followed; out of it is not.
    assert!(roots.read("src/../Cargo.toml").is_ok());
    assert_eq!(rule(roots.read("../Cargo.toml")), "grant:read");
    assert_eq!(rule(roots.read("src/../../Cargo.toml")), "grant:read");
    // An absolute spelling of the same file maps to the same root.
    let abs = std::env::current_dir().unwrap().join("Cargo.toml");
    assert!(roots.read(s(&abs)).is_ok());
}

#[test]
fn traversal_spellings_never_reach_outside() {
    let t = tree();
    let roots = read_roots(&[&t.root], &[]);
    assert_eq!(
        text(&roots.read(s(&t.root.join("a.txt"))).unwrap().value),
        "alpha"
    );
    let root = s(&t.root);
    for escape in [
        format!("{root}/../outside/secret.txt"),
        format!("{root}/sub/../../outside/secret.txt"),
        format!(
            "{root}/sub/../../../{}/outside/secret.txt",
            t.base.display()
        ),
        s(&t.outside.join("secret.txt")).to_string(),
        "/etc/passwd".to_string(),
        "../../../../../../../../etc/passwd".to_string(),
    ] {
        assert_eq!(rule(roots.read(&escape)), "grant:read", "{escape}");
    }
    // A file outside that does not exist is "not allowed" too: no probing.
    let missing = t.outside.join("nothing-here.txt");
    assert_eq!(rule(roots.read(s(&missing))), "grant:read");
    // Inside the root, a missing file is an IoError.
    assert_eq!(
        kind(roots.read(&format!("{root}/nothing-here.txt"))),
        "IoError"
    );
    // These are ordinary names inside the root: not found, never the outside file.
    for literal in [
        format!("{root}/%2e%2e/outside/secret.txt"),
        format!("{root}/..\\outside\\secret.txt"),
        format!("{root}/..\\..\\"),
        format!("{root}/~/secret.txt"),
    ] {
        assert_eq!(kind(roots.read(&literal)), "IoError", "{literal}");
    }
    // `~` is a name like any other: a directory called `~` inside the root is read.
    std::fs::create_dir(t.root.join("~")).unwrap();
    std::fs::write(t.root.join("~/x.txt"), "tilde").unwrap();
    assert_eq!(
        text(&roots.read(&format!("{root}/~/x.txt")).unwrap().value),
        "tilde"
    );
    // A NUL byte would cut the path in C: refused before anything is touched.
    assert_eq!(kind(roots.read(&format!("{root}/a\0b"))), "ValueError");
    assert_eq!(
        kind(roots.read(&format!("{root}/a.txt\0/../../outside/secret.txt"))),
        "ValueError"
    );
    assert_eq!(kind(roots.read("")), "ValueError");
    // Nothing granted: everything is denied.
    let none = read_roots(&[], &[]);
    assert_eq!(rule(none.read(s(&t.root.join("a.txt")))), "grant:read");
}

#[test]
fn symlinks_are_followed_only_while_they_stay_inside() {
    let t = tree();
    let r = &t.root;
    std::os::unix::fs::symlink("/etc", r.join("etc")).unwrap();
    std::os::unix::fs::symlink("../outside", r.join("up")).unwrap();
    std::os::unix::fs::symlink(t.outside.join("secret.txt"), r.join("abs-file")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", r.join("rel-file")).unwrap();
    std::os::unix::fs::symlink("sub/../../outside/secret.txt", r.join("sneaky")).unwrap();
    std::os::unix::fs::symlink("sub", r.join("inner")).unwrap();
    std::os::unix::fs::symlink("../a.txt", r.join("sub/to-a")).unwrap();
    std::os::unix::fs::symlink("loop2", r.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", r.join("loop2")).unwrap();
    let roots = read_roots(&[r], &[]);
    for escape in [
        "etc/passwd",
        "etc/hostname",
        "up/secret.txt",
        "abs-file",
        "rel-file",
        "sneaky",
    ] {
        let p = r.join(escape);
        assert_eq!(rule(roots.read(s(&p))), "grant:read", "{escape}");
    }
    // Links that stay inside resolve, `..` in a link relative to the link's directory.
    assert_eq!(
        text(&roots.read(s(&r.join("inner/b.txt"))).unwrap().value),
        "beta"
    );
    assert_eq!(
        text(&roots.read(s(&r.join("sub/to-a"))).unwrap().value),
        "alpha"
    );
    assert_eq!(
        text(&roots.read(s(&r.join("inner/to-a"))).unwrap().value),
        "alpha"
    );
    assert_eq!(kind(roots.read(s(&r.join("loop1")))), "IoError");
    // Listing through a link out is refused as well.
    assert_eq!(rule(roots.list(s(&r.join("etc")))), "grant:read");
    assert_eq!(list(&roots, &r.join("inner")), ["b.txt", "to-a"]);
}

#[test]
fn a_symlinked_root_is_pinned_to_the_directory_it_named_at_start() {
    let t = tree();
    let alias = t.base.join("alias");
    std::os::unix::fs::symlink(&t.root, &alias).unwrap();
    let roots = read_roots(&[&alias], &[]);
    // Both the granted spelling and the canonical one reach the root.
    assert_eq!(
        text(&roots.read(s(&alias.join("a.txt"))).unwrap().value),
        "alpha"
    );
    assert_eq!(
        text(&roots.read(s(&t.root.join("a.txt"))).unwrap().value),
        "alpha"
    );
    // Re-pointing the link afterwards does not move the grant: the root is a handle.
    std::fs::remove_file(&alias).unwrap();
    std::fs::create_dir(t.base.join("decoy")).unwrap();
    std::fs::write(t.base.join("decoy/a.txt"), CANARY).unwrap();
    std::os::unix::fs::symlink(t.base.join("decoy"), &alias).unwrap();
    assert_eq!(
        text(&roots.read(s(&alias.join("a.txt"))).unwrap().value),
        "alpha"
    );
    // A root below a symlinked component is opened through it once, at start.
    let via = t.base.join("via");
    std::os::unix::fs::symlink(&t.base, &via).unwrap();
    let nested = read_roots(&[&via.join("root/sub")], &[]);
    assert_eq!(
        text(&nested.read(s(&via.join("root/sub/b.txt"))).unwrap().value),
        "beta"
    );
    assert_eq!(
        rule(nested.read(s(&via.join("root/sub/../a.txt")))),
        "grant:read"
    );
}

/// Whether `a` and `b` are the same file (both exist, same device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[test]
fn deny_entries_match_by_identity_not_by_spelling() {
    let t = tree();
    let secrets = t.root.join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    // "passwörter" with a precomposed ö (NFC).
    let nfc = secrets.join("passw\u{f6}rter.txt");
    std::fs::write(&nfc, CANARY).unwrap();
    let roots = read_roots(&[&t.root], &[&nfc]);
    assert_eq!(rule(roots.read(s(&nfc))), "deny:read");
    // Other spellings: o + combining diaeresis (NFD), upper case. Where the file system
    // folds them to the same file they are denied; where they name another file, that
    // other file is read (it is not the secret); never the secret's contents.
    for other in [
        "passwo\u{308}rter.txt",
        "PASSW\u{d6}RTER.TXT",
        "Passw\u{f6}rter.txt",
    ] {
        let p = secrets.join(other);
        if !p.exists() {
            std::fs::write(&p, "another file").unwrap();
        }
        let got = roots.read(s(&p));
        if same_file(&p, &nfc) {
            assert_eq!(rule(got), "deny:read", "{other}");
        } else {
            assert_eq!(text(&got.unwrap().value), "another file", "{other}");
        }
    }
    // A hard link elsewhere in the root is the same file.
    let public = t.root.join("public");
    std::fs::create_dir(&public).unwrap();
    std::fs::hard_link(&nfc, public.join("harmless.txt")).unwrap();
    assert_eq!(
        rule(roots.read(s(&public.join("harmless.txt")))),
        "deny:read"
    );
    // So is a symlink to it, by any path.
    std::os::unix::fs::symlink("../secrets/passw\u{f6}rter.txt", public.join("link")).unwrap();
    assert_eq!(rule(roots.read(s(&public.join("link")))), "deny:read");
    // The deny entry itself may be written through a link: it denies what it names.
    let alias = t.base.join("alias");
    std::os::unix::fs::symlink(&t.root, &alias).unwrap();
    let via_alias = read_roots(&[&t.root], &[&alias.join("secrets/passw\u{f6}rter.txt")]);
    assert_eq!(rule(via_alias.read(s(&nfc))), "deny:read");
    // The listing of the directory leaves the denied name out (its name is private too).
    let names = list(&roots, &public);
    assert_eq!(
        names,
        ["link"],
        "hard link and file are hidden, the link is shown"
    );
}

#[test]
fn a_denied_directory_covers_everything_beneath_even_what_does_not_exist() {
    let t = tree();
    let roots = read_roots(&[&t.root], &[&t.root.join("sub")]);
    assert_eq!(rule(roots.read(s(&t.root.join("sub/b.txt")))), "deny:read");
    // No probing inside a denied directory: a missing name is denied, not "not found".
    assert_eq!(
        rule(roots.read(s(&t.root.join("sub/missing.txt")))),
        "deny:read"
    );
    assert_eq!(
        rule(roots.read(s(&t.root.join("sub/x/../b.txt")))),
        "deny:read"
    );
    assert_eq!(rule(roots.list(s(&t.root.join("sub")))), "deny:read");
    // Reached through a link, or by its upper-case name where that is the same directory.
    std::os::unix::fs::symlink("sub", t.root.join("door")).unwrap();
    assert_eq!(rule(roots.read(s(&t.root.join("door/b.txt")))), "deny:read");
    assert_eq!(list(&roots, &t.root), ["a.txt", "door"]);
    assert_eq!(
        text(&roots.read(s(&t.root.join("a.txt"))).unwrap().value),
        "alpha"
    );
}

#[test]
fn deny_wins_over_every_grant() {
    let t = tree();
    // Allow and deny of the very same path.
    let same = read_roots(&[&t.root], &[&t.root]);
    assert_eq!(rule(same.read(s(&t.root.join("a.txt")))), "deny:read");
    assert_eq!(rule(same.list(s(&t.root))), "deny:read");
    // A deny above the granted root covers it.
    let above = read_roots(&[&t.root.join("sub")], &[&t.root]);
    assert_eq!(rule(above.read(s(&t.root.join("sub/b.txt")))), "deny:read");
    // Everything granted (`--allow-read` alone is `/`), one directory denied.
    let all = read_roots(&[Path::new("/")], &[&t.outside]);
    assert_eq!(
        rule(all.read(s(&t.outside.join("secret.txt")))),
        "deny:read"
    );
    assert_eq!(
        text(&all.read(s(&t.root.join("a.txt"))).unwrap().value),
        "alpha"
    );
    // Two roots, one inside the other, the inner one denied.
    let nested = read_roots(&[&t.root, &t.root.join("sub")], &[&t.root.join("sub")]);
    assert_eq!(rule(nested.read(s(&t.root.join("sub/b.txt")))), "deny:read");
}

#[test]
fn a_deny_path_renamed_away_stays_denied_and_one_created_later_is_denied() {
    let t = tree();
    let later = t.root.join("later.txt");
    let roots = read_roots(&[&t.root], &[&t.root.join("a.txt"), &later]);
    std::fs::rename(t.root.join("a.txt"), t.root.join("moved.txt")).unwrap();
    assert_eq!(rule(roots.read(s(&t.root.join("moved.txt")))), "deny:read");
    std::fs::write(&later, CANARY).unwrap();
    assert_eq!(rule(roots.read(s(&later))), "deny:read");
}

fn write_roots(read: &[&Path], write: &[&Path], deny_write: &[&Path]) -> FsRoots {
    let v = |ps: &[&Path]| ps.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>();
    FsRoots::open(&v(read), &v(write), &[], &v(deny_write)).expect("roots open")
}

#[test]
fn writes_create_or_truncate_beneath_a_write_root_only() {
    let t = tree();
    let out = t.root.join("out");
    std::fs::create_dir(&out).unwrap();
    let roots = write_roots(
        &[&t.root],
        &[&out],
        &[&out.join("keep.txt"), &out.join("never.txt")],
    );
    let f = out.join("new.txt");
    assert_eq!(
        roots.write(s(&f), "first, longer text").unwrap().value,
        HostValue::null()
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "first, longer text");
    roots.write(s(&f), "second").unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "second");
    // A read grant is not a write grant.
    assert_eq!(
        rule(roots.write(s(&t.root.join("a.txt")), "x")),
        "grant:write"
    );
    assert_eq!(
        std::fs::read_to_string(t.root.join("a.txt")).unwrap(),
        "alpha"
    );
    // Through a link out of the root: refused, the target untouched.
    std::os::unix::fs::symlink("../../outside/secret.txt", out.join("trap")).unwrap();
    std::os::unix::fs::symlink(t.outside.join("secret.txt"), out.join("trap-abs")).unwrap();
    std::os::unix::fs::symlink("../../outside/new.txt", out.join("dangling")).unwrap();
    for trap in ["trap", "trap-abs", "dangling"] {
        assert_eq!(
            rule(roots.write(s(&out.join(trap)), "pwned")),
            "grant:write",
            "{trap}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(t.outside.join("secret.txt")).unwrap(),
        CANARY
    );
    assert!(!t.outside.join("new.txt").exists());
    // Through a link that stays inside: written.
    std::os::unix::fs::symlink("new.txt", out.join("to-new")).unwrap();
    roots.write(s(&out.join("to-new")), "third").unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "third");
    // A denied file is left as it was; a denied name that does not exist is not created.
    std::fs::write(out.join("keep.txt"), "kept").unwrap();
    let again = write_roots(
        &[],
        &[&out],
        &[&out.join("keep.txt"), &out.join("never.txt")],
    );
    assert_eq!(
        rule(again.write(s(&out.join("keep.txt")), "")),
        "deny:write"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "kept"
    );
    std::fs::hard_link(out.join("keep.txt"), out.join("keep-link.txt")).unwrap();
    assert_eq!(
        rule(again.write(s(&out.join("keep-link.txt")), "")),
        "deny:write"
    );
    assert_eq!(
        rule(roots.write(s(&out.join("never.txt")), "x")),
        "deny:write"
    );
    assert!(!out.join("never.txt").exists());
    // Not a regular file, or a missing directory on the way: IoErrors.
    assert_eq!(kind(roots.write(s(&out), "x")), "IoError");
    assert_eq!(
        kind(roots.write(s(&out.join("no/such/dir.txt")), "x")),
        "IoError"
    );
    // Too much text is refused before anything is opened.
    let small = write_roots(&[], &[&out], &[]).with_max_bytes(4);
    assert_eq!(
        kind(small.write(s(&out.join("big.txt")), "12345")),
        "IoError"
    );
    assert!(!out.join("big.txt").exists());
}

#[test]
fn a_file_root_grants_that_file_and_follows_no_link() {
    let t = tree();
    let report = t.root.join("report.txt");
    let roots = write_roots(&[&t.root.join("a.txt")], &[&report], &[]);
    assert_eq!(
        text(&roots.read(s(&t.root.join("a.txt"))).unwrap().value),
        "alpha"
    );
    assert_eq!(rule(roots.read(s(&t.root.join("sub/b.txt")))), "grant:read");
    assert_eq!(rule(roots.read(s(&t.root.join("a.txt/x")))), "grant:read");
    roots.write(s(&report), "done").unwrap();
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "done");
    assert_eq!(
        rule(roots.write(s(&t.root.join("other.txt")), "x")),
        "grant:write"
    );
    // The granted file replaced by a link out: refused.
    std::fs::remove_file(&report).unwrap();
    std::os::unix::fs::symlink(t.outside.join("secret.txt"), &report).unwrap();
    assert_eq!(rule(roots.write(s(&report), "pwned")), "grant:write");
    assert_eq!(
        std::fs::read_to_string(t.outside.join("secret.txt")).unwrap(),
        CANARY
    );
}

#[test]
fn listings_are_sorted_names_and_reads_are_capped_regular_files() {
    let t = tree();
    for n in ["zeta", "Alpha", "beta", "\u{e9}t\u{e9}"] {
        std::fs::write(t.root.join(n), n).unwrap();
    }
    let roots = read_roots(&[&t.root], &[]).with_max_bytes(5);
    assert_eq!(
        list(&roots, &t.root),
        ["Alpha", "a.txt", "beta", "sub", "zeta", "\u{e9}t\u{e9}"]
    );
    assert_eq!(list(&roots, &t.root.join("sub/..")), list(&roots, &t.root));
    assert_eq!(kind(roots.list(s(&t.root.join("a.txt")))), "IoError");
    assert_eq!(kind(roots.read(s(&t.root.join("sub")))), "IoError");
    // At the cap it reads; past it, an IoError rather than a truncated text.
    assert_eq!(
        text(&roots.read(s(&t.root.join("a.txt"))).unwrap().value),
        "alpha"
    );
    std::fs::write(t.root.join("long.txt"), "123456").unwrap();
    assert_eq!(kind(roots.read(s(&t.root.join("long.txt")))), "IoError");
    // Not UTF-8: an IoError.
    std::fs::write(t.root.join("bin"), [0xff, 0xfe]).unwrap();
    assert_eq!(kind(roots.read(s(&t.root.join("bin")))), "IoError");
    // A device granted as a file root is not a regular file: refused, never read forever.
    let zero = read_roots(&[Path::new("/dev/zero")], &[]);
    assert_eq!(kind(zero.read("/dev/zero")), "IoError");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let t = tree();
    let fifo = t.root.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo is not available; skipped");
        return;
    }
    let roots = read_roots(&[&t.root], &[]);
    assert_eq!(kind(roots.read(s(&fifo))), "IoError");
    let w = write_roots(&[], &[&t.root], &[]);
    assert_eq!(kind(w.write(s(&fifo), "x")), "IoError");
}

#[test]
fn marks_report_by_identity_which_paths_a_file_was_found_under() {
    let t = tree();
    let roots = read_roots(&[&t.root], &[]).with_marks(&[t.root.join("sub"), t.outside.clone()]);
    assert_eq!(roots.read(s(&t.root.join("sub/b.txt"))).unwrap().marks, [0]);
    assert!(roots
        .read(s(&t.root.join("a.txt")))
        .unwrap()
        .marks
        .is_empty());
    std::os::unix::fs::symlink("sub/b.txt", t.root.join("b-link")).unwrap();
    assert_eq!(roots.read(s(&t.root.join("b-link"))).unwrap().marks, [0]);
    assert_eq!(roots.list(s(&t.root.join("sub"))).unwrap().marks, [0]);
}

/// One thread swaps `root/d` between a directory and a symlink to `../outside` 10,000 times
/// while another reads `root/d/secret.txt` through the tool: no read may return the outside
/// file. The same path read with std (which follows links) shows the race is real.
#[test]
fn swapping_a_directory_and_a_symlink_never_lets_a_read_out() {
    let t = tree();
    let d = t.root.join("d");
    let held_dir = t.root.join("held-dir");
    let held_link = t.root.join("held-link");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("secret.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("../outside", &held_link).unwrap();
    let roots = read_roots(&[&t.root], &[]);
    let target = d.join("secret.txt");
    let started = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let (inside, refused, escaped) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let naive_escapes = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                match roots.read(s(&target)) {
                    Ok(out) if text(&out.value) == "inside" => {
                        inside.fetch_add(1, Ordering::Relaxed)
                    }
                    Ok(_) => escaped.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        assert!(!e.message.contains(CANARY));
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                };
                if std::fs::read_to_string(&target).is_ok_and(|c| c == CANARY) {
                    naive_escapes.fetch_add(1, Ordering::Relaxed);
                }
                started.store(true, Ordering::Release);
            }
        });
        while !started.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        for _ in 0..10_000 {
            std::fs::rename(&d, &held_dir).unwrap();
            std::fs::rename(&held_link, &d).unwrap();
            std::fs::rename(&d, &held_link).unwrap();
            std::fs::rename(&held_dir, &d).unwrap();
        }
        done.store(true, Ordering::Release);
    });
    let (inside, refused, escaped) = (
        inside.into_inner(),
        refused.into_inner(),
        escaped.into_inner(),
    );
    eprintln!(
        "reads: {inside} inside, {refused} refused, {escaped} escaped; \
         naive std reads that escaped: {}",
        naive_escapes.into_inner()
    );
    assert_eq!(escaped, 0);
    assert!(inside + refused > 0);
    // After the race the directory is back: the tool reads it.
    assert_eq!(text(&roots.read(s(&target)).unwrap().value), "inside");
}

/// The same race on the last component: `root/f` swapped between a regular file and a
/// symlink to the outside file.
#[test]
fn swapping_a_file_and_a_symlink_never_lets_a_read_out() {
    let t = tree();
    let f = t.root.join("f");
    let held_file = t.root.join("held-file");
    let held_link = t.root.join("held-link");
    std::fs::write(&f, "inside").unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", &held_link).unwrap();
    let roots = read_roots(&[&t.root], &[]);
    let done = AtomicBool::new(false);
    let escaped = AtomicUsize::new(0);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                if let Ok(out) = roots.read(s(&f)) {
                    if text(&out.value) != "inside" {
                        escaped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        });
        for _ in 0..10_000 {
            std::fs::rename(&f, &held_file).unwrap();
            std::fs::rename(&held_link, &f).unwrap();
            std::fs::rename(&f, &held_link).unwrap();
            std::fs::rename(&held_file, &f).unwrap();
        }
        done.store(true, Ordering::Release);
    });
    assert_eq!(escaped.into_inner(), 0);
    assert!(reads.into_inner() > 0);
}

/// A race against the deny check: `root/d` swapped between a plain directory and a symlink
/// to a denied directory inside the root. A walk that checked the name it looked up but
/// opened whatever was there a moment later would read the denied file.
#[test]
fn swapping_a_directory_and_a_link_to_a_denied_one_never_reads_the_denied_file() {
    let t = tree();
    let secrets = t.root.join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("x.txt"), CANARY).unwrap();
    let d = t.root.join("d");
    let held_dir = t.root.join("held-dir");
    let held_link = t.root.join("held-link");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("x.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("secrets", &held_link).unwrap();
    let roots = read_roots(&[&t.root], &[&secrets]);
    let done = AtomicBool::new(false);
    let (leaked, inside) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                if let Ok(out) = roots.read(s(&d.join("x.txt"))) {
                    let counter = if text(&out.value) == "inside" {
                        &inside
                    } else {
                        &leaked
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        for _ in 0..10_000 {
            std::fs::rename(&d, &held_dir).unwrap();
            std::fs::rename(&held_link, &d).unwrap();
            std::fs::rename(&d, &held_link).unwrap();
            std::fs::rename(&held_dir, &d).unwrap();
        }
        done.store(true, Ordering::Release);
    });
    assert_eq!(leaked.into_inner(), 0);
    eprintln!("{} reads inside", inside.into_inner());
}

/// The same on the last component: `root/f` swapped between a file and a link to a denied
/// file inside the root.
#[test]
fn swapping_a_file_and_a_link_to_a_denied_one_never_reads_the_denied_file() {
    let t = tree();
    let secret = t.root.join("secret.txt");
    std::fs::write(&secret, CANARY).unwrap();
    let f = t.root.join("f");
    let held_file = t.root.join("held-file");
    let held_link = t.root.join("held-link");
    std::fs::write(&f, "inside").unwrap();
    std::os::unix::fs::symlink("secret.txt", &held_link).unwrap();
    let roots = read_roots(&[&t.root], &[&secret]);
    let done = AtomicBool::new(false);
    let leaked = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                if roots.read(s(&f)).is_ok_and(|o| text(&o.value) != "inside") {
                    leaked.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        for _ in 0..10_000 {
            std::fs::rename(&f, &held_file).unwrap();
            std::fs::rename(&held_link, &f).unwrap();
            std::fs::rename(&f, &held_link).unwrap();
            std::fs::rename(&held_file, &f).unwrap();
        }
        done.store(true, Ordering::Release);
    });
    assert_eq!(leaked.into_inner(), 0);
}
