//! Loading a program: the entry source, the prelude, and transitively every module it imports
//! (`import "./x.ail"` relative to the importing file, `import std.x` from aivm-stdlib), each
//! parsed once. Missing files, unknown standard modules and import cycles are diagnostics at
//! the import that caused them.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::ast::{self, SourceModule, Span};
use crate::diagnostic::{Diagnostic, FileId, SourceMap};
use crate::lower::ModuleSrc;
use crate::resolve::{suggest, ModId};

/// The standard module that runs `llm` expressions.
const AGENT: &str = "std.agent";
/// The standard module whose `call` and `output` the bodies of `tool` items use.
const MCP: &str = "std.mcp";

/// The parser's entry point (see `parse.rs`).
pub type ParseFn = fn(FileId, &str) -> Result<SourceModule, Vec<Diagnostic>>;

/// Every module of a program, with the prelude's id.
pub struct Loaded {
    pub modules: Vec<ModuleSrc>,
    pub prelude: Option<ModId>,
    pub sources: SourceMap,
    pub diags: Vec<Diagnostic>,
    /// Some file had syntax errors: later stages would only add noise.
    pub parse_failed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    File(PathBuf),
    Std(String),
    Entry(String),
}

struct Loader {
    parse: ParseFn,
    sources: SourceMap,
    diags: Vec<Diagnostic>,
    modules: Vec<Option<ModuleSrc>>,
    keys: HashMap<Key, ModId>,
    /// Modules being loaded, outermost first, with their display names (for cycles).
    stack: Vec<(Key, String)>,
    parse_failed: bool,
}

/// What the entry module is.
pub enum Entry<'a> {
    /// A file on disk; its imports are relative to its folder.
    File(&'a Path),
    /// Source text with a display name; imports are relative to the current directory.
    Source { name: &'a str, text: &'a str },
}

/// Loads the prelude, the entry module and everything they import.
pub fn load(entry: Entry<'_>, parse: ParseFn) -> Loaded {
    let mut l = Loader {
        parse,
        sources: SourceMap::default(),
        diags: Vec::new(),
        modules: Vec::new(),
        keys: HashMap::new(),
        stack: Vec::new(),
        parse_failed: false,
    };
    let prelude = aivm_stdlib::source("std.prelude").map(|text| {
        l.add_module(
            Key::Std("std.prelude".into()),
            "std/prelude.ail".into(),
            text,
            None,
            false,
            false,
        )
    });
    match entry {
        Entry::Source { name, text } => {
            let base = std::env::current_dir().ok();
            l.add_module(
                Key::Entry(name.to_string()),
                name.to_string(),
                text,
                base,
                true,
                true,
            );
        }
        Entry::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = Key::File(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
                let base = path.parent().map(Path::to_path_buf);
                l.add_module(key, display(path), &text, base, true, true);
            }
            Err(e) => {
                let file = l.sources.add(display(path), "");
                let d = Diagnostic::error(
                    "E0207",
                    format!("cannot read `{}`: {e}", display(path)),
                    file,
                    Span::default(),
                )
                .with_label("could not be read");
                l.diags.push(d);
            }
        },
    }
    let modules = l.modules.into_iter().flatten().collect();
    Loaded {
        modules,
        prelude,
        sources: l.sources,
        diags: l.diags,
        parse_failed: l.parse_failed,
    }
}

/// A path as the user wrote it, without `./` segments.
fn display(p: &Path) -> String {
    let clean: PathBuf = p
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    clean.to_string_lossy().into_owned()
}

impl Loader {
    fn add_module(
        &mut self,
        key: Key,
        name: String,
        text: &str,
        base: Option<PathBuf>,
        sees_prelude: bool,
        entry: bool,
    ) -> ModId {
        let id = self.modules.len() as ModId;
        self.modules.push(None);
        self.keys.insert(key.clone(), id);
        let file = self.sources.add(name.clone(), text);
        let ast = match (self.parse)(file, text) {
            Ok(ast) => ast,
            Err(ds) => {
                self.parse_failed = true;
                self.diags.extend(ds);
                SourceModule {
                    items: Vec::new(),
                    uses_llm: false,
                }
            }
        };
        self.stack.push((key, name));
        let mut imports = Vec::new();
        for item in &ast.items {
            if let ast::Item::Import(imp) = item {
                imports.push(self.import(file, imp, base.as_deref()));
            }
        }
        // `llm` expressions compile to calls of `std.agent`'s `run`.
        let agent = if ast.uses_llm {
            self.std_module(AGENT, file, Span::default())
        } else {
            None
        };
        // `tool` items compile to calls of `std.mcp`'s `call` and `output`.
        let mcp = if ast.items.iter().any(|i| matches!(i, ast::Item::McpTool(_))) {
            self.std_module(MCP, file, Span::default())
        } else {
            None
        };
        self.stack.pop();
        if let Some(slot) = self.modules.get_mut(id as usize) {
            *slot = Some(ModuleSrc {
                file,
                ast,
                imports,
                agent,
                mcp,
                sees_prelude,
                entry,
            });
        }
        id
    }

