//! [`Cluster`]: this replica's handle on the shared state — the Redis connection, its replica
//! id, its inbox and its heartbeat — built once at start from `[cluster]`.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio_util::sync::CancellationToken;

use super::conn::Redis;
use super::error::ClusterError;
use super::inbox::{Inbox, frame};
use super::liveness::spawn_heartbeat;
use crate::config::ClusterConfig;

struct Inner {
    redis: Redis,
    replica_id: String,
    inbox: Inbox,
    liveness_ttl: Duration,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// This replica in the cluster. Cheap to clone; stops its background tasks when the last
/// clone is dropped or [`Cluster::stop`] is called.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("replica_id", &self.inner.replica_id)
            .finish_non_exhaustive()
    }
}

/// The host name plus 8 random hex digits.
fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .take(48)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".into());
    let mut suffix = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    format!("{host}-{}", hex::encode(suffix))
}

impl Cluster {
    /// Start this replica's part of the cluster (`None` without `cluster.redis_url`): the
    /// connection (lazy), the inbox subscription and the heartbeat. Needs a Tokio runtime;
    /// does not wait for Redis (readiness reports whether it is reachable).
    pub fn start(config: &ClusterConfig) -> Result<Option<Cluster>, ClusterError> {
        let Some(redis) = Redis::from_config(config)? else {
            return Ok(None);
        };
        let replica_id = config.replica_id.clone().unwrap_or_else(default_replica_id);
        let stop = CancellationToken::new();
        let inbox = Inbox::start(
            &redis,
            vec![
                redis.key(&["inbox", &replica_id]),
                redis.key(&["broadcast"]),
            ],
            stop.child_token(),
        );
        let liveness_ttl = Duration::from_millis(config.liveness_ttl_ms);
        spawn_heartbeat(
            redis.clone(),
            redis.key(&["replica", &replica_id]),
            liveness_ttl,
            stop.child_token(),
        );
        tracing::info!(replica_id = %replica_id, prefix = %config.key_prefix, "cluster mode: shared state in Redis");
        Ok(Some(Cluster {
            inner: Arc::new(Inner {
                redis,
                replica_id,
                inbox,
                liveness_ttl,
                stop,
            }),
        }))
    }

    pub fn redis(&self) -> &Redis {
        &self.inner.redis
    }

    pub fn replica_id(&self) -> &str {
        &self.inner.replica_id
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inner.inbox
    }

    /// How long a replica stays alive after its last heartbeat.
    pub fn liveness_ttl(&self) -> Duration {
        self.inner.liveness_ttl
    }

    /// Send `body` to the listener of `topic` on `replica`: whether an inbox received it
    /// (false: that replica is gone or not subscribed right now).
    pub async fn send(
        &self,
        replica: &str,
        topic: &str,
        body: &[u8],
    ) -> Result<bool, ClusterError> {
        let channel = self.inner.redis.key(&["inbox", replica]);
        let receivers = self
            .inner
            .redis
            .publish(&channel, &frame(topic, body))
            .await?;
        Ok(receivers > 0)
    }

    /// Send `body` to the listeners of `topic` on every replica (this one included): how many
    /// replicas received it.
    pub async fn broadcast(&self, topic: &str, body: &[u8]) -> Result<u64, ClusterError> {
        let channel = self.inner.redis.key(&["broadcast"]);
        self.inner
            .redis
            .publish(&channel, &frame(topic, body))
            .await
    }

    /// Whether `replica`'s heartbeat is current.
    pub async fn is_alive(&self, replica: &str) -> Result<bool, ClusterError> {
        if replica == self.inner.replica_id {
            return Ok(!self.inner.stop.is_cancelled());
        }
        self.inner
            .redis
            .exists(&self.inner.redis.key(&["replica", replica]))
            .await
    }

    /// Readiness: Redis answers and this replica's inbox is subscribed.
    pub async fn check(&self) -> Result<String, ClusterError> {
        self.inner.redis.ping().await?;
        if !self.inner.inbox.is_connected() {
            return Err(ClusterError::Unavailable(
                "this replica's pub/sub subscription is not established yet".into(),
            ));
        }
        Ok(format!("reachable, replica {}", self.inner.replica_id))
    }

    /// Stop the heartbeat (its key is deleted) and the inbox: other replicas see this one gone.
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// Whether [`Cluster::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.is_cancelled()
    }
}
