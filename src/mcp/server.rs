//! The JSON-RPC router: one entry point, [`McpServer::handle`], used by every transport, and
//! the builder that registers tools and the optional resource/prompt/completion providers.
//!
//! CONTRACT for transports: parse HTTP, authenticate, then call `handle` with one JSON-RPC
//! message (or a 2025-03-26 batch array) and a [`RequestMeta`] (or `handle_bytes` with the raw
//! body, which also answers invalid JSON with -32700). Messages that belong to the request —
//! progress, `notifications/message`, and server→client requests such as
//! `sampling/createMessage` — are sent on `meta.notifications` while the future runs; stream
//! them (SSE) to the client, and feed the client's POSTed replies back into `handle`.
//!
//! What comes back:
//! - [`Handled::Response`]: a JSON-RPC response (or a batch array of them) → HTTP 200.
//! - [`Handled::RawResponse`]: the same, already serialised (the cached `tools/list`, a
//!   successful tool result written as bytes) → HTTP 200; write [`RawResponse::as_str`] as the
//!   body or SSE data, unchanged.
//! - [`Handled::Accepted`]: a notification or a response was accepted → HTTP 202, no body.
//!   A *request* also yields `Accepted` when it was cancelled by `notifications/cancelled`:
//!   the spec says the cancelled request gets no response, so send nothing (close the SSE
//!   stream; on a JSON-only reply answer 202 with no body).
//! - [`Handled::HttpError`]: an HTTP-level refusal (400 parse/-32600/-32020/-32021/-32022,
//!   404 for a 2026-07-28 method that does not exist); the body is a JSON-RPC error.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::mcp::client_requests::PendingClientRequests;
use crate::mcp::completion::CompletionProvider;
use crate::mcp::jsonrpc::{Incoming, RequestId, RpcError, classify_owned, failure, success};
use crate::mcp::lifecycle::{BATCH_VERSION, Features, ServerIdentity};
use crate::mcp::meta::RequestMeta;
use crate::mcp::method::Method;
use crate::mcp::modern::{self, ModernRequest};
use crate::mcp::mrtr::StateSealer;
use crate::mcp::pagination::DEFAULT_PAGE_SIZE;
use crate::mcp::prompts::PromptProvider;
use crate::mcp::registry::ToolRegistry;
use crate::mcp::replicas::{self, Unmatched};
use crate::mcp::resources::ResourceProvider;
use crate::mcp::state::{State, owner_key};
use crate::mcp::tasks::memory::MemoryTaskStore;
use crate::mcp::tasks::store::TaskStore;
use crate::mcp::tool::RawToolResult;
use crate::mcp::tool::Tool;
use crate::mcp::tools_list::{RawResponse, ToolsListCache};
use crate::telemetry::ToolSeriesTable;

/// How large a batch may be and how many of its items run at once (`[batch]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_items: usize,
    pub concurrency: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_items: 50,
            concurrency: 4,
        }
    }
}

/// The outcome of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// A JSON-RPC response (or a batch array of them) to send back.
    Response(Value),
    /// A success response already serialised (the cached `tools/list`, a successful tool
    /// result written as bytes: never `isError`): write its text as is.
    RawResponse(RawResponse),
    /// A notification or response was accepted (HTTP 202, no body) — or a request was
    /// cancelled and must get no response.
    Accepted,
    /// An HTTP-level refusal (e.g. 400 with -32020 HeaderMismatch, 404 with -32601 for modern
    /// requests); the body is a JSON-RPC error object.
    HttpError { status: u16, body: Value },
}

/// What a method handler produced, before it becomes a [`Handled`].
#[derive(Debug)]
pub(crate) enum Reply {
    Result(Value),
    /// A result already serialised for this request's era (no decoration to add).
    RawResult(Arc<RawValue>),
    /// A tool's successful result, already serialised (undecorated).
    RawToolResult(RawToolResult),
    Error(RpcError),
    /// An HTTP-level refusal (2026-07-28 only).
    Refused {
        status: u16,
        error: RpcError,
    },
    /// The request was cancelled: no response at all.
    NoResponse,
}

