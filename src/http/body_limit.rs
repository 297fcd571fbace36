//! Request body limit, enforced before any parsing: a declared `Content-Length` above the limit
//! is refused at once with 413; bodies without a length are capped by axum's `DefaultBodyLimit`
//! while they are read (the extractors then fail with 413, see [`rejection_response`]).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::json_error;

/// Middleware: 413 JSON when `Content-Length` exceeds `limit`.
pub async fn reject_oversized(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        return too_large(limit);
    }
    next.run(request).await
}

/// The 413 response.
pub fn too_large(limit: usize) -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than the {limit}-byte limit"),
    )
}

/// A JSON response for a body that could not be read (413 when it was too large).
pub fn rejection_response(rejection: BytesRejection, limit: usize) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(limit);
    }
    json_error(rejection.status(), rejection.body_text())
}
