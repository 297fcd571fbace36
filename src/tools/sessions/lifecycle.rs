//! Session lifecycle: `create_kasm_session` (image resolution, then a polling wait with
//! progress), `destroy_kasm_session`, `pause_kasm_session`, `resume_kasm_session` and
//! `keepalive_kasm_session`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::args::IdArgs;
use crate::kasm::{
    ConnectUrl, ImageId, KasmApi, KasmError, KasmId, KasmResult, RequestKasm, SessionStatus, UserId,
};
use crate::mcp::{CallContext, TaskSupport, Tool, ToolAnnotations, ToolSpec};
use crate::policy::Role;
use crate::policy::lifetimes;
use crate::policy::quotas::Quota;
use crate::tools::ToolDeps;
use crate::tools::access::{absolute_url, acting_user, denied, find_session};
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler, structured};
use crate::tools::usage_guard::{session_ended, take};
use crate::tools::workspaces::{LaunchRefusal, resolve_launchable};
use crate::usage::TrackedSession;

// ---- create_kasm_session -------------------------------------------------------------------

const CREATE: &str = "create_kasm_session";
const MAX_START_TIMEOUT_S: u64 = 3600;

fn yes() -> bool {
    true
}

/// Arguments of `create_kasm_session`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateArgs {
    /// Which workspace to start, by friendly name ("Terminal"), Docker image
    /// ("kasmweb/terminal:1.19.0"), image_id, or a unique part of a name. An ambiguous name is
    /// refused with the candidates.
    #[serde(default)]
    image_name: Option<String>,
    /// The image's id (from get_available_workspaces). Use instead of image_name to be exact.
    #[serde(default)]
    image_id: Option<ImageId>,
    /// Create a share_id so get_session_share_link can hand out a (usually view-only) link.
    #[serde(default)]
    enable_sharing: bool,
    /// Extra environment variables for the session container.
    #[serde(default)]
    environment: BTreeMap<String, String>,
    /// Wait until the session is running (with progress notifications). False returns at
    /// once with status starting.
    #[serde(default = "yes")]
    wait: bool,
    /// Longest wait for the session to run, in seconds (default: the server's configured
    /// session start timeout).
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_START_TIMEOUT_S))]
    timeout_s: Option<u64>,
}

/// Result of `create_kasm_session`.
#[derive(Debug, Serialize, JsonSchema)]
struct Created {
    /// The new session's kasm_id: pass it to the other session tools.
    kasm_id: String,
    /// running once the wait succeeded; starting when wait is false.
    status: String,
    /// A login link for a human (it embeds a Kasm session token).
    session_url: Option<String>,
    image_id: String,
    image_name: Option<String>,
    share_id: Option<String>,
    user_id: Option<String>,
    /// How long the call waited for the session to run.
    waited_ms: u64,
}

pub fn create(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let input = schema::with_default(
        schema::input::<CreateArgs>(),
        "timeout_s",
        json!(deps.session_start_timeout.as_secs()),
    );
    let spec = ToolSpec::builder(CREATE, Role::Operator)
        .title("Start a workspace session")
        .description("Start a new Kasm session (a container desktop or app) from a workspace image and, by default, wait until it is running. Give the image by friendly name, Docker name or image_id (get_available_workspaces lists them). Returns the kasm_id that every other session tool takes, the status, and the session URL a human can open. The session URL is a login credential: it embeds a Kasm session token, and whoever opens it controls the desktop as the session's owner, so do not paste it into shared places. Starting takes from seconds to a few minutes (progress notifications are sent while waiting; the wait honours cancellation and timeout_s) and uses one of the user's session slots until destroy_kasm_session.")
        .input_schema(input)
        .output_schema(schema::output::<Created>())
        .annotations(ToolAnnotations::writes())
        .task_support(TaskSupport::Optional)
        .build();
    FnTool::shared(spec, deps, handler!(create_session))
}

