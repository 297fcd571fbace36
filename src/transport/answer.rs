//! Running one POSTed message through the router and turning its outcome into the HTTP
//! answer: the [`Work`] (run where the answer is awaited, a task of its own once the answer
//! streams or the request is dropped; dropped, i.e. cancelled, instead for 2026-07-28
//! requests, whose closed stream means cancellation), the final JSON-RPC message and status,
//! and the [`Streaming`] state of an SSE answer (queued notifications first, then the
//! response). The work settles its calls' metrics itself, once, wherever it ends (see
//! [`super::accounting`]): the JSON and the SSE answers count alike, also when the client
//! goes away.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use futures::Stream;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::Instrument;

use super::accounting::PendingCalls;
use super::body::Body;
use super::rpc;
use super::sse::message_event;
use crate::mcp::{Handled, McpServer, RequestMeta};
use crate::shutdown::Shutdown;

/// The router's future for one POST.
type Router = Pin<Box<dyn Future<Output = Handled> + Send>>;

/// Why a piece of work has no answer: the router panicked (or its task failed).
#[derive(Debug)]
pub struct WorkFailed(String);

impl std::fmt::Display for WorkFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a piece of work runs.
enum Running {
    /// Polled by the task that answers the request (no task of its own, no hop between
    /// threads); counted as in flight for graceful shutdown by the token.
    Here {
        router: Router,
        _in_flight: TaskTrackerToken,
    },
    /// A task of its own (once the answer streams, or after the request was dropped).
    Task(JoinHandle<Handled>),
    /// Finished (its outcome was returned).
    Done,
}

/// The router's work for one POST. It runs where the answer is awaited until the answer
/// switches to a stream ([`Work::into_task`]) or the request is dropped: then a call that a
/// closed connection must not cancel (every era before 2026-07-28) goes on as a tracked task,
/// so a dropped connection never stops a tool call halfway; with `abort_on_drop` (2026-07-28,
/// whose closed stream means cancellation) it is dropped, i.e. cancelled.
pub struct Work {
    running: Running,
    shutdown: Shutdown,
    abort_on_drop: bool,
}

impl Work {
    /// The router's work on `message`; `param_headers` are the request's `Mcp-Param-<Name>`
    /// headers as (`<Name>`, value) pairs. It starts when first polled, and runs in the
    /// request's tracing span wherever it runs (here, or as a task of its own later), so its
    /// log lines have one shape. It settles the `pending` calls' metrics when it ends, or as
    /// `dropped` when it is dropped unfinished.
    pub fn start(
        shutdown: &Shutdown,
        server: Arc<McpServer>,
        message: Value,
        meta: RequestMeta,
        param_headers: Vec<(String, String)>,
        pending: PendingCalls,
        abort_on_drop: bool,
    ) -> Self {
        let router: Router = Box::pin(
            async move {
                let handled = server
                    .handle_with_param_headers(message, meta, param_headers)
                    .await;
                pending.settle(Some(&handled));
                handled
            }
            .instrument(tracing::Span::current()),
        );
        Work {
            running: Running::Here {
                router,
                _in_flight: shutdown.track(),
            },
            shutdown: shutdown.clone(),
            abort_on_drop,
        }
    }

    /// The same work, going on as a task of its own: for an answer that streams, whose
    /// body the client may read slowly (a call must not wait for its reader).
    pub fn into_task(mut self) -> Self {
        self.running = match std::mem::replace(&mut self.running, Running::Done) {
            // Spawned before the token is let go, so the work is never uncounted.
            Running::Here { router, .. } => Running::Task(self.shutdown.spawn(router)),
            other => other,
        };
        self
    }
}

impl Future for Work {
    type Output = Result<Handled, WorkFailed>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = match &mut self.running {
            Running::Here { router, .. } => {
                // A panicking router answers 500, as a panicking task did.
                match std::panic::catch_unwind(AssertUnwindSafe(|| router.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(handled)) => Ok(handled),
                    Err(panic) => Err(WorkFailed(panicked(panic.as_ref()))),
                }
            }
            Running::Task(handle) => match ready!(Pin::new(handle).poll(cx)) {
                Ok(handled) => Ok(handled),
                Err(error) => Err(WorkFailed(error.to_string())),
            },
            // Polled after it finished: no caller does (each awaits it once or drops it
            // after its outcome); a hang here would hide such a bug in tests.
            Running::Done => {
                debug_assert!(false, "a Work was polled after it finished");
                return Poll::Pending;
            }
        };
        self.running = Running::Done;
        Poll::Ready(outcome)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.running, Running::Done) {
            // Spawned before the token is let go, so the work is never uncounted. (Outside a
            // runtime, where spawning would panic inside a drop, there is nothing to run it on.)
            Running::Here { router, .. }
                if !self.abort_on_drop && tokio::runtime::Handle::try_current().is_ok() =>
            {
                drop(self.shutdown.spawn(router));
            }
            Running::Task(handle) if self.abort_on_drop => handle.abort(),
            // Dropped here: cancelled (abort_on_drop), or nothing left to run.
            _ => {}
        }
    }
}

/// What a panic in the router said, for the error line (as a failed task's error did).
fn panicked(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("the MCP handler panicked: {message}")
}

/// The final message and HTTP status for a finished piece of work (the answer is moved out,
/// not copied — a `tools/list` answer is ~33 KB of JSON).
pub fn final_answer(
    outcome: Result<Handled, WorkFailed>,
    id: &Value,
) -> (StatusCode, Option<Body>) {
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
    pub rx: mpsc::UnboundedReceiver<Value>,
    /// The running work; None once it finished.
    pub work: Option<Work>,
    /// Messages to send before waiting again.
    pub queue: VecDeque<Body>,
    /// The request id, for an internal-error answer.
    pub id: Value,
}

enum Step {
    Note(Value),
    Done(Result<Handled, WorkFailed>),
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
                        let (_, answer) = final_answer(outcome, &s.id);
                        s.queue.extend(answer);
                    }
                }
            }
        })
    }
}
