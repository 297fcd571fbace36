//! Router-level tests: whole JSON-RPC exchanges through `McpServer::handle`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};

use crate::mcp::modern::{META_CLIENT_CAPABILITIES, META_LOG_LEVEL, META_PROTOCOL_VERSION};
use crate::mcp::registry::tests::spec;
use crate::mcp::{
    CallContext, CallResult, Content, Handled, LogLevel, McpServer, PromptError, PromptInfo,
    PromptMessage, PromptProvider, PromptResult, PromptRole, RawToolResult, RequestMeta,
    ResourceContents, ResourceError, ResourceInfo, ResourceProvider, Scalar, Tool, ToolOutput,
    ToolSpec,
};
use crate::policy::{Principal, Role};

// ---------- fixtures ----------

struct Echo(ToolSpec);

#[async_trait]
impl Tool for Echo {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, _ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        ToolOutput::structured(Value::Object(args))
    }
}

fn echo(name: &str, role: Role) -> Arc<dyn Tool> {
    Arc::new(Echo(spec(name, role)))
}

/// Reports progress, then waits until cancelled; records that its future was dropped.
struct Slow {
    spec: ToolSpec,
    started: Arc<Notify>,
    dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Tool for Slow {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    async fn call(&self, ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
        let _guard = SetOnDrop(self.dropped.clone());
        ctx.notifier.progress(1.0, Some(10.0), Some("started"));
        self.started.notify_one();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        ToolOutput::text("finished (should never happen in the test)")
    }
}

struct Logs(ToolSpec);

#[async_trait]
impl Tool for Logs {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
        ctx.notifier.log(LogLevel::Debug, "t", json!("debug line"));
        ctx.notifier.log(LogLevel::Info, "t", json!("info line"));
        ctx.notifier.log(LogLevel::Error, "t", json!("error line"));
        ToolOutput::text("logged")
    }
}

struct Fails(ToolSpec);

#[async_trait]
impl Tool for Fails {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, _ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
        ToolOutput::error("it broke")
    }
}

struct Panics(ToolSpec);

#[async_trait]
impl Tool for Panics {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, _ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
        panic!("boom")
    }
}

struct Samples(ToolSpec);

#[async_trait]
impl Tool for Samples {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
        match ctx
            .notifier
            .request_client(
                "sampling/createMessage",
                json!({"messages":[],"maxTokens":5}),
            )
            .await
        {
            Ok(result) => ToolOutput::text(format!("client said {}", result["content"]["text"])),
            Err(e) => ToolOutput::error(e.to_string()),
        }
    }
    fn required_client_capabilities(&self) -> &'static [&'static str] {
        &["sampling"]
    }
}

struct Docs;

#[async_trait]
impl ResourceProvider for Docs {
    async fn list(&self, _p: &Principal) -> Vec<ResourceInfo> {
        vec![ResourceInfo {
            uri: "test://doc".into(),
            name: "doc".into(),
            title: None,
            description: Some("a doc".into()),
            mime_type: Some("text/plain".into()),
        }]
    }
    async fn read(
        &self,
        _ctx: &crate::mcp::CallContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, ResourceError> {
        if uri == "test://doc" {
            Ok(vec![ResourceContents::Text {
                uri: uri.into(),
                mime_type: Some("text/plain".into()),
                text: "hello".into(),
            }])
        } else {
            Err(ResourceError::NotFound(uri.into()))
        }
    }
    fn supports_subscribe(&self) -> bool {
        true
    }
}

struct Greeting;

#[async_trait]
impl PromptProvider for Greeting {
    async fn list(&self, _p: &Principal) -> Vec<PromptInfo> {
        vec![PromptInfo {
            name: "greet".into(),
            title: None,
            description: Some("says hi".into()),
            arguments: vec![],
        }]
    }
    async fn get(
        &self,
        _p: &Principal,
        name: &str,
        _args: Map<String, Value>,
    ) -> Result<PromptResult, PromptError> {
        if name != "greet" {
            return Err(PromptError::NotFound(name.into()));
        }
        Ok(PromptResult {
            description: None,
            messages: vec![PromptMessage {
                role: PromptRole::User,
                content: Content::Text { text: "hi".into() },
            }],
        })
    }
}

struct Harness {
    server: Arc<McpServer>,
    started: Arc<Notify>,
    dropped: Arc<AtomicBool>,
}

fn harness(page_size: usize) -> Harness {
    let started = Arc::new(Notify::new());
    let dropped = Arc::new(AtomicBool::new(false));
    let tools: Vec<Arc<dyn Tool>> = vec![
        echo("echo", Role::Viewer),
        echo("admin_echo", Role::Admin),
        echo("operate", Role::Operator),
        Arc::new(Slow {
            spec: spec("slow", Role::Viewer),
            started: started.clone(),
            dropped: dropped.clone(),
        }),
        Arc::new(Logs(spec("logs", Role::Viewer))),
        Arc::new(Fails(spec("fails", Role::Viewer))),
        Arc::new(Panics(spec("panics", Role::Viewer))),
        Arc::new(Samples(spec("samples", Role::Viewer))),
    ];
    let server = McpServer::builder("test-server", "9.9.9")
        .title("Test Server")
        .instructions("be nice")
        .tools(tools)
        .resources(Arc::new(Docs))
        .prompts(Arc::new(Greeting))
        .page_size(page_size)
        .build();
    Harness {
        server: Arc::new(server),
        started,
        dropped,
    }
}

fn principal(role: Role) -> Principal {
    Principal {
        name: format!("{role}-token"),
        role,
        kasm_user_id: None,
        oauth: None,
    }
}

fn meta_for(role: Role) -> (RequestMeta, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        RequestMeta {
            principal: principal(role),
            notifications: tx,
            session_key: None,
            protocol_version_header: None,
            mcp_method_header: None,
            mcp_name_header: None,
            origin: Default::default(),
        },
        rx,
    )
}

