//! [`RedisTaskStore`]: the [`TaskStore`] of `[cluster]`, so any replica can answer
//! `tasks/get`, `tasks/result`, `tasks/list`, `tasks/cancel` and `tasks/update` for a task
//! another replica runs.
//!
//! - Each task is its JSON record under `<prefix>:task:<id>`, written with `PX` = the time it
//!   has left to live, so Redis deletes it when it expires.
//! - Each principal has an index, the sorted set `<prefix>:task:by:<hex(owner)>` (score = the
//!   task's expiry time, expired members trimmed with `ZREMRANGEBYSCORE` on every write and
//!   listing; the set itself expires with its last task). Listings read it and `MGET` the
//!   records — no `KEYS`/`SCAN`.
//! - Each principal's running tasks are a second sorted set, `<prefix>:task:running:<hex(owner)>`
//!   (score = expiry time): a creation adds the task, the change that makes it terminal
//!   removes it in the same script, and a task whose record expired while running (its
//!   replica died) is trimmed like the index. So a creation checks both caps
//!   ([`check_caps`]) from two `ZCARD`s inside its own script — atomically, without reading
//!   any record.
//! - Every change (cancel, finish, input asked or given) is a read–modify–compare-and-set: a
//!   Lua script replaces the record only if it is still the one read, so two replicas never
//!   overwrite each other's change (a `cancelled` task is never turned `completed`).
//! - After a change the replica broadcasts `tasks:changed` through the cluster; every replica
//!   wakes its local waiters (the runner watching the cancel flag, a `tasks/result` waiting
//!   for the outcome), which re-read the record. Pub/sub may lose a message (a replica
//!   reconnecting), so a waiter never sleeps longer than [`POLL`] before it re-reads anyway.
//!
//! Redis errors never panic: a read that fails is logged and answered as "not found", a
//! creation that fails is refused with the cluster error's text.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use serde_json::{Map, Value};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::record::{TaskId, TaskOutcome, TaskRecord, TaskStatus, now_ms};
use super::store::{
    CancelError, MAX_RUNNING_PER_OWNER, StoredCap, TaskStore, TaskStoreError, check_caps,
};
use crate::cluster::{Cluster, ClusterError};

/// The longest a waiter sleeps without re-reading the record (the safety net under pub/sub).
pub const POLL: Duration = Duration::from_millis(1000);
/// Most tasks (running or finished, not expired) one principal may have in Redis.
pub const MAX_RECORDS_PER_OWNER: usize = 1_000;
/// How often a task's outcome that Redis did not take is tried, and the pause between tries.
const FINISH_ATTEMPTS: u32 = 3;
const FINISH_RETRY: Duration = Duration::from_millis(250);
/// The topic every replica's store listens to.
const TOPIC: &str = "tasks:changed";
/// How often a compare-and-set that lost a race is retried before giving up.
const CAS_ATTEMPTS: usize = 16;

/// `KEYS[1]` record, `KEYS[2]` index, `KEYS[3]` running set; `ARGV`: json, ttl ms, expiry
/// ms, id, now ms, most running, most stored. `{created (1/0), running, stored}`, the counts
/// as they were before.
const CREATE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
local running = redis.call('ZCARD', KEYS[3])
local stored = redis.call('ZCARD', KEYS[2])
if running >= tonumber(ARGV[6]) or stored >= tonumber(ARGV[7]) then
  return {0, running, stored}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 2, 3 do
  redis.call('ZADD', KEYS[i], ARGV[3], ARGV[4])
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[i], last[2])
end
return {1, running, stored}
";

/// `KEYS[1]` record, `KEYS[2]` running set; `ARGV`: the value read, the new value, the id to
/// remove from the running set ('' when the change does not end the task). 1 when replaced.
const COMPARE_AND_SET: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  if ARGV[3] ~= '' then
    redis.call('ZREM', KEYS[2], ARGV[3])
  end
  return 1
end
return 0
";

/// Tasks in Redis, shared by every replica of the cluster.
pub struct RedisTaskStore {
    cluster: Cluster,
    changed: Arc<Notify>,
    create: Arc<Script>,
    cas: Arc<Script>,
    _listening: DropGuard,
}

