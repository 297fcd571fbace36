//! `[limits]`: request-rate limits per client IP and per principal.

use serde::{Deserialize, Serialize};

/// Request-rate limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per second per client IP, before authentication.
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    /// Tool calls per minute per principal.
    pub per_principal_per_minute: u32,
    pub per_principal_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            per_ip_per_second: 50,
            per_ip_burst: 100,
            per_principal_per_minute: 600,
            per_principal_burst: 60,
        }
    }
}
