//! A process-wide capture of the server's `audit` events (the default `log` sink: `tracing`
//! events of target `audit`), for tests whose event is written wherever the call ends — e.g.
//! a call that runs on in the background after its client went away.
//!
//! Why process-wide: a per-thread capture (`tracing::subscriber::set_default`) races with the
//! other tests of this binary that install and drop their own per-thread subscribers (the
//! callsite's cached interest can be computed without it), so it missed events when run in
//! parallel. This one is the global default, installed once and never dropped, and always
//! interested in `audit`; threads where another test set its own subscriber keep theirs
//! (their events are not seen here, and need not be). Tests find their own events by a field
//! only they use (a tool name of their own).
//!
//! [`ThreadCapture`] is the other kind, for a test that must see only its own events of any
//! target (all of them on its thread: a current-thread runtime): it stands on the
//! process-wide capture, see there why.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

/// The JSON lines written so far (one `fmt` JSON event per write), in the same kind of
/// buffer a [`ThreadCapture`] writes to.
static LINES: OnceLock<ThreadCapture> = OnceLock::new();

/// Install the capture (once per process; later calls do nothing).
pub(crate) fn install() {
    // The subscriber is set inside `get_or_init`, so a second caller waits until it is the
    // global dispatcher (no event of its test can fall between the two).
    LINES.get_or_init(|| {
        let lines = ThreadCapture::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("audit=info"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the test binary");
        lines
    });
    // A callsite first seen (on another thread) while the capture was being installed may
    // have cached "not interested": recompute, now that the capture is a dispatcher.
    tracing::callsite::rebuild_interest_cache();
}

/// The fields of every captured `audit` event whose fields match `wanted`.
pub(crate) fn events(wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
    let text = LINES
        .get()
        .map(|lines| {
            String::from_utf8_lossy(&lines.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        })
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["target"] == "audit")
        .map(|event| event["fields"].clone())
        .filter(|fields| wanted(fields))
        .collect()
}

/// The captured `audit` tool-call events of `tool`, once there is at least one (panics after
/// `deadline`).
pub(crate) async fn tool_calls(tool: &str, deadline: Duration) -> Vec<Value> {
    let start = tokio::time::Instant::now();
    loop {
        let found = events(|fields| fields["tool"] == tool && fields["message"] == "tool call");
        if !found.is_empty() {
            return found;
        }
        assert!(
            start.elapsed() < deadline,
            "no audit event for the tool {tool:?} within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every event of this thread, as JSON lines, while the guard [`ThreadCapture::start`] returns
/// lives: for a test on a current-thread runtime (`#[tokio::test]`, where the server it starts
/// runs too) that must see only its own events (the process-wide capture has every test's) and
/// every target (e.g. to check that no token reaches any log line).
///
/// It installs the process-wide capture first, and that is what makes it reliable: a
/// callsite's interest is cached once for all threads, and while this thread's subscriber is
/// the only registered one, a callsite first hit on another thread (another test's, under
/// plain `cargo test`) is registered with that thread's interest alone — "never" — so this
/// thread's events there are skipped for good, even after `rebuild_interest_cache`. With the
/// global capture registered for good, every interest is computed from all the subscribers
/// (`a_thread_capture_sees_a_callsite_first_hit_on_another_thread`).
#[derive(Clone, Default)]
pub(crate) struct ThreadCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ThreadCapture {
    /// Capture this thread's events (at `info` and above) until the guard is dropped.
    pub(crate) fn start() -> (ThreadCapture, tracing::subscriber::DefaultGuard) {
        install();
        let captured = ThreadCapture::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // A callsite registered while this subscriber was being set up may have cached its
        // interest without it: recompute, now that it is registered.
        tracing::callsite::rebuild_interest_cache();
        (captured, guard)
    }

    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// The captured events of target `audit` (whole JSON events).
    pub(crate) fn audit_events(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["target"] == "audit")
            .collect()
    }
}

/// The failure [`ThreadCapture`] exists to avoid: an `audit` callsite first hit on another
/// thread that has no subscriber of its own (another test's, under `cargo test`), then on this
/// one. Without [`install`] in `ThreadCapture::start` the capture misses the second event.
#[test]
fn a_thread_capture_sees_a_callsite_first_hit_on_another_thread() {
    fn emit() {
        tracing::info!(target: "audit", probe = "thread-capture", "first hit elsewhere");
    }
    let (captured, _guard) = ThreadCapture::start();
    std::thread::spawn(emit).join().unwrap();
    emit();
    let seen = captured
        .audit_events()
        .into_iter()
        .filter(|event| event["fields"]["probe"] == "thread-capture")
        .count();
    assert_eq!(seen, 1, "{}", captured.text());
}
