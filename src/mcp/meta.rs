//! What a transport tells the router about the HTTP request that carried a message: the
//! principal, the notification channel and the 2026-07-28 headers. Its own file so that the
//! router (`server.rs`) and the files it calls (`modern.rs`, `state.rs`) all import it from
//! below instead of from each other.

use serde_json::Value;
use tokio::sync::mpsc;

use crate::policy::Principal;

/// What the transport knows about the HTTP request that carried a message.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub principal: Principal,
    /// Notifications related to this request (progress, `notifications/message`) and
    /// server→client requests (sampling, elicitation) made while it runs.
    pub notifications: mpsc::UnboundedSender<Value>,
    /// Transport-level session key (legacy SSE connection id or Streamable HTTP session id):
    /// scopes log level, client capabilities and cancellation. None for stateless requests
    /// (then the principal's name scopes them).
    pub session_key: Option<String>,
    /// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` headers (2026-07-28 checks).
    pub protocol_version_header: Option<String>,
    pub mcp_method_header: Option<String>,
    pub mcp_name_header: Option<String>,
    /// Where the request came from, for the audit trail.
    pub origin: Origin,
}

/// The HTTP facts an audit event carries: the request id (joins the HTTP trace) and the
/// client's IP address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
}
