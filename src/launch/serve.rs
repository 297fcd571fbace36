//! `kasm-mcp serve`: the server against a real Kasm, from configuration. Refuses to start
//! without the Kasm connection settings or without any way to authenticate clients.

use std::sync::Arc;

use crate::config::Config;
use crate::kasm::KasmClient;

use super::assemble::{RelayPlan, assemble};

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "missing Kasm settings: {}. Set them in the environment or in config/kasm-mcp.toml ([kasm] api_url, api_key, api_secret)",
        .0.join(", ")
    )]
    MissingKasmSettings(Vec<&'static str>),
    #[error(
        "no bearer tokens configured: add [[auth.tokens]] entries (mint one with `kasm-mcp hash-key`), or set auth.disabled = true on a loopback listener"
    )]
    NoTokens,
    #[error("cannot create the Kasm client: {0}")]
    Kasm(String),
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: String, error: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// Check what `serve` needs before touching the network.
pub fn preflight(config: &Config) -> Result<(), LaunchError> {
    let missing = config.missing_kasm_settings();
    if !missing.is_empty() {
        return Err(LaunchError::MissingKasmSettings(missing));
    }
    if config.auth.tokens.is_empty() && !config.auth.disabled {
        return Err(LaunchError::NoTokens);
    }
    Ok(())
}

/// The start-up warning for non-admin principals that share `kasm.user_id` (and so each
/// other's sessions), if there are any. Sharing is allowed (one team, one Kasm user), so it is
/// a warning, never a refusal.
pub fn shared_user_warning(config: &Config) -> Option<String> {
    let sharing = config.shared_user_principals();
    if sharing.is_empty() {
        return None;
    }
    Some(format!(
        "tokens {} have no kasm_user_id, so they all act as kasm.user_id (KASM_USER_ID) and can list, exec in, read files of and destroy each other's sessions; give each its own kasm_user_id if they must be kept apart",
        sharing.join(", ")
    ))
}

/// Run `serve` until SIGTERM/Ctrl-C.
pub async fn run_serve(config: Config) -> Result<(), LaunchError> {
    preflight(&config)?;
    super::fd_limit::raise_fd_limit();
    let kasm =
        KasmClient::from_config(&config.kasm).map_err(|e| LaunchError::Kasm(e.to_string()))?;
    let kasm_base_url = kasm.base_url().to_owned();
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let relay_configured = config.server.relay_url.is_some();
    let auth_disabled = config.auth.disabled;
    let shared_user_warning = shared_user_warning(&config);
    let assembled = assemble(
        config,
        Arc::new(kasm),
        kasm_base_url,
        RelayPlan::ConfiguredOnly,
    )
    .map_err(|error| LaunchError::Bind { addr, error })?;
    let url = assembled.app.base_url();
    tracing::info!(
        mcp = %format!("{url}/mcp"),
        sse = %format!("{url}/sse"),
        tools = assembled.tool_count,
        "kasm-mcp listening"
    );
    if auth_disabled {
        tracing::warn!("authentication is DISABLED (auth.disabled = true, loopback only)");
    }
    if let Some(warning) = shared_user_warning {
        tracing::warn!("{warning}");
    }
    if !relay_configured {
        tracing::warn!(
            "server.relay_url (MCP_RELAY_URL) is not set: execute_kasm_command only dispatches (no output) and the file tools are unavailable; set it to the URL at which session containers reach this server"
        );
    }
    assembled
        .app
        .run_until_stopped()
        .await
        .map_err(LaunchError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_names_missing_settings_and_tokens() {
        let config = Config::default();
        let err = preflight(&config).unwrap_err().to_string();
        for name in ["KASM_API_URL", "KASM_API_KEY", "KASM_API_SECRET"] {
            assert!(err.contains(name), "{err}");
        }
        let config = Config::load_from(
            None,
            &[
                ("KASM_API_URL".into(), "https://kasm.example.com".into()),
                ("KASM_API_KEY".into(), "k".into()),
            ],
        )
        .unwrap();
        let err = preflight(&config).unwrap_err().to_string();
        assert!(
            err.contains("KASM_API_SECRET") && !err.contains("KASM_API_KEY,"),
            "{err}"
        );
        let config = Config::load_from(
            None,
            &[
                ("KASM_API_URL".into(), "https://kasm.example.com".into()),
                ("KASM_API_KEY".into(), "k".into()),
                ("KASM_API_SECRET".into(), "s".into()),
            ],
        )
        .unwrap();
        assert!(matches!(preflight(&config), Err(LaunchError::NoTokens)));
    }

    #[test]
    fn warns_about_principals_sharing_the_default_kasm_user() {
        let token = |name: &str, role: &str| crate::config::TokenConfig {
            name: name.into(),
            sha256: "a".repeat(64).parse().unwrap(),
            role: role.parse().unwrap(),
            kasm_user_id: None,
        };
        let mut config = Config::default();
        config.auth.tokens = vec![token("alice", "operator"), token("root", "admin")];
        assert_eq!(shared_user_warning(&config), None);
        config.auth.tokens.push(token("bob", "viewer"));
        let warning = shared_user_warning(&config).unwrap();
        assert!(
            warning.contains("alice, bob")
                && warning.contains("kasm_user_id")
                && !warning.contains("root"),
            "{warning}"
        );
    }
}
