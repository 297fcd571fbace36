//! OAuth resource server, end to end over HTTP: the real app on loopback with `[oauth]`
//! enabled, a test-local authorization server (an axum app on loopback serving an OpenID
//! discovery document and a JWKS whose keys are generated in the test), and tokens signed
//! here, plus an RFC 7662 introspection endpoint for opaque tokens. Covers the refusals
//! (status and challenge), step-up, static tokens beside OAuth, the metadata document, key
//! rotation, the JWKS rate limit, an authorization-server outage and introspection. The full flow with a real authorization server and a real OAuth client is in
//! `tests/clients/test_oauth_flow.py`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kasm_mcp::app::{App, RunningApp};
use kasm_mcp::config::{Config, TokenConfig};
use kasm_mcp::mcp::{CallContext, McpServer, Tool, ToolAnnotations, ToolOutput, ToolSpec};
use kasm_mcp::policy::Role;
use kasm_mcp::tokens::TokenDigest;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::audit_log::ThreadCapture;

const RESOURCE: &str = "https://mcp.test/mcp";
const METADATA: &str = "https://mcp.test/.well-known/oauth-protected-resource/mcp";
const STATIC_TOKEN: &str = "static-token-ops";

// ---------------------------------------------------------------- keys and tokens

struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn es256(kid: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = pair.public_key_raw();
    assert_eq!(point.len(), 65, "uncompressed P-256 point");
    TestKey {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]),
                    "kid": kid, "use": "sig", "alg": "ES256"}),
    }
}

fn eddsa(kid: &str) -> TestKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    TestKey {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(&pair.serialize_der()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key_raw()),
                    "kid": kid, "use": "sig"}),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a good token from `issuer` for [`RESOURCE`] with `scope`.
fn claims(issuer: &str, scope: &str) -> Map<String, Value> {
    json!({"iss": issuer, "aud": RESOURCE, "sub": "alice", "client_id": "client-42",
           "scope": scope, "iat": now(), "exp": now() + 300})
    .as_object()
    .cloned()
    .unwrap()
}

fn sign(key: &TestKey, claims: &Map<String, Value>) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

// ---------------------------------------------------------------- the authorization server

#[derive(Clone, Default)]
struct AsState {
    issuer: Arc<Mutex<String>>,
    jwks: Arc<Mutex<Vec<Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
    introspections: Arc<AtomicUsize>,
}

const INTROSPECTION_AUTH: &str = "Basic a2FzbS1tY3A6aW50cm8tc2VjcmV0"; // kasm-mcp:intro-secret

/// RFC 7662: the answers for the opaque tokens this test hands out.
async fn introspect(
    State(s): State<AsState>,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(INTROSPECTION_AUTH) {
        return (axum::http::StatusCode::UNAUTHORIZED, "client auth").into_response();
    }
    s.introspections.fetch_add(1, Ordering::SeqCst);
    let issuer = s.issuer.lock().unwrap().clone();
    let active = |aud: &str| {
        json!({"active": true, "iss": issuer, "aud": [aud, "other"], "sub": "carol",
               "client_id": "opaque-client", "scope": "kasm:read", "exp": now() + 300})
    };
    let answer = match form.get("token").map(String::as_str) {
        Some("opaque-viewer") => active(RESOURCE),
        Some("opaque-other") => active("https://other.test/mcp"),
        _ => json!({"active": false}),
    };
    Json(answer).into_response()
}

