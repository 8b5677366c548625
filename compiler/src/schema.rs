//! Types as JSON Schemas: the output type of an `llm` expression and the parameters of the
//! functions offered as tools become the schemas sent to model providers (LLM.md §1). The
//! schemas stay within the subset the VM's `schema.conform` validates (type, properties,
//! required, additionalProperties, items, enum, anyOf) and OpenAI's strict mode accepts:
//! every record field is required (an optional one has a null-union type) and records allow
//! no other properties.

use aivm_vm::format::schema::{described, nullable, object, union};
use serde_json::{json, Value};

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
    let mut props = Vec::new();
    for (name, ty) in params {
        props.push((name.clone(), b.schema(ty)?));
    }
    Ok(object(props))
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
                let mut props = Vec::new();
                for (name, t) in fields {
                    props.push((name.clone(), self.schema(t)?));
                }
                object(props)
            }
            Ty::Optional(t) => nullable(self.schema(t)?),
            Ty::Union(members) => {
                let mut all = Vec::new();
                for t in members {
                    all.push(self.schema(t)?);
                }
                union(all)
            }
            Ty::Named(id, name) => {
                if self.open.contains(id) {
                    return Err(SchemaError::Recursive(name.clone()));
                }
                let Some(alias) = self.types.aliases.get(*id as usize) else {
                    return Ok(json!({}));
                };
                self.open.push(*id);
                let s = self.schema(&alias.ty)?;
                self.open.pop();
                described(s, alias.doc.as_deref())
            }
            Ty::Func | Ty::Error | Ty::Range | Ty::Task => {
                return Err(SchemaError::NotData(ty.to_string()))
            }
        })
    }
}

#[cfg(test)]
mod tests;
