//! The table of open legacy HTTP+SSE sessions (id → principal, outbound channel, cancel
//! token) and its caps. Its own file so that the shared [`super::state::TransportState`] and
//! the `legacy_sse` handlers both import it from below instead of from each other.
//!
//! The caps (`legacy_sse.max_streams`, `legacy_sse.max_streams_per_principal`) are checked in
//! O(1): the table keeps a count per principal beside the sessions. With `[cluster]` each
//! stream also holds two leases in Redis ([`crate::cluster::Leases`]), one of each cap, so
//! the figures hold over every replica; a replica that dies stops renewing them and its
//! streams' slots come back within one lease time.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::body::Body;
use crate::cluster::{ClusterError, Lease, Leases};
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
    /// Bounded: at most `queue_messages` messages wait for the client to read them. A
    /// pre-serialised answer (the cached `tools/list`) is queued as its text.
    pub(super) outbound: mpsc::Sender<Body>,
    pub(super) cancel: CancellationToken,
    /// `[cluster]`: this stream's slots of the two caps, given back when it is removed.
    pub(super) leases: Vec<Lease>,
}

/// The sessions and how many each principal holds.
#[derive(Default)]
pub(super) struct Table {
    sessions: HashMap<String, LegacySession>,
    per_principal: HashMap<String, usize>,
}

impl Table {
    pub(super) fn get(&self, id: &str) -> Option<&LegacySession> {
        self.sessions.get(id)
    }

    pub(super) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// How many streams `principal` holds open here.
    pub(super) fn held_by(&self, principal: &str) -> usize {
        self.per_principal.get(principal).copied().unwrap_or(0)
    }

    fn insert(&mut self, id: String, session: LegacySession) {
        *self
            .per_principal
            .entry(session.principal.name.clone())
            .or_default() += 1;
        if let Some(replaced) = self.sessions.insert(id, session) {
            self.uncount(&replaced.principal.name);
        }
    }

    fn remove(&mut self, id: &str) -> Option<LegacySession> {
        let session = self.sessions.remove(id)?;
        self.uncount(&session.principal.name);
        Some(session)
    }

    fn uncount(&mut self, principal: &str) {
        if let Some(n) = self.per_principal.get_mut(principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_principal.remove(principal);
            }
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug)]
pub(super) enum Refused {
    /// `legacy_sse.max_streams` reached (here, or over every replica).
    Full { everywhere: bool },
    /// `legacy_sse.max_streams_per_principal` reached; `held` is the count here (`None`:
    /// counted over every replica).
    PrincipalFull { held: Option<usize>, max: usize },
    /// `[cluster]`: Redis did not answer, so the caps cannot be checked.
    Unavailable(ClusterError),
}

/// The open legacy SSE sessions.
pub struct LegacySessions {
    sessions: Mutex<Table>,
    /// `[cluster]`: the caps counted over every replica.
    leases: Option<Leases>,
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
            sessions: Mutex::new(Table::default()),
            leases: None,
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

    /// `[cluster]`: count the caps over every replica with `leases`.
    pub fn shared(mut self, leases: Leases) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Open stream `id` for `session.principal` if the caps allow it (with `[cluster]`, over
    /// every replica).
    pub(super) async fn open(&self, id: String, mut session: LegacySession) -> Result<(), Refused> {
        if let Some(leases) = &self.leases {
            session.leases = self.take_leases(leases, &session.principal.name).await?;
        }
        let mut table = self.lock();
        if table.len() >= self.max_streams {
            return Err(Refused::Full { everywhere: false });
        }
        let held = table.held_by(&session.principal.name);
        if held >= self.max_per_principal {
            return Err(Refused::PrincipalFull {
                held: Some(held),
                max: self.max_per_principal,
            });
        }
        table.insert(id, session);
        Ok(())
    }

    /// One slot of each cap in Redis, or the refusal.
    async fn take_leases(&self, leases: &Leases, principal: &str) -> Result<Vec<Lease>, Refused> {
        let cap = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let owner = hex::encode(principal.as_bytes());
        let own = leases
            .take(
                &["legacy_sse.max_streams_per_principal", &owner],
                cap(self.max_per_principal),
            )
            .await
            .map_err(Refused::Unavailable)?
            .ok_or(Refused::PrincipalFull {
                held: None,
                max: self.max_per_principal,
            })?;
        let all = leases
            .take(&["legacy_sse.max_streams"], cap(self.max_streams))
            .await
            .map_err(Refused::Unavailable)?
            .ok_or(Refused::Full { everywhere: true })?;
        Ok(vec![own, all])
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Table> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Role;

    fn session(name: &str) -> LegacySession {
        let (outbound, _) = mpsc::channel(1);
        LegacySession {
            principal: Principal {
                name: name.into(),
                role: Role::Viewer,
                kasm_user_id: None,
                oauth: None,
            },
            outbound,
            cancel: CancellationToken::new(),
            leases: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_per_principal_count_follows_opens_and_removals() {
        let table = LegacySessions::new(4).with_caps(3, 2);
        table.open("a1".into(), session("a")).await.unwrap();
        table.open("a2".into(), session("a")).await.unwrap();
        assert!(matches!(
            table.open("a3".into(), session("a")).await,
            Err(Refused::PrincipalFull {
                held: Some(2),
                max: 2
            })
        ));
        table.open("b1".into(), session("b")).await.unwrap();
        assert!(matches!(
            table.open("c1".into(), session("c")).await,
            Err(Refused::Full { everywhere: false })
        ));
        assert_eq!(table.lock().held_by("a"), 2);
        table.remove("a1");
        table.remove("a1");
        assert_eq!(table.lock().held_by("a"), 1, "removed once");
        table.open("a3".into(), session("a")).await.unwrap();
        for id in ["a2", "a3", "b1"] {
            table.remove(id);
        }
        let inner = table.lock();
        assert_eq!(
            (inner.len(), inner.held_by("a"), inner.held_by("b")),
            (0, 0, 0)
        );
        assert!(inner.per_principal.is_empty(), "no empty counts kept");
    }
}
