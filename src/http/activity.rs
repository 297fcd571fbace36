//! What one connection is doing, for the accept loop's timeouts: whether a request is in
//! progress (from its complete headers until its response body is finished), and when the
//! connection last went quiet or started sending the next request's headers.
//!
//! [`Watched`] wraps the socket and notes the first byte of each new request; [`Tracked`]
//! wraps the router and counts requests in progress. Neither looks at any content.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, header};
use axum::routing::future::RouteFuture;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::conn_limits::ConnectionPermit;

/// How long a closing connection keeps reading (and discarding) what the client still sends
/// after a `Connection: close` answer, so the kernel does not reset the connection and throw
/// away the answer before the client has read it.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// The timeouts of [`Activity::deadline`].
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

#[derive(Debug)]
struct Phase {
    /// Requests whose response is not finished.
    active: usize,
    /// When the connection went quiet, or when the first byte of the next request came.
    since: Instant,
    /// Bytes of a new request have arrived, its headers are not complete yet.
    reading_headers: bool,
    /// An answer said `Connection: close`: linger when closing.
    closing: bool,
    /// The deadline the connection's watcher sleeps toward ([`Activity::arm`]; `None`: no
    /// timer). A change wakes the watcher only when it brings the deadline before this one:
    /// a deadline that moved later or went away is re-read when the armed timer fires.
    armed: Option<Instant>,
    /// The watcher is polling the connection ([`Activity::polling`]): a change made now wakes
    /// nobody, the watcher reads the deadline again when that poll returns
    /// ([`Activity::arm`]).
    polling: bool,
}

impl Phase {
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        if self.active > 0 {
            None
        } else if self.reading_headers {
            Some(self.since + timeouts.header_read)
        } else {
            Some(self.since + timeouts.idle)
        }
    }
}

/// The state of one connection.
pub struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
    timeouts: Timeouts,
}

