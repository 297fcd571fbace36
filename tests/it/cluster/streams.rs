//! Stream tickets across replicas: replica A's relay URL is B's, so every chunk the wrapper
//! streams for a command running on A (its START record with the process group id, its
//! output) reaches B, which checks the ticket in Redis and forwards the chunk to A's inbox.
//! Without that, B answers 404 and A never learns the output or the process group.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Pair;
use crate::tasks::{processes_with, unique_sleep};

#[tokio::test]
async fn a_foreground_exec_on_a_whose_chunks_reach_b_shows_its_output_line_as_progress() {
    let pair = Pair::start().await;
    let kasm_id = pair.session(&pair.a).await;
    let session = pair.initialize(&pair.a).await;
    let mut stream = pair
        .call_streaming(
            &pair.a,
            &session,
            3,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "sleep 2; echo line-via-b; sleep 3; echo end"}),
        )
        .await;
    let mut progress = Vec::new();
    let result = loop {
        let message = stream.next_json().await;
        if message.get("id") == Some(&json!(3)) {
            break message;
        }
        if message["method"] == "notifications/progress" {
            progress.push(message["params"]["message"].clone());
        }
    };
    assert_eq!(result["result"]["isError"], false, "{result}");
    assert_eq!(
        result["result"]["structuredContent"]["stdout"], "line-via-b\nend\n",
        "{result}"
    );
    // Only a chunk forwarded from B to A can put the line into A's progress while the
    // command still runs (`end` comes three seconds later).
    assert!(
        progress.contains(&json!("line-via-b")),
        "progress messages: {progress:?}"
    );
}

#[tokio::test]
async fn a_background_job_on_a_whose_start_went_to_b_is_killed_by_kill_command_on_a() {
    let pair = Pair::start().await;
    let kasm_id = pair.session(&pair.a).await;
    let marker = format!("sleep {}", unique_sleep(120));
    let started = pair
        .call(
            &pair.a,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": marker, "background": true}),
        )
        .await;
    assert_eq!(started["running"], true, "{started}");
    let job = started["job_id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A knows the process group only from the START record the wrapper sent to B.
    let killed: Value = loop {
        let (_, body) = pair
            .call_raw(
                &pair.a,
                "kill_command",
                json!({"job_id": job, "grace_s": 2}),
            )
            .await;
        let result = &body["result"];
        if result["isError"] == false {
            break result["structuredContent"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "A never learned the job's process group: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(killed["signalled"], true, "{killed}");
    assert_eq!(killed["state"], "killed", "{killed}");
    while !processes_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "{marker} was not killed by A");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
