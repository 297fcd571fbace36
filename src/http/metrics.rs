//! `/metrics` and the HTTP-level series, recorded through [`crate::telemetry`] (the
//! `metrics` facade and its Prometheus exporter: atomics, no lock or allocation per request):
//! HTTP responses by route and status, tool calls by tool and outcome.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::telemetry::{self, HTTP_REQUESTS, TOOL_CALLS};

/// The HTTP layer's recorder (a handle on the process's Prometheus recorder).
#[derive(Debug)]
pub struct Metrics(());

impl Default for Metrics {
    fn default() -> Self {
        let _ = telemetry::handle();
        Metrics(())
    }
}

/// The route label: the matched route pattern (a bounded set), `other` otherwise.
fn route_label(route: Option<&str>) -> &'static str {
    match route {
        Some("/mcp") => "/mcp",
        Some("/sse") => "/sse",
        Some("/messages") => "/messages",
        Some("/metrics") => "/metrics",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/relay/{ticket}") => "/relay/{ticket}",
        Some(_) => "other",
        None => "unmatched",
    }
}

impl Metrics {
    /// Count one HTTP response.
    pub fn record_request(&self, route: Option<&str>, status: u16) {
        metrics::counter!(
            HTTP_REQUESTS,
            "route" => route_label(route),
            "status" => telemetry::status_label(status)
        )
        .increment(1);
    }

    /// Count one tool call. `tool` must come from a bounded set (known tool names).
    /// `outcome`: `ok`, `tool_error`, `protocol_error`, `rate_limited`, `cancelled`, or
    /// `dropped` (the client went away before the answer).
    pub fn record_tool_call(&self, tool: &str, outcome: &'static str) {
        metrics::counter!(TOOL_CALLS, "tool" => tool.to_owned(), "outcome" => outcome).increment(1);
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut out = telemetry::render();
        // The reaper's counter lives in `usage` (below the telemetry facade's users).
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

/// Middleware: count every response under its matched route (`unmatched` for 404s).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| route_label(Some(p.as_str())));
    let response = next.run(request).await;
    metrics.record_request(route, response.status().as_u16());
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
        m.record_request(Some("/mcp"), 200);
        m.record_request(Some("/mcp"), 200);
        m.record_tool_call("metrics_unit_test_tool", "ok");
        let text = m.render();
        assert!(
            text.contains("kasm_mcp_http_requests_total{route=\"/mcp\",status=\"200\"}"),
            "{text}"
        );
        assert!(
            text.contains(
                "kasm_mcp_tool_calls_total{tool=\"metrics_unit_test_tool\",outcome=\"ok\"} 1"
            ),
            "{text}"
        );
    }
}
