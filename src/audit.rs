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
//!
//! Besides the digest, an event carries what an investigator needs ([`Details`], filled by the
//! router and the tools through the call's [`Notes`]): the request id (joins the HTTP trace),
//! the client's IP and its MCP name/version, the session id, the image, the path(s), the
//! command text (capped at [`MAX_AUDITED_TEXT`] bytes, with its full length), the
//! `explanation` argument, bytes in and out, the rule and reason of a refusal, and the approval
//! (filled by the command-approval flow). Never tokens, Kasm secrets, file contents or relay
//! tickets: no field takes them. Quota and reaper events are [`record_event`]s.
//!
//! Where events go is the [`Sink`] chosen at start-up (`[audit]` in the configuration): the
//! `tracing` event of target `audit` (default), JSON lines on stdout, or an append-only file.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value, json};
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

/// Longest command text or explanation kept in an event (the full length is recorded too).
pub const MAX_AUDITED_TEXT: usize = 2048;

/// What an event records beyond principal, tool and digest. Every field is optional: the
/// router fills the request's facts, the tools what they touched and decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// The MCP client's `clientInfo` as `name/version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kasm_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The command text, cut at [`MAX_AUDITED_TEXT`] bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The command's full length in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_len: Option<usize>,
    /// The `explanation` argument of `execute_kasm_command`, cut like the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// The rule that refused the call (`role`, `session_ownership`, `path`, `allowed_roots`,
    /// `client_roots`, `images`, `quotas.max_sessions`, …); also the label it is counted
    /// under in the policy-refusal metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, as told to the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who approved a command that needed approval (filled by the approval flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// `text` cut at [`MAX_AUDITED_TEXT`] bytes on a character boundary.
