//! How many Kasm requests a tool call makes: the real server (`launch::assemble`, bound on
//! loopback) in front of the simulator, whose per-endpoint request counter is the witness.
//! Once a session's owner is known, `get_session_status` is exactly one `get_kasm_status`;
//! no session-scoped tool lists sessions (`get_kasms`, `get_user_kasms`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::kasm::{ClientOptions, KasmApi, KasmClient, NewUser, RequestKasm};
use kasm_mcp::launch::{RelayPlan, assemble};
use kasm_mcp::simulator::{Simulator, SimulatorConfig};
use kasm_mcp::tokens::sha256_hex;
use serde_json::{Value, json};

const ADMIN: &str = "round-trips-admin";
const OPERATOR: &str = "round-trips-operator";

struct Rig {
    sim: Simulator,
    kasm: KasmClient,
    app: kasm_mcp::app::RunningApp,
    http: reqwest::Client,
}

fn token(name: &str, secret: &str, role: &str) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        sha256: sha256_hex(secret).parse().expect("a digest"),
        role: role.parse().expect("a role"),
        kasm_user_id: None,
    }
}

impl Rig {
    async fn start() -> Rig {
        let sim = Simulator::start(SimulatorConfig {
            start_delay: Duration::ZERO,
            max_kasms_per_user: 8,
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let mut config = Config::default();
        config.server.port = 0;
        config.auth.tokens = vec![
            token("admin", ADMIN, "admin"),
            token("operator", OPERATOR, "operator"),
        ];
        config.kasm.api_url = Some(sim.base_url());
        config.kasm.api_key = Some(sim.api_key().to_owned().into());
        config.kasm.api_secret = Some(sim.api_secret().to_owned().into());
        config.kasm.user_id = Some(sim.default_user_id());
        let server_kasm = KasmClient::from_config(&config.kasm).unwrap();
        let assembled = assemble(
            config,
            Arc::new(server_kasm),
            sim.base_url(),
            RelayPlan::ConfiguredOrSelf,
        )
        .unwrap();
        let kasm = KasmClient::new(
            &sim.base_url(),
            sim.api_key().to_owned().into(),
            sim.api_secret().to_owned().into(),
            ClientOptions::default(),
        )
        .unwrap();
        Rig {
            sim,
            kasm,
            app: assembled.app.spawn(),
            http: reqwest::Client::new(),
        }
    }

    /// One stateless `tools/call`; returns the JSON-RPC `result`.
    async fn call(&self, token: &str, tool: &str, arguments: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/mcp", self.app.base_url()))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{tool}");
        let body: Value = resp.json().await.unwrap();
        body.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{tool}: no result in {body}"))
    }

    /// The Kasm requests `work` made, per endpoint.
    async fn requests_of<F: std::future::Future<Output = Value>>(
        &self,
        work: F,
    ) -> (Value, BTreeMap<String, u64>) {
        let before = self.sim.request_counts();
        let result = work.await;
        let after = self.sim.request_counts();
        let delta = after
            .into_iter()
            .filter_map(|(endpoint, n)| {
                let added = n - before.get(&endpoint).copied().unwrap_or(0);
                (added > 0).then_some((endpoint, added))
            })
            .collect();
        (result, delta)
    }

    async fn status_requests(&self, token: &str, kasm_id: &str) -> BTreeMap<String, u64> {
        let (result, requests) = self
            .requests_of(self.call(token, "get_session_status", json!({"kasm_id": kasm_id})))
            .await;
        assert_eq!(result["isError"], false, "{result}");
        assert_eq!(result["structuredContent"]["status"], "running", "{result}");
        assert_eq!(result["structuredContent"]["kasm_id"], kasm_id, "{result}");
        requests
    }

    /// A running session of `user` created directly in Kasm, not through the server.
    async fn session_of(&self, user: &str) -> String {
        let created = self
            .kasm
            .request_kasm(&RequestKasm {
                user_id: Some(user.to_string()),
                ..RequestKasm::default()
            })
            .await
            .unwrap();
        created.kasm_id
    }
}

fn only_status(requests: &BTreeMap<String, u64>, n: u64) -> bool {
    requests.len() == 1 && requests.get("get_kasm_status") == Some(&n)
}

#[tokio::test]
async fn get_session_status_is_one_kasm_request_once_the_owner_is_known() {
    let rig = Rig::start().await;

    // Created through the server: the owner is known from the start.
    let created = rig
        .call(
            OPERATOR,
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        )
        .await;
    assert_eq!(created["isError"], false, "{created}");
    let mine = created["structuredContent"]["kasm_id"]
        .as_str()
        .unwrap()
        .to_string();
    for token in [OPERATOR, ADMIN, OPERATOR] {
        let requests = rig.status_requests(token, &mine).await;
        assert!(only_status(&requests, 1), "{token}: {requests:?}");
    }

    // Created behind the server's back: the first call is itself the single lookup.
    let direct = rig.session_of(&rig.sim.default_user_id()).await;
    for token in [OPERATOR, OPERATOR, ADMIN] {
        let requests = rig.status_requests(token, &direct).await;
        assert!(only_status(&requests, 1), "{token}: {requests:?}");
    }

    // Another user's session: an admin's first call also asks Kasm for the owner (two
    // status requests), then one; an operator is refused without any Kasm request once the
    // owner is known, and never lists sessions.
    let other = rig
        .kasm
        .create_user(&NewUser {
            username: "someone-else@example.com".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let foreign = rig.session_of(&other.user_id).await;
    let first = rig.status_requests(ADMIN, &foreign).await;
    assert!(only_status(&first, 2), "{first:?}");
    for _ in 0..3 {
        let requests = rig.status_requests(ADMIN, &foreign).await;
        assert!(only_status(&requests, 1), "{requests:?}");
    }
    let (refused, requests) = rig
        .requests_of(rig.call(OPERATOR, "get_session_status", json!({"kasm_id": foreign})))
        .await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("is not yours"),
        "{refused}"
    );
    assert!(requests.is_empty(), "{requests:?}");

    // Destroyed: the cached owner goes, and the next call says so after one request.
    let destroyed = rig
        .call(OPERATOR, "destroy_kasm_session", json!({"kasm_id": mine}))
        .await;
    assert_eq!(destroyed["isError"], false, "{destroyed}");
    let (gone, requests) = rig
        .requests_of(rig.call(OPERATOR, "get_session_status", json!({"kasm_id": mine})))
        .await;
    assert_eq!(gone["isError"], true, "{gone}");
    assert!(only_status(&requests, 1), "{requests:?}");

    rig.app.stop().await.unwrap();
    rig.sim.shutdown().await;
}

/// The arguments to call each session-scoped tool with (beyond `kasm_id`).
fn session_tool_args(tool: &str) -> Option<Value> {
    Some(match tool {
        "get_session_status"
        | "keepalive_kasm_session"
        | "get_session_screenshot"
        | "get_session_share_link"
        | "get_session_frame_stats"
        | "get_session_bottleneck_stats"
        | "get_session_recordings"
        | "pause_kasm_session"
        | "resume_kasm_session"
        | "destroy_kasm_session"
        | "desktop_screenshot"
        | "desktop_windows" => json!({}),
        "desktop_action" => json!({"action": "cursor_position"}),
        "execute_kasm_command" => json!({"command": "true"}),
        "read_kasm_file" => json!({"file_path": "/home/kasm-user/round-trip.txt"}),
        "write_kasm_file" => {
            json!({"file_path": "/home/kasm-user/round-trip.txt", "content": "hi"})
        }
        "list_kasm_files" => json!({"path": "/home/kasm-user"}),
        _ => return None,
    })
}

#[tokio::test]
async fn no_session_scoped_tool_lists_sessions() {
    let rig = Rig::start().await;
    let listed = rig
        .http
        .post(format!("{}/mcp", rig.app.base_url()))
        .bearer_auth(ADMIN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut scoped: Vec<String> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["inputSchema"]["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == "kasm_id"))
        })
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(scoped.len() >= 14, "{scoped:?}");
    // Write before read; destroy last, after resume (pause first, so resume has something to do).
    scoped.sort_by_key(|t| match t.as_str() {
        "write_kasm_file" => -1,
        "pause_kasm_session" => 1,
        "resume_kasm_session" => 2,
        "destroy_kasm_session" => 3,
        _ => 0,
    });

    for token in [OPERATOR, ADMIN] {
        // One session created through the server and one created behind its back.
        let created = rig
            .call(
                token,
                "create_kasm_session",
                json!({"image_name": "Terminal"}),
            )
            .await;
        assert_eq!(created["isError"], false, "{created}");
        let through = created["structuredContent"]["kasm_id"]
            .as_str()
            .unwrap()
            .to_string();
        let direct = rig.session_of(&rig.sim.default_user_id()).await;
        for kasm_id in [through, direct] {
            for tool in &scoped {
                let mut arguments = session_tool_args(tool)
                    .unwrap_or_else(|| panic!("add {tool} to session_tool_args"));
                arguments["kasm_id"] = json!(kasm_id);
                if tool == "resume_kasm_session" {
                    // Pausing takes a moment in the simulator; resume works once it is paused.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let (result, requests) = rig.requests_of(rig.call(token, tool, arguments)).await;
                let text = result["content"][0]["text"].as_str().unwrap_or_default();
                assert!(
                    !text.contains("does not exist or is not yours"),
                    "{token} {tool}: {result}"
                );
                let may_fail = [
                    "get_session_share_link",  // needs enable_sharing at creation
                    "get_session_frame_stats", // needs a connected browser
                    "get_session_bottleneck_stats",
                ];
                if !may_fail.contains(&tool.as_str()) {
                    assert_eq!(result["isError"], false, "{token} {tool}: {result}");
                }
                for listing in ["get_kasms", "get_user_kasms"] {
                    assert!(
                        !requests.contains_key(listing),
                        "{token} {tool} called {listing}: {requests:?}"
                    );
                }
                assert!(
                    requests.get("get_kasm_status").copied().unwrap_or(0) <= 1,
                    "{token} {tool}: {requests:?}"
                );
            }
        }
    }
    rig.app.stop().await.unwrap();
    rig.sim.shutdown().await;
}
