//! `[legacy_sse]`: how many messages may wait for a legacy HTTP+SSE client that does not read
//! its `/sse` stream, so an unread stream cannot make the server buffer without end.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::errors::invalid;

/// Legacy SSE limits, enforced by `crate::transport::legacy_sse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LegacySseConfig {
    /// Most messages queued for one `/sse` stream, counting the answers of requests still
    /// running. A POST to `/messages` beyond it is refused with 429; a notification that finds
    /// the queue full ends the stream (the client reconnects).
    pub queue_messages: usize,
}

impl Default for LegacySseConfig {
    fn default() -> Self {
        LegacySseConfig { queue_messages: 64 }
    }
}

impl LegacySseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_messages == 0 || self.queue_messages > 65_536 {
            return Err(invalid(
                "legacy_sse.queue_messages",
                self.queue_messages.to_string(),
                "use 1..=65536 (64 is the default)",
            ));
        }
        Ok(())
    }
}
