//! `fs.read`, `fs.write` and `fs.list`: files reached only beneath a granted root, by handle.
//!
//! How a program's path is resolved (SEC §3, THREATS 17–20):
//! - The path (absolute, or relative to the working directory the host started in; NUL bytes
//!   refused; `~`, `%2e%2e` and backslashes are ordinary characters) is mapped *lexically* to
//!   a granted root whose absolute path is a component-wise prefix of it (as granted, or
//!   canonical). Nothing outside every root is touched: such a path is "not allowed", never
//!   "not found", so a program cannot probe for files.
//! - The remainder is walked one component at a time from the root's directory handle
//!   (`cap_std::fs::Dir`): each name is looked up with `lstat` in the directory handle above
//!   it and opened from that handle, and the opened handle must have the identity (device,
//!   inode) `lstat` saw, so no symlink is ever followed behind our back and a directory
//!   swapped for a link mid-walk is caught (the race test swaps them 10,000 times). `..`
//!   returns to the handle we came from and may not climb above the root. Symlinks are
//!   followed by hand: a relative target is spliced into the walk (so it cannot leave the
//!   root either), an absolute one is refused. A file root (a granted single file) follows
//!   no link at all.
//! - Deny entries are compared by identity: the root, every directory above it, every
//!   directory on the way and the file itself are checked against the identities the deny
//!   paths have now and had when the host started. Another spelling of a denied file (upper
//!   case or NFD on a file system that folds them, a hard link, a symlink) is the same
//!   identity and is denied; a spelling that names another file is simply another file. A
//!   denied directory is refused on entry, before anything inside it is looked up. Deny wins
//!   over every grant. A deny path that does not exist yet also stops `fs.write` from
//!   creating it under that exact name.
//! - Reads take regular files only (a FIFO or device is refused; files are opened
//!   non-blocking so a swap to a FIFO cannot hang the host), at most `max_bytes`, UTF-8.
//!   Writes create (exclusively, so a link planted after the check is not followed) or
//!   truncate an existing regular file only after its identity and the deny lists are
//!   checked. Listings are sorted by bytes and leave out denied entries and names that are
//!   not UTF-8.
//!
//! Residual: a file hard-linked into a granted directory from outside is, by identity, inside
//! (deny it explicitly); a directory renamed while a walk holds a handle to it is reached at
//! its new place; a case-folding file system may let `fs.write` create a deny path that did not
//! exist at start under another spelling.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, Metadata, OpenOptions};

use super::{io_error, value_error, ToolSetupError};
use crate::host_value::{HostData, HostError, HostValue};
use crate::policy::Denial;

/// Symbolic links one resolution may follow (Linux's own limit for a path).
const MAX_LINKS: u32 = 40;

/// The most names one `fs.list` returns.
const MAX_LIST_ENTRIES: usize = 100_000;

/// The default cap on the bytes one read or write moves.
const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// The file-system grants of a run, with an open handle on every root. Built once when the
/// host starts; immutable afterwards.
#[derive(Debug)]
pub struct FsRoots {
    /// Relative program paths are relative to this (the working directory at start).
    cwd: PathBuf,
    read: Vec<Root>,
    write: Vec<Root>,
    deny_read: IdList,
    deny_write: IdList,
    marks: IdList,
    max_bytes: u64,
}

/// What a file tool returns: its value (unlabelled) and the indices of the marks (see
/// [`FsRoots::with_marks`]) the file or directory was found under.
#[derive(Clone, Debug, PartialEq)]
pub struct FsOutput {
    pub value: HostValue,
    pub marks: Vec<usize>,
}

#[derive(Debug)]
struct Root {
    /// The spellings that map to this root, component-wise: the absolute path as granted
    /// (`.` and `..` resolved by text) and its canonical form.
    prefixes: Vec<PathBuf>,
    /// The root directory, or for a file root the directory that holds the file.
    dir: Dir,
    /// For a file root: the one name in `dir` it grants.
    file: Option<OsString>,
    /// The identities of `dir` and of every directory above it: a deny entry on any of them
    /// covers the whole root.
    above: Vec<FileId>,
}

/// A file's identity: what deny entries and marks are compared by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// Paths the host names (deny entries, marks), by identity.
#[derive(Debug, Default)]
struct IdList {
    entries: Vec<IdEntry>,
}

