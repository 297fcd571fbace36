//! Integration tests: the Kasm simulator over raw HTTP (reqwest), started on loopback port 0.
//! Commands really run: the sandbox tests check files on disk and processes in /proc.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use kasm_mcp::simulator::{
    Faults, Isolation, KasmVersion, SandboxMode, SimKey, Simulator, SimulatorConfig,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    sim: Simulator,
    http: reqwest::Client,
}

fn config(start_delay_ms: u64) -> SimulatorConfig {
    SimulatorConfig {
        start_delay: Duration::from_millis(start_delay_ms),
        ..SimulatorConfig::default()
    }
}

/// A key with only the given permissions.
fn sim_key(name: &str, perms: &[&str], read_only: bool) -> SimKey {
    SimKey {
        key: name.into(),
        secret: format!("{name}-secret"),
        permissions: perms.iter().map(|p| p.to_string()).collect(),
        read_only,
    }
}

impl Api {
    async fn start(config: SimulatorConfig) -> Api {
        let sim = Simulator::start(config).await.expect("simulator starts");
        Api {
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/api/public/{endpoint}", self.sim.base_url())
    }

    /// POST a JSON body as is.
    async fn raw(&self, endpoint: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(endpoint))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// POST with the given credentials added to the body.
    async fn call_as(
        &self,
        key: &str,
        secret: &str,
        endpoint: &str,
        mut body: Value,
    ) -> (StatusCode, Value) {
        body["api_key"] = json!(key);
        body["api_key_secret"] = json!(secret);
        let resp = self.raw(endpoint, body).await;
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{endpoint}: non-JSON body ({status}): {text}"));
        (status, value)
    }

    /// POST with the primary credentials; expects HTTP 200.
    async fn call(&self, endpoint: &str, body: Value) -> Value {
        let (key, secret) = (
            self.sim.api_key().to_string(),
            self.sim.api_secret().to_string(),
        );
        let (status, value) = self.call_as(&key, &secret, endpoint, body).await;
        assert_eq!(status, StatusCode::OK, "{endpoint}: {value}");
        value
    }

    fn user(&self) -> String {
        self.sim.default_user_id()
    }

    async fn request_session(&self) -> String {
        let r = self
            .call("request_kasm", json!({"user_id": self.user()}))
            .await;
        assert_eq!(r["status"], "starting", "{r}");
        r["kasm_id"].as_str().expect("kasm_id").to_string()
    }

    async fn status(&self, kasm_id: &str) -> Value {
        self.call(
            "get_kasm_status",
            json!({"user_id": self.user(), "kasm_id": kasm_id}),
        )
        .await
    }

    async fn wait_running(&self, kasm_id: &str) {
        eventually("session running", Duration::from_secs(10), || async {
            self.status(kasm_id).await["kasm"]["operational_status"] == "running"
        })
        .await;
    }

    async fn running_session(&self) -> String {
        let id = self.request_session().await;
        self.wait_running(&id).await;
        id
    }

    async fn exec(&self, kasm_id: &str, exec_config: Value) -> Value {
        self.call(
            "exec_command_kasm",
            json!({"user_id": self.user(), "kasm_id": kasm_id, "exec_config": exec_config}),
        )
        .await
    }
}

/// Poll `check` until it holds, failing after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn error_message(v: &Value) -> &str {
    v["error_message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn wrong_secret_is_403_access_denied_in_body_and_headers() {
    let api = Api::start(config(0)).await;
    let key = api.sim.api_key().to_string();
    let (status, body) = api.call_as(&key, "wrong", "get_images", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"error_message": "Access Denied"}));

    let resp = api
        .http
        .post(api.url("get_images"))
        .header("api-key", &key)
        .header("api-key-secret", "wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let good = api
        .http
        .post(api.url("get_images"))
        .header("api-key", &key)
        .header("api-key-secret", api.sim.api_secret())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    let (status, _) = api
        .call_as("no-such-key", "x", "get_images", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    api.sim.shutdown().await;
}

#[tokio::test]
async fn no_credentials_is_400_invalid_request() {
    let api = Api::start(config(0)).await;
    let resp = api.raw("get_images", json!({})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error_message": "Invalid Request"})
    );
    api.sim.shutdown().await;
}

#[tokio::test]
async fn missing_permission_read_only_and_impersonation_errors() {
    let mut cfg = config(0);
    cfg.extra_keys = vec![
        sim_key("user-only", &["User"], false),
        sim_key("ro", &["User", "Users Auth Session", "Users View"], true),
    ];
    let api = Api::start(cfg).await;
    let (status, body) = api
        .call_as("user-only", "user-only-secret", "get_users", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_message(&body), "Unauthorized");

    let (status, body) = api
        .call_as(
            "user-only",
            "user-only-secret",
            "get_kasm_status",
            json!({"user_id": api.user(), "kasm_id": "00000000000000000000000000000000"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_message(&body),
        "API Key (user-only) is not authorized to impersonate a user."
    );

    // A read-only key may read but not create.
    let (status, _) = api.call_as("ro", "ro-secret", "get_users", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call_as(
            "ro",
            "ro-secret",
            "request_kasm",
            json!({"user_id": api.user()}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_message(&body), "Unauthorized");

    // user_id: unknown → 400; dashed form accepted; not a UUID → CherryPy 500 page.
    let unknown = "00000000-0000-0000-0000-000000000000";
    let (key, secret) = (
        api.sim.api_key().to_string(),
        api.sim.api_secret().to_string(),
    );
    let (status, body) = api
        .call_as(&key, &secret, "get_user_kasms", json!({"user_id": unknown}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_message(&body), format!("Invalid user_id ({unknown})"));
    let dashed = uuid::Uuid::parse_str(&api.user())
        .unwrap()
        .hyphenated()
        .to_string();
    let body = api.call("get_user_kasms", json!({"user_id": dashed})).await;
    assert_eq!(body["kasms"], json!([]));
    let mut bad = json!({"user_id": "not-a-uuid"});
    bad["api_key"] = json!(key);
    bad["api_key_secret"] = json!(secret);
    let resp = api.raw("get_user_kasms", bad).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(resp.text().await.unwrap().contains("<html>"));
    api.sim.shutdown().await;

    // The 1.19 variant answers a missing permission with 403.
    let mut cfg = config(0);
    cfg.missing_permission_status = 403;
    cfg.extra_keys = vec![sim_key("user-only", &["User"], false)];
    let api = Api::start(cfg).await;
    let (status, body) = api
        .call_as("user-only", "user-only-secret", "get_users", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_message(&body), "Unauthorized");
    api.sim.shutdown().await;
}

#[tokio::test]
async fn non_json_bodies_and_unknown_paths_get_cherrypy_html_pages() {
    let api = Api::start(config(0)).await;
    let resp = api
        .http
        .post(api.url("get_images"))
        .header("content-type", "text/plain")
        .body("api_key=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let resp = api
        .http
        .post(api.url("get_images"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("CherryPy"));
    let resp = api.raw("no_such_endpoint", json!({})).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("/api/public/no_such_endpoint")
    );
    api.sim.shutdown().await;
}

#[tokio::test]
async fn request_kasm_starts_then_runs_in_the_1_15_shape() {
    let api = Api::start(config(300)).await;
    let r = api
        .call(
            "request_kasm",
            json!({"user_id": api.user(), "enable_sharing": true}),
        )
        .await;
    assert_eq!(r["status"], "starting");
    assert_eq!(r["username"], "agent@example.com");
    let id = r["kasm_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    let token = r["session_token"].as_str().unwrap();
    assert_eq!(
        r["kasm_url"],
        format!("/#/connect/kasm/{id}/{}/{token}", api.user())
    );
    assert!(r["share_id"].is_string());

    let starting = api.status(&id).await;
    assert_eq!(
        starting,
        json!({"error_message": "This session is currently starting."})
    );
    api.wait_running(&id).await;
    let running = api.status(&id).await;
    assert_eq!(running["kasm"]["kasm_id"], id.as_str());
    assert_eq!(running["kasm"]["image"]["friendly_name"], "Terminal");
    assert!(
        running["kasm"]["port_map"]["vnc"]["path"]
            .as_str()
            .unwrap()
            .starts_with("desktop/")
    );
    assert!(
        running["kasm_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/#/connect/kasm/{id}/"))
    );
    assert!(running["current_time"].as_str().unwrap().contains(' '));
    api.sim.shutdown().await;
}

#[tokio::test]
async fn still_starting_has_a_kasm_object_in_the_1_19_shape() {
    let mut cfg = config(400);
    cfg.kasm_version = KasmVersion::V1_19;
    let api = Api::start(cfg).await;
    let id = api.request_session().await;
    let starting = api.status(&id).await;
    assert!(starting.get("error_message").is_none(), "{starting}");
    assert_eq!(starting["kasm"]["operational_status"], "starting");
    assert_eq!(starting["operational_status"], "starting");
    assert!(starting["operational_progress"].as_u64().unwrap() < 100);
    api.wait_running(&id).await;
    api.sim.shutdown().await;
}

#[tokio::test]
async fn per_user_session_limit() {
    let api = Api::start(config(0)).await;
    api.request_session().await;
    api.request_session().await;
    let third = api
        .call("request_kasm", json!({"user_id": api.user()}))
        .await;
    assert_eq!(
        third,
        json!({"error_message": "Kasm limit exceeded for user: (agent@example.com)"})
    );
    // Anonymous requests create a fresh user each time, so the limit does not bite.
    let anon = api.call("request_kasm", json!({})).await;
    assert_eq!(anon["status"], "starting");
    assert_ne!(anon["user_id"], api.user().as_str());
    api.sim.shutdown().await;
}

#[tokio::test]
async fn lifecycle_transitions_and_their_errors() {
    let mut cfg = config(200);
    cfg.extra_keys = vec![sim_key("plain", &["User", "Users Auth Session"], false)];
    let api = Api::start(cfg).await;
    let user = api.user();
    let id = api.request_session().await;
    let body = |id: &str| json!({"user_id": user, "kasm_id": id});

    let r = api.call("pause_kasm", body(&id)).await;
    assert_eq!(
        error_message(&r),
        "Session is not in a valid state to be paused"
    );
    api.wait_running(&id).await;
    let r = api.call("resume_kasm", body(&id)).await;
    assert_eq!(
        error_message(&r),
        format!("Session ({id}) is in status (running) and cannot be resumed")
    );

    // Without Sessions Modify, Kasm's default group settings forbid stop and pause.
    let (_, r) = api
        .call_as("plain", "plain-secret", "stop_kasm", body(&id))
        .await;
    assert_eq!(
        error_message(&r),
        "User is not authorized to issue a stop request"
    );

    assert_eq!(api.call("pause_kasm", body(&id)).await, json!({}));
    assert_eq!(
        api.status(&id).await,
        json!({"operational_status": "paused"})
    );
    let r = api.exec(&id, json!({"cmd": "true"})).await;
    assert_eq!(
        error_message(&r),
        "Kasm is not running or is not responding"
    );
    let r = api.call("keepalive", json!({"kasm_id": id})).await;
    assert!(
        error_message(&r).contains("Can not honor keepalive request"),
        "{r}"
    );

    assert_eq!(api.call("resume_kasm", body(&id)).await, json!({}));
    api.wait_running(&id).await;
    assert_eq!(api.call("stop_kasm", body(&id)).await, json!({}));
    assert_eq!(
        api.status(&id).await,
        json!({"operational_status": "stopped"})
    );
    let r = api.call("stop_kasm", body(&id)).await;
    assert_eq!(
        error_message(&r),
        "Session is not in a valid state to be stopped"
    );
    assert_eq!(api.call("resume_kasm", body(&id)).await, json!({}));
    api.wait_running(&id).await;

    assert_eq!(api.call("destroy_kasm", body(&id)).await, json!({}));
    assert_eq!(
        api.status(&id).await,
        json!({"error_message": "Could not find requested Kasm."})
    );
    let r = api.call("destroy_kasm", body(&id)).await;
    assert_eq!(
        error_message(&r),
        format!("No session found with kasm_id ({id})")
    );
    let r = api.call("destroy_kasm", json!({"user_id": user})).await;
    assert_eq!(error_message(&r), "Invalid Request");
    api.sim.shutdown().await;
}

#[tokio::test]
async fn session_reads_lists_keepalive_join_stats_and_recordings() {
    let api = Api::start(config(0)).await;
    let user = api.user();
    let r = api
        .call(
            "request_kasm",
            json!({"user_id": user, "enable_sharing": true}),
        )
        .await;
    let id = r["kasm_id"].as_str().unwrap().to_string();
    let share_id = r["share_id"].as_str().unwrap().to_string();
    api.wait_running(&id).await;

    let all = api.call("get_kasms", json!({})).await;
    let listed = &all["kasms"][0];
    assert_eq!(listed["kasm_id"], id.as_str());
    assert_eq!(listed["user"]["username"], "agent@example.com");
    assert_eq!(listed["server"]["provider"], "docker");
    let mine = api.call("get_user_kasms", json!({"user_id": user})).await;
    assert_eq!(mine["kasms"].as_array().unwrap().len(), 1);

    assert_eq!(
        api.call("keepalive", json!({"kasm_id": id})).await,
        json!({"usage_reached": false})
    );
    let (key, secret) = (
        api.sim.api_key().to_string(),
        api.sim.api_secret().to_string(),
    );
    let (status, r) = api.call_as(&key, &secret, "keepalive", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_message(&r),
        "Invalid Request: Missing required parameters"
    );

    let joined = api.call("join_kasm", json!({"share_id": share_id})).await;
    assert_eq!(joined["kasm"]["kasm_id"], id.as_str());
    assert!(
        joined["kasm_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("/#/connect/join/{share_id}/"))
    );
    let r = api.call("join_kasm", json!({})).await;
    assert_eq!(error_message(&r), "Missing Parameters: share_id is missing");

    let frames = api
        .call(
            "get_kasm_frame_stats",
            json!({"user_id": user, "kasm_id": id}),
        )
        .await;
    assert!(
        frames["frame"].is_object() && frames["clients"].is_array(),
        "{frames}"
    );
    let bottleneck = api
        .call(
            "get_kasm_bottleneck_stats",
            json!({"user_id": user, "kasm_id": id}),
        )
        .await;
    let first = bottleneck.as_object().unwrap().values().next().unwrap();
    assert_eq!(
        first
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        4
    );

    let rec = api
        .call("get_session_recordings", json!({"target_kasm_id": id}))
        .await;
    assert_eq!(rec["session_recordings"], json!([]));
    let rec = api.call("get_session_recordings", json!({})).await;
    assert_eq!(
        error_message(&rec),
        "Invalid Request. Missing required parameters"
    );

    let images = api.call("get_images", json!({})).await;
    let names: Vec<&str> = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("kasmweb/terminal")));
    assert!(names.iter().any(|n| n.starts_with("kasmweb/chrome")));
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("kasmweb/ubuntu-jammy-desktop"))
    );
    let chrome = images["images"][1]["image_id"]
        .as_str()
        .unwrap()
        .to_string();
    api.call("destroy_kasm", json!({"user_id": user, "kasm_id": id}))
        .await;
    let r = api
        .call("request_kasm", json!({"user_id": user, "image_id": chrome}))
        .await;
    let chrome_session = r["kasm_id"].as_str().unwrap().to_string();
    api.wait_running(&chrome_session).await;
    assert_eq!(
        api.status(&chrome_session).await["kasm"]["image"]["friendly_name"],
        "Chrome"
    );

    // Ids are UUIDs: a non-UUID kasm_id crashes Kasm's database layer (CherryPy 500 page).
    let mut bad = json!({"user_id": user, "kasm_id": "xyz"});
    bad["api_key"] = json!(key);
    bad["api_key_secret"] = json!(secret);
    let resp = api.raw("get_kasm_status", bad).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    api.sim.shutdown().await;
}

#[tokio::test]
async fn screenshot_is_a_jpeg_and_unknown_sessions_are_404() {
    let api = Api::start(config(0)).await;
    let id = api.running_session().await;
    let mut body = json!({"user_id": api.user(), "kasm_id": id, "width": 640, "height": 360});
    body["api_key"] = json!(api.sim.api_key());
    body["api_key_secret"] = json!(api.sim.api_secret());
    let resp = api.raw("get_kasm_screenshot", body.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/jpg");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);

    body["kasm_id"] = json!("00000000000000000000000000000000");
    let resp = api.raw("get_kasm_screenshot", body).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.bytes().await.unwrap().is_empty());
    api.sim.shutdown().await;
}

#[tokio::test]
async fn users_groups_and_attributes() {
    let api = Api::start(config(0)).await;
    let created = api
        .call(
            "create_user",
            json!({"target_user": {"username": "bob@example.com", "first_name": "Bob",
                                   "last_name": "Williams", "password": "pw", "organization": "example"}}),
        )
        .await;
    let user = &created["user"];
    assert_eq!(user["username"], "bob@example.com");
    assert_eq!(user["realm"], "local");
    assert_eq!(user["groups"][0]["name"], "All Users");
    let bob = user["user_id"].as_str().unwrap().to_string();
    let dup = api
        .call(
            "create_user",
            json!({"target_user": {"username": "bob@example.com"}}),
        )
        .await;
    assert_eq!(error_message(&dup), "Username already exists");

    let by_name = api
        .call(
            "get_user",
            json!({"target_user": {"username": "bob@example.com"}}),
        )
        .await;
    assert_eq!(by_name["user"]["user_id"], bob.as_str());
    let updated = api
        .call(
            "update_user",
            json!({"target_user": {"user_id": bob, "last_name": "Smith", "locked": true}}),
        )
        .await;
    assert_eq!(updated["user"]["last_name"], "Smith");
    assert_eq!(updated["user"]["locked"], true);
    let users = api.call("get_users", json!({})).await;
    assert_eq!(
        users["total"].as_u64().unwrap() as usize,
        users["users"].as_array().unwrap().len()
    );
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["user_id"] == bob.as_str())
    );

    let attrs = api
        .call("get_attributes", json!({"target_user": {"user_id": bob}}))
        .await;
    assert_eq!(attrs["user_attributes"]["show_tips"], true);
    assert_eq!(
        api.call(
            "update_user_attributes",
            json!({"target_user_attributes": {"user_id": bob, "show_tips": false}})
        )
        .await,
        json!({})
    );
    let attrs = api
        .call("get_attributes", json!({"target_user": {"user_id": bob}}))
        .await;
    assert_eq!(attrs["user_attributes"]["show_tips"], false);

    let login = api
        .call("get_login", json!({"target_user": {"user_id": bob}}))
        .await;
    assert!(
        login["url"]
            .as_str()
            .unwrap()
            .contains(&format!("/#/connect/login/dash/{bob}/"))
    );
    assert_eq!(
        api.call("logout_user", json!({"target_user": {"user_id": bob}}))
            .await,
        json!({})
    );

    // Groups: errors are HTTP 400.
    let devs = "d3e4f5a6b7c8490a1b2c3d4e5f607182";
    let group_call =
        |g: &str| json!({"target_user": {"user_id": bob}, "target_group": {"group_id": g}});
    assert_eq!(
        api.call("add_user_group", group_call(devs)).await,
        json!({})
    );
    let (key, secret) = (
        api.sim.api_key().to_string(),
        api.sim.api_secret().to_string(),
    );
    let (status, r) = api
        .call_as(&key, &secret, "add_user_group", group_call(devs))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_message(&r),
        "User (bob@example.com) is already a member of group (Developers)"
    );
    assert_eq!(
        api.call("remove_user_group", group_call(devs)).await,
        json!({})
    );
    let (status, r) = api
        .call_as(&key, &secret, "remove_user_group", group_call(devs))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_message(&r),
        "User (bob@example.com) is not a member of group (Developers)"
    );
    let unknown_group = "11111111111111111111111111111111";
    let (status, r) = api
        .call_as(&key, &secret, "add_user_group", group_call(unknown_group))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_message(&r),
        format!("Invalid Group ID ({unknown_group})")
    );

    // delete_user refuses while the user has sessions, unless forced.
    let r = api.call("request_kasm", json!({"user_id": bob})).await;
    assert_eq!(r["status"], "starting");
    let r = api
        .call("delete_user", json!({"target_user": {"user_id": bob}}))
        .await;
    assert_eq!(
        error_message(&r),
        "Users contains (1) kasms and 'force' option not set to True"
    );
    let r = api
        .call(
            "delete_user",
            json!({"target_user": {"user_id": bob}, "force": "yes"}),
        )
        .await;
    assert_eq!(
        error_message(&r),
        "Invalid Request. 'force' option must be boolean"
    );
    assert_eq!(
        api.call(
            "delete_user",
            json!({"target_user": {"user_id": bob}, "force": true})
        )
        .await,
        json!({})
    );
    let gone = api
        .call("get_user", json!({"target_user": {"user_id": bob}}))
        .await;
    assert_eq!(error_message(&gone), format!("Unknown user ({bob})"));
    api.sim.shutdown().await;
}

