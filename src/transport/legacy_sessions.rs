//! The table of open legacy HTTP+SSE sessions (id → principal, outbound channel, cancel
//! token). Its own file so that the shared [`super::state::TransportState`] and the
//! `legacy_sse` handlers both import it from below instead of from each other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::policy::Principal;

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
        }
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
