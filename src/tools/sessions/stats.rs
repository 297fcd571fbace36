//! KasmVNC statistics of a running session: `get_session_frame_stats` and
//! `get_session_bottleneck_stats`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::IdArgs;
use crate::kasm::KasmId;
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::Role;
use crate::tools::ToolDeps;
use crate::tools::access::{find_session, require_running};
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolResult, handler, object_or_wrap, structured};

const FRAME: &str = "get_session_frame_stats";
const BOTTLENECK: &str = "get_session_bottleneck_stats";

/// Which connected viewer's stats to report.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum FrameClient {
    #[default]
    Auto,
    All,
    Focused,
}

impl FrameClient {
    fn as_str(self) -> &'static str {
        match self {
            FrameClient::Auto => "auto",
            FrameClient::All => "all",
            FrameClient::Focused => "focused",
        }
    }
}

/// Arguments of `get_session_frame_stats`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FrameArgs {
    kasm_id: KasmId,
    /// Which connected viewer's stats to report.
    #[serde(default)]
    client: FrameClient,
}

/// Result of the stats tools.
#[derive(Debug, Serialize, JsonSchema)]
struct Stats {
    kasm_id: KasmId,
    /// KasmVNC's statistics, as it reports them.
    stats: Map<String, Value>,
}

pub fn frame_stats(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(FRAME, Role::Viewer)
        .title("Get a session's frame stats")
        .description("Report KasmVNC frame timings for a session (analysis, encoding, per-client stats) to diagnose a slow or laggy desktop. Needs a browser connected to the session. One Kasm call (up to 30 s); read-only.")
        .input_schema(schema::input::<FrameArgs>())
        .output_schema(schema::output::<Stats>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(get_frame_stats))
}

async fn get_frame_stats(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: FrameArgs = parse_args(FRAME, args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    require_running(&session)?;
    let stats = deps
        .kasm
        .get_kasm_frame_stats(
            session.kasm_id.as_str(),
            session.owner(),
            args.client.as_str(),
        )
        .await?;
    structured(&Stats {
        kasm_id: session.kasm_id,
        stats: object_or_wrap(stats),
    })
}

pub fn bottleneck_stats(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(BOTTLENECK, Role::Viewer)
        .title("Get a session's bottleneck stats")
        .description("Report, per connected viewer, whether the session's desktop stream is limited by CPU or by network (KasmVNC's bottleneck statistics). Use it when a session feels slow. One Kasm call; read-only.")
        .input_schema(schema::input::<IdArgs>())
        .output_schema(schema::output::<Stats>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(get_bottleneck_stats))
}

async fn get_bottleneck_stats(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: IdArgs = parse_args(BOTTLENECK, args)?;
    let session = find_session(&deps, &ctx, &args.kasm_id).await?;
    require_running(&session)?;
    let stats = deps
        .kasm
        .get_kasm_bottleneck_stats(session.kasm_id.as_str(), session.owner())
        .await?;
    structured(&Stats {
        kasm_id: session.kasm_id,
        stats: object_or_wrap(stats),
    })
}
