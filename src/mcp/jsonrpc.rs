//! The JSON-RPC 2.0 envelope: classifying incoming messages, error codes, and building
//! responses. Pure data; no MCP method semantics live here.

use serde_json::{Map, Value, json};

/// Error codes used on the wire.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid JSON-RPC message (or a batch where batches are not allowed).
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method, or a capability the server does not offer.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters: unknown tool, bad cursor, bad log level, missing fields.
    pub const INVALID_PARAMS: i64 = -32602;
    /// A bug or an unexpected failure on the server side.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Legacy (before 2026-07-28) "resource not found".
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// 2026-07-28: an `Mcp-*` header or `MCP-Protocol-Version` disagrees with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability the client did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the requested protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A JSON-RPC error object (`{"code", "message", "data"?}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        RpcError::new(code::PARSE_ERROR, format!("parse error: {detail}"))
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        RpcError::new(code::INVALID_REQUEST, message)
    }

    pub fn method_not_found(method: &str) -> Self {
        RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(code::INVALID_PARAMS, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        RpcError::new(code::INTERNAL_ERROR, message)
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let (Some(data), Some(obj)) = (&self.data, error.as_object_mut()) {
            obj.insert("data".into(), data.clone());
        }
        error
    }
}

/// A JSON-RPC request id: a string or an integer (MCP forbids `null`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    Number(i64),
    Text(String),
}

impl RequestId {
    /// Reads an id; `None` when it is absent, null, fractional or another type.
    pub fn from_json(value: &Value) -> Option<RequestId> {
        match value {
            Value::String(s) => Some(RequestId::Text(s.clone())),
            Value::Number(n) => n.as_i64().map(RequestId::Number),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            RequestId::Number(n) => json!(n),
            RequestId::Text(s) => json!(s),
        }
    }
}

/// One classified incoming message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Request {
        id: RequestId,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A reply to a request the server sent to the client (sampling, elicitation, …).
    Response {
        id: RequestId,
        outcome: Result<Value, Value>,
    },
    /// Not a valid message; `id` is echoed when it could be read.
    Invalid {
        id: Option<RequestId>,
        error: RpcError,
    },
}

/// Classify one message (not a batch).
pub fn classify(message: &Value) -> Incoming {
    let Some(obj) = message.as_object() else {
        return Incoming::Invalid {
            id: None,
            error: RpcError::invalid_request("a JSON-RPC message must be a JSON object"),
        };
    };
    let raw_id = obj.get("id");
    let id = raw_id.and_then(RequestId::from_json);
    let invalid = |error: RpcError| Incoming::Invalid {
        id: id.clone(),
        error,
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(RpcError::invalid_request(
            "\"jsonrpc\" must be the string \"2.0\"",
        ));
    }
    if raw_id.is_some() && id.is_none() {
        return invalid(RpcError::invalid_request(
            "\"id\" must be a string or an integer (not null)",
        ));
    }
    if let Some(method) = obj.get("method") {
        let Some(method) = method.as_str() else {
            return invalid(RpcError::invalid_request("\"method\" must be a string"));
        };
        let params = obj.get("params").cloned();
        if let Some(p) = &params
            && !p.is_object()
            && !p.is_array()
            && !p.is_null()
        {
            return invalid(RpcError::invalid_request(
                "\"params\" must be an object or an array",
            ));
        }
        let params = params.filter(|p| !p.is_null());
        return match id {
            Some(id) => Incoming::Request {
                id,
                method: method.to_string(),
                params,
            },
            None => Incoming::Notification {
                method: method.to_string(),
                params,
            },
        };
    }
    match (id, obj.get("result"), obj.get("error")) {
        (Some(id), Some(result), None) => Incoming::Response {
            id,
            outcome: Ok(result.clone()),
        },
        (Some(id), None, Some(error)) => Incoming::Response {
            id,
            outcome: Err(error.clone()),
        },
        (id, _, _) => Incoming::Invalid {
            id,
            error: RpcError::invalid_request(
                "a message needs \"method\" (request or notification) or exactly one of \"result\"/\"error\" with an \"id\" (response)",
            ),
        },
    }
}

