//! The one integration-test binary: every test spawns real servers on loopback port 0.
//! Modules: `simulator` (the Kasm simulator over raw HTTP), `kasm_client` (the typed client
//! against the simulator), `mcp_http` (the MCP server over HTTP), `oauth` (the OAuth resource
//! server against a loopback issuer), `tools` (tools end to end),
//! `round_trips` (Kasm requests per tool call), `exec_text` (results written for a model,
//! lost results, one metric per refusal) against `kasm-mcp demo`; `audit_log` (a process-wide
//! capture of audit events, and the per-thread capture that stands on it).

mod audit_log;
mod cluster;
mod command_policy;
mod exec_text;
mod hardening;
mod jobs;
mod kasm_client;
mod layers;
mod mcp_http;
mod oauth;
mod ops;
mod properties;
mod relay_early;
mod relay_integrity;
mod relay_lean;
mod round_trips;
mod sealing;
mod simulator;
mod tasks;
mod tools;
