//! `[server]`: where to listen, which Host/Origin headers to accept, body size, relay URL,
//! SSE keep-alive and the session-sealing key.

use std::net::IpAddr;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::errors::{ConfigError, check_http_url, invalid};

/// The HTTP side: where to listen and which Host/Origin headers to accept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Host header values accepted (with or without port). Empty = loopback names only.
    pub allowed_hosts: Vec<String>,
    /// Origin header values accepted (`scheme://host[:port]`). Requests without Origin pass.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body (413 above it).
    pub max_body_bytes: usize,
    /// URL at which Kasm session containers reach this server (`…/relay/{ticket}`).
    /// Unset: `execute_kasm_command` is dispatch-only and the file tools explain why.
    pub relay_url: Option<String>,
    /// Seconds between SSE keep-alive comments.
    pub sse_keep_alive_s: u64,
    /// Key that seals Streamable HTTP session ids (HMAC). Unset: random per process.
    /// A `SecretString`, so `Debug` redacts it; never serialized (it has no default).
    #[serde(skip_serializing)]
    pub session_secret: Option<SecretString>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            relay_url: None,
            sse_keep_alive_s: 15,
            session_secret: None,
        }
    }
}

impl ServerConfig {
    /// The checks of this section that need no I/O.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let s = self;
        if s.host.parse::<IpAddr>().is_err() && s.host != "localhost" {
            return Err(invalid(
                "server.host (MCP_SERVER_HOST)",
                &s.host,
                "use an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0",
            ));
        }
        if s.max_body_bytes < 1024 {
            return Err(invalid(
                "server.max_body_bytes",
                s.max_body_bytes.to_string(),
                "use at least 1024 bytes",
            ));
        }
        if let Some(relay) = &s.relay_url {
            check_http_url("server.relay_url (MCP_RELAY_URL)", relay)?;
        }
        Ok(())
    }

    /// Whether the listen address is a loopback address.
    pub fn listens_on_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }
}
