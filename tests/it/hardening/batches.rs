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
    // The allocator must hand freed memory back at once, or RSS shows its retention instead
    // of what the server keeps: mimalloc (the server's allocator) purges after a delay, and
    // the readings of the same 48 batches then swing between 76 and 147 MiB; with
    // MIMALLOC_PURGE_DELAY=0 they stay within 37..41 MiB. MALLOC_ARENA_MAX=1 does the same
    // for a glibc build (its per-thread arenas each kept a ~22 MiB peak: steps 91, 113, 135).
    let server = ChildServer::start_with_env(
        &Kasm::simulator(&sim),
        "[limits]\nper_ip_per_second = 0\nper_ip_burst = 0\n",
        None,
        &[("MALLOC_ARENA_MAX", "1"), ("MIMALLOC_PURGE_DELAY", "0")],
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

    // The largest allowed batch, 48 times, 4 at a time: memory levels off. RSS is read after
    // every round and the PEAK of the last 24 batches is compared with the peak of the first
    // 24: state kept per call or per item raises every later reading, and so the later peak,
    // while what the allocator keeps of a peak stays under the peak already reached.
    let mut readings = Vec::with_capacity(12);
    for _round in 0..12 {
        let answers = futures::future::join_all((0..4).map(|_| async {
            let r = server.mcp(&http, &batch("tools/list", json!({}), 50)).await;
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            body.as_array().map(Vec::len)
        }))
        .await;
        assert!(answers.iter().all(|n| *n == Some(50)), "{answers:?}");
        readings.push(server.rss_kib());
    }
    let (first, last) = readings.split_at(6);
    let peak = |r: &[u64]| r.iter().copied().max().unwrap_or(0);
    let grown_mib = peak(&readings).saturating_sub(baseline) / 1024;
    let second_half_mib = peak(last).saturating_sub(peak(first)) / 1024;
    eprintln!(
        "RSS baseline {} MiB, after each round of 4 batches (MiB): {:?}",
        baseline / 1024,
        readings.iter().map(|k| k / 1024).collect::<Vec<_>>()
    );
    assert!(grown_mib < 128, "RSS grew by {grown_mib} MiB");
    assert!(
        second_half_mib < 16,
        "RSS kept growing: the peak of the last 24 batches is +{second_half_mib} MiB above the first 24's"
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
