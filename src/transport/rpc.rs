//! The few JSON-RPC bits the transports need before a message reaches the router: error
//! bodies for HTTP-level refusals and peeking at `method`/`id`.

use serde_json::{Value, json};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC message the transport can take.
pub const INVALID_REQUEST: i64 = -32600;
/// Unsupported `MCP-Protocol-Version` (2026-07-28 code; also used for older revisions).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Protocol revisions this server accepts in `MCP-Protocol-Version`, newest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = [
    "2026-07-28",
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
];

/// Revisions where closing a response stream cancels the request.
pub fn closing_stream_cancels(version: Option<&str>) -> bool {
    matches!(version, Some(v) if v >= "2026-07-28")
}

/// `{"jsonrpc":"2.0","id":id,"error":{code,message,data?}}`.
pub fn error_body(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let (Some(data), Some(obj)) = (data, error.as_object_mut()) {
        obj.insert("data".into(), data);
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

/// The `method` of a message, if it has one.
pub fn method(message: &Value) -> Option<&str> {
    message.get("method").and_then(Value::as_str)
}

/// The `id` of a request (`null` when absent).
pub fn id(message: &Value) -> Value {
    message.get("id").cloned().unwrap_or(Value::Null)
}

/// Whether a message (or any element of a batch) is a request (has `method` and `id`).
pub fn contains_request(message: &Value) -> bool {
    match message {
        Value::Array(items) => items.iter().any(contains_request),
        other => method(other).is_some() && other.get("id").is_some_and(|id| !id.is_null()),
    }
}
