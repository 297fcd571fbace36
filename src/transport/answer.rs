//! Running one POSTed message through the router and turning its outcome into the HTTP
//! answer: the [`Work`] task (aborted on drop for 2026-07-28 requests, whose closed stream
//! means cancellation), the final JSON-RPC message and status, and the [`Streaming`] state of an
//! SSE answer (queued notifications first, then the response; metrics settled once).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use futures::Stream;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use super::accounting::{self, PendingCalls};
use super::body::Body;
use super::rpc;
use super::sse::message_event;
use super::state::TransportState;
use crate::mcp::{Handled, McpServer, RequestMeta};
use crate::shutdown::Shutdown;

/// The router's work for one POST, as a task. Aborted on drop when `abort_on_drop`.
pub struct Work {
    handle: JoinHandle<Handled>,
    abort_on_drop: bool,
}

impl Work {
    /// Run the router on `message` as a task; `param_headers` are the request's
    /// `Mcp-Param-<Name>` headers as (`<Name>`, value) pairs.
    pub fn spawn(
        shutdown: &Shutdown,
        server: Arc<McpServer>,
        message: Value,
        meta: RequestMeta,
        param_headers: Vec<(String, String)>,
        abort_on_drop: bool,
    ) -> Self {
        let handle = shutdown.spawn(async move {
            server
                .handle_with_param_headers(message, meta, param_headers)
                .await
        });
        Work {
            handle,
            abort_on_drop,
        }
    }
}

impl Future for Work {
    type Output = Result<Handled, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.handle).poll(cx)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if self.abort_on_drop {
            self.handle.abort();
        }
    }
}

/// The final message and HTTP status for a finished piece of work (settle the accounting
/// first: the answer is moved out, not copied — a `tools/list` answer is ~33 KB of JSON).
pub fn final_answer(outcome: Result<Handled, JoinError>, id: &Value) -> (StatusCode, Option<Body>) {
    match outcome {
        Ok(Handled::Response(body)) => (StatusCode::OK, Some(Body::Json(body))),
        Ok(Handled::RawResponse(raw)) => (StatusCode::OK, Some(Body::Raw(raw))),
        Ok(Handled::Accepted) => (StatusCode::ACCEPTED, None),
        Ok(Handled::HttpError { status, body }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Some(Body::Json(body)),
        ),
        Err(error) => {
            tracing::error!(%error, "MCP handler task failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(Body::Json(rpc::error_body(
                    id.clone(),
                    -32603,
                    "internal error while handling the request",
                    None,
                ))),
            )
        }
    }
}

/// The state of an SSE response: notifications first, then the final response.
pub struct Streaming {
    pub state: Arc<TransportState>,
    pub rx: mpsc::UnboundedReceiver<Value>,
    /// The running work; None once it finished.
    pub work: Option<Work>,
    /// Messages to send before waiting again.
    pub queue: VecDeque<Body>,
    /// Tool calls to settle when the work finishes (or the stream is dropped).
    pub pending: Option<PendingCalls>,
    /// The request id, for an internal-error answer.
    pub id: Value,
}

enum Step {
    Note(Value),
    Done(Result<Handled, JoinError>),
}

impl Streaming {
    pub fn into_stream(self) -> impl Stream<Item = axum::response::sse::Event> + Send + 'static {
        futures::stream::unfold(self, |mut s| async move {
            loop {
                if let Some(message) = s.queue.pop_front() {
                    return Some((message.event(), s));
                }
                let step = {
                    let work = s.work.as_mut()?;
                    tokio::select! {
                        biased;
                        Some(note) = s.rx.recv() => Step::Note(note),
                        outcome = work => Step::Done(outcome),
                    }
                };
                match step {
                    Step::Note(note) => return Some((message_event(&note), s)),
                    Step::Done(outcome) => {
                        s.work = None;
                        while let Ok(note) = s.rx.try_recv() {
                            s.queue.push_back(Body::Json(note));
                        }
                        if let Some(pending) = s.pending.take() {
                            accounting::settle(&s.state, pending, outcome.as_ref().ok());
                        }
                        let (_, answer) = final_answer(outcome, &s.id);
                        s.queue.extend(answer);
                    }
                }
            }
        })
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            accounting::settle(&self.state, pending, None);
        }
    }
}
