//! The contract between the MCP router and the tools: what a tool declares and how it is called.
//!
//! A tool never sees HTTP. It gets a [`CallContext`] (who is calling, how to report progress
//! and log messages, and a cancellation token) and returns a [`ToolOutput`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::mcp::client_requests::{ClientRequestError, ClientRequester};
use crate::mcp::mrtr::{InputRound, capability_for};
use crate::mcp::tasks::support::{TaskInput, TaskSupport};
use crate::policy::{Principal, Role};

/// The four MCP tool annotations, always all set.
///
/// Built by name, never from positional booleans: start from [`ToolAnnotations::read_only`]
/// or [`ToolAnnotations::writes`] and add what applies, e.g.
/// `ToolAnnotations::writes().destructive().idempotent()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    pub read_only_hint: bool,
    pub destructive_hint: bool,
    pub idempotent_hint: bool,
    pub open_world_hint: bool,
}

impl ToolAnnotations {
    /// Changes nothing, so calling it again is harmless (read-only, idempotent, closed world).
    pub const fn read_only() -> Self {
        ToolAnnotations {
            read_only_hint: true,
            destructive_hint: false,
            idempotent_hint: true,
            open_world_hint: false,
        }
    }

    /// Changes something, only by adding (not destructive, not idempotent, closed world).
    pub const fn writes() -> Self {
        ToolAnnotations {
            read_only_hint: false,
            destructive_hint: false,
            idempotent_hint: false,
            open_world_hint: false,
        }
    }

    /// May delete or overwrite things.
    pub const fn destructive(mut self) -> Self {
        self.destructive_hint = true;
        self
    }

    /// Calling it again with the same arguments has no further effect.
    pub const fn idempotent(mut self) -> Self {
        self.idempotent_hint = true;
        self
    }

    /// Each call gives a new answer (e.g. a fresh screenshot) even though nothing changes.
    pub const fn not_idempotent(mut self) -> Self {
        self.idempotent_hint = false;
        self
    }

    /// Reaches an open set of things outside the server's knowledge (e.g. arbitrary commands).
    pub const fn open_world(mut self) -> Self {
        self.open_world_hint = true;
        self
    }
}

/// What `tools/list` shows for a tool, plus the least role allowed to see and call it.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: String,
    pub title: String,
    pub description: String,
    /// JSON Schema object for the arguments.
    pub input_schema: Value,
    /// JSON Schema object for `structuredContent`, when the result is structured.
    pub output_schema: Option<Value>,
    pub annotations: ToolAnnotations,
    pub min_role: Role,
    /// Whether it may run as an MCP task (`execution.taskSupport`).
    pub task_support: TaskSupport,
}

/// Builds a [`ToolSpec`]: `ToolSpec::builder(name, min_role).title(..).description(..)
/// .input_schema(..).output_schema(..).annotations(..).build()`. Without an input schema the
/// tool takes no arguments; without annotations it is [`ToolAnnotations::read_only`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ToolSpecBuilder {
    spec: ToolSpec,
}

impl ToolSpecBuilder {
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.spec.title = title.into();
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.spec.description = description.into();
        self
    }

    pub fn input_schema(mut self, schema: Value) -> Self {
        self.spec.input_schema = schema;
        self
    }

    pub fn output_schema(mut self, schema: Value) -> Self {
        self.spec.output_schema = Some(schema);
        self
    }

    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.spec.annotations = annotations;
        self
    }

    /// Let the tool run as an MCP task (default: never).
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.spec.task_support = support;
        self
    }

    pub fn build(self) -> ToolSpec {
        self.spec
    }
}

impl ToolSpec {
    /// Start a spec for the tool `name`, visible to `min_role` and above.
    pub fn builder(name: impl Into<String>, min_role: Role) -> ToolSpecBuilder {
        ToolSpecBuilder {
            spec: ToolSpec {
                name: name.into(),
                title: String::new(),
                description: String::new(),
                input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
                output_schema: None,
                annotations: ToolAnnotations::read_only(),
                min_role,
                task_support: TaskSupport::Forbidden,
            },
        }
    }

