//! Starting the product: `serve` (real Kasm from configuration) and `demo` (the built-in
//! simulator plus the server on loopback), sharing one way of assembling the MCP server.

mod assemble;
mod client_configs;
pub mod demo;
pub mod serve;

pub use assemble::{Assembled, RelayPlan, assemble};
pub use client_configs::client_configs;
pub use demo::{DemoOptions, run_demo};
pub use serve::{LaunchError, run_serve};
