//! `tools/call`: resolve the tool for the caller's role, build its [`CallContext`] (progress,
//! log level, cancellation, a way to ask the client), run it — racing cancellation and
//! catching panics — and write one audit event.
//!
//! Tool failures come back as `isError` results; only protocol problems (unknown tool, bad
//! params) are JSON-RPC errors.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::Either;
use serde_json::{Map, Value, json};

use crate::audit::{
    Decision, Details, Notes, Outcome, ToolCallRecord, audit_digest, canonical_sha256,
    record_tool_call, records_tool_calls,
};
use crate::mcp::client_requests::ClientRequester;
use crate::mcp::jsonrpc::{RequestId, RpcError, code, params_map, required_str};
use crate::mcp::lifecycle::TASKS_VERSION;
use crate::mcp::meta::RequestMeta;
use crate::mcp::modern::{ModernRequest, check_param_headers};
use crate::mcp::mrtr::{InputRound, open_round};
use crate::mcp::registry::Lookup;
use crate::mcp::server::{McpServer, Reply};
use crate::mcp::state::owner_key;
use crate::mcp::tasks::input::StoreInput;
use crate::mcp::tasks::record::{Era, TaskRecord};
use crate::mcp::tasks::request::{Mode, POLL_INTERVAL_MS, legacy_mode, modern_mode};
use crate::mcp::tasks::runner::{self, Ended, Launch};
use crate::mcp::tasks::wire::{legacy_created, modern_created};
use crate::mcp::tool::{CallContext, CallResult, Notifier, Tool, ToolOutput};
use crate::telemetry::ToolSeriesTable;

/// Longest tool name echoed into an audit event (names come from the client).
const MAX_AUDITED_NAME: usize = 128;

/// One call's audit event. A call some rule refused (the router's own checks, or a tool that
/// noted `ctx.audit.deny`) is recorded as `decision = "deny"` with the rule and reason.
fn audit(
    series: &ToolSeriesTable,
    meta: &RequestMeta,
    tool: &str,
    args: &Map<String, Value>,
    notes: &Notes,
    outcome: Outcome,
    started: Instant,
) {
    let tool = audited_name(tool);
    let details = notes.snapshot();
    let decision = if details.rule.is_some() {
        Decision::Deny
    } else {
        Decision::Allow
    };
    let elapsed = started.elapsed();
    // Allowed calls name a registered tool (a bounded label set); a refused call may name
    // anything the client sent, so refusals are counted without the name.
    match decision {
        Decision::Allow => series.duration(tool, elapsed),
        // The one place a refused tool call is counted, under the rule that refused it.
        Decision::Deny => crate::telemetry::policy_refusal(details.rule.as_deref().unwrap_or("")),
    }
    // Filtered out (e.g. a log level above `info`): the arguments' digest is not computed.
    if !records_tool_calls() {
        return;
    }
    record_tool_call(&ToolCallRecord {
        principal: &meta.principal.name,
        client_id: meta
            .principal
            .oauth
            .as_ref()
            .and_then(|g| g.client_id.as_deref()),
        scopes: meta.principal.oauth.as_ref().map(|g| g.scopes.as_slice()),
        tool,
        arguments_sha256: audit_digest(args),
        decision,
        outcome,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        details,
    });
}

/// The first [`MAX_AUDITED_NAME`] characters of a tool name, borrowed.
fn audited_name(tool: &str) -> &str {
    match tool.char_indices().nth(MAX_AUDITED_NAME) {
        Some((end, _)) => &tool[..end],
        None => tool,
    }
}

/// The audit notes of a call, pre-filled with the request's facts.
fn notes_for(meta: &RequestMeta, client: Option<String>) -> Notes {
    let notes = Notes::default();
    notes.update(|d| {
        *d = Details {
            request_id: meta.origin.request_id.clone(),
            client_ip: meta.origin.client_ip.clone(),
            client,
            ..Details::default()
        }
    });
    notes
}

/// `params._meta.progressToken` when it is a string or a number.
fn progress_token(params: &Map<String, Value>) -> Option<Value> {
    params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_number())
        .cloned()
}

