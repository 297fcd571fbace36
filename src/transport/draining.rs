//! While the server drains (after SIGTERM, before the in-flight calls have finished) it keeps
//! its listener open — the relay must still take the output uploads of running commands, and
//! notifications such as `notifications/cancelled` must still reach running calls — but it
//! refuses anything that would start new work: JSON-RPC requests and new legacy SSE streams
//! get 503 with `Retry-After`, so clients retry against another replica.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::rpc;
use super::state::TransportState;
use crate::http::error::json_error;

/// The 503 for work offered during shutdown.
pub fn shutting_down() -> Response {
    let mut response = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is shutting down; retry (another replica will answer)",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `Err(503)` when the server is draining and `message` holds a request.
pub fn refuse_new_work(state: &TransportState, message: &Value) -> Result<(), Box<Response>> {
    if state.shutdown.stopping().is_cancelled() && rpc::contains_request(message) {
        return Err(Box::new(shutting_down()));
    }
    Ok(())
}