fn admin() -> RequestMeta {
    meta_for(Role::Admin).0
}

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":method,"params":params})
}

fn response(handled: Handled) -> Value {
    match handled {
        Handled::Response(v) => v,
        Handled::RawResponse(raw) => raw.to_value(),
        other => panic!("expected a response, got {other:?}"),
    }
}

async fn call(server: &McpServer, meta: RequestMeta, method: &str, params: Value) -> Value {
    response(server.handle(request(1, method, params), meta).await)
}

fn error_code(v: &Value) -> Option<i64> {
    v.get("error").and_then(|e| e["code"].as_i64())
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(v) = rx.try_recv() {
        out.push(v);
    }
    out
}

// ---------- tests ----------

#[tokio::test]
async fn protocol_error_codes_table() {
    let h = harness(100);
    let cases: Vec<(&str, Value, i64)> = vec![
        ("unknown method", request(1, "no/such", json!({})), -32601),
        (
            "wrong jsonrpc",
            json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
            -32600,
        ),
        (
            "null id",
            json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
            -32600,
        ),
        (
            "array params for tools/list",
            request(1, "tools/list", json!([1])),
            -32602,
        ),
        (
            "initialize without version",
            request(1, "initialize", json!({})),
            -32602,
        ),
        (
            "unknown tool",
            request(1, "tools/call", json!({"name":"nope"})),
            -32602,
        ),
        (
            "tool name missing",
            request(1, "tools/call", json!({})),
            -32602,
        ),
        (
            "arguments not an object",
            request(1, "tools/call", json!({"name":"echo","arguments":[1,2]})),
            -32602,
        ),
        (
            "bad cursor",
            request(1, "tools/list", json!({"cursor":"garbage!"})),
            -32602,
        ),
        (
            "bad log level",
            request(1, "logging/setLevel", json!({"level":"loud"})),
            -32602,
        ),
        (
            "resource not found (legacy)",
            request(1, "resources/read", json!({"uri":"test://x"})),
            -32002,
        ),
        (
            "unknown prompt",
            request(1, "prompts/get", json!({"name":"x"})),
            -32602,
        ),
        (
            "completions not offered",
            request(1, "completion/complete", json!({})),
            -32601,
        ),
    ];
    for (label, message, expected) in cases {
        let body = match h.server.handle(message, admin()).await {
            Handled::Response(v) => v,
            Handled::RawResponse(raw) => raw.to_value(),
            Handled::HttpError { status, body } => {
                assert_eq!(status, 400, "{label}");
                body
            }
            Handled::Accepted => panic!("{label}: accepted"),
        };
        assert_eq!(error_code(&body), Some(expected), "{label}: {body}");
    }
}

