//! [`MemoryTaskStore`]: the in-process [`TaskStore`] (one replica: demo, tests, single
//! server). Expired tasks are dropped on the next write; waiters are woken on every change.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::record::{TaskId, TaskOutcome, TaskRecord, TaskStatus, now_ms};
use super::store::{CancelError, StoredCap, TaskStore, TaskStoreError, check_caps};

pub use super::store::MAX_RUNNING_PER_OWNER;
/// Most tasks kept in all (running or finished, not expired): beyond, creation is refused.
pub const MAX_RECORDS: usize = 100_000;

/// Tasks in memory.
#[derive(Debug, Default)]
pub struct MemoryTaskStore {
    tasks: Mutex<HashMap<TaskId, TaskRecord>>,
    changed: Notify,
}

impl MemoryTaskStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, TaskRecord>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn live<'a>(tasks: &'a HashMap<TaskId, TaskRecord>, id: &TaskId) -> Option<&'a TaskRecord> {
    tasks.get(id).filter(|r| !r.expired_at(now_ms()))
}

#[async_trait]
impl TaskStore for MemoryTaskStore {
    async fn create(&self, record: TaskRecord) -> Result<(), TaskStoreError> {
        let mut tasks = self.lock();
        let now = now_ms();
        tasks.retain(|_, r| !r.expired_at(now));
        let running = tasks
            .values()
            .filter(|r| r.owner == record.owner && !r.status.is_terminal())
            .count();
        check_caps(
            &record.owner,
            running,
            tasks.len(),
            StoredCap::Total(MAX_RECORDS),
        )?;
        tasks.insert(record.id.clone(), record);
        Ok(())
    }

    async fn get(&self, id: &TaskId, owner: &str) -> Result<Option<TaskRecord>, TaskStoreError> {
        Ok(live(&self.lock(), id).filter(|r| r.owner == owner).cloned())
    }

    async fn list(&self, owner: &str) -> Result<Vec<TaskRecord>, TaskStoreError> {
        let now = now_ms();
        Ok(self
            .lock()
            .values()
            .filter(|r| r.owner == owner && !r.expired_at(now))
            .cloned()
            .collect())
    }

    async fn request_cancel(&self, id: &TaskId, owner: &str) -> Result<TaskRecord, CancelError> {
        let updated = {
            let mut tasks = self.lock();
            let now = now_ms();
            let record = tasks
                .get_mut(id)
                .filter(|r| r.owner == owner && !r.expired_at(now))
                .ok_or(CancelError::NotFound)?;
            if record.status.is_terminal() {
                return Err(CancelError::Terminal(record.status));
            }
            record.status = TaskStatus::Cancelled;
            record.status_message = Some("The task was cancelled by request.".into());
            record.cancel_requested = true;
            record.updated_at_ms = now;
            record.clone()
        };
        self.changed.notify_waiters();
        Ok(updated)
    }

    async fn cancel_requested(&self, id: &TaskId) -> bool {
        self.lock().get(id).is_some_and(|r| r.cancel_requested)
    }

    async fn finish(
        &self,
        id: &TaskId,
        status: TaskStatus,
        outcome: Option<TaskOutcome>,
        message: Option<String>,
    ) -> Option<TaskRecord> {
        let updated = {
            let mut tasks = self.lock();
            let record = tasks.get_mut(id).filter(|r| !r.status.is_terminal())?;
            record.status = status;
            record.outcome = outcome;
            record.status_message = message;
            record.updated_at_ms = now_ms();
            record.clone()
        };
        self.changed.notify_waiters();
        Some(updated)
    }

    async fn request_input(&self, id: &TaskId, key: &str, request: Value) -> bool {
        {
            let mut tasks = self.lock();
            let Some(record) = tasks.get_mut(id).filter(|r| !r.status.is_terminal()) else {
                return false;
            };
            record.input_requests.insert(key.to_string(), request);
            record.status = TaskStatus::InputRequired;
            record.status_message = Some("The task waits for input from the client.".into());
            record.updated_at_ms = now_ms();
        }
        self.changed.notify_waiters();
        true
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        owner: &str,
        responses: Map<String, Value>,
    ) -> Option<usize> {
        let taken = {
            let mut tasks = self.lock();
            let now = now_ms();
            let record = tasks
                .get_mut(id)
                .filter(|r| r.owner == owner && !r.expired_at(now))?;
            let mut taken = 0;
            for (key, answer) in responses {
                if record.input_requests.remove(&key).is_some() {
                    record.input_responses.insert(key, answer);
                    taken += 1;
                }
            }
            if taken > 0 {
                if record.input_requests.is_empty() && record.status == TaskStatus::InputRequired {
                    record.status = TaskStatus::Working;
                    record.status_message =
                        Some("The task continues with the client's input.".into());
                }
                record.updated_at_ms = now;
            }
            taken
        };
        if taken > 0 {
            self.changed.notify_waiters();
        }
        Some(taken)
    }

