//! What every simulator handler sees: the state shared by all requests ([`Shared`]) and the
//! per-call context ([`Ctx`]: authenticated key, acting user, request fields). Its own file so
//! that `api.rs` (the dispatcher) and the handler files import it from below instead of from
//! each other.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::auth::KeyInfo;
use super::config::{Faults, KasmVersion};
use super::sandbox::Sandbox;
use super::state::Store;
use crate::kasm::normalize_id;

/// State shared by every request of one simulator.
#[derive(Debug)]
pub struct Shared {
    pub version: KasmVersion,
    pub start_delay: Duration,
    pub max_kasms_per_user: usize,
    pub missing_permission_status: StatusCode,
    pub keys: Vec<KeyInfo>,
    pub store: Mutex<Store>,
    pub sandbox: Arc<Sandbox>,
    pub faults: watch::Sender<Faults>,
    /// Requests to `exec_command_kasm` received, whatever their outcome (tests check that a
    /// refused command never reached Kasm).
    pub exec_requests: std::sync::atomic::AtomicU64,
    /// Calls received per path segment after `/api/public/` (or `/api/`), answered or not.
    pub requests: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    /// The database, with every session's clock advanced to now.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.refresh(Instant::now());
        store
    }

    /// Count one call to `endpoint`.
    pub fn count(&self, endpoint: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match requests.get_mut(endpoint) {
            Some(n) => *n = n.saturating_add(1),
            None => {
                requests.insert(endpoint.to_string(), 1);
            }
        }
    }

    /// Calls received so far, per endpoint.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Everything a handler needs to know about the call.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub key: &'a KeyInfo,
    pub body: Map<String, Value>,
    /// The normalised `user_id` the call acts as (already checked to exist).
    pub user: Option<String>,
    /// The request's `Host` without port (Kasm reports it as the session `hostname`).
    pub hostname: String,
    /// The request's `Host` as sent (for `get_login` URLs).
    pub host: String,
}

/// How an id field of the request looks.
pub enum IdField {
    Missing,
    Valid(String),
    /// Present but not a UUID (Kasm's database would reject it).
    Invalid(String),
}

impl Ctx<'_> {
    /// A string field of `obj` (empty strings count as missing).
    pub fn str_in<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v str> {
        obj.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        Ctx::str_in(&self.body, name)
    }

    /// A nested object such as `target_user`.
    pub fn object(&self, name: &str) -> Option<&Map<String, Value>> {
        self.body.get(name).and_then(Value::as_object)
    }

    /// An id field of `obj`, normalised.
    pub fn id_in(obj: &Map<String, Value>, name: &str) -> IdField {
        match Ctx::str_in(obj, name) {
            None => IdField::Missing,
            Some(raw) => match normalize_id(name, raw) {
                Ok(id) => IdField::Valid(id),
                Err(_) => IdField::Invalid(raw.to_string()),
            },
        }
    }

    pub fn id_field(&self, name: &str) -> IdField {
        Ctx::id_in(&self.body, name)
    }

    pub fn has(&self, permission: &str) -> bool {
        self.key.has(permission)
    }
}
