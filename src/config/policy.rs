//! `[policy]`: what tools may do inside sessions — the allowed roots of the file tools, command
//! timeouts and output caps, the largest file, the container users exec may run as, the
//! command rules (`[policy.commands]`, in `commands.rs`) and the environment names exec may
//! not set (`[policy.env]`).

use serde::{Deserialize, Serialize};

use super::commands::CommandsConfig;
use super::errors::{ConfigError, invalid};
use crate::policy::env::EnvNamePolicy;

/// The largest `policy.max_timeout_s` accepted: one day. Deadlines are computed from it, so
/// it must stay far from `u64::MAX`.
pub const MAX_TIMEOUT_S: u64 = 86_400;

/// What tools may do inside sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Absolute directories inside sessions that file tools may touch.
    pub allowed_roots: Vec<String>,
    /// Default and maximum command timeout (`max_timeout_s` at most [`MAX_TIMEOUT_S`]).
    pub default_timeout_s: u64,
    pub max_timeout_s: u64,
    /// Default and maximum bytes of stdout (and, separately, stderr) returned.
    pub default_max_output_bytes: usize,
    pub max_output_bytes: usize,
    /// Largest file read or written through the relay.
    pub max_file_bytes: usize,
    /// Container users `execute_kasm_command` may run as (`user` argument). Empty: only the
    /// image's default user (the argument is refused).
    pub allowed_exec_users: Vec<String>,
    /// `[policy.commands]`: command rules (see config/policy.example.toml).
    pub commands: CommandsConfig,
    /// `[policy.env]`: environment variable names callers may not set.
    pub env: EnvNamePolicy,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            allowed_roots: vec!["/home/kasm-user".into()],
            default_timeout_s: 60,
            max_timeout_s: 600,
            default_max_output_bytes: 64 * 1024,
            max_output_bytes: 1024 * 1024,
            max_file_bytes: 16 * 1024 * 1024,
            allowed_exec_users: Vec::new(),
            commands: CommandsConfig::default(),
            env: EnvNamePolicy::default(),
        }
    }
}

impl PolicyConfig {
    /// The checks of this section that need no I/O.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let p = self;
        if p.allowed_roots.is_empty() {
            return Err(invalid(
                "policy.allowed_roots (ALLOWED_ROOTS)",
                "",
                "name at least one absolute directory, e.g. /home/kasm-user",
            ));
        }
        for root in &p.allowed_roots {
            // The same check as every file path (absolute, no `..`, no NUL or other control
            // character: a newline would split the root in two inside the container).
            if let Err(e) = crate::policy::paths::normalize_absolute(root) {
                return Err(invalid(
                    "policy.allowed_roots (ALLOWED_ROOTS)",
                    root.escape_debug().to_string(),
                    format!(
                        "each root must be an absolute path without `..` or control characters, e.g. /home/kasm-user ({e})"
                    ),
                ));
            }
        }
        if p.max_timeout_s == 0 || p.max_timeout_s > MAX_TIMEOUT_S {
            return Err(invalid(
                "policy.max_timeout_s",
                p.max_timeout_s.to_string(),
                format!(
                    "use 1..={MAX_TIMEOUT_S} (one day); a command that must run longer should be started in the background and polled"
                ),
            ));
        }
        if p.default_timeout_s == 0 || p.default_timeout_s > p.max_timeout_s {
            return Err(invalid(
                "policy.default_timeout_s",
                p.default_timeout_s.to_string(),
                format!("use 1..={} (policy.max_timeout_s)", p.max_timeout_s),
            ));
        }
        if p.default_max_output_bytes == 0 || p.default_max_output_bytes > p.max_output_bytes {
            return Err(invalid(
                "policy.default_max_output_bytes",
                p.default_max_output_bytes.to_string(),
                format!("use 1..={} (policy.max_output_bytes)", p.max_output_bytes),
            ));
        }
        p.env
            .validate()
            .map_err(|fix| invalid("policy.env", "", fix))?;
        Ok(())
    }
}