#[derive(Debug)]
struct IdEntry {
    path: PathBuf,
    /// The identity when the host started, if the path existed: kept, so that renaming a
    /// denied file away does not free it.
    at_start: Option<FileId>,
}

/// An [`IdList`] as the file system has it at the moment of one call.
struct Snapshot {
    /// Each entry's identities (at start and now), with the entry's index.
    ids: Vec<(FileId, usize)>,
    /// Entries that do not exist now: the identity of their parent directory and their
    /// name, so a write does not create them.
    missing: Vec<(FileId, OsString)>,
}

/// What a walk is for: it decides the last step and the wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    List,
    Write,
}

impl Access {
    fn tool(self) -> &'static str {
        match self {
            Access::Read => "fs.read",
            Access::List => "fs.list",
            Access::Write => "fs.write",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Read => "reading",
            Access::List => "listing",
            Access::Write => "writing",
        }
    }

    /// The grant kind: listing is reading a directory.
    fn kind(self) -> &'static str {
        match self {
            Access::Read | Access::List => "read",
            Access::Write => "write",
        }
    }
}

/// Why a walk stopped.
enum FsError {
    Denied(Denial),
    Io(String),
}

impl FsError {
    fn into_host(self, tool: &str) -> HostError {
        match self {
            FsError::Denied(d) => d.into_host_error(tool),
            FsError::Io(m) => io_error(tool, m),
        }
    }
}

/// What a walk ends at.
enum Target {
    File(File),
    Dir(Dir),
}

/// One step of a walk.
enum Step {
    Name(OsString),
    Up,
}

impl FsRoots {
    /// Opens every root (absolute paths, or relative to the working directory). A root may
    /// be a directory or a file; a file root that does not exist yet (for `--allow-write`)
    /// needs its directory to exist. Deny paths need not exist.
    pub fn open(
        read: &[PathBuf],
        write: &[PathBuf],
        deny_read: &[PathBuf],
        deny_write: &[PathBuf],
    ) -> Result<FsRoots, ToolSetupError> {
        let cwd = std::env::current_dir().map_err(ToolSetupError::WorkingDirectory)?;
        let open_all = |paths: &[PathBuf]| -> Result<Vec<Root>, ToolSetupError> {
            paths
                .iter()
                .map(|p| Root::open(&lexical(&cwd, p)))
                .collect()
        };
        Ok(FsRoots {
            read: open_all(read)?,
            write: open_all(write)?,
            deny_read: IdList::new(&cwd, deny_read),
            deny_write: IdList::new(&cwd, deny_write),
            marks: IdList::default(),
            max_bytes: DEFAULT_MAX_BYTES,
            cwd,
        })
    }

    /// Paths whose contents the caller labels specially (e.g. `--untrusted=PATH` or a
    /// `[[labels]] read = ...` entry): [`FsOutput::marks`] lists the indices of those the
    /// file (or a directory above it) is, by identity.
    pub fn with_marks(mut self, marks: &[PathBuf]) -> FsRoots {
        self.marks = IdList::new(&self.cwd, marks);
        self
    }

