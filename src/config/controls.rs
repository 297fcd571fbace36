//! `[images]`, `[quotas]` and `[audit]`: which workspace images each role may launch, the
//! per-principal caps and the lifetimes of sessions created through this server, and where
//! audit events go. Absent limits mean "no limit"; every set limit must be at least 1.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::errors::{ConfigError, invalid};
use crate::policy::Role;

/// `[images]`: the images each role may launch and see in `get_available_workspaces`, by
/// friendly name (case-insensitive) or image id. A role not listed may use every image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    pub viewer: Option<Vec<String>>,
    pub operator: Option<Vec<String>>,
    pub admin: Option<Vec<String>>,
}

impl ImagesConfig {
    /// The allow-list for `role` (`None`: every image).
    pub fn allowed_for(&self, role: Role) -> Option<&[String]> {
        match role {
            Role::Viewer => self.viewer.as_deref(),
            Role::Operator => self.operator.as_deref(),
            Role::Admin => self.admin.as_deref(),
        }
    }
}

/// `[quotas]`: per-principal caps and session lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasConfig {
    /// Sessions a principal may have created through this server and not yet destroyed.
    pub max_sessions: Option<u32>,
    /// Tool calls a principal may have running at once.
    pub max_concurrent_calls: Option<u32>,
    /// `execute_kasm_command` calls a principal may have running at once.
    pub max_concurrent_exec: Option<u32>,
    /// Relay round trips (exec and file transfers, each waiting on its tickets) at once.
    pub max_pending_tickets: Option<u32>,
    /// Destroy a session created through this server after this long without a tool call.
    pub session_idle_timeout_s: Option<u64>,
    /// Destroy a session created through this server this long after its creation,
    /// whatever keepalives say.
    pub session_max_lifetime_s: Option<u64>,
    /// How often the reaper looks for expired sessions.
    pub reaper_interval_s: u64,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        QuotasConfig {
            max_sessions: None,
            max_concurrent_calls: None,
            max_concurrent_exec: None,
            max_pending_tickets: None,
            session_idle_timeout_s: None,
            session_max_lifetime_s: None,
            reaper_interval_s: 30,
        }
    }
}

/// Where audit events go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSinkKind {
    /// A `tracing` event of target `audit` in the server log (default).
    #[default]
    Log,
    /// One JSON object per line on stdout.
    Stdout,
    /// One JSON object per line appended to `audit.file`.
    File,
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub sink: AuditSinkKind,
    /// The append-only file of `sink = "file"`.
    pub file: Option<PathBuf>,
}

fn at_least_one(key: &'static str, value: Option<u64>) -> Result<(), ConfigError> {
    match value {
        Some(0) => Err(invalid(
            key,
            "0",
            "use at least 1, or leave the key out for no limit",
        )),
        _ => Ok(()),
    }
}

impl QuotasConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("quotas.max_sessions", self.max_sessions.map(u64::from))?;
        at_least_one(
            "quotas.max_concurrent_calls",
            self.max_concurrent_calls.map(u64::from),
        )?;
        at_least_one(
            "quotas.max_concurrent_exec",
            self.max_concurrent_exec.map(u64::from),
        )?;
        at_least_one(
            "quotas.max_pending_tickets",
            self.max_pending_tickets.map(u64::from),
        )?;
        at_least_one("quotas.session_idle_timeout_s", self.session_idle_timeout_s)?;
        at_least_one("quotas.session_max_lifetime_s", self.session_max_lifetime_s)?;
        at_least_one("quotas.reaper_interval_s", Some(self.reaper_interval_s))
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.sink == AuditSinkKind::File && self.file.is_none() {
            return Err(invalid(
                "audit.file",
                "",
                "audit.sink = \"file\" needs audit.file, the path of the append-only audit log",
            ));
        }
        Ok(())
    }
}
