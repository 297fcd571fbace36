//! kasm-mcp: a remote MCP server that lets AI agents drive Kasm Workspaces safely.
//!
//! See `docs/ARCHITECTURE.md` for the code map and the invariants.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod cluster;
pub mod config;
pub mod http;
pub mod jobs;
pub mod kasm;
pub mod keys;
pub mod launch;
pub mod mcp;
pub mod oauth;
pub mod policy;
pub mod relay;
pub mod shutdown;
pub mod simulator;
pub mod telemetry;
pub mod tokens;
pub mod tools;
pub mod transport;
pub mod usage;
