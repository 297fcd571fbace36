//! What can go wrong with the shared state, phrased for the operator and the client.

use std::time::Duration;

/// A Redis operation that did not give an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused or dropped the connection, or answered with an error.
    #[error(
        "the shared state (Redis, [cluster] redis_url) is unavailable: {0}; check that Redis runs and is reachable from this replica (it reconnects by itself)"
    )]
    Unavailable(String),
    /// No answer within `cluster.op_timeout_ms`.
    #[error(
        "the shared state (Redis, [cluster] redis_url) did not answer within {} ms; check Redis's health and the network, or raise cluster.op_timeout_ms",
        .0.as_millis()
    )]
    Timeout(Duration),
    /// Redis answered something this server did not expect (a bug or a foreign key).
    #[error("the shared state held an unexpected value: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        // The error's text names the kind and Redis's message; it never contains the URL.
        ClusterError::Unavailable(e.to_string())
    }
}
