//! [`RedisJobs`]: the [`JobStore`] of `[cluster]`, so any replica can answer
//! `get_command_output`, `list_commands` and `kill_command` for a job another replica started,
//! and a foreground call's progress sees output whichever replica stored it.
//!
//! - Each job is a hash `<prefix>:job:<id>`: `rec` (the record as started, JSON), `who` (its
//!   principal), the fields that change (`state`, `ended`, `fin`, `pgid`, `grp`, `kill`,
//!   `opath`, `epath`, `seq`, `ver`) and each output window as three fields (`o0`/`od`/`ot`:
//!   start offset, bytes, total; `e…` for stderr). Its TTL is the time the job has left to
//!   live: the deadline plus `jobs.finished_ttl_s` while it runs, `finished_ttl_s` once ended.
//! - Every write is one Lua script, so two replicas never undo each other: the output append
//!   and trim to `jobs.window_bytes` (the same arithmetic as [`Window::append`]), the first
//!   end winning (a kill request turning it `killed`), the version bump with each change.
//! - Per principal, two sorted sets index the jobs: `<prefix>:job:run:<hex>` (running, score =
//!   the job's deadline) and `<prefix>:job:fin:<hex>` (ended, score = end time); both are
//!   trimmed with `ZREMRANGEBYSCORE` once their records expire. The insert script counts the
//!   running jobs not past their deadline, so `jobs.max_jobs_per_principal` holds across
//!   replicas, and evicts the oldest ended jobs as the memory store does.
//! - A job's collector (on the replica that started it) ends it as `lost` at its deadline. If
//!   that replica died, the first replica to read the job [`ORPHAN_GRACE`] after its deadline
//!   ends it so, and a job past its deadline never holds a place under the running limit. Per Kasm session, the set `<prefix>:job:ses:<hex>` lists its jobs
//!   for `end_session`. No `KEYS`/`SCAN`.
//! - After a change the replica wakes its own waiters and broadcasts `jobs:changed` (body: the
//!   job id and the replica); every other replica wakes the waiters of that job, which re-read
//!   its version. A lost
//!   message costs at most [`POLL`] of latency: waiters re-read that often anyway.
//!
//! Every Redis operation runs under `cluster.op_timeout_ms`; failures are logged and reported
//! as [`JobError::Unavailable`] where the trait lets them be.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::Script;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::id::JobId;
use super::record::{Finish, JobRecord, JobState, JobSummary, Stream, now_ms};
use super::window::Window;
use super::{JobError, JobStore, Owner};
use crate::cluster::{Cluster, ClusterError, millis};

/// The longest a waiter sleeps without re-reading the job's version.
pub const POLL: Duration = Duration::from_millis(1000);
/// The topic every replica's store listens to.
const TOPIC: &str = "jobs:changed";
/// How long after its deadline a running job is taken for orphaned (its collector, which ends
/// it at the deadline, is gone with its replica).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(5);
/// How often an end that Redis did not take is tried again (it must not be lost).
const FINISH_ATTEMPTS: u32 = 3;

/// Formats Lua numbers as integers (Lua's default `%.14g` would write 1e+15).
const INT: &str = "local function int(n) return string.format('%d', n) end\n";

/// `KEYS`: record, running index, ended index, session set. `ARGV`: id, record JSON,
/// principal, now, record TTL ms, deadline (unix ms), expired cut-off (now - finished TTL),
/// max, finished TTL ms. Returns `{'full', running}` or `{'ok', evicted ids…}`.
const INSERT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[7])
local max = tonumber(ARGV[8])
local running = redis.call('ZCOUNT', KEYS[2], ARGV[4], '+inf')
if running >= max then return {'full', int(running)} end
local out = {'ok'}
local ended = redis.call('ZCARD', KEYS[3])
if ended >= max then
  local popped = redis.call('ZPOPMIN', KEYS[3], ended - max + 1)
  for i = 1, #popped, 2 do out[#out + 1] = popped[i] end
end
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'who', ARGV[3], 'state', 'running', 'ver', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], int(tonumber(last[2]) + tonumber(ARGV[9])))
redis.call('SADD', KEYS[4], ARGV[1])
if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[4], ARGV[5]) end
return out
";