    /// The `Tool` object of `tools/list`.
    pub fn to_json(&self) -> Value {
        // Schemas are cloned, not passed to `json!` (which would serialize them into a copy).
        let mut tool = json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.annotations.read_only_hint,
                "destructiveHint": self.annotations.destructive_hint,
                "idempotentHint": self.annotations.idempotent_hint,
                "openWorldHint": self.annotations.open_world_hint,
            },
        });
        if let Some(obj) = tool.as_object_mut() {
            obj.insert("inputSchema".into(), self.input_schema.clone());
            if let Some(schema) = &self.output_schema {
                obj.insert("outputSchema".into(), schema.clone());
            }
            if self.task_support.allows_tasks() {
                obj.insert(
                    "execution".into(),
                    json!({ "taskSupport": self.task_support.as_str() }),
                );
            }
        }
        tool
    }
}

/// One content block of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    Image {
        /// Base64.
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    Audio {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// An embedded resource (`{"uri", "mimeType", "text"|"blob"}`).
    Resource {
        resource: Value,
    },
    ResourceLink {
        uri: String,
        name: String,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
}

/// `serde_json::to_string_pretty(value)` (the same bytes), written into a buffer sized for a
/// typical result instead of one that starts at 128 bytes and grows three or four times.
fn pretty_text(value: &Value) -> String {
    let mut text = Vec::with_capacity(1024);
    match serde_json::to_writer_pretty(&mut text, value) {
        // serde_json writes UTF-8 only.
        Ok(()) => String::from_utf8(text).unwrap_or_else(|_| value.to_string()),
        Err(_) => value.to_string(),
    }
}

/// The result of a tool call (`CallToolResult`).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    pub structured: Option<Value>,
    pub is_error: bool,
}

impl ToolOutput {
    /// A structured result, also serialised into a text block for older clients.
    pub fn structured(value: Value) -> Self {
        let text = pretty_text(&value);
        ToolOutput {
            content: vec![Content::Text { text }],
            structured: Some(value),
            is_error: false,
        }
    }

    /// A structured result whose text content is written for a model to read (one block per
    /// entry of `texts`) instead of repeating the JSON.
    pub fn structured_with_text(value: Value, texts: Vec<String>) -> Self {
        ToolOutput {
            content: texts
                .into_iter()
                .map(|text| Content::Text { text })
                .collect(),
            structured: Some(value),
            is_error: false,
        }
    }

    /// A plain text result.
    pub fn text(text: impl Into<String>) -> Self {
        ToolOutput {
            content: vec![Content::Text { text: text.into() }],
            structured: None,
            is_error: false,
        }
    }

    /// A failed call the model can act on (`isError: true`).
    pub fn error(message: impl Into<String>) -> Self {
        ToolOutput {
            content: vec![Content::Text {
                text: message.into(),
            }],
            structured: None,
            is_error: true,
        }
    }

    /// The `CallToolResult` JSON, moving the content in (no copy of text or structured
    /// content: this runs once per tool call).
    pub fn into_json(self) -> Value {
        let content = self
            .content
            .into_iter()
            .map(|block| match block {
                Content::Text { text } => {
                    let mut obj = serde_json::Map::with_capacity(2);
                    obj.insert("type".into(), Value::String("text".into()));
                    obj.insert("text".into(), Value::String(text));
                    Value::Object(obj)
                }
                other => serde_json::to_value(&other).unwrap_or(Value::Null),
            })
            .collect();
        let mut result = serde_json::Map::with_capacity(3);
        result.insert("content".into(), Value::Array(content));
        result.insert("isError".into(), Value::Bool(self.is_error));
        if let Some(structured) = self.structured {
            result.insert("structuredContent".into(), structured);
        }
        Value::Object(result)
    }

    /// The `CallToolResult` JSON.
    pub fn to_json(&self) -> Value {
        let mut result = json!({ "content": self.content, "isError": self.is_error });
        if let (Some(s), Some(obj)) = (&self.structured, result.as_object_mut()) {
            obj.insert("structuredContent".into(), s.clone());
        }
        result
    }
}

/// What the router gets from a tool: a [`ToolOutput`], or a successful structured result the
/// tool already serialised ([`RawToolResult`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    Output(ToolOutput),
    Raw(RawToolResult),
}

/// One value of a flat structured result (an object of strings, integers and nulls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar<'a> {
    Null,
    Text(&'a str),
    Int(i64),
}

impl<'a> Scalar<'a> {
    /// `Text`, or `Null` for `None`.
    pub fn text(value: Option<&'a str>) -> Self {
        value.map_or(Scalar::Null, Scalar::Text)
    }

