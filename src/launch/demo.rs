//! `kasm-mcp demo`: the built-in Kasm simulator plus the MCP server on loopback with a bearer
//! token (random unless given), printing the URLs, the token and client configurations.
//! `--no-auth` (for the MCP conformance suite, which cannot send a token) is loopback-only
//! like every auth-less configuration.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, OAuthConfig, TokenConfig};
use crate::kasm::KasmClient;
use crate::policy::Role;
use crate::simulator::{DisplayOptions, Simulator, SimulatorConfig};
use crate::tokens::{TokenDigest, mint_token, sha256_hex};

use super::assemble::{RelayPlan, assemble};
use super::client_configs::client_configs;
use super::serve::LaunchError;

/// `demo` options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Address to listen on: loopback by default; anything else requires a token (the
    /// configuration refuses `--no-auth` off loopback).
    pub host: String,
    /// Port for the MCP server (0 = any free port).
    pub port: u16,
    /// Bearer token to accept; random when None.
    pub token: Option<String>,
    /// Serve without authentication (loopback only).
    pub no_auth: bool,
    /// How long simulated sessions stay `starting`.
    pub start_delay: Duration,
    /// The simulated Kasm's per-user session limit.
    pub max_sessions_per_user: usize,
    /// `[oauth]` to enable beside the static token (`--oauth FILE`).
    pub oauth: Option<OAuthConfig>,
    /// A configuration file whose `[policy]`, `[images]`, `[quotas]`, `[audit]` and `[jobs]` replace
    /// the demo's and whose `[[auth.tokens]]` are accepted besides the demo token (to try
    /// roles, image rules, quotas and lifetimes against the simulator).
    pub policy_file: Option<std::path::PathBuf>,
    /// Per-session X displays (Xvfb, when installed) and their size.
    pub display: DisplayOptions,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            token: None,
            no_auth: false,
            start_delay: Duration::from_millis(1000),
            max_sessions_per_user: 3,
            oauth: None,
            policy_file: None,
            display: DisplayOptions::default(),
        }
    }
}

/// The configuration the demo server runs with.
fn demo_config(sim: &Simulator, options: &DemoOptions, token: Option<&str>) -> Config {
    let mut config = Config::default();
    config.server.host = options.host.clone();
    config.server.port = options.port;
    config.kasm.api_url = Some(sim.base_url());
    config.kasm.api_key = Some(sim.api_key().to_owned().into());
    config.kasm.api_secret = Some(sim.api_secret().to_owned().into());
    config.kasm.user_id = Some(sim.default_user_id());
    config.kasm.session_start_timeout_s = 120;
    // Session ids survive a restart of the demo with the same token (clients keep working);
    // the secret is derived from the token, so it is as secret as the token itself.
    config.server.session_secret =
        token.map(|t| sha256_hex(&format!("kasm-mcp demo session key\n{t}")).into());
    match token {
        Some(token) => {
            config.auth.tokens = vec![TokenConfig {
                name: "demo".into(),
                sha256: TokenDigest::of(token),
                role: Role::Admin,
                kasm_user_id: None,
            }]
        }
        None => config.auth.disabled = true,
    }
    if let Some(oauth) = &options.oauth {
        config.oauth = oauth.clone();
    }
    config
}

/// Run the demo until SIGTERM/Ctrl-C, writing the banner to `out`.
pub async fn run_demo(
    options: DemoOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), LaunchError> {
    let sim = Simulator::start(SimulatorConfig {
        start_delay: options.start_delay,
        max_kasms_per_user: options.max_sessions_per_user,
        display: options.display,
        ..SimulatorConfig::default()
    })
    .await
    .map_err(|e| LaunchError::Other(format!("cannot start the Kasm simulator: {e}")))?;
    let token = match (&options.token, options.no_auth) {
        (_, true) => None,
        (Some(t), false) => Some(t.clone()),
        (None, false) => Some(mint_token()),
    };
    let mut config = demo_config(&sim, &options, token.as_deref());
    if let Some(file) = &options.policy_file {
        let extra =
            Config::load_from(Some(file), &[]).map_err(|e| LaunchError::Other(e.to_string()))?;
        config.policy = extra.policy;
        config.images = extra.images;
        config.quotas = extra.quotas;
        config.audit = extra.audit;
        config.jobs = extra.jobs;
        config.auth.tokens.extend(extra.auth.tokens);
    }
    config
        .validate()
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    let kasm =
        KasmClient::from_config(&config.kasm).map_err(|e| LaunchError::Kasm(e.to_string()))?;
    let addr = format!("{}:{}", options.host, options.port);
    let assembled = assemble(
        config,
        Arc::new(kasm),
        sim.base_url(),
        RelayPlan::ConfiguredOrSelf,
    )
    .map_err(|error| LaunchError::Bind { addr, error })?;
    let base = assembled.app.base_url();
    let mcp_url = format!("{base}/mcp");
    let sse_url = format!("{base}/sse");
    let mut banner = banner(
        &sim,
        &mcp_url,
        &sse_url,
        token.as_deref(),
        assembled.tool_count,
    );
    if let Some(oauth) = options.oauth.as_ref().filter(|o| o.enabled) {
        let line = format!(
            "OAuth: access tokens from {} for {} are accepted beside the static token\n\n",
            oauth.issuer.as_deref().unwrap_or("?"),
            oauth.resource.as_deref().unwrap_or("?"),
        );
        if let Some(at) = banner.rfind("Press Ctrl-C") {
            banner.insert_str(at, &line);
        }
    }
    out.write_all(banner.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| LaunchError::Other(format!("cannot print the banner: {e}")))?;
    let result = assembled.app.run_until_stopped().await;
    sim.shutdown().await;
    result.map_err(LaunchError::Serve)
}

fn banner(
    sim: &Simulator,
    mcp_url: &str,
    sse_url: &str,
    token: Option<&str>,
    tools: usize,
) -> String {
    let auth = match token {
        Some(t) => format!("Bearer token:                  {t}\n"),
        None => "Authentication:                OFF (--no-auth; loopback only)\n".to_owned(),
    };
    format!(
        "kasm-mcp demo: MCP server + built-in Kasm simulator (no real Kasm involved)\n\n\
         MCP endpoint (Streamable HTTP): {mcp_url}\n\
         Legacy HTTP+SSE endpoint:      {sse_url}\n\
         {auth}\
         Tools:                         {tools}\n\
         Kasm simulator:                {}\n\
         Kasm simulator API secret:     {}\n\n\
         {}\n\
         Press Ctrl-C to stop.\n",
        sim.base_url(),
        sim.api_secret(),
        client_configs(mcp_url, sse_url, token),
    )
}