/// `KEYS`: record, running index, ended index. `ARGV`: id, state, finish JSON, the finish as
/// `killed` (empty: a kill request does not change this end), now, ended TTL ms.
/// Returns the new version, or -1 when the job is gone or already ended.
const FINISH: &str = r"
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return -1 end
local state, fin = ARGV[2], ARGV[3]
if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'kill') == '1' then
  state, fin = 'killed', ARGV[4]
end
redis.call('HSET', KEYS[1], 'state', state, 'ended', ARGV[5], 'fin', fin)
local v = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return v
";

/// `KEYS`: record. `ARGV`: seq, stream ('o' or 'e'), offset, bytes, cap. [`Window::append`]
/// in Lua. Returns the new version, or -1 (gone, or an older chunk).
const APPEND: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local last = redis.call('HGET', KEYS[1], 'seq')
if last and tonumber(ARGV[1]) < tonumber(last) then return -1 end
local p = ARGV[2]
local f = redis.call('HMGET', KEYS[1], p .. '0', p .. 'd', p .. 't')
local start = tonumber(f[1] or '0')
local data = f[2] or ''
local total = tonumber(f[3] or '0')
local offset = tonumber(ARGV[3])
local bytes = ARGV[4]
local chunk_end = offset + #bytes
if chunk_end > total then total = chunk_end end
local stop = start + #data
if offset > stop then
  data = bytes
  start = offset
elseif chunk_end > stop then
  data = data .. string.sub(bytes, stop - offset + 1)
end
local cap = tonumber(ARGV[5])
if #data > cap then
  local drop = #data - cap
  data = string.sub(data, drop + 1)
  start = start + drop
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], p .. '0', int(start), p .. 'd', data, p .. 't', int(total))
return redis.call('HINCRBY', KEYS[1], 'ver', 1)
";

/// `KEYS`: record. `ARGV`: field, value, … set only if the job exists. The new version or -1.
const SET: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return redis.call('HINCRBY', KEYS[1], 'ver', 1)
";

/// Per-job wake-ups of this replica's waiters (entries die with their last waiter).
#[derive(Debug, Default)]
struct Waiters(Mutex<HashMap<String, Weak<Notify>>>);

impl Waiters {
    fn register(&self, id: &str) -> Arc<Notify> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = map.get(id).and_then(Weak::upgrade) {
            return live;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let notify = Arc::new(Notify::new());
        map.insert(id.to_owned(), Arc::downgrade(&notify));
        notify
    }

    fn wake(&self, id: &str) {
        let live = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .and_then(Weak::upgrade);
        if let Some(notify) = live {
            notify.notify_waiters();
        }
    }
}

/// The Lua scripts, loaded once (`EVALSHA`, falling back to `EVAL`).
struct Scripts {
    insert: Arc<Script>,
    finish: Arc<Script>,
    append: Arc<Script>,
    set: Arc<Script>,
}

/// Jobs in Redis, shared by every replica of the cluster.
pub struct RedisJobs {
    cluster: Cluster,
    finished_ttl: Duration,
    window_bytes: usize,
    waiters: Arc<Waiters>,
    scripts: Scripts,
    _listening: DropGuard,
}

impl std::fmt::Debug for RedisJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJobs")
            .field("cluster", &self.cluster)
            .field("window_bytes", &self.window_bytes)
            .finish_non_exhaustive()
    }
}

