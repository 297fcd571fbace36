//! `execute_kasm_command`: run a shell command in a session and return its real exit code,
//! stdout and stderr through the relay (or, without a relay, an honest dispatch-only answer).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ToolDeps;
use super::access::{find_session, require_running};
use super::approval::{check_env_names, vet_command};
use super::exec_text::{ExecView, Limits, render};
use super::jobs::launch::Waited;
use super::schema::{self, parse_args};
use super::support::{FnTool, ToolError, ToolResult, handler};
use super::transfer::RELAY_GRACE;
use crate::config::PolicyConfig;
use crate::jobs::{JobRecord, JobState};
use crate::kasm::KasmId;
use crate::mcp::{CallContext, TaskSupport, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use crate::policy::Role;
use crate::policy::paths::normalize_absolute;
use crate::relay::frame::ExecReport;
use crate::relay::wrapper::{CommandJob, Job, WrapperInput, is_valid_env_name};

/// Longest command text (Linux refuses single argv/env strings over 128 KiB).
pub const MAX_COMMAND_BYTES: usize = 100 * 1024;

/// Most bytes the command and the caller's `env` (names and values) may take together. The
/// wrapper passes both to the container in the exec's environment and again as arguments,
/// and Linux refuses a single string over 128 KiB and an `execve` whose arguments and
/// environment outgrow its limit — which the container reports as a bare exec failure.
pub const MAX_COMMAND_AND_ENV_BYTES: usize = 120 * 1024;

const NAME: &str = "execute_kasm_command";

/// How long a cancelled call waits for its command to report its process group before the
/// kill is given up (the wrapper reports it after a first nap of 0.05 s, in one request).
const PGID_WAIT: Duration = Duration::from_secs(10);

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![FnTool::shared(spec(&deps.policy), deps, handler!(execute))]
}

/// Arguments of `execute_kasm_command`. The server's policy adds its limits (defaults and
/// maxima of `timeout_s` and `max_output_bytes`, the allowed `user`s) in [`input_schema`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    kasm_id: KasmId,
    /// Shell command text, run with `sh -c` (POSIX sh) inside the session. Pipes, redirects,
    /// `&&`, quotes and multi-line scripts work; the text arrives byte-for-byte. Stdin is empty.
    command: String,
    /// Absolute directory to run in (default: the session user's home). The command fails
    /// with exit code 1 if it does not exist.
    #[serde(default)]
    working_dir: Option<String>,
    /// Extra environment variables for the command, e.g. {"LANG": "C.UTF-8"}. Names: letters,
    /// digits, underscore; KMCP_* is reserved.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Container user to run as instead of the image's own user (kasm-user), e.g. "root" or
    /// "1000". Only users the server's policy.allowed_exec_users lists are accepted.
    #[serde(default)]
    user: Option<String>,
    /// Seconds before the command is killed and reported with timed_out: true (the server's
    /// policy sets the default and the maximum).
    #[serde(default)]
    #[schemars(range(min = 1))]
    timeout_s: Option<u64>,
    /// Bytes of stdout and, separately, of stderr to return (the server's policy sets the
    /// default and the maximum); beyond it the output is cut and truncated: true.
    #[serde(default)]
    #[schemars(range(min = 1))]
    max_output_bytes: Option<usize>,
    /// One sentence on why this command is run; recorded in the audit log, not executed.
    #[serde(default)]
    explanation: Option<String>,
    /// Start the command in the background and return at once with a job_id (for servers,
    /// watchers, long builds): read its output with get_command_output, see it in
    /// list_commands, stop it with kill_command. Its timeout_s defaults to the policy's
    /// maximum. A foreground command that runs longer than the server's jobs.yield_after_s
    /// is moved to the background the same way.
    #[serde(default)]
    background: bool,
}

