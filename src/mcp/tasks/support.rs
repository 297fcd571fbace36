//! Whether a tool may run as a task (`execution.taskSupport` of `tools/list`).

use serde::Serialize;

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
