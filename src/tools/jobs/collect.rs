//! The collector of one job: turns what the wrapper POSTs to the job's stream ticket (start,
//! output chunks) and its result ticket (the final `EXEC` record) into store writes, until
//! the result arrives or the job's deadline passes. It holds the tickets; dropping them when
//! it ends makes both URLs unknown.

use std::sync::Arc;
use std::time::Duration;

use crate::jobs::{Finish, JobId, JobState, JobStore, Stream};
use crate::relay::frame::{ExecReport, StreamFrame, parse_frame};
use crate::relay::{Purpose, StreamTicket, UploadTicket};
use crate::tools::relay_loss::record;
use crate::tools::support::ToolError;

/// How often the collector looks whether someone else ended its job.
const ENDED_POLL: Duration = Duration::from_millis(500);

/// Apply one stream upload.
pub(super) async fn apply(store: &dyn JobStore, id: &JobId, body: bytes::Bytes) {
    let frame = match parse_frame(body).and_then(|f| StreamFrame::parse(&f)) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(job = %id, error = %e, "job stream upload ignored");
            return;
        }
    };
    match frame {
        StreamFrame::Start {
            group,
            id: pgid,
            spill_dir,
        } => store.started(id, pgid, group, &spill_dir).await,
        StreamFrame::Chunk {
            seq,
            stdout,
            offset,
            bytes,
        } => {
            let stream = if stdout {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            store.append(id, seq, stream, offset, &bytes).await;
        }
    }
}

/// Apply every chunk already queued on the stream ticket.
async fn drain(store: &dyn JobStore, id: &JobId, stream: &mut StreamTicket) {
    while let Some(body) = stream.try_next() {
        apply(store, id, body).await;
    }
}

/// How the final record ends the job (a lost or unreadable record says why in words).
pub(super) fn finish_of(
    kasm_id: &str,
    body: Result<bytes::Bytes, crate::relay::UploadError>,
) -> Finish {
    let lost = |note: String| Finish::without_result(JobState::Lost, note);
    let body = match body {
        Ok(body) => body,
        Err(e) => return lost(format!("the command's result did not arrive intact: {e}")),
    };
    let frame = match record(Purpose::ExecResult, "the command", kasm_id, body) {
        Ok(frame) => frame,
        Err(ToolError(why)) => return lost(why),
    };
    if frame.words.get(1).map(String::as_str) == Some("err") {
        return lost(match frame.words.get(2).map(String::as_str) {
            Some("spill_failed") => format!(
                "the wrapper could not run the command in session {kasm_id}: it could not create its spill directory under $TMPDIR or /tmp"
            ),
            _ => format!(
                "the command ran in session {kasm_id}, but the process that waited for it was killed (by the command?), so its exit status is unknown; its output is in the spill files (list_commands shows their paths)"
            ),
        });
    }
    match ExecReport::parse(&frame) {
        Ok(report) => Finish {
            state: if report.timed_out {
                JobState::TimedOut
            } else {
                JobState::Exited
            },
            exit_code: Some(report.exit_code),
            duration_ms: report.duration_ms,
            incomplete: report.incomplete,
            head_stdout: report.stdout.to_vec(),
            head_stderr: report.stderr.to_vec(),
            note: report
                .timed_out
                .then(|| "the command ran longer than timeout_s and was killed".to_string()),
        },
        Err(e) => lost(e.to_string()),
    }
}

/// Collect job `id` until its result arrives or `wait` passes.
pub async fn run(
    store: Arc<dyn JobStore>,
    id: JobId,
    kasm_id: String,
    mut stream: StreamTicket,
    mut result: UploadTicket,
    wait: Duration,
) {
    let started = std::time::Instant::now();
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        // Ended by someone else (a cancelled call, the session's end, the replica that
        // received the result): stop collecting, which drops both tickets at once.
        match store.state(&id).await {
            Ok(Some((state, _))) if state.is_running() => {}
            Ok(_) => {
                // Output that reached this replica before the end is still the job's: the
                // store takes chunks after the end (its window is not closed by it).
                drain(store.as_ref(), &id, &mut stream).await;
                return;
            }
            // The shared store did not answer: keep the tickets and look again at the next
            // upload or poll, never drop a live job's output.
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "job collector: cannot read the job's state");
            }
        }
        tokio::select! {
            biased;
            Some(body) = stream.next() => apply(store.as_ref(), &id, body).await,
            // Polled, not woken by every change: output written by other replicas is no
            // business of the collector, only the job's end is.
            () = tokio::time::sleep(ENDED_POLL) => {}
            received = result.received() => {
                let outcome = if received.is_ok() { "received" } else { "failed" };
                crate::telemetry::relay_wait(outcome, started.elapsed());
                // The wrapper sends its last chunks before the result: apply what is queued.
                drain(store.as_ref(), &id, &mut stream).await;
                store.finish(&id, finish_of(&kasm_id, received)).await;
                return;
            }
            _ = &mut deadline => {
                crate::telemetry::relay_wait("timeout", started.elapsed());
                store.finish(&id, Finish::without_result(JobState::Lost, format!("the command: no result came back from session {kasm_id} within {} s: the wrapper was killed, the session was stopped or paused, or it cannot reach this server's relay URL (MCP_RELAY_URL); the spill files in the session may still hold the output", wait.as_secs()))).await;
                return;
            }
        }
    }
}
