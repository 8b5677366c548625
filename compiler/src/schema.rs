//! Types as JSON Schemas: the output type of an `llm` expression and the parameters of the
//! functions offered as tools become the schemas sent to model providers (LLM.md §1). The
//! schemas stay within the subset the VM's `schema.conform` validates (type, properties,
//! required, additionalProperties, items, enum, anyOf) and OpenAI's strict mode accepts:
//! every record field is required (an optional one has a null-union type) and records allow
//! no other properties.

use serde_json::{json, Map, Value};

use crate::types::{Ty, TypeTable};

/// Why a type has no JSON Schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A kind of value JSON cannot carry (a function, an error, a task, a range).
    #[error("`{0}` values cannot be written in JSON")]
    NotData(String),
    /// A recursive alias: the schema subset has no references.
    #[error("type `{0}` is recursive")]
    Recursive(String),
}

/// The JSON Schema of values of `ty`.
pub fn schema(types: &TypeTable, ty: &Ty) -> Result<Value, SchemaError> {
    Builder {
        types,
        open: Vec::new(),
    }
    .schema(ty)
}

/// The schema of a tool's arguments: an object with one required property per parameter, in
/// order (an unannotated parameter accepts any value).
pub fn arguments(types: &TypeTable, params: &[(String, Ty)]) -> Result<Value, SchemaError> {
    let mut b = Builder {
        types,
        open: Vec::new(),
    };
    let mut props = Map::new();
    for (name, ty) in params {
        props.insert(name.clone(), b.schema(ty)?);
    }
    let required: Vec<&String> = params.iter().map(|(n, _)| n).collect();
    Ok(json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    }))
}

struct Builder<'a> {
    types: &'a TypeTable,
    /// The aliases being expanded, to detect recursion.
    open: Vec<u32>,
}

impl Builder<'_> {
    fn schema(&mut self, ty: &Ty) -> Result<Value, SchemaError> {
        Ok(match ty {
            Ty::Any | Ty::Never => json!({}),
            Ty::Null => json!({"type": "null"}),
            Ty::Bool => json!({"type": "boolean"}),
            Ty::Int => json!({"type": "integer"}),
            Ty::Float => json!({"type": "number"}),
            Ty::Str => json!({"type": "string"}),
            Ty::StrLit(s) => json!({"type": "string", "enum": [s]}),
            Ty::List(t) => json!({"type": "array", "items": self.schema(t)?}),
            Ty::Map(t) => json!({"type": "object", "additionalProperties": self.schema(t)?}),
            Ty::Record(fields) => {
                let mut props = Map::new();
                for (name, t) in fields {
                    props.insert(name.clone(), self.schema(t)?);
                }
                let required: Vec<&String> = fields.iter().map(|(n, _)| n).collect();
                json!({
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": false,
                })
            }
            Ty::Optional(t) => self.nullable(t)?,
            Ty::Union(members) => self.union(members)?,
            Ty::Named(id, name) => {
                if self.open.contains(id) {
                    return Err(SchemaError::Recursive(name.clone()));
                }
                let Some(alias) = self.types.aliases.get(*id as usize) else {
                    return Ok(json!({}));
                };
                self.open.push(*id);
                let mut s = self.schema(&alias.ty)?;
                self.open.pop();
                if let (Some(doc), Value::Object(obj)) = (&alias.doc, &mut s) {
                    obj.insert("description".into(), Value::String(doc.clone()));
                }
                s
            }
            Ty::Func | Ty::Error | Ty::Range | Ty::Task => {
                return Err(SchemaError::NotData(ty.to_string()))
            }
        })
    }

    /// `T?`: T or null. A type that already admits null is left as it is.
    fn nullable(&mut self, t: &Ty) -> Result<Value, SchemaError> {
        let inner = self.schema(t)?;
        if admits_null(&inner) {
            return Ok(inner);
        }
        Ok(json!({"anyOf": [inner, {"type": "null"}]}))
    }

    /// A union of string literals is one string enum; any other union is an `anyOf`, whose
    /// string-literal members are gathered into one enum.
    fn union(&mut self, members: &[Ty]) -> Result<Value, SchemaError> {
        let mut literals: Vec<String> = Vec::new();
        let mut others: Vec<Value> = Vec::new();
        for m in members {
            let s = self.schema(m)?;
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
        Ok(match all.len() {
            1 => all.pop().unwrap_or_else(|| json!({})),
            _ => json!({"anyOf": all}),
        })
    }
}

/// The values of a plain string-enum schema `{"type": "string", "enum": [...]}` (no description
/// or other keywords that merging would lose).
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
mod tests;
