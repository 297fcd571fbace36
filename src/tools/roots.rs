//! The roots a file tool checks a path against: the server's own bound
//! (`policy.allowed_roots`, ALLOWED_ROOTS) and, when the client declared the `roots`
//! capability, also the client's roots (asked with `roots/list` on every file call, so a
//! `notifications/roots/list_changed` is honoured at once; see `policy::client_roots`). Both
//! are checked lexically here and again with `realpath` in the container, which gets the
//! intersection as `KMCP_ROOTS`. A refusal is recorded as a denial in the audit event (rule
//! `allowed_roots` for a path outside the server's roots, `path` for a malformed one,
//! `client_roots` for one outside the client's).

use serde_json::{Value, json};

use super::ToolDeps;
use super::access::denied;
use super::support::ToolError;
use crate::mcp::{CallContext, ClientRequestError};
use crate::policy::client_roots::effective_roots;
use crate::policy::paths::{PathError, check_path};

/// A path that passed both bounds, with the roots the container re-checks it against.
#[derive(Debug, Clone)]
pub struct CheckedPath {
    pub path: String,
    pub roots: Vec<String>,
}

/// The client's declared roots (URIs), when it declared the capability.
async fn client_roots(ctx: &CallContext) -> Result<Option<Vec<String>>, ToolError> {
    if ctx.notifier.client_supports("roots") != Some(true) {
        return Ok(None);
    }
    let answer = ctx
        .notifier
        .request_client("roots/list", json!({}))
        .await
        .map_err(|e| match e {
            // 2026-07-28: the router answers `input_required`; the retry brings the roots.
            ClientRequestError::InputRequired => ToolError::new("waiting for the client's roots"),
            e => denied(
                ctx,
                "client_roots",
                format!("this client declared the roots capability but its roots/list failed ({e}); file tools need the client's roots to check the path"),
            ),
        })?;
    let roots = answer
        .get("roots")
        .and_then(Value::as_array)
        .map(|roots| {
            roots
                .iter()
                .filter_map(|r| r.get("uri").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(roots))
}

/// Check `raw` against the server's roots, then the client's (when declared).
pub async fn check_file_path(
    deps: &ToolDeps,
    ctx: &CallContext,
    raw: &str,
) -> Result<CheckedPath, ToolError> {
    let server = &deps.policy.allowed_roots;
    let path = check_path(raw, server).map_err(|e| {
        let rule = if matches!(e, PathError::OutsideRoots { .. }) {
            "allowed_roots"
        } else {
            "path"
        };
        denied(ctx, rule, e.to_string())
    })?;
    ctx.audit.path(&path);
    let Some(client) = client_roots(ctx).await? else {
        return Ok(CheckedPath {
            path,
            roots: server.clone(),
        });
    };
    let roots = effective_roots(server, &client);
    if check_path(&path, &roots).is_err() {
        return Err(denied(
            ctx,
            "client_roots",
            format!(
                "the path {path:?} is outside the roots this MCP client declared ({}); inside the server's allowed roots, the client limits file tools further to its own roots (roots/list)",
                if client.is_empty() {
                    "none".to_string()
                } else {
                    client.join(", ")
                }
            ),
        ));
    }
    Ok(CheckedPath { path, roots })
}
