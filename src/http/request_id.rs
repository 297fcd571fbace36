//! Request ids: every request gets an `x-request-id` (a UUID unless the client sent a sane
//! one: at most 64 characters of `[A-Za-z0-9._-]`) that is echoed on the response and
//! recorded in the request's tracing span. Fresh ids are random (version 4) UUIDs drawn from
//! the thread's CSPRNG (`rand::thread_rng`, reseeded from the OS) rather than one `getrandom`
//! system call per request, and formatted on the stack.

use std::task::{Context, Poll};

use axum::http::{HeaderName, HeaderValue, Request};
use tower::{Layer, Service};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

/// The request-id header.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Assigns an id to requests that lack one.
pub fn set_layer() -> SetRequestIdLayer<RandomUuid> {
    SetRequestIdLayer::new(REQUEST_ID_HEADER, RandomUuid)
}

/// Makes the fresh request ids: random UUIDs (version 4), lower-case and hyphenated.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomUuid;

impl RandomUuid {
    /// One fresh id.
    pub fn fresh() -> HeaderValue {
        let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut buffer = uuid::Uuid::encode_buffer();
        let text = uuid.hyphenated().encode_lower(&mut buffer);
        // 36 characters of `[0-9a-f-]`: always a valid header value.
        HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

impl MakeRequestId for RandomUuid {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(RandomUuid::fresh()))
    }
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

/// Layer: drop a client-supplied request id that is not [`is_acceptable`], so that
/// [`set_layer`] (below it) generates a fresh one instead. Answers nothing itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct DropUnacceptableLayer;

impl<S> Layer<S> for DropUnacceptableLayer {
    type Service = DropUnacceptable<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DropUnacceptable { inner }
    }
}

/// The service of [`DropUnacceptableLayer`].
#[derive(Debug, Clone)]
pub struct DropUnacceptable<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for DropUnacceptable<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let acceptable = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .map(|v| v.to_str().is_ok_and(is_acceptable));
        if acceptable == Some(false) {
            request.headers_mut().remove(REQUEST_ID_HEADER);
        }
        self.inner.call(request)
    }
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

    #[test]
    fn fresh_ids_are_distinct_version_4_uuids() {
        let a = RandomUuid::fresh();
        let b = RandomUuid::fresh();
        assert_ne!(a, b);
        for id in [a, b] {
            let text = id.to_str().unwrap();
            let uuid = uuid::Uuid::parse_str(text).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{text}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{text}");
            assert_eq!(
                text,
                uuid.hyphenated().to_string(),
                "lower-case, hyphenated"
            );
            assert!(is_acceptable(text));
        }
    }

    /// The id the service below the layer sees, for a request carrying `sent`.
    async fn id_passed_on(sent: Option<&str>) -> Option<String> {
        use tower::ServiceExt;
        let inner = tower::service_fn(|request: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(
                request
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        });
        let mut request = Request::new(());
        if let Some(sent) = sent {
            request
                .headers_mut()
                .insert(REQUEST_ID_HEADER, sent.parse().unwrap());
        }
        DropUnacceptableLayer
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_layer_drops_only_unacceptable_ids() {
        assert_eq!(
            id_passed_on(Some("req_1.2")).await.as_deref(),
            Some("req_1.2")
        );
        assert_eq!(id_passed_on(Some("with space")).await, None);
        assert_eq!(id_passed_on(Some(&"x".repeat(65))).await, None);
        assert_eq!(id_passed_on(None).await, None);
    }
}
