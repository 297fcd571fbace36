//! The accept loop: hyper's HTTP/1 + HTTP/2 auto builder (told the version from a peek at the
//! first bytes, see [`super::sniff`]), one task per connection, with the
//! limits of `[connections]`: a cap on open connections (in total and per client address;
//! refused connections are closed at once), a header-read timeout counted from a request's
//! first byte, and an idle timeout between requests. A stop signal stops accepting and asks
//! every connection to finish its request in progress and close.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::activity::{Activity, Timeouts, Tracked, Watched};
use super::conn_limits::{ConnectionLimits, ConnectionPermit};
use super::sniff::{Sniffed, sniff};
use crate::config::ConnectionsConfig;

/// How long the loop pauses after `accept` fails (e.g. out of file descriptors) before trying
/// again, so the failure does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What the accept loop enforces.
#[derive(Clone)]
pub struct ServeLimits {
    pub timeouts: Timeouts,
    pub connections: Arc<ConnectionLimits>,
}

impl ServeLimits {
    /// From `[connections]`, fitted under `fd_limit` (see [`ConnectionLimits::new`]).
    pub fn from_config(config: &ConnectionsConfig, fd_limit: Option<u64>) -> Self {
        ServeLimits {
            timeouts: Timeouts {
                header_read: Duration::from_secs(config.header_read_timeout_s),
                idle: Duration::from_secs(config.idle_timeout_s),
            },
            connections: Arc::new(ConnectionLimits::new(config, fd_limit)),
        }
    }
}

/// Serve `router` on `listener` until `signal` completes; then stop accepting, let every
/// connection finish its request in progress, and return once all are closed.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    signal: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let stopping = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; pausing briefly");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let permit = match limits.connections.try_open(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                limits.connections.warn_refused(refusal);
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(serve_connection(
            stream,
            peer,
            permit,
            router.clone(),
            limits.timeouts,
            stopping.clone(),
        ));
    }
    drop(listener);
    stopping.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: ConnectionPermit,
    router: Router,
    timeouts: Timeouts,
    stopping: CancellationToken,
) {
    let activity = Activity::new(timeouts);
    // The version first, from a peek (see `super::sniff` for why hyper-util's own detection is
    // not used for the common case), under the idle timeout and the stop signal.
    let sniffed = tokio::select! {
        sniffed = sniff(&stream) => match sniffed {
            Ok(sniffed) => sniffed,
            Err(error) => {
                tracing::debug!(%error, "connection failed before its first request");
                return;
            }
        },
        _ = sleep_until(activity.deadline()) => {
            tracing::debug!("closing a connection that sent nothing");
            return;
        }
        _ = stopping.cancelled() => return,
    };
    let io = TokioIo::new(Watched::new(stream, activity.clone(), permit));
    let service = Tracked::new(router, peer, activity.clone());
    let watch = Watch {
        activity: &activity,
        stopping: &stopping,
    };
    match sniffed {
        // The common case: hyper's HTTP/1 connection alone, which keeps this task small
        // (it lives as long as the connection; an idle one costs what it holds).
        Sniffed::Http1 => {
            let connection = http1::Builder::new().serve_connection(io, service);
            watch.drive(connection, |c| c.graceful_shutdown()).await;
        }
        // HTTP/2 (or a preface still arriving: the auto builder reads on and decides). Boxed:
        // an HTTP/2 connection's state is several times an HTTP/1 one's, and every task
        // would otherwise reserve room for it.
        Sniffed::Http2 | Sniffed::Undecided => {
            Box::pin(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                let builder = if sniffed == Sniffed::Http2 {
                    builder.http2_only()
                } else {
                    builder
                };
                let connection = builder.serve_connection(io, service);
                watch.drive(connection, |c| c.graceful_shutdown()).await;
            })
            .await;
        }
    }
}

/// What a connection is watched for while hyper serves it: its timeouts (kept by its
/// [`Activity`]) and the stop signal.
struct Watch<'a> {
    activity: &'a Activity,
    stopping: &'a CancellationToken,
}