    fn to_value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Text(s) => Value::String(s.to_string()),
            Scalar::Int(n) => Value::from(n),
        }
    }
}

/// A successful structured `CallToolResult` (`isError: false`), already serialised: the exact
/// text `ToolOutput::structured(object).into_json()` serialises to (the router's answer
/// holds it as it is). Written in one pass from borrowed fields — no `Value`, no map, and
/// the text block (the object pretty-printed) written straight in its escaped form instead of
/// being pretty-printed into a string that the answer's serialiser escapes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawToolResult(String);

/// Whether serde_json escapes byte `b` inside a string (its `ESCAPE` table: control
/// characters, `"` and `\`; nothing else, not even DEL or non-ASCII).
fn escapes(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether serde_json escapes anything in `s`. Eight bytes at a time: the values written
/// here (ids, dates, names, URLs) rarely hold anything to escape, so most are checked whole.
fn needs_escape(s: &str) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    /// Whether a byte of `w` is below `n` (n ≤ 0x80; exact as a yes/no answer).
    const fn has_less(w: u64, n: u8) -> bool {
        w.wrapping_sub(ONES * n as u64) & !w & HIGH != 0
    }
    /// Whether a byte of `w` is `b`.
    const fn has_byte(w: u64, b: u8) -> bool {
        has_less(w ^ (ONES * b as u64), 1)
    }
    let mut chunks = s.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        if has_less(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\') {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| escapes(b))
}

/// `s` as serde_json writes it inside a JSON string (no quotes); `clean`: `!needs_escape(s)`.
fn push_escaped(out: &mut String, s: &str, clean: bool) {
    if clean {
        out.push_str(s);
        return;
    }
    // Rare (control characters, quotes, backslashes): serde_json's own escaping.
    let quoted = serde_json::to_string(s).unwrap_or_default();
    out.push_str(
        quoted
            .get(1..quoted.len().saturating_sub(1))
            .unwrap_or_default(),
    );
}

/// `s` escaped twice: how a string value of the pretty text appears in the answer, where the
/// text itself is a JSON string. A clean `s` is written as it is.
fn push_escaped_twice(out: &mut String, s: &str, clean: bool) {
    if clean {
        out.push_str(s);
        return;
    }
    let mut once = String::with_capacity(s.len() + 8);
    push_escaped(&mut once, s, false);
    push_escaped(out, &once, !needs_escape(&once));
}

fn push_int(out: &mut String, n: i64) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// The keys of a flat structured result (an object of strings, integers and nulls), checked
/// once: a tool keeps one for its result's shape and writes each call's values with it
/// ([`FlatKeys::result`]).
#[derive(Debug, Clone)]
pub struct FlatKeys<'k> {
    keys: &'k [&'k str],
    /// Sorted (the order of serde_json's map, so of its bytes), unique, nothing to escape:
    /// written directly. Otherwise every result goes the `Value` way (the same text).
    direct: bool,
}