#[tokio::test]
async fn initialize_negotiates_and_advertises() {
    let h = harness(100);
    for (requested, answered) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2030-01-01", "2025-11-25"),
    ] {
        let r = call(
            &h.server,
            admin(),
            "initialize",
            json!({"protocolVersion":requested,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
        )
        .await;
        let result = &r["result"];
        assert_eq!(result["protocolVersion"], answered);
        assert_eq!(result["serverInfo"]["name"], "test-server");
        assert_eq!(result["serverInfo"]["title"], "Test Server");
        assert_eq!(result["instructions"], "be nice");
        assert_eq!(result["capabilities"]["resources"]["subscribe"], true);
        assert!(result["capabilities"].get("completions").is_none());
    }
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(
        h.server.handle(initialized, admin()).await,
        Handled::Accepted
    );
    let pong = call(&h.server, admin(), "ping", json!(null)).await;
    assert_eq!(pong, json!({"jsonrpc":"2.0","id":1,"result":{}}));
}

#[tokio::test]
async fn tools_list_paginates_deterministically_and_filters_by_role() {
    let h = harness(3);
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = call(&h.server, meta_for(Role::Viewer).0, "tools/list", params).await;
        let result = &r["result"];
        for t in result["tools"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_string());
            assert!(t["inputSchema"].is_object());
        }
        match result.get("nextCursor") {
            Some(c) => cursor = Some(c.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(
        names,
        vec!["echo", "fails", "logs", "panics", "samples", "slow"],
        "viewer sees only viewer tools, sorted"
    );
    let r = call(&h.server, admin(), "tools/list", json!({})).await;
    assert_eq!(r["result"]["tools"][0]["name"], "admin_echo");
}

#[tokio::test]
async fn hidden_tools_are_refused_on_call() {
    let h = harness(100);
    let r = call(
        &h.server,
        meta_for(Role::Viewer).0,
        "tools/call",
        json!({"name":"admin_echo","arguments":{}}),
    )
    .await;
    assert_eq!(error_code(&r), Some(-32602));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not available")
    );
    let r = call(
        &h.server,
        meta_for(Role::Operator).0,
        "tools/call",
        json!({"name":"operate","arguments":{"x":1}}),
    )
    .await;
    assert_eq!(r["result"]["structuredContent"], json!({"x":1}));
}

#[tokio::test]
async fn tool_results_errors_and_panics() {
    let h = harness(100);
    let r = call(&h.server, admin(), "tools/call", json!({"name":"echo"})).await;
    assert_eq!(r["result"]["isError"], false, "missing arguments mean {{}}");
    assert_eq!(r["result"]["structuredContent"], json!({}));
    let r = call(&h.server, admin(), "tools/call", json!({"name":"fails"})).await;
    assert_eq!(r["result"]["isError"], true);
    assert_eq!(r["result"]["content"][0]["text"], "it broke");
    let r = call(&h.server, admin(), "tools/call", json!({"name":"panics"})).await;
    assert_eq!(
        r["result"]["isError"], true,
        "a panicking tool is an isError result"
    );
    assert_eq!(h.server.in_flight_calls(), 0);
}

#[tokio::test]
async fn progress_token_produces_progress_notifications() {
    let h = harness(100);
    let (meta, mut rx) = meta_for(Role::Admin);
    let server = h.server.clone();
    let running = tokio::spawn(async move {
        server
            .handle(
                request(
                    5,
                    "tools/call",
                    json!({"name":"slow","_meta":{"progressToken":"tok-1"}}),
                ),
                meta,
            )
            .await
    });
    h.started.notified().await;
    let progress = rx.recv().await.unwrap();
    assert_eq!(progress["method"], "notifications/progress");
    assert_eq!(progress["params"]["progressToken"], "tok-1");
    assert_eq!(progress["params"]["progress"], 1.0);
    running.abort();
}

#[tokio::test]
async fn cancellation_stops_the_running_tool_and_sends_no_response() {
    let h = harness(100);
    let (meta, _rx) = meta_for(Role::Admin);
    let server = h.server.clone();
    let call_meta = meta.clone();
    let running = tokio::spawn(async move {
        server
            .handle(request(42, "tools/call", json!({"name":"slow"})), call_meta)
            .await
    });
    h.started.notified().await;
    assert_eq!(h.server.in_flight_calls(), 1);
    assert!(!h.dropped.load(Ordering::SeqCst));

    // Unknown ids are ignored; the right id from another principal does not cancel.
    let cancel = |id: Value| json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":id,"reason":"t"}});
    assert_eq!(
        h.server.handle(cancel(json!(7)), meta.clone()).await,
        Handled::Accepted
    );
    let other = meta_for(Role::Viewer).0;
    assert_eq!(
        h.server.handle(cancel(json!(42)), other).await,
        Handled::Accepted
    );
    assert_eq!(h.server.in_flight_calls(), 1);

    assert_eq!(
        h.server.handle(cancel(json!(42)), meta.clone()).await,
        Handled::Accepted
    );
    let outcome = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the cancelled call must finish promptly")
        .unwrap();
    assert_eq!(
        outcome,
        Handled::Accepted,
        "a cancelled request gets no response"
    );
    assert!(
        h.dropped.load(Ordering::SeqCst),
        "the tool future was dropped"
    );
    assert_eq!(h.server.in_flight_calls(), 0);
    // A late cancellation for the finished id is ignored.
    assert_eq!(
        h.server.handle(cancel(json!(42)), meta).await,
        Handled::Accepted
    );
}

#[tokio::test]
async fn log_level_filters_log_notifications_per_session() {
    let h = harness(100);
    let (mut meta, mut rx) = meta_for(Role::Admin);
    meta.session_key = Some("s1".into());
    // No level set: no log messages.
    call(
        &h.server,
        meta.clone(),
        "tools/call",
        json!({"name":"logs"}),
    )
    .await;
    assert!(drain(&mut rx).is_empty());
    let r = call(
        &h.server,
        meta.clone(),
        "logging/setLevel",
        json!({"level":"info"}),
    )
    .await;
    assert_eq!(r["result"], json!({}));
    call(
        &h.server,
        meta.clone(),
        "tools/call",
        json!({"name":"logs"}),
    )
    .await;
    let levels: Vec<Value> = drain(&mut rx)
        .into_iter()
        .inspect(|m| assert_eq!(m["method"], "notifications/message"))
        .map(|m| m["params"]["level"].clone())
        .collect();
    assert_eq!(levels, vec![json!("info"), json!("error")]);
    // Another session has its own level.
    let (mut other, mut other_rx) = meta_for(Role::Admin);
    other.session_key = Some("s2".into());
    call(&h.server, other, "tools/call", json!({"name":"logs"})).await;
    assert!(drain(&mut other_rx).is_empty());
    h.server.end_session("s1");
    call(&h.server, meta, "tools/call", json!({"name":"logs"})).await;
    assert!(drain(&mut rx).is_empty(), "ended session forgets its level");
}

#[tokio::test]
async fn server_to_client_request_is_answered_through_handle() {
    let h = harness(100);
    let (mut meta, mut rx) = meta_for(Role::Admin);
    meta.session_key = Some("s".into());
    call(
        &h.server,
        meta.clone(),
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{"sampling":{}}}),
    )
    .await;
    let server = h.server.clone();
    let call_meta = meta.clone();
    let running = tokio::spawn(async move {
        server
            .handle(
                request(9, "tools/call", json!({"name":"samples"})),
                call_meta,
            )
            .await
    });
    let asked = rx.recv().await.unwrap();
    assert_eq!(asked["method"], "sampling/createMessage");
    let answer = json!({"jsonrpc":"2.0","id":asked["id"],"result":{"role":"assistant","content":{"type":"text","text":"42"},"model":"m"}});
    assert_eq!(h.server.handle(answer, meta).await, Handled::Accepted);
    let r = response(running.await.unwrap());
    assert_eq!(r["result"]["content"][0]["text"], "client said \"42\"");

    // A client that declared no sampling capability gets a clean tool error.
    let (mut meta, _rx) = meta_for(Role::Admin);
    meta.session_key = Some("no-sampling".into());
    call(
        &h.server,
        meta.clone(),
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{}}),
    )
    .await;
    let r = call(&h.server, meta, "tools/call", json!({"name":"samples"})).await;
    assert_eq!(r["result"]["isError"], true);
}

