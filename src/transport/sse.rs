//! Server-Sent Events helpers shared by both transports: JSON-RPC messages as `message`
//! events, keep-alive comments, anti-buffering headers, and ending streams on shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, Stream, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A JSON-RPC message as an SSE `message` event.
pub fn message_event(message: &Value) -> Event {
    Event::default()
        .event("message")
        .data(super::rpc::json_text(message))
}

/// An SSE response: keep-alive comments every `keep_alive`, no proxy buffering, and the
/// stream ends cleanly when `end` is cancelled (so graceful shutdown is not held up), after
/// the events already queued have been sent.
pub fn sse_response<S>(stream: S, keep_alive: Duration, end: &CancellationToken) -> Response
where
    S: Stream<Item = Event> + Send + 'static,
{
    let open = crate::telemetry::OpenStream::open();
    let stream = end_when(stream, end.clone()).map(move |event| {
        let _counted_while_open = &open;
        Ok::<Event, Infallible>(event)
    });
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

/// `stream` until `end` is cancelled; then only the items that are ready at once (queued
/// messages, an answer already computed) and the end of the stream. Unlike `take_until`, a
/// message that was queued just before shutdown is not lost.
fn end_when<S>(stream: S, end: CancellationToken) -> impl Stream<Item = S::Item> + Send
where
    S: Stream + Send + 'static,
    S::Item: Send,
{
    let state = (Box::pin(stream), end, false);
    futures::stream::unfold(state, |(mut stream, end, ending)| async move {
        if !ending {
            tokio::select! {
                biased;
                item = stream.next() => return item.map(|item| (item, (stream, end, false))),
                _ = end.cancelled() => {}
            }
        }
        match stream.next().now_or_never() {
            Some(Some(item)) => Some((item, (stream, end, true))),
            _ => None,
        }
    })
}
