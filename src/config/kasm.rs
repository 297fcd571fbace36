//! `[kasm]`: how to reach Kasm (URL, API key and secret, TLS), the default Kasm user, and the
//! client's timeouts and retries.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::errors::{ConfigError, check_http_url, invalid};

/// How to reach Kasm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KasmConfig {
    /// Base URL of the Kasm server, e.g. `https://kasm.example.com` (no `/api/public`).
    pub api_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub api_secret: Option<SecretString>,
    /// Kasm user that principals without their own `kasm_user_id` act as.
    pub user_id: Option<String>,
    pub verify_tls: bool,
    /// PEM file with extra CA certificates to trust (private PKI).
    pub ca_bundle: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Extra attempts for read-only calls only (never for request_kasm/exec/create_user).
    pub read_retries: u32,
    /// Longest wait for a new session to reach `running`.
    pub session_start_timeout_s: u64,
}

impl Default for KasmConfig {
    fn default() -> Self {
        Self {
            api_url: None,
            api_key: None,
            api_secret: None,
            user_id: None,
            verify_tls: true,
            ca_bundle: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            read_retries: 2,
            session_start_timeout_s: 300,
        }
    }
}

impl KasmConfig {
    /// The checks of this section that need no I/O beyond "is the CA bundle a file".
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let k = self;
        if let Some(url) = &k.api_url {
            check_http_url("kasm.api_url (KASM_API_URL)", url)?;
        }
        if let Some(user) = k.user_id.as_deref().filter(|u| !is_kasm_uuid(u)) {
            return Err(invalid(
                "kasm.user_id (KASM_USER_ID)",
                user,
                "use the Kasm user's UUID (Admin → Users → the user)",
            ));
        }
        if let Some(ca) = k.ca_bundle.as_ref().filter(|ca| !ca.is_file()) {
            return Err(invalid(
                "kasm.ca_bundle (KASM_CA_BUNDLE)",
                ca.display().to_string(),
                "point it at a readable PEM file with the CA certificates to trust",
            ));
        }
        if k.connect_timeout_ms == 0 || k.request_timeout_ms == 0 {
            return Err(invalid(
                "kasm.connect_timeout_ms / kasm.request_timeout_ms",
                format!("{} / {}", k.connect_timeout_ms, k.request_timeout_ms),
                "timeouts must be greater than zero",
            ));
        }
        Ok(())
    }

    /// The names of the Kasm settings `serve` needs that are missing.
    pub fn missing_settings(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.api_url.is_none() {
            missing.push("KASM_API_URL");
        }
        if self.api_key.is_none() {
            missing.push("KASM_API_KEY");
        }
        if self.api_secret.is_none() {
            missing.push("KASM_API_SECRET");
        }
        missing
    }
}

/// Whether `raw` is a UUID in a form Kasm accepts: 32 hex digits, or the dashed 8-4-4-4-12
/// form (any case, surrounding blanks ignored) — what `kasm::normalize_id` accepts. Checked
/// here with the `uuid` crate so that the configuration, which `kasm/` reads, does not call
/// up into `kasm/`.
pub(super) fn is_kasm_uuid(raw: &str) -> bool {
    let trimmed = raw.trim();
    matches!(trimmed.len(), 32 | 36) && uuid::Uuid::try_parse(trimmed).is_ok()
}
