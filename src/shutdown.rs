//! Graceful shutdown in phases, independent of how connections are accepted:
//!
//! 1. **stopping** ([`Shutdown::begin`], on SIGTERM/SIGINT or an explicit stop): readiness
//!    turns 503 and the transports refuse new work with 503 (see
//!    `transport::draining`); the listener stays open for the relay's output uploads.
//! 2. **draining** ([`Shutdown::drain`]): tool calls already running (every piece of MCP work
//!    is spawned through [`Shutdown::spawn`] or, while it runs in the task answering its
//!    request, counted by [`Shutdown::track`]) get up to the grace period to finish; their
//!    answers still flow on the streams that carry them.
//! 3. **idle streams end** ([`Shutdown::idle_streams_end`]) once no work is in flight: the
//!    accept loop stops taking connections, and the legacy `/sse` streams (and any stream
//!    that only waits for future messages) flush what is queued and end with a clean chunked
//!    terminator, so the connections close.
//! 4. **forced** ([`Shutdown::forced`]) when the grace period runs out: every stream ends,
//!    unanswered calls are dropped.

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
    grace: Duration,
}

impl Shutdown {
    /// A server that, once stopping, gives in-flight work `grace` to finish.
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            inner: Arc::new(Inner {
                stopping: CancellationToken::new(),
                idle_end: CancellationToken::new(),
                forced: CancellationToken::new(),
                work: TaskTracker::new(),
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
    /// period; then end idle streams, and force the rest if the grace period ran out. Returns
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

    #[tokio::test]
    async fn drain_forces_after_the_grace_period() {
        let shutdown = Shutdown::new(Duration::from_millis(50));
        shutdown.spawn(std::future::pending::<()>());
        shutdown.begin();
        assert!(!shutdown.drain().await);
        assert!(shutdown.forced().is_cancelled() && shutdown.idle_streams_end().is_cancelled());
    }
}
