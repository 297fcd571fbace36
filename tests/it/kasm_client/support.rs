//! Helpers of the client tests: simulators and clients, a poll-until-running loop, a tiny HTML
//! server (a misconfigured URL), a counting/failing proxy in front of the simulator, and one
//! call of every `KasmApi` endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use kasm_mcp::kasm::{
    ClientOptions, ExecConfig, KasmApi, KasmClient, KasmError, NewUser, RequestKasm, SessionStatus,
    UserRef, UserUpdate,
};
use kasm_mcp::simulator::{SimKey, Simulator, SimulatorConfig, TERMINAL_IMAGE_ID};
use serde_json::Map;

/// A simulator whose sessions start quickly.
pub async fn simulator(config: SimulatorConfig) -> Simulator {
    Simulator::start(SimulatorConfig {
        start_delay: Duration::from_millis(300),
        ..config
    })
    .await
    .expect("simulator starts")
}

/// Options for tests: short backoff, generous but bounded timeouts.
pub fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        read_retries: 2,
        retry_base_delay: Duration::from_millis(10),
        ..ClientOptions::default()
    }
}

pub fn client_at(base_url: &str, key: &str, secret: &str, options: ClientOptions) -> KasmClient {
    KasmClient::new(base_url, key.into(), secret.into(), options).expect("client builds")
}

/// A client with the simulator's primary (all-permissions) key.
pub fn client(sim: &Simulator) -> KasmClient {
    client_at(&sim.base_url(), sim.api_key(), sim.api_secret(), options())
}