/// The protocol engine shared by all transports.
pub struct McpServer {
    pub(crate) identity: ServerIdentity,
    tools: Vec<Arc<dyn Tool>>,
    pub(crate) registry: ToolRegistry,
    /// `tools/list` first pages, serialised once per role and era.
    pub(crate) tools_list: ToolsListCache,
    /// The tool-call metric series of this catalog, resolved once.
    pub(crate) tool_series: Arc<ToolSeriesTable>,
    pub(crate) resources: Option<Arc<dyn ResourceProvider>>,
    pub(crate) prompts: Option<Arc<dyn PromptProvider>>,
    pub(crate) completions: Option<Arc<dyn CompletionProvider>>,
    pub(crate) page_size: usize,
    pub(crate) state: State,
    pub(crate) pending: Arc<PendingClientRequests>,
    pub(crate) sealer: StateSealer,
    batch: BatchLimits,
    /// Where MCP tasks live.
    pub(crate) tasks: Arc<dyn TaskStore>,
    /// `[cluster]`: where unmatched answers and cancellations are broadcast.
    cluster: std::sync::OnceLock<crate::cluster::Cluster>,
    /// The shutdown task calls run under ([`McpServer::run_tasks_under`]).
    shutdown: std::sync::Mutex<Option<crate::shutdown::Shutdown>>,
}

/// Builds an [`McpServer`].
pub struct McpServerBuilder {
    identity: ServerIdentity,
    tools: Vec<Arc<dyn Tool>>,
    resources: Option<Arc<dyn ResourceProvider>>,
    prompts: Option<Arc<dyn PromptProvider>>,
    completions: Option<Arc<dyn CompletionProvider>>,
    page_size: usize,
    request_state_key: Option<[u8; 32]>,
    batch: BatchLimits,
    tasks: Option<Arc<dyn TaskStore>>,
}

impl McpServerBuilder {
    /// Where MCP tasks are kept (default: in this process's memory). Give every replica the
    /// same shared store so any of them can answer for any task.
    pub fn task_store(mut self, store: Arc<dyn TaskStore>) -> Self {
        self.tasks = Some(store);
        self
    }

    /// Batch length cap and concurrency (each at least 1; default 50 and 4).
    pub fn batch_limits(mut self, limits: BatchLimits) -> Self {
        self.batch = BatchLimits {
            max_items: limits.max_items.max(1),
            concurrency: limits.concurrency.max(1),
        };
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.identity.title = Some(title.into());
        self
    }

    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.identity.instructions = Some(instructions.into());
        self
    }

    pub fn tools(mut self, tools: Vec<Arc<dyn Tool>>) -> Self {
        self.tools.extend(tools);
        self
    }

    pub fn resources(mut self, provider: Arc<dyn ResourceProvider>) -> Self {
        self.resources = Some(provider);
        self
    }

    pub fn prompts(mut self, provider: Arc<dyn PromptProvider>) -> Self {
        self.prompts = Some(provider);
        self
    }

    pub fn completions(mut self, provider: Arc<dyn CompletionProvider>) -> Self {
        self.completions = Some(provider);
        self
    }

    /// Items per page of every list method (at least 1; default 100).
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Key that seals 2026-07-28 `requestState` values (set the same key on every replica;
    /// default: random per process, so a restart makes clients start the request over).
    pub fn request_state_key(mut self, key: [u8; 32]) -> Self {
        self.request_state_key = Some(key);
        self
    }

    pub fn build(self) -> McpServer {
        let registry = ToolRegistry::new(self.tools);
        let tools = registry.all();
        let tool_series = Arc::new(ToolSeriesTable::new(
            tools.iter().map(|t| t.spec().name.as_str()),
        ));
        McpServer {
            identity: self.identity,
            tools,
            registry,
            tools_list: ToolsListCache::default(),
            tool_series,
            resources: self.resources,
            prompts: self.prompts,
            completions: self.completions,
            page_size: self.page_size,
            state: State::default(),
            pending: Arc::new(PendingClientRequests::default()),
            sealer: match self.request_state_key {
                Some(key) => StateSealer::new(key),
                None => StateSealer::random(),
            },
            batch: self.batch,
            tasks: self
                .tasks
                .unwrap_or_else(|| Arc::new(MemoryTaskStore::default())),
            cluster: std::sync::OnceLock::new(),
            shutdown: std::sync::Mutex::new(None),
        }
    }
}

