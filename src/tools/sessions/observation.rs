//! Looking at a session: `get_session_screenshot`, `get_session_share_link` and
//! `get_session_recordings`.

use std::sync::Arc;

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::IdArgs;
use crate::kasm::KasmId;
use crate::mcp::{CallContext, Content, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use crate::policy::Role;
use crate::tools::ToolDeps;
use crate::tools::access::{absolute_url, acting_user, find_session, require_running};
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler, object_or_wrap, structured};

// ---- screenshot ----------------------------------------------------------------------------

const SCREENSHOT: &str = "get_session_screenshot";
const MIN_SIDE: u32 = 16;
const MAX_SIDE: u32 = 4096;

fn default_width() -> u32 {
    1024
}

fn default_height() -> u32 {
    768
}

/// Arguments of `get_session_screenshot`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScreenshotArgs {
    kasm_id: KasmId,
    /// Requested width in pixels; the aspect ratio of the desktop is kept.
    #[serde(default = "default_width")]
    #[schemars(range(min = MIN_SIDE, max = MAX_SIDE))]
    width: u32,
    /// Requested height in pixels.
    #[serde(default = "default_height")]
    #[schemars(range(min = MIN_SIDE, max = MAX_SIDE))]
    height: u32,
}

pub fn screenshot(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(SCREENSHOT, Role::Viewer)
        .title("Screenshot a session")
        .description("Take a JPEG screenshot of a running session's desktop and return it as an image. Use it to see what a GUI app shows. This is Kasm's cached screenshot: Kasm refreshes it only while someone watches the session, so the picture may be stale; for a fresh capture of the desktop use desktop_screenshot. One Kasm call returning tens to hundreds of kilobytes; read-only.")
        .input_schema(schema::input::<ScreenshotArgs>())
        .annotations(ToolAnnotations::read_only().not_idempotent())
        .build();
    FnTool::shared(spec, deps, handler!(take_screenshot))
}

async fn take_screenshot(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: ScreenshotArgs = parse_args(SCREENSHOT, args)?;
    let width = args.width.clamp(MIN_SIDE, MAX_SIDE);
    let height = args.height.clamp(MIN_SIDE, MAX_SIDE);
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    require_running(&session)?;
    let jpeg = deps
        .kasm
        .get_kasm_screenshot(session.kasm_id.as_str(), session.owner(), width, height)
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

const SHARE: &str = "get_session_share_link";

/// Result of `get_session_share_link`.
#[derive(Debug, Serialize, JsonSchema)]
struct ShareLink {
    kasm_id: KasmId,
    share_id: String,
    /// The join link (a login credential: it embeds a Kasm session token).
    share_url: Option<String>,
}

pub fn share_link(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(SHARE, Role::Operator)
        .title("Get a session's share link")
        .description("Get a URL through which another person can join a session (view-only unless the Kasm group allows full control). The session must have been created with enable_sharing: true. Each call creates a join login for the acting user: the URL is a login credential (it embeds a Kasm session token), so hand it only to people who may see the session. One or two Kasm calls.")
        .input_schema(schema::input::<IdArgs>())
        .output_schema(schema::output::<ShareLink>())
        .annotations(ToolAnnotations::writes())
        .build();
    FnTool::shared(spec, deps, handler!(get_share_link))
}

async fn get_share_link(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: IdArgs = parse_args(SHARE, args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    let share_id = session.session.share_id.clone().filter(|s| !s.is_empty());
    let Some(share_id) = share_id else {
        return Err(ToolError::new(format!(
            "session {} has no share_id: sharing is enabled only at creation, with create_kasm_session enable_sharing: true",
            session.kasm_id
        )));
    };
    let user = acting_user(&deps, &ctx)?;
    let joined = deps.kasm.join_kasm(&share_id, Some(user.as_str())).await?;
    structured(&ShareLink {
        kasm_id: session.kasm_id,
        share_id,
        share_url: joined.kasm_url.as_ref().map(|u| absolute_url(&deps, u)),
    })
}

// ---- recordings ----------------------------------------------------------------------------

const RECORDINGS: &str = "get_session_recordings";

/// Arguments of `get_session_recordings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RecordingsArgs {
    kasm_id: KasmId,
    /// Include pre-authorised download URLs (they grant access to the video).
    #[serde(default)]
    download_links: bool,
}

/// Result of `get_session_recordings`.
#[derive(Debug, Serialize, JsonSchema)]
struct RecordingList {
    kasm_id: KasmId,
    /// Kasm's recording records, as Kasm sends them.
    recordings: Vec<Map<String, Value>>,
    count: usize,
}

pub fn recordings(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(RECORDINGS, Role::Viewer)
        .title("List a session's recordings")
        .description("List the screen recordings Kasm made of a session (when session recording is enabled for its group), optionally with download links. One Kasm call (needs the API key's Session Recordings View permission); read-only.")
        .input_schema(schema::input::<RecordingsArgs>())
        .output_schema(schema::output::<RecordingList>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(list_recordings))
}

async fn list_recordings(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: RecordingsArgs = parse_args(RECORDINGS, args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    let found = deps
        .kasm
        .get_session_recordings(session.kasm_id.as_str(), args.download_links)
        .await?;
    let recordings: Vec<Map<String, Value>> = found
        .session_recordings
        .into_iter()
        .map(object_or_wrap)
        .collect();
    structured(&RecordingList {
        kasm_id: session.kasm_id,
        count: recordings.len(),
        recordings,
    })
}
