//! MCP tasks against the real product (`launch::assemble`: the tool catalog, the relay and the
//! router behind the HTTP stack, on a loopback port) and the real Kasm simulator, whose
//! sandbox really runs the commands: the 2025-11-25 tasks utility and the 2026-07-28 tasks
//! extension over raw HTTP as the specifications write them, `tasks/cancel` killing the
//! command (the process is looked for on this host, where the simulator runs it), tasks bound
//! to their principal, and clients that do not use tasks left as they were.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kasm_mcp::app::RunningApp;
use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::kasm::KasmClient;
use kasm_mcp::launch::{RelayPlan, assemble};
use kasm_mcp::simulator::{Simulator, SimulatorConfig};
use kasm_mcp::tokens::sha256_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ALICE: &str = "alice-token-for-the-tasks-tests";
const BOB: &str = "bob-token-for-the-tasks-tests";
const EXT: &str = "io.modelcontextprotocol/tasks";
const WAIT: Duration = Duration::from_secs(30);

struct Product {
    app: RunningApp,
    sim: Simulator,
    http: reqwest::Client,
}

fn token(name: &str, secret: &str, kasm_user: &str) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        sha256: sha256_hex(secret).parse().expect("a digest"),
        role: "operator".parse().expect("a role"),
        kasm_user_id: Some(kasm_user.into()),
    }
}

impl Product {
    async fn start() -> Product {
        Product::start_with(|_| {}).await
    }

    /// With `adjust` applied to the configuration last.
    async fn start_with(adjust: impl FnOnce(&mut Config)) -> Product {
        let sim = Simulator::start(SimulatorConfig {
            start_delay: Duration::from_millis(200),
            max_kasms_per_user: 4,
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let mut config = Config::default();
        config.server.port = 0;
        config.kasm.api_url = Some(sim.base_url());
        config.kasm.api_key = Some(sim.api_key().to_owned().into());
        config.kasm.api_secret = Some(sim.api_secret().to_owned().into());
        config.kasm.user_id = Some(sim.default_user_id());
        config.auth.tokens = vec![
            token("alice", ALICE, &sim.default_user_id()),
            token("bob", BOB, &sim.default_user_id()),
        ];
        adjust(&mut config);
        let kasm = KasmClient::from_config(&config.kasm).unwrap();
        let app = assemble(
            config,
            Arc::new(kasm),
            sim.base_url(),
            RelayPlan::ConfiguredOrSelf,
        )
        .unwrap()
        .app
        .spawn();
        Product {
            app,
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        format!("{}/mcp", self.app.base_url())
    }
}

/// The JSON-RPC message answering `id` in a response body (JSON, or an SSE stream that ends
/// after the response), plus the other messages that came before it.
pub(crate) async fn read_answer(
    response: reqwest::Response,
    id: u64,
) -> (StatusCode, Value, Vec<Value>) {
    let status = response.status();
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    if !sse {
        return (status, serde_json::from_str(&text).unwrap(), Vec::new());
    }
    let mut others = Vec::new();
    for block in text.split("\n\n") {
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() || data.iter().all(|d| d.is_empty()) {
            continue;
        }
        let message: Value = serde_json::from_str(&data.join("\n")).unwrap();
        if message["id"] == id {
            return (status, message, others);
        }
        others.push(message);
    }
    panic!("no answer to request {id} in {text}");
}

/// A 2025-11-25 (or older) client over Streamable HTTP with a session.
struct Legacy<'a> {
    product: &'a Product,
    token: &'static str,
    session: String,
    version: &'static str,
    next: std::sync::atomic::AtomicU64,
}

impl<'a> Legacy<'a> {
    async fn connect(
        product: &'a Product,
        token: &'static str,
        version: &'static str,
    ) -> (Self, Value) {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "tasks-it", "version": "0"}}});
        let response = product
            .http
            .post(product.url())
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&init)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let initialized: Value = response.json().await.unwrap();
        let client = Legacy {
            product,
            token,
            session,
            version,
            next: 1.into(),
        };
        let ack = client
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(ack.status(), StatusCode::ACCEPTED);
        (client, initialized)
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.product
            .http
            .post(self.product.url())
            .bearer_auth(self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", self.version)
            .json(body)
    }

    /// The response to `method` (`result` or `error` inside) and the messages before it.
    async fn rpc_with_notes(&self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(&body).send().await.unwrap();
        let (status, answer, notes) = read_answer(response, id).await;
        assert_eq!(status, StatusCode::OK, "{method}: {answer}");
        (answer, notes)
    }

    async fn rpc(&self, method: &str, params: Value) -> Value {
        self.rpc_with_notes(method, params).await.0
    }

    async fn result(&self, method: &str, params: Value) -> Value {
        let answer = self.rpc(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }
}