/// A loopback authorization server: OpenID discovery and a JWKS (no token endpoint: the
/// tests sign tokens themselves).
struct TestAs {
    issuer: String,
    state: AsState,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestAs {
    async fn start(keys: &[&TestKey]) -> TestAs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/realms/test", listener.local_addr().unwrap());
        let state = AsState::default();
        *state.issuer.lock().unwrap() = issuer.clone();
        *state.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
        let router = axum::Router::new()
            .route(
                "/realms/test/.well-known/openid-configuration",
                get(|State(s): State<AsState>| async move {
                    let issuer = s.issuer.lock().unwrap().clone();
                    Json(
                        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"),
                                "authorization_endpoint": format!("{issuer}/auth"),
                                "token_endpoint": format!("{issuer}/token")}),
                    )
                }),
            )
            .route(
                "/realms/test/jwks",
                get(|State(s): State<AsState>| async move {
                    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                    Json(json!({"keys": s.jwks.lock().unwrap().clone()}))
                }),
            )
            .route("/realms/test/introspect", axum::routing::post(introspect))
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
                .unwrap();
        });
        TestAs {
            issuer,
            state,
            stop,
            task,
        }
    }

    /// Publish exactly these keys from now on (rotation).
    fn publish(&self, keys: &[&TestKey]) {
        *self.state.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    fn introspections(&self) -> usize {
        self.state.introspections.load(Ordering::SeqCst)
    }

    /// Stop listening: the port is closed afterwards.
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

// ---------------------------------------------------------------- the MCP server

struct Echo(ToolSpec);

#[async_trait]
impl Tool for Echo {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    async fn call(&self, ctx: &CallContext, _args: Map<String, Value>) -> ToolOutput {
        ToolOutput::text(format!(
            "{} ran as {} ({})",
            self.0.name, ctx.principal.name, ctx.principal.role
        ))
    }
}

fn tool(name: &str, min_role: Role) -> Arc<dyn Tool> {
    Arc::new(Echo(
        ToolSpec::builder(name, min_role)
            .title(name)
            .description(format!("test tool needing {min_role}"))
            .input_schema(json!({"type": "object"}))
            .annotations(ToolAnnotations::read_only())
            .build(),
    ))
}

fn oauth_config(issuer: &str, min_refresh_s: u64) -> Config {
    let mut config = Config::default();
    config.server.port = 0;
    config.auth.tokens = vec![TokenConfig {
        name: "ops".into(),
        sha256: TokenDigest::of(STATIC_TOKEN),
        role: Role::Admin,
        kasm_user_id: None,
    }];
    config.oauth.enabled = true;
    config.oauth.shared_kasm_user = true;
    config.oauth.issuer = Some(issuer.into());
    config.oauth.resource = Some(RESOURCE.into());
    config.oauth.jwks_min_refresh_s = min_refresh_s;
    config.oauth.http_timeout_ms = 2_000;
    config.validate().unwrap();
    config
}

struct Mcp {
    app: RunningApp,
    http: reqwest::Client,
}

impl Mcp {
    fn start(config: Config) -> Mcp {
        let server = Arc::new(McpServer::new(vec![
            tool("look", Role::Viewer),
            tool("run", Role::Operator),
            tool("manage", Role::Admin),
        ]));
        Mcp {
            app: App::build(config, server, axum::Router::new())
                .unwrap()
                .spawn(),
            http: reqwest::Client::new(),
        }
    }

    /// POST one JSON-RPC message to /mcp; status, `WWW-Authenticate`, body.
    async fn post(&self, token: Option<&str>, body: Value) -> (StatusCode, String, Value) {
        let mut req = self
            .http
            .post(format!("{}/mcp", self.app.base_url()))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, challenge, body)
    }

    async fn list(&self, token: &str) -> (StatusCode, Vec<String>) {
        let (status, _, body) = self
            .post(
                Some(token),
                json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
            )
            .await;
        let names = body
            .pointer("/result/tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        (status, names)
    }

    async fn call(&self, token: &str, name: &str) -> (StatusCode, String, Value) {
        self.post(
            Some(token),
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
                   "params":{"name": name, "arguments": {}}}),
        )
        .await
    }
}

fn text(body: &Value) -> &str {
    body.pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {body}"))
}

