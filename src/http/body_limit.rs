//! Request body limit, enforced before any parsing: a declared `Content-Length` above the limit
//! is refused at once with 413; bodies without a length are capped by axum's `DefaultBodyLimit`
//! while they are read (the extractors then fail with 413, see [`rejection_response`]).

use axum::extract::Request;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::error::json_error;
use super::refuse::{Decide, Decision};

/// The `Content-Length` a request declares, when it is a number.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The check: 413 JSON when `Content-Length` exceeds `limit` bytes (a [`RefuseLayer`](super::refuse::RefuseLayer)
/// runs it).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    limit: usize,
}

impl BodyLimit {
    pub fn new(limit: usize) -> Self {
        BodyLimit { limit }
    }
}

impl Decide for BodyLimit {
    fn decide(&self, request: Request) -> Decision {
        match declared_length(request.headers()) {
            Some(length) if length > self.limit as u64 => Decision::Refuse(too_large(self.limit)),
            _ => Decision::Pass(request),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::refuse::RefuseLayer;
    use axum::body::Body;
    use tower::{Layer, ServiceExt};

    async fn status_for(content_length: Option<&str>) -> StatusCode {
        let inner = tower::service_fn(|_: Request| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::from("passed")))
        });
        let mut request = Request::new(Body::empty());
        if let Some(length) = content_length {
            request
                .headers_mut()
                .insert(header::CONTENT_LENGTH, length.parse().unwrap());
        }
        RefuseLayer::new(BodyLimit::new(100))
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn the_refusal_is_a_json_413_naming_the_limit() {
        let inner = tower::service_fn(|_: Request| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::from("passed")))
        });
        let mut request = Request::new(Body::empty());
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, "4097".parse().unwrap());
        let (status, headers, body) =
            crate::http::refuse::respond(BodyLimit::new(4096), inner, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body,
            r#"{"error":"request body is larger than the 4096-byte limit"}"#
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_the_service() {
        assert_eq!(status_for(Some("101")).await, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_for(Some(" 100 ")).await, StatusCode::OK);
        assert_eq!(status_for(Some("not a number")).await, StatusCode::OK);
        assert_eq!(status_for(None).await, StatusCode::OK);
    }
}
