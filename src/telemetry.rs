//! Prometheus metrics through the `metrics` facade and `metrics-exporter-prometheus`.
//!
//! Why these crates: the facade lets every layer (Kasm client, relay, transports, audit)
//! record without depending on the HTTP layer or on each other, and the exporter stores
//! counters and gauges as atomics and histogram samples in lock-free atomic buckets, so the
//! hot path takes no lock once a series exists (`prometheus-client` takes a write lock per
//! histogram observation). Label values here are `&'static str` wherever the set is fixed,
//! so recording allocates nothing; tool names come from the registered catalog (bounded).
//!
//! One recorder per process ([`handle`] installs it on first use); `/metrics` renders it, and
//! [`upkeep`] (run by the app every few seconds) folds histogram samples into their buckets
//! so memory stays bounded between scrapes.

// foldhash, not SipHash: looked up twice per tool call; the table holds only the tool names
// the server was built with (a client's name is looked up, never inserted).
use foldhash::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Tool calls by tool and outcome (`ok`, `tool_error`, `protocol_error`, `rate_limited`,
/// `cancelled`, `dropped`), each call counted once (see `transport::accounting`).
pub const TOOL_CALLS: &str = "kasm_mcp_tool_calls_total";
/// Tool-call latency by tool, seconds.
pub const TOOL_DURATION: &str = "kasm_mcp_tool_call_duration_seconds";
/// Refusals by the policy, one per refused call, by the rule that refused it (the audit
/// event's `rule`, see [`refusal_label`]): `tool_access` (unknown tool, or one the principal's
/// role may not call), `allowed_roots` (a path outside policy.allowed_roots), `exec_user` (a
/// `user` not in policy.allowed_exec_users), and the other rules by name.
pub const POLICY_REFUSALS: &str = "kasm_mcp_policy_refusals_total";
/// Requests refused by a rate limit, by scope (`ip`, `principal`).
pub const RATE_LIMITED: &str = "kasm_mcp_rate_limited_total";
/// HTTP responses by route and status.
pub const HTTP_REQUESTS: &str = "kasm_mcp_http_requests_total";
/// Kasm API requests by endpoint and status (HTTP status, or `timeout` / `connect_error`).
pub const KASM_REQUESTS: &str = "kasm_mcp_kasm_requests_total";
/// Kasm API latency by endpoint, seconds.
pub const KASM_DURATION: &str = "kasm_mcp_kasm_request_duration_seconds";
/// Open SSE streams (legacy /sse and streamed /mcp answers).
pub const OPEN_STREAMS: &str = "kasm_mcp_open_streams";
/// Time tools waited for a session's relay upload, seconds, by outcome.
pub const RELAY_WAIT: &str = "kasm_mcp_relay_wait_seconds";
/// Relay waits that ended without an upload before the deadline.
pub const RELAY_TIMEOUTS: &str = "kasm_mcp_relay_timeouts_total";

/// Histogram buckets, seconds: 5 ms to 10 min (commands may run for minutes).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(builder) => builder,
            // Only fails for an empty bucket list, which BUCKETS is not.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(TOOL_CALLS, "MCP tool calls by tool and outcome.");
    describe_histogram!(
        TOOL_DURATION,
        Unit::Seconds,
        "MCP tool-call latency by tool."
    );
    describe_counter!(POLICY_REFUSALS, "Requests refused by the policy, by rule.");
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by scope.");
    describe_counter!(HTTP_REQUESTS, "HTTP responses by route and status.");
    describe_counter!(KASM_REQUESTS, "Kasm API requests by endpoint and status.");
    describe_histogram!(
        KASM_DURATION,
        Unit::Seconds,
        "Kasm API latency by endpoint."
    );
    describe_gauge!(OPEN_STREAMS, "Open SSE streams.");
    describe_histogram!(
        RELAY_WAIT,
        Unit::Seconds,
        "Waits for relay uploads, by outcome."
    );
    describe_counter!(RELAY_TIMEOUTS, "Relay waits that timed out.");
}

/// The exposition text.
pub fn render() -> String {
    handle().render()
}

/// Fold histogram samples into buckets (bounded memory between scrapes).
pub fn upkeep() {
    handle().run_upkeep();
}

