//! Typed requests and responses of the classic `/api/public/*` Developer API.
//!
//! Shapes follow `reference/kasm-api.md` §2 and §11. Every response type tolerates unknown
//! fields (kept in `extra` where they are useful to show) and missing fields (`#[serde(default)]`),
//! because Kasm versions differ and the documentation is incomplete.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Arguments of `request_kasm` (create a session).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestKasm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    pub enable_sharing: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kasm_url: Option<String>,
}

/// Answer of `request_kasm`: the session exists but is usually still `starting`.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestKasmResponse {
    pub kasm_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Logs in as the whole user: never shown to a model or written to a log.
    #[serde(default)]
    pub session_token: Option<SecretString>,
    /// Relative (`/#/connect/kasm/…`): append it to the Kasm base URL. Carries a login token.
    #[serde(default)]
    pub kasm_url: Option<ConnectUrl>,
    #[serde(default)]
    pub share_id: Option<String>,
}

/// Kasm's relative connect URL (`/#/connect/kasm/<kasm_id>/<user_id>/<session_token>` or
/// `/#/connect/join/…`). It embeds a session login token — whoever opens it controls the
/// desktop as that user — so `Debug` redacts it and the text is reachable only through
/// [`ConnectUrl::expose`], used where a URL is handed to an authorised caller.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ConnectUrl(SecretString);

impl ConnectUrl {
    pub fn new(url: impl Into<String>) -> Self {
        ConnectUrl(SecretString::from(url.into()))
    }

    /// The URL with its token: only for building the URL shown to an authorised caller.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for ConnectUrl {
    fn from(url: String) -> Self {
        ConnectUrl::new(url)
    }
}

impl std::fmt::Debug for ConnectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectUrl([REDACTED])")
    }
}

impl PartialEq for ConnectUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// The image summary nested in session records.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageSummary {
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

/// A session record ("normalized kasm") as returned by `get_kasm_status`, `get_kasms`,
/// `get_user_kasms` and `exec_command_kasm`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub kasm_id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub operational_status: Option<String>,
    #[serde(default)]
    pub container_ip: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub keepalive_date: Option<String>,
    #[serde(default)]
    pub expiration_date: Option<String>,
    #[serde(default)]
    pub share_id: Option<String>,
    #[serde(default)]
    pub image: Option<ImageSummary>,
    /// `{"username": …}` in `get_kasms`.
    #[serde(default)]
    pub user: Option<Value>,
    // Everything else Kasm sends (port_map, client_settings, server…) is skipped while
    // parsing: no tool reads it, and a `#[serde(flatten)]` catch-all made serde buffer every
    // field of every record (the largest single cost of decoding `get_kasm_status`).
}

/// What `get_kasm_status` says about a session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionStatus {
    /// `running`, with the session record and a fresh relative connect URL.
    Running {
        session: Box<Session>,
        kasm_url: Option<ConnectUrl>,
    },
    /// requested / provisioning / assigned / starting (both the 1.15 error-only shape and the
    /// 1.19 `kasm`-object shape) and pausing / stopping: poll again.
    NotReady {
        status: String,
        message: String,
        progress: Option<u8>,
    },
    /// paused / stopped / saving: exists but is not running; resume to use it.
    Inactive { status: String },
}

impl SessionStatus {
    /// The operational status word (`running`, `starting`, `paused`, …).
    pub fn status(&self) -> &str {
        match self {
            SessionStatus::Running { .. } => "running",
            SessionStatus::NotReady { status, .. } | SessionStatus::Inactive { status } => status,
        }
    }
}

/// Docker-exec options sent as `exec_config` to `exec_command_kasm`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecConfig {
    /// Split shell-style (no implicit shell); wrap in `sh -c '…'` for shell features.
    pub cmd: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A workspace image from `get_images`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Image {
    pub image_id: String,
    /// Docker image reference, e.g. `kasmweb/terminal:1.19.0`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub available: Option<bool>,
    #[serde(default)]
    pub cores: Option<f64>,
    #[serde(default)]
    pub memory: Option<i64>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub image_type: Option<String>,
}

/// A group membership inside a user record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupRef {
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A Kasm user (`get_user`, `get_users`, `create_user`, `update_user`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub user_id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub realm: Option<String>,
    #[serde(default)]
    pub locked: Option<bool>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub anonymous: Option<bool>,
    #[serde(default)]
    pub groups: Vec<GroupRef>,
    /// Kasm sends `null`, a timestamp or the string `"None"`.
    #[serde(default)]
    pub last_session: Option<Value>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub kasms: Vec<Value>,
}

/// How to name a user to `get_user`.
#[derive(Debug, Clone, PartialEq)]
pub enum UserRef {
    Id(String),
    Username(String),
}

/// Arguments of `create_user` (`target_user`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewUser {
    pub username: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::kasm::types::expose_opt_secret"
    )]
    pub password: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub locked: bool,
    pub disabled: bool,
}

/// Arguments of `update_user` (`target_user`): only the fields that are `Some` change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserUpdate {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::kasm::types::expose_opt_secret"
    )]
    pub password: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// Answer of `join_kasm` (a shared, usually view-only, view of a session).
#[derive(Debug, Clone, Deserialize)]
pub struct JoinKasmResponse {
    #[serde(default)]
    pub kasm: Option<Value>,
    /// Relative join URL; carries a login token of the joining user.
    #[serde(default)]
    pub kasm_url: Option<ConnectUrl>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Logs in as the joining user: never shown to a model.
    #[serde(default)]
    pub session_token: Option<SecretString>,
}

/// Answer of `keepalive`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeepaliveResponse {
    #[serde(default)]
    pub usage_reached: bool,
}

/// Answer of `get_session_recordings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Recordings {
    #[serde(default)]
    pub session_recordings: Vec<Value>,
    #[serde(default)]
    pub total_duration: Option<Value>,
    #[serde(default)]
    pub page: Option<Value>,
    #[serde(default)]
    pub items: Option<Value>,
}

/// Serialize an optional secret by exposing it: used only for request bodies sent to Kasm.
pub(crate) fn expose_opt_secret<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    match value {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "/#/connect/kasm/8f6c1d2e/4bbb6998/tok-5d6e7f80-secret";

    #[test]
    fn connect_urls_deserialize_from_kasm_json_and_never_print_their_token() {
        let created: RequestKasmResponse =
            serde_json::from_value(json!({"kasm_id": "k", "kasm_url": URL})).unwrap();
        assert_eq!(created.kasm_url.as_ref().map(ConnectUrl::expose), Some(URL));
        assert!(
            !format!("{created:?}").contains("tok-5d6e7f80"),
            "{created:?}"
        );

        let joined: JoinKasmResponse = serde_json::from_value(json!({"kasm_url": URL})).unwrap();
        assert_eq!(joined.kasm_url.as_ref().map(ConnectUrl::expose), Some(URL));
        assert!(
            !format!("{joined:?}").contains("tok-5d6e7f80"),
            "{joined:?}"
        );

        let running = SessionStatus::Running {
            session: Box::default(),
            kasm_url: Some(ConnectUrl::from(URL.to_string())),
        };
        let printed = format!("{running:?}");
        assert!(
            !printed.contains("tok-5d6e7f80") && printed.contains("REDACTED"),
            "{printed}"
        );
        assert_eq!(
            running,
            SessionStatus::Running {
                session: Box::default(),
                kasm_url: Some(ConnectUrl::new(URL)),
            }
        );
    }
}
