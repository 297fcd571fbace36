//! Running a task's call in the background: the tool runs detached from the request that
//! created it; the outcome goes into the store; a cancel request found in the store cancels
//! the call's token and gives the tool a grace period to stop what it started (the exec tool
//! kills its command), then drops it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::record::{Era, TaskId, TaskOutcome, TaskStatus};
use super::store::TaskStore;
use super::wire::{first_text, status_notification};
use crate::mcp::jsonrpc::code;
use crate::mcp::tool::{CallContext, Tool};

/// How often a running task re-reads its cancel flag when the store sends no change
/// notifications (the memory store wakes it at once).
const CANCEL_CHECK: Duration = Duration::from_millis(500);
/// How long a cancelled tool may take to stop what it started before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// How a task's call ended, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Ok,
    ToolError,
    Failed,
    Cancelled,
}

/// Everything a background call needs.
pub struct Launch {
    pub store: Arc<dyn TaskStore>,
    pub id: TaskId,
    pub era: Era,
    pub tool: Arc<dyn Tool>,
    pub ctx: CallContext,
    pub args: Map<String, Value>,
    /// Where `notifications/tasks/status` go when the task ends (the creating request's
    /// channel: a legacy SSE connection still listens; a finished POST does not).
    pub status_sink: Option<mpsc::UnboundedSender<Value>>,
    /// Called once with how the call ended (writes the audit event).
    pub on_end: Box<dyn FnOnce(Ended) + Send>,
}

/// Start the call; returns at once.
pub fn spawn(launch: Launch) {
    tokio::spawn(run(launch));
}

async fn run(launch: Launch) {
    let Launch {
        store,
        id,
        era,
        tool,
        ctx,
        args,
        status_sink,
        on_end,
    } = launch;
    let cancel = ctx.cancel.clone();
    let call = AssertUnwindSafe(tool.call(&ctx, args)).catch_unwind();
    tokio::pin!(call);
    let watch = watch_cancel(store.as_ref(), &id);
    let finished = tokio::select! {
        outcome = &mut call => Some(outcome),
        () = watch => None,
    };
    let Some(finished) = finished else {
        cancel.cancel();
        if tokio::time::timeout(CANCEL_GRACE, &mut call).await.is_err() {
            tracing::warn!(task = %id, "a cancelled task's tool did not stop within the grace period; dropped");
        }
        on_end(Ended::Cancelled);
        return;
    };
    let (status, outcome, message, ended) = match finished {
        Err(_panic) => {
            tracing::error!(task = %id, tool = %ctx_tool_name(tool.as_ref()), "tool panicked in a task");
            let message = format!(
                "tool {:?} failed unexpectedly; the server logged the details",
                tool.spec().name
            );
            (
                TaskStatus::Failed,
                TaskOutcome::Error {
                    code: code::INTERNAL_ERROR,
                    message: message.clone(),
                    data: None,
                },
                Some(message),
                Ended::Failed,
            )
        }
        Ok(output) => {
            let is_error = output.is_error;
            let result = output.into_json();
            let message = first_text(&result);
            // 2025-11-25: a tool result with isError fails the task; 2026-07-28: only a
            // JSON-RPC error does, the tool's own error is a completed result.
            let (status, ended) = match (is_error, era) {
                (false, _) => (TaskStatus::Completed, Ended::Ok),
                (true, Era::Legacy) => (TaskStatus::Failed, Ended::ToolError),
                (true, Era::Modern) => (TaskStatus::Completed, Ended::ToolError),
            };
            let message = match status {
                TaskStatus::Completed if !is_error => Some("The task completed.".to_string()),
                _ => message,
            };
            (status, TaskOutcome::Result { result }, message, ended)
        }
    };
    let updated = store.finish(&id, status, Some(outcome), message).await;
    if let (Some(record), Some(sink), Era::Legacy) = (&updated, &status_sink, era) {
        let _ = sink.send(status_notification(record));
    }
    // A task cancelled while its result was on the way stays cancelled.
    on_end(if updated.is_some() {
        ended
    } else {
        Ended::Cancelled
    });
}

fn ctx_tool_name(tool: &dyn Tool) -> String {
    tool.spec().name.clone()
}

/// Resolves once the store says the task was asked to cancel.
async fn watch_cancel(store: &dyn TaskStore, id: &TaskId) {
    loop {
        if store.cancel_requested(id).await {
            return;
        }
        let started = std::time::Instant::now();
        store.changed(id, CANCEL_CHECK).await;
        // A store that returns at once (the task is gone or finished) is not polled in a
        // tight loop.
        if started.elapsed() < Duration::from_millis(10) && !store.cancel_requested(id).await {
            tokio::time::sleep(CANCEL_CHECK).await;
        }
    }
}
