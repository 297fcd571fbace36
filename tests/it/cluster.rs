//! Issue 11: two real replicas (`launch::assemble`, each on its own loopback port) sharing one
//! real `redis-server`, in front of one simulator. Each test sends a request to one replica
//! that only works if the other replica's state reached it through Redis.

mod job_store;
mod jobs;
mod quotas;
mod race;
mod redis;
mod streams;
mod task_store;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use kasm_mcp::app::RunningApp;
use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::kasm::KasmClient;
use kasm_mcp::launch::{RelayPlan, assemble};
use kasm_mcp::simulator::{Simulator, SimulatorConfig};
use kasm_mcp::tokens::sha256_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp_http::SseReader;
pub use redis::RedisServer;

const TOKEN: &str = "cluster-operator-token";

/// The simulator, Redis and two replicas A and B.
struct Pair {
    sim: Simulator,
    redis: RedisServer,
    a: RunningApp,
    b: RunningApp,
    http: reqwest::Client,
}

fn config(sim: &Simulator, redis: &RedisServer, replica: &str) -> Config {
    let mut config = Config::default();
    config.server.port = 0;
    config.server.sse_keep_alive_s = 60;
    config.server.session_secret =
        Some("one-secret-for-every-replica-0123456789".to_owned().into());
    config.auth.tokens = vec![TokenConfig {
        name: "operator".into(),
        sha256: sha256_hex(TOKEN).parse().unwrap(),
        role: "operator".parse().unwrap(),
        kasm_user_id: None,
    }];
    config.kasm.api_url = Some(sim.base_url());
    config.kasm.api_key = Some(sim.api_key().to_owned().into());
    config.kasm.api_secret = Some(sim.api_secret().to_owned().into());
    config.kasm.user_id = Some(sim.default_user_id());
    config.lifecycle.readiness_cache_ms = 0;
    config.cluster.redis_url = Some(redis.url().into());
    config.cluster.replica_id = Some(replica.into());
    config.cluster.op_timeout_ms = 500;
    config.cluster.connect_timeout_ms = 500;
    config.cluster.liveness_ttl_ms = 1500;
    config
}

fn start(config: Config, sim: &Simulator) -> RunningApp {
    let kasm = KasmClient::from_config(&config.kasm).unwrap();
    assemble(
        config,
        Arc::new(kasm),
        sim.base_url(),
        RelayPlan::ConfiguredOrSelf,
    )
    .unwrap()
    .app
    .spawn()
}