/// How often the app runs [`upkeep`].
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The labels [`status_label`] gives, in a fixed order: the statuses counted by number, then
/// the classes every other status falls into. An index into this list names a status series.
const STATUS_LABELS: [&str; 25] = [
    "200", "201", "202", "204", "400", "401", "403", "404", "405", "406", "408", "409", "413",
    "415", "421", "429", "500", "502", "503", "504", "1xx", "2xx", "3xx", "4xx", "5xx",
];

/// The position of an HTTP status's label in [`STATUS_LABELS`].
fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        201 => 1,
        202 => 2,
        204 => 3,
        400 => 4,
        401 => 5,
        403 => 6,
        404 => 7,
        405 => 8,
        406 => 9,
        408 => 10,
        409 => 11,
        413 => 12,
        415 => 13,
        421 => 14,
        429 => 15,
        500 => 16,
        502 => 17,
        503 => 18,
        504 => 19,
        _ => match status / 100 {
            1 => 20,
            2 => 21,
            3 => 22,
            4 => 23,
            _ => 24,
        },
    }
}

/// A `&'static` label for an HTTP status (no allocation on the hot path).
pub fn status_label(status: u16) -> &'static str {
    STATUS_LABELS
        .get(status_index(status))
        .copied()
        .unwrap_or("5xx")
}

/// Count one Kasm API request and its latency.
pub fn kasm_request(endpoint: &'static str, status: &'static str, elapsed: Duration) {
    metrics::counter!(KASM_REQUESTS, "endpoint" => endpoint, "status" => status).increment(1);
    metrics::histogram!(KASM_DURATION, "endpoint" => endpoint).record(elapsed.as_secs_f64());
}

/// A handle resolved on first use and kept. `counter!`/`histogram!` with labels build a key,
/// hash it and look the series up in the recorder's registry on every call (and copy owned
/// label values); a kept handle is one atomic operation. The recorder is installed before
/// the first resolution, so a kept handle never points at the no-op recorder. A series
/// still appears in `/metrics` only once something was recorded in it, as before.
struct Kept<T>(OnceLock<T>);

impl<T: Clone> Kept<T> {
    const fn new() -> Self {
        Kept(OnceLock::new())
    }

    fn get(&self, resolve: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(|| {
            let _ = handle();
            resolve()
        })
    }
}

/// The series of one Kasm endpoint: its latency and its `200` count are kept handles (the
/// answer of nearly every call); other statuses are looked up when they happen.
pub struct KasmSeries {
    endpoint: &'static str,
    duration: Kept<Histogram>,
    ok: Kept<Counter>,
}

impl std::fmt::Debug for KasmSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KasmSeries")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl KasmSeries {
    pub const fn new(endpoint: &'static str) -> Self {
        KasmSeries {
            endpoint,
            duration: Kept::new(),
            ok: Kept::new(),
        }
    }

    /// As [`kasm_request`] for this endpoint.
    pub fn record(&self, status: &'static str, elapsed: Duration) {
        let endpoint = self.endpoint;
        if status == "200" {
            self.ok
                .get(|| metrics::counter!(KASM_REQUESTS, "endpoint" => endpoint, "status" => "200"))
                .increment(1);
        } else {
            metrics::counter!(KASM_REQUESTS, "endpoint" => endpoint, "status" => status)
                .increment(1);
        }
        self.duration
            .get(|| metrics::histogram!(KASM_DURATION, "endpoint" => endpoint))
            .record(elapsed.as_secs_f64());
    }
}

/// The [`HTTP_REQUESTS`] series of a fixed set of route labels: one kept handle per (route,
/// status label) pair, resolved the first time that pair is counted. Routes are named by
/// their position in the list the table was built with (the HTTP layer maps a matched route
/// to it once per request).
pub struct HttpSeriesTable {
    routes: &'static [&'static str],
    /// `routes.len() × STATUS_LABELS.len()` handles, route-major.
    counts: Box<[Kept<Counter>]>,
}

impl std::fmt::Debug for HttpSeriesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSeriesTable")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl HttpSeriesTable {
    /// The table of these route labels.
    pub fn new(routes: &'static [&'static str]) -> Self {
        HttpSeriesTable {
            routes,
            counts: (0..routes.len() * STATUS_LABELS.len())
                .map(|_| Kept::new())
                .collect(),
        }
    }

    /// Count one response with `status` under the route at position `route` of the table
    /// (a position outside it is counted under no series and logged: a bug, not a client's
    /// doing).
    pub fn record(&self, route: usize, status: u16) {
        let at = status_index(status);
        let handle = self
            .routes
            .get(route)
            .zip(STATUS_LABELS.get(at))
            .and_then(|(&route_label, &status_label)| {
                let slot = route.checked_mul(STATUS_LABELS.len())?.checked_add(at)?;
                let handle = self.counts.get(slot)?;
                Some(handle.get(|| {
                    metrics::counter!(HTTP_REQUESTS, "route" => route_label, "status" => status_label)
                }))
            });
        match handle {
            Some(handle) => handle.increment(1),
            None => tracing::error!(route, status, "HTTP response of no known route series"),
        }
    }
}

