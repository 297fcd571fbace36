//! `desktop_screenshot`: a fresh capture of the session's X display, scaled so its longer
//! side is at most `desktop.max_screenshot_side`.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::kasm::KasmId;
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use crate::policy::Role;
use crate::tools::ToolDeps;
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolError, ToolResult, handler};

use super::{run, shot};

const NAME: &str = "desktop_screenshot";

/// Arguments of `desktop_screenshot`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    kasm_id: KasmId,
}

pub fn tool(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let side = deps.desktop.max_screenshot_side;
    let spec = ToolSpec::builder(NAME, Role::Operator)
        .title("Screenshot a session's desktop (fresh)")
        .description(format!("Capture the session's desktop right now (the X display inside the session container) and return it as an image, scaled so its longer side is at most {side} pixels, with a caption giving the real and the scaled size. Coordinates for desktop_action are pixels of this scaled image. Unlike get_session_screenshot (Kasm's cached picture, which can be stale), this is always current. Needs ImageMagick in the image and a relay; one exec in the session, about a second."))
        .input_schema(schema::input::<Args>())
        .annotations(ToolAnnotations::read_only().not_idempotent())
        .build();
    FnTool::shared(spec, deps, handler!(screenshot))
}

async fn screenshot(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    let session = run::session(&deps, &ctx, &args.kasm_id).await?;
    let mut env = BTreeMap::new();
    env.insert("KD_OP".to_string(), "shot".to_string());
    let printed = run::run(&deps, &ctx, &session, env, "the screenshot").await?;
    let shot = printed
        .shot
        .ok_or_else(|| ToolError::new("the session sent no image back"))?;
    Ok(ToolOutput {
        content: shot::content(&session.kasm_id, &shot, deps.desktop.format).into(),
        structured: None,
        is_error: false,
    })
}