impl Pair {
    /// Replica B relays for itself; replica A's relay URL is B's, so every container upload
    /// and download of a call running on A is received by B. `tune` adjusts both configs.
    async fn start_with(tune: impl Fn(&mut Config)) -> Pair {
        let sim = Simulator::start(SimulatorConfig {
            start_delay: Duration::ZERO,
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let redis = RedisServer::start();
        let mut b_config = config(&sim, &redis, "replica-b");
        tune(&mut b_config);
        let b = start(b_config, &sim);
        let mut a_config = config(&sim, &redis, "replica-a");
        a_config.server.relay_url = Some(b.base_url());
        tune(&mut a_config);
        let a = start(a_config, &sim);
        let pair = Pair {
            sim,
            redis,
            a,
            b,
            http: reqwest::Client::new(),
        };
        for app in [&pair.a, &pair.b] {
            pair.wait_ready(app).await;
        }
        pair
    }

    async fn start() -> Pair {
        Pair::start_with(|_| {}).await
    }

    async fn readyz(&self, app: &RunningApp) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}/readyz", app.base_url()))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    async fn wait_ready(&self, app: &RunningApp) {
        for _ in 0..100 {
            if self.readyz(app).await.0 == StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica not ready: {:?}", self.readyz(app).await);
    }

    /// One stateless `tools/call` on `app`: the HTTP status and the JSON body.
    async fn call_raw(
        &self,
        app: &RunningApp,
        tool: &str,
        arguments: Value,
    ) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/mcp", app.base_url()))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A successful tool call's structured content.
    async fn call(&self, app: &RunningApp, tool: &str, arguments: Value) -> Value {
        let (status, body) = self.call_raw(app, tool, arguments).await;
        assert_eq!(status, StatusCode::OK, "{tool}: {body}");
        let result = &body["result"];
        assert_eq!(result["isError"], false, "{tool}: {body}");
        result["structuredContent"].clone()
    }

    async fn session(&self, app: &RunningApp) -> String {
        let created = self
            .call(
                app,
                "create_kasm_session",
                json!({"image_name": "Terminal"}),
            )
            .await;
        created["kasm_id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_relay_upload_received_by_b_completes_the_call_waiting_on_a() {
    let pair = Pair::start().await;
    let kasm_id = pair.session(&pair.a).await;
    // The wrapper POSTs its result to B (A's relay URL); only Redis connects it to A.
    let out = pair
        .call(
            &pair.a,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "echo from-the-container; echo oops >&2; exit 3"}),
        )
        .await;
    assert_eq!(out["stdout"], "from-the-container\n", "{out}");
    assert_eq!(out["stderr"], "oops\n", "{out}");
    assert_eq!(out["exit_code"], 3, "{out}");

    // A file write: B serves the download of the bytes A holds, and hands A the write status;
    // the read back uploads through B again. 1 MiB of every byte value.
    let bytes: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let path = "/home/kasm-user/cluster.bin";
    let written = pair
        .call(
            &pair.a,
            "write_kasm_file",
            json!({"kasm_id": kasm_id, "file_path": path, "content": b64, "encoding": "base64"}),
        )
        .await;
    assert_eq!(written["size"], bytes.len(), "{written}");
    let read = pair
        .call(
            &pair.a,
            "read_kasm_file",
            json!({"kasm_id": kasm_id, "file_path": path, "encoding": "base64"}),
        )
        .await;
    assert_eq!(
        read["content"], b64,
        "the bytes came back through B unchanged"
    );
    drop(pair.sim);
}

impl Pair {
    /// Open `GET /sse` on `app`: the reader after the `endpoint` event, and that endpoint.
    async fn open_sse(&self, app: &RunningApp) -> (SseReader, String) {
        let r = self
            .http
            .get(format!("{}/sse", app.base_url()))
            .bearer_auth(TOKEN)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut events = SseReader::new(r);
        let endpoint = events.next().await.expect("endpoint event");
        assert_eq!(endpoint.event, "endpoint");
        (events, endpoint.data)
    }

    async fn post_message(&self, app: &RunningApp, endpoint: &str, message: Value) -> StatusCode {
        self.http
            .post(format!("{}{endpoint}", app.base_url()))
            .bearer_auth(TOKEN)
            .json(&message)
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn a_legacy_sse_message_posted_to_b_reaches_the_stream_on_a() {
    let pair = Pair::start().await;
    let (mut stream, endpoint) = pair.open_sse(&pair.a).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "cluster-test", "version": "1"}}});
    assert_eq!(
        pair.post_message(&pair.b, &endpoint, init).await,
        StatusCode::ACCEPTED
    );
    let answer = stream.next_json().await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(
        answer["result"]["serverInfo"]["name"], "kasm-mcp",
        "{answer}"
    );
    // A tool call posted to B runs on A (where the stream is) and answers there.
    let kasm_id = pair.session(&pair.a).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "execute_kasm_command",
        "arguments": {"kasm_id": kasm_id, "command": "echo via-b"}}});
    assert_eq!(
        pair.post_message(&pair.b, &endpoint, call).await,
        StatusCode::ACCEPTED
    );
    let answer = loop {
        let message = stream.next_json().await;
        if message.get("id").is_some() {
            break message;
        }
    };
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["stdout"], "via-b\n",
        "{answer}"
    );

    // A's stream closes (A stops): B reports the session gone instead of dropping messages.
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    drop(stream);
    let mut gone = StatusCode::ACCEPTED;
    for _ in 0..50 {
        gone = pair.post_message(&pair.b, &endpoint, ping.clone()).await;
        if gone == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        gone,
        StatusCode::NOT_FOUND,
        "a closed stream is gone on B too"
    );
}

