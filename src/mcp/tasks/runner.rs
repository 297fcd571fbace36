//! Running a task's call in the background: the tool runs detached from the request that
//! created it; the outcome goes into the store; a cancel request found in the store cancels
//! the call's token and gives the tool a grace period to stop what it started (the exec tool
//! kills its command), then drops it.
//!
//! Under a server's [`Shutdown`] the call is background work
//! ([`Shutdown::spawn_background`]): a graceful shutdown waits for it within its grace
//! period; a call still running when that is over is stopped the same way (its token
//! cancelled, [`SHUTDOWN_STOP`] to stop) and recorded — `failed` with a JSON-RPC error that
//! says the server shut down, in the store (which another replica may serve) and as a
//! `cancelled` audit event with that reason — instead of vanishing with the process.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::record::{Era, TaskId, TaskOutcome, TaskStatus};
use super::store::TaskStore;
use super::wire::{first_text, status_notification};
use crate::mcp::jsonrpc::code;
use crate::mcp::tool::{CallContext, Tool};
use crate::shutdown::Shutdown;

/// How often a running task re-reads its cancel flag when the store sends no change
/// notifications (the memory store wakes it at once).
const CANCEL_CHECK: Duration = Duration::from_millis(500);
/// How long a cancelled tool may take to stop what it started before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);
/// How long a call stopped by the server's shutdown may take to stop what it started; with
/// the store write after it, inside [`crate::shutdown::RECORD_AFTER_FORCE`] when the store
/// answers promptly (a Redis store that retries a slow write can outlast it: the record then
/// stays `working` until its ttl). Best effort for what the tool started: an exec's kill
/// request may still be on its way when the process exits.
const SHUTDOWN_STOP: Duration = Duration::from_secs(1);

/// What a task stopped by the server's shutdown records (status message, error, audit
/// reason).
pub const SHUTDOWN_MESSAGE: &str = "the server shut down before the task finished (its lifecycle.shutdown_grace_s ran out), so the call was stopped; run it again";

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

/// Start the call; returns at once. Under `shutdown` (the server's), the call is background
/// work the drain waits for and stops at its deadline; without one it runs untracked.
pub fn spawn(launch: Launch, shutdown: Option<&Shutdown>) {
    match shutdown {
        Some(shutdown) => {
            let forced = shutdown.forced().clone();
            drop(shutdown.spawn_background(run(launch, Some(forced))));
        }
        None => drop(tokio::spawn(run(launch, None))),
    }
}

