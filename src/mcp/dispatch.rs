//! Method routing: which handler answers which JSON-RPC method, for both eras. `tools/call`
//! lives in `call.rs`; everything else is small enough to live here.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::audit::canonical_sha256;
use crate::mcp::mrtr::open_round;
use crate::mcp::tool::Notifier;

use crate::mcp::client_requests::ClientRequester;
use crate::mcp::completion::CompletionRequest;
use crate::mcp::jsonrpc::{RequestId, RpcError, code, params_object, required_str};
use crate::mcp::lifecycle::{initialize_result, negotiate};
use crate::mcp::meta::RequestMeta;
use crate::mcp::method::Method;
use crate::mcp::modern::{self, ModernRequest};
use crate::mcp::pagination::{cursor_param, paginate};
use crate::mcp::prompts::PromptError;
use crate::mcp::resources::ResourceError;
use crate::mcp::server::{McpServer, Reply};
use crate::mcp::state::{ClientInfo, owner_key};
use crate::mcp::tasks::{EXTENSION_ID, methods as tasks, request::missing_extension};
use crate::mcp::tool::LogLevel;

fn list_result(key: &str, items: Vec<Value>, next_cursor: Option<String>) -> Value {
    // Built by moving `items` in: `json!` would serialize a deep copy of every item.
    let mut result = serde_json::Map::with_capacity(2);
    result.insert(key.into(), Value::Array(items));
    if let Some(cursor) = next_cursor {
        result.insert("nextCursor".into(), Value::String(cursor));
    }
    Value::Object(result)
}

/// The `after` key of a `*/list` request's `cursor` (params must be an object or absent).
fn page_after(params: Option<&Value>) -> Result<Option<String>, RpcError> {
    cursor_param(&params_object(params)?)
}

fn to_reply(result: Result<Value, RpcError>) -> Reply {
    match result {
        Ok(v) => Reply::Result(v),
        Err(e) => Reply::Error(e),
    }
}