/// Start a simulator whose sandbox is `mode`; bwrap must really be in use when asked for.
async fn sandboxed(mode: SandboxMode) -> Api {
    let mut cfg = config(0);
    cfg.sandbox = mode;
    // These tests count a session's processes: no display (and so no xterm) here.
    cfg.display.enabled = false;
    let api = Api::start(cfg).await;
    if mode == SandboxMode::Bwrap {
        assert!(
            matches!(api.sim.isolation(), Isolation::Bwrap(_)),
            "bwrap is not usable here: run scripts/setup-test-deps.sh"
        );
    }
    api
}

async fn wait_for_file(path: &Path) -> String {
    eventually(
        &format!("{} to be written", path.display()),
        Duration::from_secs(10),
        || async { std::fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n')) },
    )
    .await;
    std::fs::read_to_string(path).unwrap()
}

/// Session commands run without capabilities, also as `root` and when the simulator itself
/// runs as root, so the read-only host view cannot be remounted writable.
#[tokio::test]
async fn bwrap_session_commands_have_no_capabilities() {
    let api = sandboxed(SandboxMode::Bwrap).await;
    let a = api.running_session().await;
    let dir = api.sim.session_dir(&a).unwrap();
    let marker = format!("kasm-sim-caps-{}", std::process::id());
    for (user, name) in [(None, "default"), (Some("root"), "root")] {
        let script = format!(
            "grep CapEff /proc/self/status > /home/kasm-user/caps-{name}; \
             mount -o remount,rw / 2>/dev/null; echo $? > /home/kasm-user/remount-{name}; \
             touch /etc/{marker} 2>/dev/null; echo done > /home/kasm-user/done-{name}"
        );
        let mut config = json!({"cmd": format!("sh -c '{script}'")});
        if let Some(user) = user {
            config["user"] = json!(user);
        }
        api.exec(&a, config).await;
        wait_for_file(&dir.join(format!("done-{name}"))).await;
        let caps = std::fs::read_to_string(dir.join(format!("caps-{name}"))).unwrap();
        assert_eq!(
            caps.split_whitespace().nth(1),
            Some("0000000000000000"),
            "{name}: {caps}"
        );
        let remount = std::fs::read_to_string(dir.join(format!("remount-{name}"))).unwrap();
        assert_ne!(
            remount.trim(),
            "0",
            "{name}: the host view was remounted writable"
        );
        assert!(!Path::new("/etc").join(&marker).exists());
    }
    api.sim.shutdown().await;
}

#[tokio::test]
async fn bwrap_exec_writes_into_its_own_session_only() {
    let api = sandboxed(SandboxMode::Bwrap).await;
    let a = api.running_session().await;
    let b = api.running_session().await;
    let dashed_a = uuid::Uuid::parse_str(&a).unwrap().hyphenated().to_string();
    let r = api
        .exec(
            &dashed_a,
            json!({"cmd": "sh -c 'echo hi > /home/kasm-user/x'"}),
        )
        .await;
    assert_eq!(r["kasm"]["kasm_id"], a.as_str());
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["current_time", "kasm"],
        "exec must return no output: {r}"
    );

    let dir_a = api.sim.session_dir(&a).unwrap();
    let dir_b = api.sim.session_dir(&b).unwrap();
    assert_eq!(wait_for_file(&dir_a.join("x")).await, "hi\n");
    assert!(!dir_b.join("x").exists());

    // workdir, environment, private /tmp, read-only host files, HOME.
    let marker = format!("kasm-sim-test-{}", std::process::id());
    let script = format!(
        "echo \"$FOO $PWD $HOME\" > /home/kasm-user/env; ls /home > /home/kasm-user/homes; \
         touch /etc/{marker} 2>/dev/null; echo $? > /home/kasm-user/etc_rc; \
         touch /tmp/{marker}; echo done > /home/kasm-user/done"
    );
    api.exec(
        &a,
        json!({"cmd": format!("sh -c '{script}'"), "workdir": "/tmp",
                        "environment": {"FOO": "bar"}}),
    )
    .await;
    wait_for_file(&dir_a.join("done")).await;
    assert_eq!(
        std::fs::read_to_string(dir_a.join("env")).unwrap(),
        "bar /tmp /home/kasm-user\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir_a.join("homes")).unwrap(),
        "kasm-user\n"
    );
    assert_ne!(
        std::fs::read_to_string(dir_a.join("etc_rc"))
            .unwrap()
            .trim(),
        "0"
    );
    assert!(!Path::new("/etc").join(&marker).exists());
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "/tmp must be private"
    );

    // No implicit shell: redirection characters are plain arguments.
    api.exec(
        &a,
        json!({"cmd": "touch /home/kasm-user/literal '>' /home/kasm-user/gt"}),
    )
    .await;
    wait_for_exists(&dir_a.join("gt")).await;
    assert!(dir_a.join(">").exists());
    api.sim.shutdown().await;
}