/// Resolves when `forced` is cancelled; never without one.
async fn forced_stop(forced: Option<&CancellationToken>) {
    match forced {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Why the call stopped before its end.
enum Stopped {
    /// Its task was cancelled (`tasks/cancel`, on any replica).
    Cancelled,
    /// The server's shutdown grace period ran out.
    Shutdown,
}

async fn run(launch: Launch, forced: Option<CancellationToken>) {
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
        // The call first: a call that ended is recorded as it ended, even when a cancel or the
        // deadline became ready in the same poll.
        biased;
        outcome = &mut call => Ok(outcome),
        () = watch => Err(Stopped::Cancelled),
        () = forced_stop(forced.as_ref()) => Err(Stopped::Shutdown),
    };
    // Some(the call's end), or None: the shutdown stopped it.
    let finished = match finished {
        Ok(finished) => Some(finished),
        Err(Stopped::Cancelled) => {
            cancel.cancel();
            tokio::select! {
                stopped = tokio::time::timeout(CANCEL_GRACE, &mut call) => {
                    if stopped.is_err() {
                        tracing::warn!(task = %id, "a cancelled task's tool did not stop within the grace period; dropped");
                    }
                }
                // The task is already recorded as cancelled: no longer wait for the tool.
                () = forced_stop(forced.as_ref()) => {}
            }
            on_end(Ended::Cancelled);
            return;
        }
        Err(Stopped::Shutdown) => {
            cancel.cancel();
            match tokio::time::timeout(SHUTDOWN_STOP, &mut call).await {
                // It completed its work within the stop window: recorded as it ended (a call
                // that did what it was asked must not be reported as "run it again"). An
                // error or a panic then is most likely its answer to being stopped: the
                // shutdown is what the record says.
                Ok(Ok(output)) if !output.is_error => Some(Ok(output)),
                stopped => {
                    if stopped.is_err() {
                        tracing::warn!(task = %id, "a task's tool did not stop within {SHUTDOWN_STOP:?} of the shutdown deadline; dropped");
                    }
                    tracing::warn!(task = %id, "a task was still running at the end of the shutdown grace period; stopped and recorded as failed");
                    None
                }
            }
        }
    };
    let finished_by_shutdown = finished.is_none();
    let (status, outcome, message, ended) = match finished {
        None => (
            TaskStatus::Failed,
            TaskOutcome::Error {
                code: code::INTERNAL_ERROR,
                message: SHUTDOWN_MESSAGE.to_owned(),
                data: None,
            },
            Some(SHUTDOWN_MESSAGE.to_owned()),
            Ended::Cancelled,
        ),
        Some(Err(_panic)) => {
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
        Some(Ok(output)) => {
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
    // The shutdown's reason goes into the audit only with its record (a `tasks/cancel` that
    // came first keeps its own).
    if finished_by_shutdown && updated.is_some() {
        ctx.audit
            .update(|details| details.reason = Some(SHUTDOWN_MESSAGE.to_owned()));
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::mcp::registry::tests::spec;
    use crate::mcp::tasks::{MemoryTaskStore, TaskRecord};
    use crate::mcp::tool::{Notifier, ToolOutput, ToolSpec};
    use crate::policy::{Principal, Role};

    /// Answers after `takes`, or stops (noting it) when its call is cancelled.
    struct Sleeper {
        spec: ToolSpec,
        takes: Duration,
        saw_cancel: Arc<AtomicBool>,
        /// Goes on to the end of `takes` when cancelled (noting it).
        ignores_cancel: bool,
    }

    #[async_trait]
    impl Tool for Sleeper {
        fn spec(&self) -> &ToolSpec {
            &self.spec
        }
        async fn call(&self, ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
            tokio::select! {
                () = tokio::time::sleep(self.takes) => ToolOutput::text("slept"),
                () = ctx.cancel.cancelled() => {
                    self.saw_cancel.store(true, Ordering::SeqCst);
                    if self.ignores_cancel {
                        tokio::time::sleep(self.takes).await;
                        return ToolOutput::text("slept");
                    }
                    ToolOutput::error("stopped")
                }
            }
        }
    }

    /// A task of a tool that takes `takes`, started under a shutdown with `grace`; the shutdown
    /// begun and drained. What the drain returned, the task's record, how the call ended (as
    /// `on_end` was told), whether the tool saw its cancellation, and the audit reason.
    async fn task_through_shutdown(
        takes: Duration,
        grace: Duration,
        ignores_cancel: bool,
    ) -> (bool, TaskRecord, Option<Ended>, bool, Option<String>) {
        let store: Arc<dyn TaskStore> = Arc::new(MemoryTaskStore::default());
        let record = TaskRecord::new("tester", "sleeper", Era::Modern, 60_000, 500);
        store.create(record.clone()).await.unwrap();
        let saw_cancel = Arc::new(AtomicBool::new(false));
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel();
        let ctx = CallContext {
            principal: Principal {
                name: "tester".into(),
                role: Role::Admin,
                kasm_user_id: None,
                oauth: None,
            },
            notifier: Notifier::disconnected(),
            cancel: CancellationToken::new(),
            audit: crate::audit::Notes::default(),
        };
        let notes = ctx.audit.clone();
        let shutdown = Shutdown::new(grace);
        spawn(
            Launch {
                store: store.clone(),
                id: record.id.clone(),
                era: Era::Modern,
                tool: Arc::new(Sleeper {
                    spec: spec("sleeper", Role::Viewer),
                    takes,
                    saw_cancel: saw_cancel.clone(),
                    ignores_cancel,
                }),
                ctx,
                args: Map::new(),
                status_sink: None,
                on_end: Box::new(move |ended| {
                    let _ = ended_tx.send(ended);
                }),
            },
            Some(&shutdown),
        );
        shutdown.begin();
        let drained = shutdown.drain().await;
        let stored = store.get(&record.id, "tester").await.unwrap().unwrap();
        (
            drained,
            stored,
            ended_rx.try_recv().ok(),
            saw_cancel.load(Ordering::SeqCst),
            notes.snapshot().reason,
        )
    }

    /// A task that finishes within the grace period is waited for: its result is in the store
    /// before the drain returns.
    #[tokio::test]
    async fn the_drain_waits_for_a_running_task() {
        let (drained, record, ended, saw_cancel, reason) =
            task_through_shutdown(Duration::from_millis(200), Duration::from_secs(10), false).await;
        assert!(drained, "the task finished within the grace period");
        assert_eq!(record.status, TaskStatus::Completed, "{record:?}");
        assert_eq!(ended, Some(Ended::Ok));
        assert!(!saw_cancel);
        assert_eq!(reason, None);
    }

    /// A task still running when the grace period is over is stopped (its call cancelled) and
    /// recorded as failed with a message that says why — in the store and the audit notes —
    /// before the drain returns.
    #[tokio::test]
    async fn a_task_still_running_at_the_deadline_is_stopped_and_recorded() {
        let (drained, record, ended, saw_cancel, reason) =
            task_through_shutdown(Duration::from_secs(3600), Duration::from_millis(200), false)
                .await;
        assert!(!drained, "the task ran past the grace period");
        assert_eq!(record.status, TaskStatus::Failed, "{record:?}");
        assert_eq!(record.status_message.as_deref(), Some(SHUTDOWN_MESSAGE));
        assert_eq!(
            record.outcome,
            Some(TaskOutcome::Error {
                code: code::INTERNAL_ERROR,
                message: SHUTDOWN_MESSAGE.to_owned(),
                data: None,
            })
        );
        assert_eq!(ended, Some(Ended::Cancelled));
        assert!(saw_cancel, "the tool was told to stop what it started");
        assert_eq!(reason.as_deref(), Some(SHUTDOWN_MESSAGE));
    }

    /// A call that completes its work within the stop window after the deadline is recorded
    /// as completed, not as "run it again" (a tool such as `create_kasm_session` must not be
    /// repeated after it succeeded).
    #[tokio::test]
    async fn a_task_that_completes_while_being_stopped_is_recorded_completed() {
        let (drained, record, ended, saw_cancel, reason) =
            task_through_shutdown(Duration::from_millis(300), Duration::from_millis(200), true)
                .await;
        assert!(!drained, "the task ran past the grace period");
        assert!(saw_cancel, "the tool was told to stop");
        assert_eq!(record.status, TaskStatus::Completed, "{record:?}");
        assert_eq!(ended, Some(Ended::Ok));
        assert_eq!(reason, None);
    }
}