impl Watch<'_> {
    /// Poll `connection` until it ends, closing it when a timeout of [`Activity::deadline`]
    /// passes, and calling `finish` (hyper's graceful shutdown) once a stop is asked for.
    ///
    /// One future, not a `select!` loop over fresh ones: the connection is polled first, with
    /// [`Activity::polling`] set, so what a request changes (its first bytes, its start and
    /// end) wakes nobody and is read once the poll returns ([`Activity::arm`]); the timer is
    /// kept across polls and moved only when the deadline comes earlier. Changes made by
    /// other tasks (HTTP/2 streams ending) wake the watcher through [`Activity::changed`].
    async fn drive<C, E>(&self, connection: C, finish: impl Fn(Pin<&mut C>))
    where
        C: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let activity = self.activity;
        tokio::pin!(connection);
        let stopping = self.stopping.cancelled();
        tokio::pin!(stopping);
        let changed = activity.changed();
        tokio::pin!(changed);
        // Not polled (so not in the timer wheel) until a deadline is armed.
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        let mut armed: Option<tokio::time::Instant> = None;
        let mut asked_to_stop = false;
        let own = OwnWakes::new();
        std::future::poll_fn(|cx| {
            let mut again = 0;
            loop {
                activity.polling();
                let polled = own.poll(cx, |inner| connection.as_mut().poll(inner));
                if let Poll::Ready(result) = polled {
                    activity.arm(armed);
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return Poll::Ready(());
                }
                // Woken during its own poll (hyper handing the request body to the handler,
                // the router's channel closing, …): polled again here, a few times at most,
                // instead of being queued as a yield — which makes the runtime wake another
                // worker thread to take the task.
                if own.take_woken() {
                    again += 1;
                    if again < MAX_OWN_REPOLLS {
                        continue;
                    }
                    cx.waker().wake_by_ref();
                }
                if !asked_to_stop && stopping.as_mut().poll(cx).is_ready() {
                    asked_to_stop = true;
                    finish(connection.as_mut());
                    // Polled again: the connection acts on the shutdown when polled.
                    continue;
                }
                break;
            }
            loop {
                // Registered before the deadline is read, so no change from another task
                // is missed.
                if changed.as_mut().poll(cx).is_ready() {
                    changed.set(activity.changed());
                    continue;
                }
                let wanted = activity.arm(armed);
                if wanted != armed
                    && let Some(at) = wanted
                {
                    timer.as_mut().reset(at);
                }
                armed = wanted;
                if armed.is_none() || timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The timer fired: the deadline passed, or it moved later since it was armed.
                if activity
                    .deadline()
                    .is_some_and(|d| d <= tokio::time::Instant::now())
                {
                    if activity.waiting_for_headers() {
                        tracing::debug!(
                            "closing a connection that did not send its headers in time"
                        );
                    } else {
                        tracing::debug!("closing an idle connection");
                    }
                    return Poll::Ready(());
                }
                armed = None;
            }
        })
        .await
    }
}

/// How many polls of a connection one poll of its task makes in a row while it keeps waking
/// itself (so at most `MAX_OWN_REPOLLS - 1` again; then it yields to the runtime as any task
/// does: no connection holds a worker). hyper's own fairness yield (after 16 pipelined
/// requests) is such a self-wake too, so a pipelining connection keeps its worker for at most
/// this many of those rounds, within tokio's cooperative budget.
const MAX_OWN_REPOLLS: u32 = 8;

/// The waker a connection is polled with: a wake from outside the connection's own poll goes
/// to the task's waker; a wake during it (the connection waking itself) is only noted, for
/// the caller to poll it again at once ([`OwnWakes::take_woken`]).
struct OwnWakes {
    shared: Arc<OwnWaker>,
    waker: std::task::Waker,
}

/// Not polling / polling / polling and woken meanwhile.
const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

struct OwnWaker {
    state: std::sync::atomic::AtomicU8,
    task: std::sync::Mutex<Option<std::task::Waker>>,
}

impl std::task::Wake for OwnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        use std::sync::atomic::Ordering::AcqRel;
        // During the poll: noted (the poller looks when the poll returns). Otherwise the
        // task is woken. A wake between the poll's end and the poller's look is seen by the
        // look (the poller swaps the state back to IDLE and reads what it was).
        if self
            .state
            .compare_exchange(POLLING, WOKEN, AcqRel, std::sync::atomic::Ordering::Acquire)
            .is_err_and(|state| state == IDLE)
            && let Some(task) = &*self.task.lock().unwrap_or_else(|e| e.into_inner())
        {
            task.wake_by_ref();
        }
    }
}

impl OwnWakes {
    fn new() -> Self {
        let shared = Arc::new(OwnWaker {
            state: std::sync::atomic::AtomicU8::new(IDLE),
            task: std::sync::Mutex::new(None),
        });
        let waker = std::task::Waker::from(shared.clone());
        OwnWakes { shared, waker }
    }

    /// `poll` with this waker, the task's waker (from `cx`) kept for wakes from outside.
    fn poll<T>(
        &self,
        cx: &mut std::task::Context<'_>,
        poll: impl FnOnce(&mut std::task::Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        {
            let mut task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        self.shared
            .state
            .store(POLLING, std::sync::atomic::Ordering::Release);
        poll(&mut std::task::Context::from_waker(&self.waker))
    }

    /// Whether the connection woke itself during the last [`OwnWakes::poll`] (or since);
    /// wakes from now on go to the task.
    fn take_woken(&self) -> bool {
        self.shared
            .state
            .swap(IDLE, std::sync::atomic::Ordering::AcqRel)
            == WOKEN
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    use super::*;

    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_during_its_own_poll_is_noted_and_others_wake_the_task() {
        let task = Arc::new(Counting(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);
        let own = OwnWakes::new();
        // Woken inside its own poll (as hyper does when it hands the body to the handler):
        // noted, the task is not woken (it would be queued as a yield and handed to another
        // worker thread).
        let mut kept = None;
        let polled: Poll<()> = own.poll(&mut cx, |inner| {
            inner.waker().wake_by_ref();
            kept = Some(inner.waker().clone());
            Poll::Pending
        });
        assert!(polled.is_pending());
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        assert!(own.take_woken());
        assert!(!own.take_woken(), "taken once");
        // A wake after the poll (a socket ready, Kasm's answer) wakes the task.
        let kept = kept.unwrap();
        kept.wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(!own.take_woken());
        // A poll without a wake leaves nothing noted.
        let _: Poll<()> = own.poll(&mut cx, |_| Poll::Pending);
        assert!(!own.take_woken());
        kept.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 2);
    }
}
