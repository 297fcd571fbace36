//! `quotas.max_sessions` over every replica: [`SessionCount`] counts, per principal, the
//! sessions created through any replica and not yet destroyed through one, plus the
//! creations under way, with the same figure the in-memory count gives one process.
//!
//! Keys (`<owner>` is the principal's name in hex):
//! - `<prefix>:sessions:<owner>`: a set of the kasm ids created through the cluster;
//! - `<prefix>:session-owner:<kasm_id>`: whose set the session is in, so a destroy or a reap
//!   on any replica finds it;
//! - `<prefix>:lease:quotas.max_sessions:<owner>`: the creations under way, as
//!   [`super::Leases`] (a replica that dies mid-create stops renewing; its slot comes back
//!   after one lease time).
//!
//! Taking a slot is one script over both (expired creations dropped, then creations plus
//! sessions against the cap); a created session moves from the lease set into the session
//! set in one script, so it is never counted twice or not at all. Like the in-memory count,
//! a session that ends without this server (destroyed in Kasm's UI, expired by Kasm) stays
//! counted until it is destroyed or reaped through a replica.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::error::ClusterError;
use super::handle::Cluster;
use super::leases::{Lease, Leases};

/// The configuration key, also the name of the creations' lease set.
const QUOTA: &str = "quotas.max_sessions";

/// `KEYS[1]` lease set, `KEYS[2]` session set, `KEYS[3]` owner key; `ARGV`: lease member,
/// kasm id, owner key's value.
const COMMIT: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
return 1
";

/// `KEYS[1]` owner key, `KEYS[2]` that owner's session set; `ARGV`: the owner read, kasm
/// id. 1 when the session was counted.
const FORGET: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return redis.call('SREM', KEYS[2], ARGV[2])
";

/// The cluster-wide session count.
#[derive(Clone)]
pub struct SessionCount {
    leases: Leases,
    commit: Arc<Script>,
    forget: Arc<Script>,
}

impl std::fmt::Debug for SessionCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCount").finish_non_exhaustive()
    }
}

/// A creation under way: holds one slot until [`SessionCount::commit`] turns it into the
/// session, or it is dropped (the creation failed) and the slot comes back.
#[must_use]
#[derive(Debug)]
pub struct Creating {
    lease: Lease,
    owner: String,
}

impl SessionCount {
    /// Creations are leased from `leases` (and so renewed at its lease time).
    pub fn new(leases: Leases) -> SessionCount {
        SessionCount {
            leases,
            commit: Arc::new(Script::new(COMMIT)),
            forget: Arc::new(Script::new(FORGET)),
        }
    }

    fn session_set(&self, owner: &str) -> String {
        self.leases.cluster().redis().key(&["sessions", owner])
    }

    fn owner_key(&self, kasm_id: &str) -> String {
        self.leases
            .cluster()
            .redis()
            .key(&["session-owner", kasm_id])
    }

    /// One slot for a creation by `principal` if its sessions and creations under way are
    /// fewer than `max`; `None` when they are not.
    pub async fn take(&self, principal: &str, max: u32) -> Result<Option<Creating>, ClusterError> {
        let owner = hex::encode(principal.as_bytes());
        let held = self.session_set(&owner);
        let lease = self
            .leases
            .take_beside(&[QUOTA, &owner], max, Some(held))
            .await?;
        Ok(lease.map(|lease| Creating { lease, owner }))
    }

    /// The creation made session `kasm_id`: it counts from now on instead of the creation.
    pub async fn commit(&self, creating: Creating, kasm_id: &str) -> Result<(), ClusterError> {
        let keys = [
            creating.lease.key.clone(),
            self.session_set(&creating.owner),
            self.owner_key(kasm_id),
        ];
        let (script, member, id, owner) = (
            self.commit.clone(),
            creating.lease.member.clone(),
            kasm_id.to_owned(),
            creating.owner.clone(),
        );
        self.leases
            .cluster()
            .redis()
            .run(|mut c| async move {
                script
                    .key(&keys[0])
                    .key(&keys[1])
                    .key(&keys[2])
                    .arg(member)
                    .arg(id)
                    .arg(owner)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        // Its member is gone already; dropping the lease stops the renewal.
        drop(creating);
        Ok(())
    }

    /// The sessions counted for `principal` (at most its cap, plus any a stalled commit
    /// added).
    pub async fn counted(&self, principal: &str) -> Result<Vec<String>, ClusterError> {
        let owner = hex::encode(principal.as_bytes());
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.session_set(&owner));
        self.leases.cluster().redis().query(cmd).await
    }

    /// Session `kasm_id` was destroyed (through any replica): it no longer counts. True when
    /// it was counted.
    pub async fn forget(&self, kasm_id: &str) -> Result<bool, ClusterError> {
        let redis = self.leases.cluster().redis();
        let key = self.owner_key(kasm_id);
        let Some(owner) = redis.get(&key).await? else {
            return Ok(false);
        };
        let owner = String::from_utf8(owner)
            .map_err(|_| ClusterError::Corrupt(format!("owner of session {kasm_id}")))?;
        let (script, set, id) = (
            self.forget.clone(),
            self.session_set(&owner),
            kasm_id.to_owned(),
        );
        let removed: i64 = redis
            .run(|mut c| async move {
                script
                    .key(key)
                    .key(set)
                    .arg(owner)
                    .arg(id)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(removed == 1)
    }
}

/// The `[quotas]` caps counted over every replica: the concurrency caps as leases, the
/// session cap as a [`SessionCount`].
#[derive(Debug, Clone)]
pub struct SharedQuotas {
    pub leases: Leases,
    pub sessions: SessionCount,
}

impl SharedQuotas {
    /// Slots on `cluster` whose leases last `lease`.
    pub fn new(cluster: Cluster, lease: Duration) -> SharedQuotas {
        let leases = Leases::new(cluster, lease);
        SharedQuotas {
            sessions: SessionCount::new(leases.clone()),
            leases,
        }
    }
}
