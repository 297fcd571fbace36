//! Starting the product: `serve` (real Kasm from configuration) and `demo` (the built-in
//! simulator plus the server on loopback), sharing one way of assembling the MCP server; and
//! the other commands' work (`check`, `hash-key`) and the runtime they all run on.

mod assemble;
pub mod check;
mod client_configs;
pub mod demo;
pub mod fd_limit;
pub mod hash_key;
pub mod healthcheck;
mod readiness;
pub mod runtime;
pub mod serve;

pub use assemble::{Assembled, RelayPlan, assemble};
pub use client_configs::{ClientConfig, client_config_list, client_configs, clients_markdown};
pub use demo::{DemoOptions, run_demo};
pub use fd_limit::raise_fd_limit;
pub use hash_key::hash_key;
pub use readiness::KasmProbe;
pub use runtime::{init_logging, run_async, run_async_on};
pub use serve::{LaunchError, run_serve};