fn state_name(state: JobState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn corrupt(id: &str, what: impl std::fmt::Display) -> ClusterError {
    ClusterError::Corrupt(format!("job {id}: {what}"))
}

fn unavailable(e: ClusterError) -> JobError {
    JobError::Unavailable(e.to_string())
}

type Fields = HashMap<String, Vec<u8>>;

fn text(fields: &Fields, name: &str) -> String {
    fields
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn number(fields: &Fields, name: &str) -> Option<u64> {
    text(fields, name).parse().ok()
}

fn window(fields: &mut Fields, prefix: &str) -> Window {
    Window {
        start: number(fields, &format!("{prefix}0")).unwrap_or(0),
        data: fields.remove(&format!("{prefix}d")).unwrap_or_default(),
        total: number(fields, &format!("{prefix}t")).unwrap_or(0),
    }
}

/// A job from its hash (`None`: no such job).
fn parse(id: &str, mut fields: Fields) -> Result<Option<JobRecord>, ClusterError> {
    let Some(rec) = fields.get("rec") else {
        return Ok(None);
    };
    let mut job: JobRecord = serde_json::from_slice(rec).map_err(|e| corrupt(id, e))?;
    job.state = serde_json::from_value(serde_json::Value::String(text(&fields, "state")))
        .map_err(|e| corrupt(id, e))?;
    job.ended_ms = number(&fields, "ended");
    job.finish = match fields.get("fin") {
        Some(raw) => Some(serde_json::from_slice(raw).map_err(|e| corrupt(id, e))?),
        None => None,
    };
    job.pgid = text(&fields, "pgid").parse().ok();
    job.group = text(&fields, "grp") == "1";
    job.kill_requested = text(&fields, "kill") == "1";
    if fields.contains_key("opath") {
        job.stdout_path = text(&fields, "opath");
        job.stderr_path = text(&fields, "epath");
    }
    job.last_seq = number(&fields, "seq");
    job.version = number(&fields, "ver").unwrap_or(0);
    job.stdout = window(&mut fields, "o");
    job.stderr = window(&mut fields, "e");
    Ok(Some(job))
}

impl RedisJobs {
    /// The store on `cluster`, keeping ended jobs for `finished_ttl` and `window_bytes` of
    /// each stream; listens for other replicas' changes until dropped. Needs a Tokio runtime.
    /// One per cluster handle (a second one's listener would replace the first's).
    pub fn new(cluster: Cluster, finished_ttl: Duration, window_bytes: usize) -> RedisJobs {
        let waiters = Arc::new(Waiters::default());
        let stop = CancellationToken::new();
        let mut listener = cluster.inbox().listen(TOPIC, 1024);
        let wake = waiters.clone();
        let me = cluster.replica_id().to_owned();
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    message = listener.recv() => match message {
                        Some(body) => {
                            // `<job id> <replica>`; this replica woke its own waiters already.
                            let body = String::from_utf8_lossy(&body);
                            match body.split_once(' ') {
                                Some((_, from)) if from == me => {}
                                Some((id, _)) => wake.wake(id),
                                None => wake.wake(&body),
                            }
                        }
                        None => return,
                    },
                }
            }
        });
        let script = |lua: &str| Arc::new(Script::new(&format!("{INT}{lua}")));
        RedisJobs {
            cluster,
            finished_ttl,
            window_bytes,
            waiters,
            scripts: Scripts {
                insert: script(INSERT),
                finish: script(FINISH),
                append: script(APPEND),
                set: script(SET),
            },
            _listening: stop.drop_guard(),
        }
    }

    fn record_key(&self, id: &str) -> String {
        self.cluster.redis().key(&["job", id])
    }

    fn index_keys(&self, principal: &str) -> (String, String) {
        let who = hex::encode(principal.as_bytes());
        let redis = self.cluster.redis();
        (
            redis.key(&["job", "run", &who]),
            redis.key(&["job", "fin", &who]),
        )
    }

    fn session_key(&self, kasm_id: &str) -> String {
        self.cluster
            .redis()
            .key(&["job", "ses", &hex::encode(kasm_id.as_bytes())])
    }

    fn ttl_ms(&self) -> u64 {
        millis(self.finished_ttl)
    }

    /// Job `id` as stored (`None`: unknown or expired).
    async fn read(&self, id: &str) -> Result<Option<JobRecord>, ClusterError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.record_key(id));
        let fields: Fields = self.cluster.redis().query(cmd).await?;
        parse(id, fields)
    }

    /// The version of job `id` (0 when it is gone).
    async fn version(&self, id: &str) -> Result<u64, ClusterError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.record_key(id)).arg("ver");
        let version: Option<u64> = self.cluster.redis().query(cmd).await?;
        Ok(version.unwrap_or(0))
    }

    /// Wake the waiters of job `id` on every replica (this one even when Redis does not
    /// answer).
    async fn announce(&self, id: &str) {
        self.waiters.wake(id);
        let body = format!("{id} {}", self.cluster.replica_id());
        if let Err(e) = self.cluster.broadcast(TOPIC, body.as_bytes()).await {
            tracing::debug!(job = id, error = %e, "job store: change not broadcast; other replicas poll");
        }
    }

    /// Run a script that returns the new version (-1: nothing changed); announce a change.
    async fn change(&self, id: &str, script: &Arc<Script>, keys: Vec<String>, args: Vec<Vec<u8>>) {
        match self.invoke(script, keys, args).await {
            Ok(version) if version >= 0 => self.announce(id).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(job = id, error = %e, "job store: a change was not stored"),
        }
    }

    async fn invoke(
        &self,
        script: &Arc<Script>,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
    ) -> Result<i64, ClusterError> {
        let script = script.clone();
        self.cluster
            .redis()
            .run(|mut c| async move {
                let mut call = script.prepare_invoke();
                for key in &keys {
                    call.key(key);
                }
                for arg in &args {
                    call.arg(arg.as_slice());
                }
                call.invoke_async(&mut c).await
            })
            .await
    }

    /// End job `id` (running only) as `finish` says; `may_be_killed`: a kill request turns the
    /// end into `killed`. Whether this call ended it.
    async fn end(
        &self,
        id: &str,
        finish: &Finish,
        may_be_killed: bool,
    ) -> Result<bool, ClusterError> {
        let mut who = redis::cmd("HGET");
        who.arg(self.record_key(id)).arg("who");
        let Some(principal): Option<String> = self.cluster.redis().query(who).await? else {
            return Ok(false);
        };
        let (running, ended) = self.index_keys(&principal);
        let json = serde_json::to_vec(finish).map_err(|e| corrupt(id, e))?;
        let killed = if may_be_killed {
            let mut killed = finish.clone();
            killed.state = JobState::Killed;
            serde_json::to_vec(&killed).map_err(|e| corrupt(id, e))?
        } else {
            Vec::new()
        };
        let version = self
            .invoke(
                &self.scripts.finish,
                vec![self.record_key(id), running, ended],
                vec![
                    id.as_bytes().to_vec(),
                    state_name(finish.state).into_bytes(),
                    json,
                    killed,
                    now_ms().to_string().into_bytes(),
                    self.ttl_ms().to_string().into_bytes(),
                ],
            )
            .await?;
        if version >= 0 {
            self.announce(id).await;
        }
        Ok(version >= 0)
    }
}