/// The input schema: [`Args`] with the limits of this server's policy.
fn input_schema(policy: &PolicyConfig) -> Value {
    let schema = schema::input::<Args>();
    let schema = schema::with_default(schema, "timeout_s", json!(policy.default_timeout_s));
    let schema = schema::with_keyword(schema, "timeout_s", "maximum", json!(policy.max_timeout_s));
    let schema = schema::with_default(
        schema,
        "max_output_bytes",
        json!(policy.default_max_output_bytes),
    );
    let schema = schema::with_keyword(
        schema,
        "max_output_bytes",
        "maximum",
        json!(policy.max_output_bytes),
    );
    schema::with_keyword(
        schema,
        "user",
        "description",
        json!(user_description(policy)),
    )
}

/// The `user` parameter's description: which users the server's policy allows.
fn user_description(policy: &PolicyConfig) -> String {
    let allowed = if policy.allowed_exec_users.is_empty() {
        "none: omit it".to_string()
    } else {
        policy.allowed_exec_users.join(", ")
    };
    format!(
        "Container user to run as instead of the image's own user (kasm-user), e.g. \"root\" or \"1000\". A user such as root gets full control of the container, so only users the server's policy.allowed_exec_users lists are accepted (here: {allowed}); default: the image's user."
    )
}

/// The shape of `structuredContent` (built by `report_json` and the dispatch-only answer;
/// a unit test keeps them in step).
#[derive(Debug, Serialize, JsonSchema)]
#[allow(dead_code)]
struct ExecResult {
    kasm_id: KasmId,
    /// Always true: Kasm accepted the command.
    dispatched: bool,
    /// False when the server has no relay and cannot return output.
    output_available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    stderr: Option<String>,
    /// Either stream was cut at max_output_bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    truncated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    stdout_truncated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    stderr_truncated: Option<bool>,
    /// The command ran longer than timeout_s and was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    timed_out: Option<bool>,
    /// True when processes the command left running still held its stdout/stderr after it
    /// exited: their later output is not included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    output_incomplete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    /// stdout as base64 when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_base64: Option<String>,
    /// stderr as base64 when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// The command's job: pass it to get_command_output, kill_command.
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<String>,
    /// True when the command still runs in the background (background: true, or it ran
    /// past the server's yield time): the output shown is what had arrived so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    running: Option<bool>,
    /// The spill files in the session that hold the command's whole stdout and stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_path: Option<String>,
}

fn spec(policy: &PolicyConfig) -> ToolSpec {
    ToolSpec::builder(NAME, Role::Operator)
        .title("Run a command in a session")
        .description("Run a shell command inside a running Kasm session and get its real exit code, stdout and stderr back. Use it to inspect or change the session's container: install packages, run programs, read logs. The command runs with `sh -c` as the image's user unless `user` names one the server's policy.allowed_exec_users allows, under a timeout (killed and reported as timed_out when it runs longer) and with stdout/stderr each capped at max_output_bytes (truncated: true when cut). Costs one Kasm exec call plus the command's own run time; the call waits until the command ends, with progress notifications carrying the latest output line while it runs. A command still running after the server's yield time (jobs.yield_after_s, default 45 s) is moved to the background and the call returns its output so far with a job_id; background: true returns at once with a job_id. Read such a job's output with get_command_output, list jobs with list_commands, stop one with kill_command; the whole output is also in spill files in the session (stdout_path, stderr_path). Not-UTF-8 output is also returned as base64. The server's command policy judges the command first: a denied command is refused with the rule and its reason and never runs, and some commands (e.g. piping into a shell, `eval` of a variable) run only after the user approves them when asked. If the server has no relay URL configured, the command is only dispatched and no output can come back (the result says so).")
        .input_schema(input_schema(policy))
        .output_schema(schema::output::<ExecResult>())
        .annotations(ToolAnnotations::writes().destructive().open_world())
        .task_support(TaskSupport::Optional)
        .build()
}

/// Validated limits and the job for one run.
struct Plan {
    timeout_s: u64,
    max_output: usize,
    job: CommandJob,
}

