//! `[runtime]`: the async runtime `kasm-mcp serve` runs on (its worker threads).

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::errors::invalid;

/// Most worker threads accepted: far above any core count this server is deployed on.
const MAX_WORKER_THREADS: usize = 1024;

/// The runtime's settings, read by `launch::run_async_on` before the server starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Threads that run requests; 0 (the default) = one per CPU core (or
    /// `TOKIO_WORKER_THREADS` if set).
    pub worker_threads: usize,
}

impl RuntimeConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.worker_threads > MAX_WORKER_THREADS {
            return Err(invalid(
                "runtime.worker_threads",
                self.worker_threads.to_string(),
                "use 0 (one per CPU core, the default) or 1..=1024",
            ));
        }
        Ok(())
    }
}
