//! JSON Schemas of bytecode types: what a host shows of a function's parameters and result
//! (the tools of `aivm serve --mcp`). They are built the way the compiler builds the schemas it
//! sends to models (compiler/src/schema.rs), so one function has one schema whichever side
//! describes it: the subset `schema.conform` validates, every record field required, no other
//! properties.

use serde_json::{json, Map, Value};

use super::module::{Module, Param, TypeDesc, TypeId};

/// Why a type has no JSON Schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A kind of value JSON cannot carry (a function, an error).
    #[error("`{0}` values cannot be written in JSON")]
    NotData(String),
    /// A recursive alias: the schema subset has no references.
    #[error("type `{0}` is recursive")]
    Recursive(String),
    /// A type index outside the module's table (a verified module has none).
    #[error("no type {0} in the module")]
    NoType(TypeId),
}

/// The JSON Schema of values of type `ty` of `module`.
pub fn schema(module: &Module, ty: TypeId) -> Result<Value, SchemaError> {
    Builder {
        module,
        open: Vec::new(),
    }
    .schema(ty)
}

/// The schema of a function's arguments: an object with one required property per parameter,
/// in order, and no other properties.
pub fn arguments(module: &Module, params: &[Param]) -> Result<Value, SchemaError> {
    let mut b = Builder {
        module,
        open: Vec::new(),
    };
    let mut props = Vec::new();
    for p in params {
        props.push((module.str(p.name).to_string(), b.schema(p.ty)?));
    }
    Ok(object(props))
}

/// The schema of an object with exactly these properties, all required, no others: a
/// record's, or a function's arguments'.
pub fn object(props: Vec<(String, Value)>) -> Value {
    let required: Vec<String> = props.iter().map(|(n, _)| n.clone()).collect();
    let props: Map<String, Value> = props.into_iter().collect();
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

/// `T?` from T's schema: T or null. A schema that already admits null is left as it is.
pub fn nullable(inner: Value) -> Value {
    if admits_null(&inner) {
        return inner;
    }
    json!({"anyOf": [inner, {"type": "null"}]})
}

/// A union from its members' schemas: string literals are gathered into one string enum, the
/// rest (each once) joined with it in an `anyOf`; one member alone is itself.
pub fn union(members: Vec<Value>) -> Value {
    let mut literals: Vec<String> = Vec::new();
    let mut others: Vec<Value> = Vec::new();
    for s in members {
        match string_enum(&s) {
            Some(values) => {
                for v in values {
                    if !literals.contains(&v) {
                        literals.push(v);
                    }
                }
            }
            None => {
                if !others.contains(&s) {
                    others.push(s);
                }
            }
        }
    }
    let mut all = Vec::new();
    if !literals.is_empty() {
        all.push(json!({"type": "string", "enum": literals}));
    }
    all.extend(others);
    match all.len() {
        1 => all.pop().unwrap_or_else(|| json!({})),
        _ => json!({"anyOf": all}),
    }
}

/// A named type's schema: its alias's, with the doc comment as `description`.
pub fn described(mut s: Value, doc: Option<&str>) -> Value {
    if let (Some(doc), Value::Object(obj)) = (doc, &mut s) {
        obj.insert("description".into(), Value::String(doc.to_string()));
    }
    s
}

struct Builder<'a> {
    module: &'a Module,
    /// The named types being expanded, to detect recursion.
    open: Vec<TypeId>,
}

