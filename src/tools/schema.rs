//! Tool schemas derived from the argument and result types, as the official Rust SDK (rmcp)
//! does: `schemars` with every subschema inlined (no `$ref`/`$defs`, which some clients do
//! not resolve), doc comments as descriptions, bounds and enums from the types.
//!
//! Argument types are `#[serde(deny_unknown_fields)]`, which schemars turns into
//! `additionalProperties: false`; the "invalid arguments" message names the parameters the
//! same derived schema lists, so the schema and the message cannot drift apart.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::support::ToolError;

fn schema_of<T: JsonSchema>() -> Schema {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let mut schema = settings.into_generator().into_root_schema_for::<T>();
    // The root title is the Rust type's name, `$schema` the default dialect of MCP, and the
    // root description the type's doc comment for Rust readers (the tool's own description
    // speaks to clients): none of them tells a client anything.
    if let Some(root) = schema.as_object_mut() {
        root.remove("title");
        root.remove("$schema");
        root.remove("description");
    }
    unwrap_descriptions(&mut schema);
    schema
}

/// Doc comments are wrapped at 100 columns; a description is one paragraph per blank line.
fn unwrap_descriptions(schema: &mut Schema) {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    match inner {
                        Value::String(text) if key == "description" => {
                            *text = text
                                .split("\n\n")
                                .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                                .collect::<Vec<_>>()
                                .join("\n\n");
                        }
                        _ => walk(inner),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(root) = schema.as_object_mut() {
        root.values_mut().for_each(walk);
    }
}

/// The input schema of a tool whose arguments deserialize into `T`.
///
/// An optional parameter (`Option<T>`, which schemars types as `[T, "null"]`) is shown as
/// plain `T`: a client leaves it out rather than sending null, and several model APIs refuse
/// type arrays in tool parameters. (The server still reads an explicit null as "not given".)
pub fn input<T: JsonSchema>() -> Value {
    let mut schema = schema_of::<T>().to_value();
    if let Some(root) = schema.as_object_mut() {
        // An argument struct without fields still lists its (empty) properties.
        let properties = root
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(properties) = properties.as_object_mut() {
            for property in properties.values_mut() {
                drop_null_type(property);
            }
        }
    }
    schema
}

/// `{"type": [T, "null"]}` → `{"type": T}`.
fn drop_null_type(property: &mut Value) {
    let Some(types) = property.get("type").and_then(Value::as_array) else {
        return;
    };
    let kept: Vec<Value> = types
        .iter()
        .filter(|t| t.as_str() != Some("null"))
        .cloned()
        .collect();
    if let (Some(obj), [only]) = (property.as_object_mut(), kept.as_slice()) {
        obj.insert("type".into(), only.clone());
    }
}

/// The output schema of a tool whose `structuredContent` serializes from `T`.
pub fn output<T: JsonSchema>() -> Value {
    schema_of::<T>().to_value()
}

/// Set `keyword` (e.g. `default`, `maximum`) of the property `name` to a value only known
/// at run time, such as a configured limit. The property itself comes from the type.
pub fn with_keyword(mut schema: Value, name: &str, keyword: &str, value: Value) -> Value {
    if let Some(property) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut(name))
        .and_then(Value::as_object_mut)
    {
        property.insert(keyword.into(), value);
    }
    schema
}

/// Set the `default` of the input property `name` (see [`with_keyword`]).
pub fn with_default(schema: Value, name: &str, default: Value) -> Value {
    with_keyword(schema, name, "default", default)
}

/// Parse arguments into `T`, with a message that names the tool, the problem, and the
/// parameters `T`'s schema accepts. Refuses parameters the schema does not list even when
/// `T` flattens a shared part (where serde cannot deny unknown fields itself).
pub fn parse_args<T: DeserializeOwned + JsonSchema + 'static>(
    tool: &str,
    args: Map<String, Value>,
) -> Result<T, ToolError> {
    let schema = cached_input::<T>();
    let listed = schema.get("properties").and_then(Value::as_object);
    if let Some(unknown) = args
        .keys()
        .find(|k| !listed.is_some_and(|p| p.contains_key(k.as_str())))
    {
        return Err(argument_error(
            tool,
            &schema,
            format!("unknown field `{unknown}`"),
        ));
    }
    serde_json::from_value(Value::Object(args)).map_err(|e| argument_error(tool, &schema, e))
}

