//! Lowering of the label builtins `classify(x, ["alice"])`, `declassify(x, ["alice"])` /
//! `declassify(x, null)` and `endorse(x)` to the label instructions, and of the `endorse`
//! item of an `llm` expression (spec/language.md, "Labels"). A builtin is a name the program
//! has not defined itself; lowering a label needs the authority its module declares with
//! `needs declassify` / `needs endorse` (E0218).

use aivm_vm::format::MAX_READER_LEN;

use crate::ast::{self, Span};
use crate::ir::{Expr, ExprKind, Relabel};
use crate::types::Ty;

use super::Lowerer;

/// The names lowered to label instructions when the program does not define them.
pub(super) const BUILTINS: &[&str] = &["classify", "declassify", "endorse"];

impl Lowerer<'_> {
    /// `classify(x, readers)`, `declassify(x, readers)` or `endorse(x)`. Out of line: `call`
    /// recurses with the depth of nested expressions, and must keep its frame small.
    #[inline(never)]
    pub(super) fn label_builtin(
        &mut self,
        id: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
    ) -> Expr {
        let name = id.name.as_str();
        let want = if name == "endorse" { 1 } else { 2 };
        if args.len() != want {
            let d = self.error(
                "E0219",
                format!(
                    "`{name}` takes {want} argument{} but {} {} given",
                    if want == 1 { "" } else { "s" },
                    args.len(),
                    if args.len() == 1 { "was" } else { "were" }
                ),
                span,
            );
            d.label = format!("expected {want}");
            d.help = Some(usage(name).into());
            let _ = self.args(args);
            return Self::poison(span);
        }
        let value = self.expr(&args[0]);
        let op = match name {
            "endorse" => Relabel::Endorse,
            "classify" => match self.readers(&args[1], false) {
                Some(Some(r)) => Relabel::Classify(r),
                _ => return Self::poison(span),
            },
            _ => match self.readers(&args[1], true) {
                Some(r) => Relabel::Declassify(r),
                None => return Self::poison(span),
            },
        };
        if name != "classify" && !self.has_authority(name) {
            let d = self.error(
                "E0218",
                format!("`{name}` needs authority this module does not declare"),
                id.span,
            );
            d.label = format!("lowers a label without `needs {name}`");
            d.help = Some(format!(
                "add `needs {name}` at the top level of this file; the authority is then part of the program's manifest, which `aivm inspect` shows"
            ));
        }
        let ty = value.ty.clone();
        Expr::new(ExprKind::Relabel(op, Box::new(value)), ty, span)
    }

    /// Whether the module being lowered declares `needs declassify` / `needs endorse`.
    fn has_authority(&self, name: &str) -> bool {
        let want = match name {
            "declassify" => ast::Need::Declassify,
            _ => ast::Need::Endorse,
        };
        self.mods.get(self.module as usize).is_some_and(|m| {
            m.ast
                .items
                .iter()
                .any(|i| matches!(i, ast::Item::Needs(n) if n.need.as_ref() == Some(&want)))
        })
    }

    /// The readers argument: a list of string literals, or `null` where public is allowed.
    /// `None` when it is neither (reported); the names are checked (E0219).
    fn readers(&mut self, e: &ast::Expr, null_ok: bool) -> Option<Option<Vec<String>>> {
        let items = match &e.kind {
            ast::ExprKind::Null if null_ok => return Some(None),
            ast::ExprKind::List(items) => items,
            _ => {
                let _ = self.expr(e);
                let d = self.error("E0219", "readers must be written out", e.span);
                d.label = "not a list of string literals".into();
                d.help = Some(if null_ok {
                    "write the readers as a list of strings, `[\"alice\", \"user\"]`, or `null` for public: labels are part of the bytecode, never computed".into()
                } else {
                    "write the readers as a list of strings, `[\"alice\", \"user\"]`: labels are part of the bytecode, never computed".into()
                });
                return None;
            }
        };
        let mut out = Vec::new();
        for item in items {
            let ast::ExprKind::Str(text) = &item.kind else {
                let _ = self.expr(item);
                let d = self.error("E0219", "a reader must be a string literal", item.span);
                d.label = "not a string literal".into();
                d.help = Some(
                    "name readers with plain strings such as `\"alice\"` or `\"user\"`".into(),
                );
                return None;
            };
            if text.is_empty() || text.len() > MAX_READER_LEN || text.chars().any(char::is_control)
            {
                let d = self.error("E0219", "invalid reader name", item.span);
                d.label = "empty, too long or with control characters".into();
                d.help = Some(format!(
                    "a reader is 1 to {MAX_READER_LEN} bytes without control characters"
                ));
                return None;
            }
            out.push(text.clone());
        }
        out.sort();
        out.dedup();
        Some(Some(out))
    }

    /// Whether values of `ty` are narrow: bool, int, float, null, string literals, and
    /// optionals, unions and aliases of them (rule V23 of the verifier).
    pub(super) fn is_narrow(&self, ty: &Ty) -> bool {
        fn go(l: &Lowerer<'_>, ty: &Ty, depth: usize) -> bool {
            if depth > 32 {
                return false;
            }
            match ty {
                Ty::Bool | Ty::Int | Ty::Float | Ty::Null | Ty::StrLit(_) => true,
                Ty::Optional(t) => go(l, t, depth + 1),
                Ty::Union(ts) => ts.iter().all(|t| go(l, t, depth + 1)),
                Ty::Named(id, _) => l
                    .types
                    .aliases
                    .get(*id as usize)
                    .is_some_and(|a| go(l, &a.ty, depth + 1)),
                _ => false,
            }
        }
        go(self, ty, 0)
    }
}

fn usage(name: &str) -> &'static str {
    match name {
        "classify" => "`classify(value, [\"alice\"])` returns the value readable only by the readers listed",
        "declassify" => "`declassify(value, [\"alice\"])` sets who may read the value; `declassify(value, null)` makes it public",
        _ => "`endorse(value)` returns the value marked trusted",
    }
}