impl RedisJobs {
    /// `job`, ended as `lost` first when it still runs [`ORPHAN_GRACE`] past its deadline
    /// and the replica that started it is gone (otherwise its collector ends it: its own
    /// deadline starts only once Kasm has started the command, which may be later).
    async fn unless_orphaned(&self, job: JobRecord) -> JobRecord {
        let overdue = job
            .deadline_ms
            .saturating_add(u64::try_from(ORPHAN_GRACE.as_millis()).unwrap_or(u64::MAX));
        if !job.state.is_running() || now_ms() < overdue {
            return job;
        }
        if let Some(replica) = &job.replica {
            match self.cluster.is_alive(replica).await {
                Ok(false) => {}
                // Alive, or unknown: never end a job its collector may still finish.
                Ok(true) | Err(_) => return job,
            }
        }
        let id = job.id.to_string();
        let lost = Finish::without_result(
            JobState::Lost,
            format!(
                "no result came back from session {} before the job's deadline, and the replica that started it is gone; the spill files in the session may still hold the output",
                job.kasm_id
            ),
        );
        match self.end(&id, &lost, false).await {
            Ok(_) => match self.read(&id).await {
                Ok(Some(ended)) => ended,
                _ => job,
            },
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "job store: an orphaned job could not be ended");
                job
            }
        }
    }
}

