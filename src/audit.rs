//! The audit trail: one structured `tracing` event (target `"audit"`) per tool call.
//!
//! An event names the principal, the tool, a SHA-256 digest of the canonical arguments (never
//! the arguments themselves: they may hold secrets or file contents), the policy decision,
//! the outcome and the duration. Operators route the target to a file or a collector with
//! `RUST_LOG`/the tracing subscriber (e.g. `audit=info`).

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
    pub tool: &'a str,
    /// From [`digest_arguments`].
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
        tool = record.tool,
        arguments_sha256 = record.arguments_sha256.as_str(),
        decision = record.decision.as_str(),
        outcome = record.outcome.as_str(),
        duration_ms = record.duration_ms,
        "tool call"
    );
}

/// Hex SHA-256 of the canonical JSON of `arguments` (object keys sorted at every depth, no
/// whitespace), so equal arguments always give equal digests whatever their key order.
pub fn digest_arguments(arguments: &Map<String, Value>) -> String {
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
    fn digest_ignores_key_order_but_not_values() {
        let a = digest_arguments(&obj(json!({"b":1,"a":{"y":[1,2],"x":"s"}})));
        let b = digest_arguments(&obj(json!({"a":{"x":"s","y":[1,2]},"b":1})));
        let c = digest_arguments(&obj(json!({"a":{"x":"s","y":[2,1]},"b":1})));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 64);
        // The digest of {} is the SHA-256 of the two bytes "{}".
        assert_eq!(
            digest_arguments(&Map::new()),
            hex::encode(Sha256::digest(b"{}"))
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
                principal: "ops",
                tool: "execute_kasm_command",
                arguments_sha256: digest_arguments(&args),
                decision: Decision::Allow,
                outcome: Outcome::Cancelled,
                duration_ms: 12,
            });
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["target"], "audit");
        assert_eq!(line["fields"]["principal"], "ops");
        assert_eq!(line["fields"]["tool"], "execute_kasm_command");
        assert_eq!(line["fields"]["decision"], "allow");
        assert_eq!(line["fields"]["outcome"], "cancelled");
        assert_eq!(line["fields"]["duration_ms"], 12);
        assert_eq!(line["fields"]["arguments_sha256"], digest_arguments(&args));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