/// A 2026-07-28 client: every request stateless, with `_meta` and the routing headers.
struct Modern<'a> {
    product: &'a Product,
    token: &'static str,
    /// Whether requests declare the tasks extension.
    tasks: bool,
}

/// A 2026-07-28 client of `token` that declares the tasks extension (or not).
fn modern<'a>(product: &'a Product, token: &'static str, tasks: bool) -> Modern<'a> {
    Modern {
        product,
        token,
        tasks,
    }
}

impl Modern<'_> {
    /// Status and the JSON-RPC answer; `name` is the `Mcp-Name` header (None: the body's).
    async fn send(
        &self,
        method: &str,
        mut params: Value,
        name: Option<&str>,
    ) -> (StatusCode, Value) {
        let extensions = if self.tasks {
            json!({ EXT: {} })
        } else {
            json!({})
        };
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":
                {"extensions": extensions, "elicitation": {"form": {}}},
        });
        let body_name = params
            .get("name")
            .or_else(|| params.get("taskId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut request = self
            .product
            .http
            .post(self.product.url())
            .bearer_auth(self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}));
        if let Some(name) = name.map(str::to_owned).or(body_name) {
            request = request.header("mcp-name", name);
        }
        let (status, answer, _) = read_answer(request.send().await.unwrap(), 7).await;
        (status, answer)
    }

    async fn result(&self, method: &str, params: Value) -> Value {
        let (status, answer) = self.send(method, params, None).await;
        assert_eq!(status, StatusCode::OK, "{method}: {answer}");
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }
}

/// Start a session as `client` and return its kasm_id (a direct call, no task).
async fn session_for(client: &Legacy<'_>) -> String {
    let created = client
        .result(
            "tools/call",
            json!({"name": "create_kasm_session", "arguments": {"image_name": "Terminal"}}),
        )
        .await;
    assert_eq!(created["isError"], false, "{created}");
    created["structuredContent"]["kasm_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Processes on this host whose command line contains `marker` (the simulator runs each
/// session's commands as processes of this machine).
pub(crate) fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push(pid);
        }
    }
    found
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `sleep` whose command line no other test uses.
pub(crate) fn unique_sleep(seconds: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{seconds}.{nanos:09}")
}