    /// The most bytes one read or write moves (default 64 MiB); more is an `IoError`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> FsRoots {
        self.max_bytes = max_bytes;
        self
    }

    /// `fs.read(path)`: the text of a regular file beneath a read root.
    pub fn read(&self, path: &str) -> Result<FsOutput, HostError> {
        let access = Access::Read;
        let (target, marks) = self.resolve(path, access)?;
        let Target::File(file) = target else {
            return Err(io_error(access.tool(), format!("{path} is a directory")));
        };
        let cap = self.max_bytes;
        let mut bytes = Vec::new();
        file.take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(access.tool(), format!("cannot read {path}: {e}")))?;
        if bytes.len() as u64 > cap {
            return Err(io_error(
                access.tool(),
                format!("cannot read {path}: it is larger than {cap} bytes"),
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| io_error(access.tool(), format!("{path} is not valid UTF-8 text")))?;
        Ok(FsOutput {
            value: HostValue::str(text),
            marks,
        })
    }

    /// `fs.write(path, text)`: creates or truncates a regular file beneath a write root and
    /// writes `text`; null.
    pub fn write(&self, path: &str, text: &str) -> Result<FsOutput, HostError> {
        let access = Access::Write;
        let cap = self.max_bytes;
        if text.len() as u64 > cap {
            return Err(io_error(
                access.tool(),
                format!("cannot write {path}: the text is larger than {cap} bytes"),
            ));
        }
        let (target, marks) = self.resolve(path, access)?;
        let Target::File(mut file) = target else {
            return Err(io_error(access.tool(), format!("{path} is a directory")));
        };
        // The file was opened without truncation, so a denied or foreign file found at the
        // last moment is left as it was; it is emptied only now that it passed every check.
        file.set_len(0)
            .and_then(|()| file.write_all(text.as_bytes()))
            .map_err(|e| io_error(access.tool(), format!("cannot write {path}: {e}")))?;
        Ok(FsOutput {
            value: HostValue::null(),
            marks,
        })
    }

    /// `fs.list(path)`: the names in a directory beneath a read root, sorted.
    pub fn list(&self, path: &str) -> Result<FsOutput, HostError> {
        let access = Access::List;
        let (target, marks) = self.resolve(path, access)?;
        let Target::Dir(dir) = target else {
            return Err(io_error(
                access.tool(),
                format!("{path} is not a directory"),
            ));
        };
        let fail = |e: std::io::Error| io_error(access.tool(), format!("cannot list {path}: {e}"));
        let deny = self.deny_read.snapshot();
        let mut names = Vec::new();
        for entry in dir.entries().map_err(fail)? {
            let name = entry.map_err(fail)?.file_name();
            // A name that is not UTF-8 cannot be passed back to a tool as a string.
            let Some(text) = name.to_str() else { continue };
            // A denied entry is not shown: its name is as private as its contents.
            let meta = dir.symlink_metadata(&name).map_err(fail)?;
            if id_of(&meta).is_ok_and(|id| deny.index_of(id).is_some()) {
                continue;
            }
            if names.len() >= MAX_LIST_ENTRIES {
                return Err(io_error(
                    access.tool(),
                    format!("{path} has more than {MAX_LIST_ENTRIES} entries"),
                ));
            }
            names.push(text.to_string());
        }
        names.sort_unstable();
        let items = names.into_iter().map(HostValue::str).collect();
        Ok(FsOutput {
            value: HostValue::new(HostData::List(items)),
            marks,
        })
    }

    /// Maps `path` to a root and walks it; returns what it ends at and the marks on the way.
    fn resolve(&self, path: &str, access: Access) -> Result<(Target, Vec<usize>), HostError> {
        let tool = access.tool();
        if path.is_empty() {
            return Err(value_error(tool, "the path is empty"));
        }
        if path.contains('\0') {
            return Err(value_error(tool, "a path cannot contain a NUL byte"));
        }
        let abs = self.cwd.join(path);
        let abs = abs.as_path();
        let roots = match access {
            Access::Read | Access::List => &self.read,
            Access::Write => &self.write,
        };
        // Every root this path is lexically beneath, the most specific first; a walk that
        // climbs out of one (`..`) may still be inside a wider one.
        let mut candidates: Vec<(usize, &Root, PathBuf)> = roots
            .iter()
            .flat_map(|r| {
                r.prefixes.iter().filter_map(move |p| {
                    let rest = abs.strip_prefix(p).ok()?;
                    if r.file.is_some() && rest.components().next().is_some() {
                        return None;
                    }
                    Some((p.components().count(), r, rest.to_path_buf()))
                })
            })
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        let not_granted = || {
            Denial::new(
                format!("grant:{}", access.kind()),
                format!(
                    "{} {path} is not allowed (grant it with --allow-{})",
                    access.verb(),
                    access.kind()
                ),
            )
            .into_host_error(tool)
        };
        let deny = match access {
            Access::Read | Access::List => self.deny_read.snapshot(),
            Access::Write => self.deny_write.snapshot(),
        };
        let mut escaped = false;
        for (_, root, rest) in candidates {
            let walk = Walk {
                access,
                shown: path,
                deny: &deny,
            };
            match walk.run(root, &rest) {
                Ok((target, chain)) => {
                    let marks = self.marks.snapshot().marks_of(&chain);
                    return Ok((target, marks));
                }
                Err(Escape::Out) => escaped = true,
                Err(Escape::Stop(e)) => return Err(e.into_host(tool)),
            }
        }
        if escaped {
            return Err(Denial::new(
                format!("grant:{}", access.kind()),
                format!(
                    "{} {path} is not allowed: it leads outside the granted directories",
                    access.verb()
                ),
            )
            .into_host_error(tool));
        }
        Err(not_granted())
    }
}

