//! Running a relay wrapper in a session and waiting for what it sends back, with progress
//! notifications while waiting, the call's cancellation honoured, and a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ToolDeps;
use super::access::SessionRef;
use super::support::ToolError;
use crate::mcp::CallContext;
use crate::relay::frame::{ContainerError, Frame, FrameError};
use crate::relay::wrapper::{Endpoint, Job, Tickets, WrapperInput};
use crate::relay::{
    DownloadTicket, Purpose, Refusals, Relay, RelayError, TicketBinding, UploadTicket,
};

/// Time allowed on top of a command's own timeout for the kill, the upload and Kasm's
/// hand-off.
pub const RELAY_GRACE: Duration = Duration::from_secs(20);

/// The relay, or an error saying how to configure it.
pub fn relay<'a>(deps: &'a ToolDeps, what: &str) -> Result<&'a Arc<Relay>, ToolError> {
    deps.relay.as_ref().ok_or_else(|| {
        ToolError::new(format!(
            "{what} needs the relay, which is not configured on this server: set MCP_RELAY_URL (server.relay_url) to a URL at which Kasm session containers can reach this server (e.g. http://10.0.0.5:8080), so the session can send results back"
        ))
    })
}

impl From<RelayError> for ToolError {
    fn from(e: RelayError) -> Self {
        ToolError(e.to_string())
    }
}

impl From<FrameError> for ToolError {
    fn from(e: FrameError) -> Self {
        super::relay_loss::unreadable(&e)
    }
}

/// How long a ticket lives for a transfer that may take `wait`: the same rule for every
/// upload and download ticket, so neither can expire before the wrapper uses it.
pub(super) fn ticket_ttl(wait: Duration) -> Duration {
    wait.saturating_add(RELAY_GRACE)
}

/// How old a killed wrapper's temp files must be before another run removes them when the
/// container has no `flock` (with it, any unlocked one goes): longer than any wrapper lives.
pub(super) fn stale_after_s(deps: &ToolDeps, wait: Duration) -> u64 {
    deps.policy
        .max_timeout_s
        .max(wait.as_secs())
        .saturating_add(RELAY_GRACE.as_secs().saturating_mul(2))
}

pub(super) fn binding(ctx: &CallContext, session: &SessionRef, purpose: Purpose) -> TicketBinding {
    TicketBinding {
        principal: ctx.principal.name.clone(),
        kasm_id: session.kasm_id.to_string(),
        purpose,
    }
}

/// A ticket from which a wrapper in `session` downloads `bytes` once, valid for a transfer
/// that may take `wait`.
pub async fn download_ticket(
    relay: &Arc<Relay>,
    ctx: &CallContext,
    session: &SessionRef,
    bytes: Bytes,
    wait: Duration,
) -> Result<DownloadTicket, ToolError> {
    let binding = binding(ctx, session, Purpose::FileDownload);
    Ok(relay
        .offer_download(binding, bytes, ticket_ttl(wait))
        .await?)
}

/// A ticket for one upload of at most `max_bytes` from `session`.
async fn upload_ticket(
    relay: &Arc<Relay>,
    ctx: &CallContext,
    session: &SessionRef,
    purpose: Purpose,
    max_bytes: usize,
    wait: Duration,
) -> Result<UploadTicket, ToolError> {
    let binding = binding(ctx, session, purpose);
    Ok(relay
        .expect_upload(binding, max_bytes, ticket_ttl(wait))
        .await?)
}

/// One wrapper run that sends its result back through the relay: the job, what the upload
/// is for and its largest size, the download ticket a write fetches from, the container
/// user, how long to wait for the upload, and what it does (for messages).
pub struct RoundTrip<'a> {
    pub job: Job,
    pub purpose: Purpose,
    pub cap: usize,
    pub download: Option<&'a DownloadTicket>,
    pub user: Option<String>,
    pub wait: Duration,
    pub what: &'a str,
}