#[tokio::test]
async fn a_2025_11_25_tool_call_with_a_task_param_runs_in_the_background() {
    let product = Product::start().await;
    let (alice, init) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    assert_eq!(
        init["result"]["capabilities"]["tasks"],
        json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}),
        "{init}"
    );
    let tools = alice.result("tools/list", json!({})).await;
    let support = |name: &str| {
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["execution"]["taskSupport"].clone())
            .unwrap()
    };
    for name in [
        "create_kasm_session",
        "execute_kasm_command",
        "read_kasm_file",
        "write_kasm_file",
    ] {
        assert_eq!(support(name), "optional", "{name}");
    }
    assert_eq!(support("destroy_kasm_session"), Value::Null);

    let kasm_id = session_for(&alice).await;
    let started = Instant::now();
    let created = alice
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": kasm_id, "command": "sleep 2; echo from-the-task"},
                   "task": {"ttl": 120_000}}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the task is created before the command ends"
    );
    let task = &created["task"];
    assert_eq!(task["status"], "working", "{created}");
    assert_eq!(task["ttl"], 120_000);
    assert!(task["pollInterval"].as_u64().is_some());
    assert!(
        created.get("content").is_none(),
        "no tool result yet: {created}"
    );
    let task_id = task["taskId"].as_str().unwrap().to_owned();

    let now = alice.result("tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(now["status"], "working", "{now}");
    let listed = alice.result("tasks/list", json!({})).await;
    assert!(
        listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["taskId"] == task_id.as_str()),
        "{listed}"
    );

    // tasks/result blocks until the command ended, then answers what the call would have.
    let (answer, notes) = alice
        .rpc_with_notes("tasks/result", json!({"taskId": task_id}))
        .await;
    let result = &answer["result"];
    assert_eq!(result["isError"], false, "{answer}");
    assert_eq!(result["structuredContent"]["stdout"], "from-the-task\n");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        task_id.as_str()
    );
    assert!(
        notes
            .iter()
            .any(|n| n["method"] == "notifications/tasks/status"
                && n["params"]["taskId"] == task_id.as_str()
                && n["params"]["status"] == "completed"),
        "the waiting tasks/result stream carries the status notification: {notes:?}"
    );
    let done = alice.result("tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(done["status"], "completed", "{done}");

    // A failing tool result fails the task (2025-11-25); tasks/result returns that result.
    let failing = alice
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": "0000000000000000000000000000dead", "command": "true"},
                   "task": {}}),
        )
        .await;
    let failing_id = failing["task"]["taskId"].as_str().unwrap().to_owned();
    let answer = alice
        .rpc("tasks/result", json!({"taskId": failing_id}))
        .await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let failed = alice
        .result("tasks/get", json!({"taskId": failing_id}))
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    // Cancelling a finished task is refused.
    let refused = alice
        .rpc("tasks/cancel", json!({"taskId": failing_id}))
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    // A tool without task support refuses the task param.
    let refused = alice
        .rpc(
            "tools/call",
            json!({"name": "get_session_status", "arguments": {"kasm_id": kasm_id}, "task": {}}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    product.sim.shutdown().await;
}

#[tokio::test]
async fn a_2026_07_28_request_declaring_the_extension_gets_a_task_with_the_result_inline() {
    let product = Product::start().await;
    let (legacy, _) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    let kasm_id = session_for(&legacy).await;
    let alice = Modern {
        product: &product,
        token: ALICE,
        tasks: true,
    };
    let discovered = alice.result("server/discover", json!({})).await;
    assert_eq!(
        discovered["capabilities"]["extensions"][EXT],
        json!({}),
        "{discovered}"
    );
    assert!(discovered["capabilities"].get("tasks").is_none());

    let created = alice
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": kasm_id, "command": "sleep 1; echo modern-task"}}),
        )
        .await;
    assert_eq!(created["resultType"], "task", "{created}");
    assert_eq!(created["status"], "working");
    assert!(created["ttlMs"].as_u64().is_some_and(|t| t > 0));
    assert!(created["pollIntervalMs"].as_u64().is_some_and(|t| t > 0));
    assert!(created.get("task").is_none() && created.get("ttl").is_none());
    let task_id = created["taskId"].as_str().unwrap().to_owned();

    // The task id goes in Mcp-Name: a different one is a header mismatch.
    let (status, mismatch) = alice
        .send(
            "tasks/get",
            json!({"taskId": task_id}),
            Some("not-the-task"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(mismatch["error"]["code"], -32020, "{mismatch}");
    // tasks/result and tasks/list do not exist in 2026-07-28.
    for method in ["tasks/result", "tasks/list"] {
        let (status, answer) = alice.send(method, json!({"taskId": task_id}), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], -32601);
    }

    let started = Instant::now();
    let done = loop {
        let now = alice.result("tasks/get", json!({"taskId": task_id})).await;
        assert_eq!(now["resultType"], "complete", "{now}");
        if now["status"] != "working" {
            break now;
        }
        assert!(started.elapsed() < WAIT, "the task never ended: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["structuredContent"]["stdout"],
        "modern-task\n"
    );
    assert!(
        done["result"]["_meta"]
            .get("io.modelcontextprotocol/related-task")
            .is_none()
    );
    let update = alice
        .result(
            "tasks/update",
            json!({"taskId": task_id, "inputResponses": {}}),
        )
        .await;
    assert_eq!(update, json!({"resultType": "complete"}));
    // Cancelling a finished task is acknowledged and changes nothing.
    let ack = alice
        .result("tasks/cancel", json!({"taskId": task_id}))
        .await;
    assert_eq!(ack, json!({"resultType": "complete"}));
    let still = alice.result("tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(still["status"], "completed");

    // Without the extension: the task methods need it (-32021).
    let plain = Modern {
        product: &product,
        token: ALICE,
        tasks: false,
    };
    let (status, refused) = plain
        .send("tasks/get", json!({"taskId": task_id}), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert_eq!(
        refused["error"]["data"]["requiredCapabilities"]["extensions"][EXT],
        json!({})
    );
    product.sim.shutdown().await;
}

#[tokio::test]
async fn tasks_cancel_kills_the_running_command_in_both_eras() {
    let product = Product::start().await;
    let (alice, _) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    let kasm_id = session_for(&alice).await;
    let modern = Modern {
        product: &product,
        token: ALICE,
        tasks: true,
    };
    for era in ["2025-11-25", "2026-07-28"] {
        let marker = unique_sleep(60);
        let arguments =
            json!({"kasm_id": kasm_id, "command": format!("sleep {marker}"), "timeout_s": 120});
        let task_id = if era == "2025-11-25" {
            let created = alice
                .result(
                    "tools/call",
                    json!({"name": "execute_kasm_command", "arguments": arguments, "task": {}}),
                )
                .await;
            created["task"]["taskId"].as_str().unwrap().to_owned()
        } else {
            let created = modern
                .result(
                    "tools/call",
                    json!({"name": "execute_kasm_command", "arguments": arguments}),
                )
                .await;
            created["taskId"].as_str().unwrap().to_owned()
        };
        // The command really runs before it is cancelled.
        eventually(&format!("{era}: sleep {marker} to start"), || {
            !processes_with(&marker).is_empty()
        })
        .await;

        if era == "2025-11-25" {
            let cancelled = alice
                .result("tasks/cancel", json!({"taskId": task_id}))
                .await;
            assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
            assert_eq!(cancelled["taskId"], task_id.as_str());
        } else {
            let ack = modern
                .result("tasks/cancel", json!({"taskId": task_id}))
                .await;
            assert_eq!(ack, json!({"resultType": "complete"}));
        }
        // The server's decision: the command's process is gone from the session.
        eventually(&format!("{era}: sleep {marker} to be killed"), || {
            processes_with(&marker).is_empty()
        })
        .await;
        let status = if era == "2025-11-25" {
            alice.result("tasks/get", json!({"taskId": task_id})).await
        } else {
            modern.result("tasks/get", json!({"taskId": task_id})).await
        };
        assert_eq!(status["status"], "cancelled", "{era}: {status}");
        assert!(status.get("result").is_none(), "{status}");
    }
    // The cancelled legacy task has no result to give.
    product.sim.shutdown().await;
}

/// SIGTERM while a task's command runs: the drain waits for it within
/// `lifecycle.shutdown_grace_s`, and at the deadline stops it — the command is killed in the
/// session — and records it: the call's audit event is `cancelled`, with the reason.
#[tokio::test]
async fn a_task_still_running_at_shutdown_is_stopped_and_audited() {
    super::audit_log::install();
    let product = Product::start_with(|config| config.lifecycle.shutdown_grace_s = 1).await;
    let (alice, _) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    let kasm_id = session_for(&alice).await;
    let marker = unique_sleep(60);
    let created = modern(&product, ALICE, true)
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command", "arguments":
                {"kasm_id": kasm_id, "command": format!("sleep {marker}"), "timeout_s": 120}}),
        )
        .await;
    assert_eq!(created["status"], "working", "{created}");
    eventually(&format!("sleep {marker} to start"), || {
        !processes_with(&marker).is_empty()
    })
    .await;
    drop(alice);
    let Product { app, sim, .. } = product;
    let stopping = Instant::now();
    app.stop().await.unwrap();
    assert!(
        stopping.elapsed() >= Duration::from_secs(1),
        "the drain did not wait for the task"
    );
    eventually(&format!("sleep {marker} to be killed"), || {
        processes_with(&marker).is_empty()
    })
    .await;
    let events = super::audit_log::events(|fields| {
        fields["message"] == "tool call"
            && fields["tool"] == "execute_kasm_command"
            && fields["kasm_id"] == kasm_id.as_str()
            && fields["outcome"] != "ok"
    });
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "cancelled", "{events:?}");
    assert!(
        events[0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("server shut down")),
        "{events:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn another_principal_can_neither_see_nor_cancel_a_task() {
    let product = Product::start().await;
    let (alice, _) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    let (bob, _) = Legacy::connect(&product, BOB, "2025-11-25").await;
    let kasm_id = session_for(&alice).await;
    let created = alice
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": kasm_id, "command": "sleep 2; echo still-alices"},
                   "task": {}}),
        )
        .await;
    let task_id = created["task"]["taskId"].as_str().unwrap().to_owned();
    for method in ["tasks/get", "tasks/cancel", "tasks/result"] {
        let answer = bob.rpc(method, json!({"taskId": task_id})).await;
        assert_eq!(answer["error"]["code"], -32602, "{method}: {answer}");
        assert!(answer.get("result").is_none());
    }
    let listed = bob.result("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"], json!([]), "{listed}");
    let bob_modern = Modern {
        product: &product,
        token: BOB,
        tasks: true,
    };
    for method in ["tasks/get", "tasks/cancel", "tasks/update"] {
        let (status, answer) = bob_modern
            .send(
                method,
                json!({"taskId": task_id, "inputResponses": {}}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], -32602, "{method}: {answer}");
    }
    // Bob's cancel did nothing: alice's task runs to its end.
    let answer = alice
        .result("tasks/result", json!({"taskId": task_id}))
        .await;
    assert_eq!(answer["structuredContent"]["stdout"], "still-alices\n");
    let done = alice.result("tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(done["status"], "completed");
    product.sim.shutdown().await;
}

