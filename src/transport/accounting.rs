//! Per-message bookkeeping shared by both transports: the batch length cap, the per-principal
//! rate limit on every method that reaches Kasm — one token per item, all of a batch's tokens
//! or none, checked before the router runs — and their counters. The tool name comes from
//! the JSON-RPC body, never from a header.
//!
//! Each admitted call is counted exactly once ([`PendingCalls`]), when the router's work on it
//! ends — wherever that work runs: with the router's outcome (`ok`, `tool_error`,
//! `protocol_error`, `cancelled` for a request answered "accepted"), also when the client went
//! away mid-call and the call ran to its end in the background (`/mcp` in every revision
//! before 2026-07-28: a closed connection does not cancel, so the call's real outcome is the
//! truthful one); `dropped` when the work itself was dropped before it finished — a
//! 2026-07-28 client closed its stream (which cancels the call; its audit event says
//! `cancelled`), a legacy `/sse` stream closed or overflowed under it (its session is gone:
//! the work stops), the handler panicked, the server stopped it at shutdown, or the work was
//! dropped before it ever ran (its task never polled).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::rpc;
use super::state::TransportState;
use crate::http::rate_limit::{PrincipalRefusal, too_many_requests};
use crate::mcp::{Handled, Method};
use crate::policy::Principal;
use crate::telemetry::{ToolLabel, ToolSeriesTable};

/// Tool calls in a message, admitted and awaiting their outcome. Each is counted exactly
/// once: with the router's outcome when [`PendingCalls::settle`]d, or as `dropped` when the
/// value is dropped unsettled — wherever and whenever that happens, also when the future
/// holding it is dropped before its first poll (the runtime stopping between the spawn and
/// the first poll, a task aborted at once): moving it into the router's future is all a
/// transport has to do.
#[derive(Debug, Default)]
#[must_use = "admitted calls are counted when settled, or as `dropped` when dropped unsettled"]
pub struct PendingCalls {
    /// The series they are counted in (`None` only when there are no calls).
    series: Option<Arc<ToolSeriesTable>>,
    /// (request id, metrics label)
    calls: Vec<(Value, ToolLabel)>,
}

impl PendingCalls {
    /// Count each call with its outcome in the router's answer (`None`: the work ended with
    /// no answer, e.g. a legacy SSE stream closed under it: `dropped`).
    pub fn settle(mut self, handled: Option<&Handled>) {
        let Some(series) = self.series.take() else {
            return;
        };
        for (id, label) in std::mem::take(&mut self.calls) {
            let outcome = match handled {
                Some(Handled::Response(response)) => outcome_of(response, &id),
                // Only complete, non-error results are pre-serialised.
                Some(Handled::RawResponse(_)) => "ok",
                Some(Handled::HttpError { .. }) => "protocol_error",
                // A request answered with "accepted" was cancelled (it gets no response).
                Some(Handled::Accepted) => "cancelled",
                None => "dropped",
            };
            series.call(label, outcome);
        }
    }
}

impl Drop for PendingCalls {
    fn drop(&mut self) {
        if let Some(series) = self.series.take() {
            for (_, label) in self.calls.drain(..) {
                series.call(label, "dropped");
            }
        }
    }
}

/// The methods other than `tools/call` that reach Kasm, metered against the same
/// per-principal budget as tool calls (their metrics label is the method name): listing
/// resources lists the principal's sessions, reading one may run a command in a session,
/// and completing an argument lists images or sessions.
const KASM_METHODS: [Method; 3] = [
    Method::ResourcesRead,
    Method::ResourcesList,
    Method::CompletionComplete,
];

/// What a metered message is: a tool call (by the tool name in its body) or another method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metered<'a> {
    Tool(&'a str),
    Method(Method),
}

/// The metered messages in a message (or batch): tool calls with their tool name, and the
/// other [`KASM_METHODS`] under their method name.
fn metered_calls(message: &Value) -> Vec<(Value, Metered<'_>)> {
    let items: &[Value] = match message {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    };
    items
        .iter()
        .filter_map(|m| {
            let method = rpc::method(m).and_then(Method::parse)?;
            if method == Method::ToolsCall {
                // Not `pointer("/params/name")`: it allocates a string per path segment (half
                // of this function's cost). Same answer: an array `params` has no "name".
                let name = m
                    .get("params")
                    .and_then(|params| params.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return Some((rpc::id(m), Metered::Tool(name)));
            }
            KASM_METHODS
                .contains(&method)
                .then(|| (rpc::id(m), Metered::Method(method)))
        })
        .collect()
}

/// Refuse a batch longer than `batch.max_items`, then count the message's metered calls
/// against the principal's limit — all of them or none, so a refused batch spends nothing:
/// `Err(400)` for a batch that is too long or can never fit the burst, `Err(429)` when over
/// the limit now; `Err(503)` for any request while the server shuts down.
pub async fn admit(
    state: &TransportState,
    principal: &Principal,
    message: &Value,
) -> Result<PendingCalls, Box<Response>> {
    super::draining::refuse_new_work(state, message)?;
    if let Some(Handled::HttpError { status, body }) = state.server.refuse_long_batch(message) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        return Err(Box::new(rpc::json_response(status, &body)));
    }
    let series = state.server.tool_series();
    let calls: Vec<(Value, ToolLabel)> = metered_calls(message)
        .into_iter()
        .map(|(id, metered)| {
            let label = match metered {
                Metered::Tool(name) => series.label(name),
                Metered::Method(method) => ToolLabel::Method(method.as_str()),
            };
            (id, label)
        })
        .collect();
    let count = u32::try_from(calls.len()).unwrap_or(u32::MAX);
    if let Err(refusal) = state
        .limits
        .check_principal_n_shared(&principal.name, count)
        .await
    {
        crate::telemetry::rate_limited("principal");
        for (_, label) in &calls {
            series.call(*label, "rate_limited");
        }
        return Err(Box::new(match refusal {
            PrincipalRefusal::Wait(wait) => too_many_requests(wait, "tool calls per principal"),
            PrincipalRefusal::NeverFits(burst) => rpc::json_response(
                StatusCode::BAD_REQUEST,
                &rpc::error_body(
                    Value::Null,
                    rpc::INVALID_REQUEST,
                    &format!(
                        "this batch has {count} calls that reach Kasm, more than the {burst} a principal may make at once (limits.per_principal_burst); split it"
                    ),
                    None,
                ),
            ),
        }));
    }
    Ok(PendingCalls {
        series: (!calls.is_empty()).then(|| Arc::clone(series)),
        calls,
    })
}