pub fn capped(text: &str) -> String {
    if text.len() <= MAX_AUDITED_TEXT {
        return text.to_string();
    }
    let mut end = MAX_AUDITED_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The call's notebook: a shared, cheap-to-clone handle the router creates for each call and
/// the tools write into ([`Notes::deny`] turns the event's decision into `deny`).
#[derive(Debug, Clone, Default)]
pub struct Notes(Arc<Mutex<Details>>);

impl Notes {
    /// Change the details in place.
    pub fn update(&self, f: impl FnOnce(&mut Details)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A copy of what has been noted.
    pub fn snapshot(&self) -> Details {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Record that a policy rule refused the call.
    pub fn deny(&self, rule: &str, reason: &str) {
        self.update(|d| {
            d.rule = Some(rule.to_string());
            d.reason = Some(reason.to_string());
        });
    }

    pub fn kasm_id(&self, kasm_id: &str) {
        self.update(|d| d.kasm_id = Some(kasm_id.to_string()));
    }

    pub fn path(&self, path: &str) {
        self.update(|d| d.paths.push(path.to_string()));
    }

    pub fn image(&self, image: &str) {
        self.update(|d| d.image = Some(image.to_string()));
    }

    /// The command text (capped) and its length, and the explanation (capped).
    pub fn command(&self, command: &str, explanation: Option<&str>) {
        self.update(|d| {
            d.command = Some(capped(command));
            d.command_len = Some(command.len());
            d.explanation = explanation.map(capped);
        });
    }

    pub fn bytes(&self, bytes_in: Option<u64>, bytes_out: Option<u64>) {
        self.update(|d| {
            d.bytes_in = bytes_in.or(d.bytes_in);
            d.bytes_out = bytes_out.or(d.bytes_out);
        });
    }

    /// Whether a rule refused the call.
    pub fn denied(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rule
            .is_some()
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
    pub details: Details,
}

/// Where audit events go.
#[derive(Debug)]
pub enum Sink {
    /// A `tracing` event of target `audit` (routed by the log subscriber).
    Log,
    /// One JSON object per line on stdout.
    Stdout,
    /// One JSON object per line appended to a file.
    File(Mutex<File>),
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Open `path` for appending (created with mode 0600 when missing).
pub fn file_sink(path: &Path) -> std::io::Result<Sink> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    Ok(Sink::File(Mutex::new(options.open(path)?)))
}

/// Choose the sink once, at start-up (later calls are ignored: the first wins).
pub fn install(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Write one event to the sink: `log` for the log sink; `event` builds the JSON line for the
/// others (only then: the log sink never pays for building it).
fn emit(event: impl FnOnce() -> Value, log: impl FnOnce()) {
    match SINK.get().unwrap_or(&Sink::Log) {
        Sink::Log => log(),
        Sink::Stdout => {
            let event = event();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{event}");
        }
        Sink::File(file) => {
            let event = event();
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = writeln!(file, "{event}") {
                tracing::error!(error = %e, "cannot append to the audit file");
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The event of one tool call as one JSON object.
pub fn tool_call_json(record: &ToolCallRecord<'_>) -> Value {
    let mut event = json!({
        "ts_ms": now_ms(),
        "event": "tool_call",
        "principal": record.principal,
        "client_id": record.client_id,
        "scopes": record.scopes.map(|s| s.join(" ")),
        "tool": record.tool,
        "arguments_sha256": record.arguments_sha256,
        "decision": record.decision.as_str(),
        "outcome": record.outcome.as_str(),
        "duration_ms": record.duration_ms,
    });
    if let (Some(obj), Ok(Value::Object(details))) =
        (event.as_object_mut(), serde_json::to_value(&record.details))
    {
        obj.extend(details);
    }
    event
}

/// Whether a tool-call event is written now: always to the stdout and file sinks; to the log
/// sink when its filter lets `audit` events at `info` through (the default). A caller may skip
/// building the record (the arguments' digest) when it is not.
pub fn records_tool_calls() -> bool {
    match SINK.get().unwrap_or(&Sink::Log) {
        Sink::Log => tracing::enabled!(target: "audit", tracing::Level::INFO),
        Sink::Stdout | Sink::File(_) => true,
    }
}

/// Emit the audit event for one tool call.
pub fn record_tool_call(record: &ToolCallRecord<'_>) {
    emit(
        || tool_call_json(record),
        || {
            let d = &record.details;
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
                request_id = d.request_id.as_deref(),
                client_ip = d.client_ip.as_deref(),
                client = d.client.as_deref(),
                kasm_id = d.kasm_id.as_deref(),
                image = d.image.as_deref(),
                paths = (!d.paths.is_empty()).then(|| d.paths.join(" ")),
                command = d.command.as_deref(),
                command_len = d.command_len,
                explanation = d.explanation.as_deref(),
                bytes_in = d.bytes_in,
                bytes_out = d.bytes_out,
                rule = d.rule.as_deref(),
                reason = d.reason.as_deref(),
                approval = d.approval.as_deref(),
                "tool call"
            );
        },
    );
}

/// Emit an event that is not a tool call (`quota`, `reaper`): `fields` is a JSON object of
/// plain facts (never secrets).
pub fn record_event(kind: &str, principal: &str, fields: Value) {
    let event = || {
        let mut event = json!({ "ts_ms": now_ms(), "event": kind, "principal": principal });
        if let (Some(obj), Value::Object(fields)) = (event.as_object_mut(), &fields) {
            obj.extend(fields.clone());
        }
        event
    };
    emit(event, || {
        tracing::info!(target: "audit", event = kind, principal, details = %fields, "{kind}");
    });
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
    let event = || {
        json!({
            "ts_ms": now_ms(),
            "event": "typed_text",
            "principal": record.principal,
            "tool": record.tool,
            "kasm_id": record.kasm_id,
            "text_chars": record.chars,
            "text_bytes": record.bytes,
            "text_hmac_sha256": record.text_hmac_sha256,
        })
    };
    // Through the configured sink (`[audit]`), like every other audit event.
    emit(event, || {
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
    });
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
    write_canonical_map(arguments, Secrets::Blank, &mut canonical);
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
    write_canonical_map(arguments, Secrets::Keep, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Whether secret fields (at any depth, also inside arrays) are blanked in canonical JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Secrets {
    Keep,
    Blank,
}

/// Canonical JSON (object keys sorted at every depth, no whitespace) of an object, written
/// from the borrowed map (no copy of the arguments).
fn write_canonical_map(map: &Map<String, Value>, secrets: Secrets, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_scalar(&Value::String(key.clone()), out);
        out.push(':');
        if secrets == Secrets::Blank && is_secret_key(key) {
            write_json_scalar(&Value::String(BLANKED.into()), out);
        } else if let Some(v) = map.get(key) {
            write_canonical(v, secrets, out);
        }
    }
    out.push('}');
}

fn write_canonical(value: &Value, secrets: Secrets, out: &mut String) {
    match value {
        Value::Object(map) => write_canonical_map(map, secrets, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, secrets, out);
            }
            out.push(']');
        }
        scalar => write_json_scalar(scalar, out),
    }
}

fn write_json_scalar(value: &Value, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "{value}");
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
    fn tool_call_events_are_recorded_when_the_log_filter_lets_them_through() {
        use tracing_subscriber::filter::LevelFilter;
        let at = |level: LevelFilter| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::sink)
                .finish();
            tracing::subscriber::with_default(subscriber, records_tool_calls)
        };
        assert!(at(LevelFilter::INFO));
        assert!(at(LevelFilter::DEBUG));
        assert!(!at(LevelFilter::WARN));
        assert!(!at(LevelFilter::OFF));
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
                details: Details {
                    kasm_id: Some("k1".into()),
                    rule: Some("path".into()),
                    ..Details::default()
                },
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
        assert_eq!(line["fields"]["kasm_id"], "k1");
        assert_eq!(line["fields"]["rule"], "path");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn commands_are_capped_with_their_length_and_denials_are_noted() {
        let notes = Notes::default();
        let long = "é".repeat(MAX_AUDITED_TEXT);
        notes.command(&long, Some("why"));
        notes.deny("path", "outside the roots");
        let d = notes.snapshot();
        assert!(d.command.as_ref().unwrap().len() <= MAX_AUDITED_TEXT);
        assert_eq!(d.command_len, Some(long.len()));
        assert_eq!(d.explanation.as_deref(), Some("why"));
        assert!(notes.denied());
        let record = ToolCallRecord {
            principal: "p",
            client_id: None,
            scopes: None,
            tool: "t",
            arguments_sha256: String::new(),
            decision: Decision::Deny,
            outcome: Outcome::Error,
            duration_ms: 1,
            details: d,
        };
        let event = tool_call_json(&record);
        assert_eq!(event["rule"], "path");
        assert_eq!(event["decision"], "deny");
        assert!(event.get("approval").is_none());
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