/// Why no result came back, from what the relay saw of the ticket.
fn no_result(
    what: &str,
    kasm_id: &str,
    wait: Duration,
    refusals: Refusals,
    base: &str,
) -> ToolError {
    let secs = wait.as_secs();
    if refusals.rate_limited > 0 {
        return ToolError::new(format!(
            "{what}: no result came back from session {kasm_id} within {secs} s because this server rate-limited the result upload {} time(s) (HTTP 429); the wrapper retried with backoff until the deadline. Make fewer calls at once from sessions behind the same address, or raise the relay rate limits",
            refusals.rate_limited
        ));
    }
    if refusals.wrong_key > 0 {
        return ToolError::new(format!(
            "{what}: no result came back from session {kasm_id} within {secs} s, and {} request(s) to this call's relay ticket were refused because they lacked its key: something other than the wrapper (e.g. a process in the session) tried to use the ticket. The real result did not arrive; run the call again",
            refusals.wrong_key
        ));
    }
    ToolError::new(format!(
        "{what}: no upload at all reached this server from session {kasm_id} within {secs} s. Either the session container cannot reach this server's relay URL ({base}) — check MCP_RELAY_URL is reachable from inside sessions — or the container has none of curl, GNU wget or python3, or the wrapper was killed (the session was stopped or paused), or a command removed the wrapper's work files (kmcp* under $TMPDIR or /tmp in the session) so it had nothing to send"
    ))
}

/// Create the upload ticket, send the wrapper for `job` to the session with the tickets,
/// and wait for the upload (progress every second; cancellation and the deadline
/// honoured). The ticket is gone when this returns, whatever the outcome.
pub async fn round_trip(
    deps: &ToolDeps,
    ctx: &CallContext,
    session: &SessionRef,
    trip: RoundTrip<'_>,
) -> Result<Frame, ToolError> {
    let RoundTrip {
        job,
        purpose,
        cap,
        download,
        user,
        wait,
        what,
    } = trip;
    let relay = relay(deps, what)?;
    let _tickets = super::usage_guard::take(deps, ctx, crate::policy::quotas::Quota::Tickets)
        .await
        .map_err(ToolError::new)?;
    let mut ticket = upload_ticket(relay, ctx, session, purpose, cap, wait).await?;
    let input = WrapperInput {
        job,
        tickets: Some(Tickets {
            upload: Endpoint {
                url: ticket.url().to_string(),
                key: ticket.key().to_string(),
            },
            download: download.map(|d| Endpoint {
                url: d.url().to_string(),
                key: d.key().to_string(),
            }),
            stream: None,
        }),
        budget_s: wait.as_secs(),
        stale_after_s: stale_after_s(deps, wait),
    };
    let config = input.exec_config(user);
    deps.kasm
        .exec_command_kasm(session.kasm_id.as_str(), session.owner(), &config)
        .await?;
    let started = Instant::now();
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let total = wait.as_secs_f64();
    loop {
        tokio::select! {
            received = ticket.received() => {
                let outcome = if received.is_ok() { "received" } else { "failed" };
                crate::telemetry::relay_wait(outcome, started.elapsed());
                let body: Bytes = received.map_err(|e| ToolError::new(format!("{what} failed: {e}")))?;
                return super::relay_loss::record(purpose, what, session.kasm_id.as_str(), body);
            }
            _ = ctx.cancel.cancelled() => {
                crate::telemetry::relay_wait("cancelled", started.elapsed());
                return Err(ToolError::new(format!("{what} was cancelled by the client; anything already started in session {} keeps running until it ends or times out", session.kasm_id)));
            }
            _ = &mut deadline => {
                crate::telemetry::relay_wait("timeout", started.elapsed());
                let base = ticket.url().split("/relay/").next().unwrap_or_default();
                return Err(no_result(what, session.kasm_id.as_str(), wait, ticket.refusals().await, base));
            }
            _ = tick.tick() => {
                let elapsed = started.elapsed().as_secs_f64();
                ctx.notifier.progress(
                    elapsed.min(total),
                    Some(total),
                    Some(&format!("{what}: waiting for session {} ({:.0} s)", session.kasm_id, elapsed)),
                );
            }
        }
    }
}

