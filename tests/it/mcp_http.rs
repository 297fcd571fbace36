//! Integration tests: the real app bound to 127.0.0.1:0, driven over HTTP with reqwest —
//! the layers (auth, Host/Origin, body limit, rate limits), Streamable HTTP (JSON and SSE
//! answers, sessions, restart), the legacy `/sse` + `/messages` transport, and cancellation.
//! The tools here are test doubles defined in this file; the real catalog is tested in `tools`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kasm_mcp::app::{App, RunningApp};
use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::mcp::{CallContext, McpServer, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use kasm_mcp::policy::Role;
use kasm_mcp::tokens::sha256_hex;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

const TOKEN: &str = "test-token-alice";
const OTHER_TOKEN: &str = "test-token-bob";
const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- test tools

fn spec(name: &str, description: &str, schema: Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        title: name.into(),
        description: description.into(),
        input_schema: schema,
        output_schema: None,
        annotations: ToolAnnotations {
            read_only_hint: true,
            destructive_hint: false,
            idempotent_hint: true,
            open_world_hint: false,
        },
        min_role: Role::Viewer,
        task_support: Default::default(),
    }
}

/// Returns its `text` argument.
struct Echo(ToolSpec);

impl Echo {
    fn new() -> Self {
        Echo(spec(
            "echo",
            "Echo the text back",
            // `x-mcp-header`: 2026-07-28 clients mirror the argument into `Mcp-Param-Text`.
            json!({"type": "object",
                   "properties": {"text": {"type": "string", "x-mcp-header": "Text"}},
                   "required": ["text"]}),
        ))
    }
}

#[async_trait]
impl Tool for Echo {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, _ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        match args.get("text").and_then(Value::as_str) {
            Some(text) => ToolOutput::text(format!("echo: {text}")),
            None => ToolOutput::error("missing text"),
        }
    }
}

/// What the slow tool observed.
#[derive(Default)]
struct SlowLog {
    started: AtomicBool,
    /// Steps taken (one progress notification each).
    steps: AtomicU64,
    /// Set when the tool saw its cancellation token fire and stopped.
    saw_cancel: AtomicBool,
    /// Set when the tool's future was dropped before it finished (aborted).
    dropped_unfinished: AtomicBool,
    finished: AtomicBool,
}

/// Emits progress every 20 ms for `steps` steps (default 3), stopping when cancelled.
struct Slow {
    spec: ToolSpec,
    log: Arc<SlowLog>,
}

struct DropWatch(Arc<SlowLog>);

impl Drop for DropWatch {
    fn drop(&mut self) {
        if !self.0.finished.load(Ordering::SeqCst) && !self.0.saw_cancel.load(Ordering::SeqCst) {
            self.0.dropped_unfinished.store(true, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Tool for Slow {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    async fn call(&self, ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        let steps = args.get("steps").and_then(Value::as_u64).unwrap_or(3);
        self.log.started.store(true, Ordering::SeqCst);
        let _watch = DropWatch(self.log.clone());
        for step in 1..=steps {
            ctx.notifier
                .progress(step as f64, Some(steps as f64), Some("working"));
            self.log.steps.fetch_add(1, Ordering::SeqCst);
            tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    self.log.saw_cancel.store(true, Ordering::SeqCst);
                    return ToolOutput::error("cancelled");
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        self.log.finished.store(true, Ordering::SeqCst);
        ToolOutput::text(format!("done after {steps} steps"))
    }
}

// ---------------------------------------------------------------- harness

fn token(name: &str, token: &str, role: &str) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        sha256: sha256_hex(token).parse().expect("a digest"),
        role: role.parse().expect("a role"),
        kasm_user_id: None,
    }
}

fn test_config() -> Config {
    let mut config = Config::default();
    config.server.port = 0;
    config.server.allowed_origins = vec!["https://app.example.com".into()];
    config.server.max_body_bytes = 64 * 1024;
    config.auth.tokens = vec![
        token("alice", TOKEN, "admin"),
        token("bob", OTHER_TOKEN, "operator"),
    ];
    config
}

struct Harness {
    app: RunningApp,
    slow: Arc<SlowLog>,
    http: reqwest::Client,
}

impl Harness {
    /// The app's `/metrics` text.
    async fn metrics_text(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn start(config: Config) -> Harness {
        Harness::start_with(config, axum::Router::new()).await
    }

    async fn start_with(config: Config, extra_routes: axum::Router) -> Harness {
        Harness::start_tools(config, extra_routes, slow_spec()).await
    }

    /// With the slow tool under a name of its own (`slow_<suffix>`): its audit events and
    /// metric series belong to the one test that uses it (the audit capture and the metrics
    /// recorder are process-wide, the tests run in parallel).
    async fn start_own_slow(config: Config, suffix: &str) -> Harness {
        let mut spec = slow_spec();
        spec.name = format!("slow_{suffix}");
        Harness::start_tools(config, axum::Router::new(), spec).await
    }

    async fn start_tools(
        config: Config,
        extra_routes: axum::Router,
        slow_spec: ToolSpec,
    ) -> Harness {
        let slow = Arc::new(SlowLog::default());
        let tools: Vec<Arc<dyn Tool>> = vec![
            Arc::new(Echo::new()),
            Arc::new(Slow {
                spec: slow_spec,
                log: slow.clone(),
            }),
        ];
        let server = Arc::new(McpServer::new(tools));
        let app = App::build(config, server, extra_routes).expect("bind");
        Harness {
            app: app.spawn(),
            slow,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base_url())
    }

    /// A POST to /mcp with the usual headers and the given token.
    fn mcp_post(&self, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(self.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req
    }

    async fn initialize(&self) -> (String, Value) {
        let resp = self
            .mcp_post(Some(TOKEN))
            .json(&initialize_request(1))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let session = resp
            .headers()
            .get("mcp-session-id")
            .expect("initialize returns Mcp-Session-Id")
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        let ack = self
            .mcp_post(Some(TOKEN))
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(ack.status(), StatusCode::ACCEPTED);
        (session, body)
    }

    /// POST a request within a session; returns status and JSON body.
    async fn call(&self, session: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .mcp_post(Some(TOKEN))
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(ct.starts_with("application/json"), "content-type {ct}");
        (status, resp.json().await.unwrap())
    }
}

fn slow_spec() -> ToolSpec {
    spec(
        "slow",
        "Report progress until done or cancelled",
        json!({"type": "object", "properties": {"steps": {"type": "integer"}}}),
    )
}

fn initialize_request(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "it", "version": "0"}
        }
    })
}

fn tools_call(id: u64, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": args}})
}

fn first_text(result: &Value) -> &str {
    result
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text content in {result}"))
}

/// One parsed SSE event.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Reads SSE events from a streaming response body.
pub(crate) struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub(crate) fn new(resp: reqwest::Response) -> Self {
        SseReader {
            stream: resp.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); None when the stream ended.
    pub(crate) async fn next(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout(DEADLINE, self.stream.next())
                .await
                .expect("SSE event within the deadline")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk")));
        }
    }