impl<'a> Builder<'a> {
    fn desc(&self, ty: TypeId) -> Result<&'a TypeDesc, SchemaError> {
        let m: &'a Module = self.module;
        m.types.get(ty as usize).ok_or(SchemaError::NoType(ty))
    }

    fn schema(&mut self, ty: TypeId) -> Result<Value, SchemaError> {
        let m = self.module;
        Ok(match self.desc(ty)? {
            TypeDesc::Any => json!({}),
            TypeDesc::Null => json!({"type": "null"}),
            TypeDesc::Bool => json!({"type": "boolean"}),
            TypeDesc::Int => json!({"type": "integer"}),
            TypeDesc::Float => json!({"type": "number"}),
            TypeDesc::Str => json!({"type": "string"}),
            TypeDesc::StrLit(s) => json!({"type": "string", "enum": [m.str(*s)]}),
            TypeDesc::List(t) => json!({"type": "array", "items": self.schema(*t)?}),
            TypeDesc::Map(t) => {
                json!({"type": "object", "additionalProperties": self.schema(*t)?})
            }
            TypeDesc::Record(fields) => {
                let mut props = Vec::new();
                for f in fields {
                    props.push((m.str(f.name).to_string(), self.schema(f.ty)?));
                }
                object(props)
            }
            TypeDesc::Optional(t) => nullable(self.schema(*t)?),
            TypeDesc::Union(members) => {
                let mut all = Vec::new();
                for t in members {
                    all.push(self.schema(*t)?);
                }
                union(all)
            }
            TypeDesc::Named {
                name,
                ty: inner,
                doc,
            } => {
                if self.open.contains(&ty) {
                    return Err(SchemaError::Recursive(m.str(*name).to_string()));
                }
                self.open.push(ty);
                let s = self.schema(*inner)?;
                self.open.pop();
                described(s, doc.map(|d| m.str(d)))
            }
            TypeDesc::Func => return Err(SchemaError::NotData("fn".into())),
            TypeDesc::Error => return Err(SchemaError::NotData("error".into())),
        })
    }
}

/// The values of a plain string-enum schema `{"type": "string", "enum": [...]}` (no
/// description or other keywords that merging would lose).
fn string_enum(s: &Value) -> Option<Vec<String>> {
    let obj = s.as_object()?;
    if obj.len() != 2 || obj.get("type")? != "string" {
        return None;
    }
    obj.get("enum")?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(String::from))
        .collect()
}

/// Whether a schema certainly accepts null: `{}`, `{"type": "null"}`, or an `anyOf` with one
/// of those.
fn admits_null(s: &Value) -> bool {
    let Some(obj) = s.as_object() else {
        return false;
    };
    if obj.is_empty() || obj.get("type").is_some_and(|t| t == "null") {
        return true;
    }
    obj.get("anyOf")
        .and_then(Value::as_array)
        .is_some_and(|ms| ms.iter().any(admits_null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Field, Module};

    fn module(types: Vec<TypeDesc>, strings: &[&str]) -> Module {
        Module {
            types,
            strings: strings.iter().map(|s| s.to_string()).collect(),
            ..Module::default()
        }
    }

    #[test]
    fn records_lists_and_optionals() {
        // 0 int, 1 string, 2 [string], 3 int?, 4 {n: int, tags: [string], x: int?}
        let m = module(
            vec![
                TypeDesc::Int,
                TypeDesc::Str,
                TypeDesc::List(1),
                TypeDesc::Optional(0),
                TypeDesc::Record(vec![
                    Field { name: 0, ty: 0 },
                    Field { name: 1, ty: 2 },
                    Field { name: 2, ty: 3 },
                ]),
            ],
            &["n", "tags", "x"],
        );
        assert_eq!(
            schema(&m, 4).unwrap(),
            json!({
                "type": "object",
                "properties": {
                    "n": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "x": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                },
                "required": ["n", "tags", "x"],
                "additionalProperties": false,
            })
        );
    }

    #[test]
    fn literal_unions_merge_and_named_types_carry_their_doc() {
        // 0 "a", 1 "b", 2 int, 3 "a" | int | "b", 4 Named(3) with a doc
        let m = module(
            vec![
                TypeDesc::StrLit(0),
                TypeDesc::StrLit(1),
                TypeDesc::Int,
                TypeDesc::Union(vec![0, 2, 1]),
                TypeDesc::Named {
                    name: 2,
                    ty: 3,
                    doc: Some(3),
                },
            ],
            &["a", "b", "Choice", "Pick one."],
        );
        assert_eq!(
            schema(&m, 4).unwrap(),
            json!({"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "integer"}],
                   "description": "Pick one."})
        );
    }

    #[test]
    fn recursion_functions_and_bad_indices_are_errors() {
        // 0 Tree = {kids: [Tree]}
        let m = module(
            vec![
                TypeDesc::Named {
                    name: 0,
                    ty: 1,
                    doc: None,
                },
                TypeDesc::Record(vec![Field { name: 1, ty: 2 }]),
                TypeDesc::List(0),
                TypeDesc::Func,
            ],
            &["Tree", "kids"],
        );
        assert_eq!(schema(&m, 0), Err(SchemaError::Recursive("Tree".into())));
        assert_eq!(schema(&m, 3), Err(SchemaError::NotData("fn".into())));
        assert_eq!(schema(&m, 9), Err(SchemaError::NoType(9)));
    }
}