async fn wait_for_exists(path: &Path) {
    eventually(
        &format!("{} to exist", path.display()),
        Duration::from_secs(10),
        || async { path.exists() },
    )
    .await;
}

#[tokio::test]
async fn directory_exec_runs_in_the_session_directory() {
    let api = sandboxed(SandboxMode::Directory).await;
    let a = api.running_session().await;
    let b = api.running_session().await;
    api.exec(
        &a,
        json!({"cmd": "sh -c 'echo \"$FOO\" > \"$HOME/x\"; pwd > here'",
                        "environment": {"FOO": "from-exec"}}),
    )
    .await;
    let dir_a = api.sim.session_dir(&a).unwrap();
    assert_eq!(wait_for_file(&dir_a.join("x")).await, "from-exec\n");
    let here = wait_for_file(&dir_a.join("here")).await;
    assert_eq!(
        Path::new(here.trim()),
        std::fs::canonicalize(&dir_a).unwrap()
    );
    assert!(!api.sim.session_dir(&b).unwrap().join("x").exists());
    api.sim.shutdown().await;
}

/// Pids of processes whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want = argv.join("\0") + "\0";
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes())
        })
        .collect()
}

/// Gone, or a zombie waiting for a reaper.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn destroy_kills_processes_and_removes_the_directory(mode: SandboxMode) {
    let api = sandboxed(mode).await;
    let id = api.running_session().await;
    let seconds = format!("{}", 3000 + std::process::id() % 1000 + mode as u32 * 7);
    // A detached grandchild too: `sh -c 'sleep N & sleep N'`.
    api.exec(
        &id,
        json!({"cmd": format!("sh -c 'sleep {seconds} & sleep {seconds}'")}),
    )
    .await;
    let argv = ["sleep", seconds.as_str()];
    eventually(
        "sleep processes to start",
        Duration::from_secs(10),
        || async { pids_running(&argv).len() == 2 },
    )
    .await;
    let pids = pids_running(&argv);
    let groups = api.sim.session_process_groups(&id);
    assert_eq!(groups.len(), 1, "{groups:?}");
    let dir = api.sim.session_dir(&id).unwrap();

    assert_eq!(
        api.call(
            "destroy_kasm",
            json!({"user_id": api.user(), "kasm_id": id})
        )
        .await,
        json!({})
    );
    eventually(
        "session processes to die",
        Duration::from_secs(10),
        || async { pids.iter().all(|&pid| dead(pid)) },
    )
    .await;
    assert!(!dir.exists(), "session directory must be removed");
    assert!(api.sim.session_dir(&id).is_none());
    assert!(api.sim.session_process_groups(&id).is_empty());
    api.sim.shutdown().await;
}