    pub(crate) async fn next_json(&mut self) -> Value {
        let event = self.next().await.expect("another SSE event");
        assert_eq!(event.event, "message", "{event:?}");
        serde_json::from_str(&event.data).unwrap()
    }
}

/// Poll `check` until it holds or the deadline passes.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = tokio::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------- the layers

#[tokio::test]
async fn bearer_auth_refuses_missing_and_wrong_tokens() {
    let h = Harness::start(test_config()).await;
    let init = initialize_request(1);
    for token in [None, Some("wrong-token")] {
        let resp = h.mcp_post(token).json(&init).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "token {token:?}");
        // RFC 6750 challenge, but no OAuth discovery metadata without [oauth].
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer realm=\"kasm-mcp\""),
            "plain challenge with static tokens"
        );
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    }
    let resp = h
        .http
        .get(h.url("/sse"))
        .header("authorization", "Basic dGVzdA==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"kasm-mcp\""
    );
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let resp = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{path} without [oauth]"
        );
    }
    let resp = h.mcp_post(Some(TOKEN)).json(&init).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = h
        .mcp_post(Some(OTHER_TOKEN))
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("x-request-id").is_some());
}

#[tokio::test]
async fn foreign_host_and_origin_are_forbidden() {
    let h = Harness::start(test_config()).await;
    let init = initialize_request(1);
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("host", "evil.example.com")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    for (origin, expected) in [
        ("https://evil.example.com", StatusCode::FORBIDDEN),
        ("null", StatusCode::FORBIDDEN),
        ("https://app.example.com", StatusCode::OK),
        ("http://localhost:6274", StatusCode::OK),
    ] {
        let resp = h
            .mcp_post(Some(TOKEN))
            .header("origin", origin)
            .json(&init)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected, "origin {origin}");
    }
    // The guard sits in front of auth: a foreign Host is refused even without a token.
    let resp = h
        .http
        .get(h.url("/healthz"))
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // An empty port is the default one and a trailing dot names the same host (RFC 3986,
    // RFC 1034), for the loopback names as for configured ones; a foreign name stays foreign
    // in every spelling.
    for (host, expected) in [
        ("localhost", StatusCode::OK),
        ("localhost:", StatusCode::OK),
        ("localhost.", StatusCode::OK),
        ("LOCALHOST.:8080", StatusCode::OK),
        ("[::1]:", StatusCode::OK),
        ("evil.example.com.", StatusCode::FORBIDDEN),
        ("evil.example.com:", StatusCode::FORBIDDEN),
        ("localhost..", StatusCode::FORBIDDEN),
    ] {
        let resp = h
            .http
            .get(h.url("/healthz"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected, "Host {host:?}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_before_parsing() {
    let h = Harness::start(test_config()).await;
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let resp = h
        .mcp_post(Some(TOKEN))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    // Without Content-Length (chunked) the limit holds while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let resp = h
        .mcp_post(Some(TOKEN))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Legacy POST endpoint too.
    let resp = h
        .http
        .post(h.url("/messages?sessionId=x"))
        .bearer_auth(TOKEN)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn bad_protocol_version_json_and_media_types_get_4xx() {
    let h = Harness::start(test_config()).await;
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-protocol-version", "1999-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32022, "{body}");
    assert!(body["error"]["data"]["supported"].as_array().unwrap().len() >= 4);

    let resp = h
        .mcp_post(Some(TOKEN))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");
    assert_eq!(body["id"], Value::Null);

    let resp = h
        .http
        .post(h.url("/mcp"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = h
        .http
        .post(h.url("/mcp"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("accept", "text/html")
        .body(initialize_request(1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);

    let resp = h
        .http
        .get(h.url("/mcp"))
        .bearer_auth(TOKEN)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn per_ip_rate_limit_answers_429_with_retry_after() {
    let mut config = test_config();
    config.limits.per_ip_per_second = 1;
    config.limits.per_ip_burst = 3;
    let h = Harness::start(config).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let resp = h
            .mcp_post(Some("wrong-token"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "retry-after {retry}");
        }
    }
    // Limited before auth: the bad token does not matter, the address does.
    assert_eq!(
        statuses,
        vec![
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Probes are never starved.
    let resp = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn per_principal_tool_call_limit_answers_429() {
    let mut config = test_config();
    config.limits.per_principal_per_minute = 1;
    config.limits.per_principal_burst = 2;
    let h = Harness::start(config).await;
    let (session, _) = h.initialize().await;
    for id in 1..=2 {
        let (status, body) = h
            .call(&session, &tools_call(id, "echo", json!({"text": "x"})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = h
        .call(&session, &tools_call(3, "echo", json!({"text": "x"})))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Other methods and other principals are not limited by alice's tool calls.
    let (status, _) = h
        .call(
            &session,
            &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = h
        .mcp_post(Some(OTHER_TOKEN))
        .header("mcp-protocol-version", "2025-11-25")
        .json(&tools_call(5, "echo", json!({"text": "x"})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_echoed_only_when_sane() {
    let h = Harness::start(test_config()).await;
    let echo = |id: &'static str| {
        let req = h.http.get(h.url("/healthz")).header("x-request-id", id);
        async move {
            let resp = req.send().await.unwrap();
            resp.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(echo("trace-42.a_b").await, "trace-42.a_b");
    let replaced = echo("two words; <script>").await;
    assert_ne!(replaced, "two words; <script>");
    assert_eq!(replaced.len(), 36, "a fresh UUID: {replaced}");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let h = Harness::start(test_config()).await;
    let resp = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (session, _) = h.initialize().await;
    h.call(&session, &tools_call(2, "echo", json!({"text": "m"})))
        .await;
    h.call(&session, &tools_call(3, "no_such_tool", json!({})))
        .await;
    let resp = h.http.get(h.url("/nowhere")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let text = h.metrics_text().await;
    // One recorder per process: other tests in this binary call `echo` too, so the count is
    // at least 1, not exactly 1.
    assert!(
        text.contains("kasm_mcp_tool_calls_total{tool=\"echo\",outcome=\"ok\"} "),
        "{text}"
    );
    assert!(
        text.contains("tool=\"unknown\""),
        "unknown tool names are not labels: {text}"
    );
    assert!(!text.contains("no_such_tool"), "{text}");
    assert!(
        text.contains("kasm_mcp_http_requests_total{route=\"/mcp\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\""),
        "{text}"
    );
}

/// Extra routes (the relay) need no bearer token and are not held to the MCP body limit,
/// but the Host guard still applies to them.
#[tokio::test]
async fn extra_routes_skip_auth_and_body_limit_but_not_the_host_guard() {
    async fn count_bytes(body: axum::body::Body) -> String {
        let mut stream = body.into_data_stream();
        let mut total = 0usize;
        while let Some(chunk) = stream.next().await {
            total += chunk.unwrap().len();
        }
        total.to_string()
    }
    let extra = axum::Router::new().route("/relay/{ticket}", axum::routing::post(count_bytes));
    let h = Harness::start_with(test_config(), extra).await;
    let big = vec![b'x'; 200 * 1024]; // over the 64 KiB MCP body limit
    let resp = h
        .http
        .post(h.url("/relay/some-ticket"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), (200 * 1024).to_string());
    let resp = h
        .http
        .post(h.url("/relay/some-ticket"))
        .header("host", "evil.example.com")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------- Streamable HTTP

#[tokio::test]
async fn streamable_http_initialize_list_call() {
    let h = Harness::start(test_config()).await;
    let (session, init) = h.initialize().await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    let (status, list) = h
        .call(
            &session,
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["echo", "slow"]);
    let (status, result) = h
        .call(&session, &tools_call(3, "echo", json!({"text": "hello"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["id"], 3);
    assert_eq!(first_text(&result), "echo: hello");
    // Stateless use (no session header) works too.
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-protocol-version", "2025-11-25")
        .json(&tools_call(4, "echo", json!({"text": "stateless"})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(first_text(&resp.json().await.unwrap()), "echo: stateless");
}

#[tokio::test]
async fn notifications_and_responses_get_202() {
    let h = Harness::start(test_config()).await;
    let (session, _) = h.initialize().await;
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}),
        json!({"jsonrpc": "2.0", "id": "server-req-1", "result": {}}),
    ] {
        let resp = h
            .mcp_post(Some(TOKEN))
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&message)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{message}");
        assert!(resp.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn progress_switches_the_answer_to_sse() {
    let h = Harness::start(test_config()).await;
    let (session, _) = h.initialize().await;
    let mut call = tools_call(7, "slow", json!({"steps": 3}));
    call["params"]["_meta"] = json!({"progressToken": "p-7"});
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let mut events = SseReader::new(resp);
    let mut progress = Vec::new();
    let result = loop {
        let message = events.next_json().await;
        if message["method"] == "notifications/progress" {
            assert_eq!(message["params"]["progressToken"], "p-7");
            progress.push(message["params"]["progress"].as_f64().unwrap());
        } else {
            break message;
        }
    };
    assert_eq!(progress, vec![1.0, 2.0, 3.0]);
    assert_eq!(result["id"], 7);
    assert_eq!(first_text(&result), "done after 3 steps");
    assert!(
        events.next().await.is_none(),
        "stream closes after the response"
    );

    // Without a progress token the same tool answers with plain JSON.
    let (status, result) = h
        .call(&session, &tools_call(8, "slow", json!({"steps": 2})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first_text(&result), "done after 2 steps");
}

/// A long call without progress switches to SSE after one keep-alive interval, so keep-alive
/// comments flow while it runs.
#[tokio::test]
async fn long_calls_switch_to_sse_with_keep_alives() {
    let mut config = test_config();
    config.server.sse_keep_alive_s = 1;
    let h = Harness::start(config).await;
    let (session, _) = h.initialize().await;
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&tools_call(9, "slow", json!({"steps": 120})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(DEADLINE, resp.text())
        .await
        .unwrap()
        .unwrap();
    assert!(
        body.contains(":keep-alive") || body.contains(": keep-alive"),
        "{body}"
    );
    let data = body
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let result: Value = serde_json::from_str(data).unwrap();
    assert_eq!(first_text(&result), "done after 120 steps");
}

#[tokio::test]
async fn cancelled_notification_stops_the_work() {
    let h = Harness::start(test_config()).await;
    let (session, _) = h.initialize().await;
    let mut call = tools_call(11, "slow", json!({"steps": 10_000}));
    call["params"]["_meta"] = json!({"progressToken": 11});
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&call)
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(resp);
    let first = events.next_json().await;
    assert_eq!(first["method"], "notifications/progress");
    let cancel = h
        .mcp_post(Some(TOKEN))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": 11, "reason": "test"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    let log = h.slow.clone();
    eventually(
        "the work stops (the tool sees the token, or is dropped)",
        || log.saw_cancel.load(Ordering::SeqCst) || log.dropped_unfinished.load(Ordering::SeqCst),
    )
    .await;
    // The stream ends; it carries no successful result. (The spec says a cancelled request
    // SHOULD get no response; the router may still pass on the tool's own "cancelled" error
    // when the tool returns in the same instant — either is acceptable here.)
    while let Some(event) = events.next().await {
        let message: Value = serde_json::from_str(&event.data).unwrap();
        if message.get("method").is_some() {
            assert_eq!(message["method"], "notifications/progress", "{message}");
        } else {
            assert_eq!(message["result"]["isError"], true, "{message}");
        }
    }
    let steps = h.slow.steps.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.slow.steps.load(Ordering::SeqCst),
        steps,
        "no work after cancellation"
    );
    assert!(!h.slow.finished.load(Ordering::SeqCst));
    assert!(steps < 10_000);
}

#[tokio::test]
async fn modern_request_stream_close_aborts_the_work() {
    super::audit_log::install();
    let h = Harness::start_own_slow(test_config(), "stream_closed_modern").await;
    let call = json!({"jsonrpc": "2.0", "id": 21, "method": "tools/call", "params": {
        "name": "slow_stream_closed_modern", "arguments": {"steps": 10_000},
        "_meta": {
            "progressToken": 21,
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "0"}
        }
    }});
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "slow_stream_closed_modern")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.headers());
    let mut events = SseReader::new(resp);
    let first = events.next_json().await;
    assert_eq!(first["method"], "notifications/progress", "{first}");
    drop(events);
    the_work_stops(&h, "the stream closed").await;
    // Audited as cancelled, counted once as dropped: as before the answer streams.
    let events = super::audit_log::tool_calls("slow_stream_closed_modern", DEADLINE).await;
    assert_eq!(events.len(), 1, "one audit event per call: {events:?}");
    assert_eq!(events[0]["outcome"], "cancelled", "{}", events[0]);
    counted_once(&h, "slow_stream_closed_modern", "dropped").await;
}

/// The `slow` tool's work is dropped or sees its cancellation after `what`, and does no
/// further step.
async fn the_work_stops(h: &Harness, what: &str) {
    let log = h.slow.clone();
    eventually(&format!("the work is dropped when {what}"), || {
        log.dropped_unfinished.load(Ordering::SeqCst) || log.saw_cancel.load(Ordering::SeqCst)
    })
    .await;
    let steps = h.slow.steps.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.slow.steps.load(Ordering::SeqCst),
        steps,
        "no work after {what}"
    );
    assert!(!h.slow.finished.load(Ordering::SeqCst));
}

/// Sends `call` with `headers` from a client of its own, keeping no idle connection, and
/// drops the request (so its socket closes) once the slow tool has started: before its answer
/// came, or (`streams`) once its answer switched to an SSE stream, unread.
async fn drop_mid_call(
    h: &Harness,
    call: &Value,
    accept: &str,
    headers: &[(&str, &str)],
    streams: bool,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut request = client
        .post(h.url("/mcp"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("accept", accept);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let sent = tokio::spawn(request.json(call).send());
    let log = h.slow.clone();
    eventually("the call starts", || log.started.load(Ordering::SeqCst)).await;
    if streams {
        let response = sent.await.unwrap().unwrap();
        let kind = response.headers().get("content-type").unwrap();
        assert_eq!(kind, "text/event-stream", "the answer streams");
        drop(response);
    } else {
        sent.abort();
        assert!(sent.await.is_err(), "the request was not dropped mid-call");
    }
    drop(client);
}

/// The `kasm_mcp_tool_calls_total` counts of `tool` by outcome, from the app's `/metrics`.
async fn tool_call_counts(h: &Harness, tool: &str) -> std::collections::BTreeMap<String, u64> {
    let text = h.metrics_text().await;
    let prefix = format!("kasm_mcp_tool_calls_total{{tool=\"{tool}\",outcome=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (outcome, count) = rest.split_once("\"} ")?;
            Some((outcome.to_owned(), count.trim().parse().ok()?))
        })
        .collect()
}

/// Waits until `tool` has a count in `/metrics`, then checks it is exactly one call, with
/// `outcome`, and stays so (settled once, not again later).
async fn counted_once(h: &Harness, tool: &str, outcome: &str) {
    let start = tokio::time::Instant::now();
    let mut counts = tool_call_counts(h, tool).await;
    while counts.is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "the call to {tool} was never counted in /metrics"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        counts = tool_call_counts(h, tool).await;
    }
    let expected = std::collections::BTreeMap::from([(outcome.to_owned(), 1)]);
    assert_eq!(counts, expected, "the counts of {tool}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        tool_call_counts(h, tool).await,
        expected,
        "{tool} was counted again"
    );
}

/// A legacy (2025-11-25) call of the slow tool `slow_<suffix>` (of [`Harness::start_own_slow`])
/// whose client goes away mid-call: the call runs to its end in the background, the audit
/// records it as allowed and `ok` under the dropped request's id, and `/metrics` counts it
/// once, as `ok`.
async fn legacy_call_dropped_mid_call_ends_audited_and_counted(
    suffix: &str,
    accept: &str,
    progress: bool,
) {
    super::audit_log::install();
    let h = Harness::start_own_slow(test_config(), suffix).await;
    let tool = format!("slow_{suffix}");
    let request_id = format!("dropped-{suffix}");
    let mut call = json!({"jsonrpc": "2.0", "id": 31, "method": "tools/call",
        "params": {"name": tool, "arguments": {"steps": 50}}});
    if progress {
        // The answer streams (SSE) from the first progress notification on.
        call["params"]["_meta"] = json!({"progressToken": 31});
    }
    let headers = [
        ("mcp-protocol-version", "2025-11-25"),
        ("x-request-id", request_id.as_str()),
    ];
    drop_mid_call(&h, &call, accept, &headers, progress).await;
    // The drop came mid-call (else the move to a task of its own was never needed).
    assert!(
        !h.slow.finished.load(Ordering::SeqCst),
        "finished before the drop"
    );
    let log = h.slow.clone();
    eventually("the call runs to its end", || {
        log.finished.load(Ordering::SeqCst) || log.dropped_unfinished.load(Ordering::SeqCst)
    })
    .await;
    assert!(
        !h.slow.dropped_unfinished.load(Ordering::SeqCst),
        "the call was dropped when its connection closed"
    );
    assert_eq!(h.slow.steps.load(Ordering::SeqCst), 50);

    let events = super::audit_log::tool_calls(&tool, DEADLINE).await;
    assert_eq!(events.len(), 1, "one audit event per call: {events:?}");
    let event = &events[0];
    assert_eq!(event["principal"], "alice", "{event}");
    assert_eq!(event["decision"], "allow", "{event}");
    assert_eq!(event["outcome"], "ok", "{event}");
    assert_eq!(event["request_id"], request_id.as_str(), "{event}");
    counted_once(&h, &tool, "ok").await;
}

/// Before 2026-07-28 a closed connection does not cancel a call: the router runs in the task
/// answering the request and, when the client goes away mid-call (here before the answer
/// streams), goes on as a task of its own, runs to its end, and is audited and counted.
#[tokio::test]
async fn a_dropped_connection_does_not_stop_a_call_halfway() {
    legacy_call_dropped_mid_call_ends_audited_and_counted(
        "dropped_legacy",
        "application/json, text/event-stream",
        false,
    )
    .await;
}

/// The same with a client that takes JSON only (the answer can never stream).
#[tokio::test]
async fn a_dropped_json_only_call_ends_audited_and_counted() {
    legacy_call_dropped_mid_call_ends_audited_and_counted(
        "dropped_json",
        "application/json",
        false,
    )
    .await;
}

/// The same once the answer streams (SSE): the call's real outcome is counted, as on the
/// JSON answer.
#[tokio::test]
async fn a_dropped_stream_call_ends_audited_and_counted() {
    legacy_call_dropped_mid_call_ends_audited_and_counted(
        "dropped_stream",
        "application/json, text/event-stream",
        true,
    )
    .await;
}

/// 2026-07-28: a closed connection is the cancellation, also before the answer streams
/// (the router still runs in the task answering the request, and is dropped with it): the
/// audit records the call as allowed and `cancelled`, and `/metrics` counts it once, as
/// `dropped` (its work was dropped unfinished).
#[tokio::test]
async fn modern_request_dropped_before_it_streams_cancels_the_work() {
    super::audit_log::install();
    let h = Harness::start_own_slow(test_config(), "dropped_modern").await;
    // No progress token: nothing makes the answer stream before the drop.
    let call = json!({"jsonrpc": "2.0", "id": 32, "method": "tools/call", "params": {
        "name": "slow_dropped_modern", "arguments": {"steps": 10_000},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "0"}
        }
    }});
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "slow_dropped_modern"),
        ("x-request-id", "dropped-modern"),
    ];
    drop_mid_call(
        &h,
        &call,
        "application/json, text/event-stream",
        &headers,
        false,
    )
    .await;
    the_work_stops(&h, "the connection closed").await;

    let events = super::audit_log::tool_calls("slow_dropped_modern", DEADLINE).await;
    assert_eq!(events.len(), 1, "one audit event per call: {events:?}");
    let event = &events[0];
    assert_eq!(event["principal"], "alice", "{event}");
    assert_eq!(event["decision"], "allow", "{event}");
    assert_eq!(event["outcome"], "cancelled", "{event}");
    assert_eq!(event["request_id"], "dropped-modern", "{event}");
    counted_once(&h, "slow_dropped_modern", "dropped").await;
}

/// 2026-07-28: `Mcp-Param-<Name>` headers reach the router, which checks them against the
/// arguments marked `x-mcp-header`.
#[tokio::test]
async fn modern_param_headers_are_forwarded_and_checked() {
    let h = Harness::start(test_config()).await;
    let call = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"text": "hi"},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "0"}
        }
    }});
    let send = |param: Option<&'static str>| {
        let mut req = h
            .mcp_post(Some(TOKEN))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo")
            .json(&call);
        if let Some(value) = param {
            req = req.header("Mcp-Param-Text", value);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = send(Some("hi")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(first_text(&body), "echo: hi");
    for param in [Some("other"), None] {
        let (status, body) = send(param).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param:?}: {body}");
        assert_eq!(body["error"]["code"], -32020, "{body}");
    }
}

#[tokio::test]
async fn forged_or_foreign_session_ids_get_404() {
    let h = Harness::start(test_config()).await;
    let (session, _) = h.initialize().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for bad in ["nonsense", "v1.1.00.AAAA", &format!("{session}x")] {
        let (status, body) = h.call(bad, &ping).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}: {body}");
    }
    // Bob cannot use Alice's session id.
    let resp = h
        .mcp_post(Some(OTHER_TOKEN))
        .header("mcp-session-id", &session)
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (status, _) = h.call(&session, &ping).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn delete_ends_a_session() {
    let h = Harness::start(test_config()).await;
    let (session, _) = h.initialize().await;
    let (keep, _) = h.initialize().await;
    let delete = |id: Option<&str>, token: &str| {
        let mut req = h.http.delete(h.url("/mcp")).bearer_auth(token);
        if let Some(id) = id {
            req = req.header("mcp-session-id", id);
        }
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(delete(None, TOKEN).await, StatusCode::BAD_REQUEST);
    assert_eq!(
        delete(Some(&session), OTHER_TOKEN).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(Some(&session), TOKEN).await, StatusCode::NO_CONTENT);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let (status, _) = h.call(&session, &ping).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a terminated session is gone"
    );
    assert_eq!(delete(Some(&session), TOKEN).await, StatusCode::NOT_FOUND);
    let (status, _) = h.call(&keep, &ping).await;
    assert_eq!(status, StatusCode::OK, "other sessions are untouched");
}

/// Restart between two calls: with a configured `session_secret` the old session id keeps
/// working on the new process; without one the new process answers 404, which tells the client
/// to initialize again — and that re-initialization works.
#[tokio::test]
async fn restart_keeps_sealed_sessions_or_answers_404() {
    for secret in [Some("a-shared-session-secret"), None] {
        let mut config = test_config();
        config.server.session_secret = secret.map(|s| s.to_owned().into());
        let h = Harness::start(config.clone()).await;
        let (session, _) = h.initialize().await;
        let (status, _) = h
            .call(&session, &tools_call(2, "echo", json!({"text": "before"})))
            .await;
        assert_eq!(status, StatusCode::OK);
        let port = h.app.local_addr().port();
        h.app.stop().await.unwrap();

        // Same port: the client keeps its URL across the restart.
        config.server.port = port;
        let h = Harness::start(config).await;
        let (status, body) = h
            .call(&session, &tools_call(3, "echo", json!({"text": "after"})))
            .await;
        match secret {
            Some(_) => {
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(first_text(&body), "echo: after");
            }
            None => {
                assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
                let (new_session, _) = h.initialize().await;
                let (status, body) = h
                    .call(
                        &new_session,
                        &tools_call(4, "echo", json!({"text": "again"})),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(first_text(&body), "echo: again");
            }
        }
        h.app.stop().await.unwrap();
    }
}

// ---------------------------------------------------------------- legacy HTTP+SSE

struct LegacyClient {
    events: SseReader,
    endpoint: String,
}

async fn open_legacy(h: &Harness, token: &str) -> LegacyClient {
    let resp = h
        .http
        .get(h.url("/sse"))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = SseReader::new(resp);
    let endpoint = events.next().await.expect("endpoint event");
    assert_eq!(endpoint.event, "endpoint");
    assert!(
        endpoint.data.starts_with("/messages?sessionId="),
        "{endpoint:?}"
    );
    LegacyClient {
        events,
        endpoint: endpoint.data,
    }
}

impl LegacyClient {
    async fn post(&self, h: &Harness, token: &str, body: &Value) -> StatusCode {
        h.http
            .post(h.url(&self.endpoint))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn legacy_sse_initialize_list_call() {
    let h = Harness::start(test_config()).await;
    let mut client = open_legacy(&h, TOKEN).await;
    let mut init = initialize_request(1);
    init["params"]["protocolVersion"] = json!("2024-11-05");
    assert_eq!(client.post(&h, TOKEN, &init).await, StatusCode::ACCEPTED);
    let response = client.events.next_json().await;
    assert_eq!(response["id"], 1);
    assert_eq!(
        response["result"]["protocolVersion"], "2024-11-05",
        "{response}"
    );
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        client.post(&h, TOKEN, &initialized).await,
        StatusCode::ACCEPTED
    );
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(client.post(&h, TOKEN, &list).await, StatusCode::ACCEPTED);
    let response = client.events.next_json().await;
    assert_eq!(response["id"], 2);
    assert_eq!(response["result"]["tools"].as_array().unwrap().len(), 2);
    let mut call = tools_call(3, "slow", json!({"steps": 2}));
    call["params"]["_meta"] = json!({"progressToken": "legacy"});
    assert_eq!(client.post(&h, TOKEN, &call).await, StatusCode::ACCEPTED);
    let p1 = client.events.next_json().await;
    let p2 = client.events.next_json().await;
    assert_eq!(p1["method"], "notifications/progress");
    assert_eq!(p2["params"]["progress"], 2.0);
    let result = client.events.next_json().await;
    assert_eq!(result["id"], 3);
    assert_eq!(first_text(&result), "done after 2 steps");
}

#[tokio::test]
async fn legacy_sse_refuses_unknown_foreign_and_bad_posts() {
    let h = Harness::start(test_config()).await;
    let client = open_legacy(&h, TOKEN).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    // Another principal posting to alice's session id.
    assert_eq!(
        client.post(&h, OTHER_TOKEN, &ping).await,
        StatusCode::NOT_FOUND
    );
    let resp = h
        .http
        .post(h.url("/messages?sessionId=0123456789abcdef0123456789abcdef"))
        .bearer_auth(TOKEN)
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = h
        .http
        .post(h.url("/messages"))
        .bearer_auth(TOKEN)
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = h
        .http
        .post(h.url(&client.endpoint))
        .bearer_auth(TOKEN)
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = h
        .http
        .post(h.url(&client.endpoint))
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn legacy_sse_caps_open_streams_per_principal() {
    use kasm_mcp::transport::legacy_sse::MAX_LEGACY_SESSIONS_PER_PRINCIPAL;
    let h = Harness::start(test_config()).await;
    let mut open = Vec::new();
    for _ in 0..MAX_LEGACY_SESSIONS_PER_PRINCIPAL {
        open.push(open_legacy(&h, TOKEN).await);
    }
    let refused = h
        .http
        .get(h.url("/sse"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("alice")
            && message.contains(&MAX_LEGACY_SESSIONS_PER_PRINCIPAL.to_string())
            && message.contains("/mcp"),
        "{message}"
    );
    // Another principal is not locked out.
    let bob = open_legacy(&h, OTHER_TOKEN).await;
    drop(bob);
    // Closing one of alice's streams frees a slot.
    drop(open.pop());
    let start = tokio::time::Instant::now();
    loop {
        let resp = h
            .http
            .get(h.url("/sse"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::OK {
            break;
        }
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            start.elapsed() < DEADLINE,
            "closed stream did not free a slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `[legacy_sse] max_streams` and `max_streams_per_principal` are the caps the server
/// enforces (the load generator raises them to hold 10,000 idle streams).
#[tokio::test]
async fn legacy_sse_caps_come_from_the_configuration() {
    let mut config = test_config();
    config.legacy_sse.max_streams = 3;
    config.legacy_sse.max_streams_per_principal = 2;
    let h = Harness::start(config).await;
    let _a1 = open_legacy(&h, TOKEN).await;
    let _a2 = open_legacy(&h, TOKEN).await;
    let third = h
        .http
        .get(h.url("/sse"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = third.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("the limit is 2") && message.contains("max_streams_per_principal"),
        "{message}"
    );
    // bob may open one: three in all, the server-wide cap.
    let _b1 = open_legacy(&h, OTHER_TOKEN).await;
    let fourth = h
        .http
        .get(h.url("/sse"))
        .bearer_auth(OTHER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(fourth.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = fourth.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("legacy_sse.max_streams"),
        "{body}"
    );
}

#[tokio::test]
async fn legacy_sse_session_ends_when_the_stream_closes() {
    let h = Harness::start(test_config()).await;
    let client = open_legacy(&h, TOKEN).await;
    let endpoint = client.endpoint.clone();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(client.post(&h, TOKEN, &ping).await, StatusCode::ACCEPTED);
    drop(client);
    let start = tokio::time::Instant::now();
    loop {
        let status = h
            .http
            .post(h.url(&endpoint))
            .bearer_auth(TOKEN)
            .json(&ping)
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(start.elapsed() < DEADLINE, "session was not cleaned up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn legacy_sse_sends_keep_alive_comments() {
    let mut config = test_config();
    config.server.sse_keep_alive_s = 1;
    let h = Harness::start(config).await;
    let resp = h
        .http
        .get(h.url("/sse"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains(":keep-alive") || seen.contains(": keep-alive") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "no keep-alive comment in {seen:?}");
}

#[tokio::test]
async fn shutdown_ends_open_sse_streams() {
    let h = Harness::start(test_config()).await;
    let mut client = open_legacy(&h, TOKEN).await;
    let stop = tokio::time::timeout(DEADLINE, h.app.stop()).await;
    assert!(
        stop.is_ok(),
        "graceful shutdown did not finish with an SSE stream open"
    );
    assert!(client.events.next().await.is_none(), "the stream ended");
}

// ---------------------------------------------------------------- cancellation against Kasm

/// A pass-through HTTP proxy in front of the simulator that counts `get_kasm_status` calls,
/// so the test can see whether the server keeps polling Kasm.
async fn counting_proxy(upstream: String, polls: Arc<AtomicU64>) -> String {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};

    #[derive(Clone)]
    struct Proxy {
        upstream: String,
        polls: Arc<AtomicU64>,
        http: reqwest::Client,
    }

    async fn forward(State(p): State<Proxy>, request: Request) -> Response {
        let path = request.uri().path().to_owned();
        if path.ends_with("/get_kasm_status") {
            p.polls.fetch_add(1, Ordering::SeqCst);
        }
        let method = request.method().clone();
        let headers = request.headers().clone();
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap();
        let mut upstream = p.http.request(method, format!("{}{path}", p.upstream));
        if let Some(ct) = headers.get("content-type") {
            upstream = upstream.header("content-type", ct.clone());
        }
        let resp = upstream.body(body).send().await.unwrap();
        let status = resp.status();
        let ct = resp.headers().get("content-type").cloned();
        let bytes = resp.bytes().await.unwrap();
        let mut out = (status, Body::from(bytes)).into_response();
        if let Some(ct) = ct {
            out.headers_mut().insert("content-type", ct);
        }
        out
    }

    let proxy = Proxy {
        upstream,
        polls,
        http: reqwest::Client::new(),
    };
    let router = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// `create_kasm_session` against a slow-starting simulated Kasm streams progress while it
/// polls; `notifications/cancelled` ends the call and the polling of Kasm stops.
#[tokio::test]
async fn cancelling_create_kasm_session_stops_polling_kasm() {
    use kasm_mcp::simulator::{Simulator, SimulatorConfig};

    let sim = Simulator::start(SimulatorConfig {
        start_delay: Duration::from_secs(120),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let polls = Arc::new(AtomicU64::new(0));
    let kasm_url = counting_proxy(sim.base_url(), polls.clone()).await;
    let mut config = test_config();
    config.kasm.api_url = Some(kasm_url);
    config.kasm.api_key = Some(sim.api_key().to_owned().into());
    config.kasm.api_secret = Some(sim.api_secret().to_owned().into());
    config.kasm.user_id = Some(sim.default_user_id());
    let kasm = kasm_mcp::kasm::KasmClient::from_config(&config.kasm).unwrap();
    let assembled = kasm_mcp::launch::assemble(
        config,
        Arc::new(kasm),
        sim.base_url(),
        kasm_mcp::launch::RelayPlan::ConfiguredOrSelf,
    )
    .unwrap();
    let h = Harness {
        app: assembled.app.spawn(),
        slow: Arc::new(SlowLog::default()),
        http: reqwest::Client::new(),
    };
    let (session, _) = h.initialize().await;

    let mut call = tools_call(31, "create_kasm_session", json!({"image_name": "Terminal"}));
    call["params"]["_meta"] = json!({"progressToken": "create-31"});
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = SseReader::new(resp);
    // Wait until the tool has polled Kasm at least once (a progress event follows each poll).
    loop {
        let message = events.next_json().await;
        assert_eq!(message["method"], "notifications/progress", "{message}");
        if polls.load(Ordering::SeqCst) >= 1 {
            break;
        }
    }
    let cancel = h
        .mcp_post(Some(TOKEN))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": 31, "reason": "user gave up"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    while let Some(event) = events.next().await {
        let message: Value = serde_json::from_str(&event.data).unwrap();
        assert!(
            message.get("method").is_some() || message["result"]["isError"] == true,
            "a cancelled call must not report success: {message}"
        );
    }
    let after_cancel = polls.load(Ordering::SeqCst);
    // The poll interval starts at 250 ms and doubles: 1.5 s covers the next polls it would make.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        polls.load(Ordering::SeqCst),
        after_cancel,
        "Kasm was polled after the call was cancelled"
    );
    h.app.stop().await.unwrap();
    sim.shutdown().await;
}

// ---------------------------------------------------------------- the `serve` command

fn kasm_mcp_command(dir: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kasm-mcp"));
    command
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn serve_refuses_to_start_without_kasm_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = kasm_mcp_command(dir.path())
        .arg("serve")
        .env("KASM_API_KEY", "k")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("KASM_API_URL") && stderr.contains("KASM_API_SECRET"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("KASM_API_KEY,"),
        "the key is set: {stderr}"
    );

    let out = kasm_mcp_command(dir.path())
        .arg("serve")
        .env("KASM_API_URL", "http://127.0.0.1:9")
        .env("KASM_API_KEY", "k")
        .env("KASM_API_SECRET", "s")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no bearer tokens"), "{stderr}");
}

/// `kasm-mcp serve` against the simulator: serves tool calls with a configured token and
/// exits cleanly on SIGTERM.
#[tokio::test]
async fn serve_runs_against_kasm_and_stops_on_sigterm() {
    use kasm_mcp::simulator::{Simulator, SimulatorConfig};
    use tokio::io::{AsyncBufReadExt, BufReader};

    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nport = 0\n\n[kasm]\napi_url = \"{}\"\nuser_id = \"{}\"\n\n\
         [[auth.tokens]]\nname = \"ci\"\nsha256 = \"{}\"\nrole = \"viewer\"\n",
        sim.base_url(),
        sim.default_user_id(),
        sha256_hex(TOKEN)
    );
    std::fs::write(dir.path().join("serve.toml"), config).unwrap();
    let mut child = kasm_mcp_command(dir.path())
        .args(["serve", "--config", "serve.toml"])
        .env("KASM_API_KEY", sim.api_key())
        .env("KASM_API_SECRET", sim.api_secret())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mcp_url = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(start) = line.find("http://127.0.0.1:") {
                let url: String = line[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                if url.ends_with("/mcp") {
                    return url;
                }
            }
        }
        panic!("serve exited before logging its URL");
    })
    .await
    .expect("serve logs its URL");
    let http = reqwest::Client::new();
    let resp = http
        .post(&mcp_url)
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .json(&tools_call(1, "get_available_workspaces", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["result"]["isError"], false, "{body}");
    assert!(
        body["result"]["structuredContent"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );

    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("serve stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
    sim.shutdown().await;
}

/// `tools/list` is served from a per-role, per-era cache of serialised text: every transport
/// must still send exactly the bytes the uncached Value would serialise to (the expectation
/// is built here from the tools' own specs, not from the server's cache).
#[tokio::test]
async fn tools_list_bytes_are_identical_on_every_transport() {
    let h = Harness::start(test_config()).await;
    let result = json!({"tools": [Echo::new().spec().to_json(), slow_spec().to_json()]});
    let envelope =
        |id: u64, result: &Value| json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    let list = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
    let (session, _) = h.initialize().await;
    // /mcp, JSON answer; twice (the second is served from the cache filled by the first).
    for id in [2, 3] {
        let resp = h
            .mcp_post(Some(TOKEN))
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&list(id))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), envelope(id, &result));
    }
    // /mcp, a client that takes only SSE: one event with the same text.
    let resp = h
        .http
        .post(h.url("/mcp"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&list(4))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let event = SseReader::new(resp).next().await.expect("one event");
    assert_eq!(event.data, envelope(4, &result));
    // /mcp, 2026-07-28: the era's decoration is part of the cached text.
    let modern = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "0"}
        }
    }});
    let decorated = kasm_mcp::mcp::modern::decorate_result("tools/list", result.clone());
    assert_eq!(decorated["resultType"], "complete", "{decorated}");
    for _ in 0..2 {
        let resp = h
            .mcp_post(Some(TOKEN))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .json(&modern)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), envelope(5, &decorated));
    }
    // A 2025-03-26 batch carries the answer as one of its items.
    let resp = h
        .mcp_post(Some(TOKEN))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-03-26")
        .json(&json!([list(6), {"jsonrpc": "2.0", "id": 7, "method": "ping"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.text().await.unwrap(),
        format!("[{},{}]", envelope(6, &result), envelope(7, &json!({})))
    );
    // Legacy /sse: the answer on the stream.
    let mut client = open_legacy(&h, TOKEN).await;
    assert_eq!(client.post(&h, TOKEN, &list(8)).await, StatusCode::ACCEPTED);
    let event = client.events.next().await.expect("the answer");
    assert_eq!(event.data, envelope(8, &result));
    // The operator sees the same tools here (no admin-only tool): same text, own cache slot.
    let resp = h
        .mcp_post(Some(OTHER_TOKEN))
        .header("mcp-protocol-version", "2025-11-25")
        .json(&list(9))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), envelope(9, &result));
}
