//! The audit trail: one structured `tracing` event (target `"audit"`) per tool call.
//!
//! An event names the principal (and for OAuth principals the client id and the token's
//! scopes — never the token), the tool, a keyed digest of the canonical arguments (never
//! the arguments themselves: they may hold secrets or file contents), the policy decision,
//! the outcome and the duration. Operators route the target to a file or a collector with
//! `RUST_LOG`/the tracing subscriber (e.g. `audit=info`).
//!
//! The digest (`arguments_sha256`) is HMAC-SHA256 of the canonical arguments with every
//! secret-looking field blanked (`password`, and any key containing `secret`, `token` or
//! `password`, at any depth), keyed by a random key drawn once per process. Its only job is to
//! correlate events *within one process lifetime* ("the same arguments again"); a plain hash
//! would let anyone who reads the log confirm a guessed password by hashing candidates. The
//! key is deliberately not `server.session_secret`: that one is optional, shared by every
//! replica and long-lived, so a leak of it (or of one replica's memory) would make every
//! replica's old audit lines guessable again; a per-process key dies with the process.
//! The price: digests from different processes or replicas cannot be compared.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Whether the call was allowed to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// How the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The tool returned a normal result.
    Ok,
    /// Refused, failed, or returned `isError: true`.
    Error,
    /// Stopped by `notifications/cancelled` (or a closed stream).
    Cancelled,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One tool call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallRecord<'a> {
    pub principal: &'a str,
    /// The OAuth client the principal's token was issued to (`None` for static tokens).
    pub client_id: Option<&'a str>,
    /// The OAuth token's scopes (`None` for static tokens).
    pub scopes: Option<&'a [String]>,
    pub tool: &'a str,
    /// From [`audit_digest`].
    pub arguments_sha256: String,
    pub decision: Decision,
    pub outcome: Outcome,
    pub duration_ms: u64,
}

/// Emit the audit event for one tool call.
pub fn record_tool_call(record: &ToolCallRecord<'_>) {
    tracing::info!(
        target: "audit",
        principal = record.principal,
        client_id = record.client_id,
        scopes = record.scopes.map(|s| s.join(" ")),
        tool = record.tool,
        arguments_sha256 = record.arguments_sha256.as_str(),
        decision = record.decision.as_str(),
        outcome = record.outcome.as_str(),
        duration_ms = record.duration_ms,
        "tool call"
    );
}

/// Text typed into a session's desktop, as audited: its size and a keyed digest, never the
/// text (it may be a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedTextRecord<'a> {
    pub principal: &'a str,
    pub tool: &'a str,
    pub kasm_id: &'a str,
    /// Unicode characters.
    pub chars: usize,
    pub bytes: usize,
    /// From [`text_digest`].
    pub text_hmac_sha256: String,
}

/// Emit the audit event for text typed on a desktop (besides the call's own event).
pub fn record_typed_text(record: &TypedTextRecord<'_>) {
    tracing::info!(
        target: "audit",
        principal = record.principal,
        tool = record.tool,
        kasm_id = record.kasm_id,
        text_chars = record.chars,
        text_bytes = record.bytes,
        text_hmac_sha256 = record.text_hmac_sha256.as_str(),
        "typed text"
    );
}

/// Hex HMAC-SHA256 of `text` under the per-process audit key: the same text typed twice gives
/// the same digest within one process, and (as for [`audit_digest`]) a reader of the log cannot
/// confirm a guessed password by hashing candidates.
pub fn text_digest(text: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(audit_key())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The value secret fields are replaced with before [`audit_digest`] hashes.
const BLANKED: &str = "";

/// Whether an argument key names a secret whose value must not influence the audit digest.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|word| key.contains(word))
}

/// `value` with every secret field (at any depth, also inside arrays) blanked.
fn without_secrets(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        Value::String(BLANKED.into())
                    } else {
                        without_secrets(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_secrets).collect()),
        scalar => scalar.clone(),
    }
}

/// The per-process audit key (see the module doc for why not the session secret).
fn audit_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