async fn create_session(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: CreateArgs = parse_args(CREATE, args)?;
    let query = args
        .image_id
        .as_ref()
        .map(ImageId::as_str)
        .or(args.image_name.as_deref())
        .ok_or_else(|| {
            ToolError::new(
                "say which workspace to start: pass image_name (e.g. \"Terminal\") or image_id; get_available_workspaces lists them",
            )
        })?;
    let timeout_s = args
        .timeout_s
        .unwrap_or(deps.session_start_timeout.as_secs());
    if timeout_s == 0 || timeout_s > MAX_START_TIMEOUT_S {
        return Err(ToolError::new(format!(
            "timeout_s must be between 1 and {MAX_START_TIMEOUT_S}"
        )));
    }
    let user = acting_user(&deps, &ctx)?;
    let role = ctx.principal.role;
    let images = deps.kasm.get_images().await?;
    let image = resolve_launchable(&deps, role, images, query).map_err(|e| match e {
        LaunchRefusal::Unresolved(error) => error,
        LaunchRefusal::NotAllowed(refusal) => denied(&ctx, "images", refusal.to_string()),
    })?;
    ctx.audit
        .image(image.friendly_name.as_deref().unwrap_or(&image.image_id));
    if image.enabled == Some(false) {
        return Err(ToolError::new(format!(
            "the image {} is disabled by an administrator and cannot be launched",
            image.friendly_name.as_deref().unwrap_or(&image.image_id)
        )));
    }
    ctx.notifier.progress(
        0.0,
        Some(timeout_s as f64),
        Some(&format!(
            "requesting a {} session",
            image.friendly_name.as_deref().unwrap_or("workspace")
        )),
    );
    let request = RequestKasm {
        user_id: Some(user.to_string()),
        image_id: Some(image.image_id.clone()),
        enable_sharing: args.enable_sharing,
        environment: args.environment,
        kasm_url: None,
    };
    // A slot of the principal's session quota, held while the session is being created and
    // then replaced by the tracked session.
    let slot = take(&deps, &ctx, Quota::Sessions)
        .await
        .map_err(ToolError::new)?;
    let started = Instant::now();
    let created = deps.kasm.request_kasm(&request).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("limit exceeded") {
            ToolError::new(format!(
                "{text}. Destroy a session you no longer need (list_user_sessions shows them) and try again"
            ))
        } else {
            ToolError::from(e)
        }
    })?;
    let kasm_id = KasmId::parse(&created.kasm_id)?;
    // The owner is known from now on: later calls on this session need no ownership lookup.
    let owner = match created.user_id.as_deref().map(UserId::parse) {
        Some(Ok(owner)) => owner,
        _ => user.clone(),
    };
    deps.owners.remember(kasm_id.as_str(), owner.as_str());
    let now = std::time::Instant::now();
    deps.usage.track(TrackedSession {
        kasm_id: kasm_id.as_str().to_string(),
        principal: ctx.principal.name.clone(),
        owner: Some(owner.as_str().to_string()),
        created: now,
        last_used: now,
    });
    slot.created(&deps, kasm_id.as_str()).await;
    ctx.audit.kasm_id(kasm_id.as_str());
    let mut result = Created {
        kasm_id: created.kasm_id.clone(),
        status: created.status.clone().unwrap_or_else(|| "starting".into()),
        session_url: created.kasm_url.as_ref().map(|u| absolute_url(&deps, u)),
        image_id: image.image_id,
        image_name: image.friendly_name,
        share_id: created.share_id,
        user_id: created.user_id.clone().or(Some(user.to_string())),
        waited_ms: 0,
    };
    if !args.wait {
        return structured(&result);
    }
    let (status, url) =
        wait_until_running(&deps, &ctx, &kasm_id, &user, timeout_s, started).await?;
    result.status = status;
    if let Some(url) = url {
        result.session_url = Some(absolute_url(&deps, &url));
    }
    result.waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    structured(&result)
}

