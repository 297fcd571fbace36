//! Finding the session a call names: fetch the caller's sessions from Kasm and ask `policy`
//! which Kasm user the call acts as and whether the caller may touch the session (a non-admin
//! principal only its own Kasm user's; an admin every one). A destroyed, unknown or foreign
//! session gets the same clear error from every tool.

use super::ToolDeps;
use super::support::ToolError;
use crate::kasm::{ConnectUrl, KasmError, KasmId, Session, UserId};
use crate::mcp::CallContext;
use crate::policy;

pub use crate::policy::may_see_session_url;

/// The Kasm user this call acts as (decided by [`policy::acting_kasm_user`]).
pub fn acting_user(deps: &ToolDeps, ctx: &CallContext) -> Result<UserId, ToolError> {
    let raw = policy::acting_kasm_user(&ctx.principal, deps.default_user_id.as_deref())
        .map_err(|e| ToolError::new(e.to_string()))?;
    Ok(UserId::parse(raw)?)
}

/// A session the caller may touch, with the Kasm user that owns it.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub kasm_id: KasmId,
    /// The owner's user id: pass it as `user_id` to Kasm's session endpoints.
    pub owner: Option<UserId>,
    pub session: Session,
}

impl SessionRef {
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_ref().map(UserId::as_str)
    }

    pub fn status(&self) -> &str {
        self.session
            .operational_status
            .as_deref()
            .unwrap_or("unknown")
    }
}

const GONE_STATES: &[&str] = &[
    "deleting",
    "delete_pending",
    "admin_delete_pending",
    "user_delete_pending",
    "destroying",
];

fn not_found(kasm_id: &KasmId) -> ToolError {
    ToolError::new(format!(
        "session {kasm_id} does not exist or is not yours: it may have been destroyed, or the id is wrong. Call list_user_sessions to see the sessions you can use, or create_kasm_session to start a new one"
    ))
}

/// Find a session the caller may touch (refusing destroyed, unknown and foreign ones).
pub async fn find_session(
    deps: &ToolDeps,
    ctx: &CallContext,
    kasm_id: &KasmId,
) -> Result<SessionRef, ToolError> {
    ctx.audit.kasm_id(kasm_id.as_str());
    let sessions = if policy::sees_every_session(ctx.principal.role) {
        match deps.kasm.get_kasms().await {
            Ok(all) => all,
            Err(KasmError::MissingPermission { .. }) => {
                deps.kasm
                    .get_user_kasms(acting_user(deps, ctx)?.as_str())
                    .await?
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        deps.kasm
            .get_user_kasms(acting_user(deps, ctx)?.as_str())
            .await?
    };
    let session = sessions
        .into_iter()
        .find(|s| kasm_id.matches(&s.kasm_id))
        .ok_or_else(|| {
            // A non-admin's listing holds only its own Kasm user's sessions: another user's
            // session lands here, as does an unknown id; both are refused by ownership.
            ctx.audit.deny(
                "session_ownership",
                "the session is not among those of the Kasm user this principal acts as (another user's, destroyed, or unknown)",
            );
            not_found(kasm_id)
        })?;
    let owner = session
        .user_id
        .as_deref()
        .and_then(|u| UserId::parse(u).ok());
    let allowed = match acting_user(deps, ctx) {
        Ok(me) => policy::may_touch_session(
            &ctx.principal,
            me.as_str(),
            owner.as_ref().map(UserId::as_str),
        ),
        // No Kasm user to act as: only a principal that sees every session may go on.
        Err(_) => policy::sees_every_session(ctx.principal.role),
    };
    if !allowed {
        // The caller is told what an unknown id gets (no probing of other users' ids); the
        // audit trail says what happened.
        let error = not_found(kasm_id);
        ctx.audit.deny(
            "session_ownership",
            "the session belongs to another Kasm user than the one this principal acts as",
        );
        return Err(error);
    }
    deps.usage
        .touch(kasm_id.as_str(), std::time::Instant::now());
    let status = session.operational_status.clone().unwrap_or_default();
    if GONE_STATES.contains(&status.as_str()) {
        return Err(ToolError::new(format!(
            "session {kasm_id} is being destroyed ({status}) and can no longer be used; create_kasm_session starts a new one"
        )));
    }
    let owner = match session.user_id.as_deref().map(UserId::parse) {
        Some(Ok(u)) => Some(u),
        Some(Err(_)) | None => Some(acting_user(deps, ctx)?),
    };
    Ok(SessionRef {
        kasm_id: kasm_id.clone(),
        owner,
        session,
    })
}

/// Refuse sessions that are not running, saying what to do.
pub fn require_running(session: &SessionRef) -> Result<(), ToolError> {
    let status = session.status();
    if status == "running" {
        return Ok(());
    }
    let hint = match status {
        "paused" | "stopped" => "call resume_kasm_session first",
        "requested" | "provisioning" | "assigned" | "starting" => {
            "wait until it is running (get_session_status shows progress)"
        }
        _ => "check it with get_session_status",
    };
    Err(ToolError::new(format!(
        "session {} is {status}, not running: {hint}",
        session.kasm_id
    )))
}

/// An absolute URL from Kasm's relative `kasm_url`. The result carries the session's login
/// token: hand it only to principals allowed to control the session ([`may_see_session_url`]).
pub fn absolute_url(deps: &ToolDeps, url: &ConnectUrl) -> String {
    let relative = url.expose();
    if relative.starts_with("http://") || relative.starts_with("https://") {
        return relative.to_string();
    }
    let base = deps.kasm_base_url.trim_end_matches('/');
    if relative.starts_with('/') {
        format!("{base}{relative}")
    } else {
        format!("{base}/{relative}")
    }
}

/// Why a session URL was left out of a viewer's result.
pub const SESSION_URL_WITHHELD: &str = "session_url is left out: it embeds a Kasm login token that gives full control of the desktop, so only operator and admin principals receive it";

/// A refusal by a policy rule: recorded in the call's audit event as `decision = "deny"` with
/// `rule` and the message, and returned as the tool's error.
pub fn denied(ctx: &CallContext, rule: &str, message: impl Into<String>) -> ToolError {
    let message = message.into();
    ctx.audit.deny(rule, &message);
    ToolError::new(message)
}
