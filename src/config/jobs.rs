//! `[jobs]`: background commands (`execute_kasm_command` with `background: true`, or a
//! foreground command that outlives `yield_after_s`), their streamed output and their lifetime.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::errors::invalid;

/// Largest chunk the in-session wrapper may send at once (the relay buffers one per request).
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// Settings of the job store and the streaming wrapper, enforced by `crate::jobs` and the
/// exec tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Seconds a foreground `execute_kasm_command` waits before it moves the command to the
    /// background and returns the output so far with a `job_id` (below the 60 s after which
    /// common MCP clients give up).
    pub yield_after_s: u64,
    /// Seconds a finished job (its exit code and output window) stays readable.
    pub finished_ttl_s: u64,
    /// Bytes of the newest stdout, and separately stderr, kept in memory per job; the whole
    /// output is in the spill files inside the session.
    pub window_bytes: usize,
    /// Most running jobs one principal may hold; as many finished ones are kept for reading
    /// (the oldest go first).
    pub max_jobs_per_principal: usize,
    /// Largest output chunk the wrapper sends per stream and interval.
    pub chunk_bytes: usize,
    /// Milliseconds between the wrapper's output chunks.
    pub chunk_interval_ms: u64,
    /// Default seconds `kill_command` waits after the first signal before SIGKILL.
    pub kill_grace_s: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            yield_after_s: 45,
            finished_ttl_s: 3600,
            window_bytes: 128 * 1024,
            max_jobs_per_principal: 32,
            chunk_bytes: 64 * 1024,
            chunk_interval_ms: 300,
            kill_grace_s: 5,
        }
    }
}

impl JobsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.yield_after_s == 0 || self.yield_after_s > 3600 {
            return Err(invalid(
                "jobs.yield_after_s",
                self.yield_after_s.to_string(),
                "use 1 to 3600 seconds; keep it below your clients' request timeout (often 60 s)",
            ));
        }
        if self.finished_ttl_s == 0 {
            return Err(invalid(
                "jobs.finished_ttl_s",
                "0",
                "use at least 1 second so a finished job's exit code can be read",
            ));
        }
        if self.window_bytes < 1024 || self.window_bytes > 64 * 1024 * 1024 {
            return Err(invalid(
                "jobs.window_bytes",
                self.window_bytes.to_string(),
                "use 1024 to 67108864 bytes (the in-memory window per stream and job)",
            ));
        }
        if self.max_jobs_per_principal == 0 {
            return Err(invalid(
                "jobs.max_jobs_per_principal",
                "0",
                "use at least 1",
            ));
        }
        if self.chunk_bytes < 1024 || self.chunk_bytes > MAX_CHUNK_BYTES {
            return Err(invalid(
                "jobs.chunk_bytes",
                self.chunk_bytes.to_string(),
                format!("use 1024 to {MAX_CHUNK_BYTES} bytes"),
            ));
        }
        if !(100..=10_000).contains(&self.chunk_interval_ms) {
            return Err(invalid(
                "jobs.chunk_interval_ms",
                self.chunk_interval_ms.to_string(),
                "use 100 to 10000 milliseconds",
            ));
        }
        if self.kill_grace_s > 600 {
            return Err(invalid(
                "jobs.kill_grace_s",
                self.kill_grace_s.to_string(),
                "use 0 to 600 seconds",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        JobsConfig::default().validate().unwrap();
        let bad = |c: JobsConfig| c.validate().unwrap_err().to_string();
        let e = bad(JobsConfig {
            yield_after_s: 0,
            ..JobsConfig::default()
        });
        assert!(e.contains("jobs.yield_after_s"), "{e}");
        let e = bad(JobsConfig {
            chunk_bytes: 10,
            ..JobsConfig::default()
        });
        assert!(e.contains("jobs.chunk_bytes"), "{e}");
        let e = bad(JobsConfig {
            window_bytes: 1,
            ..JobsConfig::default()
        });
        assert!(e.contains("jobs.window_bytes"), "{e}");
    }
}
