//! MCP protocol semantics: JSON-RPC envelope, lifecycle, version negotiation, registries,
//! both protocol eras (initialize-based and stateless 2026-07-28), progress, logging,
//! cancellation and server→client requests. Knows nothing about HTTP (no axum here).

pub mod call;
pub mod client_requests;
pub mod completion;
pub mod dispatch;
pub mod jsonrpc;
pub mod lifecycle;
pub mod meta;
pub mod method;
pub mod modern;
pub mod mrtr;
pub mod pagination;
pub mod prompts;
pub mod registry;
pub mod replicas;
pub mod resources;
pub mod server;
pub mod state;
pub mod tasks;
pub mod tool;
pub mod tools_list;

pub use client_requests::{ClientRequestError, ClientRequester};
pub use completion::{Completion, CompletionProvider, CompletionRef, CompletionRequest};
pub use meta::{Origin, RequestMeta};
pub use method::Method;
pub use prompts::{
    PromptArgument, PromptError, PromptInfo, PromptMessage, PromptProvider, PromptResult,
    PromptRole,
};
pub use resources::{
    ResourceContents, ResourceError, ResourceInfo, ResourceProvider, ResourceTemplateInfo,
};
pub use server::{BatchLimits, Handled, McpServer, McpServerBuilder};
pub use tasks::TaskSupport;
pub use tool::{
    CallContext, CallResult, Content, FlatKeys, LogLevel, Notifier, RawToolResult, Scalar, Tool,
    ToolAnnotations, ToolOutput, ToolSpec,
};
pub use tools_list::RawResponse;

#[cfg(test)]
mod tests;
