//! The connection watcher and the connection's own wake-ups (`src/http/serve.rs`,
//! `src/http/activity.rs`) through the real server: a deadline that comes earlier inside the
//! connection's own poll still moves the timer, and wakes noted during a poll are never lost.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::child::ChildServer;

const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Read one complete `/healthz` answer (headers + Content-Length body).
async fn read_answer(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + len {
                return seen;
            }
        }
    }
}

/// A served keep-alive request (watcher armed at the 30 s idle deadline), then slowloris: the
/// header deadline (2 s) comes earlier *inside the connection's own poll* and must still move
/// the timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_after_a_kept_alive_one_meets_the_header_timeout() {
    let server = ChildServer::start(
        "[connections]\nheader_read_timeout_s = 2\nidle_timeout_s = 30\n",
        None,
    )
    .await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    stream.write_all(GET).await.unwrap();
    read_answer(&mut stream).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut chunk = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(n) = read.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    writer.abort();
    let after = started.elapsed();
    assert!(closed.is_ok(), "slowloris still open after 15 s");
    assert!(
        after >= Duration::from_millis(1700) && after <= Duration::from_secs(8),
        "closed after {after:?}"
    );
}

/// Many clients, each pipelining 32 requests in one write: every answer arrives (a wake
/// noted during the connection's own poll and then lost would leave answers unsent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pipelined_request_of_many_clients_is_answered() {
    let server = ChildServer::start("[connections]\nmax_open_per_ip = 200\n", None).await;
    let port = server.port();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let batch: Vec<u8> = GET.repeat(32);
                stream.write_all(&batch).await.unwrap();
                let mut seen = Vec::new();
                let mut chunk = [0u8; 65536];
                tokio::time::timeout(Duration::from_secs(20), async {
                    loop {
                        let n = stream.read(&mut chunk).await.unwrap();
                        assert!(n > 0);
                        seen.extend_from_slice(&chunk[..n]);
                        let count = seen.windows(12).filter(|w| w == b"HTTP/1.1 200").count();
                        if count == 32 {
                            return;
                        }
                    }
                })
                .await
                .expect("all 32 pipelined answers");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