    fn import(&mut self, file: FileId, imp: &ast::Import, base: Option<&Path>) -> Option<ModId> {
        match &imp.target {
            ast::ImportTarget::Std(path) => {
                let name = path
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                let span = path.first().map_or(imp.span, |f| {
                    f.span.to(path.last().map_or(f.span, |l| l.span))
                });
                self.std_module(&name, file, span)
            }
            ast::ImportTarget::File { path, span } => {
                let Some(base) = base else {
                    let d = Diagnostic::error(
                        "E0207",
                        "standard modules cannot import files",
                        file,
                        *span,
                    )
                    .with_label("file import in a standard module");
                    self.diags.push(d);
                    return None;
                };
                let joined = base.join(path);
                let canon = match joined.canonicalize() {
                    Ok(c) if c.is_file() => c,
                    _ => {
                        let d = Diagnostic::error(
                            "E0207",
                            format!("cannot find file `{path}`"),
                            file,
                            *span,
                        )
                        .with_label(format!("looked for `{}`", display(&joined)))
                        .with_help("file imports are relative to the importing file");
                        self.diags.push(d);
                        return None;
                    }
                };
                let key = Key::File(canon.clone());
                if let Some(id) = self.known(&key, file, *span) {
                    return id;
                }
                match std::fs::read_to_string(&canon) {
                    Ok(text) => {
                        // Keep the path as written (not canonical) so names stay relative.
                        let next_base = joined.parent().map(Path::to_path_buf);
                        Some(self.add_module(key, display(&joined), &text, next_base, true, false))
                    }
                    Err(e) => {
                        let d = Diagnostic::error(
                            "E0207",
                            format!("cannot read `{path}`: {e}"),
                            file,
                            *span,
                        )
                        .with_label("could not be read");
                        self.diags.push(d);
                        None
                    }
                }
            }
        }
    }

    /// The standard module `name`, loaded once; `span` is where an import names it.
    fn std_module(&mut self, name: &str, file: FileId, span: Span) -> Option<ModId> {
        let key = Key::Std(name.to_string());
        if let Some(id) = self.known(&key, file, span) {
            return id;
        }
        let Some(text) = aivm_stdlib::source(name) else {
            let mut d = Diagnostic::error(
                "E0209",
                format!("unknown standard module `{name}`"),
                file,
                span,
            )
            .with_label("no such module in the standard library");
            d.help = Some(match suggest(name, aivm_stdlib::MODULES.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "the standard modules are: {}",
                    aivm_stdlib::MODULES.join(", ")
                ),
            });
            self.diags.push(d);
            return None;
        };
        let display = format!("{}.ail", name.replace('.', "/"));
        Some(self.add_module(key, display, text, None, true, false))
    }

    /// `Some(result)` when the module was seen before: loaded (its id), or still loading (a
    /// cycle, reported here).
    fn known(&mut self, key: &Key, file: FileId, span: Span) -> Option<Option<ModId>> {
        if let Some(pos) = self.stack.iter().position(|(k, _)| k == key) {
            let mut chain: Vec<&str> = self.stack[pos..].iter().map(|(_, n)| n.as_str()).collect();
            chain.push(self.stack[pos].1.as_str());
            let d = Diagnostic::error("E0208", "import cycle", file, span)
                .with_label(format!(
                    "this import closes the cycle {}",
                    chain.join(" -> ")
                ))
                .with_help("move what both files need into a third file that neither imports back");
            self.diags.push(d);
            return Some(None);
        }
        self.keys.get(key).map(|id| Some(*id))
    }
}