impl std::fmt::Debug for RedisTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTaskStore")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl RedisTaskStore {
    /// The store on `cluster`; listens for other replicas' changes until dropped. Needs a
    /// Tokio runtime.
    pub fn new(cluster: Cluster) -> RedisTaskStore {
        let changed = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let mut listener = cluster.inbox().listen(TOPIC, 256);
        let wake = changed.clone();
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    message = listener.recv() => match message {
                        Some(_) => wake.notify_waiters(),
                        None => return,
                    },
                }
            }
        });
        RedisTaskStore {
            cluster,
            changed,
            create: Arc::new(Script::new(CREATE)),
            cas: Arc::new(Script::new(COMPARE_AND_SET)),
            _listening: stop.drop_guard(),
        }
    }

    fn record_key(&self, id: &TaskId) -> String {
        self.cluster.redis().key(&["task", id.as_str()])
    }

    fn index_key(&self, owner: &str) -> String {
        self.cluster
            .redis()
            .key(&["task", "by", &hex::encode(owner.as_bytes())])
    }

    fn running_key(&self, owner: &str) -> String {
        self.cluster
            .redis()
            .key(&["task", "running", &hex::encode(owner.as_bytes())])
    }

    /// The stored text of task `id` and its record (`None`: no such task).
    async fn read(&self, id: &TaskId) -> Result<Option<(Vec<u8>, TaskRecord)>, ClusterError> {
        let Some(raw) = self.cluster.redis().get(&self.record_key(id)).await? else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&raw)
            .map_err(|e| ClusterError::Corrupt(format!("task {id}: {e}")))?;
        Ok(Some((raw, record)))
    }

    /// A live task (not past its ttl); what Redis could not answer is logged and returned.
    async fn live(&self, id: &TaskId) -> Result<Option<TaskRecord>, ClusterError> {
        let found = self.read(id).await.inspect_err(|e| {
            tracing::warn!(task = %id, error = %e, "task store: cannot read a task");
        })?;
        Ok(found
            .map(|(_, record)| record)
            .filter(|r| !r.expired_at(now_ms())))
    }

    /// Apply `change` to task `id` atomically with respect to other replicas: `Ok(None)`
    /// when the task is gone or `change` declines (returns `Err`), otherwise the new record.
    async fn update<R>(
        &self,
        id: &TaskId,
        mut change: impl FnMut(&mut TaskRecord) -> Result<R, R> + Send,
    ) -> Result<Result<(TaskRecord, R), Option<R>>, ClusterError> {
        let key = self.record_key(id);
        for _ in 0..CAS_ATTEMPTS {
            let Some((raw, mut record)) = self.read(id).await? else {
                return Ok(Err(None));
            };
            if record.expired_at(now_ms()) {
                return Ok(Err(None));
            }
            let was_running = !record.status.is_terminal();
            let answer = match change(&mut record) {
                Ok(answer) => answer,
                Err(declined) => return Ok(Err(Some(declined))),
            };
            let ends = if was_running && record.status.is_terminal() {
                id.to_string()
            } else {
                String::new()
            };
            let new = serde_json::to_vec(&record)
                .map_err(|e| ClusterError::Corrupt(format!("task {id}: {e}")))?;
            let (script, key, running) = (
                self.cas.clone(),
                key.clone(),
                self.running_key(&record.owner),
            );
            let replaced: i64 = self
                .cluster
                .redis()
                .run(|mut c| async move {
                    script
                        .key(key)
                        .key(running)
                        .arg(raw)
                        .arg(new)
                        .arg(ends)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            if replaced == 1 {
                self.announce(id).await;
                return Ok(Ok((record, answer)));
            }
        }
        Err(ClusterError::Unavailable(format!(
            "task {id} changed {CAS_ATTEMPTS} times while this replica tried to update it"
        )))
    }

    /// Wake the waiters of every replica (this one too, even when Redis does not answer).
    async fn announce(&self, id: &TaskId) {
        self.changed.notify_waiters();
        if let Err(e) = self.cluster.broadcast(TOPIC, id.as_str().as_bytes()).await {
            tracing::debug!(task = %id, error = %e, "task store: change not broadcast; other replicas poll");
        }
    }

    /// The live records of `owner`, expired index entries trimmed.
    async fn owned(&self, owner: &str) -> Result<Vec<TaskRecord>, ClusterError> {
        let redis = self.cluster.redis();
        let index = self.index_key(owner);
        let now = now_ms();
        let mut trim = redis::cmd("ZREMRANGEBYSCORE");
        trim.arg(&index).arg("-inf").arg(now);
        redis.query::<i64>(trim).await?;
        let mut range = redis::cmd("ZRANGE");
        range.arg(&index).arg(0).arg(-1);
        let ids: Vec<String> = redis.query(range).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| redis.key(&["task", id.as_str()]))
            .collect();
        let mut get = redis::cmd("MGET");
        get.arg(&keys);
        let raws: Vec<Option<Vec<u8>>> = redis.query(get).await?;
        Ok(raws
            .into_iter()
            .flatten()
            .filter_map(|raw| serde_json::from_slice::<TaskRecord>(&raw).ok())
            .filter(|r| r.owner == owner && !r.expired_at(now))
            .collect())
    }
}