#[async_trait::async_trait]
impl JobStore for RedisJobs {
    async fn insert(&self, mut job: JobRecord, max_per_principal: usize) -> Result<(), JobError> {
        job.replica = Some(self.cluster.replica_id().to_owned());
        let id = job.id.to_string();
        let now = now_ms();
        let life = job
            .deadline_ms
            .saturating_add(self.ttl_ms())
            .saturating_sub(now)
            .max(1);
        let (running, ended) = self.index_keys(&job.principal);
        let json = serde_json::to_vec(&job).map_err(|e| JobError::Unavailable(e.to_string()))?;
        let keys = vec![
            self.record_key(&id),
            running,
            ended,
            self.session_key(&job.kasm_id),
        ];
        let args: Vec<Vec<u8>> = vec![
            id.clone().into_bytes(),
            json,
            job.principal.clone().into_bytes(),
            now.to_string().into_bytes(),
            life.to_string().into_bytes(),
            job.deadline_ms.to_string().into_bytes(),
            now.saturating_sub(self.ttl_ms()).to_string().into_bytes(),
            max_per_principal.to_string().into_bytes(),
            self.ttl_ms().to_string().into_bytes(),
        ];
        let script = self.scripts.insert.clone();
        let answer: Vec<String> = self
            .cluster
            .redis()
            .run(|mut c| async move {
                let mut call = script.prepare_invoke();
                for key in &keys {
                    call.key(key);
                }
                for arg in &args {
                    call.arg(arg.as_slice());
                }
                call.invoke_async(&mut c).await
            })
            .await
            .map_err(unavailable)?;
        match answer.split_first() {
            Some((status, rest)) if status == "full" => Err(JobError::TooMany(
                rest.first()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(max_per_principal),
            )),
            Some((status, evicted)) if status == "ok" => {
                if !evicted.is_empty() {
                    let keys: Vec<String> = evicted.iter().map(|e| self.record_key(e)).collect();
                    if let Err(e) = self.cluster.redis().del(&keys).await {
                        tracing::debug!(error = %e, "job store: evicted jobs left to expire");
                    }
                }
                Ok(())
            }
            _ => Err(JobError::Unavailable(format!(
                "the insert script answered {answer:?}"
            ))),
        }
    }

