//! `kasm-mcp serve` as a child process with a configuration written by the test, an optional
//! open-file limit (`ulimit -n`), its log collected, and its resident memory readable.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kasm_mcp::tokens::sha256_hex;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const TOKEN: &str = "hardening-token";

/// Where the child's Kasm is.
pub struct Kasm {
    pub url: String,
    pub key: String,
    pub secret: String,
    pub user_id: String,
}

impl Kasm {
    pub fn simulator(sim: &kasm_mcp::simulator::Simulator) -> Kasm {
        Kasm {
            url: sim.base_url(),
            key: sim.api_key().to_owned(),
            secret: sim.api_secret().to_owned(),
            user_id: sim.default_user_id(),
        }
    }
}

pub struct ChildServer {
    child: tokio::process::Child,
    pub base_url: String,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    /// Start `serve` with `extra` TOML appended to a base configuration (one admin token,
    /// a Kasm that is never reached), under `ulimit -n fd_limit` when given.
    pub async fn start(extra: &str, fd_limit: Option<u32>) -> ChildServer {
        let kasm = Kasm {
            url: "http://127.0.0.1:9".into(),
            key: "k".into(),
            secret: "s".into(),
            user_id: "0123456789abcdef0123456789abcdef".into(),
        };
        ChildServer::start_with(&kasm, extra, fd_limit).await
    }

    /// [`ChildServer::start`] against `kasm` (e.g. the simulator).
    pub async fn start_with(kasm: &Kasm, extra: &str, fd_limit: Option<u32>) -> ChildServer {
        ChildServer::start_with_env(kasm, extra, fd_limit, &[]).await
    }

    /// [`ChildServer::start_with`] with extra environment variables for the server process.
    pub async fn start_with_env(
        kasm: &Kasm,
        extra: &str,
        fd_limit: Option<u32>,
        env: &[(&str, &str)],
    ) -> ChildServer {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[server]\nport = 0\n\n[kasm]\napi_url = \"{}\"\napi_key = \"{}\"\napi_secret = \"{}\"\n\
             user_id = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"alice\"\nsha256 = \"{}\"\nrole = \"admin\"\n\n{extra}\n",
            kasm.url,
            kasm.key,
            kasm.secret,
            kasm.user_id,
            sha256_hex(TOKEN)
        );
        std::fs::write(dir.path().join("serve.toml"), config).unwrap();
        let binary = env!("CARGO_BIN_EXE_kasm-mcp");
        let limit = fd_limit
            .map(|n| format!("ulimit -n {n} && "))
            .unwrap_or_default();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" serve --config serve.toml"))
            .arg(binary)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("RUST_LOG", "info,kasm_mcp=debug")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let base_url = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(start) = line.find("http://127.0.0.1:") {
                    let url: String = line[start..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    if let Some(base) = url.strip_suffix("/mcp") {
                        return base.to_owned();
                    }
                }
            }
            panic!(
                "serve exited before logging its URL: {}",
                log.lock().unwrap()
            );
        })
        .await
        .expect("serve logs its URL");
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        ChildServer {
            child,
            base_url,
            log,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.base_url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// POST `body` to `/mcp` as the admin token (protocol 2025-03-26, which allows batches).
    pub async fn mcp(&self, http: &reqwest::Client, body: &serde_json::Value) -> reqwest::Response {
        http.post(format!("{}/mcp", self.base_url))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-03-26")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the server is running");
        let status =
            std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
                .unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `source` (each address is
/// its own client for the per-address limits).
pub async fn connect_from(source: [u8; 4], port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::from(source), 0).into())?;
    socket.connect(([127, 0, 0, 1], port).into()).await
}