/// Hex HMAC-SHA256, under the per-process audit key, of the canonical JSON of `arguments` with
/// secret fields blanked: equal arguments give equal digests in one process whatever their key
/// order, and the digest cannot be used to test guesses of a secret.
pub fn audit_digest(arguments: &Map<String, Value>) -> String {
    let mut canonical = String::new();
    write_canonical(
        &without_secrets(&Value::Object(arguments.clone())),
        &mut canonical,
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(audit_key())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Hex SHA-256 of the canonical JSON of `arguments` (object keys sorted at every depth, no
/// whitespace), secrets included: it binds a sealed request state to the exact arguments of
/// the request that made it. It goes back only to the client that sent those arguments; never
/// log it (use [`audit_digest`]).
pub fn canonical_sha256(arguments: &Map<String, Value>) -> String {
    let mut canonical = String::new();
    write_canonical(&Value::Object(arguments.clone()), &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn digests_ignore_key_order_but_not_values() {
        for digest in [audit_digest, canonical_sha256] {
            let a = digest(&obj(json!({"b":1,"a":{"y":[1,2],"x":"s"}})));
            let b = digest(&obj(json!({"a":{"x":"s","y":[1,2]},"b":1})));
            let c = digest(&obj(json!({"a":{"x":"s","y":[2,1]},"b":1})));
            assert_eq!(a, b);
            assert_ne!(a, c);
            assert_eq!(a.len(), 64);
        }
        // The binding digest of {} is the SHA-256 of the two bytes "{}".
        assert_eq!(
            canonical_sha256(&Map::new()),
            hex::encode(Sha256::digest(b"{}"))
        );
    }

    #[test]
    fn audit_digest_is_keyed_and_blind_to_secrets() {
        let args = obj(json!({"username":"bob","password":"hunter2"}));
        let digest = audit_digest(&args);
        // Not the plain (dictionary-attackable) SHA-256 of the arguments, with or without
        // the password.
        assert_ne!(digest, canonical_sha256(&args));
        assert_ne!(
            digest,
            canonical_sha256(&obj(json!({"username":"bob","password":""})))
        );
        // Secret fields at any depth do not change it: a guessed password cannot be confirmed.
        assert_eq!(
            digest,
            audit_digest(&obj(json!({"username":"bob","password":"letmein"})))
        );
        let nested = |v: &str| {
            obj(json!({
                "env": {"API_TOKEN": v, "Client_Secret": v, "db_password": v, "keep": "x"},
                "list": [{"session_token": v}],
            }))
        };
        assert_eq!(audit_digest(&nested("a")), audit_digest(&nested("b")));
        // Everything else still does.
        assert_ne!(
            digest,
            audit_digest(&obj(json!({"username":"eve","password":"hunter2"})))
        );
        assert_ne!(
            audit_digest(&obj(json!({"env": {"keep": "x"}}))),
            audit_digest(&obj(json!({"env": {"keep": "y"}})))
        );
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn event_carries_fields_but_never_raw_arguments() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let args = obj(json!({"password":"hunter2-secret"}));
        tracing::subscriber::with_default(subscriber, || {
            record_tool_call(&ToolCallRecord {
                principal: "oauth:ops",
                client_id: Some("client-7"),
                scopes: Some(&["kasm:read".to_owned(), "kasm:operate".to_owned()]),
                tool: "execute_kasm_command",
                arguments_sha256: audit_digest(&args),
                decision: Decision::Allow,
                outcome: Outcome::Cancelled,
                duration_ms: 12,
            });
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["target"], "audit");
        assert_eq!(line["fields"]["principal"], "oauth:ops");
        assert_eq!(line["fields"]["client_id"], "client-7");
        assert_eq!(line["fields"]["scopes"], "kasm:read kasm:operate");
        assert_eq!(line["fields"]["tool"], "execute_kasm_command");
        assert_eq!(line["fields"]["decision"], "allow");
        assert_eq!(line["fields"]["outcome"], "cancelled");
        assert_eq!(line["fields"]["duration_ms"], 12);
        assert_eq!(line["fields"]["arguments_sha256"], audit_digest(&args));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn typed_text_event_holds_size_and_keyed_digest_only() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let typed = "pässword-hunter2";
        tracing::subscriber::with_default(subscriber, || {
            record_typed_text(&TypedTextRecord {
                principal: "ops",
                tool: "desktop_action",
                kasm_id: "k",
                chars: typed.chars().count(),
                bytes: typed.len(),
                text_hmac_sha256: text_digest(typed),
            });
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["target"], "audit");
        assert_eq!(line["fields"]["text_chars"], 16);
        assert_eq!(line["fields"]["text_bytes"], 17);
        assert_eq!(line["fields"]["text_hmac_sha256"], text_digest(typed));
        assert_ne!(
            text_digest(typed),
            hex::encode(Sha256::digest(typed.as_bytes()))
        );
        assert_ne!(text_digest(typed), text_digest("other"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
