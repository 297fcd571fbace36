//! The `[lifecycle]` section: how long graceful shutdown waits for in-flight tool calls, and
//! how readiness (`/readyz`) probes Kasm (cache lifetime and per-probe timeout).

use serde::{Deserialize, Serialize};

use super::errors::{ConfigError, invalid};

/// Start-up, readiness and shutdown behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Seconds graceful shutdown (SIGTERM/SIGINT) waits for in-flight tool calls to finish
    /// before it cuts them off (a task's call cut off gets up to 3 s more to record that). Keep
    /// it at least 5 s below the orchestrator's kill timeout (Docker: 10 s unless
    /// `stop_grace_period` says otherwise; Kubernetes: terminationGracePeriodSeconds).
    pub shutdown_grace_s: u64,
    /// Milliseconds a Kasm readiness probe result is reused by `/readyz` (0: probe on every
    /// request; never more than one probe is in flight either way).
    pub readiness_cache_ms: u64,
    /// Milliseconds one readiness probe of Kasm may take before `/readyz` reports Kasm as
    /// unreachable.
    pub readiness_timeout_ms: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            shutdown_grace_s: 10,
            readiness_cache_ms: 5000,
            readiness_timeout_ms: 3000,
        }
    }
}

impl LifecycleConfig {
    /// Check the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.shutdown_grace_s) {
            return Err(invalid(
                "lifecycle.shutdown_grace_s",
                self.shutdown_grace_s.to_string(),
                "use 1 to 3600 seconds (and less than the orchestrator's kill timeout)",
            ));
        }
        if self.readiness_cache_ms > 60_000 {
            return Err(invalid(
                "lifecycle.readiness_cache_ms",
                self.readiness_cache_ms.to_string(),
                "use 0 to 60000 ms: a longer cache hides a Kasm outage from the load balancer",
            ));
        }
        if !(100..=60_000).contains(&self.readiness_timeout_ms) {
            return Err(invalid(
                "lifecycle.readiness_timeout_ms",
                self.readiness_timeout_ms.to_string(),
                "use 100 to 60000 ms (below the load balancer's probe timeout)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_are_enforced() {
        assert!(LifecycleConfig::default().validate().is_ok());
        let bad = LifecycleConfig {
            shutdown_grace_s: 0,
            ..LifecycleConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("lifecycle.shutdown_grace_s"), "{err}");
        let bad = LifecycleConfig {
            readiness_cache_ms: 600_000,
            ..LifecycleConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = LifecycleConfig {
            readiness_timeout_ms: 5,
            ..LifecycleConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
