//! Shared plumbing for the tool groups: a function-backed [`Tool`], the error type tools
//! return, and typed structured results. Schemas and argument parsing are in `schema`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ToolDeps;
use crate::kasm::KasmError;
use crate::mcp::{CallContext, CallResult, Tool, ToolOutput, ToolSpec};
use crate::policy::quotas::Quota;

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

type BoxedRawCall = Pin<Box<dyn Future<Output = Result<CallResult, ToolError>> + Send>>;

/// The body of a tool that can also write its result as bytes ([`Tool::call_raw`]): it must
/// answer what the tool's [`Handler`] answers.
pub type RawHandler = fn(Arc<ToolDeps>, CallContext, Map<String, Value>) -> BoxedRawCall;

/// A tool made of a spec and a handler function.
pub struct FnTool {
    spec: ToolSpec,
    deps: Arc<ToolDeps>,
    handler: Handler,
    raw: Option<RawHandler>,
}

impl FnTool {
    pub fn shared(spec: ToolSpec, deps: &Arc<ToolDeps>, handler: Handler) -> Arc<dyn Tool> {
        Arc::new(FnTool {
            spec,
            deps: deps.clone(),
            handler,
            raw: None,
        })
    }

    /// A tool whose router calls run `raw` ([`Tool::call_raw`]); [`Tool::call`] runs
    /// `handler`.
    pub fn shared_raw(
        spec: ToolSpec,
        deps: &Arc<ToolDeps>,
        handler: Handler,
        raw: RawHandler,
    ) -> Arc<dyn Tool> {
        Arc::new(FnTool {
            spec,
            deps: deps.clone(),
            handler,
            raw: Some(raw),
        })
    }
}

#[async_trait]
impl Tool for FnTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        // Held for the whole call: the principal's concurrent-call quota.
        let _call = match super::usage_guard::take(&self.deps, ctx, Quota::Calls).await {
            Ok(permit) => permit,
            Err(message) => return ToolOutput::error(message),
        };
        match (self.handler)(self.deps.clone(), ctx.clone(), args).await {
            Ok(output) => output,
            Err(ToolError(message)) => ToolOutput::error(message),
        }
    }

    async fn call_raw(&self, ctx: &CallContext, args: Map<String, Value>) -> CallResult {
        let Some(raw) = self.raw else {
            return CallResult::Output(self.call(ctx, args).await);
        };
        let _call = match super::usage_guard::take(&self.deps, ctx, Quota::Calls).await {
            Ok(permit) => permit,
            Err(message) => return CallResult::Output(ToolOutput::error(message)),
        };
        match raw(self.deps.clone(), ctx.clone(), args).await {
            Ok(result) => result,
            Err(ToolError(message)) => CallResult::Output(ToolOutput::error(message)),
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

/// A structured result from a typed value (also rendered as text for older clients).
pub fn structured<T: Serialize>(value: &T) -> ToolResult {
    serde_json::to_value(value)
        .map(ToolOutput::structured)
        .map_err(|e| ToolError::new(format!("the result could not be encoded: {e}")))
}

/// A JSON object as it is, anything else wrapped as `{"value": …}`.
pub fn object_or_wrap(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => {
            let mut map = Map::new();
            map.insert("value".into(), other);
            map
        }
    }
}
