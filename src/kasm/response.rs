//! Turning one raw Kasm HTTP response into a value or a [`KasmError`] (pure, no I/O).
//!
//! Owns the error taxonomy mapping of `reference/kasm-api.md` §1.3: HTTP 200 + `error_message`
//! is an error, 403 `Access Denied` means bad credentials, 401 (or 403 `Unauthorized` on 1.19)
//! a missing permission, non-JSON bodies a misconfigured URL; plus the several shapes of
//! `get_kasm_status` (§5) and the JPEG check of `get_kasm_screenshot`.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::permissions::{self, names};
use super::{ConnectUrl, KasmError, KasmResult, Session, SessionStatus};

/// How many characters of an unexpected body an error quotes.
const SNIPPET_CHARS: usize = 120;

/// One HTTP response as received, before interpretation.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: Bytes,
}

impl RawResponse {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The start of a body, whitespace collapsed, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = collapsed.chars().take(SNIPPET_CHARS).collect();
    if collapsed.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    out
}

/// The `error_message` (or `error`) Kasm put in a JSON body, if any.
pub fn error_message(value: &Value) -> Option<String> {
    ["error_message", "error"]
        .iter()
        .filter_map(|key| value.get(key))
        .find_map(|v| match v {
            Value::Null => None,
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
}

/// Full mapping for JSON endpoints: the checked JSON body or the error it stands for.
pub fn json_body(endpoint: &'static str, raw: &RawResponse) -> KasmResult<Value> {
    if !raw.is_success() {
        return Err(status_error(endpoint, raw));
    }
    let value = raw.json().ok_or_else(|| not_json(endpoint, raw))?;
    match error_message(&value) {
        Some(message) => Err(logical_error(endpoint, &message)),
        None => Ok(value),
    }
}

/// The parsed body of a successful (2xx) JSON response, *without* checking `error_message`
/// (for `get_kasm_status`, whose "still starting" answers are error-shaped).
pub fn unchecked_json(endpoint: &'static str, raw: &RawResponse) -> KasmResult<Value> {
    if !raw.is_success() {
        return Err(status_error(endpoint, raw));
    }
    raw.json().ok_or_else(|| not_json(endpoint, raw))
}

fn not_json(endpoint: &'static str, raw: &RawResponse) -> KasmError {
    KasmError::NotJson {
        endpoint,
        status: raw.status,
        snippet: if raw.body.is_empty() {
            "(empty body)".into()
        } else {
            snippet(&raw.body)
        },
    }
}

/// The error a non-2xx response stands for.
pub fn status_error(endpoint: &'static str, raw: &RawResponse) -> KasmError {
    let json = raw.json();
    let message = json.as_ref().and_then(error_message);
    let lower = message.as_deref().unwrap_or("").to_ascii_lowercase();
    let http = || KasmError::Http {
        endpoint,
        status: raw.status,
        snippet: snippet(&raw.body),
    };
    let missing = |permission: &'static str| KasmError::MissingPermission {
        endpoint,
        permission,
        message: message
            .clone()
            .unwrap_or_else(|| format!("HTTP {}", raw.status)),
    };
    let endpoint_permission = permissions::endpoint(endpoint)
        .map(|e| e.permission)
        .unwrap_or("(unknown)");
    match raw.status {
        500.. => http(),
        _ if json.is_none() && !raw.body.is_empty() => not_json(endpoint, raw),
        401 | 403 if lower.contains("expired") => KasmError::KeyExpired,
        401 | 403 if lower.contains("impersonate") => missing(names::USERS_AUTH_SESSION),
        403 if lower.contains("not licensed") => KasmError::NotLicensed,
        403 if lower.starts_with("access denied") => KasmError::BadCredentials,
        403 if lower.contains("unauthorized") || lower.contains("permission") => {
            missing(endpoint_permission)
        }
        401 => missing(endpoint_permission),
        400 => match message {
            Some(m) => match not_found_kind(&m.to_ascii_lowercase()) {
                Some(what) => KasmError::NotFound { what, message: m },
                None => KasmError::InvalidRequest {
                    endpoint,
                    message: m,
                },
            },
            None => KasmError::InvalidRequest {
                endpoint,
                message: "(empty body)".into(),
            },
        },
        _ => http(),
    }
}

/// What kind of object a "not found"-style message is about, if it is one.
fn not_found_kind(lower: &str) -> Option<&'static str> {
    const SESSION: &[&str] = &[
        "could not find requested kasm",
        "no session found",
        "invalid kasm id",
        "scheduled to be deleted",
    ];
    const USER: &[&str] = &["unknown user", "no user found", "invalid user id"];
    if SESSION.iter().any(|p| lower.contains(p)) {
        Some("session")
    } else if USER.iter().any(|p| lower.contains(p)) {
        Some("user")
    } else if lower.contains("invalid group id") {
        Some("group")
    } else {
        None
    }
}

