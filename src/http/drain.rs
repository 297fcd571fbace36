//! Keeping a keep-alive connection usable after an early answer. Layers that refuse a
//! request (401, 403, 404, 413, 429) answer before its body is read; if hyper then finds the
//! rest of the body still on its way, it closes the connection without saying so, and the
//! client's next request on it is lost. This layer reads and discards such a leftover body —
//! up to `server.max_body_bytes` and for at most `connections.refused_body_read_ms` — before
//! the answer goes out; when that is not possible it marks the answer `Connection: close`,
//! so the client knows to open a new connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::response::Response;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::body_limit::declared_length;

/// How much of a leftover body is read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct DrainLimits {
    pub max_bytes: usize,
    pub max_time: Duration,
}

/// Layer: see the module documentation. A request without a body (or over HTTP/2, where an
/// early answer does not cost the connection) passes through untouched.
#[derive(Debug, Clone, Copy)]
pub struct DrainLayer {
    limits: DrainLimits,
}

impl DrainLayer {
    pub fn new(limits: DrainLimits) -> Self {
        DrainLayer { limits }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = Drain<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Drain {
            inner,
            limits: self.limits,
        }
    }
}

/// The service of [`DrainLayer`].
#[derive(Debug, Clone)]
pub struct Drain<S> {
    inner: S,
    limits: DrainLimits,
}

impl<S, B> Service<Request> for Drain<S>
where
    S: Service<Request, Response = Response<B>>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Draining<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use http_body::Body as _;
        let http1 = request.version() <= Version::HTTP_11;
        if !http1 || request.body().is_end_stream() {
            return Draining {
                future: Some(self.inner.call(request)),
                watch: None,
                drain: None,
            };
        }
        let declared = declared_length(request.headers());
        let (parts, body) = request.into_parts();
        let slot = Arc::new(Mutex::new(Some(body)));
        let request = Request::from_parts(parts, Body::new(Shared(slot.clone())));
        Draining {
            future: Some(self.inner.call(request)),
            watch: Some(Leftover {
                slot,
                declared,
                limits: self.limits,
            }),
            drain: None,
        }
    }
}

/// What [`Draining`] needs to read a leftover body once the answer is ready.
struct Leftover {
    slot: Arc<Mutex<Option<Body>>>,
    declared: Option<u64>,
    limits: DrainLimits,
}

impl Leftover {
    /// The answer as it goes out at once, or the work of reading the leftover body first.
    fn settle<B: Send + 'static>(
        self,
        response: Response<B>,
    ) -> Result<Response<B>, BoxFuture<'static, Response<B>>> {
        use http_body::Body as _;
        if Arc::strong_count(&self.slot) > 1 || says_close(&response) {
            // The handler still streams the body, or the answer already closes the connection.
            return Ok(response);
        }
        let leftover = self.slot.lock().ok().and_then(|mut s| s.take());
        let Some(leftover) = leftover else {
            return Ok(response);
        };
        if leftover.is_end_stream() {
            return Ok(response);
        }
        let limits = self.limits;
        let fits = self
            .declared
            .is_none_or(|len| len <= limits.max_bytes as u64);
        let mut response = response;
        Err(Box::pin(async move {
            let drained = fits
                && tokio::time::timeout(limits.max_time, discard(leftover, limits.max_bytes))
                    .await
                    .unwrap_or(false);
            if !drained {
                close_after(&mut response);
            }
            response
        }))
    }
}

pin_project! {
    /// The response future of [`Drain`]: the inner service's answer, after reading what it
    /// left of the request body (in a boxed future, only when something is left). The inner
    /// future is dropped as soon as it has answered, so that whatever it held of the body is
    /// let go before the leftover is looked at.
    pub struct Draining<F, B> {
        #[pin]
        future: Option<F>,
        watch: Option<Leftover>,
        drain: Option<BoxFuture<'static, Response<B>>>,
    }
}

impl<F, B, E> Future for Draining<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(drain) = this.drain.as_mut() {
            return drain.as_mut().poll(cx).map(Ok);
        }
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            // Polled after it answered: nothing is left to give.
            return Poll::Pending;
        };
        let result = ready!(future.poll(cx));
        this.future.set(None);
        let response = result?;
        let Some(watch) = this.watch.take() else {
            return Poll::Ready(Ok(response));
        };
        match watch.settle(response) {
            Ok(response) => Poll::Ready(Ok(response)),
            Err(drain) => this.drain.insert(drain).as_mut().poll(cx).map(Ok),
        }
    }
}

/// Whether `response` already says `Connection: close`.
fn says_close<B>(response: &Response<B>) -> bool {
    response
        .headers()
        .get(header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// Mark `response` as the last one on its connection.
pub fn close_after<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// Read `body` to its end, keeping nothing; false when it is longer than `max_bytes` or broke.
async fn discard(mut body: Body, max_bytes: usize) -> bool {
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    seen = seen.saturating_add(data.len());
                    if seen > max_bytes {
                        return false;
                    }
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// The request body as the handlers see it; whatever they leave unread stays in the slot.
struct Shared(Arc<Mutex<Option<Body>>>);

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Ok(mut slot) = self.0.lock() else {
            return Poll::Ready(None);
        };
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .map(|slot| slot.as_ref().is_none_or(http_body::Body::is_end_stream))
            .unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().map(http_body::Body::size_hint))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    const LIMITS: DrainLimits = DrainLimits {
        max_bytes: 16,
        max_time: Duration::from_secs(5),
    };

    /// A request body that records whether it was read to its end.
    struct Watched {
        data: Option<Bytes>,
        read_to_end: Arc<std::sync::atomic::AtomicBool>,
    }

    impl http_body::Body for Watched {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.data.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => {
                    self.read_to_end
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    Poll::Ready(None)
                }
            }
        }
    }

    /// The answer of an early-refusing service (which reads none of the body) behind the
    /// layer, to a POST with `body`, declaring `declared` as its length; and whether the
    /// body was read to its end once the answer was there.
    async fn early_answer(body: &'static str, declared: usize) -> (Response, bool) {
        let refuse = tower::service_fn(|_: Request| async {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok::<_, std::convert::Infallible>(response)
        });
        let read_to_end = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut request = Request::new(Body::new(Watched {
            data: Some(Bytes::from_static(body.as_bytes())),
            read_to_end: Arc::clone(&read_to_end),
        }));
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
        let response = DrainLayer::new(LIMITS)
            .layer(refuse)
            .oneshot(request)
            .await
            .unwrap();
        (
            response,
            read_to_end.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    #[tokio::test]
    async fn a_small_leftover_is_read_and_the_connection_stays_open() {
        let (response, read_to_end) = early_answer("{\"small\":1}", 11).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(read_to_end, "the leftover body was not drained");
        assert!(!says_close(&response), "{:?}", response.headers());
    }

    #[tokio::test]
    async fn a_leftover_over_the_limit_closes_the_connection() {
        let (response, read_to_end) = early_answer("a body longer than sixteen bytes", 32).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(!read_to_end, "a leftover over the limit was read");
        assert!(says_close(&response));
    }

    #[tokio::test]
    async fn a_body_the_service_read_leaves_nothing_to_do() {
        let echo = tower::service_fn(|request: Request| async move {
            let bytes = axum::body::to_bytes(request.into_body(), 1024)
                .await
                .unwrap();
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(bytes)))
        });
        let response = DrainLayer::new(LIMITS)
            .layer(echo)
            .oneshot(Request::new(Body::from("a body longer than sixteen bytes")))
            .await
            .unwrap();
        assert!(!says_close(&response));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"a body longer than sixteen bytes");
    }
}
