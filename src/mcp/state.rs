//! Per-client state the router keeps in memory, keyed by an *owner key*: the transport's
//! session key when there is one, otherwise the principal's name. It holds the log level
//! (`logging/setLevel`), what the client declared at `initialize`, resource subscriptions and
//! the cancellation tokens of in-flight calls. Nothing here is needed to serve a request
//! correctly after a restart: losing it only resets log levels and subscriptions.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::mcp::jsonrpc::RequestId;
use crate::mcp::meta::RequestMeta;
use crate::mcp::tool::LogLevel;

/// Owners remembered at most (oldest entries are dropped first when full).
const MAX_OWNERS: usize = 10_000;

/// The key that scopes state and cancellation for one message.
pub fn owner_key(meta: &RequestMeta) -> String {
    match &meta.session_key {
        Some(session) => format!("session:{session}"),
        None => format!("principal:{}", meta.principal.name),
    }
}

/// What the client told us at `initialize`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInfo {
    pub protocol_version: String,
    pub capabilities: Value,
    /// `clientInfo` as `name/version` (for the audit trail), when the client sent it.
    pub name: Option<String>,
}

#[derive(Debug, Default)]
struct OwnerState {
    log_level: Option<LogLevel>,
    client: Option<ClientInfo>,
    subscriptions: BTreeSet<String>,
    touched: u64,
}

/// `(owner, id)` → the calls in flight under it, each with its serial.
type CallsInFlight = HashMap<(String, RequestId), Vec<(u64, CancellationToken)>>;

/// All per-owner state plus the in-flight call table.
#[derive(Debug, Default)]
pub struct State {
    owners: Mutex<(u64, HashMap<String, OwnerState>)>,
    in_flight: Mutex<CallsInFlight>,
    next_serial: AtomicU64,
}

impl State {
    fn with_owner<R>(&self, owner: &str, f: impl FnOnce(&mut OwnerState) -> R) -> R {
        let mut guard = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let (clock, owners) = &mut *guard;
        *clock += 1;
        if !owners.contains_key(owner)
            && owners.len() >= MAX_OWNERS
            && let Some(oldest) = owners
                .iter()
                .min_by_key(|(_, s)| s.touched)
                .map(|(k, _)| k.clone())
        {
            owners.remove(&oldest);
        }
        let state = owners.entry(owner.to_string()).or_default();
        state.touched = *clock;
        f(state)
    }

