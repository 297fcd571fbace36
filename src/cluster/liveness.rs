//! Replica liveness: `<prefix>:replica:<id>` is set with a TTL of `cluster.liveness_ttl_ms`
//! and renewed every third of it while the replica runs; it is deleted when the replica stops
//! gracefully and expires when it dies. Others ask [`super::Cluster::is_alive`] before
//! routing work to it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::conn::Redis;

/// Keep `key` alive until `stop`, then delete it.
pub fn spawn_heartbeat(redis: Redis, key: String, ttl: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        let every = ttl / 3;
        let mut was_ok = true;
        loop {
            let beat = redis.set_px(&key, b"1", ttl).await;
            match (&beat, was_ok) {
                (Err(e), true) => tracing::warn!(error = %e, "cluster heartbeat failed"),
                (Ok(()), false) => tracing::info!("cluster heartbeat restored"),
                _ => {}
            }
            was_ok = beat.is_ok();
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        if let Err(e) = redis.del(std::slice::from_ref(&key)).await {
            tracing::debug!(error = %e, "cluster: could not remove the liveness key at stop");
        }
    });
}
