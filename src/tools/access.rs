//! Finding the session a call names: one `get_kasm_status` as its owner (cached by
//! `ownership`), and `policy` decides which Kasm user the call acts as and whether the caller
//! may touch the session (a non-admin principal only its own Kasm user's; an admin every
//! one). A destroyed, unknown or foreign session gets the same clear error from every tool.

use super::ToolDeps;
use super::support::ToolError;
use crate::kasm::{ConnectUrl, KasmError, KasmId, KasmResult, Session, SessionStatus, UserId};
use crate::mcp::CallContext;
use crate::policy;

pub use crate::policy::may_see_session_url;

/// The Kasm user this call acts as (decided by [`policy::acting_kasm_user`]).
pub fn acting_user(deps: &ToolDeps, ctx: &CallContext) -> Result<UserId, ToolError> {
    let raw = policy::acting_kasm_user(&ctx.principal, deps.default_user_id.as_deref())
        .map_err(|e| ToolError::new(e.to_string()))?;
    Ok(UserId::parse(raw)?)
}

/// A session the caller may touch, with the Kasm user that owns it and what Kasm's
/// `get_kasm_status` said about it just now.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub kasm_id: KasmId,
    /// The owner's user id: pass it as `user_id` to Kasm's session endpoints.
    pub owner: Option<UserId>,
    /// Kasm's record of the session: complete while it runs; only id, owner and status
    /// otherwise (Kasm reports paused, stopped and starting sessions without a record).
    pub session: Session,
    pub live: LiveStatus,
}

/// The parts of a `get_kasm_status` answer that are not the session record.
#[derive(Debug, Clone, Default)]
pub struct LiveStatus {
    /// A fresh relative connect URL (running sessions only).
    pub kasm_url: Option<ConnectUrl>,
    /// Kasm's progress message while a session starts, pauses or stops.
    pub message: Option<String>,
    pub progress: Option<u8>,
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

    /// A session from one `get_kasm_status` answer (the 1.15 "currently starting" error
    /// included) made as `owner`.
    fn from_status(
        kasm_id: &KasmId,
        owner: Option<UserId>,
        answer: KasmResult<SessionStatus>,
    ) -> KasmResult<SessionRef> {
        let (mut session, status, live) = match answer {
            Ok(SessionStatus::Running { session, kasm_url }) => (
                *session,
                "running".to_string(),
                LiveStatus {
                    kasm_url,
                    ..LiveStatus::default()
                },
            ),
            Ok(SessionStatus::NotReady {
                status,
                message,
                progress,
            }) => (
                Session::default(),
                status,
                LiveStatus {
                    kasm_url: None,
                    message: Some(message),
                    progress,
                },
            ),
            Ok(SessionStatus::Inactive { status }) => {
                (Session::default(), status, LiveStatus::default())
            }
            Err(KasmError::NotReady { status, message }) => (
                Session::default(),
                status,
                LiveStatus {
                    message: Some(message),
                    ..LiveStatus::default()
                },
            ),
            Err(e) => return Err(e),
        };
        session.kasm_id = kasm_id.to_string();
        session.operational_status = Some(status);
        let owner = owner.or_else(|| {
            session
                .user_id
                .as_deref()
                .and_then(|u| UserId::parse(u).ok())
        });
        if session.user_id.is_none() {
            session.user_id = owner.as_ref().map(UserId::to_string);
        }
        Ok(SessionRef {
            kasm_id: kasm_id.clone(),
            owner,
            session,
            live,
        })
    }
}

fn not_found(kasm_id: &KasmId) -> ToolError {
    ToolError::new(format!(
        "session {kasm_id} does not exist or is not yours: it may have been destroyed, or the id is wrong. Call list_user_sessions to see the sessions you can use, or create_kasm_session to start a new one"
    ))
}

/// One `get_kasm_status` as `owner`; "not found" forgets the cached owner.
async fn observe(
    deps: &ToolDeps,
    kasm_id: &KasmId,
    owner: Option<&UserId>,
) -> KasmResult<SessionRef> {
    let answer = deps
        .kasm
        .get_kasm_status(kasm_id.as_str(), owner.map(UserId::as_str))
        .await;
    if matches!(answer, Err(KasmError::NotFound { .. })) {
        deps.owners.forget(kasm_id.as_str());
    }
    SessionRef::from_status(kasm_id, owner.cloned(), answer)
}

/// Find a session the caller may touch (refusing destroyed, unknown and foreign ones) with
/// one `get_kasm_status` call once its owner is known ([`super::ownership`]); `policy`
/// decides whether the caller may touch a session of that owner. The first time a session
/// is seen, that same call, made as the acting user, is the ownership lookup (Kasm refuses
/// other users' sessions); for a principal that sees every session, a refusal is followed by
/// one more call without `user_id`, whose record names the owner. No session list is fetched.
pub async fn find_session(
    deps: &ToolDeps,
    ctx: &CallContext,
    kasm_id: &KasmId,
) -> Result<SessionRef, ToolError> {
    ctx.audit.kasm_id(kasm_id.as_str());
    let sees_all = policy::sees_every_session(ctx.principal.role);
    let me = match acting_user(deps, ctx) {
        Ok(me) => Some(me),
        // No Kasm user to act as: only a principal that sees every session may go on.
        Err(_) if sees_all => None,
        Err(e) => return Err(e),
    };
    let may_touch = |owner: Option<&UserId>| match &me {
        Some(me) => {
            policy::may_touch_session(&ctx.principal, me.as_str(), owner.map(UserId::as_str))
        }
        None => sees_all,
    };
    let cached = deps
        .owners
        .owner(kasm_id.as_str())
        .and_then(|o| UserId::parse(&o).ok());
    let found = match &cached {
        Some(owner) if !may_touch(Some(owner)) => return Err(refused(ctx, kasm_id)),
        Some(owner) => observe(deps, kasm_id, Some(owner)).await,
        None => match observe(deps, kasm_id, me.as_ref()).await {
            Err(KasmError::NotFound { .. }) if sees_all && me.is_some() => {
                observe(deps, kasm_id, None).await
            }
            other => other,
        },
    };
    let session = match found {
        Ok(session) => session,
        Err(KasmError::NotFound { message, .. }) if message.contains("deleted") => {
            return Err(ToolError::new(format!(
                "session {kasm_id} is being destroyed and can no longer be used; create_kasm_session starts a new one"
            )));
        }
        Err(KasmError::NotFound { .. }) => {
            // Kasm answers "not found" for another user's session as for an unknown id.
            ctx.audit.deny(
                "session_ownership",
                "the session is not visible to the Kasm user this principal acts as (another user's, destroyed, or unknown)",
            );
            return Err(not_found(kasm_id));
        }
        Err(e) => return Err(e.into()),
    };
    if !may_touch(session.owner.as_ref()) {
        return Err(refused(ctx, kasm_id));
    }
    deps.usage
        .touch(kasm_id.as_str(), std::time::Instant::now());
    if let (None, Some(owner)) = (&cached, &session.owner) {
        deps.owners.remember(kasm_id.as_str(), owner.as_str());
    }
    Ok(session)
}

/// An ownership refusal: the caller is told what an unknown id gets (no probing of other
/// users' ids); the audit trail says what happened.
fn refused(ctx: &CallContext, kasm_id: &KasmId) -> ToolError {
    ctx.audit.deny(
        "session_ownership",
        "the session belongs to another Kasm user than the one this principal acts as",
    );
    not_found(kasm_id)
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
