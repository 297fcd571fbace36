//! `list_commands`: the caller's jobs (running and recently finished), newest first.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jobs::{JobSummary, Owner};
use crate::kasm::KasmId;
use crate::mcp::{CallContext, Tool, ToolAnnotations, ToolSpec};
use crate::policy::COMMAND_ROLE;
use crate::tools::ToolDeps;
use crate::tools::schema::{self, parse_args};
use crate::tools::support::{FnTool, ToolResult, handler, structured};

const NAME: &str = "list_commands";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Only the jobs of this session.
    #[serde(default)]
    kasm_id: Option<KasmId>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ListResult {
    jobs: Vec<JobSummary>,
}

pub fn tool(deps: &Arc<ToolDeps>) -> Arc<dyn Tool> {
    let spec = ToolSpec::builder(NAME, COMMAND_ROLE)
        .title("List background commands")
        .description("List your background commands (jobs): those started with execute_kasm_command background: true and foreground calls that ran past the server's yield time. Each has its job_id, session, command, state (running, exited, timed_out, killed, lost, session_ended), exit code, start time, bytes of stdout/stderr so far and the spill files in the session that hold the whole output. Only your own jobs are listed; finished ones are kept for the server's jobs.finished_ttl_s. Makes no Kasm call.")
        .input_schema(schema::input::<Args>())
        .output_schema(schema::output::<ListResult>())
        .annotations(ToolAnnotations::read_only())
        .build();
    FnTool::shared(spec, deps, handler!(list_commands))
}

async fn list_commands(
    deps: Arc<ToolDeps>,
    ctx: CallContext,
    args: Map<String, Value>,
) -> ToolResult {
    let args: Args = parse_args(NAME, args)?;
    let mut jobs = deps
        .jobs
        .list(Owner {
            principal: &ctx.principal.name,
        })
        .await
        .map_err(|e| crate::tools::support::ToolError::new(e.to_string()))?;
    if let Some(kasm_id) = &args.kasm_id {
        jobs.retain(|j| j.kasm_id == kasm_id.as_str());
    }
    structured(&ListResult { jobs })
}