/// How a walk under one root failed: it left the root (another root may still hold the
/// path), or it stopped for good.
enum Escape {
    Out,
    Stop(FsError),
}

impl From<FsError> for Escape {
    fn from(e: FsError) -> Escape {
        Escape::Stop(e)
    }
}

/// One resolution of a path beneath one root.
struct Walk<'a> {
    access: Access,
    shown: &'a str,
    deny: &'a Snapshot,
}

impl Walk<'_> {
    /// Walks `rest` from `root`; returns the target and the identities of everything on the
    /// way to it (the root's `above`, each directory, the file).
    fn run(&self, root: &Root, rest: &Path) -> Result<(Target, Vec<FileId>), Escape> {
        let mut chain = root.above.clone();
        for id in &chain {
            self.check_deny(*id)?;
        }
        let mut queue = VecDeque::new();
        match &root.file {
            Some(name) => queue.push_back(Step::Name(name.clone())),
            None => push_components(&mut queue, rest, false)?,
        }
        let file_root = root.file.is_some();
        let top_dir = root.dir.try_clone().map_err(|e| self.io(e))?;
        let mut stack = vec![top_dir];
        let mut links = 0u32;
        while let Some(step) = queue.pop_front() {
            let name = match step {
                Step::Up => {
                    if stack.len() <= 1 {
                        return Err(Escape::Out);
                    }
                    stack.pop();
                    chain.pop();
                    continue;
                }
                Step::Name(name) => name,
            };
            let last = queue.is_empty();
            let top = stack.last().ok_or(Escape::Out)?;
            let meta = match top.symlink_metadata(&name) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if last && self.access == Access::Write {
                        let parent = chain.last().copied();
                        let file = self.create(top, &name, parent)?;
                        let id = id_of(&file.metadata().map_err(|e| self.io(e))?)?;
                        chain.push(id);
                        return Ok((Target::File(file), chain));
                    }
                    return Err(self.not_found().into());
                }
                Err(e) => return Err(self.io(e).into()),
            };
            let id = id_of(&meta)?;
            if meta.is_symlink() {
                if file_root {
                    // A granted file is that file: a link put in its place leads elsewhere.
                    return Err(Escape::Out);
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(FsError::Io(format!(
                        "cannot resolve {}: too many symbolic links",
                        self.shown
                    ))
                    .into());
                }
                let target = top.read_link_contents(&name).map_err(|e| self.io(e))?;
                push_components(&mut queue, &target, true)?;
                continue;
            }
            self.check_deny(id)?;
            if !last {
                if !meta.is_dir() {
                    return Err(FsError::Io(format!(
                        "cannot resolve {}: {} is not a directory",
                        self.shown,
                        Path::new(&name).display()
                    ))
                    .into());
                }
                let dir = top.open_dir(&name).map_err(|e| self.io(e))?;
                self.same(id, &dir.dir_metadata().map_err(|e| self.io(e))?)?;
                stack.push(dir);
                chain.push(id);
                continue;
            }
            chain.push(id);
            let target = self.open_last(top, &name, id, &meta)?;
            return Ok((target, chain));
        }
        // The path ended at a directory on the stack (the root itself, or after `..`).
        match (self.access, stack.pop()) {
            (Access::List, Some(dir)) if !file_root => Ok((Target::Dir(dir), chain)),
            _ => Err(FsError::Io(format!("{} is a directory", self.shown)).into()),
        }
    }

    /// Opens the last component, which `lstat` saw as `meta` with identity `id` (already
    /// checked against the deny list), and checks the handle is that same file.
    fn open_last(
        &self,
        top: &Dir,
        name: &OsString,
        id: FileId,
        meta: &Metadata,
    ) -> Result<Target, Escape> {
        match self.access {
            Access::List => {
                if !meta.is_dir() {
                    return Err(FsError::Io(format!("{} is not a directory", self.shown)).into());
                }
                let dir = top.open_dir(name).map_err(|e| self.io(e))?;
                self.same(id, &dir.dir_metadata().map_err(|e| self.io(e))?)?;
                Ok(Target::Dir(dir))
            }
            Access::Read | Access::Write => {
                if meta.is_dir() {
                    return Err(FsError::Io(format!("{} is a directory", self.shown)).into());
                }
                if !meta.is_file() {
                    return Err(FsError::Io(format!("{} is not a regular file", self.shown)).into());
                }
                let mut opts = OpenOptions::new();
                if self.access == Access::Read {
                    opts.read(true);
                } else {
                    opts.write(true);
                }
                nonblocking(&mut opts);
                let file = top.open_with(name, &opts).map_err(|e| self.io(e))?;
                let now = file.metadata().map_err(|e| self.io(e))?;
                if !now.is_file() {
                    return Err(self.changed().into());
                }
                self.same(id, &now)?;
                Ok(Target::File(file))
            }
        }
    }

    /// Creates `name` in `top` for a write, exclusively: if anything (a link) appeared there
    /// since the lookup, this fails rather than following it.
    fn create(&self, top: &Dir, name: &OsString, parent: Option<FileId>) -> Result<File, Escape> {
        if let Some(parent) = parent {
            if self
                .deny
                .missing
                .iter()
                .any(|(p, n)| *p == parent && n == name)
            {
                return Err(self.denied().into());
            }
        }
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        top.open_with(name, &opts).map_err(|e| self.io(e).into())
    }

    fn check_deny(&self, id: FileId) -> Result<(), FsError> {
        match self.deny.index_of(id) {
            Some(_) => Err(self.denied()),
            None => Ok(()),
        }
    }

    /// Fails unless the opened handle (`now`) is the file `lstat` saw (`id`).
    fn same(&self, id: FileId, now: &Metadata) -> Result<(), FsError> {
        if id_of(now)? == id {
            Ok(())
        } else {
            Err(self.changed())
        }
    }

    fn denied(&self) -> FsError {
        let kind = self.access.kind();
        FsError::Denied(Denial::new(
            format!("deny:{kind}"),
            format!(
                "{} {} is denied (--deny-{kind})",
                self.access.verb(),
                self.shown
            ),
        ))
    }

    fn changed(&self) -> FsError {
        FsError::Io(format!("{} changed while it was being opened", self.shown))
    }

    fn not_found(&self) -> FsError {
        FsError::Io(format!("{}: no such file or directory", self.shown))
    }

    fn io(&self, e: std::io::Error) -> FsError {
        if e.kind() == std::io::ErrorKind::NotFound {
            return self.not_found();
        }
        FsError::Io(format!("{}: {e}", self.shown))
    }
}

