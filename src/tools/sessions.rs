//! Session tools: create (resolving image names, waiting with progress), destroy, status,
//! listings, pause/resume/keepalive, screenshot, share link, stats and recordings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ToolDeps;
use super::access::{
    SESSION_URL_WITHHELD, SessionRef, absolute_url, acting_user, find_session, may_see_session_url,
    require_running, session_json, session_schema,
};
use super::support::{
    FnTool, SpecBuilder, ToolError, ToolResult, handler, hints, kasm_id_param, no_args, no_input,
    object_schema, output_schema, parse_args,
};
use super::workspaces::resolve_image;
use crate::kasm::{
    ConnectUrl, KasmApi, KasmError, KasmResult, RequestKasm, SessionStatus, normalize_id,
};
use crate::mcp::{CallContext, Content, Tool, ToolOutput, ToolSpec};
use crate::policy::Role;

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    vec![
        FnTool::shared(create_spec(deps), deps, handler!(create)),
        FnTool::shared(destroy_spec(), deps, handler!(destroy)),
        FnTool::shared(status_spec(), deps, handler!(status)),
        FnTool::shared(list_user_spec(), deps, handler!(list_user)),
        FnTool::shared(list_all_spec(), deps, handler!(list_all)),
        FnTool::shared(pause_spec(), deps, handler!(pause)),
        FnTool::shared(resume_spec(), deps, handler!(resume)),
        FnTool::shared(keepalive_spec(), deps, handler!(keepalive)),
        FnTool::shared(screenshot_spec(), deps, handler!(screenshot)),
        FnTool::shared(share_spec(), deps, handler!(share_link)),
        FnTool::shared(frame_stats_spec(), deps, handler!(frame_stats)),
        FnTool::shared(bottleneck_spec(), deps, handler!(bottleneck_stats)),
        FnTool::shared(recordings_spec(), deps, handler!(recordings)),
    ]
}

/// Arguments of the tools that take only a session id.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    kasm_id: String,
}

fn id_input() -> Value {
    object_schema(json!({"kasm_id": kasm_id_param()}), &["kasm_id"])
}

fn nullable() -> Value {
    json!({"type": ["string", "null"]})
}

/// Output of the simple lifecycle tools.
fn state_output() -> Value {
    output_schema(
        json!({
            "kasm_id": {"type": "string"},
            "status": {"type": "string"},
            "message": {"type": "string"},
        }),
        &["kasm_id", "status", "message"],
    )
}

// ---- create_kasm_session -------------------------------------------------------------------

const CREATE: &str = "create_kasm_session";
const MAX_START_TIMEOUT_S: u64 = 3600;

fn create_input(deps: &ToolDeps) -> Value {
    object_schema(
        json!({
            "image_name": {
                "type": "string",
                "description": "Which workspace to start, by friendly name (\"Terminal\"), Docker image (\"kasmweb/terminal:1.19.0\"), image_id, or a unique part of a name. An ambiguous name is refused with the candidates."
            },
            "image_id": {
                "type": "string",
                "description": "The image's id (from get_available_workspaces). Use instead of image_name to be exact."
            },
            "enable_sharing": {
                "type": "boolean",
                "description": "Create a share_id so get_session_share_link can hand out a (usually view-only) link. Default false."
            },
            "environment": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra environment variables for the session container."
            },
            "wait": {
                "type": "boolean",
                "description": "Wait until the session is running (default true, with progress notifications). False returns at once with status starting."
            },
            "timeout_s": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_START_TIMEOUT_S,
                "description": format!("Longest wait for the session to run (default {} s).", deps.session_start_timeout.as_secs())
            }
        }),
        &[],
    )
}

