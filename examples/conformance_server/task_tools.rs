//! The fixture tools of the tasks-extension scenarios (`greet`, `slow_compute`, `failing_job`,
//! `protocol_error_job`, `confirm_delete`, `multi_input`, `test_tool_with_task`): task support
//! comes from each tool's `ToolSpec::task_support`, the router does the rest.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kasm_mcp::mcp::{
    CallContext, TaskSupport, Tool, ToolAnnotations, ToolOutput, ToolSpec,
};
use kasm_mcp::policy::Role;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum Job {
    Greet,
    SlowCompute,
    Failing,
    ProtocolError,
    /// Would wait for input; this server's tasks never do, so it completes at once.
    Completes,
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

fn fixture(name: &str, description: &str, schema: Value, support: TaskSupport, job: Job) -> Arc<dyn Tool> {
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
            "Completes at once (this server's tasks never wait for input)",
            json!({"type": "object", "properties": {"filename": {"type": "string"}}}),
            Optional,
            Job::Completes,
        ),
        fixture(
            "multi_input",
            "Completes at once (this server's tasks never wait for input)",
            any,
            Optional,
            Job::Completes,
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
                let seconds = if seconds.is_finite() { seconds.clamp(0.0, 600.0) } else { 1.0 };
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
            Job::Completes => ToolOutput::text("done"),
        }
    }
}
