//! Rate limits (governor, GCRA): per client IP before authentication, and per principal for
//! tool calls after it. Refusals are 429 with `Retry-After`. A configured rate of 0 switches
//! that limit off.
//!
//! With `[cluster]` ([`RateLimits::shared`]) the same GCRA runs in Redis
//! (`crate::cluster::GlobalLimit`), so all replicas together allow the configured figure. While
//! Redis does not answer, each replica falls back to its own in-memory limiter (at most N times
//! the figure for N replicas, never unlimited) and says so in the log.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::json_error;
use super::refuse::{Decide, Decision};
use crate::cluster::{Cluster, GlobalLimit, Verdict};
use crate::config::LimitsConfig;

/// The keyed limiters.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_principal: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    /// `[cluster]`: the same limits, counted in Redis for all replicas.
    global_ip: Option<GlobalLimit>,
    global_principal: Option<GlobalLimit>,
}

impl RateLimits {
    pub fn from_config(limits: &LimitsConfig) -> Self {
        let per_ip = NonZeroU32::new(limits.per_ip_per_second).map(|rate| {
            let burst = NonZeroU32::new(limits.per_ip_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let per_principal = NonZeroU32::new(limits.per_principal_per_minute).map(|rate| {
            let burst = NonZeroU32::new(limits.per_principal_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        RateLimits {
            per_ip,
            per_principal,
            clock: DefaultClock::default(),
            global_ip: None,
            global_principal: None,
        }
    }

    /// [`RateLimits::from_config`] counted in Redis, so the limits hold across replicas.
    pub fn shared(limits: &LimitsConfig, cluster: &Cluster) -> Self {
        let mut local = RateLimits::from_config(limits);
        let global = |name: &str, rate: u32, burst: u32, per: Duration| {
            (rate > 0).then(|| {
                let burst = if burst == 0 { rate } else { burst };
                GlobalLimit::new(cluster.redis(), name, per / rate, burst)
            })
        };
        local.global_ip = global(
            "ip",
            limits.per_ip_per_second,
            limits.per_ip_burst,
            Duration::from_secs(1),
        );
        local.global_principal = global(
            "principal",
            limits.per_principal_per_minute,
            limits.per_principal_burst,
            Duration::from_secs(60),
        );
        local
    }

    /// One request from `ip`, across replicas with `[cluster]`; `Err(wait)` when over.
    pub async fn check_ip_shared(&self, ip: IpAddr) -> Result<(), Duration> {
        if let Some(global) = &self.global_ip {
            match global.check(&ip.to_string(), 1).await {
                Ok(Verdict::Allowed) => return Ok(()),
                Ok(Verdict::Wait(wait)) => return Err(wait),
                Err(e) => {
                    tracing::warn!(error = %e, "per-IP rate limit counted locally: Redis did not answer");
                }
            }
        }
        self.check_ip(ip)
    }

    /// [`RateLimits::check_principal_n`] across replicas with `[cluster]`.
    pub async fn check_principal_n_shared(
        &self,
        name: &str,
        n: u32,
    ) -> Result<(), PrincipalRefusal> {
        if let (Some(global), Some(_)) = (&self.global_principal, NonZeroU32::new(n)) {
            if n > global.burst() {
                return Err(PrincipalRefusal::NeverFits(global.burst()));
            }
            match global.check(name, n).await {
                Ok(Verdict::Allowed) => return Ok(()),
                Ok(Verdict::Wait(wait)) => return Err(PrincipalRefusal::Wait(wait)),
                Err(e) => {
                    tracing::warn!(error = %e, "per-principal rate limit counted locally: Redis did not answer");
                }
            }
        }
        self.check_principal_n(name, n)
    }

    /// Whether [`RateLimits::check_ip_shared`] asks Redis (`[cluster]`), i.e. has to wait.
    fn ip_limit_is_shared(&self) -> bool {
        self.global_ip.is_some()
    }

    /// One request from `ip`; `Err(wait)` when over the limit.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.per_ip {
            Some(limiter) => limiter
                .check_key(&ip)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
            None => Ok(()),
        }
    }

    /// One tool call by the principal named `name`; `Err(wait)` when over the limit.
    pub fn check_principal(&self, name: &str) -> Result<(), Duration> {
        match &self.per_principal {
            Some(limiter) => limiter
                .check_key(&name.to_owned())
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
            None => Ok(()),
        }
    }

    /// `n` metered calls at once by the principal named `name`, all or none: nothing is spent
    /// when they do not all fit, so a refused batch leaves the budget as it was.
    pub fn check_principal_n(&self, name: &str, n: u32) -> Result<(), PrincipalRefusal> {
        let (Some(limiter), Some(n)) = (&self.per_principal, NonZeroU32::new(n)) else {
            return Ok(());
        };
        match limiter.check_key_n(&name.to_owned(), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(PrincipalRefusal::Wait(
                not_until.wait_time_from(self.clock.now()),
            )),
            Err(governor::InsufficientCapacity(burst)) => Err(PrincipalRefusal::NeverFits(burst)),
        }
    }

    /// Forget keys whose limits are back to full (bounds memory; call periodically).
    pub fn retain_recent(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_principal {
            l.retain_recent();
        }
    }
}

/// Why a group of metered calls was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRefusal {
    /// Over the limit now; this long until they would fit.
    Wait(Duration),
    /// More calls than the burst allows at once: they can never fit together.
    NeverFits(u32),
}

/// A 429 response with `Retry-After` in whole seconds (at least 1).
pub fn too_many_requests(wait: Duration, what: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("rate limit exceeded ({what}); retry in {seconds} s"),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The 429 of the per-IP limit (and its counter).
fn per_ip_refusal(wait: Duration) -> Response {
    crate::telemetry::rate_limited("ip");
    too_many_requests(wait, "per client address")
}

/// The per-client-IP limit (runs before authentication, in a
/// [`RefuseLayer`](super::refuse::RefuseLayer)). Requests without a peer address
/// (`ConnectInfo`) are not limited. Decided in place from the in-memory limiter; with
/// `[cluster]` the count is in Redis, so the request waits for it.
#[derive(Clone)]
pub struct PerIp {
    limits: Arc<RateLimits>,
}

impl PerIp {
    pub fn new(limits: Arc<RateLimits>) -> Self {
        PerIp { limits }
    }
}

impl Decide for PerIp {
    fn decide(&self, request: Request) -> Decision {
        let ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let Some(ip) = ip else {
            return Decision::Pass(request);
        };
        if self.limits.ip_limit_is_shared() {
            let limits = self.limits.clone();
            return Decision::Wait(Box::pin(async move {
                match limits.check_ip_shared(ip).await {
                    Ok(()) => Ok(request),
                    Err(wait) => Err(per_ip_refusal(wait)),
                }
            }));
        }
        match self.limits.check_ip(ip) {
            Ok(()) => Decision::Pass(request),
            Err(wait) => Decision::Refuse(per_ip_refusal(wait)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_wait() {
        let limits = RateLimits::from_config(&LimitsConfig {
            per_ip_per_second: 1,
            per_ip_burst: 3,
            per_principal_per_minute: 1,
            per_principal_burst: 2,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check_ip(ip).is_ok());
        }
        let wait = limits.check_ip(ip).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(limits.check_ip(other).is_ok(), "limits are per key");
        assert!(limits.check_principal("a").is_ok());
        assert!(limits.check_principal("a").is_ok());
        assert!(limits.check_principal("a").is_err());
        assert!(limits.check_principal("b").is_ok());
    }

    #[test]
    fn a_group_that_does_not_fit_spends_nothing() {
        let limits = RateLimits::from_config(&LimitsConfig {
            per_ip_per_second: 1,
            per_ip_burst: 1,
            per_principal_per_minute: 1,
            per_principal_burst: 5,
        });
        assert_eq!(
            limits.check_principal_n("a", 6),
            Err(PrincipalRefusal::NeverFits(5))
        );
        assert!(limits.check_principal_n("a", 3).is_ok());
        assert!(matches!(
            limits.check_principal_n("a", 3),
            Err(PrincipalRefusal::Wait(_))
        ));
        // The refused group of 3 spent nothing: 2 still fit.
        assert!(limits.check_principal_n("a", 2).is_ok());
        assert!(limits.check_principal("a").is_err());
    }

    #[test]
    fn zero_rate_disables() {
        let limits = RateLimits::from_config(&LimitsConfig {
            per_ip_per_second: 0,
            per_ip_burst: 0,
            per_principal_per_minute: 0,
            per_principal_burst: 0,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..1000 {
            assert!(limits.check_ip(ip).is_ok());
            assert!(limits.check_principal("a").is_ok());
        }
    }

    #[tokio::test]
    async fn the_layer_answers_429_with_retry_after_once_an_address_is_over() {
        use crate::http::refuse::RefuseLayer;
        use axum::body::Body;
        use tower::{Layer, ServiceExt};
        let limits = Arc::new(RateLimits::from_config(&LimitsConfig {
            per_ip_per_second: 1,
            per_ip_burst: 2,
            per_principal_per_minute: 0,
            per_principal_burst: 0,
        }));
        let service =
            RefuseLayer::new(PerIp::new(limits)).layer(tower::service_fn(|_: Request| async {
                Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
            }));
        let from = |peer: &str| {
            let mut request = Request::new(Body::empty());
            request
                .extensions_mut()
                .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            request
        };
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let response = service.clone().oneshot(from("10.0.0.1:1")).await.unwrap();
            statuses.push(response.status());
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(response.headers()[header::RETRY_AFTER], "1");
            }
        }
        assert_eq!(
            statuses,
            [
                StatusCode::OK,
                StatusCode::OK,
                StatusCode::TOO_MANY_REQUESTS
            ]
        );
        let other = service.clone().oneshot(from("10.0.0.2:1")).await.unwrap();
        assert_eq!(other.status(), StatusCode::OK, "limits are per address");
        let unknown = service.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(
            unknown.status(),
            StatusCode::OK,
            "no peer address: not limited"
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        let r = too_many_requests(Duration::from_millis(1200), "x");
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
