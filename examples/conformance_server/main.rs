//! The fixtures server for the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`): the product's own router and HTTP stack
//! (`McpServer` + `App`), with exactly the tools, resources, prompts and completions the
//! suite's server scenarios call (`test_simple_text`, `test://static-text`, …). None of these
//! fixtures is part of the product.
//!
//! Usage: `cargo run --example conformance_server -- [--port P]` (loopback only, no
//! authentication — the suite cannot send a token). Prints `listening on http://…/mcp`.

mod media;
mod prompts;
mod resources;
mod task_tools;
mod tools;

use std::sync::Arc;

use kasm_mcp::app::App;
use kasm_mcp::config::Config;
use kasm_mcp::mcp::McpServer;

use prompts::{FixtureCompletions, FixturePrompts};
use resources::FixtureResources;

fn parse_port() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = value
                    .parse()
                    .map_err(|_| format!("--port {value:?} is not a port number"))?;
            }
            other => return Err(format!("unknown argument {other:?} (use --port P)")),
        }
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let port = match parse_port() {
        Ok(port) => port,
        Err(message) => {
            eprintln!("conformance_server: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut config = Config::default();
    config.server.host = "127.0.0.1".into();
    config.server.port = port;
    config.auth.disabled = true;
    // The suite fires requests in quick bursts from one address.
    config.limits.per_ip_per_second = 10_000;
    config.limits.per_ip_burst = 10_000;
    config.limits.per_principal_per_minute = 100_000;
    config.limits.per_principal_burst = 10_000;

    let server = McpServer::builder("kasm-mcp-conformance-fixtures", env!("CARGO_PKG_VERSION"))
        .title("kasm-mcp conformance fixtures")
        .instructions("Fixture server for the MCP conformance suite; not the product.")
        .tools(tools::tools())
        .tools(task_tools::tools())
        .resources(Arc::new(FixtureResources))
        .prompts(Arc::new(FixturePrompts))
        .completions(Arc::new(FixtureCompletions))
        .build();
    let app = match App::build(config, Arc::new(server), axum::Router::new()) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("conformance_server: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on {}/mcp", app.base_url());
    match app.run_until_stopped().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance_server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
