//! MCP resources backed by the tools' read-only views, and completions for their arguments:
//!
//! - `kasm://workspaces` — the workspace images (JSON);
//! - `kasm://workspaces/{image_name}` — one image, by friendly name, Docker name or id;
//! - `kasm://sessions` — the caller's sessions (JSON);
//! - `kasm://sessions/{kasm_id}` — one session's status (JSON);
//! - `kasm://sessions/{kasm_id}/files/{+path}` — a file inside a session (text or blob),
//!   read through the relay exactly like `read_kasm_file`, and audited like a tool call
//!   (tool `resources/read`).
//!
//! Completions offer image names for `image_name` and the caller's session ids for `kasm_id`.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::ToolDeps;
use super::access::{acting_user, find_session};
use super::session_view::{SessionList, SessionView};
use super::sessions::status_json;
use super::support::ToolError;
use super::workspaces::{ImageList, ImageView, launchable, resolve_image};
use crate::audit::{Decision, Outcome, ToolCallRecord, audit_digest, record_tool_call};
use crate::kasm::KasmId;
use crate::mcp::completion::{Completion, CompletionProvider, CompletionRef, CompletionRequest};
use crate::mcp::resources::{
    ResourceContents, ResourceError, ResourceInfo, ResourceProvider, ResourceTemplateInfo,
};
use crate::mcp::{CallContext, Method, Notifier};
use crate::policy::Principal;
use crate::policy::quotas::Quota;

const WORKSPACES: &str = "kasm://workspaces";
const SESSIONS: &str = "kasm://sessions";
const JSON: &str = "application/json";
/// The `tool` named in the audit event of a resource read that runs in a session.
const AUDITED_AS: &str = Method::ResourcesRead.as_str();

/// Resources and completions over the same dependencies as the tools.
pub struct KasmResources {
    deps: Arc<ToolDeps>,
}

/// The provider to register with `McpServerBuilder::resources` and `::completions`.
pub fn provider(deps: ToolDeps) -> Arc<KasmResources> {
    Arc::new(KasmResources {
        deps: Arc::new(deps),
    })
}

fn context(principal: &Principal) -> CallContext {
    CallContext {
        principal: principal.clone(),
        notifier: Notifier::disconnected(),
        cancel: CancellationToken::new(),
        audit: Default::default(),
    }
}

fn json_contents(uri: &str, value: &Value) -> Vec<ResourceContents> {
    vec![ResourceContents::Text {
        uri: uri.to_string(),
        mime_type: Some(JSON.into()),
        text: serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()),
    }]
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ResourceError> {
    serde_json::to_value(value).map_err(failed)
}

fn failed(e: impl std::fmt::Display) -> ResourceError {
    ResourceError::Failed(e.to_string())
}

/// Undo `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl KasmResources {
    async fn workspaces(&self, principal: &Principal) -> Result<Value, ResourceError> {
        let images = self.deps.kasm.get_images().await.map_err(failed)?;
        let images = launchable(&self.deps, principal.role, images);
        to_json(&ImageList::of(&images, false))
    }

    async fn my_sessions(&self, principal: &Principal) -> Result<SessionList, ResourceError> {
        let ctx = context(principal);
        let user = acting_user(&self.deps, &ctx).map_err(|e| failed(e.0))?;
        let sessions = self
            .deps
            .kasm
            .get_user_kasms(user.as_str())
            .await
            .map_err(failed)?;
        Ok(SessionList::of(&sessions))
    }

    async fn read_file(
        &self,
        ctx: &CallContext,
        uri: &str,
        kasm_id: &str,
        path: &str,
    ) -> Result<Vec<ResourceContents>, ResourceError> {
        let mut args = Map::new();
        args.insert("kasm_id".into(), json!(kasm_id));
        args.insert("file_path".into(), json!(path));
        let arguments_sha256 = audit_digest(&args);
        let started = Instant::now();
        let principal = &ctx.principal;
        let notes = ctx.audit.clone();
        // Held for the whole read, like a tool call: the principal's concurrent-call quota.
        let read = match super::usage_guard::take(&self.deps, ctx, Quota::Calls).await {
            Ok(_call) => super::files::read(self.deps.clone(), ctx.clone(), args).await,
            Err(message) => {
                ctx.audit.deny(Quota::Calls.key(), &message);
                Err(ToolError::new(message))
            }
        };
        let details = notes.snapshot();
        if let Some(rule) = &details.rule {
            // Counted here, where the read's one audit event is written.
            crate::telemetry::policy_refusal(rule);
        }
        record_tool_call(&ToolCallRecord {
            principal: &principal.name,
            client_id: principal
                .oauth
                .as_ref()
                .and_then(|g| g.client_id.as_deref()),
            scopes: principal.oauth.as_ref().map(|g| g.scopes.as_slice()),
            tool: AUDITED_AS,
            arguments_sha256,
            decision: if details.rule.is_some() {
                Decision::Deny
            } else {
                Decision::Allow
            },
            outcome: if read.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            },
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            details,
        });
        let out = read.map_err(|e| failed(e.0))?;
        let file = out
            .structured
            .ok_or_else(|| failed("the file read returned no content"))?;
        let content = file["content"].as_str().unwrap_or_default().to_string();
        Ok(vec![if file["encoding"] == "base64" {
            ResourceContents::Blob {
                uri: uri.to_string(),
                mime_type: Some("application/octet-stream".into()),
                blob: content,
            }
        } else {
            ResourceContents::Text {
                uri: uri.to_string(),
                mime_type: Some("text/plain".into()),
                text: content,
            }
        }])
    }
}

