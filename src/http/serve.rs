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
        std::future::poll_fn(|cx| {
            loop {
                activity.polling();
                if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                    activity.arm(armed);
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return Poll::Ready(());
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