/// Endpoints that act on one session (a 200 `Access Denied` there means "not yours").
fn acts_on_session(endpoint: &str) -> bool {
    matches!(
        endpoint,
        "get_kasm_status"
            | "destroy_kasm"
            | "stop_kasm"
            | "pause_kasm"
            | "resume_kasm"
            | "exec_command_kasm"
            | "keepalive"
            | "get_kasm_screenshot"
            | "get_kasm_frame_stats"
            | "get_kasm_bottleneck_stats"
    )
}

/// The error an HTTP-200 `error_message` stands for.
pub fn logical_error(endpoint: &'static str, message: &str) -> KasmError {
    let lower = message.trim().to_ascii_lowercase();
    if let Some(status) = currently_status(&lower) {
        return KasmError::NotReady {
            status,
            message: message.to_string(),
        };
    }
    if let Some(what) = not_found_kind(&lower) {
        return KasmError::NotFound {
            what,
            message: message.to_string(),
        };
    }
    if lower.starts_with("access denied") && acts_on_session(endpoint) {
        return KasmError::NotFound {
            what: "session",
            message: format!("{message} (the session does not belong to the acting user)"),
        };
    }
    KasmError::Api {
        endpoint,
        message: message.to_string(),
    }
}

/// `this session is currently starting.` → `starting`;
/// `… currently scheduled to be paused.` → `pausing` (deletion is handled as not found).
fn currently_status(lower: &str) -> Option<String> {
    let rest = lower.strip_prefix("this session is currently ")?;
    let rest = rest.trim_end_matches(['.', ' ']);
    if let Some(target) = rest.strip_prefix("scheduled to be ") {
        return match target.split_whitespace().next()? {
            "paused" => Some("pausing".into()),
            "stopped" => Some("stopping".into()),
            _ => None,
        };
    }
    rest.split_whitespace()
        .next()
        .map(|w| w.trim_end_matches(['.', ',']).to_string())
}

/// Deserialize a value into a documented type, or say what did not fit.
pub fn decode<T: DeserializeOwned>(endpoint: &'static str, value: Value) -> KasmResult<T> {
    serde_json::from_value(value).map_err(|e| KasmError::Decode {
        endpoint,
        detail: e.to_string(),
    })
}

/// Deserialize a borrowed value into a documented type (no copy of the value), or say what
/// did not fit.
pub fn decode_ref<T: DeserializeOwned>(endpoint: &'static str, value: &Value) -> KasmResult<T> {
    T::deserialize(value).map_err(|e| KasmError::Decode {
        endpoint,
        detail: e.to_string(),
    })
}

/// A list field (`kasms`, `images`, `users`); missing or null means empty.
pub fn list_field<T: DeserializeOwned>(
    endpoint: &'static str,
    value: &Value,
    key: &str,
) -> KasmResult<Vec<T>> {
    if !value.is_object() {
        return Err(KasmError::Decode {
            endpoint,
            detail: format!("expected a JSON object with {key:?}"),
        });
    }
    match value.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(list) => decode_ref(endpoint, list),
    }
}

/// A required field, decoded.
pub fn required_field<T: DeserializeOwned>(
    endpoint: &'static str,
    value: &Value,
    key: &str,
) -> KasmResult<T> {
    match value.get(key) {
        None | Some(Value::Null) => Err(KasmError::Decode {
            endpoint,
            detail: format!("the answer has no {key:?} field"),
        }),
        Some(field) => decode_ref(endpoint, field),
    }
}

/// Check that a success body is a JSON object (the `{}` of mutating calls).
pub fn expect_object(endpoint: &'static str, value: &Value) -> KasmResult<()> {
    if value.is_object() {
        Ok(())
    } else {
        Err(KasmError::Decode {
            endpoint,
            detail: format!(
                "expected a JSON object, got {}",
                snippet(value.to_string().as_bytes())
            ),
        })
    }
}

/// Where a session status word sits in the lifecycle.
enum Phase {
    Running,
    Inactive,
    Deleting,
    Transitional,
}

fn phase(status: &str) -> Phase {
    match status {
        "running" => Phase::Running,
        "paused" | "stopped" | "saving" => Phase::Inactive,
        "deleting"
        | "delete_pending"
        | "admin_delete_pending"
        | "user_delete_pending"
        | "destroying" => Phase::Deleting,
        _ => Phase::Transitional,
    }
}

fn progress(value: &Value) -> Option<u8> {
    value.get("operational_progress").and_then(progress_of)
}

/// `operational_progress` as a percentage: a number, or a string holding one.
pub(crate) fn progress_of(raw: &Value) -> Option<u8> {
    let number = raw
        .as_f64()
        .or_else(|| raw.as_str().and_then(|s| s.trim().parse().ok()))?;
    Some(percent(number))
}

/// A progress figure clamped to 0–100 and rounded.
pub(crate) fn percent(number: f64) -> u8 {
    number.clamp(0.0, 100.0).round() as u8
}