    fn read_owner<R>(&self, owner: &str, f: impl FnOnce(Option<&OwnerState>) -> R) -> R {
        let guard = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.1.get(owner))
    }

    pub fn set_log_level(&self, owner: &str, level: LogLevel) {
        self.with_owner(owner, |s| s.log_level = Some(level));
    }

    pub fn log_level(&self, owner: &str) -> Option<LogLevel> {
        self.read_owner(owner, |s| s.and_then(|s| s.log_level))
    }

    pub fn set_client(&self, owner: &str, client: ClientInfo) {
        self.with_owner(owner, |s| s.client = Some(client));
    }

    pub fn client(&self, owner: &str) -> Option<ClientInfo> {
        self.read_owner(owner, |s| s.and_then(|s| s.client.clone()))
    }

    pub fn subscribe(&self, owner: &str, uri: &str) {
        self.with_owner(owner, |s| s.subscriptions.insert(uri.to_string()));
    }

    pub fn unsubscribe(&self, owner: &str, uri: &str) {
        self.with_owner(owner, |s| s.subscriptions.remove(uri));
    }

    pub fn subscriptions(&self, owner: &str) -> Vec<String> {
        self.read_owner(owner, |s| {
            s.map(|s| s.subscriptions.iter().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Forget everything about an owner (a transport session ended).
    pub fn forget(&self, owner: &str) {
        let mut guard = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.remove(owner);
    }

    /// Register an in-flight request; the token is cancelled by [`State::cancel`]. The serial
    /// tells this call apart from another in flight under the same `(owner, id)` (two stateless
    /// clients of one principal, or a client reusing ids): pass it to [`State::finish_call`].
    pub fn start_call(&self, owner: &str, id: &RequestId) -> (CancellationToken, u64) {
        let token = CancellationToken::new();
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let mut calls = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        calls
            .entry((owner.to_string(), id.clone()))
            .or_default()
            .push((serial, token.clone()));
        (token, serial)
    }

    /// Unregister the call [`State::start_call`] returned `serial` for (and only that one).
    pub fn finish_call(&self, owner: &str, id: &RequestId, serial: u64) {
        let mut calls = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let key = (owner.to_string(), id.clone());
        if let Some(entries) = calls.get_mut(&key) {
            entries.retain(|(s, _)| *s != serial);
            if entries.is_empty() {
                calls.remove(&key);
            }
        }
    }

    /// Cancel the in-flight request(s) with this id: the client cannot tell two calls under
    /// one `(owner, id)` apart, so all of them stop. Unknown or finished ids are ignored
    /// (returns false).
    pub fn cancel(&self, owner: &str, id: &RequestId) -> bool {
        let calls = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        match calls.get(&(owner.to_string(), id.clone())) {
            Some(entries) if !entries.is_empty() => {
                for (_, token) in entries {
                    token.cancel();
                }
                true
            }
            _ => false,
        }
    }

    pub fn in_flight_count(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_scoped_per_owner() {
        let s = State::default();
        s.set_log_level("a", LogLevel::Warning);
        assert_eq!(s.log_level("a"), Some(LogLevel::Warning));
        assert_eq!(s.log_level("b"), None);
        s.subscribe("a", "test://x");
        s.subscribe("a", "test://x");
        assert_eq!(s.subscriptions("a"), vec!["test://x".to_string()]);
        s.unsubscribe("a", "test://x");
        assert!(s.subscriptions("a").is_empty());
        s.forget("a");
        assert_eq!(s.log_level("a"), None);
    }

    #[test]
    fn cancel_hits_only_the_matching_in_flight_call() {
        let s = State::default();
        let id = RequestId::Number(1);
        let (token, serial) = s.start_call("a", &id);
        assert!(!s.cancel("b", &id), "other owner");
        assert!(!s.cancel("a", &RequestId::Number(2)), "unknown id");
        assert!(!token.is_cancelled());
        assert!(s.cancel("a", &id));
        assert!(token.is_cancelled());
        s.finish_call("a", &id, serial);
        assert!(!s.cancel("a", &id), "finished id is ignored");
        assert_eq!(s.in_flight_count(), 0);
    }

    #[test]
    fn calls_sharing_owner_and_id_are_tracked_apart() {
        let s = State::default();
        let id = RequestId::Number(1);
        let (first, first_serial) = s.start_call("principal:p", &id);
        let (second, second_serial) = s.start_call("principal:p", &id);
        assert_ne!(first_serial, second_serial);
        assert_eq!(s.in_flight_count(), 2);
        // The first call ends: the second one must still be cancellable.
        s.finish_call("principal:p", &id, first_serial);
        assert_eq!(s.in_flight_count(), 1);
        assert!(s.cancel("principal:p", &id));
        assert!(second.is_cancelled());
        assert!(!first.is_cancelled(), "a finished call is not touched");
        s.finish_call("principal:p", &id, second_serial);
        assert_eq!(s.in_flight_count(), 0);
        // Both in flight at once: a cancel stops both, since the client cannot tell them apart.
        let (a, a_serial) = s.start_call("principal:p", &id);
        let (b, b_serial) = s.start_call("principal:p", &id);
        assert!(s.cancel("principal:p", &id));
        assert!(a.is_cancelled() && b.is_cancelled());
        s.finish_call("principal:p", &id, b_serial);
        s.finish_call("principal:p", &id, a_serial);
        assert!(!s.cancel("principal:p", &id));
    }
}
