//! The floor proxy (`kasm-mcp-load floor-proxy`, started by the `floor` phase as a child
//! process of its own): the least any server in front of Kasm must do per call, built from
//! the product's crates. One axum route takes a small JSON POST (`kasm_id`, `user_id`), makes
//! one `get_kasm_status` call to Kasm with a reqwest client configured as `src/kasm` builds
//! its own (timeouts, pool idle timeout, user agent), reads the session's status from the
//! answer and returns a small JSON object. No MCP, no auth, no middleware, no logging: what
//! kasm-mcp costs beyond this is the price of what it does on top.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::{Json, Router, routing::post};
use serde::{Deserialize, Serialize};

/// What the proxy needs per call.
struct Floor {
    http: reqwest::Client,
    /// `{backend}/api/public/get_kasm_status`, parsed once.
    status_url: reqwest::Url,
    api_key: String,
    api_secret: String,
}

/// The request the proxy accepts.
#[derive(Deserialize)]
struct StatusRequest {
    kasm_id: String,
    user_id: String,
}

/// The body sent to Kasm.
#[derive(Serialize)]
struct KasmBody<'a> {
    kasm_id: &'a str,
    user_id: &'a str,
    api_key: &'a str,
    api_key_secret: &'a str,
    skip_agent_check: bool,
}

/// The parts of Kasm's answer the proxy reads (the rest is skipped by the parser).
#[derive(Deserialize)]
struct KasmAnswer {
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    operational_status: Option<String>,
    #[serde(default)]
    kasm: Option<KasmPart>,
}

#[derive(Deserialize)]
struct KasmPart {
    #[serde(default)]
    operational_status: Option<String>,
}

/// The proxy's answer.
#[derive(Serialize)]
struct StatusAnswer {
    kasm_id: String,
    status: String,
}

/// The reqwest client as `src/kasm/http.rs` configures it for the default `[kasm]` settings.
fn kasm_like_client() -> Result<reqwest::Client, String> {
    let options = kasm_mcp::kasm::ClientOptions::default();
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(options.user_agent)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn bad_gateway(message: String) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

async fn status(State(floor): State<Arc<Floor>>, Json(req): Json<StatusRequest>) -> Response {
    let body = KasmBody {
        kasm_id: &req.kasm_id,
        user_id: &req.user_id,
        api_key: &floor.api_key,
        api_key_secret: &floor.api_secret,
        skip_agent_check: false,
    };
    let sent = floor
        .http
        .post(floor.status_url.clone())
        .json(&body)
        .send()
        .await;
    let bytes = match sent {
        Ok(response) => match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return bad_gateway(e.to_string()),
        },
        Err(e) => return bad_gateway(e.to_string()),
    };
    let answer: KasmAnswer = match serde_json::from_slice(&bytes) {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(format!("Kasm's answer is not JSON: {e}")),
    };
    if let Some(error) = answer.error_message {
        return bad_gateway(error);
    }
    let status = answer
        .kasm
        .and_then(|k| k.operational_status)
        .or(answer.operational_status)
        .unwrap_or_else(|| "running".to_string());
    Json(StatusAnswer {
        kasm_id: req.kasm_id,
        status,
    })
    .into_response()
}

/// Serve the floor proxy on a free loopback port in front of `backend` (the Kasm base URL),
/// with the credentials from `KASM_API_KEY` / `KASM_API_SECRET`; print `listening=ADDR` on
/// stdout once bound, then serve until killed.
pub async fn serve(backend: String) -> Result<(), String> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let status_url = format!(
        "{}/api/public/get_kasm_status",
        backend.trim_end_matches('/')
    )
    .parse::<reqwest::Url>()
    .map_err(|e| format!("--backend {backend:?} is not a URL: {e}"))?;
    let floor = Arc::new(Floor {
        http: kasm_like_client()?,
        status_url,
        api_key: env("KASM_API_KEY")?,
        api_secret: env("KASM_API_SECRET")?,
    });
    let app = Router::new()
        .route("/status", post(status))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the floor proxy: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening={addr}");
    // As kasm-mcp's accept loop does (src/http/serve.rs): no Nagle delay on answers.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("the floor proxy stopped: {e}"))
}