#[tokio::test]
async fn clients_that_do_not_use_tasks_are_unaffected() {
    let product = Product::start().await;
    // An older revision: no tasks capability, and a task param is ignored.
    let (old, init) = Legacy::connect(&product, ALICE, "2025-06-18").await;
    assert!(
        init["result"]["capabilities"].get("tasks").is_none(),
        "{init}"
    );
    let kasm_id = session_for(&old).await;
    let direct = old
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": kasm_id, "command": "echo direct"},
                   "task": {"ttl": 60_000}}),
        )
        .await;
    assert!(direct.get("task").is_none(), "{direct}");
    assert_eq!(direct["structuredContent"]["stdout"], "direct\n");
    // 2025-11-25 without a task param: the ordinary result.
    let (current, _) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    let direct = current
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": kasm_id, "command": "echo plain"}}),
        )
        .await;
    assert_eq!(direct["structuredContent"]["stdout"], "plain\n", "{direct}");
    // 2026-07-28 without the extension: the ordinary result, resultType complete.
    let plain = Modern {
        product: &product,
        token: ALICE,
        tasks: false,
    };
    let direct = plain
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": kasm_id, "command": "echo modern-plain"}}),
        )
        .await;
    assert_eq!(direct["resultType"], "complete", "{direct}");
    assert!(direct.get("taskId").is_none());
    assert_eq!(direct["structuredContent"]["stdout"], "modern-plain\n");
    product.sim.shutdown().await;
}

