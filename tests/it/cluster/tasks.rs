//! MCP tasks across replicas: a task created on replica A is read, awaited, listed and
//! cancelled through replica B (both eras). Only the Redis task store connects them: with the
//! in-memory store, B answers "task not found".

use std::time::{Duration, Instant};

use kasm_mcp::app::RunningApp;
use kasm_mcp::config::TokenConfig;
use kasm_mcp::tokens::sha256_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Pair, TOKEN};
use crate::tasks::{processes_with, read_answer, unique_sleep};

const OTHER: &str = "cluster-other-principal-token";
const EXT: &str = "io.modelcontextprotocol/tasks";
const WAIT: Duration = Duration::from_secs(30);

async fn pair() -> Pair {
    Pair::start_with(|c| {
        c.auth.tokens.push(TokenConfig {
            name: "other".into(),
            sha256: sha256_hex(OTHER).parse().unwrap(),
            role: "operator".parse().unwrap(),
            kasm_user_id: None,
        });
    })
    .await
}

/// One 2025-11-25 request in `session` (created on any replica) as `token`: the answer.
async fn legacy(
    pair: &Pair,
    app: &RunningApp,
    token: &str,
    session: &str,
    method: &str,
    params: Value,
) -> Value {
    let r = pair
        .http
        .post(format!("{}/mcp", app.base_url()))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let (status, answer, _) = read_answer(r, 5).await;
    assert_eq!(status, StatusCode::OK, "{method}: {answer}");
    answer
}

/// One stateless 2026-07-28 request that declares the tasks extension: the answer.
async fn modern(
    pair: &Pair,
    app: &RunningApp,
    token: &str,
    method: &str,
    mut params: Value,
) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXT: {}}},
    });
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    let r = pair
        .http
        .post(format!("{}/mcp", app.base_url()))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .header("mcp-name", name)
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let (status, answer, _) = read_answer(r, 9).await;
    assert_eq!(status, StatusCode::OK, "{method}: {answer}");
    answer
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_2025_11_25_task_created_on_a_is_read_awaited_and_cancelled_through_b() {
    let pair = pair().await;
    let kasm_id = pair.session(&pair.a).await;
    let session = pair.initialize(&pair.a).await;
    let on = |app, method, params| legacy(&pair, app, TOKEN, &session, method, params);

    // Created on A, the command sleeps a little so B sees it working first.
    let created = on(
        &pair.a,
        "tools/call",
        json!({"name": "execute_kasm_command",
               "arguments": {"kasm_id": kasm_id, "command": "sleep 1; echo ran-on-a"},
               "task": {"ttl": 120_000}}),
    )
    .await;
    let task_id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let seen = on(&pair.b, "tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(
        seen["result"]["status"], "working",
        "B reads A's task: {seen}"
    );
    let listed = on(&pair.b, "tasks/list", json!({})).await;
    assert!(
        listed["result"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["taskId"] == task_id.as_str()),
        "B lists A's task: {listed}"
    );
    // tasks/result on B waits for the call running on A and answers its result.
    let answer = on(&pair.b, "tasks/result", json!({"taskId": task_id})).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["stdout"],
        "ran-on-a\n"
    );
    let done = on(&pair.b, "tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");

    // Another principal on B finds nothing, cannot cancel, lists nothing.
    let other_session = {
        let r = pair
            .http
            .post(format!("{}/mcp", pair.b.base_url()))
            .bearer_auth(OTHER)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "other", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        r.headers()["mcp-session-id"].to_str().unwrap().to_owned()
    };

    // A long command on A, cancelled through B: the process is gone.
    let marker = unique_sleep(60);
    let created = on(
        &pair.a,
        "tools/call",
        json!({"name": "execute_kasm_command",
               "arguments": {"kasm_id": kasm_id, "command": format!("sleep {marker}"), "timeout_s": 120},
               "task": {}}),
    )
    .await;
    let task_id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    eventually(&format!("sleep {marker} to start"), || {
        !processes_with(&marker).is_empty()
    })
    .await;
    for method in ["tasks/get", "tasks/cancel", "tasks/result"] {
        let refused = legacy(
            &pair,
            &pair.b,
            OTHER,
            &other_session,
            method,
            json!({"taskId": task_id}),
        )
        .await;
        assert_eq!(refused["error"]["code"], -32602, "{method}: {refused}");
    }
    let listed = legacy(
        &pair,
        &pair.b,
        OTHER,
        &other_session,
        "tasks/list",
        json!({}),
    )
    .await;
    assert_eq!(listed["result"]["tasks"], json!([]), "{listed}");
    assert!(
        !processes_with(&marker).is_empty(),
        "the other principal's cancel did nothing"
    );

    let cancelled = on(&pair.b, "tasks/cancel", json!({"taskId": task_id})).await;
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    // The server's decision: A's runner saw the cancel and killed the command.
    eventually(&format!("sleep {marker} to be killed by A"), || {
        processes_with(&marker).is_empty()
    })
    .await;
    let status = on(&pair.a, "tasks/get", json!({"taskId": task_id})).await;
    assert_eq!(status["result"]["status"], "cancelled", "{status}");
    pair.sim.shutdown().await;
}

#[tokio::test]
async fn a_2026_07_28_task_created_on_a_completes_on_b_and_is_cancelled_through_b() {
    let pair = pair().await;
    let kasm_id = pair.session(&pair.a).await;
    let created = modern(
        &pair,
        &pair.a,
        TOKEN,
        "tools/call",
        json!({"name": "execute_kasm_command",
               "arguments": {"kasm_id": kasm_id, "command": "sleep 1; echo modern-on-a"}}),
    )
    .await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let task_id = created["result"]["taskId"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let done = loop {
        let now = modern(
            &pair,
            &pair.b,
            TOKEN,
            "tasks/get",
            json!({"taskId": task_id}),
        )
        .await;
        assert!(now.get("error").is_none(), "B reads A's task: {now}");
        if now["result"]["status"] != "working" {
            break now;
        }
        assert!(started.elapsed() < WAIT, "the task never ended: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["stdout"],
        "modern-on-a\n"
    );
    let foreign = modern(
        &pair,
        &pair.b,
        OTHER,
        "tasks/get",
        json!({"taskId": task_id}),
    )
    .await;
    assert_eq!(foreign["error"]["code"], -32602, "{foreign}");

    let marker = unique_sleep(60);
    let created = modern(
        &pair,
        &pair.a,
        TOKEN,
        "tools/call",
        json!({"name": "execute_kasm_command",
               "arguments": {"kasm_id": kasm_id, "command": format!("sleep {marker}"), "timeout_s": 120}}),
    )
    .await;
    let task_id = created["result"]["taskId"].as_str().unwrap().to_owned();
    eventually(&format!("sleep {marker} to start"), || {
        !processes_with(&marker).is_empty()
    })
    .await;
    let ack = modern(
        &pair,
        &pair.b,
        TOKEN,
        "tasks/cancel",
        json!({"taskId": task_id}),
    )
    .await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "{ack}");
    eventually(&format!("sleep {marker} to be killed by A"), || {
        processes_with(&marker).is_empty()
    })
    .await;
    let status = modern(
        &pair,
        &pair.a,
        TOKEN,
        "tasks/get",
        json!({"taskId": task_id}),
    )
    .await;
    assert_eq!(status["result"]["status"], "cancelled", "{status}");
    pair.sim.shutdown().await;
}
