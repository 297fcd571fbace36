//! Running a relay wrapper in a session and waiting for what it sends back, with progress
//! notifications while waiting, the call's cancellation honoured, and a deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ToolDeps;
use super::access::SessionRef;
use super::support::ToolError;
use crate::mcp::CallContext;
use crate::relay::frame::{ContainerError, Frame, FrameError, parse_frame};
use crate::relay::wrapper::{Script, exec_config};
use crate::relay::{DownloadTicket, Purpose, Relay, RelayError, TicketBinding, UploadTicket};

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
        ToolError(e.to_string())
    }
}

/// How long a ticket lives for a transfer that may take `wait`: the same rule for every
/// upload and download ticket, so neither can expire before the wrapper uses it.
fn ticket_ttl(wait: Duration) -> Duration {
    wait + RELAY_GRACE
}

fn binding(ctx: &CallContext, session: &SessionRef, purpose: Purpose) -> TicketBinding {
    TicketBinding {
        principal: ctx.principal.name.clone(),
        kasm_id: session.kasm_id.to_string(),
        purpose,
    }
}

/// A ticket from which a wrapper in `session` downloads `bytes` once, valid for a transfer
/// that may take `wait`.
pub fn download_ticket(
    relay: &Arc<Relay>,
    ctx: &CallContext,
    session: &SessionRef,
    bytes: Bytes,
    wait: Duration,
) -> Result<DownloadTicket, ToolError> {
    let binding = binding(ctx, session, Purpose::FileDownload);
    Ok(relay.offer_download(binding, bytes, ticket_ttl(wait))?)
}

/// A ticket for one upload of at most `max_bytes` from `session`.
fn upload_ticket(
    relay: &Arc<Relay>,
    ctx: &CallContext,
    session: &SessionRef,
    purpose: Purpose,
    max_bytes: usize,
    wait: Duration,
) -> Result<UploadTicket, ToolError> {
    let binding = binding(ctx, session, purpose);
    Ok(relay.expect_upload(binding, max_bytes, ticket_ttl(wait))?)
}

/// One wrapper run that sends its result back through the relay: which script, what the
/// upload is for and its largest size, the script's environment (without `KMCP_URL`, which
/// [`round_trip`] adds), the container user, how long to wait for the upload, and what it
/// does (for messages).
pub struct RoundTrip<'a> {
    pub script: Script,
    pub purpose: Purpose,
    pub cap: usize,
    pub env: BTreeMap<String, String>,
    pub user: Option<String>,
    pub wait: Duration,
    pub what: &'a str,
}

/// Create the upload ticket, send the script to the session with `KMCP_URL` pointing at
/// it, and wait for the upload (progress every second; cancellation and the deadline
/// honoured). The ticket is gone when this returns, whatever the outcome.
pub async fn round_trip(
    deps: &ToolDeps,
    ctx: &CallContext,
    session: &SessionRef,
    trip: RoundTrip<'_>,
) -> Result<Frame, ToolError> {
    let RoundTrip {
        script,
        purpose,
        cap,
        mut env,
        user,
        wait,
        what,
    } = trip;
    let relay = relay(deps, what)?;
    let _tickets = super::usage_guard::take(deps, ctx, crate::policy::quotas::Quota::Tickets)
        .map_err(ToolError::new)?;
    let mut ticket = upload_ticket(relay, ctx, session, purpose, cap, wait)?;
    env.insert("KMCP_URL".into(), ticket.url().to_string());
    let config = exec_config(script, env, user);
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
                let body: Bytes = received.map_err(|e| ToolError::new(format!("{what} failed: {e}")))?;
                return Ok(parse_frame(body)?);
            }
            _ = ctx.cancel.cancelled() => {
                return Err(ToolError::new(format!("{what} was cancelled by the client; anything already started in session {} keeps running until it ends or times out", session.kasm_id)));
            }
            _ = &mut deadline => {
                return Err(ToolError::new(format!(
                    "{what}: no result came back from session {} within {} s. Either the session container cannot reach this server's relay URL ({}) — check MCP_RELAY_URL is reachable from inside sessions — or the container has none of curl, wget or python3",
                    session.kasm_id,
                    wait.as_secs(),
                    ticket.url().split("/relay/").next().unwrap_or_default(),
                )));
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

/// Turn a container-side failure into an actionable message.
pub fn container_error(path: &str, error: ContainerError) -> ToolError {
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
        "download_failed" => "the session could not download the file content from this server's relay URL (check MCP_RELAY_URL is reachable from inside sessions)".to_string(),
        "size_mismatch" => format!("the bytes written to {path} did not match the content size ({}); nothing was replaced", error.detail),
        "rename_failed" | "chmod_failed" | "read_failed" | "resolve_failed" => {
            format!("{} on {path} failed in the session", error.code.replace('_', " "))
        }
        other => format!("the session reported {other} for {path} {}", error.detail),
    };
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
    fn download_and_upload_tickets_live_by_the_same_rule_and_are_bound_to_the_call() {
        let relay = Arc::new(Relay::new(RelayOptions {
            base_url: Some("http://127.0.0.1:9".into()),
            ..RelayOptions::default()
        }));
        let ctx = CallContext {
            principal: Principal {
                name: "ops".into(),
                role: Role::Operator,
                kasm_user_id: None,
            },
            notifier: Notifier::disconnected(),
            cancel: CancellationToken::new(),
            audit: Default::default(),
        };
        let session = SessionRef {
            kasm_id: crate::kasm::KasmId::parse(K1).unwrap(),
            owner: None,
            session: Session::default(),
        };
        let wait = Duration::from_secs(120);
        let down = download_ticket(&relay, &ctx, &session, Bytes::from_static(b"x"), wait).unwrap();
        let up = upload_ticket(&relay, &ctx, &session, Purpose::WriteStatus, 1, wait).unwrap();
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
