//! Item 1: connections that never finish their headers, and idle keep-alive connections, are
//! closed on time, and a normal client is served throughout — with the server limited to 256
//! file descriptors, where 375 such connections used to make `accept` fail for everyone.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::child::{ChildServer, connect_from};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Sends a request line, then one more header line every 500 ms, never finishing; returns
/// how long after its first byte the server closed the connection (None: still open at `give_up`).
async fn slow_headers(port: u16, give_up: Duration) -> Option<Duration> {
    let stream = connect_from([127, 0, 0, 2], port).await.ok()?;
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    if write
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .is_err()
    {
        return Some(started.elapsed());
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut buffer = [0u8; 256];
    loop {
        tokio::select! {
            n = read.read(&mut buffer) => {
                if matches!(n, Ok(0) | Err(_)) {
                    return Some(started.elapsed());
                }
            }
            _ = tick.tick() => {
                if started.elapsed() > give_up {
                    return None;
                }
                if write.write_all(b"X-Slow: still-coming\r\n").await.is_err() {
                    return Some(started.elapsed());
                }
            }
        }
    }
}

/// What happened to an idle keep-alive connection.
#[derive(Debug, Clone, Copy)]
enum Idle {
    /// Closed (or reset) before the request was answered: refused by a connection cap.
    Refused,
    /// Answered, then closed by the server this long after the answer.
    ClosedAfter(Duration),
    /// Still open when the test gave up.
    StillOpen,
}

/// One complete keep-alive request, then silence.
async fn idle_keep_alive(port: u16, give_up: Duration) -> Idle {
    let Ok(mut stream) = connect_from([127, 0, 0, 3], port).await else {
        return Idle::Refused;
    };
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .is_err()
    {
        return Idle::Refused;
    }
    let mut buffer = [0u8; 1024];
    match stream.read(&mut buffer).await {
        Ok(n) if n > 0 && buffer.starts_with(b"HTTP/1.1 200") => {}
        _ => return Idle::Refused,
    }
    let answered = Instant::now();
    let closed = tokio::time::timeout(give_up, async {
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    match closed {
        Ok(()) => Idle::ClosedAfter(answered.elapsed()),
        Err(_) => Idle::StillOpen,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_on_time_under_a_low_fd_limit() {
    kasm_mcp::http::conn_limits::raise_fd_limit();
    let server = ChildServer::start(
        "[connections]\nheader_read_timeout_s = 2\nidle_timeout_s = 3\nmax_open_per_ip = 60\n",
        Some(256),
    )
    .await;
    let port = server.port();
    let give_up = Duration::from_secs(12);

    let slow: Vec<_> = (0..375)
        .map(|_| tokio::spawn(slow_headers(port, give_up)))
        .collect();
    let idle: Vec<_> = (0..200)
        .map(|_| tokio::spawn(idle_keep_alive(port, give_up)))
        .collect();

    // A normal client (another address), a fresh connection every 200 ms for 7 s.
    let normal = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let (mut served, mut failed) = (0, Vec::new());
    while started.elapsed() < Duration::from_secs(7) {
        match normal
            .post(format!("{}/mcp", server.base_url))
            .bearer_auth(super::child::TOKEN)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => served += 1,
            Ok(r) => failed.push(format!("status {}", r.status())),
            Err(e) => failed.push(format!("{e:?}")),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut slow_closed = Vec::new();
    for task in slow {
        slow_closed.push(task.await.unwrap());
    }
    let mut idle_closed = Vec::new();
    for task in idle {
        idle_closed.push(task.await.unwrap());
    }
    assert!(
        failed.is_empty() && served >= 20,
        "the normal client was served {served} times and failed {} times: {failed:?}",
        failed.len()
    );
    assert!(
        slow_closed.iter().all(Option::is_some),
        "{} slow-header connections were still open after {give_up:?}",
        slow_closed.iter().filter(|c| c.is_none()).count()
    );
    // The connections that got in (at most max_open_per_ip) were closed by the header-read
    // timeout, the rest at once by the per-address cap.
    let timed_out: Vec<Duration> = slow_closed
        .iter()
        .flatten()
        .copied()
        .filter(|d| *d >= HEADER_READ_TIMEOUT - Duration::from_millis(300))
        .collect();
    assert!(
        !timed_out.is_empty() && timed_out.len() <= 60,
        "accepted slow connections: {}",
        timed_out.len()
    );
    assert!(
        timed_out
            .iter()
            .all(|d| *d <= HEADER_READ_TIMEOUT + Duration::from_secs(2)),
        "closed late: {timed_out:?}"
    );
    let idle_times: Vec<Duration> = idle_closed
        .iter()
        .filter_map(|c| match c {
            Idle::ClosedAfter(d) => Some(*d),
            _ => None,
        })
        .collect();
    assert!(
        !idle_closed.iter().any(|c| matches!(c, Idle::StillOpen)),
        "idle connections still open after {give_up:?}: {idle_closed:?}"
    );
    assert!(
        !idle_times.is_empty() && idle_times.len() <= 60,
        "idle connections served: {}",
        idle_times.len()
    );
    assert!(
        idle_times
            .iter()
            .all(|d| *d >= IDLE_TIMEOUT - Duration::from_millis(300)
                && *d <= IDLE_TIMEOUT + Duration::from_secs(2)),
        "idle connections closed at {idle_times:?}"
    );
    let log = server.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("open-file limit"),
        "the server says it fitted its cap: {log}"
    );
}
