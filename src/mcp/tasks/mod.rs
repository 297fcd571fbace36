//! MCP tasks: a `tools/call` that answers at once with a task handle and runs in the
//! background, for both eras — the 2025-11-25 tasks utility (`tasks` capability, a `task`
//! param on `tools/call`, `tasks/get`, `tasks/result`, `tasks/list`, `tasks/cancel`,
//! `notifications/tasks/status`) and the 2026-07-28 extension `io.modelcontextprotocol/tasks`
//! (server-directed `resultType: "task"`, `tasks/get` with the result inline, `tasks/update`,
//! `tasks/cancel`).
//!
//! Every task is a plain serde record ([`record::TaskRecord`]) in a [`store::TaskStore`]
//! (in memory by default: [`memory::MemoryTaskStore`]), written before the creating response
//! is sent and bound to the principal that created it (others get "not found"). Cancellation
//! is a flag in the store that the running call observes ([`runner`]), so a shared store lets
//! any replica cancel a task another replica runs. With `[cluster]` the store is
//! [`redis::RedisTaskStore`] (records in Redis, changes announced to every replica).

pub mod input;
pub mod memory;
pub mod methods;
pub mod record;
pub mod redis;
pub mod request;
pub mod runner;
pub mod store;
pub mod support;
pub mod wire;

pub use memory::MemoryTaskStore;
pub use record::{Era, TaskId, TaskOutcome, TaskRecord, TaskStatus};
pub use redis::RedisTaskStore;
pub use store::{CancelError, TaskStore, TaskStoreError};
pub use support::TaskSupport;

/// The extension id of the 2026-07-28 tasks extension.
pub const EXTENSION_ID: &str = "io.modelcontextprotocol/tasks";
