//! `diagnose_kasm_permissions`: which Kasm API-key permissions the server has, found with
//! probes that change nothing (the probes themselves are in `kasm::diagnose`).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::ToolDeps;
use super::schema::{self, NoArgs, parse_args};
use super::support::{FnTool, ToolResult, handler, structured};
use crate::kasm::diagnose::{PermissionReport, diagnose_permissions};
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::Role;

const NAME: &str = "diagnose_kasm_permissions";

pub fn tools(deps: &Arc<ToolDeps>) -> Vec<Arc<dyn Tool>> {
    let spec = ToolSpec::builder(NAME, Role::Operator)
        .title("Diagnose Kasm API permissions")
        .description("Find out which Kasm API-key permissions this server has and which are missing, with probes that change nothing (reads, and session calls on a kasm_id that matches no session). Use it when tools fail with permission errors, or once after setup. About eight cheap Kasm calls; read-only.")
        .input_schema(schema::input::<NoArgs>())
        .output_schema(schema::output::<PermissionReport>())
        .annotations(ToolAnnotations::read_only())
        .build();
    vec![FnTool::shared(spec, deps, handler!(diagnose))]
}

async fn diagnose(deps: Arc<ToolDeps>, ctx: CallContext, args: Map<String, Value>) -> ToolResult {
    let NoArgs {} = parse_args(NAME, args)?;
    // No Kasm user to act as is not an error here: the report then skips the per-user probes.
    let user =
        crate::policy::acting_kasm_user(&ctx.principal, deps.default_user_id.as_deref()).ok();
    let report = diagnose_permissions(deps.kasm.as_ref(), user).await;
    structured(&report)
}
