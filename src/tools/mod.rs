//! The tool catalog: one file per tool group, each mapping arguments → policy → Kasm client
//! → result. Tools never see HTTP; command output and file bytes come back through the relay.
//!
//! Groups: `sessions/` (one file per job: lifecycle, status, observation, stats), `exec`
//! (commands; `exec_text` writes their results for a model to read), `desktop/`
//! (screenshots, mouse and keyboard, windows on the session's X display), `files` (read,
//! write, list; `files_text` writes their results for a model), `workspaces` (images and
//! image-name resolution),
//! `users` (Kasm user admin), `diagnose` (API-key permission probes). Each tool's argument
//! and result types derive `JsonSchema`: `schema` turns them into the input/output schemas
//! and parses arguments against them, so a new parameter is a new field with a doc comment.
//! `approval` runs the command and environment-name policy at the start of exec and asks
//! the user for approval (elicitation) when a rule says `confirm`.
//! `access` decides which session a principal may touch (with the owners `ownership`
//! caches), `session_view` is the model-facing session record, `transfer` runs a relay
//! wrapper and waits for its result (`relay_loss` says in words why a result is lost or
//! unreadable), `support` holds the shared plumbing (`FnTool`, `ToolError`, typed results),
//! `docs` renders `docs/TOOLS.md` (with the exec result examples of `exec_examples`),
//! `resources` exposes read-only views as MCP resources.
mod access;
mod approval;
mod desktop;
mod diagnose;
pub mod docs;
mod exec;
pub mod exec_examples;
mod exec_text;
mod files;
mod files_text;
mod jobs;
pub mod ownership;
pub mod reaper;
mod relay_loss;
pub mod resources;
mod roots;
mod schema;
mod session_view;
mod sessions;
mod support;
mod transfer;
mod usage_guard;
mod users;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use crate::config::DesktopConfig;
use crate::config::{ImagesConfig, PolicyConfig, QuotasConfig};
use crate::kasm::KasmApi;
use crate::mcp::Tool;
use crate::relay::Relay;
use crate::usage::UsageStore;

pub use jobs::JobUploads;
pub use support::ToolError;

/// What the tools need to run.
#[derive(Clone)]
pub struct ToolDeps {
    pub kasm: Arc<dyn KasmApi>,
    /// None when no relay URL is configured: exec is dispatch-only, file tools explain why.
    pub relay: Option<Arc<Relay>>,
    pub policy: PolicyConfig,
    /// The Kasm server's base URL, for the absolute session URLs shown to the model.
    pub kasm_base_url: String,
    /// The Kasm user principals without their own `kasm_user_id` act as (`KASM_USER_ID`).
    pub default_user_id: Option<String>,
    /// Longest wait for a new session to reach `running`.
    pub session_start_timeout: Duration,
    /// Largest MCP request body the server accepts (`server.max_body_bytes`): file content
    /// written by `write_kasm_file` travels base64 inside it, which caps the write size.
    pub max_request_bytes: usize,
    /// The images each role may launch (`[images]`).
    pub images: ImagesConfig,
    /// Per-principal caps and session lifetimes (`[quotas]`).
    pub quotas: QuotasConfig,
    /// What each principal holds now, and the sessions created through this server.
    pub usage: Arc<dyn UsageStore>,
    /// Who owns which session, learned once per session (shared by every clone).
    pub owners: Arc<ownership::OwnerCache>,
    /// How the desktop tools reach a session's display (`[desktop]`).
    pub desktop: DesktopConfig,
    /// Background command jobs (`crate::jobs`), and their settings (`[jobs]`).
    pub jobs: Arc<dyn crate::jobs::JobStore>,
    pub jobs_config: crate::config::JobsConfig,
    /// `[cluster]`: the `[quotas]` caps counted in Redis (concurrency caps as leases, the
    /// session cap as a shared count), so they are global across replicas (`None`: per
    /// process).
    pub shared_quotas: Option<crate::cluster::SharedQuotas>,
}

impl std::fmt::Debug for ToolDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolDeps")
            .field("relay", &self.relay)
            .field("policy", &self.policy)
            .field("kasm_base_url", &self.kasm_base_url)
            .field("default_user_id", &self.default_user_id)
            .field("session_start_timeout", &self.session_start_timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("desktop", &self.desktop)
            .finish_non_exhaustive()
    }
}

/// Every tool, in a fixed order (sessions, commands and files, workspaces, users).
pub fn catalog(deps: ToolDeps) -> Vec<Arc<dyn Tool>> {
    let deps = Arc::new(deps);
    let mut tools = Vec::new();
    tools.extend(sessions::tools(&deps));
    tools.extend(exec::tools(&deps));
    tools.extend(jobs::tools(&deps));
    tools.extend(desktop::tools(&deps));
    tools.extend(files::tools(&deps));
    tools.extend(workspaces::tools(&deps));
    tools.extend(users::tools(&deps));
    tools.extend(diagnose::tools(&deps));
    tools
}