impl<'k> FlatKeys<'k> {
    pub fn new(keys: &'k [&'k str]) -> Self {
        let direct = keys.windows(2).all(|pair| pair[0] < pair[1])
            && keys.iter().all(|key| !needs_escape(key));
        FlatKeys { keys, direct }
    }

    /// The result of `ToolOutput::structured(object)` for the object of these keys with
    /// `values` (one per key, in the keys' order; `None` leaves the key out).
    pub fn result(&self, values: &[Option<Scalar<'_>>]) -> RawToolResult {
        debug_assert_eq!(values.len(), self.keys.len(), "one value per key");
        if !self.direct || values.len() != self.keys.len() {
            return RawToolResult::through_value(
                self.keys.iter().copied().zip(values.iter().copied()),
            );
        }
        let present = || {
            self.keys
                .iter()
                .zip(values)
                .enumerate()
                .filter_map(|(i, (key, value))| value.map(|v| (i, *key, v)))
        };
        // Which text values hold nothing to escape (bit i: value i), checked once for both
        // writes; past 64 values each write checks again.
        let mut clean: u64 = 0;
        let mut capacity = 96;
        for (i, key, value) in present() {
            capacity += 2 * key.len() + 16;
            match value {
                Scalar::Text(s) => {
                    capacity += 2 * s.len() + 8;
                    if i < 64 && !needs_escape(s) {
                        clean |= 1 << i;
                    }
                }
                Scalar::Null | Scalar::Int(_) => capacity += 40,
            }
        }
        let is_clean = |i: usize, s: &str| match u32::try_from(i) {
            Ok(bit) if bit < 64 => clean & (1 << bit) != 0,
            _ => !needs_escape(s),
        };
        let mut out = String::with_capacity(capacity);
        // The text block: the object as `to_string_pretty` writes it, escaped once more.
        out.push_str(r#"{"content":[{"text":""#);
        let mut first = true;
        for (i, key, value) in present() {
            out.push_str(if first { "{\\n  \\\"" } else { ",\\n  \\\"" });
            first = false;
            out.push_str(key);
            out.push_str("\\\": ");
            match value {
                Scalar::Null => out.push_str("null"),
                Scalar::Int(n) => push_int(&mut out, n),
                Scalar::Text(s) => {
                    out.push_str("\\\"");
                    push_escaped_twice(&mut out, s, is_clean(i, s));
                    out.push_str("\\\"");
                }
            }
        }
        out.push_str(if first { "{}" } else { "\\n}" });
        out.push_str(r#"","type":"text"}],"isError":false,"structuredContent":"#);
        // The structured content: the object as `to_string` writes it.
        let mut first = true;
        for (i, key, value) in present() {
            out.push_str(if first { "{\"" } else { ",\"" });
            first = false;
            out.push_str(key);
            out.push_str("\":");
            match value {
                Scalar::Null => out.push_str("null"),
                Scalar::Int(n) => push_int(&mut out, n),
                Scalar::Text(s) => {
                    out.push('"');
                    push_escaped(&mut out, s, is_clean(i, s));
                    out.push('"');
                }
            }
        }
        out.push_str(if first { "{}}" } else { "}}" });
        RawToolResult(out)
    }
}

impl RawToolResult {
    /// The result of `ToolOutput::structured(object)` for the flat object `fields`: (key,
    /// value) pairs, `None` for a key left out. The keys are checked on every call: a tool
    /// that writes one shape keeps a [`FlatKeys`] instead.
    pub fn flat_object(fields: &[(&str, Option<Scalar<'_>>)]) -> Self {
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        let values: Vec<Option<Scalar<'_>>> = fields.iter().map(|(_, value)| *value).collect();
        FlatKeys::new(&keys).result(&values)
    }

    /// The same text the slow way: a `Value` map, `ToolOutput::structured`, serialised.
    fn through_value<'a>(fields: impl Iterator<Item = (&'a str, Option<Scalar<'a>>)>) -> Self {
        let object: Map<String, Value> = fields
            .filter_map(|(key, value)| value.map(|v| (key.to_string(), v.to_value())))
            .collect();
        let result = ToolOutput::structured(Value::Object(object)).into_json();
        RawToolResult(result.to_string())
    }

    /// The serialised `CallToolResult`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The result as a `Value`, for the paths that carry Values (a 2026-07-28 answer is
    /// decorated). Our own text always parses; a failure would say so to the client.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or_else(|error| {
            tracing::error!(%error, "a pre-serialised tool result did not parse back");
            ToolOutput::error("internal error: the tool's result could not be re-read").into_json()
        })
    }
}

/// MCP log levels (syslog order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "notice" => LogLevel::Notice,
            "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            "alert" => LogLevel::Alert,
            "emergency" => LogLevel::Emergency,
            _ => return None,
        })
    }
}

/// Sends notifications that belong to one request (progress, log messages) to its client,
/// and asks the client for input (`request_client`: a server→client request in the legacy
/// era, an `input_required` round trip in 2026-07-28).
///
/// The transport owns the receiving end: it streams them on the request's SSE response, or
/// on the legacy SSE connection.
#[derive(Debug, Clone)]
pub struct Notifier {
    sender: Option<mpsc::UnboundedSender<Value>>,
    progress_token: Option<Value>,
    min_log_level: Option<LogLevel>,
    /// Set by the router for legacy-era calls that have a way back to the client.
    client: Option<ClientRequester>,
    /// Set by the router for 2026-07-28 calls: answers arrive by retry (MRTR).
    input: Option<Arc<InputRound>>,
    /// Set by the router for calls running as a 2026-07-28 task: answers arrive by
    /// `tasks/update`.
    task_input: Option<Arc<dyn TaskInput>>,
}

impl Notifier {
    /// A notifier that drops everything (no client listening).
    pub fn disconnected() -> Self {
        Notifier {
            sender: None,
            progress_token: None,
            min_log_level: None,
            client: None,
            input: None,
            task_input: None,
        }
    }