/// Appends the components of `path` to the front of the walk (`front`: a link's target,
/// spliced before what remains) or its back. Absolute paths leave the root.
fn push_components(queue: &mut VecDeque<Step>, path: &Path, front: bool) -> Result<(), Escape> {
    let mut steps = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => steps.push(Step::Name(n.to_os_string())),
            Component::ParentDir => steps.push(Step::Up),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(Escape::Out),
        }
    }
    if front {
        for s in steps.into_iter().rev() {
            queue.push_front(s);
        }
    } else {
        queue.extend(steps);
    }
    Ok(())
}

impl Root {
    /// Opens a granted path (absolute, `.`/`..` already resolved by text).
    fn open(abs: &Path) -> Result<Root, ToolSetupError> {
        let fail = |source: std::io::Error| ToolSetupError::Path {
            path: abs.to_path_buf(),
            source,
        };
        let (canonical, is_dir) = match std::fs::metadata(abs) {
            Ok(m) => (abs.canonicalize().map_err(fail)?, m.is_dir()),
            // A file root that does not exist yet (a write grant for a file the program
            // creates): its directory must exist.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
                    return Err(fail(e));
                };
                (parent.canonicalize().map_err(fail)?.join(name), false)
            }
            Err(e) => return Err(fail(e)),
        };
        let mut prefixes = vec![abs.to_path_buf()];
        if canonical != abs {
            prefixes.push(canonical.clone());
        }
        let (dir_path, file) = if is_dir {
            (canonical.as_path(), None)
        } else {
            let not_file = || fail(std::io::Error::other("it has no parent directory"));
            let parent = canonical.parent().ok_or_else(not_file)?;
            let name = canonical.file_name().ok_or_else(not_file)?;
            (parent, Some(name.to_os_string()))
        };
        let dir = Dir::open_ambient_dir(dir_path, ambient_authority()).map_err(fail)?;
        let mut above = Vec::new();
        for a in dir_path.ancestors() {
            let m = std::fs::metadata(a).map_err(fail)?;
            above.push(std_id(&m).map_err(fail)?);
        }
        // Outermost first, so that `chain` reads from `/` down to the file.
        above.reverse();
        let opened = dir.dir_metadata().map_err(fail)?;
        if id_of(&opened).ok() != above.last().copied() {
            return Err(fail(std::io::Error::other(
                "it changed while the host was starting",
            )));
        }
        Ok(Root {
            prefixes,
            dir,
            file,
            above,
        })
    }
}

