//! MCP protocol semantics: JSON-RPC envelope, lifecycle, version negotiation, registries.
//! Knows nothing about HTTP (no axum here).

pub mod tool;

pub use tool::{
    CallContext, Content, LogLevel, Notifier, Tool, ToolAnnotations, ToolOutput, ToolSpec,
};
pub mod server;

pub use server::{Handled, McpServer, RequestMeta};
