//! Prometheus text metrics, hand-written (a few counters do not justify a metrics crate):
//! HTTP requests by route and status, tool calls by tool and outcome.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    tool_calls: Mutex<BTreeMap<(String, &'static str), u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    /// Count one HTTP response. `route` is the matched route pattern (bounded set).
    pub fn record_request(&self, route: &str, status: u16) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_default() += 1;
    }

    /// Count one tool call. `tool` must come from a bounded set (known tool names).
    /// `outcome`: `ok`, `tool_error`, `protocol_error`, `rate_limited`, `cancelled`, or
    /// `dropped` (the client went away before the answer).
    pub fn record_tool_call(&self, tool: &str, outcome: &'static str) {
        *lock(&self.tool_calls)
            .entry((tool.to_owned(), outcome))
            .or_default() += 1;
    }

    /// Number of tool calls recorded for `tool` with `outcome`.
    pub fn tool_calls(&self, tool: &str, outcome: &str) -> u64 {
        lock(&self.tool_calls)
            .iter()
            .filter(|((t, o), _)| t == tool && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP kasm_mcp_http_requests_total HTTP responses by route and status.\n");
        out.push_str("# TYPE kasm_mcp_http_requests_total counter\n");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "kasm_mcp_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP kasm_mcp_tool_calls_total MCP tool calls by tool and outcome.\n");
        out.push_str("# TYPE kasm_mcp_tool_calls_total counter\n");
        for ((tool, outcome), n) in lock(&self.tool_calls).iter() {
            let _ = writeln!(
                out,
                "kasm_mcp_tool_calls_total{{tool=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(tool)
            );
        }
        out.push_str(
            "# HELP kasm_mcp_sessions_reaped_total Sessions the lifetime reaper destroyed.\n",
        );
        out.push_str("# TYPE kasm_mcp_sessions_reaped_total counter\n");
        let _ = writeln!(
            out,
            "kasm_mcp_sessions_reaped_total {}",
            crate::usage::reaped_total()
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: count every response under its matched route (`unmatched` for 404s).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics.record_request(&route, response.status().as_u16());
    response
}

/// `GET /metrics`.
pub async fn serve(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.record_request("/mcp", 200);
        m.record_request("/mcp", 200);
        m.record_tool_call("echo", "ok");
        let text = m.render();
        assert!(
            text.contains("kasm_mcp_http_requests_total{route=\"/mcp\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("kasm_mcp_tool_calls_total{tool=\"echo\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert_eq!(m.tool_calls("echo", "ok"), 1);
    }
}
