//! Lowering of the agent syntax: an `llm` expression becomes a call of `std.agent`'s `run`
//! with a request record (messages, tools, output schema, options); `spawn` and `await`
//! become task instructions. The request's shape is specified in spec/language.md §6.

use crate::ast::{self, LlmItemKind, LlmOption, Span};
use crate::diagnostic::Label;
use crate::ir::{Expr, ExprKind, ExternIdx, FuncIdx, Place, Relabel, Stmt, StmtKind, Var};
use crate::resolve::{Def, Global};
use crate::schema::{self, SchemaError};
use crate::types::{Conf, Ty};

use super::{placeholder, Lowerer};

/// The native that parses a schema's JSON text into a value at run time.
const JSON_PARSE: &str = "json.parse";
/// The native that joins the parts of a conversation with spliced `messages`.
const LIST_CONCAT: &str = "list.concat";

impl Lowerer<'_> {
    /// `llm model -> T { items }`: `std.agent.run(model, request)`, checked against `T` (or
    /// `string` without a type).
    pub(super) fn llm(&mut self, l: &ast::LlmExpr, span: Span) -> Expr {
        let model = self.llm_model(&l.model);
        let out = l.ty.as_ref().map(|t| (self.resolve_type(t), t.span));

        let mut parts: Vec<Expr> = Vec::new();
        let mut pending: Vec<Expr> = Vec::new();
        let mut tools: Option<Expr> = None;
        let mut options: Vec<(LlmOption, Expr)> = Vec::new();
        let mut endorse: Option<Span> = None;
        for item in &l.items {
            match &item.kind {
                LlmItemKind::Endorse => endorse = Some(item.word),
                LlmItemKind::Message(role, e) => {
                    let content = self.expr(e);
                    self.expect_item(&content, &Ty::Str, role.as_str(), item.word);
                    let role = Expr::new(ExprKind::Str(role.as_str().into()), Ty::Str, item.word);
                    pending.push(record(
                        vec![("role", role), ("content", content)],
                        item.span,
                    ));
                }
                LlmItemKind::Messages(e) => {
                    let list = self.expr(e);
                    let want = Ty::List(Box::new(Ty::Any));
                    self.expect_item(&list, &want, "messages", item.word);
                    if !pending.is_empty() {
                        parts.push(list_of(std::mem::take(&mut pending), item.span));
                    }
                    parts.push(list);
                }
                LlmItemKind::Tools(names) => tools = Some(self.tools(names, item.span)),
                LlmItemKind::Option(opt, e) => {
                    let v = self.expr(e);
                    let want = match opt {
                        LlmOption::Temperature => Ty::Float,
                        LlmOption::Stop => Ty::List(Box::new(Ty::Str)),
                        LlmOption::MaxTokens | LlmOption::MaxTurns | LlmOption::Retries => Ty::Int,
                    };
                    // An int temperature is fine: the provider reads a number.
                    let want = if want == Ty::Float {
                        Ty::Union(vec![Ty::Int, Ty::Float])
                    } else {
                        want
                    };
                    self.expect_item(&v, &want, opt.word(), item.word);
                    options.push((*opt, v));
                }
            }
        }
        if !pending.is_empty() || parts.is_empty() {
            parts.push(list_of(pending, span));
        }
        let messages = self.concat(parts, span);

        let (schema, schema_name, result_ty) = match &out {
            Some((ty, ty_span)) => match schema::schema(&self.types, ty) {
                Ok(s) => {
                    self.need_shapes(ty);
                    (
                        self.json_value(&s.to_string(), *ty_span),
                        str_expr(&schema_name(ty), *ty_span),
                        ty.clone(),
                    )
                }
                Err(e) => {
                    self.schema_error(&e, *ty_span, "the output type of an `llm` expression");
                    (null(*ty_span), null(*ty_span), Ty::Any)
                }
            },
            None => (null(span), null(span), Ty::Str),
        };
        let option = |o: LlmOption, options: &[(LlmOption, Expr)]| {
            options
                .iter()
                .find(|(k, _)| *k == o)
                .map_or_else(|| null(span), |(_, e)| e.clone())
        };
        let opts = record(
            vec![
                ("temperature", option(LlmOption::Temperature, &options)),
                ("max_tokens", option(LlmOption::MaxTokens, &options)),
                ("stop", option(LlmOption::Stop, &options)),
            ],
            span,
        );
        let request = record(
            vec![
                ("messages", messages),
                ("tools", tools.unwrap_or_else(|| list_of(Vec::new(), span))),
                ("schema", schema),
                ("schema_name", schema_name),
                ("options", opts),
                ("max_turns", option(LlmOption::MaxTurns, &options)),
                ("retries", option(LlmOption::Retries, &options)),
            ],
            span,
        );
        let Some(run) = self.agent_run() else {
            return Self::poison(span);
        };
        let call = Expr::new(ExprKind::CallFn(run, vec![model, request]), Ty::Any, span);
        if let Some(at) = endorse {
            return self.endorse_answer(call, &result_ty, out.map(|o| o.1), at, span);
        }
        if result_ty.is_any() {
            return call;
        }
        Expr::new(
            ExprKind::Check(Box::new(call), result_ty.clone()),
            result_ty,
            span,
        )
    }

    /// The answer of an `llm` expression with `endorse`: checked against its output type and
    /// trusted (`EndorseNarrow`), which only a narrow type allows (E0318).
    fn endorse_answer(
        &mut self,
        call: Expr,
        ty: &Ty,
        ty_span: Option<Span>,
        at: Span,
        span: Span,
    ) -> Expr {
        if ty_span.is_none() || !self.is_narrow(ty) {
            let file = self.file;
            let d = self.error("E0318", "`endorse` needs a narrow output type", at);
            d.label = match ty_span {
                None => "the answer is free text (no output type)".into(),
                Some(_) => format!("the answer is of type `{ty}`"),
            };
            if let Some(ts) = ty_span {
                d.extra.push(Label {
                    file,
                    span: ts,
                    text: "not narrow".into(),
                });
            }
            d.help = Some("only an answer that is a choice among few values may be trusted: give the `llm` a type such as `bool`, `int`, `float` or `\"yes\" | \"no\"`, or remove `endorse`".into());
            return Self::poison(span);
        }
        Expr::new(
            ExprKind::Relabel(Relabel::EndorseNarrow(ty.clone()), Box::new(call)),
            ty.clone(),
            span,
        )
    }

    /// The model of an `llm` expression: a name whose value is a logical model name.
    fn llm_model(&mut self, id: &ast::Ident) -> Expr {
        let known = self.lookup_var(&id.name).is_some() || self.lookup_global(&id.name).is_some();
        if !known {
            let d = self.error("E0217", format!("cannot find model `{}`", id.name), id.span);
            d.label = "not a declared model".into();
            d.help = Some(format!(
                "declare it at the top level: `model {} = \"large\"` (the logical name the host configures)",
                id.name
            ));
            return Self::poison(id.span);
        }
        let e = self.name(id);
        if self.types.conforms(&e.ty, &Ty::Str) == Conf::No {
            let d = self.error(
                "E0217",
                "the model of an `llm` expression is a string",
                id.span,
            );
            d.label = format!("expected a model name, found `{}`", e.ty);
            d.help = Some(
                "declare a model with `model smart = \"large\"` and write `llm smart { ... }`"
                    .into(),
            );
        }
        e
    }

    /// Reports an item value whose static type cannot be what the item needs.
    fn expect_item(&mut self, v: &Expr, want: &Ty, word: &str, word_span: Span) {
        if self.types.conforms(&v.ty, want) != Conf::No {
            return;
        }
        let file = self.file;
        let d = self.error("E0315", format!("invalid value for `{word}`"), v.span);
        d.label = format!("expected `{want}`, found `{}`", v.ty);
        d.extra.push(Label {
            file,
            span: word_span,
            text: format!("`{word}` takes a value of type `{want}`"),
        });
    }

    /// `run` of `std.agent`, loaded for this module.
    fn agent_run(&mut self) -> Option<FuncIdx> {
        let agent = self.mods.get(self.module as usize)?.agent?;
        match self.ns.get(agent as usize)?.get("run") {
            Some(Def {
                global: Global::Fn(idx),
                ..
            }) => Some(idx),
            _ => None,
        }
    }

    /// The list of tool records for `tools [f, g]`.
    fn tools(&mut self, names: &[ast::Ident], span: Span) -> Expr {
        let mut out = Vec::new();
        for id in names {
            if let Some(t) = self.tool(id) {
                out.push(t);
            }
        }
        list_of(out, span)
    }

    /// `{name, description, parameters, params, fn}` for the function `id` names, where `fn`
    /// takes the arguments record (see [`Self::tool_adapter`]); an MCP tool's record also has
    /// `mcp`, its id `SERVER.TOOL`.
    fn tool(&mut self, id: &ast::Ident) -> Option<Expr> {
        let not_fn = |this: &mut Self,
                      what: &str,
                      def: Option<(crate::diagnostic::FileId, Span)>| {
            let d = this.error(
                "E0216",
                format!("`{}` is not a function of the program", id.name),
                id.span,
            );
            d.label = format!("{what}, offered as a tool");
            if let Some((file, span)) = def {
                d.extra.push(Label {
                    file,
                    span,
                    text: "defined here".into(),
                });
            }
            d.help = Some(
                "`tools` lists the program's top-level functions and native bindings by name (`search`, `fs.read`); their doc comments and parameter types describe them to the model".into(),
            );
        };
        if let Some((_, _, origin)) = self.lookup_var(&id.name) {
            if let Some(v) = self.var_mut(origin) {
                v.used = true;
            }
            not_fn(self, "a variable", None);
            return None;
        }
        let def = match id.name.split_once('.') {
            // `fs.read`: a member of an imported module.
            Some((module, member)) => {
                let m = match self.lookup_global(module).map(|d| d.global) {
                    Some(Global::Module(m)) => m,
                    Some(Global::Poison) => return None,
                    _ => {
                        let module_id = ast::Ident {
                            name: module.to_string(),
                            span: id.span,
                        };
                        self.undefined(&module_id);
                        return None;
                    }
                };
                let member_id = ast::Ident {
                    name: member.to_string(),
                    span: id.span,
                };
                match self.member(m, module, &member_id) {
                    Some(def) => Some(def),
                    None => return None, // Reported by `member`.
                }
            }
            None => self.lookup_global(&id.name),
        };
        // Tools are offered under their name with `_` for `.` (model APIs allow no dots in
        // tool names, and a dotted id would be judged as a native or MCP tool): a function
        // of an imported module as `util_helper`; a native binding through the function that
        // wraps it, so that the gate judges the offered call and the native effect inside it
        // is judged again.
        let (idx, offered) = match def {
            Some(Def {
                global: Global::Fn(idx),
                ..
            }) => (idx, id.name.replace('.', "_")),
            Some(Def {
                global: Global::Extern(e),
                ..
            }) => {
                let f = self.extern_wrapper(e);
                if let Some(sig) = self.extern_sigs.get(e as usize).cloned() {
                    self.fn_sigs.entry(f).or_insert(sig);
                }
                (f, id.name.replace('.', "_"))
            }
            Some(Def {
                global: Global::Poison,
                ..
            }) => return None,
            Some(def) => {
                let what = match def.global {
                    Global::Module(_) => "a module",
                    Global::Type(_) => "a type",
                    Global::Model(_) => "a model",
                    _ => "not a function",
                };
                not_fn(self, what, Some((def.file, def.span)));
                return None;
            }
            None => {
                self.undefined(id);
                return None;
            }
        };
        if !aivm_vm::format::is_tool_id(&offered) {
            let d = self.error(
                "E0216",
                format!("`{}` is too long a name for a tool", id.name),
                id.span,
            );
            d.label = format!("{} bytes", id.name.len());
            d.help = Some("a tool's name is at most 128 characters: rename the function".into());
            return None;
        }
        let sig = self.fn_sigs.get(&idx).cloned()?;
        let params: Vec<(String, Ty)> = sig
            .names
            .iter()
            .cloned()
            .zip(sig.params.iter().map(|(t, _)| t.clone()))
            .collect();
        let parameters = match schema::arguments(&self.types, &params) {
            Ok(s) => {
                let args = Ty::Record(params.clone());
                self.need_shapes(&args);
                self.json_value(&s.to_string(), id.span)
            }
            Err(e) => {
                self.schema_error(&e, id.span, &format!("a parameter of tool `{}`", id.name));
                return None;
            }
        };
        let doc = self
            .prog
            .funcs
            .get(idx as usize)
            .and_then(|f| f.doc.clone())
            .unwrap_or_default();
        let names = sig
            .names
            .iter()
            .map(|n| str_expr(n, id.span))
            .collect::<Vec<_>>();
        let adapter = self.tool_adapter(idx, &sig.names, id.span);
        self.prog.needs.offered.insert(offered.clone());
        let mut fields = vec![
            ("name", str_expr(&offered, id.span)),
            ("description", str_expr(&doc, id.span)),
            ("parameters", parameters),
            ("params", list_of(names, id.span)),
            ("fn", Expr::new(ExprKind::Func(adapter), Ty::Func, id.span)),
        ];
        // An MCP tool says which: the host may describe it with the server's description
        // and input schema (only this field tells it apart from a function).
        if let Some(mcp) = self.prog.mcp_tools.get(&idx) {
            fields.push(("mcp", str_expr(mcp, id.span)));
        }
        Some(record(fields, id.span))
    }

    /// A function of one argument, the arguments record a model sent, that calls `f` with its
    /// fields in parameter order: the agent loop calls every tool the same way.
    fn tool_adapter(&mut self, f: FuncIdx, names: &[String], span: Span) -> FuncIdx {
        if let Some(a) = self.tool_adapters.get(&f) {
            return *a;
        }
        let Some(target) = self.prog.funcs.get(f as usize) else {
            return f;
        };
        let (name, file) = (
            self.fn_sigs
                .get(&f)
                .map_or_else(|| target.name.clone(), |s| s.name.clone()),
            self.file,
        );
        let mut func = placeholder(&name, file, span, None);
        func.vars.push(Var {
            name: "args".into(),
            span,
            ty: Ty::Any,
            captured: false,
            assigned: false,
            used: true,
        });
        func.params.push(0);
        func.param_tys.push(Ty::Any);
        let args_var = Expr::new(ExprKind::Var(Place::Local(0)), Ty::Any, span);
        let fields = names
            .iter()
            .map(|n| {
                Expr::new(
                    ExprKind::Field(Box::new(args_var.clone()), n.clone()),
                    Ty::Any,
                    span,
                )
            })
            .collect();
        let ret = self.fn_sigs.get(&f).map_or(Ty::Any, |s| s.ret.clone());
        func.body = vec![Stmt {
            kind: StmtKind::Return {
                value: Some(Expr::new(ExprKind::CallFn(f, fields), ret, span)),
                check: None,
            },
            span,
        }];
        let idx = self.prog.funcs.len() as FuncIdx;
        self.prog.funcs.push(func);
        self.tool_adapters.insert(f, idx);
        idx
    }

    /// Records the shapes of every record type within `ty`, so that `schema.conform` can
    /// build records of them.
    fn need_shapes(&mut self, ty: &Ty) {
        let mut seen = Vec::new();
        let mut stack = vec![ty.clone()];
        while let Some(t) = stack.pop() {
            match t {
                Ty::Record(fields) => {
                    let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
                    if !self.prog.shapes.contains(&names) {
                        self.prog.shapes.push(names);
                    }
                    stack.extend(fields.into_iter().map(|(_, t)| t));
                }
                Ty::List(t) | Ty::Map(t) | Ty::Optional(t) => stack.push(*t),
                Ty::Union(ms) => stack.extend(ms),
                Ty::Named(id, _) if !seen.contains(&id) => {
                    seen.push(id);
                    if let Some(a) = self.types.aliases.get(id as usize) {
                        stack.push(a.ty.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// `json.parse("<text>")`: a JSON value built at run time from a constant text.
    fn json_value(&mut self, text: &str, span: Span) -> Expr {
        let parse = self.intrinsic(JSON_PARSE, 1);
        Expr::new(
            ExprKind::CallExtern(parse, vec![str_expr(text, span)]),
            Ty::Any,
            span,
        )
    }

    /// The conversation: one list, or the concatenation of its parts.
    fn concat(&mut self, mut parts: Vec<Expr>, span: Span) -> Expr {
        if parts.len() <= 1 {
            return parts.pop().unwrap_or_else(|| list_of(Vec::new(), span));
        }
        let concat = self.intrinsic(LIST_CONCAT, 2);
        let mut iter = parts.into_iter();
        let first = iter.next().unwrap_or_else(|| list_of(Vec::new(), span));
        iter.fold(first, |acc, p| {
            Expr::new(
                ExprKind::CallExtern(concat, vec![acc, p]),
                Ty::List(Box::new(Ty::Any)),
                span,
            )
        })
    }

    /// An extern the compiler adds itself, to call a native from generated code.
    fn intrinsic(&mut self, native: &'static str, arity: usize) -> ExternIdx {
        if let Some(x) = self.intrinsics.get(native) {
            return *x;
        }
        let idx = self.prog.externs.len() as ExternIdx;
        self.prog.externs.push(crate::ir::Extern {
            name: native.to_string(),
            native: native.to_string(),
            effect: false,
            params: vec![Ty::Any; arity],
            ret: Ty::Any,
            doc: None,
        });
        self.intrinsics.insert(native, idx);
        idx
    }

    fn schema_error(&mut self, e: &SchemaError, span: Span, what: &str) {
        let d = self.error("E0316", format!("{what} has no JSON Schema"), span);
        d.label = e.to_string();
        d.help = Some(match e {
            SchemaError::NotData(_) => "a model reads and writes JSON: use records, lists, maps, strings, numbers, bools and null".into(),
            SchemaError::Recursive(_) => "a schema sent to a model cannot refer to itself; write the nesting out to a fixed depth".into(),
        });
    }

    /// `spawn f(args)`: the call's function and arguments, started as a new task.
    pub(super) fn spawn(&mut self, call: &ast::Expr, span: Span) -> Expr {
        let ast::ExprKind::Call(callee, args) = &call.kind else {
            // The parser reported it.
            return Self::poison(span);
        };
        let lowered = self.call(callee, args, call.span);
        let (f, args) = match lowered.kind {
            ExprKind::CallFn(idx, args) => {
                (Expr::new(ExprKind::Func(idx), Ty::Func, callee.span), args)
            }
            ExprKind::CallExtern(x, args) => {
                let w = self.extern_wrapper(x);
                (Expr::new(ExprKind::Func(w), Ty::Func, callee.span), args)
            }
            ExprKind::Call(f, args) => (*f, args),
            _ => return Self::poison(span),
        };
        Expr::new(ExprKind::Spawn(Box::new(f), args), Ty::Task, span)
    }

    /// `await t`: `t` must be a task.
    pub(super) fn await_task(&mut self, task: &ast::Expr, span: Span) -> Expr {
        let t = self.expr(task);
        if self.types.conforms(&t.ty, &Ty::Task) == Conf::No {
            let d = self.error("E0317", "`await` needs a task", t.span);
            d.label = format!("expected `task`, found `{}`", t.ty);
            d.help = Some("start a task with `spawn f(x)` and await its handle: `let t = spawn f(x)` ... `await t`".into());
        }
        Expr::new(ExprKind::Await(Box::new(t)), Ty::Any, span)
    }
}

/// The name a provider shows for an output schema: the alias name, else "output".
fn schema_name(ty: &Ty) -> String {
    match ty {
        Ty::Named(_, name) => name.rsplit('.').next().unwrap_or(name).to_string(),
        Ty::Optional(t) => schema_name(t),
        _ => "output".into(),
    }
}

fn null(span: Span) -> Expr {
    Expr::new(ExprKind::Null, Ty::Null, span)
}

fn str_expr(s: &str, span: Span) -> Expr {
    Expr::new(ExprKind::Str(s.into()), Ty::Str, span)
}

fn list_of(items: Vec<Expr>, span: Span) -> Expr {
    let ty = Ty::List(Box::new(if items.is_empty() { Ty::Never } else { Ty::Any }));
    Expr::new(ExprKind::List(items), ty, span)
}

fn record(fields: Vec<(&str, Expr)>, span: Span) -> Expr {
    let ty = Ty::Record(
        fields
            .iter()
            .map(|(n, e)| (n.to_string(), e.ty.clone()))
            .collect(),
    );
    let fields = fields
        .into_iter()
        .map(|(n, e)| (n.to_string(), e))
        .collect();
    Expr::new(ExprKind::Record(fields), ty, span)
}