impl McpServer {
    pub(crate) async fn dispatch(
        &self,
        id: &RequestId,
        method: &str,
        params: Option<&Value>,
        meta: &RequestMeta,
        modern: Option<&ModernRequest>,
    ) -> Reply {
        let unavailable = || Reply::Error(RpcError::method_not_found(method));
        let Some(known) = Method::parse(method) else {
            return unavailable();
        };
        match known {
            Method::Initialize => to_reply(self.initialize(params, meta)),
            Method::Ping => Reply::Result(json!({})),
            Method::ServerDiscover => {
                Reply::Result(modern::discover_result(&self.identity, self.features()))
            }
            Method::ToolsList => self.list_tools(params, meta, modern.is_some()),
            Method::ToolsCall => self.call_tool(id, params, meta, modern).await,
            Method::LoggingSetLevel => to_reply(self.set_log_level(params, meta)),
            Method::ResourcesList | Method::ResourcesTemplatesList | Method::ResourcesRead
                if self.resources.is_none() =>
            {
                unavailable()
            }
            Method::ResourcesSubscribe | Method::ResourcesUnsubscribe
                if !self.features().resource_subscriptions =>
            {
                unavailable()
            }
            Method::ResourcesList => to_reply(self.list_resources(params, meta).await),
            Method::ResourcesTemplatesList => {
                to_reply(self.list_resource_templates(params, meta).await)
            }
            Method::ResourcesRead => {
                to_reply(self.read_resource(params, meta, modern.is_some()).await)
            }
            Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
                to_reply(self.subscription(known, params, meta))
            }
            Method::PromptsList | Method::PromptsGet if self.prompts.is_none() => unavailable(),
            Method::PromptsList => to_reply(self.list_prompts(params, meta).await),
            Method::PromptsGet => to_reply(self.get_prompt(params, meta, modern).await),
            Method::CompletionComplete => match &self.completions {
                None => unavailable(),
                Some(provider) => match CompletionRequest::parse(params) {
                    Ok(request) => {
                        Reply::Result(provider.complete(&meta.principal, request).await.to_json())
                    }
                    Err(e) => Reply::Error(e),
                },
            },
            Method::TasksGet
            | Method::TasksResult
            | Method::TasksList
            | Method::TasksCancel
            | Method::TasksUpdate => self.tasks_method(known, params, meta, modern).await,
            // Notifications sent as requests.
            Method::NotificationsInitialized | Method::NotificationsCancelled => unavailable(),
        }
    }

    /// `tasks/*`: only when some tool runs as a task; 2026-07-28 requests must declare the
    /// extension (-32021) and have no `tasks/result` or `tasks/list` (the router answers those
    /// 404 before this); 2025-11-25 has no `tasks/update`.
    async fn tasks_method(
        &self,
        method: Method,
        params: Option<&Value>,
        meta: &RequestMeta,
        modern: Option<&ModernRequest>,
    ) -> Reply {
        if !self.features().tasks {
            return Reply::Error(RpcError::method_not_found(method.as_str()));
        }
        let store = self.tasks.as_ref();
        let owner = meta.principal.name.as_str();
        let result = match modern {
            Some(m) => {
                let declared = m
                    .client_capabilities
                    .get("extensions")
                    .and_then(|e| e.get(EXTENSION_ID))
                    .is_some_and(|v| !v.is_null());
                if !declared {
                    return Reply::Refused {
                        status: 400,
                        error: missing_extension(format!(
                            "{method} needs the {EXTENSION_ID} extension: declare it in params._meta[\"io.modelcontextprotocol/clientCapabilities\"].extensions"
                        )),
                    };
                }
                match method {
                    Method::TasksGet => tasks::modern_get(store, params, owner).await,
                    Method::TasksCancel => tasks::modern_cancel(store, params, owner).await,
                    Method::TasksUpdate => tasks::modern_update(store, params, owner).await,
                    _ => Err(RpcError::method_not_found(method.as_str())),
                }
            }
            None => match method {
                Method::TasksGet => tasks::legacy_get(store, params, owner).await,
                Method::TasksResult => {
                    let key = owner_key(meta);
                    let ask = ClientRequester::new(
                        self.pending.clone(),
                        key.clone(),
                        meta.notifications.clone(),
                        self.state.client(&key).map(|c| c.capabilities),
                    );
                    tasks::legacy_result(store, params, owner, &meta.notifications, &ask).await
                }
                Method::TasksList => tasks::legacy_list(store, params, owner, self.page_size).await,
                Method::TasksCancel => tasks::legacy_cancel(store, params, owner).await,
                _ => Err(RpcError::method_not_found(method.as_str())),
            },
        };
        to_reply(result)
    }

    fn initialize(&self, params: Option<&Value>, meta: &RequestMeta) -> Result<Value, RpcError> {
        let params = params_object(params)?;
        let requested = required_str(&params, "protocolVersion")?;
        let version = negotiate(requested);
        let capabilities = match params.get("capabilities") {
            Some(c) if c.is_object() => c.clone(),
            None | Some(Value::Null) => json!({}),
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "params.capabilities must be an object",
                ));
            }
        };
        self.state.set_client(
            &owner_key(meta),
            ClientInfo {
                protocol_version: version.to_string(),
                capabilities,
                name: client_name(&params),
            },
        );
        Ok(initialize_result(&self.identity, self.features(), version))
    }

    /// One page of a `*/list` result: `all` sorted by `key`, the page after `after`, each item
    /// rendered by `to_json`, under `result_key` (plus `nextCursor` when more follow).
    fn paged<T>(
        &self,
        result_key: &str,
        after: Option<String>,
        all: Vec<T>,
        key: impl Fn(&T) -> String,
        to_json: impl Fn(&T) -> Value,
    ) -> Value {
        let page = paginate(all, key, after.as_deref(), self.page_size);
        let items = page.items.iter().map(to_json).collect();
        list_result(result_key, items, page.next_cursor)
    }

    /// `tools/list`: the first page from the per-(role, era) cache, later pages built fresh.
    fn list_tools(&self, params: Option<&Value>, meta: &RequestMeta, modern: bool) -> Reply {
        let after = match page_after(params) {
            Ok(after) => after,
            Err(e) => return Reply::Error(e),
        };
        if after.is_none() {
            let cached = self
                .tools_list
                .get_or_build(meta.principal.role, modern, || {
                    self.tools_list_result(meta, None, modern)
                });
            if let Some(raw) = cached {
                return Reply::RawResult(raw);
            }
        }
        Reply::Result(self.build_tools_list(meta, after.as_deref()))
    }

    /// One page of `tools/list` as a Value, undecorated (the request path decorates it).
    pub(crate) fn build_tools_list(&self, meta: &RequestMeta, after: Option<&str>) -> Value {
        let page = self
            .registry
            .list_page(&meta.principal, after, self.page_size);
        list_result("tools", page.items, page.next_cursor)
    }

    /// The `tools/list` result exactly as an uncached request of this era gets it.
    pub(crate) fn tools_list_result(
        &self,
        meta: &RequestMeta,
        after: Option<&str>,
        modern: bool,
    ) -> Value {
        let result = self.build_tools_list(meta, after);
        if modern {
            modern::decorate_result(Method::ToolsList.as_str(), result)
        } else {
            result
        }
    }

    fn set_log_level(&self, params: Option<&Value>, meta: &RequestMeta) -> Result<Value, RpcError> {
        let params = params_object(params)?;
        let level = required_str(&params, "level")?;
        let level = LogLevel::parse(level).ok_or_else(|| {
            RpcError::invalid_params(format!(
                "unknown log level {level:?}: use debug, info, notice, warning, error, critical, alert or emergency"
            ))
        })?;
        self.state.set_log_level(&owner_key(meta), level);
        Ok(json!({}))
    }

    async fn list_resources(
        &self,
        params: Option<&Value>,
        meta: &RequestMeta,
    ) -> Result<Value, RpcError> {
        let after = page_after(params)?;
        let provider = self
            .resources
            .as_ref()
            .ok_or_else(|| RpcError::method_not_found(Method::ResourcesList.as_str()))?;
        let all = provider.list(&meta.principal).await;
        Ok(self.paged("resources", after, all, |r| r.uri.clone(), |r| r.to_json()))
    }

    async fn list_resource_templates(
        &self,
        params: Option<&Value>,
        meta: &RequestMeta,
    ) -> Result<Value, RpcError> {
        let after = page_after(params)?;
        let provider = self
            .resources
            .as_ref()
            .ok_or_else(|| RpcError::method_not_found(Method::ResourcesTemplatesList.as_str()))?;
        let all = provider.templates(&meta.principal).await;
        Ok(self.paged(
            "resourceTemplates",
            after,
            all,
            |t| t.uri_template.clone(),
            |t| t.to_json(),
        ))
    }

    async fn read_resource(
        &self,
        params: Option<&Value>,
        meta: &RequestMeta,
        modern: bool,
    ) -> Result<Value, RpcError> {
        let params = params_object(params)?;
        let uri = required_str(&params, "uri")?;
        let Some(provider) = &self.resources else {
            return Err(RpcError::method_not_found(Method::ResourcesRead.as_str()));
        };
        let ctx = self.resource_context(meta);
        match provider.read(&ctx, uri).await {
            Ok(contents) => {
                let contents: Vec<Value> = contents.iter().map(|c| c.to_json()).collect();
                Ok(json!({ "contents": contents }))
            }
            Err(ResourceError::NotFound(uri)) => {
                // -32002 before 2026-07-28; -32602 from then on.
                let code = if modern {
                    code::INVALID_PARAMS
                } else {
                    code::RESOURCE_NOT_FOUND
                };
                Err(RpcError::new(code, format!("resource not found: {uri}"))
                    .with_data(json!({ "uri": uri })))
            }
            Err(ResourceError::Failed(message)) => Err(RpcError::internal(message)),
        }
    }

    fn subscription(
        &self,
        method: Method,
        params: Option<&Value>,
        meta: &RequestMeta,
    ) -> Result<Value, RpcError> {
        let params = params_object(params)?;
        let uri = required_str(&params, "uri")?;
        let owner = owner_key(meta);
        if method == Method::ResourcesSubscribe {
            self.state.subscribe(&owner, uri);
        } else {
            self.state.unsubscribe(&owner, uri);
        }
        Ok(json!({}))
    }

    async fn list_prompts(
        &self,
        params: Option<&Value>,
        meta: &RequestMeta,
    ) -> Result<Value, RpcError> {
        let after = page_after(params)?;
        let provider = self
            .prompts
            .as_ref()
            .ok_or_else(|| RpcError::method_not_found(Method::PromptsList.as_str()))?;
        let all = provider.list(&meta.principal).await;
        Ok(self.paged("prompts", after, all, |p| p.name.clone(), |p| p.to_json()))
    }

    async fn get_prompt(
        &self,
        params: Option<&Value>,
        meta: &RequestMeta,
        modern: Option<&ModernRequest>,
    ) -> Result<Value, RpcError> {
        let params = params_object(params)?;
        let name = required_str(&params, "name")?;
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(args)) => args.clone(),
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "params.arguments must be an object",
                ));
            }
        };
        let Some(provider) = &self.prompts else {
            return Err(RpcError::method_not_found(Method::PromptsGet.as_str()));
        };
        let binding = format!(
            "{}|prompts/get|{name}|{}",
            meta.principal.name,
            canonical_sha256(&arguments)
        );
        let mut notifier = Notifier::disconnected();
        let round = match modern {
            Some(m) => {
                let round = Arc::new(
                    open_round(
                        &self.sealer,
                        self.cluster(),
                        &binding,
                        &params,
                        m.client_capabilities.clone(),
                    )
                    .await?,
                );
                notifier = notifier.with_input_round(round.clone());
                Some(round)
            }
            None => None,
        };
        let outcome = provider
            .get_interactive(&meta.principal, name, arguments, &notifier)
            .await;
        if let Some(input_required) = round
            .as_ref()
            .and_then(|r| r.input_required(&self.sealer, &binding))
        {
            return Ok(input_required);
        }
        match outcome {
            Ok(result) => Ok(result.to_json()),
            Err(e @ (PromptError::NotFound(_) | PromptError::InvalidArguments(_))) => {
                Err(RpcError::invalid_params(e.to_string()))
            }
            Err(PromptError::Failed(message)) => Err(RpcError::internal(message)),
        }
    }
}

/// `clientInfo` of `initialize` as `name/version` (each cut to 64 characters: it is echoed
/// into audit events).
fn client_name(params: &serde_json::Map<String, Value>) -> Option<String> {
    let info = params.get("clientInfo")?;
    let part = |key: &str| -> String {
        info.get(key)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .chars()
            .take(64)
            .collect()
    };
    Some(format!("{}/{}", part("name"), part("version")))
}