#[tokio::test]
async fn destroy_kills_bwrap_session_processes() {
    destroy_kills_processes_and_removes_the_directory(SandboxMode::Bwrap).await;
}

#[tokio::test]
async fn destroy_kills_directory_session_processes() {
    destroy_kills_processes_and_removes_the_directory(SandboxMode::Directory).await;
}

#[tokio::test]
async fn shutdown_kills_everything_and_removes_the_sandbox_root() {
    let api = sandboxed(SandboxMode::Directory).await;
    let id = api.running_session().await;
    let seconds = format!("{}", 4000 + std::process::id() % 1000);
    api.exec(&id, json!({"cmd": format!("sleep {seconds}")}))
        .await;
    let argv = ["sleep", seconds.as_str()];
    eventually("sleep to start", Duration::from_secs(10), || async {
        pids_running(&argv).len() == 1
    })
    .await;
    let pids = pids_running(&argv);
    let root = api.sim.sandbox_root().to_path_buf();
    api.sim.shutdown().await;
    eventually("processes to die", Duration::from_secs(10), || async {
        pids.iter().all(|&pid| dead(pid))
    })
    .await;
    assert!(!root.exists());
}

#[tokio::test]
async fn faults_latency_errors_and_hang() {
    let api = Api::start(config(0)).await;
    api.sim.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let started = Instant::now();
    api.call("get_images", json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(300));

    api.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let resp = api.raw("get_images", json!({})).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("500 Internal Server Error")
    );

    api.sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let err = impatient
        .post(api.url("get_images"))
        .json(&json!({}))
        .send()
        .await
        .expect_err("a hanging simulator never answers");
    assert!(err.is_timeout(), "{err}");

    // The HTTP control endpoint: primary key only; clearing `hang` releases waiting calls.
    let pending = tokio::spawn({
        let http = api.http.clone();
        let url = api.url("get_images");
        let body = json!({"api_key": api.sim.api_key(), "api_key_secret": api.sim.api_secret()});
        async move { http.post(url).json(&body).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    let faults_url = format!("{}/__simulator/faults", api.sim.base_url());
    let resp = api
        .http
        .post(&faults_url)
        .header("api-key", api.sim.api_key())
        .header("api-key-secret", "wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = api
        .http
        .post(&faults_url)
        .header("api-key", api.sim.api_key())
        .header("api-key-secret", api.sim.api_secret())
        .json(&json!({"hang": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let status = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("released")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    api.sim.shutdown().await;
}

/// The state letter of a process (`S` sleeping, `T` stopped, `Z` zombie), if it exists.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[tokio::test]
async fn pause_freezes_stop_kills_and_process_count_is_capped() {
    let mut cfg = config(0);
    cfg.sandbox = SandboxMode::Directory;
    cfg.max_processes_per_session = 2;
    let api = Api::start(cfg).await;
    let id = api.running_session().await;
    let body = json!({"user_id": api.user(), "kasm_id": id});
    let seconds = format!("{}", 5000 + std::process::id() % 1000);
    let argv = ["sleep", seconds.as_str()];
    for _ in 0..2 {
        let r = api
            .exec(&id, json!({"cmd": format!("sleep {seconds}")}))
            .await;
        assert!(r.get("error_message").is_none(), "{r}");
    }
    let r = api.exec(&id, json!({"cmd": "true"})).await;
    assert_eq!(error_message(&r), "Kasm exec failed");
    eventually("two sleeps", Duration::from_secs(10), || async {
        pids_running(&argv).len() == 2
    })
    .await;
    let pids = pids_running(&argv);

    assert_eq!(api.call("pause_kasm", body.clone()).await, json!({}));
    eventually(
        "paused processes to be stopped",
        Duration::from_secs(10),
        || async { pids.iter().all(|&p| process_state(p) == Some('T')) },
    )
    .await;
    assert_eq!(api.call("resume_kasm", body.clone()).await, json!({}));
    eventually(
        "resumed processes to run again",
        Duration::from_secs(10),
        || async { pids.iter().all(|&p| process_state(p) == Some('S')) },
    )
    .await;
    assert_eq!(api.call("stop_kasm", body.clone()).await, json!({}));
    eventually(
        "stopped session's processes to die",
        Duration::from_secs(10),
        || async { pids.iter().all(|&pid| dead(pid)) },
    )
    .await;
    // The files survive a stop (only destroy removes them).
    assert!(api.sim.session_dir(&id).is_some());
    api.sim.shutdown().await;
}

/// With Xvfb installed, a bwrap session has its own display at `:1` with an xterm on it;
/// destroying the session stops the X server (its socket goes) and the xterm.
#[tokio::test]
async fn a_bwrap_session_has_its_own_display_and_destroy_stops_it() {
    let mut cfg = config(0);
    cfg.sandbox = SandboxMode::Bwrap;
    cfg.display.width = 640;
    cfg.display.height = 480;
    let api = Api::start(cfg).await;
    let id = api.running_session().await;
    let number = api
        .sim
        .session_display(&id)
        .expect("Xvfb is installed (setup-test-deps.sh)");
    let socket = format!("/tmp/.X11-unix/X{number}");
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
    let dir = api.sim.session_dir(&id).unwrap();
    let mut windows = String::new();
    for _ in 0..50 {
        let _ = std::fs::remove_file(dir.join("w.txt"));
        api.exec(
            &id,
            json!({"cmd": "sh -c 'echo $DISPLAY > d.txt; xdotool getdisplaygeometry > g.txt; ps -ef > p.txt; xdotool search --class xterm > w.tmp; echo end >> w.tmp; mv w.tmp w.txt'"}),
        )
        .await;
        windows = wait_for_file(&dir.join("w.txt")).await.replace("end\n", "");
        if !windows.trim().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !windows.trim().is_empty(),
        "no xterm window on the display; processes: {}",
        std::fs::read_to_string(dir.join("p.txt")).unwrap_or_default()
    );
    assert_eq!(std::fs::read_to_string(dir.join("d.txt")).unwrap(), ":1\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("g.txt")).unwrap(),
        "640 480\n"
    );
    let groups = api.sim.session_process_groups(&id);
    assert!(!groups.is_empty());

    api.call(
        "destroy_kasm",
        json!({"user_id": api.user(), "kasm_id": id}),
    )
    .await;
    assert_eq!(api.sim.session_display(&id), None);
    eventually("the X server to stop", Duration::from_secs(10), || async {
        std::os::unix::net::UnixStream::connect(&socket).is_err()
    })
    .await;
    eventually("the xterm to die", Duration::from_secs(10), || async {
        groups
            .iter()
            .all(|&pgid| nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_err())
    })
    .await;
    api.sim.shutdown().await;
}
