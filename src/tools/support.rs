//! Shared plumbing for the tool groups: a function-backed [`Tool`], the error type tools
//! return, strict argument parsing, and small JSON Schema builders.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::ToolDeps;
use crate::kasm::KasmError;
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use crate::policy::Role;

/// A failed call, shown to the model as an `isError` result. Always a complete sentence
/// that says what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError(pub String);

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        ToolError(message.into())
    }
}

impl From<KasmError> for ToolError {
    fn from(error: KasmError) -> Self {
        ToolError(error.to_string())
    }
}

/// What every tool body returns.
pub type ToolResult = Result<ToolOutput, ToolError>;

type BoxedCall = Pin<Box<dyn Future<Output = ToolResult> + Send>>;

/// The body of a tool: an async function of the shared dependencies, the call context and
/// the raw arguments.
pub type Handler = fn(Arc<ToolDeps>, CallContext, Map<String, Value>) -> BoxedCall;

/// A tool made of a spec and a handler function.
pub struct FnTool {
    spec: ToolSpec,
    deps: Arc<ToolDeps>,
    handler: Handler,
}

impl FnTool {
    pub fn shared(spec: ToolSpec, deps: &Arc<ToolDeps>, handler: Handler) -> Arc<dyn Tool> {
        Arc::new(FnTool {
            spec,
            deps: deps.clone(),
            handler,
        })
    }
}

#[async_trait]
impl Tool for FnTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        match (self.handler)(self.deps.clone(), ctx.clone(), args).await {
            Ok(output) => output,
            Err(ToolError(message)) => ToolOutput::error(message),
        }
    }
}

/// Box a tool body: `handler!(module::function)`.
macro_rules! handler {
    ($f:path) => {
        |deps, ctx, args| Box::pin($f(deps, ctx, args))
    };
}
pub(crate) use handler;

/// Parse arguments into `T` (a `deny_unknown_fields` struct), with a message that names
/// the tool, the problem, and the parameters the tool accepts.
pub fn parse_args<T: DeserializeOwned>(
    tool: &str,
    schema: &Value,
    args: Map<String, Value>,
) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args)).map_err(|e| argument_error(tool, schema, e))
}

/// [`parse_args`] for argument structs that `#[serde(flatten)]` a shared part: serde cannot
/// deny unknown fields through `flatten`, so arguments the schema does not list are refused
/// here first, with the same message.
pub fn parse_flattened_args<T: DeserializeOwned>(
    tool: &str,
    schema: &Value,
    args: Map<String, Value>,
) -> Result<T, ToolError> {
    let listed = schema.get("properties").and_then(Value::as_object);
    if let Some(unknown) = args
        .keys()
        .find(|k| !listed.is_some_and(|p| p.contains_key(k.as_str())))
    {
        return Err(argument_error(
            tool,
            schema,
            format!("unknown field `{unknown}`"),
        ));
    }
    parse_args(tool, schema, args)
}

/// "invalid arguments for {tool}: {problem}. Accepted parameters: … (required: …)".
pub fn argument_error(tool: &str, schema: &Value, problem: impl std::fmt::Display) -> ToolError {
    let allowed: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let allowed = if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    };
    let required = if required.is_empty() {
        "none".to_string()
    } else {
        required.join(", ")
    };
    ToolError(format!(
        "invalid arguments for {tool}: {problem}. Accepted parameters: {allowed} (required: {required})"
    ))
}

/// The input schema of a tool that takes no arguments.
pub fn no_input() -> Value {
    object_schema(json!({}), &[])
}

/// Refuse every argument of a tool that takes none, with the same message as [`parse_args`].
pub fn no_args(tool: &str, args: Map<String, Value>) -> Result<(), ToolError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoArgs {}
    parse_args::<NoArgs>(tool, &no_input(), args).map(|NoArgs {}| ())
}

/// An object schema that refuses unknown properties.
pub fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// An output object schema (unknown properties allowed: Kasm versions add fields).
pub fn output_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

/// The `kasm_id` parameter every session tool takes.
pub fn kasm_id_param() -> Value {
    json!({
        "type": "string",
        "description": "The session's kasm_id (a UUID, dashes optional), as returned by create_kasm_session or list_user_sessions."
    })
}

/// Annotations in one line: (read_only, destructive, idempotent, open_world).
pub fn hints(
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
) -> ToolAnnotations {
    ToolAnnotations {
        read_only_hint: read_only,
        destructive_hint: destructive,
        idempotent_hint: idempotent,
        open_world_hint: open_world,
    }
}

/// Build a spec.
pub struct SpecBuilder {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub input: Value,
    pub output: Option<Value>,
    pub annotations: ToolAnnotations,
    pub min_role: Role,
}

impl SpecBuilder {
    pub fn build(self) -> ToolSpec {
        ToolSpec {
            name: self.name.into(),
            title: self.title.into(),
            description: self.description.into(),
            input_schema: self.input,
            output_schema: self.output,
            annotations: self.annotations,
            min_role: self.min_role,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        kasm_id: String,
        #[serde(default)]
        timeout_s: Option<u64>,
    }

    #[test]
    fn unknown_arguments_are_refused_naming_the_allowed_ones() {
        let schema = object_schema(
            json!({"kasm_id": {"type": "string"}, "timeout_s": {"type": "integer"}}),
            &["kasm_id"],
        );
        let mut args = Map::new();
        args.insert("kasm_id".into(), json!("x"));
        args.insert("bogus".into(), json!(1));
        let err = parse_args::<Args>("t", &schema, args).unwrap_err().0;
        assert!(err.contains("bogus"), "{err}");
        assert!(err.contains("kasm_id, timeout_s"), "{err}");
        let err = parse_args::<Args>("t", &schema, Map::new()).unwrap_err().0;
        assert!(err.contains("missing field `kasm_id`"), "{err}");
    }

    #[test]
    fn a_tool_without_parameters_refuses_any_argument_and_accepts_none() {
        assert_eq!(no_args("t", Map::new()), Ok(()));
        let mut args = Map::new();
        args.insert("bogus".into(), json!(1));
        let err = no_args("get_kasm_users", args).unwrap_err().0;
        assert!(
            err.contains("get_kasm_users") && err.contains("bogus") && err.contains("none"),
            "{err}"
        );
    }
}
