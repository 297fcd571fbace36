//! [`StoreInput`]: the [`TaskInput`] of a call running as a task. A request to the client is
//! written into the task record (status `input_required`); the answer comes back through the
//! store — on any replica — from `tasks/update` (2026-07-28: the client read the request in
//! `tasks/get`'s `inputRequests`) or from `tasks/result` (2025-11-25: it sent the request on
//! its own stream and got the client's answer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::record::TaskId;
use super::store::TaskStore;
use super::support::TaskInput;
use crate::mcp::client_requests::ClientRequestError;

/// How often a waiting call re-reads the store when it sends no change notifications.
const RECHECK: Duration = Duration::from_secs(1);

/// Key of an answer that stands for the client's JSON-RPC error (2025-11-25: the request was
/// sent on the `tasks/result` stream and the client answered with an error).
pub const CLIENT_ERROR: &str = "io.kasm-mcp/client-error";

/// Client input for one task, through the store.
pub struct StoreInput {
    store: Arc<dyn TaskStore>,
    id: TaskId,
    /// What the creating request declared (`io.modelcontextprotocol/clientCapabilities`).
    client_capabilities: Value,
    next: AtomicU64,
}

impl std::fmt::Debug for StoreInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreInput").field("id", &self.id).finish()
    }
}

impl StoreInput {
    pub fn new(store: Arc<dyn TaskStore>, id: TaskId, client_capabilities: Value) -> Self {
        StoreInput {
            store,
            id,
            client_capabilities,
            next: AtomicU64::new(1),
        }
    }
}

#[async_trait]
impl TaskInput for StoreInput {
    fn declares(&self, capability: &str) -> bool {
        self.client_capabilities
            .get(capability)
            .is_some_and(|c| !c.is_null())
    }

    fn next_key(&self) -> String {
        format!("input-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    async fn request(
        &self,
        key: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        let request = json!({ "method": method, "params": params });
        if !self.store.request_input(&self.id, key, request).await {
            return Err(ClientRequestError::Disconnected);
        }
        loop {
            if let Some(answer) = self.store.take_input(&self.id, key).await {
                return match answer.get(CLIENT_ERROR) {
                    Some(error) => Err(ClientRequestError::ClientError(error.clone())),
                    None => Ok(answer),
                };
            }
            if self.store.cancel_requested(&self.id).await {
                return Err(ClientRequestError::Disconnected);
            }
            let started = std::time::Instant::now();
            self.store.changed(&self.id, RECHECK).await;
            if started.elapsed() < Duration::from_millis(10) {
                // The store answered at once (the task ended or is gone): do not spin.
                tokio::time::sleep(RECHECK).await;
            }
        }
    }
}