#[tokio::test]
async fn batches_only_in_2025_03_26() {
    let h = harness(100);
    let batch = json!([
        request(1, "ping", json!({})),
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        request(2, "no/such", json!({})),
        request(3, "initialize", json!({"protocolVersion":"2025-03-26"})),
    ]);
    let mut meta = admin();
    meta.protocol_version_header = Some("2025-03-26".into());
    let r = response(h.server.handle(batch.clone(), meta.clone()).await);
    let replies = r.as_array().unwrap();
    assert_eq!(replies.len(), 3, "the notification gets no reply");
    assert_eq!(replies[0]["result"], json!({}));
    assert_eq!(error_code(&replies[1]), Some(-32601));
    assert_eq!(
        error_code(&replies[2]),
        Some(-32600),
        "initialize may not be batched"
    );

    let only_notifications = json!([{"jsonrpc":"2.0","method":"notifications/initialized"}]);
    assert_eq!(
        h.server.handle(only_notifications, meta.clone()).await,
        Handled::Accepted
    );
    let Handled::HttpError { status, body } = h.server.handle(json!([]), meta).await else {
        panic!("empty batch");
    };
    assert_eq!((status, error_code(&body)), (400, Some(-32600)));

    for version in ["2025-06-18", "2025-11-25"] {
        let mut meta = admin();
        meta.protocol_version_header = Some(version.into());
        let Handled::HttpError { status, body } = h.server.handle(batch.clone(), meta).await else {
            panic!("batch must be refused in {version}");
        };
        assert_eq!((status, error_code(&body)), (400, Some(-32600)));
    }
}

