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
use serde_json::{Value, json};

use crate::mcp_http::SseReader;

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

// ---------------------------------------------------------------- the real binary

/// `kasm-mcp demo` as a child process (killed on drop), with the URLs from its banner.
pub(crate) struct Demo {
    child: Option<std::process::Child>,
    pub(crate) base: String,
    token: String,
}

impl Demo {
    pub(crate) fn start() -> Demo {
        use std::io::BufRead;
        let token = "ops-test-token".to_owned();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kasm-mcp"))
            .args([
                "demo",
                "--port",
                "0",
                "--start-delay-ms",
                "100",
                "--token",
                &token,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start kasm-mcp demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut base = None;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("banner line");
            if let Some(url) = line.strip_prefix("MCP endpoint (Streamable HTTP):") {
                base = url.trim().strip_suffix("/mcp").map(str::to_owned);
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        Demo {
            child: Some(child),
            base: base.expect("the banner names the MCP endpoint"),
            token,
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Wait for the process to exit (polling, so the test's runtime is not blocked).
    async fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                started.elapsed() < within,
                "the server did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Demo {
    /// SIGTERM first: the demo then shuts its simulator down, which kills each session's
    /// sandbox holder (`bwrap … sleep infinity`). A SIGKILL alone left them running for good,
    /// re-parented to init (five per run of the exec_text tests).
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while std::time::Instant::now() < deadline {
                    if !matches!(child.try_wait(), Ok(None)) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal Streamable HTTP client: JSON-RPC over POST, answers in JSON or SSE.
pub(crate) struct Modern {
    http: reqwest::Client,
    url: String,
    token: String,
    session: String,
}

impl Modern {
    pub(crate) async fn connect(demo: &Demo) -> Modern {
        let mut client = Modern {
            http: reqwest::Client::new(),
            url: format!("{}/mcp", demo.base),
            token: demo.token.clone(),
            session: String::new(),
        };
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "ops-test", "version": "0"}}});
        let response = client.post(&init).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        client.session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = client.post(&ack).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        client
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if !self.session.is_empty() {
            request = request
                .header("mcp-session-id", &self.session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        request
    }

    /// Call a tool; the JSON-RPC response (from a JSON body or the SSE stream).
    pub(crate) async fn call(&self, id: u64, tool: &str, arguments: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}});
        let response = self.post(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let sse = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream");
        if !sse {
            return response.json().await.unwrap();
        }
        let mut events = SseReader::new(response);
        loop {
            let message = events.next_json().await;
            if message["id"] == id {
                return message;
            }
        }
    }
}

pub(crate) fn structured(response: &Value) -> &Value {
    assert!(
        response["result"]["isError"] != true,
        "tool call failed: {response}"
    );
    &response["result"]["structuredContent"]
}

#[tokio::test]
async fn sigterm_finishes_the_running_call_ends_sse_cleanly_and_exits_0() {
    let mut demo = Demo::start();
    let modern = Modern::connect(&demo).await;
    let created = modern
        .call(2, "create_kasm_session", json!({"image_name": "Terminal"}))
        .await;
    let kasm_id = structured(&created)["kasm_id"].as_str().unwrap().to_owned();

    // A legacy HTTP+SSE client, initialized.
    let http = reqwest::Client::new();
    let stream = http
        .get(format!("{}/sse", demo.base))
        .bearer_auth(&demo.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut events = SseReader::new(stream);
    let endpoint = events.next().await.expect("endpoint event");
    assert_eq!(endpoint.event, "endpoint");
    let messages = format!("{}{}", demo.base, endpoint.data);
    let post = |body: Value| {
        http.post(&messages)
            .bearer_auth(&demo.token)
            .json(&body)
            .send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "ops-legacy", "version": "0"}}});
    assert_eq!(post(init).await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(events.next_json().await["id"], 1);
    let ack = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(ack).await.unwrap().status(), StatusCode::ACCEPTED);

    // Two slow calls in flight, one per transport.
    let call = |id: u64, word: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "execute_kasm_command",
            "arguments": {"kasm_id": kasm_id, "command": format!("sleep 3; echo {word}")}}})
    };
    assert_eq!(
        post(call(7, "legacy-done")).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let modern_call = tokio::spawn(async move {
        modern
            .call(
                8,
                "execute_kasm_command",
                json!({"kasm_id": kasm_id, "command": "sleep 3; echo modern-done"}),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let signalled = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();

    // While draining: not ready, and new work is refused (the listener stays open for the
    // relay's uploads of the running commands' output).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = readyz(&http, &demo.base).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["reason"], "the server is shutting down", "{body}");
    let refused = post(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The legacy call's answer arrives on its stream, then the stream ends cleanly (a broken
    // connection would panic in SseReader; `None` is the chunked terminator).
    let answer = events.next_json().await;
    assert_eq!(answer["id"], 7, "{answer}");
    let out = structured(&answer);
    assert_eq!(
        out["stdout"].as_str().unwrap().trim(),
        "legacy-done",
        "{answer}"
    );
    assert_eq!(out["exit_code"], 0, "{answer}");
    assert!(events.next().await.is_none(), "the SSE stream ends cleanly");

    let answer = modern_call.await.unwrap();
    let out = structured(&answer);
    assert_eq!(
        out["stdout"].as_str().unwrap().trim(),
        "modern-done",
        "{answer}"
    );
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "the calls really ran on after SIGTERM"
    );

    let status = demo.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let closed = http
        .get(format!("http://127.0.0.1:{}/healthz", demo.port()))
        .send()
        .await;
    assert!(closed.is_err(), "the listener is closed after exit");
}

fn healthcheck(port: u16, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kasm-mcp"))
        .arg("healthcheck")
        .args(extra)
        .env("MCP_SERVER_HOST", "0.0.0.0")
        .env("MCP_SERVER_PORT", port.to_string())
        .output()
        .unwrap()
}

#[tokio::test]
async fn healthcheck_subcommand_probes_a_running_server() {
    let demo = Demo::start();
    let port = demo.port();
    let ok = tokio::task::spawn_blocking(move || healthcheck(port, &[]))
        .await
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("\"status\":\"ok\""),
        "{ok:?}"
    );
    let ready = tokio::task::spawn_blocking(move || healthcheck(port, &["--ready"]))
        .await
        .unwrap();
    assert!(ready.status.success(), "{ready:?}");
    drop(demo);
    let down = tokio::task::spawn_blocking(move || healthcheck(port, &[]))
        .await
        .unwrap();
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("is kasm-mcp running"),
        "{down:?}"
    );
}

// ---------------------------------------------------------------- generated documents

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Replace the text between the BEGIN/END GENERATED markers of `doc` with `generated` when
/// UPDATE_SNAPSHOTS=1; otherwise fail unless it is already equal.
fn check_generated_section(doc: &str, generated: &str) {
    let path = repo_file(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let begin = text
        .find("<!-- BEGIN GENERATED")
        .expect("BEGIN GENERATED marker");
    let body_start = begin + text[begin..].find("-->\n").expect("end of the marker") + 4;
    let end = text
        .find("<!-- END GENERATED -->")
        .expect("END GENERATED marker");
    let current = &text[body_start..end];
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        let updated = format!("{}{generated}{}", &text[..body_start], &text[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        current == generated,
        "{doc} is out of date: run `UPDATE_SNAPSHOTS=1 cargo test --test it ops::` and commit it"
    );
}

#[test]
fn clients_md_is_generated_from_the_client_config_list() {
    let generated = kasm_mcp::launch::clients_markdown(
        "https://mcp.example.com/mcp",
        "https://mcp.example.com/sse",
        Some("<TOKEN>"),
    );
    check_generated_section("docs/CLIENTS.md", &generated);
}

// ---------------------------------------------------------------- metrics

/// The value of every series of `name` whose labels include all of `labels`, summed
/// (0 when there is none).
pub(crate) fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let has_all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            has_all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

pub(crate) async fn scrape(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A scripted session against the real binary; every series named in the issue must move.
#[tokio::test]
async fn metrics_move_in_a_scripted_session() {
    let demo = Demo::start();
    let http = reqwest::Client::new();
    let before = scrape(&http, &demo.base).await;
    let modern = Arc::new(Modern::connect(&demo).await);
    let created = modern
        .call(2, "create_kasm_session", json!({"image_name": "Terminal"}))
        .await;
    let kasm_id = structured(&created)["kasm_id"].as_str().unwrap().to_owned();

    // A command that terminates the wrapper running it: the wrapper's TERM trap removes its
    // work dir and exits without uploading, so no result ever comes and the server's relay wait
    // times out (after timeout_s + the relay grace); runs while the rest of the script goes on.
    // SIGTERM, not SIGKILL: in the simulator (as after `docker exec`) the wrapper is its PID
    // namespace's first process, and the kernel drops signals to it from inside the namespace
    // unless it handles them — it traps TERM, so TERM is delivered, while KILL would be ignored.
    let stranded = tokio::spawn({
        let (modern, kasm_id) = (modern.clone(), kasm_id.clone());
        async move {
            modern
                .call(
                    3,
                    "execute_kasm_command",
                    json!({"kasm_id": kasm_id, "timeout_s": 1,
                            // The wrapper that uploads: $PPID under `setsid` (the
                            // wrapper forks the command), its parent under GNU `timeout`.
                            "command": "p=$PPID; read -r c < /proc/$p/comm; if [ \"$c\" = timeout ]; then p=$(cut -d' ' -f4 /proc/$p/stat); fi; kill -TERM $p"}),
                )
                .await
        }
    });
    let ok = modern
        .call(
            4,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "echo hi"}),
        )
        .await;
    assert_eq!(structured(&ok)["stdout"], "hi\n");
    let as_root = modern
        .call(
            5,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "id", "user": "root"}),
        )
        .await;
    assert_eq!(as_root["result"]["isError"], true, "{as_root}");
    let outside = modern
        .call(
            6,
            "read_kasm_file",
            json!({"kasm_id": kasm_id, "file_path": "/etc/passwd"}),
        )
        .await;
    assert_eq!(outside["result"]["isError"], true, "{outside}");
    let unknown = modern.call(7, "no_such_tool", json!({})).await;
    assert!(
        unknown.get("error").is_some() || unknown["result"]["isError"] == true,
        "{unknown}"
    );

    // An open legacy stream is counted while it is open.
    let stream = http
        .get(format!("{}/sse", demo.base))
        .bearer_auth(&demo.token)
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(stream);
    assert_eq!(events.next().await.unwrap().event, "endpoint");
    let open = scrape(&http, &demo.base).await;
    assert!(
        series(&open, "kasm_mcp_open_streams", &[]) >= 1.0,
        "open stream not counted:\n{open}"
    );
    drop(events);

    // More tool calls at once than the per-principal burst (60): some are refused.
    let burst: Vec<_> = (0..80)
        .map(|i| {
            let modern = modern.clone();
            tokio::spawn(async move {
                let body = json!({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                                  "params": {"name": "get_available_workspaces", "arguments": {}}});
                modern.post(&body).send().await.unwrap().status()
            })
        })
        .collect();
    let mut refused = 0;
    for call in burst {
        if call.await.unwrap() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused > 0, "the burst was not rate limited");

    let stranded = tokio::time::timeout(Duration::from_secs(60), stranded)
        .await
        .expect("the stranded call ends at its relay deadline")
        .unwrap();
    assert_eq!(stranded["result"]["isError"], true, "{stranded}");

    let after = scrape(&http, &demo.base).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        let delta = series(&after, name, labels) - series(&before, name, labels);
        assert!(delta >= 1.0, "{name} {labels:?} did not move:\n{after}");
    };
    let exec = [("tool", "execute_kasm_command")];
    moved(
        "kasm_mcp_tool_calls_total",
        &[("tool", "execute_kasm_command"), ("outcome", "ok")],
    );
    moved(
        "kasm_mcp_tool_calls_total",
        &[("tool", "execute_kasm_command"), ("outcome", "tool_error")],
    );
    moved(
        "kasm_mcp_tool_calls_total",
        &[
            ("tool", "get_available_workspaces"),
            ("outcome", "rate_limited"),
        ],
    );
    moved("kasm_mcp_tool_call_duration_seconds_count", &exec);
    moved(
        "kasm_mcp_tool_call_duration_seconds_bucket",
        &[("tool", "execute_kasm_command"), ("le", "+Inf")],
    );
    moved(
        "kasm_mcp_kasm_requests_total",
        &[("endpoint", "request_kasm"), ("status", "200")],
    );
    moved(
        "kasm_mcp_kasm_requests_total",
        &[("endpoint", "exec_command_kasm")],
    );
    moved(
        "kasm_mcp_kasm_request_duration_seconds_count",
        &[("endpoint", "request_kasm")],
    );
    moved("kasm_mcp_policy_refusals_total", &[("rule", "exec_user")]);
    moved(
        "kasm_mcp_policy_refusals_total",
        &[("rule", "allowed_roots")],
    );
    moved("kasm_mcp_policy_refusals_total", &[("rule", "tool_access")]);
    moved("kasm_mcp_rate_limited_total", &[("scope", "principal")]);
    moved(
        "kasm_mcp_relay_wait_seconds_count",
        &[("outcome", "received")],
    );
    moved(
        "kasm_mcp_relay_wait_seconds_count",
        &[("outcome", "timeout")],
    );
    moved("kasm_mcp_relay_timeouts_total", &[]);
    moved(
        "kasm_mcp_http_requests_total",
        &[("route", "/mcp"), ("status", "200")],
    );
    moved(
        "kasm_mcp_http_requests_total",
        &[("route", "/mcp"), ("status", "429")],
    );
    assert!(
        series(&after, "kasm_mcp_open_streams", &[]) < series(&open, "kasm_mcp_open_streams", &[]),
        "the closed stream is no longer counted:\n{after}"
    );
}

#[test]
fn configuration_md_is_generated_from_the_config_types() {
    check_generated_section(
        "docs/CONFIGURATION.md",
        &kasm_mcp::config::reference::markdown(),
    );
}