/// Poll until running; returns (status, fresh relative connect URL).
async fn wait_until_running(
    deps: &ToolDeps,
    ctx: &CallContext,
    kasm_id: &KasmId,
    user: &UserId,
    timeout_s: u64,
    started: Instant,
) -> Result<(String, Option<ConnectUrl>), ToolError> {
    let deadline = started + Duration::from_secs(timeout_s);
    let total = timeout_s as f64;
    let mut delay = Duration::from_millis(250);
    loop {
        let (status, message, percent) = match deps
            .kasm
            .get_kasm_status(kasm_id.as_str(), Some(user.as_str()))
            .await
        {
            Ok(SessionStatus::Running { kasm_url, .. }) => {
                ctx.notifier
                    .progress(total, Some(total), Some("session is running"));
                return Ok(("running".into(), kasm_url));
            }
            Ok(SessionStatus::Inactive { status }) => return Ok((status, None)),
            Ok(SessionStatus::NotReady {
                status,
                message,
                progress,
            }) => (status, message, progress),
            Err(KasmError::NotReady { status, message }) => (status, message, None),
            Err(e) if e.is_transient() => ("unknown".into(), e.to_string(), None),
            Err(e) => {
                return Err(ToolError::new(format!(
                    "session {kasm_id} was requested but failed while starting: {e}. Destroy it with destroy_kasm_session if it still exists"
                )));
            }
        };
        let elapsed = started.elapsed().as_secs_f64().min(total);
        let text = match percent {
            Some(p) => format!("session {status} ({p}%): {message}"),
            None => format!("session {status}: {message}"),
        };
        ctx.notifier.progress(elapsed, Some(total), Some(&text));
        if Instant::now() >= deadline {
            return Err(ToolError::new(format!(
                "session {kasm_id} was created but is still {status} after {timeout_s} s. It keeps starting: check it with get_session_status, or destroy it with destroy_kasm_session"
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))) => {}
            _ = ctx.cancel.cancelled() => {
                return Err(ToolError::new(format!(
                    "stopped waiting for session {kasm_id} (cancelled); it keeps starting — destroy it with destroy_kasm_session if it is not wanted"
                )));
            }
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

// ---- destroy / pause / resume --------------------------------------------------------------

/// Result of the simple lifecycle tools.
#[derive(Debug, Serialize, JsonSchema)]
struct StateChange {
    kasm_id: KasmId,
    /// The state the session is now going to.
    status: String,
    /// What happens next, in a sentence.
    message: String,
}

/// The lifecycle tools that are one Kasm call on a session and a fixed answer.
#[derive(Clone, Copy)]
enum Lifecycle {
    Destroy,
    Pause,
    Resume,
}

impl Lifecycle {
    fn tool(self) -> &'static str {
        match self {
            Lifecycle::Destroy => "destroy_kasm_session",
            Lifecycle::Pause => "pause_kasm_session",
            Lifecycle::Resume => "resume_kasm_session",
        }
    }

    /// The `status` and `message` of a successful call.
    fn answer(self) -> (&'static str, &'static str) {
        match self {
            Lifecycle::Destroy => (
                "destroyed",
                "The session is being destroyed; its kasm_id can no longer be used.",
            ),
            Lifecycle::Pause => (
                "paused",
                "The session is pausing; resume_kasm_session continues it.",
            ),
            Lifecycle::Resume => (
                "resuming",
                "The session is resuming; get_session_status shows when it is running.",
            ),
        }
    }

    fn spec(self) -> ToolSpec {
        let (title, description, annotations) = match self {
            Lifecycle::Destroy => (
                "Destroy a session",
                "Destroy a Kasm session: its container and everything in it that is not in a persistent profile are deleted, and the user's session slot is freed. Use it when work in the session is finished. Irreversible; one Kasm call.",
                ToolAnnotations::writes().destructive().idempotent(),
            ),
            Lifecycle::Pause => (
                "Pause a session",
                "Pause a running Kasm session: its processes are frozen and it stops using CPU, but memory and files are kept. Use resume_kasm_session to continue. Kasm group settings may forbid pausing unless the API key has Sessions Modify. One Kasm call.",
                ToolAnnotations::writes().idempotent(),
            ),
            Lifecycle::Resume => (
                "Resume a session",
                "Resume a paused or stopped Kasm session so that commands, files and screenshots work again. The session goes through starting back to running (get_session_status shows when). One Kasm call.",
                ToolAnnotations::writes().idempotent(),
            ),
        };
        ToolSpec::builder(self.tool(), Role::Operator)
            .title(title)
            .description(description)
            .input_schema(schema::input::<IdArgs>())
            .output_schema(schema::output::<StateChange>())
            .annotations(annotations)
            .build()
    }

    async fn call(self, kasm: &dyn KasmApi, kasm_id: &str, owner: Option<&str>) -> KasmResult<()> {
        match self {
            Lifecycle::Destroy => kasm.destroy_kasm(kasm_id, owner).await,
            Lifecycle::Pause => kasm.pause_kasm(kasm_id, owner).await,
            Lifecycle::Resume => kasm.resume_kasm(kasm_id, owner).await,
        }
    }
}

/// Run one lifecycle action on a session the caller may touch.
async fn session_action(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
    action: Lifecycle,
) -> ToolResult {
    let args: IdArgs = parse_args(action.tool(), args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    action
        .call(
            deps.kasm.as_ref(),
            session.kasm_id.as_str(),
            session.owner(),
        )
        .await?;
    if matches!(action, Lifecycle::Destroy) {
        session_ended(&deps, session.kasm_id.as_str()).await;
        deps.owners.forget(session.kasm_id.as_str());
        deps.jobs.end_session(session.kasm_id.as_str()).await;
    }
    let (status, message) = action.answer();
    structured(&StateChange {
        kasm_id: session.kasm_id,
        status: status.into(),
        message: message.into(),
    })
}

pub fn destroy(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    FnTool::shared(Lifecycle::Destroy.spec(), deps, handler!(destroy_session))
}

async fn destroy_session(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    session_action(deps, ctx, args, Lifecycle::Destroy).await
}

pub fn pause(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    FnTool::shared(Lifecycle::Pause.spec(), deps, handler!(pause_session))
}

async fn pause_session(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    session_action(deps, ctx, args, Lifecycle::Pause).await
}

pub fn resume(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    FnTool::shared(Lifecycle::Resume.spec(), deps, handler!(resume_session))
}

async fn resume_session(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    session_action(deps, ctx, args, Lifecycle::Resume).await
}

// ---- keepalive -----------------------------------------------------------------------------

const KEEPALIVE: &str = "keepalive_kasm_session";

/// Result of `keepalive_kasm_session`.
#[derive(Debug, Serialize, JsonSchema)]
struct KeptAlive {
    kasm_id: KasmId,
    /// True when the user's usage budget is spent: the session will end regardless.
    usage_reached: bool,
}

pub fn keepalive(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(KEEPALIVE, Role::Operator)
        .title("Keep a session alive")
        .description("Push back a session's idle expiration so Kasm does not reap it while an agent is still working in it. Reports usage_reached when the user's usage budget is spent. One Kasm call; needs the API key's Sessions Modify permission.")
        .input_schema(schema::input::<IdArgs>())
        .output_schema(schema::output::<KeptAlive>())
        .annotations(ToolAnnotations::writes().idempotent())
        .build();
    FnTool::shared(spec, deps, handler!(keepalive_session))
}

async fn keepalive_session(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: IdArgs = parse_args(KEEPALIVE, args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    if let Some(tracked) = deps.usage.tracked(session.kasm_id.as_str()) {
        let max = deps.quotas.session_max_lifetime_s.map(Duration::from_secs);
        lifetimes::keepalive(tracked.created.elapsed(), max)
            .map_err(|e| denied(&ctx, "quotas.session_max_lifetime_s", e.to_string()))?;
    }
    let answer = deps.kasm.keepalive(session.kasm_id.as_str()).await?;
    structured(&KeptAlive {
        kasm_id: session.kasm_id,
        usage_reached: answer.usage_reached,
    })
}
