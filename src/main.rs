//! The `kasm-mcp` binary: command-line parsing only; everything else lives in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Mint a bearer token (or hash the given one) and print its SHA-256 digest for the config.
    HashKey {
        /// The token to hash; without it a random 256-bit token is minted.
        token: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::HashKey { token } => {
            let _ = token;
            ExitCode::SUCCESS
        }
    }
}
