//! `[cluster]`: several replicas sharing their cross-request state through Redis (or Valkey).
//! Unset `redis_url` (the default): everything stays in memory in this one process, exactly as
//! a single replica needs it; `demo` and the tests need no Redis.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ConfigError;
use super::errors::invalid;

/// Cluster settings, used by `crate::cluster`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). A secret: it may
    /// carry the password. Unset: no cluster, all state in memory.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    pub key_prefix: String,
    /// This replica's name in Redis (routing of relay results and legacy SSE messages).
    /// Unset: the host name plus a random suffix, new at every start.
    pub replica_id: Option<String>,
    /// Milliseconds one Redis operation may take before the request needing it fails.
    pub op_timeout_ms: u64,
    /// Milliseconds a connection attempt to Redis may take.
    pub connect_timeout_ms: u64,
    /// Milliseconds a replica stays "alive" in Redis after its last heartbeat (it beats at a
    /// third of this); a legacy SSE stream held by a replica gone this long is reported gone.
    pub liveness_ttl_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            key_prefix: "kasm-mcp".into(),
            replica_id: None,
            op_timeout_ms: 2000,
            connect_timeout_ms: 2000,
            liveness_ttl_ms: 15_000,
        }
    }
}

/// A key prefix or replica id: 1–64 characters of `A-Z a-z 0-9 . _ - :`.
fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
}

impl ClusterConfig {
    /// Whether Redis is configured.
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }

    /// One Redis operation's time limit.
    pub fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.op_timeout_ms)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            let url = url.expose_secret();
            let parsed = url::Url::parse(url).ok();
            let ok = parsed.as_ref().is_some_and(|u| {
                (u.scheme() == "redis" || u.scheme() == "rediss") && u.host().is_some()
            });
            if !ok {
                return Err(invalid(
                    "cluster.redis_url",
                    "(not shown: it may hold a password)",
                    "use redis://[:password@]host[:port][/db] or rediss://… for TLS, e.g. redis://redis:6379/0",
                ));
            }
        }
        if !is_name(&self.key_prefix) {
            return Err(invalid(
                "cluster.key_prefix",
                &self.key_prefix,
                "use 1-64 characters of letters, digits, '.', '_', '-' or ':' (default kasm-mcp)",
            ));
        }
        if let Some(id) = &self.replica_id
            && !is_name(id)
        {
            return Err(invalid(
                "cluster.replica_id",
                id,
                "use 1-64 characters of letters, digits, '.', '_', '-' or ':', unique per replica (or leave it unset)",
            ));
        }
        for (key, value, max) in [
            ("cluster.op_timeout_ms", self.op_timeout_ms, 60_000),
            (
                "cluster.connect_timeout_ms",
                self.connect_timeout_ms,
                60_000,
            ),
        ] {
            if !(10..=max).contains(&value) {
                return Err(invalid(
                    key,
                    value.to_string(),
                    format!("use 10..={max} milliseconds"),
                ));
            }
        }
        if !(1000..=600_000).contains(&self.liveness_ttl_ms) {
            return Err(invalid(
                "cluster.liveness_ttl_ms",
                self.liveness_ttl_ms.to_string(),
                "use 1000..=600000 milliseconds (15000 is the default)",
            ));
        }
        Ok(())
    }
}
