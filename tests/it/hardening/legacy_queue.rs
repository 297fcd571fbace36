//! Item 6: a legacy `/sse` stream that is never read used to queue every answer in memory
//! (2,000 `tools/list` took RSS from 10 MB to 417 MB). The queue is bounded: once it is full,
//! POST /messages gets 429 and memory stays flat.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::child::{ChildServer, TOKEN, connect_from};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_legacy_stream_keeps_memory_bounded() {
    let server = ChildServer::start(
        "[limits]\nper_ip_per_second = 0\nper_ip_burst = 0\n\n[legacy_sse]\nqueue_messages = 64\n",
        None,
    )
    .await;
    // Open the stream over a raw socket, read up to the `endpoint` event, then never again.
    let mut stream = connect_from([127, 0, 0, 1], server.port()).await.unwrap();
    stream
        .write_all(
            format!(
                "GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let session = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "stream closed");
            seen.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(at) = text.find("sessionId=") {
                let id: String = text[at + 10..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if id.len() == 32 {
                    return id;
                }
            }
        }
    })
    .await
    .expect("endpoint event");
    let baseline = server.rss_kib();

    let http = reqwest::Client::new();
    let url = format!("{}/messages?sessionId={session}", server.base_url);
    let (mut accepted, mut refused) = (0, 0);
    let mut refusal = String::new();
    for i in 0..2000 {
        let r = http
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({"jsonrpc": "2.0", "id": i, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            202 => accepted += 1,
            429 => {
                refused += 1;
                refusal = r.text().await.unwrap();
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // Let the accepted answers settle into the queue.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown_mib = server.rss_kib().saturating_sub(baseline) / 1024;
    eprintln!("accepted {accepted}, refused {refused}, RSS grew {grown_mib} MiB");
    assert!(refused >= 1000, "accepted {accepted}, refused {refused}");
    assert!(refusal.contains("legacy_sse.queue_messages"), "{refusal}");
    assert!(grown_mib < 48, "RSS grew by {grown_mib} MiB");
    drop(stream);
}
