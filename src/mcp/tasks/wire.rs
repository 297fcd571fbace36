//! A task record on the wire: the 2025-11-25 `Task` (`ttl`, `pollInterval`), the 2026-07-28
//! `Task` / `DetailedTask` (`ttlMs`, `pollIntervalMs`, the result or error inline), the
//! creating results of both eras and `notifications/tasks/status`.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::record::{TaskOutcome, TaskRecord, TaskStatus};

/// `_meta` key that ties a message to its task (2025-11-25).
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
/// `_meta` key of a `CreateTaskResult` with a text for the model while the task runs.
pub const IMMEDIATE_RESPONSE: &str = "io.modelcontextprotocol/model-immediate-response";

/// ISO 8601 (RFC 3339, UTC) for milliseconds since the epoch.
pub fn iso8601(ms: u64) -> String {
    let nanos = i128::from(ms).saturating_mul(1_000_000);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

fn base(record: &TaskRecord) -> Map<String, Value> {
    let mut task = Map::new();
    task.insert("taskId".into(), json!(record.id.as_str()));
    task.insert("status".into(), json!(record.status.as_str()));
    if let Some(message) = &record.status_message {
        task.insert("statusMessage".into(), json!(message));
    }
    task.insert("createdAt".into(), json!(iso8601(record.created_at_ms)));
    task.insert("lastUpdatedAt".into(), json!(iso8601(record.updated_at_ms)));
    task
}

/// The 2025-11-25 `Task` object (`tasks/get`, `tasks/cancel`, `tasks/list`, notifications).
pub fn legacy_task(record: &TaskRecord) -> Value {
    let mut task = base(record);
    task.insert("ttl".into(), json!(record.ttl_ms));
    task.insert("pollInterval".into(), json!(record.poll_interval_ms));
    Value::Object(task)
}

/// The 2026-07-28 `Task` fields (without `resultType`).
fn modern_task(record: &TaskRecord) -> Map<String, Value> {
    let mut task = base(record);
    task.insert("ttlMs".into(), json!(record.ttl_ms));
    task.insert("pollIntervalMs".into(), json!(record.poll_interval_ms));
    task
}

/// The 2025-11-25 `CreateTaskResult`: `{task, _meta}`.
pub fn legacy_created(record: &TaskRecord) -> Value {
    json!({
        "task": legacy_task(record),
        "_meta": {
            IMMEDIATE_RESPONSE: format!(
                "{} runs in the background as task {}; its result comes with tasks/result.",
                record.tool, record.id
            ),
        },
    })
}

/// The 2026-07-28 `CreateTaskResult`: the task's fields flat, `resultType: "task"`.
pub fn modern_created(record: &TaskRecord) -> Value {
    let mut task = modern_task(record);
    task.insert("resultType".into(), json!("task"));
    Value::Object(task)
}

/// The 2026-07-28 `DetailedTask` of `tasks/get`: `result` when completed, `error` when failed.
pub fn modern_detailed(record: &TaskRecord) -> Value {
    let mut task = modern_task(record);
    match (&record.status, &record.outcome) {
        (TaskStatus::Completed, Some(TaskOutcome::Result { result })) => {
            task.insert("result".into(), result.clone());
        }
        (TaskStatus::Failed, Some(outcome)) => {
            task.insert("error".into(), error_object(outcome));
        }
        (TaskStatus::InputRequired, _) => {
            let requests: Map<String, Value> = record
                .input_requests
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            task.insert("inputRequests".into(), Value::Object(requests));
        }
        _ => {}
    }
    Value::Object(task)
}

/// The JSON-RPC error object of a failed task (a tool result that failed in 2025-11-25
/// becomes an internal error carrying the result's text).
pub fn error_object(outcome: &TaskOutcome) -> Value {
    match outcome {
        TaskOutcome::Error {
            code,
            message,
            data,
        } => {
            let mut error = json!({ "code": code, "message": message });
            if let (Some(data), Some(obj)) = (data, error.as_object_mut()) {
                obj.insert("data".into(), data.clone());
            }
            error
        }
        TaskOutcome::Result { result } => json!({
            "code": crate::mcp::jsonrpc::code::INTERNAL_ERROR,
            "message": first_text(result).unwrap_or_else(|| "the tool reported an error".into()),
        }),
    }
}

/// The first text block of a `CallToolResult`, cut to 500 characters (status messages).
pub fn first_text(result: &Value) -> Option<String> {
    let text = result
        .get("content")?
        .as_array()?
        .iter()
        .find_map(|c| c.get("text").and_then(Value::as_str))?;
    Some(text.chars().take(500).collect())
}

/// `notifications/tasks/status` (2025-11-25) with the full task.
pub fn status_notification(record: &TaskRecord) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/tasks/status",
        "params": legacy_task(record),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::tasks::record::Era;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
    }

    #[test]
    fn each_era_names_its_fields() {
        let mut r = TaskRecord::new("a", "t", Era::Modern, 60_000, 500);
        let legacy = legacy_task(&r);
        assert_eq!(legacy["ttl"], 60_000);
        assert_eq!(legacy["pollInterval"], 500);
        assert!(legacy.get("ttlMs").is_none());
        let created = modern_created(&r);
        assert_eq!(created["resultType"], "task");
        assert_eq!(created["ttlMs"], 60_000);
        assert!(created.get("ttl").is_none() && created.get("task").is_none());
        r.status = TaskStatus::Completed;
        r.outcome = Some(TaskOutcome::Result {
            result: json!({"content":[{"type":"text","text":"hi"}],"isError":false}),
        });
        assert_eq!(modern_detailed(&r)["result"]["content"][0]["text"], "hi");
        r.status = TaskStatus::Failed;
        r.outcome = Some(TaskOutcome::Error {
            code: -32603,
            message: "boom".into(),
            data: None,
        });
        let failed = modern_detailed(&r);
        assert_eq!(failed["error"]["code"], -32603);
        assert!(failed.get("result").is_none());
    }
}
