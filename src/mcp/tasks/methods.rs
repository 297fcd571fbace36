//! The `tasks/*` methods, for the router to call: `tasks/get`, `tasks/result` (blocks until
//! the task ends), `tasks/list` and `tasks/cancel` of 2025-11-25; `tasks/get` (result inline),
//! `tasks/update` and `tasks/cancel` (empty acknowledgements) of 2026-07-28. A task of another
//! principal, an expired one and a malformed id are all "not found" (-32602).

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::input::CLIENT_ERROR;
use super::record::{TaskId, TaskOutcome, TaskRecord, TaskStatus};
use super::store::{CancelError, TaskStore, TaskStoreError};
use super::wire::{RELATED_TASK, legacy_task, modern_detailed, status_notification};
use crate::mcp::client_requests::{ClientRequestError, ClientRequester};
use crate::mcp::jsonrpc::{RpcError, code, params_object, required_str};
use crate::mcp::pagination::{Page, cursor_param, paginate};

/// How long one wait of `tasks/result` lasts before the task is read again.
const RESULT_RECHECK: Duration = Duration::from_secs(5);

fn not_found(id: &str) -> RpcError {
    RpcError::invalid_params(format!(
        "Failed to retrieve task: Task not found ({id:?} is not a task of yours, or it expired)"
    ))
}

/// The store could not be read: an internal error naming the cause (Redis and its setting),
/// never "not found", which would tell the client its task is gone.
fn unavailable(e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(e.to_string())
}

/// `params.taskId`, parsed.
fn task_id(params: Option<&Value>) -> Result<(TaskId, String), RpcError> {
    let params = params_object(params)?;
    let raw = required_str(&params, "taskId")?;
    TaskId::parse(raw)
        .map(|id| (id, raw.to_string()))
        .ok_or_else(|| not_found(raw))
}

async fn lookup(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
) -> Result<TaskRecord, RpcError> {
    let (id, raw) = task_id(params)?;
    found(store.get(&id, owner).await, &raw)
}

/// A store lookup as the methods answer it.
fn found(
    lookup: Result<Option<TaskRecord>, TaskStoreError>,
    raw: &str,
) -> Result<TaskRecord, RpcError> {
    lookup.map_err(unavailable)?.ok_or_else(|| not_found(raw))
}

/// 2025-11-25 `tasks/get`.
pub async fn legacy_get(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
) -> Result<Value, RpcError> {
    Ok(legacy_task(&lookup(store, params, owner).await?))
}

/// 2026-07-28 `tasks/get` (the `DetailedTask`).
pub async fn modern_get(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
) -> Result<Value, RpcError> {
    Ok(modern_detailed(&lookup(store, params, owner).await?))
}

/// 2025-11-25 `tasks/result`: wait until the task ends, then answer exactly what the call
/// would have (its result, with the related-task `_meta`, or its JSON-RPC error). While the
/// task is `input_required`, its requests go to the client on this request's stream (`ask`)
/// and the answers back to the task. When it had to wait, `notifications/tasks/status` goes
/// first on `notifications`.
pub async fn legacy_result(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
    notifications: &mpsc::UnboundedSender<Value>,
    ask: &ClientRequester,
) -> Result<Value, RpcError> {
    let (id, raw) = task_id(params)?;
    let mut waited = false;
    let mut asked = std::collections::BTreeSet::new();
    let record = loop {
        let record = found(store.get(&id, owner).await, &raw)?;
        if record.status.is_terminal() {
            break record;
        }
        waited = true;
        let pending: Vec<(String, Value)> = record
            .input_requests
            .iter()
            .filter(|(key, _)| !asked.contains(*key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if pending.is_empty() {
            store.changed(&id, RESULT_RECHECK).await;
            continue;
        }
        for (key, request) in pending {
            asked.insert(key.clone());
            let answer = forward_input(ask, &record, &request).await;
            store
                .provide_input(&id, owner, Map::from_iter([(key, answer)]))
                .await;
        }
    };
    if waited {
        let _ = notifications.send(status_notification(&record));
    }
    match (&record.status, record.outcome) {
        (_, Some(TaskOutcome::Result { result })) => {
            let mut result = match result {
                Value::Object(obj) => obj,
                other => Map::from_iter([("value".to_string(), other)]),
            };
            let meta = result
                .entry("_meta")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert(RELATED_TASK.into(), json!({ "taskId": record.id.as_str() }));
            }
            Ok(Value::Object(result))
        }
        (
            _,
            Some(TaskOutcome::Error {
                code,
                message,
                data,
            }),
        ) => {
            let error = RpcError::new(code, message);
            Err(match data {
                Some(data) => error.with_data(data),
                None => error,
            })
        }
        (TaskStatus::Cancelled, None) => Err(RpcError::new(
            code::INTERNAL_ERROR,
            format!("task {raw} was cancelled before it finished, so it has no result"),
        )),
        (status, None) => Err(RpcError::internal(format!(
            "task {raw} ended ({}) without a result",
            status.as_str()
        ))),
    }
}

/// Send one of the task's input requests to the client (with the related-task `_meta`) and
/// return its answer, or its error under [`CLIENT_ERROR`].
async fn forward_input(ask: &ClientRequester, record: &TaskRecord, request: &Value) -> Value {
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let mut params = request.get("params").cloned().unwrap_or_else(|| json!({}));
    if let Some(obj) = params.as_object_mut() {
        let meta = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(RELATED_TASK.into(), json!({ "taskId": record.id.as_str() }));
        }
    }
    match ask.request(method, params).await {
        Ok(answer) => answer,
        Err(ClientRequestError::ClientError(error)) => json!({ CLIENT_ERROR: error }),
        Err(other) => json!({ CLIENT_ERROR: {
            "code": code::INTERNAL_ERROR,
            "message": format!("the client could not answer: {other}"),
        }}),
    }
}

