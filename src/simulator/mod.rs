//! The built-in Kasm simulator: an axum app faithful to the classic `/api/public/*` Developer
//! API as described in `reference/kasm-api.md` (run it with `kasm-mcp simulator`).
//!
//! What it reproduces: credentials in the JSON body or the `api-key`/`api-key-secret` headers;
//! 403 `Access Denied`, 400 `Invalid Request`, 401 (or 403 for 1.19) `Unauthorized`, the
//! impersonation and `Invalid user_id` errors; logical errors as HTTP 200 + `error_message`;
//! sessions that go `starting` → `running` after `start_delay` (1.15 and 1.19 "still starting"
//! shapes), stop/pause/resume/destroy, the per-user session limit; users, groups and
//! attributes in memory; three workspace images; generated JPEG screenshots; CherryPy HTML
//! pages for non-JSON bodies, unknown paths and crashes (a non-UUID id is a crash, as Kasm's
//! database makes it one).
//!
//! `exec_command_kasm` really runs the command (split shell-style, no implicit shell, no
//! output returned) in a per-session sandbox, see [`sandbox`]: with `bwrap`, the session's
//! directory ([`Simulator::session_dir`]) is its `/home/kasm-user`.
//!
//! Extras that real Kasm does not have:
//! * `GET /__simulator/faults` and `POST /__simulator/faults` with a JSON body
//!   `{"latency_ms": 0, "error_rate": 0.0, "hang": false}` (missing fields = 0/false), only for
//!   the primary key, e.g.
//!   `curl -H "api-key: $KEY" -H "api-key-secret: $SECRET" -H 'content-type: application/json'
//!   -d '{"hang":true}' $URL/__simulator/faults`. Hanging calls resume when `hang` is cleared.
//! * `GET /__simulator/stats`: `{"exec_requests": N}`, the number of `exec_command_kasm`
//!   requests received (no credentials needed: it is a count, nothing more). Tests use it to
//!   show that a command refused by the server's policy never reached Kasm.
//! * `GET /__simulator/requests` (primary key only): calls received so far per endpoint, as
//!   `{"get_kasm_status": 12, …}`, so a test or the load generator can count Kasm requests.
//! * The group settings `allow_kasm_stop`/`allow_kasm_pause` are off, as Kasm's defaults: only
//!   keys with "Sessions Modify" may stop or pause.
//!
//! This module is a separate app: nothing in `serve` routes to it.

pub mod config;
pub mod display;
pub mod sandbox;

mod api;
mod auth;
mod cli;
mod ctx;
mod exec;
mod http;
mod images;
mod media;
mod render;
mod reply;
mod screenshot;
mod sessions;
mod state;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use cli::run_until_signal;
pub use config::{Faults, KasmVersion, SandboxMode, SimKey, SimulatorConfig};
pub use display::DisplayOptions;
pub use images::TERMINAL_IMAGE_ID;
pub use sandbox::Isolation;
pub use state::{DEFAULT_USER_ID, DEFAULT_USERNAME};

use auth::KeyInfo;
use ctx::Shared;
use sandbox::Sandbox;
use state::Store;

/// A running simulator. Dropping it kills every session process and removes the sandboxes;
/// [`Simulator::shutdown`] does the same after stopping the server gracefully.
pub struct Simulator {
    addr: SocketAddr,
    api_key: String,
    api_secret: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .finish()
    }
}

impl Simulator {
    /// Bind, seed the database and serve in the background.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Simulator> {
        let sandbox = Sandbox::new(
            &config.sandbox_root,
            config.sandbox,
            config.max_processes_per_session,
        )
        .await?
        .with_displays(display::Displays::detect(config.display));
        let mut keys = vec![KeyInfo::primary(&config.api_key, &config.api_secret)];
        keys.extend(config.extra_keys.iter().map(KeyInfo::extra));
        let missing_permission_status = StatusCode::from_u16(config.missing_permission_status)
            .ok()
            .filter(StatusCode::is_client_error)
            .unwrap_or(StatusCode::UNAUTHORIZED);
        let (faults, _) = watch::channel(config.faults);
        let shared = Arc::new(Shared {
            version: config.kasm_version,
            start_delay: config.start_delay,
            max_kasms_per_user: config.max_kasms_per_user,
            missing_permission_status,
            keys,
            store: Mutex::new(Store::seeded()),
            sandbox: Arc::new(sandbox),
            faults,
            exec_requests: Default::default(),
            requests: Mutex::default(),
        });
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                shared.sandbox.kill_all_and_clean();
                return Err(e);
            }
        };
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = http::router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "simulator server failed");
            }
        });
        tracing::info!(%addr, version = config.kasm_version.as_str(), "Kasm simulator listening");
        Ok(Simulator {
            addr,
            api_key: config.api_key,
            api_secret: config.api_secret,
            shared,
            stop: Some(stop),
            server: Some(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (what `KASM_API_URL` should be).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn api_secret(&self) -> &str {
        &self.api_secret
    }

    /// 32-hex id of the seeded user `agent@example.com`.
    pub fn default_user_id(&self) -> String {
        DEFAULT_USER_ID.to_string()
    }

    /// How many calls each endpoint has received so far (every call to
    /// `/api/public/<endpoint>` or `/api/<endpoint>` counts, whatever the answer), e.g. to
    /// prove how many Kasm requests one tool call makes. Also served as JSON at
    /// `GET /__simulator/requests` (primary key only).
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.request_counts()
    }

    /// Change the fault knobs (releases hanging calls when `hang` goes false).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.send_replace(faults);
    }

    /// Requests to `exec_command_kasm` received so far (any outcome).
    pub fn exec_requests(&self) -> u64 {
        self.shared
            .exec_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Host directory mounted at `/home/kasm-user` in the session (ids with or without dashes);
    /// `None` when the session's sandbox does not exist (unknown or destroyed).
    pub fn session_dir(&self, kasm_id: &str) -> Option<PathBuf> {
        let id = crate::kasm::normalize_id("kasm_id", kasm_id).ok()?;
        let dir = self.shared.sandbox.home_dir(&id);
        dir.is_dir().then_some(dir)
    }

    /// Process groups the session's commands run in (for tests and diagnostics).
    pub fn session_process_groups(&self, kasm_id: &str) -> Vec<i32> {
        match crate::kasm::normalize_id("kasm_id", kasm_id) {
            Ok(id) => self.shared.sandbox.process_groups(&id),
            Err(_) => Vec::new(),
        }
    }

    /// The host X display number of the session's Xvfb, while it runs (for tests and
    /// diagnostics; inside the session it is always `:1`).
    pub fn session_display(&self, kasm_id: &str) -> Option<u32> {
        let id = crate::kasm::normalize_id("kasm_id", kasm_id).ok()?;
        self.shared.sandbox.display_number(&id)
    }

    /// How commands are isolated here (bwrap, a plain directory, or unavailable).
    pub fn isolation(&self) -> &Isolation {
        self.shared.sandbox.isolation()
    }

    /// The directory holding every session's sandbox.
    pub fn sandbox_root(&self) -> &Path {
        self.shared.sandbox.root()
    }

    /// Stop serving (hanging calls are released first), kill every session process and
    /// remove the sandboxes.
    pub async fn shutdown(mut self) {
        self.shared.faults.send_replace(Faults::default());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        self.shared.sandbox.kill_all_and_clean();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.shared.sandbox.kill_all_and_clean();
    }
}