#[tokio::test]
async fn resources_prompts_and_subscriptions() {
    let h = harness(100);
    let r = call(&h.server, admin(), "resources/list", json!({})).await;
    assert_eq!(r["result"]["resources"][0]["uri"], "test://doc");
    let r = call(
        &h.server,
        admin(),
        "resources/read",
        json!({"uri":"test://doc"}),
    )
    .await;
    assert_eq!(r["result"]["contents"][0]["text"], "hello");
    let r = call(&h.server, admin(), "resources/templates/list", json!({})).await;
    assert_eq!(r["result"]["resourceTemplates"], json!([]));
    let r = call(
        &h.server,
        admin(),
        "resources/subscribe",
        json!({"uri":"test://doc"}),
    )
    .await;
    assert_eq!(r["result"], json!({}));
    let r = call(
        &h.server,
        admin(),
        "resources/unsubscribe",
        json!({"uri":"test://doc"}),
    )
    .await;
    assert_eq!(r["result"], json!({}));
    let r = call(&h.server, admin(), "prompts/list", json!({})).await;
    assert_eq!(r["result"]["prompts"][0]["name"], "greet");
    let r = call(&h.server, admin(), "prompts/get", json!({"name":"greet"})).await;
    assert_eq!(r["result"]["messages"][0]["content"]["text"], "hi");
}

#[tokio::test]
async fn a_server_without_providers_offers_only_tools() {
    let server = McpServer::new(vec![echo("echo", Role::Viewer)]);
    let r = call(
        &server,
        admin(),
        "initialize",
        json!({"protocolVersion":"2025-11-25"}),
    )
    .await;
    let caps = &r["result"]["capabilities"];
    assert!(caps.get("resources").is_none() && caps.get("prompts").is_none());
    assert_eq!(r["result"]["serverInfo"]["name"], "kasm-mcp");
    for method in [
        "resources/list",
        "resources/read",
        "resources/subscribe",
        "prompts/list",
        "prompts/get",
    ] {
        let r = call(&server, admin(), method, json!({"uri":"x","name":"x"})).await;
        assert_eq!(error_code(&r), Some(-32601), "{method}");
    }
}

// ---------- results written as bytes ----------

/// Echoes its string (or null) arguments; its router calls answer with the result already
/// serialised, its `call` with the `ToolOutput` (both `Echo`'s). Counts its `call_raw`s, so a
/// test sees which path the router took and not only that the answers agree.
struct FlatEcho(ToolSpec, std::sync::atomic::AtomicUsize);

#[async_trait]
impl Tool for FlatEcho {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, _ctx: &CallContext, args: Map<String, Value>) -> ToolOutput {
        ToolOutput::structured(Value::Object(args))
    }
    async fn call_raw(&self, _ctx: &CallContext, args: Map<String, Value>) -> CallResult {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let fields: Vec<(&str, Option<Scalar<'_>>)> = args
            .iter()
            .map(|(key, value)| (key.as_str(), Some(Scalar::text(value.as_str()))))
            .collect();
        CallResult::Raw(RawToolResult::flat_object(&fields))
    }
}

