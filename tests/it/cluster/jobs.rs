//! Background command jobs across replicas: a job started on replica A is read (also by a
//! long-poll that output arriving wakes), listed and killed through replica B; another
//! principal sees nothing of it on either; a job that ended is visible on B;
//! `jobs.max_jobs_per_principal` counts the jobs of every replica; a foreground call on A
//! still gets progress with its latest line. Only the Redis job store connects them: with
//! the in-memory store B answers "no job … is known for you".

use std::time::{Duration, Instant};

use kasm_mcp::app::RunningApp;
use kasm_mcp::config::TokenConfig;
use kasm_mcp::tokens::sha256_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::Pair;
use crate::tasks::{processes_with, unique_sleep};

const OTHER: &str = "cluster-jobs-other-principal-token";

async fn pair() -> Pair {
    Pair::start_with(|c| {
        c.auth.tokens.push(TokenConfig {
            name: "other".into(),
            sha256: sha256_hex(OTHER).parse().unwrap(),
            role: "operator".parse().unwrap(),
            kasm_user_id: None,
        });
        c.jobs.max_jobs_per_principal = 2;
    })
    .await
}

/// A stateless `tools/call` on `app` as `token`: the `result` object.
async fn call_as(
    pair: &Pair,
    app: &RunningApp,
    token: &str,
    tool: &str,
    arguments: Value,
) -> Value {
    let r = pair
        .http
        .post(format!("{}/mcp", app.base_url()))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["result"].clone()
}

fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected an error: {result}");
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

async fn background(pair: &Pair, app: &RunningApp, kasm_id: &str, command: &str) -> String {
    let started = pair
        .call(
            app,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": command, "background": true, "timeout_s": 120}),
        )
        .await;
    assert_eq!(started["running"], true, "{started}");
    started["job_id"].as_str().unwrap().to_owned()
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_job_started_on_a_is_read_long_polled_listed_and_killed_on_b() {
    let pair = pair().await;
    let kasm_id = pair.session(&pair.a).await;
    let marker = unique_sleep(90);
    let job = background(
        &pair,
        &pair.a,
        &kasm_id,
        &format!("echo early; sleep 2; echo later; sleep {marker}"),
    )
    .await;
    eventually("the job's sleep to start", || {
        !processes_with(&marker).is_empty()
    })
    .await;

    // B long-polls past the first line: the call returns when "later" arrives (stored by the
    // collector on A, woken on B through Redis), not at once and not after wait_s.
    let first = pair
        .call(
            &pair.b,
            "get_command_output",
            json!({"job_id": job, "wait_s": 20}),
        )
        .await;
    assert_eq!(first["state"], "running", "{first}");
    assert_eq!(first["stdout"]["text"], "early\n", "{first}");
    let next = first["stdout"]["next"].as_u64().unwrap();
    let polled = Instant::now();
    let later = pair
        .call(
            &pair.b,
            "get_command_output",
            json!({"job_id": job, "since": next, "wait_s": 20}),
        )
        .await;
    let waited = polled.elapsed();
    assert_eq!(later["stdout"]["text"], "later\n", "{later}");
    assert_eq!(later["stdout"]["from"], 6, "{later}");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the output, not the 20 s wait: {waited:?}"
    );

    // Listed on B, with the spill paths the wrapper reported to A's collector.
    let listed = pair.call(&pair.b, "list_commands", json!({})).await;
    let mine: Vec<&Value> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["job_id"] == job.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(mine[0]["state"], "running");
    assert!(
        mine[0]["stdout_path"]
            .as_str()
            .unwrap()
            .ends_with("/stdout"),
        "{listed}"
    );

    // Another principal sees nothing of it on either replica: the same answer as for an
    // unknown id.
    let unknown = "0123456789abcdef0123456789abcdef";
    for app in [&pair.a, &pair.b] {
        for tool in ["get_command_output", "kill_command"] {
            let theirs =
                error_text(&call_as(&pair, app, OTHER, tool, json!({"job_id": job})).await);
            let none =
                error_text(&call_as(&pair, app, OTHER, tool, json!({"job_id": unknown})).await);
            assert_eq!(theirs.replace(&job, "ID"), none.replace(unknown, "ID"));
        }
        let listed = call_as(&pair, app, OTHER, "list_commands", json!({})).await;
        assert_eq!(listed["structuredContent"]["jobs"], json!([]), "{listed}");
    }

    // Killed through B: B has only the record (process group, session); the process is
    // gone and both replicas report the job killed.
    let killed = pair
        .call(
            &pair.b,
            "kill_command",
            json!({"job_id": job, "grace_s": 1}),
        )
        .await;
    assert_eq!(killed["signalled"], true, "{killed}");
    assert_eq!(killed["state"], "killed", "{killed}");
    eventually("the killed job's sleep to exit", || {
        processes_with(&marker).is_empty()
    })
    .await;
    let on_a = pair
        .call(&pair.a, "get_command_output", json!({"job_id": job}))
        .await;
    assert_eq!(on_a["state"], "killed", "{on_a}");
    assert_eq!(on_a["running"], false, "{on_a}");
}

