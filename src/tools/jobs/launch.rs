//! Starting a job: a stream ticket and a result ticket, the record in the store, the
//! streaming wrapper sent through `exec_command_kasm`, and the collector task; then, for a
//! foreground call, waiting for the end (with the latest output line in progress
//! notifications) or for `yield_after_s`, whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jobs::{Finish, JobId, JobRecord, JobState, JobStore, Owner, Window};
use crate::mcp::CallContext;
use crate::relay::Purpose;
use crate::relay::wrapper::{CommandJob, Endpoint, Job, StreamJob, Tickets, WrapperInput};
use crate::tools::ToolDeps;
use crate::tools::access::SessionRef;
use crate::tools::support::ToolError;
use crate::tools::transfer::{RELAY_GRACE, binding, relay, stale_after_s, ticket_ttl};

/// Chunks that may wait unread in the relay per job (each at most `jobs.chunk_bytes`).
const STREAM_DEPTH: usize = 4;

/// What to run as a job.
pub struct Launch {
    pub command: CommandJob,
    pub user: Option<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Start `launch` in `session` as a job of the caller; returns its id once Kasm accepted
/// the exec, and the collector task (which runs on its own; the handle only lets a caller
/// wait for it to let go of the relay tickets).
pub async fn start(
    deps: &Arc<ToolDeps>,
    ctx: &CallContext,
    session: &SessionRef,
    launch: Launch,
) -> Result<(JobId, tokio::task::JoinHandle<()>), ToolError> {
    let relay = relay(deps, "a background command")?;
    let config = &deps.jobs_config;
    let id = JobId::random();
    let wait = Duration::from_secs(launch.command.timeout_s).saturating_add(RELAY_GRACE);
    let cap = launch.command.cap.saturating_mul(2).saturating_add(256);
    let result = relay
        .expect_upload(
            binding(ctx, session, Purpose::ExecResult),
            cap,
            ticket_ttl(wait),
        )
        .await?;
    let stream = relay
        .open_stream(
            binding(ctx, session, Purpose::ExecStream),
            config.chunk_bytes.saturating_add(256),
            STREAM_DEPTH,
            ticket_ttl(wait),
        )
        .await?;
    // [cluster]: whichever replica receives the wrapper's chunks and result stores them in
    // the shared job store itself (tools::jobs::JobUploads).
    relay.tag(&[result.id(), stream.id()], id.as_str()).await?;
    let started_ms = now_ms();
    let record = JobRecord {
        id: id.clone(),
        principal: ctx.principal.name.clone(),
        kasm_id: session.kasm_id.to_string(),
        owner_user_id: session.owner().map(str::to_string),
        user: launch.user.clone(),
        command: launch.command.command.clone(),
        started_ms,
        ended_ms: None,
        deadline_ms: started_ms.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        state: JobState::Running,
        pgid: None,
        group: false,
        kill_requested: false,
        stdout_path: String::new(),
        stderr_path: String::new(),
        stdout: Window::default(),
        stderr: Window::default(),
        last_seq: None,
        finish: None,
        version: 0,
        replica: None,
    };
    deps.jobs
        .insert(record, config.max_jobs_per_principal)
        .await
        .map_err(|e| ToolError::new(e.to_string()))?;
    let input = WrapperInput {
        job: Job::Stream(StreamJob {
            command: launch.command,
            job_id: id.to_string(),
            chunk_bytes: config.chunk_bytes,
            interval_ms: config.chunk_interval_ms,
        }),
        tickets: Some(Tickets {
            upload: Endpoint {
                url: result.url().to_string(),
                key: result.key().to_string(),
            },
            download: None,
            stream: Some(Endpoint {
                url: stream.url().to_string(),
                key: stream.key().to_string(),
            }),
        }),
        budget_s: wait.as_secs(),
        stale_after_s: stale_after_s(deps, wait),
    };
    let exec = input.exec_config(launch.user);
    if let Err(e) = deps
        .kasm
        .exec_command_kasm(session.kasm_id.as_str(), session.owner(), &exec)
        .await
    {
        deps.jobs
            .finish(
                &id,
                Finish::without_result(
                    JobState::Lost,
                    format!("Kasm did not start the command: {e}"),
                ),
            )
            .await;
        return Err(e.into());
    }
    let collector = tokio::spawn(super::collect::run(
        deps.jobs.clone(),
        id.clone(),
        session.kasm_id.to_string(),
        stream,
        result,
        wait,
    ));
    Ok((id, collector))
}

/// How a wait for a job ended.
pub enum Waited {
    /// The job ended: its final record.
    Ended(JobRecord),
    /// Still running when the wait was over.
    Running(JobRecord),
}

/// The job's record for the caller.
pub async fn record(
    store: &dyn JobStore,
    ctx: &CallContext,
    id: &JobId,
) -> Result<JobRecord, ToolError> {
    store
        .get(
            Owner {
                principal: &ctx.principal.name,
            },
            id,
        )
        .await
        .map_err(|e| ToolError::new(e.to_string()))
}

/// The latest output line(s) of a job, for a progress message.
fn latest_line(job: &JobRecord) -> Option<String> {
    let line = job.stdout.last_lines(160);
    let line = if line.trim().is_empty() {
        job.stderr.last_lines(160)
    } else {
        line
    };
    (!line.trim().is_empty()).then_some(line)
}

/// Wait until the job ends, `until` returns true for its record, or `limit` passes; while
/// waiting, send a progress notification whenever new output arrives (its latest line) and
/// at least every second. The call's cancellation ends the wait with an error.
pub async fn wait(
    store: &dyn JobStore,
    ctx: &CallContext,
    id: &JobId,
    limit: Duration,
    until: impl Fn(&JobRecord) -> bool,
) -> Result<Waited, ToolError> {
    let started = Instant::now();
    let total = limit.as_secs_f64();
    loop {
        let job = record(store, ctx, id).await?;
        if !job.state.is_running() {
            return Ok(Waited::Ended(job));
        }
        if until(&job) || started.elapsed() >= limit {
            return Ok(Waited::Running(job));
        }
        // On new output, and at least every second (clients may reset their timeout on it).
        let elapsed = started.elapsed().as_secs_f64();
        let message = latest_line(&job).unwrap_or_else(|| {
            format!(
                "command running in session {} ({elapsed:.0} s)",
                job.kasm_id
            )
        });
        ctx.notifier
            .progress(elapsed.min(total), Some(total), Some(&message));
        let seen = job.version;
        let left = limit.saturating_sub(started.elapsed());
        tokio::select! {
            _ = store.wait_change(id, seen, left.min(Duration::from_secs(1))) => {}
            _ = ctx.cancel.cancelled() => {
                return Err(ToolError::new(format!("the call was cancelled by the client; job {id} keeps running until it ends or times out (kill_command stops it)")));
            }
        }
    }
}

/// Wait (without progress, ignoring cancellation) until the job has ended or `limit` passes.
pub async fn wait_ended(store: &dyn JobStore, ctx: &CallContext, id: &JobId, limit: Duration) {
    let deadline = Instant::now() + limit;
    while let Ok(job) = record(store, ctx, id).await {
        let left = deadline.saturating_duration_since(Instant::now());
        if !job.state.is_running() || left.is_zero() {
            return;
        }
        store.wait_change(id, job.version, left).await;
    }
}
