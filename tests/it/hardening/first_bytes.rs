//! The accept loop tells HTTP/1 from HTTP/2 by peeking at a connection's first bytes
//! (`src/http/sniff.rs`) instead of letting hyper-util read them: both versions are still
//! served, also when the first bytes arrive in pieces, and a connection that sends nothing is
//! closed by the idle timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::child::{ChildServer, TOKEN};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Everything the server sends until it closes (or `limit` passes).
async fn read_all(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge_and_http1_are_both_served() {
    let server = ChildServer::start("", None).await;
    let ping = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "ping"});
    for (client, version) in [
        (
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .unwrap(),
            reqwest::Version::HTTP_2,
        ),
        (
            reqwest::Client::builder().http1_only().build().unwrap(),
            reqwest::Version::HTTP_11,
        ),
    ] {
        let health = client
            .get(format!("{}/healthz", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.version(), version);
        let answer = client
            .post(format!("{}/mcp", server.base_url))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&ping)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.version(), version);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["id"], 7, "{body}");
        assert!(body["result"].is_object(), "{body}");
    }
}

/// A first byte that could begin the HTTP/2 preface ("P" of `POST`) arriving alone leaves the
/// version undecided; the request is still served as HTTP/1 once the rest comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_first_byte_arrives_alone_is_served() {
    let server = ChildServer::start("", None).await;
    let port = server.port();
    for (first, rest) in [
        ("P", "OST /mcp HTTP/1.1\r\n"),
        ("G", "ET /healthz HTTP/1.1\r\n"),
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(first.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let request = format!(
            "{rest}Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_all(&mut stream, Duration::from_secs(5)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{first}: {answer}");
    }
}

/// The HTTP/2 preface in two pieces: the auto builder reads the rest and speaks HTTP/2 (its
/// first frame is the server's SETTINGS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_http2_preface_is_served_as_http2() {
    let server = ChildServer::start("", None).await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    stream.write_all(&PREFACE[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(&PREFACE[5..]).await.unwrap();
    // An empty SETTINGS frame: length 0, type 4, flags 0, stream 0.
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("the server answered the preface")
        .unwrap();
    assert_eq!(head[3], 4, "first frame is SETTINGS: {head:?}");
    assert_eq!(&head[5..9], &[0, 0, 0, 0], "on stream 0: {head:?}");
}

/// A connection that never sends a byte is closed by `connections.idle_timeout_s`, not held
/// while the server waits to learn its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let server = ChildServer::start("[connections]\nidle_timeout_s = 2\n", None).await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    let opened = Instant::now();
    let sent = read_all(&mut stream, Duration::from_secs(10)).await;
    let closed_after = opened.elapsed();
    assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(8),
        "closed after {closed_after:?}"
    );
}