#[tokio::test]
async fn ended_jobs_show_on_b_and_the_job_limit_counts_every_replica() {
    let pair = pair().await;
    let kasm_id = pair.session(&pair.a).await;

    // Ends on its own: B sees the exit code and the output A's collector stored.
    let quick = background(&pair, &pair.a, &kasm_id, "echo done; echo warn >&2; exit 4").await;
    let started = Instant::now();
    let ended = loop {
        let out = pair
            .call(
                &pair.b,
                "get_command_output",
                json!({"job_id": quick, "wait_s": 5}),
            )
            .await;
        if out["running"] == false {
            break out;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{out}");
    };
    assert_eq!(ended["state"], "exited", "{ended}");
    assert_eq!(ended["exit_code"], 4, "{ended}");
    assert_eq!(ended["stdout"]["text"], "done\n", "{ended}");
    assert_eq!(ended["stderr"]["text"], "warn\n", "{ended}");

    // The limit is 2 running jobs: one on A and one on B fill it for both.
    let marker = unique_sleep(90);
    let on_a = background(&pair, &pair.a, &kasm_id, &format!("sleep {marker}")).await;
    let on_b = background(&pair, &pair.b, &kasm_id, &format!("sleep {marker}")).await;
    for app in [&pair.a, &pair.b] {
        let refused = pair
            .call_raw(
                app,
                "execute_kasm_command",
                json!({"kasm_id": kasm_id, "command": "echo never", "background": true}),
            )
            .await
            .1;
        let text = error_text(&refused["result"]);
        assert!(
            text.contains("already run 2 commands") && text.contains("max_jobs_per_principal"),
            "{text}"
        );
    }
    // The ended job does not count and is still listed.
    let listed = pair.call(&pair.a, "list_commands", json!({})).await;
    let states: Vec<(String, String)> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["job_id"].as_str().unwrap().to_owned(),
                j["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (on_b.clone(), "running".to_owned()),
            (on_a.clone(), "running".to_owned()),
            (quick.clone(), "exited".to_owned()),
        ],
        "newest first"
    );

    // Destroying the session (on B) ends both running jobs, whichever replica started them.
    pair.call(&pair.b, "destroy_kasm_session", json!({"kasm_id": kasm_id}))
        .await;
    for job in [&on_a, &on_b] {
        let out = pair
            .call(&pair.a, "get_command_output", json!({"job_id": job}))
            .await;
        assert_eq!(out["state"], "session_ended", "{out}");
    }
}