    /// `progress_token` from `params._meta.progressToken`; `min_log_level` from
    /// `logging/setLevel` (None = send no log messages).
    pub fn new(
        sender: mpsc::UnboundedSender<Value>,
        progress_token: Option<Value>,
        min_log_level: Option<LogLevel>,
    ) -> Self {
        Notifier {
            sender: Some(sender),
            progress_token,
            min_log_level,
            client: None,
            input: None,
            task_input: None,
        }
    }

    /// Let a call running as a task ask the client for input through the task.
    pub fn with_task_input(mut self, input: Arc<dyn TaskInput>) -> Self {
        self.task_input = Some(input);
        self
    }

    /// Allow this call to send requests to the client (sampling, elicitation, roots).
    pub fn with_client_requests(mut self, client: ClientRequester) -> Self {
        self.client = Some(client);
        self
    }

    /// Let a 2026-07-28 call ask the client for input by retry (MRTR).
    pub fn with_input_round(mut self, round: Arc<InputRound>) -> Self {
        self.input = Some(round);
        self
    }

    /// Whether the client declared `capability` (`None` = not known: a stateless legacy
    /// request, or no way to reach the client at all).
    pub fn client_supports(&self, capability: &str) -> Option<bool> {
        if let Some(round) = &self.input {
            return Some(round.declares(capability));
        }
        if let Some(task) = &self.task_input {
            return Some(task.declares(capability));
        }
        self.client
            .as_ref()
            .and_then(|c| c.client_supports(capability))
    }

    /// Ask the client (`sampling/createMessage`, `elicitation/create`, `roots/list`) and get
    /// its result. Legacy era: a request on the call's stream. 2026-07-28: see
    /// [`Notifier::request_client_as`] (the key is `input-1`, `input-2`, … in call order).
    pub async fn request_client(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        let key = match (&self.input, &self.task_input) {
            (Some(round), _) => round.auto_key(),
            (None, Some(task)) => task.next_key(),
            (None, None) => String::new(),
        };
        self.request_client_as(&key, method, params).await
    }

    /// Like [`Notifier::request_client`], naming the input request `key` (the key of
    /// `inputRequests`/`inputResponses` in 2026-07-28). There, a missing answer is recorded
    /// and `Err(ClientRequestError::InputRequired)` comes back: return early; the router
    /// answers `input_required` and the client's retry runs the tool again with the answer.
    /// The legacy era ignores `key`.
    pub async fn request_client_as(
        &self,
        key: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        if let Some(round) = &self.input {
            if let Some(answer) = round.answer(key) {
                return Ok(answer.clone());
            }
            if let Some(capability) = capability_for(method)
                && !round.declares(capability)
            {
                return Err(ClientRequestError::CapabilityMissing(capability.into()));
            }
            round.need(key, method, params);
            return Err(ClientRequestError::InputRequired);
        }
        if let Some(task) = &self.task_input {
            if let Some(capability) = capability_for(method)
                && !task.declares(capability)
            {
                return Err(ClientRequestError::CapabilityMissing(capability.into()));
            }
            return task.request(key, method, params).await;
        }
        match &self.client {
            Some(client) => client.request(method, params).await,
            None => Err(ClientRequestError::Unsupported),
        }
    }

    /// 2026-07-28: the state this handler stored in an earlier round of the same request.
    pub fn request_state(&self) -> Option<Value> {
        self.input
            .as_ref()
            .and_then(|r| r.previous_state().cloned())
    }

    /// 2026-07-28: state to get back (sealed, via the client) in the next round.
    pub fn set_request_state(&self, state: Value) {
        if let Some(round) = &self.input {
            round.set_state(state);
        }
    }

    /// Whether the client asked for progress on this request.
    pub fn wants_progress(&self) -> bool {
        self.sender.is_some() && self.progress_token.is_some()
    }

    /// Send `notifications/progress` (no-op without a progress token). `progress` must increase.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let (Some(sender), Some(token)) = (&self.sender, &self.progress_token) else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(obj) = params.as_object_mut() {
            if let Some(total) = total {
                obj.insert("total".into(), json!(total));
            }
            if let Some(message) = message {
                obj.insert("message".into(), json!(message));
            }
        }
        let _ = sender.send(json!({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": params,
        }));
    }

    /// Send `notifications/message` if `level` is at or above the client's chosen level.
    pub fn log(&self, level: LogLevel, logger: &str, data: Value) {
        let (Some(sender), Some(min)) = (&self.sender, self.min_log_level) else {
            return;
        };
        if level < min {
            return;
        }
        let _ = sender.send(json!({
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": { "level": level, "logger": logger, "data": data },
        }));
    }
}