fn unavailable(e: ClusterError) -> TaskStoreError {
    TaskStoreError::Unavailable(e.to_string())
}

#[async_trait]
impl TaskStore for RedisTaskStore {
    async fn create(&self, record: TaskRecord) -> Result<(), TaskStoreError> {
        let expires_at = record.created_at_ms.saturating_add(record.ttl_ms);
        let now = now_ms();
        let ttl = expires_at.saturating_sub(now).max(1);
        let json = serde_json::to_vec(&record)
            .map_err(|e| TaskStoreError::Unavailable(format!("task record: {e}")))?;
        let (script, key, index, running) = (
            self.create.clone(),
            self.record_key(&record.id),
            self.index_key(&record.owner),
            self.running_key(&record.owner),
        );
        let id = record.id.to_string();
        // The caps are checked and the task written in one script: replicas racing cannot
        // let more through than the caps.
        let (created, running, stored): (i64, usize, usize) = self
            .cluster
            .redis()
            .run(|mut c| async move {
                script
                    .key(key)
                    .key(index)
                    .key(running)
                    .arg(json)
                    .arg(ttl)
                    .arg(expires_at)
                    .arg(id)
                    .arg(now)
                    .arg(MAX_RUNNING_PER_OWNER)
                    .arg(MAX_RECORDS_PER_OWNER)
                    .invoke_async(&mut c)
                    .await
            })
            .await
            .map_err(unavailable)?;
        if created == 1 {
            return Ok(());
        }
        let cap = StoredCap::PerOwner(MAX_RECORDS_PER_OWNER);
        check_caps(&record.owner, running, stored, cap)?;
        Err(TaskStoreError::Unavailable(format!(
            "the task store refused task {} for principal {:?} ({running} running, {stored} stored)",
            record.id, record.owner
        )))
    }

    async fn get(&self, id: &TaskId, owner: &str) -> Result<Option<TaskRecord>, TaskStoreError> {
        let found = self
            .live(id)
            .await
            .map_err(|e| TaskStoreError::Unavailable(e.to_string()))?;
        Ok(found.filter(|r| r.owner == owner))
    }

    async fn list(&self, owner: &str) -> Result<Vec<TaskRecord>, TaskStoreError> {
        self.owned(owner).await.map_err(|e| {
            tracing::warn!(error = %e, "task store: cannot list tasks");
            TaskStoreError::Unavailable(e.to_string())
        })
    }