fn plan(deps: &ToolDeps, ctx: &CallContext, args: &Args) -> Result<Plan, ToolError> {
    let policy = &deps.policy;
    if args.command.trim().is_empty() {
        return Err(ToolError::new(
            "command is empty: give the shell command to run",
        ));
    }
    if args.command.len() > MAX_COMMAND_BYTES || args.command.contains('\0') {
        return Err(ToolError::new(format!(
            "command must be at most {MAX_COMMAND_BYTES} bytes without NUL bytes; for longer scripts, write them with write_kasm_file and run the file"
        )));
    }
    let timeout_s = args.timeout_s.unwrap_or(if args.background {
        policy.max_timeout_s
    } else {
        policy.default_timeout_s
    });
    if timeout_s == 0 || timeout_s > policy.max_timeout_s {
        return Err(ToolError::new(format!(
            "timeout_s must be between 1 and {} (the server's policy.max_timeout_s)",
            policy.max_timeout_s
        )));
    }
    let max_output = args
        .max_output_bytes
        .unwrap_or(policy.default_max_output_bytes);
    if max_output == 0 || max_output > policy.max_output_bytes {
        return Err(ToolError::new(format!(
            "max_output_bytes must be between 1 and {} (the server's policy.max_output_bytes)",
            policy.max_output_bytes
        )));
    }
    let mut env = BTreeMap::new();
    let mut total = args.command.len();
    for (name, value) in &args.env {
        if !is_valid_env_name(name) {
            return Err(ToolError::new(format!(
                "environment variable name {name:?} is not allowed: use letters, digits and underscores, not starting with a digit or KMCP_"
            )));
        }
        if value.contains('\0') {
            return Err(ToolError::new(format!(
                "environment variable {name} contains a NUL byte"
            )));
        }
        total = total
            .saturating_add(name.len())
            .saturating_add(value.len())
            .saturating_add(2);
        env.insert(name.clone(), value.clone());
    }
    if total > MAX_COMMAND_AND_ENV_BYTES {
        return Err(ToolError::new(format!(
            "the command and env together take {total} bytes, more than the {MAX_COMMAND_AND_ENV_BYTES} a container exec accepts: pass large data as a file (write_kasm_file) and read it from the command instead"
        )));
    }
    let cwd = match &args.working_dir {
        Some(dir) => {
            Some(normalize_absolute(dir).map_err(|e| ToolError::new(format!("working_dir: {e}")))?)
        }
        None => None,
    };
    if let Some(user) = &args.user {
        let ok = !user.is_empty()
            && user.len() <= 64
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c));
        if !ok {
            return Err(ToolError::new(format!(
                "user {user:?} is not a valid container user name or uid"
            )));
        }
        if !crate::policy::may_run_as(&policy.allowed_exec_users, Some(user)) {
            let allowed = if policy.allowed_exec_users.is_empty() {
                "none, so commands run only as the image's own user".to_string()
            } else {
                policy.allowed_exec_users.join(", ")
            };
            return Err(super::access::denied(
                ctx,
                "policy.allowed_exec_users",
                format!(
                    "running commands as user {user:?} is not allowed on this server: the server's policy.allowed_exec_users lists the users execute_kasm_command may run as (now: {allowed}). Omit `user` to run as the image's own user, or ask the server's operator to add {user:?} to policy.allowed_exec_users"
                ),
            ));
        }
    }
    Ok(Plan {
        timeout_s,
        max_output,
        job: CommandJob {
            command: args.command.clone(),
            cwd,
            timeout_s,
            cap: max_output.saturating_add(1),
            env,
            cancel_tag: Some(uuid::Uuid::new_v4().simple().to_string()),
        },
    })
}

