//! Integration tests: the real `KasmClient` against the real simulator on a loopback port —
//! every endpoint's success path and error paths (bad credentials, missing permission, unknown
//! session, session not running, limit exceeded, HTML from a wrong URL, timeouts), read-only
//! retries, permission diagnosis and the `check` command.

mod auth;
mod diagnose;
mod sessions;
mod support;
mod transport;
mod users;
