//! The fixture tools of the tasks-extension scenarios (`greet`, `slow_compute`, `failing_job`,
//! `protocol_error_job`, `confirm_delete`, `multi_input`, `test_tool_with_task`): task support
//! comes from each tool's `ToolSpec::task_support`, the router does the rest.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kasm_mcp::mcp::{CallContext, TaskSupport, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use kasm_mcp::policy::Role;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum Job {
    Greet,
    SlowCompute,
    Failing,
    ProtocolError,
    /// Asks the client to confirm (one elicitation), then completes.
    ConfirmDelete,
    /// Asks two questions at once, then completes with both answers.
    MultiInput,
}

struct TaskFixture {
    spec: ToolSpec,
    job: Job,
}

fn spec(name: &str, description: &str, schema: Value, support: TaskSupport) -> ToolSpec {
    ToolSpec::builder(name, Role::Viewer)
        .title(name)
        .description(description)
        .input_schema(schema)
        .annotations(ToolAnnotations::read_only())
        .task_support(support)
        .build()
}

fn fixture(
    name: &str,
    description: &str,
    schema: Value,
    support: TaskSupport,
    job: Job,
) -> Arc<dyn Tool> {
    Arc::new(TaskFixture {
        spec: spec(name, description, schema, support),
        job,
    })
}

pub fn tools() -> Vec<Arc<dyn Tool>> {
    use TaskSupport::*;
    let any = json!({"type": "object", "properties": {}});
    vec![
        fixture(
            "greet",
            "Returns Hello, {name}! (never a task)",
            json!({"type": "object", "properties": {"name": {"type": "string"}}}),
            Forbidden,
            Job::Greet,
        ),
        fixture(
            "slow_compute",
            "Sleeps `seconds`, then returns a result (as a task)",
            json!({"type": "object", "properties": {
                "seconds": {"type": "number"}, "label": {"type": "string"}}}),
            Optional,
            Job::SlowCompute,
        ),
        fixture(
            "failing_job",
            "Returns a tool execution error after a second (only as a task)",
            any.clone(),
            Required,
            Job::Failing,
        ),
        fixture(
            "protocol_error_job",
            "Fails with a protocol error (as a task)",
            any.clone(),
            Optional,
            Job::ProtocolError,
        ),
        fixture(
            "confirm_delete",
            "Asks the client to confirm the deletion, then reports it (as a task)",
            json!({"type": "object", "properties": {"filename": {"type": "string"}}}),
            Optional,
            Job::ConfirmDelete,
        ),
        fixture(
            "multi_input",
            "Asks two questions at once, then reports both answers (as a task)",
            any,
            Optional,
            Job::MultiInput,
        ),
    ]
}

#[async_trait]
impl Tool for TaskFixture {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        match self.job {
            Job::Greet => {
                let name = args.get("name").and_then(Value::as_str).unwrap_or("World");
                ToolOutput::text(format!("Hello, {name}!"))
            }
            Job::SlowCompute => {
                let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(1.0);
                let seconds = if seconds.is_finite() {
                    seconds.clamp(0.0, 600.0)
                } else {
                    1.0
                };
                tokio::select! {
                    _ = ctx.cancel.cancelled() => ToolOutput::error("cancelled"),
                    _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {
                        let label = args.get("label").and_then(Value::as_str).unwrap_or("");
                        ToolOutput::text(format!("computed {label} after {seconds} s"))
                    }
                }
            }
            Job::Failing => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ToolOutput::error("the job failed")
            }
            Job::ProtocolError => panic!("protocol_error_job fails on purpose"),
            Job::ConfirmDelete => {
                let file = args
                    .get("filename")
                    .and_then(Value::as_str)
                    .unwrap_or("the file");
                match ask(ctx, "confirm", &format!("Delete {file}?")).await {
                    Ok(answer) => ToolOutput::text(format!("{file}: {answer}")),
                    Err(e) => ToolOutput::error(e),
                }
            }
            Job::MultiInput => {
                let (a, b) = tokio::join!(
                    ask(ctx, "first", "First name?"),
                    ask(ctx, "second", "Second name?")
                );
                match (a, b) {
                    (Ok(a), Ok(b)) => ToolOutput::text(format!("{a} and {b}")),
                    (Err(e), _) | (_, Err(e)) => ToolOutput::error(e),
                }
            }
        }
    }
}

/// One form elicitation through the task; the answer's content as text.
async fn ask(ctx: &CallContext, key: &str, message: &str) -> Result<String, String> {
    let params = json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {"type": "object", "properties": {
            "name": {"type": "string"}, "confirm": {"type": "boolean"}}},
    });
    ctx.notifier
        .request_client_as(key, "elicitation/create", params)
        .await
        .map(|answer| {
            answer
                .get("content")
                .map(Value::to_string)
                .unwrap_or_default()
        })
        .map_err(|e| e.to_string())
}
