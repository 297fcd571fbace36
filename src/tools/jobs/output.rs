//! `get_command_output`: a job's output from a byte offset (or its last bytes), optionally
//! waiting (long-poll) until new output arrives or the job ends, with its state and exit code.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::launch::{Waited, record, wait};
use super::text::text_of;
use crate::jobs::{JobId, JobRecord, JobState, Window};
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::COMMAND_ROLE;
use crate::tools::ToolDeps;
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler, structured};

const NAME: &str = "get_command_output";

/// Longest `wait_s`: below the 60 s after which common clients give up on a call.
const MAX_WAIT_S: u64 = 50;
/// Most bytes of each stream returned by one call.
const MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The job_id execute_kasm_command or list_commands returned.
    job_id: JobId,
    /// Return stdout from this byte offset (pass the previous call's stdout_next to get
    /// only what is new). Default 0 (from the start), unless `tail` is given.
    #[serde(default)]
    since: Option<u64>,
    /// Return stderr from this byte offset (the previous call's stderr_next). Default: as
    /// `since` asks for stdout (from the start, or the tail).
    #[serde(default)]
    stderr_since: Option<u64>,
    /// Instead of an offset: the last `tail` bytes of each stream.
    #[serde(default)]
    tail: Option<u64>,
    /// Seconds to wait for output beyond `since` (or the job's end) when there is none yet
    /// (long-poll; at most 50).
    #[serde(default)]
    #[schemars(range(max = 50))]
    wait_s: Option<u64>,
    /// Most bytes of each stream to return (default and maximum 1048576).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1048576))]
    max_bytes: Option<usize>,
}

/// One stream's part of the answer.
#[derive(Debug, Serialize, JsonSchema)]
struct Part {
    text: String,
    /// The bytes as base64 when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
    /// Offset of the first returned byte.
    from: u64,
    /// Offset after the last returned byte: pass it as since / stderr_since next time.
    next: u64,
    /// Bytes before `from` that were asked for but are no longer in the server's memory
    /// window: read them from the spill file (`path`), e.g. `tail -c +<offset+1> path`.
    skipped: u64,
    /// Bytes the command has written to this stream so far.
    total: u64,
    /// The spill file in the session with the whole stream.
    path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct OutputResult {
    job_id: String,
    kasm_id: String,
    state: JobState,
    running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    stdout: Part,
    stderr: Part,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

pub fn tool(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(NAME, COMMAND_ROLE)
        .title("Read a background command's output")
        .description("Read the output of one of your background commands (a job_id from execute_kasm_command or list_commands): stdout and stderr from a byte offset (`since`, `stderr_since`; pass the previous answer's stdout.next / stderr.next to get only what is new) or the last `tail` bytes, plus the job's state and, once it ended, its exit code. With wait_s it waits up to that many seconds for new output or the end (long-poll). The server keeps only the newest jobs.window_bytes of each stream in memory; the whole output is in the spill files inside the session (stdout.path, stderr.path), and `skipped` says how many asked-for bytes are only there. Makes no Kasm call.")
        .input_schema(schema::input::<Args>())
        .output_schema(schema::output::<OutputResult>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(get_command_output))
}

fn part(window: &Window, since: Option<u64>, tail: Option<u64>, max: usize, path: &str) -> Part {
    let slice = window.read(since, tail, max);
    let (text, base64) = text_of(&slice.bytes);
    // A character cut at the end is left for the next call.
    let next = slice
        .from
        .saturating_add(text.len() as u64)
        .max(if base64.is_some() { slice.next } else { 0 });
    Part {
        text,
        base64,
        from: slice.from,
        next,
        skipped: slice.skipped,
        total: window.total,
        path: path.to_string(),
    }
}

fn has_new(job: &JobRecord, since: u64, stderr_since: u64) -> bool {
    job.stdout.total > since || job.stderr.total > stderr_since
}

async fn get_command_output(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    if args.tail.is_some() && (args.since.is_some() || args.stderr_since.is_some()) {
        return Err(ToolError::new(
            "give either since/stderr_since or tail, not both",
        ));
    }
    let max = args.max_bytes.unwrap_or(MAX_BYTES).clamp(1, MAX_BYTES);
    let mut job = record(deps.jobs.as_ref(), &ctx, &args.job_id).await?;
    ctx.audit.kasm_id(&job.kasm_id);
    let since = args.since.unwrap_or(0);
    let stderr_since = args.stderr_since.or(args.since).unwrap_or(0);
    let wait_s = args.wait_s.unwrap_or(0).min(MAX_WAIT_S);
    if wait_s > 0
        && job.state.is_running()
        && (args.tail.is_some() || !has_new(&job, since, stderr_since))
    {
        let seen = job.version;
        let tail = args.tail.is_some();
        job = match wait(
            deps.jobs.as_ref(),
            &ctx,
            &job.id,
            Duration::from_secs(wait_s),
            |j| {
                if tail {
                    j.version != seen
                } else {
                    has_new(j, since, stderr_since)
                }
            },
        )
        .await?
        {
            Waited::Ended(job) | Waited::Running(job) => job,
        };
    }
    let stderr_from = if args.tail.is_some() {
        None
    } else {
        Some(stderr_since)
    };
    let stdout_from = if args.tail.is_some() {
        None
    } else {
        Some(since)
    };
    let finish = job.finish.as_ref();
    let note = match job.state {
        JobState::Running => None,
        _ => finish.and_then(|f| f.note.clone()),
    };
    structured(&OutputResult {
        job_id: job.id.to_string(),
        kasm_id: job.kasm_id.clone(),
        state: job.state,
        running: job.state.is_running(),
        exit_code: finish.and_then(|f| f.exit_code),
        duration_ms: finish.and_then(|f| f.duration_ms),
        stdout: part(&job.stdout, stdout_from, args.tail, max, &job.stdout_path),
        stderr: part(&job.stderr, stderr_from, args.tail, max, &job.stderr_path),
        note,
    })
}
