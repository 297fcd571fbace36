//! `[quotas]` across replicas: the concurrency caps are leases in Redis, so two replicas
//! together allow the configured figure, and a crashed replica's slots come back after one
//! lease time.

use std::time::{Duration, Instant};

use kasm_mcp::cluster::{Cluster, Leases};
use kasm_mcp::config::ClusterConfig;
use serde_json::json;

use super::{Pair, RedisServer};
use crate::tasks::{processes_with, unique_sleep};

fn cluster(redis: &RedisServer, replica: &str) -> Cluster {
    let config = ClusterConfig {
        redis_url: Some(redis.url().into()),
        replica_id: Some(replica.into()),
        ..ClusterConfig::default()
    };
    Cluster::start(&config).unwrap().unwrap()
}

#[tokio::test]
async fn leases_hold_one_global_cap_and_a_crashed_replicas_slot_expires() {
    let redis = RedisServer::start();
    const LEASE: Duration = Duration::from_millis(600);
    let x = cluster(&redis, "lease-x");
    let y = cluster(&redis, "lease-y");
    let (on_x, on_y) = (Leases::new(x.clone(), LEASE), Leases::new(y, LEASE));

    let held = on_x.take(&["exec", "p"], 1).await.unwrap().expect("free");
    assert!(
        on_y.take(&["exec", "p"], 1).await.unwrap().is_none(),
        "one global slot"
    );
    assert!(
        on_y.take(&["exec", "q"], 1).await.unwrap().is_some(),
        "per name"
    );
    // Renewed while held: still taken after three lease times.
    tokio::time::sleep(LEASE * 3).await;
    assert!(
        on_y.take(&["exec", "p"], 1).await.unwrap().is_none(),
        "renewed"
    );
    // Dropped: given back at once.
    drop(held);
    let started = Instant::now();
    let again = loop {
        if let Some(lease) = on_y.take(&["exec", "p"], 1).await.unwrap() {
            break lease;
        }
        assert!(
            started.elapsed() < LEASE / 2,
            "the dropped lease was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(again);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A replica that dies while holding a slot (no drop, no renewal): the slot expires.
    let orphan = on_x
        .take(&["exec", "p"], 1)
        .await
        .unwrap()
        .expect("free again");
    x.stop();
    std::mem::forget(orphan);
    assert!(on_y.take(&["exec", "p"], 1).await.unwrap().is_none());
    let started = Instant::now();
    loop {
        if on_y.take(&["exec", "p"], 1).await.unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < LEASE * 2,
            "the dead replica's slot never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_replicas_enforce_one_max_concurrent_exec() {
    let pair = Pair::start_with(|c| c.quotas.max_concurrent_exec = Some(1)).await;
    let kasm_id = pair.session(&pair.a).await;
    let marker = unique_sleep(3);
    let long = {
        let (url, kasm_id, marker) = (pair.a.base_url(), kasm_id.clone(), marker.clone());
        let http = pair.http.clone();
        tokio::spawn(async move {
            http.post(format!("{url}/mcp"))
                .bearer_auth(super::TOKEN)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "execute_kasm_command",
                    "arguments": {"kasm_id": kasm_id, "command": format!("sleep {marker}; echo first")}}}))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    let started = Instant::now();
    while processes_with(&marker).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the first command never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A holds the only exec slot: B refuses, naming the cap.
    let (_, refused) = pair
        .call_raw(
            &pair.b,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "echo second"}),
        )
        .await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("quotas.max_concurrent_exec"), "{refused}");
    assert!(text.contains("every replica"), "{refused}");
    let first = long.await.unwrap();
    assert!(first.contains("first"), "{first}");
    // The slot is back: B runs its command now.
    let started = Instant::now();
    loop {
        let (_, answer) = pair
            .call_raw(
                &pair.b,
                "execute_kasm_command",
                json!({"kasm_id": kasm_id, "command": "echo second"}),
            )
            .await;
        if answer["result"]["isError"] == false {
            assert_eq!(
                answer["result"]["structuredContent"]["stdout"], "second\n",
                "{answer}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot never came back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pair.sim.shutdown().await;
}
