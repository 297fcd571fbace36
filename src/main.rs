//! The `kasm-mcp` binary: command-line parsing only; everything else lives in the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kasm_mcp::launch::{init_logging, run_async};

#[derive(Parser)]
#[command(
    name = "kasm-mcp",
    version,
    about = "A remote MCP server for Kasm Workspaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over HTTP (/mcp and legacy /sse) against a real Kasm. Needs KASM_API_URL,
    /// KASM_API_KEY, KASM_API_SECRET and at least one [[auth.tokens]] entry.
    Serve {
        /// Configuration file (default: config/kasm-mcp.toml if present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Try it out: the built-in Kasm simulator plus the MCP server on 127.0.0.1, with a
    /// printed bearer token and ready-to-paste client configurations.
    Demo(DemoArgs),
    /// Mint a bearer token (or hash the given one) and print its SHA-256 digest for the config.
    HashKey {
        /// The token to hash (`-` reads it from stdin); without it a random 256-bit token is minted.
        token: Option<String>,
    },
    /// Print the effective configuration (secrets redacted), reach Kasm and report which
    /// API-key permissions work. Exits non-zero when Kasm is unreachable or rejects the key.
    Check {
        /// Configuration file (default: config/kasm-mcp.toml if present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Probe a running server on this machine: GET /healthz on the configured host and port
    /// (MCP_SERVER_PORT, server.port). Exit 0 on HTTP 200, 1 otherwise. For container health
    /// checks: the image needs no curl.
    Healthcheck {
        /// Configuration file (default: config/kasm-mcp.toml if present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Probe /readyz (Kasm reachable, key accepted) instead of /healthz.
        #[arg(long)]
        ready: bool,
        /// Give up after this many milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Run the built-in Kasm simulator (classic /api/public/* API; exec really runs commands
    /// in a per-session sandbox). Prints KASM_API_URL/KEY/SECRET/USER_ID lines, runs until Ctrl-C.
    Simulator(SimulatorArgs),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Address to listen on. Keep loopback unless inside a container; any other address
    /// requires a token (no --no-auth).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free port; the banner shows it).
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    port: u16,
    /// Bearer token to accept (random when absent).
    #[arg(long, value_name = "TOKEN", conflicts_with = "no_auth")]
    token: Option<String>,
    /// Serve without authentication (for the MCP conformance suite; loopback only).
    #[arg(long)]
    no_auth: bool,
    /// How long a new simulated session stays "starting", in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    start_delay_ms: u64,
    /// The simulated Kasm's per-user session limit (real Kasm defaults to 2).
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_sessions_per_user: usize,
    /// Also accept OAuth access tokens: a TOML file with an `[oauth]` table (issuer,
    /// resource, …; see docs/OAUTH.md). The static token keeps working beside it.
    #[arg(long, value_name = "FILE", conflicts_with = "no_auth")]
    oauth: Option<PathBuf>,
    /// A TOML file whose [policy], [images], [quotas], [audit] and [jobs] replace the demo's and
    /// whose [[auth.tokens]] are accepted besides the demo token.
    #[arg(long, value_name = "FILE")]
    policy: Option<std::path::PathBuf>,
    /// Give simulated sessions no X display, even when Xvfb is installed (the desktop tools
    /// then answer "this session has no display").
    #[arg(long)]
    no_display: bool,
    /// Screen size of each simulated session's X display (Xvfb), WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value = "1280x720", value_parser = parse_display_size)]
    display_size: (u32, u32),
}

/// `1280x720` → (1280, 720), each side 16..=8192.
fn parse_display_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not WIDTHxHEIGHT with sides 16..8192, e.g. 1280x720");
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    let side = |s: &str| s.parse::<u32>().ok().filter(|v| (16..=8192).contains(v));
    Ok((side(w).ok_or_else(bad)?, side(h).ok_or_else(bad)?))
}

#[derive(clap::Args)]
struct SimulatorArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    /// API key of the primary (all-permissions) key; random when absent.
    #[arg(long, env = "KASM_SIM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// API secret of the primary key; random when absent.
    #[arg(long, env = "KASM_SIM_API_SECRET", hide_env_values = true)]
    api_secret: Option<String>,
    /// Which Kasm release's quirks to reproduce: 1.15 or 1.19.
    #[arg(long, value_name = "VERSION", default_value = "1.15")]
    kasm_version: kasm_mcp::simulator::KasmVersion,
    /// How long a new or resumed session stays "starting", in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    start_delay_ms: u64,
    /// Directory holding the per-session sandboxes (default: a fresh temp directory).
    #[arg(long, value_name = "DIR")]
    sandbox_root: Option<PathBuf>,
    /// Kasm's per-user session limit.
    #[arg(long, value_name = "N", default_value_t = 2)]
    max_kasms_per_user: usize,
    /// HTTP status for a missing permission (401 as 1.15; 403 as 1.19 was seen to send).
    #[arg(long, value_name = "STATUS")]
    missing_permission_status: Option<u16>,
    /// Give sessions no X display, even when Xvfb is installed (one Xvfb per session is
    /// work that command and file tests do not need).
    #[arg(long)]
    no_display: bool,
}