#[tokio::test]
async fn a_legacy_stream_whose_replica_died_is_gone_for_the_poster() {
    let pair = Pair::start().await;
    // A route left behind by a replica that died without cleaning up: its heartbeat key is
    // absent, so B must answer 404 rather than publish into the void.
    let client = ::redis::Client::open(pair.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("SET")
        .arg("kasm-mcp:sse:ghost-session")
        .arg(r#"{"replica":"replica-dead","principal":"operator"}"#)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let status = pair
        .post_message(
            &pair.b,
            "/messages?sessionId=ghost-session",
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let left: Option<String> = ::redis::cmd("GET")
        .arg("kasm-mcp:sse:ghost-session")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, None, "the dead replica's route is removed");
    // Another principal's live stream is as unknown as a missing one.
    let (_stream, endpoint) = pair.open_sse(&pair.a).await;
    let r = pair
        .http
        .post(format!("{}{endpoint}", pair.b.base_url()))
        .bearer_auth("not-a-token")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

impl Pair {
    /// `initialize` on `app` (2025-11-25, Streamable HTTP): the session id.
    async fn initialize(&self, app: &RunningApp) -> String {
        let r = self
            .http
            .post(format!("{}/mcp", app.base_url()))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {"roots": {}},
                "clientInfo": {"name": "cluster-test", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.headers()["mcp-session-id"].to_str().unwrap().to_owned()
    }

    async fn in_session(&self, app: &RunningApp, session: &str, message: Value) -> StatusCode {
        self.http
            .post(format!("{}/mcp", app.base_url()))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&message)
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn a_session_ended_on_a_is_refused_on_b() {
    let pair = Pair::start().await;
    let session = pair.initialize(&pair.a).await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    assert_eq!(
        pair.in_session(&pair.b, &session, ping.clone()).await,
        StatusCode::OK,
        "a sealed session works on every replica"
    );
    let ended = pair
        .http
        .delete(format!("{}/mcp", pair.a.base_url()))
        .bearer_auth(TOKEN)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        pair.in_session(&pair.b, &session, ping.clone()).await,
        StatusCode::NOT_FOUND,
        "ended on A, refused on B"
    );
    assert_eq!(
        pair.in_session(&pair.a, &session, ping).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_rate_limit_across_two_replicas_allows_the_configured_figure_not_twice_it() {
    const BURST: u32 = 6;
    let pair = Pair::start_with(|c| {
        // One call a minute after the burst: nothing refills during the test.
        c.limits.per_principal_per_minute = 1;
        c.limits.per_principal_burst = BURST;
    })
    .await;
    let mut allowed = 0;
    let mut refused = 0;
    for i in 0..4 * BURST {
        let app = if i % 2 == 0 { &pair.a } else { &pair.b };
        let (status, body) = pair
            .call_raw(app, "get_available_workspaces", json!({}))
            .await;
        match status {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        (allowed, refused),
        (BURST, 3 * BURST),
        "two replicas together allow the burst once"
    );
}

#[tokio::test]
async fn redis_stopped_makes_readyz_503_and_calls_fail_clearly_then_it_recovers() {
    let mut pair = Pair::start().await;
    let kasm_id = pair.session(&pair.a).await;
    let exec = json!({"kasm_id": kasm_id, "command": "echo up"});
    assert_eq!(
        pair.call(&pair.a, "execute_kasm_command", exec.clone())
            .await["stdout"],
        "up\n"
    );

    let session = pair.initialize(&pair.a).await;

    pair.redis.stop();
    let (status, body) = pair.readyz(&pair.a).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["redis"]["ok"], false, "{body}");
    assert!(
        body["checks"]["redis"]["fix"]
            .as_str()
            .unwrap()
            .contains("cluster.redis_url"),
        "{body}"
    );
    // A call that needs the shared relay fails within bounded time with a clear message.
    let started = std::time::Instant::now();
    let (status, body) = pair
        .call_raw(&pair.a, "execute_kasm_command", exec.clone())
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("shared state (Redis") && text.contains("nothing was run"),
        "{text}"
    );

    // In a session, the request is answered with a JSON-RPC error naming the cause (HTTP 200:
    // SDK clients show it as the call's error; a 503 reaches them as a broken transport).
    let started = std::time::Instant::now();
    let r = pair
        .http
        .post(format!("{}/mcp", pair.b.base_url()))
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "execute_kasm_command", "arguments": exec.clone()}}))
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 5, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Redis") && message.contains("[cluster] redis_url"),
        "{body}"
    );
    // A notification needs no shared answer: accepted on the session's seal (an SDK that got
    // a 503 for `notifications/initialized` would never send the call above).
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        pair.in_session(&pair.b, &session, note).await,
        StatusCode::ACCEPTED
    );

    pair.redis.restart();
    pair.wait_ready(&pair.a).await;
    pair.wait_ready(&pair.b).await;
    assert_eq!(
        pair.call(&pair.a, "execute_kasm_command", exec).await["stdout"],
        "up\n",
        "service resumes by itself"
    );
}