/// Why a 2026-07-28 call is refused before it runs (HTTP 400): its `Mcp-Param-*` headers
/// disagree with the arguments (-32020), or the tool needs client capabilities the request
/// did not declare (-32021).
fn modern_refusal(
    tool: &dyn Tool,
    args: &Map<String, Value>,
    modern: &ModernRequest,
) -> Option<RpcError> {
    if let Some(headers) = modern.param_headers.as_deref()
        && let Err(error) = check_param_headers(&tool.spec().input_schema, args, headers)
    {
        return Some(error);
    }
    let missing: Map<String, Value> = tool
        .required_client_capabilities()
        .iter()
        .filter(|cap| !modern.declares(cap))
        .map(|cap| (cap.to_string(), json!({})))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&String> = missing.keys().collect();
    Some(
        RpcError::new(
            code::MISSING_CLIENT_CAPABILITY,
            format!(
                "tool {:?} needs client capabilities the request did not declare: {names:?}",
                tool.spec().name
            ),
        )
        .with_data(json!({ "requiredCapabilities": missing })),
    )
}

/// A `tools/call` that runs as a task.
struct TaskCall {
    tool: Arc<dyn Tool>,
    name: String,
    args: Map<String, Value>,
    params: Map<String, Value>,
    notes: Notes,
    started: Instant,
    ttl_ms: u64,
}

impl McpServer {
    /// The audit event of a call refused (or failed) before its tool ran.
    fn audit_refused(
        &self,
        meta: &RequestMeta,
        name: &str,
        args: &Map<String, Value>,
        notes: &Notes,
        started: Instant,
    ) {
        audit(
            &self.tool_series,
            meta,
            name,
            args,
            notes,
            Outcome::Error,
            started,
        );
    }

    /// Whether this call runs as a task (2025-11-25: the client asked with `params.task` in
    /// a session that negotiated 2025-11-25; 2026-07-28: the request declares the extension
    /// and the tool supports tasks).
    fn task_mode(
        &self,
        tool: &dyn Tool,
        params: &Map<String, Value>,
        meta: &RequestMeta,
        owner: &str,
        modern: Option<&ModernRequest>,
    ) -> Result<Mode, RpcError> {
        let spec = tool.spec();
        if let Some(m) = modern {
            return modern_mode(&spec.name, spec.task_support, &m.client_capabilities);
        }
        let version = match meta.protocol_version_header.as_deref() {
            Some(v) => Some(v.trim().to_string()),
            None => self.state.client(owner).map(|c| c.protocol_version),
        };
        let negotiated = self.features().tasks && version.as_deref() == Some(TASKS_VERSION);
        legacy_mode(&spec.name, spec.task_support, params, negotiated)
    }

    /// Store the task (before answering), start the call in the background and answer with
    /// the `CreateTaskResult` of the request's era.
    async fn start_task(
        &self,
        call: TaskCall,
        meta: &RequestMeta,
        owner: &str,
        modern_request: Option<&ModernRequest>,
    ) -> Reply {
        let modern = modern_request.is_some();
        let TaskCall {
            tool,
            name,
            args,
            params,
            notes,
            started,
            ttl_ms,
        } = call;
        let era = if modern { Era::Modern } else { Era::Legacy };
        let record = TaskRecord::new(&meta.principal.name, &name, era, ttl_ms, POLL_INTERVAL_MS);
        if let Err(e) = self.tasks.create(record.clone()).await {
            self.audit_refused(meta, &name, &args, &notes, started);
            return Reply::Error(RpcError::internal(format!(
                "could not create the task: {e}"
            )));
        }
        // Questions to the client go through the task (input_required): 2026-07-28 clients
        // answer with tasks/update, 2025-11-25 clients on the stream of tasks/result. Legacy
        // era: progress and log messages keep flowing where the creating request's messages
        // went (a legacy SSE connection); 2026-07-28 has no stream after the answer.
        let notifier = if let Some(m) = modern_request {
            Notifier::disconnected().with_task_input(Arc::new(StoreInput::new(
                self.tasks.clone(),
                record.id.clone(),
                m.client_capabilities.clone(),
            )))
        } else {
            let capabilities = self
                .state
                .client(owner)
                .map(|c| c.capabilities)
                .unwrap_or_else(|| serde_json::json!({}));
            self.notifier_for(meta, owner, &params, None, None)
                .with_task_input(Arc::new(StoreInput::new(
                    self.tasks.clone(),
                    record.id.clone(),
                    capabilities,
                )))
        };
        let ctx = CallContext {
            principal: meta.principal.clone(),
            notifier,
            cancel: tokio_util::sync::CancellationToken::new(),
            audit: notes.clone(),
        };
        let audited_meta = meta.clone();
        let audited_args = args.clone();
        let audited_name = name.clone();
        let series = Arc::clone(&self.tool_series);
        let on_end = Box::new(move |ended: Ended| {
            let outcome = match ended {
                Ended::Ok => Outcome::Ok,
                Ended::ToolError | Ended::Failed => Outcome::Error,
                Ended::Cancelled => Outcome::Cancelled,
            };
            audit(
                &series,
                &audited_meta,
                &audited_name,
                &audited_args,
                &notes,
                outcome,
                started,
            );
        });
        runner::spawn(
            Launch {
                store: self.tasks.clone(),
                id: record.id.clone(),
                era,
                tool,
                ctx,
                args,
                status_sink: (!modern).then(|| meta.notifications.clone()),
                on_end,
            },
            self.tasks_shutdown().as_ref(),
        );
        Reply::Result(if modern {
            modern_created(&record)
        } else {
            legacy_created(&record)
        })
    }

