//! `[relay_limits]`: the relay endpoint's own request limits. `/relay/{ticket}` is not under
//! the per-IP limit of `[limits]` (session containers that share an egress address would share
//! it, so one session could starve another principal's result upload); instead a live ticket
//! has its own attempt budget, and requests naming unknown tickets have a per-address budget.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::errors::invalid;

/// Relay limits, enforced by `crate::transport::relay`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayLimitsConfig {
    /// Requests per second per client address that name an unknown, used or expired ticket;
    /// above it they get 429 and the connection is closed.
    pub unknown_ticket_per_second: u32,
    pub unknown_ticket_burst: u32,
    /// Requests per minute that one live ticket accepts (retries of the same upload).
    pub per_ticket_per_minute: u32,
    pub per_ticket_burst: u32,
}

impl Default for RelayLimitsConfig {
    fn default() -> Self {
        RelayLimitsConfig {
            unknown_ticket_per_second: 10,
            unknown_ticket_burst: 20,
            per_ticket_per_minute: 60,
            per_ticket_burst: 10,
        }
    }
}

impl RelayLimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "relay_limits.unknown_ticket_per_second",
                self.unknown_ticket_per_second,
            ),
            (
                "relay_limits.unknown_ticket_burst",
                self.unknown_ticket_burst,
            ),
            (
                "relay_limits.per_ticket_per_minute",
                self.per_ticket_per_minute,
            ),
            ("relay_limits.per_ticket_burst", self.per_ticket_burst),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    "0",
                    "use at least 1: the relay is reachable without a bearer token, so its limits cannot be switched off",
                ));
            }
        }
        Ok(())
    }
}
