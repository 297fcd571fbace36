//! The transport under [`super::KasmClient`]: one pooled reqwest client, credentials in the
//! JSON body, connect/total timeouts, TLS settings, a tracing span per call, and retries with
//! exponential backoff and jitter for the calls that are safe to repeat — and only those.
//! Response bodies are read chunk by chunk and refused above
//! [`ClientOptions::max_response_bytes`], so a wrong `KASM_API_URL` (a file server) or a
//! hostile proxy cannot exhaust memory. Redirects are not followed: the request body carries
//! the API key and secret, and a 307/308 would send it on to wherever the `Location` points;
//! a redirect is a [`KasmError::Redirect`] telling the operator which URL to configure.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::endpoints::Endpoints;
use super::response::{RawResponse, snippet};
use super::{KasmError, KasmResult};
use crate::config::KasmConfig;

/// Endpoints that may be repeated after a transient failure: they only read.
///
/// Kasm's own read-only flag (`permissions::EndpointSpec::read_only`) is only a hint: it marks
/// `keepalive`, `update_user_attributes` and `add/remove_user_group` read-only although they
/// change data, and `join_kasm` (may create an anonymous user) and `get_login` (mints a login
/// token) have side effects. None of those is here; neither is any call that creates or
/// changes something (`request_kasm`, `exec_command_kasm`, `create_user`, …).
pub const RETRY_SAFE: &[&str] = &[
    "get_kasm_status",
    "get_kasms",
    "get_user_kasms",
    "get_kasm_screenshot",
    "get_kasm_frame_stats",
    "get_kasm_bottleneck_stats",
    "get_images",
    "get_users",
    "get_user",
    "get_attributes",
    "get_session_recordings",
];

/// Whether a failed call to `endpoint` may be repeated.
pub fn retry_safe(endpoint: &str) -> bool {
    RETRY_SAFE.contains(&endpoint)
}

/// Default cap on one Kasm response body. The largest real answers (screenshots, long
/// session lists) are a few MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// How the client talks to Kasm.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest wait for the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole call, body included (per attempt).
    pub request_timeout: Duration,
    /// Extra attempts for [`RETRY_SAFE`] calls after a transient error.
    pub read_retries: u32,
    /// First backoff delay; doubles per attempt (capped at 5 s), with jitter.
    pub retry_base_delay: Duration,
    /// Verify the server certificate (on by default; off only for lab setups).
    pub verify_tls: bool,
    /// Extra CA certificates (PEM) to trust.
    pub ca_bundle: Option<PathBuf>,
    pub user_agent: String,
    /// Largest response body accepted (the call fails, quoting its start, above it).
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions::from_config(&KasmConfig::default())
    }
}

impl ClientOptions {
    /// The options a configuration asks for.
    pub fn from_config(config: &KasmConfig) -> Self {
        ClientOptions {
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            read_retries: config.read_retries,
            retry_base_delay: Duration::from_millis(200),
            verify_tls: config.verify_tls,
            ca_bundle: config.ca_bundle.clone(),
            user_agent: format!("kasm-mcp/{}", env!("CARGO_PKG_VERSION")),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// The JSON body of a call: its fields and the credentials, serialised without copying.
#[derive(serde::Serialize)]
struct WithCredentials<'a, F: Serialize> {
    #[serde(flatten)]
    fields: &'a F,
    api_key: &'a str,
    api_key_secret: &'a str,
}

/// Room reserved for a request body up front: the fields of most calls and the credentials
/// fit, so the body is not grown (and copied) while it is written.
const BODY_CAPACITY: usize = 256;

/// Sends calls to `{base}/api/public/<endpoint>`.
pub struct Transport {
    http: reqwest::Client,
    base: String,
    /// Every endpoint's URL (from `base`, parsed once) and metric handles.
    endpoints: Endpoints,
    api_key: SecretString,
    api_secret: SecretString,
    options: ClientOptions,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base)
            .field("api_key", &"[redacted]")
            .field("api_secret", &"[redacted]")
            .field("options", &self.options)
            .finish()
    }
}