fn create_spec(deps: &ToolDeps) -> ToolSpec {
    SpecBuilder {
        name: CREATE,
        title: "Start a workspace session",
        description: "Start a new Kasm session (a container desktop or app) from a workspace image and, by default, wait until it is running. Give the image by friendly name, Docker name or image_id (get_available_workspaces lists them). Returns the kasm_id that every other session tool takes, the status, and the session URL a human can open. The session URL is a login credential: it embeds a Kasm session token, and whoever opens it controls the desktop as the session's owner, so do not paste it into shared places. Starting takes from seconds to a few minutes (progress notifications are sent while waiting; the wait honours cancellation and timeout_s) and uses one of the user's session slots until destroy_kasm_session.",
        input: create_input(deps),
        output: Some(output_schema(
            json!({
                "kasm_id": {"type": "string"},
                "status": {"type": "string"},
                "session_url": nullable(),
                "image_id": {"type": "string"},
                "image_name": nullable(),
                "share_id": nullable(),
                "user_id": nullable(),
                "waited_ms": {"type": "integer"},
            }),
            &["kasm_id", "status", "image_id"],
        )),
        annotations: hints(false, false, false, false),
        min_role: Role::Operator,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateArgs {
    #[serde(default)]
    image_name: Option<String>,
    #[serde(default)]
    image_id: Option<String>,
    #[serde(default)]
    enable_sharing: bool,
    #[serde(default)]
    environment: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    wait: Option<bool>,
    #[serde(default)]
    timeout_s: Option<u64>,
}

async fn create(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: CreateArgs = parse_args(CREATE, &create_input(&deps), args)?;
    let query = args
        .image_id
        .as_deref()
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
    let images = deps.kasm.get_images().await?;
    let image = resolve_image(&images, query)?.clone();
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
        user_id: Some(user.clone()),
        image_id: Some(image.image_id.clone()),
        enable_sharing: args.enable_sharing,
        environment: args.environment,
        kasm_url: None,
    };
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
    let kasm_id = created.kasm_id.clone();
    let mut result = json!({
        "kasm_id": kasm_id,
        "status": created.status.clone().unwrap_or_else(|| "starting".into()),
        "session_url": created.kasm_url.as_ref().map(|u| absolute_url(&deps, u)),
        "image_id": image.image_id,
        "image_name": image.friendly_name,
        "share_id": created.share_id,
        "user_id": created.user_id.clone().or(Some(user.clone())),
        "waited_ms": 0,
    });
    if !args.wait.unwrap_or(true) {
        return Ok(ToolOutput::structured(result));
    }
    let final_status = wait_until_running(&deps, &ctx, &kasm_id, &user, timeout_s, started).await?;
    if let Some(obj) = result.as_object_mut() {
        obj.insert("status".into(), json!(final_status.0));
        if let Some(url) = final_status.1 {
            obj.insert("session_url".into(), json!(absolute_url(&deps, &url)));
        }
        obj.insert(
            "waited_ms".into(),
            json!(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
        );
    }
    Ok(ToolOutput::structured(result))
}

/// Poll until running; returns (status, fresh relative connect URL).
async fn wait_until_running(
    deps: &ToolDeps,
    ctx: &CallContext,
    kasm_id: &str,
    user: &str,
    timeout_s: u64,
    started: Instant,
) -> Result<(String, Option<ConnectUrl>), ToolError> {
    let deadline = started + Duration::from_secs(timeout_s);
    let total = timeout_s as f64;
    let mut delay = Duration::from_millis(250);
    loop {
        let (status, message, percent) = match deps.kasm.get_kasm_status(kasm_id, Some(user)).await
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

// ---- destroy / pause / resume / keepalive --------------------------------------------------

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
    let args: IdArgs = parse_args(action.tool(), &id_input(), args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    action
        .call(deps.kasm.as_ref(), &session.kasm_id, session.owner())
        .await?;
    let (status, message) = action.answer();
    Ok(ToolOutput::structured(json!({
        "kasm_id": session.kasm_id,
        "status": status,
        "message": message,
    })))
}

fn destroy_spec() -> ToolSpec {
    SpecBuilder {
        name: Lifecycle::Destroy.tool(),
        title: "Destroy a session",
        description: "Destroy a Kasm session: its container and everything in it that is not in a persistent profile are deleted, and the user's session slot is freed. Use it when work in the session is finished. Irreversible; one Kasm call.",
        input: id_input(),
        output: Some(state_output()),
        annotations: hints(false, true, true, false),
        min_role: Role::Operator,
    }
    .build()
}

async fn destroy(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    session_action(deps, ctx, args, Lifecycle::Destroy).await
}

fn pause_spec() -> ToolSpec {
    SpecBuilder {
        name: Lifecycle::Pause.tool(),
        title: "Pause a session",
        description: "Pause a running Kasm session: its processes are frozen and it stops using CPU, but memory and files are kept. Use resume_kasm_session to continue. Kasm group settings may forbid pausing unless the API key has Sessions Modify. One Kasm call.",
        input: id_input(),
        output: Some(state_output()),
        annotations: hints(false, false, true, false),
        min_role: Role::Operator,
    }
    .build()
}

async fn pause(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    session_action(deps, ctx, args, Lifecycle::Pause).await
}

fn resume_spec() -> ToolSpec {
    SpecBuilder {
        name: Lifecycle::Resume.tool(),
        title: "Resume a session",
        description: "Resume a paused or stopped Kasm session so that commands, files and screenshots work again. The session goes through starting back to running (get_session_status shows when). One Kasm call.",
        input: id_input(),
        output: Some(state_output()),
        annotations: hints(false, false, true, false),
        min_role: Role::Operator,
    }
    .build()
}

async fn resume(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    session_action(deps, ctx, args, Lifecycle::Resume).await
}

fn keepalive_spec() -> ToolSpec {
    SpecBuilder {
        name: "keepalive_kasm_session",
        title: "Keep a session alive",
        description: "Push back a session's idle expiration so Kasm does not reap it while an agent is still working in it. Reports usage_reached when the user's usage budget is spent. One Kasm call; needs the API key's Sessions Modify permission.",
        input: id_input(),
        output: Some(output_schema(
            json!({
                "kasm_id": {"type": "string"},
                "usage_reached": {"type": "boolean"},
            }),
            &["kasm_id", "usage_reached"],
        )),
        annotations: hints(false, false, true, false),
        min_role: Role::Operator,
    }
    .build()
}

async fn keepalive(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: IdArgs = parse_args("keepalive_kasm_session", &id_input(), args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    let answer = deps.kasm.keepalive(&session.kasm_id).await?;
    Ok(ToolOutput::structured(json!({
        "kasm_id": session.kasm_id,
        "usage_reached": answer.usage_reached,
    })))
}

// ---- status and listings -------------------------------------------------------------------

fn status_spec() -> ToolSpec {
    let mut schema = session_schema();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("session_url".into(), nullable());
        props.insert("note".into(), nullable());
        props.insert("message".into(), nullable());
        props.insert("progress".into(), json!({"type": ["integer", "null"]}));
    }
    SpecBuilder {
        name: "get_session_status",
        title: "Get a session's status",
        description: "Show one session's state: status (requested, starting, running, paused, stopped…), image, owner, start/keepalive/expiration dates and, when running, a fresh session URL. The session URL is a login credential (it embeds a Kasm session token; whoever opens it controls the desktop), so it is returned only to operator and admin callers: viewers get a note instead. Use it to check a session before working in it, or to follow a start. One or two cheap Kasm calls; read-only.",
        input: id_input(),
        output: Some(schema),
        annotations: hints(true, false, true, false),
        min_role: Role::Viewer,
    }
    .build()
}

async fn status(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: IdArgs = parse_args("get_session_status", &id_input(), args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    Ok(ToolOutput::structured(
        status_json(&deps, &session, ctx.principal.role).await?,
    ))
}

/// The status view of a session (shared with the session-status resource). The session URL
/// is included only for roles that [`may_see_session_url`]; others get a `note` saying why.
pub async fn status_json(
    deps: &ToolDeps,
    session: &SessionRef,
    role: Role,
) -> Result<Value, ToolError> {
    let mut view = session_json(&session.session);
    let (status, url, message, progress) = match deps
        .kasm
        .get_kasm_status(&session.kasm_id, session.owner())
        .await
    {
        Ok(SessionStatus::Running { kasm_url, .. }) => {
            ("running".to_string(), kasm_url, None, None)
        }
        Ok(SessionStatus::NotReady {
            status,
            message,
            progress,
        }) => (status, None, Some(message), progress),
        Ok(SessionStatus::Inactive { status }) => (status, None, None, None),
        Err(KasmError::NotReady { status, message }) => (status, None, Some(message), None),
        Err(e) => return Err(e.into()),
    };
    if let Some(obj) = view.as_object_mut() {
        obj.insert("status".into(), json!(status));
        if may_see_session_url(role) {
            obj.insert(
                "session_url".into(),
                json!(url.as_ref().map(|u| absolute_url(deps, u))),
            );
        } else {
            obj.insert("note".into(), json!(SESSION_URL_WITHHELD));
        }
        obj.insert("message".into(), json!(message));
        obj.insert("progress".into(), json!(progress));
    }
    Ok(view)
}

fn sessions_output() -> Value {
    output_schema(
        json!({
            "sessions": {"type": "array", "items": session_schema()},
            "count": {"type": "integer"},
        }),
        &["sessions", "count"],
    )
}

fn list_user_input() -> Value {
    object_schema(
        json!({
            "user_id": {
                "type": "string",
                "description": "Admins only: list another Kasm user's sessions. Default: the user this server acts as."
            }
        }),
        &[],
    )
}

fn list_user_spec() -> ToolSpec {
    SpecBuilder {
        name: "list_user_sessions",
        title: "List my sessions",
        description: "List the sessions of the Kasm user this server acts as, with kasm_id, status, image and dates. Start here to find a kasm_id to work with, or to see whether a session is already running before creating another. One Kasm call; read-only.",
        input: list_user_input(),
        output: Some(sessions_output()),
        annotations: hints(true, false, true, false),
        min_role: Role::Viewer,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListUserArgs {
    #[serde(default)]
    user_id: Option<String>,
}

fn sessions_result(sessions: &[crate::kasm::Session]) -> ToolOutput {
    let list: Vec<Value> = sessions.iter().map(session_json).collect();
    ToolOutput::structured(json!({"count": list.len(), "sessions": list}))
}

async fn list_user(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: ListUserArgs = parse_args("list_user_sessions", &list_user_input(), args)?;
    let user = match args.user_id {
        Some(other) => {
            if ctx.principal.role != Role::Admin {
                return Err(ToolError::new(
                    "only admin principals may list another user's sessions; omit user_id to list your own",
                ));
            }
            normalize_id("user_id", &other)?
        }
        None => acting_user(&deps, &ctx)?,
    };
    let sessions = deps.kasm.get_user_kasms(&user).await?;
    Ok(sessions_result(&sessions))
}

fn list_all_spec() -> ToolSpec {
    SpecBuilder {
        name: "list_all_sessions",
        title: "List all sessions (admin)",
        description: "List every session on the Kasm installation, of all users, with owner, status, image and dates. For administrators auditing usage or cleaning up. One Kasm call (needs the API key's Sessions View permission); read-only.",
        input: no_input(),
        output: Some(sessions_output()),
        annotations: hints(true, false, true, false),
        min_role: Role::Admin,
    }
    .build()
}

async fn list_all(deps: Arc<ToolDeps>, _ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    no_args("list_all_sessions", args)?;
    let sessions = deps.kasm.get_kasms().await?;
    Ok(sessions_result(&sessions))
}

// ---- screenshot ----------------------------------------------------------------------------

fn screenshot_input() -> Value {
    object_schema(
        json!({
            "kasm_id": kasm_id_param(),
            "width": {"type": "integer", "minimum": 16, "maximum": 4096, "description": "Requested width in pixels (default 1024); the aspect ratio of the desktop is kept."},
            "height": {"type": "integer", "minimum": 16, "maximum": 4096, "description": "Requested height in pixels (default 768)."}
        }),
        &["kasm_id"],
    )
}

fn screenshot_spec() -> ToolSpec {
    SpecBuilder {
        name: "get_session_screenshot",
        title: "Screenshot a session",
        description: "Take a JPEG screenshot of a running session's desktop and return it as an image. Use it to see what a GUI app shows. Note that Kasm refreshes screenshots only while someone watches the session, so the picture may be stale. One Kasm call returning tens to hundreds of kilobytes; read-only.",
        input: screenshot_input(),
        output: None,
        annotations: hints(true, false, false, false),
        min_role: Role::Viewer,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenshotArgs {
    kasm_id: String,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
}

async fn screenshot(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: ScreenshotArgs = parse_args("get_session_screenshot", &screenshot_input(), args)?;
    let width = args.width.unwrap_or(1024).clamp(16, 4096);
    let height = args.height.unwrap_or(768).clamp(16, 4096);
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    require_running(&session)?;
    let jpeg = deps
        .kasm
        .get_kasm_screenshot(&session.kasm_id, session.owner(), width, height)
        .await?;
    Ok(ToolOutput {
        content: vec![
            Content::Image {
                data: base64::engine::general_purpose::STANDARD.encode(&jpeg),
                mime_type: "image/jpeg".into(),
            },
            Content::Text {
                text: format!(
                    "Screenshot of session {} ({} bytes JPEG).",
                    session.kasm_id,
                    jpeg.len()
                ),
            },
        ],
        structured: None,
        is_error: false,
    })
}

// ---- share link ----------------------------------------------------------------------------

fn share_spec() -> ToolSpec {
    SpecBuilder {
        name: "get_session_share_link",
        title: "Get a session's share link",
        description: "Get a URL through which another person can join a session (view-only unless the Kasm group allows full control). The session must have been created with enable_sharing: true. Each call creates a join login for the acting user: the URL is a login credential (it embeds a Kasm session token), so hand it only to people who may see the session. One or two Kasm calls.",
        input: id_input(),
        output: Some(output_schema(
            json!({
                "kasm_id": {"type": "string"},
                "share_id": {"type": "string"},
                "share_url": nullable(),
            }),
            &["kasm_id", "share_id"],
        )),
        annotations: hints(false, false, false, false),
        min_role: Role::Operator,
    }
    .build()
}

async fn share_link(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: IdArgs = parse_args("get_session_share_link", &id_input(), args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    let share_id = session.session.share_id.clone().filter(|s| !s.is_empty());
    let Some(share_id) = share_id else {
        return Err(ToolError::new(format!(
            "session {} has no share_id: sharing is enabled only at creation, with create_kasm_session enable_sharing: true",
            session.kasm_id
        )));
    };
    let user = acting_user(&deps, &ctx)?;
    let joined = deps.kasm.join_kasm(&share_id, Some(&user)).await?;
    Ok(ToolOutput::structured(json!({
        "kasm_id": session.kasm_id,
        "share_id": share_id,
        "share_url": joined.kasm_url.as_ref().map(|u| absolute_url(&deps, u)),
    })))
}

// ---- stats and recordings ------------------------------------------------------------------

fn frame_input() -> Value {
    object_schema(
        json!({
            "kasm_id": kasm_id_param(),
            "client": {
                "type": "string",
                "enum": ["auto", "all", "focused"],
                "description": "Which connected viewer's stats to report (default auto)."
            }
        }),
        &["kasm_id"],
    )
}

fn stats_output() -> Value {
    output_schema(
        json!({"kasm_id": {"type": "string"}, "stats": {"type": "object"}}),
        &["kasm_id", "stats"],
    )
}

fn frame_stats_spec() -> ToolSpec {
    SpecBuilder {
        name: "get_session_frame_stats",
        title: "Get a session's frame stats",
        description: "Report KasmVNC frame timings for a session (analysis, encoding, per-client stats) to diagnose a slow or laggy desktop. Needs a browser connected to the session. One Kasm call (up to 30 s); read-only.",
        input: frame_input(),
        output: Some(stats_output()),
        annotations: hints(true, false, true, false),
        min_role: Role::Viewer,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameArgs {
    kasm_id: String,
    #[serde(default)]
    client: Option<String>,
}

async fn frame_stats(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: FrameArgs = parse_args("get_session_frame_stats", &frame_input(), args)?;
    let client = args.client.unwrap_or_else(|| "auto".into());
    if !["auto", "all", "focused"].contains(&client.as_str()) {
        return Err(ToolError::new("client must be auto, all or focused"));
    }
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    require_running(&session)?;
    let stats = deps
        .kasm
        .get_kasm_frame_stats(&session.kasm_id, session.owner(), &client)
        .await?;
    Ok(ToolOutput::structured(
        json!({"kasm_id": session.kasm_id, "stats": object_or_wrap(stats)}),
    ))
}

fn object_or_wrap(value: Value) -> Value {
    if value.is_object() {
        value
    } else {
        json!({ "value": value })
    }
}

fn bottleneck_spec() -> ToolSpec {
    SpecBuilder {
        name: "get_session_bottleneck_stats",
        title: "Get a session's bottleneck stats",
        description: "Report, per connected viewer, whether the session's desktop stream is limited by CPU or by network (KasmVNC's bottleneck statistics). Use it when a session feels slow. One Kasm call; read-only.",
        input: id_input(),
        output: Some(stats_output()),
        annotations: hints(true, false, true, false),
        min_role: Role::Viewer,
    }
    .build()
}

async fn bottleneck_stats(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: IdArgs = parse_args("get_session_bottleneck_stats", &id_input(), args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    require_running(&session)?;
    let stats = deps
        .kasm
        .get_kasm_bottleneck_stats(&session.kasm_id, session.owner())
        .await?;
    Ok(ToolOutput::structured(
        json!({"kasm_id": session.kasm_id, "stats": object_or_wrap(stats)}),
    ))
}

fn recordings_input() -> Value {
    object_schema(
        json!({
            "kasm_id": kasm_id_param(),
            "download_links": {
                "type": "boolean",
                "description": "Include pre-authorised download URLs (they grant access to the video; default false)."
            }
        }),
        &["kasm_id"],
    )
}

fn recordings_spec() -> ToolSpec {
    SpecBuilder {
        name: "get_session_recordings",
        title: "List a session's recordings",
        description: "List the screen recordings Kasm made of a session (when session recording is enabled for its group), optionally with download links. One Kasm call (needs the API key's Session Recordings View permission); read-only.",
        input: recordings_input(),
        output: Some(output_schema(
            json!({
                "kasm_id": {"type": "string"},
                "recordings": {"type": "array", "items": {"type": "object"}},
                "count": {"type": "integer"},
            }),
            &["kasm_id", "recordings", "count"],
        )),
        annotations: hints(true, false, true, false),
        min_role: Role::Viewer,
    }
    .build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingsArgs {
    kasm_id: String,
    #[serde(default)]
    download_links: bool,
}

async fn recordings(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: RecordingsArgs = parse_args("get_session_recordings", &recordings_input(), args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    let found = deps
        .kasm
        .get_session_recordings(&session.kasm_id, args.download_links)
        .await?;
    let recordings: Vec<Value> = found
        .session_recordings
        .into_iter()
        .map(object_or_wrap)
        .collect();
    Ok(ToolOutput::structured(json!({
        "kasm_id": session.kasm_id,
        "count": recordings.len(),
        "recordings": recordings,
    })))
}
