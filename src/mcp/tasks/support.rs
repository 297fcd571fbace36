//! Whether a tool may run as a task (`execution.taskSupport` of `tools/list`), and the way a
//! tool running as a task asks its client for input ([`TaskInput`]).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::mcp::client_requests::ClientRequestError;

/// How a call running as a 2026-07-28 task asks the client for input: the request is
/// published on the task (`input_required`, `inputRequests`) and the answer arrives with
/// `tasks/update`.
#[async_trait]
pub trait TaskInput: Send + Sync + std::fmt::Debug {
    /// Whether the creating request declared `capability`.
    fn declares(&self, capability: &str) -> bool;
    /// A fresh key for a request that names none (`input-1`, `input-2`, …).
    fn next_key(&self) -> String;
    /// Publish the request under `key` and wait for its answer.
    async fn request(
        &self,
        key: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError>;
}

/// A tool's task support (2025-11-25 `execution.taskSupport`; in 2026-07-28 it decides
/// whether the server makes a task when the client declares the extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskSupport {
    /// Never a task (the default; not shown in `tools/list`).
    #[default]
    Forbidden,
    /// A task when the client asks (2025-11-25) or declares the extension (2026-07-28).
    Optional,
    /// Only as a task.
    Required,
}

impl TaskSupport {
    /// Whether the tool may run as a task at all.
    pub fn allows_tasks(self) -> bool {
        self != TaskSupport::Forbidden
    }

    /// The wire value (`"forbidden"`, `"optional"`, `"required"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSupport::Forbidden => "forbidden",
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        }
    }
}
