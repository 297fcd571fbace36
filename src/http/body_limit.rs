//! Request body limit, enforced before any parsing: a declared `Content-Length` above the limit
//! is refused at once with 413; bodies without a length are capped by axum's `DefaultBodyLimit`
//! while they are read (the extractors then fail with 413, see [`rejection_response`]).

use std::task::{Context, Poll};

use axum::extract::Request;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tower::{Layer, Service};

use super::error::json_error;
use super::layer_future::LayerFuture;

/// The `Content-Length` a request declares, when it is a number.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Layer: 413 JSON when `Content-Length` exceeds `limit` bytes.
#[derive(Debug, Clone, Copy)]
pub struct RejectOversizedLayer {
    limit: usize,
}

impl RejectOversizedLayer {
    pub fn new(limit: usize) -> Self {
        RejectOversizedLayer { limit }
    }
}

impl<S> Layer<S> for RejectOversizedLayer {
    type Service = RejectOversized<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RejectOversized {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`RejectOversizedLayer`].
#[derive(Debug, Clone)]
pub struct RejectOversized<S> {
    inner: S,
    limit: usize,
}

impl<S> Service<Request> for RejectOversized<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = LayerFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(length) = declared_length(request.headers())
            && length > self.limit as u64
        {
            return LayerFuture::answer(too_large(self.limit));
        }
        LayerFuture::inner(self.inner.call(request))
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
    use axum::body::Body;
    use tower::ServiceExt;

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
        RejectOversizedLayer::new(100)
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_the_service() {
        assert_eq!(status_for(Some("101")).await, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_for(Some(" 100 ")).await, StatusCode::OK);
        assert_eq!(status_for(Some("not a number")).await, StatusCode::OK);
        assert_eq!(status_for(None).await, StatusCode::OK);
    }
}
