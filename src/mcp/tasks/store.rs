//! The [`TaskStore`] interface: everything needed to create, read, wait on, finish and cancel
//! a task goes through it, so a shared implementation (Redis) lets any replica serve any
//! task request. Records are bound to their owner: a lookup by another principal finds nothing.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::record::{TaskId, TaskOutcome, TaskRecord, TaskStatus};

/// Why a task could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskStoreError {
    #[error(
        "principal {owner:?} already has {running} tasks running (at most {limit}): wait for some to finish or cancel them with tasks/cancel"
    )]
    TooManyRunning {
        owner: String,
        running: usize,
        limit: usize,
    },
    #[error("the task store is unavailable: {0}")]
    Unavailable(String),
}

/// Most tasks one principal may have running at once (every store).
pub const MAX_RUNNING_PER_OWNER: usize = 64;

/// The cap on stored tasks (running or finished, not expired) of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredCap {
    /// At most this many in the whole store.
    Total(usize),
    /// At most this many per principal.
    PerOwner(usize),
}

/// Whether `owner`, with `running` tasks running and `stored` tasks kept (counted as `cap`
/// says), may create one more: the two checks every store makes before a creation.
pub fn check_caps(
    owner: &str,
    running: usize,
    stored: usize,
    cap: StoredCap,
) -> Result<(), TaskStoreError> {
    if running >= MAX_RUNNING_PER_OWNER {
        return Err(TaskStoreError::TooManyRunning {
            owner: owner.to_owned(),
            running,
            limit: MAX_RUNNING_PER_OWNER,
        });
    }
    match cap {
        StoredCap::Total(max) if stored >= max => Err(TaskStoreError::Unavailable(format!(
            "{max} tasks are stored; finished ones expire after their ttl"
        ))),
        StoredCap::PerOwner(max) if stored >= max => Err(TaskStoreError::Unavailable(format!(
            "principal {owner:?} has {max} tasks stored; finished ones expire after their ttl"
        ))),
        _ => Ok(()),
    }
}

/// Why a task could not be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("task not found")]
    NotFound,
    #[error("already in terminal status '{}'", .0.as_str())]
    Terminal(TaskStatus),
    /// The store could not be reached (the shared state is down): not the same as "no such
    /// task", which would tell the client its task is gone.
    #[error("the task store is unavailable: {0}")]
    Unavailable(String),
}

/// Where tasks live.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Store a new task; when this returns `Ok`, [`TaskStore::get`] finds it (on any replica).
    async fn create(&self, record: TaskRecord) -> Result<(), TaskStoreError>;

    /// The task `id` if it exists, has not expired and belongs to `owner`; an error only
    /// when the store cannot be read (never "not found" for an unreachable store).
    async fn get(&self, id: &TaskId, owner: &str) -> Result<Option<TaskRecord>, TaskStoreError>;

    /// All live tasks of `owner` (any order).
    async fn list(&self, owner: &str) -> Result<Vec<TaskRecord>, TaskStoreError>;

    /// Mark the task cancelled (status `cancelled`, cancel flag set) and return it;
    /// refused for a terminal task.
    async fn request_cancel(&self, id: &TaskId, owner: &str) -> Result<TaskRecord, CancelError>;

    /// Whether someone asked to cancel the task (read by the replica that runs it).
    async fn cancel_requested(&self, id: &TaskId) -> bool;

    /// Record the end of the call: `status` (terminal) with its outcome and message. No
    /// effect on a task that is already terminal (a cancelled task stays cancelled); returns
    /// the updated record when it changed.
    async fn finish(
        &self,
        id: &TaskId,
        status: TaskStatus,
        outcome: Option<TaskOutcome>,
        message: Option<String>,
    ) -> Option<TaskRecord>;

    /// The running call asks the client: publish `request` (`{method, params}`) under `key`
    /// and make the task `input_required`. False when the task is gone or has ended.
    async fn request_input(&self, id: &TaskId, key: &str, request: Value) -> bool;

    /// `tasks/update`: keep the answers whose key is outstanding (the others are ignored) and
    /// withdraw those requests; the task is `working` again once none is left. `None` when
    /// the task does not exist for `owner`; otherwise how many answers were taken.
    async fn provide_input(
        &self,
        id: &TaskId,
        owner: &str,
        responses: Map<String, Value>,
    ) -> Option<usize>;

    /// The running call picks up the answer to `key`, once it is there.
    async fn take_input(&self, id: &TaskId, key: &str) -> Option<Value>;

    /// Wait until task `id` may have changed, or `timeout` passes (a store without change
    /// notifications may simply sleep).
    async fn changed(&self, id: &TaskId, timeout: Duration);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_at_the_limits_and_name_them() {
        assert_eq!(check_caps("p", 0, 0, StoredCap::Total(1)), Ok(()));
        assert_eq!(
            check_caps("p", MAX_RUNNING_PER_OWNER - 1, 9, StoredCap::PerOwner(10)),
            Ok(())
        );
        assert!(matches!(
            check_caps("p", MAX_RUNNING_PER_OWNER, 0, StoredCap::Total(10)),
            Err(TaskStoreError::TooManyRunning {
                running: 64,
                limit: 64,
                ..
            })
        ));
        let total = check_caps("p", 0, 10, StoredCap::Total(10)).unwrap_err();
        assert!(total.to_string().contains("10 tasks are stored"), "{total}");
        let own = check_caps("p", 0, 10, StoredCap::PerOwner(10)).unwrap_err();
        assert!(
            own.to_string()
                .contains("principal \"p\" has 10 tasks stored"),
            "{own}"
        );
    }
}
