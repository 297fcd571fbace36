//! Server-Sent Events helpers shared by both transports: JSON-RPC messages as `message`
//! events, keep-alive comments, anti-buffering headers, and ending streams on shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A JSON-RPC message as an SSE `message` event.
pub fn message_event(message: &Value) -> Event {
    Event::default().event("message").data(message.to_string())
}

/// An SSE response: keep-alive comments every `keep_alive`, no proxy buffering, and the
/// stream ends when `shutdown` is cancelled (so graceful shutdown is not held up).
pub fn sse_response<S>(stream: S, keep_alive: Duration, shutdown: &CancellationToken) -> Response
where
    S: Stream<Item = Event> + Send + 'static,
{
    let stream = stream
        .map(Ok::<Event, Infallible>)
        .take_until(shutdown.clone().cancelled_owned());
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