impl Activity {
    pub fn new(timeouts: Timeouts) -> Arc<Self> {
        Arc::new(Activity {
            phase: Mutex::new(Phase {
                active: 0,
                since: Instant::now(),
                reading_headers: false,
                closing: false,
                armed: None,
                polling: false,
            }),
            changed: Notify::new(),
            timeouts,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the connection must be closed if nothing changes: None while a request is in
    /// progress; else `header_read` after the first byte of a request whose headers are not
    /// complete, or `idle` after the connection went quiet.
    pub fn deadline(&self) -> Option<Instant> {
        self.lock().deadline(self.timeouts)
    }

    /// The deadline the watcher's timer must now sleep toward, given the one it sleeps toward
    /// (`timer`; `None`: no timer), and the end of a poll of the connection
    /// ([`Activity::polling`]). A timer that comes no later than [`Activity::deadline`] (or
    /// while there is none) is kept: firing early only makes the watcher look again, and a
    /// request starting or ending on a busy keep-alive connection moves the deadline later or
    /// removes it, so the timer is not re-armed per request. An earlier deadline replaces it.
    /// From then on [`Activity::changed`] completes only when the deadline comes before the
    /// returned one (or there is none).
    pub fn arm(&self, timer: Option<Instant>) -> Option<Instant> {
        let mut phase = self.lock();
        phase.polling = false;
        phase.armed = match (phase.deadline(self.timeouts), timer) {
            (Some(due), Some(timer)) => Some(due.min(timer)),
            (due, timer) => due.or(timer),
        };
        phase.armed
    }

    /// The watcher is about to poll the connection (in its own task): what the connection
    /// changes meanwhile — a request's first bytes, its start, its end — must not wake the
    /// watcher. Such a wake would come from inside the task's own poll, so the runtime would
    /// queue the task again and wake another worker thread to take it: two needless
    /// wake-ups per request. The watcher calls [`Activity::arm`] when the poll returns, and
    /// sees every change made during it.
    pub fn polling(&self) {
        self.lock().polling = true;
    }

    /// Which timeout a deadline from [`Activity::deadline`] belongs to (for the log).
    pub fn waiting_for_headers(&self) -> bool {
        self.lock().reading_headers
    }

    /// Completes when [`Activity::deadline`] may have come before the [`Activity::arm`]ed one.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    fn saw_bytes(&self) {
        let mut phase = self.lock();
        if phase.active == 0 && !phase.reading_headers {
            phase.reading_headers = true;
            phase.since = Instant::now();
            self.wake_if_earlier(phase);
        }
    }

    /// Wake the watcher when the deadline now comes before the one it sleeps toward (or it
    /// sleeps toward none), unless it is polling the connection (it looks again after).
    fn wake_if_earlier(&self, phase: MutexGuard<'_, Phase>) {
        let wake = !phase.polling
            && match (phase.deadline(self.timeouts), phase.armed) {
                (Some(due), Some(armed)) => due < armed,
                (Some(_), None) => true,
                (None, _) => false,
            };
        drop(phase);
        if wake {
            self.changed.notify_one();
        }
    }

    fn begin(self: &Arc<Self>) -> InProgress {
        let mut phase = self.lock();
        phase.active += 1;
        phase.reading_headers = false;
        self.wake_if_earlier(phase);
        InProgress(self.clone())
    }

    fn end(&self) {
        let mut phase = self.lock();
        phase.active = phase.active.saturating_sub(1);
        if phase.active == 0 {
            phase.since = Instant::now();
            phase.reading_headers = false;
        }
        self.wake_if_earlier(phase);
    }

    fn mark_closing(&self) {
        self.lock().closing = true;
    }

    fn closing(&self) -> bool {
        self.lock().closing
    }
}

/// A request in progress; dropping it (response body finished or abandoned) ends it.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The client socket, noting when a new request starts to arrive. It also holds the
/// connection's slot: after a `Connection: close` answer it lingers (reads and discards for
/// [`LINGER`]) before the socket and the slot are let go.
pub struct Watched {
    stream: Option<TcpStream>,
    activity: Arc<Activity>,
    permit: Option<ConnectionPermit>,
}

impl Watched {
    pub fn new(stream: TcpStream, activity: Arc<Activity>, permit: ConnectionPermit) -> Self {
        Watched {
            stream: Some(stream),
            activity,
            permit: Some(permit),
        }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let (Some(stream), Some(permit)) = (self.stream.take(), self.permit.take()) else {
            return;
        };
        if !self.activity.closing() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, permit));
        }
    }
}

