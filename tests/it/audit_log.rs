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

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

/// The JSON lines written so far (one `fmt` JSON event per write).
static LINES: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

/// Appends to [`LINES`].
struct Sink;

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(lines) = LINES.get() {
            lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the capture (once per process; later calls do nothing).
pub(crate) fn install() {
    // The subscriber is set inside `get_or_init`, so a second caller waits until it is the
    // global dispatcher (no event of its test can fall between the two).
    LINES.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("audit=info"))
            .with_writer(|| Sink)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the test binary");
        Mutex::new(Vec::new())
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
            String::from_utf8_lossy(&lines.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
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
