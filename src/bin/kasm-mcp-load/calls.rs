//! One call of each kind the load generator makes, with the check that it succeeded: the
//! direct Kasm call, an MCP POST to `/mcp`, and an MCP call over a legacy `/sse` session.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

/// What a workload sends, again and again.
#[derive(Clone)]
pub enum Call {
    /// `POST {kasm}/api/public/<endpoint>` with the credentials in the body.
    Direct { url: String, body: Bytes },
    /// A stateless JSON-RPC POST to `/mcp`.
    Mcp {
        url: String,
        token: String,
        body: Bytes,
    },
}

/// The JSON-RPC body of a `tools/call`.
pub fn tool_call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

/// An MCP answer that is a JSON-RPC result and, for tools, not `isError`.
pub fn mcp_ok(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "non-UTF-8 answer".to_string())?;
    if !text.contains("\"result\"") || text.contains("\"isError\":true") {
        return Err(text.chars().take(300).collect());
    }
    Ok(())
}

impl Call {
    pub async fn send(&self, http: &reqwest::Client) -> Result<(), String> {
        let (request, is_mcp) = match self {
            Call::Direct { url, body } => (
                http.post(url)
                    .header("content-type", "application/json")
                    .body(body.clone()),
                false,
            ),
            Call::Mcp { url, token, body } => (
                http.post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .body(body.clone()),
                true,
            ),
        };
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
        if is_mcp {
            mcp_ok(&body)
        } else if body.windows(15).any(|w| w == b"\"error_message\"") {
            Err(String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
        } else {
            Ok(())
        }
    }
}

/// One legacy (2024-11-05) SSE session: the stream and the URL to POST messages to.
pub struct LegacySession {
    events: futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: Vec<u8>,
    post_url: String,
    token: String,
    next_id: u64,
}

impl LegacySession {
    /// Open `GET /sse`, read the `endpoint` event, and initialize.
    pub async fn open(http: &reqwest::Client, base: &str, token: &str) -> Result<Self, String> {
        let response = http
            .get(format!("{base}/sse"))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("GET /sse: HTTP {}", response.status()));
        }
        let mut session = LegacySession {
            events: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            post_url: String::new(),
            token: token.to_string(),
            next_id: 1,
        };
        let (event, data) = session.next_event().await?;
        if event != "endpoint" {
            return Err(format!("first /sse event is {event:?}, not endpoint"));
        }
        session.post_url = format!("{base}{data}");
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "kasm-mcp-load", "version": "1"}}});
        session.request(http, init).await?;
        session
            .post(
                http,
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await?;
        Ok(session)
    }

    /// The next `(event, data)` on the stream (comments skipped).
    async fn next_event(&mut self) -> Result<(String, String), String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&raw);
                let mut event = String::from("message");
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !data.is_empty() {
                    return Ok((event, data));
                }
                continue;
            }
            match tokio::time::timeout(Duration::from_secs(30), self.events.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(None) => return Err("the /sse stream ended".into()),
                Err(_) => return Err("no /sse event within 30 s".into()),
            }
        }
    }

    /// POST one message. The future owns its inputs: the stream is `Send` but not `Sync`,
    /// so no `&self` may be held across an await.
    fn post(
        &self,
        http: &reqwest::Client,
        message: &Value,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        post_message(
            http.clone(),
            self.post_url.clone(),
            self.token.clone(),
            message.to_string(),
        )
    }

    /// Send a request and wait for its answer on the stream.
    pub async fn request(
        &mut self,
        http: &reqwest::Client,
        mut message: Value,
    ) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        message["id"] = json!(id);
        self.post(http, &message).await?;
        loop {
            let (_, data) = self.next_event().await?;
            let answer: Value = serde_json::from_str(&data).map_err(|e| e.to_string())?;
            if answer.get("id") == Some(&json!(id)) {
                return mcp_ok(data.as_bytes());
            }
        }
    }
}

async fn post_message(
    http: reqwest::Client,
    url: String,
    token: String,
    body: String,
) -> Result<(), String> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() == reqwest::StatusCode::ACCEPTED {
        Ok(())
    } else {
        Err(format!("POST /messages: HTTP {}", response.status()))
    }
}