async fn execute(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    ctx.audit
        .command(&args.command, args.explanation.as_deref());
    check_env_names(&deps, &ctx, args.env.keys())?;
    let plan = plan(&deps, &ctx, &args)?;
    let _exec = super::usage_guard::take(&deps, &ctx, crate::policy::quotas::Quota::Exec)
        .await
        .map_err(ToolError::new)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    require_running(&session)?;
    // The command policy decides (and asks a person when it says `confirm`) before Kasm sees it.
    vet_command(&deps, &ctx, &session, &args.command).await?;

    if deps.relay.is_none() {
        let input = WrapperInput {
            job: Job::Dispatch(plan.job),
            tickets: None,
            budget_s: 0,
            stale_after_s: 0,
        };
        let config = input.exec_config(args.user.clone());
        deps.kasm
            .exec_command_kasm(session.kasm_id.as_str(), session.owner(), &config)
            .await?;
        let note = "The command was handed to Kasm, which never returns output, exit codes or completion. This server has no relay configured: set MCP_RELAY_URL to a URL at which session containers can reach this server to get real stdout, stderr and exit codes.";
        return Ok(ToolOutput::structured_with_text(
            json!({
                "kasm_id": session.kasm_id,
                "dispatched": true,
                "output_available": false,
                "note": note,
            }),
            vec![note.to_string()],
        ));
    }
    // The relay transfer counts against quotas.max_pending_tickets while this call waits
    // for it, as every file transfer does; once the command runs in the background, the
    // per-principal job cap (jobs.max_jobs_per_principal) bounds it instead.
    let _tickets = super::usage_guard::take(&deps, &ctx, crate::policy::quotas::Quota::Tickets)
        .await
        .map_err(ToolError::new)?;
    let (job_id, collector) = super::jobs::launch::start(
        &deps,
        &ctx,
        &session,
        super::jobs::launch::Launch {
            command: plan.job,
            user: args.user.clone(),
        },
    )
    .await?;
    let limit = if args.background {
        // Only until the wrapper reports the process group and spill files.
        Duration::from_secs(10)
    } else {
        // A little past the collector's own deadline (timeout + grace), so a lost result is
        // reported as such rather than as a yield.
        Duration::from_secs(plan.timeout_s)
            .saturating_add(RELAY_GRACE)
            .saturating_add(Duration::from_secs(3))
            .min(Duration::from_secs(deps.jobs_config.yield_after_s))
    };
    let background = args.background;
    // Until the result arrives (or the command moves to the background), a cancelled or
    // abandoned call stops its command.
    let stopper = (!background).then(|| StopOnDrop {
        deps: deps.clone(),
        ctx: ctx.clone(),
        job_id: job_id.clone(),
        armed: true,
    });
    let waited = super::jobs::launch::wait(deps.jobs.as_ref(), &ctx, &job_id, limit, |job| {
        background && job.pgid.is_some()
    })
    .await;
    if let (Some(stopper), Ok(_)) = (stopper, &waited) {
        stopper.disarm();
    }
    let job = match waited {
        Ok(Waited::Ended(job)) => job,
        Ok(Waited::Running(job)) => {
            let (result, text) = running(&job, plan.max_output, background);
            return Ok(ToolOutput::structured_with_text(result, vec![text]));
        }
        Err(e) => {
            if ctx.cancel.is_cancelled()
                && let Ok(Some(_)) = super::jobs::kill::send_kill_once_started(
                    &deps, &ctx, &job_id, "TERM", 2, PGID_WAIT,
                )
                .await
            {
                let store = deps.jobs.as_ref();
                super::jobs::launch::wait_ended(store, &ctx, &job_id, Duration::from_secs(3)).await;
                // Ended here if the kill's end was not seen yet: its collector stops and the
                // relay tickets go at once.
                store
                    .finish(
                        &job_id,
                        crate::jobs::Finish::without_result(
                            JobState::Killed,
                            "the call was cancelled by the client, which stopped the command",
                        ),
                    )
                    .await;
                // The collector then drops the job's relay tickets.
                let _ = tokio::time::timeout(Duration::from_secs(2), collector).await;
                return Err(ToolError::new(format!(
                    "the call was cancelled by the client; the command (job {job_id}) was stopped with SIGTERM (SIGKILL after 2 s)"
                )));
            }
            return Err(e);
        }
    };
    let Some(finish) = job.finish.clone().filter(|f| f.state != JobState::Lost) else {
        let why = job.finish.and_then(|f| f.note).unwrap_or_default();
        return Err(ToolError::new(why));
    };
    let report = ExecReport {
        exit_code: finish.exit_code.unwrap_or(-1),
        timed_out: finish.state == JobState::TimedOut,
        // Without `/proc/uptime` in the container, fall back to the time measured here.
        duration_ms: finish
            .duration_ms
            .or_else(|| job.ended_ms.map(|end| end.saturating_sub(job.started_ms))),
        stdout: finish.head_stdout.into(),
        stderr: finish.head_stderr.into(),
        incomplete: finish.incomplete,
    };
    let view = ExecView::of_report(
        &report,
        Limits {
            max_output_bytes: plan.max_output,
            server_max_output_bytes: deps.policy.max_output_bytes,
            timeout_s: plan.timeout_s,
            server_max_timeout_s: deps.policy.max_timeout_s,
        },
    );
    let mut text = render(&view);
    let mut result = report_json(session.kasm_id.as_str(), &report, plan.max_output);
    if let Some(obj) = result.as_object_mut() {
        obj.insert("job_id".into(), json!(job.id));
        obj.insert("stdout_path".into(), json!(job.stdout_path));
        obj.insert("stderr_path".into(), json!(job.stderr_path));
        if job.state == JobState::Killed {
            let note = "The command was stopped by kill_command.";
            obj.insert("note".into(), json!(note));
            text.push(note.to_string());
        }
    }
    Ok(ToolOutput::structured_with_text(result, text))
}

