//! The few JSON-RPC bits the transports need before a message reaches the router: reading a
//! request body into one JSON message, error bodies for HTTP-level refusals and peeking at
//! `method`/`id`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::body_limit::rejection_response;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC message the transport can take.
pub const INVALID_REQUEST: i64 = -32600;
/// The server could not handle a valid request (e.g. the shared state did not answer).
pub const INTERNAL_ERROR: i64 = -32603;
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

/// An `application/json` response with `body`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json_text(body),
    )
        .into_response()
}

/// The compact JSON text of `value`, the same bytes as `value.to_string()`. Written through
/// serde_json's `io::Write` serializer into a buffer sized for a typical answer: `to_string`
/// goes through `Display`, which passes every fragment through `fmt::Write` and grows the
/// string from empty (3 % of the server's samples per tool call).
pub fn json_text(value: &Value) -> String {
    let mut text = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut text, value) {
        // serde_json writes UTF-8 only; the check is one fast pass over the bytes.
        Ok(()) => String::from_utf8(text).unwrap_or_else(|_| value.to_string()),
        Err(_) => value.to_string(),
    }
}

/// The POSTed body as one JSON value (a message or a batch), for both transports: a body that
/// could not be read is refused as [`rejection_response`] says (413 above `max_body_bytes`),
/// and invalid JSON gets 400 with a JSON-RPC -32700 error (`id: null`).
pub fn parse_body(
    body: Result<Bytes, BytesRejection>,
    max_body_bytes: usize,
) -> Result<Value, Box<Response>> {
    let body = body.map_err(|rejection| Box::new(rejection_response(rejection, max_body_bytes)))?;
    // A UTF-8 body is parsed as `str`: one pass over it instead of a UTF-8 check per string.
    // Any other body is parsed as bytes, as before (the same error).
    let parsed = match std::str::from_utf8(&body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(&body),
    };
    parsed.map_err(|error| {
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &error_body(
                Value::Null,
                PARSE_ERROR,
                &format!("parse error: {error}"),
                None,
            ),
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn json_text_writes_the_bytes_to_string_writes() {
        let big = "x".repeat(5000);
        for value in [
            json!(null),
            json!({}),
            json!([]),
            json!({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text",
                "text": "{\n  \"kasm_id\": \"a\",\n  \"note\": \"tab\\there\"\n}"}],
                "isError": false, "structuredContent": {"z": 1, "a": [1.5, -2, 1e300, "é ✓ \u{1}"],
                "m": {"k": null, "b": true}}}}),
            json!({"jsonrpc": "2.0", "id": "x\"y", "error": {"code": -32602, "message": "bad </script>"}}),
            json!([{"text": big}, 18446744073709551615u64, -9223372036854775808i64, 0.1]),
        ] {
            assert_eq!(json_text(&value), value.to_string(), "{value}");
        }
    }

    async fn body_json(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn invalid_json_is_a_parse_error() {
        let response = *parse_body(Ok(Bytes::from_static(b"{not json")), 1024).unwrap_err();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], PARSE_ERROR);
        assert_eq!(body["id"], Value::Null);
        assert_eq!(body["jsonrpc"], "2.0");
    }

    #[tokio::test]
    async fn a_body_that_is_not_utf8_gets_the_error_it_got_as_bytes() {
        for body in [&b"{\"method\":\"x\xff\"}"[..], &b"{\"a\":1}\xc3"[..]] {
            let expected = serde_json::from_slice::<Value>(body)
                .unwrap_err()
                .to_string();
            let response = *parse_body(Ok(Bytes::copy_from_slice(body)), 1024).unwrap_err();
            let answer = body_json(response).await;
            assert_eq!(
                answer["error"]["message"],
                format!("parse error: {expected}")
            );
        }
    }

    #[tokio::test]
    async fn valid_json_passes_through() {
        let message = parse_body(
            Ok(Bytes::from_static(br#"{"jsonrpc":"2.0","method":"x"}"#)),
            1024,
        )
        .unwrap();
        assert_eq!(method(&message), Some("x"));
        let batch = parse_body(Ok(Bytes::from_static(b"[1,2]")), 1024).unwrap();
        assert_eq!(batch, json!([1, 2]));
    }
}
