//! [`MemoryJobs`]: the in-process [`JobStore`] (one replica, the default).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::id::JobId;
use super::record::{Finish, JobRecord, JobState, JobSummary, Stream, now_ms};
use super::{JobError, JobStore, Owner};

/// Jobs in memory. Finished jobs are forgotten `finished_ttl` after they end, running ones
/// after their deadline (checked on every insert and list).
#[derive(Debug)]
pub struct MemoryJobs {
    jobs: Mutex<HashMap<JobId, JobRecord>>,
    changed: Notify,
    finished_ttl_ms: u64,
    window_bytes: usize,
}

impl MemoryJobs {
    pub fn new(finished_ttl: Duration, window_bytes: usize) -> Self {
        MemoryJobs {
            jobs: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            finished_ttl_ms: u64::try_from(finished_ttl.as_millis()).unwrap_or(u64::MAX),
            window_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, JobRecord>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expire(&self, jobs: &mut HashMap<JobId, JobRecord>) {
        let now = now_ms();
        let ttl = self.finished_ttl_ms;
        jobs.retain(|_, j| match j.ended_ms {
            Some(end) => end.saturating_add(ttl) > now,
            None => j.deadline_ms.saturating_add(ttl) > now,
        });
    }

    fn update(&self, id: &JobId, change: impl FnOnce(&mut JobRecord)) {
        let mut jobs = self.lock();
        if let Some(job) = jobs.get_mut(id) {
            change(job);
            job.version = job.version.saturating_add(1);
        }
        drop(jobs);
        self.changed.notify_waiters();
    }
}

#[async_trait::async_trait]
impl JobStore for MemoryJobs {
    async fn insert(&self, job: JobRecord, max_per_principal: usize) -> Result<(), JobError> {
        let mut jobs = self.lock();
        self.expire(&mut jobs);
        let running = jobs
            .values()
            .filter(|j| j.principal == job.principal && j.state.is_running())
            .count();
        if running >= max_per_principal {
            return Err(JobError::TooMany(running));
        }
        // Finished jobs are kept for reading until they expire, but at most as many as the
        // running limit per principal (the oldest go first): memory stays bounded.
        let mut finished: Vec<(u64, JobId)> = jobs
            .values()
            .filter(|j| j.principal == job.principal && !j.state.is_running())
            .map(|j| (j.ended_ms.unwrap_or(0), j.id.clone()))
            .collect();
        if finished.len() >= max_per_principal {
            finished.sort_unstable();
            let excess = finished
                .len()
                .saturating_sub(max_per_principal.saturating_sub(1));
            for (_, id) in finished.into_iter().take(excess) {
                jobs.remove(&id);
            }
        }
        jobs.insert(job.id.clone(), job);
        Ok(())
    }

    async fn get(&self, owner: Owner<'_>, id: &JobId) -> Result<JobRecord, JobError> {
        let mut jobs = self.lock();
        self.expire(&mut jobs);
        jobs.get(id)
            .filter(|j| j.principal == owner.principal)
            .cloned()
            .ok_or_else(|| JobError::NotFound(id.to_string()))
    }

    async fn list(&self, owner: Owner<'_>) -> Result<Vec<JobSummary>, JobError> {
        let mut jobs = self.lock();
        self.expire(&mut jobs);
        let mut mine: Vec<&JobRecord> = jobs
            .values()
            .filter(|j| j.principal == owner.principal)
            .collect();
        mine.sort_by_key(|j| std::cmp::Reverse(j.started_ms));
        Ok(mine.into_iter().map(JobRecord::summary).collect())
    }

    async fn append(&self, id: &JobId, seq: u64, stream: Stream, offset: u64, bytes: &[u8]) {
        let cap = self.window_bytes;
        self.update(id, |job| {
            if job.last_seq.is_some_and(|last| seq < last) {
                return;
            }
            job.last_seq = Some(seq);
            match stream {
                Stream::Stdout => job.stdout.append(offset, bytes, cap),
                Stream::Stderr => job.stderr.append(offset, bytes, cap),
            }
        });
    }

    async fn started(&self, id: &JobId, pgid: Option<i64>, group: bool, spill_dir: &str) {
        self.update(id, |job| {
            job.pgid = pgid;
            job.group = group;
            if !spill_dir.is_empty() {
                job.stdout_path = format!("{spill_dir}/stdout");
                job.stderr_path = format!("{spill_dir}/stderr");
            }
        });
    }

    async fn kill_requested(&self, id: &JobId) {
        self.update(id, |job| job.kill_requested = true);
    }

    async fn finish(&self, id: &JobId, finish: Finish) {
        self.update(id, |job| {
            if job.state.is_running() {
                let mut finish = finish;
                if job.kill_requested && finish.state != JobState::Lost {
                    finish.state = JobState::Killed;
                }
                job.state = finish.state;
                job.ended_ms = Some(now_ms());
                job.finish = Some(finish);
            }
        });
    }

    async fn wait_change(&self, id: &JobId, seen: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let version = self.lock().get(id).map_or(0, |j| j.version);
            if version != seen {
                return version;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return version;
            }
        }
    }

    async fn state(&self, id: &JobId) -> Result<Option<(JobState, u64)>, JobError> {
        Ok(self.lock().get(id).map(|j| (j.state, j.version)))
    }

    async fn end_session(&self, kasm_id: &str) -> usize {
        let now = now_ms();
        let mut ended = 0;
        let mut jobs = self.lock();
        for job in jobs.values_mut() {
            if job.kasm_id == kasm_id && job.state.is_running() {
                job.state = JobState::SessionEnded;
                job.ended_ms = Some(now);
                job.finish = Some(Finish::without_result(
                    JobState::SessionEnded,
                    "the session was destroyed, which ended the command",
                ));
                job.version = job.version.saturating_add(1);
                ended += 1;
            }
        }
        drop(jobs);
        self.changed.notify_waiters();
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Window;

    fn job(principal: &str, kasm_id: &str) -> JobRecord {
        JobRecord {
            id: JobId::random(),
            principal: principal.into(),
            kasm_id: kasm_id.into(),
            owner_user_id: None,
            user: None,
            command: "sleep 1".into(),
            started_ms: now_ms(),
            ended_ms: None,
            deadline_ms: now_ms() + 60_000,
            state: JobState::Running,
            pgid: None,
            group: false,
            kill_requested: false,
            stdout_path: "/tmp/o".into(),
            stderr_path: "/tmp/e".into(),
            stdout: Window::default(),
            stderr: Window::default(),
            last_seq: None,
            finish: None,
            version: 0,
            replica: None,
        }
    }

    fn done() -> Finish {
        Finish {
            state: JobState::Exited,
            exit_code: Some(0),
            duration_ms: Some(1),
            incomplete: false,
            head_stdout: Vec::new(),
            head_stderr: Vec::new(),
            note: None,
        }
    }

    #[tokio::test]
    async fn jobs_are_private_bounded_and_expire_after_they_end() {
        let store = MemoryJobs::new(Duration::from_millis(50), 1024);
        let a = job("alice", "k1");
        store.insert(a.clone(), 2).await.unwrap();
        store.insert(job("alice", "k1"), 2).await.unwrap();
        assert_eq!(
            store.insert(job("alice", "k1"), 2).await,
            Err(JobError::TooMany(2)),
            "two running jobs at most"
        );
        let alice = Owner { principal: "alice" };
        let bob = Owner { principal: "bob" };
        assert!(store.get(alice.clone(), &a.id).await.is_ok());
        assert_eq!(
            store.get(bob.clone(), &a.id).await,
            Err(JobError::NotFound(a.id.to_string()))
        );
        assert!(store.list(bob).await.unwrap().is_empty());
        assert_eq!(store.list(alice.clone()).await.unwrap().len(), 2);
        store.finish(&a.id, done()).await;
        // Finished jobs do not count against the running limit; the oldest finished ones
        // make room once as many are kept as the limit.
        let b = job("alice", "k1");
        store.insert(b.clone(), 2).await.unwrap();
        store.finish(&b.id, done()).await;
        store.insert(job("alice", "k1"), 3).await.unwrap();
        assert_eq!(store.list(alice.clone()).await.unwrap().len(), 4);
        store.insert(job("alice", "k1"), 2).await.unwrap_err();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(store.get(alice.clone(), &a.id).await.is_err(), "expired");
        assert_eq!(
            store.list(alice).await.unwrap().len(),
            2,
            "the running ones stay"
        );
    }

    #[tokio::test]
    async fn waiters_wake_on_output_and_old_chunks_are_ignored() {
        let store = std::sync::Arc::new(MemoryJobs::new(Duration::from_secs(60), 1024));
        let j = job("alice", "k1");
        let id = j.id.clone();
        store.insert(j, 5).await.unwrap();
        let waiter = {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.wait_change(&id, 0, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.append(&id, 2, Stream::Stdout, 0, b"new").await;
        assert_eq!(waiter.await.unwrap(), 1);
        store.append(&id, 1, Stream::Stdout, 0, b"OLD!").await;
        let owner = Owner { principal: "alice" };
        let got = store.get(owner.clone(), &id).await.unwrap();
        assert_eq!(got.stdout.data, b"new");
        assert_eq!(store.end_session("k1").await, 1);
        let got = store.get(owner, &id).await.unwrap();
        assert_eq!(got.state, JobState::SessionEnded);
        // A finish after the end changes nothing.
        store.finish(&id, done()).await;
        assert_eq!(
            store
                .get(Owner { principal: "alice" }, &id)
                .await
                .unwrap()
                .state,
            JobState::SessionEnded
        );
        let now = store
            .get(Owner { principal: "alice" }, &id)
            .await
            .unwrap()
            .version;
        assert_eq!(
            store.wait_change(&id, 99, Duration::from_millis(1)).await,
            now
        );
    }
}