/// The answer for a command that still runs: its job and the output so far (structured, and
/// as text for the model).
fn running(job: &JobRecord, cap: usize, background: bool) -> (Value, String) {
    let (stdout, out_cut, _) = decode_output(&job.stdout.data, cap);
    let (stderr, err_cut, _) = decode_output(&job.stderr.data, cap);
    let note = if background {
        "The command runs in the background. Read its output with get_command_output (job_id; wait_s waits for more), see it in list_commands, stop it with kill_command. Its whole output goes to stdout_path and stderr_path in the session.".to_string()
    } else {
        format!(
            "The command is still running and was moved to the background after the server's yield time; the output so far is shown. Call get_command_output with job_id and since = {} (stderr_since = {}) to read the rest and its exit code (wait_s waits for more), or kill_command to stop it.",
            job.stdout.total, job.stderr.total
        )
    };
    let mut text = format!("job_id: {}\n{note}", job.id);
    for (name, output) in [("stdout", &stdout), ("stderr", &stderr)] {
        if !output.is_empty() {
            text.push_str(&format!("\n{name} so far:\n{output}"));
        }
    }
    let result = json!({
        "kasm_id": job.kasm_id,
        "dispatched": true,
        "output_available": true,
        "job_id": job.id,
        "running": true,
        "stdout": stdout,
        "stderr": stderr,
        "truncated": out_cut || err_cut || job.stdout.start > 0 || job.stderr.start > 0,
        "stdout_path": job.stdout_path,
        "stderr_path": job.stderr_path,
        "note": note,
    });
    (result, text)
}

/// Stops a command whose call ended without its result (cancelled by the client, a task
/// cancelled with `tasks/cancel`, a closed 2026-07-28 stream, or a failed wait): when dropped
/// armed it signals the job's process group (found in the job store, so from data alone).
struct StopOnDrop {
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    job_id: crate::jobs::JobId,
    armed: bool,
}

impl StopOnDrop {
    /// The result arrived, or the command goes on as a background job: nothing to stop.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (deps, ctx, job_id) = (self.deps.clone(), self.ctx.clone(), self.job_id.clone());
        runtime.spawn(async move {
            match super::jobs::kill::send_kill_once_started(
                &deps, &ctx, &job_id, "TERM", 2, PGID_WAIT,
            )
            .await
            {
                Ok(None) => {}
                Ok(Some(job)) => tracing::info!(kasm_id = %job.kasm_id, "stopped the command of a cancelled call"),
                Err(e) => {
                    tracing::warn!(job = %job_id, error = %e.0, "could not stop the command of a cancelled call")
                }
            }
        });
    }
}