    async fn get(&self, owner: Owner<'_>, id: &JobId) -> Result<JobRecord, JobError> {
        match self.read(id.as_str()).await {
            Ok(Some(job)) if job.principal == owner.principal => {
                Ok(self.unless_orphaned(job).await)
            }
            Ok(_) => Err(JobError::NotFound(id.to_string())),
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "job store: cannot read a job");
                Err(unavailable(e))
            }
        }
    }

    async fn list(&self, owner: Owner<'_>) -> Result<Vec<JobSummary>, JobError> {
        let (running, ended) = self.index_keys(owner.principal);
        let now = now_ms();
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&running)
            .arg("-inf")
            .arg(now.saturating_sub(self.ttl_ms()))
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&ended)
            .arg("-inf")
            .arg(now.saturating_sub(self.ttl_ms()))
            .ignore()
            .cmd("ZRANGE")
            .arg(&running)
            .arg(0)
            .arg(-1)
            .cmd("ZRANGE")
            .arg(&ended)
            .arg(0)
            .arg(-1);
        let (live, done): (Vec<String>, Vec<String>) = self
            .cluster
            .redis()
            .run(|mut c| async move { pipe.query_async(&mut c).await })
            .await
            .map_err(unavailable)?;
        let ids: Vec<String> = live.into_iter().chain(done).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(self.record_key(id));
        }
        let hashes: Vec<Fields> = self
            .cluster
            .redis()
            .run(|mut c| async move { pipe.query_async(&mut c).await })
            .await
            .map_err(unavailable)?;
        let found: Vec<JobRecord> = ids
            .iter()
            .zip(hashes)
            .filter_map(|(id, fields)| match parse(id, fields) {
                Ok(job) => job,
                Err(e) => {
                    tracing::warn!(error = %e, "job store: a job was skipped in a listing");
                    None
                }
            })
            .filter(|j| j.principal == owner.principal)
            .collect();
        let mut mine = Vec::with_capacity(found.len());
        for job in found {
            mine.push(self.unless_orphaned(job).await);
        }
        mine.sort_by_key(|j| std::cmp::Reverse(j.started_ms));
        Ok(mine.iter().map(JobRecord::summary).collect())
    }

    async fn append(&self, id: &JobId, seq: u64, stream: Stream, offset: u64, bytes: &[u8]) {
        let prefix = match stream {
            Stream::Stdout => "o",
            Stream::Stderr => "e",
        };
        self.change(
            id.as_str(),
            &self.scripts.append,
            vec![self.record_key(id.as_str())],
            vec![
                seq.to_string().into_bytes(),
                prefix.as_bytes().to_vec(),
                offset.to_string().into_bytes(),
                bytes.to_vec(),
                self.window_bytes.to_string().into_bytes(),
            ],
        )
        .await;
    }

    async fn started(&self, id: &JobId, pgid: Option<i64>, group: bool, spill_dir: &str) {
        let mut fields: Vec<Vec<u8>> = vec![
            b"pgid".to_vec(),
            pgid.map(|p| p.to_string()).unwrap_or_default().into_bytes(),
            b"grp".to_vec(),
            if group { b"1".to_vec() } else { b"0".to_vec() },
        ];
        if !spill_dir.is_empty() {
            fields.extend([
                b"opath".to_vec(),
                format!("{spill_dir}/stdout").into_bytes(),
                b"epath".to_vec(),
                format!("{spill_dir}/stderr").into_bytes(),
            ]);
        }
        self.change(
            id.as_str(),
            &self.scripts.set,
            vec![self.record_key(id.as_str())],
            fields,
        )
        .await;
    }

    async fn kill_requested(&self, id: &JobId) {
        self.change(
            id.as_str(),
            &self.scripts.set,
            vec![self.record_key(id.as_str())],
            vec![b"kill".to_vec(), b"1".to_vec()],
        )
        .await;
    }

    async fn finish(&self, id: &JobId, finish: Finish) {
        let may_be_killed = finish.state != JobState::Lost;
        for attempt in 1..=FINISH_ATTEMPTS {
            match self.end(id.as_str(), &finish, may_be_killed).await {
                Ok(_) => return,
                Err(e) if attempt < FINISH_ATTEMPTS => {
                    tracing::warn!(job = %id, error = %e, attempt, "job store: the end of a job was not stored; retrying");
                    tokio::time::sleep(POLL / 4).await;
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "job store: the end of a job could not be stored; it stays running until its deadline");
                }
            }
        }
    }

    async fn wait_change(&self, id: &JobId, seen: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        let notify = self.waiters.register(id.as_str());
        let mut version = seen;
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.version(id.as_str()).await {
                Ok(now) if now != seen => return now,
                Ok(now) => version = now,
                Err(e) => {
                    tracing::debug!(job = %id, error = %e, "job store: cannot read a job's version; waiting")
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return version;
            }
            let _ = tokio::time::timeout_at(deadline.min(now + POLL), notified).await;
        }
    }

    async fn state(&self, id: &JobId) -> Result<Option<(JobState, u64)>, JobError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.record_key(id.as_str()))
            .arg("state")
            .arg("ver");
        let (state, version): (Option<String>, Option<u64>) =
            self.cluster.redis().query(cmd).await.map_err(unavailable)?;
        let Some(state) = state else {
            return Ok(None);
        };
        let state: JobState = serde_json::from_value(serde_json::Value::String(state))
            .map_err(|e| unavailable(corrupt(id.as_str(), e)))?;
        Ok(Some((state, version.unwrap_or(0))))
    }

    async fn end_session(&self, kasm_id: &str) -> usize {
        let session = self.session_key(kasm_id);
        let mut members = redis::cmd("SMEMBERS");
        members.arg(&session);
        let ids: Vec<String> = match self.cluster.redis().query(members).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(kasm_id, error = %e, "job store: cannot list a session's jobs to end them");
                return 0;
            }
        };
        let finish = Finish::without_result(
            JobState::SessionEnded,
            "the session was destroyed, which ended the command",
        );
        let mut ended = 0;
        let mut failed = false;
        for id in &ids {
            match self.end(id, &finish, false).await {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => {
                    failed = true;
                    tracing::warn!(job = %id, error = %e, "job store: a job of an ended session was not ended");
                }
            }
        }
        // Kept when a job could not be ended, so a later end of the session tries again.
        if failed {
            return ended;
        }
        if let Err(e) = self.cluster.redis().del(&[session]).await {
            tracing::debug!(error = %e, "job store: a session's job set left to expire");
        }
        ended
    }
}
