//! Per-principal bookkeeping for quotas and lifetimes: what each principal holds right now
//! (calls, commands and relay transfers in flight, session creations under way) and the
//! sessions created through this server (owner, creation and last-use times). Behind the
//! [`UsageStore`] trait so a shared store can replace [`MemoryUsage`] for several replicas;
//! today it is one process's memory, so a restart forgets the sessions it created (they are
//! then neither counted nor reaped). With `[cluster]` the `quotas.max_sessions` decision is
//! made from a count in Redis instead (`cluster::SessionCount`, taken in `tools::usage_guard`);
//! this store still tracks the sessions for the reaper and the lifetime checks. Permits are
//! RAII: dropping one gives the slot back.
//! The decisions are `policy::quotas` and `policy::lifetimes`.

// foldhash, not SipHash: looked up several times per tool call; keyed by authenticated
// principals and the Kasm ids of sessions created through this server, never by raw client input.
use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::policy::quotas::{Quota, QuotaExceeded, admit};

/// A session created through this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedSession {
    pub kasm_id: String,
    pub principal: String,
    /// The Kasm user that owns it (for the destroy call).
    pub owner: Option<String>,
    pub created: Instant,
    pub last_used: Instant,
}

/// The bookkeeping a quota and lifetime check needs.
pub trait UsageStore: Send + Sync + std::fmt::Debug {
    /// Take one `quota` slot for `principal` if it holds fewer than `max` (sessions count
    /// the tracked sessions too). Give it back with [`UsageStore::release`].
    fn try_take(
        &self,
        principal: &str,
        quota: Quota,
        max: Option<u32>,
    ) -> Result<(), QuotaExceeded>;
    fn release(&self, principal: &str, quota: Quota);
    /// Record a new session created through this server.
    fn track(&self, session: TrackedSession);
    /// A tool call used the session now (resets its idle clock).
    fn touch(&self, kasm_id: &str, now: Instant);
    /// The session is gone; stop tracking it.
    fn forget(&self, kasm_id: &str);
    fn tracked(&self, kasm_id: &str) -> Option<TrackedSession>;
    fn all_tracked(&self) -> Vec<TrackedSession>;
}

/// A held slot; dropping it releases the slot.
#[must_use]
pub struct Permit {
    store: Arc<dyn UsageStore>,
    principal: String,
    quota: Quota,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("principal", &self.principal)
            .field("quota", &self.quota)
            .finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.store.release(&self.principal, self.quota);
    }
}

/// Take a slot as a [`Permit`].
pub fn acquire(
    store: &Arc<dyn UsageStore>,
    principal: &str,
    quota: Quota,
    max: Option<u32>,
) -> Result<Permit, QuotaExceeded> {
    store.try_take(principal, quota, max)?;
    Ok(Permit {
        store: store.clone(),
        principal: principal.to_string(),
        quota,
    })
}

/// Sessions the reaper destroyed since start (exported on `/metrics`).
static REAPED: AtomicU64 = AtomicU64::new(0);

pub fn count_reaped() {
    REAPED.fetch_add(1, Ordering::Relaxed);
}

pub fn reaped_total() -> u64 {
    REAPED.load(Ordering::Relaxed)
}

#[derive(Debug, Default)]
struct Inner {
    held: HashMap<(String, Quota), usize>,
    sessions: HashMap<String, TrackedSession>,
}

/// The in-memory store (one process).
#[derive(Debug, Default)]
pub struct MemoryUsage {
    inner: Mutex<Inner>,
}

impl MemoryUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl UsageStore for MemoryUsage {
    fn try_take(
        &self,
        principal: &str,
        quota: Quota,
        max: Option<u32>,
    ) -> Result<(), QuotaExceeded> {
        let mut inner = self.lock();
        let key = (principal.to_string(), quota);
        let held = inner.held.get(&key).copied().unwrap_or(0);
        let in_use = match quota {
            Quota::Sessions => {
                held + inner
                    .sessions
                    .values()
                    .filter(|s| s.principal == principal)
                    .count()
            }
            _ => held,
        };
        admit(quota, max, in_use)?;
        *inner.held.entry(key).or_default() += 1;
        Ok(())
    }

    fn release(&self, principal: &str, quota: Quota) {
        let mut inner = self.lock();
        let key = (principal.to_string(), quota);
        if let Some(n) = inner.held.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.held.remove(&key);
            }
        }
    }

    fn track(&self, session: TrackedSession) {
        self.lock()
            .sessions
            .insert(session.kasm_id.clone(), session);
    }

    fn touch(&self, kasm_id: &str, now: Instant) {
        if let Some(s) = self.lock().sessions.get_mut(kasm_id) {
            s.last_used = now;
        }
    }

    fn forget(&self, kasm_id: &str) {
        self.lock().sessions.remove(kasm_id);
    }

    fn tracked(&self, kasm_id: &str) -> Option<TrackedSession> {
        self.lock().sessions.get(kasm_id).cloned()
    }

    fn all_tracked(&self) -> Vec<TrackedSession> {
        self.lock().sessions.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_count_and_release_and_sessions_count_towards_their_quota() {
        let store: Arc<dyn UsageStore> = Arc::new(MemoryUsage::default());
        let a = acquire(&store, "p", Quota::Exec, Some(2)).unwrap();
        let _b = acquire(&store, "p", Quota::Exec, Some(2)).unwrap();
        assert!(acquire(&store, "p", Quota::Exec, Some(2)).is_err());
        assert!(
            acquire(&store, "q", Quota::Exec, Some(2)).is_ok(),
            "per principal"
        );
        drop(a);
        assert!(acquire(&store, "p", Quota::Exec, Some(2)).is_ok());

        let now = Instant::now();
        store.track(TrackedSession {
            kasm_id: "k1".into(),
            principal: "p".into(),
            owner: None,
            created: now,
            last_used: now,
        });
        assert!(acquire(&store, "p", Quota::Sessions, Some(1)).is_err());
        let creating = acquire(&store, "p", Quota::Sessions, Some(2)).unwrap();
        assert!(acquire(&store, "p", Quota::Sessions, Some(2)).is_err());
        drop(creating);
        store.forget("k1");
        assert!(acquire(&store, "p", Quota::Sessions, Some(1)).is_ok());
    }
}
