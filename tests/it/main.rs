//! The one integration-test binary: every test spawns real servers on loopback port 0.
//! Modules: `simulator` (the Kasm simulator over raw HTTP), `kasm_client` (the typed client
//! against the simulator), `mcp_http` (the MCP server over HTTP), `oauth` (the OAuth resource
//! server against a loopback issuer), `tools` (tools end to end).

mod command_policy;
mod hardening;
mod kasm_client;
mod layers;
mod mcp_http;
mod oauth;
mod properties;
mod ops;
mod relay_integrity;
mod sealing;
mod simulator;
mod tools;
