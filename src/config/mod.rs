//! Configuration: built-in defaults < `config/kasm-mcp.toml` (or `--config FILE`) < environment.
//!
//! The original product's variable names are honoured (`KASM_API_URL`, `KASM_API_KEY`,
//! `KASM_API_SECRET`, `KASM_USER_ID`, `MCP_SERVER_HOST`, `MCP_SERVER_PORT`, `ALLOWED_ROOTS`,
//! `KASM_VERIFY_TLS`, `KASM_CA_BUNDLE`, `MCP_RELAY_URL`); every other key can be set as
//! `KASM_MCP_<SECTION>__<KEY>`. [`Config::validate`] turns every bad value into a message that
//! names the key, the value and the fix. Secrets are `SecretString`s: redacted in `Debug`.
//!
//! One file per section (`server.rs`, `kasm.rs`, `auth.rs`, `limits.rs`, `policy.rs` with
//! `commands.rs` for `[policy.commands]`, `connections.rs`, `batch.rs`, `legacy_sse.rs`,
//! `relay_limits.rs`, `oauth.rs`, `controls.rs` for `[images]`/`[quotas]`/`[audit]`,
//! `lifecycle.rs`, `desktop.rs`, `cluster.rs`, `runtime.rs`), each with
//! its own checks; `load.rs` layers the sources; `errors.rs` phrases problems. A new key goes
//! into its section's struct, `Default` and `validate`, and `config/kasm-mcp.example.toml`.

use serde::Deserialize;

mod auth;
mod batch;
mod cluster;
pub mod commands;
mod connections;
mod controls;
pub mod desktop;
mod errors;
mod jobs;
mod kasm;
mod legacy_sse;
mod lifecycle;
mod limits;
mod load;
mod oauth;
mod policy;
pub mod reference;
mod relay_limits;
mod runtime;
mod server;
#[cfg(test)]
mod tests;

pub use auth::{AuthConfig, TokenConfig};
pub use batch::BatchConfig;
pub use cluster::ClusterConfig;
pub use commands::CommandsConfig;
pub use connections::ConnectionsConfig;
pub use controls::{AuditConfig, AuditSinkKind, ImagesConfig, QuotasConfig};
pub use desktop::{DesktopConfig, ScreenshotFormat};
pub use errors::ConfigError;
pub use jobs::JobsConfig;
pub use kasm::KasmConfig;
pub use legacy_sse::LegacySseConfig;
pub use lifecycle::LifecycleConfig;
pub use limits::LimitsConfig;
pub use oauth::{IntrospectionSettings, KasmUserSource, OAuthConfig, OAuthSettings};
pub use policy::PolicyConfig;
pub use relay_limits::RelayLimitsConfig;
pub use runtime::RuntimeConfig;
pub use server::ServerConfig;

/// Default location of the optional configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "config/kasm-mcp.toml";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub kasm: KasmConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub connections: ConnectionsConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub legacy_sse: LegacySseConfig,
    #[serde(default)]
    pub relay_limits: RelayLimitsConfig,
    /// `[oauth]`: the OAuth 2.1 resource server (`oauth.rs`).
    #[serde(default)]
    pub oauth: OAuthConfig,
    #[serde(default)]
    pub images: ImagesConfig,
    #[serde(default)]
    pub quotas: QuotasConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    #[serde(default)]
    pub desktop: DesktopConfig,
    /// `[cluster]`: shared state in Redis for several replicas (`cluster.rs`).
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// `[jobs]`: background commands and streamed output (`jobs.rs`).
    #[serde(default)]
    pub jobs: JobsConfig,
    /// `[runtime]`: the async runtime's worker threads (`runtime.rs`).
    #[serde(default)]
    pub runtime: RuntimeConfig,
}

impl Config {
    /// Check every value that can be checked without I/O, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        if self.auth.disabled && !self.listens_on_loopback() {
            return Err(errors::invalid(
                "auth.disabled",
                "true",
                format!(
                    "authentication may only be switched off on a loopback listener, but server.host is {}",
                    self.server.host
                ),
            ));
        }
        self.kasm.validate()?;
        self.auth.validate()?;
        self.policy.validate()?;
        self.connections.validate()?;
        self.batch.validate()?;
        self.runtime.validate()?;
        self.legacy_sse.validate()?;
        self.relay_limits.validate()?;
        self.oauth.parse()?;
        if self.oauth.enabled && self.auth.disabled {
            return Err(errors::invalid(
                "auth.disabled",
                "true",
                "switch auth.disabled off when [oauth] is enabled: with authentication off no \
                 token would be checked",
            ));
        }
        self.quotas.validate()?;
        self.audit.validate()?;
        self.lifecycle.validate()?;
        self.desktop.validate()?;
        self.cluster.validate()?;
        self.jobs.validate()?;
        Ok(())
    }

    /// Whether the configured listen address is a loopback address.
    pub fn listens_on_loopback(&self) -> bool {
        self.server.listens_on_loopback()
    }

    /// See [`AuthConfig::shared_user_principals`].
    pub fn shared_user_principals(&self) -> Vec<&str> {
        self.auth.shared_user_principals()
    }

    /// The names of the Kasm settings `serve` needs that are missing.
    pub fn missing_kasm_settings(&self) -> Vec<&'static str> {
        self.kasm.missing_settings()
    }
}
