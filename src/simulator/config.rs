//! Configuration of the simulator: listen address, API keys, Kasm version quirks, session
//! timing and limits, sandbox placement and fault-injection knobs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which Kasm release's quirks to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KasmVersion {
    /// 1.15: a starting session's status is `{"error_message":"This session is currently starting."}`.
    #[default]
    V1_15,
    /// 1.19: a starting session's status is a `kasm` object with a non-running
    /// `operational_status`, plus top-level `operational_*` fields.
    V1_19,
}

impl KasmVersion {
    /// The version as Kasm prints it (`1.15`, `1.19`).
    pub fn as_str(self) -> &'static str {
        match self {
            KasmVersion::V1_15 => "1.15",
            KasmVersion::V1_19 => "1.19",
        }
    }

    /// The HTTP status this release answers "key lacks the endpoint's permission" with:
    /// 401 (1.15) or 403 (1.19 was seen to send).
    pub fn missing_permission_status(self) -> u16 {
        match self {
            KasmVersion::V1_15 => 401,
            KasmVersion::V1_19 => 403,
        }
    }
}

impl std::str::FromStr for KasmVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "1.15" | "1.15.0" => Ok(KasmVersion::V1_15),
            "1.19" | "1.19.0" => Ok(KasmVersion::V1_19),
            other => Err(format!(
                "unsupported Kasm version {other:?}: use 1.15 or 1.19"
            )),
        }
    }
}

/// How `exec_command_kasm` isolates a session's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// `bwrap` when it is installed, else a per-session working directory.
    #[default]
    Auto,
    /// Always `bwrap` (exec fails with `Kasm exec failed` when it is missing).
    Bwrap,
    /// A per-session working directory with `HOME` pointing at it; no filesystem isolation.
    Directory,
}

/// An extra API key with its own permission set (to exercise the "missing permission" paths).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimKey {
    pub key: String,
    pub secret: String,
    /// Kasm permission names, e.g. `"User"`, `"Global Admin"` (see `kasm::permissions::names`).
    pub permissions: Vec<String>,
    /// A Read-Only key may call only the endpoints Kasm flags read-only.
    pub read_only: bool,
}

/// Fault-injection knobs; also accepted as JSON by `POST /__simulator/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added before every answer.
    pub latency_ms: u64,
    /// Share of calls (0..=1) answered with HTTP 500 and a CherryPy HTML page.
    pub error_rate: f64,
    /// Never answer (until the faults change).
    pub hang: bool,
}

/// Everything [`crate::simulator::Simulator::start`] needs.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub listen: SocketAddr,
    /// The primary key: holds every permission.
    pub api_key: String,
    pub api_secret: String,
    pub kasm_version: KasmVersion,
    /// How long a session stays `starting` (also after `resume_kasm`).
    pub start_delay: Duration,
    /// Kasm's `max_kasms_per_user` group setting (default 2).
    pub max_kasms_per_user: usize,
    /// HTTP status for "key lacks the endpoint's permission": 401 (1.15) or 403 (1.19).
    pub missing_permission_status: u16,
    /// Parent of the per-session sandbox directories.
    pub sandbox_root: PathBuf,
    pub sandbox: SandboxMode,
    pub extra_keys: Vec<SimKey>,
    pub faults: Faults,
    /// Processes one session may run at the same time (further execs get `Kasm exec failed`).
    pub max_processes_per_session: usize,
    /// Per-session X displays (an `Xvfb` each, when installed and the sandbox is bwrap).
    pub display: super::display::DisplayOptions,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: random_hex(12),
            api_secret: random_hex(32),
            kasm_version: KasmVersion::V1_15,
            start_delay: Duration::from_secs(1),
            max_kasms_per_user: 2,
            missing_permission_status: 401,
            sandbox_root: default_sandbox_root(),
            sandbox: SandboxMode::Auto,
            extra_keys: Vec::new(),
            faults: Faults::default(),
            max_processes_per_session: 32,
            display: super::display::DisplayOptions::default(),
        }
    }
}

/// A fresh directory name under the system temp dir (created on start, removed on shutdown).
pub fn default_sandbox_root() -> PathBuf {
    std::env::temp_dir().join(format!("kasm-sim-{}", random_hex(6)))
}

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_refuses_others() {
        assert_eq!("1.15".parse::<KasmVersion>(), Ok(KasmVersion::V1_15));
        assert_eq!("1.19.0".parse::<KasmVersion>(), Ok(KasmVersion::V1_19));
        assert!("1.17".parse::<KasmVersion>().is_err());
    }

    #[test]
    fn defaults_are_random_and_distinct() {
        let a = SimulatorConfig::default();
        let b = SimulatorConfig::default();
        assert_ne!(a.api_secret, b.api_secret);
        assert_ne!(a.sandbox_root, b.sandbox_root);
        assert_eq!(a.listen.port(), 0);
        assert_eq!(a.missing_permission_status, 401);
    }

    #[test]
    fn faults_json_is_partial() {
        let f: Faults = serde_json::from_str(r#"{"hang":true}"#).unwrap();
        assert!(f.hang);
        assert_eq!(f.latency_ms, 0);
    }
}