/// The outcomes of [`TOOL_CALLS`], in the order of [`ToolSeries`]' handles.
const TOOL_OUTCOMES: [&str; 6] = [
    "ok",
    "tool_error",
    "protocol_error",
    "rate_limited",
    "cancelled",
    "dropped",
];

/// The series of one tool-call label (a tool name, `unknown`, or a metered method's name):
/// its call count per outcome and its latency, as kept handles.
struct ToolSeries {
    label: Box<str>,
    outcomes: [Kept<Counter>; TOOL_OUTCOMES.len()],
    duration: Kept<Histogram>,
}

impl ToolSeries {
    fn new(label: &str) -> Self {
        ToolSeries {
            label: label.into(),
            outcomes: std::array::from_fn(|_| Kept::new()),
            duration: Kept::new(),
        }
    }
}

/// What a metered call is counted under: an entry of a [`ToolSeriesTable`] (a tool name, or
/// `unknown`), or another metered method by its name. Cheap to carry until the call's outcome
/// is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolLabel {
    Series(usize),
    Method(&'static str),
}

/// The tool-call series of the tools a server was built with: each tool's name, and
/// `unknown` for a name that is not a tool (so a client cannot grow the series count).
pub struct ToolSeriesTable {
    series: Vec<ToolSeries>,
    index: HashMap<Box<str>, usize>,
}

impl std::fmt::Debug for ToolSeriesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSeriesTable")
            .field("labels", &self.series.len())
            .finish_non_exhaustive()
    }
}

/// The entry of `unknown` in every [`ToolSeriesTable`].
const UNKNOWN: usize = 0;

impl ToolSeriesTable {
    /// The table for these tool names, plus `unknown`.
    pub fn new<'a>(tools: impl IntoIterator<Item = &'a str>) -> Self {
        let mut table = ToolSeriesTable {
            series: vec![ToolSeries::new("unknown")],
            index: HashMap::default(),
        };
        for name in tools {
            if !table.index.contains_key(name) {
                table.index.insert(name.into(), table.series.len());
                table.series.push(ToolSeries::new(name));
            }
        }
        table
    }

    /// The label of a tool name taken from a request: the name itself when it is a tool of
    /// the table, `unknown` otherwise.
    pub fn label(&self, name: &str) -> ToolLabel {
        ToolLabel::Series(self.index.get(name).copied().unwrap_or(UNKNOWN))
    }

    /// The label's text.
    pub fn name(&self, label: ToolLabel) -> &str {
        match label {
            ToolLabel::Series(at) => self.series.get(at).map_or("unknown", |s| &s.label),
            ToolLabel::Method(method) => method,
        }
    }

    /// Count one call under `label` with `outcome` (one of `ok`, `tool_error`,
    /// `protocol_error`, `rate_limited`, `cancelled`, `dropped`).
    pub fn call(&self, label: ToolLabel, outcome: &'static str) {
        let series = match label {
            ToolLabel::Series(at) => self.series.get(at),
            ToolLabel::Method(_) => None,
        };
        let kept = series.and_then(|s| {
            let at = TOOL_OUTCOMES.iter().position(|o| *o == outcome)?;
            Some((s.outcomes.get(at)?, &*s.label))
        });
        match (kept, label) {
            (Some((handle, name)), _) => handle
                .get(|| {
                    metrics::counter!(TOOL_CALLS, "tool" => name.to_owned(), "outcome" => outcome)
                })
                .increment(1),
            (None, ToolLabel::Method(method)) => {
                metrics::counter!(TOOL_CALLS, "tool" => method, "outcome" => outcome).increment(1);
            }
            (None, ToolLabel::Series(_)) => {
                let name = self.name(label).to_owned();
                metrics::counter!(TOOL_CALLS, "tool" => name, "outcome" => outcome).increment(1);
            }
        }
    }

    /// Record one allowed call's latency under the tool `name` (a tool of the table; any
    /// other name is looked up in the registry, as before).
    pub fn duration(&self, name: &str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        match self.index.get(name).and_then(|&at| self.series.get(at)) {
            Some(series) => {
                let name = &*series.label;
                series
                    .duration
                    .get(|| metrics::histogram!(TOOL_DURATION, "tool" => name.to_owned()))
                    .record(seconds);
            }
            None => metrics::histogram!(TOOL_DURATION, "tool" => name.to_owned()).record(seconds),
        }
    }
}

