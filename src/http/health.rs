//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the server is serving,
//! not shutting down, and every dependency probe passes).
//!
//! Dependencies (Kasm today; Redis once shared state lives there) are [`DependencyProbe`]s
//! installed by the launcher. Each probe's result is cached for `readiness_cache_ms`, and a
//! per-probe async mutex keeps at most one probe in flight however many load balancers ask,
//! so probes never multiply load on Kasm. A failing probe gives 503 with a JSON reason that
//! names what is wrong and the fix; the body never quotes upstream answers or URLs (it is
//! unauthenticated), the full error goes to the log.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Why a dependency is not usable, phrased for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unready {
    /// What is wrong (no secrets, no upstream text).
    pub problem: String,
    /// What to change.
    pub fix: String,
}

/// A dependency that readiness checks (the hook for Kasm, and for Redis when configured).
#[async_trait::async_trait]
pub trait DependencyProbe: Send + Sync {
    /// The name in the `/readyz` body (`kasm`, `redis`).
    fn name(&self) -> &'static str;
    /// One cheap authenticated round trip. `Ok` carries a short description of the state.
    async fn probe(&self) -> Result<String, Unready>;
}

/// A probe with its cached last result.
struct CachedProbe {
    probe: Arc<dyn DependencyProbe>,
    last: tokio::sync::Mutex<Option<(Instant, Result<String, Unready>)>>,
}

impl CachedProbe {
    /// The cached result if fresh, otherwise a new probe (callers queue behind the one in
    /// flight and then share its result).
    async fn result(&self, ttl: Duration, timeout: Duration) -> Result<String, Unready> {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref()
            && at.elapsed() < ttl
        {
            return result.clone();
        }
        let result = match tokio::time::timeout(timeout, self.probe.probe()).await {
            Ok(result) => result,
            Err(_) => Err(Unready {
                problem: format!(
                    "{} did not answer the readiness probe within {} ms",
                    self.probe.name(),
                    timeout.as_millis()
                ),
                fix: "check that it is running and reachable from this server, or raise lifecycle.readiness_timeout_ms".into(),
            }),
        };
        let changed = last
            .as_ref()
            .is_none_or(|(_, old)| old.is_ok() != result.is_ok());
        if changed {
            match &result {
                Ok(state) => tracing::info!(dependency = self.probe.name(), %state, "ready"),
                Err(e) => tracing::warn!(
                    dependency = self.probe.name(),
                    problem = %e.problem,
                    fix = %e.fix,
                    "not ready"
                ),
            }
        }
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

/// Whether the server is ready to take traffic.
pub struct Readiness {
    serving: AtomicBool,
    stopping: AtomicBool,
    probes: OnceLock<Vec<CachedProbe>>,
    cache: Duration,
    timeout: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(Duration::from_secs(5), Duration::from_secs(3))
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("serving", &self.serving)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Probe results are reused for `cache`; one probe may take at most `timeout`.
    pub fn new(cache: Duration, timeout: Duration) -> Readiness {
        Readiness {
            serving: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            probes: OnceLock::new(),
            cache,
            timeout,
        }
    }

    /// The listener runs (`true`), or the server is shutting down (`false` after `true`).
    pub fn set(&self, ready: bool) {
        if !ready && self.serving.load(Ordering::SeqCst) {
            self.stopping.store(true, Ordering::SeqCst);
        }
        self.serving.store(ready, Ordering::SeqCst);
    }

    /// Whether the listener runs and the server is not shutting down (probes aside).
    pub fn is_ready(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }

    /// Install the dependency probes (once; later calls are ignored and return false).
    pub fn install_probes(&self, probes: Vec<Arc<dyn DependencyProbe>>) -> bool {
        let cached = probes
            .into_iter()
            .map(|probe| CachedProbe {
                probe,
                last: tokio::sync::Mutex::new(None),
            })
            .collect();
        self.probes.set(cached).is_ok()
    }

    /// The `/readyz` answer: status and JSON body.
    pub async fn evaluate(&self) -> (StatusCode, Value) {
        if !self.is_ready() {
            let (problem, fix) = if self.stopping.load(Ordering::SeqCst) {
                (
                    "the server is shutting down",
                    "none needed: send traffic to another replica",
                )
            } else {
                ("the server is starting", "wait until it listens")
            };
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "not ready", "reason": problem, "fix": fix }),
            );
        }
        let mut checks = Map::new();
        let mut failures = Vec::new();
        for cached in self.probes.get().map(Vec::as_slice).unwrap_or_default() {
            let name = cached.probe.name();
            match cached.result(self.cache, self.timeout).await {
                Ok(state) => {
                    checks.insert(name.into(), json!({ "ok": true, "state": state }));
                }
                Err(e) => {
                    checks.insert(
                        name.into(),
                        json!({ "ok": false, "problem": e.problem, "fix": e.fix }),
                    );
                    failures.push(e);
                }
            }
        }
        match failures.first() {
            None => (
                StatusCode::OK,
                json!({ "status": "ready", "checks": checks }),
            ),
            Some(first) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({
                    "status": "not ready",
                    "reason": first.problem,
                    "fix": first.fix,
                    "checks": checks,
                }),
            ),
        }
    }
}

/// `GET /healthz`: liveness only (never consults dependencies).
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: 200 when serving and every dependency probe passes; 503 with a reason
/// before the listener runs, while shutting down, or when a dependency fails.
pub async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    let (status, body) = readiness.evaluate().await;
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counting {
        calls: AtomicUsize,
        fail: AtomicBool,
    }

    #[async_trait::async_trait]
    impl DependencyProbe for Counting {
        fn name(&self) -> &'static str {
            "dep"
        }
        async fn probe(&self) -> Result<String, Unready> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.fail.load(Ordering::SeqCst) {
                Err(Unready {
                    problem: "dep down".into(),
                    fix: "start dep".into(),
                })
            } else {
                Ok("up".into())
            }
        }
    }

    #[tokio::test]
    async fn one_probe_in_flight_and_cached_results() {
        let probe = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            fail: AtomicBool::new(false),
        });
        let readiness = Arc::new(Readiness::new(
            Duration::from_millis(300),
            Duration::from_secs(1),
        ));
        assert!(readiness.install_probes(vec![probe.clone()]));
        assert_eq!(
            readiness.evaluate().await.0,
            StatusCode::SERVICE_UNAVAILABLE,
            "not serving yet"
        );
        readiness.set(true);
        let many: Vec<_> = (0..20)
            .map(|_| {
                let r = readiness.clone();
                tokio::spawn(async move { r.evaluate().await.0 })
            })
            .collect();
        for h in many {
            assert_eq!(h.await.unwrap(), StatusCode::OK);
        }
        assert_eq!(
            probe.calls.load(Ordering::SeqCst),
            1,
            "20 concurrent asks, one probe"
        );
        probe.fail.store(true, Ordering::SeqCst);
        assert_eq!(readiness.evaluate().await.0, StatusCode::OK, "cached");
        tokio::time::sleep(Duration::from_millis(350)).await;
        let (status, body) = readiness.evaluate().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["reason"], "dep down");
        assert_eq!(body["fix"], "start dep");
        readiness.set(false);
        let (_, body) = readiness.evaluate().await;
        assert_eq!(body["reason"], "the server is shutting down");
    }
}