/// A tool answering with bytes answers, in every era and shape of request, what the same
/// result as a Value answers: the bytes as they are where nothing is added (a legacy-era
/// request), the decorated Value in 2026-07-28, a parsed element in a batch.
#[tokio::test]
async fn a_raw_tool_result_answers_what_the_value_answers() {
    let flat_tool = Arc::new(FlatEcho(
        spec("flat", Role::Viewer),
        std::sync::atomic::AtomicUsize::new(0),
    ));
    let raw_calls = || flat_tool.1.load(std::sync::atomic::Ordering::SeqCst);
    let server = McpServer::builder("test-server", "9.9.9")
        .tools(vec![
            flat_tool.clone() as Arc<dyn Tool>,
            echo("echo", Role::Viewer),
        ])
        .build();
    let args = json!({"a": "x\n\"y\"", "b": null, "c": "é ✓ \u{1}"});
    let id = crate::mcp::jsonrpc::RequestId::Number(1);

    // Legacy era: the tool's bytes, in the envelope, as the Value path wrote them.
    let handled = server
        .handle(
            request(1, "tools/call", json!({"name": "flat", "arguments": args})),
            admin(),
        )
        .await;
    let Handled::RawResponse(raw) = handled else {
        panic!("expected the result as bytes, got {handled:?}")
    };
    let value_path = ToolOutput::structured(args.clone()).into_json();
    let expected = crate::mcp::jsonrpc::success(&id, value_path);
    assert_eq!(raw.as_str(), crate::transport::rpc::json_text(&expected));
    assert_eq!(raw_calls(), 1, "a legacy-era call asks for the bytes");

    // 2026-07-28: decorated, exactly as the Value tool's answer.
    let modern = |tool: &str| {
        request(
            1,
            "tools/call",
            modern_params(json!({"name": tool, "arguments": args})),
        )
    };
    let flat = server
        .handle(modern("flat"), modern_meta("tools/call", Some("flat")))
        .await;
    let echoed = server
        .handle(modern("echo"), modern_meta("tools/call", Some("echo")))
        .await;
    assert_eq!(response(flat.clone()), response(echoed));
    assert_eq!(response(flat)["result"]["resultType"], "complete");
    // The bytes would skip the MRTR round's checks: a 2026-07-28 call gets the ToolOutput.
    assert_eq!(
        raw_calls(),
        1,
        "a 2026-07-28 call must not ask for the bytes"
    );

    // A 2025-03-26 batch: each answer parsed back into the array.
    let batch = |tool: &str| {
        json!([
            request(1, "tools/call", json!({"name": tool, "arguments": args})),
            request(2, "ping", json!({})),
        ])
    };
    let mut meta = admin();
    meta.protocol_version_header = Some("2025-03-26".into());
    let flat = response(server.handle(batch("flat"), meta.clone()).await);
    let echoed = response(server.handle(batch("echo"), meta).await);
    assert_eq!(flat, echoed);
    assert_eq!(flat[0], expected);
}

// ---------- 2026-07-28 ----------

fn modern_meta(method: &str, name: Option<&str>) -> RequestMeta {
    let mut meta = admin();
    meta.protocol_version_header = Some("2026-07-28".into());
    meta.mcp_method_header = Some(method.into());
    meta.mcp_name_header = name.map(String::from);
    meta
}

fn modern_params(extra: Value) -> Value {
    let mut p = json!({"_meta":{
        META_PROTOCOL_VERSION: "2026-07-28",
        META_CLIENT_CAPABILITIES: {},
        "io.modelcontextprotocol/clientInfo": {"name":"t","version":"1"}
    }});
    for (k, v) in extra.as_object().unwrap() {
        p.as_object_mut().unwrap().insert(k.clone(), v.clone());
    }
    p
}

#[tokio::test]
async fn modern_discover_and_results() {
    let h = harness(100);
    let r = response(
        h.server
            .handle(
                request(1, "server/discover", modern_params(json!({}))),
                modern_meta("server/discover", None),
            )
            .await,
    );
    let result = &r["result"];
    assert_eq!(result["supportedVersions"][0], "2026-07-28");
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["cacheScope"], "private");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "test-server"
    );
    assert!(result["capabilities"].get("logging").is_none());

    let r = response(
        h.server
            .handle(
                request(2, "tools/list", modern_params(json!({}))),
                modern_meta("tools/list", None),
            )
            .await,
    );
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(r["result"]["ttlMs"].is_u64());

    let r = response(
        h.server
            .handle(
                request(
                    3,
                    "tools/call",
                    modern_params(json!({"name":"echo","arguments":{"a":1}})),
                ),
                modern_meta("tools/call", Some("echo")),
            )
            .await,
    );
    assert_eq!(r["result"]["resultType"], "complete");
    assert_eq!(r["result"]["structuredContent"], json!({"a":1}));
}