    /// Remember what the client of owner `from` declared at `initialize` also under owner
    /// `to` (Streamable HTTP: the session is minted after `initialize` was handled).
    pub fn copy_client(&self, from: &str, to: &str) {
        if let Some(client) = self.state.client(from) {
            self.state.set_client(to, client);
        }
    }

    /// What the client under `owner` declared at `initialize`, if this process knows it.
    pub fn client_of(&self, owner: &str) -> Option<crate::mcp::state::ClientInfo> {
        self.state.client(owner)
    }

    /// Remember what the client under `owner` declared (learnt from another replica).
    pub fn remember_client(&self, owner: &str, client: crate::mcp::state::ClientInfo) {
        self.state.set_client(owner, client);
    }

    /// The context of a `resources/read`: the caller, a way back to its client (legacy era)
    /// and audit notes pre-filled with the request's facts.
    pub(crate) fn resource_context(&self, meta: &RequestMeta) -> CallContext {
        let owner = owner_key(meta);
        let params = Map::new();
        CallContext {
            principal: meta.principal.clone(),
            notifier: self.notifier_for(meta, &owner, &params, None, None),
            cancel: tokio_util::sync::CancellationToken::new(),
            audit: notes_for(meta, self.state.client(&owner).and_then(|c| c.name)),
        }
    }

    /// The call's notifier: progress token, log level (per session in the legacy era, per
    /// request in 2026-07-28) and the way to ask the client for input (a request on the
    /// stream, or an MRTR round).
    fn notifier_for(
        &self,
        meta: &RequestMeta,
        owner: &str,
        params: &Map<String, Value>,
        modern: Option<&ModernRequest>,
        round: Option<Arc<InputRound>>,
    ) -> Notifier {
        let log_level = match modern {
            Some(m) => m.log_level,
            None => self.state.log_level(owner),
        };
        let notifier = Notifier::new(
            meta.notifications.clone(),
            progress_token(params),
            log_level,
        );
        match round {
            Some(round) => notifier.with_input_round(round),
            None => notifier.with_client_requests(ClientRequester::new(
                self.pending.clone(),
                owner.to_string(),
                meta.notifications.clone(),
                self.state.client(owner).map(|c| c.capabilities),
            )),
        }
    }

