//! Global concurrency slots with leases: [`Leases`] lets N replicas enforce one cap ("at most
//! 4 commands at once for this principal") without leaking slots when a replica dies.
//!
//! Each capped thing is a sorted set (`<prefix>:lease:<name>`) whose members are the held
//! leases and whose scores are their expiry times (Redis's own clock, `TIME`, so replicas'
//! clocks do not matter). Taking a slot is one Lua script: drop the expired members, refuse
//! when as many as the cap remain, else add one. The holder renews its lease every third of
//! the lease time; dropping the [`Lease`] removes it at once. A replica that crashes stops
//! renewing, so its slots come back by themselves after at most one lease time.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use redis::Script;
use tokio_util::sync::CancellationToken;

use super::conn::{Redis, millis};
use super::error::ClusterError;
use super::handle::Cluster;

/// `KEYS[1]` the set, optional `KEYS[2]` a plain set whose members count against the same
/// cap (held for good, not leased); `ARGV`: cap, lease ms, member. 1 when taken.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if KEYS[2] then
  held = held + redis.call('SCARD', KEYS[2])
end
if held >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// `KEYS[1]` the set; `ARGV`: lease ms, member. 1 when the lease was still held.
const RENEW: &str = r"
local held = redis.call('ZSCORE', KEYS[1], ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if held then
  return 1
end
return 0
";

/// Slots shared by every replica.
#[derive(Clone)]
pub struct Leases {
    cluster: Cluster,
    lease: Duration,
    take: Arc<Script>,
    renew: Arc<Script>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// A held slot: renewed while it lives, given back when dropped.
pub struct Lease {
    redis: Redis,
    pub(super) key: String,
    pub(super) member: String,
    stop: CancellationToken,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("key", &self.key).finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime (shutting down): the lease expires by itself.
        };
        let (redis, key, member) = (self.redis.clone(), self.key.clone(), self.member.clone());
        runtime.spawn(async move {
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(&key).arg(&member);
            if let Err(e) = redis.query::<i64>(cmd).await {
                tracing::debug!(error = %e, "a quota lease was not given back; it expires by itself");
            }
        });
    }
}

impl Leases {
    /// Slots on `cluster` whose leases last `lease` (renewed every third of it).
    pub fn new(cluster: Cluster, lease: Duration) -> Leases {
        Leases {
            cluster,
            lease: lease.max(Duration::from_millis(300)),
            take: Arc::new(Script::new(TAKE)),
            renew: Arc::new(Script::new(RENEW)),
        }
    }

    /// The cluster these slots live on.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Take one of the `max` slots named by `parts`: `None` when all are held.
    pub async fn take(&self, parts: &[&str], max: u32) -> Result<Option<Lease>, ClusterError> {
        self.take_beside(parts, max, None).await
    }

    /// [`Leases::take`], where the members of the plain set `held` (a full key, e.g. things
    /// created and kept) count against the same `max`.
    pub(super) async fn take_beside(
        &self,
        parts: &[&str],
        max: u32,
        held: Option<String>,
    ) -> Result<Option<Lease>, ClusterError> {
        let redis = self.cluster.redis().clone();
        let mut key_parts = vec!["lease"];
        key_parts.extend_from_slice(parts);
        let key = redis.key(&key_parts);
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let member = format!("{}:{}", self.cluster.replica_id(), hex::encode(id));
        let lease_ms = millis(self.lease);
        let (script, k, m) = (self.take.clone(), key.clone(), member.clone());
        let taken: i64 = redis
            .run(|mut c| async move {
                let mut invocation = script.key(k);
                if let Some(held) = held {
                    invocation.key(held);
                }
                invocation
                    .arg(max)
                    .arg(lease_ms)
                    .arg(m)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if taken != 1 {
            return Ok(None);
        }
        let stop = CancellationToken::new();
        tokio::spawn(renew(
            self.clone(),
            key.clone(),
            member.clone(),
            stop.clone(),
        ));
        Ok(Some(Lease {
            redis,
            key,
            member,
            stop,
        }))
    }
}

/// Renew the lease every third of its time until it is dropped or this replica leaves the
/// cluster (then it expires, as if the replica had crashed).
async fn renew(leases: Leases, key: String, member: String, stop: CancellationToken) {
    let every = leases.lease / 3;
    let lease_ms = millis(leases.lease);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if leases.cluster.is_stopped() {
            return;
        }
        let (script, k, m) = (leases.renew.clone(), key.clone(), member.clone());
        let renewed = leases
            .cluster
            .redis()
            .run(|mut c| async move {
                script
                    .key(k)
                    .arg(lease_ms)
                    .arg(m)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        if stop.is_cancelled() {
            // Dropped while this renewal ran (which re-adds a missing member): give the slot
            // back once more, in case the drop's removal came first.
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(&key).arg(&member);
            let _ = leases.cluster.redis().query::<i64>(cmd).await;
            return;
        }
        match renewed {
            Ok(1) => {}
            // The slot is still in use here: it is counted again (a Redis restart or a stall
            // longer than the lease lost it; until now others could take it too).
            Ok(_) => {
                tracing::warn!(key = %key, "a quota lease had expired before it was renewed (Redis restarted, or Redis or this replica stalled); it is held again, and the cap may have been exceeded meanwhile");
            }
            Err(e) => tracing::warn!(error = %e, "a quota lease could not be renewed; retrying"),
        }
    }
}