#[tokio::test]
async fn modern_refusals_table() {
    let h = harness(100);
    let cases: Vec<(&str, Value, RequestMeta, u16, i64)> = vec![
        (
            "initialize is gone",
            request(
                1,
                "initialize",
                modern_params(json!({"protocolVersion":"2026-07-28"})),
            ),
            modern_meta("initialize", None),
            404,
            -32601,
        ),
        (
            "ping is gone",
            request(1, "ping", modern_params(json!({}))),
            modern_meta("ping", None),
            404,
            -32601,
        ),
        (
            "logging/setLevel is gone",
            request(
                1,
                "logging/setLevel",
                modern_params(json!({"level":"info"})),
            ),
            modern_meta("logging/setLevel", None),
            404,
            -32601,
        ),
        (
            "unknown method",
            request(1, "unknown/method", modern_params(json!({}))),
            modern_meta("unknown/method", None),
            404,
            -32601,
        ),
        (
            "method header mismatch",
            request(1, "tools/list", modern_params(json!({}))),
            modern_meta("prompts/list", None),
            400,
            -32020,
        ),
        (
            "name header mismatch",
            request(1, "tools/call", modern_params(json!({"name":"echo"}))),
            modern_meta("tools/call", Some("wrong_tool_name")),
            400,
            -32020,
        ),
        (
            "missing _meta",
            request(1, "server/discover", json!({})),
            modern_meta("server/discover", None),
            400,
            -32602,
        ),
        (
            "undeclared sampling capability",
            request(1, "tools/call", modern_params(json!({"name":"samples"}))),
            modern_meta("tools/call", Some("samples")),
            400,
            -32021,
        ),
    ];
    for (label, message, meta, status, code) in cases {
        match h.server.handle(message, meta).await {
            Handled::HttpError { status: s, body } => {
                assert_eq!(
                    (s, error_code(&body)),
                    (status, Some(code)),
                    "{label}: {body}"
                );
                assert_eq!(body["id"], 1, "{label}: the id is echoed");
                if code == -32021 {
                    assert!(body["error"]["data"]["requiredCapabilities"]["sampling"].is_object());
                }
            }
            other => panic!("{label}: expected an HTTP error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn modern_log_level_comes_from_meta_and_no_client_requests() {
    let h = harness(100);
    let (mut meta, mut rx) = meta_for(Role::Admin);
    meta.protocol_version_header = Some("2026-07-28".into());
    meta.mcp_method_header = Some("tools/call".into());
    meta.mcp_name_header = Some("logs".into());
    let r = response(
        h.server
            .handle(
                request(1, "tools/call", modern_params(json!({"name":"logs"}))),
                meta.clone(),
            )
            .await,
    );
    assert_eq!(r["result"]["isError"], false);
    assert!(
        drain(&mut rx).is_empty(),
        "no logLevel in _meta: no log messages"
    );
    let mut params = modern_params(json!({"name":"logs"}));
    params["_meta"][META_LOG_LEVEL] = json!("error");
    h.server
        .handle(request(2, "tools/call", params), meta)
        .await;
    let logs = drain(&mut rx);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["params"]["level"], "error");
}

#[tokio::test]
async fn a_legacy_client_that_opens_with_initialize_stays_legacy() {
    let h = harness(100);
    let mut meta = admin();
    meta.protocol_version_header = Some("2025-11-25".into());
    let r = call(
        &h.server,
        meta.clone(),
        "initialize",
        json!({"protocolVersion":"2025-11-25"}),
    )
    .await;
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
    let r = call(&h.server, meta, "tools/list", json!({})).await;
    assert!(r["result"].get("resultType").is_none());
}

#[tokio::test]
async fn dropping_the_call_future_cleans_up_like_a_cancellation() {
    let h = harness(100);
    let server = h.server.clone();
    let running = tokio::spawn(async move {
        server
            .handle(request(8, "tools/call", json!({"name":"slow"})), admin())
            .await
    });
    h.started.notified().await;
    assert_eq!(h.server.in_flight_calls(), 1);
    running.abort();
    let _ = running.await;
    assert!(h.dropped.load(Ordering::SeqCst));
    assert_eq!(h.server.in_flight_calls(), 0, "no stale in-flight entry");
}

fn modern_call(tool: &str, extra: Value, caps: Value) -> (Value, RequestMeta) {
    let mut params = modern_params(json!({ "name": tool, "arguments": {} }));
    params["_meta"][META_CLIENT_CAPABILITIES] = caps;
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    (
        request(1, "tools/call", params),
        modern_meta("tools/call", Some(tool)),
    )
}

#[tokio::test]
async fn modern_client_input_goes_through_input_required_and_retry() {
    let h = harness(100);
    let caps = json!({"sampling":{}});
    let (message, meta) = modern_call("samples", json!({}), caps.clone());
    let r = response(h.server.handle(message, meta).await);
    let result = &r["result"];
    assert_eq!(result["resultType"], "input_required", "{r}");
    assert_eq!(
        result["inputRequests"]["input-1"]["method"],
        "sampling/createMessage"
    );
    let state = result["requestState"].as_str().unwrap().to_string();

    let answer = json!({"role":"assistant","content":{"type":"text","text":"Paris"},"model":"m"});
    let (message, meta) = modern_call(
        "samples",
        json!({"inputResponses":{"input-1": answer}, "requestState": state}),
        caps.clone(),
    );
    let r = response(h.server.handle(message, meta).await);
    assert_eq!(r["result"]["resultType"], "complete");
    assert_eq!(r["result"]["content"][0]["text"], "client said \"Paris\"");

    let mut tampered = state.into_bytes();
    tampered[5] ^= 1;
    let (message, meta) = modern_call(
        "samples",
        json!({"inputResponses":{}, "requestState": String::from_utf8(tampered).unwrap()}),
        caps,
    );
    let r = response(h.server.handle(message, meta).await);
    assert_eq!(
        error_code(&r),
        Some(-32602),
        "tampered state is refused: {r}"
    );
}

#[tokio::test]
async fn modern_param_headers_are_checked_when_forwarded() {
    let mut spec = spec("regional", Role::Viewer);
    spec.input_schema = json!({"type":"object","properties":{
        "region": {"type":"string","x-mcp-header":"Region"}}});
    let server = McpServer::builder("t", "1")
        .tools(vec![Arc::new(Echo(spec))])
        .build();
    let call = || {
        let mut params = modern_params(json!({"name":"regional","arguments":{"region":"eu"}}));
        params["_meta"][META_CLIENT_CAPABILITIES] = json!({});
        request(1, "tools/call", params)
    };
    let meta = || modern_meta("tools/call", Some("regional"));
    let good = vec![("Region".to_string(), "=?base64?ZXU=?=".to_string())];
    let r = response(server.handle_with_param_headers(call(), meta(), good).await);
    assert_eq!(r["result"]["structuredContent"], json!({"region":"eu"}));
    let Handled::HttpError { status, body } = server
        .handle_with_param_headers(call(), meta(), vec![])
        .await
    else {
        panic!("a missing Mcp-Param header must be refused");
    };
    assert_eq!((status, error_code(&body)), (400, Some(-32020)));
    // A transport that does not forward the headers is not checked.
    let r = response(server.handle(call(), meta()).await);
    assert_eq!(r["result"]["isError"], false);
}

/// The cached `tools/list` answer is, byte for byte, what the uncached path builds, for every
/// role and era; it is served raw from the first call on; pages after a cursor are not cached.
#[tokio::test]
async fn tools_list_cached_answer_equals_the_freshly_built_one() {
    use crate::mcp::jsonrpc::{RequestId, success};
    for page_size in [100, 3] {
        let h = harness(page_size);
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            for modern in [false, true] {
                let meta = || {
                    let mut meta = meta_for(role).0;
                    if modern {
                        meta.protocol_version_header = Some("2026-07-28".into());
                        meta.mcp_method_header = Some("tools/list".into());
                    }
                    meta
                };
                let params = if modern {
                    modern_params(json!({}))
                } else {
                    json!({})
                };
                let fresh = h.server.tools_list_result(&meta(), None, modern);
                let expected = success(&RequestId::Number(7), fresh.clone()).to_string();
                for attempt in 0..2 {
                    let handled = h
                        .server
                        .handle(request(7, "tools/list", params.clone()), meta())
                        .await;
                    let Handled::RawResponse(raw) = handled else {
                        panic!("{role} modern={modern} #{attempt}: not raw: {handled:?}");
                    };
                    assert_eq!(raw.as_str(), expected, "{role} modern={modern} #{attempt}");
                }
                // The era's decoration is in the cached answer, and only in the modern one.
                assert_eq!(fresh.get("resultType").is_some(), modern);
                if let Some(cursor) = fresh.get("nextCursor").cloned() {
                    let mut next = params.clone();
                    next["cursor"] = cursor;
                    let handled = h
                        .server
                        .handle(request(8, "tools/list", next), meta())
                        .await;
                    let Handled::Response(page) = handled else {
                        panic!("a later page is built fresh, not cached: {handled:?}");
                    };
                    assert!(page["result"]["tools"].is_array(), "{page}");
                }
            }
        }
    }
}
