//! Items 3–5: JSON-RPC batches. An oversized batch is refused whole and a large allowed one
//! keeps memory bounded; every batch item that reaches Kasm is metered; a batch refused by
//! the per-principal limit spends nothing.

use kasm_mcp::simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};

use super::child::{ChildServer, Kasm};

fn batch(method: &str, params: Value, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": method, "params": params}))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_batch_is_refused_and_allowed_batches_keep_memory_bounded() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let server = ChildServer::start_with(
        &Kasm::simulator(&sim),
        "[limits]\nper_ip_per_second = 0\nper_ip_burst = 0\n",
        None,
    )
    .await;
    let http = reqwest::Client::new();
    // Warm up (allocator arenas, the tool catalog), then take the baseline.
    for _ in 0..3 {
        let r = server.mcp(&http, &batch("tools/list", json!({}), 50)).await;
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
    }
    let baseline = server.rss_kib();

    // 1,000 items (the attack: ~23 MiB of answers, RSS +445 MB before the cap).
    let r = server
        .mcp(&http, &batch("tools/list", json!({}), 1000))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("1000") && message.contains("batch.max_items") && message.contains("50"),
        "{message}"
    );

    // The largest allowed batch, 48 times, 4 at a time: memory levels off.
    let mut after_half = 0;
    for round in 0..12 {
        if round == 6 {
            after_half = server.rss_kib();
        }
        let answers = futures::future::join_all((0..4).map(|_| async {
            let r = server.mcp(&http, &batch("tools/list", json!({}), 50)).await;
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            body.as_array().map(Vec::len)
        }))
        .await;
        assert!(answers.iter().all(|n| *n == Some(50)), "{answers:?}");
    }
    let end = server.rss_kib();
    let grown_mib = end.saturating_sub(baseline) / 1024;
    let second_half_mib = end.saturating_sub(after_half) / 1024;
    eprintln!(
        "RSS baseline {} MiB, after 24 batches {} MiB, after 48 batches {} MiB",
        baseline / 1024,
        after_half / 1024,
        end / 1024
    );
    assert!(grown_mib < 128, "RSS grew by {grown_mib} MiB");
    assert!(
        second_half_mib < 16,
        "RSS kept growing: +{second_half_mib} MiB over the last 24 batches"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_items_reaching_kasm_are_metered_and_a_refused_batch_spends_nothing() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    // 60 calls at once, then one per 10 minutes: refills cannot blur the counts.
    let server = ChildServer::start_with(
        &Kasm::simulator(&sim),
        "[limits]\nper_principal_per_minute = 1\nper_principal_burst = 60\n\n[batch]\nmax_items = 100\n",
        None,
    )
    .await;
    let http = reqwest::Client::new();

    // More calls than the burst in one batch: refused whole, nothing runs, nothing is spent.
    let r = server
        .mcp(
            &http,
            &batch(
                "tools/call",
                json!({"name": "get_available_workspaces", "arguments": {}}),
                61,
            ),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.per_principal_burst"),
        "{body}"
    );

    // 40 resources/list: each item lists the principal's sessions in Kasm, each is metered.
    let r = server
        .mcp(&http, &batch("resources/list", json!({}), 40))
        .await;
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    // 40 completion/complete: only 20 calls are left, so the batch is refused (429) …
    let completion = json!({"ref": {"type": "ref/resource", "uri": "kasm://workspaces/{image_name}"},
                            "argument": {"name": "image_name", "value": ""}});
    let r = server
        .mcp(&http, &batch("completion/complete", completion.clone(), 40))
        .await;
    assert_eq!(r.status(), 429, "completion items are metered");
    assert!(r.headers().get("retry-after").is_some());
    // … and spent nothing: the 20 left still fit, exactly.
    let r = server
        .mcp(&http, &batch("completion/complete", completion, 20))
        .await;
    assert_eq!(r.status(), 200, "the refused batch left the budget intact");
    let _ = r.bytes().await;
    let r = server
        .mcp(
            &http,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "get_available_workspaces", "arguments": {}}}),
        )
        .await;
    assert_eq!(r.status(), 429, "the budget is now spent");
    sim.shutdown().await;
}