/// `https://kasm.example.com/` or `…/api/public` → `https://kasm.example.com`.
fn normalize_base(base_url: &str) -> KasmResult<String> {
    let parsed = url::Url::parse(base_url.trim()).map_err(|e| {
        KasmError::InvalidArgument(format!(
            "the Kasm URL {base_url:?} is not a URL ({e}); use e.g. https://kasm.example.com"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(KasmError::InvalidArgument(format!(
            "the Kasm URL {base_url:?} must be an http:// or https:// URL with a host"
        )));
    }
    let mut base = parsed.as_str().trim_end_matches('/').to_string();
    if let Some(stripped) = base.strip_suffix("/api/public") {
        base = stripped.to_string();
    }
    Ok(base)
}

fn build_http(options: &ClientOptions) -> KasmResult<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        // See the module doc: a redirect becomes `KasmError::Redirect`, never a second request.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(options.user_agent.clone());
    if !options.verify_tls {
        tracing::warn!(
            "TLS certificate verification of the Kasm server is OFF (kasm.verify_tls = false): anyone on the network path can impersonate Kasm and read the API secret"
        );
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(path) = &options.ca_bundle {
        let pem = std::fs::read(path).map_err(|e| {
            KasmError::InvalidArgument(format!("cannot read the CA bundle {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            KasmError::InvalidArgument(format!(
                "the CA bundle {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(KasmError::InvalidArgument(format!(
                "the CA bundle {} contains no certificate",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| KasmError::InvalidArgument(format!("cannot set up the HTTP client: {e}")))
}

/// A response body as its chunks arrive. Most answers arrive in one chunk, which becomes the
/// body as it is (no copy into a growing buffer).
enum Collected {
    Empty,
    One(Bytes),
    Many(Vec<u8>),
}

impl Collected {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Collected::Empty => &[],
            Collected::One(bytes) => bytes,
            Collected::Many(bytes) => bytes,
        }
    }

    fn push(self, chunk: Bytes) -> Collected {
        match self {
            Collected::Empty => Collected::One(chunk),
            Collected::One(first) => {
                let mut joined = Vec::with_capacity(first.len().saturating_add(chunk.len()));
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&chunk);
                Collected::Many(joined)
            }
            Collected::Many(mut joined) => {
                joined.extend_from_slice(&chunk);
                Collected::Many(joined)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Collected::Empty => Bytes::new(),
            Collected::One(bytes) => bytes,
            Collected::Many(bytes) => bytes.into(),
        }
    }
}

/// The error for a 3xx answer: where it points (resolved against the request URL) and the
/// `KASM_API_URL` that would have reached the endpoint directly.
fn redirect_error(endpoint: &'static str, status: u16, response: &reqwest::Response) -> KasmError {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(|text| match response.url().join(text) {
            // Never quote credentials a Location may carry (`https://user:pw@host/…`).
            Ok(mut resolved) => {
                let _ = resolved.set_username("");
                let _ = resolved.set_password(None);
                resolved.to_string()
            }
            Err(_) => "(a Location that is not a URL)".to_string(),
        });
    let suffix = format!("/api/public/{endpoint}");
    let fix = match location.as_deref().and_then(|l| l.strip_suffix(suffix.as_str())) {
        Some(base) => format!("set KASM_API_URL to {base}"),
        None => "set KASM_API_URL to the final URL of the Kasm server (the one that answers without a redirect)".to_string(),
    };
    KasmError::Redirect {
        endpoint,
        status,
        location: location.unwrap_or_else(|| "(no Location header)".into()),
        fix,
    }
}

/// The full error chain of a reqwest error (the top level alone says little).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl Transport {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        api_secret: SecretString,
        options: ClientOptions,
    ) -> KasmResult<Self> {
        let base = normalize_base(base_url)?;
        let parsed = url::Url::parse(&base).map_err(|e| {
            KasmError::InvalidArgument(format!(
                "the Kasm URL {base_url:?} is not a URL ({e}); use e.g. https://kasm.example.com"
            ))
        })?;
        Ok(Transport {
            http: build_http(&options)?,
            base,
            endpoints: Endpoints::new(parsed),
            api_key,
            api_secret,
            options,
        })
    }

    /// The Kasm base URL (no `/api/public`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Call `endpoint` with `fields` (credentials are added) and interpret the response with
    /// `interpret`; retried per [`retry_safe`] on transient errors.
    pub async fn call<T>(
        &self,
        endpoint: &'static str,
        fields: Map<String, Value>,
        interpret: impl Fn(RawResponse) -> KasmResult<T>,
    ) -> KasmResult<T> {
        self.call_with(endpoint, &fields, interpret).await
    }

    /// [`Transport::call`] with any serialisable object as the fields (a typed request body
    /// writes its keys without building a map of them first).
    pub async fn call_with<F: Serialize + Sync, T>(
        &self,
        endpoint: &'static str,
        fields: &F,
        interpret: impl Fn(RawResponse) -> KasmResult<T>,
    ) -> KasmResult<T> {
        let retries = if retry_safe(endpoint) {
            self.options.read_retries
        } else {
            0
        };
        let mut attempt = 0u32;
        let started = Instant::now();
        loop {
            let result = self
                .attempt(endpoint, fields, attempt)
                .await
                .and_then(&interpret);
            let result = match result {
                // Say what the whole call cost, not just the last attempt.
                Err(KasmError::Timeout {
                    endpoint,
                    timeout_ms,
                    ..
                }) => Err(KasmError::Timeout {
                    endpoint,
                    timeout_ms,
                    attempts: attempt.saturating_add(1),
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }),
                other => other,
            };
            match result {
                Err(error) if error.is_transient() && attempt < retries => {
                    let delay = self.backoff(attempt);
                    tracing::warn!(
                        endpoint,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "transient Kasm error on a read-only call; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = Duration::from_secs(5);
        let full = self
            .options
            .retry_base_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(cap);
        let jitter = rand::thread_rng().gen_range(0.5..=1.0);
        full.mul_f64(jitter)
    }

    /// One HTTP exchange, inside a span that records endpoint, status and duration. The span
    /// is at `debug`, the level of the only events inside it: at the default `info` it was
    /// created and filled on every Kasm call and never shown (≈ 1 % of a call's CPU).
    async fn attempt<F: Serialize + Sync>(
        &self,
        endpoint: &'static str,
        fields: &F,
        attempt: u32,
    ) -> KasmResult<RawResponse> {
        let span = tracing::debug_span!(
            "kasm_call",
            endpoint,
            attempt,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let prepared = self.endpoints.get(endpoint);
        let url = match prepared {
            Some(prepared) => prepared.url.clone(),
            None => self.endpoints.url(endpoint),
        };
        let outcome = self
            .exchange(endpoint, url, fields)
            .instrument(span.clone())
            .await;
        let elapsed = started.elapsed();
        let duration_ms = elapsed.as_millis() as u64;
        span.record("duration_ms", duration_ms);
        let status = match &outcome {
            Ok(raw) => crate::telemetry::status_label(raw.status),
            Err(KasmError::Timeout { .. }) => "timeout",
            Err(KasmError::Connect { .. }) => "connect_error",
            Err(KasmError::Redirect { status, .. }) => crate::telemetry::status_label(*status),
            Err(_) => "error",
        };
        match prepared {
            Some(prepared) => prepared.series.record(status, elapsed),
            None => crate::telemetry::kasm_request(endpoint, status, elapsed),
        }
        match &outcome {
            Ok(raw) => {
                span.record("status", raw.status);
                span.in_scope(|| tracing::debug!(status = raw.status, duration_ms, "kasm call"));
            }
            Err(error) => {
                span.in_scope(|| tracing::debug!(duration_ms, error = %error, "kasm call failed"));
            }
        }
        outcome
    }

    async fn exchange<F: Serialize>(
        &self,
        endpoint: &'static str,
        url: url::Url,
        fields: &F,
    ) -> KasmResult<RawResponse> {
        // Serialised straight from the borrowed fields and secrets: no copy of the fields, no
        // copy of the credentials (the request body is the only place they are written).
        let mut body = Vec::with_capacity(BODY_CAPACITY);
        serde_json::to_writer(
            &mut body,
            &WithCredentials {
                fields,
                api_key: self.api_key.expose_secret(),
                api_key_secret: self.api_secret.expose_secret(),
            },
        )
        .map_err(|e| {
            KasmError::InvalidArgument(format!("cannot encode the {endpoint} call: {e}"))
        })?;
        // Through the request builder, not `Request::new`: the builder moves credentials in
        // the URL (`https://user:pw@host`, e.g. a proxy's basic auth in KASM_API_URL) into an
        // `Authorization` header and out of the URL. The content type is a static value.
        let sent = self
            .http
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await;
        let mut response = sent.map_err(|e| self.transport_error(endpoint, &e))?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(redirect_error(endpoint, status, &response));
        }
        let limit = self.options.max_response_bytes;
        let mut body = Collected::Empty;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(endpoint, &e))?
        {
            if body.len().saturating_add(chunk.len()) > limit {
                let start = if body.len() == 0 {
                    &chunk[..]
                } else {
                    body.as_slice()
                };
                return Err(KasmError::Decode {
                    endpoint,
                    detail: format!(
                        "the HTTP {status} response is larger than the {limit}-byte limit (is KASM_API_URL the Kasm server's base URL?); it starts with {:?}",
                        snippet(&start[..start.len().min(1024)])
                    ),
                });
            }
            body = body.push(chunk);
        }
        Ok(RawResponse {
            status,
            body: body.into_bytes(),
        })
    }

    fn transport_error(&self, endpoint: &'static str, error: &reqwest::Error) -> KasmError {
        if error.is_timeout() {
            let timeout_ms = self.options.request_timeout.as_millis() as u64;
            KasmError::Timeout {
                endpoint,
                timeout_ms,
                attempts: 1,
                elapsed_ms: timeout_ms,
            }
        } else {
            // The URL is base + endpoint and the body is never part of an error: no secrets.
            KasmError::Connect {
                endpoint,
                detail: error_chain(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kasm::permissions::ENDPOINTS;

    #[test]
    fn base_urls_are_normalised() {
        for (given, want) in [
            ("https://kasm.example.com", "https://kasm.example.com"),
            ("https://kasm.example.com/", "https://kasm.example.com"),
            (
                "https://kasm.example.com/api/public/",
                "https://kasm.example.com",
            ),
            ("http://127.0.0.1:8443/kasm", "http://127.0.0.1:8443/kasm"),
        ] {
            assert_eq!(normalize_base(given).unwrap(), want, "{given}");
        }
        for bad in ["kasm.example.com", "ftp://kasm", ""] {
            assert!(normalize_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_side_effect_free_reads_are_retried() {
        for name in RETRY_SAFE {
            let spec = crate::kasm::permissions::endpoint(name).unwrap();
            assert!(
                spec.read_only,
                "{name} is retried but not read-only in Kasm"
            );
        }
        for never in [
            "request_kasm",
            "exec_command_kasm",
            "create_user",
            "keepalive",
            "update_user_attributes",
            "add_user_group",
            "remove_user_group",
            "destroy_kasm",
            "join_kasm",
            "get_login",
        ] {
            assert!(ENDPOINTS.iter().any(|e| e.name == never), "{never}");
            assert!(!retry_safe(never), "{never} must never be retried");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let options = ClientOptions {
            retry_base_delay: Duration::from_millis(100),
            ..ClientOptions::default()
        };
        let t = Transport::new(
            "http://127.0.0.1:1",
            SecretString::from("k"),
            SecretString::from("s"),
            options,
        )
        .unwrap();
        for attempt in 0..8 {
            let d = t.backoff(attempt);
            let full = Duration::from_millis(100 * 2u64.pow(attempt)).min(Duration::from_secs(5));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }

    /// A loopback HTTP server that answers every connection with an HTML page of `total`
    /// bytes, streamed without a Content-Length; returns its base URL.
    async fn streaming_server(total: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n<html><body>directory listing";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let block = vec![b'x'; 64 * 1024];
                    let mut sent = 0;
                    while sent < total {
                        if socket.write_all(&block).await.is_err() {
                            return; // the client gave up: good
                        }
                        sent += block.len();
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_while_reading() {
        let base = streaming_server(256 * 1024 * 1024).await;
        let options = ClientOptions {
            max_response_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            read_retries: 0,
            ..ClientOptions::default()
        };
        let t = Transport::new(&base, "k".into(), "s".into(), options).unwrap();
        let started = Instant::now();
        let err = t.call("get_kasms", Map::new(), Ok).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, KasmError::Decode { .. }), "{err:?}");
        assert!(
            text.contains("1048576-byte limit")
                && text.contains("KASM_API_URL")
                && text.contains("<html><body>directory listing"),
            "{text}"
        );
        assert!(text.len() < 1024, "the error quotes only the start: {text}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        // A body under the cap is still read whole.
        let small = streaming_server(128 * 1024).await;
        let t = Transport::new(
            &small,
            "k".into(),
            "s".into(),
            ClientOptions {
                max_response_bytes: 1024 * 1024,
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let raw = t.call("get_kasms", Map::new(), Ok).await.unwrap();
        assert_eq!(raw.status, 200);
        assert!(raw.body.len() > 128 * 1024, "{}", raw.body.len());
    }

    #[test]
    fn debug_hides_credentials() {
        let t = Transport::new(
            "http://127.0.0.1:1",
            SecretString::from("the-key-123"),
            SecretString::from("the-secret-456"),
            ClientOptions::default(),
        )
        .unwrap();
        let text = format!("{t:?}");
        assert!(
            !text.contains("the-key-123") && !text.contains("the-secret-456"),
            "{text}"
        );
    }
}
