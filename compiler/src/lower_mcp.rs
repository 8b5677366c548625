//! Lowering of `tool` items, the MCP tools a program declares: each is a top-level function
//! whose body is `std.mcp.output(std.mcp.call("SERVER.TOOL", {p1: p1, ...}), WANT_TEXT)`,
//! checked at run time against the declared return type (spec/language.md, "MCP tools").

use crate::ast;
use crate::ir::{Expr, ExprKind, FuncIdx, Place, Stmt, StmtKind, Var, VarId};
use crate::resolve::{Def, Global};
use crate::types::Ty;

use super::{placeholder, Lowerer};

impl Lowerer<'_> {
    /// The body of the `tool` item `t`, function `idx`, with its resolved signature.
    pub(super) fn lower_mcp_tool(
        &mut self,
        idx: FuncIdx,
        t: &ast::McpToolDecl,
        param_tys: Vec<Ty>,
        ret: Ty,
    ) {
        let Some((call, output)) = self.mcp_functions() else {
            // std.mcp failed to load, which the loader reported.
            return;
        };
        let mut func = placeholder(&t.name.name, self.file, t.span, t.doc.clone());
        let mut fields: Vec<(String, Expr)> = Vec::new();
        for (i, (p, ty)) in t.params.iter().zip(&param_tys).enumerate() {
            if let Some(first) = t.params[..i].iter().find(|q| q.name.name == p.name.name) {
                let file = self.file;
                let d = self.error(
                    "E0202",
                    format!("parameter `{}` is declared twice", p.name.name),
                    p.name.span,
                );
                d.label = "declared again here".into();
                d.extra.push(crate::diagnostic::Label {
                    file,
                    span: first.name.span,
                    text: "first declared here".into(),
                });
                continue;
            }
            let v = func.vars.len() as VarId;
            func.vars.push(Var {
                name: p.name.name.clone(),
                span: p.name.span,
                ty: ty.clone(),
                captured: false,
                assigned: false,
                // The parameters are the tool's arguments: all of them are sent.
                used: true,
            });
            func.params.push(v);
            let value = Expr::new(ExprKind::Var(Place::Local(v)), ty.clone(), p.name.span);
            fields.push((p.name.name.clone(), value));
        }
        func.param_tys = param_tys;
        func.ret = ret.clone();

        let at = t.source_span;
        // A tool without parameters gets an empty map: the JSON object `{}`.
        let arguments = if fields.is_empty() {
            Expr::new(ExprKind::Map(Vec::new()), Ty::Map(Box::new(Ty::Any)), at)
        } else {
            let ty = Ty::Record(
                fields
                    .iter()
                    .map(|(n, e)| (n.clone(), e.ty.clone()))
                    .collect(),
            );
            Expr::new(ExprKind::Record(fields), ty, at)
        };
        let id = Expr::new(ExprKind::Str(t.id.clone()), Ty::Str, at);
        let result = Expr::new(ExprKind::CallExtern(call, vec![id, arguments]), Ty::Any, at);
        let want_text = Expr::new(ExprKind::Bool(ret == Ty::Str), Ty::Bool, at);
        let value = Expr::new(
            ExprKind::CallFn(output, vec![result, want_text]),
            Ty::Any,
            at,
        );
        func.body = vec![Stmt {
            kind: StmtKind::Return {
                value: Some(value),
                check: (!ret.is_any()).then_some(ret),
            },
            span: t.span,
        }];
        if let Some(slot) = self.prog.funcs.get_mut(idx as usize) {
            *slot = func;
        }
    }

    /// `call` (the `mcp.call` binding) and `output` of `std.mcp`, loaded for this module.
    fn mcp_functions(&self) -> Option<(crate::ir::ExternIdx, FuncIdx)> {
        let m = self.mods.get(self.module as usize)?.mcp?;
        let ns = self.ns.get(m as usize)?;
        let call = match ns.get("call") {
            Some(Def {
                global: Global::Extern(x),
                ..
            }) => x,
            _ => return None,
        };
        let output = match ns.get("output") {
            Some(Def {
                global: Global::Fn(f),
                ..
            }) => f,
            _ => return None,
        };
        Some((call, output))
    }
}
