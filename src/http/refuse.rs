//! The one tower layer behind the edge checks that decide before a request goes on: a
//! [`Decide`] looks at the request and passes it on, refuses it in place, or — only where the
//! decision itself has to wait (Redis, OAuth introspection, reading a body) — hands back a
//! future that decides. [`RefuseLayer`] owns the tower boilerplate (`layer`, `poll_ready`,
//! the bounds) once; each check keeps only its decision. The response future is
//! [`LayerFuture`]: a refusal answered at once, the inner service's own future (no box, no
//! clone of the stack below), or the decider's boxed wait and then the inner service that was
//! polled ready (a clone takes its place for the next request) — the decider's box is the only
//! one.

use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use tower::{Layer, Service};

use super::layer_future::{LayerFuture, Pending, take_ready};

/// What a [`Decide`] made of a request.
pub enum Decision {
    /// Call the inner service with this request (the same one, maybe with an extension added).
    Pass(Request),
    /// Answer with this response; the inner service is not called.
    Refuse(Response),
    /// Decide later: `Ok(request)` goes on to the inner service, `Err(response)` is the answer.
    Wait(Pending),
}

/// One edge check. Implementors are cheap to clone (a number, an `Arc`): the layer clones its
/// decider into every service it builds, and axum clones the route's service per request.
pub trait Decide {
    /// Pass `request` on, refuse it, or wait to decide.
    fn decide(&self, request: Request) -> Decision;
}

/// Layer: runs the decider `D` in front of the inner service.
#[derive(Debug, Clone)]
pub struct RefuseLayer<D> {
    decider: D,
}

impl<D> RefuseLayer<D> {
    pub fn new(decider: D) -> Self {
        RefuseLayer { decider }
    }
}

impl<S, D: Clone> Layer<S> for RefuseLayer<D> {
    type Service = Refuse<S, D>;

    fn layer(&self, inner: S) -> Self::Service {
        Refuse {
            inner,
            decider: self.decider.clone(),
        }
    }
}

/// The service of [`RefuseLayer`].
#[derive(Debug, Clone)]
pub struct Refuse<S, D> {
    inner: S,
    decider: D,
}

impl<S, D> Service<Request> for Refuse<S, D>
where
    S: Service<Request, Response = Response> + Clone,
    D: Decide,
{
    type Response = Response;
    type Error = S::Error;
    type Future = LayerFuture<S::Future, S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.decider.decide(request) {
            Decision::Pass(request) => LayerFuture::inner(self.inner.call(request)),
            Decision::Refuse(response) => LayerFuture::answer(response),
            Decision::Wait(decision) => {
                LayerFuture::deciding(decision, take_ready(&mut self.inner))
            }
        }
    }
}

/// For the deciders' tests: what `decider`, in a [`RefuseLayer`] in front of `inner`, answers
/// to `request`: the status, the headers and the body as text.
#[cfg(test)]
pub(crate) async fn respond<D, S>(
    decider: D,
    inner: S,
    request: Request,
) -> (axum::http::StatusCode, axum::http::HeaderMap, String)
where
    D: Decide + Clone,
    S: Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    use tower::ServiceExt;
    let Ok(response) = RefuseLayer::new(decider)
        .layer(inner)
        .oneshot(request)
        .await;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|e| format!("<unreadable body: {e}>"));
    (parts.status, parts.headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Decides by the request's path: `/pass`, `/refuse`, `/wait-pass`, `/wait-refuse`; marks
    /// what it passes on with an extension the inner service echoes.
    #[derive(Clone)]
    struct ByPath;

    #[derive(Clone)]
    struct Mark(&'static str);

    fn status(code: StatusCode) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = code;
        response
    }

    impl Decide for ByPath {
        fn decide(&self, mut request: Request) -> Decision {
            match request.uri().path() {
                "/pass" => {
                    request.extensions_mut().insert(Mark("in place"));
                    Decision::Pass(request)
                }
                "/refuse" => Decision::Refuse(status(StatusCode::FORBIDDEN)),
                "/wait-pass" => Decision::Wait(Box::pin(async move {
                    tokio::task::yield_now().await;
                    request.extensions_mut().insert(Mark("after waiting"));
                    Ok(request)
                })),
                _ => Decision::Wait(Box::pin(async {
                    tokio::task::yield_now().await;
                    Err(status(StatusCode::TOO_MANY_REQUESTS))
                })),
            }
        }
    }

    /// The status and body for `path`, and how often the inner service was called.
    async fn through(path: &str) -> (StatusCode, String, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |request: Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            let mark = request.extensions().get::<Mark>().map_or("", |m| m.0);
            let response = Response::new(Body::from(mark));
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let (status, _, body) = respond(ByPath, inner, request).await;
        (status, body, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn each_decision_reaches_the_inner_service_or_answers_in_its_place() {
        for (path, status, body, inner_calls) in [
            ("/pass", StatusCode::OK, "in place", 1),
            ("/refuse", StatusCode::FORBIDDEN, "", 0),
            ("/wait-pass", StatusCode::OK, "after waiting", 1),
            ("/wait-refuse", StatusCode::TOO_MANY_REQUESTS, "", 0),
        ] {
            assert_eq!(
                through(path).await,
                (status, body.to_owned(), inner_calls),
                "{path}"
            );
        }
    }
}
