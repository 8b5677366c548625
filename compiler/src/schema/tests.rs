//! Snapshots of the JSON Schemas of representative types, written as `.ail` type aliases.

use super::*;
use crate::diagnostic::SourceMap;
use crate::lower::{lower, ModuleSrc};
use crate::types::TypeTable;

/// The type table of `src` (type aliases only) and the type of its alias `name`.
fn alias(src: &str, name: &str) -> (TypeTable, Ty) {
    let mut sources = SourceMap::default();
    let file = sources.add("types.ail", src);
    let ast = crate::parse::parse_module(file, src).expect("the test types parse");
    let mods = vec![ModuleSrc {
        file,
        ast,
        imports: vec![],
        agent: None,
        mcp: None,
        sees_prelude: false,
        entry: true,
    }];
    let mut diags = Vec::new();
    let lowered = lower(&mods, None, &mut diags);
    assert!(diags.is_empty(), "{diags:?}");
    let id = lowered
        .types
        .aliases
        .iter()
        .position(|a| a.name == name)
        .expect("the alias exists");
    (lowered.types, Ty::Named(id as u32, name.into()))
}

fn pretty(src: &str, name: &str) -> String {
    let (types, ty) = alias(src, name);
    let s = schema(&types, &ty).expect("the type has a schema");
    serde_json::to_string_pretty(&s).expect("a JSON value prints")
}

const TICKET: &str = r#"
/// A support ticket, triaged.
type Ticket = {
  title: string,
  severity: Severity,
  tags: [string],
  customer: string?,
  score: float,
  count: int,
  urgent: bool,
}
type Severity = "low" | "medium" | "high"
"#;

#[test]
fn a_record_lists_every_field_as_required_in_declared_order() {
    insta::assert_snapshot!(pretty(TICKET, "Ticket"));
}

#[test]
fn literal_unions_are_string_enums() {
    let (types, ty) = alias(TICKET, "Severity");
    assert_eq!(
        schema(&types, &ty).expect("schema"),
        json!({"type": "string", "enum": ["low", "medium", "high"]})
    );
}

#[test]
fn unions_optionals_maps_and_nesting() {
    let src = r#"
type Mixed = {
  id: int | string,
  answer: "yes" | "no" | null,
  maybe_list: [int]?,
  scores: map[string, float],
  anything: any,
  nothing: null,
  nested: [{x: int, y: int}],
  double_opt: Inner?,
}
type Inner = string?
"#;
    insta::assert_snapshot!(pretty(src, "Mixed"));
}

#[test]
fn aliases_are_resolved_and_keep_their_doc_as_description() {
    let src = "/// A point on the plane.\ntype P = {x: float, y: float}\ntype Path = [P]\n";
    let (types, ty) = alias(src, "Path");
    assert_eq!(
        schema(&types, &ty).expect("schema"),
        json!({"type": "array", "items": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            "required": ["x", "y"],
            "additionalProperties": false,
            "description": "A point on the plane.",
        }})
    );
}

#[test]
fn types_without_json_form_are_errors() {
    let (types, ty) = alias("type T = {f: fn}\n", "T");
    assert_eq!(schema(&types, &ty), Err(SchemaError::NotData("fn".into())));
    let (types, ty) = alias("type Tree = {kids: [Tree]}\n", "Tree");
    assert_eq!(
        schema(&types, &ty),
        Err(SchemaError::Recursive("Tree".into()))
    );
    assert!(schema(&TypeTable::default(), &Ty::Task).is_err());
}

#[test]
fn tool_arguments_are_a_strict_object() {
    let (types, ticket) = alias(TICKET, "Severity");
    let params = vec![
        ("query".to_string(), Ty::Str),
        ("limit".to_string(), Ty::Optional(Box::new(Ty::Int))),
        ("level".to_string(), ticket),
        ("extra".to_string(), Ty::Any),
    ];
    let s = arguments(&types, &params).expect("schema");
    insta::assert_snapshot!(serde_json::to_string_pretty(&s).expect("prints"));
}
