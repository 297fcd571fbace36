//! `[legacy_sse]`: how many messages may wait for a legacy HTTP+SSE client that does not read
//! its `/sse` stream, so an unread stream cannot make the server buffer without end, and how
//! many `/sse` streams may be open at once (in all, and per principal).

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
    /// Most `/sse` streams open at once, all principals together (503 beyond).
    pub max_streams: usize,
    /// Most `/sse` streams one principal may hold open, so that one token cannot take all
    /// of `max_streams` (429 beyond).
    pub max_streams_per_principal: usize,
}

impl Default for LegacySseConfig {
    fn default() -> Self {
        LegacySseConfig {
            queue_messages: 64,
            max_streams: 1024,
            max_streams_per_principal: 32,
        }
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
        if self.max_streams == 0 || self.max_streams > 1_000_000 {
            return Err(invalid(
                "legacy_sse.max_streams",
                self.max_streams.to_string(),
                "use 1..=1000000 (1024 is the default); each open stream holds one connection and one open file",
            ));
        }
        if self.max_streams_per_principal == 0 || self.max_streams_per_principal > self.max_streams
        {
            return Err(invalid(
                "legacy_sse.max_streams_per_principal",
                self.max_streams_per_principal.to_string(),
                "use 1..=legacy_sse.max_streams (32 is the default)",
            ));
        }
        Ok(())
    }
}