impl Pair {
    /// A `tools/call` in `session` on `app`, answered as a stream (a progress token asks
    /// for one).
    async fn call_streaming(
        &self,
        app: &RunningApp,
        session: &str,
        id: u64,
        tool: &str,
        arguments: Value,
    ) -> SseReader {
        let r = self
            .http
            .post(format!("{}/mcp", app.base_url()))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": tool, "arguments": arguments, "_meta": {"progressToken": format!("p{id}")}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        SseReader::new(r)
    }
}

#[tokio::test]
async fn a_clients_answer_posted_to_b_reaches_the_call_waiting_on_a() {
    let pair = Pair::start().await;
    let kasm_id = pair.session(&pair.a).await;
    // Initialized on B with the roots capability: A learns it through Redis, so its file
    // tool asks the client for its roots on the call's stream.
    let session = pair.initialize(&pair.b).await;
    let mut stream = pair
        .call_streaming(
            &pair.a,
            &session,
            7,
            "write_kasm_file",
            json!({"kasm_id": kasm_id, "file_path": "/home/kasm-user/roots.txt", "content": "ok"}),
        )
        .await;
    let asked = loop {
        let message = stream.next_json().await;
        if message["method"] == "roots/list" {
            break message;
        }
        assert!(
            message.get("id").is_none(),
            "answered before roots: {message}"
        );
    };
    // The client's answer lands on B; only the broadcast gets it to A.
    let answer = json!({"jsonrpc": "2.0", "id": asked["id"],
        "result": {"roots": [{"uri": "file:///home/kasm-user", "name": "home"}]}});
    assert_eq!(
        pair.in_session(&pair.b, &session, answer).await,
        StatusCode::ACCEPTED
    );
    let result = loop {
        let message = stream.next_json().await;
        if message.get("id") == Some(&json!(7)) {
            break message;
        }
    };
    assert_eq!(result["result"]["isError"], false, "{result}");
    assert_eq!(result["result"]["structuredContent"]["size"], 2, "{result}");
}

#[tokio::test]
async fn a_cancellation_posted_to_b_stops_the_call_running_on_a() {
    let pair = Pair::start().await;
    let kasm_id = pair.session(&pair.a).await;
    let session = pair.initialize(&pair.a).await;
    let started = std::time::Instant::now();
    let mut stream = pair
        .call_streaming(
            &pair.a,
            &session,
            9,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "sleep 30", "timeout_s": 60}),
        )
        .await;
    // The call is running on A (its first progress notification arrived).
    let first = stream.next_json().await;
    assert_eq!(first["method"], "notifications/progress", "{first}");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 9, "reason": "changed my mind"}});
    assert_eq!(
        pair.in_session(&pair.b, &session, cancel).await,
        StatusCode::ACCEPTED
    );
    // A cancelled request gets no response: its stream ends, long before the command would.
    while let Some(event) = stream.next().await {
        let message: Value = serde_json::from_str(&event.data).unwrap();
        assert!(
            message.get("id").is_none(),
            "a cancelled call answered: {message}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the call ran on: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_replica_stopping_gracefully_ends_its_streams_and_b_says_they_are_gone_at_once() {
    let pair = Pair::start().await;
    let (mut stream, endpoint) = pair.open_sse(&pair.a).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(
        pair.post_message(&pair.b, &endpoint, ping.clone()).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(stream.next_json().await["id"], 1);
    let Pair { a, b, http, .. } = pair;
    a.stop().await.unwrap();
    // The SSE client sees its stream end (no hang until a proxy times out).
    assert!(
        stream.next().await.is_none(),
        "the stream ends when its replica stops"
    );
    // B knows at once: the route went with the stream, not after the liveness TTL.
    let status = http
        .post(format!("{}{endpoint}", b.base_url()))
        .bearer_auth(TOKEN)
        .json(&ping)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
}