#[async_trait]
impl ResourceProvider for KasmResources {
    async fn list(&self, principal: &Principal) -> Vec<ResourceInfo> {
        let mut list = vec![
            ResourceInfo {
                uri: WORKSPACES.into(),
                name: "workspaces".into(),
                title: Some("Workspace images".into()),
                description: Some(
                    "The workspace images this Kasm offers (as get_available_workspaces).".into(),
                ),
                mime_type: Some(JSON.into()),
            },
            ResourceInfo {
                uri: SESSIONS.into(),
                name: "sessions".into(),
                title: Some("My sessions".into()),
                description: Some(
                    "The sessions of the Kasm user this server acts as (as list_user_sessions)."
                        .into(),
                ),
                mime_type: Some(JSON.into()),
            },
        ];
        if let Ok(sessions) = self.my_sessions(principal).await {
            for SessionView {
                kasm_id: id,
                image_name,
                ..
            } in sessions.sessions
            {
                list.push(ResourceInfo {
                    uri: format!("{SESSIONS}/{id}"),
                    name: format!("session {id}"),
                    title: image_name.map(|n| format!("{n} session {id}")),
                    description: Some("Status of this session.".into()),
                    mime_type: Some(JSON.into()),
                });
            }
        }
        list
    }

    async fn templates(&self, _principal: &Principal) -> Vec<ResourceTemplateInfo> {
        vec![
            ResourceTemplateInfo {
                uri_template: format!("{WORKSPACES}/{{image_name}}"),
                name: "workspace".into(),
                title: Some("A workspace image".into()),
                description: Some("One workspace image by friendly name, Docker name or image_id.".into()),
                mime_type: Some(JSON.into()),
            },
            ResourceTemplateInfo {
                uri_template: format!("{SESSIONS}/{{kasm_id}}"),
                name: "session-status".into(),
                title: Some("A session's status".into()),
                description: Some("Status, image, owner and dates of one session (as get_session_status; the session URL, a login credential, only for operator and admin principals).".into()),
                mime_type: Some(JSON.into()),
            },
            ResourceTemplateInfo {
                uri_template: format!("{SESSIONS}/{{kasm_id}}/files/{{+path}}"),
                name: "session-file".into(),
                title: Some("A file inside a session".into()),
                description: Some("A file inside a running session, by absolute path within the allowed roots (as read_kasm_file), e.g. kasm://sessions/<kasm_id>/files/home/kasm-user/notes.txt.".into()),
                mime_type: None,
            },
        ]
    }

    async fn read(
        &self,
        ctx: &CallContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, ResourceError> {
        let principal = &ctx.principal;
        if uri == WORKSPACES {
            return Ok(json_contents(uri, &self.workspaces(principal).await?));
        }
        if uri == SESSIONS {
            let list = self.my_sessions(principal).await?;
            return Ok(json_contents(uri, &to_json(&list)?));
        }
        if let Some(name) = uri.strip_prefix(&format!("{WORKSPACES}/")) {
            let images = self.deps.kasm.get_images().await.map_err(failed)?;
            let images = launchable(&self.deps, principal.role, images);
            let image = resolve_image(&images, &percent_decode(name)).map_err(|e| failed(e.0))?;
            return Ok(json_contents(uri, &to_json(&ImageView::of(image))?));
        }
        let Some(rest) = uri.strip_prefix(&format!("{SESSIONS}/")) else {
            return Err(ResourceError::NotFound(uri.to_string()));
        };
        let (kasm_id, file) = match rest.split_once("/files/") {
            Some((id, path)) => (id, Some(format!("/{}", percent_decode(path)))),
            None => (rest, None),
        };
        match file {
            Some(path) => self.read_file(ctx, uri, kasm_id, &path).await,
            None => {
                let kasm_id =
                    KasmId::parse(kasm_id).map_err(|e| ResourceError::NotFound(e.to_string()))?;
                let session = find_session(&self.deps, ctx, &kasm_id)
                    .await
                    .map_err(|e| ResourceError::NotFound(e.0))?;
                let status = status_json(&self.deps, &session, principal.role);
                Ok(json_contents(uri, &to_json(&status)?))
            }
        }
    }
}

#[async_trait]
impl CompletionProvider for KasmResources {
    async fn complete(&self, principal: &Principal, request: CompletionRequest) -> Completion {
        let CompletionRef::Resource { .. } = request.reference else {
            return Completion::default();
        };
        let prefix = request.argument_value.to_lowercase();
        let candidates: Vec<String> = match request.argument_name.as_str() {
            "image_name" => match self.deps.kasm.get_images().await {
                Ok(images) => launchable(&self.deps, principal.role, images)
                    .iter()
                    .filter(|i| i.enabled != Some(false))
                    .filter_map(|i| i.friendly_name.clone())
                    .collect(),
                Err(_) => Vec::new(),
            },
            "kasm_id" => self
                .my_sessions(principal)
                .await
                .map(|list| list.sessions.into_iter().map(|s| s.kasm_id).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut values: Vec<String> = candidates
            .into_iter()
            .filter(|c| c.to_lowercase().starts_with(&prefix))
            .collect();
        values.sort();
        values.dedup();
        Completion {
            total: Some(values.len() as u64),
            values,
            has_more: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b/%C3%A9"), "a b/é");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