async fn linger(mut stream: TcpStream, permit: ConnectionPermit) {
    let mut buffer = [0u8; 8192];
    let mut read = 0usize;
    let _ = tokio::time::timeout(LINGER, async {
        while read < LINGER_BYTES {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
    drop(stream);
    drop(permit);
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let stream = match this.stream() {
            Ok(stream) => stream,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let result = Pin::new(stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.saw_bytes();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_write(cx, data),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// The router as a hyper service for one connection: adds the peer address (`ConnectInfo`)
/// and counts the request as in progress until its response body is finished.
#[derive(Clone)]
pub struct Tracked {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl Tracked {
    pub fn new(router: Router, peer: SocketAddr, activity: Arc<Activity>) -> Self {
        Tracked {
            router,
            peer,
            activity,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answering;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let in_progress = self.activity.begin();
        // A `Router` is always ready (its `poll_ready` answers `Ready` at once), so it is
        // called directly: a clone is one reference count, the routing is done here.
        let future = tower::Service::call(&mut self.router.clone(), request);
        Answering {
            future,
            in_progress: Some(in_progress),
        }
    }
}

pin_project! {
    /// The response future of [`Tracked`]: the router's answer, whose body then holds the
    /// request's [`InProgress`] until it is finished (dropping the future unanswered ends it).
    pub struct Answering {
        #[pin]
        future: RouteFuture<Infallible>,
        in_progress: Option<InProgress>,
    }
}

impl Future for Answering {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.future.poll(cx))?;
        let Some(in_progress) = this.in_progress.take() else {
            // Polled again after it answered (a broken caller): nothing is in progress.
            return Poll::Ready(Ok(response));
        };
        let closes = response
            .headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if closes {
            in_progress.0.mark_closing();
        }
        Poll::Ready(Ok(response.map(|body| {
            Body::new(Finishing {
                body,
                _in_progress: in_progress,
            })
        })))
    }
}

/// A response body that ends its request's [`InProgress`] when it is dropped.
struct Finishing {
    body: Body,
    _in_progress: InProgress,
}

impl http_body::Body for Finishing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn activity(header_read: u64, idle: u64) -> Arc<Activity> {
        Activity::new(Timeouts {
            header_read: Duration::from_secs(header_read),
            idle: Duration::from_secs(idle),
        })
    }

    /// Whether the watcher would wake now.
    fn woken(activity: &Activity) -> bool {
        activity.changed().now_or_never().is_some()
    }

    #[tokio::test]
    async fn a_request_that_only_moves_the_deadline_later_does_not_wake_the_watcher() {
        let a = activity(2, 3);
        let armed = a.arm(None);
        assert!(armed.is_some());
        let request = a.begin();
        assert_eq!(a.deadline(), None);
        assert!(
            !woken(&a),
            "a request starting removes the deadline: no wake"
        );
        drop(request);
        assert!(a.deadline() >= armed);
        assert!(!woken(&a), "the idle deadline moved later: no wake");
    }

    #[tokio::test]
    async fn a_deadline_before_the_armed_one_wakes_the_watcher() {
        // The header deadline armed, then a request ends: the idle deadline (1 s) comes
        // before the armed header deadline (30 s).
        let a = activity(30, 1);
        a.saw_bytes();
        assert!(woken(&a), "nothing was armed yet");
        let armed = a.arm(None);
        let request = a.begin();
        assert!(!woken(&a));
        drop(request);
        assert!(a.deadline() < armed);
        assert!(woken(&a), "the idle deadline is earlier than the armed one");
    }

    #[tokio::test]
    async fn a_deadline_after_none_was_armed_wakes_the_watcher() {
        let a = activity(2, 3);
        let request = a.begin();
        assert_eq!(a.arm(None), None);
        drop(request);
        assert!(a.deadline().is_some());
        assert!(woken(&a), "the watcher slept without a timer");
        // New bytes on a quiet connection: the header deadline (2 s) comes before the idle
        // one (3 s) the watcher armed.
        a.arm(None);
        a.saw_bytes();
        assert!(woken(&a));
    }

    #[tokio::test]
    async fn what_a_request_changes_while_the_watcher_polls_wakes_nobody_and_is_read_after() {
        // Header deadline (2 s) before the idle one (3 s): a new request's first bytes bring
        // the deadline earlier, which wakes an idle watcher (the test above) — but not while
        // the watcher itself is polling the connection, which reads the deadline afterwards.
        let a = activity(2, 3);
        let idle = a.arm(None).unwrap();
        a.polling();
        a.saw_bytes();
        assert!(!woken(&a), "the first bytes came in the watcher's own poll");
        let headers = a.arm(Some(idle)).unwrap();
        assert!(
            headers < idle,
            "the earlier header deadline replaces the timer"
        );
        assert!(!woken(&a));
        // The request starts and ends in later polls: nothing wakes the watcher, and its
        // timer stays where it was (no deadline, then a later one).
        a.polling();
        let request = a.begin();
        assert_eq!(a.arm(Some(headers)), Some(headers));
        a.polling();
        drop(request);
        assert!(!woken(&a), "the request ended in the watcher's own poll");
        assert!(a.deadline().unwrap() > headers);
        assert_eq!(
            a.arm(Some(headers)),
            Some(headers),
            "a later deadline keeps the timer"
        );
        // Outside a poll (another task, e.g. an HTTP/2 stream), an earlier deadline still
        // wakes it.
        a.arm(None);
        let request = a.begin();
        a.arm(None);
        drop(request);
        assert!(
            woken(&a),
            "no timer was armed: the end of a request wakes the watcher"
        );
    }
}
