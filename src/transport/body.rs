//! The final JSON-RPC message of a POST, as the transports write it: a Value, or a response
//! the router already serialised (the cached `tools/list`), written without re-serialising.

use axum::http::{StatusCode, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::rpc::json_response;
use super::sse::message_event;
use crate::mcp::RawResponse;

/// One outgoing JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Value),
    Raw(RawResponse),
}

impl Body {
    /// The SSE `message` event carrying it.
    pub fn event(&self) -> Event {
        match self {
            Body::Json(message) => message_event(message),
            Body::Raw(raw) => Event::default().event("message").data(raw.as_str()),
        }
    }

    /// An `application/json` response with it (a raw answer's text is moved in, not copied).
    pub fn into_response(self, status: StatusCode) -> Response {
        match self {
            Body::Json(message) => json_response(status, &message),
            Body::Raw(raw) => (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                raw.into_string(),
            )
                .into_response(),
        }
    }

    /// Whether it is a success response (a raw one always is).
    pub fn is_success(&self) -> bool {
        match self {
            Body::Json(message) => message.get("result").is_some(),
            Body::Raw(_) => true,
        }
    }
}
