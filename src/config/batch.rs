//! `[batch]`: how large a JSON-RPC batch (protocol revision 2025-03-26) may be and how many of
//! its items run at once, so that one request body cannot fan out into unbounded work.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::errors::invalid;

/// Batch limits, enforced by the router (`crate::mcp::McpServer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most messages in one batch; a longer batch is refused whole (HTTP 400, JSON-RPC -32600).
    pub max_items: usize,
    /// Most items of one batch handled at the same time.
    pub concurrency: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_items: 50,
            concurrency: 4,
        }
    }
}

impl BatchConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_items == 0 || self.max_items > 10_000 {
            return Err(invalid(
                "batch.max_items",
                self.max_items.to_string(),
                "use 1..=10000 (50 is the default; clients rarely batch more than a few messages)",
            ));
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err(invalid(
                "batch.concurrency",
                self.concurrency.to_string(),
                "use 1..=256 (4 is the default)",
            ));
        }
        Ok(())
    }
}
