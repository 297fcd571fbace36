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
    out
}