/// [`input`] of `T`, generated once per type: generating a schema costs more than parsing
/// the arguments it checks (it was ~3 % of a `get_session_status` call's CPU).
fn cached_input<T: JsonSchema + 'static>() -> std::sync::Arc<Value> {
    use std::any::TypeId;
    // Keyed by type: foldhash, not SipHash (looked up once per tool call).
    use foldhash::HashMap;
    use std::sync::{Arc, OnceLock, RwLock};
    static CACHE: OnceLock<RwLock<HashMap<TypeId, Arc<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = TypeId::of::<T>();
    if let Some(schema) = cache
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&key)
    {
        return schema.clone();
    }
    let schema = Arc::new(input::<T>());
    cache
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(key)
        .or_insert(schema)
        .clone()
}

/// "invalid arguments for {tool}: {problem}. Accepted parameters: … (required: …)".
pub fn argument_error(tool: &str, schema: &Value, problem: impl std::fmt::Display) -> ToolError {
    let names = |key: &str| -> String {
        let names: Vec<&str> = match schema.get(key) {
            Some(Value::Object(props)) => props.keys().map(String::as_str).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    ToolError::new(format!(
        "invalid arguments for {tool}: {problem}. Accepted parameters: {} (required: {})",
        names("properties"),
        names("required")
    ))
}

/// The arguments of a tool that takes none.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kasm::KasmId;

    /// Test arguments.
    #[derive(serde::Deserialize, JsonSchema, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        kasm_id: KasmId,
        /// How
        /// long.
        #[schemars(range(min = 1, max = 60))]
        #[serde(default)]
        timeout_s: Option<u64>,
    }

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_schema_comes_from_the_type_inlined_and_closed() {
        let schema = input::<Args>();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["required"], json!(["kasm_id"]));
        assert_eq!(schema["properties"]["timeout_s"]["maximum"], json!(60));
        assert_eq!(
            schema["properties"]["timeout_s"]["description"],
            json!("How long.")
        );
        assert_eq!(schema["properties"]["kasm_id"]["type"], json!("string"));
        assert_eq!(schema["properties"]["timeout_s"]["type"], json!("integer"));
        let text = schema.to_string();
        assert!(!text.contains("$ref") && !text.contains("$defs"), "{text}");
        assert!(schema.get("title").is_none() && schema.get("$schema").is_none());
    }

    #[test]
    fn unknown_arguments_are_refused_naming_the_allowed_ones() {
        let id = "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f";
        let err = parse_args::<Args>("t", args(json!({"kasm_id": id, "bogus": 1})))
            .unwrap_err()
            .0;
        assert!(err.contains("bogus"), "{err}");
        assert!(err.contains("kasm_id, timeout_s"), "{err}");
        let err = parse_args::<Args>("t", Map::new()).unwrap_err().0;
        assert!(err.contains("missing field `kasm_id`"), "{err}");
        let err = parse_args::<Args>("t", args(json!({"kasm_id": "nope"})))
            .unwrap_err()
            .0;
        assert!(err.contains("kasm_id must be a UUID"), "{err}");
    }

    #[test]
    fn a_tool_without_parameters_refuses_any_argument_and_accepts_none() {
        assert!(parse_args::<NoArgs>("t", Map::new()).is_ok());
        let err = parse_args::<NoArgs>("get_kasm_users", args(json!({"bogus": 1})))
            .unwrap_err()
            .0;
        assert!(
            err.contains("get_kasm_users") && err.contains("bogus") && err.contains("none"),
            "{err}"
        );
        assert_eq!(
            input::<NoArgs>(),
            json!({"type": "object", "properties": {}, "additionalProperties": false})
        );
    }
}
