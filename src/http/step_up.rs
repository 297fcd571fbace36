//! Step-up authorization (SEP-835): an OAuth principal whose role is below what a
//! `tools/call` needs gets HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
//! scope="…", resource_metadata="…"` before the call is dispatched, so its client can ask
//! the user for the larger scope and retry. Static-token principals are left to the tool
//! registry (their role cannot grow), which answers with a JSON-RPC error.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::json_error;
use super::refuse::{Decide, Decision};
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

/// The check (in a [`RefuseLayer`](super::refuse::RefuseLayer) inside authentication, on the
/// MCP endpoints; `None` without `[oauth]`: passes everything on). Requests of static-token
/// principals pass at once; an OAuth principal's body is read (while the request waits) to find
/// the tools it calls.
impl Decide for Option<Arc<StepUp>> {
    fn decide(&self, request: Request) -> Decision {
        let Some(step_up) = self else {
            return Decision::Pass(request);
        };
        let Some(principal) = request.extensions().get::<Principal>() else {
            return Decision::Pass(request);
        };
        if principal.oauth.is_none() {
            return Decision::Pass(request);
        }
        let principal = principal.clone();
        let step_up = step_up.clone();
        Decision::Wait(Box::pin(async move {
            check(&step_up, &principal, request).await
        }))
    }
}

/// The request (its body read back in) when `principal`'s token grants what its calls need;
/// otherwise the 403 (or 413 for a body that cannot be read).
async fn check(
    step_up: &StepUp,
    principal: &Principal,
    request: Request,
) -> Result<Request, Response> {
    let Some(grant) = &principal.oauth else {
        return Ok(request);
    };
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, step_up.max_body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Err(json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or unreadable",
            ));
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
        return Err(response);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the service below the layer receives for a body sent by `principal`.
    async fn passed_on(step_up: Option<Arc<StepUp>>, principal: Option<Principal>) -> String {
        use crate::http::refuse::RefuseLayer;
        use tower::{Layer, ServiceExt};
        let echo = tower::service_fn(|request: Request| async move {
            let bytes = axum::body::to_bytes(request.into_body(), 1024)
                .await
                .unwrap();
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(bytes)))
        });
        let mut request = Request::new(Body::from(
            r#"{"method":"tools/call","params":{"name":"run"}}"#,
        ));
        if let Some(principal) = principal {
            request.extensions_mut().insert(principal);
        }
        let response = RefuseLayer::new(step_up)
            .layer(echo)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn without_oauth_or_an_oauth_principal_the_request_passes_untouched() {
        let body = r#"{"method":"tools/call","params":{"name":"run"}}"#;
        let viewer = Principal {
            name: "static".into(),
            role: Role::Viewer,
            kasm_user_id: None,
            oauth: None,
        };
        assert_eq!(passed_on(None, Some(viewer.clone())).await, body);
        assert_eq!(passed_on(None, None).await, body);
    }

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