fn param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let len = challenge[start..].find('"')?;
    Some(&challenge[start..start + len])
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn refusals_carry_the_right_status_and_challenge() {
    let good = es256("k1");
    let ed = eddsa("k-ed");
    let stranger = es256("k1-not-published");
    let as_ = TestAs::start(&[&good, &ed]).await;
    let mcp = Mcp::start(oauth_config(&as_.issuer, 60));
    // The challenge asks for the least scope first (step-up brings more).
    let first_scope = "kasm:read";

    // No token: 401 pointing at the metadata, naming the scopes, no error code.
    let (status, challenge, _) = mcp
        .post(None, json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{METADATA}\", scope=\"{first_scope}\"")
    );

    let mut expired = claims(&as_.issuer, "kasm:read");
    expired.insert("exp".into(), json!(now() - 120));
    expired.insert("iat".into(), json!(now() - 600));
    let mut early = claims(&as_.issuer, "kasm:read");
    early.insert("nbf".into(), json!(now() + 600));
    let mut other_audience = claims(&as_.issuer, "kasm:read");
    other_audience.insert("aud".into(), json!("https://other.test/mcp"));
    let other_issuer = claims("http://127.0.0.1:1/realms/evil", "kasm:read");
    let none_token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        b64(serde_json::to_string(&claims(&as_.issuer, "kasm:admin"))
            .unwrap()
            .as_bytes())
    );
    // HS256 keyed with the published public key material: the classic confusion attack.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("k1".into());
    let hmac_token = jsonwebtoken::encode(
        &hs_header,
        &claims(&as_.issuer, "kasm:admin"),
        &EncodingKey::from_secret(good.jwk["x"].as_str().unwrap().as_bytes()).unwrap(),
    )
    .unwrap();
    // Right kid, wrong key: the signature does not verify.
    let mut forged_key = es256("k1");
    forged_key.kid = "k1".into();
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", sign(&good, &expired), "expired"),
        ("not yet valid", sign(&good, &early), "not valid yet"),
        (
            "other audience",
            sign(&good, &other_audience),
            "another resource",
        ),
        ("wrong issuer", sign(&good, &other_issuer), "another issuer"),
        ("alg none", none_token, "not a JWT"),
        ("HS256", hmac_token, "algorithm"),
        (
            "unknown key",
            sign(&stranger, &claims(&as_.issuer, "kasm:admin")),
            "does not publish",
        ),
        (
            "forged signature",
            sign(&forged_key, &claims(&as_.issuer, "kasm:admin")),
            "signature",
        ),
        ("garbage", "not-a-jwt-and-not-static".into(), "not a JWT"),
    ];
    for (what, token, reason) in &cases {
        let (status, challenge, body) = mcp
            .post(
                Some(token),
                json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(
            param(&challenge, "error"),
            Some("invalid_token"),
            "{what}: {challenge}"
        );
        assert_eq!(
            param(&challenge, "resource_metadata"),
            Some(METADATA),
            "{what}"
        );
        assert_eq!(param(&challenge, "scope"), Some(first_scope), "{what}");
        let description = param(&challenge, "error_description").unwrap_or_default();
        assert!(description.contains(reason), "{what}: {description}");
        assert!(
            !challenge.contains(token.as_str()) && !body.to_string().contains(token.as_str()),
            "{what}: the token is echoed"
        );
    }

    // A valid token with none of this server's scopes: 403 asking for the least scope.
    let (status, challenge, _) = mcp
        .post(
            Some(&sign(&good, &claims(&as_.issuer, "openid profile"))),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(param(&challenge, "error"), Some("insufficient_scope"));
    assert_eq!(param(&challenge, "scope"), Some("kasm:read"));

    // Good tokens (ES256 and EdDSA) pass; the principal is the subject.
    for key in [&good, &ed] {
        let token = sign(key, &claims(&as_.issuer, "kasm:read"));
        let (status, names) = mcp.list(&token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(names, vec!["look"], "a viewer sees only viewer tools");
        let (status, _, body) = mcp.call(&token, "look").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(text(&body), "look ran as oauth:alice (viewer)");
    }
    as_.stop().await;
    mcp.app.stop().await.unwrap();
}

#[tokio::test]
async fn viewer_token_steps_up_and_static_tokens_work_beside_oauth() {
    let key = es256("k1");
    let as_ = TestAs::start(&[&key]).await;
    let mcp = Mcp::start(oauth_config(&as_.issuer, 60));
    let viewer = sign(&key, &claims(&as_.issuer, "kasm:read"));

    let (status, challenge, body) = mcp.call(&viewer, "run").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"kasm:read kasm:operate\", resource_metadata=\"{METADATA}\""
        )
    );
    // A batch that hides the call among allowed ones is refused the same way.
    let (status, _, _) = mcp
        .post(
            Some(&viewer),
            json!([{"jsonrpc":"2.0","id":1,"method":"tools/list"},
                   {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The step-up token (the scopes the challenge named) runs it.
    let operator = sign(&key, &claims(&as_.issuer, "kasm:read kasm:operate"));
    let (status, _, body) = mcp.call(&operator, "run").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text(&body), "run ran as oauth:alice (operator)");
    let (_, names) = mcp.list(&operator).await;
    assert_eq!(names, vec!["look", "run"]);
    let (status, challenge, _) = mcp.call(&operator, "manage").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        param(&challenge, "scope"),
        Some("kasm:operate kasm:read kasm:admin")
    );

    // The static token works against the same running server, and is not an OAuth principal.
    let (status, _, body) = mcp.call(STATIC_TOKEN, "manage").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text(&body), "manage ran as ops (admin)");

    // The metadata, at the root and the path-suffixed URL.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let resp = mcp
            .http
            .get(format!("{}{path}", mcp.app.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([as_.issuer]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["kasm:admin", "kasm:operate", "kasm:read"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    as_.stop().await;
    mcp.app.stop().await.unwrap();
}

#[tokio::test]
async fn static_tokens_can_be_switched_off() {
    let key = es256("k1");
    let as_ = TestAs::start(&[&key]).await;
    let mut config = oauth_config(&as_.issuer, 60);
    config.oauth.static_tokens = false;
    let mcp = Mcp::start(config);
    let (status, challenge, _) = mcp.call(STATIC_TOKEN, "look").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(param(&challenge, "error"), Some("invalid_token"));
    let (status, _, _) = mcp
        .call(&sign(&key, &claims(&as_.issuer, "kasm:read")), "look")
        .await;
    assert_eq!(status, StatusCode::OK);
    as_.stop().await;
    mcp.app.stop().await.unwrap();
}

#[tokio::test]
async fn key_rotation_is_picked_up_and_cached_keys_outlive_the_issuer() {
    let old = es256("2026-old");
    let new = eddsa("2026-new");
    let as_ = TestAs::start(&[&old]).await;
    let mcp = Mcp::start(oauth_config(&as_.issuer, 0));
    let (status, _, _) = mcp
        .call(&sign(&old, &claims(&as_.issuer, "kasm:read")), "look")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(as_.fetches(), 1);

    // Rotation: the issuer now publishes only the new key. A token with its kid makes this
    // server refetch the JWKS without a restart.
    as_.publish(&[&new]);
    let rotated = sign(&new, &claims(&as_.issuer, "kasm:read"));
    let (status, _, body) = mcp.call(&rotated, "look").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(as_.fetches(), 2);

    // The issuer goes away: tokens signed by cached keys keep working, unknown keys are
    // refused quickly (connection refused, not a hang).
    let issuer = as_.issuer.clone();
    as_.stop().await;
    let (status, _, _) = mcp.call(&rotated, "look").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "cached key while the issuer is down"
    );
    let started = std::time::Instant::now();
    let (status, challenge, _) = mcp
        .call(&sign(&es256("2027"), &claims(&issuer, "kasm:read")), "look")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        param(&challenge, "error_description")
            .unwrap()
            .contains("does not publish")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    mcp.app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_kids_do_not_hammer_the_issuer() {
    let key = es256("k1");
    let as_ = TestAs::start(&[&key]).await;
    let mcp = Mcp::start(oauth_config(&as_.issuer, 3_600));
    let (status, _, _) = mcp
        .call(&sign(&key, &claims(&as_.issuer, "kasm:read")), "look")
        .await;
    assert_eq!(status, StatusCode::OK);
    for i in 0..5 {
        let forged = sign(
            &es256(&format!("made-up-{i}")),
            &claims(&as_.issuer, "kasm:read"),
        );
        let (status, _, _) = mcp.call(&forged, "look").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        as_.fetches(),
        1,
        "unknown kids within the refresh interval fetch nothing"
    );
    as_.stop().await;
    mcp.app.stop().await.unwrap();
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_cached() {
    let key = es256("k1");
    let as_ = TestAs::start(&[&key]).await;
    let mut config = oauth_config(&as_.issuer, 60);
    config.oauth.introspection_endpoint = Some(format!("{}/introspect", as_.issuer));
    config.oauth.introspection_client_id = Some("kasm-mcp".into());
    config.oauth.introspection_client_secret = Some("intro-secret".to_owned().into());
    config.validate().unwrap();
    let mcp = Mcp::start(config);

    for _ in 0..3 {
        let (status, _, body) = mcp.call("opaque-viewer", "look").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(text(&body), "look ran as oauth:carol (viewer)");
    }
    assert_eq!(as_.introspections(), 1, "an active answer is cached");
    let (status, challenge, _) = mcp.call("opaque-viewer", "run").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "introspected tokens step up too"
    );
    assert_eq!(param(&challenge, "error"), Some("insufficient_scope"));

    for (token, reason) in [
        ("opaque-other", "another resource"),
        ("opaque-revoked", "not active"),
        ("opaque-revoked", "not active"),
    ] {
        let (status, challenge, _) = mcp.call(token, "look").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        let description = param(&challenge, "error_description").unwrap_or_default();
        assert!(description.contains(reason), "{token}: {description}");
    }
    assert_eq!(as_.introspections(), 4, "refusals are not cached");
    // JWTs are still validated locally, without introspection.
    let (status, _, _) = mcp
        .call(&sign(&key, &claims(&as_.issuer, "kasm:read")), "look")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(as_.introspections(), 4);

    // The introspection endpoint gone: 503 for an uncached opaque token, cached ones still pass.
    as_.stop().await;
    let (status, _, _) = mcp.call("opaque-viewer", "look").await;
    assert_eq!(status, StatusCode::OK, "cached");
    let (status, _, body) = mcp.call("opaque-new", "look").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("introspect"),
        "{body}"
    );
    mcp.app.stop().await.unwrap();
}

// ---- OAuth refusals are audit events (through the configured sink) ------------------------

/// The `audit` events emitted through `audit::record_event` (they carry an `event` kind; the
/// default `log` sink turns them into `tracing` events, the other sinks into JSON lines).
fn recorded_events(captured: &ThreadCapture) -> Vec<Value> {
    captured
        .audit_events()
        .into_iter()
        .filter(|e| e["fields"]["event"].is_string())
        .map(|e| e["fields"].clone())
        .collect()
}

#[tokio::test]
async fn token_refusals_and_step_up_denials_are_audit_events_without_the_token() {
    // tokio::test runs every task on this thread (the server's too), so the thread's capture
    // sees all of this test's events, and only them.
    let (captured, _guard) = ThreadCapture::start();

    let key = es256("k1");
    let stranger = es256("k1-not-published");
    let as_ = TestAs::start(&[&key]).await;
    let mcp = Mcp::start(oauth_config(&as_.issuer, 60));

    let forged = sign(&stranger, &claims(&as_.issuer, "kasm:read"));
    let (status, _, _) = mcp.call(&forged, "look").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let viewer = sign(&key, &claims(&as_.issuer, "kasm:read"));
    let (status, _, _) = mcp.call(&viewer, "run").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let events = recorded_events(&captured);
    let refusal = events
        .iter()
        .find(|e| e["event"] == "oauth_refusal")
        .unwrap_or_else(|| panic!("no oauth_refusal audit event in {events:?}"));
    assert_eq!(refusal["principal"], "-");
    let details: Value = serde_json::from_str(refusal["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["decision"], "deny");
    assert!(!details["reason"].as_str().unwrap().is_empty());

    let step_up = events
        .iter()
        .find(|e| e["event"] == "step_up")
        .unwrap_or_else(|| panic!("no step_up audit event in {events:?}"));
    assert_eq!(step_up["principal"], "oauth:alice");
    let details: Value = serde_json::from_str(step_up["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["decision"], "deny");
    assert_eq!(details["scopes"], "kasm:read");
    assert!(
        details["reason"].as_str().unwrap().contains("operator"),
        "{details}"
    );

    let text = captured.text();
    for token in [&forged, &viewer] {
        assert!(!text.contains(token.as_str()), "a token reached the log");
    }
    as_.stop().await;
    mcp.app.stop().await.unwrap();
}