#[tokio::test]
async fn a_foreground_call_on_a_gets_progress_from_output_relayed_through_b() {
    let pair = pair().await;
    let kasm_id = pair.session(&pair.a).await;
    let session = pair.initialize(&pair.a).await;
    let mut stream = pair
        .call_streaming(
            &pair.a,
            &session,
            11,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "echo step-one; sleep 3; echo step-two"}),
        )
        .await;
    let mut lines = Vec::new();
    let result = loop {
        let message = stream.next_json().await;
        if message.get("id") == Some(&json!(11)) {
            break message;
        }
        if message["method"] == "notifications/progress" {
            lines.push(
                message["params"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    };
    assert!(
        lines.iter().any(|l| l == "step-one"),
        "a progress message carried the first line before the result: {lines:?}"
    );
    assert_eq!(
        result["result"]["structuredContent"]["stdout"], "step-one\nstep-two\n",
        "{result}"
    );
}

/// Replica A on a runtime of its own, so that "A dies" can drop every task it runs (its
/// server, its job collectors, its inbox) at once, as a SIGKILL would.
struct Doomed {
    url: String,
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn start_doomed(config: kasm_mcp::config::Config, sim_url: String) -> Doomed {
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (kill, kill_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(async {
            let kasm = kasm_mcp::kasm::KasmClient::from_config(&config.kasm).unwrap();
            kasm_mcp::launch::assemble(
                config,
                std::sync::Arc::new(kasm),
                sim_url,
                kasm_mcp::launch::RelayPlan::ConfiguredOrSelf,
            )
            .unwrap()
            .app
            .spawn()
        });
        url_tx.send(app.base_url()).unwrap();
        let _ = kill_rx.recv();
        runtime.shutdown_background();
        drop(app);
    });
    let url = url_rx.recv().unwrap();
    Doomed { url, kill, thread }
}

/// A successful stateless tool call on the replica at `url`: its structured content.
async fn call_at(http: &reqwest::Client, url: &str, tool: &str, arguments: Value) -> Value {
    let r = http
        .post(format!("{url}/mcp"))
        .bearer_auth(super::TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{tool}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["result"]["isError"], false, "{tool}: {body}");
    body["result"]["structuredContent"].clone()
}

async fn ready(http: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

#[tokio::test]
async fn a_jobs_output_and_end_reach_b_after_the_replica_that_started_it_died() {
    let sim = kasm_mcp::simulator::Simulator::start(kasm_mcp::simulator::SimulatorConfig {
        start_delay: Duration::ZERO,
        ..Default::default()
    })
    .await
    .unwrap();
    let redis = super::RedisServer::start();
    let b = super::start(super::config(&sim, &redis, "replica-b"), &sim);
    // A's container uploads all go to B (A's relay URL), as through a load balancer.
    let mut a_config = super::config(&sim, &redis, "replica-a");
    a_config.server.relay_url = Some(b.base_url());
    let a = start_doomed(a_config, sim.base_url());
    let http = reqwest::Client::new();
    ready(&http, &a.url).await;
    ready(&http, &b.base_url()).await;
    let created = call_at(
        &http,
        &b.base_url(),
        "create_kasm_session",
        json!({"image_name": "Terminal"}),
    )
    .await;
    let kasm_id = created["kasm_id"].as_str().unwrap().to_owned();
    let started = call_at(
        &http,
        &a.url,
        "execute_kasm_command",
        json!({"kasm_id": kasm_id, "background": true, "timeout_s": 60,
               "command": "sleep 2; echo after-a-died; sleep 1; echo bye >&2; exit 3"}),
    )
    .await;
    let job = started["job_id"].as_str().unwrap().to_owned();
    // A dies with everything it ran (its collector of this job included).
    a.kill.send(()).unwrap();
    a.thread.join().unwrap();
    assert!(
        http.get(format!("{}/healthz", a.url)).send().await.is_err(),
        "A is gone"
    );

    // The chunks and the result land on B, which stores them: the job ends on B with its
    // output and exit status, although nobody is left on A to forward them to.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let ended = loop {
        let out = call_at(
            &http,
            &b.base_url(),
            "get_command_output",
            json!({"job_id": job, "wait_s": 5, "since": stdout.len(), "stderr_since": stderr.len()}),
        )
        .await;
        stdout.push_str(out["stdout"]["text"].as_str().unwrap());
        stderr.push_str(out["stderr"]["text"].as_str().unwrap());
        if out["running"] == false {
            break out;
        }
        assert!(Instant::now() < deadline, "the job never ended on B: {out}");
    };
    assert_eq!(ended["state"], "exited", "{ended}");
    assert_eq!(ended["exit_code"], 3, "{ended}");
    assert_eq!(
        (stdout.as_str(), stderr.as_str()),
        ("after-a-died\n", "bye\n")
    );
    drop((sim, redis));
}
