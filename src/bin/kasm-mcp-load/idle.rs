//! Idle cost: many connections held open with nothing to do — legacy `GET /sse` streams, and
//! `/mcp` keep-alive connections after one `ping`. The server has no standalone `/mcp` SSE
//! stream (`GET /mcp` is 405, which the Streamable HTTP spec allows, and a POST's SSE answer
//! ends with its result), so what an idle `/mcp` client holds open is its keep-alive
//! connection; [`get_mcp_status`] checks that this is still so, and the run says it. Raw TCP,
//! so every connection is really separate and nothing is pooled.

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until `needle` has arrived (or the peer closes / 64 KiB arrive).
async fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Result<(), String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 || seen.len() > 65_536 {
            return Err(format!(
                "connection ended before {:?}: {}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&seen[..seen.len().min(200)])
            ));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// One open `/sse` stream that has received its `endpoint` event.
async fn open_sse(addr: &str, token: &str) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!(
        "GET /sse HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    read_until(&mut stream, b"event: endpoint").await?;
    Ok(stream)
}

/// One `/mcp` connection kept alive after answering a `ping`.
async fn open_mcp(addr: &str, token: &str) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    read_until(&mut stream, b"\"result\"").await?;
    Ok(stream)
}

/// The status line's code of `GET /mcp` asking for an event stream (405 while the server
/// offers no standalone stream).
pub async fn get_mcp_status(addr: &str, token: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| e.to_string())?;
    std::str::from_utf8(&head)
        .ok()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|code| code.trim().parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 status line: {head:?}"))
}

/// Which idle connection to open.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sse,
    Mcp,
}

impl Kind {
    /// What the run's output calls this kind.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Sse => "/sse streams",
            Kind::Mcp => "/mcp keep-alive connections",
        }
    }

    /// One of them.
    pub fn unit(self) -> &'static str {
        match self {
            Kind::Sse => "stream",
            Kind::Mcp => "connection",
        }
    }
}

/// Open up to `count` idle connections of `kind`, spreading them over `tokens` (the server
/// caps `/sse` streams per principal), 64 at a time. Returns the open ones and the first
/// error, if some could not be opened.
pub async fn open_many(
    kind: Kind,
    addr: &str,
    tokens: &[String],
    count: usize,
) -> (Vec<TcpStream>, Option<String>) {
    let opened: Vec<Result<TcpStream, String>> = futures::stream::iter(0..count)
        .map(|i| {
            let token = tokens[i % tokens.len()].clone();
            let addr = addr.to_string();
            async move {
                match kind {
                    Kind::Sse => open_sse(&addr, &token).await,
                    Kind::Mcp => open_mcp(&addr, &token).await,
                }
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut streams = Vec::new();
    let mut first_error = None;
    for result in opened {
        match result {
            Ok(s) => streams.push(s),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (streams, first_error)
}
