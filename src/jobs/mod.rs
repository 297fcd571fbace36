//! Background command jobs: what is known about a command that outlives its tool call, kept
//! behind the [`JobStore`] trait so that any replica holding the store can read, wait on and
//! kill a job.
//!
//! A job is plain serde data ([`JobRecord`]): its owner (principal and Kasm session), the
//! command, the process group id the in-session wrapper reported (so `kill_command` needs
//! nothing but the record: a Kasm exec of `kill` on that group), the paths of the spill files
//! inside the session that hold the whole output, and a bounded in-memory [`Window`] of the
//! newest bytes of stdout and stderr. The memory implementation ([`MemoryJobs`]) is the
//! default for one process; with `[cluster] redis_url` every replica uses [`RedisJobs`]
//! (records, output windows and indexes in Redis), so any replica can read, list, wait on and
//! kill a job another replica started.

mod id;
mod memory;
mod record;
mod redis;
mod window;

pub use id::JobId;
pub use memory::MemoryJobs;
pub use record::{Finish, JobRecord, JobState, JobSummary, Stream};
pub use redis::{ORPHAN_GRACE, RedisJobs};
pub use window::{Slice, Window};

use std::time::Duration;

/// Why a job operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Unknown, expired, or owned by another principal (indistinguishable on purpose).
    #[error(
        "no job {0} is known for you: it never existed, belongs to someone else, or finished more than jobs.finished_ttl_s ago (list_commands shows your jobs)"
    )]
    NotFound(String),
    #[error(
        "you already run {0} commands (jobs.max_jobs_per_principal): wait for some to end or stop them with kill_command (list_commands shows them)"
    )]
    TooMany(usize),
    /// The shared store (Redis) did not answer; the text says what to check.
    #[error("the job store could not be reached: {0}")]
    Unavailable(String),
}

/// Who asks: only jobs of this principal are visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner<'a> {
    pub principal: &'a str,
}

/// The store of jobs. Every method is keyed by the job id and checks the owner where a caller
/// asks; the writers (`append`, `set_pgid`, `finish`) are called by the collector that
/// receives the wrapper's uploads.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Add a new running job, unless its principal already runs `max_per_principal`; of its
    /// finished jobs, the oldest beyond `max_per_principal - 1` are forgotten.
    async fn insert(&self, job: JobRecord, max_per_principal: usize) -> Result<(), JobError>;
    /// The job, if `owner` may see it.
    async fn get(&self, owner: Owner<'_>, id: &JobId) -> Result<JobRecord, JobError>;
    /// The owner's jobs, newest first.
    async fn list(&self, owner: Owner<'_>) -> Result<Vec<JobSummary>, JobError>;
    /// Add output bytes at `offset` of `stream` (a chunk numbered `seq`; older or repeated
    /// sequence numbers are ignored).
    async fn append(&self, id: &JobId, seq: u64, stream: Stream, offset: u64, bytes: &[u8]);
    /// The wrapper reported the command's process group (or lone pid) and spill directory.
    async fn started(&self, id: &JobId, pgid: Option<i64>, group: bool, spill_dir: &str);
    /// `kill_command` is stopping the job.
    async fn kill_requested(&self, id: &JobId);
    /// The job ended (first call wins).
    async fn finish(&self, id: &JobId, finish: Finish);
    /// Wait until the job's version differs from `seen` or `timeout` passes; returns the
    /// version now (0 when the job is gone).
    async fn wait_change(&self, id: &JobId, seen: u64, timeout: Duration) -> u64;
    /// The state and version of a job, for its collector (no owner check: never shown to a
    /// caller).
    /// `Err` when the store could not be asked (the job's fate is unknown, not ended).
    async fn state(&self, id: &JobId) -> Result<Option<(JobState, u64)>, JobError>;
    /// The session ended: every running job in it ends as `SessionEnded`. Returns how many.
    async fn end_session(&self, kasm_id: &str) -> usize;
}
