//! Graceful shutdown in phases, independent of how connections are accepted:
//!
//! 1. **stopping** ([`Shutdown::begin`], on SIGTERM/SIGINT or an explicit stop): readiness
//!    turns 503 and the transports refuse new work with 503 (see
//!    `transport::draining`); the listener stays open for the relay's output uploads.
//! 2. **draining** ([`Shutdown::drain`]): tool calls already running (every piece of MCP work
//!    is spawned through [`Shutdown::spawn`] or, while it runs in the task answering its
//!    request, counted by [`Shutdown::track`]; a task's call, which outlives its request,
//!    through [`Shutdown::spawn_background`]) get up to the grace period to finish; their
//!    answers still flow on the streams that carry them.
//! 3. **idle streams end** ([`Shutdown::idle_streams_end`]) once no work is in flight: the
//!    accept loop stops taking connections, and the legacy `/sse` streams (and any stream
//!    that only waits for future messages) flush what is queued and end with a clean chunked
//!    terminator, so the connections close.
//! 4. **forced** ([`Shutdown::forced`]) when the grace period runs out: every stream ends,
//!    unanswered calls are dropped; background work (task calls) gets [`RECORD_AFTER_FORCE`]
//!    more to stop what it started and record how it ended (a task: `failed`, "the server shut
//!    down", in its store and the audit trail) before the drain returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};

/// The shared shutdown state (cheap to clone).
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stopping: CancellationToken,
    idle_end: CancellationToken,
    forced: CancellationToken,
    work: TaskTracker,
    /// The part of `work` that outlives its request and records its own end when forced.
    background: TaskTracker,
    grace: Duration,
}

/// How long background work ([`Shutdown::spawn_background`]) gets, once the grace period is
/// over, to stop what it started and record how it ended.
pub const RECORD_AFTER_FORCE: Duration = Duration::from_secs(3);

impl Shutdown {
    /// A server that, once stopping, gives in-flight work `grace` to finish.
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            inner: Arc::new(Inner {
                stopping: CancellationToken::new(),
                idle_end: CancellationToken::new(),
                forced: CancellationToken::new(),
                work: TaskTracker::new(),
                background: TaskTracker::new(),
                grace,
            }),
        }
    }

    /// The configured grace period.
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// Enter phase 1 (idempotent).
    pub fn begin(&self) {
        self.inner.stopping.cancel();
    }

    /// Cancelled once shutdown has begun: stop accepting connections.
    pub fn stopping(&self) -> &CancellationToken {
        &self.inner.stopping
    }

    /// Cancelled when no work is in flight any more (or the grace period is over): streams
    /// that only wait for future messages end.
    pub fn idle_streams_end(&self) -> &CancellationToken {
        &self.inner.idle_end
    }

    /// Cancelled when the grace period is over: every stream ends.
    pub fn forced(&self) -> &CancellationToken {
        &self.inner.forced
    }

    /// Run a piece of MCP work (a request being answered) as a tracked task.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.work.spawn(work)
    }

    /// Run MCP work that outlives the request that started it (a task's call): in flight while
    /// it runs, like [`Shutdown::spawn`]ed work — the drain waits for it within the grace
    /// period — and, once [`Shutdown::forced`] (which it watches itself), given
    /// [`RECORD_AFTER_FORCE`] to stop and record how it ended before the drain returns.
    pub fn spawn_background<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let in_flight = self.inner.work.token();
        self.inner.background.spawn(async move {
            let _in_flight = in_flight;
            work.await
        })
    }

    /// Count a piece of MCP work that runs in the task answering its request (not spawned) as
    /// in flight, while the returned token lives: graceful shutdown waits for it as for
    /// spawned work.
    pub fn track(&self) -> TaskTrackerToken {
        self.inner.work.token()
    }

    /// Work spawned through [`Shutdown::spawn`] (or counted by [`Shutdown::track`]) and not
    /// finished yet.
    pub fn in_flight(&self) -> usize {
        self.inner.work.len()
    }

    /// Phases 2–4: wait (after [`Shutdown::begin`]) for the in-flight work, at most the grace
    /// period; then end idle streams, and force the rest if the grace period ran out (then
    /// wait, at most [`RECORD_AFTER_FORCE`], for background work to record its end). Returns
    /// whether every piece of work finished in time.
    pub async fn drain(&self) -> bool {
        self.inner.stopping.cancelled().await;
        self.inner.work.close();
        let finished = tokio::time::timeout(self.inner.grace, self.inner.work.wait())
            .await
            .is_ok();
        self.inner.idle_end.cancel();
        if !finished {
            tracing::warn!(
                in_flight = self.in_flight(),
                grace_s = self.inner.grace.as_secs(),
                "shutdown grace period over; dropping the calls still running"
            );
            self.inner.forced.cancel();
            self.inner.background.close();
            let recorded = tokio::time::timeout(RECORD_AFTER_FORCE, self.inner.background.wait())
                .await
                .is_ok();
            if !recorded {
                tracing::warn!(
                    still_running = self.inner.background.len(),
                    "background calls (tasks) did not record their end in time after the grace period"
                );
            }
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_work_then_ends_idle_streams() {
        let shutdown = Shutdown::new(Duration::from_secs(5));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.spawn(async move {
            let _ = rx.await;
        });
        let drain = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.drain().await }
        });
        shutdown.begin();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !shutdown.idle_streams_end().is_cancelled(),
            "work still runs"
        );
        let _ = tx.send(());
        assert!(
            drain.await.unwrap(),
            "the work finished within the grace period"
        );
        assert!(shutdown.idle_streams_end().is_cancelled());
        assert!(!shutdown.forced().is_cancelled());
    }

    /// Background work is waited for like a request's work, and once forced it gets its time to
    /// record its end: the drain returns only after that (or [`RECORD_AFTER_FORCE`]).
    #[tokio::test]
    async fn drain_waits_for_background_work_and_for_it_to_record_its_end_when_forced() {
        let shutdown = Shutdown::new(Duration::from_millis(200));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.spawn_background(async move {
            let _ = rx.await;
        });
        let recorded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        shutdown.spawn_background({
            let forced = shutdown.forced().clone();
            let recorded = recorded.clone();
            async move {
                forced.cancelled().await;
                // Stopping and recording take a while (a store write).
                tokio::time::sleep(Duration::from_millis(100)).await;
                recorded.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        assert_eq!(shutdown.in_flight(), 2);
        let drain = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.drain().await }
        });
        shutdown.begin();
        let _ = tx.send(());
        assert!(!drain.await.unwrap(), "one call ran past the grace period");
        assert!(
            recorded.load(std::sync::atomic::Ordering::SeqCst),
            "the drain returned before the forced background work recorded its end"
        );
        assert_eq!(shutdown.in_flight(), 0);
    }

    #[tokio::test]
    async fn drain_forces_after_the_grace_period() {
        let shutdown = Shutdown::new(Duration::from_millis(50));
        shutdown.spawn(std::future::pending::<()>());
        shutdown.begin();
        assert!(!shutdown.drain().await);
        assert!(shutdown.forced().is_cancelled() && shutdown.idle_streams_end().is_cancelled());
    }
}
