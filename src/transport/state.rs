//! What the transport handlers share: the MCP router, session sealing, the legacy SSE session
//! table, limits, metrics, the shutdown signal and (with `[cluster]`) this replica's cluster.

use std::sync::Arc;
use std::time::Duration;

use super::legacy_sessions::LegacySessions;
use super::session::SessionSealer;
use crate::cluster::Cluster;
use crate::http::metrics::Metrics;
use crate::http::rate_limit::RateLimits;
use crate::mcp::McpServer;
use crate::shutdown::Shutdown;

/// Shared state of `/mcp`, `/sse` and `/messages`.
pub struct TransportState {
    pub server: Arc<McpServer>,
    pub sessions: SessionSealer,
    pub legacy: LegacySessions,
    pub limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
    pub keep_alive: Duration,
    pub max_body_bytes: usize,
    /// Graceful shutdown: MCP work is spawned through it, SSE streams end by its tokens.
    pub shutdown: Shutdown,
    /// `[cluster]`: legacy SSE routing, ended sessions and client capabilities in Redis.
    pub cluster: Option<Cluster>,
}

impl TransportState {
    pub fn new(
        server: Arc<McpServer>,
        sessions: SessionSealer,
        limits: Arc<RateLimits>,
        metrics: Arc<Metrics>,
        keep_alive: Duration,
        max_body_bytes: usize,
        shutdown: Shutdown,
    ) -> Self {
        TransportState {
            server,
            sessions,
            legacy: LegacySessions::default(),
            limits,
            metrics,
            keep_alive,
            max_body_bytes,
            shutdown,
            cluster: None,
        }
    }
}