/// [`classify`] taking the message: its `params` are moved out instead of copied (they hold
/// a tool call's arguments). The same answer as [`classify`] for every message.
pub fn classify_owned(mut message: Value) -> Incoming {
    let params = message.as_object_mut().and_then(|obj| obj.remove("params"));
    let mut incoming = classify(&message);
    let slot = match &mut incoming {
        Incoming::Request { params, .. } | Incoming::Notification { params, .. } => params,
        Incoming::Response { .. } | Incoming::Invalid { .. } => return incoming,
    };
    match params {
        Some(p) if !p.is_object() && !p.is_array() && !p.is_null() => Incoming::Invalid {
            id: match incoming {
                Incoming::Request { id, .. } => Some(id),
                _ => None,
            },
            error: RpcError::invalid_request("\"params\" must be an object or an array"),
        },
        params => {
            *slot = params.filter(|p| !p.is_null());
            incoming
        }
    }
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`.
pub fn success(id: &RequestId, result: Value) -> Value {
    // Built by moving `result` in: `json!` would serialize a deep copy of it.
    let mut envelope = serde_json::Map::with_capacity(3);
    envelope.insert("jsonrpc".into(), Value::from("2.0"));
    envelope.insert("id".into(), id.to_json());
    envelope.insert("result".into(), result);
    Value::Object(envelope)
}

/// `{"jsonrpc":"2.0","id":…|null,"error":…}`.
pub fn failure(id: Option<&RequestId>, error: &RpcError) -> Value {
    let id = id.map(RequestId::to_json).unwrap_or(Value::Null);
    json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() })
}

/// A server-to-client notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// `params` as an object: absent/null → empty; an array or other value → -32602.
pub fn params_object(params: Option<&Value>) -> Result<Map<String, Value>, RpcError> {
    let empty = Map::new();
    params_map(params, &empty).cloned()
}

/// [`params_object`], borrowed: absent/null → `empty`.
pub fn params_map<'a>(
    params: Option<&'a Value>,
    empty: &'a Map<String, Value>,
) -> Result<&'a Map<String, Value>, RpcError> {
    match params {
        None | Some(Value::Null) => Ok(empty),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(RpcError::invalid_params(
            "params must be an object for this method",
        )),
    }
}

/// A required string field of `params`.
pub fn required_str<'a>(params: &'a Map<String, Value>, field: &str) -> Result<&'a str, RpcError> {
    match params.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RpcError::invalid_params(format!(
            "params.{field} must be a string"
        ))),
        None => Err(RpcError::invalid_params(format!(
            "params.{field} is required"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind_of_message() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"jsonrpc":"2.0","id":1,"method":"ping"}), "request"),
            (
                json!({"jsonrpc":"2.0","id":"a","method":"x","params":{}}),
                "request",
            ),
            (
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
                "notification",
            ),
            (json!({"jsonrpc":"2.0","id":7,"result":{}}), "response"),
            (
                json!({"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"m"}}),
                "response",
            ),
            (json!({"jsonrpc":"1.0","id":1,"method":"ping"}), "invalid"),
            (json!({"id":1,"method":"ping"}), "invalid"),
            (
                json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
                "invalid",
            ),
            (json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}), "invalid"),
            (json!({"jsonrpc":"2.0","id":{},"method":"ping"}), "invalid"),
            (json!({"jsonrpc":"2.0","id":1,"method":5}), "invalid"),
            (
                json!({"jsonrpc":"2.0","id":1,"method":"x","params":"s"}),
                "invalid",
            ),
            (json!({"jsonrpc":"2.0","id":1}), "invalid"),
            (json!({"jsonrpc":"2.0","method":"n","params":7}), "invalid"),
            (
                json!({"jsonrpc":"2.0","id":"a","method":"m","params":{"arguments":{"k":[1,{"x":null}]}}}),
                "request",
            ),
            (
                json!({"jsonrpc":"2.0","id":2,"method":"m","params":[1,2]}),
                "request",
            ),
            (
                json!({"jsonrpc":"2.0","id":2,"method":"m","params":null}),
                "request",
            ),
            (
                json!({"jsonrpc":"2.0","method":"n","params":{"a":1}}),
                "notification",
            ),
            (
                json!({"jsonrpc":"2.0","id":7,"result":{},"params":{"a":1}}),
                "response",
            ),
            (
                json!({"jsonrpc":"2.0","id":{},"method":"m","params":5}),
                "invalid",
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":5,"params":5}),
                "invalid",
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":1,"error":{}}),
                "invalid",
            ),
            (json!("just a string"), "invalid"),
            (json!(42), "invalid"),
        ];
        for (message, expected) in cases {
            assert_eq!(
                classify_owned(message.clone()),
                classify(&message),
                "{message}"
            );
            let kind = match classify(&message) {
                Incoming::Request { .. } => "request",
                Incoming::Notification { .. } => "notification",
                Incoming::Response { .. } => "response",
                Incoming::Invalid { error, .. } => {
                    assert_eq!(error.code, code::INVALID_REQUEST, "{message}");
                    "invalid"
                }
            };
            assert_eq!(kind, expected, "{message}");
        }
    }

    #[test]
    fn invalid_message_keeps_a_readable_id() {
        let Incoming::Invalid { id, .. } =
            classify(&json!({"jsonrpc":"1.0","id":"x","method":"m"}))
        else {
            panic!("expected invalid");
        };
        assert_eq!(id, Some(RequestId::Text("x".into())));
    }

    #[test]
    fn responses_echo_ids_and_codes() {
        let id = RequestId::Number(3);
        assert_eq!(
            success(&id, json!({})),
            json!({"jsonrpc":"2.0","id":3,"result":{}})
        );
        let err = RpcError::invalid_params("bad").with_data(json!({"x":1}));
        assert_eq!(
            failure(None, &err),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad","data":{"x":1}}})
        );
    }

    #[test]
    fn params_must_be_objects() {
        assert!(params_object(None).is_ok());
        assert!(params_object(Some(&json!(null))).is_ok());
        assert_eq!(
            params_object(Some(&json!([1]))).map_err(|e| e.code),
            Err(code::INVALID_PARAMS)
        );
        let p = params_object(Some(&json!({"a":"b","n":1}))).unwrap();
        assert_eq!(required_str(&p, "a").unwrap(), "b");
        assert!(required_str(&p, "n").is_err());
        assert!(required_str(&p, "zz").is_err());
    }
}
