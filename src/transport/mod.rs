//! HTTP transports: Streamable HTTP (`/mcp`) and legacy HTTP+SSE (`/sse`, `/messages`), both
//! feeding [`crate::mcp::McpServer::handle`]; SSE encoding and keep-alives; sealed session ids.

pub mod accounting;
pub mod answer;
pub mod body;
pub mod draining;
pub mod legacy_routing;
pub mod legacy_sessions;
pub mod legacy_sse;
pub mod origin;
pub mod posted;
pub mod relay;
pub mod rpc;
pub mod session;
pub mod shared_sessions;
pub mod sse;
pub mod state;
pub mod streamable;

pub use state::TransportState;
