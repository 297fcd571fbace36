//! Integration tests: sealed 2026-07-28 `requestState` values against the real app bound to
//! 127.0.0.1:0 — a round trip that outlives a restart (same `server.session_secret`, key
//! derived with HKDF) and a replayed state that is refused.

use std::sync::Arc;

use async_trait::async_trait;
use kasm_mcp::app::App;
use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::keys::{self, KeyUse};
use kasm_mcp::mcp::{CallContext, McpServer, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use kasm_mcp::policy::Role;
use kasm_mcp::tokens::sha256_hex;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

const TOKEN: &str = "sealing-test-token";

/// Asks the client to sample once and returns what it said.
struct Asks(ToolSpec);

#[async_trait]
impl Tool for Asks {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
        match ctx
            .notifier
            .request_client(
                "sampling/createMessage",
                json!({"messages": [], "maxTokens": 5}),
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

fn config(secret: &str) -> Config {
    let mut config = Config::default();
    config.server.port = 0;
    config.server.session_secret = Some(secret.to_string().into());
    config.auth.tokens = vec![TokenConfig {
        name: "alice".into(),
        sha256: sha256_hex(TOKEN).parse().expect("a digest"),
        role: "operator".parse().expect("a role"),
        kasm_user_id: None,
    }];
    config
}

/// The app as `launch::assemble` builds it: the requestState key derived from the
/// configured secret.
fn start(config: Config) -> kasm_mcp::app::RunningApp {
    let tool = Asks(
        ToolSpec::builder("asks", Role::Viewer)
            .title("asks")
            .description("Asks the client")
            .input_schema(json!({"type": "object"}))
            .annotations(ToolAnnotations::read_only())
            .build(),
    );
    let server = McpServer::builder("sealing-test", "0")
        .tools(vec![Arc::new(tool)])
        .request_state_key(keys::from_secret(
            config.server.session_secret.as_ref(),
            KeyUse::RequestState,
        ))
        .build();
    App::build(config, Arc::new(server), axum::Router::new())
        .expect("bind")
        .spawn()
}

async fn modern_call(base: &str, extra: Value) -> Value {
    let mut params = json!({
        "name": "asks", "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
            "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "0"}
        }
    });
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    let resp = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "asks")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    // A JSON answer, or an SSE stream whose last `data:` line is the answer.
    serde_json::from_str(&text).unwrap_or_else(|_| {
        let data = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .next_back()
            .unwrap_or_else(|| panic!("no answer in {text}"));
        serde_json::from_str(data.trim()).unwrap()
    })
}

#[tokio::test]
async fn an_input_required_round_trip_survives_a_restart_and_is_refused_on_replay() {
    let first = start(config("the-same-secret"));
    let r = modern_call(&first.base_url(), json!({})).await;
    assert_eq!(r["result"]["resultType"], "input_required", "{r}");
    let state = r["result"]["requestState"].as_str().unwrap().to_string();
    first.stop().await.unwrap();

    let answer = json!({"inputResponses": {"input-1":
        {"role": "assistant", "content": {"type": "text", "text": "Paris"}, "model": "m"}},
        "requestState": state});
    let restarted = start(config("the-same-secret"));
    let r = modern_call(&restarted.base_url(), answer.clone()).await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    assert_eq!(r["result"]["content"][0]["text"], "client said \"Paris\"");

    let replay = modern_call(&restarted.base_url(), answer.clone()).await;
    assert_eq!(replay["error"]["code"], -32602, "{replay}");
    let message = replay["error"]["message"].as_str().unwrap();
    assert!(message.contains("already used"), "{message}");
    restarted.stop().await.unwrap();

    // Another secret derives another key: the state does not open there.
    let other = start(config("another-secret"));
    let r = modern_call(&other.base_url(), answer).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    other.stop().await.unwrap();
}

/// Issue 11: with `[cluster]` a requestState opens once across replicas — a replay sent to
/// another replica is refused too (without Redis each process only knows its own).
#[tokio::test]
async fn with_a_cluster_a_request_state_replayed_on_another_replica_is_refused() {
    let redis = crate::cluster::RedisServer::start();
    let clustered = |replica: &str| {
        let mut c = config("the-same-secret");
        c.cluster.redis_url = Some(redis.url().into());
        c.cluster.replica_id = Some(replica.into());
        c
    };
    let a = start(clustered("mrtr-a"));
    let b = start(clustered("mrtr-b"));
    let r = modern_call(&a.base_url(), json!({})).await;
    assert_eq!(r["result"]["resultType"], "input_required", "{r}");
    let state = r["result"]["requestState"].as_str().unwrap().to_string();
    let answer = json!({"inputResponses": {"input-1":
        {"role": "assistant", "content": {"type": "text", "text": "Paris"}, "model": "m"}},
        "requestState": state});
    let r = modern_call(&a.base_url(), answer.clone()).await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    let replay = modern_call(&b.base_url(), answer).await;
    assert_eq!(replay["error"]["code"], -32602, "{replay}");
    let message = replay["error"]["message"].as_str().unwrap();
    assert!(message.contains("already used"), "{message}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
