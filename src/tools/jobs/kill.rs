//! `kill_command`: stop a job's process group — a signal, then SIGKILL after a grace — with a
//! Kasm exec built from the job's record alone (its session, owner, container user and
//! process group id), so any replica that can read the record can do it.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::launch::{Waited, record, wait};
use crate::jobs::{JobId, JobRecord, JobState};
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::COMMAND_ROLE;
use crate::relay::wrapper::{CommandJob, Job, WrapperInput};
use crate::tools::ToolDeps;
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler, structured};

const NAME: &str = "kill_command";

/// A signal `kill_command` may send first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    #[default]
    Term,
    Int,
    Hup,
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Kill => "KILL",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The job_id execute_kasm_command (background: true, or a call that ran past
    /// yield_after_s) or list_commands returned.
    job_id: JobId,
    /// The first signal, sent to the job's whole process group (default TERM).
    #[serde(default)]
    signal: Signal,
    /// Seconds to wait after the first signal before SIGKILL (default: the server's
    /// jobs.kill_grace_s).
    #[serde(default)]
    #[schemars(range(max = 600))]
    grace_s: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct KillResult {
    job_id: String,
    kasm_id: String,
    /// The job's state after the kill (`killed` once its end was seen; `running` if it had
    /// not ended when this call stopped waiting).
    state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    /// Whether signals were sent (false when the job had already ended).
    signalled: bool,
    note: String,
}

pub fn tool(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(NAME, COMMAND_ROLE)
        .title("Stop a background command")
        .description("Stop one of your background commands (a job_id from execute_kasm_command or list_commands): sends `signal` (default TERM) to its whole process group in the session, then SIGKILL after grace_s seconds if anything is left, and waits for the job to end. Costs one Kasm exec call. A job that has already ended is left alone and reported as it is.")
        .input_schema(schema::input::<Args>())
        .output_schema(schema::output::<KillResult>())
        .annotations(ToolAnnotations::writes().destructive().idempotent().open_world())
        .build();
    FnTool::shared(spec, deps, handler!(kill_command))
}

/// The shell text that signals the job: `kill` on the process group, then SIGKILL after
/// `grace_s` (every value a number from the record or the server).
pub fn kill_script(pgid: i64, group: bool, signal: &str, grace_s: u64) -> String {
    // `kill -SIG -PGID`, not `kill -SIG -- -PGID`: dash's kill takes no `--`.
    let target = if group {
        format!("-{pgid}")
    } else {
        pgid.to_string()
    };
    format!(
        "kill -{signal} {target} 2>/dev/null; i=0; while [ \"$i\" -lt {grace_s} ] && kill -0 {target} 2>/dev/null; do sleep 1; i=$((i + 1)); done; kill -KILL {target} 2>/dev/null; true"
    )
}

/// Send the kill exec for `job` (no relay needed: Kasm only has to start it).
pub async fn send_kill(
    deps: &ToolDeps,
    job: &JobRecord,
    signal: &str,
    grace_s: u64,
) -> Result<(), ToolError> {
    let Some(pgid) = job.pgid else {
        return Err(ToolError::new(format!(
            "job {} has not reported its process id yet (it is just starting): call kill_command again in a second",
            job.id
        )));
    };
    deps.jobs.kill_requested(&job.id).await;
    let input = WrapperInput {
        job: Job::Dispatch(CommandJob {
            command: kill_script(pgid, job.group, signal, grace_s),
            cwd: None,
            timeout_s: grace_s.saturating_add(10),
            cap: 0,
            env: Default::default(),
            cancel_tag: None,
        }),
        tickets: None,
        budget_s: 0,
        stale_after_s: 0,
    };
    let config = input.exec_config(job.user.clone());
    deps.kasm
        .exec_command_kasm(&job.kasm_id, job.owner_user_id.as_deref(), &config)
        .await?;
    Ok(())
}

/// Send the kill as soon as the job has reported its process group, waiting up to `limit`
/// for that report: a call cancelled just after its command started can come before the
/// wrapper's first upload names the group. `Ok(None)` when the job ended meanwhile (nothing
/// left to signal).
pub async fn send_kill_once_started(
    deps: &ToolDeps,
    ctx: &CallContext,
    id: &JobId,
    signal: &str,
    grace_s: u64,
    limit: Duration,
) -> Result<Option<JobRecord>, ToolError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let job = record(deps.jobs.as_ref(), ctx, id).await?;
        if !job.state.is_running() {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if job.pgid.is_some() || left.is_zero() {
            send_kill(deps, &job, signal, grace_s).await?;
            return Ok(Some(job));
        }
        deps.jobs.wait_change(id, job.version, left).await;
    }
}

async fn kill_command(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    let job = record(deps.jobs.as_ref(), &ctx, &args.job_id).await?;
    ctx.audit.kasm_id(&job.kasm_id);
    if !job.state.is_running() {
        return structured(&KillResult {
            job_id: job.id.to_string(),
            kasm_id: job.kasm_id.clone(),
            state: job.state,
            exit_code: job.finish.as_ref().and_then(|f| f.exit_code),
            signalled: false,
            note: "the job had already ended; nothing was signalled".into(),
        });
    }
    let grace_s = args
        .grace_s
        .unwrap_or(deps.jobs_config.kill_grace_s)
        .min(600);
    send_kill(&deps, &job, args.signal.name(), grace_s).await?;
    let limit = Duration::from_secs(grace_s.saturating_add(10));
    let job = match wait(deps.jobs.as_ref(), &ctx, &job.id, limit, |_| false).await? {
        Waited::Ended(job) | Waited::Running(job) => job,
    };
    let note = if job.state.is_running() {
        format!(
            "SIG{} was sent to the job's process group and SIGKILL after {grace_s} s, but its end was not seen yet; list_commands shows when it is",
            args.signal.name()
        )
    } else {
        format!(
            "SIG{} was sent to the job's process group (SIGKILL after {grace_s} s if anything was left); the job has ended",
            args.signal.name()
        )
    };
    structured(&KillResult {
        job_id: job.id.to_string(),
        kasm_id: job.kasm_id.clone(),
        state: job.state,
        exit_code: job.finish.as_ref().and_then(|f| f.exit_code),
        signalled: true,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_script_targets_the_group_or_the_pid() {
        let s = kill_script(42, true, "TERM", 3);
        assert!(s.starts_with("kill -TERM -42 "), "{s}");
        assert!(s.contains("kill -KILL -42"), "{s}");
        assert!(kill_script(42, false, "INT", 0).starts_with("kill -INT 42 "));
    }
}
