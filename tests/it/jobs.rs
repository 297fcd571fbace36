//! Background command jobs through the real tool catalog, the real relay and the simulator
//! (whose sessions share one pid namespace per session, as `docker exec`s of one container):
//! live progress lines, yielding to the background, background servers reachable from a
//! second exec and stopped by `kill_command`, 50 MB spilled completely, and privacy between
//! principals.

use std::time::{Duration, Instant};

use kasm_mcp::mcp::{CallContext, Notifier};
use kasm_mcp::policy::{Principal, Role};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::tools::{Rig, rig, text_of};

async fn ok_in(rig: &Rig, ctx: &CallContext, tool: &str, args: Value) -> Value {
    let out = rig.call_in(ctx, tool, args).await;
    assert!(!out.is_error, "{tool} failed: {}", text_of(&out));
    out.structured.expect("structured result")
}

/// Poll get_command_output until the job has ended.
async fn until_ended(rig: &Rig, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = rig
            .ok(
                "get_command_output",
                json!({"job_id": job_id, "wait_s": 5, "tail": 200}),
            )
            .await;
        if r["running"] == false {
            return r;
        }
        assert!(Instant::now() < deadline, "job never ended: {r}");
    }
}

/// Whether a host process whose command line contains `needle` is alive (the simulator's
/// sessions run on this machine).
fn host_process_alive(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        !zombie && text.contains(needle)
    })
}