impl McpServer {
    /// Run task calls (which outlive their requests) under `shutdown`: a graceful shutdown
    /// waits for them within its grace period and records the ones still running at its end
    /// as failed (`tasks::runner`). Each `App` attaches its own (the latest is used); without
    /// one (a server used without an `App`) they run untracked.
    pub fn run_tasks_under(&self, shutdown: &crate::shutdown::Shutdown) {
        *self.shutdown.lock().unwrap_or_else(|e| e.into_inner()) = Some(shutdown.clone());
    }

    /// The shutdown task calls run under, if any.
    pub(crate) fn tasks_shutdown(&self) -> Option<crate::shutdown::Shutdown> {
        self.shutdown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `[cluster]`: apply the answers and cancellations other replicas could not match
    /// (`replicas.rs`), and send them the ones this replica cannot. Once; later calls do
    /// nothing.
    pub fn join_cluster(self: &Arc<Self>, cluster: crate::cluster::Cluster) {
        if self.cluster.set(cluster.clone()).is_err() {
            return;
        }
        let mut listener = cluster.inbox().listen(replicas::TOPIC, 256);
        let server = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(body) = listener.recv().await {
                let Some(server) = server.upgrade() else {
                    break;
                };
                match serde_json::from_slice::<Unmatched>(&body) {
                    Ok(message) => server.apply_unmatched(message),
                    Err(e) => {
                        tracing::debug!(error = %e, "cluster: an mcp message was not understood")
                    }
                }
            }
        });
    }

    /// This replica's cluster, once joined.
    pub(crate) fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.cluster.get()
    }

    fn apply_unmatched(&self, message: Unmatched) {
        match message {
            Unmatched::Reply {
                owner,
                id,
                result,
                error,
            } => {
                if let Some(id) = RequestId::from_json(&id) {
                    let outcome = match (result, error) {
                        (Some(result), _) => Ok(result),
                        (None, error) => Err(error.unwrap_or(Value::Null)),
                    };
                    if self.pending.resolve(&owner, &id, outcome) {
                        tracing::debug!("a client's answer routed from another replica");
                    }
                }
            }
            Unmatched::Cancel { owner, id } => {
                if let Some(id) = RequestId::from_json(&id)
                    && self.state.cancel(&owner, &id)
                {
                    tracing::debug!(?id, "a cancellation routed from another replica");
                }
            }
        }
    }

    /// `[cluster]`: hand a message this replica could not match to the others.
    async fn broadcast_unmatched(&self, message: Unmatched) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let Ok(body) = serde_json::to_vec(&message) else {
            return;
        };
        if let Err(e) = cluster.broadcast(replicas::TOPIC, &body).await {
            tracing::warn!(error = %e, "an answer or cancellation for another replica was not routed");
        }
    }

    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> McpServerBuilder {
        McpServerBuilder {
            identity: ServerIdentity {
                name: name.into(),
                version: version.into(),
                title: None,
                instructions: None,
            },
            tools: Vec::new(),
            resources: None,
            prompts: None,
            completions: None,
            page_size: DEFAULT_PAGE_SIZE,
            request_state_key: None,
            batch: BatchLimits::default(),
            tasks: None,
        }
    }

    /// A server named after this crate with just these tools.
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        McpServer::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .tools(tools)
            .build()
    }

    /// All registered tools, sorted by name.
    pub fn tools(&self) -> &[Arc<dyn Tool>] {
        &self.tools
    }

    /// The tool-call metric series of this server's tools (tool names and `unknown`).
    pub fn tool_series(&self) -> &Arc<ToolSeriesTable> {
        &self.tool_series
    }

    pub(crate) fn features(&self) -> Features {
        Features {
            resources: self.resources.is_some(),
            resource_subscriptions: self
                .resources
                .as_ref()
                .is_some_and(|r| r.supports_subscribe()),
            prompts: self.prompts.is_some(),
            completions: self.completions.is_some(),
            tasks: self
                .tools
                .iter()
                .any(|t| t.spec().task_support.allows_tasks()),
        }
    }

    /// Forget the per-session state (log level, client capabilities, subscriptions) of a
    /// transport session that ended.
    pub fn end_session(&self, session_key: &str) {
        self.state.forget(&format!("session:{session_key}"));
    }

    /// Number of tool calls currently running (for metrics and tests).
    pub fn in_flight_calls(&self) -> usize {
        self.state.in_flight_count()
    }

    /// The refusal of a batch longer than `batch.max_items` (HTTP 400, -32600), for transports
    /// to check before anything else is spent on it; None for anything else.
    pub fn refuse_long_batch(&self, message: &Value) -> Option<Handled> {
        match message {
            Value::Array(batch) => self.long_batch_refusal(batch.len()),
            _ => None,
        }
    }

    fn long_batch_refusal(&self, len: usize) -> Option<Handled> {
        (len > self.batch.max_items).then(|| Handled::HttpError {
            status: 400,
            body: failure(
                None,
                &RpcError::invalid_request(format!(
                    "this JSON-RPC batch has {len} messages; at most {} are allowed per batch (batch.max_items): send fewer messages per request",
                    self.batch.max_items
                )),
            ),
        })
    }

    /// Handle one incoming message, or a 2025-03-26 batch array.
    pub async fn handle(&self, message: Value, meta: RequestMeta) -> Handled {
        self.handle_inner(message, meta, None).await
    }

    /// [`McpServer::handle`] for transports that forward the request's `Mcp-Param-<Name>`
    /// headers as (`<Name>`, value) pairs: 2026-07-28 tool calls are then checked against
    /// the arguments their input schema marks with `x-mcp-header` (-32020 on mismatch).
    pub async fn handle_with_param_headers(
        &self,
        message: Value,
        meta: RequestMeta,
        param_headers: Vec<(String, String)>,
    ) -> Handled {
        self.handle_inner(message, meta, Some(&param_headers)).await
    }

    async fn handle_inner(
        &self,
        message: Value,
        meta: RequestMeta,
        param_headers: Option<&[(String, String)]>,
    ) -> Handled {
        match message {
            Value::Array(batch) => self.handle_batch(batch, meta, param_headers).await,
            single => {
                self.handle_single(single, &meta, false, param_headers)
                    .await
            }
        }
    }

    async fn handle_batch(
        &self,
        batch: Vec<Value>,
        meta: RequestMeta,
        param_headers: Option<&[(String, String)]>,
    ) -> Handled {
        let refuse = |message: &str| Handled::HttpError {
            status: 400,
            body: failure(None, &RpcError::invalid_request(message)),
        };
        let version = meta.protocol_version_header.as_deref().map(str::trim);
        if version.is_some_and(|v| v != BATCH_VERSION) {
            return refuse(
                "JSON-RPC batches are only allowed in protocol revision 2025-03-26; send one message per request",
            );
        }
        if batch.is_empty() {
            return refuse("an empty JSON-RPC batch is not a valid request");
        }
        if let Some(refusal) = self.long_batch_refusal(batch.len()) {
            return refusal;
        }
        // At most `concurrency` items run at once; answers keep the batch's order.
        let replies: Vec<Handled> = futures::stream::iter(
            batch
                .into_iter()
                .map(|message| self.handle_single(message, &meta, true, param_headers)),
        )
        .buffered(self.batch.concurrency)
        .collect()
        .await;
        let responses: Vec<Value> = replies
            .into_iter()
            .filter_map(|handled| match handled {
                Handled::Response(v) => Some(v),
                Handled::RawResponse(raw) => Some(raw.to_value()),
                Handled::HttpError { body, .. } => Some(body),
                Handled::Accepted => None,
            })
            .collect();
        if responses.is_empty() {
            Handled::Accepted
        } else {
            Handled::Response(Value::Array(responses))
        }
    }

    async fn handle_single(
        &self,
        message: Value,
        meta: &RequestMeta,
        in_batch: bool,
        param_headers: Option<&[(String, String)]>,
    ) -> Handled {
        match classify_owned(message) {
            Incoming::Invalid { id, error } => Handled::HttpError {
                status: 400,
                body: failure(id.as_ref(), &error),
            },
            Incoming::Response { id, outcome } => {
                // Unknown, late or foreign answers are ignored (with [cluster]: after the
                // other replicas had their chance).
                let owner = owner_key(meta);
                let unmatched = Unmatched::reply(&owner, &id, &outcome);
                if !self.pending.resolve(&owner, &id, outcome) {
                    self.broadcast_unmatched(unmatched).await;
                }
                Handled::Accepted
            }
            Incoming::Notification { method, params } => {
                if let Some(unmatched) = self.handle_notification(&method, params.as_ref(), meta) {
                    self.broadcast_unmatched(unmatched).await;
                }
                Handled::Accepted
            }
            Incoming::Request { id, method, params } => {
                if in_batch && Method::parse(&method) == Some(Method::Initialize) {
                    return Handled::Response(failure(
                        Some(&id),
                        &RpcError::invalid_request("initialize must not be part of a batch"),
                    ));
                }
                self.handle_request(id, &method, params.as_ref(), meta, param_headers)
                    .await
            }
        }
    }

    /// Act on a notification; a cancellation of no call running here comes back, for the
    /// other replicas (`[cluster]`).
    fn handle_notification(
        &self,
        method: &str,
        params: Option<&Value>,
        meta: &RequestMeta,
    ) -> Option<Unmatched> {
        if Method::parse(method) == Some(Method::NotificationsCancelled) {
            let request_id = params
                .and_then(|p| p.get("requestId"))
                .and_then(RequestId::from_json);
            if let Some(id) = request_id {
                let owner = owner_key(meta);
                let cancelled = self.state.cancel(&owner, &id);
                tracing::debug!(?id, cancelled, "notifications/cancelled");
                if !cancelled {
                    return Some(Unmatched::cancel(&owner, &id));
                }
            }
        }
        // notifications/initialized, roots/list_changed, progress from the client, and
        // unknown notifications need no action.
        None
    }

    async fn handle_request(
        &self,
        id: RequestId,
        method: &str,
        params: Option<&Value>,
        meta: &RequestMeta,
        param_headers: Option<&[(String, String)]>,
    ) -> Handled {
        let modern_request: Option<ModernRequest> = if modern::is_modern(method, params, meta) {
            match modern::validate(method, params, meta) {
                Ok(mut m) => {
                    m.param_headers = param_headers.map(<[(String, String)]>::to_vec);
                    Some(m)
                }
                Err(refusal) => {
                    return Handled::HttpError {
                        status: refusal.status,
                        body: failure(Some(&id), &refusal.error),
                    };
                }
            }
        } else {
            None
        };
        if modern_request.is_some() && !modern::is_modern_method(method, self.features()) {
            let refusal = modern::method_not_found(method);
            return Handled::HttpError {
                status: refusal.status,
                body: failure(Some(&id), &refusal.error),
            };
        }
        let reply = self
            .dispatch(&id, method, params, meta, modern_request.as_ref())
            .await;
        match reply {
            Reply::Result(result) => {
                let result = if modern_request.is_some() {
                    modern::decorate_result(method, result)
                } else {
                    result
                };
                Handled::Response(success(&id, result))
            }
            Reply::RawResult(result) => Handled::RawResponse(RawResponse::success(&id, &result)),
            // The router asks for raw tool results only outside 2026-07-28; one that reaches
            // a 2026-07-28 request anyway is decorated as a Value.
            Reply::RawToolResult(result) if modern_request.is_some() => Handled::Response(success(
                &id,
                modern::decorate_result(method, result.to_value()),
            )),
            Reply::RawToolResult(result) => {
                Handled::RawResponse(RawResponse::success_text(&id, result.as_str()))
            }
            Reply::Error(error) => Handled::Response(failure(Some(&id), &error)),
            Reply::Refused { status, error } => Handled::HttpError {
                status,
                body: failure(Some(&id), &error),
            },
            Reply::NoResponse => Handled::Accepted,
        }
    }
}
