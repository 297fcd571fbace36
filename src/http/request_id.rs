//! Request ids: every request gets an `x-request-id` (a UUID unless the client sent a sane
//! one: at most 64 characters of `[A-Za-z0-9._-]`) that is echoed on the response and
//! recorded in the request's tracing span.

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// The request-id header.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Assigns an id to requests that lack one.
pub fn set_layer() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid)
}

/// Copies the request's id onto its response.
pub fn propagate_layer() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(REQUEST_ID_HEADER)
}

/// Whether a client-supplied request id may be kept (it ends up in log lines).
pub fn is_acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Middleware: drop a client-supplied request id that is not [`is_acceptable`], so a fresh
/// one is generated instead.
pub async fn drop_unacceptable(mut request: Request, next: Next) -> Response {
    let acceptable = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .map(|v| v.to_str().is_ok_and(is_acceptable));
    if acceptable == Some(false) {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(is_acceptable("7fdb86e9-92dd-4e06-969a-96d57ef461c0"));
        assert!(is_acceptable("req_1.2"));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable("a\nb"));
        assert!(!is_acceptable("with space"));
        assert!(!is_acceptable(&"x".repeat(65)));
    }
}
