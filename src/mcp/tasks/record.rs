//! The stored form of a task: plain serde data, so that any store (memory, Redis) can keep it
//! and any replica can read it. Times are milliseconds since the Unix epoch.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task id: 128 random bits as 32 lower-case hex digits. Ids from clients are parsed
/// ([`TaskId::parse`]): anything else cannot name a task and is "not found".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// A fresh, unguessable id.
    pub fn random() -> TaskId {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        TaskId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The id a client sent, if it has the shape of ours.
    pub fn parse(text: &str) -> Option<TaskId> {
        let ok = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| TaskId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task's status (the same five values in both eras).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    /// `completed`, `failed` and `cancelled` never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Working => "working",
            TaskStatus::InputRequired => "input_required",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// Which revision created the task: its wire shape and what `failed` means (2025-11-25: a
/// tool result with `isError`, too; 2026-07-28: only a JSON-RPC error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// 2025-11-25 (initialize-based).
    Legacy,
    /// 2026-07-28 with the `io.modelcontextprotocol/tasks` extension.
    Modern,
}

/// What the underlying request returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskOutcome {
    /// The `CallToolResult` (also when `isError` is true).
    Result { result: Value },
    /// A JSON-RPC error.
    Error {
        code: i64,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    },
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: TaskId,
    /// The principal that created it: the only one that may see or cancel it.
    pub owner: String,
    /// The tool the task runs.
    pub tool: String,
    pub era: Era,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// Kept this long after creation, then deleted.
    pub ttl_ms: u64,
    pub poll_interval_ms: u64,
    /// Set once the task is `completed` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TaskOutcome>,
    /// Someone asked to cancel it: the replica running it stops the call.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Requests to the client the call waits for, by key (`{method, params}`): the task is
    /// `input_required` while there are any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_requests: BTreeMap<String, Value>,
    /// Answers from `tasks/update` the call has not picked up yet, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_responses: BTreeMap<String, Value>,
}

impl TaskRecord {
    /// A new `working` task.
    pub fn new(
        owner: &str,
        tool: &str,
        era: Era,
        ttl_ms: u64,
        poll_interval_ms: u64,
    ) -> TaskRecord {
        let now = now_ms();
        TaskRecord {
            id: TaskId::random(),
            owner: owner.to_string(),
            tool: tool.to_string(),
            era,
            status: TaskStatus::Working,
            status_message: Some(format!("{tool} is running")),
            created_at_ms: now,
            updated_at_ms: now,
            ttl_ms,
            poll_interval_ms,
            outcome: None,
            cancel_requested: false,
            input_requests: BTreeMap::new(),
            input_responses: BTreeMap::new(),
        }
    }

    /// Whether its time to live has run out at `now` (ms).
    pub fn expired_at(&self, now: u64) -> bool {
        self.created_at_ms.saturating_add(self.ttl_ms) <= now
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_parse_only_that_shape() {
        let a = TaskId::random();
        let b = TaskId::random();
        assert_ne!(a, b);
        assert_eq!(TaskId::parse(a.as_str()), Some(a.clone()));
        for bad in [
            "",
            "abc",
            &a.as_str().to_uppercase(),
            &format!("{a}0"),
            "../x",
        ] {
            assert_eq!(TaskId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut r = TaskRecord::new("alice", "execute_kasm_command", Era::Legacy, 1000, 500);
        r.outcome = Some(TaskOutcome::Error {
            code: -32603,
            message: "boom".into(),
            data: None,
        });
        let text = serde_json::to_string(&r).unwrap();
        let back: TaskRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert!(!r.expired_at(r.created_at_ms + 999));
        assert!(r.expired_at(r.created_at_ms + 1000));
    }
}