impl IdList {
    fn new(cwd: &Path, paths: &[PathBuf]) -> IdList {
        IdList {
            entries: paths
                .iter()
                .map(|p| {
                    let path = lexical(cwd, p);
                    let at_start = std::fs::metadata(&path).ok().and_then(|m| std_id(&m).ok());
                    IdEntry { path, at_start }
                })
                .collect(),
        }
    }

    /// The identities the entries have now (following links, as the host would open them)
    /// and had at start; for entries that do not exist, their parent and name.
    fn snapshot(&self) -> Snapshot {
        let mut ids = Vec::new();
        let mut missing = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(id) = e.at_start {
                ids.push((id, i));
            }
            match std::fs::metadata(&e.path) {
                Ok(m) => {
                    if let Ok(id) = std_id(&m) {
                        ids.push((id, i));
                    }
                }
                Err(_) => {
                    let parent = e.path.parent().and_then(|p| std::fs::metadata(p).ok());
                    if let (Some(p), Some(name)) = (parent, e.path.file_name()) {
                        if let Ok(pid) = std_id(&p) {
                            missing.push((pid, name.to_os_string()));
                        }
                    }
                }
            }
        }
        Snapshot { ids, missing }
    }
}

impl Snapshot {
    fn index_of(&self, id: FileId) -> Option<usize> {
        self.ids.iter().find(|(x, _)| *x == id).map(|(_, i)| *i)
    }

    /// The entries any of `chain` is, sorted, each once.
    fn marks_of(&self, chain: &[FileId]) -> Vec<usize> {
        let mut out: Vec<usize> = chain.iter().filter_map(|id| self.index_of(*id)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `p` made absolute against `cwd`, with `.` and `..` resolved by text: how a granted path
/// is spelled (the host's user wrote it; the canonical form is added beside it).
fn lexical(cwd: &Path, p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in cwd.join(p).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(unix)]
fn id_of(m: &Metadata) -> Result<FileId, FsError> {
    use cap_std::fs::MetadataExt;
    Ok(FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

#[cfg(unix)]
fn std_id(m: &std::fs::Metadata) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    Ok(FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

// Without (device, inode) identities, deny entries cannot be checked: fail closed.
#[cfg(not(unix))]
fn id_of(_: &Metadata) -> Result<FileId, FsError> {
    Err(FsError::Io(
        "file identities are not available on this platform".into(),
    ))
}

#[cfg(not(unix))]
fn std_id(_: &std::fs::Metadata) -> std::io::Result<FileId> {
    Err(std::io::Error::other(
        "file identities are not available on this platform",
    ))
}

/// Opens without blocking, so that a regular file swapped for a FIFO between the lookup and
/// the open cannot hang the host (the handle is then refused as not a regular file). The
/// flag's value differs between systems and std does not name it; where it is not known
/// here, nothing is added and that swap remains a way to stall (not to escape).
fn nonblocking(opts: &mut OpenOptions) {
    #[cfg(all(
        target_os = "linux",
        any(
            target_arch = "x86_64",
            target_arch = "x86",
            target_arch = "aarch64",
            target_arch = "arm",
            target_arch = "riscv64",
            target_arch = "powerpc64",
            target_arch = "s390x",
            target_arch = "loongarch64"
        )
    ))]
    {
        use cap_std::fs::OpenOptionsExt;
        opts.custom_flags(0o4000);
    }
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))]
    {
        use cap_std::fs::OpenOptionsExt;
        opts.custom_flags(0x4);
    }
    let _ = opts;
}
