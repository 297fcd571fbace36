//! Errors from the Kasm Developer API, mapped to what an operator or a model can act on.
//!
//! Every variant's `Display` is a complete, actionable sentence: tools show it to the model
//! as an `isError` result and `kasm-mcp check` shows it to the operator.

use thiserror::Error;

/// One failed call to Kasm.
#[derive(Debug, Error)]
pub enum KasmError {
    /// HTTP 403 `Access Denied`: the key or secret is wrong, unknown or disabled.
    #[error(
        "Kasm rejected the API credentials (HTTP 403 Access Denied): bad API key or secret. Check KASM_API_KEY and KASM_API_SECRET"
    )]
    BadCredentials,

    /// HTTP 401 (or 403 `Unauthorized` on 1.19): the key lacks a permission for this endpoint.
    #[error(
        "the Kasm API key lacks permission {permission:?} needed by {endpoint} (Kasm said: {message}). Grant it under Settings → Developers → the key → Permissions"
    )]
    MissingPermission {
        endpoint: &'static str,
        permission: &'static str,
        message: String,
    },

    /// HTTP 401 `Access has expired`.
    #[error("the Kasm API key has expired; create a new key or extend its expiration")]
    KeyExpired,

    /// HTTP 403 `Access Denied. This feature is not licensed`.
    #[error("this Kasm installation is not licensed for the Developer API")]
    NotLicensed,

    /// HTTP 400 with an `Invalid user_id (…)`/`Invalid kasm_id (…)`-style message.
    #[error("Kasm rejected the request to {endpoint} (HTTP 400): {message}")]
    InvalidRequest {
        endpoint: &'static str,
        message: String,
    },

    /// The session exists but is still being created ("This session is currently starting.").
    /// Not a failure: poll again.
    #[error("the session is not ready yet ({status}): {message}")]
    NotReady { status: String, message: String },

    /// The session (or other object) does not exist or is not visible to the acting user.
    #[error("{what} not found: {message}")]
    NotFound { what: &'static str, message: String },

    /// HTTP 200 with `error_message`: a logical error reported by Kasm (limits, wrong state…).
    #[error("Kasm refused {endpoint}: {message}")]
    Api {
        endpoint: &'static str,
        message: String,
    },

    /// A body that is not JSON (typically an HTML page from a proxy or a wrong KASM_API_URL).
    #[error(
        "Kasm answered {endpoint} with HTTP {status} and a non-JSON body (is KASM_API_URL the Kasm server's base URL?): {snippet:?}"
    )]
    NotJson {
        endpoint: &'static str,
        status: u16,
        snippet: String,
    },

    /// Any other unexpected HTTP status.
    #[error("Kasm answered {endpoint} with HTTP {status}: {snippet:?}")]
    Http {
        endpoint: &'static str,
        status: u16,
        snippet: String,
    },

    /// A 3xx answer. Redirects are not followed: the request body carries the API key and
    /// secret, which a 307/308 would send on to wherever `Location` points.
    #[error(
        "Kasm answered {endpoint} with HTTP {status} redirecting to {location}; redirects are not followed (the request carries the API key and secret): {fix}"
    )]
    Redirect {
        endpoint: &'static str,
        status: u16,
        /// The `Location`, resolved against the request URL.
        location: String,
        /// What to configure instead.
        fix: String,
    },

    /// JSON that does not have the documented shape.
    #[error("Kasm's answer to {endpoint} could not be understood: {detail}")]
    Decode {
        endpoint: &'static str,
        detail: String,
    },

    /// The call did not complete within the configured timeout, in any of its attempts.
    #[error(
        "Kasm did not answer {endpoint}: {attempts} attempt(s) of up to {timeout_ms} ms each (kasm.request_timeout_ms), {elapsed_ms} ms in all"
    )]
    Timeout {
        endpoint: &'static str,
        /// The per-attempt limit.
        timeout_ms: u64,
        /// Attempts made (retries of read-only calls included).
        attempts: u32,
        /// Time from the first attempt to giving up, backoff included.
        elapsed_ms: u64,
    },

    /// Connection refused, DNS failure, TLS failure…
    #[error("could not reach Kasm for {endpoint}: {detail}")]
    Connect {
        endpoint: &'static str,
        detail: String,
    },

    /// The caller passed something unusable (e.g. an id that is not a UUID).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl KasmError {
    /// True for failures where repeating the same read-only call may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            KasmError::Timeout { .. } | KasmError::Connect { .. } => true,
            KasmError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