    pub(crate) async fn call_tool(
        &self,
        id: &RequestId,
        params: Option<&Value>,
        meta: &RequestMeta,
        modern: Option<&ModernRequest>,
    ) -> Reply {
        let started = Instant::now();
        // Borrowed from the request: the tool gets the one copy of the arguments it owns.
        let empty = Map::new();
        let params = match params_map(params, &empty) {
            Ok(p) => p,
            Err(e) => return Reply::Error(e),
        };
        let name = match required_str(params, "name") {
            Ok(n) => n.to_string(),
            Err(e) => return Reply::Error(e),
        };
        // `arguments` is optional in the spec; when present it must be an object.
        let args = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(args)) => args,
            Some(_) => {
                return Reply::Error(RpcError::invalid_params(
                    "params.arguments must be an object",
                ));
            }
        };
        let owner = owner_key(meta);
        let notes = notes_for(meta, self.state.client(&owner).and_then(|c| c.name));
        let tool = match self.registry.lookup(&meta.principal, &name) {
            Lookup::Found(tool) => tool.clone(),
            found @ (Lookup::Unknown | Lookup::Forbidden) => {
                let error = self.registry.unavailable_error(&meta.principal, &name);
                let rule = if matches!(found, Lookup::Forbidden) {
                    "role"
                } else {
                    "unknown_tool"
                };
                notes.deny(rule, &error.message);
                self.audit_refused(meta, &name, args, &notes, started);
                return Reply::Error(error);
            }
        };
        if let Some(error) = modern.and_then(|m| modern_refusal(tool.as_ref(), args, m)) {
            notes.deny("protocol", &error.message);
            self.audit_refused(meta, &name, args, &notes, started);
            return Reply::Refused { status: 400, error };
        }
        match self.task_mode(tool.as_ref(), params, meta, &owner, modern) {
            Ok(Mode::Direct) => {}
            Ok(Mode::Task { ttl_ms }) => {
                let call = TaskCall {
                    tool,
                    name,
                    args: args.clone(),
                    params: params.clone(),
                    notes,
                    started,
                    ttl_ms,
                };
                return self.start_task(call, meta, &owner, modern).await;
            }
            Err(error) => {
                notes.deny("protocol", &error.message);
                self.audit_refused(meta, &name, args, &notes, started);
                if error.code == code::MISSING_CLIENT_CAPABILITY {
                    return Reply::Refused { status: 400, error };
                }
                return Reply::Error(error);
            }
        }

        // 2026-07-28: answers to earlier input requests (MRTR), bound to this exact call
        // (hashed only for such requests: the canonical SHA-256 costs every other call).
        let binding = modern.map(|_| {
            format!(
                "{}|tools/call|{name}|{}",
                meta.principal.name,
                canonical_sha256(args)
            )
        });
        let round = match (modern, &binding) {
            (Some(m), Some(binding)) => {
                match open_round(
                    &self.sealer,
                    self.cluster(),
                    binding,
                    params,
                    m.client_capabilities.clone(),
                )
                .await
                {
                    Ok(round) => Some(Arc::new(round)),
                    Err(e) => {
                        notes.deny("protocol", &e.message);
                        self.audit_refused(meta, &name, args, &notes, started);
                        return Reply::Error(e);
                    }
                }
            }
            _ => None,
        };
        let notifier = self.notifier_for(meta, &owner, params, modern, round.clone());
        let (cancel, serial) = self.state.start_call(&owner, id);
        let mut guard = InFlight {
            server: self,
            owner,
            id: id.clone(),
            serial,
            meta,
            name: &name,
            args,
            notes: notes.clone(),
            started,
            settled: false,
        };
        let ctx = CallContext {
            principal: meta.principal.clone(),
            notifier,
            cancel: cancel.clone(),
            audit: notes,
        };
        // Outside 2026-07-28 (no decoration, no MRTR round) a tool may answer with its result
        // already serialised; a 2026-07-28 call gets the `ToolOutput` as before.
        let call = if modern.is_none() {
            Either::Left(tool.call_raw(&ctx, args.clone()))
        } else {
            Either::Right(tool.call(&ctx, args.clone()).map(CallResult::Output))
        };
        let run = AssertUnwindSafe(call).catch_unwind();
        // `biased`: a cancellation that has arrived wins over a result that is ready in the
        // same poll, so a cancelled request never gets a response.
        let finished = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            outcome = run => Some(outcome),
        };

        let (outcome, reply) = match finished {
            None => (Outcome::Cancelled, Reply::NoResponse),
            Some(Err(_panic)) => {
                tracing::error!(tool = %name, "tool panicked");
                let output = ToolOutput::error(format!(
                    "tool {name:?} failed unexpectedly; the server logged the details"
                ));
                (Outcome::Error, Reply::Result(output.to_json()))
            }
            // Only successful results are written as bytes.
            Some(Ok(CallResult::Raw(result))) => (Outcome::Ok, Reply::RawToolResult(result)),
            Some(Ok(CallResult::Output(output))) => {
                let input_required = round
                    .as_ref()
                    .zip(binding.as_deref())
                    .and_then(|(r, binding)| r.input_required(&self.sealer, binding));
                let outcome = if output.is_error && input_required.is_none() {
                    Outcome::Error
                } else {
                    Outcome::Ok
                };
                (
                    outcome,
                    Reply::Result(input_required.unwrap_or_else(|| output.into_json())),
                )
            }
        };
        guard.settle(outcome);
        reply
    }
}

/// Unregisters an in-flight call and writes its audit event exactly once — also when the
/// transport drops the future mid-call (a 2026-07-28 client closed its stream), which is
/// recorded as cancelled.
struct InFlight<'a> {
    server: &'a McpServer,
    owner: String,
    id: RequestId,
    /// From `State::start_call`: which of the calls under `(owner, id)` this is.
    serial: u64,
    meta: &'a RequestMeta,
    name: &'a str,
    args: &'a Map<String, Value>,
    notes: Notes,
    started: Instant,
    settled: bool,
}

impl InFlight<'_> {
    fn settle(&mut self, outcome: Outcome) {
        if self.settled {
            return;
        }
        self.settled = true;
        self.server
            .state
            .finish_call(&self.owner, &self.id, self.serial);
        audit(
            &self.server.tool_series,
            self.meta,
            self.name,
            self.args,
            &self.notes,
            outcome,
            self.started,
        );
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.settle(Outcome::Cancelled);
    }
}