/// Poll `get_kasm_status` until the session runs (deadline 15 s); returns the statuses seen.
pub async fn wait_running(api: &dyn KasmApi, kasm_id: &str, user: &str) -> Vec<SessionStatus> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        let status = api
            .get_kasm_status(kasm_id, Some(user))
            .await
            .expect("status");
        let running = matches!(status, SessionStatus::Running { .. });
        seen.push(status);
        if running {
            return seen;
        }
        assert!(Instant::now() < deadline, "session never ran: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Create a session for `user` and wait until it runs.
pub async fn running_session(api: &dyn KasmApi, user: &str) -> String {
    let created = api
        .request_kasm(&RequestKasm {
            user_id: Some(user.to_string()),
            image_id: Some(TERMINAL_IMAGE_ID.to_string()),
            ..RequestKasm::default()
        })
        .await
        .expect("request_kasm");
    wait_running(api, &created.kasm_id, user).await;
    created.kasm_id
}

/// Serve `router` on a loopback port in the background.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>Sign in · Corporate SSO</title></head>\n<body><form action=\"/login\"><input name=\"user\"></form></body></html>\n";

/// A server that answers everything with an HTTP 200 HTML login page (a proxy in the way).
pub async fn html_server() -> String {
    async fn page() -> Response {
        ([(header::CONTENT_TYPE, "text/html")], LOGIN_PAGE).into_response()
    }
    let addr = serve(axum::Router::new().fallback(page)).await;
    format!("http://{addr}")
}

/// A server that answers every request with `status` and a `Location` of `target` followed
/// by the request's path (`target` may be relative: `/kasm`), as a Kasm moved to https or to
/// another host answers; counts the requests it got.
pub struct Redirector {
    pub url: String,
    hits: Arc<AtomicUsize>,
    authorization: Arc<std::sync::Mutex<Option<String>>>,
}

impl Redirector {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The `Authorization` header of the last request, if it had one.
    pub fn authorization(&self) -> Option<String> {
        self.authorization.lock().unwrap().clone()
    }
}

pub async fn redirector(status: StatusCode, target: &str) -> Redirector {
    let hits = Arc::new(AtomicUsize::new(0));
    let authorization = Arc::new(std::sync::Mutex::new(None));
    let counted = Arc::clone(&hits);
    let seen = Arc::clone(&authorization);
    let target = target.to_string();
    let answer = move |uri: Uri, headers: axum::http::HeaderMap| {
        counted.fetch_add(1, Ordering::SeqCst);
        *seen.lock().unwrap() = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let location = format!("{target}{}", uri.path());
        async move { (status, [(header::LOCATION, location)], "moved").into_response() }
    };
    let addr = serve(axum::Router::new().fallback(answer)).await;
    Redirector {
        url: format!("http://{addr}"),
        hits,
        authorization,
    }
}

/// A proxy in front of a simulator that counts calls and answers the first `fail_first` of
/// them with a 502 HTML page (as a load balancer does) instead of forwarding them.
pub struct Proxy {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    fail_first: usize,
    hits: Arc<AtomicUsize>,
    http: reqwest::Client,
}

pub async fn proxy(upstream: String, fail_first: usize) -> Proxy {
    async fn forward(State(state): State<ProxyState>, uri: Uri, body: Bytes) -> Response {
        let n = state.hits.fetch_add(1, Ordering::SeqCst);
        if n < state.fail_first {
            return (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response();
        }
        let sent = state
            .http
            .post(format!("{}{}", state.upstream, uri.path()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                let content_type = resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let bytes = resp.bytes().await.unwrap_or_default();
                (status, [(header::CONTENT_TYPE, content_type)], bytes).into_response()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let state = ProxyState {
        upstream,
        fail_first,
        hits: Arc::clone(&hits),
        http: reqwest::Client::new(),
    };
    let addr = serve(axum::Router::new().fallback(forward).with_state(state)).await;
    Proxy {
        url: format!("http://{addr}"),
        hits,
    }
}

/// The all-zero kasm id: a valid UUID that matches no session.
pub const NO_SUCH_KASM: &str = "00000000-0000-0000-0000-000000000000";

/// Call every `KasmApi` endpoint once with plausible arguments; `kasm` and `user` name an
/// existing session and user (or not, for error paths).
pub async fn every_endpoint(
    api: &dyn KasmApi,
    kasm: &str,
    user: &str,
) -> Vec<(&'static str, Result<(), KasmError>)> {
    let u = Some(user);
    let exec = ExecConfig {
        cmd: "true".into(),
        ..ExecConfig::default()
    };
    let mut attributes = Map::new();
    attributes.insert("theme".into(), "dark".into());
    let group = "68d557ac4cac42cca9f31c7c853de0f3";
    vec![
        (
            "request_kasm",
            api.request_kasm(&RequestKasm {
                user_id: Some(user.to_string()),
                ..RequestKasm::default()
            })
            .await
            .map(drop),
        ),
        (
            "get_kasm_status",
            api.get_kasm_status(kasm, u).await.map(drop),
        ),
        ("get_kasms", api.get_kasms().await.map(drop)),
        ("get_user_kasms", api.get_user_kasms(user).await.map(drop)),
        ("destroy_kasm", api.destroy_kasm(kasm, u).await),
        ("stop_kasm", api.stop_kasm(kasm, u).await),
        ("pause_kasm", api.pause_kasm(kasm, u).await),
        ("resume_kasm", api.resume_kasm(kasm, u).await),
        (
            "exec_command_kasm",
            api.exec_command_kasm(kasm, u, &exec).await,
        ),
        ("keepalive", api.keepalive(kasm).await.map(drop)),
        (
            "get_kasm_screenshot",
            api.get_kasm_screenshot(kasm, u, 320, 200).await.map(drop),
        ),
        (
            "get_kasm_frame_stats",
            api.get_kasm_frame_stats(kasm, u, "auto").await.map(drop),
        ),
        (
            "get_kasm_bottleneck_stats",
            api.get_kasm_bottleneck_stats(kasm, u).await.map(drop),
        ),
        ("join_kasm", api.join_kasm("abc123", u).await.map(drop)),
        ("get_images", api.get_images().await.map(drop)),
        ("get_users", api.get_users().await.map(drop)),
        (
            "get_user",
            api.get_user(&UserRef::Id(user.to_string())).await.map(drop),
        ),
        (
            "create_user",
            api.create_user(&NewUser {
                username: "table@example.com".into(),
                ..NewUser::default()
            })
            .await
            .map(drop),
        ),
        (
            "update_user",
            api.update_user(&UserUpdate {
                user_id: user.to_string(),
                phone: Some("555".into()),
                ..UserUpdate::default()
            })
            .await
            .map(drop),
        ),
        ("delete_user", api.delete_user(user, false).await),
        ("logout_user", api.logout_user(user).await),
        ("get_login", api.get_login(user).await.map(drop)),
        ("get_attributes", api.get_attributes(user).await.map(drop)),
        (
            "update_user_attributes",
            api.update_user_attributes(user, &attributes).await,
        ),
        ("add_user_group", api.add_user_group(user, group).await),
        (
            "remove_user_group",
            api.remove_user_group(user, group).await,
        ),
        (
            "get_session_recordings",
            api.get_session_recordings(kasm, false).await.map(drop),
        ),
    ]
}

/// A loopback HTTPS "Kasm" with a fresh self-signed certificate for 127.0.0.1 that answers
/// every request with `{"images":[]}`. Returns its URL and the certificate as PEM.
pub async fn tls_server() -> (String, String) {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A failed handshake (the client refused the certificate) just ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request_complete(&request) {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"images":[]}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("https://{addr}"), cert_pem)
}

/// Headers read and `content-length` bytes of body present.
fn request_complete(request: &[u8]) -> bool {
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    request.len() >= end + 4 + length
}

/// An extra simulator key `name` (secret `<name>-secret`) with these permissions.
pub fn key(name: &str, permissions: &[&str], read_only: bool) -> SimKey {
    SimKey {
        key: name.into(),
        secret: format!("{name}-secret"),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        read_only,
    }
}

/// A client using the extra key `name`.
pub fn keyed_client(sim: &Simulator, name: &str) -> kasm_mcp::kasm::KasmClient {
    client_at(&sim.base_url(), name, &format!("{name}-secret"), options())
}