/// 2025-11-25 `tasks/list`: the caller's tasks, oldest first, `page_size` per page.
pub async fn legacy_list(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
    page_size: usize,
) -> Result<Value, RpcError> {
    let after = cursor_param(&params_object(params)?)?;
    let all = store.list(owner).await.map_err(unavailable)?;
    let key = |r: &TaskRecord| format!("{:020}-{}", r.created_at_ms, r.id);
    let Page { items, next_cursor } = paginate(all, key, after.as_deref(), page_size);
    let mut result = Map::new();
    result.insert(
        "tasks".into(),
        Value::Array(items.iter().map(legacy_task).collect()),
    );
    if let Some(cursor) = next_cursor {
        result.insert("nextCursor".into(), json!(cursor));
    }
    Ok(Value::Object(result))
}

/// 2025-11-25 `tasks/cancel`: the task, now `cancelled`; -32602 for a terminal one.
pub async fn legacy_cancel(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
) -> Result<Value, RpcError> {
    let (id, raw) = task_id(params)?;
    match store.request_cancel(&id, owner).await {
        Ok(record) => Ok(legacy_task(&record)),
        Err(CancelError::NotFound) => Err(not_found(&raw)),
        Err(e @ CancelError::Terminal(_)) => {
            Err(RpcError::invalid_params(format!("Cannot cancel task: {e}")))
        }
        Err(e @ CancelError::Unavailable(_)) => Err(unavailable(e)),
    }
}

/// 2026-07-28 `tasks/cancel`: an empty acknowledgement (also for a task that already ended).
pub async fn modern_cancel(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
) -> Result<Value, RpcError> {
    let (id, raw) = task_id(params)?;
    match store.request_cancel(&id, owner).await {
        Ok(_) | Err(CancelError::Terminal(_)) => Ok(json!({})),
        Err(CancelError::NotFound) => Err(not_found(&raw)),
        Err(e @ CancelError::Unavailable(_)) => Err(unavailable(e)),
    }
}

/// 2026-07-28 `tasks/update`: hands the answers to outstanding `inputRequests` to the running
/// call (answers to other keys are ignored) and acknowledges with an empty result.
pub async fn modern_update(
    store: &dyn TaskStore,
    params: Option<&Value>,
    owner: &str,
) -> Result<Value, RpcError> {
    let (id, raw) = task_id(params)?;
    let object = params_object(params)?;
    let responses = match object.get("inputResponses") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(responses)) => responses.clone(),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "params.inputResponses must be an object",
            ));
        }
    };
    let taken = store
        .provide_input(&id, owner, responses)
        .await
        .ok_or_else(|| not_found(&raw))?;
    tracing::debug!(task = %id, taken, "tasks/update");
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::tasks::memory::MemoryTaskStore;
    use crate::mcp::tasks::record::Era;

    #[tokio::test]
    async fn tasks_list_pages_through_the_callers_tasks_only() {
        let store = MemoryTaskStore::default();
        let mut ids = Vec::new();
        for i in 0..3u64 {
            let mut r = TaskRecord::new("alice", "t", Era::Legacy, 60_000, 500);
            r.created_at_ms += i;
            ids.push(r.id.to_string());
            store.create(r).await.unwrap();
        }
        store
            .create(TaskRecord::new("bob", "t", Era::Legacy, 60_000, 500))
            .await
            .unwrap();
        let first = legacy_list(&store, None, "alice", 2).await.unwrap();
        let page: Vec<&str> = first["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskId"].as_str().unwrap())
            .collect();
        assert_eq!(page, vec![ids[0].as_str(), ids[1].as_str()]);
        let cursor = first["nextCursor"].clone();
        let second = legacy_list(&store, Some(&json!({"cursor": cursor})), "alice", 2)
            .await
            .unwrap();
        assert_eq!(second["tasks"].as_array().unwrap().len(), 1);
        assert_eq!(second["tasks"][0]["taskId"], ids[2].as_str());
        assert!(second.get("nextCursor").is_none());
        let bad = legacy_list(&store, Some(&json!({"cursor": "nope"})), "alice", 2).await;
        assert_eq!(bad.unwrap_err().code, code::INVALID_PARAMS);
        let unknown = legacy_get(&store, Some(&json!({"taskId": "not-a-task"})), "alice").await;
        assert_eq!(unknown.unwrap_err().code, code::INVALID_PARAMS);
    }
}