fn outcome_of(response: &Value, id: &Value) -> &'static str {
    let single = match response {
        Value::Array(items) => items.iter().find(|r| r.get("id") == Some(id)),
        other => Some(other),
    };
    match single {
        None => "dropped",
        Some(r) if r.get("error").is_some() => "protocol_error",
        // Not `pointer("/result/isError")`: it allocates a string per path segment.
        Some(r)
            if r.get("result").and_then(|result| result.get("isError"))
                == Some(&Value::Bool(true)) =>
        {
            "tool_error"
        }
        Some(_) => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `kasm_mcp_tool_calls_total` count of `tool` with `outcome`.
    fn counted(tool: &str, outcome: &str) -> f64 {
        let series = format!("kasm_mcp_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}}");
        crate::telemetry::render()
            .lines()
            .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn pending(series: &Arc<ToolSeriesTable>, tool: &str, ids: &[i64]) -> PendingCalls {
        PendingCalls {
            series: Some(Arc::clone(series)),
            calls: ids
                .iter()
                .map(|id| (json!(id), series.label(tool)))
                .collect(),
        }
    }

    /// Admitted calls whose work never ran — its task spawned, then the runtime stopped
    /// before the first poll — are counted `dropped`, once each; settled ones only with their
    /// outcome.
    #[test]
    fn every_admitted_call_is_counted_once_even_when_its_work_never_runs() {
        let _ = crate::telemetry::handle();
        let tools = ["never_polled_tool", "settled_tool", "dropped_tool"];
        let series = Arc::new(ToolSeriesTable::new(tools));

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let never_polled = pending(&series, "never_polled_tool", &[1, 2]);
        drop(runtime.spawn(async move {
            never_polled.settle(Some(&Handled::Accepted));
        }));
        drop(runtime);
        assert_eq!(counted("never_polled_tool", "dropped"), 2.0);
        assert_eq!(counted("never_polled_tool", "cancelled"), 0.0);

        pending(&series, "settled_tool", &[3]).settle(Some(&Handled::Response(
            json!({"jsonrpc": "2.0", "id": 3, "result": {"isError": true}}),
        )));
        assert_eq!(counted("settled_tool", "tool_error"), 1.0);
        assert_eq!(counted("settled_tool", "dropped"), 0.0);

        drop(pending(&series, "dropped_tool", &[4]));
        assert_eq!(counted("dropped_tool", "dropped"), 1.0);
        // A message without metered calls holds no series and counts nothing.
        drop(PendingCalls::default());
    }

    #[test]
    fn every_method_that_reaches_kasm_is_metered_other_methods_are_not() {
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}},
            {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "kasm://sessions"}},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"}
        ]);
        let metered = metered_calls(&batch);
        assert_eq!(
            metered,
            vec![
                (json!(1), Metered::Tool("echo")),
                (json!(2), Metered::Method(Method::ResourcesRead))
            ]
        );
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "resources/list"},
            {"jsonrpc": "2.0", "id": 2, "method": "completion/complete", "params": {}},
            {"jsonrpc": "2.0", "id": 3, "method": "resources/templates/list"},
            {"jsonrpc": "2.0", "id": 4, "method": "prompts/list"}
        ]);
        assert_eq!(
            metered_calls(&batch),
            vec![
                (json!(1), Metered::Method(Method::ResourcesList)),
                (json!(2), Metered::Method(Method::CompletionComplete))
            ]
        );
    }

    #[test]
    fn the_tool_name_is_params_name_when_it_is_a_string_else_empty() {
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a"}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": ["name"]},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 5}},
            {"jsonrpc": "2.0", "id": 4, "method": "tools/call"},
            {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": {"name": "x"}}},
            {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"arguments": {"name": "x"}}},
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "é/~1"}}
        ]);
        let names: Vec<Metered> = metered_calls(&batch).into_iter().map(|(_, m)| m).collect();
        let pointer_names: Vec<Metered> = batch
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                Metered::Tool(
                    m.pointer("/params/name")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(names, pointer_names);
        assert_eq!(names[0], Metered::Tool("a"));
        assert_eq!(names[6], Metered::Tool("é/~1"));
    }
}
