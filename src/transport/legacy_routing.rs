//! Legacy SSE across replicas (`[cluster]`): a `POST /messages?sessionId=` may reach any
//! replica, while the stream lives on the one that took `GET /sse`.
//!
//! - The stream's replica keeps `<prefix>:sse:<id>` = `{replica, principal}` in Redis with a
//!   TTL of `cluster.liveness_ttl_ms`, renewed every third of it while the stream is open,
//!   deleted when it closes; it listens to the topic `sse:<id>` of its inbox.
//! - Another replica that gets a POST for an id it does not hold looks the route up: none,
//!   another principal's, or a replica whose heartbeat has expired → 404 (the client opens a
//!   new stream, as after any lost session); else it sends the message to that topic and
//!   answers 202. A message no inbox received (the holder died a moment ago) is a 404 too, and
//!   the stale route is removed.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ClusterError};
use crate::mcp::Origin;

/// Where a legacy stream lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Route {
    pub replica: String,
    pub principal: String,
}

/// A message forwarded to the stream's replica.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forwarded {
    pub message: Value,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
}

impl Forwarded {
    pub fn origin(&self) -> Origin {
        Origin {
            request_id: self.request_id.clone(),
            client_ip: self.client_ip.clone(),
        }
    }
}

/// The inbox topic of stream `id`.
pub fn topic(id: &str) -> String {
    format!("sse:{id}")
}

fn key(cluster: &Cluster, id: &str) -> String {
    cluster.redis().key(&["sse", id])
}

/// Publish the route of stream `id` and renew it until `closed`, then delete it.
pub fn keep_route(cluster: Cluster, id: String, principal: String, closed: CancellationToken) {
    let route = Route {
        replica: cluster.replica_id().to_owned(),
        principal,
    };
    let Ok(value) = serde_json::to_vec(&route) else {
        return;
    };
    tokio::spawn(async move {
        let key = key(&cluster, &id);
        let ttl = cluster.liveness_ttl();
        loop {
            if let Err(e) = cluster.redis().set_px(&key, &value, ttl).await {
                tracing::warn!(error = %e, "legacy SSE: the stream's route could not be renewed");
            }
            tokio::select! {
                _ = closed.cancelled() => break,
                _ = tokio::time::sleep(ttl / 3) => {}
            }
        }
        let _ = cluster.redis().del(&[key]).await;
    });
}

/// Why a message could not be forwarded.
#[derive(Debug)]
pub enum NotRouted {
    /// No live stream with this id for this principal anywhere.
    Gone,
    /// Redis did not answer.
    Unavailable(ClusterError),
}

/// Send `message` to the replica holding stream `id`, if it is `principal`'s and alive.
pub async fn forward(
    cluster: &Cluster,
    id: &str,
    principal: &str,
    forwarded: &Forwarded,
) -> Result<(), NotRouted> {
    let key = key(cluster, id);
    let raw = cluster
        .redis()
        .get(&key)
        .await
        .map_err(NotRouted::Unavailable)?
        .ok_or(NotRouted::Gone)?;
    let route: Route = serde_json::from_slice(&raw).map_err(|_| NotRouted::Gone)?;
    if route.principal != principal || route.replica == cluster.replica_id() {
        // Another principal's stream, or one this replica no longer holds.
        return Err(NotRouted::Gone);
    }
    if !cluster
        .is_alive(&route.replica)
        .await
        .map_err(NotRouted::Unavailable)?
    {
        let _ = cluster.redis().del(&[key]).await;
        return Err(NotRouted::Gone);
    }
    let body = serde_json::to_vec(forwarded).map_err(|_| NotRouted::Gone)?;
    match cluster.send(&route.replica, &topic(id), &body).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            let _ = cluster.redis().del(&[key]).await;
            Err(NotRouted::Gone)
        }
        Err(e) => Err(NotRouted::Unavailable(e)),
    }
}

/// A forwarded message as received by the stream's replica.
pub fn decode(body: &Bytes) -> Option<Forwarded> {
    serde_json::from_slice(body).ok()
}