#[tokio::test]
async fn foreground_progress_carries_the_latest_output_line_before_the_result() {
    let rig = rig().await;
    let id = rig.session().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = CallContext {
        principal: rig.principal.clone(),
        notifier: Notifier::new(tx, Some(json!("exec-1")), None),
        cancel: CancellationToken::new(),
        audit: Default::default(),
    };
    let r = ok_in(
        &rig,
        &ctx,
        "execute_kasm_command",
        json!({"kasm_id": id, "command": "sleep 2; echo a; sleep 2; echo b"}),
    )
    .await;
    assert_eq!(r["stdout"], "a\nb\n", "{r}");
    assert_eq!(r["exit_code"], 0);
    drop(ctx);
    let mut messages = Vec::new();
    while let Ok(n) = rx.try_recv() {
        if n["method"] == "notifications/progress" {
            messages.push(
                n["params"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    // Sent while the call ran, so before its result; `b` is printed at the very end.
    assert!(messages.iter().any(|m| m == "a"), "{messages:?}");
}

#[tokio::test]
async fn a_command_past_yield_after_s_returns_a_job_whose_rest_comes_later() {
    let rig = rig().await.with_deps(|d| d.jobs_config.yield_after_s = 2);
    let id = rig.session().await;
    let started = Instant::now();
    let r = rig
        .exec(
            &id,
            "echo first; sleep 5; echo second >&2; echo third; exit 7",
            json!({}),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(5), "it yielded");
    assert_eq!(r["running"], true, "{r}");
    assert_eq!(r["stdout"], "first\n", "{r}");
    assert!(r.get("exit_code").is_none(), "{r}");
    let job = r["job_id"].as_str().unwrap().to_string();
    assert!(
        r["stdout_path"].as_str().unwrap().ends_with("/stdout"),
        "{r}"
    );

    let later = rig
        .ok(
            "get_command_output",
            json!({"job_id": job, "since": 6, "stderr_since": 0, "wait_s": 20}),
        )
        .await;
    let done = if later["running"] == true {
        until_ended(&rig, &job).await
    } else {
        later.clone()
    };
    assert_eq!(done["state"], "exited", "{done}");
    assert_eq!(done["exit_code"], 7, "{done}");
    let rest = rig
        .ok(
            "get_command_output",
            json!({"job_id": job, "since": 6, "stderr_since": 0}),
        )
        .await;
    assert_eq!(rest["stdout"]["text"], "third\n", "{rest}");
    assert_eq!(rest["stdout"]["from"], 6);
    assert_eq!(rest["stdout"]["next"], 12);
    assert_eq!(rest["stderr"]["text"], "second\n", "{rest}");
    // The spill file has the whole stdout.
    let cat = rig
        .exec(
            &id,
            &format!("cat {}", r["stdout_path"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(cat["stdout"], "first\nthird\n");
}

#[tokio::test]
async fn a_background_http_server_is_listed_reachable_and_killed() {
    let rig = rig().await;
    let id = rig.session().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = format!("python3 -m http.server {port} --bind 127.0.0.1");
    let started = Instant::now();
    let r = rig.exec(&id, &server, json!({"background": true})).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "returned at once"
    );
    assert_eq!(r["running"], true, "{r}");
    let job = r["job_id"].as_str().unwrap().to_string();

    let listed = rig.ok("list_commands", json!({})).await;
    let mine: Vec<&Value> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["job_id"] == job.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(mine[0]["state"], "running");
    assert_eq!(mine[0]["kasm_id"], id.as_str());

    // A second exec in the same session reaches it.
    let probe = format!(
        "for i in $(seq 50); do c=$(curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/) && [ \"$c\" = 200 ] && break; sleep 0.2; done; echo \"$c\"; pgrep -f 'http[.]server {port}' >/dev/null && echo visible"
    );
    let reached = rig.exec(&id, &probe, json!({})).await;
    assert_eq!(reached["stdout"], "200\nvisible\n", "{reached}");
    assert!(host_process_alive(&format!("http.server {port}")));

    let killed = rig
        .ok("kill_command", json!({"job_id": job, "grace_s": 2}))
        .await;
    assert_eq!(killed["signalled"], true, "{killed}");
    assert_eq!(killed["state"], "killed", "{killed}");
    let after = format!(
        "curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/; echo; pgrep -f 'http[.]server {port}' || echo gone"
    );
    let after = rig.exec(&id, &after, json!({})).await;
    assert_eq!(after["stdout"], "000\ngone\n", "{after}");
    assert!(!host_process_alive(&format!("http.server {port}")));
    let listed = rig.ok("list_commands", json!({"kasm_id": id})).await;
    let state = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_id"] == job.as_str())
        .map(|j| j["state"].clone());
    assert_eq!(state, Some(json!("killed")), "{listed}");
}

#[tokio::test]
async fn fifty_megabytes_of_background_output_are_all_in_the_spill_file() {
    let rig = rig().await;
    let id = rig.session().await;
    let generate = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 50000000";
    let r = rig.exec(&id, generate, json!({"background": true})).await;
    let job = r["job_id"].as_str().unwrap().to_string();
    let path = r["stdout_path"].as_str().unwrap().to_string();
    let done = until_ended(&rig, &job).await;
    assert_eq!(done["exit_code"], 0, "{done}");
    assert_eq!(done["stdout"]["total"], 50_000_000, "{done}");
    // The server held only its window; the file has everything.
    let all = rig
        .ok("get_command_output", json!({"job_id": job, "since": 0}))
        .await;
    let window = rig.deps_window_bytes();
    assert!(
        all["stdout"]["skipped"].as_u64().unwrap() >= 50_000_000 - window as u64,
        "{}",
        all["stdout"]["skipped"]
    );
    assert!(all["stdout"]["text"].as_str().unwrap().len() <= window);
    let sums = rig
        .exec(
            &id,
            &format!("sha256sum < {path}; {generate} | sha256sum; wc -c < {path}"),
            json!({}),
        )
        .await;
    let lines: Vec<&str> = sums["stdout"].as_str().unwrap().lines().collect();
    assert_eq!(lines.len(), 3, "{sums}");
    assert_eq!(lines[0], lines[1], "{sums}");
    assert_eq!(lines[2].trim(), "50000000");
}

#[tokio::test]
async fn another_principal_can_neither_see_read_nor_kill_a_job() {
    let rig = rig().await;
    let id = rig.session().await;
    let r = rig.exec(&id, "sleep 30", json!({"background": true})).await;
    let job = r["job_id"].as_str().unwrap().to_string();
    let mallory = CallContext {
        principal: Principal {
            name: "mallory".into(),
            role: Role::Admin,
            kasm_user_id: rig.principal.kasm_user_id.clone(),
            oauth: None,
        },
        ..rig.context()
    };
    let unknown = "0123456789abcdef0123456789abcdef";
    for tool in ["get_command_output", "kill_command"] {
        let theirs = rig.call_in(&mallory, tool, json!({"job_id": job})).await;
        let none = rig
            .call_in(&mallory, tool, json!({"job_id": unknown}))
            .await;
        assert!(theirs.is_error && none.is_error, "{tool}");
        assert_eq!(
            text_of(&theirs).replace(&job, "ID"),
            text_of(&none).replace(unknown, "ID"),
            "{tool}: the same answer as for an unknown job"
        );
    }
    let listed = ok_in(&rig, &mallory, "list_commands", json!({})).await;
    assert_eq!(listed["jobs"], json!([]), "{listed}");
    // Still running for its owner.
    let mine = rig.ok("get_command_output", json!({"job_id": job})).await;
    assert_eq!(mine["state"], "running", "{mine}");
    // Destroying the session ends it.
    rig.ok("destroy_kasm_session", json!({"kasm_id": id})).await;
    let mine = rig.ok("get_command_output", json!({"job_id": job})).await;
    assert_eq!(mine["state"], "session_ended", "{mine}");
}
