//! The accept loop: hyper's HTTP/1 + HTTP/2 auto builder, one task per connection, with the
//! limits of `[connections]`: a cap on open connections (in total and per client address;
//! refused connections are closed at once), a header-read timeout counted from a request's
//! first byte, and an idle timeout between requests. A stop signal stops accepting and asks
//! every connection to finish its request in progress and close.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::activity::{Activity, Timeouts, Tracked, Watched};
use super::conn_limits::{ConnectionLimits, ConnectionPermit};
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
    let activity = Activity::new();
    let io = TokioIo::new(Watched::new(stream, activity.clone(), permit));
    let service = Tracked::new(router, peer, activity.clone());
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut asked_to_stop = false;
    loop {
        let deadline = activity.deadline(timeouts);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = activity.changed() => {}
            _ = sleep_until(deadline) => {
                if activity.deadline(timeouts).is_some_and(|d| d <= tokio::time::Instant::now()) {
                    if activity.waiting_for_headers() {
                        tracing::debug!("closing a connection that did not send its headers in time");
                    } else {
                        tracing::debug!("closing an idle connection");
                    }
                    return;
                }
            }
            _ = stopping.cancelled(), if !asked_to_stop => {
                asked_to_stop = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
