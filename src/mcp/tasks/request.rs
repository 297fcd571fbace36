//! Whether a `tools/call` becomes a task, and with which time to live: the 2025-11-25 rules
//! (the client asks with a `task` param; the tool's `taskSupport` decides whether that is
//! allowed) and the 2026-07-28 rules (the server decides, for clients that declared the
//! extension).

use serde_json::{Map, Value, json};

use super::EXTENSION_ID;
use super::support::TaskSupport;
use crate::mcp::jsonrpc::{RpcError, code};

/// Time to live when the client asks for none (ms).
pub const DEFAULT_TTL_MS: u64 = 60 * 60 * 1000;
/// Longest time to live granted (ms); longer requests are cut to it.
pub const MAX_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// Shortest time to live granted (ms).
pub const MIN_TTL_MS: u64 = 10 * 1000;
/// Suggested interval between `tasks/get` polls (ms).
pub const POLL_INTERVAL_MS: u64 = 500;

/// How a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As an ordinary request.
    Direct,
    /// As a task kept `ttl_ms` after creation.
    Task { ttl_ms: u64 },
}

/// 2025-11-25: `params.task` (an object with an optional `ttl`) asks for a task. Only
/// honoured when the session negotiated a revision with tasks (`tasks_negotiated`): otherwise
/// it is ignored, as the spec says for a receiver without the capability. A tool that does not
/// support tasks refuses it, and a tool that requires one refuses a plain call (-32601).
pub fn legacy_mode(
    tool: &str,
    support: TaskSupport,
    params: &Map<String, Value>,
    tasks_negotiated: bool,
) -> Result<Mode, RpcError> {
    if !tasks_negotiated {
        return Ok(Mode::Direct);
    }
    let requested = match params.get("task") {
        None | Some(Value::Null) => None,
        Some(Value::Object(task)) => Some(ttl_param(task)?),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "params.task must be an object (optionally with ttl in milliseconds)",
            ));
        }
    };
    match (requested, support) {
        (Some(_), TaskSupport::Forbidden) => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!(
                "tool {tool:?} does not run as a task (its execution.taskSupport is forbidden): call it without params.task"
            ),
        )),
        (None, TaskSupport::Required) => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!(
                "tool {tool:?} runs only as a task (its execution.taskSupport is required): add params.task"
            ),
        )),
        (Some(ttl), _) => Ok(Mode::Task {
            ttl_ms: grant_ttl(ttl),
        }),
        (None, _) => Ok(Mode::Direct),
    }
}

/// 2026-07-28: a tool that supports tasks runs as one when the request declares the
/// extension; a tool that requires a task refuses a request that does not (-32021). A
/// 2025-11-25 `task` param is tolerated and ignored.
pub fn modern_mode(
    tool: &str,
    support: TaskSupport,
    client_capabilities: &Value,
) -> Result<Mode, RpcError> {
    let declared = client_capabilities
        .get("extensions")
        .and_then(|e| e.get(EXTENSION_ID))
        .is_some_and(|v| !v.is_null());
    match (declared, support) {
        (true, TaskSupport::Optional | TaskSupport::Required) => Ok(Mode::Task {
            ttl_ms: DEFAULT_TTL_MS,
        }),
        (false, TaskSupport::Required) => Err(missing_extension(format!(
            "tool {tool:?} runs only as a task: declare the {EXTENSION_ID} extension in params._meta[\"io.modelcontextprotocol/clientCapabilities\"].extensions"
        ))),
        _ => Ok(Mode::Direct),
    }
}

/// -32021 naming the tasks extension.
pub fn missing_extension(message: String) -> RpcError {
    RpcError::new(code::MISSING_CLIENT_CAPABILITY, message).with_data(json!({
        "requiredCapabilities": { "extensions": { EXTENSION_ID: {} } }
    }))
}

fn ttl_param(task: &Map<String, Value>) -> Result<Option<u64>, RpcError> {
    match task.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            RpcError::invalid_params(
                "params.task.ttl must be a non-negative integer (milliseconds)",
            )
        }),
    }
}

/// The time to live granted for a requested one (the spec lets the receiver override it).
pub fn grant_ttl(requested: Option<u64>) -> u64 {
    requested
        .unwrap_or(DEFAULT_TTL_MS)
        .clamp(MIN_TTL_MS, MAX_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn legacy_table() {
        use TaskSupport::*;
        let task = params(json!({"task": {"ttl": 60_000}}));
        let plain = params(json!({}));
        assert_eq!(
            legacy_mode("t", Optional, &task, true),
            Ok(Mode::Task { ttl_ms: 60_000 })
        );
        assert_eq!(legacy_mode("t", Optional, &plain, true), Ok(Mode::Direct));
        assert_eq!(legacy_mode("t", Optional, &task, false), Ok(Mode::Direct));
        assert_eq!(
            legacy_mode("t", Forbidden, &task, true).unwrap_err().code,
            -32601
        );
        assert_eq!(
            legacy_mode("t", Required, &plain, true).unwrap_err().code,
            -32601
        );
        assert_eq!(
            legacy_mode("t", Optional, &params(json!({"task": 1})), true)
                .unwrap_err()
                .code,
            -32602
        );
        assert_eq!(
            legacy_mode("t", Optional, &params(json!({"task": {"ttl": 1}})), true),
            Ok(Mode::Task { ttl_ms: MIN_TTL_MS })
        );
        assert_eq!(
            legacy_mode("t", Optional, &params(json!({"task": {}})), true),
            Ok(Mode::Task {
                ttl_ms: DEFAULT_TTL_MS
            })
        );
    }

    #[test]
    fn modern_table() {
        use TaskSupport::*;
        let with = json!({"extensions": {EXTENSION_ID: {}}});
        let without = json!({});
        assert!(matches!(
            modern_mode("t", Optional, &with),
            Ok(Mode::Task { .. })
        ));
        assert_eq!(modern_mode("t", Optional, &without), Ok(Mode::Direct));
        assert_eq!(modern_mode("t", Forbidden, &with), Ok(Mode::Direct));
        let refused = modern_mode("t", Required, &without).unwrap_err();
        assert_eq!(refused.code, -32021);
        assert!(
            refused.data.unwrap()["requiredCapabilities"]["extensions"][EXTENSION_ID].is_object()
        );
    }
}
