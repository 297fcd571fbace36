//! Per-message bookkeeping shared by both transports: the per-principal rate limit on tool
//! calls and resource reads (checked before the router runs) and their counters (settled from
//! the router's answer).
//! The tool name comes from the JSON-RPC body, never from a header.

use axum::response::Response;
use serde_json::Value;

use super::rpc;
use super::state::TransportState;
use crate::http::rate_limit::too_many_requests;
use crate::mcp::{Handled, Method};
use crate::policy::Principal;

/// Tool calls in a message, awaiting their outcome.
#[derive(Debug, Default)]
pub struct PendingCalls {
    /// (request id, metrics label)
    calls: Vec<(Value, String)>,
}

/// The metrics label of resource reads: they count against the same per-principal budget
/// as tool calls, because reading a session-file resource runs a command in the session.
const RESOURCE_READ: &str = Method::ResourcesRead.as_str();

/// The metered messages in a message (or batch): tool calls with their tool name, and
/// resource reads under [`RESOURCE_READ`].
fn metered_calls(message: &Value) -> Vec<(Value, &str)> {
    let items: Vec<&Value> = match message {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter_map(|m| match rpc::method(m).and_then(Method::parse) {
            Some(Method::ToolsCall) => {
                let name = m
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Some((rpc::id(m), name))
            }
            Some(Method::ResourcesRead) => Some((rpc::id(m), RESOURCE_READ)),
            _ => None,
        })
        .collect()
}

/// Count the message's tool calls and resource reads against the principal's limit:
/// `Err(429)` when over it.
pub fn admit(
    state: &TransportState,
    principal: &Principal,
    message: &Value,
) -> Result<PendingCalls, Box<Response>> {
    let mut pending = PendingCalls::default();
    for (id, name) in metered_calls(message) {
        let label = if name == RESOURCE_READ {
            RESOURCE_READ.to_owned()
        } else {
            state.tool_label(name)
        };
        if let Err(wait) = state.limits.check_principal(&principal.name) {
            state.metrics.record_tool_call(&label, "rate_limited");
            return Err(Box::new(too_many_requests(
                wait,
                "tool calls per principal",
            )));
        }
        pending.calls.push((id, label));
    }
    Ok(pending)
}

/// Record the outcome of each tool call from the router's answer.
pub fn settle(state: &TransportState, pending: PendingCalls, handled: Option<&Handled>) {
    for (id, label) in pending.calls {
        let outcome = match handled {
            Some(Handled::Response(response)) => outcome_of(response, &id),
            Some(Handled::HttpError { .. }) => "protocol_error",
            // A request answered with "accepted" was cancelled (it gets no response).
            Some(Handled::Accepted) => "cancelled",
            None => "dropped",
        };
        state.metrics.record_tool_call(&label, outcome);
    }
}

fn outcome_of(response: &Value, id: &Value) -> &'static str {
    let single = match response {
        Value::Array(items) => items.iter().find(|r| r.get("id") == Some(id)),
        other => Some(other),
    };
    match single {
        None => "dropped",
        Some(r) if r.get("error").is_some() => "protocol_error",
        Some(r) if r.pointer("/result/isError") == Some(&Value::Bool(true)) => "tool_error",
        Some(_) => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_calls_and_resource_reads_are_metered_other_methods_are_not() {
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}},
            {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "kasm://sessions"}},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"}
        ]);
        let metered = metered_calls(&batch);
        assert_eq!(metered, vec![(json!(1), "echo"), (json!(2), RESOURCE_READ)]);
    }
}
