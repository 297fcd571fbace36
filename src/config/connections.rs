//! `[connections]`: what one TCP connection may cost the server before a request completes —
//! how long it may take to send a request's headers, how long it may sit idle between
//! requests, how many may be open at once (in total and per client address), and how long a
//! refused request's unread body is read and discarded so the connection stays usable.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::errors::invalid;

/// Connection-level limits, enforced by the accept loop in `crate::app`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Seconds a client has to send a request's complete headers, counted from its first
    /// byte; the connection is closed when they are late.
    pub header_read_timeout_s: u64,
    /// Seconds a connection may stay open with no request in progress and no new bytes.
    pub idle_timeout_s: u64,
    /// Most connections open at once (also lowered to fit the process's file-descriptor limit).
    pub max_open: usize,
    /// Most connections open at once from one client address; 0 switches the cap off (behind
    /// a reverse proxy every client has the proxy's address).
    pub max_open_per_ip: usize,
    /// Milliseconds spent reading and discarding the body of a request refused before its body
    /// was read (401, 403, 404, 413, 429), so the client can send its next request on the same
    /// connection; a body that takes longer, or is larger than `server.max_body_bytes`, is
    /// answered with `Connection: close` instead.
    pub refused_body_read_ms: u64,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            header_read_timeout_s: 10,
            idle_timeout_s: 60,
            max_open: 4096,
            max_open_per_ip: 256,
            refused_body_read_ms: 1000,
        }
    }
}

impl ConnectionsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.header_read_timeout_s == 0 || self.header_read_timeout_s > 600 {
            return Err(invalid(
                "connections.header_read_timeout_s",
                self.header_read_timeout_s.to_string(),
                "use 1..=600 seconds (10 is a good value): without it a client can hold a connection open forever by sending its headers one byte at a time",
            ));
        }
        if self.idle_timeout_s == 0 || self.idle_timeout_s > 3600 {
            return Err(invalid(
                "connections.idle_timeout_s",
                self.idle_timeout_s.to_string(),
                "use 1..=3600 seconds (60 is a good value; keep it above your proxy's keep-alive timeout)",
            ));
        }
        if self.max_open == 0 {
            return Err(invalid(
                "connections.max_open",
                "0",
                "use at least 1 connection (4096 is the default)",
            ));
        }
        if self.max_open_per_ip > self.max_open {
            return Err(invalid(
                "connections.max_open_per_ip",
                self.max_open_per_ip.to_string(),
                format!(
                    "use at most connections.max_open ({}), or 0 to switch the per-address cap off",
                    self.max_open
                ),
            ));
        }
        if self.refused_body_read_ms > 60_000 {
            return Err(invalid(
                "connections.refused_body_read_ms",
                self.refused_body_read_ms.to_string(),
                "use 0..=60000 milliseconds (0 closes the connection after every early refusal)",
            ));
        }
        Ok(())
    }
}
