//! Renders the tool catalog as Markdown (`docs/TOOLS.md`) and as the JSON snapshot
//! (`tests/snapshots/tools.json`) that the schema-snapshot test compares against.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::mcp::Tool;

/// The `tools/list` view of every tool plus its minimum role, in catalog order.
pub fn snapshot(tools: &[Arc<dyn Tool>]) -> Value {
    let list: Vec<Value> = tools
        .iter()
        .map(|t| {
            let spec = t.spec();
            let mut value = spec.to_json();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("minRole".into(), json!(spec.min_role.to_string()));
            }
            value
        })
        .collect();
    json!({ "tools": list })
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn type_of(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".into(),
    }
}

/// `docs/TOOLS.md`: one section per tool with its description, parameters and hints.
pub fn markdown(tools: &[Arc<dyn Tool>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Tools\n\n<!-- Generated from the tool catalog by `tests/it/tools.rs` (schema snapshot test).\n     Do not edit by hand: change the tool, then run\n     UPDATE_SNAPSHOTS=1 cargo test --test it tools::snapshot -->\n"
    );
    let _ = writeln!(
        out,
        "Every tool declares all four MCP annotations, an input schema that refuses unknown\narguments, and (where its result is structured) an output schema. `min role` is the least\nprincipal role that sees and may call the tool (viewer < operator < admin).\n"
    );
    let _ = writeln!(
        out,
        "| tool | title | min role | read-only | destructive | idempotent | open world |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for tool in tools {
        let s = tool.spec();
        let a = s.annotations;
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} | {} | {} | {} | {} |",
            s.name,
            s.name,
            s.title,
            s.min_role,
            yes(a.read_only_hint),
            yes(a.destructive_hint),
            yes(a.idempotent_hint),
            yes(a.open_world_hint)
        );
    }
    for tool in tools {
        let s = tool.spec();
        let _ = writeln!(
            out,
            "\n## {}\n\n**{}** — min role `{}`\n\n{}\n",
            s.name, s.title, s.min_role, s.description
        );
        let required: Vec<&str> = s
            .input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let props = s.input_schema.get("properties").and_then(Value::as_object);
        match props {
            Some(props) if !props.is_empty() => {
                let _ = writeln!(out, "| parameter | type | required | description |");
                let _ = writeln!(out, "|---|---|---|---|");
                for (name, schema) in props {
                    let desc = schema
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .replace('|', "\\|");
                    let _ = writeln!(
                        out,
                        "| `{name}` | {} | {} | {desc} |",
                        type_of(schema),
                        yes(required.contains(&name.as_str()))
                    );
                }
            }
            _ => {
                let _ = writeln!(out, "No parameters.");
            }
        }
        if let Some(output) = &s.output_schema {
            let fields: Vec<String> = output
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().map(|k| format!("`{k}`")).collect())
                .unwrap_or_default();
            let _ = writeln!(out, "\nStructured result fields: {}.", fields.join(", "));
        }
        if s.name == super::exec_examples::TOOL {
            out.push_str(&super::exec_examples::markdown());
        }
    }
    out.push_str(&tasks_section(tools));
    out
}

/// The "Tasks" section of `docs/TOOLS.md`: which tools run as MCP tasks and how, in both eras.
fn tasks_section(tools: &[Arc<dyn Tool>]) -> String {
    use crate::mcp::tasks::memory::MAX_RUNNING_PER_OWNER;
    use crate::mcp::tasks::request::{DEFAULT_TTL_MS, MAX_TTL_MS, MIN_TTL_MS, POLL_INTERVAL_MS};
    let names: Vec<String> = tools
        .iter()
        .map(|t| t.spec())
        .filter(|s| s.task_support.allows_tasks())
        .map(|s| format!("`{}` ({})", s.name, s.task_support.as_str()))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Tasks\n\nA long call can run as an MCP task: the call answers at once with a task id, the tool runs in\nthe background, and the client polls for the result — so a build or a long command does not\nrun into the client's request timeout. Tools that can run as a task (`execution.taskSupport`):\n{}.\n",
        names.join(", ")
    );
    let _ = writeln!(
        out,
        "- **2025-11-25** (the tasks utility; a session that negotiated 2025-11-25 sees the `tasks`\n  capability): add `\"task\": {{\"ttl\": 600000}}` to the `tools/call` params. The answer is a\n  `CreateTaskResult` (`{{\"task\": {{\"taskId\", \"status\": \"working\", \"ttl\", \"pollInterval\", …}}}}`).\n  Then `tasks/get` (status), `tasks/result` (waits until the task ends and returns the tool\n  result, or its JSON-RPC error), `tasks/list` (your tasks, paginated) and `tasks/cancel`. When the\n  task ends, `notifications/tasks/status` goes to the client's stream (a legacy `/sse` connection,\n  or a `tasks/result` that is waiting). A tool result with `isError` makes the task `failed`.\n  When the call needs the user (e.g. the approval of a `confirm` command), the task turns\n  `input_required`: call `tasks/result`, and the request (an elicitation carrying the\n  `io.modelcontextprotocol/related-task` `_meta`) comes on its stream.\n- **2026-07-28** (the `io.modelcontextprotocol/tasks` extension, listed in `server/discover`):\n  declare the extension in the request's `_meta[\"io.modelcontextprotocol/clientCapabilities\"].extensions`\n  and every `tools/call` of a tool above answers `{{\"resultType\": \"task\", \"taskId\", \"status\",\n  \"ttlMs\", \"pollIntervalMs\", …}}`. Poll `tasks/get` (the result is inline once `completed`; `error`\n  once `failed`), cancel with `tasks/cancel`. When the call needs the user (e.g. the command\n  policy's approval of a `confirm` command), the task turns `input_required` and `tasks/get` shows\n  `inputRequests` (declare `elicitation` in the request's capabilities); answer with\n  `tasks/update` (`inputResponses` by key) and the call goes on. Send the task id as the `Mcp-Name` header of `tasks/get`, `tasks/update` and\n  `tasks/cancel`. Requests without the extension get ordinary results, and the task methods\n  answer -32021.\n"
    );
    let _ = writeln!(
        out,
        "Tasks belong to the principal that created them: another principal's `tasks/get`,\n`tasks/result`, `tasks/cancel` and `tasks/update` answer \"not found\" (-32602) and its `tasks/list`\ndoes not show them. A task is stored before its id is returned and kept for its time to live\n(asked with `ttl`, default {} s, at least {} s, at most {} h), then deleted; poll every {} ms.\nA principal may have {} tasks running at once. Cancelling an `execute_kasm_command` task kills\nthe command in the session (TERM, then KILL two seconds later), as does cancelling the call any\nother way (`notifications/cancelled`, or closing a 2026-07-28 stream).",
        DEFAULT_TTL_MS / 1000,
        MIN_TTL_MS / 1000,
        MAX_TTL_MS / 3_600_000,
        POLL_INTERVAL_MS,
        MAX_RUNNING_PER_OWNER
    );
    out
}