/// Everything a tool knows about the call it is serving.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub principal: Principal,
    pub notifier: Notifier,
    /// Cancelled on `notifications/cancelled` (or, in 2026-07-28, when the stream closes).
    pub cancel: CancellationToken,
    /// What the call's audit event records: tools note the session, paths, command and
    /// every refusal (`ctx.audit.deny(rule, reason)`) here.
    pub audit: crate::audit::Notes,
}

/// A tool: a declaration and an async call.
#[async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> &ToolSpec;
    /// Arguments are the raw `params.arguments` object; validate them and answer with
    /// `ToolOutput::error` (not a panic) on bad input.
    async fn call(&self, ctx: &CallContext, args: Map<String, Value>) -> ToolOutput;

    /// The same call, for the router's direct answers: a tool that can write its successful
    /// result as bytes ([`RawToolResult`]) answers with them, and the router hands them to the
    /// transport as they are. It must mean exactly what [`Tool::call`] answers.
    async fn call_raw(&self, ctx: &CallContext, args: Map<String, Value>) -> CallResult {
        CallResult::Output(self.call(ctx, args).await)
    }

    /// Client capabilities (`"sampling"`, `"elicitation"`, `"roots"`) this tool cannot work
    /// without. A 2026-07-28 request that does not declare them is refused with -32021.
    fn required_client_capabilities(&self) -> &'static [&'static str] {
        &[]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The results written as bytes (`RawToolResult::flat_object`, `FlatKeys`, the envelope of
    /// `RawResponse::success_text`) put keys in the order serde_json's `Map` keeps them: sorted.
    /// A dependency switching on serde_json's `preserve_order` feature would change that order
    /// in the Value path only; this says so by name instead of as a byte difference elsewhere.
    #[test]
    fn serde_json_maps_are_sorted_as_the_byte_writers_assume() {
        assert_eq!(
            serde_json::json!({"b": 1, "a": 2}).to_string(),
            r#"{"a":2,"b":1}"#,
            "serde_json's `preserve_order` is on: the raw result writers must follow insertion order"
        );
    }

    #[test]
    fn into_json_is_to_json_without_the_copies() {
        let outputs = [
            ToolOutput::structured(serde_json::json!({"kasm_id": "k", "n": [1, 2]})),
            ToolOutput::error("nope"),
            ToolOutput {
                content: vec![
                    Content::Image {
                        data: "AAAA".into(),
                        mime_type: "image/jpeg".into(),
                    },
                    Content::Text { text: "t".into() },
                ],
                structured: None,
                is_error: false,
            },
        ];
        for output in outputs {
            assert_eq!(output.to_json(), output.clone().into_json());
        }
    }

    /// Strings that exercise every kind of escape serde_json writes (and the ones it does
    /// not: DEL, non-ASCII, U+2028), at the start, middle and end of a value.
    pub(crate) fn odd_strings() -> Vec<String> {
        let mut odd: Vec<String> = [
            "",
            "plain",
            "é ✓ 😀 \u{2028}\u{2029}",
            "\u{7f}",
            "\"",
            "\\",
            "\\\"",
            "\\n",
            "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{0}i\u{1f}j\u{1}",
            "</script><!--",
            "{\n  \"kasm_id\": \"x\"\n}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for byte in 0u8..0x20 {
            let c = char::from(byte);
            odd.push(format!("{c}"));
            odd.push(format!("{c}x"));
            odd.push(format!("x{c}"));
        }
        odd.push("x".repeat(5000));
        odd.push("\"".repeat(700));
        odd
    }

    fn through_value(fields: &[(&str, Option<Scalar<'_>>)]) -> String {
        let object: Map<String, Value> = fields
            .iter()
            .filter_map(|(key, value)| value.map(|v| (key.to_string(), v.to_value())))
            .collect();
        ToolOutput::structured(Value::Object(object))
            .into_json()
            .to_string()
    }

    /// The word-at-a-time check answers what a byte-by-byte look at serde_json's escape
    /// table answers, for every ASCII byte and some multi-byte characters at every offset of
    /// strings up to 24 bytes, on clean backgrounds of ASCII and of non-ASCII text.
    #[test]
    fn needs_escape_is_the_byte_table() {
        let naive = |s: &str| s.bytes().any(escapes);
        let mut specials: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        specials.extend(
            [
                "\u{80}",
                "é",
                "✓",
                "😀",
                "\u{2028}",
                "\u{ff}",
                "\u{1c}\u{1f}",
            ]
            .map(String::from),
        );
        for background in ["a", "~", "é"] {
            for len in 0..24 {
                let base = background.repeat(len);
                assert!(!needs_escape(&base));
                for special in &specials {
                    for at in 0..=len {
                        let mut text: String = background.repeat(at);
                        text.push_str(special);
                        text.push_str(&background.repeat(len - at));
                        assert_eq!(needs_escape(&text), naive(&text), "{text:?}");
                    }
                }
            }
        }
        for b in 0u8..=0xff {
            assert_eq!(escapes(b), b < 0x20 || b == b'"' || b == b'\\', "{b}");
        }
    }

    /// More values than the writer's bit mask holds: the ones past it are checked as they
    /// are written.
    #[test]
    fn a_flat_result_of_many_values_is_the_value_path_text() {
        let odd = odd_strings();
        let keys: Vec<String> = (0..100).map(|i| format!("k{i:03}")).collect();
        let fields: Vec<(&str, Option<Scalar<'_>>)> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| (key.as_str(), Some(Scalar::Text(&odd[i % odd.len()]))))
            .collect();
        assert_eq!(
            RawToolResult::flat_object(&fields).as_str(),
            through_value(&fields)
        );
    }

    /// The flat writer gives the text of `ToolOutput::structured(object).into_json()` (what
    /// the router serialised before) for every value kind, every escape, absent keys, empty
    /// objects — and keys it cannot write itself go the Value way.
    #[test]
    fn a_flat_result_is_the_value_path_text() {
        let odd = odd_strings();
        let ints = [0, 1, -1, 40, 100, i64::MAX, i64::MIN];
        let mut cases: Vec<Vec<(&str, Option<Scalar<'_>>)>> = vec![
            vec![],
            vec![("a", None)],
            vec![("a", None), ("b", None)],
            vec![("a", Some(Scalar::Null))],
            vec![
                ("a", Some(Scalar::Null)),
                ("b", None),
                ("c", Some(Scalar::Int(3))),
            ],
            // Not sorted, duplicated, or needing escapes: the Value way.
            vec![("b", Some(Scalar::Int(1))), ("a", Some(Scalar::Null))],
            vec![("a", Some(Scalar::Int(1))), ("a", Some(Scalar::Int(2)))],
            vec![
                ("a\"", Some(Scalar::Null)),
                ("b\n", Some(Scalar::Text("x"))),
            ],
            vec![("é", Some(Scalar::Text("x"))), ("ê", Some(Scalar::Null))],
        ];
        for n in ints {
            cases.push(vec![
                ("n", Some(Scalar::Int(n))),
                ("t", Some(Scalar::Text("x"))),
            ]);
        }
        for text in &odd {
            cases.push(vec![("only", Some(Scalar::Text(text)))]);
            cases.push(vec![
                ("a", Some(Scalar::Text(text))),
                ("b", None),
                ("c", Some(Scalar::Null)),
                ("d", Some(Scalar::Text(text))),
                ("e", Some(Scalar::Int(-7))),
            ]);
        }
        for fields in cases {
            assert_eq!(
                RawToolResult::flat_object(&fields).as_str(),
                through_value(&fields),
                "{fields:?}"
            );
            let raw = RawToolResult::flat_object(&fields);
            assert_eq!(raw.to_value().to_string(), raw.as_str());
        }
    }

    #[test]
    fn the_text_of_a_structured_result_is_to_string_pretty() {
        let big = "x".repeat(3000);
        for value in [
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!({"kasm_id": "k\"\n\u{e9}", "n": [1, -2.5, null], "m": {"b": true, "a": {}}}),
            serde_json::json!({ "text": big }),
        ] {
            let expected = serde_json::to_string_pretty(&value).unwrap();
            let Content::Text { text } = &ToolOutput::structured(value).content[0] else {
                panic!("not a text block")
            };
            assert_eq!(text, &expected);
        }
    }
}