/// Turn a container-side failure into an actionable message; the in-session roots check
/// (after resolving symlinks) is a policy refusal and recorded as one.
pub fn container_error(ctx: &CallContext, path: &str, error: ContainerError) -> ToolError {
    let reason = match error.code.as_str() {
        "not_found" => format!("{path} does not exist in the session"),
        "outside_roots" => format!(
            "{path} {} outside the allowed roots (after resolving symlinks in the session); allowed roots are set by ALLOWED_ROOTS",
            if error.detail.is_empty() { "is".to_string() } else { format!("{} —", error.detail) }
        ),
        "is_directory" => format!("{path} is a directory: use list_kasm_files for directories"),
        "not_a_file" => format!("{path} is not a regular file"),
        "not_a_directory" => format!("{path} is not a directory"),
        "permission_denied" => format!("permission denied on {path} for the session's user (try the `user` the file belongs to, or another path)"),
        "too_large" => format!("{path} is {} bytes, more than the allowed maximum: pass a larger max_bytes (up to the server's policy.max_file_bytes) or read it in parts with execute_kasm_command (e.g. head -c / tail -c)", error.detail),
        "parent_missing" => format!("the parent directory of {path} does not exist: pass create_parents: true to create it"),
        "mkdir_failed" => format!("could not create the parent directories of {path}"),
        "download_failed" => "the session could not download the file content from this server's relay URL (check MCP_RELAY_URL is reachable from inside sessions; the wrapper retried until the deadline)".to_string(),
        "size_mismatch" => format!("the bytes written to {path} did not match the content size ({}); nothing was replaced", error.detail),
        "rename_failed" | "chmod_failed" | "read_failed" | "resolve_failed" => {
            format!("{} on {path} failed in the session", error.code.replace('_', " "))
        }
        other => format!("the session reported {other} for {path} {}", error.detail),
    };
    if error.code == "outside_roots" {
        return super::access::denied(ctx, "allowed_roots", reason);
    }
    ToolError::new(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kasm::Session;
    use crate::mcp::Notifier;
    use crate::policy::{Principal, Role};
    use crate::relay::RelayOptions;
    use tokio_util::sync::CancellationToken;

    const K1: &str = "8f6c1d2e3b4a4c5d9e0f1a2b3c4d5e6f";

    #[test]
    fn a_missing_result_says_what_happened_to_the_uploads() {
        let wait = Duration::from_secs(30);
        let msg = |refusals| no_result("the command", "k1", wait, refusals, "http://relay").0;
        let none = msg(Refusals::default());
        assert!(
            none.contains("no upload at all") && none.contains("http://relay"),
            "{none}"
        );
        let limited = msg(Refusals {
            rate_limited: 3,
            wrong_key: 0,
        });
        assert!(
            limited.contains("rate-limited") && limited.contains("429"),
            "{limited}"
        );
        let forged = msg(Refusals {
            rate_limited: 0,
            wrong_key: 2,
        });
        assert!(forged.contains("lacked its key"), "{forged}");
        // Saturating deadlines: no panic for the longest waits.
        assert_eq!(ticket_ttl(Duration::MAX), Duration::MAX);
    }

    #[tokio::test]
    async fn download_and_upload_tickets_live_by_the_same_rule_and_are_bound_to_the_call() {
        let relay = Arc::new(Relay::new(RelayOptions {
            base_url: Some("http://127.0.0.1:9".into()),
            ..RelayOptions::default()
        }));
        let ctx = CallContext {
            principal: Principal {
                name: "ops".into(),
                role: Role::Operator,
                kasm_user_id: None,
                oauth: None,
            },
            notifier: Notifier::disconnected(),
            cancel: CancellationToken::new(),
            audit: Default::default(),
        };
        let session = SessionRef {
            kasm_id: crate::kasm::KasmId::parse(K1).unwrap(),
            owner: None,
            session: Session::default(),
            live: Default::default(),
        };
        let wait = Duration::from_secs(120);
        let down = download_ticket(&relay, &ctx, &session, Bytes::from_static(b"x"), wait)
            .await
            .unwrap();
        let up = upload_ticket(&relay, &ctx, &session, Purpose::WriteStatus, 1, wait)
            .await
            .unwrap();
        let (down_binding, down_left) = relay.lifetime(down.id()).unwrap();
        let (up_binding, up_left) = relay.lifetime(up.id()).unwrap();
        for left in [down_left, up_left] {
            assert!(
                left > wait + RELAY_GRACE - Duration::from_secs(2),
                "{left:?}"
            );
            assert!(left <= wait + RELAY_GRACE, "{left:?}");
        }
        assert_eq!(
            down_binding,
            TicketBinding {
                principal: "ops".into(),
                kasm_id: K1.into(),
                purpose: Purpose::FileDownload,
            }
        );
        assert_eq!(up_binding.purpose, Purpose::WriteStatus);
        assert_eq!(
            (up_binding.principal, up_binding.kasm_id),
            ("ops".into(), K1.into())
        );
    }
}
