//! Keeping a keep-alive connection usable after an early answer. Layers that refuse a
//! request (401, 403, 404, 413, 429) answer before its body is read; if hyper then finds the
//! rest of the body still on its way, it closes the connection without saying so, and the
//! client's next request on it is lost. This layer reads and discards such a leftover body —
//! up to `server.max_body_bytes` and for at most `connections.refused_body_read_ms` — before
//! the answer goes out; when that is not possible it marks the answer `Connection: close`,
//! so the client knows to open a new connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// How much of a leftover body is read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct DrainLimits {
    pub max_bytes: usize,
    pub max_time: Duration,
}

/// Middleware: see the module documentation.
pub async fn drain_leftover_body(
    State(limits): State<DrainLimits>,
    request: Request,
    next: Next,
) -> Response {
    use http_body::Body as _;
    let http1 = request.version() <= Version::HTTP_11;
    if !http1 || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (parts, body) = request.into_parts();
    let slot = Arc::new(Mutex::new(Some(body)));
    let request = Request::from_parts(parts, Body::new(Shared(slot.clone())));
    let mut response = next.run(request).await;
    if Arc::strong_count(&slot) > 1 || says_close(&response) {
        // The handler still streams the body, or the answer already closes the connection.
        return response;
    }
    let leftover = slot.lock().ok().and_then(|mut s| s.take());
    let Some(leftover) = leftover else {
        return response;
    };
    if leftover.is_end_stream() {
        return response;
    }
    let fits = declared.is_none_or(|len| len <= limits.max_bytes as u64);
    let drained = fits
        && tokio::time::timeout(limits.max_time, discard(leftover, limits.max_bytes))
            .await
            .unwrap_or(false);
    if !drained {
        close_after(&mut response);
    }
    response
}

/// Whether `response` already says `Connection: close`.
fn says_close(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// Mark `response` as the last one on its connection.
pub fn close_after(response: &mut Response) {
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