#[tokio::test]
async fn a_2026_07_28_task_asks_for_approval_through_input_required_and_tasks_update() {
    let product = Product::start().await;
    let (legacy, _) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    let kasm_id = session_for(&legacy).await;
    let alice = modern(&product, ALICE, true);
    let before = product.sim.exec_requests();
    // The command policy asks a person before piping into a shell runs.
    let created = alice
        .result(
            "tools/call",
            json!({"name": "execute_kasm_command",
                   "arguments": {"kasm_id": kasm_id, "command": "printf 'echo approved-in-a-task' | sh"}}),
        )
        .await;
    assert_eq!(created["resultType"], "task", "{created}");
    let task_id = created["taskId"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let waiting = loop {
        let now = alice.result("tasks/get", json!({"taskId": task_id})).await;
        if now["status"] == "input_required" {
            break now;
        }
        assert_eq!(now["status"], "working", "{now}");
        assert!(started.elapsed() < WAIT, "never asked: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let request = &waiting["inputRequests"]["approve-command"];
    assert_eq!(request["method"], "elicitation/create", "{waiting}");
    assert!(
        request["params"]["message"]
            .as_str()
            .unwrap()
            .contains("approved-in-a-task"),
        "{request}"
    );
    assert_eq!(
        product.sim.exec_requests(),
        before,
        "nothing ran before the approval"
    );
    // Bob cannot answer alice's question.
    let bob = modern(&product, BOB, true);
    let (_, refused) = bob
        .send(
            "tasks/update",
            json!({"taskId": task_id, "inputResponses":
                   {"approve-command": {"action": "accept", "content": {"approve": true}}}}),
            None,
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let still = alice.result("tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(still["status"], "input_required", "{still}");

    let ack = alice
        .result(
            "tasks/update",
            json!({"taskId": task_id, "inputResponses": {
                "approve-command": {"action": "accept", "content": {"approve": true}},
                "not-asked": {"action": "accept", "content": {}}}}),
        )
        .await;
    assert_eq!(ack, json!({"resultType": "complete"}));
    let done = loop {
        let now = alice.result("tasks/get", json!({"taskId": task_id})).await;
        if now["status"] == "completed" || now["status"] == "failed" {
            break now;
        }
        assert!(started.elapsed() < WAIT, "never finished: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["structuredContent"]["stdout"], "approved-in-a-task\n",
        "{done}"
    );
    assert!(done.get("inputRequests").is_none());
    product.sim.shutdown().await;
}

#[tokio::test]
async fn cancelling_an_ordinary_exec_call_kills_its_command_too() {
    let product = Product::start().await;
    let (alice, _) = Legacy::connect(&product, ALICE, "2025-11-25").await;
    let kasm_id = session_for(&alice).await;
    let marker = unique_sleep(60);
    let call = json!({"jsonrpc": "2.0", "id": 4242, "method": "tools/call", "params": {
        "name": "execute_kasm_command",
        "arguments": {"kasm_id": kasm_id, "command": format!("sleep {marker}"), "timeout_s": 120}}});
    let running = alice.post(&call).send();
    let pending = tokio::spawn(async move { running.await.map(|r| r.status()) });
    eventually(&format!("sleep {marker} to start"), || {
        !processes_with(&marker).is_empty()
    })
    .await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 4242, "reason": "test"}});
    let ack = alice.post(&cancel).send().await.unwrap();
    assert_eq!(ack.status(), StatusCode::ACCEPTED);
    eventually(&format!("sleep {marker} to be killed"), || {
        processes_with(&marker).is_empty()
    })
    .await;
    pending.abort();
    product.sim.shutdown().await;
}
