//! Item 2: early refusals (401 wrong token, 413 too large, 429 rate limited) used to be sent
//! before the request body was read, without `Connection: close`; hyper then closed the
//! connection when the rest of the body had not arrived yet, and the client's next request
//! on it was lost. A burst of 20,000 requests over keep-alive connections must lose none.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kasm_mcp::app::App;
use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::mcp::McpServer;
use kasm_mcp::tokens::sha256_hex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "burst-token";
const REQUESTS: usize = 20_000;
const CLIENTS: usize = 4;

/// A parsed HTTP/1.1 response head plus its body length.
struct Answer {
    status: u16,
    close: bool,
}

/// Reads one response from `stream`, keeping any extra bytes in `pending`.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Answer> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let length: usize = header("content-length:")?.parse().ok()?;
    let close = header("connection:").is_some_and(|v| v == "close");
    while pending.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(&chunk[..n]);
    }
    pending.drain(..head_end + length);
    Some(Answer { status, close })
}

fn request(i: usize, port: u16) -> (Vec<u8>, Vec<u8>) {
    let (token, body) = match i % 4 {
        // Wrong token: 401.
        0 => ("wrong-token", vec![b' '; 2000]),
        // Declared larger than the 64 KiB limit: 413.
        1 => (TOKEN, vec![b' '; 80 * 1024]),
        // A real request: 200 (or 429).
        2 => (
            TOKEN,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
        ),
        _ => ("wrong-token", vec![b' '; 30_000]),
    };
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    (head.into_bytes(), body)
}

/// One client: its share of the burst over keep-alive connections, reconnecting only when
/// an answer says `Connection: close` (or a request was lost). Returns (status counts, lost,
/// connections used).
async fn burst(port: u16, client: usize) -> (std::collections::BTreeMap<u16, usize>, usize, usize) {
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    let (mut lost, mut connections) = (0usize, 1usize);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut pending = Vec::new();
    for i in (client..REQUESTS).step_by(CLIENTS) {
        let (head, body) = request(i, port);
        // Headers and body in separate writes; every 16th request leaves a gap between them,
        // so the answer can be ready before the body has arrived.
        let sent = async {
            stream.write_all(&head).await?;
            if i % 16 == 0 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            stream.write_all(&body).await
        }
        .await;
        let answer = match sent {
            Ok(()) => read_answer(&mut stream, &mut pending).await,
            Err(_) => None,
        };
        let reconnect = match answer {
            Some(answer) => {
                *counts.entry(answer.status).or_default() += 1;
                answer.close
            }
            None => {
                lost += 1;
                true
            }
        };
        if reconnect {
            stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            pending.clear();
            connections += 1;
        }
    }
    (counts, lost, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_burst_of_refusals_loses_no_request() {
    let mut config = Config::default();
    config.server.port = 0;
    config.server.max_body_bytes = 64 * 1024;
    config.limits.per_ip_per_second = 200;
    config.limits.per_ip_burst = 100;
    config.auth.tokens = vec![TokenConfig {
        name: "alice".into(),
        sha256: sha256_hex(TOKEN).parse().unwrap(),
        role: "admin".parse().unwrap(),
        kasm_user_id: None,
    }];
    let app = App::build(
        config,
        Arc::new(McpServer::new(vec![])),
        axum::Router::new(),
    )
    .unwrap()
    .spawn();
    let port = app.local_addr().port();

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(burst(port, c))).collect();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    let (mut lost, mut connections) = (0usize, 0usize);
    for client in clients {
        let (c, l, n) = client.await.unwrap();
        for (status, count) in c {
            *counts.entry(status).or_default() += count;
        }
        lost += l;
        connections += n;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{REQUESTS} requests in {elapsed:?} over {connections} connections: {counts:?}, lost {lost}"
    );
    assert_eq!(lost, 0, "requests lost: {lost} ({counts:?})");
    for status in [401, 413, 429] {
        assert!(
            counts.get(&status).copied().unwrap_or(0) > 100,
            "the burst is mostly refused with {status}: {counts:?}"
        );
    }
    let refused: usize = [401, 413, 429]
        .iter()
        .map(|s| counts.get(s).copied().unwrap_or(0))
        .sum();
    assert!(refused * 2 > REQUESTS, "mostly refused: {counts:?}");
    assert!(elapsed < Duration::from_secs(120), "bounded in time");
    app.stop().await.unwrap();
}
