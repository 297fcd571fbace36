//! Step-up authorization (SEP-835): an OAuth principal whose role is below what a
//! `tools/call` needs gets HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
//! scope="…", resource_metadata="…"` before the call is dispatched, so its client can ask
//! the user for the larger scope and retry. Static-token principals are left to the tool
//! registry (their role cannot grow), which answers with a JSON-RPC error.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use super::error::json_error;
use crate::oauth::OAuthVerifier;
use crate::policy::{Principal, Role};

/// What the step-up check needs: the verifier (for the challenge) and each tool's role.
pub struct StepUp {
    pub verifier: Arc<OAuthVerifier>,
    pub min_roles: HashMap<String, Role>,
    pub max_body: usize,
}

/// The highest role the `tools/call` requests in `message` (one or a batch) need.
fn needed_role(min_roles: &HashMap<String, Role>, message: &Value) -> Option<Role> {
    let one = |m: &Value| {
        (m.get("method").and_then(Value::as_str) == Some("tools/call"))
            .then(|| m.pointer("/params/name").and_then(Value::as_str))
            .flatten()
            .and_then(|name| min_roles.get(name).copied())
    };
    match message {
        Value::Array(items) => items.iter().filter_map(one).max(),
        single => one(single),
    }
}

/// Middleware (inside authentication, on the MCP POST endpoints).
pub async fn check(State(step_up): State<Arc<StepUp>>, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let Some(grant) = principal.oauth.clone() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, step_up.max_body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or unreadable",
            );
        }
    };
    if let Ok(message) = serde_json::from_slice::<Value>(&bytes)
        && let Some(needed) = needed_role(&step_up.min_roles, &message)
        && needed > principal.role
    {
        crate::audit::record_event(
            "step_up",
            &principal.name,
            json!({
                "decision": "deny",
                "reason": format!("insufficient scope: the call needs role {needed}, the token grants {}", principal.role),
                "client_id": grant.client_id,
                "scopes": grant.scopes.join(" "),
            }),
        );
        let mut response = json_error(
            StatusCode::FORBIDDEN,
            format!(
                "this call needs role {needed}; the token grants {}: authorize again with the scope named in WWW-Authenticate",
                principal.role
            ),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            step_up.verifier.insufficient(needed, &grant.scopes),
        );
        return response;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_highest_role_of_a_batch_counts() {
        let roles: HashMap<String, Role> = [
            ("look".to_owned(), Role::Viewer),
            ("run".to_owned(), Role::Operator),
        ]
        .into();
        let call =
            |n: &str| json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":n}});
        assert_eq!(needed_role(&roles, &call("look")), Some(Role::Viewer));
        assert_eq!(
            needed_role(&roles, &json!([call("look"), call("run")])),
            Some(Role::Operator)
        );
        assert_eq!(needed_role(&roles, &call("unknown")), None);
        assert_eq!(
            needed_role(
                &roles,
                &json!({"method":"tools/list","params":{"name":"run"}})
            ),
            None
        );
    }
}