    async fn request_cancel(&self, id: &TaskId, owner: &str) -> Result<TaskRecord, CancelError> {
        let updated = self
            .update(id, |record| {
                if record.owner != owner {
                    return Err(CancelError::NotFound);
                }
                if record.status.is_terminal() {
                    return Err(CancelError::Terminal(record.status));
                }
                record.status = TaskStatus::Cancelled;
                record.status_message = Some("The task was cancelled by request.".into());
                record.cancel_requested = true;
                record.updated_at_ms = now_ms();
                Ok(CancelError::NotFound)
            })
            .await;
        match updated {
            Ok(Ok((record, _))) => Ok(record),
            Ok(Err(declined)) => Err(declined.unwrap_or(CancelError::NotFound)),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "task store: cannot cancel a task");
                Err(CancelError::Unavailable(e.to_string()))
            }
        }
    }

    async fn cancel_requested(&self, id: &TaskId) -> bool {
        match self.read(id).await {
            Ok(found) => found.is_some_and(|(_, r)| r.cancel_requested),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "task store: cannot read the cancel flag");
                false
            }
        }
    }

    async fn finish(
        &self,
        id: &TaskId,
        status: TaskStatus,
        outcome: Option<TaskOutcome>,
        message: Option<String>,
    ) -> Option<TaskRecord> {
        // A task's outcome must not be lost to one failed Redis call (the task would stay
        // `working`, and count as running, until its ttl): try a few times, spaced out.
        for attempt in 1..=FINISH_ATTEMPTS {
            let updated = self
                .update(id, |record| {
                    if record.status.is_terminal() {
                        return Err(());
                    }
                    record.status = status;
                    record.outcome = outcome.clone();
                    record.status_message = message.clone();
                    record.updated_at_ms = now_ms();
                    Ok(())
                })
                .await;
            match updated {
                Ok(Ok((record, ()))) => return Some(record),
                Ok(Err(_)) => return None,
                Err(e) if attempt < FINISH_ATTEMPTS => {
                    tracing::warn!(task = %id, error = %e, attempt, "task store: the outcome of a task was not stored; retrying");
                    tokio::time::sleep(FINISH_RETRY).await;
                }
                Err(e) => {
                    tracing::error!(task = %id, error = %e, "task store: the outcome of a task could not be stored; it stays working until its ttl");
                }
            }
        }
        None
    }

    async fn request_input(&self, id: &TaskId, key: &str, request: Value) -> bool {
        let updated = self
            .update(id, |record| {
                if record.status.is_terminal() {
                    return Err(());
                }
                record
                    .input_requests
                    .insert(key.to_string(), request.clone());
                record.status = TaskStatus::InputRequired;
                record.status_message = Some("The task waits for input from the client.".into());
                record.updated_at_ms = now_ms();
                Ok(())
            })
            .await;
        matches!(updated, Ok(Ok(_)))
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        owner: &str,
        responses: Map<String, Value>,
    ) -> Option<usize> {
        let updated = self
            .update(id, |record| {
                if record.owner != owner {
                    return Err(None);
                }
                let mut taken = 0;
                for (key, answer) in &responses {
                    if record.input_requests.remove(key).is_some() {
                        record.input_responses.insert(key.clone(), answer.clone());
                        taken += 1;
                    }
                }
                if taken == 0 {
                    // Nothing outstanding was answered: no write, the task is unchanged.
                    return Err(Some(0));
                }
                if record.input_requests.is_empty() && record.status == TaskStatus::InputRequired {
                    record.status = TaskStatus::Working;
                    record.status_message =
                        Some("The task continues with the client's input.".into());
                }
                record.updated_at_ms = now_ms();
                Ok(Some(taken))
            })
            .await;
        match updated {
            Ok(Ok((_, taken))) => taken,
            Ok(Err(declined)) => declined.flatten(),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "task store: cannot store the client's input");
                None
            }
        }
    }

    async fn take_input(&self, id: &TaskId, key: &str) -> Option<Value> {
        let updated = self
            .update(id, |record| match record.input_responses.remove(key) {
                Some(answer) => Ok(Some(answer)),
                None => Err(None),
            })
            .await;
        match updated {
            Ok(Ok((_, answer))) => answer,
            Ok(Err(_)) => None,
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "task store: cannot take the client's input");
                None
            }
        }
    }

    async fn changed(&self, id: &TaskId, timeout: Duration) {
        let notified = self.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Already terminal (or gone): nothing more will happen to it.
        if self
            .live(id)
            .await
            .ok()
            .flatten()
            .is_none_or(|r| r.status.is_terminal())
        {
            return;
        }
        let _ = tokio::time::timeout(timeout.min(POLL), notified).await;
    }
}