    async fn take_input(&self, id: &TaskId, key: &str) -> Option<Value> {
        self.lock()
            .get_mut(id)
            .and_then(|r| r.input_responses.remove(key))
    }

    async fn changed(&self, id: &TaskId, timeout: Duration) {
        let notified = self.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Already terminal (or gone): nothing more will happen to it.
        if live(&self.lock(), id).is_none_or(|r| r.status.is_terminal()) {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::tasks::record::Era;

    fn task(owner: &str) -> TaskRecord {
        TaskRecord::new(owner, "t", Era::Legacy, 60_000, 500)
    }

    #[tokio::test]
    async fn tasks_are_bound_to_their_owner() {
        let store = MemoryTaskStore::default();
        let a = task("alice");
        store.create(a.clone()).await.unwrap();
        assert_eq!(store.get(&a.id, "alice").await.unwrap(), Some(a.clone()));
        assert_eq!(store.get(&a.id, "bob").await.unwrap(), None);
        assert!(store.list("bob").await.unwrap().is_empty());
        assert_eq!(store.list("alice").await.unwrap().len(), 1);
        assert_eq!(
            store.request_cancel(&a.id, "bob").await,
            Err(CancelError::NotFound)
        );
        assert!(!store.cancel_requested(&a.id).await);
    }

    #[tokio::test]
    async fn cancel_is_a_flag_and_a_terminal_status_that_finish_cannot_undo() {
        let store = MemoryTaskStore::default();
        let a = task("alice");
        store.create(a.clone()).await.unwrap();
        let cancelled = store.request_cancel(&a.id, "alice").await.unwrap();
        assert_eq!(cancelled.status, TaskStatus::Cancelled);
        assert!(store.cancel_requested(&a.id).await);
        let done = TaskOutcome::Result {
            result: serde_json::json!({}),
        };
        assert!(
            store
                .finish(&a.id, TaskStatus::Completed, Some(done), None)
                .await
                .is_none()
        );
        assert_eq!(
            store.request_cancel(&a.id, "alice").await,
            Err(CancelError::Terminal(TaskStatus::Cancelled))
        );
    }

    #[tokio::test]
    async fn expired_tasks_are_gone_and_input_goes_only_to_outstanding_keys() {
        let store = MemoryTaskStore::default();
        let mut old = task("alice");
        old.created_at_ms = old.created_at_ms.saturating_sub(old.ttl_ms);
        store.create(old.clone()).await.unwrap();
        assert_eq!(
            store.get(&old.id, "alice").await.unwrap(),
            None,
            "past its ttl"
        );
        assert!(store.list("alice").await.unwrap().is_empty());

        let a = task("alice");
        store.create(a.clone()).await.unwrap();
        assert!(
            store
                .request_input(&a.id, "k1", serde_json::json!({"method": "m"}))
                .await
        );
        assert!(
            store
                .request_input(&a.id, "k2", serde_json::json!({"method": "m"}))
                .await
        );
        assert_eq!(
            store.get(&a.id, "alice").await.unwrap().unwrap().status,
            TaskStatus::InputRequired
        );
        let answers = |keys: &[&str]| -> Map<String, Value> {
            keys.iter()
                .map(|k| (k.to_string(), serde_json::json!({"action": "accept"})))
                .collect()
        };
        assert_eq!(
            store.provide_input(&a.id, "bob", answers(&["k1"])).await,
            None
        );
        assert_eq!(
            store
                .provide_input(&a.id, "alice", answers(&["k1", "never-asked"]))
                .await,
            Some(1)
        );
        let now = store.get(&a.id, "alice").await.unwrap().unwrap();
        assert_eq!(now.status, TaskStatus::InputRequired, "k2 is still open");
        assert!(now.input_requests.contains_key("k2") && !now.input_requests.contains_key("k1"));
        assert!(store.take_input(&a.id, "k1").await.is_some());
        assert!(store.take_input(&a.id, "k1").await.is_none(), "taken once");
        assert_eq!(
            store.provide_input(&a.id, "alice", answers(&["k2"])).await,
            Some(1)
        );
        assert_eq!(
            store.get(&a.id, "alice").await.unwrap().unwrap().status,
            TaskStatus::Working
        );
    }

    #[tokio::test]
    async fn waiters_wake_on_finish_and_running_tasks_are_capped() {
        let store = std::sync::Arc::new(MemoryTaskStore::default());
        let a = task("alice");
        store.create(a.clone()).await.unwrap();
        let waiter = {
            let store = store.clone();
            let id = a.id.clone();
            tokio::spawn(async move { store.changed(&id, Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        store
            .finish(&a.id, TaskStatus::Failed, None, Some("x".into()))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter woke")
            .unwrap();
        for _ in 0..MAX_RUNNING_PER_OWNER {
            store.create(task("bob")).await.unwrap();
        }
        assert!(matches!(
            store.create(task("bob")).await,
            Err(TaskStoreError::TooManyRunning { .. })
        ));
        store.create(task("carol")).await.unwrap();
    }
}
