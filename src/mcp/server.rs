//! The JSON-RPC router: one entry point, [`McpServer::handle`], used by every transport.
//!
//! CONTRACT (stub written before the implementation; the protocol work fills it in and may
//! extend it additively): transports parse HTTP, authenticate, then call `handle` with one
//! JSON-RPC message (or a 2025-03-26 batch array) and a [`RequestMeta`]. Notifications that
//! belong to the request (progress, log messages) are sent on `meta.notifications` while the
//! future runs; the transport decides whether to stream them (SSE) or not.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::mcp::tool::Tool;
use crate::policy::Principal;

/// What the transport knows about the HTTP request that carried a message.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub principal: Principal,
    /// Notifications related to this request (progress, `notifications/message`).
    pub notifications: mpsc::UnboundedSender<Value>,
    /// Transport-level session key (legacy SSE connection id or Streamable HTTP session id):
    /// scopes log level and cancellation. None for stateless requests.
    pub session_key: Option<String>,
    /// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` headers (2026-07-28 checks).
    pub protocol_version_header: Option<String>,
    pub mcp_method_header: Option<String>,
    pub mcp_name_header: Option<String>,
}

/// The outcome of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// A JSON-RPC response (or a batch array of them) to send back.
    Response(Value),
    /// A notification or response was accepted: HTTP 202, no body.
    Accepted,
    /// An HTTP-level refusal (e.g. 400 with -32020 HeaderMismatch, 404 with -32601 for modern
    /// requests); the body is a JSON-RPC error object.
    HttpError { status: u16, body: Value },
}

/// The protocol engine shared by all transports.
pub struct McpServer {
    tools: Vec<Arc<dyn Tool>>,
}

impl McpServer {
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        McpServer { tools }
    }

    pub fn tools(&self) -> &[Arc<dyn Tool>] {
        &self.tools
    }

    /// Handle one incoming message.
    pub async fn handle(&self, message: Value, meta: RequestMeta) -> Handled {
        let _ = (message, meta);
        Handled::Accepted
    }
}
