//! Item 7 (server side): a command in principal B's session floods `/relay/…` with unknown
//! tickets while principal A runs `echo hello-from-A`; A still gets its result. Before, the
//! relay shared the per-IP budget with everything else from the same address, so A's result
//! upload got 429 and was lost. Needs the bwrap simulator (real session processes).

use std::sync::Arc;
use std::time::Duration;

use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::kasm::KasmClient;
use kasm_mcp::launch::{RelayPlan, assemble};
use kasm_mcp::simulator::{SandboxMode, Simulator, SimulatorConfig};
use kasm_mcp::tokens::sha256_hex;
use serde_json::{Value, json};

const TOKEN_A: &str = "relay-flood-a";
const TOKEN_B: &str = "relay-flood-b";

async fn call(http: &reqwest::Client, url: &str, token: &str, tool: &str, args: Value) -> Value {
    let r = http
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": args}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{tool}");
    let body: Value = r.json().await.unwrap();
    body["result"].clone()
}

fn stdout(result: &Value) -> String {
    result["structuredContent"]["stdout"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_flood_from_one_session_does_not_lose_another_principals_result() {
    let sim = Simulator::start(SimulatorConfig {
        sandbox: SandboxMode::Bwrap,
        start_delay: Duration::from_millis(100),
        max_kasms_per_user: 3,
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
    config.auth.tokens = [("a", TOKEN_A), ("b", TOKEN_B)]
        .into_iter()
        .map(|(name, token)| TokenConfig {
            name: name.into(),
            sha256: sha256_hex(token).parse().unwrap(),
            role: "admin".parse().unwrap(),
            kasm_user_id: None,
        })
        .collect();
    let kasm = KasmClient::from_config(&config.kasm).unwrap();
    let assembled = assemble(
        config,
        Arc::new(kasm),
        sim.base_url(),
        RelayPlan::ConfiguredOrSelf,
    )
    .unwrap();
    let app = assembled.app.spawn();
    let base = app.base_url();
    let mcp = format!("{base}/mcp");
    let http = reqwest::Client::new();

    let mut sessions = Vec::new();
    for token in [TOKEN_A, TOKEN_B] {
        let created = call(
            &http,
            &mcp,
            token,
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        )
        .await;
        assert_eq!(created["isError"], false, "{created}");
        sessions.push(
            created["structuredContent"]["kasm_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // B: six parallel curl loops POSTing to unknown tickets, counting the answers.
    let flood = format!(
        "for j in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{{http_code}}\\n' -X POST '{base}/relay/x[1-1500]' & done | sort | uniq -c"
    );
    let flood_task = {
        let (http, mcp, kasm_id) = (http.clone(), mcp.clone(), sessions[1].clone());
        tokio::spawn(async move {
            call(
                &http,
                &mcp,
                TOKEN_B,
                "execute_kasm_command",
                json!({"kasm_id": kasm_id, "command": flood, "timeout_s": 120}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A, while the flood runs (several times, to overlap it).
    for round in 0..3 {
        let result = call(
            &http,
            &mcp,
            TOKEN_A,
            "execute_kasm_command",
            json!({"kasm_id": sessions[0], "command": "echo hello-from-A"}),
        )
        .await;
        assert_eq!(result["isError"], false, "round {round}: {result}");
        assert_eq!(stdout(&result), "hello-from-A\n", "round {round}: {result}");
    }
    assert!(
        !flood_task.is_finished(),
        "the flood was still running while A's calls were served"
    );
    let flooded = flood_task.await.unwrap();
    let counts = stdout(&flooded);
    eprintln!("flood answers (count status):\n{counts}");
    let count_of = |status: &str| -> u64 {
        counts
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let n = parts.next()?.parse::<u64>().ok()?;
                (parts.next()? == status).then_some(n)
            })
            .sum()
    };
    assert!(count_of("429") > 1000, "the flood was limited: {counts}");
    assert!(
        count_of("404") > 0,
        "unknown tickets get 404 within the budget: {counts}"
    );
    app.stop().await.unwrap();
    sim.shutdown().await;
}
