//! Name resolution: the module-level namespaces (functions, externs, type aliases, imports),
//! block scopes with shadowing, and "did you mean" suggestions. The walk that uses them, and
//! that finds the variables closures capture, is in `lower.rs`.

use std::collections::HashMap;

use crate::ast::Span;
use crate::diagnostic::FileId;
use crate::ir::{ExternIdx, FuncIdx, VarId};

/// Index of a loaded module (a source file or a standard-library module).
pub type ModId = u32;

/// What a module-level name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    Fn(FuncIdx),
    Extern(ExternIdx),
    Module(ModId),
    /// A `type` alias (index into the type table).
    Type(u32),
    /// A `model` item (index into the program's models).
    Model(u32),
    /// An import that failed to load: uses of it report nothing more.
    Poison,
}

/// One module-level definition and where it was written.
#[derive(Clone, Copy, Debug)]
pub struct Def {
    pub global: Global,
    pub file: FileId,
    pub span: Span,
}

/// The names a module defines or imports.
#[derive(Clone, Debug, Default)]
pub struct Namespace {
    pub defs: HashMap<String, Def>,
}

impl Namespace {
    pub fn get(&self, name: &str) -> Option<Def> {
        self.defs.get(name).copied()
    }
}

/// The block scopes of one function, innermost last.
#[derive(Debug, Default)]
pub struct Scopes {
    scopes: Vec<Vec<(String, VarId)>>,
    /// For each name, its bindings from outermost to innermost: lookups cost a hash, not a
    /// scan of every variable in scope (a function may have tens of thousands).
    index: HashMap<String, Vec<VarId>>,
}

impl Scopes {
    pub fn push(&mut self) {
        self.scopes.push(Vec::new());
    }

    /// Leaves the innermost scope, returning the variables it defined.
    pub fn pop(&mut self) -> Vec<VarId> {
        let scope = self.scopes.pop().unwrap_or_default();
        for (name, _) in scope.iter().rev() {
            if let Some(stack) = self.index.get_mut(name) {
                stack.pop();
                if stack.is_empty() {
                    self.index.remove(name);
                }
            }
        }
        scope.into_iter().map(|(_, v)| v).collect()
    }

    /// Binds `name` in the innermost scope, shadowing any outer binding (and an earlier one of
    /// the same scope: `let x = 1; let x = x + 1` is allowed).
    pub fn bind(&mut self, name: &str, var: VarId) {
        if self.scopes.is_empty() {
            self.scopes.push(Vec::new());
        }
        if let Some(s) = self.scopes.last_mut() {
            s.push((name.to_string(), var));
            self.index.entry(name.to_string()).or_default().push(var);
        }
    }

    pub fn lookup(&self, name: &str) -> Option<VarId> {
        self.index.get(name).and_then(|stack| stack.last()).copied()
    }

    /// Every name in scope (for suggestions).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.scopes
            .iter()
            .flat_map(|s| s.iter().map(|(n, _)| n.as_str()))
    }
}

/// Edit distance between two short strings, in characters: insertions, deletions,
/// substitutions and transpositions of adjacent characters (`nmae` is one edit from `name`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    if let Some(first) = d.first_mut() {
        for (j, cell) in first.iter_mut().enumerate() {
            *cell = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name && !c.is_empty())
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(
            suggest("lenght", ["length", "print"]),
            Some("length".into())
        );
        assert_eq!(suggest("prnt", ["print", "len"]), Some("print".into()));
        assert_eq!(suggest("zzz", ["print", "len"]), None);
    }

    #[test]
    fn scopes_shadow_and_pop() {
        let mut s = Scopes::default();
        s.push();
        s.bind("x", 0);
        s.push();
        s.bind("x", 1);
        assert_eq!(s.lookup("x"), Some(1));
        assert_eq!(s.pop(), vec![1]);
        assert_eq!(s.lookup("x"), Some(0));
        assert_eq!(s.lookup("y"), None);
    }
}
