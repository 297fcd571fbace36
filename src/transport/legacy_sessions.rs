//! The table of open legacy HTTP+SSE sessions (id → principal, outbound channel, cancel
//! token). Its own file so that the shared [`super::state::TransportState`] and the
//! `legacy_sse` handlers both import it from below instead of from each other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::policy::Principal;

/// Default of `legacy_sse.max_streams`: most legacy SSE connections open at once (all
/// principals).
pub const MAX_LEGACY_SESSIONS: usize = 1024;
/// Default of `legacy_sse.max_streams_per_principal`: most legacy SSE connections one
/// principal may hold open, so that a single token cannot take all of them and lock every
/// other principal out.
pub const MAX_LEGACY_SESSIONS_PER_PRINCIPAL: usize = 32;

/// One open legacy connection: who opened it, where its events go, and how to stop its work.
pub(super) struct LegacySession {
    pub(super) principal: Principal,
    /// Bounded: at most `queue_messages` messages wait for the client to read them.
    pub(super) outbound: mpsc::Sender<Value>,
    pub(super) cancel: CancellationToken,
}

/// The open legacy SSE sessions.
pub struct LegacySessions {
    sessions: Mutex<HashMap<String, LegacySession>>,
    /// Messages one stream may have waiting (`legacy_sse.queue_messages`).
    pub(super) queue_messages: usize,
    /// Most streams open at once (`legacy_sse.max_streams`).
    pub(super) max_streams: usize,
    /// Most streams of one principal (`legacy_sse.max_streams_per_principal`).
    pub(super) max_per_principal: usize,
}

impl Default for LegacySessions {
    fn default() -> Self {
        LegacySessions::new(64)
    }
}

impl LegacySessions {
    /// No sessions yet; each stream will queue at most `queue_messages` (at least 1).
    pub fn new(queue_messages: usize) -> Self {
        LegacySessions {
            sessions: Mutex::new(HashMap::new()),
            queue_messages: queue_messages.max(1),
            max_streams: MAX_LEGACY_SESSIONS,
            max_per_principal: MAX_LEGACY_SESSIONS_PER_PRINCIPAL,
        }
    }

    /// At most `max_streams` streams open at once, `max_per_principal` of one principal
    /// (each at least 1).
    pub fn with_caps(mut self, max_streams: usize, max_per_principal: usize) -> Self {
        self.max_streams = max_streams.max(1);
        self.max_per_principal = max_per_principal.max(1);
        self
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, LegacySession>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn remove(&self, id: &str) {
        if let Some(session) = self.lock().remove(id) {
            session.cancel.cancel();
        }
    }
}
