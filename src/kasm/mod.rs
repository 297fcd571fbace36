//! The only module that talks to Kasm: a typed client behind the [`KasmApi`] trait.
//!
//! `client.rs` is the reqwest implementation (one method per endpoint); `http.rs` its transport
//! (timeouts, pooling, TLS, read-only retries, no redirects); `endpoints.rs` what it prepares
//! once per endpoint (URL, metric handles); `response.rs` the mapping of every response to
//! a value or an error; `types.rs` the request/response shapes; `error.rs` the failure taxonomy;
//! `permissions.rs` the endpoint → permission table; `ids.rs` UUID normalisation;
//! `diagnose.rs` side-effect-free permission probes.

pub mod client;
pub mod diagnose;
pub mod endpoints;
pub mod error;
pub mod http;
pub mod ids;
pub mod permissions;
pub mod response;
pub mod status_answer;
pub mod types;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{Map, Value};

pub use client::KasmClient;
pub use error::KasmError;
pub use http::ClientOptions;
pub use ids::{ImageId, KasmId, UserId, normalize_id};
pub use types::*;

/// Result of a Kasm call.
pub type KasmResult<T> = Result<T, KasmError>;

/// Every classic Developer API endpoint the tools use.
///
/// `user_id` is the Kasm user the call acts as (needs the key's "Users Auth Session"
/// permission); ids may be given with or without dashes.
#[async_trait]
pub trait KasmApi: Send + Sync {
    /// Create a session; it is usually still `starting` when this returns.
    async fn request_kasm(&self, req: &RequestKasm) -> KasmResult<RequestKasmResponse>;
    /// Current state of one session.
    async fn get_kasm_status(
        &self,
        kasm_id: &str,
        user_id: Option<&str>,
    ) -> KasmResult<SessionStatus>;
    /// All sessions of the installation (Sessions View).
    async fn get_kasms(&self) -> KasmResult<Vec<Session>>;
    /// Sessions of one user.
    async fn get_user_kasms(&self, user_id: &str) -> KasmResult<Vec<Session>>;
    async fn destroy_kasm(&self, kasm_id: &str, user_id: Option<&str>) -> KasmResult<()>;
    async fn stop_kasm(&self, kasm_id: &str, user_id: Option<&str>) -> KasmResult<()>;
    async fn pause_kasm(&self, kasm_id: &str, user_id: Option<&str>) -> KasmResult<()>;
    async fn resume_kasm(&self, kasm_id: &str, user_id: Option<&str>) -> KasmResult<()>;
    /// Fire-and-forget: Kasm never returns output, only whether the exec was handed off.
    async fn exec_command_kasm(
        &self,
        kasm_id: &str,
        user_id: Option<&str>,
        exec: &ExecConfig,
    ) -> KasmResult<()>;
    async fn keepalive(&self, kasm_id: &str) -> KasmResult<KeepaliveResponse>;
    /// Raw JPEG bytes (checked to start with `FF D8`).
    async fn get_kasm_screenshot(
        &self,
        kasm_id: &str,
        user_id: Option<&str>,
        width: u32,
        height: u32,
    ) -> KasmResult<Bytes>;
    async fn get_kasm_frame_stats(
        &self,
        kasm_id: &str,
        user_id: Option<&str>,
        client: &str,
    ) -> KasmResult<Value>;
    async fn get_kasm_bottleneck_stats(
        &self,
        kasm_id: &str,
        user_id: Option<&str>,
    ) -> KasmResult<Value>;
    async fn join_kasm(
        &self,
        share_id: &str,
        user_id: Option<&str>,
    ) -> KasmResult<JoinKasmResponse>;
    async fn get_images(&self) -> KasmResult<Vec<Image>>;
    async fn get_users(&self) -> KasmResult<Vec<User>>;
    async fn get_user(&self, who: &UserRef) -> KasmResult<User>;
    async fn create_user(&self, user: &NewUser) -> KasmResult<User>;
    async fn update_user(&self, update: &UserUpdate) -> KasmResult<User>;
    async fn delete_user(&self, user_id: &str, force: bool) -> KasmResult<()>;
    async fn logout_user(&self, user_id: &str) -> KasmResult<()>;
    /// A one-click login URL for the user.
    async fn get_login(&self, user_id: &str) -> KasmResult<String>;
    async fn get_attributes(&self, user_id: &str) -> KasmResult<Map<String, Value>>;
    async fn update_user_attributes(
        &self,
        user_id: &str,
        attributes: &Map<String, Value>,
    ) -> KasmResult<()>;
    async fn add_user_group(&self, user_id: &str, group_id: &str) -> KasmResult<()>;
    async fn remove_user_group(&self, user_id: &str, group_id: &str) -> KasmResult<()>;
    async fn get_session_recordings(
        &self,
        kasm_id: &str,
        preauth_download_link: bool,
    ) -> KasmResult<Recordings>;
}