fn text_field(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The `operational_*` fields of a `get_kasm_status` answer (top level, or its `kasm` object);
/// each is `None` unless it is present with the right type (and, for text, non-empty).
#[derive(Debug, Default)]
pub struct Operational {
    pub status: Option<String>,
    pub message: Option<String>,
    pub progress: Option<u8>,
}

impl Operational {
    fn of(value: &Value) -> Self {
        Operational {
            status: text_field(value, "operational_status"),
            message: text_field(value, "operational_message"),
            progress: progress(value),
        }
    }
}

/// What [`decide_status`] reads from a `get_kasm_status` answer, whichever way it was parsed.
#[derive(Debug, Default)]
pub struct StatusFields {
    /// [`error_message`] of the answer.
    pub error: Option<String>,
    /// The `kasm` object's fields, when `kasm` is an object.
    pub record: Option<Operational>,
    /// The top-level fields.
    pub top: Operational,
    /// A non-empty top-level `kasm_url` string.
    pub kasm_url: Option<String>,
}

/// Interpret any shape of a 2xx `get_kasm_status` body (1.15 error-only "currently starting",
/// 1.19 `kasm` object, top-level `operational_*`, `{"operational_status":"paused"}`, running).
pub fn session_status(
    endpoint: &'static str,
    kasm_id: &str,
    value: &Value,
) -> KasmResult<SessionStatus> {
    let kasm = value.get("kasm").filter(|k| k.is_object());
    let fields = StatusFields {
        error: error_message(value),
        record: kasm.map(Operational::of),
        top: Operational::of(value),
        kasm_url: text_field(value, "kasm_url"),
    };
    decide_status(endpoint, kasm_id, fields, || match kasm {
        Some(kasm) => decode_ref::<Session>(endpoint, kasm),
        None => Err(KasmError::Decode {
            endpoint,
            detail: "no \"kasm\" object".into(),
        }),
    })
}

/// The status a `get_kasm_status` answer stands for, from its [`StatusFields`];
/// `record` decodes the `kasm` object (called only for a running session that has one).
pub fn decide_status(
    endpoint: &'static str,
    kasm_id: &str,
    fields: StatusFields,
    record: impl FnOnce() -> KasmResult<Session>,
) -> KasmResult<SessionStatus> {
    let StatusFields {
        error,
        record: kasm,
        top,
        kasm_url,
    } = fields;
    let status = match &kasm {
        Some(kasm) => kasm.status.clone().unwrap_or_default(),
        None => match &top.status {
            Some(status) => status.clone(),
            None => {
                return match error.map(|message| logical_error(endpoint, &message)) {
                    Some(KasmError::NotReady { status, message }) => Ok(SessionStatus::NotReady {
                        status,
                        message,
                        progress: None,
                    }),
                    Some(other) => Err(other),
                    None => Err(KasmError::Decode {
                        endpoint,
                        detail: "no \"kasm\", \"operational_status\" or \"error_message\" field"
                            .into(),
                    }),
                };
            }
        },
    };
    let status = status.to_ascii_lowercase();
    match phase(&status) {
        Phase::Running => {
            let session = match kasm {
                Some(_) => record()?,
                None => Session {
                    kasm_id: kasm_id.to_string(),
                    operational_status: Some(status),
                    ..Session::default()
                },
            };
            Ok(SessionStatus::Running {
                session: Box::new(session),
                kasm_url: kasm_url.map(ConnectUrl::from),
            })
        }
        Phase::Inactive => Ok(SessionStatus::Inactive { status }),
        Phase::Deleting => Err(KasmError::NotFound {
            what: "session",
            message: format!("the session is being deleted (status {status})"),
        }),
        Phase::Transitional => {
            let (record_message, record_progress) = match kasm {
                Some(kasm) => (kasm.message, kasm.progress),
                None => (None, None),
            };
            let message = record_message.or(top.message).or(error).unwrap_or_else(|| {
                if status.trim().is_empty() {
                    // Not "the session is " with nothing after it.
                    "Kasm's answer has no operational_status for the session yet; ask again in a few seconds".to_string()
                } else {
                    format!("the session is {status}")
                }
            });
            let progress = record_progress.or(top.progress);
            let status = if status.trim().is_empty() {
                "unknown".to_string()
            } else {
                status
            };
            Ok(SessionStatus::NotReady {
                status,
                message,
                progress,
            })
        }
    }
}

/// Interpret a `get_kasm_screenshot` response: JPEG bytes, or the error it stands for.
pub fn screenshot(endpoint: &'static str, raw: RawResponse) -> KasmResult<Bytes> {
    if raw.status == 404 {
        return Err(KasmError::NotFound {
            what: "session",
            message: "Kasm has no screenshot for it (HTTP 404: unknown session or another user's)"
                .into(),
        });
    }
    if !raw.is_success() {
        return Err(status_error(endpoint, &raw));
    }
    if raw.body.starts_with(&[0xFF, 0xD8]) {
        return Ok(raw.body);
    }
    if let Some(message) = raw.json().as_ref().and_then(error_message) {
        return Err(logical_error(endpoint, &message));
    }
    Err(KasmError::Decode {
        endpoint,
        detail: format!(
            "expected JPEG bytes (starting FF D8) but got {} bytes starting {:?}; right after start a session may not have a picture yet",
            raw.body.len(),
            snippet(&raw.body)
        ),
    })
}

#[cfg(test)]
pub(crate) mod tests;
