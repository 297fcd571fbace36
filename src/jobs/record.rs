//! [`JobRecord`]: everything known about one job, as plain serializable data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::id::JobId;
use super::window::Window;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// The command is running (or its result has not arrived yet).
    Running,
    /// The command ended by itself; `exit_code` says how.
    Exited,
    /// The command ran longer than its timeout and was killed.
    TimedOut,
    /// `kill_command` (or a cancelled call) stopped it.
    Killed,
    /// No result arrived before the job's deadline (the wrapper died, the session was paused
    /// or lost its network).
    Lost,
    /// Its session was destroyed.
    SessionEnded,
}

impl JobState {
    pub fn is_running(self) -> bool {
        self == JobState::Running
    }
}

/// One output stream of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finish {
    pub state: JobState,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<u64>,
    /// Processes the command left behind still held its output when it ended.
    pub incomplete: bool,
    /// The first bytes of stdout and stderr (at most the call's output cap), for the result
    /// of a call that waited for the end.
    #[serde(default, with = "super::window::serde_bytes_b64")]
    pub head_stdout: Vec<u8>,
    #[serde(default, with = "super::window::serde_bytes_b64")]
    pub head_stderr: Vec<u8>,
    /// Why, in words, when the state is not `exited`.
    pub note: Option<String>,
}

impl Finish {
    /// An end without an exit status or output (lost, killed by this server, session gone),
    /// with why in words.
    pub fn without_result(state: JobState, note: impl Into<String>) -> Finish {
        Finish {
            state,
            exit_code: None,
            duration_ms: None,
            incomplete: false,
            head_stdout: Vec::new(),
            head_stderr: Vec::new(),
            note: Some(note.into()),
        }
    }
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    /// The principal that started it: nobody else sees it.
    pub principal: String,
    pub kasm_id: String,
    /// The Kasm user the session belongs to (for the kill exec).
    pub owner_user_id: Option<String>,
    /// The container user the command runs as (`None`: the image's user).
    pub user: Option<String>,
    pub command: String,
    /// Unix milliseconds.
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// Unix milliseconds after which the job may be forgotten when it is still running
    /// (its timeout plus a grace).
    pub deadline_ms: u64,
    pub state: JobState,
    /// The process group of the command inside the session, once the wrapper reported it
    /// (`group` false: a lone pid, when the container has no `setsid`).
    pub pgid: Option<i64>,
    pub group: bool,
    /// `kill_command` signalled it: its end counts as `killed`.
    pub kill_requested: bool,
    /// The spill files inside the session: the whole stdout and stderr.
    pub stdout_path: String,
    pub stderr_path: String,
    pub stdout: Window,
    pub stderr: Window,
    /// Highest chunk sequence number applied.
    pub last_seq: Option<u64>,
    pub finish: Option<Finish>,
    /// Grows on every change (for waiters).
    pub version: u64,
    /// `[cluster]`: the replica that started the job (its collector ends it at the deadline);
    /// set by the shared store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

/// A line of `list_commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobSummary {
    pub job_id: String,
    pub kasm_id: String,
    pub command: String,
    pub state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Start time, RFC 3339 (UTC).
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Bytes of stdout and stderr the command has written so far.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub stdout_path: String,
    pub stderr_path: String,
}

/// Unix milliseconds as RFC 3339.
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms).saturating_mul(1_000_000);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl JobRecord {
    pub fn summary(&self) -> JobSummary {
        JobSummary {
            job_id: self.id.to_string(),
            kasm_id: self.kasm_id.clone(),
            command: self.command.chars().take(200).collect(),
            state: self.state,
            exit_code: self.finish.as_ref().and_then(|f| f.exit_code),
            started_at: rfc3339(self.started_ms),
            ended_at: self.ended_ms.map(rfc3339),
            stdout_bytes: self.stdout.total,
            stderr_bytes: self.stderr.total,
            stdout_path: self.stdout_path.clone(),
            stderr_path: self.stderr_path.clone(),
        }
    }

    pub fn window(&self, stream: Stream) -> &Window {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