/// Count one refused call under the rule its audit event names (see [`refusal_label`]).
/// Called once per refused call, where its audit event is written.
pub fn policy_refusal(rule: &str) {
    metrics::counter!(POLICY_REFUSALS, "rule" => refusal_label(rule)).increment(1);
}

/// The `rule` label of [`POLICY_REFUSALS`] for an audit rule: a fixed set, so a rule name
/// built from configuration (`commands:<id>`) or a new rule cannot grow the series count.
pub fn refusal_label(rule: &str) -> &'static str {
    match rule {
        "role" | "unknown_tool" => "tool_access",
        "policy.allowed_exec_users" => "exec_user",
        "policy.env" => "env",
        "allowed_roots" => "allowed_roots",
        "client_roots" => "client_roots",
        "path" => "path",
        "session_ownership" => "session_ownership",
        "images" => "images",
        "protocol" => "protocol",
        "quotas.max_sessions" => "quotas.max_sessions",
        "quotas.max_concurrent_calls" => "quotas.max_concurrent_calls",
        "quotas.max_concurrent_exec" => "quotas.max_concurrent_exec",
        "quotas.max_pending_tickets" => "quotas.max_pending_tickets",
        "quotas.session_max_lifetime_s" => "quotas.session_max_lifetime_s",
        rule if rule.starts_with("commands:") => "commands",
        _ => "other",
    }
}

/// Count one refusal by a rate limit (`scope`: `ip` or `principal`).
pub fn rate_limited(scope: &'static str) {
    metrics::counter!(RATE_LIMITED, "scope" => scope).increment(1);
}

/// Record one wait for a relay upload (`outcome`: `received`, `failed`, `cancelled`,
/// `timeout`).
pub fn relay_wait(outcome: &'static str, waited: Duration) {
    metrics::histogram!(RELAY_WAIT, "outcome" => outcome).record(waited.as_secs_f64());
    if outcome == "timeout" {
        metrics::counter!(RELAY_TIMEOUTS).increment(1);
    }
}

/// An open SSE stream: counted while this guard lives.
#[derive(Debug)]
pub struct OpenStream(());