/// Cut `bytes` to `cap`, at a UTF-8 boundary when the text is UTF-8.
/// Returns (text, truncated, base64 when not UTF-8).
pub fn decode_output(bytes: &[u8], cap: usize) -> (String, bool, Option<String>) {
    let truncated = bytes.len() > cap;
    let kept = bytes.get(..cap.min(bytes.len())).unwrap_or_default();
    match std::str::from_utf8(kept) {
        Ok(text) => (text.to_string(), truncated, None),
        Err(e) if truncated && e.error_len().is_none() => {
            let valid = kept.get(..e.valid_up_to()).unwrap_or_default();
            (String::from_utf8_lossy(valid).into_owned(), true, None)
        }
        Err(_) => (
            String::from_utf8_lossy(kept).into_owned(),
            truncated,
            Some(base64::engine::general_purpose::STANDARD.encode(kept)),
        ),
    }
}

fn report_json(kasm_id: &str, report: &ExecReport, cap: usize) -> Value {
    let (stdout, out_cut, out_b64) = decode_output(&report.stdout, cap);
    let (stderr, err_cut, err_b64) = decode_output(&report.stderr, cap);
    let mut result = json!({
        "kasm_id": kasm_id,
        "dispatched": true,
        "output_available": true,
        "exit_code": report.exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "truncated": out_cut || err_cut,
        "stdout_truncated": out_cut,
        "stderr_truncated": err_cut,
        "timed_out": report.timed_out,
        "output_incomplete": report.incomplete,
        "duration_ms": report.duration_ms,
    });
    if let Some(obj) = result.as_object_mut() {
        if let Some(b) = out_b64 {
            obj.insert("stdout_base64".into(), json!(b));
        }
        if let Some(b) = err_b64 {
            obj.insert("stderr_base64".into(), json!(b));
        }
        if report.timed_out {
            obj.insert(
                "note".into(),
                json!("The command ran longer than timeout_s and was killed; output up to that point is shown."),
            );
        } else if report.incomplete {
            obj.insert(
                "note".into(),
                json!("The command exited but left processes running that still held its stdout/stderr; the output shown is what had arrived when the command ended (plus a short grace period), and those processes lose their output pipe. Redirect a background program's output (e.g. `prog > /tmp/prog.log 2>&1 &`) and read the file instead."),
            );
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_field_is_in_the_output_schema() {
        let schema = schema::output::<ExecResult>();
        let listed = schema["properties"].as_object().unwrap();
        let report = ExecReport {
            exit_code: 1,
            stdout: bytes::Bytes::from_static(b"\xff"),
            stderr: bytes::Bytes::from_static(b"\xfe"),
            timed_out: true,
            duration_ms: Some(5),
            incomplete: true,
        };
        let value = report_json("8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f", &report, 10);
        for key in value.as_object().unwrap().keys() {
            assert!(listed.contains_key(key), "{key} is not in {schema}");
        }
        assert_eq!(
            schema["required"],
            json!(["kasm_id", "dispatched", "output_available"])
        );
    }

    #[test]
    fn output_is_cut_at_the_cap_on_a_character_boundary() {
        assert_eq!(decode_output(b"hello", 5), ("hello".into(), false, None));
        assert_eq!(decode_output(b"hello!", 5), ("hello".into(), true, None));
        let text = "aé"; // 'é' is two bytes: a cap of 2 cuts it in half
        assert_eq!(decode_output(text.as_bytes(), 2), ("a".into(), true, None));
        let (_, cut, b64) = decode_output(b"\xff\x00", 10);
        assert!(!cut);
        assert_eq!(b64.as_deref(), Some("/wA="));
    }
}
