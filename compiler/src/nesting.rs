//! The nesting limit: a linear pass over the tokens, before parsing, that rejects source whose
//! syntax tree would be deeper than [`MAX_NESTING`] (E0118). Every later pass (lowering, type
//! checking, code generation, dropping the tree) recurses over the tree, so bounding its depth
//! here is what keeps `((((…` or `- - - …` or `a.b.c.…` from overflowing the stack.
//!
//! The measure is conservative: each open bracket counts one level plus the operators that
//! preceded it in its enclosing expression, and inside a bracket every operator (binary,
//! prefix, `.`, a postfix call or index, `?`, `else`) counts one level until a separator
//! (`,`, `;`, a statement keyword, or two adjacent operands, which always start a new
//! statement) ends the expression. A tree node needs at least one such token per level, so
//! the measure bounds the depth of the tree.

use std::collections::HashMap;

use crate::ast::Span;
use crate::diagnostic::{Diagnostic, FileId};
use crate::lexer::{Spanned, Tok};

/// The deepest nesting accepted, in the measure described above.
pub const MAX_NESTING: u32 = 200;

/// The nesting depth at each string literal that has interpolations, keyed by the literal's
/// start offset: the expressions inside count from there.
pub type StringDepths = HashMap<u32, u32>;

/// Checks `tokens`, which sit at nesting depth `base`. Returns the depth of every string
/// literal holding a `{`, or the E0118 diagnostic at the first token past the limit.
pub fn check(
    file: FileId,
    tokens: &[Spanned<'_>],
    base: u32,
) -> Result<StringDepths, Box<Diagnostic>> {
    let mut strings = StringDepths::new();
    // For each open bracket: the chain of its enclosing expression when it opened, and the
    // depth the bracket added.
    let mut saved: Vec<(u32, u32)> = Vec::new();
    let mut depth_below = base;
    let mut chain = 0u32;
    let mut prev: Option<&Tok<'_>> = None;
    for (i, (start, tok, end)) in tokens.iter().enumerate() {
        let next_is_name = matches!(tokens.get(i + 1), Some((_, Tok::Ident(_), _)));
        if resets(prev, tok, next_is_name) {
            chain = 0;
        }
        match tok {
            // A call or index applies to what precedes it, so `f()()()` deepens like `a.b.c`;
            // a block never continues an expression, so `{` only adds its own level.
            Tok::LParen | Tok::LParenLead | Tok::LBracket | Tok::LBracketLead | Tok::LBrace => {
                let added = if matches!(tok, Tok::LBrace) {
                    chain.saturating_add(1)
                } else {
                    chain = chain.saturating_add(1);
                    chain
                };
                saved.push((chain, added));
                depth_below = depth_below.saturating_add(added);
                chain = 0;
            }
            Tok::RParen | Tok::RBracket | Tok::RBrace => {
                // Unbalanced closers were reported by the lexer; stay at the outermost level.
                let (outer, added) = saved.pop().unwrap_or((0, 0));
                chain = outer;
                depth_below = depth_below.saturating_sub(added).max(base);
            }
            t if deepens(t) => chain = chain.saturating_add(1),
            Tok::Str(raw) if raw.contains('{') => {
                strings.insert(*start as u32, depth_below.saturating_add(chain));
            }
            _ => {}
        }
        if depth_below.saturating_add(chain) > MAX_NESTING {
            return Err(Box::new(too_deep(file, Span::new(*start, *end))));
        }
        prev = Some(tok);
    }
    Ok(strings)
}

fn too_deep(file: FileId, span: Span) -> Diagnostic {
    Diagnostic::error(
        "E0118",
        format!("code is nested too deeply (more than {MAX_NESTING} levels)"),
        file,
        span,
    )
    .with_label("the nesting limit is reached here")
    .with_help("give intermediate results a name with `let`, or move inner parts into functions")
}

/// Tokens that add a level to the expression or statement they are in.
fn deepens(t: &Tok<'_>) -> bool {
    matches!(
        t,
        Tok::Or
            | Tok::And
            | Tok::Not
            | Tok::EqEq
            | Tok::Ne
            | Tok::Lt
            | Tok::Le
            | Tok::Gt
            | Tok::Ge
            | Tok::DotDot
            | Tok::Plus
            | Tok::Minus
            | Tok::MinusLead
            | Tok::Star
            | Tok::Slash
            | Tok::Percent
            | Tok::Dot
            | Tok::Question
            | Tok::Else
            | Tok::Catch
            | Tok::Arrow
            | Tok::Assign
            | Tok::PlusEq
            | Tok::MinusEq
            | Tok::StarEq
            | Tok::SlashEq
            | Tok::PercentEq
            | Tok::Colon
            | Tok::Bang
            | Tok::AndAnd
            | Tok::OrOr
    )
}

/// Whether `tok` starts a new expression at its level, so that the operators before it no
/// longer add to the depth of what follows.
fn resets(prev: Option<&Tok<'_>>, tok: &Tok<'_>, next_is_name: bool) -> bool {
    match tok {
        Tok::Comma
        | Tok::Semi
        | Tok::Let
        | Tok::While
        | Tok::For
        | Tok::Return
        | Tok::ReturnBare
        | Tok::Throw
        | Tok::Try
        | Tok::Break
        | Tok::Continue
        | Tok::Import
        | Tok::Type
        | Tok::Extern
        | Tok::Export
        | Tok::Doc(_) => true,
        // `else if` continues a chain of branches, which nests.
        Tok::If => !matches!(prev, Some(Tok::Else)),
        // A named function is an item or statement; `fn(...)` is a lambda inside an expression.
        Tok::Fn => next_is_name,
        // Two operands side by side: the grammar has no such expression, so a statement ends
        // between them.
        _ => ends_operand(prev) && starts_operand(tok),
    }
}

fn ends_operand(t: Option<&Tok<'_>>) -> bool {
    t.is_some_and(|t| t.is_atom() || matches!(t, Tok::RParen | Tok::RBracket | Tok::RBrace))
}

fn starts_operand(t: &Tok<'_>) -> bool {
    t.is_atom()
        || matches!(
            t,
            Tok::LParenLead | Tok::LBracketLead | Tok::MinusLead | Tok::Not
        )
}