/// mimalloc instead of the system allocator: measured on the `get_session_status` closed loop
/// (docs/BENCHMARKS.md), glibc's malloc/free were the largest single cost of a call, and its
/// per-thread arenas kept freed memory resident after a load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Demo(args) => demo(args),
        Command::HashKey { token } => hash_key(token),
        Command::Check { config } => check(config),
        Command::Simulator(args) => simulator(args),
        Command::Healthcheck {
            config,
            ready,
            timeout_ms,
        } => healthcheck(config, ready, timeout_ms),
    }
}

fn simulator(args: SimulatorArgs) -> ExitCode {
    use kasm_mcp::simulator::{SimulatorConfig, run_until_signal};
    let defaults = SimulatorConfig::default();
    let config = SimulatorConfig {
        listen: args.listen,
        api_key: args.api_key.unwrap_or(defaults.api_key),
        api_secret: args.api_secret.unwrap_or(defaults.api_secret),
        kasm_version: args.kasm_version,
        start_delay: std::time::Duration::from_millis(args.start_delay_ms),
        max_kasms_per_user: args.max_kasms_per_user,
        missing_permission_status: args
            .missing_permission_status
            .unwrap_or(args.kasm_version.missing_permission_status()),
        sandbox_root: args.sandbox_root.unwrap_or(defaults.sandbox_root),
        display: kasm_mcp::simulator::DisplayOptions {
            enabled: !args.no_display,
            ..defaults.display
        },
        ..defaults
    };
    exit_code(run_async("simulator", run_until_signal(config)).is_some())
}

fn hash_key(token: Option<String>) -> ExitCode {
    let written = kasm_mcp::launch::hash_key(
        token.as_deref(),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout(),
    );
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kasm-mcp hash-key: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(config_file: Option<PathBuf>) -> ExitCode {
    init_logging("warn");
    let config = match kasm_mcp::config::Config::load(config_file.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let source = kasm_mcp::launch::check::config_source(config_file.as_deref());
    let report = async {
        let mut stdout = std::io::stdout();
        kasm_mcp::launch::check::run_check(&config, &source, &mut stdout)
            .await
            .map_err(|e| format!("could not write the report: {e}"))
    };
    // `Some(false)`: Kasm unreachable or the key rejected; the report already says why.
    exit_code(run_async("check", report) == Some(true))
}

fn exit_code(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
fn serve(config_file: Option<PathBuf>) -> ExitCode {
    init_logging("info");
    let config = match kasm_mcp::config::Config::load(config_file.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kasm-mcp serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = kasm_mcp::launch::serve::preflight(&config) {
        eprintln!("kasm-mcp serve: {e}");
        return ExitCode::FAILURE;
    }
    let workers = config.runtime.worker_threads;
    exit_code(
        kasm_mcp::launch::run_async_on("serve", workers, kasm_mcp::launch::run_serve(config))
            .is_some(),
    )
}

fn healthcheck(config_file: Option<PathBuf>, ready: bool, timeout_ms: u64) -> ExitCode {
    let timeout = std::time::Duration::from_millis(timeout_ms);
    exit_code(kasm_mcp::launch::healthcheck::run(
        config_file.as_deref(),
        ready,
        timeout,
    ))
}

fn demo(args: DemoArgs) -> ExitCode {
    init_logging("warn");
    let oauth = match args
        .oauth
        .as_deref()
        .map(kasm_mcp::config::OAuthConfig::from_toml_file)
    {
        Some(Err(e)) => {
            eprintln!("kasm-mcp demo: {e}");
            return ExitCode::FAILURE;
        }
        Some(Ok(oauth)) => Some(oauth),
        None => None,
    };
    let options = kasm_mcp::launch::DemoOptions {
        oauth,
        host: args.host,
        port: args.port,
        token: args.token,
        no_auth: args.no_auth,
        start_delay: std::time::Duration::from_millis(args.start_delay_ms),
        max_sessions_per_user: args.max_sessions_per_user,
        policy_file: args.policy,
        display: kasm_mcp::simulator::DisplayOptions {
            enabled: !args.no_display,
            width: args.display_size.0,
            height: args.display_size.1,
        },
    };
    let demo = async move {
        let mut stdout = std::io::stdout();
        kasm_mcp::launch::run_demo(options, &mut stdout).await
    };
    exit_code(run_async("demo", demo).is_some())
}