impl OpenStream {
    pub fn open() -> OpenStream {
        metrics::gauge!(OPEN_STREAMS).increment(1.0);
        OpenStream(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(OPEN_STREAMS).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let _ = handle();
        kasm_request("get_images", "200", Duration::from_millis(12));
        let stream = OpenStream::open();
        let text = render();
        assert!(
            text.contains("kasm_mcp_kasm_requests_total{endpoint=\"get_images\",status=\"200\"}"),
            "{text}"
        );
        assert!(
            text.contains("kasm_mcp_kasm_request_duration_seconds_bucket{endpoint=\"get_images\",le=\"0.025\"}"),
            "{text}"
        );
        assert!(text.contains("kasm_mcp_open_streams"), "{text}");
        drop(stream);
        assert_eq!(status_label(404), "404");
        assert_eq!(status_label(418), "4xx");
    }

    /// The value of one series line of the exposition text (0 when absent).
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn kept_handles_count_in_the_same_series_as_the_registry() {
        let _ = handle();
        let series = KasmSeries::new("kept_handle_test_endpoint");
        let ok =
            "kasm_mcp_kasm_requests_total{endpoint=\"kept_handle_test_endpoint\",status=\"200\"}";
        let other =
            "kasm_mcp_kasm_requests_total{endpoint=\"kept_handle_test_endpoint\",status=\"404\"}";
        let count =
            "kasm_mcp_kasm_request_duration_seconds_count{endpoint=\"kept_handle_test_endpoint\"}";
        assert!(
            !render().contains("kept_handle_test_endpoint"),
            "no series before a call"
        );
        series.record("200", Duration::from_millis(3));
        series.record("200", Duration::from_millis(3));
        kasm_request("kept_handle_test_endpoint", "200", Duration::from_millis(3));
        series.record("404", Duration::from_millis(3));
        let text = render();
        assert_eq!(value(&text, ok), 3.0, "{text}");
        assert_eq!(value(&text, other), 1.0, "{text}");
        assert_eq!(value(&text, count), 4.0, "{text}");
    }

    #[test]
    fn status_labels_name_counted_statuses_by_number_and_others_by_class() {
        for label in &STATUS_LABELS[..20] {
            let status: u16 = label.parse().unwrap();
            assert_eq!(status_label(status), *label);
        }
        for (status, label) in [
            (100, "1xx"),
            (101, "1xx"),
            (206, "2xx"),
            (301, "3xx"),
            (418, "4xx"),
            (451, "4xx"),
            (501, "5xx"),
            (599, "5xx"),
            (0, "5xx"),
            (999, "5xx"),
        ] {
            assert_eq!(status_label(status), label, "{status}");
        }
    }

    #[test]
    fn http_series_count_in_the_registry_series_of_their_labels() {
        let _ = handle();
        static ROUTES: [&str; 2] = ["/http_table_test", "http_table_test_spare"];
        let table = HttpSeriesTable::new(&ROUTES);
        table.record(0, 200);
        table.record(0, 200);
        metrics::counter!(HTTP_REQUESTS, "route" => "/http_table_test", "status" => "200")
            .increment(1);
        table.record(0, 503);
        table.record(1, 418);
        table.record(2, 200);
        let text = render();
        let count = |route: &str, status: &str| {
            value(
                &text,
                &format!("kasm_mcp_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
            )
        };
        assert_eq!(count("/http_table_test", "200"), 3.0, "{text}");
        assert_eq!(count("/http_table_test", "503"), 1.0, "{text}");
        assert_eq!(count("http_table_test_spare", "4xx"), 1.0, "{text}");
        assert!(
            !text.contains("http_table_test_spare\",status=\"200"),
            "a route outside the table is counted nowhere: {text}"
        );
    }

    #[test]
    fn tool_series_count_tools_unknown_names_and_methods_under_bounded_labels() {
        let _ = handle();
        let table = ToolSeriesTable::new(["series_test_tool", "series_test_other"]);
        let tool = table.label("series_test_tool");
        assert_eq!(table.name(tool), "series_test_tool");
        let stranger = table.label("series_test_not_a_tool");
        assert_eq!(table.name(stranger), "unknown");
        assert_eq!(table.label("unknown"), stranger);
        table.call(tool, "ok");
        table.call(tool, "ok");
        table.call(tool, "tool_error");
        table.call(tool, "an outcome of no kept handle");
        table.call(ToolLabel::Method("series/test_method"), "rate_limited");
        table.duration("series_test_tool", Duration::from_millis(7));
        table.duration("series_test_not_a_tool", Duration::from_millis(7));
        let text = render();
        let calls = |tool: &str, outcome: &str| {
            value(
                &text,
                &format!("kasm_mcp_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}}"),
            )
        };
        assert_eq!(calls("series_test_tool", "ok"), 2.0, "{text}");
        assert_eq!(calls("series_test_tool", "tool_error"), 1.0, "{text}");
        assert_eq!(
            calls("series_test_tool", "an outcome of no kept handle"),
            1.0
        );
        assert_eq!(calls("series/test_method", "rate_limited"), 1.0, "{text}");
        assert!(
            !text.contains("series_test_other"),
            "unused tools add no series: {text}"
        );
        let durations = |tool: &str| {
            value(
                &text,
                &format!("kasm_mcp_tool_call_duration_seconds_count{{tool=\"{tool}\"}}"),
            )
        };
        assert_eq!(durations("series_test_tool"), 1.0, "{text}");
        assert_eq!(durations("series_test_not_a_tool"), 1.0, "{text}");
    }

    #[test]
    fn refusals_are_labelled_by_their_audit_rule_from_a_fixed_set() {
        for (rule, label) in [
            ("role", "tool_access"),
            ("unknown_tool", "tool_access"),
            ("policy.allowed_exec_users", "exec_user"),
            ("allowed_roots", "allowed_roots"),
            ("path", "path"),
            ("commands:pipe-to-shell", "commands"),
            ("commands:an-operator-rule", "commands"),
            ("quotas.max_concurrent_exec", "quotas.max_concurrent_exec"),
            ("anything else a client or a new rule brings", "other"),
            ("", "other"),
        ] {
            assert_eq!(refusal_label(rule), label, "{rule}");
        }
    }
}
